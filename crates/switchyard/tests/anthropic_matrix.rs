//! Anthropic Messages through the built `switchyard serve`: the translation matrix
//! (Anthropic client -> Ollama, OpenAI-compatible and Anthropic upstreams; OpenAI and Ollama
//! clients -> Anthropic upstream), each with a streamed tool call, the tool result's round
//! trip, thinking, an image, and upstream errors before and after the first byte; plus the
//! gateway's Anthropic surface (x-api-key, count_tokens, models, wildcard routes, 529) and
//! privacy: a local-only caller never reaches the Anthropic provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Served, TempDir, http};
use serde_json::{Value, json};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

const KEY: &str = "sk-matrix";
const LOCAL_KEY: &str = "sk-local-only";
const IMAGE: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAwS2OUAAAAABJRU5ErkJggg==";
const TOOL_RESULT: &str = "21 degrees and sunny";
const FOLLOWUP: &str = "It is 21 degrees in Oslo.";

fn upstream_config() -> UpstreamConfig {
    UpstreamConfig::empty()
        .model_with_script("chat-model", Script::text(["Hello", " there."]))
        .model_with_script(
            "tool-model",
            Script::tool_calls(vec![ScriptedCall::new(
                "get_weather",
                json!({"city": "Oslo"}),
            )])
            .with_usage(321, 9),
        )
        .model_with_script("followup-model", Script::text([FOLLOWUP]))
        .model_with_script(
            "think-model",
            Script::thinking_then_text(["Let me ", "think."], ["Done."]),
        )
        .model_with_script(
            "broken-model",
            // Cut after the first output in every API (Anthropic: message_start, block start, text).
            Script::text(["Partial", " answer", " more"]).with_fault(Fault::DropAfterChunks(3)),
        )
        .model_with_script(
            "busy-model",
            Script::text(["x"]).with_fault(Fault::HttpError {
                status: 529,
                message: "Overloaded".into(),
            }),
        )
}

/// The gateway over one testkit upstream that speaks all three APIs: provider `oll`
/// (Ollama native), `oai` (OpenAI-compatible), both local, and `ant` (Anthropic, cloud).
async fn serve(up: &TestUpstream) -> (Served, TempDir) {
    let dir = TempDir::new("anthropic-matrix");
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "main", token: "{KEY}" }},
                                           {{ id: "local", token: "{LOCAL_KEY}", privacy: "local-only" }} ] }},
  providers: {{
    oll: {{ api: "ollama", base_url: "{base}", locality: "local", timeouts: {{ first_token_ms: 5000 }} }},
    oai: {{ api: "openai", base_url: "{base}/v1", locality: "local", timeouts: {{ first_token_ms: 5000 }} }},
    ant: {{ api: "anthropic", base_url: "{base}", locality: "cloud", api_key: "sk-ant-upstream",
            timeouts: {{ first_token_ms: 5000 }},
            models: [ {{ id: "chat-model", input_usd_per_mtok: 1, output_usd_per_mtok: 5 }},
                      {{ id: "tool-model" }}, {{ id: "followup-model" }}, {{ id: "think-model" }},
                      {{ id: "broken-model" }}, {{ id: "busy-model" }} ] }},
  }},
  routes: {{
    "claude-*": {{ targets: ["oll/chat-model", "ant/chat-model"] }},
    cloudy: {{ targets: ["ant/chat-model"] }},
  }},
  retry: {{ max_retries: 0 }},
}}"#,
        base = up.base_url()
    );
    let path = dir.write("config.json5", &config);
    (Served::start(&path, &[]).await, dir)
}

/// (event name, data) of each SSE event of an Anthropic stream.
fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .unwrap_or("")
                .to_owned();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).unwrap();
            (name, serde_json::from_str(data).unwrap())
        })
        .collect()
}

async fn post(served: &Served, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", served.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .unwrap()
}

