//! The chat request every provider understands: one representation for both client APIs.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::model::PrivacyClass;

/// One chat request, decoded from whichever API it arrived on.
///
/// Fields that neither API family shares end up in [`ChatRequest::extra`], so an
/// upstream receives provider-specific options untouched.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model the caller asked for: a route alias, `provider/model`, or a bare model name.
    pub model: String,
    /// The conversation so far.
    pub messages: Vec<Message>,
    /// Tools the model may call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<ToolSpec>,
    /// How the model should choose among the tools (OpenAI `tool_choice`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<ToolChoice>,
    /// Whether several tool calls may come in one turn (OpenAI `parallel_tool_calls`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    /// Sampling and length options.
    #[serde(default)]
    pub options: SamplingOptions,
    /// Constrained output: JSON mode or a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_format: Option<ResponseFormat>,
    /// Whether (and how hard) a reasoning model should think.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    /// How long an Ollama upstream keeps the model loaded afterwards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Whether the caller wants the answer streamed.
    #[serde(default)]
    pub stream: bool,
    /// Whether the caller asked for a usage record in the stream (OpenAI
    /// `stream_options.include_usage`). Upstreams are always asked for usage.
    #[serde(default)]
    pub include_usage: bool,
    /// Unknown top-level fields (and unknown Ollama `options`), carried to the upstream untouched.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra: Map<String, Value>,
    /// The client's request body exactly as it arrived, kept only by codecs whose upstream
    /// may take it verbatim (an Anthropic client to an Anthropic target: `cache_control`
    /// marks, thinking signatures and block types Switchyard does not model pass untouched).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub native_body: Option<String>,
    /// Who sent the request and under which policy. Never sent upstream.
    #[serde(default)]
    pub meta: RequestMeta,
}

impl ChatRequest {
    /// A request for `model` with the given messages and defaults everywhere else.
    pub fn new(model: impl Into<String>, messages: Vec<Message>) -> Self {
        Self {
            model: model.into(),
            messages,
            ..Self::default()
        }
    }

    /// The names of the tools offered in this request.
    pub fn tool_names(&self) -> impl Iterator<Item = &str> {
        self.tools.iter().map(|t| t.name.as_str())
    }

    /// The first part of the conversation that only the client's own API can carry
    /// ([`MessageExtras::untranslated`]), as its JSON path and what it is: a codec
    /// translating the request to another API refuses it, naming both.
    pub fn untranslated(&self) -> Option<(&str, &str)> {
        self.messages
            .iter()
            .find_map(|m| m.extras.untranslated.first())
            .map(|(path, what)| (path.as_str(), what.as_str()))
    }
}

/// Who is speaking in a [`Message`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Instructions for the model.
    System,
    /// The human (or agent) side.
    User,
    /// The model's own turns, including its tool calls.
    Assistant,
    /// The result of a tool call.
    Tool,
}

impl Role {
    /// The role as both APIs spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
        }
    }
}

/// One turn of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Message {
    /// Who is speaking.
    pub role: Role,
    /// Text and image parts, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub content: Vec<ContentPart>,
    /// The model's reasoning, when an assistant turn carried it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking: Option<String>,
    /// Tool calls made in an assistant turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
    /// On a tool result: the id of the call it answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_call_id: Option<String>,
    /// On a tool result: the name of the tool that produced it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// Details only some APIs carry (thinking signatures, tool errors); empty by default.
    #[serde(default, skip_serializing_if = "MessageExtras::is_empty")]
    pub extras: MessageExtras,
}

