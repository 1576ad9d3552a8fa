//! `send_request`, `read_body_timed` and error answers over real loopback sockets, against
//! hand-written HTTP/1.1 answers (this crate sits below the testkit's protocols).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime};

use futures::StreamExt;
use switchyard_core::{ChatEvent, ErrorKind, FinishReason, ProviderError, TimeoutPhase};
use switchyard_http::{
    ClientConfig, TimedEventStream, Timeouts, build_client, error_from_response_within,
    read_body_timed, send_request,
};
use switchyard_stream::decoder::EventDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const GUARD: Duration = Duration::from_secs(10);

/// Serves one connection: reads the request, then writes each part after its pause, then
/// keeps the socket open for a while.
async fn serve(parts: Vec<(Duration, Vec<u8>)>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut req = [0u8; 8192];
        let _ = sock.read(&mut req).await;
        for (pause, bytes) in parts {
            tokio::time::sleep(pause).await;
            if sock.write_all(&bytes).await.is_err() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    });
    format!("http://{addr}/")
}

fn timeouts(first_token_ms: u64, idle_ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_millis(first_token_ms),
        idle: Duration::from_millis(idle_ms),
        total: None,
    }
}

fn client() -> reqwest::Client {
    build_client(&ClientConfig::default()).unwrap()
}

fn now() -> Duration {
    Duration::ZERO
}

#[tokio::test]
async fn no_headers_within_first_token_is_timeout_first_token() {
    let url = serve(vec![(
        Duration::from_secs(3),
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
    )])
    .await;
    let t = timeouts(200, 5000);
    let err = tokio::time::timeout(GUARD, send_request(client().get(&url), &t, "up"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        "{err}"
    );
    assert!(err.message().starts_with("up: "), "{}", err.message());
}

#[tokio::test]
async fn a_total_limit_shorter_than_first_token_wins() {
    let url = serve(vec![(
        Duration::from_secs(3),
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
    )])
    .await;
    let mut t = timeouts(5000, 5000);
    t.total = Some(Duration::from_millis(200));
    let err = tokio::time::timeout(GUARD, send_request(client().get(&url), &t, "up"))
        .await
        .unwrap()
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Total), "{err}");
}

#[tokio::test]
async fn an_error_status_is_classified_when_sending() {
    let body = r#"{"error":"model \"x\" not found, try pulling it first"}"#;
    let head = format!(
        "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let url = serve(vec![(now(), head.into_bytes())]).await;
    let err = tokio::time::timeout(
        GUARD,
        send_request(client().post(&url), &timeouts(2000, 2000), "up"),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound);
    assert_eq!(err.status(), Some(404));
    assert!(
        err.message()
            .contains(r#"model "x" not found, try pulling it first"#),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn retry_after_as_an_http_date_and_in_milliseconds() {
    let at = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let head = format!(
        "HTTP/1.1 429 Too Many Requests\r\nretry-after: {at}\r\ncontent-length: 2\r\n\r\n{{}}"
    );
    let url = serve(vec![(now(), head.into_bytes())]).await;
    let err = send_request(client().get(&url), &timeouts(2000, 2000), "up")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    let after = err.retry_after().unwrap();
    assert!(
        after > Duration::from_secs(25) && after <= Duration::from_secs(30),
        "{after:?}"
    );

    let head = "HTTP/1.1 429 Too Many Requests\r\nretry-after-ms: 1500\r\nretry-after: 9\r\ncontent-length: 0\r\n\r\n";
    let url = serve(vec![(now(), head.as_bytes().to_vec())]).await;
    let err = send_request(client().get(&url), &timeouts(2000, 2000), "up")
        .await
        .unwrap_err();
    assert_eq!(err.retry_after(), Some(Duration::from_millis(1500)));
}

#[tokio::test]
async fn an_error_body_that_never_comes_is_bounded() {
    let head = "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 100\r\n\r\n{\"error\":";
    let url = serve(vec![(now(), head.as_bytes().to_vec())]).await;
    let response = client().get(&url).send().await.unwrap();
    let err = tokio::time::timeout(
        GUARD,
        error_from_response_within(response, "up", Duration::from_millis(200)),
    )
    .await
    .unwrap();
    assert_eq!(err.kind(), ErrorKind::Overloaded, "{err}");
    assert_eq!(err.status(), Some(503));
}

#[tokio::test]
async fn whole_bodies_are_bounded_in_size_and_in_gaps() {
    let head = "HTTP/1.1 200 OK\r\ncontent-length: 20\r\n\r\n";
    let url = serve(vec![
        (now(), head.as_bytes().to_vec()),
        (now(), b"0123456789abcdefghij".to_vec()),
    ])
    .await;
    let t = timeouts(2000, 2000);
    let mut started = send_request(client().get(&url), &t, "up").await.unwrap();
    let err = read_body_timed(&mut started.response, 10, &t, started.started, "up")
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
    assert!(
        err.message().contains("larger than 10 bytes"),
        "{}",
        err.message()
    );

    let url = serve(vec![
        (now(), head.as_bytes().to_vec()),
        (now(), b"01234".to_vec()),
        (Duration::from_secs(3), b"rest".to_vec()),
    ])
    .await;
    let t = timeouts(2000, 200);
    let mut started = send_request(client().get(&url), &t, "up").await.unwrap();
    let err = tokio::time::timeout(
        GUARD,
        read_body_timed(&mut started.response, 1024, &t, started.started, "up"),
    )
    .await
    .unwrap()
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout(TimeoutPhase::Idle), "{err}");

    let url = serve(vec![
        (now(), head.as_bytes().to_vec()),
        (now(), b"0123456789abcdefghij".to_vec()),
    ])
    .await;
    let mut started = send_request(client().get(&url), &t, "up").await.unwrap();
    let body = read_body_timed(&mut started.response, 1024, &t, started.started, "up")
        .await
        .unwrap();
    assert_eq!(&body[..], b"0123456789abcdefghij");
}

/// Text lines; a line `ERR` is a decode error; `DONE` ends the answer.
#[derive(Default)]
struct Lines {
    buf: Vec<u8>,
}

impl EventDecoder for Lines {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.buf.extend_from_slice(chunk);
        while let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = self.buf.drain(..=pos).collect();
            match &line[..line.len() - 1] {
                b"ERR" => return Err(ProviderError::malformed("bad line")),
                b"DONE" => out.push(ChatEvent::done(FinishReason::Stop)),
                text => out.push(ChatEvent::text(String::from_utf8_lossy(text).into_owned())),
            }
        }
        Ok(())
    }
    fn finish(&mut self, _out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        Ok(())
    }
}

#[tokio::test]
async fn events_decoded_before_a_decode_error_are_delivered_first() {
    let url = serve(vec![(
        now(),
        b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\na\nb\nERR\n".to_vec(),
    )])
    .await;
    let t = timeouts(2000, 2000);
    let started = send_request(client().get(&url), &t, "up").await.unwrap();
    let stream =
        TimedEventStream::new(started.response, Lines::default(), t, started.started, "up");
    let items: Vec<_> = tokio::time::timeout(GUARD, stream.collect()).await.unwrap();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0], Ok(ChatEvent::text("a")));
    assert_eq!(items[1], Ok(ChatEvent::text("b")));
    let err = items[2].clone().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
    assert!(err.message().starts_with("up: "));
}
