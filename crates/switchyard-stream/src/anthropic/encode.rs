//! Encoding [`ChatEvent`]s as Anthropic Messages SSE events, whole answers as a `message`
//! object, and errors as Anthropic's `{"type":"error","error":{...}}`.

use crate::json_util::write_json_str;
use std::io::Write as _;

mod held;
mod opaque;

use serde::Serialize;
use switchyard_core::{ChatEvent, ChatResponse, ErrorKind, FinishReason, ProviderError, Usage};

/// Encodes a stream of [`ChatEvent`]s as Anthropic Messages SSE events.
///
/// The first event is `message_start` (with the input-token figure the caller gives, as
/// the upstream's own count only arrives at the end); each run of text or thinking is one
/// content block (`content_block_start`, `text_delta`/`thinking_delta`,
/// `signature_delta`, `content_block_stop`; a signature ends its thinking block, so
/// interleaved thinking blocks stay apart); each tool call is a `tool_use` block whose
/// arguments stream as `input_json_delta`; redacted thinking is a `redacted_thinking`
/// block. Blocks never overlap: a call that starts while another call's block is open
/// (parallel calls whose fragments interleave, as OpenAI streams them) is held, with any
/// content that comes meanwhile, and written as its own block (start, one `input_json_delta`
/// with its arguments so far) once the open block closes; held bytes and calls are bounded
/// by the tool-call limits of `switchyard_core`, past them the stream ends with an error. `Done` closes open blocks and writes `message_delta` — `stop_reason` `tool_use`
/// whenever calls were made, `max_tokens` for a length stop, `stop_sequence` with the
/// sequence, an Anthropic upstream's own reason as sent ([`stop_reason`]), `end_turn`
/// otherwise — with the usage, then `message_stop`. After `Done`, or
/// after an error event, the encoder writes nothing more.
///
/// [`ChatEvent::Opaque`] events (from an Anthropic upstream) are written verbatim: a start
/// opens a block with the upstream's JSON (a `text` one becomes the open text run), its
/// deltas go to that block (deltas of upstream text blocks, `citations_delta`, to the open
/// run), and a stop closes it (an upstream text block's stop closes the run, so blocks keep
/// their boundaries). Block indexes are the encoder's own, consecutive as always.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::anthropic::AnthropicStreamEncoder;
///
/// let mut enc = AnthropicStreamEncoder::new("claude-x", "msg_1", 12);
/// let mut out = Vec::new();
/// enc.encode(&ChatEvent::text("Hi"), &mut out);
/// enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.starts_with("event: message_start\n"));
/// assert!(text.contains(r#""usage":{"input_tokens":12,"output_tokens":0}"#));
/// assert!(text.contains(r#""stop_reason":"end_turn""#));
/// assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
/// ```
#[derive(Debug)]
pub struct AnthropicStreamEncoder {
    model: String,
    message_id: String,
    input_tokens: u32,
    started: bool,
    /// Blocks opened so far (the next block's index).
    next_block: u32,
    /// The open text or thinking block: (index, is thinking).
    open_run: Option<(u32, bool)>,
    /// The open tool call: (call index, block index). Blocks never overlap: a call's
    /// block closes when other content starts; a call starting while it is open (an
    /// OpenAI-compatible upstream's parallel calls, whose fragments may interleave and
    /// which end only at the finish) is held instead, see `held`.
    open_calls: Vec<(u32, u32)>,
    /// Calls (and other content) held while a call's block is open, in arrival order:
    /// written as blocks of their own when it closes.
    held: Vec<held::Held>,
    /// Bytes held (bounded by the tool-arguments limit).
    held_bytes: usize,
    /// Calls whose blocks closed (at most the decoders' call limit).
    closed_calls: Vec<u32>,
    /// Open pass-through blocks: (upstream block index, block index).
    open_opaque: Vec<(u32, u32)>,
    any_call: bool,
    usage: Option<Usage>,
    done: bool,
    /// Whitespace that came while a call's block was open, not written yet (see
    /// `defer_space`).
    deferred_space: String,
}

/// The most whitespace deferred while a call's block is open; past it, the text closes the
/// block as any other text does.
const MAX_DEFERRED_SPACE: usize = 4096;

impl AnthropicStreamEncoder {
    /// An encoder for an answer from `model` with the message id (`msg_…`) and the input
    /// tokens `message_start` reports (an estimate; `message_delta` carries the real count).
    pub fn new(model: impl Into<String>, message_id: impl Into<String>, input_tokens: u32) -> Self {
        Self {
            model: model.into(),
            message_id: message_id.into(),
            input_tokens,
            started: false,
            next_block: 0,
            open_run: None,
            open_calls: Vec::new(),
            held: Vec::new(),
            held_bytes: 0,
            closed_calls: Vec::new(),
            open_opaque: Vec::new(),
            any_call: false,
            usage: None,
            done: false,
            deferred_space: String::new(),
        }
    }

