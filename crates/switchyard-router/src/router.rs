//! The [`Router`]: one generation of config and providers, with live state shared across
//! reloads.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use switchyard_core::{
    ChatRequest, ChatStream, ErrorKind, Locality, ModelInfo, PrivacyClass, Provider, ProviderError,
};

use crate::clock::{Clock, SystemClock};
use crate::config::{BudgetConfig, OverflowRule, RouterConfig};
use crate::error::RouterError;
use crate::ledger::SpendLedger;
use crate::queue::Admission;
use crate::record::{
    CatalogEntry, CatalogKind, DecisionObserver, Health, ProviderStatus, RouteFailure,
};
use crate::slot::{Live, ProviderSlot, Slot};

/// The environment variable that turns every cloud fallback off (`1`, `true` or `yes`).
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
    pub(crate) model: String,
}

/// A route alias, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Route {
    pub(crate) name: String,
    pub(crate) steps: Vec<Vec<ParsedTarget>>,
    pub(crate) overflow: Option<OverflowRule>,
    pub(crate) privacy: Option<PrivacyClass>,
    pub(crate) fallback: Option<bool>,
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
    /// `SWITCHYARD_NO_CLOUD` as read when this generation was built.
    pub(crate) no_cloud_env: bool,
}

impl fmt::Debug for Inner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Router")
            .field("providers", &self.by_id.keys().collect::<Vec<_>>())
            .field("routes", &self.routes.keys().collect::<Vec<_>>())
            .field("no_cloud_env", &self.no_cloud_env)
            .finish_non_exhaustive()
    }
}

