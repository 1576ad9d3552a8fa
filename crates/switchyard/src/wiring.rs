//! Wires a loaded config into running parts: providers, router, gateway, and the
//! background discovery that keeps retrying Ollama while it is down or loading.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use switchyard_core::Provider;
use switchyard_gateway::{Gateway, ResponseStore, RouterHandle};
use switchyard_router::{
    ChargeJournal, DEFAULT_JOURNAL_CAPACITY, MemoryLedger, RedbJournal, RedbLedger, Router,
    RouterError, SpendLedger,
};
use tokio::task::JoinHandle;

use crate::config::build::{self, BuiltProvider};
use crate::config::{Config, ConfigError, ConfigErrorKind, FileConfig, Segment};

/// The router built from a config, with the Ollama clients to warm up.
#[derive(Debug)]
pub(crate) struct BuiltRouter {
    /// The router.
    pub(crate) router: Router,
    /// The providers it was built from.
    pub(crate) providers: Vec<BuiltProvider>,
}

/// A mistake only the router finds, at the key path where `file` has it (so its line can
/// be found like any other config error's).
fn router_error(file: &FileConfig, e: RouterError) -> ConfigError {
    let code = e.reason_code();
    let key = |k: &str| Segment::Key(k.to_owned());
    // `route.rules[i]`, as the router labels a task rule.
    let rule_at = |label: &str| -> Vec<Segment> {
        match label.rsplit_once(".rules[").and_then(|(route, rest)| {
            let i = rest.strip_suffix(']')?.parse().ok()?;
            Some((route, i))
        }) {
            Some((route, i)) => vec![key("routes"), key(route), key("rules"), Segment::Index(i)],
            None => Vec::new(),
        }
    };
    // Where a glob list is written, and the glob's place in it.
    let glob_at = |at: &str, glob: &str| -> Vec<Segment> {
        let (mut segments, globs): (Vec<Segment>, Option<&Vec<String>>) =
            if at == "policy.tools.never_to_cloud" {
                (
                    vec![key("policy"), key("tools"), key("never_to_cloud")],
                    Some(&file.policy.tools.never_to_cloud),
                )
            } else if let Some(caller) = at
                .strip_prefix("callers.")
                .and_then(|c| c.strip_suffix(".tools.never_to_cloud"))
            {
                (
                    vec![
                        key("callers"),
                        key(caller),
                        key("tools"),
                        key("never_to_cloud"),
                    ],
                    file.callers
                        .get(caller)
                        .and_then(|c| c.tools.as_ref())
                        .map(|t| &t.never_to_cloud),
                )
            } else if let Some(label) = at.strip_suffix(".tools") {
                let mut segments = rule_at(label);
                let rule = match segments.as_slice() {
                    [_, Segment::Key(route), _, Segment::Index(i)] => {
                        file.routes.get(route).and_then(|r| r.rules.get(*i))
                    }
                    _ => None,
                };
                if !segments.is_empty() {
                    segments.push(key("tools"));
                }
                (segments, rule.map(|r| &r.tools))
            } else {
                (Vec::new(), None)
            };
        if let Some(i) = globs.and_then(|g| g.iter().position(|x| x == glob)) {
            segments.push(Segment::Index(i));
        }
        segments
    };
    let (segments, message) = match &e {
        RouterError::InvalidRule { rule, why } => {
            let mut segments = rule_at(rule);
            if why.starts_with("`to:") && !segments.is_empty() {
                segments.push(key("to"));
            }
            (segments, format!("{code}: {why}"))
        }
        RouterError::InvalidToolGlob { at, glob, why } => (
            glob_at(at, glob),
            format!("{code}: `{glob}` is not a valid glob ({why})"),
        ),
        RouterError::RuleLoop(cycle) => {
            // The first step of the cycle: the rule of its first route that leads on.
            let mut steps = cycle.split(" -> ");
            let segments = match (steps.next(), steps.next()) {
                (Some(from), Some(to)) => file
                    .routes
                    .get(from)
                    .and_then(|r| r.rules.iter().position(|rule| rule.to == to))
                    .map(|i| {
                        vec![
                            key("routes"),
                            key(from),
                            key("rules"),
                            Segment::Index(i),
                            key("to"),
                        ]
                    })
                    .unwrap_or_default(),
                _ => Vec::new(),
            };
            (segments, e.to_string())
        }
        RouterError::EmptyRoute(route)
        | RouterError::InvalidTarget { route, .. }
        | RouterError::UnknownProvider { route, .. } => (
            vec![key("routes"), key(route), key("targets")],
            e.to_string(),
        ),
        RouterError::InvalidRouteName(route) => (vec![key("routes"), key(route)], e.to_string()),
        RouterError::UnknownAllowedRoute { caller, .. } => (
            vec![key("callers"), key(caller), key("allowed_routes")],
            e.to_string(),
        ),
        RouterError::InvalidConcurrency(provider) => (
            vec![key("providers"), key(provider), key("max_concurrency")],
            e.to_string(),
        ),
        RouterError::InvalidHealth => (vec![key("health"), key("cooldowns_ms")], e.to_string()),
        _ => (Vec::new(), e.to_string()),
    };
    ConfigError::new(ConfigErrorKind::Router, message).at(segments)
}

