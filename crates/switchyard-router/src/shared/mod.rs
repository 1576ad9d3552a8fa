//! The shared-state seam: what several replicas of a gateway must agree on (spend per
//! period, rate limits, cooldowns), behind one async trait so the router does not know
//! where it lives. [`InProcessState`] keeps it in this process (one router, or several in
//! one process); the `switchyard-redis` crate keeps it in Redis or Valkey for a fleet.
//!
//! A router without shared state (the default) keeps everything in process exactly as
//! before: its ledger, its cooldowns, the gateway's token buckets. With one
//! ([`crate::Router::with_shared_state`]), spend is charged to the shared counters once
//! per charge id, budget checks read the shared totals, cooldowns are published and
//! honoured, and per-key request and token rates are decided by the shared state. When the shared
//! state fails, each concern does what its [`OutagePolicy`] says. Providers configured
//! with a fleet-wide concurrency scope are admitted against the fleet's in-flight total,
//! and health probe results are shared ([`FleetState`]).

mod fleet;
pub(crate) mod handle;
mod in_flight;
mod journal;
mod local;
mod probe;

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Deserialize;

use crate::ledger::BudgetWindow;

pub use fleet::{FleetAdmit, FleetState, IN_FLIGHT_TTL, ProbeTurn, SharedProbe};
pub(crate) use handle::SharedHandle;
pub use handle::SharedStateHandle;
pub(crate) use in_flight::FleetSlot;
pub use journal::{ChargeJournal, DEFAULT_JOURNAL_CAPACITY, MemoryJournal, RedbJournal};
pub use local::InProcessState;
pub(crate) use probe::ProbeStep;

/// One spend charge: `micro_usd` for `caller` (and the global scope) in the periods
/// containing `at`. `charge_id` makes it idempotent: a charge applied twice counts once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpendCharge {
    /// Unique per charge (replica id, request id and a counter).
    pub charge_id: String,
    /// The caller (API key id), if any.
    pub caller: Option<String>,
    /// The cost in micro-dollars.
    pub micro_usd: u64,
    /// When the spend happened (selects the day and month counters).
    pub at: SystemTime,
}

impl SpendCharge {
    /// The counters this charge adds to: `(scope, period)` for the day and month of `at`,
    /// global and, with a caller, the caller's. Scope `global` or `c:<caller id>`; period
    /// `2025-03-07` or `2025-03`.
    pub fn counters(&self) -> Vec<SpendCounter> {
        let mut out = Vec::with_capacity(4);
        for window in [BudgetWindow::Day, BudgetWindow::Month] {
            if let Some(c) = &self.caller {
                out.push(SpendCounter::new(Some(c), window, self.at));
            }
            out.push(SpendCounter::new(None, window, self.at));
        }
        out
    }
}

/// One spend counter: a scope (global or a caller) and a period (a day or a month).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SpendCounter {
    /// `global` or `c:<caller id>`.
    pub scope: String,
    /// `2025-03-07` (day) or `2025-03` (month).
    pub period: String,
    /// Which kind of period.
    pub window: BudgetWindow,
}

impl SpendCounter {
    /// The counter of `caller` (`None`: global) for the `window` containing `at`.
    pub fn new(caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> Self {
        Self {
            scope: caller.map_or_else(|| "global".to_owned(), |c| format!("c:{c}")),
            period: crate::ledger::window_key(window, at),
            window,
        }
    }

    /// How long the counter must be kept: its period and a day of slack.
    pub fn retention(&self) -> Duration {
        match self.window {
            BudgetWindow::Day => Duration::from_secs(2 * 86_400),
            BudgetWindow::Month => Duration::from_secs(32 * 86_400),
        }
    }
}

/// What the router reads before planning one request, in one round trip.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Snapshot {
    /// The total of each asked counter, in the order asked (0 when absent).
    pub spent: Vec<u64>,
    /// For each asked target (provider id), how much longer its shared cooldown lasts.
    pub cooling: Vec<Option<Duration>>,
}

/// The answer of a rate-limit check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateDecision {
    /// Admitted (and counted).
    Allowed,
    /// Refused: retry after this long.
    Wait(Duration),
}

