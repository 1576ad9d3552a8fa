//! The HTTP/1.1 fast path: a connection's simple requests are parsed, handed to the routes
//! and answered here, without hyper's connection machinery; everything else goes to hyper.
//!
//! A request is *simple* when it is `GET` or `POST` in HTTP/1.1 with an origin-form path,
//! at most [`MAX_HEADERS`] headers, no `transfer-encoding`, `expect` or `upgrade`, a
//! `connection` header of `close` or `keep-alive` only, exactly one valid `host`
//! ([`crate::host`]), at most one plain decimal `content-length`, and head and body
//! together fit in [`MAX_REQUEST`] bytes and arrive promptly. The first request that is not simple (or an HTTP/2 preface starting the
//! connection, or anything that does not parse) hands the connection to hyper for the rest
//! of its life (a preface after an HTTP/1.1 request closes it instead), with every byte
//! read so far replayed ([`Rewind`]): hyper then answers it exactly as it answers any
//! request (its 400, 413, 414, 431, `100 Continue`, chunked bodies, HTTP/1.0, upgrades,
//! HTTP/2), so this path only ever serves what it fully understands.
//!
//! Around a request it keeps what hyper kept: the connection is busy from the parsed head
//! until the answer's last byte ([`ConnState::begin`]); a client that closes its end while
//! its request is handled or streamed cancels the handler (and so the upstream request);
//! pipelined requests are answered in order; `connection: close` from either side closes
//! after the answer; a `date` header is added; a graceful shutdown closes the connection
//! when it is idle or after its current answer.
//!
//! Why: hyper's server dispatch cost about 13,000 instructions per plain request and axum's
//! routing a few thousand more (callgrind, `bench/instructions.sh`); a request served here
//! costs a fraction of that.

use std::future::poll_fn;
use std::io;
use std::net::SocketAddr;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use axum::body::{Body, Bytes};
use bytes::{Buf as _, BytesMut};
use http::header::{CONNECTION, CONTENT_LENGTH, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri};
use http_body::Body as _;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::sync::watch;

use crate::answer_head;
use crate::conn::ConnState;
use crate::host::HostCheck;
use crate::hot::Routes;
use crate::telemetry::{REQUEST_ID_ALIASES, REQUEST_ID_HEADER};

/// The most bytes of one request (head and body) this path buffers; a larger request goes
/// to hyper, which streams its body.
pub(crate) const MAX_REQUEST: usize = 64 * 1024;
/// The most headers of a simple request.
pub(crate) const MAX_HEADERS: usize = 64;
/// How long a body that did not arrive with its head is waited for before hyper takes
/// the connection over (and applies the body read timeout).
const BODY_GRACE: Duration = Duration::from_millis(200);
/// Answer bytes gathered before they are written even though more are ready.
const WRITE_AT: usize = 64 * 1024;

/// How one connection's fast path ended.
#[derive(Debug)]
pub(crate) enum Ended {
    /// The connection is done: closed by either side, or by a graceful shutdown.
    Closed,
    /// hyper serves the connection from here, starting with these bytes.
    Handoff(Bytes),
}

/// Where one header sits in the request's bytes.
#[derive(Debug, Clone)]
struct HeaderAt {
    name: Range<usize>,
    value: Range<usize>,
}

/// A simple request's head, as positions in the bytes it was parsed from.
#[derive(Debug)]
struct Head {
    method: Method,
    path: Range<usize>,
    /// Bytes of the head, the blank line included.
    head_len: usize,
    body_len: usize,
    /// The client asked to close after this answer.
    close: bool,
}

/// What the bytes buffered so far start with.
#[derive(Debug)]
enum Parsed {
    /// Not a whole head yet.
    Partial,
    /// A whole simple head (its body may still be arriving).
    Simple(Head),
    /// Not a simple request: hyper takes the connection.
    Handoff,
}

/// How an HTTP/2 connection with prior knowledge starts (RFC 9113 3.4).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `bytes` are the HTTP/2 preface, or its start (more bytes may complete it).
fn may_be_h2_preface(bytes: &[u8]) -> bool {
    let n = bytes.len().min(H2_PREFACE.len());
    bytes[..n] == H2_PREFACE[..n]
}

