//! Review of the Anthropic Messages surface through the built `switchyard serve`: each test
//! pins one behaviour an Anthropic client (the `anthropic` SDKs, Claude Code) relies on, with
//! the reference it comes from in the comment above it.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Served, TempDir, http};
use serde_json::{Value, json};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;

const KEY: &str = "sk-review";

/// One SSE frame of an Anthropic stream.
fn frame(data: Value) -> String {
    format!(
        "event: {}\ndata: {data}\n\n",
        data["type"].as_str().unwrap()
    )
}

/// `message_start` of message `id`.
fn message_start(id: &str) -> String {
    frame(
        json!({"type": "message_start", "message": {"id": id, "type": "message",
        "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": null, "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 1}}}),
    )
}

/// Block `index`: its start, one frame per delta, its stop.
fn block(index: u32, start: Value, deltas: &[Value]) -> Vec<String> {
    let mut frames = vec![frame(
        json!({"type": "content_block_start", "index": index, "content_block": start}),
    )];
    frames.extend(deltas.iter().map(|delta| {
        frame(json!({"type": "content_block_delta", "index": index, "delta": delta}))
    }));
    frames.push(frame(json!({"type": "content_block_stop", "index": index})));
    frames
}

/// A signed thinking block.
fn thinking_block(index: u32, thinking: &str, signature: &str) -> Vec<String> {
    block(
        index,
        json!({"type": "thinking", "thinking": ""}),
        &[
            json!({"type": "thinking_delta", "thinking": thinking}),
            json!({"type": "signature_delta", "signature": signature}),
        ],
    )
}

/// A text block.
fn text_block(index: u32, text: &str) -> Vec<String> {
    block(
        index,
        json!({"type": "text", "text": ""}),
        &[json!({"type": "text_delta", "text": text})],
    )
}

/// `message_delta` with `stop_reason` and `message_stop`.
fn message_end(stop_reason: &str, output_tokens: u32) -> Vec<String> {
    vec![
        frame(json!({"type": "message_delta",
            "delta": {"stop_reason": stop_reason, "stop_sequence": null},
            "usage": {"output_tokens": output_tokens}})),
        frame(json!({"type": "message_stop"})),
    ]
}

/// An Anthropic answer with interleaved thinking around a server tool (web search): two
/// thinking blocks, each with its own signature, as Anthropic streams them.
fn interleaved_thinking_frames() -> Vec<String> {
    let mut frames = vec![message_start("msg_1")];
    frames.extend(thinking_block(0, "First thought.", "sigA"));
    frames.extend(block(
        1,
        json!({"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}}),
        &[json!({"type": "input_json_delta", "partial_json": "{\"query\": \"x\"}"})],
    ));
    frames.extend(block(
        2,
        json!({"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []}),
        &[],
    ));
    frames.extend(thinking_block(3, "Second thought.", "sigB"));
    frames.extend(text_block(4, "Answer."));
    frames.extend(message_end("end_turn", 20));
    frames
}

/// An Anthropic answer cut by the context window: `stop_reason`
/// `model_context_window_exceeded`.
fn window_exceeded_frames() -> Vec<String> {
    let mut frames = vec![message_start("msg_2")];
    frames.extend(text_block(0, "Partial"));
    frames.extend(message_end("model_context_window_exceeded", 3));
    frames
}

fn upstream_config() -> UpstreamConfig {
    UpstreamConfig::empty()
        .model_with_script("chat-model", Script::text(["Hello", " there."]))
        .model_with_script(
            "think-model",
            Script::anthropic_raw(interleaved_thinking_frames(), "{}"),
        )
        .model_with_script(
            "reason-model",
            Script::thinking_then_text(["Let me ", "think."], ["Done."]),
        )
        .model_with_script(
            "window-model",
            Script::anthropic_raw(window_exceeded_frames(), "{}"),
        )
}

/// The gateway over one testkit upstream (`oll`: Ollama, `ant`: Anthropic) and, when given,
/// a raw OpenAI-compatible upstream `raw`.
async fn serve(up: &TestUpstream, raw: Option<&str>) -> (Served, TempDir) {
    let dir = TempDir::new("anthropic-review");
    let raw = raw.map_or(String::new(), |base| {
        format!(
            r#"raw: {{ api: "openai", base_url: "{base}/v1", locality: "local",
                     timeouts: {{ first_token_ms: 5000 }}, models: [ {{ id: "cached-model" }} ] }},"#
        )
    });
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "main", token: "{KEY}" }} ] }},
  providers: {{
    oll: {{ api: "ollama", base_url: "{base}", locality: "local", timeouts: {{ first_token_ms: 5000 }} }},
    ant: {{ api: "anthropic", base_url: "{base}", locality: "cloud", api_key: "sk-ant-upstream",
            timeouts: {{ first_token_ms: 5000 }},
            models: [ {{ id: "chat-model" }}, {{ id: "think-model" }}, {{ id: "window-model" }} ] }},
    {raw}
  }},
  retry: {{ max_retries: 0 }},
}}"#,
        base = up.base_url()
    );
    let path = dir.write("config.json5", &config);
    (Served::start(&path, &[]).await, dir)
}

