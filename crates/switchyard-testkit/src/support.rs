//! Helpers shared by the upstream clients' integration tests (`switchyard-ollama`,
//! `switchyard-openai`): a guard against hanging awaits, phase timeouts, a one-message
//! request, taking a chat stream apart, and the phase tests both clients run the same way
//! ([`plain_http_on_an_https_url_is_a_tls_failure`],
//! [`dropping_the_stream_closes_the_upstream_request`]).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ErrorKind, Message, Provider, ProviderError,
};
use switchyard_http::Timeouts;

use crate::{Script, TestUpstream, UpstreamConfig};

/// Guard on every await that could hang: a test fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(10);

/// `f`, failing the test (a panic) if it takes longer than [`GUARD`].
pub async fn guarded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.expect("the test hung")
}

/// Phase timeouts: connect 2 s, the given first-token and idle limits, no total.
pub fn timeouts(first_token_ms: u64, idle_ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(first_token_ms),
        idle: Duration::from_millis(idle_ms),
        total: None,
    }
}

/// A request for `model` with one user message, `hi`.
pub fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("hi")])
}

/// Every item of a stream, the error included (a stream ends after its error).
pub async fn drain(stream: ChatStream) -> Vec<Result<ChatEvent, ProviderError>> {
    guarded(stream.collect::<Vec<_>>()).await
}

/// The events before the first error, and that error.
pub fn split(
    items: Vec<Result<ChatEvent, ProviderError>>,
) -> (Vec<ChatEvent>, Option<ProviderError>) {
    let mut events = Vec::new();
    for item in items {
        match item {
            Ok(e) => events.push(e),
            Err(e) => return (events, Some(e)),
        }
    }
    (events, None)
}

/// The text deltas of `events`, joined.
pub fn text_of(events: &[ChatEvent]) -> String {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

/// Waits (bounded) until `cond` holds.
pub async fn eventually(mut cond: impl FnMut() -> bool) -> bool {
    for _ in 0..200 {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    cond()
}

/// An `https` URL on a plain-HTTP upstream is a TLS failure. `base_url` is the upstream's
/// address in the client's API; `client` builds the client under test for a URL.
pub async fn plain_http_on_an_https_url_is_a_tls_failure<P: Provider>(
    base_url: impl Fn(&TestUpstream) -> String,
    client: impl FnOnce(&str) -> P,
) {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&base_url(&up).replace("http://", "https://"));
    let err = guarded(client.chat(&request("test-model")))
        .await
        .err()
        .unwrap();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    up.shutdown().await;
}

/// Dropping a chat stream mid-answer closes the upstream request. `base_url` and `client`
/// as for [`plain_http_on_an_https_url_is_a_tls_failure`].
pub async fn dropping_the_stream_closes_the_upstream_request<P: Provider>(
    base_url: impl Fn(&TestUpstream) -> String,
    client: impl FnOnce(&str) -> P,
) {
    let script =
        Script::text((0..50).map(|i| format!("t{i} "))).with_chunk_delay(Duration::from_millis(50));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("long", script))
        .await
        .unwrap();
    let client = client(&base_url(&up));
    let mut stream = guarded(client.chat(&request("long"))).await.unwrap();
    let first = guarded(stream.next()).await.unwrap().unwrap();
    assert!(matches!(first, ChatEvent::TextDelta { .. }));
    assert_eq!(up.aborted_streams(), 0);
    drop(stream);
    assert!(
        eventually(|| up.aborted_streams() == 1).await,
        "the upstream kept writing"
    );
    assert!(eventually(|| up.open_streams() == 0).await);
    up.shutdown().await;
}
