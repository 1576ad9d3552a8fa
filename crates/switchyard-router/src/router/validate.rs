//! Validation of a router config against its providers, and building one generation.

use super::*;

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
        model: model.into(),
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
pub(super) fn build(
    config: RouterConfig,
    slots: Vec<ProviderSlot>,
    ledger: Arc<dyn SpendLedger>,
    observer: Option<Arc<dyn DecisionObserver>>,
    clock: Arc<dyn Clock>,
    previous: Option<&Inner>,
) -> Result<Inner, RouterError> {
    let by_id = provider_ids(&slots)?;
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
                rules: crate::rules::compile(name, &rc.rules, &config.routes)?,
            },
        );
    }
    let edges = config
        .routes
        .iter()
        .map(|(name, rc)| {
            (
                name.clone(),
                rc.rules.iter().map(|r| r.to.clone()).collect(),
            )
        })
        .collect();
    crate::rules::check_loops(&edges)?;
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

    let tool_policies = crate::tool_policy::ToolPolicies::compile(&config)?;
    warn_unpriced_under_budget(&config, &slots);

    let built = build_slots(slots, previous, clock.as_ref());
    Ok(Inner {
        config,
        slots: built,
        by_id,
        routes,
        ledger,
        observer,
        clock,
        tool_policies,
        tool_sets: previous.map_or_else(Default::default, |p| p.tool_sets.clone()),
        shared: previous.and_then(|p| p.shared.clone()),
        target_metrics: Default::default(),
    })
}

/// Each provider id to its index; refuses empty, `/`-containing and duplicate ids and a
/// zero concurrency.
fn provider_ids(slots: &[ProviderSlot]) -> Result<HashMap<String, usize>, RouterError> {
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
    Ok(by_id)
}

/// The slots of a valid config, carrying the live state (health, queue) of `previous`
/// over for provider ids that stay.
fn build_slots(
    slots: Vec<ProviderSlot>,
    previous: Option<&Inner>,
    clock: &dyn Clock,
) -> Vec<Arc<Slot>> {
    let previous_slot =
        |id: &str| previous.and_then(|p| p.by_id.get(id).and_then(|&i| p.slots.get(i)).cloned());
    slots
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
            admission.set_fleet_scoped(s.concurrency_scope == crate::ConcurrencyScope::Fleet);
            admission.gauges.set_up(
                live.health
                    .lock()
                    .map_or(true, |h| h.status(clock.now()) == Health::Up),
            );
            live.set_latest_locality(s.locality);
            Arc::new(Slot {
                id: s.id.into(),
                provider: s.provider,
                locality: s.locality,
                models: s.models,
                admission,
                live,
            })
        })
        .collect()
}