impl Inner {
    /// Whether cloud targets may be used as fallbacks (config switch and environment).
    pub(crate) fn cloud_fallback_off(&self) -> bool {
        !self.config.policy.cloud_fallback || self.no_cloud_env
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
        crate::budget::exhausted_cap(
            self.ledger.as_ref(),
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
        !self.routes.contains_key(model)
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

fn parse_target(
    route: &str,
    written: &str,
    by_id: &HashMap<String, usize>,
) -> Result<ParsedTarget, RouterError> {
    let Some((provider, model)) = written.split_once('/') else {
        return Err(RouterError::InvalidTarget {
            route: route.to_owned(),
            target: written.to_owned(),
        });
    };
    if provider.is_empty() || model.is_empty() {
        return Err(RouterError::InvalidTarget {
            route: route.to_owned(),
            target: written.to_owned(),
        });
    }
    let Some(&slot) = by_id.get(provider) else {
        let mut known: Vec<&str> = by_id.keys().map(String::as_str).collect();
        known.sort_unstable();
        return Err(RouterError::UnknownProvider {
            route: route.to_owned(),
            target: written.to_owned(),
            known: known.join(", "),
        });
    };
    Ok(ParsedTarget {
        slot,
        model: model.to_owned(),
    })
}

fn validate_budget(what: &str, b: &BudgetConfig) -> Result<(), RouterError> {
    for (name, v) in [
        ("usd_per_day", b.usd_per_day),
        ("usd_per_month", b.usd_per_month),
    ] {
        if let Some(v) = v {
            if !v.is_finite() || v < 0.0 {
                return Err(RouterError::InvalidBudget(format!(
                    "{what}.{name} must be a finite amount >= 0, got {v}"
                )));
            }
        }
    }
    if !(b.soft_fraction > 0.0 && b.soft_fraction <= 1.0) {
        return Err(RouterError::InvalidBudget(format!(
            "{what}.soft_fraction must be in (0, 1], got {}",
            b.soft_fraction
        )));
    }
    Ok(())
}

/// Says at build time which configured cloud models a budget will keep out for having no
/// price (the planner leaves them out with `unpriced_under_budget`).
fn warn_unpriced_under_budget(config: &RouterConfig, slots: &[ProviderSlot]) {
    let budgets = config.policy.budget.has_cap()
        || config
            .callers
            .values()
            .flat_map(|c| &c.budget)
            .any(BudgetConfig::has_cap);
    if !budgets {
        return;
    }
    for slot in slots.iter().filter(|s| is_cloud(s.locality)) {
        for model in slot.models.iter().filter(|m| m.price.is_none()) {
            tracing::warn!(
                provider = %slot.id,
                model = %model.id,
                "cloud model without a price while a budget is configured: it is not used (unpriced_under_budget); give it a price"
            );
        }
    }
}

/// Validates `config` against `slots` and builds a generation, reusing the live state of
/// `previous` for provider ids that stay. Nothing shared is touched before validation
/// passed, so a refused config leaves the running router as it was.
fn build(
    config: RouterConfig,
    slots: Vec<ProviderSlot>,
    ledger: Arc<dyn SpendLedger>,
    observer: Option<Arc<dyn DecisionObserver>>,
    clock: Arc<dyn Clock>,
    previous: Option<&Inner>,
) -> Result<Inner, RouterError> {
    let mut by_id = HashMap::new();
    for (i, s) in slots.iter().enumerate() {
        if s.id.is_empty() || s.id.contains('/') {
            return Err(RouterError::InvalidProviderId(s.id.clone()));
        }
        if s.max_concurrency == 0 {
            return Err(RouterError::InvalidConcurrency(s.id.clone()));
        }
        if by_id.insert(s.id.clone(), i).is_some() {
            return Err(RouterError::DuplicateProvider(s.id.clone()));
        }
    }
    let mut routes = BTreeMap::new();
    for (name, rc) in &config.routes {
        if name.is_empty() || name.contains('/') {
            return Err(RouterError::InvalidRouteName(name.clone()));
        }
        if rc.targets.is_empty() || rc.targets.iter().any(|t| t.members().is_empty()) {
            return Err(RouterError::EmptyRoute(name.clone()));
        }
        let steps = rc
            .targets
            .iter()
            .map(|step| {
                step.members()
                    .iter()
                    .map(|t| parse_target(name, t, &by_id))
                    .collect::<Result<Vec<_>, _>>()
            })
            .collect::<Result<Vec<_>, _>>()?;
        routes.insert(
            name.clone(),
            Route {
                name: name.clone(),
                steps,
                overflow: rc.overflow,
                privacy: rc.privacy,
                fallback: rc.fallback,
            },
        );
    }
    for (caller, policy) in &config.callers {
        for allowed in policy.allowed_routes.iter().flatten() {
            let is_route = routes.contains_key(allowed);
            let is_target = allowed
                .split_once('/')
                .is_some_and(|(p, m)| by_id.contains_key(p) && !m.is_empty());
            if !is_route && !is_target {
                return Err(RouterError::UnknownAllowedRoute {
                    caller: caller.clone(),
                    route: allowed.clone(),
                });
            }
        }
        if let Some(b) = &policy.budget {
            validate_budget(&format!("callers.{caller}.budget"), b)?;
        }
    }
    validate_budget("policy.budget", &config.policy.budget)?;
    if config.health.cooldowns_ms.is_empty() || config.health.cooldowns_ms.contains(&0) {
        return Err(RouterError::InvalidHealth);
    }

    warn_unpriced_under_budget(&config, &slots);

    // Valid: build the slots, carrying live state over.
    let previous_slot =
        |id: &str| previous.and_then(|p| p.by_id.get(id).and_then(|&i| p.slots.get(i)).cloned());
    let built = slots
        .into_iter()
        .map(|s| {
            let old = previous_slot(&s.id);
            let live = old
                .as_ref()
                .map_or_else(|| Arc::new(Live::default()), |o| o.live.clone());
            let admission = match &old {
                Some(o) => {
                    o.admission
                        .resize(s.max_concurrency, s.max_queue, s.queue_timeout);
                    o.admission.clone()
                }
                None => Arc::new(Admission::new(
                    s.id.clone(),
                    s.max_concurrency,
                    s.max_queue,
                    s.queue_timeout,
                )),
            };
            crate::metrics::set_provider_up(
                &s.id,
                live.health
                    .lock()
                    .map_or(true, |h| h.status(clock.now()) == Health::Up),
            );
            live.set_latest_locality(s.locality);
            Arc::new(Slot {
                id: s.id,
                provider: s.provider,
                locality: s.locality,
                models: s.models,
                admission,
                live,
            })
        })
        .collect();
    Ok(Inner {
        config,
        slots: built,
        by_id,
        routes,
        ledger,
        observer,
        clock,
        no_cloud_env: no_cloud_from_env_value(std::env::var(NO_CLOUD_ENV).ok().as_deref()),
    })
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

    /// The configuration this router was built from.
    pub fn config(&self) -> &RouterConfig {
        &self.inner.config
    }

    /// The spend ledger.
    pub fn ledger(&self) -> &Arc<dyn SpendLedger> {
        &self.inner.ledger
    }

    /// Whether cloud fallback is off (by `policy.cloud_fallback: false` or
    /// `SWITCHYARD_NO_CLOUD=1` at build time).
    pub fn cloud_fallback_disabled(&self) -> bool {
        self.inner.cloud_fallback_off()
    }

    /// Every model a client may ask for: the route aliases (described by their primary
    /// target's model) and every `provider/model` (static and discovered models). Refreshes
    /// stale discovered catalogs first (bounded by a timeout; failing providers keep
    /// their last list).
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
            let info = slot
                .model_info(&primary.model)
                .unwrap_or_else(|| ModelInfo::new(primary.model.clone(), slot.locality));
            out.push(CatalogEntry {
                id: route.name.clone(),
                kind: CatalogKind::Route,
                provider: slot.id.clone(),
                info,
            });
        }
        for slot in &inner.slots {
            for info in slot.all_models() {
                out.push(CatalogEntry {
                    id: format!("{}/{}", slot.id, info.id),
                    kind: CatalogKind::Target,
                    provider: slot.id.clone(),
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
                id: s.id.clone(),
                locality: s.locality,
                health: s.live.health.lock().map_or(Health::Up, |h| h.status(now)),
                in_flight: s.admission.in_flight(),
                queued: s.admission.queued(),
                ttft_p50_ms: s.live.ttft_p50(),
            })
            .collect()
    }

    /// Starts active health probes (`Provider::health` of every provider every
    /// `health.probe_interval_ms`), if configured and a tokio runtime is running. The task
    /// stops when the last handle of this `Router` is dropped.
    pub fn start_probes(&self) -> Option<tokio::task::JoinHandle<()>> {
        let interval = Duration::from_millis(self.inner.config.health.probe_interval_ms?);
        let runtime = tokio::runtime::Handle::try_current().ok()?;
        let alive: Weak<()> = Arc::downgrade(&self.alive);
        let inner = self.inner.clone();
        Some(runtime.spawn(async move {
            let timeout = interval.clamp(Duration::from_millis(100), Duration::from_secs(10));
            loop {
                if alive.strong_count() == 0 {
                    break;
                }
                probe_all(&inner, timeout).await;
                tokio::time::sleep(interval).await;
            }
        }))
    }
}

/// One round of probes.
async fn probe_all(inner: &Inner, timeout: Duration) {
    let probes = inner.slots.iter().map(|slot| async move {
        let result = match tokio::time::timeout(timeout, slot.provider.health()).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(e.kind()),
            Err(_) => Err(ErrorKind::Timeout(switchyard_core::TimeoutPhase::Total)),
        };
        if let Err(kind) = result {
            tracing::warn!(provider = %slot.id, reason = kind.reason_code(), "health probe failed");
        }
        let up = result.is_ok();
        if let Ok(mut h) = slot.live.health.lock() {
            h.on_probe(result);
        }
        crate::metrics::set_provider_up(&slot.id, up);
    });
    futures::future::join_all(probes).await;
}

#[async_trait]
impl Provider for Router {
    /// Routes the request ([`Router::route`]); a routing failure becomes its loud
    /// [`ProviderError`] ([`RouteFailure::into_provider_error`]).
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        match self.route(request).await {
            Ok(stream) => Ok(Box::pin(stream)),
            Err(failure) => Err(RouteFailure::into_provider_error(failure)),
        }
    }

    /// The [`Router::catalog`], each entry's id being the name to request.
    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(self
            .catalog()
            .await
            .into_iter()
            .map(|e| ModelInfo { id: e.id, ..e.info })
            .collect())
    }

