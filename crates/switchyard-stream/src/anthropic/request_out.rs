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
        input: switchyard_core::ArgumentsObject<'a>,
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
/// signatures, citations, block types Switchyard does not model — goes out byte for byte,
/// but for assistant thinking without a signature (from a local or OpenAI target's earlier
/// answer), which is left out as Anthropic refuses it. Otherwise a request holding a part
/// only the client's own body can carry ([`ChatRequest::untranslated`]) is
/// [`RequestError::Unsupported`].
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
        return encode_native(req, native, opts, out);
    }
    if let Some((path, what)) = req.untranslated() {
        return Err(RequestError::unsupported(
            path,
            format!("{what} reaches Anthropic only in an Anthropic client's own request body"),
        ));
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
            // Anthropic refuses bytes labelled with the wrong type (a JPEG sent as PNG is a
            // 400), so a missing type (Ollama's bare base64) is read from the bytes.
            ContentPart::Image(img @ Image::Base64 { data, .. }) => Some(OutBlock::Image {
                source: OutImageSource::Base64 {
                    media_type: img.media_type_or_sniffed().unwrap_or("image/png"),
                    data,
                },
            }),
            ContentPart::Image(Image::Url { url, .. }) => Some(OutBlock::Image {
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
                    input: c.arguments_object(),
                });
            }
            Ok(("assistant", blocks))
        }
    }
}

/// The client's own body with `model`, `stream` and a missing `max_tokens` replaced; every
/// other member's bytes are copied unchanged.
///
/// But for thinking Anthropic did not sign: assistant `thinking` blocks without a non-empty
/// `signature` (the client got them from a local or OpenAI target's answer) are left out, as
/// Anthropic refuses them; an assistant turn left empty is left out too, and when the last
/// assistant turn then makes tool calls without starting with a thinking block, `thinking`
/// is turned off (Anthropic refuses that turn with thinking on). Only a body whose decoded
/// request has assistant thinking at all is looked into.
fn encode_native(
    req: &ChatRequest,
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
    let thinking_off = raw(r#"{"type":"disabled"}"#.to_owned())?;
    let has_thinking = req
        .messages
        .iter()
        .any(|m| m.role == Role::Assistant && m.thinking.is_some());
    let signed_only = match members.get("messages") {
        Some(messages) if has_thinking => without_unsigned_thinking(messages.get())?,
        _ => None,
    };
    if let Some(kept) = &signed_only {
        members.insert("messages".to_owned(), &kept.messages);
        if kept.unthought_tool_turn && thinking_is_on(members.get("thinking").copied()) {
            members.insert("thinking".to_owned(), &thinking_off);
        }
    }
    members.insert("model".to_owned(), &model);
    members.insert("stream".to_owned(), &stream);
    members
        .entry("max_tokens".to_owned())
        .or_insert(&default_max);
    serde_json::to_writer(out, &members).map_err(|e| RequestError::encode(&e))
}

/// A kept body's `messages` with unsigned thinking left out.
struct SignedOnly {
    messages: Box<RawValue>,
    /// The last assistant turn makes tool calls without starting with a thinking block.
    unthought_tool_turn: bool,
}

/// The head of a content block: its type and, for thinking, its signature.
#[derive(serde::Deserialize)]
struct BlockHead<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<std::borrow::Cow<'a, str>>,
    #[serde(default)]
    signature: Option<Value>,
}

impl BlockHead<'_> {
    fn of(block: &RawValue) -> Option<BlockHead<'_>> {
        serde_json::from_str(block.get()).ok()
    }

    fn kind(&self) -> &str {
        self.kind.as_deref().unwrap_or_default()
    }

    /// The block types the thinking rules look at, as static names (`""` for the others).
    fn kind_static(&self) -> &'static str {
        match self.kind() {
            "tool_use" => "tool_use",
            "thinking" => "thinking",
            "redacted_thinking" => "redacted_thinking",
            _ => "",
        }
    }

    /// A `thinking` block Anthropic would refuse: no signature, or an empty one.
    fn unsigned_thinking(&self) -> bool {
        self.kind() == "thinking"
            && self
                .signature
                .as_ref()
                .and_then(Value::as_str)
                .is_none_or(str::is_empty)
    }
}