    /// Appends the SSE events for one event to `out` (zero or more complete events).
    pub fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        self.start(out);
        if self.defer_space(event) {
            return;
        }
        if !self.deferred_space.is_empty() && !self.continues_open_call(event) {
            let text = std::mem::take(&mut self.deferred_space);
            self.encode_event(&ChatEvent::TextDelta { text }, out);
        }
        self.encode_event(event, out);
    }

    /// Defers whitespace that comes while a call's block is open (an upstream may send a
    /// `"\n"` between a call's argument fragments): written as text at once, it would close
    /// the block and the call's next fragment would end the stream. Deferred text is written
    /// before the next event that does not continue the open call, up to
    /// [`MAX_DEFERRED_SPACE`] bytes.
    fn defer_space(&mut self, event: &ChatEvent) -> bool {
        let ChatEvent::TextDelta { text } = event else {
            return false;
        };
        let defer = !text.is_empty()
            && !self.open_calls.is_empty()
            && !self.holding()
            && self.deferred_space.len() + text.len() <= MAX_DEFERRED_SPACE
            && text.bytes().all(|b| b.is_ascii_whitespace());
        if defer {
            self.deferred_space.push_str(text);
        }
        defer
    }

    /// Whether `event` continues an open call (or carries no content), so deferred
    /// whitespace can wait past it.
    fn continues_open_call(&self, event: &ChatEvent) -> bool {
        match event {
            ChatEvent::ToolCallArgs { index, .. } => {
                self.open_calls.iter().any(|(c, _)| c == index)
            }
            ChatEvent::Usage(_) => true,
            _ => false,
        }
    }

    fn encode_event(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        if self.holding() && opens_block(event) {
            self.hold_event(event, out);
            return;
        }
        match event {
            ChatEvent::TextDelta { text } if !text.is_empty() => {
                let index = self.run(false, out);
                delta(out, index, &Delta::Text { text });
            }
            ChatEvent::ThinkingDelta { text } if !text.is_empty() => {
                let index = self.run(true, out);
                delta(out, index, &Delta::Thinking { thinking: text });
            }
            // A signature is a thinking block's last delta: thinking after it is a new block
            // (interleaved thinking), as Anthropic streams it.
            ChatEvent::ThinkingSignature { signature } => {
                let index = self.run(true, out);
                delta(out, index, &Delta::Signature { signature });
                self.close_run(out);
            }
            ChatEvent::RedactedThinking { data } => {
                self.close_run(out);
                self.close_calls(out);
                let index = self.open_block(out, &Block::RedactedThinking { data });
                stop(out, index);
            }
            ChatEvent::ToolCallStart { index, id, name } if !self.open_calls.is_empty() => {
                let open = self.open_calls.iter().any(|(c, _)| c == index);
                if open || self.is_held_call(*index) || self.closed_calls.contains(index) {
                    self.fail(&format!("tool call index {index} started twice"), out);
                    return;
                }
                self.hold_call(*index, id, name, out);
            }
            ChatEvent::ToolCallStart { index, id, name } => {
                self.close_run(out);
                self.close_calls(out);
                if self.closed_calls.contains(index) {
                    self.fail(&format!("tool call index {index} started twice"), out);
                    return;
                }
                let empty = serde_json::Map::new();
                let block = self.open_block(
                    out,
                    &Block::ToolUse {
                        id,
                        name,
                        input: (&empty).into(),
                    },
                );
                self.open_calls.push((*index, block));
                self.any_call = true;
            }
            ChatEvent::ToolCallArgs { index, fragment } => {
                let open = self.open_calls.iter().find(|(c, _)| c == index).copied();
                match open {
                    Some((_, block)) if !fragment.is_empty() => {
                        delta(
                            out,
                            block,
                            &Delta::InputJson {
                                partial_json: fragment,
                            },
                        );
                    }
                    Some(_) => {}
                    None if self.hold_fragment(*index, fragment, out) => {}
                    None if self.closed_calls.contains(index) => {
                        let msg = format!(
                            "tool call index {index} continued after another content block began"
                        );
                        self.fail(&msg, out);
                    }
                    None => {
                        let msg = format!("tool call index {index} continued before it started");
                        self.fail(&msg, out);
                    }
                }
            }
            ChatEvent::ToolCallEnd { index } => {
                match self.open_calls.iter().position(|(c, _)| c == index) {
                    Some(pos) => {
                        let (call, block) = self.open_calls.swap_remove(pos);
                        self.closed_calls.push(call);
                        stop(out, block);
                        if self.holding() {
                            self.release_held(false, out);
                        }
                    }
                    None if self.hold_end(*index) => {}
                    // Its block closed when the next one began.
                    None if self.closed_calls.contains(index) => {}
                    None => {
                        let msg = format!("tool call index {index} ended before it started");
                        self.fail(&msg, out);
                    }
                }
            }
            ChatEvent::Opaque { index, part, json } => self.opaque(*index, *part, json, out),
            ChatEvent::Usage(usage) => self.usage = Some(*usage),
            ChatEvent::Done { finish_reason } => self.finish(finish_reason, out),
            ChatEvent::TextDelta { .. } | ChatEvent::ThinkingDelta { .. } => {}
        }
    }

    /// Appends an `error` event and ends the stream without `message_stop`: the official
    /// SDKs raise on it, so an interrupted answer never looks complete.
    pub fn encode_error(&mut self, err: &ProviderError, out: &mut Vec<u8>) {
        if self.done {
            return;
        }
        out.extend_from_slice(b"event: error\ndata: ");
        encode_error_body(err, out);
        out.extend_from_slice(b"\n\n");
        self.done = true;
    }

    /// Whether the final events (or an error event) have been written.
    pub fn is_done(&self) -> bool {
        self.done
    }

    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        let start = MessageStart {
            kind: "message_start",
            message: WholeMessage {
                id: &self.message_id,
                kind: "message",
                role: "assistant",
                model: &self.model,
                content: Vec::new(),
                stop_reason: None,
                stop_sequence: None,
                usage: WireUsage {
                    input_tokens: self.input_tokens,
                    output_tokens: 0,
                    cache_read_input_tokens: None,
                    cache_creation_input_tokens: None,
                },
            },
        };
        sse(out, "message_start", &start);
    }

    /// The index of the open text (or thinking) block, opening one when needed.
    fn run(&mut self, thinking: bool, out: &mut Vec<u8>) -> u32 {
        if let Some((index, is_thinking)) = self.open_run {
            if is_thinking == thinking {
                return index;
            }
        }
        self.close_run(out);
        self.close_calls(out);
        let index = if thinking {
            self.open_block(
                out,
                &Block::Thinking {
                    thinking: "",
                    signature: "",
                },
            )
        } else {
            self.open_block(out, &Block::Text { text: "" })
        };
        self.open_run = Some((index, thinking));
        index
    }

    fn close_run(&mut self, out: &mut Vec<u8>) {
        if let Some((index, _)) = self.open_run.take() {
            stop(out, index);
        }
    }

    /// Closes the open tool call's block, if any (another block begins).
    fn close_calls(&mut self, out: &mut Vec<u8>) {
        for (call, block) in self.open_calls.drain(..) {
            self.closed_calls.push(call);
            stop(out, block);
        }
    }

    fn open_block(&mut self, out: &mut Vec<u8>, block: &Block<'_>) -> u32 {
        let index = self.next_block;
        self.next_block = self.next_block.saturating_add(1);
        let start = BlockStart {
            kind: "content_block_start",
            index,
            content_block: block,
        };
        sse(out, "content_block_start", &start);
        index
    }

    fn finish(&mut self, reason: &FinishReason, out: &mut Vec<u8>) {
        if self.holding() {
            self.close_calls(out);
            self.release_held(true, out);
            if self.done {
                return;
            }
        }
        self.close_run(out);
        let mut open: Vec<u32> = self.open_calls.drain(..).map(|(_, b)| b).collect();
        open.extend(self.open_opaque.drain(..).map(|(_, b)| b));
        open.sort_unstable();
        for block in open {
            stop(out, block);
        }
        let (stop_reason, stop_sequence) = stop_reason(reason.answering_calls(self.any_call));
        let u = self.usage.unwrap_or_default();
        let input_tokens = if self.usage.is_some() {
            u.prompt_tokens
        } else {
            self.input_tokens
        };
        let event = MessageDelta {
            kind: "message_delta",
            delta: StopDelta {
                stop_reason,
                stop_sequence,
            },
            usage: WireUsage {
                input_tokens,
                output_tokens: u.completion_tokens,
                cache_read_input_tokens: nonzero(u.cache_read_tokens),
                cache_creation_input_tokens: nonzero(u.cache_creation_tokens),
            },
        };
        sse(out, "message_delta", &event);
        out.extend_from_slice(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        self.done = true;
    }

    fn fail(&mut self, message: &str, out: &mut Vec<u8>) {
        let err = ProviderError::malformed(message);
        self.encode_error(&err, out);
    }
}

