//! Running a plan: admission, the last policy check, dispatch, retries, fallback, health.
//!
//! Fallback and retries happen only before the first event: [`Router::route`] returns once
//! the serving target's first event is in hand, and after that a failure is passed through
//! as the stream's error item (see [`crate::RoutedStream`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ErrorKind, Locality, PrivacyClass, ProviderError,
};

use crate::plan::{Plan, PlannedTarget};
use crate::privacy::is_cloud;
use crate::queue::SlotPermit;
use crate::record::{
    Attempt, AttemptOutcome, DecisionRecord, RequestOutcome, RouteFailure, SkippedTarget,
};
use crate::router::{Inner, Router};
use crate::slot::{Live, Slot};
use crate::stream::{RoutedStream, Served, emit_record};
use crate::{ChatCall, Dispatch};
use switchyard_core::ReasonCode;

/// Longest upstream `retry-after` the router waits out on the same target; a longer one
/// moves on to the next target instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a dispatch did not produce a first event.
enum DispatchFailure {
    /// The last policy check stopped it (reason code); nothing was sent.
    Blocked(ReasonCode),
    /// The provider failed before its first event.
    Failed(ProviderError),
}

/// The last check before bytes leave, run for every try of every target (first try,
/// retry, fallback, overflow), with the newest known locality of the provider.
/// `after_failure`: an earlier target of this request already failed, so this one is a
/// fallback whatever its step (a cloud member of a balanced first step included).
fn dispatch_check(
    inner: &Inner,
    privacy: PrivacyClass,
    planned: &PlannedTarget,
    slot: &Slot,
    request: &ChatRequest,
    after_failure: bool,
) -> Result<(), ReasonCode> {
    let caller = request.meta.caller.as_deref();
    // The model's own locality counts too (read again: the catalog may have changed).
    let locality = slot
        .model_locality(&planned.target.model)
        .max(planned.target.locality);
    if !privacy.allows(locality) {
        return Err(ReasonCode::PrivacyLocalOnly);
    }
    if is_cloud(locality) {
        if inner.tool_policies.cloud_tool(request).is_some() {
            return Err(ReasonCode::ToolNeverToCloud);
        }
        if (planned.step > 0 || after_failure) && inner.cloud_fallback_off() {
            return Err(ReasonCode::CloudFallbackDisabled);
        }
        if inner.budget_exhausted(caller, false).is_some() {
            return Err(ReasonCode::BudgetExhausted);
        }
    }
    Ok(())
}

