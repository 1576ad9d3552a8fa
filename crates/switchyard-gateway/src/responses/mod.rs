//! The OpenAI Responses API: `POST /v1/responses` (streamed and not), `GET` and `DELETE
//! /v1/responses/{id}`, `GET /v1/responses/{id}/input_items`.
//!
//! A request is decoded with the Responses codec into a `ChatRequest` (with the turns of
//! its `previous_response_id` in front) and takes the same path as the other APIs: key
//! policy, rate limits, the router (routes, privacy, fallback, budgets, the decision
//! record), the routing headers and the token account. The answer's events are encoded as
//! Responses events; with `store` (OpenAI's default) the finished response, its input and
//! the conversation so far are kept in the [`ResponseStore`] (written before the client
//! gets the answer's last bytes). A continued conversation keeps the privacy class of the
//! response it continues. A store that cannot be read (the shared state is down) answers
//! 503 naming it; one that cannot be written loses the response, logged, not the answer.
//!
//! A target whose provider serves the Responses API itself (`responses: true`) gets the
//! client's body and answers with its own bytes ([`native`]); routing, policy, fallback and
//! accounting are the same, the router plans on the decoded request either way.

mod backend;
mod compact;
mod items;
mod native;
mod redb_store;
mod sink;
mod store;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use futures::StreamExt as _;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderName, HeaderValue, StatusCode};
use switchyard_core::{
    ChatEvent, ChatRequest, ErrorKind, Message, PrivacyClass, ProviderError, RequestMeta,
    ResponsesEndpoint,
};
use switchyard_router::{RoutedStream, Router};
use switchyard_stream::responses::request::{DecodeOptions, ResponsesRequest, decode_request};
use switchyard_stream::responses::{ResponseHead, ResponsesStreamEncoder};

pub use backend::{ResponseBackend, ResponseStoreError, StoredBytes};
pub(crate) use compact::compact;
use native::{Continuation, NativeKeep, NativeSink, ResponsesCall};
use sink::Pending;
pub(crate) use sink::ResponsesSink;
use store::StoredResponse;
pub use store::{ResponseStore, ResponseStoreConfig};

use crate::api::{Api, ApiError, JSON};
use crate::auth::Caller;
use crate::body::{ChatBody, MAX_DRAIN_ITEMS, StreamEncoder, TokenAccount};
use crate::chat;
use crate::gateway::Shared;
use crate::time;

/// Errors are answered in OpenAI's shape.
const API: Api = Api::OpenAi;

