//! The streamed answer: a poll-driven body over the [`RoutedStream`].
//!
//! Each poll takes every event the upstream has ready (up to [`FLUSH_BYTES`] of output),
//! encodes them into the client's API and hands them to hyper as one write. No task, no
//! channel: back-pressure reaches the upstream, and dropping the body (the client went
//! away) drops the stream, which cancels the upstream request. A failure after the first
//! byte ends the stream with the API's error event; a stream that ends without its final
//! event gets one too, so an interrupted answer never looks complete. Work that must be
//! done before the client sees the answer end (keeping a stored response, the fleet's token
//! charge) is awaited before the bytes that follow it are handed out. An answer that ends
//! or is dropped before its usage is charged an estimate ([`TokenAccount`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::{Stream, StreamExt as _};
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_http::Drain;
use switchyard_router::{RoutedStream, Router, SharedStateHandle};
use switchyard_stream::anthropic::AnthropicStreamEncoder;
use switchyard_stream::ollama::{Elapsed, OllamaStreamEncoder};
use switchyard_stream::openai::OpenAiStreamEncoder;

use crate::gateway::Shared;
use crate::responses::ResponsesSink;

/// Output gathered in one poll before it is handed to hyper even if more events are ready.
pub(crate) const FLUSH_BYTES: usize = 32 * 1024;
/// Items taken from the upstream stream after its final event, at most.
pub(crate) const MAX_DRAIN_ITEMS: usize = 1024;

/// The encoder of the client's API.
#[derive(Debug)]
pub(crate) enum StreamEncoder {
    /// SSE `chat.completion.chunk` frames.
    OpenAi(OpenAiStreamEncoder),
    /// NDJSON `/api/chat` lines.
    Ollama(OllamaStreamEncoder),
    /// Typed Responses API events (`/v1/responses`), stored at the end when asked.
    Responses(Box<ResponsesSink>),
    /// Anthropic `message_start` ... `message_stop` SSE events.
    Anthropic(AnthropicStreamEncoder),
}

impl StreamEncoder {
    fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.encode(event, out),
            StreamEncoder::Ollama(e) => e.encode(event, out),
            StreamEncoder::Responses(e) => e.encode(event, out),
            StreamEncoder::Anthropic(e) => e.encode(event, out),
        }
    }

    fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        match self {
            StreamEncoder::OpenAi(e) => e.encode_error(err, out),
            StreamEncoder::Ollama(e) => e.encode_error(err, out),
            StreamEncoder::Responses(e) => e.encode_error(err, out),
            StreamEncoder::Anthropic(e) => e.encode_error(err, out),
        }
    }

    fn is_done(&self) -> bool {
        match self {
            StreamEncoder::OpenAi(e) => e.is_done(),
            StreamEncoder::Ollama(e) => e.is_done(),
            StreamEncoder::Responses(e) => e.is_done(),
            StreamEncoder::Anthropic(e) => e.is_done(),
        }
    }

    /// Work the encoder asks to finish before more bytes go out (a store write).
    fn take_hold(&mut self) -> Option<Hold> {
        match self {
            StreamEncoder::Responses(e) => e.take_write(),
            _ => None,
        }
    }
}

/// Work awaited before the body hands out more bytes.
pub(crate) type Hold = Pin<Box<dyn Future<Output = ()> + Send>>;

/// `first`, then `then`.
fn chain(first: Option<Hold>, then: Hold) -> Hold {
    match first {
        Some(first) => Box::pin(async move {
            first.await;
            then.await;
        }),
        None => then,
    }
}

/// Charges the tokens of answers to the caller's tokens-per-minute limit: this replica's
/// bucket, and the fleet's when the router has shared state and the key such a limit.
///
/// An answer whose usage never arrives (the client left, the upstream broke off or
/// reports none) is charged an estimate once, when it ends or the account is dropped: the
/// prompt estimate the handler gives ([`TokenAccount::with_prompt_estimate`], the
/// router's `estimated_prompt_tokens`) plus the output bytes seen ([`TokenAccount::observe`])
/// / 4, the figure the router charges a priced answer's spend in that case. Keys without a
/// tokens-per-minute limit estimate nothing.
pub(crate) struct TokenAccount {
    shared: Arc<Shared>,
    key_id: Option<String>,
    /// The shared state and the key's tokens per minute.
    fleet: Option<(Arc<SharedStateHandle>, u32)>,
    /// The key has a tokens-per-minute limit: only then is an estimate kept.
    limited: bool,
    /// Usage (or the estimate) was charged: nothing more is estimated.
    settled: AtomicBool,
    /// The request's prompt tokens, estimated.
    prompt_tokens: u64,
    /// Bytes of text, thinking and tool-call arguments the answer had so far.
    output_bytes: AtomicU64,
}

