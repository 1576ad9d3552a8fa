//! The standing adversarial suite: what an adversarial run against the gateway tried
//! (issue 16), replayed over real loopback sockets with raw bytes where a polite client
//! would not do it. Every case asserts the gateway's precise answer and that it keeps
//! serving afterwards. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::{Locality, PrivacyClass};
use switchyard_gateway::{ApiKey, GatewayConfig};
use switchyard_http::ClientConfig;
use switchyard_router::ProviderSlot;
use switchyard_testkit::support::{GUARD, guarded, timeouts};
use switchyard_testkit::{Fault, ModelSpec, Script, TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

mod support;

use support::{Kind, new_gateway, provider_with, router_over, serve_until_stopped};

const KEY: &str = "sk-adversarial";

/// A gateway over one testkit Ollama upstream (`up`, route `chat` -> `up/test-model`).
struct Served {
    addr: SocketAddr,
    upstream: TestUpstream,
    _stop: oneshot::Sender<()>,
}

impl Served {
    async fn start(config: GatewayConfig) -> Served {
        Served::start_over(false, UpstreamConfig::default(), config).await
    }

    /// A gateway over a testkit upstream spoken to as Ollama, or as OpenAI (`openai`).
    async fn start_over(openai: bool, upstream: UpstreamConfig, config: GatewayConfig) -> Served {
        let upstream = TestUpstream::start(upstream).await.unwrap();
        let client = ClientConfig {
            timeouts: timeouts(2000, 2000),
            ..ClientConfig::default()
        };
        let kind = if openai { Kind::OpenAi } else { Kind::Ollama };
        let provider = provider_with(kind, &upstream, Locality::Local, client, false);
        let slot = ProviderSlot::new("up", provider, Locality::Local);
        let router = router_over(
            vec![slot],
            json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
        );
        let running = serve_until_stopped(new_gateway(router, config)).await;
        Served {
            addr: running.addr,
            upstream,
            _stop: running.stop,
        }
    }

    async fn connect(&self) -> TcpStream {
        guarded(TcpStream::connect(self.addr)).await.unwrap()
    }

    /// One HTTP/1.1 request on a new connection (`Connection: close`), raw: `head_extra`
    /// lines go after the request line.
    async fn raw(&self, method: &str, path: &str, head_extra: &str, body: &[u8]) -> Answer {
        let mut stream = self.connect().await;
        let head = format!(
            "{method} {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{head_extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        stream.write_all(body).await.unwrap();
        read_answer(&mut stream).await
    }

    /// `GET /healthz` answers `ok`: the gateway still serves.
    async fn assert_serving(&self) {
        let answer = self.raw("GET", "/healthz", "", b"").await;
        assert_eq!(answer.status, 200, "{answer:?}");
        assert_eq!(answer.body, "ok\n");
    }
}

fn config() -> GatewayConfig {
    GatewayConfig {
        keys: vec![ApiKey::new("adv", KEY)],
        header_read_timeout: Duration::from_secs(2),
        shutdown_grace: Duration::from_secs(1),
        ..GatewayConfig::default()
    }
}

fn auth() -> String {
    format!("Authorization: Bearer {KEY}\r\n")
}

/// A raw HTTP/1 answer.
#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {self:?}"))
    }

    /// The OpenAI error shape's `code`.
    fn openai_code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

/// Reads until the peer closes (the requests say `Connection: close`).
async fn read_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let _ = guarded(stream.read_to_end(&mut raw)).await;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    Answer {
        status,
        head: head.to_owned(),
        body: body.to_owned(),
    }
}

/// Whether `check` holds within five seconds (looked at every 20 ms).
async fn eventually(mut check: impl FnMut() -> bool) -> bool {
    for _ in 0..250 {
        if check() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

/// Whether the peer closes `stream` (EOF or reset) within [`GUARD`], whatever it sends
/// before.
async fn closed_by_peer(stream: &mut TcpStream) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

// ---- point 1: connections ----------------------------------------------------------

#[tokio::test]
async fn at_the_cap_the_oldest_idle_connection_is_shed_for_a_new_one() {
    let served = Served::start(GatewayConfig {
        max_connections: 2,
        header_read_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    // The gateway accepts in connection order (the listen backlog is a queue).
    let mut oldest = served.connect().await;
    let mut second = served.connect().await;
    // A third connection: the gateway sheds `oldest` (idle since accept) to serve it.
    served.assert_serving().await;
    assert!(closed_by_peer(&mut oldest).await, "the oldest idle is shed");
    // The second was not shed: it is served.
    second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut second).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn a_partial_http2_preface_and_a_preface_without_headers_are_closed() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let mut partial = served.connect().await;
    partial.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut no_headers = served.connect().await;
    no_headers
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut partial).await);
    assert!(closed_by_peer(&mut no_headers).await);
    served.assert_serving().await;
}

#[tokio::test]
async fn slowloris_headers_are_closed_at_the_head_deadline() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let stream = served.connect().await;
    assert!(
        drip_a_head(stream).await,
        "the dripping connection was closed"
    );
    served.assert_serving().await;
}

