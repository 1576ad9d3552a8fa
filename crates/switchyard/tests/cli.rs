//! The binary's command line: `--help` everywhere, `config check` errors with path and
//! line, the non-loopback-without-keys refusal, `replay`, and `demo` exiting 0.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::{Output, Stdio};
use std::time::Duration;

use common::{TempDir, binary};
use tokio::process::Command;

/// Runs the binary with `args` (and extra environment) within `timeout`.
async fn run(args: &[&str], envs: &[(&str, &str)], timeout: Duration) -> Output {
    let mut cmd = Command::new(binary());
    cmd.args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    tokio::time::timeout(timeout, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("switchyard {args:?} did not finish within {timeout:?}"))
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const SHORT: Duration = Duration::from_secs(20);

#[tokio::test]
async fn every_subcommand_has_help() {
    for args in [
        vec!["--help"],
        vec!["serve", "--help"],
        vec!["demo", "--help"],
        vec!["models", "--help"],
        vec!["route", "explain", "--help"],
        vec!["config", "check", "--help"],
        vec!["replay", "--help"],
        vec!["doctor", "--help"],
        vec!["tools", "--help"],
    ] {
        let out = run(&args, &[], SHORT).await;
        assert!(out.status.success(), "{args:?}: {}", text(&out.stderr));
        assert!(
            text(&out.stdout).contains("Usage:"),
            "{args:?}: {}",
            text(&out.stdout)
        );
    }
}

#[tokio::test]
async fn config_check_reports_unknown_key_with_path_and_line() {
    let dir = TempDir::new("check-unknown");
    let file = dir.write(
        "bad.json5",
        "{\n  providers: {\n    local: {\n      api: 'ollama',\n      base_url: 'http://127.0.0.1:11434',\n      timeouts: { conect_ms: 2000 },\n    },\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let expected = format!(
        "{}:6: providers.local.timeouts.conect_ms: unknown field",
        file.display()
    );
    assert!(err.contains(&expected), "{err}");
    assert!(err.contains("config_unknown_key"), "{err}");
}

#[tokio::test]
async fn config_check_reports_missing_env_var_by_key() {
    let dir = TempDir::new("check-env");
    let file = dir.write(
        "env.json5",
        "{\n  server: {\n    keys: [ { id: 'laptop',\n              token: 'env:SWITCHYARD_TEST_SURELY_UNSET' } ],\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(":4: server.keys[0].token:"), "{err}");
    assert!(err.contains("SWITCHYARD_TEST_SURELY_UNSET"), "{err}");
    assert!(err.contains("config_missing_env"), "{err}");

    // With the variable set, the same file passes and the checksum is printed.
    let out = run(
        &["config", "check", file.to_str().unwrap()],
        &[("SWITCHYARD_TEST_SURELY_UNSET", "sk-test")],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("sha256:"), "{stdout}");
    assert!(
        !stdout.contains("sk-test"),
        "the secret is never printed: {stdout}"
    );
}

#[tokio::test]
async fn config_check_uses_the_config_flag_and_the_env_var() {
    let dir = TempDir::new("check-flag");
    let file = dir.write("ok.json5", "{ server: { listen: '127.0.0.1:4141' } }");
    let out = run(
        &["--config", file.to_str().unwrap(), "config", "check"],
        &[],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &["config", "check"],
        &[("SWITCHYARD_CONFIG", file.to_str().unwrap())],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(&["config", "check"], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn serve_refuses_a_network_address_without_keys() {
    let dir = TempDir::new("insecure");
    // In the file: refused by validation, naming the key.
    let file = dir.write("open.json5", "{\n  server: {\n    listen: '0.0.0.0:0' } }");
    let out = run(&["serve", "--config", file.to_str().unwrap()], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains(":3: server.listen:"), "{err}");
    assert!(err.contains("without API keys"), "{err}");

    // On the command line: refused by the gateway's listen policy.
    let file = dir.write("local.json5", "{ server: { listen: '127.0.0.1:0' } }");
    let out = run(
        &[
            "serve",
            "--config",
            file.to_str().unwrap(),
            "--listen",
            "0.0.0.0:0",
        ],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("insecure_listen"),
        "{}",
        text(&out.stderr)
    );
}

/// `--listen` on loopback overrides a `server.listen` that alone would be refused: the
/// policy is checked against the address bound.
#[tokio::test]
async fn serve_listen_on_loopback_overrides_a_refused_server_listen() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = TempDir::new("listen-override");
    let file = dir.write(
        "open.json5",
        "{\n  server: {\n    listen: '0.0.0.0:4141' } }",
    );
    let mut child = Command::new(binary())
        .args(["serve", "--config", file.to_str().unwrap()])
        .args(["--listen", "127.0.0.1:0"])
        .env_remove("SWITCHYARD_CONFIG")
        .env("SWITCHYARD_LOG", "info")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    let listening = tokio::time::timeout(SHORT, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.contains("listening on http://127.0.0.1:") {
                return true;
            }
            seen.push(line);
        }
        false
    })
    .await
    .unwrap_or(false);
    let _ = child.kill().await;
    assert!(listening, "serve did not start: {seen:#?}");
}

#[tokio::test]
async fn demo_exits_zero_and_shows_each_step() {
    let out = run(&["demo"], &[], Duration::from_secs(60)).await;
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "stdout:\n{stdout}\nstderr:\n{}",
        text(&out.stderr)
    );
    for needle in [
        "1. List models",
        "served by local/",
        "first token after",
        "the model asks: get_weather",
        "the model answers:",
        "fallback_after_connect_refused",
        "gateway overhead",
    ] {
        assert!(
            stdout.contains(needle),
            "{needle:?} missing from:\n{stdout}"
        );
    }
}

const OLLAMA_CAPTURE: &str = concat!(
    r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hi"},"done":false}"#,
    "\n",
    r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Oslo"}}}]},"done":false}"#,
    "\n",
    r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}"#,
    "\n"
);

