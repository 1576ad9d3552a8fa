//! OpenAI's chat completions API as the server speaks it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeMap;

use common::*;
use serde_json::{Value, json};
use switchyard_testkit::{ModelSpec, Script, ScriptedCall, TestUpstream, UpstreamConfig};

fn stream_body(model: &str, include_usage: bool) -> String {
    let mut v =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    if include_usage {
        v["stream_options"] = json!({"include_usage": true});
    }
    v.to_string()
}

async fn completions(up: &TestUpstream, body: String) -> reqwest::Response {
    post(&format!("{}/chat/completions", up.openai_base_url()), body).await
}

/// (id, name, arguments) of one assembled call.
type Call = (String, String, String);

/// Assembled tool calls by index, plus the order in which the deltas' indices arrived.
fn assemble(chunks: &[Value]) -> (BTreeMap<u64, Call>, Vec<u64>) {
    let mut calls: BTreeMap<u64, Call> = BTreeMap::new();
    let mut order = Vec::new();
    for c in chunks {
        let Some(choice) = c["choices"].get(0) else {
            continue;
        };
        let Some(tcs) = choice["delta"]["tool_calls"].as_array() else {
            continue;
        };
        for tc in tcs {
            let i = tc["index"].as_u64().unwrap();
            order.push(i);
            let entry = calls.entry(i).or_default();
            if let Some(id) = tc["id"].as_str() {
                assert!(entry.0.is_empty(), "id only in the first delta");
                assert_eq!(tc["type"], "function");
                assert_eq!(
                    tc["function"]["arguments"], "",
                    "first delta has empty arguments"
                );
                entry.0 = id.to_owned();
                entry.1 = tc["function"]["name"].as_str().unwrap().to_owned();
            } else {
                assert!(
                    !entry.0.is_empty(),
                    "a fragment before the call's first delta"
                );
                assert!(tc["function"].get("name").is_none());
                entry
                    .2
                    .push_str(tc["function"]["arguments"].as_str().unwrap());
            }
        }
    }
    (calls, order)
}

#[tokio::test]
async fn models_list_and_lookup() {
    let up = TestUpstream::start(UpstreamConfig::default().model(ModelSpec::new("llama3.2:3b")))
        .await
        .unwrap();
    let v: Value = client()
        .get(format!("{}/models", up.openai_base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["object"], "list");
    let data = v["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["id"], "llama3.2:3b");
    assert_eq!(data[1]["object"], "model");
    assert!(data[1]["created"].as_u64().unwrap() > 0);
    assert!(data[1]["owned_by"].is_string());

    let r = client()
        .get(format!("{}/models/llama3.2:3b", up.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap()["id"], "llama3.2:3b");
    let r = client()
        .get(format!("{}/models/ghost", up.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "model_not_found"
    );
}

#[tokio::test]
async fn text_streams_as_sse_with_role_first_finish_and_done() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .script("test-model", Script::text(["Hel", "lo"]).with_usage(9, 2)),
    )
    .await
    .unwrap();
    let r = completions(&up, stream_body("test-model", false)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    let chunks = sse_chunks(&r.text().await.unwrap());
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let id = chunks[0]["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-"));
    for c in &chunks {
        assert_eq!(c["id"], id);
        assert_eq!(c["object"], "chat.completion.chunk");
        assert_eq!(c["model"], "test-model");
    }
    assert_eq!(openai_text(&chunks), "Hello");
    let last = chunks.last().unwrap();
    assert_eq!(last["choices"][0]["finish_reason"], "stop");
    assert_eq!(last["choices"][0]["delta"], json!({}));
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none()),
        "no usage unless asked"
    );
    for c in &chunks[..chunks.len() - 1] {
        assert!(c["choices"][0]["finish_reason"].is_null());
    }

    let r = completions(&up, stream_body("test-model", true)).await;
    let chunks = sse_chunks(&r.text().await.unwrap());
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]));
    assert_eq!(
        usage["usage"],
        json!({"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11})
    );
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
    for c in &chunks[..chunks.len() - 1] {
        assert!(
            c.get("usage").is_some_and(Value::is_null),
            "usage: null on {c}"
        );
    }
}

#[tokio::test]
async fn not_streamed_by_default() {
    let up = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::thinking_then_text(["think"], ["a", "b"]),
    ))
    .await
    .unwrap();
    let r = completions(&up, chat_body("test-model", None)).await;
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["message"]["role"], "assistant");
    assert_eq!(v["choices"][0]["message"]["content"], "ab");
    assert_eq!(v["choices"][0]["message"]["reasoning_content"], "think");
    assert_eq!(v["choices"][0]["finish_reason"], "stop");
    assert_eq!(v["usage"]["total_tokens"], 17);
}

#[tokio::test]
async fn reasoning_streams_in_the_configured_field() {
    let config = UpstreamConfig::default()
        .script(
            "test-model",
            Script::thinking_then_text(["r1", "r2"], ["t"]),
        )
        .openai_reasoning_field("reasoning");
    let up = TestUpstream::start(config).await.unwrap();
    let r = completions(&up, stream_body("test-model", false)).await;
    let chunks = sse_chunks(&r.text().await.unwrap());
    let reasoning: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["reasoning"].as_str())
        .collect();
    assert_eq!(reasoning, "r1r2");
    assert_eq!(openai_text(&chunks), "t");
}

