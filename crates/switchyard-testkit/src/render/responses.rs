//! OpenAI Responses `/v1/responses` answers, as a server that serves the API itself
//! (OpenAI, Ollama >= 0.13.3, vLLM) sends them: typed SSE events (`event:` and `data:`
//! lines, each with `type` and `sequence_number`) ending in `response.completed` (or
//! `response.incomplete` for a `length` finish), and the whole response object.

use bytes::Bytes;
use serde_json::{Value, json};

use super::ollama::{oversize_mark, split_mark};
use super::{Rendered, call_id, fnv, parts, split_even};
use crate::ScriptedCall;
use crate::script::Script;
use crate::time::unix_now;

/// Fragments per tool call's arguments.
const ARG_PIECES: usize = 3;

/// Numbers the events of one answer.
struct Events {
    seq: u64,
    frames: Vec<Bytes>,
}

impl Events {
    fn push(&mut self, kind: &str, mut data: Value) {
        data["type"] = Value::from(kind);
        data["sequence_number"] = Value::from(self.seq);
        self.seq += 1;
        self.frames
            .push(Bytes::from(format!("event: {kind}\ndata: {data}\n\n")));
    }
}

/// One output item: its `added` form, the events in between, its `done` form.
fn item_events(
    ev: &mut Events,
    index: usize,
    added: &Value,
    inner: &[(&str, Value)],
    done: &Value,
) {
    ev.push(
        "response.output_item.added",
        json!({"output_index": index, "item": added}),
    );
    for (kind, data) in inner {
        let mut data = data.clone();
        data["output_index"] = Value::from(index);
        ev.push(kind, data);
    }
    ev.push(
        "response.output_item.done",
        json!({"output_index": index, "item": done}),
    );
}

