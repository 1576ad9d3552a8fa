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
use crate::router::names::same_model;
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
                // Sent upstream as the provider lists it (`x` and `x:latest` are one model).
                let model = self.slots.get(slot).map_or_else(
                    || upstream_model.to_owned(),
                    |s| s.listed_name(upstream_model),
                );
                let exact = ParsedTarget {
                    slot,
                    model: model.into(),
                };
                // A route whose first step holds this target may let it fall back along
                // the route: `fallback: true` on the route, or non-strict exact targets.
                for route in self.routes.values() {
                    let first_holds = route.steps.first().is_some_and(|s| {
                        s.iter()
                            .any(|t| t.slot == exact.slot && same_model(&t.model, &exact.model))
                    });
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
            .map(|(slot, s)| {
                strict(
                    ParsedTarget {
                        slot,
                        model: s.listed_name(model).into(),
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
            same_model(a, requested)
                || resolved.route.as_ref() == Some(a)
                || exact_name.as_deref().is_some_and(|e| same_model(a, e))
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
            // Resolved as planning resolves it (wildcards, the implied `:latest` tag).
            let Some(route) = self.route_for(current) else {
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
            && slot.with_model(&t.model, |m| m.price).flatten().is_none()
        {
            Some(ReasonCode::UnpricedUnderBudget)
        } else {
            let recovers = slot.provider.recovers_text_tool_calls(&t.model);
            slot.with_model(&t.model, |m| self.needs.unmet(Some(m), recovers))
                .flatten()
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

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use async_trait::async_trait;
    use switchyard_core::{
        ChatRequest, ChatStream, ErrorKind, Locality, ModelInfo, Provider, ProviderError,
    };

    use crate::{Explanation, MemoryLedger, ProviderSlot, Router, RouterConfig};

    /// A provider that is never called: planning only reads catalogs.
    #[derive(Debug)]
    struct Idle;

    #[async_trait]
    impl Provider for Idle {
        async fn chat(&self, _: &ChatRequest) -> Result<ChatStream, ProviderError> {
            Err(ProviderError::new(ErrorKind::Internal, "not called"))
        }
        async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
            Ok(Vec::new())
        }
        async fn health(&self) -> Result<(), ProviderError> {
            Ok(())
        }
    }

    /// `oai` lists `gpt` and `chat-model` statically (an OpenAI catalog, untagged names);
    /// `oll` has discovered `llama3:latest`, `llama3:8b` and `coder:latest` (an Ollama
    /// catalog, tags written out).
    fn router(routes: serde_json::Value) -> Router {
        let mut oai = ProviderSlot::new("oai", Arc::new(Idle), Locality::Local);
        oai.models = vec![
            ModelInfo::new("gpt", Locality::Local),
            ModelInfo::new("chat-model", Locality::Local),
        ];
        let oll = ProviderSlot::new("oll", Arc::new(Idle), Locality::Local);
        let config: RouterConfig =
            serde_json::from_value(serde_json::json!({ "routes": routes })).unwrap();
        let router = Router::new(config, vec![oai, oll], Arc::new(MemoryLedger::new())).unwrap();
        let listed = ["llama3:latest", "llama3:8b", "coder:latest"]
            .map(|id| ModelInfo::new(id, Locality::Local))
            .to_vec();
        *router.inner.slots[1].live.catalog.lock().unwrap() = Some((Instant::now(), listed));
        router
    }

    fn explain(router: &Router, model: &str) -> Explanation {
        router.explain(&ChatRequest::new(model, Vec::new()))
    }

    /// The first included target as `provider/model`, and the route.
    fn served(router: &Router, model: &str) -> (Option<String>, String) {
        let e = explain(router, model);
        assert_eq!(e.error, None, "{model}: {e:?}");
        let first = e.targets.iter().find(|t| t.included).expect("a target");
        (e.route.clone(), first.target.to_string())
    }

    #[test]
    fn a_route_alias_is_found_with_or_without_the_latest_tag() {
        let r = router(serde_json::json!({
            "chat": { "targets": ["oai/chat-model"] },
            "coder:latest": { "targets": ["oll/coder:latest"] } }));
        let chat = (Some("chat".to_owned()), "oai/chat-model".to_owned());
        assert_eq!(served(&r, "chat"), chat);
        assert_eq!(served(&r, "chat:latest"), chat);
        let coder = (
            Some("coder:latest".to_owned()),
            "oll/coder:latest".to_owned(),
        );
        assert_eq!(served(&r, "coder"), coder);
        assert_eq!(served(&r, "coder:latest"), coder);
    }

    #[test]
    fn an_exact_target_is_sent_as_its_catalog_lists_it() {
        let r = router(serde_json::json!({}));
        assert_eq!(served(&r, "oll/llama3"), (None, "oll/llama3:latest".into()));
        assert_eq!(
            served(&r, "oll/llama3:latest"),
            (None, "oll/llama3:latest".into())
        );
        assert_eq!(served(&r, "oai/gpt:latest"), (None, "oai/gpt".into()));
        assert_eq!(served(&r, "oai/gpt"), (None, "oai/gpt".into()));
    }

    #[test]
    fn a_bare_name_is_sent_as_its_catalog_lists_it() {
        let r = router(serde_json::json!({}));
        assert_eq!(served(&r, "llama3"), (None, "oll/llama3:latest".into()));
        assert_eq!(served(&r, "gpt:latest"), (None, "oai/gpt".into()));
        assert_eq!(served(&r, "llama3:8b"), (None, "oll/llama3:8b".into()));
    }

    #[test]
    fn only_the_latest_tag_is_implied() {
        let r = router(serde_json::json!({ "chat": { "targets": ["oai/chat-model"] } }));
        for name in ["chat:7b", "gpt:4o", "oai/gpt:4o", "coder:7b"] {
            let e = explain(&r, name);
            assert!(
                e.error.as_deref().is_some_and(|m| m.contains("not found")),
                "{name}: {e:?}"
            );
        }
        // A discovered catalog does not refuse an exact target it does not list; the name
        // is sent as written, not as the listed `coder:latest`.
        assert_eq!(served(&r, "oll/coder:7b"), (None, "oll/coder:7b".into()));
        // `llama3:8b` is listed, but a bare `llama3` is `llama3:latest`, not it.
        let only_8b = router(serde_json::json!({}));
        *only_8b.inner.slots[1].live.catalog.lock().unwrap() = Some((
            Instant::now(),
            vec![ModelInfo::new("llama3:8b", Locality::Local)],
        ));
        let e = explain(&only_8b, "llama3");
        assert!(e.error.is_some(), "{e:?}");
    }

    #[test]
    fn an_exact_route_target_named_with_the_latest_tag_keeps_its_route() {
        let r = router(serde_json::json!({
            "code": { "targets": ["oll/coder", "oai/gpt"], "fallback": true } }));
        let e = explain(&r, "oll/coder:latest");
        assert_eq!(e.route.as_deref(), Some("code"), "{e:?}");
        let included: Vec<String> = e
            .targets
            .iter()
            .filter(|t| t.included)
            .map(|t| t.target.to_string())
            .collect();
        assert_eq!(included, ["oll/coder:latest", "oai/gpt"]);
    }

    #[test]
    fn task_rules_apply_to_a_route_named_with_the_latest_tag() {
        let r = router(serde_json::json!({
            "chat": { "targets": ["oai/chat-model"],
                      "rules": [ { "task": "summary", "to": "sum" } ] },
            "sum": { "targets": ["oai/gpt"] } }));
        let mut request = ChatRequest::new("chat:latest", Vec::new());
        request.meta.task = Some("summary".to_owned());
        let e = r.explain(&request);
        assert_eq!(e.route.as_deref(), Some("sum"), "{e:?}");
        assert_eq!(e.rule.as_deref(), Some("chat.rules[0] -> sum"));
    }
}
