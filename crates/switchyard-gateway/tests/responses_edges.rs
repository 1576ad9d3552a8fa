//! Review findings on the Responses API (`/v1/responses`): each test states what OpenAI's
//! reference (or a real client) expects and fails while the gateway does otherwise. Real
//! loopback sockets only: testkit upstreams behind real clients, the router and gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::{Locality, Provider};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

mod support;

use support::{
    gateway_config_with_grace, http, new_gateway, responses_events as events, router_over,
    serve_until_runtime_ends, short_timeouts,
};

const MODEL: &str = "test-model";

/// What a provider slot talks to.
enum Upstream<'a> {
    /// A testkit server speaking Ollama's native API.
    Ollama(&'a TestUpstream),
    /// An OpenAI-compatible server at this base URL (with `/v1`); `responses` marks it as a
    /// server of the Responses API itself (native pass-through).
    OpenAi { base_url: String, responses: bool },
}

/// A gateway on 127.0.0.1:0 with one provider `up` and the route `chat` -> `up/<model>`.
async fn gateway(upstream: Upstream<'_>, model: &str) -> String {
    let provider: Arc<dyn Provider> = match upstream {
        Upstream::Ollama(server) => {
            let mut c = OllamaConfig::new(server.base_url());
            c.client = short_timeouts();
            c.locality = Locality::Local;
            Arc::new(OllamaClient::new(c).unwrap())
        }
        Upstream::OpenAi {
            base_url,
            responses,
        } => {
            let mut c = OpenAiConfig::new(base_url);
            c.client = short_timeouts();
            c.locality = Locality::Local;
            c.responses = responses;
            Arc::new(OpenAiClient::new(c).unwrap())
        }
    };
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let routes = json!({"routes": {"chat": {"targets": [format!("up/{model}")]}}});
    let router = router_over(slots, routes);
    let config = gateway_config_with_grace(Duration::from_secs(1));
    serve_until_runtime_ends(new_gateway(router, config)).await
}

async fn testkit(script: Script) -> TestUpstream {
    TestUpstream::start(UpstreamConfig::default().script(MODEL, script))
        .await
        .unwrap()
}

async fn post(base: &str, body: &Value) -> reqwest::Response {
    http()
        .post(format!("{base}/v1/responses"))
        .json(body)
        .send()
        .await
        .unwrap()
}

fn function_tool(name: &str) -> Value {
    json!({"type": "function", "name": name, "parameters": {"type": "object", "properties": {}}})
}

// OpenAI's reference for `tool_choice` of type `allowed_tools` (openai-python, generated
// from the OpenAPI spec: src/openai/types/responses/tool_choice_allowed.py):
// "Constrains the tools available to the model to a pre-defined set. ... `tools`: A list of
// tool definitions that the model should be allowed to call." The gateway reads only its
// `mode` (switchyard-stream responses/tools.rs, `"allowed_tools" => mode(...)`), so every
// tool of `tools` is still offered to the upstream and the model may call one the client
// did not allow. Ollama has no `tool_choice`, so the only way to honour the set there is to
// offer only the allowed tools.
#[tokio::test]
async fn allowed_tools_tool_choice_offers_only_the_allowed_tools() {
    let up = testkit(Script::text(["ok"])).await;
    let base = gateway(Upstream::Ollama(&up), MODEL).await;
    let body = json!({"model": "chat", "input": "Weather?",
        "tools": [function_tool("get_weather"), function_tool("delete_everything")],
        "tool_choice": {"type": "allowed_tools", "mode": "auto",
                        "tools": [{"type": "function", "name": "get_weather"}]}});
    let r = post(&base, &body).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let sent = up.chat_requests()[0].body_json().unwrap();
    let offered: Vec<&str> = sent["tools"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|t| t["function"]["name"].as_str())
        .collect();
    assert_eq!(
        offered,
        ["get_weather"],
        "a tool outside `allowed_tools` reached the model: {sent}"
    );
}

