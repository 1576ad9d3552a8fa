//! Encoding [`ChatEvent`]s as OpenAI Responses stream events (`event:` + `data:` SSE frames,
//! each with a `sequence_number`), and assembling the whole `response` object that
//! `response.completed` carries (and a non-streamed answer is).

use crate::json_util::{write_json, write_json_str};
use std::sync::OnceLock;

use serde_json::Value;
use switchyard_core::{
    ChatEvent, FinishReason, MAX_TOOL_CALLS, Message, ProviderError, Role, ToolCall, Usage,
    parse_arguments_text,
};

use super::frame::{DeltaFrame, DeltaTemplate, ObjectWriter, write_frame};
use super::output::{Channel, ItemKind, OutputItem, write_call_item, write_text_item, write_usage};

/// The most text (answer, reasoning and tool arguments together) one response object holds.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;

/// What every event of one response repeats.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponseHead {
    /// The response id (`resp_…`).
    pub id: String,
    /// Creation time, Unix seconds.
    pub created_at: u64,
    /// The model as the client named it.
    pub model: String,
    /// Request parameters the response object repeats
    /// ([`super::request::ResponsesRequest::echo`]).
    pub echo: super::Echo,
    /// Names of the tools whose calls are `custom_tool_call`s (input is free text).
    pub custom_tools: Vec<String>,
}

/// The message or reasoning item being written.
#[derive(Debug)]
struct OpenItem {
    kind: ItemKind,
    output_index: usize,
    id: String,
    text: String,
    /// Its delta frames, made at the first delta.
    deltas: Option<DeltaTemplate>,
}

/// A tool call being written.
#[derive(Debug)]
struct OpenCall {
    index: u32,
    output_index: usize,
    id: String,
    call_id: String,
    name: String,
    arguments: String,
    custom: bool,
}

/// Encodes a stream of [`ChatEvent`]s as Responses API events.
///
/// The first event written is `response.created`, then `response.in_progress`. Text goes
/// into a `message` item (`output_item.added`, `content_part.added`, `output_text.delta`s,
/// then the `done` events), thinking into a `reasoning` item (`reasoning_summary_*` events
/// when the request asked for a summary, `reasoning_text.*` otherwise), each tool call into a
/// `function_call` item (arguments streamed as `function_call_arguments.delta`) or, for a
/// custom tool, a `custom_tool_call` item (its input in one `custom_tool_call_input.delta`).
/// `Done` closes open items and writes `response.completed` (or `response.incomplete` on a
/// length stop) with the whole response and usage; an error writes `error` and
/// `response.failed`. After either, the encoder writes nothing more.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::responses::{Echo, ResponseHead, ResponsesStreamEncoder};
///
/// let head = ResponseHead { id: "resp_1".into(), created_at: 1_700_000_000,
///     model: "chat".into(), echo: Echo::default(), custom_tools: Vec::new() };
/// let mut enc = ResponsesStreamEncoder::new(head);
/// let mut out = Vec::new();
/// enc.encode(&ChatEvent::text("Hi"), &mut out);
/// enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("event: response.created\ndata: {"));
/// assert!(text.contains(r#""delta":"Hi""#));
/// assert_eq!(enc.final_response().unwrap()["status"], "completed");
/// ```
#[derive(Debug)]
pub struct ResponsesStreamEncoder {
    head: ResponseHead,
    /// The response object's members (from `head.echo`'s keys).
    layout: Layout,
    /// Where the items' id suffix starts in `head.id` (`resp_abc` -> `abc`).
    suffix_at: usize,
    summary: bool,
    seq: u64,
    started: bool,
    /// Finished items by output index (`None` while an item is open).
    output: Vec<Option<OutputItem>>,
    open: Option<OpenItem>,
    calls: Vec<OpenCall>,
    /// The answer as a conversation turn, for `previous_response_id`.
    turn: Message,
    usage: Option<Usage>,
    bytes: usize,
    /// How the response ended, once it has.
    ending: Option<Ending>,
    /// A failed response's error: reason code and message.
    failure: Option<(&'static str, String)>,
    /// The whole response object, built when first asked for (a streamed answer that is
    /// not stored never needs it: its frames are written without it).
    final_response: OnceLock<Value>,
    /// Whether frames are written (not for a whole answer: [`Self::without_frames`]).
    frames: bool,
}

/// How a response ended: its status and, for `incomplete`, the reason.
#[derive(Debug, Clone, Copy)]
struct Ending {
    status: &'static str,
    incomplete: Option<&'static str>,
}

impl ResponsesStreamEncoder {
    /// An encoder for one response.
    pub fn new(head: ResponseHead) -> Self {
        let suffix_at = if head.id.starts_with("resp_") { 5 } else { 0 };
        let summary = head.echo.asks_summary();
        let layout = Layout::of(&head.echo);
        Self {
            layout,
            head,
            suffix_at,
            summary,
            seq: 0,
            started: false,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            turn: Message::empty(Role::Assistant),
            usage: None,
            bytes: 0,
            ending: None,
            failure: None,
            final_response: OnceLock::new(),
            frames: true,
        }
    }

