//! Native pass-through of the Responses API to an upstream that serves `/v1/responses`
//! itself: the client's body with only `model` replaced ([`with_model`]), and the
//! upstream's answer kept byte for byte in [`RawFrames`] while the chat events it carries
//! (output, usage, the end) are read for routing and accounting
//! ([`PassThroughDecoder`] for SSE, [`decode_whole`] for a whole response object).
//! [`encode_failure`] writes the closing `error` and `response.failed` events when the
//! upstream broke off without its own ([`encode_failed`] only the `response.failed`, after
//! the upstream's own `error`).

use std::borrow::Cow;
use std::fmt;

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchyard_core::{
    ChatEvent, ErrorBody, FinishReason, ProviderError, RawFrames, Usage, classify_stream_error,
};

use crate::RequestError;
use crate::decoder::EventDecoder;
use crate::request_error::decode_body;
use crate::sse::SseFramer;

/// Tool calls of one answer tracked for their end, at most.
const MAX_TRACKED_CALLS: usize = 1024;

/// The top-level members of a JSON object, in their order, values kept as written.
struct Members<'a>(Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members<'a>, M::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        de.deserialize_map(V(std::marker::PhantomData))
    }
}

/// A client's Responses request body made ready for the upstream ([`with_model`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingBody {
    /// The bytes to send.
    pub bytes: Vec<u8>,
    /// Whether the request offers tools (a non-empty `tools` list): the transport then
    /// allows for a server that holds a call back until it is whole.
    pub offers_tools: bool,
}

/// The client's request body with `model` set to `model` (added when missing): every
/// other member is kept as the client wrote it, in its order, so opaque items
/// (`encrypted_content`), hosted tools and fields Switchyard does not model reach the
/// upstream byte for byte. Only the whitespace between top-level members may change.
pub fn with_model(body: &[u8], model: &str) -> Result<OutgoingBody, RequestError> {
    let Members(members) = decode_body(body)?;
    let mut out = Vec::with_capacity(body.len() + model.len() + 16);
    out.push(b'{');
    let mut replaced = false;
    let mut offers_tools = false;
    for (i, (key, value)) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_string(&mut out, key)?;
        out.push(b':');
        if key == "model" {
            write_string(&mut out, model)?;
            replaced = true;
        } else {
            if key == "tools" {
                offers_tools = is_non_empty_list(value.get());
            }
            out.extend_from_slice(value.get().as_bytes());
        }
    }
    if !replaced {
        if !members.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"model\":");
        write_string(&mut out, model)?;
    }
    out.push(b'}');
    Ok(OutgoingBody {
        bytes: out,
        offers_tools,
    })
}

/// Whether raw JSON text is an array with at least one element.
fn is_non_empty_list(raw: &str) -> bool {
    raw.strip_prefix('[')
        .is_some_and(|rest| !rest.trim_start().starts_with(']'))
}

fn write_string(out: &mut Vec<u8>, s: &str) -> Result<(), RequestError> {
    serde_json::to_writer(&mut *out, s).map_err(|e| RequestError::encode(&e))
}

/// One Responses stream event, as far as accounting reads it.
#[derive(Deserialize)]
struct Event<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    sequence_number: Option<u64>,
    #[serde(default, borrow)]
    delta: Option<Cow<'a, str>>,
    #[serde(default)]
    output_index: Option<u64>,
    #[serde(default)]
    item: Option<Item>,
    #[serde(default, borrow)]
    response: Option<&'a RawValue>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    code: Option<Value>,
}

/// A member that may be `null` or missing: both read as its default (`"content": null`
/// is an empty list, not an invalid response).
fn nullable<'de, D: Deserializer<'de>, T: Default + Deserialize<'de>>(
    de: D,
) -> Result<T, D::Error> {
    Option::<T>::deserialize(de).map(Option::unwrap_or_default)
}

/// An output item, as far as accounting reads it.
#[derive(Deserialize, Default)]
struct Item {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    arguments: Option<String>,
    #[serde(default)]
    input: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    content: Vec<Part>,
    #[serde(default, deserialize_with = "nullable")]
    summary: Vec<Part>,
}

