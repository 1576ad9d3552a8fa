//! Errors of building a router from a config.

/// Why a [`crate::RouterConfig`] (with its providers) was refused. The running router stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouterError {
    /// Two providers share an id.
    #[error("duplicate_provider: provider id `{0}` is given twice")]
    DuplicateProvider(String),
    /// A provider id is empty or contains `/`.
    #[error("invalid_provider_id: provider id `{0}` must be non-empty and contain no `/`")]
    InvalidProviderId(String),
    /// A route has no targets, or a group has no members.
    #[error("empty_route: route `{0}` has no targets (or an empty group)")]
    EmptyRoute(String),
    /// A route target is not `provider/model`.
    #[error("invalid_target: route `{route}`: target `{target}` is not `provider/model`")]
    InvalidTarget {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
    },
    /// A route target names a provider that does not exist.
    #[error(
        "unknown_provider: route `{route}`: target `{target}` names an unknown provider (known: {known})"
    )]
    UnknownProvider {
        /// The route.
        route: String,
        /// The target as written.
        target: String,
        /// The providers that exist, comma-separated.
        known: String,
    },
    /// A route alias contains `/` (it would shadow `provider/model` names).
    #[error("invalid_route_name: route alias `{0}` must be non-empty and contain no `/`")]
    InvalidRouteName(String),
    /// A caller's `allowed_routes` names something that is neither a route nor a target.
    #[error(
        "unknown_allowed_route: caller `{caller}` allows `{route}`, which is not a route alias or provider/model"
    )]
    UnknownAllowedRoute {
        /// The caller.
        caller: String,
        /// The name.
        route: String,
    },
    /// A budget value is negative or not finite, or `soft_fraction` is outside (0, 1].
    #[error("invalid_budget: {0}")]
    InvalidBudget(String),
    /// The cooldown schedule is empty or has a zero entry.
    #[error("invalid_health: health.cooldowns_ms must be non-empty and positive")]
    InvalidHealth,
    /// A `never_to_cloud` tool glob does not parse.
    #[error("invalid_tool_glob: {at}: `{glob}` is not a valid glob ({why})")]
    InvalidToolGlob {
        /// Where it is written (`policy.tools.never_to_cloud`, `callers.<id>.tools...`).
        at: String,
        /// The glob as written.
        glob: String,
        /// Why it does not parse.
        why: String,
    },
    /// A task rule has no condition or names an unknown route.
    #[error("invalid_rule: {rule}: {why}")]
    InvalidRule {
        /// Where it is written (`chat.rules[0]`).
        rule: String,
        /// What is wrong.
        why: String,
    },
    /// Task rules send requests around in a circle.
    #[error("rule_loop: task rules loop: {0}")]
    RuleLoop(String),
    /// A provider has `max_concurrency` 0.
    #[error("invalid_concurrency: provider `{0}` needs max_concurrency >= 1")]
    InvalidConcurrency(String),
}

impl RouterError {
    /// Stable reason code (the prefix of the message).
    pub fn reason_code(&self) -> &'static str {
        match self {
            RouterError::DuplicateProvider(_) => "duplicate_provider",
            RouterError::InvalidProviderId(_) => "invalid_provider_id",
            RouterError::EmptyRoute(_) => "empty_route",
            RouterError::InvalidTarget { .. } => "invalid_target",
            RouterError::UnknownProvider { .. } => "unknown_provider",
            RouterError::InvalidRouteName(_) => "invalid_route_name",
            RouterError::UnknownAllowedRoute { .. } => "unknown_allowed_route",
            RouterError::InvalidBudget(_) => "invalid_budget",
            RouterError::InvalidHealth => "invalid_health",
            RouterError::InvalidConcurrency(_) => "invalid_concurrency",
            RouterError::InvalidToolGlob { .. } => "invalid_tool_glob",
            RouterError::InvalidRule { .. } => "invalid_rule",
            RouterError::RuleLoop(_) => "rule_loop",
        }
    }
}