/// Parts of a [`Message`] only some APIs carry (Anthropic's thinking signatures,
/// `redacted_thinking` blocks and `tool_result.is_error`); the other codecs ignore them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageExtras {
    /// The signature of the turn's thinking, sent back unchanged to the provider that made it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thinking_signature: Option<String>,
    /// Opaque `redacted_thinking` data of an assistant turn, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redacted_thinking: Vec<String>,
    /// On a tool result: the tool failed (Anthropic `is_error`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_error: bool,
    /// In a whole answer: the [`crate::ChatEvent::Opaque`] events (citations, server-tool
    /// blocks), in order, for an encoder of the API they came from.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub opaque: Vec<crate::OpaqueMark>,
    /// Parts of the turn that only the client's own API can carry, left out of
    /// [`Message::content`] (an Anthropic image whose `source` is a Files API `file`): each
    /// as its JSON path in the client's body and what it is
    /// (`("messages[0].content[0].source", "an image source of type \"file\"")`). The
    /// client's body ([`ChatRequest::native_body`]) carries them to an upstream of that API;
    /// a codec translating to another API refuses the request rather than drop them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untranslated: Vec<(String, String)>,
}

impl MessageExtras {
    /// Whether nothing is set.
    pub fn is_empty(&self) -> bool {
        self == &Self::default()
    }
}

impl Message {
    /// A message from `role` with nothing in it yet (no parts, no tool calls).
    pub fn empty(role: Role) -> Self {
        Self {
            role,
            content: Vec::new(),
            thinking: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
            extras: MessageExtras::default(),
        }
    }

    /// A message with one text part.
    pub fn text(role: Role, text: impl Into<String>) -> Self {
        Self {
            role,
            content: vec![ContentPart::Text(text.into())],
            thinking: None,
            tool_calls: Vec::new(),
            tool_call_id: None,
            tool_name: None,
            extras: MessageExtras::default(),
        }
    }

    /// A system message.
    pub fn system(text: impl Into<String>) -> Self {
        Self::text(Role::System, text)
    }

    /// A user message.
    pub fn user(text: impl Into<String>) -> Self {
        Self::text(Role::User, text)
    }

    /// An assistant message.
    pub fn assistant(text: impl Into<String>) -> Self {
        Self::text(Role::Assistant, text)
    }

    /// A tool result answering the call `call_id` of tool `tool_name`.
    pub fn tool_result(
        call_id: impl Into<String>,
        tool_name: impl Into<String>,
        text: impl Into<String>,
    ) -> Self {
        Self {
            tool_call_id: Some(call_id.into()),
            tool_name: Some(tool_name.into()),
            ..Self::text(Role::Tool, text)
        }
    }

    /// All text parts joined, without separators (images are skipped).
    pub fn text_content(&self) -> String {
        let mut out = String::new();
        for part in &self.content {
            if let ContentPart::Text(t) = part {
                out.push_str(t);
            }
        }
        out
    }

    /// The image parts of this message.
    pub fn images(&self) -> impl Iterator<Item = &Image> {
        self.content.iter().filter_map(|p| match p {
            ContentPart::Image(img) => Some(img),
            ContentPart::Text(_) => None,
        })
    }
}

/// One part of a message's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "value")]
pub enum ContentPart {
    /// Plain text.
    Text(String),
    /// An image.
    Image(Image),
}

