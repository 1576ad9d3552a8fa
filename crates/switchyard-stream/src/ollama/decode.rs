//! Decoding Ollama's `/api/chat` answers (NDJSON stream or one object) into events.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_core::{
    ChatEvent, ChatResponse, ErrorBody, FinishReason, ProviderError, ResponseBuilder, Timings,
    ToolCallAccumulator, Usage, classify_stream_error, tool_call_id,
};

use crate::grain::DeltaGrain;
use crate::json_util::{CowStr, WholeToolCall, count, fresh_seed};
use crate::ndjson::LineFramer;
use crate::sticky::StickyError;

/// The wire shape of one `/api/chat` line, borrowing its strings from the input.
///
/// Public so benchmarks and fuzz targets can parse exactly what the decoder parses;
/// its fields are private.
#[derive(Debug, Deserialize)]
pub struct OllamaWireChunk<'a> {
    #[serde(borrow, default)]
    message: Option<WireMessage<'a>>,
    #[serde(default)]
    done: bool,
    #[serde(borrow, default)]
    done_reason: Option<CowStr<'a>>,
    #[serde(default)]
    prompt_eval_count: Option<u64>,
    #[serde(default)]
    eval_count: Option<u64>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct WireMessage<'a> {
    #[serde(borrow, default)]
    content: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    thinking: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    tool_calls: Option<Vec<WholeToolCall<'a>>>,
}

/// The arguments of a whole call as JSON text: an object as sent, a JSON string holding
/// one decoded, nothing as `{}`.
fn arguments_text(raw: Option<&RawValue>) -> Result<String, ProviderError> {
    let Some(raw) = raw else {
        return Ok("{}".to_owned());
    };
    let text = raw.get();
    if text.starts_with('"') {
        let inner: String = serde_json::from_str(text)
            .map_err(|e| ProviderError::malformed(format!("bad tool-call arguments: {e}")))?;
        return Ok(inner);
    }
    if text == "null" {
        return Ok("{}".to_owned());
    }
    Ok(text.to_owned())
}

/// Decodes an Ollama `/api/chat` NDJSON stream, chunk by chunk, into [`ChatEvent`]s.
///
/// Each tool call arrives whole and becomes `ToolCallStart`, one `ToolCallArgs` holding the
/// arguments object as JSON text, and `ToolCallEnd`; indexes count up across the stream and
/// a missing id is synthesised. The `done` line yields `Usage` then `Done` (finish reason
/// `tool_calls` when calls were made, since Ollama only ever says `stop`). An `{"error"}`
/// line becomes a classified error. After an error the decoder returns the same error.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::ollama::OllamaStreamDecoder;
/// let mut dec = OllamaStreamDecoder::new();
/// let mut out = Vec::new();
/// dec.feed(b"{\"message\":{\"role\":\"assistant\",\"content\":\"Hi\"},\"done\":false}\n{\"mess", &mut out)?;
/// dec.feed(b"age\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n", &mut out)?;
/// dec.finish(&mut out)?;
/// assert_eq!(out[0], ChatEvent::text("Hi"));
/// assert_eq!(out.last(), Some(&ChatEvent::done(FinishReason::Stop)));
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug)]
pub struct OllamaStreamDecoder {
    framer: LineFramer,
    state: State,
    failed: StickyError,
}

#[derive(Debug)]
struct State {
    /// The last plain content line, to read the next one like it quickly.
    repeated: crate::fast_json::RepeatedChunk,
    seed: u64,
    next_index: u32,
    calls: ToolCallAccumulator,
    done: bool,
    grain: DeltaGrain,
}

impl Default for OllamaStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl OllamaStreamDecoder {
    /// A decoder whose synthesised call ids come from a fresh seed.
    pub fn new() -> Self {
        Self::with_id_seed(fresh_seed())
    }

    /// A decoder whose synthesised call ids are `tool_call_id(seed + n)` for the n-th call
    /// (deterministic, for tests).
    pub fn with_id_seed(seed: u64) -> Self {
        Self {
            framer: LineFramer::new(),
            state: State {
                repeated: crate::fast_json::RepeatedChunk::default(),
                seed,
                next_index: 0,
                calls: ToolCallAccumulator::default(),
                done: false,
                grain: DeltaGrain::PerChunk,
            },
            failed: StickyError::default(),
        }
    }

    /// Emits text and thinking deltas at `grain` ([`DeltaGrain::Merged`] for a client that
    /// asked for a whole answer).
    #[must_use]
    pub fn with_grain(mut self, grain: DeltaGrain) -> Self {
        self.state.grain = grain;
        self
    }