/// Offsets of `part` inside `whole` (`part` is a sub-slice of it, as httparse returns).
fn range_in(whole: &[u8], part: &[u8]) -> Range<usize> {
    let start = (part.as_ptr() as usize).saturating_sub(whole.as_ptr() as usize);
    start..start + part.len()
}

/// Whether a `connection` header value only says `close` or `keep-alive`, and whether it
/// says `close`. `None`: some other option (such as `upgrade`).
fn connection_options(value: &[u8]) -> Option<bool> {
    let mut close = false;
    for token in value.split(|b| *b == b',') {
        let token = token.trim_ascii();
        if token.eq_ignore_ascii_case(b"close") {
            close = true;
        } else if !token.eq_ignore_ascii_case(b"keep-alive") && !token.is_empty() {
            return None;
        }
    }
    Some(close)
}

/// A `content-length` value of digits only, within [`MAX_REQUEST`].
fn content_length(value: &[u8]) -> Option<usize> {
    if value.is_empty() || value.len() > 7 || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let n = value
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0'));
    (n <= MAX_REQUEST).then_some(n)
}

/// Parses the head at the start of `bytes`, filling `headers` with where each header is.
fn parse(bytes: &[u8], headers: &mut Vec<HeaderAt>) -> Parsed {
    let mut slots =
        [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut []);
    let head_len = match request.parse_with_uninit_headers(bytes, &mut slots) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return if bytes.len() >= MAX_REQUEST {
                Parsed::Handoff
            } else {
                Parsed::Partial
            };
        }
        // Too many headers, a bad token, HTTP/2's preface: hyper answers or serves it.
        Err(_) => return Parsed::Handoff,
    };
    let method = match request.method {
        Some("GET") => Method::GET,
        Some("POST") => Method::POST,
        _ => return Parsed::Handoff,
    };
    let (Some(1), Some(path)) = (request.version, request.path) else {
        return Parsed::Handoff;
    };
    if !path.starts_with('/') {
        return Parsed::Handoff;
    }
    let mut body_len = None;
    let mut close = false;
    let mut host = HostCheck::default();
    headers.clear();
    for header in request.headers.iter() {
        let name = header.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            if body_len.is_some() {
                return Parsed::Handoff;
            }
            match content_length(header.value) {
                Some(n) => body_len = Some(n),
                None => return Parsed::Handoff,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            match connection_options(header.value) {
                Some(asked) => close |= asked,
                None => return Parsed::Handoff,
            }
        } else if name.eq_ignore_ascii_case(b"host") {
            host.line(header.value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::Handoff;
        }
        headers.push(HeaderAt {
            name: range_in(bytes, name),
            value: range_in(bytes, header.value),
        });
    }
    // hyper's service refuses a missing, repeated or invalid Host (`crate::host`).
    if !host.fits() {
        return Parsed::Handoff;
    }
    let body_len = body_len.unwrap_or(0);
    if head_len + body_len > MAX_REQUEST {
        return Parsed::Handoff;
    }
    Parsed::Simple(Head {
        method,
        path: range_in(bytes, path.as_bytes()),
        head_len,
        body_len,
        close,
    })
}

/// The request of `head`, its bytes being `raw` (head and body). `None` when a part does
/// not make a valid `http` value (hyper then answers it).
fn build_request(raw: &Bytes, head: &Head, headers: &[HeaderAt]) -> Option<Request<Body>> {
    let uri = Uri::from_maybe_shared(raw.slice(head.path.clone())).ok()?;
    // One more for the request id the front layer adds when the client sent none.
    let mut map = HeaderMap::with_capacity(headers.len() + 1);
    for at in headers {
        let name = crate::header_names::header_name(raw.get(at.name.clone())?)?;
        let value = HeaderValue::from_maybe_shared(raw.slice(at.value.clone())).ok()?;
        map.append(name, value);
    }
    let body = if head.body_len == 0 {
        Body::empty()
    } else {
        Body::from(raw.slice(head.head_len..head.head_len + head.body_len))
    };
    let mut request = Request::new(body);
    *request.method_mut() = head.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = map;
    Some(request)
}

