//! Ollama's `POST /api/generate`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{
    ApiFamily, ChatEvent, FinishReason, GenerateRequest, KeepAlive, ProviderError, Usage,
};

use super::Completion;
use crate::RequestError;
use crate::decoder::EventDecoder;
use crate::ndjson::{FrameError, LineFramer};
use crate::ollama::request::{
    OutThink, WireOptions, WireThink, decode_options, decode_think, encode_options, encode_think,
};
use crate::request_error::decode_body;
use crate::sticky::StickyError;

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default)]
    prompt: String,
    #[serde(default)]
    suffix: Option<String>,
    #[serde(default)]
    system: Option<String>,
    #[serde(default)]
    template: Option<String>,
    #[serde(default)]
    raw: Option<bool>,
    #[serde(default)]
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

/// Decodes an `/api/generate` body (`stream` absent means true).
pub fn decode_request(body: &[u8]) -> Result<GenerateRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
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
        options: wire
            .options
            .map(|o| decode_options(o).0)
            .unwrap_or_default(),
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

/// Encodes `req` as an `/api/generate` body for `model`, always streamed.
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
        options: encode_options(&req.options, None),
        keep_alive: req.keep_alive.as_ref(),
        stream: true,
    })
    .unwrap_or_default()
}

#[derive(Deserialize)]
struct WireLine {
    #[serde(default)]
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
    error: Option<Value>,
}

/// Decodes an `/api/generate` NDJSON stream into text, thinking, usage and done events.
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
        let wire: WireLine = serde_json::from_slice(line).map_err(|e| {
            ProviderError::malformed(format!("an /api/generate line is not valid: {e}"))
        })?;
        if let Some(err) = wire.error {
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
            out.push(ChatEvent::Usage(Usage {
                prompt_tokens: wire.prompt_eval_count.unwrap_or(0),
                completion_tokens: wire.eval_count.unwrap_or(0),
                ..Usage::default()
            }));
            let reason = wire.done_reason.as_deref().unwrap_or("stop");
            out.push(ChatEvent::done(FinishReason::parse(reason)));
        }
        Ok(())
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

    fn finish(&mut self, _out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        self.failed.check()?;
        if self.done {
            Ok(())
        } else {
            Err(ProviderError::ended_early(
                "the /api/generate stream ended without `done`",
            ))
        }
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
    prompt_eval_count: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    eval_count: Option<u32>,
}

/// Appends the `/api/generate` line for one event (nothing for events it does not carry;
/// `Done` writes the last line with the usage seen before it).
pub fn encode_event(
    event: &ChatEvent,
    usage: Option<&Usage>,
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
        prompt_eval_count: None,
        eval_count: None,
    };
    match event {
        ChatEvent::TextDelta { text } => line.response = text,
        ChatEvent::ThinkingDelta { text } => line.thinking = Some(text),
        ChatEvent::Done { finish_reason } => {
            line.done = true;
            line.done_reason = Some(match finish_reason {
                FinishReason::Length => "length",
                _ => "stop",
            });
            line.prompt_eval_count = usage.map(|u| u.prompt_tokens);
            line.eval_count = usage.map(|u| u.completion_tokens);
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
        done_reason: Some(match answer.finish {
            Some(FinishReason::Length) => "length",
            _ => "stop",
        }),
        prompt_eval_count: answer.usage.as_ref().map(|u| u.prompt_tokens),
        eval_count: answer.usage.as_ref().map(|u| u.completion_tokens),
    };
    let _ = serde_json::to_writer(out, &line);
}
