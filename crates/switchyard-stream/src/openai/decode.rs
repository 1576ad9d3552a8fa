//! Decoding OpenAI chat-completion answers (SSE stream or one object) into events.

use serde::Deserialize;
use serde_json::value::RawValue;
use switchyard_core::{
    ChatEvent, ChatResponse, ErrorBody, FinishReason, MAX_TOOL_ARGUMENTS_BYTES, MAX_TOOL_CALLS,
    ProviderError, ToolCall, ToolCallAccumulator, Usage, classify_stream_error,
    parse_arguments_text, tool_call_id,
};

use crate::grain::DeltaGrain;
use crate::json_util::{CowStr, WholeToolCall, count, fresh_seed};
use crate::sse::{SseEventRef, SseFramer};
use crate::sticky::StickyError;

/// The wire shape of one `chat.completion.chunk`, borrowing its strings from the input.
///
/// Public so benchmarks and fuzz targets can parse exactly what the decoder parses;
/// its fields are private.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct OpenAiWireChunk<'a>(#[serde(borrow)] WireObject<'a, WireChoice<'a>>);

/// The top level of a chunk or of a whole completion: its choices (`C`), usage and error.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "C: Deserialize<'de>"))]
struct WireObject<'a, C> {
    #[serde(default)]
    choices: Vec<C>,
    #[serde(default)]
    usage: Option<WireUsage>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Debug, Deserialize)]
struct WireChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    delta: Option<WireDelta<'a>>,
    #[serde(borrow, default)]
    finish_reason: Option<CowStr<'a>>,
}

/// A chunk's `delta`: a message whose tool calls arrive as fragments.
type WireDelta<'a> = WireMessage<'a, WireToolDelta<'a>>;

/// A chunk's `delta` or a completion's `message`; `T` is the shape of its tool calls.
#[derive(Debug, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
struct WireMessage<'a, T> {
    #[serde(borrow, default)]
    content: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    reasoning_content: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    reasoning: Option<CowStr<'a>>,
    #[serde(default)]
    tool_calls: Option<Vec<T>>,
}

impl<'a, T> WireMessage<'a, T> {
    /// The reasoning text: `reasoning_content`, else `reasoning`; empty ones count as none.
    fn take_thinking(&mut self) -> Option<CowStr<'a>> {
        let content = self.reasoning_content.take().filter(|t| !t.is_empty());
        content.or_else(|| self.reasoning.take().filter(|t| !t.is_empty()))
    }
}

#[derive(Debug, Deserialize)]
struct WireToolDelta<'a> {
    #[serde(default)]
    index: Option<u32>,
    #[serde(borrow, default)]
    id: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    function: Option<WireFunctionDelta<'a>>,
}

#[derive(Debug, Deserialize)]
struct WireFunctionDelta<'a> {
    #[serde(borrow, default)]
    name: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    arguments: Option<&'a RawValue>,
}

/// A chunk's or a completion's `usage`.
#[derive(Debug, Deserialize, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<WirePromptDetails>,
}

/// `usage.prompt_tokens_details`: the prompt tokens read from the prompt cache, a part of
/// `prompt_tokens`.
#[derive(Debug, Deserialize, Clone, Copy)]
struct WirePromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    /// The usage with OpenAI's cached prompt tokens (counted inside `prompt_tokens`) kept
    /// apart in `cache_read_tokens`, as [`Usage`] counts them.
    fn to_usage(self) -> Usage {
        let prompt = self.prompt_tokens.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .unwrap_or(0);
        Usage {
            prompt_tokens: count(Some(prompt.saturating_sub(cached))),
            completion_tokens: count(self.completion_tokens),
            cache_read_tokens: count(Some(cached)),
            ..Usage::default()
        }
    }
}

/// Arguments given as a JSON string (the standard) or, by some servers, as an object.
fn argument_text(raw: &RawValue) -> Result<std::borrow::Cow<'_, str>, ProviderError> {
    let text = raw.get();
    if text.starts_with('"') {
        let s: CowStr<'_> = serde_json::from_str(text)
            .map_err(|e| ProviderError::malformed(format!("bad tool-call arguments: {e}")))?;
        Ok(s.0)
    } else if text == "null" {
        Ok(std::borrow::Cow::Borrowed(""))
    } else {
        Ok(std::borrow::Cow::Borrowed(text))
    }
}