/// Sends a request head a byte every 100 ms (2000 bytes would take 200 s, longer than
/// any idle timeout here); whether the gateway closed the connection within [`GUARD`].
async fn drip_a_head(stream: TcpStream) -> bool {
    let (mut read, mut write) = stream.into_split();
    let dripping = tokio::spawn(async move {
        for b in b"GET /healthz HTTP/1.1\r\nX-Slow: "
            .iter()
            .chain([b'a'; 2000].iter())
        {
            if write.write_all(&[*b]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut buf = [0u8; 1024];
    let closed = tokio::time::timeout(GUARD, async {
        loop {
            match read.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    dripping.abort();
    closed.is_ok()
}

/// Reads one keep-alive answer: its head, then `content-length` bytes of body.
async fn read_one_answer(stream: &mut TcpStream) -> Answer {
    let mut raw = Vec::new();
    let mut byte = [0u8; 1];
    while !raw.ends_with(b"\r\n\r\n") {
        let n = guarded(stream.read(&mut byte)).await.unwrap();
        assert_eq!(n, 1, "the connection closed within a head: {raw:?}");
        raw.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&raw).into_owned();
    let mut answer = Answer {
        status: head
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0),
        head,
        body: String::new(),
    };
    let length: usize = answer
        .header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    guarded(stream.read_exact(&mut body)).await.unwrap();
    answer.body = String::from_utf8_lossy(&body).into_owned();
    answer
}

#[tokio::test]
async fn a_keep_alive_connection_idle_past_the_head_deadline_is_still_served() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.status, 200);
    // Idle for more than two head deadlines, far less than the idle timeout: the head
    // deadline only runs once a head starts.
    tokio::time::sleep(Duration::from_millis(1000)).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{answer:?}");
}

#[tokio::test]
async fn a_slowloris_second_head_on_a_keep_alive_connection_is_closed() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.status, 200);
    // The idle timeout is 120 s: only the head deadline can close it within GUARD.
    assert!(
        drip_a_head(stream).await,
        "the dripping second head was cut off"
    );
    served.assert_serving().await;
}

#[tokio::test]
async fn an_http2_connection_idle_past_the_head_deadline_is_still_served() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let tcp = served.connect().await;
    let (mut client, mut connection) = guarded(h2::client::handshake(tcp)).await.unwrap();
    let mut ping_pong = connection.ping_pong().unwrap();
    let connection = tokio::spawn(connection);
    for round in 0..2 {
        let request = http::Request::get(format!("http://{}/healthz", served.addr))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).unwrap();
        let response = guarded(response).await.unwrap();
        assert_eq!(response.status(), 200, "round {round}");
        // Frames arrive while no request runs (a ping here); none of them starts an
        // HTTP/1 head with a deadline.
        guarded(ping_pong.ping(h2::Ping::opaque())).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    drop(client);
    connection.abort();
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let served = Served::start(GatewayConfig {
        idle_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    let tcp = served.connect().await;
    let (mut client, connection) = guarded(h2::client::handshake(tcp)).await.unwrap();
    let connection = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/healthz", served.addr))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    let response = guarded(response).await.unwrap();
    assert_eq!(response.status(), 200);
    drop(client);
    // Idle from now on: the gateway closes the connection, which ends the client's task.
    guarded(connection).await.unwrap().ok();
    served.assert_serving().await;
}

#[tokio::test]
async fn a_client_that_stops_mid_body_gets_408_and_its_connection_closed() {
    let served = Served::start(GatewayConfig {
        body_read_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    for (path, openai) in [("/v1/chat/completions", true), ("/api/chat", false)] {
        let mut stream = served.connect().await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: gw\r\n{}Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"model\":",
            auth()
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // Nothing more is sent; the gateway answers and closes.
        let answer = read_answer(&mut stream).await;
        assert_eq!(answer.status, 408, "{answer:?}");
        assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
        if openai {
            assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
        } else {
            assert!(answer.json()["error"].as_str().is_some(), "{answer:?}");
        }
    }
    served.assert_serving().await;
    assert_eq!(served.upstream.chat_request_count(), 0);
}

// ---- point 6: memory held by request bodies --------------------------------------------

#[tokio::test]
async fn bodies_beyond_the_memory_budget_get_503_until_memory_is_free() {
    let served = Served::start(GatewayConfig {
        max_body_memory_bytes: 64 * 1024,
        body_read_timeout: Duration::from_secs(8),
        ..config()
    })
    .await;
    // A slow upload holds 60 KB of the 64 KB.
    let mut holder = served.connect().await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}Content-Length: 100000\r\n\r\n",
        auth()
    );
    holder.write_all(head.as_bytes()).await.unwrap();
    holder.write_all(&[b' '; 60 * 1024]).await.unwrap();
    let small = [b' '; 10 * 1024];
    let mut refused = None;
    for _ in 0..200 {
        let answer = served
            .raw("POST", "/v1/chat/completions", &auth(), &small)
            .await;
        if answer.status == 503 {
            refused = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let refused = refused.expect("a 503 while the budget is held");
    assert_eq!(refused.openai_code(), "server_is_overloaded", "{refused:?}");
    assert_eq!(refused.header("retry-after"), Some("1"), "{refused:?}");
    // The holder goes away: its memory is given back and the same body is read (and is
    // refused for what it is, not for memory).
    drop(holder);
    let mut after = None;
    for _ in 0..200 {
        let answer = served
            .raw("POST", "/v1/chat/completions", &auth(), &small)
            .await;
        if answer.status != 503 {
            after = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let after = after.expect("memory given back");
    assert_eq!(after.status, 400, "{after:?}");
    served.assert_serving().await;
}

// ---- point 5: hyper's own refusals in the API's shape -------------------------------------

#[tokio::test]
async fn header_fields_too_large_and_uri_too_long_answer_in_the_apis_shape() {
    let served = Served::start(config()).await;
    // 1 MB of headers.
    let huge = format!("X-Big: {}\r\n", "a".repeat(1024 * 1024));
    let answer = served
        .raw("POST", "/v1/chat/completions", &huge, b"{}")
        .await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(answer.header("content-type"), Some("application/json"));
    assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
    let answer = served.raw("POST", "/api/chat", &huge, b"{}").await;
    assert_eq!(answer.status, 431, "{answer:?}");
    assert_eq!(
        answer.json()["error"].as_str(),
        Some("request header fields too large")
    );
    // A 70 KB URI.
    let long = format!("/v1/models/{}", "m".repeat(70 * 1024));
    let answer = served.raw("GET", &long, &auth(), b"").await;
    assert_eq!(answer.status, 414, "{answer:?}");
    assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
    served.assert_serving().await;
}

// ---- point 6: the cases that held ------------------------------------------------------

fn chat_body(stream: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "chat",
        "stream": stream,
        "messages": [{ "role": "user", "content": "hi" }],
    }))
    .unwrap()
}

#[tokio::test]
async fn no_key_and_a_wrong_key_get_401_in_each_apis_shape() {
    let served = Served::start(config()).await;
    let body = chat_body(false);
    for head in [
        "",
        "Authorization: Bearer sk-wrong\r\n",
        "Authorization: Basic x\r\n",
    ] {
        let answer = served
            .raw("POST", "/v1/chat/completions", head, &body)
            .await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert_eq!(answer.openai_code(), "auth_failed", "{answer:?}");
        assert_eq!(answer.header("www-authenticate"), Some("Bearer"));
        let answer = served.raw("POST", "/api/chat", head, &body).await;
        assert_eq!(answer.status, 401, "{answer:?}");
        assert!(answer.json()["error"].is_string(), "{answer:?}");
    }
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn a_40_mb_body_is_413_before_it_is_read() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
        auth(),
        40 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn json_nested_100k_deep_is_a_400_not_a_stack_overflow() {
    let served = Served::start(config()).await;
    let mut body = br#"{"model":"chat","messages":"#.to_vec();
    body.extend(std::iter::repeat_n(b'[', 100_000));
    body.extend(std::iter::repeat_n(b']', 100_000));
    body.push(b'}');
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &body)
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
    let answer = served.raw("POST", "/api/chat", &auth(), &body).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn http2_rapid_reset_does_not_stop_the_gateway() {
    let served = Served::start(config()).await;
    let tcp = served.connect().await;
    let (mut client, connection) = guarded(h2::client::handshake(tcp)).await.unwrap();
    let connection = tokio::spawn(connection);
    let mut sent = 0;
    for _ in 0..2000 {
        if guarded(std::future::poll_fn(|cx| client.poll_ready(cx)))
            .await
            .is_err()
        {
            break;
        }
        let request = http::Request::post(format!("http://{}/v1/chat/completions", served.addr))
            .header("authorization", format!("Bearer {KEY}"))
            .body(())
            .unwrap();
        let Ok((_, mut stream)) = client.send_request(request, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        sent += 1;
    }
    assert_eq!(sent, 2000, "every stream was opened and reset");
    drop(client);
    // The connection then ends without a protocol error, and nothing reached the upstream.
    let ended = guarded(connection).await.unwrap();
    assert!(ended.is_ok(), "{ended:?}");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn an_upstream_dying_mid_answer_is_an_error_event_or_a_502_never_a_clean_end() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b", "c", "d"]).with_fault(Fault::DropAfterChunks(2)),
    );
    let served = Served::start_over(false, upstream, config()).await;
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &chat_body(true))
        .await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(answer.body.contains("data: {\"error\""), "{answer:?}");
    assert!(!answer.body.contains("[DONE]"), "{answer:?}");
    // Not streamed: a 502 that does not claim the answer had started.
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &chat_body(false))
        .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert!(
        !answer.body.contains("after the answer started"),
        "{answer:?}"
    );
    served.assert_serving().await;
}

#[tokio::test]
async fn invalid_utf8_from_an_openai_upstream_is_an_error_not_replaced() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b"]).with_fault(Fault::InvalidUtf8),
    );
    let served = Served::start_over(true, upstream, config()).await;
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &chat_body(false))
        .await;
    assert_eq!(answer.status, 502, "{answer:?}");
    assert_eq!(answer.openai_code(), "malformed_stream", "{answer:?}");
    assert!(answer.body.contains("not valid UTF-8"), "{answer:?}");
    assert!(!answer.body.contains('\u{fffd}'), "{answer:?}");
    served.assert_serving().await;
}