    /// For a whole (non-streamed) answer: the same items, turn, usage and ending, but no
    /// frames are written (`encode` appends nothing); the answer is
    /// [`Self::final_response_json`] (or [`Self::final_response`]).
    #[must_use]
    pub fn without_frames(mut self) -> Self {
        self.frames = false;
        self
    }

    /// The JSON text of [`Self::final_response`] (the same bytes), written without building
    /// the `Value`, once the response has completed or is incomplete; `None` before the
    /// end and for a failed response (whose object [`Self::final_response`] keeps).
    pub fn final_response_json(&self) -> Option<Vec<u8>> {
        let ending = self.ending.filter(|e| e.status != "failed")?;
        let mut out = Vec::with_capacity(1024);
        self.write_response_object(ending, &mut out);
        Some(out)
    }

    /// Whether the final event (`response.completed`, `.incomplete` or `.failed`) was written.
    pub fn is_done(&self) -> bool {
        self.ending.is_some()
    }

    /// The whole response object, once the stream has ended (read back from the JSON text
    /// the encoder writes for it).
    pub fn final_response(&self) -> Option<&Value> {
        let ending = self.ending?;
        Some(self.final_response.get_or_init(|| {
            let mut json = Vec::with_capacity(1024);
            self.write_response_object(ending, &mut json);
            // The writer writes valid JSON (unit tests read every shape back).
            serde_json::from_slice(&json).unwrap_or(Value::Null)
        }))
    }

    /// The answer as an assistant turn (text, reasoning, tool calls; a custom tool's call
    /// carries its input as the argument `input`), for continuing the conversation.
    pub fn assistant_turn(&self) -> &Message {
        &self.turn
    }

