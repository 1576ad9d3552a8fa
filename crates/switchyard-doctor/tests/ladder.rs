//! The ladder against scripted upstreams on loopback (switchyard-testkit).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::time::Duration;

use serde_json::json;
use switchyard_core::Locality;
use switchyard_doctor::TextRecovery;
use switchyard_doctor::{
    DoctorOptions, GatewayFacts, ProbeApi, ProviderProbe, ProviderSection, Report, Rung, Status,
};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_testkit::{
    BlackHole, Delays, Fault, ModelSpec, Script, ScriptedCall, TestUpstream, TextCallFormat,
    UpstreamConfig, refused_addr,
};

fn options() -> DoctorOptions {
    DoctorOptions {
        dns_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        generation_timeout: Duration::from_secs(3),
        generate: true,
    }
}

fn client() -> ClientConfig {
    ClientConfig {
        timeouts: Timeouts {
            connect: Duration::from_millis(500),
            first_token: Duration::from_secs(2),
            idle: Duration::from_secs(2),
            total: None,
        },
        ..ClientConfig::default()
    }
}

fn ollama(base_url: String, models: &[&str], tool_models: &[&str]) -> ProviderProbe {
    ProviderProbe {
        id: "local".into(),
        api: ProbeApi::Ollama,
        base_url,
        locality: Locality::Local,
        locality_inferred: false,
        client: client(),
        models: models.iter().map(|m| (*m).to_owned()).collect(),
        tool_models: tool_models.iter().map(|m| (*m).to_owned()).collect(),
        first_token_timeout: Duration::from_secs(2),
        routes: vec![],
        text_tool_recovery: TextRecovery::Off,
        max_tokens_field: None,
        num_ctx: None,
    }
}

fn cloud(base_url: String, key: &str, models: &[&str]) -> ProviderProbe {
    let mut client = client();
    client.bearer_token = Some(key.to_owned());
    ProviderProbe {
        id: "cloud".into(),
        api: ProbeApi::OpenAi,
        locality: Locality::Cloud,
        client,
        ..ollama(base_url, models, &[])
    }
}

fn facts() -> GatewayFacts {
    GatewayFacts {
        version: "0.1.0".into(),
        build_id: "test".into(),
        ..GatewayFacts::default()
    }
}

async fn doctor(probe: ProviderProbe) -> Report {
    let mut progress = |_: &str| {};
    let run = switchyard_doctor::run_with(options(), facts(), vec![probe], &mut progress);
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the doctor finished")
}

fn section(report: &Report) -> &ProviderSection {
    &report.providers[0]
}

/// The first check with this code, or a panic showing the table.
fn find<'a>(report: &'a Report, code: &str) -> &'a switchyard_doctor::Check {
    section(report)
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no `{code}` in\n{}", report.to_table()))
}

fn tool_script() -> Script {
    Script::tool_calls(vec![ScriptedCall::new(
        "get_current_time",
        json!({"timezone": "UTC"}),
    )])
}

