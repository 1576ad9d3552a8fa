//! Encoding [`ChatEvent`]s as Ollama `/api/chat` NDJSON lines, whole answers as the
//! non-streamed `/api/chat` object, and errors as Ollama's `{"error":"..."}`.

use std::io::Write as _;
use std::time::Duration;

use serde::Serialize;
use switchyard_core::{
    ChatEvent, ChatResponse, FinishReason, MAX_TOOL_ARGUMENTS_BYTES, MAX_TOOL_CALLS, ProviderError,
    Timings, Usage, parse_arguments_text,
};

use crate::json_util::{is_empty_delta, write_json, write_json_str};

/// How long a request took, as the gateway measured it: the source of Ollama's durations
/// (`total_duration`, `prompt_eval_duration`, `eval_duration`, in nanoseconds) when the
/// upstream reported none (an OpenAI-compatible or Anthropic upstream). Ollama clients
/// divide `eval_count` by `eval_duration` for tokens per second, so zeros next to a count
/// are worse than an estimate. Measured by the caller (this module does no I/O and reads
/// no clock).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Elapsed {
    /// From the request's arrival to the upstream's first event (the first token).
    pub to_first_token: Duration,
    /// From the request's arrival to the end of the answer.
    pub to_end: Duration,
}

impl Elapsed {
    /// Ollama's durations for an answer of `eval_count` tokens: `total_duration` from
    /// arrival to the end, `prompt_eval_duration` from arrival to the first token,
    /// `eval_duration` from the first token to the end (at least 1 ns when tokens were
    /// generated, so a rate is never a division by zero), `load_duration` 0.
    pub fn timings(&self, eval_count: u32) -> Timings {
        let ns = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        let to_end = self.to_end.max(self.to_first_token);
        let mut eval_ns = ns(to_end.saturating_sub(self.to_first_token));
        if eval_count > 0 {
            eval_ns = eval_ns.max(1);
        }
        Timings {
            total_ns: ns(to_end),
            load_ns: 0,
            prompt_eval_ns: ns(self.to_first_token),
            eval_ns,
        }
    }
}

/// `usage` (or none: zero counts) with Ollama's durations: the upstream's own when it
/// reported them (an Ollama upstream, passed through unchanged), else the ones `elapsed`
/// gives ([`Elapsed::timings`]).
pub fn with_timings(usage: Option<Usage>, elapsed: Elapsed) -> Usage {
    let mut usage = usage.unwrap_or_default();
    if usage.timings.is_none() {
        usage.timings = Some(elapsed.timings(usage.completion_tokens));
    }
    usage
}

/// A tool call whose argument fragments are still arriving.
#[derive(Debug)]
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
}

/// Encodes a stream of [`ChatEvent`]s as Ollama NDJSON, one line per output event.
///
/// Text and thinking deltas become `done:false` lines as they arrive. Tool calls are
/// buffered from `ToolCallStart` to `ToolCallEnd` and sent whole (Ollama clients expect
/// `arguments` as an object). `Done` writes the last line, `done:true` with the counts
/// and durations of the most recent `Usage` (durations the upstream did not report come
/// from [`OllamaStreamEncoder::set_elapsed`], when the caller gave them). After `Done`, or
/// after an error line, the encoder writes nothing more.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::ollama::OllamaStreamEncoder;
///
/// let mut enc = OllamaStreamEncoder::new("qwen3:8b", "2025-01-01T00:00:00Z");
/// let mut out = Vec::new();
/// enc.encode(&ChatEvent::text("Hi"), &mut out);
/// enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with(r#"{"model":"qwen3:8b","created_at":"2025-01-01T00:00:00Z","message":{"role":"assistant","content":"Hi"},"done":false}"#));
/// assert!(enc.is_done());
/// ```
#[derive(Debug)]
pub struct OllamaStreamEncoder {
    /// `{"model":..,"created_at":..,"message":{"role":"assistant","content":`
    prefix: Vec<u8>,
    calls: Vec<PendingCall>,
    usage: Option<Usage>,
    /// The gateway's measurements, for durations the upstream did not report.
    elapsed: Option<Elapsed>,
    done: bool,
}

const OPEN_TAIL: &[u8] = b"},\"done\":false}\n";

