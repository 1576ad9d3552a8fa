#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! An adversarial review of the HTTP/1.1 fast path (`h1_fast.rs`) and of its hand-over to
//! hyper, black-box over raw loopback sockets: request framing and smuggling-style inputs,
//! malformed heads, oversized heads and bodies, pipelining, `Expect`, HTTP/1.0,
//! `Connection: close`, unusual methods and request targets.
//!
//! Each case checks what an RFC 9112 server must do: a 4xx for what it must refuse (and
//! the connection closed after a framing error), correct processing of what it must
//! accept, never a second answer made of bytes that followed an ambiguous request (no
//! smuggling), never a hang (every read is bounded), and a gateway that still serves a
//! fresh connection afterwards (no panic took it down). Where the fast path hands a
//! request to hyper, hyper's answer is the gateway's.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::json;
use switchyard_core::Locality;
use switchyard_gateway::{ApiKey, GatewayConfig};
use switchyard_http::ClientConfig;
use switchyard_router::ProviderSlot;
use switchyard_testkit::support::{guarded, timeouts};
use switchyard_testkit::{TestUpstream, UpstreamConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::time::Instant;

mod support;

use support::{Kind, new_gateway, provider_with, router_over, serve_until_stopped};

const KEY: &str = "sk-h1-adversarial";

/// The longest a test waits for the gateway to answer or close (a bound, not a speed
/// requirement: a conforming gateway answers these in milliseconds).
const READ_BOUND: Duration = Duration::from_secs(5);

/// A request that follows an ambiguous one in the same write: answered, it would be a
/// smuggled request. `/healthz` answers `ok\n`, which no other answer here is.
const SMUGGLED: &str = "GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n";

/// A gateway over one testkit Ollama upstream (route `chat` -> `up/test-model`).
struct Served {
    addr: SocketAddr,
    upstream: TestUpstream,
    _stop: oneshot::Sender<()>,
}

fn config() -> GatewayConfig {
    GatewayConfig {
        keys: vec![ApiKey::new("h1", KEY)],
        header_read_timeout: Duration::from_secs(2),
        body_read_timeout: Duration::from_secs(1),
        shutdown_grace: Duration::from_secs(1),
        ..GatewayConfig::default()
    }
}

impl Served {
    async fn start(config: GatewayConfig) -> Served {
        let upstream = TestUpstream::start(UpstreamConfig::default())
            .await
            .unwrap();
        let client = ClientConfig {
            timeouts: timeouts(2000, 2000),
            ..ClientConfig::default()
        };
        let provider = provider_with(Kind::Ollama, &upstream, Locality::Local, client, false);
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

    /// Writes `bytes` on a new connection and reads until the gateway closes it (or
    /// [`READ_BOUND`]).
    async fn send(&self, bytes: &[u8]) -> Outcome {
        let mut stream = self.connect().await;
        // The gateway may close before it read everything (after a refusal): a failed
        // write is part of the outcome, not a test failure.
        let _ = stream.write_all(bytes).await;
        until_closed(&mut stream).await
    }

    /// `GET /healthz` on a fresh connection answers `ok`: the gateway still serves.
    async fn assert_serving(&self) {
        let outcome = self
            .send(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
            .await;
        let answer = outcome.only();
        assert_eq!((answer.status, answer.text()), (200, "ok\n".into()));
    }
}

/// A raw HTTP/1 answer.
#[derive(Debug, Clone)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then_some(v.trim())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    fn is_health(&self) -> bool {
        self.status == 200 && self.body == b"ok\n"
    }
}

/// How a connection ended while it was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The gateway closed it (EOF).
    Closed,
    /// The gateway reset it.
    Reset,
    /// Still open at [`READ_BOUND`].
    Open,
}

/// What came back on one connection.
#[derive(Debug)]
struct Outcome {
    /// Every answer, interim (1xx) ones included, in order.
    answers: Vec<Answer>,
    /// Bytes after the last whole answer.
    rest: Vec<u8>,
    end: End,
}

impl Outcome {
    /// The final (non-1xx) answers.
    fn finals(&self) -> Vec<&Answer> {
        self.answers.iter().filter(|a| a.status >= 200).collect()
    }

    /// The one final answer (asserting there is exactly one).
    fn only(&self) -> &Answer {
        let finals = self.finals();
        assert_eq!(finals.len(), 1, "not exactly one answer: {self:?}");
        finals[0]
    }

    fn closed(&self) -> bool {
        self.end != End::Open
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The body of a chunked answer at the start of `raw`, and the bytes it took; `None` when
/// it is not whole yet.
fn dechunk(raw: &[u8]) -> Option<(Vec<u8>, usize)> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let line_end = at + find(&raw[at..], b"\r\n")?;
        let line = std::str::from_utf8(&raw[at..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        at = line_end + 2;
        if size == 0 {
            // No trailers in the gateway's answers.
            return (raw.len() >= at + 2).then(|| (body, at + 2));
        }
        if raw.len() < at + size + 2 {
            return None;
        }
        body.extend_from_slice(&raw[at..at + size]);
        at += size + 2;
    }
}

/// The answer at the start of `raw` and the bytes it took; `None` when it is not whole yet
/// (`eof`: the connection closed, so a body without framing ends here).
fn parse_answer(raw: &[u8], eof: bool) -> Option<(Answer, usize)> {
    let head_end = find(raw, b"\r\n\r\n")?;
    let head = String::from_utf8_lossy(&raw[..head_end]).into_owned();
    let status: u16 = head.split(' ').nth(1)?.parse().ok()?;
    let mut answer = Answer {
        status,
        head,
        body: Vec::new(),
    };
    let start = head_end + 4;
    if status < 200 || status == 204 || status == 304 {
        return Some((answer, start));
    }
    if answer
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"))
    {
        let (body, used) = dechunk(&raw[start..])?;
        answer.body = body;
        return Some((answer, start + used));
    }
    if let Some(length) = answer.header("content-length") {
        let length: usize = length.parse().ok()?;
        if raw.len() < start + length {
            return None;
        }
        answer.body = raw[start..start + length].to_vec();
        return Some((answer, start + length));
    }
    // Delimited by the close.
    if !eof {
        return None;
    }
    answer.body = raw[start..].to_vec();
    Some((answer, raw.len()))
}

fn parse_all(raw: &[u8], eof: bool) -> (Vec<Answer>, Vec<u8>) {
    let mut answers = Vec::new();
    let mut at = 0;
    while at < raw.len() {
        match parse_answer(&raw[at..], eof) {
            Some((answer, used)) => {
                answers.push(answer);
                at += used;
            }
            None => break,
        }
    }
    (answers, raw[at..].to_vec())
}

/// Reads until the peer closes `stream` or [`READ_BOUND`] passes.
async fn until_closed(stream: &mut TcpStream) -> Outcome {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + READ_BOUND;
    let end = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break End::Open,
            Ok(Ok(0)) => break End::Closed,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break End::Reset,
        }
    };
    let (answers, rest) = parse_all(&raw, end != End::Open);
    Outcome { answers, rest, end }
}

/// Reads until `want` final answers arrived (panics if they do not within
/// [`READ_BOUND`], or the connection ends first); the connection stays open. Every
/// answer read is returned, interim ones included; no bytes are left half-read.
async fn read_finals(stream: &mut TcpStream, want: usize) -> Vec<Answer> {
    read_until(stream, |answers| {
        answers.iter().filter(|a| a.status >= 200).count() >= want
    })
    .await
}

/// Reads until the answers so far satisfy `enough` (panics if they do not within
/// [`READ_BOUND`], or the connection ends first), with no bytes left half-read.
async fn read_until(stream: &mut TcpStream, enough: impl Fn(&[Answer]) -> bool) -> Vec<Answer> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + READ_BOUND;
    loop {
        let (answers, rest) = parse_all(&raw, false);
        if enough(&answers) && rest.is_empty() {
            return answers;
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => raw.extend_from_slice(&buf[..n]),
            other => panic!(
                "the answers did not arrive ({other:?}): {:?}",
                String::from_utf8_lossy(&raw)
            ),
        }
    }
}

