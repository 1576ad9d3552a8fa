//! Two routers sharing one `InProcessState` (the seam's reference implementation): spend,
//! budgets and cooldowns agree across them. The Redis implementation runs the same
//! scenarios in `switchyard-redis` and the binary's replica tests. A journal a previous
//! run left in the ledger file is applied once when the store answers.

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
    assert_eq!(&*second.served_by().provider, "cloud");
    assert!(
        second.attempts().is_empty(),
        "the other router skipped the cooled target: {:?}",
        second.attempts()
    );
    let explained = routers[1].explain(&request("chat"));
    let local = explained
        .targets
        .iter()
        .find(|t| &*t.target.provider == "local")
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

/// Two routers sharing `state`, each with the provider `up` (`max_concurrency` 2,
/// `max_queue` 0, `concurrency_scope` as given) and probes every `probe_ms` when given.
fn fleet_of_two(
    state: &Arc<InProcessState>,
    up: &TestUpstream,
    scope: switchyard_router::ConcurrencyScope,
    probe_ms: Option<u64>,
) -> Vec<Router> {
    let cfg = json!({ "routes": { "chat": { "targets": ["up/m"] } },
                      "retry": { "max_retries": 0 },
                      "health": { "probe_interval_ms": probe_ms } });
    (0..2)
        .map(|_| {
            let mut slot = openai_at(
                "up",
                &up.openai_base_url(),
                switchyard_core::Locality::Lan,
                &[("m", 0.0, 0.0)],
            );
            (slot.max_concurrency, slot.max_queue, slot.concurrency_scope) = (2, 0, scope);
            let (router, _) = build_router(cfg.clone(), vec![slot]);
            let handle = SharedStateHandle::new(state.clone(), OutagePolicy::default());
            router.with_shared_state(Arc::new(handle))
        })
        .collect()
}

/// Routes one request on each router in turn (`n` in all), keeping the streams open;
/// returns the streams admitted and the refusals' kinds.
async fn hold(
    routers: &[Router],
    n: usize,
) -> (
    Vec<switchyard_router::RoutedStream>,
    Vec<switchyard_core::ErrorKind>,
) {
    let (mut held, mut refused) = (Vec::new(), Vec::new());
    for i in 0..n {
        match route(&routers[i % 2], &request("chat")).await {
            Ok(s) => held.push(s),
            Err(f) => refused.push(f.kind()),
        }
    }
    (held, refused)
}

#[tokio::test]
async fn a_fleet_scoped_max_concurrency_admits_its_limit_across_two_routers() {
    use switchyard_core::ErrorKind;
    use switchyard_router::ConcurrencyScope;
    let up =
        TestUpstream::start(UpstreamConfig::empty().model_with_script("m", Script::text(["ok"])))
            .await
            .unwrap();
    let state = Arc::new(InProcessState::new());
    let routers = fleet_of_two(&state, &up, ConcurrencyScope::Fleet, None);
    let (mut held, refused) = hold(&routers, 6).await;
    assert_eq!(held.len(), 2, "two in flight for the whole fleet");
    assert_eq!(refused, vec![ErrorKind::QueueFull; 4]);
    // The slot of the second router frees: that router admits one again at once.
    drop(held.pop());
    let (again, refused) = hold(&routers[1..], 1).await;
    assert_eq!((again.len(), refused.len()), (1, 0));
    drop(again);
    drop(held);

    // The same with the default scope: each router admits its own two.
    let routers = fleet_of_two(
        &Arc::new(InProcessState::new()),
        &up,
        ConcurrencyScope::Replica,
        None,
    );
    let (held, refused) = hold(&routers, 6).await;
    assert_eq!((held.len(), refused.len()), (4, 2));
}

