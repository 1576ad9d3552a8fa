//! Classifying transport failures and HTTP error answers.

use std::error::Error as StdError;
use std::time::{Duration, SystemTime};

use bytes::{Bytes, BytesMut};
use reqwest::header::HeaderMap;
use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase, classify_http_answer};

/// The most bytes of an error answer's body that are read.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Classifies a transport failure of `reqwest` (no HTTP answer, or a body that broke off):
/// refused vs DNS vs TLS vs connect timeout vs other connect failures vs a broken body.
/// `target` (for example the URL) is prefixed to the message.
pub fn classify_transport_error(err: &reqwest::Error, target: &str) -> ProviderError {
    let chain = error_chain_text(err);
    let lower = chain.to_ascii_lowercase();
    let refused = source_io_kind(err) == Some(std::io::ErrorKind::ConnectionRefused)
        || lower.contains("connection refused");
    let kind = if err.is_timeout() && (err.is_connect() || lower.contains("connect")) {
        ErrorKind::Timeout(TimeoutPhase::Connect)
    } else if refused {
        ErrorKind::ConnectRefused
    } else if lower.contains("dns error")
        || lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
    {
        ErrorKind::Dns
    } else if lower.contains("certificate")
        || lower.contains("tls")
        || lower.contains("handshake")
        || lower.contains("invalidcontenttype")
        || lower.contains("corrupt message")
        || lower.contains("peer sent no certificates")
    {
        ErrorKind::Tls
    } else if err.is_connect() {
        ErrorKind::Connect
    } else if err.is_timeout() {
        ErrorKind::Timeout(TimeoutPhase::Total)
    } else if err.is_body() || err.is_decode() {
        ErrorKind::StreamEndedEarly
    } else {
        ErrorKind::Upstream
    };
    ProviderError::new(kind, format!("{target}: {chain}"))
}

fn source_io_kind(err: &(dyn StdError + 'static)) -> Option<std::io::ErrorKind> {
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io.kind());
        }
        current = e.source();
    }
    None
}

fn error_chain_text(err: &(dyn StdError + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut current: Option<&(dyn StdError + 'static)> = Some(err);
    while let Some(e) = current {
        let text = e.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        current = e.source();
        if parts.len() > 8 {
            break;
        }
    }
    parts.join(": ")
}

/// The headers of an answer as `(name, value)` pairs for core's classification (values
/// that are not visible ASCII are left out).
fn header_pairs(headers: &HeaderMap) -> Vec<(&str, &str)> {
    headers
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect()
}

/// Reads the retry hint of an answer: `retry-after-ms` (milliseconds, sent by some
/// OpenAI-compatible APIs) when present, else `retry-after` as delay seconds or an HTTP date
/// (a date in the past gives zero). The parsing is core's [`switchyard_core::retry_hint`].
pub fn retry_after_from_headers(headers: &HeaderMap) -> Option<Duration> {
    switchyard_core::retry_hint(&header_pairs(headers), SystemTime::now())
}

/// Reads at most `max` bytes of a body; the rest is left unread.
pub async fn read_body_bounded(
    response: &mut reqwest::Response,
    max: usize,
) -> Result<Bytes, reqwest::Error> {
    let mut buf = BytesMut::new();
    while let Some(chunk) = response.chunk().await? {
        let room = max.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if buf.len() >= max {
            break;
        }
    }
    Ok(buf.freeze())
}

/// Turns a non-success HTTP answer into a classified error: status, the upstream's own
/// message and code, `retry-after`, and any `x-ratelimit-*` headers (kept in the message);
/// the classification is core's [`classify_http_answer`], this reads the answer.
/// The body is read for at most [`ERROR_BODY_TIMEOUT`]; see [`error_from_response_within`].
pub async fn error_from_response(response: reqwest::Response, target: &str) -> ProviderError {
    error_from_response_within(response, target, ERROR_BODY_TIMEOUT).await
}

/// How long [`error_from_response`] waits for an error answer's body.
pub const ERROR_BODY_TIMEOUT: Duration = Duration::from_secs(10);

/// Like [`error_from_response`], waiting at most `limit` for the body (at most 64 KiB of it
/// is read). A body that does not arrive in time or breaks off leaves the error classified
/// by its status alone.
pub async fn error_from_response_within(
    mut response: reqwest::Response,
    target: &str,
    limit: Duration,
) -> ProviderError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = tokio::time::timeout(limit, read_body_bounded(&mut response, MAX_ERROR_BODY))
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    classified_answer(status, &headers, &body, target)
}

/// [`error_from_response_within`] for an answer of the direct client.
pub(crate) async fn error_from_direct(
    status: u16,
    headers: &HeaderMap,
    mut body: crate::direct::DirectBody,
    target: &str,
    limit: Duration,
) -> ProviderError {
    use futures::StreamExt as _;
    let read = async {
        let mut buf = BytesMut::new();
        while let Some(Ok(chunk)) = body.next().await {
            let room = MAX_ERROR_BODY.saturating_sub(buf.len());
            buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
            if buf.len() >= MAX_ERROR_BODY {
                break;
            }
        }
        buf.freeze()
    };
    let body = tokio::time::timeout(limit, read).await.unwrap_or_default();
    classified_answer(status, headers, &body, target)
}

fn classified_answer(status: u16, headers: &HeaderMap, body: &[u8], target: &str) -> ProviderError {
    let err = classify_http_answer(status, body, &header_pairs(headers), SystemTime::now());
    err.context(format_args!("{target} answered HTTP {status}"))
}
