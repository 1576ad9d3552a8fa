//! Running a plan: admission, the last policy check, dispatch, retries, fallback, health.
//!
//! Fallback and retries happen only before the first event: [`Router::route`] returns once
//! the serving target's first event is in hand, and after that a failure is passed through
//! as the stream's error item (see [`crate::RoutedStream`]).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ErrorKind, Locality, PrivacyClass, ProviderError,
};

use crate::plan::{Plan, PlannedTarget};
use crate::reasons;
use crate::record::{
    Attempt, AttemptOutcome, DecisionRecord, RequestOutcome, RouteFailure, SkippedTarget,
};
use crate::router::{Inner, Router, is_cloud};
use crate::slot::{Live, Slot};
use crate::stream::{RoutedStream, Served, emit_record};

/// Longest upstream `retry-after` the router waits out on the same target; a longer one
/// moves on to the next target instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(1);

/// Why a dispatch did not produce a first event.
enum DispatchFailure {
    /// The last policy check stopped it (reason code); nothing was sent.
    Blocked(&'static str),
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
    caller: Option<&str>,
    after_failure: bool,
) -> Result<(), &'static str> {
    // The model's own locality counts too (read again: the catalog may have changed).
    let locality = slot
        .model_locality(&planned.target.model)
        .max(planned.target.locality);
    if !privacy.allows(locality) {
        return Err(reasons::PRIVACY_LOCAL_ONLY);
    }
    if is_cloud(locality) {
        if (planned.step > 0 || after_failure) && inner.cloud_fallback_off() {
            return Err(reasons::CLOUD_FALLBACK_DISABLED);
        }
        if inner.budget_exhausted(caller, false).is_some() {
            return Err(reasons::BUDGET_EXHAUSTED);
        }
    }
    Ok(())
}

/// The one place a provider's `chat` is called: after [`dispatch_check`], and it waits for
/// the first event.
async fn dispatch(
    inner: &Inner,
    privacy: PrivacyClass,
    planned: &PlannedTarget,
    slot: &Slot,
    request: &ChatRequest,
    after_failure: bool,
) -> Result<(ChatStream, ChatEvent), DispatchFailure> {
    dispatch_check(
        inner,
        privacy,
        planned,
        slot,
        request.meta.caller.as_deref(),
        after_failure,
    )
    .map_err(DispatchFailure::Blocked)?;
    if !privacy.allows(Locality::Cloud) && !slot.catalog_known() {
        // A model of a local provider may still run in the cloud (Ollama's `-cloud`
        // models): know this provider's catalog before a request that may not leave the
        // machine goes there, then check again.
        slot.refresh_catalog(crate::router::CATALOG_TIMEOUT).await;
        dispatch_check(
            inner,
            privacy,
            planned,
            slot,
            request.meta.caller.as_deref(),
            after_failure,
        )
        .map_err(DispatchFailure::Blocked)?;
    }
    let mut stream = slot
        .provider
        .chat(request)
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
        let started = Instant::now();
        let started_at = self.inner.clock.wall();
        let request_id = if request.meta.request_id.is_empty() {
            new_request_id()
        } else {
            request.meta.request_id.clone()
        };
        let inner = &self.inner;
        // A bare name goes to the least exposed provider offering it: know the local
        // catalogs first.
        inner.refresh_local_catalogs_for(&request.model).await;
        let mut planned = inner.plan(request);
        if matches!(&planned, Err(e) if e.unknown_model) && inner.any_catalog_stale() {
            // The name may be a model discovered since the last refresh.
            inner.refresh_catalogs().await;
            planned = inner.plan(request);
        }
        let plan = match planned {
            Ok(plan) => plan,
            Err(e) => {
                let e = *e;
                let failure = RouteFailure {
                    error: e.error,
                    request_id,
                    attempts: Vec::new(),
                    skipped: e.excluded,
                };
                let record = DecisionRecord {
                    request_id: failure.request_id.clone(),
                    caller: request.meta.caller.clone(),
                    requested: request.model.clone(),
                    route: e.route,
                    privacy: e.privacy,
                    attempts: Vec::new(),
                    skipped: failure.skipped.clone(),
                    served_by: None,
                    reason: failure.error.reason_code(),
                    usage: None,
                    cost_micro_usd: 0,
                    outcome: RequestOutcome::Error(failure.error.reason_code()),
                    ttft_ms: None,
                    duration_ms: millis(started.elapsed()),
                    started_at: Some(started_at),
                };
                emit_record(inner, &record, Some(&failure.error));
                return Err(failure);
            }
        };
        run(
            self.inner.clone(),
            plan,
            request,
            request_id,
            started,
            started_at,
        )
        .await
    }

    /// The plan for `request` with the reason each target is in or out, without sending
    /// anything.
    pub fn explain(&self, request: &ChatRequest) -> crate::Explanation {
        self.inner.explain(request)
    }
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
    privacy: PrivacyClass,
    started: Instant,
    started_at: std::time::SystemTime,
    failed: Vec<Attempt>,
    skipped: Vec<SkippedTarget>,
    decided: bool,
}

