//! Incremental NDJSON framing: bytes in any chunking -> complete, non-blank lines.
//!
//! The framer keeps one buffer and a scan position, so every byte is looked at once
//! however the input is chunked (also inside a UTF-8 sequence: framing is on bytes).
//! Lines end with `\n` (a `\r` before it is removed); blank lines are skipped; the last
//! line may lack its newline and is returned by [`LineFramer::finish`]. A line longer than
//! the configured maximum is an error instead of a growing buffer.
//!
//! ```
//! use switchyard_stream::ndjson::LineFramer;
//! let mut framer = LineFramer::new();
//! framer.push(b"{\"a\":1}\r\n\n{\"b\"");
//! assert_eq!(framer.next_line().unwrap().unwrap(), b"{\"a\":1}");
//! assert!(framer.next_line().is_none());
//! framer.push(b":2}");
//! assert_eq!(framer.finish().unwrap().unwrap(), b"{\"b\":2}");
//! assert!(framer.finish().is_none());
//! ```

use switchyard_core::ProviderError;

/// The default longest line (16 MiB).
pub const DEFAULT_MAX_LINE: usize = 16 * 1024 * 1024;

/// Consumed bytes are dropped from the front of the buffer once they are at least this
/// many and at least half of it, so compaction stays linear overall.
const COMPACT_MIN: usize = 4096;

/// A framing failure. After returning one, a framer yields nothing more.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// A line grew past the maximum before its end arrived.
    #[error("a line is longer than the limit of {max} bytes")]
    LineTooLong {
        /// The configured limit.
        max: usize,
    },
    /// An SSE event (its data plus the line being read) grew past the maximum.
    #[error("an SSE event is longer than the limit of {max} bytes")]
    EventTooLong {
        /// The configured limit.
        max: usize,
    },
    /// A field of an SSE event is not valid UTF-8 (framers built with
    /// [`crate::sse::SseFramer::strict_utf8`] only; others replace such bytes).
    #[error("an SSE event is not valid UTF-8")]
    InvalidUtf8,
}

impl FrameError {
    /// A stable snake_case code for logs and metrics.
    pub fn reason_code(&self) -> &'static str {
        match self {
            FrameError::LineTooLong { .. } => "line_too_long",
            FrameError::EventTooLong { .. } => "event_too_long",
            FrameError::InvalidUtf8 => "invalid_utf8",
        }
    }
}

impl From<FrameError> for ProviderError {
    fn from(err: FrameError) -> Self {
        ProviderError::malformed(err.to_string()).with_source(err)
    }
}

/// Drops `pos` consumed bytes from the front of `buf` when that is cheap relative to what
/// was consumed; returns how many bytes were dropped.
pub(crate) fn compact(buf: &mut Vec<u8>, pos: usize) -> usize {
    if pos == 0 {
        return 0;
    }
    if pos >= buf.len() {
        buf.clear();
        return pos;
    }
    if pos >= COMPACT_MIN && pos >= buf.len() / 2 {
        buf.drain(..pos);
        return pos;
    }
    0
}

/// Splits a byte stream into lines; see the [module docs](self).
#[derive(Debug)]
pub struct LineFramer {
    buf: Vec<u8>,
    /// Start of the first unconsumed byte.
    pos: usize,
    /// `buf[pos..scan]` holds no `\n`.
    scan: usize,
    max_line: usize,
    failed: bool,
    finished: bool,
}

impl Default for LineFramer {
    fn default() -> Self {
        Self::new()
    }
}

impl LineFramer {
    /// A framer with the [`DEFAULT_MAX_LINE`] limit.
    pub fn new() -> Self {
        Self::with_max_line(DEFAULT_MAX_LINE)
    }