impl OllamaStreamEncoder {
    /// An encoder for an answer from `model`, stamped with `created_at` (RFC 3339 text).
    pub fn new(model: impl Into<String>, created_at: impl Into<String>) -> Self {
        let model = model.into();
        let created_at = created_at.into();
        let mut prefix = Vec::with_capacity(64 + model.len() + created_at.len());
        prefix.extend_from_slice(b"{\"model\":");
        write_json(&mut prefix, &model);
        prefix.extend_from_slice(b",\"created_at\":");
        write_json(&mut prefix, &created_at);
        prefix.extend_from_slice(b",\"message\":{\"role\":\"assistant\",\"content\":");
        Self {
            prefix,
            calls: Vec::new(),
            usage: None,
            elapsed: None,
            done: false,
        }
    }

    /// How long the request took so far, as the caller measured it: the final line's
    /// durations when the upstream reported none ([`with_timings`]). Given right before
    /// `Done` is encoded.
    pub fn set_elapsed(&mut self, elapsed: Elapsed) {
        self.elapsed = Some(elapsed);
    }

    /// Appends the lines for one event to `out` (zero or more complete lines).
    pub fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if self.done || is_empty_delta(event) {
            return;
        }
        match event {
            ChatEvent::TextDelta { text } => {
                out.extend_from_slice(&self.prefix);
                write_json_str(out, text);
                out.extend_from_slice(OPEN_TAIL);
            }
            ChatEvent::ThinkingDelta { text } => {
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b"\"\",\"thinking\":");
                write_json_str(out, text);
                out.extend_from_slice(OPEN_TAIL);
            }
            ChatEvent::ToolCallStart { index, id, name } => {
                if self.calls.iter().any(|c| c.index == *index) {
                    self.fail(&format!("tool call index {index} started twice"), out);
                } else if self.calls.len() >= MAX_TOOL_CALLS {
                    self.fail(
                        &format!("more than {MAX_TOOL_CALLS} tool calls in one answer"),
                        out,
                    );
                } else {
                    self.calls.push(PendingCall {
                        index: *index,
                        id: id.clone(),
                        name: name.clone(),
                        arguments: String::new(),
                    });
                }
            }
            ChatEvent::ToolCallArgs { index, fragment } => {
                let Some(call) = self.calls.iter_mut().find(|c| c.index == *index) else {
                    let msg = format!("tool call index {index} continued before it started");
                    self.fail(&msg, out);
                    return;
                };
                if call.arguments.len() + fragment.len() > MAX_TOOL_ARGUMENTS_BYTES {
                    let msg = format!(
                        "arguments of tool call `{}` exceed {MAX_TOOL_ARGUMENTS_BYTES} bytes",
                        call.name
                    );
                    self.fail(&msg, out);
                    return;
                }
                call.arguments.push_str(fragment);
            }
            ChatEvent::ToolCallEnd { index } => {
                match self.calls.iter().position(|c| c.index == *index) {
                    Some(pos) => {
                        let call = self.calls.swap_remove(pos);
                        self.emit_call(&call, out);
                    }
                    None => {
                        let msg = format!("tool call index {index} ended before it started");
                        self.fail(&msg, out);
                    }
                }
            }
            ChatEvent::Usage(usage) => self.usage = Some(*usage),
            // Ollama has no place for Anthropic's signatures and redacted thinking.
            ChatEvent::ThinkingSignature { .. }
            | ChatEvent::RedactedThinking { .. }
            | ChatEvent::Opaque { .. } => {}
            ChatEvent::Done { finish_reason } => {
                // Calls that never saw their end are sent now rather than lost.
                let mut pending = std::mem::take(&mut self.calls);
                pending.sort_by_key(|c| c.index);
                for call in &pending {
                    self.emit_call(call, out);
                    if self.done {
                        return;
                    }
                }
                out.extend_from_slice(&self.prefix);
                out.extend_from_slice(b"\"\"},\"done\":true,\"done_reason\":");
                write_json(out, done_reason(finish_reason));
                let usage = match self.elapsed {
                    Some(elapsed) => Some(with_timings(self.usage, elapsed)),
                    None => self.usage,
                };
                write_counts(out, usage.as_ref());
                out.extend_from_slice(b"}\n");
                self.done = true;
            }
        }
    }

    /// Appends the mid-stream error line `{"error":"..."}` and ends the stream: Ollama
    /// clients raise on it, so an interrupted answer never looks complete.
    pub fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        encode_error_body(err, out);
        out.push(b'\n');
        self.done = true;
    }

    /// Whether the final line (or an error line) has been written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn emit_call(&mut self, call: &PendingCall, out: &mut Vec<u8>) {
        let Some((arguments, raw)) = parse_arguments_text(&call.arguments) else {
            let mut shown: String = call.arguments.chars().take(200).collect();
            if shown.len() < call.arguments.len() {
                shown.push('…');
            }
            let msg = format!(
                "tool call `{}` ({}) has arguments that are not a JSON object: {shown}",
                call.name, call.id
            );
            self.fail(&msg, out);
            return;
        };
        out.extend_from_slice(&self.prefix);
        out.extend_from_slice(b"\"\",\"tool_calls\":[");
        write_json(
            out,
            &WireCall {
                id: &call.id,
                function: WireFunction {
                    index: Some(call.index),
                    name: &call.name,
                    arguments: switchyard_core::ArgumentsObject::new(&arguments, raw.as_deref()),
                },
            },
        );
        out.extend_from_slice(b"]");
        out.extend_from_slice(OPEN_TAIL);
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        write_json(out, &ErrorLine { error: message });
        out.push(b'\n');
        self.done = true;
    }
}