/// Whether an event would open a content block (and so is held while calls interleave).
fn opens_block(event: &ChatEvent) -> bool {
    match event {
        ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } => !text.is_empty(),
        ChatEvent::ThinkingSignature { .. }
        | ChatEvent::RedactedThinking { .. }
        | ChatEvent::Opaque { .. } => true,
        ChatEvent::ToolCallStart { .. }
        | ChatEvent::ToolCallArgs { .. }
        | ChatEvent::ToolCallEnd { .. }
        | ChatEvent::Usage(_)
        | ChatEvent::Done { .. } => false,
    }
}

/// Anthropic's own `stop_reason`s that have no [`FinishReason`] of their own: an Anthropic
/// upstream's reason among them reaches an Anthropic client as sent.
const PASSED_STOP_REASONS: [&str; 3] = [
    "pause_turn",
    "refusal",
    FinishReason::CONTEXT_WINDOW_EXCEEDED,
];

/// Anthropic's `stop_reason` (and `stop_sequence`) for a finish reason. Anthropic's own
/// reasons kept as [`FinishReason::Other`] (`pause_turn`, `model_context_window_exceeded`)
/// pass through; another upstream's (Ollama's `unload`) reads as `end_turn`.
///
/// ```
/// use switchyard_core::FinishReason;
/// use switchyard_stream::anthropic::stop_reason;
/// let cut = FinishReason::Other("model_context_window_exceeded".into());
/// assert_eq!(stop_reason(&cut), ("model_context_window_exceeded", None));
/// assert_eq!(stop_reason(&FinishReason::Other("unload".into())), ("end_turn", None));
/// ```
pub fn stop_reason(reason: &FinishReason) -> (&str, Option<&str>) {
    match reason {
        FinishReason::Stop => ("end_turn", None),
        FinishReason::StopSequence(seq) => ("stop_sequence", Some(seq)),
        FinishReason::Length => ("max_tokens", None),
        FinishReason::ToolCalls => ("tool_use", None),
        FinishReason::ContentFilter => ("refusal", None),
        FinishReason::Other(r) if PASSED_STOP_REASONS.contains(&r.as_str()) => (r, None),
        FinishReason::Other(_) => ("end_turn", None),
    }
}

