//! The stream a routed request yields, and the decision record emitted when it ends.

use crate::call_filter::CallFilter;
use crate::metrics::TargetMetrics;
use crate::unknown_calls::OfferedTools;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use futures::Stream;
use switchyard_core::{
    ChatEvent, ChatStream, Price, PrivacyClass, ProviderError, ReasonCode, Usage,
};

use crate::queue::SlotPermit;
use crate::record::{Attempt, DecisionRecord, RequestOutcome, SkippedTarget, TargetRef};
use crate::router::Inner;
use crate::slot::Slot;

/// What `route` hands over once a target produced its first event.
pub(crate) struct Served {
    pub(crate) inner: Arc<Inner>,
    pub(crate) slot: Arc<Slot>,
    pub(crate) permit: SlotPermit,
    pub(crate) stream: ChatStream,
    pub(crate) first: ChatEvent,
    pub(crate) failed_attempts: Vec<Attempt>,
    /// Requests sent upstream for the answer, the serving one included (a target's queue
    /// refusing the request sent none).
    pub(crate) upstream_requests: usize,
    pub(crate) record: DecisionRecord,
    pub(crate) price: Option<Price>,
    pub(crate) started: Instant,
    pub(crate) upstream_wait: Duration,
    /// The tools the request offered.
    pub(crate) offered: OfferedTools,
    /// The serving target's metric handles.
    pub(crate) metrics: Arc<TargetMetrics>,
    /// The request's prompt tokens, estimated.
    pub(crate) prompt_tokens_estimate: u64,
}

/// Bookkeeping until the stream ends; taken exactly once.
struct Finish {
    inner: Arc<Inner>,
    slot: Arc<Slot>,
    permit: SlotPermit,
    record: DecisionRecord,
    price: Option<Price>,
    usage: Option<Usage>,
    started: Instant,
    offered: OfferedTools,
    metrics: Arc<TargetMetrics>,
    /// What a priced answer is charged when the upstream reported no usage (a stream the
    /// client abandoned or the upstream broke off): `None` for unpriced targets.
    estimate: Option<UsageEstimate>,
}

/// The tokens of an answer without reported usage, estimated like the planner's prompt
/// figure (about four bytes a token).
#[derive(Debug, Clone, Copy, Default)]
struct UsageEstimate {
    prompt_tokens: u64,
    /// Bytes of text, thinking and tool-call arguments the upstream sent.
    output_bytes: u64,
}

impl UsageEstimate {
    fn usage(self) -> Usage {
        let tokens = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        Usage {
            prompt_tokens: tokens(self.prompt_tokens),
            completion_tokens: tokens(self.output_bytes.div_ceil(4)),
            ..Usage::default()
        }
    }
}

/// The answer of a routed request, returned once the first event is in hand (fallback
/// before the first byte already done). Yields that event first, then the serving
/// target's events. A failure after that is passed through as one error item (never a
/// second attempt), and a stream that ends without its final event yields a
/// `stream_ended_early` error; after an error or the final event the stream ends.
/// Dropping it cancels the upstream request. The provider's slot is held until the end.
pub struct RoutedStream {
    stream: ChatStream,
    first: Option<ChatEvent>,
    served_by: TargetRef,
    reason: ReasonCode,
    /// The privacy class the request was planned under (route, task rule, caller, header).
    privacy: PrivacyClass,
    request_id: String,
    attempts: Vec<Attempt>,
    upstream_requests: usize,
    skipped: Vec<SkippedTarget>,
    upstream_wait: Duration,
    pending_since: Option<Instant>,
    /// Boxed: the bookkeeping is most of the stream's size, and the stream is moved through
    /// every layer of the routing and answering futures.
    finish: Option<Box<Finish>>,
    ended: bool,
    /// Removes unknown tool calls (`drop_unknown_tool_calls`); `None` on other routes.
    filter: Option<Box<CallFilter>>,
    /// With shared state: the charge of this request's spend, awaited before the item
    /// `held` is yielded (so the next request, on any replica, sees it).
    flush: Option<Pin<Box<dyn Future<Output = ()> + Send>>>,
    held: Option<Option<Result<ChatEvent, ProviderError>>>,
}

impl std::fmt::Debug for RoutedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RoutedStream")
            .field("request_id", &self.request_id)
            .field("served_by", &self.served_by)
            .field("reason", &self.reason)
            .field("attempts", &self.attempts.len())
            .finish_non_exhaustive()
    }
}

