//! Responses `input` (a string or a list of typed items) -> chat [`Message`]s.
//!
//! Items map onto turns: `message` items keep their role (`developer` becomes `system`),
//! `function_call` and `custom_tool_call` items join the assistant turn before them (or
//! open one), `function_call_output` / `custom_tool_call_output` become tool results, and a
//! `reasoning` item becomes the thinking of the next assistant turn (a reasoning item between
//! two calls of one turn joins that turn's thinking: the calls stay in one assistant message,
//! as chat APIs want every call of a turn answered by the tool results right after it).
//! `encrypted_content` has no place in a chat request: it stays in the stored raw items only.

use serde::Deserialize;
use serde_json::{Map, Value};
use switchyard_core::{
    ContentPart, Image, Message, ParsedArguments, Role, ToolCall, parse_arguments_text,
};

use crate::request_error::RequestError;

/// The largest number of input items one request may carry.
pub(crate) const MAX_INPUT_ITEMS: usize = 100_000;

#[derive(Deserialize)]
struct WireMessage {
    role: String,
    #[serde(default)]
    content: Option<WireContent>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum WireContent {
    Text(String),
    Parts(Vec<Value>),
}

#[derive(Deserialize)]
struct WireFunctionCall {
    call_id: String,
    name: String,
    #[serde(default)]
    arguments: Option<Value>,
}

#[derive(Deserialize)]
struct WireCustomCall {
    call_id: String,
    name: String,
    #[serde(default)]
    input: String,
}

#[derive(Deserialize)]
struct WireCallOutput {
    call_id: String,
    #[serde(default)]
    output: Option<Value>,
}

#[derive(Deserialize)]
struct WireReasoning {
    #[serde(default)]
    summary: Vec<WireTextPart>,
    #[serde(default)]
    content: Option<Vec<WireTextPart>>,
}

#[derive(Deserialize)]
struct WireTextPart {
    #[serde(default)]
    text: String,
}

/// Builds the turns of a conversation from Responses input items.
#[derive(Default)]
pub(crate) struct Turns {
    pub(crate) messages: Vec<Message>,
    /// Reasoning waiting for the assistant turn it belongs to.
    pending_thinking: Option<String>,
}

impl Turns {
    /// Adds one input item (`path` names it in errors).
    pub(crate) fn push_item(&mut self, path: &str, item: Value) -> Result<(), RequestError> {
        let kind = item
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("message")
            .to_owned();
        match kind.as_str() {
            "message" => {
                let m: WireMessage = typed(path, item)?;
                self.push_message(path, m)
            }
            "function_call" => {
                let c: WireFunctionCall = typed(path, item)?;
                let arguments = call_arguments(&format!("{path}.arguments"), c.arguments)?;
                let (arguments, raw_arguments) = arguments;
                self.push_call(ToolCall {
                    id: c.call_id,
                    name: c.name,
                    arguments,
                    raw_arguments,
                });
                Ok(())
            }
            "custom_tool_call" => {
                let c: WireCustomCall = typed(path, item)?;
                let mut arguments = Map::new();
                arguments.insert("input".to_owned(), Value::String(c.input));
                self.push_call(ToolCall::new(c.call_id, c.name, arguments));
                Ok(())
            }
            "function_call_output" | "custom_tool_call_output" => {
                let o: WireCallOutput = typed(path, item)?;
                let mut msg = Message {
                    content: output_parts(o.output),
                    ..Message::text(Role::Tool, "")
                };
                msg.tool_call_id = Some(o.call_id).filter(|id| !id.is_empty());
                self.messages.push(msg);
                Ok(())
            }
            "reasoning" => {
                let r: WireReasoning = typed(path, item)?;
                let parts = match r.content {
                    Some(content) if !content.is_empty() => content,
                    _ => r.summary,
                };
                let text: Vec<String> = parts.into_iter().map(|p| p.text).collect();
                let text = text.join("\n\n");
                if !text.is_empty() {
                    let pending = self.pending_thinking.get_or_insert_with(String::new);
                    if !pending.is_empty() {
                        pending.push_str("\n\n");
                    }
                    pending.push_str(&text);
                }
                Ok(())
            }
            // Results of hosted tools (and OpenAI's encrypted compaction) that a client replays
            // from an earlier OpenAI answer: nothing a chat upstream could read.
            "web_search_call"
            | "file_search_call"
            | "code_interpreter_call"
            | "image_generation_call"
            | "compaction" => Ok(()),
            other => Err(RequestError::unsupported(
                format!("{path}.type"),
                format!("input items of type `{other}` cannot be sent to this model"),
            )),
        }
    }

    /// Adds a string `input`: one user message with one text part (what
    /// [`Self::push_item`] makes of the item `{"type":"message","role":"user",
    /// "content":[{"type":"input_text","text":...}]}`, without building and reading it).
    pub(crate) fn push_user_text(&mut self, text: String) {
        self.messages.push(Message {
            content: vec![ContentPart::Text(text)],
            ..Message::text(Role::User, "")
        });
    }

    fn push_message(&mut self, path: &str, m: WireMessage) -> Result<(), RequestError> {
        let role = match m.role.as_str() {
            "system" | "developer" => Role::System,
            "user" => Role::User,
            "assistant" => Role::Assistant,
            other => {
                return Err(RequestError::field(
                    format!("{path}.role"),
                    format!(
                        "expected \"user\", \"assistant\", \"system\" or \"developer\", got {other:?}"
                    ),
                ));
            }
        };
        let content = match m.content {
            None => Vec::new(),
            Some(WireContent::Text(t)) if t.is_empty() => Vec::new(),
            Some(WireContent::Text(t)) => vec![ContentPart::Text(t)],
            Some(WireContent::Parts(parts)) => {
                let mut out = Vec::with_capacity(parts.len());
                for (j, part) in parts.into_iter().enumerate() {
                    if let Some(p) = content_part(&format!("{path}.content[{j}]"), part)? {
                        out.push(p);
                    }
                }
                out
            }
        };
        let mut msg = Message {
            content,
            ..Message::text(role, "")
        };
        if role == Role::Assistant {
            msg.thinking = self.pending_thinking.take();
        }
        self.messages.push(msg);
        Ok(())
    }

