//! Scripts rendered once into wire bytes, per API.
//!
//! Rendering builds JSON with `serde_json::json!`; it runs once per (model, API, script) and
//! the bytes are replayed for every request, so nothing JSON-related happens per request.

pub(crate) mod anthropic;
pub(crate) mod catalog;
pub(crate) mod ollama;
pub(crate) mod openai;
pub(crate) mod responses;

use bytes::{Bytes, BytesMut};

use crate::script::{Reply, Script, ScriptedCall, TextCallFormat};

/// Which protocol a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Api {
    /// Ollama native (`/api/*`).
    Ollama,
    /// OpenAI-compatible (`/v1/*`).
    OpenAi,
    /// Anthropic Messages (`/v1/messages*`, and other `/v1/*` paths asked with an
    /// `anthropic-version` header).
    Anthropic,
    /// OpenAI Responses (`/v1/responses`; errors in OpenAI's shape).
    Responses,
}

/// Everything needed to answer a chat request from one script, as bytes.
#[derive(Debug)]
pub(crate) struct Rendered {
    /// Streamed frames before the final part (role, text, thinking, tool call chunks).
    pub(crate) content: Vec<Bytes>,
    /// The same frames as sent with a usage chunk to come (OpenAI: each with
    /// `"usage": null`; same as `content` for Ollama).
    pub(crate) content_usage: Vec<Bytes>,
    /// Final frames without usage (Ollama: the `done` line; OpenAI: finish chunk, `[DONE]`).
    pub(crate) tail: Vec<Bytes>,
    /// Final frames with a usage chunk (OpenAI `include_usage`; same as `tail` for Ollama).
    pub(crate) tail_usage: Vec<Bytes>,
    /// The non-streamed body.
    pub(crate) full: Bytes,
    /// `content` + `tail` concatenated (fast mode).
    pub(crate) stream_all: Bytes,
    /// `content` + `tail_usage` concatenated (fast mode).
    pub(crate) stream_all_usage: Bytes,
    /// A valid text chunk, used as a template for oversized lines: `(prefix, suffix)`
    /// around the content.
    pub(crate) text_frame: (Bytes, Bytes),
    /// A malformed line.
    pub(crate) malformed: Bytes,
}

impl Rendered {
    pub(crate) fn new(api: Api, model: &str, script: &Script, reasoning_field: &str) -> Self {
        let mut r = match api {
            Api::Ollama => ollama::render(model, script),
            Api::OpenAi => openai::render(model, script, reasoning_field),
            Api::Anthropic => anthropic::render(model, script),
            Api::Responses => responses::render(model, script),
        };
        r.stream_all = concat(r.content.iter().chain(&r.tail));
        r.stream_all_usage = concat(r.content_usage.iter().chain(&r.tail_usage));
        r
    }

    /// The frames of a streamed answer, in order.
    pub(crate) fn frames(&self, include_usage: bool) -> Vec<Bytes> {
        if include_usage {
            self.content_usage
                .iter()
                .chain(&self.tail_usage)
                .cloned()
                .collect()
        } else {
            self.content.iter().chain(&self.tail).cloned().collect()
        }
    }

    /// One valid text chunk whose content is `n` bytes of `x`.
    pub(crate) fn oversized(&self, n: usize) -> Bytes {
        let (pre, post) = &self.text_frame;
        let mut b = BytesMut::with_capacity(pre.len() + n + post.len());
        b.extend_from_slice(pre);
        b.resize(pre.len() + n, b'x');
        b.extend_from_slice(post);
        b.freeze()
    }
}

fn concat<'a>(parts: impl Iterator<Item = &'a Bytes>) -> Bytes {
    let mut b = BytesMut::new();
    for p in parts {
        b.extend_from_slice(p);
    }
    b.freeze()
}

/// A deterministic 32-bit FNV-1a hash, for ids.
pub(crate) fn fnv(parts: &[&str]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for p in parts {
        for b in p.bytes().chain(std::iter::once(0)) {
            h ^= u32::from(b);
            h = h.wrapping_mul(0x0100_0193);
        }
    }
    h
}

/// A tool call id like `call_ab12cd34`.
pub(crate) fn call_id(model: &str, call: &ScriptedCall, index: usize) -> String {
    format!("call_{:08x}", fnv(&[model, &call.name, &index.to_string()]))
}

/// Splits `s` into `parts` pieces of about equal length at char boundaries (fewer if short).
pub(crate) fn split_even(s: &str, parts: usize) -> Vec<&str> {
    let parts = parts.max(1);
    let size = s.len().div_ceil(parts).max(1);
    split_every(s, size)
}

