//! Builds what runs from a valid config: one client per provider (wrapped in the router's
//! [`ProviderSlot`]), the [`RouterConfig`], the gateway's [`GatewayConfig`].

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use switchyard_anthropic::{AnthropicClient, AnthropicConfig};
use switchyard_core::{
    Capabilities, ChatRequest, ChatStream, EmbedRequest, EmbedResponse, GenerateRequest, KeepAlive,
    LoadedModel, Locality, ModelInfo, Price, Provider, ProviderError, PullStream, RawFrames,
    ResponsesEndpoint,
};
use switchyard_gateway::{ApiKey, GatewayConfig, ResponseStoreConfig, WarmTarget};
use switchyard_http::{ClientConfig, Timeouts, UpstreamStreaming};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{MaxTokensField, OpenAiClient, OpenAiConfig, TextRecovery};
use switchyard_router::{ProviderSlot, RouterConfig};

use super::error::{ConfigError, ConfigErrorKind};
use super::file::{
    FileConfig, MaxTokensFieldSetting, ModelSection, ProviderApi, ProviderSection,
    TextRecoverySetting, UpstreamStreamingSetting,
};
use super::locate::Segment;

/// Default requests in flight per provider.
const DEFAULT_MAX_CONCURRENCY: usize = 4;
/// Default queue length per provider.
const DEFAULT_MAX_QUEUE: usize = 16;
/// Default wait for a slot.
const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(30);

/// One provider, built.
#[derive(Debug, Clone)]
pub(crate) struct BuiltProvider {
    /// The slot handed to the router.
    pub(crate) slot: ProviderSlot,
    /// Whether the provider's catalog is discovered.
    pub(crate) discover: bool,
}

/// Where a provider runs: as configured, else `local` for a loopback address and `cloud`
/// for anything else (the safe side for `local-only` requests).
pub(crate) fn locality(p: &ProviderSection) -> Locality {
    p.locality.unwrap_or_else(|| {
        let loopback = url::Url::parse(&p.base_url)
            .ok()
            .is_some_and(|u| match u.host() {
                Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                None => false,
            });
        if loopback {
            Locality::Local
        } else {
            Locality::Cloud
        }
    })
}

/// Phase timeouts: the configured ones, defaults otherwise. Cloud APIs answer fast or not
/// at all, so their first-token and idle defaults are shorter than those of local models,
/// which may spend minutes loading weights. The defaults go by what the server is, not by a
/// guessed locality: Ollama always gets the generous ones (an Ollama on a LAN host is
/// still inferred `cloud` for privacy, but it loads weights like any other); an
/// OpenAI-compatible server gets them when its locality is `local` or `lan` (written, or
/// inferred from a loopback address), the short ones otherwise.
pub(crate) fn timeouts(p: &ProviderSection, locality: Locality) -> Timeouts {
    let answers_fast = match p.api {
        ProviderApi::Ollama => false,
        ProviderApi::Openai | ProviderApi::Anthropic => locality == Locality::Cloud,
    };
    let base = if answers_fast {
        Timeouts {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            total: None,
        }
    } else {
        Timeouts::default()
    };
    let t = &p.timeouts;
    Timeouts {
        connect: t.connect_ms.map_or(base.connect, Duration::from_millis),
        first_token: t
            .first_token_ms
            .map_or(base.first_token, Duration::from_millis),
        idle: t.idle_ms.map_or(base.idle, Duration::from_millis),
        total: t.total_ms.map(Duration::from_millis).or(base.total),
    }
}

/// The transport settings of a provider.
pub(crate) fn client_config(p: &ProviderSection, locality: Locality) -> ClientConfig {
    ClientConfig {
        timeouts: timeouts(p, locality),
        bearer_token: p.api_key.as_ref().map(|s| s.value().to_owned()),
        extra_headers: p
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), v.value().to_owned()))
            .collect(),
        ca_file: p.ca_file.clone(),
        upstream_streaming: match p.upstream_streaming {
            Some(UpstreamStreamingSetting::AsClient) => UpstreamStreaming::AsClient,
            Some(UpstreamStreamingSetting::Always) | None => UpstreamStreaming::Always,
        },
        ..ClientConfig::default()
    }
}

