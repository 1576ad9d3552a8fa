//! Request header names that clients send and the `http` crate does not know.
//!
//! `HeaderName::from_bytes` recognises the standard names without allocating, but gives
//! every other name an allocation of its own. The SDKs and agents send a dozen such names
//! on every request (`anthropic-version`, `x-api-key`, the `x-stainless-*` family, Codex's
//! `originator` and `session_id`, ...): each is looked up here first, in any case, and
//! shares a static name instead.

use http::HeaderName;

use crate::chat::{PRIVACY_HEADER, TASK_HEADER};
use crate::telemetry::REQUEST_ID_HEADER;

/// Names the official SDKs, Claude Code, Codex and Switchyard's own clients send, in
/// lowercase, by their first letter (the standard names `http` knows by itself mostly
/// start with other letters, and the few that do not are told apart by length at once).
static KNOWN_A: [HeaderName; 3] = [
    HeaderName::from_static("anthropic-beta"),
    HeaderName::from_static("anthropic-dangerous-direct-browser-access"),
    HeaderName::from_static("anthropic-version"),
];
static KNOWN_C: [HeaderName; 2] = [
    HeaderName::from_static("chatgpt-account-id"),
    HeaderName::from_static("conversation_id"),
];
static KNOWN_H: [HeaderName; 1] = [HeaderName::from_static("http-referer")];
static KNOWN_O: [HeaderName; 4] = [
    HeaderName::from_static("openai-beta"),
    HeaderName::from_static("openai-organization"),
    HeaderName::from_static("openai-project"),
    HeaderName::from_static("originator"),
];
static KNOWN_S: [HeaderName; 1] = [HeaderName::from_static("session_id")];
static KNOWN_X: [HeaderName; 19] = [
    HeaderName::from_static("x-api-key"),
    HeaderName::from_static("x-app"),
    HeaderName::from_static("x-request-id"),
    HeaderName::from_static("x-stainless-arch"),
    HeaderName::from_static("x-stainless-async"),
    HeaderName::from_static("x-stainless-helper-method"),
    HeaderName::from_static("x-stainless-lang"),
    HeaderName::from_static("x-stainless-os"),
    HeaderName::from_static("x-stainless-package-version"),
    HeaderName::from_static("x-stainless-poll-helper"),
    HeaderName::from_static("x-stainless-read-timeout"),
    HeaderName::from_static("x-stainless-retry-count"),
    HeaderName::from_static("x-stainless-runtime"),
    HeaderName::from_static("x-stainless-runtime-version"),
    HeaderName::from_static("x-stainless-timeout"),
    PRIVACY_HEADER,
    REQUEST_ID_HEADER,
    TASK_HEADER,
    HeaderName::from_static("x-title"),
];

/// The known names starting with `first` (any case).
fn known_starting_with(first: u8) -> &'static [HeaderName] {
    match first.to_ascii_lowercase() {
        b'a' => &KNOWN_A,
        b'c' => &KNOWN_C,
        b'h' => &KNOWN_H,
        b'o' => &KNOWN_O,
        b's' => &KNOWN_S,
        b'x' => &KNOWN_X,
        _ => &[],
    }
}

/// The header name `bytes` spells (any case), as `HeaderName::from_bytes` reads it: a
/// shared static one for the known names, `None` when it is not a valid name.
pub(crate) fn header_name(bytes: &[u8]) -> Option<HeaderName> {
    let known = bytes.first().map_or(&[][..], |&b| known_starting_with(b));
    if let Some(name) = known.iter().find(|k| {
        let k = k.as_str().as_bytes();
        k.len() == bytes.len() && k.eq_ignore_ascii_case(bytes)
    }) {
        return Some(name.clone());
    }
    HeaderName::from_bytes(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_names_are_the_ones_http_would_make_in_any_case() {
        let all: Vec<&HeaderName> = [
            &KNOWN_A[..],
            &KNOWN_C,
            &KNOWN_H,
            &KNOWN_O,
            &KNOWN_S,
            &KNOWN_X,
        ]
        .into_iter()
        .flatten()
        .collect();
        for known in all.iter().copied() {
            assert!(known_starting_with(known.as_str().as_bytes()[0]).contains(known));
            let name = known.as_str();
            assert_eq!(
                HeaderName::from_bytes(name.as_bytes()).ok().as_ref(),
                Some(known)
            );
            assert_eq!(header_name(name.as_bytes()).as_ref(), Some(known), "{name}");
            let upper = name.to_ascii_uppercase();
            assert_eq!(
                header_name(upper.as_bytes()).as_ref(),
                Some(known),
                "{upper}"
            );
        }
        let mut names: Vec<&str> = all.iter().map(|n| n.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), all.len(), "no name twice");
    }

    #[test]
    fn other_names_are_read_as_http_reads_them() {
        for name in [
            "content-type",
            "Authorization",
            "accept",
            "host",
            "x-custom-thing",
            "X-Stainless-Other",
            "origin",
            "a",
        ] {
            assert_eq!(
                header_name(name.as_bytes()),
                HeaderName::from_bytes(name.as_bytes()).ok(),
                "{name}"
            );
        }
        for bad in [&b""[..], b"bad name", b"x-api-key:", b"\xff"] {
            assert_eq!(header_name(bad), None, "{bad:?}");
        }
    }
}
