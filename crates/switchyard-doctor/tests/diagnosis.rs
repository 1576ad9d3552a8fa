//! The doctor's diagnosis of base URLs with the wrong path (an endpoint path included),
//! bare Ollama names behind its OpenAI layer, a local server asking for a key (never shown
//! in the report), an empty catalog, and ports that do not speak HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use switchyard_core::Locality;
use switchyard_doctor::TextRecovery;
use switchyard_doctor::{DoctorOptions, Finding, GatewayFacts, ProbeApi, ProviderProbe, Report};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_testkit::{Fault, ModelSpec, TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn options() -> DoctorOptions {
    DoctorOptions {
        dns_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        generation_timeout: Duration::from_secs(3),
        generate: true,
    }
}

fn probe(api: ProbeApi, base_url: String, models: &[&str]) -> ProviderProbe {
    ProviderProbe {
        id: "local".into(),
        api,
        base_url,
        locality: Locality::Local,
        locality_inferred: false,
        client: ClientConfig {
            timeouts: Timeouts {
                connect: Duration::from_millis(500),
                first_token: Duration::from_secs(2),
                idle: Duration::from_secs(2),
                total: None,
            },
            ..ClientConfig::default()
        },
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        tool_models: vec![],
        first_token_timeout: Duration::from_secs(2),
        routes: vec![],
        text_tool_recovery: TextRecovery::Off,
        max_tokens_field: None,
        num_ctx: None,
    }
}

async fn doctor(probe: ProviderProbe) -> Report {
    let facts = GatewayFacts {
        version: "0.1.0".into(),
        build_id: "t".into(),
        ..GatewayFacts::default()
    };
    let mut progress = |_: &str| {};
    let run = switchyard_doctor::run_with(options(), facts, vec![probe], &mut progress);
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the doctor finished")
}

/// Ollama base_url with a trailing /api: the fix is the base URL without /api.
#[tokio::test]
async fn ollama_base_url_ending_in_api() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(probe(
        ProbeApi::Ollama,
        format!("{}/api", up.base_url()),
        &["test-model"],
    ))
    .await;
    let table = report.to_table();
    let fail = report.providers[0]
        .checks
        .iter()
        .find(|c| c.code != "ok" && c.hint.is_some())
        .expect("a finding");
    assert_ne!(
        fail.code, "not_the_api",
        "Ollama itself answered; the path is wrong:\n{table}"
    );
    assert!(
        fail.hint
            .as_deref()
            .unwrap()
            .contains(&format!("set base_url to {}", up.base_url())),
        "{table}"
    );
    up.shutdown().await;
}

/// OpenAI-compatible provider pointed at Ollama's native /api: the hint must not say "append /v1 to .../api".
#[tokio::test]
async fn openai_provider_base_url_ending_in_api() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(probe(
        ProbeApi::OpenAi,
        format!("{}/api", up.base_url()),
        &["test-model"],
    ))
    .await;
    let table = report.to_table();
    let wrong = format!("use {}/api/v1", up.base_url());
    assert!(
        !table.contains(&wrong),
        "the doctor suggests a URL that does not exist:\n{table}"
    );
    let right = format!("use {}/v1", up.base_url());
    assert!(table.contains(&right), "{table}");
    up.shutdown().await;
}

/// Ollama's /v1 layer as an OpenAI provider with a bare model name: Ollama resolves
/// `qwen2.5` to `qwen2.5:latest` (the doctor's own Ollama check says so too).
#[tokio::test]
async fn ollama_v1_bare_name_is_not_missing() {
    let up = TestUpstream::start(UpstreamConfig::empty().model(ModelSpec::new("qwen2.5:latest")))
        .await
        .unwrap();
    let native = doctor(probe(ProbeApi::Ollama, up.base_url(), &["qwen2.5"])).await;
    assert!(
        !native.providers[0]
            .checks
            .iter()
            .any(|c| c.code == "model_missing"),
        "{}",
        native.to_table()
    );
    let report = doctor(probe(ProbeApi::OpenAi, up.openai_base_url(), &["qwen2.5"])).await;
    let table = report.to_table();
    assert!(
        !report.providers[0]
            .checks
            .iter()
            .any(|c| c.code == "model_missing"),
        "{table}"
    );
    up.shutdown().await;
}

/// A local Ollama behind an authenticating proxy answering 401, no key configured.
#[tokio::test]
async fn local_ollama_401_without_key() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::Unauthorized));
    let report = doctor(probe(ProbeApi::Ollama, up.base_url(), &["test-model"])).await;
    let table = report.to_table();
    assert!(
        !table.contains("cloud provider"),
        "a local provider is called a cloud one:\n{table}"
    );
    up.shutdown().await;
}

#[test]
fn tool_result_summary_has_no_run_of_spaces() {
    let f = Finding::ToolResultUnanswered {
        model: "m".into(),
        finish: Some("end_turn".into()),
    };
    let s = f.summary();
    assert!(!s.contains("   "), "{s:?}");
}

/// A bounded raw HTTP/1.1 server on 127.0.0.1 answering every request with `response`
/// (at most 64 connections), then closing the connection.
async fn raw_server(response: String) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let response = response.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                for _ in 0..16 {
                    match sock.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                    if got.windows(4).any(|w| w == b"\r\n\r\n") {
                        break;
                    }
                }
                let _ = sock.write_all(response.as_bytes()).await;
                let _ = sock.shutdown().await;
            });
        }
    });
    format!("http://{addr}")
}

