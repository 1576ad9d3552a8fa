//! Ollama `/api/chat` request bodies <-> [`ChatRequest`].
//!
//! ```
//! use switchyard_stream::ollama::request::{decode_request, encode_request};
//!
//! let req = decode_request(br#"{"model":"qwen3:8b","messages":[{"role":"user","content":"Hi"}]}"#)?;
//! assert!(req.stream, "absent `stream` means true on Ollama");
//! let body = encode_request(&req, "qwen3:8b", true)?;
//! assert!(body.starts_with(br#"{"model":"qwen3:8b","messages":[{"role":"user","content":"Hi"}]"#));
//! # Ok::<(), switchyard_stream::RequestError>(())
//! ```

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_core::{
    ApiFamily, ChatRequest, ContentPart, Image, KeepAlive, Message, ResponseFormat, Role,
    SamplingOptions, Think, ToolCall, ToolChoice, tool_call_id,
};

use crate::request_error::{
    ArgumentsRefused, Extra, OneOrMany, OutTool, RequestError, WireTool, WireToolCall, decode_body,
    nullable, pair_tool_results, synthetic_id_seed,
};

/// Top-level fields this codec reads and writes itself; everything else is `extra`.
const RESERVED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "format",
    "options",
    "stream",
    "keep_alive",
    "think",
];

struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    tools: Vec<WireTool>,
    format: Option<Value>,
    options: Option<WireOptions>,
    stream: Option<bool>,
    keep_alive: Option<KeepAlive>,
    think: Option<WireThink>,
    extra: Map<String, Value>,
}

crate::open_object::open_object!(WireRequest {
    model: required,
    messages: nullable,
    tools: nullable,
    format: optional,
    options: optional,
    stream: optional,
    keep_alive: optional,
    think: optional,
} extra: extra);

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    System,
    User,
    Assistant,
    Tool,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    #[serde(default, deserialize_with = "nullable")]
    content: String,
    #[serde(default, deserialize_with = "nullable")]
    images: Vec<String>,
    #[serde(default)]
    thinking: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    tool_calls: Vec<WireToolCall>,
    #[serde(default)]
    tool_name: Option<String>,
    #[serde(default)]
    tool_call_id: Option<String>,
}

pub(crate) struct WireOptions {
    num_ctx: Option<u32>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    seed: Option<i64>,
    stop: Option<OneOrMany>,
    num_predict: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    extra: Map<String, Value>,
}

crate::open_object::open_object!(WireOptions {
    num_ctx: optional,
    temperature: optional,
    top_p: optional,
    top_k: optional,
    seed: optional,
    stop: optional,
    num_predict: optional,
    presence_penalty: optional,
    frequency_penalty: optional,
} extra: extra);

#[derive(Deserialize)]
#[serde(untagged)]
pub(crate) enum WireThink {
    Bool(bool),
    Level(String),
}

/// Decodes an Ollama `/api/chat` request body.
///
/// `stream` absent means `true`. Unknown top-level fields go to [`ChatRequest::extra`],
/// unknown `options` to `extra["options"]`. Tool calls in the history without an id get
/// a synthesised `call_…` id, and tool results without one are paired with those calls
/// (by tool name, then by order), so an OpenAI upstream sees consistent `tool_call_id`s.
/// Sets `meta.client_api` to [`ApiFamily::Ollama`].
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
    let mut req = ChatRequest::new(wire.model, Vec::with_capacity(wire.messages.len()));
    for (i, m) in wire.messages.into_iter().enumerate() {
        req.messages.push(decode_message(i, m)?);
    }
    pair_tool_results(&mut req.messages);
    req.tools = wire.tools.into_iter().map(WireTool::into_spec).collect();
    req.response_format = match wire.format {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if s == "json" => Some(ResponseFormat::Json),
        Some(schema @ Value::Object(_)) => Some(ResponseFormat::JsonSchema {
            name: None,
            schema,
            strict: None,
        }),
        Some(_) => {
            return Err(RequestError::field(
                "format",
                "expected \"json\" or a JSON schema object",
            ));
        }
    };
    let mut extra = wire.extra;
    if let Some(o) = wire.options {
        let (options, unknown) = decode_options(o);
        req.options = options;
        if !unknown.is_empty() {
            extra.insert("options".to_owned(), Value::Object(unknown));
        }
    }
    req.stream = wire.stream.unwrap_or(true);
    req.keep_alive = wire.keep_alive;
    req.think = decode_think(wire.think)?;
    req.extra = extra;
    req.meta.client_api = Some(ApiFamily::Ollama);
    Ok(req)
}

