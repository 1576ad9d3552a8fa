//! Incremental Server-Sent Events framing (the WHATWG `text/event-stream` rules).
//!
//! Lines end with CR, LF or CRLF; `data:` lines (several per event) are joined with `\n`;
//! `event:`, `id:` (kept across events, as the spec's last event id) and `retry:` are read;
//! comment lines (`:` first) are skipped; a blank line dispatches the event; an event
//! without data is not dispatched. A leading byte-order mark is dropped.
//!
//! Each byte is scanned once: the framer remembers how far it has looked for a line end,
//! so one long event arriving in many small chunks costs linear time (unlike a parser that
//! re-parses its whole pending buffer on every chunk). The event being assembled and the
//! line being read together are bounded by a configurable maximum.
//!
//! The common event, one `data:` line and the blank line after it, both already received,
//! is lent out of the input buffer as it is: no copy, and its text is checked (UTF-8) once.
//!
//! At end of input [`SseFramer::finish`] also dispatches a last event that lacked its
//! blank line (the spec would drop it; upstreams that close right after `data: [DONE]`
//! exist), so a truncated stream is judged by the decoder, not lost in framing.
//!
//! ```
//! use switchyard_stream::sse::SseFramer;
//! let mut framer = SseFramer::new();
//! framer.push(b"event: delta\r\ndata: {\"a\":\ndata: 1}\r\n\r\n: keep-alive\n\ndata: [DO");
//! let ev = framer.next_event().unwrap().unwrap();
//! assert_eq!(ev.event.as_deref(), Some("delta"));
//! assert_eq!(ev.data, "{\"a\":\n1}");
//! assert!(framer.next_event().is_none());
//! framer.push(b"NE]");
//! assert_eq!(framer.finish().unwrap().unwrap().data, "[DONE]");
//! ```

use std::borrow::Cow;

pub use crate::ndjson::FrameError;
use crate::ndjson::compact;

/// The default largest event (16 MiB).
pub const DEFAULT_MAX_EVENT: usize = 16 * 1024 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// One dispatched event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` type, when the event named one (the spec's default is `message`).
    pub event: Option<String>,
    /// The `data:` lines, joined with `\n`.
    pub data: String,
    /// The last event id seen in the stream so far (ids persist across events).
    pub id: Option<String>,
    /// A `retry:` value (milliseconds) given within this event.
    pub retry: Option<u64>,
}

/// A dispatched event borrowed from the framer (no allocation per event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SseEventRef<'a> {
    /// The `event:` type, when the event named one.
    pub event: Option<&'a str>,
    /// The `data:` lines, joined with `\n`.
    pub data: &'a str,
    /// The last event id seen in the stream so far.
    pub id: Option<&'a str>,
    /// A `retry:` value (milliseconds) given within this event.
    pub retry: Option<u64>,
}

impl SseEventRef<'_> {
    /// An owned copy.
    pub fn to_owned_event(&self) -> SseEvent {
        SseEvent {
            event: self.event.map(str::to_owned),
            data: self.data.to_owned(),
            id: self.id.map(str::to_owned),
            retry: self.retry,
        }
    }
}

/// Splits a byte stream into SSE events; see the [module docs](self).
#[derive(Debug)]
pub struct SseFramer {
    buf: Vec<u8>,
    /// Start of the line being read.
    pos: usize,
    /// `buf[pos..scan]` holds no line terminator.
    scan: usize,
    max_event: usize,
    started: bool,
    failed: bool,
    /// Invalid UTF-8 is an error instead of U+FFFD.
    strict_utf8: bool,
    /// A line held invalid UTF-8 (strict mode); the framer fails at the next step.
    invalid_utf8: bool,
    finished: bool,
    // The event being assembled.
    data: String,
    event_type: String,
    last_id: Option<String>,
    retry: Option<u64>,
    // The event last dispatched (kept to lend it out).
    out_data: String,
    /// When set, the event last dispatched is the single data line `buf[start..end]`
    /// (unchecked UTF-8) instead of `out_data`.
    out_span: Option<(usize, usize)>,
    out_event: String,
    out_retry: Option<u64>,
    /// Tests compare the fast path against the line-by-line one.
    #[cfg(test)]
    no_fast_path: bool,
}