    /// A framer whose lines may be at most `max_line` bytes (without the newline).
    pub fn with_max_line(max_line: usize) -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            scan: 0,
            max_line,
            failed: false,
            finished: false,
        }
    }

    /// Appends bytes. Bytes pushed after an error are dropped.
    pub fn push(&mut self, chunk: &[u8]) {
        if self.failed || chunk.is_empty() {
            return;
        }
        let dropped = compact(&mut self.buf, self.pos);
        self.pos -= dropped;
        self.scan -= dropped;
        self.buf.extend_from_slice(chunk);
    }

    /// Frames `chunk` and hands every complete, non-blank line to `on_line` (exactly the
    /// lines `push` followed by `next_line` would give), stopping at the first error. Lines
    /// that lie wholly inside `chunk` are handed out in place; only a line that spans chunks
    /// is copied into the buffer.
    ///
    /// ```
    /// use switchyard_stream::ndjson::{FrameError, LineFramer};
    /// let mut framer = LineFramer::new();
    /// let mut lines = Vec::new();
    /// framer.push_lines(b"{\"a\":1}\r\n\n{\"b\"", |l| Ok::<_, FrameError>(lines.push(l.to_vec())))?;
    /// framer.push_lines(b":2}\n", |l| Ok::<_, FrameError>(lines.push(l.to_vec())))?;
    /// assert_eq!(lines, vec![b"{\"a\":1}".to_vec(), b"{\"b\":2}".to_vec()]);
    /// # Ok::<(), FrameError>(())
    /// ```
    pub fn push_lines<E: From<FrameError>>(
        &mut self,
        chunk: &[u8],
        mut on_line: impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.failed || self.finished {
            return Ok(());
        }
        let mut rest = chunk;
        if self.pos < self.buf.len() {
            // Complete the pending line first, copying only up to its end.
            let Some(nl) = memchr::memchr(b'\n', rest) else {
                self.push(rest);
                return self.drain_lines(&mut on_line);
            };
            self.push(&rest[..=nl]);
            self.drain_lines(&mut on_line)?;
            rest = &rest[nl + 1..];
            if self.failed {
                return Ok(());
            }
        }
        let complete = memchr::memrchr(b'\n', rest).map_or(0, |i| i + 1);
        let mut start = 0;
        // `rest[..complete]` ends with a newline: no search past the last line.
        while start < complete {
            let Some(i) = memchr::memchr(b'\n', &rest[start..complete]) else {
                break;
            };
            let nl = start + i;
            let mut end = nl;
            if end > start && rest[end - 1] == b'\r' {
                end -= 1;
            }
            let line = &rest[start..end];
            start = nl + 1;
            if line.len() > self.max_line {
                self.failed = true;
                self.buf = Vec::new();
                self.pos = 0;
                self.scan = 0;
                return Err(FrameError::LineTooLong { max: self.max_line }.into());
            }
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            on_line(line)?;
        }
        if complete == rest.len() && self.pos == self.buf.len() {
            // Nothing left over and nothing buffered: no line to look for.
            return Ok(());
        }
        self.push(&rest[complete..]);
        self.drain_lines(&mut on_line)
    }

    fn drain_lines<E: From<FrameError>>(
        &mut self,
        on_line: &mut impl FnMut(&[u8]) -> Result<(), E>,
    ) -> Result<(), E> {
        while let Some(line) = self.next_line() {
            on_line(line?)?;
        }
        Ok(())
    }

    /// Bytes received but not yet returned as lines.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The next complete, non-blank line without its line ending; `None` when more input is
    /// needed. An over-long line is an error (also one whose end has not arrived yet).
    pub fn next_line(&mut self) -> Option<Result<&[u8], FrameError>> {
        self.next_inner(false)
    }

    /// At end of input: like [`next_line`](Self::next_line), but the trailing bytes after
    /// the last newline count as a line too. Call it until it returns `None`.
    pub fn finish(&mut self) -> Option<Result<&[u8], FrameError>> {
        self.next_inner(true)
    }

    fn fail(&mut self) -> Option<Result<&[u8], FrameError>> {
        self.failed = true;
        self.buf = Vec::new();
        self.pos = 0;
        self.scan = 0;
        Some(Err(FrameError::LineTooLong { max: self.max_line }))
    }

    fn next_inner(&mut self, at_end: bool) -> Option<Result<&[u8], FrameError>> {
        loop {
            if self.failed || self.finished {
                return None;
            }
            let (start, end) = match memchr::memchr(b'\n', &self.buf[self.scan..]) {
                Some(i) => {
                    let nl = self.scan + i;
                    let start = self.pos;
                    self.pos = nl + 1;
                    self.scan = nl + 1;
                    (start, nl)
                }
                None => {
                    self.scan = self.buf.len();
                    if self.buf.len() - self.pos > self.max_line.saturating_add(1) {
                        return self.fail();
                    }
                    if !at_end {
                        // A pending line may carry one `\r` beyond the limit.
                        if self.buf.len() - self.pos > self.max_line
                            && self.buf.last() != Some(&b'\r')
                        {
                            return self.fail();
                        }
                        return None;
                    }
                    self.finished = true;
                    let start = self.pos;
                    self.pos = self.buf.len();
                    (start, self.buf.len())
                }
            };
            let mut end = end;
            if end > start && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if end - start > self.max_line {
                return self.fail();
            }
            let line = &self.buf[start..end];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            return Some(Ok(&self.buf[start..end]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines (or the error) `push_lines` hands out for `input` cut at `cuts`, then `finish`.
    fn by_push_lines(input: &[u8], cuts: &[usize], max: usize) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut f = LineFramer::with_max_line(max);
        let mut out = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            let res = f.push_lines(&input[at..cut], |l| {
                out.push(Ok(l.to_vec()));
                Ok::<_, FrameError>(())
            });
            if let Err(e) = res {
                out.push(Err(e));
            }
            at = cut;
        }
        while let Some(l) = f.finish() {
            out.push(l.map(<[u8]>::to_vec));
        }
        out
    }

    /// The same through `push` and `next_line`.
    fn by_next_line(input: &[u8], cuts: &[usize], max: usize) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut f = LineFramer::with_max_line(max);
        let mut out = Vec::new();
        let mut at = 0;
        for &cut in cuts.iter().chain([&input.len()]) {
            f.push(&input[at..cut]);
            out.extend(lines(&mut f));
            at = cut;
        }
        while let Some(l) = f.finish() {
            out.push(l.map(<[u8]>::to_vec));
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2048))]

        #[test]
        fn push_lines_gives_what_next_line_gives(
            input in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::prelude::Just(b'\n'),
                    proptest::prelude::Just(b'\r'),
                    proptest::prelude::Just(b' '),
                    proptest::prelude::Just(b'x'),
                    proptest::prelude::Just(b'{'),
                ],
                0..40,
            ),
            cuts in proptest::collection::vec(0usize..40, 0..5),
            max in proptest::prop_oneof![
                proptest::prelude::Just(3usize),
                proptest::prelude::Just(8),
                proptest::prelude::Just(DEFAULT_MAX_LINE),
            ],
        ) {
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(input.len())).collect();
            cuts.sort_unstable();
            proptest::prop_assert_eq!(
                by_push_lines(&input, &cuts, max),
                by_next_line(&input, &cuts, max)
            );
        }
    }

    fn lines(framer: &mut LineFramer) -> Vec<Result<Vec<u8>, FrameError>> {
        let mut out = Vec::new();
        while let Some(l) = framer.next_line() {
            out.push(l.map(<[u8]>::to_vec));
        }
        out
    }

    #[test]
    fn too_long_pending_line_fails_once() {
        let mut f = LineFramer::with_max_line(4);
        f.push(b"abcdef");
        assert_eq!(lines(&mut f), vec![Err(FrameError::LineTooLong { max: 4 })]);
        f.push(b"\nok\n");
        assert!(lines(&mut f).is_empty());
        assert!(f.finish().is_none());
    }

    #[test]
    fn exact_limit_with_crlf_is_accepted() {
        let mut f = LineFramer::with_max_line(4);
        f.push(b"abcd\r");
        assert!(lines(&mut f).is_empty());
        f.push(b"\n");
        assert_eq!(lines(&mut f), vec![Ok(b"abcd".to_vec())]);
    }

    #[test]
    fn compaction_keeps_positions() {
        let mut f = LineFramer::new();
        let line = vec![b'x'; 5000];
        for _ in 0..10 {
            f.push(&line);
            f.push(b"\n");
            assert_eq!(lines(&mut f), vec![Ok(line.clone())]);
        }
        assert!(f.buffered() == 0);
    }
}
