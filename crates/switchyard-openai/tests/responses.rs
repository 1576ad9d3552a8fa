//! `/v1/responses` pass-through over loopback against the testkit's Responses server: the
//! body reaches the server as the client wrote it (but for `model`), the answer's bytes
//! come back unchanged, and its events (output, tool calls, usage, end) are read.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use switchyard_core::{ChatEvent, ErrorKind, FinishReason, RawFrames, ResponsesEndpoint};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

const STREAMED: ResponsesEndpoint = ResponsesEndpoint::Create { stream: true };
const WHOLE: ResponsesEndpoint = ResponsesEndpoint::Create { stream: false };

const BODY: &str = r#"{"model":"alias","input":[{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB\u002bopaque=="},{"type":"message","role":"user","content":"hi"}],"tools":[{"type":"web_search","search_context_size":"low"}],"include":["reasoning.encrypted_content"],"stream":true}"#;

async fn direct(up: &TestUpstream, body: serde_json::Value) -> String {
    reqwest::Client::new()
        .post(format!("{}/responses", up.openai_base_url()))
        .json(&body)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_streamed_answer_passes_through_unchanged_and_its_events_are_read() {
    let script = Script::text_then_tool_calls(
        ["Let me ", "look."],
        vec![ScriptedCall::new("get_weather", json!({"city": "Oslo"}))],
    )
    .with_usage(21, 8);
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("m", script))
        .await
        .unwrap();
    let client = client(&up.openai_base_url());
    assert!(!client.serves_responses());
    let frames = RawFrames::new();
    let stream = guarded(client.responses(BODY.as_bytes(), "m", STREAMED, &frames))
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Let me look.");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, ChatEvent::ToolCallStart { name, .. } if name == "get_weather"))
    );
    assert!(events.iter().any(|e| matches!(e, ChatEvent::Usage(u)
        if (u.prompt_tokens, u.completion_tokens) == (21, 8))));
    assert_eq!(
        events.last(),
        Some(&ChatEvent::done(FinishReason::ToolCalls))
    );

    // The body went out as written, only `model` replaced.
    let sent = &up.chat_requests()[0];
    assert_eq!(sent.path, "/v1/responses");
    assert_eq!(sent.body_text(), BODY.replace("\"alias\"", "\"m\""));

    // The bytes are the server's own (golden: the same request asked directly).
    let mut raw = Vec::new();
    frames.take_into(&mut raw);
    let golden = direct(&up, json!({"model": "m", "input": "hi", "stream": true})).await;
    assert_eq!(String::from_utf8(raw).unwrap(), golden);
    let meta = frames.meta();
    assert!(meta.ended && meta.response_id.is_some());
    up.shutdown().await;
}

#[tokio::test]
async fn a_whole_answer_is_kept_as_the_server_sent_it() {
    let up = TestUpstream::start(
        UpstreamConfig::default().model_with_script("m", Script::text(["Hi"]).with_usage(3, 1)),
    )
    .await
    .unwrap();
    let frames = RawFrames::new();
    let stream = client(&up.openai_base_url())
        .responses(br#"{"model":"x","input":"hi"}"#, "m", WHOLE, &frames)
        .await
        .unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hi");
    let mut raw = Vec::new();
    frames.take_into(&mut raw);
    assert_eq!(
        String::from_utf8(raw).unwrap(),
        direct(&up, json!({"model": "m", "input": "hi"})).await
    );
    up.shutdown().await;
}

#[tokio::test]
async fn errors_before_output_are_classified_and_a_cut_stream_ended_early() {
    let up =
        TestUpstream::start(UpstreamConfig::default().model_with_script("m", Script::default()))
            .await
            .unwrap();
    let client = client(&up.openai_base_url());
    let frames = RawFrames::new();
    up.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let err = match client
        .responses(BODY.as_bytes(), "m", STREAMED, &frames)
        .await
    {
        Err(e) => e,
        Ok(_) => panic!("a 503 must fail"),
    };
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    up.set_fault(Some(Fault::DropAfterChunks(4)));
    let stream = client
        .responses(BODY.as_bytes(), "m", STREAMED, &frames)
        .await
        .unwrap();
    let (_, err) = split(drain(stream).await);
    assert!(err.is_some());
    assert!(!frames.meta().ended);
    up.shutdown().await;
}
