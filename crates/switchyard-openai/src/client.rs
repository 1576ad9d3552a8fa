//! The OpenAI-compatible client: chat (streamed and whole), `/models`, the `Provider` impl.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use switchyard_core::{
    ChatRequest, ChatResponse, ChatStream, EmbedRequest, EmbedResponse, ErrorKind, GenerateRequest,
    ModelInfo, Provider, ProviderError, ToolChoice,
};
use switchyard_http::{
    BaseUrl, DirectClient, Timeouts, UpstreamStreaming, build_client, normalize_base_url,
    read_body_timed, send_request,
};
use switchyard_stream::decoder::RecoveringDecoder;
use switchyard_stream::grain::DeltaGrain;
use switchyard_stream::openai::OpenAiStreamDecoder;
use switchyard_stream::openai::request::{OpenAiRequestOptions, encode_request};
use switchyard_stream::recovery::TextToolCallRecovery;
use tokio::time::Instant;

use crate::config::{OpenAiBuildError, OpenAiConfig, resolve};

/// The largest non-streamed chat answer read (64 MiB).
const MAX_CHAT_BODY: usize = 64 * 1024 * 1024;
/// The largest `/models` answer read (16 MiB).
const MAX_MODELS_BODY: usize = 16 * 1024 * 1024;
/// Bound on a `/models` request (headers and body).
const MODELS_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a discovered model list is reused by `Provider::models`.
const MODELS_MAX_AGE: Duration = Duration::from_secs(300);

/// A client for one OpenAI-compatible server. Cheap to clone (shared inside).
///
/// Implements [`Provider`]: `chat` streams `/chat/completions`, `models` is the static
/// catalog or `/models`, `health` is `GET /models`.
#[derive(Clone)]
pub struct OpenAiClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    base: BaseUrl,
    config: OpenAiConfig,
    chat_url: String,
    /// `chat_url` parsed once, so a request does not parse (and IDNA-map) it again.
    chat_target: Option<reqwest::Url>,
    /// Streamed chats to a plain `http://` upstream without a proxy go through this.
    direct: Option<DirectClient>,
    models_url: String,
    /// The last discovered list and when it was fetched.
    discovered: Mutex<Option<(Instant, Vec<ModelInfo>)>>,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("base_url", &self.inner.base.as_str())
            .field("locality", &self.inner.config.locality)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct ModelList {
    #[serde(default)]
    data: Vec<ListedModel>,
}

#[derive(Deserialize)]
struct ListedModel {
    id: String,
}

impl OpenAiClient {
    /// Builds a client: normalises the base URL (trailing `/` removed), resolves the API
    /// key (config or the named environment variable), checks the config and builds the
    /// HTTP client. No request is sent.
    pub fn new(config: OpenAiConfig) -> Result<OpenAiClient, OpenAiBuildError> {
        let transport = resolve(&config)?;
        let base = normalize_base_url(&config.base_url)?;
        if !base.ends_with_v1() {
            tracing::debug!(
                base_url = %base,
                "the OpenAI-compatible base URL does not end in /v1; using it as given"
            );
        }
        let http = build_client(&transport)?;
        let chat_url = base.join("/chat/completions");
        let models_url = base.join("/models");
        let chat_target = reqwest::Url::parse(&chat_url).ok();
        let direct = DirectClient::for_url(&transport, &chat_url)?;
        Ok(OpenAiClient {
            inner: Arc::new(Inner {
                http,
                base,
                config,
                chat_url,
                chat_target,
                direct,
                models_url,
                discovered: Mutex::new(None),
            }),
        })
    }

    /// The normalised base URL (no trailing `/`).
    pub fn base_url(&self) -> &str {
        self.inner.base.as_str()
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &OpenAiConfig {
        &self.inner.config
    }

    /// The HTTP client (shared by every request of this upstream).
    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.inner.http
    }

