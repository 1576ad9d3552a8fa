//! Routing policy against real upstreams on loopback: fallback, privacy, strictness,
//! retries, health, queues, overflow, groups, probes.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_core::{
    ErrorKind, Locality, PrivacyClass, Provider, TimeoutPhase, collect_response,
};
use switchyard_router::{AttemptOutcome, Health, ManualClock, ReasonCode, RequestOutcome};
use switchyard_testkit::{Delays, Fault, Script, TestUpstream, UpstreamConfig, refused_addr};

const FT: Duration = Duration::from_secs(2);

async fn cloud_upstream() -> TestUpstream {
    TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-test", Script::text(["From", " the", " cloud."])),
    )
    .await
    .unwrap()
}

fn cloud_slot(up: &TestUpstream) -> switchyard_router::ProviderSlot {
    openai_at(
        "cloud",
        &up.openai_base_url(),
        Locality::Cloud,
        &[("gpt-test", 0.4, 1.6)],
    )
}

fn refused_local() -> switchyard_router::ProviderSlot {
    ollama_at(
        "local",
        &format!("http://{}", refused_addr()),
        Locality::Local,
        FT,
    )
}

fn chat_route() -> serde_json::Value {
    json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
            "callers": { "laptop": { "privacy": "local-only" } },
            "retry": { "max_retries": 0 } })
}

#[tokio::test]
async fn local_refusing_falls_back_to_cloud_with_the_reason_recorded() {
    let cloud = cloud_upstream().await;
    let (router, records) = build_router(chat_route(), vec![refused_local(), cloud_slot(&cloud)]);

    let stream = route(&router, &request("chat"))
        .await
        .expect("served by cloud");
    assert_eq!(stream.served_by().to_string(), "cloud/gpt-test");
    assert_eq!(stream.reason(), "fallback_after_connect_refused");
    assert_eq!(stream.attempts().len(), 1);
    assert_eq!(stream.attempts()[0].target.to_string(), "local/test-model");
    assert_eq!(stream.attempts()[0].reason_code, "connect_refused");
    assert!(!stream.request_id().is_empty());
    let (text, _, error) = drain(stream).await;
    assert_eq!(text, "From the cloud.");
    assert!(error.is_none());

    // The upstream got the upstream model id, not the alias.
    let sent = cloud.chat_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].model().as_deref(), Some("gpt-test"));

    let record = records.last();
    assert_eq!(records.len(), 1, "one decision record per request");
    assert_eq!(record.route.as_deref(), Some("chat"));
    assert_eq!(record.reason, "fallback_after_connect_refused");
    assert_eq!(record.outcome, RequestOutcome::Ok);
    assert_eq!(record.attempts.len(), 2);
    assert_eq!(record.attempts[0].outcome, AttemptOutcome::Failed);
    assert_eq!(record.attempts[1].outcome, AttemptOutcome::Served);
    assert!(record.attempts[1].ttft_ms.is_some());
    assert_eq!(
        record.usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((12, 5))
    );
    // 12 * 0.4 + 5 * 1.6 = 12.8 micro-dollars, rounded up.
    assert_eq!(record.cost_micro_usd, 13);
    cloud.shutdown().await;
}

#[tokio::test]
async fn local_only_requests_never_reach_the_cloud() {
    let cloud = cloud_upstream().await;
    let mut cfg = chat_route();
    cfg["routes"]["private"] =
        json!({ "targets": ["local/test-model", "cloud/gpt-test"], "privacy": "local-only" });
    let (router, records) = build_router(cfg, vec![refused_local(), cloud_slot(&cloud)]);

    // Privacy from the caller's key, from the request (header), and from the route.
    let by_caller = request_from("chat", "laptop");
    let mut by_header = request("chat");
    by_header.meta.privacy = Some(PrivacyClass::LocalOnly);
    let by_route = request("private");
    for req in [by_caller, by_header, by_route] {
        let explained = router.explain(&req);
        assert_eq!(explained.privacy, PrivacyClass::LocalOnly);
        let cloud_entry = explained
            .targets
            .iter()
            .find(|t| &*t.target.provider == "cloud")
            .unwrap();
        assert!(!cloud_entry.included);
        assert_eq!(cloud_entry.reason, ReasonCode::PrivacyLocalOnly);

        let failure = route(&router, &req)
            .await
            .expect_err("no allowed target serves");
        assert_eq!(failure.kind(), ErrorKind::ConnectRefused);
        assert_eq!(failure.attempts.len(), 1);
        assert!(
            failure
                .skipped
                .iter()
                .any(|s| &*s.target.provider == "cloud" && s.reason == ReasonCode::PrivacyLocalOnly)
        );
        let loud = failure.to_string();
        assert!(
            loud.contains("local/test-model -> connect_refused"),
            "{loud}"
        );
        assert!(loud.contains("cloud/gpt-test (privacy_local_only: local-only requests never reach a cloud target)"), "{loud}");
        let as_provider_error = failure.into_provider_error();
        assert_eq!(as_provider_error.kind(), ErrorKind::ConnectRefused);
        assert!(as_provider_error.message().contains("privacy_local_only"));
    }
    assert_eq!(
        cloud.request_count(),
        0,
        "the cloud upstream must never be contacted"
    );
    assert_eq!(records.len(), 3);
    assert!(
        records
            .all()
            .iter()
            .all(|r| r.served_by.is_none() && r.privacy == PrivacyClass::LocalOnly)
    );
    cloud.shutdown().await;
}