impl TokenAccount {
    pub(crate) fn new(shared: &Arc<Shared>, key_id: Option<&str>) -> Self {
        let tpm = key_id.and_then(|id| shared.limiter.tokens_per_minute(id));
        let fleet = tpm.and_then(|tpm| {
            let state = Arc::clone(shared.router.load().shared_state()?);
            Some((state, tpm))
        });
        Self {
            shared: Arc::clone(shared),
            key_id: key_id.map(str::to_owned),
            fleet,
            limited: tpm.is_some(),
            settled: AtomicBool::new(false),
            prompt_tokens: 0,
            output_bytes: AtomicU64::new(0),
        }
    }

    /// Sets the prompt estimate charged when no usage arrives; `estimate` is only called
    /// when the key has a tokens-per-minute limit.
    pub(crate) fn with_prompt_estimate(mut self, estimate: impl FnOnce() -> u64) -> Self {
        if self.limited {
            self.prompt_tokens = estimate();
        }
        self
    }

    /// Counts the output of `event` toward the estimate.
    pub(crate) fn observe(&self, event: &ChatEvent) {
        if !self.limited {
            return;
        }
        let bytes = match event {
            ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } => text.len(),
            ChatEvent::ToolCallArgs { fragment, .. } => fragment.len(),
            _ => return,
        };
        self.output_bytes
            .fetch_add(u64::try_from(bytes).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Charges `tokens` to this replica's bucket now; the fleet's charge is the returned
    /// work, to finish before the answer ends (so the next request on any replica sees it).
    /// Usage charged this way settles the account: no estimate follows.
    pub(crate) fn charge_later(&self, tokens: u64) -> Option<Hold> {
        self.settled.store(true, Ordering::Relaxed);
        self.charge_tokens(tokens)
    }

    /// Charges `tokens`, the fleet's charge included.
    pub(crate) async fn charge(&self, tokens: u64) {
        if let Some(fleet) = self.charge_later(tokens) {
            fleet.await;
        }
    }

    /// The answer ended: charges the estimate if no usage was charged (once), like
    /// [`TokenAccount::charge_later`].
    pub(crate) fn settle_later(&self) -> Option<Hold> {
        if !self.limited || self.settled.swap(true, Ordering::Relaxed) {
            return None;
        }
        let output = self.output_bytes.load(Ordering::Relaxed).div_ceil(4);
        self.charge_tokens(self.prompt_tokens.saturating_add(output))
    }

    /// [`TokenAccount::settle_later`], the fleet's charge included.
    pub(crate) async fn settle(&self) {
        if let Some(fleet) = self.settle_later() {
            fleet.await;
        }
    }

    /// [`TokenAccount::settle_later`] where nothing can wait for the fleet's charge (a
    /// dropped answer): it is spawned, so it still reaches the shared state.
    fn settle_detached(&self) {
        if let Some(fleet) = self.settle_later()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(fleet);
        }
    }

    fn charge_tokens(&self, tokens: u64) -> Option<Hold> {
        let id = self.key_id.as_ref()?;
        self.shared.limiter.charge_tokens(id, tokens);
        let (state, tpm) = self.fleet.as_ref().filter(|_| tokens > 0)?;
        let (state, tpm, id) = (Arc::clone(state), *tpm, id.clone());
        Some(Box::pin(async move {
            state.charge_tokens(&id, tokens, tpm).await;
        }))
    }
}

impl Drop for TokenAccount {
    /// An answer dropped before its usage (the client went away, the handler was
    /// cancelled) is charged the estimate.
    fn drop(&mut self) {
        self.settle_detached();
    }
}

/// The body of a streamed chat answer.
pub(crate) struct ChatBody {
    routed: RoutedStream,
    encoder: StreamEncoder,
    /// Encoder output of the current poll (reused, never shrinks below its high-water mark;
    /// starts empty, so a thousand idle streams hold no buffers).
    scratch: Vec<u8>,
    /// Backing store of the frames handed out; its memory is reclaimed once hyper has
    /// written and dropped them, so steady-state streaming does not allocate per write.
    /// Starts empty like `scratch`.
    out: BytesMut,
    account: TokenAccount,
    /// When the request arrived (Ollama's durations; the overhead metric is recorded with
    /// the headers, `chat::routing_headers`).
    started: Instant,
    /// When the upstream's first event was in hand (the routed stream is handed over with
    /// it): the end of Ollama's `prompt_eval_duration`.
    first_token: Instant,
    finished: bool,
    /// The routed stream returned `None`.
    routed_ended: bool,
    /// Reads the upstream's rest after the final event (its grace starts when the upstream
    /// first has nothing ready).
    drain: Drain,
    /// The caller may see upstream details in an error event (see `detail`).
    detailed: bool,
    /// Work to finish before the bytes in `scratch` go out.
    hold: Option<Hold>,
    /// The router this request started on, kept until the stream ends.
    _router: Arc<Router>,
}

