//! A thin HTTP/1.1 client for plain `http://` upstreams reached without a proxy: its own
//! bounded pool of connections, each one read and written by the task of the request that
//! uses it, the wire handled by `switchyard_stream::h1` (heads by `httparse`, the body's framing
//! decoded in place). The chunks of a streamed answer go from the socket to the decoder
//! without a hand-off to another task (reqwest's connection task and body channel cost a
//! task wake-up per chunk) and without a piece of body per chunk (hyper's client hands each
//! chunk through its body channel). `https://` upstreams and upstreams behind a proxy keep
//! the reqwest client (rustls, private CA, proxies).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::Stream;
use http::Response;
use http::header::{ACCEPT, CONTENT_TYPE, HOST, HeaderValue, USER_AGENT};
use switchyard_core::{ErrorKind, ProviderError, TimeoutPhase};
use tokio::io::AsyncWriteExt as _;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::client::{ClientBuildError, ClientConfig, default_headers};
use switchyard_stream::h1::{self, BodyDecoder, WireError};

/// Idle connections kept per upstream (as the reqwest client's `pool_max_idle_per_host`).
const MAX_IDLE: usize = 64;

/// Headers about a message's framing or its connection, which only the client writes.
const FRAMING_HEADERS: [&str; 7] = [
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "upgrade",
    "te",
    "trailer",
];

/// A pooled connection idle for less than this is checked by the readiness the runtime
/// last saw (no system call; under load a connection is reused within milliseconds). A
/// server closes a keep-alive connection after seconds of idleness (uvicorn 5 s, nginx
/// 75 s), and the runtime polls the sockets' events between tasks, so its close has long
/// been seen; a longer-idle connection is probed with a read.
const TRUST_READINESS_WITHIN: Duration = Duration::from_secs(1);

/// How much room a read asks for in the connection's buffer.
const READ_ROOM: usize = 8 * 1024;

/// One connection to the upstream and the bytes read from it and not used yet.
#[derive(Debug)]
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
    /// Whether it has carried an answer before (a failure before the first byte of an
    /// answer on a reused connection is the server having closed it while idle).
    reused: bool,
}

/// Why a read of the answer stopped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DirectError {
    /// The socket failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The answer is not valid HTTP/1.1.
    #[error("{0}")]
    Wire(#[from] WireError),
    /// The connection closed before an answer's head was complete.
    #[error("the connection closed before an answer came")]
    Closed,
}

impl Conn {
    /// Reads more bytes into the buffer: `Ok(0)` at the end of the stream.
    ///
    /// Through the stream's `AsyncRead`, which, when a read returns less than it asked for,
    /// notes that the socket is drained: the next fill waits for the runtime's next
    /// readiness event instead of reading again for `WouldBlock`, and a pooled connection's
    /// check ([`Conn::idle_and_open`]) needs no read.
    fn poll_fill(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<usize>> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 4 {
            self.buf.reserve(READ_ROOM);
        }
        tokio_util::io::poll_read_buf(Pin::new(&mut self.stream), cx, &mut self.buf)
    }