#[tokio::test]
async fn a_healthy_ollama_passes_every_rung() {
    let upstream = TestUpstream::start(
        UpstreamConfig::default().model_with_script("tool-model", tool_script()),
    )
    .await
    .unwrap();
    let mut lines = Vec::new();
    let probe = ollama(upstream.base_url(), &["test-model"], &["tool-model"]);
    let report = switchyard_doctor::run_with(options(), facts(), vec![probe], &mut |l| {
        lines.push(l.to_owned())
    })
    .await;
    let table = report.to_table();
    assert_eq!(report.exit_code(), 0, "{table}");
    let s = section(&report);
    assert_eq!(s.stopped_at, None);
    for rung in [
        Rung::Dns,
        Rung::Tcp,
        Rung::Tls,
        Rung::Http,
        Rung::Catalog,
        Rung::Paths,
        Rung::Generate,
        Rung::Stream,
        Rung::Tools,
    ] {
        assert!(
            s.checks.iter().any(|c| c.rung == rung),
            "{rung:?} missing:\n{table}"
        );
    }
    assert!(table.contains("Ollama 0.12.6"), "{table}");
    assert!(
        table.contains("a structured call of get_current_time"),
        "{table}"
    );
    let catalog = s
        .checks
        .iter()
        .find(|c| c.subject.as_deref() == Some("tool-model"))
        .unwrap();
    assert_eq!(catalog.measurements.get("context_window"), Some(&8192));
    let stream = s.checks.iter().find(|c| c.rung == Rung::Stream).unwrap();
    assert!(stream.measurements.contains_key("ttft_ms"));
    assert!(
        lines.iter().any(|l| l.contains("rung 7 generate")),
        "{lines:?}"
    );
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["summary"]["exit_code"], 0);
    assert_eq!(json["providers"][0]["id"], "local");
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_refused_port_stops_at_tcp() {
    let report = doctor(ollama(format!("http://{}", refused_addr()), &["m"], &[])).await;
    let s = section(&report);
    assert_eq!(s.stopped_at, Some(Rung::Tcp), "{}", report.to_table());
    let check = find(&report, "connect_refused");
    assert_eq!(check.status, Status::Fail);
    assert!(check.hint.as_deref().unwrap().contains("ollama serve"));
    assert_eq!(report.exit_code(), 2);
    assert!(report.to_table().contains("✗"));
    assert!(
        !s.checks.iter().any(|c| c.rung == Rung::Http),
        "the ladder went on"
    );
}

#[tokio::test]
async fn a_black_holed_port_is_named_at_http() {
    let hole = BlackHole::start().await.unwrap();
    let report = doctor(ollama(hole.base_url(), &["m"], &[])).await;
    let s = section(&report);
    assert_eq!(s.stopped_at, Some(Rung::Http), "{}", report.to_table());
    assert_eq!(find(&report, "no_http_answer").status, Status::Fail);
    assert!(
        s.checks
            .iter()
            .any(|c| c.rung == Rung::Tcp && c.status == Status::Ok)
    );
}

