//! Stable reason codes of routing decisions (in addition to the error kinds' own codes).

use switchyard_core::{ErrorKind, TimeoutPhase};

/// The first target of the plan served.
pub const PRIMARY: &str = "primary";
/// A later step of the route served, the earlier ones having been skipped.
pub const FALLBACK: &str = "fallback";
/// The serving target was picked from a balanced group.
pub const GROUP_BALANCED: &str = "group_balanced";
/// The first step was passed over by the route's overflow rule.
pub const OVERFLOW_QUEUE_DEPTH: &str = "overflow_queue_depth";
/// A previous target's queue was full, so the request went on.
pub const OVERFLOW_QUEUE_FULL: &str = "overflow_queue_full";
/// A cooling or down target tried only because nothing else was left.
pub const COOLING_LAST_RESORT: &str = "cooling_last_resort";
/// Served by a retry on the same target.
pub const RETRY: &str = "retry";

/// Skipped: the request is `local-only` and the target is in the cloud.
pub const PRIVACY_LOCAL_ONLY: &str = "privacy_local_only";
/// Skipped: cloud fallback is off (config or `SWITCHYARD_NO_CLOUD`).
pub const CLOUD_FALLBACK_DISABLED: &str = "cloud_fallback_disabled";
/// Skipped: a hard spending cap is reached.
pub const BUDGET_EXHAUSTED: &str = "budget_exhausted";
/// Skipped: a cloud model without a price while a spending cap applies (its spend could
/// not be counted, so it would be free of every cap).
pub const UNPRICED_UNDER_BUDGET: &str = "unpriced_under_budget";
/// Skipped: a bare model name is not sent to the cloud while a local or LAN provider whose
/// model list is not known yet (discovery has not answered) may offer it.
pub const LOCAL_CATALOG_UNKNOWN: &str = "local_catalog_unknown";
/// Skipped: the request named an exact target, which never falls back.
pub const STRICT_TARGET: &str = "strict_target";
/// Skipped: the route has `fallback: false`.
pub const NO_FALLBACK: &str = "no_fallback";
/// Put last: the target is cooling down after a failure.
pub const COOLING_DOWN: &str = "cooling_down";
/// Put last: the last active probe failed.
pub const HEALTH_DOWN: &str = "health_down";
/// Not tried: an earlier failure was not fallback-eligible.
pub const NOT_FALLBACK_ELIGIBLE: &str = "not_fallback_eligible";
/// Not tried: the caller may not use this route.
pub const CALLER_NOT_ALLOWED: &str = "caller_not_allowed";

/// A human sentence for a reason code, used in loud error messages.
pub fn describe(code: &str) -> &'static str {
    match code {
        PRIVACY_LOCAL_ONLY => "local-only requests never reach a cloud target",
        CLOUD_FALLBACK_DISABLED => {
            "cloud fallback is disabled (policy.cloud_fallback or SWITCHYARD_NO_CLOUD)"
        }
        BUDGET_EXHAUSTED => "the spending cap is reached, cloud targets are removed",
        UNPRICED_UNDER_BUDGET => {
            "the cloud model has no price, so its spend could not count against the configured cap"
        }
        LOCAL_CATALOG_UNKNOWN => {
            "a local or LAN provider whose model list is not known yet may offer this bare name; ask for provider/model to choose the cloud"
        }
        STRICT_TARGET => "an exact provider/model request does not fall back",
        NO_FALLBACK => "the route does not fall back",
        COOLING_DOWN => "cooling down after a failure",
        HEALTH_DOWN => "the last health probe failed",
        NOT_FALLBACK_ELIGIBLE => "the previous failure is not fallback-eligible",
        CALLER_NOT_ALLOWED => "the caller may not use this route",
        _ => "",
    }
}

/// `fallback_after_<code>` for the error that made the router move on.
pub fn fallback_after(kind: ErrorKind) -> &'static str {
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
        ErrorKind::QueueFull => OVERFLOW_QUEUE_FULL,
        _ => "fallback_after_error",
    }
}
