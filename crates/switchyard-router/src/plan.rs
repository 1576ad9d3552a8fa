//! Planning: from a request to the ordered targets to try, each with the reason it is in,
//! and the targets left out with the rule that stopped each. Reads live state (health,
//! load, spend) and sends nothing.

use std::borrow::Cow;

use switchyard_core::{ChatRequest, ErrorKind, PrivacyClass, ProviderError};

use crate::config::OverflowRule;
use crate::health::Availability;
use crate::needs::Needs;
use crate::privacy::{is_cloud, strictest_of};
use crate::record::{ExplainedTarget, Explanation, SkippedTarget, TargetRef};
use crate::router::{Inner, ParsedTarget};
use crate::slot::Slot;
use switchyard_core::ReasonCode;

/// How a request named what it wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Naming {
    /// A route alias.
    Route,
    /// An exact `provider/model`.
    Exact,
    /// A bare model name, resolved to the least exposed provider offering it.
    Bare,
}

/// What a request's model name resolved to.
#[derive(Debug)]
struct Resolved<'a> {
    route: Option<String>,
    steps: Cow<'a, [Vec<ParsedTarget>]>,
    fallback: bool,
    /// Why steps after the first are out when `fallback` is false.
    no_fallback_reason: ReasonCode,
    overflow: Option<OverflowRule>,
    route_privacy: Option<PrivacyClass>,
    naming: Naming,
}

/// One target of a plan.
#[derive(Debug, Clone)]
pub(crate) struct PlannedTarget {
    pub(crate) target: TargetRef,
    pub(crate) slot: usize,
    /// The route step it came from (0 = primary).
    pub(crate) step: usize,
    /// Why it is in the plan (`primary`, `group_balanced`, `fallback`,
    /// `overflow_queue_depth`, `cooling_last_resort`).
    pub(crate) reason: ReasonCode,
    /// `cooling_down` / `health_down` when it was put last for its health.
    pub(crate) deferred: Option<ReasonCode>,
}

/// The ordered plan for one request.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) requested: String,
    pub(crate) route: Option<String>,
    pub(crate) privacy: PrivacyClass,
    pub(crate) fallback: bool,
    pub(crate) targets: Vec<PlannedTarget>,
    pub(crate) excluded: Vec<SkippedTarget>,
    /// The first offered tool that policy keeps off cloud targets, if any.
    pub(crate) cloud_tool: Option<String>,
    /// The task rules that sent the request to its route, if any.
    pub(crate) rule: Option<String>,
    /// The request's prompt tokens, estimated (what an answer without usage is charged).
    pub(crate) prompt_tokens_estimate: u64,
}

/// Why no plan could be made.
#[derive(Debug)]
pub(crate) struct PlanError {
    pub(crate) error: ProviderError,
    pub(crate) route: Option<String>,
    pub(crate) privacy: PrivacyClass,
    pub(crate) excluded: Vec<SkippedTarget>,
    /// The model name is unknown (a catalog refresh might help).
    pub(crate) unknown_model: bool,
    /// The task rules that sent the request to its route, if any.
    pub(crate) rule: Option<String>,
}

impl Inner {
    fn target_ref(&self, t: &ParsedTarget) -> Option<TargetRef> {
        let slot = self.slots.get(t.slot)?;
        Some(TargetRef {
            provider: slot.id.clone(),
            model: t.model.clone(),
            locality: slot.model_locality(&t.model),
        })
    }

