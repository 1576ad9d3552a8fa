//! [`SharedStateHandle`]: a router's use of a [`SharedState`] — the outage policy, the
//! up/down state with its metric and rate-limited log line, the spend totals read before
//! planning, and the journal of charges the store missed (reconciled once it answers).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
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
    policy: OutagePolicy,
    pub(super) replica: String,
    seq: AtomicU64,
    up: AtomicBool,
    view: Mutex<HashMap<(String, String), u64>>,
    journal: Arc<dyn ChargeJournal>,
    reconciling: AtomicBool,
    last_log: Mutex<Option<Instant>>,
    /// This replica's in-flight counts of fleet-scoped providers.
    pub(super) fleet: super::fleet::FleetCounters,
}

impl SharedStateHandle {
    /// A handle on `state` with `policy` for outages, journaling the charges the store
    /// misses in memory (bounded; see [`SharedStateHandle::with_journal`]). Starts as up.
    pub fn new(state: Arc<dyn SharedState>, policy: OutagePolicy) -> Self {
        ::metrics::gauge!(SHARED_STATE_UP).set(1.0);
        Self {
            state,
            policy,
            replica: format!("{:016x}", rand::random::<u64>()),
            seq: AtomicU64::new(0),
            up: AtomicBool::new(true),
            view: Mutex::default(),
            journal: Arc::new(MemoryJournal::default()),
            reconciling: AtomicBool::new(false),
            last_log: Mutex::default(),
            fleet: super::fleet::FleetCounters::default(),
        }
    }

    /// Journals the charges the store misses in `journal` instead of memory (a
    /// [`super::RedbJournal`] keeps them across a restart; charges it holds from a previous
    /// run are applied once the store answers: [`SharedStateHandle::start_reconciler`]).
    pub fn with_journal(mut self, journal: Arc<dyn ChargeJournal>) -> Self {
        self.journal = journal;
        self
    }

    /// The outage policy.
    pub fn policy(&self) -> OutagePolicy {
        self.policy
    }

    /// What the store is (`redis`, `in_process`).
    pub fn kind(&self) -> &'static str {
        self.state.kind()
    }

    /// Whether the last operation on the store succeeded.
    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Acquire)
    }

    /// Charges waiting to be applied to the store (recorded while it was unreachable).
    pub fn pending_charges(&self) -> usize {
        self.journal.len()
    }

    /// Asks the store whether it answers; when it does, applies the journal first.
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
            None => match self.policy.rate_limits {
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
                store = self.kind(),
                pending_charges = self.pending_charges(),
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
                store = self.kind(),
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
        self.reconcile().await;
        if let Ok(mut view) = self.view.lock() {
            if view.len() + counters.len() > MAX_VIEW {
                view.clear();
            }
            for (c, total) in counters.into_iter().zip(snapshot.spent) {
                view.insert((c.scope, c.period), total);
            }
        }
        Some(snapshot.cooling)
    }

    /// Why budgets refuse while the store is unreachable and budgets fail closed.
    pub(crate) fn closed_budget_reason(&self) -> Option<String> {
        (!self.is_up() && self.policy.budgets == OnOutage::Closed).then(|| {
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
    pub async fn charge(&self, charge: SpendCharge) {
        if self
            .timed("charge", self.state.charge(&charge))
            .await
            .is_some()
        {
            self.add_to_view(&charge);
            self.reconcile().await;
        } else {
            self.journal_push(charge);
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

    /// Applies the journal to the store, oldest first, each charge exactly once: a charge
    /// leaves the journal only after the store applied it (or already had it: charge ids
    /// are idempotent, so a charge applied just before a failure or a crash is not
    /// counted twice when it is sent again).
    async fn reconcile(&self) {
        if self.journal.is_empty() || self.reconciling.swap(true, Ordering::AcqRel) {
            return;
        }
        // Cleared however this ends (a caller may drop the future mid-way).
        let _turn = ReconcileTurn(&self.reconciling);
        let mut applied = 0u64;
        loop {
            let batch = self.journal.oldest(RECONCILE_BATCH);
            if batch.is_empty() {
                break;
            }
            let mut done = Vec::with_capacity(batch.len());
            for charge in &batch {
                match self.timed("reconcile", self.state.charge(charge)).await {
                    None => break,
                    Some(true) => self.add_to_view(charge),
                    Some(false) => {}
                }
                done.push(charge.charge_id.as_str());
            }
            let complete = done.len() == batch.len();
            if let Err(e) = self.journal.remove(&done) {
                tracing::error!(reason = e.reason_code(), error = %e,
                    "shared-state journal: applied charges could not be removed (sent again later, counted once)");
                break;
            }
            applied += done.len() as u64;
            if !complete {
                break;
            }
        }
        if applied > 0 {
            ::metrics::counter!(SHARED_STATE_RECONCILED_TOTAL).increment(applied);
            tracing::warn!(
                charges = applied,
                "spend recorded during the shared-state outage applied to the shared totals"
            );
        }
    }

    /// When the journal holds charges (a previous run's, kept in the ledger file), starts
    /// a task that pings the store (250 ms, doubling to 5 s) until it answers and the
    /// journal is applied; it stops then, or when the handle is dropped. Needs a Tokio
    /// runtime (without one, `/readyz` and the next request reconcile).
    pub fn start_reconciler(self: &Arc<Self>) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        if self.journal.is_empty() {
            return;
        }
        let weak = Arc::downgrade(self);
        runtime.spawn(async move {
            let mut pause = RECONCILE_PAUSE.0;
            loop {
                let Some(handle) = weak.upgrade() else { break };
                if handle.check().await && handle.journal.is_empty() {
                    break;
                }
                drop(handle);
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

/// Whose turn it is to reconcile: held by one `reconcile` at a time, given back on drop.
struct ReconcileTurn<'a>(&'a AtomicBool);

impl Drop for ReconcileTurn<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
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
            .view
            .lock()
            .ok()
            .and_then(|v| v.get(&(c.scope, c.period)).copied());
        shared.unwrap_or_else(|| self.local.spent(caller, window, at))
    }
}

/// How the router holds the handle.
pub(crate) type SharedHandle = Arc<SharedStateHandle>;