#[tokio::test]
async fn first_token_timeout_on_local_falls_back() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["too", " late"]).with_delays(Delays {
            before_first_chunk: Duration::from_secs(3),
            ..Delays::default()
        }),
    ))
    .await
    .unwrap();
    let cloud = cloud_upstream().await;
    let slots = vec![
        ollama_at(
            "local",
            &local.base_url(),
            Locality::Local,
            Duration::from_millis(200),
        ),
        cloud_slot(&cloud),
    ];
    let (router, _records) = build_router(chat_route(), slots);
    let stream = route(&router, &request("chat"))
        .await
        .expect("served by cloud");
    assert_eq!(stream.reason(), "fallback_after_timeout_first_token");
    assert_eq!(stream.attempts()[0].reason_code, "timeout_first_token");
    let (text, _, error) = drain(stream).await;
    assert_eq!(text, "From the cloud.");
    assert!(error.is_none());
    assert!(matches!(
        router.provider_status()[0].health,
        Health::Cooling {
            reason: ErrorKind::Timeout(TimeoutPhase::FirstToken),
            ..
        }
    ));
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn failure_after_the_first_byte_is_an_error_item_and_never_a_second_attempt() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["one", " two", " three", " four"]).with_fault(Fault::DropAfterChunks(2)),
    ))
    .await
    .unwrap();
    let cloud = cloud_upstream().await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, records) = build_router(chat_route(), slots);

    let stream = route(&router, &request("chat"))
        .await
        .expect("local starts");
    assert_eq!(&*stream.served_by().provider, "local");
    assert_eq!(stream.reason(), ReasonCode::Primary);
    let (text, _, error) = drain(stream).await;
    assert!(text.starts_with("one"), "{text}");
    let error = error.expect("the cut ends the stream with an error item");
    assert!(
        error
            .message()
            .contains("local/test-model failed before the end of its answer"),
        "{error}"
    );
    assert_eq!(
        cloud.request_count(),
        0,
        "no second attempt after the first byte"
    );
    assert_eq!(local.chat_requests().len(), 1);
    let record = records.last();
    assert!(matches!(record.outcome, RequestOutcome::Error(_)));
    assert_eq!(record.attempts.len(), 1);
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn rate_limited_target_cools_down_is_skipped_then_tried_again() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let cloud = cloud_upstream().await;
    local.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 0,
    }));
    let mut cfg = chat_route();
    cfg["health"] = json!({ "cooldowns_ms": [60_000, 300_000] });
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, records) = build_router(cfg, slots);
    // Cooldowns of minutes, crossed by moving the router's clock.
    let clock = Arc::new(ManualClock::new());
    let router = router.with_clock(clock.clone());

    // 1: 429 -> fallback, cooldown starts.
    let s = route(&router, &request("chat")).await.unwrap();
    assert_eq!(s.reason(), "fallback_after_rate_limited");
    drain(s).await;
    assert_eq!(local.chat_requests().len(), 1);
    assert!(matches!(
        router.provider_status()[0].health,
        Health::Cooling {
            reason: ErrorKind::RateLimited,
            ..
        }
    ));

    // 2: cooling -> skipped without a request, with the reason recorded.
    let s = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*s.served_by().provider, "cloud");
    assert_eq!(s.reason(), ReasonCode::Fallback);
    assert!(s.attempts().is_empty());
    drain(s).await;
    assert_eq!(
        local.chat_requests().len(),
        1,
        "a cooling target is not contacted"
    );
    let skipped = records.last().skipped;
    assert!(
        skipped
            .iter()
            .any(|t| &*t.target.provider == "local" && t.reason == ReasonCode::CoolingDown),
        "{skipped:?}"
    );
    let explained = router.explain(&request("chat"));
    assert_eq!(&*explained.targets[0].target.provider, "cloud");
    assert_eq!(explained.targets[1].reason, ReasonCode::CoolingDown);

    // 3: after the cooldown, half-open: tried again, and it serves.
    local.set_fault(None);
    clock.advance(Duration::from_secs(61));
    let s = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*s.served_by().provider, "local");
    assert_eq!(s.reason(), ReasonCode::Primary);
    let (text, _, _) = drain(s).await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(router.provider_status()[0].health, Health::Up);

    // Failing again: the back-off grows (second entry of the schedule).
    local.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 0,
    }));
    drain(route(&router, &request("chat")).await.unwrap()).await;
    clock.advance(Duration::from_secs(61));
    drain(route(&router, &request("chat")).await.unwrap()).await; // half-open try fails again
    match router.provider_status()[0].health {
        Health::Cooling { remaining_ms, .. } => assert!(remaining_ms > 200_000, "{remaining_ms}"),
        ref other => panic!("expected a longer cooldown, got {other:?}"),
    }
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn transient_errors_are_retried_on_the_same_target_boundedly() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    local.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model"] } },
                      "retry": { "max_retries": 2, "base_backoff_ms": 300 } });
    let (router, _records) = build_router(
        cfg,
        vec![ollama_at("local", &local.base_url(), Locality::Local, FT)],
    );

    // The fault clears right after the first try: the retry serves.
    let req = request("chat");
    let clear = async {
        eventually("first try", || local.chat_request_count() >= 1).await;
        local.set_fault(None);
    };
    let (routed, ()) = tokio::join!(route(&router, &req), clear);
    let s = routed.expect("the retry serves");
    assert_eq!(s.reason(), ReasonCode::Retry);
    assert_eq!(s.attempts().len(), 1);
    assert_eq!(s.attempts()[0].reason_code, "overloaded");
    drain(s).await;
    assert_eq!(local.chat_request_count(), 2);

    // A fault that stays: exactly 1 + max_retries tries, then the loud error.
    local.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let failure = route(&router, &request("chat"))
        .await
        .expect_err("still busy");
    assert_eq!(failure.kind(), ErrorKind::Overloaded);
    assert_eq!(failure.attempts.len(), 3);
    assert_eq!(local.chat_request_count(), 5);
    local.shutdown().await;
}

