//! Server behaviour: delays, recording, blocked paths, stream counting, runtime changes,
//! fast mode, shutdown.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};
use switchyard_testkit::{Delays, Fault, ModelSpec, Script, TestUpstream, UpstreamConfig};

/// Polls `f` until it holds or `T` passes.
async fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + T;
    while Instant::now() < end {
        if f() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    f()
}

#[tokio::test]
async fn delays_before_headers_first_chunk_and_between_chunks() {
    let delays = Delays {
        before_headers: Duration::from_millis(150),
        before_first_chunk: Duration::from_millis(150),
        between_chunks: Duration::from_millis(50),
    };
    let up = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c"]).with_delays(delays),
    ))
    .await
    .unwrap();
    let start = Instant::now();
    let mut r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    let headers_at = start.elapsed();
    assert!(headers_at >= Duration::from_millis(150), "{headers_at:?}");
    let first = r.chunk().await.unwrap().unwrap();
    let first_at = start.elapsed();
    assert!(
        first_at - headers_at >= Duration::from_millis(140),
        "{first_at:?}"
    );
    assert!(String::from_utf8_lossy(&first).contains("\"a\""));
    let mut rest = Vec::new();
    while let Some(b) = r.chunk().await.unwrap() {
        rest.extend_from_slice(&b);
    }
    // Three more frames (b, c, done), each after a 50 ms pause.
    assert!(start.elapsed() - first_at >= Duration::from_millis(140));
    assert_eq!(ndjson(&String::from_utf8(rest).unwrap()).len(), 3);
}

#[tokio::test]
async fn a_slow_stream_keeps_producing() {
    let up = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(6, Duration::from_millis(40)),
    ))
    .await
    .unwrap();
    let start = Instant::now();
    let text = post(
        &format!("{}/v1/chat/completions", up.base_url()),
        json!({
            "model": "test-model", "stream": true, "messages": []
        })
        .to_string(),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(start.elapsed() >= Duration::from_millis(6 * 40));
    assert_eq!(
        openai_text(&sse_chunks(&text)),
        "tok0 tok1 tok2 tok3 tok4 tok5 "
    );
}

#[tokio::test]
async fn fast_mode_skips_delays_and_answers_the_same() {
    let script = Script::text(["x", "y"]).with_delays(Delays {
        before_headers: Duration::from_secs(30),
        before_first_chunk: Duration::from_secs(30),
        between_chunks: Duration::from_secs(30),
    });
    let up = TestUpstream::start(UpstreamConfig::bench().script("bench", script))
        .await
        .unwrap();
    for stream in [None, Some(false)] {
        let r = post(
            &format!("{}/api/chat", up.base_url()),
            chat_body("bench", stream),
        )
        .await;
        let text = r.text().await.unwrap();
        if stream.is_none() {
            assert_eq!(ollama_text(&ndjson(&text)), "xy");
        } else {
            assert_eq!(
                serde_json::from_str::<Value>(&text).unwrap()["message"]["content"],
                "xy"
            );
        }
    }
    let body = json!({"model": "bench", "stream": true, "stream_options": {"include_usage": true}, "messages": []});
    let text = post(
        &format!("{}/v1/chat/completions", up.base_url()),
        body.to_string(),
    )
    .await
    .text()
    .await
    .unwrap();
    let chunks = sse_chunks(&text);
    assert_eq!(openai_text(&chunks), "xy");
    assert_eq!(chunks.last().unwrap()["choices"], json!([]));
    // Faults still apply in fast mode.
    up.set_fault(Some(Fault::NoDone));
    let text = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("bench", None),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(ndjson(&text).iter().all(|l| l["done"] == false));
}

