//! [`InProcessState`]: the shared state kept in this process, with the same semantics as
//! the Redis one (the reference the seam's contract tests pin).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

use super::{RateDecision, SharedState, SharedStateError, Snapshot, SpendCharge, SpendCounter};

mod fleet;

/// How many charge ids are remembered for idempotency (oldest forgotten first).
const MAX_CHARGE_IDS: usize = 100_000;
/// How many rate-limit keys and cooled targets are kept (oldest entries dropped first).
const MAX_KEYS: usize = 10_000;

#[derive(Debug, Default)]
struct State {
    totals: HashMap<(String, String), u64>,
    seen: HashSet<String>,
    seen_order: VecDeque<String>,
    /// GCRA theoretical arrival time per rate-limit key.
    tat: HashMap<String, Instant>,
    cooling: HashMap<String, Instant>,
    /// In-flight counts and probe results.
    fleet: fleet::FleetMem,
}

/// Shared state in this process's memory: what several routers in one process (or one
/// router, in tests) share. Bounded: the last 100 000 charge ids, 10 000 keys per map.
#[derive(Debug, Default)]
pub struct InProcessState {
    state: Mutex<State>,
}

impl InProcessState {
    /// Empty state.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, State>, SharedStateError> {
        self.state
            .lock()
            .map_err(|_| SharedStateError::Answer("in-process state poisoned".to_owned()))
    }
}

/// The GCRA step shared by both implementations' semantics: with the stored theoretical
/// arrival time `tat` (ms, relative to `now` = 0 when absent or past), admits when the new
/// arrival time stays within `per_minute` emission intervals. Returns the new `tat` offset
/// (ms from now) or the wait.
pub(crate) fn gcra(tat_from_now_ms: u64, per_minute: u32) -> Result<u64, Duration> {
    let interval = 60_000 / u64::from(per_minute.max(1));
    let limit = interval * u64::from(per_minute.max(1));
    let next = tat_from_now_ms + interval;
    if next > limit {
        Err(Duration::from_millis(next - limit))
    } else {
        Ok(next)
    }
}

fn evict<V>(map: &mut HashMap<String, V>, now: Instant, alive: impl Fn(&V, Instant) -> bool) {
    if map.len() >= MAX_KEYS {
        map.retain(|_, v| alive(v, now));
    }
    if map.len() >= MAX_KEYS {
        map.clear();
    }
}

#[async_trait]
impl SharedState for InProcessState {
    fn kind(&self) -> &'static str {
        "in_process"
    }

    async fn snapshot(
        &self,
        counters: &[SpendCounter],
        targets: &[String],
    ) -> Result<Snapshot, SharedStateError> {
        let state = self.lock()?;
        let now = Instant::now();
        Ok(Snapshot {
            spent: counters
                .iter()
                .map(|c| {
                    let key = (c.scope.clone(), c.period.clone());
                    state.totals.get(&key).copied().unwrap_or(0)
                })
                .collect(),
            cooling: targets
                .iter()
                .map(|t| {
                    state
                        .cooling
                        .get(t)
                        .and_then(|until| until.checked_duration_since(now))
                        .filter(|d| !d.is_zero())
                })
                .collect(),
        })
    }

    async fn charge(&self, charge: &SpendCharge) -> Result<bool, SharedStateError> {
        let mut state = self.lock()?;
        if !state.seen.insert(charge.charge_id.clone()) {
            return Ok(false);
        }
        state.seen_order.push_back(charge.charge_id.clone());
        if state.seen_order.len() > MAX_CHARGE_IDS
            && let Some(old) = state.seen_order.pop_front()
        {
            state.seen.remove(&old);
        }
        for c in charge.counters() {
            let total = state.totals.entry((c.scope, c.period)).or_default();
            *total = total.saturating_add(charge.micro_usd);
        }
        Ok(true)
    }

    async fn rate(&self, key: &str, per_minute: u32) -> Result<RateDecision, SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        evict(&mut state.tat, now, |tat, now| *tat > now);
        let tat = state
            .tat
            .get(key)
            .and_then(|t| t.checked_duration_since(now))
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4));
        match gcra(tat, per_minute) {
            Ok(next) => {
                state
                    .tat
                    .insert(key.to_owned(), now + Duration::from_millis(next));
                Ok(RateDecision::Allowed)
            }
            Err(wait) => Ok(RateDecision::Wait(wait)),
        }
    }

    async fn cool(&self, target: &str, duration: Duration) -> Result<(), SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        evict(&mut state.cooling, now, |until, now| *until > now);
        let until = now + duration;
        let entry = state.cooling.entry(target.to_owned()).or_insert(until);
        *entry = (*entry).max(until);
        Ok(())
    }

    async fn ping(&self) -> Result<(), SharedStateError> {
        self.lock().map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gcra_admits_a_minute_of_burst_then_one_per_interval() {
        let mut tat = 0;
        let mut admitted = 0;
        for _ in 0..14 {
            if let Ok(next) = gcra(tat, 10) {
                tat = next;
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10);
        assert_eq!(gcra(tat, 10), Err(Duration::from_secs(6)));
        // Six seconds later (tat 6 s nearer), one more fits.
        assert!(gcra(tat - 6_000, 10).is_ok());
    }
}