    fn resolve(&self, model: &str) -> Option<Resolved<'_>> {
        if let Some(route) = self.route_for(model) {
            return Some(Resolved {
                route: Some(route.name.clone()),
                steps: Cow::Borrowed(&route.steps),
                fallback: route.fallback.unwrap_or(true),
                no_fallback_reason: ReasonCode::NoFallback,
                overflow: route.overflow,
                route_privacy: route.privacy,
                naming: Naming::Route,
            });
        }
        let strict = |target: ParsedTarget, naming: Naming| Resolved {
            route: None,
            steps: Cow::Owned(vec![vec![target]]),
            fallback: false,
            no_fallback_reason: ReasonCode::StrictTarget,
            overflow: None,
            route_privacy: None,
            naming,
        };
        if let Some((provider, upstream_model)) = model.split_once('/') {
            if let (Some(&slot), false) = (self.by_id.get(provider), upstream_model.is_empty()) {
                let exact = ParsedTarget {
                    slot,
                    model: upstream_model.to_owned(),
                };
                // A route whose first step holds this target may let it fall back along
                // the route: `fallback: true` on the route, or non-strict exact targets.
                for route in self.routes.values() {
                    let first_holds = route.steps.first().is_some_and(|s| s.contains(&exact));
                    let lets = route.fallback == Some(true)
                        || (route.fallback.is_none() && !self.config.policy.strict_exact_targets);
                    if first_holds && lets {
                        let mut steps = vec![vec![exact.clone()]];
                        steps.extend(route.steps.iter().skip(1).cloned());
                        return Some(Resolved {
                            route: Some(route.name.clone()),
                            steps: Cow::Owned(steps),
                            fallback: true,
                            no_fallback_reason: ReasonCode::NoFallback,
                            overflow: None,
                            route_privacy: route.privacy,
                            naming: Naming::Exact,
                        });
                    }
                }
                return Some(strict(exact, Naming::Exact));
            }
        }
        // A bare model name: the least exposed provider that offers it (a cloud one is
        // checked again in `plan`: not while a local catalog is unknown, not while cloud
        // fallback is off). Among the non-cloud ones, and among the cloud ones, a provider
        // in cooldown (or probed down) comes after a healthy one; health never sends a bare
        // name to the cloud instead of a local or LAN provider.
        let now = self.clock.now();
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.offers(model))
            .min_by_key(|(i, s)| {
                let locality = s.model_locality(model);
                let unhealthy = s
                    .live
                    .health
                    .lock()
                    .is_ok_and(|h| !matches!(h.availability(now), Availability::Available));
                (is_cloud(locality), unhealthy, locality, *i)
            })
            .map(|(slot, _)| {
                strict(
                    ParsedTarget {
                        slot,
                        model: model.to_owned(),
                    },
                    Naming::Bare,
                )
            })
    }

    /// Refuses a caller whose `allowed_routes` name neither the requested model, nor its
    /// route, nor its exact target.
    fn check_caller_allowed(
        &self,
        resolved: &Resolved<'_>,
        requested: &str,
        caller: Option<&str>,
        allowed: &[String],
        privacy: PrivacyClass,
    ) -> Result<(), Box<PlanError>> {
        let exact_name = match (resolved.route.as_ref(), resolved.steps.first()) {
            (None, Some(step)) => step
                .first()
                .and_then(|t| self.target_ref(t))
                .map(|t| t.to_string()),
            _ => None,
        };
        let ok = allowed.iter().any(|a| {
            *a == requested || resolved.route.as_ref() == Some(a) || exact_name.as_ref() == Some(a)
        });
        if ok {
            return Ok(());
        }
        Err(Box::new(PlanError {
            error: ProviderError::new(
                ErrorKind::PolicyBlocked,
                format!(
                    "{}: caller `{}` may not use `{requested}` (allowed: {})",
                    ReasonCode::CallerNotAllowed,
                    caller.unwrap_or_default(),
                    allowed.join(", ")
                ),
            ),
            route: resolved.route.clone(),
            privacy,
            excluded: Vec::new(),
            unknown_model: false,
            rule: None,
        }))
    }

    /// A step's members in the order to try them: a group (more than one member) by
    /// fewest in flight plus queued, ties by lowest recent time to first token.
    fn balanced<'s>(&self, step: &'s [ParsedTarget]) -> Vec<&'s ParsedTarget> {
        let mut members: Vec<&ParsedTarget> = step.iter().collect();
        if members.len() > 1 {
            members.sort_by_key(|t| {
                self.slots.get(t.slot).map_or((usize::MAX, u64::MAX), |s| {
                    (s.load(), s.live.ttft_p50().unwrap_or(0))
                })
            });
        }
        members
    }

    /// Plans `request`, after its route's task rules: the first rule that holds sends it
    /// to another route. Pure apart from reading live state.
    pub(crate) fn plan(&self, request: &ChatRequest) -> Result<Plan, Box<PlanError>> {
        let needs = Needs::of(request);
        let (name, rule, passed_privacy) =
            self.apply_rules(&request.model, request, needs.prompt_tokens());
        match self.plan_named(request, &name, needs, passed_privacy) {
            Ok(plan) => Ok(Plan { rule, ..plan }),
            Err(mut e) => {
                e.rule = rule;
                Err(e)
            }
        }
    }

    /// The route task rules send `name` to, which rules fired (`chat.rules[0] -> heavy`;
    /// a chain when the next route's rules fire too), and the strictest privacy of the
    /// routes the rules sent the request away from: a rule never lifts a route's privacy
    /// (a `local-only` route's request stays local on the route a rule picks).
    fn apply_rules(
        &self,
        name: &str,
        request: &ChatRequest,
        prompt_tokens: u64,
    ) -> (String, Option<String>, Option<PrivacyClass>) {
        let mut current = name;
        let mut fired: Vec<&str> = Vec::new();
        let mut passed_privacy: Option<PrivacyClass> = None;
        // Validation refused loops, so each rule leads to a route not seen before.
        for _ in 0..=self.routes.len() {
            let Some(route) = self.routes.get(current) else {
                break;
            };
            let Some(rule) = route
                .rules
                .iter()
                .find(|rule| rule.matches(request, prompt_tokens))
            else {
                break;
            };
            if let Some(privacy) = route.privacy {
                passed_privacy = Some(strictest_of(privacy, passed_privacy));
            }
            fired.push(&rule.label);
            current = &rule.to;
        }
        let rule = (!fired.is_empty()).then(|| format!("{} -> {current}", fired.join(" -> ")));
        (current.to_owned(), rule, passed_privacy)
    }

    /// The unknown-model error of `requested`, listing what the caller may use.
    fn unknown_model(
        &self,
        requested: &str,
        allowed: Option<&[String]>,
        privacy: PrivacyClass,
    ) -> Box<PlanError> {
        Box::new(PlanError {
            error: ProviderError::new(
                ErrorKind::ModelNotFound,
                format!(
                    "model `{requested}` not found: it is neither a route alias nor a provider/model; available: {}",
                    self.known_names(40, None, allowed)
                ),
            ),
            route: None,
            privacy,
            excluded: Vec::new(),
            unknown_model: true,
            rule: None,
        })
    }

    /// Plans `request` for the model or route `name` (the request's own, or where a task
    /// rule sent it; `passed_privacy` is the strictest privacy of the routes the rules
    /// passed through).
    fn plan_named(
        &self,
        request: &ChatRequest,
        name: &str,
        needs: Needs,
        passed_privacy: Option<PrivacyClass>,
    ) -> Result<Plan, Box<PlanError>> {
        let requested = request.model.clone();
        let caller = request.meta.caller.as_deref();
        let caller_policy = caller.and_then(|c| self.config.callers.get(c));
        let base_privacy = strictest_of(
            strictest_of(
                strictest_of(self.config.policy.default_privacy, request.meta.privacy),
                caller_policy.and_then(|p| p.privacy),
            ),
            passed_privacy,
        );
        let allowed = caller_policy.and_then(|p| p.allowed_routes.as_deref());
        let Some(resolved) = self.resolve(name) else {
            return Err(self.unknown_model(&requested, allowed, base_privacy));
        };
        let privacy = strictest_of(base_privacy, resolved.route_privacy);

        if let Some(allowed) = allowed {
            self.check_caller_allowed(&resolved, &requested, caller, allowed, privacy)?;
        }

        if let Some(error) = self.unlisted_exact_target(&resolved, &requested, allowed) {
            return Err(Box::new(PlanError {
                error,
                route: None,
                privacy,
                excluded: Vec::new(),
                unknown_model: true,
                rule: None,
            }));
        }
        let now = self.clock.now();
        let cloud_fallback_off = self.cloud_fallback_off();
        // A bare name is neither a route nor an explicit choice of provider: it reaches a
        // cloud provider only when no local or LAN one may offer it, and only while cloud
        // fallback is on.
        let bare_cloud_out = match resolved.naming {
            Naming::Bare if cloud_fallback_off => Some(ReasonCode::CloudFallbackDisabled),
            Naming::Bare if self.local_catalog_unknown() => Some(ReasonCode::LocalCatalogUnknown),
            _ => None,
        };
        let mut gate = Gate {
            privacy,
            cloud_fallback_off,
            bare_cloud_out,
            budget_configured: self.budget_configured(caller),
            caller,
            budget_out: None,
            cloud_tool: self.tool_policies.cloud_tool(request),
            needs,
        };
        let mut ready: Vec<PlannedTarget> = Vec::new();
        let mut deferred: Vec<PlannedTarget> = Vec::new();
        let mut excluded: Vec<SkippedTarget> = Vec::new();

        for (step_idx, step) in resolved.steps.iter().enumerate() {
            let group = step.len() > 1;
            for t in self.balanced(step) {
                let (Some(slot), Some(target)) = (self.slots.get(t.slot), self.target_ref(t))
                else {
                    continue;
                };
                let out = gate.why_out(self, &resolved, step_idx, (slot, t, &target));
                if let Some(reason) = out {
                    excluded.push(SkippedTarget { target, reason });
                    continue;
                }
                let availability = slot
                    .live
                    .health
                    .lock()
                    .map_or(Availability::Available, |h| h.availability(now));
                let reason = match (step_idx, group) {
                    (0, true) => ReasonCode::GroupBalanced,
                    (0, false) => ReasonCode::Primary,
                    _ => ReasonCode::Fallback,
                };
                let planned = PlannedTarget {
                    target,
                    slot: t.slot,
                    step: step_idx,
                    reason,
                    deferred: None,
                };
                match last_resort(planned, availability) {
                    Ok(planned) => ready.push(planned),
                    Err(planned) => deferred.push(planned),
                }
            }
        }

        if let Some(rule) = resolved.overflow {
            self.apply_overflow(rule, &mut ready);
        }
        ready.extend(deferred);

        if ready.is_empty() {
            let budget_out = gate.budget_out.flatten();
            return Err(Box::new(no_target_error(
                &requested,
                &resolved,
                privacy,
                excluded,
                (budget_out, gate.cloud_tool),
            )));
        }
        Ok(Plan {
            requested,
            route: resolved.route,
            privacy,
            fallback: resolved.fallback,
            targets: ready,
            excluded,
            cloud_tool: gate.cloud_tool.map(str::to_owned),
            rule: None,
            prompt_tokens_estimate: needs.prompt_tokens(),
        })
    }

    /// For an exact `provider/model` (not a route's own target) on a provider with a
    /// static catalog that does not list the model: the `model_not_found` error naming
    /// what the provider offers (what the caller may use of it).
    fn unlisted_exact_target(
        &self,
        resolved: &Resolved<'_>,
        requested: &str,
        allowed: Option<&[String]>,
    ) -> Option<ProviderError> {
        if resolved.naming != Naming::Exact || resolved.route.is_some() {
            return None;
        }
        let target = resolved.steps.first()?.first()?;
        let slot = self.slots.get(target.slot)?;
        if slot.models.is_empty() || slot.offers(&target.model) {
            return None;
        }
        Some(ProviderError::new(
            ErrorKind::ModelNotFound,
            format!(
                "model `{requested}` not found: provider `{}` does not list `{}`; it offers: {}",
                slot.id,
                target.model,
                self.known_names(40, Some(target.slot), allowed)
            ),
        ))
    }

    /// "Prefer the first step; go to the next when its queue is deeper than N and its
    /// rolling median time to first token is above T": moves the next step's targets in
    /// front of the first step's.
    fn apply_overflow(&self, rule: OverflowRule, ready: &mut Vec<PlannedTarget>) {
        let Some(first) = ready.first() else { return };
        if first.step != 0 {
            return;
        }
        let Some(slot) = self.slots.get(first.slot) else {
            return;
        };
        let deep = slot.admission.queued() > rule.queue_depth;
        let slow = slot
            .live
            .ttft_p50()
            .is_some_and(|p50| p50 > rule.ttft_p50_ms);
        if !(deep && slow) {
            return;
        }
        let Some(next_step) = ready.iter().map(|p| p.step).find(|s| *s > 0) else {
            return;
        };
        let (mut promoted, rest): (Vec<_>, Vec<_>) =
            ready.drain(..).partition(|p| p.step == next_step);
        for p in &mut promoted {
            p.reason = ReasonCode::OverflowQueueDepth;
        }
        tracing::debug!(
            provider = %slot.id,
            queued = slot.admission.queued(),
            ttft_p50_ms = slot.live.ttft_p50(),
            "overflow rule moved the next step first"
        );
        promoted.extend(rest);
        *ready = promoted;
    }

    /// The plan for `request`, as an [`Explanation`].
    pub(crate) fn explain(&self, request: &ChatRequest) -> Explanation {
        match self.plan(request) {
            Ok(plan) => Explanation {
                requested: plan.requested,
                route: plan.route,
                rule: plan.rule,
                privacy: plan.privacy,
                fallback: plan.fallback,
                targets: plan
                    .targets
                    .into_iter()
                    .map(|p| ExplainedTarget {
                        target: p.target,
                        included: true,
                        reason: p.deferred.unwrap_or(p.reason),
                    })
                    .chain(plan.excluded.into_iter().map(|s| ExplainedTarget {
                        target: s.target,
                        included: false,
                        reason: s.reason,
                    }))
                    .collect(),
                error: None,
            },
            Err(e) => Explanation {
                requested: request.model.clone(),
                route: e.route,
                rule: e.rule,
                privacy: e.privacy,
                fallback: false,
                targets: e
                    .excluded
                    .into_iter()
                    .map(|s| ExplainedTarget {
                        target: s.target,
                        included: false,
                        reason: s.reason,
                    })
                    .collect(),
                error: Some(e.error.to_string()),
            },
        }
    }
}