#[tokio::test]
async fn a_5_mb_single_sse_event_from_upstream_is_passed_through_whole() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::text(["a", "b"]).with_fault(Fault::OversizedLine(5 * 1024 * 1024)),
    );
    let served = Served::start_over(true, upstream, config()).await;
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &chat_body(false))
        .await;
    assert_eq!(answer.status, 200, "{}", &answer.head);
    let content = answer.json()["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .len();
    assert_eq!(content, 5 * 1024 * 1024 + 2, "a, the 5 MB event, b");
    served.assert_serving().await;
}

#[tokio::test]
async fn a_client_that_disconnects_cancels_the_upstream_request() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(200, Duration::from_millis(20)),
    );
    let served = Served::start_over(false, upstream, config()).await;
    let mut stream = served.connect().await;
    let body = chat_body(true);
    let head = format!(
        "POST /api/chat HTTP/1.1\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
        auth(),
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let mut first = [0u8; 64];
    let n = guarded(stream.read(&mut first)).await.unwrap();
    assert!(first[..n].starts_with(b"HTTP/1.1 200"));
    assert_eq!(served.upstream.aborted_streams(), 0);
    drop(stream);
    assert!(
        eventually(|| served.upstream.aborted_streams() == 1).await,
        "the upstream's log shows the request closed early"
    );
    served.assert_serving().await;
}

