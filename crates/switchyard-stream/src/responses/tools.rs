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
    /// Where each of `specs` came from, in the same order (for `allowed_tools`).
    origins: Vec<Origin>,
}

/// What a [`ToolSpec`] was in the request's `tools`.
#[derive(Debug, Clone)]
struct Origin {
    /// `function` or `custom`.
    kind: &'static str,
    /// The `namespace` the tool was a member of.
    namespace: Option<String>,
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
            let namespace = tool.get("name").and_then(Value::as_str);
            for (j, member) in members.iter().enumerate() {
                let path = format!("{path}.tools[{j}]");
                decode_tool(&mut out, &path, member, namespace, drop_hosted)?;
            }
        } else {
            decode_tool(&mut out, &path, &tool, None, drop_hosted)?;
        }
    }
    Ok(out)
}

/// Translates one tool (a member of `namespace`, when given) into `out`.
fn decode_tool(
    out: &mut DecodedTools,
    path: &str,
    tool: &Value,
    namespace: Option<&str>,
    drop_hosted: bool,
) -> Result<(), RequestError> {
    let origin = |kind| Origin {
        kind,
        namespace: namespace.map(str::to_owned),
    };
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
            out.origins.push(origin("function"));
        }
        ("custom", Some(name)) => {
            out.custom.push(name.clone());
            out.specs.push(ToolSpec {
                name,
                description,
                parameters: custom_tool_schema(),
            });
            out.origins.push(origin("custom"));
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
/// `{"type":"allowed_tools","mode","tools"}`, which keeps in `tools` only the listed tools
/// (see [`restrict_tools`]) and reads `mode` (`auto` or `required`; absent means `auto`).
pub(crate) fn decode_tool_choice(
    choice: Option<Value>,
    tools: &mut DecodedTools,
) -> Result<Option<ToolChoice>, RequestError> {
    match choice {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(m)) => Ok(Some(match m.as_str() {
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
        })),
        Some(Value::Object(obj)) => {
            let kind = obj.get("type").and_then(Value::as_str).unwrap_or("");
            match kind {
                "function" | "custom" => match obj.get("name").and_then(Value::as_str) {
                    Some(name) => Ok(Some(ToolChoice::Function(name.to_owned()))),
                    None => Err(RequestError::field("tool_choice.name", "expected a string")),
                },
                "allowed_tools" => {
                    let choice = match obj.get("mode").unwrap_or(&Value::Null) {
                        Value::Null => ToolChoice::Auto,
                        Value::String(m) if m == "auto" => ToolChoice::Auto,
                        Value::String(m) if m == "required" => ToolChoice::Required,
                        other => {
                            return Err(RequestError::field(
                                "tool_choice.mode",
                                format!("expected \"auto\" or \"required\", got {other}"),
                            ));
                        }
                    };
                    let Some(Value::Array(allowed)) = obj.get("tools") else {
                        return Err(RequestError::field("tool_choice.tools", "expected a list"));
                    };
                    restrict_tools(tools, allowed)?;
                    Ok(Some(choice))
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

/// Keeps in `tools` only those `allowed` (an `allowed_tools` choice's `tools`) lists: a
/// `function` or `custom` entry by its type and name, a `namespace` entry as all its
/// members, any other (hosted) type by its type. An entry that names no tool of the
/// request is an error naming it.
fn restrict_tools(tools: &mut DecodedTools, allowed: &[Value]) -> Result<(), RequestError> {
    let mut keep = vec![false; tools.specs.len()];
    for (i, entry) in allowed.iter().enumerate() {
        let path = format!("tool_choice.tools[{i}]");
        let kind = entry
            .get("type")
            .and_then(Value::as_str)
            .ok_or_else(|| RequestError::field(format!("{path}.type"), "expected a string"))?;
        let name = entry.get("name").and_then(Value::as_str);
        let mut found = false;
        match (kind, name) {
            ("function" | "custom" | "namespace", None) => {
                return Err(RequestError::field(
                    format!("{path}.name"),
                    "expected a string",
                ));
            }
            ("namespace", Some(name)) => {
                for (k, origin) in tools.origins.iter().enumerate() {
                    if origin.namespace.as_deref() == Some(name) {
                        keep[k] = true;
                        found = true;
                    }
                }
            }
            ("function" | "custom", Some(name)) => {
                let specs = tools.specs.iter().zip(&tools.origins);
                for (k, (spec, origin)) in specs.enumerate() {
                    if origin.kind == kind && spec.name == name {
                        keep[k] = true;
                        found = true;
                    }
                }
            }
            // A hosted tool: among `tools` only as one left out (a hosted tool that is not
            // left out was refused already), so nothing more is offered.
            (hosted, _) => found = tools.dropped.iter().any(|d| d == hosted),
        }
        if !found {
            let shown = name.map_or_else(|| format!("`{kind}`"), |n| format!("{kind} `{n}`"));
            return Err(RequestError::field(
                path,
                format!("the allowed tool {shown} is not among the request's `tools`"),
            ));
        }
    }
    let mut keep_iter = keep.iter();
    tools
        .specs
        .retain(|_| keep_iter.next().copied().unwrap_or(false));
    let mut keep_iter = keep.iter();
    tools
        .origins
        .retain(|_| keep_iter.next().copied().unwrap_or(false));
    let specs = &tools.specs;
    tools
        .custom
        .retain(|name| specs.iter().any(|s| &s.name == name));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(
        tools: Value,
        choice: Value,
    ) -> Result<(DecodedTools, Option<ToolChoice>), RequestError> {
        let Value::Array(tools) = tools else {
            panic!("tools must be a list")
        };
        let mut decoded = decode_tools(tools, true)?;
        let choice = decode_tool_choice(Some(choice), &mut decoded)?;
        Ok((decoded, choice))
    }

    fn names(tools: &DecodedTools) -> Vec<&str> {
        tools.specs.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn allowed_tools_keeps_only_the_listed_tools() {
        let tools = json!([
            {"type": "function", "name": "a"},
            {"type": "custom", "name": "b"},
            {"type": "function", "name": "c"},
            {"type": "namespace", "name": "ns", "tools": [{"type": "function", "name": "d"}]},
            {"type": "web_search"}
        ]);
        let choice = json!({"type": "allowed_tools", "mode": "required", "tools": [
            {"type": "custom", "name": "b"}, {"type": "function", "name": "c"},
            {"type": "web_search"}]});
        let (decoded, mode) = decode(tools.clone(), choice).unwrap();
        assert_eq!(names(&decoded), ["b", "c"]);
        assert_eq!(decoded.custom, ["b"]);
        assert_eq!(mode, Some(ToolChoice::Required));

        let choice = json!({"type": "allowed_tools", "mode": "auto", "tools": [
            {"type": "namespace", "name": "ns"}, {"type": "function", "name": "a"}]});
        let (decoded, mode) = decode(tools.clone(), choice).unwrap();
        assert_eq!(names(&decoded), ["a", "d"]);
        assert!(decoded.custom.is_empty());
        assert_eq!(mode, Some(ToolChoice::Auto));
    }

    #[test]
    fn allowed_tools_refuses_other_modes_and_unknown_tools() {
        let tools = json!([{"type": "function", "name": "a"}, {"type": "custom", "name": "b"}]);
        for (choice, path, says) in [
            (
                json!({"type": "allowed_tools", "mode": "none", "tools": []}),
                "tool_choice.mode",
                "none",
            ),
            (
                json!({"type": "allowed_tools", "mode": "auto"}),
                "tool_choice.tools",
                "list",
            ),
            (
                json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "zz"}]}),
                "tool_choice.tools[0]",
                "zz",
            ),
            (
                json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "b"}]}),
                "tool_choice.tools[0]",
                "function `b`",
            ),
            (
                json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function", "name": "a"}, {"type": "file_search"}]}),
                "tool_choice.tools[1]",
                "file_search",
            ),
            (
                json!({"type": "allowed_tools", "mode": "auto", "tools": [{"type": "function"}]}),
                "tool_choice.tools[0].name",
                "string",
            ),
        ] {
            let err = decode(tools.clone(), choice.clone()).unwrap_err();
            assert_eq!(err.path(), Some(path), "{choice}: {err}");
            assert!(err.to_string().contains(says), "{choice}: {err}");
        }
    }
}
