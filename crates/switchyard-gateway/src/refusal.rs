//! hyper's own refusals in the API's error shape: hyper answers a request head it will not
//! parse (malformed or badly framed: 400; URI too long: 414; headers too large: 431)
//! itself, with an empty body, before any handler runs. [`RefusalIo`] sits between hyper
//! and the socket, recognises those answers (status 414 or 431 with `content-length: 0`,
//! or 400 with `content-length: 0` and `connection: close`; the handlers never send an
//! error without a body) and writes a JSON body in the shape of the API the request line names instead. After
//! such an answer, and after a 413 or 408 (which leave the client's body unread), the rest
//! of the client's input is read and dropped for a bounded time before the socket closes,
//! so the client reads the answer instead of a reset.
//!
//! It also tells the connection's watchdog when the first bytes of a later HTTP/1 request
//! head arrive ([`ConnState::head_started`]), so that head's deadline runs without a timer
//! per request.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use switchyard_core::{ErrorKind, ProviderError};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _, ReadBuf};
use tokio::net::TcpStream;

use crate::api::Api;
use crate::conn::ConnState;

/// How much of a request line is kept to tell the APIs apart (`POST /api/`).
const REQUEST_START: usize = 16;
/// After a rewritten refusal: the longest and the most the rest of the request is read.
const LINGER: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 8 * 1024 * 1024;

/// The socket of one connection, as hyper sees it.
#[derive(Debug)]
pub(crate) struct RefusalIo {
    stream: Option<TcpStream>,
    /// The first bytes read since the last answer began (the request line's start).
    start: [u8; REQUEST_START],
    start_len: usize,
    /// The last write was an answer: the next read starts a request.
    answered: bool,
    /// A rewritten answer still being written, and the length of hyper's original.
    pending: Vec<u8>,
    written: usize,
    original_len: usize,
    lingering: bool,
    /// The connection's protocol, once its first bytes tell.
    protocol: Protocol,
    /// Told when a later HTTP/1 request head starts.
    conn: Arc<ConnState>,
}

/// What a connection's first bytes say it speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    /// Fewer than [`PREFACE_START`]'s length read so far.
    Unknown,
    Http1,
    /// Starts with the HTTP/2 preface: there are no HTTP/1 heads to time.
    Http2,
}

/// How an HTTP/2 connection starts (its preface is `PRI * HTTP/2.0...`).
const PREFACE_START: &[u8] = b"PRI ";

impl RefusalIo {
    pub(crate) fn new(stream: TcpStream, conn: Arc<ConnState>) -> Self {
        Self {
            protocol: Protocol::Unknown,
            conn,
            stream: Some(stream),
            start: [0; REQUEST_START],
            start_len: 0,
            answered: true,
            pending: Vec::new(),
            written: 0,
            original_len: 0,
            lingering: false,
        }
    }

    /// The fast path hands hyper a request it read already (`bytes`, from the request
    /// line on), replayed before this socket's next reads: that request line, not the
    /// next bytes read, names the API of a refusal.
    pub(crate) fn request_replayed(&mut self, bytes: &[u8]) {
        self.answered = false;
        let take = bytes.len().min(REQUEST_START);
        self.start[..take].copy_from_slice(&bytes[..take]);
        self.start_len = take;
    }

    fn stream(&mut self) -> io::Result<&mut TcpStream> {
        self.stream
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotConnected))
    }

    fn api(&self) -> Api {
        let start = &self.start[..self.start_len];
        let path = start
            .iter()
            .position(|b| *b == b' ')
            .map_or(&start[..0], |i| &start[i + 1..]);
        if path.starts_with(b"/api/") || path == b"/" || path.starts_with(b"/ ") {
            Api::Ollama
        } else {
            Api::OpenAi
        }
    }
}

/// The JSON answer replacing hyper's empty 400, 414 or 431 in `head`, if it is one.
fn rewrite(head: &[u8], api: Api) -> Option<Vec<u8>> {
    let (status, reason, what) = if head.starts_with(b"HTTP/1.1 431 ") {
        (
            431,
            "Request Header Fields Too Large",
            "request header fields too large",
        )
    } else if head.starts_with(b"HTTP/1.1 414 ") {
        (414, "URI Too Long", "request URI too long")
    } else if head.starts_with(b"HTTP/1.1 400 ") && has_line(head, b"\r\nconnection: close\r\n") {
        (
            400,
            "Bad Request",
            "malformed HTTP request: its head could not be parsed or framed (a bad request \
             line or header, conflicting or invalid content-length, or an unsupported \
             transfer-encoding)",
        )
    } else {
        return None;
    };
    if !has_line(head, b"\r\ncontent-length: 0\r\n") {
        return None;
    }
    let error = ProviderError::new(ErrorKind::InvalidRequest, what);
    let mut body = Vec::with_capacity(160);
    api.encode_error_body(&error, &mut body);
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(&body);
    Some(out)
}

