//! The Anthropic client: messages (streamed and whole), `/v1/models`, token counting, the
//! `Provider` impl.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_core::{
    ApiFamily, ChatRequest, ChatResponse, ChatStream, ErrorKind, ModelInfo, Provider, ProviderError,
};
use switchyard_http::{
    BaseUrl, Timeouts, build_client, normalize_base_url, read_body_timed, send_request,
};
use switchyard_stream::anthropic::AnthropicStreamDecoder;
use switchyard_stream::anthropic::request::{AnthropicRequestOptions, encode_request};
use switchyard_stream::grain::DeltaGrain;
use tokio::time::Instant;

use crate::config::{AnthropicBuildError, AnthropicConfig, resolve};

/// The largest non-streamed answer read (64 MiB).
const MAX_MESSAGE_BODY: usize = 64 * 1024 * 1024;
/// The largest `/v1/models` or `count_tokens` answer read (4 MiB).
const MAX_SMALL_BODY: usize = 4 * 1024 * 1024;
/// Bound on a `/v1/models` or `count_tokens` request.
const SMALL_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a discovered model list is reused by `Provider::models`.
const MODELS_MAX_AGE: Duration = Duration::from_secs(300);
/// The members `count_tokens` accepts (it refuses `max_tokens`, `stream` and the rest).
const COUNT_TOKENS_FIELDS: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "thinking",
    "mcp_servers",
];

/// A client for one Anthropic Messages upstream. Cheap to clone (shared inside).
///
/// Implements [`Provider`]: `chat` streams `/v1/messages`, `models` is the static catalog
/// or `/v1/models`, `health` is `GET /v1/models`.
#[derive(Clone)]
pub struct AnthropicClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: BaseUrl,
    config: AnthropicConfig,
    messages_url: String,
    count_url: String,
    models_url: String,
    /// The last discovered list and when it was fetched.
    discovered: Mutex<Option<(Instant, Vec<ModelInfo>)>>,
}

impl std::fmt::Debug for AnthropicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AnthropicClient")
            .field("base_url", &self.inner.base.as_str())
            .field("version", &self.inner.config.version)
            .field("locality", &self.inner.config.locality)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ModelPage {
    #[serde(default)]
    data: Vec<ListedModel>,
}

#[derive(Deserialize)]
struct ListedModel {
    id: String,
}

#[derive(Deserialize)]
struct TokenCount {
    input_tokens: u64,
}

/// A 404 from Anthropic's `/v1/messages` names a model it does not know
/// (`not_found_error`, "model: claude-x"): classified as `model_not_found`, so a route can
/// fall back, rather than as a missing endpoint.
fn anthropic_error(err: ProviderError) -> ProviderError {
    if err.kind() != ErrorKind::EndpointNotFound || err.upstream_code() != Some("not_found_error") {
        return err;
    }
    let mut mapped = ProviderError::new(ErrorKind::ModelNotFound, err.message().to_owned());
    if let Some(status) = err.status() {
        mapped = mapped.with_status(status);
    }
    mapped.with_upstream_code("not_found_error")
}

impl AnthropicClient {
    /// Builds a client: normalises the base URL (a trailing `/` or `/v1` removed), adds
    /// `x-api-key`, `anthropic-version` and `anthropic-beta`, checks the config and builds
    /// the HTTP client. No request is sent.
    pub fn new(config: AnthropicConfig) -> Result<AnthropicClient, AnthropicBuildError> {
        let transport = resolve(&config)?;
        let base = normalize_base_url(&config.base_url)?.without_v1();
        let http = build_client(&transport)?;
        Ok(AnthropicClient {
            inner: Arc::new(Inner {
                http,
                messages_url: base.join("/v1/messages"),
                count_url: base.join("/v1/messages/count_tokens"),
                models_url: base.join("/v1/models"),
                base,
                config,
                discovered: Mutex::new(None),
            }),
        })
    }

