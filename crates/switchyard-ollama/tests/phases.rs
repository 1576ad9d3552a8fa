//! Phase timeouts, transport failures and cancellation over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use switchyard_core::{
    ChatEvent, ErrorKind, FinishReason, Provider, TimeoutPhase, ToolSpec, collect_response,
};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_testkit::{
    BlackHole, Delays, Fault, Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig,
    refused_addr,
};

#[tokio::test]
async fn chunks_slower_than_first_token_but_faster_than_idle_complete() {
    // Every gap (250 ms) is longer than the first-token limit (150 ms) and shorter than the
    // idle limit (1 s): the first chunk comes at once, so the stream is never cut.
    let script =
        Script::text(["a", "b", "c", "d", "e"]).with_chunk_delay(Duration::from_millis(250));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", script))
        .await
        .unwrap();
    let client = client_with(&up.base_url(), timeouts(150, 1000));
    let stream = guarded(client.chat(&request("slow"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "abcde");
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));
    up.shutdown().await;
}

#[tokio::test]
async fn a_stall_longer_than_idle_fails_with_timeout_idle() {
    let script = Script::text(["a", "b", "c", "d"]).with_fault(Fault::HangAfterChunks(2));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let client = client_with(&up.base_url(), timeouts(2000, 300));
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert_eq!(text_of(&events), "ab");
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
    let client = client_with(&up.base_url(), timeouts(200, 5000));
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
    let client = client_with(&up.base_url(), timeouts(200, 5000));
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
    let client = client_with(&up.base_url(), t);
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (_, err) = split(drain(stream).await);
    assert_eq!(err.unwrap().reason_code(), "timeout_total");
    up.shutdown().await;
}

#[tokio::test]
async fn refused_and_black_holed_ports_fail_differently() {
    // Nothing listens: the TCP connect is refused at once.
    let refused = client_with(&format!("http://{}", refused_addr()), timeouts(300, 300));
    let err = guarded(refused.chat(&request("m"))).await.err().unwrap();
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
    assert_eq!(err.reason_code(), "connect_refused");
    let err = guarded(refused.health()).await.unwrap_err();
    assert_eq!(err.reason_code(), "connect_refused");

    // Something accepts TCP and never answers: the connection is made, so the connect
    // phase passes and the first-token phase (which covers the wait for headers) expires.
    let hole = BlackHole::start().await.unwrap();
    let silent = client_with(&hole.base_url(), timeouts(300, 300));
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
        TestUpstream::base_url,
        client,
    )
    .await;
}

#[tokio::test]
async fn dropping_the_stream_closes_the_upstream_request() {
    switchyard_testkit::support::dropping_the_stream_closes_the_upstream_request(
        TestUpstream::base_url,
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
    let client = client(&up.base_url());
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
    // A Hermes `<tool_call>` written as text in ~10 small chunks 100 ms apart: about 1 s in
    // all, far beyond the first-token limit (300 ms), every gap under idle (1 s). Recovery
    // holds the text back until the call is decided, yet the first decoded text must end
    // the first-token phase.
    let args = serde_json::json!({"city": "Tokyo", "days": 3});
    let script = Script::tool_calls_as_text(
        TextCallFormat::Hermes,
        vec![ScriptedCall::new("get_weather", args.clone())],
    )
    .with_chunk_delay(Duration::from_millis(100));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", script))
        .await
        .unwrap();
    let mut config = OllamaConfig::new(up.base_url());
    config.client.timeouts = timeouts(300, 1000);
    config.text_tool_recovery = true;
    let client = OllamaClient::new(config).unwrap();
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
    up.shutdown().await;
}

#[tokio::test]
async fn a_request_offering_tools_waits_first_token_long_while_ollama_holds_a_call_back() {
    // Ollama parses tool calls itself and sends a call only once the model wrote all of
    // it: a slow model writing a long call is silent meanwhile. Gaps of 600 ms, idle
    // 300 ms, first token 3 s: with tools offered the idle limit is the first-token one.
    let args = serde_json::json!({"path": "a.txt"});
    let script = Script::text_then_tool_calls(
        ["Let me look."],
        vec![ScriptedCall::new("read_file", args.clone())],
    )
    .with_chunk_delay(Duration::from_millis(600));
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", script))
        .await
        .unwrap();
    let client = client_with(&up.base_url(), timeouts(3000, 300));
    let mut req = request("slow");
    req.tools = vec![ToolSpec {
        name: "read_file".into(),
        description: None,
        parameters: serde_json::json!({"type": "object"}),
    }];
    let answer = guarded(collect_response(guarded(client.chat(&req)).await.unwrap()))
        .await
        .unwrap();
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    assert_eq!(serde_json::json!(answer.tool_calls[0].arguments), args);

    // The same answer to a request without tools keeps the idle limit.
    let (events, err) = split(drain(guarded(client.chat(&request("slow"))).await.unwrap()).await);
    assert_eq!(text_of(&events), "Let me look.");
    assert_eq!(err.expect("an idle timeout").reason_code(), "timeout_idle");
    up.shutdown().await;
}