/// For the commands that only look (`models`, `route explain`): loads the config
/// (`--config`, `SWITCHYARD_CONFIG` or the built-in one) and builds a router from it with
/// spend kept in memory. On failure prints the error and gives the exit code.
pub(crate) fn load_router(config_path: Option<&PathBuf>) -> Result<(Config, BuiltRouter), u8> {
    let built = crate::serve::load_config(config_path)
        .and_then(|config| new_router(&config).map(|built| (config, built)));
    built.map_err(|e| {
        errln!("switchyard: {e}");
        crate::serve::EXIT_CONFIG
    })
}

/// Builds a fresh router (no previous state) from `config`, with spend kept in memory.
pub(crate) fn new_router(config: &Config) -> Result<BuiltRouter, ConfigError> {
    new_router_with(config, Arc::new(MemoryLedger::new()))
}

/// What `serve` keeps across requests: the spend ledger and the Responses API's store, both in
/// the configured `spend_ledger` file (one redb database), or both in memory; with
/// `shared_state` and a file, the outage journal of spend charges too.
pub(crate) struct Persistence {
    pub(crate) ledger: Arc<dyn SpendLedger>,
    pub(crate) responses: ResponseStore,
    /// The outage journal in the `spend_ledger` file (`None`: in memory).
    pub(crate) journal: Option<Arc<dyn ChargeJournal>>,
}

/// Opens the `spend_ledger` file (or takes memory) for spend, stored responses and, with
/// `shared_state`, the journal of charges the shared state has not applied yet.
pub(crate) fn open_ledger(config: &Config) -> Result<Persistence, ConfigError> {
    let bounds = build::response_store_config(&config.file);
    match &config.file.spend_ledger {
        Some(path) => {
            let at = || vec![Segment::Key("spend_ledger".to_owned())];
            let ledger = RedbLedger::open(path)
                .map_err(|e| ConfigError::new(ConfigErrorKind::Invalid, e.to_string()).at(at()))?;
            let responses = ResponseStore::with_redb(bounds, ledger.database()).map_err(|e| {
                ConfigError::new(ConfigErrorKind::Invalid, format!("response store: {e}")).at(at())
            })?;
            let journal = match config.file.shared_state {
                Some(_) => {
                    let journal =
                        RedbJournal::open(&ledger, DEFAULT_JOURNAL_CAPACITY).map_err(|e| {
                            ConfigError::new(
                                ConfigErrorKind::Invalid,
                                format!("outage journal: {e}"),
                            )
                            .at(at())
                        })?;
                    Some(Arc::new(journal) as Arc<dyn ChargeJournal>)
                }
                None => None,
            };
            Ok(Persistence {
                ledger: Arc::new(ledger),
                responses,
                journal,
            })
        }
        None => {
            let budgets = config.file.policy.budget.usd_per_day.is_some()
                || config.file.policy.budget.usd_per_month.is_some()
                || config.file.callers.values().any(|c| c.budget.is_some());
            if budgets {
                tracing::warn!(
                    "budgets are configured but no spend_ledger file: spend starts from zero at every start"
                );
            }
            Ok(Persistence {
                ledger: Arc::new(MemoryLedger::new()),
                responses: ResponseStore::new(bounds),
                journal: None,
            })
        }
    }
}

/// Builds a fresh router from `config` recording spend in `ledger`.
pub(crate) fn new_router_with(
    config: &Config,
    ledger: Arc<dyn SpendLedger>,
) -> Result<BuiltRouter, ConfigError> {
    let providers = build::build_providers(&config.file)?;
    let slots = providers.iter().map(|p| p.slot.clone()).collect();
    let router = Router::new(build::router_config(&config.file), slots, ledger)
        .map_err(|e| router_error(&config.file, e))?;
    Ok(BuiltRouter { router, providers })
}

/// Builds the router for a reloaded `config`, keeping the live state of `current`.
pub(crate) fn reload_router(current: &Router, config: &Config) -> Result<BuiltRouter, ConfigError> {
    let providers = build::build_providers(&config.file)?;
    let slots = providers.iter().map(|p| p.slot.clone()).collect();
    let router = current
        .reload(build::router_config(&config.file), slots)
        .map_err(|e| router_error(&config.file, e))?;
    Ok(BuiltRouter { router, providers })
}

