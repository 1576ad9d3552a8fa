//! Recovery of tool calls that a model wrote as text instead of returning them structured.
//!
//! Small local models, and OpenAI-compatible layers that do not parse their model's tool
//! syntax (Ollama's `/v1` with some models), answer a tool request with text such as
//! `<tool_call>{"name": "get_weather", "arguments": {"city": "Paris"}}</tool_call>`.
//! [`TextToolCallRecovery`] sits between a decoder and its consumer and turns such text
//! into `ToolCallStart` / `ToolCallArgs` / `ToolCallEnd` events. Shapes understood:
//!
//! | family | shape |
//! |---|---|
//! | Hermes / Qwen | `<tool_call>{"name": "f", "arguments": {..}}</tool_call>` (one block per call, or several objects in one block separated by whitespace; a block whose closing tag is missing still counts when the next `<tool_call>` or the end of the text follows its JSON) |
//! | Mistral | `[TOOL_CALLS][{"name": "f", "arguments": {..}}]`, `[TOOL_CALLS]f{..}`, `[TOOL_CALLS]f[ARGS]{..}` |
//! | Llama 3.x | `<|python_tag|>{"name": "f", "parameters": {..}}`, several joined by `;` |
//! | bare | the answer starts with `{"name": "f", "arguments"/"parameters": {..}}` (or a list of them); further objects separated by whitespace or `;` are calls too |
//! | fenced | ```` ```json\n{"name": ..}\n``` ```` anywhere in the text |
//!
//! A call object has a `name` and `arguments` or `parameters` (an object, a JSON string
//! holding one, or `null`); an object with only `name` (and perhaps `type`, `id`) is a call
//! without arguments. Objects with other keys and no arguments (a tool's description or
//! configuration shown to the user) are not calls, nor is an object with a `description`
//! (a tool's definition echoed back, schema and all). Only names of tools offered in the
//! request become calls. A block's calls are taken all or none: when one of its objects is
//! not a call, the whole block is released as the text it was, unchanged.
//!
//! A call's arguments go out as the model wrote them: the text of the arguments object (or
//! the text inside a JSON string holding one), whenever writing the parsed object again
//! would not give that text back (other spacing, an integer beyond 64 bits that a `Value`
//! reads as an `f64`, `1e3`); else the object as serde_json writes it, which is then the
//! same text. The rule is [`switchyard_core::parse_arguments_text`], the one decoders use
//! for [`ToolCall::raw_arguments`](switchyard_core::ToolCall::raw_arguments), so a call
//! accumulated from the events keeps that text exactly when a native call would.
//!
//! After an opening tag, the JSON must start (after whitespace) right away: a tag merely
//! mentioned in prose ("wrap it in a `<tool_call>` tag") is released as text as soon as the
//! next character shows it, and the text after it is read again (a real call may follow).
//! A Hermes block ends where its JSON value ends (found by a JSON-aware scanner), so a
//! closing tag inside an argument string does not cut the call.

use std::collections::{BTreeMap, HashSet};

use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchyard_core::{
    ChatEvent, FinishReason, ParsedArguments, parse_arguments_text, tool_call_id,
};

use crate::json_util::{JsonEnd, fresh_seed};

const HERMES_OPEN: &str = "<tool_call>";
const HERMES_CLOSE: &str = "</tool_call>";
const MISTRAL: &str = "[TOOL_CALLS]";
const MISTRAL_ARGS: &str = "[ARGS]";
const PYTHON_TAG: &str = "<|python_tag|>";
const FENCE: &str = "```";
const TRIGGERS: [&str; 4] = [HERMES_OPEN, MISTRAL, PYTHON_TAG, FENCE];
/// The longest function name accepted in the `[TOOL_CALLS]name{..}` form.
const MAX_NAME_LEN: usize = 256;
/// The longest fence language tag (` ```json `) looked at.
const MAX_FENCE_LANG_LEN: usize = 16;

/// The default bound on text held back while deciding whether it is a call (1 MiB).
pub const DEFAULT_MAX_HELD_BYTES: usize = 1024 * 1024;