fn decode_message(i: usize, m: WireMessage) -> Result<Message, RequestError> {
    let role = match m.role {
        WireRole::System => Role::System,
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
        WireRole::Tool => Role::Tool,
    };
    let mut content = Vec::with_capacity(1 + m.images.len());
    if !m.content.is_empty() {
        content.push(ContentPart::Text(m.content));
    }
    for data in m.images {
        // Ollama wants bare base64; tolerate a `data:` URL from a confused client.
        let image = if data.starts_with("data:") {
            Image::from_url(&data)
        } else {
            Image::Base64 {
                media_type: None,
                data,
                detail: None,
            }
        };
        content.push(ContentPart::Image(image));
    }
    let mut tool_calls = Vec::with_capacity(m.tool_calls.len());
    for (j, call) in m.tool_calls.into_iter().enumerate() {
        let (arguments, raw_arguments) = call.function.parsed_arguments().map_err(|refused| {
            RequestError::field(
                format!("messages[{i}].tool_calls[{j}].function.arguments"),
                match refused {
                    ArgumentsRefused::StringWithoutObject => {
                        "the string does not hold a JSON object"
                    }
                    ArgumentsRefused::NotAnObject => "expected a JSON object",
                },
            )
        })?;
        let id = call
            .id
            .filter(|id| !id.is_empty())
            .unwrap_or_else(|| tool_call_id(synthetic_id_seed(i, j)));
        tool_calls.push(ToolCall {
            id,
            name: call.function.name,
            arguments,
            raw_arguments,
        });
    }
    Ok(Message {
        role,
        content,
        thinking: m.thinking.filter(|t| !t.is_empty()),
        tool_calls,
        tool_call_id: m.tool_call_id.filter(|id| !id.is_empty()),
        tool_name: m.tool_name.filter(|n| !n.is_empty()),
        extras: Default::default(),
    })
}

pub(crate) fn decode_options(o: WireOptions) -> (SamplingOptions, Map<String, Value>) {
    let mut unknown = o.extra;
    let max_tokens = match o.num_predict {
        Some(n) if n > 0 => Some(u32::try_from(n).unwrap_or(u32::MAX)),
        // 0 and -1 (no limit) and -2 (fill the context) mean something only to Ollama.
        Some(n) => {
            unknown.insert("num_predict".to_owned(), Value::from(n));
            None
        }
        None => None,
    };
    let options = SamplingOptions {
        temperature: o.temperature,
        top_p: o.top_p,
        top_k: o.top_k,
        max_tokens,
        stop: o.stop.map(OneOrMany::into_vec).unwrap_or_default(),
        seed: o.seed,
        num_ctx: o.num_ctx,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
    };
    (options, unknown)
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    format: Option<OutFormat<'a>>,
    #[serde(skip_serializing_if = "Map::is_empty")]
    options: Map<String, Value>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    keep_alive: Option<&'a KeepAlive>,
    #[serde(skip_serializing_if = "Option::is_none")]
    think: Option<OutThink>,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    content: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    images: Vec<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    thinking: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    id: &'a str,
    function: OutFunctionCall<'a>,
}

