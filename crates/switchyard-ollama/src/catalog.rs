//! Model discovery: `/api/tags` enriched by `/api/show` with bounded concurrency and a
//! bounded count, kept as the last good catalog when a refresh fails.

use std::sync::atomic::Ordering;
use std::time::SystemTime;

use futures::StreamExt;
use switchyard_core::{Capabilities, Locality, ModelInfo, ProviderError};

use crate::client::OllamaClient;
use crate::wire::{ShowResponse, TagModel};

/// What a server offers, as of the last successful discovery.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CatalogSnapshot {
    /// Models that can chat (everything except embedding-only models), in `/api/tags`
    /// order. A model whose `/api/show` failed is here with `capabilities: None`.
    pub chat_models: Vec<ModelInfo>,
    /// Embedding-only models, kept out of the chat catalog but listed.
    pub embedding_models: Vec<ModelInfo>,
    /// Set when the last refresh failed: the models above are from the last good one.
    pub stale: Option<ProviderError>,
    /// When the models above were discovered; `None` before the first success.
    pub refreshed: Option<SystemTime>,
    /// Models beyond [`crate::DiscoveryConfig::max_models`] that were left out.
    pub omitted: usize,
    /// Models whose `/api/show` failed (their capabilities are unknown), with the error.
    pub show_failures: Vec<ShowFailure>,
}

impl CatalogSnapshot {
    /// Whether no model at all was found (a reachable server with nothing pulled).
    pub fn is_empty(&self) -> bool {
        self.chat_models.is_empty() && self.embedding_models.is_empty()
    }
}

/// A model whose `/api/show` failed during discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct ShowFailure {
    /// The model's name.
    pub model: String,
    /// Why `/api/show` failed.
    pub error: ProviderError,
}

impl OllamaClient {
    /// Discovers the models: `/api/tags`, then `/api/show` for each (at most
    /// `discovery.concurrency` at a time, at most `discovery.max_models` models). A failed
    /// `/api/show` leaves that model's capabilities unknown; a failed `/api/tags` keeps the
    /// last good catalog, marks it stale with the error and returns the error. An empty
    /// list is a success. Concurrent calls share one discovery: a call that waited for another
    /// one to finish returns that one's result.
    pub async fn refresh_catalog(&self) -> Result<CatalogSnapshot, ProviderError> {
        let waited_since = self.inner.refreshes.load(Ordering::SeqCst);
        let _one_at_a_time = self.inner.refresh.lock().await;
        if self.inner.refreshes.load(Ordering::SeqCst) != waited_since {
            // Another refresh finished while this call waited: its answer is as fresh.
            let current = self.catalog();
            if let Some(error) = current.stale {
                return Err(error);
            }
            return Ok(current);
        }
        let result = self.discover().await;
        self.inner.refreshes.fetch_add(1, Ordering::SeqCst);
        match result {
            Ok(snapshot) => {
                *self.catalog_lock() = snapshot.clone();
                Ok(snapshot)
            }
            Err(error) => {
                tracing::warn!(
                    base_url = %self.base_url(),
                    reason = error.reason_code(),
                    error = %error,
                    "Ollama model discovery failed; keeping the last good catalog"
                );
                self.catalog_lock().stale = Some(error.clone());
                Err(error)
            }
        }
    }

    /// The catalog as of the last refresh (empty, with `refreshed: None`, before the first).
    pub fn catalog(&self) -> CatalogSnapshot {
        self.catalog_lock().clone()
    }