#[tokio::test]
async fn recording_is_bounded_and_counters_exact() {
    let up = TestUpstream::start(UpstreamConfig::default().record_limit(3))
        .await
        .unwrap();
    let c = client();
    for i in 0..5 {
        c.get(format!("{}/api/tags?i={i}", up.base_url()))
            .header("x-test", format!("v{i}"))
            .send()
            .await
            .unwrap();
    }
    let r = c
        .post(format!("{}/v1/chat/completions", up.base_url()))
        .header("authorization", "Bearer abc")
        .body(chat_body("test-model", None))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(up.request_count(), 6);
    assert_eq!(up.chat_request_count(), 1);
    let rec = up.requests();
    assert_eq!(rec.len(), 3);
    assert_eq!(rec[0].query.as_deref(), Some("i=3"));
    assert_eq!(rec[0].header("X-Test"), Some("v3"));
    assert_eq!(rec[0].method, "GET");
    assert_eq!(rec[2].method, "POST");
    assert_eq!(rec[2].path, "/v1/chat/completions");
    assert_eq!(rec[2].header("authorization"), Some("Bearer abc"));
    assert_eq!(rec[2].body_json().unwrap()["messages"][0]["content"], "hi");
    assert!(rec[2].body_text().contains("test-model"));
    assert!(rec[2].is_chat() && !rec[0].is_chat());
    assert_eq!(up.chat_requests().len(), 1);
    up.clear_requests();
    assert_eq!(
        (
            up.request_count(),
            up.chat_request_count(),
            up.requests().len()
        ),
        (0, 0, 0)
    );
}

