//! The doctor's diagnosis of base URLs with the wrong path, bare Ollama names behind its
//! OpenAI layer, and a local server asking for a key.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use switchyard_core::Locality;
use switchyard_doctor::{DoctorOptions, Finding, GatewayFacts, ProbeApi, ProviderProbe, Report};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_testkit::{Fault, ModelSpec, TestUpstream, UpstreamConfig};

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
