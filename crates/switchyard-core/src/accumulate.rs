//! Folding streamed events into complete tool calls and whole responses.

use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::event::{ChatEvent, FinishReason, Usage};
use crate::request::{MessageExtras, ToolCall};

/// The largest arguments text one tool call may accumulate (16 MiB).
pub const MAX_TOOL_ARGUMENTS_BYTES: usize = 16 * 1024 * 1024;
/// The most tool calls one answer may carry.
pub const MAX_TOOL_CALLS: usize = 1024;
/// The most pass-through block events ([`ChatEvent::Opaque`]) one whole answer keeps.
pub const MAX_OPAQUE_EVENTS: usize = 16 * 1024;
/// The most bytes of pass-through JSON one whole answer keeps (64 MiB).
const MAX_OPAQUE_BYTES: usize = 64 * 1024 * 1024;

#[derive(Debug)]
struct PendingCall {
    index: u32,
    id: String,
    name: String,
    arguments: String,
    ended: bool,
}

/// Assembles tool calls from `ToolCallStart` / `ToolCallArgs` / `ToolCallEnd` events,
/// however the argument text was fragmented and however calls interleave.
///
/// ```
/// use switchyard_core::{ChatEvent, ToolCallAccumulator};
/// let mut acc = ToolCallAccumulator::default();
/// acc.push(&ChatEvent::ToolCallStart { index: 0, id: "call_1".into(), name: "f".into() })?;
/// acc.push(&ChatEvent::ToolCallArgs { index: 0, fragment: "{\"a\":".into() })?;
/// acc.push(&ChatEvent::ToolCallArgs { index: 0, fragment: "1}".into() })?;
/// let calls = acc.finish()?;
/// assert_eq!(calls[0].arguments["a"], 1);
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug, Default)]
pub struct ToolCallAccumulator {
    calls: Vec<PendingCall>,
}

impl ToolCallAccumulator {
    /// Feeds one event; events that are not about tool calls are ignored.
    ///
    /// Errors on a fragment for a call that never started, a duplicate start, too many
    /// calls, or arguments over [`MAX_TOOL_ARGUMENTS_BYTES`].
    pub fn push(&mut self, event: &ChatEvent) -> Result<(), ProviderError> {
        match event {
            ChatEvent::ToolCallStart { index, id, name } => {
                if self.calls.iter().any(|c| c.index == *index) {
                    return Err(ProviderError::malformed(format!(
                        "tool call index {index} started twice"
                    )));
                }
                if self.calls.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_TOOL_CALLS} tool calls in one answer"
                    )));
                }
                self.calls.push(PendingCall {
                    index: *index,
                    id: id.clone(),
                    name: name.clone(),
                    arguments: String::new(),
                    ended: false,
                });
            }
            ChatEvent::ToolCallArgs { index, fragment } => {
                let call = self.find(*index)?;
                if call.arguments.len() + fragment.len() > MAX_TOOL_ARGUMENTS_BYTES {
                    return Err(ProviderError::malformed(format!(
                        "arguments of tool call `{}` exceed {MAX_TOOL_ARGUMENTS_BYTES} bytes",
                        call.name
                    )));
                }
                call.arguments.push_str(fragment);
            }
            ChatEvent::ToolCallEnd { index } => self.find(*index)?.ended = true,
            _ => {}
        }
        Ok(())
    }

    fn find(&mut self, index: u32) -> Result<&mut PendingCall, ProviderError> {
        self.calls
            .iter_mut()
            .find(|c| c.index == index)
            .ok_or_else(|| {
                ProviderError::malformed(format!(
                    "tool call index {index} continued before it started"
                ))
            })
    }

    /// Whether any call has started.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
    }

    /// The complete calls in index order. Arguments must form a JSON object (empty text
    /// counts as `{}`); a call whose arguments never became one is reported with its name
    /// and the text received, never silently dropped.
    pub fn finish(self) -> Result<Vec<ToolCall>, ProviderError> {
        let mut calls = self.calls;
        calls.sort_by_key(|c| c.index);
        calls
            .into_iter()
            .map(|c| {
                let arguments = parse_arguments(&c.arguments).ok_or_else(|| {
                    let mut shown: String = c.arguments.chars().take(200).collect();
                    if shown.len() < c.arguments.len() {
                        shown.push('…');
                    }
                    ProviderError::malformed(format!(
                        "tool call `{}` ({}) has arguments that are not a JSON object: {shown}",
                        c.name, c.id
                    ))
                })?;
                Ok(ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments,
                })
            })
            .collect()
    }
}

/// Parses tool-call arguments: a JSON object, or a JSON string holding one (some servers
/// double-encode), or empty text (`{}`).
pub fn parse_arguments(text: &str) -> Option<Map<String, Value>> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Some(Map::new());
    }
    match serde_json::from_str::<Value>(trimmed).ok()? {
        Value::Object(map) => Some(map),
        Value::String(inner) => match serde_json::from_str::<Value>(&inner).ok()? {
            Value::Object(map) => Some(map),
            _ => None,
        },
        _ => None,
    }
}

/// A whole (non-streamed) chat answer.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ChatResponse {
    /// The answer's text.
    pub content: String,
    /// The model's reasoning, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Tool calls the model made.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// Why the model stopped.
    pub finish_reason: FinishReason,
    /// Token counts, when the upstream reported them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Thinking signature and redacted thinking (Anthropic), when the upstream sent them.
    #[serde(default, skip_serializing_if = "MessageExtras::is_empty")]
    pub extras: MessageExtras,
}

