//! Health of one provider: cooldown after failures with a growing back-off, half-open
//! retry after it, and the state of the last active probe.

use std::time::{Duration, Instant};

use switchyard_core::ErrorKind;

use crate::record::Health;

#[derive(Debug, Default)]
pub(crate) struct HealthState {
    /// Consecutive failures that counted against health.
    failures: u32,
    /// The current (or last) cooldown.
    cooling: Option<Cooldown>,
    /// The kind of the last failed probe, while it is failing.
    down: Option<ErrorKind>,
    /// The half-open trial in progress (its number), if any: while one request tries a
    /// target whose cooldown ended, others treat it as cooling.
    trial: Option<u64>,
    /// Numbers trials.
    trials: u64,
}

/// A cooldown: when it ends and the kind of the failure that started it.
#[derive(Debug, Clone, Copy)]
struct Cooldown {
    until: Instant,
    reason: ErrorKind,
}

/// The longest cooldown an upstream's `retry-after` can impose.
const MAX_RETRY_AFTER_COOLDOWN: Duration = Duration::from_secs(3600);

/// How the planner sees a provider right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Availability {
    /// Use normally (includes half-open: the cooldown has ended and no trial runs; the
    /// next try decides).
    Available,
    /// Cooling down (or a half-open trial runs): use only as a last resort.
    Cooling,
    /// The last probe failed: use only as a last resort.
    Down,
}

/// The cooldown after the `failures`-th consecutive failure (1-based); the last entry repeats.
pub(crate) fn cooldown_for(failures: u32, schedule_ms: &[u64]) -> Duration {
    let idx = usize::try_from(failures.saturating_sub(1)).unwrap_or(usize::MAX);
    let ms = schedule_ms
        .get(idx)
        .or_else(|| schedule_ms.last())
        .copied()
        .unwrap_or(60_000);
    Duration::from_millis(ms)
}

impl HealthState {
    /// A failure that counts against health: the next cooldown of the schedule starts
    /// (longer if the upstream asked to wait longer with `retry-after`).
    pub(crate) fn on_failure(
        &mut self,
        kind: ErrorKind,
        retry_after: Option<Duration>,
        now: Instant,
        schedule_ms: &[u64],
    ) {
        self.failures = self.failures.saturating_add(1);
        let asked = retry_after
            .unwrap_or_default()
            .min(MAX_RETRY_AFTER_COOLDOWN);
        self.cooling = Some(Cooldown {
            until: now + cooldown_for(self.failures, schedule_ms).max(asked),
            reason: kind,
        });
        self.trial = None;
    }

    /// A cooldown another replica set (read from the shared state): cools until `until`
    /// unless a longer cooldown runs. Failures are not counted (no half-open trial after).
    pub(crate) fn hold(&mut self, until: Instant) {
        if self.cooling.is_none_or(|c| c.until < until) {
            let reason = self.cooling.map_or(ErrorKind::Upstream, |c| c.reason);
            self.cooling = Some(Cooldown { until, reason });
        }
    }

    /// How much longer the current cooldown lasts, if one runs.
    pub(crate) fn cooling_left(&self, now: Instant) -> Option<Duration> {
        self.cooling
            .and_then(|c| c.until.checked_duration_since(now))
            .filter(|d| !d.is_zero())
    }

    pub(crate) fn on_success(&mut self) {
        self.failures = 0;
        self.cooling = None;
        self.down = None;
        self.trial = None;
    }

    /// Claims the half-open trial if the target is half-open (failed before, cooldown
    /// over) and no trial runs; returns its number.
    pub(crate) fn begin_trial(&mut self, now: Instant) -> Option<u64> {
        let half_open = self.failures > 0 && self.cooling.is_none_or(|c| now >= c.until);
        if !half_open || self.trial.is_some() {
            return None;
        }
        self.trials = self.trials.wrapping_add(1);
        self.trial = Some(self.trials);
        Some(self.trials)
    }

    /// Ends trial `id` without a verdict (the request was cancelled or moved on without a
    /// health-relevant outcome).
    pub(crate) fn end_trial(&mut self, id: u64) {
        if self.trial == Some(id) {
            self.trial = None;
        }
    }

    pub(crate) fn on_probe(&mut self, result: Result<(), ErrorKind>) {
        self.down = result.err();
    }

    pub(crate) fn availability(&self, now: Instant) -> Availability {
        if self.cooling.is_some_and(|c| now < c.until) || self.trial.is_some() {
            Availability::Cooling
        } else if self.down.is_some() {
            Availability::Down
        } else {
            Availability::Available
        }
    }

