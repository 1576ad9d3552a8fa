//! [`SharedStateHandle`]: a router's use of a [`SharedState`] — the outage policy, the
//! up/down state with its metric and rate-limited log line, the spend totals read before
//! planning, and the journal of charges the store missed (reconciled once it answers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use super::journal::{ChargeJournal, MemoryJournal};
use super::{
    OnOutage, OutagePolicy, RateDecision, SharedState, SharedStateError, SpendCharge, SpendCounter,
};
use crate::ledger::{BudgetWindow, LedgerError, SpendLedger};
use crate::metrics::{
    SHARED_STATE_ERRORS_TOTAL, SHARED_STATE_JOURNAL_DROPPED_TOTAL, SHARED_STATE_RECONCILED_TOTAL,
    SHARED_STATE_UP,
};

/// How long one shared-state operation may take before it counts as a failure.
const OP_TIMEOUT: Duration = Duration::from_secs(2);
/// At most one "unreachable" log line per this interval.
const LOG_EVERY: Duration = Duration::from_secs(10);
/// Charges sent to the store per reconciliation step (then removed from the journal in
/// one write).
const RECONCILE_BATCH: usize = 256;
/// At most this many journaled charges are applied inside a planning read or a `/readyz`
/// check, and only while this long has not passed (the rest is applied by a task in the
/// background), so that a request after an outage never carries the journal.
const INLINE_RECONCILE: (usize, Duration) = (16, Duration::from_millis(100));
/// First and longest pause between two pings of the reconciler started with charges from
/// a previous run.
const RECONCILE_PAUSE: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(5));
/// Spend totals kept from snapshots.
const MAX_VIEW: usize = 4_096;

/// A router's connection to the shared state: the store, what to do when it is
/// unreachable, and the bookkeeping around it. Cheap to share (`Arc`); kept across reloads.
#[derive(Debug)]
pub struct SharedStateHandle {
    pub(super) state: Arc<dyn SharedState>,
    pub(super) replica: String,
    seq: AtomicU64,
    /// What the background reconciliation shares with the handle.
    core: Arc<Core>,
    /// This replica's in-flight counts of fleet-scoped providers.
    pub(super) fleet: super::fleet::FleetCounters,
}

/// The store, the up/down state, the spend view and the journal: what a reconciliation
/// needs, shared with the task that applies the journal in the background.
#[derive(Debug)]
struct Core {
    state: Arc<dyn SharedState>,
    policy: OutagePolicy,
    up: AtomicBool,
    view: Mutex<HashMap<(String, String), u64>>,
    journal: Arc<dyn ChargeJournal>,
    /// Held by one reconciliation at a time (inline or in the background).
    reconciling: AtomicBool,
    last_log: Mutex<Option<Instant>>,
}

/// What one run of [`Core::replay`] did.
#[derive(Debug, Default)]
struct Replayed {
    /// Charges the store applied now (not those it already had).
    applied: Vec<SpendCharge>,
    /// Charges that left the journal (applied now or before).
    sent: u64,
    /// Whether it stopped on a failure (the store or the journal).
    failed: bool,
}

impl SharedStateHandle {
    /// A handle on `state` with `policy` for outages, journaling the charges the store
    /// misses in memory (bounded; see [`SharedStateHandle::with_journal`]). Starts as up.
    pub fn new(state: Arc<dyn SharedState>, policy: OutagePolicy) -> Self {
        ::metrics::gauge!(SHARED_STATE_UP).set(1.0);
        let journal: Arc<dyn ChargeJournal> = Arc::new(MemoryJournal::default());
        Self {
            core: Arc::new(Core::new(Arc::clone(&state), policy, journal)),
            state,
            replica: format!("{:016x}", rand::random::<u64>()),
            seq: AtomicU64::new(0),
            fleet: super::fleet::FleetCounters::default(),
        }
    }

