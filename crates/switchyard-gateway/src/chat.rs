//! One chat request, whichever API it arrived on: read and decode the body, fill in who
//! sent it and under which policy, route it, and answer streamed or whole.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use bytes::BytesMut;
use futures::StreamExt as _;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use switchyard_core::{
    ChatEvent, ChatRequest, ErrorKind, PrivacyClass, ProviderError, RequestMeta, ResponseBuilder,
    Role,
};
use switchyard_router::{RoutedStream, TargetRef};
use switchyard_stream::anthropic::AnthropicStreamEncoder;
use switchyard_stream::ollama::OllamaStreamEncoder;
use switchyard_stream::openai::OpenAiStreamEncoder;

use crate::answer_head::RoutingHead;
use crate::api::{Api, ApiError, JSON};
use crate::auth::Caller;
use crate::body::{ChatBody, StreamEncoder, TokenAccount};
use crate::config::ApiKey;
use crate::gateway::Shared;
use crate::telemetry::{millis_header, record_overhead, request_id_of};
use crate::time;

/// Request header that raises a request's privacy class (`local-only`); never lowers it.
pub const PRIVACY_HEADER: HeaderName = HeaderName::from_static("x-switchyard-privacy");
/// Response header: the target that served the request, `provider/model`.
pub const TARGET_HEADER: HeaderName = HeaderName::from_static("x-switchyard-target");
/// Response header: why that target served (`primary`, `fallback_after_<code>`, ...).
pub const ROUTE_REASON_HEADER: HeaderName = HeaderName::from_static("x-switchyard-route-reason");
/// Response header: milliseconds the gateway itself spent before the headers went out
/// (time since the request arrived minus time spent waiting on upstreams); the same figure
/// is recorded in `switchyard_gateway_overhead_seconds`.
pub const OVERHEAD_HEADER: HeaderName = HeaderName::from_static("x-switchyard-overhead-ms");
/// Request header: the task the request is for (`summary`), matched by routes' task rules.
pub const TASK_HEADER: HeaderName = HeaderName::from_static("x-switchyard-task");
/// Response header: how many upstream requests were made for the answer (every target
/// tried, its retries and the serving one included; a target whose own queue refused the
/// request sent none and is not counted).
pub const ATTEMPTS_HEADER: HeaderName = HeaderName::from_static("x-switchyard-attempts");

/// The largest non-streamed answer the gateway assembles (text, reasoning and tool
/// arguments together).
pub(crate) const MAX_WHOLE_ANSWER_BYTES: usize = 64 * 1024 * 1024;

/// Handles a chat request of `api`; every failure is answered in that API's shape.
///
/// Not an `async fn` (nor are the API handlers that call it): each async layer would
/// carry the request's whole future (about 3.5 KB) and copy it when it starts.
pub(crate) fn handle(
    shared: Arc<Shared>,
    api: Api,
    request: Request,
) -> impl Future<Output = Response> + Send {
    use futures::FutureExt as _;
    run(shared, api, request).map(|answered| answered.unwrap_or_else(IntoResponse::into_response))
}

/// A routed request admitted: its body, who sent it and under which policy.
pub(crate) struct Admitted {
    pub(crate) started: Instant,
    pub(crate) body: Bytes,
    pub(crate) caller: Option<Arc<ApiKey>>,
    pub(crate) meta: RequestMeta,
}