/// Splits `s` into pieces of about `size` bytes at char boundaries.
pub(crate) fn split_every(s: &str, size: usize) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < s.len() {
        let mut end = (start + size.max(1)).min(s.len());
        while !s.is_char_boundary(end) {
            end += 1;
        }
        out.push(&s[start..end]);
        start = end;
    }
    out
}

/// The text a model would write for these calls in `format`.
pub(crate) fn calls_as_text(format: TextCallFormat, calls: &[ScriptedCall]) -> String {
    // Written by hand so that `name` comes first, as models write it.
    let obj = |c: &ScriptedCall, key: &str| {
        format!(
            "{{\"name\":{},\"{key}\":{}}}",
            serde_json::Value::from(c.name.as_str()),
            c.arguments
        )
    };
    match format {
        TextCallFormat::Hermes => calls
            .iter()
            .map(|c| format!("<tool_call>\n{}\n</tool_call>", obj(c, "arguments")))
            .collect::<Vec<_>>()
            .join("\n"),
        TextCallFormat::LlamaPythonTag => format!(
            "<|python_tag|>{}",
            calls
                .iter()
                .map(|c| obj(c, "parameters"))
                .collect::<Vec<_>>()
                .join("; ")
        ),
        TextCallFormat::MistralList => format!(
            "[TOOL_CALLS][{}]",
            calls
                .iter()
                .map(|c| obj(c, "arguments"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        TextCallFormat::FencedJson => calls
            .iter()
            .map(|c| format!("```json\n{}\n```", obj(c, "arguments")))
            .collect::<Vec<_>>()
            .join("\n"),
        TextCallFormat::BareJson => calls
            .iter()
            .map(|c| obj(c, "parameters"))
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

/// The parts of a reply in a protocol-neutral form.
pub(crate) struct Parts<'a> {
    pub(crate) thinking: Vec<&'a str>,
    pub(crate) text: Vec<String>,
    pub(crate) calls: &'a [ScriptedCall],
    pub(crate) interleave: bool,
}

pub(crate) fn parts(reply: &Reply) -> Parts<'_> {
    let strs = |v: &[String]| v.to_vec();
    match reply {
        Reply::Text(t) => Parts {
            thinking: vec![],
            text: strs(t),
            calls: &[],
            interleave: false,
        },
        Reply::ThinkingThenText { thinking, text } => Parts {
            thinking: thinking.iter().map(String::as_str).collect(),
            text: strs(text),
            calls: &[],
            interleave: false,
        },
        Reply::ToolCalls(c) => Parts {
            thinking: vec![],
            text: vec![],
            calls: c,
            interleave: true,
        },
        Reply::ToolCallsSequential(c) => Parts {
            thinking: vec![],
            text: vec![],
            calls: c,
            interleave: false,
        },
        Reply::TextThenToolCalls { text, calls } => Parts {
            thinking: vec![],
            text: strs(text),
            calls,
            interleave: true,
        },
        Reply::AnthropicRaw { .. } => Parts {
            thinking: vec![],
            text: vec![],
            calls: &[],
            interleave: false,
        },
        Reply::ToolCallsAsText { format, calls } => {
            let text = calls_as_text(*format, calls);
            Parts {
                thinking: vec![],
                text: split_every(&text, 7)
                    .into_iter()
                    .map(str::to_owned)
                    .collect(),
                calls: &[],
                interleave: false,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_even_keeps_everything_and_char_boundaries() {
        let s = r#"{"city":"Tōkyō","days":3}"#;
        let pieces = split_even(s, 3);
        assert!(pieces.len() >= 3);
        assert_eq!(pieces.concat(), s);
        assert!(split_even("", 3).is_empty());
        assert_eq!(split_even("ab", 3), vec!["a", "b"]);
    }

    #[test]
    fn hermes_text_shape() {
        let calls = vec![ScriptedCall::new("f", serde_json::json!({"a": 1}))];
        assert_eq!(
            calls_as_text(TextCallFormat::Hermes, &calls),
            "<tool_call>\n{\"name\":\"f\",\"arguments\":{\"a\":1}}\n</tool_call>"
        );
        assert_eq!(
            calls_as_text(TextCallFormat::LlamaPythonTag, &calls),
            "<|python_tag|>{\"name\":\"f\",\"parameters\":{\"a\":1}}"
        );
    }
}
