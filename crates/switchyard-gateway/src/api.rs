//! The two client APIs, their error shapes, and the HTTP status of each failure kind.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::header::{CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use http::{HeaderName, HeaderValue, StatusCode};
use switchyard_core::{ApiFamily, ErrorKind, ProviderError, TimeoutPhase};

/// `application/json`.
pub(crate) const JSON: HeaderValue = HeaderValue::from_static("application/json");

/// `x-should-retry`: the openai and anthropic SDKs (and Claude Code) retry every 429 and
/// 5xx unless the answer says `false` here, which the gateway does for failures that a
/// retry cannot cure (see [`is_permanent`]).
pub(crate) const SHOULD_RETRY_HEADER: HeaderName = HeaderName::from_static("x-should-retry");

/// Whether a failure of `kind` stays the same when the request is sent again soon: an
/// exhausted quota or budget, an operation the target does not offer. Their answers carry
/// `x-should-retry: false` and no `retry-after`.
pub(crate) fn is_permanent(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::QuotaExhausted | ErrorKind::BudgetExhausted | ErrorKind::Unsupported
    )
}

/// Header slots a routed answer starts with: its content type (and `cache-control`,
/// `x-accel-buffering` when streamed), the five routing headers, the request id under its
/// three names (`telemetry::REQUEST_ID_ALIASES`) and the length or date the server adds.
/// Sized up front, the map never grows (a rehash) while they are inserted.
const ROUTED_HEADER_SLOTS: usize = 12;

/// An answer with room for a routed request's headers (see [`ROUTED_HEADER_SLOTS`]).
pub(crate) fn routed_response(body: Body) -> Response {
    let mut response = Response::new(body);
    *response.headers_mut() = http::HeaderMap::with_capacity(ROUTED_HEADER_SLOTS);
    response
}

/// The API a request arrived on; decides the error shape and the stream encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    /// `/v1/...`: `{"error":{"message","type","param","code"}}`, SSE streams.
    OpenAi,
    /// `/api/...` and `/`: `{"error":"..."}`, NDJSON streams.
    Ollama,
    /// `/v1/messages...` (and any request carrying `anthropic-version`):
    /// `{"type":"error","error":{"type","message"}}`, typed SSE events.
    Anthropic,
}

impl Api {
    /// The API whose error shape fits a path (`/api/...` is Ollama's, the rest OpenAI's).
    pub(crate) fn for_path(path: &str) -> Api {
        if path.starts_with("/v1/messages") {
            Api::Anthropic
        } else if path.starts_with("/api/") || path == "/" {
            Api::Ollama
        } else {
            Api::OpenAi
        }
    }

    /// The API whose error shape fits a request: Anthropic's when it carries
    /// `anthropic-version` (Anthropic's SDKs send it on every call), else by path.
    pub(crate) fn for_request(path: &str, headers: &http::HeaderMap) -> Api {
        if headers.contains_key(crate::anthropic::VERSION_HEADER) {
            Api::Anthropic
        } else {
            Api::for_path(path)
        }
    }

    /// The core's name for this API.
    pub(crate) fn family(self) -> ApiFamily {
        match self {
            Api::OpenAi => ApiFamily::OpenAi,
            Api::Ollama => ApiFamily::Ollama,
            Api::Anthropic => ApiFamily::Anthropic,
        }
    }

    /// A low-cardinality metrics label.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Api::OpenAi => "openai",
            Api::Ollama => "ollama",
            Api::Anthropic => "anthropic",
        }
    }

    /// Appends the error body in this API's shape.
    pub(crate) fn encode_error_body(self, err: &ProviderError, out: &mut Vec<u8>) {
        match self {
            Api::OpenAi => switchyard_stream::openai::encode_error_body(err, out),
            Api::Ollama => switchyard_stream::ollama::encode_error_body(err, out),
            Api::Anthropic => switchyard_stream::anthropic::encode_error_body(err, out),
        }
    }
}

/// The HTTP status the gateway answers a failure of `kind` with.
///
/// | kind | status |
/// |---|---|
/// | `invalid_request`, `context_overflow` | 400 |
/// | `policy_blocked` (privacy, allowed routes, strict targets) | 403 |
/// | `model_not_found` | 404 |
/// | `rate_limited`, `queue_full`, `quota_exhausted`, `budget_exhausted` | 429 |
/// | upstream `auth_failed`, `upstream_error`, `malformed_stream`, `stream_ended_early`, `endpoint_not_found` | 502 |
/// | `connect_refused`, `dns_failure`, `tls_failure`, `connect_failed`, `overloaded`, `timeout_queue`, `cancelled` | 503 |
/// | other timeouts (`timeout_connect`, `timeout_first_token`, `timeout_idle`, `timeout_total`) | 504 |
/// | `internal_error` | 500 |
///
/// An upstream's `auth_failed` is the gateway's credential problem, not the client's, so it
/// is a 502 (the gateway's own 401 is for the client's key).
pub fn status_for(kind: ErrorKind) -> StatusCode {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::ContextOverflow => StatusCode::BAD_REQUEST,
        ErrorKind::PolicyBlocked => StatusCode::FORBIDDEN,
        ErrorKind::ModelNotFound => StatusCode::NOT_FOUND,
        ErrorKind::RateLimited
        | ErrorKind::QueueFull
        | ErrorKind::QuotaExhausted
        | ErrorKind::BudgetExhausted => StatusCode::TOO_MANY_REQUESTS,
        ErrorKind::Auth
        | ErrorKind::Upstream
        | ErrorKind::MalformedStream
        | ErrorKind::StreamEndedEarly
        | ErrorKind::EndpointNotFound => StatusCode::BAD_GATEWAY,
        ErrorKind::ConnectRefused
        | ErrorKind::Dns
        | ErrorKind::Tls
        | ErrorKind::Connect
        | ErrorKind::Overloaded
        | ErrorKind::Cancelled
        | ErrorKind::Timeout(TimeoutPhase::Queue) => StatusCode::SERVICE_UNAVAILABLE,
        ErrorKind::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
        ErrorKind::Unsupported => StatusCode::NOT_IMPLEMENTED,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// A failure answered in the client's API shape.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) api: Api,
    pub(crate) status: StatusCode,
    pub(crate) error: ProviderError,
    /// The `x-switchyard-skipped` value of a refused request (see [`crate::skipped`]).
    pub(crate) skipped: Option<Box<HeaderValue>>,
}