    /// Appends the events for one chat event to `out`.
    pub fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if self.is_done() {
            return;
        }
        self.start(out);
        let grown = match event {
            ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } => text.len(),
            ChatEvent::ToolCallArgs { fragment, .. } => fragment.len(),
            _ => 0,
        };
        self.bytes = self.bytes.saturating_add(grown);
        if self.bytes > MAX_RESPONSE_BYTES {
            let msg = format!("the answer exceeds {MAX_RESPONSE_BYTES} bytes");
            self.encode_error(&ProviderError::malformed(msg), out);
            return;
        }
        match event {
            ChatEvent::TextDelta { text } => self.text(ItemKind::Message, text, out),
            ChatEvent::ThinkingDelta { text } => self.text(ItemKind::Reasoning, text, out),
            ChatEvent::ToolCallStart { index, id, name } => self.call_start(*index, id, name, out),
            ChatEvent::ToolCallArgs { index, fragment } => self.call_args(*index, fragment, out),
            ChatEvent::ToolCallEnd { index } => {
                if let Some(pos) = self.calls.iter().position(|c| c.index == *index) {
                    let call = self.calls.remove(pos);
                    self.call_end(call, out);
                }
            }
            ChatEvent::Usage(usage) => self.usage = Some(*usage),
            ChatEvent::Done { finish_reason } => self.finish(finish_reason, out),
            // Anthropic's thinking signatures have no Responses field (its reasoning items
            // carry OpenAI's own `encrypted_content`): dropped, as the chat encoders do.
            ChatEvent::ThinkingSignature { .. }
            | ChatEvent::RedactedThinking { .. }
            | ChatEvent::Opaque { .. } => {}
        }
    }

    /// Ends the stream with `error` and `response.failed` naming the failure.
    pub fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.is_done() {
            return;
        }
        self.start(out);
        let code = crate::openai::error_code(err);
        let message = if err.message().is_empty() {
            code
        } else {
            err.message()
        };
        self.failure = Some((code, message.to_owned()));
        let ending = Ending {
            status: "failed",
            incomplete: None,
        };
        let seq = self.next_seq();
        let mut response = Vec::new();
        if self.frames {
            write_frame(out, "error", |data| {
                data.str("code", code)
                    .str("message", message)
                    .raw("param", b"null")
                    .num("sequence_number", seq);
            });
            self.write_response_object(ending, &mut response);
        }
        self.emit_response(out, "response.failed", &response);
        self.ending = Some(ending);
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if !self.frames {
            self.seq += 2;
            return;
        }
        // One object, written once and copied into the second frame.
        let mut response = Vec::with_capacity(512);
        self.write_response_object(
            Ending {
                status: "in_progress",
                incomplete: None,
            },
            &mut response,
        );
        self.emit_response(out, "response.created", &response);
        self.emit_response(out, "response.in_progress", &response);
    }

    /// The sequence number of the next event, counted whether or not frames are written.
    fn next_seq(&mut self) -> u64 {
        let seq = self.seq;
        self.seq += 1;
        seq
    }

    /// Writes a frame whose data is `{"response": <response>}` from the response object's
    /// JSON text.
    fn emit_response(&mut self, out: &mut Vec<u8>, kind: &str, response: &[u8]) {
        if !self.frames {
            self.seq += 1;
            return;
        }
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: {\"response\":");
        out.extend_from_slice(response);
        out.extend_from_slice(b",\"sequence_number\":");
        out.extend_from_slice(itoa::Buffer::new().format(self.seq).as_bytes());
        out.extend_from_slice(b",\"type\":");
        write_json(out, kind);
        out.extend_from_slice(b"}\n\n");
        self.seq += 1;
    }

    fn next_index(&mut self, prefix: &str) -> (usize, String) {
        let index = self.output.len();
        self.output.push(None);
        // `{prefix}_{suffix}_{index}`, without `fmt`.
        let suffix = self.head.id.get(self.suffix_at..).unwrap_or_default();
        let mut digits = itoa::Buffer::new();
        let digits = digits.format(index);
        let mut id = String::with_capacity(prefix.len() + suffix.len() + digits.len() + 2);
        for piece in [prefix, "_", suffix, "_", digits] {
            id.push_str(piece);
        }
        (index, id)
    }

    fn text(&mut self, kind: ItemKind, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        if self.open.as_ref().is_some_and(|o| o.kind != kind) {
            self.close_open(out);
        }
        if self.open.is_none() {
            self.open_item(kind, out);
        }
        let Some(item) = self.open.as_mut() else {
            return;
        };
        item.text.push_str(text);
        let sequence_number = self.seq;
        self.seq += 1;
        if !self.frames {
            return;
        }
        if item.deltas.is_none() {
            let ch = Channel::of(kind, self.summary);
            let index = |summary: bool| (ch.summary_index == summary).then_some(0);
            let frame = DeltaFrame {
                content_index: index(false),
                delta: text,
                item_id: &item.id,
                logprobs: kind == ItemKind::Message,
                output_index: item.output_index,
                sequence_number,
                summary_index: index(true),
                kind: ch.delta,
            };
            match DeltaTemplate::of(&frame) {
                Some(template) => item.deltas = Some(template),
                None => return frame.write(out),
            }
        }
        if let Some(template) = &item.deltas {
            template.write(text, sequence_number, out);
        }
    }

    fn open_item(&mut self, kind: ItemKind, out: &mut Vec<u8>) {
        let (output_index, id) = match kind {
            ItemKind::Message => self.next_index("msg"),
            ItemKind::Reasoning => self.next_index("rs"),
        };
        let summary = self.summary;
        let (added, part_added) = (self.next_seq(), self.next_seq());
        if self.frames {
            write_frame(out, "response.output_item.added", |data| {
                data.with("item", |out| write_text_item(kind, summary, &id, None, out))
                    .num("output_index", output_index)
                    .num("sequence_number", added);
            });
            let ch = Channel::of(kind, summary);
            write_frame(out, ch.part_added, |data| {
                part_event(data, &ch, &id, output_index, part_added, "");
            });
        }
        self.open = Some(OpenItem {
            kind,
            output_index,
            id,
            text: String::new(),
            deltas: None,
        });
    }

    fn close_open(&mut self, out: &mut Vec<u8>) {
        let Some(item) = self.open.take() else {
            return;
        };
        let OpenItem {
            kind,
            output_index,
            id,
            text,
            deltas: _,
        } = item;
        let ch = Channel::of(kind, self.summary);
        let (text_done, part_done) = (self.next_seq(), self.next_seq());
        if self.frames {
            write_frame(out, ch.text_done, |data| {
                ch.index_before(data);
                data.str("item_id", &id);
                if kind == ItemKind::Message {
                    data.raw("logprobs", b"[]");
                }
                data.num("output_index", output_index)
                    .num("sequence_number", text_done);
                ch.index_after(data);
                data.str("text", &text);
            });
            write_frame(out, ch.part_done, |data| {
                part_event(data, &ch, &id, output_index, part_done, &text);
            });
        }
        match kind {
            ItemKind::Message => self
                .turn
                .content
                .push(switchyard_core::ContentPart::Text(text.clone())),
            ItemKind::Reasoning => self.add_thinking(&text),
        }
        let item = OutputItem::Text {
            kind,
            summary: self.summary,
            id,
            text,
        };
        self.item_done(output_index, item, out);
    }

    fn add_thinking(&mut self, text: &str) {
        let thinking = self.turn.thinking.get_or_insert_with(String::new);
        thinking.push_str(text);
    }

    fn item_done(&mut self, output_index: usize, item: OutputItem, out: &mut Vec<u8>) {
        let seq = self.next_seq();
        if self.frames {
            write_frame(out, "response.output_item.done", |data| {
                data.with("item", |out| item.write(out))
                    .num("output_index", output_index)
                    .num("sequence_number", seq);
            });
        }
        if let Some(slot) = self.output.get_mut(output_index) {
            *slot = Some(item);
        }
    }

    fn call_start(&mut self, index: u32, call_id: &str, name: &str, out: &mut Vec<u8>) {
        if self.calls.iter().any(|c| c.index == index) {
            let msg = format!("tool call index {index} started twice");
            self.encode_error(&ProviderError::malformed(msg), out);
            return;
        }
        if self.turn.tool_calls.len() + self.calls.len() >= MAX_TOOL_CALLS {
            let msg = format!("more than {MAX_TOOL_CALLS} tool calls in one answer");
            self.encode_error(&ProviderError::malformed(msg), out);
            return;
        }
        self.close_open(out);
        let custom = self.head.custom_tools.iter().any(|t| t == name);
        let (output_index, id) = self.next_index(if custom { "ctc" } else { "fc" });
        let seq = self.next_seq();
        if self.frames {
            write_frame(out, "response.output_item.added", |data| {
                data.with("item", |out| {
                    write_call_item(custom, &id, call_id, name, None, out);
                })
                .num("output_index", output_index)
                .num("sequence_number", seq);
            });
        }
        self.calls.push(OpenCall {
            index,
            output_index,
            id,
            call_id: call_id.to_owned(),
            name: name.to_owned(),
            arguments: String::new(),
            custom,
        });
    }

    fn call_args(&mut self, index: u32, fragment: &str, out: &mut Vec<u8>) {
        let Some(call) = self.calls.iter_mut().find(|c| c.index == index) else {
            let msg = format!("tool call index {index} continued before it started");
            self.encode_error(&ProviderError::malformed(msg), out);
            return;
        };
        call.arguments.push_str(fragment);
        if call.custom || fragment.is_empty() {
            // A custom tool's input is the `input` argument: known once the call is whole.
            return;
        }
        if self.frames {
            DeltaFrame {
                content_index: None,
                delta: fragment,
                item_id: &call.id,
                logprobs: false,
                output_index: call.output_index,
                sequence_number: self.seq,
                summary_index: None,
                kind: "response.function_call_arguments.delta",
            }
            .write(out);
        }
        self.seq += 1;
    }

    fn call_end(&mut self, call: OpenCall, out: &mut Vec<u8>) {
        let parsed = parse_arguments_text(&call.arguments);
        let OpenCall {
            output_index,
            id,
            call_id,
            name,
            arguments,
            custom,
            ..
        } = call;
        let body = if custom {
            let input = parsed
                .as_ref()
                .and_then(|(args, _)| args.get("input"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let input = input.unwrap_or_else(|| arguments.clone());
            let (delta, done) = (self.next_seq(), self.next_seq());
            if self.frames {
                for (kind, key, seq) in [
                    ("response.custom_tool_call_input.delta", "delta", delta),
                    ("response.custom_tool_call_input.done", "input", done),
                ] {
                    write_frame(out, kind, |data| {
                        data.str(key, &input)
                            .str("item_id", &id)
                            .num("output_index", output_index)
                            .num("sequence_number", seq);
                    });
                }
            }
            input
        } else {
            let seq = self.next_seq();
            if self.frames {
                write_frame(out, "response.function_call_arguments.done", |data| {
                    data.str("arguments", &arguments)
                        .str("item_id", &id)
                        .str("name", &name)
                        .num("output_index", output_index)
                        .num("sequence_number", seq);
                });
            }
            arguments
        };
        let (arguments, raw_arguments) = parsed.unwrap_or_default();
        self.turn.tool_calls.push(ToolCall {
            id: call_id.clone(),
            name: name.clone(),
            arguments,
            raw_arguments,
        });
        let item = OutputItem::Call {
            custom,
            id,
            call_id,
            name,
            body,
        };
        self.item_done(output_index, item, out);
    }

    fn finish(&mut self, reason: &FinishReason, out: &mut Vec<u8>) {
        self.close_open(out);
        while !self.calls.is_empty() {
            let call = self.calls.remove(0);
            self.call_end(call, out);
        }
        let incomplete = match reason {
            r if r.is_cut() => Some("max_output_tokens"),
            FinishReason::ContentFilter => Some("content_filter"),
            _ => None,
        };
        let (status, event) = match incomplete {
            Some(_) => ("incomplete", "response.incomplete"),
            None => ("completed", "response.completed"),
        };
        let ending = Ending { status, incomplete };
        if self.frames {
            let mut response = Vec::with_capacity(1024);
            self.write_response_object(ending, &mut response);
            self.emit_response(out, event, &response);
        } else {
            self.seq += 1;
        }
        self.ending = Some(ending);
    }

    /// Writes the response object with the ending's status (and `incomplete_details`, or a
    /// failure's `error`): the fixed fields and the request's echoed parameters, in the
    /// order of the layout made for this response.
    fn write_response_object(&self, ending: Ending, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, piece) in self.layout.get().pieces.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match piece {
                Piece::Fixed(field) => {
                    out.extend_from_slice(field.member_head().as_bytes());
                    self.write_fixed(*field, ending, out);
                }
                Piece::Echo(fields) => out.extend_from_slice(self.head.echo.run(fields.clone())),
            }
        }
        out.push(b'}');
    }

    /// The value of one of [`FIXED_FIELDS`].
    fn write_fixed(&self, field: Fixed, ending: Ending, out: &mut Vec<u8>) {
        match field {
            Fixed::CreatedAt => {
                out.extend_from_slice(itoa::Buffer::new().format(self.head.created_at).as_bytes())
            }
            Fixed::Error => match &self.failure {
                Some((code, message)) => {
                    let mut error = ObjectWriter::open(out);
                    error.str("code", code).str("message", message);
                    error.close();
                }
                None => out.extend_from_slice(b"null"),
            },
            Fixed::Id => write_json_str(out, &self.head.id),
            Fixed::IncompleteDetails => match ending.incomplete {
                Some(reason) => {
                    let mut details = ObjectWriter::open(out);
                    details.name("reason", reason);
                    details.close();
                }
                None => out.extend_from_slice(b"null"),
            },
            Fixed::Model => write_json_str(out, &self.head.model),
            Fixed::Object => out.extend_from_slice(b"\"response\""),
            Fixed::Output => {
                out.push(b'[');
                for (i, item) in self.output.iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    item.write(out);
                }
                out.push(b']');
            }
            Fixed::Status => write_json_str(out, ending.status),
            Fixed::Usage if ending.status != "in_progress" => {
                write_usage(&self.usage.unwrap_or_default(), out);
            }
            Fixed::Usage => out.extend_from_slice(b"null"),
        }
    }
}

