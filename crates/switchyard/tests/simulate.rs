//! `switchyard simulate`: the simulated model server answers both APIs, streamed and not,
//! lists only its model, and stops on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const WAIT: Duration = Duration::from_secs(20);

/// A running `switchyard simulate` with `args`, its first stdout line and its OpenAI base URL.
struct Simulated {
    child: tokio::process::Child,
    banner: String,
    openai: String,
}

async fn simulate(args: &[&str]) -> Simulated {
    let mut child = Command::new(env!("CARGO_BIN_EXE_switchyard"))
        .arg("simulate")
        .args(["--listen", "127.0.0.1:0"])
        .args(args)
        .env_remove("SWITCHYARD_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let banner = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("no banner in time")
        .unwrap()
        .expect("stdout closed before the banner");
    let openai = banner
        .split_whitespace()
        .find(|w| w.starts_with("http://") && w.ends_with("/v1"))
        .unwrap_or_else(|| panic!("no /v1 URL in {banner}"))
        .to_owned();
    Simulated {
        child,
        banner,
        openai,
    }
}

/// The body of a streamed chat answer (`stream: true`) at `url`.
async fn streamed(http: &reqwest::Client, url: &str, model: &str) -> String {
    let response = tokio::time::timeout(
        WAIT,
        http.post(url)
            .json(&serde_json::json!({"model": model, "stream": true, "messages": []}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(response.status(), 200);
    tokio::time::timeout(WAIT, response.text())
        .await
        .unwrap()
        .unwrap()
}

#[tokio::test]
async fn simulate_serves_both_apis_and_stops_on_sigterm() {
    let Simulated {
        mut child,
        banner,
        openai,
    } = simulate(&["--model", "sim-model"]).await;
    assert!(banner.contains("model sim-model"), "{banner}");
    assert!(banner.contains("fast mode"), "{banner}");
    let base = openai.trim_end_matches("/v1").to_owned();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();

    let whole: serde_json::Value = tokio::time::timeout(
        WAIT,
        http.post(format!("{openai}/chat/completions"))
            .json(&serde_json::json!({"model": "sim-model", "messages": [{"role": "user", "content": "hi"}]}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(
        whole["choices"][0]["message"]["content"],
        "Hello! How can I help?"
    );

    let streamed = tokio::time::timeout(
        WAIT,
        http.post(format!("{openai}/chat/completions"))
            .json(&serde_json::json!({"model": "sim-model", "stream": true, "messages": []}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        streamed.headers()["content-type"]
            .to_str()
            .unwrap()
            .split(';')
            .next(),
        Some("text/event-stream")
    );
    let text = tokio::time::timeout(WAIT, streamed.text())
        .await
        .unwrap()
        .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");

    let ollama: serde_json::Value = tokio::time::timeout(
        WAIT,
        http.post(format!("{base}/api/chat"))
            .json(&serde_json::json!({"model": "sim-model", "stream": false, "messages": []}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(ollama["message"]["content"], "Hello! How can I help?");

    let other = tokio::time::timeout(
        WAIT,
        http.post(format!("{openai}/chat/completions"))
            .json(&serde_json::json!({"model": "bench", "messages": []}))
            .send(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(other.status(), 404);

    let pid = child.id().unwrap();
    let killed = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let status = tokio::time::timeout(WAIT, child.wait())
        .await
        .expect("simulate did not stop on SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn simulate_refuses_a_taken_port() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = tokio::time::timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["simulate", "--listen", &addr, "--delay-ms", "5"])
            .env_remove("SWITCHYARD_CONFIG")
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("cannot listen on {addr}")), "{err}");
}

#[tokio::test]
async fn simulate_help_documents_its_options() {
    let out = tokio::time::timeout(
        WAIT,
        Command::new(env!("CARGO_BIN_EXE_switchyard"))
            .args(["simulate", "--help"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "--listen",
        "--model",
        "--delay-ms",
        "--chunk-delay-ms",
        "--chunks",
        "without Ollama",
    ] {
        assert!(help.contains(needle), "{needle} missing from:\n{help}");
    }
}

/// `--chunks N` streams exactly N content chunks per answer, on both APIs, in fast mode and
/// paced by `--chunk-delay-ms`.
#[tokio::test]
async fn simulate_streams_the_requested_number_of_chunks() {
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    for (args, n) in [
        (&["--chunks", "20"][..], 20),
        (&["--chunks", "3", "--chunk-delay-ms", "1"][..], 3),
    ] {
        let sim = simulate(args).await;
        assert!(
            sim.banner.contains(&format!("{n} chunks per answer")),
            "{}",
            sim.banner
        );
        let sse = streamed(&http, &format!("{}/chat/completions", sim.openai), "bench").await;
        let contents: Vec<&str> = sse
            .lines()
            .filter(|l| l.starts_with("data: {") && l.contains("\"content\":\"tok"))
            .collect();
        assert_eq!(contents.len(), n, "{sse}");
        assert!(contents[n - 1].contains(&format!("tok{} ", n - 1)), "{sse}");
        assert!(sse.trim_end().ends_with("data: [DONE]"), "{sse}");

        let base = sim.openai.trim_end_matches("/v1");
        let ndjson = streamed(&http, &format!("{base}/api/chat"), "bench").await;
        let lines: Vec<serde_json::Value> = ndjson
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        let tokens: Vec<&serde_json::Value> = lines
            .iter()
            .filter(|v| {
                v["message"]["content"]
                    .as_str()
                    .is_some_and(|c| c.starts_with("tok"))
            })
            .collect();
        assert_eq!(tokens.len(), n, "{ndjson}");
        assert_eq!(lines.last().unwrap()["done"], true, "{ndjson}");
    }
}
