//! Operations endpoints: `/healthz`, `/readyz`, `/metrics`, and the 404 for unknown paths.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use http::StatusCode;
use http::header::CONTENT_TYPE;
use serde::Serialize;
use switchyard_core::{ErrorKind, ProviderError};
use switchyard_router::{Health, ProviderStatus};

use crate::api::{Api, ApiError};
use crate::catalog;
use crate::gateway::Shared;

/// `GET /healthz`: the process serves HTTP.
pub(crate) async fn healthz() -> &'static str {
    "ok\n"
}

/// `GET /readyz`: provider states (to admin keys and loopback callers; others get only
/// `ready`); 503 when no provider is up, or while models listed to warm at start are still
/// loading (named in `warming`, until their timeout). With shared state, `shared_state`
/// says whether its store answers (asked now) and how many charges wait for it.
pub(crate) async fn readyz(State(shared): State<Arc<Shared>>) -> Response {
    let router = shared.router.load_full();
    let providers = router.provider_status();
    let warming = shared.warmup.waiting_for();
    let shared_state = match router.shared_state() {
        Some(state) => Some(SharedStateStatus {
            up: state.check().await,
            store: state.kind(),
            pending_charges: state.pending_charges(),
        }),
        None => None,
    };
    let ready = warming.is_empty() && providers.iter().any(|p| matches!(p.health, Health::Up));
    let shown: &[ProviderStatus] = if crate::detail::detailed() {
        &providers
    } else {
        &[]
    };
    let mut response = catalog::json(&Readiness {
        ready,
        providers: shown,
        warming,
        shared_state,
    });
    if !ready {
        *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    }
    response
}

#[derive(Serialize)]
struct Readiness<'a> {
    ready: bool,
    #[serde(skip_serializing_if = "<[ProviderStatus]>::is_empty")]
    providers: &'a [ProviderStatus],
    #[serde(skip_serializing_if = "Vec::is_empty")]
    warming: Vec<String>,
    /// With shared state: whether it answers. An unreachable store does not make the
    /// replica unready (every replica shares the outage; see docs/DECISIONS.md).
    #[serde(skip_serializing_if = "Option::is_none")]
    shared_state: Option<SharedStateStatus>,
}

#[derive(Serialize)]
struct SharedStateStatus {
    store: &'static str,
    up: bool,
    pending_charges: usize,
}

/// `GET /metrics`: the Prometheus exporter's text (router and gateway metrics), without
/// the gauges of providers a reload removed.
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = match shared.metrics.load().as_deref() {
        Some(handle) => {
            let providers = shared.router.load().providers();
            let configured: Vec<&str> = providers.iter().map(|p| p.id.as_str()).collect();
            without_removed_providers(handle.render(), &configured)
        }
        None => "# no Prometheus exporter installed (Gateway::with_metrics_handle)\n".to_owned(),
    };
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
}

/// The per-provider gauges: set on change and never expired by the exporter (an idle gauge
/// still holds its value), so a provider a reload removed would read its last value forever
/// (`provider_up 0`: an alert that never stops).
const PROVIDER_GAUGES: [&str; 4] = [
    switchyard_router::metrics::PROVIDER_UP,
    switchyard_router::metrics::IN_FLIGHT,
    switchyard_router::metrics::QUEUE_DEPTH,
    switchyard_router::metrics::SPEND_USD_TOTAL,
];

/// `text` (the exporter's) without the samples of [`PROVIDER_GAUGES`] whose `provider`
/// label is not one of `configured`. The exporter cannot remove a series on request, so
/// `/metrics` leaves them out; a provider added back shows its gauges again.
fn without_removed_providers(text: String, configured: &[&str]) -> String {
    let removed = |line: &str| {
        PROVIDER_GAUGES.iter().any(|name| {
            line.strip_prefix(name)
                .and_then(|rest| rest.strip_prefix('{'))
                .and_then(|labels| label_value(labels, "provider"))
                .is_some_and(|provider| !configured.contains(&provider))
        })
    };
    if !text.lines().any(removed) {
        return text;
    }
    let mut kept = String::with_capacity(text.len());
    for line in text.lines().filter(|line| !removed(line)) {
        kept.push_str(line);
        kept.push('\n');
    }
    kept
}

/// The value of label `name` in a sample's label set (`a="x",b="y"} 1`), as written (the
/// exporter escapes `\\`, `"` and newlines; a provider id has none of them).
fn label_value<'a>(labels: &'a str, name: &str) -> Option<&'a str> {
    let mut rest = labels;
    loop {
        let (key, after) = rest.split_once("=\"")?;
        let end = after.find('"')?;
        if key.trim_start_matches(',') == name {
            return after.get(..end);
        }
        rest = after.get(end + 1..)?;
        if rest.starts_with('}') {
            return None;
        }
    }
}

/// A known path with a method it does not serve: 405 in the API's error shape.
pub(crate) async fn method_not_allowed(request: Request) -> Response {
    path_error(
        &request,
        StatusCode::METHOD_NOT_ALLOWED,
        ErrorKind::InvalidRequest,
        "method not allowed",
    )
}

/// Any other path: 404 in the shape of the API the path belongs to.
pub(crate) async fn not_found(request: Request) -> Response {
    path_error(
        &request,
        StatusCode::NOT_FOUND,
        ErrorKind::EndpointNotFound,
        "no such endpoint",
    )
}

/// An error about the request's method and path, in the shape of the path's API.
fn path_error(request: &Request, status: StatusCode, kind: ErrorKind, what: &str) -> Response {
    let api = Api::for_request(request.uri().path(), request.headers());
    let message = format!("{what}: {} {}", request.method(), request.uri().path());
    ApiError::with_status(api, status, ProviderError::new(kind, message)).into_response()
}

#[cfg(test)]
mod metrics_tests {
    use super::*;

    #[test]
    fn removed_providers_gauges_are_left_out_and_others_kept() {
        let text = "# TYPE switchyard_provider_up gauge\n\
switchyard_provider_up{provider=\"gone\"} 0\n\
switchyard_provider_up{provider=\"local\"} 1\n\
switchyard_queue_depth{provider=\"gone\"} 3\n\
switchyard_spend_usd_total{provider=\"gone\"} 0.5\n\
switchyard_in_flight{provider=\"local\"} 2\n\
switchyard_requests_total{provider=\"gone\",reason=\"primary\"} 7\n\
switchyard_provider_upx{provider=\"gone\"} 1\n";
        let kept = without_removed_providers(text.to_owned(), &["local"]);
        assert_eq!(
            kept,
            "# TYPE switchyard_provider_up gauge\n\
switchyard_provider_up{provider=\"local\"} 1\n\
switchyard_in_flight{provider=\"local\"} 2\n\
switchyard_requests_total{provider=\"gone\",reason=\"primary\"} 7\n\
switchyard_provider_upx{provider=\"gone\"} 1\n"
        );
        // Nothing removed: the same text, not a copy.
        let all = without_removed_providers(text.to_owned(), &["local", "gone"]);
        assert_eq!(all, text);
    }

    #[test]
    fn label_values_are_found_in_any_position() {
        assert_eq!(label_value("provider=\"a\"} 1", "provider"), Some("a"));
        assert_eq!(
            label_value("x=\"1\",provider=\"b\"} 1", "provider"),
            Some("b")
        );
        assert_eq!(label_value("x=\"provider\"} 1", "provider"), None);
        assert_eq!(label_value("} 1", "provider"), None);
    }
}
