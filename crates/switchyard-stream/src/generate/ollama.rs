//! Ollama's `POST /api/generate`.
//!
//! The done line's `done_reason` (`stop`, `length`, `load`, `unload`), counts and
//! durations travel as [`ChatEvent::Done`] and [`ChatEvent::Usage`] (durations in
//! [`Usage::timings`], as on `/api/chat`). Its `context` (the token list a client sends
//! back to continue) means something only to an Ollama client, so it travels verbatim as
//! an [`ChatEvent::Opaque`] event holding `{"context":[...]}` ([`context_event`]), just
//! before `Usage`; the encoders here write it back on the final line, others drop it.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;
use switchyard_core::{
    ApiFamily, ChatEvent, FinishReason, GenerateRequest, KeepAlive, OpaquePart, ProviderError,
    Timings, Usage,
};

use super::Completion;
use crate::RequestError;
use crate::decoder::EventDecoder;
use crate::ndjson::{FrameError, LineFramer};
use crate::ollama::done_reason;
use crate::ollama::request::{
    OutThink, WireOptions, WireThink, decode_options, decode_think, encode_options, encode_think,
};
use crate::request_error::{decode_body, nullable};
use crate::sticky::StickyError;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default, deserialize_with = "nullable")]
    prompt: String,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    raw: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    images: Vec<String>,
    #[serde(default)]
    format: Option<Value>,
    #[serde(default)]
    think: Option<WireThink>,
    #[serde(default)]
    context: Option<Vec<i64>>,
    #[serde(default)]
    options: Option<WireOptions>,
    #[serde(default)]
    keep_alive: Option<KeepAlive>,
    #[serde(default)]
    stream: Option<bool>,
}

/// Decodes an `/api/generate` body (`stream` absent means true). `options` the gateway
/// does not model go to [`GenerateRequest::extra_options`], as on `/api/chat`.
pub fn decode_request(body: &[u8]) -> Result<GenerateRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
    // Options the gateway does not model are kept for an Ollama upstream, as on /api/chat.
    let (options, extra_options) = wire.options.map(decode_options).unwrap_or_default();
    let mut req = GenerateRequest {
        model: wire.model,
        prompt: wire.prompt,
        suffix: wire.suffix.filter(|s| !s.is_empty()),
        system: wire.system,
        template: wire.template,
        raw: wire.raw,
        images: wire.images,
        format: wire.format.filter(|f| !f.is_null()),
        think: decode_think(wire.think)?,
        context: wire.context,
        options,
        extra_options,
        keep_alive: wire.keep_alive,
        stream: wire.stream.unwrap_or(true),
        ..GenerateRequest::default()
    };
    req.meta.client_api = Some(ApiFamily::Ollama);
    Ok(req)
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    prompt: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    raw: Option<bool>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    images: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<&'a Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<OutThink>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a [i64]>,
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    options: serde_json::Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<&'a KeepAlive>,
    stream: bool,
}

/// Encodes `req` as an `/api/generate` body for `model`, always streamed; `options` is the
/// sampling options merged over [`GenerateRequest::extra_options`].
pub fn encode_request(req: &GenerateRequest, model: &str) -> Vec<u8> {
    serde_json::to_vec(&OutRequest {
        model,
        prompt: &req.prompt,
        suffix: req.suffix.as_deref(),
        system: req.system.as_deref(),
        template: req.template.as_deref(),
        raw: req.raw,
        images: &req.images,
        format: req.format.as_ref(),
        think: req.think.map(encode_think),
        context: req.context.as_deref(),
        options: encode_options(
            &req.options,
            Some(&Value::Object(req.extra_options.clone())),
        ),
        keep_alive: req.keep_alive.as_ref(),
        stream: true,
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct WireLine<'a> {
    #[serde(default, deserialize_with = "nullable")]
    response: String,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default)]
    done: bool,
    #[serde(default)]
    done_reason: Option<String>,
    #[serde(default)]
    prompt_eval_count: Option<u32>,
    #[serde(default)]
    eval_count: Option<u32>,
    #[serde(default)]
    total_duration: Option<u64>,
    #[serde(default)]
    load_duration: Option<u64>,
    #[serde(default)]
    prompt_eval_duration: Option<u64>,
    #[serde(default)]
    eval_duration: Option<u64>,
    #[serde(borrow, default)]
    context: Option<&'a RawValue>,
    #[serde(default)]
    error: Option<Value>,
}

