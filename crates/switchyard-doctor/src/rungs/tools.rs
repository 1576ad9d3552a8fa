//! Rung 9: a tool round trip with a tiny tool. A structured call passes; a call written as
//! text warns (text recovery or the native API fixes it); no call at all fails.

use switchyard_core::{ChatEvent, ToolCall, ToolCallAccumulator};

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung};
use crate::rungs::generation::{
    TOOL_NAME, looks_like_text_tool_call, record_failure, run_timed, tool_request,
};
use crate::upstream::generation_limit;

/// What came back when a tool was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolOutcome {
    /// A structured call of this tool.
    Structured,
    /// A call written as text.
    AsText,
    /// No call.
    None,
}

/// Classifies the events of an answer to the tool request.
pub(crate) fn classify(events: &[ChatEvent]) -> ToolOutcome {
    let structured = events
        .iter()
        .any(|e| matches!(e, ChatEvent::ToolCallStart { name, .. } if name == TOOL_NAME));
    if structured {
        return ToolOutcome::Structured;
    }
    let mut text = String::new();
    for e in events {
        if let ChatEvent::TextDelta { text: t } = e {
            text.push_str(t);
        }
    }
    if looks_like_text_tool_call(&text, TOOL_NAME) {
        ToolOutcome::AsText
    } else {
        ToolOutcome::None
    }
}

/// The first complete tool call among an answer's events.
pub(crate) fn first_call(events: &[ChatEvent]) -> Option<ToolCall> {
    let mut calls = ToolCallAccumulator::default();
    for e in events {
        calls.push(e).ok()?;
    }
    calls.finish().ok()?.into_iter().next()
}

/// Rung 9 for `model`. `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>, model: &str) -> Option<()> {
    let request = tool_request(model);
    let limit = generation_limit(ladder.options);
    let timed = match run_timed(ladder, &request, limit).await {
        Ok(t) => t,
        Err(e) => {
            record_failure(ladder, Rung::Tools, model, e, true);
            return None;
        }
    };
    match classify(&timed.events) {
        ToolOutcome::Structured => {
            ladder.tool_call = first_call(&timed.events);
            ladder.checks.push(
                Check::ok(
                    Rung::Tools,
                    format!("a structured call of {TOOL_NAME} came back"),
                )
                .subject(model)
                .elapsed(timed.total),
            );
            Some(())
        }
        ToolOutcome::AsText => {
            let finding = Finding::ToolCallAsText {
                api: ladder.probe.api,
                ollama_v1: ladder.ollama_v1 && ladder.probe.api == ProbeApi::OpenAi,
            };
            ladder.checks.push(
                finding
                    .check(Rung::Tools)
                    .subject(model)
                    .elapsed(timed.total),
            );
            Some(())
        }
        ToolOutcome::None => {
            let finding = Finding::NoToolCall {
                model: model.to_owned(),
            };
            ladder.checks.push(
                finding
                    .check(Rung::Tools)
                    .subject(model)
                    .elapsed(timed.total),
            );
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes() {
        let call = ChatEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: TOOL_NAME.into(),
        };
        assert_eq!(classify(&[call]), ToolOutcome::Structured);
        let text = ChatEvent::text("<tool_call>{\"name\": \"get_current_time\"}</tool_call>");
        assert_eq!(classify(&[text]), ToolOutcome::AsText);
        assert_eq!(
            classify(&[ChatEvent::text("It is noon.")]),
            ToolOutcome::None
        );
    }
}
