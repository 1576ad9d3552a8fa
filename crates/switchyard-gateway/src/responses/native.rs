//! Native pass-through to providers that serve the Responses API themselves
//! (`responses: true`): which call each planned target gets, and the sink that hands the
//! upstream's own bytes to the client.
//!
//! The router plans and checks policy on the decoded `ChatRequest` as for any request;
//! [`ResponsesCall`] then decides per target: a provider that serves Responses gets the
//! client's body (only `model` replaced) unless the request continues a stored
//! conversation it did not serve or its route removes unknown tool calls; any other
//! target gets the translated chat, refused (`unsupported`, so the router falls back)
//! when the request offers a hosted tool the route does not allow leaving out.
//! [`NativeSink`] passes the upstream's events through, closes a stream the upstream broke
//! off with `error` and `response.failed`, and keeps the response in the store (under the
//! upstream's id) when asked. A Responses server that answers 404 for the endpoint gets
//! the translated chat instead.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use async_trait::async_trait;
use axum::body::Bytes;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ErrorKind, Provider, ProviderError, RawFrames,
    ResponsesEndpoint,
};
use switchyard_router::{Dispatch, Router};
use switchyard_stream::responses::ResponsesStreamEncoder;
use switchyard_stream::responses::passthrough::encode_failure;

use super::items;
use super::sink::StoreWriteSlot;
use super::store::{ResponseStore, StoreWrite, StoredResponse};

/// Where a continued conversation may go natively.
#[derive(Debug)]
pub(crate) enum Continuation {
    /// A new conversation (no `previous_response_id`): any Responses server.
    New,
    /// The stored response was served natively by this provider and upstream model: only
    /// it knows the id, so only it gets the request natively.
    Pinned(Arc<dyn Provider>, String),
    /// The stored response was translated (or its server is gone), or the route removes
    /// calls of tools the request did not offer (`drop_unknown_tool_calls`, which the
    /// upstream's own bytes cannot honour): chats only.
    Translated,
}

impl Continuation {
    /// The continuation of a stored response served natively by `target` (`provider/model`),
    /// or translated (`None`).
    pub(crate) fn of(router: &Router, target: Option<&str>) -> Self {
        let pinned = target
            .and_then(|t| t.split_once('/'))
            .and_then(|(provider, model)| {
                router
                    .provider(provider)
                    .map(|h| Continuation::Pinned(h.provider, model.to_owned()))
            });
        pinned.unwrap_or(Continuation::Translated)
    }

    fn native(&self, provider: &Arc<dyn Provider>, model: &str) -> bool {
        provider.serves_responses(model)
            && match self {
                Continuation::New => true,
                Continuation::Pinned(p, m) => Arc::ptr_eq(p, provider) && m == model,
                Continuation::Translated => false,
            }
    }
}

/// The call each planned target of a Responses request gets.
#[derive(Debug)]
pub(crate) struct ResponsesCall {
    /// The client's body.
    body: Bytes,
    pub(crate) endpoint: ResponsesEndpoint,
    frames: RawFrames,
    /// The first hosted tool a translated chat would leave out, when the route does not
    /// allow that.
    hosted: Option<String>,
    continuation: Continuation,
    /// The last call went to the target natively.
    native: AtomicBool,
}

impl ResponsesCall {
    pub(crate) fn new(
        body: Bytes,
        endpoint: ResponsesEndpoint,
        hosted: Option<String>,
        continuation: Continuation,
    ) -> Self {
        Self {
            body,
            endpoint,
            frames: RawFrames::new(),
            hosted,
            continuation,
            native: AtomicBool::new(false),
        }
    }

    /// Whether the serving target (the last one called) got the request natively.
    pub(crate) fn went_native(&self) -> bool {
        self.native.load(Ordering::Acquire)
    }

    /// The upstream's bytes of the serving native call.
    pub(crate) fn frames(&self) -> &RawFrames {
        &self.frames
    }

    /// Whether any target `request`'s plan includes would take it natively (a hosted tool
    /// is refused up front only when none would).
    pub(crate) fn native_possible(&self, router: &Router, request: &ChatRequest) -> bool {
        router
            .explain(request)
            .targets
            .iter()
            .filter(|t| t.included)
            .any(|t| {
                router
                    .provider(&t.target.provider)
                    .is_some_and(|h| self.continuation.native(&h.provider, &t.target.model))
            })
    }
}

