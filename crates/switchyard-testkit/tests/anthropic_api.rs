//! Anthropic's Messages API as the server speaks it: typed SSE events, the whole message,
//! `x-api-key` auth, errors in Anthropic's shape and the same faults as the other APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

fn messages_body(model: &str, stream: bool) -> String {
    json!({"model": model, "max_tokens": 64, "stream": stream,
        "messages": [{"role": "user", "content": "hi"}]})
    .to_string()
}

async fn messages(up: &TestUpstream, body: String, key: Option<&str>) -> reqwest::Response {
    let mut req = client()
        .post(format!("{}/v1/messages?beta=true", up.base_url()))
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01");
    if let Some(k) = key {
        req = req.header("x-api-key", k);
    }
    req.body(body).send().await.unwrap()
}

/// (event name, data) of each SSE event; the name always equals the data's `type`.
fn events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let name = e.lines().find_map(|l| l.strip_prefix("event: ")).unwrap();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            let v: Value = serde_json::from_str(data).unwrap();
            assert_eq!(v["type"], name);
            (name.to_owned(), v)
        })
        .collect()
}

#[tokio::test]
async fn streamed_tool_use_has_the_documented_event_sequence() {
    let script = Script::tool_calls(vec![ScriptedCall::new(
        "get_weather",
        json!({"city": "Oslo"}),
    )])
    .with_usage(30, 9);
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script("claude-x", script))
        .await
        .unwrap();
    let r = messages(&up, messages_body("claude-x", true), None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let ev = events(&r.text().await.unwrap());
    assert_eq!(ev[0].1["message"]["usage"]["input_tokens"], 30);
    assert_eq!(ev[1].1["content_block"]["type"], "tool_use");
    let args: String = ev
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Oslo"})
    );
    let delta = &ev[ev.len() - 2].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 9);
    assert_eq!(ev.last().unwrap().0, "message_stop");
    assert_eq!(up.chat_requests()[0].model().as_deref(), Some("claude-x"));
}

#[tokio::test]
async fn whole_message_and_count_tokens() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let r = messages(&up, messages_body("test-model", false), None).await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], "Hello from the test upstream.");
    assert_eq!(v["stop_reason"], "end_turn");
    let r = client()
        .post(format!("{}/v1/messages/count_tokens", up.base_url()))
        .body(messages_body("test-model", false))
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn key_errors_and_faults_in_anthropic_shape() {
    let up = TestUpstream::start(UpstreamConfig::default().api_key("sk-ant-test"))
        .await
        .unwrap();
    let r = messages(&up, messages_body("test-model", true), Some("wrong")).await;
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v,
        json!({"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}})
    );
    let r = messages(&up, messages_body("test-model", true), Some("sk-ant-test")).await;
    assert_eq!(r.status(), 200);

    up.set_fault(Some(Fault::HttpError {
        status: 529,
        message: "Overloaded".into(),
    }));
    let r = messages(&up, messages_body("test-model", true), Some("sk-ant-test")).await;
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");

    up.set_fault(Some(Fault::ErrorLine("boom".into())));
    let r = messages(&up, messages_body("test-model", true), Some("sk-ant-test")).await;
    let ev = events(&r.text().await.unwrap());
    assert_eq!(ev.last().unwrap().0, "error");
    assert!(!ev.iter().any(|(n, _)| n == "message_stop"));

    up.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 7,
    }));
    let r = messages(&up, messages_body("test-model", true), Some("sk-ant-test")).await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    up.shutdown().await;
}
