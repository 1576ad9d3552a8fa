//! Tools first-class, against real upstreams on loopback: capability-aware plans (a model
//! that cannot serve what a request needs is skipped before dispatch) and the tool policy
//! by locality (`never_to_cloud`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_core::{ChatRequest, ErrorKind, Locality, ToolSpec};
use switchyard_router::ReasonCode;
use switchyard_testkit::{ModelSpec, Script, TestUpstream, UpstreamConfig, refused_addr};

const FT: Duration = Duration::from_secs(2);

fn with_tools(model: &str, names: &[&str]) -> ChatRequest {
    let mut r = request(model);
    r.tools = names
        .iter()
        .map(|n| ToolSpec {
            name: (*n).to_owned(),
            description: Some("a tool".to_owned()),
            parameters: json!({ "type": "object" }),
        })
        .collect();
    r
}

async fn ollama_upstream(spec: ModelSpec, text: &'static str) -> TestUpstream {
    let name = spec.name.clone();
    TestUpstream::start(
        UpstreamConfig::empty()
            .model(spec)
            .script(&name, Script::text([text])),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn a_request_with_tools_skips_a_model_without_tools_and_is_served_by_the_next() {
    let plain = ollama_upstream(
        ModelSpec::new("plain:1b").capabilities(["completion"]),
        "plain",
    )
    .await;
    let tooled = ollama_upstream(ModelSpec::new("tooled:8b"), "tooled").await;
    let slots = vec![
        ollama_at("small", &plain.base_url(), Locality::Local, FT),
        ollama_at("big", &tooled.base_url(), Locality::Local, FT),
    ];
    let (router, records) = build_router(
        json!({ "routes": { "chat": { "targets": ["small/plain:1b", "big/tooled:8b"] } } }),
        slots,
    );
    // Discovery (`/api/show`) tells the router what each model can do.
    router.catalog().await;

    let explained = router.explain(&with_tools("chat", &["search"]));
    let skipped = explained
        .targets
        .iter()
        .find(|t| t.target.to_string() == "small/plain:1b")
        .expect("the plain model is explained");
    assert!(!skipped.included);
    assert_eq!(skipped.reason, ReasonCode::ModelLacksTools);
    assert_eq!(skipped.reason, "model_lacks_tools");

    let stream = route(&router, &with_tools("chat", &["search"]))
        .await
        .expect("served by the tool model");
    assert_eq!(stream.served_by().to_string(), "big/tooled:8b");
    let (text, _, error) = drain(stream).await;
    assert_eq!(text, "tooled");
    assert!(error.is_none());
    assert_eq!(
        plain.chat_request_count(),
        0,
        "nothing was sent to the plain model"
    );

    let record = records.last();
    assert_eq!(
        record.attempts.len(),
        1,
        "only the served attempt: {:?}",
        record.attempts
    );
    assert_eq!(record.attempts[0].target.to_string(), "big/tooled:8b");
    assert_eq!(record.skipped.len(), 1);
    assert_eq!(record.skipped[0].target.to_string(), "small/plain:1b");
    assert_eq!(record.skipped[0].reason, "model_lacks_tools");

    // Without tools the plain model serves as the primary.
    let stream = route(&router, &request("chat")).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "small/plain:1b");
    assert_eq!(stream.reason(), "primary");
    drain(stream).await;
}

#[tokio::test]
async fn a_prompt_over_the_context_window_skips_the_model_and_unknown_capabilities_try() {
    let short = ollama_upstream(ModelSpec::new("short:1b").context_length(16), "short").await;
    let long = ollama_upstream(ModelSpec::new("long:8b"), "long").await;
    let slots = vec![
        ollama_at("a", &short.base_url(), Locality::Local, FT),
        ollama_at("b", &long.base_url(), Locality::Local, FT),
    ];
    let (router, records) = build_router(
        json!({ "routes": { "chat": { "targets": ["a/short:1b", "b/long:8b"] } } }),
        slots,
    );
    // Before discovery nothing is known: the first model is tried.
    let mut big = request("chat");
    big.messages = vec![switchyard_core::Message::user("x".repeat(400))];
    let stream = route(&router, &big).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "a/short:1b");
    drain(stream).await;

    router.catalog().await;
    let stream = route(&router, &big).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "b/long:8b");
    drain(stream).await;
    assert_eq!(records.last().skipped[0].reason, "context_window_exceeded");
}

fn cloud_slot(up: &TestUpstream) -> switchyard_router::ProviderSlot {
    openai_at(
        "cloud",
        &up.openai_base_url(),
        Locality::Cloud,
        &[("gpt-test", 0.4, 1.6)],
    )
}

