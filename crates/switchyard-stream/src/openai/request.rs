//! OpenAI `/v1/chat/completions` request bodies <-> [`ChatRequest`].
//!
//! ```
//! use switchyard_stream::openai::request::{
//!     MaxTokensField, OpenAiRequestOptions, decode_request, encode_request,
//! };
//!
//! let req = decode_request(br#"{"model":"gpt-4o","messages":[{"role":"user","content":"Hi"}],"max_tokens":5}"#)?;
//! assert!(!req.stream, "absent `stream` means false on OpenAI");
//! let mut body = Vec::new();
//! let opts = OpenAiRequestOptions {
//!     model: "gpt-4o-2024-08-06",
//!     max_tokens_field: MaxTokensField::MaxCompletionTokens,
//!     num_ctx: None,
//!     stream: true,
//! };
//! encode_request(&req, &opts, &mut body)?;
//! let text = String::from_utf8(body).unwrap();
//! assert!(text.contains(r#""max_completion_tokens":5"#));
//! assert!(text.contains(r#""stream_options":{"include_usage":true}"#));
//! # Ok::<(), switchyard_stream::RequestError>(())
//! ```

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_core::{
    ApiFamily, ChatRequest, ContentPart, Image, Message, ResponseFormat, Role, SamplingOptions,
    Think, ToolCall, ToolChoice, tool_call_id,
};

use crate::request_error::{
    ArgumentsRefused, Extra, OneOrMany, OutTool, RequestError, WireTool, WireToolCall, decode_body,
    nullable, pair_tool_results, synthetic_id_seed,
};

/// Which request field carries the output-token limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxTokensField {
    /// `max_tokens`: most servers, Ollama's `/v1`, vLLM, llama.cpp.
    #[default]
    MaxTokens,
    /// `max_completion_tokens`: OpenAI's newer (reasoning) models refuse `max_tokens`.
    MaxCompletionTokens,
}

impl MaxTokensField {
    /// The JSON field name.
    pub fn as_str(self) -> &'static str {
        match self {
            MaxTokensField::MaxTokens => "max_tokens",
            MaxTokensField::MaxCompletionTokens => "max_completion_tokens",
        }
    }
}

/// How [`encode_request`] shapes the body for one upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenAiRequestOptions<'a> {
    /// The upstream's model id (sent as `model`).
    pub model: &'a str,
    /// Which field carries `options.max_tokens`.
    pub max_tokens_field: MaxTokensField,
    /// When set, sent as Ollama's `options.num_ctx` (Ollama's `/v1` reads it; other servers
    /// do not want it, so leave it `None` for them).
    pub num_ctx: Option<u32>,
    /// Ask for a streamed answer (then `stream_options.include_usage` is always `true`).
    pub stream: bool,
}

/// The [`ChatRequest::extra`] key where [`decode_request`] keeps what [`switchyard_core::ToolSpec`]
/// cannot hold of the client's tools (`strict`), as `[{"function":{"name","strict"}}]`, for
/// [`encode_request`] to put back. `tools` is reserved here, so it is never passed through as is;
/// the other codecs pass `extra` only to upstreams of their own API.
const TOOL_FLAGS_KEY: &str = "tools";

/// Placeholder text of a tool result whose only content was images (OpenAI tool messages
/// carry text only; the images follow in a user message).
const IMAGE_PLACEHOLDER: &str = "(image attached below)";

/// Top-level fields this codec reads and writes itself; everything else is `extra`.
const RESERVED: &[&str] = &[
    "model",
    "messages",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "temperature",
    "top_p",
    "top_k",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "reasoning_effort",
    "stream",
    "stream_options",
    "n",
    "options",
];