/// Appends the non-streamed `/api/chat` answer object (`done:true`, `done_reason`,
/// counts and durations) for a whole response. Written field by field: the bytes serde_json
/// writes for the same object (a proptest compares the two).
pub fn encode_response(resp: &ChatResponse, model: &str, created_at: &str, out: &mut Vec<u8>) {
    let usage = resp.usage.unwrap_or_default();
    let timings = usage.timings.unwrap_or_default();
    let number = |out: &mut Vec<u8>, key: &[u8], n: u64| {
        out.extend_from_slice(key);
        out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
    };
    out.extend_from_slice(b"{\"model\":");
    write_json_str(out, model);
    out.extend_from_slice(b",\"created_at\":");
    write_json_str(out, created_at);
    out.extend_from_slice(b",\"message\":{\"role\":\"assistant\",\"content\":");
    write_json_str(out, &resp.content);
    if let Some(thinking) = resp.thinking.as_deref() {
        out.extend_from_slice(b",\"thinking\":");
        write_json_str(out, thinking);
    }
    if !resp.tool_calls.is_empty() {
        out.extend_from_slice(b",\"tool_calls\":[");
        for (i, c) in resp.tool_calls.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            write_json(
                out,
                &WireCall {
                    id: &c.id,
                    function: WireFunction {
                        index: Some(u32::try_from(i).unwrap_or(u32::MAX)),
                        name: &c.name,
                        arguments: c.arguments_object(),
                    },
                },
            );
        }
        out.push(b']');
    }
    out.extend_from_slice(b"},\"done\":true,\"done_reason\":");
    write_json_str(out, done_reason(&resp.finish_reason));
    number(out, b",\"total_duration\":", timings.total_ns);
    number(out, b",\"load_duration\":", timings.load_ns);
    number(
        out,
        b",\"prompt_eval_count\":",
        u64::from(usage.prompt_tokens),
    );
    number(out, b",\"prompt_eval_duration\":", timings.prompt_eval_ns);
    number(out, b",\"eval_count\":", u64::from(usage.completion_tokens));
    number(out, b",\"eval_duration\":", timings.eval_ns);
    out.push(b'}');
}

/// Appends Ollama's error body `{"error":"<message>"}` (for an HTTP error answer; the
/// status is the caller's business). The upstream's own words are kept verbatim so
/// clients that match on them (`not found`) keep working; an empty message becomes the
/// reason code.
pub fn encode_error_body(err: &ProviderError, out: &mut Vec<u8>) {
    let message = if err.message().is_empty() {
        err.reason_code()
    } else {
        err.message()
    };
    write_json(out, &ErrorLine { error: message });
}

/// Ollama's `done_reason`: only ever `stop`, `length`, `load` or `unload` (WIRE.md). It never
/// says `tool_calls` (a client learns of calls from the chunks), so `tool_calls` — and any
/// reason Ollama clients do not know, such as `content_filter` — is sent as `stop`; an
/// answer cut for lack of room (Anthropic's `model_context_window_exceeded`,
/// [`FinishReason::is_cut`]) as `length`.
/// Ollama's `done_reason` for `reason`: `stop`, `length`, `load` or `unload` only (chat
/// and `/api/generate` alike).
pub(crate) fn done_reason(reason: &FinishReason) -> &str {
    match reason {
        FinishReason::Length => "length",
        FinishReason::Other(_) if reason.is_cut() => "length",
        FinishReason::Other(r) if r == "load" || r == "unload" => r,
        FinishReason::Stop
        | FinishReason::StopSequence(_)
        | FinishReason::ToolCalls
        | FinishReason::ContentFilter => "stop",
        FinishReason::Other(_) => "stop",
    }
}

#[cfg(test)]
mod done_reason_tests {
    use super::*;