#[tokio::test]
async fn an_empty_catalog_is_explained() {
    let upstream = TestUpstream::start(UpstreamConfig::empty()).await.unwrap();
    let report = doctor(ollama(upstream.base_url(), &["qwen2.5:7b"], &[])).await;
    assert_eq!(section(&report).stopped_at, Some(Rung::Catalog));
    let check = find(&report, "catalog_empty");
    assert_eq!(check.status, Status::Fail);
    let hint = check.hint.as_deref().unwrap();
    assert!(
        hint.contains("OLLAMA_MODELS") && hint.contains("container"),
        "{hint}"
    );
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_missing_model_is_named_with_what_the_server_has() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(ollama(upstream.base_url(), &["qwen2.5:7b"], &[])).await;
    let check = find(&report, "model_missing");
    assert_eq!(check.subject.as_deref(), Some("qwen2.5:7b"));
    assert!(check.summary.contains("test-model"), "{}", check.summary);
    assert!(
        check
            .hint
            .as_deref()
            .unwrap()
            .contains("ollama pull qwen2.5:7b")
    );
    assert_eq!(section(&report).stopped_at, Some(Rung::Catalog));
    assert!(
        upstream.chat_requests().is_empty(),
        "no generation after a failed rung"
    );
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_tool_model_without_the_tools_capability_is_flagged() {
    let small = ModelSpec::new("small:1b").capabilities(["completion"]);
    let upstream = TestUpstream::start(UpstreamConfig::default().model(small))
        .await
        .unwrap();
    let report = doctor(ollama(upstream.base_url(), &["test-model"], &["small:1b"])).await;
    let check = find(&report, "no_tools_capability");
    assert_eq!(check.status, Status::Fail);
    assert_eq!(check.subject.as_deref(), Some("small:1b"));
    assert_eq!(report.exit_code(), 2);
    upstream.shutdown().await;
}

/// Issue 18: the tool rung names a tool model whose `/api/show` lacks `tools`, with what to
/// change, after the chat rungs ran (it still serves requests without tools), and still
/// runs the round trip with a tool-capable model.
#[tokio::test]
async fn the_tool_rung_names_a_model_without_tools_and_what_to_change() {
    let small = ModelSpec::new("small:1b").capabilities(["completion"]);
    let upstream = TestUpstream::start(
        UpstreamConfig::default()
            .model(small)
            .model_with_script("tool-model", tool_script()),
    )
    .await
    .unwrap();
    let probe = ollama(
        upstream.base_url(),
        &["small:1b", "test-model"],
        &["small:1b", "tool-model"],
    );
    let report = doctor(probe).await;
    let check = find(&report, "no_tools_capability");
    assert_eq!(check.rung, Rung::Tools, "{}", report.to_table());
    assert_eq!(check.status, Status::Fail);
    assert_eq!(check.subject.as_deref(), Some("small:1b"));
    let hint = check.hint.as_deref().unwrap();
    for needed in [
        "small:1b",
        "model_lacks_tools",
        "text_tool_recovery",
        "rules",
        "tools: [\"*\"]",
    ] {
        assert!(hint.contains(needed), "`{needed}` in {hint}");
    }
    // The chat rungs ran on the tool-less model, and the round trip on the tool model.
    assert!(
        section(&report)
            .checks
            .iter()
            .any(|c| c.rung == Rung::Stream && c.status == Status::Ok),
        "{}",
        report.to_table()
    );
    assert!(
        section(&report).checks.iter().any(|c| c.rung == Rung::Tools
            && c.status == Status::Ok
            && c.subject.as_deref() == Some("tool-model")),
        "{}",
        report.to_table()
    );
    assert_eq!(section(&report).stopped_at, Some(Rung::Tools));
    assert_eq!(report.exit_code(), 2);
    let asked_for_tools = upstream
        .chat_requests()
        .iter()
        .filter(|r| {
            let body = r.body_json().unwrap();
            body["model"] == "small:1b" && body.get("tools").is_some()
        })
        .count();
    assert_eq!(asked_for_tools, 0, "reported before anyone sent it tools");

    // Without generation the tool rung still reports it.
    let probe = ollama(upstream.base_url(), &["test-model"], &["small:1b"]);
    let mut progress = |_: &str| {};
    let no_generation = DoctorOptions {
        generate: false,
        ..options()
    };
    let run = switchyard_doctor::run_with(no_generation, facts(), vec![probe], &mut progress);
    let report = tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .unwrap();
    assert_eq!(find(&report, "no_tools_capability").rung, Rung::Tools);
    assert_eq!(report.exit_code(), 2);
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_tool_call_written_as_text_warns_with_a_hint() {
    let calls = vec![ScriptedCall::new(
        "get_current_time",
        json!({"timezone": "UTC"}),
    )];
    let upstream = TestUpstream::start(UpstreamConfig::default().model_with_script(
        "hermes",
        Script::tool_calls_as_text(TextCallFormat::Hermes, calls),
    ))
    .await
    .unwrap();
    let report = doctor(ollama(upstream.base_url(), &["test-model"], &["hermes"])).await;
    let check = find(&report, "tool_call_as_text");
    assert_eq!((check.rung, check.status), (Rung::Tools, Status::Warn));
    // The config's key is `text_tool_recovery`; off for this provider: say how to turn it on.
    let hint = check.hint.as_deref().unwrap();
    assert!(hint.contains("set text_tool_recovery: true"), "{hint}");
    assert_eq!(report.exit_code(), 1, "{}", report.to_table());

    // On, as by default for Ollama: the gateway recovers these calls.
    let mut probe = ollama(upstream.base_url(), &["test-model"], &["hermes"]);
    probe.text_tool_recovery = TextRecovery::On;
    let report = doctor(probe).await;
    let hint = find(&report, "tool_call_as_text").hint.clone().unwrap();
    assert!(
        hint.starts_with("the gateway recovers these calls"),
        "{hint}"
    );
    assert!(!hint.contains("set text_tool_recovery"), "{hint}");
    upstream.shutdown().await;
}

/// A thinking model that spends the probe's output limit reasoning is not called a model
/// without tools.
#[tokio::test]
async fn a_thinking_model_out_of_tokens_is_not_called_toolless() {
    let thinker = Script::thinking_then_text(["The user wants the time. ", "I should"], [""])
        .with_finish_reason("length");
    let upstream =
        TestUpstream::start(UpstreamConfig::default().model_with_script("qwen3", thinker))
            .await
            .unwrap();
    let report = doctor(ollama(upstream.base_url(), &["test-model"], &["qwen3"])).await;
    let check = find(&report, "tool_probe_out_of_tokens");
    assert_eq!((check.rung, check.status), (Rung::Tools, Status::Warn));
    assert!(
        check.summary.contains("ran out of tokens while thinking"),
        "{}",
        check.summary
    );
    assert!(
        !section(&report)
            .checks
            .iter()
            .any(|c| c.code == "no_tool_call"),
        "{}",
        report.to_table()
    );
    assert_eq!(report.exit_code(), 1, "{}", report.to_table());
    // The probe leaves a thinking model room: far more than a call's few dozen tokens.
    let asked = upstream
        .chat_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .find(|b| b.get("tools").is_some())
        .unwrap();
    assert!(
        asked["options"]["num_predict"].as_u64().unwrap() >= 1024,
        "{asked}"
    );
    upstream.shutdown().await;
}

/// An embedding model routed for embeddings is reported as such, not judged as a chat or
/// tool model; beside chat models in one route it is a failure naming the route.
#[tokio::test]
async fn an_embedding_route_is_not_judged_as_chat() {
    let embed = ModelSpec::new("nomic-embed-text:latest").capabilities(["embedding"]);
    let upstream = TestUpstream::start(UpstreamConfig::default().model(embed))
        .await
        .unwrap();
    let mut probe = ollama(
        upstream.base_url(),
        &["nomic-embed-text"],
        &["nomic-embed-text"],
    );
    probe.routes = vec![("embed".into(), vec!["nomic-embed-text".into()])];
    let report = doctor(probe).await;
    let table = report.to_table();
    assert_eq!(report.exit_code(), 0, "{table}");
    assert!(table.contains("embeddings only"), "{table}");
    for code in ["embedding_only", "no_tools_capability", "no_tool_call"] {
        assert!(
            !section(&report).checks.iter().any(|c| c.code == code),
            "{code}:\n{table}"
        );
    }
    // (The paths rung's empty bodies name no model.)
    let asked = upstream
        .chat_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .filter(|b| b.get("model").is_some())
        .count();
    assert_eq!(asked, 0, "no chat sent to an embedding model");

    // In a route beside a chat model: chat requests may reach it.
    let mut probe = ollama(
        upstream.base_url(),
        &["test-model", "nomic-embed-text"],
        &["test-model", "nomic-embed-text"],
    );
    probe.routes = vec![(
        "chat".into(),
        vec!["test-model".into(), "nomic-embed-text".into()],
    )];
    let report = doctor(probe).await;
    let check = find(&report, "embedding_only");
    assert_eq!((check.rung, check.status), (Rung::Catalog, Status::Fail));
    assert!(check.summary.contains("`chat`"), "{}", check.summary);
    assert!(check.hint.as_deref().unwrap().contains("routes.chat"));
    upstream.shutdown().await;
}

/// A keyless server beyond loopback has its locality inferred `cloud`; the doctor does not
/// fail it before asking (vLLM and LM Studio on the LAN need no key), and a 401 still names
/// the missing key.
#[tokio::test]
async fn a_keyless_server_taken_for_cloud_is_asked_before_judged() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut probe = cloud(upstream.openai_base_url(), "unused", &["test-model"]);
    probe.client.bearer_token = None;
    probe.locality_inferred = true;
    let report = doctor(probe.clone()).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_table());

    let keyed = TestUpstream::start(UpstreamConfig::default().api_key("sk-right"))
        .await
        .unwrap();
    probe.base_url = keyed.openai_base_url();
    let report = doctor(probe).await;
    let check = find(&report, "no_api_key");
    assert_eq!((check.rung, check.status), (Rung::Account, Status::Fail));
    upstream.shutdown().await;
    keyed.shutdown().await;
}