fn nonzero(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

fn sse<T: Serialize>(out: &mut Vec<u8>, name: &str, data: &T) {
    let _ = write!(out, "event: {name}\ndata: ");
    let _ = serde_json::to_writer(&mut *out, data);
    out.extend_from_slice(b"\n\n");
}

/// A `content_block_delta` event, the one written per upstream chunk: written directly, the
/// bytes serde_json writes for the same event (a test compares the two).
fn delta(out: &mut Vec<u8>, index: u32, delta: &Delta<'_>) {
    let (kind, field, value) = match delta {
        Delta::Text { text } => ("text_delta", "text", text),
        Delta::Thinking { thinking } => ("thinking_delta", "thinking", thinking),
        Delta::Signature { signature } => ("signature_delta", "signature", signature),
        Delta::InputJson { partial_json } => ("input_json_delta", "partial_json", partial_json),
    };
    out.extend_from_slice(
        b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":",
    );
    out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
    out.extend_from_slice(b",\"delta\":{\"type\":\"");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\",\"");
    out.extend_from_slice(field.as_bytes());
    out.extend_from_slice(b"\":");
    write_json_str(out, value);
    out.extend_from_slice(b"}}\n\n");
}

/// A `content_block_delta` whose delta is `json`, verbatim.
fn delta_raw(out: &mut Vec<u8>, index: u32, json: &str) {
    let _ = write!(
        out,
        "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{json}}}\n\n"
    );
}

fn stop(out: &mut Vec<u8>, index: u32) {
    let _ = write!(
        out,
        "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{index}}}\n\n"
    );
}

/// Appends a non-streamed Anthropic `message` object for a whole response. When the
/// response kept pass-through blocks (`extras.opaque`: citations, server-tool blocks), the
/// text and those blocks are rebuilt in the upstream's order; so are its thinking and
/// redacted-thinking blocks, each with its own signature, when they stand there
/// ([`ChatResponse::has_placed_thinking`]: interleaved thinking). Otherwise redacted
/// thinking comes first, then the thinking block (when it has text or a signature), then
/// the text; tool calls come last.
pub fn encode_response(resp: &ChatResponse, model: &str, message_id: &str, out: &mut Vec<u8>) {
    let mut content = Vec::with_capacity(2 + resp.tool_calls.len());
    if !resp.has_placed_thinking() {
        for data in &resp.extras.redacted_thinking {
            content.push(Block::RedactedThinking { data });
        }
        let thinking = resp.thinking.as_deref().unwrap_or("");
        let signature = resp.extras.thinking_signature.as_deref().unwrap_or("");
        if !thinking.is_empty() || !signature.is_empty() {
            content.push(Block::Thinking {
                thinking,
                signature,
            });
        }
    }
    if !resp.content.is_empty() {
        content.push(Block::Text {
            text: &resp.content,
        });
    }
    for call in &resp.tool_calls {
        content.push(Block::ToolUse {
            id: &call.id,
            name: &call.name,
            input: call.arguments_object(),
        });
    }
    let (stop_reason, stop_sequence) = stop_reason(
        resp.finish_reason
            .answering_calls(!resp.tool_calls.is_empty()),
    );
    let u = resp.usage.unwrap_or_default();
    let msg = WholeMessage {
        id: message_id,
        kind: "message",
        role: "assistant",
        model,
        content,
        stop_reason: Some(stop_reason),
        stop_sequence,
        usage: WireUsage {
            input_tokens: u.prompt_tokens,
            output_tokens: u.completion_tokens,
            cache_read_input_tokens: nonzero(u.cache_read_tokens),
            cache_creation_input_tokens: nonzero(u.cache_creation_tokens),
        },
    };
    if resp.extras.opaque.is_empty() {
        msg.write(out);
    } else {
        opaque::write_whole(&msg, resp, out);
    }
}

/// Appends Anthropic's error body `{"type":"error","error":{"type","message"}}`, the type
/// from the failure's kind ([`error_type`]).
pub fn encode_error_body(err: &ProviderError, out: &mut Vec<u8>) {
    encode_error_body_as(err, error_type(err.kind()), out);
}

