//! Helpers shared by the integration tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ChatRequest, ChatStream, Message, ProviderError};
use switchyard_http::Timeouts;
use switchyard_openai::{OpenAiClient, OpenAiConfig};

/// Guard on every await that could hang: a test fails instead of hanging.
pub const GUARD: Duration = Duration::from_secs(10);

pub async fn guarded<F: Future>(f: F) -> F::Output {
    tokio::time::timeout(GUARD, f).await.expect("the test hung")
}

pub fn timeouts(first_token_ms: u64, idle_ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(first_token_ms),
        idle: Duration::from_millis(idle_ms),
        total: None,
    }
}

pub fn client_with(base_url: &str, timeouts: Timeouts) -> OpenAiClient {
    let mut config = OpenAiConfig::new(base_url);
    config.client.timeouts = timeouts;
    OpenAiClient::new(config).unwrap()
}

pub fn client(base_url: &str) -> OpenAiClient {
    client_with(base_url, timeouts(2000, 2000))
}

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
