//! Responses `tools` and `tool_choice` -> chat [`ToolSpec`]s and [`ToolChoice`].
//!
//! `function` tools map one to one (`strict` is accepted and not forwarded). `custom`
//! (freeform) tools are offered to chat upstreams as a function with one string parameter
//! `input`; their names are remembered so the answer's calls go back as `custom_tool_call`.
//! Hosted tools (`web_search`, `file_search`, `code_interpreter`, ...) cannot run on a chat
//! upstream: refused naming the tool, or dropped when the caller allows it.

use serde_json::{Value, json};
use switchyard_core::{ToolChoice, ToolSpec};

use crate::request_error::RequestError;

/// The tools of one request, translated.
#[derive(Debug, Default)]
pub(crate) struct DecodedTools {
    pub(crate) specs: Vec<ToolSpec>,
    /// Names of the `custom` tools among `specs`.
    pub(crate) custom: Vec<String>,
    /// Types of the hosted tools left out (with `drop_unsupported_tools`).
    pub(crate) dropped: Vec<String>,
}

/// The JSON schema a `custom` tool is offered with to a chat upstream.
pub(crate) fn custom_tool_schema() -> Value {
    json!({
        "type": "object",
        "properties": { "input": { "type": "string", "description": "The tool's input, as free text." } },
        "required": ["input"],
        "additionalProperties": false
    })
}

/// Translates the `tools` list. A `namespace` (a named group of tools, as Codex sends) is
/// offered as its members.
pub(crate) fn decode_tools(
    tools: Vec<Value>,
    drop_hosted: bool,
) -> Result<DecodedTools, RequestError> {
    let mut out = DecodedTools::default();
    for (i, tool) in tools.into_iter().enumerate() {
        let path = format!("tools[{i}]");
        if tool.get("type").and_then(Value::as_str) == Some("namespace") {
            let Some(Value::Array(members)) = tool.get("tools") else {
                return Err(RequestError::field(
                    format!("{path}.tools"),
                    "expected a list",
                ));
            };
            for (j, member) in members.iter().enumerate() {
                decode_tool(&mut out, &format!("{path}.tools[{j}]"), member, drop_hosted)?;
            }
        } else {
            decode_tool(&mut out, &path, &tool, drop_hosted)?;
        }
    }
    Ok(out)
}

/// Translates one tool into `out`.
fn decode_tool(
    out: &mut DecodedTools,
    path: &str,
    tool: &Value,
    drop_hosted: bool,
) -> Result<(), RequestError> {
    let kind = tool.get("type").and_then(Value::as_str).unwrap_or("");
    let name = tool.get("name").and_then(Value::as_str).map(str::to_owned);
    let description = tool
        .get("description")
        .and_then(Value::as_str)
        .map(str::to_owned);
    match (kind, name) {
        ("function", Some(name)) => {
            let parameters = tool
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object", "properties": {}}));
            out.specs.push(ToolSpec {
                name,
                description,
                parameters,
            });
        }
        ("custom", Some(name)) => {
            out.custom.push(name.clone());
            out.specs.push(ToolSpec {
                name,
                description,
                parameters: custom_tool_schema(),
            });
        }
        ("function" | "custom", None) => {
            return Err(RequestError::field(
                format!("{path}.name"),
                "expected a string",
            ));
        }
        ("", _) => {
            return Err(RequestError::field(
                format!("{path}.type"),
                "expected a string",
            ));
        }
        (hosted, _) if drop_hosted => out.dropped.push(hosted.to_owned()),
        (hosted, _) => {
            return Err(RequestError::unsupported(
                format!("{path}.type"),
                format!(
                    "the hosted tool `{hosted}` cannot run on this gateway's models; remove \
                     it, or set `drop_unsupported_tools: true` on the route to leave it out"
                ),
            ));
        }
    }
    Ok(())
}

/// Translates `tool_choice`: a mode string, `{"type":"function"|"custom","name"}`, or
/// `{"type":"allowed_tools","mode"}` (read as its mode).
pub(crate) fn decode_tool_choice(
    choice: Option<Value>,
) -> Result<Option<ToolChoice>, RequestError> {
    let mode = |m: &str| -> Result<ToolChoice, RequestError> {
        Ok(match m {
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
        })
    };
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(m)) => mode(&m).map(Some),
        Some(Value::Object(obj)) => {
            let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "function" | "custom" => match obj.get("name").and_then(Value::as_str) {
                    Some(name) => Ok(Some(ToolChoice::Function(name.to_owned()))),
                    None => Err(RequestError::field("tool_choice.name", "expected a string")),
                },
                "allowed_tools" => {
                    mode(obj.get("mode").and_then(Value::as_str).unwrap_or("auto")).map(Some)
                }
                other => Err(RequestError::unsupported(
                    "tool_choice.type",
                    format!("choosing the hosted tool `{other}` is not supported"),
                )),
            }
        }
        Some(_) => Err(RequestError::field(
            "tool_choice",
            "expected a string or an object",
        )),
    }
}
