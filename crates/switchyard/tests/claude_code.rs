//! End to end with the REAL Claude Code (npm `@anthropic-ai/claude-code@2`, installed into
//! `target/e2e-claude-code` by `tests/e2e/claude-code-env`, which `cargo xtask test` runs):
//! `claude -p ... --allowedTools Read` with `ANTHROPIC_BASE_URL` at the built
//! `switchyard serve`, which routes every `claude-*` model to a scripted local Ollama
//! upstream. The model asks to read a file, Claude Code runs its Read tool, sends the result
//! back through the gateway, and prints the model's final answer: a whole tool round trip.
//! `HOME` is a temporary directory and telemetry is off. Without the install the test prints
//! why it is skipped, or fails with `SWITCHYARD_E2E_REQUIRED=1`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use common::{Served, TempDir, prerequisite};
use serde_json::json;
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

const SECRET: &str = "the launch code is 4242";
const ANSWER: &str = "The note says the launch code is 4242.";

/// Claude Code's binary, when installed.
fn claude_code() -> Option<PathBuf> {
    let dir = std::env::var_os("SWITCHYARD_CLAUDE_CODE_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-claude-code"),
        PathBuf::from,
    );
    let bin = dir.join("node_modules/@anthropic-ai/claude-code/bin/claude.exe");
    bin.exists().then_some(bin)
}

#[tokio::test]
async fn claude_code_print_mode_completes_a_tool_round_trip_on_a_local_model() {
    let Some(claude) = prerequisite(
        claude_code(),
        "e2e Claude Code: not installed; run `bash crates/switchyard/tests/e2e/claude-code-env`",
    ) else {
        return;
    };
    let work = TempDir::new("claude-code-work");
    let home = TempDir::new("claude-code-home");
    let notes = work.write("notes.txt", SECRET);
    let read = ScriptedCall::new("Read", json!({"file_path": notes.to_str().unwrap()}));
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("agent-model", Script::tool_calls(vec![read]))
            .after_tool_result("agent-model", Script::text([ANSWER]))
            .model_with_script("small-model", Script::text(["ok"])),
    )
    .await
    .unwrap();
    let dir = TempDir::new("claude-code-gateway");
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "claude", token: "env:E2E_KEY" }} ] }},
  providers: {{ local: {{ api: "ollama", base_url: "{}", locality: "local",
                          timeouts: {{ connect_ms: 1000, first_token_ms: 10000 }} }} }},
  routes: {{ "claude-*": {{ targets: ["local/agent-model"] }},
             "claude-haiku-*": {{ targets: ["local/small-model"] }},
             "claude-3-5-haiku-*": {{ targets: ["local/small-model"] }} }},
  retry: {{ max_retries: 0 }},
}}"#,
        upstream.base_url()
    );
    let served = Served::start(
        &dir.write("config.json5", &config),
        &[("E2E_KEY", "sk-claude")],
    )
    .await;

    let mut cmd = tokio::process::Command::new(&claude);
    cmd.args([
        "-p",
        "What does notes.txt say? Read it.",
        "--allowedTools",
        "Read",
    ])
    .args(["--model", "claude-sonnet-4-5"])
    .current_dir(work.path())
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .env("HOME", home.path())
    .env("ANTHROPIC_BASE_URL", served.base_url())
    .env("ANTHROPIC_API_KEY", "sk-claude")
    .env("DISABLE_TELEMETRY", "1")
    .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
    .env("DISABLE_AUTOUPDATER", "1")
    .env("DISABLE_ERROR_REPORTING", "1")
    .env("NO_PROXY", "*")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("Claude Code did not finish within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let context = || {
        let paths: Vec<String> = upstream
            .requests()
            .iter()
            .map(|r| format!("{} {:?}", r.path, r.model()))
            .collect();
        format!(
            "stdout:\n{stdout}\nstderr:\n{stderr}\nupstream requests: {paths:?}\ngateway log:\n{}",
            served.log_text()
        )
    };
    assert!(out.status.success(), "Claude Code failed\n{}", context());
    assert!(stdout.contains(ANSWER), "no final answer\n{}", context());
    // The Read tool really ran: the file's content reached the upstream as a tool result.
    let followup = upstream
        .chat_requests()
        .into_iter()
        .filter(|r| r.model().as_deref() == Some("agent-model"))
        .find(|r| r.body_text().contains(SECRET));
    assert!(
        followup.is_some(),
        "the tool result never reached the upstream\n{}",
        context()
    );
    eprintln!("Claude Code through the gateway:\n{}", context());
    drop(served);
    upstream.shutdown().await;
}