// ---- point 5: upstream details only for admin keys and loopback --------------------------

/// The admin key of [`with_an_admin_key_and_a_refusing_upstream`].
const ADMIN: &str = "sk-admin";

/// A gateway with a user key (`KEY`) and an admin key (`ADMIN`), where loopback callers are
/// not admins, over an upstream that refuses connections.
async fn with_an_admin_key_and_a_refusing_upstream() -> Served {
    let served = Served::start(GatewayConfig {
        keys: vec![
            ApiKey::new("user", KEY),
            ApiKey {
                admin: true,
                ..ApiKey::new("ops", ADMIN)
            },
        ],
        // Every test caller is on loopback: pretend a proxy on this host forwards them.
        loopback_is_admin: false,
        ..config()
    })
    .await;
    served.upstream.set_fault(Some(Fault::Refuse));
    served
}

#[tokio::test]
async fn upstream_urls_and_provider_details_are_shown_only_to_admin_keys() {
    let served = with_an_admin_key_and_a_refusing_upstream().await;
    let upstream_host = served.upstream.addr().to_string();
    let body = chat_body(false);

    let user = served
        .raw("POST", "/v1/chat/completions", &auth(), &body)
        .await;
    assert_eq!(user.status, 503, "{user:?}");
    assert_eq!(user.openai_code(), "connect_refused", "{user:?}");
    assert!(!user.body.contains(&upstream_host), "{user:?}");
    assert!(!user.body.contains("up/test-model"), "{user:?}");
    let ollama_user = served.raw("POST", "/api/chat", &auth(), &body).await;
    assert_eq!(ollama_user.status, 503, "{ollama_user:?}");
    assert!(
        !ollama_user.body.contains(&upstream_host),
        "{ollama_user:?}"
    );

    let admin_auth = format!("Authorization: Bearer {ADMIN}\r\n");
    let admin = served
        .raw("POST", "/v1/chat/completions", &admin_auth, &body)
        .await;
    assert_eq!(admin.status, 503, "{admin:?}");
    assert_eq!(admin.openai_code(), "connect_refused", "{admin:?}");
    assert!(admin.body.contains(&upstream_host), "{admin:?}");

    // /readyz: only `ready` for others, every provider for an admin key.
    let open = served.raw("GET", "/readyz", "", b"").await;
    // (The provider is cooling down after the refusals: not ready.)
    assert_eq!(open.status, 503, "{open:?}");
    assert_eq!(open.json(), json!({ "ready": false }), "{open:?}");
    let detailed = served.raw("GET", "/readyz", &admin_auth, b"").await;
    assert_eq!(detailed.json()["providers"][0]["id"], "up", "{detailed:?}");
    served.upstream.set_fault(None);
    served.assert_serving().await;

    // An error event after the first byte is shown the same way.
    served.upstream.set_script(
        "test-model",
        Script::text(["a", "b", "c", "d"]).with_fault(Fault::ErrorLine(format!(
            "runner at http://{upstream_host}/internal crashed"
        ))),
    );
    let streamed = served
        .raw("POST", "/v1/chat/completions", &auth(), &chat_body(true))
        .await;
    assert_eq!(streamed.status, 200, "{streamed:?}");
    assert!(streamed.body.contains("data: {\"error\""), "{streamed:?}");
    assert!(!streamed.body.contains(&upstream_host), "{streamed:?}");
    let streamed = served
        .raw(
            "POST",
            "/v1/chat/completions",
            &admin_auth,
            &chat_body(true),
        )
        .await;
    assert!(streamed.body.contains(&upstream_host), "{streamed:?}");
}

