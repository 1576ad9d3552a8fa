//! The [`Router`]: one generation of config and providers, with live state shared across
//! reloads.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use switchyard_core::{
    ChatRequest, ChatStream, ErrorKind, ModelInfo, PrivacyClass, Provider, ProviderError,
};

use crate::clock::{Clock, SystemClock};
use crate::config::{BudgetConfig, OverflowRule, RouterConfig};
use crate::error::RouterError;
use crate::ledger::SpendLedger;
use crate::privacy::is_cloud;
use crate::queue::Admission;
use crate::record::{
    CatalogEntry, CatalogKind, DecisionObserver, Health, ProviderStatus, RouteFailure,
};
use crate::slot::{Live, ProviderSlot, Slot};

mod count;
mod glob;
pub(crate) mod names;
mod probes;
mod provider;
mod validate;

use validate::build;

/// The environment variable with which the reference binary turns every cloud fallback off
/// (`1`, `true` or `yes`) through [`crate::RouterConfig::no_cloud`]. The router does not
/// read it.
pub const NO_CLOUD_ENV: &str = "SWITCHYARD_NO_CLOUD";

/// How long model discovery may take when the router needs a catalog.
pub(crate) const CATALOG_TIMEOUT: Duration = Duration::from_secs(5);

/// Whether a value of [`NO_CLOUD_ENV`] turns cloud fallback off.
pub fn no_cloud_from_env_value(value: Option<&str>) -> bool {
    value.is_some_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
}

/// One target of a route, resolved to a slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedTarget {
    pub(crate) slot: usize,
    /// Shared with the [`crate::TargetRef`]s planned from it.
    pub(crate) model: Arc<str>,
}

/// A route alias, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) steps: Vec<Vec<ParsedTarget>>,
    pub(crate) overflow: Option<OverflowRule>,
    pub(crate) privacy: Option<PrivacyClass>,
    pub(crate) fallback: Option<bool>,
    /// Task rules, in order.
    pub(crate) rules: Vec<crate::rules::CompiledRule>,
}

/// Everything one router generation knows.
#[derive(Clone)]
pub(crate) struct Inner {
    pub(crate) config: RouterConfig,
    pub(crate) slots: Vec<Arc<Slot>>,
    pub(crate) by_id: HashMap<String, usize>,
    pub(crate) routes: BTreeMap<String, Route>,
    pub(crate) ledger: Arc<dyn SpendLedger>,
    pub(crate) observer: Option<Arc<dyn DecisionObserver>>,
    pub(crate) clock: Arc<dyn Clock>,
    /// The compiled `never_to_cloud` tool globs.
    pub(crate) tool_policies: crate::tool_policy::ToolPolicies,
    /// Each caller's recently offered tools (kept across reloads).
    pub(crate) tool_sets: Arc<crate::tool_sets::ToolSets>,
    /// The shared state of a fleet of replicas, if configured (kept across reloads).
    pub(crate) shared: Option<crate::shared::SharedHandle>,
    /// Metric handles per served target (this generation's labels).
    pub(crate) target_metrics: crate::metrics::TargetMetricsCache,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("providers", &self.by_id.keys().collect::<Vec<_>>())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("no_cloud_env", &self.config.no_cloud)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Whether cloud targets may be used as fallbacks (config switch and environment).
    pub(crate) fn cloud_fallback_off(&self) -> bool {
        !self.config.policy.cloud_fallback || self.config.no_cloud
    }

    /// The first hard spending cap reached for this caller, if any; with `warn_soft`, soft
    /// thresholds crossed are logged (once per request: at planning).
    pub(crate) fn budget_exhausted(&self, caller: Option<&str>, warn_soft: bool) -> Option<String> {
        let caller_budget: Option<(&str, &BudgetConfig)> = caller.and_then(|c| {
            self.config
                .callers
                .get(c)
                .and_then(|p| p.budget.as_ref())
                .map(|b| (c, b))
        });
        let shared_spend;
        let ledger: &dyn SpendLedger = match &self.shared {
            Some(handle) => {
                if let Some(why) = handle.closed_budget_reason()
                    && self.budget_configured(caller)
                {
                    return Some(why);
                }
                if handle.reads_shared_spend() {
                    shared_spend = crate::shared::handle::SharedSpend {
                        handle,
                        local: self.ledger.as_ref(),
                    };
                    &shared_spend
                } else {
                    self.ledger.as_ref()
                }
            }
            None => self.ledger.as_ref(),
        };
        crate::budget::exhausted_cap(
            ledger,
            &self.config.policy.budget,
            caller_budget,
            self.clock.wall(),
            warn_soft,
        )
    }

    /// Refreshes every stale discovered catalog, concurrently.
    pub(crate) async fn refresh_catalogs(&self) {
        self.refresh_catalogs_of(|_| true).await;
    }