#[tokio::test]
async fn replay_prints_events_and_reencodes() {
    let dir = TempDir::new("replay");
    let file = dir.write("capture.ndjson", OLLAMA_CAPTURE);
    let path = file.to_str().unwrap();
    let out = run(&["replay", "--from", "ollama", path], &[], SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines[0]["type"], "text_delta");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "tool_call_start" && l["name"] == "get_weather")
    );
    assert_eq!(lines.last().unwrap()["type"], "done");

    let out = run(
        &["replay", "--from", "ollama", "--to", "openai", path],
        &[],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let sse = text(&out.stdout);
    assert!(
        sse.starts_with("data: ") && sse.trim_end().ends_with("data: [DONE]"),
        "{sse}"
    );

    // A capture cut before its end: an error event, exit code 1.
    let cut = dir.write("cut.ndjson", &OLLAMA_CAPTURE[..OLLAMA_CAPTURE.len() / 2]);
    let out = run(
        &["replay", "--from", "ollama", cut.to_str().unwrap()],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stdout).contains(r#""type":"error""#),
        "{}",
        text(&out.stdout)
    );

    let out = run(
        &["replay", "--from", "ollama", "/nonexistent/capture"],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
}

#[tokio::test]
async fn doctor_reports_a_refused_provider_with_exit_code_2() {
    let addr = switchyard_testkit::refused_addr();
    let dir = TempDir::new("doctor");
    let file = dir.write(
        "config.json5",
        &format!(
            "{{ providers: {{ local: {{ api: 'ollama', base_url: 'http://{addr}' }} }},\n  routes: {{ chat: {{ targets: ['local/m'] }} }} }}"
        ),
    );
    let path = file.to_str().unwrap();
    let out = run(
        &["doctor", "--config", path, "--json"],
        &[],
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["exit_code"], 2, "{report}");
    assert!(report.to_string().contains("local"), "{report}");

    let out = run(
        &["doctor", "--config", path, "--provider", "nope"],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("no provider `nope`"));
}

/// The doctor's config check is `config check`'s: a rule to an unknown route (found only
/// when the router is built) is a config error with its line, and nothing is probed.
#[tokio::test]
async fn doctor_checks_the_config_as_config_check_does() {
    let dir = TempDir::new("doctor-rule");
    let file = dir.write(
        "rule.json5",
        "{\n  providers: { up: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n  routes: {\n    chat: { targets: ['up/m'],\n            rules: [ { task: 'summary', to: 'smal' } ] },\n  },\n}\n",
    );
    let path = file.to_str().unwrap();
    let out = run(&["doctor", "--config", path, "--json"], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let config = &report["gateway"]["checks"][0];
    assert_eq!(config["code"], "config_invalid", "{report}");
    let expected = format!("{path}:5: routes.chat.rules[0].to:");
    let summary = config["summary"].as_str().unwrap();
    assert!(summary.contains(&expected), "`{expected}` in {summary}");
    assert_eq!(report["providers"], serde_json::json!([]), "{report}");
}

#[tokio::test]
async fn doctor_climbs_the_ladder_of_an_anthropic_provider() {
    use switchyard_testkit::{Script, ScriptedCall, TestUpstream, UpstreamConfig};
    let model = "claude-sonnet-4-5-20250929";
    let call = ScriptedCall::new("get_current_time", serde_json::json!({"timezone": "UTC"}));
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .api_key("sk-ant-doctor")
            .model_with_script(model, Script::tool_calls(vec![call]))
            .after_tool_result(model, Script::text(["noon"])),
    )
    .await
    .unwrap();
    let dir = TempDir::new("doctor-anthropic");
    let file = dir.write(
        "config.json5",
        &format!(
            "{{ providers: {{ claude: {{ api: 'anthropic', base_url: '{}', api_key: 'env:DOCTOR_ANTHROPIC_KEY',\n  anthropic_version: '2023-06-01', anthropic_beta: ['beta-one'] }} }},\n  routes: {{ chat: {{ targets: ['claude/{model}'] }} }} }}",
            upstream.base_url()
        ),
    );
    let path = file.to_str().unwrap();
    let out = run(
        &["doctor", "--config", path, "--provider", "claude", "--json"],
        &[("DOCTOR_ANTHROPIC_KEY", "sk-ant-doctor")],
        Duration::from_secs(60),
    )
    .await;
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{report}");
    assert_eq!(report["providers"][0]["api"], "anthropic", "{report}");
    assert!(
        !text(&out.stderr).contains("skipped"),
        "{}",
        text(&out.stderr)
    );
    let sent = upstream.requests();
    // The paths rung's bare `{}` aside, every message went out with the configured headers.
    let messages: Vec<_> = sent
        .iter()
        .filter(|r| r.path == "/v1/messages" && r.body.len() > 2)
        .collect();
    assert_eq!(messages.len(), 4, "generate, stream and two tool legs");
    for r in messages {
        assert_eq!(r.header("x-api-key"), Some("sk-ant-doctor"));
        assert_eq!(r.header("anthropic-version"), Some("2023-06-01"));
        assert_eq!(r.header("anthropic-beta"), Some("beta-one"));
    }
}

#[tokio::test]
async fn models_and_route_explain_read_the_config_and_the_upstream() {
    use switchyard_testkit::{ModelSpec, TestUpstream, UpstreamConfig};
    let upstream = TestUpstream::start(
        UpstreamConfig::empty().model(ModelSpec::new("qwen2.5:7b").context_length(32768)),
    )
    .await
    .unwrap();
    let dir = TempDir::new("models");
    let file = dir.write(
        "config.json5",
        &format!(
            r#"{{
  providers: {{
    local: {{ api: "ollama", base_url: "{}" }},
    cloud: {{ api: "openai", base_url: "https://api.example.invalid/v1", api_key: "env:SY_CLOUD_KEY",
             discover: false,
             models: [ {{ id: "gpt-4.1-mini", input_usd_per_mtok: 0.4, output_usd_per_mtok: 1.6, context_window: 1047576 }} ] }},
  }},
  routes: {{ chat: {{ targets: ["local/qwen2.5:7b", "cloud/gpt-4.1-mini"] }} }},
}}"#,
            upstream.base_url()
        ),
    );
    let path = file.to_str().unwrap();
    let env = [("SY_CLOUD_KEY", "sk-x")];

    let out = run(&["models", "--config", path], &env, SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("MODEL"), "{table}");
    for needle in [
        "chat",
        "local/qwen2.5:7b",
        "32768",
        "cloud/gpt-4.1-mini",
        "1047576",
        "0.4/1.6",
    ] {
        assert!(table.contains(needle), "{needle:?} missing:\n{table}");
    }
    let out = run(&["models", "--config", path, "--json"], &env, SHORT).await;
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        entries
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == "local/qwen2.5:7b")
    );

    let out = run(
        &[
            "route",
            "explain",
            "--config",
            path,
            "--model",
            "chat",
            "--privacy",
            "local-only",
        ],
        &env,
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("privacy:  local-only"), "{plan}");
    assert!(plan.contains("1. local/qwen2.5:7b"), "{plan}");
    assert!(
        plan.contains("cloud/gpt-4.1-mini") && plan.contains("excluded: privacy"),
        "{plan}"
    );

    let out = run(
        &[
            "route",
            "explain",
            "--config",
            path,
            "--model",
            "nothing-like-it",
            "--json",
        ],
        &env,
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    upstream.shutdown().await;
}

