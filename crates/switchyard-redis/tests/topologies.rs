//! `RedisState` through the other deployment forms, each against real servers the test
//! starts on free loopback ports: an ACL user with a password, TLS with a private CA,
//! Sentinel (with a failover and a crash), a 3-master Cluster, and TLS through a Sentinel
//! and a Cluster. Skipped when redis-server is missing
//! (failed then under `SWITCHYARD_E2E_REQUIRED=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{charge, global_spent};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use switchyard_redis::{RedisConfig, RedisState};
use switchyard_router::{
    FleetAdmit, FleetState, ProbeTurn, RateDecision, SharedProbe, SharedState, SharedStateError,
    SpendCharge,
};
use switchyard_testkit::{RedisCluster, RedisServer, RedisServerBuilder, started_or_skip};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn config(url: String) -> RedisConfig {
    RedisConfig::new(url)
}

/// Charge (once, even sent twice), snapshot totals, rate, cool: every script once.
async fn round_trip(s: &RedisState, tag: &str) {
    let id = format!("{tag}-1");
    assert!(s.charge(&charge(&id, Some("k"), 7)).await.unwrap());
    assert!(!s.charge(&charge(&id, Some("k"), 7)).await.unwrap());
    let snap = s
        .snapshot(&charge("x", Some("k"), 0).counters(), &[])
        .await
        .unwrap();
    assert_eq!(snap.spent, vec![7, 7, 7, 7]);
    // 2 requests a minute: two pass, the third waits.
    let key = format!("{tag}-key");
    for _ in 0..2 {
        assert_eq!(
            s.rate(&key, Some(2), None).await.unwrap(),
            RateDecision::Allowed
        );
    }
    assert!(matches!(
        s.rate(&key, Some(2), None).await.unwrap(),
        RateDecision::Wait(_)
    ));
    s.charge_tokens(&key, 10, 1_000).await.unwrap();
    s.cool("local", Duration::from_secs(60)).await.unwrap();
    let snap = s.snapshot(&[], &["local".to_owned()]).await.unwrap();
    assert!(snap.cooling[0].unwrap() > Duration::from_secs(50));
    s.ping().await.unwrap();
}

fn acl_server() -> Option<RedisServer> {
    // `alice` may use the scripts on the default prefix's keys only; `default` is off.
    let builder = RedisServer::builder()
        .args([
            "--user",
            "alice",
            "on",
            ">s3cret",
            "~{switchyard}:*",
            "+@all",
        ])
        .args(["--user", "default", "off"]);
    started_or_skip(builder.start())
}

