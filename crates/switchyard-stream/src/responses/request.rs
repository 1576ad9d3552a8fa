//! OpenAI `/v1/responses` request bodies -> [`ChatRequest`].
//!
//! ```
//! use switchyard_stream::responses::request::{DecodeOptions, decode_request};
//!
//! let body = br#"{"model":"chat","instructions":"Be brief.","input":"Hi",
//!                 "reasoning":{"effort":"low","summary":"auto"},"max_output_tokens":64}"#;
//! let req = decode_request(body, &DecodeOptions::default())?;
//! assert!(req.store, "OpenAI's default is to store");
//! let chat = req.into_chat(Vec::new());
//! assert_eq!(chat.messages.len(), 2, "instructions, then the input");
//! assert_eq!(chat.options.max_tokens, Some(64));
//! assert_eq!(chat.think, Some(switchyard_core::Think::Low));
//! # Ok::<(), switchyard_stream::RequestError>(())
//! ```

use serde::Deserialize;
use serde_json::{Map, Value, json};
use switchyard_core::{ApiFamily, ChatRequest, Message, ResponseFormat, SamplingOptions, Think};

use super::echo::member;
use super::input::{MAX_INPUT_ITEMS, Turns};
use super::tools::{decode_tool_choice, decode_tools};
use crate::request_error::{RequestError, decode_body, nullable, pair_tool_results};

/// How [`decode_request`] treats what a chat upstream cannot do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeOptions {
    /// Leave hosted tools (`web_search`, ...) out instead of refusing the request.
    pub drop_unsupported_tools: bool,
}

/// A decoded Responses request: the chat request (without the history of a
/// `previous_response_id`, see [`ResponsesRequest::into_chat`]) and what only the Responses
/// API knows about.
#[derive(Debug, Clone, PartialEq)]
pub struct ResponsesRequest {
    /// The request, with only this request's input as messages.
    pub chat: ChatRequest,
    /// `instructions`: the system prompt of this request only (not carried over by
    /// `previous_response_id`, as on OpenAI).
    pub instructions: Option<String>,
    /// The response this one continues.
    pub previous_response_id: Option<String>,
    /// Whether the response should be kept (OpenAI's default: `true`).
    pub store: bool,
    /// Names of the `custom` (freeform) tools: their calls are answered as `custom_tool_call`.
    pub custom_tools: Vec<String>,
    /// Hosted tools that were left out (`drop_unsupported_tools`).
    pub dropped_tools: Vec<String>,
    /// The input items as sent (a string input as one user message item), for the store;
    /// a string input has none when `store` is false.
    pub input_items: Vec<Value>,
    /// Request parameters the response object repeats (`tools`, `tool_choice`, `text`,
    /// `reasoning`, `metadata`, `temperature`, ...), with OpenAI's defaults filled in.
    pub echo: super::Echo,
}

impl ResponsesRequest {
    /// The chat request to route: `instructions` as the system message, then `history`
    /// (the turns of the responses this one continues), then this request's input.
    pub fn into_chat(self, history: Vec<Message>) -> ChatRequest {
        let mut chat = self.chat;
        let instructions = self.instructions.filter(|t| !t.is_empty());
        if instructions.is_some() || !history.is_empty() {
            let mut messages = Vec::with_capacity(1 + history.len() + chat.messages.len());
            messages.extend(instructions.map(Message::system));
            messages.extend(history);
            messages.append(&mut chat.messages);
            chat.messages = messages;
        }
        pair_tool_results(&mut chat.messages);
        chat
    }
}

#[derive(Deserialize)]
struct WireRequest {
    model: String,
    #[serde(default)]
    input: Option<WireInput>,
    #[serde(default)]
    instructions: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    tools: Vec<Value>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    parallel_tool_calls: Option<bool>,
    #[serde(default)]
    max_output_tokens: Option<u32>,
    #[serde(default)]
    temperature: Option<f64>,
    #[serde(default)]
    top_p: Option<f64>,
    #[serde(default)]
    reasoning: Option<WireReasoning>,
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    metadata: Option<Map<String, Value>>,
    #[serde(default)]
    store: Option<bool>,
    #[serde(default)]
    previous_response_id: Option<String>,
    #[serde(default)]
    stream: Option<bool>,
    #[serde(default)]
    background: Option<bool>,
    #[serde(default)]
    user: Option<String>,
    /// `disabled` or `auto` (echoed; the gateway never drops input items itself, so under
    /// `auto` a prompt over the context window is still a `context_length_exceeded` error).
    #[serde(default)]
    truncation: Option<Truncation>,
    /// Extra output to include: a list of names (checked for its type; no name changes
    /// what a translated answer holds).
    #[serde(default, rename = "include", deserialize_with = "nullable")]
    _include: Vec<String>,
}

