//! Model lifecycle on Ollama's API: `GET /api/version` (an Ollama-compatible version, the
//! gateway's own in a header), `GET /api/ps` (the upstreams' loaded models, merged) and
//! `POST /api/pull` (admin keys only, onto a named local provider, progress streamed).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http::HeaderValue;
use http::header::CONTENT_TYPE;
use serde::{Deserialize, Serialize};
use switchyard_core::{ErrorKind, LoadedModel, ProviderError};
use switchyard_router::{LocalTargetError, ProviderHandle, Router};

use crate::api::{Api, ApiError};
use crate::auth::Caller;
use crate::catalog;
use crate::chat::read_body;
use crate::gateway::Shared;

/// The Ollama version reported when no configured Ollama upstream answers, and the least
/// `/api/version` ever reports: clients gate features on it (VS Code's Ollama provider wants
/// at least 0.6.4; Codex CLI's `--oss` refuses an Ollama older than 0.13.4, the first with
/// the Responses API), and the gateway serves those APIs itself whatever its upstreams are.
pub const FALLBACK_OLLAMA_VERSION: &str = "0.13.4";

/// Response header with the gateway's own version on `/api/version`.
pub const VERSION_HEADER: &str = "x-switchyard-version";

/// How long `/api/version` and `/api/ps` wait for each upstream.
const UPSTREAM_WAIT: Duration = Duration::from_secs(2);

/// The largest `/api/pull` request body read.
const MAX_PULL_BODY: usize = 64 * 1024;

/// `GET /api/version`: the lowest version among the upstreams that report one (Ollama), or
/// [`FALLBACK_OLLAMA_VERSION`]; the gateway's own version in `x-switchyard-version`.
pub(crate) async fn version(State(shared): State<Arc<Shared>>) -> Response {
    let router = shared.router.load_full();
    let answers = each_provider(&router, |p| async move {
        p.provider.server_version().await.ok().flatten()
    })
    .await;
    let version = reported_version(lowest_version(answers.into_iter().flatten().flatten()));
    let mut response = catalog::json(&VersionBody { version: &version });
    if let Ok(own) = HeaderValue::from_str(&shared.settings.load().config.version) {
        response.headers_mut().insert(VERSION_HEADER, own);
    }
    response
}

/// The version `/api/version` reports for the `lowest` upstream version: that one, but
/// never below [`FALLBACK_OLLAMA_VERSION`] (nor the fallback itself when none answered).
fn reported_version(lowest: Option<String>) -> String {
    let floor = semver::Version::new(0, 13, 4);
    match lowest {
        Some(v) if semver::Version::parse(&v).is_ok_and(|parsed| parsed >= floor) => v,
        _ => FALLBACK_OLLAMA_VERSION.to_owned(),
    }
}

/// The lowest of `versions` that parse as semantic versions (`0.12.6`, `0.13.0-rc1`).
pub(crate) fn lowest_version(versions: impl Iterator<Item = String>) -> Option<String> {
    versions
        .filter_map(|v| semver::Version::parse(v.trim()).ok().map(|p| (p, v)))
        .min_by(|a, b| a.0.cmp(&b.0))
        .map(|(_, v)| v.trim().to_owned())
}

/// `GET /api/ps`: every upstream's loaded models, named `provider/model` as the catalog
/// names them, without those the caller's key may not use. An upstream that does not
/// answer in time is left out.
pub(crate) async fn ps(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let router = shared.router.load_full();
    let lists = each_provider(&router, |p| async move {
        let loaded = p.provider.loaded_models().await.unwrap_or_default();
        (p.id, loaded)
    })
    .await;
    let mut models = Vec::new();
    for (id, loaded) in lists.into_iter().flatten() {
        for mut m in loaded {
            let name = format!("{id}/{}", m.name);
            if caller.0.as_ref().is_some_and(|k| !k.allows_model(&name)) {
                continue;
            }
            m.model = name.clone();
            m.name = name;
            models.push(m);
        }
    }
    catalog::json(&PsBody { models })
}

/// Runs `f` on every provider at once, each bounded by [`UPSTREAM_WAIT`] (`None` when late).
async fn each_provider<F, Fut, T>(router: &Router, f: F) -> Vec<Option<T>>
where
    F: Fn(ProviderHandle) -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let calls = router
        .providers()
        .into_iter()
        .map(|p| tokio::time::timeout(UPSTREAM_WAIT, f(p)));
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(Result::ok)
        .collect()
}

