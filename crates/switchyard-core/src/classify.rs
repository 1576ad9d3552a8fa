//! Turning an upstream's HTTP error answer into a classified [`ProviderError`].
//!
//! Both API families are understood: Ollama's `{"error": "message"}` and OpenAI's
//! `{"error": {"message", "type", "code", "param"}}` (with `code` a string, or an integer
//! on vLLM and llama.cpp). Unknown bodies (an HTML page from a proxy) are kept as text.
//! The retry hint (`retry-after-ms`, `retry-after` as seconds or an HTTP date) and the
//! `x-ratelimit-*` headers of an answer are read here too; the HTTP clients only hand in
//! the headers and the current time.

use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde_json::Value;

use crate::error::{ErrorKind, ProviderError};

/// The longest piece of a non-JSON error body kept in a message.
const MAX_BODY_IN_MESSAGE: usize = 512;

/// What an error body said, in either API's shape.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ErrorBody {
    /// The human-readable message.
    pub message: String,
    /// OpenAI's `type`.
    pub error_type: Option<String>,
    /// OpenAI's `code`, as a string (integers are rendered).
    pub code: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    error: Value,
}

impl ErrorBody {
    /// Parses an error body; a body that is not one of the two JSON shapes becomes the
    /// message itself (trimmed and cut to a bounded length).
    pub fn parse(body: &[u8]) -> Self {
        if let Ok(Envelope { error }) = serde_json::from_slice::<Envelope>(body) {
            match error {
                Value::String(message) => {
                    return ErrorBody {
                        message,
                        ..Self::default()
                    };
                }
                Value::Object(map) => {
                    let text = |v: Option<&Value>| match v {
                        Some(Value::String(s)) => Some(s.clone()),
                        Some(Value::Number(n)) => Some(n.to_string()),
                        _ => None,
                    };
                    return ErrorBody {
                        message: text(map.get("message")).unwrap_or_default(),
                        error_type: text(map.get("type")),
                        code: text(map.get("code")),
                    };
                }
                _ => {}
            }
        }
        let text = String::from_utf8_lossy(body);
        let text = text.trim();
        let mut cut = text.len().min(MAX_BODY_IN_MESSAGE);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        ErrorBody {
            message: text[..cut].to_owned(),
            ..Self::default()
        }
    }
}

fn mentions_context_overflow(message: &str, code: Option<&str>) -> bool {
    if code == Some("context_length_exceeded") {
        return true;
    }
    let m = message.to_ascii_lowercase();
    m.contains("context length")
        || m.contains("context_length_exceeded")
        || m.contains("maximum context")
        || m.contains("context window")
        || m.contains("exceeds the available context")
        || m.contains("too many tokens")
}

fn mentions_missing_model(message: &str, code: Option<&str>) -> bool {
    if matches!(code, Some("model_not_found")) {
        return true;
    }
    let m = message.to_ascii_lowercase();
    m.contains("model") && (m.contains("not found") || m.contains("does not exist"))
}

/// Classifies an HTTP error status and body (and an optional `retry-after` header value)
/// into a [`ProviderError`] that keeps the upstream's message and code.
///
/// ```
/// use switchyard_core::{classify_http_error, ErrorKind};
/// let e = classify_http_error(404, br#"{"error":"model \"x\" not found, try pulling it first"}"#, None);
/// assert_eq!(e.kind(), ErrorKind::ModelNotFound);
/// assert_eq!(e.reason_code(), "model_not_found");
/// ```
pub fn classify_http_error(status: u16, body: &[u8], retry_after: Option<&str>) -> ProviderError {
    let parsed = ErrorBody::parse(body);
    let code = parsed.code.as_deref().or(parsed.error_type.as_deref());
    let message = &parsed.message;
    let kind = match status {
        400 | 413 | 422 if mentions_context_overflow(message, code) => ErrorKind::ContextOverflow,
        400 | 404 if mentions_missing_model(message, code) => ErrorKind::ModelNotFound,
        401 | 403 => ErrorKind::Auth,
        404 => ErrorKind::EndpointNotFound,
        408 => ErrorKind::Overloaded,
        429 if matches!(code, Some("insufficient_quota")) => ErrorKind::QuotaExhausted,
        429 => ErrorKind::RateLimited,
        503 | 529 => ErrorKind::Overloaded,
        500..=599 => ErrorKind::Upstream,
        400..=499 => ErrorKind::InvalidRequest,
        _ => ErrorKind::Upstream,
    };
    let text = if message.is_empty() {
        format!("upstream answered HTTP {status} with no message")
    } else {
        message.clone()
    };
    let mut err = ProviderError::new(kind, text).with_status(status);
    if let Some(c) = parsed.code.or(parsed.error_type) {
        err = err.with_upstream_code(c);
    }
    if let Some(after) = retry_after.and_then(parse_retry_after) {
        err = err.with_retry_after(after);
    }
    err
}

