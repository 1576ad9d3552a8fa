//! The ladder of an Anthropic Messages provider against the testkit's scripted Anthropic
//! upstream on loopback: healthy, a refused or missing key, a permission error, a rate
//! limit, 529 overloaded, a missing model, and the tool round trip.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::time::Duration;

use serde_json::json;
use switchyard_core::Locality;
use switchyard_doctor::TextRecovery;
use switchyard_doctor::{
    Check, DoctorOptions, GatewayFacts, ProbeApi, ProviderProbe, Report, Rung, Status,
};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};

const KEY: &str = "sk-ant-test";
const MODEL: &str = "claude-sonnet-4-5-20250929";

fn options() -> DoctorOptions {
    DoctorOptions {
        dns_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_millis(500),
        request_timeout: Duration::from_millis(800),
        generation_timeout: Duration::from_secs(3),
        generate: true,
    }
}

fn claude(base_url: String, key: Option<&str>, models: &[&str]) -> ProviderProbe {
    let models: Vec<String> = models.iter().map(|m| (*m).to_owned()).collect();
    ProviderProbe {
        id: "claude".into(),
        api: ProbeApi::Anthropic,
        base_url,
        locality: Locality::Cloud,
        locality_inferred: false,
        client: ClientConfig {
            timeouts: Timeouts {
                connect: Duration::from_millis(500),
                first_token: Duration::from_secs(2),
                idle: Duration::from_secs(2),
                total: None,
            },
            bearer_token: key.map(str::to_owned),
            extra_headers: vec![("anthropic-version".into(), "2023-06-01".into())],
            ..ClientConfig::default()
        },
        tool_models: models.clone(),
        models,
        first_token_timeout: Duration::from_secs(2),
        routes: vec![],
        text_tool_recovery: TextRecovery::Off,
        max_tokens_field: None,
        num_ctx: None,
    }
}

fn tool_call() -> Script {
    Script::tool_calls(vec![ScriptedCall::new(
        "get_current_time",
        json!({"timezone": "UTC"}),
    )])
}

/// An upstream that needs `KEY`, serves `MODEL` with a tool call and answers the tool
/// result in text.
fn healthy() -> UpstreamConfig {
    UpstreamConfig::empty()
        .api_key(KEY)
        .model_with_script(MODEL, tool_call())
        .after_tool_result(MODEL, Script::text(["It is ", "noon UTC."]))
        .model_with_script("claude-3-haiku-20240307", Script::text(["ok"]))
}

async fn doctor(probe: ProviderProbe) -> Report {
    let facts = GatewayFacts {
        version: "0.1.0".into(),
        build_id: "test".into(),
        ..GatewayFacts::default()
    };
    let mut progress = |_: &str| {};
    let run = switchyard_doctor::run_with(options(), facts, vec![probe], &mut progress);
    tokio::time::timeout(Duration::from_secs(20), run)
        .await
        .expect("the doctor finished")
}

fn find<'a>(report: &'a Report, code: &str) -> &'a Check {
    report.providers[0]
        .checks
        .iter()
        .find(|c| c.code == code)
        .unwrap_or_else(|| panic!("no `{code}` in\n{}", report.to_table()))
}

#[tokio::test]
async fn a_healthy_anthropic_provider_passes_every_rung_with_a_tool_round_trip() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    let report = doctor(claude(upstream.base_url(), Some(KEY), &[MODEL])).await;
    let table = report.to_table();
    assert_eq!(report.exit_code(), 0, "{table}");
    let s = &report.providers[0];
    assert_eq!(s.api, ProbeApi::Anthropic);
    assert_eq!(s.stopped_at, None, "{table}");
    let every = [
        Rung::Dns,
        Rung::Tcp,
        Rung::Tls,
        Rung::Http,
        Rung::Catalog,
        Rung::Paths,
        Rung::Generate,
        Rung::Stream,
        Rung::Tools,
        Rung::Account,
    ];
    let missing: Vec<Rung> = every
        .into_iter()
        .filter(|r| !s.checks.iter().any(|c| c.rung == *r))
        .collect();
    assert!(missing.is_empty(), "{missing:?} missing:\n{table}");
    assert!(table.contains("/v1/models answers: 2 models"), "{table}");
    assert!(
        table.contains("the API key is accepted (x-api-key, anthropic-version 2023-06-01)"),
        "{table}"
    );
    assert!(table.contains("round trip complete"), "{table}");
    assert!(
        table.contains("/v1/models, /v1/messages reach the server"),
        "{table}"
    );
    // The key went out as `x-api-key` with the version; the second tool leg carried the
    // call's `tool_use` and its `tool_result`.
    let messages: Vec<_> = upstream
        .requests()
        .into_iter()
        .filter(|r| r.path == "/v1/messages" && r.header("x-api-key") == Some(KEY))
        .collect();
    assert!(
        messages
            .iter()
            .all(|r| r.header("anthropic-version") == Some("2023-06-01"))
    );
    let last = messages.last().expect("the tool legs reached the upstream");
    let body = last.body_json().unwrap();
    let turns = body["messages"].as_array().unwrap();
    let use_id = &turns[1]["content"][0]["id"];
    assert_eq!(turns[1]["content"][0]["type"], "tool_use", "{body}");
    assert_eq!(turns[2]["content"][0]["type"], "tool_result", "{body}");
    assert_eq!(&turns[2]["content"][0]["tool_use_id"], use_id, "{body}");
}