impl Progress {
    fn record(&self, outcome: RequestOutcome, reason: &'static str) -> DecisionRecord {
        DecisionRecord {
            request_id: self.request_id.clone(),
            caller: self.caller.clone(),
            requested: self.requested.clone(),
            route: self.route.clone(),
            privacy: self.privacy,
            attempts: self.failed.clone(),
            skipped: self.skipped.clone(),
            served_by: None,
            reason,
            usage: None,
            cost_micro_usd: 0,
            outcome,
            ttft_ms: None,
            duration_ms: millis(self.started.elapsed()),
            started_at: Some(self.started_at),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if !self.decided {
            let record = self.record(RequestOutcome::Cancelled, "cancelled");
            emit_record(&self.inner, &record, None);
        }
    }
}

async fn run(
    inner: Arc<Inner>,
    plan: Plan,
    request: &ChatRequest,
    request_id: String,
    started: Instant,
    started_at: std::time::SystemTime,
) -> Result<RoutedStream, RouteFailure> {
    let exec_start = Instant::now();
    let retry = inner.config.retry;
    let mut progress = Progress {
        inner: inner.clone(),
        request_id,
        caller: request.meta.caller.clone(),
        requested: plan.requested.clone(),
        route: plan.route.clone(),
        privacy: plan.privacy,
        started,
        started_at,
        failed: Vec::new(),
        skipped: plan.excluded.clone(),
        decided: false,
    };
    let mut last_err: Option<ProviderError> = None;
    // One copy of the request, its model set to each target's upstream id in turn.
    let mut upstream_request: Cow<'_, ChatRequest> = Cow::Borrowed(request);

    for (idx, planned) in plan.targets.iter().enumerate() {
        if let Some(e) = &last_err {
            if !e.fallback_eligible() {
                progress
                    .skipped
                    .extend(plan.targets[idx..].iter().map(|p| SkippedTarget {
                        target: p.target.clone(),
                        reason: reasons::NOT_FALLBACK_ELIGIBLE,
                    }));
                break;
            }
        }
        let Some(slot) = inner.slots.get(planned.slot).cloned() else {
            continue;
        };
        // A target tried after another failed is a fallback, whatever its step.
        let after_failure = last_err.is_some();
        if let Err(reason) = dispatch_check(
            &inner,
            plan.privacy,
            planned,
            &slot,
            request.meta.caller.as_deref(),
            after_failure,
        ) {
            log_blocked(planned, reason);
            progress.skipped.push(SkippedTarget {
                target: planned.target.clone(),
                reason,
            });
            continue;
        }
        let queue_start = Instant::now();
        let permit = match slot.admission.acquire().await {
            Ok(p) => p,
            Err(e) => {
                progress
                    .failed
                    .push(failed_attempt(planned, &e, queue_start.elapsed()));
                last_err = Some(e);
                continue;
            }
        };
        let queue_wait = queue_start.elapsed();
        if upstream_request.model != planned.target.model {
            upstream_request
                .to_mut()
                .model
                .clone_from(&planned.target.model);
        }
        // A target whose cooldown ended is tried by one request at a time (half-open).
        let _trial = TrialGuard::claim(&slot.live, inner.clock.now());
        let mut tries: u32 = 0;
        loop {
            let dispatched = Instant::now();
            match dispatch(
                &inner,
                plan.privacy,
                planned,
                &slot,
                &upstream_request,
                after_failure,
            )
            .await
            {
                Ok((stream, first)) => {
                    let ttft = dispatched.elapsed();
                    slot.live.record_ttft(millis(ttft));
                    if let Ok(mut h) = slot.live.health.lock() {
                        h.on_success();
                    }
                    crate::metrics::set_provider_up(&slot.id, true);
                    let target_label = crate::metrics::target_label(&inner, &planned.target);
                    ::metrics::histogram!(crate::metrics::TTFT_SECONDS, "target" => target_label)
                        .record(ttft.as_secs_f64());
                    let reason = match (&last_err, tries) {
                        (_, t) if t > 0 => reasons::RETRY,
                        (Some(e), _) => reasons::fallback_after(e.kind()),
                        (None, _) => planned.reason,
                    };
                    if reason != reasons::PRIMARY && reason != reasons::GROUP_BALANCED {
                        ::metrics::counter!(crate::metrics::FALLBACKS_TOTAL, "reason" => reason)
                            .increment(1);
                    }
                    // Targets put last for their health and never reached.
                    progress
                        .skipped
                        .extend(plan.targets[idx + 1..].iter().filter_map(|p| {
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
                        duration_ms: millis(queue_wait + ttft),
                    };
                    let price = slot.model_info(&planned.target.model).and_then(|m| m.price);
                    progress.decided = true;
                    let mut record = progress.record(RequestOutcome::Ok, reason);
                    record.attempts.push(served_attempt);
                    record.served_by = Some(planned.target.clone());
                    record.ttft_ms = Some(millis(started.elapsed()));
                    return Ok(RoutedStream::new(Served {
                        inner: inner.clone(),
                        slot,
                        permit,
                        stream,
                        first,
                        failed_attempts: std::mem::take(&mut progress.failed),
                        record,
                        price,
                        started,
                        upstream_wait: exec_start.elapsed(),
                    }));
                }
                Err(DispatchFailure::Blocked(reason)) => {
                    log_blocked(planned, reason);
                    progress.skipped.push(SkippedTarget {
                        target: planned.target.clone(),
                        reason,
                    });
                    break;
                }
                Err(DispatchFailure::Failed(e)) => {
                    let took = if tries == 0 {
                        queue_wait + dispatched.elapsed()
                    } else {
                        dispatched.elapsed()
                    };
                    progress.failed.push(failed_attempt(planned, &e, took));
                    let wait_ok = e.retry_after().is_none_or(|r| r <= MAX_RETRY_AFTER);
                    if e.retryable() && tries < retry.max_retries && wait_ok {
                        let pause = backoff(retry.base_backoff_ms, tries)
                            .max(e.retry_after().unwrap_or_default());
                        tracing::debug!(
                            target_ref = %planned.target,
                            reason = e.reason_code(),
                            pause_ms = millis(pause),
                            "retrying the same target"
                        );
                        tokio::time::sleep(pause).await;
                        tries += 1;
                        continue;
                    }
                    slot.record_failure(&e, inner.clock.now(), &inner.config.health.cooldowns_ms);
                    tracing::info!(
                        target_ref = %planned.target,
                        reason = e.reason_code(),
                        error = %e,
                        "target failed before its first event"
                    );
                    last_err = Some(e);
                    break;
                }
            }
        }
        drop(permit);
    }

    let error = match last_err {
        Some(e) => e,
        None => {
            let budget = progress
                .skipped
                .iter()
                .any(|s| s.reason == reasons::BUDGET_EXHAUSTED);
            if budget {
                ProviderError::new(
                    ErrorKind::BudgetExhausted,
                    format!(
                        "no target may serve `{}`: a spending cap is reached",
                        plan.requested
                    ),
                )
            } else {
                ProviderError::new(
                    ErrorKind::PolicyBlocked,
                    format!(
                        "no target may serve `{}`: policy stopped every target",
                        plan.requested
                    ),
                )
            }
        }
    };
    progress.decided = true;
    let record = progress.record(
        RequestOutcome::Error(error.reason_code()),
        error.reason_code(),
    );
    emit_record(&inner, &record, Some(&error));
    Err(RouteFailure {
        error,
        request_id: record.request_id,
        attempts: record.attempts,
        skipped: record.skipped,
    })
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
        reason_code: e.reason_code(),
        message: Some(e.message().to_owned()),
        ttft_ms: None,
        duration_ms: millis(took),
    }
}

fn log_blocked(planned: &PlannedTarget, reason: &'static str) {
    // Planning left this target in; the dispatch check caught it (a reload or a concurrent
    // spend changed the facts, or an earlier member of a balanced group failed and cloud
    // fallback is off). Loud, because it guards privacy and money.
    tracing::warn!(
        target_ref = %planned.target,
        reason,
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
}