/// A sans-IO filter over [`ChatEvent`]s that turns tool calls written as text into
/// structured tool-call events.
///
/// Text that could be the start of a call (a tag, a fence, a prefix of one, a JSON object at
/// the start of the answer) is held back until it is decided, then either becomes a call
/// (`ToolCallStart`, one `ToolCallArgs` with the arguments object as the model wrote it,
/// `ToolCallEnd`; ids are synthesised `call_…`) or is released unchanged. The result does
/// not depend on how the text was split into deltas. Whitespace right after a recovered
/// call is dropped. When it produced calls, `Done { Stop }` becomes `Done { ToolCalls }`.
/// Held text is bounded ([`DEFAULT_MAX_HELD_BYTES`]): past it, the text is released as
/// text. Thinking, usage and structured tool-call events pass through (recovered calls are
/// numbered after any structured ones seen before); text still held when a structured call
/// event comes is released as text before it, so the answer keeps its order. With no
/// offered tools, everything passes through.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::recovery::TextToolCallRecovery;
///
/// let mut rec = TextToolCallRecovery::with_id_seed(["get_weather"], 7);
/// let mut out = Vec::new();
/// rec.push(ChatEvent::text("<tool_call>{\"name\": \"get_weather\", \"argu"), &mut out);
/// assert!(out.is_empty(), "held back while undecided");
/// rec.push(ChatEvent::text("ments\": {\"city\": \"Paris\"}}</tool_call>"), &mut out);
/// rec.push(ChatEvent::done(FinishReason::Stop), &mut out);
/// assert!(matches!(&out[0], ChatEvent::ToolCallStart { index: 0, name, .. } if name == "get_weather"));
/// // The arguments as written (spacing and all), as a native call's would be.
/// assert_eq!(out[1], ChatEvent::ToolCallArgs { index: 0, fragment: r#"{"city": "Paris"}"#.into() });
/// assert_eq!(out[2], ChatEvent::ToolCallEnd { index: 0 });
/// assert_eq!(out[3], ChatEvent::done(FinishReason::ToolCalls));
/// ```
#[derive(Debug)]
pub struct TextToolCallRecovery {
    offered: HashSet<String>,
    seed: u64,
    max_held: usize,
    /// Text received but not yet released or turned into calls.
    buf: String,
    /// The candidate call being read from `buf` (which then starts with it).
    block: Option<Block>,
    /// Nothing but whitespace has been released yet (a bare JSON call may still come).
    at_start: bool,
    /// A call was just recovered: drop whitespace that follows it.
    after_call: bool,
    /// The next index for a call, recovered or the upstream's own.
    next_index: u32,
    /// The upstream's own calls: (its index, the index given out), at most
    /// [`switchyard_core::MAX_TOOL_CALLS`]. Recovered calls take indexes too, so an
    /// upstream call seen after one gets the next free index, never one already used.
    native: Vec<(u32, u32)>,
    /// How many calls were recovered.
    recovered: u32,
    /// The text part of the stream has ended (a `Usage` or `Done` came, or `finish`).
    text_ended: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Hermes,
    Mistral,
    PythonTag,
    Fence,
    Bare,
}

#[derive(Debug)]
enum Phase {
    /// Whitespace, then a JSON value (or, for Mistral, a function name) must start.
    Value,
    /// Mistral's `name{..}` form: the name started at `start`.
    Name { start: usize },
    /// A JSON value that started at `start`; `name` is set for Mistral's `name{..}` form.
    Json {
        start: usize,
        end: JsonEnd,
        name: Option<(usize, usize)>,
    },
    /// After a value: whitespace, then a separator or the end of the block.
    Separator,
    /// The language tag after an opening fence.
    FenceLang { start: usize },
}

#[derive(Debug)]
struct Block {
    kind: Kind,
    phase: Phase,
    /// How far into `buf` the block has been read.
    pos: usize,
    /// Calls parsed so far (emitted only when the whole block is accepted).
    calls: Vec<TextCall>,
}

