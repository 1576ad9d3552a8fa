//! What a fleet shares about its providers beyond spend and cooldowns: each replica's
//! in-flight count per provider (so `max_concurrency` can be one limit for the fleet) and
//! the results of health probes (so N replicas do not each probe a dead host).
//!
//! [`FleetState`] is the store's side (every [`super::SharedState`] implements it);
//! [`FleetCounters`] is a router's side: this replica's count of fleet-admitted requests
//! per provider, published as an absolute number (so a lost update heals at the next
//! write) with a TTL the replica keeps refreshing (so a replica that dies stops counting).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use switchyard_core::{ErrorKind, TimeoutPhase};

use super::SharedStateError;

/// How long a replica's published in-flight count stays valid without a refresh.
pub const IN_FLIGHT_TTL: Duration = Duration::from_secs(15);
/// How often a replica refreshes its published in-flight counts.
pub(crate) const IN_FLIGHT_REFRESH: Duration = Duration::from_secs(5);
/// Providers whose counts one replica keeps (the config's providers; a bound all the same).
const MAX_PROVIDERS: usize = 1_024;

/// The answer of a fleet admission.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetAdmit {
    /// Admitted: this replica's count is now the one asked.
    Admitted,
    /// Refused: the other replicas hold this many, and this replica's new count would
    /// take the fleet over the limit. Nothing changed.
    Full {
        /// The other replicas' in-flight total.
        others: u64,
    },
}

/// A health probe's result as the fleet shares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedProbe {
    /// The provider answered.
    Up,
    /// The probe failed with this kind.
    Down(ErrorKind),
}

impl SharedProbe {
    /// `up` or `down:<reason code>`, as stored.
    pub fn encode(self) -> String {
        match self {
            Self::Up => "up".to_owned(),
            Self::Down(kind) => format!("down:{}", kind.reason_code()),
        }
    }

    /// The stored form back; an unknown reason code reads as `upstream_error`'s kind.
    pub fn decode(s: &str) -> Option<Self> {
        if s == "up" {
            return Some(Self::Up);
        }
        let code = s.strip_prefix("down:")?;
        let kind = PROBE_KINDS
            .iter()
            .copied()
            .find(|k| k.reason_code() == code)
            .unwrap_or(ErrorKind::Upstream);
        Some(Self::Down(kind))
    }

    /// As the health state takes it.
    pub(crate) fn as_result(self) -> Result<(), ErrorKind> {
        match self {
            Self::Up => Ok(()),
            Self::Down(kind) => Err(kind),
        }
    }
}

/// The kinds a probe failure usually has (what [`SharedProbe::decode`] recognises).
const PROBE_KINDS: [ErrorKind; 13] = [
    ErrorKind::ConnectRefused,
    ErrorKind::Dns,
    ErrorKind::Tls,
    ErrorKind::Connect,
    ErrorKind::Timeout(TimeoutPhase::Total),
    ErrorKind::Timeout(TimeoutPhase::Connect),
    ErrorKind::Auth,
    ErrorKind::RateLimited,
    ErrorKind::QuotaExhausted,
    ErrorKind::Overloaded,
    ErrorKind::EndpointNotFound,
    ErrorKind::Upstream,
    ErrorKind::MalformedStream,
];

/// Whose turn it is to probe a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProbeTurn {
    /// A replica probed it recently: use this result, do not probe.
    Fresh(SharedProbe),
    /// No fresh result: this replica has claimed the probe (publish the result after).
    Yours,
    /// Another replica is probing it right now.
    Busy,
}

/// The fleet's in-flight counts and probe results. One round trip per method.
#[async_trait]
pub trait FleetState: Send + Sync {
    /// Sets `replica`'s in-flight count of `provider` to `count` (valid for `ttl`) when the
    /// other replicas' live counts plus `count` stay within `limit`; else changes nothing.
    async fn admit(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        limit: u64,
        ttl: Duration,
    ) -> Result<FleetAdmit, SharedStateError>;