/// The `date` header's value, formatted once a second. The second comes from the coarse
/// wall clock (it may lag by a scheduler tick, as nginx's cached time does), read at a
/// sixth of a precise read's cost on every answer.
#[derive(Debug, Default)]
struct DateCache {
    second: u64,
    value: Option<HeaderValue>,
}

impl DateCache {
    fn now(&mut self) -> HeaderValue {
        let second = switchyard_router::coarse_unix_secs();
        match &self.value {
            Some(value) if self.second == second => value.clone(),
            _ => {
                let now = SystemTime::UNIX_EPOCH + Duration::from_secs(second);
                let value = HeaderValue::from_str(&httpdate::fmt_http_date(now))
                    .unwrap_or_else(|_| HeaderValue::from_static("Thu, 01 Jan 1970 00:00:00 GMT"));
                self.second = second;
                self.value = Some(value.clone());
                value
            }
        }
    }
}

/// How an answer's body is framed on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// No body (204, 304).
    None,
    /// `content-length` bytes.
    Length(u64),
    Chunked,
}

/// Writes `response`'s status line and headers to `out`; returns the body's framing and
/// whether the connection closes after it.
fn encode_head(
    response: &Response<Body>,
    close_asked: bool,
    dates: &mut DateCache,
    out: &mut Vec<u8>,
) -> (Framing, bool) {
    let status = response.status();
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    let no_body = status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED;
    let mut length = None;
    let mut chunked = false;
    let mut close = close_asked;
    let mut has_date = false;
    // The request id in the map (written with the other headers), and which of its
    // aliases the map has.
    let mut map_id = None;
    let mut has_alias = [false; 2];
    for (name, value) in response.headers() {
        if *name == CONTENT_LENGTH {
            length = value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok());
        } else if *name == TRANSFER_ENCODING {
            chunked = true;
        } else if *name == CONNECTION {
            close |= connection_options(value.as_bytes()) != Some(false);
        } else if *name == DATE {
            has_date = true;
        } else if *name == REQUEST_ID_HEADER {
            map_id = Some(value);
        } else if let Some(i) = REQUEST_ID_ALIASES.iter().position(|a| a == name) {
            has_alias[i] = true;
        }
        if no_body && (*name == CONTENT_LENGTH || *name == TRANSFER_ENCODING) {
            continue;
        }
        if *name == CONTENT_LENGTH && length.is_none() {
            // A length that does not parse: the body is sent chunked instead.
            continue;
        }
        put_header(out, name.as_str().as_bytes(), value.as_bytes());
    }
    // The routing headers and the request id the answer carries outside its map; the id
    // that goes out again under each alias the map lacks (the same bytes, no copy).
    if let Some(head) = answer_head::of(response) {
        if let Some(routing) = &head.routing {
            routing.for_each(|name, value| {
                put_header(out, name.as_str().as_bytes(), value.as_bytes());
            });
        }
        if let (Some(id), None) = (&head.request_id, map_id) {
            put_header(out, REQUEST_ID_HEADER.as_str().as_bytes(), id.as_bytes());
        }
        if let Some(id) = map_id.or(head.request_id.as_ref()) {
            for (alias, present) in REQUEST_ID_ALIASES.iter().zip(has_alias) {
                if !present {
                    put_header(out, alias.as_str().as_bytes(), id.as_bytes());
                }
            }
        }
    }
    if !has_date {
        put_header(out, b"date", dates.now().as_bytes());
    }
    let framing = if no_body {
        Framing::None
    } else if let (Some(n), false) = (length, chunked) {
        Framing::Length(n)
    } else if let (Some(n), false) = (response.body().size_hint().exact(), chunked) {
        put_header(out, b"content-length", decimal(n, &mut [0; 20]));
        Framing::Length(n)
    } else {
        if !chunked {
            put_header(out, b"transfer-encoding", b"chunked");
        }
        Framing::Chunked
    };
    if close_asked {
        put_header(out, b"connection", b"close");
    }
    out.extend_from_slice(b"\r\n");
    (framing, close)
}

