//! Two routers sharing one `InProcessState` (the seam's reference implementation): spend,
//! budgets and cooldowns agree across them. The Redis implementation runs the same
//! scenarios in `switchyard-redis` and the binary's replica tests.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::json;
use switchyard_router::{
    BudgetWindow, InProcessState, OutagePolicy, ReasonCode, Router, SharedState, SharedStateHandle,
    SpendCounter,
};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};

const FT: Duration = Duration::from_secs(2);

async fn replicas(
    cfg: serde_json::Value,
    cloud: &TestUpstream,
) -> (Arc<InProcessState>, Vec<Router>) {
    let state = Arc::new(InProcessState::new());
    let mut out = Vec::new();
    for _ in 0..2 {
        let slots = refused_local_and_priced_cloud(&cloud.openai_base_url(), 10_000.0, FT);
        let (router, _) = build_router(cfg.clone(), slots);
        let handle = SharedStateHandle::new(state.clone(), OutagePolicy::default());
        out.push(router.with_shared_state(Arc::new(handle)));
    }
    (state, out)
}

#[tokio::test]
async fn a_daily_cap_holds_across_two_routers_as_for_one() {
    // 31 prompt tokens at $10k/Mtok = $0.31 a request; $1 a day lets 4 through (like one router).
    let cloud = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-test", Script::text(["paid"]).with_usage(31, 0)),
    )
    .await
    .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] } },
                      "policy": { "budget": { "usd_per_day": 1.0 } },
                      "retry": { "max_retries": 0 } });
    let (state, routers) = replicas(cfg, &cloud).await;
    let mut served = 0;
    for i in 0..8 {
        match route(&routers[i % 2], &request("chat")).await {
            Ok(s) => {
                drain(s).await;
                served += 1;
            }
            Err(f) => assert_eq!(f.kind(), switchyard_core::ErrorKind::BudgetExhausted),
        }
    }
    assert_eq!(served, 4);
    assert_eq!(cloud.chat_request_count(), 4);
    let day = SpendCounter::new(None, BudgetWindow::Day, SystemTime::now());
    let snap = state.snapshot(&[day], &[]).await.unwrap();
    assert_eq!(snap.spent, vec![4 * 310_000]);
}

#[tokio::test]
async fn a_cooldown_set_by_one_router_is_honoured_by_the_other() {
    let cloud = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-test", Script::text(["ok"]).with_usage(1, 0)),
    )
    .await
    .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["local/test-model", "cloud/gpt-test"] } },
                      "retry": { "max_retries": 0 } });
    let (_state, routers) = replicas(cfg, &cloud).await;
    let first = route(&routers[0], &request("chat")).await.unwrap();
    assert_eq!(first.attempts().len(), 1, "local was tried and refused");
    drain(first).await;
    let second = route(&routers[1], &request("chat")).await.unwrap();
    assert_eq!(second.served_by().provider, "cloud");
    assert!(
        second.attempts().is_empty(),
        "the other router skipped the cooled target: {:?}",
        second.attempts()
    );
    let explained = routers[1].explain(&request("chat"));
    let local = explained
        .targets
        .iter()
        .find(|t| t.target.provider == "local")
        .unwrap();
    assert_eq!(local.reason, ReasonCode::CoolingDown);
}

#[tokio::test]
async fn a_charge_id_counts_once() {
    let state = InProcessState::new();
    let charge = switchyard_router::SpendCharge {
        charge_id: "r1".into(),
        caller: Some("k".into()),
        micro_usd: 5,
        at: SystemTime::now(),
    };
    assert!(state.charge(&charge).await.unwrap());
    assert!(!state.charge(&charge).await.unwrap());
    let counters = charge.counters();
    let snap = state.snapshot(&counters, &[]).await.unwrap();
    assert_eq!(snap.spent, vec![5, 5, 5, 5]);
}