    /// Journals the charges the store misses in `journal` instead of memory (a
    /// [`super::RedbJournal`] keeps them across a restart; charges it holds from a previous
    /// run are applied once the store answers: [`SharedStateHandle::start_reconciler`]).
    pub fn with_journal(mut self, journal: Arc<dyn ChargeJournal>) -> Self {
        self.core = Arc::new(Core::new(
            Arc::clone(&self.state),
            self.core.policy,
            journal,
        ));
        self
    }

    /// The outage policy.
    pub fn policy(&self) -> OutagePolicy {
        self.core.policy
    }

    /// What the store is (`redis`, `in_process`).
    pub fn kind(&self) -> &'static str {
        self.state.kind()
    }

    /// Whether the last operation on the store succeeded.
    pub fn is_up(&self) -> bool {
        self.core.up.load(Ordering::Acquire)
    }

    /// Charges waiting to be applied to the store (recorded while it was unreachable).
    pub fn pending_charges(&self) -> usize {
        self.core.journal.len()
    }

    /// Asks the store whether it answers; when it does, applies a few journaled charges
    /// (at most [`INLINE_RECONCILE`]) and leaves the rest to a task in the background.
    pub async fn check(&self) -> bool {
        match self.timed("ping", self.state.ping()).await {
            Some(()) => {
                self.reconcile().await;
                self.is_up()
            }
            None => false,
        }
    }

    /// Admits one request of API key `key` under `rpm` requests and `tpm` tokens per
    /// minute (one round trip). `Ok(None)`: the store is unreachable and the policy says
    /// `local` (the caller applies its own limiter); `Err(wait)`: refused.
    pub async fn rate(
        &self,
        key: &str,
        rpm: Option<u32>,
        tpm: Option<u32>,
    ) -> Result<Option<()>, Duration> {
        match self.timed("rate", self.state.rate(key, rpm, tpm)).await {
            Some(RateDecision::Allowed) => Ok(Some(())),
            Some(RateDecision::Wait(wait)) => Err(wait),
            None => match self.core.policy.rate_limits {
                OnOutage::Local => Ok(None),
                OnOutage::Closed => Err(Duration::from_secs(1)),
            },
        }
    }

    /// Charges the `tokens` an answer of API key `key` used under `tpm` tokens per minute
    /// (best effort: a failure is counted and logged; the caller's own bucket is charged
    /// too, for outages).
    pub async fn charge_tokens(&self, key: &str, tokens: u64, tpm: u32) {
        if tokens > 0 {
            self.timed("charge_tokens", self.state.charge_tokens(key, tokens, tpm))
                .await;
        }
    }

    /// Runs one operation with the timeout, keeping the up/down state, metric and log.
    pub(super) async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, SharedStateError>>,
    ) -> Option<T> {
        self.core.timed(op, fut).await
    }

    /// Reads the spend totals of `caller` (and global) and the shared cooldowns of
    /// `targets` before planning; returns the cooldowns to apply (`None` when the store did
    /// not answer).
    pub(crate) async fn before_plan(
        &self,
        caller: Option<&str>,
        with_spend: bool,
        targets: &[String],
        at: SystemTime,
    ) -> Option<Vec<Option<Duration>>> {
        let counters: Vec<SpendCounter> = if with_spend {
            [BudgetWindow::Day, BudgetWindow::Month]
                .into_iter()
                .flat_map(|w| {
                    let own = caller.map(|c| SpendCounter::new(Some(c), w, at));
                    own.into_iter().chain([SpendCounter::new(None, w, at)])
                })
                .collect()
        } else {
            Vec::new()
        };
        let snapshot = self
            .timed("snapshot", self.state.snapshot(&counters, targets))
            .await?;
        // The snapshot was read before these charges reached the store: their amounts are
        // added to it, so the totals include what the outage journaled exactly once (the
        // view they also went into is overwritten below).
        let reconciled = self.reconcile().await;
        let mut totals = snapshot.spent;
        for charge in &reconciled {
            for c in charge.counters() {
                let read = counters
                    .iter()
                    .position(|k| k.scope == c.scope && k.period == c.period);
                if let Some(total) = read.and_then(|i| totals.get_mut(i)) {
                    *total = total.saturating_add(charge.micro_usd);
                }
            }
        }
        if let Ok(mut view) = self.core.view.lock() {
            if view.len() + counters.len() > MAX_VIEW {
                view.clear();
            }
            for (c, total) in counters.into_iter().zip(totals) {
                view.insert((c.scope, c.period), total);
            }
        }
        Some(snapshot.cooling)
    }

    /// Why budgets refuse while the store is unreachable and budgets fail closed.
    pub(crate) fn closed_budget_reason(&self) -> Option<String> {
        (!self.is_up() && self.core.policy.budgets == OnOutage::Closed).then(|| {
            "shared state unreachable: budgets fail closed (shared_state.on_outage.budgets)"
                .to_owned()
        })
    }

    /// Whether budget checks read the shared totals (the store is up) or the local ledger.
    pub(crate) fn reads_shared_spend(&self) -> bool {
        self.is_up()
    }

    /// A charge of `micro_usd` for the request `request_id`, unique to this replica.
    pub fn new_charge(
        &self,
        request_id: &str,
        caller: Option<&str>,
        micro_usd: u64,
        at: SystemTime,
    ) -> SpendCharge {
        let n = self.seq.fetch_add(1, Ordering::Relaxed);
        SpendCharge {
            charge_id: format!("{}:{request_id}:{n}", self.replica),
            caller: caller.map(str::to_owned),
            micro_usd,
            at,
        }
    }

    /// Applies `charge` to the store; when it cannot, keeps it in the journal (applied
    /// once the store answers again). The router charges every priced request this way.
    /// A journal left by an outage is not applied here but by a task in the background
    /// (started here when none runs), so the request's own charge never waits for it.
    pub async fn charge(&self, charge: SpendCharge) {
        if self
            .timed("charge", self.state.charge(&charge))
            .await
            .is_some()
        {
            self.core.add_to_view(&charge);
            if !self.core.journal.is_empty()
                && let Some(turn) = self.core.take_turn()
            {
                self.core.drain_in_background(turn);
            }
        } else {
            self.core.journal_push(charge);
        }
    }

    /// Applies a few journaled charges (at most [`INLINE_RECONCILE`]) and starts a task in
    /// the background for the rest; returns the charges the store applied here. Does
    /// nothing while another reconciliation runs (inline or in the background).
    async fn reconcile(&self) -> Vec<SpendCharge> {
        if self.core.journal.is_empty() {
            return Vec::new();
        }
        // Given back however this ends (a caller may drop the future mid-way).
        let Some(turn) = self.core.take_turn() else {
            return Vec::new();
        };
        let (max, time) = INLINE_RECONCILE;
        let done = self.core.replay(max, Some(Instant::now() + time)).await;
        log_reconciled(done.sent);
        if !done.failed && !self.core.journal.is_empty() {
            self.core.drain_in_background(turn);
        }
        done.applied
    }

    /// When the journal holds charges (a previous run's, kept in the ledger file), starts
    /// a task that pings the store (250 ms, doubling to 5 s) until it answers and the
    /// journal is applied; it stops then, or when the handle is dropped. Needs a Tokio
    /// runtime (without one, `/readyz` and the next request reconcile). Only one
    /// reconciliation applies the journal at a time: while another one holds it, this
    /// task waits for it to end.
    pub fn start_reconciler(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.core.journal.is_empty() {
            return;
        }
        let weak = Arc::downgrade(&self.core);
        runtime.spawn(async move {
            let mut pause = RECONCILE_PAUSE.0;
            loop {
                let Some(core) = weak.upgrade() else { break };
                if core.journal.is_empty() {
                    break;
                }
                if core.timed("ping", core.state.ping()).await.is_some()
                    && let Some(turn) = core.take_turn()
                {
                    drop(core);
                    Core::drain(&weak, turn).await;
                } else {
                    drop(core);
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(RECONCILE_PAUSE.1);
            }
        });
    }

    /// Publishes a cooldown of `target` (best effort: a failure is counted and logged).
    pub(crate) async fn cool(&self, target: &str, duration: Duration) {
        self.timed("cool", self.state.cool(target, duration)).await;
    }
}