#[tokio::test]
async fn the_deploy_example_config_is_valid() {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/deploy/switchyard.json5");
    let out = run(
        &["config", "check", example.to_str().unwrap()],
        &[
            ("SWITCHYARD_KEY", "k1"),
            ("SWITCHYARD_CI_KEY", "k2"),
            ("OPENAI_API_KEY", "k3"),
            ("ANTHROPIC_API_KEY", "k4"),
        ],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("4 providers, 3 routes, 2 keys"),
        "{}",
        text(&out.stdout)
    );
}

/// The config embedded in a Kubernetes ConfigMap: the block under `switchyard.json5: |`.
fn configmap_config(yaml: &str) -> String {
    let mut lines = yaml
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("switchyard.json5: |"));
    let head = lines.next().expect("the ConfigMap has switchyard.json5");
    let indent = head.len() - head.trim_start().len() + 2;
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() >= indent)
        .map(|l| l.get(indent..).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn the_deploy_examples_configs_are_valid() {
    let deploy = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/deploy");
    let dir = TempDir::new("deploy-examples");
    let yaml = std::fs::read_to_string(deploy.join("kubernetes/configmap.yaml")).unwrap();
    let embedded = dir.write("configmap.json5", &configmap_config(&yaml));
    let env = [
        ("SWITCHYARD_TEAM_KEY", "k1"),
        ("SWITCHYARD_CI_KEY", "k2"),
        ("OPENAI_API_KEY", "k3"),
        ("REDIS_PASSWORD", "k4"),
    ];
    for file in [deploy.join("replicas/switchyard.json5"), embedded] {
        let out = run(&["config", "check", file.to_str().unwrap()], &env, SHORT).await;
        assert!(
            out.status.success(),
            "{}: {}",
            file.display(),
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("2 providers, 1 routes, 2 keys"),
            "{}: {}",
            file.display(),
            text(&out.stdout)
        );
    }
}

#[tokio::test]
async fn config_check_builds_providers_and_names_the_key_on_failure() {
    let dir = TempDir::new("check-build");
    let file = dir.write(
        "ca.json5",
        "{\n  providers: {\n    lan: { api: 'openai', base_url: 'https://10.0.0.2/v1',\n           ca_file: '/nonexistent/ca.pem' },\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.starts_with(&format!("{}:", file.display())), "{err}");
    assert!(err.contains("providers.lan"), "{err}");
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[tokio::test]
async fn route_explain_applies_the_callers_key_policy() {
    let dir = TempDir::new("explain-caller");
    let file = dir.write(
        "config.json5",
        r#"{
  server: { keys: [ { id: "laptop", token: "env:SY_K1", privacy: "local-only" },
                    { id: "ci", token: "env:SY_K2", allowed_routes: ["chat"] } ] },
  providers: {
    local: { api: "openai", base_url: "http://127.0.0.1:9/v1", discover: false,
             models: [ { id: "qwen" } ] },
    cloud: { api: "openai", base_url: "https://api.example.invalid/v1", discover: false,
             models: [ { id: "gpt-4.1-mini" } ] },
  },
  routes: { chat: { targets: ["cloud/gpt-4.1-mini", "local/qwen"] } },
}"#,
    );
    let path = file.to_str().unwrap();
    let env = [("SY_K1", "sk-1"), ("SY_K2", "sk-2")];
    let explain = |extra: &'static [&'static str]| {
        let mut args = vec!["route", "explain", "--config", path, "--model"];
        args.extend_from_slice(extra);
        args
    };

    // The key's privacy applies; `--privacy any` (like the header) cannot lower it.
    for extra in [
        &["chat", "--caller", "laptop"][..],
        &["chat", "--caller", "laptop", "--privacy", "any"][..],
    ] {
        let out = run(&explain(extra), &env, SHORT).await;
        assert!(out.status.success(), "{}", text(&out.stderr));
        let plan = text(&out.stdout);
        assert!(plan.contains("privacy:  local-only"), "{plan}");
        assert!(plan.contains("1. local/qwen"), "{plan}");
        assert!(
            plan.contains("cloud/gpt-4.1-mini") && plan.contains("excluded: privacy"),
            "{plan}"
        );
    }
    // Without a caller the cloud target leads.
    let out = run(&explain(&["chat"]), &env, SHORT).await;
    assert!(
        text(&out.stdout).contains("1. cloud/gpt-4.1-mini"),
        "{}",
        text(&out.stdout)
    );

    // The key's allowed_routes apply: `ci` may use `chat`, nothing else.
    let out = run(&explain(&["chat", "--caller", "ci"]), &env, SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(
        &explain(&["cloud/gpt-4.1-mini", "--caller", "ci", "--json"]),
        &env,
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("policy_blocked") && error.contains("`ci`") && error.contains("chat"),
        "{json}"
    );
    assert!(json["targets"].as_array().unwrap().is_empty(), "{json}");

    // An unknown caller is a mistake on the command line: exit 2, the known ids listed.
    let out = run(&explain(&["chat", "--caller", "nobody"]), &env, SHORT).await;
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    assert!(
        err.contains("`nobody`") && err.contains("laptop") && err.contains("ci"),
        "{err}"
    );
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
}

/// The binary reads `SWITCHYARD_NO_CLOUD` and passes it to the router as
/// `RouterConfig::no_cloud` (the router reads no environment): with `1` the cloud fallback
/// of a route is excluded as `cloud_fallback_disabled`, with `0` it stays in the plan.
#[tokio::test]
async fn route_explain_applies_switchyard_no_cloud_from_the_environment() {
    let dir = TempDir::new("explain-no-cloud");
    let file = dir.write(
        "config.json5",
        r#"{
  providers: {
    local: { api: "openai", base_url: "http://127.0.0.1:9/v1", discover: false,
             models: [ { id: "qwen" } ] },
    cloud: { api: "openai", base_url: "https://api.example.invalid/v1", discover: false,
             models: [ { id: "gpt-4.1-mini" } ] },
  },
  routes: { chat: { targets: ["local/qwen", "cloud/gpt-4.1-mini"] } },
}"#,
    );
    let path = file.to_str().unwrap();
    let args = ["route", "explain", "--config", path, "--model", "chat"];

    let out = run(&args, &[("SWITCHYARD_NO_CLOUD", "0")], SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("1. local/qwen"), "{plan}");
    assert!(plan.contains("2. cloud/gpt-4.1-mini"), "{plan}");
    assert!(!plan.contains("cloud_fallback_disabled"), "{plan}");

    let out = run(&args, &[("SWITCHYARD_NO_CLOUD", "1")], SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let plan = text(&out.stdout);
    assert!(plan.contains("1. local/qwen"), "{plan}");
    assert!(
        plan.contains("cloud/gpt-4.1-mini") && plan.contains("excluded: cloud_fallback_disabled"),
        "{plan}"
    );
    assert!(!plan.contains("2. "), "{plan}");
}

#[tokio::test]
async fn models_pull_shows_plain_progress_and_models_ps_lists_loaded_models() {
    use switchyard_testkit::{TestUpstream, UpstreamConfig};
    let upstream = TestUpstream::start(UpstreamConfig::default().loaded("test-model"))
        .await
        .unwrap();
    let dir = TempDir::new("models-pull");
    let file = dir.write(
        "config.json5",
        &format!(
            r#"{{ providers: {{
    local: {{ api: "ollama", base_url: "{}" }},
    cloud: {{ api: "openai", base_url: "https://api.example.invalid/v1", discover: false,
             models: [ {{ id: "gpt-4.1-mini" }} ] }},
}} }}"#,
            upstream.base_url()
        ),
    );
    let path = file.to_str().unwrap();

    // Not a terminal: plain lines, the layer in tenths, the size.
    let out = run(
        &["models", "pull", "qwen3:0.6b", "--config", path],
        &[],
        SHORT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let progress = text(&out.stderr);
    for needle in [
        "pulling manifest",
        "50% (1.91 MiB of 3.81 MiB)",
        "100%",
        "success",
    ] {
        assert!(progress.contains(needle), "{needle} in {progress}");
    }
    assert!(
        !progress.contains('\r'),
        "no redraws when not on a terminal"
    );
    assert_eq!(text(&out.stdout).trim(), "pulled qwen3:0.6b onto local");
    assert!(
        String::from_utf8_lossy(&upstream.requests().last().unwrap().body).contains("qwen3:0.6b")
    );
    // Failures and wrong providers exit non-zero with the reason.
    let out = run(
        &["models", "pull", "missing-x", "--config", path],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("file does not exist"),
        "{}",
        text(&out.stderr)
    );
    let out = run(
        &[
            "models",
            "pull",
            "x",
            "--provider",
            "cloud",
            "--config",
            path,
        ],
        &[],
        SHORT,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cloud provider"),
        "{}",
        text(&out.stderr)
    );

    let out = run(&["models", "ps", "--config", path], &[], SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let table = text(&out.stdout);
    assert!(table.starts_with("NAME"), "{table}");
    assert!(table.contains("local/test-model"), "{table}");
    let out = run(&["models", "ps", "--json", "--config", path], &[], SHORT).await;
    let rows: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rows[0]["name"], "local/test-model");
    upstream.shutdown().await;
}