/// The configured output-limit field and `num_ctx` reach the upstream as the gateway sends
/// them.
#[tokio::test]
async fn the_configured_max_tokens_field_and_num_ctx_are_used() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut probe = ProviderProbe {
        api: ProbeApi::OpenAi,
        ..ollama(upstream.openai_base_url(), &["test-model"], &[])
    };
    probe.max_tokens_field = Some(switchyard_doctor::MaxTokensField::MaxCompletionTokens);
    probe.num_ctx = Some(16384);
    let report = doctor(probe).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_table());
    // (The paths rung's empty bodies name no model.)
    let bodies: Vec<serde_json::Value> = upstream
        .chat_requests()
        .iter()
        .filter_map(|r| r.body_json())
        .filter(|b| b.get("model").is_some())
        .collect();
    assert!(!bodies.is_empty());
    for body in &bodies {
        assert!(body.get("max_tokens").is_none(), "{body}");
        assert!(body["max_completion_tokens"].is_u64(), "{body}");
        assert_eq!(body["options"]["num_ctx"], 16384, "{body}");
    }
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_model_that_ignores_the_tool_fails_the_tool_rung() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(ollama(
        upstream.base_url(),
        &["test-model"],
        &["test-model"],
    ))
    .await;
    assert_eq!(find(&report, "no_tool_call").status, Status::Fail);
    assert_eq!(section(&report).stopped_at, Some(Rung::Tools));
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_refused_cloud_key_is_named_at_the_account_rung() {
    let upstream = TestUpstream::start(UpstreamConfig::default().api_key("sk-right"))
        .await
        .unwrap();
    let report = doctor(cloud(
        upstream.openai_base_url(),
        "sk-stale",
        &["test-model"],
    ))
    .await;
    let check = find(&report, "key_rejected");
    assert_eq!((check.rung, check.status), (Rung::Account, Status::Fail));
    assert!(check.summary.contains("401"), "{}", check.summary);
    assert!(check.hint.as_deref().unwrap().contains("stale"));
    assert_eq!(section(&report).stopped_at, Some(Rung::Account));
    upstream.shutdown().await;
}

