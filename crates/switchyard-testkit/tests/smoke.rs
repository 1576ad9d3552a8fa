//! The basics others rely on first: start, text chat on both APIs, recording, refused and
//! black-holed addresses.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use switchyard_testkit::{BlackHole, Fault, TestUpstream, UpstreamConfig, refused_addr};

const T: Duration = Duration::from_secs(5);

fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(T).build().unwrap()
}

#[tokio::test]
async fn text_chat_on_both_apis_is_recorded() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let c = client();
    let r = c
        .post(format!("{}/api/chat", up.base_url()))
        .body(r#"{"model":"test-model","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let text = r.text().await.unwrap();
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let content: String = lines
        .iter()
        .map(|l| l["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(content, "Hello from the test upstream.");
    assert_eq!(lines.last().unwrap()["done"], true);

    let r = c
        .post(format!("{}/chat/completions", up.openai_base_url()))
        .body(r#"{"model":"test-model","messages":[{"role":"user","content":"hi"}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        "Hello from the test upstream."
    );
    assert_eq!(v["choices"][0]["finish_reason"], "stop");

    assert_eq!(up.request_count(), 2);
    let chats = up.chat_requests();
    assert_eq!(chats.len(), 2);
    assert_eq!(chats[0].path, "/api/chat");
    assert_eq!(chats[1].path, "/v1/chat/completions");
    assert_eq!(chats[1].model().as_deref(), Some("test-model"));
    up.shutdown().await;
}

#[tokio::test]
async fn refused_and_black_holed_addresses_fail_differently() {
    let c = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let e = c
        .get(format!("http://{}/", refused_addr()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    let hole = BlackHole::start().await.unwrap();
    let e = c
        .get(format!("{}/api/version", hole.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
}

#[tokio::test]
async fn refuse_closes_the_port_and_clearing_reopens_it() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let c = reqwest::Client::builder()
        .timeout(T)
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let url = format!("{}/api/version", up.base_url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    up.set_fault(Some(Fault::Refuse));
    let e = c.get(&url).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    up.set_fault(None);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    up.set_fault(Some(Fault::Refuse));
    assert!(c.get(&url).send().await.unwrap_err().is_connect());
    up.set_fault(None);
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_port_stays_reserved_while_refusing() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::Refuse));
    // Let the accept loop drop its (shut down) listener: only the reservation is left.
    tokio::time::sleep(Duration::from_millis(50)).await;
    // A socket without SO_REUSEADDR cannot take the port meanwhile.
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    let err = s.bind(&up.addr().into()).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::AddrInUse);
    up.set_fault(None);
    let r = client()
        .get(format!("{}/api/version", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