/// An image attached to a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Image {
    /// Inline bytes, base64-encoded (Ollama's `images[]`, OpenAI's `data:` URLs).
    Base64 {
        /// The media type when known (`image/png`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        media_type: Option<String>,
        /// The base64 text, without any `data:` prefix.
        data: String,
        /// OpenAI's `image_url.detail` (`auto`, `low`, `high`) when the client gave one;
        /// written only to OpenAI-compatible upstreams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
    /// A remote URL the upstream must fetch itself (OpenAI only).
    Url {
        /// The address.
        url: String,
        /// OpenAI's `image_url.detail` (`auto`, `low`, `high`) when the client gave one;
        /// written only to OpenAI-compatible upstreams.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl Image {
    /// The image as an OpenAI `image_url.url` value (a `data:` URL for inline bytes).
    pub fn to_url(&self) -> String {
        match self {
            Image::Base64 { data, .. } => {
                let mt = self.media_type_or_sniffed().unwrap_or("image/png");
                format!("data:{mt};base64,{data}")
            }
            Image::Url { url, .. } => url.clone(),
        }
    }

    /// Parses an OpenAI `image_url.url` value: `data:` URLs become inline bytes.
    pub fn from_url(url: &str) -> Self {
        if let Some(rest) = url.strip_prefix("data:") {
            if let Some((header, data)) = rest.split_once(',') {
                if let Some(mt) = header.strip_suffix(";base64") {
                    let media_type = (!mt.is_empty()).then(|| mt.to_owned());
                    return Image::Base64 {
                        media_type,
                        data: data.to_owned(),
                        detail: None,
                    };
                }
            }
        }
        Image::Url {
            url: url.to_owned(),
            detail: None,
        }
    }

    /// The same image with OpenAI's `detail` hint set (`None` keeps it unset).
    #[must_use]
    pub fn with_detail(mut self, value: Option<String>) -> Self {
        match &mut self {
            Image::Base64 { detail, .. } | Image::Url { detail, .. } => *detail = value,
        }
        self
    }

    /// OpenAI's `detail` hint (`auto`, `low`, `high`), when the client gave one.
    pub fn detail(&self) -> Option<&str> {
        match self {
            Image::Base64 { detail, .. } | Image::Url { detail, .. } => detail.as_deref(),
        }
    }

    /// The media type of inline bytes: the one given, else one recognised from the first
    /// bytes (PNG, JPEG, GIF, WebP). `None` for a URL or for bytes not recognised, where
    /// callers that must name a type keep using `image/png`.
    pub fn media_type_or_sniffed(&self) -> Option<&str> {
        match self {
            Image::Base64 {
                media_type: Some(mt),
                ..
            } if !mt.is_empty() => Some(mt),
            Image::Base64 { data, .. } => sniff_media_type(data),
            Image::Url { .. } => None,
        }
    }
}

/// Recognises an image format from the start of its base64 text. Only the first 16
/// characters (12 bytes) are decoded; anything that is not valid base64 there is `None`.
fn sniff_media_type(data: &str) -> Option<&'static str> {
    let mut head = [0u8; 12];
    let mut len = 0;
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in data.trim_start().bytes().take(16) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => break,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            head[len] = ((acc >> bits) & 0xff) as u8;
            len += 1;
        }
    }
    let head = &head[..len];
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if head.starts_with(&[0xff, 0xd8, 0xff]) {
        Some("image/jpeg")
    } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
        Some("image/gif")
    } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// A complete tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The call's id, used by the tool result to answer it (`call_…`).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments: always a JSON object.
    #[serde(default)]
    pub arguments: Map<String, Value>,
    /// The arguments as the model wrote them (the JSON text of an object), kept when
    /// writing [`arguments`](Self::arguments) again would not give the same text: other
    /// spacing, or a number a `Value` cannot hold exactly (an integer beyond 64 bits
    /// becomes an `f64`). Encoders send this text when present, so a client or an
    /// upstream reads the numbers the model wrote. `None` when the text is what
    /// `arguments` serialises to, or the call was not made from text. Code that changes
    /// `arguments` must clear it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw_arguments: Option<Box<str>>,
}

impl ToolCall {
    /// A call with these arguments (and no written text apart from them).
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: Map<String, Value>,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            raw_arguments: None,
        }
    }

    /// The arguments as JSON text: as the model wrote them when known, else `arguments`
    /// serialised.
    pub fn arguments_json(&self) -> std::borrow::Cow<'_, str> {
        match &self.raw_arguments {
            Some(raw) => std::borrow::Cow::Borrowed(raw),
            None => std::borrow::Cow::Owned(
                serde_json::to_string(&self.arguments).unwrap_or_else(|_| "{}".to_owned()),
            ),
        }
    }

    /// The arguments for a wire format that carries them as a JSON object (Ollama's
    /// `arguments`, Anthropic's `input`): serialises (with serde_json) as the written
    /// text when known, else as `arguments`.
    pub fn arguments_object(&self) -> ArgumentsObject<'_> {
        ArgumentsObject::new(&self.arguments, self.raw_arguments.as_deref())
    }
}

