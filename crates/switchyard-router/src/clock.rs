//! Injectable time, so cooldown tests need not wait minutes; and coarse clock reads for
//! ages measured in seconds.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic now (cooldowns, latencies).
    fn now(&self) -> Instant {
        self.at(Instant::now())
    }
    /// This clock's monotonic time at the real instant `real`, for a caller that already
    /// read the real clock (a read is not free: about 35 ns on a KVM guest's TSC).
    fn at(&self, real: Instant) -> Instant;
    /// Wall-clock now (budget windows).
    fn wall(&self) -> SystemTime;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn at(&self, real: Instant) -> Instant {
        real
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that runs normally plus a manual offset: [`ManualClock::advance`] jumps ahead.
#[derive(Debug, Default)]
pub struct ManualClock {
    offset: Mutex<Duration>,
}

impl ManualClock {
    /// A clock at the real time.
    pub fn new() -> Self {
        Self::default()
    }

    /// Moves both clocks forward by `by`.
    pub fn advance(&self, by: Duration) {
        if let Ok(mut o) = self.offset.lock() {
            *o += by;
        }
    }

    fn offset(&self) -> Duration {
        self.offset.lock().map(|o| *o).unwrap_or_default()
    }
}

impl Clock for ManualClock {
    fn at(&self, real: Instant) -> Instant {
        real + self.offset()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }
}

/// Milliseconds on the monotonic clock at the resolution of a scheduler tick (1-10 ms),
/// from an arbitrary origin fixed for the process: Linux's `CLOCK_MONOTONIC_COARSE`, read
/// in about 6 ns where a precise read (`Instant::now`) takes about 35 on a KVM guest's TSC.
/// For ages measured in seconds (a cached handle's expiry), never for latencies. Off
/// Linux: milliseconds since the first call, from `Instant`.
pub fn coarse_monotonic_millis() -> u64 {
    #[cfg(target_os = "linux")]
    {
        millis_of(rustix::time::clock_gettime(
            rustix::time::ClockId::MonotonicCoarse,
        ))
    }
    #[cfg(not(target_os = "linux"))]
    {
        static ORIGIN: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        let origin = *ORIGIN.get_or_init(Instant::now);
        u64::try_from(origin.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// Whole seconds of wall-clock time since the Unix epoch at a scheduler tick's resolution
/// (`CLOCK_REALTIME_COARSE` on Linux, `SystemTime` elsewhere): for a `date` header, which
/// may lag the precise second by a tick. Zero before the epoch.
pub fn coarse_unix_secs() -> u64 {
    #[cfg(target_os = "linux")]
    {
        let now = rustix::time::clock_gettime(rustix::time::ClockId::RealtimeCoarse);
        u64::try_from(now.tv_sec).unwrap_or(0)
    }
    #[cfg(not(target_os = "linux"))]
    {
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }
}

#[cfg(target_os = "linux")]
fn millis_of(t: rustix::time::Timespec) -> u64 {
    let secs = u64::try_from(t.tv_sec).unwrap_or(0);
    let millis = u64::try_from(t.tv_nsec / 1_000_000).unwrap_or(0);
    secs.saturating_mul(1000).saturating_add(millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coarse_clocks_follow_the_precise_ones() {
        let wall = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        assert!(
            coarse_unix_secs().abs_diff(wall) <= 1,
            "the coarse wall clock is the wall clock"
        );

        // The precise read first and last: a preemption between two reads then widens
        // `elapsed`, never the coarse difference alone.
        let precise = Instant::now();
        let before = coarse_monotonic_millis();
        std::thread::sleep(Duration::from_millis(50));
        let after = coarse_monotonic_millis();
        let elapsed = u64::try_from(precise.elapsed().as_millis()).unwrap_or(u64::MAX);
        // A coarse read lags the precise clock by at most a scheduler tick (1-10 ms).
        assert!(after >= before + 40, "{before} -> {after}");
        assert!(
            after - before <= elapsed + 20,
            "{before} -> {after} in {elapsed} ms"
        );
    }
}
