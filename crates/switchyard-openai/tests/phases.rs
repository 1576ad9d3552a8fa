//! Phase timeouts, transport failures and cancellation over loopback (OpenAI side).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use switchyard_core::{
    ChatEvent, ErrorKind, FinishReason, Provider, TimeoutPhase, ToolSpec, collect_response,
};
use switchyard_openai::{OpenAiClient, OpenAiConfig, TextRecovery};
use switchyard_testkit::{
    BlackHole, Delays, Fault, Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig,
    refused_addr,
};

#[tokio::test]
async fn a_stream_longer_than_first_token_with_gaps_under_idle_completes() {
    // SSE starts with a role-only chunk that carries no token, so the first text arrives one
    // gap (250 ms) after the headers: within the first-token limit (400 ms). The whole
    // stream takes about 1.5 s, far beyond that limit, and every gap stays under idle (1 s).
    let script =
        Script::text(["a", "b", "c", "d", "e"]).with_chunk_delay(Duration::from_millis(250));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", script))
        .await
        .unwrap();
    let client = client_with(&up.openai_base_url(), timeouts(400, 1000));
    let stream = guarded(client.chat(&request("slow"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "abcde");
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));
    up.shutdown().await;
}

#[tokio::test]
async fn a_role_chunk_alone_does_not_end_the_first_token_phase() {
    // The role chunk arrives at once; the first text 600 ms later, past the first-token
    // limit (300 ms) but within idle (5 s): the first-token phase applies, so it is cut.
    let script = Script::text(["late"]).with_chunk_delay(Duration::from_millis(600));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let client = client_with(&up.openai_base_url(), timeouts(300, 5000));
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(err.unwrap().reason_code(), "timeout_first_token");
    up.shutdown().await;
}

#[tokio::test]
async fn a_stall_longer_than_idle_fails_with_timeout_idle() {
    // Chunk 1 is the role chunk, chunk 2 carries "a"; then silence.
    let script = Script::text(["a", "b", "c", "d"]).with_fault(Fault::HangAfterChunks(2));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let client = client_with(&up.openai_base_url(), timeouts(2000, 300));
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "a");
    let err = err.expect("an idle timeout");
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Idle), "{err}");
    assert_eq!(err.reason_code(), "timeout_idle");
    up.shutdown().await;
}

#[tokio::test]
async fn silence_before_the_first_chunk_is_timeout_first_token() {
    let delays = Delays {
        before_first_chunk: Duration::from_secs(3),
        ..Delays::default()
    };
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("cold", Script::text(["late"]).with_delays(delays)),
    )
    .await
    .unwrap();
    let client = client_with(&up.openai_base_url(), timeouts(200, 5000));
    let stream = guarded(client.chat(&request("cold"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(events.is_empty(), "{events:?}");
    assert_eq!(err.unwrap().reason_code(), "timeout_first_token");
    up.shutdown().await;
}

#[tokio::test]
async fn silence_before_the_headers_is_timeout_first_token_from_chat() {
    let delays = Delays {
        before_headers: Duration::from_secs(3),
        ..Delays::default()
    };
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("cold", Script::text(["late"]).with_delays(delays)),
    )
    .await
    .unwrap();
    let client = client_with(&up.openai_base_url(), timeouts(200, 5000));
    let err = guarded(client.chat(&request("cold")))
        .await
        .err()
        .expect("a timeout");
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        "{err}"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_total_limit_bounds_a_steady_stream() {
    let script =
        Script::text(["a", "b", "c", "d", "e", "f"]).with_chunk_delay(Duration::from_millis(100));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let mut t = timeouts(2000, 2000);
    t.total = Some(Duration::from_millis(250));
    let client = client_with(&up.openai_base_url(), t);
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (_, err) = split(drain(stream).await);
    assert_eq!(err.unwrap().reason_code(), "timeout_total");
    up.shutdown().await;
}

#[tokio::test]
async fn refused_and_black_holed_ports_fail_differently() {
    // Nothing listens: the TCP connect is refused at once.
    let refused = client_with(&format!("http://{}/v1", refused_addr()), timeouts(300, 300));
    let err = guarded(refused.chat(&request("m"))).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    assert_eq!(err.reason_code(), "connect_refused");
    let err = guarded(refused.health()).await.unwrap_err();
    assert_eq!(err.reason_code(), "connect_refused");

    // Something accepts TCP and never answers: the connection is made, so the connect
    // phase passes and the first-token phase (which covers the wait for headers) expires.
    let hole = BlackHole::start().await.unwrap();
    let silent = client_with(&format!("{}/v1", hole.base_url()), timeouts(300, 300));
    let err = guarded(silent.chat(&request("m"))).await.err().unwrap();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        "{err}"
    );
    assert_eq!(err.reason_code(), "timeout_first_token");
}

#[tokio::test]
async fn plain_http_on_an_https_url_is_a_tls_failure() {
    switchyard_testkit::support::plain_http_on_an_https_url_is_a_tls_failure(
        TestUpstream::openai_base_url,
        client,
    )
    .await;
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request() {
    switchyard_testkit::support::dropping_the_stream_closes_the_upstream_request(
        TestUpstream::openai_base_url,
        client,
    )
    .await;
}

#[tokio::test]
async fn dropping_a_non_streamed_request_closes_it_too() {
    let delays = Delays {
        before_headers: Duration::from_secs(3),
        ..Delays::default()
    };
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("slow", Script::text(["x"]).with_delays(delays)),
    )
    .await
    .unwrap();
    let client = client(&up.openai_base_url());
    let req = request("slow");
    let cut = tokio::time::timeout(Duration::from_millis(200), client.complete(&req)).await;
    assert!(cut.is_err(), "the answer should still be pending");
    assert!(
        eventually(|| up.aborted_streams() == 1).await,
        "the upstream did not see the client go"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_tool_call_written_slowly_as_text_is_not_cut_by_first_token_while_recovery_holds_it() {
    // A Hermes `<tool_call>` written as text in ~10 small chunks 100 ms apart: about 1.3 s
    // in all, far beyond the first-token limit (300 ms), every gap under idle (1 s).
    // Recovery holds the text back until the call is decided, yet the first decoded text
    // must end the first-token phase.
    let args = serde_json::json!({"city": "Tokyo", "days": 3});
    let script = Script::tool_calls_as_text(
        TextCallFormat::Hermes,
        vec![ScriptedCall::new("get_weather", args.clone())],
    )
    .with_chunk_delay(Duration::from_millis(100));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", script))
        .await
        .unwrap();
    let mut config = OpenAiConfig::new(up.openai_base_url());
    config.client.timeouts = timeouts(300, 1000);
    config.text_tool_recovery = TextRecovery::On;
    let client = OpenAiClient::new(config).unwrap();
    let mut req = request("slow");
    req.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: None,
        parameters: serde_json::json!({"type": "object"}),
    }];
    let started = std::time::Instant::now();
    let stream = guarded(client.chat(&req)).await.unwrap();
    let answer = guarded(collect_response(stream)).await;
    assert!(started.elapsed() > Duration::from_millis(300));
    let answer = answer.unwrap();
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(serde_json::json!(answer.tool_calls[0].arguments), args);
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    up.shutdown().await;
}
