//! The HTTP/1.1 wire of an upstream client, without I/O (switchyard-http's direct client
//! runs it over its sockets): the request head written once per
//! upstream, the answer's head read with `httparse` (the parser hyper uses), and the body's
//! framing (`content-length`, `chunked`, or until the connection closes) decoded in place in
//! the read buffer.
//!
//! The body decoder moves the data of every complete or partial chunk in the buffer to its
//! front, over the chunk-size lines, so the bytes of one socket read become one piece of
//! body however many chunks they hold (an upstream's stream sends one chunk per token; a
//! piece per chunk cost a hand-off each). Every buffer it keeps is bounded: the head
//! ([`MAX_HEAD`]), a chunk-size line ([`MAX_CHUNK_LINE`]) and the trailers ([`MAX_TRAILERS`]).
//!
//! ```
//! # use bytes::BytesMut;
//! # use switchyard_stream::h1::{BodyDecoder, Framing};
//! let mut buf = BytesMut::from(&b"5\r\nHello\r\n1;ext=1\r\n!\r\n0\r\n\r\n"[..]);
//! let mut body = BodyDecoder::new(Framing::Chunked);
//! let n = body.decode(&mut buf)?;
//! assert_eq!(&buf[..n], b"Hello!");
//! assert!(body.is_done());
//! # Ok::<(), switchyard_stream::h1::WireError>(())
//! ```

use bytes::BytesMut;
use http::StatusCode;
use http::header::{
    CONNECTION, CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue,
    TRANSFER_ENCODING,
};

/// The longest answer head read (status line and headers).
pub const MAX_HEAD: usize = 64 * 1024;
/// The most headers one answer head may carry.
pub const MAX_HEADERS: usize = 128;
/// The longest chunk-size line (size and extensions).
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// The most bytes of trailers after the last chunk.
pub const MAX_TRAILERS: usize = 64 * 1024;

/// What is wrong with an upstream's answer on the wire. Stable reason codes:
/// [`WireError::reason_code`].
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum WireError {
    /// The head is longer than [`MAX_HEAD`].
    #[error("the answer's head is longer than {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// The head does not parse.
    #[error("the answer's head is not HTTP/1.x: {0}")]
    BadHead(String),
    /// A `content-length` that is not one number.
    #[error("the answer's content-length is not a number: {0:?}")]
    BadContentLength(String),
    /// The server switched protocols, which the client never asks for.
    #[error("the answer switches protocols (HTTP 101), which was not asked for")]
    SwitchingProtocols,
    /// A chunked body that breaks the chunk format (the detail says how).
    #[error("the chunked body is not valid: {0}")]
    BadChunk(&'static str),
    /// The trailers are longer than [`MAX_TRAILERS`].
    #[error("the answer's trailers are longer than {MAX_TRAILERS} bytes")]
    TrailersTooLarge,
    /// The connection closed before the body's end.
    #[error("the connection closed before the end of the answer")]
    EndedEarly,
    /// A successful answer's body is in a content coding (`gzip`, ...) the client never
    /// asked for and does not decode.
    #[error(
        "the answer's body is encoded as `content-encoding: {0}`, which the gateway does not decode (it asks for none)"
    )]
    ContentEncoding(String),
}

impl WireError {
    /// A stable reason code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            WireError::HeadTooLarge => "head_too_large",
            WireError::BadHead(_) => "bad_head",
            WireError::BadContentLength(_) => "bad_content_length",
            WireError::SwitchingProtocols => "switching_protocols",
            WireError::BadChunk(_) => "bad_chunk",
            WireError::TrailersTooLarge => "trailers_too_large",
            WireError::EndedEarly => "ended_early",
            WireError::ContentEncoding(_) => "content_encoding",
        }
    }
}

/// The request head every `POST` of one upstream shares, up to its `content-length`:
/// `POST <target> HTTP/1.1` and `headers`. [`write_request`] adds the length and body.
pub fn request_head(target: &str, headers: &HeaderMap) -> Vec<u8> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(b"POST ");
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head
}