/// Each attempt's `duration_ms` in the decision record covers that attempt alone, so the
/// attempts add up to the request. The queue wait belongs to the first try on a target:
/// after a retry, the serving attempt counted the queue wait a second time (queue wait +
/// its own time to first token), though the failed first try already held it.
#[tokio::test]
async fn a_retry_that_serves_does_not_count_the_queue_wait_again() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c", "d"]).with_chunk_delay(Duration::from_millis(100)),
    ))
    .await
    .unwrap();
    let mut slot = ollama_at("local", &local.base_url(), Locality::Local, FT);
    slot.max_concurrency = 1;
    slot.max_queue = 1;
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model"] } },
                      "retry": { "max_retries": 1, "base_backoff_ms": 150 } });
    let (router, records) = build_router(cfg, vec![slot]);

    // The only slot is busy for about 400 ms; the next request waits for it, then its
    // first try gets a 503 and its retry serves.
    let held = route(&router, &request("chat")).await.unwrap();
    local.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let req = request("chat");
    let release = async {
        drain(held).await;
        eventually("the queued request's first try", || {
            local.chat_request_count() >= 2
        })
        .await;
        local.set_fault(None);
    };
    let (routed, ()) = tokio::join!(route(&router, &req), release);
    drain(routed.expect("the retry serves")).await;
    let record = records.last();
    assert_eq!(record.attempts.len(), 2, "{:?}", record.attempts);
    let (failed, served) = (&record.attempts[0], &record.attempts[1]);
    assert!(
        failed.duration_ms >= 250,
        "the first try includes the queue wait: {failed:?}"
    );
    assert!(
        served.duration_ms < 200,
        "the serving retry counts only its own time, not the queue wait again: {served:?}"
    );
    local.shutdown().await;
}

/// Review: a fallback target that serves on its own retry is still a fallback. README
/// (`x-switchyard-route-reason`: "why it served (`primary`, `fallback`,
/// `fallback_after_<code>`, ...)"), `ReasonCode::FallbackAfter` ("A later target served after
/// an error of this kind on an earlier one") and `switchyard_fallbacks_total` ("requests
/// served by a target other than the first planned one (`fallback_after_<code>`, ...)"):
/// the earlier target's failure is why this target serves. Today the reason is `retry`, so
/// the header, the decision record and the fallback counter lose the fallback and its cause.
#[tokio::test]
async fn a_fallback_served_on_its_own_retry_is_recorded_as_fallback_after_the_first_error() {
    let cloud = cloud_upstream().await;
    cloud.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
                      "retry": { "max_retries": 1, "base_backoff_ms": 300 } });
    let (router, records) = build_router(cfg, vec![refused_local(), cloud_slot(&cloud)]);

    // The local target refuses (not retried); the cloud is busy once, then serves its retry.
    let req = request("chat");
    let clear = async {
        eventually("first cloud try", || cloud.chat_request_count() >= 1).await;
        cloud.set_fault(None);
    };
    let (routed, ()) = tokio::join!(route(&router, &req), clear);
    let s = routed.expect("the cloud's retry serves");
    assert_eq!(s.served_by().to_string(), "cloud/gpt-test");
    assert_eq!(s.attempts().len(), 2, "local refused, cloud busy once");
    assert_eq!(s.attempts()[0].reason_code, "connect_refused");
    assert_eq!(
        s.reason(),
        "fallback_after_connect_refused",
        "the served target is a fallback after the local target refused"
    );
    drain(s).await;
    assert_eq!(records.last().reason, "fallback_after_connect_refused");
    cloud.shutdown().await;
}

