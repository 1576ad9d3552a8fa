//! The Responses API (`/v1/responses`) over real loopback sockets: a plain HTTP client in
//! front of the gateway, testkit upstreams (Ollama native and OpenAI chat) behind real
//! clients and the router. Tool round trips (function and custom tools), reasoning, images,
//! structured output, streaming and not, upstream errors before and after the first byte,
//! `previous_response_id` chains, the store endpoints, `store: false`, and privacy of
//! continued conversations; native pass-through to upstreams that serve `/v1/responses`
//! (byte-identical bodies and streams, accounting, fallback to chat targets, errors after
//! the first byte, privacy, hosted tools, stored pass-through responses, compaction).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::{Locality, Provider};
use switchyard_gateway::{ApiKey, GatewayConfig};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

mod support;

use support::{
    gateway_config_with_grace, http, metrics_handle, new_gateway, responses_events as events,
    router_over, serve_until_runtime_ends, short_timeouts,
};

const MODEL: &str = "test-model";

/// One upstream behind the gateway: its name, whether it speaks Ollama natively, locality.
struct Up {
    name: &'static str,
    ollama: bool,
    locality: Locality,
    server: TestUpstream,
    /// An OpenAI-compatible upstream that serves `/v1/responses` (`responses: true`).
    responses: bool,
}

impl Up {
    async fn start(name: &'static str, ollama: bool, locality: Locality, script: Script) -> Up {
        let config = UpstreamConfig::default().script(MODEL, script);
        Self::start_with(name, ollama, locality, config).await
    }

    async fn start_with(
        name: &'static str,
        ollama: bool,
        locality: Locality,
        config: UpstreamConfig,
    ) -> Up {
        let server = TestUpstream::start(config).await.unwrap();
        Up {
            name,
            ollama,
            locality,
            server,
            responses: false,
        }
    }

    /// Marks the (OpenAI-compatible) upstream as a server of the Responses API.
    fn native(mut self) -> Up {
        self.responses = true;
        self
    }

    fn provider(&self) -> Arc<dyn Provider> {
        let client = short_timeouts();
        if self.ollama {
            let mut c = OllamaConfig::new(self.server.base_url());
            c.client = client;
            c.locality = self.locality;
            Arc::new(OllamaClient::new(c).unwrap())
        } else {
            let mut c = OpenAiConfig::new(self.server.openai_base_url());
            c.client = client;
            c.locality = self.locality;
            c.responses = self.responses;
            Arc::new(OpenAiClient::new(c).unwrap())
        }
    }

    /// The JSON bodies of the chat requests this upstream received.
    fn bodies(&self) -> Vec<Value> {
        self.server
            .chat_requests()
            .iter()
            .map(|r| r.body_json().unwrap())
            .collect()
    }
}

/// The gateway on 127.0.0.1:0 over `ups`, with `routes` and `keys`.
async fn serve(ups: &[&Up], routes: Value, keys: Vec<ApiKey>) -> String {
    let slots = ups
        .iter()
        .map(|u| ProviderSlot::new(u.name, u.provider(), u.locality))
        .collect();
    let router = router_over(slots, json!({ "routes": routes }));
    serve_until_runtime_ends(new_gateway(router, config_with(keys))).await
}

/// The gateway configuration of these tests, with `keys`.
fn config_with(keys: Vec<ApiKey>) -> GatewayConfig {
    GatewayConfig {
        keys,
        ..gateway_config_with_grace(Duration::from_secs(1))
    }
}

fn one_route(target: &str) -> Value {
    json!({ "chat": { "targets": [target] } })
}

