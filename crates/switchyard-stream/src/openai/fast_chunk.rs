//! A fast path for the common `chat.completion.chunk`: compact JSON with plain (escape-free)
//! strings, one choice at index 0 whose delta has at most a `role` and a `content`, and a
//! `finish_reason` that is `null` or a plain string, `usage` `null` or plain token counts,
//! no `error`.
//!
//! The same scanner reads the common whole `chat.completion` ([`scan_whole`]): the same
//! shape with a `message` in place of the `delta`.
//!
//! The scanner accepts only a strict subset of JSON for which the serde decoder gives the
//! same result; anything else (whitespace, escapes, other keys, repeated keys, tool calls,
//! usage, errors) returns `None` and the caller falls back to serde.

use crate::fast_json::Cursor;

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
    scan_as(data, b"delta\":").map(|(chunk, _)| chunk)
}

/// Scans `data` (a whole answer's body, trimmed) as a content-only `chat.completion`: one
/// choice, at index 0, with a `message` of at most a `role` and a `content`. `None` for
/// anything else, a completion without choices or a choice without a message included
/// (errors the serde path names).
pub(crate) fn scan_whole(data: &str) -> Option<ContentChunk<'_>> {
    let (chunk, had_message) = scan_as(data, b"message\":")?;
    had_message.then_some(chunk)
}

/// [`scan`] with `message_key` (name, quote, colon) for the choice's message; also whether
/// a choice with that message was read.
#[inline(always)]
fn scan_as<'a>(data: &'a str, message_key: &[u8]) -> Option<(ContentChunk<'a>, bool)> {
    // The subset has no whitespace and no escapes, so a control byte or a backslash
    // anywhere (inside a string or not) puts `data` outside it: `Cursor::new` refuses it.
    let mut cur = Cursor::new(data)?;
    let mut chunk = ContentChunk::default();
    let mut had_message = false;
    const KEYS: &[&[u8]] = &[
        b"id\":",
        b"object\":",
        b"model\":",
        b"system_fingerprint\":",
        b"created\":",
        b"choices\":",
        b"usage\":",
    ];
    cur.object(KEYS, |cur, key| {
        match key {
            // created
            4 => {
                cur.unsigned()?;
            }
            // choices
            5 => {
                cur.eat(b'[')?;
                if cur.peek()? != b']' {
                    had_message = choice(cur, message_key, &mut chunk)?;
                }
                cur.eat(b']')?;
            }
            // usage
            6 => {
                if !cur.null() {
                    chunk.usage = Some(usage(cur)?);
                }
            }
            // id, object, model, system_fingerprint
            _ => {
                if !cur.null() {
                    cur.plain_string()?;
                }
            }
        }
        Some(())
    })?;
    cur.at_end().then_some((chunk, had_message))
}

/// One choice object: `index` (must be 0), the message under `message_key` (`delta` or
/// `message`), `finish_reason`, `logprobs` (`null`); whether it had the message.
#[inline(always)]
fn choice<'a>(
    cur: &mut Cursor<'a>,
    message_key: &[u8],
    chunk: &mut ContentChunk<'a>,
) -> Option<bool> {
    let keys: [&[u8]; 4] = [
        b"index\":",
        message_key,
        b"finish_reason\":",
        b"logprobs\":",
    ];
    let mut had_message = false;
    cur.object(&keys, |cur, key| match key {
        // index
        0 => cur.eat(b'0'),
        // delta or message
        1 => {
            had_message = true;
            delta(cur, chunk)
        }
        // finish_reason
        2 => {
            if !cur.null() {
                chunk.finish_reason = Some(cur.plain_string()?);
            }
            Some(())
        }
        // logprobs
        _ => cur.null().then_some(()),
    })?;
    Some(had_message)
}

/// A usage object with up to one each of `prompt_tokens`, `completion_tokens` and
/// `total_tokens`, unsigned integers.
fn usage(cur: &mut Cursor<'_>) -> Option<(Option<u64>, Option<u64>)> {
    let mut counts = [None; 3];
    cur.object(
        &[
            b"prompt_tokens\":",
            b"completion_tokens\":",
            b"total_tokens\":",
        ],
        |cur, key| {
            *counts.get_mut(key)? = Some(cur.unsigned()?);
            Some(())
        },
    )?;
    Some((counts[0], counts[1]))
}