/// Appends one whole request to `out`: `head` (from [`request_head`]), `content-length` and
/// `body`.
pub fn write_request(head: &[u8], body: &[u8], out: &mut Vec<u8>) {
    out.reserve(head.len() + body.len() + 32);
    out.extend_from_slice(head);
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// An answer's head.
#[derive(Debug)]
pub struct Head {
    /// The status.
    pub status: StatusCode,
    /// The headers, in order, of an answer that is not a success (what the classification
    /// of an error answer reads: its message, `retry-after`, rate limits); empty for a
    /// success, whose headers nothing reads (its framing is in [`Head::framing`]).
    pub headers: HeaderMap,
    /// How the body is framed.
    pub framing: Framing,
    /// Whether the connection may take another request after this answer (HTTP/1.1 without
    /// `connection: close`, and a body that ends by its framing).
    pub keep_alive: bool,
}

/// How an answer's body ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// No body (HTTP 204 and 304).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Everything until the connection closes.
    UntilClose,
}

/// Parses an answer head at the front of `buf`. `Ok(None)`: more bytes are needed. On
/// success the head's bytes are removed from `buf` (what follows is the body). Interim
/// answers (HTTP 1xx other than 101) are skipped.
pub fn parse_head(buf: &mut BytesMut) -> Result<Option<Head>, WireError> {
    loop {
        // Uninitialised slots: httparse writes the ones it fills (no 4 KiB zeroing per head).
        let mut slots =
            [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
        let mut answer = httparse::Response::new(&mut []);
        let parsed = match httparse::ParserConfig::default().parse_response_with_uninit_headers(
            &mut answer,
            buf,
            &mut slots,
        ) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => {
                return if buf.len() > MAX_HEAD {
                    Err(WireError::HeadTooLarge)
                } else {
                    Ok(None)
                };
            }
            Err(e) => return Err(WireError::BadHead(e.to_string())),
        };
        if parsed > MAX_HEAD {
            return Err(WireError::HeadTooLarge);
        }
        let code = answer.code.unwrap_or(0);
        let status =
            StatusCode::from_u16(code).map_err(|_| WireError::BadHead(format!("status {code}")))?;
        if code == 101 {
            return Err(WireError::SwitchingProtocols);
        }
        if status.is_informational() {
            let _ = buf.split_to(parsed);
            continue;
        }
        let raw: &[httparse::Header<'_>] = answer.headers;
        let mut headers = HeaderMap::new();
        if !status.is_success() {
            headers.reserve(raw.len());
            for h in raw {
                let name = HeaderName::from_bytes(h.name.as_bytes())
                    .map_err(|_| WireError::BadHead(format!("header name {:?}", h.name)))?;
                let value = HeaderValue::from_bytes(h.value)
                    .map_err(|_| WireError::BadHead(format!("the value of {name}")))?;
                headers.append(name, value);
            }
        }
        if status.is_success()
            && let Some(coding) = values(raw, CONTENT_ENCODING).find(|v| !is_identity(v))
        {
            return Err(WireError::ContentEncoding(
                String::from_utf8_lossy(coding).chars().take(64).collect(),
            ));
        }
        let http11 = answer.version == Some(1);
        let mut framing = framing_of(status, raw)?;
        // RFC 9112 6.1: an HTTP/1.0 answer with a transfer coding has faulty framing; read it
        // to the close.
        if !http11 && framing == Framing::Chunked {
            framing = Framing::UntilClose;
        }
        let close = values(raw, CONNECTION).any(|v| has_token(v, b"close"));
        // Both framings at once (6.3) is a smuggling pattern: the connection is not reused.
        let ambiguous = values(raw, TRANSFER_ENCODING).next().is_some()
            && values(raw, CONTENT_LENGTH).next().is_some();
        let keep_alive = http11 && !close && !ambiguous && framing != Framing::UntilClose;
        let _ = buf.split_to(parsed);
        return Ok(Some(Head {
            status,
            headers,
            framing,
            keep_alive,
        }));
    }
}

/// The values of the headers named `name` (any case), in order.
/// Whether a `content-encoding` value means no coding (`identity`, or empty).
fn is_identity(value: &[u8]) -> bool {
    let value = value.trim_ascii();
    value.is_empty() || value.eq_ignore_ascii_case(b"identity")
}

fn values<'a>(
    raw: &'a [httparse::Header<'a>],
    name: HeaderName,
) -> impl Iterator<Item = &'a [u8]> + 'a {
    raw.iter()
        .filter(move |h| h.name.eq_ignore_ascii_case(name.as_str()))
        .map(|h| h.value)
}