/// Appends Anthropic's error body with the given `error.type` (a gateway that answers with
/// its own status gives the type matching that status, [`error_type_for_status`]).
pub fn encode_error_body_as(err: &ProviderError, error_type: &'static str, out: &mut Vec<u8>) {
    let message = if err.message().is_empty() {
        err.reason_code()
    } else {
        err.message()
    };
    // Anthropic words a context overflow "prompt is too long: ..."; Claude Code recognises
    // one by those words (and then compacts the conversation), whatever else it says.
    let overflow;
    let message = if err.kind() == ErrorKind::ContextOverflow
        && !message.to_ascii_lowercase().contains(PROMPT_TOO_LONG)
    {
        overflow = format!("{PROMPT_TOO_LONG}: {message}");
        overflow.as_str()
    } else {
        message
    };
    let body = ErrorEnvelope {
        kind: "error",
        error: ErrorObject {
            kind: error_type,
            message,
        },
    };
    let _ = serde_json::to_writer(out, &body);
}

/// How Anthropic's API begins the message of a context overflow.
const PROMPT_TOO_LONG: &str = "prompt is too long";

/// Anthropic's `error.type` for a kind of failure.
pub fn error_type(kind: ErrorKind) -> &'static str {
    match kind {
        ErrorKind::InvalidRequest | ErrorKind::ContextOverflow => "invalid_request_error",
        ErrorKind::PolicyBlocked => "permission_error",
        ErrorKind::Auth => "authentication_error",
        ErrorKind::ModelNotFound | ErrorKind::EndpointNotFound => "not_found_error",
        ErrorKind::RateLimited
        | ErrorKind::QueueFull
        | ErrorKind::QuotaExhausted
        | ErrorKind::BudgetExhausted => "rate_limit_error",
        ErrorKind::Overloaded => "overloaded_error",
        _ => "api_error",
    }
}

/// The `error.type` Anthropic uses for an HTTP status (the inverse of
/// [`status_for_error_type`]; other 4xx are `invalid_request_error`, other 5xx `api_error`).
pub fn error_type_for_status(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

/// The HTTP status Anthropic uses for an `error.type` (400, 401, 403, 404, 413, 429, 500,
/// 529).
pub fn status_for_error_type(error_type: &str) -> u16 {
    match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "overloaded_error" => 529,
        _ => 500,
    }
}

#[derive(Serialize)]
struct ErrorEnvelope<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    error: ErrorObject<'a>,
}

#[derive(Serialize)]
struct ErrorObject<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: &'a str,
}

#[derive(Serialize)]
struct WireUsage {
    input_tokens: u32,
    output_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_read_input_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_creation_input_tokens: Option<u32>,
}

#[derive(Serialize)]
struct WholeMessage<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    role: &'static str,
    model: &'a str,
    content: Vec<Block<'a>>,
    stop_reason: Option<&'a str>,
    stop_sequence: Option<&'a str>,
    usage: WireUsage,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Block<'a> {
    Text {
        text: &'a str,
    },
    Thinking {
        thinking: &'a str,
        #[serde(skip_serializing_if = "str::is_empty")]
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: switchyard_core::ArgumentsObject<'a>,
    },
}

impl WholeMessage<'_> {
    /// Appends the message: the bytes serde_json writes for it (a proptest compares the
    /// two), field by field.
    fn write(&self, out: &mut Vec<u8>) {
        let opt = |out: &mut Vec<u8>, value: Option<&str>| match value {
            Some(v) => write_json_str(out, v),
            None => out.extend_from_slice(b"null"),
        };
        let number = |out: &mut Vec<u8>, key: &[u8], n: u32| {
            out.extend_from_slice(key);
            out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
        };
        out.extend_from_slice(b"{\"id\":");
        write_json_str(out, self.id);
        out.extend_from_slice(b",\"type\":");
        write_json_str(out, self.kind);
        out.extend_from_slice(b",\"role\":");
        write_json_str(out, self.role);
        out.extend_from_slice(b",\"model\":");
        write_json_str(out, self.model);
        out.extend_from_slice(b",\"content\":[");
        for (i, block) in self.content.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            block.write(out);
        }
        out.extend_from_slice(b"],\"stop_reason\":");
        opt(out, self.stop_reason);
        out.extend_from_slice(b",\"stop_sequence\":");
        opt(out, self.stop_sequence);
        let u = &self.usage;
        number(out, b",\"usage\":{\"input_tokens\":", u.input_tokens);
        number(out, b",\"output_tokens\":", u.output_tokens);
        if let Some(n) = u.cache_read_input_tokens {
            number(out, b",\"cache_read_input_tokens\":", n);
        }
        if let Some(n) = u.cache_creation_input_tokens {
            number(out, b",\"cache_creation_input_tokens\":", n);
        }
        out.extend_from_slice(b"}}");
    }
}

impl Block<'_> {
    /// Appends the block as serde_json writes it.
    fn write(&self, out: &mut Vec<u8>) {
        let field = |out: &mut Vec<u8>, key: &[u8], value: &str| {
            out.extend_from_slice(key);
            write_json_str(out, value);
        };
        match self {
            Block::Text { text } => field(out, b"{\"type\":\"text\",\"text\":", text),
            Block::Thinking {
                thinking,
                signature,
            } => {
                field(out, b"{\"type\":\"thinking\",\"thinking\":", thinking);
                if !signature.is_empty() {
                    field(out, b",\"signature\":", signature);
                }
            }
            Block::RedactedThinking { data } => {
                field(out, b"{\"type\":\"redacted_thinking\",\"data\":", data);
            }
            Block::ToolUse { id, name, input } => {
                field(out, b"{\"type\":\"tool_use\",\"id\":", id);
                field(out, b",\"name\":", name);
                out.extend_from_slice(b",\"input\":");
                let _ = serde_json::to_writer(&mut *out, input);
            }
        }
        out.push(b'}');
    }
}

