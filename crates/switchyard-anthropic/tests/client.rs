//! The Anthropic client against the testkit's scripted Anthropic upstream: headers, streamed
//! and whole answers, tool calls, thinking signatures, token counting, the catalog, errors
//! classified by status and Anthropic's error types, phase timeouts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;
use switchyard_anthropic::{AnthropicClient, AnthropicConfig};
use switchyard_core::{ChatEvent, ErrorKind, FinishReason, Locality, Provider, ProviderError};
use switchyard_testkit::support::{drain, guarded, request, split, text_of, timeouts};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

const KEY: &str = "sk-ant-test";

fn client(base: &str) -> AnthropicClient {
    let mut config = AnthropicConfig::new(base);
    config.api_key = Some(KEY.into());
    config.beta = vec!["fine-grained-tool-streaming-2025-05-14".into()];
    config.client.timeouts = timeouts(2_000, 2_000);
    AnthropicClient::new(config).unwrap()
}

async fn upstream(config: UpstreamConfig) -> TestUpstream {
    TestUpstream::start(config.api_key(KEY)).await.unwrap()
}

async fn chat_error(client: &AnthropicClient, model: &str) -> ProviderError {
    guarded(client.chat(&request(model)))
        .await
        .err()
        .expect("an error before output")
}

#[tokio::test]
async fn streams_text_with_anthropic_headers_and_max_tokens() {
    let up = upstream(UpstreamConfig::default()).await;
    let c = client(&format!("{}/v1/", up.base_url()));
    assert_eq!(c.base_url(), up.base_url(), "a trailing /v1/ is removed");
    let (events, err) = split(drain(guarded(c.chat(&request("test-model"))).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello from the test upstream.");
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));
    let sent = &up.chat_requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(KEY));
    assert_eq!(sent.header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        sent.header("anthropic-beta"),
        Some("fine-grained-tool-streaming-2025-05-14")
    );
    assert_eq!(sent.header("authorization"), None);
    let body = sent.body_json().unwrap();
    assert_eq!(body["max_tokens"], 4096, "always written");
    assert_eq!(body["stream"], true);
    up.shutdown().await;
}

#[tokio::test]
async fn tool_calls_thinking_and_usage_come_through() {
    let calls = vec![
        ScriptedCall::new("get_weather", json!({"city": "Paris"})),
        ScriptedCall::new("get_time", json!({"tz": "CET"})),
    ];
    let up = upstream(
        UpstreamConfig::default()
            .model_with_script("claude-tools", Script::tool_calls(calls).with_usage(40, 12))
            .model_with_script(
                "claude-think",
                Script::thinking_then_text(["hmm ", "ok"], ["Done."]),
            ),
    )
    .await;
    let c = client(&up.base_url());
    let answer = guarded(c.complete(&request("claude-tools"))).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls[1].arguments["tz"], "CET");
    let (events, _) = split(drain(guarded(c.chat(&request("claude-tools"))).await.unwrap()).await);
    let starts = events
        .iter()
        .filter(|e| matches!(e, ChatEvent::ToolCallStart { .. }))
        .count();
    assert_eq!(starts, 2);
    assert!(events.iter().any(
        |e| matches!(e, ChatEvent::Usage(u) if u.prompt_tokens == 40 && u.completion_tokens == 12)
    ));
    let (events, _) = split(drain(guarded(c.chat(&request("claude-think"))).await.unwrap()).await);
    assert!(events.iter().any(
        |e| matches!(e, ChatEvent::ThinkingSignature { signature } if signature.starts_with("sig_"))
    ));
    assert_eq!(text_of(&events), "Done.");
    up.shutdown().await;
}

#[tokio::test]
async fn catalog_and_token_count() {
    let up = upstream(UpstreamConfig::default()).await;
    let c = client(&up.base_url());
    let models = guarded(c.models()).await.unwrap();
    assert!(
        models
            .iter()
            .any(|m| m.id == "test-model" && m.locality == Locality::Cloud)
    );
    guarded(c.health()).await.unwrap();
    let n = guarded(c.count_tokens(&request("test-model"), "test-model"))
        .await
        .unwrap();
    assert!(n > 0);
    let sent = up
        .requests()
        .into_iter()
        .find(|r| r.path.ends_with("count_tokens"))
        .unwrap();
    let body = sent.body_json().unwrap();
    assert!(
        body.get("max_tokens").is_none() && body.get("stream").is_none(),
        "{body}"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn errors_are_classified_like_anthropic_documents_them() {
    let up = upstream(UpstreamConfig::default()).await;
    let c = client(&up.base_url());
    let cases: [(u16, ErrorKind, bool); 6] = [
        (400, ErrorKind::InvalidRequest, false),
        (413, ErrorKind::InvalidRequest, false),
        (403, ErrorKind::Auth, true),
        (500, ErrorKind::Upstream, true),
        (529, ErrorKind::Overloaded, true),
        (404, ErrorKind::ModelNotFound, true),
    ];
    for (status, kind, eligible) in cases {
        up.set_fault(Some(Fault::HttpError {
            status,
            message: format!("failed {status}"),
        }));
        let err = chat_error(&c, "test-model").await;
        assert_eq!(err.kind(), kind, "{status}: {err}");
        assert_eq!(err.status(), Some(status));
        assert_eq!(err.fallback_eligible(), eligible, "{status}");
        assert!(err.message().contains(&format!("failed {status}")));
    }
    up.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 7,
    }));
    let err = chat_error(&c, "test-model").await;
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    up.set_fault(None);
    let wrong = AnthropicClient::new(AnthropicConfig {
        api_key: Some("nope".into()),
        ..c.config().clone()
    })
    .unwrap();
    assert_eq!(
        chat_error(&wrong, "test-model").await.kind(),
        ErrorKind::Auth
    );
    assert_eq!(
        chat_error(&c, "no-such-model").await.kind(),
        ErrorKind::ModelNotFound
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_midstream_error_event_and_a_cut_stream_are_errors() {
    let up = upstream(UpstreamConfig::default()).await;
    let c = client(&up.base_url());
    up.set_fault(Some(Fault::ErrorLine("Overloaded".into())));
    let (_, err) = split(drain(guarded(c.chat(&request("test-model"))).await.unwrap()).await);
    assert!(err.unwrap().message().contains("Overloaded"));
    up.set_fault(Some(Fault::NoDone));
    let (_, err) = split(drain(guarded(c.chat(&request("test-model"))).await.unwrap()).await);
    assert_eq!(err.unwrap().kind(), ErrorKind::StreamEndedEarly);
    up.set_fault(Some(Fault::HangAfterChunks(2)));
    let (_, err) = split(drain(guarded(c.chat(&request("test-model"))).await.unwrap()).await);
    assert!(err.unwrap().is_timeout());
    up.shutdown().await;
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request() {
    switchyard_testkit::support::dropping_the_stream_closes_the_upstream_request(
        TestUpstream::base_url,
        |url| {
            let mut config = AnthropicConfig::new(url);
            config.client.timeouts = timeouts(2_000, 2_000);
            AnthropicClient::new(config).unwrap()
        },
    )
    .await;
}
