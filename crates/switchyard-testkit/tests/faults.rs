//! The fault catalogue, on both APIs, per script and server-wide.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

const OLLAMA: &str = "/api/chat";
const OPENAI: &str = "/v1/chat/completions";

fn stream_body(path: &str, model: &str) -> String {
    let mut v =
        json!({"model": model, "stream": true, "messages": [{"role": "user", "content": "hi"}]});
    if path == OPENAI {
        v["stream_options"] = json!({"include_usage": true});
    }
    v.to_string()
}

async fn with_script_fault(fault: Fault) -> TestUpstream {
    TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::text(["one", "two", "three", "four"]).with_fault(fault),
    ))
    .await
    .unwrap()
}

/// The raw body of a streamed chat (must complete).
async fn stream_text(up: &TestUpstream, path: &str) -> (u16, String) {
    let r = post(
        &format!("{}{path}", up.base_url()),
        stream_body(path, "test-model"),
    )
    .await;
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Reads a streamed chat until the body ends, or until no chunk came for `idle_ms`;
/// returns what arrived and how it ended: `Some(true)` body error, `Some(false)` clean end,
/// `None` still open (stalled).
async fn read_until_stall(up: &TestUpstream, path: &str, idle_ms: u64) -> (String, Option<bool>) {
    let mut r = client()
        .post(format!("{}{path}", up.base_url()))
        .body(stream_body(path, "test-model"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let mut got = Vec::new();
    let ended = loop {
        match tokio::time::timeout(Duration::from_millis(idle_ms), r.chunk()).await {
            Err(_) => break None,
            Ok(Ok(Some(b))) => got.extend_from_slice(&b),
            Ok(Ok(None)) => break Some(false),
            Ok(Err(_)) => break Some(true),
        }
    };
    (String::from_utf8(got).unwrap(), ended)
}

#[tokio::test]
async fn hang_after_chunks_sends_n_chunks_then_stays_silent() {
    let up = with_script_fault(Fault::HangAfterChunks(2)).await;
    let (got, ended) = read_until_stall(&up, OLLAMA, 500).await;
    assert_eq!(ended, None, "still open");
    assert_eq!(ollama_text(&ndjson(&got)), "onetwo");
    let (got, ended) = read_until_stall(&up, OPENAI, 500).await;
    assert_eq!(ended, None);
    let data = sse_data(&got);
    assert_eq!(data.len(), 2, "role chunk + one text chunk");
    // Not streamed: never answered.
    let e = short_client(300)
        .post(format!("{}{OLLAMA}", up.base_url()))
        .body(chat_body("test-model", Some(false)))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout());
}

#[tokio::test]
async fn drop_after_chunks_aborts_the_connection() {
    let up = with_script_fault(Fault::DropAfterChunks(3)).await;
    let (got, ended) = read_until_stall(&up, OLLAMA, 2000).await;
    assert_eq!(ended, Some(true), "body error, not a clean end");
    assert_eq!(ollama_text(&ndjson(&got)), "onetwothree");
    let (got, ended) = read_until_stall(&up, OPENAI, 2000).await;
    assert_eq!(ended, Some(true));
    assert_eq!(sse_data(&got).len(), 3);
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert!(
        r.text().await.is_err(),
        "half a body then the connection is gone"
    );
    assert_eq!(
        up.aborted_streams(),
        0,
        "ended by the server, not by the client"
    );
}

#[tokio::test]
async fn malformed_line_is_not_json_and_the_stream_goes_on() {
    let up = with_script_fault(Fault::MalformedLine).await;
    let (_, text) = stream_text(&up, OLLAMA).await;
    let lines: Vec<&str> = text.lines().collect();
    assert!(serde_json::from_str::<Value>(lines[1]).is_err());
    let last: Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!(last["done"], true);
    let (_, text) = stream_text(&up, OPENAI).await;
    let data = sse_data(&text);
    assert!(serde_json::from_str::<Value>(&data[1]).is_err());
    assert_eq!(data.last().unwrap(), "[DONE]");
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
}

#[tokio::test]
async fn error_line_ends_the_stream_under_http_200() {
    let up = with_script_fault(Fault::ErrorLine("runner crashed".into())).await;
    let (status, text) = stream_text(&up, OLLAMA).await;
    assert_eq!(status, 200);
    let lines = ndjson(&text);
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1], json!({"error": "runner crashed"}));
    let (status, text) = stream_text(&up, OPENAI).await;
    assert_eq!(status, 200);
    let data = sse_data(&text);
    assert_eq!(data.len(), 2);
    let err: Value = serde_json::from_str(&data[1]).unwrap();
    assert_eq!(err["error"]["message"], "runner crashed");
    assert!(err["error"]["type"].is_string());
    // Not streamed: HTTP 500 with the error.
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "runner crashed"})
    );
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 500);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "runner crashed"
    );
}