async fn post(base: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = http().post(format!("{base}/v1/responses")).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

/// The final response object of a streamed answer.
fn final_of(events: &[(String, Value)]) -> &Value {
    &events.last().unwrap().1["response"]
}

fn weather_tool() -> Value {
    json!({"type": "function", "name": "get_weather", "description": "Weather of a city",
           "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                          "required": ["city"]}, "strict": true})
}

#[tokio::test]
async fn function_tool_round_trip_to_ollama_streamed() {
    let call = ScriptedCall::new("get_weather", json!({"city": "Paris"}));
    let up = Up::start("up", true, Locality::Local, Script::tool_calls(vec![call])).await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;

    let first = json!({"model": "chat", "stream": true, "store": false,
        "instructions": "Use tools.", "input": "Weather in Paris?", "tools": [weather_tool()],
        "reasoning": {"effort": "low", "summary": "auto"},
        "include": ["reasoning.encrypted_content"]});
    let r = post(&base, None, &first).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let evs = events(&r.text().await.unwrap());
    let kinds: Vec<&str> = evs.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(kinds[..2], ["response.created", "response.in_progress"]);
    assert!(kinds.contains(&"response.function_call_arguments.done"));
    let out = &final_of(&evs)["output"][0];
    assert_eq!(out["type"], "function_call");
    assert_eq!(out["name"], "get_weather");
    assert_eq!(
        serde_json::from_str::<Value>(out["arguments"].as_str().unwrap()).unwrap(),
        json!({"city": "Paris"})
    );
    let call_id = out["call_id"].as_str().unwrap().to_owned();
    // Ollama gets `think` as a level, never the summary setting.
    let sent = &up.bodies()[0];
    assert_eq!(sent["think"], "low");
    assert!(!sent.to_string().contains("summary"), "{sent}");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");

    // The client sends the whole history back with the tool's output (as Codex does).
    up.server
        .set_script(MODEL, Script::text(["It is ", "sunny."]));
    let second = json!({"model": "chat", "stream": true, "store": false,
        "input": [{"role": "user", "content": "Weather in Paris?"}, out,
                  {"type": "function_call_output", "call_id": call_id, "output": "22C sunny"}],
        "tools": [weather_tool()]});
    let evs = events(&post(&base, None, &second).await.text().await.unwrap());
    let done = final_of(&evs);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["output"][0]["content"][0]["text"], "It is sunny.");
    assert!(done["usage"]["total_tokens"].as_u64().unwrap() > 0);
    let sent = &up.bodies()[1];
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    assert_eq!(messages[2]["role"], "tool");
    assert_eq!(messages[2]["content"], "22C sunny");
}

#[tokio::test]
async fn custom_tool_round_trip_to_openai_chat_upstream_with_previous_response_id() {
    let patch = "*** Begin Patch\n*** Add File: a.txt\n+hi\n*** End Patch";
    let call = ScriptedCall::new("apply_patch", json!({ "input": patch }));
    let up = Up::start("up", false, Locality::Local, Script::tool_calls(vec![call])).await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    let tools = json!([{"type": "custom", "name": "apply_patch", "description": "Edit files",
                        "format": {"type": "grammar", "syntax": "lark", "definition": "start: /.+/"}}]);

    let first = json!({"model": "chat", "input": "Add a.txt", "tools": tools});
    let r = post(&base, None, &first).await;
    assert_eq!(r.status(), 200);
    let resp: Value = r.json().await.unwrap();
    assert_eq!(resp["object"], "response");
    assert_eq!(resp["status"], "completed");
    let out = &resp["output"][0];
    assert_eq!(out["type"], "custom_tool_call");
    assert_eq!(out["input"], patch);
    // The chat upstream was offered the custom tool as a function with one string `input`.
    let offered = &up.bodies()[0]["tools"][0]["function"];
    assert_eq!(offered["name"], "apply_patch");
    assert_eq!(
        offered["parameters"]["properties"]["input"]["type"],
        "string"
    );

    up.server.set_script(MODEL, Script::text(["Added."]));
    let second = json!({"model": "chat", "previous_response_id": resp["id"], "tools": tools,
        "input": [{"type": "custom_tool_call_output", "call_id": out["call_id"], "output": "Done!"}]});
    let resp2: Value = post(&base, None, &second).await.json().await.unwrap();
    assert_eq!(resp2["output"][0]["content"][0]["text"], "Added.");
    assert_eq!(resp2["previous_response_id"], resp["id"]);
    let messages = up.bodies()[1]["messages"].as_array().unwrap().clone();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "tool"]);
    assert_eq!(messages[1]["tool_calls"][0]["id"], out["call_id"]);
    assert_eq!(messages[2]["tool_call_id"], out["call_id"]);
}

#[tokio::test]
async fn reasoning_image_and_structured_output_to_ollama() {
    let script = Script::thinking_then_text(["Look", "ing."], ["{\"animal\":", "\"cat\"}"]);
    let up = Up::start("up", true, Locality::Local, script).await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    let body = json!({"model": "chat", "stream": true,
        "input": [{"role": "user", "content": [
            {"type": "input_text", "text": "What animal?"},
            {"type": "input_image", "image_url": "data:image/png;base64,iVBORw0KGgo="}]}],
        "reasoning": {"effort": "high"},
        "text": {"format": {"type": "json_schema", "name": "animal", "strict": true,
                 "schema": {"type": "object", "properties": {"animal": {"type": "string"}}}}}});
    let evs = events(&post(&base, None, &body).await.text().await.unwrap());
    let kinds: Vec<&str> = evs.iter().map(|(e, _)| e.as_str()).collect();
    assert!(
        kinds.contains(&"response.reasoning_text.delta"),
        "{kinds:?}"
    );
    let done = final_of(&evs);
    assert_eq!(done["output"][0]["type"], "reasoning");
    assert_eq!(done["output"][0]["content"][0]["text"], "Looking.");
    assert_eq!(
        done["output"][1]["content"][0]["text"],
        "{\"animal\":\"cat\"}"
    );
    assert_eq!(done["text"]["format"]["name"], "animal");
    let sent = &up.bodies()[0];
    assert_eq!(sent["messages"][0]["images"][0], "iVBORw0KGgo=");
    assert_eq!(sent["format"]["properties"]["animal"]["type"], "string");
    assert_eq!(sent["think"], "high");
}

#[tokio::test]
async fn length_stop_is_incomplete() {
    let script = Script::text(["Par"]).with_finish_reason("length");
    let up = Up::start("up", false, Locality::Local, script).await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    let body = json!({"model": "chat", "input": "Write a novel", "max_output_tokens": 1});
    let resp: Value = post(&base, None, &body).await.json().await.unwrap();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(up.bodies()[0]["max_tokens"], 1);
}

#[tokio::test]
async fn upstream_errors_before_and_after_the_first_byte() {
    let fault = Fault::HttpError {
        status: 500,
        message: "boom".into(),
    };
    let up = Up::start(
        "up",
        true,
        Locality::Local,
        Script::default().with_fault(fault),
    )
    .await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    for stream in [false, true] {
        let body = json!({"model": "chat", "input": "Hi", "stream": stream});
        let r = post(&base, None, &body).await;
        assert_eq!(r.status(), 502, "stream: {stream}");
        let err: Value = r.json().await.unwrap();
        assert_eq!(err["error"]["code"], "upstream_error");
    }

    up.server.set_script(
        MODEL,
        Script::text(["Hel", "lo"]).with_fault(Fault::ErrorLine("model crashed".into())),
    );
    let body = json!({"model": "chat", "input": "Hi", "stream": true});
    let r = post(&base, None, &body).await;
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    let (last, data) = evs.last().unwrap();
    assert_eq!(last, "response.failed");
    assert_eq!(data["response"]["status"], "failed");
    assert!(
        data["response"]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("model crashed")
    );
    assert!(evs.iter().any(|(e, _)| e == "error"));
}

