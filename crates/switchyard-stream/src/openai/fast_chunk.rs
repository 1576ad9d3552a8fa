//! A fast path for the common `chat.completion.chunk`: compact JSON with plain (escape-free)
//! strings, one choice at index 0 whose delta has at most a `role` and a `content`, and a
//! `finish_reason` that is `null` or a plain string, `usage` `null` or plain token counts,
//! no `error`.
//!
//! The scanner accepts only a strict subset of JSON for which the serde decoder gives the
//! same result; anything else (whitespace, escapes, other keys, repeated keys, tool calls,
//! usage, errors) returns `None` and the caller falls back to serde.

/// What the decoder needs from a content-only chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ContentChunk<'a> {
    /// The delta's `content`, when present.
    pub(crate) content: Option<&'a str>,
    /// The choice's `finish_reason`, when not `null`.
    pub(crate) finish_reason: Option<&'a str>,
    /// `usage` (`prompt_tokens`, `completion_tokens`), when not `null`.
    pub(crate) usage: Option<(Option<u64>, Option<u64>)>,
}

/// Scans `data` (an SSE event's trimmed data) as a content-only chunk.
pub(crate) fn scan(data: &str) -> Option<ContentChunk<'_>> {
    let mut cur = Cursor {
        text: data,
        bytes: data.as_bytes(),
        pos: 0,
    };
    let mut chunk = ContentChunk::default();
    const KEYS: &[&str] = &[
        "id",
        "object",
        "model",
        "system_fingerprint",
        "created",
        "choices",
        "usage",
    ];
    cur.object(KEYS, |cur, key| {
        match KEYS[key] {
            "created" => {
                cur.unsigned()?;
            }
            "usage" => {
                if !cur.null() {
                    chunk.usage = Some(usage(cur)?);
                }
            }
            "choices" => {
                cur.eat(b'[')?;
                if cur.peek()? != b']' {
                    choice(cur, &mut chunk)?;
                }
                cur.eat(b']')?;
            }
            _ => {
                if !cur.null() {
                    cur.plain_string()?;
                }
            }
        }
        Some(())
    })?;
    (cur.pos == cur.bytes.len()).then_some(chunk)
}

/// One choice object: `index` (must be 0), `delta`, `finish_reason`, `logprobs` (`null`).
fn choice<'a>(cur: &mut Cursor<'a>, chunk: &mut ContentChunk<'a>) -> Option<()> {
    const KEYS: &[&str] = &["index", "delta", "finish_reason", "logprobs"];
    cur.object(KEYS, |cur, key| match KEYS[key] {
        "index" => cur.eat(b'0'),
        "delta" => delta(cur, chunk),
        "finish_reason" => {
            if !cur.null() {
                chunk.finish_reason = Some(cur.plain_string()?);
            }
            Some(())
        }
        _ => cur.null().then_some(()),
    })
}

/// A usage object with up to one each of `prompt_tokens`, `completion_tokens` and
/// `total_tokens`, unsigned integers.
fn usage(cur: &mut Cursor<'_>) -> Option<(Option<u64>, Option<u64>)> {
    let mut counts = [None; 3];
    cur.object(
        &["prompt_tokens", "completion_tokens", "total_tokens"],
        |cur, key| {
            counts[key] = Some(cur.unsigned()?);
            Some(())
        },
    )?;
    Some((counts[0], counts[1]))
}

/// The delta object: `{}` or up to one `role` and one `content`, plain strings.
fn delta<'a>(cur: &mut Cursor<'a>, chunk: &mut ContentChunk<'a>) -> Option<()> {
    cur.object(&["role", "content"], |cur, key| {
        if key == 0 {
            cur.plain_string()?;
        } else if !cur.null() {
            chunk.content = Some(cur.plain_string()?);
        }
        Some(())
    })
}

