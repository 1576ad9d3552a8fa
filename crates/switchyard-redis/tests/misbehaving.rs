//! `RedisState` and its `SharedStateHandle` when Redis misbehaves: a key overwritten with
//! another type (`WRONGTYPE`), a server that answers slowly after an outage. Each test
//! starts its own `redis-server` on a free loopback port (skipped when the binary is
//! missing).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{charge, global_day, global_spent};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use switchyard_redis::{RedisConfig, RedisState};
use switchyard_router::{
    ChargeJournal, MemoryJournal, OutagePolicy, SharedState, SharedStateError, SharedStateHandle,
};
use switchyard_testkit::{RedisServer, started_or_skip};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

fn server() -> Option<RedisServer> {
    started_or_skip(RedisServer::start())
}

async fn redis_query(url: &str, cmd: &redis::Cmd) -> redis::Value {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    cmd.query_async(&mut conn).await.unwrap()
}

/// A charge that fails part-way must not be remembered as applied.
///
/// What is wrong: the `CHARGE` script (`scripts.rs`) first sets `charge:<id>` with `SET NX`
/// and then `INCRBY`s the counters one by one; Redis does not roll a script back when a
/// command in it fails. With today's global day counter overwritten by another type (a
/// `WRONGTYPE` answer), the charge id is set and the caller's day counter is incremented,
/// then the script fails: the handle journals the charge (correctly, the store answered
/// with an error). Once the key is fixed, the reconciliation sends the charge again, the
/// script finds the charge id, answers "already applied", and the charge leaves the
/// journal: the global day counter and both month counters never get it (spend lost
/// silently; `switchyard_shared_state_journal_dropped_total` is not counted either).
///
/// Right: a charge id is remembered only when every counter took the charge (check the
/// counters' types first, or set the id last), so "charge ids make a resend harmless"
/// (ARCHITECTURE.md, Several replicas: Outage) also holds after an error answer, and the
/// resend applies the charge to all four counters exactly once.
#[tokio::test]
async fn a_charge_refused_with_wrongtype_is_applied_in_full_once_the_key_is_fixed() {
    let Some(server) = server() else { return };
    let url = server.url();
    let s: Arc<dyn SharedState> = Arc::new(RedisState::new(RedisConfig::new(url.clone())).unwrap());
    let handle = SharedStateHandle::new(s.clone(), OutagePolicy::default());
    assert!(handle.check().await);

    // Another program (or an operator's mistake) overwrote today's global counter.
    let key = format!("{{switchyard}}:spend:global:{}", global_day().period);
    redis_query(&url, redis::cmd("HSET").arg(&key).arg("f").arg("v")).await;
    handle.charge(charge("c1", Some("k"), 500)).await;
    assert_eq!(
        handle.pending_charges(),
        1,
        "the refused charge is journaled"
    );

    // The key is repaired; the next reconciliation applies the journal.
    redis_query(&url, redis::cmd("DEL").arg(&key)).await;
    assert!(handle.check().await);
    assert_eq!(handle.pending_charges(), 0, "the journal was reconciled");

    // Counters: caller day, global day, caller month, global month.
    let snap = s
        .snapshot(&charge("x", Some("k"), 0).counters(), &[])
        .await
        .unwrap();
    assert_eq!(
        snap.spent,
        vec![500, 500, 500, 500],
        "the reconciled charge reached every counter once (caller day, global day, caller \
         month, global month)"
    );
}

/// A TCP proxy in front of `upstream` that holds each chunk the server sends for `delay`:
/// a Redis that answers slowly (or is a few milliseconds away, as across zones).
async fn slow_proxy(upstream: SocketAddr, delay: Duration) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    return;
                };
                let (mut cr, mut cw) = client.into_split();
                let (mut sr, mut sw) = server.into_split();
                tokio::spawn(async move {
                    let _ = tokio::io::copy(&mut cr, &mut sw).await;
                });
                let mut buf = vec![0u8; 64 * 1024];
                loop {
                    match sr.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            tokio::time::sleep(delay).await;
                            if cw.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    addr
}