/// `n` in decimal, written into the end of `buf` (without `fmt` or an allocation).
fn decimal(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut at = buf.len();
    loop {
        at -= 1;
        buf[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[at..];
        }
    }
}

fn put_header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// Appends one data frame to `out` in `framing`.
fn put_data(out: &mut Vec<u8>, framing: Framing, data: &[u8]) {
    match framing {
        Framing::None => {}
        Framing::Length(_) => out.extend_from_slice(data),
        Framing::Chunked => {
            if data.is_empty() {
                return;
            }
            put_chunk_size(out, data.len());
            out.extend_from_slice(data);
            out.extend_from_slice(b"\r\n");
        }
    }
}

/// Appends a chunk's size line (hexadecimal).
fn put_chunk_size(out: &mut Vec<u8>, mut n: usize) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut digits = [0u8; 16];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = HEX[n & 15];
        n >>= 4;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[at..]);
    out.extend_from_slice(b"\r\n");
}

/// What polling a body for what is ready found.
enum BodyStep {
    /// Bytes were added to the output; the body has more.
    More,
    /// The body ended.
    Done,
    /// The body failed.
    Failed,
}

/// One connection's fast path.
pub(crate) struct FastConn<'a, T> {
    pub(crate) io: &'a mut T,
    pub(crate) routes: Routes,
    pub(crate) state: Arc<ConnState>,
    pub(crate) peer: SocketAddr,
    pub(crate) shutdown: watch::Receiver<bool>,
}

