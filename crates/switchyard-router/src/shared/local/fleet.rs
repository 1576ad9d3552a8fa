//! [`FleetState`] of the [`InProcessState`]: in-flight counts and probe results in memory,
//! with the Redis implementation's semantics (entries expire; admission is atomic).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{InProcessState, MAX_KEYS, evict};
use crate::shared::{FleetAdmit, FleetState, ProbeTurn, SharedProbe, SharedStateError};

/// The fleet's side of the in-process state.
#[derive(Debug, Default)]
pub(super) struct FleetMem {
    /// Per provider, per replica: its count and when it expires.
    in_flight: HashMap<String, HashMap<String, (u64, Instant)>>,
    probes: HashMap<String, (SharedProbe, Instant)>,
    claims: HashMap<String, Instant>,
}

impl FleetMem {
    /// The live counts of `provider`'s replicas other than `replica` (expired ones dropped).
    fn others(&mut self, provider: &str, replica: &str, now: Instant) -> u64 {
        let Some(counts) = self.in_flight.get_mut(provider) else {
            return 0;
        };
        counts.retain(|_, (_, until)| *until > now);
        counts
            .iter()
            .filter(|(r, _)| r.as_str() != replica)
            .map(|(_, (n, _))| *n)
            .fold(0, u64::saturating_add)
    }

    fn set(&mut self, provider: &str, replica: &str, count: u64, until: Instant) {
        evict(&mut self.in_flight, until, |m, _| !m.is_empty());
        let counts = self.in_flight.entry(provider.to_owned()).or_default();
        if count == 0 {
            counts.remove(replica);
        } else if counts.len() < MAX_KEYS || counts.contains_key(replica) {
            counts.insert(replica.to_owned(), (count, until));
        }
    }
}

#[async_trait]
impl FleetState for InProcessState {
    async fn admit(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        limit: u64,
        ttl: Duration,
    ) -> Result<FleetAdmit, SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        let others = state.fleet.others(provider, replica, now);
        if others.saturating_add(count) > limit {
            return Ok(FleetAdmit::Full { others });
        }
        state.fleet.set(provider, replica, count, now + ttl);
        Ok(FleetAdmit::Admitted)
    }

    async fn publish_in_flight(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let mut state = self.lock()?;
        state
            .fleet
            .set(provider, replica, count, Instant::now() + ttl);
        Ok(())
    }

    async fn probe_turn(
        &self,
        provider: &str,
        claim: Duration,
    ) -> Result<ProbeTurn, SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        let fleet = &mut state.fleet;
        if let Some((result, _)) = fleet.probes.get(provider).filter(|(_, t)| *t > now) {
            return Ok(ProbeTurn::Fresh(*result));
        }
        if fleet.claims.get(provider).is_some_and(|t| *t > now) {
            return Ok(ProbeTurn::Busy);
        }
        evict(&mut fleet.claims, now, |t, now| *t > now);
        fleet.claims.insert(provider.to_owned(), now + claim);
        Ok(ProbeTurn::Yours)
    }

    async fn publish_probe(
        &self,
        provider: &str,
        result: SharedProbe,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        let fleet = &mut state.fleet;
        evict(&mut fleet.probes, now, |(_, t), now| *t > now);
        fleet
            .probes
            .insert(provider.to_owned(), (result, now + ttl));
        fleet.claims.remove(provider);
        Ok(())
    }
}
