//! End to end with the REAL official clients: the `openai` and `ollama` Python packages
//! (from the venv `.ci/python-env` creates) talk to the built `switchyard serve`, which
//! talks to scripted upstreams of both kinds (Ollama native and OpenAI-compatible). Each
//! client lists models, chats, streams, does a tool round trip (also streamed), gets
//! embeddings (`ollama.embed` and `embeddings`, `openai` `embeddings.create` in base64 and
//! float), completes a prompt with a suffix (`ollama.generate`, `openai` `completions`,
//! whole and streamed) and gets an error, through its own API, against each kind of upstream. The scripts are in
//! `tests/e2e/`. Without the venv the tests print why they are skipped, or fail when
//! `SWITCHYARD_E2E_REQUIRED=1` (`.ci/run` sets it); `SWITCHYARD_E2E_VENV` names another venv.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{TempDir, prerequisite, python};
use serde_json::json;
use switchyard_testkit::{
    DEFAULT_DIMENSIONS, Script, ScriptedCall, TestUpstream, UpstreamConfig, completion_for,
    vector_for,
};

const EXPECT_TEXT: &str = "Hello from the test upstream.";
const FOLLOWUP_TEXT: &str = "It is 21 degrees and sunny in Oslo.";
const TOOL_RESULT: &str = r#"{"temperature_c": 21, "sky": "sunny"}"#;
const EMBED_INPUTS: [&str; 2] = ["why is the sky blue", "llamas"];
/// A fill-in-the-middle prompt and suffix.
const FIM: (&str, &str) = ("def add(a, b):\n    ", "\n\nprint(add(1, 2))");

fn upstream_config() -> UpstreamConfig {
    UpstreamConfig::empty()
        .model_with_script(
            "chat-model",
            Script::text(["Hello", " from", " the", " test", " upstream."]),
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
            Script::text(["It is 21 degrees", " and sunny", " in Oslo."]),
        )
}

/// Which kind of upstream serves the models.
#[derive(Clone, Copy, Debug)]
enum Upstream {
    Ollama,
    OpenAi,
}

/// Which official client talks to the gateway.
#[derive(Clone, Copy, Debug)]
enum Client {
    OpenAi,
    Ollama,
}

async fn run_case(client: Client, kind: Upstream) {
    let Some(py) = prerequisite(
        python(),
        &format!(
            "e2e {client:?} client -> {kind:?} upstream: no .venv with the official clients; \
             run `bash .ci/python-env` (CI always does)"
        ),
    ) else {
        return;
    };
    let upstream = TestUpstream::start(upstream_config()).await.unwrap();
    let (api, base_url) = match kind {
        Upstream::Ollama => ("ollama", upstream.base_url()),
        Upstream::OpenAi => ("openai", upstream.openai_base_url()),
    };
    let dir = TempDir::new("e2e");
    let served = common::serve_one_upstream(&dir, api, &base_url).await;

    let script = match client {
        Client::OpenAi => "openai_client.py",
        Client::Ollama => "ollama_client.py",
    };
    let spec = json!({
        "base_url": served.base_url(),
        "api_key": "sk-e2e",
        "models_expected": ["chat", "up/chat-model", "up/tool-model"],
        "chat_model": "chat",
        "expect_text": EXPECT_TEXT,
        "tool_model": "up/tool-model",
        "tool_name": "get_weather",
        "tool_args": {"city": "Oslo"},
        "tool_result": TOOL_RESULT,
        "followup_model": "up/followup-model",
        "followup_text": FOLLOWUP_TEXT,
        "error_model": "up/missing-model",
        "error_status": 404,
        "error_contains": "model_not_found",
        "fim_prompt": FIM.0,
        "fim_suffix": FIM.1,
        "fim_expected": completion_for(FIM.0, Some(FIM.1)),
        "embed_model": "chat",
        "embed_inputs": EMBED_INPUTS,
        "embed_expected": EMBED_INPUTS.iter().map(|t| vector_for(t, DEFAULT_DIMENSIONS)).collect::<Vec<_>>(),
    });
    let run = common::run_e2e_script(&py, script, &spec).await;
    let (stdout, stderr) = (&run.stdout, &run.stderr);
    assert!(
        run.success,
        "{client:?} client -> {kind:?} upstream failed\nstdout:\n{stdout}\nstderr:\n{stderr}\ngateway log:\n{}",
        served.log_text()
    );
    let summary = run.summary();

    // The tool result reached the upstream, in the upstream's own API.
    let followups: Vec<_> = upstream
        .chat_requests()
        .into_iter()
        .filter(|r| r.model().as_deref() == Some("followup-model"))
        .collect();
    assert_eq!(followups.len(), 1, "one follow-up request expected");
    let body = followups[0].body_json().unwrap();
    let messages = body["messages"].as_array().unwrap();
    let tool_msg = messages
        .iter()
        .find(|m| m["role"] == "tool")
        .expect("a tool message");
    assert_eq!(tool_msg["content"].as_str(), Some(TOOL_RESULT), "{body}");
    let expected_path = match kind {
        Upstream::Ollama => "/api/chat",
        Upstream::OpenAi => "/v1/chat/completions",
    };
    assert_eq!(followups[0].path, expected_path);
    if let (Client::OpenAi, Upstream::OpenAi) = (client, kind) {
        assert_eq!(tool_msg["tool_call_id"], summary["call_id"], "{body}");
    }
    eprintln!("{client:?} client -> {kind:?} upstream:\n{stdout}");
    drop(served);
    upstream.shutdown().await;
}

#[tokio::test]
async fn openai_sdk_against_ollama_upstream() {
    run_case(Client::OpenAi, Upstream::Ollama).await;
}

#[tokio::test]
async fn openai_sdk_against_openai_upstream() {
    run_case(Client::OpenAi, Upstream::OpenAi).await;
}

#[tokio::test]
async fn ollama_sdk_against_ollama_upstream() {
    run_case(Client::Ollama, Upstream::Ollama).await;
}

#[tokio::test]
async fn ollama_sdk_against_openai_upstream() {
    run_case(Client::Ollama, Upstream::OpenAi).await;
}

#[tokio::test]
async fn missing_venv_is_a_skip_or_with_e2e_required_a_failure() {
    common::missing_prerequisite_skips_or_fails(
        "openai_sdk_against_ollama_upstream",
        "SWITCHYARD_E2E_VENV",
        "python-env",
    )
    .await;
}

#[test]
fn only_one_means_required() {
    assert!(common::e2e_required(Some("1")));
    assert!(!common::e2e_required(Some("0")));
    assert!(!common::e2e_required(Some("")));
    assert!(!common::e2e_required(None));
    assert_eq!(common::prerequisite_with(Some(3), true, "x"), Some(3));
    assert_eq!(common::prerequisite_with(None::<u8>, false, "x"), None);
    let failed = std::panic::catch_unwind(|| common::prerequisite_with(None::<u8>, true, "x"));
    assert!(failed.is_err());
}