    #[test]
    fn only_reasons_ollama_sends_are_written() {
        assert_eq!(done_reason(&FinishReason::Stop), "stop");
        assert_eq!(done_reason(&FinishReason::ToolCalls), "stop");
        assert_eq!(done_reason(&FinishReason::Length), "length");
        assert_eq!(done_reason(&FinishReason::Other("load".into())), "load");
        assert_eq!(done_reason(&FinishReason::Other("unload".into())), "unload");
        assert_eq!(done_reason(&FinishReason::ContentFilter), "stop");
        assert_eq!(done_reason(&FinishReason::Other("end_turn".into())), "stop");
        let cut = FinishReason::Other(FinishReason::CONTEXT_WINDOW_EXCEEDED.into());
        assert_eq!(done_reason(&cut), "length");
    }
}

fn write_counts(out: &mut Vec<u8>, usage: Option<&Usage>) {
    let usage = usage.copied().unwrap_or_default();
    let t = usage.timings.unwrap_or_default();
    // Writing to a Vec cannot fail.
    let _ = write!(
        out,
        ",\"total_duration\":{},\"load_duration\":{},\"prompt_eval_count\":{},\
         \"prompt_eval_duration\":{},\"eval_count\":{},\"eval_duration\":{}",
        t.total_ns,
        t.load_ns,
        usage.prompt_tokens,
        t.prompt_eval_ns,
        usage.completion_tokens,
        t.eval_ns
    );
}

#[derive(Serialize)]
struct ErrorLine<'a> {
    error: &'a str,
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    function: WireFunction<'a>,
}

#[derive(Serialize)]
struct WireFunction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    name: &'a str,
    arguments: switchyard_core::ArgumentsObject<'a>,
}

#[cfg(test)]
mod duration_tests {
    //! Durations on the final line when the upstream did not report them.

    use std::time::Duration;

    use serde_json::Value;
    use switchyard_core::{ChatEvent, FinishReason, Timings, Usage};

    use super::{Elapsed, OllamaStreamEncoder, with_timings};

    fn last_line(usage: Option<Usage>, elapsed: Option<Elapsed>) -> Value {
        let mut enc = OllamaStreamEncoder::new("m", "2025-01-01T00:00:00Z");
        let mut out = Vec::new();
        enc.encode(&ChatEvent::text("Hi"), &mut out);
        if let Some(usage) = usage {
            enc.encode(&ChatEvent::Usage(usage), &mut out);
        }
        if let Some(elapsed) = elapsed {
            enc.set_elapsed(elapsed);
        }
        enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
        let text = String::from_utf8(out).unwrap();
        serde_json::from_str(text.lines().last().unwrap()).unwrap()
    }

    fn counts(prompt: u32, completion: u32, timings: Option<Timings>) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            timings,
            ..Usage::default()
        }
    }

    const ELAPSED: Elapsed = Elapsed {
        to_first_token: Duration::from_millis(120),
        to_end: Duration::from_millis(500),
    };

    #[test]
    fn an_upstream_without_durations_gets_the_measured_ones() {
        let line = last_line(Some(counts(18, 12, None)), Some(ELAPSED));
        assert_eq!(line["eval_count"], 12, "{line}");
        assert_eq!(line["total_duration"], 500_000_000_u64, "{line}");
        assert_eq!(line["prompt_eval_duration"], 120_000_000_u64, "{line}");
        assert_eq!(line["eval_duration"], 380_000_000_u64, "{line}");
        assert_eq!(line["load_duration"], 0, "{line}");
    }

    #[test]
    fn an_answer_without_usage_still_gets_its_durations() {
        let line = last_line(None, Some(ELAPSED));
        assert_eq!(line["eval_count"], 0, "{line}");
        assert_eq!(line["total_duration"], 500_000_000_u64, "{line}");
    }

    #[test]
    fn the_durations_an_ollama_upstream_reported_pass_through() {
        let reported = Timings {
            total_ns: 7,
            load_ns: 3,
            prompt_eval_ns: 2,
            eval_ns: 1,
        };
        let line = last_line(Some(counts(18, 12, Some(reported))), Some(ELAPSED));
        assert_eq!(line["total_duration"], 7, "{line}");
        assert_eq!(line["load_duration"], 3, "{line}");
        assert_eq!(line["prompt_eval_duration"], 2, "{line}");
        assert_eq!(line["eval_duration"], 1, "{line}");
    }

    #[test]
    fn tokens_in_no_measurable_time_take_one_nanosecond() {
        let instant = Elapsed {
            to_first_token: Duration::from_millis(5),
            to_end: Duration::from_millis(5),
        };
        let t = with_timings(Some(counts(1, 3, None)), instant)
            .timings
            .unwrap();
        assert_eq!(t.eval_ns, 1);
        let t = with_timings(Some(counts(1, 0, None)), instant)
            .timings
            .unwrap();
        assert_eq!(t.eval_ns, 0);
        // A clock read out of order never makes the end come before the first token.
        let reversed = Elapsed {
            to_first_token: Duration::from_millis(9),
            to_end: Duration::from_millis(4),
        };
        let t = with_timings(Some(counts(1, 3, None)), reversed)
            .timings
            .unwrap();
        assert_eq!(
            (t.total_ns, t.prompt_eval_ns, t.eval_ns),
            (9_000_000, 9_000_000, 1)
        );
    }
}

