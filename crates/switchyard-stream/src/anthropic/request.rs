//! Anthropic `/v1/messages` request bodies <-> [`ChatRequest`].
//!
//! ```
//! use switchyard_stream::anthropic::request::{
//!     AnthropicRequestOptions, decode_request, encode_request,
//! };
//!
//! let req = decode_request(br#"{"model":"claude-sonnet-4-5","max_tokens":64,
//!     "system":"Be brief.","messages":[{"role":"user","content":"Hi"}]}"#)?;
//! assert_eq!(req.messages[0].text_content(), "Be brief.");
//! assert!(!req.stream, "absent `stream` means false");
//! let mut body = Vec::new();
//! let opts = AnthropicRequestOptions { model: "claude-sonnet-4-5-20250929", stream: true, default_max_tokens: 4096 };
//! encode_request(&req, &opts, &mut body)?;
//! let text = String::from_utf8(body).unwrap();
//! assert!(text.contains(r#""max_tokens":64"#));
//! assert!(text.contains(r#""system":"Be brief.""#));
//! # Ok::<(), switchyard_stream::RequestError>(())
//! ```

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_core::{
    ApiFamily, ChatRequest, ContentPart, Image, Message, MessageExtras, Role, SamplingOptions,
    Think, ToolCall, ToolChoice, ToolSpec,
};

use crate::request_error::{RequestError, decode_body, pair_tool_results};

pub use super::request_out::{AnthropicRequestOptions, encode_request};

mod block;

use block::{Block, Content, ImageSource, Input, TopContent};

/// Top-level fields this codec reads and writes itself; everything else is `extra`
/// (`metadata`, `service_tier`, `container`, ... reach Anthropic targets untouched).
pub(crate) const RESERVED: &[&str] = &[
    "model",
    "messages",
    "system",
    "tools",
    "tool_choice",
    "max_tokens",
    "stop_sequences",
    "temperature",
    "top_p",
    "top_k",
    "stream",
    "thinking",
];

struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    system: Option<SystemContent>,
    tools: Vec<WireTool>,
    tool_choice: Option<WireToolChoice>,
    max_tokens: u32,
    stop_sequences: Vec<String>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    stream: Option<bool>,
    thinking: Option<WireThinking>,
    extra: Map<String, Value>,
}

crate::open_object::open_object!(WireRequest {
    model: required,
    messages: nullable,
    system: optional,
    tools: nullable,
    tool_choice: optional,
    max_tokens: required,
    stop_sequences: nullable,
    temperature: optional,
    top_p: optional,
    top_k: optional,
    stream: optional,
    thinking: optional,
} extra: extra);

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    User,
    Assistant,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    content: MessageContent,
}

/// A message's `content`: its blocks are the fifth container open in the body (the body,
/// `messages`, the message, `content`, the block), which bounds how deep a `tool_use`
/// block's `input` may nest (see [`block`]).
type MessageContent = TopContent<5>;

/// The `system` prompt: its blocks are the third container open (the body, `system`, the
/// block).
type SystemContent = TopContent<3>;

#[derive(Deserialize)]
struct WireTool {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    input_schema: Option<Value>,
}

#[derive(Deserialize)]
struct WireToolChoice {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    disable_parallel_tool_use: Option<bool>,
}

#[derive(Deserialize)]
struct WireThinking {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    budget_tokens: Option<u32>,
}

/// The error for a body whose bytes stop being UTF-8 at `at`, with its line and column.
fn not_utf8(body: &[u8], at: usize) -> RequestError {
    let before = &body[..at.min(body.len())];
    let line_start = before
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    RequestError::InvalidJson {
        line: before.iter().filter(|b| **b == b'\n').count() + 1,
        column: at - line_start + 1,
        message: "the body is not UTF-8, which JSON text must be".to_owned(),
    }
}

