//! Anthropic `/v1/messages` answers: typed SSE events and the non-streamed `message`,
//! written by hand after Anthropic's streaming documentation.

use bytes::Bytes;
use serde_json::{Value, json};

use super::ollama::{oversize_mark, split_mark};
use super::{Rendered, fnv, parts, split_even};
use crate::script::{Script, ScriptedCall};

/// Fragments per tool call's `input_json_delta`s.
const ARG_PIECES: usize = 3;

fn event(v: &Value) -> Bytes {
    let name = v["type"].as_str().unwrap_or("unknown");
    Bytes::from(format!("event: {name}\ndata: {v}\n\n"))
}

/// A tool-use id like `toolu_ab12cd34`.
fn tool_use_id(model: &str, call: &ScriptedCall, index: usize) -> String {
    format!(
        "toolu_{:08x}",
        fnv(&[model, &call.name, &index.to_string()])
    )
}

/// A thinking signature the test upstream makes up (opaque to clients).
fn signature(model: &str) -> String {
    format!("sig_{:08x}", fnv(&[model, "thinking"]))
}

/// Anthropic's `stop_reason` for a script's finish reason (OpenAI or Anthropic spelling).
fn stop_reason(script: &Script, calls: bool) -> String {
    match script.finish_reason.as_deref() {
        Some("length") => "max_tokens".to_owned(),
        Some("stop") => "end_turn".to_owned(),
        Some("tool_calls") => "tool_use".to_owned(),
        Some(other) => other.to_owned(),
        None if calls => "tool_use".to_owned(),
        None => "end_turn".to_owned(),
    }
}

/// A verbatim answer: all frames but the last two are content, those two (`message_delta`,
/// `message_stop`) the tail.
fn raw(events: &[String], message: &str) -> Rendered {
    let frames: Vec<Bytes> = events.iter().map(|e| Bytes::from(e.clone())).collect();
    let split = frames.len().saturating_sub(2);
    let (content, tail) = (frames[..split].to_vec(), frames[split..].to_vec());
    let template = event(&json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": oversize_mark()}}));
    Rendered {
        content_usage: content.clone(),
        content,
        tail_usage: tail.clone(),
        tail,
        full: Bytes::from(message.to_owned()),
        stream_all: Bytes::new(),
        stream_all_usage: Bytes::new(),
        text_frame: split_mark(&template),
        malformed: Bytes::from_static(b"event: ping\ndata: {\"type\n\n"),
    }
}

pub(crate) fn render(model: &str, script: &Script) -> Rendered {
    if let crate::script::Reply::AnthropicRaw { events, message } = &script.reply {
        return raw(events, message);
    }
    let id = format!("msg_{:08x}", fnv(&[model, "message"]));
    let p = parts(&script.reply);
    let (input, output) = script.usage;
    let mut content = vec![event(&json!({
        "type": "message_start",
        "message": {"id": id, "type": "message", "role": "assistant", "content": [],
            "model": model, "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": 1}}
    }))];
    let mut whole = Vec::new();
    let mut index = 0u32;
    let mut block = |start: Value, deltas: Vec<Value>, content: &mut Vec<Bytes>| {
        content.push(event(
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        ));
        for d in deltas {
            content.push(event(
                &json!({"type": "content_block_delta", "index": index, "delta": d}),
            ));
        }
        content.push(event(
            &json!({"type": "content_block_stop", "index": index}),
        ));
        index += 1;
    };
    if !p.thinking.is_empty() {
        let mut deltas: Vec<Value> = p
            .thinking
            .iter()
            .map(|t| json!({"type": "thinking_delta", "thinking": t}))
            .collect();
        deltas.push(json!({"type": "signature_delta", "signature": signature(model)}));
        block(
            json!({"type": "thinking", "thinking": ""}),
            deltas,
            &mut content,
        );
        whole.push(json!({"type": "thinking", "thinking": p.thinking.concat(), "signature": signature(model)}));
    }
    if !p.text.is_empty() {
        let deltas = p
            .text
            .iter()
            .map(|t| json!({"type": "text_delta", "text": t}))
            .collect();
        block(json!({"type": "text", "text": ""}), deltas, &mut content);
        whole.push(json!({"type": "text", "text": p.text.concat()}));
    }
    for (i, c) in p.calls.iter().enumerate() {
        let tid = tool_use_id(model, c, i);
        let args = c.arguments.to_string();
        let deltas = split_even(&args, ARG_PIECES)
            .into_iter()
            .map(|frag| json!({"type": "input_json_delta", "partial_json": frag}))
            .collect();
        let start = json!({"type": "tool_use", "id": tid, "name": c.name, "input": {}});
        block(start, deltas, &mut content);
        whole.push(json!({"type": "tool_use", "id": tid, "name": c.name, "input": c.arguments}));
    }
    let reason = stop_reason(script, !p.calls.is_empty());
    let tail = vec![
        event(&json!({"type": "message_delta",
            "delta": {"stop_reason": reason, "stop_sequence": null},
            "usage": {"output_tokens": output}})),
        event(&json!({"type": "message_stop"})),
    ];
    let full = Bytes::from(
        json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": whole, "stop_reason": reason, "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output}})
        .to_string(),
    );
    let template = event(&json!({"type": "content_block_delta", "index": 0,
        "delta": {"type": "text_delta", "text": oversize_mark()}}));
    Rendered {
        content_usage: content.clone(),
        content,
        tail_usage: tail.clone(),
        tail,
        full,
        stream_all: Bytes::new(),
        stream_all_usage: Bytes::new(),
        text_frame: split_mark(&template),
        malformed: Bytes::from_static(
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"unterminated\n\n",
        ),
    }
}

/// Anthropic's `error.type` for an HTTP status (and, for 400, the message).
pub(crate) fn error_type(status: u16) -> &'static str {
    match status {
        400 | 422 => "invalid_request_error",
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        529 | 503 => "overloaded_error",
        _ => "api_error",
    }
}

/// The body of an Anthropic error: `{"type":"error","error":{"type","message"}}`.
pub(crate) fn error_body(status: u16, message: &str) -> Bytes {
    Bytes::from(
        json!({"type": "error", "error": {"type": error_type(status), "message": message}})
            .to_string(),
    )
}

/// An Anthropic `error` event (the mid-stream error).
pub(crate) fn error_event(message: &str) -> Bytes {
    event(&json!({"type": "error", "error": {"type": "api_error", "message": message}}))
}

/// `POST /v1/messages/count_tokens`: about four bytes a token over the request body.
pub(crate) fn count_tokens(body: &[u8]) -> Bytes {
    let tokens = (body.len() / 4).max(1);
    Bytes::from(json!({"input_tokens": tokens}).to_string())
}