/// What every routed request of `api` starts with: the caller's rate limit, the body read
/// within the size limit, and the request's metadata (caller, privacy, request id).
pub(crate) async fn admit(
    shared: &Shared,
    api: Api,
    request: Request,
) -> Result<Admitted, ApiError> {
    let started = Instant::now();
    let request_id = request_id_of(&request);
    let (parts, body) = request.into_parts();
    let caller = parts.extensions.get::<Caller>().and_then(|c| c.0.clone());
    let max_body = shared.settings.load().config.max_body_bytes;
    if let Some(key) = &caller {
        let router = shared.router.load_full();
        shared
            .limiter
            .admit_key(router.shared_state().map(|s| &**s), key)
            .await
            .map_err(|wait| rate_limited(api, key, wait))?;
    }
    let body = read_body(api, &parts.headers, body, max_body).await?;
    let meta = RequestMeta {
        caller: caller.as_ref().map(|k| k.id.clone()),
        privacy: privacy_of(api, caller.as_deref(), &parts.headers)?,
        request_id,
        client_api: Some(api.family()),
        anthropic_beta: crate::anthropic::beta_header(api, &parts.headers),
        task: task_of(&parts.headers),
    };
    Ok(Admitted {
        started,
        body,
        caller,
        meta,
    })
}

async fn run(shared: Arc<Shared>, api: Api, request: Request) -> Result<Response, ApiError> {
    let Admitted {
        started,
        body: bytes,
        caller,
        meta,
    } = admit(&shared, api, request).await?;
    let mut chat = decode(api, &bytes)?;
    drop(bytes);
    check_shape(api, &chat)?;
    chat.meta = meta;
    authorize_model(api, caller.as_deref(), &chat.model)?;

    // Loaded once: this request finishes on this router even if a reload swaps it.
    let router = shared.router.load_full();
    let routed = router
        .route(&chat)
        .await
        .map_err(|failure| crate::skipped::refusal(api, failure))?;
    // Charged if the answer ends without usage (the planner's prompt figure).
    let account = TokenAccount::new(&shared, caller.as_ref().map(|k| k.id.as_str()))
        .with_prompt_estimate(|| switchyard_router::estimated_prompt_tokens(&chat));
    let answer = Answer {
        api,
        // Only an Anthropic stream's `message_start` reports it.
        input_estimate: if api == Api::Anthropic && chat.stream {
            crate::anthropic::estimate_input_tokens(&chat)
        } else {
            0
        },
        model: chat.model,
        request_id: chat.meta.request_id,
        include_usage: chat.include_usage,
        started,
    };
    if chat.stream {
        let mut response = crate::api::routed_response(Body::empty());
        answer.routing_headers(&mut response, &routed);
        let encoder = answer.stream_encoder();
        let body = ChatBody::new(routed, encoder, account, started, router);
        *response.body_mut() = Body::from_stream(body);
        let headers = response.headers_mut();
        match api {
            Api::OpenAi | Api::Anthropic => {
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            }
            Api::Ollama => {
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("application/x-ndjson"),
                );
            }
        }
        headers.insert(
            HeaderName::from_static("x-accel-buffering"),
            HeaderValue::from_static("no"),
        );
        Ok(response)
    } else {
        answer.whole(routed, &account).await
    }
}

/// Refuses (403) a model the caller's key may not use.
pub(crate) fn authorize_model(api: Api, key: Option<&ApiKey>, model: &str) -> Result<(), ApiError> {
    match key.filter(|k| !k.allows_model(model)) {
        None => Ok(()),
        Some(key) => Err(ApiError::new(
            api,
            ProviderError::new(
                ErrorKind::PolicyBlocked,
                format!(
                    "API key `{}` may not use model `{model}` (allowed: {})",
                    key.id,
                    key.allowed_routes.as_deref().unwrap_or_default().join(", ")
                ),
            ),
        )),
    }
}

/// What the answer needs to know about the request.
struct Answer {
    api: Api,
    /// The input-token estimate Anthropic's `message_start` reports (0 for any other
    /// answer, which does not report it).
    input_estimate: u32,
    /// The model as the client named it (echoed in the answer).
    model: String,
    request_id: String,
    include_usage: bool,
    started: Instant,
}