/// The rules that leave a target out of a plan, with the spend check done at most once.
struct Gate<'c> {
    privacy: PrivacyClass,
    cloud_fallback_off: bool,
    /// Why a bare name does not reach the cloud, if it does not.
    bare_cloud_out: Option<ReasonCode>,
    budget_configured: bool,
    caller: Option<&'c str>,
    /// The spend check's answer, once asked (`Some(Some(why))`: a cap is reached).
    budget_out: Option<Option<String>>,
    /// The first offered tool that `never_to_cloud` keeps off cloud targets.
    cloud_tool: Option<&'c str>,
    /// What the request needs of a model.
    needs: Needs,
}

impl Gate<'_> {
    /// Why the target `t` (of step `step_idx`) is left out, if it is.
    fn why_out(
        &mut self,
        inner: &Inner,
        resolved: &Resolved<'_>,
        step_idx: usize,
        (slot, t, target): (&Slot, &ParsedTarget, &TargetRef),
    ) -> Option<ReasonCode> {
        let cloud = is_cloud(target.locality);
        if step_idx > 0 && !resolved.fallback {
            Some(resolved.no_fallback_reason)
        } else if !self.privacy.allows(target.locality) {
            Some(ReasonCode::PrivacyLocalOnly)
        } else if cloud && self.cloud_tool.is_some() {
            Some(ReasonCode::ToolNeverToCloud)
        } else if cloud && step_idx > 0 && self.cloud_fallback_off {
            Some(ReasonCode::CloudFallbackDisabled)
        } else if let (true, Some(reason)) = (cloud, self.bare_cloud_out) {
            Some(reason)
        } else if cloud
            && self
                .budget_out
                .get_or_insert_with(|| inner.budget_exhausted(self.caller, true))
                .is_some()
        {
            Some(ReasonCode::BudgetExhausted)
        } else if cloud
            && self.budget_configured
            && slot.model_info(&t.model).and_then(|m| m.price).is_none()
        {
            Some(ReasonCode::UnpricedUnderBudget)
        } else {
            let recovers = slot.provider.recovers_text_tool_calls(&t.model);
            self.needs
                .unmet(slot.model_info(&t.model).as_ref(), recovers)
        }
    }
}