/// A statically configured model as the router and clients see it.
pub(crate) fn model_info(m: &ModelSection, locality: Locality) -> ModelInfo {
    let mut info = ModelInfo::new(m.id.clone(), locality);
    // A model whose section states no capability has unknown ones: the router tries it
    // rather than skipping it for lacking `vision` or `thinking` nobody said it lacks.
    let stated = m.tools.is_some() || m.thinking.is_some() || m.vision.is_some();
    info.capabilities = stated.then(|| Capabilities {
        completion: true,
        tools: m.tools.unwrap_or(true),
        thinking: m.thinking.unwrap_or(false),
        vision: m.vision.unwrap_or(false),
        embedding: false,
    });
    info.context_window = m.context_window;
    info.max_output = m.max_output;
    if m.input_usd_per_mtok.is_some() || m.output_usd_per_mtok.is_some() {
        info.price = Some(Price {
            input_usd_per_mtok: m.input_usd_per_mtok.unwrap_or(0.0),
            output_usd_per_mtok: m.output_usd_per_mtok.unwrap_or(0.0),
            cache_read_usd_per_mtok: m.cache_read_usd_per_mtok,
            cache_write_usd_per_mtok: m.cache_write_usd_per_mtok,
        });
    }
    info
}

fn provider_error(id: &str, field: &str, message: String) -> ConfigError {
    let mut path = vec![
        Segment::Key("providers".to_owned()),
        Segment::Key(id.to_owned()),
    ];
    if !field.is_empty() {
        path.push(Segment::Key(field.to_owned()));
    }
    ConfigError::new(ConfigErrorKind::Provider, message).at(path)
}

/// Whether text tool-call recovery runs when `text_tool_recovery` is not written: on for
/// Ollama and for local or LAN OpenAI-compatible servers, where small open models often
/// write calls as text; off for cloud APIs, whose models emit structured calls. Recovery
/// only turns text into calls of tools the request offered and releases anything else
/// unchanged, so it is safe to have on.
fn recovery_by_default(api: ProviderApi, locality: Locality) -> bool {
    api == ProviderApi::Ollama || locality != Locality::Cloud
}

/// The text tool-call recovery in effect for a provider: as written, else by
/// [`recovery_by_default`]. (Ollama's client takes only on or off: a model list there keeps
/// the default.)
pub(crate) fn text_recovery(p: &ProviderSection, locality: Locality) -> TextRecovery {
    let default = || {
        if recovery_by_default(p.api, locality) {
            TextRecovery::On
        } else {
            TextRecovery::Off
        }
    };
    match &p.text_tool_recovery {
        Some(TextRecoverySetting::Flag(true)) => TextRecovery::On,
        Some(TextRecoverySetting::Flag(false)) => TextRecovery::Off,
        Some(TextRecoverySetting::Models(m)) if p.api != ProviderApi::Ollama => {
            TextRecovery::Models(m.clone())
        }
        Some(TextRecoverySetting::Models(_)) | None => default(),
    }
}

/// The field of the output limit as written (`None`: not written; the client sends
/// `max_tokens`).
pub(crate) fn max_tokens_field(p: &ProviderSection) -> Option<MaxTokensField> {
    p.max_tokens_field.map(|f| match f {
        MaxTokensFieldSetting::MaxCompletionTokens => MaxTokensField::MaxCompletionTokens,
        MaxTokensFieldSetting::MaxTokens => MaxTokensField::MaxTokens,
    })
}