    /// The chat catalog, refreshed first when it is empty or older than
    /// `discovery.max_age`. When that refresh fails, the last good catalog is returned if
    /// there is one (it is marked stale in [`OllamaClient::catalog`]); otherwise the error.
    pub(crate) async fn models_cached(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let current = self.catalog();
        let max_age = self.inner.config.discovery.max_age;
        let fresh = current
            .refreshed
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age < max_age);
        if fresh && !current.chat_models.is_empty() {
            return Ok(current.chat_models);
        }
        match self.refresh_catalog().await {
            Ok(snapshot) => Ok(snapshot.chat_models),
            Err(error) if current.refreshed.is_some() => {
                tracing::debug!(error = %error, "serving the stale Ollama catalog");
                Ok(current.chat_models)
            }
            Err(error) => Err(error),
        }
    }

    async fn discover(&self) -> Result<CatalogSnapshot, ProviderError> {
        let discovery = self.inner.config.discovery;
        let mut tags = self.tags().await?;
        let omitted = tags.len().saturating_sub(discovery.max_models);
        if omitted > 0 {
            tracing::warn!(
                base_url = %self.base_url(),
                listed = discovery.max_models,
                omitted,
                "the Ollama server has more models than discovery.max_models; some are left out"
            );
            tags.truncate(discovery.max_models);
        }
        // Owned names and a cloned handle keep the futures free of borrows (Send-friendly).
        let names: Vec<String> = tags.iter().map(|tag| tag.id().to_owned()).collect();
        let shows: Vec<Result<ShowResponse, ProviderError>> = futures::stream::iter(names)
            .map(|name| {
                let client = self.clone();
                async move { client.show(&name).await }
            })
            .buffered(discovery.concurrency)
            .collect()
            .await;
        let locality = self.inner.config.locality;
        let mut snapshot = CatalogSnapshot {
            refreshed: Some(SystemTime::now()),
            omitted,
            ..CatalogSnapshot::default()
        };
        for (tag, show) in tags.iter().zip(shows) {
            let show = match show {
                Ok(show) => Some(show),
                Err(error) => {
                    tracing::warn!(
                        model = tag.id(),
                        reason = error.reason_code(),
                        error = %error,
                        "/api/show failed; the model's capabilities are unknown"
                    );
                    snapshot.show_failures.push(ShowFailure {
                        model: tag.id().to_owned(),
                        error,
                    });
                    None
                }
            };
            let info = model_info(tag, show.as_ref(), locality);
            if info.capabilities.is_some_and(|c| c.embedding_only()) {
                snapshot.embedding_models.push(info);
            } else {
                snapshot.chat_models.push(info);
            }
        }
        Ok(snapshot)
    }
}

/// One catalog entry from a tag and, when it could be fetched, its `/api/show`.
fn model_info(tag: &TagModel, show: Option<&ShowResponse>, locality: Locality) -> ModelInfo {
    let locality = if runs_in_cloud(tag, show) {
        locality.max(Locality::Cloud)
    } else {
        locality
    };
    let mut info = ModelInfo::new(tag.id(), locality);
    let details = show.map(|s| &s.details);
    let pick = |from_show: Option<&String>, from_tag: &String| -> Option<String> {
        from_show
            .filter(|s| !s.is_empty())
            .or(Some(from_tag).filter(|s| !s.is_empty()))
            .cloned()
    };
    info.family = pick(details.map(|d| &d.family), &tag.details.family);
    info.parameter_size = pick(
        details.map(|d| &d.parameter_size),
        &tag.details.parameter_size,
    );
    info.quantization = pick(
        details.map(|d| &d.quantization_level),
        &tag.details.quantization_level,
    );
    info.capabilities = show.and_then(ShowResponse::capabilities).map(normalise);
    info.context_window = show
        .and_then(ShowResponse::context_window)
        .map(|n| u32::try_from(n).unwrap_or(u32::MAX));
    info.size_bytes = (tag.size > 0).then_some(tag.size);
    info.modified_at = (!tag.modified_at.is_empty()).then(|| tag.modified_at.clone());
    info
}

/// Whether the daemon runs this model on another host (Ollama's own cloud models): a
/// `remote_host` or `remote_model` in `/api/tags` or `/api/show`, or a `cloud` / `*-cloud`
/// tag (`gpt-oss:120b-cloud`, `deepseek-v3.1:671b-cloud`).
pub(crate) fn runs_in_cloud(tag: &TagModel, show: Option<&ShowResponse>) -> bool {
    tag.remote.is_remote() || show.is_some_and(|s| s.remote.is_remote()) || cloud_name(tag.id())
}

/// A `cloud` tag, a tag ending in `-cloud`, or an untagged name ending in `-cloud`.
pub(crate) fn cloud_name(id: &str) -> bool {
    let last = id.rsplit_once(':').map_or(id, |(_, tag)| tag);
    last == "cloud" || last.ends_with("-cloud")
}

/// Ollama lists `completion` for every chat model; a model reporting only `tools` or
/// `vision` still chats.
fn normalise(mut caps: Capabilities) -> Capabilities {
    if !caps.embedding && !caps.completion {
        caps.completion = true;
    }
    caps
}
