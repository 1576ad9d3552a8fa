//! Errors of the request codecs (client wire JSON <-> [`switchyard_core::ChatRequest`]),
//! and the small helpers both API families share (error mapping, `null` tolerance,
//! pairing tool results with calls, passing unknown fields through).

use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use switchyard_core::{
    ChatRequest, Message, ParsedArguments, Role, ToolSpec, parse_arguments_text,
};

/// Why a chat request body could not be decoded, or a request could not be encoded for
/// an upstream. Messages name the field path (`messages[2].tool_calls[0].function.arguments`)
/// and, for JSON syntax errors, the line and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    /// The body is not JSON (or not complete JSON).
    #[error("invalid JSON at line {line}, column {column}: {message}")]
    InvalidJson {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What the parser said.
        message: String,
    },
    /// A field is missing, has the wrong type, or holds a value that is not allowed.
    #[error("invalid field `{path}`: {message}")]
    InvalidField {
        /// Where the field is (`.` for the body itself).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The request uses something the target API cannot express (an image URL for an
    /// Ollama upstream, `n > 1`, ...).
    #[error("unsupported `{path}`: {message}")]
    Unsupported {
        /// Where the field is.
        path: String,
        /// Why it cannot be carried.
        message: String,
    },
    /// Serialising the upstream body failed (a value JSON cannot hold).
    #[error("could not encode the request: {message}")]
    Encode {
        /// What the serialiser said.
        message: String,
    },
}

impl RequestError {
    /// A stable snake_case code for logs, metrics labels and API error bodies.
    pub fn reason_code(&self) -> &'static str {
        match self {
            RequestError::InvalidJson { .. } => "invalid_json",
            RequestError::InvalidField { .. } => "invalid_field",
            RequestError::Unsupported { .. } => "unsupported",
            RequestError::Encode { .. } => "encode_failed",
        }
    }

    /// The field path the error is about, when there is one.
    pub fn path(&self) -> Option<&str> {
        match self {
            RequestError::InvalidField { path, .. } | RequestError::Unsupported { path, .. } => {
                Some(path)
            }
            RequestError::InvalidJson { .. } | RequestError::Encode { .. } => None,
        }
    }

    pub(crate) fn field(path: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError::InvalidField {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn unsupported(path: impl Into<String>, message: impl Into<String>) -> Self {
        RequestError::Unsupported {
            path: path.into(),
            message: message.into(),
        }
    }

    pub(crate) fn encode(err: &serde_json::Error) -> Self {
        RequestError::Encode {
            message: err.to_string(),
        }
    }
}

/// Refuses a request holding a part only the client's own API can carry
/// ([`ChatRequest::untranslated`], an Anthropic Files API image) on its way to `upstream`
/// (another API's): the error names the part's path, before any byte is sent, rather
/// than the part being dropped.
pub(crate) fn refuse_untranslated(req: &ChatRequest, upstream: &str) -> Result<(), RequestError> {
    match req.untranslated() {
        None => Ok(()),
        Some((path, what)) => Err(RequestError::unsupported(
            path,
            format!(
                "{what} cannot be sent to {upstream}; only an upstream of the client's own API takes it"
            ),
        )),
    }
}

/// Deserialises a whole request body into `T`, turning serde errors into
/// [`RequestError`]s that carry the field path or the line and column.
///
/// A valid body is decoded once, without path tracking (it costs about as much as the
/// decoding itself); only a body that fails is decoded again to name the field.
pub(crate) fn decode_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, RequestError> {
    if let Ok(value) = crate::json_util::from_json_bytes(body) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        json_error(&path, &inner)
    })?;
    de.end().map_err(|e| json_error(".", &e))?;
    Ok(value)
}