#[tokio::test]
async fn an_accepted_cloud_key_climbs_the_whole_ladder() {
    let upstream = TestUpstream::start(
        UpstreamConfig::default()
            .api_key("sk-right")
            .model_with_script("tool-model", tool_script()),
    )
    .await
    .unwrap();
    let mut probe = cloud(upstream.openai_base_url(), "sk-right", &["test-model"]);
    probe.tool_models = vec!["tool-model".into()];
    let report = doctor(probe).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_table());
    let account = section(&report)
        .checks
        .iter()
        .find(|c| c.rung == Rung::Account)
        .unwrap();
    assert_eq!(account.status, Status::Ok);
    upstream.shutdown().await;
}

#[tokio::test]
async fn an_exhausted_quota_is_not_a_rate_limit() {
    let script = Script::default().with_fault(Fault::HttpError {
        status: 429,
        message: "You exceeded your current quota".into(),
    });
    let upstream = TestUpstream::start(
        UpstreamConfig::default()
            .api_key("sk-right")
            .model_with_script("gpt", script),
    )
    .await
    .unwrap();
    let report = doctor(cloud(upstream.openai_base_url(), "sk-right", &["gpt"])).await;
    let check = find(&report, "quota_exhausted");
    assert_eq!((check.rung, check.status), (Rung::Account, Status::Fail));
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_first_token_slower_than_the_configured_timeout_warns() {
    let slow = Script::text(["o", "k"]).with_delays(Delays {
        before_first_chunk: Duration::from_millis(600),
        ..Delays::default()
    });
    let upstream = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", slow))
        .await
        .unwrap();
    let mut probe = ollama(upstream.base_url(), &["slow"], &[]);
    probe.first_token_timeout = Duration::from_millis(200);
    let report = doctor(probe).await;
    let check = find(&report, "first_token_timeout_too_short");
    assert_eq!((check.rung, check.status), (Rung::Stream, Status::Warn));
    assert!(check.hint.as_deref().unwrap().contains("first_token_ms"));
    let stream = section(&report)
        .checks
        .iter()
        .find(|c| c.rung == Rung::Stream)
        .unwrap();
    assert!(
        stream.measurements["ttft_ms"] >= 600,
        "{:?}",
        stream.measurements
    );
    assert_eq!(report.exit_code(), 1, "{}", report.to_table());
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_proxy_that_forwards_only_some_paths_is_detected() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    upstream.set_blocked_paths(vec!["/api/chat".into()]);
    let report = doctor(ollama(upstream.base_url(), &["test-model"], &[])).await;
    let check = find(&report, "path_blocked");
    assert_eq!(check.subject.as_deref(), Some("/api/chat"));
    assert!(check.summary.contains("404"), "{}", check.summary);
    assert!(check.hint.as_deref().unwrap().contains("proxy_pass"));
    assert_eq!(section(&report).stopped_at, Some(Rung::Paths));
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_v1_base_url_on_an_ollama_provider_is_flagged_and_the_ladder_goes_on() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let report = doctor(ollama(upstream.openai_base_url(), &["test-model"], &[])).await;
    let check = find(&report, "v1_on_ollama");
    assert_eq!(check.status, Status::Warn);
    assert!(
        check
            .hint
            .as_deref()
            .unwrap()
            .contains(&upstream.base_url())
    );
    assert_eq!(section(&report).stopped_at, None, "{}", report.to_table());
    upstream.shutdown().await;
}

#[tokio::test]
async fn https_to_a_plain_port_is_recognised() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let url = format!("https://{}", upstream.addr());
    let report = doctor(ollama(url, &["test-model"], &[])).await;
    let check = find(&report, "tls_to_plain_port");
    assert_eq!(check.rung, Rung::Tls);
    assert!(check.hint.as_deref().unwrap().contains("http://"));
    upstream.shutdown().await;
}