/// One message of a rewritten `messages`: as the client wrote it, or an assistant turn with
/// some blocks left out (its other members as written).
#[derive(Serialize)]
#[serde(untagged)]
enum KeptMessage<'a> {
    Same(&'a RawValue),
    Filtered {
        #[serde(flatten)]
        members: BTreeMap<&'a str, &'a RawValue>,
        content: Vec<&'a RawValue>,
    },
}

/// `messages` (the kept body's JSON) without assistant thinking blocks that lack a
/// signature; `None` when there are none (or `messages` is not a list of objects: Anthropic
/// answers that itself).
fn without_unsigned_thinking(messages: &str) -> Result<Option<SignedOnly>, RequestError> {
    #[derive(serde::Deserialize)]
    struct Head<'a> {
        #[serde(borrow, default)]
        role: Option<std::borrow::Cow<'a, str>>,
    }
    let Ok(list) = serde_json::from_str::<Vec<&RawValue>>(messages) else {
        return Ok(None);
    };
    let mut kept = Vec::with_capacity(list.len());
    let mut changed = false;
    // Whether the last assistant turn kept (after filtering) has tool calls without a
    // thinking block first.
    let mut unthought_tool_turn = false;
    for message in list {
        let assistant = serde_json::from_str::<Head<'_>>(message.get())
            .is_ok_and(|h| h.role.as_deref() == Some("assistant"));
        if !assistant {
            kept.push(KeptMessage::Same(message));
            continue;
        }
        let members = serde_json::from_str::<BTreeMap<&str, &RawValue>>(message.get()).ok();
        let blocks = members
            .as_ref()
            .and_then(|m| m.get("content"))
            .and_then(|c| serde_json::from_str::<Vec<&RawValue>>(c.get()).ok());
        let (Some(mut members), Some(blocks)) = (members, blocks) else {
            // Text content: no thinking, no tool calls.
            unthought_tool_turn = false;
            kept.push(KeptMessage::Same(message));
            continue;
        };
        let signed: Vec<(&RawValue, &str)> = blocks
            .iter()
            .filter_map(|block| match BlockHead::of(block) {
                Some(head) if head.unsigned_thinking() => None,
                Some(head) => Some((*block, head.kind_static())),
                None => Some((*block, "")),
            })
            .collect();
        if signed.is_empty() && !blocks.is_empty() {
            // A turn of nothing but unsigned thinking: left out whole.
            changed = true;
            continue;
        }
        unthought_tool_turn = signed.iter().any(|(_, kind)| *kind == "tool_use")
            && !matches!(signed.first(), Some((_, "thinking" | "redacted_thinking")));
        if signed.len() == blocks.len() {
            kept.push(KeptMessage::Same(message));
            continue;
        }
        changed = true;
        members.remove("content");
        kept.push(KeptMessage::Filtered {
            members,
            content: signed.into_iter().map(|(block, _)| block).collect(),
        });
    }
    if !changed {
        return Ok(None);
    }
    let text = serde_json::to_string(&kept).map_err(|e| RequestError::encode(&e))?;
    let messages = RawValue::from_string(text).map_err(|e| RequestError::encode(&e))?;
    Ok(Some(SignedOnly {
        messages,
        unthought_tool_turn,
    }))
}