#[tokio::test]
async fn errors_that_are_not_fallback_eligible_do_not_fall_back() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    local.set_fault(Some(Fault::HttpError {
        status: 400,
        message: "invalid message format".into(),
    }));
    let cloud = cloud_upstream().await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, _records) = build_router(chat_route(), slots);
    let failure = route(&router, &request("chat"))
        .await
        .expect_err("no fallback");
    assert_eq!(failure.kind(), ErrorKind::InvalidRequest);
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| &*s.target.provider == "cloud" && s.reason == ReasonCode::NotFallbackEligible)
    );
    assert_eq!(cloud.request_count(), 0);
    // A bad request says nothing about the target's health.
    assert_eq!(router.provider_status()[0].health, Health::Up);
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_exact_target_is_strict_and_the_cloud_switch_stops_cloud_fallback() {
    let cloud = cloud_upstream().await;
    let (router, _r) = build_router(chat_route(), vec![refused_local(), cloud_slot(&cloud)]);
    let failure = route(&router, &request("local/test-model"))
        .await
        .expect_err("strict");
    assert_eq!(failure.kind(), ErrorKind::ConnectRefused);
    assert_eq!(cloud.request_count(), 0);

    let mut cfg = chat_route();
    cfg["policy"] = json!({ "cloud_fallback": false });
    let (router, _r) = build_router(cfg, vec![refused_local(), cloud_slot(&cloud)]);
    assert!(router.cloud_fallback_disabled());
    let failure = route(&router, &request("chat"))
        .await
        .expect_err("no cloud fallback");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::CloudFallbackDisabled)
    );
    assert!(failure.to_string().contains("cloud fallback is disabled"));
    // A cloud target asked for directly is not a fallback.
    let s = route(&router, &request("cloud/gpt-test"))
        .await
        .expect("direct cloud");
    assert_eq!(s.reason(), ReasonCode::Primary);
    drain(s).await;
    assert_eq!(cloud.chat_request_count(), 1);
    cloud.shutdown().await;
}

