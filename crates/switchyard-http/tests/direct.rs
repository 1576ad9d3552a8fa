//! The direct client (plain `http://`, no proxy) over real loopback sockets: connections go
//! back to its pool and are reused, a pooled connection the server closed is replaced, and
//! transport failures are classified as the reqwest path classifies them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ErrorKind, TimeoutPhase};
use switchyard_http::{
    ClientConfig, DirectClient, Timeouts, answer_stream, chat_stream_direct, complete_direct,
};
use switchyard_stream::ollama::OllamaStreamDecoder;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const LINES: &str = concat!(
    r#"{"model":"m","message":{"role":"assistant","content":"Hel"},"done":false}"#,
    "\n",
    r#"{"model":"m","message":{"role":"assistant","content":"lo"},"done":false}"#,
    "\n",
    r#"{"model":"m","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop"}"#,
    "\n",
);

/// Reads one request (head and the `content-length` body) from `sock`; false at EOF.
async fn read_request(sock: &mut TcpStream) -> bool {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return false;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                return true;
            }
        }
    }
}

/// A whole (non-streamed) Ollama answer.
const WHOLE: &str = r#"{"model":"m","message":{"role":"assistant","content":"Hello whole"},"done":true,"done_reason":"stop","prompt_eval_count":3,"eval_count":2}"#;

/// Serves NDJSON answers: `per_connection` of them on each accepted connection (then
/// closes it). Returns the URL and the count of accepted connections.
async fn upstream(per_connection: usize) -> (String, Arc<AtomicUsize>) {
    upstream_serving(per_connection, LINES).await
}

/// [`upstream`] answering `body` every time.
async fn upstream_serving(per_connection: usize, body: &'static str) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                for _ in 0..per_connection {
                    if !read_request(&mut sock).await {
                        return;
                    }
                    let head = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
                        body.len()
                    );
                    let _ = sock.write_all(head.as_bytes()).await;
                    let _ = sock.write_all(body.as_bytes()).await;
                }
            });
        }
    });
    (format!("http://{addr}/api/chat"), accepted)
}

fn direct(url: &str, config: &ClientConfig) -> DirectClient {
    DirectClient::for_url(config, url)
        .unwrap()
        .expect("plain http uses the direct client")
}

/// The error a streamed chat to `url` ends in before any output.
async fn failure(url: &str, timeouts: Timeouts) -> switchyard_core::ProviderError {
    let client = direct(url, &ClientConfig::default());
    chat_stream_direct(&client, Vec::new(), OllamaStreamDecoder::new(), timeouts)
        .await
        .err()
        .expect("the request fails")
}

async fn chat_text(client: &DirectClient) -> String {
    let timeouts = Timeouts {
        first_token: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let mut stream =
        chat_stream_direct(client, b"{}".to_vec(), OllamaStreamDecoder::new(), timeouts)
            .await
            .unwrap();
    let mut text = String::new();
    let mut done = false;
    while let Some(event) = stream.next().await {
        match event.unwrap() {
            ChatEvent::TextDelta { text: t } => text.push_str(&t),
            ChatEvent::Done { .. } => done = true,
            _ => {}
        }
    }
    assert!(done, "the answer ends with its final event");
    text
}

#[tokio::test]
async fn a_finished_answer_returns_its_connection_to_the_pool() {
    let (url, accepted) = upstream(3).await;
    let client = direct(&url, &ClientConfig::default());
    for _ in 0..3 {
        assert_eq!(chat_text(&client).await, "Hello");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection served all three"
    );
}

#[tokio::test]
async fn a_pooled_connection_the_server_closed_is_replaced() {
    let (url, accepted) = upstream(1).await;
    let client = direct(&url, &ClientConfig::default());
    assert_eq!(chat_text(&client).await, "Hello");
    // The server closes after one answer; let the close arrive before the next request.
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(chat_text(&client).await, "Hello");
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn https_and_proxied_upstreams_keep_the_reqwest_client() {
    let config = ClientConfig::default();
    assert!(
        DirectClient::for_url(&config, "https://127.0.0.1:1/v1/chat/completions")
            .unwrap()
            .is_none()
    );
    let proxied = ClientConfig {
        proxy: Some("http://127.0.0.1:3128".into()),
        ..ClientConfig::default()
    };
    assert!(
        DirectClient::for_url(&proxied, "http://127.0.0.1:1/api/chat")
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn nothing_listening_is_connect_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let err = failure(&format!("http://{addr}/api/chat"), Timeouts::default()).await;
    assert_eq!(err.kind(), ErrorKind::ConnectRefused, "{err}");
}

#[tokio::test]
async fn an_accepted_connection_without_an_answer_is_timeout_first_token() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (sock, _) = listener.accept().await.unwrap();
        tokio::time::sleep(Duration::from_secs(5)).await;
        drop(sock);
    });
    let timeouts = Timeouts {
        first_token: Duration::from_millis(200),
        ..Timeouts::default()
    };
    let err = failure(&format!("http://{addr}/api/chat"), timeouts).await;
    assert_eq!(
        err.kind(),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        "{err}"
    );
}

