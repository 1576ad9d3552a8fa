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

/// A response body whose failures are already classified (`stream_ended_early`).
pub(crate) type Body = Pin<Box<dyn Stream<Item = Result<Bytes, ProviderError>> + Send>>;

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
/// moment the request was sent); afterwards every chunk of bytes restarts the idle phase, so a
/// slow stream that keeps producing is never cut; `total`, when set, bounds everything: it
/// is checked when the body has nothing ready and at every chunk that arrives (a body that
/// is always ready, because its reader is slower than the upstream, never lets the timer
/// fire). Dropping it drops the body, which closes the upstream request.
///
/// The timer is not reset per chunk: a chunk only notes when it arrived, and the one
/// `Sleep` is moved to the real deadline when it fires early (deadlines only move later
/// while output flows), so a fast stream pays a clock read per chunk, not a timer-wheel
/// update.
pub struct TimedEventStream<D> {
    body: Body,
    decoder: D,
    pending: VecDeque<ChatEvent>,
    scratch: Vec<ChatEvent>,
    timer: Pin<Box<Sleep>>,
    /// When the last chunk of bytes arrived once output flows (the idle phase's start).
    last_chunk: Instant,
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
        use futures::TryStreamExt as _;
        let target = target.into();
        let named = target.clone();
        let body = response
            .bytes_stream()
            .map_err(move |e| reqwest_body_error(e, &named));
        Self::over(Box::pin(body), decoder, timeouts, started, target)
    }

    /// Over any body (the direct client's as well as reqwest's).
    pub(crate) fn over(
        body: Body,
        decoder: D,
        timeouts: Timeouts,
        started: Instant,
        target: String,
    ) -> Self {
        let first_token_deadline = started + timeouts.first_token;
        let total_deadline = timeouts.total.map(|t| started + t);
        let deadline = earliest(first_token_deadline, total_deadline);
        Self {
            body,
            decoder,
            pending: VecDeque::new(),
            scratch: Vec::new(),
            timer: Box::pin(tokio::time::sleep_until(deadline)),
            last_chunk: started,
            timeouts,
            first_token_deadline,
            total_deadline,
            seen_event: false,
            state: State::Streaming,
            drain: Drain::new(MAX_DRAIN_AFTER_DONE),
            deferred_error: None,
            target,
        }
    }

    /// The deadline of the current phase: first token (from the request), or idle (from the
    /// last chunk), whichever applies, bounded by `total`.
    fn deadline(&self) -> Instant {
        let phase_deadline = if self.seen_event {
            self.last_chunk + self.timeouts.idle
        } else {
            self.first_token_deadline
        };
        earliest(phase_deadline, self.total_deadline)
    }

    /// Notes a chunk of bytes. The first output moves the timer once (the idle deadline can
    /// be earlier than the first-token one); later chunks only move `last_chunk`, and the
    /// timer catches up when it fires ([`Self::timed_out`]).
    fn note_chunk(&mut self, was_streaming: bool) {
        if self.seen_event {
            self.last_chunk = Instant::now();
            if !was_streaming {
                let deadline = self.deadline();
                self.timer.as_mut().reset(deadline);
            }
        }
    }

    /// Whether the `total` deadline, if any, has passed.
    fn past_total(&self) -> bool {
        self.total_deadline
            .is_some_and(|total| Instant::now() >= total)
    }

    /// Whether the phase deadline has passed; when the timer fired early (chunks arrived
    /// since it was set), it is moved to the real deadline and registered again.
    fn timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        while self.timer.as_mut().poll(cx).is_ready() {
            let deadline = self.deadline();
            if Instant::now() >= deadline {
                return true;
            }
            self.timer.as_mut().reset(deadline);
        }
        false
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

/// A reqwest body that broke off: `stream_ended_early`, with the transport's words.
fn reqwest_body_error(e: reqwest::Error, target: &str) -> ProviderError {
    let err = crate::errors::classify_transport_error(&e, target);
    if err.kind() == ErrorKind::StreamEndedEarly {
        err
    } else {
        ProviderError::ended_early(err.message().to_owned()).with_source(e)
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
                    // the caller long for it (the drain's grace period starts when the body
                    // first has nothing ready: a body that has ended costs no timer).
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
                Poll::Ready(Some(Ok(_))) if this.past_total() => {
                    this.state = State::Ended;
                    return Poll::Ready(Some(Err(this.timeout_error())));
                }
                Poll::Ready(Some(Ok(bytes))) => {
                    let was_streaming = this.seen_event;
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
                    this.note_chunk(was_streaming);
                }
                Poll::Ready(Some(Err(err))) => {
                    this.state = State::Ended;
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
                    if this.timed_out(cx) {
                        this.state = State::Ended;
                        return Poll::Ready(Some(Err(this.timeout_error())));
                    }
                    return Poll::Pending;
                }
            }
        }
    }
}
