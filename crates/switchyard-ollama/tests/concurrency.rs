//! Discovery's `/api/show` requests are bounded in concurrency. The testkit answers
//! `/api/show` at once, so this test uses a small hand-written loopback server whose
//! `/api/show` takes a while and which records how many were in flight at once.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use switchyard_ollama::{OllamaClient, OllamaConfig};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

#[derive(Default)]
struct Counters {
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    shows: AtomicUsize,
}

async fn serve_connection(
    sock: TcpStream,
    models: usize,
    delay: Duration,
    counters: Arc<Counters>,
) {
    let mut reader = BufReader::new(sock);
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).await.unwrap_or(0) == 0 {
            return;
        }
        let mut content_length = 0usize;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    content_length = value.trim().parse().unwrap_or(0);
                }
            }
        }
        let mut body = vec![0u8; content_length];
        if reader.read_exact(&mut body).await.is_err() {
            return;
        }
        let answer = if request_line.starts_with("GET /api/tags") {
            let list: Vec<_> = (0..models)
                .map(|i| serde_json::json!({"name": format!("m{i}:latest")}))
                .collect();
            serde_json::json!({ "models": list }).to_string()
        } else {
            let now = counters.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            counters.max_in_flight.fetch_max(now, Ordering::SeqCst);
            counters.shows.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(delay).await;
            counters.in_flight.fetch_sub(1, Ordering::SeqCst);
            r#"{"capabilities":["completion"],"model_info":{}}"#.to_owned()
        };
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            answer.len()
        );
        let sock = reader.get_mut();
        if sock.write_all(head.as_bytes()).await.is_err()
            || sock.write_all(answer.as_bytes()).await.is_err()
        {
            return;
        }
    }
}

async fn slow_show_server(models: usize, delay: Duration) -> (String, Arc<Counters>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let counters = Arc::new(Counters::default());
    let shared = counters.clone();
    tokio::spawn(async move {
        for _ in 0..64 {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(serve_connection(sock, models, delay, shared.clone()));
        }
    });
    (format!("http://{addr}"), counters)
}

async fn max_in_flight(concurrency: usize) -> usize {
    let (url, counters) = slow_show_server(12, Duration::from_millis(100)).await;
    let mut config = OllamaConfig::new(url);
    config.discovery.concurrency = concurrency;
    let client = OllamaClient::new(config).unwrap();
    let catalog = guarded(client.refresh_catalog()).await.unwrap();
    assert_eq!(catalog.chat_models.len(), 12);
    assert!(catalog.chat_models.iter().all(|m| m.capabilities.is_some()));
    assert_eq!(counters.shows.load(Ordering::SeqCst), 12);
    counters.max_in_flight.load(Ordering::SeqCst)
}

#[tokio::test]
async fn at_most_the_configured_number_of_shows_run_at_once() {
    let max = max_in_flight(8).await;
    assert!(
        (2..=8).contains(&max),
        "{max} /api/show in flight at once (default bound 8)"
    );
    let max = max_in_flight(3).await;
    assert!(
        (2..=3).contains(&max),
        "{max} /api/show in flight at once (bound 3)"
    );
    assert_eq!(max_in_flight(1).await, 1);
}
