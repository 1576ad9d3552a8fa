//! Decoding Anthropic Messages answers (SSE stream of typed events, or one `message`
//! object) into events.

use serde::Deserialize;
use serde_json::Value;
use serde_json::value::RawValue;
use switchyard_core::{
    ChatEvent, ChatResponse, ErrorBody, FinishReason, OpaquePart, ProviderError, ResponseBuilder,
    ToolCallAccumulator, Usage, classify_stream_error,
};

use crate::grain::DeltaGrain;
use crate::json_util::{CowStr, count};
use crate::sse::{SseEventRef, SseFramer};

/// The most content blocks one answer may open (tool calls are further bounded by
/// [`switchyard_core::MAX_TOOL_CALLS`]).
pub const MAX_CONTENT_BLOCKS: usize = 4096;

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent<'a> {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: u32,
        #[serde(borrow)]
        content_block: WireBlockStart<'a>,
    },
    ContentBlockDelta {
        index: u32,
        #[serde(borrow)]
        delta: WireDelta<'a>,
    },
    ContentBlockStop {
        index: u32,
    },
    MessageDelta {
        #[serde(borrow)]
        delta: WireMessageDelta<'a>,
        #[serde(default)]
        usage: Option<WireUsage>,
    },
    MessageStop,
    Ping,
    Error,
    #[serde(other)]
    Other,
}

/// A `content_block_start` event's block, verbatim.
#[derive(Deserialize)]
struct RawStart<'a> {
    #[serde(borrow)]
    content_block: &'a RawValue,
}

/// A `content_block_delta` event's delta, verbatim.
#[derive(Deserialize)]
struct RawDelta<'a> {
    #[serde(borrow)]
    delta: &'a RawValue,
}

/// The verbatim JSON of a start's block or a delta's delta, found in the event `data`.
fn raw_part(data: &str, part: OpaquePart) -> Result<String, ProviderError> {
    let raw = match part {
        OpaquePart::Delta => serde_json::from_str::<RawDelta<'_>>(data).map(|d| d.delta),
        _ => serde_json::from_str::<RawStart<'_>>(data).map(|s| s.content_block),
    };
    raw.map(|r| r.get().to_owned()).map_err(|e| {
        ProviderError::malformed(format!(
            "an Anthropic content block event is malformed: {e}"
        ))
    })
}

#[derive(Deserialize)]
struct WireStartMessage {
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireBlockStart<'a> {
    Text {
        #[serde(borrow, default)]
        text: CowStr<'a>,
        /// Present on a block that carries citations (whole, or filled by
        /// `citations_delta`s).
        #[serde(default)]
        citations: Option<serde::de::IgnoredAny>,
    },
    Thinking {
        #[serde(borrow, default)]
        thinking: CowStr<'a>,
    },
    RedactedThinking {
        #[serde(borrow)]
        data: CowStr<'a>,
    },
    ToolUse {
        #[serde(borrow)]
        id: CowStr<'a>,
        #[serde(borrow)]
        name: CowStr<'a>,
        #[serde(default)]
        input: Option<Value>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta<'a> {
    TextDelta {
        #[serde(borrow)]
        text: CowStr<'a>,
    },
    InputJsonDelta {
        #[serde(borrow)]
        partial_json: CowStr<'a>,
    },
    ThinkingDelta {
        #[serde(borrow)]
        thinking: CowStr<'a>,
    },
    SignatureDelta {
        #[serde(borrow)]
        signature: CowStr<'a>,
    },
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta<'a> {
    #[serde(borrow, default)]
    stop_reason: Option<CowStr<'a>>,
    #[serde(borrow, default)]
    stop_sequence: Option<CowStr<'a>>,
}

/// Anthropic's `usage` object (in `message_start`, `message_delta` and whole messages).
#[derive(Debug, Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Folds a later report into this one: counts present there replace ours.
    fn merge(&mut self, later: WireUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    fn to_usage(self) -> Usage {
        Usage {
            prompt_tokens: count(self.input_tokens),
            completion_tokens: count(self.output_tokens),
            cache_read_tokens: count(self.cache_read_input_tokens),
            cache_creation_tokens: count(self.cache_creation_input_tokens),
            ..Usage::default()
        }
    }
}

/// Our finish reason for Anthropic's `stop_reason` (and `stop_sequence`). Anthropic's own
/// reasons without a [`FinishReason`] of their own (`pause_turn`,
/// `model_context_window_exceeded`) are kept as [`FinishReason::Other`], so that an
/// Anthropic client gets them back as sent; other APIs read a context-window cut as a
/// length stop ([`FinishReason::is_cut`]).
pub(crate) fn finish_reason(stop_reason: &str, stop_sequence: Option<&str>) -> FinishReason {
    match (stop_reason, stop_sequence) {
        ("stop_sequence", Some(seq)) => FinishReason::StopSequence(seq.to_owned()),
        ("refusal", _) => FinishReason::ContentFilter,
        ("pause_turn" | FinishReason::CONTEXT_WINDOW_EXCEEDED, _) => {
            FinishReason::Other(stop_reason.to_owned())
        }
        (other, _) => FinishReason::parse(other),
    }
}

/// What a content block of the answer is, by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Text,
    Thinking,
    Tool(u32),
    /// A block type the gateway does not model: passed on verbatim.
    Opaque,
    Other,
}

