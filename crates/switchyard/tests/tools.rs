//! `switchyard tools` against a running `switchyard serve` (issue 18): a caller's tool set,
//! the shrink of that set and the unknown tool calls its model made, read from the gateway's
//! `/admin/tools` with the config's admin key, as tables and as JSON; other keys are refused.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Stdio;
use std::time::Duration;

use common::{Served, TempDir, binary, http};
use serde_json::{Value, json};
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};
use tokio::process::Command;

const ENVS: [(&str, &str); 2] = [("AGENT_KEY", "sk-agent"), ("OPS_KEY", "sk-ops")];

/// Runs `switchyard tools --config <config> --url <base> <args>`; (exit code, stdout, stderr).
async fn tools(config: &std::path::Path, base: &str, args: &[&str]) -> (i32, String, String) {
    let mut cmd = Command::new(binary());
    cmd.arg("tools")
        .arg("--config")
        .arg(config)
        .args(["--url", base])
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env("NO_PROXY", "*")
        .envs(ENVS)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(20), cmd.output())
        .await
        .expect("switchyard tools finishes")
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn chat_with_tools(base: &str, names: &[&str]) {
    let tools: Vec<Value> = names
        .iter()
        .map(|n| json!({ "type": "function", "function": { "name": n, "parameters": { "type": "object" } } }))
        .collect();
    let resp = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth("sk-agent")
        .json(&json!({ "model": "chat", "tools": tools,
                       "messages": [{ "role": "user", "content": "go" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.text().await.unwrap();
    assert!(!body.contains("rm_rf"), "dropped by the route: {body}");
}

#[tokio::test]
async fn tools_shows_tool_sets_shrinks_and_unknown_calls_from_the_running_gateway() {
    let upstream = TestUpstream::start(UpstreamConfig::empty().model_with_script(
        "m",
        Script::tool_calls(vec![ScriptedCall::new("rm_rf", json!({ "path": "/" }))]),
    ))
    .await
    .unwrap();
    let dir = TempDir::new("tools");
    let config = dir.write(
        "config.json5",
        &format!(
            r#"{{
  server: {{ listen: "127.0.0.1:0",
            keys: [ {{ id: "agent", token: "env:AGENT_KEY" }},
                    {{ id: "ops", token: "env:OPS_KEY", admin: true }} ] }},
  providers: {{ up: {{ api: "ollama", base_url: "{}", locality: "local", discover: false,
                       models: [ {{ id: "m" }} ] }} }},
  routes: {{ chat: {{ targets: ["up/m"], drop_unknown_tool_calls: true }} }},
}}"#,
            upstream.base_url()
        ),
    );
    let served = Served::start(&config, &ENVS).await;
    let base = served.base_url();

    // Nothing seen yet.
    let (code, out, err) = tools(&config, &base, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("no caller"), "{out}");

    for _ in 0..3 {
        chat_with_tools(&base, &["search", "exec", "browser_open"]).await;
    }
    chat_with_tools(&base, &["search"]).await;

    let (code, out, err) = tools(&config, &base, &[]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("agent   1         search 1/1"), "{out}");
    assert!(out.contains("browser_open, exec  1"), "the shrink: {out}");
    assert_eq!(
        out.matches("rm_rf  up/m    dropped").count(),
        4,
        "every unknown call: {out}"
    );

    let (code, out, err) = tools(&config, &base, &["--caller", "agent", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let report: Value = serde_json::from_str(&out).unwrap();
    let agent = &report["callers"][0];
    assert_eq!(agent["caller"], "agent");
    assert_eq!(
        agent["shrinks"][0]["missing"],
        json!(["browser_open", "exec"])
    );
    assert_eq!(agent["unknown_calls"][0]["tool"], "rm_rf");
    assert_eq!(agent["unknown_calls"][0]["dropped"], true);
    let (code, out, _) = tools(&config, &base, &["--caller", "nobody", "--json"]).await;
    assert_eq!(code, 0);
    assert_eq!(
        serde_json::from_str::<Value>(&out).unwrap()["callers"],
        json!([])
    );

    // A key that is not an admin's is refused.
    let resp = http()
        .get(format!("{base}/admin/tools"))
        .bearer_auth("sk-agent")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    drop(served);
    upstream.shutdown().await;
}
