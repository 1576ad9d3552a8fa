//! Names of the metrics the router records through the [`metrics`](https://docs.rs/metrics)
//! facade. The binary installs the exporter; without one the calls cost next to nothing.
//!
//! Labels stay low-cardinality: route aliases and provider ids come from the config,
//! `target` labels from `target_label` (known models only, else `<provider>/other`),
//! outcomes and reasons are reason codes.

/// Counter `{route, target, outcome}`: finished requests. `route` is the alias, or
/// `direct` for exact and bare model names; `target` is `provider/model` or `none`;
/// `outcome` is `ok`, `cancelled` or an error's reason code.
pub const REQUESTS_TOTAL: &str = "switchyard_requests_total";
/// Histogram `{target}`: seconds from dispatch to the first event of the serving target.
pub const TTFT_SECONDS: &str = "switchyard_ttft_seconds";
/// Histogram `{target}`: seconds from the start of routing to the end of the stream.
pub const REQUEST_DURATION_SECONDS: &str = "switchyard_request_duration_seconds";
/// Gauge `{provider}`: requests waiting for a slot.
pub const QUEUE_DEPTH: &str = "switchyard_queue_depth";
/// Gauge `{provider}`: requests holding a slot.
pub const IN_FLIGHT: &str = "switchyard_in_flight";
/// Counter `{reason}`: requests served by a target other than the first planned one
/// (`fallback_after_<code>`, `overflow_queue_full`, ...).
pub const FALLBACKS_TOTAL: &str = "switchyard_fallbacks_total";
/// Counter `{target, kind}`: tokens, `kind` = `prompt` or `completion`.
pub const TOKENS_TOTAL: &str = "switchyard_tokens_total";
/// `{provider}`: US dollars spent. Recorded as a gauge that only grows (the facade's
/// counters are integers); the ledger keeps the exact micro-dollar amounts.
pub const SPEND_USD_TOTAL: &str = "switchyard_spend_usd_total";
/// Gauge `{provider}`: 1 when the provider is up, 0 when down or cooling.
pub const PROVIDER_UP: &str = "switchyard_provider_up";
/// Counter `{caller}`: a caller's tool list shrank (a tool offered in most of its recent
/// requests disappeared). `caller` is the API key id, or `-` without one.
pub const TOOL_SET_SHRUNK_TOTAL: &str = "switchyard_tool_set_shrunk_total";
/// Counter `{caller}`: tool calls for a tool the request did not offer.
pub const UNKNOWN_TOOL_CALLS_TOTAL: &str = "switchyard_unknown_tool_calls_total";

/// Gauge: 1 while the shared state (`shared_state` in the config) answers, 0 while it is
/// unreachable. Absent without shared state.
pub const SHARED_STATE_UP: &str = "switchyard_shared_state_up";
/// Counter `{op}`: failed shared-state operations; `op` is `snapshot`, `charge`, `rate`,
/// `cool`, `ping`, `reconcile`, `concurrency` (fleet-wide `max_concurrency`) or `probe`
/// (shared health probes).
pub const SHARED_STATE_ERRORS_TOTAL: &str = "switchyard_shared_state_errors_total";
/// Counter: spend charges recorded while the shared state was unreachable and applied to
/// it once it answered again.
pub const SHARED_STATE_RECONCILED_TOTAL: &str = "switchyard_shared_state_reconciled_total";
/// Counter: spend charges the outage journal could not keep (it was full and dropped its
/// oldest, or writing it failed): they never reach the shared totals (the local ledger
/// still has them).
pub const SHARED_STATE_JOURNAL_DROPPED_TOTAL: &str =
    "switchyard_shared_state_journal_dropped_total";

/// Counter `{provider, source}`: health probe results applied; `source` is `own` (this
/// replica probed) or `shared` (another replica's fresh result, read from the shared state).
pub const HEALTH_PROBES_TOTAL: &str = "switchyard_health_probes_total";

pub(crate) fn set_queue_depth(provider: &str, depth: usize) {
    ::metrics::gauge!(QUEUE_DEPTH, "provider" => provider.to_owned()).set(depth as f64);
}

pub(crate) fn set_in_flight(provider: &str, in_flight: usize) {
    ::metrics::gauge!(IN_FLIGHT, "provider" => provider.to_owned()).set(in_flight as f64);
}

pub(crate) fn set_provider_up(provider: &str, up: bool) {
    ::metrics::gauge!(PROVIDER_UP, "provider" => provider.to_owned()).set(if up {
        1.0
    } else {
        0.0
    });
}

/// Longest `provider/model` written as a `target` label; longer ones become `<provider>/other`.
pub(crate) const MAX_TARGET_LABEL: usize = 128;

/// The `target` label for `target`: `provider/model` when the model is one this generation
/// knows (configured statically, named by a route, or discovered) and the label is short and
/// plain; `<provider>/other` otherwise, and `other` for an unknown provider. Names a
/// caller sends to an upstream that accepts anything so never grow `/metrics`.
pub(crate) fn target_label(inner: &crate::router::Inner, target: &crate::TargetRef) -> String {
    let Some(&index) = inner.by_id.get(&target.provider) else {
        return "other".to_owned();
    };
    let plain = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/@+".contains(&b))
    };
    let known = || {
        inner
            .slots
            .get(index)
            .is_some_and(|s| s.offers(&target.model))
            || inner.routes.values().any(|r| {
                r.steps
                    .iter()
                    .flatten()
                    .any(|t| t.slot == index && t.model == target.model)
            })
    };
    if target.provider.len() + 1 + target.model.len() <= MAX_TARGET_LABEL
        && plain(&target.provider)
        && plain(&target.model)
        && known()
    {
        target.to_string()
    } else if plain(&target.provider) && target.provider.len() <= MAX_TARGET_LABEL {
        format!("{}/other", target.provider)
    } else {
        "other".to_owned()
    }
}