/// The [`ChatEvent::Opaque`] event that carries an `/api/generate` `context` (the JSON
/// array as the upstream sent it) to an Ollama client.
pub fn context_event(context: &RawValue) -> ChatEvent {
    let mut json = String::with_capacity(12 + context.get().len());
    json.push_str("{\"context\":");
    json.push_str(context.get());
    json.push('}');
    ChatEvent::Opaque {
        index: 0,
        part: OpaquePart::Delta,
        json,
    }
}

/// The `context` array an event made by [`context_event`] carries, as the upstream wrote
/// it; `None` for any other event.
pub fn context_of(event: &ChatEvent) -> Option<&RawValue> {
    #[derive(Deserialize)]
    struct Mark<'a> {
        #[serde(borrow)]
        context: &'a RawValue,
    }
    let ChatEvent::Opaque { json, .. } = event else {
        return None;
    };
    let mark: Mark<'_> = serde_json::from_str(json).ok()?;
    mark.context.get().starts_with('[').then_some(mark.context)
}

/// Decodes an `/api/generate` NDJSON stream into text, thinking, usage and done events
/// (and the `context` of the done line, see the module docs). A last line without a
/// newline (Ollama answers a load or unload with one bare object) is decoded by `finish`.
#[derive(Debug, Default)]
pub struct GenerateDecoder {
    framer: LineFramer,
    done: bool,
    /// The error that stopped it; every later call returns it again.
    failed: StickyError,
}

impl GenerateDecoder {
    fn line(&mut self, line: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if self.done {
            return Ok(());
        }
        let wire: WireLine<'_> = crate::json_util::from_json_bytes(line).map_err(|e| {
            ProviderError::malformed(format!("an /api/generate line is not valid: {e}"))
        })?;
        if let Some(err) = wire.error.filter(|e| !e.is_null()) {
            return Err(switchyard_core::classify_stream_error(
                &switchyard_core::ErrorBody::parse(
                    serde_json::json!({ "error": err }).to_string().as_bytes(),
                ),
            ));
        }
        if let Some(t) = wire.thinking.filter(|t| !t.is_empty()) {
            out.push(ChatEvent::thinking(t));
        }
        if !wire.response.is_empty() {
            out.push(ChatEvent::text(wire.response));
        }
        if wire.done {
            self.done = true;
            if let Some(context) = wire.context.filter(|c| c.get() != "null") {
                if !context.get().starts_with('[') {
                    return Err(ProviderError::malformed(
                        "the `context` of an /api/generate done line is not a list",
                    ));
                }
                out.push(context_event(context));
            }
            let any_timing = wire.total_duration.is_some()
                || wire.load_duration.is_some()
                || wire.prompt_eval_duration.is_some()
                || wire.eval_duration.is_some();
            out.push(ChatEvent::Usage(Usage {
                prompt_tokens: wire.prompt_eval_count.unwrap_or(0),
                completion_tokens: wire.eval_count.unwrap_or(0),
                timings: any_timing.then(|| Timings {
                    total_ns: wire.total_duration.unwrap_or(0),
                    load_ns: wire.load_duration.unwrap_or(0),
                    prompt_eval_ns: wire.prompt_eval_duration.unwrap_or(0),
                    eval_ns: wire.eval_duration.unwrap_or(0),
                }),
                ..Usage::default()
            }));
            let reason = wire.done_reason.as_deref().unwrap_or("stop");
            out.push(ChatEvent::done(FinishReason::parse(reason)));
        }
        Ok(())
    }

    /// The last line, when it has no newline, then the check that `done` came.
    fn finish_lines(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let mut framer = std::mem::take(&mut self.framer);
        let mut result = Ok(());
        while let Some(line) = framer.finish() {
            result = line
                .map_err(|e| ProviderError::malformed(e.to_string()))
                .and_then(|line| self.line(line, out));
            if result.is_err() {
                break;
            }
        }
        self.framer = framer;
        result?;
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::ended_early(
                "the /api/generate stream ended without `done`",
            ))
        }
    }
}

impl EventDecoder for GenerateDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        let mut framer = std::mem::take(&mut self.framer);
        let result = framer.push_lines(chunk, |line| self.line(line, out).map_err(Wrap));
        self.framer = framer;
        self.failed.keep(result.map_err(|Wrap(e)| e))
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        let result = self.finish_lines(out);
        self.failed.keep(result)
    }
}

/// A [`ProviderError`] through the framer's callback.
struct Wrap(ProviderError);

impl From<FrameError> for Wrap {
    fn from(e: FrameError) -> Self {
        Wrap(ProviderError::malformed(e.to_string()))
    }
}

#[derive(Serialize)]
struct OutLine<'a> {
    model: &'a str,
    created_at: &'a str,
    response: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    done: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    done_reason: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    context: Option<&'a RawValue>,
    #[serde(flatten)]
    counts: Option<Counts>,
}