/// A call read from text: the tool's name and the JSON text of its arguments object, as
/// the model wrote it when writing the parsed object again would not give that text back
/// (see [`arguments_text`]).
type TextCall = (String, String);

/// `Step::More`, or `Step::Reject` of the whole buffer once the text has ended.
fn more_or_reject(buf: &str, at_end: bool) -> Step {
    if at_end {
        Step::Reject(buf.len())
    } else {
        Step::More
    }
}

/// The phases of reading a block. Each returns `Some(step)` when reading stops there,
/// or `None` after moving to the next phase.
impl Block {
    /// Whitespace, then a JSON value (or, for Mistral, a function name) must start.
    fn step_value(&mut self, buf: &str, at_end: bool) -> Option<Step> {
        let bytes = buf.as_bytes();
        self.pos += leading_ws(&buf[self.pos..]);
        let Some(&c) = bytes.get(self.pos) else {
            return Some(if !at_end {
                Step::More
            } else if self.calls.is_empty() {
                Step::Reject(buf.len())
            } else {
                Step::Accept(buf.len())
            });
        };
        if c == b'{' || c == b'[' {
            self.phase = Phase::Json {
                start: self.pos,
                end: JsonEnd::default(),
                name: None,
            };
        } else if self.kind == Kind::Mistral && self.calls.is_empty() && is_name_byte(c) {
            self.phase = Phase::Name { start: self.pos };
        } else {
            return Some(Step::Reject(self.pos));
        }
        None
    }

    /// Mistral's `name{..}` form: the name started at `start`.
    fn step_name(&mut self, buf: &str, start: usize, at_end: bool) -> Option<Step> {
        let bytes = buf.as_bytes();
        while bytes.get(self.pos).copied().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        if self.pos - start > MAX_NAME_LEN {
            return Some(Step::Reject(self.pos));
        }
        let rest = &buf[self.pos..];
        if rest.is_empty() || (MISTRAL_ARGS.starts_with(rest) && rest.len() < 6) {
            return Some(more_or_reject(buf, at_end));
        }
        let name_end = self.pos;
        if rest.starts_with(MISTRAL_ARGS) {
            self.pos += MISTRAL_ARGS.len();
        }
        match bytes.get(self.pos) {
            Some(b'{') => {
                self.phase = Phase::Json {
                    start: self.pos,
                    end: JsonEnd::default(),
                    name: Some((start, name_end)),
                };
                None
            }
            Some(_) => Some(Step::Reject(self.pos)),
            None => {
                // `[ARGS]` seen, the object not yet: read the name again later.
                self.pos = name_end;
                Some(more_or_reject(buf, at_end))
            }
        }
    }

    /// A JSON value; parsed into calls once its end is found.
    fn step_json(&mut self, offered: &HashSet<String>, buf: &str, at_end: bool) -> Option<Step> {
        let Phase::Json { start, end, name } = &mut self.phase else {
            return None;
        };
        let Some(off) = end.feed(&buf.as_bytes()[self.pos..]) else {
            self.pos = buf.len();
            return Some(more_or_reject(buf, at_end));
        };
        let value_end = self.pos + off;
        let text = &buf[*start..value_end];
        let parsed = match name {
            Some((a, b)) => named_call(offered, &buf[*a..*b], text),
            None => calls_in(offered, text),
        };
        let Some(calls) = parsed else {
            return Some(Step::Reject(value_end));
        };
        self.calls.extend(calls);
        self.pos = value_end;
        if self.kind == Kind::Mistral {
            return Some(Step::Accept(value_end));
        }
        self.phase = Phase::Separator;
        None
    }