    /// Uses `framer` (for example one with a smaller line limit) instead of the default.
    #[must_use]
    pub fn with_framer(mut self, framer: LineFramer) -> Self {
        self.framer = framer;
        self
    }

    /// Feeds bytes of the response body; complete lines are decoded into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        let state = &mut self.state;
        let res = self.framer.push_lines(chunk, |line| state.line(line, out));
        self.failed.keep(res)
    }

    /// Ends the input: decodes a last line without newline, and fails with
    /// `StreamEndedEarly` when no `done` line came.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        let res = self.finish_lines(out);
        self.failed.keep(res)
    }

    /// The last lines, then the check that the `done` line came.
    fn finish_lines(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        while let Some(line) = self.framer.finish() {
            self.state.line(line?, out)?;
        }
        if !self.state.done {
            return Err(ProviderError::ended_early(
                "the Ollama stream ended without a done line",
            ));
        }
        Ok(())
    }

    /// Whether the `done` line has been decoded.
    pub fn is_done(&self) -> bool {
        self.state.done
    }
}

impl State {
    fn line(&mut self, line: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        if let Some([_created_at, content]) = self.repeated.read::<2>(line) {
            // The last content line again with another time and content: what `scan` reads.
            if !content.is_empty() {
                self.grain.push_text(out, content);
            }
            return Ok(());
        }
        if let Some(fast) = super::fast_chunk::scan(line) {
            // The common line (no tool calls, no error); the same result as the serde path
            // below.
            if let (Some(created_at), Some(content), None, false) =
                (fast.created_at, fast.content, fast.thinking, fast.done)
            {
                self.repeated.learn(line, &[created_at, content]);
            }
            if let Some(t) = fast.thinking.filter(|t| !t.is_empty()) {
                self.grain.push_thinking(out, t);
            }
            if let Some(t) = fast.content.filter(|t| !t.is_empty()) {
                self.grain.push_text(out, t);
            }
            if fast.done {
                let [
                    prompt_eval_count,
                    eval_count,
                    total_duration,
                    load_duration,
                    prompt_eval_duration,
                    eval_duration,
                ] = fast.counts;
                self.done_line(
                    DoneLine {
                        done_reason: fast.done_reason,
                        prompt_eval_count,
                        eval_count,
                        total_duration,
                        load_duration,
                        prompt_eval_duration,
                        eval_duration,
                    },
                    out,
                )?;
            }
            return Ok(());
        }
        let chunk: OllamaWireChunk<'_> = crate::json_util::from_json_bytes(line).map_err(|e| {
            ProviderError::malformed(format!("an Ollama stream line is not a chat chunk: {e}"))
        })?;
        if chunk.error.is_some_and(|e| e.get() != "null") {
            return Err(classify_stream_error(&ErrorBody::parse(line)));
        }
        if let Some(msg) = chunk.message {
            if let Some(t) = msg.thinking.filter(|t| !t.is_empty()) {
                self.grain.push_thinking(out, t.0);
            }
            if let Some(t) = msg.content.filter(|t| !t.is_empty()) {
                self.grain.push_text(out, t.0);
            }
            for call in msg.tool_calls.into_iter().flatten() {
                let index = self.next_index;
                self.next_index = self.next_index.saturating_add(1);
                let id = match call.id.filter(|id| !id.is_empty()) {
                    Some(id) => id.0.into_owned(),
                    None => tool_call_id(self.seed.wrapping_add(u64::from(index))),
                };
                let events = [
                    ChatEvent::ToolCallStart {
                        index,
                        id,
                        name: call.function.name.0.into_owned(),
                    },
                    ChatEvent::ToolCallArgs {
                        index,
                        fragment: arguments_text(call.function.arguments)?,
                    },
                    ChatEvent::ToolCallEnd { index },
                ];
                for ev in events {
                    self.calls.push(&ev)?;
                    out.push(ev);
                }
            }
        }
        if chunk.done {
            self.done_line(
                DoneLine {
                    done_reason: chunk.done_reason.as_deref(),
                    prompt_eval_count: chunk.prompt_eval_count,
                    eval_count: chunk.eval_count,
                    total_duration: chunk.total_duration,
                    load_duration: chunk.load_duration,
                    prompt_eval_duration: chunk.prompt_eval_duration,
                    eval_duration: chunk.eval_duration,
                },
                out,
            )?;
        }
        Ok(())
    }

    /// The end of the stream: the tool calls checked, `Usage` when counts came, `Done`.
    fn done_line(
        &mut self,
        done: DoneLine<'_>,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        // Every call's arguments must be a JSON object; report the first that is not.
        let made_calls = !self.calls.is_empty();
        std::mem::take(&mut self.calls).finish()?;
        let mut reason = done
            .done_reason
            .map_or(FinishReason::Stop, FinishReason::parse);
        if made_calls && reason == FinishReason::Stop {
            reason = FinishReason::ToolCalls;
        }
        if done.prompt_eval_count.is_some()
            || done.eval_count.is_some()
            || done.total_duration.is_some()
        {
            let any_timing = done.total_duration.is_some()
                || done.load_duration.is_some()
                || done.prompt_eval_duration.is_some()
                || done.eval_duration.is_some();
            out.push(ChatEvent::Usage(Usage {
                prompt_tokens: count(done.prompt_eval_count),
                completion_tokens: count(done.eval_count),
                timings: any_timing.then(|| Timings {
                    total_ns: done.total_duration.unwrap_or(0),
                    load_ns: done.load_duration.unwrap_or(0),
                    prompt_eval_ns: done.prompt_eval_duration.unwrap_or(0),
                    eval_ns: done.eval_duration.unwrap_or(0),
                }),
                ..Usage::default()
            }));
        }
        out.push(ChatEvent::done(reason));
        self.done = true;
        Ok(())
    }
}