    /// `Ok` when at least one provider is up (not down, not cooling).
    async fn health(&self) -> Result<(), ProviderError> {
        let status = self.provider_status();
        if status.iter().any(|s| s.health == Health::Up) {
            return Ok(());
        }
        let detail = status
            .iter()
            .map(|s| match &s.health {
                Health::Up => format!("{}: up", s.id),
                Health::Down { reason } => format!("{}: down ({reason})", s.id),
                Health::Cooling {
                    reason,
                    remaining_ms,
                    ..
                } => {
                    format!("{}: cooling for {remaining_ms} ms ({reason})", s.id)
                }
            })
            .collect::<Vec<_>>()
            .join(", ");
        Err(ProviderError::new(
            ErrorKind::Overloaded,
            if detail.is_empty() {
                "no provider is configured".to_owned()
            } else {
                format!("no provider is up: {detail}")
            },
        ))
    }
}

/// The strictest of two privacy classes, either of which may be unset: `local-only` wins
/// over `any`, and any set class over none. Everything that combines privacy classes
/// (request, header, caller, key, route, default) uses this one rule.
///
/// ```
/// use switchyard_core::PrivacyClass::{Any, LocalOnly};
/// use switchyard_router::strictest;
///
/// assert_eq!(strictest(Some(Any), Some(LocalOnly)), Some(LocalOnly));
/// assert_eq!(strictest(None, Some(Any)), Some(Any));
/// assert_eq!(strictest(None, None), None);
/// ```
pub fn strictest(a: Option<PrivacyClass>, b: Option<PrivacyClass>) -> Option<PrivacyClass> {
    match (a, b) {
        (Some(PrivacyClass::LocalOnly), _) | (_, Some(PrivacyClass::LocalOnly)) => {
            Some(PrivacyClass::LocalOnly)
        }
        (Some(c), _) | (None, Some(c)) => Some(c),
        (None, None) => None,
    }
}

/// [`strictest`] of a set class and an optional one.
pub(crate) fn strictest_of(a: PrivacyClass, b: Option<PrivacyClass>) -> PrivacyClass {
    strictest(Some(a), b).unwrap_or(a)
}

/// Whether `locality` is a cloud.
pub(crate) fn is_cloud(locality: Locality) -> bool {
    locality == Locality::Cloud
}