#[tokio::test]
async fn a_request_offering_exec_never_reaches_the_cloud_when_the_local_target_fails() {
    let cloud = TestUpstream::start(
        UpstreamConfig::empty().model_with_script("gpt-test", Script::text(["cloud"])),
    )
    .await
    .unwrap();
    let local = ollama_at(
        "local",
        &format!("http://{}", refused_addr()),
        Locality::Local,
        FT,
    );
    let (router, records) = build_router(
        json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
                "policy": { "tools": { "never_to_cloud": ["exec", "browser_*"] } },
                "retry": { "max_retries": 0 } }),
        vec![local, cloud_slot(&cloud)],
    );

    let failure = route(&router, &with_tools("chat", &["read_file", "exec"]))
        .await
        .expect_err("refused");
    assert_eq!(failure.error.kind(), ErrorKind::PolicyBlocked);
    assert!(
        failure.error.message().contains("`exec`"),
        "{}",
        failure.error
    );
    assert_eq!(
        cloud.chat_request_count(),
        0,
        "the cloud never saw the request"
    );
    assert_eq!(failure.attempts.len(), 1, "the local target was tried");
    assert_eq!(failure.attempts[0].reason_code, "connect_refused");
    let record = records.last();
    assert_eq!(record.skipped[0].target.to_string(), "cloud/gpt-test");
    assert_eq!(record.skipped[0].reason, "tool_never_to_cloud");
    assert_eq!(record.reason, "policy_blocked");

    // A glob match, with no local target left at all: refused at planning, naming it.
    let (router, _) = build_router(
        json!({ "routes": { "web": { "targets": ["cloud/gpt-test"] } },
                "policy": { "tools": { "never_to_cloud": ["exec", "browser_*"] } } }),
        vec![cloud_slot(&cloud)],
    );
    let failure = route(&router, &with_tools("web", &["browser_open"]))
        .await
        .expect_err("refused");
    assert_eq!(failure.error.kind(), ErrorKind::PolicyBlocked);
    assert!(
        failure.error.message().contains("`browser_open`"),
        "{}",
        failure.error
    );
    assert_eq!(cloud.chat_request_count(), 0);

    // Tools the policy does not name still reach the cloud.
    let stream = route(&router, &with_tools("web", &["search"]))
        .await
        .expect("served");
    drain(stream).await;
    assert_eq!(cloud.chat_request_count(), 1);
}

#[tokio::test]
async fn a_callers_own_never_to_cloud_applies_to_that_caller_only() {
    let cloud = TestUpstream::start(
        UpstreamConfig::empty().model_with_script("gpt-test", Script::text(["cloud"])),
    )
    .await
    .unwrap();
    let (router, _) = build_router(
        json!({ "routes": { "web": { "targets": ["cloud/gpt-test"] } },
                "callers": { "agent": { "tools": { "never_to_cloud": ["shell"] } } } }),
        vec![cloud_slot(&cloud)],
    );
    let mut from_agent = with_tools("web", &["shell"]);
    from_agent.meta.caller = Some("agent".to_owned());
    let failure = route(&router, &from_agent).await.expect_err("refused");
    assert_eq!(failure.error.kind(), ErrorKind::PolicyBlocked);
    assert_eq!(cloud.chat_request_count(), 0);

    let stream = route(&router, &with_tools("web", &["shell"]))
        .await
        .expect("served");
    drain(stream).await;
    assert_eq!(cloud.chat_request_count(), 1);
}