pub(crate) fn render(model: &str, script: &Script) -> Rendered {
    let created = unix_now();
    let tag = format!("{:08x}{:08x}", fnv(&[model]), created as u32);
    let id = format!("resp_{tag}");
    let p = parts(&script.reply);
    let head = |status: &str, output: Value| {
        json!({"id": id, "object": "response", "created_at": created, "status": status,
               "model": model, "output": output, "usage": null})
    };
    let mut ev = Events {
        seq: 0,
        frames: Vec::new(),
    };
    ev.push(
        "response.created",
        json!({"response": head("in_progress", json!([]))}),
    );
    ev.push(
        "response.in_progress",
        json!({"response": head("in_progress", json!([]))}),
    );
    let mut output = Vec::new();
    if !p.thinking.is_empty() {
        reasoning_item(&mut ev, &mut output, &tag, &p.thinking);
    }
    if !p.text.is_empty() {
        message_item(&mut ev, &mut output, &tag, &p.text);
    }
    call_items(&mut ev, &mut output, &tag, model, p.calls);
    let content = std::mem::take(&mut ev.frames);

    let (prompt, completion) = script.usage;
    let incomplete = script.finish_reason.as_deref() == Some("length");
    let mut response = head(
        if incomplete {
            "incomplete"
        } else {
            "completed"
        },
        Value::from(output),
    );
    response["usage"] = json!({"input_tokens": prompt, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": completion, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u64::from(prompt) + u64::from(completion)});
    if incomplete {
        response["incomplete_details"] = json!({"reason": "max_output_tokens"});
    }
    let last = if incomplete {
        "response.incomplete"
    } else {
        "response.completed"
    };
    ev.push(last, json!({"response": response}));
    let tail = std::mem::take(&mut ev.frames);

    let template = Bytes::from(format!(
        "event: response.output_text.delta\ndata: {}\n\n",
        json!({"type": "response.output_text.delta", "sequence_number": 0, "item_id": "msg_x",
               "output_index": 0, "content_index": 0, "delta": oversize_mark()})
    ));
    Rendered {
        content_usage: content.clone(),
        content,
        tail_usage: tail.clone(),
        tail,
        full: Bytes::from(response.to_string()),
        stream_all: Bytes::new(),
        stream_all_usage: Bytes::new(),
        text_frame: split_mark(&template),
        malformed: Bytes::from_static(
            b"event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"unterminated\n\n",
        ),
    }
}

/// The answer of `/v1/responses/compact` for `model`: one encrypted compaction item.
pub(crate) fn compaction(model: &str) -> Bytes {
    let tag = fnv(&[model, "compact"]);
    Bytes::from(
        json!({"id": format!("cmp_{tag:08x}"), "object": "response.compaction",
               "created_at": unix_now(),
               "output": [{"type": "compaction", "id": format!("cmpi_{tag:08x}"),
                           "encrypted_content": format!("enc_compaction_{tag:08x}")}],
               "usage": {"input_tokens": 12, "output_tokens": 5, "total_tokens": 17}})
        .to_string(),
    )
}

/// A mid-stream `error` event.
pub(crate) fn error_event(message: &str) -> Bytes {
    let data = json!({"type": "error", "code": "server_error", "message": message, "param": null,
                      "sequence_number": 0});
    Bytes::from(format!("event: error\ndata: {data}\n\n"))
}

/// The reasoning item of a scripted answer: its events, and the done item in `output`.
fn reasoning_item(ev: &mut Events, output: &mut Vec<Value>, tag: &str, thinking: &[&str]) {
    let rid = format!("rs_{tag}");
    let text = thinking.concat();
    let done = json!({"id": rid, "type": "reasoning", "encrypted_content": format!("enc_{tag}"),
        "summary": [{"type": "summary_text", "text": text}]});
    let mut inner = Vec::new();
    for t in thinking {
        inner.push((
            "response.reasoning_summary_text.delta",
            json!({"item_id": rid, "summary_index": 0, "delta": t}),
        ));
    }
    item_events(
        ev,
        output.len(),
        &json!({"id": rid, "type": "reasoning", "summary": []}),
        &inner,
        &done,
    );
    output.push(done);
}

/// The assistant message item of a scripted answer: its events, and the done item in `output`.
fn message_item(ev: &mut Events, output: &mut Vec<Value>, tag: &str, texts: &[String]) {
    let mid = format!("msg_{tag}");
    let text = texts.concat();
    let part = |t: &str| json!({"type": "output_text", "text": t, "annotations": []});
    let done = json!({"id": mid, "type": "message", "role": "assistant", "status": "completed",
        "content": [part(&text)]});
    let at = json!({"item_id": mid, "content_index": 0});
    let with = |extra: Value| {
        let mut v = at.clone();
        if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(extra.clone());
        }
        v
    };
    let mut inner = vec![(
        "response.content_part.added",
        with(json!({"part": part("")})),
    )];
    for t in texts {
        inner.push(("response.output_text.delta", with(json!({"delta": t}))));
    }
    inner.push(("response.output_text.done", with(json!({"text": text}))));
    inner.push((
        "response.content_part.done",
        with(json!({"part": part(&text)})),
    ));
    let added = json!({"id": mid, "type": "message", "role": "assistant",
        "status": "in_progress", "content": []});
    item_events(ev, output.len(), &added, &inner, &done);
    output.push(done);
}

/// The function-call items of a scripted answer: their events, and the done items in `output`.
fn call_items(
    ev: &mut Events,
    output: &mut Vec<Value>,
    tag: &str,
    model: &str,
    calls: &[ScriptedCall],
) {
    for (i, c) in calls.iter().enumerate() {
        let fid = format!("fc_{tag}_{i}");
        let args = c.arguments.to_string();
        let call = |arguments: &str, status: &str| {
            json!({"id": fid, "type": "function_call", "call_id": call_id(model, c, i),
                   "name": c.name, "arguments": arguments, "status": status})
        };
        let mut inner: Vec<(&str, Value)> = split_even(&args, ARG_PIECES)
            .into_iter()
            .map(|frag| {
                (
                    "response.function_call_arguments.delta",
                    json!({"item_id": fid, "delta": frag}),
                )
            })
            .collect();
        inner.push((
            "response.function_call_arguments.done",
            json!({"item_id": fid, "arguments": args}),
        ));
        let done = call(&args, "completed");
        item_events(ev, output.len(), &call("", "in_progress"), &inner, &done);
        output.push(done);
    }
}
