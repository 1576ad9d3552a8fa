//! Injectable time, so cooldown tests need not wait minutes.

use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

/// A source of monotonic and wall-clock time.
pub trait Clock: Send + Sync + fmt::Debug {
    /// Monotonic now (cooldowns, latencies).
    fn now(&self) -> Instant;
    /// Wall-clock now (budget windows).
    fn wall(&self) -> SystemTime;
}

/// The real clocks.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
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
    fn now(&self) -> Instant {
        Instant::now() + self.offset()
    }
    fn wall(&self) -> SystemTime {
        SystemTime::now() + self.offset()
    }
}