/// What the done line carries besides the message.
struct DoneLine<'a> {
    done_reason: Option<&'a str>,
    prompt_eval_count: Option<u64>,
    eval_count: Option<u64>,
    total_duration: Option<u64>,
    load_duration: Option<u64>,
    prompt_eval_duration: Option<u64>,
    eval_duration: Option<u64>,
}

/// Decodes a non-streamed `/api/chat` answer (one object with `"done": true`; an NDJSON
/// body is accepted too) into a [`ChatResponse`]. Missing ids are synthesised.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let mut dec = OllamaStreamDecoder::new();
    let mut events = Vec::new();
    dec.feed(body, &mut events)?;
    dec.finish(&mut events)?;
    let mut builder = ResponseBuilder::default();
    for ev in events {
        builder.push(ev)?;
    }
    builder.finish()
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Near-misses of real lines: a few characters inserted, removed or replaced.
    fn mutated_line() -> impl Strategy<Value = Vec<u8>> {
        const BASES: &[&str] = &[
            r#"{"model":"bench:7b","created_at":"2026-03-14T10:00:00Z","message":{"role":"assistant","content":"tok0 "},"done":false}"#,
            r#"{"model":"qwen3:8b","created_at":"2025-06-01T10:00:00.123456789Z","message":{"role":"assistant","content":"","thinking":" café"},"done":false}"#,
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","eval_count":20}"#,
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":10,"prompt_eval_duration":342546000,"eval_count":20,"eval_duration":4535599000}"#,
            r#"{"done":true,"done_reason":null,"prompt_eval_count":null,"eval_count":0}"#,
            r#"{"message":{"content":null,"thinking":null,"role":null},"done":false}"#,
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"x"},"done":true}"#,
            r#"{"message":{"role":"assistant","content":"x","tool_calls":[]},"done":false}"#,
        ];
        const ALPHABET: &[&str] = &[
            "{", "}", "[", "]", "\"", ":", ",", "0", "n", "u", "l", "f", "a", "s", "e", "t", "x",
            " ", "\\", "\n", "\u{1}", "é", "🦀", "\u{ff}",
        ];
        let edit = (
            any::<prop::sample::Index>(),
            0..3u8,
            prop::sample::select(ALPHABET),
            any::<bool>(),
        );
        (
            prop::sample::select(BASES),
            prop::collection::vec(edit, 0..4),
        )
            .prop_map(|(base, edits)| {
                let mut bytes = base.as_bytes().to_vec();
                for (at, op, s, raw) in edits {
                    // Sometimes a raw byte of the character (invalid UTF-8 on its own).
                    let piece: &[u8] = if raw {
                        &s.as_bytes()[..1]
                    } else {
                        s.as_bytes()
                    };
                    let i = at.index(bytes.len() + 1);
                    match op {
                        0 => {
                            bytes.splice(i..i, piece.iter().copied());
                        }
                        1 if i < bytes.len() => {
                            bytes.remove(i);
                        }
                        _ => {
                            let end = (i + piece.len()).min(bytes.len());
                            bytes.splice(i..end, piece.iter().copied());
                        }
                    }
                }
                bytes
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// A line read as the learned one with other time and content is the content line
        /// the scanner reads: that content, nothing else.
        #[test]
        fn a_repeated_line_is_read_as_the_scanner_reads_it(line in mutated_line()) {
            let learned = br#"{"model":"bench:7b","created_at":"2026-03-14T10:00:00Z","message":{"role":"assistant","content":"tok0 "},"done":false}"#;
            let scanned = super::super::fast_chunk::scan(learned).unwrap();
            let mut repeated = crate::fast_json::RepeatedChunk::default();
            repeated.learn(learned, &[scanned.created_at.unwrap(), scanned.content.unwrap()]);
            prop_assert!(repeated.read::<2>(learned).is_some(), "it reads what it learned");
            if let Some([created_at, content]) = repeated.read::<2>(&line) {
                let expected = super::super::fast_chunk::ContentLine {
                    created_at: Some(created_at),
                    content: Some(content),
                    ..Default::default()
                };
                prop_assert_eq!(super::super::fast_chunk::scan(&line), Some(expected));
            }
        }

        /// Whatever the fast path accepts, serde reads the same way: no error, no tool
        /// calls, the same content, thinking, done, done reason, counts and durations.
        #[test]
        fn fast_path_agrees_with_serde(line in mutated_line()) {
            if let Some(fast) = super::super::fast_chunk::scan(&line) {
                let chunk: OllamaWireChunk<'_> = serde_json::from_slice(&line)
                    .map_err(|e| TestCaseError::fail(format!("{e}: {:?}", String::from_utf8_lossy(&line))))?;
                prop_assert!(chunk.error.is_none_or(|e| e.get() == "null"));
                prop_assert_eq!(fast.done, chunk.done);
                prop_assert_eq!(fast.done_reason, chunk.done_reason.as_deref());
                prop_assert_eq!(
                    fast.counts,
                    [
                        chunk.prompt_eval_count,
                        chunk.eval_count,
                        chunk.total_duration,
                        chunk.load_duration,
                        chunk.prompt_eval_duration,
                        chunk.eval_duration,
                    ]
                );
                let (content, thinking, calls) = match &chunk.message {
                    Some(m) => (m.content.as_deref(), m.thinking.as_deref(), m.tool_calls.is_some()),
                    None => (None, None, false),
                };
                prop_assert!(!calls);
                prop_assert_eq!(fast.content, content);
                prop_assert_eq!(fast.thinking, thinking);
            }
        }
    }

    #[test]
    fn fast_and_serde_lines_decode_alike() {
        let fast = br#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hi","thinking":"hm"},"done":false}"#;
        let slow = br#"{"model":"m", "created_at":"t","message":{"role":"assistant","content":"Hi","thinking":"hm"},"done":false}"#;
        assert!(super::super::fast_chunk::scan(fast).is_some());
        assert!(super::super::fast_chunk::scan(slow).is_none());
        let decode = |line: &[u8]| {
            let mut dec = OllamaStreamDecoder::with_id_seed(1);
            let mut out = Vec::new();
            dec.feed(line, &mut out).unwrap();
            dec.feed(b"\n", &mut out).unwrap();
            out
        };
        assert_eq!(decode(fast), decode(slow));
        assert_eq!(
            decode(fast),
            [ChatEvent::thinking("hm"), ChatEvent::text("Hi")]
        );
        // A whole answer, its done line with counts and durations, taken by either path.
        let answer = concat!(
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":"Hi"},"done":false}"#,
            "\n",
            r#"{"model":"m","created_at":"t","message":{"role":"assistant","content":""},"done":true,"done_reason":"length","total_duration":4883583458,"load_duration":1334875,"prompt_eval_count":10,"prompt_eval_duration":342546000,"eval_count":20,"eval_duration":4535599000}"#,
            "\n",
        );
        let decode_all = |text: &str| {
            let mut dec = OllamaStreamDecoder::with_id_seed(1);
            let mut out = Vec::new();
            dec.feed(text.as_bytes(), &mut out).unwrap();
            dec.finish(&mut out).unwrap();
            out
        };
        let fast_events = decode_all(answer);
        assert_eq!(
            fast_events,
            decode_all(&answer.replace("{\"model\"", "{ \"model\""))
        );
        assert_eq!(fast_events.len(), 3);
        assert_eq!(fast_events[2], ChatEvent::done(FinishReason::Length));
    }
}