async fn start() -> (TestUpstream, Served, TempDir) {
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, dir) = serve(&up, None).await;
    (up, served, dir)
}

async fn post(served: &Served, path: &str, body: Value) -> reqwest::Response {
    http()
        .post(format!("{}{path}", served.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap()
}

async fn get(served: &Served, path: &str) -> reqwest::Response {
    http()
        .get(format!("{}{path}", served.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .send()
        .await
        .unwrap()
}

// Anthropic's non-streamed `message` keeps every content block in the order the model
// produced them; with interleaved thinking (here around a server tool) that is one
// `thinking` block per turn of thought, each with its own `signature`, which the client must
// send back unmodified (Anthropic's extended-thinking guide: "thinking blocks ... must be
// passed back ... the signature field is used to verify that the thinking blocks were
// generated by Claude"). The same answer streamed through the gateway keeps both blocks;
// the whole answer must too (docs/DECISIONS.md: Anthropic to Anthropic is lossless, the
// whole answer "equal as JSON to Anthropic's own whole answer").
#[tokio::test]
async fn whole_answer_keeps_each_thinking_block_with_its_own_signature() {
    let (_up, served, _dir) = start().await;
    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "ant/think-model", "max_tokens": 4096,
               "thinking": {"type": "enabled", "budget_tokens": 2048},
               "messages": [{"role": "user", "content": "Search, then think."}]}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", served.log_text());
    let body: Value = r.json().await.unwrap();
    let kinds: Vec<&str> = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "thinking",
            "server_tool_use",
            "web_search_tool_result",
            "thinking",
            "text"
        ],
        "{body}"
    );
    let thinking: Vec<(&str, &str)> = body["content"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["type"] == "thinking")
        .map(|b| {
            (
                b["thinking"].as_str().unwrap(),
                b["signature"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        thinking,
        [("First thought.", "sigA"), ("Second thought.", "sigB")],
        "{body}"
    );
}

// An image block's `source` may be `base64`, `url` or `file` (the Files API): the SDK's
// `ImageBlockParam.source` is `Union[Base64ImageSourceParam, URLImageSourceParam,
// FileImageSourceParam]` (anthropic-sdk-python src/anthropic/types/image_block_param.py).
// Towards an Anthropic target the gateway sends the client's own body (docs/DECISIONS.md:
// "Anthropic to Anthropic is lossless by keeping the client's body ... block types
// Switchyard does not model ... go out byte for byte"), so a `file` source must reach it
// rather than be refused with a 400.
#[tokio::test]
async fn a_file_image_source_reaches_an_anthropic_target() {
    let (up, served, _dir) = start().await;
    let r = http()
        .post(format!("{}/v1/messages", served.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .header("anthropic-beta", "files-api-2025-04-14")
        .json(&json!({"model": "ant/chat-model", "max_tokens": 64,
            "messages": [{"role": "user", "content": [
                {"type": "image", "source": {"type": "file", "file_id": "file_011CNha8iCJcU1wXNR6q4V8w"}},
                {"type": "text", "text": "What is in this image?"}]}]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    let sent = up
        .chat_requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/v1/messages")
        .unwrap()
        .body_text();
    assert!(sent.contains("file_011CNha8iCJcU1wXNR6q4V8w"), "{sent}");
}

// `GET /v1/models/{model_id}` is the SDKs' `client.models.retrieve(model_id)`, answered with
// a `ModelInfo`: `{"type": "model", "id", "display_name", "created_at"}`
// (anthropic-sdk-python src/anthropic/types/model_info.py: `type: Literal["model"]`,
// `display_name: str`, `created_at: datetime`). The gateway gives Anthropic clients
// (`anthropic-version`) that shape on `GET /v1/models`; the single-model path must match.
#[tokio::test]
async fn retrieving_one_model_gives_an_anthropic_client_a_model_info() {
    let (_up, served, _dir) = start().await;
    let r = get(&served, "/v1/models/ant/chat-model").await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["id"], "ant/chat-model", "{v}");
    assert_eq!(v["type"], "model", "{v}");
    assert!(v["display_name"].is_string(), "{v}");
    assert!(v["created_at"].is_string(), "{v}");
}

// Anthropic's error shape is `{"type": "error", "error": {"type", "message"}}`, a 404 being
// `not_found_error` (Anthropic API reference, Errors). docs/DECISIONS.md: "A request
// carrying `anthropic-version` gets Anthropic's error shape on every path (401s, 404s)".
#[tokio::test]
async fn an_unknown_model_on_the_retrieve_path_is_an_anthropic_not_found_error() {
    let (_up, served, _dir) = start().await;
    let r = get(&served, "/v1/models/no-such-model").await;
    assert_eq!(r.status(), 404);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["type"], "error", "{v}");
    assert_eq!(v["error"]["type"], "not_found_error", "{v}");
}

// Anthropic refuses a request whose `messages` is empty even when `system` is set (the
// system prompt is a separate top-level field, not a message): 400 invalid_request_error,
// "messages: at least one message is required" (see e.g. Helicone/helicone#5257, which
// guards against exactly this Anthropic 400 for system-only conversations). The gateway's
// own rule (`check_shape`: "`messages` must hold at least one message") must hold for
// Anthropic clients too, rather than sending a system-only conversation to the target.
#[tokio::test]
async fn a_system_prompt_with_no_messages_is_refused() {
    let (up, served, _dir) = start().await;
    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "oll/chat-model", "max_tokens": 16, "system": "Be brief.", "messages": []}),
    )
    .await;
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"]["type"], "invalid_request_error", "{v}");
    assert!(
        up.chat_requests().is_empty(),
        "nothing reaches the upstream"
    );
}

// A bad tool schema is a 400 that names the field as the client wrote it: in Anthropic's
// Messages API a tool's schema is `tools[i].input_schema` (API reference, Messages:
// `tools[].input_schema`); `function.parameters` is OpenAI's name, which the Anthropic
// request does not have.
#[tokio::test]
async fn a_bad_tool_schema_error_names_input_schema() {
    let (_up, served, _dir) = start().await;
    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "oll/chat-model", "max_tokens": 16,
               "tools": [{"name": "get_weather", "input_schema": "not a schema"}],
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let v: Value = r.json().await.unwrap();
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("tools[0].input_schema"), "{message}");
}

/// A minimal OpenAI-compatible upstream on 127.0.0.1 that answers every chat completion with
/// `sse` (one connection per request) and `/v1/models` with `cached-model`. Serves at most
/// `limit` connections.
async fn raw_openai_upstream(sse: String, limit: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        for _ in 0..limit {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let sse = sse.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then the body by content-length (bounded by 1 MiB).
                let (head_end, length) = loop {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 || buf.len() > 1 << 20 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(pos) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..pos]).to_ascii_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (pos + 4, length);
                    }
                };
                while buf.len() < head_end + length && buf.len() <= 1 << 20 {
                    let Ok(n) = sock.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        break;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
                let (ctype, body) = if head.starts_with("GET /v1/models") {
                    (
                        "application/json",
                        r#"{"object":"list","data":[{"id":"cached-model","object":"model","created":0,"owned_by":"raw"}]}"#.to_owned(),
                    )
                } else {
                    ("text/event-stream", sse)
                };
                let response = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    base
}

// OpenAI's usage counts prompt-cache hits inside `prompt_tokens` and reports them as
// `prompt_tokens_details.cached_tokens` (OpenAI API reference, chat completion object,
// `usage.prompt_tokens_details.cached_tokens`: "Cached tokens present in the prompt").
// Anthropic's usage keeps them apart: `input_tokens` are the tokens not read from (nor
// written to) the cache, `cache_read_input_tokens` those read from it (Anthropic prompt
// caching guide: total input = `cache_read_input_tokens` + `cache_creation_input_tokens` +
// `input_tokens`). The core's `Usage` says the same ("cache_read_tokens ... not part of
// prompt_tokens"), and docs/DECISIONS.md: "Anthropic clients keep them apart, as Anthropic
// does". An Anthropic client of an OpenAI upstream that served 800 of 1000 prompt tokens
// from its cache must see input_tokens 200 and cache_read_input_tokens 800.
#[tokio::test]
async fn an_openai_upstreams_cached_tokens_are_kept_apart_for_an_anthropic_client() {
    let chunk = |v: Value| format!("data: {v}\n\n");
    let sse = [
        chunk(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "cached-model",
            "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hi"}, "finish_reason": null}]})),
        chunk(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "cached-model",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})),
        chunk(json!({"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "cached-model",
            "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 5, "total_tokens": 1005,
                                     "prompt_tokens_details": {"cached_tokens": 800}}})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let raw = raw_openai_upstream(sse, 16).await;
    let up = TestUpstream::start(upstream_config()).await.unwrap();
    let (served, _dir) = serve(&up, Some(&raw)).await;
    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "raw/cached-model", "max_tokens": 16,
               "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", served.log_text());
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["content"][0]["text"], "Hi", "{v}");
    assert_eq!(v["usage"]["cache_read_input_tokens"], 800, "{v}");
    assert_eq!(v["usage"]["input_tokens"], 200, "{v}");
}

