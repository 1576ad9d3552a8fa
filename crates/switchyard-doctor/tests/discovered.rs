//! A provider without a configured model (`discover: true`, no `models`, no route to it):
//! the doctor probes one chat model the server lists, says which and why, and says plainly
//! when the catalog has none. Scripted upstreams on loopback (switchyard-testkit).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use serde_json::json;
use switchyard_core::Locality;
use switchyard_doctor::{
    Check, DoctorOptions, GatewayFacts, ProbeApi, ProviderProbe, Report, Rung, Status, TextRecovery,
};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_testkit::{ModelSpec, Script, ScriptedCall, TestUpstream, UpstreamConfig};

fn options() -> DoctorOptions {
    DoctorOptions {
        dns_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        generation_timeout: Duration::from_secs(3),
        generate: true,
    }
}

/// An Ollama provider as the binary describes one with `discover: true` and nothing
/// configured: no models, no routes.
fn discovering(base_url: String) -> ProviderProbe {
    ProviderProbe {
        id: "local".into(),
        api: ProbeApi::Ollama,
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
        models: vec![],
        tool_models: vec![],
        first_token_timeout: Duration::from_secs(2),
        routes: vec![],
        text_tool_recovery: TextRecovery::Off,
        max_tokens_field: None,
        num_ctx: None,
    }
}

async fn doctor_with(options: DoctorOptions, probe: ProviderProbe) -> (Report, Vec<String>) {
    let facts = GatewayFacts {
        version: "0.1.0".into(),
        build_id: "test".into(),
        ..GatewayFacts::default()
    };
    let mut lines = Vec::new();
    let mut progress = |l: &str| lines.push(l.to_owned());
    let run = switchyard_doctor::run_with(options, facts, vec![probe], &mut progress);
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the doctor finished");
    (report, lines)
}

async fn doctor(probe: ProviderProbe) -> Report {
    doctor_with(options(), probe).await.0
}

fn checks(report: &Report) -> &[Check] {
    &report.providers[0].checks
}

/// The first check with this code, or a panic showing the table.
fn find<'a>(report: &'a Report, code: &str) -> &'a Check {
    checks(report)
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no `{code}` in\n{}", report.to_table()))
}

fn has(report: &Report, code: &str) -> bool {
    checks(report).iter().any(|c| c.code == code)
}

/// The models named by the chat requests the upstream saw (`/api/chat`, `/v1/chat/...`),
/// and those of the requests that offered tools. The paths rung's empty bodies name none.
fn asked(upstream: &TestUpstream) -> (Vec<String>, Vec<String>) {
    let mut all = Vec::new();
    let mut with_tools = Vec::new();
    for request in upstream.chat_requests() {
        let Some(body) = request.body_json() else {
            continue;
        };
        let Some(model) = body.get("model").and_then(|m| m.as_str()) else {
            continue;
        };
        all.push(model.to_owned());
        if body.get("tools").is_some() {
            with_tools.push(model.to_owned());
        }
    }
    (all, with_tools)
}

fn tool_script() -> Script {
    Script::tool_calls(vec![ScriptedCall::new(
        "get_current_time",
        json!({"timezone": "UTC"}),
    )])
}

fn embedding(name: &str) -> ModelSpec {
    ModelSpec::embedding(name)
}