#[tokio::test]
async fn an_error_answer_is_classified_by_its_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        read_request(&mut sock).await;
        let body = r#"{"error":"model \"nope\" not found, try pulling it first"}"#;
        let head = format!(
            "HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
            body.len()
        );
        let _ = sock.write_all(head.as_bytes()).await;
        let _ = sock.write_all(body.as_bytes()).await;
    });
    let err = failure(&format!("http://{addr}/api/chat"), Timeouts::default()).await;
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{err}");
    assert!(err.message().contains("HTTP 404"), "{err}");
}

#[tokio::test]
async fn a_whole_answer_is_decoded_and_its_connection_reused() {
    let (url, accepted) = upstream_serving(2, WHOLE).await;
    let client = direct(&url, &ClientConfig::default());
    let decode = switchyard_stream::ollama::decode_response;
    for _ in 0..2 {
        let answer = complete_direct(
            &client,
            b"{}".to_vec(),
            &Timeouts::default(),
            1024,
            decode,
            None,
        )
        .await
        .unwrap();
        assert_eq!(answer.content, "Hello whole");
        let events: Vec<ChatEvent> = answer_stream(&answer).map(Result::unwrap).collect().await;
        assert!(
            matches!(events.first(), Some(ChatEvent::TextDelta { text }) if text == "Hello whole"),
            "the replayed stream starts with the text: {events:?}"
        );
        assert!(
            matches!(events.last(), Some(ChatEvent::Done { .. })),
            "{events:?}"
        );
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection served both"
    );
}

#[tokio::test]
async fn a_whole_answer_over_the_limit_is_refused_naming_it() {
    let (url, _) = upstream_serving(1, WHOLE).await;
    let client = direct(&url, &ClientConfig::default());
    let decode = switchyard_stream::ollama::decode_response;
    let err = complete_direct(
        &client,
        b"{}".to_vec(),
        &Timeouts::default(),
        16,
        decode,
        None,
    )
    .await
    .expect_err("the answer is larger than 16 bytes");
    assert_eq!(err.reason_code(), "malformed_stream", "{err}");
    assert!(err.message().contains("larger than 16 bytes"), "{err}");
}

/// Serves every request on every accepted connection with `pieces`, written one at a time
/// with a pause between them (so the client reads them apart); closes the connection after
/// the answer when `close`. Returns the URL and the count of accepted connections.
async fn upstream_writing(pieces: Vec<Vec<u8>>, close: bool) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    let pieces = Arc::new(pieces);
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            counter.fetch_add(1, Ordering::SeqCst);
            let pieces = Arc::clone(&pieces);
            tokio::spawn(async move {
                for _ in 0..4 {
                    if !read_request(&mut sock).await {
                        return;
                    }
                    for piece in pieces.iter() {
                        let _ = sock.write_all(piece).await;
                        tokio::time::sleep(Duration::from_millis(5)).await;
                    }
                    if close {
                        return;
                    }
                }
            });
        }
    });
    (format!("http://{addr}/api/chat"), accepted)
}

/// The NDJSON lines as a chunked answer: one chunk per line, each written in pieces that
/// split the size lines, the data and the CRLFs; then the last chunk and a trailer.
fn chunked_pieces() -> Vec<Vec<u8>> {
    let mut wire = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
    for line in LINES.split_inclusive('\n') {
        wire.extend_from_slice(format!("{:x};ext=1\r\n{line}\r\n", line.len()).as_bytes());
    }
    wire.extend_from_slice(b"0\r\nx-trailer: 1\r\n\r\n");
    wire.chunks(37).map(<[u8]>::to_vec).collect()
}

#[tokio::test]
async fn a_chunked_answer_read_in_pieces_decodes_and_its_connection_is_reused() {
    let (url, accepted) = upstream_writing(chunked_pieces(), false).await;
    let client = direct(&url, &ClientConfig::default());
    for _ in 0..2 {
        assert_eq!(chat_text(&client).await, "Hello");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        1,
        "one connection served both"
    );
}

#[tokio::test]
async fn an_answer_that_ends_at_the_close_decodes_on_a_new_connection_each_time() {
    let head = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\n\r\n".to_vec();
    let (url, accepted) = upstream_writing(vec![head, LINES.as_bytes().to_vec()], true).await;
    let client = direct(&url, &ClientConfig::default());
    for _ in 0..2 {
        assert_eq!(chat_text(&client).await, "Hello");
    }
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "no reuse without framing"
    );
}