/// The switch the binary sets from `SWITCHYARD_NO_CLOUD=1` (the router reads no
/// environment).
#[tokio::test]
async fn the_environment_switch_stops_cloud_fallback() {
    let cloud = cloud_upstream().await;
    let mut config = config(chat_route());
    config.no_cloud = true;
    let router = switchyard_router::Router::new(
        config,
        vec![refused_local(), cloud_slot(&cloud)],
        Arc::new(switchyard_router::MemoryLedger::new()),
    )
    .unwrap();
    assert!(router.cloud_fallback_disabled());
    let failure = route(&router, &request("chat"))
        .await
        .expect_err("no cloud fallback");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::CloudFallbackDisabled)
    );
    assert_eq!(cloud.request_count(), 0);
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_full_queue_overflows_to_the_next_target_or_says_when_to_retry() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c", "d"]).with_chunk_delay(Duration::from_millis(100)),
    ))
    .await
    .unwrap();
    let cloud = cloud_upstream().await;
    let mut local_slot = ollama_at("local", &local.base_url(), Locality::Local, FT);
    local_slot.max_concurrency = 1;
    local_slot.max_queue = 0;
    let (router, _r) = build_router(chat_route(), vec![local_slot, cloud_slot(&cloud)]);

    let held = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*held.served_by().provider, "local");
    assert_eq!(router.provider_status()[0].in_flight, 1);

    let s = route(&router, &request("chat"))
        .await
        .expect("overflow to cloud");
    assert_eq!(&*s.served_by().provider, "cloud");
    assert_eq!(s.reason(), ReasonCode::OverflowQueueFull);
    assert_eq!(s.attempts()[0].reason_code, "queue_full");
    drain(s).await;

    // Nothing to overflow to: a QueueFull error with a retry hint.
    let failure = route(&router, &request("local/test-model"))
        .await
        .expect_err("full");
    assert_eq!(failure.kind(), ErrorKind::QueueFull);
    let err = failure.into_provider_error();
    assert!(err.retry_after().is_some());
    // A full queue is load, not ill health.
    assert_eq!(router.provider_status()[0].health, Health::Up);

    let (text, _, _) = drain(held).await;
    assert_eq!(text, "abcd");
    assert_eq!(
        router.provider_status()[0].in_flight,
        0,
        "the slot is released at the end"
    );
    assert_eq!(local.chat_request_count(), 1);
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn the_overflow_rule_moves_to_the_next_target_when_queue_is_deep_and_ttft_slow() {
    let slow_start = Script::text(["x", "y", "z"]).with_delays(Delays {
        before_first_chunk: Duration::from_millis(120),
        between_chunks: Duration::from_millis(100),
        ..Delays::default()
    });
    let local = TestUpstream::start(UpstreamConfig::default().script("test-model", slow_start))
        .await
        .unwrap();
    let cloud = cloud_upstream().await;
    let mut local_slot = ollama_at("local", &local.base_url(), Locality::Local, FT);
    local_slot.max_concurrency = 1;
    local_slot.max_queue = 4;
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"],
                                            "overflow": { "queue_depth": 0, "ttft_p50_ms": 50 } } } });
    let (router, _r) = build_router(cfg, vec![local_slot, cloud_slot(&cloud)]);

    // Holds the only slot; its time to first token (~120 ms) is above T.
    let held = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*held.served_by().provider, "local");
    assert!(router.provider_status()[0].ttft_p50_ms.unwrap() >= 100);

    // One request waits in the queue (depth 1 > N = 0).
    let waiting = tokio::spawn({
        let router = router.clone();
        async move {
            route(&router, &request("chat"))
                .await
                .map(|s| s.served_by().provider.clone())
        }
    });
    eventually("a queued request", || {
        router.provider_status()[0].queued == 1
    })
    .await;

    let explained = router.explain(&request("chat"));
    assert_eq!(&*explained.targets[0].target.provider, "cloud");
    assert_eq!(explained.targets[0].reason, ReasonCode::OverflowQueueDepth);
    let s = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*s.served_by().provider, "cloud");
    assert_eq!(s.reason(), ReasonCode::OverflowQueueDepth);
    drain(s).await;

    drain(held).await;
    let waited = tokio::time::timeout(LIMIT, waiting)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        &*waited, "local",
        "the queued request is served by local once the slot frees"
    );
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_balanced_group_picks_the_least_loaded_member_and_skips_cooling_ones() {
    let slow = Script::text(["1", "2", "3"]).with_chunk_delay(Duration::from_millis(80));
    let a = TestUpstream::start(UpstreamConfig::default().script("test-model", slow.clone()))
        .await
        .unwrap();
    let b = TestUpstream::start(UpstreamConfig::default().script("test-model", slow))
        .await
        .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": [ { "group": ["lan1/test-model", "lan2/test-model"] } ] } },
                      "health": { "cooldowns_ms": [60000] }, "retry": { "max_retries": 0 } });
    let slots = vec![
        ollama_at("lan1", &a.base_url(), Locality::Lan, FT),
        ollama_at("lan2", &b.base_url(), Locality::Lan, FT),
    ];
    let (router, _r) = build_router(cfg, slots);
    let first = route(&router, &request("chat")).await.unwrap();
    let second = route(&router, &request("chat")).await.unwrap();
    assert_eq!(first.reason(), ReasonCode::GroupBalanced);
    assert_ne!(
        first.served_by().provider,
        second.served_by().provider,
        "spread by load"
    );
    drain(first).await;
    drain(second).await;
    assert_eq!(a.chat_request_count(), 1);
    assert_eq!(b.chat_request_count(), 1);

    // lan1 fails and cools down: every request goes to lan2 without trying lan1.
    a.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "runner crashed".into(),
    }));
    drain(route(&router, &request("chat")).await.unwrap()).await;
    for _ in 0..3 {
        let s = route(&router, &request("chat")).await.unwrap();
        assert_eq!(&*s.served_by().provider, "lan2");
        drain(s).await;
    }
    assert!(a.chat_request_count() <= 2);
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn active_probes_keep_up_and_down_current() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model"] } },
                      "health": { "probe_interval_ms": 50 } });
    let (router, _r) = build_router(
        cfg,
        vec![ollama_at("local", &local.base_url(), Locality::Local, FT)],
    );
    let probes = router.start_probes().expect("probes configured");
    local.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "down".into(),
    }));
    eventually("probe marks down", || {
        matches!(router.provider_status()[0].health, Health::Down { .. })
    })
    .await;
    assert!(router.health().await.is_err());
    local.set_fault(None);
    eventually("probe marks up", || {
        router.provider_status()[0].health == Health::Up
    })
    .await;
    assert!(router.health().await.is_ok());
    drop(router);
    tokio::time::timeout(LIMIT, probes)
        .await
        .expect("probes stop with the router")
        .unwrap();
    local.shutdown().await;
}

#[tokio::test]
async fn the_router_is_a_provider_and_resolves_discovered_model_names() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let cloud = cloud_upstream().await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, records) = build_router(chat_route(), slots);

    let answer = collect_response(Provider::chat(&router, &request("chat")).await.unwrap())
        .await
        .unwrap();
    assert_eq!(answer.content, DEFAULT_TEXT);

    // A bare upstream name, found by discovery.
    let s = route(&router, &request("test-model"))
        .await
        .expect("discovered");
    assert_eq!(s.served_by().to_string(), "local/test-model");
    drain(s).await;

    let models = Provider::models(&router).await.unwrap();
    let ids: Vec<&str> = models.iter().map(|m| m.id.as_str()).collect();
    assert!(
        ids.contains(&"chat")
            && ids.contains(&"local/test-model")
            && ids.contains(&"cloud/gpt-test"),
        "{ids:?}"
    );

    let err = Provider::chat(&router, &request("nope"))
        .await
        .err()
        .expect("unknown model");
    assert_eq!(err.kind(), ErrorKind::ModelNotFound);
    assert!(err.message().contains("model `nope` not found"), "{err}");
    assert!(
        err.message().contains("local/test-model") && err.message().contains("chat"),
        "{err}"
    );
    assert_eq!(records.len(), 3, "failures get a record too");
    assert_eq!(cloud.chat_request_count(), 0);
    let _ = TimeoutPhase::FirstToken;
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn every_request_gets_one_record_also_when_the_caller_goes_away() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c"]).with_delays(Delays {
            before_first_chunk: Duration::from_millis(600),
            between_chunks: Duration::from_millis(200),
            ..Delays::default()
        }),
    ))
    .await
    .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model"] } } });
    let (router, records) = build_router(
        cfg,
        vec![ollama_at("local", &local.base_url(), Locality::Local, FT)],
    );

    // Dropped while waiting for the first event.
    let gave_up =
        tokio::time::timeout(Duration::from_millis(100), router.route(&request("chat"))).await;
    assert!(gave_up.is_err());
    assert_eq!(records.len(), 1);
    assert_eq!(records.last().outcome, RequestOutcome::Cancelled);
    assert_eq!(
        router.provider_status()[0].in_flight,
        0,
        "the slot is released"
    );

    // Dropped after the first event: cancelled, the slot released, the upstream told.
    let mut s = route(&router, &request("chat")).await.unwrap();
    use futures::StreamExt;
    assert!(s.next().await.unwrap().is_ok());
    drop(s);
    assert_eq!(records.len(), 2);
    assert_eq!(records.last().outcome, RequestOutcome::Cancelled);
    assert_eq!(router.provider_status()[0].in_flight, 0);
    eventually("the upstream sees the abort", || {
        local.aborted_streams() >= 1
    })
    .await;
    local.shutdown().await;
}

