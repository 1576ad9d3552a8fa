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
    /// Theoretical arrival time of each key's tokens (tokens per minute).
    tokens: HashMap<String, Instant>,
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
    let interval = (60_000 / u64::from(per_minute.max(1))).max(1);
    let limit = interval * u64::from(per_minute.max(1));
    let next = tat_from_now_ms + interval;
    if next > limit {
        Err(Duration::from_millis(next - limit))
    } else {
        Ok(next)
    }
}

/// A minute in ms: how far ahead a key's token arrival time may be for a request to be
/// admitted.
pub(crate) const TOKEN_WINDOW_MS: u64 = 60_000;

/// Tokens per minute, at admission: with the key's token arrival time `ahead_ms` past now,
/// admitted while it is less than a minute ahead, else the wait until it is.
pub(crate) fn tokens_admit(ahead_ms: u64) -> Result<(), Duration> {
    if ahead_ms < TOKEN_WINDOW_MS {
        Ok(())
    } else {
        Err(Duration::from_millis(ahead_ms - TOKEN_WINDOW_MS + 1))
    }
}

/// Tokens per minute, after an answer: the new arrival time (ms past now) once `tokens`
/// are charged at `tpm`, each costing `60 s / tpm` (rounded up to the ms), capped at two
/// minutes ahead.
pub(crate) fn tokens_charge(ahead_ms: u64, tokens: u64, tpm: u32) -> u64 {
    let cost = (u128::from(tokens) * u128::from(TOKEN_WINDOW_MS)).div_ceil(u128::from(tpm.max(1)));
    let cost = u64::try_from(cost).unwrap_or(u64::MAX);
    ahead_ms.saturating_add(cost).min(2 * TOKEN_WINDOW_MS)
}

fn ms_ahead(at: Option<&Instant>, now: Instant) -> u64 {
    at.and_then(|t| t.checked_duration_since(now))
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX / 4))
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

    async fn rate(
        &self,
        key: &str,
        rpm: Option<u32>,
        tpm: Option<u32>,
    ) -> Result<RateDecision, SharedStateError> {
        let mut state = self.lock()?;
        let now = Instant::now();
        evict(&mut state.tat, now, |tat, now| *tat > now);
        let token_wait = tpm
            .and_then(|_| tokens_admit(ms_ahead(state.tokens.get(key), now)).err())
            .unwrap_or(Duration::ZERO);
        let requests = rpm.map(|rpm| gcra(ms_ahead(state.tat.get(key), now), rpm));
        let request_wait = match requests {
            Some(Err(wait)) => wait,
            _ => Duration::ZERO,
        };
        let wait = token_wait.max(request_wait);
        if !wait.is_zero() {
            return Ok(RateDecision::Wait(wait));
        }
        if let Some(Ok(next)) = requests {
            state
                .tat
                .insert(key.to_owned(), now + Duration::from_millis(next));
        }
        Ok(RateDecision::Allowed)
    }

    async fn charge_tokens(
        &self,
        key: &str,
        tokens: u64,
        tpm: u32,
    ) -> Result<(), SharedStateError> {
        if tokens == 0 {
            return Ok(());
        }
        let mut state = self.lock()?;
        let now = Instant::now();
        evict(&mut state.tokens, now, |tat, now| *tat > now);
        let ahead = tokens_charge(ms_ahead(state.tokens.get(key), now), tokens, tpm);
        state
            .tokens
            .insert(key.to_owned(), now + Duration::from_millis(ahead));
        Ok(())
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

    #[test]
    fn tokens_are_admitted_under_a_minute_ahead_and_debt_is_capped_at_one_minute() {
        // 100 tpm: a token costs 600 ms.
        assert_eq!(tokens_charge(0, 50, 100), 30_000);
        assert!(tokens_admit(30_000).is_ok());
        assert_eq!(tokens_charge(30_000, 50, 100), 60_000);
        assert_eq!(tokens_admit(60_000), Err(Duration::from_millis(1)));
        assert_eq!(tokens_charge(60_000, 1_000, 100), 120_000, "capped");
        assert_eq!(tokens_admit(120_000), Err(Duration::from_millis(60_001)));
        // Costs round up to the ms, never down to nothing.
        assert_eq!(tokens_charge(0, 1, 1_000_000), 1);
    }

    #[tokio::test]
    async fn one_rate_check_applies_both_limits_and_answers_the_longer_wait() {
        let state = InProcessState::new();
        assert_eq!(
            state.rate("k", Some(2), Some(100)).await.unwrap(),
            RateDecision::Allowed
        );
        state.charge_tokens("k", 150, 100).await.unwrap();
        // 90 s ahead: 30 s of token wait; the request limit alone would admit.
        let RateDecision::Wait(wait) = state.rate("k", Some(2), Some(100)).await.unwrap() else {
            panic!("tokens exhausted");
        };
        assert!(
            wait > Duration::from_secs(29) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        // A refused request is not counted: the request limit still has its second slot.
        assert_eq!(
            state.rate("k", Some(2), None).await.unwrap(),
            RateDecision::Allowed
        );
        let RateDecision::Wait(wait) = state.rate("k", Some(2), None).await.unwrap() else {
            panic!("two requests a minute");
        };
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        // Another key is untouched; no limit at all admits.
        assert_eq!(
            state.rate("other", Some(2), Some(100)).await.unwrap(),
            RateDecision::Allowed
        );
        assert_eq!(
            state.rate("k", None, None).await.unwrap(),
            RateDecision::Allowed
        );
    }
}