    /// Refreshes the stale catalogs of the providers `which` selects, concurrently.
    async fn refresh_catalogs_of(&self, which: impl Fn(&Slot) -> bool) {
        let now = std::time::Instant::now();
        let stale = self
            .slots
            .iter()
            .filter(|s| which(s) && s.catalog_stale(now));
        futures::future::join_all(stale.map(|s| s.refresh_catalog(CATALOG_TIMEOUT))).await;
    }

    /// Whether `model` is a bare model name: neither a route alias nor `provider/model`
    /// with a known provider.
    pub(crate) fn is_bare_name(&self, model: &str) -> bool {
        self.route_for(model).is_none()
            && model
                .split_once('/')
                .is_none_or(|(provider, _)| !self.by_id.contains_key(provider))
    }

    /// Before a bare model name is resolved: when no local or LAN provider is known to
    /// offer it, refreshes their stale catalogs, so a name a local server offers is never
    /// sent to the cloud only because the router had not listed local models yet.
    pub(crate) async fn refresh_local_catalogs_for(&self, model: &str) {
        if !self.is_bare_name(model) {
            return;
        }
        let local = |s: &Slot| !is_cloud(s.effective_locality());
        if self.slots.iter().any(|s| local(s) && s.offers(model)) {
            return;
        }
        self.refresh_catalogs_of(local).await;
    }

    /// Whether a local or LAN provider has never answered a model listing (it may offer
    /// any bare name).
    pub(crate) fn local_catalog_unknown(&self) -> bool {
        self.slots
            .iter()
            .any(|s| !is_cloud(s.effective_locality()) && !s.catalog_known())
    }

    /// Whether a hard spending cap applies to `caller`'s requests (global or the caller's
    /// own): cloud models without a price are then left out.
    pub(crate) fn budget_configured(&self, caller: Option<&str>) -> bool {
        self.config.policy.budget.has_cap()
            || caller
                .and_then(|c| self.config.callers.get(c))
                .and_then(|p| p.budget.as_ref())
                .is_some_and(BudgetConfig::has_cap)
    }

    /// Whether some catalog could be refreshed (used before declaring a model unknown).
    pub(crate) fn any_catalog_stale(&self) -> bool {
        let now = std::time::Instant::now();
        self.slots.iter().any(|s| s.catalog_stale(now))
    }

    /// Route aliases and `provider/model` names a request may use (for error messages):
    /// those of `only_provider` when given, and only those in `allowed` (a caller's
    /// allowed routes) when given, at most `limit` of them.
    pub(crate) fn known_names(
        &self,
        limit: usize,
        only_provider: Option<usize>,
        allowed: Option<&[String]>,
    ) -> String {
        let mut names: Vec<String> = match only_provider {
            Some(_) => Vec::new(),
            None => self.routes.keys().cloned().collect(),
        };
        for (i, slot) in self.slots.iter().enumerate() {
            if only_provider.is_some_and(|only| only != i) {
                continue;
            }
            for m in slot.all_models() {
                names.push(format!("{}/{}", slot.id, m.id));
            }
        }
        if let Some(allowed) = allowed {
            names.retain(|n| allowed.contains(n));
        }
        let total = names.len();
        if total == 0 {
            return if allowed.is_some() {
                "none this caller may use".to_owned()
            } else {
                "none configured".to_owned()
            };
        }
        let mut out = names.into_iter().take(limit).collect::<Vec<_>>().join(", ");
        if total > limit {
            out.push_str(&format!(", ... ({} more)", total - limit));
        }
        out
    }
}

/// The routing policy over a set of providers. Cheap to clone (an `Arc` inside).
///
/// Build one with [`Router::new`], swap in a new generation with [`Router::reload`]
/// (live state carries over), send requests with [`Router::route`] or through the
/// [`Provider`] implementation.
#[derive(Clone)]
pub struct Router {
    pub(crate) inner: Arc<Inner>,
    /// Held only by `Router` handles: probes stop when the last one is dropped.
    alive: Arc<()>,
}

impl fmt::Debug for Router {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl Router {
    /// Validates `config` against the providers and builds a router. `ledger` records
    /// spend ([`crate::MemoryLedger`], or [`crate::RedbLedger`] so a restart keeps it).
    pub fn new(
        config: RouterConfig,
        slots: Vec<ProviderSlot>,
        ledger: Arc<dyn SpendLedger>,
    ) -> Result<Router, RouterError> {
        let inner = build(config, slots, ledger, None, Arc::new(SystemClock), None)?;
        Ok(Router {
            inner: Arc::new(inner),
            alive: Arc::new(()),
        })
    }

    /// New router for a reloaded config; carries over live state (health, cooldowns, ttft
    /// windows, in-flight/queue counters, ledger, observer, clock) of providers whose id
    /// stays. Their concurrency and queue limits change in place, so requests of both
    /// generations count against one limit. Probes are per generation: call
    /// [`Router::start_probes`] on the new one. In-flight requests keep the generation they were planned with, but the
    /// last check before dispatch also applies the newest locality of each provider, so
    /// a reload can never send a `local-only` request to the cloud. On error nothing
    /// changes.
    pub fn reload(
        &self,
        config: RouterConfig,
        slots: Vec<ProviderSlot>,
    ) -> Result<Router, RouterError> {
        let inner = build(
            config,
            slots,
            self.inner.ledger.clone(),
            self.inner.observer.clone(),
            self.inner.clock.clone(),
            Some(&self.inner),
        )?;
        Ok(Router {
            inner: Arc::new(inner),
            alive: Arc::new(()),
        })
    }