#[tokio::test]
async fn two_parallel_tool_calls_interleave_in_fragments() {
    let calls = vec![
        ScriptedCall::new("get_weather", json!({"city": "Tokyo", "unit": "celsius"})),
        ScriptedCall::new("get_time", json!({"tz": "Asia/Tokyo"})),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default().script("test-model", Script::tool_calls(calls.clone())),
    )
    .await
    .unwrap();
    let r = completions(&up, stream_body("test-model", true)).await;
    let chunks = sse_chunks(&r.text().await.unwrap());
    let (assembled, order) = assemble(&chunks);
    assert_eq!(assembled.len(), 2);
    for (i, call) in calls.iter().enumerate() {
        let (id, name, args) = &assembled[&(i as u64)];
        assert!(id.starts_with("call_"));
        assert_eq!(name, &call.name);
        assert_eq!(serde_json::from_str::<Value>(args).unwrap(), call.arguments);
    }
    assert_ne!(assembled[&0].0, assembled[&1].0);
    // Interleaved: call 1 starts before call 0 is complete.
    let first_of_1 = order.iter().position(|&i| i == 1).unwrap();
    let last_of_0 = order.iter().rposition(|&i| i == 0).unwrap();
    assert!(first_of_1 < last_of_0, "{order:?}");
    // Several argument fragments per call.
    assert!(order.iter().filter(|&&i| i == 0).count() >= 4, "{order:?}");
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");

    let v: Value = completions(&up, chat_body("test-model", Some(false)))
        .await
        .json()
        .await
        .unwrap();
    let msg = &v["choices"][0]["message"];
    assert!(msg["content"].is_null());
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    let tcs = msg["tool_calls"].as_array().unwrap();
    assert_eq!(tcs[0]["id"], assembled[&0].0.as_str());
    assert_eq!(tcs[0]["type"], "function");
    let args: Value =
        serde_json::from_str(tcs[1]["function"]["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, calls[1].arguments);
}

#[tokio::test]
async fn sequential_tool_calls_and_text_before_calls() {
    let calls = vec![
        ScriptedCall::new("a", json!({"x": 1})),
        ScriptedCall::new("b", json!({"y": [1, 2, 3]})),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("seq", Script::tool_calls_sequential(calls.clone()))
            .model_with_script(
                "mixed",
                Script::text_then_tool_calls(["Let me check."], calls),
            ),
    )
    .await
    .unwrap();
    let chunks = sse_chunks(
        &completions(&up, stream_body("seq", false))
            .await
            .text()
            .await
            .unwrap(),
    );
    let (assembled, order) = assemble(&chunks);
    assert_eq!(assembled.len(), 2);
    let first_of_1 = order.iter().position(|&i| i == 1).unwrap();
    assert!(
        order[..first_of_1].iter().all(|&i| i == 0) && order[first_of_1..].iter().all(|&i| i == 1)
    );

    let chunks = sse_chunks(
        &completions(&up, stream_body("mixed", false))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(openai_text(&chunks), "Let me check.");
    assert_eq!(assemble(&chunks).0.len(), 2);
    let v: Value = completions(&up, chat_body("mixed", Some(false)))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "Let me check.");
}

#[tokio::test]
async fn tool_calls_as_text_are_plain_content() {
    let up = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::tool_calls_as_text(
            switchyard_testkit::TextCallFormat::Hermes,
            vec![ScriptedCall::new("f", json!({"a": 1}))],
        ),
    ))
    .await
    .unwrap();
    let chunks = sse_chunks(
        &completions(&up, stream_body("test-model", false))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert_eq!(
        openai_text(&chunks),
        "<tool_call>\n{\"name\":\"f\",\"arguments\":{\"a\":1}}\n</tool_call>"
    );
    assert!(assemble(&chunks).0.is_empty());
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn bearer_key_is_checked_on_v1_only() {
    let up = TestUpstream::start(UpstreamConfig::default().api_key("sk-good"))
        .await
        .unwrap();
    let url = format!("{}/chat/completions", up.openai_base_url());
    let r = client()
        .post(&url)
        .body(chat_body("test-model", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "invalid_api_key");
    assert_eq!(v["error"]["type"], "invalid_request_error");
    assert!(v["error"]["message"].is_string());
    assert!(v["error"]["param"].is_null());
    let r = client()
        .post(&url)
        .bearer_auth("sk-bad")
        .body(chat_body("test-model", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .get(format!("{}/models", up.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = client()
        .post(&url)
        .bearer_auth("sk-good")
        .body(chat_body("test-model", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The native API is not behind the key.
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
    let rec = up.chat_requests();
    assert_eq!(rec[2].header("authorization"), Some("Bearer sk-good"));
}

#[tokio::test]
async fn openai_error_shapes() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let r = completions(&up, chat_body("gpt-nope", None)).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "model_not_found");
    assert!(v["error"]["message"].as_str().unwrap().contains("gpt-nope"));
    let r = completions(&up, r#"{"messages":[]}"#.into()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["type"],
        "invalid_request_error"
    );
    let r = completions(&up, "[".into()).await;
    assert_eq!(r.status(), 400);
    let r = client()
        .get(format!("{}/nothing", up.openai_base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.json::<Value>().await.unwrap()["error"]["message"].is_string());
}