#[tokio::test]
async fn oversized_line_is_one_valid_long_chunk() {
    let up = with_script_fault(Fault::OversizedLine(100_000)).await;
    let (_, text) = stream_text(&up, OLLAMA).await;
    let lines = ndjson(&text);
    assert_eq!(
        lines[1]["message"]["content"].as_str().unwrap().len(),
        100_000
    );
    assert_eq!(ollama_text(&lines).len(), 100_000 + "onetwothreefour".len());
    let (_, text) = stream_text(&up, OPENAI).await;
    let chunks = sse_chunks(&text);
    assert_eq!(
        chunks[1]["choices"][0]["delta"]["content"]
            .as_str()
            .unwrap()
            .len(),
        100_000
    );
    // Not streamed: no effect.
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["message"]["content"],
        "onetwothreefour"
    );
}

#[tokio::test]
async fn no_done_ends_cleanly_without_the_final_part() {
    let up = with_script_fault(Fault::NoDone).await;
    let (status, text) = stream_text(&up, OLLAMA).await;
    assert_eq!(status, 200);
    let lines = ndjson(&text);
    assert_eq!(lines.len(), 4);
    assert!(lines.iter().all(|l| l["done"] == false));
    let (_, text) = stream_text(&up, OPENAI).await;
    let data = sse_data(&text);
    assert_eq!(data.len(), 5, "role + 4 text chunks");
    assert!(
        data.iter()
            .all(|d| d != "[DONE]" && !d.contains("finish_reason\":\""))
    );
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(serde_json::from_str::<Value>(&r.text().await.unwrap()).is_err());
}

#[tokio::test]
async fn http_errors_in_each_api_shape() {
    let up = with_script_fault(Fault::HttpError {
        status: 503,
        message: "server busy".into(),
    })
    .await;
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        stream_body(OLLAMA, "test-model"),
    )
    .await;
    assert_eq!(r.status(), 503);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "server busy"})
    );
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        stream_body(OPENAI, "test-model"),
    )
    .await;
    assert_eq!(r.status(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["message"], "server busy");
    assert_eq!(v["error"]["type"], "server_error");
    assert!(v["error"]["param"].is_null());

    up.set_script(
        "test-model",
        Script::default().with_fault(Fault::HttpError {
            status: 400,
            message: "This model's maximum context length is 8192 tokens.".into(),
        }),
    );
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "context_length_exceeded"
    );
    up.set_script(
        "test-model",
        Script::default().with_fault(Fault::HttpError {
            status: 429,
            message: "You exceeded your current quota.".into(),
        }),
    );
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "insufficient_quota"
    );
}

#[tokio::test]
async fn rate_limited_carries_retry_after() {
    let up = with_script_fault(Fault::RateLimited {
        retry_after_secs: 7,
    })
    .await;
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert_eq!(r.headers()["x-ratelimit-remaining-requests"], "0");
    assert_eq!(r.headers()["x-ratelimit-reset-requests"], "7s");
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
}