/// The Responses API's `truncation`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum Truncation {
    Disabled,
    Auto,
}

enum WireInput {
    Text(String),
    Items(Vec<Value>),
}

crate::open_object::string_or_list!(WireInput::Text | Items);

#[derive(Deserialize, Default)]
struct WireReasoning {
    #[serde(default)]
    effort: Option<String>,
    #[serde(default)]
    summary: Option<String>,
}

#[derive(Deserialize)]
struct WireText {
    #[serde(default)]
    format: Option<WireFormat>,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireFormat {
    Text,
    JsonObject,
    JsonSchema {
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        schema: Option<Value>,
        #[serde(default)]
        strict: Option<bool>,
    },
}

/// Decodes an OpenAI `/v1/responses` request body.
///
/// `input` is a string (one user message) or a list of items (see the module `input`):
/// messages, function and custom tool calls and their outputs, reasoning. `stream` absent
/// means `false`, `store` absent means `true`. `reasoning.effort` becomes
/// [`ChatRequest::think`] (`none` turns thinking off, `minimal` is kept and each upstream
/// encoder maps it); `reasoning.summary` is accepted and never forwarded. `text.format`
/// becomes [`ChatRequest::response_format`]. `background: true` is
/// [`RequestError::Unsupported`]. Sets `meta.client_api` to [`ApiFamily::OpenAi`] and leaves
/// `extra` empty: no Responses-only field means anything to a chat upstream.
pub fn decode_request(body: &[u8], opts: &DecodeOptions) -> Result<ResponsesRequest, RequestError> {
    let wire: WireRequest = decode_body(body)?;
    if wire.background == Some(true) {
        return Err(RequestError::unsupported(
            "background",
            "background responses are not supported; use stream: true",
        ));
    }
    if let Some(metadata) = &wire.metadata {
        check_metadata(metadata)?;
    }
    let echo = echo_of(&wire);
    let store = wire.store.unwrap_or(true);
    let mut turns = Turns::default();
    let input_items = match wire.input {
        None => Vec::new(),
        Some(WireInput::Text(text)) => {
            // The item is for the store only.
            let item = store.then(|| {
                json!({"type": "message", "role": "user",
                       "content": [{"type": "input_text", "text": text}]})
            });
            turns.push_user_text(text);
            item.into_iter().collect()
        }
        Some(WireInput::Items(items)) => {
            if items.len() > MAX_INPUT_ITEMS {
                return Err(RequestError::field(
                    "input",
                    format!("more than {MAX_INPUT_ITEMS} items"),
                ));
            }
            for (i, item) in items.iter().enumerate() {
                turns.push_item(&format!("input[{i}]"), item.clone())?;
            }
            items
        }
    };
    let mut tools = decode_tools(wire.tools, opts.drop_unsupported_tools)?;
    let tool_choice = decode_tool_choice(wire.tool_choice, &mut tools)?;
    let mut chat = ChatRequest::new(wire.model, turns.messages);
    chat.tools = tools.specs;
    chat.tool_choice = tool_choice;
    chat.parallel_tool_calls = wire.parallel_tool_calls;
    chat.options = SamplingOptions {
        temperature: wire.temperature,
        top_p: wire.top_p,
        max_tokens: wire.max_output_tokens,
        ..SamplingOptions::default()
    };
    let text: Option<WireText> = match wire.text {
        None | Some(Value::Null) => None,
        Some(raw) => Some(serde_path_to_error::deserialize(raw).map_err(|e| {
            RequestError::field(format!("text.{}", e.path()), e.into_inner().to_string())
        })?),
    };
    chat.response_format = text.and_then(|t| t.format).map(|f| match f {
        WireFormat::Text => ResponseFormat::Text,
        WireFormat::JsonObject => ResponseFormat::Json,
        WireFormat::JsonSchema {
            name,
            schema,
            strict,
        } => ResponseFormat::JsonSchema {
            name,
            schema: schema.unwrap_or_else(|| json!({"type": "object"})),
            strict,
        },
    });
    chat.think = think_of(wire.reasoning.and_then(|r| r.effort).as_deref())?;
    chat.stream = wire.stream.unwrap_or(false);
    chat.include_usage = true;
    chat.meta.client_api = Some(ApiFamily::OpenAi);
    Ok(ResponsesRequest {
        chat,
        instructions: wire.instructions,
        previous_response_id: wire.previous_response_id.filter(|id| !id.is_empty()),
        store,
        custom_tools: tools.custom,
        dropped_tools: tools.dropped,
        input_items,
        echo,
    })
}

/// Most pairs `metadata` may hold (OpenAI's limit).
const MAX_METADATA_PAIRS: usize = 16;
/// Longest `metadata` key, in characters (OpenAI's limit).
const MAX_METADATA_KEY_CHARS: usize = 64;
/// Longest `metadata` value, in characters (OpenAI's limit).
const MAX_METADATA_VALUE_CHARS: usize = 512;

/// Checks `metadata` as OpenAI defines it: at most [`MAX_METADATA_PAIRS`] pairs of string
/// keys (up to [`MAX_METADATA_KEY_CHARS`] characters) and string values (up to
/// [`MAX_METADATA_VALUE_CHARS`] characters). Errors name `metadata` and the key.
fn check_metadata(metadata: &Map<String, Value>) -> Result<(), RequestError> {
    if metadata.len() > MAX_METADATA_PAIRS {
        return Err(RequestError::field(
            "metadata",
            format!(
                "at most {MAX_METADATA_PAIRS} pairs are allowed, got {}",
                metadata.len()
            ),
        ));
    }
    for (key, value) in metadata {
        if key.chars().count() > MAX_METADATA_KEY_CHARS {
            let shown: String = key.chars().take(MAX_METADATA_KEY_CHARS).collect();
            return Err(RequestError::field(
                "metadata",
                format!("the key {shown:?}... is longer than {MAX_METADATA_KEY_CHARS} characters"),
            ));
        }
        let path = || format!("metadata.{key}");
        let Value::String(text) = value else {
            return Err(RequestError::field(
                path(),
                "metadata values must be strings",
            ));
        };
        if text.chars().count() > MAX_METADATA_VALUE_CHARS {
            return Err(RequestError::field(
                path(),
                format!("values are at most {MAX_METADATA_VALUE_CHARS} characters"),
            ));
        }
    }
    Ok(())
}

fn think_of(effort: Option<&str>) -> Result<Option<Think>, RequestError> {
    match effort {
        None => Ok(None),
        Some("none") => Ok(Some(Think::Off)),
        Some("xhigh") => Ok(Some(Think::Max)),
        Some(level) => Think::from_effort(level).map(Some).ok_or_else(|| {
            RequestError::field(
                "reasoning.effort",
                format!(
                    "expected \"none\", \"minimal\", \"low\", \"medium\" or \"high\", got {level:?}"
                ),
            )
        }),
    }
}

/// The request parameters a response object repeats, with OpenAI's defaults, each
/// written as JSON once (a parameter the request left out is its default's static text).
fn echo_of(wire: &WireRequest) -> super::Echo {
    #[derive(serde::Serialize)]
    struct Reasoning<'a> {
        effort: Option<&'a str>,
        summary: Option<&'a str>,
    }
    let reasoning = wire.reasoning.as_ref();
    let mut echo = super::echo::EchoBuilder::default();
    echo.summary = reasoning.is_some_and(|r| r.summary.is_some());
    // Every request's echo has these keys, whatever it set.
    echo.request_keys = true;
    // In key order, as the echo keeps them (no sort); a parameter left out is its default's
    // static member.
    let (parallel, store) = (
        wire.parallel_tool_calls.unwrap_or(true),
        wire.store.unwrap_or(true),
    );
    echo.field_or(wire.instructions.as_ref(), member!("instructions", "null"))
        .field_or(wire.max_output_tokens, member!("max_output_tokens", "null"))
        .field_or(wire.metadata.as_ref(), member!("metadata", "{}"))
        .member(if parallel {
            member!("parallel_tool_calls", "true")
        } else {
            member!("parallel_tool_calls", "false")
        })
        .field_or(
            wire.previous_response_id.as_ref(),
            member!("previous_response_id", "null"),
        )
        .field_or(
            reasoning.map(|r| Reasoning {
                effort: r.effort.as_deref(),
                summary: r.summary.as_deref(),
            }),
            member!("reasoning", r#"{"effort":null,"summary":null}"#),
        )
        .member(if store {
            member!("store", "true")
        } else {
            member!("store", "false")
        })
        .field_or(wire.temperature, member!("temperature", "1.0"))
        .field_or(
            wire.text.as_ref().filter(|t| t.is_object()),
            member!("text", r#"{"format":{"type":"text"}}"#),
        )
        .field_or(
            wire.tool_choice.as_ref(),
            member!("tool_choice", r#""auto""#),
        )
        .field_or(
            Some(&wire.tools).filter(|t| !t.is_empty()),
            member!("tools", "[]"),
        )
        .field_or(wire.top_p, member!("top_p", "1.0"))
        .member(match wire.truncation {
            Some(Truncation::Auto) => member!("truncation", r#""auto""#),
            _ => member!("truncation", r#""disabled""#),
        })
        .field_or(wire.user.as_ref(), member!("user", "null"));
    echo.finish()
}

#[cfg(test)]
mod echo_tests {
    use super::*;

    /// The echo as it was built before [`super::super::Echo`]: a map of values.
    fn echo_as_values(wire: &WireRequest) -> Map<String, Value> {
        let mut echo = Map::new();
        let mut put = |k: &str, v: Value| {
            echo.insert(k.to_owned(), v);
        };
        put("instructions", json!(wire.instructions));
        put("max_output_tokens", json!(wire.max_output_tokens));
        put("metadata", json!(wire.metadata.clone().unwrap_or_default()));
        put(
            "parallel_tool_calls",
            json!(wire.parallel_tool_calls.unwrap_or(true)),
        );
        put("previous_response_id", json!(wire.previous_response_id));
        let reasoning = wire.reasoning.as_ref();
        put(
            "reasoning",
            json!({"effort": reasoning.and_then(|r| r.effort.clone()),
                   "summary": reasoning.and_then(|r| r.summary.clone())}),
        );
        put("store", json!(wire.store.unwrap_or(true)));
        put("temperature", json!(wire.temperature.unwrap_or(1.0)));
        put("top_p", json!(wire.top_p.unwrap_or(1.0)));
        put(
            "tool_choice",
            wire.tool_choice.clone().unwrap_or_else(|| json!("auto")),
        );
        put("tools", Value::Array(wire.tools.clone()));
        put(
            "text",
            wire.text
                .clone()
                .filter(Value::is_object)
                .unwrap_or_else(|| json!({"format": {"type": "text"}})),
        );
        put(
            "truncation",
            json!(match wire.truncation {
                Some(Truncation::Auto) => "auto",
                _ => "disabled",
            }),
        );
        put("user", json!(wire.user));
        echo
    }

    #[test]
    fn the_echo_is_what_the_values_wrote() {
        for body in [
            json!({"model": "m"}),
            json!({"model": "m", "input": "hi", "instructions": "be \"brief\"\n",
                   "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}}],
                   "tool_choice": {"type": "function", "name": "f"}, "parallel_tool_calls": false,
                   "max_output_tokens": 77, "temperature": 0.25, "top_p": 0.5,
                   "reasoning": {"effort": "high", "summary": "auto"},
                   "text": {"format": {"type": "json_object"}}, "metadata": {"k": "v", "a": "é"},
                   "store": false, "previous_response_id": "resp_1", "user": "u"}),
            json!({"model": "m", "tools": null, "tool_choice": null, "text": "plain",
                   "reasoning": {"summary": "detailed"}, "temperature": 1e-7}),
            json!({"model": "m", "reasoning": {"effort": "low", "summary": null}}),
        ] {
            let bytes = serde_json::to_vec(&body).unwrap();
            let wire: WireRequest = serde_json::from_slice(&bytes).unwrap();
            let (echo, by_values) = (
                echo_of(&wire),
                super::super::Echo::from_map(&echo_as_values(&wire)),
            );
            assert_eq!(echo, by_values, "{body}");
            assert_eq!(echo.asks_summary(), by_values.asks_summary(), "{body}");
        }
    }
}

#[cfg(test)]
mod store_tests {
    use super::*;

    #[test]
    fn a_string_input_is_kept_as_an_item_only_for_the_store() {
        let opts = DecodeOptions::default();
        let kept = decode_request(br#"{"model":"m","input":"hi"}"#, &opts).unwrap();
        assert_eq!(kept.input_items.len(), 1);
        let gone = decode_request(br#"{"model":"m","input":"hi","store":false}"#, &opts).unwrap();
        assert!(gone.input_items.is_empty());
        assert_eq!(gone.chat.messages, kept.chat.messages);
    }
}