/// Decodes an Anthropic `/v1/messages` request body.
///
/// `system` (a string or text blocks) becomes the first message; user turns split into tool
/// results (one [`Role::Tool`] message per `tool_result`, first, as they answer the previous
/// turn's calls) and the rest of the turn; assistant `tool_use` blocks become tool calls
/// (their `input` must be an object; its text is kept as the client wrote it when writing
/// the map again would not give it back, [`ToolCall::raw_arguments`]), `thinking` the
/// turn's thinking with its signature, `redacted_thinking` opaque data in
/// [`MessageExtras`]. An image whose `source` is not `base64` or `url` (a Files API `file`)
/// is not modelled: it is named in [`MessageExtras::untranslated`] and reaches an Anthropic
/// target in the kept body, while a codec translating to another API refuses it. `tool_choice` `any` is
/// [`ToolChoice::Required`]; `disable_parallel_tool_use` clears `parallel_tool_calls`;
/// `thinking` becomes [`ChatRequest::think`] (`enabled` with a budget as an effort level).
/// `max_tokens` is required, as Anthropic requires it. The body itself is kept in
/// [`ChatRequest::native_body`] for Anthropic targets. Errors name the JSON path.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    // JSON text is UTF-8 (RFC 8259): a body that is not, even in a member the gateway
    // ignores, could not travel to an Anthropic target as the client's own body.
    let text = std::str::from_utf8(body).map_err(|e| not_utf8(body, e.valid_up_to()))?;
    let wire: WireRequest = decode_body(body)?;
    let mut req = ChatRequest::new(wire.model, Vec::with_capacity(wire.messages.len() + 1));
    if let Some(system) = wire.system {
        let text = system_text(system.0);
        if !text.is_empty() {
            req.messages.push(Message::system(text));
        }
    }
    for (i, m) in wire.messages.into_iter().enumerate() {
        decode_message(i, m, &mut req.messages)?;
    }
    pair_tool_results(&mut req.messages);
    req.tools = wire
        .tools
        .into_iter()
        .map(|t| ToolSpec {
            name: t.name,
            description: t.description,
            parameters: t
                .input_schema
                .filter(|p| !p.is_null())
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        })
        .collect();
    if let Some(choice) = wire.tool_choice {
        req.tool_choice = Some(match (choice.kind.as_str(), choice.name) {
            ("auto", _) => ToolChoice::Auto,
            ("any", _) => ToolChoice::Required,
            ("none", _) => ToolChoice::None,
            ("tool", Some(name)) => ToolChoice::Function(name),
            ("tool", None) => {
                return Err(RequestError::field(
                    "tool_choice.name",
                    "a tool choice of type \"tool\" must name the tool",
                ));
            }
            (other, _) => {
                return Err(RequestError::field(
                    "tool_choice.type",
                    format!("expected \"auto\", \"any\", \"tool\" or \"none\", got {other:?}"),
                ));
            }
        });
        req.parallel_tool_calls = choice.disable_parallel_tool_use.map(|d| !d);
    }
    req.options = SamplingOptions {
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        max_tokens: Some(wire.max_tokens),
        stop: wire.stop_sequences,
        ..SamplingOptions::default()
    };
    req.think = wire.thinking.map(decode_thinking).transpose()?;
    req.stream = wire.stream.unwrap_or(false);
    req.include_usage = true;
    req.extra = wire.extra;
    req.native_body = Some(text.to_owned());
    req.meta.client_api = Some(ApiFamily::Anthropic);
    Ok(req)
}

/// The budget (in tokens) Anthropic's `thinking.budget_tokens` gets for an effort level,
/// and the levels a budget maps back to.
pub(crate) fn budget_for(think: Think) -> Option<u32> {
    match think {
        Think::Off => None,
        Think::Minimal | Think::Low => Some(1024),
        Think::On | Think::Medium => Some(4096),
        Think::High => Some(16_384),
        Think::Max => Some(32_000),
    }
}

fn decode_thinking(t: WireThinking) -> Result<Think, RequestError> {
    Ok(match t.kind.as_str() {
        "disabled" => Think::Off,
        "adaptive" => Think::On,
        "enabled" => match t.budget_tokens {
            None => Think::On,
            Some(b) if b <= 2048 => Think::Low,
            Some(b) if b <= 8192 => Think::Medium,
            Some(_) => Think::High,
        },
        other => {
            return Err(RequestError::field(
                "thinking.type",
                format!("expected \"enabled\", \"adaptive\" or \"disabled\", got {other:?}"),
            ));
        }
    })
}