/// The body framing of an answer (RFC 9112 section 6.3, for answers to a `POST`).
fn framing_of(status: StatusCode, raw: &[httparse::Header<'_>]) -> Result<Framing, WireError> {
    if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        return Ok(Framing::Empty);
    }
    if let Some(last) = values(raw, TRANSFER_ENCODING).last() {
        // Chunked only when it is the last coding; any other ends at the close.
        let last_chunked = last
            .rsplit(|&b| b == b',')
            .next()
            .is_some_and(|c| c.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        return Ok(if last_chunked {
            Framing::Chunked
        } else {
            Framing::UntilClose
        });
    }
    let mut length: Option<u64> = None;
    for value in values(raw, CONTENT_LENGTH) {
        for part in value.split(|&b| b == b',') {
            let text = part.trim_ascii();
            let bad = || WireError::BadContentLength(String::from_utf8_lossy(text).into_owned());
            if text.is_empty() || !text.iter().all(u8::is_ascii_digit) || text.len() > 19 {
                return Err(bad());
            }
            let n: u64 = std::str::from_utf8(text)
                .ok()
                .and_then(|t| t.parse().ok())
                .ok_or_else(bad)?;
            if length.is_some_and(|l| l != n) {
                return Err(bad());
            }
            length = Some(n);
        }
    }
    Ok(match length {
        Some(0) => Framing::Empty,
        Some(n) => Framing::Length(n),
        None => Framing::UntilClose,
    })
}

/// Whether the comma-separated header value holds `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// Decodes an answer's body in place (see the module docs).
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    /// Trailer bytes read so far.
    trailers: usize,
    /// An error found after some body data of the same call: returned by the next call,
    /// so the data before it is delivered first.
    failed: Option<WireError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Data bytes left before the end (`content-length`) or the chunk's end.
    Data { left: u64, chunked: bool },
    /// Expecting a chunk-size line.
    Size,
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// Reading trailer lines after the last chunk.
    Trailers,
    /// Everything until the connection closes is data.
    UntilClose,
    /// The body has ended.
    Done,
}

impl BodyDecoder {
    /// A decoder for a body framed as `framing`.
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::Empty | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Data {
                left: n,
                chunked: false,
            },
            Framing::Chunked => State::Size,
            Framing::UntilClose => State::UntilClose,
        };
        Self {
            state,
            trailers: 0,
            failed: None,
        }
    }

    /// Whether the body has ended (all of it decoded).
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The connection closed: fine for a body that ends at the close, an error for one that
    /// had not ended yet.
    pub fn end_of_input(&mut self) -> Result<(), WireError> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            _ => Err(WireError::EndedEarly),
        }
    }

    /// Decodes what `buf` holds: moves the body data in it to its front and returns its
    /// length; the bytes after it are what is left to decode (a partial chunk-size line,
    /// or, once the body is done, whatever followed it).
    ///
    /// An error is returned once the data decoded before it has been: a call that finds one
    /// after some data returns the data, the next call the error.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<usize, WireError> {
        if let Some(err) = self.failed.take() {
            return Err(err);
        }
        let len = buf.len();
        let (mut read, mut written) = (0usize, 0usize);
        let result = loop {
            let rest = &buf[read..];
            match self.state {
                State::Done => break Ok(()),
                State::UntilClose => {
                    if read != written {
                        buf.copy_within(read..len, written);
                    }
                    written += len - read;
                    read = len;
                    break Ok(());
                }
                State::Data { left, chunked } => {
                    if rest.is_empty() {
                        break Ok(());
                    }
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(rest.len());
                    if read != written {
                        buf.copy_within(read..read + take, written);
                    }
                    read += take;
                    written += take;
                    let left = left - take as u64;
                    self.state = match (left, chunked) {
                        (0, true) => State::DataEnd,
                        (0, false) => State::Done,
                        (left, chunked) => State::Data { left, chunked },
                    };
                }
                State::Size => {
                    let line = match line_of(rest, MAX_CHUNK_LINE) {
                        Ok(Some(line)) => line,
                        Ok(None) => break Ok(()),
                        Err(()) => break Err(WireError::BadChunk("a chunk-size line is too long")),
                    };
                    let size = match chunk_size(&rest[..line.content]) {
                        Ok(size) => size,
                        Err(e) => break Err(e),
                    };
                    read += line.whole;
                    self.state = if size == 0 {
                        State::Trailers
                    } else {
                        State::Data {
                            left: size,
                            chunked: true,
                        }
                    };
                }
                State::DataEnd => {
                    let overrun = WireError::BadChunk("a chunk's data is longer than its size");
                    let line = match line_of(rest, 0) {
                        Ok(Some(line)) => line,
                        Ok(None) => break Ok(()),
                        Err(()) => break Err(overrun),
                    };
                    if line.content != 0 {
                        break Err(overrun);
                    }
                    read += line.whole;
                    self.state = State::Size;
                }
                State::Trailers => {
                    let room = MAX_TRAILERS.saturating_sub(self.trailers);
                    let line = match line_of(rest, room) {
                        Ok(Some(line)) if line.whole <= room => line,
                        Ok(None) => break Ok(()),
                        Ok(Some(_)) | Err(()) => break Err(WireError::TrailersTooLarge),
                    };
                    read += line.whole;
                    self.trailers += line.whole;
                    if line.content == 0 {
                        self.state = State::Done;
                    }
                }
            }
        };
        // What was not read moves up behind the data.
        if read != written {
            buf.copy_within(read..len, written);
            buf.truncate(written + (len - read));
        }
        match result {
            Ok(()) => Ok(written),
            Err(err) if written == 0 => Err(err),
            Err(err) => {
                self.failed = Some(err);
                Ok(written)
            }
        }
    }
}