    /// Reads until a whole answer head is in.
    async fn read_head(&mut self) -> Result<h1::Head, DirectError> {
        loop {
            if let Some(head) = h1::parse_head(&mut self.buf)? {
                return Ok(head);
            }
            match std::future::poll_fn(|cx| self.poll_fill(cx)).await {
                Ok(0) => return Err(DirectError::Closed),
                Ok(_) => {}
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Whether a pooled connection can take a request: the server has not closed it and
    /// sent nothing since its last answer (a stale byte would be read as the next answer).
    ///
    /// A connection idle for less than [`TRUST_READINESS_WITHIN`] on which the runtime has
    /// seen nothing arrive since its answer was read is taken as it is: no system call. One
    /// idle for longer, or with something arrived, is probed with a non-blocking read.
    fn idle_and_open(&self, idle_for: Duration) -> bool {
        if idle_for < TRUST_READINESS_WITHIN {
            let mut cx = Context::from_waker(std::task::Waker::noop());
            if self.stream.poll_read_ready(&mut cx).is_pending() {
                return true;
            }
        }
        let mut probe = [0u8; 1];
        matches!(
            self.stream.try_read(&mut probe),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock
        )
    }
}

/// A connection the peer closed or reset.
fn is_reset(err: &std::io::Error) -> bool {
    use std::io::ErrorKind as K;
    matches!(
        err.kind(),
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe | K::UnexpectedEof
    )
}

#[derive(Debug)]
struct Pool {
    idle: Mutex<Vec<(Conn, Instant)>>,
    idle_timeout: Duration,
    connect_timeout: Duration,
    /// `host:port` to connect to.
    addr: String,
    /// The URL requests go to, for error messages.
    url: String,
    /// Every request's head up to its length: `POST <path>`, the configured headers,
    /// bearer token, user agent, host.
    head: Vec<u8>,
}

/// A pooled HTTP/1.1 client for one plain-HTTP URL (an upstream's chat endpoint), sending
/// JSON `POST`s. Cheap to clone.
#[derive(Clone)]
pub struct DirectClient {
    pool: Arc<Pool>,
}

impl std::fmt::Debug for DirectClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectClient")
            .field("addr", &self.pool.addr)
            .finish_non_exhaustive()
    }
}

impl DirectClient {
    /// The direct client for `url`, when it applies: an `http://` URL and no proxy
    /// configured (`None` otherwise: use the reqwest client of [`crate::build_client`]).
    pub fn for_url(config: &ClientConfig, url: &str) -> Result<Option<Self>, ClientBuildError> {
        if config.proxy.is_some() {
            return Ok(None);
        }
        let Ok(parsed) = url::Url::parse(url) else {
            return Ok(None);
        };
        let (Some(host), Some(port)) = (parsed.host_str(), parsed.port_or_known_default()) else {
            return Ok(None);
        };
        if parsed.scheme() != "http" {
            return Ok(None);
        }
        let authority = match parsed.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        // Path and query; a fragment is never sent.
        let target = &parsed[url::Position::BeforePath..url::Position::AfterQuery];
        if http::Uri::try_from(target).is_err() {
            return Ok(None);
        }
        let mut headers = default_headers(config)?;
        // The request's framing is the client's own (`content-length`); configured headers
        // cannot change it or the connection's handling.
        for name in FRAMING_HEADERS {
            headers.remove(name);
        }
        let invalid = |e: http::header::InvalidHeaderValue| ClientBuildError::InvalidHeader {
            name: "host".into(),
            reason: e.to_string(),
        };
        headers.insert(HOST, HeaderValue::from_str(&authority).map_err(invalid)?);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("switchyard/", env!("CARGO_PKG_VERSION"))),
        );
        if !headers.contains_key(ACCEPT) {
            headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
        }
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        // `[::1]` as written in a URL is `::1` to connect to.
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addr = if bare.contains(':') {
            format!("[{bare}]:{port}")
        } else {
            format!("{bare}:{port}")
        };
        Ok(Some(DirectClient {
            pool: Arc::new(Pool {
                idle: Mutex::new(Vec::new()),
                idle_timeout: config.pool_idle_timeout.unwrap_or(Duration::from_secs(90)),
                connect_timeout: config.timeouts.connect,
                addr,
                url: url.to_owned(),
                head: h1::request_head(target, &headers),
            }),
        }))
    }

    /// The URL it posts to.
    pub fn url(&self) -> &str {
        &self.pool.url
    }

    /// `POST` the JSON `body`: the answer's head, and its body as a stream that reads the
    /// connection. A pooled connection is checked before use (closed, or holding bytes
    /// nobody asked for: dropped); one the server closes between the check and the write
    /// (the write fails) is replaced by a new one, once. After a written request nothing is
    /// sent again: the server may have taken it. An answer the server sent before it
    /// stopped reading (a 413) is still read.
    pub(crate) async fn post(
        &self,
        body: Bytes,
    ) -> Result<(Response<()>, DirectBody), ProviderError> {
        let target = self.pool.url.as_str();
        let mut request = Vec::new();
        h1::write_request(&self.pool.head, &body, &mut request);
        let mut conn = match self.checkout() {
            Some(conn) => conn,
            None => self.connect(target).await?,
        };
        let head = loop {
            match conn.stream.write_all(&request).await {
                Ok(()) => match conn.read_head().await {
                    Ok(head) => break head,
                    Err(e) => return Err(answer_error(&e, target)),
                },
                Err(write) => {
                    // The server may have answered (413, 400) before it stopped reading.
                    if let Ok(head) = conn.read_head().await {
                        break h1::Head {
                            keep_alive: false,
                            ..head
                        };
                    }
                    // A pooled connection the server closed between the check and the
                    // write: nothing of the request was taken; once more on a new one.
                    if conn.reused && is_reset(&write) {
                        conn = self.connect(target).await?;
                        continue;
                    }
                    return Err(answer_error(&write.into(), target));
                }
            }
        };
        let mut response = Response::new(());
        *response.status_mut() = head.status;
        *response.headers_mut() = head.headers;
        let body = DirectBody {
            decoder: BodyDecoder::new(head.framing),
            keep_alive: head.keep_alive,
            conn: Some(conn),
            pool: Arc::clone(&self.pool),
        };
        Ok((response, body))
    }

    /// The most recently used idle connection that is not too old and still open.
    fn checkout(&self) -> Option<Conn> {
        let mut idle = self.pool.idle.lock().ok()?;
        while let Some((conn, since)) = idle.pop() {
            let idle_for = since.elapsed();
            if idle_for < self.pool.idle_timeout && conn.idle_and_open(idle_for) {
                return Some(conn);
            }
        }
        None
    }

    async fn connect(&self, target: &str) -> Result<Conn, ProviderError> {
        let connecting = TcpStream::connect(self.pool.addr.as_str());
        let stream = match tokio::time::timeout(self.pool.connect_timeout, connecting).await {
            Err(_elapsed) => {
                return Err(ProviderError::new(
                    ErrorKind::Timeout(TimeoutPhase::Connect),
                    format!(
                        "{target}: no connection within {} ms",
                        self.pool.connect_timeout.as_millis()
                    ),
                ));
            }
            Ok(Err(e)) => return Err(connect_error(&e, target)),
            Ok(Ok(stream)) => stream,
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY on an upstream connection");
        }
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_ROOM),
            reused: false,
        })
    }
}