    /// `GET /models`: the upstream's model ids, with the static catalog's prices and
    /// limits merged into entries of the same id.
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let url = &self.inner.models_url;
        let timeouts = Timeouts {
            connect: self.inner.config.client.timeouts.connect,
            first_token: MODELS_TIMEOUT,
            idle: MODELS_TIMEOUT,
            total: Some(MODELS_TIMEOUT),
        };
        let started = send_request(self.inner.http.get(url), &timeouts, url).await?;
        let mut response = started.response;
        let bytes = read_body_timed(
            &mut response,
            MAX_MODELS_BODY,
            &timeouts,
            started.started,
            url,
        )
        .await?;
        let list: ModelList = serde_json::from_slice(&bytes).map_err(|e| {
            ProviderError::malformed(format!("{url}: the answer is not a model list: {e}"))
        })?;
        let locality = self.inner.config.locality;
        let models = list
            .data
            .into_iter()
            .map(|listed| {
                let known = self.inner.config.models.iter().find(|m| m.id == listed.id);
                match known {
                    Some(known) => ModelInfo {
                        locality,
                        ..known.clone()
                    },
                    None => ModelInfo::new(listed.id, locality),
                }
            })
            .collect::<Vec<_>>();
        if let Ok(mut cache) = self.inner.discovered.lock() {
            *cache = Some((Instant::now(), models.clone()));
        }
        Ok(models)
    }

    /// Starts a streamed chat (`POST /chat/completions` with `"stream": true` and
    /// `stream_options.include_usage`): returns once the server answered with headers
    /// (errors before output are returned here), then the stream yields events under the
    /// phase timeouts. `request.model` is the upstream model id.
    pub async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.chat_stream_as(request, &request.model).await
    }

    /// [`chat_stream`](Self::chat_stream) with `model` as the upstream model id in place of
    /// `request.model` (the request is not copied).
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
        let body = self.encode(request, model, true)?;
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
            OpenAiStreamDecoder::new().with_grain(grain),
            self.recovery_for(request, model),
        );
        match &self.inner.direct {
            Some(direct) => {
                switchyard_http::chat_stream_direct(direct, body, decoder, timeouts).await
            }
            None => {
                switchyard_http::chat_stream(self.post_chat(body), decoder, timeouts, url).await
            }
        }
    }

    /// A whole (non-streamed) chat: `POST /chat/completions` with `"stream": false`. The
    /// wait for the answer is bounded by the first-token timeout, the body by the idle
    /// timeout; `total` bounds both. Dropping the future closes the upstream request.
    pub async fn complete(&self, request: &ChatRequest) -> Result<ChatResponse, ProviderError> {
        self.complete_as(request, &request.model).await
    }

    /// [`complete`](Self::complete) with `model` as the upstream model id.
    async fn complete_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatResponse, ProviderError> {
        let body = self.encode(request, model, false)?;
        let timeouts = &self.inner.config.client.timeouts;
        let decode = switchyard_stream::openai::decode_response;
        let recovery = self.recovery_for(request, model);
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
                let post = self.post_chat(body);
                switchyard_http::complete(post, timeouts, url, MAX_CHAT_BODY, decode, recovery)
                    .await
            }
        }
    }

    fn encode(
        &self,
        request: &ChatRequest,
        model: &str,
        stream: bool,
    ) -> Result<Vec<u8>, ProviderError> {
        let config = &self.inner.config;
        let options = OpenAiRequestOptions {
            model,
            max_tokens_field: config.max_tokens_field,
            num_ctx: config.num_ctx.map(|n| request.options.num_ctx.unwrap_or(n)),
            stream,
        };
        let mut body = Vec::with_capacity(1024);
        encode_request(request, &options, &mut body).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!("cannot send this request to {}: {e}", self.inner.chat_url),
            )
            .with_source(e)
        })?;
        Ok(body)
    }

    /// Recovery of calls written as text: configured for the upstream model id `model` (the
    /// id this client sends, which the planner also checks, not the client's `request.model`,
    /// which may be a route alias), tools offered, and calls allowed (`tool_choice: none`
    /// forbids them, so text that looks like one stays text).
    fn recovery_for(&self, request: &ChatRequest, model: &str) -> Option<TextToolCallRecovery> {
        let applies = !request.tools.is_empty()
            && !matches!(request.tool_choice, Some(ToolChoice::None))
            && self.inner.config.text_tool_recovery.applies_to(model);
        applies.then(|| TextToolCallRecovery::new(request.tool_names()))
    }

    /// `POST {base}/chat/completions` with a JSON body.
    fn post_chat(&self, body: Vec<u8>) -> reqwest::RequestBuilder {
        let builder = match &self.inner.chat_target {
            Some(url) => self.inner.http.post(url.clone()),
            None => self.inner.http.post(&self.inner.chat_url),
        };
        builder
            .header(
                reqwest::header::CONTENT_TYPE,
                reqwest::header::HeaderValue::from_static("application/json"),
            )
            .body(body)
    }

    fn cached_models(&self) -> Option<(Instant, Vec<ModelInfo>)> {
        self.inner
            .discovered
            .lock()
            .ok()
            .and_then(|cache| cache.clone())
    }
}