/// Reads whatever arrives within `wait` (for "nothing more is sent" checks).
async fn read_for(stream: &mut TcpStream, wait: Duration) -> (Vec<u8>, End) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + wait;
    let end = loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => break End::Open,
            Ok(Ok(0)) => break End::Closed,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break End::Reset,
        }
    };
    (raw, end)
}

fn chat_body() -> Vec<u8> {
    serde_json::to_vec(&json!({
        "model": "chat",
        "stream": false,
        "messages": [{ "role": "user", "content": "hi" }],
    }))
    .unwrap()
}

fn auth() -> String {
    format!("Authorization: Bearer {KEY}\r\n")
}

/// `POST path HTTP/1.1` with `extra` header lines, a `content-length` and `body`.
fn post(path: &str, extra: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\n{}{extra}Content-Length: {}\r\n\r\n",
        auth(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `POST path HTTP/1.1` with a head of `headers` (each line with its CRLF) and `body`, as
/// given: no `content-length` is added.
fn post_raw(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut raw = format!(
        "POST {path} HTTP/1.1\r\nHost: gw\r\n{}{headers}\r\n",
        auth()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

/// `body` as one chunk and the last chunk.
fn chunked(body: &[u8]) -> Vec<u8> {
    let mut raw = format!("{:x}\r\n", body.len()).into_bytes();
    raw.extend_from_slice(body);
    raw.extend_from_slice(b"\r\n0\r\n\r\n");
    raw
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A request the gateway must refuse for its framing or its head: exactly one answer, a
/// 4xx among `statuses`, the connection closed after it, and what followed (`SMUGGLED`)
/// never answered.
fn assert_refused(outcome: &Outcome, statuses: &[u16], what: &str) {
    let finals = outcome.finals();
    assert!(
        finals.iter().all(|a| !a.is_health()),
        "{what}: the bytes after the request were served as a request: {outcome:?}"
    );
    assert_eq!(
        finals.len(),
        1,
        "{what}: not exactly one answer: {outcome:?}"
    );
    assert!(
        statuses.contains(&finals[0].status),
        "{what}: answered {} (expected one of {statuses:?}): {outcome:?}",
        finals[0].status
    );
    assert!(
        outcome.closed(),
        "{what}: the connection stayed open after a framing error: {outcome:?}"
    );
    assert!(
        outcome.rest.is_empty(),
        "{what}: bytes after the answer that are no answer: {outcome:?}"
    );
}

// ---- Content-Length -------------------------------------------------------------------

#[tokio::test]
async fn conflicting_content_lengths_are_refused_and_close_the_connection() {
    let served = Served::start(config()).await;
    let body = b"helloX";
    let cases: &[&str] = &[
        "Content-Length: 5\r\nContent-Length: 6\r\n",
        "Content-Length: 6\r\nContent-Length: 5\r\n",
        "Content-Length: 5, 6\r\n",
        // A list of equal values: RFC 9110 8.6 lets a recipient accept it as one value or
        // refuse it; refusing is the safe choice, and hyper makes it.
        "Content-Length: 6, 6\r\n",
        "Content-Length: 6\r\ncontent-length: 6, 6\r\n",
    ];
    for headers in cases {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, body),
            SMUGGLED.as_bytes(),
        ]);
        assert_refused(&served.send(&raw).await, &[400], headers);
    }
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn content_length_with_a_sign_spaces_or_non_digits_is_400() {
    let served = Served::start(config()).await;
    let values: &[&[u8]] = &[
        b"+5",
        b"-5",
        b"5 5",
        b"5,",
        b",5",
        b"0x5",
        b"5a",
        b"1e1",
        b"5.0",
        b"\"5\"",
        b"",
        b"99999999999999999999999",
        b"18446744073709551616",
        // Fullwidth digit five (U+FF15): not an ASCII digit.
        "\u{ff15}".as_bytes(),
    ];
    for value in values {
        let mut head = b"Content-Length: ".to_vec();
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
        let raw = cat(&[
            &post_raw("/v1/chat/completions", &show(&head), b"hello"),
            SMUGGLED.as_bytes(),
        ]);
        assert_refused(&served.send(&raw).await, &[400], &show(&head));
    }
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn valid_content_length_spellings_are_processed() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let n = body.len();
    // Optional whitespace around the value (RFC 9112 5: not part of the value), leading
    // zeros (1*DIGIT), a repeated identical header (RFC 9110 8.6 allows it): each is one
    // request with `n` bytes of body, answered, and the next request on the connection
    // is read where that body ends.
    let cases = [
        format!("Content-Length:   {n}   \r\n"),
        format!("Content-Length:\t{n}\r\n"),
        format!("content-LENGTH: {n}\r\n"),
        format!("Content-Length: {n:05}\r\n"),
        // More digits than the fast path reads (hyper's then).
        format!("Content-Length: {n:012}\r\n"),
        format!("Content-Length: {n}\r\nContent-Length: {n}\r\n"),
    ];
    for headers in &cases {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, &body),
            b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        ]);
        let outcome = served.send(&raw).await;
        let finals = outcome.finals();
        assert_eq!(finals.len(), 2, "{headers:?}: {outcome:?}");
        assert_eq!(finals[0].status, 200, "{headers:?}: {outcome:?}");
        assert!(finals[1].is_health(), "{headers:?}: {outcome:?}");
        assert!(outcome.closed(), "{headers:?}: {outcome:?}");
    }
    assert_eq!(served.upstream.chat_request_count(), cases.len());
}

#[tokio::test]
async fn content_length_and_transfer_encoding_together_never_smuggle() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // RFC 9112 6.3: with both, Transfer-Encoding overrides Content-Length; the server may
    // refuse the request or process it by its chunks alone, and MUST close the connection
    // after answering. Either way the bytes after the chunked body are never a request.
    let cases: Vec<(String, Vec<u8>)> = vec![
        (
            "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n".into(),
            b"0\r\n\r\n".to_vec(),
        ),
        (
            "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n".into(),
            b"0\r\n\r\n".to_vec(),
        ),
        (
            // The length covers the smuggled request too: a server reading by length
            // would swallow it; one reading by chunks would see it as a request.
            format!(
                "Content-Length: {}\r\nTransfer-Encoding: chunked\r\n",
                5 + SMUGGLED.len()
            ),
            b"0\r\n\r\n".to_vec(),
        ),
        (
            "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n".into(),
            chunked(&body),
        ),
        (
            "Content-Length: 0\r\nTransfer-Encoding: chunked\r\n".into(),
            chunked(&body),
        ),
    ];
    for (headers, chunks) in &cases {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, chunks),
            SMUGGLED.as_bytes(),
        ]);
        let outcome = served.send(&raw).await;
        // Processed by its chunks, an empty body is the handler's 400 and the chat body a
        // 200; refused, a 400.
        assert_refused(&outcome, &[200, 400], headers);
    }
    served.assert_serving().await;
}

// ---- Transfer-Encoding ------------------------------------------------------------------

#[tokio::test]
async fn transfer_codings_other_than_a_final_chunked_are_refused() {
    let served = Served::start(config()).await;
    // RFC 9112 6.3: a request whose Transfer-Encoding does not end in `chunked` has no
    // determinable length: 400, and the connection closed. 501 (6.1, a coding not
    // understood) is acceptable too.
    let cases: &[&str] = &[
        "Transfer-Encoding: gzip\r\n",
        "Transfer-Encoding: identity\r\n",
        "Transfer-Encoding: chunked, gzip\r\n",
        "Transfer-Encoding: xchunked\r\n",
        "Transfer-Encoding: chunkedx\r\n",
        "Transfer-Encoding: chunked\r\nTransfer-Encoding: gzip\r\n",
        "Transfer-Encoding:\r\n",
        "Transfer-Encoding: gzip\r\nContent-Length: 5\r\n",
    ];
    for headers in cases {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, b"5\r\nhello\r\n0\r\n\r\n"),
            SMUGGLED.as_bytes(),
        ]);
        assert_refused(&served.send(&raw).await, &[400, 501], headers);
    }
    // HTTP/1.0 has no transfer codings: faulty framing (RFC 9112 6.1), refused.
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nHost: gw\r\n{}Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n{SMUGGLED}",
        auth()
    );
    assert_refused(
        &served.send(raw.as_bytes()).await,
        &[400],
        "HTTP/1.0 chunked",
    );
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn chunked_in_any_case_and_whitespace_is_read_by_its_chunks() {
    let served = Served::start(config()).await;
    let body = chat_body();
    for headers in [
        "Transfer-Encoding: chunked\r\n",
        "Transfer-Encoding: Chunked\r\n",
        "transfer-encoding:\tCHUNKED \r\n",
    ] {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, &chunked(&body)),
            b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        ]);
        let outcome = served.send(&raw).await;
        let finals = outcome.finals();
        assert_eq!(finals.len(), 2, "{headers:?}: {outcome:?}");
        assert_eq!(finals[0].status, 200, "{headers:?}: {outcome:?}");
        assert!(finals[1].is_health(), "{headers:?}: {outcome:?}");
    }
    served.assert_serving().await;
}