/// A refused, unresolvable or failed connection attempt, classified as reqwest's are.
fn connect_error(err: &std::io::Error, target: &str) -> ProviderError {
    let text = err.to_string();
    let lower = text.to_ascii_lowercase();
    let kind = if err.kind() == std::io::ErrorKind::ConnectionRefused {
        ErrorKind::ConnectRefused
    } else if lower.contains("failed to lookup address")
        || lower.contains("name or service not known")
        || lower.contains("no address associated")
        || lower.contains("dns error")
    {
        ErrorKind::Dns
    } else {
        ErrorKind::Connect
    };
    ProviderError::new(kind, format!("{target}: error connecting: {text}"))
}

/// A failure after the connection was made and before the answer's head: the socket
/// (`error sending request`) or an answer that is not HTTP/1.1 (`bad answer`).
fn answer_error(err: &DirectError, target: &str) -> ProviderError {
    let what = match err {
        DirectError::Wire(_) => "bad answer",
        DirectError::Io(_) | DirectError::Closed => "error sending request",
    };
    ProviderError::new(ErrorKind::Upstream, format!("{target}: {what}: {err}"))
}

/// A direct body that broke off: `stream_ended_early`.
pub(crate) fn body_error(err: DirectError, target: &str) -> ProviderError {
    ProviderError::ended_early(format!("{target}: error decoding response body: {err}"))
        .with_source(err)
}

/// The body of an answer from [`DirectClient::post`]: polling it reads the connection, and
/// a connection whose answer was read to the end goes back to the pool. Dropping it
/// earlier closes the connection (which cancels the upstream request).
#[derive(Debug)]
pub(crate) struct DirectBody {
    decoder: BodyDecoder,
    /// Whether the connection can take another request once the body has ended.
    keep_alive: bool,
    /// `None` once the body has ended or failed.
    conn: Option<Conn>,
    pool: Arc<Pool>,
}

impl DirectBody {
    /// The body has ended: the connection goes back to the pool when it can take another
    /// request (nothing unread after the answer).
    fn release(&mut self) {
        let Some(mut conn) = self.conn.take() else {
            return;
        };
        if !self.keep_alive || !conn.buf.is_empty() {
            return;
        }
        conn.reused = true;
        if let Ok(mut idle) = self.pool.idle.lock() {
            // The oldest come first: close those past the idle timeout.
            let timeout = self.pool.idle_timeout;
            let expired = idle
                .iter()
                .take_while(|(_, since)| since.elapsed() >= timeout);
            let expired = expired.count();
            idle.drain(..expired);
            if idle.len() < MAX_IDLE {
                idle.push((conn, Instant::now()));
            }
        }
    }
}

impl Stream for DirectBody {
    type Item = Result<Bytes, DirectError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        loop {
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            let data = match this.decoder.decode(&mut conn.buf) {
                Ok(n) => conn.buf.split_to(n),
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            };
            if this.decoder.is_done() {
                this.release();
            }
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(data.freeze())));
            }
            if this.conn.is_none() {
                return Poll::Ready(None);
            }
            let Some(conn) = this.conn.as_mut() else {
                return Poll::Ready(None);
            };
            match conn.poll_fill(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    this.conn = None;
                    if let Err(e) = this.decoder.end_of_input() {
                        return Poll::Ready(Some(Err(e.into())));
                    }
                    return Poll::Ready(None);
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e.into())));
                }
            }
        }
    }
}