impl Answer {
    /// The encoder of a streamed answer. OpenAI's `created` is whole seconds, read from
    /// the coarse wall clock (a sixth of a precise read's cost); Ollama's `created_at`
    /// carries fractions of a second, so it reads the precise one.
    fn stream_encoder(&self) -> StreamEncoder {
        match self.api {
            Api::OpenAi => StreamEncoder::OpenAi(OpenAiStreamEncoder::new(
                self.model.as_str(),
                self.completion_id(),
                switchyard_router::coarse_unix_secs(),
                self.include_usage,
            )),
            Api::Ollama => StreamEncoder::Ollama(OllamaStreamEncoder::new(
                self.model.as_str(),
                time::rfc3339(SystemTime::now()),
            )),
            Api::Anthropic => StreamEncoder::Anthropic(AnthropicStreamEncoder::new(
                self.model.as_str(),
                self.message_id(),
                self.input_estimate,
            )),
        }
    }

    fn completion_id(&self) -> String {
        prefixed("chatcmpl-", &self.request_id)
    }

    fn message_id(&self) -> String {
        prefixed("msg_", &self.request_id)
    }

    /// Collects the whole answer, then encodes it. An upstream failure before the end is
    /// still an HTTP error here: no byte has gone out yet.
    async fn whole(
        self,
        mut routed: RoutedStream,
        account: &TokenAccount,
    ) -> Result<Response, ApiError> {
        let api = self.api;
        // The routed stream comes with the upstream's first event.
        let first_token = Instant::now();
        let mut builder = ResponseBuilder::default();
        let mut size = 0usize;
        while let Some(event) = routed.next().await {
            let event = event.map_err(|e| ApiError::new(api, e))?;
            match &event {
                ChatEvent::Usage(usage) => account.charge(usage.total_tokens()).await,
                ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } => {
                    size += text.len();
                }
                ChatEvent::ToolCallArgs { fragment, .. } => size += fragment.len(),
                _ => {}
            }
            account.observe(&event);
            if size > MAX_WHOLE_ANSWER_BYTES {
                return Err(ApiError::new(
                    api,
                    ProviderError::malformed(format!(
                        "the answer exceeds {MAX_WHOLE_ANSWER_BYTES} bytes; ask for a streamed answer"
                    )),
                ));
            }
            builder.push(event).map_err(|e| ApiError::new(api, e))?;
            if builder.is_done() {
                // Let the upstream response end (its connection then goes back to the
                // pool); it normally has already, and is never waited for long.
                switchyard_http::Drain::items(&mut routed, crate::body::MAX_DRAIN_ITEMS).await;
                break;
            }
        }
        account.settle().await;
        let mut answer = builder.finish().map_err(|e| ApiError::new(api, e))?;
        if api == Api::Ollama {
            // Durations the upstream did not report are the ones measured here.
            let elapsed = switchyard_stream::ollama::Elapsed {
                to_first_token: first_token.saturating_duration_since(self.started),
                to_end: self.started.elapsed(),
            };
            answer.usage = Some(switchyard_stream::ollama::with_timings(
                answer.usage,
                elapsed,
            ));
        }
        // Room for the envelope (about 300 bytes with usage), the model's name and the text
        // (reasoning is written twice by OpenAI's encoder), so that the body is not grown.
        let thinking = answer.thinking.as_ref().map_or(0, String::len);
        let mut body =
            Vec::with_capacity(512 + self.model.len() + answer.content.len() + 2 * thinking);
        // As in `stream_encoder`: whole seconds from the coarse clock, Ollama's fractions
        // from the precise one.
        match api {
            Api::OpenAi => switchyard_stream::openai::encode_response(
                &answer,
                &self.model,
                &self.completion_id(),
                switchyard_router::coarse_unix_secs(),
                &mut body,
            ),
            Api::Ollama => switchyard_stream::ollama::encode_response(
                &answer,
                &self.model,
                &time::rfc3339(SystemTime::now()),
                &mut body,
            ),
            Api::Anthropic => switchyard_stream::anthropic::encode_response(
                &answer,
                &self.model,
                &self.message_id(),
                &mut body,
            ),
        }
        let mut response = crate::api::routed_response(Body::from(body));
        response.headers_mut().insert(CONTENT_TYPE, JSON);
        self.routing_headers(&mut response, &routed);
        Ok(response)
    }

    fn routing_headers(&self, response: &mut Response, routed: &RoutedStream) {
        routing_headers(response, routed, self.started, self.api);
    }
}

