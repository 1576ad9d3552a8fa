//! The Ollama client: chat (streamed and whole), metadata endpoints, the `Provider` impl.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use serde::de::DeserializeOwned;
use switchyard_core::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, ErrorKind, GenerateRequest,
    KeepAlive, LoadedModel, ModelInfo, Provider, ProviderError, PullStream, ToolChoice,
};
use switchyard_http::{
    BaseUrl, DirectClient, Timeouts, UpstreamStreaming, build_client, normalize_base_url,
    read_body_timed, send_request,
};
use switchyard_stream::decoder::RecoveringDecoder;
use switchyard_stream::grain::DeltaGrain;
use switchyard_stream::ollama::OllamaStreamDecoder;
use switchyard_stream::recovery::TextToolCallRecovery;

use crate::catalog::CatalogSnapshot;
use crate::config::{OllamaBuildError, OllamaConfig, check_discovery};
use crate::wire::{
    PsResponse, RunningModel, ShowResponse, TagModel, TagsResponse, VersionResponse,
};

/// The largest non-streamed chat answer read (64 MiB).
const MAX_CHAT_BODY: usize = 64 * 1024 * 1024;
/// The largest metadata answer read (`/api/tags`, `/api/show`...): 32 MiB.
const MAX_METADATA_BODY: usize = 32 * 1024 * 1024;

/// A client for one Ollama server's native API. Cheap to clone (shared inside); the
/// connection pool and the model catalog are shared by the clones.
///
/// Implements [`Provider`]: `chat` streams `/api/chat`, `models` is the discovered chat
/// catalog, `health` is `GET /api/version`.
#[derive(Clone)]
pub struct OllamaClient {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) http: reqwest::Client,
    pub(crate) base: BaseUrl,
    pub(crate) config: OllamaConfig,
    pub(crate) chat_url: String,
    /// Streamed chats to a plain `http://` server without a proxy go through this.
    pub(crate) direct: Option<DirectClient>,
    pub(crate) catalog: Mutex<CatalogSnapshot>,
    pub(crate) refresh: tokio::sync::Mutex<()>,
    /// Finished discoveries, to let callers that waited share the result.
    pub(crate) refreshes: AtomicU64,
}

impl std::fmt::Debug for OllamaClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OllamaClient")
            .field("base_url", &self.inner.base.as_str())
            .field("locality", &self.inner.config.locality)
            .finish_non_exhaustive()
    }
}