// ---- the issue's other points, replayed raw ------------------------------------------------

#[tokio::test]
async fn an_ollama_cloud_model_is_refused_to_a_local_only_key_and_no_prompt_leaves() {
    const PRIVATE: &str = "sk-private";
    let upstream = UpstreamConfig::default()
        .model(ModelSpec::new("gpt-oss:120b-cloud").remote("https://ollama.com:443"));
    let served = Served::start_over(
        false,
        upstream,
        GatewayConfig {
            keys: vec![ApiKey {
                privacy: Some(PrivacyClass::LocalOnly),
                ..ApiKey::new("private", PRIVATE)
            }],
            ..config()
        },
    )
    .await;
    let private = format!("Authorization: Bearer {PRIVATE}\r\n");
    let body = serde_json::to_vec(&json!({"model": "up/gpt-oss:120b-cloud", "stream": false,
        "messages": [{"role": "user", "content": "secret"}]}))
    .unwrap();
    for path in ["/v1/chat/completions", "/api/chat"] {
        let answer = served.raw("POST", path, &private, &body).await;
        assert_eq!(answer.status, 403, "{answer:?}");
        assert!(answer.body.contains("policy_blocked"), "{answer:?}");
    }
    assert_eq!(
        served.upstream.chat_request_count(),
        0,
        "no prompt reached it"
    );
    served.assert_serving().await;
}

#[tokio::test]
async fn wrong_methods_bad_paths_and_bad_shapes_answer_in_the_apis_shape() {
    let served = Served::start(config()).await;
    let answer = served
        .raw("DELETE", "/v1/chat/completions", &auth(), b"")
        .await;
    assert_eq!(answer.status, 405, "{answer:?}");
    assert_eq!(answer.openai_code(), "invalid_request", "{answer:?}");
    let answer = served.raw("GET", "/v1/models/%ff", &auth(), b"").await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.json()["error"]["message"].is_string(), "{answer:?}");
    let empty = serde_json::to_vec(&json!({"model": "chat", "messages": []})).unwrap();
    let answer = served
        .raw("POST", "/v1/chat/completions", &auth(), &empty)
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(answer.body.contains("messages"), "{answer:?}");
    let tool = serde_json::to_vec(&json!({"model": "chat",
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": "nope"}}]}))
    .unwrap();
    let answer = served.raw("POST", "/api/chat", &auth(), &tool).await;
    assert_eq!(answer.status, 400, "{answer:?}");
    assert!(
        answer.body.contains("tools[0].function.parameters"),
        "{answer:?}"
    );
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn a_40_mb_chunked_body_is_413_at_the_limit_and_the_client_reads_it() {
    let served = Served::start(config()).await;
    let stream = served.connect().await;
    let (mut read, mut write) = stream.into_split();
    let head = format!(
        "POST /api/chat HTTP/1.1\r\nHost: gw\r\n{}Transfer-Encoding: chunked\r\n\r\n",
        auth()
    );
    let sending = tokio::spawn(async move {
        write.write_all(head.as_bytes()).await?;
        let chunk = vec![b' '; 1024 * 1024];
        for _ in 0..40 {
            write.write_all(b"100000\r\n").await?;
            write.write_all(&chunk).await?;
            write.write_all(b"\r\n").await?;
        }
        write.write_all(b"0\r\n\r\n").await
    });
    let mut raw = Vec::new();
    let _ = guarded(read.read_to_end(&mut raw)).await;
    sending.abort();
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(
        text.contains("{\"error\":\"request body too large"),
        "{text}"
    );
    served.assert_serving().await;
}

// ---- the HTTP/1.1 fast path and its hand-over to hyper ------------------------------

/// A keep-alive request (no `Connection: close`) with `body`, raw.
fn keep_alive_request(method: &str, path: &str, body: &[u8]) -> Vec<u8> {
    let (mut raw, body) = head_and_body(method, path, body);
    raw.extend(body);
    raw
}

#[tokio::test]
async fn pipelined_requests_in_one_write_are_answered_in_order() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    let mut all = keep_alive_request("GET", "/healthz", b"");
    all.extend(keep_alive_request("POST", "/api/chat", &chat_body(false)));
    all.extend(keep_alive_request("GET", "/api/version", b""));
    stream.write_all(&all).await.unwrap();
    let health = read_one_answer(&mut stream).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let chat = read_one_answer(&mut stream).await;
    assert_eq!(chat.status, 200, "{chat:?}");
    assert_eq!(chat.json()["done"], true, "{chat:?}");
    let version = read_one_answer(&mut stream).await;
    assert_eq!(version.status, 200, "{version:?}");
    assert!(version.json()["version"].is_string(), "{version:?}");
}

#[tokio::test]
async fn a_body_sent_apart_from_its_head_is_served_soon_or_late() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    let body = chat_body(false);
    for pause in [Duration::from_millis(20), Duration::from_millis(600)] {
        let raw = keep_alive_request("POST", "/api/chat", &body);
        let (head, rest) = raw.split_at(raw.len() - body.len());
        stream.write_all(head).await.unwrap();
        tokio::time::sleep(pause).await;
        stream.write_all(rest).await.unwrap();
        let answer = read_one_answer(&mut stream).await;
        assert_eq!(answer.status, 200, "after {pause:?}: {answer:?}");
        assert_eq!(answer.json()["done"], true, "after {pause:?}: {answer:?}");
    }
    // The connection (now hyper's, after the slow body) still serves.
    stream
        .write_all(&keep_alive_request("GET", "/healthz", b""))
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.body, "ok\n");
}

