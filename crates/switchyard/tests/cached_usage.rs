//! Review finding on the Responses API's usage: the prompt-cache count an OpenAI-compatible
//! upstream reports (`usage.prompt_tokens_details.cached_tokens`) must reach
//! `usage.input_tokens_details.cached_tokens`. Real loopback sockets only: a testkit
//! Anthropic upstream behind a gateway (whose `/v1/chat/completions` is then an
//! OpenAI-compatible server reporting cached tokens), behind a second gateway.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use switchyard_anthropic::{AnthropicClient, AnthropicConfig};
use switchyard_core::{Locality, Provider};
use switchyard_gateway::{Gateway, GatewayConfig};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};
use tokio::net::TcpListener;

fn client_config() -> ClientConfig {
    ClientConfig {
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            first_token: Duration::from_secs(2),
            idle: Duration::from_secs(2),
            total: None,
        },
        ..ClientConfig::default()
    }
}

/// A gateway on 127.0.0.1:0 with `provider` as `up` and the route `chat` -> `up/<model>`.
async fn gateway(provider: Arc<dyn Provider>, model: &str) -> String {
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let routes = json!({"routes": {"chat": {"targets": [format!("up/{model}")]}}});
    let config: RouterConfig = serde_json::from_value(routes).unwrap();
    let router = Router::new(config, slots, Arc::new(MemoryLedger::new())).unwrap();
    let config = GatewayConfig {
        header_read_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(1),
        ..GatewayConfig::default()
    };
    let gateway = Gateway::new(config, Arc::new(ArcSwap::from_pointee(router)));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    // The server runs until the test's runtime ends.
    tokio::spawn(async move { gateway.serve(listener, std::future::pending()).await });
    format!("http://{addr}")
}

async fn post(base: &str, path: &str, body: &Value) -> Value {
    let r = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{base}{path}"))
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    serde_json::from_str(&text).unwrap()
}

/// An Anthropic answer that read 4000 prompt tokens from the prompt cache.
fn cached_answer() -> Script {
    let frames = [
        r#"{"type": "message_start", "message": {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude", "content": [], "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 5, "cache_read_input_tokens": 4000, "output_tokens": 1}}}"#,
        r#"{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}"#,
        r#"{"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi."}}"#,
        r#"{"type": "content_block_stop", "index": 0}"#,
        r#"{"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 3}}"#,
        r#"{"type": "message_stop"}"#,
    ]
    .map(|data| {
        let kind: Value = serde_json::from_str(data).unwrap();
        format!("event: {}\ndata: {data}\n\n", kind["type"].as_str().unwrap())
    });
    Script::anthropic_raw(frames, "{}")
}

// OpenAI's Responses usage carries `input_tokens_details.cached_tokens` (openai-python,
// generated from the OpenAPI spec: src/openai/types/responses/response_usage.py, "The
// number of tokens that were retrieved from the cache"), and Codex reads it as its
// `cached_input_tokens` (codex-rs/codex-api/src/sse/responses.rs,
// `ResponseCompletedUsage::input_tokens_details`). An OpenAI-compatible upstream reports the
// count as `usage.prompt_tokens_details.cached_tokens` (openai-python
// src/openai/types/completion_usage.py, `PromptTokensDetails.cached_tokens`), and
// docs/DECISIONS.md says "Prompt-cache tokens in OpenAI and Responses usage ... with
// `cached_tokens`". The OpenAI chat decoder reads only `prompt_tokens` and
// `completion_tokens` (switchyard-stream openai/decode.rs, `struct WireUsage`), so
// behind any OpenAI-compatible upstream the Responses usage says 0 cached tokens.
#[tokio::test]
async fn cached_prompt_tokens_of_an_openai_compatible_upstream_reach_responses_usage() {
    let up =
        TestUpstream::start(UpstreamConfig::empty().model_with_script("claude", cached_answer()))
            .await
            .unwrap();
    let mut ant = AnthropicConfig::new(up.base_url());
    ant.api_key = Some("sk-ant-test".into());
    ant.client = client_config();
    ant.locality = Locality::Local;
    let inner = gateway(Arc::new(AnthropicClient::new(ant).unwrap()), "claude").await;

    // The inner gateway is an OpenAI-compatible server that reports the cached tokens.
    let chat = post(
        &inner,
        "/v1/chat/completions",
        &json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(
        chat["usage"]["prompt_tokens_details"]["cached_tokens"], 4000,
        "{chat}"
    );

    let mut openai = OpenAiConfig::new(format!("{inner}/v1"));
    openai.client = client_config();
    openai.locality = Locality::Local;
    let outer = gateway(Arc::new(OpenAiClient::new(openai).unwrap()), "chat").await;
    let body = json!({"model": "chat", "input": "hi"});
    let resp = post(&outer, "/v1/responses", &body).await;
    assert_eq!(resp["status"], "completed", "{resp}");
    assert_eq!(resp["usage"]["input_tokens"], 4005, "{resp}");
    assert_eq!(
        resp["usage"]["input_tokens_details"]["cached_tokens"], 4000,
        "{resp}"
    );
}