/// `POST /api/pull`: `{"model", "stream"?, "provider"?}`; the provider is `provider`, the
/// `provider/` prefix of the model, or the only local/LAN provider.
pub(crate) async fn pull(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    match start_pull(&shared, &caller, request).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    }
}

async fn start_pull(
    shared: &Shared,
    caller: &Caller,
    request: Request,
) -> Result<Response, ApiError> {
    let api = Api::Ollama;
    if caller.0.as_ref().is_some_and(|k| !k.admin) {
        return Err(ApiError::new(
            api,
            ProviderError::new(
                ErrorKind::PolicyBlocked,
                "pulling models needs an admin key (`admin: true` in the key's config)",
            ),
        ));
    }
    let (parts, body) = request.into_parts();
    let bytes = read_body(api, &parts.headers, body, MAX_PULL_BODY).await?;
    let wanted: PullRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::invalid(api, format!("invalid request body: {e}")))?;
    let name = wanted
        .model
        .or(wanted.name)
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ApiError::invalid(api, "model is required"))?;
    let router = shared.router.load_full();
    let (target, model) = pull_target(&router, wanted.provider.as_deref(), &name)?;
    tracing::info!(provider = %target.id, model = %model, "pulling a model");
    let progress = target
        .provider
        .pull(&model)
        .await
        .map_err(|e| ApiError::new(api, e.context(format_args!("provider `{}`", target.id))))?;
    if wanted.stream.unwrap_or(true) {
        return Ok(ndjson(progress));
    }
    let mut last = None;
    let mut progress = progress;
    while let Some(item) = progress.next().await {
        last = Some(item.map_err(|e| ApiError::new(api, e))?);
    }
    Ok(catalog::json(&last.unwrap_or_default()))
}

/// The provider a pull goes to and the model name on it.
fn pull_target(
    router: &Router,
    named: Option<&str>,
    model: &str,
) -> Result<(ProviderHandle, String), ApiError> {
    router.local_target(named, model).map_err(|e| {
        let kind = match e {
            LocalTargetError::Cloud(_) => ErrorKind::PolicyBlocked,
            _ => ErrorKind::InvalidRequest,
        };
        ApiError::new(Api::Ollama, ProviderError::new(kind, e.to_string()))
    })
}

/// Progress reports as Ollama's NDJSON lines; an error after the start is an `{"error"}`
/// line, as Ollama writes it.
fn ndjson(progress: switchyard_core::PullStream) -> Response {
    let lines = progress.map(|item| {
        let mut line = match item {
            Ok(p) => serde_json::to_vec(&p).unwrap_or_default(),
            Err(e) => serde_json::to_vec(&ErrorLine { error: e.message() }).unwrap_or_default(),
        };
        line.push(b'\n');
        Ok::<_, Infallible>(Bytes::from(line))
    });
    let mut response = Response::new(Body::from_stream(lines));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-ndjson"),
    );
    response
}

#[derive(Deserialize)]
struct PullRequest {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    /// Switchyard's own field: the provider to pull onto.
    #[serde(default)]
    provider: Option<String>,
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct VersionBody<'a> {
    version: &'a str,
}

#[derive(Serialize)]
struct PsBody {
    models: Vec<LoadedModel>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_lowest_parsable_version_wins() {
        let v = |s: &[&str]| lowest_version(s.iter().map(|s| (*s).to_owned()));
        assert_eq!(v(&["0.12.6", "0.6.4", "0.13.0"]).as_deref(), Some("0.6.4"));
        assert_eq!(v(&["0.13.0-rc1", "0.13.0"]).as_deref(), Some("0.13.0-rc1"));
        assert_eq!(v(&["0.12.10", "0.12.9"]).as_deref(), Some("0.12.9"));
        assert_eq!(v(&["dev", "0.11.0"]).as_deref(), Some("0.11.0"));
        assert_eq!(v(&["dev"]), None);
    }

    #[test]
    fn the_reported_version_is_never_below_the_floor() {
        let r = |s: Option<&str>| reported_version(s.map(str::to_owned));
        assert_eq!(r(None), FALLBACK_OLLAMA_VERSION);
        assert_eq!(r(Some("0.7.1")), FALLBACK_OLLAMA_VERSION);
        assert_eq!(r(Some("0.13.4-rc1")), FALLBACK_OLLAMA_VERSION);
        assert_eq!(r(Some("0.13.4")), "0.13.4");
        assert_eq!(r(Some("0.14.2")), "0.14.2");
        assert_eq!(
            semver::Version::parse(FALLBACK_OLLAMA_VERSION).ok(),
            Some(semver::Version::new(0, 13, 4))
        );
    }
}