impl<T: AsyncRead + AsyncWrite + Unpin> FastConn<'_, T> {
    /// Serves simple requests until the connection closes or a request needs hyper.
    pub(crate) async fn serve(mut self) -> Ended {
        let mut buf = BytesMut::with_capacity(8 * 1024);
        let mut headers = Vec::with_capacity(16);
        let mut out = Vec::with_capacity(4 * 1024);
        let mut dates = DateCache::default();
        // The client shut its sending side while requests it pipelined were buffered:
        // those are still answered (as hyper did), then the connection closes.
        let mut read_closed = false;
        // A request was read here: the connection speaks HTTP/1.1 for its life.
        let mut spoke_http1 = false;
        loop {
            // A whole simple request in `buf`, or the reason there is none.
            let head = loop {
                if !buf.is_empty() {
                    match parse(&buf, &mut headers) {
                        Parsed::Simple(head) => break head,
                        // The HTTP/2 preface only starts a connection (RFC 9113 3.4); after
                        // an HTTP/1.1 request it is a request line of version 2.0, on which
                        // hyper's HTTP/1 closes the connection. Handed over, it would not be
                        // refused: hyper's auto builder sniffs the bytes it is given and
                        // would switch this HTTP/1.1 connection to HTTP/2. Closed here, as
                        // hyper's HTTP/1 does.
                        Parsed::Handoff if spoke_http1 && may_be_h2_preface(&buf) => {
                            return Ended::Closed;
                        }
                        Parsed::Handoff => return Ended::Handoff(buf.freeze()),
                        Parsed::Partial => {}
                    }
                }
                if buf.is_empty() && *self.shutdown.borrow() {
                    return Ended::Closed;
                }
                let read = tokio::select! {
                    read = read_some(self.io, &mut buf) => read,
                    _ = self.shutdown.changed(), if buf.is_empty() => return Ended::Closed,
                };
                if !matches!(read, Ok(n) if n > 0) {
                    return Ended::Closed;
                }
            };
            // Busy from the parsed head, as with hyper: the watchdog neither times it as a
            // head nor sheds the connection while its body arrives.
            let active = self.state.begin();
            spoke_http1 = true;
            let total = head.head_len + head.body_len;
            if buf.len() < total && !self.await_body(&mut buf, total).await {
                return if buf.is_empty() {
                    Ended::Closed
                } else {
                    Ended::Handoff(buf.freeze())
                };
            }
            let raw = buf.split_to(total).freeze();
            let Some(mut request) = build_request(&raw, &head, &headers) else {
                return Ended::Handoff(rejoin(raw, buf));
            };
            drop(raw);
            crate::detail::mark_peer(&mut request, self.peer);
            let handler = self.routes.call(request);
            let response = tokio::select! {
                biased;
                response = handler => match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
                () = client_gone(self.io, &mut buf, &mut read_closed) => return Ended::Closed,
            };
            out.clear();
            // A graceful shutdown closes the connection after this answer: it says so.
            let closing = head.close || *self.shutdown.borrow();
            let (framing, close) = encode_head(&response, closing, &mut dates, &mut out);
            let body = response.into_body();
            let complete = self
                .write_body(body, framing, &mut out, &mut buf, &mut read_closed)
                .await;
            drop(active);
            if !complete {
                return Ended::Closed;
            }
            // Bytes of the next request arrived with this one (pipelined): its head is
            // under way from now, and the watchdog times it (no read will say so).
            if !buf.is_empty() {
                self.state.head_started();
            }
            if close || *self.shutdown.borrow() {
                let _ = self.io.shutdown().await;
                return Ended::Closed;
            }
        }
    }

    /// Reads until `buf` holds `total` bytes, for up to [`BODY_GRACE`]. False: it did not
    /// (the client closed, or is slow: hyper then takes the connection).
    async fn await_body(&mut self, buf: &mut BytesMut, total: usize) -> bool {
        let io = &mut *self.io;
        let read_all = async {
            while buf.len() < total {
                match read_some(io, buf).await {
                    Ok(n) if n > 0 => {}
                    _ => {
                        buf.clear();
                        return false;
                    }
                }
            }
            true
        };
        tokio::time::timeout(BODY_GRACE, read_all)
            .await
            .unwrap_or(false)
    }

    /// Writes the head in `out` and then `body`, gathering every frame that is ready into
    /// one write. True when the whole answer went out as framed.
    async fn write_body(
        &mut self,
        mut body: Body,
        framing: Framing,
        out: &mut Vec<u8>,
        buf: &mut BytesMut,
        read_closed: &mut bool,
    ) -> bool {
        let mut sent: u64 = 0;
        if framing == Framing::None {
            return self.io.write_all(out).await.is_ok();
        }
        loop {
            let waiting = out.is_empty();
            let step = {
                let gather = poll_fn(|cx| gather(&mut body, cx, framing, out, &mut sent));
                if waiting {
                    tokio::select! {
                        biased;
                        step = gather => step,
                        () = client_gone(self.io, buf, read_closed) => return false,
                    }
                } else {
                    // Something (the head at least) is waiting: take only what is ready now.
                    match futures::FutureExt::now_or_never(gather) {
                        Some(step) => step,
                        None => BodyStep::More,
                    }
                }
            };
            if let BodyStep::Done = step
                && framing == Framing::Chunked
            {
                out.extend_from_slice(b"0\r\n\r\n");
            }
            if !out.is_empty() {
                if self.io.write_all(out).await.is_err() {
                    return false;
                }
                out.clear();
            }
            match step {
                BodyStep::More => {}
                BodyStep::Done => {
                    return match framing {
                        Framing::Length(n) => sent == n,
                        _ => true,
                    };
                }
                BodyStep::Failed => return false,
            }
        }
    }
}