#[tokio::test]
async fn unauthorized_in_each_api_shape() {
    let up = with_script_fault(Fault::Unauthorized).await;
    let r = post(
        &format!("{}{OPENAI}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["code"],
        "invalid_api_key"
    );
    let r = post(
        &format!("{}{OLLAMA}", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "unauthorized"})
    );
}

#[tokio::test]
async fn script_refuse_closes_without_a_response_and_hang_never_answers() {
    let up = with_script_fault(Fault::Refuse).await;
    for path in [OLLAMA, OPENAI] {
        let e = client()
            .post(format!("{}{path}", up.base_url()))
            .body(chat_body("test-model", None))
            .send()
            .await
            .unwrap_err();
        assert!(!e.is_timeout(), "{e:?}");
    }
    // Other paths and models are unaffected.
    let r = client()
        .get(format!("{}/api/tags", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    up.set_script(
        "test-model",
        Script::default().with_fault(Fault::AcceptAndHang),
    );
    for path in [OLLAMA, OPENAI] {
        let e = short_client(300)
            .post(format!("{}{path}", up.base_url()))
            .body(chat_body("test-model", None))
            .send()
            .await
            .unwrap_err();
        assert!(e.is_timeout(), "{e:?}");
    }
    assert_eq!(
        up.chat_requests().len(),
        4,
        "the hung requests were read and recorded"
    );
}

#[tokio::test]
async fn server_wide_faults_override_scripts_and_apply_to_every_path() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::HttpError {
        status: 502,
        message: "bad gateway".into(),
    }));
    for path in ["/api/tags", "/api/version", "/v1/models"] {
        let r = client()
            .get(format!("{}{path}", up.base_url()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 502, "{path}");
    }
    let r = client()
        .get(format!("{}/v1/models", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.json::<Value>().await.unwrap()["error"]["message"],
        "bad gateway"
    );

    // A stream fault set server-wide applies to chat only, overriding the script.
    up.set_fault(Some(Fault::ErrorLine("boom".into())));
    assert_eq!(
        client()
            .get(format!("{}/api/tags", up.base_url()))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let (_, text) = stream_text(&up, OLLAMA).await;
    assert_eq!(ndjson(&text).last().unwrap(), &json!({"error": "boom"}));
    assert_eq!(up.fault(), Some(Fault::ErrorLine("boom".into())));

    up.set_fault(None);
    let (_, text) = stream_text(&up, OLLAMA).await;
    assert_eq!(ndjson(&text).last().unwrap()["done"], true);
}

#[tokio::test]
async fn server_wide_accept_and_hang_accepts_but_never_answers() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    up.set_fault(Some(Fault::AcceptAndHang));
    // The TCP connect succeeds...
    let conn = tokio::time::timeout(T, tokio::net::TcpStream::connect(up.addr())).await;
    assert!(conn.unwrap().is_ok());
    // ...but nothing is answered.
    let e = short_client(300)
        .get(format!("{}/api/version", up.base_url()))
        .send()
        .await
        .unwrap_err();
    assert!(e.is_timeout() && !e.is_connect(), "{e:?}");
    assert_eq!(up.request_count(), 0, "never read");
    up.set_fault(None);
    let r = client()
        .get(format!("{}/api/version", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn server_wide_refuse_also_closes_kept_alive_connections() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let c = client();
    let url = format!("{}/api/version", up.base_url());
    assert_eq!(c.get(&url).send().await.unwrap().status(), 200);
    up.set_fault(Some(Fault::Refuse));
    // Whether reqwest reuses the pooled connection (closed without an answer) or
    // connects again (refused), the request fails without a response.
    let e = c.get(&url).send().await.unwrap_err();
    assert!(!e.is_timeout(), "{e:?}");
    let e = reqwest::Client::new().get(&url).send().await.unwrap_err();
    assert!(e.is_connect(), "{e:?}");
    up.set_fault(None);
    assert_eq!(
        reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}