impl ChatResponse {
    /// The events a stream carrying this response would consist of.
    pub fn to_events(&self) -> Vec<ChatEvent> {
        let mut events = Vec::with_capacity(4 + self.tool_calls.len() * 3);
        for data in &self.extras.redacted_thinking {
            events.push(ChatEvent::RedactedThinking { data: data.clone() });
        }
        if let Some(t) = &self.thinking {
            events.push(ChatEvent::thinking(t.clone()));
        }
        if let Some(signature) = &self.extras.thinking_signature {
            events.push(ChatEvent::ThinkingSignature {
                signature: signature.clone(),
            });
        }
        self.text_events(&mut events);
        for (i, call) in self.tool_calls.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            events.push(ChatEvent::ToolCallStart {
                index,
                id: call.id.clone(),
                name: call.name.clone(),
            });
            events.push(ChatEvent::ToolCallArgs {
                index,
                fragment: Value::Object(call.arguments.clone()).to_string(),
            });
            events.push(ChatEvent::ToolCallEnd { index });
        }
        if let Some(u) = self.usage {
            events.push(ChatEvent::Usage(u));
        }
        events.push(ChatEvent::done(self.finish_reason.clone()));
        events
    }
}

impl ChatResponse {
    /// The text, with the pass-through events (`extras.opaque`) at their places in it.
    fn text_events(&self, events: &mut Vec<ChatEvent>) {
        let mut cursor = 0usize;
        for mark in &self.extras.opaque {
            let at = mark.text_at.clamp(cursor, self.content.len());
            if let Some(piece) = self.content.get(cursor..at) {
                if !piece.is_empty() {
                    events.push(ChatEvent::text(piece));
                }
                cursor = at;
            }
            events.push(ChatEvent::Opaque {
                index: mark.index,
                part: mark.part,
                json: mark.json.clone(),
            });
        }
        if let Some(rest) = self.content.get(cursor..).filter(|r| !r.is_empty()) {
            events.push(ChatEvent::text(rest));
        }
    }
}

/// Folds events into a [`ChatResponse`].
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason, ResponseBuilder};
/// let mut b = ResponseBuilder::default();
/// b.push(ChatEvent::text("Hel"))?;
/// b.push(ChatEvent::text("lo"))?;
/// b.push(ChatEvent::done(FinishReason::Stop))?;
/// assert_eq!(b.finish()?.content, "Hello");
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug, Default)]
pub struct ResponseBuilder {
    content: String,
    thinking: Option<String>,
    calls: ToolCallAccumulator,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
    extras: MessageExtras,
    /// Bytes of pass-through JSON kept so far.
    opaque_bytes: usize,
}

impl ResponseBuilder {
    /// Feeds one event. Events after `Done` are a protocol error.
    pub fn push(&mut self, event: ChatEvent) -> Result<(), ProviderError> {
        if self.finish.is_some() {
            return Err(ProviderError::malformed(
                "event after the end of the stream",
            ));
        }
        match event {
            ChatEvent::TextDelta { text } => self.content.push_str(&text),
            ChatEvent::ThinkingDelta { text } => {
                self.thinking
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            ChatEvent::ThinkingSignature { signature } => {
                self.extras.thinking_signature = Some(signature);
            }
            ChatEvent::RedactedThinking { data } => {
                if self.extras.redacted_thinking.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_TOOL_CALLS} redacted thinking blocks in one answer"
                    )));
                }
                self.extras.redacted_thinking.push(data);
            }
            ChatEvent::Opaque { index, part, json } => {
                self.opaque_bytes = self.opaque_bytes.saturating_add(json.len());
                if self.extras.opaque.len() >= MAX_OPAQUE_EVENTS
                    || self.opaque_bytes > MAX_OPAQUE_BYTES
                {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_OPAQUE_EVENTS} pass-through block events or                          {MAX_OPAQUE_BYTES} bytes of them in one answer"
                    )));
                }
                let text_at = self.content.len();
                let mark = crate::OpaqueMark {
                    text_at,
                    index,
                    part,
                    json,
                };
                self.extras.opaque.push(mark);
            }
            ChatEvent::Usage(u) => self.usage = Some(u),
            ChatEvent::Done { finish_reason } => self.finish = Some(finish_reason),
            other => self.calls.push(&other)?,
        }
        Ok(())
    }

    /// Whether the final event has been seen.
    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// The response; an error if the stream never finished or a tool call is malformed.
    /// A response with tool calls reports `tool_calls` as its finish reason even when the
    /// upstream said `stop` (Ollama never says `tool_calls`).
    pub fn finish(self) -> Result<ChatResponse, ProviderError> {
        let Some(mut finish_reason) = self.finish else {
            return Err(ProviderError::ended_early(
                "the stream ended without its final event",
            ));
        };
        let tool_calls = self.calls.finish()?;
        if !tool_calls.is_empty() && finish_reason == FinishReason::Stop {
            finish_reason = FinishReason::ToolCalls;
        }
        Ok(ChatResponse {
            content: self.content,
            thinking: self.thinking,
            tool_calls,
            finish_reason,
            usage: self.usage,
            extras: self.extras,
        })
    }
}
