//! Budgets, the spend ledgers under concurrency, and reloads while requests are in flight.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::json;
use switchyard_core::{ErrorKind, Locality, PrivacyClass};
use switchyard_router::{BudgetWindow, MemoryLedger, ReasonCode, RedbLedger, Router, SpendLedger};
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

const FT: Duration = Duration::from_secs(2);

async fn priced_cloud(usage: (u32, u32)) -> TestUpstream {
    TestUpstream::start(UpstreamConfig::empty().model_with_script(
        "gpt-test",
        Script::text(["paid"]).with_usage(usage.0, usage.1),
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn an_exhausted_budget_removes_cloud_targets_and_no_cloud_call_is_made() {
    // 12 prompt tokens at $100k/Mtok = $1.20 per request; cap $1 per day.
    let cloud = priced_cloud((12, 0)).await;
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
                      "policy": { "budget": { "usd_per_day": 1.0 } },
                      "retry": { "max_retries": 0 } });
    let slots = refused_local_and_priced_cloud(&cloud.openai_base_url(), 100_000.0, FT);
    let (router, records) = build_router(cfg, slots);

    let s = route(&router, &request("chat"))
        .await
        .expect("first request is within budget");
    assert_eq!(&*s.served_by().provider, "cloud");
    drain(s).await;
    assert_eq!(records.last().cost_micro_usd, 1_200_000);
    assert_eq!(
        router
            .ledger()
            .spent(None, BudgetWindow::Day, SystemTime::now()),
        1_200_000
    );

    let explained = router.explain(&request("chat"));
    let cloud_entry = explained
        .targets
        .iter()
        .find(|t| &*t.target.provider == "cloud")
        .unwrap();
    assert!(!cloud_entry.included);
    assert_eq!(cloud_entry.reason, ReasonCode::BudgetExhausted);

    let failure = route(&router, &request("chat"))
        .await
        .expect_err("local refused, cloud over budget");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::BudgetExhausted)
    );
    let failure = route(&router, &request("cloud/gpt-test"))
        .await
        .expect_err("over budget");
    assert_eq!(failure.kind(), ErrorKind::BudgetExhausted);
    assert!(
        failure
            .to_string()
            .contains("global daily cap of $1.00 reached"),
        "{failure}"
    );
    assert_eq!(
        cloud.chat_request_count(),
        1,
        "no cloud call once the cap is reached"
    );
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_callers_own_cap_stops_only_that_caller() {
    let cloud = priced_cloud((10, 0)).await;
    let cfg = json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] } },
                      "callers": { "intern": { "budget": { "usd_per_month": 0.5 } }, "boss": {} } });
    let slots = vec![openai_at(
        "cloud",
        &cloud.openai_base_url(),
        Locality::Cloud,
        &[("gpt-test", 100_000.0, 0.0)],
    )];
    let (router, _r) = build_router(cfg, slots);
    drain(
        route(&router, &request_from("chat", "intern"))
            .await
            .unwrap(),
    )
    .await; // $1.00
    let failure = route(&router, &request_from("chat", "intern"))
        .await
        .expect_err("intern over cap");
    assert_eq!(failure.kind(), ErrorKind::BudgetExhausted);
    assert!(
        failure.to_string().contains("caller `intern` monthly cap"),
        "{failure}"
    );
    drain(
        route(&router, &request_from("chat", "boss"))
            .await
            .expect("boss has no cap"),
    )
    .await;
    assert_eq!(cloud.chat_request_count(), 2);
    let at = SystemTime::now();
    assert_eq!(
        router
            .ledger()
            .spent(Some("intern"), BudgetWindow::Month, at),
        1_000_000
    );
    assert_eq!(
        router.ledger().spent(None, BudgetWindow::Month, at),
        2_000_000
    );
    cloud.shutdown().await;
}