/// Moves every frame of `body` that is ready into `out` (up to [`WRITE_AT`] bytes).
/// Pending only when nothing was added and nothing is ready.
fn gather(
    body: &mut Body,
    cx: &mut Context<'_>,
    framing: Framing,
    out: &mut Vec<u8>,
    sent: &mut u64,
) -> Poll<BodyStep> {
    let start = out.len();
    loop {
        if out.len() >= WRITE_AT {
            return Poll::Ready(BodyStep::More);
        }
        match Pin::new(&mut *body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    if let Framing::Length(n) = framing {
                        let room = usize::try_from(n.saturating_sub(*sent)).unwrap_or(usize::MAX);
                        if data.len() > room {
                            // More than the declared length: the connection cannot go on.
                            return Poll::Ready(BodyStep::Failed);
                        }
                    }
                    *sent += data.len() as u64;
                    put_data(out, framing, &data);
                }
            }
            Poll::Ready(None) => return Poll::Ready(BodyStep::Done),
            Poll::Ready(Some(Err(err))) => {
                tracing::debug!(error = %err, "answer body failed; closing the connection");
                return Poll::Ready(BodyStep::Failed);
            }
            Poll::Pending if out.len() > start => return Poll::Ready(BodyStep::More),
            Poll::Pending => return Poll::Pending,
        }
    }
}

/// Reads what the socket has into `buf`, up to [`MAX_REQUEST`] buffered.
async fn read_some<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut) -> io::Result<usize> {
    let room = MAX_REQUEST.saturating_sub(buf.len());
    if room == 0 {
        return Ok(0);
    }
    buf.reserve(room.min(8 * 1024));
    let mut limited = (&mut *io).take(room as u64);
    limited.read_buf(buf).await
}

/// Resolves when the client closed its end (or the socket failed) while an answer is
/// prepared or streamed; bytes it sends meanwhile (a pipelined request) are kept in `buf`.
/// Never resolves once `buf` is full: the client then waits for its answers. The end of
/// input with pipelined requests still buffered is a half-close, not a departure: it sets
/// `read_closed` and the buffered requests are answered.
async fn client_gone<T: AsyncRead + Unpin>(io: &mut T, buf: &mut BytesMut, read_closed: &mut bool) {
    loop {
        if buf.len() >= MAX_REQUEST || *read_closed {
            std::future::pending::<()>().await;
        }
        match read_some(io, buf).await {
            Ok(n) if n > 0 => {}
            Ok(_) if !buf.is_empty() => *read_closed = true,
            _ => return,
        }
    }
}

/// `raw` followed by `rest`, as one buffer.
fn rejoin(raw: Bytes, rest: BytesMut) -> Bytes {
    if rest.is_empty() {
        return raw;
    }
    let mut all = BytesMut::with_capacity(raw.len() + rest.len());
    all.extend_from_slice(&raw);
    all.extend_from_slice(&rest);
    all.freeze()
}

/// A socket whose first reads return bytes already read from it (by the fast path).
#[derive(Debug)]
pub(crate) struct Rewind<T> {
    prefix: Bytes,
    inner: T,
}