/// Gives `response` the headers naming the target that served, why, the attempts, the
/// overhead and the targets skipped ([`routing_head`]); called once per routed answer, just
/// before its headers go out (for a streamed answer, before its body starts). They ride
/// outside the header map until the head is written ([`crate::answer_head`]).
pub(crate) fn routing_headers(
    response: &mut Response,
    routed: &RoutedStream,
    started: Instant,
    api: Api,
) {
    routing_head(routed, started, api).attach(response);
}

/// The routing headers of `routed` as values.
///
/// The overhead (the gateway's own time before the headers went out: time since
/// `started` minus the upstream wait) is also recorded here in
/// `switchyard_gateway_overhead_seconds{api}`, so the header and the metric are the same
/// figure for whole and streamed answers alike. A stream's later time (the upstream
/// producing, the client reading) is not gateway overhead; the per-chunk cost of a stream
/// is what `cargo xtask bench` measures as CPU per chunk.
pub(crate) fn routing_head(routed: &RoutedStream, started: Instant, api: Api) -> RoutingHead {
    let overhead = overhead(started, routed);
    record_overhead(api, overhead);
    RoutingHead {
        target: target_header(routed.served_by()),
        reason: HeaderValue::from_static(routed.reason().as_str()),
        overhead: millis_header(overhead),
        attempts: HeaderValue::from(routed.upstream_requests()),
        skipped: crate::skipped::skipped_header(routed.skipped()),
    }
}

/// `provider/model` as a header value (one allocation, no `fmt`); `None` when either part
/// has a byte a header value may not carry (`from_maybe_shared` checks as `from_str` does).
fn target_header(target: &TargetRef) -> Option<HeaderValue> {
    let (provider, model) = (target.provider.as_bytes(), target.model.as_bytes());
    let mut value = BytesMut::with_capacity(provider.len() + 1 + model.len());
    value.extend_from_slice(provider);
    value.extend_from_slice(b"/");
    value.extend_from_slice(model);
    HeaderValue::from_maybe_shared(value.freeze()).ok()
}

/// `prefix` followed by `id`, in one allocation and without `fmt`.
fn prefixed(prefix: &str, id: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + id.len());
    out.push_str(prefix);
    out.push_str(id);
    out
}

/// Time since `started` not spent waiting on upstreams.
pub(crate) fn overhead(started: Instant, routed: &RoutedStream) -> Duration {
    started.elapsed().saturating_sub(routed.upstream_wait())
}

/// Reads the body, at most `limit` bytes (413 in the API's shape above; 408 when the
/// client stops sending, 503 over the memory budget of all bodies: see `intake`).
pub(crate) async fn read_body(
    api: Api,
    headers: &HeaderMap,
    body: Body,
    limit: usize,
) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(api, limit));
    }
    let mut body = body;
    // A body in one frame (the fast path's, any small one) is that frame's bytes: no
    // buffer list, no copy. Later frames are appended to one buffer.
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    let mut total = 0usize;
    while let Some(frame) = http_body_util::BodyExt::frame(&mut body).await {
        let frame = frame.map_err(|err| {
            let inner = err.into_inner();
            match crate::intake::intake_error(inner.as_ref()) {
                Some(intake) => crate::intake::refused(api, intake),
                None => ApiError::invalid(api, format!("could not read the request body: {inner}")),
            }
        })?;
        let Ok(data) = frame.into_data() else {
            continue; // trailers
        };
        total = total.saturating_add(data.len());
        if total > limit {
            return Err(too_large(api, limit));
        }
        match (&mut joined, first.take()) {
            (Some(buf), _) => buf.extend_from_slice(&data),
            (None, None) => first = Some(data),
            (None, Some(earlier)) => {
                let mut buf = BytesMut::with_capacity(total);
                buf.extend_from_slice(&earlier);
                buf.extend_from_slice(&data);
                joined = Some(buf);
            }
        }
    }
    Ok(match (joined, first) {
        (Some(buf), _) => buf.freeze(),
        (None, Some(only)) => only,
        (None, None) => Bytes::new(),
    })
}

