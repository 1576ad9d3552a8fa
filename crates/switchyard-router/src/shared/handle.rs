//! [`SharedStateHandle`]: a router's use of a [`SharedState`] — the outage policy, the
//! up/down state with its metric and rate-limited log line, the spend totals read before
//! planning, and the journal of charges the store missed (reconciled once it answers).

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
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
/// A charge the store refused (a key of the wrong type) is sent again by a planning read
/// or a drain at most this often; `/readyz` sends it every time.
const REFUSED_RETRY: Duration = Duration::from_secs(5);

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
    view: Mutex<View>,
    journal: Arc<dyn ChargeJournal>,
    /// Held by one reconciliation at a time (inline or in the background).
    reconciling: AtomicBool,
    last_log: Mutex<Option<Instant>>,
    /// Journaled charges the store refused at their last attempt, and when.
    refused: Mutex<HashMap<String, Instant>>,
    /// The last "refused" log line, and the refusals since.
    refused_log: Mutex<(Option<Instant>, u64)>,
}

/// The spend totals budget checks read while the store is up, and what keeps them whole
/// while planning reads are in flight.
#[derive(Debug, Default)]
struct View {
    /// Per `(scope, period)`: the store's total when read, plus the charges journaled and
    /// not applied yet, plus those that reached the store since.
    totals: HashMap<(String, String), u64>,
    /// Planning reads between their mark and their write ([`Core::begin_read`]).
    reading: usize,
    /// Per `(scope, period)`, the spend that reached the store while `reading > 0`
    /// (cumulative; cleared when no read is in flight).
    landed: HashMap<(String, String), u64>,
}

impl View {
    fn add(&mut self, charge: &SpendCharge) {
        for c in charge.counters() {
            if let Some(total) = self.totals.get_mut(&(c.scope, c.period)) {
                *total = total.saturating_add(charge.micro_usd);
            }
        }
    }
}

/// A planning read in flight: what had reached the store, per counter it reads, before
/// it read the totals. Deregisters on drop.
struct Reading<'a> {
    core: &'a Core,
    mark: Vec<u64>,
}

impl Drop for Reading<'_> {
    fn drop(&mut self) {
        let mut v = self.core.view();
        v.reading = v.reading.saturating_sub(1);
        if v.reading == 0 {
            v.landed.clear();
        }
    }
}

/// Which journaled charges the store refused lately a replay sends again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// All of them (`/readyz`).
    All,
    /// Those refused at least [`REFUSED_RETRY`] ago (planning reads, drains).
    Due,
}

