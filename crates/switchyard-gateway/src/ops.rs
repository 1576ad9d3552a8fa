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

/// `GET /metrics`: the Prometheus exporter's text (router and gateway metrics).
pub(crate) async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    let text = match shared.metrics.load().as_deref() {
        Some(handle) => handle.render(),
        None => "# no Prometheus exporter installed (Gateway::with_metrics_handle)\n".to_owned(),
    };
    let mut response = Response::new(Body::from(text));
    response.headers_mut().insert(
        CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    response
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