/// Why the shared state could not answer. The router then applies the concern's
/// [`OutagePolicy`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SharedStateError {
    /// The store could not be reached (connection refused, reset, timeout).
    #[error("shared state unreachable: {0}")]
    Unreachable(String),
    /// The store answered with an error or an answer of the wrong shape.
    #[error("shared state answered with an error: {0}")]
    Answer(String),
    /// The store answered and refused this one charge for what a key it writes holds (a
    /// key of another type, a counter that is not an integer): the store is up, and other
    /// charges (other keys) go on. Returned by [`SharedState::charge`]; the charge stays
    /// journaled and is sent again.
    #[error("shared state refused the charge: {0}")]
    Refused(String),
}

impl SharedStateError {
    /// A stable snake_case code for logs and metric labels.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Unreachable(_) => "shared_state_unreachable",
            Self::Answer(_) => "shared_state_error",
            Self::Refused(_) => "shared_state_refused",
        }
    }
}

/// The store of state several replicas share. Implementations: [`InProcessState`], and
/// `switchyard_redis::RedisState`. Every method is one round trip to the store; in-flight
/// counts and probe results are its [`FleetState`] side.
#[async_trait]
pub trait SharedState: FleetState + Send + Sync + fmt::Debug {
    /// What the store is, for logs and `/readyz` (`in_process`, `redis`).
    fn kind(&self) -> &'static str;

    /// The totals of `counters` and the remaining shared cooldown of each of `targets`.
    async fn snapshot(
        &self,
        counters: &[SpendCounter],
        targets: &[String],
    ) -> Result<Snapshot, SharedStateError>;

    /// Adds a charge to its counters unless a charge with its id was applied already
    /// (then nothing changes). Returns whether it was applied now.
    /// [`SharedStateError::Refused`] when the store answered but refused this charge for
    /// what one of its keys holds (nothing written): the store is not down.
    async fn charge(&self, charge: &SpendCharge) -> Result<bool, SharedStateError>;

    /// Admits one request of `key` under its limits, in one round trip: `rpm` requests per
    /// minute (GCRA: a burst of up to `rpm`, then one every `60 s / rpm`), counted when
    /// admitted, and `tpm` tokens per minute (admitted while the key's token arrival time is
    /// less than a minute ahead; tokens are charged after the answer with
    /// [`SharedState::charge_tokens`]). Refused: the longer of the two waits.
    async fn rate(
        &self,
        key: &str,
        rpm: Option<u32>,
        tpm: Option<u32>,
    ) -> Result<RateDecision, SharedStateError>;

    /// Charges the `tokens` an answer of `key` used under `tpm` tokens per minute: the
    /// key's token arrival time moves `tokens * 60 s / tpm` on from itself or now (the
    /// later), at most two minutes ahead (one minute of debt).
    async fn charge_tokens(&self, key: &str, tokens: u64, tpm: u32)
    -> Result<(), SharedStateError>;

    /// Cools `target` (a provider id) for `duration` for every replica (a longer cooldown
    /// already set stays).
    async fn cool(&self, target: &str, duration: Duration) -> Result<(), SharedStateError>;

    /// Whether the store answers.
    async fn ping(&self) -> Result<(), SharedStateError>;
}

/// What one concern does while the shared state is unreachable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnOutage {
    /// Refuse what depends on it: budgets refuse targets they apply to (cloud targets
    /// under a cap), rate limits refuse the key's requests.
    Closed,
    /// Fall back to this replica's own state (limits become per replica).
    Local,
}

/// Per concern, what to do while the shared state is unreachable. Defaults: budgets
/// `closed` (spend must not run away unseen), rate limits and health `local`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutagePolicy {
    /// Budget checks.
    pub budgets: OnOutage,
    /// Per-key rate limits.
    pub rate_limits: OnOutage,
    /// Shared cooldowns (`closed` is treated as `local`: a router never refuses a target
    /// for want of health news).
    pub health: OnOutage,
}

impl Default for OutagePolicy {
    fn default() -> Self {
        Self {
            budgets: OnOutage::Closed,
            rate_limits: OnOutage::Local,
            health: OnOutage::Local,
        }
    }
}