/// Decodes an Anthropic Messages SSE stream (raw bytes), chunk by chunk, into
/// [`ChatEvent`]s.
///
/// `text_delta` becomes text, `thinking_delta` thinking, `signature_delta`
/// [`ChatEvent::ThinkingSignature`], a `redacted_thinking` block
/// [`ChatEvent::RedactedThinking`]; a `tool_use` block is `ToolCallStart`, its
/// `input_json_delta`s `ToolCallArgs` and its `content_block_stop` `ToolCallEnd`. Usage
/// (input tokens from `message_start`, output tokens from `message_delta`, cache counts)
/// and `Done` come at `message_stop`; the stop reason maps exactly (`tool_use` to
/// `ToolCalls`, `max_tokens` to `Length`, `stop_sequence` to
/// [`FinishReason::StopSequence`] with the sequence). An `error` event is a classified
/// error; a stream without `message_stop` is `StreamEndedEarly`.
///
/// What the gateway does not model passes as [`ChatEvent::Opaque`] with the JSON verbatim,
/// for an Anthropic client: blocks of other types (`server_tool_use`,
/// `web_search_tool_result`, ...) with all their deltas, a text block's start when it
/// carries `citations`, deltas of unknown types on text and thinking blocks
/// (`citations_delta`), and the stop of a text block that another text block follows (so
/// the blocks keep their boundaries). Their text still comes as text deltas, for the other
/// APIs.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::anthropic::AnthropicStreamDecoder;
/// let mut dec = AnthropicStreamDecoder::new();
/// let mut out = Vec::new();
/// dec.feed(b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n", &mut out)?;
/// dec.feed(b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n", &mut out)?;
/// dec.feed(b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"}}\n\n", &mut out)?;
/// dec.feed(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", &mut out)?;
/// dec.finish(&mut out)?;
/// assert_eq!(out[0], ChatEvent::text("Hi"));
/// assert_eq!(out.last(), Some(&ChatEvent::done(FinishReason::Stop)));
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug)]
pub struct AnthropicStreamDecoder {
    framer: SseFramer,
    state: State,
    error: Option<ProviderError>,
}

#[derive(Debug, Default)]
struct State {
    blocks: Vec<(u32, Block)>,
    calls: u32,
    acc: ToolCallAccumulator,
    usage: Option<WireUsage>,
    finish: Option<FinishReason>,
    done: bool,
    /// A text block that stopped, its stop not yet passed on.
    text_ended: Option<u32>,
    grain: DeltaGrain,
}

/// The stop of a passed-through block (or of a text block followed by another).
fn opaque_stop(index: u32) -> ChatEvent {
    ChatEvent::Opaque {
        index,
        part: OpaquePart::Stop,
        json: String::new(),
    }
}

impl Default for AnthropicStreamDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl AnthropicStreamDecoder {
    /// A new decoder.
    pub fn new() -> Self {
        Self {
            framer: SseFramer::new(),
            state: State::default(),
            error: None,
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
    #[must_use]
    pub fn with_framer(mut self, framer: SseFramer) -> Self {
        self.framer = framer;
        self
    }

    /// Feeds bytes of the SSE body; complete events are decoded into `out`.
    pub fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.framer.push(chunk);
        self.drain(false, out)
    }

    /// Ends the input; a stream without `message_stop` is `StreamEndedEarly`.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        self.drain(true, out)?;
        if !self.state.done {
            let e = ProviderError::ended_early("the Anthropic stream ended without message_stop");
            self.error = Some(e.clone());
            return Err(e);
        }
        Ok(())
    }

