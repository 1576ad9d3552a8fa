//! Phase timeouts and transport classification over real loopback sockets.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ErrorKind, FinishReason, ProviderError, TimeoutPhase};
use switchyard_http::{
    ClientConfig, DirectClient, TimedEventStream, Timeouts, build_client, chat_stream_direct,
    classify_transport_error, error_from_response,
};
use switchyard_stream::decoder::EventDecoder;
use switchyard_stream::ollama::OllamaStreamDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// One event per line; a line `DONE` ends the answer.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
    done: bool,
}

impl EventDecoder for Lines {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if text == "DONE" {
                self.done = true;
                out.push(ChatEvent::done(FinishReason::Stop));
            } else {
                out.push(ChatEvent::text(text));
            }
        }
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::ended_early("no DONE"))
        }
    }
}

/// Serves one HTTP/1.1 chunked answer: waits `first`, then sends `lines` with `gap` between.
async fn server(first: Duration, gap: Duration, lines: Vec<&'static str>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = sock.read(&mut req).await;
        sock.write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ntransfer-encoding: chunked\r\n\r\n",
        )
        .await
        .unwrap();
        tokio::time::sleep(first).await;
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                tokio::time::sleep(gap).await;
            }
            let body = format!("{line}\n");
            let chunk = format!("{:x}\r\n{body}\r\n", body.len());
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
        let _ = sock.write_all(b"0\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    format!("http://{addr}/")
}

async fn run(url: &str, timeouts: Timeouts) -> Vec<Result<ChatEvent, ProviderError>> {
    let client = build_client(&ClientConfig {
        timeouts,
        ..ClientConfig::default()
    })
    .unwrap();
    let started = tokio::time::Instant::now();
    let response = client.get(url).send().await.unwrap();
    let stream = TimedEventStream::new(response, Lines::default(), timeouts, started, "test");
    stream.collect().await
}

fn timeouts(first_token_ms: u64, idle_ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(first_token_ms),
        idle: Duration::from_millis(idle_ms),
        total: None,
    }
}

#[tokio::test]
async fn slow_but_steady_stream_is_never_cut() {
    // Five chunks 250 ms apart: every gap is longer than the first-token limit (150 ms) and
    // shorter than the idle limit (1 s), the whole stream (~1 s) far beyond first-token. A
    // timer that stayed on the first-token deadline would cut it after the first chunk.
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(250),
        vec!["a", "b", "c", "d", "DONE"],
    )
    .await;
    let events = run(&url, timeouts(150, 1000)).await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.iter().all(Result::is_ok), "{events:?}");
    assert_eq!(events[4], Ok(ChatEvent::done(FinishReason::Stop)));
}

/// [`Lines`] holding every event back until `DONE`, as text tool-call recovery holds text
/// while it decides, but reporting that output was decoded.
#[derive(Default)]
struct Holding {
    lines: Lines,
    held: Vec<ChatEvent>,
}

impl EventDecoder for Holding {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.lines.feed(chunk, &mut self.held)?;
        if self.lines.done {
            out.append(&mut self.held);
        }
        Ok(())
    }
    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.lines.finish(out)
    }
    fn progressed(&self) -> bool {
        !self.held.is_empty() || self.lines.done
    }
}

async fn run_holding(url: &str, timeouts: Timeouts) -> Vec<Result<ChatEvent, ProviderError>> {
    let client = build_client(&ClientConfig {
        timeouts,
        ..ClientConfig::default()
    })
    .unwrap();
    let started = tokio::time::Instant::now();
    let response = client.get(url).send().await.unwrap();
    let stream = TimedEventStream::new(response, Holding::default(), timeouts, started, "test");
    tokio::time::timeout(Duration::from_secs(10), stream.collect())
        .await
        .unwrap()
}

#[tokio::test]
async fn output_held_back_by_the_decoder_ends_the_first_token_phase() {
    // Nothing comes out before `DONE` (~1 s), far beyond first-token (150 ms), yet every gap
    // stays under idle (1 s): the decoded-but-held output counts as the first token.
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(250),
        vec!["a", "b", "c", "d", "DONE"],
    )
    .await;
    let events = run_holding(&url, timeouts(150, 1000)).await;
    assert_eq!(events.len(), 5, "{events:?}");
    assert!(events.iter().all(Result::is_ok), "{events:?}");
}

#[tokio::test]
async fn a_stall_after_held_back_output_is_an_idle_timeout() {
    // Output was decoded (held back), then the upstream stalls: idle (300 ms) applies, not
    // the first-token limit (5 s).
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(1500),
        vec!["a", "b", "DONE"],
    )
    .await;
    let started = std::time::Instant::now();
    let events = run_holding(&url, timeouts(5000, 300)).await;
    assert_eq!(events.len(), 1, "{events:?}");
    let err = events[0].clone().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Idle), "{err}");
    assert!(started.elapsed() < Duration::from_millis(1500));
}

