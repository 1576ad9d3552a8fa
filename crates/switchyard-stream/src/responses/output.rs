//! The output items of a response (message, reasoning, function and custom tool calls),
//! their content parts and the usage object, as JSON text: what the item events and the
//! response object repeat, written with [`ObjectWriter`] (sorted keys).

use switchyard_core::Usage;

use super::frame::ObjectWriter;

/// A text item: the answer (`message`) or the model's reasoning (`reasoning`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ItemKind {
    Message,
    Reasoning,
}

/// The event names and part shape of one kind of text item.
pub(super) struct Channel {
    pub(super) delta: &'static str,
    pub(super) text_done: &'static str,
    pub(super) part_added: &'static str,
    pub(super) part_done: &'static str,
    /// Whether the part index is `summary_index` (else `content_index`).
    pub(super) summary_index: bool,
    pub(super) part_type: &'static str,
}

impl Channel {
    /// Answer text; reasoning as a summary (when the request asked for one) or as text.
    pub(super) fn of(kind: ItemKind, summary: bool) -> Channel {
        match (kind, summary) {
            (ItemKind::Message, _) => Channel {
                delta: "response.output_text.delta",
                text_done: "response.output_text.done",
                part_added: "response.content_part.added",
                part_done: "response.content_part.done",
                summary_index: false,
                part_type: "output_text",
            },
            (ItemKind::Reasoning, true) => Channel {
                delta: "response.reasoning_summary_text.delta",
                text_done: "response.reasoning_summary_text.done",
                part_added: "response.reasoning_summary_part.added",
                part_done: "response.reasoning_summary_part.done",
                summary_index: true,
                part_type: "summary_text",
            },
            (ItemKind::Reasoning, false) => Channel {
                delta: "response.reasoning_text.delta",
                text_done: "response.reasoning_text.done",
                part_added: "response.content_part.added",
                part_done: "response.content_part.done",
                summary_index: false,
                part_type: "reasoning_text",
            },
        }
    }

    /// Writes the part index member that sorts before `item_id` (`content_index`).
    pub(super) fn index_before(&self, data: &mut ObjectWriter<'_>) {
        if !self.summary_index {
            data.num("content_index", 0u32);
        }
    }

    /// Writes the part index member that sorts after `sequence_number` (`summary_index`).
    pub(super) fn index_after(&self, data: &mut ObjectWriter<'_>) {
        if self.summary_index {
            data.num("summary_index", 0u32);
        }
    }

    /// Writes the part holding `text`.
    pub(super) fn write_part(&self, text: &str, out: &mut Vec<u8>) {
        let mut part = ObjectWriter::open(out);
        if self.part_type == "output_text" {
            part.raw("annotations", b"[]");
        }
        part.str("text", text).name("type", self.part_type);
        part.close();
    }
}

/// A finished output item, kept for the response object.
#[derive(Debug)]
pub(super) enum OutputItem {
    /// A `message` or `reasoning` item with its whole text.
    Text {
        kind: ItemKind,
        /// Reasoning as a summary part (else a content part).
        summary: bool,
        id: String,
        text: String,
    },
    /// A `function_call` (or, `custom`, a `custom_tool_call`) with its whole arguments (or
    /// input).
    Call {
        custom: bool,
        id: String,
        call_id: String,
        name: String,
        body: String,
    },
}

impl OutputItem {
    /// Appends the item's JSON (status `completed`).
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        match self {
            OutputItem::Text {
                kind,
                summary,
                id,
                text,
            } => write_text_item(*kind, *summary, id, Some(text), out),
            OutputItem::Call {
                custom,
                id,
                call_id,
                name,
                body,
            } => write_call_item(*custom, id, call_id, name, Some(body), out),
        }
    }
}

/// Appends a text item: in progress and without parts when `text` is `None` (as
/// `output_item.added` announces it), completed with its one part otherwise.
pub(super) fn write_text_item(
    kind: ItemKind,
    summary: bool,
    id: &str,
    text: Option<&str>,
    out: &mut Vec<u8>,
) {
    let channel = Channel::of(kind, summary);
    let parts = |out: &mut Vec<u8>| {
        out.push(b'[');
        if let Some(text) = text {
            channel.write_part(text, out);
        }
        out.push(b']');
    };
    let mut item = ObjectWriter::open(out);
    match (kind, summary) {
        (ItemKind::Message, _) => {
            let status = if text.is_some() {
                "completed"
            } else {
                "in_progress"
            };
            item.with("content", parts)
                .str("id", id)
                .name("role", "assistant")
                .name("status", status)
                .name("type", "message");
        }
        (ItemKind::Reasoning, true) => {
            item.str("id", id)
                .with("summary", parts)
                .name("type", "reasoning");
        }
        (ItemKind::Reasoning, false) => {
            item.with("content", parts)
                .str("id", id)
                .raw("summary", b"[]")
                .name("type", "reasoning");
        }
    }
    item.close();
}

/// Appends a `function_call` (`custom`: a `custom_tool_call`) item: in progress with empty
/// arguments when `body` is `None`, completed with its arguments (input) otherwise.
pub(super) fn write_call_item(
    custom: bool,
    id: &str,
    call_id: &str,
    name: &str,
    body: Option<&str>,
    out: &mut Vec<u8>,
) {
    let mut item = ObjectWriter::open(out);
    if !custom {
        item.str("arguments", body.unwrap_or(""));
    }
    item.str("call_id", call_id).str("id", id);
    if custom {
        item.str("input", body.unwrap_or(""));
    }
    let status = if body.is_some() {
        "completed"
    } else {
        "in_progress"
    };
    let kind = if custom {
        "custom_tool_call"
    } else {
        "function_call"
    };
    item.str("name", name)
        .name("status", status)
        .name("type", kind);
    item.close();
}

/// Appends OpenAI's usage object of a response: `input_tokens` counts every prompt token,
/// cached ones included (an Anthropic upstream counts those apart), and
/// `input_tokens_details.cached_tokens` the ones read from a prompt cache.
pub(super) fn write_usage(usage: &Usage, out: &mut Vec<u8>) {
    let mut object = ObjectWriter::open(out);
    object
        .num("input_tokens", usage.all_prompt_tokens())
        .with("input_tokens_details", |out| {
            let mut details = ObjectWriter::open(out);
            details.num("cached_tokens", usage.cache_read_tokens);
            details.close();
        })
        .num("output_tokens", usage.completion_tokens)
        .raw("output_tokens_details", b"{\"reasoning_tokens\":0}")
        .num("total_tokens", usage.all_tokens());
    object.close();
}
