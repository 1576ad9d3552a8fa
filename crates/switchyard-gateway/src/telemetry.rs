//! The gateway's own metrics (facade calls only; the binary installs the exporter) and
//! request ids.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use http::{HeaderName, HeaderValue, StatusCode};
use metrics::{Counter, Histogram};
use switchyard_router::metrics::CachedHandle;
use tower_http::request_id::RequestId;

use crate::api::Api;

/// Histogram: the gateway's own time before a routed answer's headers went out (time to
/// the headers minus the time spent waiting on upstreams), in seconds, by `api`: the figure
/// of `x-switchyard-overhead-ms`, recorded once per answer (chats, Responses, embeddings,
/// text completion; whole or streamed) when the headers are written. A stream's later time
/// (upstream, client reading) is not in it; its per-chunk cost is what `cargo xtask bench`
/// measures as CPU per chunk.
pub const GATEWAY_OVERHEAD_SECONDS: &str = "switchyard_gateway_overhead_seconds";
/// Counter: HTTP requests answered, by `api` (`openai`, `ollama`, `ops`) and `status`.
pub const HTTP_REQUESTS_TOTAL: &str = "switchyard_http_requests_total";
/// Counter: response store operations that failed, by `op` (`put`, `get`, `delete`) and
/// `reason` (`response_store_unreachable`, `response_store_error`, `response_too_large`).
pub const RESPONSE_STORE_ERRORS_TOTAL: &str = "switchyard_response_store_errors_total";

/// The request id header, taken from the client when it sends one, echoed on every answer.
pub const REQUEST_ID_HEADER: HeaderName = HeaderName::from_static("x-switchyard-request-id");
/// The request id again, under the names the SDKs read it from: `x-request-id`
/// (openai-python and openai-node: `response._request_id`) and `request-id` (Anthropic's
/// SDKs). Both go out on every answer that carries [`REQUEST_ID_HEADER`], with its value
/// (the same `HeaderValue`, not a copy), each unless the answer already has one.
pub(crate) const REQUEST_ID_ALIASES: [HeaderName; 2] = [
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("request-id"),
];

/// The `api` label of `switchyard_http_requests_total` for a request to `path`.
pub(crate) fn api_label(path: &str) -> &'static str {
    if path.starts_with("/v1/messages") {
        Api::Anthropic.label()
    } else if path.starts_with("/v1/") {
        Api::OpenAi.label()
    } else if path.starts_with("/api/") || path == "/" {
        Api::Ollama.label()
    } else {
        "ops"
    }
}

/// `switchyard_http_requests_total` with status 200, per `api` label (the common case,
/// kept as handles).
static ANSWERED_OK: [CachedHandle<Counter>; 4] = [const { CachedHandle::new() }; 4];
/// `switchyard_gateway_overhead_seconds` per [`Api`].
static OVERHEAD: [CachedHandle<Histogram>; 3] = [const { CachedHandle::new() }; 3];

/// Records `switchyard_http_requests_total` for one answer (done for every request by
/// [`crate::front::Front`]).
pub(crate) fn count_http_request(api: &'static str, status: StatusCode) {
    let ok_slot = (status == StatusCode::OK).then_some(match api {
        "openai" => 0,
        "ollama" => 1,
        "anthropic" => 2,
        _ => 3,
    });
    let counter =
        || metrics::counter!(HTTP_REQUESTS_TOTAL, "api" => api, "status" => status_label(status));
    match ok_slot {
        Some(i) => ANSWERED_OK[i].get(counter).increment(1),
        None => counter().increment(1),
    }
}