    /// A call joins the assistant turn right before it (reasoning that came in between is
    /// added to that turn's thinking), or opens a new one.
    fn push_call(&mut self, call: ToolCall) {
        let thinking = self.pending_thinking.take();
        match self.messages.last_mut() {
            Some(last) if last.role == Role::Assistant => {
                if let Some(more) = thinking {
                    match last.thinking.as_mut() {
                        Some(t) if !t.is_empty() => {
                            t.push_str("\n\n");
                            t.push_str(&more);
                        }
                        _ => last.thinking = Some(more),
                    }
                }
                last.tool_calls.push(call);
            }
            _ => {
                let mut msg = Message {
                    content: Vec::new(),
                    ..Message::text(Role::Assistant, "")
                };
                msg.thinking = thinking;
                msg.tool_calls.push(call);
                self.messages.push(msg);
            }
        }
    }
}

fn typed<T: for<'de> Deserialize<'de>>(path: &str, item: Value) -> Result<T, RequestError> {
    serde_path_to_error::deserialize(item).map_err(|e| {
        let inner_path = e.path().to_string();
        let full = if inner_path == "." {
            path.to_owned()
        } else {
            format!("{path}.{inner_path}")
        };
        RequestError::field(full, e.into_inner().to_string())
    })
}

/// One content part; `None` for parts with nothing to send (an empty refusal).
fn content_part(path: &str, part: Value) -> Result<Option<ContentPart>, RequestError> {
    let kind = part.get("type").and_then(Value::as_str).unwrap_or("");
    let text_of = |key: &str| part.get(key).and_then(Value::as_str).map(str::to_owned);
    match kind {
        "input_text" | "output_text" | "text" | "summary_text" | "reasoning_text" => {
            let text = text_of("text")
                .ok_or_else(|| RequestError::field(format!("{path}.text"), "expected a string"))?;
            Ok(Some(ContentPart::Text(text)))
        }
        "refusal" => Ok(text_of("refusal")
            .filter(|t| !t.is_empty())
            .map(ContentPart::Text)),
        "input_image" => {
            let url = part
                .get("image_url")
                .and_then(|u| u.as_str().or_else(|| u.get("url").and_then(Value::as_str)));
            // `detail` (`auto`, `low`, `high`) sits beside `image_url` in the Responses API.
            let detail = text_of("detail");
            match url {
                Some(url) => Ok(Some(ContentPart::Image(
                    Image::from_url(url).with_detail(detail),
                ))),
                None => Err(RequestError::unsupported(
                    format!("{path}.image_url"),
                    "images must be given as a URL or a data: URL (file ids are not supported)",
                )),
            }
        }
        other => Err(RequestError::unsupported(
            format!("{path}.type"),
            format!("content parts of type `{other}` are not supported"),
        )),
    }
}

/// A function call's `arguments`: a JSON string holding an object (or the object itself),
/// with the string's text when the map would not write it back (see
/// [`ToolCall::raw_arguments`]).
fn call_arguments(path: &str, arguments: Option<Value>) -> Result<ParsedArguments, RequestError> {
    match arguments {
        None | Some(Value::Null) => Ok((Map::new(), None)),
        Some(Value::String(text)) if text.trim().is_empty() => Ok((Map::new(), None)),
        Some(Value::String(text)) => parse_arguments_text(&text)
            .ok_or_else(|| RequestError::field(path, "the string does not hold a JSON object")),
        Some(Value::Object(map)) => Ok((map, None)),
        Some(_) => Err(RequestError::field(
            path,
            "expected a string holding a JSON object",
        )),
    }
}

/// A tool output: a string, or a list of parts whose texts stay separate parts (one empty
/// text part when there is no text).
fn output_parts(output: Option<Value>) -> Vec<ContentPart> {
    let text = |t: String| vec![ContentPart::Text(t)];
    match output {
        None | Some(Value::Null) => text(String::new()),
        Some(Value::String(s)) => text(s),
        Some(Value::Array(parts)) => {
            let parts: Vec<ContentPart> = parts
                .into_iter()
                .filter_map(|p| match p {
                    Value::Object(mut p) => match p.remove("text") {
                        Some(Value::String(t)) => Some(ContentPart::Text(t)),
                        _ => None,
                    },
                    _ => None,
                })
                .collect();
            if parts.is_empty() {
                text(String::new())
            } else {
                parts
            }
        }
        Some(other) => text(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_image_detail_is_kept() {
        let part = serde_json::json!({
            "type": "input_image",
            "image_url": "https://x.test/a.png",
            "detail": "high"
        });
        let Ok(Some(ContentPart::Image(img))) = content_part("input[0].content[0]", part) else {
            panic!("an input_image decodes to an image part");
        };
        assert_eq!(img.detail(), Some("high"));
        let plain = serde_json::json!({"type": "input_image", "image_url": "https://x.test/a.png"});
        let Ok(Some(ContentPart::Image(img))) = content_part("input[0].content[0]", plain) else {
            panic!("an input_image decodes to an image part");
        };
        assert_eq!(img.detail(), None);
    }
}