impl Core {
    fn new(
        state: Arc<dyn SharedState>,
        policy: OutagePolicy,
        journal: Arc<dyn ChargeJournal>,
    ) -> Self {
        Self {
            state,
            policy,
            up: AtomicBool::new(true),
            view: Mutex::default(),
            journal,
            reconciling: AtomicBool::new(false),
            last_log: Mutex::default(),
        }
    }

    /// Runs one operation with the timeout, keeping the up/down state, metric and log.
    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, SharedStateError>>,
    ) -> Option<T> {
        let result = match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(SharedStateError::Unreachable(format!(
                "no answer within {} ms",
                OP_TIMEOUT.as_millis()
            ))),
        };
        match result {
            Ok(v) => {
                self.mark_up();
                Some(v)
            }
            Err(e) => {
                self.mark_down(op, &e);
                None
            }
        }
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::AcqRel) {
            ::metrics::gauge!(SHARED_STATE_UP).set(1.0);
            tracing::warn!(
                store = self.state.kind(),
                pending_charges = self.journal.len(),
                "shared state reachable again"
            );
        }
    }

    fn mark_down(&self, op: &'static str, error: &SharedStateError) {
        ::metrics::counter!(SHARED_STATE_ERRORS_TOTAL, "op" => op).increment(1);
        let was_up = self.up.swap(false, Ordering::AcqRel);
        if was_up {
            ::metrics::gauge!(SHARED_STATE_UP).set(0.0);
        }
        let now = Instant::now();
        let due = self.last_log.lock().is_ok_and(|mut last| {
            let due = was_up || last.is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
            if due {
                *last = Some(now);
            }
            due
        });
        if due {
            tracing::error!(
                store = self.state.kind(),
                op,
                reason = error.reason_code(),
                error = %error,
                budgets = outage_str(self.policy.budgets),
                rate_limits = outage_str(self.policy.rate_limits),
                health = "local",
                "shared state unreachable: budgets, rate limits and health follow shared_state.on_outage"
            );
        }
    }

    fn add_to_view(&self, charge: &SpendCharge) {
        if let Ok(mut view) = self.view.lock() {
            for c in charge.counters() {
                if let Some(total) = view.get_mut(&(c.scope, c.period)) {
                    *total = total.saturating_add(charge.micro_usd);
                }
            }
        }
    }

    fn journal_push(&self, charge: SpendCharge) {
        let (charge_id, micro_usd) = (charge.charge_id.clone(), charge.micro_usd);
        let dropped = match self.journal.push(charge) {
            Ok(None) => return,
            Ok(Some(oldest)) => oldest,
            Err(e) => {
                ::metrics::counter!(SHARED_STATE_JOURNAL_DROPPED_TOTAL).increment(1);
                tracing::error!(%charge_id, micro_usd, reason = e.reason_code(), error = %e,
                    "shared-state journal failed: a charge will not reach the shared totals");
                return;
            }
        };
        ::metrics::counter!(SHARED_STATE_JOURNAL_DROPPED_TOTAL).increment(1);
        tracing::error!(
            charge_id = %dropped.charge_id,
            micro_usd = dropped.micro_usd,
            "shared-state journal full: a charge will not reach the shared totals"
        );
    }

    /// The turn to reconcile, unless another reconciliation holds it.
    fn take_turn(self: &Arc<Self>) -> Option<ReconcileTurn> {
        (!self.reconciling.swap(true, Ordering::AcqRel))
            .then(|| ReconcileTurn(Arc::downgrade(self)))
    }

    /// Applies up to `max` journaled charges to the store, oldest first, each exactly
    /// once, stopping at the first failure or once `deadline` has passed (checked before
    /// each charge): a charge leaves the journal only after the store applied it (or
    /// already had it: charge ids are idempotent, so a charge applied just before a
    /// failure or a crash is not counted twice when it is sent again). The caller holds
    /// the turn.
    async fn replay(&self, max: usize, deadline: Option<Instant>) -> Replayed {
        let mut out = Replayed::default();
        let mut left = max;
        while left > 0 {
            let batch = self.journal.oldest(left.min(RECONCILE_BATCH));
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::with_capacity(batch.len());
            for charge in &batch {
                if deadline.is_some_and(|d| Instant::now() >= d) {
                    left = 0;
                    break;
                }
                match self.timed("reconcile", self.state.charge(charge)).await {
                    None => {
                        out.failed = true;
                        break;
                    }
                    Some(true) => {
                        self.add_to_view(charge);
                        out.applied.push(charge.clone());
                    }
                    Some(false) => {}
                }
                done.push(charge.charge_id.as_str());
            }
            if let Err(e) = self.journal.remove(&done) {
                tracing::error!(reason = e.reason_code(), error = %e,
                    "shared-state journal: applied charges could not be removed (sent again later, counted once)");
                out.failed = true;
            }
            out.sent += done.len() as u64;
            left = left.saturating_sub(done.len());
            if out.failed {
                break;
            }
        }
        if out.sent > 0 {
            ::metrics::counter!(SHARED_STATE_RECONCILED_TOTAL).increment(out.sent);
        }
        out
    }

    /// Starts a task that applies the whole journal with `turn` (it holds the turn until
    /// the journal is empty, the store fails, or the handle is dropped). Without a Tokio
    /// runtime the turn is given back and the next `/readyz` or request goes on.
    fn drain_in_background(self: &Arc<Self>, turn: ReconcileTurn) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move { Core::drain(&weak, turn).await });
    }

    /// Applies the journal a batch at a time until it is empty, the store fails or the
    /// core is dropped, holding `turn` all along.
    async fn drain(weak: &Weak<Self>, turn: ReconcileTurn) {
        let mut sent = 0u64;
        loop {
            let Some(core) = weak.upgrade() else { break };
            let done = core.replay(RECONCILE_BATCH, None).await;
            sent += done.sent;
            if done.failed || done.sent == 0 || core.journal.is_empty() {
                break;
            }
        }
        drop(turn);
        log_reconciled(sent);
    }
}

