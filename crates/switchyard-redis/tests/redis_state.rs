//! `RedisState` against a real `redis-server` (each test starts its own on a free loopback
//! port; skipped when the binary is missing, failed then under `SWITCHYARD_E2E_REQUIRED=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{charge, global_spent};
use std::sync::Arc;
use std::time::Duration;

use switchyard_redis::{RedisConfig, RedisState};
use switchyard_router::{
    OnOutage, OutagePolicy, RateDecision, SharedState, SharedStateError, SharedStateHandle,
};
use switchyard_testkit::{RedisServer, started_or_skip};

/// A fresh server, or `None` (skip) when redis-server is not installed.
fn server() -> Option<RedisServer> {
    started_or_skip(RedisServer::start())
}

fn state(server: &RedisServer) -> RedisState {
    RedisState::new(RedisConfig::new(server.url())).unwrap()
}

#[tokio::test]
async fn a_charge_counts_once_and_100_parallel_charges_total_exactly() {
    let Some(server) = server() else { return };
    let s = Arc::new(state(&server));
    assert!(s.charge(&charge("once", Some("k"), 7)).await.unwrap());
    assert!(!s.charge(&charge("once", Some("k"), 7)).await.unwrap());
    let snap = s
        .snapshot(&charge("x", Some("k"), 0).counters(), &[])
        .await
        .unwrap();
    assert_eq!(snap.spent, vec![7, 7, 7, 7]);

    let tasks: Vec<_> = (0..100u64)
        .map(|i| {
            let s = s.clone();
            tokio::spawn(async move { s.charge(&charge(&format!("p{i}"), None, 1_000 + i)).await })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        assert!(t.unwrap().unwrap());
    }
    let sum: u64 = (0..100u64).map(|i| 1_000 + i).sum();
    assert_eq!(global_spent(s.as_ref()).await, 7 + sum);
}

#[tokio::test]
async fn gcra_lets_10_of_14_through_a_10_rpm_key_across_two_clients() {
    let Some(server) = server() else { return };
    let (a, b) = (state(&server), state(&server));
    let mut allowed = 0;
    let mut last_wait = Duration::ZERO;
    for i in 0..14 {
        let s = if i % 2 == 0 { &a } else { &b };
        match s.rate("key-1", Some(10), None).await.unwrap() {
            RateDecision::Allowed => allowed += 1,
            RateDecision::Wait(w) => last_wait = w,
        }
    }
    assert_eq!(allowed, 10);
    assert!(
        last_wait > Duration::ZERO && last_wait <= Duration::from_secs(6),
        "{last_wait:?}"
    );
    // Another key is not affected.
    assert_eq!(
        a.rate("key-2", Some(10), None).await.unwrap(),
        RateDecision::Allowed
    );
}

#[tokio::test]
async fn tokens_per_minute_are_shared_checked_with_requests_in_one_call_and_debt_is_capped() {
    let Some(server) = server() else { return };
    let (a, b) = (state(&server), state(&server));
    // 100 tpm: a token costs 600 ms of the key's minute.
    assert_eq!(
        a.rate("t", Some(5), Some(100)).await.unwrap(),
        RateDecision::Allowed
    );
    a.charge_tokens("t", 90, 100).await.unwrap();
    // 54 s ahead: still under a minute, admitted through the other client.
    assert_eq!(
        b.rate("t", Some(5), Some(100)).await.unwrap(),
        RateDecision::Allowed
    );
    b.charge_tokens("t", 1_000, 100).await.unwrap();
    // Capped at two minutes ahead: a minute to wait, not ten.
    let RateDecision::Wait(wait) = a.rate("t", Some(5), Some(100)).await.unwrap() else {
        panic!("tokens exhausted");
    };
    assert!(
        wait > Duration::from_secs(59) && wait <= Duration::from_millis(60_001),
        "{wait:?}"
    );
    // The refused requests were not counted: three more of the five fit (tokens aside).
    for _ in 0..3 {
        assert_eq!(
            b.rate("t", Some(5), None).await.unwrap(),
            RateDecision::Allowed
        );
    }
    assert!(matches!(
        b.rate("t", Some(5), None).await.unwrap(),
        RateDecision::Wait(_)
    ));
    // Keys are stored under the prefix with a TTL.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("{switchyard}:tpm:t")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 110_000 && ttl <= 120_000, "{ttl}");
}

#[tokio::test]
async fn a_cooldown_is_seen_by_every_client_and_a_longer_one_stays() {
    let Some(server) = server() else { return };
    let (a, b) = (state(&server), state(&server));
    a.cool("local", Duration::from_secs(60)).await.unwrap();
    b.cool("local", Duration::from_secs(5)).await.unwrap();
    let targets = ["local".to_owned(), "cloud".to_owned()];
    let snap = b.snapshot(&[], &targets).await.unwrap();
    let left = snap.cooling[0].unwrap();
    assert!(left > Duration::from_secs(50), "{left:?}");
    assert_eq!(snap.cooling[1], None);
}

#[tokio::test]
async fn an_outage_journals_charges_and_the_return_reconciles_them_once() {
    let Some(mut server) = server() else { return };
    let s: Arc<dyn SharedState> = Arc::new(state(&server));
    let handle = SharedStateHandle::new(s.clone(), OutagePolicy::default());
    assert!(handle.check().await);
    // Before the outage: one charge lands (and is saved, as a persistent Redis would).
    s.charge(&charge("before", None, 100)).await.unwrap();
    redis_save(&server).await;

    server.stop();
    let e = s.ping().await.unwrap_err();
    assert!(matches!(e, SharedStateError::Unreachable(_)), "{e}");
    assert_eq!(e.reason_code(), "shared_state_unreachable");
    assert!(!handle.check().await);
    assert!(!handle.is_up());
    assert_eq!(handle.policy().budgets, OnOutage::Closed);
    // Limits fall back to local by default: the handle says "decide locally".
    assert_eq!(handle.rate("k", Some(10), Some(100)).await, Ok(None));

    // Spend while Redis is down is journaled.
    handle.charge(charge("during", None, 20)).await;
    handle.charge(charge("during-2", Some("k"), 3)).await;
    assert_eq!(handle.pending_charges(), 2);

    server.restart().unwrap();
    let mut up = false;
    for _ in 0..50 {
        if handle.check().await {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the handle sees Redis again");
    assert_eq!(handle.pending_charges(), 0, "the journal was reconciled");
    assert_eq!(global_spent(s.as_ref()).await, 123);
    // Sent again (a retried write), neither the old nor a reconciled charge counts twice.
    assert!(!s.charge(&charge("before", None, 100)).await.unwrap());
    assert!(!s.charge(&charge("during", None, 20)).await.unwrap());
    assert!(handle.check().await);
    assert_eq!(global_spent(s.as_ref()).await, 123);
}

async fn redis_save(server: &RedisServer) {
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: String = redis::cmd("SAVE").query_async(&mut conn).await.unwrap();
}

#[tokio::test]
async fn in_flight_counts_of_two_replicas_share_one_limit_and_expire() {
    use switchyard_router::{FleetAdmit, FleetState};
    let Some(server) = server() else { return };
    let (a, b) = (state(&server), state(&server));
    let ttl = Duration::from_secs(30);
    assert_eq!(
        a.admit("p", "ra", 1, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    assert_eq!(
        b.admit("p", "rb", 1, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    assert_eq!(
        a.admit("p", "ra", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Full { others: 1 }
    );
    assert_eq!(
        b.admit("p", "rb", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Full { others: 1 }
    );
    // Another provider has its own count.
    assert_eq!(
        a.admit("q", "ra", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    // A replica whose request ended publishes its lower count: the other gets the slot.
    a.publish_in_flight("p", "ra", 0, ttl).await.unwrap();
    assert_eq!(
        b.admit("p", "rb", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    // A replica that stops refreshing stops counting once its TTL ends.
    a.publish_in_flight("r", "gone", 5, Duration::from_millis(50))
        .await
        .unwrap();
    let mut admitted = false;
    for _ in 0..100 {
        if b.admit("r", "rb", 1, 2, ttl).await.unwrap() == FleetAdmit::Admitted {
            admitted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(admitted, "the expired count no longer held the slots");
}

#[tokio::test]
async fn one_replica_probes_and_the_others_read_its_result() {
    use switchyard_core::ErrorKind;
    use switchyard_router::{FleetState, ProbeTurn, SharedProbe};
    let Some(server) = server() else { return };
    let (a, b) = (state(&server), state(&server));
    let claim = Duration::from_secs(5);
    assert_eq!(a.probe_turn("p", claim).await.unwrap(), ProbeTurn::Yours);
    assert_eq!(b.probe_turn("p", claim).await.unwrap(), ProbeTurn::Busy);
    let down = SharedProbe::Down(ErrorKind::ConnectRefused);
    a.publish_probe("p", down, Duration::from_secs(30))
        .await
        .unwrap();
    for s in [&a, &b] {
        assert_eq!(
            s.probe_turn("p", claim).await.unwrap(),
            ProbeTurn::Fresh(down)
        );
    }
    // Another provider is not covered by it.
    assert_eq!(b.probe_turn("q", claim).await.unwrap(), ProbeTurn::Yours);
}

#[tokio::test]
async fn a_key_allowed_more_than_60000_requests_a_minute_is_admitted_like_the_reference() {
    use switchyard_router::InProcessState;
    let Some(server) = server() else { return };
    // 100 000 requests a minute (an internal batch key): 60 000 / n rounds the emission
    // interval down to 0 ms. The in-process reference admits the request...
    let reference = InProcessState::new();
    assert_eq!(
        reference.rate("big", Some(100_000), None).await.unwrap(),
        RateDecision::Allowed
    );
    // ...the Redis script must too (it writes the key with `PX 0`, which Redis refuses).
    let s = state(&server);
    let answer = s.rate("big", Some(100_000), None).await;
    assert!(
        matches!(answer, Ok(RateDecision::Allowed)),
        "rate with rpm 100000: {answer:?}"
    );
    // Through the handle: with rate_limits `closed` every request of the key is refused
    // (and the store is marked down, so budgets fail closed meanwhile).
    let handle = SharedStateHandle::new(
        Arc::new(state(&server)),
        OutagePolicy {
            rate_limits: OnOutage::Closed,
            ..OutagePolicy::default()
        },
    );
    assert_eq!(handle.rate("big", Some(100_000), None).await, Ok(Some(())));
    assert!(handle.is_up(), "a valid limit marked the shared state down");
}

#[tokio::test]
async fn a_snapshot_asking_nothing_is_an_empty_answer_like_the_reference() {
    use switchyard_router::{InProcessState, Snapshot};
    let Some(server) = server() else { return };
    let reference = InProcessState::new();
    assert_eq!(
        reference.snapshot(&[], &[]).await.unwrap(),
        Snapshot::default()
    );
    // Redis answers the PING it sends in this case with `PONG`, read as an integer.
    let s = state(&server);
    let answer = s.snapshot(&[], &[]).await;
    assert!(
        matches!(answer, Ok(ref snap) if *snap == Snapshot::default()),
        "{answer:?}"
    );
}
