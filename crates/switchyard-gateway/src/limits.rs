//! Per-key rate limits: chat requests per minute and tokens per minute, as token buckets.
//!
//! The request bucket holds up to a minute's worth of requests and refills continuously;
//! a request takes one. The token bucket holds a minute's worth of tokens; a request is
//! admitted while the bucket is positive, and the tokens an answer used (its `Usage`, or an
//! estimate when it ends or is dropped without one: see `body::TokenAccount`) are taken
//! afterwards, possibly into debt (bounded by one minute's worth), which the next requests
//! wait out. Levels survive a reload for keys whose id stays.
//!
//! With the router's shared state, both limits are the fleet's (one check per request,
//! the answer's tokens charged there too, see `switchyard_router::SharedState::rate`);
//! these buckets are still charged, and decide while the shared state is unreachable
//! and `on_outage.rate_limits` is `local`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::ApiKey;

/// One continuously refilled bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    capacity: f64,
    per_sec: f64,
    level: f64,
    updated: Instant,
}

impl Bucket {
    fn new(per_minute: u32, now: Instant) -> Self {
        let capacity = f64::from(per_minute.max(1));
        Self {
            capacity,
            per_sec: capacity / 60.0,
            level: capacity,
            updated: now,
        }
    }

    fn reconfigure(&mut self, per_minute: u32, now: Instant) {
        self.refill(now);
        self.capacity = f64::from(per_minute.max(1));
        self.per_sec = self.capacity / 60.0;
        self.level = self.level.min(self.capacity);
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.level = (self.level + elapsed * self.per_sec).min(self.capacity);
        self.updated = now;
    }

    /// How long until the level reaches `needed`.
    fn wait_for(&self, needed: f64) -> Duration {
        let missing = (needed - self.level).max(0.0);
        Duration::from_secs_f64((missing / self.per_sec).min(3600.0))
    }
}

#[derive(Debug, Default)]
struct KeyBuckets {
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    /// The configured tokens per minute.
    tokens_per_minute: Option<u32>,
}

/// The rate limits of every key, by key id.
#[derive(Debug, Default)]
pub(crate) struct RateLimiter {
    keys: Mutex<HashMap<String, KeyBuckets>>,
}

impl RateLimiter {
    /// Applies the limits of `keys`, keeping the levels of keys whose id stays.
    pub(crate) fn configure(&self, keys: &[ApiKey]) {
        let now = Instant::now();
        let Ok(mut map) = self.keys.lock() else {
            return;
        };
        map.retain(|id, _| keys.iter().any(|k| &k.id == id));
        for key in keys {
            if key.requests_per_minute.is_none() && key.tokens_per_minute.is_none() {
                map.remove(&key.id);
                continue;
            }
            let entry = map.entry(key.id.clone()).or_default();
            update(&mut entry.requests, key.requests_per_minute, now);
            update(&mut entry.tokens, key.tokens_per_minute, now);
            entry.tokens_per_minute = key.tokens_per_minute;
        }
    }

    /// The tokens per minute of `key_id`, if it has such a limit.
    pub(crate) fn tokens_per_minute(&self, key_id: &str) -> Option<u32> {
        let map = self.keys.lock().ok()?;
        map.get(key_id)?.tokens_per_minute
    }

    /// Admits one chat request of `key`: by the router's shared state when it has one
    /// (requests and tokens per minute fleet-wide, one round trip), by this replica's
    /// buckets without it, or when it is unreachable and `on_outage.rate_limits` is `local`.
    pub(crate) async fn admit_key(
        &self,
        shared: Option<&switchyard_router::SharedStateHandle>,
        key: &ApiKey,
    ) -> Result<(), Duration> {
        let (rpm, tpm) = (key.requests_per_minute, key.tokens_per_minute);
        if let Some(shared) = shared
            && (rpm.is_some() || tpm.is_some())
            && shared.rate(&key.id, rpm, tpm).await?.is_some()
        {
            // The fleet admitted it; this replica's bucket is charged too, so that it
            // decides from what was really served if the shared state goes away.
            self.charge_request(&key.id);
            return Ok(());
        }
        self.admit(&key.id)
    }

    /// Takes one request from `key_id`'s request bucket without asking it (the fleet
    /// admitted the request), possibly into debt (bounded by one minute's worth).
    fn charge_request(&self, key_id: &str) {
        let now = Instant::now();
        let Ok(mut map) = self.keys.lock() else {
            return;
        };
        if let Some(bucket) = map.get_mut(key_id).and_then(|b| b.requests.as_mut()) {
            bucket.refill(now);
            bucket.level = (bucket.level - 1.0).max(-bucket.capacity);
        }
    }