#[derive(Deserialize, Default)]
struct Part {
    #[serde(rename = "type", default, deserialize_with = "nullable")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

/// The response object, as far as accounting reads it.
#[derive(Deserialize, Default)]
struct ResponseObject {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    usage: Option<ResponseUsage>,
    #[serde(default)]
    error: Option<Value>,
    #[serde(default, deserialize_with = "nullable")]
    output: Vec<Item>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct ResponseUsage {
    #[serde(default, deserialize_with = "nullable")]
    input_tokens: u32,
    #[serde(default, deserialize_with = "nullable")]
    output_tokens: u32,
    #[serde(default)]
    input_tokens_details: Option<InputTokensDetails>,
}

/// `usage.input_tokens_details`: the input tokens read from the prompt cache, a part of
/// `input_tokens`.
#[derive(Deserialize, Default, Clone, Copy)]
struct InputTokensDetails {
    #[serde(default)]
    cached_tokens: Option<u32>,
}

impl ResponseObject {
    /// The usage, cached input tokens kept apart from `prompt_tokens` as [`Usage`] counts
    /// them.
    fn usage_event(&self) -> Option<ChatEvent> {
        self.usage.map(|u| {
            let cached = u
                .input_tokens_details
                .and_then(|d| d.cached_tokens)
                .unwrap_or(0);
            ChatEvent::Usage(Usage {
                prompt_tokens: u.input_tokens.saturating_sub(cached),
                completion_tokens: u.output_tokens,
                cache_read_tokens: cached,
                ..Usage::default()
            })
        })
    }