/// `POST /v1/responses`.
pub(crate) async fn create(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    match run(shared, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn run(shared: Arc<Shared>, request: Request) -> Result<Response, ApiError> {
    let p = prepare(&shared, request, true).await?;
    let routed = p
        .router
        .route_with(&p.chat, &p.call)
        .await
        .map_err(|failure| crate::skipped::refusal(API, failure))?;
    let caller_id = p.chat.meta.caller.clone();
    // The class the router planned under counts too: a task rule may have sent the turn
    // to a local-only route that the model's name does not resolve to.
    let privacy = PrivacyClass::stricter(
        conversation_privacy(&p.router, &p.chat.meta, &p.chat.model),
        routed.privacy(),
    );
    let record = |(input_items, history)| StoredResponse {
        id: p.head.id.clone(),
        caller: caller_id.clone(),
        privacy,
        response: serde_json::Value::Null,
        input_items,
        history,
        native_target: None,
    };
    let account = TokenAccount::new(&shared, caller_id.as_deref())
        .with_prompt_estimate(|| switchyard_router::estimated_prompt_tokens(&p.chat));
    let native = p.call.went_native();
    let sink = if native {
        let keep = p.keep.map(|kept| NativeKeep {
            store: Arc::clone(&p.store),
            record: record(kept),
            // Only the turn is read: no frames written (and allocated) per event.
            turn: ResponsesStreamEncoder::new(p.head.clone()).without_frames(),
            target: routed.served_by().to_string(),
        });
        ResponsesSink::Native(NativeSink::new(p.call.frames().clone(), keep))
    } else {
        let pending = p.keep.map(|kept| Pending {
            store: Arc::clone(&p.store),
            record: record(kept),
        });
        let encoder = ResponsesStreamEncoder::new(p.head);
        // A whole answer needs the final response, not the frames on the way.
        let encoder = if p.chat.stream {
            encoder
        } else {
            encoder.without_frames()
        };
        ResponsesSink::new(encoder, pending)
    };
    if p.chat.stream {
        Ok(streamed(routed, sink, account, p.started, p.router))
    } else if native {
        passed_through(routed, sink, &account, p.started).await
    } else {
        whole(routed, sink, &account, p.started).await
    }
}

/// A decoded, admitted request, ready to route.
struct Prepared {
    started: Instant,
    /// The chat request with the history of `previous_response_id` and the caller's meta.
    chat: ChatRequest,
    /// The router this request runs on (loaded once, kept even if a reload swaps it).
    router: Arc<Router>,
    head: ResponseHead,
    store: Arc<ResponseStore>,
    /// With `store`: this request's input items (with ids) and every turn so far.
    keep: Option<(Vec<serde_json::Value>, Vec<Message>)>,
    /// What each planned target gets: the client's body natively, or the chat.
    call: ResponsesCall,
}

/// Everything before routing: rate limit, body, decoding, the stored conversation it
/// continues (and its privacy class), the caller's meta and allowed models.
/// `answers_calls`: the answer may hold tool calls (a response; not a compaction), so a
/// route that removes calls of tools not offered keeps it off the pass-through.
async fn prepare(
    shared: &Shared,
    request: Request,
    answers_calls: bool,
) -> Result<Prepared, ApiError> {
    let chat::Admitted {
        started,
        body: bytes,
        caller,
        mut meta,
    } = chat::admit(shared, API, request).await?;
    let opts = DecodeOptions {
        drop_unsupported_tools: true,
    };
    let decoded = decode_request(&bytes, &opts)
        .map_err(|e| ApiError::invalid(API, format!("invalid request body: {e}")))?;
    let router = shared.router.load_full();
    let hosted = refused_hosted_tool(&router, &decoded);
    let store = shared.responses.load_full();
    let mut history = Vec::new();
    let mut continuation = Continuation::New;
    if let Some(id) = &decoded.previous_response_id {
        let prev = store
            .get(id, meta.caller.as_deref())
            .await
            .map_err(|e| store_unavailable(&store, &e))?
            .ok_or_else(|| not_found(id))?;
        meta.privacy = PrivacyClass::strictest(meta.privacy, Some(prev.privacy));
        history.clone_from(&prev.history);
        continuation = Continuation::of(&router, prev.native_target.as_deref());
    }
    if decoded.chat.messages.is_empty() {
        return Err(ApiError::invalid(
            API,
            "invalid request body: `input` must hold at least one item",
        ));
    }
    // One clock read for the id and the creation time.
    let now = SystemTime::now();
    let id = new_response_id(now);
    let head = ResponseHead {
        id: id.clone(),
        created_at: time::unix_secs(now),
        model: decoded.chat.model.clone(),
        echo: decoded.echo.clone(),
        custom_tools: decoded.custom_tools.clone(),
    };
    let keep = decoded.store.then(|| {
        let mut turns = history.clone();
        turns.extend(decoded.chat.messages.iter().cloned());
        (items::with_ids(&id, decoded.input_items.clone()), turns)
    });
    let mut chat = decoded.into_chat(history);
    chat::check_shape(API, &chat)?;
    chat.meta = meta;
    chat::authorize_model(API, caller.as_deref(), &chat.model)?;
    let endpoint = ResponsesEndpoint::Create {
        stream: chat.stream,
    };
    let filtered = answers_calls && drops_unknown_calls(&router, &chat);
    let continuation = if filtered {
        Continuation::Translated
    } else {
        continuation
    };
    let call = ResponsesCall::new(bytes, endpoint, hosted.clone(), continuation);
    if let Some(tool) = hosted {
        if !call.native_possible(&router, &chat) {
            return Err(hosted_tool_refused(&tool, filtered));
        }
    }
    Ok(Prepared {
        started,
        chat,
        router,
        head,
        store,
        keep,
        call,
    })
}

/// The first hosted tool the decoder left out of the chat, unless the route allows leaving
/// it out: such a request may only go to a target that takes it natively.
fn refused_hosted_tool(router: &Router, req: &ResponsesRequest) -> Option<String> {
    let tool = req.dropped_tools.first()?;
    let allowed = router
        .config()
        .routes
        .get(&req.chat.model)
        .is_some_and(|r| r.drop_unsupported_tools);
    if allowed {
        tracing::debug!(tools = ?req.dropped_tools, "hosted tools left out for chat targets");
        return None;
    }
    Some(tool.clone())
}

/// A hosted tool that no planned target can run; `filtered`: the route's
/// `drop_unknown_tool_calls` kept the request off the pass-through.
fn hosted_tool_refused(tool: &str, filtered: bool) -> ApiError {
    let why = if filtered {
        "the route removes calls of tools the request did not offer \
         (`drop_unknown_tool_calls`), which an answer passed through as the upstream \
         sent it cannot do, so only chats are sent"
    } else {
        "none takes Responses requests natively"
    };
    ApiError::invalid(
        API,
        format!(
            "invalid request body: the hosted tool `{tool}` cannot run on this route's models \
             ({why}); remove it, or set `drop_unsupported_tools: true` on the route to leave \
             it out"
        ),
    )
}

/// Whether the route `chat` is planned on (after its task rules) removes tool calls of
/// tools the request did not offer (`drop_unknown_tool_calls`). A passed-through answer
/// cannot honour that: the upstream's own frames and its final response would still carry
/// the call. So such a request gets the translated chat on every target. Only configs
/// that set the flag on some route pay for the plan this takes.
fn drops_unknown_calls(router: &Router, chat: &ChatRequest) -> bool {
    let routes = &router.config().routes;
    if !routes.values().any(|r| r.drop_unknown_tool_calls) {
        return false;
    }
    router
        .explain(chat)
        .route
        .and_then(|name| routes.get(&name))
        .is_some_and(|r| r.drop_unknown_tool_calls)
}

/// The privacy class a stored conversation keeps: the strictest of the request's, its
/// caller's, its route's and the default.
fn conversation_privacy(router: &Router, meta: &RequestMeta, model: &str) -> PrivacyClass {
    let config = router.config();
    let caller = meta
        .caller
        .as_ref()
        .and_then(|c| config.callers.get(c))
        .and_then(|p| p.privacy);
    let route = router.route_privacy(model);
    [meta.privacy, caller, route]
        .into_iter()
        .flatten()
        .fold(config.policy.default_privacy, PrivacyClass::stricter)
}

fn streamed(
    routed: RoutedStream,
    sink: ResponsesSink,
    account: TokenAccount,
    started: Instant,
    router: Arc<Router>,
) -> Response {
    let mut response = crate::api::routed_response(Body::empty());
    chat::routing_headers(&mut response, &routed, started, API);
    let encoder = StreamEncoder::Responses(Box::new(sink));
    let body = ChatBody::new(routed, encoder, account, started, router);
    *response.body_mut() = Body::from_stream(body);
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    );
    response
}

/// Runs the whole answer through the encoder and answers with the response object. An
/// upstream failure before the end is an HTTP error: no byte has gone out yet.
async fn whole(
    mut routed: RoutedStream,
    mut sink: ResponsesSink,
    account: &TokenAccount,
    started: Instant,
) -> Result<Response, ApiError> {
    collect(&mut routed, &mut sink, account).await?;
    if let Some(write) = sink.take_write() {
        write.await;
    }
    let mut answer = match sink.final_response_json() {
        Some(body) => items::json_bytes(body),
        None => items::json(final_response(&sink)?),
    };
    chat::routing_headers(&mut answer, &routed, started, API);
    Ok(answer)
}

/// A whole answer passed through: the upstream's response object as it sent it (usage
/// charged from its events). A failure is an HTTP error: no byte has gone out yet.
async fn passed_through(
    mut routed: RoutedStream,
    mut sink: ResponsesSink,
    account: &TokenAccount,
    started: Instant,
) -> Result<Response, ApiError> {
    let mut body = Vec::new();
    while let Some(event) = routed.next().await {
        let event = event.map_err(|e| ApiError::new(API, e))?;
        if let ChatEvent::Usage(usage) = &event {
            account.charge(usage.total_tokens()).await;
        }
        sink.encode(&event, &mut body);
        if sink.is_done() {
            switchyard_http::Drain::items(&mut routed, MAX_DRAIN_ITEMS).await;
            if let Some(write) = sink.take_write() {
                write.await;
            }
            let mut answer = Response::new(Body::from(body));
            answer.headers_mut().insert(CONTENT_TYPE, JSON);
            chat::routing_headers(&mut answer, &routed, started, API);
            return Ok(answer);
        }
    }
    Err(ApiError::new(
        API,
        ProviderError::ended_early("the upstream's answer ended before its end"),
    ))
}

/// Feeds the whole answer to `sink` (an error if the upstream failed).
async fn collect(
    routed: &mut RoutedStream,
    sink: &mut ResponsesSink,
    account: &TokenAccount,
) -> Result<(), ApiError> {
    let mut scratch = Vec::new();
    while let Some(event) = routed.next().await {
        let event = event.map_err(|e| ApiError::new(API, e))?;
        if let ChatEvent::Usage(usage) = &event {
            account.charge(usage.total_tokens()).await;
        }
        sink.encode(&event, &mut scratch);
        scratch.clear();
        if sink.is_done() {
            switchyard_http::Drain::items(routed, MAX_DRAIN_ITEMS).await;
            break;
        }
    }
    Ok(())
}

/// The finished response object of a whole translated answer (an error if the answer did
/// not end or failed).
fn final_response(sink: &ResponsesSink) -> Result<&serde_json::Value, ApiError> {
    let response = sink.final_response().ok_or_else(|| {
        ApiError::new(
            API,
            ProviderError::ended_early("the upstream stream ended without its final event"),
        )
    })?;
    if response["status"] == "failed" {
        let message = response["error"]["message"].as_str().unwrap_or("failed");
        return Err(ApiError::new(API, ProviderError::malformed(message)));
    }
    Ok(response)
}

/// `resp_` and 24 hex digits: the time (`now`) in nanoseconds and a counter, unique in a
/// process and across restarts.
fn new_response_id(now: SystemTime) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    response_id(nanos as u64, n)
}