// Anthropic's `stop_reason` values are `end_turn`, `max_tokens`, `stop_sequence`,
// `tool_use`, `pause_turn`, `refusal` and `model_context_window_exceeded`
// (anthropic-sdk-python src/anthropic/types/stop_reason.py). An Anthropic upstream's
// `model_context_window_exceeded` says the answer was cut by the context window, not that
// the model finished; an Anthropic client of an Anthropic target must get it as sent
// (docs/DECISIONS.md: Anthropic to Anthropic is lossless), streamed and whole, never
// `end_turn`.
#[tokio::test]
async fn an_anthropic_stop_reason_passes_through_to_an_anthropic_client() {
    let (_up, served, _dir) = start().await;
    let ask = |stream: bool| {
        json!({"model": "ant/window-model", "max_tokens": 64, "stream": stream,
               "messages": [{"role": "user", "content": "hi"}]})
    };
    let r = post(&served, "/v1/messages", ask(false)).await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["stop_reason"], "model_context_window_exceeded", "{v}");

    let r = post(&served, "/v1/messages", ask(true)).await;
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    let delta: Value = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|v| v["type"] == "message_delta")
        .unwrap();
    assert_eq!(
        delta["delta"]["stop_reason"], "model_context_window_exceeded",
        "{text}"
    );
}