/// (1) Discovery alone on an Ollama that lists an embedding model first and a chat model:
/// the chat model is generated from, streamed from and offered the tool; the report names
/// it and says it came from the catalog, passing over the embedding model.
#[tokio::test]
async fn a_discovering_ollama_gets_its_chat_model_probed() {
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model(embedding("nomic-embed-text:latest"))
            .model_with_script("qwen2.5:7b", tool_script()),
    )
    .await
    .unwrap();
    let (report, lines) = doctor_with(options(), discovering(upstream.base_url())).await;
    let table = report.to_table();

    let (all, with_tools) = asked(&upstream);
    assert!(!all.is_empty(), "no generation at all:\n{table}");
    assert!(all.iter().all(|m| m == "qwen2.5:7b"), "{all:?}");
    assert_eq!(with_tools, vec!["qwen2.5:7b"], "{table}");
    let generate_paths: Vec<String> = upstream
        .chat_requests()
        .iter()
        .filter(|r| r.body_json().is_some_and(|b| b.get("model").is_some()))
        .map(|r| r.path.clone())
        .collect();
    assert!(
        generate_paths.iter().all(|p| p == "/api/chat"),
        "{generate_paths:?}"
    );

    let pick = find(&report, "model_from_catalog");
    assert_eq!((pick.rung, pick.status), (Rung::Catalog, Status::Ok));
    assert!(
        pick.summary
            .starts_with("no model configured; probing `qwen2.5:7b` from the server's catalog"),
        "{}",
        pick.summary
    );
    assert!(
        pick.summary
            .contains("the first chat model it lists with the `tools` capability"),
        "{}",
        pick.summary
    );
    assert!(
        pick.summary
            .contains("passed over nomic-embed-text:latest (embeddings only)"),
        "{}",
        pick.summary
    );
    assert!(pick.hint.is_none(), "a note carries no fix");
    assert_eq!(pick.measurements.get("context_window"), Some(&8192));
    assert!(table.contains("probing `qwen2.5:7b`"), "{table}");
    for rung in [Rung::Generate, Rung::Stream, Rung::Tools] {
        assert!(
            checks(&report).iter().any(|c| c.rung == rung
                && c.status == Status::Ok
                && c.subject.as_deref() == Some("qwen2.5:7b")),
            "{rung:?} on qwen2.5:7b:\n{table}"
        );
    }
    assert!(!table.contains("skipped"), "{table}");
    assert_eq!(report.exit_code(), 0, "{table}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("qwen2.5:7b, picked from the server's catalog")),
        "{lines:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    let codes: Vec<&str> = json["providers"][0]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["code"].as_str())
        .collect();
    assert!(codes.contains(&"model_from_catalog"), "{codes:?}");
    upstream.shutdown().await;
}

/// (2) With capabilities: the model with `tools` is picked over a chat model listed before
/// it, and it is the only model probed (one per provider). Without any tool-capable model
/// the first chat model is probed for generation, no tools are sent to it, and the tool
/// rung says so with what to pull.
#[tokio::test]
async fn the_tool_rung_gets_the_tools_capable_model() {
    let plain = ModelSpec::new("gemma2:2b").capabilities(["completion"]);
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model(embedding("nomic-embed-text:latest"))
            .model(plain.clone())
            .model_with_script("qwen2.5:7b", tool_script())
            .model_with_script("llama3.1:8b", tool_script()),
    )
    .await
    .unwrap();
    let report = doctor(discovering(upstream.base_url())).await;
    let table = report.to_table();
    let (all, with_tools) = asked(&upstream);
    assert!(all.iter().all(|m| m == "qwen2.5:7b"), "{all:?}\n{table}");
    assert_eq!(with_tools, vec!["qwen2.5:7b"], "{table}");
    let pick = find(&report, "model_from_catalog");
    assert!(
        pick.summary.contains("`qwen2.5:7b`")
            && pick.summary.contains("with the `tools` capability"),
        "{}",
        pick.summary
    );
    let tools = checks(&report)
        .iter()
        .find(|c| c.rung == Rung::Tools)
        .unwrap();
    assert_eq!(
        (tools.status, tools.subject.as_deref()),
        (Status::Ok, Some("qwen2.5:7b")),
        "{table}"
    );
    assert_eq!(report.exit_code(), 0, "{table}");
    upstream.shutdown().await;

    // No chat model with `tools`: the first chat model is generated from, not offered tools.
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model(embedding("nomic-embed-text:latest"))
            .model(plain)
            .model(ModelSpec::new("phi3:mini").capabilities(["completion"])),
    )
    .await
    .unwrap();
    let report = doctor(discovering(upstream.base_url())).await;
    let table = report.to_table();
    let (all, with_tools) = asked(&upstream);
    assert!(!all.is_empty(), "{table}");
    assert!(all.iter().all(|m| m == "gemma2:2b"), "{all:?}");
    assert!(with_tools.is_empty(), "tools sent to a model without them");
    let pick = find(&report, "model_from_catalog");
    assert!(
        pick.summary.contains("`gemma2:2b`")
            && pick.summary.contains(
                "the first chat model it lists (none of the chat models looked at has the \
                 `tools` capability)"
            ),
        "{}",
        pick.summary
    );
    let warn = find(&report, "no_tool_model_in_catalog");
    assert_eq!((warn.rung, warn.status), (Rung::Tools, Status::Warn));
    assert_eq!(
        warn.summary,
        "no model configured, and none of its 2 chat models has the `tools` capability: \
         requests that offer tools cannot be served by this provider, and no tool round trip is \
         tried"
    );
    let hint = warn.hint.as_deref().unwrap();
    assert!(
        hint.contains(&format!(
            "OLLAMA_HOST={} ollama pull qwen2.5:7b",
            upstream.base_url()
        )),
        "{hint}"
    );
    assert!(hint.contains("providers.local.models"), "{hint}");
    assert!(
        !has(&report, "no_tools_capability") && !has(&report, "no_tool_call"),
        "{table}"
    );
    assert_eq!(report.providers[0].stopped_at, None, "{table}");
    assert_eq!(report.exit_code(), 1, "{table}");

    // Without the generation rungs nothing is probed, so nothing is said to be; the tool
    // rung still says what the catalog lacks.
    upstream.clear_requests();
    let no_generation = DoctorOptions {
        generate: false,
        ..options()
    };
    let (report, _) = doctor_with(no_generation, discovering(upstream.base_url())).await;
    let table = report.to_table();
    assert!(!has(&report, "model_from_catalog"), "{table}");
    assert_eq!(find(&report, "no_tool_model_in_catalog").rung, Rung::Tools);
    assert!(asked(&upstream).0.is_empty(), "{table}");
    upstream.shutdown().await;
}

