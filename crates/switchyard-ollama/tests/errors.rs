//! Errors before output (HTTP status and Ollama's error body) and inside the stream, each
//! classified with the server's message kept verbatim.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use switchyard_core::{ErrorKind, Provider, ProviderError};
use switchyard_ollama::OllamaClient;
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

async fn chat_error(client: &OllamaClient, model: &str) -> ProviderError {
    guarded(client.chat(&request(model)))
        .await
        .err()
        .expect("an error before output")
}

#[tokio::test]
async fn unknown_model_is_model_not_found_with_the_message() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let err = chat_error(&client(&up.base_url()), "nope:7b").await;
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{err}");
    assert_eq!(err.status(), Some(404));
    assert!(
        err.message()
            .contains(r#"model "nope:7b" not found, try pulling it first"#),
        "{}",
        err.message()
    );
    up.shutdown().await;
}

#[tokio::test]
async fn http_errors_are_classified_by_status_and_body() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&up.base_url());
    let cases = [
        (
            400,
            "registry.ollama.ai/library/gemma:2b does not support tools",
            ErrorKind::InvalidRequest,
        ),
        (
            500,
            "llama runner process has terminated: exit status 2",
            ErrorKind::Upstream,
        ),
        (
            503,
            "server busy, please try again.  maximum pending requests exceeded",
            ErrorKind::Overloaded,
        ),
        (
            404,
            "model \"x\" not found, try pulling it first",
            ErrorKind::ModelNotFound,
        ),
        (
            400,
            "input length exceeds the context length",
            ErrorKind::ContextOverflow,
        ),
    ];
    for (status, message, kind) in cases {
        up.set_fault(Some(Fault::HttpError {
            status,
            message: message.into(),
        }));
        let err = chat_error(&client, "test-model").await;
        assert_eq!(err.kind(), kind, "{status}: {err}");
        assert_eq!(err.status(), Some(status));
        assert!(err.message().contains(message), "{}", err.message());
    }
    up.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 4,
    }));
    let err = chat_error(&client, "test-model").await;
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(std::time::Duration::from_secs(4)));
    up.set_fault(Some(Fault::Unauthorized));
    assert_eq!(
        chat_error(&client, "test-model").await.kind(),
        ErrorKind::Auth
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_proxy_that_does_not_forward_the_path_is_endpoint_not_found() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_blocked_paths(vec!["/api/chat".into()]);
    let err = chat_error(&client(&up.base_url()), "test-model").await;
    assert_eq!(err.kind(), ErrorKind::EndpointNotFound, "{err}");
    up.shutdown().await;
}

#[tokio::test]
async fn an_error_line_mid_stream_is_a_classified_error_after_the_output() {
    let script = Script::text(["partial ", "answer"]).with_fault(Fault::ErrorLine(
        "an error was encountered while running the model: unexpected EOF".into(),
    ));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "partial ");
    let err = err.expect("the error line");
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    assert!(
        err.message()
            .contains("an error was encountered while running the model: unexpected EOF"),
        "{}",
        err.message()
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_stream_without_done_is_stream_ended_early() {
    let script = Script::text(["a", "b"]).with_fault(Fault::NoDone);
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "ab");
    assert_eq!(
        err.expect("no done line").kind(),
        ErrorKind::StreamEndedEarly
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_mid_stream_is_stream_ended_early() {
    let script = Script::text(["a", "b", "c"]).with_fault(Fault::DropAfterChunks(1));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "a");
    assert_eq!(
        err.expect("a cut stream").kind(),
        ErrorKind::StreamEndedEarly
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_malformed_line_is_malformed_stream() {
    let script = Script::text(["a", "b"]).with_fault(Fault::MalformedLine);
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let stream = guarded(client(&up.base_url()).chat(&request("m")))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "a");
    assert_eq!(err.expect("a bad line").kind(), ErrorKind::MalformedStream);
    up.shutdown().await;
}

#[tokio::test]
async fn non_streamed_errors_are_classified_too() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script(
                "err",
                Script::text(["a"]).with_fault(Fault::ErrorLine("runner crashed".into())),
            )
            .model_with_script("cut", Script::text(["a", "b"]).with_fault(Fault::NoDone)),
    )
    .await
    .unwrap();
    let client = client(&up.base_url());
    let err = guarded(client.complete(&request("err"))).await.unwrap_err();
    assert_eq!(
        (err.kind(), err.status()),
        (ErrorKind::Upstream, Some(500)),
        "{err}"
    );
    assert!(err.message().contains("runner crashed"));
    let err = guarded(client.complete(&request("cut"))).await.unwrap_err();
    assert!(
        matches!(
            err.kind(),
            ErrorKind::MalformedStream | ErrorKind::StreamEndedEarly
        ),
        "{err}"
    );
    let err = guarded(client.complete(&request("missing")))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound);
    up.shutdown().await;
}

#[test]
fn a_base_url_with_login_details_is_refused_without_showing_them() {
    let err = OllamaClient::new(switchyard_ollama::OllamaConfig::new(
        "http://user:s3cret@127.0.0.1:11434",
    ))
    .unwrap_err();
    assert_eq!(err.reason_code(), "invalid_base_url");
    let shown = err.to_string();
    assert!(!shown.contains("s3cret"), "{shown}");
    assert!(
        shown.contains("api_key") && shown.contains("headers"),
        "{shown}"
    );
}
