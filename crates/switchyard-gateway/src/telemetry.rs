//! The gateway's own metrics (facade calls only; the binary installs the exporter) and
//! request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use http::{HeaderName, HeaderValue, StatusCode};
use tower_http::request_id::{MakeRequestId, RequestId};

use crate::api::Api;

/// Histogram: time the gateway itself added to a chat request (total time minus the time
/// spent waiting on upstreams), in seconds, by `api`.
pub const GATEWAY_OVERHEAD_SECONDS: &str = "switchyard_gateway_overhead_seconds";
/// Counter: HTTP requests answered, by `api` (`openai`, `ollama`, `ops`) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "switchyard_http_requests_total";

/// The request id header, taken from the client when it sends one, echoed on every answer.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-switchyard-request-id");

/// Records `switchyard_http_requests_total` for every answer.
pub(crate) async fn count_http_requests(request: Request, next: Next) -> Response {
    let path = request.uri().path();
    let api = if path.starts_with("/v1/") {
        Api::OpenAi.label()
    } else if path.starts_with("/api/") || path == "/" {
        Api::Ollama.label()
    } else {
        "ops"
    };
    let response = next.run(request).await;
    metrics::counter!(HTTP_REQUESTS_TOTAL, "api" => api, "status" => status_label(response.status()))
        .increment(1);
    response
}

/// Records the gateway's overhead for one chat request.
pub(crate) fn record_overhead(api: Api, overhead: Duration) {
    metrics::histogram!(GATEWAY_OVERHEAD_SECONDS, "api" => api.label())
        .record(overhead.as_secs_f64());
}

fn status_label(status: StatusCode) -> &'static str {
    match status.as_u16() {
        200 => "200",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        413 => "413",
        429 => "429",
        500 => "500",
        502 => "502",
        503 => "503",
        504 => "504",
        s if s < 300 => "2xx",
        s if s < 400 => "3xx",
        s if s < 500 => "4xx",
        _ => "5xx",
    }
}

/// Makes request ids `req_` + 16 hex digits: a per-process seed mixed with a counter, so
/// ids are unique within a process and unlikely to repeat across restarts.
#[derive(Debug, Clone)]
pub(crate) struct MakeSwitchyardRequestId {
    seed: u64,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Default for MakeSwitchyardRequestId {
    fn default() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            seed: now ^ (u64::from(std::process::id()) << 32),
        }
    }
}

impl MakeRequestId for MakeSwitchyardRequestId {
    fn make_request_id<B>(&mut self, _request: &http::Request<B>) -> Option<RequestId> {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = format!("req_{:016x}", mix(self.seed.wrapping_add(n)));
        HeaderValue::from_str(&id).ok().map(RequestId::new)
    }
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Drops a client-sent request id that is empty, longer than 128 bytes or not printable
/// ASCII, so the request-id layer makes a fresh one (ids end up in logs and headers).
pub(crate) fn drop_unusable_request_id<B>(mut request: http::Request<B>) -> http::Request<B> {
    let unusable = request.headers().get(&REQUEST_ID_HEADER).is_some_and(|v| {
        let b = v.as_bytes();
        b.is_empty() || b.len() > 128 || !b.iter().all(|c| c.is_ascii_graphic())
    });
    if unusable {
        request.headers_mut().remove(&REQUEST_ID_HEADER);
    }
    request
}

/// The id of a request: the one the request-id layer set, if it is short and printable;
/// otherwise a fresh one.
pub(crate) fn request_id_of<B>(request: &http::Request<B>) -> String {
    let given = request
        .extensions()
        .get::<RequestId>()
        .and_then(|id| id.header_value().to_str().ok())
        .filter(|s| !s.is_empty() && s.len() <= 128);
    match given {
        Some(id) => id.to_owned(),
        None => {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            format!("req_{:016x}", mix(n ^ 0x5357_4954))
        }
    }
}
