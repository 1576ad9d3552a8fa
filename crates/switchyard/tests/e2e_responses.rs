//! End to end with REAL Responses API clients: the official `openai` Python SDK
//! (`responses.create`, streamed and whole, `responses.stream`, `retrieve`, `input_items`)
//! and the OpenAI Agents SDK (an agent with one function tool, run and run streamed) talk to
//! the built `switchyard serve`, which talks to scripted upstreams of both kinds. The tool
//! model calls `get_weather` and, once the conversation ends with the tool's result,
//! answers with text, as a real model in an agent loop does. Skipped without the venv of
//! `.ci/python-env`, failed then with `SWITCHYARD_E2E_REQUIRED=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TempDir, prerequisite, python};
use serde_json::json;
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

const EXPECT_TEXT: &str = "Hello from the test upstream.";
const FOLLOWUP_TEXT: &str = "It is 21 degrees and sunny in Oslo.";
const TOOL_RESULT: &str = r#"{"temperature_c": 21, "sky": "sunny"}"#;

fn upstream_config() -> UpstreamConfig {
    let call = ScriptedCall::new("get_weather", json!({"city": "Oslo"}));
    UpstreamConfig::empty()
        .model_with_script(
            "chat-model",
            Script::text(["Hello", " from", " the", " test", " upstream."]),
        )
        .model_with_script("tool-model", Script::tool_calls(vec![call]))
        .after_tool_result(
            "tool-model",
            Script::text(["It is 21 degrees", " and sunny", " in Oslo."]),
        )
}

async fn run_script(script: &str, ollama: bool) {
    let Some(py) = prerequisite(
        python(),
        &format!(
            "e2e {script} (ollama upstream: {ollama}): no .venv with the official clients; \
             run `bash .ci/python-env` (CI always does)"
        ),
    ) else {
        return;
    };
    let upstream = TestUpstream::start(upstream_config()).await.unwrap();
    let (api, base_url) = if ollama {
        ("ollama", upstream.base_url())
    } else {
        ("openai", upstream.openai_base_url())
    };
    let dir = TempDir::new("e2e-responses");
    let served = common::serve_one_upstream(&dir, api, &base_url).await;
    let spec = json!({
        "base_url": served.base_url(),
        "api_key": "sk-e2e",
        "chat_model": "chat",
        "expect_text": EXPECT_TEXT,
        "tool_model": "up/tool-model",
        "tool_name": "get_weather",
        "tool_args": {"city": "Oslo"},
        "tool_result": TOOL_RESULT,
        "followup_text": FOLLOWUP_TEXT,
        "error_model": "up/missing-model",
        "error_status": 404,
        "error_contains": "model_not_found",
    });
    let run = common::run_e2e_script(&py, script, &spec).await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(
        run.success,
        "{script} (ollama upstream: {ollama}) failed\nstdout:\n{stdout}\nstderr:\n{stderr}\ngateway log:\n{}",
        served.log_text()
    );
    // The tool's result reached the upstream as a tool message, in the upstream's own API.
    let followups: Vec<_> = upstream
        .chat_requests()
        .into_iter()
        .filter_map(|r| r.body_json())
        .filter(|b| {
            b["messages"]
                .as_array()
                .and_then(|m| m.last())
                .is_some_and(|m| m["role"] == "tool")
        })
        .collect();
    assert!(!followups.is_empty(), "no request carried the tool result");
    for body in &followups {
        let last = body["messages"].as_array().unwrap().last().unwrap();
        assert_eq!(last["content"].as_str(), Some(TOOL_RESULT), "{body}");
    }
    eprintln!("{script} (ollama upstream: {ollama}):\n{stdout}");
    drop(served);
    upstream.shutdown().await;
}

#[tokio::test]
async fn openai_sdk_responses_against_ollama_upstream() {
    run_script("responses_client.py", true).await;
}

#[tokio::test]
async fn openai_sdk_responses_against_openai_upstream() {
    run_script("responses_client.py", false).await;
}

#[tokio::test]
async fn agents_sdk_against_ollama_upstream() {
    run_script("agents_client.py", true).await;
}

#[tokio::test]
async fn agents_sdk_against_openai_upstream() {
    run_script("agents_client.py", false).await;
}