#[tokio::test]
async fn stall_after_start_is_an_idle_timeout() {
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(1500),
        vec!["a", "b", "DONE"],
    )
    .await;
    let events = run(&url, timeouts(5000, 200)).await;
    assert_eq!(events[0], Ok(ChatEvent::text("a")));
    let err = events[1].clone().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Idle), "{err}");
    assert_eq!(events.len(), 2);
}

#[tokio::test]
async fn silence_before_the_first_event_is_a_first_token_timeout() {
    let url = server(
        Duration::from_millis(1500),
        Duration::from_millis(10),
        vec!["a", "DONE"],
    )
    .await;
    let events = run(&url, timeouts(200, 5000)).await;
    assert_eq!(events.len(), 1);
    let err = events[0].clone().unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        "{err}"
    );
    assert_eq!(err.reason_code(), "timeout_first_token");
}

#[tokio::test]
async fn total_limit_bounds_even_a_steady_stream() {
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(100),
        vec!["a", "b", "c", "d", "e", "f", "g", "h", "DONE"],
    )
    .await;
    let mut t = timeouts(5000, 5000);
    t.total = Some(Duration::from_millis(350));
    let events = run(&url, t).await;
    let err = events.last().unwrap().clone().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Total), "{err}");
}

#[tokio::test]
async fn body_without_final_event_is_ended_early() {
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(10),
        vec!["a", "b"],
    )
    .await;
    let events = run(&url, timeouts(2000, 2000)).await;
    assert_eq!(events.len(), 3);
    assert_eq!(
        events[2].clone().unwrap_err().kind(),
        ErrorKind::StreamEndedEarly
    );
}

#[tokio::test]
async fn refused_port_is_classified() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let client = build_client(&ClientConfig::default()).unwrap();
    let err = client
        .get(format!("http://{addr}/"))
        .send()
        .await
        .unwrap_err();
    let classified = classify_transport_error(&err, "local");
    assert_eq!(classified.kind(), ErrorKind::ConnectRefused, "{classified}");
    assert!(classified.message().starts_with("local: "));
}

#[tokio::test]
async fn error_answers_keep_message_retry_after_and_rate_limit_headers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = sock.read(&mut req).await;
        let body = r#"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#;
        let head = format!(
            "HTTP/1.1 429 Too Many Requests\r\ncontent-type: application/json\r\nretry-after: 3\r\nx-ratelimit-remaining-requests: 0\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        sock.write_all(head.as_bytes()).await.unwrap();
        sock.write_all(body.as_bytes()).await.unwrap();
    });
    let client = build_client(&ClientConfig::default()).unwrap();
    let response = client.get(format!("http://{addr}/")).send().await.unwrap();
    let err = error_from_response(response, "cloud").await;
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(3)));
    assert_eq!(err.upstream_code(), Some("rate_limit_exceeded"));
    assert!(
        err.message().contains("Rate limit reached"),
        "{}",
        err.message()
    );
    assert!(
        err.message().contains("x-ratelimit-remaining-requests=0"),
        "{}",
        err.message()
    );
}

#[test]
fn base_urls_are_normalised() {
    let b = switchyard_http::normalize_base_url("http://host:11434/v1/").unwrap();
    assert_eq!(b.as_str(), "http://host:11434/v1");
    assert!(b.ends_with_v1());
    assert_eq!(b.without_v1().as_str(), "http://host:11434");
    assert_eq!(b.join("/api/chat"), "http://host:11434/v1/api/chat");
    assert!(switchyard_http::normalize_base_url("ftp://x").is_err());
    assert!(switchyard_http::normalize_base_url("http://x/?a=1").is_err());
    assert!(switchyard_http::normalize_base_url("not a url").is_err());
}

#[test]
fn bad_headers_and_ca_files_are_refused_with_names() {
    let cfg = ClientConfig {
        extra_headers: vec![("bad header".into(), "v".into())],
        ..ClientConfig::default()
    };
    let err = build_client(&cfg).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_header");
    assert!(err.to_string().contains("bad header"));
    let cfg = ClientConfig {
        ca_file: Some("/nonexistent/ca.pem".into()),
        ..ClientConfig::default()
    };
    let err = build_client(&cfg).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_ca_file");
    assert!(err.to_string().contains("/nonexistent/ca.pem"));
}

#[test]
fn debug_output_never_shows_secrets() {
    let cfg = ClientConfig {
        bearer_token: Some("sk-secret-token".into()),
        extra_headers: vec![("x-api-key".into(), "hunter2".into())],
        ..ClientConfig::default()
    };
    let shown = format!("{cfg:?}");
    assert!(
        !shown.contains("sk-secret-token") && !shown.contains("hunter2"),
        "{shown}"
    );
    assert!(
        shown.contains("x-api-key") && shown.contains("<redacted>"),
        "{shown}"
    );
}