fn log_reconciled(charges: u64) {
    if charges > 0 {
        tracing::warn!(
            charges,
            "spend recorded during the shared-state outage applied to the shared totals"
        );
    }
}

/// Whose turn it is to reconcile: held by one reconciliation at a time (inline, or the
/// task in the background it hands it to), given back on drop.
#[derive(Debug)]
struct ReconcileTurn(Weak<Core>);

impl Drop for ReconcileTurn {
    fn drop(&mut self) {
        if let Some(core) = self.0.upgrade() {
            core.reconciling.store(false, Ordering::Release);
        }
    }
}

fn outage_str(o: OnOutage) -> &'static str {
    match o {
        OnOutage::Closed => "closed",
        OnOutage::Local => "local",
    }
}

/// The spend a budget check sees while the store is up: the shared totals read before
/// planning, and the local ledger for a counter not read.
pub(crate) struct SharedSpend<'a> {
    pub(crate) handle: &'a SharedStateHandle,
    pub(crate) local: &'a dyn SpendLedger,
}

impl std::fmt::Debug for SharedSpend<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedSpend").finish_non_exhaustive()
    }
}

impl SpendLedger for SharedSpend<'_> {
    fn record(&self, _: Option<&str>, _: u64, _: SystemTime) -> Result<(), LedgerError> {
        Ok(())
    }

    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64 {
        let c = SpendCounter::new(caller, window, at);
        let shared = self
            .handle
            .core
            .view
            .lock()
            .ok()
            .and_then(|v| v.get(&(c.scope, c.period)).copied());
        shared.unwrap_or_else(|| self.local.spent(caller, window, at))
    }
}

/// How the router holds the handle.
pub(crate) type SharedHandle = Arc<SharedStateHandle>;
