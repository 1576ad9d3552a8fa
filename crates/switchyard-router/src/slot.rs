//! Providers as the router sees them, and their live state (kept across reloads).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use switchyard_core::{Locality, ModelInfo, Provider, ProviderError};

use crate::health::HealthState;
use crate::queue::Admission;
use crate::router::names::same_model;
use crate::ttft::TtftWindow;

/// A provider as the router sees it (the binary builds these from its config).
#[derive(Clone)]
pub struct ProviderSlot {
    /// The provider's id, the `provider` in `provider/model`. No `/`.
    pub id: String,
    /// The client.
    pub provider: Arc<dyn Provider>,
    /// Where it runs: decides which privacy classes may use it.
    pub locality: Locality,
    /// Requests in flight at most.
    pub max_concurrency: usize,
    /// Whether `max_concurrency` bounds this replica or (with shared state) the fleet.
    pub concurrency_scope: ConcurrencyScope,
    /// Requests waiting for a slot at most; more are refused with `QueueFull`.
    pub max_queue: usize,
    /// How long a request may wait for a slot (`Timeout(Queue)` after).
    pub queue_timeout: Duration,
    /// Statically configured models, with prices; discovered ones come from
    /// `provider.models()`.
    pub models: Vec<ModelInfo>,
}

impl fmt::Debug for ProviderSlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProviderSlot")
            .field("id", &self.id)
            .field("locality", &self.locality)
            .field("max_concurrency", &self.max_concurrency)
            .field("concurrency_scope", &self.concurrency_scope)
            .field("max_queue", &self.max_queue)
            .field("queue_timeout", &self.queue_timeout)
            .field("models", &self.models.len())
            .finish_non_exhaustive()
    }
}

impl ProviderSlot {
    /// A slot with defaults: 4 in flight, 16 queued, 30 s queue timeout, no static models.
    pub fn new(id: impl Into<String>, provider: Arc<dyn Provider>, locality: Locality) -> Self {
        Self {
            id: id.into(),
            provider,
            locality,
            max_concurrency: 4,
            concurrency_scope: ConcurrencyScope::Replica,
            max_queue: 16,
            queue_timeout: Duration::from_secs(30),
            models: Vec::new(),
        }
    }
}

/// What a provider's `max_concurrency` bounds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConcurrencyScope {
    /// This replica's requests (queues are always per replica).
    #[default]
    Replica,
    /// Every replica's requests together, counted in the shared state; without shared
    /// state (or while it is unreachable) the same as `Replica`.
    Fleet,
}

/// How long a discovered catalog is reused.
pub(crate) const CATALOG_TTL: Duration = Duration::from_secs(30);

/// State of a provider that survives a reload when its id persists.
#[derive(Debug, Default)]
pub(crate) struct Live {
    pub(crate) health: Mutex<HealthState>,
    pub(crate) ttft: Mutex<TtftWindow>,
    pub(crate) catalog: Mutex<Option<(Instant, Vec<ModelInfo>)>>,
    /// Whether the provider ever answered a model listing: until then it may offer any
    /// name (a bare name is then not sent to the cloud in its place).
    catalog_known: AtomicBool,
    /// The locality of this provider id in the NEWEST config (0 local, 1 lan, 2 cloud);
    /// checked at dispatch by every generation, so a reload that moves a provider to the
    /// cloud takes effect for requests planned before it.
    latest_locality: AtomicU8,
}

fn encode(l: Locality) -> u8 {
    match l {
        Locality::Local => 0,
        Locality::Lan => 1,
        Locality::Cloud => 2,
    }
}

impl Live {
    pub(crate) fn set_latest_locality(&self, l: Locality) {
        self.latest_locality.store(encode(l), Ordering::SeqCst);
    }

    pub(crate) fn latest_locality(&self) -> Locality {
        match self.latest_locality.load(Ordering::SeqCst) {
            0 => Locality::Local,
            1 => Locality::Lan,
            _ => Locality::Cloud,
        }
    }

    pub(crate) fn record_ttft(&self, ms: u64) {
        if let Ok(mut w) = self.ttft.lock() {
            w.push(ms);
        }
    }

    pub(crate) fn ttft_p50(&self) -> Option<u64> {
        self.ttft.lock().ok().and_then(|w| w.p50())
    }

    pub(crate) fn cached_models(&self) -> Option<Vec<ModelInfo>> {
        self.catalog
            .lock()
            .ok()
            .and_then(|c| c.as_ref().map(|(_, m)| m.clone()))
    }
}

/// One provider in one router generation.
#[derive(Debug)]
pub(crate) struct Slot {
    /// The provider's id, shared with every [`crate::TargetRef`] of this slot.
    pub(crate) id: Arc<str>,
    /// The client. Its `chat` is called in exactly one place: `route::dispatch`, right
    /// after the last policy check.
    pub(crate) provider: Arc<dyn Provider>,
    pub(crate) locality: Locality,
    pub(crate) models: Vec<ModelInfo>,
    pub(crate) admission: Arc<Admission>,
    pub(crate) live: Arc<Live>,
}

impl Slot {
    /// The stricter of this generation's locality and the newest config's: a reload that
    /// moves a provider to the cloud applies to requests planned before it.
    pub(crate) fn effective_locality(&self) -> Locality {
        self.locality.max(self.live.latest_locality())
    }

