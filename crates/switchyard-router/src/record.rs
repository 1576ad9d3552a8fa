//! What the router reports: targets, attempts, skipped targets, the per-request decision
//! record, failures, explanations, catalog and status entries.

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;
use switchyard_core::{
    ErrorKind, Locality, ModelInfo, PrivacyClass, ProviderError, ReasonCode, Usage,
};

/// One concrete target: a provider and the model id sent upstream.
///
/// Both names are shared (`Arc<str>`): a request's plan, its decision record, its answer
/// and the metrics each hold the target, and a clone is a count, not two copies.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TargetRef {
    /// The provider's id (`local`, `cloud`).
    pub provider: Arc<str>,
    /// The model id as the upstream names it.
    pub model: Arc<str>,
    /// Where the provider runs.
    pub locality: Locality,
}

impl fmt::Display for TargetRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.provider, self.model)
    }
}

/// How one attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    /// The target produced its first event and served the request.
    Served,
    /// The target failed before its first event (or the dispatch check stopped it).
    Failed,
}

/// One try of one target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Attempt {
    /// The target tried.
    pub target: TargetRef,
    /// Served or failed.
    pub outcome: AttemptOutcome,
    /// Why it was chosen (`primary`, `fallback_after_connect_refused`, `retry`, ...) when
    /// served; the error's reason code (`connect_refused`, `queue_full`, ...) when failed.
    pub reason_code: ReasonCode,
    /// The error message, for a failed attempt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Time from dispatch to the first event, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    /// Time the attempt took until its first event or its failure (queue wait included).
    pub duration_ms: u64,
}

/// A target that the plan left out, or put last, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedTarget {
    /// The target.
    pub target: TargetRef,
    /// The reason code.
    pub reason: ReasonCode,
}

/// How a request ended, in the decision record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "status", content = "reason")]
pub enum RequestOutcome {
    /// The stream ended with its final event.
    Ok,
    /// The request failed; the kind of the decisive error (serialized as its reason code).
    Error(ErrorKind),
    /// The caller dropped the stream before its end.
    Cancelled,
}

impl RequestOutcome {
    /// `ok`, `cancelled` or the error's reason code.
    pub fn as_str(&self) -> &'static str {
        match self {
            RequestOutcome::Ok => "ok",
            RequestOutcome::Error(kind) => kind.reason_code(),
            RequestOutcome::Cancelled => "cancelled",
        }
    }
}

/// Everything the router decided and observed for one request. Emitted once per request
/// as a tracing event (target `switchyard::decision`) and passed to the
/// [`DecisionObserver`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DecisionRecord {
    /// The request id (the caller's, or one the router generated).
    pub request_id: String,
    /// The caller id, when authenticated.
    pub caller: Option<String>,
    /// The model the request named (route alias, `provider/model` or bare model).
    pub requested: String,
    /// The route alias it resolved to, if any.
    pub route: Option<String>,
    /// The task rules that sent it to that route (`chat.rules[0] -> heavy`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The privacy class applied.
    pub privacy: PrivacyClass,
    /// Every attempt, in order.
    pub attempts: Vec<Attempt>,
    /// Targets skipped by the plan, with reasons.
    pub skipped: Vec<SkippedTarget>,
    /// The target that served the request.
    pub served_by: Option<TargetRef>,
    /// Tool calls the model made for tools the request did not offer (passed through,
    /// unless `unknown_tool_calls_dropped`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unknown_tool_calls: Vec<String>,
    /// The unknown tool calls were removed from the answer (the route's
    /// `drop_unknown_tool_calls`).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unknown_tool_calls_dropped: bool,
    /// Why the serving target was chosen (or the decisive error's reason code).
    pub reason: ReasonCode,
    /// Token usage reported by the upstream.
    pub usage: Option<Usage>,
    /// Cost in micro-dollars (0 for unpriced models).
    pub cost_micro_usd: u64,
    /// The upstream reported no usage (a stream abandoned or broken off): the cost is
    /// estimated from the prompt and the output sent (about four bytes a token).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub cost_estimated: bool,
    /// How the request ended.
    pub outcome: RequestOutcome,
    /// Time from the start of routing to the first event, when there was one.
    pub ttft_ms: Option<u64>,
    /// Time from the start of routing to the end of the stream (or the failure).
    pub duration_ms: u64,
    /// Wall-clock time the request started.
    #[serde(skip)]
    pub started_at: Option<SystemTime>,
}

/// Receives the decision record of every finished request (the gateway's metrics).
pub trait DecisionObserver: Send + Sync + fmt::Debug {
    /// Called once per request, when its stream ended, failed or was dropped, or when
    /// routing failed. Must not block.
    fn on_decision(&self, record: &DecisionRecord);
}

/// Routing failed: no target served the request.
#[derive(Debug, Clone)]
pub struct RouteFailure {
    /// The decisive error: `PolicyBlocked`, `BudgetExhausted`, `ModelNotFound` (unknown
    /// alias; the message lists what exists), `QueueFull` (with a retry hint), or the last
    /// attempt's error.
    pub error: ProviderError,
    /// The request id.
    pub request_id: String,
    /// Every attempt made.
    pub attempts: Vec<Attempt>,
    /// Targets left out, with the rule that stopped each.
    pub skipped: Vec<SkippedTarget>,
}

