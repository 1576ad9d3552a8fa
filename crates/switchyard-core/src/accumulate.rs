//! Folding streamed events into complete tool calls and whole responses.

use serde_json::{Map, Value};

use crate::error::ProviderError;
use crate::event::{ChatEvent, FinishReason, OpaqueMark, OpaquePart, Usage};
use crate::request::{MessageExtras, ToolCall};

/// The largest arguments text one tool call may accumulate (16 MiB).
pub const MAX_TOOL_ARGUMENTS_BYTES: usize = 16 * 1024 * 1024;
/// The most tool calls one answer may carry.
pub const MAX_TOOL_CALLS: usize = 1024;
/// The most pass-through block events ([`ChatEvent::Opaque`]) one whole answer keeps.
pub const MAX_OPAQUE_EVENTS: usize = 16 * 1024;
/// The most bytes of pass-through JSON one whole answer keeps (64 MiB).
const MAX_OPAQUE_BYTES: usize = 64 * 1024 * 1024;
/// The most thinking and redacted-thinking blocks one whole answer keeps apart.
const MAX_THINKING_BLOCKS: usize = 4096;

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
                let parsed = parse_arguments_text(&c.arguments).ok_or_else(|| {
                    let mut shown: String = c.arguments.chars().take(200).collect();
                    if shown.len() < c.arguments.len() {
                        shown.push('…');
                    }
                    ProviderError::malformed(format!(
                        "tool call `{}` ({}) has arguments that are not a JSON object: {shown}",
                        c.name, c.id
                    ))
                })?;
                let (arguments, raw_arguments) = parsed;
                Ok(ToolCall {
                    id: c.id,
                    name: c.name,
                    arguments,
                    raw_arguments,
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

/// Arguments read from text: the object, and the text when the object would not write it
/// back ([`ToolCall::raw_arguments`]).
pub type ParsedArguments = (Map<String, Value>, Option<Box<str>>);

/// [`parse_arguments`], also giving the text the object was read from when writing the
/// map again would not reproduce it (other spacing, an integer beyond 64 bits read as an
/// `f64`): that text is what [`ToolCall::raw_arguments`] keeps. For a JSON string holding
/// an object, the text is the string's content.
pub fn parse_arguments_text(text: &str) -> Option<ParsedArguments> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Some((Map::new(), None));
    }
    let (map, written) = match serde_json::from_str::<Value>(trimmed).ok()? {
        Value::Object(map) => (map, std::borrow::Cow::Borrowed(trimmed)),
        Value::String(inner) => match serde_json::from_str::<Value>(&inner).ok()? {
            Value::Object(map) => (map, std::borrow::Cow::Owned(inner.trim().to_owned())),
            _ => return None,
        },
        _ => return None,
    };
    let same = serde_json::to_string(&map).is_ok_and(|again| again == written);
    let raw = (!same).then(|| written.into_owned().into_boxed_str());
    Some((map, raw))
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
    ///
    /// An answer whose blocks the plain layout (redacted thinking, one thinking block, then
    /// text and tool calls) would misorder, such as interleaved thinking with two signed
    /// thinking blocks around a server tool, also keeps each thinking and redacted-thinking
    /// block in `extras.opaque`, at its place ([`ChatResponse::has_placed_thinking`]);
    /// `thinking` still holds all the thinking, joined, and `extras.thinking_signature`
    /// the last signature.
    #[serde(default, skip_serializing_if = "MessageExtras::is_empty")]
    pub extras: MessageExtras,
}

/// A thinking or redacted-thinking block as Anthropic writes it: the JSON of its
/// [`OpaqueMark::PLACED`] start mark.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum PlacedBlock<'a> {
    Thinking {
        #[serde(borrow)]
        thinking: std::borrow::Cow<'a, str>,
        #[serde(borrow, default, skip_serializing_if = "str::is_empty")]
        signature: std::borrow::Cow<'a, str>,
    },
    RedactedThinking {
        #[serde(borrow)]
        data: std::borrow::Cow<'a, str>,
    },
}