fn weather_tool() -> Value {
    json!({"name": "get_weather", "description": "Weather by city",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}})
}

/// The last chat request the upstream received for `model`, and the path it came on.
fn last_upstream(up: &TestUpstream, model: &str) -> (String, String) {
    let r = up
        .chat_requests()
        .into_iter()
        .rev()
        .find(|r| r.model().as_deref() == Some(model))
        .unwrap_or_else(|| panic!("no upstream request for {model}"));
    (r.path.clone(), r.body_text())
}

/// An Anthropic client through the gateway to `provider`'s upstream API (`path`).
async fn anthropic_client_case(provider: &str, path: &str) {
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, _dir) = serve(&up).await;
    let m = |name: &str| format!("{provider}/{name}");

    // A streamed tool call, asked with an image.
    let r = post(&served, "/v1/messages?beta=true", json!({
        "model": m("tool-model"), "max_tokens": 256, "stream": true, "tools": [weather_tool()],
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Weather where this photo was taken?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": IMAGE}}]}]
    })).await;
    assert_eq!(r.status(), 200, "{}", served.log_text());
    assert_eq!(r.headers()["x-switchyard-target"], m("tool-model").as_str());
    let events = anthropic_events(&r.text().await.unwrap());
    assert_eq!(events[0].0, "message_start");
    assert!(
        events[0].1["message"]["usage"]["input_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );
    let tool = events
        .iter()
        .find(|(_, v)| v["content_block"]["type"] == "tool_use")
        .unwrap();
    let tool_id = tool.1["content_block"]["id"].as_str().unwrap().to_owned();
    let args: String = events
        .iter()
        .filter_map(|(_, v)| v["delta"]["partial_json"].as_str())
        .collect();
    assert_eq!(
        serde_json::from_str::<Value>(&args).unwrap(),
        json!({"city": "Oslo"})
    );
    let delta = &events[events.len() - 2].1;
    assert_eq!(
        delta["delta"]["stop_reason"], "tool_use",
        "never end_turn after a call"
    );
    assert_eq!(
        delta["usage"]["input_tokens"], 321,
        "the upstream's real count"
    );
    assert_eq!(events.last().unwrap().0, "message_stop");
    let (upstream_path, body) = last_upstream(&up, "tool-model");
    assert_eq!(upstream_path, path);
    let beta = up
        .chat_requests()
        .last()
        .and_then(|r| r.header("anthropic-beta").map(str::to_owned));
    let want = (provider == "ant").then(|| "interleaved-thinking-2025-05-14".to_owned());
    assert_eq!(
        beta, want,
        "the client's anthropic-beta reaches Anthropic targets only"
    );
    assert!(
        body.contains(IMAGE),
        "the image reached the upstream: {body}"
    );

    // The tool result goes back, whole (not streamed), paired with its call.
    let r = post(&served, "/v1/messages", json!({
        "model": m("followup-model"), "max_tokens": 256, "tools": [weather_tool()],
        "messages": [
            {"role": "user", "content": "Weather in Oslo?"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "get_weather", "input": {"city": "Oslo"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id, "content": TOOL_RESULT}]}]
    })).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["content"][0]["text"], FOLLOWUP);
    assert_eq!(v["stop_reason"], "end_turn");
    let (_, body) = last_upstream(&up, "followup-model");
    assert!(
        body.contains(TOOL_RESULT) && body.contains(&tool_id),
        "{body}"
    );

    // Thinking streams as a thinking block (with the upstream's signature from Anthropic).
    let r = post(
        &served,
        "/v1/messages",
        json!({
            "model": m("think-model"), "max_tokens": 4096, "stream": true,
            "thinking": {"type": "enabled", "budget_tokens": 2048},
            "messages": [{"role": "user", "content": "Think first."}]
        }),
    )
    .await;
    let events = anthropic_events(&r.text().await.unwrap());
    assert!(
        events
            .iter()
            .any(|(_, v)| v["content_block"]["type"] == "thinking")
    );
    let thinking: String = events
        .iter()
        .filter_map(|(_, v)| v["delta"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "Let me think.");
    let signed = events
        .iter()
        .any(|(_, v)| v["delta"]["type"] == "signature_delta");
    assert_eq!(
        signed,
        provider == "ant",
        "signatures come only from Anthropic"
    );

    // Errors: before the first byte in Anthropic's shape, after it as an `error` event.
    let r = post(&served, "/v1/messages", json!({
        "model": m("missing-model"), "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]
    })).await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error");
    assert_eq!(v["error"]["type"], "not_found_error");
    let r = post(
        &served,
        "/v1/messages",
        json!({
            "model": m("broken-model"), "max_tokens": 16, "stream": true,
            "messages": [{"role": "user", "content": "hi"}]
        }),
    )
    .await;
    let events = anthropic_events(&r.text().await.unwrap());
    assert_eq!(events.last().unwrap().0, "error", "{events:?}");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
    up.shutdown().await;
}

