//! The pieces of the hand-written fast paths for common stream chunks
//! (`openai::fast_chunk`, `ollama::fast_chunk`): a cursor over compact JSON whose strings
//! have no escapes, which the scanners use to accept a strict subset of JSON and leave
//! everything else to serde.

/// Whether `bytes` holds a byte below 0x20 or a `\`.
#[inline]
fn has_control_or_backslash(bytes: &[u8]) -> bool {
    any_byte(bytes, |b| (b < 0x20) | (b == b'\\'))
}

/// Whether a JSON string of `bytes` needs escapes: a byte below 0x20, a `"` or a `\` (the
/// bytes serde_json escapes; every other byte is written as it is).
#[inline]
pub(crate) fn needs_escape(bytes: &[u8]) -> bool {
    any_byte(bytes, |b| (b < 0x20) | (b == b'"') | (b == b'\\'))
}

/// Whether any byte of `bytes` matches `hit`: 32 bytes at a time without early exit (LLVM
/// turns a block into a few wide compares), the tail as the last 32 bytes again.
#[inline]
fn any_byte(bytes: &[u8], hit: impl Fn(u8) -> bool + Copy) -> bool {
    let any = |bytes: &[u8]| bytes.iter().fold(false, |found, &b| found | hit(b));
    let block = |bytes: &[u8; 32]| any(bytes);
    let mut blocks = bytes.chunks_exact(32);
    let mut found = false;
    for b in &mut blocks {
        found |= b.try_into().is_ok_and(block);
    }
    if blocks.remainder().is_empty() {
        return found;
    }
    found
        | match bytes.len().checked_sub(32) {
            // Bytes already checked are checked again: harmless for "any".
            Some(start) => bytes
                .get(start..)
                .and_then(|b| b.try_into().ok())
                .is_none_or(block),
            None => any(bytes),
        }
}

