//! Rung 9: a tool round trip with a tiny tool. A structured call passes; a call written as
//! text warns (text recovery or the native API fixes it); an answer cut at the output limit
//! before any call warns (a thinking model spent the tokens reasoning: inconclusive); no
//! call at all fails.

use switchyard_core::{ChatEvent, ToolCall, ToolCallAccumulator};

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung};
use crate::rungs::generation::{
    TOOL_NAME, TOOL_OUTPUT, looks_like_text_tool_call, record_failure, run_timed, tool_request,
};
use crate::upstream::generation_limit;

/// What came back when a tool was offered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ToolOutcome {
    /// A structured call of this tool.
    Structured,
    /// A call written as text.
    AsText,
    /// No call, and the answer was cut at the output limit (`thinking`: it reasoned, or
    /// wrote no text at all).
    OutOfTokens {
        /// Whether the model was thinking when the limit came.
        thinking: bool,
    },
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
        return ToolOutcome::AsText;
    }
    let cut = events
        .iter()
        .any(|e| matches!(e, ChatEvent::Done { finish_reason } if finish_reason.is_cut()));
    if cut {
        // Thinking as its own events, or written inline (`<think>`), or no text at all.
        let thinking = events
            .iter()
            .any(|e| matches!(e, ChatEvent::ThinkingDelta { .. }))
            || text.contains("<think>")
            || text.trim().is_empty();
        return ToolOutcome::OutOfTokens { thinking };
    }
    ToolOutcome::None
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
                recovery_on: ladder.probe.text_tool_recovery.applies_to(model),
            };
            ladder.checks.push(
                finding
                    .check(Rung::Tools)
                    .subject(model)
                    .elapsed(timed.total),
            );
            Some(())
        }
        ToolOutcome::OutOfTokens { thinking } => {
            let finding = Finding::ToolOutputExhausted {
                model: model.to_owned(),
                limit: TOOL_OUTPUT,
                thinking,
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
    use switchyard_core::FinishReason;

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
        let done = |finish_reason| ChatEvent::Done { finish_reason };
        assert_eq!(
            classify(&[
                ChatEvent::ThinkingDelta {
                    text: "The user wants".into()
                },
                done(FinishReason::Length)
            ]),
            ToolOutcome::OutOfTokens { thinking: true }
        );
        assert_eq!(
            classify(&[
                ChatEvent::text("<think>The user wants"),
                done(FinishReason::Length)
            ]),
            ToolOutcome::OutOfTokens { thinking: true }
        );
        assert_eq!(
            classify(&[ChatEvent::text("It is"), done(FinishReason::Length)]),
            ToolOutcome::OutOfTokens { thinking: false }
        );
        assert_eq!(
            classify(&[ChatEvent::text("It is noon."), done(FinishReason::Stop)]),
            ToolOutcome::None
        );
    }
}
