//! `drop_unknown_tool_calls` on a route: the answer adapter that removes tool calls for
//! tools the request did not offer before they reach the client. Only a routed stream of
//! such a route carries one; other answers never pass through here.
//!
//! A dropped call's start, argument fragments and end are never yielded; the calls that
//! stay are numbered again from 0 in order (clients assemble calls by index). When every
//! tool call of an answer was dropped, a final `tool_calls` finish reason becomes `stop`
//! (the client has nothing to run). Bounded: the first [`MAX_CALLS`] calls of an answer are
//! tracked; later calls pass through unchanged (never dropped).

use switchyard_core::{ChatEvent, FinishReason};

/// Tool calls of one answer tracked (kept or dropped) at most.
pub(crate) const MAX_CALLS: usize = 1024;

/// The calls of one answer seen so far and what became of them.
#[derive(Debug, Default)]
pub(crate) struct CallFilter {
    /// Upstream index -> index sent to the client, `None` when dropped.
    calls: Vec<(u32, Option<u32>)>,
    kept: u32,
    dropped: u32,
}

impl CallFilter {
    /// Whether a call starting now would be tracked (and so may be dropped).
    pub(crate) fn has_room(&self) -> bool {
        self.calls.len() < MAX_CALLS
    }

    /// The event as the client gets it, or `None` when it belongs to a dropped call.
    /// `unknown`: the event starts a call for a tool the request did not offer.
    pub(crate) fn apply(&mut self, event: ChatEvent, unknown: bool) -> Option<ChatEvent> {
        match event {
            ChatEvent::ToolCallStart { index, id, name } => {
                if !self.has_room() {
                    return Some(ChatEvent::ToolCallStart { index, id, name });
                }
                if unknown {
                    self.calls.push((index, None));
                    self.dropped += 1;
                    return None;
                }
                let new = self.kept;
                self.kept += 1;
                self.calls.push((index, Some(new)));
                Some(ChatEvent::ToolCallStart {
                    index: new,
                    id,
                    name,
                })
            }
            ChatEvent::ToolCallArgs { index, fragment } => self
                .renumber(index)
                .map(|index| ChatEvent::ToolCallArgs { index, fragment }),
            ChatEvent::ToolCallEnd { index } => self
                .renumber(index)
                .map(|index| ChatEvent::ToolCallEnd { index }),
            ChatEvent::Done {
                finish_reason: FinishReason::ToolCalls,
            } if self.dropped > 0 && self.kept == 0 => Some(ChatEvent::done(FinishReason::Stop)),
            other => Some(other),
        }
    }

    /// The client's index of upstream call `index`; `None` when that call was dropped. A
    /// call not tracked keeps its index.
    fn renumber(&self, index: u32) -> Option<u32> {
        match self.calls.iter().rev().find(|(i, _)| *i == index) {
            Some((_, new)) => *new,
            None => Some(index),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(index: u32, name: &str) -> ChatEvent {
        ChatEvent::ToolCallStart {
            index,
            id: format!("call_{index}"),
            name: name.to_owned(),
        }
    }

    #[test]
    fn a_dropped_call_vanishes_and_the_kept_ones_are_numbered_again() {
        let mut f = CallFilter::default();
        assert_eq!(f.apply(start(0, "rm_rf"), true), None);
        assert_eq!(
            f.apply(
                ChatEvent::ToolCallArgs {
                    index: 0,
                    fragment: "{}".into()
                },
                false
            ),
            None
        );
        assert_eq!(f.apply(ChatEvent::ToolCallEnd { index: 0 }, false), None);
        // The call keeps its id; only the index changes.
        let kept = ChatEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "search".into(),
        };
        assert_eq!(f.apply(start(1, "search"), false), Some(kept));
        assert_eq!(
            f.apply(ChatEvent::ToolCallEnd { index: 1 }, false),
            Some(ChatEvent::ToolCallEnd { index: 0 })
        );
        // A call was kept: the finish reason stays.
        assert_eq!(
            f.apply(ChatEvent::done(FinishReason::ToolCalls), false),
            Some(ChatEvent::done(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn when_every_call_was_dropped_tool_calls_becomes_stop() {
        let mut f = CallFilter::default();
        assert_eq!(f.apply(start(0, "rm_rf"), true), None);
        assert_eq!(
            f.apply(ChatEvent::text("hi"), false),
            Some(ChatEvent::text("hi"))
        );
        assert_eq!(
            f.apply(ChatEvent::done(FinishReason::ToolCalls), false),
            Some(ChatEvent::done(FinishReason::Stop))
        );
        // Without any dropped call, nothing changes.
        let mut g = CallFilter::default();
        assert_eq!(
            g.apply(ChatEvent::done(FinishReason::ToolCalls), false),
            Some(ChatEvent::done(FinishReason::ToolCalls))
        );
    }

    #[test]
    fn calls_past_the_bound_pass_unchanged() {
        let mut f = CallFilter::default();
        for i in 0..MAX_CALLS as u32 {
            let _ = f.apply(start(i, "x"), true);
        }
        assert!(!f.has_room());
        let late = start(MAX_CALLS as u32, "x");
        assert_eq!(f.apply(late.clone(), true), Some(late));
    }
}