/// Records a tool-call event in the accumulator (which checks it) and emits it.
fn emit(
    acc: &mut ToolCallAccumulator,
    out: &mut Vec<ChatEvent>,
    ev: ChatEvent,
) -> Result<(), ProviderError> {
    acc.push(&ev)?;
    out.push(ev);
    Ok(())
}

#[derive(Debug)]
struct Slot {
    upstream: u32,
    index: u32,
    id: Option<String>,
    name: Option<String>,
    started: bool,
    ended: bool,
    /// Argument text that came before the call's name.
    pending: String,
}

/// Decodes an OpenAI chat-completions SSE stream (raw bytes), chunk by chunk, into
/// [`ChatEvent`]s.
///
/// Tool calls: `ToolCallStart` when a call's name (and id) first appear, `ToolCallArgs`
/// for every argument fragment, `ToolCallEnd` for every open call when a `finish_reason`
/// arrives; the arguments are then checked to be JSON objects, and a call whose arguments
/// are not is reported as an error. `Done` waits for `[DONE]` (or the end of input) so the
/// usage chunk that follows the finish chunk comes first. A stream without a
/// `finish_reason` is `StreamEndedEarly`; an `error` object inside the stream is a
/// classified error. Only the first choice is decoded. Invalid UTF-8 anywhere in an event
/// is a `malformed_stream` error (as in Ollama's NDJSON), never replaced with U+FFFD.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::openai::OpenAiStreamDecoder;
/// let mut dec = OpenAiStreamDecoder::new();
/// let mut out = Vec::new();
/// dec.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"}}]}\n\n", &mut out)?;
/// dec.feed(b"data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n", &mut out)?;
/// dec.finish(&mut out)?;
/// assert_eq!(out, vec![ChatEvent::text("Hi"), ChatEvent::done(FinishReason::Stop)]);
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug)]
pub struct OpenAiStreamDecoder {
    framer: SseFramer,
    state: State,
    failed: StickyError,
}

#[derive(Debug)]
struct State {
    /// The last plain content chunk, to read the next one like it quickly.
    repeated: crate::fast_json::RepeatedChunk,
    seed: u64,
    slots: Vec<Slot>,
    acc: ToolCallAccumulator,
    finish: Option<FinishReason>,
    usage: Option<Usage>,
    done: bool,
    grain: DeltaGrain,
}

impl Default for OpenAiStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl OpenAiStreamDecoder {
    /// A new decoder (ids missing upstream are synthesised from a fresh seed).
    pub fn new() -> Self {
        Self::with_id_seed(fresh_seed())
    }