/// Classifies an `{"error": ...}` object that arrived inside an otherwise successful
/// stream (Ollama NDJSON line or OpenAI SSE event). There is no status, so the message
/// and code decide; the default is [`ErrorKind::Upstream`].
pub fn classify_stream_error(body: &ErrorBody) -> ProviderError {
    let code = body.code.as_deref().or(body.error_type.as_deref());
    let kind = if mentions_context_overflow(&body.message, code) {
        ErrorKind::ContextOverflow
    } else if mentions_missing_model(&body.message, code) {
        ErrorKind::ModelNotFound
    } else if matches!(code, Some("rate_limit_exceeded")) {
        ErrorKind::RateLimited
    } else if matches!(code, Some("insufficient_quota")) {
        ErrorKind::QuotaExhausted
    } else if matches!(code, Some("overloaded_error" | "server_overloaded")) {
        ErrorKind::Overloaded
    } else {
        ErrorKind::Upstream
    };
    let mut err = ProviderError::new(kind, body.message.clone());
    if let Some(c) = body.code.clone().or_else(|| body.error_type.clone()) {
        err = err.with_upstream_code(c);
    }
    err
}

/// Parses a `retry-after` value given in seconds (`"12"`, `"1.5"`). HTTP-date values need
/// the current time: see [`parse_retry_after_at`]; here they yield `None`.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let v = value.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0 && *s < 1e9)
        .map(Duration::from_secs_f64)
}

/// Parses a `retry-after-ms` value (milliseconds, sent by some OpenAI-compatible APIs);
/// negative, non-finite and absurdly large values yield `None`.
pub fn parse_retry_after_ms(value: &str) -> Option<Duration> {
    let ms = value.trim().parse::<f64>().ok()?;
    (ms.is_finite() && (0.0..1e12).contains(&ms)).then(|| Duration::from_secs_f64(ms / 1000.0))
}

/// Parses a `retry-after` value as delay seconds ([`parse_retry_after`]) or as an HTTP date
/// measured from `now` (a date in the past gives zero).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// use switchyard_core::parse_retry_after_at;
///
/// // 2015-10-21T07:28:00Z, 30 seconds before the date named.
/// let now = UNIX_EPOCH + Duration::from_secs(1_445_412_450);
/// let d = parse_retry_after_at("Wed, 21 Oct 2015 07:28:00 GMT", now);
/// assert_eq!(d, Some(Duration::from_secs(30)));
/// ```
pub fn parse_retry_after_at(value: &str, now: SystemTime) -> Option<Duration> {
    if let Some(delay) = parse_retry_after(value) {
        return Some(delay);
    }
    let at = httpdate::parse_http_date(value.trim()).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The value of the first header named `name` (ASCII case ignored).
fn header<'h>(headers: &[(&str, &'h str)], name: &str) -> Option<&'h str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| *v)
}

/// The retry hint of an answer's headers (`(name, value)` pairs, names in any case): `retry-after-ms` when it
/// holds a usable number, else `retry-after` as delay seconds or an HTTP date measured from
/// `now`.
pub fn retry_hint(headers: &[(&str, &str)], now: SystemTime) -> Option<Duration> {
    header(headers, "retry-after-ms")
        .and_then(parse_retry_after_ms)
        .or_else(|| header(headers, "retry-after").and_then(|v| parse_retry_after_at(v, now)))
}

/// Classifies a whole HTTP error answer: its status and body ([`classify_http_error`]), the
/// retry hint of its headers ([`retry_hint`], relative to `now`), and its `x-ratelimit-*`
/// headers, kept sorted in the message as `[name=value, ...]`.
///
/// ```
/// use std::time::SystemTime;
/// use switchyard_core::{classify_http_answer, ErrorKind};
///
/// let headers = [("retry-after-ms", "250"), ("x-ratelimit-remaining-requests", "0")];
/// let e = classify_http_answer(429, b"{}", &headers, SystemTime::now());
/// assert_eq!(e.kind(), ErrorKind::RateLimited);
/// assert_eq!(e.retry_after(), Some(std::time::Duration::from_millis(250)));
/// assert!(e.to_string().contains("[x-ratelimit-remaining-requests=0]"));
/// ```
pub fn classify_http_answer(
    status: u16,
    body: &[u8],
    headers: &[(&str, &str)],
    now: SystemTime,
) -> ProviderError {
    let mut err = classify_http_error(status, body, None);
    if let Some(after) = retry_hint(headers, now) {
        err = err.with_retry_after(after);
    }
    let mut limits: Vec<String> = headers
        .iter()
        .filter(|(name, _)| {
            name.get(..12)
                .is_some_and(|p| p.eq_ignore_ascii_case("x-ratelimit-"))
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    limits.sort();
    if limits.is_empty() {
        err
    } else {
        err.context(format_args!("[{}]", limits.join(", ")))
    }
}
