//! Encoding [`ChatEvent`]s as OpenAI Responses stream events (`event:` + `data:` SSE frames,
//! each with a `sequence_number`), and assembling the whole `response` object that
//! `response.completed` carries (and a non-streamed answer is).

use crate::json_util::write_json;
use std::sync::OnceLock;

use serde_json::{Map, Value, json};
use switchyard_core::{
    ChatEvent, FinishReason, MAX_TOOL_CALLS, Message, ProviderError, Role, ToolCall, Usage,
    parse_arguments,
};

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
    pub echo: Map<String, Value>,
    /// Names of the tools whose calls are `custom_tool_call`s (input is free text).
    pub custom_tools: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ItemKind {
    Message,
    Reasoning,
}

/// The event names and part shape of one kind of text item.
struct Channel {
    delta: &'static str,
    text_done: &'static str,
    part_added: &'static str,
    part_done: &'static str,
    /// `content_index` or `summary_index`.
    index_key: &'static str,
    part_type: &'static str,
}

impl Channel {
    /// Answer text; reasoning as a summary (when the request asked for one) or as text.
    fn of(kind: ItemKind, summary: bool) -> Channel {
        match (kind, summary) {
            (ItemKind::Message, _) => Channel {
                delta: "response.output_text.delta",
                text_done: "response.output_text.done",
                part_added: "response.content_part.added",
                part_done: "response.content_part.done",
                index_key: "content_index",
                part_type: "output_text",
            },
            (ItemKind::Reasoning, true) => Channel {
                delta: "response.reasoning_summary_text.delta",
                text_done: "response.reasoning_summary_text.done",
                part_added: "response.reasoning_summary_part.added",
                part_done: "response.reasoning_summary_part.done",
                index_key: "summary_index",
                part_type: "summary_text",
            },
            (ItemKind::Reasoning, false) => Channel {
                delta: "response.reasoning_text.delta",
                text_done: "response.reasoning_text.done",
                part_added: "response.content_part.added",
                part_done: "response.content_part.done",
                index_key: "content_index",
                part_type: "reasoning_text",
            },
        }
    }

    fn part(&self, text: &str) -> Value {
        if self.part_type == "output_text" {
            json!({"type": self.part_type, "text": text, "annotations": []})
        } else {
            json!({"type": self.part_type, "text": text})
        }
    }
}

