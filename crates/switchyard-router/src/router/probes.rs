//! Active health probes of every provider.

use super::*;

impl Router {
    /// Starts active health probes (`Provider::health` of every provider every
    /// `health.probe_interval_ms`), if configured and a tokio runtime is running. The task
    /// stops when the last handle of this `Router` is dropped.
    pub fn start_probes(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = Duration::from_millis(self.inner.config.health.probe_interval_ms?);
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let alive: Weak<()> = Arc::downgrade(&self.alive);
        let inner = self.inner.clone();
        Some(runtime.spawn(async move {
            let timeout = interval.clamp(Duration::from_millis(100), Duration::from_secs(10));
            loop {
                if alive.strong_count() == 0 {
                    break;
                }
                probe_all(&inner, timeout).await;
                tokio::time::sleep(interval).await;
            }
        }))
    }
}

/// One round of probes.
async fn probe_all(inner: &Inner, timeout: Duration) {
    let probes = inner.slots.iter().map(|slot| async move {
        let result = match tokio::time::timeout(timeout, slot.provider.health()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.kind()),
            Err(_) => Err(ErrorKind::Timeout(switchyard_core::TimeoutPhase::Total)),
        };
        if let Err(kind) = result {
            tracing::warn!(provider = %slot.id, reason = kind.reason_code(), "health probe failed");
        }
        let up = result.is_ok();
        if let Ok(mut h) = slot.live.health.lock() {
            h.on_probe(result);
        }
        crate::metrics::set_provider_up(&slot.id, up);
    });
    futures::future::join_all(probes).await;
}