#[tokio::test]
async fn blocked_paths_answer_an_nginx_404() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_blocked_paths(vec!["/api/show".into(), "/v1".into()]);
    let r = post(
        &format!("{}/api/show", up.base_url()),
        r#"{"model":"test-model"}"#.into(),
    )
    .await;
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["server"], "nginx/1.24.0");
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let page = r.text().await.unwrap();
    assert!(page.contains("<center><h1>404 Not Found</h1></center>") && page.contains("nginx"));
    let r = client()
        .get(format!("{}/v1/models", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("nginx"));
    // Not blocked: a sibling path, and a path that merely shares a prefix.
    assert_eq!(
        client()
            .get(format!("{}/api/tags", up.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = client()
        .get(format!("{}/v1x", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.text().await.unwrap(), "404 page not found");
    assert_eq!(up.request_count(), 4, "blocked requests are recorded");
    up.set_blocked_paths(vec![]);
    assert_eq!(
        client()
            .get(format!("{}/v1/models", up.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

#[tokio::test]
async fn a_client_leaving_mid_stream_counts_as_aborted() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("slow", Script::slow_stream(100, Duration::from_millis(20)))
            .model_with_script(
                "hang",
                Script::default().with_fault(Fault::HangAfterChunks(1)),
            ),
    )
    .await
    .unwrap();
    assert_eq!((up.open_streams(), up.aborted_streams()), (0, 0));

    // A complete stream is neither open nor aborted afterwards.
    let text = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", None),
    )
    .await
    .text()
    .await
    .unwrap();
    assert!(!text.is_empty());
    assert!(eventually(|| up.open_streams() == 0).await);
    assert_eq!(up.aborted_streams(), 0);

    for (model, path) in [("slow", "/api/chat"), ("hang", "/v1/chat/completions")] {
        let before = up.aborted_streams();
        let body = json!({"model": model, "stream": true, "messages": []}).to_string();
        let mut r = post(&format!("{}{path}", up.base_url()), body).await;
        assert!(r.chunk().await.unwrap().is_some());
        assert!(eventually(|| up.open_streams() == 1).await);
        drop(r);
        assert!(
            eventually(|| up.aborted_streams() == before + 1).await,
            "{model}"
        );
        assert!(eventually(|| up.open_streams() == 0).await);
    }

    // A client giving up while the server waits before the headers.
    up.set_script(
        "test-model",
        Script::default().with_delays(Delays {
            before_headers: Duration::from_secs(5),
            ..Delays::default()
        }),
    );
    let before = up.aborted_streams();
    let e = short_client(200)
        .post(format!("{}/api/chat", up.base_url()))
        .body(chat_body("test-model", None))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout());
    assert!(eventually(|| up.aborted_streams() == before + 1).await);
    assert!(eventually(|| up.open_streams() == 0).await);
}

#[tokio::test]
async fn scripts_and_models_change_at_runtime() {
    let up = TestUpstream::start(UpstreamConfig::empty()).await.unwrap();
    let tags: Value = client()
        .get(format!("{}/api/tags", up.base_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(tags, json!({"models": []}));
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("new", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 404);
    up.set_script("new", Script::text(["fresh"]));
    let v: Value = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("new", Some(false)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["message"]["content"], "fresh");
    up.set_script("new", Script::text(["changed"]));
    let v: Value = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("new", Some(false)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["message"]["content"], "changed");
    up.set_models(vec![ModelSpec::new("other")]);
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("new", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 404);
    let v: Value = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("other", Some(false)),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(v["message"]["content"], "Hello from the test upstream.");
}

#[tokio::test]
async fn many_requests_over_kept_alive_connections() {
    let up = TestUpstream::start(UpstreamConfig::bench()).await.unwrap();
    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let c = c.clone();
        let url = format!("{}/v1/chat/completions", up.base_url());
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                let r = c
                    .post(&url)
                    .body(chat_body("bench", Some(true)))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 200);
                assert!(r.text().await.unwrap().ends_with("data: [DONE]\n\n"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(up.request_count(), 400);
    assert_eq!(up.requests().len(), 64, "bench keeps a small log");
}

#[tokio::test]
async fn shutdown_closes_the_port() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let url = format!("{}/api/version", up.base_url());
    assert_eq!(client().get(&url).send().await.unwrap().status(), 200);
    up.shutdown().await;
    let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
}

#[tokio::test]
async fn listens_on_a_chosen_address() {
    let addr = switchyard_testkit::refused_addr();
    let up = TestUpstream::start(UpstreamConfig::default().listen(addr))
        .await
        .unwrap();
    assert_eq!(up.addr(), addr);
    assert_eq!(up.openai_base_url(), format!("http://{addr}/v1"));
}

#[tokio::test]
async fn bad_input_never_takes_the_server_down() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let up = TestUpstream::start(UpstreamConfig::default().max_body_bytes(64 * 1024))
        .await
        .unwrap();
    let garbage: [&[u8]; 4] = [
        b"GARBAGE\r\n\r\n",
        b"\x00\xff\xfe\r\n\r\n",
        b"POST /api/chat HTTP/1.1\r\nhost: x\r\nconnection: close\r\ncontent-length: 5\r\n\r\n\xff\xfe\x00\x01\x02",
        b"POST /api/chat HTTP/1.1\r\nhost: x\r\nconnection: close\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
    ];
    for bytes in garbage {
        let mut s = tokio::net::TcpStream::connect(up.addr()).await.unwrap();
        s.write_all(bytes).await.unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(T, s.read_to_end(&mut out))
            .await
            .unwrap();
        let head = String::from_utf8_lossy(&out);
        assert!(out.is_empty() || head.starts_with("HTTP/1.1 4"), "{head}");
    }
    // Huge headers are refused by the HTTP layer, not by a crash.
    let r = client()
        .get(format!("{}/api/tags", up.base_url()))
        .header("x-big", "a".repeat(1024 * 1024))
        .send()
        .await;
    assert!(r.is_err() || r.unwrap().status().is_client_error());
    // Wrong JSON types in a chat request.
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        r#"{"model":5,"stream":"yes"}"#.into(),
    )
    .await;
    assert_eq!(r.status(), 400);
    let r = post(
        &format!("{}/v1/chat/completions", up.base_url()),
        r#"{"model":"test-model","stream_options":7}"#.into(),
    )
    .await;
    assert_eq!(r.status(), 400);
    // Still serving.
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
}