/// Behind Ollama's `/v1` layer (an OpenAI-kind provider), capabilities come from the native
/// `/api/show` and the pick is the same; the generation goes through `/v1`.
#[tokio::test]
async fn ollamas_v1_layer_picks_by_the_native_capabilities() {
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model(embedding("nomic-embed-text:latest"))
            .model(ModelSpec::new("gemma2:2b").capabilities(["completion"]))
            .model_with_script("qwen2.5:7b", tool_script()),
    )
    .await
    .unwrap();
    let probe = ProviderProbe {
        api: ProbeApi::OpenAi,
        ..discovering(upstream.openai_base_url())
    };
    let report = doctor(probe).await;
    let table = report.to_table();
    assert!(
        find(&report, "model_from_catalog")
            .summary
            .contains("probing `qwen2.5:7b`"),
        "{table}"
    );
    let (all, with_tools) = asked(&upstream);
    assert!(all.iter().all(|m| m == "qwen2.5:7b"), "{all:?}");
    assert_eq!(with_tools, vec!["qwen2.5:7b"]);
    assert!(
        upstream
            .chat_requests()
            .iter()
            .filter(|r| r.body_json().is_some_and(|b| b.get("model").is_some()))
            .all(|r| r.path == "/v1/chat/completions"),
        "{table}"
    );
    assert_eq!(report.exit_code(), 0, "{table}");
    upstream.shutdown().await;
}

/// (3) A catalog of embedding models only: no generation, and a plain finding with what to
/// do (pull a chat model, or configure `models`).
#[tokio::test]
async fn a_catalog_without_a_chat_model_is_said_plainly() {
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model(embedding("nomic-embed-text:latest"))
            .model(embedding("mxbai-embed-large:latest")),
    )
    .await
    .unwrap();
    let report = doctor(discovering(upstream.base_url())).await;
    let table = report.to_table();
    let check = find(&report, "no_chat_model_in_catalog");
    assert_eq!((check.rung, check.status), (Rung::Catalog, Status::Warn));
    assert_eq!(
        check.summary,
        "no model configured, and the server lists no chat model to probe: \
         nomic-embed-text:latest, mxbai-embed-large:latest are embeddings only"
    );
    let hint = check.hint.as_deref().unwrap();
    assert!(
        hint.contains(&format!(
            "OLLAMA_HOST={} ollama pull qwen2.5:7b",
            upstream.base_url()
        )),
        "{hint}"
    );
    assert!(hint.contains("providers.local.models"), "{hint}");
    assert!(!has(&report, "model_from_catalog"), "{table}");
    let generate = checks(&report)
        .iter()
        .find(|c| c.rung == Rung::Generate)
        .unwrap();
    assert_eq!(generate.code, "skipped", "{table}");
    assert!(
        generate.summary.contains("no chat model on the server"),
        "{table}"
    );
    assert!(asked(&upstream).0.is_empty(), "nothing generated:\n{table}");
    assert_eq!(report.providers[0].stopped_at, None, "{table}");
    assert_eq!(report.exit_code(), 1, "{table}");
    upstream.shutdown().await;
}

