//! Errors from status and body, and inside the SSE stream, classified with the upstream's
//! message verbatim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use switchyard_core::{ErrorKind, Provider, ProviderError};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

async fn chat_error(client: &OpenAiClient, model: &str) -> ProviderError {
    guarded(client.chat(&request(model)))
        .await
        .err()
        .expect("an error before output")
}

#[tokio::test]
async fn rate_limits_keep_retry_after_and_the_rate_limit_headers() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 7,
    }));
    let err = chat_error(&client(&up.openai_base_url()), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::RateLimited, "{err}");
    assert_eq!(err.status(), Some(429));
    assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
    assert_eq!(err.upstream_code(), Some("rate_limit_exceeded"));
    assert!(
        err.message()
            .contains("Rate limit reached for requests. Please try again in 7s."),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("x-ratelimit-remaining-requests=0"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("x-ratelimit-reset-requests=7s"),
        "{}",
        err.message()
    );
    up.shutdown().await;
}

#[tokio::test]
async fn insufficient_quota_is_not_a_rate_limit() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::HttpError {
        status: 429,
        message: "You exceeded your current quota".into(),
    }));
    let err = chat_error(&client(&up.openai_base_url()), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::QuotaExhausted, "{err}");
    up.shutdown().await;
}

#[tokio::test]
async fn a_wrong_key_is_auth_failed() {
    let up = TestUpstream::start(UpstreamConfig::default().api_key("sk-right"))
        .await
        .unwrap();
    let mut config = OpenAiConfig::new(up.openai_base_url());
    config.client.bearer_token = Some("sk-wrong".into());
    let err = chat_error(&OpenAiClient::new(config).unwrap(), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::Auth, "{err}");
    assert_eq!(err.status(), Some(401));
    assert_eq!(err.upstream_code(), Some("invalid_api_key"));
    assert!(err.message().contains("Incorrect API key provided"));
    // No key at all, and /v1/models.
    let anonymous = client(&up.openai_base_url());
    assert_eq!(
        chat_error(&anonymous, "test-model").await.kind(),
        ErrorKind::Auth
    );
    assert_eq!(
        guarded(anonymous.list_models()).await.unwrap_err().kind(),
        ErrorKind::Auth
    );
    up.set_fault(Some(Fault::Unauthorized));
    assert_eq!(
        chat_error(&anonymous, "test-model").await.status(),
        Some(401)
    );
    up.shutdown().await;
}

#[tokio::test]
async fn context_length_exceeded_is_context_overflow() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let message = "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens.";
    up.set_fault(Some(Fault::HttpError {
        status: 400,
        message: message.into(),
    }));
    let err = chat_error(&client(&up.openai_base_url()), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::ContextOverflow, "{err}");
    assert_eq!(err.reason_code(), "context_overflow");
    assert_eq!(err.upstream_code(), Some("context_length_exceeded"));
    assert!(err.message().contains(message));
    assert!(
        !err.fallback_eligible(),
        "another target would refuse the same prompt"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn statuses_are_classified() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&up.openai_base_url());
    let err = chat_error(&client, "gpt-nope").await;
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{err}");
    assert!(
        err.message()
            .contains("The model `gpt-nope` does not exist")
    );
    let cases = [
        (
            400,
            "Invalid value for 'temperature'",
            ErrorKind::InvalidRequest,
        ),
        (
            403,
            "Country, region, or territory not supported",
            ErrorKind::Auth,
        ),
        (
            500,
            "The server had an error while processing your request.",
            ErrorKind::Upstream,
        ),
        (502, "Bad gateway.", ErrorKind::Upstream),
        (
            503,
            "The engine is currently overloaded, please try again later.",
            ErrorKind::Overloaded,
        ),
        (529, "Overloaded", ErrorKind::Overloaded),
    ];
    for (status, message, kind) in cases {
        up.set_fault(Some(Fault::HttpError {
            status,
            message: message.into(),
        }));
        let err = chat_error(&client, "test-model").await;
        assert_eq!((err.kind(), err.status()), (kind, Some(status)), "{err}");
        assert!(err.message().contains(message), "{}", err.message());
    }
    up.shutdown().await;
}

#[tokio::test]
async fn an_error_event_inside_the_stream_is_classified() {
    let script = Script::text(["partial ", "answer"]).with_fault(Fault::ErrorLine(
        "The server had an error while processing your request.".into(),
    ));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.openai_base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(!text_of(&events).contains("answer"));
    let err = err.expect("the error event");
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    assert!(
        err.message()
            .contains("The server had an error while processing your request.")
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_stream_without_finish_or_done_is_stream_ended_early() {
    let script = Script::text(["a", "b"]).with_fault(Fault::NoDone);
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.openai_base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "ab");
    assert_eq!(err.expect("truncated").kind(), ErrorKind::StreamEndedEarly);
    up.shutdown().await;
}

#[tokio::test]
async fn a_cut_connection_and_a_malformed_event_are_errors() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script(
                "cut",
                Script::text(["a", "b", "c"]).with_fault(Fault::DropAfterChunks(2)),
            )
            .model_with_script(
                "bad",
                Script::text(["a", "b"]).with_fault(Fault::MalformedLine),
            ),
    )
    .await
    .unwrap();
    let client = client(&up.openai_base_url());
    let (_, err) = split(drain(guarded(client.chat(&request("cut"))).await.unwrap()).await);
    assert_eq!(err.expect("cut").kind(), ErrorKind::StreamEndedEarly);
    let (_, err) = split(drain(guarded(client.chat(&request("bad"))).await.unwrap()).await);
    assert_eq!(err.expect("bad").kind(), ErrorKind::MalformedStream);
    up.shutdown().await;
}

#[tokio::test]
async fn a_base_url_without_v1_is_endpoint_not_found() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    // The user wrote the server's root instead of its `/v1` address.
    let err = chat_error(&client(&up.base_url()), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::EndpointNotFound, "{err}");
    assert_eq!(err.status(), Some(404));
    assert!(
        err.message().contains("/chat/completions"),
        "the URL is named: {}",
        err.message()
    );
    up.shutdown().await;
}

#[test]
fn a_base_url_with_login_details_is_refused_without_showing_them() {
    let err =
        OpenAiClient::new(OpenAiConfig::new("https://user:s3cret@api.example.com/v1")).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_base_url");
    let shown = err.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("api_key") && shown.contains("headers"),
        "{shown}"
    );
}
