//! The model catalog as both APIs list it: the router's entries, filtered by the caller's
//! allowed routes.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use switchyard_core::{ChatRequest, ErrorKind, PrivacyClass, ProviderError, ReasonCode};
use switchyard_router::{CatalogEntry, Router};

use crate::api::{Api, ApiError, JSON};
use crate::auth::Caller;
use crate::gateway::Shared;

/// The router's catalog (route aliases first, as the router orders it), without the
/// entries the caller's key may not use: models outside the key's allowed list, and those
/// whose every target the key's privacy class rules out (a `local-only` key sees no cloud
/// models, nor routes that lead only to the cloud).
pub(crate) async fn visible_entries(shared: &Shared, caller: &Caller) -> Vec<CatalogEntry> {
    let router = shared.router.load_full();
    let mut entries = router.catalog().await;
    if let Some(key) = &caller.0 {
        entries.retain(|e| key.allows_model(&e.id));
    }
    let privacy = caller.0.as_ref().and_then(|k| k.privacy);
    entries.retain(|e| !privacy_rules_out(&router, e, privacy));
    entries
}

/// Whether a request for `entry` under `privacy` (the router's default when `None`) could
/// reach none of its targets for privacy reasons alone.
fn privacy_rules_out(router: &Router, entry: &CatalogEntry, privacy: Option<PrivacyClass>) -> bool {
    let mut probe = ChatRequest::new(entry.id.clone(), Vec::new());
    probe.meta.privacy = privacy;
    let plan = router.explain(&probe);
    !plan.targets.is_empty()
        && plan
            .targets
            .iter()
            .all(|t| !t.included && t.reason == ReasonCode::PrivacyLocalOnly)
}

/// The entry a client names: exactly, else with or without Ollama's implicit `:latest`
/// tag, as the router resolves names ([`Router::same_model_name`]).
pub(crate) fn find<'a>(entries: &'a [CatalogEntry], name: &str) -> Option<&'a CatalogEntry> {
    entries.iter().find(|e| e.id == name).or_else(|| {
        entries
            .iter()
            .find(|e| Router::same_model_name(&e.id, name))
    })
}

/// The visible entry for the model a client names (`/api/show`, `/v1/models/{id}`): as
/// [`find`] matches it, else as the router plans a chat for that name (a bare `qwen3:8b`
/// goes to the least exposed provider that offers it), the entry of the plan's first
/// target. So every name a chat accepts can be looked up: clients such as `ollama run`
/// show a model before they use it and pull it when it is not found.
pub(crate) async fn lookup(shared: &Shared, caller: &Caller, name: &str) -> Option<CatalogEntry> {
    let entries = visible_entries(shared, caller).await;
    if let Some(entry) = find(&entries, name) {
        return Some(entry.clone());
    }
    let mut probe = ChatRequest::new(name.to_owned(), Vec::new());
    probe.meta.privacy = caller.0.as_ref().and_then(|k| k.privacy);
    let plan = shared.router.load_full().explain(&probe);
    let target = plan.targets.iter().find(|t| t.included)?;
    let id = format!("{}/{}", target.target.provider, target.target.model);
    find(&entries, &id).cloned()
}

/// A 200 with `value` as JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> Response {
    match serde_json::to_vec(value) {
        Ok(body) => {
            let mut response = Response::new(Body::from(body));
            response.headers_mut().insert(CONTENT_TYPE, JSON);
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "could not serialise a response");
            let mut response = Response::new(Body::empty());
            *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
            response
        }
    }
}

/// A 200 with `body` as JSON when the model was found; otherwise the API's
/// `model_not_found` error with the message `missing` gives.
pub(crate) fn json_or_not_found<T: Serialize>(
    api: Api,
    body: Option<T>,
    missing: impl FnOnce() -> String,
) -> Response {
    match body {
        Some(body) => json(&body),
        None => ApiError::new(api, ProviderError::new(ErrorKind::ModelNotFound, missing()))
            .into_response(),
    }
}