    /// A decoder whose synthesised call ids are `tool_call_id(seed + index)`.
    pub fn with_id_seed(seed: u64) -> Self {
        Self {
            framer: SseFramer::new().strict_utf8(),
            state: State {
                repeated: crate::fast_json::RepeatedChunk::default(),
                seed,
                slots: Vec::new(),
                acc: ToolCallAccumulator::default(),
                finish: None,
                usage: None,
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

    /// Uses `framer` (for example one with a smaller event limit) instead of the default.
    /// It is made strict about UTF-8 ([`SseFramer::strict_utf8`]): invalid UTF-8 from an
    /// upstream is a `malformed_stream` error, as in Ollama's NDJSON, never replaced.
    #[must_use]
    pub fn with_framer(mut self, framer: SseFramer) -> Self {
        self.framer = framer.strict_utf8();
        self
    }

    /// Feeds bytes of the SSE body; complete events are decoded into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        self.framer.push(chunk);
        let res = self.decode_events(out);
        self.failed.keep(res)
    }

    /// Decodes the complete events framed so far.
    fn decode_events(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        while let Some(ev) = self.framer.next_event_ref() {
            self.state.event(ev?, out)?;
        }
        Ok(())
    }

    /// Ends the input. A finish reason without `[DONE]` is accepted (`Done` is emitted);
    /// no finish reason at all is `StreamEndedEarly`.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        let res = self.finish_events(out);
        self.failed.keep(res)
    }

    /// The last events, then the end of the stream when no `[DONE]` came.
    fn finish_events(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        while let Some(ev) = self.framer.finish_ref() {
            self.state.event(ev?, out)?;
        }
        if !self.state.done {
            self.state.end(out)?;
        }
        Ok(())
    }

    /// Whether `Done` has been emitted.
    pub fn is_done(&self) -> bool {
        self.state.done
    }
}

impl State {
    fn event(
        &mut self,
        ev: SseEventRef<'_>,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let data = ev.data.trim_ascii();
        if ev.event == Some("error") {
            return Err(classify_stream_error(&ErrorBody::parse(data.as_bytes())));
        }
        if data == "[DONE]" {
            return self.end(out);
        }
        if data.is_empty() {
            return Ok(());
        }
        if let Some([content]) = self.repeated.read::<1>(data.as_bytes()) {
            // The last content chunk again with other content: what `scan` reads.
            if self.finish.is_none() && !content.is_empty() {
                self.grain.push_text(out, content);
            }
            return Ok(());
        }
        if let Some(fast) = super::fast_chunk::scan(data) {
            if let (Some(content), None, None) = (fast.content, fast.finish_reason, fast.usage) {
                self.repeated.learn(data.as_bytes(), &[content]);
            }
            // The common content-only chunk; the same result as the serde path below.
            if let Some((prompt_tokens, completion_tokens)) = fast.usage {
                let wire = WireUsage {
                    prompt_tokens,
                    completion_tokens,
                    prompt_tokens_details: None,
                };
                self.usage = Some(wire.to_usage());
            }
            if self.finish.is_some() {
                return Ok(());
            }
            if let Some(t) = fast.content.filter(|t| !t.is_empty()) {
                self.grain.push_text(out, t);
            }
            if let Some(reason) = fast.finish_reason {
                self.finished(FinishReason::parse(reason), out)?;
            }
            return Ok(());
        }
        let OpenAiWireChunk(chunk) = serde_json::from_str(data).map_err(|e| {
            ProviderError::malformed(format!("an SSE event is not a chat completion chunk: {e}"))
        })?;
        if chunk.error.is_some_and(|e| e.get() != "null") {
            return Err(classify_stream_error(&ErrorBody::parse(data.as_bytes())));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u.to_usage());
        }
        if self.finish.is_some() {
            return Ok(());
        }
        for choice in chunk.choices {
            if choice.index != 0 {
                continue;
            }
            if let Some(delta) = choice.delta {
                self.delta(delta, out)?;
            }
            if let Some(reason) = choice.finish_reason {
                self.finished(FinishReason::parse(&reason), out)?;
            }
        }
        Ok(())
    }