/// The counts and durations of the final line, in Ollama's order (zeros when unknown, as
/// on `/api/chat`).
#[derive(Serialize)]
struct Counts {
    total_duration: u64,
    load_duration: u64,
    prompt_eval_count: u32,
    prompt_eval_duration: u64,
    eval_count: u32,
    eval_duration: u64,
}

impl Counts {
    fn of(usage: Option<&Usage>) -> Self {
        let usage = usage.copied().unwrap_or_default();
        let t = usage.timings.unwrap_or_default();
        Counts {
            total_duration: t.total_ns,
            load_duration: t.load_ns,
            prompt_eval_count: usage.prompt_tokens,
            prompt_eval_duration: t.prompt_eval_ns,
            eval_count: usage.completion_tokens,
            eval_duration: t.eval_ns,
        }
    }
}

/// Encodes an answer's events as `/api/generate` NDJSON lines, remembering the `Usage`
/// and `context` it has seen for the final line.
///
/// ```
/// use switchyard_core::{ChatEvent, FinishReason};
/// use switchyard_stream::generate::ollama::GenerateEncoder;
///
/// let mut enc = GenerateEncoder::new("llama3.2", "2025-01-01T00:00:00Z");
/// let mut out = Vec::new();
/// enc.encode(&ChatEvent::done(FinishReason::Other("load".into())), &mut out);
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains(r#""done":true,"done_reason":"load""#), "{text}");
/// ```
#[derive(Debug, Clone)]
pub struct GenerateEncoder {
    model: String,
    created_at: String,
    usage: Option<Usage>,
    /// The `context` array as JSON text.
    context: Option<String>,
}

impl GenerateEncoder {
    /// An encoder for an answer from `model`, stamped with `created_at` (RFC 3339 text).
    pub fn new(model: impl Into<String>, created_at: impl Into<String>) -> Self {
        Self {
            model: model.into(),
            created_at: created_at.into(),
            usage: None,
            context: None,
        }
    }

    /// Appends the line for one event, if it makes one (text, thinking, `Done`).
    pub fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        match event {
            ChatEvent::Usage(u) => self.usage = Some(*u),
            ChatEvent::Opaque { .. } => {
                if let Some(c) = context_of(event) {
                    self.context = Some(c.get().to_owned());
                }
            }
            _ => write_event(
                event,
                self.usage.as_ref(),
                self.context.as_deref(),
                &self.model,
                &self.created_at,
                out,
            ),
        }
    }
}

/// Appends the `/api/generate` line for one event (nothing for events it does not carry;
/// `Done` writes the last line with the usage seen before it, and no `context`: see
/// [`GenerateEncoder`], which keeps it).
pub fn encode_event(
    event: &ChatEvent,
    usage: Option<&Usage>,
    model: &str,
    created_at: &str,
    out: &mut Vec<u8>,
) {
    write_event(event, usage, None, model, created_at, out);
}

fn write_event(
    event: &ChatEvent,
    usage: Option<&Usage>,
    context: Option<&str>,
    model: &str,
    created_at: &str,
    out: &mut Vec<u8>,
) {
    let mut line = OutLine {
        model,
        created_at,
        response: "",
        thinking: None,
        done: false,
        done_reason: None,
        context: None,
        counts: None,
    };
    match event {
        ChatEvent::TextDelta { text } => line.response = text,
        ChatEvent::ThinkingDelta { text } => line.thinking = Some(text),
        ChatEvent::Done { finish_reason } => {
            line.done = true;
            line.done_reason = Some(done_reason(finish_reason));
            line.context = context.and_then(|c| serde_json::from_str(c).ok());
            line.counts = Some(Counts::of(usage));
        }
        _ => return,
    }
    let _ = serde_json::to_writer(&mut *out, &line);
    out.push(b'\n');
}

/// Appends the whole (non-streamed) `/api/generate` answer.
pub fn encode_response(answer: &Completion, model: &str, created_at: &str, out: &mut Vec<u8>) {
    let line = OutLine {
        model,
        created_at,
        response: &answer.text,
        thinking: (!answer.thinking.is_empty()).then_some(answer.thinking.as_str()),
        done: true,
        done_reason: Some(answer.finish.as_ref().map_or("stop", done_reason)),
        context: answer
            .context
            .as_deref()
            .and_then(|c| serde_json::from_str(c).ok()),
        counts: Some(Counts::of(answer.usage.as_ref())),
    };
    let _ = serde_json::to_writer(out, &line);
}
