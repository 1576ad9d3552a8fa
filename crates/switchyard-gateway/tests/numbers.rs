#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The figures a user reads: `x-switchyard-overhead-ms` and
//! `switchyard_gateway_overhead_seconds` on the less common paths (a streamed answer read
//! slowly by its client, embeddings and text completion).
//!
//! Each test owns one `api` label of the overhead histogram (this binary's recorder is
//! shared by its tests): the streamed test `openai`, the embeddings/generate test `ollama`,
//! the attempts test `anthropic`.

use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod support;

use support::{
    Kind, WAIT, gateway_config, http, metrics_handle, new_gateway, provider_with, router_over,
    serve_until_stopped,
};

/// `switchyard_gateway_overhead_seconds{api}`: (sum in seconds, count).
fn overhead_of(api: &str) -> (f64, u64) {
    let text = metrics_handle().render();
    let value = |name: &str| {
        let prefix = format!("switchyard_gateway_overhead_seconds_{name}{{api=\"{api}\"}} ");
        text.lines()
            .find_map(|l| l.strip_prefix(prefix.as_str()))
            .map_or(0.0, |v| v.trim().parse::<f64>().unwrap())
    };
    (value("sum"), value("count") as u64)
}

/// Waits until the histogram of `api` counted `count` requests (a streamed answer records
/// it when its body ends, just after the client has the last byte).
async fn overhead_count_reaches(api: &str, count: u64) -> (f64, u64) {
    for _ in 0..250 {
        let now = overhead_of(api);
        if now.1 >= count {
            return now;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    overhead_of(api)
}

/// A provider for `upstream` whose idle timeout is long enough that a client pausing its
/// reads never trips it.
fn patient_provider(upstream: &TestUpstream) -> std::sync::Arc<dyn switchyard_core::Provider> {
    let client = ClientConfig {
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            first_token: Duration::from_secs(10),
            idle: Duration::from_secs(30),
            total: None,
        },
        ..ClientConfig::default()
    };
    provider_with(Kind::Ollama, upstream, Locality::Local, client, false)
}

/// README, header table: `x-switchyard-overhead-ms` is "time the gateway itself spent before
/// the headers went out"; telemetry.rs: `switchyard_gateway_overhead_seconds` is "time the
/// gateway itself added to a chat request (total time minus the time spent waiting on
/// upstreams)". For a whole answer the header and the histogram record the same figure
/// (chat.rs `whole`). For a streamed answer the histogram is recorded only when the body
/// ends or is dropped (body.rs `ChatBody::finish` / `Drop` -> `record_overhead`), as
/// `started.elapsed() - upstream_wait`: every moment the body was not being polled because
/// the *client* was not reading (TCP back-pressure) is booked as the gateway's own
/// overhead. A client on a slow link, or one that pauses between reads, makes the gateway
/// look seconds slow in `/metrics` while its header for the same request says about 0 ms.
///
/// Right behaviour: time spent waiting on the client to take the bytes is neither the
/// gateway's work nor the upstream's; the histogram must not count it (measure a streamed
/// answer's overhead as the header does, or exclude time the body was not polled).
/// Relation checked: the overhead recorded for one streamed request is less than half of
/// the 3 s its client deliberately paused before reading the body (the answer, 8 MiB, is
/// larger than the socket buffers, so the gateway's writes block during the pause).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_pausing_its_reads_is_not_gateway_overhead() {
    // 128 chunks of 64 KiB: 8 MiB of answer, about twice what the socket buffers hold.
    let chunk = "a".repeat(64 * 1024);
    let upstream = TestUpstream::start(UpstreamConfig {
        default_script: Script::text(vec![chunk; 128]),
        ..UpstreamConfig::default()
    })
    .await
    .unwrap();
    let slot = ProviderSlot::new("up", patient_provider(&upstream), Locality::Local);
    let router = router_over(
        vec![slot],
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    let gateway = new_gateway(router, gateway_config()).with_metrics_handle(metrics_handle());
    let running = serve_until_stopped(gateway).await;
    let before = overhead_of("openai");

    // A raw client with a small receive buffer, so little of the answer fits on its side.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let mut conn = socket.connect(running.addr).await.unwrap();
    let body = json!({"model": "chat", "stream": true,
                      "messages": [{"role": "user", "content": "Hi"}]})
    .to_string();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(body.as_bytes()).await.unwrap();
    // Read the response head only.
    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    let head_end = tokio::time::timeout(WAIT, async {
        loop {
            let n = conn.read(&mut buf).await.unwrap();
            assert!(n > 0, "the gateway closed before the response head");
            got.extend_from_slice(&buf[..n]);
            if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
                return at;
            }
        }
    })
    .await
    .unwrap();
    let head = String::from_utf8_lossy(&got[..head_end]).to_lowercase();
    assert!(head.starts_with("http/1.1 200"), "{head}");
    let header_ms: f64 = head
        .lines()
        .find_map(|l| l.strip_prefix("x-switchyard-overhead-ms:"))
        .expect("an overhead header")
        .trim()
        .parse()
        .unwrap();

    // The client pauses, then reads the whole answer.
    let pause = Duration::from_secs(3);
    tokio::time::sleep(pause).await;
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut rest))
        .await
        .expect("the answer ends")
        .unwrap();
    got.extend_from_slice(&rest);
    assert!(got.len() > 8 * 1024 * 1024, "the whole answer arrived");
    let tail = String::from_utf8_lossy(&got[got.len() - 64..]).into_owned();
    assert!(
        tail.contains("[DONE]"),
        "the answer ended normally: {tail:?}"
    );

    let after = overhead_count_reaches("openai", before.1 + 1).await;
    assert_eq!(after.1, before.1 + 1, "one streamed request recorded");
    let recorded = after.0 - before.0;
    assert!(
        recorded < pause.as_secs_f64() / 2.0,
        "switchyard_gateway_overhead_seconds recorded {recorded:.3} s for a streamed answer whose \
         x-switchyard-overhead-ms said {header_ms} ms: the {pause:?} the client took to read was \
         booked as the gateway's own overhead"
    );
    let _ = running.stop.send(());
    let _ = tokio::time::timeout(WAIT, running.task).await;
    upstream.shutdown().await;
}