/// The position of the first `"` in `bytes`. The strings of a chunk are short (keys, ids,
/// a token or two), where `memchr`'s set-up costs more than it saves: eight bytes at a time
/// in a word instead.
#[inline]
fn find_quote(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    const QUOTES: u64 = u64::from_ne_bytes([b'"'; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in &mut words {
        let word = u64::from_le_bytes(word.try_into().ok()?);
        let x = word ^ QUOTES;
        // The lowest set high bit marks the first zero byte of `x` exactly (a borrow only
        // makes false marks above a true one).
        let zeros = x.wrapping_sub(ONES) & !x & HIGHS;
        if zeros != 0 {
            return Some(at + (zeros.trailing_zeros() / 8) as usize);
        }
        at += 8;
    }
    let tail = words.remainder().iter().position(|&b| b == b'"')?;
    Some(at + tail)
}

/// A chunk seen before with holes where its plain strings may differ: a stream repeats
/// most of every chunk (OpenAI: `id`, `object`, `created`, `model` and the choice's frame;
/// Ollama: `model`, the message's frame), so the next chunk is usually the learned text with
/// other strings in the holes (content, Ollama's `created_at`). Reading it costs a
/// comparison per piece and a scan of each hole, where a scanner walks every key.
#[derive(Debug, Default)]
pub(crate) struct RepeatedChunk {
    /// The learned chunk without the holes' contents.
    text: Vec<u8>,
    /// Where each hole was in `text`, in order.
    holes: Vec<usize>,
}

impl RepeatedChunk {
    /// The holes' contents of `data` when it is the learned chunk with other plain strings
    /// (no quote, backslash or control byte; valid UTF-8) in its `N` holes.
    pub(crate) fn read<'a, const N: usize>(&self, data: &'a [u8]) -> Option<[&'a str; N]> {
        if self.text.is_empty() || self.holes.len() != N {
            return None;
        }
        let mut found = [""; N];
        let (mut rest, mut from) = (data, 0);
        for (slot, &at) in found.iter_mut().zip(&self.holes) {
            rest = rest.strip_prefix(self.text.get(from..at)?)?;
            let end = find_quote(rest)?;
            let (hole, tail) = rest.split_at(end);
            if has_control_or_backslash(hole) {
                return None;
            }
            *slot = std::str::from_utf8(hole).ok()?;
            (rest, from) = (tail, at);
        }
        (rest == self.text.get(from..)?).then_some(found)
    }

    /// Learns `data` with holes at `holes`: the insides of plain strings of `data` (slices
    /// of it), in order. Nothing is learned from anything else.
    pub(crate) fn learn(&mut self, data: &[u8], holes: &[&str]) {
        self.text.clear();
        self.holes.clear();
        let base = data.as_ptr() as usize;
        let mut from = 0;
        for hole in holes {
            let start = (hole.as_ptr() as usize).wrapping_sub(base);
            let end = start.wrapping_add(hole.len());
            let inside = data.get(start..end).map(<[u8]>::as_ptr) == Some(hole.as_ptr());
            // Each hole is a string's inside: a quote on either side, after the last hole.
            let quoted =
                start > from && data.get(start - 1) == Some(&b'"') && data.get(end) == Some(&b'"');
            let Some(before) = data.get(from..start).filter(|_| inside && quoted) else {
                self.text.clear();
                self.holes.clear();
                return;
            };
            self.text.extend_from_slice(before);
            self.holes.push(self.text.len());
            from = end;
        }
        self.text
            .extend_from_slice(data.get(from..).unwrap_or_default());
    }
}

/// A position in compact JSON text without control bytes or backslashes (checked when
/// made): every string in it is escape-free, so a string ends at the next quote.
pub(crate) struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor at the start of `text`; `None` when `text` holds a byte below 0x20 or a
    /// `\\` anywhere (whitespace or escapes: outside the subset the scanners accept).
    pub(crate) fn new(text: &'a str) -> Option<Self> {
        let bytes = text.as_bytes();
        if has_control_or_backslash(bytes) {
            return None;
        }
        Some(Self {
            text,
            bytes,
            pos: 0,
        })
    }

    /// Whether all the text has been read.
    #[inline]
    pub(crate) fn at_end(&self) -> bool {
        self.pos == self.bytes.len()
    }

    /// An object whose keys are among `keys` (at most 16, each given as its name, closing
    /// quote and colon), each at most once: calls `value` with the key's index to read
    /// each value. `None` on any other key, a repeated key, or a value `value` refuses.
    #[inline(always)]
    pub(crate) fn object(
        &mut self,
        keys: &[&[u8]],
        mut value: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        let mut seen = 0u16;
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            self.eat(b'"')?;
            let index = self.key(keys)?;
            let bit = 1u16.checked_shl(u32::try_from(index).ok()?)?;
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            value(self, index)?;
            match self.next()? {
                b',' => {}
                b'}' => return Some(()),
                _ => return None,
            }
        }
    }

    /// After a key's opening quote: which of `keys` (name, quote, colon) comes next,
    /// consumed. Compares the first byte before the rest, so a miss costs one compare.
    #[inline(always)]
    fn key(&mut self, keys: &[&[u8]]) -> Option<usize> {
        let rest = self.bytes.get(self.pos..)?;
        let first = *rest.first()?;
        for (index, key) in keys.iter().enumerate() {
            if key.first() == Some(&first) && rest.starts_with(key) {
                self.pos += key.len();
                return Some(index);
            }
        }
        None
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline]
    pub(crate) fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    #[inline]
    pub(crate) fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Consumes `null` if it comes next.
    #[inline]
    pub(crate) fn null(&mut self) -> bool {
        self.literal(b"null")
    }

    /// Consumes `word` (a JSON literal such as `false`) if it comes next.
    #[inline]
    pub(crate) fn literal(&mut self, word: &[u8]) -> bool {
        let hit = self
            .bytes
            .get(self.pos..self.pos + word.len())
            .is_some_and(|b| b == word);
        if hit {
            self.pos += word.len();
        }
        hit
    }

    /// A string (escape- and control-free, as the whole text is); its contents.
    #[inline]
    pub(crate) fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let end = start + find_quote(self.bytes.get(start..)?)?;
        self.pos = end + 1;
        // Both ends sit next to an ASCII quote, so they are char boundaries.
        self.text.get(start..end)
    }

    /// A JSON unsigned integer (no leading zeros, no fraction or exponent, at most 19
    /// digits so that it fits a `u64`).
    pub(crate) fn unsigned(&mut self) -> Option<u64> {
        let start = self.pos;
        let mut n = 0u64;
        while let Some(&b) = self.bytes.get(self.pos) {
            let digit = b.wrapping_sub(b'0');
            if digit > 9 {
                break;
            }
            // At most 19 digits: below 10^19, which a u64 holds.
            if self.pos - start == 19 {
                return None;
            }
            n = n * 10 + u64::from(digit);
            self.pos += 1;
        }
        let len = self.pos - start;
        if len == 0 || (len > 1 && self.bytes[start] == b'0') {
            return None;
        }
        Some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `find` sees each of `hits` at every position of every length, and none of `misses`.
    fn finds_anywhere(find: fn(&[u8]) -> bool, hits: &[u8], misses: &[u8]) {
        for len in 0..100 {
            let clean = vec![b'a'; len];
            assert!(!find(&clean));
            for at in 0..len {
                for (&byte, expected) in hits
                    .iter()
                    .zip([true; 8])
                    .chain(misses.iter().zip([false; 8]))
                {
                    let mut bytes = clean.clone();
                    bytes[at] = byte;
                    assert_eq!(find(&bytes), expected, "{len} {at} {byte}");
                }
            }
        }
    }

    #[test]
    fn control_or_backslash_anywhere() {
        finds_anywhere(
            has_control_or_backslash,
            &[0x00, 0x1f, b'\\', b'\n'],
            &[0x20, b'"'],
        );
    }

    #[test]
    fn needs_escape_anywhere() {
        finds_anywhere(
            needs_escape,
            &[0x00, 0x1f, b'\\', b'"'],
            &[0x20, 0x7f, 0xc3],
        );
    }

    proptest::proptest! {
        #[test]
        fn a_written_string_is_serde_jsons(text in "(?s).{0,80}") {
            let mut out = b"x".to_vec();
            crate::json_util::write_json_str(&mut out, &text);
            let expected = format!("x{}", serde_json::to_string(&text).unwrap_or_default());
            proptest::prop_assert_eq!(String::from_utf8(out).unwrap_or_default(), expected);
        }
    }

    #[test]
    fn find_quote_is_a_plain_search() {
        // Near-misses of `"` (0x22) in every lane, then quotes at every position.
        let filler = [0x21u8, 0x23, 0xA2, 0x02, 0x20, 0x62, 0xFF, 0x00, 0x12];
        for len in 0..40 {
            let base: Vec<u8> = (0..len).map(|i| filler[i % filler.len()]).collect();
            assert_eq!(find_quote(&base), None);
            for q in 0..len {
                let mut bytes = base.clone();
                bytes[q] = b'"';
                assert_eq!(find_quote(&bytes), Some(q), "{bytes:?}");
                for r in q + 1..len {
                    let mut two = bytes.clone();
                    two[r] = b'"';
                    assert_eq!(find_quote(&two), Some(q), "{two:?}");
                }
            }
        }
    }
}