/// Tool-call arguments serialised as a JSON object: the text the model wrote when it is
/// known (see [`ToolCall::raw_arguments`]), else the map. Meant for serde_json serializers
/// only (the written text goes out through [`RawValue`](serde_json::value::RawValue)).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArgumentsObject<'a> {
    arguments: &'a Map<String, Value>,
    raw: Option<&'a str>,
}

impl<'a> ArgumentsObject<'a> {
    /// `arguments`, written as `raw` when that is given (it must be the JSON text of the
    /// same object; text that is not JSON is ignored and the map written).
    pub fn new(arguments: &'a Map<String, Value>, raw: Option<&'a str>) -> Self {
        ArgumentsObject { arguments, raw }
    }
}

impl<'a> From<&'a Map<String, Value>> for ArgumentsObject<'a> {
    fn from(arguments: &'a Map<String, Value>) -> Self {
        ArgumentsObject::new(arguments, None)
    }
}

impl Serialize for ArgumentsObject<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if let Some(raw) = self.raw
            && let Ok(raw) = serde_json::from_str::<&serde_json::value::RawValue>(raw)
        {
            return raw.serialize(serializer);
        }
        self.arguments.serialize(serializer)
    }
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// The tool's name.
    pub name: String,
    /// What the tool does, for the model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// JSON schema of the arguments object.
    #[serde(default = "empty_object_schema")]
    pub parameters: Value,
}

fn empty_object_schema() -> Value {
    serde_json::json!({"type": "object", "properties": {}})
}

/// OpenAI's `tool_choice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolChoice {
    /// The model decides.
    Auto,
    /// No tool calls.
    None,
    /// At least one tool call.
    Required,
    /// This tool must be called.
    Function(String),
}

/// Sampling and length options shared by both API families.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SamplingOptions {
    /// Sampling temperature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f64>,
    /// Nucleus sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_p: Option<f64>,
    /// Top-k sampling (Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub top_k: Option<u32>,
    /// Output limit in tokens (`num_predict`, `max_tokens`, `max_completion_tokens`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub stop: Vec<String>,
    /// Seed for reproducible sampling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seed: Option<i64>,
    /// Context window to allocate (Ollama `num_ctx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_ctx: Option<u32>,
    /// Presence penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub presence_penalty: Option<f64>,
    /// Frequency penalty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub frequency_penalty: Option<f64>,
}

/// Constrained output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type")]
pub enum ResponseFormat {
    /// Free text (the default).
    Text,
    /// Any JSON value (Ollama `format: "json"`, OpenAI `json_object`).
    Json,
    /// JSON matching a schema.
    JsonSchema {
        /// The schema's name (OpenAI requires one).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// The schema.
        schema: Value,
        /// OpenAI's `strict` flag.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        strict: Option<bool>,
    },
}

/// Whether a reasoning model should think, and how hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Think {
    /// Thinking off.
    Off,
    /// Thinking on at the model's default effort.
    On,
    /// Minimal effort (OpenAI `reasoning_effort: minimal`).
    Minimal,
    /// Low effort.
    Low,
    /// Medium effort.
    Medium,
    /// High effort.
    High,
    /// Maximum effort (Ollama `think: "max"`).
    Max,
}

impl Think {
    /// The effort level as a string, or `None` for plain on/off.
    pub fn effort(self) -> Option<&'static str> {
        match self {
            Think::Off | Think::On => None,
            Think::Minimal => Some("minimal"),
            Think::Low => Some("low"),
            Think::Medium => Some("medium"),
            Think::High => Some("high"),
            Think::Max => Some("max"),
        }
    }

    /// Parses an effort string (`low`, `medium`, ...).
    pub fn from_effort(s: &str) -> Option<Self> {
        Some(match s {
            "minimal" => Think::Minimal,
            "low" => Think::Low,
            "medium" => Think::Medium,
            "high" => Think::High,
            "max" => Think::Max,
            _ => return None,
        })
    }
}

