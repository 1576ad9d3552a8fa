//! End to end with the REAL official `anthropic` Python SDK (from the venv `.ci/python-env`
//! creates) against the built `switchyard serve` in front of a scripted Ollama upstream: it
//! lists models, sends a message, streams a tool call and finishes the turn with the tool's
//! result, and gets an error (`tests/e2e/anthropic_client.py`). Without the venv the test
//! prints why it is skipped, or fails when `SWITCHYARD_E2E_REQUIRED=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Served, TempDir, prerequisite, python};
use serde_json::json;
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

const EXPECT_TEXT: &str = "Hello from the test upstream.";
const FOLLOWUP_TEXT: &str = "It is 21 degrees and sunny in Oslo.";
const TOOL_RESULT: &str = r#"{"temperature_c": 21, "sky": "sunny"}"#;

#[tokio::test]
async fn anthropic_sdk_streams_a_tool_call_and_finishes_the_turn() {
    sdk_case("ollama").await;
}

/// The same through an Anthropic upstream: the SDK's own body (its `tool_use` block and the
/// `tool_result` answering it) reaches the upstream unchanged.
#[tokio::test]
async fn anthropic_sdk_through_an_anthropic_upstream() {
    sdk_case("anthropic").await;
}

/// The SDK's checks through the gateway to an upstream speaking `api`.
async fn sdk_case(api: &str) {
    let Some(py) = prerequisite(
        python(),
        "e2e anthropic SDK: no .venv with the official clients; run `bash .ci/python-env`",
    ) else {
        return;
    };
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script(
                "chat-model",
                Script::text(["Hello", " from the", " test upstream."]),
            )
            .model_with_script(
                "tool-model",
                Script::tool_calls(vec![ScriptedCall::new(
                    "get_weather",
                    json!({"city": "Oslo"}),
                )]),
            )
            .model_with_script(
                "followup-model",
                Script::text(["It is 21 degrees", " and sunny in Oslo."]),
            ),
    )
    .await
    .unwrap();
    let dir = TempDir::new("e2e-anthropic");
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "e2e", token: "env:E2E_KEY" }} ] }},
  providers: {{ up: {{ api: "{api}", base_url: "{}", locality: "local",
                       timeouts: {{ connect_ms: 1000, first_token_ms: 10000 }} }} }},
  routes: {{ "claude-*": {{ targets: ["up/chat-model"] }} }},
  retry: {{ max_retries: 0 }},
}}"#,
        upstream.base_url()
    );
    let served = Served::start(
        &dir.write("config.json5", &config),
        &[("E2E_KEY", "sk-e2e")],
    )
    .await;
    // The same checks as the other SDKs' scripts, in the Anthropic SDK's terms.
    let tool = ("up/tool-model", "get_weather", json!({"city": "Oslo"}));
    let spec = json!({
        "base_url": served.base_url(), "api_key": "sk-e2e",
        "chat_model": "claude-sonnet-4-5", "expect_text": EXPECT_TEXT,
        "models_expected": ["claude-*", "up/chat-model", tool.0],
        "tool_model": tool.0, "tool_name": tool.1, "tool_args": tool.2, "tool_result": TOOL_RESULT,
        "followup_model": "up/followup-model", "followup_text": FOLLOWUP_TEXT,
        "error_model": "up/missing-model", "error_status": 404,
    });
    let run = common::run_e2e_script(&py, "anthropic_client.py", &spec).await;
    assert!(
        run.success,
        "anthropic SDK failed\nstdout:\n{}\nstderr:\n{}\ngateway log:\n{}",
        run.stdout,
        run.stderr,
        served.log_text()
    );
    // The tool result reached the upstream in its own API: an Ollama `tool` message, or an
    // Anthropic `tool_result` block.
    let followup = upstream
        .chat_requests()
        .into_iter()
        .find(|r| r.model().as_deref() == Some("followup-model"))
        .expect("the follow-up reached the upstream");
    let body = followup.body_json().unwrap();
    let messages = body["messages"].as_array().unwrap();
    let result = if api == "ollama" {
        messages
            .iter()
            .find(|m| m["role"] == "tool")
            .map(|m| m["content"].clone())
    } else {
        let last = &messages[messages.len() - 1]["content"][0];
        assert_eq!(last["type"], "tool_result", "{body}");
        Some(last["content"].clone())
    };
    assert_eq!(result, Some(json!(TOOL_RESULT)), "{body}");
    eprintln!("anthropic SDK:\n{}", run.stdout);
    drop(served);
    upstream.shutdown().await;
}