fn too_large(api: Api, limit: usize) -> ApiError {
    ApiError::with_status(
        api,
        StatusCode::PAYLOAD_TOO_LARGE,
        ProviderError::new(
            ErrorKind::InvalidRequest,
            format!("request body too large: the limit is {limit} bytes"),
        ),
    )
}

fn decode(api: Api, body: &[u8]) -> Result<ChatRequest, ApiError> {
    let decoded = match api {
        Api::OpenAi => switchyard_stream::openai::request::decode_request(body),
        Api::Ollama => switchyard_stream::ollama::request::decode_request(body),
        Api::Anthropic => switchyard_stream::anthropic::request::decode_request(body),
    };
    decoded.map_err(|e| ApiError::invalid(api, format!("invalid request body: {e}")))
}

/// What the codecs accept but no upstream can answer: refused here with the field's path
/// rather than forwarded. `messages` must hold at least one message, and for an Anthropic
/// client one besides the `system` prompt (a top-level field there, which Anthropic does not
/// count: it refuses an empty `messages`); a tool's schema (`parameters`, Anthropic's
/// `input_schema`), when given, must be a JSON Schema object.
pub(crate) fn check_shape(api: Api, chat: &ChatRequest) -> Result<(), ApiError> {
    if chat.messages.is_empty() {
        return Err(ApiError::invalid(
            api,
            "invalid request body: `messages` must be a non-empty array",
        ));
    }
    if api == Api::Anthropic
        && chat.messages.iter().all(|m| m.role == Role::System)
        && !sent_messages(chat)
    {
        return Err(ApiError::invalid(
            api,
            "invalid request body: `messages` must hold at least one message \
             (the `system` prompt is not one)",
        ));
    }
    if let Some(i) = chat
        .tools
        .iter()
        .position(|t| !(t.parameters.is_object() || t.parameters.is_null()))
    {
        let field = match api {
            Api::Anthropic => "input_schema",
            Api::OpenAi | Api::Ollama => "function.parameters",
        };
        return Err(ApiError::invalid(
            api,
            format!("invalid request body: `tools[{i}].{field}` must be a JSON object"),
        ));
    }
    Ok(())
}

/// Whether the client's own body (kept for Anthropic clients) has a non-empty `messages`:
/// a turn of only block types Switchyard does not model (`document`, say) decodes to no
/// message, yet it is one for Anthropic.
fn sent_messages(chat: &ChatRequest) -> bool {
    #[derive(serde::Deserialize)]
    struct Messages {
        #[serde(default)]
        messages: Option<Vec<serde::de::IgnoredAny>>,
    }
    chat.native_body
        .as_deref()
        .and_then(|body| serde_json::from_str::<Messages>(body).ok())
        .and_then(|b| b.messages)
        .is_some_and(|m| !m.is_empty())
}

