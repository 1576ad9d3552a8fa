//! `RedisResponses` against a real `redis-server` (skipped when the binary is missing,
//! failed then under `SWITCHYARD_E2E_REQUIRED=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use switchyard_gateway::{ResponseBackend, StoredBytes};
use switchyard_redis::{RedisConfig, RedisState};
use switchyard_testkit::{RedisServer, started_or_skip};

fn server() -> Option<RedisServer> {
    started_or_skip(RedisServer::start())
}

const DAY: Duration = Duration::from_secs(86_400);

#[tokio::test]
async fn responses_are_kept_with_their_caller_under_the_prefix_with_a_ttl() {
    let Some(server) = server() else { return };
    let mut config = RedisConfig::new(server.url());
    config.key_prefix = "t".to_owned();
    let state = RedisState::new(config).unwrap();
    let store = state.responses(64);
    assert_eq!((store.kind(), store.is_shared()), ("redis", true));

    store
        .put("resp_1", Some("alice"), b"{\"a\":1}".to_vec(), DAY)
        .await
        .unwrap();
    let got = store.get("resp_1").await.unwrap().unwrap();
    assert_eq!(
        got,
        StoredBytes {
            caller: Some("alice".to_owned()),
            bytes: b"{\"a\":1}".to_vec()
        }
    );
    // The key and its time to live, as another client sees them.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let ttl: i64 = redis::cmd("PTTL")
        .arg("{t}:resp:resp_1")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_000_000 && ttl <= 86_400_000, "{ttl}");

    store
        .put("short", None, b"{}".to_vec(), Duration::from_millis(50))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert!(store.get("short").await.unwrap().is_none(), "expired");

    let err = store
        .put("big", None, vec![b'x'; 100], DAY)
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), "response_too_large");

    assert!(store.delete("resp_1").await.unwrap());
    assert!(!store.delete("resp_1").await.unwrap());
    assert!(store.get("resp_1").await.unwrap().is_none());
}

#[tokio::test]
async fn an_id_is_kept_unless_another_caller_holds_it() {
    let Some(server) = server() else { return };
    let mut config = RedisConfig::new(server.url());
    config.key_prefix = "u".to_owned();
    let state = RedisState::new(config).unwrap();
    let store = state.responses(1024);
    let put = |caller: Option<&'static str>, body: &'static [u8]| {
        store.put_unless_taken("up", caller, body.to_vec(), DAY)
    };
    assert!(put(Some("alice"), b"{\"n\":1}").await.unwrap(), "a free id");
    assert!(!put(Some("bob"), b"{\"n\":2}").await.unwrap(), "alice's");
    assert!(
        !put(None, b"{\"n\":3}").await.unwrap(),
        "alice's, for no key either"
    );
    assert_eq!(store.get("up").await.unwrap().unwrap().bytes, b"{\"n\":1}");
    assert!(put(Some("alice"), b"{\"n\":4}").await.unwrap(), "her own");
    assert_eq!(store.get("up").await.unwrap().unwrap().bytes, b"{\"n\":4}");
    // A caller with characters JSON escapes compares as the same caller, and only as it.
    let odd = Some("we\"ird\nkey");
    for (caller, kept) in [(odd, true), (odd, true), (Some("we\"ird\nkez"), false)] {
        let put = store.put_unless_taken("odd", caller, b"{}".to_vec(), DAY);
        assert_eq!(put.await.unwrap(), kept, "{caller:?}");
    }
    // What is no stored response (a `get` ignores it too) holds no id: a string without
    // the envelope's newline, one whose caller part is no JSON string, a key of another type.
    let client = redis::Client::open(server.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = "{u}:resp:junk";
    for (command, value, caller) in [
        ("SET", "not an envelope", "bob"),
        ("SET", "{not json}\n{}", "carol"),
        ("RPUSH", "x", "dave"),
    ] {
        let _: i64 = redis::cmd("DEL")
            .arg(key)
            .query_async(&mut conn)
            .await
            .unwrap();
        let _: redis::Value = redis::cmd(command)
            .arg(key)
            .arg(value)
            .query_async(&mut conn)
            .await
            .unwrap();
        let put = store.put_unless_taken("junk", Some(caller), b"{}".to_vec(), DAY);
        assert!(put.await.unwrap(), "{command} {value:?}");
        let stored = store.get("junk").await.unwrap().unwrap();
        assert_eq!(stored.caller.as_deref(), Some(caller));
    }
    // Its time to live is set as `put` sets it.
    let ttl: i64 = redis::cmd("PTTL")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(ttl > 86_000_000 && ttl <= 86_400_000, "{ttl}");
    // Too large is refused before anything is sent.
    let err = store
        .put_unless_taken("big", None, vec![b'x'; 2048], DAY)
        .await
        .unwrap_err();
    assert_eq!(err.reason_code(), "response_too_large");
}

/// Several gateways handed the same upstream id at once: exactly one keeps it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_callers_racing_for_an_id_exactly_one_keeps_it() {
    let Some(server) = server() else { return };
    let replicas: Vec<_> = (0..4)
        .map(|_| RedisState::new(RedisConfig::new(server.url())).unwrap())
        .collect();
    for round in 0..20 {
        let id = format!("race-{round}");
        let tasks: Vec<_> = (0..8)
            .map(|n| {
                let store = replicas[n % replicas.len()].responses(1024);
                let id = id.clone();
                tokio::spawn(async move {
                    let caller = format!("caller-{n}");
                    store
                        .put_unless_taken(&id, Some(&caller), b"{}".to_vec(), DAY)
                        .await
                        .unwrap()
                })
            })
            .collect();
        let mut kept = 0;
        for task in tasks {
            kept += usize::from(task.await.unwrap());
        }
        assert_eq!(kept, 1, "round {round}");
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_classified_error() {
    let Some(mut server) = server() else { return };
    let state = RedisState::new(RedisConfig::new(server.url())).unwrap();
    let store = state.responses(1024);
    store.put("r", None, b"{}".to_vec(), DAY).await.unwrap();
    server.stop();
    let err = store.get("r").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert_eq!(err.reason_code(), "response_store_unreachable");
}