fn json_error(path: &str, err: &serde_json::Error) -> RequestError {
    use serde_json::error::Category;
    match err.classify() {
        Category::Data => {
            // serde_json appends " at line L column C" to data errors; the path says more.
            let full = err.to_string();
            let message = match full.rfind(" at line ") {
                Some(cut) => full[..cut].to_owned(),
                None => full,
            };
            RequestError::field(path, message)
        }
        Category::Syntax | Category::Eof | Category::Io => {
            let full = err.to_string();
            let message = match full.rfind(" at line ") {
                Some(cut) => full[..cut].to_owned(),
                None => full,
            };
            RequestError::InvalidJson {
                line: err.line(),
                column: err.column(),
                message,
            }
        }
    }
}

/// `null` (or absence, with `#[serde(default)]`) becomes the type's default.
pub(crate) fn nullable<'de, D, T>(de: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(de)?.unwrap_or_default())
}

/// One string or a list of strings (`stop`).
#[derive(Debug)]
pub(crate) enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

crate::open_object::string_or_list!(OneOrMany::One | Many);

impl OneOrMany {
    pub(crate) fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// A seed for [`switchyard_core::tool_call_id`] that is unique per (message, call) position,
/// so ids synthesised for a conversation's history are the same on every turn.
pub(crate) fn synthetic_id_seed(message: usize, call: usize) -> u64 {
    let m = u64::try_from(message).unwrap_or(u64::MAX);
    let c = u64::try_from(call).unwrap_or(u64::MAX);
    (m << 20) ^ c ^ 0x5357_4954_4348_5944 // "SWITCHYD"
}

/// Gives every tool result a `tool_call_id` and a `tool_name` where the client left one
/// out, from the assistant calls before it: a result naming an id takes the name of that
/// call; a result without an id answers the first unanswered call of the latest assistant
/// turn with the same tool name (or, without a name, the first unanswered call).
pub(crate) fn pair_tool_results(messages: &mut [Message]) {
    // (id, name, answered) of the calls of the latest assistant turn with calls.
    let mut open: Vec<(String, String, bool)> = Vec::new();
    // Every call seen so far, for name lookups by id. Bounded by the request's size.
    let mut seen: Vec<(String, String)> = Vec::new();
    for msg in messages.iter_mut() {
        match msg.role {
            Role::Assistant if !msg.tool_calls.is_empty() => {
                open = msg
                    .tool_calls
                    .iter()
                    .map(|c| (c.id.clone(), c.name.clone(), false))
                    .collect();
                seen.extend(
                    msg.tool_calls
                        .iter()
                        .map(|c| (c.id.clone(), c.name.clone())),
                );
            }
            Role::Tool => {
                if let Some(id) = msg.tool_call_id.as_deref() {
                    if let Some(slot) = open.iter_mut().find(|(cid, _, _)| cid == id) {
                        slot.2 = true;
                    }
                    if msg.tool_name.is_none() {
                        msg.tool_name = seen
                            .iter()
                            .rev()
                            .find(|(cid, _)| cid == id)
                            .map(|(_, name)| name.clone());
                    }
                } else {
                    let by_name = msg.tool_name.as_deref().and_then(|wanted| {
                        open.iter()
                            .position(|(_, name, answered)| !*answered && name == wanted)
                    });
                    let pos = by_name.or_else(|| open.iter().position(|(_, _, a)| !*a));
                    if let Some(slot) = pos.and_then(|p| open.get_mut(p)) {
                        slot.2 = true;
                        msg.tool_call_id = Some(slot.0.clone());
                        if msg.tool_name.is_none() {
                            msg.tool_name = Some(slot.1.clone());
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Unknown top-level fields carried to an upstream of the same API, flattened into the
/// body, minus the fields the encoder sets itself (those are never overridden).
pub(crate) struct Extra<'a> {
    pub(crate) map: Option<&'a Map<String, Value>>,
    pub(crate) reserved: &'a [&'a str],
}

impl Serialize for Extra<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(None)?;
        if let Some(extra) = self.map {
            for (k, v) in extra {
                if !self.reserved.contains(&k.as_str()) {
                    map.serialize_entry(k, v)?;
                }
            }
        }
        map.end()
    }
}

/// A tool call in a request's assistant message, as both APIs write it
/// (`{"id"?, "function": {"name", "arguments"?}}`; `arguments` an object or a JSON string).
#[derive(Deserialize)]
pub(crate) struct WireToolCall {
    #[serde(default)]
    pub(crate) id: Option<String>,
    pub(crate) function: WireFunctionCall,
}

/// The `function` of a [`WireToolCall`].
#[derive(Deserialize)]
pub(crate) struct WireFunctionCall {
    pub(crate) name: String,
    /// Kept as the client wrote it, so that an object's numbers a `Value` cannot hold
    /// exactly (an integer beyond 64 bits) reach the upstream as written.
    #[serde(default)]
    pub(crate) arguments: Option<Box<RawValue>>,
}

/// Why a history tool call's `arguments` were refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ArgumentsRefused {
    /// A JSON string that does not hold a JSON object.
    StringWithoutObject,
    /// Neither an object, nor a string, nor null.
    NotAnObject,
}

impl WireFunctionCall {
    /// The call's arguments: the object (given as an object or as a JSON string holding
    /// one) and, when writing that object again would not give the client's text back, the
    /// text ([`switchyard_core::ToolCall::raw_arguments`]). Absent, `null` and an empty
    /// string are no arguments.
    pub(crate) fn parsed_arguments(&self) -> Result<ParsedArguments, ArgumentsRefused> {
        let Some(raw) = &self.arguments else {
            return Ok((Map::new(), None));
        };
        let text = raw.get();
        match text.as_bytes().first() {
            Some(b'{') => parse_arguments_text(text).ok_or(ArgumentsRefused::NotAnObject),
            Some(b'"') => {
                let inner: String = serde_json::from_str(text)
                    .map_err(|_| ArgumentsRefused::StringWithoutObject)?;
                parse_arguments_text(&inner).ok_or(ArgumentsRefused::StringWithoutObject)
            }
            _ if text == "null" => Ok((Map::new(), None)),
            _ => Err(ArgumentsRefused::NotAnObject),
        }
    }
}

/// A tool offered in a request, as both APIs write it (`{"function": {..}}`).
#[derive(Deserialize)]
pub(crate) struct WireTool {
    pub(crate) function: WireToolFunction,
}

impl WireTool {
    /// The tool as core describes it; a missing or `null` schema becomes an empty object schema.
    pub(crate) fn into_spec(self) -> ToolSpec {
        ToolSpec {
            name: self.function.name,
            description: self.function.description,
            parameters: self
                .function
                .parameters
                .filter(|p| !p.is_null())
                .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}})),
        }
    }
}

