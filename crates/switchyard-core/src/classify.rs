//! Turning an upstream's HTTP error answer into a classified [`ProviderError`].
//!
//! Both API families are understood: Ollama's `{"error": "message"}` and OpenAI's
//! `{"error": {"message", "type", "code", "param"}}` (with `code` a string, or an integer
//! on vLLM and llama.cpp). Unknown bodies (an HTML page from a proxy) are kept as text.

use std::time::Duration;

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

/// Parses a `retry-after` value given in seconds (`"12"`, `"1.5"`). HTTP-date values are
/// handled by the HTTP clients, which know the current time; here they yield `None`.
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