#[tokio::test]
async fn requests_left_to_hyper_are_answered_on_the_same_connection() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    stream
        .write_all(&keep_alive_request("GET", "/healthz", b""))
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.body, "ok\n");
    // A chunked body is not the fast path's: hyper reads it.
    let body = chat_body(false);
    let mut chunked = format!(
        "POST /api/chat HTTP/1.1\r\nHost: gw\r\n{}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        auth(),
        body.len()
    )
    .into_bytes();
    chunked.extend_from_slice(&body);
    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
    stream.write_all(&chunked).await.unwrap();
    let answer = read_one_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.json()["done"], true, "{answer:?}");
    stream
        .write_all(&keep_alive_request("GET", "/healthz", b""))
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.body, "ok\n");

    // Both a length and chunks: hyper refuses it (no request smuggling past the gateway).
    let answer = served
        .raw(
            "POST",
            "/api/chat",
            &format!("{}Transfer-Encoding: chunked\r\n", auth()),
            b"0\r\n\r\n",
        )
        .await;
    assert_eq!(answer.status, 400, "{answer:?}");
    // HTTP/1.0 is hyper's too.
    let mut old = served.connect().await;
    old.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut old).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
    served.assert_serving().await;
}

#[tokio::test]
async fn a_client_that_leaves_before_a_whole_answer_cancels_the_upstream_request() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(200, Duration::from_millis(20)),
    );
    let served = Served::start_over(false, upstream, config()).await;
    let mut stream = served.connect().await;
    stream
        .write_all(&keep_alive_request("POST", "/api/chat", &chat_body(false)))
        .await
        .unwrap();
    // The upstream is streaming to the gateway, which folds it: no answer yet.
    assert!(
        eventually(|| served.upstream.requests().len() == 1).await,
        "the request reached the upstream"
    );
    drop(stream);
    assert!(
        eventually(|| served.upstream.aborted_streams() == 1).await,
        "the upstream's log shows the request closed early"
    );
    served.assert_serving().await;
}

#[tokio::test]
async fn connection_close_from_the_client_closes_after_the_answer() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let answer = read_answer(&mut stream).await;
    assert_eq!((answer.status, answer.body.as_str()), (200, "ok\n"));
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
    assert!(answer.header("date").is_some(), "{answer:?}");
}

/// An admin key is an admin key however it is sent: Anthropic's clients send theirs as
/// `x-api-key` (which authenticates them), and they must see upstream details as a bearer
/// admin key does, in error answers and in `/readyz`.
#[tokio::test]
async fn an_admin_key_sent_as_x_api_key_sees_upstream_details() {
    let served = with_an_admin_key_and_a_refusing_upstream().await;
    let upstream_host = served.upstream.addr().to_string();
    let body = serde_json::to_vec(&json!({
        "model": "chat",
        "max_tokens": 16,
        "messages": [{ "role": "user", "content": "hi" }],
    }))
    .unwrap();

    let bearer = format!("Authorization: Bearer {ADMIN}\r\nanthropic-version: 2023-06-01\r\n");
    let answer = served.raw("POST", "/v1/messages", &bearer, &body).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(answer.body.contains(&upstream_host), "{answer:?}");

    let x_api_key = format!("x-api-key: {ADMIN}\r\nanthropic-version: 2023-06-01\r\n");
    let answer = served.raw("POST", "/v1/messages", &x_api_key, &body).await;
    assert_eq!(answer.status, 503, "{answer:?}");
    assert!(
        answer.body.contains(&upstream_host),
        "the admin key sent as x-api-key got the non-admin answer: {answer:?}"
    );

    let bearer_ready = served
        .raw(
            "GET",
            "/readyz",
            &format!("Authorization: Bearer {ADMIN}\r\n"),
            b"",
        )
        .await;
    assert_eq!(
        bearer_ready.json()["providers"][0]["id"],
        "up",
        "{bearer_ready:?}"
    );
    let x_ready = served
        .raw("GET", "/readyz", &format!("x-api-key: {ADMIN}\r\n"), b"")
        .await;
    assert_eq!(x_ready.json()["providers"][0]["id"], "up", "{x_ready:?}");
    served.upstream.set_fault(None);
    served.assert_serving().await;
}

// ---- the fast path keeps what hyper did for the same bytes --------------------------