fn system_text(system: Content) -> String {
    match system {
        Content::Text(t) => t,
        Content::Blocks(blocks) => {
            let texts: Vec<String> = blocks
                .into_iter()
                .filter_map(|b| match b {
                    Block::Text { text } => Some(text),
                    _ => None,
                })
                .collect();
            texts.join("\n\n")
        }
    }
}

/// An image block's source: an [`Image`] when Switchyard models it, else the description
/// of what only an Anthropic upstream can take, for [`MessageExtras::untranslated`].
fn image(source: ImageSource, path: impl FnOnce() -> String) -> Result<Image, (String, String)> {
    let what = match source {
        ImageSource::Base64 { media_type, data } => {
            return Ok(Image::Base64 {
                media_type,
                data,
                detail: None,
            });
        }
        ImageSource::Url { url } => return Ok(Image::Url { url, detail: None }),
        ImageSource::File => "an image source of type \"file\" (Anthropic Files API)",
        ImageSource::Other => "an image source of a type other than base64, url or file",
    };
    Err((path(), what.to_owned()))
}

fn decode_message(i: usize, m: WireMessage, out: &mut Vec<Message>) -> Result<(), RequestError> {
    let role = match m.role {
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
    };
    let blocks = match m.content.0 {
        Content::Text(t) => {
            out.push(Message::text(role, t));
            return Ok(());
        }
        Content::Blocks(blocks) => blocks,
    };
    let mut msg = Message {
        content: Vec::new(),
        ..Message::text(role, "")
    };
    for (j, block) in blocks.into_iter().enumerate() {
        let path = || format!("messages[{i}].content[{j}]");
        match block {
            Block::Text { text } => msg.content.push(ContentPart::Text(text)),
            Block::Image { source } => match image(source, || format!("{}.source", path())) {
                Ok(img) => msg.content.push(ContentPart::Image(img)),
                Err(kept) => msg.extras.untranslated.push(kept),
            },
            Block::ToolUse { id, name, input } => {
                // As the client wrote it (`raw_arguments`) when writing the map again would
                // not give the same text, as the OpenAI and Ollama decoders keep theirs.
                let (arguments, raw_arguments) = match input {
                    Input::Object(parsed) => parsed,
                    Input::Null => (Map::new(), None),
                    Input::NotObject => {
                        return Err(RequestError::field(
                            format!("{}.input", path()),
                            "expected a JSON object",
                        ));
                    }
                };
                msg.tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments,
                    raw_arguments,
                });
            }
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => out.push(tool_result(tool_use_id, content, is_error, path)),
            Block::Thinking {
                thinking,
                signature,
            } => {
                msg.thinking
                    .get_or_insert_with(String::new)
                    .push_str(&thinking);
                if signature.is_some() {
                    msg.extras.thinking_signature = signature;
                }
            }
            Block::RedactedThinking { data } => msg.extras.redacted_thinking.push(data),
            Block::Other => {}
        }
    }
    let empty = msg.content.is_empty()
        && msg.tool_calls.is_empty()
        && msg.thinking.is_none()
        && msg.extras == MessageExtras::default();
    if !empty {
        out.push(msg);
    }
    Ok(())
}

fn tool_result(
    tool_use_id: String,
    content: Option<Content>,
    is_error: Option<bool>,
    path: impl Fn() -> String,
) -> Message {
    let mut msg = Message {
        content: Vec::new(),
        tool_call_id: Some(tool_use_id),
        ..Message::text(Role::Tool, "")
    };
    msg.extras.is_error = is_error.unwrap_or(false);
    match content {
        None => {}
        Some(Content::Text(t)) => msg.content.push(ContentPart::Text(t)),
        Some(Content::Blocks(blocks)) => {
            for (k, block) in blocks.into_iter().enumerate() {
                match block {
                    Block::Text { text } => msg.content.push(ContentPart::Text(text)),
                    Block::Image { source } => {
                        match image(source, || format!("{}.content[{k}].source", path())) {
                            Ok(img) => msg.content.push(ContentPart::Image(img)),
                            Err(kept) => msg.extras.untranslated.push(kept),
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    msg
}
