//! The Codex CLI (npm package `@openai/codex` 0.169, its native linux-x64 binary) pointed at
//! the gateway, unmodified: a custom model provider with `wire_api = "responses"`, its
//! `base_url` at the gateway's `/v1` and the gateway key in the environment variable its
//! `env_key` names; `CODEX_HOME` and `HOME` in a temporary directory, analytics off. One
//! `codex exec` turn completes a tool round trip against a scripted upstream (Ollama's native
//! API, and in a second test an OpenAI-compatible chat server): the
//! model asks for Codex's own shell tool (`exec_command`) to read a file, Codex runs it and
//! sends the output back through `/v1/responses`, the model answers with what the file said.
//!
//! Codex offers the hosted `web_search` tool in every request, so the route says
//! `drop_unsupported_tools: true`. Install Codex with
//! `bash crates/switchyard/tests/e2e/codex-env`; without it the test prints why it is
//! skipped, or fails when `SWITCHYARD_E2E_REQUIRED=1` (`.ci/run` sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Served, TempDir};
use serde_json::json;
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

const MODEL: &str = "qwen3:8b";
const SECRET: &str = "the secret word is switchyard";
const ANSWER: &str = "The note says the secret word is switchyard.";

/// The Codex binary, when installed.
fn codex() -> Option<PathBuf> {
    let dir = std::env::var_os("SWITCHYARD_CODEX_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-codex"),
        PathBuf::from,
    );
    let bin =
        dir.join("node_modules/@openai/codex-linux-x64/vendor/x86_64-unknown-linux-musl/bin/codex");
    bin.exists().then_some(bin)
}

/// Codex's config: the gateway as a Responses provider, no approvals, no sandbox (the test
/// directory is the sandbox), analytics and update checks off.
fn codex_config(base_url: &str) -> String {
    format!(
        r#"model = "chat"
model_provider = "switchyard"
approval_policy = "never"
sandbox_mode = "danger-full-access"
check_for_update_on_startup = false

[model_providers.switchyard]
name = "Switchyard"
base_url = "{base_url}/v1"
env_key = "SWITCHYARD_CODEX_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[analytics]
enabled = false
"#
    )
}

#[tokio::test]
async fn codex_exec_runs_its_shell_tool_through_the_gateway() {
    codex_round_trip(true).await;
}

#[tokio::test]
async fn codex_exec_against_an_openai_chat_upstream() {
    codex_round_trip(false).await;
}

/// One `codex exec` tool round trip; the upstream speaks Ollama's API or OpenAI chat.
async fn codex_round_trip(ollama: bool) {
    let Some(bin) = common::prerequisite(
        codex(),
        "Codex CLI: not installed; run `bash crates/switchyard/tests/e2e/codex-env`",
    ) else {
        return;
    };
    let call = ScriptedCall::new("exec_command", json!({"cmd": "cat note.txt"}));
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script(MODEL, Script::tool_calls(vec![call]))
            .after_tool_result(
                MODEL,
                Script::text(["The note says", " the secret word", " is switchyard."]),
            ),
    )
    .await
    .unwrap();
    let (api, base_url) = if ollama {
        ("ollama", upstream.base_url())
    } else {
        ("openai", upstream.openai_base_url())
    };
    let dir = TempDir::new("codex");
    let config = format!(
        r#"{{ server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "codex", token: "env:CODEX_GATEWAY_KEY" }} ] }},
  providers: {{ local: {{ api: "{api}", base_url: "{base_url}" }} }},
  routes: {{ chat: {{ targets: ["local/{MODEL}"], drop_unsupported_tools: true }} }} }}"#,
    );
    let path = dir.write("switchyard.json5", &config);
    let served = Served::start(&path, &[("CODEX_GATEWAY_KEY", "sk-codex")]).await;
    let home = dir.path().join("home");
    let codex_home = dir.path().join("codex-home");
    let work = dir.path().join("work");
    for d in [&home, &codex_home, &work] {
        std::fs::create_dir_all(d).unwrap();
    }
    std::fs::write(
        codex_home.join("config.toml"),
        codex_config(&served.base_url()),
    )
    .unwrap();
    std::fs::write(work.join("note.txt"), format!("{SECRET}\n")).unwrap();

    let out = tokio::process::Command::new(&bin)
        .args(["exec", "--skip-git-repo-check", "--color", "never"])
        .arg("Read note.txt with your shell tool and tell me the secret word.")
        .current_dir(&work)
        .env("HOME", &home)
        .env("CODEX_HOME", &codex_home)
        .env("SWITCHYARD_CODEX_KEY", "sk-codex")
        .env("NO_PROXY", "*")
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), out)
        .await
        .expect("codex did not finish within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = || {
        let bodies: Vec<String> = upstream
            .chat_requests()
            .iter()
            .map(|r| r.body_text().chars().take(400).collect())
            .collect();
        format!(
            "status {:?}\nstdout:\n{stdout}\nstderr:\n{}\nupstream requests: {bodies:?}\ngateway log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            served.log_text()
        )
    };
    assert!(out.status.success(), "{}", report());
    assert!(stdout.contains(ANSWER), "{}", report());

    // Codex ran the tool and its output went back through the gateway to the model.
    let carried = upstream.chat_requests().iter().any(|r| {
        r.body_json().is_some_and(|b| {
            b["messages"].as_array().is_some_and(|ms| {
                ms.iter().any(|m| {
                    m["role"] == "tool" && m["content"].as_str().is_some_and(|c| c.contains(SECRET))
                })
            })
        })
    });
    assert!(
        carried,
        "the tool's output never reached the upstream\n{}",
        report()
    );
    // Ollama never sees the Responses-only `reasoning.summary` Codex sends.
    for r in upstream.chat_requests() {
        let body = r.body_json().unwrap();
        assert!(
            body.get("reasoning").is_none() && body["think"] != "auto",
            "{body}"
        );
    }
    eprintln!("Codex: {}", stdout.trim());
    drop(served);
    upstream.shutdown().await;
}

#[tokio::test]
async fn missing_codex_is_a_skip_or_with_e2e_required_a_failure() {
    common::missing_prerequisite_skips_or_fails(
        "codex_exec_runs_its_shell_tool_through_the_gateway",
        "SWITCHYARD_CODEX_DIR",
        "codex-env",
    )
    .await;
}