    /// Sends every [`crate::DecisionRecord`] also to `observer`.
    #[must_use]
    pub fn with_observer(self, observer: Arc<dyn DecisionObserver>) -> Router {
        let mut inner = (*self.inner).clone();
        inner.observer = Some(observer);
        Router {
            inner: Arc::new(inner),
            alive: self.alive,
        }
    }

    /// Shares spend, budget checks, cooldowns and (through the gateway) per-key rate limits
    /// with the other replicas using the same store; kept across reloads.
    #[must_use]
    pub fn with_shared_state(self, shared: Arc<crate::SharedStateHandle>) -> Router {
        let mut inner = (*self.inner).clone();
        inner.shared = Some(shared);
        Router {
            inner: Arc::new(inner),
            alive: self.alive,
        }
    }

    /// The shared state, when the router has one.
    pub fn shared_state(&self) -> Option<&Arc<crate::SharedStateHandle>> {
        self.inner.shared.as_ref()
    }

    /// Uses `clock` for cooldowns and budget windows (tests use [`crate::ManualClock`]).
    #[must_use]
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Router {
        let mut inner = (*self.inner).clone();
        inner.clock = clock;
        Router {
            inner: Arc::new(inner),
            alive: self.alive,
        }
    }

    /// Whether the model names `a` and `b` name the same model: equal, or equal once a
    /// missing tag is read as Ollama's implied `latest` (`x` and `x:latest`; never `x:7b`
    /// and `x`). Route aliases and provider catalogs are matched by this rule.
    pub fn same_model_name(a: &str, b: &str) -> bool {
        names::same_model(a, b)
    }

    /// The `privacy` of the route a request for `model` resolves to (an alias as written,
    /// its other spelling with or without `:latest`, or the longest matching wildcard), as
    /// planning resolves it; `None` when no route names it or the route sets none.
    pub fn route_privacy(&self, model: &str) -> Option<PrivacyClass> {
        self.inner.route_for(model).and_then(|route| route.privacy)
    }

    /// The configuration this router was built from.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// The spend ledger.
    pub fn ledger(&self) -> &Arc<dyn SpendLedger> {
        &self.inner.ledger
    }

    /// Whether cloud fallback is off (by `policy.cloud_fallback: false` or
    /// [`RouterConfig::no_cloud`]).
    pub fn cloud_fallback_disabled(&self) -> bool {
        self.inner.cloud_fallback_off()
    }

    /// Every model a client may ask for: the route aliases (described by their primary
    /// target's model) and every `provider/model` (static and discovered models). Refreshes
    /// stale discovered catalogs first (bounded by a timeout; failing providers keep
    /// their last list). Each entry's locality is the one the planner uses for that model
    /// (a `*-cloud` model is cloud whether listed or not).
    pub async fn catalog(&self) -> Vec<CatalogEntry> {
        let inner = &self.inner;
        inner.refresh_catalogs().await;
        let mut out = Vec::new();
        for route in inner.routes.values() {
            let Some(primary) = route.steps.first().and_then(|s| s.first()) else {
                continue;
            };
            let Some(slot) = inner.slots.get(primary.slot) else {
                continue;
            };
            // Listed or not, the entry says where the planner would send it.
            let mut info = slot
                .model_info(&primary.model)
                .unwrap_or_else(|| ModelInfo::new(primary.model.to_string(), slot.locality));
            info.locality = slot.model_locality(&primary.model);
            out.push(CatalogEntry {
                id: route.name.clone(),
                kind: CatalogKind::Route,
                provider: slot.id.to_string(),
                info,
            });
        }
        for slot in &inner.slots {
            for mut info in slot.all_models() {
                info.locality = slot.model_locality(&info.id);
                out.push(CatalogEntry {
                    id: format!("{}/{}", slot.id, info.id),
                    kind: CatalogKind::Target,
                    provider: slot.id.to_string(),
                    info,
                });
            }
        }
        out
    }

    /// Every provider's health, load and recent time to first token.
    pub fn provider_status(&self) -> Vec<ProviderStatus> {
        let now = self.inner.clock.now();
        self.inner
            .slots
            .iter()
            .map(|s| ProviderStatus {
                id: s.id.to_string(),
                locality: s.locality,
                health: s.live.health.lock().map_or(Health::Up, |h| h.status(now)),
                in_flight: s.admission.in_flight(),
                queued: s.admission.queued(),
                ttft_p50_ms: s.live.ttft_p50(),
            })
            .collect()
    }
}