/// Whether a kept body's `thinking` member turns thinking on (any type but `disabled`).
fn thinking_is_on(thinking: Option<&RawValue>) -> bool {
    #[derive(serde::Deserialize)]
    struct Thinking<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    thinking
        .and_then(|t| serde_json::from_str::<Thinking<'_>>(t.get()).ok())
        .is_some_and(|t| t.kind != "disabled")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::anthropic::request::decode_request;

    const OPTS: AnthropicRequestOptions<'static> = AnthropicRequestOptions {
        model: "claude-x",
        stream: false,
        default_max_tokens: 1024,
    };

    fn encode(body: &str) -> Result<Value, RequestError> {
        let req = decode_request(body.as_bytes())?;
        let mut out = Vec::new();
        encode_request(&req, &OPTS, &mut out)?;
        Ok(serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn signed_thinking_goes_out_byte_for_byte() {
        let body = r#"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"sig"},{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"more"}]}"#;
        let req = decode_request(body.as_bytes()).unwrap();
        let mut out = Vec::new();
        encode_request(&req, &OPTS, &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains(r#""messages":[{"role":"user","content":"hi"},{"role":"assistant","content":[{"type":"thinking","thinking":"t","signature":"sig"},{"type":"text","text":"a","cache_control":{"type":"ephemeral"}}]},{"role":"user","content":"more"}]"#),
            "{text}"
        );
    }

    #[test]
    fn unsigned_thinking_is_left_out_of_the_kept_body() {
        let v = encode(
            r#"{"model":"m","max_tokens":64,"thinking":{"type":"enabled","budget_tokens":2048},
                "messages":[{"role":"user","content":"hi"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"local"},{"type":"text","text":"a"}]},
                {"role":"user","content":"more"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"x","signature":""}]},
                {"role":"user","content":"again"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"s","signature":"sig"},{"type":"text","text":"b"}]},
                {"role":"user","content":"last"}]}"#,
        )
        .unwrap();
        let messages = v["messages"].as_array().unwrap();
        // The turn of only unsigned thinking is gone; the others keep their other blocks.
        assert_eq!(messages.len(), 6, "{v}");
        assert_eq!(
            messages[1]["content"],
            serde_json::json!([{"type": "text", "text": "a"}])
        );
        assert_eq!(messages[2]["content"], "more");
        assert_eq!(messages[3]["content"], "again");
        assert_eq!(messages[4]["content"][0]["signature"], "sig");
        assert_eq!(v["thinking"]["type"], "enabled", "{v}");
        assert_eq!(v["model"], "claude-x");
    }

    #[test]
    fn a_tool_turn_left_without_its_thinking_turns_thinking_off() {
        let v = encode(
            r#"{"model":"m","max_tokens":4096,"thinking":{"type":"enabled","budget_tokens":2048},
                "messages":[{"role":"user","content":"hi"},
                {"role":"assistant","content":[{"type":"thinking","thinking":"local"},
                    {"type":"tool_use","id":"t1","name":"f","input":{}}]},
                {"role":"user","content":[{"type":"tool_result","tool_use_id":"t1","content":"ok"}]}]}"#,
        )
        .unwrap();
        assert_eq!(
            v["thinking"],
            serde_json::json!({"type": "disabled"}),
            "{v}"
        );
        assert_eq!(v["messages"][1]["content"][0]["type"], "tool_use", "{v}");
    }

    #[test]
    fn a_file_image_source_goes_out_only_in_the_kept_body() {
        let body = r#"{"model":"m","max_tokens":64,"messages":[{"role":"user","content":[
            {"type":"image","source":{"type":"file","file_id":"file_1"}},{"type":"text","text":"what?"}]}]}"#;
        let v = encode(body).unwrap();
        assert_eq!(
            v["messages"][0]["content"][0]["source"]["file_id"],
            "file_1"
        );

        let mut req = decode_request(body.as_bytes()).unwrap();
        assert_eq!(
            req.untranslated(),
            Some((
                "messages[0].content[0].source",
                "an image source of type \"file\" (Anthropic Files API)"
            ))
        );
        // Without the client's body (not an Anthropic client's), it cannot be sent.
        req.native_body = None;
        let err = encode_request(&req, &OPTS, &mut Vec::new()).unwrap_err();
        assert_eq!(err.path(), Some("messages[0].content[0].source"), "{err}");
        assert!(err.to_string().contains("\"file\""), "{err}");
    }
}