/// The base URL pasted with the endpoint's path (`.../v1/chat/completions`), a common
/// mistake. The OpenAI client's base URL is the API root `https://api.openai.com/v1` and
/// the client appends `/chat/completions` and `/models` itself (openai-python
/// `_client.py`: `base_url = "https://api.openai.com/v1"`); the doctor's own hint for
/// `missing_v1` says "OpenAI-compatible base URLs end in /v1". The fix must therefore be
/// `{root}/v1`, not `{root}/v1/chat/completions/v1` (a URL that does not exist).
#[tokio::test]
async fn openai_base_url_with_the_endpoint_path_gets_the_root_v1_fix() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(probe(
        ProbeApi::OpenAi,
        format!("{}/chat/completions", up.openai_base_url()),
        &["test-model"],
    ))
    .await;
    let table = report.to_table();
    let wrong = format!("{}/chat/completions/v1", up.openai_base_url());
    let hints: Vec<&str> = report.providers[0]
        .checks
        .iter()
        .filter_map(|c| c.hint.as_deref())
        .collect();
    assert!(!hints.is_empty(), "{table}");
    assert!(
        !hints.iter().any(|h| h.contains(&wrong)),
        "the doctor suggests a URL that does not exist:\n{table}"
    );
    up.shutdown().await;
}

/// An Ollama that answers but lists no models while the config routes to `qwen2.5:7b`.
/// The finding must give one concrete fix (finding.rs: "one sentence saying what was found
/// and one concrete fix"; lib.rs: "says how to fix it"): the pull command with the
/// configured model's name, as `model_missing` does (`ollama pull {model}`), not a
/// placeholder `MODEL` the user has to guess.
#[tokio::test]
async fn empty_ollama_catalog_names_the_configured_model_to_pull() {
    let up = TestUpstream::start(UpstreamConfig::empty()).await.unwrap();
    let report = doctor(probe(ProbeApi::Ollama, up.base_url(), &["qwen2.5:7b"])).await;
    let table = report.to_table();
    let check = report.providers[0]
        .checks
        .iter()
        .find(|c| c.code == "catalog_empty")
        .unwrap_or_else(|| panic!("no catalog_empty in\n{table}"));
    let hint = check.hint.as_deref().unwrap_or("");
    assert!(
        hint.contains("ollama pull qwen2.5:7b"),
        "the hint does not name the configured model:\n{table}"
    );
    up.shutdown().await;
}

/// A local OpenAI-compatible server refuses the configured key with 401 and echoes it.
/// The report is meant "for attaching to a ticket" (report.rs `to_json`), and the project
/// keeps the token out of what it prints (switchyard-http `ClientConfig`: "Its `Debug`
/// output redacts the token"; `normalize_base_url` refuses login details "as they would
/// show in logs and error messages"). The doctor knows the key it sent, so it must not
/// copy it into the report from the upstream's error text.
#[tokio::test]
async fn report_never_carries_the_api_key() {
    let key = "sk-review-doctor-SECRET-0123456789";
    let body = format!(
        r#"{{"error":{{"message":"Incorrect API key provided: {key}","type":"invalid_request_error","code":"invalid_api_key"}}}}"#
    );
    let resp = format!(
        "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let base = raw_server(resp).await;
    let mut p = probe(ProbeApi::OpenAi, format!("{base}/v1"), &["m"]);
    p.client.bearer_token = Some(key.to_owned());
    let report = doctor(p).await;
    let table = report.to_table();
    assert!(
        report.providers[0]
            .checks
            .iter()
            .any(|c| c.code == "key_rejected"),
        "{table}"
    );
    assert!(!table.contains(key), "the key is in the table:\n{table}");
    assert!(!report.to_json().contains(key), "the key is in the JSON");
}

/// A port that speaks something else than HTTP (an SSH banner; or nothing: it accepts and
/// closes, as a port forward with nothing behind it does). Rung 3 "recognises plain HTTP
/// spoken to a TLS port and the reverse by the bytes that come back" (lib.rs); tls.rs
/// itself classifies these answers as `PlainAnswer::Other` and `PlainAnswer::Closed`.
/// Neither is plain HTTP, so the report must not say the port speaks it.
#[tokio::test]
async fn a_port_that_does_not_speak_http_is_not_called_plain_http() {
    for banner in ["SSH-2.0-OpenSSH_9.6p1 Ubuntu-3ubuntu13\r\n", ""] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            for _ in 0..32 {
                if let Ok((mut s, _)) = listener.accept().await {
                    let _ = s.write_all(banner.as_bytes()).await;
                    drop(s);
                }
            }
        });
        let report = doctor(probe(ProbeApi::Ollama, format!("http://{addr}"), &["m"])).await;
        let table = report.to_table();
        assert_eq!(report.exit_code(), 2, "{table}");
        assert!(
            !report.providers[0]
                .checks
                .iter()
                .any(|c| c.summary.contains("speaks plain HTTP")),
            "banner {banner:?}: the port is said to speak plain HTTP:\n{table}"
        );
    }
}