/// The one place a provider is called (its `chat`, or another [`Dispatch`]): after
/// [`dispatch_check`], and it waits for the first event.
async fn dispatch(
    inner: &Inner,
    privacy: PrivacyClass,
    planned: &PlannedTarget,
    slot: &Slot,
    request: &ChatRequest,
    after_failure: bool,
    call: &dyn Dispatch,
) -> Result<(ChatStream, ChatEvent), DispatchFailure> {
    let check = || {
        dispatch_check(inner, privacy, planned, slot, request, after_failure)
            .map_err(DispatchFailure::Blocked)
    };
    check()?;
    if !privacy.allows(Locality::Cloud) && !slot.catalog_known() {
        // A model of a local provider may still run in the cloud (Ollama's `-cloud`
        // models): know this provider's catalog before a request that may not leave the
        // machine goes there, then check again.
        slot.refresh_catalog(crate::router::CATALOG_TIMEOUT).await;
        check()?;
    }
    let mut stream = call
        .call(&slot.provider, request, &planned.target.model)
        .await
        .map_err(DispatchFailure::Failed)?;
    match stream.next().await {
        Some(Ok(first)) => Ok((stream, first)),
        Some(Err(e)) => Err(DispatchFailure::Failed(e)),
        None => Err(DispatchFailure::Failed(ProviderError::ended_early(
            format!("{} ended its stream before the first event", planned.target),
        ))),
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// Jittered exponential back-off: `base * 2^retry`, times a factor in [0.5, 1.5).
fn backoff(base_ms: u64, retry: u32) -> Duration {
    let exp = base_ms.saturating_mul(1u64 << retry.min(16));
    let factor: f64 = rand::random_range(0.5..1.5);
    Duration::from_millis((exp as f64 * factor) as u64)
}

/// A new request id: `sy-` and 16 hex digits.
fn new_request_id() -> String {
    format!("sy-{:016x}", rand::random::<u64>())
}

impl Router {
    /// Plans `request` and runs the plan: returns once the serving target's first event is
    /// in hand (fallback and retries happen only before that), or a loud [`RouteFailure`]
    /// naming every attempt and the rule that stopped every other target.
    pub async fn route(&self, request: &ChatRequest) -> Result<RoutedStream, RouteFailure> {
        self.route_with(request, &ChatCall).await
    }

    /// [`Router::route`] with another operation than a chat at the end (embeddings,
    /// generate): planning, policy, queues, retries, fallback, health, the decision record
    /// and metrics are the same; `call` is what reaches the provider once the last policy
    /// check passed. `request` stands for the operation (model, metadata, tools).
    pub async fn route_with(
        &self,
        request: &ChatRequest,
        call: &dyn Dispatch,
    ) -> Result<RoutedStream, RouteFailure> {
        let started = Instant::now();
        let started_at = self.inner.clock.wall();
        let request_id = if request.meta.request_id.is_empty() {
            new_request_id()
        } else {
            request.meta.request_id.clone()
        };
        self.inner
            .observe_tool_set(request, &request_id, started_at);
        self.inner.read_shared_state(request).await;
        let (planned, catalog_wait) = self.inner.plan_with_fresh_catalogs(request).await;
        let start = Start {
            request_id,
            started,
            started_at,
            catalog_wait,
        };
        match planned {
            Ok(plan) => run(self.inner.clone(), plan, request, start, call).await,
            Err(e) => {
                let e = *e;
                let mut progress = Progress::new(
                    self.inner.clone(),
                    request,
                    start,
                    (request.model.clone(), e.route, e.privacy),
                    e.excluded,
                );
                progress.rule = e.rule;
                Err(progress.fail(e.error))
            }
        }
    }

    /// Each caller's recent tool set, tool-set shrinks and unknown tool calls (only
    /// `caller`'s when given), kept across reloads and bounded (1024 callers; 8 requests,
    /// 16 shrinks and 32 unknown calls each).
    pub fn tool_report(&self, caller: Option<&str>) -> Vec<crate::CallerTools> {
        self.inner.tool_sets.report(caller)
    }

    /// The plan for `request` with the reason each target is in or out, without sending
    /// anything.
    pub fn explain(&self, request: &ChatRequest) -> crate::Explanation {
        self.inner.explain(request)
    }
}

impl Inner {
    /// With shared state: reads the spend totals budget checks need and the cooldowns
    /// other replicas set, and cools the targets they cooled.
    async fn read_shared_state(&self, request: &ChatRequest) {
        let Some(shared) = &self.shared else { return };
        let caller = request.meta.caller.as_deref();
        let targets: Vec<String> = self.slots.iter().map(|s| s.id.to_string()).collect();
        let with_spend = self.budget_configured(caller);
        let at = self.clock.wall();
        let Some(cooling) = shared.before_plan(caller, with_spend, &targets, at).await else {
            return;
        };
        let now = self.clock.now();
        for (slot, left) in self.slots.iter().zip(cooling) {
            if let (Some(left), Ok(mut health)) = (left, slot.live.health.lock()) {
                health.hold(now + left);
            }
        }
    }

    /// With shared state: publishes the cooldown `slot` is in, if any, so the other
    /// replicas skip it too.
    async fn publish_cooldown(&self, slot: &Slot) {
        let Some(shared) = &self.shared else { return };
        let now = self.clock.now();
        let left = slot
            .live
            .health
            .lock()
            .ok()
            .and_then(|h| h.cooling_left(now));
        if let Some(left) = left {
            shared.cool(&slot.id, left).await;
        }
    }

    /// Missing-tools triage: records the tools the caller offered, and warns and counts
    /// when its tool list shrank.
    fn observe_tool_set(&self, request: &ChatRequest, request_id: &str, at: std::time::SystemTime) {
        let caller = request.meta.caller.as_deref().unwrap_or("-");
        let missing = self.tool_sets.observe(caller, request.tool_names(), at);
        if missing.is_empty() {
            return;
        }
        let offered: Vec<&str> = request.tool_names().collect();
        tracing::warn!(
            caller,
            request_id,
            missing = %missing.join(","),
            offered = %offered.join(","),
            "the caller's tool list shrank: tools offered in most of its recent requests are missing"
        );
        ::metrics::counter!(crate::metrics::TOOL_SET_SHRUNK_TOTAL, "caller" => caller.to_owned())
            .increment(1);
    }

    /// Plans `request`, knowing the local catalogs first (a bare name goes to the least
    /// exposed provider offering it) and refreshing stale catalogs once when the model is
    /// unknown (it may have been discovered since the last refresh). Also answers how long
    /// it waited on those model listings (upstream wait, not the gateway's own time).
    async fn plan_with_fresh_catalogs(
        &self,
        request: &ChatRequest,
    ) -> (Result<Plan, Box<crate::plan::PlanError>>, Duration) {
        let mut waited = waited_on(self.refresh_local_catalogs_for(&request.model)).await;
        let planned = self.plan(request);
        if matches!(&planned, Err(e) if e.unknown_model) && self.any_catalog_stale() {
            waited += waited_on(self.refresh_catalogs()).await;
            return (self.plan(request), waited);
        }
        (planned, waited)
    }
}

/// Runs `refresh` (a catalog refresh) and answers how long it waited on upstreams. One that
/// finishes on its first poll (nothing to refresh, the usual case) reads no clock and
/// counts as no wait; otherwise the wait is measured from its first pending poll.
async fn waited_on(refresh: impl Future<Output = ()>) -> Duration {
    let mut refresh = std::pin::pin!(refresh);
    if futures::poll!(refresh.as_mut()).is_ready() {
        return Duration::ZERO;
    }
    let since = Instant::now();
    refresh.await;
    since.elapsed()
}

/// When and as what a request started.
struct Start {
    request_id: String,
    started: Instant,
    started_at: std::time::SystemTime,
    /// Time spent waiting on upstream model listings before planning (upstream wait).
    catalog_wait: Duration,
}

/// The attempts and skipped targets of a request being routed. If the `route` future is
/// dropped before it decided (the client went away during fallback), the drop emits the
/// request's decision record as `cancelled`, so every request gets exactly one.
struct Progress {
    inner: Arc<Inner>,
    request_id: String,
    caller: Option<String>,
    requested: String,
    route: Option<String>,
    /// The task rules that sent the request to its route, if any.
    rule: Option<String>,
    privacy: PrivacyClass,
    started: Instant,
    started_at: std::time::SystemTime,
    /// When the plan started to run (the upstream wait is measured from here).
    exec_start: Instant,
    /// Time spent waiting on upstream model listings before planning, added to the
    /// upstream wait.
    catalog_wait: Duration,
    failed: Vec<Attempt>,
    /// How many of `failed` a target's queue refused (full, timed out, closed): no request
    /// went upstream for them.
    refused: usize,
    skipped: Vec<SkippedTarget>,
    decided: bool,
    /// The tools the request offered, for the serving stream's check of tool calls.
    offered: crate::unknown_calls::OfferedTools,
}

impl Progress {
    /// `named`: the model requested, the route and the privacy class applied.
    fn new(
        inner: Arc<Inner>,
        request: &ChatRequest,
        start: Start,
        named: (String, Option<String>, PrivacyClass),
        skipped: Vec<SkippedTarget>,
    ) -> Self {
        let (requested, route, privacy) = named;
        Self {
            inner,
            request_id: start.request_id,
            caller: request.meta.caller.clone(),
            requested,
            route,
            rule: None,
            privacy,
            started: start.started,
            started_at: start.started_at,
            exec_start: Instant::now(),
            catalog_wait: start.catalog_wait,
            failed: Vec::new(),
            refused: 0,
            skipped,
            decided: false,
            offered: crate::unknown_calls::OfferedTools::of(request),
        }
    }

    /// The decision record as it stands (the one place the record is built).
    fn record(&self, outcome: RequestOutcome, reason: ReasonCode) -> DecisionRecord {
        self.record_at(outcome, reason, Instant::now())
    }

    /// [`Progress::record`] with its duration measured to `now`, a clock read the
    /// caller already made.
    fn record_at(
        &self,
        outcome: RequestOutcome,
        reason: ReasonCode,
        now: Instant,
    ) -> DecisionRecord {
        DecisionRecord {
            request_id: self.request_id.clone(),
            caller: self.caller.clone(),
            requested: self.requested.clone(),
            route: self.route.clone(),
            rule: self.rule.clone(),
            privacy: self.privacy,
            attempts: self.failed.clone(),
            skipped: self.skipped.clone(),
            served_by: None,
            unknown_tool_calls: Vec::new(),
            unknown_tool_calls_dropped: false,
            reason,
            usage: None,
            cost_micro_usd: 0,
            cost_estimated: false,
            outcome,
            ttft_ms: None,
            duration_ms: millis(now.saturating_duration_since(self.started)),
            started_at: Some(self.started_at),
        }
    }

    /// A target the dispatch check stopped: logged loudly and skipped.
    fn block(&mut self, planned: &PlannedTarget, reason: ReasonCode) {
        log_blocked(planned, reason);
        self.skipped.push(SkippedTarget {
            target: planned.target.clone(),
            reason,
        });
    }

    /// Decides the request as failed by `error`: emits the record, returns the failure.
    fn fail(&mut self, error: ProviderError) -> RouteFailure {
        self.decided = true;
        let record = self.record(
            RequestOutcome::Error(error.kind()),
            ReasonCode::Error(error.kind()),
        );
        emit_record(&self.inner, &record, Some(&error), None);
        RouteFailure {
            error,
            request_id: record.request_id,
            attempts: record.attempts,
            skipped: record.skipped,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.decided {
            let record = self.record(
                RequestOutcome::Cancelled,
                ReasonCode::Error(ErrorKind::Cancelled),
            );
            emit_record(&self.inner, &record, None, None);
        }
    }
}

/// Runs a plan: tries its targets in order until one serves, stopping at a failure that
/// is not fallback-eligible.
async fn run(
    inner: Arc<Inner>,
    plan: Plan,
    request: &ChatRequest,
    start: Start,
    call: &dyn Dispatch,
) -> Result<RoutedStream, RouteFailure> {
    let named = (plan.requested.clone(), plan.route.clone(), plan.privacy);
    let mut progress = Progress::new(inner.clone(), request, start, named, plan.excluded.clone());
    progress.rule.clone_from(&plan.rule);
    progress.offered.drop_unknown = plan
        .route
        .as_ref()
        .and_then(|r| inner.config.routes.get(r))
        .is_some_and(|r| r.drop_unknown_tool_calls);
    let mut last_err: Option<ProviderError> = None;
    for idx in 0..plan.targets.len() {
        if last_err.as_ref().is_some_and(|e| !e.fallback_eligible()) {
            progress
                .skipped
                .extend(plan.targets[idx..].iter().map(|p| SkippedTarget {
                    target: p.target.clone(),
                    reason: ReasonCode::NotFallbackEligible,
                }));
            break;
        }
        let target = Target {
            inner: &inner,
            plan: &plan,
            idx,
            call,
        };
        match target
            .attempt(request, &mut progress, last_err.as_ref())
            .await
        {
            Tried::Served(stream) => return Ok(*stream),
            Tried::Skipped => {}
            Tried::Failed(e) => last_err = Some(e),
        }
    }
    let error = match last_err {
        Some(e) => tool_kept_local(&plan, &progress.skipped, e),
        None => nothing_allowed(&progress.skipped, &plan.requested),
    };
    Err(progress.fail(error))
}

/// When every target the tool policy left in failed and cloud targets were left out for
/// a `never_to_cloud` tool, the request is refused as `policy_blocked` naming the tool
/// (the last failure is in the message): the policy, not the failure, is why it was not
/// served elsewhere. Other failures pass through unchanged.
fn tool_kept_local(plan: &Plan, skipped: &[SkippedTarget], last: ProviderError) -> ProviderError {
    let Some(tool) = plan.cloud_tool.as_deref() else {
        return last;
    };
    if !last.fallback_eligible()
        || !skipped
            .iter()
            .any(|s| s.reason == ReasonCode::ToolNeverToCloud)
    {
        return last;
    }
    ProviderError::new(
        ErrorKind::PolicyBlocked,
        format!(
            "no target may serve `{}`: tool `{tool}` may not reach a cloud target (tools.never_to_cloud), and every local or LAN target failed (last: {last})",
            plan.requested
        ),
    )
}

/// The error when policy stopped every target and none failed.
fn nothing_allowed(skipped: &[SkippedTarget], requested: &str) -> ProviderError {
    if skipped
        .iter()
        .any(|s| s.reason == ReasonCode::BudgetExhausted)
    {
        ProviderError::new(
            ErrorKind::BudgetExhausted,
            format!("no target may serve `{requested}`: a spending cap is reached"),
        )
    } else {
        ProviderError::new(
            ErrorKind::PolicyBlocked,
            format!("no target may serve `{requested}`: policy stopped every target"),
        )
    }
}

/// What trying one planned target came to.
enum Tried {
    /// It served: the request is decided.
    Served(Box<RoutedStream>),
    /// Policy stopped it (or its slot is gone); nothing was sent.
    Skipped,
    /// It failed (after its retries).
    Failed(ProviderError),
}

/// One planned target of a running plan.
struct Target<'a> {
    inner: &'a Arc<Inner>,
    plan: &'a Plan,
    idx: usize,
    call: &'a dyn Dispatch,
}

/// A dispatch that produced its first event.
struct FirstEvent {
    permit: SlotPermit,
    stream: ChatStream,
    first: ChatEvent,
    ttft: Duration,
    /// When the first event arrived (the clock read `ttft` ends at, reused for the
    /// record and the upstream wait so that one read serves them all).
    at: Instant,
    /// The wait for this target's slot when this was the first try on it, else zero.
    queue_wait: Duration,
    reason: ReasonCode,
    /// Served by a target other than the first planned one: a later route step, or any
    /// target after an earlier one failed (counted in `switchyard_fallbacks_total`).
    fallback: bool,
}

impl Target<'_> {
    fn planned(&self) -> &PlannedTarget {
        &self.plan.targets[self.idx]
    }

    /// The dispatch check, admission to the target's queue, then dispatch with retries on
    /// the same target. `last_err`: the failure of the previous target, if any.
    async fn attempt(
        &self,
        request: &ChatRequest,
        progress: &mut Progress,
        last_err: Option<&ProviderError>,
    ) -> Tried {
        let (inner, planned) = (self.inner, self.planned());
        let Some(slot) = inner.slots.get(planned.slot).cloned() else {
            return Tried::Skipped;
        };
        // A target tried after another failed is a fallback, whatever its step.
        let after_failure = last_err.is_some();
        if let Err(reason) = dispatch_check(
            inner,
            self.plan.privacy,
            planned,
            &slot,
            request,
            after_failure,
        ) {
            progress.block(planned, reason);
            return Tried::Skipped;
        }
        let queue_start = Instant::now();
        let permit = match slot.admission.acquire_with(inner.shared.as_ref()).await {
            Ok(p) => p,
            Err(e) => {
                let took = queue_start.elapsed();
                // Kept in the record like any failure, but nothing was sent upstream.
                progress.failed.push(failed_attempt(planned, &e, took));
                progress.refused += 1;
                return Tried::Failed(e);
            }
        };
        // One clock read for the end of the queue wait, the trial's time and the first
        // dispatch: on this machine's clock source a read costs about 35 ns, and a plain
        // request made about 30 of them.
        let admitted = Instant::now();
        let queue_wait = admitted.saturating_duration_since(queue_start);
        // A target whose cooldown ended is tried by one request at a time (half-open).
        let _trial = TrialGuard::claim(&slot.live, inner.clock.at(admitted));
        let mut tries: u32 = 0;
        let mut dispatched = admitted;
        loop {
            let privacy = self.plan.privacy;
            let sent = dispatch(
                inner,
                privacy,
                planned,
                &slot,
                request,
                after_failure,
                self.call,
            );
            match sent.await {
                Ok((stream, first)) => {
                    let at = Instant::now();
                    let won = FirstEvent {
                        permit,
                        stream,
                        first,
                        ttft: at.saturating_duration_since(dispatched),
                        at,
                        // The first try on this target holds the queue wait (a failed
                        // one's record already counted it).
                        queue_wait: if tries == 0 {
                            queue_wait
                        } else {
                            Duration::ZERO
                        },
                        reason: served_reason(planned, last_err, tries),
                        fallback: after_failure || planned.step > 0,
                    };
                    return Tried::Served(Box::new(self.serve(slot, won, progress)));
                }
                Err(DispatchFailure::Blocked(reason)) => {
                    progress.block(planned, reason);
                    drop(permit);
                    return Tried::Skipped;
                }
                Err(DispatchFailure::Failed(e)) => {
                    let took = if tries == 0 {
                        queue_wait + dispatched.elapsed()
                    } else {
                        dispatched.elapsed()
                    };
                    progress.failed.push(failed_attempt(planned, &e, took));
                    if let Some(pause) = retry_pause(&e, tries, inner.config.retry) {
                        tracing::debug!(
                            target_ref = %planned.target,
                            reason = e.reason_code(),
                            pause_ms = millis(pause),
                            "retrying the same target"
                        );
                        tokio::time::sleep(pause).await;
                        tries += 1;
                        dispatched = Instant::now();
                        continue;
                    }
                    slot.record_failure(&e, inner.clock.now(), &inner.config.health.cooldowns_ms);
                    inner.publish_cooldown(&slot).await;
                    tracing::info!(
                        target_ref = %planned.target,
                        reason = e.reason_code(),
                        error = %e,
                        "target failed before its first event"
                    );
                    drop(permit);
                    return Tried::Failed(e);
                }
            }
        }
    }

    /// The target served: health, metrics, the targets put last and never reached, and the
    /// decision record so far; the stream finishes the record when it ends.
    fn serve(&self, slot: Arc<Slot>, won: FirstEvent, progress: &mut Progress) -> RoutedStream {
        let (inner, planned) = (self.inner, self.planned());
        let (ttft, reason, at) = (won.ttft, won.reason, won.at);
        slot.live.record_ttft(millis(ttft));
        if let Ok(mut h) = slot.live.health.lock() {
            h.on_success();
        }
        slot.admission.gauges.set_up(true);
        let metrics = inner.target_metrics.get(inner, &planned.target, at);
        metrics.ttft.record(ttft.as_secs_f64());
        if won.fallback {
            ::metrics::counter!(crate::metrics::FALLBACKS_TOTAL, "reason" => reason.as_str())
                .increment(1);
        }
        // Targets put last for their health and never reached.
        progress
            .skipped
            .extend(self.plan.targets[self.idx + 1..].iter().filter_map(|p| {
                p.deferred.map(|reason| SkippedTarget {
                    target: p.target.clone(),
                    reason,
                })
            }));
        let served_attempt = Attempt {
            target: planned.target.clone(),
            outcome: AttemptOutcome::Served,
            reason_code: reason,
            message: None,
            ttft_ms: Some(millis(ttft)),
            duration_ms: millis(won.queue_wait + ttft),
        };
        let price = slot
            .with_model(&planned.target.model, |m| m.price)
            .flatten();
        progress.decided = true;
        let mut record = progress.record_at(RequestOutcome::Ok, reason, at);
        record.attempts.push(served_attempt);
        record.served_by = Some(planned.target.clone());
        record.ttft_ms = Some(millis(at.saturating_duration_since(progress.started)));
        RoutedStream::new(Served {
            inner: inner.clone(),
            slot,
            permit: won.permit,
            stream: won.stream,
            first: won.first,
            upstream_requests: progress.failed.len().saturating_sub(progress.refused) + 1,
            failed_attempts: std::mem::take(&mut progress.failed),
            record,
            price,
            started: progress.started,
            upstream_wait: progress.catalog_wait
                + at.saturating_duration_since(progress.exec_start),
            offered: std::mem::take(&mut progress.offered),
            metrics,
            prompt_tokens_estimate: self.plan.prompt_tokens_estimate,
        })
    }
}

/// Why the target `planned` served after `tries` retries on it; `last_err`: the failure of
/// the target tried before it, if any. An earlier target's failure is why it serves
/// (`fallback_after_<code>`, `overflow_queue_full`), whether on its first try or a retry;
/// `retry` replaces only the reason of the route's first step (`primary`,
/// `group_balanced`): a later step or a cooling target keeps the reason it was planned with.
fn served_reason(
    planned: &PlannedTarget,
    last_err: Option<&ProviderError>,
    tries: u32,
) -> ReasonCode {
    match last_err {
        Some(e) => ReasonCode::fallback_after(e.kind()),
        None if tries > 0
            && matches!(
                planned.reason,
                ReasonCode::Primary | ReasonCode::GroupBalanced
            ) =>
        {
            ReasonCode::Retry
        }
        None => planned.reason,
    }
}

/// The pause before retrying the same target after `e`, or `None` when it is not retried
/// (not transient, out of retries, or the upstream asks for a longer wait).
fn retry_pause(e: &ProviderError, tries: u32, retry: crate::RetryConfig) -> Option<Duration> {
    let wait_ok = e.retry_after().is_none_or(|r| r <= MAX_RETRY_AFTER);
    (e.retryable() && tries < retry.max_retries && wait_ok)
        .then(|| backoff(retry.base_backoff_ms, tries).max(e.retry_after().unwrap_or_default()))
}

/// Holds a half-open trial; ends it without a verdict when dropped (the request was
/// cancelled, or failed in a way that says nothing about health). A verdict (success,
/// failure) ends it earlier.
struct TrialGuard {
    live: Arc<Live>,
    id: Option<u64>,
}

impl TrialGuard {
    fn claim(live: &Arc<Live>, now: Instant) -> Self {
        let id = live.health.lock().ok().and_then(|mut h| h.begin_trial(now));
        Self {
            live: live.clone(),
            id,
        }
    }
}

impl Drop for TrialGuard {
    fn drop(&mut self) {
        if let (Some(id), Ok(mut h)) = (self.id, self.live.health.lock()) {
            h.end_trial(id);
        }
    }
}

fn failed_attempt(planned: &PlannedTarget, e: &ProviderError, took: Duration) -> Attempt {
    Attempt {
        target: planned.target.clone(),
        outcome: AttemptOutcome::Failed,
        reason_code: ReasonCode::Error(e.kind()),
        message: Some(e.message().to_owned()),
        ttft_ms: None,
        duration_ms: millis(took),
    }
}

fn log_blocked(planned: &PlannedTarget, reason: ReasonCode) {
    // Planning left this target in; the dispatch check caught it (a reload or a concurrent
    // spend changed the facts, or an earlier member of a balanced group failed and cloud
    // fallback is off). Loud, because it guards privacy and money.
    tracing::warn!(
        target_ref = %planned.target,
        reason = reason.as_str(),
        "dispatch check stopped a planned target; nothing was sent"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_jittered_within_bounds() {
        for retry in 0..4 {
            let d = backoff(100, retry);
            let base = 100u64 << retry;
            assert!(d >= Duration::from_millis(base / 2), "{d:?}");
            assert!(d < Duration::from_millis(base * 3 / 2 + 1), "{d:?}");
        }
        assert!(backoff(u64::MAX, 40) > Duration::ZERO);
    }

    #[test]
    fn an_earlier_failure_wins_over_a_retry_and_retry_is_only_for_the_first_step() {
        let planned = |step, reason| PlannedTarget {
            target: crate::record::TargetRef {
                provider: "p".into(),
                model: "m".into(),
                locality: Locality::Local,
            },
            slot: 0,
            step,
            reason,
            deferred: None,
        };
        let refused = ProviderError::new(ErrorKind::ConnectRefused, "refused");
        let first = planned(0, ReasonCode::Primary);
        assert_eq!(served_reason(&first, None, 0), ReasonCode::Primary);
        assert_eq!(served_reason(&first, None, 1), ReasonCode::Retry);
        let later = planned(1, ReasonCode::Fallback);
        assert_eq!(
            served_reason(&later, Some(&refused), 1),
            ReasonCode::FallbackAfter(ErrorKind::ConnectRefused)
        );
        assert_eq!(served_reason(&later, None, 1), ReasonCode::Fallback);
    }
}