/// Records the gateway's overhead for one routed answer (see [`GATEWAY_OVERHEAD_SECONDS`];
/// called by `chat::routing_headers` only).
pub(crate) fn record_overhead(api: Api, overhead: Duration) {
    let slot = match api {
        Api::OpenAi => 0,
        Api::Ollama => 1,
        Api::Anthropic => 2,
    };
    OVERHEAD[slot]
        .get(|| metrics::histogram!(GATEWAY_OVERHEAD_SECONDS, "api" => api.label()))
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
pub(crate) struct RequestIds {
    seed: u64,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

impl Default for RequestIds {
    fn default() -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Self {
            seed: now ^ (u64::from(std::process::id()) << 32),
        }
    }
}

impl RequestIds {
    /// A fresh id.
    fn next(&self) -> HeaderValue {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let id = request_id_bytes(mix(self.seed.wrapping_add(n)));
        // 20 bytes of `req_` and hex digits: always a valid header value. Owned by a
        // reference-counted `Bytes` from the start, so the clones the request's extension
        // and the answer's head take allocate nothing (a copied slice allocates once more
        // on its first clone).
        HeaderValue::from_maybe_shared(bytes::Bytes::from_owner(id))
            .unwrap_or_else(|_| HeaderValue::from_static("req_"))
    }

    /// Gives `request` its id: the client's `x-switchyard-request-id` when it is usable
    /// (1 to 128 printable ASCII bytes; ids end up in logs and headers), a fresh one
    /// otherwise. The id goes into the request's extensions (as tower-http's
    /// [`RequestId`], for [`request_id_of`]), not into its header map: the handlers read
    /// the extension, and the answer's header comes from the returned value.
    pub(crate) fn assign<B>(&self, request: &mut http::Request<B>) -> HeaderValue {
        let given = request.headers().get(&REQUEST_ID_HEADER).filter(|v| {
            let b = v.as_bytes();
            !b.is_empty() && b.len() <= 128 && b.iter().all(u8::is_ascii_graphic)
        });
        let id = match given {
            Some(id) => id.clone(),
            None => self.next(),
        };
        request.extensions_mut().insert(RequestId::new(id.clone()));
        id
    }
}

/// `req_` + `value` as 16 lowercase hex digits, without going through `fmt`.
fn request_id_bytes(value: u64) -> [u8; 20] {
    let mut id = *b"req_0000000000000000";
    write_hex(&mut id[4..], value);
    id
}

/// Fills `out` with the low `4 * out.len()` bits of `value` as lowercase hex digits, the
/// most significant first (ids without going through `fmt`).
pub(crate) fn write_hex(out: &mut [u8], value: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let last = out.len().saturating_sub(1);
    for (i, digit) in out.iter_mut().enumerate() {
        let shift = 4 * (last - i);
        *digit = HEX[value.checked_shr(shift as u32).unwrap_or(0) as usize & 0xf];
    }
}

/// `duration` in milliseconds with three decimals (`12.345`, rounded to the nearest
/// microsecond), as a header value, without float formatting.
pub(crate) fn millis_header(duration: Duration) -> HeaderValue {
    let micros = (duration.as_nanos() + 500) / 1000;
    let (whole, frac) = (micros / 1000, micros % 1000);
    let mut buf = [0u8; 48];
    let mut at = buf.len();
    for digit in [frac % 10, frac / 10 % 10, frac / 100] {
        at -= 1;
        buf[at] = b'0' + digit as u8;
    }
    at -= 1;
    buf[at] = b'.';
    let mut rest = whole;
    loop {
        at -= 1;
        buf[at] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    HeaderValue::from_bytes(&buf[at..]).unwrap_or(HeaderValue::from_static("0.000"))
}

/// SplitMix64's finaliser.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
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
            let id = request_id_bytes(mix(n ^ 0x5357_4954));
            String::from_utf8_lossy(&id).into_owned()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_req_and_16_hex_digits() {
        let id = request_id_bytes(0x0123_4567_89ab_cdef);
        assert_eq!(&id, b"req_0123456789abcdef");
        assert_eq!(
            String::from_utf8_lossy(&request_id_bytes(u64::MAX)),
            format!("req_{:016x}", u64::MAX)
        );
        assert_eq!(&request_id_bytes(0), b"req_0000000000000000");
    }

    #[test]
    fn millis_header_has_three_decimals() {
        assert_eq!(millis_header(Duration::ZERO), "0.000");
        assert_eq!(millis_header(Duration::from_micros(1_234)), "1.234");
        assert_eq!(millis_header(Duration::from_nanos(12_345_600)), "12.346");
        assert_eq!(millis_header(Duration::from_nanos(499)), "0.000");
        assert_eq!(millis_header(Duration::from_secs(3)), "3000.000");
    }
}