    fn delta(
        &mut self,
        mut delta: WireDelta<'_>,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        if let Some(t) = delta.take_thinking() {
            self.grain.push_thinking(out, t.0);
        }
        if let Some(t) = delta.content.filter(|t| !t.is_empty()) {
            self.grain.push_text(out, t.0);
        }
        for tc in delta.tool_calls.into_iter().flatten() {
            self.tool_delta(tc, out)?;
        }
        Ok(())
    }

    fn tool_delta(
        &mut self,
        tc: WireToolDelta<'_>,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        let (name, args) = match tc.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        let id = tc.id.filter(|s| !s.is_empty());
        let name = name.filter(|s| !s.is_empty());
        let upstream = match tc.index {
            Some(i) => i,
            // No index (some servers): a new call when an id or name comes, else the last one.
            None if id.is_some() || name.is_some() || self.slots.is_empty() => {
                u32::try_from(self.slots.len()).unwrap_or(u32::MAX)
            }
            None => self.slots.last().map_or(0, |s| s.upstream),
        };
        let existing = self.slots.iter().rposition(|s| s.upstream == upstream);
        // The same upstream index with a different id and a name is a new call
        // (servers that number every call 0).
        let reuse = existing.filter(|&p| {
            let s = &self.slots[p];
            !(s.started
                && name.is_some()
                && id.as_deref().is_some_and(|id| s.id.as_deref() != Some(id)))
        });
        let pos = match reuse {
            Some(p) => p,
            None => {
                if let Some(p) = existing {
                    self.end_slot(p, out)?;
                    self.slots[p].upstream = u32::MAX;
                }
                if self.slots.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_TOOL_CALLS} tool calls in one answer"
                    )));
                }
                let index = u32::try_from(self.slots.len()).unwrap_or(u32::MAX);
                self.slots.push(Slot {
                    upstream,
                    index,
                    id: None,
                    name: None,
                    started: false,
                    ended: false,
                    pending: String::new(),
                });
                self.slots.len() - 1
            }
        };
        let seed = self.seed;
        let slot = &mut self.slots[pos];
        if slot.ended {
            return Err(ProviderError::malformed(format!(
                "tool call index {upstream} continued after it ended"
            )));
        }
        if slot.id.is_none() {
            slot.id = id.map(|s| s.0.into_owned());
        }
        if slot.name.is_none() {
            slot.name = name.map(|s| s.0.into_owned());
        }
        let fragment = match args {
            Some(raw) => argument_text(raw)?,
            None => std::borrow::Cow::Borrowed(""),
        };
        if !slot.started {
            if let Some(name) = &slot.name {
                slot.started = true;
                let id = slot
                    .id
                    .clone()
                    .unwrap_or_else(|| tool_call_id(seed.wrapping_add(u64::from(slot.index))));
                emit(
                    &mut self.acc,
                    out,
                    ChatEvent::ToolCallStart {
                        index: slot.index,
                        id,
                        name: name.clone(),
                    },
                )?;
                let mut pending = std::mem::take(&mut slot.pending);
                pending.push_str(&fragment);
                if !pending.is_empty() {
                    emit(
                        &mut self.acc,
                        out,
                        ChatEvent::ToolCallArgs {
                            index: slot.index,
                            fragment: pending,
                        },
                    )?;
                }
            } else {
                if slot.pending.len() + fragment.len() > MAX_TOOL_ARGUMENTS_BYTES {
                    return Err(ProviderError::malformed(
                        "tool-call arguments without a name grew too long",
                    ));
                }
                slot.pending.push_str(&fragment);
            }
        } else if !fragment.is_empty() {
            emit(
                &mut self.acc,
                out,
                ChatEvent::ToolCallArgs {
                    index: slot.index,
                    fragment: fragment.into_owned(),
                },
            )?;
        }
        Ok(())
    }

    fn end_slot(&mut self, pos: usize, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let slot = &mut self.slots[pos];
        if slot.ended {
            return Ok(());
        }
        if !slot.started {
            return Err(ProviderError::malformed(format!(
                "tool call at index {} never got a name",
                slot.upstream
            )));
        }
        slot.ended = true;
        emit(
            &mut self.acc,
            out,
            ChatEvent::ToolCallEnd { index: slot.index },
        )
    }

    fn finished(
        &mut self,
        mut reason: FinishReason,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        for pos in 0..self.slots.len() {
            self.end_slot(pos, out)?;
        }
        if !self.slots.is_empty() {
            // Every call's arguments must form a JSON object; report the first that does not.
            std::mem::take(&mut self.acc).finish()?;
            if reason == FinishReason::Stop {
                reason = FinishReason::ToolCalls;
            }
        }
        self.finish = Some(reason);
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let Some(reason) = self.finish.clone() else {
            return Err(ProviderError::ended_early(
                "the OpenAI stream ended without a finish_reason",
            ));
        };
        if let Some(u) = self.usage {
            out.push(ChatEvent::Usage(u));
        }
        out.push(ChatEvent::done(reason));
        self.done = true;
        Ok(())
    }
}

/// The wire shape of a non-streamed `chat.completion` object.
type WireCompletion<'a> = WireObject<'a, WireRespChoice<'a>>;

#[derive(Debug, Deserialize)]
struct WireRespChoice<'a> {
    #[serde(default)]
    index: u32,
    #[serde(borrow, default)]
    message: Option<WireMessage<'a, WholeToolCall<'a>>>,
    #[serde(borrow, default)]
    finish_reason: Option<CowStr<'a>>,
}

/// Decodes a non-streamed `chat.completion` object into a [`ChatResponse`] (the first
/// choice). Tool-call arguments must be JSON objects (given as a JSON string, or as an
/// object by some servers); an `{"error": ...}` body is a classified error.
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let fast = std::str::from_utf8(body.trim_ascii())
        .ok()
        .and_then(super::fast_chunk::scan_whole);
    match fast {
        // The common content-only answer; the same result as the serde path.
        Some(fast) => Ok(ChatResponse {
            content: fast.content.unwrap_or_default().to_owned(),
            thinking: None,
            tool_calls: Vec::new(),
            finish_reason: fast
                .finish_reason
                .map_or(FinishReason::Stop, FinishReason::parse),
            usage: fast.usage.map(|(prompt_tokens, completion_tokens)| {
                WireUsage {
                    prompt_tokens,
                    completion_tokens,
                    prompt_tokens_details: None,
                }
                .to_usage()
            }),
            extras: Default::default(),
        }),
        None => decode_response_by_serde(body),
    }
}