    /// Whether `Done` has been emitted.
    pub fn is_done(&self) -> bool {
        self.state.done
    }

    fn drain(&mut self, last: bool, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        loop {
            let next = if last {
                self.framer.finish_ref()
            } else {
                self.framer.next_event_ref()
            };
            let Some(ev) = next else {
                return Ok(());
            };
            let res = ev
                .map_err(ProviderError::from)
                .and_then(|ev: SseEventRef<'_>| self.state.event(ev.event, ev.data, out));
            if let Err(e) = res {
                self.error = Some(e.clone());
                return Err(e);
            }
        }
    }
}

impl State {
    fn event(
        &mut self,
        name: Option<&str>,
        data: &str,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        let data = data.trim_ascii();
        if self.done || data.is_empty() {
            return Ok(());
        }
        if name == Some("error") {
            return Err(classify_stream_error(&ErrorBody::parse(data.as_bytes())));
        }
        let event: WireEvent<'_> = serde_json::from_str(data).map_err(|e| {
            ProviderError::malformed(format!(
                "an SSE event is not an Anthropic stream event: {e}"
            ))
        })?;
        match event {
            WireEvent::MessageStart { message } => self.usage = message.usage,
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, data, out)?,
            WireEvent::ContentBlockDelta { index, delta } => {
                self.delta(index, delta, data, out)?;
            }
            WireEvent::ContentBlockStop { index } => match self.block(index) {
                Some(Block::Tool(call)) => {
                    self.call_event(out, ChatEvent::ToolCallEnd { index: call })?;
                }
                Some(Block::Opaque) => out.push(opaque_stop(index)),
                // Told when the next text block starts: a lone text block stays as it was.
                Some(Block::Text) => self.text_ended = Some(index),
                _ => {}
            },
            WireEvent::MessageDelta { delta, usage } => {
                if let Some(reason) = delta.stop_reason {
                    self.finish = Some(finish_reason(&reason, delta.stop_sequence.as_deref()));
                }
                if let Some(later) = usage {
                    self.usage
                        .get_or_insert_with(WireUsage::default)
                        .merge(later);
                }
            }
            WireEvent::MessageStop => self.end(out)?,
            WireEvent::Error => {
                return Err(classify_stream_error(&ErrorBody::parse(data.as_bytes())));
            }
            WireEvent::Ping | WireEvent::Other => {}
        }
        Ok(())
    }

    /// Checks a tool-call event with the accumulator, then emits it.
    fn call_event(&mut self, out: &mut Vec<ChatEvent>, ev: ChatEvent) -> Result<(), ProviderError> {
        self.acc.push(&ev).map(|()| out.push(ev))
    }

    fn block(&self, index: u32) -> Option<Block> {
        self.blocks
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| *b)
    }

    fn block_start(
        &mut self,
        index: u32,
        start: WireBlockStart<'_>,
        data: &str,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        if self.block(index).is_some() {
            return Err(ProviderError::malformed(format!(
                "content block {index} started twice"
            )));
        }
        if self.blocks.len() >= MAX_CONTENT_BLOCKS {
            return Err(ProviderError::malformed(format!(
                "more than {MAX_CONTENT_BLOCKS} content blocks in one answer"
            )));
        }
        if let (WireBlockStart::Text { .. }, Some(ended)) = (&start, self.text_ended.take()) {
            out.push(opaque_stop(ended));
        }
        let block = match start {
            // A cited block's start passes verbatim (its text, empty when streamed, would
            // then be written twice, so a start with text does not).
            WireBlockStart::Text {
                text,
                citations: Some(_),
            } if text.is_empty() => {
                let json = raw_part(data, OpaquePart::Start)?;
                let part = OpaquePart::Start;
                out.push(ChatEvent::Opaque { index, part, json });
                Block::Text
            }
            WireBlockStart::Text { text, .. } => {
                if !text.is_empty() {
                    out.push(ChatEvent::text(text.0.into_owned()));
                }
                Block::Text
            }
            WireBlockStart::Thinking { thinking } => {
                if !thinking.is_empty() {
                    out.push(ChatEvent::thinking(thinking.0.into_owned()));
                }
                Block::Thinking
            }
            WireBlockStart::RedactedThinking { data } => {
                out.push(ChatEvent::RedactedThinking {
                    data: data.0.into_owned(),
                });
                Block::Other
            }
            WireBlockStart::ToolUse { id, name, input } => {
                let call = self.calls;
                self.calls = self.calls.saturating_add(1);
                let start = ChatEvent::ToolCallStart {
                    index: call,
                    id: id.0.into_owned(),
                    name: name.0.into_owned(),
                };
                self.call_event(out, start)?;
                // A whole input in the start block (not Anthropic's habit, but allowed).
                if let Some(Value::Object(map)) =
                    input.filter(|v| v.as_object().is_some_and(|m| !m.is_empty()))
                {
                    let fragment = Value::Object(map).to_string();
                    self.call_event(
                        out,
                        ChatEvent::ToolCallArgs {
                            index: call,
                            fragment,
                        },
                    )?;
                }
                Block::Tool(call)
            }
            WireBlockStart::Other => {
                let json = raw_part(data, OpaquePart::Start)?;
                let part = OpaquePart::Start;
                out.push(ChatEvent::Opaque { index, part, json });
                Block::Opaque
            }
        };
        self.blocks.push((index, block));
        Ok(())
    }

    fn delta(
        &mut self,
        index: u32,
        delta: WireDelta<'_>,
        data: &str,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        let block = self.block(index).ok_or_else(|| {
            ProviderError::malformed(format!("content block {index} continued before it started"))
        })?;
        match (delta, block) {
            // Every delta of a block passed verbatim, and unknown deltas (`citations_delta`)
            // of text and thinking blocks, pass verbatim too.
            (_, Block::Opaque) | (WireDelta::Other, Block::Text | Block::Thinking) => {
                let json = raw_part(data, OpaquePart::Delta)?;
                let part = OpaquePart::Delta;
                out.push(ChatEvent::Opaque { index, part, json });
            }
            (WireDelta::TextDelta { text }, _) if !text.is_empty() => {
                self.grain.push_text(out, text.0);
            }
            (WireDelta::ThinkingDelta { thinking }, _) if !thinking.is_empty() => {
                self.grain.push_thinking(out, thinking.0);
            }
            (WireDelta::SignatureDelta { signature }, _) => {
                out.push(ChatEvent::ThinkingSignature {
                    signature: signature.0.into_owned(),
                });
            }
            (WireDelta::InputJsonDelta { partial_json }, Block::Tool(call))
                if !partial_json.is_empty() =>
            {
                let fragment = partial_json.0.into_owned();
                self.call_event(
                    out,
                    ChatEvent::ToolCallArgs {
                        index: call,
                        fragment,
                    },
                )?;
            }
            (WireDelta::InputJsonDelta { .. }, Block::Tool(_)) => {}
            (WireDelta::InputJsonDelta { .. }, _) => {
                return Err(ProviderError::malformed(format!(
                    "input_json_delta for content block {index}, which is not a tool_use block"
                )));
            }
            _ => {}
        }
        Ok(())
    }

    fn end(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        // Calls whose block never stopped are ended now (their arguments are still checked).
        for (_, block) in &self.blocks {
            if let Block::Tool(call) = block {
                let end = ChatEvent::ToolCallEnd { index: *call };
                self.acc.push(&end)?;
            }
        }
        let acc = std::mem::take(&mut self.acc);
        acc.finish()?;
        if let Some(u) = self.usage {
            out.push(ChatEvent::Usage(u.to_usage()));
        }
        let mut reason = self.finish.take().unwrap_or(FinishReason::Stop);
        if self.calls > 0 && reason == FinishReason::Stop {
            reason = FinishReason::ToolCalls;
        }
        out.push(ChatEvent::done(reason));
        self.done = true;
        Ok(())
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Vec<Box<RawValue>>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    stop_sequence: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireWholeBlock {
    Text {
        text: String,
        #[serde(default)]
        citations: Option<serde::de::IgnoredAny>,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
        #[serde(default)]
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// Decodes a whole (non-streamed) Anthropic `message` object. Text blocks with `citations`
/// and blocks of types the gateway does not model (server tools) are kept verbatim in
/// `extras.opaque`, for [`crate::anthropic::encode_response`]; their text is in `content`.
/// The blocks are folded as the events of the same answer streamed would be (a
/// [`ResponseBuilder`]), so that interleaved thinking blocks keep their own signatures and
/// places ([`ChatResponse::has_placed_thinking`]).
///
/// ```
/// use switchyard_core::FinishReason;
/// use switchyard_stream::anthropic::decode_response;
/// let body = br#"{"id":"msg_1","type":"message","role":"assistant","model":"claude-x",
///   "content":[{"type":"tool_use","id":"toolu_1","name":"get_weather","input":{"city":"Paris"}}],
///   "stop_reason":"tool_use","stop_sequence":null,"usage":{"input_tokens":12,"output_tokens":7}}"#;
/// let r = decode_response(body)?;
/// assert_eq!(r.tool_calls[0].arguments["city"], "Paris");
/// assert_eq!(r.finish_reason, FinishReason::ToolCalls);
/// assert_eq!(r.usage.unwrap().prompt_tokens, 12);
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
pub fn decode_response(body: &[u8]) -> Result<ChatResponse, ProviderError> {
    let msg: WireMessage = crate::json_util::from_json_bytes(body).map_err(|e| {
        ProviderError::malformed(format!("the answer is not an Anthropic message: {e}"))
    })?;
    if msg.content.len() > MAX_CONTENT_BLOCKS {
        return Err(ProviderError::malformed(format!(
            "more than {MAX_CONTENT_BLOCKS} content blocks in one answer"
        )));
    }
    let mut builder = ResponseBuilder::default();
    let mut calls = 0u32;
    for (index, raw) in msg.content.iter().enumerate() {
        let block: WireWholeBlock = serde_json::from_str(raw.get()).map_err(|e| {
            ProviderError::malformed(format!("a content block is not an Anthropic block: {e}"))
        })?;
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        // Cited text and unknown blocks are kept verbatim for an Anthropic client.
        let start = || ChatEvent::Opaque {
            index,
            part: OpaquePart::Start,
            json: raw.get().to_owned(),
        };
        match block {
            WireWholeBlock::Text {
                text,
                citations: Some(_),
            } => {
                builder.push(start())?;
                builder.push(ChatEvent::text(text))?;
                builder.push(opaque_stop(index))?;
            }
            WireWholeBlock::Text { text, .. } => builder.push(ChatEvent::text(text))?,
            WireWholeBlock::Thinking {
                thinking,
                signature,
            } => {
                builder.push(ChatEvent::thinking(thinking))?;
                if let Some(signature) = signature {
                    builder.push(ChatEvent::ThinkingSignature { signature })?;
                }
            }
            WireWholeBlock::RedactedThinking { data } => {
                builder.push(ChatEvent::RedactedThinking { data })?;
            }
            WireWholeBlock::ToolUse { id, name, input } => {
                let fragment = match input {
                    Value::Object(map) => Value::Object(map).to_string(),
                    Value::Null => String::new(),
                    other => {
                        return Err(ProviderError::malformed(format!(
                            "tool call `{name}` ({id}) has an input that is not a JSON object: {other}"
                        )));
                    }
                };
                let call = calls;
                calls = calls.saturating_add(1);
                builder.push(ChatEvent::ToolCallStart {
                    index: call,
                    id,
                    name,
                })?;
                builder.push(ChatEvent::ToolCallArgs {
                    index: call,
                    fragment,
                })?;
                builder.push(ChatEvent::ToolCallEnd { index: call })?;
            }
            WireWholeBlock::Other => {
                builder.push(start())?;
                builder.push(opaque_stop(index))?;
            }
        }
    }
    if let Some(u) = msg.usage {
        builder.push(ChatEvent::Usage(u.to_usage()))?;
    }
    let reason = finish_reason(
        msg.stop_reason.as_deref().unwrap_or("end_turn"),
        msg.stop_sequence.as_deref(),
    );
    builder.push(ChatEvent::done(reason))?;
    builder.finish()
}

impl crate::decoder::EventDecoder for AnthropicStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        AnthropicStreamDecoder::feed(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        AnthropicStreamDecoder::finish(self, out)
    }
}
