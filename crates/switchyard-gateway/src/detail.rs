//! Who may see upstream details: error messages name upstream URLs, provider ids and
//! attempts, and `/readyz` lists every provider's state. Admin keys and loopback callers
//! (unless [`crate::GatewayConfig::loopback_is_admin`] is off) see them; every other caller
//! gets the reason code with a generic message, and `/readyz` only says whether the gateway
//! is ready. The full message still reaches the gateway's log.
//!
//! The front layer decides once per request and keeps the answer in a task-local for the
//! handler (errors answered before the first byte); a streamed body takes it along for
//! errors after the first byte.

use std::future::Future;
use std::net::SocketAddr;

use axum::extract::Request;
use switchyard_core::{ErrorKind, ProviderError};

use crate::auth;
use crate::gateway::Shared;

tokio::task_local! {
    static DETAILED: bool;
}

/// The peer address of a request's connection (set by the accept loop, through
/// [`mark_peer`], for peers that are not on loopback).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer(pub(crate) SocketAddr);

/// Gives `request` its connection's `peer` when [`decide`] needs it: a peer that is not on
/// loopback. A request without one counts as local, so a loopback client (the usual one:
/// an agent on the same host) costs no extension (an allocation, a hashed insert and the
/// drop: about 250 instructions per request).
pub(crate) fn mark_peer<B>(request: &mut http::Request<B>, peer: SocketAddr) {
    if !peer.ip().to_canonical().is_loopback() {
        request.extensions_mut().insert(Peer(peer));
    }
}

/// Whether `request`'s caller may see upstream details: an admin key (sent as
/// authentication takes it, Bearer or `x-api-key`), or a loopback peer while
/// `loopback_is_admin` is on.
pub(crate) fn decide(shared: &Shared, request: &Request) -> bool {
    let settings = shared.settings.load();
    // A request that did not come through the accept loop (an embedder calling
    // `Gateway::app` directly) counts as local.
    let loopback = request
        .extensions()
        .get::<Peer>()
        .is_none_or(|p| p.0.ip().to_canonical().is_loopback());
    // The key is looked up only when it could change the answer (two header look-ups).
    (loopback && settings.config.loopback_is_admin)
        || (!settings.keys.is_empty()
            && auth::presented_key(&settings.keys, request.headers()).is_some_and(|k| k.admin))
}

/// Runs `call` (a handler's call) and then `future` (its answer) with `detailed` in
/// effect for [`detailed`].
pub(crate) fn scoped<F: Future>(
    detailed: bool,
    call: impl FnOnce() -> F,
) -> tokio::task::futures::TaskLocalFuture<bool, F> {
    let future = DETAILED.sync_scope(detailed, call);
    DETAILED.scope(detailed, future)
}

/// Whether the current request's caller may see upstream details (true outside a request).
pub(crate) fn detailed() -> bool {
    DETAILED.try_with(|d| *d).unwrap_or(true)
}

/// Kinds whose messages are the caller's own business (what was wrong with the request,
/// which models exist, which limit was hit): shown to everyone, with URLs masked.
fn about_the_request(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::InvalidRequest
            | ErrorKind::ModelNotFound
            | ErrorKind::RateLimited
            | ErrorKind::QueueFull
            | ErrorKind::QuotaExhausted
            | ErrorKind::BudgetExhausted
    )
}

/// `err` as the caller may see it: whole when `detailed`; otherwise the reason code with a
/// generic message (upstream failures, policy refusals naming targets), or the message with
/// every URL masked (mistakes in the request).
pub(crate) fn shown(err: &ProviderError, detailed: bool) -> Option<ProviderError> {
    if detailed {
        return None;
    }
    let code = err.reason_code();
    let message = if about_the_request(err.kind()) {
        mask_urls(err.message())
    } else {
        format!(
            "{code}: the request could not be served; the gateway's log has the details \
             (ask its operator with the x-switchyard-request-id of this answer)"
        )
    };
    let mut shown = ProviderError::new(err.kind(), message);
    if let Some(after) = err.retry_after() {
        shown = shown.with_retry_after(after);
    }
    Some(shown)
}

/// `text` with every `http://` or `https://` URL replaced by `<upstream>`.
fn mask_urls(text: &str) -> String {
    let next_url = |t: &str| {
        ["http://", "https://"]
            .iter()
            .filter_map(|p| t.find(p))
            .min()
    };
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = next_url(rest) {
        out.push_str(&rest[..at]);
        out.push_str("<upstream>");
        let tail = &rest[at..];
        let end = tail
            .find(|c: char| c.is_whitespace() || matches!(c, ')' | ']' | ',' | ';' | '"' | '\''))
            .unwrap_or(tail.len());
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_masked_and_upstream_failures_made_generic() {
        assert_eq!(
            mask_urls("no model x at http://10.0.0.5:11434/api (see https://a.b/c), ok"),
            "no model x at <upstream> (see <upstream>), ok"
        );
        let err = ProviderError::new(ErrorKind::ConnectRefused, "http://10.0.0.5:11434 refused");
        let shown = shown(&err, false).unwrap();
        assert_eq!(shown.reason_code(), "connect_refused");
        assert!(!shown.message().contains("10.0.0.5"), "{shown}");
        assert!(super::shown(&err, true).is_none());
    }

    #[test]
    fn only_a_peer_off_loopback_is_marked_on_the_request() {
        for (peer, marked) in [
            ("127.0.0.1:5000", false),
            ("127.8.9.10:5000", false),
            ("[::1]:5000", false),
            ("[::ffff:127.0.0.1]:5000", false),
            ("192.168.1.20:5000", true),
            ("[::ffff:10.0.0.5]:5000", true),
            ("[2001:db8::1]:5000", true),
        ] {
            let mut request = http::Request::new(());
            mark_peer(&mut request, peer.parse().unwrap());
            assert_eq!(
                request.extensions().get::<Peer>().is_some(),
                marked,
                "{peer}"
            );
        }
    }
}