impl<T> Rewind<T> {
    pub(crate) fn new(prefix: Bytes, inner: T) -> Self {
        Self { prefix, inner }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Rewind<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Rewind<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(bytes: &[u8]) -> Parsed {
        parse(bytes, &mut Vec::new())
    }

    fn simple(bytes: &[u8]) -> Head {
        match parsed(bytes) {
            Parsed::Simple(head) => head,
            other => panic!(
                "not simple: {other:?} for {:?}",
                String::from_utf8_lossy(bytes)
            ),
        }
    }

    fn is_handoff(bytes: &[u8]) -> bool {
        matches!(parsed(bytes), Parsed::Handoff)
    }

    #[test]
    fn a_simple_post_is_parsed_with_its_body_length() {
        let raw =
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: gw\r\nContent-Length: 5\r\n\r\nhello";
        let mut headers = Vec::new();
        let Parsed::Simple(head) = parse(raw, &mut headers) else {
            panic!("not simple");
        };
        assert_eq!(head.method, Method::POST);
        assert_eq!(&raw[head.path.clone()], b"/v1/chat/completions");
        assert_eq!(head.head_len, raw.len() - 5);
        assert_eq!(head.body_len, 5);
        assert!(!head.close);
        assert_eq!(headers.len(), 2);
        let raw = Bytes::from_static(raw);
        let request = build_request(&raw, &head, &headers).unwrap();
        assert_eq!(request.uri().path(), "/v1/chat/completions");
        assert_eq!(request.headers()["host"], "gw");
        assert_eq!(request.headers()["content-length"], "5");
        assert_eq!(request.body().size_hint().exact(), Some(5));
    }

    #[test]
    fn a_get_without_length_has_no_body_and_close_is_seen() {
        let head =
            simple(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: Keep-Alive, close\r\n\r\n");
        assert_eq!(head.method, Method::GET);
        assert_eq!(head.body_len, 0);
        assert!(head.close);
    }

    #[test]
    fn a_missing_repeated_or_invalid_host_is_handed_to_hyper() {
        assert!(is_handoff(b"GET /healthz HTTP/1.1\r\n\r\n"));
        assert!(is_handoff(
            b"GET /healthz HTTP/1.1\r\nHost: gw\r\nhost: gw\r\n\r\n"
        ));
        assert!(is_handoff(b"GET /healthz HTTP/1.1\r\nHost: gw/x\r\n\r\n"));
        simple(b"GET /healthz HTTP/1.1\r\nHOST: [::1]:4000\r\n\r\n");
    }

    #[test]
    fn a_head_cut_short_is_partial_until_the_buffer_is_full() {
        assert!(matches!(
            parsed(b"POST /api/chat HTTP/1.1\r\nHost: g"),
            Parsed::Partial
        ));
        assert!(matches!(parsed(b"GE"), Parsed::Partial));
        let mut long = b"GET / HTTP/1.1\r\nx-long: ".to_vec();
        long.resize(MAX_REQUEST, b'a');
        assert!(is_handoff(&long));
    }

    #[test]
    fn anything_but_a_simple_request_goes_to_hyper() {
        let cases: &[&[u8]] = &[
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"GET / HTTP/1.0\r\n\r\n",
            b"HEAD / HTTP/1.1\r\nHost: gw\r\n\r\n",
            b"DELETE /v1/responses/x HTTP/1.1\r\nHost: gw\r\n\r\n",
            b"OPTIONS * HTTP/1.1\r\nHost: gw\r\n\r\n",
            b"GET http://gw/ HTTP/1.1\r\nHost: gw\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: gw\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: +3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 0x3\r\n\r\nabc",
            b"POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: 99999999\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: gw\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: gw\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: gw\r\nConnection: upgrade\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : gw\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: gw\r\nx: a\x01b\r\n\r\n",
            b"GET /\x7f HTTP/1.1\r\nHost: gw\r\n\r\n",
        ];
        for case in cases {
            assert!(
                is_handoff(case),
                "{:?} should go to hyper",
                String::from_utf8_lossy(case)
            );
        }
        // A body that would pass the buffer's end.
        let mut big =
            format!("POST / HTTP/1.1\r\nHost: gw\r\nContent-Length: {MAX_REQUEST}\r\n\r\n")
                .into_bytes();
        big.push(b'x');
        assert!(is_handoff(&big));
        // More headers than the fast path keeps.
        let mut many = b"GET / HTTP/1.1\r\nHost: gw\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            many.extend_from_slice(format!("x-h{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(is_handoff(&many));
    }

    #[test]
    fn obs_text_in_a_header_value_is_kept() {
        let raw = b"GET / HTTP/1.1\r\nHost: gw\r\nx: caf\xc3\xa9\r\n\r\n";
        let head = simple(raw);
        let mut headers = Vec::new();
        let _ = parse(raw, &mut headers);
        let raw = Bytes::from_static(raw);
        assert!(build_request(&raw, &head, &headers).is_some());
    }

    fn head_of(response: Response<Body>, close: bool) -> (String, Framing, bool) {
        let mut out = Vec::new();
        let (framing, closes) = encode_head(&response, close, &mut DateCache::default(), &mut out);
        (String::from_utf8(out).unwrap(), framing, closes)
    }

    #[test]
    fn answers_are_framed_by_length_chunks_or_nothing() {
        let (head, framing, close) = head_of(Response::new(Body::from("ok\n")), false);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.contains("\r\ncontent-length: 3\r\n"), "{head}");
        assert!(head.contains("\r\ndate: "), "{head}");
        assert!(head.ends_with("\r\n\r\n"));
        assert_eq!((framing, close), (Framing::Length(3), false));

        let stream = Body::from_stream(futures::stream::iter([Ok::<_, io::Error>(
            Bytes::from_static(b"x"),
        )]));
        let (head, framing, _) = head_of(Response::new(stream), true);
        assert!(
            head.contains("\r\ntransfer-encoding: chunked\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nconnection: close\r\n"), "{head}");
        assert_eq!(framing, Framing::Chunked);

        let mut empty = Response::new(Body::empty());
        *empty.status_mut() = StatusCode::NO_CONTENT;
        let (head, framing, _) = head_of(empty, false);
        assert!(head.starts_with("HTTP/1.1 204 No Content\r\n"), "{head}");
        assert!(!head.contains("content-length"), "{head}");
        assert_eq!(framing, Framing::None);

        let mut closing = Response::new(Body::from("x"));
        closing
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        let (head, _, close) = head_of(closing, false);
        assert_eq!(head.matches("connection").count(), 1, "{head}");
        assert!(close);
    }

    #[test]
    fn the_request_id_goes_out_under_its_three_names_once_each() {
        let mut response = Response::new(Body::from("{}"));
        answer_head::set_request_id(&mut response, HeaderValue::from_static("req_1"));
        let (head, _, _) = head_of(response, false);
        for name in ["x-switchyard-request-id", "x-request-id", "request-id"] {
            assert_eq!(head.matches(&format!("\r\n{name}: ")).count(), 1, "{head}");
            assert!(head.contains(&format!("\r\n{name}: req_1\r\n")), "{head}");
        }

        // An id already in the map is the one that goes out, under every name; an alias
        // already there is not repeated.
        let mut response = Response::new(Body::from("{}"));
        response
            .headers_mut()
            .insert(REQUEST_ID_HEADER, HeaderValue::from_static("mine"));
        response
            .headers_mut()
            .insert("request-id", HeaderValue::from_static("theirs"));
        answer_head::set_request_id(&mut response, HeaderValue::from_static("req_2"));
        let (head, _, _) = head_of(response, false);
        assert!(!head.contains("req_2"), "{head}");
        assert!(
            head.contains("\r\nx-switchyard-request-id: mine\r\n"),
            "{head}"
        );
        assert!(head.contains("\r\nx-request-id: mine\r\n"), "{head}");
        assert!(head.contains("\r\nrequest-id: theirs\r\n"), "{head}");
        assert_eq!(head.matches("\r\nrequest-id: ").count(), 1, "{head}");
    }

    #[test]
    fn chunks_carry_their_size_in_hex_and_empty_data_is_skipped() {
        let mut out = Vec::new();
        put_data(&mut out, Framing::Chunked, b"");
        assert!(out.is_empty());
        put_data(&mut out, Framing::Chunked, &[b'a'; 26]);
        assert!(out.starts_with(b"1a\r\naaaa"));
        assert!(out.ends_with(b"a\r\n"));
        let mut out = Vec::new();
        put_chunk_size(&mut out, 0x10000);
        assert_eq!(out, b"10000\r\n");
    }

    #[tokio::test]
    async fn rewind_replays_its_prefix_before_the_socket() {
        let (mut near, far) = tokio::io::duplex(64);
        let mut rewind = Rewind::new(Bytes::from_static(b"abc"), far);
        near.write_all(b"def").await.unwrap();
        drop(near);
        let mut all = Vec::new();
        rewind.read_to_end(&mut all).await.unwrap();
        assert_eq!(all, b"abcdef");
    }

    proptest::proptest! {
        #[test]
        fn parsing_any_bytes_never_panics_and_ranges_stay_inside(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
            let mut headers = Vec::new();
            if let Parsed::Simple(head) = parse(&bytes, &mut headers) {
                proptest::prop_assert!(head.path.end <= head.head_len);
                proptest::prop_assert!(head.head_len <= bytes.len());
                for at in &headers {
                    proptest::prop_assert!(at.name.end <= head.head_len && at.value.end <= head.head_len);
                }
            }
        }
    }
}