/// After an outage, a request's own charge must not wait for the whole journal.
///
/// What is wrong: `SharedStateHandle::charge` (and `before_plan`, and `check` behind
/// `/readyz`) call `reconcile()` inline, and `reconcile` loops until the journal is empty,
/// one awaited round trip per journaled charge (`handle.rs`, `reconcile`). The first
/// request after the store answers again therefore carries the whole outage's backlog: up
/// to 65 536 charges (the journal's capacity) in sequence. The charge is awaited before the
/// stream's last item reaches the client, so that client's answer is held for
/// `pending × round trip` (here 1 500 charges with Redis 3 ms away: about 7 s; a full
/// journal at 1 ms is over a minute), and `/readyz` during that time does not answer within
/// a probe's timeout. No per-operation timeout (2 s) bounds it, since each round trip is
/// fast enough on its own.
///
/// Right: a request (or `/readyz`) pays at most one bounded step of reconciliation (a
/// batch, or a deadline around the operation timeout), or the reconciliation runs in the
/// background (as the reconciler started with a previous run's journal already does);
/// the request's own charge returns within the operation timeout.
#[tokio::test]
async fn after_an_outage_a_requests_charge_is_not_held_until_the_whole_journal_is_replayed() {
    let Some(server) = server() else { return };
    let proxy = slow_proxy(server.addr(), Duration::from_millis(3)).await;
    let s: Arc<dyn SharedState> =
        Arc::new(RedisState::new(RedisConfig::new(format!("redis://{proxy}/0"))).unwrap());
    // The journal as an outage left it: 1 500 uncapped requests served while Redis was
    // unreachable (charges the handle journaled; filled directly here so that the test
    // does not wait out 1 500 failed round trips).
    let journal = Arc::new(MemoryJournal::default());
    for i in 0..1_500 {
        journal
            .push(charge(&format!("out-{i}"), Some("bulk"), 1))
            .unwrap();
    }
    let handle = SharedStateHandle::new(s.clone(), OutagePolicy::default()).with_journal(journal);
    assert_eq!(handle.pending_charges(), 1_500);

    // Redis answers again (asked directly, not through the handle).
    s.ping().await.unwrap();

    // The next request's charge.
    let started = Instant::now();
    handle.charge(charge("next", Some("bulk"), 1)).await;
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(2),
        "one request's charge took {took:?}: it replayed the outage's journal inline \
         ({} charges left pending)",
        handle.pending_charges()
    );
}

/// The `CHARGE` script checks every key before it writes one: a counter holding a string
/// that is not an integer (`INCRBY` would fail there) or a charge id key of another type
/// refuses the charge with nothing written, and the charge applies in full once fixed.
#[tokio::test]
async fn a_charge_refused_for_a_bad_key_writes_nothing_and_applies_in_full_once_fixed() {
    let Some(server) = server() else { return };
    let url = server.url();
    let s = RedisState::new(RedisConfig::new(url.clone())).unwrap();
    let counters = charge("x", Some("k"), 0).counters();
    let key = format!("{{switchyard}}:spend:global:{}", global_day().period);
    let id_key = "{switchyard}:charge:c2";
    let exists = |k: String| {
        let url = url.clone();
        async move {
            let n: i64 =
                redis::from_redis_value(&redis_query(&url, redis::cmd("EXISTS").arg(k)).await)
                    .unwrap();
            n == 1
        }
    };

    // A counter holding text: refused, no counter written, the id not remembered.
    redis_query(&url, redis::cmd("SET").arg(&key).arg("not a number")).await;
    let e = s.charge(&charge("c2", Some("k"), 500)).await.unwrap_err();
    assert!(e.to_string().contains("not an integer"), "{e}");
    assert!(
        !exists(id_key.to_owned()).await,
        "the charge id was remembered"
    );
    for c in &counters {
        let k = format!("{{switchyard}}:spend:{}:{}", c.scope, c.period);
        if k != key {
            assert!(!exists(k.clone()).await, "{k} was charged");
        }
    }
    redis_query(&url, redis::cmd("DEL").arg(&key)).await;

    // The charge id key of another type: refused, nothing written.
    redis_query(&url, redis::cmd("HSET").arg(id_key).arg("f").arg("v")).await;
    let e = s.charge(&charge("c2", Some("k"), 500)).await.unwrap_err();
    assert!(e.to_string().contains("WRONGTYPE"), "{e}");
    assert_eq!(
        s.snapshot(&counters, &[]).await.unwrap().spent,
        vec![0, 0, 0, 0]
    );
    redis_query(&url, redis::cmd("DEL").arg(id_key)).await;

    // Fixed: the resend applies the charge to every counter, once.
    assert!(s.charge(&charge("c2", Some("k"), 500)).await.unwrap());
    assert!(!s.charge(&charge("c2", Some("k"), 500)).await.unwrap());
    assert_eq!(
        s.snapshot(&counters, &[]).await.unwrap().spent,
        vec![500, 500, 500, 500]
    );
}