#[tokio::test]
async fn plain_http_to_a_tls_port_is_recognised() {
    // A port that answers any bytes with a TLS alert record, as a TLS server does.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await;
            let _ = socket
                .write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46])
                .await;
        }
    });
    let report = doctor(ollama(format!("http://{addr}"), &["m"], &[])).await;
    let check = find(&report, "plain_to_tls_port");
    assert_eq!((check.rung, check.status), (Rung::Tls, Status::Fail));
    server.abort();
}

#[tokio::test]
async fn plain_http_to_a_go_tls_server_is_recognised() {
    // Go's net/http (Caddy, Traefik) answers plain HTTP on its TLS port with a 400 of its own.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        for _ in 0..4 {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let mut buf = [0u8; 512];
            let _ = tokio::time::timeout(Duration::from_millis(500), socket.read(&mut buf)).await;
            let _ = socket
                .write_all(
                    b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n",
                )
                .await;
        }
    });
    let report = doctor(ollama(format!("http://{addr}"), &["m"], &[])).await;
    let check = find(&report, "plain_to_tls_port");
    assert_eq!((check.rung, check.status), (Rung::Tls, Status::Fail));
    server.abort();
}

#[tokio::test]
async fn the_gateway_section_reports_facts_and_listen_state() {
    let facts = GatewayFacts {
        config_path: Some("/etc/switchyard/config.json5".into()),
        config_checksum: Some("sha256:abc".into()),
        listen: Some("0.0.0.0:0".parse().unwrap()),
        keys_configured: false,
        ..facts()
    };
    let report = switchyard_doctor::run_with(options(), facts, vec![], &mut |_| {}).await;
    let table = report.to_table();
    assert!(
        table.contains("sha256:abc") && table.contains("build test"),
        "{table}"
    );
    let keys = report
        .gateway
        .checks
        .iter()
        .find(|c| c.rung == Rung::Keys)
        .unwrap();
    // Validation lets this through only with `insecure_listen: true`: a warning.
    assert_eq!(
        (keys.code.as_str(), keys.status),
        ("open_without_keys", Status::Warn)
    );
    assert_eq!(report.exit_code(), 1);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["gateway"]["checks"][0]["rung"], "config");
    assert_eq!(json["summary"]["failures"], 0);
    assert_eq!(json["summary"]["warnings"], 1);
}

