//! Per-provider admission: at most `max_concurrency` in flight, at most `max_queue`
//! waiting, each waiter at most `queue_timeout`. The limits can change on a reload while
//! requests hold slots; the counters stay exact. A provider whose concurrency scope is the
//! fleet is admitted by the shared state too, against every replica's in-flight total.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::shared::{FleetSlot, SharedHandle};

/// Retry hint given with `QueueFull`.
pub(crate) const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);
/// The first pause of a request waiting for a slot of the fleet; it doubles up to
/// [`FLEET_POLL_MAX`] (the store is asked again after each).
const FLEET_POLL_FIRST: Duration = Duration::from_millis(25);
const FLEET_POLL_MAX: Duration = Duration::from_millis(400);

#[derive(Debug)]
pub(crate) struct Admission {
    provider: String,
    /// The provider's gauges (queue depth, in flight, up).
    pub(crate) gauges: crate::metrics::ProviderGauges,
    sem: Arc<Semaphore>,
    max_concurrency: AtomicUsize,
    max_queue: AtomicUsize,
    timeout_ms: AtomicU64,
    waiting: AtomicUsize,
    /// Permits held by requests that must be retired instead of returned (the limit was
    /// lowered while they were in flight).
    debt: AtomicUsize,
    /// Serialises resizes.
    resizing: Mutex<()>,
    /// `max_concurrency` is a limit of the fleet (with shared state).
    fleet_scoped: AtomicBool,
}

/// Decrements the waiting count when a waiter leaves (admitted, timed out or cancelled).
struct WaitGuard<'a>(&'a Admission);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.gauges.publish_queue_depth(|| self.0.queued());
    }
}

/// A slot held by one request; released (and the gauge updated) when dropped.
#[derive(Debug)]
pub(crate) struct SlotPermit {
    permit: Option<OwnedSemaphorePermit>,
    admission: Arc<Admission>,
    /// The fleet's slot, for a fleet-scoped provider (released first, on drop).
    fleet: Option<FleetSlot>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        self.fleet.take();
        if let Some(permit) = self.permit.take() {
            let retire = self
                .admission
                .debt
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
                .is_ok();
            if retire {
                permit.forget();
            }
        }
        let admission = &self.admission;
        admission.gauges.publish_in_flight(|| admission.in_flight());
    }
}

fn clamp(max_concurrency: usize) -> usize {
    max_concurrency.clamp(1, Semaphore::MAX_PERMITS)
}

fn as_millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

impl Admission {
    pub(crate) fn new(
        provider: impl Into<String>,
        max_concurrency: usize,
        max_queue: usize,
        timeout: Duration,
    ) -> Self {
        let max_concurrency = clamp(max_concurrency);
        let provider = provider.into();
        Self {
            gauges: crate::metrics::ProviderGauges::new(&provider),
            provider,
            sem: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency: AtomicUsize::new(max_concurrency),
            max_queue: AtomicUsize::new(max_queue),
            timeout_ms: AtomicU64::new(as_millis(timeout)),
            waiting: AtomicUsize::new(0),
            debt: AtomicUsize::new(0),
            resizing: Mutex::new(()),
            fleet_scoped: AtomicBool::new(false),
        }
    }

    /// Makes `max_concurrency` a limit of the fleet (`true`) or of this replica.
    pub(crate) fn set_fleet_scoped(&self, fleet: bool) {
        self.fleet_scoped.store(fleet, Ordering::Release);
    }