#[tokio::test]
async fn anthropic_client_to_ollama_upstream() {
    anthropic_client_case("oll", "/api/chat").await;
}

#[tokio::test]
async fn anthropic_client_to_openai_upstream() {
    anthropic_client_case("oai", "/v1/chat/completions").await;
}

#[tokio::test]
async fn anthropic_client_to_anthropic_upstream() {
    anthropic_client_case("ant", "/v1/messages").await;
}

/// The parts of an answer a client of another API saw: text, thinking, calls, the end.
#[derive(Debug, Default)]
struct Seen {
    text: String,
    thinking: String,
    calls: Vec<(String, String, Value)>,
    finish: String,
    error: bool,
}

fn openai_seen(text: &str) -> Seen {
    let mut seen = Seen::default();
    let mut args: Vec<String> = Vec::new();
    for data in text.split("\n\n").filter_map(|e| e.strip_prefix("data: ")) {
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        seen.error |= v.get("error").is_some();
        let choice = &v["choices"][0];
        let delta = &choice["delta"];
        seen.text += delta["content"].as_str().unwrap_or("");
        seen.thinking += delta["reasoning_content"].as_str().unwrap_or("");
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            if let Some(id) = call["id"].as_str() {
                seen.calls.push((
                    id.to_owned(),
                    call["function"]["name"].as_str().unwrap().to_owned(),
                    Value::Null,
                ));
                args.push(String::new());
            }
            if let Some(a) = call["function"]["arguments"].as_str() {
                args.last_mut().unwrap().push_str(a);
            }
        }
        if let Some(f) = choice["finish_reason"].as_str() {
            seen.finish = f.to_owned();
        }
    }
    for (call, a) in seen.calls.iter_mut().zip(args) {
        call.2 = serde_json::from_str(&a).unwrap();
    }
    seen
}

fn ollama_seen(text: &str) -> Seen {
    let mut seen = Seen::default();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_str(line).unwrap();
        seen.error |= v.get("error").is_some();
        seen.text += v["message"]["content"].as_str().unwrap_or("");
        seen.thinking += v["message"]["thinking"].as_str().unwrap_or("");
        for call in v["message"]["tool_calls"].as_array().into_iter().flatten() {
            let f = &call["function"];
            let id = call["id"].as_str().unwrap_or("").to_owned();
            seen.calls.push((
                id,
                f["name"].as_str().unwrap().to_owned(),
                f["arguments"].clone(),
            ));
        }
        if v["done"] == true {
            seen.finish = v["done_reason"].as_str().unwrap_or("").to_owned();
        }
    }
    seen
}