/// The `function` of a [`WireTool`].
#[derive(Deserialize)]
pub(crate) struct WireToolFunction {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) parameters: Option<Value>,
    /// OpenAI's structured-outputs flag for calls; [`ToolSpec`] has no field for it, so the
    /// OpenAI codec carries it beside the spec (the Ollama codec ignores it).
    #[serde(default)]
    pub(crate) strict: Option<bool>,
}

/// An offered tool as both request bodies carry it (serialize side):
/// `{"type":"function","function":{"name","description"?,"parameters","strict"?}}`.
#[derive(Serialize)]
pub(crate) struct OutTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: OutToolFunction<'a>,
}

#[derive(Serialize)]
struct OutToolFunction<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
    parameters: &'a Value,
    /// OpenAI's `strict`, sent only when the client set it.
    #[serde(skip_serializing_if = "Option::is_none")]
    strict: Option<bool>,
}

impl<'a> OutTool<'a> {
    /// The wire form of `tool`.
    pub(crate) fn new(tool: &'a ToolSpec) -> Self {
        OutTool {
            kind: "function",
            function: OutToolFunction {
                name: &tool.name,
                description: tool.description.as_deref(),
                parameters: &tool.parameters,
                strict: None,
            },
        }
    }

    /// The same tool with OpenAI's `strict` flag (`None` leaves it out).
    pub(crate) fn with_strict(mut self, strict: Option<bool>) -> Self {
        self.function.strict = strict;
        self
    }
}