/// The members of a `content_part` / `reasoning_summary_part` event (`added` with an empty
/// part, `done` with the whole text), sorted, before `type`.
fn part_event(
    data: &mut ObjectWriter<'_>,
    ch: &Channel,
    item_id: &str,
    output_index: usize,
    seq: u64,
    text: &str,
) {
    ch.index_before(data);
    data.str("item_id", item_id)
        .num("output_index", output_index)
        .with("part", |out| ch.write_part(text, out))
        .num("sequence_number", seq);
    ch.index_after(data);
}

/// A field of a response object that does not come from the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fixed {
    CreatedAt,
    Error,
    Id,
    IncompleteDetails,
    Model,
    Object,
    Output,
    Status,
    Usage,
}

impl Fixed {
    /// The field's name.
    fn name(self) -> &'static str {
        let head = self.member_head();
        // `"name":`
        head.get(1..head.len() - 2).unwrap_or(head)
    }

    /// `"name":`, the start of the field's member.
    fn member_head(self) -> &'static str {
        match self {
            Fixed::CreatedAt => "\"created_at\":",
            Fixed::Error => "\"error\":",
            Fixed::Id => "\"id\":",
            Fixed::IncompleteDetails => "\"incomplete_details\":",
            Fixed::Model => "\"model\":",
            Fixed::Object => "\"object\":",
            Fixed::Output => "\"output\":",
            Fixed::Status => "\"status\":",
            Fixed::Usage => "\"usage\":",
        }
    }
}