/// The journal an outage left is applied in the background after a request's charge
/// (which does not wait for it), each charge once, while `/readyz` checks stay quick.
#[tokio::test]
async fn the_journal_an_outage_left_is_applied_once_in_the_background() {
    let Some(server) = server() else { return };
    let s: Arc<dyn SharedState> =
        Arc::new(RedisState::new(RedisConfig::new(server.url())).unwrap());
    let journal = Arc::new(MemoryJournal::default());
    for i in 0..700 {
        journal
            .push(charge(&format!("out-{i}"), Some("bulk"), 1))
            .unwrap();
    }
    let handle = SharedStateHandle::new(s.clone(), OutagePolicy::default()).with_journal(journal);
    handle.charge(charge("next", Some("bulk"), 1)).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while handle.pending_charges() > 0 {
        assert!(Instant::now() < deadline, "the journal was not applied");
        let started = Instant::now();
        assert!(handle.check().await);
        assert!(started.elapsed() < Duration::from_secs(1), "a check waited");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let snap = s
        .snapshot(&charge("x", Some("bulk"), 0).counters(), &[])
        .await
        .unwrap();
    assert_eq!(
        snap.spent,
        vec![701, 701, 701, 701],
        "each charge counted once"
    );
}

/// One charge the store refuses must not keep every other journaled charge from the store.
///
/// What is wrong: a charge refused for a bad key (here caller `a`'s day counter overwritten
/// with a hash: `WRONGTYPE`) is journaled, as DECISIONS.md says ("a refused charge ... is
/// journaled and applies in full when sent again"). But `Core::replay`
/// (`shared/handle.rs`) stops at the first charge that fails and the journal is applied
/// oldest first, so every charge behind it — other callers' spend from an outage, whose
/// keys are fine — is never applied while the bad key lasts: the inline step of `/readyz`
/// and of each planning read, and the background drain each request's charge starts,
/// all stop at the same head. Other replicas never see that spend (their budgets let the
/// callers past their caps), and since each of these failed replays marks the store
/// down, the replica reports `shared_state.up: false` after every `/readyz` and planning
/// read although Redis answers.
///
/// Right: a charge the store refuses (an error answer, not an unreachable store) does not
/// block the charges after it: caller `b`'s journaled charges reach the store, the refused
/// one stays journaled until its key is fixed.
#[tokio::test]
async fn a_charge_refused_for_one_callers_bad_key_does_not_hold_back_the_rest_of_the_journal() {
    let Some(server) = server() else { return };
    let url = server.url();
    let s: Arc<dyn SharedState> = Arc::new(RedisState::new(RedisConfig::new(url.clone())).unwrap());
    let journal = Arc::new(MemoryJournal::default());
    let handle =
        SharedStateHandle::new(s.clone(), OutagePolicy::default()).with_journal(journal.clone());
    assert!(handle.check().await);

    // Caller a's day counter was overwritten by another program: a's charge is refused
    // and journaled.
    let a_day = charge("x", Some("a"), 0).counters()[0].clone();
    let a_key = format!("{{switchyard}}:spend:{}:{}", a_day.scope, a_day.period);
    redis_query(&url, redis::cmd("HSET").arg(&a_key).arg("f").arg("v")).await;
    handle.charge(charge("a1", Some("a"), 500)).await;
    assert_eq!(
        handle.pending_charges(),
        1,
        "the refused charge is journaled"
    );

    // Caller b's charges of a later outage wait behind it (filled directly: the test does
    // not take Redis down).
    for i in 0..3 {
        journal
            .push(charge(&format!("b-out-{i}"), Some("b"), 100))
            .unwrap();
    }

    // Redis answers: /readyz, and b's next request (its charge applies directly).
    handle.check().await;
    handle.charge(charge("b-next", Some("b"), 100)).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    while handle.pending_charges() > 1 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        handle.check().await;
    }

    let b_day = charge("x", Some("b"), 0).counters()[0].clone();
    let spent = s.snapshot(&[b_day], &[]).await.unwrap().spent[0];
    assert_eq!(
        spent,
        400,
        "caller b's journaled charges never reached the store ({} charges still pending \
         behind the refused one)",
        handle.pending_charges()
    );
    assert!(
        handle.check().await,
        "/readyz reports the shared state down although Redis answers"
    );
}

/// A charge refused for a bad key is `SharedStateError::Refused` (the store answered:
/// reason `shared_state_refused`), and the handle keeps the store up: only that charge
/// waits in the journal.
#[tokio::test]
async fn a_refused_charge_is_told_apart_from_an_unreachable_store() {
    let Some(server) = server() else { return };
    let url = server.url();
    let s: Arc<dyn SharedState> = Arc::new(RedisState::new(RedisConfig::new(url.clone())).unwrap());
    let key = format!("{{switchyard}}:spend:global:{}", global_day().period);
    redis_query(&url, redis::cmd("SET").arg(&key).arg("not a number")).await;
    let e = s.charge(&charge("r1", None, 5)).await.unwrap_err();
    assert!(matches!(e, SharedStateError::Refused(_)), "{e:?}");
    assert_eq!(e.reason_code(), "shared_state_refused");
    assert!(e.to_string().contains(&key), "the error names the key: {e}");

    let handle = SharedStateHandle::new(s.clone(), OutagePolicy::default());
    handle.charge(charge("r2", None, 5)).await;
    assert_eq!(handle.pending_charges(), 1);
    assert!(handle.is_up(), "a refused charge marked the store down");
    redis_query(&url, redis::cmd("DEL").arg(&key)).await;
    assert!(handle.check().await);
    assert_eq!(handle.pending_charges(), 0);
    assert_eq!(global_spent(s.as_ref()).await, 5);
}