impl PlacedBlock<'_> {
    /// The block of a placed start mark, `None` for any other mark.
    fn of(mark: &OpaqueMark) -> Option<PlacedBlock<'_>> {
        if mark.index != OpaqueMark::PLACED || mark.part != OpaquePart::Start {
            return None;
        }
        serde_json::from_str(&mark.json).ok()
    }

    /// The events a stream carrying the block would hold.
    fn events(self, events: &mut Vec<ChatEvent>) {
        match self {
            PlacedBlock::Thinking {
                thinking,
                signature,
            } => {
                if !thinking.is_empty() {
                    events.push(ChatEvent::thinking(thinking.into_owned()));
                }
                if !signature.is_empty() {
                    events.push(ChatEvent::ThinkingSignature {
                        signature: signature.into_owned(),
                    });
                }
            }
            PlacedBlock::RedactedThinking { data } => events.push(ChatEvent::RedactedThinking {
                data: data.into_owned(),
            }),
        }
    }
}

impl ChatResponse {
    /// Whether the thinking and redacted-thinking blocks stand in `extras.opaque` at their
    /// places among the other blocks (start marks with index [`OpaqueMark::PLACED`] whose
    /// JSON is the block as Anthropic writes it): an answer whose blocks the plain layout
    /// would misorder. An encoder of Anthropic then writes them from there, in order; other
    /// APIs keep reading the joined `thinking`.
    ///
    /// ```
    /// use switchyard_core::{ChatEvent, FinishReason, ResponseBuilder};
    /// let mut b = ResponseBuilder::default();
    /// for e in [
    ///     ChatEvent::thinking("First."),
    ///     ChatEvent::ThinkingSignature { signature: "sigA".into() },
    ///     ChatEvent::thinking("Second."),
    ///     ChatEvent::ThinkingSignature { signature: "sigB".into() },
    ///     ChatEvent::text("Answer."),
    ///     ChatEvent::done(FinishReason::Stop),
    /// ] {
    ///     b.push(e)?;
    /// }
    /// let r = b.finish()?;
    /// assert!(r.has_placed_thinking());
    /// assert_eq!(r.thinking.as_deref(), Some("First.Second."));
    /// assert_eq!(r.extras.opaque[0].json, r#"{"type":"thinking","thinking":"First.","signature":"sigA"}"#);
    /// # Ok::<(), switchyard_core::ProviderError>(())
    /// ```
    pub fn has_placed_thinking(&self) -> bool {
        self.extras
            .opaque
            .iter()
            .any(|m| PlacedBlock::of(m).is_some())
    }