/// The fixed fields, in the order a JSON object writes its keys (sorted).
const FIXED_FIELDS: [Fixed; 9] = [
    Fixed::CreatedAt,
    Fixed::Error,
    Fixed::Id,
    Fixed::IncompleteDetails,
    Fixed::Model,
    Fixed::Object,
    Fixed::Output,
    Fixed::Status,
    Fixed::Usage,
];

/// The members of a response object, in key order: the fixed fields, and runs of echoed
/// request parameters (each run one slice of the echo's members).
#[derive(Debug, Default, PartialEq)]
struct ObjectLayout {
    pieces: Vec<Piece>,
}

/// One member, or a run of echoed members.
#[derive(Debug, PartialEq)]
enum Piece {
    /// One of [`FIXED_FIELDS`] (its `"name":`, then its value), written each time.
    Fixed(Fixed),
    /// Echoed members: the fields at these indices of the echo, in key order
    /// ([`super::Echo::run`]).
    Echo(std::ops::Range<usize>),
}

/// The layout of one response object: shared by every response whose echo has the keys of
/// a decoded request (the same for all of them), made for the echo otherwise.
#[derive(Debug)]
enum Layout {
    /// The layout of every decoded request's echo, made once.
    Shared(&'static ObjectLayout),
    /// The layout of an echo with other keys.
    Own(ObjectLayout),
}

impl Layout {
    fn of(echo: &super::Echo) -> Self {
        static REQUEST_KEYS: OnceLock<ObjectLayout> = OnceLock::new();
        if echo.has_request_keys() {
            Layout::Shared(REQUEST_KEYS.get_or_init(|| ObjectLayout::of(echo)))
        } else {
            Layout::Own(ObjectLayout::of(echo))
        }
    }

