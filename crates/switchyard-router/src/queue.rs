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
    provider: String,
    sem: Arc<Semaphore>,
    max_concurrency: usize,
    max_queue: usize,
    timeout: Duration,
    waiting: AtomicUsize,
}

/// Decrements the waiting count when a waiter leaves (admitted, timed out or cancelled).
struct WaitGuard<'a>(&'a Admission);

impl Drop for WaitGuard<'_> {
    fn drop(&mut self) {
        let left = self
            .0
            .waiting
            .fetch_sub(1, Ordering::AcqRel)
            .saturating_sub(1);
        crate::metrics::set_queue_depth(&self.0.provider, left);
    }
}

/// A slot held by one request; released (and the gauge updated) when dropped.
#[derive(Debug)]
pub(crate) struct SlotPermit {
    permit: Option<OwnedSemaphorePermit>,
    admission: Arc<Admission>,
}

impl Drop for SlotPermit {
    fn drop(&mut self) {
        drop(self.permit.take());
        crate::metrics::set_in_flight(&self.admission.provider, self.admission.in_flight());
    }
}

impl Admission {
    pub(crate) fn new(
        provider: impl Into<String>,
        max_concurrency: usize,
        max_queue: usize,
        timeout: Duration,
    ) -> Self {
        let max_concurrency = max_concurrency.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            provider: provider.into(),
            sem: Arc::new(Semaphore::new(max_concurrency)),
            max_concurrency,
            max_queue,
            timeout,
            waiting: AtomicUsize::new(0),
        }
    }

    pub(crate) fn same_limits(
        &self,
        max_concurrency: usize,
        max_queue: usize,
        timeout: Duration,
    ) -> bool {
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

    fn admitted(self: &Arc<Self>, permit: OwnedSemaphorePermit) -> SlotPermit {
        crate::metrics::set_in_flight(&self.provider, self.in_flight());
        SlotPermit {
            permit: Some(permit),
            admission: self.clone(),
        }
    }

    /// Takes a slot, waiting in the bounded queue if needed.
    pub(crate) async fn acquire(self: &Arc<Self>) -> Result<SlotPermit, ProviderError> {
        let provider = self.provider.as_str();
        if let Ok(p) = self.sem.clone().try_acquire_owned() {
            return Ok(self.admitted(p));
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
        let _guard = WaitGuard(self);
        crate::metrics::set_queue_depth(provider, self.queued());
        match tokio::time::timeout(self.timeout, self.sem.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(self.admitted(p)),
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
}