/// `resp_`, `nanos` as 16 hex digits and the low 32 bits of `n` as 8 (without `fmt`).
fn response_id(nanos: u64, n: u64) -> String {
    let mut id = *b"resp_000000000000000000000000";
    crate::telemetry::write_hex(&mut id[5..21], nanos);
    crate::telemetry::write_hex(&mut id[21..], n);
    // Written from ASCII only (the check is one pass over 29 bytes; nothing is replaced).
    std::str::from_utf8(&id)
        .map(str::to_owned)
        .unwrap_or_default()
}

fn not_found(id: &str) -> ApiError {
    ApiError::with_status(
        API,
        StatusCode::NOT_FOUND,
        ProviderError::new(
            ErrorKind::InvalidRequest,
            format!("no response found with id `{id}` (it may have expired or never been stored)"),
        ),
    )
}

/// A 503 for a response store that could not be read: the shared state (or the local
/// store) is named; the underlying error (which may name hosts) goes to the log.
fn store_unavailable(store: &ResponseStore, e: &ResponseStoreError) -> ApiError {
    tracing::warn!(store = store.kind(), reason = e.reason_code(), error = %e,
        "response store could not be read");
    let what = if e.is_unreachable() {
        "cannot be reached"
    } else {
        "answered with an error"
    };
    let message = if store.is_shared() {
        format!(
            "stored responses are kept in the shared state ({}), which {what}; \
             `previous_response_id` and stored responses work again once it answers",
            store.kind()
        )
    } else {
        format!("the response store ({}) {what}", store.kind())
    };
    ApiError::with_status(
        API,
        StatusCode::SERVICE_UNAVAILABLE,
        ProviderError::new(ErrorKind::Internal, message),
    )
}

