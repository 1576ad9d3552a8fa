//! Active health probes of every provider; with shared state, one replica probes a
//! provider per interval and the others use its result.

use super::*;
use crate::shared::{ProbeStep, SharedProbe};

impl Router {
    /// Starts active health probes (`Provider::health` of every provider every
    /// `health.probe_interval_ms`), if configured and a tokio runtime is running. The task
    /// stops when the last handle of this `Router` is dropped. With shared state, a fresh
    /// result another replica published is used instead of probing.
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
                probe_all(&inner, timeout, interval).await;
                tokio::time::sleep(interval).await;
            }
        }))
    }
}

/// One round of probes.
async fn probe_all(inner: &Inner, timeout: Duration, interval: Duration) {
    let probes = inner.slots.iter().map(|slot| async move {
        let shared = inner.shared.as_ref();
        let step = match shared {
            Some(handle) => handle.probe_step(&slot.id, timeout + CLAIM_SLACK).await,
            None => ProbeStep::Probe,
        };
        let (result, source) = match step {
            ProbeStep::Skip => return,
            ProbeStep::Use(shared) => (shared.as_result(), "shared"),
            ProbeStep::Probe => {
                let result = probe(slot, timeout).await;
                if let Some(handle) = shared {
                    let published = result.map_or_else(SharedProbe::Down, |()| SharedProbe::Up);
                    handle.publish_probe(&slot.id, published, interval).await;
                }
                (result, "own")
            }
        };
        ::metrics::counter!(crate::metrics::HEALTH_PROBES_TOTAL, "provider" => slot.id.clone(), "source" => source)
            .increment(1);
        if let Err(kind) = result {
            tracing::warn!(provider = %slot.id, reason = kind.reason_code(), "health probe failed");
        }
        let up = result.is_ok();
        if let Ok(mut h) = slot.live.health.lock() {
            h.on_probe(result);
        }
        slot.admission.gauges.set_up(up);
    });
    futures::future::join_all(probes).await;
}

/// How much longer than the probe timeout a probe claim lasts.
const CLAIM_SLACK: Duration = Duration::from_secs(1);

/// Probes `slot` once, bounded by `timeout`.
async fn probe(slot: &Slot, timeout: Duration) -> Result<(), ErrorKind> {
    match tokio::time::timeout(timeout, slot.provider.health()).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(e.kind()),
        Err(_) => Err(ErrorKind::Timeout(switchyard_core::TimeoutPhase::Total)),
    }
}