impl RouteFailure {
    /// The failure as one [`ProviderError`] of the decisive kind whose message is the loud
    /// [`Display`](fmt::Display) text (every attempt and every rule).
    pub fn into_provider_error(self) -> ProviderError {
        let mut err = ProviderError::new(self.error.kind(), self.to_string());
        if let Some(after) = self.error.retry_after() {
            err = err.with_retry_after(after);
        }
        if let Some(status) = self.error.status() {
            err = err.with_status(status);
        }
        err
    }

    /// The decisive error's kind.
    pub fn kind(&self) -> ErrorKind {
        self.error.kind()
    }
}

impl fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.error)?;
        if self.attempts.is_empty() {
            f.write_str("; no target was tried")?;
        } else {
            f.write_str("; attempts: ")?;
            for (i, a) in self.attempts.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} -> {}", a.target, a.reason_code)?;
                if let Some(m) = &a.message {
                    write!(f, " ({m})")?;
                }
            }
        }
        if !self.skipped.is_empty() {
            f.write_str("; not tried: ")?;
            for (i, s) in self.skipped.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{} ({}: {})", s.target, s.reason, s.reason.describe())?;
            }
        }
        write!(f, " [request {}]", self.request_id)
    }
}

impl std::error::Error for RouteFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

/// One target in an [`Explanation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExplainedTarget {
    /// The target.
    pub target: TargetRef,
    /// Whether the plan includes it (it would be tried, in this order).
    pub included: bool,
    /// Why it is in (`primary`, `fallback`, `group_balanced`, `overflow_queue_depth`; or
    /// `cooling_down` / `health_down`: put last, tried only when nothing else is left) or
    /// out (`privacy_local_only`, `cloud_fallback_disabled`, `budget_exhausted`,
    /// `strict_target`, `no_fallback`, `tool_never_to_cloud`, `model_lacks_tools`,
    /// `model_lacks_vision`, `model_lacks_thinking`, `context_window_exceeded`).
    pub reason: ReasonCode,
}

/// The plan for a request, computed without sending anything.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// The model the request named.
    pub requested: String,
    /// The route alias it resolved to.
    pub route: Option<String>,
    /// The task rules that sent it to that route (`chat.rules[0] -> heavy`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    /// The privacy class that applies.
    pub privacy: PrivacyClass,
    /// Whether fallback past the first step is allowed.
    pub fallback: bool,
    /// Every target considered: included ones first, in the order they would be tried,
    /// then the excluded ones.
    pub targets: Vec<ExplainedTarget>,
    /// Why nothing can be planned (unknown model, caller not allowed), if so.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a catalog entry names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CatalogKind {
    /// A route alias.
    Route,
    /// An exact `provider/model`.
    Target,
}

/// One model a client may ask for.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CatalogEntry {
    /// The name to put in a request's `model` (`chat`, `local/qwen2.5:7b`).
    pub id: String,
    /// Route alias or exact target.
    pub kind: CatalogKind,
    /// The provider (for a route: its primary target's provider).
    pub provider: String,
    /// The model's details (for a route: its primary target's), with `id` the upstream id.
    pub info: ModelInfo,
}

/// A provider's health.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Health {
    /// Serving (or not known to fail).
    Up,
    /// The last active probe failed.
    Down {
        /// The probe error's kind (serialized as its reason code).
        reason: ErrorKind,
    },
    /// In cooldown after a failure.
    Cooling {
        /// When the cooldown ends.
        #[serde(skip)]
        until: std::time::Instant,
        /// Milliseconds left.
        remaining_ms: u64,
        /// The failure's kind (serialized as its reason code).
        reason: ErrorKind,
    },
}

/// A provider's live state.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProviderStatus {
    /// The provider's id.
    pub id: String,
    /// Where it runs.
    pub locality: Locality,
    /// Up, down or cooling.
    pub health: Health,
    /// Requests holding a slot.
    pub in_flight: usize,
    /// Requests waiting for a slot.
    pub queued: usize,
    /// Rolling median time to first token of recent requests.
    pub ttft_p50_ms: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchyard_core::TimeoutPhase;

    #[test]
    fn typed_codes_serialize_as_their_wire_strings() {
        let outcome = RequestOutcome::Error(ErrorKind::Timeout(TimeoutPhase::FirstToken));
        assert_eq!(outcome.as_str(), "timeout_first_token");
        assert_eq!(
            serde_json::to_value(&outcome).ok(),
            Some(json!({"status": "error", "reason": "timeout_first_token"}))
        );
        assert_eq!(
            serde_json::to_value(RequestOutcome::Cancelled).ok(),
            Some(json!({"status": "cancelled"}))
        );
        let down = Health::Down {
            reason: ErrorKind::ConnectRefused,
        };
        assert_eq!(
            serde_json::to_value(&down).ok(),
            Some(json!({"state": "down", "reason": "connect_refused"}))
        );
        let cooling = Health::Cooling {
            until: std::time::Instant::now(),
            remaining_ms: 5,
            reason: ErrorKind::RateLimited,
        };
        assert_eq!(
            serde_json::to_value(&cooling).ok(),
            Some(json!({"state": "cooling", "remaining_ms": 5, "reason": "rate_limited"}))
        );
    }
}
