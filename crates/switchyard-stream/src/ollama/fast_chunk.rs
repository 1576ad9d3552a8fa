//! A fast path for the common `/api/chat` stream line: compact JSON with plain
//! (escape-free) strings, `model` and `created_at` plain strings, a `message` with at most a
//! `role`, a `content` and a `thinking` (plain strings or `null`), and `done` `false`.
//!
//! The scanner accepts only a strict subset of JSON for which the serde decoder gives the
//! same result; anything else (whitespace, escapes, other keys, repeated keys, tool calls,
//! the `done` line, errors, invalid UTF-8) returns `None` and the caller falls back to serde.

use crate::fast_json::Cursor;

/// What the decoder needs from a content line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ContentLine<'a> {
    /// The message's `content`, when present and not `null`.
    pub(crate) content: Option<&'a str>,
    /// The message's `thinking`, when present and not `null`.
    pub(crate) thinking: Option<&'a str>,
}

/// Scans `line` (one NDJSON line, without its line ending) as a content line.
pub(crate) fn scan(line: &[u8]) -> Option<ContentLine<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut cur = Cursor::new(text)?;
    let mut chunk = ContentLine::default();
    const KEYS: &[&[u8]] = &[b"model\":", b"created_at\":", b"message\":", b"done\":"];
    cur.object(KEYS, |cur, key| match key {
        // message
        2 => message(cur, &mut chunk),
        // done
        3 => cur.literal(b"false").then_some(()),
        // model, created_at
        _ => cur.plain_string().map(drop),
    })?;
    cur.at_end().then_some(chunk)
}

/// The message object: up to one each of `role`, `content` and `thinking`, plain strings
/// or `null`.
fn message<'a>(cur: &mut Cursor<'a>, chunk: &mut ContentLine<'a>) -> Option<()> {
    const KEYS: &[&[u8]] = &[b"role\":", b"content\":", b"thinking\":"];
    cur.object(KEYS, |cur, key| {
        let value = if cur.null() {
            None
        } else {
            Some(cur.plain_string()?)
        };
        match key {
            1 => chunk.content = value,
            2 => chunk.thinking = value,
            _ => {}
        }
        Some(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_content_and_thinking_lines() {
        let line = br#"{"model":"bench:7b","created_at":"2026-03-14T10:00:00Z","message":{"role":"assistant","content":"tok0 "},"done":false}"#;
        assert_eq!(
            scan(line),
            Some(ContentLine {
                content: Some("tok0 "),
                thinking: None,
            })
        );
        let line = r#"{"message":{"thinking":"hmm é 🦀","content":null,"role":null}}"#;
        assert_eq!(
            scan(line.as_bytes()),
            Some(ContentLine {
                content: None,
                thinking: Some("hmm é 🦀"),
            })
        );
        assert_eq!(scan(b"{}"), Some(ContentLine::default()));
        assert_eq!(scan(br#"{"message":{}}"#), Some(ContentLine::default()));
    }

    #[test]
    fn falls_back_on_anything_else() {
        for line in [
            r#"{"message":{"role":"assistant","content":"a\nb"},"done":false}"#,
            r#"{"message":{"role":"assistant","content":"a\"b"},"done":false}"#,
            "{\"message\":{\"content\":\"a\tb\"},\"done\":false}",
            r#"{"message":{"content":"x"},"done":true}"#,
            r#"{"message":{"content":"x"},"done":false,"done_reason":"stop"}"#,
            r#"{"message":{"content":"x"},"done":null}"#,
            r#"{"message":{"content":"x"},"done":fals}"#,
            r#"{"message":{"content":"x"},"done":falsey}"#,
            r#"{"message":{"content":"x","tool_calls":[]}}"#,
            r#"{"message":{"content":"x","images":null}}"#,
            r#"{"message":{"content":"x","content":"y"}}"#,
            r#"{"message":{"content":"x"},"message":{"content":"y"}}"#,
            r#"{"message":null}"#,
            r#"{"message":{"content":1}}"#,
            r#"{"error":"model not found"}"#,
            r#"{"model":null}"#,
            r#"{"model":"m","eval_count":3}"#,
            r#"{"message":{"content":"x"}} "#,
            r#" {"message":{"content":"x"}}"#,
            r#"{"message":{"content":"x"}}}"#,
            r#"{"message":{"content":"x"}"#,
            r#"{"message":{"content":"x"#,
            "",
        ] {
            assert_eq!(scan(line.as_bytes()), None, "{line}");
        }
        // Invalid UTF-8 inside a string is serde's to report.
        assert_eq!(scan(b"{\"message\":{\"content\":\"\xff\"}}"), None);
        assert_eq!(scan(b"{\"message\":{\"content\":\"\xc3\"}}"), None);
    }
}