    /// The failure a `failed` response reports.
    fn failure(&self) -> ProviderError {
        failure_of(self.error.as_ref(), "the upstream's response failed")
    }
}

/// A classified error from an `error` object (`message`, `code`, `type`).
fn failure_of(error: Option<&Value>, fallback: &str) -> ProviderError {
    let text = |key: &str| {
        error.and_then(|e| match &e[key] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    let body = ErrorBody {
        message: text("message").unwrap_or_else(|| fallback.to_owned()),
        error_type: text("type"),
        code: text("code"),
    };
    classify_stream_error(&body)
}

fn is_call(kind: &str) -> bool {
    matches!(kind, "function_call" | "custom_tool_call")
}

/// Whether an event of this type is the upstream's last (its terminal event).
fn is_final(kind: &str) -> bool {
    matches!(
        kind,
        "response.completed" | "response.incomplete" | "response.failed"
    )
}

/// Appends `s` as the inside of a JSON string (escaped as serde_json escapes it; no copy
/// beyond the append when nothing needs escaping).
fn push_json_str_contents(out: &mut String, s: &str) {
    if !crate::fast_json::needs_escape(s.as_bytes()) {
        out.push_str(s);
        return;
    }
    let quoted = serde_json::to_string(s).unwrap_or_default();
    out.push_str(
        quoted
            .get(1..quoted.len().saturating_sub(1))
            .unwrap_or_default(),
    );
}

/// Just the type of an event that could not be read as a whole.
#[derive(Deserialize)]
struct EventKind<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
}

/// A tool call of the answer being read.
#[derive(Debug, Clone, Copy)]
struct Call {
    /// The item's `output_index`.
    at: u64,
    /// A custom tool's call: its input is the argument `input` of the chat call.
    custom: bool,
    /// Its arguments (a custom call's input) began to go out as the upstream's deltas
    /// came: the done item only closes them.
    streamed: bool,
}

/// The arguments of a finished call item as a JSON object's text (a custom tool's input
/// as the argument `input`, as the translating codec does).
fn call_arguments(item: &Item) -> String {
    match (&item.arguments, &item.input) {
        (Some(args), _) => args.clone(),
        (None, Some(input)) => json!({ "input": input }).to_string(),
        (None, None) => "{}".to_owned(),
    }
}

/// Decodes a Responses SSE stream for accounting while every event's bytes go to
/// [`RawFrames`] unchanged (`event:` and `data:` lines; comments and `id:` lines are not
/// kept). Yields text and reasoning deltas, tool calls (start when announced, an argument
/// fragment per `function_call_arguments.delta` / `custom_tool_call_input.delta` as it
/// comes, so the client gets those bytes while the model writes them, and the end when
/// done; a call without deltas gets its arguments then), usage and the end from
/// `response.completed` / `incomplete`; the upstream's `response.failed` is passed on
/// and ends the stream as an error. A final event that cannot be read still ends the
/// stream (as an error): it went to the client as sent, so nothing may follow it.
///
/// The upstream's `error` event is passed on too, and the upstream's events after it are
/// still passed on (nothing more is decoded from them) up to its terminal
/// `response.failed`, which ends the stream as the `error` event's error: clients such as
/// Codex read a failure only from `response.failed`. An upstream that ends without one
/// gets the decoder's own `response.failed` ([`encode_failed`]) after its bytes. The
/// bytes held meanwhile are bounded by [`switchyard_core::MAX_PENDING_FRAME_BYTES`].
#[derive(Debug)]
pub struct PassThroughDecoder {
    framer: SseFramer,
    frames: RawFrames,
    /// Each tool call, in call order.
    calls: Vec<Call>,
    ended: bool,
    /// The error of the upstream's `error` event, once one came: the stream ends with it
    /// at the upstream's `response.failed` (or at the end of its body).
    failed: Option<ProviderError>,
}

impl PassThroughDecoder {
    /// A decoder that appends the upstream's events to `frames`.
    pub fn new(frames: RawFrames) -> Self {
        Self {
            framer: SseFramer::new(),
            frames,
            calls: Vec::new(),
            ended: false,
            failed: None,
        }
    }

    fn forward(&self, event: Option<&str>, data: &str) -> Result<(), ProviderError> {
        let mut raw = Vec::with_capacity(data.len() + 32);
        if let Some(name) = event {
            raw.extend_from_slice(b"event: ");
            raw.extend_from_slice(name.as_bytes());
            raw.push(b'\n');
        }
        for line in data.split('\n') {
            raw.extend_from_slice(b"data: ");
            raw.extend_from_slice(line.as_bytes());
            raw.push(b'\n');
        }
        raw.push(b'\n');
        if self.frames.push(&raw) {
            Ok(())
        } else {
            Err(ProviderError::malformed(format!(
                "the upstream sent more than {} bytes without any output",
                switchyard_core::MAX_PENDING_FRAME_BYTES
            )))
        }
    }

    /// The stream has ended with the upstream's final event (forwarded already).
    fn mark_ended(&mut self) {
        self.ended = true;
        self.frames.update_meta(|m| m.ended = true);
    }

    /// An event that could not be read: skipped (readers ignore what they do not know),
    /// unless it is the upstream's final event, which reached the client as sent: then
    /// the stream has ended, as an error.
    fn unreadable(&mut self, data: &str, e: &serde_json::Error) -> Result<(), ProviderError> {
        let Ok(EventKind { kind }) = serde_json::from_str::<EventKind<'_>>(data) else {
            return Ok(());
        };
        if !is_final(&kind) {
            return Ok(());
        }
        self.mark_ended();
        Err(self.failed.take().unwrap_or_else(|| {
            ProviderError::malformed(format!("the upstream's `{kind}` event is not valid: {e}"))
        }))
    }

    fn handle(&mut self, data: &str, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let event = match serde_json::from_str::<Event<'_>>(data) {
            Ok(event) => event,
            Err(e) => return self.unreadable(data, &e),
        };
        if let Some(seq) = event.sequence_number {
            self.frames.update_meta(|m| m.last_sequence = Some(seq));
        }
        if let Some(err) = &self.failed {
            // After the upstream's `error`: its events go on unread up to its terminal one.
            if is_final(&event.kind) {
                let err = err.clone();
                self.mark_ended();
                return Err(err);
            }
            return Ok(());
        }
        match event.kind.as_ref() {
            "response.created" => {
                let id = event
                    .response
                    .and_then(|r| serde_json::from_str::<ResponseObject>(r.get()).ok())
                    .and_then(|r| r.id);
                self.frames.update_meta(|m| m.response_id = id);
            }
            "response.output_text.delta"
            | "response.reasoning_text.delta"
            | "response.reasoning_summary_text.delta" => {
                let text = event.delta.map(Cow::into_owned).unwrap_or_default();
                if !text.is_empty() {
                    out.push(if event.kind.starts_with("response.output_text") {
                        ChatEvent::TextDelta { text }
                    } else {
                        ChatEvent::ThinkingDelta { text }
                    });
                }
            }
            "response.output_item.added" => self.call_added(&event, out),
            "response.function_call_arguments.delta" | "response.custom_tool_call_input.delta" => {
                self.call_delta(event.output_index, event.delta, out);
            }
            "response.output_item.done" => self.call_done(&event, out),
            "response.completed" | "response.incomplete" => {
                self.end(&event.kind, event.response, out)?;
            }
            "response.failed" => {
                self.mark_ended();
                let response = event
                    .response
                    .and_then(|r| serde_json::from_str::<ResponseObject>(r.get()).ok())
                    .unwrap_or_default();
                return Err(response.failure());
            }
            "error" => {
                // Not the end yet: the upstream's `response.failed` follows.
                let error = json!({"message": event.message, "code": event.code});
                self.failed = Some(failure_of(Some(&error), "the upstream reported an error"));
            }
            _ => {}
        }
        Ok(())
    }