/// Ollama's cloud models are passed over: the probe's prompt would leave the host.
#[tokio::test]
async fn ollama_cloud_models_are_not_probed() {
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-oss:120b-cloud", tool_script())
            .model(ModelSpec::new("kimi").remote("https://ollama.com:443"))
            .model_with_script("qwen2.5:7b", tool_script()),
    )
    .await
    .unwrap();
    let report = doctor(discovering(upstream.base_url())).await;
    let table = report.to_table();
    let pick = find(&report, "model_from_catalog");
    assert!(
        pick.summary.contains("probing `qwen2.5:7b`")
            && pick
                .summary
                .contains("passed over gpt-oss:120b-cloud, kimi (runs in Ollama's cloud)"),
        "{table}"
    );
    let (all, _) = asked(&upstream);
    assert!(all.iter().all(|m| m == "qwen2.5:7b"), "{all:?}");
    upstream.shutdown().await;

    let upstream = TestUpstream::start(
        UpstreamConfig::empty().model_with_script("gpt-oss:120b-cloud", tool_script()),
    )
    .await
    .unwrap();
    let report = doctor(discovering(upstream.base_url())).await;
    let check = find(&report, "no_chat_model_in_catalog");
    assert!(
        check
            .summary
            .contains("gpt-oss:120b-cloud runs in Ollama's cloud"),
        "{}",
        check.summary
    );
    assert!(asked(&upstream).0.is_empty());
    upstream.shutdown().await;
}

/// A hosted API's catalog is not picked from (it lists models that cannot chat, and every
/// probe is billed): the generation rungs say why they were skipped.
#[tokio::test]
async fn a_hosted_api_without_a_configured_model_is_not_probed() {
    let upstream = TestUpstream::start(UpstreamConfig::default().api_key("sk-right-key"))
        .await
        .unwrap();
    let mut probe = ProviderProbe {
        id: "cloud".into(),
        api: ProbeApi::OpenAi,
        locality: Locality::Cloud,
        ..discovering(upstream.openai_base_url())
    };
    probe.client.bearer_token = Some("sk-right-key".into());
    let report = doctor(probe).await;
    let table = report.to_table();
    assert!(!has(&report, "model_from_catalog"), "{table}");
    let generate = checks(&report)
        .iter()
        .find(|c| c.rung == Rung::Generate)
        .unwrap();
    assert_eq!(generate.code, "skipped");
    assert!(generate.summary.contains("hosted API's catalog"), "{table}");
    assert!(asked(&upstream).0.is_empty(), "{table}");
    upstream.shutdown().await;
}

/// (4) A configured model is probed as before: nothing is picked from the catalog, even
/// when the server lists a tool-capable model the configured one is not.
#[tokio::test]
async fn a_configured_model_is_probed_as_before() {
    let upstream = TestUpstream::start(
        UpstreamConfig::default()
            .model(embedding("nomic-embed-text:latest"))
            .model_with_script("qwen2.5:7b", tool_script()),
    )
    .await
    .unwrap();
    let mut probe = discovering(upstream.base_url());
    probe.models = vec!["test-model".into()];
    let report = doctor(probe).await;
    let table = report.to_table();
    assert_eq!(report.exit_code(), 0, "{table}");
    for code in [
        "model_from_catalog",
        "no_chat_model_in_catalog",
        "no_tool_model_in_catalog",
    ] {
        assert!(!has(&report, code), "{code}:\n{table}");
    }
    let (all, with_tools) = asked(&upstream);
    assert!(!all.is_empty());
    assert!(all.iter().all(|m| m == "test-model"), "{all:?}");
    assert!(with_tools.is_empty(), "{with_tools:?}");
    let tools = checks(&report)
        .iter()
        .find(|c| c.rung == Rung::Tools)
        .unwrap();
    assert_eq!(
        (tools.code.as_str(), tools.summary.as_str()),
        ("skipped", "skipped: no model configured for tools"),
        "{table}"
    );

    // Only an embedding model routed here: still no chat probe, as before.
    let mut probe = discovering(upstream.base_url());
    probe.models = vec!["nomic-embed-text".into()];
    probe.tool_models = vec!["nomic-embed-text".into()];
    probe.routes = vec![("embed".into(), vec!["nomic-embed-text".into()])];
    upstream.clear_requests();
    let report = doctor(probe).await;
    let table = report.to_table();
    assert!(!has(&report, "model_from_catalog"), "{table}");
    assert!(asked(&upstream).0.is_empty(), "{table}");
    assert!(
        table.contains("skipped: only embedding models are routed here"),
        "{table}"
    );
    upstream.shutdown().await;
}