/// The task the request names (`x-switchyard-task`), which a route's task rules may match.
pub(crate) fn task_of(headers: &HeaderMap) -> Option<String> {
    headers
        .get(&TASK_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
}

/// The request's privacy class: the key's, raised (never lowered) by the header. Every
/// `x-switchyard-privacy` value counts (a proxy may have appended one), the strictest wins;
/// any value that is not a privacy class refuses the request.
pub(crate) fn privacy_of(
    api: Api,
    key: Option<&ApiKey>,
    headers: &HeaderMap,
) -> Result<Option<PrivacyClass>, ApiError> {
    headers.get_all(&PRIVACY_HEADER).iter().try_fold(
        key.and_then(|k| k.privacy),
        |so_far, value| {
            let class = value
                .to_str()
                .ok()
                .and_then(PrivacyClass::parse)
                .ok_or_else(|| {
                    ApiError::invalid(
                        api,
                        format!(
                            "header `{PRIVACY_HEADER}`: expected `any` or `local-only`, got `{}`",
                            String::from_utf8_lossy(value.as_bytes())
                        ),
                    )
                })?;
            Ok(PrivacyClass::strictest(so_far, Some(class)))
        },
    )
}

pub(crate) fn rate_limited(api: Api, key: &ApiKey, wait: Duration) -> ApiError {
    ApiError::new(
        api,
        ProviderError::new(
            ErrorKind::RateLimited,
            format!(
                "rate limit of API key `{}` exceeded; retry in {} s",
                key.id,
                wait.as_secs() + 1
            ),
        )
        .with_retry_after(wait.max(Duration::from_secs(1))),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_task_header_is_trimmed_and_an_empty_one_is_none() {
        let mut headers = HeaderMap::new();
        assert_eq!(task_of(&headers), None);
        headers.insert(TASK_HEADER, HeaderValue::from_static(" summary "));
        assert_eq!(task_of(&headers).as_deref(), Some("summary"));
        headers.insert(TASK_HEADER, HeaderValue::from_static("  "));
        assert_eq!(task_of(&headers), None);
    }

    #[test]
    fn target_header_is_provider_slash_model_like_display() {
        let target = TargetRef {
            provider: "local".into(),
            model: "qwen3:8b".into(),
            locality: switchyard_core::Locality::Local,
        };
        let value = target_header(&target).unwrap();
        assert_eq!(value, target.to_string().as_str());
        let odd = TargetRef {
            model: "mod\u{e9}le".into(),
            ..target.clone()
        };
        assert_eq!(
            target_header(&odd),
            HeaderValue::from_str(&odd.to_string()).ok()
        );
        let control = TargetRef {
            model: "a\nb".into(),
            ..target
        };
        assert!(target_header(&control).is_none());
        assert!(HeaderValue::from_str(&control.to_string()).is_err());
    }

    #[test]
    fn header_raises_privacy_but_never_lowers_it() {
        use PrivacyClass::*;
        assert_eq!(
            PrivacyClass::strictest(Some(LocalOnly), Some(Any)),
            Some(LocalOnly)
        );
        assert_eq!(
            PrivacyClass::strictest(Some(Any), Some(LocalOnly)),
            Some(LocalOnly)
        );
        assert_eq!(PrivacyClass::strictest(None, Some(Any)), Some(Any));
        assert_eq!(PrivacyClass::strictest(None, None), None);
    }

    #[test]
    fn bad_privacy_header_is_named() {
        let mut headers = HeaderMap::new();
        headers.insert(PRIVACY_HEADER, HeaderValue::from_static("secret"));
        let err = privacy_of(Api::OpenAi, None, &headers).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.error.message().contains("x-switchyard-privacy"));
    }

    #[test]
    fn every_privacy_header_counts_and_the_strictest_wins() {
        let mut headers = HeaderMap::new();
        headers.append(PRIVACY_HEADER, HeaderValue::from_static("any"));
        headers.append(PRIVACY_HEADER, HeaderValue::from_static("local-only"));
        headers.append(PRIVACY_HEADER, HeaderValue::from_static("any"));
        assert_eq!(
            privacy_of(Api::OpenAi, None, &headers).unwrap(),
            Some(PrivacyClass::LocalOnly)
        );

        let mut headers = HeaderMap::new();
        headers.append(PRIVACY_HEADER, HeaderValue::from_static("any"));
        assert_eq!(
            privacy_of(Api::OpenAi, None, &headers).unwrap(),
            Some(PrivacyClass::Any)
        );
        assert_eq!(
            privacy_of(Api::OpenAi, None, &HeaderMap::new()).unwrap(),
            None
        );

        // A bad value after a good one is still refused.
        headers.append(PRIVACY_HEADER, HeaderValue::from_static("secret"));
        let err = privacy_of(Api::Ollama, None, &headers).unwrap_err();
        assert_eq!(err.status, StatusCode::BAD_REQUEST);
        assert!(err.error.message().contains("`secret`"), "{}", err.error);
    }
}
