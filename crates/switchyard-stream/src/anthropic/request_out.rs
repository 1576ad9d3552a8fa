//! Encoding a [`ChatRequest`] as an Anthropic `/v1/messages` body: translated from the
//! shared representation, or the Anthropic client's own body with only the model, `stream`
//! and `max_tokens` replaced.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use switchyard_core::{ApiFamily, ChatRequest, ContentPart, Image, Message, Role, ToolChoice};

use super::request::{RESERVED, budget_for};
use crate::request_error::{Extra, RequestError};

/// How [`encode_request`] shapes the body for one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AnthropicRequestOptions<'a> {
    /// The upstream's model id (sent as `model`).
    pub model: &'a str,
    /// Ask for a streamed answer.
    pub stream: bool,
    /// `max_tokens` when the request has no output limit (Anthropic requires one).
    pub default_max_tokens: u32,
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    max_tokens: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    system: Option<String>,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<OutToolChoice<'a>>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop_sequences: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<OutThinking>,
    stream: bool,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: Vec<OutBlock<'a>>,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutBlock<'a> {
    Text {
        text: &'a str,
    },
    Image {
        source: OutImageSource<'a>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: &'a serde_json::Map<String, Value>,
    },
    ToolResult {
        tool_use_id: &'a str,
        content: Vec<OutBlock<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
    },
    Thinking {
        thinking: &'a str,
        signature: &'a str,
    },
    RedactedThinking {
        data: &'a str,
    },
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutImageSource<'a> {
    Base64 { media_type: &'a str, data: &'a str },
    Url { url: &'a str },
}

#[derive(Serialize)]
struct OutTool<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    input_schema: &'a Value,
}

#[derive(Serialize)]
struct OutToolChoice<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Serialize)]
struct OutThinking {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    budget_tokens: Option<u32>,
}

/// Encodes `req` as an Anthropic `/v1/messages` body into `out` (appended).
///
/// When the request came from an Anthropic client with its body kept
/// ([`ChatRequest::native_body`]), that body is sent with only `model`, `stream` and (when
/// absent) `max_tokens` replaced: every other member — `cache_control` marks, thinking
/// signatures, citations, block types Switchyard does not model — goes out byte for byte.
///
/// Otherwise the body is translated: system messages are lowered into `system`, tool results
/// become `tool_result` blocks of a user turn, consecutive turns of one role are merged (as
/// Anthropic requires alternation), empty text is left out, thinking is sent back only with
/// its signature (Anthropic refuses unsigned thinking), `max_tokens` is always written
/// (`opts.default_max_tokens` when the request has none), [`switchyard_core::Think`] becomes
/// `thinking` with a budget below `max_tokens` (none when that leaves less than 1024 tokens).
/// `response_format`, `seed` and penalties have no Anthropic field and are not sent. A tool
/// result without a call id is [`RequestError::InvalidField`].
///
/// What Anthropic refuses is not sent: text blocks of only whitespace; a `temperature` above
/// 1 (OpenAI allows 2) becomes 1; thinking is turned off when a tool is forced
/// (`tool_choice` `any` or `tool`) or when the last assistant turn made tool calls without
/// a thinking block first (a client that keeps no signed thinking, such as an OpenAI
/// client, cannot give one back); with thinking on, `temperature` and `top_k` are left
/// out and `top_p` is kept only from 0.95 up.
pub fn encode_request(
    req: &ChatRequest,
    opts: &AnthropicRequestOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let from_anthropic = req.meta.client_api == Some(ApiFamily::Anthropic);
    if let (true, Some(native)) = (from_anthropic, req.native_body.as_deref()) {
        return encode_native(native, opts, out);
    }
    let mut system = Vec::new();
    let mut messages: Vec<OutMessage<'_>> = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        if m.role == Role::System {
            system.push(m.text_content());
            continue;
        }
        let (role, blocks) = encode_message(i, m)?;
        if blocks.is_empty() {
            continue;
        }
        match messages.last_mut() {
            Some(last) if last.role == role => last.content.extend(blocks),
            _ => messages.push(OutMessage {
                role,
                content: blocks,
            }),
        }
    }
    let max_tokens = req.options.max_tokens.unwrap_or(opts.default_max_tokens);
    let thinking = req.think.map(|think| match budget_for(think) {
        None => OutThinking {
            kind: "disabled",
            budget_tokens: None,
        },
        Some(budget) => {
            let budget = budget.min(max_tokens.saturating_sub(1));
            if budget < 1024 {
                OutThinking {
                    kind: "disabled",
                    budget_tokens: None,
                }
            } else {
                OutThinking {
                    kind: "enabled",
                    budget_tokens: Some(budget),
                }
            }
        }
    });
    let tools: Vec<OutTool<'_>> = req
        .tools
        .iter()
        .map(|t| OutTool {
            name: &t.name,
            description: t.description.as_deref(),
            input_schema: &t.parameters,
        })
        .collect();
    let tool_choice = tool_choice(req, tools.is_empty());
    let forced_tool = tool_choice
        .as_ref()
        .is_some_and(|c| c.kind == "any" || c.kind == "tool");
    let thinking = match thinking {
        Some(t) if t.kind == "enabled" && (forced_tool || unthought_tool_turn(&messages)) => {
            Some(OutThinking {
                kind: "disabled",
                budget_tokens: None,
            })
        }
        other => other,
    };
    let thinking_on = thinking.as_ref().is_some_and(|t| t.kind == "enabled");
    let o = &req.options;
    let (temperature, top_p, top_k) = if thinking_on {
        (None, o.top_p.filter(|p| *p >= 0.95), None)
    } else {
        (o.temperature.map(|t| t.min(1.0)), o.top_p, o.top_k)
    };
    let body = OutRequest {
        model: opts.model,
        max_tokens,
        system: (!system.is_empty()).then(|| system.join("\n\n")),
        messages,
        tools,
        tool_choice,
        stop_sequences: &o.stop,
        temperature,
        top_p,
        top_k,
        thinking,
        stream: opts.stream,
        extra: Extra {
            map: from_anthropic.then_some(&req.extra),
            reserved: RESERVED,
        },
    };
    serde_json::to_writer(out, &body).map_err(|e| RequestError::encode(&e))
}