// OpenAI's reference for `GET /v1/responses/{id}/input_items` (openai-python, generated
// from the OpenAPI spec: src/openai/types/responses/input_item_list_params.py) lists the
// cursor `before`: "An item ID to list items before, used in pagination." The gateway's
// paging parameters (switchyard-gateway responses/items.rs, `struct Page`: `order`,
// `limit`, `after`) have no `before`; it is silently ignored and the whole list comes back,
// so a client paging backwards gets the same page again.
#[tokio::test]
async fn input_items_honour_the_before_cursor() {
    let up = testkit(Script::text(["ok"])).await;
    let base = gateway(Upstream::Ollama(&up), MODEL).await;
    let body = json!({"model": "chat", "input": [
        {"type": "message", "id": "msg_a", "role": "user", "content": "one"},
        {"type": "message", "id": "msg_b", "role": "user", "content": "two"},
        {"type": "message", "id": "msg_c", "role": "user", "content": "three"}]});
    let resp: Value = post(&base, &body).await.json().await.unwrap();
    let id = resp["id"].as_str().unwrap();
    let r = http()
        .get(format!(
            "{base}/v1/responses/{id}/input_items?order=asc&before=msg_c"
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let page: Value = r.json().await.unwrap();
    let ids: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["msg_a", "msg_b"], "items before `msg_c`: {page}");
}

// OpenAI's `metadata` (openai-python, generated from the OpenAPI spec:
// src/openai/types/shared/metadata.py) is `Dict[str, str]`; the API reference: "Keys are
// strings with a maximum length of 64 characters. Values are strings with a maximum length
// of 512 characters." The gateway decodes it as any JSON map (switchyard-stream
// responses/request.rs, `metadata: Option<Map<String, Value>>`), so a non-string value is
// accepted, stored and echoed instead of being a 400 naming the field.
#[tokio::test]
async fn metadata_values_must_be_strings() {
    let up = testkit(Script::text(["ok"])).await;
    let base = gateway(Upstream::Ollama(&up), MODEL).await;
    let body = json!({"model": "chat", "input": "hi", "metadata": {"attempt": 5}});
    let r = post(&base, &body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 400, "{text}");
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["type"], "invalid_request_error", "{err}");
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("metadata"),
        "{err}"
    );
    assert_eq!(up.chat_request_count(), 0);
}

// A Responses stream that fails after its first byte ends with `error` and then
// `response.failed` (the gateway's own translated streams do exactly this, see
// docs/DECISIONS.md "Errors after the first byte write `error` and then `response.failed`";
// OpenAI's streaming reference: `response.failed` is "emitted when a response fails").
// Codex reads the failure only from `response.failed` (codex-rs/codex-api/src/sse/
// responses.rs, `process_sse`: `"response.failed"` sets the error from
// `response.error.code`, e.g. `context_length_exceeded`; an `error` event falls into
// `_ => {}`). Native pass-through promises the upstream's events byte for byte, yet its
// decoder stops at the upstream's `error` event (switchyard-stream responses/passthrough.rs,
// `"error" => { self.ended = true; ... return Err(..) }`, and `feed` loops only
// `while !self.ended`), and `NativeSink::encode_error` then adds nothing because the
// stream counts as ended: the upstream's own `response.failed` that follows the `error`
// is dropped and the client's stream ends on `error`.
//
// The pass-through upstream here is a second gateway (a real Responses server on
// loopback) in front of a testkit Ollama upstream that breaks off after its first chunk.
#[tokio::test]
async fn a_passed_through_stream_keeps_the_upstreams_response_failed_after_its_error() {
    let chat =
        testkit(Script::text(["Hel", "lo"]).with_fault(Fault::ErrorLine("model crashed".into())))
            .await;
    let inner = gateway(Upstream::Ollama(&chat), MODEL).await;
    let body = json!({"model": "chat", "input": "Hi", "stream": true});

    // What the Responses server itself sends: `error`, then `response.failed`.
    let direct = events(&post(&inner, &body).await.text().await.unwrap());
    let names: Vec<&str> = direct.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names[names.len() - 2..], ["error", "response.failed"]);

    // The same answer passed through a gateway that routes to that server natively.
    let outer = gateway(
        Upstream::OpenAi {
            base_url: format!("{inner}/v1"),
            responses: true,
        },
        "chat",
    )
    .await;
    let r = post(&outer, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/chat");
    let passed = events(&r.text().await.unwrap());
    let names: Vec<&str> = passed.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(
        names.last().copied(),
        Some("response.failed"),
        "the stream must end with `response.failed`: {names:?}"
    );
    let failed = &passed.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("model crashed"),
        "{failed}"
    );
}