    fn call_added(&mut self, event: &Event<'_>, out: &mut Vec<ChatEvent>) {
        let (Some(item), Some(at)) = (&event.item, event.output_index) else {
            return;
        };
        if !is_call(&item.kind) || self.calls.len() >= MAX_TRACKED_CALLS {
            return;
        }
        let index = u32::try_from(self.calls.len()).unwrap_or(u32::MAX);
        self.calls.push(Call {
            at,
            custom: item.kind == "custom_tool_call",
            streamed: false,
        });
        out.push(ChatEvent::ToolCallStart {
            index,
            id: item
                .call_id
                .clone()
                .or_else(|| item.id.clone())
                .unwrap_or_default(),
            name: item.name.clone().unwrap_or_default(),
        });
    }

    /// A piece of a call's arguments (`function_call_arguments.delta`) or of a custom
    /// call's input (`custom_tool_call_input.delta`, written into the argument `input`):
    /// one fragment, so the upstream's frame goes out now, not when the call is done.
    fn call_delta(
        &mut self,
        at: Option<u64>,
        delta: Option<Cow<'_, str>>,
        out: &mut Vec<ChatEvent>,
    ) {
        let (Some(at), Some(delta)) = (at, delta) else {
            return;
        };
        if delta.is_empty() {
            return;
        }
        let Some((index, call)) = self
            .calls
            .iter_mut()
            .enumerate()
            .rev()
            .find(|(_, c)| c.at == at)
        else {
            return;
        };
        let fragment = if call.custom {
            let mut fragment = String::with_capacity(delta.len() + 12);
            if !call.streamed {
                fragment.push_str("{\"input\":\"");
            }
            push_json_str_contents(&mut fragment, &delta);
            fragment
        } else {
            delta.into_owned()
        };
        call.streamed = true;
        out.push(ChatEvent::ToolCallArgs {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            fragment,
        });
    }

    fn call_done(&mut self, event: &Event<'_>, out: &mut Vec<ChatEvent>) {
        let (Some(item), Some(at)) = (&event.item, event.output_index) else {
            return;
        };
        let Some((index, call)) = self.calls.iter().enumerate().find(|(_, c)| c.at == at) else {
            return;
        };
        let index = u32::try_from(index).unwrap_or(u32::MAX);
        // Streamed arguments are the deltas' (as a client of the upstream assembles them);
        // a custom call's input still needs its closing quote and brace.
        let fragment = match (call.streamed, call.custom) {
            (false, _) => Some(call_arguments(item)),
            (true, true) => Some("\"}".to_owned()),
            (true, false) => None,
        };
        if let Some(fragment) = fragment {
            out.push(ChatEvent::ToolCallArgs { index, fragment });
        }
        out.push(ChatEvent::ToolCallEnd { index });
    }

