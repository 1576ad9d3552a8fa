#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Review findings on what the two coding agents need from the gateway's errors: Claude Code
//! (Anthropic Messages, `POST /v1/messages`) and the Codex CLI (OpenAI Responses,
//! `POST /v1/responses`) classify a failed request by the exact text or code of the error
//! body, and the gateway's own wording does not match what they look for. Real loopback
//! sockets only: a testkit OpenAI-compatible upstream behind the real client, the router and
//! the gateway.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

mod support;

use support::{
    gateway_config_with_grace, http, new_gateway, router_over, serve_until_runtime_ends,
    short_timeouts,
};

const MODEL: &str = "test-model";

/// A testkit OpenAI-compatible upstream whose every answer to `MODEL` fails with `fault`.
async fn failing_upstream(fault: Fault) -> TestUpstream {
    TestUpstream::start(
        UpstreamConfig::default().script(MODEL, Script::text(["x"]).with_fault(fault)),
    )
    .await
    .unwrap()
}

/// A gateway on 127.0.0.1:0 with one OpenAI-compatible provider `up` and the route `chat`
/// -> `up/test-model`.
async fn gateway(up: &TestUpstream) -> String {
    let mut c = OpenAiConfig::new(up.openai_base_url());
    c.client = short_timeouts();
    c.locality = Locality::Local;
    let provider = Arc::new(OpenAiClient::new(c).unwrap());
    let slots = vec![ProviderSlot::new("up", provider, Locality::Local)];
    let routes = json!({"routes": {"chat": {"targets": [format!("up/{MODEL}")]}}});
    let router = router_over(slots, routes);
    let config = gateway_config_with_grace(Duration::from_secs(1));
    serve_until_runtime_ends(new_gateway(router, config)).await
}

/// Claude Code recognises a context overflow only by the text Anthropic's API answers it
/// with (`400 invalid_request_error`, "prompt is too long: 210118 tokens > 200000 maximum",
/// e.g. anthropics/claude-code#820). Its `src/services/api/errors.ts`
/// (`getAssistantMessageFromError`): `if (error instanceof Error &&
/// error.message.toLowerCase().includes("prompt is too long")) return
/// createAssistantAPIErrorMessage({content: PROMPT_TOO_LONG_ERROR_MESSAGE, ...,
/// errorDetails: error.message})`; `isPromptTooLongMessage` (the text starts with
/// `PROMPT_TOO_LONG_ERROR_MESSAGE` = "Prompt is too long") is what its reactive compaction
/// and the compaction's own retry loop key on, and `parsePromptTooLongTokenCounts` reads
/// the gap from `/prompt is too long[^0-9]*(\d+)\s*tokens?\s*>\s*(\d+)/i`.
///
/// A local model's window is far smaller than the 200k Claude Code assumes for a `claude-*`
/// model, so overflowing it is the normal way a long Claude Code session through the gateway
/// ends. The gateway knows the failure (`ErrorKind::ContextOverflow`, 400
/// `invalid_request_error`) but words it "context_overflow: <url> answered HTTP 400: ...":
/// Claude Code shows a generic `API Error: 400 ...`, never compacts, and every following
/// turn fails the same way. Right: on the Anthropic API a context overflow's message says
/// "prompt is too long" (with the counts when the upstream gave them).
#[tokio::test]
async fn claude_code_sees_a_context_overflow_as_prompt_is_too_long() {
    let up = failing_upstream(Fault::HttpError {
        status: 400,
        message: "This model's maximum context length is 32768 tokens. However, your \
                  messages resulted in 40000 tokens. Please reduce the length of the \
                  messages. (context length exceeded)"
            .into(),
    })
    .await;
    let base = gateway(&up).await;
    let r = http()
        .post(format!("{base}/v1/messages?beta=true"))
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "claude-code-20250219,interleaved-thinking-2025-05-14",
        )
        .json(&json!({"model": "chat", "max_tokens": 1024, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["type"], "error", "{body}");
    assert_eq!(body["error"]["type"], "invalid_request_error", "{body}");
    let message = body["error"]["message"].as_str().unwrap().to_lowercase();
    assert!(
        message.contains("prompt is too long"),
        "Claude Code cannot tell this 400 is a context overflow (it looks for \
         \"prompt is too long\"): {body}"
    );
}

/// Codex classifies a 503 by OpenAI's error code: codex-rs/codex-api/src/api_bridge.rs
/// (`map_api_error`, `TransportError::Http`): `if status == SERVICE_UNAVAILABLE && ...
/// value.get("error").and_then(|e| e.get("code")) matches Some("server_is_overloaded" |
/// "slow_down") { return CodexErr::ServerOverloaded; }`; any other 503 body becomes
/// `CodexErr::UnexpectedStatus` (a raw "unexpected status 503" with the body), not the
/// overload it is. The gateway answers an overloaded upstream with 503 but OpenAI's error
/// object carries its own reason code `"overloaded"` (switchyard-stream openai/encode.rs
/// `encode_error_body`: `code: err.reason_code()`). Right: on the OpenAI APIs the
/// `error.code` of an overload is OpenAI's `server_is_overloaded`.
#[tokio::test]
async fn codex_sees_an_overloaded_upstream_as_server_is_overloaded() {
    let up = failing_upstream(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    })
    .await;
    let base = gateway(&up).await;
    let r = http()
        .post(format!("{base}/v1/responses"))
        .json(&json!({"model": "chat", "input": "hi", "stream": true, "store": false}))
        .send()
        .await
        .unwrap();
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["error"]["code"], "server_is_overloaded",
        "Codex maps a 503 to ServerOverloaded only for this code: {body}"
    );
}

/// The gateway promises a `retry-after` on every "come back later" failure so the SDKs'
/// retry loops back off (switchyard-gateway api.rs, `IntoResponse for ApiError`: "everything
/// else gets a hint so the SDKs' retry loops back off instead of hammering"), and on the
/// OpenAI API an overloaded upstream does get `retry-after: 1`. On the Anthropic API the same
/// failure is rewritten to 529 `overloaded_error` *before* that check, which only looks at
/// 429 and 503, so the 529 goes out with no `retry-after` at all. Claude Code retries a 529
/// only `MAX_529_RETRIES` = 3 times (src/services/api/withRetry.ts), each after
/// `getRetryDelay(attempt, retryAfter)`: the server's `retry-after` when there is one, else
/// 500 ms doubling (the Anthropic SDK's own retry reads `retry-after` the same way), so
/// through the gateway its three tries are spent within about 3.5 s, sooner than the same
/// failure on the OpenAI API asks for, and a hint the gateway holds is never sent. Right:
/// the 529 carries the same `retry-after` the 503 does.
#[tokio::test]
async fn claude_code_gets_a_retry_after_with_an_overloaded_529() {
    let up = failing_upstream(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    })
    .await;
    let base = gateway(&up).await;

    let openai = http()
        .post(format!("{base}/v1/responses"))
        .json(&json!({"model": "chat", "input": "hi", "stream": true, "store": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(openai.status(), 503);
    assert!(openai.headers().contains_key("retry-after"));

    let r = http()
        .post(format!("{base}/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "chat", "max_tokens": 64, "stream": true,
                      "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 529, "{body}");
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    assert!(
        headers.contains_key("retry-after"),
        "a 529 overloaded_error without retry-after (the same failure on /v1/responses has \
         one): {headers:?}"
    );
}
