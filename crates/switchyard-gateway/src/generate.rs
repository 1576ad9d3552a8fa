//! Text completion on both APIs: Ollama's `POST /api/generate` and OpenAI's legacy
//! `POST /v1/completions`, streamed or whole. Routed like chats through
//! [`Router::route_with`]; an Ollama upstream gets `/api/generate` natively, an
//! OpenAI-compatible one `/v1/completions`.
//!
//! [`Router::route_with`]: switchyard_router::Router::route_with

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ContentPart, GenerateRequest, Image, Message, Provider,
    ProviderError, Usage,
};
use switchyard_router::{Dispatch, RoutedStream, estimated_prompt_tokens};
use switchyard_stream::generate::{Completion, ollama, openai};
use switchyard_stream::ollama as ollama_chat;

use crate::api::{Api, ApiError, JSON};
use crate::body::TokenAccount;
use crate::chat::{Admitted, admit, authorize_model, routing_head, routing_headers};
use crate::gateway::Shared;
use crate::time;

/// `POST /api/generate`.
pub(crate) async fn ollama_generate(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    handle(shared, Api::Ollama, request).await
}

/// `POST /v1/completions`.
pub(crate) async fn openai_completions(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> Response {
    handle(shared, Api::OpenAi, request).await
}

async fn handle(shared: Arc<Shared>, api: Api, request: Request) -> Response {
    match run(shared, api, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(shared: Arc<Shared>, api: Api, request: Request) -> Result<Response, ApiError> {
    let Admitted {
        started,
        body,
        caller,
        meta,
    } = admit(&shared, api, request).await?;
    let decoded = match api {
        Api::Ollama => ollama::decode_request(&body).map(|g| (g, openai::ClientOptions::default())),
        _ => openai::decode_request_with_options(&body),
    };
    let (mut generate, options) = decoded.map_err(|e| ApiError::invalid(api, e.to_string()))?;
    drop(body);
    generate.meta = meta;
    authorize_model(api, caller.as_deref(), &generate.model)?;
    let probe = stand_in(&generate);
    let prompt_tokens = estimated_prompt_tokens(&probe);
    let call = GenerateCall(generate);
    let router = shared.router.load_full();
    let routed = router
        .route_with(&probe, &call)
        .await
        .map_err(|failure| crate::skipped::refusal(api, failure))?;
    // The routed stream comes with the upstream's first event.
    let first_token = Instant::now();
    drop(probe);
    let GenerateCall(generate) = call;
    let account = TokenAccount::new(&shared, caller.as_ref().map(|k| k.id.as_str()))
        .with_prompt_estimate(|| prompt_tokens);
    let now = SystemTime::now();
    let created_at = time::rfc3339(now);
    let answer = Answer {
        api,
        ollama: ollama::GenerateEncoder::new(generate.model.clone(), created_at.clone()),
        model: generate.model,
        id: format!("cmpl-{}", generate.meta.request_id),
        created: time::unix_secs(now),
        created_at,
        include_usage: options.include_usage,
        started,
        first_token,
    };
    if generate.stream {
        let routing = routing_head(&routed, started, api);
        // Decided here: the body is polled outside the handler's detail scope.
        let mut response = answer.streamed(routed, account, crate::detail::detailed());
        routing.attach(&mut response);
        Ok(response)
    } else {
        answer.whole(routed, &account).await
    }
}

/// The chat request the router plans and checks policy on for `generate`: its model and
/// metadata, the system prompt, prompt and suffix as message text (the prompt estimate:
/// context windows, task rules, the spend estimate of an answer without usage), one image
/// part per image (vision capability), `think` (thinking capability) and the sampling
/// options. The images are empty placeholders: planning reads only that there are images,
/// and the estimate does not count them, so their bytes are not copied.
fn stand_in(generate: &GenerateRequest) -> ChatRequest {
    let mut messages = Vec::with_capacity(3);
    if let Some(system) = generate.system.as_deref().filter(|s| !s.is_empty()) {
        messages.push(Message::system(system));
    }
    let mut user = Message::user(generate.prompt.as_str());
    user.content.extend(generate.images.iter().map(|_| {
        ContentPart::Image(Image::Base64 {
            media_type: None,
            data: String::new(),
            detail: None,
        })
    }));
    messages.push(user);
    if let Some(suffix) = generate.suffix.as_deref().filter(|s| !s.is_empty()) {
        messages.push(Message::user(suffix));
    }
    let mut probe = ChatRequest::new(generate.model.clone(), messages);
    probe.think = generate.think;
    probe.options = generate.options.clone();
    probe.stream = generate.stream;
    probe.meta = generate.meta.clone();
    probe
}

/// The completion call at the end of a routed request.
struct GenerateCall(GenerateRequest);

#[async_trait]
impl Dispatch for GenerateCall {
    async fn call(
        &self,
        provider: &Arc<dyn Provider>,
        _request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        provider.generate(&self.0, model).await
    }
}

/// How the answer is written.
struct Answer {
    api: Api,
    /// The `/api/generate` lines, with the usage and `context` seen for the last one.
    ollama: ollama::GenerateEncoder,
    model: String,
    id: String,
    created: u64,
    created_at: String,
    /// `/v1/completions`: the client asked for the usage chunk at the end of a stream
    /// (`stream_options.include_usage`).
    include_usage: bool,
    /// When the request arrived.
    started: Instant,
    /// When the upstream's first event was in hand.
    first_token: Instant,
}

impl Answer {
    fn stamp(&self) -> openai::Stamp<'_> {
        openai::Stamp {
            id: &self.id,
            created: self.created,
            model: &self.model,
        }
    }

    /// How long the answer took, for Ollama's durations when the upstream reported none.
    fn elapsed(&self) -> ollama_chat::Elapsed {
        ollama_chat::Elapsed {
            to_first_token: self.first_token.saturating_duration_since(self.started),
            to_end: self.started.elapsed(),
        }
    }

    /// Appends what `event` becomes in the client's stream.
    fn encode(&mut self, event: &ChatEvent, usage: Option<&Usage>, out: &mut Vec<u8>) {
        match self.api {
            Api::Ollama => {
                if matches!(event, ChatEvent::Done { .. }) {
                    // The last line's usage, with the durations measured here when the
                    // upstream reported none.
                    let usage = ollama_chat::with_timings(usage.copied(), self.elapsed());
                    self.ollama.encode(&ChatEvent::Usage(usage), out);
                }
                self.ollama.encode(event, out);
            }
            _ => {
                let usage = usage.filter(|_| self.include_usage);
                openai::encode_event(event, usage, self.stamp(), out);
            }
        }
    }

    /// Appends the error that ends a stream after output started.
    fn encode_error(&self, err: &ProviderError, out: &mut Vec<u8>) {
        if matches!(self.api, Api::OpenAi) {
            out.extend_from_slice(b"data: ");
        }
        self.api.encode_error_body(err, out);
        out.extend_from_slice(if matches!(self.api, Api::OpenAi) {
            b"\n\n"
        } else {
            b"\n"
        });
    }

    /// The streamed answer. `detailed`: the caller may see upstream details in an error
    /// after the first byte (see `detail`).
    fn streamed(self, routed: RoutedStream, account: TokenAccount, detailed: bool) -> Response {
        let content_type = match self.api {
            Api::Ollama => "application/x-ndjson",
            _ => "text/event-stream",
        };
        // The account first: between items, a dropped body charges the estimate before the
        // upstream request is cancelled.
        let state = (account, routed, self, None::<Usage>, false);
        let body = futures::stream::unfold(
            state,
            move |(account, mut routed, mut answer, mut usage, ended)| async move {
                if ended {
                    return None;
                }
                let mut out = Vec::new();
                let end = match routed.next().await {
                    None => {
                        account.settle().await;
                        return None;
                    }
                    Some(Ok(event)) => {
                        if let ChatEvent::Usage(u) = &event {
                            account.charge(u.total_tokens()).await;
                            usage = Some(*u);
                        }
                        account.observe(&event);
                        answer.encode(&event, usage.as_ref(), &mut out);
                        matches!(event, ChatEvent::Done { .. })
                    }
                    Some(Err(e)) => {
                        tracing::warn!(
                            reason = e.reason_code(),
                            error = %e,
                            "upstream failed after the answer started; ending the stream with an error event"
                        );
                        let shown = crate::detail::shown(&e, detailed);
                        answer.encode_error(shown.as_ref().unwrap_or(&e), &mut out);
                        true
                    }
                };
                if end {
                    account.settle().await;
                }
                Some((
                    Ok::<_, Infallible>(Bytes::from(out)),
                    (account, routed, answer, usage, end),
                ))
            },
        );
        let mut response = crate::api::routed_response(Body::from_stream(body));
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
        response
    }

    async fn whole(
        self,
        mut routed: RoutedStream,
        account: &TokenAccount,
    ) -> Result<Response, ApiError> {
        let mut answer = Completion::default();
        while let Some(event) = routed.next().await {
            let event = event.map_err(|e| ApiError::new(self.api, e))?;
            if let ChatEvent::Usage(u) = &event {
                account.charge(u.total_tokens()).await;
            }
            account.observe(&event);
            answer.push(&event);
            if answer.text.len() > crate::chat::MAX_WHOLE_ANSWER_BYTES {
                return Err(ApiError::new(
                    self.api,
                    ProviderError::malformed("the answer is too large; ask for a streamed answer"),
                ));
            }
            if answer.finish.is_some() {
                break;
            }
        }
        account.settle().await;
        if self.api == Api::Ollama {
            answer.usage = Some(ollama_chat::with_timings(answer.usage, self.elapsed()));
        }
        let mut out = Vec::with_capacity(256 + answer.text.len());
        match self.api {
            Api::Ollama => {
                ollama::encode_response(&answer, &self.model, &self.created_at, &mut out)
            }
            _ => openai::encode_response(&answer, self.stamp(), &mut out),
        }
        let mut response = crate::api::routed_response(Body::from(out));
        response.headers_mut().insert(CONTENT_TYPE, JSON);
        // After the answer is assembled, as for a whole chat answer.
        routing_headers(&mut response, &routed, self.started, self.api);
        Ok(response)
    }
}
