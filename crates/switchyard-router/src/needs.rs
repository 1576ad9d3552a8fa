//! What a request needs of a model: native tool calling, image input, thinking, and a
//! context window big enough for its estimated prompt. Pure: reads the request and the
//! model's known facts; unknown facts never skip a target ("try it").

use std::io;

use switchyard_core::{ChatRequest, ModelInfo, ReasonCode, Think};

/// Bytes of prompt text per estimated token.
const BYTES_PER_TOKEN: u64 = 4;

/// A cheap estimate of a request's prompt size in tokens: the bytes of every message's
/// text, thinking and tool-call arguments, plus the tool definitions as JSON, divided by
/// four (rounded up). Images are not counted. It is an estimate for planning, not a
/// tokenizer: it errs on neither side on purpose.
pub fn estimated_prompt_tokens(request: &ChatRequest) -> u64 {
    let mut bytes = ByteCount(0);
    for m in &request.messages {
        for part in &m.content {
            if let switchyard_core::ContentPart::Text(t) = part {
                bytes.add(t.len());
            }
        }
        bytes.add(m.thinking.as_ref().map_or(0, String::len));
        for call in &m.tool_calls {
            bytes.add(call.name.len());
            // Writing into a byte counter cannot fail.
            let _ = serde_json::to_writer(&mut bytes, &call.arguments);
        }
    }
    for tool in &request.tools {
        bytes.add(tool.name.len() + tool.description.as_ref().map_or(0, String::len));
        let _ = serde_json::to_writer(&mut bytes, &tool.parameters);
    }
    bytes.0.div_ceil(BYTES_PER_TOKEN)
}

/// Counts bytes written to it.
struct ByteCount(u64);

impl ByteCount {
    fn add(&mut self, n: usize) {
        self.0 = self.0.saturating_add(u64::try_from(n).unwrap_or(u64::MAX));
    }
}

impl io::Write for ByteCount {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.add(buf.len());
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What one request needs of the model that serves it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Needs {
    tools: bool,
    images: bool,
    think: bool,
    prompt_tokens: u64,
}

impl Needs {
    /// The needs of `request`.
    pub(crate) fn of(request: &ChatRequest) -> Self {
        Self {
            tools: !request.tools.is_empty(),
            images: request.messages.iter().any(|m| m.images().next().is_some()),
            think: request.think.is_some_and(|t| t != Think::Off),
            prompt_tokens: estimated_prompt_tokens(request),
        }
    }

    /// The estimated prompt size in tokens ([`estimated_prompt_tokens`]).
    pub(crate) fn prompt_tokens(&self) -> u64 {
        self.prompt_tokens
    }

    /// Why a model described by `info` cannot serve these needs, if it cannot. A missing
    /// `tools` capability does not count when `recovers_text_tools` (the provider turns
    /// tool calls written as text into calls for this model). Unknown capabilities and an
    /// unknown context window never skip.
    pub(crate) fn unmet(
        &self,
        info: Option<&ModelInfo>,
        recovers_text_tools: bool,
    ) -> Option<ReasonCode> {
        let info = info?;
        if let Some(caps) = info.capabilities {
            if self.tools && !caps.tools && !recovers_text_tools {
                return Some(ReasonCode::ModelLacksTools);
            }
            if self.images && !caps.vision {
                return Some(ReasonCode::ModelLacksVision);
            }
            if self.think && !caps.thinking {
                return Some(ReasonCode::ModelLacksThinking);
            }
        }
        info.context_window
            .is_some_and(|window| self.prompt_tokens > u64::from(window))
            .then_some(ReasonCode::ContextWindowExceeded)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{Capabilities, Locality, Message, ToolSpec};

    fn tool_request() -> ChatRequest {
        let mut r = ChatRequest::new("chat", vec![Message::user("abcdefgh")]);
        r.tools.push(ToolSpec {
            name: "exec".to_owned(),
            description: None,
            parameters: serde_json::json!({}),
        });
        r
    }

    fn model(caps: Option<Capabilities>, window: Option<u32>) -> ModelInfo {
        let mut m = ModelInfo::new("m", Locality::Local);
        m.capabilities = caps;
        m.context_window = window;
        m
    }

    #[test]
    fn estimate_is_bytes_over_four_rounded_up() {
        // 8 bytes of text + "exec" + "{}" = 14 bytes -> 4 tokens.
        assert_eq!(estimated_prompt_tokens(&tool_request()), 4);
        assert_eq!(estimated_prompt_tokens(&ChatRequest::default()), 0);
    }

    #[test]
    fn tools_need_the_capability_unless_recovered_and_unknown_tries() {
        let needs = Needs::of(&tool_request());
        let no_tools = Capabilities {
            completion: true,
            ..Capabilities::default()
        };
        let m = model(Some(no_tools), None);
        assert_eq!(
            needs.unmet(Some(&m), false),
            Some(ReasonCode::ModelLacksTools)
        );
        assert_eq!(needs.unmet(Some(&m), true), None);
        assert_eq!(needs.unmet(Some(&model(None, None)), false), None);
        assert_eq!(needs.unmet(None, false), None);
    }

    #[test]
    fn thinking_and_context_window_are_checked() {
        let mut r = tool_request();
        r.think = Some(Think::High);
        let caps = Capabilities {
            completion: true,
            tools: true,
            ..Capabilities::default()
        };
        let needs = Needs::of(&r);
        let m = model(Some(caps), None);
        assert_eq!(
            needs.unmet(Some(&m), false),
            Some(ReasonCode::ModelLacksThinking)
        );
        r.think = Some(Think::Off);
        let needs = Needs::of(&r);
        assert_eq!(
            needs.unmet(Some(&model(Some(caps), Some(3))), false),
            Some(ReasonCode::ContextWindowExceeded)
        );
        assert_eq!(needs.unmet(Some(&model(Some(caps), Some(4))), false), None);
    }
}