impl Default for SseFramer {
    fn default() -> Self {
        Self::new()
    }
}

/// The bytes as text; invalid UTF-8 sequences become U+FFFD, or `None` when `strict`.
/// Valid input (the normal case) takes the fast validation path and is borrowed.
fn field_text(bytes: &[u8], strict: bool) -> Option<Cow<'_, str>> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(Cow::Borrowed(text)),
        Err(_) if strict => None,
        Err(_) => Some(String::from_utf8_lossy(bytes)),
    }
}

impl SseFramer {
    /// A framer with the [`DEFAULT_MAX_EVENT`] limit.
    pub fn new() -> Self {
        Self::with_max_event(DEFAULT_MAX_EVENT)
    }

    /// A framer whose events (data plus the line being read) may be at most `max_event` bytes.
    pub fn with_max_event(max_event: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            max_event,
            started: false,
            failed: false,
            strict_utf8: false,
            invalid_utf8: false,
            finished: false,
            data: String::new(),
            event_type: String::new(),
            last_id: None,
            retry: None,
            out_data: String::new(),
            out_span: None,
            out_event: String::new(),
            out_retry: None,
            #[cfg(test)]
            no_fast_path: false,
        }
    }

    /// Makes invalid UTF-8 in a field an error ([`FrameError::InvalidUtf8`]) instead of
    /// replacing it with U+FFFD as the spec says: an upstream that sends it is broken, and a
    /// silently altered answer is worse than a loud failure.
    #[must_use]
    pub fn strict_utf8(mut self) -> Self {
        self.strict_utf8 = true;
        self
    }

    /// Appends bytes. Bytes pushed after an error or after [`finish`](Self::finish) are dropped.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed || self.finished || chunk.is_empty() {
            return;
        }
        let dropped = compact(&mut self.buf, self.pos);
        self.pos -= dropped;
        self.scan -= dropped;
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete event, or `None` when more input is needed.
    pub fn next_event(&mut self) -> Option<Result<SseEvent, FrameError>> {
        self.next_event_ref().map(|r| r.map(|e| e.to_owned_event()))
    }

    /// Like [`next_event`](Self::next_event), but lends the event out instead of allocating.
    pub fn next_event_ref(&mut self) -> Option<Result<SseEventRef<'_>, FrameError>> {
        match self.advance(false)? {
            Ok(()) => Some(self.dispatched()),
            Err(e) => Some(Err(e)),
        }
    }

    /// At end of input: the remaining events, including a last one whose blank line never
    /// came. Call it until it returns `None`.
    pub fn finish(&mut self) -> Option<Result<SseEvent, FrameError>> {
        self.finish_ref().map(|r| r.map(|e| e.to_owned_event()))
    }

    /// Like [`finish`](Self::finish), borrowing.
    pub fn finish_ref(&mut self) -> Option<Result<SseEventRef<'_>, FrameError>> {
        match self.advance(true)? {
            Ok(()) => Some(self.dispatched()),
            Err(e) => Some(Err(e)),
        }
    }

    /// The event `advance` has just dispatched. A data line lent out of the buffer is
    /// checked here, once: in strict mode invalid UTF-8 fails the framer (as it does when
    /// the line is copied), otherwise it is replaced and held to the limit like a copied line.
    fn dispatched(&mut self) -> Result<SseEventRef<'_>, FrameError> {
        let data = match self.out_span.take() {
            None => self.out_data.as_str(),
            Some((start, end)) => match std::str::from_utf8(&self.buf[start..end]) {
                Ok(text) => text,
                // `buf` stays borrowed in these arms (the text above is lent out of it), so
                // a failure is `fail` on the other fields, and the next `advance` releases
                // `buf`.
                Err(_) if self.strict_utf8 => {
                    self.invalid_utf8 = true;
                    self.failed = true;
                    self.data = String::new();
                    return Err(FrameError::InvalidUtf8);
                }
                Err(_) => {
                    self.out_data = String::from_utf8_lossy(&self.buf[start..end]).into_owned();
                    if self.out_data.len() + 1 > self.max_event {
                        self.failed = true;
                        self.data = String::new();
                        return Err(FrameError::EventTooLong {
                            max: self.max_event,
                        });
                    }
                    self.out_data.as_str()
                }
            },
        };
        Ok(SseEventRef {
            event: (!self.out_event.is_empty()).then_some(self.out_event.as_str()),
            data,
            id: self.last_id.as_deref(),
            retry: self.out_retry,
        })
    }

    fn fail(&mut self) -> Option<Result<(), FrameError>> {
        let error = if self.invalid_utf8 {
            FrameError::InvalidUtf8
        } else {
            FrameError::EventTooLong {
                max: self.max_event,
            }
        };
        self.failed = true;
        self.buf = Vec::new();
        self.data = String::new();
        self.pos = 0;
        self.scan = 0;
        Some(Err(error))
    }

    /// Reads lines until an event is dispatched (`Some(Ok)`, the event in `out_*`), more
    /// input is needed (`None`), or a limit is hit.
    fn advance(&mut self, at_end: bool) -> Option<Result<(), FrameError>> {
        if self.failed || self.finished {
            if self.failed && self.buf.capacity() != 0 {
                // Failed while an event was lent out of the buffer (`dispatched`).
                self.buf = Vec::new();
                self.pos = 0;
                self.scan = 0;
            }
            return None;
        }
        if !self.started {
            let avail = &self.buf[self.pos..];
            if avail.len() < BOM.len() && BOM.starts_with(avail) && !at_end {
                return None;
            }
            if avail.starts_with(BOM) {
                self.pos += BOM.len();
                self.scan = self.pos;
            }
            self.started = true;
        }
        loop {
            let found = match self.buf.get(self.scan..) {
                Some(rest) if !rest.is_empty() => memchr::memchr2(b'\r', b'\n', rest),
                _ => None,
            };
            let (line_end, next) = match found {
                Some(i) => {
                    let at = self.scan + i;
                    if self.buf[at] == b'\r' {
                        match self.buf.get(at + 1) {
                            Some(b'\n') => (at, at + 2),
                            Some(_) => (at, at + 1),
                            // A CR at the end: wait to see whether LF follows.
                            None if !at_end => {
                                self.scan = at;
                                return self.check_size();
                            }
                            None => (at, at + 1),
                        }
                    } else {
                        (at, at + 1)
                    }
                }
                None => {
                    self.scan = self.buf.len();
                    if !at_end {
                        return self.check_size();
                    }
                    self.finished = true;
                    if self.pos < self.buf.len() {
                        let (start, end) = (self.pos, self.buf.len());
                        self.pos = end;
                        if self.line(start, end) {
                            return Some(Ok(()));
                        }
                        if self.invalid_utf8 || self.data.len() > self.max_event {
                            return self.fail();
                        }
                    }
                    // End of input completes a pending event.
                    return if self.dispatch() { Some(Ok(())) } else { None };
                }
            };
            let start = self.pos;
            if let Some(after) = self.lone_data_line(start, line_end, next) {
                self.pos = after;
                self.scan = after;
                return Some(Ok(()));
            }
            self.pos = next;
            self.scan = next;
            if self.line(start, line_end) {
                return Some(Ok(()));
            }
            if self.invalid_utf8 || self.data.len() > self.max_event {
                return self.fail();
            }
        }
    }

    fn check_size(&mut self) -> Option<Result<(), FrameError>> {
        if self.data.len() + (self.buf.len() - self.pos) > self.max_event {
            return self.fail();
        }
        None
    }

    /// The fast path: when no event is being assembled, `buf[start..end]` is a `data:`
    /// line within the limit and the line from `next` is blank (its end already
    /// received), dispatches the line's value in place (`out_span`) and returns where the
    /// line after the blank one starts. Exactly what `line` on both lines would do, minus
    /// the copy and the UTF-8 check, which [`dispatched`](Self::dispatched) does.
    #[inline]
    fn lone_data_line(&mut self, start: usize, end: usize, next: usize) -> Option<usize> {
        #[cfg(test)]
        if self.no_fast_path {
            return None;
        }
        if !(self.data.is_empty() && self.event_type.is_empty() && self.retry.is_none()) {
            return None;
        }
        let line = self.buf.get(start..end)?;
        let value = line.strip_prefix(b"data:")?;
        let value = value.strip_prefix(b" ").unwrap_or(value);
        // The copied line would count its value and a `\n` toward the limit.
        if value.len() >= self.max_event {
            return None;
        }
        let after = match self.buf.get(next..)? {
            [b'\n', ..] => next + 1,
            [b'\r', b'\n', ..] => next + 2,
            // A CR followed by another byte; a CR at the end of the buffer may still be
            // followed by LF, which the slow path waits for.
            [b'\r', _, ..] => next + 1,
            _ => return None,
        };
        self.out_span = Some((end - value.len(), end));
        self.out_event.clear();
        self.out_retry = None;
        Some(after)
    }

    /// Handles one line; true when it dispatched an event.
    fn line(&mut self, start: usize, end: usize) -> bool {
        let line = &self.buf[start..end];
        if line.is_empty() {
            return self.dispatch();
        }
        if line[0] == b':' {
            return false;
        }
        let colon = if line.starts_with(b"data:") {
            Some(4)
        } else {
            memchr::memchr(b':', line)
        };
        let (name, value) = match colon {
            Some(c) => {
                let v = &line[c + 1..];
                (&line[..c], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &line[line.len()..]),
        };
        let Some(value) = field_text(value, self.strict_utf8) else {
            self.invalid_utf8 = true;
            return false;
        };
        match name {
            b"data" => {
                self.data.push_str(&value);
                self.data.push('\n');
            }
            b"event" => {
                self.event_type.clear();
                self.event_type.push_str(&value);
            }
            b"id" if !value.contains('\0') => {
                self.last_id = Some(value.into_owned());
            }
            b"retry" => {
                if let Ok(ms) = value.parse::<u64>() {
                    self.retry = Some(ms);
                }
            }
            _ => {}
        }
        false
    }

    /// Ends the event being assembled; true when it had data and is now in `out_*`.
    fn dispatch(&mut self) -> bool {
        let retry = self.retry.take();
        if self.data.is_empty() {
            self.event_type.clear();
            return false;
        }
        if self.data.ends_with('\n') {
            self.data.pop();
        }
        std::mem::swap(&mut self.out_data, &mut self.data);
        std::mem::swap(&mut self.out_event, &mut self.event_type);
        self.data.clear();
        self.event_type.clear();
        self.out_retry = retry;
        true
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Everything a framer gives for `input` pushed in pieces cut at `cuts`: the events
    /// (and errors) after each push, then at finish.
    fn run(
        mut framer: SseFramer,
        input: &[u8],
        cuts: &[usize],
    ) -> Vec<Result<SseEvent, FrameError>> {
        let mut out = Vec::new();
        let mut at = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        cuts.push(input.len());
        for cut in cuts {
            framer.push(&input[at..cut]);
            at = cut;
            while let Some(ev) = framer.next_event_ref() {
                out.push(ev.map(|e| e.to_owned_event()));
            }
        }
        while let Some(ev) = framer.finish_ref() {
            out.push(ev.map(|e| e.to_owned_event()));
        }
        out
    }

    fn framer(strict: bool, max_event: usize, fast: bool) -> SseFramer {
        let mut framer = SseFramer::with_max_event(max_event);
        framer.strict_utf8 = strict;
        framer.no_fast_path = !fast;
        framer
    }

    fn line() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            4 => "data: ?[a-z {}\":é]{0,12}".prop_map(String::into_bytes),
            1 => "data:( )?[a-z]{0,4}".prop_map(|s| {
                // Invalid UTF-8: a lone continuation byte, a truncated sequence, 0xFF.
                let mut b = s.into_bytes();
                b.extend_from_slice(b"\x80x\xc3\xff");
                b
            }),
            1 => Just(b"data".to_vec()),
            1 => Just(b"data:".to_vec()),
            1 => "event: ?[a-z]{0,6}".prop_map(String::into_bytes),
            1 => "id: ?[a-z0-9]{0,4}".prop_map(String::into_bytes),
            1 => "retry: ?[0-9x]{0,4}".prop_map(String::into_bytes),
            1 => ": ?[a-z ]{0,10}".prop_map(String::into_bytes),
            1 => "[a-z]{1,5}(: ?[a-z]{0,4})?".prop_map(String::into_bytes),
            3 => Just(Vec::new()),
        ]
    }

    fn input() -> impl Strategy<Value = Vec<u8>> {
        let terminator = prop_oneof![Just(&b"\n"[..]), Just(&b"\r\n"[..]), Just(&b"\r"[..])];
        (
            proptest::option::of(Just(BOM)),
            proptest::collection::vec((line(), terminator), 0..16),
            proptest::collection::vec(any::<u8>(), 0..3),
        )
            .prop_map(|(bom, lines, tail)| {
                let mut input = bom.map(<[u8]>::to_vec).unwrap_or_default();
                for (line, term) in lines {
                    input.extend_from_slice(&line);
                    input.extend_from_slice(term);
                }
                input.extend_from_slice(&tail);
                input
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2048))]

        /// Lending a lone data line out of the buffer gives exactly what copying it does:
        /// the same events, errors and limits, in strict and lenient mode, for any split.
        #[test]
        fn fast_path_is_the_line_by_line_path(
            input in input(),
            cuts in proptest::collection::vec(any::<usize>(), 0..6),
            strict in any::<bool>(),
            max_event in prop_oneof![Just(4usize), Just(8), Just(16), Just(DEFAULT_MAX_EVENT)],
        ) {
            let fast = run(framer(strict, max_event, true), &input, &cuts);
            let slow = run(framer(strict, max_event, false), &input, &cuts);
            prop_assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&input));
        }
    }

    #[test]
    fn lone_data_lines_are_lent_and_checked() {
        let input = b"data: a\n\ndata:b\r\n\r\ndata:  c\r\rdata: \xff\n\ndata: d\n\n";
        let lenient = run(framer(false, DEFAULT_MAX_EVENT, true), input, &[]);
        let data: Vec<_> = lenient
            .iter()
            .map(|e| e.as_ref().map(|e| e.data.as_str()))
            .collect();
        assert_eq!(data, [Ok("a"), Ok("b"), Ok(" c"), Ok("\u{fffd}"), Ok("d")]);
        let strict = run(framer(true, DEFAULT_MAX_EVENT, true), input, &[]);
        let data: Vec<_> = strict
            .iter()
            .map(|e| e.as_ref().map(|e| e.data.as_str()))
            .collect();
        assert_eq!(
            data,
            [Ok("a"), Ok("b"), Ok(" c"), Err(&FrameError::InvalidUtf8)]
        );
        // The limit counts the value and its newline; U+FFFD counts three bytes.
        let at_limit = run(framer(false, 4, true), b"data: abc\n\n", &[]);
        assert_eq!(at_limit[0].as_ref().map(|e| e.data.as_str()), Ok("abc"));
        for input in [&b"data: abcd\n\n"[..], b"data: a\xff\n\n"] {
            assert_eq!(
                run(framer(false, 4, true), input, &[]),
                [Err(FrameError::EventTooLong { max: 4 })]
            );
        }
        // After a failure the buffer is released and nothing more comes.
        let mut f = framer(true, DEFAULT_MAX_EVENT, true);
        f.push(b"data: \xff\n\ndata: ok\n\n");
        assert_eq!(f.next_event_ref(), Some(Err(FrameError::InvalidUtf8)));
        assert_eq!(f.next_event_ref(), None);
        assert_eq!(f.buf.capacity(), 0);
        f.push(b"data: more\n\n");
        assert_eq!(f.finish_ref(), None);
    }
}
