//! Ollama native `/api/chat` answers: NDJSON lines and the non-streamed object.

use bytes::Bytes;
use serde_json::{Value, json};

use super::{Parts, Rendered, call_id, parts};
use crate::script::Script;
use crate::time::rfc3339_now;

const OVERSIZE_MARK: &str = "@@testkit-oversize@@";

fn line(v: &Value) -> Bytes {
    let mut s = v.to_string();
    s.push('\n');
    Bytes::from(s)
}

fn tool_calls(model: &str, p: &Parts<'_>) -> Vec<Value> {
    p.calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({
                "id": call_id(model, c, i),
                "function": {"index": i, "name": c.name, "arguments": c.arguments}
            })
        })
        .collect()
}

pub(crate) fn render(model: &str, script: &Script) -> Rendered {
    let created = rfc3339_now();
    let p = parts(&script.reply);
    let chunk = |message: Value| {
        line(&json!({"model": model, "created_at": created, "message": message, "done": false}))
    };

    let mut content = Vec::new();
    for t in &p.thinking {
        content.push(chunk(
            json!({"role": "assistant", "content": "", "thinking": t}),
        ));
    }
    for t in &p.text {
        content.push(chunk(json!({"role": "assistant", "content": t})));
    }
    let calls = tool_calls(model, &p);
    for c in &calls {
        content.push(chunk(
            json!({"role": "assistant", "content": "", "tool_calls": [c]}),
        ));
    }

    let reason = script.finish_reason.as_deref().unwrap_or("stop");
    let (prompt, completion) = script.usage;
    let mut done = json!({
        "model": model,
        "created_at": created,
        "message": {"role": "assistant", "content": ""},
        "done": true,
        "done_reason": reason,
        "total_duration": 250_000_000u64,
        "load_duration": 10_000_000u64,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 40_000_000u64,
        "eval_count": completion,
        "eval_duration": 200_000_000u64,
    });
    let tail = vec![line(&done)];

    let mut message = json!({"role": "assistant", "content": p.text.concat()});
    if !p.thinking.is_empty() {
        message["thinking"] = Value::from(p.thinking.concat());
    }
    if !calls.is_empty() {
        message["tool_calls"] = Value::from(calls);
    }
    done["message"] = message;
    let full = Bytes::from(done.to_string());

    let template = chunk(json!({"role": "assistant", "content": OVERSIZE_MARK}));
    let text_frame = split_mark(&template);

    Rendered {
        content_usage: content.clone(),
        content,
        tail_usage: tail.clone(),
        tail,
        full,
        stream_all: Bytes::new(),
        stream_all_usage: Bytes::new(),
        text_frame,
        malformed: Bytes::from_static(
            b"{\"model\":\"testkit\",\"message\":{\"role\":\"assistant\",\"content\":\"unterminated\n",
        ),
    }
}

/// Splits a rendered frame around the oversize mark.
pub(super) fn split_mark(frame: &Bytes) -> (Bytes, Bytes) {
    let s = frame.as_ref();
    let mark = OVERSIZE_MARK.as_bytes();
    match s.windows(mark.len()).position(|w| w == mark) {
        Some(i) => (frame.slice(..i), frame.slice(i + mark.len()..)),
        None => (frame.clone(), Bytes::new()),
    }
}

pub(super) fn oversize_mark() -> &'static str {
    OVERSIZE_MARK
}

/// `{"error":"…"}` followed by a newline (the mid-stream error line).
pub(crate) fn error_line(message: &str) -> Bytes {
    line(&json!({ "error": message }))
}

/// `{"error":"…"}` (an HTTP error body).
pub(crate) fn error_body(message: &str) -> Bytes {
    Bytes::from(json!({ "error": message }).to_string())
}