#[tokio::test]
async fn stored_responses_get_list_delete_and_store_false() {
    let up = Up::start("up", true, Locality::Local, Script::text(["Hi!"])).await;
    let keys = vec![
        ApiKey::new("alice", "sk-alice"),
        ApiKey::new("bob", "sk-bob"),
    ];
    let base = serve(&[&up], one_route("up/test-model"), keys).await;
    let body = json!({"model": "chat", "input": [{"role": "user", "content": "Hello"}],
                      "metadata": {"topic": "greeting"}});
    let resp: Value = post(&base, Some("sk-alice"), &body)
        .await
        .json()
        .await
        .unwrap();
    let id = resp["id"].as_str().unwrap();
    assert!(id.starts_with("resp_"));
    assert_eq!(resp["metadata"]["topic"], "greeting");
    let url = format!("{base}/v1/responses/{id}");

    let got: Value = http()
        .get(&url)
        .bearer_auth("sk-alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got, resp);
    let items: Value = http()
        .get(format!("{url}/input_items"))
        .bearer_auth("sk-alice")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(items["object"], "list");
    assert_eq!(items["data"][0]["content"], "Hello");
    assert!(items["data"][0]["id"].is_string());

    // Another key does not see it, nor can it continue it.
    let r = http().get(&url).bearer_auth("sk-bob").send().await.unwrap();
    assert_eq!(r.status(), 404);
    let cont = json!({"model": "chat", "input": "more", "previous_response_id": id});
    let r = post(&base, Some("sk-bob"), &cont).await;
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains(id));

    let r = http()
        .delete(&url)
        .bearer_auth("sk-alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["deleted"], true);
    let r = http()
        .get(&url)
        .bearer_auth("sk-alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);

    let unstored = json!({"model": "chat", "input": "Hello", "store": false});
    let resp: Value = post(&base, Some("sk-alice"), &unstored)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resp["store"], false);
    let url = format!("{base}/v1/responses/{}", resp["id"].as_str().unwrap());
    let r = http()
        .get(&url)
        .bearer_auth("sk-alice")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn a_local_only_conversation_never_continues_in_the_cloud() {
    let cloud = Up::start("cloud", false, Locality::Cloud, Script::text(["cloud"])).await;
    let local = Up::start("up", true, Locality::Local, Script::text(["local"])).await;
    let routes = json!({ "chat": { "targets": ["cloud/test-model", "up/test-model"] } });
    let base = serve(&[&cloud, &local], routes, Vec::new()).await;
    let secret = json!({"model": "chat", "input": "my secret"});

    // Without a privacy class the route's first step, the cloud, serves.
    let r = post(&base, None, &secret).await;
    assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    assert_eq!(cloud.server.chat_request_count(), 1);

    let r = http()
        .post(format!("{base}/v1/responses"))
        .header("x-switchyard-privacy", "local-only")
        .json(&secret)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let first: Value = r.json().await.unwrap();

    // The continuation states no class; it keeps the conversation's.
    let cont = json!({"model": "chat", "input": "and more", "previous_response_id": first["id"]});
    let r = post(&base, None, &cont).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(
        cloud.server.chat_request_count(),
        1,
        "history never reached the cloud"
    );
    let history = &local.bodies()[1]["messages"];
    assert_eq!(history[0]["content"], "my secret");

    // With the local target down, the continuation fails loudly rather than fall back.
    local.server.set_fault(Some(Fault::Refuse));
    let r = post(&base, None, &cont).await;
    assert!(
        r.status().is_server_error() || r.status() == 403,
        "{}",
        r.status()
    );
    assert_eq!(cloud.server.chat_request_count(), 1);
}

/// A conversation started on a `local-only` route reached through a wildcard alias keeps
/// that class: its continuation on another route never reaches the cloud (the stored class
/// came from an exact alias lookup, which a wildcard or `:latest` spelling missed).
#[tokio::test]
async fn a_conversation_on_a_wildcard_local_only_route_keeps_its_privacy() {
    let cloud = Up::start("cloud", false, Locality::Cloud, Script::text(["cloud"])).await;
    let local = Up::start("up", true, Locality::Local, Script::text(["local"])).await;
    let routes = json!({
        "secret-*": { "targets": ["up/test-model"], "privacy": "local-only" },
        "open": { "targets": ["cloud/test-model", "up/test-model"] },
    });
    let base = serve(&[&cloud, &local], routes, Vec::new()).await;
    let r = post(
        &base,
        None,
        &json!({"model": "secret-notes", "input": "my secret"}),
    )
    .await;
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let first: Value = r.json().await.unwrap();
    let cont = json!({"model": "open", "input": "and more", "previous_response_id": first["id"]});
    let r = post(&base, None, &cont).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(
        cloud.server.chat_request_count(),
        0,
        "the local-only conversation reached the cloud"
    );
}

/// A conversation whose turn a task rule sent to a `local-only` route is stored without that
/// class, and its next turn (no task header) carries the secret history to the cloud.
///
/// docs/DECISIONS.md: "A stored conversation keeps the strictest privacy class of its
/// request, caller, route and the default; a continuation is never less strict", and "Task
/// rules never lift privacy": the turn was planned and served as `local-only` (the route
/// the rule picked), but `conversation_privacy` (responses/mod.rs) recomputes the class from
/// the requested name (`route_privacy("chat")`, which has none) instead of keeping the class
/// the request was planned under. Right: the continuation stays on local targets (the
/// cloud gets nothing).
#[tokio::test]
async fn a_conversation_a_task_rule_sent_to_a_local_only_route_keeps_its_privacy() {
    let cloud = Up::start("cloud", false, Locality::Cloud, Script::text(["cloud"])).await;
    let local = Up::start("up", true, Locality::Local, Script::text(["local"])).await;
    let routes = json!({
        "chat": { "targets": ["cloud/test-model", "up/test-model"],
                  "rules": [ { "task": "secret", "to": "private" } ] },
        "private": { "targets": ["up/test-model"], "privacy": "local-only" },
    });
    let base = serve(&[&cloud, &local], routes, Vec::new()).await;
    let r = http()
        .post(format!("{base}/v1/responses"))
        .header("x-switchyard-task", "secret")
        .json(&json!({"model": "chat", "input": "my secret"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let first: Value = r.json().await.unwrap();
    assert_eq!(cloud.server.chat_request_count(), 0);

    let cont = json!({"model": "chat", "input": "and more", "previous_response_id": first["id"]});
    let r = post(&base, None, &cont).await;
    let target = r
        .headers()
        .get("x-switchyard-target")
        .map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(
        cloud.server.chat_request_count(),
        0,
        "the local-only conversation (\"my secret\") reached the cloud: {target:?}"
    );
    assert_eq!(target.as_deref(), Some("up/test-model"));
}

#[tokio::test]
async fn hosted_tools_are_refused_by_name_unless_the_route_drops_them() {
    let up = Up::start("up", true, Locality::Local, Script::text(["ok"])).await;
    let routes = json!({ "chat": { "targets": ["up/test-model"] },
                         "lenient": { "targets": ["up/test-model"], "drop_unsupported_tools": true } });
    let base = serve(&[&up], routes, Vec::new()).await;
    let tools = json!([weather_tool(), {"type": "web_search"}]);
    let r = post(
        &base,
        None,
        &json!({"model": "chat", "input": "x", "tools": tools}),
    )
    .await;
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert!(
        err["error"]["message"]
            .as_str()
            .unwrap()
            .contains("web_search"),
        "{err}"
    );
    assert_eq!(up.server.chat_request_count(), 0);

    let r = post(
        &base,
        None,
        &json!({"model": "lenient", "input": "x", "tools": tools}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let sent = &up.bodies()[0];
    assert_eq!(sent["tools"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn bad_requests_are_400_in_openai_shape() {
    let up = Up::start("up", true, Locality::Local, Script::text(["ok"])).await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    for (body, needle) in [
        (json!({"model": "chat", "input": []}), "input"),
        (
            json!({"model": "chat", "input": "x", "reasoning": {"effort": "huge"}}),
            "reasoning.effort",
        ),
        (
            json!({"model": "chat", "input": "x", "previous_response_id": "resp_nope"}),
            "resp_nope",
        ),
    ] {
        let r = post(&base, None, &body).await;
        assert!(r.status() == 400 || r.status() == 404, "{}", r.status());
        let err: Value = r.json().await.unwrap();
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{err}"
        );
    }
    assert_eq!(up.server.chat_request_count(), 0);
}

#[tokio::test]
async fn agent_loop_on_one_model_calls_the_tool_then_answers() {
    // The same model answers a call first and text once the conversation ends with the
    // tool's result: the loop an agent SDK (or Codex) runs with `previous_response_id`.
    let call = ScriptedCall::new("get_weather", json!({"city": "Oslo"}));
    let config = UpstreamConfig::default()
        .script(MODEL, Script::tool_calls(vec![call]))
        .after_tool_result(MODEL, Script::text(["Sunny in Oslo."]));
    for ollama in [true, false] {
        let up = Up::start_with("up", ollama, Locality::Local, config.clone()).await;
        let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
        let body = json!({"model": "chat", "input": "Weather?", "tools": [weather_tool()]});
        let first: Value = post(&base, None, &body).await.json().await.unwrap();
        let call = &first["output"][0];
        assert_eq!(call["type"], "function_call", "{first}");
        let body = json!({"model": "chat", "previous_response_id": first["id"],
            "tools": [weather_tool()],
            "input": [{"type": "function_call_output", "call_id": call["call_id"], "output": "sunny"}]});
        let second: Value = post(&base, None, &body).await.json().await.unwrap();
        assert_eq!(
            second["output"][0]["content"][0]["text"], "Sunny in Oslo.",
            "{second}"
        );
        assert_eq!(up.server.chat_request_count(), 2);
    }
}

#[tokio::test]
async fn compact_asks_the_routed_model_for_a_summary() {
    let up = Up::start(
        "up",
        true,
        Locality::Local,
        Script::text(["We fixed ", "the parser."]),
    )
    .await;
    let base = serve(&[&up], one_route("up/test-model"), Vec::new()).await;
    let body = json!({"model": "chat", "instructions": "You are Codex.", "tools": [weather_tool()],
        "input": [{"role": "user", "content": "Fix the parser"},
                  {"role": "assistant", "content": [{"type": "output_text", "text": "Done."}]}]});
    let r = http()
        .post(format!("{base}/v1/responses/compact"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let got: Value = r.json().await.unwrap();
    assert_eq!(got["object"], "response.compaction");
    let item = &got["output"][0];
    assert_eq!(item["role"], "user");
    let text = item["content"][0]["text"].as_str().unwrap();
    assert!(text.ends_with("We fixed the parser."), "{text}");
    // The model got the whole conversation and the request for a summary, and no tools.
    let sent = &up.bodies()[0];
    let messages = sent["messages"].as_array().unwrap();
    assert_eq!(messages[1]["content"], "Fix the parser");
    assert!(
        messages.last().unwrap()["content"]
            .as_str()
            .unwrap()
            .starts_with("Summarize")
    );
    assert!(
        sent.get("tools")
            .is_none_or(|t| t.as_array().is_some_and(Vec::is_empty)),
        "{sent}"
    );
}

#[tokio::test]
async fn falls_back_before_the_first_byte_like_the_other_apis() {
    let down = Up::start("down", true, Locality::Local, Script::text(["never"])).await;
    down.server.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "loading".into(),
    }));
    let up = Up::start("up", false, Locality::Lan, Script::text(["served"])).await;
    let routes = json!({ "chat": { "targets": ["down/test-model", "up/test-model"] } });
    let base = serve(&[&down, &up], routes, Vec::new()).await;
    for stream in [true, false] {
        let body = json!({"model": "chat", "input": "Hi", "stream": stream});
        let r = post(&base, None, &body).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
        let reason = r.headers()["x-switchyard-route-reason"].to_str().unwrap();
        assert!(reason.starts_with("fallback"), "{reason}");
        assert!(r.text().await.unwrap().contains("served"));
    }
}

// ---- Native pass-through to upstreams that serve `/v1/responses` (`responses: true`) ----

/// Decision records, as the router reports them.
#[derive(Debug, Default)]
struct Records(std::sync::Mutex<Vec<switchyard_router::DecisionRecord>>);

impl switchyard_router::DecisionObserver for Records {
    fn on_decision(&self, record: &switchyard_router::DecisionRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

/// What Codex sends: an encrypted reasoning item, a hosted tool, `include`, and members
/// the gateway does not model (`prompt_cache_key`, `text.verbosity`).
const CODEX_BODY: &str = r#"{"model":"chat","instructions":"Be brief.","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]},{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB\u002bopaque\/blob=="},{"type":"message","role":"user","content":[{"type":"input_text","text":"again"}]}],"tools":[{"type":"web_search","search_context_size":"low"},{"type":"function","name":"get_weather","parameters":{"type":"object"},"strict":false}],"tool_choice":"auto","parallel_tool_calls":false,"reasoning":{"effort":"medium","summary":"auto"},"store":false,"stream":true,"include":["reasoning.encrypted_content"],"prompt_cache_key":"k1","text":{"verbosity":"low"}}"#;

async fn post_raw(base: &str, key: Option<&str>, path: &str, body: &str) -> reqwest::Response {
    let mut req = http()
        .post(format!("{base}{path}"))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

/// The upstream's own answer to `body` (asked directly): the golden bytes.
async fn golden(up: &Up, path: &str, body: &str) -> String {
    post_raw(
        &up.server.openai_base_url().replace("/v1", ""),
        None,
        &format!("/v1{path}"),
        body,
    )
    .await
    .text()
    .await
    .unwrap()
}

/// The gateway over `ups` with a decision observer and a priced cloud model.
async fn serve_observed(ups: &[&Up], config: Value, keys: Vec<ApiKey>) -> (String, Arc<Records>) {
    let slots = ups
        .iter()
        .map(|u| {
            let mut slot = ProviderSlot::new(u.name, u.provider(), u.locality);
            let mut priced = switchyard_core::ModelInfo::new(MODEL, u.locality);
            priced.price = Some(switchyard_core::Price {
                input_usd_per_mtok: 1.0,
                output_usd_per_mtok: 2.0,
                ..Default::default()
            });
            slot.models = vec![priced];
            slot
        })
        .collect();
    let records = Arc::new(Records::default());
    let config: RouterConfig = serde_json::from_value(config).unwrap();
    let router = Router::new(config, slots, Arc::new(MemoryLedger::new()))
        .unwrap()
        .with_observer(records.clone());
    let gateway = new_gateway(router, config_with(keys)).with_metrics_handle(metrics_handle());
    (serve_until_runtime_ends(gateway).await, records)
}

/// The records once `n` requests were decided (bounded wait).
async fn decided(records: &Records, n: usize) -> Vec<switchyard_router::DecisionRecord> {
    for _ in 0..100 {
        let got = records.0.lock().unwrap().clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("fewer than {n} decisions recorded");
}

/// One pass-through upstream `native` serving `script`, alone behind the gateway's route
/// `chat`.
async fn native_alone(locality: Locality, script: Script) -> (Up, String, Arc<Records>) {
    let up = Up::start("native", false, locality, script).await.native();
    let routes = json!({"routes": one_route("native/test-model")});
    let (base, records) = serve_observed(&[&up], routes, Vec::new()).await;
    (up, base, records)
}

fn native_script() -> Script {
    Script::text_then_tool_calls(
        ["Checking ", "the weather."],
        vec![ScriptedCall::new("get_weather", json!({"city": "Oslo"}))],
    )
    .with_usage(30, 9)
}

#[tokio::test]
async fn pass_through_keeps_the_body_and_the_stream_byte_for_byte_and_accounts_usage() {
    let (up, base, records) = native_alone(Locality::Cloud, native_script()).await;
    let r = post_raw(&base, None, "/v1/responses", CODEX_BODY).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/event-stream");
    assert_eq!(r.headers()["x-switchyard-target"], "native/test-model");
    assert_eq!(r.headers()["x-switchyard-route-reason"], "primary");
    let streamed = r.text().await.unwrap();

    // The upstream got the client's body, only `model` replaced: the encrypted reasoning
    // item, the hosted tool and the members the gateway does not model are unchanged.
    let sent = up.server.chat_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/responses");
    let expected = CODEX_BODY.replacen(r#""model":"chat""#, r#""model":"test-model""#, 1);
    assert_eq!(sent[0].body_text(), expected);

    // The client got the upstream's events unchanged (golden: the upstream asked directly).
    assert_eq!(streamed, golden(&up, "/responses", &expected).await);
    assert!(streamed.contains("event: response.completed"));

    // Usage reached the decision record and was priced.
    let record = decided(&records, 1).await.pop().unwrap();
    let usage = record.usage.unwrap();
    assert_eq!((usage.prompt_tokens, usage.completion_tokens), (30, 9));
    assert_eq!(record.cost_micro_usd, 48);
    assert!(record.ttft_ms.is_some());
    assert_eq!(record.served_by.unwrap().to_string(), "native/test-model");
    // And the metrics, as for any routed request.
    let metrics = http()
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let has = |name: &str, label: &str| {
        metrics.lines().any(|l| {
            l.starts_with(name) && l.contains("target=\"native/test-model\"") && l.contains(label)
        })
    };
    assert!(
        has("switchyard_tokens_total", "kind=\"prompt\""),
        "{metrics}"
    );
    assert!(has("switchyard_requests_total", ""), "{metrics}");
}

#[tokio::test]
async fn a_whole_answer_passes_through_and_is_stored_for_a_chat_continuation() {
    let up = Up::start(
        "native",
        false,
        Locality::Local,
        Script::text(["Hi ", "there."]),
    )
    .await
    .native();
    let chat = Up::start("local", true, Locality::Local, Script::text(["Again."])).await;
    let routes = json!({"chat": {"targets": ["native/test-model"]},
                        "small": {"targets": ["local/test-model"]}});
    let (base, _) = serve_observed(&[&up, &chat], json!({"routes": routes}), Vec::new()).await;
    let body = r#"{"model":"chat","input":"hello","store":true}"#;
    let r = post_raw(&base, None, "/v1/responses", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "native/test-model");
    let text = r.text().await.unwrap();
    let expected = body.replacen("\"chat\"", "\"test-model\"", 1);
    assert_eq!(text, golden(&up, "/responses", &expected).await);
    let answer: Value = serde_json::from_str(&text).unwrap();
    let id = answer["id"].as_str().unwrap();

    // Stored under the upstream's id: readable, and continued by a chat target with the
    // history (the upstream's answer as the assistant turn).
    let stored: Value = http()
        .get(format!("{base}/v1/responses/{id}"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored, answer);
    let next = json!({"model": "small", "previous_response_id": id, "input": "more"});
    let r = post(&base, None, &next).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "local/test-model");
    let messages = chat.bodies()[0]["messages"].clone();
    assert_eq!(messages[0]["content"], "hello");
    assert_eq!(messages[1]["content"], "Hi there.");
    assert_eq!(messages[2]["content"], "more");

    // Continued on the pass-through target that served it: forwarded natively with
    // `previous_response_id` (that upstream holds the response).
    let again = json!({"model": "chat", "previous_response_id": id, "input": "and?"});
    let r = post(&base, None, &again).await;
    assert_eq!(r.status(), 200);
    let sent = up.bodies();
    assert_eq!(
        sent.len(),
        3,
        "the first request, the golden one, the continuation"
    );
    assert_eq!(sent[2]["previous_response_id"], id);
    assert_eq!(sent[2]["input"], "and?");
}

#[tokio::test]
async fn falls_back_from_a_failing_pass_through_target_to_a_chat_target() {
    let up = Up::start("native", false, Locality::Local, Script::default())
        .await
        .native();
    up.server.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let chat = Up::start("local", true, Locality::Local, Script::text(["From chat."])).await;
    let routes = json!({"chat": {"targets": ["native/test-model", "local/test-model"]}});
    let (base, records) =
        serve_observed(&[&up, &chat], json!({"routes": routes}), Vec::new()).await;
    let body = json!({"model": "chat", "input": "hi", "stream": true, "store": false});
    let r = post(&base, None, &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "local/test-model");
    let evs = events(&r.text().await.unwrap());
    // Translated for the chat target: the gateway's own events, the client's alias.
    let done = final_of(&evs);
    assert_eq!(done["status"], "completed");
    assert_eq!(done["model"], "chat");
    assert_eq!(done["output"][0]["content"][0]["text"], "From chat.");
    assert_eq!(up.server.chat_requests()[0].path, "/v1/responses");
    assert_eq!(chat.server.chat_requests()[0].path, "/api/chat");
    let record = decided(&records, 1).await.pop().unwrap();
    // The pass-through target was tried (and retried: 503 is transient) before the fallback.
    assert!(record.attempts.len() >= 2, "{:?}", record.attempts);
    assert!(
        record.attempts[..record.attempts.len() - 1]
            .iter()
            .all(|a| &*a.target.provider == "native")
    );

    // A hosted tool cannot go to the chat target: with the pass-through target down the
    // request fails loudly, naming the tool, instead of dropping it.
    let hosted = json!({"model": "chat", "input": "hi", "tools": [{"type": "web_search"}]});
    let r = post(&base, None, &hosted).await;
    assert!(r.status().is_server_error(), "{}", r.status());
    let text = r.text().await.unwrap();
    assert!(text.contains("web_search"), "{text}");
    assert_eq!(
        chat.server.chat_requests().len(),
        1,
        "the chat target was not asked"
    );
}

#[tokio::test]
async fn hosted_tools_are_refused_only_when_no_pass_through_target_is_planned() {
    let up = Up::start("native", false, Locality::Local, Script::default())
        .await
        .native();
    let chat = Up::start("local", true, Locality::Local, Script::default()).await;
    let routes = json!({"chat": {"targets": ["native/test-model"]},
                        "plain": {"targets": ["local/test-model"]}});
    let (base, _) = serve_observed(&[&up, &chat], json!({"routes": routes}), Vec::new()).await;
    let tools = json!([{"type": "file_search", "vector_store_ids": ["vs_1"]}]);
    let r = post(
        &base,
        None,
        &json!({"model": "chat", "input": "hi", "tools": tools}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(up.bodies()[0]["tools"], tools);
    let r = post(
        &base,
        None,
        &json!({"model": "plain", "input": "hi", "tools": tools}),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("file_search"));
    assert!(chat.server.chat_requests().is_empty());
}

#[tokio::test]
async fn an_error_after_the_first_byte_ends_the_passed_through_stream_with_response_failed() {
    let script = Script::text(["a", "b", "c", "d", "e", "f"]).with_fault(Fault::DropAfterChunks(5));
    let (_up, base, _) = native_alone(Locality::Local, script).await;
    let body = json!({"model": "chat", "input": "hi", "stream": true});
    let r = post(&base, None, &body).await;
    assert_eq!(r.status(), 200);
    let evs = events(&r.text().await.unwrap());
    let n = evs.len();
    assert!(n >= 4, "{evs:?}");
    assert_eq!(evs[n - 2].0, "error");
    assert_eq!(evs[n - 1].0, "response.failed");
    let failed = &evs[n - 1].1;
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["id"], evs[0].1["response"]["id"]);
    // Sequence numbers go on from the upstream's.
    let seqs: Vec<u64> = evs
        .iter()
        .map(|(_, d)| d["sequence_number"].as_u64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
}

#[tokio::test]
async fn a_local_only_key_never_reaches_a_cloud_pass_through_target() {
    let cloud = Up::start("cloud", false, Locality::Cloud, Script::default())
        .await
        .native();
    let local = Up::start("local", true, Locality::Local, Script::text(["Local."])).await;
    let routes = json!({"chat": {"targets": ["cloud/test-model", "local/test-model"]},
                        "cloudy": {"targets": ["cloud/test-model"]}});
    let keys = vec![ApiKey {
        privacy: Some(switchyard_core::PrivacyClass::LocalOnly),
        ..ApiKey::new("laptop", "secret-1")
    }];
    let (base, _) = serve_observed(&[&cloud, &local], json!({"routes": routes}), keys).await;
    let body = json!({"model": "chat", "input": "private", "tools": [weather_tool()]});
    let r = post(&base, Some("secret-1"), &body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "local/test-model");
    let hosted = json!({"model": "cloudy", "input": "private", "tools": [{"type": "web_search"}]});
    let r = post(&base, Some("secret-1"), &hosted).await;
    assert!(r.status().is_client_error(), "{}", r.status());
    assert!(
        cloud
            .server
            .requests()
            .iter()
            .all(|r| r.path != "/v1/responses")
    );
}

#[tokio::test]
async fn compact_is_forwarded_to_a_pass_through_target() {
    let (up, base, _) = native_alone(Locality::Local, Script::text(["Summary."])).await;
    let body = r#"{"model":"chat","input":[{"type":"message","role":"user","content":"long"}],"instructions":"x"}"#;
    let r = post_raw(&base, None, "/v1/responses/compact", body).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "native/test-model");
    let sent = up.server.chat_requests();
    assert_eq!(sent[0].path, "/v1/responses/compact");
    assert_eq!(
        sent[0].body_text(),
        body.replacen("\"chat\"", "\"test-model\"", 1)
    );
    let answer: Value = r.json().await.unwrap();
    assert_eq!(answer["object"], "response.compaction");
}

#[tokio::test]
async fn a_streamed_pass_through_is_stored_under_the_upstreams_id_only_when_asked() {
    let (_up, base, _) = native_alone(Locality::Local, Script::text(["Kept."])).await;
    let get = |id: String| {
        let base = base.clone();
        async move {
            http()
                .get(format!("{base}/v1/responses/{id}"))
                .send()
                .await
                .unwrap()
        }
    };
    // Not stored with `store: false` (the testkit gives every answer of a model the same
    // id, so this comes first).
    let unstored = json!({"model": "chat", "input": "hi", "stream": true, "store": false});
    let evs = events(&post(&base, None, &unstored).await.text().await.unwrap());
    let id = final_of(&evs)["id"].as_str().unwrap().to_owned();
    assert_eq!(get(id).await.status(), 404);

    // `store` left out: OpenAI's default is to store.
    let body = json!({"model": "chat", "input": "hi", "stream": true});
    let evs = events(&post(&base, None, &body).await.text().await.unwrap());
    let completed = final_of(&evs).clone();
    assert_eq!(completed["status"], "completed");
    let id = completed["id"].as_str().unwrap().to_owned();
    assert_eq!(evs[0].1["response"]["id"], id.as_str(), "the upstream's id");
    let r = get(id.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap(), completed);
    let items: Value = get(format!("{id}/input_items")).await.json().await.unwrap();
    assert_eq!(items["data"][0]["content"][0]["text"], "hi");
}

#[tokio::test]
async fn a_pass_through_target_without_the_endpoint_gets_the_translated_chat() {
    let (up, base, _) = native_alone(Locality::Local, Script::text(["Via chat."])).await;
    up.server.set_blocked_paths(vec!["/v1/responses".into()]);
    let r = post(&base, None, &json!({"model": "chat", "input": "hi"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "native/test-model");
    let answer: Value = r.json().await.unwrap();
    assert_eq!(
        answer["model"], "chat",
        "translated: the gateway's own object"
    );
    assert_eq!(answer["output"][0]["content"][0]["text"], "Via chat.");
    let paths: Vec<String> = up
        .server
        .requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/responses", "/v1/chat/completions"]);
}

// ---- Review of the pass-through: argument deltas, unknown-call policy, final events ----

/// Reads `r`'s body until `done` holds for what came so far (the stream must not end
/// first).
async fn read_until(r: &mut reqwest::Response, done: impl Fn(&str) -> bool) -> String {
    let mut text = String::new();
    while !done(&text) {
        let chunk = r
            .chunk()
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("the stream ended first: {text}"));
        text.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    text
}

#[tokio::test]
async fn argument_deltas_reach_the_client_while_the_model_still_writes_them() {
    // The upstream sends `response.created`, `.in_progress`, the call's `output_item.added`
    // and two of its three argument deltas, then nothing more (a slow model mid-call).
    let call = ScriptedCall::new("get_weather", json!({"city": "Oslo", "days": 3}));
    let script = Script::tool_calls(vec![call]).with_fault(Fault::HangAfterChunks(5));
    let (_up, base, _) = native_alone(Locality::Local, script).await;
    let body = json!({"model": "chat", "input": "hi", "stream": true, "tools": [weather_tool()]});
    let mut r = post(&base, None, &body).await;
    assert_eq!(r.status(), 200);
    let text = read_until(&mut r, |t| {
        t.matches("event: response.function_call_arguments.delta")
            .count()
            == 2
    })
    .await;
    // They came while the upstream was still writing, not with the stream's end (its idle
    // timeout, 2 s here, closes it with `error` + `response.failed`).
    assert!(
        !text.contains("response.failed"),
        "the deltas were held until the stream ended: {text}"
    );
}

#[tokio::test]
async fn a_route_that_drops_unknown_tool_calls_never_passes_one_through() {
    let script = Script::tool_calls(vec![ScriptedCall::new("rm_rf", json!({"path": "/"}))]);
    let up = Up::start("native", false, Locality::Local, script)
        .await
        .native();
    let routes = json!({
        "chat": {"targets": ["native/test-model"], "drop_unknown_tool_calls": true},
        "open": {"targets": ["native/test-model"]}});
    let (base, records) = serve_observed(&[&up], json!({"routes": routes}), Vec::new()).await;
    for stream in [true, false] {
        let body =
            json!({"model": "chat", "input": "hi", "stream": stream, "tools": [weather_tool()]});
        let r = post(&base, None, &body).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert!(!text.contains("rm_rf"), "stream {stream}: {text}");
        let response: Value = if stream {
            final_of(&events(&text)).clone()
        } else {
            serde_json::from_str(&text).unwrap()
        };
        assert_eq!(response["status"], "completed", "{response}");
        assert_eq!(response["model"], "chat", "translated: {response}");
    }
    let paths: Vec<String> = up
        .server
        .chat_requests()
        .iter()
        .map(|r| r.path.clone())
        .collect();
    assert_eq!(paths, ["/v1/chat/completions", "/v1/chat/completions"]);
    let recorded = decided(&records, 2).await;
    assert!(recorded.iter().all(|r| r.unknown_tool_calls_dropped));

    // A route without the flag still passes the answer through, call and all.
    let body = json!({"model": "open", "input": "hi", "stream": true, "tools": [weather_tool()]});
    let text = post(&base, None, &body).await.text().await.unwrap();
    assert!(text.contains("rm_rf"), "{text}");
    assert_eq!(
        up.server.chat_requests().last().unwrap().path,
        "/v1/responses"
    );

    // A hosted tool on the filtering route has no target left: refused, saying why.
    let hosted = json!({"model": "chat", "input": "hi", "tools": [{"type": "web_search"}]});
    let r = post(&base, None, &hosted).await;
    assert_eq!(r.status(), 400);
    let text = r.text().await.unwrap();
    assert!(
        text.contains("web_search") && text.contains("drop_unknown_tool_calls"),
        "{text}"
    );
}

/// An upstream on loopback that answers every request with `status` 200 and the SSE body
/// `sse` (then closes the connection).
async fn sse_upstream(sse: String) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let sse = sse.clone();
            tokio::spawn(async move {
                // The request: its head, then its `content-length` bytes of body.
                let mut got = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    let n = socket.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                        if got.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    sse.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(sse.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://{addr}/v1")
}

#[tokio::test]
async fn a_passed_through_stream_has_one_terminal_event_whatever_its_final_response_holds() {
    let head = concat!(
        "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"status\":\"in_progress\",\"output\":null}}\n\n",
        "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\"}\n\n",
    );
    // `content: null` (a list given as null) is read as empty; a final response that
    // cannot be read still ends the stream: either way the upstream's final event is the
    // client's last.
    let readable = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_up\",\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"content\":null,\"summary\":null}],\"usage\":{\"input_tokens\":4,\"output_tokens\":2}}}\n\n";
    let unreadable = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_up\",\"status\":\"completed\",\"usage\":\"lots\"}}\n\n";
    for (last, usage) in [(readable, true), (unreadable, false)] {
        let sse = format!("{head}{last}");
        let upstream = sse_upstream(sse.clone()).await;
        let mut c = OpenAiConfig::new(upstream);
        c.client = short_timeouts();
        c.locality = Locality::Local;
        c.responses = true;
        let slots = vec![ProviderSlot::new(
            "native",
            Arc::new(OpenAiClient::new(c).unwrap()),
            Locality::Local,
        )];
        let records = Arc::new(Records::default());
        let config: RouterConfig =
            serde_json::from_value(json!({"routes": one_route("native/test-model")})).unwrap();
        let router = Router::new(config, slots, Arc::new(MemoryLedger::new()))
            .unwrap()
            .with_observer(records.clone());
        let base = serve_until_runtime_ends(new_gateway(router, config_with(Vec::new()))).await;
        let body = json!({"model": "chat", "input": "hi", "stream": true, "store": false});
        let r = post(&base, None, &body).await;
        assert_eq!(r.status(), 200);
        let text = r.text().await.unwrap();
        assert_eq!(text, sse, "the upstream's events, and nothing after them");
        let record = decided(&records, 1).await.pop().unwrap();
        assert_eq!(record.usage.is_some(), usage, "{record:?}");
    }
}