    /// Applies new limits (a reload). Raising the concurrency frees slots at once;
    /// lowering it takes free slots away now and retires busy ones as they are released.
    pub(crate) fn resize(&self, max_concurrency: usize, max_queue: usize, timeout: Duration) {
        let _serial = self.resizing.lock();
        self.max_queue.store(max_queue, Ordering::Release);
        self.timeout_ms.store(as_millis(timeout), Ordering::Release);
        let new = clamp(max_concurrency);
        let old = self.max_concurrency.swap(new, Ordering::AcqRel);
        if new > old {
            let mut grow = new - old;
            // Cancel pending retirements first.
            while grow > 0 {
                match self
                    .debt
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |d| d.checked_sub(1))
                {
                    Ok(_) => grow -= 1,
                    Err(_) => break,
                }
            }
            self.sem.add_permits(grow);
        } else if new < old {
            let shrink = old - new;
            let forgotten = self.sem.forget_permits(shrink);
            self.debt.fetch_add(shrink - forgotten, Ordering::AcqRel);
        }
    }

    pub(crate) fn in_flight(&self) -> usize {
        (self.max_concurrency.load(Ordering::Acquire) + self.debt.load(Ordering::Acquire))
            .saturating_sub(self.sem.available_permits())
    }

    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    fn admitted(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> SlotPermit {
        self.gauges.publish_in_flight(|| self.in_flight());
        SlotPermit {
            permit: Some(permit),
            admission: self.clone(),
            fleet: None,
        }
    }

    /// Takes a slot ([`Admission::acquire`]); for a fleet-scoped provider with `shared`
    /// state, also a slot of the fleet: while the fleet is full the request waits (within
    /// the queue timeout, when `max_queue` allows waiting) or is refused with `QueueFull`.
    /// When the store is unreachable, this replica's limit alone applies (logged).
    pub(crate) async fn acquire_with(
        self: &Arc<Self>,
        shared: Option<&SharedHandle>,
    ) -> Result<SlotPermit, ProviderError> {
        let start = tokio::time::Instant::now();
        let mut permit = self.acquire().await?;
        let Some(shared) = shared.filter(|_| self.fleet_scoped.load(Ordering::Acquire)) else {
            return Ok(permit);
        };
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Acquire));
        let mut pause = FLEET_POLL_FIRST;
        loop {
            let limit = self.max_concurrency.load(Ordering::Acquire);
            match shared.admit_in_flight(&self.provider, limit).await {
                Ok(fleet) => {
                    permit.fleet = fleet;
                    return Ok(permit);
                }
                Err(others) if self.max_queue.load(Ordering::Acquire) == 0 => {
                    return Err(self.fleet_full(others, limit));
                }
                Err(others) => {
                    if start.elapsed() + pause > timeout {
                        return Err(ProviderError::new(
                            ErrorKind::Timeout(TimeoutPhase::Queue),
                            format!(
                                "provider `{}`: waited {} ms for a slot of the fleet ({others} in flight on other replicas, max_concurrency {limit})",
                                self.provider,
                                timeout.as_millis()
                            ),
                        )
                        .with_retry_after(QUEUE_FULL_RETRY_AFTER));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(FLEET_POLL_MAX);
                }
            }
        }
    }

    fn fleet_full(&self, others: u64, limit: usize) -> ProviderError {
        ProviderError::new(
            ErrorKind::QueueFull,
            format!(
                "provider `{}`: the fleet has {} in flight ({others} on other replicas; fleet-wide max_concurrency {limit}, max_queue 0)",
                self.provider,
                others.saturating_add(u64::try_from(self.in_flight().saturating_sub(1)).unwrap_or(0)),
            ),
        )
        .with_retry_after(QUEUE_FULL_RETRY_AFTER)
    }

    /// Takes a slot, waiting in the bounded queue if needed.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<SlotPermit, ProviderError> {
        let provider = self.provider.as_str();
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(self.admitted(p));
        }
        let max_queue = self.max_queue.load(Ordering::Acquire);
        // Join the queue if there is room (bounded by a compare-and-swap loop).
        let joined = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < max_queue).then_some(w + 1)
            })
            .is_ok();
        if !joined {
            return Err(ProviderError::new(
                ErrorKind::QueueFull,
                format!(
                    "provider `{provider}`: {} in flight and {} queued (max_queue {max_queue})",
                    self.in_flight(),
                    self.queued(),
                ),
            )
            .with_retry_after(QUEUE_FULL_RETRY_AFTER));
        }
        let _guard = WaitGuard(self);
        self.gauges.publish_queue_depth(|| self.queued());
        let timeout = Duration::from_millis(self.timeout_ms.load(Ordering::Acquire));
        match tokio::time::timeout(timeout, self.sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(self.admitted(p)),
            Ok(Err(_closed)) => Err(ProviderError::new(
                ErrorKind::Internal,
                format!("provider `{provider}`: admission closed"),
            )),
            Err(_elapsed) => Err(ProviderError::new(
                ErrorKind::Timeout(TimeoutPhase::Queue),
                format!(
                    "provider `{provider}`: waited {} ms in the queue for a free slot",
                    timeout.as_millis()
                ),
            )
            .with_retry_after(QUEUE_FULL_RETRY_AFTER)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::panic)]
    use super::*;

    #[tokio::test]
    async fn bounded_queue_full_and_timeout() {
        let a = Arc::new(Admission::new("p", 1, 1, Duration::from_millis(50)));
        let p1 = a.acquire().await.unwrap();
        assert_eq!(a.in_flight(), 1);
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.acquire().await.map(|_| ()) });
        // Let the waiter queue up.
        for _ in 0..100 {
            if a.queued() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(a.queued(), 1);
        let full = a.acquire().await.unwrap_err();
        assert_eq!(full.kind(), ErrorKind::QueueFull);
        assert!(full.retry_after().is_some());
        let timed_out = waiter.await.unwrap().unwrap_err();
        assert_eq!(timed_out.kind(), ErrorKind::Timeout(TimeoutPhase::Queue));
        assert_eq!(a.queued(), 0);
        drop(p1);
        assert_eq!(a.in_flight(), 0);
        let _p = a.acquire().await.unwrap();
    }

    #[tokio::test]
    async fn resizing_keeps_counts_exact_with_requests_in_flight() {
        let a = Arc::new(Admission::new("p", 3, 0, Duration::from_millis(10)));
        let held: Vec<_> = [
            a.acquire().await.unwrap(),
            a.acquire().await.unwrap(),
            a.acquire().await.unwrap(),
        ]
        .into();
        assert_eq!(a.in_flight(), 3);
        // Lower to 1 while 3 are busy: nothing new gets in until only 0 are busy... then 1.
        a.resize(1, 0, Duration::from_millis(10));
        assert_eq!(a.in_flight(), 3);
        assert_eq!(a.acquire().await.unwrap_err().kind(), ErrorKind::QueueFull);
        let mut held = held;
        held.pop();
        assert_eq!(a.in_flight(), 2);
        assert_eq!(a.acquire().await.unwrap_err().kind(), ErrorKind::QueueFull);
        held.clear();
        assert_eq!(a.in_flight(), 0);
        let one = a.acquire().await.unwrap();
        assert_eq!(a.acquire().await.unwrap_err().kind(), ErrorKind::QueueFull);
        // Raise to 2: one more fits at once.
        a.resize(2, 0, Duration::from_millis(10));
        let two = a.acquire().await.unwrap();
        assert_eq!(a.in_flight(), 2);
        assert_eq!(a.acquire().await.unwrap_err().kind(), ErrorKind::QueueFull);
        drop((one, two));
        assert_eq!(a.in_flight(), 0);
        // Lower then raise before the busy ones finish: the retirement is cancelled.
        let b = Arc::new(Admission::new("q", 2, 0, Duration::from_millis(10)));
        let x = b.acquire().await.unwrap();
        let y = b.acquire().await.unwrap();
        b.resize(1, 0, Duration::from_millis(10));
        b.resize(2, 0, Duration::from_millis(10));
        drop((x, y));
        assert_eq!(b.in_flight(), 0);
        let _x = b.acquire().await.unwrap();
        let _y = b.acquire().await.unwrap();
        assert_eq!(b.in_flight(), 2);
    }
}