#[cfg(test)]
mod whole_answer_tests {
    //! The direct `/api/chat` answer writer against the serde structs it replaced.

    use proptest::prelude::*;
    use serde::Serialize;
    use switchyard_core::{ChatResponse, FinishReason, Timings, ToolCall, Usage};

    use super::{WireCall, WireFunction, done_reason, encode_response};

    #[derive(Serialize)]
    struct WholeMessage<'a> {
        role: &'static str,
        content: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        thinking: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireCall<'a>>,
    }

    #[derive(Serialize)]
    struct WholeResponse<'a> {
        model: &'a str,
        created_at: &'a str,
        message: WholeMessage<'a>,
        done: bool,
        done_reason: &'a str,
        total_duration: u64,
        load_duration: u64,
        prompt_eval_count: u32,
        prompt_eval_duration: u64,
        eval_count: u32,
        eval_duration: u64,
    }

    fn reference(resp: &ChatResponse, model: &str, created_at: &str) -> String {
        let tool_calls: Vec<WireCall<'_>> = resp
            .tool_calls
            .iter()
            .enumerate()
            .map(|(i, c)| WireCall {
                id: &c.id,
                function: WireFunction {
                    index: Some(u32::try_from(i).unwrap()),
                    name: &c.name,
                    arguments: c.arguments_object(),
                },
            })
            .collect();
        let usage = resp.usage.unwrap_or_default();
        let timings = usage.timings.unwrap_or_default();
        serde_json::to_string(&WholeResponse {
            model,
            created_at,
            message: WholeMessage {
                role: "assistant",
                content: &resp.content,
                thinking: resp.thinking.as_deref(),
                tool_calls,
            },
            done: true,
            done_reason: done_reason(&resp.finish_reason),
            total_duration: timings.total_ns,
            load_duration: timings.load_ns,
            prompt_eval_count: usage.prompt_tokens,
            prompt_eval_duration: timings.prompt_eval_ns,
            eval_count: usage.completion_tokens,
            eval_duration: timings.eval_ns,
        })
        .unwrap()
    }

    proptest! {
        #[test]
        fn writes_what_serde_wrote(
            content in any::<String>(),
            thinking in proptest::option::of(any::<String>()),
            calls in proptest::collection::vec((any::<String>(), any::<String>(), any::<String>()), 0..3),
            reason in prop_oneof![Just(FinishReason::Stop), Just(FinishReason::Length),
                                  "[a-z]{0,6}".prop_map(FinishReason::Other)],
            usage in proptest::option::of((any::<u32>(), any::<u32>(), proptest::option::of(any::<[u64; 4]>()))),
            model in any::<String>(),
            created_at in any::<String>(),
        ) {
            let resp = ChatResponse {
                content,
                thinking,
                tool_calls: calls
                    .into_iter()
                    .map(|(id, name, arg)| ToolCall {
                        id,
                        name,
                        arguments: [("a".to_owned(), serde_json::Value::String(arg))].into_iter().collect(),
                        raw_arguments: None,
                    })
                    .collect(),
                finish_reason: reason,
                usage: usage.map(|(p, c, t)| Usage {
                    prompt_tokens: p,
                    completion_tokens: c,
                    timings: t.map(|[total_ns, load_ns, prompt_eval_ns, eval_ns]| Timings {
                        total_ns, load_ns, prompt_eval_ns, eval_ns
                    }),
                    ..Usage::default()
                }),
                extras: Default::default(),
            };
            let mut out = Vec::new();
            encode_response(&resp, &model, &created_at, &mut out);
            prop_assert_eq!(String::from_utf8(out).unwrap(), reference(&resp, &model, &created_at));
        }
    }
}