/// A router and a gateway over it.
#[derive(Debug, Clone)]
pub(crate) struct Stack {
    /// The gateway (cheap to clone).
    pub(crate) gateway: Gateway,
    /// The handle the gateway reads its router from.
    pub(crate) router: RouterHandle,
}

/// Builds the gateway over a new router from `config` (spend recorded in `ledger`), and
/// starts the router's probes. With `shared_state`, stored responses are kept there too
/// (on the same connection), so `previous_response_id` works on every replica; without it
/// the gateway keeps its default store (`serve` gives it the one of [`open_ledger`]).
/// Charges the shared state misses wait in `journal` (`None`: in memory); charges it holds
/// from a previous run are applied as soon as the store answers.
pub(crate) fn new_stack(
    config: &Config,
    ledger: Arc<dyn SpendLedger>,
    journal: Option<Arc<dyn ChargeJournal>>,
) -> Result<(Stack, Vec<BuiltProvider>), ConfigError> {
    let mut built = new_router_with(config, ledger)?;
    let mut responses = None;
    if let Some(section) = &config.file.shared_state {
        let state = redis_state(section)?;
        let bounds = build::response_store_config(&config.file);
        let backend = Arc::new(state.responses(bounds.max_entry_bytes));
        responses = Some(ResponseStore::with_backend(bounds, backend));
        let mut shared =
            switchyard_router::SharedStateHandle::new(Arc::new(state), section.on_outage);
        if let Some(journal) = journal {
            shared = shared.with_journal(journal);
        }
        let shared = Arc::new(shared);
        shared.start_reconciler();
        built.router = built.router.with_shared_state(shared);
    }
    let handle: RouterHandle = Arc::new(ArcSwap::from_pointee(built.router));
    handle.load().start_probes();
    let mut gateway = Gateway::new(build::gateway_config(&config.file), Arc::clone(&handle));
    if let Some(store) = responses {
        gateway = gateway.with_response_store(store);
    }
    Ok((
        Stack {
            gateway,
            router: handle,
        },
        built.providers,
    ))
}

/// The store `shared_state` names (the URL is checked; the connection is made on first
/// use, so a replica starts while Redis is down).
fn redis_state(
    section: &crate::config::SharedStateSection,
) -> Result<switchyard_redis::RedisState, ConfigError> {
    let state = switchyard_redis::RedisState::new(section.redis_config()).map_err(|e| {
        ConfigError::new(ConfigErrorKind::Invalid, e.to_string())
            .at(vec![Segment::Key("shared_state".to_owned())])
    })?;
    tracing::info!(store = %state.describe(), prefix = %section.key_prefix,
        "shared state (spend, rate limits, cooldowns, probes, stored responses)");
    Ok(state)
}

/// Longest pause between two discovery attempts.
const MAX_DISCOVERY_BACKOFF: Duration = Duration::from_secs(30);

/// For every discovering provider, a background task that asks for its catalog until it
/// answers once, with growing pauses (1 s, 2 s, 4 s ... 30 s): the gateway starts while
/// Ollama is still down or loading, says so in the log and on `/readyz`, and picks the
/// models up as soon as the server answers. Requests meanwhile get the classified error.
pub(crate) fn spawn_discovery(providers: &[BuiltProvider]) -> Vec<JoinHandle<()>> {
    providers
        .iter()
        .filter(|p| p.discover)
        .map(|p| {
            let id = p.slot.id.clone();
            let provider: Arc<dyn Provider> = Arc::clone(&p.slot.provider);
            tokio::spawn(async move {
                let mut pause = Duration::from_secs(1);
                let mut last_reason = None;
                loop {
                    match provider.models().await {
                        Ok(models) => {
                            tracing::info!(provider = %id, models = models.len(), "provider is up");
                            return;
                        }
                        // Loud on the first failure, on a new reason and at the longest
                        // pause; quiet in between.
                        Err(e)
                            if last_reason != Some(e.reason_code())
                                || pause == MAX_DISCOVERY_BACKOFF =>
                        {
                            last_reason = Some(e.reason_code());
                            tracing::warn!(
                                provider = %id,
                                reason = e.reason_code(),
                                error = %e,
                                retry_in_s = pause.as_secs(),
                                "provider not reachable yet; discovery retries in the background"
                            );
                        }
                        Err(e) => {
                            tracing::debug!(
                                provider = %id,
                                reason = e.reason_code(),
                                retry_in_s = pause.as_secs(),
                                "provider still not reachable"
                            );
                        }
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_DISCOVERY_BACKOFF);
                }
            })
        })
        .collect()
}
