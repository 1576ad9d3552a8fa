//! The `Host` header rule of RFC 9112 3.2, for the requests the gateway's own server reads:
//! an HTTP/1.1 request without a `Host`, and any request with more than one or with one
//! that is not `host[:port]`, is answered `400` and the connection closes. A `Host` that is
//! not a host also answers DNS rebinding's odd names with an error instead of a model.
//!
//! The HTTP/1.1 fast path serves only requests with one valid `Host`
//! ([`HostCheck::fits`]) and hands the rest to hyper, whose service refuses them
//! ([`refusal`]): one answer, whichever path read the request. HTTP/2 carries the
//! authority in its `:authority` pseudo-header and is not checked here. An embedder's own
//! server in front of [`crate::Gateway::app`] applies its own rules.

use axum::body::Body;
use axum::response::IntoResponse as _;
use http::header::{CONNECTION, HOST};
use http::{HeaderValue, Request, Response, Version};

use crate::api::{Api, ApiError};

/// What the `Host` header lines of one request say, counted as they are read.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct HostCheck {
    lines: u8,
    invalid: bool,
}

/// Why a request's `Host` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostProblem {
    /// An HTTP/1.1 request without one.
    Missing,
    /// More than one `Host` line.
    Repeated,
    /// A value that is not `host[:port]`.
    Invalid,
}

impl HostProblem {
    fn message(self) -> &'static str {
        match self {
            HostProblem::Missing => "the request has no Host header (HTTP/1.1 requires one)",
            HostProblem::Repeated => "the request has more than one Host header",
            HostProblem::Invalid => "the request's Host header is not a host[:port]",
        }
    }
}

impl HostCheck {
    /// Counts one `Host` line with `value`.
    pub(crate) fn line(&mut self, value: &[u8]) {
        self.lines = self.lines.saturating_add(1);
        self.invalid |= !valid_host(value);
    }

    /// The problem of a request of `version` with the lines counted, if any.
    pub(crate) fn problem(self, version: Version) -> Option<HostProblem> {
        match self.lines {
            0 if version == Version::HTTP_11 => Some(HostProblem::Missing),
            0 => None,
            1 if self.invalid => Some(HostProblem::Invalid),
            1 => None,
            _ => Some(HostProblem::Repeated),
        }
    }

    /// Whether an HTTP/1.1 request with the lines counted passes.
    pub(crate) fn fits(self) -> bool {
        self.problem(Version::HTTP_11).is_none()
    }
}

/// The `400` for a request whose `Host` breaks the rule, in the shape of the API its path
/// names (the connection closes after it); `None` for a request that keeps it.
pub(crate) fn refusal<B>(request: &Request<B>) -> Option<Response<Body>> {
    let version = request.version();
    if version != Version::HTTP_11 && version != Version::HTTP_10 {
        return None;
    }
    let mut check = HostCheck::default();
    for value in request.headers().get_all(HOST) {
        check.line(value.as_bytes());
    }
    let problem = check.problem(version)?;
    let api = Api::for_request(request.uri().path(), request.headers());
    let mut response = ApiError::invalid(api, problem.message()).into_response();
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    Some(response)
}

/// Whether `value` is `uri-host [ ":" port ]` (RFC 9110 7.2), or empty (allowed for a
/// target without an authority). The host is a bracketed IP literal or a reg-name /
/// IPv4 address: unreserved, percent-encoded and sub-delims characters.
fn valid_host(value: &[u8]) -> bool {
    let (host, port) = if let Some(literal) = value.strip_prefix(b"[") {
        let Some(end) = literal.iter().position(|b| *b == b']') else {
            return false;
        };
        let inside = &literal[..end];
        if inside.is_empty()
            || !inside
                .iter()
                .all(|b| b":.%".contains(b) || is_unreserved(*b))
        {
            return false;
        }
        match &literal[end + 1..] {
            [] => (&[][..], None),
            [b':', port @ ..] => (&[][..], Some(port)),
            _ => return false,
        }
    } else {
        match value.iter().position(|b| *b == b':') {
            Some(colon) => (&value[..colon], Some(&value[colon + 1..])),
            None => (value, None),
        }
    };
    let host_ok = host
        .iter()
        .all(|b| is_unreserved(*b) || *b == b'%' || b"!$&'()*+,;=".contains(b));
    let port_ok = port.is_none_or(|p| p.len() <= 5 && p.iter().all(u8::is_ascii_digit));
    host_ok && port_ok
}

/// RFC 3986's unreserved characters.
fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~".contains(&b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_that_are_hosts_pass() {
        for ok in [
            &b""[..],
            b"gw",
            b"127.0.0.1",
            b"127.0.0.1:11434",
            b"localhost:8080",
            b"[::1]",
            b"[::1]:4000",
            b"[fe80::1%25eth0]:80",
            b"my-box.lan",
            b"xn--bcher-kva.example",
            b"a%20b",
        ] {
            assert!(valid_host(ok), "{}", String::from_utf8_lossy(ok));
        }
    }

    #[test]
    fn values_that_are_not_hosts_fail() {
        for bad in [
            &b"a b"[..],
            b"gw/x",
            b"user@gw",
            b"gw:80:81",
            b"gw:port",
            b"gw:123456",
            b"[::1",
            b"[]",
            b"[::1]x",
            b"gw?q",
            b"gw#f",
            b"\"gw\"",
        ] {
            assert!(!valid_host(bad), "{}", String::from_utf8_lossy(bad));
        }
    }

    #[test]
    fn the_count_and_the_version_decide() {
        let mut check = HostCheck::default();
        assert_eq!(check.problem(Version::HTTP_11), Some(HostProblem::Missing));
        assert_eq!(check.problem(Version::HTTP_10), None);
        check.line(b"gw");
        assert!(check.fits());
        check.line(b"gw");
        assert_eq!(check.problem(Version::HTTP_10), Some(HostProblem::Repeated));
        let mut bad = HostCheck::default();
        bad.line(b"a b");
        assert_eq!(bad.problem(Version::HTTP_11), Some(HostProblem::Invalid));
    }

    #[test]
    fn a_refusal_is_a_400_in_the_apis_shape_that_closes() {
        let request = Request::builder().uri("/api/chat").body(()).unwrap();
        let response = refusal(&request).unwrap();
        assert_eq!(response.status(), 400);
        assert_eq!(response.headers()[CONNECTION], "close");
        let ok = Request::builder()
            .uri("/api/chat")
            .header(HOST, "gw")
            .body(())
            .unwrap();
        assert!(refusal(&ok).is_none());
    }
}