/// embed.rs module doc: embeddings are "Routed like chats (routes, privacy, fallback,
/// budgets ..., the decision record, headers, metrics)", and generate.rs: "Routed like
/// chats". Both answer with `x-switchyard-overhead-ms` (chat.rs `routing_headers`), but
/// neither records `switchyard_gateway_overhead_seconds` (only chat.rs, responses/mod.rs,
/// responses/compact.rs and body.rs `ChatBody` call `telemetry::record_overhead`;
/// embed.rs `run` and generate.rs `run`/`Answer::streamed`/`Answer::whole` do not). So the
/// gateway-overhead histogram silently leaves out every `/api/embed`, `/api/embeddings`,
/// `/v1/embeddings`, `/api/generate` and `/v1/completions` request: a RAG workload's
/// overhead is invisible in `/metrics`, and the histogram's count disagrees with
/// `switchyard_requests_total` and the answers that carry the header.
///
/// Right behaviour: every routed answer that carries `x-switchyard-overhead-ms` is also
/// counted once in `switchyard_gateway_overhead_seconds{api}` (here three Ollama-API
/// answers: one embedding, one whole and one streamed completion).
#[tokio::test]
async fn embeddings_and_completions_record_the_gateway_overhead() {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slot = ProviderSlot::new("up", patient_provider(&upstream), Locality::Local);
    let router = router_over(
        vec![slot],
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    let gateway = new_gateway(router, gateway_config()).with_metrics_handle(metrics_handle());
    let running = serve_until_stopped(gateway).await;
    let url = |path: &str| format!("http://{}{path}", running.addr);
    let before = overhead_of("ollama");

    let requests: [(&str, Value); 3] = [
        ("/api/embed", json!({"model": "chat", "input": ["a", "b"]})),
        (
            "/api/generate",
            json!({"model": "chat", "prompt": "Hi", "stream": false}),
        ),
        (
            "/api/generate",
            json!({"model": "chat", "prompt": "Hi", "stream": true}),
        ),
    ];
    for (path, body) in &requests {
        let r = http().post(url(path)).json(body).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        assert!(
            r.headers().contains_key("x-switchyard-overhead-ms"),
            "{path} answers with the overhead header"
        );
        let _ = r.text().await.unwrap();
    }

    let after = overhead_count_reaches("ollama", before.1 + 3).await;
    assert_eq!(
        after.1 - before.1,
        3,
        "switchyard_gateway_overhead_seconds{{api=\"ollama\"}} counted {} of the 3 embedding and \
         completion answers that carried x-switchyard-overhead-ms",
        after.1 - before.1
    );
    let _ = running.stop.send(());
    let _ = tokio::time::timeout(WAIT, running.task).await;
    upstream.shutdown().await;
}

/// README, header table, and chat.rs `ATTEMPTS_HEADER`: `x-switchyard-attempts` is the
/// number of "upstream requests made for the answer: every target tried, its retries and
/// the serving one included". A target refused by its own queue (`max_queue` reached:
/// `queue_full`, or `Timeout(Queue)`) is never sent a request, yet route.rs
/// `Target::attempt` pushes its admission failure into `progress.failed` like an upstream
/// failure, and chat.rs `routing_headers` writes `attempts().len() + 1`: an answer that
/// overflowed to the next target (`overflow_queue_full`) after exactly one upstream
/// request says `x-switchyard-attempts: 2`. An operator reading 2 concludes an upstream
/// failed (or was billed twice) when none was asked.
///
/// Right behaviour: the header equals the upstream requests made for the answer (here
/// 1; the admission refusal stays in the decision record's attempts and in the route
/// reason). Relation checked: header == chat requests the upstream received for it.
#[tokio::test]
async fn an_overflow_past_a_full_queue_reports_the_upstream_requests_actually_made() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(40, Duration::from_millis(25)),
    );
    let upstream = TestUpstream::start(upstream).await.unwrap();
    let mut busy = ProviderSlot::new("a", patient_provider(&upstream), Locality::Local);
    busy.max_concurrency = 1;
    busy.max_queue = 0;
    let spare = ProviderSlot::new("b", patient_provider(&upstream), Locality::Local);
    let router = router_over(
        vec![busy, spare],
        json!({ "routes": { "chat": { "targets": ["a/test-model", "b/test-model"] } } }),
    );
    let gateway = new_gateway(router, gateway_config());
    let running = serve_until_stopped(gateway).await;
    // The Anthropic API (any would do): the other tests own the `openai` and `ollama` labels.
    let url = format!("http://{}/v1/messages", running.addr);
    let chats = || upstream.requests().iter().filter(|r| r.is_chat()).count();

    // A streamed answer holds `a`'s one slot while it streams.
    let holding = http()
        .post(&url)
        .json(&json!({"model": "chat", "stream": true, "max_tokens": 64,
                      "messages": [{"role": "user", "content": "first"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(holding.status(), 200);
    assert_eq!(holding.headers()["x-switchyard-target"], "a/test-model");
    let before = chats();

    let r = http()
        .post(&url)
        .json(&json!({"model": "chat", "stream": false, "max_tokens": 64,
                      "messages": [{"role": "user", "content": "second"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-switchyard-target"], "b/test-model");
    assert_eq!(
        r.headers()["x-switchyard-route-reason"],
        "overflow_queue_full"
    );
    let attempts: usize = r.headers()["x-switchyard-attempts"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let _ = r.text().await.unwrap();
    let made = chats() - before;
    assert_eq!(made, 1, "the second answer asked one upstream");
    assert_eq!(
        attempts, made,
        "x-switchyard-attempts says {attempts} upstream requests, but {made} was made (the \
         target refused by its full queue was never sent one)"
    );
    let _ = holding.text().await.unwrap();
    let _ = running.stop.send(());
    let _ = tokio::time::timeout(WAIT, running.task).await;
    upstream.shutdown().await;
}