/// A keep-alive request with `body`, split into its head and its body.
fn head_and_body(method: &str, path: &str, body: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
        auth(),
        body.len()
    )
    .into_bytes();
    (head, body.to_vec())
}

/// Everything the peer sends until it closes (or [`GUARD`]), as text.
async fn read_until_closed(stream: &mut TcpStream) -> String {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let _ = tokio::time::timeout(GUARD, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => raw.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    String::from_utf8_lossy(&raw).into_owned()
}

#[tokio::test]
async fn pipelined_requests_then_a_half_close_still_answer_the_first() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    // Two pipelined requests, then the client shuts down its sending side (as
    // `printf ... | nc -N` does). hyper answers the first: its buffer still held the
    // second request, so it does not look for the end of input while the first runs.
    let mut all = keep_alive_request("POST", "/api/chat", &chat_body(false));
    all.extend(keep_alive_request("GET", "/healthz", b""));
    stream.write_all(&all).await.unwrap();
    stream.shutdown().await.unwrap();
    let text = read_until_closed(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 "), "no answer: {text:?}");
    assert!(text.contains("\"done\":true"), "{text:?}");
}

#[tokio::test]
async fn a_request_whose_body_follows_its_head_is_answered_during_a_graceful_shutdown() {
    let Served {
        addr,
        upstream: _upstream,
        _stop: stop,
    } = Served::start(config()).await;
    let mut stream = guarded(TcpStream::connect(addr)).await.unwrap();
    let (head, body) = head_and_body("POST", "/api/chat", &chat_body(false));
    stream.write_all(&head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    // The gateway starts a graceful shutdown (grace 1 s) while this request is in flight.
    drop(stop);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stream.write_all(&body).await;
    let text = read_until_closed(&mut stream).await;
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "the request in flight was dropped: {text:?}"
    );
}

#[tokio::test]
async fn a_first_head_complete_in_time_is_not_cut_off_while_its_body_follows() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(400),
        ..config()
    })
    .await;
    let mut stream = served.connect().await;
    let (head, body) = head_and_body("POST", "/api/chat", &chat_body(false));
    // The whole head arrives 100 ms before the head deadline; its body 200 ms after it.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stream.write_all(&head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let _ = stream.write_all(&body).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .ok();
    let text = read_until_closed(&mut stream).await;
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "closed at the head deadline though the head was complete: {text:?}"
    );
}

#[tokio::test]
async fn a_request_whose_body_is_on_its_way_is_not_shed_at_the_cap() {
    let served = Served::start(GatewayConfig {
        max_connections: 1,
        header_read_timeout: Duration::from_secs(60),
        ..config()
    })
    .await;
    let mut first = served.connect().await;
    let body = chat_body(false);
    let head = format!(
        "POST /api/chat HTTP/1.1\r\nHost: gw\r\n{}Connection: close\r\nContent-Length: {}\r\n\r\n",
        auth(),
        body.len()
    );
    first.write_all(head.as_bytes()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    // A second connection arrives while the first request's body is on its way: the
    // first is busy (its head was read), so it must not be the one shed.
    let mut second = served.connect().await;
    let _ = second
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    let _ = first.write_all(&body).await;
    let text = read_until_closed(&mut first).await;
    assert!(
        text.starts_with("HTTP/1.1 200 "),
        "the request in flight was shed: {text:?}"
    );
}

#[tokio::test]
async fn an_answer_finished_during_a_graceful_shutdown_says_connection_close() {
    let upstream = UpstreamConfig::default().script(
        "test-model",
        Script::slow_stream(10, Duration::from_millis(30)),
    );
    let Served {
        addr,
        upstream: _upstream,
        _stop: stop,
    } = Served::start_over(false, upstream, config()).await;
    let mut stream = guarded(TcpStream::connect(addr)).await.unwrap();
    let (head, body) = head_and_body("POST", "/api/chat", &chat_body(false));
    stream.write_all(&head).await.unwrap();
    stream.write_all(&body).await.unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stop);
    let answer = read_one_answer(&mut stream).await;
    assert_eq!(answer.status, 200, "{answer:?}");
    // The gateway closes this connection after the answer: it must say so, or a
    // client sends its next request into a closing socket.
    assert_eq!(answer.header("connection"), Some("close"), "{answer:?}");
}

// ---- review (srv) -------------------------------------------------------------------

// docs/ARCHITECTURE.md: "hyper's 414/431 in the API's shape (refusal.rs)"; refusal.rs:
// RefusalIo "writes a JSON body in the shape of the API the request line names". A URI too
// long on an Ollama path (`/api/...`) is Ollama's `{"error": "..."}` (as the test
// `header_fields_too_large_and_uri_too_long_answer_in_the_apis_shape` checks for a request
// alone on its connection); pipelined behind a request the fast path answers, it must be the
// same.
#[tokio::test]
async fn a_pipelined_uri_too_long_answers_in_the_shape_of_its_own_request_line() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    let mut all = keep_alive_request("GET", "/healthz", b"");
    let long = format!("/api/show/{}", "m".repeat(70 * 1024));
    all.extend(keep_alive_request("GET", &long, b""));
    stream.write_all(&all).await.unwrap();
    let health = read_one_answer(&mut stream).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let refused = read_one_answer(&mut stream).await;
    assert_eq!(refused.status, 414, "{refused:?}");
    assert_eq!(
        refused.json()["error"].as_str(),
        Some("request URI too long"),
        "Ollama's error shape for an /api/ request line: {refused:?}"
    );
}

