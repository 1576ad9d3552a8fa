//! Phase timeouts over a streamed body, decoded into chat events, without spawning a task.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::Stream;
use switchyard_core::{ChatEvent, ErrorKind, ProviderError, TimeoutPhase};
use tokio::time::{Instant, Sleep};

use switchyard_stream::decoder::EventDecoder;

use crate::client::Timeouts;
use crate::drain::Drain;

/// The most bytes read after the final event (to return the connection to the pool).
const MAX_DRAIN_AFTER_DONE: usize = 64 * 1024;

type Body = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Streaming,
    /// The final event went out; read the body's rest so the connection can be reused.
    Draining,
    Ended,
}

/// A chat stream over an HTTP body with phase timeouts:
/// until the first event (or the decoder's [`EventDecoder::progressed`]) the first-token
/// deadline applies (counted from `started`, the
/// moment the request was sent); afterwards every chunk of bytes re-arms the idle timer, so a
/// slow stream that keeps producing is never cut; `total`, when set, bounds everything.
/// Dropping it drops the body, which closes the upstream request.
pub struct TimedEventStream<D> {
    body: Body,
    decoder: D,
    pending: VecDeque<ChatEvent>,
    scratch: Vec<ChatEvent>,
    timer: Pin<Box<Sleep>>,
    timeouts: Timeouts,
    first_token_deadline: Instant,
    total_deadline: Option<Instant>,
    /// The upstream produced output: the first-token phase is over, idle applies.
    seen_event: bool,
    state: State,
    drain: Drain,
    deferred_error: Option<ProviderError>,
    target: String,
}

impl<D> std::fmt::Debug for TimedEventStream<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimedEventStream")
            .field("target", &self.target)
            .field("seen_event", &self.seen_event)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl<D: EventDecoder> TimedEventStream<D> {
    /// Wraps `response`'s body. `started` is when the request was sent; `target` names the
    /// upstream in error messages.
    pub fn new(
        response: reqwest::Response,
        decoder: D,
        timeouts: Timeouts,
        started: Instant,
        target: impl Into<String>,
    ) -> Self {
        let first_token_deadline = started + timeouts.first_token;
        let total_deadline = timeouts.total.map(|t| started + t);
        let deadline = earliest(first_token_deadline, total_deadline);
        Self {
            body: Box::pin(response.bytes_stream()),
            decoder,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            timeouts,
            first_token_deadline,
            total_deadline,
            seen_event: false,
            state: State::Streaming,
            drain: Drain::new(MAX_DRAIN_AFTER_DONE),
            deferred_error: None,
            target: target.into(),
        }
    }

    fn rearm(&mut self) {
        let phase_deadline = if self.seen_event {
            Instant::now() + self.timeouts.idle
        } else {
            self.first_token_deadline
        };
        let deadline = earliest(phase_deadline, self.total_deadline);
        self.timer.as_mut().reset(deadline);
    }

    fn timeout_error(&self) -> ProviderError {
        let now = Instant::now();
        let (phase, limit) = match self.total_deadline {
            Some(t) if now >= t => (TimeoutPhase::Total, self.timeouts.total.unwrap_or_default()),
            _ if !self.seen_event => (TimeoutPhase::FirstToken, self.timeouts.first_token),
            _ => (TimeoutPhase::Idle, self.timeouts.idle),
        };
        let what = match phase {
            TimeoutPhase::FirstToken => "no first token within",
            TimeoutPhase::Idle => "no chunk for",
            _ => "request not finished within",
        };
        ProviderError::new(
            ErrorKind::Timeout(phase),
            format!("{}: {what} {} ms", self.target, limit.as_millis()),
        )
    }
}

fn earliest(a: Instant, b: Option<Instant>) -> Instant {
    match b {
        Some(b) if b < a => b,
        _ => a,
    }
}

impl<D: EventDecoder> Stream for TimedEventStream<D> {
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // All fields are Unpin (the body and timer are boxed).
        let this = self.get_mut();
        loop {
            if let Some(event) = this.pending.pop_front() {
                if matches!(event, ChatEvent::Done { .. }) {
                    this.pending.clear();
                    this.state = State::Draining;
                    // The rest of the body normally arrives with the final event; never hold
                    // the caller long for it.
                    this.drain.start();
                }
                return Poll::Ready(Some(Ok(event)));
            }
            match this.state {
                State::Ended => return Poll::Ready(this.deferred_error.take().map(Err)),
                State::Draining => {
                    let drained = this.drain.poll_drain(&mut this.body, cx, |item| {
                        item.as_ref().ok().map(Bytes::len)
                    });
                    if drained.is_pending() {
                        return Poll::Pending;
                    }
                    this.state = State::Ended;
                    continue;
                }
                State::Streaming => {}
            }
            match this.body.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    let fed = this.decoder.feed(&bytes, &mut this.scratch);
                    if !this.scratch.is_empty() {
                        this.seen_event = true;
                        this.pending.extend(this.scratch.drain(..));
                    } else if !this.seen_event && this.decoder.progressed() {
                        this.seen_event = true;
                    }
                    if let Err(e) = fed {
                        // Deliver what was decoded before the failure, then the error.
                        this.state = State::Ended;
                        this.deferred_error = Some(e.context(&this.target));
                        continue;
                    }
                    this.rearm();
                }
                Poll::Ready(Some(Err(e))) => {
                    this.state = State::Ended;
                    let mut err = crate::errors::classify_transport_error(&e, &this.target);
                    if err.kind() != ErrorKind::StreamEndedEarly {
                        err = ProviderError::ended_early(err.message().to_owned()).with_source(e);
                    }
                    return Poll::Ready(Some(Err(err)));
                }
                Poll::Ready(None) => {
                    let finished = this.decoder.finish(&mut this.scratch);
                    this.pending.extend(this.scratch.drain(..));
                    this.state = State::Ended;
                    if let Err(e) = finished {
                        // Deliver what was decoded before the failure, then the error.
                        this.deferred_error = Some(e.context(&this.target));
                    }
                }
                Poll::Pending => {
                    if this.timer.as_mut().poll(cx).is_ready() {
                        this.state = State::Ended;
                        return Poll::Ready(Some(Err(this.timeout_error())));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