/// An OpenAI or Ollama client through the gateway to the Anthropic upstream.
async fn other_client_case(openai: bool) {
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, _dir) = serve(&up).await;
    let (path, seen): (&str, fn(&str) -> Seen) = if openai {
        ("/v1/chat/completions", openai_seen)
    } else {
        ("/api/chat", ollama_seen)
    };
    let tool = json!({"type": "function", "function": {"name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}});
    let user_with_image = if openai {
        json!({"role": "user", "content": [{"type": "text", "text": "Weather here?"},
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{IMAGE}")}}]})
    } else {
        json!({"role": "user", "content": "Weather here?", "images": [IMAGE]})
    };
    let send = |body: Value| {
        let url = format!("{}{path}", served.base_url());
        async move {
            http()
                .post(url)
                .bearer_auth(KEY)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    let r = send(json!({"model": "ant/tool-model", "stream": true, "tools": [tool], "messages": [user_with_image]})).await;
    assert_eq!(r.status(), 200, "{}", served.log_text());
    let s = seen(&r.text().await.unwrap());
    assert_eq!(s.calls.len(), 1, "{s:?}");
    assert_eq!(s.calls[0].2, json!({"city": "Oslo"}));
    assert_eq!(s.finish, if openai { "tool_calls" } else { "stop" });
    let (upstream_path, body) = last_upstream(&up, "tool-model");
    assert_eq!(upstream_path, "/v1/messages");
    let sent: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(sent["messages"][0]["content"][1]["source"]["data"], IMAGE);
    assert!(
        sent["max_tokens"].as_u64().unwrap() > 0,
        "max_tokens always sent: {sent}"
    );

    // The tool result back: a user turn with a tool_result paired to the call's id.
    let id = s.calls[0].0.clone();
    let mut assistant = json!({"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Oslo"}}}]});
    if openai {
        assistant["tool_calls"][0] = json!({"id": id, "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Oslo\"}"}});
    }
    let result = if openai {
        json!({"role": "tool", "tool_call_id": id, "content": TOOL_RESULT})
    } else {
        json!({"role": "tool", "tool_name": "get_weather", "content": TOOL_RESULT})
    };
    let r = send(
        json!({"model": "ant/followup-model", "stream": true, "tools": [tool],
        "messages": [{"role": "user", "content": "Weather in Oslo?"}, assistant, result]}),
    )
    .await;
    let s = seen(&r.text().await.unwrap());
    assert_eq!(s.text, FOLLOWUP);
    let (_, body) = last_upstream(&up, "followup-model");
    let sent: Value = serde_json::from_str(&body).unwrap();
    let call_id = sent["messages"][1]["content"][0]["id"].clone();
    assert_eq!(sent["messages"][2]["content"][0]["type"], "tool_result");
    assert_eq!(sent["messages"][2]["content"][0]["tool_use_id"], call_id);

    // Thinking arrives in the client's own field.
    let r = send(json!({"model": "ant/think-model", "stream": true, "messages": [{"role": "user", "content": "Think."}]})).await;
    let s = seen(&r.text().await.unwrap());
    assert_eq!(
        (s.thinking.as_str(), s.text.as_str()),
        ("Let me think.", "Done.")
    );

    // An upstream failure after the first byte ends the stream visibly.
    let r = send(json!({"model": "ant/broken-model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    let s = seen(&r.text().await.unwrap());
    assert!(s.error && s.finish.is_empty(), "{s:?}");
    // 529 before the first byte: overloaded, in the client's shape.
    let r = send(json!({"model": "ant/busy-model", "stream": true, "messages": [{"role": "user", "content": "hi"}]})).await;
    assert_eq!(r.status(), 503);
    up.shutdown().await;
}

#[tokio::test]
async fn openai_client_to_anthropic_upstream() {
    other_client_case(true).await;
}

#[tokio::test]
async fn ollama_client_to_anthropic_upstream() {
    other_client_case(false).await;
}

#[tokio::test]
async fn gateway_speaks_anthropic_auth_models_count_tokens_wildcards_and_529() {
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, _dir) = serve(&up).await;
    let base = served.base_url();
    let hi = json!({"role": "user", "content": "hi"});

    // x-api-key and Bearer both work; no key is a 401 in Anthropic's shape.
    let r = http()
        .post(format!("{base}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [hi]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "authentication_error");
    let r = http()
        .post(format!("{base}/v1/messages"))
        .bearer_auth(KEY)
        .json(&json!({"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": [hi]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // A wildcard route: any `claude-*` name goes local first.
    assert_eq!(r.headers()["x-switchyard-target"], "oll/chat-model");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["model"], "claude-sonnet-4-5");
    assert_eq!(v["content"][0]["text"], "Hello there.");

    let r = post(
        &served,
        "/v1/messages/count_tokens",
        json!({"model": "claude-x", "messages": [hi]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-token-count"], "estimate");
    let v: Value = r.json().await.unwrap();
    assert!(v["input_tokens"].as_u64().unwrap() >= 1);
    // For an Anthropic target, the upstream counts (without `max_tokens`, which it refuses).
    let body = json!({"model": "ant/chat-model", "messages": [hi], "system": "Be brief."});
    let r = post(&served, "/v1/messages/count_tokens", body).await;
    assert_eq!(r.headers()["x-switchyard-token-count"], "upstream");
    assert_eq!(r.headers()["x-switchyard-target"], "ant/chat-model");
    let counted = up
        .requests()
        .into_iter()
        .find(|r| r.path == "/v1/messages/count_tokens");
    let sent = counted.unwrap().body_json().unwrap();
    assert_eq!(sent["model"], "chat-model");
    assert!(
        sent.get("max_tokens").is_none() && sent.get("stream").is_none(),
        "{sent}"
    );

    let r = http()
        .get(format!("{base}/v1/models"))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["has_more"], false);
    assert!(
        v["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["type"] == "model" && m["id"] == "ant/chat-model")
    );
    let r = http()
        .get(format!("{base}/v1/models"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap();
    let v: Value = r.json().await.unwrap();
    assert_eq!(
        v["object"], "list",
        "OpenAI's shape without anthropic-version"
    );

    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "ant/busy-model", "max_tokens": 8, "messages": [hi]}),
    )
    .await;
    assert_eq!(r.status(), 529);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "overloaded_error");
    up.shutdown().await;
}

#[tokio::test]
async fn a_local_only_caller_never_reaches_the_anthropic_provider() {
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, _dir) = serve(&up).await;
    let local = |model: &str| {
        let body = json!({"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "secret"}]});
        http()
            .post(format!("{}/v1/messages", served.base_url()))
            .header("x-api-key", LOCAL_KEY)
            .json(&body)
            .send()
    };
    // Straight to the cloud route: refused.
    let r = local("cloudy").await.unwrap();
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["type"], "permission_error");
    // Counting tokens for the cloud route is the gateway's estimate, never the cloud's.
    let body = json!({"model": "cloudy", "messages": [{"role": "user", "content": "secret"}]});
    let r = http()
        .post(format!("{}/v1/messages/count_tokens", served.base_url()))
        .header("x-api-key", LOCAL_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-switchyard-token-count"], "estimate");
    // The local target fails; the cloud fallback is not taken for this caller.
    up.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "local down".into(),
    }));
    let r = local("claude-haiku-4-5").await.unwrap();
    assert!(r.status().is_server_error(), "{}", r.status());
    up.set_fault(None);
    // The same request from a normal key does fall back to the cloud provider ...
    let body = json!({"model": "cloudy", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let r = post(&served, "/v1/messages", body).await;
    assert_eq!(r.status(), 200);
    // ... and the upstream's log holds exactly that one Anthropic request, not the secret.
    let anthropic: Vec<_> = up
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/messages")
        .collect();
    assert_eq!(anthropic.len(), 1);
    assert!(!anthropic[0].body_text().contains("secret"));
    up.shutdown().await;
}