    /// After a value: whitespace, then a separator or the end of the block.
    fn step_separator(&mut self, buf: &str, at_end: bool) -> Option<Step> {
        let value_end = self.pos;
        let ws = leading_ws(&buf[value_end..]);
        let rest = &buf[value_end + ws..];
        if rest.is_empty() {
            return Some(if at_end {
                Step::Accept(buf.len())
            } else {
                Step::More
            });
        }
        match self.kind {
            Kind::Fence => {
                if rest.starts_with(FENCE) {
                    return Some(Step::Accept(value_end + ws + FENCE.len()));
                }
                if FENCE.starts_with(rest) && !at_end {
                    return Some(Step::More);
                }
                if at_end && FENCE.starts_with(rest) {
                    return Some(Step::Accept(buf.len()));
                }
                Some(Step::Reject(value_end + ws))
            }
            Kind::Hermes | Kind::Bare if rest.starts_with('{') => {
                // Another call object after whitespace: the block's calls are all or none.
                self.pos = value_end + ws;
                self.phase = Phase::Value;
                None
            }
            Kind::Hermes => Some(hermes_end(
                rest,
                value_end,
                value_end + ws,
                buf.len(),
                at_end,
            )),
            Kind::Bare | Kind::PythonTag if rest.starts_with(';') => {
                self.pos = value_end + ws + 1;
                self.phase = Phase::Value;
                None
            }
            _ => Some(Step::Accept(value_end)),
        }
    }

    /// The language tag after an opening fence, which started at `start`.
    fn step_fence_lang(&mut self, buf: &str, start: usize, at_end: bool) -> Option<Step> {
        let bytes = buf.as_bytes();
        while bytes.get(self.pos).copied().is_some_and(is_name_byte) {
            self.pos += 1;
        }
        if self.pos - start > MAX_FENCE_LANG_LEN {
            return Some(Step::Reject(self.pos));
        }
        let lang = &buf[start..self.pos];
        let json_lang = lang.is_empty() || lang.eq_ignore_ascii_case("json");
        match bytes.get(self.pos) {
            None => Some(more_or_reject(buf, at_end)),
            Some(_) if !json_lang => Some(Step::Reject(self.pos)),
            Some(b'\n' | b'\r' | b' ' | b'\t' | b'{' | b'[') => {
                self.phase = Phase::Value;
                None
            }
            Some(_) => Some(Step::Reject(self.pos)),
        }
    }
}

/// How a Hermes block goes on after its JSON value, which ended at `value_end`; `rest` (not
/// empty) starts at `rest_at`, after whitespace. The closing tag ends the block (also cut
/// short at the end of the text); a missing one still counts when the next block or the end
/// of the text follows. Anything else means the value was not a call block: text.
fn hermes_end(rest: &str, value_end: usize, rest_at: usize, buf_len: usize, at_end: bool) -> Step {
    if rest.starts_with(HERMES_CLOSE) {
        Step::Accept(rest_at + HERMES_CLOSE.len())
    } else if rest.starts_with(HERMES_OPEN) {
        Step::Accept(value_end)
    } else if HERMES_CLOSE.starts_with(rest) {
        if at_end {
            Step::Accept(buf_len)
        } else {
            Step::More
        }
    } else if HERMES_OPEN.starts_with(rest) {
        if at_end {
            Step::Accept(value_end)
        } else {
            Step::More
        }
    } else {
        Step::Reject(value_end)
    }
}

/// What reading a block gave.
enum Step {
    /// Needs more text.
    More,
    /// The block is a call (or calls) and ends at this offset.
    Accept(usize),
    /// Not a call: the text up to this offset is released, the rest is read again as text.
    Reject(usize),
}

impl TextToolCallRecovery {
    /// A filter recovering calls to the `offered` tool names, with a fresh id seed.
    pub fn new<I, S>(offered: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with_id_seed(offered, fresh_seed())
    }