/// Builds the client of one provider.
pub(crate) fn build_provider(id: &str, p: &ProviderSection) -> Result<BuiltProvider, ConfigError> {
    let locality = locality(p);
    let client = client_config(p, locality);
    let models: Vec<ModelInfo> = p.models.iter().map(|m| model_info(m, locality)).collect();
    // Discovery by default only when the config lists no models itself.
    let discover = p.discover.unwrap_or(p.models.is_empty());
    let provider: Arc<dyn Provider> = match p.api {
        ProviderApi::Ollama => {
            let mut config = OllamaConfig::new(p.base_url.clone());
            config.client = client;
            config.text_tool_recovery = text_recovery(p, locality) == TextRecovery::On;
            config.locality = locality;
            let ollama = OllamaClient::new(config).map_err(|e| {
                provider_error(id, field_of_client_error(e.reason_code()), e.to_string())
            })?;
            if discover {
                Arc::new(ollama)
            } else {
                Arc::new(CatalogProvider {
                    inner: Arc::new(ollama),
                    catalog: Catalog::Static(models.clone()),
                })
            }
        }
        ProviderApi::Openai => {
            let mut config = OpenAiConfig::new(p.base_url.clone());
            config.client = client;
            config.locality = locality;
            config.max_tokens_field = max_tokens_field(p).unwrap_or(MaxTokensField::MaxTokens);
            config.num_ctx = p.num_ctx;
            config.responses = p.responses;
            config.text_tool_recovery = text_recovery(p, locality);
            config.models = models.clone();
            let client = OpenAiClient::new(config).map_err(|e| {
                provider_error(id, field_of_client_error(e.reason_code()), e.to_string())
            })?;
            match (discover, models.is_empty()) {
                // Asks `/models` (the client does when it has no static list).
                (true, true) => Arc::new(client),
                // Asks `/models` and merges the configured prices and limits in.
                (true, false) => Arc::new(CatalogProvider {
                    inner: Arc::new(client.clone()),
                    catalog: Catalog::Merged(client),
                }),
                (false, _) => Arc::new(CatalogProvider {
                    inner: Arc::new(client),
                    catalog: Catalog::Static(models.clone()),
                }),
            }
        }
        ProviderApi::Anthropic => anthropic_provider(id, p, client, locality, &models, discover)?,
    };
    let mut slot = ProviderSlot::new(id, provider, locality);
    slot.max_concurrency = p.max_concurrency.unwrap_or(DEFAULT_MAX_CONCURRENCY);
    slot.concurrency_scope = p.concurrency_scope;
    slot.max_queue = p.max_queue.unwrap_or(DEFAULT_MAX_QUEUE);
    slot.queue_timeout = p
        .queue_timeout_ms
        .map_or(DEFAULT_QUEUE_TIMEOUT, Duration::from_millis);
    slot.models = models;
    Ok(BuiltProvider { slot, discover })
}

/// The client of an `api: "anthropic"` provider: the key goes out as `x-api-key`; the
/// catalog is `/v1/models` when discovering without a static list, the static list otherwise.
fn anthropic_provider(
    id: &str,
    p: &ProviderSection,
    mut client: ClientConfig,
    locality: Locality,
    models: &[ModelInfo],
    discover: bool,
) -> Result<Arc<dyn Provider>, ConfigError> {
    let mut config = AnthropicConfig::new(p.base_url.clone());
    config.api_key = client.bearer_token.take();
    config.client = client;
    config.locality = locality;
    config.beta = p.anthropic_beta.clone();
    if let Some(version) = &p.anthropic_version {
        config.version = version.clone();
    }
    config.models = models.to_vec();
    let client = AnthropicClient::new(config)
        .map_err(|e| provider_error(id, field_of_client_error(e.reason_code()), e.to_string()))?;
    Ok(if discover || !models.is_empty() {
        Arc::new(client)
    } else {
        Arc::new(CatalogProvider {
            inner: Arc::new(client),
            catalog: Catalog::Static(Vec::new()),
        })
    })
}

/// The config key a client build error is most likely about.
fn field_of_client_error(code: &str) -> &'static str {
    match code {
        "invalid_base_url" => "base_url",
        c if c.contains("header") => "headers",
        c if c.contains("ca") || c.contains("tls") || c.contains("cert") => "ca_file",
        _ => "",
    }
}

/// Builds every provider.
pub(crate) fn build_providers(file: &FileConfig) -> Result<Vec<BuiltProvider>, ConfigError> {
    file.providers
        .iter()
        .map(|(id, p)| build_provider(id, p))
        .collect()
}

/// The routing sections as the router takes them, and the `SWITCHYARD_NO_CLOUD` switch
/// read from the environment now (at every build and reload).
pub(crate) fn router_config(file: &FileConfig) -> RouterConfig {
    RouterConfig {
        routes: file.routes.clone(),
        policy: file.policy.clone(),
        callers: file.callers.clone(),
        health: file.health.clone(),
        retry: file.retry,
        no_cloud: switchyard_router::no_cloud_from_env_value(
            std::env::var(switchyard_router::NO_CLOUD_ENV)
                .ok()
                .as_deref(),
        ),
    }
}

/// The bounds of the Responses API's response store.
pub(crate) fn response_store_config(file: &FileConfig) -> ResponseStoreConfig {
    ResponseStoreConfig {
        ttl: Duration::from_secs(file.responses.ttl_secs),
        max_entries: file.responses.max_entries,
        max_bytes: file.responses.max_bytes,
        max_entry_bytes: file.responses.max_entry_bytes,
    }
}