impl RoutedStream {
    pub(crate) fn new(s: Served) -> Self {
        let served_by = s.record.served_by.clone().unwrap_or_else(|| TargetRef {
            provider: s.slot.id.clone(),
            model: "".into(),
            locality: s.slot.locality,
        });
        let filter = s.offered.drop_unknown.then(Box::default);
        Self {
            stream: s.stream,
            first: Some(s.first),
            served_by,
            reason: s.record.reason,
            privacy: s.record.privacy,
            request_id: s.record.request_id.clone(),
            attempts: s.failed_attempts,
            upstream_requests: s.upstream_requests,
            skipped: s.record.skipped.clone(),
            upstream_wait: s.upstream_wait,
            pending_since: None,
            finish: Some(Box::new(Finish {
                inner: s.inner,
                slot: s.slot,
                permit: s.permit,
                record: s.record,
                price: s.price,
                usage: None,
                started: s.started,
                estimate: s.price.is_some().then_some(UsageEstimate {
                    prompt_tokens: s.prompt_tokens_estimate,
                    output_bytes: 0,
                }),
                offered: s.offered,
                metrics: s.metrics,
            })),
            ended: false,
            filter,
            flush: None,
            held: None,
        }
    }

    /// Yields `item`, after the pending shared-state charge if there is one.
    fn deliver(
        &mut self,
        item: Option<Result<ChatEvent, ProviderError>>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatEvent, ProviderError>>> {
        if self.flush.is_none() {
            return Poll::Ready(item);
        }
        self.held = Some(item);
        self.poll_flush(cx)
    }

    /// Polls the pending charge; once done, yields the held item.
    fn poll_flush(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<ChatEvent, ProviderError>>> {
        if let Some(flush) = self.flush.as_mut() {
            if flush.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.flush = None;
        }
        Poll::Ready(self.held.take().flatten())
    }

    /// The target serving this request.
    pub fn served_by(&self) -> &TargetRef {
        &self.served_by
    }

    /// Why it serves: `primary`, `group_balanced`, `fallback`, `fallback_after_<code>`,
    /// `overflow_queue_depth`, `overflow_queue_full`, `retry`, `cooling_last_resort`.
    pub fn reason(&self) -> ReasonCode {
        self.reason
    }

    /// The privacy class the request was planned under: the strictest of its header, its
    /// caller's, the route it resolved to (a task rule's route included) and the default.
    /// A stored conversation keeps it.
    pub fn privacy(&self) -> PrivacyClass {
        self.privacy
    }

    /// The request id.
    pub fn request_id(&self) -> &str {
        &self.request_id
    }

    /// The attempts that failed before this target served (refusals by a target's own
    /// queue included: see [`RoutedStream::upstream_requests`]).
    pub fn attempts(&self) -> &[Attempt] {
        &self.attempts
    }

    /// The requests sent upstream for this answer: every target tried, its retries and the
    /// serving one. A target whose queue refused the request (`queue_full`, a queue
    /// timeout) sent none, so it is not counted, though it stays in [`Self::attempts`].
    pub fn upstream_requests(&self) -> usize {
        self.upstream_requests
    }

    /// The targets the plan left out or never reached, with their reason codes (also in
    /// the decision record's `skipped`).
    pub fn skipped(&self) -> &[SkippedTarget] {
        &self.skipped
    }

    /// Time spent waiting on upstreams so far: model listings before planning (a bare name's
    /// local catalogs, a refresh for an unknown model), queue waits, upstream calls up to
    /// the first event, retry back-offs, and polls of this stream that were pending.
    pub fn upstream_wait(&self) -> Duration {
        match self.pending_since {
            Some(since) => self.upstream_wait + since.elapsed(),
            None => self.upstream_wait,
        }
    }

    /// Bookkeeping for one event; answers whether it starts a call of a tool the request
    /// did not offer.
    fn observe(&mut self, event: &ChatEvent) -> bool {
        match event {
            ChatEvent::Usage(u) => {
                if let Some(f) = self.finish.as_mut() {
                    f.usage = Some(*u);
                }
            }
            ChatEvent::Done { .. } => self.complete(RequestOutcome::Ok, None),
            ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } => {
                self.note_output(text.len());
            }
            ChatEvent::ToolCallArgs { fragment, .. } => self.note_output(fragment.len()),
            ChatEvent::ToolCallStart { name, .. } => {
                let dropped = self.filter.as_ref().is_some_and(|f| f.has_room());
                if let Some(f) = self.finish.as_mut() {
                    let unknown = f.offered.check(name, dropped, &mut f.record);
                    if unknown {
                        let call = crate::UnknownToolCall {
                            at_unix_ms: crate::tool_report::unix_ms(f.inner.clock.wall()),
                            tool: name.clone(),
                            target: self.served_by.to_string(),
                            dropped,
                        };
                        let caller = f.record.caller.as_deref().unwrap_or("-");
                        f.inner.tool_sets.unknown_call(caller, call);
                    }
                    return unknown;
                }
            }
            _ => {}
        }
        false
    }

    /// Counts output bytes toward the usage estimate of a priced answer.
    fn note_output(&mut self, bytes: usize) {
        if let Some(estimate) = self.finish.as_mut().and_then(|f| f.estimate.as_mut()) {
            estimate.output_bytes = estimate.output_bytes.saturating_add(bytes as u64);
        }
    }

    /// Observes `event` and answers it as the client gets it: `None` when the route's
    /// filter removed it.
    fn pass(&mut self, event: ChatEvent) -> Option<ChatEvent> {
        let unknown = self.observe(&event);
        match self.filter.as_mut() {
            None => Some(event),
            Some(filter) => filter.apply(event, unknown),
        }
    }

    /// Ends the bookkeeping: releases the slot, charges the spend, emits the record.
    fn complete(&mut self, outcome: RequestOutcome, error: Option<&ProviderError>) {
        let Some(f) = self.finish.take() else { return };
        let Finish {
            inner,
            slot,
            permit,
            mut record,
            price,
            usage,
            started,
            offered: _,
            metrics,
            estimate,
        } = *f;
        drop(permit);
        if let Some(e) = error {
            slot.record_failure(e, inner.clock.now(), &inner.config.health.cooldowns_ms);
        }
        // An answer without usage is still billed upstream: charge the estimate, so that
        // abandoning streams is no way past a budget cap.
        let estimated = usage.is_none() && estimate.is_some();
        let cost = match (price, usage.or_else(|| estimate.map(UsageEstimate::usage))) {
            (Some(p), Some(u)) => p.cost_micro_usd(&u),
            _ => 0,
        };
        if cost > 0 {
            if let Err(e) = inner
                .ledger
                .record(record.caller.as_deref(), cost, inner.clock.wall())
            {
                tracing::error!(
                    request_id = %record.request_id,
                    cost_micro_usd = cost,
                    error = %e,
                    "could not record spend"
                );
            }
            if let Some(shared) = inner.shared.clone() {
                let charge = shared.new_charge(
                    &record.request_id,
                    record.caller.as_deref(),
                    cost,
                    inner.clock.wall(),
                );
                self.flush = Some(Box::pin(async move { shared.charge(charge).await }));
            }
            ::metrics::gauge!(crate::metrics::SPEND_USD_TOTAL, "provider" => slot.id.clone())
                .increment(crate::budget::micro_to_usd(cost));
        }
        if let Some(u) = usage {
            metrics.prompt_tokens.increment(u64::from(u.prompt_tokens));
            metrics
                .completion_tokens
                .increment(u64::from(u.completion_tokens));
        }
        record.usage = usage;
        record.cost_micro_usd = cost;
        record.cost_estimated = estimated && cost > 0;
        record.outcome = outcome;
        record.duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
        emit_record(&inner, &record, error, Some(&metrics));
    }
}

impl Stream for RoutedStream {
    type Item = Result<ChatEvent, ProviderError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.held.is_some() {
            return this.poll_flush(cx);
        }
        if let Some(first) = this.first.take() {
            if let Some(first) = this.pass(first) {
                return this.deliver(Some(Ok(first)), cx);
            }
        }
        for _ in 0..MAX_REMOVED_IN_A_ROW {
            match this.poll_upstream(cx) {
                // An event the filter removed: the next one.
                Poll::Ready(Some(Ok(None))) => {}
                Poll::Ready(Some(Ok(Some(event)))) => return this.deliver(Some(Ok(event)), cx),
                Poll::Ready(Some(Err(e))) => return this.deliver(Some(Err(e)), cx),
                // A charge still being applied is awaited before the end, too.
                Poll::Ready(None) => return this.deliver(None, cx),
                Poll::Pending => return Poll::Pending,
            }
        }
        // Many removed events in a row: let other tasks run, then go on.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// Events the call filter may remove in one poll before the stream yields to the runtime.
const MAX_REMOVED_IN_A_ROW: usize = 64;

/// An upstream item after the filter: `Ok(None)` when the filter removed the event.
type Filtered = Option<Result<Option<ChatEvent>, ProviderError>>;

impl RoutedStream {
    /// The next upstream item, observed and filtered (`Ok(None)`: the filter removed it).
    fn poll_upstream(&mut self, cx: &mut Context<'_>) -> Poll<Filtered> {
        let this = self;
        if this.ended {
            return Poll::Ready(None);
        }
        let polled = this.stream.as_mut().poll_next(cx);
        match polled {
            Poll::Pending => {
                this.pending_since.get_or_insert_with(Instant::now);
                return Poll::Pending;
            }
            Poll::Ready(_) => {
                if let Some(since) = this.pending_since.take() {
                    this.upstream_wait += since.elapsed();
                }
            }
        }
        match polled {
            Poll::Ready(Some(Ok(event))) => Poll::Ready(Some(Ok(this.pass(event)))),
            Poll::Ready(Some(Err(e))) => {
                let e = e.context(format!(
                    "{} failed before the end of its answer",
                    this.served_by
                ));
                this.ended = true;
                this.complete(RequestOutcome::Error(e.kind()), Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Ready(None) => {
                this.ended = true;
                if this.finish.is_none() {
                    // The final event was seen: a normal end.
                    return Poll::Ready(None);
                }
                let e = ProviderError::ended_early(format!(
                    "{} ended its stream without a final event",
                    this.served_by
                ));
                this.complete(RequestOutcome::Error(e.kind()), Some(&e));
                Poll::Ready(Some(Err(e)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Drop for RoutedStream {
    fn drop(&mut self) {
        if self.finish.is_some() {
            self.complete(RequestOutcome::Cancelled, None);
        }
        // A charge not yet applied (the client went away) still reaches the shared state.
        if let Some(flush) = self.flush.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(flush);
        }
    }
}

/// The decision log line (built only when it is logged: its strings cost more than the
/// rest of the record).
fn log_record(record: &DecisionRecord, error: Option<&ProviderError>) {
    let served_by = record
        .served_by
        .as_ref()
        .map_or_else(|| "none".to_owned(), ToString::to_string);
    let attempts = record
        .attempts
        .iter()
        .map(|a| format!("{}:{}:{}ms", a.target, a.reason_code, a.duration_ms))
        .collect::<Vec<_>>()
        .join(",");
    let skipped = record
        .skipped
        .iter()
        .map(|s| format!("{}:{}", s.target, s.reason))
        .collect::<Vec<_>>()
        .join(",");
    tracing::info!(
        target: "switchyard::decision",
        request_id = %record.request_id,
        caller = record.caller.as_deref().unwrap_or("-"),
        requested = %record.requested,
        route = record.route.as_deref().unwrap_or("-"),
        rule = record.rule.as_deref(),
        privacy = record.privacy.as_str(),
        served_by = %served_by,
        reason = record.reason.as_str(),
        outcome = record.outcome.as_str(),
        attempts = %attempts,
        skipped = %skipped,
        ttft_ms = record.ttft_ms,
        duration_ms = record.duration_ms,
        prompt_tokens = record.usage.map(|u| u.prompt_tokens),
        completion_tokens = record.usage.map(|u| u.completion_tokens),
        cost_micro_usd = record.cost_micro_usd,
        cost_estimated = record.cost_estimated.then_some(true),
        error = error.map(ToString::to_string),
        "request routed"
    );
}

/// Emits one decision record: a structured tracing event (target `switchyard::decision`),
/// the request metrics (`metrics`: the serving target's handles when the caller has them),
/// and the observer.
pub(crate) fn emit_record(
    inner: &Inner,
    record: &DecisionRecord,
    error: Option<&ProviderError>,
    metrics: Option<&TargetMetrics>,
) {
    if tracing::enabled!(target: "switchyard::decision", tracing::Level::INFO) {
        log_record(record, error);
    }
    let route = record.route.as_deref().unwrap_or("direct");
    let seconds = record.duration_ms as f64 / 1000.0;
    let count = |target: ::metrics::SharedString| {
        ::metrics::counter!(
            crate::metrics::REQUESTS_TOTAL,
            "route" => route.to_owned(),
            "target" => target,
            "outcome" => record.outcome.as_str()
        )
        .increment(1);
    };
    match &record.served_by {
        Some(target) => {
            let looked_up;
            let metrics = match metrics {
                Some(m) => m,
                None => {
                    looked_up = inner
                        .target_metrics
                        .get(inner, target, std::time::Instant::now());
                    &*looked_up
                }
            };
            metrics.duration.record(seconds);
            if record.outcome == RequestOutcome::Ok {
                metrics.count_ok(route);
            } else {
                count(metrics.label.clone());
            }
        }
        None => {
            ::metrics::histogram!(crate::metrics::REQUEST_DURATION_SECONDS, "target" => "none")
                .record(seconds);
            count(::metrics::SharedString::const_str("none"));
        }
    }
    if let Some(observer) = &inner.observer {
        observer.on_decision(record);
    }
}