async fn hammer(ledger: Arc<dyn SpendLedger>, cloud: &TestUpstream) -> (Router, Arc<Records>) {
    // 7 * 0.3 + 3 * 0.7 = 4.2 micro-dollars, rounded up to 5 per request.
    let cfg = json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] } } });
    let mut slot = openai_at(
        "cloud",
        &cloud.openai_base_url(),
        Locality::Cloud,
        &[("gpt-test", 0.3, 0.7)],
    );
    slot.max_concurrency = 16;
    slot.max_queue = 100;
    let records = Arc::new(Records::default());
    let router = Router::new(common::config(cfg), vec![slot], ledger)
        .unwrap()
        .with_observer(records.clone());
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let router = router.clone();
            tokio::spawn(async move {
                let caller = if i % 3 == 0 { "a" } else { "b" };
                let s = route(&router, &request_from("chat", caller)).await.unwrap();
                let (text, _, err) = drain(s).await;
                assert_eq!(text, "paid");
                assert!(err.is_none());
            })
        })
        .collect();
    for t in tasks {
        tokio::time::timeout(LIMIT, t).await.unwrap().unwrap();
    }
    (router, records)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_never_lose_a_cent_and_a_restart_keeps_spend() {
    let cloud = priced_cloud((7, 3)).await;
    let at = SystemTime::now();

    let memory: Arc<dyn SpendLedger> = Arc::new(MemoryLedger::new());
    let (router, records) = hammer(memory.clone(), &cloud).await;
    assert_eq!(records.len(), 60);
    assert!(records.all().iter().all(|r| r.cost_micro_usd == 5));
    assert_eq!(memory.spent(None, BudgetWindow::Day, at), 300);
    assert_eq!(memory.spent(Some("a"), BudgetWindow::Day, at), 100);
    assert_eq!(memory.spent(Some("b"), BudgetWindow::Month, at), 200);
    drop(router);

    let dir = std::env::temp_dir().join(format!("sy-router-budget-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spend.redb");
    let _ = std::fs::remove_file(&path);
    {
        let persistent: Arc<dyn SpendLedger> = Arc::new(RedbLedger::open(&path).unwrap());
        let (router, _records) = hammer(persistent.clone(), &cloud).await;
        assert_eq!(persistent.spent(None, BudgetWindow::Day, at), 300);
        drop(router);
    }
    // "Restart": a new ledger on the same file.
    let reopened = RedbLedger::open(&path).unwrap();
    assert_eq!(reopened.spent(None, BudgetWindow::Day, at), 300);
    assert_eq!(reopened.spent(Some("a"), BudgetWindow::Month, at), 100);
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(cloud.chat_request_count(), 120);
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_reload_while_requests_are_in_flight_cannot_send_local_only_to_the_cloud() {
    // `local` is busy with one slow answer; `edge` is declared LAN in the first config.
    let local = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["s", "l", "o", "w"]).with_chunk_delay(Duration::from_millis(100)),
    ))
    .await
    .unwrap();
    let edge = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slots = |edge_locality: Locality| {
        let mut l = ollama_at("local", &local.base_url(), Locality::Local, FT);
        l.max_concurrency = 1;
        l.max_queue = 4;
        l.queue_timeout = Duration::from_millis(400);
        vec![l, ollama_at("edge", &edge.base_url(), edge_locality, FT)]
    };
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "edge/test-model"] } },
                      "callers": { "laptop": { "privacy": "local-only" } } });
    let (gen1, records) = build_router(cfg.clone(), slots(Locality::Lan));

    let held = route(&gen1, &request("chat")).await.unwrap();
    assert_eq!(&*held.served_by().provider, "local");

    // A local-only request planned by generation 1: [local, edge]; it waits for local.
    let explained = gen1.explain(&request_from("chat", "laptop"));
    assert!(
        explained.targets.iter().all(|t| t.included),
        "{explained:?}"
    );
    let in_flight = tokio::spawn({
        let gen1 = gen1.clone();
        async move { route(&gen1, &request_from("chat", "laptop")).await }
    });
    eventually("the local-only request is queued", || {
        gen1.provider_status()[0].queued == 1
    })
    .await;

    // A refused reload changes nothing.
    let mut bad = cfg.clone();
    bad["routes"]["broken"] = json!({ "targets": ["nowhere/x"] });
    assert!(
        gen1.reload(common::config(bad), slots(Locality::Cloud))
            .is_err()
    );

    // The operator learns `edge` is really a cloud endpoint and reloads.
    let gen2 = gen1
        .reload(common::config(cfg), slots(Locality::Cloud))
        .unwrap();
    // Live state carried over: the held request still counts in the new generation.
    assert_eq!(gen2.provider_status()[0].in_flight, 1);
    assert_eq!(gen2.provider_status()[0].queued, 1);

    // The queued request times out on local and would fall back to `edge`, which it planned
    // as LAN: the dispatch check sees the newest locality and stops it.
    let failure = tokio::time::timeout(LIMIT, in_flight)
        .await
        .unwrap()
        .unwrap()
        .expect_err("must not reach edge");
    assert_eq!(
        failure.kind(),
        ErrorKind::Timeout(switchyard_core::TimeoutPhase::Queue)
    );
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| &*s.target.provider == "edge" && s.reason == ReasonCode::PrivacyLocalOnly),
        "{failure}"
    );
    assert_eq!(
        edge.request_count(),
        0,
        "the cloud upstream was never contacted"
    );
    assert!(
        records
            .all()
            .iter()
            .any(|r| r.privacy == PrivacyClass::LocalOnly && r.served_by.is_none())
    );

    // The new generation plans it out from the start.
    let explained = gen2.explain(&request_from("chat", "laptop"));
    let edge_entry = explained
        .targets
        .iter()
        .find(|t| &*t.target.provider == "edge")
        .unwrap();
    assert!(!edge_entry.included);
    assert_eq!(edge_entry.reason, ReasonCode::PrivacyLocalOnly);

    // A request without privacy constraints may still use it.
    let (text, _, _) = drain(held).await;
    assert_eq!(text, "slow");
    local.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "busy".into(),
    }));
    let s = route(&gen2, &request("chat")).await.unwrap();
    assert_eq!(&*s.served_by().provider, "edge");
    drain(s).await;
    local.shutdown().await;
    edge.shutdown().await;
}