    fn get(&self) -> &ObjectLayout {
        match self {
            Layout::Shared(layout) => layout,
            Layout::Own(layout) => layout,
        }
    }
}

impl ObjectLayout {
    /// The layout of a response object repeating `echo` (sorted, as a JSON object writes
    /// its keys; a fixed field wins a clash). It depends on the echo's keys only.
    fn of(echo: &super::Echo) -> Self {
        // At most one piece per field and one per run between them.
        let mut layout = Self {
            pieces: Vec::with_capacity(FIXED_FIELDS.len() * 2 + 1),
        };
        let mut run: Option<std::ops::Range<usize>> = None;
        let mut fixed = FIXED_FIELDS.iter().peekable();
        for (at, key) in echo.keys().enumerate() {
            // The fixed fields sorted before this key come first (closing the run).
            while let Some(&&field) = fixed.peek() {
                // Bytewise, as JSON object keys are sorted.
                if field.name() >= key {
                    break;
                }
                if let Some(fields) = run.take() {
                    layout.pieces.push(Piece::Echo(fields));
                }
                layout.pieces.push(Piece::Fixed(field));
                fixed.next();
            }
            if fixed.peek().is_some_and(|field| field.name() == key) {
                // A fixed field wins a clash; the members around it are two runs.
                if let Some(fields) = run.take() {
                    layout.pieces.push(Piece::Echo(fields));
                }
                continue;
            }
            run = Some(match run {
                Some(fields) => fields.start..at + 1,
                None => at..at + 1,
            });
        }
        if let Some(fields) = run {
            layout.pieces.push(Piece::Echo(fields));
        }
        for &field in fixed {
            layout.pieces.push(Piece::Fixed(field));
        }
        layout
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn encoder() -> ResponsesStreamEncoder {
        let mut echo = super::super::Echo::default();
        echo.insert("tools", &json!([]));
        echo.insert("temperature", &json!(1.0));
        ResponsesStreamEncoder::new(ResponseHead {
            id: "resp_1".to_owned(),
            created_at: 1,
            model: "m".to_owned(),
            echo,
            custom_tools: Vec::new(),
        })
    }

    /// Every shape of event: reasoning, text, a function call and a custom tool call.
    fn every_event(finish: FinishReason) -> Vec<ChatEvent> {
        vec![
            ChatEvent::thinking("why \"so\""),
            ChatEvent::text("Hello \"there\" é\n"),
            ChatEvent::ToolCallStart {
                index: 0,
                id: "call_1".to_owned(),
                name: "read".to_owned(),
            },
            ChatEvent::ToolCallArgs {
                index: 0,
                fragment: r#"{"path":"a"}"#.to_owned(),
            },
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::ToolCallStart {
                index: 1,
                id: "call_2".to_owned(),
                name: "apply_patch".to_owned(),
            },
            ChatEvent::ToolCallArgs {
                index: 1,
                fragment: r#"{"input":"*** Begin"}"#.to_owned(),
            },
            ChatEvent::ToolCallEnd { index: 1 },
            ChatEvent::Usage(Usage {
                prompt_tokens: 3,
                completion_tokens: 4,
                ..Usage::default()
            }),
            ChatEvent::done(finish),
        ]
    }

    /// The frames of `out`: event name and data.
    fn frames(out: &[u8]) -> Vec<(String, String)> {
        let text = std::str::from_utf8(out).unwrap();
        text.split_terminator("\n\n")
            .map(|frame| {
                let (event, data) = frame.split_once('\n').unwrap();
                let event = event.strip_prefix("event: ").unwrap();
                (
                    event.to_owned(),
                    data.strip_prefix("data: ").unwrap().to_owned(),
                )
            })
            .collect()
    }

    #[test]
    fn every_frame_is_the_json_a_value_writes_with_its_type_and_sequence_number() {
        for summary in [false, true] {
            for (finish, last) in [
                (FinishReason::Stop, "response.completed"),
                (FinishReason::Length, "response.incomplete"),
                (
                    FinishReason::Other(FinishReason::CONTEXT_WINDOW_EXCEEDED.to_owned()),
                    "response.incomplete",
                ),
            ] {
                let mut enc = encoder();
                enc.summary = summary;
                enc.head.custom_tools = vec!["apply_patch".to_owned()];
                let mut out = Vec::new();
                for event in every_event(finish) {
                    enc.encode(&event, &mut out);
                }
                let frames = frames(&out);
                assert_eq!(frames.last().unwrap().0, last);
                for (seq, (event, data)) in frames.iter().enumerate() {
                    let value: Value = serde_json::from_str(data).unwrap();
                    assert_eq!(&value.to_string(), data, "sorted keys, no spaces: {event}");
                    assert_eq!(value["type"], event.as_str());
                    assert_eq!(value["sequence_number"], seq);
                }
            }
        }
        let mut enc = encoder();
        let mut out = Vec::new();
        enc.encode(&ChatEvent::text("partial"), &mut out);
        enc.encode_error(&ProviderError::malformed("bad \"json\""), &mut out);
        let frames = frames(&out);
        let names: Vec<&str> = frames.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(names[names.len() - 2..], ["error", "response.failed"]);
        for (seq, (event, data)) in frames.iter().enumerate() {
            let value: Value = serde_json::from_str(data).unwrap();
            assert_eq!(&value.to_string(), data, "{event}");
            assert_eq!(value["sequence_number"], seq);
        }
    }

    #[test]
    fn the_written_response_object_is_the_documented_object() {
        let mut enc = encoder();
        enc.head.echo.insert("store", &json!(false));
        enc.head
            .echo
            .insert("status", &json!("ignored: the fixed field wins"));
        enc.head.echo.insert("zeta", &json!({"b": [1, 2]}));
        enc.head.echo.insert("aaa", &json!(null));
        // A client's key is escaped (the crate's own names are written as they are).
        enc.head.echo.insert("q\"k", &json!(1));
        enc.layout = Layout::of(&enc.head.echo);
        enc.output.push(Some(OutputItem::Text {
            kind: ItemKind::Message,
            summary: false,
            id: "msg_1".to_owned(),
            text: "hé \"x\"".to_owned(),
        }));
        enc.output.push(None);
        enc.usage = Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Usage::default()
        });
        let usage = json!({"input_tokens": 3, "input_tokens_details": {"cached_tokens": 0},
                           "output_tokens": 4, "output_tokens_details": {"reasoning_tokens": 0},
                           "total_tokens": 7});
        for (status, incomplete) in [
            ("in_progress", None),
            ("completed", None),
            ("incomplete", Some("max_output_tokens")),
        ] {
            let expected = json!({
                "aaa": null, "created_at": 1, "error": null, "id": "resp_1",
                "incomplete_details": incomplete.map(|reason| json!({"reason": reason})),
                "model": "m", "object": "response",
                "output": [{"content": [{"annotations": [], "text": "hé \"x\"",
                                         "type": "output_text"}],
                            "id": "msg_1", "role": "assistant", "status": "completed",
                            "type": "message"}],
                "q\"k": 1, "status": status, "store": false, "temperature": 1.0, "tools": [],
                "usage": if status == "in_progress" { Value::Null } else { usage.clone() },
                "zeta": {"b": [1, 2]},
            });
            let mut written = Vec::new();
            enc.write_response_object(Ending { status, incomplete }, &mut written);
            assert_eq!(
                String::from_utf8(written).unwrap(),
                expected.to_string(),
                "{status}"
            );
        }
    }