#[async_trait]
impl Dispatch for ResponsesCall {
    async fn call(
        &self,
        provider: &Arc<dyn Provider>,
        request: &ChatRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        self.frames.reset();
        let native = self.continuation.native(provider, model);
        self.native.store(native, Ordering::Release);
        if native {
            match provider
                .responses(&self.body, model, self.endpoint, &self.frames)
                .await
            {
                // A server marked `responses: true` that does not serve the endpoint (an
                // older Ollama): its chat endpoint still can.
                Err(e) if e.kind() == ErrorKind::EndpointNotFound => {
                    tracing::warn!(model, error = %e,
                        "the upstream does not serve the Responses API; sending the chat instead");
                    self.frames.reset();
                    self.native.store(false, Ordering::Release);
                }
                answer => return answer,
            }
        }
        if let Some(tool) = &self.hosted {
            return Err(ProviderError::new(
                ErrorKind::Unsupported,
                format!("the hosted tool `{tool}` cannot run on `{model}`, which takes chats only"),
            ));
        }
        provider.chat_as(request, model).await
    }
}

/// A response to keep once the upstream's answer is complete.
#[derive(Debug)]
pub(crate) struct NativeKeep {
    pub(crate) store: Arc<ResponseStore>,
    /// The record without id, response and answer turn (added at the end).
    pub(crate) record: StoredResponse,
    /// Assembles the answer's turn from its events (its bytes are not used).
    pub(crate) turn: ResponsesStreamEncoder,
    /// `provider/model` that served.
    pub(crate) target: String,
}

/// The upstream's own events (or whole response) on their way to the client.
pub(crate) struct NativeSink {
    frames: RawFrames,
    done: bool,
    keep: Option<Box<NativeKeep>>,
    /// The store write of the finished response, until taken.
    write: Option<StoreWrite>,
}

impl std::fmt::Debug for NativeSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeSink")
            .field("frames", &self.frames)
            .field("done", &self.done)
            .field("keep", &self.keep)
            .field("write", &StoreWriteSlot(&self.write))
            .finish()
    }
}

impl NativeSink {
    pub(crate) fn new(frames: RawFrames, keep: Option<NativeKeep>) -> Self {
        Self {
            frames,
            done: false,
            keep: keep.map(Box::new),
            write: None,
        }
    }

    /// The store write of the finished response, once.
    pub(crate) fn take_write(&mut self) -> Option<StoreWrite> {
        self.write.take()
    }

    /// Writes the upstream's bytes that came with `event`.
    pub(crate) fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        self.frames.take_into(out);
        if let Some(keep) = &mut self.keep {
            keep.turn.encode(event, &mut Vec::new());
        }
        if matches!(event, ChatEvent::Done { .. }) {
            self.done = true;
            self.write = self.persist();
        }
    }

    /// Writes what the upstream sent, then `error` and `response.failed` unless the
    /// stream already ended with a final event: the upstream's own (even one the decoder
    /// could not read: it went out as sent, so a second terminal event would follow it),
    /// or the `response.failed` the decoder closes an upstream `error` with when the
    /// upstream ended without one. (A stream cut by a timeout or the transport after the
    /// upstream's `error` event gets both, so it still ends with `response.failed`.)
    pub(crate) fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        self.keep = None;
        self.frames.take_into(out);
        let meta = self.frames.meta();
        if !meta.ended {
            encode_failure(err, meta.response_id.as_deref(), meta.last_sequence, out);
        }
        self.done = true;
    }

    pub(crate) fn is_done(&self) -> bool {
        self.done
    }

    /// The store write of the finished response (none without a final response object).
    fn persist(&mut self) -> Option<StoreWrite> {
        let keep = self.keep.take()?;
        let NativeKeep {
            store,
            mut record,
            turn,
            target,
        } = *keep;
        let response = self
            .frames
            .meta()
            .final_response
            .and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok());
        let response = response?;
        let id = response["id"].as_str().filter(|id| !id.is_empty())?;
        record.id = id.to_owned();
        record.input_items = items::with_ids(id, std::mem::take(&mut record.input_items));
        record.response = response;
        record.native_target = Some(target);
        record.history.push(turn.assistant_turn().clone());
        Some(store.write_after_answer(record, true))
    }
}