#[tokio::test]
async fn a_reload_keeps_cooldowns_and_the_ledger() {
    let cloud = priced_cloud((10, 0)).await;
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
                      "retry": { "max_retries": 0 } });
    let slots = || refused_local_and_priced_cloud(&cloud.openai_base_url(), 1.0, FT);
    let (gen1, _r) = build_router(cfg.clone(), slots());
    drain(route(&gen1, &request("chat")).await.unwrap()).await;
    let gen2 = gen1.reload(common::config(cfg), slots()).unwrap();
    assert!(matches!(
        gen2.provider_status()[0].health,
        switchyard_router::Health::Cooling { .. }
    ));
    assert_eq!(
        gen2.ledger()
            .spent(None, BudgetWindow::Day, SystemTime::now()),
        10
    );
    let s = route(&gen2, &request("chat")).await.unwrap();
    assert_eq!(
        s.reason(),
        ReasonCode::Fallback,
        "the cooling local target is skipped after the reload"
    );
    drain(s).await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_stream_abandoned_before_its_usage_is_charged_an_estimate_and_the_cap_holds() {
    // Usage comes at the end of the answer; the client reads one event and goes away.
    let cloud = TestUpstream::start(
        UpstreamConfig::empty().model_with_script(
            "gpt-test",
            Script::text((0..40).map(|i| format!("t{i} ")))
                .with_usage(12, 40)
                .with_chunk_delay(Duration::from_millis(20)),
        ),
    )
    .await
    .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] } },
                      "policy": { "budget": { "usd_per_day": 1.0 } } });
    // $100k per million tokens: a prompt of about 100 tokens costs about $10.
    let slots = vec![openai_at(
        "cloud",
        &cloud.openai_base_url(),
        Locality::Cloud,
        &[("gpt-test", 100_000.0, 100_000.0)],
    )];
    let (router, records) = build_router(cfg, slots);
    let mut long = request("chat");
    long.messages = vec![switchyard_core::Message::user("x".repeat(400))];

    let mut stream = route(&router, &long).await.expect("within budget");
    let _ = switchyard_testkit::support::guarded(futures::StreamExt::next(&mut stream)).await;
    drop(stream);
    eventually("the decision record", || records.len() == 1).await;
    let record = records.last();
    assert_eq!(record.outcome, switchyard_router::RequestOutcome::Cancelled);
    assert_eq!(record.usage, None, "the upstream never reported usage");
    assert!(record.cost_estimated, "{record:?}");
    // About 100 prompt tokens and a token or two of output, at $0.10 a token.
    assert!(
        (9_000_000..12_000_000).contains(&record.cost_micro_usd),
        "{}",
        record.cost_micro_usd
    );
    assert_eq!(
        router
            .ledger()
            .spent(None, BudgetWindow::Day, SystemTime::now()),
        record.cost_micro_usd
    );

    // The cap counts it: the next request does not reach the cloud.
    let failure = route(&router, &long).await.expect_err("over budget");
    assert_eq!(failure.kind(), ErrorKind::BudgetExhausted);
    assert_eq!(cloud.chat_request_count(), 1);
}
