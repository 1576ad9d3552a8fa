//! A fast path for the common `/api/chat` stream lines: compact JSON with plain
//! (escape-free) strings, `model` and `created_at` plain strings, a `message` with at most a
//! `role`, a `content` and a `thinking` (plain strings or `null`), `done` `true` or `false`,
//! and on the done line a `done_reason` (plain string or `null`) and the token counts and
//! durations (unsigned integers or `null`).
//!
//! The scanner accepts only a strict subset of JSON for which the serde decoder gives the
//! same result; anything else (whitespace, escapes, other keys, repeated keys, tool calls,
//! errors, invalid UTF-8) returns `None` and the caller falls back to serde.

use crate::fast_json::Cursor;

/// What the decoder needs from a line without tool calls or error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct ContentLine<'a> {
    /// `created_at`, when present.
    pub(crate) created_at: Option<&'a str>,
    /// The message's `content`, when present and not `null`.
    pub(crate) content: Option<&'a str>,
    /// The message's `thinking`, when present and not `null`.
    pub(crate) thinking: Option<&'a str>,
    /// `done` (absent is `false`).
    pub(crate) done: bool,
    /// `done_reason`, when present and not `null`.
    pub(crate) done_reason: Option<&'a str>,
    /// `prompt_eval_count`, `eval_count`, `total_duration`, `load_duration`,
    /// `prompt_eval_duration`, `eval_duration`, when present and not `null`.
    pub(crate) counts: [Option<u64>; 6],
}

/// Scans `line` (one NDJSON line, without its line ending) as a content line.
pub(crate) fn scan(line: &[u8]) -> Option<ContentLine<'_>> {
    let text = std::str::from_utf8(line).ok()?;
    let mut cur = Cursor::new(text)?;
    let mut chunk = ContentLine::default();
    const KEYS: &[&[u8]] = &[
        b"model\":",
        b"created_at\":",
        b"message\":",
        b"done\":",
        b"done_reason\":",
        // The counts, in the order of `ContentLine::counts`.
        b"prompt_eval_count\":",
        b"eval_count\":",
        b"total_duration\":",
        b"load_duration\":",
        b"prompt_eval_duration\":",
        b"eval_duration\":",
    ];
    cur.object(KEYS, |cur, key| match key {
        // model
        0 => cur.plain_string().map(drop),
        // created_at
        1 => {
            chunk.created_at = Some(cur.plain_string()?);
            Some(())
        }
        // message
        2 => message(cur, &mut chunk),
        // done
        3 => {
            chunk.done = cur.literal(b"true");
            (chunk.done || cur.literal(b"false")).then_some(())
        }
        // done_reason
        4 => {
            if !cur.null() {
                chunk.done_reason = Some(cur.plain_string()?);
            }
            Some(())
        }
        // the counts
        _ => {
            if !cur.null() {
                *chunk.counts.get_mut(key - 5)? = Some(cur.unsigned()?);
            }
            Some(())
        }
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
                created_at: Some("2026-03-14T10:00:00Z"),
                content: Some("tok0 "),
                ..ContentLine::default()
            })
        );
        let line = r#"{"message":{"thinking":"hmm é 🦀","content":null,"role":null}}"#;
        assert_eq!(
            scan(line.as_bytes()),
            Some(ContentLine {
                thinking: Some("hmm é 🦀"),
                ..ContentLine::default()
            })
        );
        let line = br#"{"model":"bench:7b","created_at":"2026-03-14T10:00:00Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":10,"prompt_eval_duration":342546000,"eval_count":20,"eval_duration":4535599000}"#;
        assert_eq!(
            scan(line),
            Some(ContentLine {
                created_at: Some("2026-03-14T10:00:00Z"),
                content: Some(""),
                done: true,
                done_reason: Some("stop"),
                counts: [
                    Some(10),
                    Some(20),
                    Some(4_883_583_458),
                    Some(1_334_875),
                    Some(342_546_000),
                    Some(4_535_599_000),
                ],
                ..ContentLine::default()
            })
        );
        let line = br#"{"done":true,"done_reason":null,"eval_count":null}"#;
        assert_eq!(
            scan(line),
            Some(ContentLine {
                done: true,
                ..ContentLine::default()
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
            r#"{"message":{"content":"x"},"done":truex}"#,
            r#"{"message":{"content":"x"},"done":"true"}"#,
            r#"{"done":true,"done_reason":1}"#,
            r#"{"done":true,"eval_count":-1}"#,
            r#"{"done":true,"eval_count":1.0}"#,
            r#"{"done":true,"eval_count":01}"#,
            r#"{"done":true,"eval_count":18446744073709551615}"#,
            r#"{"done":true,"eval_count":1,"eval_count":1}"#,
            r#"{"done":true,"context":[1,2]}"#,
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
            r#"{"model":"m","eval_count":3,"context":[]}"#,
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