#[tokio::test]
async fn a_probe_result_of_one_router_is_used_by_the_other_without_probing() {
    use switchyard_router::Health;
    let dead =
        TestUpstream::start(UpstreamConfig::empty().model_with_script("m", Script::text(["ok"])))
            .await
            .unwrap();
    dead.set_fault(Some(switchyard_testkit::Fault::HttpError {
        status: 503,
        message: "down".to_owned(),
    }));
    let state = Arc::new(InProcessState::new());
    let routers = fleet_of_two(
        &state,
        &dead,
        switchyard_router::ConcurrencyScope::Replica,
        Some(60_000),
    );
    let down = |r: &Router| matches!(r.provider_status()[0].health, Health::Down { .. });
    let wait_down = |r: Router| async move {
        for _ in 0..200 {
            if down(&r) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    };
    let _first = routers[0].start_probes().unwrap();
    assert!(
        wait_down(routers[0].clone()).await,
        "the first router probed"
    );
    let probes = dead.request_count();
    assert!(probes >= 1);
    assert!(!down(&routers[1]), "the second has not looked yet");
    let _second = routers[1].start_probes().unwrap();
    assert!(
        wait_down(routers[1].clone()).await,
        "the second took the shared result"
    );
    assert_eq!(dead.request_count(), probes, "the second did not probe");
}

#[tokio::test]
async fn a_journal_left_by_a_previous_run_is_applied_once_when_the_store_answers() {
    use switchyard_router::{ChargeJournal, RedbJournal, RedbLedger, SpendCharge};
    let dir = std::env::temp_dir().join(format!("sy-shared-journal-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spend.redb");
    let at = SystemTime::now();
    let charge = |id: &str, micro_usd| SpendCharge {
        charge_id: id.to_owned(),
        caller: Some("team".to_owned()),
        micro_usd,
        at,
    };
    let state = Arc::new(InProcessState::new());
    {
        // A previous run journaled two charges; the store applied the first one before
        // the run ended (a crash between applying and removing it).
        let ledger = RedbLedger::open(&path).unwrap();
        let journal = RedbJournal::open(&ledger, 16).unwrap();
        journal.push(charge("old:r1:0", 5)).unwrap();
        journal.push(charge("old:r2:1", 7)).unwrap();
        assert!(state.charge(&charge("old:r1:0", 5)).await.unwrap());
    }
    let ledger = RedbLedger::open(&path).unwrap();
    let journal: Arc<dyn ChargeJournal> = Arc::new(RedbJournal::open(&ledger, 16).unwrap());
    let handle = Arc::new(
        SharedStateHandle::new(state.clone(), OutagePolicy::default())
            .with_journal(Arc::clone(&journal)),
    );
    assert_eq!(handle.pending_charges(), 2);
    handle.start_reconciler();
    let team = SpendCounter::new(Some("team"), BudgetWindow::Day, at);
    for _ in 0..100 {
        if handle.pending_charges() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(handle.pending_charges(), 0);
    assert!(journal.is_empty());
    let spent = state.snapshot(&[team], &[]).await.unwrap().spent;
    assert_eq!(spent, [12], "each charge counted once");
    drop((handle, journal, ledger));
    let ledger = RedbLedger::open(&path).unwrap();
    assert!(
        RedbJournal::open(&ledger, 16).unwrap().is_empty(),
        "removed on disk too"
    );
    drop(ledger);
    let _ = std::fs::remove_dir_all(&dir);
}

/// A store that never answers: a network partition that drops packets (no reset), so
/// every operation ends only by the handle's own timeout.
#[derive(Debug, Default)]
struct Silent;

#[async_trait::async_trait]
impl switchyard_router::FleetState for Silent {
    async fn admit(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: u64,
        _: Duration,
    ) -> Result<switchyard_router::FleetAdmit, switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn publish_in_flight(
        &self,
        _: &str,
        _: &str,
        _: u64,
        _: Duration,
    ) -> Result<(), switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn probe_turn(
        &self,
        _: &str,
        _: Duration,
    ) -> Result<switchyard_router::ProbeTurn, switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn publish_probe(
        &self,
        _: &str,
        _: switchyard_router::SharedProbe,
        _: Duration,
    ) -> Result<(), switchyard_router::SharedStateError> {
        std::future::pending().await
    }
}

#[async_trait::async_trait]
impl SharedState for Silent {
    fn kind(&self) -> &'static str {
        "silent"
    }
    async fn snapshot(
        &self,
        _: &[SpendCounter],
        _: &[String],
    ) -> Result<switchyard_router::Snapshot, switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn charge(
        &self,
        _: &switchyard_router::SpendCharge,
    ) -> Result<bool, switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn rate(
        &self,
        _: &str,
        _: Option<u32>,
        _: Option<u32>,
    ) -> Result<switchyard_router::RateDecision, switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn charge_tokens(
        &self,
        _: &str,
        _: u64,
        _: u32,
    ) -> Result<(), switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn cool(&self, _: &str, _: Duration) -> Result<(), switchyard_router::SharedStateError> {
        std::future::pending().await
    }
    async fn ping(&self) -> Result<(), switchyard_router::SharedStateError> {
        std::future::pending().await
    }
}

/// Records when (on the test's paused clock) each request reached the provider.
#[derive(Default)]
struct Reached(std::sync::Mutex<Vec<tokio::time::Instant>>);

#[async_trait::async_trait]
impl switchyard_router::Dispatch for Reached {
    async fn call(
        &self,
        _: &Arc<dyn switchyard_core::Provider>,
        _: &switchyard_core::ChatRequest,
        _: &str,
    ) -> Result<switchyard_core::ChatStream, switchyard_core::ProviderError> {
        self.0.lock().unwrap().push(tokio::time::Instant::now());
        Err(switchyard_core::ProviderError::new(
            switchyard_core::ErrorKind::InvalidRequest,
            "reached the provider",
        ))
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_store_makes_fleet_scoped_requests_fall_back_each_after_one_timeout() {
    // max_concurrency 8 on this replica, fleet-wide; the store stops answering. Per the
    // docs each request is then admitted under this replica's limit once its own store
    // call timed out (2 s, after the 2 s of the snapshot). The per-provider lock is held
    // across the round trip, so the requests wait for each other's timeouts instead:
    // the k-th reaches the provider after 2 + 2k s.
    let cfg = json!({ "routes": { "chat": { "targets": ["up/m"] } },
                      "retry": { "max_retries": 0 } });
    let mut slot = openai_at(
        "up",
        "http://127.0.0.1:9/v1",
        switchyard_core::Locality::Lan,
        &[("m", 0.0, 0.0)],
    );
    (slot.max_concurrency, slot.max_queue, slot.concurrency_scope) =
        (8, 0, switchyard_router::ConcurrencyScope::Fleet);
    let (router, _) = build_router(cfg, vec![slot]);
    let handle = SharedStateHandle::new(Arc::new(Silent), OutagePolicy::default());
    let router = router.with_shared_state(Arc::new(handle));
    let reached = Arc::new(Reached::default());
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let (router, reached) = (router.clone(), reached.clone());
            tokio::spawn(async move {
                let r = router.route_with(&request("chat"), reached.as_ref()).await;
                r.map(drop).map_err(|f| f.kind())
            })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        assert_eq!(
            t.unwrap(),
            Err(switchyard_core::ErrorKind::InvalidRequest),
            "every request reached the provider"
        );
    }
    let reached = reached.0.lock().unwrap().clone();
    assert_eq!(reached.len(), 6);
    let waits: Vec<u64> = reached
        .iter()
        .map(|t| t.duration_since(start).as_secs())
        .collect();
    assert!(
        waits.iter().all(|&s| s <= 6),
        "seconds (paused clock) until each request reached the provider: {waits:?}"
    );
}