// Anthropic refuses a thinking block without a signature: `ThinkingBlockParam.signature` is
// `Required[str]`, "exactly as returned by the API in a previous response ... a modified
// block results in a 400 `invalid_request_error`" (anthropic-sdk-python
// src/anthropic/types/thinking_block_param.py). The gateway itself hands an Anthropic client
// unsigned thinking blocks when a local (Ollama) target answered, and the client sends them
// back on the next turn; when that turn goes to an Anthropic target (another model, or a
// route's fallback such as `claude-*: [local, anthropic]`), they must not be sent
// (docs/DECISIONS.md: "Thinking without a signature (from Ollama or OpenAI upstreams) is
// never sent to Anthropic, which refuses it").
#[tokio::test]
async fn unsigned_thinking_from_a_local_turn_is_not_sent_to_anthropic() {
    let (up, served, _dir) = start().await;
    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "oll/reason-model", "max_tokens": 4096,
               "thinking": {"type": "enabled", "budget_tokens": 2048},
               "messages": [{"role": "user", "content": "Think first."}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let first: Value = r.json().await.unwrap();
    assert_eq!(first["content"][0]["type"], "thinking", "{first}");
    assert!(first["content"][0].get("signature").is_none(), "{first}");

    let r = post(
        &served,
        "/v1/messages",
        json!({"model": "ant/chat-model", "max_tokens": 4096,
               "thinking": {"type": "enabled", "budget_tokens": 2048},
               "messages": [
                   {"role": "user", "content": "Think first."},
                   {"role": "assistant", "content": first["content"]},
                   {"role": "user", "content": "And then?"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent: Value = up
        .chat_requests()
        .into_iter()
        .rev()
        .find(|r| r.path == "/v1/messages")
        .unwrap()
        .body_json()
        .unwrap();
    for m in sent["messages"].as_array().unwrap() {
        for block in m["content"].as_array().into_iter().flatten() {
            if block["type"] == "thinking" {
                assert!(
                    block["signature"].as_str().is_some_and(|s| !s.is_empty()),
                    "an unsigned thinking block reached Anthropic: {sent}"
                );
            }
        }
    }
}