struct WireRequest {
    model: String,
    messages: Vec<WireMessage>,
    tools: Vec<WireTool>,
    tool_choice: Option<WireToolChoice>,
    parallel_tool_calls: Option<bool>,
    temperature: Option<f64>,
    top_p: Option<f64>,
    top_k: Option<u32>,
    max_tokens: Option<u32>,
    max_completion_tokens: Option<u32>,
    stop: Option<OneOrMany>,
    seed: Option<i64>,
    presence_penalty: Option<f64>,
    frequency_penalty: Option<f64>,
    response_format: Option<WireResponseFormat>,
    reasoning_effort: Option<String>,
    stream: Option<bool>,
    stream_options: Option<WireStreamOptions>,
    n: Option<u32>,
    extra: Map<String, Value>,
}

crate::open_object::open_object!(WireRequest {
    model: required,
    messages: nullable,
    tools: nullable,
    tool_choice: optional,
    parallel_tool_calls: optional,
    temperature: optional,
    top_p: optional,
    top_k: optional,
    max_tokens: optional,
    max_completion_tokens: optional,
    stop: optional,
    seed: optional,
    presence_penalty: optional,
    frequency_penalty: optional,
    response_format: optional,
    reasoning_effort: optional,
    stream: optional,
    stream_options: optional,
    n: optional,
} extra: extra);

