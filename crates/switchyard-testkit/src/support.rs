//! Helpers shared by the upstream clients' integration tests (`switchyard-ollama`,
//! `switchyard-openai`): a guard against hanging awaits, phase timeouts, a one-message
//! request, and taking a chat stream apart.

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ChatRequest, ChatStream, Message, ProviderError};
use switchyard_http::Timeouts;

/// Guard on every await that could hang: a test fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(10);

/// `f`, failing the test (a panic) if it takes longer than [`GUARD`].
#[allow(clippy::expect_used)]
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