#[tokio::test]
async fn task_rules_send_a_request_to_their_route_and_the_record_says_which() {
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("small", Script::text(["small"]))
            .model_with_script("heavy", Script::text(["heavy"]))
            .model_with_script("summarizer", Script::text(["summary"])),
    )
    .await
    .unwrap();
    let slots = vec![ollama_at("local", &up.base_url(), Locality::Local, FT)];
    let (router, records) = build_router(
        json!({ "routes": {
            "chat": { "targets": ["local/small"],
                      "rules": [ { "tools": ["browser_*"], "to": "heavy" },
                                 { "task": "summary", "to": "sum" },
                                 { "min_prompt_tokens": 100, "to": "heavy" } ] },
            "heavy": { "targets": ["local/heavy"] },
            "sum": { "targets": ["local/summarizer"] } } }),
        slots,
    );

    let stream = route(&router, &with_tools("chat", &["search", "browser_open"]))
        .await
        .expect("served");
    assert_eq!(stream.served_by().to_string(), "local/heavy");
    let (text, _, _) = drain(stream).await;
    assert_eq!(text, "heavy");
    let record = records.last();
    assert_eq!(record.requested, "chat");
    assert_eq!(record.route.as_deref(), Some("heavy"));
    assert_eq!(record.rule.as_deref(), Some("chat.rules[0] -> heavy"));
    let explained = router.explain(&with_tools("chat", &["browser_open"]));
    assert_eq!(explained.rule.as_deref(), Some("chat.rules[0] -> heavy"));

    let mut summary = request("chat");
    summary.meta.task = Some("summary".to_owned());
    let stream = route(&router, &summary).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "local/summarizer");
    drain(stream).await;
    assert_eq!(records.last().rule.as_deref(), Some("chat.rules[1] -> sum"));

    let mut long = request("chat");
    long.messages = vec![switchyard_core::Message::user("x".repeat(400))];
    let stream = route(&router, &long).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "local/heavy");
    drain(stream).await;
    assert_eq!(
        records.last().rule.as_deref(),
        Some("chat.rules[2] -> heavy")
    );

    // No rule holds: the route's own targets, and no rule in the record.
    let stream = route(&router, &with_tools("chat", &["search"]))
        .await
        .expect("served");
    assert_eq!(stream.served_by().to_string(), "local/small");
    drain(stream).await;
    assert_eq!(records.last().rule, None);
}

#[tokio::test]
async fn a_task_rule_never_lifts_a_local_only_route_to_the_cloud() {
    let local = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("small", Script::text(["local"]))
            .model_with_script("summarizer", Script::text(["local summary"])),
    )
    .await
    .unwrap();
    let cloud = TestUpstream::start(
        UpstreamConfig::empty().model_with_script("gpt-test", Script::text(["cloud"])),
    )
    .await
    .unwrap();
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        openai_at(
            "cloud",
            &cloud.openai_base_url(),
            Locality::Cloud,
            &[("gpt-test", 0.4, 1.6)],
        ),
    ];
    // The task header is the client's: a rule out of a local-only route must not be a
    // way around its privacy, directly or through a chain of rules.
    let (router, records) = build_router(
        json!({ "routes": {
            "private": { "targets": ["local/small"], "privacy": "local-only",
                         "rules": [ { "task": "summary", "to": "sum" },
                                    { "task": "chain", "to": "hop" } ] },
            "sum": { "targets": ["cloud/gpt-test"] },
            "hop": { "targets": ["local/small"], "rules": [ { "task": "chain", "to": "mixed" } ] },
            "mixed": { "targets": ["cloud/gpt-test", "local/summarizer"] } } }),
        slots,
    );

    let mut summary = request("private");
    summary.meta.task = Some("summary".to_owned());
    let Err(failure) = route(&router, &summary).await else {
        panic!("no target may serve it");
    };
    assert_eq!(failure.kind(), ErrorKind::PolicyBlocked, "{failure:?}");
    let record = records.last();
    assert_eq!(record.privacy, switchyard_core::PrivacyClass::LocalOnly);
    assert_eq!(record.rule.as_deref(), Some("private.rules[0] -> sum"));
    assert!(
        record
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::PrivacyLocalOnly),
        "{record:?}"
    );

    let mut chained = request("private");
    chained.meta.task = Some("chain".to_owned());
    let stream = route(&router, &chained).await.expect("served locally");
    assert_eq!(stream.served_by().to_string(), "local/summarizer");
    drain(stream).await;
    assert_eq!(
        records.last().rule.as_deref(),
        Some("private.rules[1] -> hop.rules[0] -> mixed")
    );
    assert_eq!(cloud.chat_request_count(), 0, "nothing reached the cloud");

    // The same rule from a route without privacy still reaches the cloud route.
    let mut open = request("mixed");
    open.meta.task = Some("summary".to_owned());
    let stream = route(&router, &open).await.expect("served");
    assert_eq!(stream.served_by().to_string(), "cloud/gpt-test");
    drain(stream).await;
}

#[test]
fn task_rules_that_loop_are_refused() {
    let config = config(json!({ "routes": {
        "chat": { "targets": ["local/a"], "rules": [ { "task": "x", "to": "heavy" } ] },
        "heavy": { "targets": ["local/b"], "rules": [ { "tools": ["*"], "to": "chat" } ] } } }));
    let slot = ollama_at("local", "http://127.0.0.1:9", Locality::Local, FT);
    let err = switchyard_router::Router::new(
        config,
        vec![slot],
        std::sync::Arc::new(switchyard_router::MemoryLedger::new()),
    )
    .expect_err("a loop is refused");
    assert_eq!(err.reason_code(), "rule_loop");
    assert!(err.to_string().contains("chat -> heavy -> chat"), "{err}");
}