    /// Sets `replica`'s in-flight count of `provider` to `count`, valid for `ttl` (0
    /// removes it).
    async fn publish_in_flight(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<(), SharedStateError>;

    /// The fresh probe result of `provider`, else a claim on probing it for `claim` (or
    /// [`ProbeTurn::Busy`] when another replica holds the claim).
    async fn probe_turn(
        &self,
        provider: &str,
        claim: Duration,
    ) -> Result<ProbeTurn, SharedStateError>;

    /// Publishes a probe result of `provider`, fresh for `ttl`, and drops the claim.
    async fn publish_probe(
        &self,
        provider: &str,
        result: SharedProbe,
        ttl: Duration,
    ) -> Result<(), SharedStateError>;
}

/// This replica's count of fleet-admitted requests of one provider. Changes to the
/// published count are serialised by `publish`, so the store always ends with the last
/// count (never one lower than what is held: the count is read under the lock).
#[derive(Debug, Default)]
pub(crate) struct FleetCounter {
    held: AtomicU64,
    publish: tokio::sync::Mutex<()>,
}

impl FleetCounter {
    pub(crate) fn held(&self) -> u64 {
        self.held.load(Ordering::Acquire)
    }

    pub(crate) fn add(&self) {
        self.held.fetch_add(1, Ordering::AcqRel);
    }

    pub(crate) fn remove(&self) {
        let _ = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
    }

    pub(crate) async fn lock(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.publish.lock().await
    }

    /// The lock if nobody holds it now.
    pub(crate) fn try_lock(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        self.publish.try_lock().ok()
    }
}

/// Per provider, this replica's [`FleetCounter`] (bounded), and whether the refresher
/// task runs.
#[derive(Debug, Default)]
pub(crate) struct FleetCounters {
    counters: Mutex<HashMap<String, Arc<FleetCounter>>>,
    refreshing: std::sync::atomic::AtomicBool,
    last_log: Mutex<Option<Instant>>,
}

impl FleetCounters {
    /// The counter of `provider` (`None` past the bound).
    pub(crate) fn of(&self, provider: &str) -> Option<Arc<FleetCounter>> {
        let mut map = self.counters.lock().ok()?;
        if let Some(c) = map.get(provider) {
            return Some(c.clone());
        }
        if map.len() >= MAX_PROVIDERS {
            return None;
        }
        let c = Arc::new(FleetCounter::default());
        map.insert(provider.to_owned(), c.clone());
        Some(c)
    }

    /// Every provider's counter.
    pub(crate) fn all(&self) -> Vec<(String, Arc<FleetCounter>)> {
        self.counters.lock().map_or_else(
            |_| Vec::new(),
            |m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        )
    }

    /// Claims starting the refresher (true once).
    pub(crate) fn start_refresher(&self) -> bool {
        !self.refreshing.swap(true, Ordering::AcqRel)
    }

    /// Whether a fallback log line is due (at most one per `every`).
    pub(crate) fn log_due(&self, every: Duration) -> bool {
        let now = Instant::now();
        self.last_log.lock().is_ok_and(|mut last| {
            let due = last.is_none_or(|t| now.duration_since(t) >= every);
            if due {
                *last = Some(now);
            }
            due
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_results_round_trip_through_their_stored_form() {
        for probe in [
            SharedProbe::Up,
            SharedProbe::Down(ErrorKind::ConnectRefused),
            SharedProbe::Down(ErrorKind::Timeout(TimeoutPhase::Total)),
            SharedProbe::Down(ErrorKind::Overloaded),
        ] {
            assert_eq!(SharedProbe::decode(&probe.encode()), Some(probe));
        }
        assert_eq!(
            SharedProbe::decode("down:something_new"),
            Some(SharedProbe::Down(ErrorKind::Upstream))
        );
        assert_eq!(SharedProbe::decode("sideways"), None);
    }
}
