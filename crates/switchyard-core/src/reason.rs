//! Stable reason codes: why a routing decision was taken, why a target was skipped, or
//! which classified error decided an outcome.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::{ErrorKind, TimeoutPhase};

/// A stable, snake_case reason code, as logs, metrics labels, decision records and the
/// `x-switchyard-route-reason` header spell it ([`ReasonCode::as_str`]).
///
/// ```
/// use switchyard_core::{ErrorKind, ReasonCode};
///
/// assert_eq!(ReasonCode::Primary.as_str(), "primary");
/// assert_eq!(
///     ReasonCode::fallback_after(ErrorKind::ConnectRefused).to_string(),
///     "fallback_after_connect_refused"
/// );
/// assert_eq!(ReasonCode::Error(ErrorKind::Auth).as_str(), "auth_failed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ReasonCode {
    /// The first target of the plan served.
    Primary,
    /// A later step of the route served, the earlier ones having been skipped.
    Fallback,
    /// The serving target was picked from a balanced group.
    GroupBalanced,
    /// The first step was passed over by the route's overflow rule.
    OverflowQueueDepth,
    /// A previous target's queue was full, so the request went on.
    OverflowQueueFull,
    /// A cooling or down target tried only because nothing else was left.
    CoolingLastResort,
    /// Served by a retry on the same target.
    Retry,
    /// Skipped: the request is `local-only` and the target is in the cloud.
    PrivacyLocalOnly,
    /// Skipped: cloud fallback is off (config or `SWITCHYARD_NO_CLOUD`).
    CloudFallbackDisabled,
    /// Skipped: a hard spending cap is reached.
    BudgetExhausted,
    /// Skipped: a cloud model without a price while a spending cap applies (its spend
    /// could not be counted, so it would be free of every cap).
    UnpricedUnderBudget,
    /// Skipped: a bare model name is not sent to the cloud while a local or LAN provider
    /// whose model list is not known yet (discovery has not answered) may offer it.
    LocalCatalogUnknown,
    /// Skipped: the request named an exact target, which never falls back.
    StrictTarget,
    /// Skipped: the route has `fallback: false`.
    NoFallback,
    /// Put last: the target is cooling down after a failure.
    CoolingDown,
    /// Put last: the last active probe failed.
    HealthDown,
    /// Not tried: an earlier failure was not fallback-eligible.
    NotFallbackEligible,
    /// Not tried: the caller may not use this route.
    CallerNotAllowed,
    /// A later target served after an error of this kind on an earlier one
    /// (`fallback_after_<code>`). Build it with [`ReasonCode::fallback_after`], which maps a
    /// full queue to [`ReasonCode::OverflowQueueFull`].
    FallbackAfter(ErrorKind),
    /// A classified error's own code ([`ErrorKind::reason_code`]).
    Error(ErrorKind),
    /// A probe of one API path failed (the doctor's path rung).
    PathFailed,
    /// Skipped: the request offers tools and the model lacks the `tools` capability (and
    /// text tool-call recovery is off for it).
    ModelLacksTools,
    /// Skipped: the request carries images and the model lacks the `vision` capability.
    ModelLacksVision,
    /// Skipped: the request asks to think and the model lacks the `thinking` capability.
    ModelLacksThinking,
    /// Skipped: the request's estimated prompt size is over the model's context window.
    ContextWindowExceeded,
    /// Skipped: the request offers a tool that `never_to_cloud` keeps off cloud targets.
    ToolNeverToCloud,
}