    /// The normalised base URL (no trailing `/`, no `/v1`).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &AnthropicConfig {
        &self.inner.config
    }

    /// `GET /v1/models`: the upstream's model ids, with the static catalog's prices and
    /// limits merged into entries of the same id.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let bytes = self
            .small_request(
                self.inner.http.get(&self.inner.models_url),
                &self.inner.models_url,
            )
            .await?;
        let page: ModelPage = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::malformed(format!(
                "{}: the answer is not a model list: {e}",
                self.inner.models_url
            ))
        })?;
        let config = &self.inner.config;
        let models: Vec<ModelInfo> = page
            .data
            .into_iter()
            .map(|listed| {
                let known = config.models.iter().find(|m| m.id == listed.id).cloned();
                let mut info = known.unwrap_or_else(|| ModelInfo::new(listed.id, config.locality));
                info.locality = config.locality;
                info
            })
            .collect();
        if let Ok(mut slot) = self.inner.discovered.lock() {
            *slot = Some((Instant::now(), models.clone()));
        }
        Ok(models)
    }

    /// `POST /v1/messages/count_tokens` for `request` as it would be sent to `model`: the
    /// upstream's count of its input tokens.
    pub async fn count_tokens(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<u64, ProviderError> {
        let body = self.encode(request, model, false)?;
        let members: BTreeMap<String, &RawValue> = serde_json::from_slice(&body)
            .map_err(|e| ProviderError::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let kept: BTreeMap<&str, &RawValue> = members
            .iter()
            .filter(|(k, _)| COUNT_TOKENS_FIELDS.contains(&k.as_str()))
            .map(|(k, v)| (k.as_str(), *v))
            .collect();
        let body = serde_json::to_vec(&kept)
            .map_err(|e| ProviderError::new(ErrorKind::InvalidRequest, e.to_string()))?;
        let url = &self.inner.count_url;
        let bytes = self
            .small_request(self.post_for(request, url, body), url)
            .await?;
        let count: TokenCount = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::malformed(format!("{url}: the answer is not a token count: {e}"))
        })?;
        Ok(count.input_tokens)
    }

    /// A whole (non-streamed) message: `POST /v1/messages` with `"stream": false`.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        let body = self.encode(request, &request.model, false)?;
        let url = &self.inner.messages_url;
        switchyard_http::complete(
            self.post_for(request, url, body),
            &self.inner.config.client.timeouts,
            url,
            MAX_MESSAGE_BODY,
            switchyard_stream::anthropic::decode_response,
            None,
        )
        .await
        .map_err(anthropic_error)
    }

    fn encode(
        &self,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError> {
        let options = AnthropicRequestOptions {
            model,
            stream,
            default_max_tokens: self.inner.config.default_max_tokens,
        };
        let mut body = Vec::with_capacity(1024);
        encode_request(request, &options, &mut body).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "cannot send this request to {}: {e}",
                    self.inner.messages_url
                ),
            )
            .with_source(e)
        })?;
        Ok(body)
    }

    fn post_json(&self, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// [`post_json`](Self::post_json) with the `anthropic-beta` values of an Anthropic
    /// client added to the configured ones (each value once).
    fn post_for(&self, request: &ChatRequest, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        let post = self.post_json(url, body);
        let from_client = request
            .meta
            .anthropic_beta
            .as_deref()
            .filter(|_| request.meta.client_api == Some(ApiFamily::Anthropic));
        let Some(from_client) = from_client else {
            return post;
        };
        let mut values: Vec<&str> = self.inner.config.beta.iter().map(String::as_str).collect();
        for v in from_client
            .split(',')
            .map(str::trim)
            .filter(|v| !v.is_empty())
        {
            if !values.contains(&v) {
                values.push(v);
            }
        }
        post.header("anthropic-beta", values.join(","))
    }

    /// Sends a small request and reads its whole answer under [`SMALL_TIMEOUT`].
    async fn small_request(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<Vec<u8>, ProviderError> {
        let timeouts = Timeouts {
            connect: self.inner.config.client.timeouts.connect,
            first_token: SMALL_TIMEOUT,
            idle: SMALL_TIMEOUT,
            total: Some(SMALL_TIMEOUT),
        };
        let started = send_request(request, &timeouts, url)
            .await
            .map_err(anthropic_error)?;
        let mut response = started.response;
        let bytes = read_body_timed(
            &mut response,
            MAX_SMALL_BODY,
            &timeouts,
            started.started,
            url,
        )
        .await?;
        Ok(bytes.to_vec())
    }

    /// The discovered list when it is recent enough (or, with `stale`, whatever is kept).
    fn remembered(&self, stale: bool) -> Option<Vec<ModelInfo>> {
        let slot = self.inner.discovered.lock().ok()?;
        let (at, models) = slot.as_ref()?;
        (stale || at.elapsed() < MODELS_MAX_AGE).then(|| models.clone())
    }
}

/// `chat` streams a message (`POST /v1/messages` with `"stream": true`) and returns once
/// the server answered with headers (errors before output are returned here); the stream
/// then yields events under the phase timeouts. `models` is the static catalog when one is
/// configured, else `/v1/models`, kept for five minutes (and served stale when a refresh
/// fails).
#[async_trait]
impl Provider for AnthropicClient {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.chat_as(request, &request.model).await
    }

    async fn chat_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        let body = self.encode(request, model, true)?;
        let url = &self.inner.messages_url;
        tracing::debug!(url = %url, model = %model, "streamed messages request");
        let timeouts = self.inner.config.client.timeouts;
        let post = self.post_for(request, url, body);
        // A client that asked for a whole answer folds the stream: its deltas are merged
        // as they are decoded.
        let decoder =
            AnthropicStreamDecoder::new().with_grain(DeltaGrain::for_client(request.stream));
        let started = switchyard_http::chat_stream(post, decoder, timeouts, url);
        started.await.map_err(anthropic_error)
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let config = &self.inner.config;
        if !config.models.is_empty() {
            let mut models = config.models.clone();
            models.iter_mut().for_each(|m| m.locality = config.locality);
            return Ok(models);
        }
        if let Some(models) = self.remembered(false) {
            return Ok(models);
        }
        let listed = self.list_models().await;
        listed.or_else(|error| {
            let kept = self.remembered(true).ok_or_else(|| error.clone())?;
            tracing::warn!(error = %error, "listing models failed; serving the last list");
            Ok(kept)
        })
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.list_models().await.map(drop)
    }

    async fn count_tokens(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<Option<u64>, ProviderError> {
        // The inherent method (inherent methods win over the trait's of the same name).
        AnthropicClient::count_tokens(self, request, model)
            .await
            .map(Some)
    }
}