#[tokio::test]
async fn a_call_of_a_tool_the_request_did_not_offer_is_flagged_and_passed_through() {
    use switchyard_testkit::ScriptedCall;
    let up = TestUpstream::start(UpstreamConfig::empty().model_with_script(
        "m",
        Script::tool_calls(vec![
            ScriptedCall::new("search", json!({ "q": "x" })),
            ScriptedCall::new("rm_rf", json!({ "path": "/" })),
        ]),
    ))
    .await
    .unwrap();
    let (router, records) = build_router(
        json!({ "routes": { "chat": { "targets": ["local/m"] } } }),
        vec![ollama_at("local", &up.base_url(), Locality::Local, FT)],
    );
    let mut req = with_tools("chat", &["search"]);
    req.meta.caller = Some("agent".to_owned());
    let stream = route(&router, &req).await.expect("served");
    let (_, events, error) = drain(stream).await;
    assert!(error.is_none());
    let called: Vec<&str> = events
        .iter()
        .filter_map(|e| match e {
            switchyard_core::ChatEvent::ToolCallStart { name, .. } => Some(name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(called, ["search", "rm_rf"], "both calls reach the client");
    assert_eq!(records.last().unknown_tool_calls, ["rm_rf"]);
    assert!(!records.last().unknown_tool_calls_dropped);
}

/// The tool calls of `events`, as (index, name), and the finish reason.
fn calls_and_finish(
    events: &[switchyard_core::ChatEvent],
) -> (Vec<(u32, String)>, Option<switchyard_core::FinishReason>) {
    use switchyard_core::ChatEvent;
    let calls = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallStart { index, name, .. } => Some((*index, name.clone())),
            _ => None,
        })
        .collect();
    let finish = events.iter().find_map(|e| match e {
        ChatEvent::Done { finish_reason } => Some(finish_reason.clone()),
        _ => None,
    });
    (calls, finish)
}

#[tokio::test]
async fn drop_unknown_tool_calls_removes_them_flags_the_record_and_fixes_the_finish_reason() {
    use switchyard_core::{ChatEvent, FinishReason};
    use switchyard_testkit::ScriptedCall;
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script(
                "mixed",
                Script::tool_calls(vec![
                    ScriptedCall::new("rm_rf", json!({ "path": "/" })),
                    ScriptedCall::new("search", json!({ "q": "x" })),
                ]),
            )
            .model_with_script(
                "rogue",
                Script::tool_calls(vec![ScriptedCall::new("rm_rf", json!({ "path": "/" }))]),
            ),
    )
    .await
    .unwrap();
    let (router, records) = build_router(
        json!({ "routes": {
            "mixed": { "targets": ["local/mixed"], "drop_unknown_tool_calls": true },
            "rogue": { "targets": ["local/rogue"], "drop_unknown_tool_calls": true } } }),
        vec![ollama_at("local", &up.base_url(), Locality::Local, FT)],
    );

    let (_, events, error) = drain(
        route(&router, &with_tools("mixed", &["search"]))
            .await
            .unwrap(),
    )
    .await;
    assert!(error.is_none());
    let (calls, finish) = calls_and_finish(&events);
    assert_eq!(
        calls,
        [(0, "search".to_owned())],
        "rm_rf is removed, search renumbered"
    );
    assert!(
        events.iter().all(|e| match e {
            ChatEvent::ToolCallArgs { fragment, .. } => !fragment.contains('/'),
            _ => true,
        }),
        "no fragment of the dropped call: {events:?}"
    );
    assert_eq!(finish, Some(FinishReason::ToolCalls));
    let record = records.last();
    assert_eq!(record.unknown_tool_calls, ["rm_rf"]);
    assert!(record.unknown_tool_calls_dropped);

    let (_, events, error) = drain(
        route(&router, &with_tools("rogue", &["search"]))
            .await
            .unwrap(),
    )
    .await;
    assert!(error.is_none());
    let (calls, finish) = calls_and_finish(&events);
    assert!(calls.is_empty(), "{events:?}");
    assert_eq!(finish, Some(FinishReason::Stop), "nothing left to run");
    let record = records.last();
    assert_eq!(record.unknown_tool_calls, ["rm_rf"]);
    assert!(record.unknown_tool_calls_dropped);
    assert_eq!(
        serde_json::to_value(&record).unwrap()["unknown_tool_calls_dropped"],
        true
    );
}