impl ChatBody {
    pub(crate) fn new(
        routed: RoutedStream,
        encoder: StreamEncoder,
        account: TokenAccount,
        started: Instant,
        router: Arc<Router>,
    ) -> Self {
        Self {
            routed,
            encoder,
            scratch: Vec::new(),
            out: BytesMut::new(),
            account,
            started,
            first_token: Instant::now(),
            finished: false,
            routed_ended: false,
            drain: Drain::new(MAX_DRAIN_ITEMS),
            detailed: crate::detail::detailed(),
            hold: None,
            _router: router,
        }
    }

    fn finish(&mut self) {
        self.finished = true;
    }
}

impl ChatBody {
    /// Polls the held work; whether it is finished (then it is gone).
    fn poll_hold(&mut self, cx: &mut Context<'_>) -> bool {
        if let Some(hold) = self.encoder.take_hold() {
            self.hold = Some(chain(self.hold.take(), hold));
        }
        let Some(hold) = self.hold.as_mut() else {
            return true;
        };
        if hold.as_mut().poll(cx).is_pending() {
            return false;
        }
        self.hold = None;
        true
    }

    /// Hands out what `scratch` holds as one frame.
    fn flush(&mut self) -> Poll<Option<Result<Bytes, Infallible>>> {
        self.out.reserve(self.scratch.len());
        self.out.extend_from_slice(&self.scratch);
        self.scratch.clear();
        Poll::Ready(Some(Ok(self.out.split().freeze())))
    }

    /// After the final event: lets the upstream response end (so its connection goes back
    /// to the pool) before the client's body ends. The client already has every byte; this
    /// only delays the end-of-body marker, by [`switchyard_http::DRAIN_GRACE`] at most.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, Infallible>>> {
        if !self.routed_ended
            && self
                .drain
                .poll_drain(&mut self.routed, cx, |_| Some(1))
                .is_pending()
        {
            return Poll::Pending;
        }
        self.finish();
        Poll::Ready(None)
    }
}

impl Stream for ChatBody {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.finished {
            return Poll::Ready(None);
        }
        if !this.poll_hold(cx) {
            return Poll::Pending;
        }
        if !this.scratch.is_empty() {
            return this.flush();
        }
        if this.encoder.is_done() {
            return this.poll_drain(cx);
        }
        // Take every event that is ready (up to FLUSH_BYTES of output) into one write.
        while !this.encoder.is_done() && this.scratch.len() < FLUSH_BYTES {
            match this.routed.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(event))) => {
                    if let ChatEvent::Usage(usage) = &event
                        && let Some(fleet) = this.account.charge_later(usage.total_tokens())
                    {
                        this.hold = Some(chain(this.hold.take(), fleet));
                    }
                    this.account.observe(&event);
                    if let (StreamEncoder::Ollama(e), ChatEvent::Done { .. }) =
                        (&mut this.encoder, &event)
                    {
                        e.set_elapsed(Elapsed {
                            to_first_token: this
                                .first_token
                                .saturating_duration_since(this.started),
                            to_end: this.started.elapsed(),
                        });
                    }
                    this.encoder.encode(&event, &mut this.scratch);
                }
                Poll::Ready(Some(Err(err))) => {
                    tracing::warn!(
                        reason = err.reason_code(),
                        error = %err,
                        "upstream failed after the answer started; ending the stream with an error event"
                    );
                    let shown = crate::detail::shown(&err, this.detailed);
                    this.encoder
                        .encode_error(shown.as_ref().unwrap_or(&err), &mut this.scratch);
                }
                Poll::Ready(None) => {
                    this.routed_ended = true;
                    if !this.encoder.is_done() {
                        let err = ProviderError::ended_early(
                            "the upstream stream ended without its final event",
                        );
                        this.encoder.encode_error(&err, &mut this.scratch);
                    }
                }
                Poll::Pending => break,
            }
        }
        // The answer ended without usage: its estimate is charged before the end goes out.
        if (this.encoder.is_done() || this.routed_ended)
            && let Some(fleet) = this.account.settle_later()
        {
            this.hold = Some(chain(this.hold.take(), fleet));
        }
        if !this.poll_hold(cx) {
            return Poll::Pending;
        }
        if this.scratch.is_empty() {
            if this.encoder.is_done() {
                return this.poll_drain(cx);
            }
            return Poll::Pending;
        }
        this.flush()
    }
}

impl Drop for ChatBody {
    fn drop(&mut self) {
        if !self.finished {
            tracing::debug!("client went away before the end of the stream; cancelling upstream");
        }
        // Before the upstream request is cancelled (the fields' drop): an answer left
        // before its usage is charged its estimate.
        self.account.settle_detached();
    }
}