/// The message or reasoning item being written.
#[derive(Debug)]
struct OpenItem {
    kind: ItemKind,
    output_index: usize,
    id: String,
    text: String,
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
/// use serde_json::Map;
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::responses::{ResponseHead, ResponsesStreamEncoder};
///
/// let head = ResponseHead { id: "resp_1".into(), created_at: 1_700_000_000,
///     model: "chat".into(), echo: Map::new(), custom_tools: Vec::new() };
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
    /// Items prefix: `resp_abc` -> `abc`.
    suffix: String,
    summary: bool,
    seq: u64,
    started: bool,
    /// Finished items by output index (`None` while an item is open).
    output: Vec<Option<Value>>,
    open: Option<OpenItem>,
    calls: Vec<OpenCall>,
    /// The answer as a conversation turn, for `previous_response_id`.
    turn: Message,
    usage: Option<Usage>,
    bytes: usize,
    /// How the response ended, once it has.
    ending: Option<Ending>,
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
        let suffix = head.id.strip_prefix("resp_").unwrap_or(&head.id).to_owned();
        let summary = head
            .echo
            .get("reasoning")
            .and_then(|r| r.get("summary"))
            .is_some_and(|s| !s.is_null());
        Self {
            head,
            suffix,
            summary,
            seq: 0,
            started: false,
            output: Vec::new(),
            open: None,
            calls: Vec::new(),
            turn: Message {
                content: Vec::new(),
                ..Message::text(Role::Assistant, "")
            },
            usage: None,
            bytes: 0,
            ending: None,
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

    /// The whole response object, once the stream has ended.
    pub fn final_response(&self) -> Option<&Value> {
        let ending = self.ending?;
        Some(self.final_response.get_or_init(|| {
            let mut response = self.response_object(ending.status);
            if let Some(reason) = ending.incomplete {
                response["incomplete_details"] = json!({ "reason": reason });
            }
            response
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
        let message = if err.message().is_empty() {
            err.reason_code()
        } else {
            err.message()
        };
        self.emit(
            out,
            "error",
            json!({"code": err.reason_code(), "message": message, "param": null}),
        );
        let mut response = self.response_object("failed");
        response["error"] = json!({"code": err.reason_code(), "message": message});
        self.emit_response(out, "response.failed", &serialized(&response));
        let _ = self.final_response.set(response);
        self.ending = Some(Ending {
            status: "failed",
            incomplete: None,
        });
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

    /// Writes one frame: `event: <kind>` and the data with `type` and `sequence_number`.
    fn emit(&mut self, out: &mut Vec<u8>, kind: &str, mut data: Value) {
        if !self.frames {
            self.seq += 1;
            return;
        }
        if let Some(obj) = data.as_object_mut() {
            obj.insert("type".to_owned(), Value::String(kind.to_owned()));
            obj.insert("sequence_number".to_owned(), Value::from(self.seq));
        }
        self.seq += 1;
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(kind.as_bytes());
        out.extend_from_slice(b"\ndata: ");
        // A `Value` always serialises.
        let _ = serde_json::to_writer(&mut *out, &data);
        out.extend_from_slice(b"\n\n");
    }

    /// Writes a frame whose data is `{"response": <response>}` from the response object's
    /// JSON text (the bytes [`Self::emit`] writes for it, without copying the object into a
    /// wrapper first).
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
        (index, format!("{prefix}_{}_{index}", self.suffix))
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
        let ch = Channel::of(kind, self.summary);
        let (content_index, summary_index) = match ch.index_key {
            "summary_index" => (None, Some(0)),
            _ => (Some(0), None),
        };
        let frame = DeltaFrame {
            content_index,
            delta: text,
            item_id: &item.id,
            logprobs: kind == ItemKind::Message,
            output_index: item.output_index,
            sequence_number: self.seq,
            summary_index,
            kind: ch.delta,
        };
        self.seq += 1;
        if self.frames {
            frame.write(out);
        }
    }

    fn open_item(&mut self, kind: ItemKind, out: &mut Vec<u8>) {
        let (output_index, id) = match kind {
            ItemKind::Message => self.next_index("msg"),
            ItemKind::Reasoning => self.next_index("rs"),
        };
        if self.frames {
            let item = match kind {
                ItemKind::Message => json!({"id": id, "type": "message", "status": "in_progress",
                                            "role": "assistant", "content": []}),
                ItemKind::Reasoning if self.summary => {
                    json!({"id": id, "type": "reasoning", "summary": []})
                }
                ItemKind::Reasoning => {
                    json!({"id": id, "type": "reasoning", "summary": [], "content": []})
                }
            };
            self.emit(
                out,
                "response.output_item.added",
                json!({"output_index": output_index, "item": item}),
            );
            let ch = Channel::of(kind, self.summary);
            let data = json!({"item_id": id, "output_index": output_index, ch.index_key: 0,
                              "part": ch.part("")});
            self.emit(out, ch.part_added, data);
        } else {
            self.seq += 2;
        }
        self.open = Some(OpenItem {
            kind,
            output_index,
            id,
            text: String::new(),
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
        } = item;
        let ch = Channel::of(kind, self.summary);
        let part = ch.part(&text);
        if self.frames {
            let mut data = json!({"item_id": id, "output_index": output_index, ch.index_key: 0,
                                  "text": text});
            if kind == ItemKind::Message {
                data["logprobs"] = json!([]);
            }
            self.emit(out, ch.text_done, data);
            let data = json!({"item_id": id, "output_index": output_index, ch.index_key: 0,
                              "part": part});
            self.emit(out, ch.part_done, data);
        } else {
            self.seq += 2;
        }
        let done_item = match (kind, self.summary) {
            (ItemKind::Message, _) => {
                self.turn
                    .content
                    .push(switchyard_core::ContentPart::Text(text));
                json!({"id": id, "type": "message", "status": "completed",
                       "role": "assistant", "content": [part]})
            }
            (ItemKind::Reasoning, true) => {
                self.add_thinking(&text);
                json!({"id": id, "type": "reasoning", "summary": [part]})
            }
            (ItemKind::Reasoning, false) => {
                self.add_thinking(&text);
                json!({"id": id, "type": "reasoning", "summary": [], "content": [part]})
            }
        };
        self.item_done(output_index, done_item, out);
    }

    fn add_thinking(&mut self, text: &str) {
        let thinking = self.turn.thinking.get_or_insert_with(String::new);
        thinking.push_str(text);
    }

    fn item_done(&mut self, output_index: usize, item: Value, out: &mut Vec<u8>) {
        if self.frames {
            self.emit(
                out,
                "response.output_item.done",
                json!({"output_index": output_index, "item": item.clone()}),
            );
        } else {
            self.seq += 1;
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
        let item = if custom {
            json!({"id": id, "type": "custom_tool_call", "status": "in_progress",
                   "call_id": call_id, "name": name, "input": ""})
        } else {
            json!({"id": id, "type": "function_call", "status": "in_progress",
                   "call_id": call_id, "name": name, "arguments": ""})
        };
        self.emit(
            out,
            "response.output_item.added",
            json!({"output_index": output_index, "item": item}),
        );
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
        let parsed = parse_arguments(&call.arguments);
        let base = json!({"item_id": call.id, "output_index": call.output_index});
        let item = if call.custom {
            let input = parsed
                .as_ref()
                .and_then(|args| args.get("input"))
                .and_then(Value::as_str)
                .map_or_else(|| call.arguments.clone(), str::to_owned);
            let mut data = base.clone();
            data["delta"] = json!(input);
            self.emit(out, "response.custom_tool_call_input.delta", data);
            let mut data = base;
            data["input"] = json!(input);
            self.emit(out, "response.custom_tool_call_input.done", data);
            json!({"id": call.id, "type": "custom_tool_call", "status": "completed",
                   "call_id": call.call_id, "name": call.name, "input": input})
        } else {
            let mut data = base;
            data["name"] = json!(call.name);
            data["arguments"] = json!(call.arguments);
            self.emit(out, "response.function_call_arguments.done", data);
            json!({"id": call.id, "type": "function_call", "status": "completed",
                   "call_id": call.call_id, "name": call.name, "arguments": call.arguments})
        };
        self.turn.tool_calls.push(ToolCall {
            id: call.call_id.clone(),
            name: call.name.clone(),
            arguments: parsed.unwrap_or_default(),
        });
        self.item_done(call.output_index, item, out);
    }

    fn finish(&mut self, reason: &FinishReason, out: &mut Vec<u8>) {
        self.close_open(out);
        while !self.calls.is_empty() {
            let call = self.calls.remove(0);
            self.call_end(call, out);
        }
        let incomplete = match reason {
            FinishReason::Length => Some("max_output_tokens"),
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

    /// Writes the response object as [`Self::response_object`] (with the ending's
    /// `incomplete_details`) serialises, without building it: the fixed fields, sorted as a
    /// JSON object writes its keys, merged with the request's echoed parameters (a sorted
    /// map; a fixed field wins a clash).
    fn write_response_object(&self, ending: Ending, out: &mut Vec<u8>) {
        let mut fixed = FIXED_FIELDS.iter().peekable();
        let mut echo = self.head.echo.iter().peekable();
        let mut first = true;
        out.push(b'{');
        loop {
            let take_fixed = match (fixed.peek(), echo.peek()) {
                (None, None) => break,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(f), Some((k, _))) => {
                    if k.as_str() == **f {
                        echo.next();
                        continue;
                    }
                    **f < k.as_str()
                }
            };
            if !first {
                out.push(b',');
            }
            first = false;
            if take_fixed {
                if let Some(&field) = fixed.next() {
                    write_json(out, field);
                    out.push(b':');
                    self.write_fixed(field, ending, out);
                }
            } else if let Some((key, value)) = echo.next() {
                write_json(out, key);
                out.push(b':');
                write_json(out, value);
            }
        }
        out.push(b'}');
    }

    /// The value of one of [`FIXED_FIELDS`].
    fn write_fixed(&self, field: &str, ending: Ending, out: &mut Vec<u8>) {
        match field {
            "created_at" => {
                out.extend_from_slice(itoa::Buffer::new().format(self.head.created_at).as_bytes())
            }
            "id" => write_json(out, &self.head.id),
            "incomplete_details" => match ending.incomplete {
                Some(reason) => write_json(out, &json!({ "reason": reason })),
                None => out.extend_from_slice(b"null"),
            },
            "model" => write_json(out, &self.head.model),
            "object" => out.extend_from_slice(b"\"response\""),
            "output" => {
                out.push(b'[');
                for (i, item) in self.output.iter().flatten().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json(out, item);
                }
                out.push(b']');
            }
            "status" => write_json(out, ending.status),
            "usage" if ending.status != "in_progress" => {
                write_json(out, &usage_object(&self.usage.unwrap_or_default()));
            }
            _ => out.extend_from_slice(b"null"),
        }
    }

    /// The response object as it stands, with `status`.
    fn response_object(&self, status: &str) -> Value {
        let mut obj = self.head.echo.clone();
        let output: Vec<Value> = self.output.iter().flatten().cloned().collect();
        let usage = match (&self.usage, status) {
            (_, "in_progress") => Value::Null,
            (usage, _) => usage_object(&usage.unwrap_or_default()),
        };
        for (k, v) in [
            ("id", json!(self.head.id)),
            ("object", json!("response")),
            ("created_at", json!(self.head.created_at)),
            ("status", json!(status)),
            ("model", json!(self.head.model)),
            ("output", Value::Array(output)),
            ("usage", usage),
            ("error", Value::Null),
            ("incomplete_details", Value::Null),
        ] {
            obj.insert(k.to_owned(), v);
        }
        Value::Object(obj)
    }
}

/// A delta event (text, reasoning or tool-call arguments), the one event written per
/// upstream chunk: written straight from borrowed fields, no `Value` built and no serde
/// struct machinery (only the two strings are escaped). The fields are in the order a
/// `Value` object writes them (sorted keys), so the bytes are those of the other events'
/// path.
struct DeltaFrame<'a> {
    content_index: Option<u32>,
    delta: &'a str,
    item_id: &'a str,
    /// Writes `"logprobs":[]` (answer text).
    logprobs: bool,
    output_index: usize,
    sequence_number: u64,
    summary_index: Option<u32>,
    /// The event type: a static ASCII name, written as is.
    kind: &'static str,
}

impl DeltaFrame<'_> {
    fn write(&self, out: &mut Vec<u8>) {
        let mut digits = itoa::Buffer::new();
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(b"\ndata: {");
        if let Some(index) = self.content_index {
            out.extend_from_slice(b"\"content_index\":");
            out.extend_from_slice(digits.format(index).as_bytes());
            out.push(b',');
        }
        out.extend_from_slice(b"\"delta\":");
        write_json(out, self.delta);
        out.extend_from_slice(b",\"item_id\":");
        write_json(out, self.item_id);
        if self.logprobs {
            out.extend_from_slice(b",\"logprobs\":[]");
        }
        out.extend_from_slice(b",\"output_index\":");
        out.extend_from_slice(digits.format(self.output_index).as_bytes());
        out.extend_from_slice(b",\"sequence_number\":");
        out.extend_from_slice(digits.format(self.sequence_number).as_bytes());
        if let Some(index) = self.summary_index {
            out.extend_from_slice(b",\"summary_index\":");
            out.extend_from_slice(digits.format(index).as_bytes());
        }
        out.extend_from_slice(b",\"type\":\"");
        out.extend_from_slice(self.kind.as_bytes());
        out.extend_from_slice(b"\"}\n\n");
    }
}

/// The fields of a response object that do not come from the request, in the order a JSON
/// object writes its keys (sorted).
const FIXED_FIELDS: [&str; 9] = [
    "created_at",
    "error",
    "id",
    "incomplete_details",
    "model",
    "object",
    "output",
    "status",
    "usage",
];

/// The JSON text of `value` (a `Value` always serialises).
fn serialized(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

/// OpenAI's usage object of a response.
fn usage_object(usage: &Usage) -> Value {
    json!({
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoder() -> ResponsesStreamEncoder {
        let mut echo = Map::new();
        echo.insert("tools".to_owned(), json!([]));
        echo.insert("temperature".to_owned(), json!(1.0));
        ResponsesStreamEncoder::new(ResponseHead {
            id: "resp_1".to_owned(),
            created_at: 1,
            model: "m".to_owned(),
            echo,
            custom_tools: Vec::new(),
        })
    }

    #[test]
    fn a_response_frame_is_the_bytes_of_the_generic_frame() {
        let response =
            json!({"id": "resp_1", "output": [{"text": "a \"quoted\" é"}], "usage": null});
        let (mut generic, mut direct) = (encoder(), encoder());
        let (mut a, mut b) = (Vec::new(), Vec::new());
        generic.emit(
            &mut a,
            "response.completed",
            json!({ "response": response }),
        );
        direct.emit_response(&mut b, "response.completed", &serialized(&response));
        assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
        assert_eq!(generic.seq, direct.seq);
    }

    #[test]
    fn the_written_response_object_is_the_serialised_value() {
        let mut enc = encoder();
        enc.head.echo.insert("store".to_owned(), json!(false));
        enc.head
            .echo
            .insert("status".to_owned(), json!("ignored: the fixed field wins"));
        enc.head
            .echo
            .insert("zeta".to_owned(), json!({"b": [1, 2]}));
        enc.head.echo.insert("aaa".to_owned(), json!(null));
        enc.output.push(Some(
            json!({"id": "msg_1", "content": [{"text": "hé \"x\""}]}),
        ));
        enc.output.push(None);
        enc.usage = Some(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            ..Usage::default()
        });
        for (status, incomplete) in [
            ("in_progress", None),
            ("completed", None),
            ("incomplete", Some("max_output_tokens")),
        ] {
            let mut expected = enc.response_object(status);
            if let Some(reason) = incomplete {
                expected["incomplete_details"] = json!({ "reason": reason });
            }
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
    fn a_delta_frame_is_the_bytes_of_the_generic_frame() {
        let cases = [
            (Some(0), None, true, "response.output_text.delta"),
            (
                None,
                Some(0),
                false,
                "response.reasoning_summary_text.delta",
            ),
            (None, None, false, "response.function_call_arguments.delta"),
        ];
        for (content_index, summary_index, logprobs, kind) in cases {
            let delta = "tok \"q\" \\ é\n";
            let mut data = json!({"delta": delta, "item_id": "msg_1_0", "output_index": 3});
            if let Some(i) = content_index {
                data["content_index"] = json!(i);
            }
            if let Some(i) = summary_index {
                data["summary_index"] = json!(i);
            }
            if logprobs {
                data["logprobs"] = json!([]);
            }
            let mut generic = encoder();
            generic.seq = 7;
            let mut a = Vec::new();
            generic.emit(&mut a, kind, data);
            let mut b = Vec::new();
            DeltaFrame {
                content_index,
                delta,
                item_id: "msg_1_0",
                logprobs,
                output_index: 3,
                sequence_number: 7,
                summary_index,
                kind,
            }
            .write(&mut b);
            assert_eq!(
                String::from_utf8(a).unwrap(),
                String::from_utf8(b).unwrap(),
                "{kind}"
            );
        }
    }

    #[test]
    fn a_whole_answer_without_frames_ends_in_the_same_response() {
        let events = |finish: FinishReason| {
            vec![
                ChatEvent::thinking("why"),
                ChatEvent::text("Hello \"there\""),
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
                ChatEvent::Usage(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 4,
                    ..Usage::default()
                }),
                ChatEvent::done(finish),
            ]
        };
        for finish in [FinishReason::Stop, FinishReason::Length] {
            let (mut framed, mut whole) = (encoder(), encoder().without_frames());
            let (mut a, mut b) = (Vec::new(), Vec::new());
            for event in events(finish.clone()) {
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
}