impl ApiError {
    /// The error with the status of its kind.
    pub(crate) fn new(api: Api, error: ProviderError) -> Self {
        Self {
            api,
            status: status_for(error.kind()),
            error,
            skipped: None,
        }
    }

    /// The error with an explicit status.
    pub(crate) fn with_status(api: Api, status: StatusCode, error: ProviderError) -> Self {
        Self {
            api,
            status,
            error,
            skipped: None,
        }
    }

    /// A 400 for a bad request body or header.
    pub(crate) fn invalid(api: Api, message: impl Into<String>) -> Self {
        Self::new(api, ProviderError::new(ErrorKind::InvalidRequest, message))
    }

    /// A 401 for a missing or wrong key.
    pub(crate) fn unauthorized(api: Api, message: impl Into<String>) -> Self {
        Self::with_status(
            api,
            StatusCode::UNAUTHORIZED,
            ProviderError::new(ErrorKind::Auth, message),
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(mut self) -> Response {
        // The gateway's own 401 says what was wrong with the caller's key (missing, not
        // one of the gateway's) and names nothing upstream: every caller sees it whole. An
        // upstream's refusal of the gateway's credentials is a 502 and stays generic.
        let detailed = self.status == StatusCode::UNAUTHORIZED || crate::detail::detailed();
        let shown = crate::detail::shown(&self.error, detailed);
        let error = shown.as_ref().unwrap_or(&self.error);
        let mut body = Vec::with_capacity(128 + error.message().len());
        if self.api == Api::Anthropic {
            // Anthropic's mapping: the `error.type` follows the status, 529 for overloaded.
            if error.kind() == ErrorKind::Overloaded {
                self.status = StatusCode::from_u16(529).unwrap_or(self.status);
            }
            let kind = switchyard_stream::anthropic::error_type_for_status(self.status.as_u16());
            switchyard_stream::anthropic::encode_error_body_as(error, kind, &mut body);
        } else {
            self.api.encode_error_body(error, &mut body);
        }
        let mut response = Response::new(Body::from(body));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, JSON);
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(v) = self.skipped.take() {
            headers.insert(crate::skipped::SKIPPED_HEADER, *v);
        }
        // Budgets, quotas and unsupported operations do not come back in a second: the
        // SDKs are told not to retry them at all.
        let permanent = is_permanent(self.error.kind());
        if permanent {
            headers.insert(SHOULD_RETRY_HEADER, HeaderValue::from_static("false"));
        }
        // 529: Anthropic's overloaded, a 503 on the other APIs.
        if matches!(self.status.as_u16(), 429 | 503 | 529) {
            // Everything else gets a hint so the SDKs' retry loops back off instead of
            // hammering.
            let after = self.error.retry_after().map(|d| {
                let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
                secs.max(1)
            });
            if let Some(secs) = after.or((!permanent).then_some(1)) {
                headers.insert(RETRY_AFTER, HeaderValue::from(secs));
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_has_a_fitting_status() {
        for kind in ErrorKind::ALL {
            let status = status_for(kind);
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{kind}"
            );
        }
        assert_eq!(status_for(ErrorKind::ModelNotFound), StatusCode::NOT_FOUND);
        assert_eq!(
            status_for(ErrorKind::Timeout(TimeoutPhase::FirstToken)),
            StatusCode::GATEWAY_TIMEOUT
        );
        assert_eq!(
            status_for(ErrorKind::QueueFull),
            StatusCode::TOO_MANY_REQUESTS
        );
    }

    #[test]
    fn permanent_failures_say_not_to_retry_and_rate_limits_say_when() {
        let headers = |kind: ErrorKind| {
            let error = ProviderError::new(kind, "x");
            ApiError::new(Api::OpenAi, error)
                .into_response()
                .headers()
                .clone()
        };
        for kind in [
            ErrorKind::QuotaExhausted,
            ErrorKind::BudgetExhausted,
            ErrorKind::Unsupported,
        ] {
            let h = headers(kind);
            assert_eq!(h[SHOULD_RETRY_HEADER], "false", "{kind}");
            assert!(h.get(RETRY_AFTER).is_none(), "{kind}");
        }
        for kind in [
            ErrorKind::RateLimited,
            ErrorKind::QueueFull,
            ErrorKind::Overloaded,
        ] {
            let h = headers(kind);
            assert!(h.get(SHOULD_RETRY_HEADER).is_none(), "{kind}");
            assert_eq!(h[RETRY_AFTER], "1", "{kind}");
        }
    }

    #[test]
    fn path_decides_the_shape() {
        assert_eq!(Api::for_path("/api/chat"), Api::Ollama);
        assert_eq!(Api::for_path("/v1/models"), Api::OpenAi);
        assert_eq!(Api::for_path("/metrics"), Api::OpenAi);
    }
}