/// [`decode_response`] without the fast path: any completion serde reads.
fn decode_response_by_serde(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let resp: WireCompletion<'_> = crate::json_util::from_json_bytes(body).map_err(|e| {
        ProviderError::malformed(format!("the answer is not a chat completion: {e}"))
    })?;
    if resp.error.is_some_and(|e| e.get() != "null") {
        return Err(classify_stream_error(&ErrorBody::parse(body)));
    }
    let Some(choice) = resp.choices.into_iter().find(|c| c.index == 0) else {
        return Err(ProviderError::malformed(
            "the chat completion has no choices",
        ));
    };
    let mut message = choice
        .message
        .ok_or_else(|| ProviderError::malformed("the chat completion's choice has no message"))?;
    let thinking = message.take_thinking().map(|t| t.0.into_owned());
    let seed = fresh_seed();
    let mut tool_calls = Vec::new();
    for (i, call) in message.tool_calls.into_iter().flatten().enumerate() {
        let text = match call.function.arguments {
            Some(raw) => argument_text(raw)?,
            None => std::borrow::Cow::Borrowed(""),
        };
        let id = match call.id.filter(|s| !s.is_empty()) {
            Some(id) => id.0.into_owned(),
            None => tool_call_id(seed.wrapping_add(i as u64)),
        };
        // The text is kept as written (`raw_arguments`) when the map would not give it
        // back, so the client reads the numbers the model wrote.
        let name = call.function.name.0.into_owned();
        let Some((arguments, raw_arguments)) = parse_arguments_text(&text) else {
            let shown: String = text.chars().take(200).collect();
            return Err(ProviderError::malformed(format!(
                "tool call `{name}` ({id}) has arguments that are not a JSON object: {shown}"
            )));
        };
        tool_calls.push(ToolCall {
            id,
            name,
            arguments,
            raw_arguments,
        });
    }
    let mut finish_reason = choice
        .finish_reason
        .as_deref()
        .map_or(FinishReason::Stop, FinishReason::parse);
    if !tool_calls.is_empty() && finish_reason == FinishReason::Stop {
        finish_reason = FinishReason::ToolCalls;
    }
    Ok(ChatResponse {
        content: message
            .content
            .map(|c| c.0.into_owned())
            .unwrap_or_default(),
        thinking,
        tool_calls,
        finish_reason,
        usage: resp.usage.map(WireUsage::to_usage),
        extras: Default::default(),
    })
}

#[cfg(test)]
mod usage_tests {
    use super::*;

    fn cached(prompt: u32, completion: u32, cached: u32) -> Usage {
        Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            cache_read_tokens: cached,
            ..Usage::default()
        }
    }

    #[test]
    fn cached_prompt_tokens_are_kept_apart_streamed_and_whole() {
        let usage = r#"{"prompt_tokens":1000,"completion_tokens":5,"total_tokens":1005,"prompt_tokens_details":{"cached_tokens":800}}"#;
        let mut dec = OpenAiStreamDecoder::new();
        let mut out = Vec::new();
        let stream = format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"Hi\"}},\"finish_reason\":\"stop\"}}]}}\n\n\
             data: {{\"choices\":[],\"usage\":{usage}}}\n\ndata: [DONE]\n\n"
        );
        dec.feed(stream.as_bytes(), &mut out).unwrap();
        dec.finish(&mut out).unwrap();
        assert!(
            out.contains(&ChatEvent::Usage(cached(200, 5, 800))),
            "{out:?}"
        );

        let whole = format!(
            r#"{{"choices":[{{"index":0,"message":{{"content":"Hi"}},"finish_reason":"stop"}}],"usage":{usage}}}"#
        );
        let resp = decode_response(whole.as_bytes()).unwrap();
        assert_eq!(resp.usage, Some(cached(200, 5, 800)));

        // No details (or `null` ones): nothing cached; more cached than prompt saturates.
        for (usage, want) in [
            (
                r#"{"prompt_tokens":7,"completion_tokens":1}"#,
                cached(7, 1, 0),
            ),
            (
                r#"{"prompt_tokens":7,"completion_tokens":1,"prompt_tokens_details":null}"#,
                cached(7, 1, 0),
            ),
            (
                r#"{"prompt_tokens":7,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":null,"audio_tokens":0}}"#,
                cached(7, 1, 0),
            ),
            (
                r#"{"prompt_tokens":7,"completion_tokens":1,"prompt_tokens_details":{"cached_tokens":9}}"#,
                cached(0, 1, 9),
            ),
        ] {
            let body = format!(
                r#"{{"choices":[{{"index":0,"message":{{"content":"x"}}}}],"usage":{usage}}}"#
            );
            assert_eq!(
                decode_response(body.as_bytes()).unwrap().usage,
                Some(want),
                "{usage}"
            );
        }
    }
}