    #[test]
    fn decoded_requests_share_one_layout_that_is_each_ones_own() {
        let opts = super::super::request::DecodeOptions::default();
        for body in [
            json!({"model": "m", "input": "hi"}),
            json!({"model": "m", "input": "hi", "instructions": "x", "temperature": 0.5,
                   "tools": [{"type": "function", "name": "f"}], "metadata": {"k": "v"},
                   "reasoning": {"effort": "low"}, "store": false, "user": "u",
                   "truncation": "auto", "text": {"format": {"type": "json_object"}}}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap();
            let echo = super::super::request::decode_request(&bytes, &opts)
                .unwrap()
                .echo;
            assert!(echo.has_request_keys(), "{body}");
            let layout = Layout::of(&echo);
            assert!(matches!(layout, Layout::Shared(_)));
            assert_eq!(layout.get(), &ObjectLayout::of(&echo), "{body}");
        }
        // An echo with other keys gets its own.
        assert!(matches!(encoder().layout, Layout::Own(_)));
    }

    #[test]
    fn a_whole_answer_without_frames_ends_in_the_same_response() {
        for finish in [FinishReason::Stop, FinishReason::Length] {
            let (mut framed, mut whole) = (encoder(), encoder().without_frames());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for event in every_event(finish.clone()) {
                framed.encode(&event, &mut a);
                whole.encode(&event, &mut b);
            }
            assert!(!a.is_empty() && b.is_empty(), "no frames without frames");
            let expected = serde_json::to_vec(framed.final_response().unwrap()).unwrap();
            let written = whole.final_response_json().unwrap();
            assert_eq!(
                String::from_utf8(written).unwrap(),
                String::from_utf8(expected).unwrap()
            );
            assert_eq!(whole.final_response(), framed.final_response());
            assert_eq!(whole.assistant_turn(), framed.assistant_turn());
        }
        let mut failed = encoder().without_frames();
        failed.encode_error(&ProviderError::malformed("bad"), &mut Vec::new());
        assert!(failed.final_response_json().is_none());
        assert_eq!(failed.final_response().unwrap()["status"], "failed");
    }

    /// Each echoed parameter with some values a request may give it (`null` included).
    const PARAMS: &[(&str, &[&str])] = &[
        (
            "instructions",
            &["null", r#""be \"brief\"\n""#, r#""\u00e9""#],
        ),
        ("max_output_tokens", &["null", "0", "4294967295"]),
        ("metadata", &["null", "{}", r#"{"z":"1","a":"\u2028"}"#]),
        ("parallel_tool_calls", &["null", "false", "true"]),
        ("previous_response_id", &["null", r#""""#, r#""resp_1""#]),
        (
            "reasoning",
            &["null", "{}", r#"{"summary":"auto","effort":"low","x":[1]}"#],
        ),
        ("store", &["null", "false"]),
        (
            "temperature",
            &["null", "0", "1e-3", "12345678901234567890"],
        ),
        (
            "text",
            &[
                "null",
                "{}",
                r#"{"format":{"type":"json_schema","schema":{"b":1,"a":2}}}"#,
            ],
        ),
        (
            "tool_choice",
            &["null", r#""none""#, r#"{"type":"function","name":"f"}"#],
        ),
        (
            "tools",
            &[
                "null",
                "[]",
                r#"[{"name":"f","type":"function"},{"type":"custom","name":"c"}]"#,
            ],
        ),
        ("top_p", &["null", "1.5", "-0.0"]),
        ("truncation", &["null", r#""auto""#, r#""disabled""#]),
        ("user", &["null", r#""u""#]),
        ("stream", &["true", "false"]),
        ("x_unknown", &["null", r#"{"status":1}"#]),
    ];

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Whatever a decoded request sets (any subset of the echoed parameters, any value,
        /// in any order), its echo has the request keys, and the layout every decoded
        /// request shares is the one its own keys make, and the one an echo of the same
        /// members that is not a decoded request's gets for itself.
        #[test]
        fn any_decoded_request_shares_the_layout_its_own_keys_make(
            picks in proptest::collection::vec(
                proptest::option::of(proptest::prelude::any::<proptest::sample::Index>()),
                PARAMS.len(),
            ),
            order in proptest::prelude::any::<u64>(),
        ) {
            let mut members: Vec<String> = PARAMS
                .iter()
                .zip(&picks)
                .filter_map(|((key, values), pick)| {
                    pick.map(|at| format!(r#""{key}":{}"#, values[at.index(values.len())]))
                })
                .collect();
            members.push(r#""model":"m""#.to_owned());
            members.sort_by_key(|m| {
                m.bytes().fold(order, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
            });
            let body = format!("{{{}}}", members.join(","));
            let opts = super::super::request::DecodeOptions::default();
            let echo = super::super::request::decode_request(body.as_bytes(), &opts)
                .unwrap()
                .echo;
            proptest::prop_assert!(echo.has_request_keys(), "{}", body);
            let layout = Layout::of(&echo);
            proptest::prop_assert!(matches!(layout, Layout::Shared(_)), "{}", body);
            proptest::prop_assert_eq!(layout.get(), &ObjectLayout::of(&echo), "{}", body);
            // The same members, not as a decoded request's echo: its own layout.
            let map: serde_json::Map<String, Value> = echo
                .iter()
                .map(|(k, v)| (k.to_owned(), serde_json::from_str(v).unwrap()))
                .collect();
            let other = super::super::Echo::from_map(&map);
            proptest::prop_assert!(!other.has_request_keys());
            let own = Layout::of(&other);
            proptest::prop_assert!(matches!(own, Layout::Own(_)));
            proptest::prop_assert_eq!(own.get(), layout.get(), "{}", body);
        }
    }
}