/// The gateway's settings.
pub(crate) fn gateway_config(file: &FileConfig) -> GatewayConfig {
    let server = &file.server;
    GatewayConfig {
        keys: server
            .keys
            .iter()
            .map(|k| ApiKey {
                id: k.id.clone(),
                token: k.token.value().to_owned(),
                privacy: k.privacy,
                allowed_routes: k.allowed_routes.clone(),
                requests_per_minute: k.requests_per_minute,
                tokens_per_minute: k.tokens_per_minute,
                admin: k.admin,
            })
            .collect(),
        max_body_bytes: server.max_body_bytes,
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        idle_timeout: Duration::from_millis(server.idle_timeout_ms),
        body_read_timeout: Duration::from_millis(server.body_read_timeout_ms),
        max_body_memory_bytes: server.max_body_memory_bytes,
        shutdown_grace: Duration::from_millis(server.shutdown_grace_ms),
        allow_insecure_non_loopback: server.insecure_listen,
        loopback_is_admin: server.loopback_is_admin,
        max_connections: crate::nofile::connection_cap(server.max_connections),
        version: env!("CARGO_PKG_VERSION").to_owned(),
    }
}

/// Where a provider's catalog comes from when it is not its client's own.
#[derive(Debug)]
enum Catalog {
    /// The configured model list (`discover: false`).
    Static(Vec<ModelInfo>),
    /// What an OpenAI-compatible server's `/models` lists, with the configured prices and
    /// limits merged in (`discover: true` and a configured model list).
    Merged(OpenAiClient),
}

/// A provider whose chat and health go to its client and whose catalog is a [`Catalog`].
#[derive(Debug)]
struct CatalogProvider {
    inner: Arc<dyn Provider>,
    catalog: Catalog,
}

#[async_trait]
impl Provider for CatalogProvider {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.inner.chat(request).await
    }

    async fn chat_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        self.inner.chat_as(request, model).await
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        match &self.catalog {
            Catalog::Static(models) => Ok(models.clone()),
            Catalog::Merged(client) => client.list_models().await,
        }
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.inner.health().await
    }

    async fn count_tokens(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<Option<u64>, ProviderError> {
        self.inner.count_tokens(request, model).await
    }

    async fn embed(
        &self,
        request: &EmbedRequest,
        model: &str,
    ) -> Result<EmbedResponse, ProviderError> {
        self.inner.embed(request, model).await
    }

    async fn generate(
        &self,
        request: &GenerateRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        self.inner.generate(request, model).await
    }

    async fn server_version(&self) -> Result<Option<String>, ProviderError> {
        self.inner.server_version().await
    }

    async fn loaded_models(&self) -> Result<Vec<LoadedModel>, ProviderError> {
        self.inner.loaded_models().await
    }

    async fn pull(&self, model: &str) -> Result<PullStream, ProviderError> {
        self.inner.pull(model).await
    }

    async fn warm(&self, model: &str, keep_alive: Option<&KeepAlive>) -> Result<(), ProviderError> {
        self.inner.warm(model, keep_alive).await
    }

    fn recovers_text_tool_calls(&self, model: &str) -> bool {
        self.inner.recovers_text_tool_calls(model)
    }

    fn serves_responses(&self, model: &str) -> bool {
        self.inner.serves_responses(model)
    }

    fn runs_in_cloud_by_name(&self, model: &str) -> bool {
        self.inner.runs_in_cloud_by_name(model)
    }

    async fn responses(
        &self,
        body: &[u8],
        model: &str,
        endpoint: ResponsesEndpoint,
        frames: &RawFrames,
    ) -> Result<ChatStream, ProviderError> {
        self.inner.responses(body, model, endpoint, frames).await
    }
}

/// How long `/readyz` waits for warming models when `warm.timeout_ms` is not set.
pub(crate) const DEFAULT_WARM_TIMEOUT_MS: u64 = 300_000;

/// The models every provider's `warm` section lists, kept loaded for its `keep_alive`
/// (default `-1`: as long as the server runs), and the longest of their timeouts.
pub(crate) fn warm_targets(file: &FileConfig) -> (Vec<WarmTarget>, Duration) {
    let mut targets = Vec::new();
    let mut timeout_ms = 0;
    for (id, p) in &file.providers {
        let Some(warm) = &p.warm else { continue };
        timeout_ms = timeout_ms.max(warm.timeout_ms.unwrap_or(DEFAULT_WARM_TIMEOUT_MS));
        let keep_alive = warm.keep_alive.clone().unwrap_or(KeepAlive::Seconds(-1.0));
        targets.extend(warm.models.iter().map(|m| WarmTarget {
            provider: id.clone(),
            model: m.clone(),
            keep_alive: Some(keep_alive.clone()),
        }));
    }
    (targets, Duration::from_millis(timeout_ms))
}