    /// Where `model` runs: the provider's locality, or the model's own when that is more
    /// exposed (an Ollama daemon that runs a `-cloud` model on Ollama's servers).
    pub(crate) fn model_locality(&self, model: &str) -> Locality {
        let provider = self.effective_locality();
        // The name alone can say the model runs elsewhere (Ollama's `*-cloud`), listed or
        // not, configured or discovered.
        if self.provider.runs_in_cloud_by_name(model) {
            return provider.max(Locality::Cloud);
        }
        // The configured entry and the discovered one may disagree (a model written in the
        // config that the daemon reports as remote): the more exposed wins.
        let configured = self
            .find_model(|id| id == model, |m| m.locality)
            .or_else(|| self.find_model(|id| same_model(id, model), |m| m.locality));
        let discovered = self.discovered_locality(model);
        [configured, discovered]
            .into_iter()
            .flatten()
            .fold(provider, Locality::max)
    }

    /// The locality of `model` in the discovered catalog (either spelling of `:latest`).
    fn discovered_locality(&self, model: &str) -> Option<Locality> {
        let catalog = self.live.catalog.lock().ok()?;
        let (_, models) = catalog.as_ref()?;
        models
            .iter()
            .filter(|m| m.id == model || same_model(&m.id, model))
            .map(|m| m.locality)
            .max()
    }

    /// Whether this provider offers `model` (static or cached discovered list), under
    /// either spelling of the implied `:latest` tag.
    pub(crate) fn offers(&self, model: &str) -> bool {
        self.with_model(model, |_| ()).is_some()
    }

    /// The model this provider lists as `model`: the static model info (with its price) if
    /// configured, else a discovered one; a model listed under the other spelling of the
    /// implied `:latest` tag (`x` for `x:latest` and back) only when none is listed under
    /// `model` itself. This is the one place a requested name meets a provider's catalog.
    pub(crate) fn model_info(&self, model: &str) -> Option<ModelInfo> {
        self.with_model(model, ModelInfo::clone)
    }

    /// `read` of the model [`model_info`](Self::model_info) finds, without copying it (the
    /// planner and the router look at a field or two of it on every request).
    pub(crate) fn with_model<R>(&self, model: &str, read: impl Fn(&ModelInfo) -> R) -> Option<R> {
        self.find_model(|id| id == model, &read)
            .or_else(|| self.find_model(|id| same_model(id, model), &read))
    }

    /// The name this provider lists `model` under (what to send upstream), or `model`
    /// itself when it lists it under neither spelling (an unknown catalog).
    pub(crate) fn listed_name(&self, model: &str) -> String {
        self.with_model(model, |m| m.id.clone())
            .unwrap_or_else(|| model.to_owned())
    }

    /// `read` of the first static model, else the first discovered one, whose id `matches`.
    fn find_model<R>(
        &self,
        matches: impl Fn(&str) -> bool,
        read: impl Fn(&ModelInfo) -> R,
    ) -> Option<R> {
        if let Some(m) = self.models.iter().find(|m| matches(&m.id)) {
            return Some(read(m));
        }
        self.live.catalog.lock().ok().and_then(|c| {
            c.as_ref()
                .and_then(|(_, ms)| ms.iter().find(|m| matches(&m.id)).map(&read))
        })
    }

    /// Static models first, then discovered ones not configured statically.
    pub(crate) fn all_models(&self) -> Vec<ModelInfo> {
        let mut all = self.models.clone();
        for m in self.live.cached_models().unwrap_or_default() {
            if !all.iter().any(|s| s.id == m.id) {
                all.push(m);
            }
        }
        all
    }

    /// Whether the provider ever answered a model listing (its catalog is known, if old).
    pub(crate) fn catalog_known(&self) -> bool {
        self.live.catalog_known.load(Ordering::SeqCst)
    }

    /// Whether the discovered catalog is missing or older than [`CATALOG_TTL`].
    pub(crate) fn catalog_stale(&self, now: Instant) -> bool {
        self.live.catalog.lock().map_or(true, |c| {
            c.as_ref()
                .is_none_or(|(at, _)| now.saturating_duration_since(*at) >= CATALOG_TTL)
        })
    }

    /// Asks the provider for its models (bounded by `timeout`) and caches the answer. On
    /// failure the last good list stays, and the attempt is remembered so a failing
    /// provider is not asked again before the TTL.
    pub(crate) async fn refresh_catalog(&self, timeout: Duration) {
        let answer = tokio::time::timeout(timeout, self.provider.models()).await;
        let models = match answer {
            Ok(Ok(models)) => Some(models),
            Ok(Err(e)) => {
                tracing::warn!(provider = %self.id, error = %e, "model discovery failed; keeping the last list");
                None
            }
            Err(_) => {
                tracing::warn!(provider = %self.id, timeout_ms = timeout.as_millis() as u64, "model discovery timed out; keeping the last list");
                None
            }
        };
        if models.is_some() {
            self.live.catalog_known.store(true, Ordering::SeqCst);
        }
        if let Ok(mut c) = self.live.catalog.lock() {
            let keep = c.take().map(|(_, ms)| ms).unwrap_or_default();
            *c = Some((Instant::now(), models.unwrap_or(keep)));
        }
    }

    /// Records a failure of this provider (before or after the first event): a failure
    /// that says something about its health starts or extends its cooldown and marks it
    /// down in the `provider_up` gauge. Others (unknown model, budget, queue) change nothing.
    pub(crate) fn record_failure(&self, error: &ProviderError, now: Instant, cooldowns_ms: &[u64]) {
        if !error.kind().counts_against_health() {
            return;
        }
        if let Ok(mut h) = self.live.health.lock() {
            h.on_failure(error.kind(), error.retry_after(), now, cooldowns_ms);
        }
        self.admission.gauges.set_up(false);
    }

    /// The load used for balancing: in flight plus queued.
    pub(crate) fn load(&self) -> usize {
        self.admission.in_flight() + self.admission.queued()
    }
}
