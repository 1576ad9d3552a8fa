//! OpenAI `/v1/chat/completions` answers: SSE events and the non-streamed object.

use bytes::Bytes;
use serde_json::{Value, json};

use super::ollama::{oversize_mark, split_mark};
use super::{Rendered, call_id, fnv, parts, split_even};
use crate::script::Script;
use crate::time::unix_now;

/// Fragments per tool call's arguments.
const ARG_PIECES: usize = 3;

fn sse(v: &Value) -> Bytes {
    Bytes::from(format!("data: {v}\n\n"))
}

pub(crate) fn render(model: &str, script: &Script, reasoning_field: &str) -> Rendered {
    let created = unix_now();
    // Truncation intended: the low bits of the clock only make ids differ between runs.
    let id = format!("chatcmpl-{:08x}{:08x}", fnv(&[model]), created as u32);
    let p = parts(&script.reply);
    let chunk = |delta: Value, finish: Value| {
        json!({
            "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_testkit",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]
        })
    };
    // With `include_usage`, every chunk but the usage one carries `"usage": null`.
    let with_null_usage = |v: &Value| {
        let mut v = v.clone();
        v["usage"] = Value::Null;
        sse(&v)
    };

    let mut content = vec![chunk(
        json!({"role": "assistant", "content": ""}),
        Value::Null,
    )];
    for t in &p.thinking {
        let mut delta = serde_json::Map::new();
        delta.insert(reasoning_field.to_owned(), Value::from(*t));
        content.push(chunk(Value::Object(delta), Value::Null));
    }
    for t in &p.text {
        content.push(chunk(json!({"content": t}), Value::Null));
    }

    // Per call: its deltas in order (start, then argument fragments).
    let mut per_call: Vec<Vec<Value>> = Vec::new();
    let mut whole_calls = Vec::new();
    for (i, c) in p.calls.iter().enumerate() {
        let cid = call_id(model, c, i);
        let args = c.arguments.to_string();
        let mut deltas = vec![json!({"tool_calls": [{
            "index": i, "id": cid, "type": "function",
            "function": {"name": c.name, "arguments": ""}
        }]})];
        for frag in split_even(&args, ARG_PIECES) {
            deltas.push(json!({"tool_calls": [{"index": i, "function": {"arguments": frag}}]}));
        }
        per_call.push(deltas);
        whole_calls.push(json!({
            "id": cid, "type": "function", "function": {"name": c.name, "arguments": args}
        }));
    }
    if p.interleave {
        let longest = per_call.iter().map(Vec::len).max().unwrap_or(0);
        for step in 0..longest {
            for deltas in &per_call {
                if let Some(d) = deltas.get(step) {
                    content.push(chunk(d.clone(), Value::Null));
                }
            }
        }
    } else {
        for d in per_call.into_iter().flatten() {
            content.push(chunk(d, Value::Null));
        }
    }

    let default_reason = if p.calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let reason = script.finish_reason.as_deref().unwrap_or(default_reason);
    let (prompt, completion) = script.usage;
    let usage = json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": u64::from(prompt) + u64::from(completion),
    });
    let finish = chunk(json!({}), Value::from(reason));
    let usage_chunk = sse(&json!({
        "id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "system_fingerprint": "fp_testkit", "choices": [], "usage": usage
    }));
    let done = Bytes::from_static(b"data: [DONE]\n\n");

    let text = p.text.concat();
    let mut message = json!({"role": "assistant", "content": text});
    if text.is_empty() && !whole_calls.is_empty() {
        message["content"] = Value::Null;
    }
    if !p.thinking.is_empty() {
        message[reasoning_field] = Value::from(p.thinking.concat());
    }
    if !whole_calls.is_empty() {
        message["tool_calls"] = Value::from(whole_calls);
    }
    let full = Bytes::from(
        json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "system_fingerprint": "fp_testkit",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": reason}],
            "usage": usage
        })
        .to_string(),
    );

    let template = sse(&chunk(json!({"content": oversize_mark()}), Value::Null));
    Rendered {
        content_usage: content.iter().map(with_null_usage).collect(),
        content: content.iter().map(sse).collect(),
        tail: vec![sse(&finish), done.clone()],
        tail_usage: vec![with_null_usage(&finish), usage_chunk, done],
        full,
        stream_all: Bytes::new(),
        stream_all_usage: Bytes::new(),
        text_frame: split_mark(&template),
        malformed: Bytes::from_static(
            b"data: {\"id\":\"chatcmpl-broken\",\"choices\":[{\"delta\":{\"content\":\"unterminated\n\n",
        ),
    }
}

/// The body of an OpenAI error: `{"error":{"message","type","param","code"}}`.
pub(crate) fn error_value(message: &str, kind: &str, code: Option<&str>) -> Value {
    json!({"error": {"message": message, "type": kind, "param": null, "code": code}})
}

/// An OpenAI error as an HTTP body.
pub(crate) fn error_body(message: &str, kind: &str, code: Option<&str>) -> Bytes {
    Bytes::from(error_value(message, kind, code).to_string())
}

/// An OpenAI error as an SSE event (the mid-stream error).
pub(crate) fn error_event(message: &str) -> Bytes {
    sse(&error_value(message, "server_error", None))
}
