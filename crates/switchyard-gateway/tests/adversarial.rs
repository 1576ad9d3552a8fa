//! The standing adversarial suite: what an adversarial run against the gateway tried
//! (issue 16), replayed over real loopback sockets with raw bytes where a polite client
//! would not do it. Every case asserts the gateway's precise answer and that it keeps
//! serving afterwards. Every wait is bounded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_gateway::{ApiKey, Gateway, GatewayConfig};
use switchyard_http::ClientConfig;
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::support::{GUARD, guarded, timeouts};
use switchyard_testkit::{TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

const KEY: &str = "sk-adversarial";

/// A gateway over one testkit Ollama upstream (`up`, route `chat` -> `up/test-model`).
struct Served {
    addr: SocketAddr,
    upstream: TestUpstream,
    _stop: oneshot::Sender<()>,
}

impl Served {
    async fn start(config: GatewayConfig) -> Served {
        let upstream = TestUpstream::start(UpstreamConfig::default())
            .await
            .unwrap();
        let mut client = OllamaConfig::new(upstream.base_url());
        client.client = ClientConfig {
            timeouts: timeouts(2000, 2000),
            ..ClientConfig::default()
        };
        let provider = Arc::new(OllamaClient::new(client).unwrap());
        let slot = ProviderSlot::new("up", provider, Locality::Local);
        let routes: RouterConfig = serde_json::from_value(
            json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
        )
        .unwrap();
        let router = Router::new(routes, vec![slot], Arc::new(MemoryLedger::new())).unwrap();
        let gateway = Gateway::new(config, Arc::new(ArcSwap::from_pointee(router)));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = gateway
                .serve(listener, async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Served {
            addr,
            upstream,
            _stop: stop,
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
    let (mut read, mut write) = stream.into_split();
    let dripping = tokio::spawn(async move {
        // A byte every 100 ms: 2000 bytes would take 200 s.
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
    assert!(closed.is_ok(), "the dripping connection was closed");
    served.assert_serving().await;
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
    assert_eq!(refused.openai_code(), "overloaded", "{refused:?}");
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