/// Why nothing can be planned when every target was left out.
fn no_target_error(
    requested: &str,
    resolved: &Resolved<'_>,
    privacy: PrivacyClass,
    excluded: Vec<SkippedTarget>,
    (budget_out, cloud_tool): (Option<String>, Option<&str>),
) -> PlanError {
    let budget = excluded
        .iter()
        .any(|s| s.reason == ReasonCode::BudgetExhausted);
    let (kind, why) = if budget {
        (
            ErrorKind::BudgetExhausted,
            budget_out.unwrap_or_else(|| "a spending cap is reached".to_owned()),
        )
    } else {
        let why = excluded
            .first()
            .map_or("policy allows no target", |s| s.reason.describe());
        let tool_out = excluded
            .iter()
            .any(|s| s.reason == ReasonCode::ToolNeverToCloud);
        let why = match cloud_tool {
            Some(tool) if tool_out => format!("{why}; tool `{tool}` may not reach a cloud target"),
            _ => why.to_owned(),
        };
        (ErrorKind::PolicyBlocked, why)
    };
    PlanError {
        error: ProviderError::new(
            kind,
            format!(
                "no target may serve `{requested}` (privacy {}): {why}",
                privacy.as_str()
            ),
        ),
        route: resolved.route.clone(),
        privacy,
        excluded,
        unknown_model: false,
        rule: None,
    }
}

/// `Ok` for a target to try in order; `Err` for a cooling or down one, put last (tried
/// only when nothing else is left) with the reason it was deferred.
fn last_resort(
    planned: PlannedTarget,
    availability: Availability,
) -> Result<PlannedTarget, PlannedTarget> {
    let deferred = match availability {
        Availability::Available => return Ok(planned),
        Availability::Cooling => ReasonCode::CoolingDown,
        Availability::Down => ReasonCode::HealthDown,
    };
    Err(PlannedTarget {
        reason: ReasonCode::CoolingLastResort,
        deferred: Some(deferred),
        ..planned
    })
}