#[tokio::test]
async fn an_answer_cut_inside_a_chunk_is_stream_ended_early_after_its_text() {
    let mut pieces = chunked_pieces();
    let whole: Vec<u8> = pieces.concat();
    let cut = whole.len() - 60;
    pieces = vec![whole[..cut].to_vec()];
    let (url, _) = upstream_writing(pieces, true).await;
    let client = direct(&url, &ClientConfig::default());
    let timeouts = Timeouts {
        first_token: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let mut stream = chat_stream_direct(
        &client,
        b"{}".to_vec(),
        OllamaStreamDecoder::new(),
        timeouts,
    )
    .await
    .unwrap();
    let mut text = String::new();
    let mut failure = None;
    while let Some(event) = stream.next().await {
        match event {
            Ok(ChatEvent::TextDelta { text: t }) => text.push_str(&t),
            Ok(_) => {}
            Err(e) => failure = Some(e),
        }
    }
    assert_eq!(text, "Hello", "the text before the cut is delivered");
    let err = failure.expect("the cut is an error");
    assert_eq!(err.reason_code(), "stream_ended_early", "{err}");
}

#[tokio::test]
async fn a_broken_answer_head_is_an_upstream_error_naming_it() {
    let (url, _) = upstream_writing(
        vec![b"HTTP/1.1 200 OK\r\ncontent-length: many\r\n\r\n".to_vec()],
        true,
    )
    .await;
    let err = failure(&url, Timeouts::default()).await;
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    assert!(err.message().contains("content-length"), "{err}");
}

#[tokio::test]
async fn a_pooled_connection_with_stale_bytes_is_not_used() {
    // Each answer is followed by a stray byte; the next request must not read it as its
    // answer.
    let mut head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-length: {}\r\n\r\n",
        LINES.len()
    )
    .into_bytes();
    head.extend_from_slice(LINES.as_bytes());
    let (url, accepted) = upstream_writing(vec![head, b"X".to_vec()], false).await;
    let client = direct(&url, &ClientConfig::default());
    assert_eq!(chat_text(&client).await, "Hello");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(chat_text(&client).await, "Hello");
    assert_eq!(
        accepted.load(Ordering::SeqCst),
        2,
        "the stale connection was dropped"
    );
}

#[tokio::test]
async fn a_connection_closed_after_the_request_is_not_sent_again() {
    // The server reads the request and closes without answering: no second attempt.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let requests = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&requests);
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            if read_request(&mut sock).await {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        }
    });
    let err = failure(&format!("http://{addr}/api/chat"), Timeouts::default()).await;
    assert_eq!(err.kind(), ErrorKind::Upstream, "{err}");
    assert!(err.message().contains("closed before an answer"), "{err}");
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(requests.load(Ordering::SeqCst), 1);
}

// Review (srv). RFC 9110 12.5.3: "If no Accept-Encoding header field is in the
// request, any content coding is considered acceptable by the user agent", so an upstream
// may gzip its answer to the direct client, which sends no `accept-encoding` and does not
// decode content codings. ARCHITECTURE.md ("What done looks like"): "Bad input gets a clear
// error naming what was wrong".
#[tokio::test]
async fn a_gzip_answer_is_an_error_naming_the_content_encoding() {
    // gzip of the first NDJSON line's start (the bytes need not be a whole gzip stream:
    // the client cannot read them either way).
    let gz: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0x56, 0xca, 0xcd, 0x4f,
        0x49, 0xcd, 0x51, 0xb2, 0x52, 0xca, 0x55, 0xd2, 0x51, 0xca, 0x4d, 0x2d, 0x2e,
    ];
    let mut head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-ndjson\r\ncontent-encoding: gzip\r\ncontent-length: {}\r\n\r\n",
        gz.len()
    )
    .into_bytes();
    head.extend_from_slice(gz);
    let (url, _) = upstream_writing(vec![head], false).await;
    let client = direct(&url, &ClientConfig::default());
    let timeouts = Timeouts {
        first_token: Duration::from_secs(10),
        ..Timeouts::default()
    };
    let result = chat_stream_direct(
        &client,
        b"{}".to_vec(),
        OllamaStreamDecoder::new(),
        timeouts,
    )
    .await;
    let mut failure = None;
    match result {
        Err(e) => failure = Some(e),
        Ok(mut stream) => {
            while let Some(event) = stream.next().await {
                if let Err(e) = event {
                    failure = Some(e);
                }
            }
        }
    }
    let err = failure.expect("a gzip body the client cannot read is an error");
    assert!(
        err.message().to_ascii_lowercase().contains("gzip")
            || err.message().to_ascii_lowercase().contains("encoding"),
        "the error names the content coding: {err}"
    );
}