#[tokio::test]
async fn an_upstream_retry_after_longer_than_the_schedule_is_honoured() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    local.set_fault(Some(Fault::RateLimited {
        retry_after_secs: 30,
    }));
    let mut cfg = chat_route();
    cfg["health"] = json!({ "cooldowns_ms": [100] });
    let cloud = cloud_upstream().await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, _r) = build_router(cfg, slots);
    drain(route(&router, &request("chat")).await.unwrap()).await;
    match router.provider_status()[0].health {
        Health::Cooling {
            remaining_ms,
            reason,
            ..
        } => {
            assert_eq!(reason, ErrorKind::RateLimited);
            assert!(remaining_ms > 20_000, "{remaining_ms}");
        }
        ref other => panic!("expected cooling, got {other:?}"),
    }
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn after_a_cooldown_one_request_tries_the_target_while_others_go_on() {
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["late"]).with_delays(Delays {
            before_first_chunk: Duration::from_millis(800),
            ..Delays::default()
        }),
    ))
    .await
    .unwrap();
    let cloud = cloud_upstream().await;
    let mut cfg = chat_route();
    cfg["health"] = json!({ "cooldowns_ms": [60_000] });
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_slot(&cloud),
    ];
    let (router, _r) = build_router(cfg, slots);
    let clock = Arc::new(ManualClock::new());
    let router = router.with_clock(clock.clone());

    local.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "crashed".into(),
    }));
    drain(route(&router, &request("chat")).await.unwrap()).await;
    local.set_fault(None);
    clock.advance(Duration::from_secs(61));

    // The half-open trial...
    let trial = tokio::spawn({
        let router = router.clone();
        async move {
            route(&router, &request("chat"))
                .await
                .map(|s| s.served_by().provider.clone())
        }
    });
    eventually("the trial is in flight", || {
        router.provider_status()[0].in_flight == 1
    })
    .await;
    // ...while it runs, others do not pile onto the target.
    let other = route(&router, &request("chat")).await.unwrap();
    assert_eq!(&*other.served_by().provider, "cloud");
    drain(other).await;
    let trial = tokio::time::timeout(LIMIT, trial)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(&*trial, "local");
    assert_eq!(router.provider_status()[0].health, Health::Up);
    assert_eq!(local.chat_request_count(), 2);
    local.shutdown().await;
    cloud.shutdown().await;
}

mod recorder {
    //! A minimal `metrics` recorder: the last value (gauges), sum (counters) or sample count
    //! (histograms) per `name{label=value,...}`.
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata,
        Recorder, SharedString, Unit,
    };

    #[derive(Debug, Default, Clone)]
    pub(crate) struct Captured(Arc<Mutex<BTreeMap<String, f64>>>);

    /// Runs `work` on a current-thread runtime with a fresh recorder: its output and what
    /// it recorded.
    pub(crate) fn capture<T>(work: impl std::future::Future<Output = T>) -> (T, Captured) {
        let captured = Captured::default();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let output = metrics::with_local_recorder(&captured, || runtime.block_on(work));
        (output, captured)
    }

    struct Handle(String, Captured);

    impl Captured {
        fn handle(&self, key: &Key) -> Arc<Handle> {
            let mut labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            labels.sort();
            Arc::new(Handle(
                format!("{}{{{}}}", key.name(), labels.join(",")),
                self.clone(),
            ))
        }

        fn update(&self, key: &str, f: impl FnOnce(&mut f64)) {
            f(self.0.lock().unwrap().entry(key.to_owned()).or_default());
        }

        pub(crate) fn get(&self, key: &str) -> Option<f64> {
            self.0.lock().unwrap().get(key).copied()
        }

        pub(crate) fn keys(&self) -> Vec<String> {
            self.0.lock().unwrap().keys().cloned().collect()
        }
    }

    impl CounterFn for Handle {
        fn increment(&self, value: u64) {
            self.1.update(&self.0, |v| *v += value as f64);
        }
        fn absolute(&self, value: u64) {
            self.1.update(&self.0, |v| *v = value as f64);
        }
    }

    impl GaugeFn for Handle {
        fn increment(&self, value: f64) {
            self.1.update(&self.0, |v| *v += value);
        }
        fn decrement(&self, value: f64) {
            self.1.update(&self.0, |v| *v -= value);
        }
        fn set(&self, value: f64) {
            self.1.update(&self.0, |v| *v = value);
        }
    }

    impl HistogramFn for Handle {
        fn record(&self, _value: f64) {
            self.1.update(&self.0, |v| *v += 1.0);
        }
    }

    impl Recorder for Captured {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.handle(key))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.handle(key))
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::from_arc(self.handle(key))
        }
    }
}