/// A line found at the front of some bytes: its length without the line end, and with it.
struct Line {
    content: usize,
    whole: usize,
}

/// The line at the front of `bytes` (ended by LF, an optional CR before it), when it is
/// there; `Err` when no line end comes within `max` bytes of content.
fn line_of(bytes: &[u8], max: usize) -> Result<Option<Line>, ()> {
    let window = &bytes[..bytes.len().min(max.saturating_add(2))];
    match window.iter().position(|&b| b == b'\n') {
        Some(lf) => {
            let content = if lf > 0 && window[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            Ok(Some(Line {
                content,
                whole: lf + 1,
            }))
        }
        None if window.len() >= max.saturating_add(2) => Err(()),
        None => Ok(None),
    }
}

/// The size of a chunk-size line (hex digits, then optional whitespace and extensions).
fn chunk_size(line: &[u8]) -> Result<u64, WireError> {
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(WireError::BadChunk("a chunk size is not hexadecimal"));
    }
    let zeros = line[..digits].iter().take_while(|&&b| b == b'0').count();
    if digits - zeros > 15 {
        return Err(WireError::BadChunk("a chunk size above 2^60"));
    }
    let after = line[digits..].trim_ascii_start();
    if !(after.is_empty() || after[0] == b';') {
        return Err(WireError::BadChunk("text after a chunk size"));
    }
    let mut size = 0u64;
    for &b in &line[zeros..digits] {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            _ => b - b'A' + 10,
        };
        size = (size << 4) | u64::from(digit);
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<Head>, WireError> {
        parse_head(&mut BytesMut::from(text.as_bytes()))
    }

    #[test]
    fn heads_give_status_headers_framing_and_reuse() {
        let h = head("HTTP/1.1 429 Slow down\r\ncontent-length: 12\r\nx-a: 1\r\nX-A: 2\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(h.framing, Framing::Length(12));
        assert_eq!(
            h.headers.get_all("x-a").iter().count(),
            2,
            "an error answer's headers"
        );
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 200 OK\r\nContent-Length: 12\r\nx-a: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(12), "names match in any case");
        assert!(h.headers.is_empty(), "a success's headers are not kept");
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 3\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        let h = head("HTTP/1.1 200 OK\r\ntransfer-encoding: gzip\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::UntilClose);
        assert!(!h.keep_alive);
        let h =
            head("HTTP/1.1 500 Oops\r\nconnection: keep-alive, Close\r\ncontent-length: 0\r\n\r\n")
                .unwrap()
                .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        assert!(!h.keep_alive);
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n")
            .unwrap()
            .unwrap();
        assert!(!h.keep_alive, "HTTP/1.0 closes");
        let h = head("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Empty);
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 7, 7\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Length(7));
    }

    #[test]
    fn data_before_an_error_is_delivered_first() {
        let mut body = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"5\r\nHello\r\nzz\r\n"[..]);
        assert_eq!(body.decode(&mut buf), Ok(5));
        assert_eq!(&buf.split_to(5)[..], b"Hello");
        let err = body.decode(&mut buf).unwrap_err();
        assert_eq!(err.reason_code(), "bad_chunk");
    }

    #[test]
    fn ambiguous_or_old_framing_is_not_reused() {
        let h = head("HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ncontent-length: 3\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.framing, Framing::Chunked);
        assert!(!h.keep_alive, "both framings: the connection is not reused");
        let h = head("HTTP/1.0 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            h.framing,
            Framing::UntilClose,
            "HTTP/1.0 has no transfer codings"
        );
    }

    #[test]
    fn interim_answers_are_skipped_and_the_body_stays_in_the_buffer() {
        let mut buf = BytesMut::from(
            &b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early\r\nlink: x\r\n\r\nHTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"[..],
        );
        let h = parse_head(&mut buf).unwrap().unwrap();
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(&buf[..], b"hi");
    }

    #[test]
    fn bad_heads_are_named() {
        assert_eq!(
            head("HTTP/1.1 200 OK\r\ncontent-le")
                .unwrap()
                .map(|h| h.status),
            None
        );
        for (text, code) in [
            (
                "HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n",
                "bad_content_length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
                "bad_content_length",
            ),
            (
                "HTTP/1.1 200 OK\r\ncontent-length: -1\r\n\r\n",
                "bad_content_length",
            ),
            ("HTTP/1.1 101 Switching\r\n\r\n", "switching_protocols"),
            ("SMTP 220 hello\r\n\r\n", "bad_head"),
            ("HTTP/1.1 099 Low\r\n\r\n", "bad_head"),
        ] {
            let err = head(text).unwrap_err();
            assert_eq!(err.reason_code(), code, "{text:?}: {err}");
        }
        let long = format!("HTTP/1.1 200 OK\r\nx: {}", "a".repeat(MAX_HEAD));
        assert_eq!(head(&long).unwrap_err(), WireError::HeadTooLarge);
    }

    #[test]
    fn the_request_head_carries_the_headers_and_length() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("up:80"));
        headers.insert("content-type", HeaderValue::from_static("application/json"));
        let mut out = Vec::new();
        write_request(&request_head("/v1/chat", &headers), b"{}", &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "POST /v1/chat HTTP/1.1\r\nhost: up:80\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n{}"
        );
    }

    #[test]
    fn bad_chunks_are_named_and_lines_are_bounded() {
        for (wire, detail) in [
            (&b"zz\r\n"[..], "not hexadecimal"),
            (b"5 x\r\n", "text after"),
            (b"\r\n", "not hexadecimal"),
            (b"1234567890abcdef0\r\n", "above 2^60"),
            (b"1\r\naXYZW", "longer than its size"),
            (b"1\r\naX\r\n", "longer than its size"),
        ] {
            let mut body = BodyDecoder::new(Framing::Chunked);
            let mut buf = BytesMut::from(wire);
            let err = loop {
                match body.decode(&mut buf) {
                    Ok(n) => {
                        assert!(n > 0, "{wire:?}: no progress and no error");
                        let _ = buf.split_to(n);
                    }
                    Err(err) => break err,
                }
            };
            assert_eq!(err.reason_code(), "bad_chunk", "{wire:?}");
            assert!(err.to_string().contains(detail), "{wire:?}: {err}");
        }
        // Leading zeros are not digits that count.
        let mut body = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"0000000000000000005\r\nHello\r\n0\r\n\r\n"[..]);
        assert_eq!(body.decode(&mut buf), Ok(5));
        assert!(body.is_done());
        let mut body = BodyDecoder::new(Framing::Chunked);
        let long = vec![b'1'; MAX_CHUNK_LINE + 2];
        assert!(body.decode(&mut BytesMut::from(&long[..])).is_err());
        let mut body = BodyDecoder::new(Framing::Chunked);
        let mut trailers = b"0\r\n".to_vec();
        while trailers.len() < MAX_TRAILERS + 100 {
            trailers.extend_from_slice(b"x-t: 1\r\n");
        }
        assert_eq!(
            body.decode(&mut BytesMut::from(&trailers[..])),
            Err(WireError::TrailersTooLarge)
        );
        // Short lines too: the limit counts every byte.
        let mut body = BodyDecoder::new(Framing::Chunked);
        let mut buf = BytesMut::from(&b"0\r\n"[..]);
        let mut outcome = Ok(0);
        for _ in 0..MAX_TRAILERS {
            buf.extend_from_slice(b"a\n");
            outcome = body.decode(&mut buf);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(WireError::TrailersTooLarge));
        let mut body = BodyDecoder::new(Framing::Length(5));
        assert_eq!(body.decode(&mut BytesMut::from(&b"abc"[..])), Ok(3));
        assert_eq!(body.end_of_input(), Err(WireError::EndedEarly));
        let mut body = BodyDecoder::new(Framing::UntilClose);
        assert_eq!(body.decode(&mut BytesMut::from(&b"abc"[..])), Ok(3));
        assert_eq!(body.end_of_input(), Ok(()));
        assert!(body.is_done());
    }

    /// The wire form of `body` in chunks of `sizes` (cycled), with extensions on some and
    /// trailers when asked.
    fn chunked(body: &[u8], sizes: &[usize], trailers: bool) -> Vec<u8> {
        let mut wire = Vec::new();
        let (mut at, mut i) = (0, 0);
        while at < body.len() {
            let n = sizes[i % sizes.len()].max(1).min(body.len() - at);
            if i % 3 == 1 {
                wire.extend_from_slice(format!("{n:X};name=\"v\"\r\n").as_bytes());
            } else {
                wire.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            }
            wire.extend_from_slice(&body[at..at + n]);
            wire.extend_from_slice(b"\r\n");
            at += n;
            i += 1;
        }
        wire.extend_from_slice(b"0\r\n");
        if trailers {
            wire.extend_from_slice(b"x-checksum: 1\r\n");
        }
        wire.extend_from_slice(b"\r\n");
        wire
    }

    /// Feeds `wire` in pieces of `cuts` (cycled) as a connection would, decoding after
    /// each; returns the body and the bytes left after it.
    fn feed(framing: Framing, wire: &[u8], cuts: &[usize]) -> (Vec<u8>, Vec<u8>, bool) {
        let mut body = BodyDecoder::new(framing);
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let (mut at, mut i) = (0, 0);
        loop {
            let n = body.decode(&mut buf).unwrap();
            out.extend_from_slice(&buf.split_to(n));
            if body.is_done() || at == wire.len() {
                break;
            }
            let step = cuts[i % cuts.len()].max(1).min(wire.len() - at);
            buf.extend_from_slice(&wire[at..at + step]);
            at += step;
            i += 1;
        }
        if !body.is_done() && framing == Framing::UntilClose {
            body.end_of_input().unwrap();
        }
        let mut rest = buf.to_vec();
        rest.extend_from_slice(&wire[at..]);
        (out, rest, body.is_done())
    }

    proptest::proptest! {
        #[test]
        fn chunked_bodies_decode_however_the_reads_fall(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            sizes in proptest::collection::vec(1usize..200, 1..6),
            cuts in proptest::collection::vec(1usize..300, 1..6),
            trailers: bool,
            after in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
        ) {
            let mut wire = chunked(&body, &sizes, trailers);
            wire.extend_from_slice(&after);
            let (out, rest, done) = feed(Framing::Chunked, &wire, &cuts);
            proptest::prop_assert!(done);
            proptest::prop_assert_eq!(out, body);
            proptest::prop_assert_eq!(rest, after);
        }

        #[test]
        fn length_and_close_bodies_decode_however_the_reads_fall(
            body in proptest::collection::vec(proptest::num::u8::ANY, 0..600),
            cuts in proptest::collection::vec(1usize..300, 1..6),
            after in proptest::collection::vec(proptest::num::u8::ANY, 0..20),
        ) {
            let mut wire = body.clone();
            wire.extend_from_slice(&after);
            let framing = if body.is_empty() { Framing::Empty } else { Framing::Length(body.len() as u64) };
            let (out, rest, done) = feed(framing, &wire, &cuts);
            proptest::prop_assert!(done);
            proptest::prop_assert_eq!(out, body.clone());
            proptest::prop_assert_eq!(rest, after);
            let (out, rest, done) = feed(Framing::UntilClose, &body, &cuts);
            proptest::prop_assert!(done);
            proptest::prop_assert_eq!(out, body);
            proptest::prop_assert!(rest.is_empty());
        }

        #[test]
        fn any_bytes_decode_or_fail_without_panicking(
            wire in proptest::collection::vec(proptest::num::u8::ANY, 0..400),
            cuts in proptest::collection::vec(1usize..64, 1..4),
        ) {
            let mut body = BodyDecoder::new(Framing::Chunked);
            let mut buf = BytesMut::new();
            let mut at = 0;
            let mut i = 0;
            while at < wire.len() {
                let step = cuts[i % cuts.len()].min(wire.len() - at);
                buf.extend_from_slice(&wire[at..at + step]);
                at += step;
                i += 1;
                match body.decode(&mut buf) {
                    Ok(n) => { let _ = buf.split_to(n); }
                    Err(_) => break,
                }
                proptest::prop_assert!(buf.len() <= MAX_TRAILERS + 64);
            }
            let _ = parse_head(&mut BytesMut::from(&wire[..]));
        }
    }
}