/// Whether `head` holds `line` (with its line ends), in any case.
fn has_line(head: &[u8], line: &[u8]) -> bool {
    head.windows(line.len())
        .any(|w| w.eq_ignore_ascii_case(line))
}

/// Whether `head` starts an answer that leaves the client's body unread (413 too large,
/// 408 stopped sending): the connection closes after it, so it lingers too.
fn leaves_input_unread(head: &[u8]) -> bool {
    head.starts_with(b"HTTP/1.1 413 ") || head.starts_with(b"HTTP/1.1 408 ")
}

impl AsyncRead for RefusalIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let stream = this.stream()?;
        let result = Pin::new(stream).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            if this.answered {
                this.answered = false;
                this.start_len = 0;
                if this.protocol == Protocol::Http1 {
                    this.conn.head_started();
                }
            }
            let take = new.len().min(REQUEST_START - this.start_len);
            this.start[this.start_len..this.start_len + take].copy_from_slice(&new[..take]);
            this.start_len += take;
            if this.protocol == Protocol::Unknown && this.start_len >= PREFACE_START.len() {
                this.protocol = if this.start.starts_with(PREFACE_START) {
                    Protocol::Http2
                } else {
                    Protocol::Http1
                };
            }
        }
        result
    }
}

impl AsyncWrite for RefusalIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if this.pending.is_empty() {
            this.answered = true;
            match rewrite(buf, this.api()) {
                Some(out) => {
                    this.pending = out;
                    this.written = 0;
                    this.original_len = buf.len();
                    this.lingering = true;
                }
                None => {
                    this.lingering |= leaves_input_unread(buf);
                    return Pin::new(this.stream()?).poll_write(cx, buf);
                }
            }
        }
        while this.written < this.pending.len() {
            let pending = std::mem::take(&mut this.pending);
            let written = this.written;
            let result = Pin::new(this.stream()?).poll_write(cx, &pending[written..]);
            this.pending = pending;
            match result {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => this.written += n,
                other => return other,
            }
        }
        this.pending.clear();
        Poll::Ready(Ok(this.original_len))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        // hyper writes a head in one slice; a refusal has nothing after it.
        let refusal = self.pending.is_empty()
            && bufs.len() == 1
            && bufs
                .first()
                .is_some_and(|head| rewrite(head, self.api()).is_some());
        if refusal || !self.pending.is_empty() {
            let head = bufs.first().map_or(&[][..], |b| &b[..]);
            return self.poll_write(cx, head);
        }
        self.answered = true;
        if bufs.first().is_some_and(|head| leaves_input_unread(head)) {
            self.lingering = true;
        }
        Pin::new(self.stream()?).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(self.stream()?).poll_shutdown(cx)
    }
}

impl Drop for RefusalIo {
    fn drop(&mut self) {
        let (true, Some(mut stream)) = (self.lingering, self.stream.take()) else {
            return;
        };
        // Closing with unread input would reset the connection and could discard the
        // answer before the client reads it: read the rest first, boundedly.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = stream.shutdown().await;
                let mut sink = vec![0u8; 16 * 1024];
                let mut left = LINGER_BYTES;
                let _ = tokio::time::timeout(LINGER, async {
                    while left > 0 {
                        match stream.read(&mut sink).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => left = left.saturating_sub(n),
                        }
                    }
                })
                .await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_empty_400_414_and_431_are_rewritten() {
        let empty =
            b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(empty, Api::OpenAi).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 431 "), "{out}");
        assert!(out.contains("\"code\":\"invalid_request\""), "{out}");
        let out = String::from_utf8(
            rewrite(
                b"HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n",
                Api::Ollama,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            out.ends_with("{\"error\":\"request URI too long\"}"),
            "{out}"
        );
        assert!(rewrite(b"HTTP/1.1 431 X\r\ncontent-length: 12\r\n\r\n", Api::OpenAi).is_none());
        let hypers_400 =
            b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let out = String::from_utf8(rewrite(hypers_400, Api::OpenAi).unwrap()).unwrap();
        assert!(out.starts_with("HTTP/1.1 400 Bad Request\r\n"), "{out}");
        assert!(out.contains("malformed HTTP request"), "{out}");
        assert!(
            rewrite(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
                Api::OpenAi
            )
            .is_none()
        );
        assert!(rewrite(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n", Api::OpenAi).is_none());
    }
}