    /// The upstream's `response.completed` / `.incomplete` (`kind`), already forwarded:
    /// the stream ends here, as an error when its response cannot be read.
    fn end(
        &mut self,
        kind: &str,
        response: Option<&RawValue>,
        out: &mut Vec<ChatEvent>,
    ) -> Result<(), ProviderError> {
        self.mark_ended();
        let raw = response.map(RawValue::get).unwrap_or("{}");
        let parsed: ResponseObject = serde_json::from_str(raw).map_err(|e| {
            ProviderError::malformed(format!(
                "the response of the upstream's `{kind}` event is not valid: {e}"
            ))
        })?;
        self.frames.update_meta(|m| {
            m.final_response = Some(raw.to_owned());
        });
        out.extend(parsed.usage_event());
        out.push(ChatEvent::done(finish_reason(
            parsed.status.as_deref(),
            !self.calls.is_empty(),
        )));
        Ok(())
    }
}

fn finish_reason(status: Option<&str>, called: bool) -> FinishReason {
    match status {
        Some("incomplete") => FinishReason::Length,
        _ if called => FinishReason::ToolCalls,
        _ => FinishReason::Stop,
    }
}

impl EventDecoder for PassThroughDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.framer.push(chunk);
        while !self.ended {
            let Some(next) = self.framer.next_event_ref() else {
                break;
            };
            let event = next.map_err(|e| ProviderError::malformed(e.to_string()))?;
            let (name, data) = (event.event.map(str::to_owned), event.data.to_owned());
            self.forward(name.as_deref(), &data)?;
            self.handle(&data, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if !self.ended {
            if let Some(Ok(event)) = self.framer.finish_ref() {
                let (name, data) = (event.event.map(str::to_owned), event.data.to_owned());
                self.forward(name.as_deref(), &data)?;
                self.handle(&data, out)?;
            }
        }
        if self.ended {
            return Ok(());
        }
        if let Some(err) = self.failed.take() {
            // The upstream's `error` without its `response.failed`: close with our own.
            let meta = self.frames.meta();
            let mut closing = Vec::new();
            encode_failed(
                &err,
                meta.response_id.as_deref(),
                meta.last_sequence,
                &mut closing,
            );
            if self.frames.push(&closing) {
                self.mark_ended();
            }
            return Err(err);
        }
        Err(ProviderError::ended_early(
            "the upstream's Responses stream ended without response.completed",
        ))
    }
}

/// The chat events a whole (non-streamed) response object carries: its output text,
/// reasoning and tool calls, usage and the end. A `failed` response is its error; the
/// caller keeps the bytes themselves.
pub fn decode_whole(body: &[u8]) -> Result<Vec<ChatEvent>, ProviderError> {
    let response: ResponseObject = crate::json_util::from_json_bytes(body).map_err(|e| {
        ProviderError::malformed(format!("the upstream's response is not valid: {e}"))
    })?;
    if response.status.as_deref() == Some("failed") {
        return Err(response.failure());
    }
    let mut out = Vec::new();
    let mut calls = 0u32;
    for item in &response.output {
        match item.kind.as_str() {
            "message" => out.extend(texts(&item.content, "output_text").map(ChatEvent::text)),
            "reasoning" => out.extend(
                texts(&item.summary, "summary_text")
                    .chain(texts(&item.content, "reasoning_text"))
                    .map(ChatEvent::thinking),
            ),
            kind if is_call(kind) => {
                out.push(ChatEvent::ToolCallStart {
                    index: calls,
                    id: item.call_id.clone().unwrap_or_default(),
                    name: item.name.clone().unwrap_or_default(),
                });
                out.push(ChatEvent::ToolCallArgs {
                    index: calls,
                    fragment: call_arguments(item),
                });
                out.push(ChatEvent::ToolCallEnd { index: calls });
                calls += 1;
            }
            _ => {}
        }
    }
    out.extend(response.usage_event());
    out.push(ChatEvent::done(finish_reason(
        response.status.as_deref(),
        calls > 0,
    )));
    Ok(out)
}

fn texts<'a>(parts: &'a [Part], kind: &'a str) -> impl Iterator<Item = String> + 'a {
    parts
        .iter()
        .filter(move |p| p.kind == kind)
        .filter_map(|p| p.text.clone())
        .filter(|t| !t.is_empty())
}

/// The closing events of a passed-through stream that broke off without the upstream's
/// own: `error`, then `response.failed` for the upstream's response id, with sequence
/// numbers continuing the upstream's.
pub fn encode_failure(
    err: &ProviderError,
    response_id: Option<&str>,
    last_sequence: Option<u64>,
    out: &mut Vec<u8>,
) {
    let (code, message) = code_and_message(err);
    let seq = last_sequence.map_or(0, |s| s + 1);
    let error = json!({"type": "error", "code": code, "message": message, "param": null,
        "sequence_number": seq});
    write_event(out, "error", &error);
    encode_failed(err, response_id, Some(seq), out);
}

/// The closing `response.failed` alone, for a stream whose upstream sent its `error`
/// event but ended without its `response.failed`; its sequence number continues the
/// upstream's.
pub fn encode_failed(
    err: &ProviderError,
    response_id: Option<&str>,
    last_sequence: Option<u64>,
    out: &mut Vec<u8>,
) {
    let (code, message) = code_and_message(err);
    let seq = last_sequence.map_or(0, |s| s + 1);
    let failed = json!({"type": "response.failed", "sequence_number": seq, "response": {
        "id": response_id.unwrap_or_default(), "object": "response", "status": "failed",
        "error": {"code": code, "message": message}, "output": []}});
    write_event(out, "response.failed", &failed);
}

/// The error's code and message (the code when it has no message).
fn code_and_message(err: &ProviderError) -> (&'static str, &str) {
    let code = crate::openai::error_code(err);
    let message = if err.message().is_empty() {
        code
    } else {
        err.message()
    };
    (code, message)
}

fn write_event(out: &mut Vec<u8>, name: &str, data: &Value) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.to_string().as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
#[path = "passthrough_tests.rs"]
mod tests;
