//! The router's configuration, as the reference binary embeds it in its JSON5 file.
//!
//! Every struct rejects unknown keys and uses snake_case; missing sections take their
//! defaults, so `{}` is a valid (empty) [`RouterConfig`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use switchyard_core::PrivacyClass;

/// The whole routing policy.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouterConfig {
    /// Route aliases (`chat`, `coder`, ...) and their ordered targets.
    pub routes: BTreeMap<String, RouteConfig>,
    /// Global policy: default privacy, the cloud-fallback switch, strictness, budget.
    pub policy: PolicyConfig,
    /// Per-caller policy, keyed by the caller id (the id of the gateway's API key).
    pub callers: BTreeMap<String, CallerPolicy>,
    /// Cooldown schedule and active probes.
    pub health: HealthConfig,
    /// Retries on the same target.
    pub retry: RetryConfig,
    /// Turns every cloud fallback off like `policy.cloud_fallback: false`. Not part of the
    /// file: the embedding binary sets it (the reference binary from the environment
    /// variable [`crate::NO_CLOUD_ENV`]); the router itself reads no environment.
    #[serde(skip)]
    pub no_cloud: bool,
}

/// One route alias.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    /// Ordered steps; the first is the primary, the others are fallbacks.
    pub targets: Vec<TargetStep>,
    /// Optional first-token-latency overflow from the first step to the next.
    #[serde(default)]
    pub overflow: Option<OverflowRule>,
    /// The privacy class this route imposes (the strictest class of caller, request,
    /// route and default applies). It also holds for a request this route's task rules
    /// send to another route.
    #[serde(default)]
    pub privacy: Option<PrivacyClass>,
    /// `Some(false)`: never fall back past the first step. `Some(true)` (or absent) on a
    /// route alias: fall back along the steps. `Some(true)` also lets a request for an
    /// exact `provider/model` that is this route's first step fall back along this route.
    #[serde(default)]
    pub fallback: Option<bool>,
    /// Responses API requests to this route that offer hosted tools (`web_search`, ...)
    /// the targets cannot run: `true` leaves those tools out; `false` (the default)
    /// refuses the request with a 400 naming the tool.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_unsupported_tools: bool,
    /// A tool call for a tool the request did not offer: `true` removes it from the answer
    /// (its stream events are never sent; when it was the only tool call, a `tool_calls`
    /// finish reason becomes `stop`); `false` (the default) passes it to the client. Either
    /// way it is flagged in the decision record, logged and counted.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub drop_unknown_tool_calls: bool,
    /// Task rules, in order: the first whose conditions all hold sends the request to
    /// another route (whose own rules then apply). Rules that loop are refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rules: Vec<TaskRule>,
}

/// One task rule of a route: `{ tools: ["browser_*"], to: "heavy" }`,
/// `{ task: "summary", to: "small" }`, `{ min_prompt_tokens: 8000, to: "long" }`. Every
/// condition given must hold; a rule needs at least one.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskRule {
    /// Holds when the request offers a tool matching one of these globs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<String>,
    /// Holds when the request's task (the `x-switchyard-task` header) is this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
    /// Holds when the estimated prompt (bytes / 4) is at least this many tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_prompt_tokens: Option<u64>,
    /// The route alias the request goes to.
    pub to: String,
}

/// One step of a route.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TargetStep {
    /// One target, `"provider/model"`.
    One(String),
    /// Equivalent targets balanced by load (fewest in flight plus queued, ties broken by
    /// lowest recent time to first token).
    Group {
        /// The members, each `"provider/model"`.
        group: Vec<String>,
    },
}

impl TargetStep {
    /// The step's targets as written (`"provider/model"`).
    pub fn members(&self) -> &[String] {
        match self {
            TargetStep::One(t) => std::slice::from_ref(t),
            TargetStep::Group { group } => group,
        }
    }
}

