//! Issue 18's answer side over real loopback sockets (a plain HTTP client in front of the
//! gateway, a testkit Ollama upstream behind the real client and the router): unknown tool
//! calls removed by `drop_unknown_tool_calls` on every client API, streamed and whole, and
//! the `x-switchyard-skipped` header naming the targets a plan skipped.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_gateway::SKIPPED_HEADER;
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{ModelSpec, Script, ScriptedCall, TestUpstream, UpstreamConfig};

mod support;

use support::{
    gateway_config_with_grace, http_waiting, new_gateway, router_over, serve_until_runtime_ends,
};

/// The gateway on 127.0.0.1:0 over one Ollama upstream (provider `local`), with `routes`.
async fn gateway_over(up: &TestUpstream, routes: Value) -> String {
    let mut c = OllamaConfig::new(up.base_url());
    c.client.timeouts = switchyard_testkit::support::timeouts(2000, 2000);
    let provider = Arc::new(OllamaClient::new(c).unwrap());
    let slots = vec![ProviderSlot::new("local", provider, Locality::Local)];
    let router = router_over(slots, json!({ "routes": routes }));
    // Discovery (`/api/show`) tells the router what each model can do.
    router.catalog().await;
    let config = gateway_config_with_grace(Duration::from_secs(1));
    serve_until_runtime_ends(new_gateway(router, config)).await
}

/// The client APIs: path and a request body for `model` offering the tool `search`.
fn requests(model: &str, stream: bool) -> Vec<(&'static str, Value)> {
    let params = json!({ "type": "object", "properties": {} });
    let openai_tools = json!([{ "type": "function",
                                "function": { "name": "search", "parameters": params } }]);
    let user = json!([{ "role": "user", "content": "go" }]);
    vec![
        (
            "/v1/chat/completions",
            json!({ "model": model, "messages": user, "tools": openai_tools, "stream": stream }),
        ),
        (
            "/api/chat",
            json!({ "model": model, "messages": user, "tools": openai_tools, "stream": stream }),
        ),
        (
            "/v1/messages",
            json!({ "model": model, "messages": user, "max_tokens": 64, "stream": stream,
                    "tools": [{ "name": "search", "input_schema": params }] }),
        ),
        (
            "/v1/responses",
            json!({ "model": model, "input": "go", "stream": stream,
                    "tools": [{ "type": "function", "name": "search", "parameters": params }] }),
        ),
    ]
}

async fn post(base: &str, path: &str, body: &Value) -> (reqwest::header::HeaderMap, String) {
    let r = http_waiting(Duration::from_secs(10))
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{path}");
    let headers = r.headers().clone();
    (headers, r.text().await.unwrap())
}

#[tokio::test]
async fn unknown_tool_calls_are_dropped_on_every_client_api_streamed_and_whole() {
    let rm_rf = || ScriptedCall::new("rm_rf", json!({ "path": "/etc" }));
    let search = ScriptedCall::new("search", json!({ "q": "weather" }));
    let config = UpstreamConfig::empty()
        .model_with_script("mixed", Script::tool_calls(vec![rm_rf(), search]))
        .model_with_script("rogue", Script::tool_calls(vec![rm_rf()]))
        .model_with_script("open", Script::tool_calls(vec![rm_rf()]));
    let up = TestUpstream::start(config).await.unwrap();
    let base = gateway_over(
        &up,
        json!({ "mixed": { "targets": ["local/mixed"], "drop_unknown_tool_calls": true },
                "rogue": { "targets": ["local/rogue"], "drop_unknown_tool_calls": true },
                "open": { "targets": ["local/open"] } }),
    )
    .await;
    for stream in [true, false] {
        for (path, body) in requests("mixed", stream) {
            let (_, answer) = post(&base, path, &body).await;
            let at = format!("{path} stream={stream}: {answer}");
            assert!(!answer.contains("rm_rf"), "{at}");
            assert!(!answer.contains("/etc"), "{at}");
            assert!(
                answer.contains("search") && answer.contains("weather"),
                "{at}"
            );
        }
        for (path, body) in requests("rogue", stream) {
            let (_, answer) = post(&base, path, &body).await;
            let at = format!("{path} stream={stream}: {answer}");
            assert!(!answer.contains("rm_rf"), "{at}");
            // The finish reason no longer says the model called tools.
            let finish = [
                "\"finish_reason\":\"stop\"",
                "\"done_reason\":\"stop\"",
                "\"stop_reason\":\"end_turn\"",
                "\"status\":\"completed\"",
            ];
            assert!(finish.iter().any(|f| answer.contains(f)), "{at}");
            for tool_finish in ["\"tool_calls\"", "\"tool_use\"", "\"function_call\""] {
                assert!(!answer.contains(tool_finish), "{at}");
            }
        }
        // Without the option the call reaches the client.
        for (path, body) in requests("open", stream) {
            let (_, answer) = post(&base, path, &body).await;
            assert!(answer.contains("rm_rf"), "{path} stream={stream}: {answer}");
        }
    }
}

#[tokio::test]
async fn skipped_targets_are_named_in_a_header_and_the_route_reason_keeps_its_meaning() {
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model(ModelSpec::new("plain:1b").capabilities(["completion"]))
            .script("plain:1b", Script::text(["plain"]))
            .model(ModelSpec::new("tooled:8b"))
            .script("tooled:8b", Script::text(["tooled"])),
    )
    .await
    .unwrap();
    let base = gateway_over(
        &up,
        json!({ "chat": { "targets": ["local/plain:1b", "local/tooled:8b"] },
                "plain": { "targets": ["local/plain:1b"] } }),
    )
    .await;
    for stream in [true, false] {
        for (path, body) in requests("chat", stream) {
            let (headers, answer) = post(&base, path, &body).await;
            let at = format!("{path} stream={stream}: {headers:?}");
            assert!(answer.contains("tooled"), "{at}");
            assert_eq!(
                headers.get(SKIPPED_HEADER).map(|v| v.to_str().unwrap()),
                Some("local/plain:1b=model_lacks_tools"),
                "{at}"
            );
            assert_eq!(headers["x-switchyard-target"], "local/tooled:8b", "{at}");
            assert_eq!(headers["x-switchyard-route-reason"], "fallback", "{at}");
        }
    }
    // A refusal names the skips too.
    for (path, body) in requests("plain", false) {
        let r = http_waiting(Duration::from_secs(10))
            .post(format!("{base}{path}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert_eq!(
            r.headers().get(SKIPPED_HEADER).map(|v| v.to_str().unwrap()),
            Some("local/plain:1b=model_lacks_tools"),
            "{path}"
        );
    }
    // Nothing skipped: no header.
    let mut plain = requests("chat", false).remove(0).1;
    plain.as_object_mut().unwrap().remove("tools");
    let (headers, _) = post(&base, "/v1/chat/completions", &plain).await;
    assert!(headers.get(SKIPPED_HEADER).is_none(), "{headers:?}");
    assert_eq!(headers["x-switchyard-route-reason"], "primary");
}