#[derive(Deserialize)]
struct WireStreamOptions {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum WireRole {
    System,
    Developer,
    User,
    Assistant,
    Tool,
}

#[derive(Deserialize)]
struct WireMessage {
    role: WireRole,
    #[serde(default)]
    content: Option<WireContent>,
    #[serde(default)]
    reasoning_content: Option<String>,
    #[serde(default)]
    reasoning: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    tool_calls: Vec<WireToolCall>,
    #[serde(default)]
    tool_call_id: Option<String>,
    #[serde(default)]
    name: Option<String>,
    /// An assistant turn's refusal (OpenAI writes it instead of `content`).
    #[serde(default)]
    refusal: Option<String>,
}

enum WireContent {
    Text(String),
    Parts(Vec<WirePart>),
}

crate::open_object::string_or_list!(WireContent::Text | Parts);

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WirePart {
    Text {
        text: String,
    },
    ImageUrl {
        image_url: WireImageUrl,
    },
    /// An assistant turn's refusal as a content part: kept as the turn's text, which is
    /// what the model said (other APIs have no refusal part).
    Refusal {
        refusal: String,
    },
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireImageUrl {
    Object {
        url: String,
        /// `auto`, `low` or `high`: kept for OpenAI-compatible upstreams.
        #[serde(default)]
        detail: Option<String>,
    },
    Bare(String),
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireToolChoice {
    Mode(String),
    Named { function: WireNamedFunction },
}

#[derive(Deserialize)]
struct WireNamedFunction {
    name: String,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireResponseFormat {
    Text,
    JsonObject,
    JsonSchema { json_schema: WireJsonSchema },
}

#[derive(Deserialize)]
struct WireJsonSchema {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    schema: Option<Value>,
    #[serde(default)]
    strict: Option<bool>,
}

/// Decodes an OpenAI `/v1/chat/completions` request body.
///
/// `stream` absent means `false`. `developer` messages become system messages; content
/// parts (`text`, `image_url` with a URL or a `data:` URL) are kept in order; tool-call
/// arguments (a JSON string) must hold a JSON object. `max_completion_tokens` wins over
/// `max_tokens`; `reasoning_effort` becomes [`ChatRequest::think`]; `n` above 1,
/// `logprobs: true` and `top_logprobs` are [`RequestError::Unsupported`]. Unknown top-level fields go to [`ChatRequest::extra`], and
/// so does the `strict` flag of tools (under `tools`, see `TOOL_FLAGS_KEY`).
/// Tool results get their `tool_name` from the call they answer. Sets `meta.client_api` to
/// [`ApiFamily::OpenAi`]. Errors name the JSON path of the bad field.
pub fn decode_request(body: &[u8]) -> Result<ChatRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
    if wire.n.is_some_and(|n| n > 1) {
        return Err(RequestError::unsupported(
            "n",
            "only one choice per request is supported",
        ));
    }
    refuse_logprobs(&wire.extra)?;
    let mut req = ChatRequest::new(wire.model, Vec::with_capacity(wire.messages.len()));
    for (i, m) in wire.messages.into_iter().enumerate() {
        req.messages.push(decode_message(i, m)?);
    }
    pair_tool_results(&mut req.messages);
    let tool_flags: Vec<Value> = wire
        .tools
        .iter()
        .filter_map(|t| {
            t.function.strict.map(|strict| {
                serde_json::json!({"function": {"name": t.function.name, "strict": strict}})
            })
        })
        .collect();
    req.tools = wire.tools.into_iter().map(WireTool::into_spec).collect();
    req.tool_choice = match wire.tool_choice {
        None => None,
        Some(WireToolChoice::Mode(mode)) => Some(match mode.as_str() {
            "auto" => ToolChoice::Auto,
            "none" => ToolChoice::None,
            "required" => ToolChoice::Required,
            other => {
                return Err(RequestError::field(
                    "tool_choice",
                    format!(
                        "expected \"auto\", \"none\", \"required\" or an object, got {other:?}"
                    ),
                ));
            }
        }),
        Some(WireToolChoice::Named { function }) => Some(ToolChoice::Function(function.name)),
    };
    req.parallel_tool_calls = wire.parallel_tool_calls;
    req.options = SamplingOptions {
        temperature: wire.temperature,
        top_p: wire.top_p,
        top_k: wire.top_k,
        max_tokens: wire.max_completion_tokens.or(wire.max_tokens),
        stop: wire.stop.map(OneOrMany::into_vec).unwrap_or_default(),
        seed: wire.seed,
        num_ctx: None,
        presence_penalty: wire.presence_penalty,
        frequency_penalty: wire.frequency_penalty,
    };
    req.response_format = wire.response_format.map(|f| match f {
        WireResponseFormat::Text => ResponseFormat::Text,
        WireResponseFormat::JsonObject => ResponseFormat::Json,
        WireResponseFormat::JsonSchema { json_schema } => ResponseFormat::JsonSchema {
            name: json_schema.name,
            schema: json_schema
                .schema
                .unwrap_or_else(|| serde_json::json!({"type": "object"})),
            strict: json_schema.strict,
        },
    });
    req.think = match wire.reasoning_effort.as_deref() {
        None => None,
        Some("none") => Some(Think::Off),
        Some(level) => Some(Think::from_effort(level).ok_or_else(|| {
            RequestError::field(
                "reasoning_effort",
                format!(
                    "expected \"none\", \"minimal\", \"low\", \"medium\" or \"high\", got {level:?}"
                ),
            )
        })?),
    };
    req.stream = wire.stream.unwrap_or(false);
    req.include_usage = wire
        .stream_options
        .and_then(|o| o.include_usage)
        .unwrap_or(false);
    req.extra = wire.extra;
    if !tool_flags.is_empty() {
        req.extra
            .insert(TOOL_FLAGS_KEY.to_owned(), Value::Array(tool_flags));
    }
    req.meta.client_api = Some(ApiFamily::OpenAi);
    Ok(req)
}

/// Refuses a request for log probabilities (`logprobs` other than `false` or `null`, any
/// `top_logprobs` but `null`), naming the field, as `/v1/completions` does: the answer
/// carries no log probabilities back (its `choices[].logprobs` is always `null`), so a client
/// reading `.logprobs.content` would fail on a 200 instead.
fn refuse_logprobs(extra: &Map<String, Value>) -> Result<(), RequestError> {
    if extra
        .get("logprobs")
        .is_some_and(|v| !matches!(v, Value::Null | Value::Bool(false)))
    {
        return Err(RequestError::unsupported(
            "logprobs",
            "log probabilities are not supported",
        ));
    }
    if extra.get("top_logprobs").is_some_and(|v| !v.is_null()) {
        return Err(RequestError::unsupported(
            "top_logprobs",
            "log probabilities are not supported",
        ));
    }
    Ok(())
}

fn decode_message(i: usize, m: WireMessage) -> Result<Message, RequestError> {
    let role = match m.role {
        WireRole::System | WireRole::Developer => Role::System,
        WireRole::User => Role::User,
        WireRole::Assistant => Role::Assistant,
        WireRole::Tool => Role::Tool,
    };
    let content = match m.content {
        // A replayed refusal turn: `content` null, the words in `refusal`.
        None => m
            .refusal
            .filter(|r| !r.is_empty())
            .map(|r| vec![ContentPart::Text(r)])
            .unwrap_or_default(),
        Some(WireContent::Text(t)) if t.is_empty() => Vec::new(),
        Some(WireContent::Text(t)) => vec![ContentPart::Text(t)],
        Some(WireContent::Parts(parts)) => parts
            .into_iter()
            .map(|p| match p {
                WirePart::Text { text } | WirePart::Refusal { refusal: text } => {
                    ContentPart::Text(text)
                }
                WirePart::ImageUrl { image_url } => {
                    let (url, detail) = match image_url {
                        WireImageUrl::Object { url, detail } => (url, detail),
                        WireImageUrl::Bare(url) => (url, None),
                    };
                    ContentPart::Image(Image::from_url(&url).with_detail(detail))
                }
            })
            .collect(),
    };
    let mut tool_calls = Vec::with_capacity(m.tool_calls.len());
    for (j, call) in m.tool_calls.into_iter().enumerate() {
        let path = || format!("messages[{i}].tool_calls[{j}].function.arguments");
        // The text as the client sent it is kept (`raw_arguments`) and sent upstream
        // again, so numbers a `Value` cannot hold exactly are not rewritten.
        // Some clients send the object itself rather than a string holding it.
        let (arguments, raw_arguments) = call.function.parsed_arguments().map_err(|refused| {
            RequestError::field(
                path(),
                match refused {
                    ArgumentsRefused::StringWithoutObject => {
                        "the string does not hold a JSON object"
                    }
                    ArgumentsRefused::NotAnObject => "expected a string holding a JSON object",
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
    let thinking = m
        .reasoning_content
        .filter(|t| !t.is_empty())
        .or(m.reasoning.filter(|t| !t.is_empty()));
    Ok(Message {
        role,
        content,
        thinking,
        tool_calls,
        tool_call_id: m.tool_call_id.filter(|id| !id.is_empty()),
        tool_name: if role == Role::Tool {
            m.name.filter(|n| !n.is_empty())
        } else {
            None
        },
        extras: Default::default(),
    })
}

#[derive(Serialize)]
struct OutRequest<'a> {
    model: &'a str,
    messages: Vec<OutMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<OutTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_choice: Option<OutToolChoice<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    top_p: Option<f64>,
    /// Not part of OpenAI's own API (it answers 400 to it); vLLM and llama.cpp read it.
    #[serde(skip_serializing_if = "Option::is_none")]
    top_k: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    stop: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    seed: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    presence_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    frequency_penalty: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<OutResponseFormat<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_effort: Option<&'static str>,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<OutStreamOptions>,
    #[serde(skip_serializing_if = "Option::is_none")]
    options: Option<OutOllamaOptions>,
    #[serde(flatten)]
    extra: Extra<'a>,
}

#[derive(Serialize)]
struct OutStreamOptions {
    include_usage: bool,
}

#[derive(Serialize)]
struct OutOllamaOptions {
    num_ctx: u32,
}

#[derive(Serialize)]
struct OutMessage<'a> {
    role: &'static str,
    /// `null` for an assistant turn that only made calls.
    content: Option<OutContent<'a>>,
    /// Thinking of an earlier assistant turn, so reasoning models keep their chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<OutToolCall<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutContent<'a> {
    Text(String),
    Parts(Vec<OutPart<'a>>),
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutPart<'a> {
    Text { text: Cow<'a, str> },
    ImageUrl { image_url: OutImageUrl<'a> },
}

#[derive(Serialize)]
struct OutImageUrl<'a> {
    url: String,
    /// The client's `detail` hint, when it gave one.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a str>,
}

impl<'a> OutImageUrl<'a> {
    fn of(img: &'a Image) -> Self {
        Self {
            url: img.to_url(),
            detail: img.detail(),
        }
    }
}

#[derive(Serialize)]
struct OutToolCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutFunctionCall<'a>,
}

#[derive(Serialize)]
struct OutFunctionCall<'a> {
    name: &'a str,
    /// A JSON string holding the arguments object, as the API wants it.
    arguments: String,
}

#[derive(Serialize)]
#[serde(untagged)]
enum OutToolChoice<'a> {
    Mode(&'static str),
    Named {
        #[serde(rename = "type")]
        kind: &'static str,
        function: OutNamedFunction<'a>,
    },
}

#[derive(Serialize)]
struct OutNamedFunction<'a> {
    name: &'a str,
}

#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OutResponseFormat<'a> {
    Text,
    JsonObject,
    JsonSchema { json_schema: OutJsonSchema<'a> },
}

#[derive(Serialize)]
struct OutJsonSchema<'a> {
    name: &'a str,
    schema: &'a Value,
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

/// Encodes `req` as an OpenAI `/v1/chat/completions` body into `out` (appended).
///
/// The output limit goes in `opts.max_tokens_field`; a streamed request always asks for
/// `stream_options.include_usage`; `opts.num_ctx` becomes `options.num_ctx` (Ollama's
/// `/v1`). Images become `image_url` parts (base64 as a `data:` URL); a message of several
/// text parts is sent as a list of `text` parts (an assistant's as one string, the parts
/// joined with `"\n"`). Tool messages carry text only: the images of a tool result go in a
/// user message right after the run of tool results they belong to (into the user message
/// that follows it, if any), and a result that had only images says `(image attached below)`.
/// Thinking of earlier assistant turns goes in `reasoning_content`; [`Think`] levels become
/// `reasoning_effort` (`max` as `high`; `on` sends nothing, `off` sends `"none"` only when an
/// OpenAI client asked for it). `extra` fields are passed through only when the request came
/// from an OpenAI client (or from no client API), never overriding the fields set here. The
/// same holds for `top_k` (OpenAI itself refuses it: only a client that wrote it into an
/// OpenAI body has it sent) and for the tools' `strict` flags. A tool result must carry a
/// `tool_call_id` (the decoders pair them): otherwise [`RequestError::InvalidField`] naming
/// `messages[i].tool_call_id`.
pub fn encode_request(
    req: &ChatRequest,
    opts: &OpenAiRequestOptions<'_>,
    out: &mut Vec<u8>,
) -> Result<(), RequestError> {
    crate::request_error::refuse_untranslated(req, "an OpenAI-compatible upstream")?;
    let messages = encode_messages(&req.messages)?;
    let pass_extra = matches!(req.meta.client_api, None | Some(ApiFamily::OpenAi));
    let tool_flags = if pass_extra {
        req.extra.get(TOOL_FLAGS_KEY).and_then(Value::as_array)
    } else {
        None
    };
    let tools: Vec<OutTool<'_>> = req
        .tools
        .iter()
        .map(|t| OutTool::new(t).with_strict(tool_flags.and_then(|f| strict_flag(f, &t.name))))
        .collect();
    let tool_choice = req.tool_choice.as_ref().map(|c| match c {
        ToolChoice::Auto => OutToolChoice::Mode("auto"),
        ToolChoice::None => OutToolChoice::Mode("none"),
        ToolChoice::Required => OutToolChoice::Mode("required"),
        ToolChoice::Function(name) => OutToolChoice::Named {
            kind: "function",
            function: OutNamedFunction { name },
        },
    });
    // Servers reject tool_choice / parallel_tool_calls without tools.
    let (tool_choice, parallel_tool_calls) = if tools.is_empty() {
        (None, None)
    } else {
        (tool_choice, req.parallel_tool_calls)
    };
    let response_format = req.response_format.as_ref().map(|f| match f {
        ResponseFormat::Text => OutResponseFormat::Text,
        ResponseFormat::Json => OutResponseFormat::JsonObject,
        ResponseFormat::JsonSchema {
            name,
            schema,
            strict,
        } => OutResponseFormat::JsonSchema {
            json_schema: OutJsonSchema {
                name: name.as_deref().unwrap_or("response"),
                schema,
                strict: *strict,
            },
        },
    });
    let reasoning_effort = req.think.and_then(|t| match t {
        // An OpenAI client's own `reasoning_effort: "none"` passes as sent; an Ollama
        // client's `think: false` sends nothing (servers without the level reject it).
        Think::Off if req.meta.client_api == Some(ApiFamily::OpenAi) => Some("none"),
        Think::Off | Think::On => None,
        Think::Max => Some("high"),
        other => other.effort(),
    });
    let o = &req.options;
    let (max_tokens, max_completion_tokens) = match opts.max_tokens_field {
        MaxTokensField::MaxTokens => (o.max_tokens, None),
        MaxTokensField::MaxCompletionTokens => (None, o.max_tokens),
    };
    let body = OutRequest {
        model: opts.model,
        messages,
        tools,
        tool_choice,
        parallel_tool_calls,
        temperature: o.temperature,
        top_p: o.top_p,
        top_k: o.top_k.filter(|_| pass_extra),
        max_tokens,
        max_completion_tokens,
        stop: &o.stop,
        seed: o.seed,
        presence_penalty: o.presence_penalty,
        frequency_penalty: o.frequency_penalty,
        response_format,
        reasoning_effort,
        stream: opts.stream,
        stream_options: opts.stream.then_some(OutStreamOptions {
            include_usage: true,
        }),
        options: opts.num_ctx.map(|num_ctx| OutOllamaOptions { num_ctx }),
        extra: Extra {
            map: pass_extra.then_some(&req.extra),
            reserved: RESERVED,
        },
    };
    serde_json::to_writer(out, &body).map_err(|e| RequestError::encode(&e))
}

/// The `strict` flag kept for the tool `name` (see `TOOL_FLAGS_KEY`).
fn strict_flag(flags: &[Value], name: &str) -> Option<bool> {
    flags
        .iter()
        .find(|f| f.pointer("/function/name").and_then(Value::as_str) == Some(name))?
        .pointer("/function/strict")?
        .as_bool()
}

/// Encodes the conversation. Images of tool results cannot stay in the (text-only) tool
/// messages: they are held until the run of tool results answering one assistant turn ends
/// (OpenAI wants every call answered by the tool messages right after it), then go at the
/// front of the user message that follows, or in a user message of their own.
fn encode_messages(messages: &[Message]) -> Result<Vec<OutMessage<'_>>, RequestError> {
    let mut out = Vec::with_capacity(messages.len() + 1);
    let mut held: Vec<OutPart<'_>> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        if m.role == Role::Tool {
            out.push(encode_message(i, m, Some(&mut held))?);
            continue;
        }
        let mut msg = encode_message(i, m, None)?;
        if !held.is_empty() {
            if m.role == Role::User {
                let mut parts = std::mem::take(&mut held);
                match msg.content.take() {
                    None => {}
                    Some(OutContent::Text(t)) if t.is_empty() => {}
                    Some(OutContent::Text(t)) => parts.push(OutPart::Text {
                        text: Cow::Owned(t),
                    }),
                    Some(OutContent::Parts(rest)) => parts.extend(rest),
                }
                msg.content = Some(OutContent::Parts(parts));
            } else {
                out.push(user_parts(std::mem::take(&mut held)));
            }
        }
        out.push(msg);
    }
    if !held.is_empty() {
        out.push(user_parts(held));
    }
    Ok(out)
}

/// The text of `m` (images left out): one string, or, when it has several non-empty text
/// parts, a list of `text` parts so they stay apart (an assistant's joined with `"\n"`).
fn text_content(m: &Message) -> OutContent<'_> {
    let mut texts = m.content.iter().filter_map(|p| match p {
        ContentPart::Text(t) if !t.is_empty() => Some(t.as_str()),
        _ => None,
    });
    let Some(first) = texts.next() else {
        return OutContent::Text(String::new());
    };
    let Some(second) = texts.next() else {
        return OutContent::Text(first.to_owned());
    };
    let all = [first, second].into_iter().chain(texts);
    if m.role == Role::Assistant {
        OutContent::Text(all.collect::<Vec<_>>().join("\n"))
    } else {
        OutContent::Parts(
            all.map(|text| OutPart::Text {
                text: Cow::Borrowed(text),
            })
            .collect(),
        )
    }
}

fn user_parts(parts: Vec<OutPart<'_>>) -> OutMessage<'_> {
    OutMessage {
        role: Role::User.as_str(),
        content: Some(OutContent::Parts(parts)),
        reasoning_content: None,
        tool_calls: Vec::new(),
        tool_call_id: None,
    }
}

/// Encodes one message. For a tool result, `held` receives its images (after a text part
/// naming the call), and the message keeps only its text.
fn encode_message<'a>(
    i: usize,
    m: &'a Message,
    held: Option<&mut Vec<OutPart<'a>>>,
) -> Result<OutMessage<'a>, RequestError> {
    let has_image = m.content.iter().any(|p| matches!(p, ContentPart::Image(_)));
    let content = match held {
        Some(held) if has_image => {
            let label = match m.tool_call_id.as_deref() {
                Some(id) => format!("Image(s) returned by tool call {id}:"),
                None => "Image(s) returned by a tool call:".to_owned(),
            };
            held.push(OutPart::Text {
                text: Cow::Owned(label),
            });
            held.extend(m.images().map(|img| OutPart::ImageUrl {
                image_url: OutImageUrl::of(img),
            }));
            let content = text_content(m);
            Some(match content {
                OutContent::Text(t) if t.is_empty() => {
                    OutContent::Text(IMAGE_PLACEHOLDER.to_owned())
                }
                other => other,
            })
        }
        _ if has_image => Some(OutContent::Parts(
            m.content
                .iter()
                .map(|p| match p {
                    ContentPart::Text(text) => OutPart::Text {
                        text: Cow::Borrowed(text),
                    },
                    ContentPart::Image(img) => OutPart::ImageUrl {
                        image_url: OutImageUrl::of(img),
                    },
                })
                .collect(),
        )),
        _ => match text_content(m) {
            OutContent::Text(t)
                if t.is_empty() && m.role == Role::Assistant && !m.tool_calls.is_empty() =>
            {
                None
            }
            other => Some(other),
        },
    };
    let mut tool_calls = Vec::with_capacity(m.tool_calls.len());
    for (j, c) in m.tool_calls.iter().enumerate() {
        let arguments = match &c.raw_arguments {
            Some(raw) => String::from(&**raw),
            None => serde_json::to_string(&c.arguments).map_err(|e| {
                RequestError::field(
                    format!("messages[{i}].tool_calls[{j}].function.arguments"),
                    e.to_string(),
                )
            })?,
        };
        tool_calls.push(OutToolCall {
            id: &c.id,
            kind: "function",
            function: OutFunctionCall {
                name: &c.name,
                arguments,
            },
        });
    }
    let tool_call_id = if m.role == Role::Tool {
        match m.tool_call_id.as_deref() {
            Some(id) => Some(id),
            None => {
                return Err(RequestError::field(
                    format!("messages[{i}].tool_call_id"),
                    "a tool result must name the call it answers (no earlier call to pair it with)",
                ));
            }
        }
    } else {
        None
    };
    let reasoning_content = match m.role {
        Role::Assistant => m.thinking.as_deref().filter(|t| !t.is_empty()),
        _ => None,
    };
    Ok(OutMessage {
        role: m.role.as_str(),
        content,
        reasoning_content,
        tool_calls,
        tool_call_id,
    })
}
