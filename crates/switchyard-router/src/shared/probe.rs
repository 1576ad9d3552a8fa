//! Shared health probes on the handle's side: before probing a provider, a replica takes
//! a fresh result another replica published (and does not probe), or claims the probe and
//! publishes its result after, fresh for one probe interval. While the store is
//! unreachable every replica probes for itself.

use std::time::Duration;

use super::SharedStateHandle;
use super::fleet::{ProbeTurn, SharedProbe};

/// How often a replica asks again while another one holds the probe claim.
const BUSY_POLL: Duration = Duration::from_millis(100);

/// What a replica does about one provider in one probe round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ProbeStep {
    /// Apply this result another replica published; do not probe.
    Use(SharedProbe),
    /// Probe, then [`SharedStateHandle::publish_probe`].
    Probe,
    /// Another replica probes and has not published within the claim: keep the state.
    Skip,
}

impl SharedStateHandle {
    /// Whether to probe `provider` now: `claim` bounds how long one probe may take (the
    /// claim lasts that long; a replica that waits for another's result waits that long).
    pub(crate) async fn probe_step(&self, provider: &str, claim: Duration) -> ProbeStep {
        let polls = claim.as_millis() / BUSY_POLL.as_millis() + 1;
        for _ in 0..polls {
            match self
                .timed("probe", self.state.probe_turn(provider, claim))
                .await
            {
                Some(ProbeTurn::Fresh(result)) => return ProbeStep::Use(result),
                Some(ProbeTurn::Yours) | None => return ProbeStep::Probe,
                Some(ProbeTurn::Busy) => tokio::time::sleep(BUSY_POLL).await,
            }
        }
        ProbeStep::Skip
    }

    /// Publishes this replica's probe result of `provider`, fresh for `fresh` (best
    /// effort: a failure is counted and logged).
    pub(crate) async fn publish_probe(&self, provider: &str, result: SharedProbe, fresh: Duration) {
        self.timed("probe", self.state.publish_probe(provider, result, fresh))
            .await;
    }
}