/// Ollama's `keep_alive`: a duration string (`"5m"`) or a number of seconds
/// (negative: forever, zero: unload now). Carried through unchanged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KeepAlive {
    /// Seconds.
    Seconds(f64),
    /// A Go duration string such as `"5m"` or `"1h30m"`.
    Duration(String),
}

/// Who sent a request and under which policy. Filled by the gateway; never sent upstream.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestMeta {
    /// The id of the caller's API key, when authenticated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caller: Option<String>,
    /// The privacy class requested by the caller (key policy or request header).
    /// `None` means "not stated": the route or the global default decides.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub privacy: Option<PrivacyClass>,
    /// The request id, for logs and response headers.
    #[serde(default)]
    pub request_id: String,
    /// The API the request arrived on. Fields in [`ChatRequest::extra`] are passed only to
    /// upstreams that speak the same API (an unknown OpenAI field means nothing to Ollama).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_api: Option<ApiFamily>,
    /// The `anthropic-beta` header an Anthropic client sent (a comma list): Anthropic
    /// targets receive it with their configured values; nothing else does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub anthropic_beta: Option<String>,
    /// The task the caller names (the `x-switchyard-task` header), which a route's task
    /// rules may match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<String>,
}

/// The API families Switchyard speaks, on either side.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApiFamily {
    /// Ollama's native API (`/api/chat`, NDJSON streams).
    Ollama,
    /// OpenAI's chat-completions API (`/v1/chat/completions`, SSE streams).
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API (`/v1/messages`, SSE streams of typed events).
    Anthropic,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inline(data: &str) -> Image {
        Image::Base64 {
            media_type: None,
            data: data.to_owned(),
            detail: None,
        }
    }

    #[test]
    fn sniffs_common_image_formats_from_base64() {
        // 1x1 images' openings: PNG, JPEG, GIF89a, GIF87a, WebP.
        let cases = [
            ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAAB", "image/png"),
            ("/9j/4AAQSkZJRgABAQAAAQABAAD/2wBD", "image/jpeg"),
            ("R0lGODlhAQABAIAAAP///wAAACH5BAEA", "image/gif"),
            ("R0lGODdhAQABAIAAAP///wAAACwAAAAA", "image/gif"),
            ("UklGRiQAAABXRUJQVlA4IBgAAAAwAQCd", "image/webp"),
        ];
        for (data, want) in cases {
            assert_eq!(inline(data).media_type_or_sniffed(), Some(want), "{data}");
            assert_eq!(
                inline(data).to_url(),
                format!("data:{want};base64,{data}"),
                "{data}"
            );
        }
    }

    #[test]
    fn unknown_or_short_bytes_are_not_sniffed_and_urls_keep_png() {
        for data in [
            "",
            "AAAA",
            "iVBO",
            "UklGRiQAAABBVkkg",
            "not base64!",
            "%%%%",
        ] {
            assert_eq!(inline(data).media_type_or_sniffed(), None, "{data}");
            assert_eq!(
                inline(data).to_url(),
                format!("data:image/png;base64,{data}")
            );
        }
    }

    #[test]
    fn a_given_media_type_wins_over_the_bytes() {
        let img = Image::Base64 {
            media_type: Some("image/png".into()),
            data: "/9j/4AAQ".into(),
            detail: None,
        };
        assert_eq!(img.media_type_or_sniffed(), Some("image/png"));
        let url = Image::from_url("https://x.test/a.jpg");
        assert_eq!(url.media_type_or_sniffed(), None);
    }

    #[test]
    fn detail_is_kept_and_skipped_when_absent() {
        let img = Image::from_url("https://x.test/a.png").with_detail(Some("low".into()));
        assert_eq!(img.detail(), Some("low"));
        let json = serde_json::to_value(&img).unwrap();
        assert_eq!(json["detail"], "low");
        let plain = serde_json::to_value(Image::from_url("https://x.test/a.png")).unwrap();
        assert!(plain.get("detail").is_none(), "{plain}");
        let back: Image = serde_json::from_value(plain).unwrap();
        assert_eq!(back.detail(), None);
    }
}