    /// A filter whose synthesised ids are `tool_call_id(seed + n)` for the n-th recovered
    /// call (deterministic, for tests).
    pub fn with_id_seed<I, S>(offered: I, seed: u64) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            offered: offered.into_iter().map(Into::into).collect(),
            seed,
            max_held: DEFAULT_MAX_HELD_BYTES,
            buf: String::new(),
            block: None,
            at_start: true,
            after_call: false,
            next_index: 0,
            native: Vec::new(),
            recovered: 0,
            text_ended: false,
        }
    }

    /// Sets the bound on held-back text (at least 64 bytes).
    #[must_use]
    pub fn with_max_held(mut self, bytes: usize) -> Self {
        self.max_held = bytes.max(64);
        self
    }

    /// Whether at least one call was recovered from text.
    pub fn recovered_calls(&self) -> bool {
        self.recovered > 0
    }

    /// Filters one event; what is decided goes to `out`.
    pub fn push(&mut self, event: ChatEvent, out: &mut Vec<ChatEvent>) {
        if self.offered.is_empty() {
            out.push(event);
            return;
        }
        match event {
            ChatEvent::TextDelta { text } => {
                self.text_ended = false;
                if self.buf.is_empty() && self.block.is_none() && !self.at_start {
                    // The common case: nothing held. Scan the delta in place.
                    self.buf = text;
                } else {
                    self.buf.push_str(&text);
                }
                self.process(false, out);
            }
            ChatEvent::ToolCallStart { index, id, name } => {
                self.release_held(out);
                let index = self.native_index(index);
                out.push(ChatEvent::ToolCallStart { index, id, name });
            }
            // Text held while a native call streams stays held: released between the
            // call's fragments it would split the call (an Anthropic client's `tool_use`
            // block closes at text); it goes out with the next text or at the end.
            ChatEvent::ToolCallArgs { index, fragment } => {
                let index = self.native_index(index);
                out.push(ChatEvent::ToolCallArgs { index, fragment });
            }
            ChatEvent::ToolCallEnd { index } => {
                let index = self.native_index(index);
                out.push(ChatEvent::ToolCallEnd { index });
            }
            ChatEvent::Usage(_) => {
                self.end_text(out);
                out.push(event);
            }
            ChatEvent::Done { finish_reason } => {
                self.end_text(out);
                let finish_reason = if self.recovered > 0 && finish_reason == FinishReason::Stop {
                    FinishReason::ToolCalls
                } else {
                    finish_reason
                };
                out.push(ChatEvent::Done { finish_reason });
            }
            ChatEvent::ThinkingDelta { .. }
            | ChatEvent::ThinkingSignature { .. }
            | ChatEvent::RedactedThinking { .. }
            | ChatEvent::Opaque { .. } => out.push(event),
        }
    }

    /// Ends the input: decides everything still held (a last unclosed `<tool_call>` block
    /// still counts) and releases the rest as text.
    pub fn finish(&mut self, out: &mut Vec<ChatEvent>) {
        if !self.offered.is_empty() {
            self.end_text(out);
        }
    }

    fn end_text(&mut self, out: &mut Vec<ChatEvent>) {
        if !self.text_ended {
            self.process(true, out);
            self.text_ended = true;
        }
    }

    /// Reads `buf` as far as it can be decided.
    fn process(&mut self, at_end: bool, out: &mut Vec<ChatEvent>) {
        // Every round either ends (needs more text) or consumes text from `buf`.
        loop {
            if self.block.is_some() {
                let step = self.step_block(at_end);
                match step {
                    Step::More => {
                        if self.buf.len() > self.max_held {
                            let all = self.buf.len();
                            self.reject(all, out);
                            continue;
                        }
                        return;
                    }
                    Step::Accept(end) => self.accept(end, out),
                    Step::Reject(end) => self.reject(end, out),
                }
                continue;
            }
            if self.buf.is_empty() {
                return;
            }
            if !self.scan_text(at_end, out) {
                return;
            }
        }
    }

    /// Text mode: releases what cannot be a call, starts a block at a trigger. Returns
    /// whether a block was started (the loop goes on).
    fn scan_text(&mut self, at_end: bool, out: &mut Vec<ChatEvent>) -> bool {
        if self.after_call {
            let ws = leading_ws(&self.buf);
            self.buf.drain(..ws);
            if self.buf.is_empty() {
                return false;
            }
            self.after_call = false;
        }
        if self.at_start {
            let ws = leading_ws(&self.buf);
            let rest = &self.buf[ws..];
            if rest.is_empty() {
                if at_end || self.buf.len() > self.max_held {
                    self.at_start = false;
                    self.release(self.buf.len(), out);
                }
                return false;
            }
            if let Some(kind) = trigger_at(rest) {
                self.at_start = false;
                self.release(ws, out);
                self.start_block(kind);
                return true;
            }
            if !at_end && TRIGGERS.iter().any(|t| t.starts_with(rest)) {
                return false;
            }
            self.at_start = false;
            if rest.starts_with('{') || rest.starts_with('[') {
                self.block = Some(Block {
                    kind: Kind::Bare,
                    phase: Phase::Value,
                    pos: 0,
                    calls: Vec::new(),
                });
                return true;
            }
        }
        // The earliest complete trigger, or else a suffix that may grow into one.
        let found = TRIGGERS
            .iter()
            .filter_map(|t| memchr::memmem::find(self.buf.as_bytes(), t.as_bytes()))
            .min();
        match found {
            Some(at) => {
                self.release(at, out);
                if let Some(kind) = trigger_at(&self.buf) {
                    self.start_block(kind);
                    return true;
                }
                false
            }
            None => {
                let keep = if at_end {
                    0
                } else {
                    partial_trigger_suffix(&self.buf)
                };
                let cut = self.buf.len() - keep;
                self.release(cut, out);
                false
            }
        }
    }

    fn start_block(&mut self, kind: Kind) {
        let (pos, phase) = match kind {
            Kind::Hermes => (HERMES_OPEN.len(), Phase::Value),
            Kind::Mistral => (MISTRAL.len(), Phase::Value),
            Kind::PythonTag => (PYTHON_TAG.len(), Phase::Value),
            Kind::Fence => (FENCE.len(), Phase::FenceLang { start: FENCE.len() }),
            Kind::Bare => (0, Phase::Value),
        };
        self.block = Some(Block {
            kind,
            phase,
            pos,
            calls: Vec::new(),
        });
    }

    /// Advances the current block over `buf`, one phase at a time.
    fn step_block(&mut self, at_end: bool) -> Step {
        let Some(block) = self.block.as_mut() else {
            return Step::More;
        };
        let buf = self.buf.as_str();
        loop {
            let step = match block.phase {
                Phase::Value => block.step_value(buf, at_end),
                Phase::Name { start } => block.step_name(buf, start, at_end),
                Phase::Json { .. } => block.step_json(&self.offered, buf, at_end),
                Phase::Separator => block.step_separator(buf, at_end),
                Phase::FenceLang { start } => block.step_fence_lang(buf, start, at_end),
            };
            if let Some(step) = step {
                return step;
            }
        }
    }

    /// The index given out for the upstream's call `upstream`: the one it got when first
    /// seen, else the next free one. Past the call limit, indexes pass through (the
    /// decoders refuse that many calls before this matters).
    fn native_index(&mut self, upstream: u32) -> u32 {
        if let Some(&(_, given)) = self.native.iter().find(|(u, _)| *u == upstream) {
            return given;
        }
        if self.native.len() >= switchyard_core::MAX_TOOL_CALLS {
            return upstream;
        }
        let given = self.next_index;
        self.next_index = self.next_index.saturating_add(1);
        self.native.push((upstream, given));
        given
    }

    /// The block up to `end` was calls: emits them and drops its text.
    fn accept(&mut self, end: usize, out: &mut Vec<ChatEvent>) {
        let calls = self.block.take().map(|b| b.calls).unwrap_or_default();
        drain_prefix(&mut self.buf, end);
        for (name, fragment) in calls {
            let index = self.next_index;
            self.next_index = self.next_index.saturating_add(1);
            let id = tool_call_id(self.seed.wrapping_add(u64::from(self.recovered)));
            self.recovered = self.recovered.saturating_add(1);
            out.push(ChatEvent::ToolCallStart { index, id, name });
            out.push(ChatEvent::ToolCallArgs { index, fragment });
            out.push(ChatEvent::ToolCallEnd { index });
        }
        self.after_call = true;
    }

    /// The block was not a call: releases its text up to `end` unchanged.
    fn reject(&mut self, end: usize, out: &mut Vec<ChatEvent>) {
        self.block = None;
        self.release(end, out);
    }

    /// A structured (native) call event came: text still held (a possible tag or fence
    /// prefix, an undecided block, leading whitespace) was not the start of a text call,
    /// so it is released as text now, before the call, keeping the model's order.
    fn release_held(&mut self, out: &mut Vec<ChatEvent>) {
        self.block = None;
        if !self.buf.is_empty() {
            let all = self.buf.len();
            self.release(all, out);
        }
    }

    /// Emits `buf[..end]` as text.
    fn release(&mut self, end: usize, out: &mut Vec<ChatEvent>) {
        let end = floor_char_boundary(&self.buf, end);
        if end == 0 {
            return;
        }
        self.at_start = false;
        if end == self.buf.len() {
            out.push(ChatEvent::text(std::mem::take(&mut self.buf)));
        } else {
            let rest = self.buf.split_off(end);
            out.push(ChatEvent::text(std::mem::replace(&mut self.buf, rest)));
        }
    }
}