impl OllamaClient {
    /// Builds a client: normalises the base URL (a trailing `/` removed; a trailing `/v1`
    /// removed with a warning), checks the discovery limits and builds the HTTP client
    /// (TLS roots, CA file, headers). No request is sent.
    pub fn new(config: OllamaConfig) -> Result<OllamaClient, OllamaBuildError> {
        check_discovery(&config.discovery)?;
        let mut base = normalize_base_url(&config.base_url)?;
        if base.ends_with_v1() {
            tracing::warn!(
                base_url = %base,
                "the Ollama base URL ends in /v1 (the OpenAI layer); the native API is used, so /v1 is removed"
            );
            base = base.without_v1();
        }
        let http = build_client(&config.client)?;
        let chat_url = base.join("/api/chat");
        let direct = DirectClient::for_url(&config.client, &chat_url)?;
        Ok(OllamaClient {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                chat_url,
                direct,
                catalog: Mutex::new(CatalogSnapshot::default()),
                refresh: tokio::sync::Mutex::new(()),
                refreshes: AtomicU64::new(0),
            }),
        })
    }

    /// The normalised base URL (no trailing `/`, no `/v1`).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &OllamaConfig {
        &self.inner.config
    }

    /// `GET /api/version`: the server's version (`0.12.6`).
    pub async fn version(&self) -> Result<String, ProviderError> {
        let url = self.inner.base.join("/api/version");
        let answer: VersionResponse = self.get_json(self.inner.http.get(&url), &url).await?;
        Ok(answer.version)
    }

    /// `GET /api/ps`: the models loaded in memory now (warm); any other pulled model is
    /// cold and pays a load before its first token.
    pub async fn ps(&self) -> Result<Vec<RunningModel>, ProviderError> {
        let url = self.inner.base.join("/api/ps");
        let answer: PsResponse = self.get_json(self.inner.http.get(&url), &url).await?;
        Ok(answer.models)
    }

    /// `GET /api/tags`: every pulled model.
    pub async fn tags(&self) -> Result<Vec<TagModel>, ProviderError> {
        let url = self.inner.base.join("/api/tags");
        let answer: TagsResponse = self.get_json(self.inner.http.get(&url), &url).await?;
        Ok(answer.models)
    }

    /// `POST /api/show` for `model`: capabilities, context length, parameters, details.
    pub async fn show(&self, model: &str) -> Result<ShowResponse, ProviderError> {
        let url = self.inner.base.join("/api/show");
        let body = serde_json::json!({ "model": model }).to_string();
        let request = self
            .inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        self.get_json(request, &url)
            .await
            .map_err(|e| e.context(format_args!("model `{model}`")))
    }

    /// A whole (non-streamed) chat: `POST /api/chat` with `"stream": false`. The wait for
    /// the answer is bounded by the first-token timeout (the model generates everything
    /// before answering), the body by the idle timeout; `total` bounds both. Dropping the
    /// future closes the upstream request. `request.model` is the upstream model name.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.complete_as(request, &request.model).await
    }

    /// [`complete`](Self::complete) with `model` as the upstream model name.
    async fn complete_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        let body = encode(request, model, false)?;
        let timeouts = &self.inner.config.client.timeouts;
        let decode = switchyard_stream::ollama::decode_response;
        let recovery = self.recovery_for(request);
        match &self.inner.direct {
            Some(direct) => {
                switchyard_http::complete_direct(
                    direct,
                    body,
                    timeouts,
                    MAX_CHAT_BODY,
                    decode,
                    recovery,
                )
                .await
            }
            None => {
                let url = &self.inner.chat_url;
                let post = self.post_json(url, body);
                switchyard_http::complete(post, timeouts, url, MAX_CHAT_BODY, decode, recovery)
                    .await
            }
        }
    }

    /// Starts a streamed chat (`POST /api/chat`): returns once the server answered with
    /// headers (errors before output are returned here), then the stream yields events
    /// under the phase timeouts. `request.model` is the upstream model name.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.chat_stream_as(request, &request.model).await
    }

    /// [`chat_stream`](Self::chat_stream) with `model` as the upstream model name in place
    /// of `request.model` (the request is not copied).
    ///
    /// With `upstream_streaming: AsClient` and a request that is not streamed, the upstream
    /// is asked for the whole answer and the stream replays its events.
    pub async fn chat_stream_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        if !request.stream
            && self.inner.config.client.upstream_streaming == UpstreamStreaming::AsClient
        {
            let answer = self.complete_as(request, model).await?;
            return Ok(switchyard_http::answer_stream(&answer));
        }
        let body = encode(request, model, true)?;
        let timeouts = self
            .inner
            .config
            .client
            .timeouts
            .for_tools(!request.tools.is_empty());
        let url = &self.inner.chat_url;
        tracing::debug!(url = %url, model = %model, "streamed chat request");
        // A client that asked for a whole answer folds the stream: its deltas are merged
        // as they are decoded.
        let grain = DeltaGrain::for_client(request.stream);
        let decoder = RecoveringDecoder::new(
            OllamaStreamDecoder::new().with_grain(grain),
            self.recovery_for(request),
        );
        match &self.inner.direct {
            Some(direct) => {
                switchyard_http::chat_stream_direct(direct, body, decoder, timeouts).await
            }
            None => {
                switchyard_http::chat_stream(self.post_json(url, body), decoder, timeouts, url)
                    .await
            }
        }
    }

    /// Recovery of calls written as text: configured, tools offered, and calls allowed
    /// (`tool_choice: none` forbids them, so text that looks like one stays text).
    fn recovery_for(&self, request: &ChatRequest) -> Option<TextToolCallRecovery> {
        let applies = self.inner.config.text_tool_recovery
            && !request.tools.is_empty()
            && !matches!(request.tool_choice, Some(ToolChoice::None));
        applies.then(|| TextToolCallRecovery::new(request.tool_names()))
    }

    fn post_json(&self, url: &str, body: Vec<u8>) -> reqwest::RequestBuilder {
        self.inner
            .http
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
    }

    /// Timeouts of metadata requests: the configured connect timeout, and the discovery
    /// request timeout for the answer and its body.
    fn metadata_timeouts(&self) -> Timeouts {
        let limit = self.inner.config.discovery.request_timeout;
        Timeouts {
            connect: self.inner.config.client.timeouts.connect,
            first_token: limit,
            idle: limit,
            total: Some(limit),
        }
    }

    async fn get_json<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
        url: &str,
    ) -> Result<T, ProviderError> {
        let timeouts = self.metadata_timeouts();
        let started = send_request(request, &timeouts, url).await?;
        let mut response = started.response;
        let bytes = read_body_timed(
            &mut response,
            MAX_METADATA_BODY,
            &timeouts,
            started.started,
            url,
        )
        .await?;
        serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::malformed(format!(
                "{url}: the answer is not the JSON Ollama sends: {e}"
            ))
        })
    }

    pub(crate) fn catalog_lock(&self) -> MutexGuard<'_, CatalogSnapshot> {
        self.inner
            .catalog
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