    pub(crate) fn status(&self, now: Instant) -> Health {
        match (self.cooling, self.down) {
            (Some(Cooldown { until, reason }), _) if now < until => Health::Cooling {
                until,
                remaining_ms: u64::try_from((until - now).as_millis()).unwrap_or(u64::MAX),
                reason,
            },
            (_, Some(reason)) => Health::Down { reason },
            _ => Health::Up,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_grows_and_caps() {
        let s = [60_000, 300_000, 1_500_000, 3_600_000];
        assert_eq!(cooldown_for(1, &s), Duration::from_secs(60));
        assert_eq!(cooldown_for(2, &s), Duration::from_secs(300));
        assert_eq!(cooldown_for(3, &s), Duration::from_secs(1500));
        assert_eq!(cooldown_for(4, &s), Duration::from_secs(3600));
        assert_eq!(cooldown_for(40, &s), Duration::from_secs(3600));
    }

    #[test]
    fn cooldown_then_half_open_then_longer() {
        let s = [100, 500];
        let t0 = Instant::now();
        let mut h = HealthState::default();
        assert_eq!(h.availability(t0), Availability::Available);
        h.on_failure(ErrorKind::RateLimited, None, t0, &s);
        assert_eq!(h.availability(t0), Availability::Cooling);
        assert!(matches!(
            h.status(t0),
            Health::Cooling {
                reason: ErrorKind::RateLimited,
                ..
            }
        ));
        let t1 = t0 + Duration::from_millis(101);
        // Half-open: usable again, but one more failure means the longer cooldown.
        assert_eq!(h.availability(t1), Availability::Available);
        h.on_failure(ErrorKind::Overloaded, None, t1, &s);
        assert_eq!(
            h.availability(t1 + Duration::from_millis(499)),
            Availability::Cooling
        );
        assert_eq!(
            h.availability(t1 + Duration::from_millis(501)),
            Availability::Available
        );
        h.on_success();
        h.on_failure(ErrorKind::Overloaded, None, t1, &s);
        assert_eq!(
            h.availability(t1 + Duration::from_millis(101)),
            Availability::Available
        );
    }

    #[test]
    fn one_half_open_trial_at_a_time() {
        let s = [100];
        let t0 = Instant::now();
        let mut h = HealthState::default();
        assert_eq!(h.begin_trial(t0), None, "a healthy target needs no trial");
        h.on_failure(ErrorKind::Upstream, None, t0, &s);
        assert_eq!(h.begin_trial(t0), None, "still cooling");
        let t1 = t0 + Duration::from_millis(150);
        let trial = h.begin_trial(t1).unwrap();
        assert_eq!(
            h.availability(t1),
            Availability::Cooling,
            "others wait for the trial"
        );
        assert_eq!(h.begin_trial(t1), None);
        h.end_trial(trial);
        assert_eq!(h.availability(t1), Availability::Available);
        let again = h.begin_trial(t1).unwrap();
        h.on_success();
        assert_eq!(h.begin_trial(t1), None);
        h.end_trial(again);
        assert_eq!(h.availability(t1), Availability::Available);
    }

    #[test]
    fn retry_after_lengthens_the_cooldown() {
        let t0 = Instant::now();
        let mut h = HealthState::default();
        h.on_failure(
            ErrorKind::RateLimited,
            Some(Duration::from_secs(30)),
            t0,
            &[100],
        );
        assert_eq!(
            h.availability(t0 + Duration::from_secs(29)),
            Availability::Cooling
        );
        assert_eq!(
            h.availability(t0 + Duration::from_secs(31)),
            Availability::Available
        );
        h.on_failure(
            ErrorKind::RateLimited,
            Some(Duration::from_secs(1 << 40)),
            t0,
            &[100],
        );
        assert_eq!(
            h.availability(t0 + Duration::from_secs(3601)),
            Availability::Available
        );
    }

    #[test]
    fn probe_down_and_up() {
        let now = Instant::now();
        let mut h = HealthState::default();
        h.on_probe(Err(ErrorKind::ConnectRefused));
        assert_eq!(h.availability(now), Availability::Down);
        assert_eq!(
            h.status(now),
            Health::Down {
                reason: ErrorKind::ConnectRefused
            }
        );
        h.on_probe(Ok(()));
        assert_eq!(h.status(now), Health::Up);
    }
}