#[test]
fn every_served_request_counts_once_under_its_route() {
    use switchyard_router::metrics as m;
    let ((), captured) = recorder::capture(async {
        let cloud = cloud_upstream().await;
        let (router, _r) = build_router(
            json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] },
                                    "other": { "targets": ["cloud/gpt-test"] } } }),
            vec![cloud_slot(&cloud)],
        );
        for model in ["chat", "chat", "other", "chat", "cloud/gpt-test"] {
            let (text, _, error) = drain(route(&router, &request(model)).await.unwrap()).await;
            assert_eq!((text.as_str(), error), ("From the cloud.", None));
        }
        cloud.shutdown().await;
    });
    let count = |route: &str| {
        captured.get(&format!(
            "{}{{outcome=ok,route={route},target=cloud/gpt-test}}",
            m::REQUESTS_TOTAL
        ))
    };
    assert_eq!(count("chat"), Some(3.0), "{:?}", captured.keys());
    assert_eq!(count("other"), Some(1.0), "{:?}", captured.keys());
    assert_eq!(count("direct"), Some(1.0), "{:?}", captured.keys());
}

#[test]
fn the_router_records_the_contracted_metrics() {
    use switchyard_router::metrics as m;
    let ((), captured) = recorder::capture(async {
        let cloud = cloud_upstream().await;
        let (router, _r) = build_router(chat_route(), vec![refused_local(), cloud_slot(&cloud)]);
        drain(route(&router, &request("chat")).await.unwrap()).await;
        cloud.shutdown().await;
    });
    let keys = captured.keys();
    let has = |k: &str| {
        captured
            .get(k)
            .unwrap_or_else(|| panic!("no {k} in {keys:?}"))
    };
    assert_eq!(
        has(&format!(
            "{}{{outcome=ok,route=chat,target=cloud/gpt-test}}",
            m::REQUESTS_TOTAL
        )),
        1.0
    );
    assert_eq!(
        has(&format!(
            "{}{{reason=fallback_after_connect_refused}}",
            m::FALLBACKS_TOTAL
        )),
        1.0
    );
    assert_eq!(
        has(&format!("{}{{target=cloud/gpt-test}}", m::TTFT_SECONDS)),
        1.0
    );
    assert_eq!(
        has(&format!(
            "{}{{target=cloud/gpt-test}}",
            m::REQUEST_DURATION_SECONDS
        )),
        1.0
    );
    assert_eq!(
        has(&format!(
            "{}{{kind=prompt,target=cloud/gpt-test}}",
            m::TOKENS_TOTAL
        )),
        12.0
    );
    assert_eq!(
        has(&format!(
            "{}{{kind=completion,target=cloud/gpt-test}}",
            m::TOKENS_TOTAL
        )),
        5.0
    );
    assert!((has(&format!("{}{{provider=cloud}}", m::SPEND_USD_TOTAL)) - 0.000013).abs() < 1e-12);
    assert_eq!(has(&format!("{}{{provider=cloud}}", m::IN_FLIGHT)), 0.0);
    assert_eq!(has(&format!("{}{{provider=local}}", m::PROVIDER_UP)), 0.0);
    assert_eq!(has(&format!("{}{{provider=cloud}}", m::PROVIDER_UP)), 1.0);
    let _ = m::QUEUE_DEPTH;
}

#[tokio::test]
async fn a_cooling_target_is_still_tried_when_nothing_else_is_left() {
    let local = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model"] } },
                      "retry": { "max_retries": 0 } });
    let (router, records) = build_router(
        cfg,
        vec![ollama_at("local", &local.base_url(), Locality::Local, FT)],
    );
    local.set_fault(Some(Fault::HttpError {
        status: 502,
        message: "bad gateway".into(),
    }));
    let failure = route(&router, &request("chat")).await.expect_err("502");
    assert_eq!(failure.kind(), ErrorKind::Upstream);
    assert!(matches!(
        router.provider_status()[0].health,
        Health::Cooling { .. }
    ));
    local.set_fault(None);
    let s = route(&router, &request("chat")).await.expect("last resort");
    assert_eq!(s.reason(), ReasonCode::CoolingLastResort);
    let (text, _, _) = drain(s).await;
    assert_eq!(text, DEFAULT_TEXT);
    assert_eq!(records.last().reason, ReasonCode::CoolingLastResort);
    assert_eq!(
        router.provider_status()[0].health,
        Health::Up,
        "success ends the cooldown"
    );
    local.shutdown().await;
}