fn encode(request: &ChatRequest, model: &str, stream: bool) -> Result<Vec<u8>, ProviderError> {
    switchyard_stream::ollama::request::encode_request(request, model, stream).map_err(|e| {
        ProviderError::new(
            ErrorKind::InvalidRequest,
            format!("cannot send this request to Ollama: {e}"),
        )
        .with_source(e)
    })
}

#[async_trait]
impl Provider for OllamaClient {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.chat_stream(request).await
    }

    fn recovers_text_tool_calls(&self, _model: &str) -> bool {
        self.inner.config.text_tool_recovery
    }

    fn runs_in_cloud_by_name(&self, model: &str) -> bool {
        crate::catalog::cloud_name(model)
    }

    async fn chat_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        self.chat_stream_as(request, model).await
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        self.models_cached().await
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.version().await.map(drop)
    }

    async fn embed(
        &self,
        request: &EmbedRequest,
        model: &str,
    ) -> Result<EmbedResponse, ProviderError> {
        let (inner, endpoint) = (&self.inner, &switchyard_stream::embed::ollama::ENDPOINT);
        let timeouts = &inner.config.client.timeouts;
        switchyard_http::embed(&inner.http, &inner.base, timeouts, endpoint, request, model).await
    }

    /// `POST /api/generate`, natively (fill-in-the-middle needs the model's own template).
    async fn generate(
        &self,
        request: &GenerateRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        use switchyard_stream::generate::ollama::{GenerateDecoder, encode_request};
        let url = self.inner.base.join("/api/generate");
        let body = encode_request(request, model);
        let decoder = GenerateDecoder::default();
        let timeouts = self.inner.config.client.timeouts;
        switchyard_http::chat_stream(self.post_json(&url, body), decoder, timeouts, &url).await
    }

    async fn server_version(&self) -> Result<Option<String>, ProviderError> {
        self.version().await.map(Some)
    }

    async fn loaded_models(&self) -> Result<Vec<LoadedModel>, ProviderError> {
        self.loaded().await
    }

    async fn pull(&self, model: &str) -> Result<PullStream, ProviderError> {
        self.pull_progress(model).await
    }

    async fn warm(&self, model: &str, keep_alive: Option<&KeepAlive>) -> Result<(), ProviderError> {
        self.load(model, keep_alive).await
    }
}