/// Which trigger `text` starts with.
fn trigger_at(text: &str) -> Option<Kind> {
    if text.starts_with(HERMES_OPEN) {
        Some(Kind::Hermes)
    } else if text.starts_with(MISTRAL) {
        Some(Kind::Mistral)
    } else if text.starts_with(PYTHON_TAG) {
        Some(Kind::PythonTag)
    } else if text.starts_with(FENCE) {
        Some(Kind::Fence)
    } else {
        None
    }
}

/// The length of the longest suffix of `text` that is a proper prefix of a trigger.
fn partial_trigger_suffix(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut best = 0;
    for t in TRIGGERS {
        let t = t.as_bytes();
        let max = (t.len() - 1).min(bytes.len());
        for len in (best + 1..=max).rev() {
            if bytes[bytes.len() - len..] == t[..len] {
                best = len;
                break;
            }
        }
    }
    best
}

fn leading_ws(text: &str) -> usize {
    text.bytes()
        .take_while(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .count()
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.')
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    at = at.min(text.len());
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

fn drain_prefix(buf: &mut String, end: usize) {
    let end = floor_char_boundary(buf, end);
    if end == buf.len() {
        buf.clear();
    } else {
        buf.drain(..end);
    }
}

/// The calls in `text`: one call object or a list of them, every name offered.
fn calls_in(offered: &HashSet<String>, text: &str) -> Option<Vec<TextCall>> {
    let text = text.trim();
    // Read as a `Value` first: only JSON a `Value` holds is a call (a number out of range
    // or nesting too deep anywhere in it is not), whatever parts of it are kept as text.
    match serde_json::from_str::<Value>(text).ok()? {
        Value::Object(_) => Some(vec![call_from_object(offered, text)?]),
        Value::Array(items) if !items.is_empty() => {
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            items
                .into_iter()
                .map(|item| call_from_object(offered, item.get()))
                .collect()
        }
        _ => None,
    }
}

/// An object's members, each value as the JSON text written (for a repeated key the last,
/// as in a `Value`).
type Members<'a> = BTreeMap<String, &'a RawValue>;

/// `{"name", "arguments"|"parameters"}`, also wrapped as `{"type":"function","function":{..}}`;
/// `text` is the object's JSON (anything else is not a call). Without
/// `arguments`/`parameters`, only `name` (with perhaps `type`, `id`) makes a call, one
/// without arguments: an object with other keys is some other JSON that names a tool.
fn call_from_object(offered: &HashSet<String>, text: &str) -> Option<TextCall> {
    let mut obj: Members<'_> = serde_json::from_str(text).ok()?;
    let Some(name) = obj.remove("name") else {
        return call_from_object(offered, obj.remove("function")?.get());
    };
    let name: String = serde_json::from_str(name.get()).ok()?;
    // A call never carries a description: this is the tool's definition echoed back.
    if !offered.contains(&name) || obj.contains_key("description") {
        return None;
    }
    let args = match obj.remove("arguments").or_else(|| obj.remove("parameters")) {
        Some(args) => Some(args),
        None if obj.keys().all(|k| k == "type" || k == "id") => None,
        None => return None,
    };
    Some((name, arguments_of(args)?))
}

/// Mistral's `name{..}` form; `args` is the object's JSON.
fn named_call(offered: &HashSet<String>, name: &str, args: &str) -> Option<Vec<TextCall>> {
    if !offered.contains(name) || !args.starts_with('{') {
        return None;
    }
    Some(vec![(
        name.to_owned(),
        arguments_text(parse_arguments_text(args)?),
    )])
}

/// The arguments member's JSON, when present: an object, a JSON string holding one (its
/// content is the text written), or `null` (none).
fn arguments_of(value: Option<&RawValue>) -> Option<String> {
    let Some(value) = value else {
        return Some("{}".to_owned());
    };
    let parsed = match value.get().as_bytes().first()? {
        b'{' => parse_arguments_text(value.get())?,
        b'"' => parse_arguments_text(&serde_json::from_str::<String>(value.get()).ok()?)?,
        _ if value.get() == "null" => (Map::new(), None),
        _ => return None,
    };
    Some(arguments_text(parsed))
}

/// The text a recovered call's arguments go out as: what the model wrote when the parsed
/// object would not write it back ([`parse_arguments_text`]'s rule, the one decoders use for
/// `ToolCall::raw_arguments`), else the object written, which is that same text.
fn arguments_text((arguments, written): ParsedArguments) -> String {
    match written {
        Some(text) => text.into(),
        None => serde_json::to_string(&arguments).unwrap_or_else(|_| "{}".to_owned()),
    }
}

#[cfg(test)]
mod native_call_tests {
    //! Text held back while undecided keeps its place before a native call.

    use switchyard_core::{ChatEvent, FinishReason};

    use super::TextToolCallRecovery;

    fn run(text: &str) -> Vec<ChatEvent> {
        let mut rec = TextToolCallRecovery::with_id_seed(["f"], 1);
        let mut out = Vec::new();
        for e in [
            ChatEvent::text(text),
            ChatEvent::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "f".into(),
            },
            ChatEvent::ToolCallArgs {
                index: 0,
                fragment: "{}".into(),
            },
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::done(FinishReason::ToolCalls),
        ] {
            rec.push(e, &mut out);
        }
        out
    }

    #[test]
    fn held_text_is_released_before_a_native_call() {
        for text in [
            "I will run `date`",
            "see <tool_",
            "\n\n",
            "{\"name\": \"f\"",
        ] {
            let out = run(text);
            let texts: String = out
                .iter()
                .filter_map(|e| match e {
                    ChatEvent::TextDelta { text } => Some(text.as_str()),
                    _ => None,
                })
                .collect();
            assert_eq!(texts, text);
            let last_text = out
                .iter()
                .rposition(|e| matches!(e, ChatEvent::TextDelta { .. }));
            let first_call = out
                .iter()
                .position(|e| matches!(e, ChatEvent::ToolCallStart { .. }));
            assert!(last_text < first_call, "{text:?}: {out:?}");
        }
    }

    #[test]
    fn text_held_between_a_native_calls_fragments_waits_for_the_end() {
        let mut rec = TextToolCallRecovery::with_id_seed(["f"], 1);
        let mut out = Vec::new();
        for e in [
            ChatEvent::ToolCallStart {
                index: 0,
                id: "call_a".into(),
                name: "f".into(),
            },
            ChatEvent::ToolCallArgs {
                index: 0,
                fragment: "{\"a\":".into(),
            },
            ChatEvent::text("\n"),
            ChatEvent::ToolCallArgs {
                index: 0,
                fragment: "1}".into(),
            },
            ChatEvent::done(FinishReason::ToolCalls),
        ] {
            rec.push(e, &mut out);
        }
        let kinds: Vec<&str> = out
            .iter()
            .map(|e| match e {
                ChatEvent::ToolCallStart { .. } => "start",
                ChatEvent::ToolCallArgs { .. } => "args",
                ChatEvent::TextDelta { .. } => "text",
                ChatEvent::Done { .. } => "done",
                _ => "other",
            })
            .collect();
        assert_eq!(kinds, ["start", "args", "args", "text", "done"], "{out:?}");
    }
}