struct Cursor<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// An object whose keys are among `keys` (at most 8), each at most once: calls
    /// `value` with the key's index to read each value. `None` on any other key, a repeated
    /// key, or a value `value` refuses.
    fn object(
        &mut self,
        keys: &[&str],
        mut value: impl FnMut(&mut Self, usize) -> Option<()>,
    ) -> Option<()> {
        let mut seen = 0u8;
        self.eat(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
            return Some(());
        }
        loop {
            let key = self.plain_string()?;
            self.eat(b':')?;
            let index = keys.iter().position(|k| *k == key)?;
            let bit = 1u8.checked_shl(u32::try_from(index).ok()?)?;
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

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let b = self.peek()?;
        self.pos += 1;
        Some(b)
    }

    fn eat(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Consumes `null` if it comes next.
    fn null(&mut self) -> bool {
        let hit = self.bytes[self.pos..].starts_with(b"null");
        if hit {
            self.pos += 4;
        }
        hit
    }

    /// A string without escapes or control characters; its contents.
    fn plain_string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        let end = start + len;
        if self.bytes[end] != b'"' {
            return None;
        }
        self.pos = end + 1;
        // Both ends sit next to an ASCII quote, so they are char boundaries.
        self.text.get(start..end)
    }

    /// A JSON unsigned integer (no leading zeros, no fraction or exponent, at most 19
    /// digits so that it fits a `u64`).
    fn unsigned(&mut self) -> Option<u64> {
        let start = self.pos;
        let len = self.bytes[start..]
            .iter()
            .position(|b| !b.is_ascii_digit())
            .unwrap_or(self.bytes.len() - start);
        if len == 0 || len > 19 || (len > 1 && self.bytes[start] == b'0') {
            return None;
        }
        self.pos = start + len;
        self.text.get(start..start + len)?.parse().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEAD: &str =
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1700000000,"model":"m","#;

    fn with_choices(choices: &str) -> String {
        format!("{HEAD}\"choices\":{choices}}}")
    }

    #[test]
    fn accepts_content_role_and_finish_chunks() {
        let text = with_choices(
            r#"[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null}]"#,
        );
        assert_eq!(
            scan(&text),
            Some(ContentChunk {
                content: Some("Hi"),
                ..ContentChunk::default()
            })
        );
        let text = with_choices(r#"[{"index":0,"delta":{},"finish_reason":"stop"}]"#);
        assert_eq!(
            scan(&text),
            Some(ContentChunk {
                finish_reason: Some("stop"),
                ..ContentChunk::default()
            })
        );
        assert_eq!(scan(&with_choices("[]")), Some(ContentChunk::default()));
        let text = with_choices(
            r#"[],"usage":{"completion_tokens":5,"prompt_tokens":12,"total_tokens":17}"#,
        );
        assert_eq!(
            scan(&text),
            Some(ContentChunk {
                usage: Some((Some(12), Some(5))),
                ..ContentChunk::default()
            })
        );
        let text = with_choices(
            r#"[{"delta":{"content":"x"},"finish_reason":null,"index":0,"logprobs":null}],"usage":null"#,
        );
        assert_eq!(
            scan(&text),
            Some(ContentChunk {
                content: Some("x"),
                ..ContentChunk::default()
            })
        );
        assert_eq!(scan("{}"), Some(ContentChunk::default()));
    }

    #[test]
    fn falls_back_on_anything_else() {
        for choices in [
            r#"[{"index":0,"delta":{"content":"a\"b"},"finish_reason":null}]"#,
            r#"[{"index":0,"delta":{"content":"a\nb"},"finish_reason":null}]"#,
            r#"[{"index":1,"delta":{"content":"x"},"finish_reason":null}]"#,
            r#"[{"index":0,"delta":{"content":"x"},"finish_reason":null},{"index":0}]"#,
            r#"[{"index":0,"delta":{"content":"x","content":"y"},"finish_reason":null}]"#,
            r#"[{"index":0,"delta":{"tool_calls":[]},"finish_reason":null}]"#,
            r#"[{"index":0,"delta":{"reasoning":"r"},"finish_reason":null}]"#,
            r#"[{"index":0, "delta":{"content":"x"},"finish_reason":null}]"#,
            r#"[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"error":null"#,
            r#"[],"usage":{"prompt_tokens":1,"cached_tokens":2}"#,
            r#"[],"usage":{"prompt_tokens":1,"prompt_tokens":2}"#,
            r#"[],"usage":{"prompt_tokens":1.0}"#,
            r#"[],"usage":{"prompt_tokens":99999999999999999999}"#,
            r#"[],"usage":null,"usage":null"#,
            r#"[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"choices":[]"#,
            r#"[{"index":0,"delta":{"content":"x"},"finish_reason":null}"#,
        ] {
            assert_eq!(scan(&with_choices(choices)), None, "{choices}");
        }
        for text in [
            r#"{"created":0123,"choices":[]}"#,
            r#"{"created":1.5,"choices":[]}"#,
            r#"{"choices":[]} x"#,
            r#"{"choices":[]}}"#,
            r#"{"error":{"message":"m"}}"#,
            r#"{"id":"a""#,
            r#"{"#,
            "",
        ] {
            assert_eq!(scan(text), None, "{text}");
        }
    }
}
