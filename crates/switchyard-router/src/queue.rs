//! Per-provider admission: at most `max_concurrency` in flight, at most `max_queue`
//! waiting, each waiter at most `queue_timeout`.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Retry hint given with `QueueFull`.
pub(crate) const QUEUE_FULL_RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(crate) struct Admission {
    sem: Arc<Semaphore>,
    max_concurrency: usize,
    max_queue: usize,
    timeout: Duration,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a waiter leaves (admitted, timed out or cancelled).
struct WaitGuard<'a>(&'a AtomicUsize);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Admission {
    pub(crate) fn new(max_concurrency: usize, max_queue: usize, timeout: Duration) -> Self {
        let max_concurrency = max_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            sem: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            max_queue,
            timeout,
            waiting: AtomicUsize::new(0),
        }
    }

    pub(crate) fn same_limits(&self, max_concurrency: usize, max_queue: usize, timeout: Duration) -> bool {
        self.max_concurrency == max_concurrency.clamp(1, Semaphore::MAX_PERMITS)
            && self.max_queue == max_queue
            && self.timeout == timeout
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.max_concurrency
            .saturating_sub(self.sem.available_permits())
    }

    pub(crate) fn queued(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Takes a slot, waiting in the bounded queue if needed.
    pub(crate) async fn acquire(&self, provider: &str) -> Result<OwnedSemaphorePermit, ProviderError> {
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(p);
        }
        // Join the queue if there is room (bounded by a compare-and-swap loop).
        let joined = self
            .waiting
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |w| {
                (w < self.max_queue).then_some(w + 1)
            })
            .is_ok();
        if !joined {
            return Err(ProviderError::new(
                ErrorKind::QueueFull,
                format!(
                    "provider `{provider}`: {} in flight and {} queued (max_queue {})",
                    self.in_flight(),
                    self.queued(),
                    self.max_queue
                ),
            )
            .with_retry_after(QUEUE_FULL_RETRY_AFTER));
        }
        let _guard = WaitGuard(&self.waiting);
        match tokio::time::timeout(self.timeout, self.sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_closed)) => Err(ProviderError::new(
                ErrorKind::Internal,
                format!("provider `{provider}`: admission closed"),
            )),
            Err(_elapsed) => Err(ProviderError::new(
                ErrorKind::Timeout(TimeoutPhase::Queue),
                format!(
                    "provider `{provider}`: waited {} ms in the queue",
                    self.timeout.as_millis()
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
        let a = Arc::new(Admission::new(1, 1, Duration::from_millis(50)));
        let p1 = a.acquire("p").await.unwrap();
        assert_eq!(a.in_flight(), 1);
        let a2 = a.clone();
        let waiter = tokio::spawn(async move { a2.acquire("p").await.map(|_| ()) });
        // Let the waiter queue up.
        for _ in 0..100 {
            if a.queued() == 1 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(a.queued(), 1);
        let full = a.acquire("p").await.unwrap_err();
        assert_eq!(full.kind(), ErrorKind::QueueFull);
        assert!(full.retry_after().is_some());
        let timed_out = waiter.await.unwrap().unwrap_err();
        assert_eq!(timed_out.kind(), ErrorKind::Timeout(TimeoutPhase::Queue));
        assert_eq!(a.queued(), 0);
        drop(p1);
        assert_eq!(a.in_flight(), 0);
        let _p = a.acquire("p").await.unwrap();
    }
}