#[derive(Serialize)]
struct MessageStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    message: WholeMessage<'a>,
}

#[derive(Serialize)]
struct BlockStart<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    content_block: &'a Block<'a>,
}

/// The delta of a `content_block_delta` event.
#[cfg_attr(test, derive(Serialize))]
#[cfg_attr(test, serde(tag = "type"))]
enum Delta<'a> {
    #[cfg_attr(test, serde(rename = "text_delta"))]
    Text { text: &'a str },
    #[cfg_attr(test, serde(rename = "thinking_delta"))]
    Thinking { thinking: &'a str },
    #[cfg_attr(test, serde(rename = "signature_delta"))]
    Signature { signature: &'a str },
    #[cfg_attr(test, serde(rename = "input_json_delta"))]
    InputJson { partial_json: &'a str },
}

#[derive(Serialize)]
struct StopDelta<'a> {
    stop_reason: &'a str,
    stop_sequence: Option<&'a str>,
}

#[derive(Serialize)]
struct MessageDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    delta: StopDelta<'a>,
    usage: WireUsage,
}

#[cfg(test)]
mod delta_tests {
    //! The direct `content_block_delta` writer against the serde structs it replaced.

    use proptest::prelude::*;
    use serde::Serialize;

    use super::{Delta, delta, sse};

    #[derive(Serialize)]
    struct BlockDelta<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        index: u32,
        delta: &'a Delta<'a>,
    }

    proptest! {
        #[test]
        fn writes_what_serde_wrote(index in any::<u32>(), value in any::<String>(), variant in 0..4) {
            let d = match variant {
                0 => Delta::Text { text: &value },
                1 => Delta::Thinking { thinking: &value },
                2 => Delta::Signature { signature: &value },
                _ => Delta::InputJson { partial_json: &value },
            };
            let mut direct = Vec::new();
            delta(&mut direct, index, &d);
            let mut reference = Vec::new();
            sse(&mut reference, "content_block_delta", &BlockDelta { kind: "content_block_delta", index, delta: &d });
            prop_assert_eq!(String::from_utf8(direct).unwrap(), String::from_utf8(reference).unwrap());
        }
    }
}

#[cfg(test)]
mod whole_message_tests {
    //! The direct message writer against serde_json on the same structs.

    use proptest::prelude::*;

    use super::{Block, WholeMessage, WireUsage};

    proptest! {
        #[test]
        fn writes_what_serde_writes(
            id in any::<String>(),
            model in any::<String>(),
            blocks in proptest::collection::vec((0u8..4, any::<String>(), prop_oneof![Just(String::new()), any::<String>()]), 0..4),
            stop_reason in proptest::option::of(any::<String>()),
            stop_sequence in proptest::option::of(any::<String>()),
            usage in (any::<u32>(), any::<u32>(), proptest::option::of(any::<u32>()), proptest::option::of(any::<u32>())),
        ) {
            let input: serde_json::Map<String, serde_json::Value> =
                [("k".to_owned(), serde_json::json!([1, "x"]))].into_iter().collect();
            let content: Vec<Block<'_>> = blocks
                .iter()
                .map(|(k, a, b)| match k {
                    0 => Block::Text { text: a },
                    1 => Block::Thinking { thinking: a, signature: b },
                    2 => Block::RedactedThinking { data: a },
                    _ => Block::ToolUse { id: a, name: b, input: (&input).into() },
                })
                .collect();
            let msg = WholeMessage {
                id: &id,
                kind: "message",
                role: "assistant",
                model: &model,
                content,
                stop_reason: stop_reason.as_deref(),
                stop_sequence: stop_sequence.as_deref(),
                usage: WireUsage {
                    input_tokens: usage.0,
                    output_tokens: usage.1,
                    cache_read_input_tokens: usage.2,
                    cache_creation_input_tokens: usage.3,
                },
            };
            let mut direct = Vec::new();
            msg.write(&mut direct);
            prop_assert_eq!(String::from_utf8(direct).unwrap(), serde_json::to_string(&msg).unwrap());
        }
    }
}

#[cfg(test)]
mod thinking_block_tests {
    //! Interleaved thinking blocks keep their own signatures and places, streamed and whole.

    #![allow(clippy::unwrap_used)]

    use serde_json::{Value, json};
    use switchyard_core::{ChatEvent, FinishReason, ResponseBuilder};

    use super::{AnthropicStreamEncoder, encode_response};
    use crate::anthropic::decode_response;