/// The delta or message object: `{}` or up to one `role` and one `content`, plain strings
/// (`content` may be `null`).
fn delta<'a>(cur: &mut Cursor<'a>, chunk: &mut ContentChunk<'a>) -> Option<()> {
    cur.object(&[b"role\":", b"content\":"], |cur, key| {
        if key == 0 {
            cur.plain_string()?;
        } else if !cur.null() {
            chunk.content = Some(cur.plain_string()?);
        }
        Some(())
    })
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

    #[test]
    fn edges_of_strings() {
        // A control byte or a backslash anywhere, inside a string or between tokens.
        for text in [
            "{\"id\":\"a\tb\",\"choices\":[]}",
            "{\"id\":\"a\u{1}\",\"choices\":[]}",
            "{\"id\":\"a\u{1f}\",\"choices\":[]}",
            "{\"id\":\"a\",\t\"choices\":[]}",
            "{\"id\":\"a\"}\n",
            r#"{"i\d":"a","choices":[]}"#,
            r#"{"id":"a\\","choices":[]}"#,
        ] {
            assert_eq!(scan(text), None, "{text:?}");
        }
        // Multi-byte UTF-8, DEL (allowed unescaped in JSON), empty strings.
        let text = with_choices(
            r#"[{"index":0,"delta":{"content":"café 東京 🦀 a\u{7f}"},"finish_reason":null}]"#,
        );
        let text = text.replace("\\u{7f}", "\u{7f}");
        assert_eq!(
            scan(&text).and_then(|c| c.content),
            Some("café 東京 🦀 a\u{7f}")
        );
        let text = with_choices(r#"[{"index":0,"delta":{"content":""},"finish_reason":"é"}]"#);
        assert_eq!(
            scan(&text),
            Some(ContentChunk {
                content: Some(""),
                finish_reason: Some("é"),
                usage: None,
            })
        );
        // A string that runs to the very end of the text, closed or not.
        assert_eq!(
            scan(r#"{"choices":[],"id":"abc"}"#),
            Some(ContentChunk::default())
        );
        assert_eq!(
            scan(r#"{"choices":[],"id":"é"}"#),
            Some(ContentChunk::default())
        );
        for text in [
            r#"{"choices":[],"id":"abc"#,
            r#"{"choices":[],"id":"é"#,
            r#"{"choices":[],"id":""#,
            r#"{"choices":[],"id":"#,
            r#"{"choices":[],"id"#,
            r#"{"choices":[],""#,
            r#"{"choices":[],"id":nul"#,
            r#"{"choices":[],"id":null"#,
        ] {
            assert_eq!(scan(text), None, "{text:?}");
        }
    }

    #[test]
    fn keys_must_match_whole() {
        for text in [
            r#"{"i":"a","choices":[]}"#,
            r#"{"idx":"a","choices":[]}"#,
            r#"{"id" :"a","choices":[]}"#,
            r#"{"choice":[]}"#,
            r#"{"choicesx":[]}"#,
            r#"{"":[]}"#,
            r#"{choices:[]}"#,
        ] {
            assert_eq!(scan(text), None, "{text:?}");
        }
        assert_eq!(
            scan(
                r#"{"id":null,"object":null,"model":null,"system_fingerprint":"fp","created":0,"choices":[],"usage":null}"#
            ),
            Some(ContentChunk::default())
        );
        let text = r#"{"usage":{"total_tokens":3,"prompt_tokens":1,"completion_tokens":2}}"#;
        assert_eq!(
            scan(text),
            Some(ContentChunk {
                usage: Some((Some(1), Some(2))),
                ..ContentChunk::default()
            })
        );
        let max = r#"{"created":9999999999999999999}"#;
        assert_eq!(scan(max), Some(ContentChunk::default()));
        for text in [
            r#"{"created":10000000000000000000}"#,
            r#"{"created":}"#,
            r#"{"created":-1}"#,
            r#"{"created":00}"#,
        ] {
            assert_eq!(scan(text), None, "{text:?}");
        }
    }

    /// The scanner as it was before it was tuned for speed: the definition of the subset.
    mod reference {
        use super::super::ContentChunk;

        /// Scans `data` (an SSE event's trimmed data) as a content-only chunk.
        pub(super) fn scan(data: &str) -> Option<ContentChunk<'_>> {
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
    }

    /// Real chunks, whose near-misses the proptests try.
    const BASES: &[&str] = &[
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"tok0 "},"finish_reason":null}]}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
        r#"{"id":"c","object":"chat.completion.chunk","created":1741570283,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"role":"assistant","content":null},"logprobs":null,"finish_reason":null}],"usage":null}"#,
        r#"{"id":"c","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
        r#"{"choices":[{"delta":{"content":"café"},"index":0}]}"#,
    ];

    /// Near-misses of real chunks: a few characters inserted, removed or replaced.
    fn mutated_chunk() -> impl proptest::strategy::Strategy<Value = String> {
        crate::near_miss::near_miss(BASES, crate::near_miss::JSON_ALPHABET)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(4096))]

        #[test]
        fn a_repeated_chunk_is_read_as_the_scanner_reads_it(text in mutated_chunk()) {
            // Learned from the mock's chunk and from one with a fingerprint and usage null.
            for learned in [
                r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"tok0 "},"finish_reason":null}]}"#,
                r#"{"id":"c","object":"chat.completion.chunk","created":1741570283,"model":"m","system_fingerprint":null,"choices":[{"index":0,"delta":{"content":"x"},"logprobs":null,"finish_reason":null}],"usage":null}"#,
            ] {
                let scanned = scan(learned).unwrap();
                let mut repeated = crate::fast_json::RepeatedChunk::default();
                repeated.learn(learned.as_bytes(), &[scanned.content.unwrap()]);
                if let Some([content]) = repeated.read::<1>(text.as_bytes()) {
                    let expected = ContentChunk { content: Some(content), ..ContentChunk::default() };
                    proptest::prop_assert_eq!(scan(&text), Some(expected), "{:?}", text);
                }
            }
        }

        #[test]
        fn accepts_exactly_what_the_reference_accepts(text in mutated_chunk()) {
            proptest::prop_assert_eq!(scan(&text), reference::scan(&text), "{:?}", text);
        }

        #[test]
        fn agrees_with_the_reference_on_any_text(text in "[{}\\[\\]\":,0-9a-z\\\\ é\u{1}]{0,40}") {
            proptest::prop_assert_eq!(scan(&text), reference::scan(&text), "{:?}", text);
        }
    }
}