#[tokio::test]
async fn an_acl_user_with_its_password_works_and_a_wrong_one_names_authentication() {
    let Some(server) = acl_server() else { return };
    let addr = server.addr();
    let s = RedisState::new(config(format!("redis://alice:s3cret@{addr}/0"))).unwrap();
    round_trip(&s, "acl").await;
    // The password given apart wins over the URL's.
    let mut apart = config(format!("redis://alice:wrong@{addr}/0"));
    apart.password = Some("s3cret".to_owned());
    assert_eq!(global_spent(&RedisState::new(apart).unwrap()).await, 7);

    for (url, what) in [
        (format!("redis://alice:wrong@{addr}/0"), "wrong password"),
        (format!("redis://nobody:s3cret@{addr}/0"), "unknown user"),
        (format!("redis://{addr}/0"), "no credentials"),
    ] {
        let s = RedisState::new(config(url)).unwrap();
        let e = s.charge(&charge("denied", None, 1)).await.unwrap_err();
        assert!(
            e.to_string().contains("authentication failed"),
            "{what}: {e}"
        );
        assert!(!e.to_string().contains("s3cret"), "{what}: {e}");
    }
    // Keys outside the user's pattern: the error names the permission.
    let mut other = config(format!("redis://alice:s3cret@{addr}/0"));
    other.key_prefix = "other".to_owned();
    let e = RedisState::new(other)
        .unwrap()
        .charge(&charge("c", None, 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("lacks a permission"), "{e}");
}

fn tls_server() -> Option<RedisServer> {
    let builder = RedisServer::builder().tls(
        fixture("server.pem"),
        fixture("server.key"),
        fixture("ca.pem"),
    );
    started_or_skip(builder.start())
}

#[tokio::test]
async fn tls_with_the_private_ca_works_and_an_unknown_ca_is_refused() {
    let Some(server) = tls_server() else { return };
    assert!(server.url().starts_with("rediss://"));
    let mut trusted = config(server.url());
    trusted.ca_file = Some(fixture("ca.pem"));
    round_trip(&RedisState::new(trusted).unwrap(), "tls").await;

    // The web roots (no ca_file) and an unrelated CA both refuse the certificate.
    for ca in [None, Some(fixture("other-ca.pem"))] {
        let mut cfg = config(server.url());
        cfg.ca_file = ca.clone();
        let e = RedisState::new(cfg)
            .unwrap()
            .charge(&charge("c", None, 1))
            .await
            .unwrap_err();
        assert!(matches!(e, SharedStateError::Unreachable(_)), "{ca:?}: {e}");
        let text = e.to_string();
        assert!(
            text.contains("certificate") && text.contains("ca_file"),
            "{ca:?}: {e}"
        );
    }

    // A CA file is checked when the state is made.
    for (url, ca) in [
        (server.url(), fixture("missing.pem")),
        (server.url(), fixture("README.md")),
        (format!("redis://{}/0", server.addr()), fixture("ca.pem")),
    ] {
        let mut cfg = config(url);
        cfg.ca_file = Some(ca.clone());
        let e = RedisState::new(cfg).unwrap_err();
        assert_eq!(e.reason_code(), "invalid_ca_file", "{ca:?}: {e}");
    }
}

/// `cmd`'s answer from `addr`, connecting anew and trying again (bounded) after an error:
/// a Sentinel reconfiguring a server closes its clients.
async fn ask<T: redis::FromRedisValue>(addr: std::net::SocketAddr, cmd: &redis::Cmd) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = async {
            let client = redis::Client::open(format!("redis://{addr}/0"))?;
            let mut conn = client.get_multiplexed_async_connection().await?;
            cmd.query_async::<T>(&mut conn).await
        };
        match answer.await {
            Ok(v) => return v,
            Err(e) => assert!(Instant::now() < deadline, "{addr}: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits (bounded) until `INFO replication` of `addr` contains `needle`.
async fn wait_replication(addr: std::net::SocketAddr, needle: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let info: String = ask(addr, redis::cmd("INFO").arg("replication")).await;
        if info.contains(needle) {
            return;
        }
        assert!(Instant::now() < deadline, "{addr}: no `{needle}` in {info}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Asks the Sentinel for a failover until it starts one (it may not know the replica yet).
async fn failover(sentinel: &RedisServer, service: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let answer: redis::Value = ask(
            sentinel.addr(),
            redis::cmd("SENTINEL").arg("FAILOVER").arg(service),
        )
        .await;
        if matches!(answer, redis::Value::Okay) {
            return;
        }
        assert!(Instant::now() < deadline, "no failover: {answer:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Charges (bounded) until one is applied, returning how many attempts failed.
async fn charge_until_applied(s: &RedisState, c: &SpendCharge) -> u32 {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut failed = 0;
    loop {
        match s.charge(c).await {
            Ok(_) => return failed,
            Err(e) => {
                failed += 1;
                assert!(Instant::now() < deadline, "never applied: {e}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn sentinel_finds_the_master_and_follows_a_failover_and_a_crash() {
    let Some(master) = started_or_skip(RedisServer::start()) else {
        return;
    };
    let replica = RedisServer::builder()
        .args(["--replicaof", "127.0.0.1"])
        .args([master.addr().port().to_string()])
        .start()
        .unwrap();
    wait_replication(replica.addr(), "master_link_status:up").await;
    let sentinel = RedisServerBuilder::default()
        .sentinel(master.addr(), "main")
        .start()
        .unwrap();
    let url = format!("redis+sentinel://{}/main", sentinel.addr());
    let s = RedisState::new(config(url)).unwrap();
    round_trip(&s, "sentinel").await;
    wait_replication(master.addr(), "slave0:").await;

    failover(&sentinel, "main").await;
    // The old master is demoted (a replica of the promoted one) before charging again, so
    // no write can land on it in between.
    wait_replication(master.addr(), "role:slave").await;
    wait_replication(replica.addr(), "role:master").await;
    charge_until_applied(&s, &charge("after", None, 5)).await;
    assert_eq!(global_spent(&s).await, 12, "the old charge and the new one");
    let keys: Vec<String> = ask(
        replica.addr(),
        redis::cmd("KEYS").arg("{switchyard}:charge:*"),
    )
    .await;
    assert_eq!(
        keys.len(),
        2,
        "both charges are on the promoted master: {keys:?}"
    );

    // The promoted master crashes once its replica (the old master) has every write: the
    // Sentinel promotes the old master again and the state follows.
    let deadline = Instant::now() + Duration::from_secs(10);
    let latest = redis::cmd("EXISTS")
        .arg("{switchyard}:charge:after")
        .clone();
    while !ask::<bool>(master.addr(), &latest).await {
        assert!(
            Instant::now() < deadline,
            "the replica never got the last charge"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut crashed = replica;
    crashed.stop();
    charge_until_applied(&s, &charge("after-crash", None, 3)).await;
    wait_replication(master.addr(), "role:master").await;
    assert_eq!(global_spent(&s).await, 15);
}

#[tokio::test]
async fn a_three_master_cluster_runs_every_script() {
    let Some(cluster) = started_or_skip(RedisCluster::start()) else {
        return;
    };
    assert_eq!(cluster.nodes().len(), 3);
    let s = RedisState::new(config(cluster.url())).unwrap();
    round_trip(&s, "cluster").await;
    // A second client sees the same totals and shares the fleet's in-flight limit.
    let b = RedisState::new(config(cluster.url())).unwrap();
    assert_eq!(global_spent(&b).await, 7);
    let ttl = Duration::from_secs(30);
    assert_eq!(
        s.admit("p", "ra", 1, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    assert_eq!(
        b.admit("p", "rb", 1, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    assert!(matches!(
        b.admit("p", "rb", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Full { .. }
    ));
    // Released by `ra`: `rb` now fits.
    s.publish_in_flight("p", "ra", 0, ttl).await.unwrap();
    assert_eq!(
        b.admit("p", "rb", 2, 2, ttl).await.unwrap(),
        FleetAdmit::Admitted
    );
    // Probe claims and results.
    let claim = Duration::from_secs(5);
    assert_eq!(s.probe_turn("p", claim).await.unwrap(), ProbeTurn::Yours);
    assert_eq!(b.probe_turn("p", claim).await.unwrap(), ProbeTurn::Busy);
    s.publish_probe("p", SharedProbe::Up, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(
        b.probe_turn("p", claim).await.unwrap(),
        ProbeTurn::Fresh(SharedProbe::Up)
    );
}

#[tokio::test]
async fn a_tls_cluster_with_the_private_ca_works_and_refuses_an_unknown_ca() {
    let cluster = RedisCluster::start_tls(
        fixture("server.pem"),
        fixture("server.key"),
        fixture("ca.pem"),
    );
    let Some(cluster) = started_or_skip(cluster) else {
        return;
    };
    assert!(cluster.url().starts_with("rediss+cluster://"));
    let mut trusted = config(cluster.url());
    trusted.ca_file = Some(fixture("ca.pem"));
    round_trip(&RedisState::new(trusted).unwrap(), "tls-cluster").await;
    let mut unknown = config(cluster.url());
    unknown.ca_file = Some(fixture("other-ca.pem"));
    let e = RedisState::new(unknown)
        .unwrap()
        .charge(&charge("c", None, 1))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("certificate"), "{e}");
}

#[tokio::test]
async fn a_tls_master_is_found_through_a_tls_sentinel_with_the_private_ca() {
    let tls = |b: RedisServerBuilder| {
        b.tls(
            fixture("server.pem"),
            fixture("server.key"),
            fixture("ca.pem"),
        )
    };
    let Some(master) = started_or_skip(tls(RedisServer::builder()).start()) else {
        return;
    };
    // The Sentinel talks TLS to the master too.
    let sentinel = tls(RedisServer::builder())
        .sentinel(master.addr(), "main")
        .args(["--tls-replication", "yes"])
        .start()
        .unwrap();
    let mut cfg = config(format!("rediss+sentinel://{}/main", sentinel.addr()));
    cfg.ca_file = Some(fixture("ca.pem"));
    round_trip(&RedisState::new(cfg).unwrap(), "tls-sentinel").await;
}