#[cfg(test)]
mod whole_fast_tests {
    use proptest::prelude::*;

    use super::*;

    const MOCK: &str = r#"{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"bench","choices":[{"index":0,"message":{"role":"assistant","content":"Hello! How can I help you today?"},"finish_reason":"stop"}],"usage":{"prompt_tokens":10,"completion_tokens":9,"total_tokens":19}}"#;

    /// Whole answers the fast path reads, and near-misses it must leave to serde.
    const BASES: &[&str] = &[
        MOCK,
        r#"{"id":"c","object":"chat.completion","created":1741570283,"model":"m","system_fingerprint":"fp_ollama","choices":[{"index":0,"message":{"role":"assistant","content":"café 🦀"},"logprobs":null,"finish_reason":"length"}],"usage":null}"#,
        r#"{"choices":[{"message":{"content":null},"finish_reason":null}]}"#,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17}}"#,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x","tool_calls":[]},"finish_reason":"stop"}]}"#,
        r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"x","reasoning_content":"r"},"finish_reason":"stop"}]}"#,
        r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1}}"#,
        r#"{"error":{"message":"boom","type":"server_error"}}"#,
    ];

    #[test]
    fn the_common_answer_takes_the_fast_path_and_reads_as_serde_does() {
        for body in [MOCK, BASES[1], BASES[2], BASES[3]] {
            let fast = super::super::fast_chunk::scan_whole(body);
            assert!(fast.is_some(), "{body}");
            assert_eq!(
                decode_response(body.as_bytes()).ok(),
                decode_response_by_serde(body.as_bytes()).ok(),
                "{body}"
            );
        }
        let answer = decode_response(format!(" {MOCK}\n").as_bytes()).unwrap();
        assert_eq!(answer.content, "Hello! How can I help you today?");
        assert_eq!(answer.finish_reason, FinishReason::Stop);
        let usage = answer.usage.unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (10, 9));
    }

    #[test]
    fn what_the_fast_path_leaves_is_read_by_serde() {
        for body in &BASES[4..] {
            assert!(
                super::super::fast_chunk::scan_whole(body).is_none(),
                "{body}"
            );
        }
        // A choice without a message, or no choice, is the serde path's error.
        for body in [
            r#"{"choices":[{"index":0,"finish_reason":"stop"}]}"#,
            r#"{"choices":[]}"#,
        ] {
            assert!(
                super::super::fast_chunk::scan_whole(body).is_none(),
                "{body}"
            );
            assert!(decode_response(body.as_bytes()).is_err(), "{body}");
        }
        let thinking = decode_response(BASES[5].as_bytes()).unwrap();
        assert_eq!(thinking.thinking.as_deref(), Some("r"));
        let error = decode_response(BASES[7].as_bytes()).unwrap_err();
        assert!(error.message().contains("boom"), "{error}");
    }

    /// Near-misses of whole answers: a few characters inserted, removed or replaced.
    fn mutated_answer() -> impl Strategy<Value = String> {
        crate::near_miss::near_miss(BASES, crate::near_miss::JSON_ALPHABET)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        /// Whatever the fast path accepts, serde reads the same way.
        #[test]
        fn fast_path_agrees_with_serde(body in mutated_answer()) {
            if super::super::fast_chunk::scan_whole(body.trim_ascii()).is_some() {
                let serde = decode_response_by_serde(body.as_bytes());
                prop_assert!(serde.is_ok(), "{:?}: {:?}", body, serde);
                prop_assert_eq!(decode_response(body.as_bytes()).ok(), serde.ok(), "{:?}", body);
            }
        }
    }
}
