//! The gateway over real loopback sockets: testkit upstreams behind a router of real
//! clients, the gateway on 127.0.0.1:0, and real clients (Switchyard's own Ollama and
//! OpenAI clients, and plain reqwest for the wire details) in front.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use futures::StreamExt;
use serde_json::{Value, json};
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, FinishReason, Locality, Message, Provider, ProviderError,
    ToolSpec,
};
use switchyard_gateway::{ApiKey, Gateway, GatewayConfig, check_listen_policy};
use switchyard_http::{ClientConfig, UpstreamStreaming};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::{ProviderSlot, Router};
use switchyard_testkit::{Fault, ModelSpec, Script, ScriptedCall, TestUpstream, UpstreamConfig};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

mod support;

use support::{
    Kind, Unlisted, WAIT, gateway_config, http, metrics_handle, new_gateway, provider,
    provider_with, router_over, send_json, send_text, serve_until_stopped, short_timeouts,
};

fn default_routes() -> Value {
    json!({ "routes": { "chat": { "targets": ["up/test-model"] } } })
}

struct Harness {
    gateway: Gateway,
    addr: SocketAddr,
    upstream: TestUpstream,
    kind: Kind,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), switchyard_gateway::GatewayError>>,
}

impl Harness {
    async fn start(kind: Kind, upstream: UpstreamConfig, config: GatewayConfig) -> Harness {
        Self::start_with_routes(kind, upstream, config, default_routes()).await
    }

    async fn start_with_routes(
        kind: Kind,
        upstream: UpstreamConfig,
        config: GatewayConfig,
        routes: Value,
    ) -> Harness {
        let upstream = TestUpstream::start(upstream).await.unwrap();
        let slot = ProviderSlot::new(
            "up",
            provider(kind, &upstream, Locality::Local),
            Locality::Local,
        );
        let router = router_over(vec![slot], routes);
        Self::serve(kind, upstream, router, config).await
    }

    /// A gateway whose provider asks the upstream for a whole answer when the client asks
    /// for one (`upstream_streaming: "as_client"`).
    async fn start_as_client(kind: Kind, upstream: UpstreamConfig) -> Harness {
        let upstream = TestUpstream::start(upstream).await.unwrap();
        let client = ClientConfig {
            upstream_streaming: UpstreamStreaming::AsClient,
            ..short_timeouts()
        };
        let provider = provider_with(kind, &upstream, Locality::Local, client, true);
        let slot = ProviderSlot::new("up", provider, Locality::Local);
        let router = router_over(vec![slot], default_routes());
        Self::serve(kind, upstream, router, gateway_config()).await
    }

    /// Whether the upstream's last chat request asked for a stream.
    fn upstream_streamed(&self) -> bool {
        let requests = self.upstream.requests();
        let chat = requests.iter().rev().find(|r| r.is_chat()).expect("a chat");
        chat.body_json().expect("a JSON body")["stream"] == true
    }

    async fn serve(
        kind: Kind,
        upstream: TestUpstream,
        router: Router,
        config: GatewayConfig,
    ) -> Harness {
        let gateway = new_gateway(router, config).with_metrics_handle(metrics_handle());
        let running = serve_until_stopped(gateway.clone()).await;
        Harness {
            gateway,
            addr: running.addr,
            upstream,
            kind,
            stop: Some(running.stop),
            task: running.task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Switchyard's Ollama client pointed at the gateway.
    fn ollama_client(&self, key: Option<&str>) -> OllamaClient {
        let mut config = OllamaConfig::new(format!("http://{}", self.addr));
        config.client = short_timeouts();
        config.client.bearer_token = key.map(str::to_owned);
        OllamaClient::new(config).unwrap()
    }

    /// Switchyard's OpenAI client pointed at the gateway's `/v1`.
    fn openai_client(&self, key: Option<&str>) -> OpenAiClient {
        let mut config = OpenAiConfig::new(format!("http://{}/v1", self.addr));
        config.client = short_timeouts();
        config.client.bearer_token = key.map(str::to_owned);
        OpenAiClient::new(config).unwrap()
    }

    async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        self.upstream.shutdown().await;
    }
}

fn weather_tool() -> ToolSpec {
    ToolSpec {
        name: "get_weather".into(),
        description: Some("Weather of a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }
}

async fn collect(stream: ChatStream) -> Result<Vec<ChatEvent>, ProviderError> {
    tokio::time::timeout(WAIT, async move {
        let mut stream = stream;
        let mut events = Vec::new();
        while let Some(e) = stream.next().await {
            events.push(e?);
        }
        Ok(events)
    })
    .await
    .unwrap()
}

use switchyard_testkit::support::text_of;

fn finish_of(events: &[ChatEvent]) -> Option<FinishReason> {
    events.iter().find_map(|e| match e {
        ChatEvent::Done { finish_reason } => Some(finish_reason.clone()),
        _ => None,
    })
}

fn tool_call_of(events: &[ChatEvent]) -> (String, String, Value) {
    let mut id = String::new();
    let mut name = String::new();
    let mut args = String::new();
    for e in events {
        match e {
            ChatEvent::ToolCallStart { id: i, name: n, .. } => {
                id = i.clone();
                name = n.clone();
            }
            ChatEvent::ToolCallArgs { fragment, .. } => args.push_str(fragment),
            _ => {}
        }
    }
    (id, name, serde_json::from_str(&args).unwrap_or(Value::Null))
}

async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..100 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    check()
}

// ---------------------------------------------------------------------------------------
// Both APIs, both ways

#[tokio::test]
async fn openai_client_over_ollama_upstream_streams_text() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let mut request = ChatRequest::new("chat", vec![Message::user("Hi")]);
    request.stream = true;
    let events = collect(h.openai_client(None).chat(&request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(text_of(&events), "Hello from the test upstream.");
    assert_eq!(finish_of(&events), Some(FinishReason::Stop));
    assert_eq!(h.upstream.chat_requests()[0].path, "/api/chat");
    h.shutdown().await;
}

#[tokio::test]
async fn ollama_client_over_openai_upstream_streams_text() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    let request = ChatRequest::new("chat", vec![Message::user("Hi")]);
    let events = collect(h.ollama_client(None).chat(&request).await.unwrap())
        .await
        .unwrap();
    assert_eq!(text_of(&events), "Hello from the test upstream.");
    assert_eq!(finish_of(&events), Some(FinishReason::Stop));
    assert_eq!(h.upstream.chat_requests()[0].path, "/v1/chat/completions");
    h.shutdown().await;
}

#[tokio::test]
async fn streamed_tool_calls_translate_openai_client_to_ollama_upstream() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::tool_calls(vec![ScriptedCall::new(
            "get_weather",
            json!({"city": "Tokyo"}),
        )]),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let mut request = ChatRequest::new("chat", vec![Message::user("Weather in Tokyo?")]);
    request.tools = vec![weather_tool()];
    request.stream = true;
    let events = collect(h.openai_client(None).chat(&request).await.unwrap())
        .await
        .unwrap();
    let (id, name, args) = tool_call_of(&events);
    assert!(id.starts_with("call_"), "{id}");
    assert_eq!(name, "get_weather");
    assert_eq!(args, json!({"city": "Tokyo"}));
    assert_eq!(finish_of(&events), Some(FinishReason::ToolCalls));
    // The tool was offered upstream in Ollama's shape.
    let sent = h.upstream.chat_requests()[0].body_json().unwrap();
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    h.shutdown().await;
}

#[tokio::test]
async fn streamed_tool_calls_translate_ollama_client_to_openai_upstream() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::tool_calls(vec![ScriptedCall::new(
            "get_weather",
            json!({"city": "Oslo"}),
        )]),
    );
    let h = Harness::start(Kind::OpenAi, upstream, gateway_config()).await;
    let mut request = ChatRequest::new("chat", vec![Message::user("Weather in Oslo?")]);
    request.tools = vec![weather_tool()];
    let events = collect(h.ollama_client(None).chat(&request).await.unwrap())
        .await
        .unwrap();
    let (id, name, args) = tool_call_of(&events);
    assert!(!id.is_empty());
    assert_eq!(name, "get_weather");
    assert_eq!(args, json!({"city": "Oslo"}));

    // On the wire: the call arrives whole, arguments as an object, in a done:false line.
    let body = send_text(http().post(h.url("/api/chat")).json(
        &json!({"model": "chat", "messages": [{"role": "user", "content": "Oslo?"}],
                      "tools": [{"type": "function", "function": {"name": "get_weather",
                       "parameters": {"type": "object"}}}]}),
    ))
    .await;
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let call_line = lines
        .iter()
        .find(|l| l["message"]["tool_calls"].is_array())
        .unwrap();
    assert_eq!(call_line["done"], false);
    assert_eq!(
        call_line["message"]["tool_calls"][0]["function"]["arguments"]["city"],
        "Oslo"
    );
    assert_eq!(lines.last().unwrap()["done"], true);
    h.shutdown().await;
}