    /// Thinking A (sigA), a server tool, thinking B (sigB), text: a whole Anthropic message.
    fn interleaved() -> Value {
        json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-x",
            "content": [
                {"type": "thinking", "thinking": "First thought.", "signature": "sigA"},
                {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search",
                 "input": {"query": "x"}},
                {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
                {"type": "thinking", "thinking": "Second thought.", "signature": "sigB"},
                {"type": "redacted_thinking", "data": "opaque"},
                {"type": "text", "text": "Answer."}
            ],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": 10, "output_tokens": 20}})
    }

    #[test]
    fn a_whole_message_with_interleaved_thinking_comes_back_as_it_was() {
        let want = interleaved();
        let resp = decode_response(want.to_string().as_bytes()).unwrap();
        assert_eq!(
            resp.thinking.as_deref(),
            Some("First thought.Second thought.")
        );
        let mut out = Vec::new();
        encode_response(&resp, "claude-x", "msg_1", &mut out);
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got, want);
        // Folded from its events, as the gateway folds a stream, it is the same answer.
        let mut b = ResponseBuilder::default();
        for e in resp.to_events() {
            b.push(e).unwrap();
        }
        assert_eq!(b.finish().unwrap(), resp);
    }

    #[test]
    fn streamed_thinking_blocks_stay_apart_after_each_signature() {
        let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
        let mut out = Vec::new();
        for e in [
            ChatEvent::thinking("A"),
            ChatEvent::ThinkingSignature {
                signature: "sigA".into(),
            },
            ChatEvent::thinking("B"),
            ChatEvent::ThinkingSignature {
                signature: "sigB".into(),
            },
            ChatEvent::text("Answer."),
            ChatEvent::done(FinishReason::Stop),
        ] {
            enc.encode(&e, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        let starts = text.matches("\"type\":\"content_block_start\"").count();
        assert_eq!(starts, 3, "{text}");
        assert!(
            text.contains(r#""index":1,"delta":{"type":"signature_delta","signature":"sigB"}"#)
        );
    }

    #[test]
    fn anthropics_own_stop_reasons_pass_through() {
        for reason in ["model_context_window_exceeded", "pause_turn"] {
            let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
            let mut out = Vec::new();
            enc.encode(
                &ChatEvent::done(FinishReason::Other(reason.into())),
                &mut out,
            );
            let text = String::from_utf8(out).unwrap();
            assert!(
                text.contains(&format!(r#""stop_reason":"{reason}""#)),
                "{text}"
            );
        }
        let body = json!({"content": [], "stop_reason": "model_context_window_exceeded"});
        let resp = decode_response(body.to_string().as_bytes()).unwrap();
        let mut out = Vec::new();
        encode_response(&resp, "m", "msg", &mut out);
        let got: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(got["stop_reason"], "model_context_window_exceeded");
    }
}

#[cfg(test)]
mod interleaved_call_tests {
    //! Parallel calls whose fragments interleave (OpenAI's format allows it) come out as
    //! one block after another.

    #![allow(clippy::unwrap_used)]

    use serde_json::Value;
    use switchyard_core::{ChatEvent, FinishReason};

    use super::AnthropicStreamEncoder;

    fn start(index: u32, name: &str) -> ChatEvent {
        ChatEvent::ToolCallStart {
            index,
            id: format!("call_{index}"),
            name: name.into(),
        }
    }

    fn args(index: u32, fragment: &str) -> ChatEvent {
        ChatEvent::ToolCallArgs {
            index,
            fragment: fragment.into(),
        }
    }

    /// The stream's events as JSON, in order.
    fn encode(events: &[ChatEvent]) -> Vec<Value> {
        let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
        let mut out = Vec::new();
        for e in events {
            enc.encode(e, &mut out);
        }
        String::from_utf8(out)
            .unwrap()
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(|d| serde_json::from_str(d).unwrap())
            .collect()
    }

    /// Each block's (type, accumulated input JSON), checking that a block's deltas come
    /// between its start and its stop and blocks never overlap.
    fn blocks(events: &[Value]) -> Vec<(String, String)> {
        let mut blocks: Vec<(String, String)> = Vec::new();
        let mut open: Option<u64> = None;
        for e in events {
            match e["type"].as_str().unwrap() {
                "content_block_start" => {
                    assert!(open.is_none(), "a block started inside another: {events:?}");
                    let index = e["index"].as_u64().unwrap();
                    assert_eq!(index, blocks.len() as u64);
                    open = Some(index);
                    let kind = e["content_block"]["type"].as_str().unwrap();
                    blocks.push((kind.to_owned(), String::new()));
                }
                "content_block_delta" => {
                    assert_eq!(e["index"].as_u64(), open, "{events:?}");
                    if let Some(json) = e["delta"]["partial_json"].as_str() {
                        blocks.last_mut().unwrap().1.push_str(json);
                    }
                    if let Some(text) = e["delta"]["text"].as_str() {
                        blocks.last_mut().unwrap().1.push_str(text);
                    }
                }
                "content_block_stop" => {
                    assert_eq!(e["index"].as_u64(), open, "{events:?}");
                    open = None;
                }
                "error" => panic!("the stream failed: {events:?}"),
                _ => {}
            }
        }
        assert!(open.is_none());
        blocks
    }

    #[test]
    fn interleaved_calls_become_two_blocks_in_call_order() {
        let events = encode(&[
            start(0, "get_weather"),
            start(1, "get_time"),
            args(0, "{\"city\":"),
            args(1, "{\"city\":"),
            args(0, "\"Oslo\"}"),
            args(1, "\"Lima\"}"),
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::ToolCallEnd { index: 1 },
            ChatEvent::done(FinishReason::ToolCalls),
        ]);
        let got = blocks(&events);
        let want = [
            ("tool_use".to_owned(), r#"{"city":"Oslo"}"#.to_owned()),
            ("tool_use".to_owned(), r#"{"city":"Lima"}"#.to_owned()),
        ];
        assert_eq!(got, want);
        let delta = events
            .iter()
            .find(|e| e["type"] == "message_delta")
            .unwrap();
        assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    }

    #[test]
    fn a_held_call_streams_live_once_the_open_one_ends_and_done_closes_the_rest() {
        let events = encode(&[
            start(0, "a"),
            start(1, "b"),
            args(1, "{\"x\":"),
            ChatEvent::text("between"),
            start(2, "c"),
            args(0, "{}"),
            ChatEvent::ToolCallEnd { index: 0 },
            args(1, "1}"),
            args(2, "{\"y\":2}"),
            ChatEvent::done(FinishReason::ToolCalls),
        ]);
        let got = blocks(&events);
        let want = [
            ("tool_use", "{}"),
            ("tool_use", r#"{"x":1}"#),
            ("text", "between"),
            ("tool_use", r#"{"y":2}"#),
        ];
        let want: Vec<(String, String)> = want
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(got, want);
    }

    #[test]
    fn a_call_started_twice_while_held_fails() {
        let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
        let mut out = Vec::new();
        for e in [start(0, "a"), start(1, "b"), start(1, "b")] {
            enc.encode(&e, &mut out);
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("tool call index 1 started twice"), "{text}");
        assert!(enc.is_done());
    }
}

#[cfg(test)]
mod deferred_space_tests {
    //! Whitespace between a call's argument fragments does not split its block.

    #![allow(clippy::unwrap_used)]

    use switchyard_core::{ChatEvent, FinishReason};

    use super::{AnthropicStreamEncoder, MAX_DEFERRED_SPACE};

    fn encode(events: &[ChatEvent]) -> String {
        let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
        let mut out = Vec::new();
        for e in events {
            enc.encode(e, &mut out);
        }
        String::from_utf8(out).unwrap()
    }

    fn start(index: u32) -> ChatEvent {
        ChatEvent::ToolCallStart {
            index,
            id: format!("call_{index}"),
            name: "get".into(),
        }
    }

    fn args(index: u32, fragment: &str) -> ChatEvent {
        ChatEvent::ToolCallArgs {
            index,
            fragment: fragment.into(),
        }
    }

    #[test]
    fn a_newline_between_fragments_is_written_after_the_call() {
        let text = encode(&[
            start(0),
            args(0, r#"{"a":"#),
            ChatEvent::text("\n"),
            args(0, "1}"),
            ChatEvent::done(FinishReason::ToolCalls),
        ]);
        assert!(!text.contains("event: error"), "{text}");
        assert!(
            text.contains(r#""index":0,"delta":{"type":"input_json_delta","partial_json":"1}"}"#),
            "{text}"
        );
        // The newline follows as a text block of its own, after the call's block closed.
        let stop0 = text
            .find(r#"{"type":"content_block_stop","index":0}"#)
            .unwrap();
        let newline = text
            .find(r#""index":1,"delta":{"type":"text_delta","text":"\n"}"#)
            .unwrap();
        assert!(stop0 < newline, "{text}");
        assert!(text.contains(r#""stop_reason":"tool_use""#), "{text}");
    }

    #[test]
    fn text_after_deferred_space_closes_the_call_with_the_space_first() {
        let text = encode(&[
            start(0),
            args(0, "{}"),
            ChatEvent::text(" "),
            ChatEvent::text("Done."),
            ChatEvent::done(FinishReason::ToolCalls),
        ]);
        assert!(!text.contains("event: error"), "{text}");
        let space = text
            .find(r#""index":1,"delta":{"type":"text_delta","text":" "}"#)
            .unwrap();
        let words = text
            .find(r#""index":1,"delta":{"type":"text_delta","text":"Done."}"#)
            .unwrap();
        assert!(space < words, "{text}");
    }

    #[test]
    fn whitespace_past_the_bound_closes_the_block_as_text_does() {
        let long = " ".repeat(MAX_DEFERRED_SPACE + 1);
        let text = encode(&[start(0), args(0, "{"), ChatEvent::text(long), args(0, "}")]);
        assert!(
            text.contains("continued after another content block began"),
            "{text}"
        );
    }

    #[test]
    fn a_second_call_after_deferred_space_gets_its_own_block() {
        let text = encode(&[
            start(0),
            args(0, "{}"),
            ChatEvent::text("\n"),
            start(1),
            args(1, "{}"),
            ChatEvent::done(FinishReason::ToolCalls),
        ]);
        assert!(!text.contains("event: error"), "{text}");
        assert_eq!(text.matches(r#""type":"tool_use""#).count(), 2, "{text}");
    }
}