#[tokio::test]
async fn route_explain_shows_capability_and_tool_policy_skips() {
    use switchyard_testkit::{ModelSpec, TestUpstream, UpstreamConfig};
    let upstream = TestUpstream::start(
        UpstreamConfig::empty().model(ModelSpec::new("plain:1b").capabilities(["completion"])),
    )
    .await
    .unwrap();
    let dir = TempDir::new("explain-tools");
    let file = dir.write(
        "config.json5",
        &format!(
            r#"{{
  providers: {{
    local: {{ api: "ollama", base_url: "{}", text_tool_recovery: false }},
    cloud: {{ api: "openai", base_url: "https://api.example.invalid/v1", api_key: "env:SY_CLOUD_KEY",
             discover: false, models: [ {{ id: "gpt-4.1-mini" }} ] }},
  }},
  routes: {{ chat: {{ targets: ["local/plain:1b", "cloud/gpt-4.1-mini"],
                    rules: [ {{ task: "summary", to: "cheap" }} ] }},
            cheap: {{ targets: ["cloud/gpt-4.1-mini"] }} }},
  policy: {{ tools: {{ never_to_cloud: ["exec"] }} }},
}}"#,
            upstream.base_url()
        ),
    );
    let path = file.to_str().unwrap();
    let env = [("SY_CLOUD_KEY", "sk-x")];
    let args = [
        "route", "explain", "--config", path, "--model", "chat", "--tool", "exec", "--json",
    ];
    let out = run(&args, &env, SHORT).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reasons: Vec<(&str, &str)> = plan["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            let target = &t["target"];
            (
                target["provider"].as_str().unwrap(),
                t["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(reasons.contains(&("local", "model_lacks_tools")), "{plan}");
    assert!(
        reasons.contains(&("cloud", "tool_never_to_cloud")),
        "{plan}"
    );
    assert!(plan["error"].as_str().unwrap().contains("`exec`"), "{plan}");

    // Without tools, the plain model is the plan.
    let args = ["route", "explain", "--config", path, "--model", "chat"];
    let out = run(&args, &env, SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    assert!(text(&out.stdout).contains("1. local/plain:1b"));

    // A task rule sends the request to its route, and says so.
    let args = [
        "route", "explain", "--config", path, "--model", "chat", "--task", "summary",
    ];
    let out = run(&args, &env, SHORT).await;
    assert!(out.status.success(), "{}", text(&out.stdout));
    let plan = text(&out.stdout);
    assert!(plan.contains("rule:     chat.rules[0] -> cheap"), "{plan}");
    assert!(plan.contains("1. cloud/gpt-4.1-mini"), "{plan}");
    upstream.shutdown().await;
}

// Review (config): deeply nested brackets where the config takes an untagged value (a
// route's target step) overflow the stack while the parsed document is turned into the
// config (serde buffers an untagged value recursively; pest's stack guard only covers the
// parse, and lets through depths that the conversion then cannot take): `config check`
// is killed by SIGABRT instead of refusing the file, and a running `serve` dies the same
// way when such a file is reloaded. Depths are tried in steps, since where the window lies
// depends on the stack and the build.
#[tokio::test]
async fn config_check_refuses_deep_nesting_without_crashing() {
    let dir = TempDir::new("check-deep");
    for depth in (500..=12_000).step_by(500) {
        let config = format!(
            "{{ providers: {{ up: {{ api: 'ollama', base_url: 'http://127.0.0.1:11434' }} }},\n  routes: {{ chat: {{ targets: [{}{}] }} }} }}\n",
            "[".repeat(depth),
            "]".repeat(depth)
        );
        let file = dir.write("deep.json5", &config);
        let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
        let err = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "nesting depth {depth}: expected a refusal (exit 2), got {:?}: {}",
            out.status,
            err.chars().take(400).collect::<String>()
        );
        assert!(err.starts_with(&format!("{}:", file.display())), "{err}");
    }
}

// Review (config): mistakes only the router finds (a task rule's `to` naming no route, a
// rule loop, a bad tool glob) are reported without a line and without their key path
// (`ConfigErrorKind::Router` errors carry no segments): `config check` prints
// `FILE: invalid_rule: chat.rules[0]: ...` where every other mistake gets
// `FILE:LINE: routes.chat.rules[0].to: ...`, and a refused reload logs the same.
#[tokio::test]
async fn config_check_names_line_and_key_of_a_rule_to_an_unknown_route() {
    let dir = TempDir::new("check-rule");
    let file = dir.write(
        "rule.json5",
        "{\n  providers: { up: { api: 'ollama', base_url: 'http://127.0.0.1:11434' } },\n  routes: {\n    chat: { targets: ['up/m'],\n            rules: [ { task: 'summary', to: 'smal' } ] },\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    let expected = format!("{}:5: routes.chat.rules[0].to:", file.display());
    assert!(err.contains(&expected), "expected `{expected}` in: {err}");
    assert!(err.contains("smal"), "{err}");
}

/// `serve` with a `spend_ledger` file that was cut short must refuse to start with a config
/// error naming the file (exit code 2, like every other config error: docs/ARCHITECTURE.md
/// "A config that fails to parse or validate ... the error says where"; wiring.rs
/// `open_ledger` maps a ledger error to a config error at `spend_ledger`), not panic inside
/// redb (exit code 101 and an assertion message that names no file).
#[tokio::test]
async fn serve_refuses_a_truncated_spend_ledger_naming_the_file() {
    use switchyard_router::SpendLedger as _;
    let dir = TempDir::new("ledger-trunc");
    let ledger = dir.path().join("spend.redb");
    {
        let l = switchyard_router::RedbLedger::open(&ledger).unwrap();
        l.record(Some("a"), 5, std::time::SystemTime::now())
            .unwrap();
    }
    let whole = std::fs::read(&ledger).unwrap();
    std::fs::write(&ledger, &whole[..whole.len() / 2]).unwrap();
    let file = dir.write(
        "ledger.json5",
        &format!(
            "{{ server: {{ listen: '127.0.0.1:0' }}, spend_ledger: '{}' }}",
            ledger.display()
        ),
    );
    let out = run(&["serve", "--config", file.to_str().unwrap()], &[], SHORT).await;
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(ledger.to_str().unwrap()), "{err}");
}

/// `warm.keep_alive` is documented as "a duration string (`\"30m\"`) or seconds", but any
/// string is accepted: `config check` says `ok` for `keep_alive: "half an hour"`, and the
/// mistake shows only at `serve`, when Ollama refuses the warm-up ("time: invalid
/// duration") and the model is not kept loaded. The value should be refused when the file
/// is loaded (exit 2) with its key path, as every other bad duration is. Cause:
/// `WarmSection::keep_alive` is `switchyard_core::KeepAlive`, an untagged enum whose
/// `Duration(String)` takes any string, and config/validate.rs never checks it.
#[tokio::test]
async fn config_check_refuses_a_keep_alive_that_is_not_a_duration() {
    let dir = TempDir::new("check-keep-alive");
    let file = dir.write(
        "warm.json5",
        "{\n  providers: {\n    local: {\n      api: 'ollama',\n      base_url: 'http://127.0.0.1:11434',\n      warm: { models: ['qwen3:8b'], keep_alive: 'half an hour' },\n    },\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "an unparseable keep_alive was accepted: {}{err}",
        text(&out.stdout)
    );
    assert!(err.contains("providers.local.warm.keep_alive"), "{err}");
}

/// A base URL that holds an endpoint path is accepted by `config check` (and `serve`),
/// though every request then goes to a path that does not exist:
/// `http://host/v1/chat/completions` for an OpenAI-compatible provider is called as
/// `.../v1/chat/completions/chat/completions`, `http://host:11434/api` for Ollama as
/// `/api/api/chat`; each is a 404 at request time. The doctor already knows both mistakes
/// (`endpoint_path_in_base_url`, `api_path_on_ollama`, docs/DECISIONS.md) and the Ollama
/// client already strips a trailing `/v1`, but config validation
/// (config/validate.rs `validate_provider`, `switchyard_http::normalize_base_url`) only
/// checks scheme, host, login and query. Expected: exit 2 naming
/// `providers.<id>.base_url` and what is wrong.
#[tokio::test]
async fn config_check_refuses_a_base_url_holding_an_endpoint_path() {
    let dir = TempDir::new("check-base-path");
    let mut accepted = Vec::new();
    for (api, url) in [
        ("openai", "http://127.0.0.1:8000/v1/chat/completions"),
        ("ollama", "http://127.0.0.1:11434/api"),
    ] {
        let file = dir.write(
            &format!("{api}.json5"),
            &format!(
                "{{\n  providers: {{\n    p: {{\n      api: '{api}',\n      base_url: '{url}',\n      discover: false,\n      models: [ {{ id: 'm' }} ],\n    }},\n  }},\n}}\n"
            ),
        );
        let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
        let err = text(&out.stderr);
        if out.status.code() != Some(2) || !err.contains("providers.p.base_url") {
            accepted.push(format!("{api} base_url {url}: {}{err}", text(&out.stdout)));
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

/// Zero limits of the response store are accepted silently, while every other zero limit
/// in the file (`max_body_bytes`, `max_connections`, timeouts, `max_concurrency`, ...) is
/// refused. With `responses: { max_entries: 0 }` (or `ttl_secs: 0`, `max_bytes: 0`,
/// `max_entry_bytes: 0`) every `store: true` response is dropped at once, so a later
/// `previous_response_id` is a 404 with nothing in the config check or the start-up log
/// to say why. config/validate.rs has no check of the `responses` section. Expected:
/// exit 2 naming `responses.<field>`.
#[tokio::test]
async fn config_check_refuses_zero_response_store_limits() {
    let dir = TempDir::new("check-responses-zero");
    let mut accepted = Vec::new();
    for field in ["ttl_secs", "max_entries", "max_bytes", "max_entry_bytes"] {
        let file = dir.write(
            &format!("{field}.json5"),
            &format!("{{\n  responses: {{\n    {field}: 0,\n  }},\n}}\n"),
        );
        let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
        let err = text(&out.stderr);
        if out.status.code() != Some(2) || !err.contains(&format!("responses.{field}")) {
            accepted.push(format!("responses.{field}: 0: {}{err}", text(&out.stdout)));
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

/// `warm` is for Ollama providers (file.rs: "Models to load when `serve` starts and keep
/// loaded (Ollama providers)"), and config validation refuses every other option on a
/// provider whose API does not have it (`num_ctx`, `max_tokens_field`, `responses`,
/// `anthropic_version`, ...). `warm` on an `api: "openai"` or `"anthropic"` provider is
/// accepted by `config check`, and `serve` then only logs "could not warm a model ... not
/// supported by this provider" while `/readyz` waits for it. Expected: exit 2 naming
/// `providers.<id>.warm` (config/validate.rs `validate_provider`).
#[tokio::test]
async fn config_check_refuses_warm_on_a_provider_that_cannot_warm() {
    let dir = TempDir::new("check-warm-openai");
    let file = dir.write(
        "warm.json5",
        "{\n  providers: {\n    vllm: {\n      api: 'openai',\n      base_url: 'http://127.0.0.1:8000/v1',\n      warm: { models: ['m'] },\n    },\n  },\n}\n",
    );
    let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
    let err = text(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(2),
        "warm on an openai provider accepted: {}{err}",
        text(&out.stdout)
    );
    assert!(err.contains("providers.vllm.warm"), "{err}");
}

/// `switchyard models ps` exits 0 and prints an empty list (`[]` with `--json`) when no
/// provider answered at all (here its only Ollama refuses connections): a script cannot
/// tell "nothing loaded" from "Ollama is down", and the only sign is a `note:` on stderr.
/// A command whose every upstream call failed should exit non-zero, as `models pull` does
/// (lifecycle.rs `ps` returns 0 unconditionally).
#[tokio::test]
async fn models_ps_fails_when_no_provider_answers() {
    let dir = TempDir::new("ps-down");
    let addr = switchyard_testkit::refused_addr();
    let file = dir.write(
        "down.json5",
        &format!("{{ providers: {{ local: {{ api: 'ollama', base_url: 'http://{addr}' }} }} }}"),
    );
    let out = run(
        &["--config", file.to_str().unwrap(), "models", "ps", "--json"],
        &[],
        SHORT,
    )
    .await;
    assert_ne!(
        out.status.code(),
        Some(0),
        "exit 0 although the only provider refused: stdout {} stderr {}",
        text(&out.stdout),
        text(&out.stderr)
    );
}

/// `config check` says `ok` for a `spend_ledger` that `serve` then refuses at start
/// (exit 2, "ledger_database: ... Is a directory" / "No such file or directory"): a path
/// that is a directory, or one whose directory does not exist. `config check` is what an
/// operator (or CI) runs before a deploy, and its doc says it prints "the file, line and
/// key of the mistake"; here the mistake only shows when the service fails to start.
/// check.rs builds the clients and the router but never looks at `spend_ledger`
/// (wiring::open_ledger runs only in `serve`). Expected: exit 2 naming `spend_ledger`,
/// without creating the file.
#[tokio::test]
async fn config_check_refuses_a_spend_ledger_serve_cannot_open() {
    let dir = TempDir::new("check-ledger");
    let missing_dir = dir.path().join("no-such-dir").join("spend.redb");
    let mut accepted = Vec::new();
    for (name, ledger) in [
        ("directory", dir.path().to_owned()),
        ("missing-dir", missing_dir),
    ] {
        let file = dir.write(
            &format!("{name}.json5"),
            &format!("{{\n  spend_ledger: {:?},\n}}\n", ledger.to_str().unwrap()),
        );
        let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
        let err = text(&out.stderr);
        if out.status.code() != Some(2) || !err.contains("spend_ledger") {
            accepted.push(format!("{name}: {}{err}", text(&out.stdout)));
        }
    }
    assert!(accepted.is_empty(), "accepted: {accepted:#?}");
}

/// Every config section can be written as an array of positional values instead of an
/// object, and `config check` (and `serve`) accept it: `retry: [3]`, `server:
/// ["127.0.0.1:5000"]` (taken as `server.listen`), even a whole file `[{}, {...}]`. The
/// meaning then hangs on the order the fields are declared in the source, which no doc
/// states, and the promise that every key is checked by name ("unknown keys are refused
/// with their key path and line", README) does not hold: no key is written at all. A likely
/// slip, `routes: { chat: ["local/m"] }` (the targets without `targets:`), is refused with
/// the baffling "routes.chat[0]: ... expected a sequence". Expected: a section that is an
/// array where an object belongs is refused (exit 2) naming its key path and "expected an
/// object" (or similar). Cause: json5's `deserialize_struct` goes through `deserialize_any`,
/// which hands an array to serde's derived `visit_seq`; config/strict.rs
/// `Strict::deserialize_struct` passes it through unchanged.
#[tokio::test]
async fn config_check_refuses_a_section_written_as_an_array() {
    let dir = TempDir::new("check-array-section");
    for (name, config, key) in [
        (
            "server.json5",
            r#"{ server: ["127.0.0.1:5000"] }"#,
            "server",
        ),
        ("retry.json5", "{ retry: [3] }", "retry"),
        ("whole.json5", "[{}, {}]", ""),
    ] {
        let file = dir.write(name, config);
        let out = run(&["config", "check", file.to_str().unwrap()], &[], SHORT).await;
        let stderr = text(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{config} was accepted:\n{}{stderr}",
            text(&out.stdout)
        );
        assert!(stderr.contains(key), "{config}: {stderr}");
    }
}

/// `switchyard demo | head -3` (any reader that stops early) makes the demo panic: the
/// next `println!` meets a closed pipe (Rust ignores SIGPIPE, so the write fails with
/// EPIPE) and `print!` panics with "failed printing to stdout: Broken pipe", exit code 101
/// and a panic message (with a backtrace under RUST_BACKTRACE) on the user's terminal.
/// The same holds for `models`, `route explain`, `replay`, `config check`. Expected: the
/// command stops quietly (no panic, not exit code 101) when its output is no longer read.
/// Cause: demo.rs (and the other commands) write with `println!`/`print!`; main.rs neither
/// restores SIGPIPE's default action nor handles the write error.
#[tokio::test]
async fn demo_stops_quietly_when_its_output_is_closed() {
    let mut child = Command::new(binary())
        .arg("demo")
        .env_remove("SWITCHYARD_CONFIG")
        .env_remove("RUST_BACKTRACE")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The reader goes away before the demo writes its first line (like `| head -0`).
    drop(child.stdout.take());
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("demo did not finish")
        .unwrap();
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_ne!(out.status.code(), Some(101), "{stderr}");
}

/// `switchyard models` describes a route by its primary target, and calls a route whose
/// primary is one of Ollama's cloud models (`*-cloud`, run on ollama.com) `local` while the
/// Ollama daemon has not been listed yet (down, starting): the row reads
/// `chat route local local`, though the planner treats that target as cloud (README/commit
/// 0bf04eb: "a model named as Ollama's cloud models (*-cloud) is cloud whether configured,
/// discovered or not yet listed"; `route explain --privacy local-only` excludes it as
/// `privacy_local_only` with locality `cloud`). An operator checking which routes stay on
/// the machine is told the wrong thing. Expected: the route entry's `locality` is `cloud`,
/// as the target's. Cause: switchyard-router router.rs `Router::catalog` builds the
/// fallback `ModelInfo::new(primary.model, slot.locality)` from the provider's locality
/// instead of `slot.model_locality(&primary.model)`.
#[tokio::test]
async fn models_calls_a_route_to_an_ollama_cloud_model_cloud_while_ollama_is_down() {
    let down = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = down.local_addr().unwrap();
    drop(down);
    let dir = TempDir::new("models-cloud-route");
    let file = dir.write(
        "config.json5",
        &format!(
            r#"{{
  providers: {{ local: {{ api: "ollama", base_url: "http://{addr}" }} }},
  routes: {{ chat: {{ targets: ["local/gpt-oss:120b-cloud"] }} }},
}}"#
        ),
    );
    let path = file.to_str().unwrap();

    // The planner: the target is cloud.
    let out = run(
        &[
            "route", "explain", "--config", path, "--model", "chat", "--json",
        ],
        &[],
        SHORT,
    )
    .await;
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["targets"][0]["target"]["locality"], "cloud", "{plan}");

    // The catalog: the route to it must say so too.
    let out = run(&["models", "--config", path, "--json"], &[], SHORT).await;
    let entries: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let chat = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "chat")
        .unwrap_or_else(|| panic!("no route entry: {entries}"));
    assert_eq!(chat["info"]["locality"], "cloud", "{chat}");
}