async fn stored(shared: &Shared, caller: &Caller, id: &str) -> Result<StoredResponse, ApiError> {
    let caller = caller.0.as_ref().map(|k| k.id.as_str());
    let store = shared.responses.load_full();
    store
        .get(id, caller)
        .await
        .map_err(|e| store_unavailable(&store, &e))?
        .ok_or_else(|| not_found(id))
}

/// `GET /v1/responses/{id}`.
pub(crate) async fn get(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    match stored(&shared, &caller, &id).await {
        Ok(record) => items::json(&record.response),
        Err(err) => err.into_response(),
    }
}

/// `DELETE /v1/responses/{id}`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let key = caller.0.as_ref().map(|k| k.id.as_str());
    let store = shared.responses.load_full();
    match store.delete(&id, key).await {
        Ok(true) => items::json(
            &serde_json::json!({"id": id, "object": "response.deleted", "deleted": true}),
        ),
        Ok(false) => not_found(&id).into_response(),
        Err(e) => store_unavailable(&store, &e).into_response(),
    }
}

/// `GET /v1/responses/{id}/input_items` (`order`, `limit`, `after`, `before`).
pub(crate) async fn input_items(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    Query(page): Query<items::Page>,
) -> Response {
    match stored(&shared, &caller, &id).await {
        Ok(record) => match items::list(&record.input_items, &page) {
            Ok(list) => items::json(&list),
            Err(message) => ApiError::invalid(API, message).into_response(),
        },
        Err(err) => err.into_response(),
    }
}

#[cfg(test)]
mod id_tests {
    #[test]
    fn response_ids_are_the_formatted_hex() {
        for (nanos, n) in [
            (0, 0),
            (1, 1),
            (u64::MAX, u64::MAX),
            (0x1234_5678_9abc_def0, 0x1_0000_0001),
        ] {
            assert_eq!(
                super::response_id(nanos, n),
                format!("resp_{nanos:016x}{:08x}", n as u32)
            );
        }
    }
}