    /// The events a stream carrying this response would consist of: thinking first, then
    /// the text, then the tool calls; placed thinking blocks
    /// ([`ChatResponse::has_placed_thinking`]) come at their places instead.
    pub fn to_events(&self) -> Vec<ChatEvent> {
        let mut events = Vec::with_capacity(4 + self.tool_calls.len() * 3);
        if !self.has_placed_thinking() {
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
                fragment: call.arguments_json().into_owned(),
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
    /// The text, with the pass-through events (`extras.opaque`) at their places in it, and
    /// placed thinking blocks as thinking events.
    fn text_events(&self, events: &mut Vec<ChatEvent>) {
        let mut cursor = 0usize;
        let mut placed_open = false;
        for mark in &self.extras.opaque {
            let at = mark.text_at.clamp(cursor, self.content.len());
            if let Some(piece) = self.content.get(cursor..at) {
                if !piece.is_empty() {
                    events.push(ChatEvent::text(piece));
                }
                cursor = at;
            }
            if let Some(block) = PlacedBlock::of(mark) {
                block.events(events);
                placed_open = true;
                continue;
            }
            if std::mem::take(&mut placed_open)
                && mark.index == OpaqueMark::PLACED
                && mark.part == OpaquePart::Stop
            {
                continue;
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
    /// The thinking and redacted-thinking blocks so far, each where it came.
    placed: Vec<Placed>,
    /// The thinking block under way: where it came, and where its text starts in
    /// `thinking`.
    open_thinking: Option<(Place, usize)>,
}

/// Where a block came in a whole answer.
#[derive(Debug, Clone, Copy)]
struct Place {
    /// How many pass-through marks came before it.
    at: usize,
    /// The length (bytes) of the answer's text before it.
    text_at: usize,
}

/// A thinking or redacted-thinking block of a whole answer, where it came.
#[derive(Debug)]
struct Placed {
    place: Place,
    kind: PlacedKind,
}

#[derive(Debug)]
enum PlacedKind {
    /// A thinking block: its text is `thinking[from..to]`.
    Thinking {
        from: usize,
        to: usize,
        signature: Option<String>,
    },
    /// A redacted-thinking block: the data is `extras.redacted_thinking[i]`.
    Redacted(usize),
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
            ChatEvent::TextDelta { text } => {
                if !text.is_empty() {
                    self.close_thinking(None);
                }
                self.content.push_str(&text);
            }
            ChatEvent::ThinkingDelta { text } => {
                if !text.is_empty() {
                    self.open_thinking()?;
                }
                self.thinking
                    .get_or_insert_with(String::new)
                    .push_str(&text);
            }
            // A signature ends its thinking block (Anthropic's `signature_delta` is a
            // block's last delta).
            ChatEvent::ThinkingSignature { signature } => {
                self.open_thinking()?;
                self.close_thinking(Some(signature.clone()));
                self.extras.thinking_signature = Some(signature);
            }
            ChatEvent::RedactedThinking { data } => {
                self.close_thinking(None);
                if self.extras.redacted_thinking.len() >= MAX_TOOL_CALLS {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_TOOL_CALLS} redacted thinking blocks in one answer"
                    )));
                }
                let place = self.place_block()?;
                let kind = PlacedKind::Redacted(self.extras.redacted_thinking.len());
                self.placed.push(Placed { place, kind });
                self.extras.redacted_thinking.push(data);
            }
            ChatEvent::Opaque { index, part, json } => {
                self.close_thinking(None);
                self.opaque_bytes = self.opaque_bytes.saturating_add(json.len());
                if self.extras.opaque.len() >= MAX_OPAQUE_EVENTS
                    || self.opaque_bytes > MAX_OPAQUE_BYTES
                {
                    return Err(ProviderError::malformed(format!(
                        "more than {MAX_OPAQUE_EVENTS} pass-through block events or                          {MAX_OPAQUE_BYTES} bytes of them in one answer"
                    )));
                }
                let text_at = self.content.len();
                let mark = OpaqueMark {
                    text_at,
                    index,
                    part,
                    json,
                };
                self.extras.opaque.push(mark);
            }
            ChatEvent::Usage(u) => self.usage = Some(u),
            ChatEvent::Done { finish_reason } => self.finish = Some(finish_reason),
            other => {
                if matches!(other, ChatEvent::ToolCallStart { .. }) {
                    self.close_thinking(None);
                }
                self.calls.push(&other)?;
            }
        }
        Ok(())
    }

    /// Where a block coming now stands; an error past [`MAX_THINKING_BLOCKS`].
    fn place_block(&self) -> Result<Place, ProviderError> {
        if self.placed.len() >= MAX_THINKING_BLOCKS {
            return Err(ProviderError::malformed(format!(
                "more than {MAX_THINKING_BLOCKS} thinking blocks in one answer"
            )));
        }
        Ok(Place {
            at: self.extras.opaque.len(),
            text_at: self.content.len(),
        })
    }

    /// Starts a thinking block unless one is under way.
    fn open_thinking(&mut self) -> Result<(), ProviderError> {
        if self.open_thinking.is_none() {
            let place = self.place_block()?;
            let from = self.thinking.as_ref().map_or(0, String::len);
            self.open_thinking = Some((place, from));
        }
        Ok(())
    }

    /// Ends the thinking block under way, if any (another block begins, or its signature
    /// came).
    fn close_thinking(&mut self, signature: Option<String>) {
        if let Some((place, from)) = self.open_thinking.take() {
            let to = self.thinking.as_ref().map_or(0, String::len);
            let kind = PlacedKind::Thinking {
                from,
                to,
                signature,
            };
            self.placed.push(Placed { place, kind });
        }
    }

    /// Whether the final event has been seen.
    pub fn is_done(&self) -> bool {
        self.finish.is_some()
    }

    /// The response; an error if the stream never finished or a tool call is malformed.
    /// A response with tool calls reports `tool_calls` as its finish reason even when the
    /// upstream said `stop` (Ollama never says `tool_calls`).
    ///
    /// When the plain layout (redacted thinking, one thinking block, then text and tool
    /// calls) would misorder the answer's blocks, each thinking and redacted-thinking block
    /// is also kept in `extras.opaque` at its place ([`ChatResponse::has_placed_thinking`]).
    pub fn finish(mut self) -> Result<ChatResponse, ProviderError> {
        let Some(mut finish_reason) = self.finish.take() else {
            return Err(ProviderError::ended_early(
                "the stream ended without its final event",
            ));
        };
        self.close_thinking(None);
        let tool_calls = std::mem::take(&mut self.calls).finish()?;
        if !tool_calls.is_empty() && finish_reason == FinishReason::Stop {
            finish_reason = FinishReason::ToolCalls;
        }
        if !plain_layout_fits(&self.placed) {
            self.place_thinking();
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

    /// Puts each thinking and redacted-thinking block into `extras.opaque` at its place,
    /// as a start mark holding the block and a stop mark (index [`OpaqueMark::PLACED`]).
    fn place_thinking(&mut self) {
        let marks = std::mem::take(&mut self.extras.opaque);
        let mut out = Vec::with_capacity(marks.len() + 2 * self.placed.len());
        let mut placed = std::mem::take(&mut self.placed).into_iter().peekable();
        let thinking = self.thinking.as_deref().unwrap_or("");
        for (i, mark) in marks.into_iter().enumerate() {
            while let Some(p) = placed.next_if(|p| p.place.at <= i) {
                out.extend(placed_marks(&p, thinking, &self.extras));
            }
            out.push(mark);
        }
        for p in placed {
            out.extend(placed_marks(&p, thinking, &self.extras));
        }
        self.extras.opaque = out;
    }
}

/// Whether the plain layout of a whole answer (redacted thinking, then one thinking block,
/// then text and pass-through blocks, then tool calls) keeps its thinking blocks where they
/// came: at most one thinking block, nothing before any of them, redacted ones first.
fn plain_layout_fits(placed: &[Placed]) -> bool {
    let is_thinking = |p: &Placed| matches!(p.kind, PlacedKind::Thinking { .. });
    let thinking_blocks = placed.iter().filter(|p| is_thinking(p)).count();
    thinking_blocks <= 1
        && placed
            .iter()
            .all(|p| p.place.at == 0 && p.place.text_at == 0)
        && placed
            .iter()
            .position(is_thinking)
            .is_none_or(|i| i + 1 == placed.len())
}

/// The start and stop marks of a placed block.
fn placed_marks(p: &Placed, thinking: &str, extras: &MessageExtras) -> [OpaqueMark; 2] {
    let block = match &p.kind {
        PlacedKind::Thinking {
            from,
            to,
            signature,
        } => PlacedBlock::Thinking {
            thinking: thinking.get(*from..*to).unwrap_or_default().into(),
            signature: signature.as_deref().unwrap_or_default().into(),
        },
        PlacedKind::Redacted(i) => PlacedBlock::RedactedThinking {
            data: extras
                .redacted_thinking
                .get(*i)
                .map_or("", String::as_str)
                .into(),
        },
    };
    let mark = |part, json| OpaqueMark {
        text_at: p.place.text_at,
        index: OpaqueMark::PLACED,
        part,
        json,
    };
    [
        mark(
            OpaquePart::Start,
            serde_json::to_string(&block).unwrap_or_default(),
        ),
        mark(OpaquePart::Stop, String::new()),
    ]
}

#[cfg(test)]
mod thinking_block_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn build(events: Vec<ChatEvent>) -> ChatResponse {
        let mut b = ResponseBuilder::default();
        for e in events {
            b.push(e).unwrap();
        }
        b.finish().unwrap()
    }

    fn sig(s: &str) -> ChatEvent {
        ChatEvent::ThinkingSignature {
            signature: s.to_owned(),
        }
    }

    fn server_tool(index: u32) -> [ChatEvent; 2] {
        [
            ChatEvent::Opaque {
                index,
                part: OpaquePart::Start,
                json: r#"{"type":"server_tool_use"}"#.to_owned(),
            },
            ChatEvent::Opaque {
                index,
                part: OpaquePart::Stop,
                json: String::new(),
            },
        ]
    }

    #[test]
    fn two_signed_thinking_blocks_keep_their_order_and_signatures() {
        let [start, stop] = server_tool(1);
        let r = build(vec![
            ChatEvent::thinking("First "),
            ChatEvent::thinking("thought."),
            sig("sigA"),
            start,
            stop,
            ChatEvent::thinking("Second thought."),
            sig("sigB"),
            ChatEvent::text("Answer."),
            ChatEvent::done(FinishReason::Stop),
        ]);
        // Other APIs still read the joined thinking.
        assert_eq!(r.thinking.as_deref(), Some("First thought.Second thought."));
        assert_eq!(r.extras.thinking_signature.as_deref(), Some("sigB"));
        assert!(r.has_placed_thinking());
        let parts: Vec<(u32, OpaquePart, &str)> = r
            .extras
            .opaque
            .iter()
            .map(|m| (m.index, m.part, m.json.as_str()))
            .collect();
        let first = r#"{"type":"thinking","thinking":"First thought.","signature":"sigA"}"#;
        let second = r#"{"type":"thinking","thinking":"Second thought.","signature":"sigB"}"#;
        assert_eq!(
            parts,
            [
                (OpaqueMark::PLACED, OpaquePart::Start, first),
                (OpaqueMark::PLACED, OpaquePart::Stop, ""),
                (1, OpaquePart::Start, r#"{"type":"server_tool_use"}"#),
                (1, OpaquePart::Stop, ""),
                (OpaqueMark::PLACED, OpaquePart::Start, second),
                (OpaqueMark::PLACED, OpaquePart::Stop, ""),
            ]
        );
        // Replayed as events, each block comes back at its place, and folds the same.
        let events = r.to_events();
        assert_eq!(events[0], ChatEvent::thinking("First thought."));
        assert_eq!(events[1], sig("sigA"));
        assert!(matches!(events[2], ChatEvent::Opaque { index: 1, .. }));
        assert_eq!(events[4], ChatEvent::thinking("Second thought."));
        assert_eq!(events[5], sig("sigB"));
        assert_eq!(events[6], ChatEvent::text("Answer."));
        assert_eq!(build(events), r);
    }

    #[test]
    fn one_thinking_block_first_keeps_the_plain_layout() {
        let r = build(vec![
            ChatEvent::RedactedThinking { data: "r".into() },
            ChatEvent::thinking("Hmm."),
            sig("sig"),
            ChatEvent::text("Hi"),
            ChatEvent::ToolCallStart {
                index: 0,
                id: "call_1".into(),
                name: "f".into(),
            },
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::done(FinishReason::Stop),
        ]);
        assert!(!r.has_placed_thinking());
        assert!(r.extras.opaque.is_empty());
        assert_eq!(r.extras.redacted_thinking, ["r"]);
        assert_eq!(build(r.to_events()), r);
    }

    #[test]
    fn redacted_thinking_after_thinking_is_placed() {
        let r = build(vec![
            ChatEvent::thinking("Hmm."),
            sig("sig"),
            ChatEvent::RedactedThinking { data: "r".into() },
            ChatEvent::text("Hi"),
            ChatEvent::done(FinishReason::Stop),
        ]);
        assert!(r.has_placed_thinking());
        let starts: Vec<&str> = r
            .extras
            .opaque
            .iter()
            .filter(|m| m.part == OpaquePart::Start)
            .map(|m| m.json.as_str())
            .collect();
        assert_eq!(
            starts,
            [
                r#"{"type":"thinking","thinking":"Hmm.","signature":"sig"}"#,
                r#"{"type":"redacted_thinking","data":"r"}"#,
            ]
        );
        let events = r.to_events();
        assert_eq!(events[2], ChatEvent::RedactedThinking { data: "r".into() });
        assert_eq!(build(events), r);
    }

    #[test]
    fn thinking_after_text_is_placed_after_it() {
        let r = build(vec![
            ChatEvent::text("Hi"),
            ChatEvent::thinking("Then this."),
            ChatEvent::done(FinishReason::Stop),
        ]);
        assert!(r.has_placed_thinking());
        assert_eq!(r.extras.opaque[0].text_at, 2);
        assert_eq!(
            r.extras.opaque[0].json,
            r#"{"type":"thinking","thinking":"Then this."}"#
        );
        assert_eq!(
            r.to_events()[..2],
            [ChatEvent::text("Hi"), ChatEvent::thinking("Then this.")]
        );
    }
}

#[cfg(test)]
mod raw_arguments_tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn finish(fragments: &[&str]) -> ToolCall {
        let mut acc = ToolCallAccumulator::default();
        acc.push(&ChatEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
        })
        .unwrap();
        for f in fragments {
            acc.push(&ChatEvent::ToolCallArgs {
                index: 0,
                fragment: (*f).to_owned(),
            })
            .unwrap();
        }
        acc.finish().unwrap().remove(0)
    }

    #[test]
    fn text_the_map_would_rewrite_is_kept_and_written_back() {
        let written = r#"{"order_id":98765432109876543210987,"unit":"c"}"#;
        let call = finish(&[&written[..20], &written[20..]]);
        assert_eq!(call.raw_arguments.as_deref(), Some(written));
        assert_eq!(call.arguments["unit"], "c");
        assert_eq!(call.arguments_json(), written);
        assert_eq!(
            serde_json::to_string(&call.arguments_object()).unwrap(),
            written
        );
        // A replay carries the same text, so folding it again gives the same call.
        let resp = ChatResponse {
            content: String::new(),
            thinking: None,
            tool_calls: vec![call.clone()],
            finish_reason: FinishReason::ToolCalls,
            usage: None,
            extras: MessageExtras::default(),
        };
        let mut b = ResponseBuilder::default();
        for e in resp.to_events() {
            b.push(e).unwrap();
        }
        assert_eq!(b.finish().unwrap().tool_calls, vec![call]);
    }

    #[test]
    fn text_the_map_writes_back_unchanged_is_not_kept_twice() {
        let call = finish(&[r#"{"b":1,"a":"x"}"#]);
        assert_eq!(call.raw_arguments, None);
        // Keys keep the model's order (serde_json's `preserve_order`).
        assert_eq!(call.arguments_json(), r#"{"b":1,"a":"x"}"#);
        assert_eq!(finish(&[""]).raw_arguments, None);
        // Other spacing is kept; a double-encoded object keeps the inner text.
        assert_eq!(
            finish(&[r#" {"a": 1} "#]).raw_arguments.as_deref(),
            Some(r#"{"a": 1}"#)
        );
        assert_eq!(
            finish(&[r#""{\"n\":98765432109876543210987}""#])
                .raw_arguments
                .as_deref(),
            Some(r#"{"n":98765432109876543210987}"#)
        );
    }
}