/// Whether the last assistant turn made tool calls without starting with a thinking block:
/// Anthropic then refuses a request with thinking on.
fn unthought_tool_turn(messages: &[OutMessage<'_>]) -> bool {
    messages
        .iter()
        .rev()
        .find(|m| m.role == "assistant")
        .is_some_and(|m| {
            m.content
                .iter()
                .any(|b| matches!(b, OutBlock::ToolUse { .. }))
                && !matches!(
                    m.content.first(),
                    Some(OutBlock::Thinking { .. } | OutBlock::RedactedThinking { .. })
                )
        })
}

fn tool_choice<'a>(req: &'a ChatRequest, no_tools: bool) -> Option<OutToolChoice<'a>> {
    if no_tools {
        return None;
    }
    let disable = req.parallel_tool_calls.map(|p| !p).filter(|d| *d);
    let (kind, name) = match req.tool_choice.as_ref() {
        None if disable.is_none() => return None,
        None | Some(ToolChoice::Auto) => ("auto", None),
        Some(ToolChoice::None) => ("none", None),
        Some(ToolChoice::Required) => ("any", None),
        Some(ToolChoice::Function(name)) => ("tool", Some(name.as_str())),
    };
    Some(OutToolChoice {
        kind,
        name,
        disable_parallel_tool_use: if kind == "none" { None } else { disable },
    })
}

fn parts(content: &[ContentPart]) -> Vec<OutBlock<'_>> {
    content
        .iter()
        .filter_map(|p| match p {
            ContentPart::Text(text) if text.trim().is_empty() => None,
            ContentPart::Text(text) => Some(OutBlock::Text { text }),
            ContentPart::Image(Image::Base64 { media_type, data }) => Some(OutBlock::Image {
                source: OutImageSource::Base64 {
                    media_type: media_type.as_deref().unwrap_or("image/png"),
                    data,
                },
            }),
            ContentPart::Image(Image::Url { url }) => Some(OutBlock::Image {
                source: OutImageSource::Url { url },
            }),
        })
        .collect()
}

fn encode_message(
    i: usize,
    m: &Message,
) -> Result<(&'static str, Vec<OutBlock<'_>>), RequestError> {
    match m.role {
        Role::Tool => {
            let Some(id) = m.tool_call_id.as_deref() else {
                return Err(RequestError::field(
                    format!("messages[{i}].tool_call_id"),
                    "a tool result must name the call it answers (no earlier call to pair it with)",
                ));
            };
            let block = OutBlock::ToolResult {
                tool_use_id: id,
                content: parts(&m.content),
                is_error: m.extras.is_error,
            };
            Ok(("user", vec![block]))
        }
        Role::User | Role::System => Ok(("user", parts(&m.content))),
        Role::Assistant => {
            let mut blocks = Vec::with_capacity(m.content.len() + m.tool_calls.len() + 1);
            if let (Some(thinking), Some(signature)) = (
                m.thinking.as_deref(),
                m.extras.thinking_signature.as_deref(),
            ) {
                blocks.push(OutBlock::Thinking {
                    thinking,
                    signature,
                });
            }
            for data in &m.extras.redacted_thinking {
                blocks.push(OutBlock::RedactedThinking { data });
            }
            blocks.extend(parts(&m.content));
            for c in &m.tool_calls {
                blocks.push(OutBlock::ToolUse {
                    id: &c.id,
                    name: &c.name,
                    input: &c.arguments,
                });
            }
            Ok(("assistant", blocks))
        }
    }
}

/// The client's own body with `model`, `stream` and a missing `max_tokens` replaced; every
/// other member's bytes are copied unchanged.
fn encode_native(
    native: &str,
    opts: &AnthropicRequestOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    let mut members: BTreeMap<String, &RawValue> = serde_json::from_str(native)
        .map_err(|e| RequestError::field(".", format!("the kept body is not an object: {e}")))?;
    let raw = |text: String| RawValue::from_string(text).map_err(|e| RequestError::encode(&e));
    let model = raw(serde_json::to_string(opts.model).map_err(|e| RequestError::encode(&e))?)?;
    let default_max = raw(opts.default_max_tokens.to_string())?;
    let stream = raw(opts.stream.to_string())?;
    members.insert("model".to_owned(), &model);
    members.insert("stream".to_owned(), &stream);
    members
        .entry("max_tokens".to_owned())
        .or_insert(&default_max);
    serde_json::to_writer(out, &members).map_err(|e| RequestError::encode(&e))
}