    /// Admits one chat request of `key_id` by this replica's buckets, or says how long to
    /// wait.
    pub(crate) fn admit(&self, key_id: &str) -> Result<(), Duration> {
        let now = Instant::now();
        let Ok(mut map) = self.keys.lock() else {
            return Ok(());
        };
        let Some(buckets) = map.get_mut(key_id) else {
            return Ok(());
        };
        if let Some(tokens) = buckets.tokens.as_mut() {
            tokens.refill(now);
            if tokens.level <= 0.0 {
                return Err(tokens.wait_for(1.0));
            }
        }
        if let Some(requests) = buckets.requests.as_mut() {
            requests.refill(now);
            if requests.level < 1.0 {
                return Err(requests.wait_for(1.0));
            }
            requests.level -= 1.0;
        }
        Ok(())
    }

    /// Takes the tokens an answer used from `key_id`'s token bucket.
    pub(crate) fn charge_tokens(&self, key_id: &str, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let now = Instant::now();
        let Ok(mut map) = self.keys.lock() else {
            return;
        };
        if let Some(bucket) = map.get_mut(key_id).and_then(|b| b.tokens.as_mut()) {
            bucket.refill(now);
            // Precision loss above 2^53 tokens does not matter here.
            let used = tokens as f64;
            bucket.level = (bucket.level - used).max(-bucket.capacity);
        }
    }
}

fn update(slot: &mut Option<Bucket>, per_minute: Option<u32>, now: Instant) {
    match (slot.as_mut(), per_minute) {
        (_, None) => *slot = None,
        (Some(bucket), Some(n)) => bucket.reconfigure(n, now),
        (None, Some(n)) => *slot = Some(Bucket::new(n, now)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(rpm: Option<u32>, tpm: Option<u32>) -> ApiKey {
        ApiKey {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            ..ApiKey::new("k", "secret")
        }
    }

    #[test]
    fn requests_per_minute_run_out_and_say_when_to_retry() {
        let limiter = RateLimiter::default();
        limiter.configure(&[key(Some(2), None)]);
        assert!(limiter.admit("k").is_ok());
        assert!(limiter.admit("k").is_ok());
        let wait = limiter.admit("k").unwrap_err();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limiter.admit("other").is_ok());
    }

    #[test]
    fn tokens_per_minute_block_after_a_big_answer() {
        let limiter = RateLimiter::default();
        limiter.configure(&[key(None, Some(100))]);
        assert!(limiter.admit("k").is_ok());
        limiter.charge_tokens("k", 150);
        let wait = limiter.admit("k").unwrap_err();
        assert!(wait >= Duration::from_secs(29), "{wait:?}");
    }

    #[tokio::test]
    async fn with_shared_state_the_fleet_decides_both_limits_and_local_buckets_cover_outages() {
        use std::sync::Arc;
        use switchyard_router::{InProcessState, OutagePolicy, SharedStateHandle};

        let k = key(Some(10), Some(100));
        let shared =
            SharedStateHandle::new(Arc::new(InProcessState::new()), OutagePolicy::default());
        let (a, b) = (RateLimiter::default(), RateLimiter::default());
        a.configure(std::slice::from_ref(&k));
        b.configure(std::slice::from_ref(&k));
        assert_eq!(a.tokens_per_minute("k"), Some(100));
        assert!(a.admit_key(Some(&shared), &k).await.is_ok());
        // Replica A's answer used 150 tokens: charged to the fleet (and A's bucket).
        a.charge_tokens("k", 150);
        shared.charge_tokens("k", 150, 100).await;
        // Replica B's own bucket is full, but the fleet's tokens are spent.
        assert!(b.admit("k").is_ok());
        let wait = b.admit_key(Some(&shared), &k).await.unwrap_err();
        assert!(wait > Duration::from_secs(29), "{wait:?}");
        // A's bucket alone (what an outage falls back to) refuses as well.
        assert!(a.admit("k").is_err());
    }

    #[test]
    fn reload_keeps_levels_and_drops_removed_keys() {
        let limiter = RateLimiter::default();
        limiter.configure(&[key(Some(1), None)]);
        assert!(limiter.admit("k").is_ok());
        limiter.configure(&[key(Some(1), None)]);
        assert!(limiter.admit("k").is_err());
        limiter.configure(&[]);
        assert!(limiter.admit("k").is_ok());
    }

    #[tokio::test]
    async fn requests_the_fleet_admits_are_charged_to_this_replicas_bucket_too() {
        use std::sync::Arc;
        use switchyard_router::{InProcessState, OutagePolicy, SharedStateHandle};
        // Two requests a minute, both admitted by the shared state.
        let k = key(Some(2), None);
        let shared =
            SharedStateHandle::new(Arc::new(InProcessState::default()), OutagePolicy::default());
        let limiter = RateLimiter::default();
        limiter.configure(std::slice::from_ref(&k));
        assert!(limiter.admit_key(Some(&shared), &k).await.is_ok());
        assert!(limiter.admit_key(Some(&shared), &k).await.is_ok());
        assert!(limiter.admit_key(Some(&shared), &k).await.is_err());
        // This replica's own bucket, which decides while the shared state is unreachable,
        // holds no third request in the minute either.
        assert!(limiter.admit(&k.id).is_err());
    }
}