#[tokio::test]
async fn ollama_v1_as_an_openai_provider_is_checked_through_the_native_api() {
    let calls = vec![ScriptedCall::new(
        "get_current_time",
        json!({"timezone": "UTC"}),
    )];
    let small = ModelSpec::new("small:1b").capabilities(["completion"]);
    let upstream = TestUpstream::start(UpstreamConfig::default().model(small).model_with_script(
        "hermes",
        Script::tool_calls_as_text(TextCallFormat::Hermes, calls),
    ))
    .await
    .unwrap();
    let v1 = |tools: &[&str]| ProviderProbe {
        api: ProbeApi::OpenAi,
        ..ollama(upstream.openai_base_url(), &["test-model"], tools)
    };
    // Capabilities come from the native /api/show.
    let report = doctor(v1(&["small:1b"])).await;
    assert!(
        report.to_table().contains("Ollama's OpenAI layer"),
        "{}",
        report.to_table()
    );
    assert_eq!(
        find(&report, "no_tools_capability").subject.as_deref(),
        Some("small:1b")
    );
    // Calls written as text on /v1: the hint points at the native API.
    let report = doctor(v1(&["hermes"])).await;
    let check = find(&report, "tool_call_as_text");
    assert!(
        check.hint.as_deref().unwrap().contains("native API"),
        "{check:?}"
    );
    upstream.shutdown().await;
}

#[tokio::test]
async fn a_total_timeout_below_a_whole_answer_warns() {
    let slow = Script::text(["1", " 2", " 3"]).with_chunk_delay(Duration::from_millis(150));
    let upstream = TestUpstream::start(UpstreamConfig::default().model_with_script("slow", slow))
        .await
        .unwrap();
    let mut probe = ollama(upstream.base_url(), &["slow"], &[]);
    probe.client.timeouts.total = Some(Duration::from_millis(100));
    let report = doctor(probe).await;
    let check = find(&report, "total_timeout_too_short");
    assert_eq!((check.rung, check.status), (Rung::Stream, Status::Warn));
    upstream.shutdown().await;
}

/// A reverse proxy that buffers each whole response before sending it on (one request per
/// connection), as a proxy with response buffering on does.
async fn buffering_proxy(
    upstream: std::net::SocketAddr,
) -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((mut client, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                // The request: headers, then a body of content-length bytes.
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                let head_end = loop {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 || request.len() > 64 * 1024 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    if let Some(i) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                };
                let head = String::from_utf8_lossy(&request[..head_end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                while request.len() < head_end + length {
                    let n = client.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                }
                // Forward with `Connection: close`, read the whole answer, send it at once.
                let line_end = request.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
                let mut forwarded = request[..line_end].to_vec();
                forwarded.extend_from_slice(b"Connection: close\r\n");
                forwarded.extend_from_slice(&request[line_end..]);
                let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await else {
                    return;
                };
                if up.write_all(&forwarded).await.is_err() {
                    return;
                }
                let mut answer = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(5), up.read_to_end(&mut answer)).await;
                let _ = client.write_all(&answer).await;
                let _ = client.shutdown().await;
            });
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_proxy_that_buffers_streams_is_detected() {
    let paced = Script::text(["1", " 2", " 3", " 4", " 5", " 6"])
        .with_chunk_delay(Duration::from_millis(60));
    let upstream = TestUpstream::start(UpstreamConfig::default().model_with_script("paced", paced))
        .await
        .unwrap();
    // Directly: the chunks arrive spread out.
    let report = doctor(ollama(upstream.base_url(), &["paced"], &[])).await;
    assert_eq!(report.exit_code(), 0, "{}", report.to_table());
    // Through the buffering proxy: all at once.
    let (proxy, task) = buffering_proxy(upstream.addr()).await;
    let report = doctor(ollama(format!("http://{proxy}"), &["paced"], &[])).await;
    let check = find(&report, "stream_buffered");
    assert_eq!((check.rung, check.status), (Rung::Stream, Status::Warn));
    assert!(
        check
            .hint
            .as_deref()
            .unwrap()
            .contains("proxy_buffering off")
    );
    task.abort();
    upstream.shutdown().await;
}