impl ReasonCode {
    /// The reason for serving after the error that made the router move on: a full queue
    /// is an overflow, everything else `fallback_after_<code>`.
    pub fn fallback_after(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::QueueFull => ReasonCode::OverflowQueueFull,
            kind => ReasonCode::FallbackAfter(kind),
        }
    }

    /// The code as it goes on the wire and into logs.
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::Primary => "primary",
            ReasonCode::Fallback => "fallback",
            ReasonCode::GroupBalanced => "group_balanced",
            ReasonCode::OverflowQueueDepth => "overflow_queue_depth",
            ReasonCode::OverflowQueueFull => "overflow_queue_full",
            ReasonCode::CoolingLastResort => "cooling_last_resort",
            ReasonCode::Retry => "retry",
            ReasonCode::PrivacyLocalOnly => "privacy_local_only",
            ReasonCode::CloudFallbackDisabled => "cloud_fallback_disabled",
            ReasonCode::BudgetExhausted => "budget_exhausted",
            ReasonCode::UnpricedUnderBudget => "unpriced_under_budget",
            ReasonCode::LocalCatalogUnknown => "local_catalog_unknown",
            ReasonCode::StrictTarget => "strict_target",
            ReasonCode::NoFallback => "no_fallback",
            ReasonCode::CoolingDown => "cooling_down",
            ReasonCode::HealthDown => "health_down",
            ReasonCode::NotFallbackEligible => "not_fallback_eligible",
            ReasonCode::CallerNotAllowed => "caller_not_allowed",
            ReasonCode::FallbackAfter(kind) => fallback_after_str(kind),
            ReasonCode::Error(kind) => kind.reason_code(),
            ReasonCode::PathFailed => "path_failed",
            ReasonCode::ModelLacksTools => "model_lacks_tools",
            ReasonCode::ModelLacksVision => "model_lacks_vision",
            ReasonCode::ModelLacksThinking => "model_lacks_thinking",
            ReasonCode::ContextWindowExceeded => "context_window_exceeded",
            ReasonCode::ToolNeverToCloud => "tool_never_to_cloud",
        }
    }

    /// A human sentence for a reason that skips or defers a target, used in loud error
    /// messages; empty for the others.
    pub fn describe(self) -> &'static str {
        match self {
            ReasonCode::PrivacyLocalOnly => "local-only requests never reach a cloud target",
            ReasonCode::CloudFallbackDisabled => {
                "cloud fallback is disabled (policy.cloud_fallback or SWITCHYARD_NO_CLOUD)"
            }
            ReasonCode::BudgetExhausted => "the spending cap is reached, cloud targets are removed",
            ReasonCode::UnpricedUnderBudget => {
                "the cloud model has no price, so its spend could not count against the configured cap"
            }
            ReasonCode::LocalCatalogUnknown => {
                "a local or LAN provider whose model list is not known yet may offer this bare name; ask for provider/model to choose the cloud"
            }
            ReasonCode::StrictTarget => "an exact provider/model request does not fall back",
            ReasonCode::NoFallback => "the route does not fall back",
            ReasonCode::CoolingDown => "cooling down after a failure",
            ReasonCode::HealthDown => "the last health probe failed",
            ReasonCode::NotFallbackEligible => "the previous failure is not fallback-eligible",
            ReasonCode::CallerNotAllowed => "the caller may not use this route",
            ReasonCode::ModelLacksTools => {
                "the request offers tools and the model cannot call tools (no `tools` capability)"
            }
            ReasonCode::ModelLacksVision => {
                "the request carries images and the model cannot read them (no `vision` capability)"
            }
            ReasonCode::ModelLacksThinking => {
                "the request asks to think and the model cannot (no `thinking` capability)"
            }
            ReasonCode::ContextWindowExceeded => {
                "the estimated prompt (bytes / 4) is over the model's context window"
            }
            ReasonCode::ToolNeverToCloud => {
                "the request offers a tool that policy keeps off cloud targets (tools.never_to_cloud)"
            }
            ReasonCode::Primary
            | ReasonCode::Fallback
            | ReasonCode::GroupBalanced
            | ReasonCode::OverflowQueueDepth
            | ReasonCode::OverflowQueueFull
            | ReasonCode::CoolingLastResort
            | ReasonCode::Retry
            | ReasonCode::FallbackAfter(_)
            | ReasonCode::Error(_)
            | ReasonCode::PathFailed => "",
        }
    }
}

/// `fallback_after_<code>` of an error kind.
fn fallback_after_str(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::ConnectRefused => "fallback_after_connect_refused",
        ErrorKind::Dns => "fallback_after_dns_failure",
        ErrorKind::Tls => "fallback_after_tls_failure",
        ErrorKind::Connect => "fallback_after_connect_failed",
        ErrorKind::Timeout(TimeoutPhase::Connect) => "fallback_after_timeout_connect",
        ErrorKind::Timeout(TimeoutPhase::FirstToken) => "fallback_after_timeout_first_token",
        ErrorKind::Timeout(TimeoutPhase::Idle) => "fallback_after_timeout_idle",
        ErrorKind::Timeout(TimeoutPhase::Total) => "fallback_after_timeout_total",
        ErrorKind::Timeout(TimeoutPhase::Queue) => "fallback_after_timeout_queue",
        ErrorKind::Auth => "fallback_after_auth_failed",
        ErrorKind::RateLimited => "fallback_after_rate_limited",
        ErrorKind::QuotaExhausted => "fallback_after_quota_exhausted",
        ErrorKind::Overloaded => "fallback_after_overloaded",
        ErrorKind::ModelNotFound => "fallback_after_model_not_found",
        ErrorKind::EndpointNotFound => "fallback_after_endpoint_not_found",
        ErrorKind::Upstream => "fallback_after_upstream_error",
        ErrorKind::MalformedStream => "fallback_after_malformed_stream",
        ErrorKind::StreamEndedEarly => "fallback_after_stream_ended_early",
        ErrorKind::BudgetExhausted => "fallback_after_budget_exhausted",
        ErrorKind::PolicyBlocked => "fallback_after_policy_blocked",
        ErrorKind::QueueFull => "overflow_queue_full",
        ErrorKind::Unsupported => "fallback_after_unsupported",
        ErrorKind::ContextOverflow
        | ErrorKind::InvalidRequest
        | ErrorKind::Cancelled
        | ErrorKind::Internal => "fallback_after_error",
    }
}

impl From<ErrorKind> for ReasonCode {
    fn from(kind: ErrorKind) -> Self {
        ReasonCode::Error(kind)
    }
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ReasonCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for ReasonCode {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for ReasonCode {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