/// One pass of a replay over the journal, oldest first, each charge sent at most once.
#[derive(Debug)]
struct Pass {
    /// Charges this pass may still send.
    left: usize,
    deadline: Option<Instant>,
    /// Charges not sent in this pass (refused in it, or lately).
    skip: HashSet<String>,
    /// Charges that left the journal (applied now or before).
    sent: u64,
    /// Whether it stopped on a failure (the store unreachable, or the journal).
    failed: bool,
    /// Whether it went past the newest charge.
    ended: bool,
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
    /// Charges the store refused lately are sent again too.
    pub async fn check(&self) -> bool {
        match self.timed("ping", self.state.ping()).await {
            Some(()) => {
                self.reconcile(Retry::All).await;
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
        // What reaches the store from here on is counted on top of what is read.
        let reading = self.core.begin_read(&counters);
        let snapshot = self
            .timed("snapshot", self.state.snapshot(&counters, targets))
            .await?;
        self.reconcile(Retry::Due).await;
        // The totals read, plus every journaled charge not applied yet, plus what reached
        // the store since the mark (each charge once, or twice in a race: never missed).
        self.core.write_view(&reading, counters, &snapshot.spent);
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

    /// Applies `charge` to the store; when it cannot (unreachable, or the store refused
    /// it for a bad key), keeps it in the journal (applied once the store answers again, or
    /// takes it). The router charges every priced request this way.
    /// A journal left by an outage is not applied here but by a task in the background
    /// (started here when none runs), so the request's own charge never waits for it.
    pub async fn charge(&self, charge: SpendCharge) {
        match self.core.call("charge", self.state.charge(&charge)).await {
            Ok(_) => {
                self.core.landed(&charge, false);
                if self.core.has_work(Retry::Due)
                    && let Some(turn) = self.core.take_turn()
                {
                    let pass = self.core.pass(usize::MAX, None, Retry::Due);
                    self.core.drain_in_background(turn, pass);
                }
            }
            Err(e) => {
                if matches!(e, SharedStateError::Refused(_)) {
                    self.core.park(&charge.charge_id);
                }
                self.core.journal_push(charge);
            }
        }
    }

    /// Applies a few journaled charges (at most [`INLINE_RECONCILE`]) and starts a task in
    /// the background for the rest of one pass over the journal. Does nothing while
    /// another reconciliation runs (inline or in the background).
    async fn reconcile(&self, retry: Retry) {
        if !self.core.has_work(retry) {
            return;
        }
        // Given back however this ends (a caller may drop the future mid-way).
        let Some(turn) = self.core.take_turn() else {
            return;
        };
        let (max, time) = INLINE_RECONCILE;
        let mut pass = self.core.pass(max, Some(Instant::now() + time), retry);
        while self.core.replay_batch(&mut pass).await {}
        log_reconciled(pass.sent);
        if !pass.failed && !pass.ended {
            // The rest of the same pass: what this one refused is not sent again.
            pass.left = usize::MAX;
            pass.deadline = None;
            pass.sent = 0;
            self.core.drain_in_background(turn, pass);
        }
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
                    let pass = core.pass(usize::MAX, None, Retry::Due);
                    drop(core);
                    Core::drain(&weak, turn, pass).await;
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
            refused: Mutex::default(),
            refused_log: Mutex::default(),
        }
    }

    /// The spend view (a panic elsewhere does not lose it: the totals only grow).
    fn view(&self) -> MutexGuard<'_, View> {
        self.view.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs one operation with the timeout, keeping the up/down state, metric and log.
    async fn timed<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, SharedStateError>>,
    ) -> Option<T> {
        self.call(op, fut).await.ok()
    }

    /// Runs one operation with the timeout. An answer, or a charge the store refused for
    /// one of its keys, means the store is up; any other error marks it down.
    async fn call<T>(
        &self,
        op: &'static str,
        fut: impl Future<Output = Result<T, SharedStateError>>,
    ) -> Result<T, SharedStateError> {
        let result = match tokio::time::timeout(OP_TIMEOUT, fut).await {
            Ok(r) => r,
            Err(_) => Err(SharedStateError::Unreachable(format!(
                "no answer within {} ms",
                OP_TIMEOUT.as_millis()
            ))),
        };
        match &result {
            Ok(_) => self.mark_up(),
            Err(e @ SharedStateError::Refused(_)) => {
                self.mark_up();
                self.note_refused(op, e);
            }
            Err(e) => self.mark_down(op, e),
        }
        result
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

    /// A charge the store refused for one of its keys: counted like a failed operation,
    /// logged at most once per [`LOG_EVERY`] (with the refusals since the last line).
    fn note_refused(&self, op: &'static str, error: &SharedStateError) {
        ::metrics::counter!(SHARED_STATE_ERRORS_TOTAL, "op" => op).increment(1);
        let now = Instant::now();
        let due = self.refused_log.lock().ok().and_then(|mut log| {
            log.1 += 1;
            let due = log.0.is_none_or(|t| now.duration_since(t) >= LOG_EVERY);
            due.then(|| {
                log.0 = Some(now);
                std::mem::take(&mut log.1)
            })
        });
        if let Some(refused) = due {
            tracing::error!(
                store = self.state.kind(),
                op,
                reason = error.reason_code(),
                error = %error,
                refused,
                pending_charges = self.journal.len(),
                "shared state refused a charge for a key it holds (fix or delete that key): \
                 the charge stays journaled and is sent again; other charges go on"
            );
        }
    }

    /// Notes that the store refused the journaled (or about to be) charge `charge_id`.
    fn park(&self, charge_id: &str) {
        if let Ok(mut refused) = self.refused.lock() {
            if refused.len() >= super::DEFAULT_JOURNAL_CAPACITY {
                refused.clear();
            }
            refused.insert(charge_id.to_owned(), Instant::now());
        }
    }

    fn unpark(&self, charge_id: &str) {
        if let Ok(mut refused) = self.refused.lock() {
            refused.remove(charge_id);
        }
    }

    /// Whether a replay with `retry` has a charge to send.
    fn has_work(&self, retry: Retry) -> bool {
        let len = self.journal.len();
        if len == 0 {
            return false;
        }
        if retry == Retry::All {
            return true;
        }
        self.refused.lock().map_or(true, |refused| {
            len > refused.len() || refused.values().any(|t| t.elapsed() >= REFUSED_RETRY)
        })
    }

    /// A pass sending at most `max` charges until `deadline`, past the charges the store
    /// refused lately unless `retry` is [`Retry::All`].
    fn pass(&self, max: usize, deadline: Option<Instant>, retry: Retry) -> Pass {
        let skip = match retry {
            Retry::All => HashSet::new(),
            Retry::Due => self.refused.lock().map_or_else(
                |_| HashSet::new(),
                |refused| {
                    refused
                        .iter()
                        .filter(|(_, t)| t.elapsed() < REFUSED_RETRY)
                        .map(|(id, _)| id.clone())
                        .collect()
                },
            ),
        };
        Pass {
            left: max,
            deadline,
            skip,
            sent: 0,
            failed: false,
            ended: false,
        }
    }

    /// Registers a planning read of `counters` before it reads the store's totals.
    fn begin_read(&self, counters: &[SpendCounter]) -> Reading<'_> {
        let mut v = self.view();
        v.reading += 1;
        let mark = counters
            .iter()
            .map(|c| {
                v.landed
                    .get(&(c.scope.clone(), c.period.clone()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect();
        drop(v);
        Reading { core: self, mark }
    }

    /// Writes the view of `counters` from the totals `spent` read after `reading`'s mark:
    /// plus the journaled charges not applied yet, plus what reached the store since the
    /// mark (it may be in `spent` too: counted twice rather than missed).
    fn write_view(&self, reading: &Reading<'_>, counters: Vec<SpendCounter>, spent: &[u64]) {
        let mut v = self.view();
        // Under the view's lock: a charge moves from the journal's pending spend to
        // `landed` in one step ([`Core::landed`]), so it is in one of the two here.
        let pending = self.journal.pending_spend(&counters);
        if v.totals.len() + counters.len() > MAX_VIEW {
            v.totals.clear();
        }
        for (i, c) in counters.into_iter().enumerate() {
            let key = (c.scope, c.period);
            let mark = reading.mark.get(i).copied().unwrap_or(0);
            let since = v.landed.get(&key).map_or(0, |n| n.saturating_sub(mark));
            let total = spent
                .get(i)
                .copied()
                .unwrap_or(0)
                .saturating_add(pending.get(i).copied().unwrap_or(0))
                .saturating_add(since);
            v.totals.insert(key, total);
        }
    }

    /// The store has `charge` (applied now, or it had it). A journaled one leaves the
    /// journal's pending spend (the view counts it already); a live one is added to the
    /// view. Either way, planning reads in flight count it on top of what they read.
    fn landed(&self, charge: &SpendCharge, journaled: bool) {
        let mut v = self.view();
        if v.reading > 0 {
            for c in charge.counters() {
                let n = v.landed.entry((c.scope, c.period)).or_default();
                *n = n.saturating_add(charge.micro_usd);
            }
        }
        if journaled {
            self.journal.mark_applied(&charge.charge_id);
        } else {
            v.add(charge);
        }
        drop(v);
        if journaled {
            self.unpark(&charge.charge_id);
        }
    }

    fn journal_push(&self, charge: SpendCharge) {
        let (charge_id, micro_usd) = (charge.charge_id.clone(), charge.micro_usd);
        // The spend happened: budget checks count it from now (while the store is up, as
        // after a refusal; a planning read between the push and this may count it twice).
        let counted = charge.clone();
        let dropped = match self.journal.push(charge) {
            Ok(None) => {
                self.view().add(&counted);
                return;
            }
            Ok(Some(oldest)) => {
                self.view().add(&counted);
                oldest
            }
            Err(e) => {
                self.unpark(&charge_id);
                ::metrics::counter!(SHARED_STATE_JOURNAL_DROPPED_TOTAL).increment(1);
                tracing::error!(%charge_id, micro_usd, reason = e.reason_code(), error = %e,
                    "shared-state journal failed: a charge will not reach the shared totals");
                return;
            }
        };
        self.unpark(&dropped.charge_id);
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

    /// Sends the next batch of `pass` to the store, oldest first, each charge once,
    /// stopping at an unreachable store or once the deadline has passed (checked before
    /// each charge): a charge leaves the journal only after the store applied it (or
    /// already had it: charge ids are idempotent, so a charge applied just before a
    /// failure or a crash is not counted twice when it is sent again). A charge the store
    /// refuses (a bad key) stays journaled and the pass goes on past it. Returns whether
    /// the pass goes on. The caller holds the turn.
    async fn replay_batch(&self, pass: &mut Pass) -> bool {
        if pass.failed || pass.ended || pass.left == 0 {
            return false;
        }
        let want = pass.left.min(RECONCILE_BATCH);
        let batch = self
            .journal
            .oldest_except(want, &|c| pass.skip.contains(&c.charge_id));
        let mut done = Vec::with_capacity(batch.len());
        let mut all = true;
        for charge in &batch {
            if pass.deadline.is_some_and(|d| Instant::now() >= d) {
                pass.left = 0;
                all = false;
                break;
            }
            pass.left = pass.left.saturating_sub(1);
            match self.call("reconcile", self.state.charge(charge)).await {
                Ok(_) => {
                    self.landed(charge, true);
                    done.push(charge.charge_id.as_str());
                }
                Err(SharedStateError::Refused(_)) => {
                    self.park(&charge.charge_id);
                    pass.skip.insert(charge.charge_id.clone());
                }
                Err(_) => {
                    pass.failed = true;
                    all = false;
                    break;
                }
            }
        }
        pass.ended = all && batch.len() < want;
        if let Err(e) = self.journal.remove(&done) {
            tracing::error!(reason = e.reason_code(), error = %e,
                "shared-state journal: applied charges could not be removed (sent again later, counted once)");
            pass.failed = true;
        }
        if !done.is_empty() {
            pass.sent += done.len() as u64;
            ::metrics::counter!(SHARED_STATE_RECONCILED_TOTAL).increment(done.len() as u64);
        }
        !pass.failed && !pass.ended && pass.left > 0
    }

    /// Starts a task that goes on with `pass` holding `turn` (until it went over the
    /// journal once, the store fails, or the handle is dropped). Without a Tokio runtime
    /// the turn is given back and the next `/readyz` or request goes on.
    fn drain_in_background(self: &Arc<Self>, turn: ReconcileTurn, pass: Pass) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let weak = Arc::downgrade(self);
        runtime.spawn(async move { Core::drain(&weak, turn, pass).await });
    }

    /// Applies the journal a batch at a time in one pass (a charge the store refuses is
    /// left for the next pass) until the pass ends, the store fails or the core is
    /// dropped, holding `turn` all along.
    async fn drain(weak: &Weak<Self>, turn: ReconcileTurn, mut pass: Pass) {
        loop {
            let Some(core) = weak.upgrade() else { break };
            if !core.replay_batch(&mut pass).await {
                break;
            }
        }
        drop(turn);
        log_reconciled(pass.sent);
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
            .and_then(|v| v.totals.get(&(c.scope, c.period)).copied());
        shared.unwrap_or_else(|| self.local.spent(caller, window, at))
    }
}

/// How the router holds the handle.
pub(crate) type SharedHandle = Arc<SharedStateHandle>;