/// "Prefer the first step; go to the next when the first's queue is deeper than
/// `queue_depth` and its rolling median time to first token is above `ttft_p50_ms`."
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OverflowRule {
    /// Queue depth (waiting requests) that must be exceeded.
    pub queue_depth: usize,
    /// Rolling median time to first token (ms) that must be exceeded.
    pub ttft_p50_ms: u64,
}

/// Global policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicyConfig {
    /// Privacy class of requests nobody else classified.
    pub default_privacy: PrivacyClass,
    /// `false` turns off every cloud FALLBACK: a cloud target is then used only as the
    /// first step of a route (and not after another member of that step failed) or as an
    /// exact `provider/model`; a bare model name then never resolves to the cloud.
    /// [`RouterConfig::no_cloud`] (the binary's `SWITCHYARD_NO_CLOUD=1`) does the same.
    pub cloud_fallback: bool,
    /// A request for an exact `provider/model` never falls back (default `true`).
    pub strict_exact_targets: bool,
    /// Global spending caps.
    pub budget: BudgetConfig,
    /// Which tools keep a request off cloud targets.
    pub tools: ToolPolicy,
}

/// Tool policy by locality: a request that offers a tool matching one of the globs is
/// planned on local and LAN targets only (reason `tool_never_to_cloud`), checked again at
/// dispatch, and refused with `policy_blocked` naming the tool when no target is left.
/// Tools are never stripped from a request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ToolPolicy {
    /// Tool-name globs (`exec`, `browser_*`; `*`, `?`, `[...]`) never sent to the cloud.
    pub never_to_cloud: Vec<String>,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        Self {
            default_privacy: PrivacyClass::Any,
            cloud_fallback: true,
            strict_exact_targets: true,
            budget: BudgetConfig::default(),
            tools: ToolPolicy::default(),
        }
    }
}

/// Spending caps, in US dollars. Only priced usage counts, so while a cap applies to a
/// request, cloud models without a price are left out (reason `unpriced_under_budget`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BudgetConfig {
    /// Hard cap per UTC day.
    pub usd_per_day: Option<f64>,
    /// Hard cap per UTC calendar month.
    pub usd_per_month: Option<f64>,
    /// Fraction of a cap at which a warning is logged (default 0.8).
    pub soft_fraction: f64,
}

impl BudgetConfig {
    /// Whether a hard cap (per day or per month) is set.
    pub fn has_cap(&self) -> bool {
        self.usd_per_day.is_some() || self.usd_per_month.is_some()
    }
}

impl Default for BudgetConfig {
    fn default() -> Self {
        Self {
            usd_per_day: None,
            usd_per_month: None,
            soft_fraction: 0.8,
        }
    }
}

/// Policy for one caller (API key id).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CallerPolicy {
    /// Privacy class of every request of this caller.
    pub privacy: Option<PrivacyClass>,
    /// Route aliases (or exact `provider/model` names) this caller may use; `None`: all.
    pub allowed_routes: Option<Vec<String>>,
    /// This caller's own spending caps (in addition to the global ones).
    pub budget: Option<BudgetConfig>,
    /// This caller's own tool policy (in addition to the global `policy.tools`).
    pub tools: Option<ToolPolicy>,
}

/// Cooldowns and active probes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HealthConfig {
    /// Cooldown after the 1st, 2nd, ... consecutive failure; the last entry repeats.
    pub cooldowns_ms: Vec<u64>,
    /// Interval of active probes (`Provider::health`); `None`: no probes.
    pub probe_interval_ms: Option<u64>,
}

impl Default for HealthConfig {
    fn default() -> Self {
        Self {
            cooldowns_ms: vec![60_000, 300_000, 1_500_000, 3_600_000],
            probe_interval_ms: None,
        }
    }
}

/// Retries on the same target, before any output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    /// Retries after the first try (default 1).
    pub max_retries: u32,
    /// Back-off before the first retry; doubles each retry, jittered ±50% (default 200).
    pub base_backoff_ms: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        Self {
            max_retries: 1,
            base_backoff_ms: 200,
        }
    }
}