#[tokio::test]
async fn an_alias_without_the_date_counts_as_listed() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    let mut probe = claude(upstream.base_url(), Some(KEY), &["claude-3-haiku"]);
    probe.tool_models.clear();
    let mut options = options();
    options.generate = false;
    let facts = GatewayFacts::default();
    let report = switchyard_doctor::run_with(options, facts, vec![probe], &mut |_| {}).await;
    let table = report.to_table();
    assert!(report.providers[0].stopped_at.is_none(), "{table}");
    assert!(
        !report.providers[0]
            .checks
            .iter()
            .any(|c| c.code == "model_missing"),
        "{table}"
    );
}

#[tokio::test]
async fn a_wrong_key_says_which_field_and_variable_to_change() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    let report = doctor(claude(
        upstream.base_url(),
        Some("sk-proj-openai"),
        &[MODEL],
    ))
    .await;
    let check = find(&report, "key_rejected");
    assert_eq!(check.rung, Rung::Account);
    assert_eq!(check.status, Status::Fail);
    assert!(check.summary.contains("HTTP 401"), "{}", check.summary);
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("providers.claude.api_key"), "{hint}");
    assert!(hint.contains("ANTHROPIC_API_KEY"), "{hint}");
    assert_eq!(report.providers[0].stopped_at, Some(Rung::Account));
}

#[tokio::test]
async fn a_missing_key_stops_before_the_network_on_anthropics_api() {
    // api.anthropic.com answers nothing without a key: judged before any request (the
    // ladder stops before dns, so no network is used).
    let report = doctor(claude("https://api.anthropic.com".into(), None, &[MODEL])).await;
    let check = find(&report, "no_api_key");
    assert_eq!(check.rung, Rung::Account);
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("providers.claude.api_key"), "{hint}");
    assert!(hint.contains("x-api-key"), "{hint}");
    assert!(
        !report.providers[0]
            .checks
            .iter()
            .any(|c| c.rung == Rung::Dns),
        "nothing is sent without a key"
    );
}

#[tokio::test]
async fn a_missing_key_elsewhere_is_named_by_the_servers_401() {
    // Another Anthropic-speaking server (a proxy on the LAN) may need no key: it is asked.
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    let report = doctor(claude(upstream.base_url(), None, &[MODEL])).await;
    let check = find(&report, "no_api_key");
    assert_eq!((check.rung, check.status), (Rung::Account, Status::Fail));
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("providers.claude.api_key"), "{hint}");
}

#[tokio::test]
async fn a_permission_error_is_told_from_a_bad_key() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    upstream.set_fault(Some(Fault::HttpError {
        status: 403,
        message: "This organization does not have access to this model".into(),
    }));
    let mut probe = claude(upstream.base_url(), Some(KEY), &[MODEL]);
    probe
        .client
        .extra_headers
        .push(("anthropic-beta".into(), "context-1m-2025-08-07".into()));
    let report = doctor(probe).await;
    let check = find(&report, "permission_denied");
    assert_eq!(check.rung, Rung::Account);
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("providers.claude.anthropic_beta"), "{hint}");
    assert!(hint.contains("context-1m-2025-08-07"), "{hint}");
}

#[tokio::test]
async fn overloaded_529_is_a_warning_pointing_at_fallback() {
    let upstream = TestUpstream::start(healthy().script(
        MODEL,
        tool_call().with_fault(Fault::HttpError {
            status: 529,
            message: "Overloaded".into(),
        }),
    ))
    .await
    .unwrap();
    let report = doctor(claude(upstream.base_url(), Some(KEY), &[MODEL])).await;
    let check = find(&report, "overloaded");
    assert_eq!(check.status, Status::Warn, "{}", report.to_table());
    assert_eq!(check.rung, Rung::Generate);
    assert!(check.summary.contains("HTTP 529"), "{}", check.summary);
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(
        hint.contains("fallback") && hint.contains("cools"),
        "{hint}"
    );
    assert_eq!(report.providers[0].stopped_at, Some(Rung::Generate));
    assert_eq!(report.exit_code(), 1, "{}", report.to_table());
}

#[tokio::test]
async fn a_rate_limit_names_the_cooldown() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    upstream.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 7,
    }));
    let report = doctor(claude(upstream.base_url(), Some(KEY), &[MODEL])).await;
    let check = find(&report, "rate_limited");
    assert_eq!(check.status, Status::Warn);
    assert!(
        check.summary.contains("retry after 7.0 s"),
        "{}",
        check.summary
    );
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("fallback"), "{hint}");
}

#[tokio::test]
async fn a_missing_model_names_what_the_catalog_has() {
    let upstream = TestUpstream::start(healthy()).await.unwrap();
    let report = doctor(claude(upstream.base_url(), Some(KEY), &["claude-opus-4-1"])).await;
    let check = find(&report, "model_missing");
    assert_eq!(check.rung, Rung::Catalog);
    let hint = check.hint.as_deref().unwrap_or_default();
    assert!(hint.contains("/v1/models"), "{hint}");
    assert!(hint.contains(MODEL), "{hint}");
    assert_eq!(report.providers[0].stopped_at, Some(Rung::Catalog));
}

#[tokio::test]
async fn a_tool_result_left_unanswered_fails_the_tool_rung() {
    // No script for after the tool result: the model calls the tool again.
    let upstream = TestUpstream::start(
        UpstreamConfig::empty()
            .api_key(KEY)
            .model_with_script(MODEL, tool_call()),
    )
    .await
    .unwrap();
    let report = doctor(claude(upstream.base_url(), Some(KEY), &[MODEL])).await;
    let check = find(&report, "tool_result_unanswered");
    assert_eq!(check.rung, Rung::Tools);
    assert!(check.summary.contains("tool_calls"), "{}", check.summary);
    assert_eq!(report.providers[0].stopped_at, Some(Rung::Tools));
}