// conn.rs: "A later HTTP/1 head is timed from its first byte ... such a head is cut off
// between one and two deadlines after its first byte"; ARCHITECTURE.md: "connection
// bookkeeping (conn.rs: head deadline, idle timeout ...)". The start of a second head that
// arrives in the same segment as the first request (a pipelining client, or one that
// stalls mid-head after its first request) must be cut off at the head deadline like a
// dripping one (`a_slowloris_second_head_on_a_keep_alive_connection_is_closed`), not only
// at the 120 s idle timeout. (GUARD, 10 s, is far above 2 x 300 ms and far below 120 s.)
#[tokio::test]
async fn a_second_head_begun_with_the_first_request_is_cut_off_at_the_head_deadline() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(300),
        ..config()
    })
    .await;
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\nGET /healthz HTTP/1.1\r\nHo")
        .await
        .unwrap();
    assert_eq!(read_one_answer(&mut stream).await.status, 200);
    // The second head never completes.
    assert!(
        closed_by_peer(&mut stream).await,
        "the stalled second head was cut off at the head deadline"
    );
    served.assert_serving().await;
}

/// What an answer is made of, without what differs between two requests (the values of
/// ids, times and figures): the status, the header names and the content type, and the
/// top-level keys of a JSON body; of a stream, each line's (an SSE `event:` line as it is,
/// a `data:` line or an NDJSON line by its JSON object's keys; chunk sizes left out).
fn shape_of(answer: &Answer) -> (u16, Vec<String>, Option<String>, Vec<String>) {
    let mut names: Vec<String> = answer
        .head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, _)| name.to_ascii_lowercase())
        .filter(|name| name != "date")
        .collect();
    names.sort();
    let keys = |text: &str| match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(map)) => map.keys().cloned().collect::<Vec<_>>().join(","),
        _ => text.to_owned(),
    };
    let body = answer
        .body
        .lines()
        // Chunk sizes are framing (the fast path writes their hex in lower case, hyper in
        // upper case): left out.
        .filter(|line| !line.is_empty() && !line.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|line| match line.strip_prefix("data:") {
            Some(data) => format!("data:{}", keys(data.trim())),
            None if line.starts_with("event:") => line.to_owned(),
            None => keys(line),
        })
        .collect();
    (
        answer.status,
        names,
        answer.header("content-type").map(str::to_owned),
        body,
    )
}

#[tokio::test]
async fn the_hot_routes_answer_as_the_router_does() {
    // The fast path serves the four chat endpoints without axum's router; hyper (a
    // chunked body) serves them through it. Both must answer alike: whole and streamed,
    // refusals included, for a caller who may see upstream details and one who may not.
    let remote = GatewayConfig {
        loopback_is_admin: false,
        ..config()
    };
    for config in [config(), remote] {
        let detailed = config.loopback_is_admin;
        let served = Served::start(config).await;
        for stream in [false, true] {
            let chat = chat_body(stream);
            let anthropic = serde_json::to_vec(&json!({
                "model": "chat", "max_tokens": 16, "stream": stream,
                "messages": [{ "role": "user", "content": "hi" }],
            }))
            .unwrap();
            let responses = serde_json::to_vec(&json!({
                "model": "chat", "input": "hi", "store": false, "stream": stream,
            }))
            .unwrap();
            let cases: [(&str, &[u8]); 4] = [
                ("/v1/chat/completions", &chat),
                ("/api/chat", &chat),
                ("/v1/messages", &anthropic),
                ("/v1/responses", &responses),
            ];
            for (path, body) in cases {
                for head in [auth(), String::new(), "x-api-key: sk-wrong\r\n".to_owned()] {
                    let fast = served.raw("POST", path, &head, body).await;
                    let mut conn = served.connect().await;
                    let mut chunked = format!(
                        "POST {path} HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n{head}Transfer-Encoding: chunked\r\n\r\n{:x}\r\n",
                        body.len()
                    )
                    .into_bytes();
                    chunked.extend_from_slice(body);
                    chunked.extend_from_slice(b"\r\n0\r\n\r\n");
                    conn.write_all(&chunked).await.unwrap();
                    let routed = read_answer(&mut conn).await;
                    let what = format!("{path} stream={stream} detailed={detailed} {head:?}");
                    assert_eq!(shape_of(&fast), shape_of(&routed), "{what}");
                    if fast.status == 401 {
                        assert_eq!(fast.body, routed.body, "{what}");
                        // The caller's own mistake, named to every caller.
                        assert!(fast.body.contains("API key"), "{what}: {fast:?}");
                    } else {
                        assert_eq!(fast.status, 200, "{what}: {fast:?}");
                    }
                }
            }
        }
        served.assert_serving().await;
    }
}