#[tokio::test]
async fn malformed_chunks_are_refused_and_close_the_connection() {
    let served = Served::start(config()).await;
    let cases: &[&[u8]] = &[
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"-5\r\nhello\r\n0\r\n\r\n",
        b"0x5\r\nhello\r\n0\r\n\r\n",
        b"+5\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
        // Data longer than its size: "hello" is 5, not 3.
        b"3\r\nhello\r\n0\r\n\r\n",
        // No CRLF after the data.
        b"5\r\nhelloXX0\r\n\r\n",
    ];
    for chunks in cases {
        let raw = cat(&[
            &post_raw(
                "/v1/chat/completions",
                "Transfer-Encoding: chunked\r\n",
                chunks,
            ),
            SMUGGLED.as_bytes(),
        ]);
        let outcome = served.send(&raw).await;
        assert_refused(&outcome, &[400], &show(chunks));
    }
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

// ---- malformed heads ----------------------------------------------------------------------

#[tokio::test]
async fn obs_fold_and_malformed_header_lines_are_400() {
    let served = Served::start(config()).await;
    // RFC 9112 5.2: obs-fold outside message/http is refused with 400 (or replaced by
    // spaces); 5.1: whitespace between a field name and its colon MUST be a 400; 2.2: a
    // whitespace-led first field line MUST be refused (or ignored).
    let cases: &[&[u8]] = &[
        b"X-A: a\r\n b\r\nContent-Length: 5\r\n",
        b"X-A: a\r\n\tb\r\nContent-Length: 5\r\n",
        // Folded into a length: 1, 10, or refused? Refused.
        b"Content-Length: 1\r\n 0\r\n",
        b"Content-Length : 5\r\n",
        b"Content-Length\t: 5\r\n",
        b"Transfer-Encoding : chunked\r\nContent-Length: 5\r\n",
        b"Content-Length: 5\r\nTransfer-Encoding : chunked\r\n",
        b": no-name\r\nContent-Length: 5\r\n",
        b"No-Colon\r\nContent-Length: 5\r\n",
        b"X\x80Y: 1\r\nContent-Length: 5\r\n",
        b"X(Y): 1\r\nContent-Length: 5\r\n",
        b"X-A\x00: 1\r\nContent-Length: 5\r\n",
    ];
    for headers in cases {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", &show(headers), b""),
            b"hello",
            SMUGGLED.as_bytes(),
        ]);
        assert_refused(&served.send(&raw).await, &[400], &show(headers));
    }
    // A whitespace-led line right after the request line.
    let raw = format!(
        "POST /v1/chat/completions HTTP/1.1\r\n Host: gw\r\n{}Content-Length: 5\r\n\r\nhello{SMUGGLED}",
        auth()
    );
    assert_refused(&served.send(raw.as_bytes()).await, &[400], "leading space");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn control_bytes_in_header_values_and_the_target_are_400() {
    let served = Served::start(config()).await;
    for byte in [0x00u8, 0x01, 0x08, 0x0b, 0x0c, 0x1b, 0x7f] {
        let mut headers = b"X-Evil: a".to_vec();
        headers.push(byte);
        headers.extend_from_slice(b"b\r\nContent-Length: 5\r\n");
        let raw = cat(&[
            &post_raw("/v1/chat/completions", &show(&headers), b"hello"),
            SMUGGLED.as_bytes(),
        ]);
        let outcome = served.send(&raw).await;
        assert_refused(&outcome, &[400], &format!("byte {byte:#04x} in a value"));
    }
    // A CR, NUL or a space in the request target, a bare CR as a line end.
    let cases: &[&[u8]] = &[
        b"GET /heal\x00thz HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /heal\rthz HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /heal thz HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /healthz HTTP/1.1\rHost: gw\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\nHost: gw\rX: y\r\n\r\n",
    ];
    for raw in cases {
        let raw = cat(&[raw, SMUGGLED.as_bytes()]);
        assert_refused(&served.send(&raw).await, &[400], &show(&raw));
    }
    served.assert_serving().await;
}

#[tokio::test]
async fn tabs_and_obs_text_in_values_are_accepted() {
    let served = Served::start(config()).await;
    // RFC 9110 5.5: a field value may hold HTAB, SP and obs-text (0x80-0xFF).
    let raw = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nX-A: a\tb\r\nX-B: caf\xc3\xa9 \xff\r\nConnection: close\r\n\r\n";
    let outcome = served.send(raw).await;
    assert!(outcome.only().is_health(), "{outcome:?}");
}

