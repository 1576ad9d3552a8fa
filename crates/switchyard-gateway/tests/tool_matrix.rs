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
