//! Pass-through blocks ([`ChatEvent::Opaque`]): written verbatim into a stream, and rebuilt
//! in order into a whole message (text blocks with their citations, server-tool blocks with
//! their input, and placed thinking blocks with their signatures).

use std::io::Write as _;

use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchyard_core::{ChatResponse, OpaqueMark, OpaquePart};

use super::{AnthropicStreamEncoder, WholeMessage, delta_raw, stop};
use crate::anthropic::MAX_CONTENT_BLOCKS;

/// The `type` of a block or delta.
#[derive(Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
}

/// The `type` of a JSON object, `None` when `json` is not JSON.
fn kind_of(json: &str) -> Option<String> {
    serde_json::from_str::<Kind<'_>>(json)
        .ok()
        .map(|k| k.kind.map(|c| c.into_owned()).unwrap_or_default())
}

impl AnthropicStreamEncoder {
    /// Writes one pass-through event.
    pub(super) fn opaque(
        &mut self,
        upstream: u32,
        part: OpaquePart,
        json: &str,
        out: &mut Vec<u8>,
    ) {
        match part {
            OpaquePart::Start => {
                let Some(kind) = kind_of(json) else {
                    self.fail("a pass-through content block is not JSON", out);
                    return;
                };
                if self.open_opaque.len() >= MAX_CONTENT_BLOCKS {
                    self.fail("too many open pass-through content blocks", out);
                    return;
                }
                self.close_run(out);
                let index = self.next_block;
                self.next_block = self.next_block.saturating_add(1);
                let _ = write!(
                    out,
                    "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":{json}}}\n\n"
                );
                if kind == "text" {
                    self.open_run = Some((index, false));
                } else {
                    self.open_opaque.push((upstream, index));
                }
            }
            OpaquePart::Delta => {
                if serde_json::from_str::<&RawValue>(json).is_err() {
                    self.fail("a pass-through delta is not JSON", out);
                    return;
                }
                let index = match self.open_opaque.iter().find(|(u, _)| *u == upstream) {
                    Some(&(_, index)) => index,
                    None => match self.open_run {
                        Some((index, _)) => index,
                        None => self.run(false, out),
                    },
                };
                delta_raw(out, index, json);
            }
            OpaquePart::Stop => match self.open_opaque.iter().position(|(u, _)| *u == upstream) {
                Some(pos) => {
                    let (_, index) = self.open_opaque.remove(pos);
                    stop(out, index);
                }
                None => self.close_run(out),
            },
        }
    }
}

/// A text block being rebuilt.
#[derive(Default)]
struct TextBlock {
    /// The upstream's start block, when it came verbatim (a cited block).
    start: Option<Map<String, Value>>,
    text: String,
    citations: Vec<Value>,
}

impl TextBlock {
    fn flush(&mut self, out: &mut Vec<Value>) {
        let block = std::mem::take(self);
        if block.text.is_empty() && block.start.is_none() && block.citations.is_empty() {
            return;
        }
        let mut map = block.start.unwrap_or_default();
        map.insert("type".to_owned(), Value::from("text"));
        map.insert("text".to_owned(), Value::from(block.text));
        if !block.citations.is_empty() {
            let mut all = match map.remove("citations") {
                Some(Value::Array(a)) => a,
                _ => Vec::new(),
            };
            all.extend(block.citations);
            map.insert("citations".to_owned(), Value::Array(all));
        }
        out.push(Value::Object(map));
    }
}

/// A server-tool (or other pass-through) block being rebuilt: the start block and its
/// `input_json_delta` fragments.
struct OpenBlock {
    upstream: u32,
    block: Value,
    partial_json: String,
}

impl OpenBlock {
    fn finish(mut self) -> Value {
        if !self.partial_json.is_empty() {
            if let (Ok(input), Value::Object(map)) = (
                serde_json::from_str::<Value>(&self.partial_json),
                &mut self.block,
            ) {
                map.insert("input".to_owned(), input);
            }
        }
        self.block
    }
}

/// The text of the answer and its pass-through blocks (and placed thinking and
/// redacted-thinking blocks) as Anthropic content blocks, in the upstream's order.
pub(crate) fn rebuild(content: &str, marks: &[OpaqueMark]) -> Vec<Value> {
    let mut out = Vec::new();
    let mut text = TextBlock::default();
    let mut open: Vec<OpenBlock> = Vec::new();
    let mut cursor = 0usize;
    for mark in marks {
        let at = mark.text_at.clamp(cursor, content.len());
        if let Some(piece) = content.get(cursor..at) {
            text.text.push_str(piece);
            cursor = at;
        }
        let value = serde_json::from_str::<Value>(&mark.json).unwrap_or(Value::Null);
        // The latest open block of that index (a placed thinking block's marks, index
        // `OpaqueMark::PLACED`, are a start and its stop).
        let pos = open.iter().rposition(|b| b.upstream == mark.index);
        match (mark.part, pos) {
            (OpaquePart::Start, _) => {
                text.flush(&mut out);
                match value {
                    Value::Object(map) if map.get("type") == Some(&Value::from("text")) => {
                        text.start = Some(map);
                    }
                    block => open.push(OpenBlock {
                        upstream: mark.index,
                        block,
                        partial_json: String::new(),
                    }),
                }
            }
            (OpaquePart::Delta, Some(pos)) => {
                if let Some(fragment) = value.get("partial_json").and_then(Value::as_str) {
                    open[pos].partial_json.push_str(fragment);
                }
            }
            (OpaquePart::Delta, None) => {
                if let Some(citation) = value.get("citation") {
                    text.citations.push(citation.clone());
                }
            }
            (OpaquePart::Stop, Some(pos)) => out.push(open.remove(pos).finish()),
            (OpaquePart::Stop, None) => text.flush(&mut out),
        }
    }
    if let Some(rest) = content.get(cursor..) {
        text.text.push_str(rest);
    }
    text.flush(&mut out);
    out.extend(open.into_iter().map(OpenBlock::finish));
    out
}

/// Writes `msg` with its text block replaced by the rebuilt text and pass-through blocks.
pub(super) fn write_whole(msg: &WholeMessage<'_>, resp: &ChatResponse, out: &mut Vec<u8>) {
    let Ok(mut value) = serde_json::to_value(msg) else {
        return;
    };
    if let Some(Value::Array(blocks)) = value.get_mut("content") {
        let at = blocks
            .iter()
            .position(|b| b.get("type") == Some(&Value::from("text")))
            .or_else(|| {
                blocks
                    .iter()
                    .position(|b| b.get("type") == Some(&Value::from("tool_use")))
            })
            .unwrap_or(blocks.len());
        blocks.retain(|b| b.get("type") != Some(&Value::from("text")));
        let rebuilt = rebuild(&resp.content, &resp.extras.opaque);
        let at = at.min(blocks.len());
        blocks.splice(at..at, rebuilt);
    }
    let _ = serde_json::to_writer(out, &value);
}
