//! Tool calls through the gateway across client APIs and upstreams (review tests): parallel
//! calls, recovered text calls and tool-result round trips, over real loopback sockets.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

mod support;

use support::{
    gateway_config_with_grace, http_waiting, new_gateway, router_over, serve_until_runtime_ends,
};

#[derive(Clone, Copy)]
enum Kind {
    Ollama,
    OpenAi,
}

/// The gateway on 127.0.0.1:0 over one upstream of `kind` serving `script` for every model
/// (route `chat` -> `up/test-model`), recovering text tool calls.
async fn gateway(kind: Kind, script: Script) -> (String, TestUpstream) {
    let up = TestUpstream::start(UpstreamConfig::default().default_script(script))
        .await
        .unwrap();
    let provider: Arc<dyn switchyard_core::Provider> = match kind {
        Kind::Ollama => {
            let mut c = OllamaConfig::new(up.base_url());
            c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
            c.text_tool_recovery = true;
            Arc::new(OllamaClient::new(c).unwrap())
        }
        Kind::OpenAi => {
            let mut c = OpenAiConfig::new(up.openai_base_url());
            c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
            c.text_tool_recovery = switchyard_openai::TextRecovery::On;
            Arc::new(OpenAiClient::new(c).unwrap())
        }
    };
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let router = router_over(
        slots,
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    router.catalog().await;
    let config = gateway_config_with_grace(Duration::from_secs(1));
    let base = serve_until_runtime_ends(new_gateway(router, config)).await;
    (base, up)
}

async fn post(base: &str, path: &str, body: &Value) -> String {
    let r = http_waiting(Duration::from_secs(10))
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(status.is_success(), "{status}: {text}");
    text
}

/// The SSE events of a body: (event name, data JSON); `[DONE]` skipped.
fn sse(body: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for frame in body.split("\n\n") {
        let mut name = String::new();
        let mut data = String::new();
        for line in frame.lines() {
            if let Some(n) = line.strip_prefix("event:") {
                name = n.trim().to_owned();
            } else if let Some(d) = line.strip_prefix("data:") {
                data.push_str(d.trim_start());
            }
        }
        if data.is_empty() || data == "[DONE]" {
            continue;
        }
        out.push((name, serde_json::from_str(&data).unwrap()));
    }
    out
}

fn params() -> Value {
    json!({ "type": "object", "properties": { "city": { "type": "string" } } })
}

fn anthropic_request() -> Value {
    json!({ "model": "chat", "max_tokens": 64, "stream": true,
            "messages": [{ "role": "user", "content": "weather?" }],
            "tools": [{ "name": "get_weather", "input_schema": params() },
                      { "name": "get_time", "input_schema": params() }] })
}

fn responses_request() -> Value {
    json!({ "model": "chat", "input": "weather?", "stream": true,
            "tools": [{ "type": "function", "name": "get_weather", "parameters": params() },
                      { "type": "function", "name": "get_time", "parameters": params() }] })
}

/// A content block of an Anthropic stream: (type, `id/name`, text or joined input).
type Block = (String, String, String);

/// Anthropic stream -> (its blocks, stop_reason, error).
fn anthropic_blocks(body: &str) -> (Vec<Block>, Option<String>, Option<Value>) {
    let mut blocks: Vec<Block> = Vec::new();
    let mut stop = None;
    let mut error = None;
    for (name, data) in sse(body) {
        match name.as_str() {
            "content_block_start" => {
                let b = &data["content_block"];
                let t = b["type"].as_str().unwrap().to_owned();
                let label = format!(
                    "{}/{}",
                    b["id"].as_str().unwrap_or(""),
                    b["name"].as_str().unwrap_or("")
                );
                assert_eq!(
                    data["index"].as_u64().unwrap() as usize,
                    blocks.len(),
                    "{body}"
                );
                blocks.push((t, label, String::new()));
            }
            "content_block_delta" => {
                let i = data["index"].as_u64().unwrap() as usize;
                let d = &data["delta"];
                let piece = d["text"]
                    .as_str()
                    .or(d["partial_json"].as_str())
                    .unwrap_or("");
                blocks[i].2.push_str(piece);
            }
            "message_delta" => stop = data["delta"]["stop_reason"].as_str().map(str::to_owned),
            "error" => error = Some(data),
            _ => {}
        }
    }
    (blocks, stop, error)
}

// Two parallel calls from an OpenAI-compatible upstream whose deltas interleave (docs/WIRE.md,
// "OpenAI chat completions": "Two calls may interleave"), streamed to an Anthropic Messages
// client: Anthropic streams each `tool_use` as its own content block whose `input_json_delta`
// fragments join to the full input (docs.anthropic.com, "Streaming Messages").
#[tokio::test]
async fn anthropic_client_gets_interleaved_openai_calls_as_two_tool_use_blocks() {
    let script = Script::tool_calls(vec![
        ScriptedCall::new("get_weather", json!({ "city": "Oslo" })),
        ScriptedCall::new("get_time", json!({ "city": "Lima" })),
    ]);
    let (base, _up) = gateway(Kind::OpenAi, script).await;
    let body = post(&base, "/v1/messages", &anthropic_request()).await;
    let (blocks, stop, error) = anthropic_blocks(&body);
    assert!(error.is_none(), "the stream failed: {body}");
    let calls: Vec<_> = blocks.iter().filter(|b| b.0 == "tool_use").collect();
    assert_eq!(calls.len(), 2, "{body}");
    let inputs: Vec<Value> = calls
        .iter()
        .map(|c| serde_json::from_str(&c.2).unwrap())
        .collect();
    assert_eq!(
        inputs,
        vec![json!({ "city": "Oslo" }), json!({ "city": "Lima" })]
    );
    assert_eq!(stop.as_deref(), Some("tool_use"));
}

// Text ending in a backtick (a possible start of a ```` ``` ```` fence, held back by text-call
// recovery), then a native call: the client must get the text before the call, as the model
// wrote it. recovery.rs: held text "is released unchanged"; Anthropic's content blocks are
// ordered (Messages API: `content` is the ordered list of blocks).
#[tokio::test]
async fn text_held_by_recovery_stays_before_a_native_call() {
    for kind in [Kind::Ollama, Kind::OpenAi] {
        let script = Script::text_then_tool_calls(
            ["I will run `date`"],
            vec![ScriptedCall::new("get_weather", json!({ "city": "Oslo" }))],
        );
        let (base, _up) = gateway(kind, script).await;
        let body = post(&base, "/v1/messages", &anthropic_request()).await;
        let (blocks, stop, error) = anthropic_blocks(&body);
        assert!(error.is_none(), "{body}");
        let kinds: Vec<&str> = blocks.iter().map(|b| b.0.as_str()).collect();
        assert_eq!(kinds, vec!["text", "tool_use"], "{body}");
        assert_eq!(blocks[0].2, "I will run `date`");
        assert_eq!(stop.as_deref(), Some("tool_use"));
    }
}

// The same reordering with the common shape of a local model's answer: blank lines, then a
// native call. The held "\n\n" comes out after the call, so a Responses client gets a
// `message` item after its `function_call` (the answer's order is the model's: OpenAI
// Responses `output` is "an array of content items generated by the model", in order).
#[tokio::test]
async fn leading_blank_lines_do_not_become_a_message_after_a_native_call() {
    let script = Script::text_then_tool_calls(
        ["\n\n"],
        vec![ScriptedCall::new("get_weather", json!({ "city": "Oslo" }))],
    );
    let (base, _up) = gateway(Kind::Ollama, script).await;
    let body = post(&base, "/v1/responses", &responses_request()).await;
    let kinds: Vec<String> = sse(&body)
        .into_iter()
        .filter(|(n, _)| n == "response.output_item.done")
        .map(|(_, d)| d["item"]["type"].as_str().unwrap().to_owned())
        .collect();
    let call = kinds
        .iter()
        .position(|k| k == "function_call")
        .expect("a call");
    assert!(
        kinds[call + 1..].iter().all(|k| k != "message"),
        "text of the model's answer before its call came out after it: {kinds:?}\n{body}"
    );
}

/// An OpenAI chat request offering `get_weather` (and `get_time`), for `model`.
fn openai_tool_request(model: &str, stream: bool) -> Value {
    json!({ "model": model, "stream": stream,
            "stream_options": { "include_usage": true },
            "messages": [{ "role": "user", "content": "weather in Oslo?" }],
            "tools": [{ "type": "function", "function": { "name": "get_weather", "parameters": params() } },
                      { "type": "function", "function": { "name": "get_time", "parameters": params() } }] })
}

/// The tool calls of an OpenAI chat-completion stream, joined per `index` as the official
/// SDK's stream accumulator joins them: (id, name, arguments); also the text and the
/// `finish_reason`.
fn openai_stream_calls(body: &str) -> (Vec<(String, String, String)>, String, Option<String>) {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    let mut text = String::new();
    let mut finish = None;
    for (_, chunk) in sse(body) {
        assert!(chunk.get("error").is_none(), "the stream failed: {body}");
        for choice in chunk["choices"].as_array().unwrap() {
            let delta = &choice["delta"];
            if let Some(t) = delta["content"].as_str() {
                text.push_str(t);
            }
            for tc in delta["tool_calls"].as_array().into_iter().flatten() {
                let i = tc["index"].as_u64().unwrap() as usize;
                if i == calls.len() {
                    calls.push(Default::default());
                }
                let call = &mut calls[i];
                if let Some(id) = tc["id"].as_str() {
                    call.0.push_str(id);
                }
                if let Some(name) = tc["function"]["name"].as_str() {
                    call.1.push_str(name);
                }
                if let Some(args) = tc["function"]["arguments"].as_str() {
                    call.2.push_str(args);
                }
            }
            if let Some(f) = choice["finish_reason"].as_str() {
                finish = Some(f.to_owned());
            }
        }
    }
    (calls, text, finish)
}

/// `text_tool_recovery: ["test-model"]` on an OpenAI-compatible provider (config.rs
/// `TextRecovery::Models`: "Only for these upstream model ids") never recovers anything
/// through the gateway: `OpenAiClient::recovery_for` matches the list against
/// `request.model`, the model as the *client* named it (the route alias `chat`, or
/// `up/test-model`), not the upstream model id the router passes to `chat_as`. The planner
/// meanwhile asks `recovers_text_tool_calls("test-model")` and gets `true`, so a model
/// without the tools capability is kept in the plan because recovery is on for it, and then
/// the agent receives the `<tool_call>` block as plain text with `finish_reason: "stop"`:
/// the agent never acts (ARCHITECTURE.md problem 3). Right behaviour: recovery listed for
/// the upstream model `test-model` runs whichever name the client used; the SDK gets a
/// structured `get_weather` call and `finish_reason: "tool_calls"`, as with
/// `text_tool_recovery: true`.
#[tokio::test]
async fn recovery_listed_for_the_upstream_model_runs_when_a_route_serves_it() {
    let script = Script::tool_calls_as_text(
        switchyard_testkit::TextCallFormat::Hermes,
        vec![ScriptedCall::new("get_weather", json!({ "city": "Oslo" }))],
    );
    let up = TestUpstream::start(UpstreamConfig::default().default_script(script))
        .await
        .unwrap();
    let mut c = OpenAiConfig::new(up.openai_base_url());
    c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
    c.text_tool_recovery = switchyard_openai::TextRecovery::Models(vec!["test-model".into()]);
    let provider: Arc<dyn switchyard_core::Provider> = Arc::new(OpenAiClient::new(c).unwrap());
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let router = router_over(
        slots,
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    router.catalog().await;
    let config = gateway_config_with_grace(Duration::from_secs(1));
    let base = serve_until_runtime_ends(new_gateway(router, config)).await;
    for model in ["chat", "up/test-model"] {
        let body = post(
            &base,
            "/v1/chat/completions",
            &openai_tool_request(model, true),
        )
        .await;
        let (calls, text, finish) = openai_stream_calls(&body);
        assert_eq!(
            calls.iter().map(|c| c.1.as_str()).collect::<Vec<_>>(),
            vec!["get_weather"],
            "model `{model}`: the call the model wrote as text was not recovered \
             (text: {text:?}, finish_reason: {finish:?})"
        );
        let args: Value = serde_json::from_str(&calls[0].2).unwrap();
        assert_eq!(args, json!({ "city": "Oslo" }));
        assert!(!text.contains("<tool_call>"), "model `{model}`: {text:?}");
        assert_eq!(finish.as_deref(), Some("tool_calls"), "model `{model}`");
    }
}

/// Arguments as a model wrote them: compact, keys already in sorted order, and an integer
/// id beyond 64 bits (a JSON number has no size limit; Python's `json.loads`, which agents
/// built on the `openai` SDK run on `arguments`, reads it exactly).
const WRITTEN_ARGUMENTS: &str = r#"{"order_id":98765432109876543210987,"unit":"c"}"#;

/// A hand-written OpenAI-compatible server on 127.0.0.1 (the testkit renders arguments
/// from a `serde_json::Value`, so it cannot send these bytes): `/v1/models` lists
/// `test-model`; every chat is answered with one `lookup` call whose arguments are
/// [`WRITTEN_ARGUMENTS`], streamed (three fragments) or whole as asked.
async fn raw_openai_upstream() -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break p + 4;
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                while buf.len() < head_end + len {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let body: Value = if len > 0 {
                    serde_json::from_slice(&buf[head_end..head_end + len]).unwrap()
                } else {
                    Value::Null
                };
                let args = Value::String(WRITTEN_ARGUMENTS.to_owned()).to_string();
                let (ctype, payload) = if head.starts_with("get /v1/models") {
                    (
                        "application/json",
                        r#"{"object":"list","data":[{"id":"test-model","object":"model","created":0,"owned_by":"raw"}]}"#.to_owned(),
                    )
                } else if body["stream"] == json!(true) {
                    let head = r#"data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"test-model","choices":[{"index":0,"delta":"#;
                    let (a, b) = WRITTEN_ARGUMENTS.split_at(12);
                    let (b, c) = b.split_at(14);
                    let frag = |s: &str| Value::String(s.to_owned()).to_string();
                    let mut s = String::new();
                    s.push_str(&format!("{head}{{\"role\":\"assistant\",\"content\":null,\"tool_calls\":[{{\"index\":0,\"id\":\"call_W1\",\"type\":\"function\",\"function\":{{\"name\":\"lookup\",\"arguments\":\"\"}}}}]}},\"finish_reason\":null}}]}}\n\n"));
                    for piece in [a, b, c] {
                        s.push_str(&format!("{head}{{\"tool_calls\":[{{\"index\":0,\"function\":{{\"arguments\":{}}}}}]}},\"finish_reason\":null}}]}}\n\n", frag(piece)));
                    }
                    s.push_str(&format!(
                        "{head}{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\n"
                    ));
                    s.push_str("data: {\"id\":\"c1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"test-model\",\"choices\":[],\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":7,\"total_tokens\":16}}\n\n");
                    s.push_str("data: [DONE]\n\n");
                    ("text/event-stream", s)
                } else {
                    (
                        "application/json",
                        format!(
                            r#"{{"id":"c1","object":"chat.completion","created":1,"model":"test-model","choices":[{{"index":0,"message":{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_W1","type":"function","function":{{"name":"lookup","arguments":{args}}}}}]}},"finish_reason":"tool_calls"}}],"usage":{{"prompt_tokens":9,"completion_tokens":7,"total_tokens":16}}}}"#
                        ),
                    )
                };
                let answer = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: {ctype}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{payload}",
                    payload.len()
                );
                let _ = sock.write_all(answer.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

/// A whole (non-streamed) answer rewrites the tool call's `arguments`: the 23-digit
/// `order_id` the model wrote comes out as the float `9.876543210987655e+22`, so an agent
/// built on the `openai` SDK's plain `chat.completions.create` runs its tool with an id the
/// model never wrote (Python reads it as a float, and
/// `int()` of it is 98765432109876553711616). The same answer
/// streamed passes the bytes through unchanged. The cause: a whole answer is folded into
/// `ToolCall.arguments`, a `serde_json::Map` of `Value`s (serde_json without
/// `arbitrary_precision`: a number beyond 64 bits becomes an f64), and written again
/// (switchyard-core `ToolCallAccumulator::finish` / `parse_arguments`, then
/// switchyard-stream `openai/encode.rs` `encode_response`,
/// `serde_json::to_string(&call.arguments)`). OpenAI's chat completions reference: the
/// `arguments` are "the arguments to call the function with, as generated by the model in
/// JSON format" (a string); the gateway should hand on what the upstream sent.
#[tokio::test]
async fn a_whole_answer_keeps_tool_call_arguments_as_the_model_wrote_them() {
    let mut c = OpenAiConfig::new(raw_openai_upstream().await);
    c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
    let provider: Arc<dyn switchyard_core::Provider> = Arc::new(OpenAiClient::new(c).unwrap());
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let router = router_over(
        slots,
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    router.catalog().await;
    let config = gateway_config_with_grace(Duration::from_secs(1));
    let base = serve_until_runtime_ends(new_gateway(router, config)).await;
    let mut request = json!({ "model": "chat",
        "messages": [{ "role": "user", "content": "where is my order?" }],
        "tools": [{ "type": "function", "function": { "name": "lookup", "parameters": {
            "type": "object", "properties": { "order_id": { "type": "integer" }, "unit": { "type": "string" } } } } }] });

    // Streamed: the fragments pass through, joined they are the model's bytes.
    request["stream"] = json!(true);
    let body = post(&base, "/v1/chat/completions", &request).await;
    let (calls, _, finish) = openai_stream_calls(&body);
    assert_eq!(calls.len(), 1, "{body}");
    assert_eq!(calls[0].2, WRITTEN_ARGUMENTS, "{body}");
    assert_eq!(finish.as_deref(), Some("tool_calls"));

    // Whole: the same call must carry the same arguments.
    request["stream"] = json!(false);
    let body = post(&base, "/v1/chat/completions", &request).await;
    let answer: Value = serde_json::from_str(&body).unwrap();
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["id"], "call_W1", "{body}");
    assert_eq!(
        call["function"]["arguments"].as_str(),
        Some(WRITTEN_ARGUMENTS),
        "the whole answer's arguments are not the ones the model wrote: {body}"
    );
}

/// The gateway reorders the properties of a tool's parameter schema alphabetically on its
/// way to the upstream (here an OpenAI-compatible one, the client's own API): the client
/// lists `step_by_step_reasoning` before `final_answer`, the upstream gets `final_answer`
/// first. With strict tools (Structured Outputs) the model writes the keys in the order of
/// the schema (OpenAI's Structured Outputs guide, "Key ordering": "outputs will be produced
/// in the same order as the ordering of keys in the schema"; spring-projects/spring-ai#1335
/// is a user hitting exactly this), so a reasoning-first schema becomes answer-first and
/// the model commits to its answer before reasoning. Constrained decoders of local servers
/// (llama.cpp grammars, Ollama's `format`) order keys the same way. The cause: schemas are
/// kept as `serde_json::Value` and serde_json is built without `preserve_order`, so every
/// object is a `BTreeMap` (workspace Cargo.toml; switchyard-core `ToolSpec::parameters`,
/// switchyard-stream `request_error.rs` `WireTool::into_spec` / `OutTool`). The same holds
/// for `response_format.json_schema.schema`. Right behaviour: the schema reaches the
/// upstream with its keys in the client's order.
#[tokio::test]
async fn tool_schema_properties_reach_the_upstream_in_the_clients_order() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut c = OpenAiConfig::new(up.openai_base_url());
    c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
    let provider: Arc<dyn switchyard_core::Provider> = Arc::new(OpenAiClient::new(c).unwrap());
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let router = router_over(
        slots,
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    router.catalog().await;
    let config = gateway_config_with_grace(Duration::from_secs(1));
    let base = serve_until_runtime_ends(new_gateway(router, config)).await;
    // Written as text so the order is the one a client sends (json! would sort it).
    let body = r#"{"model":"chat","stream":false,
        "messages":[{"role":"user","content":"Is 221 prime?"}],
        "tools":[{"type":"function","function":{"name":"submit","strict":true,
          "parameters":{"type":"object",
            "properties":{"step_by_step_reasoning":{"type":"string"},"final_answer":{"type":"string"}},
            "required":["step_by_step_reasoning","final_answer"],"additionalProperties":false}}}]}"#;
    let r = http_waiting(Duration::from_secs(10))
        .post(format!("{base}/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    let sent = up.chat_requests().last().unwrap().body_text();
    let reasoning = sent
        .find("\"step_by_step_reasoning\"")
        .expect("the property");
    let answer = sent.find("\"final_answer\"").expect("the property");
    assert!(
        reasoning < answer,
        "the tool schema's properties were reordered on the way upstream: {sent}"
    );
}