#[async_trait]
impl Provider for OpenAiClient {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.chat_stream(request).await
    }

    fn recovers_text_tool_calls(&self, model: &str) -> bool {
        self.inner.config.text_tool_recovery.applies_to(model)
    }

    fn serves_responses(&self, _model: &str) -> bool {
        OpenAiClient::serves_responses(self)
    }

    async fn responses(
        &self,
        body: &[u8],
        model: &str,
        endpoint: switchyard_core::ResponsesEndpoint,
        frames: &switchyard_core::RawFrames,
    ) -> Result<ChatStream, ProviderError> {
        OpenAiClient::responses(self, body, model, endpoint, frames).await
    }

    async fn chat_as(
        &self,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        self.chat_stream_as(request, model).await
    }

    /// The static catalog when configured; otherwise `/models` (reused for five minutes;
    /// when a refresh fails, the last list is returned if there is one).
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        let config = &self.inner.config;
        if !config.models.is_empty() {
            return Ok(config
                .models
                .iter()
                .map(|m| ModelInfo {
                    locality: config.locality,
                    ..m.clone()
                })
                .collect());
        }
        let cached = self.cached_models();
        if let Some((at, models)) = &cached {
            if at.elapsed() < MODELS_MAX_AGE {
                return Ok(models.clone());
            }
        }
        match self.list_models().await {
            Ok(models) => Ok(models),
            Err(error) => match cached {
                Some((_, models)) => {
                    tracing::warn!(error = %error, "listing models failed; serving the last list");
                    Ok(models)
                }
                None => Err(error),
            },
        }
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.list_models().await.map(drop)
    }

    /// `POST {base}/completions`, streamed. Ollama's load call (an empty prompt) is
    /// answered at once with `done_reason: "load"` and no request: `/v1/completions` would
    /// generate from nothing. Ollama's `system`, `images` and `format`, which
    /// `/v1/completions` cannot carry, are refused (`invalid_request`, naming the field)
    /// before any byte is sent.
    async fn generate(
        &self,
        request: &GenerateRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        use switchyard_stream::generate::openai::{
            CompletionsDecoder, check_request, encode_request, is_load_request, load_events,
        };
        if is_load_request(request) {
            return Ok(Box::pin(futures::stream::iter(
                load_events().into_iter().map(Ok),
            )));
        }
        let url = self.inner.base.join("/completions");
        check_request(request).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!("cannot send this request to {url}: {e}"),
            )
            .with_source(e)
        })?;
        let post = self
            .inner
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(encode_request(request, model));
        let timeouts = self.inner.config.client.timeouts;
        switchyard_http::chat_stream(post, CompletionsDecoder::default(), timeouts, &url).await
    }

    /// `POST {base}/embeddings`.
    async fn embed(
        &self,
        request: &EmbedRequest,
        model: &str,
    ) -> Result<EmbedResponse, ProviderError> {
        // Nothing to embed (an Ollama client's empty prompt): OpenAI refuses an empty
        // input, and the answer has no vectors either way.
        if request.input.is_empty() {
            return Ok(EmbedResponse::default());
        }
        let (inner, endpoint) = (&self.inner, &switchyard_stream::embed::openai::ENDPOINT);
        // An empty item of a list (kept in place, so vectors pair with inputs) is refused
        // naming `input[i]`: OpenAI refuses it, and leaving it out would shift the vectors.
        switchyard_stream::embed::openai::check_request(request).map_err(|e| {
            ProviderError::new(
                ErrorKind::InvalidRequest,
                format!(
                    "cannot send this request to {}: {e}",
                    inner.base.join(endpoint.path)
                ),
            )
            .with_source(e)
        })?;
        let timeouts = &inner.config.client.timeouts;
        switchyard_http::embed(&inner.http, &inner.base, timeouts, endpoint, request, model).await
    }
}