#[tokio::test]
async fn bare_lf_line_ends_are_accepted_and_leading_empty_lines_ignored() {
    let served = Served::start(config()).await;
    // RFC 9112 2.2: a recipient MAY recognise a bare LF as a line terminator (hyper and
    // the fast path both do, through httparse), and SHOULD ignore at least one empty
    // line before a request line.
    let body = chat_body();
    let cases: Vec<Vec<u8>> = vec![
        b"GET /healthz HTTP/1.1\nHost: gw\nConnection: close\n\n".to_vec(),
        b"GET /healthz HTTP/1.1\r\nHost: gw\nConnection: close\r\n\n".to_vec(),
        b"\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_vec(),
        b"\r\n\r\n\nGET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_vec(),
    ];
    for raw in &cases {
        let outcome = served.send(raw).await;
        assert!(outcome.only().is_health(), "{:?}: {outcome:?}", show(raw));
        assert!(outcome.closed(), "{:?}: {outcome:?}", show(raw));
    }
    // A POST whose head ends in bare LFs, then an old client's stray CRLF after the
    // body, then the next request.
    let raw = cat(&[
        format!(
            "POST /v1/chat/completions HTTP/1.1\nHost: gw\nAuthorization: Bearer {KEY}\nContent-Length: {}\n\n",
            body.len()
        )
        .as_bytes(),
        &body,
        b"\r\nGET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert_eq!(finals.len(), 2, "{outcome:?}");
    assert_eq!(finals[0].status, 200, "{outcome:?}");
    assert!(finals[1].is_health(), "{outcome:?}");
}

// ---- oversized heads and bodies ---------------------------------------------------------------

#[tokio::test]
async fn many_headers_past_the_fast_paths_table_are_served_and_too_many_are_431() {
    let served = Served::start(config()).await;
    let headers = |n: usize| -> String { (0..n).map(|i| format!("X-H{i}: v\r\n")).collect() };
    // 70: more than the fast path keeps (64), fewer than hyper's (100): hyper serves it.
    let raw = format!(
        "GET /healthz HTTP/1.1\r\nHost: gw\r\n{}Connection: close\r\n\r\n",
        headers(70)
    );
    let outcome = served.send(raw.as_bytes()).await;
    assert!(outcome.only().is_health(), "{outcome:?}");
    // 300 headers: 431, in the API's shape (`refusal.rs`), naming what was wrong.
    let raw = cat(&[
        &post(
            "/v1/chat/completions",
            &format!("{}Connection: keep-alive\r\n", headers(300)),
            &chat_body(),
        ),
        SMUGGLED.as_bytes(),
    ]);
    let outcome = served.send(&raw).await;
    assert_refused(&outcome, &[431], "300 headers");
    assert!(
        outcome.finals()[0]
            .text()
            .contains("request header fields too large"),
        "{outcome:?}"
    );
    // One line of 1 MB.
    let raw = cat(&[
        &post(
            "/v1/chat/completions",
            &format!("X-Big: {}\r\n", "a".repeat(1024 * 1024)),
            &chat_body(),
        ),
        SMUGGLED.as_bytes(),
    ]);
    let outcome = served.send(&raw).await;
    assert_refused(&outcome, &[431], "a 1 MB header line");
    // A 100 KB request target: 414 in the API's shape.
    let raw = format!(
        "GET /v1/models/{} HTTP/1.1\r\nHost: gw\r\n{}\r\n{SMUGGLED}",
        "m".repeat(100 * 1024),
        auth()
    );
    let outcome = served.send(raw.as_bytes()).await;
    assert_refused(&outcome, &[414], "a 100 KB target");
    assert!(
        outcome.finals()[0].text().contains("URI too long"),
        "{outcome:?}"
    );
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn a_body_over_the_configured_limit_is_413_and_its_bytes_are_never_a_request() {
    let limit = 4096;
    let served = Served::start(GatewayConfig {
        max_body_bytes: limit,
        ..config()
    })
    .await;
    // A body that is itself a request, padded past the limit.
    let inner = |n: usize| -> Vec<u8> {
        let mut body = SMUGGLED.repeat(n / SMUGGLED.len() + 1).into_bytes();
        body.truncate(n);
        body
    };

    // Small enough for the fast path (it reads it whole): 413, and the connection may
    // go on, reading the next request where the body ends.
    let raw = cat(&[
        &post("/v1/chat/completions", "", &inner(limit + 1)),
        b"GET /api/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert!(
        finals.iter().all(|a| !a.is_health()),
        "the body was served as a request: {outcome:?}"
    );
    assert_eq!(finals[0].status, 413, "{outcome:?}");
    assert!(
        finals[0].text().contains("request body too large"),
        "{outcome:?}"
    );
    if finals.len() == 2 {
        assert_eq!(finals[1].status, 200, "{outcome:?}");
        assert!(finals[1].text().contains("version"), "{outcome:?}");
    } else {
        assert_eq!(finals.len(), 1, "{outcome:?}");
    }
    assert!(outcome.closed(), "{outcome:?}");

    // Larger than the fast path buffers (hyper's, refused before it is read): 413, then
    // the connection closes; the unread body is never parsed as requests.
    let raw = post("/v1/chat/completions", "", &inner(200 * 1024));
    let outcome = served.send(&raw).await;
    assert_refused(&outcome, &[413], "a 200 KB body");
    assert!(
        outcome.finals()[0]
            .text()
            .contains("request body too large"),
        "{outcome:?}"
    );

    // The same, chunked: refused once the limit is passed.
    let raw = post_raw(
        "/v1/chat/completions",
        "Transfer-Encoding: chunked\r\n",
        &chunked(&inner(limit * 4)),
    );
    let outcome = served.send(&raw).await;
    assert_refused(&outcome, &[413], "a chunked body over the limit");

    // A body of exactly the limit is not too large: it is read (and is no chat request).
    let raw = cat(&[
        &post(
            "/v1/chat/completions",
            "Connection: close\r\n",
            &[b' '; 4096],
        ),
        SMUGGLED.as_bytes(),
    ]);
    let outcome = served.send(&raw).await;
    let answer = outcome.only();
    assert_eq!(answer.status, 400, "{outcome:?}");
    assert!(!answer.text().contains("too large"), "{outcome:?}");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

// ---- bodies that end early ---------------------------------------------------------------------

#[tokio::test]
async fn a_body_shorter_than_its_length_is_never_served() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
        auth(),
        body.len() + 10
    );
    // Then the client half-closes: the request can never be whole. RFC 9112 8: the
    // server may answer with an error before closing, or just close; it must not serve
    // it.
    let mut stream = served.connect().await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    stream.shutdown().await.unwrap();
    let outcome = until_closed(&mut stream).await;
    assert!(outcome.closed(), "{outcome:?}");
    assert!(
        outcome.finals().iter().all(|a| a.status >= 400),
        "{outcome:?}"
    );
    // Then the client goes away entirely.
    let mut stream = served.connect().await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    drop(stream);
    // Then it stalls: the body read timeout (1 s) answers 408 and closes.
    let mut stream = served.connect().await;
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&body).await.unwrap();
    let outcome = until_closed(&mut stream).await;
    assert_refused(&outcome, &[408], "a stalled body");
    // A stalled chunked body, the same.
    let mut stream = served.connect().await;
    let raw = post_raw(
        "/v1/chat/completions",
        "Transfer-Encoding: chunked\r\n",
        b"100\r\n{\"model\"",
    );
    stream.write_all(&raw).await.unwrap();
    let outcome = until_closed(&mut stream).await;
    assert_refused(&outcome, &[408], "a stalled chunked body");
    served.assert_serving().await;
    assert_eq!(served.upstream.chat_request_count(), 0);
}

// ---- pipelining ----------------------------------------------------------------------------

#[tokio::test]
async fn two_whole_posts_in_one_write_are_answered_in_order() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let raw = cat(&[
        &post("/v1/chat/completions", "", &body),
        &post("/api/chat", "Connection: close\r\n", &body),
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert_eq!(finals.len(), 2, "{outcome:?}");
    assert_eq!(finals[0].status, 200, "{outcome:?}");
    assert!(finals[0].text().contains("chat.completion"), "{outcome:?}");
    assert_eq!(finals[1].status, 200, "{outcome:?}");
    assert!(finals[1].text().contains("\"done\":true"), "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    assert_eq!(served.upstream.chat_request_count(), 2);
}

#[tokio::test]
async fn a_post_then_half_of_a_second_is_answered_and_the_second_completed_later() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let second = post("/api/chat", "Connection: close\r\n", &body);
    // Cut inside the head, inside the body, and just before the body: the second
    // request's rest arrives 300 ms later (past the fast path's 200 ms wait for a body).
    let head_len = find(&second, b"\r\n\r\n").unwrap() + 4;
    for cut in [20, head_len - 1, head_len, head_len + 7] {
        let mut stream = served.connect().await;
        let first = post("/v1/chat/completions", "", &body);
        stream
            .write_all(&cat(&[&first, &second[..cut]]))
            .await
            .unwrap();
        let answers = read_finals(&mut stream, 1).await;
        assert_eq!(
            answers.last().unwrap().status,
            200,
            "cut {cut}: {answers:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        stream.write_all(&second[cut..]).await.unwrap();
        let outcome = until_closed(&mut stream).await;
        let answer = outcome.only();
        assert_eq!(answer.status, 200, "cut {cut}: {outcome:?}");
        assert!(
            answer.text().contains("\"done\":true"),
            "cut {cut}: {outcome:?}"
        );
        assert!(outcome.closed(), "cut {cut}: {outcome:?}");
    }
    // A POST then half a second, then the client half-closes: the first is answered,
    // the half is not a request, and the connection closes.
    let mut stream = served.connect().await;
    let first = post("/v1/chat/completions", "", &body);
    stream
        .write_all(&cat(&[&first, &second[..head_len + 7]]))
        .await
        .unwrap();
    stream.shutdown().await.unwrap();
    let outcome = until_closed(&mut stream).await;
    let answer = outcome.only();
    assert_eq!(answer.status, 200, "{outcome:?}");
    assert!(answer.text().contains("chat.completion"), "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    served.assert_serving().await;
}

// ---- Expect, HTTP/1.0, Connection ---------------------------------------------------------------

#[tokio::test]
async fn expect_100_continue_is_honoured() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // The client waits for `100 Continue` before sending its body.
    let mut stream = served.connect().await;
    let raw = post(
        "/v1/chat/completions",
        "Expect: 100-continue\r\nConnection: close\r\n",
        &body,
    );
    let head_len = find(&raw, b"\r\n\r\n").unwrap() + 4;
    stream.write_all(&raw[..head_len]).await.unwrap();
    let mut interim = Vec::new();
    let mut byte = [0u8; 1];
    while !interim.ends_with(b"\r\n\r\n") {
        let n = guarded(stream.read(&mut byte)).await.unwrap();
        assert_eq!(n, 1, "closed before 100 Continue: {:?}", show(&interim));
        interim.push(byte[0]);
    }
    assert!(
        interim.starts_with(b"HTTP/1.1 100 Continue\r\n"),
        "{:?}",
        show(&interim)
    );
    stream.write_all(&raw[head_len..]).await.unwrap();
    let outcome = until_closed(&mut stream).await;
    assert_eq!(outcome.only().status, 200, "{outcome:?}");

    // The body sent at once anyway: one final answer (a 100 before it is allowed).
    let outcome = served.send(&raw).await;
    assert_eq!(outcome.only().status, 200, "{outcome:?}");

    // A body too large for the limit: the final 413 comes without the body being sent
    // (RFC 9110 10.1.1: a server may answer with a final status instead of 100).
    let mut stream = served.connect().await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        auth(),
        64 * 1024 * 1024
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let outcome = until_closed(&mut stream).await;
    assert_refused(&outcome, &[413], "Expect with a body over the limit");
    assert!(
        outcome.answers.iter().all(|a| a.status != 100),
        "100 Continue for a body that will be refused: {outcome:?}"
    );

    // An expectation the server does not know: 417, or the request processed as if the
    // expectation were absent (RFC 9110 10.1.1 makes 417 a MAY).
    let raw = post(
        "/v1/chat/completions",
        "Expect: teapot\r\nConnection: close\r\n",
        &body,
    );
    let outcome = served.send(&raw).await;
    let status = outcome.only().status;
    assert!(status == 200 || status == 417, "{outcome:?}");
    served.assert_serving().await;
}

#[tokio::test]
async fn http_1_0_closes_unless_kept_alive() {
    let served = Served::start(config()).await;
    // Without keep-alive: one answer, then the connection closes, and what followed is
    // not answered.
    let raw = format!("GET /healthz HTTP/1.0\r\n\r\n{SMUGGLED}");
    let outcome = served.send(raw.as_bytes()).await;
    assert!(outcome.only().is_health(), "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    // A POST to a hot route in HTTP/1.0.
    let body = chat_body();
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
        auth(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let outcome = served.send(&raw).await;
    assert_eq!(outcome.only().status, 200, "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    // HTTP/1.0 without a length has no body (RFC 9112 6.3: a request without
    // Content-Length or Transfer-Encoding has length 0, even in 1.0): the bytes that
    // follow are not its body, and the connection closes after the answer.
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nHost: gw\r\n{}\r\n",
        auth()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let outcome = served.send(&raw).await;
    assert_eq!(outcome.only().status, 400, "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    // With keep-alive: served, said so, and the connection kept for the next request.
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .await
        .unwrap();
    let answers = read_finals(&mut stream, 1).await;
    let first = answers.last().unwrap();
    assert!(first.is_health(), "{answers:?}");
    assert!(
        first
            .header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("keep-alive")),
        "{answers:?}"
    );
    stream
        .write_all(format!("GET /healthz HTTP/1.0\r\n\r\n{SMUGGLED}").as_bytes())
        .await
        .unwrap();
    let outcome = until_closed(&mut stream).await;
    assert!(outcome.only().is_health(), "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    assert_eq!(served.upstream.chat_request_count(), 1);
}

#[tokio::test]
async fn connection_close_is_honoured_on_either_path() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "fast GET",
            b"GET /api/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_vec(),
        ),
        (
            "fast POST",
            post("/v1/chat/completions", "Connection: close\r\n", &body),
        ),
        (
            "keep-alive, close",
            post(
                "/v1/chat/completions",
                "Connection: keep-alive, close\r\n",
                &body,
            ),
        ),
        (
            "close then keep-alive lines",
            post(
                "/v1/chat/completions",
                "Connection: close\r\nConnection: keep-alive\r\n",
                &body,
            ),
        ),
        (
            "CLOSE",
            post("/v1/chat/completions", "connection: CLOSE\r\n", &body),
        ),
        (
            "hyper (chunked)",
            post_raw(
                "/v1/chat/completions",
                "Connection: close\r\nTransfer-Encoding: chunked\r\n",
                &chunked(&body),
            ),
        ),
    ];
    for (what, raw) in &cases {
        let outcome = served.send(&cat(&[raw, SMUGGLED.as_bytes()])).await;
        let answer = outcome.only();
        assert!(!answer.is_health(), "{what}: {outcome:?}");
        assert!(answer.status == 200, "{what}: {outcome:?}");
        assert_eq!(
            answer.header("connection"),
            Some("close"),
            "{what}: {outcome:?}"
        );
        assert!(outcome.closed(), "{what}: {outcome:?}");
    }
    // After a kept-alive request on the same connection.
    let raw = cat(&[
        b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
        &post("/v1/chat/completions", "Connection: close\r\n", &body),
        SMUGGLED.as_bytes(),
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert_eq!(finals.len(), 2, "{outcome:?}");
    assert!(finals[0].is_health(), "{outcome:?}");
    assert_eq!(finals[1].status, 200, "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
}

// ---- methods and request targets -------------------------------------------------------------

#[tokio::test]
async fn a_lowercase_method_is_not_its_uppercase_namesake() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // Methods are case-sensitive (RFC 9110 9.1): `post` is not POST. An unknown method
    // is a 501 (SHOULD) or a 405 from the route; never the chat.
    let mut raw = post("/v1/chat/completions", "Connection: close\r\n", &body);
    raw[..4].copy_from_slice(b"post");
    let outcome = served.send(&raw).await;
    let status = outcome.only().status;
    assert!([400, 405, 501].contains(&status), "{outcome:?}");
    let outcome = served
        .send(b"get /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await;
    let answer = outcome.only();
    assert!(
        !answer.is_health() && [400, 405, 501].contains(&answer.status),
        "{outcome:?}"
    );
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn absolute_form_targets_are_served_and_odd_forms_refused() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // RFC 9112 3.2.2: a server MUST accept the absolute form.
    for target in [
        "http://gw/v1/chat/completions",
        "http://gw:80/v1/chat/completions?x=1",
        "HTTP://GW/v1/chat/completions",
    ] {
        let outcome = served
            .send(&post(target, "Connection: close\r\n", &body))
            .await;
        let answer = outcome.only();
        assert_eq!(answer.status, 200, "{target}: {outcome:?}");
        assert!(
            answer.text().contains("chat.completion"),
            "{target}: {outcome:?}"
        );
    }
    let outcome = served
        .send(b"GET http://gw/healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await;
    assert!(outcome.only().is_health(), "{outcome:?}");
    // The asterisk form is OPTIONS's only (RFC 9112 3.2.4); the gateway has no
    // server-wide options: an answer, bounded, not an error of the server.
    let outcome = served
        .send(b"OPTIONS * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await;
    let status = outcome.only().status;
    assert!((200..500).contains(&status), "{outcome:?}");
    for raw in [
        &b"GET * HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n"[..],
        b"POST * HTTP/1.1\r\nHost: gw\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    ] {
        let outcome = served.send(raw).await;
        let status = outcome.only().status;
        assert!(
            [400, 404, 405].contains(&status),
            "{:?}: {outcome:?}",
            show(raw)
        );
    }
    // The authority form is CONNECT's only; the gateway is no proxy.
    for raw in [
        &b"CONNECT gw:443 HTTP/1.1\r\nHost: gw:443\r\n\r\n"[..],
        b"GET gw:80 HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    ] {
        let outcome = served.send(&cat(&[raw, SMUGGLED.as_bytes()])).await;
        let finals = outcome.finals();
        assert!(!finals.is_empty(), "{:?}: {outcome:?}", show(raw));
        assert!(
            (400..500).contains(&finals[0].status),
            "{:?}: {outcome:?}",
            show(raw)
        );
    }
    served.assert_serving().await;
}

#[tokio::test]
async fn a_hot_route_with_a_query_or_percent_encoding_is_routed_by_its_path() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // The query is not part of the path: still the hot route.
    for target in [
        "/v1/chat/completions?x=1",
        "/v1/chat/completions?",
        "/v1/chat/completions?a=%20b&c",
        "/api/chat?stream=true",
    ] {
        let outcome = served
            .send(&post(target, "Connection: close\r\n", &body))
            .await;
        assert_eq!(outcome.only().status, 200, "{target}: {outcome:?}");
    }
    // An encoded `?` or `/` is part of the path, not a delimiter: no such route.
    for target in [
        "/v1/chat/completions%3Fx=1",
        "/v1/chat%2Fcompletions",
        "/v1/chat/completions/",
        "/v1/chat/completions%00",
    ] {
        let outcome = served
            .send(&post(target, "Connection: close\r\n", &body))
            .await;
        assert_eq!(outcome.only().status, 404, "{target}: {outcome:?}");
    }
    // An encoded unreserved character (RFC 3986 6.2.2.2: equivalent to the character)
    // may be decoded and routed, or not matched; the router and the fast path agree.
    let fast = served
        .send(&post(
            "/v1/chat/%63ompletions",
            "Connection: close\r\n",
            &body,
        ))
        .await;
    let routed = served
        .send(&post_raw(
            "/v1/chat/%63ompletions",
            "Connection: close\r\nTransfer-Encoding: chunked\r\n",
            &chunked(&body),
        ))
        .await;
    assert_eq!(
        fast.only().status,
        routed.only().status,
        "{fast:?} {routed:?}"
    );
    assert!([200, 404].contains(&fast.only().status), "{fast:?}");
    served.assert_serving().await;
}

// ---- not HTTP/1.1 at all -------------------------------------------------------------------

#[tokio::test]
async fn other_versions_and_garbage_are_refused_or_closed_without_a_hang() {
    let served = Served::start(GatewayConfig {
        header_read_timeout: Duration::from_millis(500),
        ..config()
    })
    .await;
    for raw in [
        &b"GET /healthz HTTP/1.2\r\nHost: gw\r\n\r\n"[..],
        b"GET /healthz HTTP/2.0\r\nHost: gw\r\n\r\n",
        b"GET /healthz HTTP/3\r\nHost: gw\r\n\r\n",
        b"GET /healthz http/1.1\r\nHost: gw\r\n\r\n",
        b"GET /healthz HTTP/1.1 x\r\nHost: gw\r\n\r\n",
        b"GET  /healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"GET /healthz\r\nHost: gw\r\n\r\n",
        b"/healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
        b"G\x00T /healthz HTTP/1.1\r\nHost: gw\r\n\r\n",
    ] {
        let outcome = served.send(&cat(&[raw, SMUGGLED.as_bytes()])).await;
        assert_refused(&outcome, &[400, 505], &show(raw));
    }
    // A TLS ClientHello's start: refused or closed, never answered 2xx, no hang.
    let hello = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n";
    let outcome = served.send(hello).await;
    assert!(outcome.closed(), "{outcome:?}");
    assert!(
        outcome.finals().iter().all(|a| a.status == 400),
        "{outcome:?}"
    );
    // Garbage with no line end: closed at the head deadline (500 ms).
    let mut stream = served.connect().await;
    stream.write_all(&[b'A'; 100]).await.unwrap();
    let (raw, end) = read_for(&mut stream, READ_BOUND).await;
    assert_ne!(end, End::Open, "{:?}", show(&raw));
    served.assert_serving().await;
}

// ---- framing the fast path does itself ------------------------------------------------------

#[tokio::test]
async fn a_get_with_a_body_is_framed_by_its_length() {
    let served = Served::start(config()).await;
    // A body on a GET has no meaning, but its length frames it (RFC 9112 6.3): a server
    // that ignored it would read the body as the next request.
    let get = |path: &str, body: &[u8]| -> Vec<u8> {
        let mut raw = format!(
            "GET {path} HTTP/1.1\r\nHost: gw\r\n{}Content-Length: {}\r\n\r\n",
            auth(),
            body.len()
        )
        .into_bytes();
        raw.extend_from_slice(body);
        raw
    };
    let version = b"GET /api/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    // Small (the fast path reads it whole) and large (hyper's: past the fast path's
    // buffer); a route that reads no body either way.
    for n in [1, 10, 1000] {
        let body = SMUGGLED.repeat(n).into_bytes();
        let raw = cat(&[&get("/api/version", &body), version]);
        let outcome = served.send(&raw).await;
        let finals = outcome.finals();
        assert!(
            finals.iter().all(|a| !a.is_health()),
            "a GET body of {} bytes was served as a request: {outcome:?}",
            body.len()
        );
        assert!(
            finals.iter().all(|a| a.status == 200),
            "{} bytes: {outcome:?}",
            body.len()
        );
        // The second request is answered, or the connection closed after the first
        // (hyper does not read a large body nobody reads: it closes instead).
        assert!(
            (1..=2).contains(&finals.len()),
            "{} bytes: {outcome:?}",
            body.len()
        );
        assert!(outcome.closed(), "{} bytes: {outcome:?}", body.len());
    }
    served.assert_serving().await;
}

#[tokio::test]
async fn a_post_without_a_length_has_no_body() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // RFC 9112 6.3: a request with neither Content-Length nor Transfer-Encoding has a
    // body of length zero (a server may insist on a length with 411). The bytes after the
    // head are then the next request: here not one, so a 400 for it and the connection
    // closed. The chat body is never sent upstream.
    let raw = cat(&[
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}\r\n",
            auth()
        )
        .as_bytes(),
        &body,
        b"\r\n\r\n",
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert!(!finals.is_empty(), "{outcome:?}");
    assert!(
        [400, 411].contains(&finals[0].status),
        "the first answer: {outcome:?}"
    );
    assert!(finals.iter().all(|a| a.status >= 400), "{outcome:?}");
    assert!(outcome.closed(), "{outcome:?}");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn a_framing_error_after_served_requests_closes_without_serving_what_follows() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // The fast path serves the first request and hands the connection to hyper at the
    // second: the refusal, the close and no smuggling hold there as on a new connection.
    let bad: &[&[u8]] = &[
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloX",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: +5\r\n\r\nhello",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nX: a\r\n b\r\nContent-Length: 5\r\n\r\nhello",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: gzip\r\n\r\nhello",
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length : 5\r\n\r\nhello",
    ];
    for second in bad {
        let raw = cat(&[
            &post("/v1/chat/completions", "", &body),
            second,
            SMUGGLED.as_bytes(),
        ]);
        let outcome = served.send(&raw).await;
        let finals = outcome.finals();
        let what = show(second);
        assert_eq!(finals.len(), 2, "{what}: {outcome:?}");
        assert_eq!(finals[0].status, 200, "{what}: {outcome:?}");
        assert_eq!(finals[1].status, 400, "{what}: {outcome:?}");
        assert!(outcome.closed(), "{what}: {outcome:?}");
    }
    assert_eq!(served.upstream.chat_request_count(), bad.len());
    served.assert_serving().await;
}

#[tokio::test]
async fn thousands_of_pipelined_requests_across_the_read_buffer_are_answered_in_order() {
    let served = Served::start(config()).await;
    // Far more than the fast path buffers at once (64 KiB): requests straddle every read
    // boundary. Each asks for its own path so the answers can be matched in order.
    let count = 5000;
    let mut raw = Vec::new();
    for i in 0..count {
        let close = if i == count - 1 {
            "Connection: close\r\n"
        } else {
            ""
        };
        raw.extend_from_slice(
            format!("GET /healthz?n={i} HTTP/1.1\r\nHost: gw\r\nX-Pad: {i:0>9}\r\n{close}\r\n")
                .as_bytes(),
        );
    }
    assert!(raw.len() > 3 * 64 * 1024);
    let stream = served.connect().await;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&raw).await;
        write
    });
    let mut bytes = Vec::new();
    let mut buf = [0u8; 64 * 1024];
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no end within 20 s after {} bytes", bytes.len()),
        }
    }
    let _write = guarded(writer).await.unwrap();
    let (answers, rest) = parse_all(&bytes, true);
    assert!(rest.is_empty(), "{:?}", show(&rest));
    assert_eq!(answers.len(), count);
    assert!(answers.iter().all(Answer::is_health));
    served.assert_serving().await;
}

#[tokio::test]
async fn head_is_answered_without_a_body_and_the_next_request_framed_right() {
    let served = Served::start(config()).await;
    // HEAD is hyper's: an answer with the GET's length but no body (RFC 9110 9.3.2).
    let mut stream = served.connect().await;
    stream
        .write_all(
            b"HEAD /healthz HTTP/1.1\r\nHost: gw\r\n\r\nGET /api/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        )
        .await
        .unwrap();
    let (raw, end) = read_for(&mut stream, READ_BOUND).await;
    assert_ne!(end, End::Open, "{:?}", show(&raw));
    let text = show(&raw);
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 "), "{text:?}");
    // The next answer starts right after the HEAD answer's head.
    assert!(rest.starts_with("HTTP/1.1 200 "), "{text:?}");
    assert!(rest.contains("version"), "{text:?}");
}

/// Writes `first` and then `trailing` from another task (ignoring write errors: the
/// gateway may close meanwhile), reading everything that comes back.
async fn send_with_trailing(served: &Served, first: Vec<u8>, trailing: Vec<u8>) -> Outcome {
    let stream = served.connect().await;
    let (mut read, mut write) = stream.into_split();
    let writer = tokio::spawn(async move {
        let _ = write.write_all(&first).await;
        let _ = write.write_all(&trailing).await;
        write
    });
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let deadline = Instant::now() + READ_BOUND;
    let end = loop {
        match tokio::time::timeout_at(deadline, read.read(&mut buf)).await {
            Err(_) => break End::Open,
            Ok(Ok(0)) => break End::Closed,
            Ok(Ok(n)) => raw.extend_from_slice(&buf[..n]),
            Ok(Err(_)) => break End::Reset,
        }
    };
    writer.abort();
    let (answers, rest) = parse_all(&raw, end != End::Open);
    Outcome { answers, rest, end }
}

#[tokio::test]
async fn an_answer_before_a_close_reaches_a_client_still_sending() {
    let served = Served::start(config()).await;
    // The gateway closes after these answers while the client is still sending (1 MB
    // more). RFC 9112 9.6: closing with input unread resets the connection, which can
    // destroy the answer before the client reads it; the answer must arrive whole.
    let trailing = SMUGGLED.repeat(1024 * 1024 / SMUGGLED.len()).into_bytes();
    let cases: Vec<(&str, Vec<u8>, u16)> = vec![
        (
            "Connection: close (fast path)",
            b"GET /api/version HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n".to_vec(),
            200,
        ),
        (
            "conflicting lengths (hyper's 400)",
            post_raw(
                "/v1/chat/completions",
                "Content-Length: 5\r\nContent-Length: 6\r\n",
                b"",
            ),
            400,
        ),
        (
            "length and a bad transfer coding (hyper's 400)",
            post_raw("/v1/chat/completions", "Transfer-Encoding: gzip\r\n", b""),
            400,
        ),
        (
            "too many headers (hyper's 431)",
            post(
                "/v1/chat/completions",
                &(0..300)
                    .map(|i| format!("X-H{i}: v\r\n"))
                    .collect::<String>(),
                b"",
            ),
            431,
        ),
    ];
    for (what, first, status) in cases {
        let mut lost = 0;
        // A reset is a race: several tries make a lost answer show.
        for _ in 0..5 {
            let outcome = send_with_trailing(&served, first.clone(), trailing.clone()).await;
            assert!(
                outcome.finals().iter().all(|a| !a.is_health()),
                "{what}: {outcome:?}"
            );
            assert_ne!(outcome.end, End::Open, "{what}: {outcome:?}");
            match outcome.finals().first() {
                Some(answer) => assert_eq!(answer.status, status, "{what}: {outcome:?}"),
                None => lost += 1,
            }
        }
        assert_eq!(lost, 0, "{what}: the answer was lost {lost} times in 5");
    }
    served.assert_serving().await;
}

// ---- more Expect, streaming, transfer codings -------------------------------------------------

#[tokio::test]
async fn expect_100_continue_in_http_1_0_is_ignored() {
    let served = Served::start(config()).await;
    // RFC 9110 10.1.1: an HTTP/1.0 request's 100-continue expectation MUST be ignored;
    // 15.2: no 1xx answer to an HTTP/1.0 client.
    let body = chat_body();
    let mut raw = format!(
        "POST /v1/chat/completions HTTP/1.0\r\nHost: gw\r\n{}Expect: 100-continue\r\nContent-Length: {}\r\n\r\n",
        auth(),
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let outcome = served.send(&raw).await;
    assert!(
        outcome.answers.iter().all(|a| a.status >= 200),
        "{outcome:?}"
    );
    assert_eq!(outcome.only().status, 200, "{outcome:?}");
}

#[tokio::test]
async fn expect_100_continue_without_a_body_ever_is_408_not_a_hang() {
    let served = Served::start(config()).await;
    let mut stream = served.connect().await;
    let head = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\n{}Expect: 100-continue\r\nContent-Length: 100\r\n\r\n",
        auth()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // `100 Continue`, then nothing: the body read timeout (1 s) ends it.
    let outcome = until_closed(&mut stream).await;
    assert_eq!(
        outcome.answers.first().map(|a| a.status),
        Some(100),
        "{outcome:?}"
    );
    assert_refused(&outcome, &[408], "a body never sent after 100 Continue");
    assert_eq!(served.upstream.chat_request_count(), 0);
    served.assert_serving().await;
}

#[tokio::test]
async fn expect_after_a_fast_path_request_on_the_same_connection() {
    let served = Served::start(config()).await;
    let body = chat_body();
    // The fast path answers the first request and hands the connection to hyper at the
    // `Expect`: the interim answer still comes before the body is sent.
    let second = post(
        "/api/chat",
        "Expect: 100-continue\r\nConnection: close\r\n",
        &body,
    );
    let head_len = find(&second, b"\r\n\r\n").unwrap() + 4;
    let mut stream = served.connect().await;
    stream
        .write_all(&cat(&[
            &post("/v1/chat/completions", "", &body),
            &second[..head_len],
        ]))
        .await
        .unwrap();
    // The first answer, then the interim one (hyper's, at the second request's head).
    let answers = read_until(&mut stream, |answers| answers.len() >= 2).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [200, 100], "{answers:?}");
    stream.write_all(&second[head_len..]).await.unwrap();
    let outcome = until_closed(&mut stream).await;
    let answer = outcome.only();
    assert_eq!(answer.status, 200, "{outcome:?}");
    assert!(answer.text().contains("\"done\":true"), "{outcome:?}");
}

#[tokio::test]
async fn a_request_pipelined_behind_a_streamed_answer_is_answered_after_it() {
    let served = Served::start(config()).await;
    let streamed = serde_json::to_vec(&json!({
        "model": "chat",
        "stream": true,
        "messages": [{ "role": "user", "content": "hi" }],
    }))
    .unwrap();
    let raw = cat(&[
        &post("/v1/chat/completions", "", &streamed),
        b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
    ]);
    let outcome = served.send(&raw).await;
    let finals = outcome.finals();
    assert_eq!(finals.len(), 2, "{outcome:?}");
    assert_eq!(finals[0].status, 200, "{outcome:?}");
    assert!(
        finals[0].text().ends_with("data: [DONE]\n\n"),
        "{outcome:?}"
    );
    assert!(finals[1].is_health(), "{outcome:?}");
    assert!(outcome.rest.is_empty(), "{outcome:?}");
}

#[tokio::test]
async fn unknown_codings_before_chunked_and_fragments_keep_the_framing() {
    let served = Served::start(config()).await;
    let body = chat_body();
    let health = b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n";
    // `gzip, chunked`: the length is the chunks' (RFC 9112 6.3), so the next request is
    // found where they end. A coding the server does not understand SHOULD be a 501
    // (6.1); hyper instead hands the decoded chunks on as the content (the chat body here
    // is plain JSON, so it is served). Framing is never in doubt either way.
    for headers in [
        "Transfer-Encoding: gzip, chunked\r\n",
        "Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n",
    ] {
        let raw = cat(&[
            &post_raw("/v1/chat/completions", headers, &chunked(&body)),
            health,
        ]);
        let outcome = served.send(&raw).await;
        let finals = outcome.finals();
        assert!(
            [200, 400, 501].contains(&finals[0].status),
            "{headers:?}: {outcome:?}"
        );
        match finals.len() {
            2 => assert!(finals[1].is_health(), "{headers:?}: {outcome:?}"),
            n => assert_eq!(n, 1, "{headers:?}: {outcome:?}"),
        }
        assert!(outcome.closed(), "{headers:?}: {outcome:?}");
    }
    // A fragment is no part of a request target (RFC 9112 3.2.1). A 400 is what a
    // recipient SHOULD send for an invalid request line; the `http` crate's URI (hyper's
    // and the fast path's) drops the fragment instead, and both paths then route the
    // same path alike.
    let fast = served
        .send(&post(
            "/v1/chat/completions#frag",
            "Connection: close\r\n",
            &body,
        ))
        .await;
    let routed = served
        .send(&post_raw(
            "/v1/chat/completions#frag",
            "Connection: close\r\nTransfer-Encoding: chunked\r\n",
            &chunked(&body),
        ))
        .await;
    assert_eq!(
        fast.only().status,
        routed.only().status,
        "{fast:?} {routed:?}"
    );
    assert!([200, 400].contains(&fast.only().status), "{fast:?}");
    served.assert_serving().await;
}

// ---- protocol switches -------------------------------------------------------------------------

/// How an HTTP/2 connection with prior knowledge starts (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// An empty client SETTINGS frame, what follows the preface.
const H2_SETTINGS: &[u8] = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00";

/// Whether `raw`, read after an HTTP/1.1 exchange, is nothing, or HTTP/1.1's refusal
/// of a request with major version 2 (a 400 or 505) — not an HTTP/2 server preface.
fn no_http2(raw: &[u8]) -> bool {
    raw.is_empty() || raw.starts_with(b"HTTP/1.1 400 ") || raw.starts_with(b"HTTP/1.1 505 ")
}

// RFC 9113 3.3/3.4: the HTTP/2 preface is how a connection *starts*; after an HTTP/1.1
// request it is one more HTTP/1.1 request line (version 2.0), which hyper's HTTP/1 closes
// the connection on. The fast path hands a request it does not serve to hyper's auto
// builder, which sniffs the bytes it is given: it switched a connection that had already
// carried HTTP/1.1 to HTTP/2, and served HTTP/2 requests on it.
#[tokio::test]
async fn an_http2_preface_after_an_http1_request_does_not_switch_protocols() {
    let served = Served::start(config()).await;
    // An HTTP/2 client after one HTTP/1.1 exchange: it must get no HTTP/2 answer.
    let mut stream = served.connect().await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .unwrap();
    assert!(read_finals(&mut stream, 1).await[0].is_health());
    let answered = async {
        let (mut client, connection) = h2::client::handshake(stream).await.ok()?;
        let task = tokio::spawn(connection);
        let request = http::Request::get(format!("http://{}/healthz", served.addr))
            .body(())
            .unwrap();
        let (response, _) = client.send_request(request, true).ok()?;
        let response = response.await;
        task.abort();
        response.ok()
    };
    let answered = guarded(answered).await;
    assert!(
        answered.is_none(),
        "an HTTP/2 request was served on an HTTP/1.1 connection: {answered:?}"
    );
    // The same bytes raw: after an answered request, pipelined with it, in pieces.
    let first = b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n";
    let preface = cat(&[H2_PREFACE, H2_SETTINGS]);
    for (what, split) in [
        ("in one write", None),
        ("after the answer", Some(0)),
        ("cut at 12", Some(12)),
    ] {
        let mut stream = served.connect().await;
        match split {
            None => stream.write_all(&cat(&[first, &preface])).await.unwrap(),
            Some(cut) => {
                stream.write_all(first).await.unwrap();
                assert!(read_finals(&mut stream, 1).await[0].is_health());
                stream.write_all(&preface[..cut.max(1)]).await.unwrap();
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = stream.write_all(&preface[cut.max(1)..]).await;
            }
        }
        let (raw, end) = read_for(&mut stream, READ_BOUND).await;
        let raw = match split {
            // The health answer comes first.
            None => {
                let (answers, rest) = parse_all(&raw, false);
                assert!(
                    answers.first().is_some_and(Answer::is_health),
                    "{what}: {:?}",
                    show(&raw)
                );
                rest
            }
            Some(_) => raw,
        };
        assert!(no_http2(&raw), "{what}: HTTP/2 after HTTP/1.1: {raw:?}");
        assert_ne!(end, End::Open, "{what}: {raw:?}");
    }
    // At the start of a connection the preface is HTTP/2 with prior knowledge, served.
    let tcp = served.connect().await;
    let (mut client, connection) = guarded(h2::client::handshake(tcp)).await.unwrap();
    let task = tokio::spawn(connection);
    let request = http::Request::get(format!("http://{}/healthz", served.addr))
        .body(())
        .unwrap();
    let (response, _) = client.send_request(request, true).unwrap();
    assert_eq!(guarded(response).await.unwrap().status(), 200);
    task.abort();
    served.assert_serving().await;
}

// ---- Host and hyper's own 400 ------------------------------------------------------------------

/// RFC 9112 3.2: "A server MUST respond with a 400 (Bad Request) status code to any
/// HTTP/1.1 request message that lacks a Host header field and to any request message
/// that contains more than one Host header field line or a Host header field with an
/// invalid field value." The fast path hands such a request to hyper, whose service
/// refuses it (`host.rs`): one answer on both paths.
#[tokio::test]
async fn a_missing_duplicate_or_invalid_host_is_400() {
    let served = Served::start(config()).await;
    for raw in [
        &b"GET /api/version HTTP/1.1\r\nConnection: close\r\n\r\n"[..],
        b"GET /api/version HTTP/1.1\r\nHost: gw\r\nHost: other\r\nConnection: close\r\n\r\n",
        b"GET /api/version HTTP/1.1\r\nHost: a b\r\nConnection: close\r\n\r\n",
        b"GET /api/version HTTP/1.1\r\nHost: gw/x\r\nConnection: close\r\n\r\n",
    ] {
        let outcome = served.send(raw).await;
        let answer = outcome.only();
        assert_eq!(answer.status, 400, "{:?}: {outcome:?}", show(raw));
        assert!(
            String::from_utf8_lossy(&answer.body).contains("Host header"),
            "{:?}: {outcome:?}",
            show(raw)
        );
    }
    // A Host names where the request is going: refused, the connection closes even when
    // the client asked to keep it.
    let outcome = served
        .send(b"GET /api/version HTTP/1.1\r\nHost: a b\r\n\r\nGET /api/version HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await;
    assert_eq!(outcome.only().status, 400, "{outcome:?}");
    // HTTP/1.0 may leave Host out (RFC 9112 3.2 binds HTTP/1.1 only).
    let outcome = served.send(b"GET /api/version HTTP/1.0\r\n\r\n").await;
    assert_eq!(outcome.only().status, 200, "{outcome:?}");
    served.assert_serving().await;
}

/// hyper answers a head it cannot parse or frame (conflicting lengths, a bad
/// transfer coding, obs-fold, control bytes) with `400` and an empty body; the gateway
/// rewrites it into the API's error shape, as it does hyper's 414 and 431 (`refusal.rs`).
#[tokio::test]
async fn a_framing_refusal_names_what_was_wrong() {
    let served = Served::start(config()).await;
    let raw = cat(&[
        &post_raw(
            "/v1/chat/completions",
            "Content-Length: 5\r\nContent-Length: 6\r\n",
            b"helloX",
        ),
        SMUGGLED.as_bytes(),
    ]);
    let outcome = served.send(&raw).await;
    assert_refused(&outcome, &[400], "conflicting lengths");
    let answer = outcome.only();
    assert_eq!(
        answer.header("content-type"),
        Some("application/json"),
        "{outcome:?}"
    );
    assert!(!answer.body.is_empty(), "{outcome:?}");
}