#[test]
fn base_urls_with_login_details_are_refused_without_showing_them() {
    for input in [
        "https://user:s3cret@api.example.com/v1",
        "http://s3cret@127.0.0.1:11434",
        "https://:s3cret@host/",
    ] {
        let err = switchyard_http::normalize_base_url(input).unwrap_err();
        let shown = err.to_string();
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            shown.contains("api_key") && shown.contains("headers"),
            "{shown}"
        );
        assert!(shown.contains("***@"), "{shown}");
    }
    // An unparseable URL with login details does not show them either.
    let err = switchyard_http::normalize_base_url("http://user:s3cret@[bad/x").unwrap_err();
    assert!(!err.to_string().contains("s3cret"), "{err}");
    // An `@` in the path is not a login.
    assert!(switchyard_http::normalize_base_url("http://host/a@b").is_ok());
}

const STEADY_LINE: &str =
    "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"x\"},\"done\":false}\n";
const STEADY_LAST: &str = "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n";

/// One chunked NDJSON answer of `n` token lines, one line every 2 ms.
async fn steady_upstream(n: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 4096];
        let _ = sock.read(&mut req).await;
        let _ = sock
            .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n")
            .await;
        for i in 0..=n {
            let line = if i == n { STEADY_LAST } else { STEADY_LINE };
            let chunk = format!("{:x}\r\n{line}\r\n", line.len());
            if sock.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let _ = sock.write_all(b"0\r\n\r\n").await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    });
    format!("http://{addr}/api/chat")
}

#[tokio::test]
async fn total_bounds_a_stream_read_by_a_slow_consumer() {
    let url = steady_upstream(300).await;
    let client = DirectClient::for_url(&ClientConfig::default(), &url)
        .unwrap()
        .unwrap();
    let timeouts = Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_secs(5),
        idle: Duration::from_secs(5),
        total: Some(Duration::from_millis(500)),
    };
    let started = std::time::Instant::now();
    let mut stream = chat_stream_direct(
        &client,
        b"{}".to_vec(),
        OllamaStreamDecoder::new(),
        timeouts,
    )
    .await
    .unwrap();
    let mut tokens = 0usize;
    let mut outcome = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(ChatEvent::TextDelta { .. }) => tokens += 1,
            Ok(ChatEvent::Done { .. }) => outcome = Some(Ok(())),
            Ok(_) => {}
            Err(e) => {
                outcome = Some(Err(e));
                break;
            }
        }
        // A consumer slower than the upstream (a slow client behind the gateway).
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    let err = outcome
        .expect("the stream ended")
        .expect_err("total (500 ms) must end the stream with timeout_total");
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Total), "{err}");
    // Ended by the deadline, not by the answer (300 lines read 10 ms apart take 3 s).
    assert!(tokens < 300, "{tokens} tokens, {took:?}");
}

/// A whole answer (`upstream_streaming: "as_client"`, embeddings, non-streamed generate)
/// from an upstream that sends its headers at once and its body when the model is done:
/// the wait for the first byte of the body is still the first-token phase (a cold model
/// load), not an idle gap between chunks.
#[tokio::test]
async fn whole_answer_waiting_for_its_first_byte_is_in_the_first_token_phase() {
    let url = server(
        Duration::from_millis(1200),
        Duration::from_millis(10),
        vec!["a", "DONE"],
    )
    .await;
    let t = timeouts(5000, 300);
    let client = build_client(&ClientConfig {
        timeouts: t,
        ..ClientConfig::default()
    })
    .unwrap();
    let got = switchyard_http::post_json_whole(&client, &url, b"{}".to_vec(), &t, 1 << 20).await;
    let body = got.unwrap_or_else(|e| panic!("cut before the first token deadline: {e}"));
    assert_eq!(&body[..], b"a\nDONE\n");
}

/// Once a whole answer's body has started, a gap longer than the idle limit is an idle
/// timeout (the first-token window is not given again).
#[tokio::test]
async fn whole_answer_stalled_after_its_first_byte_is_an_idle_timeout() {
    let url = server(
        Duration::from_millis(10),
        Duration::from_millis(1200),
        vec!["a", "DONE"],
    )
    .await;
    let t = timeouts(5000, 300);
    let client = build_client(&ClientConfig {
        timeouts: t,
        ..ClientConfig::default()
    })
    .unwrap();
    let err = switchyard_http::post_json_whole(&client, &url, b"{}".to_vec(), &t, 1 << 20)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Idle), "{err}");
}