#[derive(Serialize)]
struct OutFunctionCall<'a> {
    name: &'a str,
    arguments: switchyard_core::ArgumentsObject<'a>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutFormat<'a> {
    Json(&'static str),
    Schema(&'a Value),
}

#[derive(Serialize)]
#[serde(untagged)]
pub(crate) enum OutThink {
    Bool(bool),
    Level(&'static str),
}

/// Encodes `req` as an Ollama `/api/chat` body for `upstream_model`.
///
/// `options` holds the sampling options (`max_tokens` as `num_predict`) merged over
/// `extra["options"]`; other `extra` fields are sent only when the request came from an
/// Ollama client. Image URLs cannot be sent (Ollama does not fetch them):
/// [`RequestError::Unsupported`]. With `tool_choice: none`, no tools are offered;
/// `required` and a named function cannot be expressed and are left out.
pub fn encode_request(
    req: &ChatRequest,
    upstream_model: &str,
    stream: bool,
) -> Result<Vec<u8>, RequestError> {
    crate::request_error::refuse_untranslated(req, "an Ollama upstream")?;
    let mut messages = Vec::with_capacity(req.messages.len());
    for (i, m) in req.messages.iter().enumerate() {
        messages.push(encode_message(i, m)?);
    }
    let tools = if req.tool_choice == Some(ToolChoice::None) {
        Vec::new()
    } else {
        req.tools.iter().map(OutTool::new).collect()
    };
    let format = match &req.response_format {
        None | Some(ResponseFormat::Text) => None,
        Some(ResponseFormat::Json) => Some(OutFormat::Json("json")),
        Some(ResponseFormat::JsonSchema { schema, .. }) => Some(OutFormat::Schema(schema)),
    };
    let think = req.think.map(encode_think);
    let from_ollama = req.meta.client_api == Some(ApiFamily::Ollama);
    let body = OutRequest {
        model: upstream_model,
        messages,
        tools,
        format,
        options: encode_options(&req.options, req.extra.get("options")),
        stream,
        keep_alive: req.keep_alive.as_ref(),
        think,
        extra: Extra {
            map: from_ollama.then_some(&req.extra),
            reserved: RESERVED,
        },
    };
    serde_json::to_vec(&body).map_err(|e| RequestError::encode(&e))
}

fn encode_message(i: usize, m: &Message) -> Result<OutMessage<'_>, RequestError> {
    let mut content = String::new();
    let mut images = Vec::new();
    for (j, part) in m.content.iter().enumerate() {
        match part {
            ContentPart::Text(t) => {
                // Separate parts stay apart: a line between them, not one run-on text.
                if !content.is_empty() && !t.is_empty() {
                    content.push('\n');
                }
                content.push_str(t);
            }
            ContentPart::Image(Image::Base64 { data, .. }) => images.push(data.as_str()),
            ContentPart::Image(Image::Url { .. }) => {
                return Err(RequestError::unsupported(
                    format!("messages[{i}].content[{j}]"),
                    "an Ollama upstream cannot fetch image URLs; send the image inline \
                     (a data: URL)",
                ));
            }
        }
    }
    Ok(OutMessage {
        role: m.role.as_str(),
        content,
        images,
        thinking: m.thinking.as_deref(),
        tool_calls: m
            .tool_calls
            .iter()
            .map(|c| OutToolCall {
                id: &c.id,
                function: OutFunctionCall {
                    name: &c.name,
                    arguments: c.arguments_object(),
                },
            })
            .collect(),
        tool_name: m.tool_name.as_deref(),
        tool_call_id: m.tool_call_id.as_deref(),
    })
}

pub(crate) fn encode_options(o: &SamplingOptions, extra: Option<&Value>) -> Map<String, Value> {
    let mut map = match extra {
        Some(Value::Object(extra)) => extra.clone(),
        _ => Map::new(),
    };
    let mut set = |key: &str, value: Option<Value>| {
        if let Some(v) = value {
            map.insert(key.to_owned(), v);
        }
    };
    set("num_ctx", o.num_ctx.map(Value::from));
    set("temperature", o.temperature.map(Value::from));
    set("top_p", o.top_p.map(Value::from));
    set("top_k", o.top_k.map(Value::from));
    set("seed", o.seed.map(Value::from));
    set("num_predict", o.max_tokens.map(Value::from));
    set("presence_penalty", o.presence_penalty.map(Value::from));
    set("frequency_penalty", o.frequency_penalty.map(Value::from));
    if !o.stop.is_empty() {
        set("stop", Some(Value::from(o.stop.clone())));
    }
    map
}

/// Ollama's `think`: `true`, `false` or a level.
pub(crate) fn decode_think(wire: Option<WireThink>) -> Result<Option<Think>, RequestError> {
    Ok(match wire {
        None => None,
        Some(WireThink::Bool(true)) => Some(Think::On),
        Some(WireThink::Bool(false)) => Some(Think::Off),
        Some(WireThink::Level(level)) => Some(Think::from_effort(&level).ok_or_else(|| {
            RequestError::field(
                "think",
                format!(
                    "expected true, false, \"low\", \"medium\", \"high\" or \"max\", got {level:?}"
                ),
            )
        })?),
    })
}

/// [`Think`] as Ollama's `think`.
pub(crate) fn encode_think(t: Think) -> OutThink {
    match t {
        Think::Off => OutThink::Bool(false),
        Think::On => OutThink::Bool(true),
        // Ollama knows low/medium/high (and max); `minimal` is the closest to `low`.
        Think::Minimal => OutThink::Level("low"),
        other => OutThink::Level(other.effort().unwrap_or("medium")),
    }
}
