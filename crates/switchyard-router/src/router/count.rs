//! Counting a request's input tokens at the target that would serve it, for clients that
//! ask before they send (Anthropic's `count_tokens`).

use super::*;
use crate::TargetRef;

impl Router {
    /// The first target the plan for `request` would try, and its upstream's count of the
    /// request's input tokens, when that upstream can count ([`Provider::count_tokens`]).
    /// The plan applies every policy (privacy, cloud switch, budget, strict targets), so a
    /// request never goes for counting where it could not go for an answer. `None` when no
    /// target is planned, the first one cannot count, or counting failed.
    pub async fn count_tokens(&self, request: &ChatRequest) -> Option<(TargetRef, u64)> {
        let plan = self.explain(request);
        let first = plan.targets.into_iter().find(|t| t.included)?.target;
        if !plan.privacy.allows(first.locality) {
            return None;
        }
        let slot = self
            .inner
            .slots
            .get(*self.inner.by_id.get(&*first.provider)?)?;
        match slot.provider.count_tokens(request, &first.model).await {
            Ok(Some(tokens)) => Some((first, tokens)),
            Ok(None) => None,
            Err(error) => {
                tracing::debug!(target = %first, error = %error, "counting tokens upstream failed");
                None
            }
        }
    }
}