#[tokio::test]
async fn a_failing_local_member_of_a_group_does_not_fall_back_to_its_cloud_member() {
    let cloud = cloud_upstream().await;
    let cfg = json!({ "routes": { "pool": { "targets": [ { "group": ["local/test-model", "cloud/gpt-test"] } ] } },
                      "policy": { "cloud_fallback": false },
                      "retry": { "max_retries": 0 } });
    let (router, records) = build_router(cfg, vec![refused_local(), cloud_slot(&cloud)]);
    // Equal load and no timings: the local member is first.
    let explained = router.explain(&request("pool"));
    assert_eq!(&*explained.targets[0].target.provider, "local");
    let failure = route(&router, &request("pool"))
        .await
        .expect_err("the cloud member would be a fallback");
    assert_eq!(failure.kind(), ErrorKind::ConnectRefused, "{failure}");
    assert!(
        failure.skipped.iter().any(
            |s| &*s.target.provider == "cloud" && s.reason == ReasonCode::CloudFallbackDisabled
        ),
        "{failure:?}"
    );
    assert_eq!(cloud.request_count(), 0);
    assert_eq!(records.len(), 1);

    // With cloud fallback on, the cloud member takes over.
    let cfg = json!({ "routes": { "pool": { "targets": [ { "group": ["local/test-model", "cloud/gpt-test"] } ] } },
                      "retry": { "max_retries": 0 } });
    let (router, _r) = build_router(cfg, vec![refused_local(), cloud_slot(&cloud)]);
    let s = route(&router, &request("pool")).await.expect("fallback");
    assert_eq!(&*s.served_by().provider, "cloud");
    drain(s).await;
    cloud.shutdown().await;
}

#[test]
fn a_failure_after_the_first_byte_marks_the_provider_down_in_metrics() {
    use switchyard_router::metrics as m;
    let (status, captured) = recorder::capture(async {
        let local = TestUpstream::start(UpstreamConfig::default().script(
            "test-model",
            Script::text(["one", " two", " three"]).with_fault(Fault::DropAfterChunks(1)),
        ))
        .await
        .unwrap();
        let (router, _r) = build_router(
            json!({ "routes": { "chat": { "targets": ["local/test-model"] } } }),
            vec![ollama_at("local", &local.base_url(), Locality::Local, FT)],
        );
        let (_, _, error) = drain(route(&router, &request("chat")).await.unwrap()).await;
        assert!(error.is_some(), "the cut is an error item");
        local.shutdown().await;
        router.provider_status()[0].health.clone()
    });
    assert!(matches!(status, Health::Cooling { .. }), "{status:?}");
    assert_eq!(
        captured.get(&format!("{}{{provider=local}}", m::PROVIDER_UP)),
        Some(0.0),
        "the gauge agrees with the health"
    );
}

/// Issue 18: a caller whose tool list drops from ten tools to two is warned about and
/// counted, once; a call of a tool the request did not offer is counted, whether it is
/// passed to the client or dropped (`drop_unknown_tool_calls`).
#[test]
fn tool_set_shrinks_and_unknown_tool_calls_are_counted_per_caller() {
    use switchyard_core::ToolSpec;
    use switchyard_router::metrics as m;
    let offering = |n: usize| {
        let mut r = request_from("chat", "agent");
        r.tools = (0..n)
            .map(|i| ToolSpec {
                name: format!("tool_{i}"),
                description: None,
                parameters: json!({ "type": "object" }),
            })
            .collect();
        r
    };
    let ((), captured) = recorder::capture(async {
        let cloud = cloud_upstream().await;
        let caller = TestUpstream::start(UpstreamConfig::empty().model_with_script(
            "caller",
            Script::tool_calls(vec![switchyard_testkit::ScriptedCall::new(
                "rm_rf",
                json!({}),
            )]),
        ))
        .await
        .unwrap();
        let (router, _r) = build_router(
            json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] },
                                    "calls": { "targets": ["local/caller"] },
                                    "dropped": { "targets": ["local/caller"],
                                                 "drop_unknown_tool_calls": true } } }),
            vec![
                cloud_slot(&cloud),
                ollama_at("local", &caller.base_url(), Locality::Local, FT),
            ],
        );
        for n in [10, 10, 10, 2, 2] {
            drain(route(&router, &offering(n)).await.unwrap()).await;
        }
        let mut calls = offering(2);
        calls.model = "calls".to_owned();
        drain(route(&router, &calls).await.unwrap()).await;
        // Dropped from the answer, still counted.
        calls.model = "dropped".to_owned();
        drain(route(&router, &calls).await.unwrap()).await;
        cloud.shutdown().await;
        caller.shutdown().await;
    });
    let key = format!("{}{{caller=agent}}", m::TOOL_SET_SHRUNK_TOTAL);
    assert_eq!(captured.get(&key), Some(1.0), "{:?}", captured.keys());
    let key = format!("{}{{caller=agent}}", m::UNKNOWN_TOOL_CALLS_TOTAL);
    assert_eq!(captured.get(&key), Some(2.0), "{:?}", captured.keys());
}