#[tokio::test]
async fn openai_wire_details_headers_and_usage() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let response = http()
        .post(h.url("/v1/chat/completions"))
        .json(
            &json!({"model": "chat", "stream": true, "stream_options": {"include_usage": true},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let headers = response.headers().clone();
    assert_eq!(headers["content-type"], "text/event-stream");
    assert_eq!(headers["x-switchyard-target"], "up/test-model");
    assert_eq!(headers["x-switchyard-route-reason"], "primary");
    assert_eq!(headers["x-switchyard-attempts"], "1");
    assert!(
        headers["x-switchyard-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let overhead: f64 = headers["x-switchyard-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(overhead >= 0.0);
    let body = response.text().await.unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let usage_frame = body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter(|f| *f != "[DONE]")
        .map(|f| serde_json::from_str::<Value>(f).unwrap())
        .find(|f| f["usage"].is_object())
        .expect("a usage frame");
    assert_eq!(usage_frame["choices"], json!([]));
    assert_eq!(usage_frame["usage"]["prompt_tokens"], 12);
    assert_eq!(usage_frame["usage"]["completion_tokens"], 5);

    // A request id the client sends is kept.
    let response = http()
        .post(h.url("/v1/chat/completions"))
        .header("x-switchyard-request-id", "my-id-1")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-switchyard-request-id"], "my-id-1");
    let long = "x".repeat(200);
    let replaced = http()
        .get(h.url("/healthz"))
        .header("x-switchyard-request-id", long.as_str())
        .send()
        .await
        .unwrap();
    assert!(
        replaced.headers()["x-switchyard-request-id"]
            .to_str()
            .unwrap()
            .starts_with("req_")
    );
    let whole: Value = response.json().await.unwrap();
    assert_eq!(whole["object"], "chat.completion");
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "Hello from the test upstream."
    );
    assert_eq!(whole["usage"]["total_tokens"], 17);
    h.shutdown().await;
}

#[tokio::test]
async fn ollama_non_streamed_and_stream_absent_means_streamed() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    let whole: Value = send_json(http().post(h.url("/api/chat")).json(
        &json!({"model": "chat", "stream": false, "messages": [{"role": "user", "content": "Hi"}]}),
    ))
    .await;
    assert_eq!(whole["done"], true);
    assert_eq!(whole["message"]["content"], "Hello from the test upstream.");
    assert_eq!(whole["model"], "chat");

    let response = post_json(
        &h,
        "/api/chat",
        None,
        &json!({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    let body = response.text().await.unwrap();
    assert!(body.lines().count() > 2, "{body}");
    h.shutdown().await;
}

#[tokio::test]
async fn as_client_asks_the_upstream_for_a_whole_answer_only_when_the_client_does() {
    for kind in [Kind::Ollama, Kind::OpenAi] {
        let h = Harness::start_as_client(kind, UpstreamConfig::default()).await;
        let chat = |stream: bool| json!({"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "Hi"}]});
        let whole = http()
            .post(h.url("/v1/chat/completions"))
            .json(&chat(false))
            .send()
            .await
            .unwrap();
        assert_eq!(whole.status(), 200, "{kind:?}");
        assert!(
            whole.headers().contains_key("x-switchyard-target"),
            "{kind:?}"
        );
        let whole: Value = whole.json().await.unwrap();
        assert_eq!(
            whole["choices"][0]["message"]["content"], "Hello from the test upstream.",
            "{kind:?}"
        );
        assert_eq!(whole["usage"]["total_tokens"], 17, "{kind:?}");
        assert!(
            !h.upstream_streamed(),
            "{kind:?}: a whole answer was asked for"
        );

        let streamed = http()
            .post(h.url("/api/chat"))
            .json(&chat(true))
            .send()
            .await
            .unwrap();
        assert_eq!(streamed.headers()["content-type"], "application/x-ndjson");
        assert!(
            streamed.text().await.unwrap().lines().count() > 2,
            "{kind:?}"
        );
        assert!(
            h.upstream_streamed(),
            "{kind:?}: a streamed client streams upstream"
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn as_client_recovers_tool_calls_written_as_text_in_a_whole_answer() {
    let upstream = UpstreamConfig::default().default_script(Script::tool_calls_as_text(
        switchyard_testkit::TextCallFormat::Hermes,
        vec![ScriptedCall::new("get_weather", json!({"city": "Oslo"}))],
    ));
    let h = Harness::start_as_client(Kind::Ollama, upstream).await;
    let whole: Value = http()
        .post(h.url("/v1/chat/completions"))
        .json(&json!({
            "model": "chat", "stream": false,
            "messages": [{"role": "user", "content": "Weather in Oslo?"}],
            "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}],
        }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!h.upstream_streamed());
    let call = &whole["choices"][0]["message"]["tool_calls"][0]["function"];
    assert_eq!(call["name"], "get_weather", "{whole}");
    let args: Value = serde_json::from_str(call["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"city": "Oslo"}));
    assert_eq!(
        whole["choices"][0]["finish_reason"], "tool_calls",
        "{whole}"
    );
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Catalogs

#[tokio::test]
async fn model_lists_show_aliases_and_exact_targets() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let models: Value = send_json(http().get(h.url("/v1/models"))).await;
    assert_eq!(models["object"], "list");
    let ids: Vec<&str> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&"chat") && ids.contains(&"up/test-model"),
        "{ids:?}"
    );

    let one: Value = send_json(http().get(h.url("/v1/models/up/test-model"))).await;
    assert_eq!(one["id"], "up/test-model");
    // A bare name a chat accepts is found too, as the entry of the target it plans.
    let bare: Value = send_json(http().get(h.url("/v1/models/test-model"))).await;
    assert_eq!(bare["id"], "up/test-model");
    let missing = http().get(h.url("/v1/models/nope")).send().await.unwrap();
    assert_eq!(missing.status(), 404);

    let tags = h.ollama_client(None).tags().await.unwrap();
    let names: Vec<&str> = tags.iter().map(|t| t.name.as_str()).collect();
    assert!(
        names.contains(&"chat") && names.contains(&"up/test-model"),
        "{names:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn show_answers_for_an_alias_with_the_primary_targets_capabilities() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let show: Value = send_json(
        http()
            .post(h.url("/api/show"))
            .json(&json!({"model": "chat"})),
    )
    .await;
    let caps: Vec<&str> = show["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert!(
        caps.contains(&"tools") && caps.contains(&"completion"),
        "{caps:?}"
    );
    assert!(show["model_info"].is_object());
    assert_eq!(show["model_info"]["llama.context_length"], 8192);
    // Switchyard's Ollama client (as ollama-python) reads it.
    let parsed = h.ollama_client(None).show("chat").await.unwrap();
    let _ = parsed;
    // A bare upstream name, as `ollama run test-model` shows it before a chat.
    let bare = post_json(&h, "/api/show", None, &json!({"model": "test-model"})).await;
    assert_eq!(bare.status(), 200);
    let missing = post_json(&h, "/api/show", None, &json!({"model": "nope"})).await;
    assert_eq!(missing.status(), 404);
    assert!(
        missing.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("not found")
    );
    h.shutdown().await;
}

#[tokio::test]
async fn ollama_probe_endpoints_answer_like_ollama() {
    let upstream = UpstreamConfig::default()
        .version("0.14.1")
        .loaded("test-model");
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let root = http().get(h.url("/")).send().await.unwrap();
    assert_eq!(root.text().await.unwrap(), "Ollama is running");
    assert_eq!(http().head(h.url("/")).send().await.unwrap().status(), 200);
    // The upstream Ollama's version (above the floor); the gateway's own in a header.
    let version = h.ollama_client(None).version().await.unwrap();
    assert_eq!(version, "0.14.1");
    let r = http().get(h.url("/api/version")).send().await.unwrap();
    assert_eq!(
        r.headers()[switchyard_gateway::VERSION_HEADER],
        env!("CARGO_PKG_VERSION")
    );
    // The upstream's loaded model, named as the catalog names it.
    let ps: Value = send_json(http().get(h.url("/api/ps"))).await;
    assert_eq!(ps["models"][0]["name"], "up/test-model", "{ps}");
    assert_eq!(ps["models"][0]["model"], "up/test-model");
    assert!(ps["models"][0]["expires_at"].is_string());
    assert_eq!(ps["models"].as_array().unwrap().len(), 1);
    let loaded = h.ollama_client(None).ps().await.unwrap();
    assert_eq!(loaded[0].name, "up/test-model");
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Errors

#[tokio::test]
async fn bad_requests_get_400_in_each_apis_shape_naming_the_problem() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("line 1"),
        "{body}"
    );

    let r = http()
        .post(h.url("/api/chat"))
        .body(r#"{"model":"chat","messages":[{"role":"user","content":5}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("messages[0]"),
        "{body}"
    );

    let r = post_json(
        &h,
        "/v1/chat/completions",
        None,
        &json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "model_not_found");

    let r = http()
        .post(h.url("/v1/chat/completions"))
        .header("x-switchyard-privacy", "nonsense")
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        http().get(h.url("/nope")).send().await.unwrap().status(),
        404
    );
    h.shutdown().await;
}

#[tokio::test]
async fn upstream_error_before_output_is_an_http_error() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::default().with_fault(Fault::HttpError {
            status: 500,
            message: "runner crashed".into(),
        }),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let r = post_json(
        &h,
        "/v1/chat/completions",
        None,
        &json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 502);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("runner crashed"),
        "{body}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn failure_after_first_byte_ends_the_stream_with_an_error_event() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c", "d", "e"])
            .with_chunk_delay(Duration::from_millis(20))
            .with_fault(Fault::DropAfterChunks(2)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let body = send_text(http().post(h.url("/v1/chat/completions")).json(
        &json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    ))
    .await;
    assert!(body.contains("data: {\"error\""), "{body}");
    assert!(!body.contains("[DONE]"), "{body}");

    let body = send_text(
        http()
            .post(h.url("/api/chat"))
            .json(&json!({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]})),
    )
    .await;
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert!(last["error"].is_string(), "{body}");
    // Switchyard's Ollama client raises on it.
    let mut request = ChatRequest::new("chat", vec![Message::user("Hi")]);
    request.stream = true;
    let stream = h.ollama_client(None).chat(&request).await.unwrap();
    assert!(collect(stream).await.is_err());
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Auth, limits

fn keyed_config() -> GatewayConfig {
    GatewayConfig {
        keys: vec![
            ApiKey::new("laptop", "sk-laptop"),
            ApiKey {
                privacy: Some(switchyard_core::PrivacyClass::LocalOnly),
                ..ApiKey::new("private", "sk-private")
            },
            ApiKey {
                requests_per_minute: Some(1),
                ..ApiKey::new("limited", "sk-limited")
            },
            ApiKey {
                allowed_routes: Some(vec!["other".into()]),
                ..ApiKey::new("narrow", "sk-narrow")
            },
        ],
        ..gateway_config()
    }
}

#[tokio::test]
async fn auth_missing_wrong_and_right_keys_on_both_apis() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), keyed_config()).await;
    let chat =
        json!({"model": "chat", "stream": false, "messages": [{"role": "user", "content": "Hi"}]});

    let r = post_json(&h, "/v1/chat/completions", None, &chat).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "auth_failed");

    let r = post_json(&h, "/api/chat", Some("sk-wrong"), &chat).await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string());

    let r = http().get(h.url("/api/tags")).send().await.unwrap();
    assert_eq!(r.status(), 401);

    let r = post_json(&h, "/v1/chat/completions", Some("sk-laptop"), &chat).await;
    assert_eq!(r.status(), 200);
    let r = post_json(&h, "/api/chat", Some("sk-laptop"), &chat).await;
    assert_eq!(r.status(), 200);

    // The real clients send the key as a bearer token.
    let request = ChatRequest::new("chat", vec![Message::user("Hi")]);
    let events = collect(
        h.openai_client(Some("sk-laptop"))
            .chat(&request)
            .await
            .unwrap(),
    )
    .await
    .unwrap();
    assert_eq!(text_of(&events), "Hello from the test upstream.");
    let err = h
        .ollama_client(Some("sk-wrong"))
        .chat(&request)
        .await
        .err()
        .unwrap();
    assert_eq!(err.reason_code(), "auth_failed");

    // Open endpoints stay open.
    assert_eq!(
        http().get(h.url("/healthz")).send().await.unwrap().status(),
        200
    );
    assert_eq!(
        http()
            .get(h.url("/api/version"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    // A key limited to other routes is refused with 403.
    let r = post_json(&h, "/v1/chat/completions", Some("sk-narrow"), &chat).await;
    assert_eq!(r.status(), 403);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "policy_blocked");
    h.shutdown().await;
}

/// A cloud OpenAI-compatible provider `cloud` and a local Ollama `up` (served from
/// `local`) behind `routes`, with the keyed config; the cloud upstream is returned apart.
async fn cloud_and_local(local: UpstreamConfig, routes: Value) -> (Harness, TestUpstream) {
    let cloud = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let local = TestUpstream::start(local).await.unwrap();
    let slots = vec![
        ProviderSlot::new(
            "cloud",
            provider(Kind::OpenAi, &cloud, Locality::Cloud),
            Locality::Cloud,
        ),
        ProviderSlot::new(
            "up",
            provider(Kind::Ollama, &local, Locality::Local),
            Locality::Local,
        ),
    ];
    let router = router_over(slots, routes);
    let h = Harness::serve(Kind::Ollama, local, router, keyed_config()).await;
    (h, cloud)
}

#[tokio::test]
async fn local_only_key_and_header_keep_requests_off_the_cloud() {
    let routes =
        json!({ "routes": { "chat": { "targets": ["cloud/test-model", "up/test-model"] } } });
    let (h, cloud) = cloud_and_local(UpstreamConfig::default(), routes).await;
    let chat =
        json!({"model": "chat", "stream": false, "messages": [{"role": "user", "content": "Hi"}]});

    let r = post_json(&h, "/v1/chat/completions", Some("sk-laptop"), &chat).await;
    assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    assert_eq!(cloud.chat_request_count(), 1);

    let r = post_json(&h, "/v1/chat/completions", Some("sk-private"), &chat).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");

    let r = http()
        .post(h.url("/api/chat"))
        .bearer_auth("sk-laptop")
        .header("x-switchyard-privacy", "local-only")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");

    // The header cannot lower a local-only key.
    let r = http()
        .post(h.url("/api/chat"))
        .bearer_auth("sk-private")
        .header("x-switchyard-privacy", "any")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(cloud.chat_request_count(), 1);

    // Every privacy header counts, the strictest wins: `any` first does not hide a later
    // `local-only`.
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth("sk-laptop")
        .header("x-switchyard-privacy", "any")
        .header("x-switchyard-privacy", "local-only")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(cloud.chat_request_count(), 1);

    // An unparseable value anywhere among them is a 400 in each API's own error shape,
    // naming the header.
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth("sk-laptop")
        .header("x-switchyard-privacy", "any")
        .header("x-switchyard-privacy", "secret")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_request", "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("x-switchyard-privacy") && message.contains("secret"),
        "{body}"
    );
    let r = http()
        .post(h.url("/api/chat"))
        .bearer_auth("sk-laptop")
        .header("x-switchyard-privacy", "local-only")
        .header("x-switchyard-privacy", "nonsense")
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("x-switchyard-privacy"),
        "{body}"
    );
    assert_eq!(cloud.chat_request_count(), 1);
    h.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), keyed_config()).await;
    let chat =
        json!({"model": "chat", "stream": false, "messages": [{"role": "user", "content": "Hi"}]});
    let r = post_json(&h, "/v1/chat/completions", Some("sk-limited"), &chat).await;
    assert_eq!(r.status(), 200);
    let r = post_json(&h, "/v1/chat/completions", Some("sk-limited"), &chat).await;
    assert_eq!(r.status(), 429);
    let after: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&after), "{after}");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    let r = post_json(&h, "/api/chat", Some("sk-limited"), &chat).await;
    assert_eq!(r.status(), 429);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    // Other keys are not affected.
    let r = post_json(&h, "/api/chat", Some("sk-laptop"), &chat).await;
    assert_eq!(r.status(), 200);

    // A reload that lifts the limit applies at once.
    let mut config = keyed_config();
    config.keys[2].requests_per_minute = None;
    h.gateway.set_config(config);
    let r = post_json(&h, "/api/chat", Some("sk-limited"), &chat).await;
    assert_eq!(r.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn body_limit_answers_413_in_the_apis_shape() {
    let config = GatewayConfig {
        max_body_bytes: 1024,
        ..gateway_config()
    };
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), config).await;
    let big = "x".repeat(4096);
    let chat = json!({"model": "chat", "messages": [{"role": "user", "content": big}]});
    let r = post_json(&h, "/v1/chat/completions", None, &chat).await;
    assert_eq!(r.status(), 413);
    assert!(
        r.json::<Value>().await.unwrap()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("1024")
    );
    // Chunked (no content-length) is cut off too.
    let chunks = futures::stream::iter((0..8).map(|_| Ok::<_, std::io::Error>("y".repeat(512))));
    let r = http()
        .post(h.url("/api/chat"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    assert_eq!(h.upstream.chat_request_count(), 0);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Stream lifecycle, hot swap, shutdown

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_request() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(100, Duration::from_millis(30)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let mut response = post_json(
        &h,
        "/v1/chat/completions",
        None,
        &json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    assert_eq!(h.upstream.aborted_streams(), 0);
    drop(response);
    assert!(
        eventually(|| h.upstream.aborted_streams() == 1).await,
        "upstream stream not aborted"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn hot_swap_keeps_in_flight_requests_on_their_router() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(10, Duration::from_millis(30)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let in_flight = tokio::spawn({
        let url = h.url("/v1/chat/completions");
        async move {
            let chat = json!({"model": "chat", "stream": true,
                "messages": [{"role": "user", "content": "Hi"}]});
            send_text(http().post(url).json(&chat)).await
        }
    });
    assert!(eventually(|| h.upstream.open_streams() == 1).await);
    // Swap in a router where `chat` no longer exists but `chat2` does.
    let slot = ProviderSlot::new(
        "up",
        provider(h.kind, &h.upstream, Locality::Local),
        Locality::Local,
    );
    let new_router = router_over(
        vec![slot],
        json!({ "routes": { "chat2": { "targets": ["up/test-model"] } } }),
    );
    h.gateway.router_handle().store(Arc::new(new_router));

    let body = tokio::time::timeout(WAIT, in_flight)
        .await
        .unwrap()
        .unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    assert!(body.contains("tok9"));
    let chat = |model: &str| json!({"model": model, "stream": false, "messages": [{"role": "user", "content": "Hi"}]});
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .json(&chat("chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .json(&chat("chat2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    h.shutdown().await;
}

#[tokio::test]
async fn graceful_shutdown_lets_a_running_stream_finish() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(8, Duration::from_millis(30)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let mut response = post_json(
        &h,
        "/api/chat",
        None,
        &json!({"model": "chat", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let mut body = String::new();
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    body.push_str(std::str::from_utf8(&first).unwrap());
    let addr = h.addr;
    let upstream_done = tokio::spawn(async move { h.shutdown().await });
    while let Some(chunk) = tokio::time::timeout(WAIT, response.chunk())
        .await
        .unwrap()
        .unwrap()
    {
        body.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let last: Value = serde_json::from_str(body.lines().last().unwrap()).unwrap();
    assert_eq!(last["done"], true, "{body}");
    tokio::time::timeout(WAIT, upstream_done)
        .await
        .unwrap()
        .unwrap();
    // No longer listening.
    assert!(tokio::net::TcpStream::connect(addr).await.is_err());
}

// ---------------------------------------------------------------------------------------
// Operations

#[tokio::test]
async fn metrics_readyz_and_healthz() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let chat =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    let r = post_json(&h, "/v1/chat/completions", None, &chat).await;
    let _ = r.text().await.unwrap();
    let text = send_text(http().get(h.url("/metrics"))).await;
    assert!(text.contains("switchyard_http_requests_total"), "{text}");
    assert!(
        text.contains("switchyard_gateway_overhead_seconds"),
        "{text}"
    );
    assert!(text.contains("switchyard_requests_total"), "{text}");

    let ready = http().get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["ready"], true);
    assert_eq!(ready["providers"][0]["id"], "up");
    assert_eq!(
        http().get(h.url("/healthz")).send().await.unwrap().status(),
        200
    );
    h.shutdown().await;
}

#[tokio::test]
async fn readyz_is_503_without_providers() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let router = router_over(Vec::new(), json!({}));
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    let r = http().get(h.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
    h.shutdown().await;
}

#[tokio::test]
async fn refuses_non_loopback_without_keys() {
    assert!(check_listen_policy("192.168.1.5:4141".parse().unwrap(), false, false).is_err());
    assert!(check_listen_policy("[::1]:4141".parse().unwrap(), false, false).is_ok());
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let router = router_over(Vec::new(), json!({}));
    let gateway = Gateway::new(gateway_config(), Arc::new(ArcSwap::from_pointee(router)));
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    let err = tokio::time::timeout(WAIT, gateway.serve(listener, std::future::pending()))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.reason_code(), "insecure_listen");
    upstream.shutdown().await;
}

#[tokio::test]
async fn fallback_before_the_first_byte_is_reported_in_headers() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut dead_config =
        OllamaConfig::new(format!("http://{}", switchyard_testkit::refused_addr()));
    dead_config.client = short_timeouts();
    let mut dead = ProviderSlot::new(
        "dead",
        Arc::new(OllamaClient::new(dead_config).unwrap()),
        Locality::Local,
    );
    dead.models = vec![switchyard_core::ModelInfo::new(
        "test-model",
        Locality::Local,
    )];
    let slots = vec![
        dead,
        ProviderSlot::new(
            "up",
            provider(Kind::Ollama, &upstream, Locality::Local),
            Locality::Local,
        ),
    ];
    let router = router_over(
        slots,
        json!({ "routes": { "chat": { "targets": ["dead/test-model", "up/test-model"] } } }),
    );
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    let r = post_json(
        &h,
        "/v1/chat/completions",
        None,
        &json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(r.headers()["x-switchyard-attempts"], "2");
    let reason = r.headers()["x-switchyard-route-reason"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(reason.starts_with("fallback"), "{reason}");
    assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
    h.shutdown().await;
}

#[tokio::test]
async fn tokens_per_minute_limit_applies_after_a_large_answer() {
    let config = GatewayConfig {
        keys: vec![ApiKey {
            tokens_per_minute: Some(10),
            ..ApiKey::new("tokens", "sk-tokens")
        }],
        ..gateway_config()
    };
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), config).await;
    let chat =
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]});
    // The default script reports 12 + 5 tokens: over the limit after one answer.
    let r = post_json(&h, "/api/chat", Some("sk-tokens"), &chat).await;
    assert_eq!(r.status(), 200);
    let _ = r.text().await.unwrap();
    let r = post_json(&h, "/api/chat", Some("sk-tokens"), &chat).await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
    h.shutdown().await;
}

#[tokio::test]
async fn unknown_fields_pass_through_to_an_upstream_of_the_same_api() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .json(
            &json!({"model": "chat", "stream": false, "logit_bias": {"50256": -100},
                      "messages": [{"role": "user", "content": "Hi"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let sent = h.upstream.chat_requests()[0].body_json().unwrap();
    assert_eq!(sent["logit_bias"]["50256"], -100);
    assert_eq!(sent["model"], "test-model");
    h.shutdown().await;
}

#[tokio::test]
async fn slow_headers_are_cut_off_by_the_header_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let config = GatewayConfig {
        header_read_timeout: Duration::from_millis(200),
        ..gateway_config()
    };
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), config).await;
    let mut socket = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    socket
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 256];
    let started = std::time::Instant::now();
    let read = tokio::time::timeout(WAIT, socket.read(&mut buf))
        .await
        .unwrap();
    // Closed (or answered with an error status), well before the test's own timeout.
    match read {
        Ok(0) | Err(_) => {}
        Ok(n) => assert!(!std::str::from_utf8(&buf[..n]).unwrap().contains("200 OK")),
    }
    assert!(started.elapsed() < Duration::from_secs(3));
    h.shutdown().await;
}

#[tokio::test]
async fn many_concurrent_streams_and_http2_clients_are_served() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c"]).with_chunk_delay(Duration::from_millis(5)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let client = if i % 2 == 0 { http() } else { h2.clone() };
        let url = h.url("/v1/chat/completions");
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .json(&json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}))
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let retry_after = r.headers().contains_key("retry-after");
            (status, retry_after, r.text().await.unwrap())
        }));
    }
    // The provider takes 4 in flight and queues 16 (the slot's defaults): the rest are
    // refused with 429 queue_full and a retry hint, never left hanging.
    let mut served = 0;
    for task in tasks {
        let (status, retry_after, body) = tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
        match status {
            200 => {
                assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
                served += 1;
            }
            429 => {
                assert!(retry_after);
                assert!(body.contains("queue_full"), "{body}");
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert!(served >= 20, "{served}");
    assert_eq!(h.upstream.chat_request_count(), served);
    h.shutdown().await;
}

/// An upstream that accepts any model name and never lists its models, as some
/// OpenAI-compatible services do: it answers every chat with "ok".
fn any_model() -> Unlisted {
    Unlisted {
        answer: || {
            let events = vec![
                Ok(ChatEvent::TextDelta { text: "ok".into() }),
                Ok(ChatEvent::Done {
                    finish_reason: FinishReason::Stop,
                }),
            ];
            Box::pin(futures::stream::iter(events))
        },
        completes: false,
    }
}

#[tokio::test]
async fn metrics_stay_bounded_under_distinct_model_names() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slot = ProviderSlot::new("anyup", Arc::new(any_model()), Locality::Local);
    let router = router_over(
        vec![slot],
        json!({ "routes": { "any": { "targets": ["anyup/known-model"] } } }),
    );
    let h = Harness::serve(Kind::OpenAi, upstream, router, gateway_config()).await;
    let client = http();
    // A configured target keeps its own label.
    let r = client
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "any", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for i in 0..300 {
        let model = format!("anyup/{i:03}-{}", "x".repeat(196));
        let r = client
            .post(h.url("/v1/chat/completions"))
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
        let _ = r.bytes().await.unwrap();
    }
    let text = send_text(client.get(h.url("/metrics"))).await;
    assert!(text.len() < 300 * 1024, "/metrics is {} bytes", text.len());
    assert!(
        !text.contains("xxxxxxxx"),
        "a request's model name became a label"
    );
    assert!(text.contains("target=\"anyup/other\""), "{text}");
    assert!(text.contains("target=\"anyup/known-model\""), "{text}");
    h.shutdown().await;
}

/// An Ollama `-cloud` model pulled after the gateway first listed the daemon's models is
/// served to a `local-only` key when named exactly (`up/gpt-oss:120b-cloud`).
///
/// docs/DECISIONS.md ("A model's own locality overrides its provider's when more exposed"):
/// a model with `remote_host` or a `-cloud` tag runs on Ollama's servers and is `cloud` for
/// planning and the dispatch check. The dispatch check (router `route.rs::dispatch`) only
/// refreshes a catalog that was NEVER listed; a known catalog without the model (listed
/// before the pull) is trusted forever for exact targets (`plan_with_fresh_catalogs`
/// refreshes only bare or unknown names), so `Slot::model_locality` falls back to the
/// provider's `local` and the prompt goes to Ollama's cloud. Right: a `local-only` request
/// for a model the cached catalog does not list refreshes it (or treats a `-cloud` name
/// as cloud) and is refused with 403 `policy_blocked`; nothing reaches the upstream.
#[tokio::test]
async fn an_ollama_cloud_model_pulled_after_the_first_listing_is_refused_to_local_only_keys() {
    let h = Harness::start_with_routes(
        Kind::Ollama,
        UpstreamConfig::default(),
        keyed_config(),
        default_routes(),
    )
    .await;
    let chat = |model: &str| {
        json!({"model": model, "stream": false,
               "messages": [{"role": "user", "content": "my secret"}]})
    };
    // The first local-only request lists the daemon's models (only `test-model`).
    let r = post_json(
        &h,
        "/v1/chat/completions",
        Some("sk-private"),
        chat("up/test-model"),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(h.upstream.chat_request_count(), 1);
    // `ollama pull gpt-oss:120b-cloud` on the daemon.
    h.upstream.set_models(vec![
        ModelSpec::new("test-model"),
        ModelSpec::new("gpt-oss:120b-cloud").remote("https://ollama.com:443"),
    ]);
    let r = post_json(
        &h,
        "/v1/chat/completions",
        Some("sk-private"),
        chat("up/gpt-oss:120b-cloud"),
    )
    .await;
    let status = r.status();
    let body = r.text().await.unwrap();
    assert_eq!(
        h.upstream.chat_request_count(),
        1,
        "a local-only prompt reached Ollama's cloud model ({status}): {body}"
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("policy_blocked"), "{body}");
    h.shutdown().await;
}

#[tokio::test]
async fn ollama_cloud_models_are_refused_to_local_only_keys() {
    let upstream = UpstreamConfig::default()
        .model(ModelSpec::new("gpt-oss:120b-cloud").remote("https://ollama.com:443"))
        .model(ModelSpec::new("kimi-k2:1t-cloud"));
    let routes = json!({ "routes": {
        "chat": { "targets": ["up/test-model"] },
        "cloudy": { "targets": ["up/gpt-oss:120b-cloud"] },
    } });
    let h = Harness::start_with_routes(Kind::Ollama, upstream, keyed_config(), routes).await;
    for model in [
        "up/gpt-oss:120b-cloud",
        "cloudy",
        "gpt-oss:120b-cloud",
        "up/kimi-k2:1t-cloud",
    ] {
        for path in ["/v1/chat/completions", "/api/chat"] {
            let chat = json!({"model": model, "stream": false,
                "messages": [{"role": "user", "content": "Hi"}]});
            let r = post_json(&h, path, Some("sk-private"), &chat).await;
            assert_eq!(r.status(), 403, "{model} on {path}");
            let body = r.text().await.unwrap();
            assert!(body.contains("policy_blocked"), "{model} on {path}: {body}");
        }
    }
    assert_eq!(h.upstream.chat_request_count(), 0);
    // The local model still serves the local-only key, and the cloud model other keys.
    let chat = |model: &str| json!({"model": model, "stream": false, "messages": [{"role": "user", "content": "Hi"}]});
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth("sk-private")
        .json(&chat("chat"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .bearer_auth("sk-laptop")
        .json(&chat("cloudy"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let served: Vec<String> = h
        .upstream
        .chat_requests()
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(served.len(), 2, "{served:?}");
    assert!(served[0].contains("test-model"), "{served:?}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_non_streamed_502_does_not_claim_the_answer_started() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c", "d", "e"])
            .with_chunk_delay(Duration::from_millis(20))
            .with_fault(Fault::DropAfterChunks(2)),
    );
    let h = Harness::start(Kind::Ollama, upstream, gateway_config()).await;
    for path in ["/v1/chat/completions", "/api/chat"] {
        let r = http()
            .post(h.url(path))
            .json(&json!({"model": "chat", "stream": false,
                "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502, "{path}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("answer started"), "{path}: {body}");
        assert!(
            body.contains("before the end of its answer"),
            "{path}: {body}"
        );
    }
    h.shutdown().await;
}

#[tokio::test]
async fn empty_messages_and_non_object_tool_schemas_are_400_naming_the_field() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let tool = |parameters: Value| json!([{"type": "function", "function": {"name": "f", "parameters": parameters}}]);
    let user = json!([{"role": "user", "content": "Hi"}]);
    let cases = [
        (json!({"model": "chat", "messages": []}), "messages"),
        (json!({"model": "chat"}), "messages"),
        (
            json!({"model": "chat", "messages": user, "tools": tool(json!("a string"))}),
            "tools[0].function.parameters",
        ),
        (
            json!({"model": "chat", "messages": user, "tools": tool(json!([1, 2]))}),
            "tools[0].function.parameters",
        ),
    ];
    for path in ["/v1/chat/completions", "/api/chat"] {
        for (body, field) in &cases {
            let r = http().post(h.url(path)).json(body).send().await.unwrap();
            assert_eq!(r.status(), 400, "{path} {body}");
            let text = r.text().await.unwrap();
            assert!(text.contains(field), "{path} {body}: {text}");
        }
    }
    assert_eq!(h.upstream.chat_request_count(), 0);
    h.shutdown().await;
}

#[tokio::test]
async fn method_not_allowed_and_bad_model_paths_answer_in_the_api_error_shape() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let r = http()
        .get(h.url("/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["message"].is_string(), "{body}");
    let r = http().get(h.url("/api/chat")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"].is_string(), "{body}");
    let r = http().get(h.url("/v1/models/%ff")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    h.shutdown().await;
}

#[tokio::test]
async fn a_connection_that_never_sends_a_byte_is_closed() {
    use tokio::io::AsyncReadExt;
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let mut silent = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let mut buf = [0u8; 64];
    // The gateway closes it after its header read timeout (2 s here); WAIT only bounds the test.
    let n = tokio::time::timeout(WAIT, silent.read(&mut buf))
        .await
        .expect("the silent connection stayed open")
        .unwrap_or(0);
    assert_eq!(n, 0);
    // Ordinary requests still work.
    assert_eq!(
        http().get(h.url("/healthz")).send().await.unwrap().status(),
        200
    );
    h.shutdown().await;
}

#[tokio::test]
async fn at_the_connection_cap_a_new_connection_waits_for_a_free_one() {
    let config = GatewayConfig {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(30),
        ..gateway_config()
    };
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), config).await;
    // One silent connection takes the only place.
    let silent = tokio::net::TcpStream::connect(h.addr).await.unwrap();
    let waiting = tokio::spawn({
        let url = h.url("/healthz");
        async move { http().get(url).send().await.map(|r| r.status()) }
    });
    // Once it closes, the waiting request is served.
    drop(silent);
    let status = tokio::time::timeout(WAIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
    h.shutdown().await;
}

/// The model ids `/v1/models` and `/api/tags` list for `key`, in that order.
async fn listed_for(h: &Harness, key: &str) -> (Vec<String>, Vec<String>) {
    let v1: Value = send_json(http().get(h.url("/v1/models")).bearer_auth(key)).await;
    let tags: Value = send_json(http().get(h.url("/api/tags")).bearer_auth(key)).await;
    let ids = |list: &Value, field: &str| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m[field].as_str().unwrap().to_owned())
            .collect()
    };
    (ids(&v1["data"], "id"), ids(&tags["models"], "name"))
}

#[tokio::test]
async fn model_lists_show_only_what_the_calling_key_may_use() {
    let local = UpstreamConfig::default()
        .model(ModelSpec::new("gpt-oss:120b-cloud").remote("https://ollama.com:443"));
    let routes = json!({ "routes": {
        "chat": { "targets": ["up/test-model"] },
        "mixed": { "targets": ["cloud/test-model", "up/test-model"] },
        "cloudonly": { "targets": ["cloud/test-model"] },
        "other": { "targets": ["up/test-model"] },
    } });
    let (h, cloud) = cloud_and_local(local, routes).await;

    let (v1, tags) = listed_for(&h, "sk-laptop").await;
    for id in [
        "chat",
        "mixed",
        "cloudonly",
        "cloud/test-model",
        "up/test-model",
    ] {
        assert!(v1.contains(&id.to_owned()), "{id} in {v1:?}");
    }
    assert!(v1.contains(&"up/gpt-oss:120b-cloud".to_owned()), "{v1:?}");
    assert_eq!(v1, tags, "both APIs list the same models");

    // A local-only key: no cloud provider's models, no Ollama `-cloud` model, no route
    // that leads only to the cloud; a route with a local target stays.
    let (v1, tags) = listed_for(&h, "sk-private").await;
    assert_eq!(v1, tags);
    for id in ["chat", "mixed", "up/test-model"] {
        assert!(v1.contains(&id.to_owned()), "{id} in {v1:?}");
    }
    for id in ["cloudonly", "cloud/test-model", "up/gpt-oss:120b-cloud"] {
        assert!(
            !v1.contains(&id.to_owned()),
            "{id} listed to a local-only key: {v1:?}"
        );
    }
    // A key limited to some routes sees those only.
    let (v1, _) = listed_for(&h, "sk-narrow").await;
    assert_eq!(v1, vec!["other".to_owned()]);
    cloud.shutdown().await;
    h.shutdown().await;
}

/// Three upstreams: two Ollama servers (versions 0.9.0 and 0.7.1) and an OpenAI-compatible
/// one in the cloud; routes over all three; an admin key and a plain one.
async fn lifecycle_harness() -> (Harness, TestUpstream, TestUpstream) {
    let lan = TestUpstream::start(UpstreamConfig::default().version("0.9.0"))
        .await
        .unwrap();
    let cloud = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let local = TestUpstream::start(UpstreamConfig::default().version("0.7.1"))
        .await
        .unwrap();
    let slots = vec![
        ProviderSlot::new(
            "up",
            provider(Kind::Ollama, &local, Locality::Local),
            Locality::Local,
        ),
        ProviderSlot::new(
            "lan",
            provider(Kind::Ollama, &lan, Locality::Lan),
            Locality::Lan,
        ),
        ProviderSlot::new(
            "cloud",
            provider(Kind::OpenAi, &cloud, Locality::Cloud),
            Locality::Cloud,
        ),
    ];
    let router = router_over(slots, default_routes());
    let config = GatewayConfig {
        keys: vec![
            ApiKey {
                admin: true,
                ..ApiKey::new("ops", "sk-ops")
            },
            ApiKey::new("laptop", "sk-laptop"),
        ],
        ..gateway_config()
    };
    (
        Harness::serve(Kind::Ollama, local, router, config).await,
        lan,
        cloud,
    )
}

#[tokio::test]
async fn api_version_is_the_lowest_ollama_upstreams_floored_or_the_documented_fallback() {
    let (h, lan, cloud) = lifecycle_harness().await;
    let r = http().get(h.url("/api/version")).send().await.unwrap();
    assert_eq!(
        r.headers()["x-switchyard-version"],
        env!("CARGO_PKG_VERSION")
    );
    let body: Value = r.json().await.unwrap();
    // The lowest upstream (0.7.1) is below the floor Codex CLI needs: the floor.
    assert_eq!(body["version"], switchyard_gateway::FALLBACK_OLLAMA_VERSION);
    // Neither Ollama answers: the fixed version.
    h.upstream.set_fault(Some(Fault::Refuse));
    lan.set_fault(Some(Fault::Refuse));
    let body: Value = send_json(http().get(h.url("/api/version"))).await;
    assert_eq!(body["version"], switchyard_gateway::FALLBACK_OLLAMA_VERSION);
    lan.shutdown().await;
    cloud.shutdown().await;
    h.shutdown().await;
}

async fn pull(h: &Harness, key: &str, body: Value) -> (u16, String) {
    let r = post_json(h, "/api/pull", Some(key), &body).await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap())
}

#[tokio::test]
async fn api_pull_needs_an_admin_key_and_a_local_provider_and_streams_progress() {
    let (h, lan, cloud) = lifecycle_harness().await;
    // Not an admin.
    let (status, body) = pull(&h, "sk-laptop", json!({"model": "up/qwen3:0.6b"})).await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("admin"), "{body}");
    // Two local providers: which one must be said.
    let (status, body) = pull(&h, "sk-ops", json!({"model": "qwen3:0.6b"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("up, lan"), "{body}");
    // Never onto a cloud provider.
    let (status, body) = pull(
        &h,
        "sk-ops",
        json!({"model": "qwen3:0.6b", "provider": "cloud"}),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(cloud.request_count(), 0);
    // Streamed progress from the named provider, NDJSON, ending in success.
    let (status, body) = pull(&h, "sk-ops", json!({"model": "lan/qwen3:0.6b"})).await;
    assert_eq!(status, 200, "{body}");
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["status"], "pulling manifest");
    assert_eq!(lines.last().unwrap()["status"], "success");
    assert!(
        lines
            .iter()
            .any(|l| l["completed"].is_u64() && l["total"].is_u64())
    );
    let sent = lan.requests().last().unwrap().body.clone();
    assert!(String::from_utf8_lossy(&sent).contains("\"qwen3:0.6b\""));
    assert_eq!(
        h.upstream.request_count(),
        0,
        "the other local provider untouched"
    );
    // Not streamed: the last report. A failure mid-pull is an error line, or an error.
    let (status, body) = pull(
        &h,
        "sk-ops",
        json!({"model": "qwen3:0.6b", "provider": "up", "stream": false}),
    )
    .await;
    assert_eq!((status, body.as_str()), (200, r#"{"status":"success"}"#));
    let (status, body) = pull(&h, "sk-ops", json!({"model": "up/missing-x"})).await;
    assert_eq!(status, 200);
    assert!(body.lines().last().unwrap().contains("\"error\""), "{body}");
    lan.shutdown().await;
    cloud.shutdown().await;
    h.shutdown().await;
}

async fn readyz(h: &Harness) -> (u16, Value) {
    let r = http().get(h.url("/readyz")).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// Polls `/readyz` until it answers `status` (bounded: 200 tries, 25 ms apart).
async fn readyz_until(h: &Harness, status: u16) -> Value {
    for _ in 0..200 {
        let (s, body) = readyz(h).await;
        if s == status {
            return body;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("/readyz never answered {status}");
}

#[tokio::test]
async fn warm_models_load_with_keep_alive_and_readyz_waits_for_them() {
    use switchyard_gateway::WarmTarget;
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    // The upstream hangs: /readyz names the model it waits for, then gives up waiting.
    h.upstream.set_fault(Some(Fault::AcceptAndHang));
    let target = WarmTarget {
        provider: "up".into(),
        model: "test-model".into(),
        keep_alive: Some(switchyard_core::KeepAlive::Seconds(-1.0)),
    };
    h.gateway
        .warm(vec![target.clone()], Duration::from_millis(400));
    let (status, body) = readyz(&h).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["warming"], json!(["up/test-model"]));
    let body = readyz_until(&h, 200).await;
    assert!(body.get("warming").is_none(), "{body}");

    // The upstream answers: the model is loaded, kept loaded, and /api/ps lists it.
    h.upstream.set_fault(None);
    h.gateway.warm(vec![target], Duration::from_secs(5));
    readyz_until(&h, 200).await;
    let load = h
        .upstream
        .requests()
        .into_iter()
        .rfind(|r| r.path == "/api/generate")
        .expect("a load request");
    let load: Value = serde_json::from_slice(&load.body).unwrap();
    assert_eq!(load["model"], "test-model");
    assert_eq!(load["keep_alive"], -1.0);
    let ps: Value = send_json(http().get(h.url("/api/ps"))).await;
    assert_eq!(ps["models"][0]["name"], "up/test-model", "{ps}");
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Embeddings

/// Posts `body` as JSON to the gateway's `path`, with `key` as a bearer token if any.
async fn post_json(
    h: &Harness,
    path: &str,
    key: Option<&str>,
    body: impl std::borrow::Borrow<Value>,
) -> reqwest::Response {
    let mut r = http().post(h.url(path));
    if let Some(k) = key {
        r = r.bearer_auth(k);
    }
    r.json(body.borrow()).send().await.unwrap()
}

fn embed_requests(upstream: &TestUpstream) -> usize {
    upstream
        .requests()
        .iter()
        .filter(|r| r.path.contains("embed"))
        .count()
}

#[tokio::test]
async fn embeddings_on_both_apis_reach_both_kinds_of_upstream() {
    use switchyard_testkit::{DEFAULT_DIMENSIONS, vector_for};
    for kind in [Kind::Ollama, Kind::OpenAi] {
        let h = Harness::start(kind, UpstreamConfig::default(), gateway_config()).await;
        let want = |t: &str| vector_for(t, DEFAULT_DIMENSIONS);
        let floats = |v: &Value| -> Vec<f32> { serde_json::from_value(v.clone()).unwrap() };
        // Ollama /api/embed, a batch.
        let r = post_json(
            &h,
            "/api/embed",
            None,
            json!({"model": "chat", "input": ["why is the sky blue", "hi"]}),
        )
        .await;
        assert_eq!(r.status(), 200, "{kind:?}");
        assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
        assert_eq!(r.headers()["x-switchyard-route-reason"], "primary");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model"], "chat");
        let got: Vec<Vec<f32>> = serde_json::from_value(v["embeddings"].clone()).unwrap();
        assert_eq!(
            got,
            vec![want("why is the sky blue"), want("hi")],
            "{kind:?}"
        );
        assert_eq!(v["prompt_eval_count"], 6);
        // The older /api/embeddings.
        let v: Value = post_json(
            &h,
            "/api/embeddings",
            None,
            json!({"model": "chat", "prompt": "llamas"}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(floats(&v["embedding"]), want("llamas"), "{kind:?}");
        // OpenAI /v1/embeddings with dimensions, float and base64.
        let v: Value = post_json(
            &h,
            "/v1/embeddings",
            None,
            json!({"model": "up/test-model", "input": "abc", "dimensions": 3}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(v["object"], "list");
        assert_eq!(
            floats(&v["data"][0]["embedding"]),
            vector_for("abc", 3),
            "{kind:?}"
        );
        assert_eq!(v["usage"]["prompt_tokens"], 1);
        let v: Value = post_json(
            &h,
            "/v1/embeddings",
            None,
            json!({"model": "chat", "input": ["abc"], "encoding_format": "base64"}),
        )
        .await
        .json()
        .await
        .unwrap();
        let b64 = v["data"][0]["embedding"].as_str().unwrap();
        let back = switchyard_stream::embed::openai::decode_response(
            json!({"data": [{"index": 0, "embedding": b64}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(back.vectors[0], vector_for("abc", DEFAULT_DIMENSIONS));
        // What the upstream was sent, in its own API.
        let sent: Vec<_> = h
            .upstream
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("embed"))
            .collect();
        let path = if kind == Kind::Ollama {
            "/api/embed"
        } else {
            "/v1/embeddings"
        };
        assert!(sent.iter().all(|r| r.path == path), "{kind:?}: {sent:?}");
        assert_eq!(sent[2].body_json().unwrap()["dimensions"], 3);
        // Errors name the field, in the client's API shape.
        let r = post_json(
            &h,
            "/v1/embeddings",
            None,
            json!({"model": "chat", "input": [[1, 2]]}),
        )
        .await;
        assert_eq!(r.status(), 400);
        let v: Value = r.json().await.unwrap();
        assert!(
            v["error"]["message"].as_str().unwrap().contains("input[0]"),
            "{v}"
        );
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_local_only_caller_never_reaches_a_cloud_embedding_target() {
    let routes = json!({ "routes": {
        "chat": { "targets": ["cloud/test-model", "up/test-model"] },
        "other": { "targets": ["cloud/test-model"] },
    } });
    let (h, cloud) = cloud_and_local(UpstreamConfig::default(), routes).await;
    let body = json!({"model": "chat", "input": "private text"});
    // Any key: the route's first target, the cloud.
    let r = post_json(&h, "/api/embed", Some("sk-laptop"), body.clone()).await;
    assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    assert_eq!(embed_requests(&cloud), 1);
    // Local-only key, on every endpoint: the local target, the cloud never asked.
    for path in ["/api/embed", "/api/embeddings", "/v1/embeddings"] {
        let r = post_json(
            &h,
            path,
            Some("sk-private"),
            json!({"model": "chat", "input": "private text", "prompt": "private text"}),
        )
        .await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(
            r.headers()["x-switchyard-target"],
            "up/test-model",
            "{path}"
        );
    }
    let r = post_json(
        &h,
        "/v1/embeddings",
        Some("sk-private"),
        json!({"model": "cloud/test-model", "input": "private text"}),
    )
    .await;
    assert_eq!(r.status(), 403);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "policy_blocked");
    assert_eq!(
        embed_requests(&cloud),
        1,
        "the cloud saw only the unrestricted caller"
    );
    cloud.shutdown().await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_target_without_embeddings_is_skipped_with_a_reason() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slots = vec![
        ProviderSlot::new("anyup", Arc::new(any_model()), Locality::Local),
        ProviderSlot::new(
            "up",
            provider(Kind::Ollama, &upstream, Locality::Local),
            Locality::Local,
        ),
    ];
    let router = router_over(
        slots,
        json!({ "routes": { "emb": { "targets": ["anyup/x", "up/test-model"] } } }),
    );
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    let r = post_json(
        &h,
        "/api/embed",
        None,
        json!({"model": "emb", "input": "a"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(
        r.headers()["x-switchyard-route-reason"],
        "fallback_after_unsupported"
    );
    // Named exactly: the provider's own answer, 501 in the API's shape.
    let r = post_json(
        &h,
        "/v1/embeddings",
        None,
        json!({"model": "anyup/x", "input": "a"}),
    )
    .await;
    assert_eq!(r.status(), 501);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unsupported");
    h.shutdown().await;
}

#[tokio::test]
async fn chat_and_embeddings_share_one_concurrency_limit() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(40, Duration::from_millis(25)),
    );
    let upstream = TestUpstream::start(upstream).await.unwrap();
    let mut slot = ProviderSlot::new(
        "up",
        provider(Kind::Ollama, &upstream, Locality::Local),
        Locality::Local,
    );
    slot.max_concurrency = 1;
    slot.max_queue = 0;
    let router = router_over(vec![slot], default_routes());
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    // A streamed chat holds the provider's one slot while it streams.
    let chat = post_json(
        &h,
        "/api/chat",
        None,
        json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(chat.status(), 200);
    let r = post_json(
        &h,
        "/api/embed",
        None,
        json!({"model": "chat", "input": "a"}),
    )
    .await;
    assert_eq!(
        r.status(),
        429,
        "the embedding waits for the same slot as the chat"
    );
    let v: Value = r.json().await.unwrap();
    assert!(v["error"].as_str().unwrap().contains("in flight"), "{v}");
    assert_eq!(embed_requests(&h.upstream), 0);
    // When the chat is done, the slot is free for embeddings.
    let _ = chat.text().await.unwrap();
    let mut status = 0;
    for _ in 0..100 {
        let r = post_json(
            &h,
            "/api/embed",
            None,
            json!({"model": "chat", "input": "a"}),
        )
        .await;
        status = r.status().as_u16();
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, 200);
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Generate and legacy completions

#[tokio::test]
async fn generate_and_completions_on_both_apis_reach_both_kinds_of_upstream() {
    use switchyard_testkit::completion_for;
    let fim = completion_for("def add(a, b):", Some("\nprint(add(1, 2))"));
    for kind in [Kind::Ollama, Kind::OpenAi] {
        let h = Harness::start(kind, UpstreamConfig::default(), gateway_config()).await;
        // Ollama /api/generate, streamed (the default), with a suffix.
        let r = post_json(&h, "/api/generate", None, json!({"model": "chat",
            "prompt": "def add(a, b):", "suffix": "\nprint(add(1, 2))", "options": {"temperature": 0}})).await;
        assert_eq!(r.status(), 200, "{kind:?}");
        assert_eq!(r.headers()["content-type"], "application/x-ndjson");
        assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
        let body = r.text().await.unwrap();
        let lines: Vec<Value> = body
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let text: String = lines
            .iter()
            .filter_map(|l| l["response"].as_str())
            .collect();
        assert_eq!(text, fim, "{kind:?}: {body}");
        assert!(lines.len() >= 3, "streamed in parts: {body}");
        let last = lines.last().unwrap();
        assert_eq!(
            (last["done"].clone(), last["done_reason"].clone()),
            (json!(true), json!("stop"))
        );
        assert_eq!(last["prompt_eval_count"], 3);
        // Whole.
        let v: Value = post_json(
            &h,
            "/api/generate",
            None,
            json!({"model": "chat", "prompt": "hi there", "stream": false}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(v["response"], "Hello from the test upstream.", "{kind:?}");
        assert_eq!(v["done"], true);
        // OpenAI /v1/completions, whole (the default) and streamed, with a suffix.
        let v: Value = post_json(
            &h,
            "/v1/completions",
            None,
            json!({"model": "chat",
            "prompt": "def add(a, b):", "suffix": "\nprint(add(1, 2))", "max_tokens": 16}),
        )
        .await
        .json()
        .await
        .unwrap();
        assert_eq!(v["object"], "text_completion");
        assert_eq!(v["choices"][0]["text"], fim.as_str(), "{kind:?}");
        assert_eq!(v["choices"][0]["finish_reason"], "stop");
        assert_eq!(v["usage"]["prompt_tokens"], 3);
        let r = post_json(
            &h,
            "/v1/completions",
            None,
            json!({"model": "chat", "prompt": ["hi"], "stream": true}),
        )
        .await;
        assert_eq!(r.headers()["content-type"], "text/event-stream");
        let body = r.text().await.unwrap();
        assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
        let text: String = body
            .split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .filter_map(|c| c["choices"][0]["text"].as_str().map(str::to_owned))
            .collect();
        assert_eq!(text, "Hello from the test upstream.", "{kind:?}");
        // Natively to Ollama, as /v1/completions to OpenAI-compatible upstreams; the
        // suffix and options reach them.
        let sent: Vec<_> = h
            .upstream
            .requests()
            .into_iter()
            .filter(|r| r.path.contains("generate") || r.path.contains("completions"))
            .collect();
        let path = if kind == Kind::Ollama {
            "/api/generate"
        } else {
            "/v1/completions"
        };
        assert!(sent.iter().all(|r| r.path == path), "{kind:?}: {sent:?}");
        let first = sent[0].body_json().unwrap();
        assert_eq!(first["suffix"], "\nprint(add(1, 2))", "{kind:?}");
        if kind == Kind::Ollama {
            assert_eq!(first["options"]["temperature"], 0.0);
        } else {
            assert_eq!(sent[2].body_json().unwrap()["max_tokens"], 16);
        }
        // Token-array prompts are refused naming the field.
        let r = post_json(
            &h,
            "/v1/completions",
            None,
            json!({"model": "chat", "prompt": [1, 2]}),
        )
        .await;
        assert_eq!(r.status(), 400);
        h.shutdown().await;
    }
}

#[tokio::test]
async fn a_local_only_caller_never_reaches_a_cloud_completion_target() {
    let routes =
        json!({ "routes": { "chat": { "targets": ["cloud/test-model", "up/test-model"] } } });
    let (h, cloud) = cloud_and_local(UpstreamConfig::default(), routes).await;
    for (path, body) in [
        (
            "/api/generate",
            json!({"model": "chat", "prompt": "secret", "stream": false}),
        ),
        (
            "/v1/completions",
            json!({"model": "chat", "prompt": "secret"}),
        ),
    ] {
        let r = post_json(&h, path, Some("sk-private"), body.clone()).await;
        assert_eq!(r.status(), 200, "{path}");
        assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
        let r = post_json(&h, path, Some("sk-laptop"), body).await;
        assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    }
    let to_cloud = cloud
        .requests()
        .iter()
        .filter(|r| r.path == "/v1/completions")
        .count();
    assert_eq!(to_cloud, 2, "only the unrestricted key's requests");
    cloud.shutdown().await;
    h.shutdown().await;
}

#[tokio::test]
async fn embeddings_spend_is_priced_per_input_token_against_the_budget() {
    let cloud = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut priced = switchyard_core::ModelInfo::new("test-model", Locality::Cloud);
    // A dollar per input token, nothing per output token.
    priced.price = Some(switchyard_core::Price {
        input_usd_per_mtok: 1_000_000.0,
        output_usd_per_mtok: 0.0,
        ..Default::default()
    });
    let mut cloud_slot = ProviderSlot::new(
        "cloud",
        provider(Kind::OpenAi, &cloud, Locality::Cloud),
        Locality::Cloud,
    );
    cloud_slot.models = vec![priced];
    let slots = vec![
        cloud_slot,
        ProviderSlot::new(
            "up",
            provider(Kind::Ollama, &local, Locality::Local),
            Locality::Local,
        ),
    ];
    let router = router_over(
        slots,
        json!({ "routes": { "emb": { "targets": ["cloud/test-model", "up/test-model"] } },
                "policy": { "budget": { "usd_per_day": 1.5 } } }),
    );
    let h = Harness::serve(Kind::Ollama, local, router, gateway_config()).await;
    // Two input tokens: $2 spent, over the $1.50 cap.
    let r = post_json(
        &h,
        "/v1/embeddings",
        None,
        json!({"model": "emb", "input": "two words"}),
    )
    .await;
    assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["usage"]["prompt_tokens"], 2);
    // The cap now keeps the cloud out: the local target serves, the cloud is not asked.
    let r = post_json(
        &h,
        "/v1/embeddings",
        None,
        json!({"model": "emb", "input": "more words"}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(embed_requests(&cloud), 1);
    let r = post_json(
        &h,
        "/api/embed",
        None,
        json!({"model": "cloud/test-model", "input": "x"}),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.text().await.unwrap().contains("budget"), "a spending cap");
    assert_eq!(embed_requests(&cloud), 1);
    // The decision is visible in the metrics like a chat's.
    let metrics = send_text(http().get(h.url("/metrics"))).await;
    assert!(metrics.contains("cloud/test-model"), "{metrics}");
    cloud.shutdown().await;
    h.shutdown().await;
}

const INTERNAL_URL: &str = "http://10.9.8.7:11434/internal";

/// A provider whose answers (chat and completion) break off after the first text with an
/// error naming an internal upstream URL, as an upstream's error line would.
fn breaks_mid_answer() -> Unlisted {
    Unlisted {
        answer: breaking_stream,
        completes: true,
    }
}

fn breaking_stream() -> ChatStream {
    let events = vec![
        Ok(ChatEvent::TextDelta { text: "a".into() }),
        Err(ProviderError::new(
            switchyard_core::ErrorKind::Upstream,
            format!("runner at {INTERNAL_URL} crashed"),
        )),
    ];
    Box::pin(futures::stream::iter(events))
}

/// Upstream details (URLs, provider ids) are for admin keys only: an error after the first
/// byte of a streamed `/api/generate` (or `/v1/completions`) answer must be shown to a
/// non-admin key the way `/api/chat` shows it, with the generic message.
#[tokio::test]
async fn a_streamed_completion_error_hides_upstream_details_from_non_admin_keys() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slot = ProviderSlot::new("broken", Arc::new(breaks_mid_answer()), Locality::Local);
    let router = router_over(
        vec![slot],
        json!({ "routes": { "chat": { "targets": ["broken/test-model"] } } }),
    );
    let config = GatewayConfig {
        keys: vec![ApiKey::new("user", "sk-user")],
        // Every test caller is on loopback: pretend a proxy on this host forwards them.
        loopback_is_admin: false,
        ..gateway_config()
    };
    let h = Harness::serve(Kind::Ollama, upstream, router, config).await;

    // The chat path hides them (the documented behaviour).
    let r = post_json(
        &h,
        "/api/chat",
        Some("sk-user"),
        json!({"model": "chat", "stream": true, "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    let chat = r.text().await.unwrap();
    assert!(chat.contains("\"error\""), "{chat}");
    assert!(!chat.contains("10.9.8.7"), "{chat}");

    let mut leaks = Vec::new();
    for (path, body) in [
        (
            "/api/generate",
            json!({"model": "chat", "prompt": "Hi", "stream": true}),
        ),
        (
            "/v1/completions",
            json!({"model": "chat", "prompt": "Hi", "stream": true}),
        ),
    ] {
        let r = post_json(&h, path, Some("sk-user"), body).await;
        assert_eq!(r.status(), 200, "{path}");
        let text = r.text().await.unwrap();
        assert!(text.contains("error"), "{path}: {text}");
        if text.contains("10.9.8.7") || text.contains("broken/test-model") {
            leaks.push(format!("{path}: {text}"));
        }
    }
    assert!(
        leaks.is_empty(),
        "a non-admin key sees the upstream's details: {leaks:#?}"
    );
    h.shutdown().await;
}

/// `tokens_per_minute` must hold for a client that leaves before its answer's usage
/// arrives: the upstream has already read the whole prompt (and written part of the
/// answer), so those tokens count, as a priced answer without usage is charged an estimate.
/// Otherwise a key limited to 10 tokens a minute sends prompts of any size, back to back,
/// by closing each stream before its last chunk.
#[tokio::test]
async fn tokens_per_minute_hold_when_the_client_leaves_before_the_usage() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(100, Duration::from_millis(30)),
    );
    let config = GatewayConfig {
        keys: vec![ApiKey {
            tokens_per_minute: Some(10),
            ..ApiKey::new("tokens", "sk-tokens")
        }],
        ..gateway_config()
    };
    let h = Harness::start(Kind::Ollama, upstream, config).await;
    // About 1,000 tokens of prompt by the gateway's own estimate (bytes / 4).
    let prompt = "lorem ipsum ".repeat(350);
    let chat = json!({"model": "chat", "stream": true,
        "messages": [{"role": "user", "content": prompt}]});
    let mut response = post_json(&h, "/v1/chat/completions", Some("sk-tokens"), &chat).await;
    assert_eq!(response.status(), 200);
    let first = tokio::time::timeout(WAIT, response.chunk())
        .await
        .unwrap()
        .unwrap();
    assert!(first.is_some());
    drop(response);
    assert!(
        eventually(|| h.upstream.aborted_streams() == 1).await,
        "upstream stream not aborted"
    );
    let r = post_json(&h, "/v1/chat/completions", Some("sk-tokens"), &chat).await;
    assert_eq!(
        r.status(),
        429,
        "a ~1,000-token prompt was served and the 10-tokens-a-minute key was not charged"
    );
    h.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Review: metrics, embeddings and completions against the documented behaviour

/// `switchyard_fallbacks_total` is documented (crates/switchyard-router/src/metrics.rs,
/// `FALLBACKS_TOTAL`) as "requests served by a target other than the first planned one
/// (`fallback_after_<code>`, `overflow_queue_full`, ...)". A request served by a retry on
/// its route's one and only target was served by the first planned target, so it is no
/// fallback; today it is counted as one, labelled `reason="retry"`.
#[tokio::test]
async fn a_retry_on_the_first_planned_target_is_not_counted_as_a_fallback() {
    let routes = json!({ "routes": { "chat": { "targets": ["up/test-model"] } },
                         "retry": { "max_retries": 1, "base_backoff_ms": 300 } });
    let h = Harness::start_with_routes(
        Kind::Ollama,
        UpstreamConfig::default(),
        gateway_config(),
        routes,
    )
    .await;
    h.upstream.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    // The fault clears right after the first try: the retry on the same target serves.
    let send = http()
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "chat", "stream": false,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send();
    let clear = async {
        assert!(eventually(|| h.upstream.chat_request_count() >= 1).await);
        h.upstream.set_fault(None);
    };
    let (r, ()) = tokio::join!(send, clear);
    let r = r.unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    assert_eq!(r.headers()["x-switchyard-route-reason"], "retry");
    let _ = r.text().await.unwrap();
    assert_eq!(h.upstream.chat_request_count(), 2, "one try and one retry");

    let metrics = send_text(http().get(h.url("/metrics"))).await;
    let counted: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_fallbacks_total{") && l.contains("reason=\"retry\""))
        .collect();
    assert!(
        counted.is_empty(),
        "served by the first planned target, yet counted as a fallback: {counted:?}"
    );
    h.shutdown().await;
}

/// OpenAI's embeddings reference (`input`): "The input must not exceed the max input tokens
/// for the model, cannot be an empty string, and any array must be 2048 dimensions or
/// less." The gateway already refuses an empty list and token arrays with a 400 naming
/// `input` (embed/openai.rs); an empty string (alone or in the list) is sent upstream.
#[tokio::test]
async fn openai_embeddings_refuse_an_empty_string_input() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    for input in [json!(""), json!([""]), json!(["abc", ""])] {
        let r = post_json(
            &h,
            "/v1/embeddings",
            None,
            json!({"model": "chat", "input": input}),
        )
        .await;
        let status = r.status();
        let body = r.text().await.unwrap();
        assert_eq!(status, 400, "input {input}: {body}");
        assert!(body.contains("input"), "the error names `input`: {body}");
    }
    assert_eq!(
        embed_requests(&h.upstream),
        0,
        "nothing reached the upstream"
    );
    h.shutdown().await;
}

/// OpenAI's completions reference, `stream_options.include_usage`: "If set, an additional
/// chunk will be streamed before the `data: [DONE]` message ... the `choices` field will
/// always be an empty array" (docs/WIRE.md says the same for chat: "With
/// `stream_options.include_usage`, a last chunk has `choices: []` and `usage`"). The chat
/// endpoint honours it (`include_usage`); a streamed `/v1/completions` answer always sends
/// the `choices: []` usage chunk, which a client that did not ask for it reads as a chunk
/// without `choices[0]`.
#[tokio::test]
async fn streamed_completions_send_the_usage_chunk_only_when_asked() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let frames = |body: &str| -> Vec<Value> {
        body.split("\n\n")
            .filter_map(|f| f.strip_prefix("data: "))
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str::<Value>(d).unwrap())
            .collect()
    };
    let usage_chunks = |chunks: &[Value]| {
        chunks
            .iter()
            .filter(|c| c["choices"].as_array().is_some_and(Vec::is_empty))
            .count()
    };
    // Asked: one usage chunk.
    let asked = post_json(
        &h,
        "/v1/completions",
        None,
        json!({"model": "chat", "prompt": "hi", "stream": true,
               "stream_options": {"include_usage": true}}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(usage_chunks(&frames(&asked)), 1, "{asked}");
    // Not asked: none.
    let body = post_json(
        &h,
        "/v1/completions",
        None,
        json!({"model": "chat", "prompt": "hi", "stream": true}),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let chunks = frames(&body);
    assert_eq!(
        usage_chunks(&chunks),
        0,
        "a usage chunk (`choices: []`) the client did not ask for: {body}"
    );
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "usage the client did not ask for: {body}"
    );
    h.shutdown().await;
}

/// `/v1/completions` parameters the gateway cannot honour are refused, not silently
/// dropped: the chat decoder refuses `n` above 1 (stream/openai/request.rs: "`n` above 1 is
/// `RequestError::Unsupported`") and DECISIONS.md refuses completion batches ("token arrays
/// and batches are a 400 naming `prompt`"). OpenAI's completions reference: `n` "How many
/// completions to generate for each prompt", `echo` "Echo back the prompt in addition to
/// the completion", `logprobs` "Include the log probabilities on the `logprobs` most likely
/// output tokens". Today each is ignored and a plain single completion comes back with 200.
#[tokio::test]
async fn completions_refuse_or_honour_n_best_of_echo_and_logprobs() {
    let h = Harness::start(Kind::Ollama, UpstreamConfig::default(), gateway_config()).await;
    let prompt = "Say hi";
    let cases = [
        ("n", json!(2)),
        ("echo", json!(true)),
        ("logprobs", json!(2)),
        // "Generates `best_of` completions server-side and returns the best": a single
        // completion answered with 200 cannot have honoured it.
        ("best_of", json!(3)),
    ];
    let mut ignored = Vec::new();
    for (field, value) in cases {
        let mut body = json!({"model": "chat", "prompt": prompt});
        body[field] = value;
        let r = post_json(&h, "/v1/completions", None, body).await;
        let status = r.status();
        let v: Value = r.json().await.unwrap();
        if status == 400 {
            let message = v["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains(field),
                "{field}: the refusal names it: {v}"
            );
            continue;
        }
        assert_eq!(status, 200, "{field}: {v}");
        let honoured = match field {
            "n" => v["choices"].as_array().map(Vec::len) == Some(2),
            "echo" => v["choices"][0]["text"]
                .as_str()
                .is_some_and(|t| t.starts_with(prompt)),
            "logprobs" => !v["choices"][0]["logprobs"].is_null(),
            _ => false,
        };
        if !honoured {
            ignored.push(format!("`{field}`: {v}"));
        }
    }
    h.shutdown().await;
    assert!(ignored.is_empty(), "silently ignored: {ignored:#?}");
}

/// A real Ollama client whose model listing waits `delay` first (a slow `/api/tags`), and
/// which notes how long the router waited on that listing.
#[derive(Debug)]
struct SlowListing {
    inner: Arc<dyn Provider>,
    delay: Duration,
    listing_waited: Arc<std::sync::Mutex<Duration>>,
}

#[async_trait::async_trait]
impl Provider for SlowListing {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        self.inner.chat(request).await
    }

    async fn models(&self) -> Result<Vec<switchyard_core::ModelInfo>, ProviderError> {
        let start = std::time::Instant::now();
        tokio::time::sleep(self.delay).await;
        let listed = self.inner.models().await;
        *self.listing_waited.lock().unwrap() += start.elapsed();
        listed
    }

    async fn health(&self) -> Result<(), ProviderError> {
        self.inner.health().await
    }
}

/// `x-switchyard-overhead-ms` / `switchyard_gateway_overhead_seconds`: "time since the
/// request arrived minus time spent waiting on upstreams" (chat.rs `OVERHEAD_HEADER`,
/// telemetry.rs `GATEWAY_OVERHEAD_SECONDS`; README: "time the gateway itself spent").
/// Listing a local upstream's models before a bare name is planned (router.rs
/// `refresh_local_catalogs_for`, up to `CATALOG_TIMEOUT` = 5 s) is waiting on an upstream,
/// and is counted as such when the same listing happens at dispatch (route.rs `dispatch`,
/// after `exec_start`); before planning it is counted as the gateway's own overhead.
#[tokio::test]
async fn waiting_on_an_upstream_model_listing_is_not_gateway_overhead() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let listing_waited = Arc::new(std::sync::Mutex::new(Duration::ZERO));
    let slow = SlowListing {
        inner: provider(Kind::Ollama, &upstream, Locality::Local),
        delay: Duration::from_millis(600),
        listing_waited: listing_waited.clone(),
    };
    let slot = ProviderSlot::new("up", Arc::new(slow), Locality::Local);
    let router = router_over(vec![slot], json!({}));
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    // A bare model name: the local catalog is listed first (it was never listed).
    let r = http()
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "test-model", "stream": false,
                      "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let overhead_ms: f64 = r.headers()["x-switchyard-overhead-ms"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let _ = r.text().await.unwrap();
    let waited = *listing_waited.lock().unwrap();
    assert!(
        waited >= Duration::from_millis(600),
        "the listing was waited on"
    );
    // The gateway's own time cannot hold the whole wait on the upstream's listing.
    assert!(
        overhead_ms < waited.as_secs_f64() * 1000.0,
        "overhead {overhead_ms} ms includes the {waited:?} spent waiting on the upstream's model list"
    );
    h.shutdown().await;
}

/// DECISIONS.md, "A priced answer without usage is charged an estimate": "one the client
/// abandons or the upstream breaks off had none and cost 0, although the upstream bills it
/// ... The estimate is the planner's prompt figure plus the output bytes the upstream sent
/// / 4" (also ARCHITECTURE.md, Budgets); and "Generate and legacy completions are routed
/// the same way ... budgets". A completion stands in for the planner as a message-less
/// request (generate.rs `probe`), so the planner's prompt figure is 0 and a priced
/// completion that breaks off is charged nothing for its prompt: prompts of any size go
/// past the cap. (The gateway's own tokens-per-minute estimate already counts the prompt,
/// generate.rs `prompt_tokens_estimate`; the spend estimate does not.)
#[tokio::test]
async fn a_priced_completion_that_breaks_off_is_charged_its_prompt_estimate() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut priced = switchyard_core::ModelInfo::new("test-model", Locality::Cloud);
    // A dollar per input token, nothing per output token.
    priced.price = Some(switchyard_core::Price {
        input_usd_per_mtok: 1_000_000.0,
        output_usd_per_mtok: 0.0,
        ..Default::default()
    });
    // Its completions break off after their first text, without usage.
    let mut cloud_slot = ProviderSlot::new("cloud", Arc::new(breaks_mid_answer()), Locality::Cloud);
    cloud_slot.models = vec![priced];
    let router = router_over(
        vec![cloud_slot],
        json!({ "routes": { "c": { "targets": ["cloud/test-model"] } },
                "policy": { "budget": { "usd_per_day": 5.0 } } }),
    );
    let h = Harness::serve(Kind::Ollama, local, router, gateway_config()).await;
    // 40 bytes of prompt: an estimate of 10 tokens, $10, over the $5 cap.
    let prompt = "word ".repeat(8);
    let body = json!({"model": "c", "prompt": prompt, "stream": true});
    let r = post_json(&h, "/v1/completions", None, body.clone()).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "cloud/test-model");
    let text = r.text().await.unwrap();
    assert!(
        text.contains("broke off") || text.contains("error"),
        "{text}"
    );
    // The estimate reached the cap: the cloud target is out.
    let r = post_json(&h, "/v1/completions", None, body).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(
        status, 429,
        "a prompt of ~10 tokens at $1 a token was charged nothing: {text}"
    );
    assert!(text.contains("budget"), "{text}");
    h.shutdown().await;
}

/// README: "plans skip models that lack what a request needs (tools, vision, thinking,
/// context window)", and embeddings and completion are "all routed under the same policy
/// as chat" (DECISIONS.md: "Generate and legacy completions are routed the same way");
/// ARCHITECTURE.md: a target whose model's context window is under the estimated prompt
/// is "left out of the plan before anything is sent" (`context_window_exceeded`). A chat
/// skips the small model; a completion with the same prompt is planned as a message-less
/// request (generate.rs `probe`), so the small model is sent a prompt it cannot hold.
#[tokio::test]
async fn a_completion_skips_a_model_whose_context_window_is_too_small_like_a_chat() {
    let upstream = TestUpstream::start(UpstreamConfig::default().model(ModelSpec::new("small")))
        .await
        .unwrap();
    let mut small = switchyard_core::ModelInfo::new("small", Locality::Local);
    small.context_window = Some(16);
    let mut slot = ProviderSlot::new(
        "up",
        provider(Kind::Ollama, &upstream, Locality::Local),
        Locality::Local,
    );
    slot.models = vec![
        small,
        switchyard_core::ModelInfo::new("test-model", Locality::Local),
    ];
    let router = router_over(
        vec![slot],
        json!({ "routes": { "r": { "targets": ["up/small", "up/test-model"] } } }),
    );
    let h = Harness::serve(Kind::Ollama, upstream, router, gateway_config()).await;
    // About 100 estimated tokens (400 bytes / 4): over the small model's 16.
    let prompt = "word ".repeat(80);

    // A chat: the small model is left out.
    let r = post_json(
        &h,
        "/v1/chat/completions",
        None,
        json!({"model": "r", "messages": [{"role": "user", "content": prompt}]}),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "up/test-model");
    let skipped = r.headers()["x-switchyard-skipped"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        skipped.contains("up/small=context_window_exceeded"),
        "{skipped}"
    );
    let _ = r.text().await.unwrap();

    // The same prompt as a completion, on both APIs.
    for (path, body) in [
        ("/v1/completions", json!({"model": "r", "prompt": prompt})),
        (
            "/api/generate",
            json!({"model": "r", "prompt": prompt, "stream": false}),
        ),
    ] {
        let r = post_json(&h, path, None, body).await;
        assert_eq!(r.status(), 200, "{path}");
        let target = r.headers()["x-switchyard-target"]
            .to_str()
            .unwrap()
            .to_owned();
        let _ = r.text().await.unwrap();
        assert_eq!(
            target, "up/test-model",
            "{path}: a prompt over the small model's context window was sent to it"
        );
    }
    h.shutdown().await;
}

// openai-python `types/chat/chat_completion_assistant_message_param.py`: an assistant
// message's `content` is a string or a list of `ContentArrayOfContentPart` =
// `ChatCompletionContentPartTextParam | ChatCompletionContentPartRefusalParam`
// (`{"type":"refusal","refusal":...}`); OpenAI's chat completions reference lists the same
// ("Array of content parts: text or refusal"). A conversation replaying such a turn is valid.
#[tokio::test]
async fn openai_assistant_refusal_content_part_is_accepted() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    let response = http()
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "chat", "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": [{"type": "refusal", "refusal": "I cannot help with that."}]},
            {"role": "user", "content": "Then say hello."}
        ]}))
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(status, 200, "{body}");
    h.shutdown().await;
}

// openai-python `types/chat/chat_completion_content_part_image_param.py`: `image_url` is
// `{"url", "detail": "auto" | "low" | "high"}` ("Specifies the detail level of the image").
// An OpenAI client's `detail` sent to an OpenAI-compatible upstream must reach it: dropping
// it makes the upstream use `auto` (a `low` image then costs many more prompt tokens).
#[tokio::test]
async fn openai_image_detail_reaches_an_openai_upstream() {
    let h = Harness::start(Kind::OpenAi, UpstreamConfig::default(), gateway_config()).await;
    let response = http()
        .post(h.url("/v1/chat/completions"))
        .json(&json!({"model": "chat", "messages": [{"role": "user", "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"}}
        ]}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let requests = h.upstream.requests();
    let sent = requests
        .iter()
        .rev()
        .find(|r| r.is_chat())
        .unwrap()
        .body_json()
        .unwrap();
    let part = &sent["messages"][0]["content"][1];
    assert_eq!(part["type"], "image_url", "{sent}");
    assert_eq!(part["image_url"]["detail"], "low", "{sent}");
    h.shutdown().await;
}

/// An Ollama client served by an OpenAI-compatible upstream (which reports no durations)
/// used to get `total_duration` and `eval_duration` 0 next to a non-zero `eval_count`, and
/// clients computing tokens per second divided by zero. Expected: the durations the
/// gateway measured (`eval_duration` > 0 when tokens were generated, `total_duration` at
/// least `prompt_eval_duration` + `eval_duration`, `load_duration` 0), on `/api/chat` and
/// `/api/generate`, streamed and whole; an Ollama upstream's own figures pass through.
#[tokio::test]
async fn ollama_answers_carry_durations_when_the_upstream_reports_none() {
    for kind in [Kind::OpenAi, Kind::Ollama] {
        let h = Harness::start(kind, UpstreamConfig::default(), gateway_config()).await;
        for (path, stream) in [
            ("/api/chat", true),
            ("/api/chat", false),
            ("/api/generate", true),
            ("/api/generate", false),
        ] {
            let body = if path == "/api/chat" {
                json!({"model": "chat", "stream": stream,
                       "messages": [{"role": "user", "content": "hi"}]})
            } else {
                json!({"model": "chat", "stream": stream, "prompt": "hi"})
            };
            let r = post_json(&h, path, None, body).await;
            assert_eq!(r.status(), 200, "{kind:?} {path} {stream}");
            let text = r.text().await.unwrap();
            let last: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
            let n = |k: &str| last[k].as_u64().unwrap_or_else(|| panic!("{k}: {last}"));
            let what = format!("{kind:?} {path} stream={stream}: {last}");
            assert!(n("eval_count") > 0, "{what}");
            assert!(n("eval_duration") > 0, "{what}");
            assert!(
                n("total_duration") >= n("prompt_eval_duration") + n("eval_duration"),
                "{what}"
            );
            if kind == Kind::Ollama && path == "/api/chat" {
                // The testkit's Ollama reports these figures.
                assert_eq!(n("total_duration"), 250_000_000, "{what}");
                assert_eq!(n("eval_duration"), 200_000_000, "{what}");
            } else if kind == Kind::OpenAi {
                assert_eq!(n("load_duration"), 0, "{what}");
            }
        }
        h.shutdown().await;
    }
}
