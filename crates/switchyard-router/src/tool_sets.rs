//! Missing-tools triage: the tool names each caller offered in its recent requests, and
//! the tools that disappeared when a caller's tool list shrank (an agent upgrade, an MCP
//! registry or allowlist reset), and the unknown tool calls each caller's models made.
//! Bounded: at most [`MAX_CALLERS`] callers, [`WINDOW`] recent requests each, [`MAX_TOOLS`]
//! names per request, [`MAX_SHRINKS`] shrinks and [`MAX_UNKNOWN`] unknown calls per caller.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;
use std::time::SystemTime;

use crate::tool_report::{CallerTools, ToolSeen, ToolSetShrink, UnknownToolCall, unix_ms};

/// Callers tracked at most; requests of further callers are not tracked.
pub(crate) const MAX_CALLERS: usize = 1024;
/// Recent requests (that offered tools) remembered per caller.
pub(crate) const WINDOW: usize = 8;
/// Recent requests needed before a shrink is reported.
const MIN_HISTORY: usize = 3;
/// Tool names remembered per request.
pub(crate) const MAX_TOOLS: usize = 256;
/// Shrinks remembered per caller (the latest).
pub(crate) const MAX_SHRINKS: usize = 16;
/// Unknown tool calls remembered per caller (the latest).
pub(crate) const MAX_UNKNOWN: usize = 32;

/// What is kept about one caller.
#[derive(Debug, Default)]
struct History {
    recent: VecDeque<BTreeSet<String>>,
    shrinks: VecDeque<ToolSetShrink>,
    unknown: VecDeque<UnknownToolCall>,
}

/// Appends to a ring of at most `cap` entries.
fn push_bounded<T>(ring: &mut VecDeque<T>, cap: usize, item: T) {
    if ring.len() >= cap {
        ring.pop_front();
    }
    ring.push_back(item);
}

/// The recent tool sets of every caller, shared across reloads.
#[derive(Debug, Default)]
pub(crate) struct ToolSets {
    callers: Mutex<HashMap<String, History>>,
}

impl ToolSets {
    /// Records the tool names `caller` offered in one request and returns the tools that
    /// went missing: present in most (more than half) of its last requests, absent from
    /// this one. A request without tools is not recorded (agents send tool-less side
    /// requests such as titles); after a shrink the caller's history starts again from the
    /// new set, so one shrink is reported once.
    pub(crate) fn observe<'n>(
        &self,
        caller: &str,
        names: impl Iterator<Item = &'n str>,
        at: SystemTime,
    ) -> Vec<String> {
        let now: BTreeSet<String> = names.take(MAX_TOOLS).map(str::to_owned).collect();
        if now.is_empty() {
            return Vec::new();
        }
        let Ok(mut callers) = self.callers.lock() else {
            return Vec::new();
        };
        let Some(history) = entry(&mut callers, caller) else {
            return Vec::new();
        };
        let missing = missing_from(&history.recent, &now);
        if !missing.is_empty() {
            history.recent.clear();
            let shrink = ToolSetShrink {
                at_unix_ms: unix_ms(at),
                missing: missing.clone(),
                offered: now.len(),
            };
            push_bounded(&mut history.shrinks, MAX_SHRINKS, shrink);
        }
        push_bounded(&mut history.recent, WINDOW, now);
        missing
    }

    /// Remembers an unknown tool call of `caller`'s request.
    pub(crate) fn unknown_call(&self, caller: &str, call: UnknownToolCall) {
        let Ok(mut callers) = self.callers.lock() else {
            return;
        };
        if let Some(history) = entry(&mut callers, caller) {
            push_bounded(&mut history.unknown, MAX_UNKNOWN, call);
        }
    }

    /// Every caller's tools (or only `caller`'s), sorted by caller.
    pub(crate) fn report(&self, caller: Option<&str>) -> Vec<CallerTools> {
        let Ok(callers) = self.callers.lock() else {
            return Vec::new();
        };
        let mut out: Vec<CallerTools> = callers
            .iter()
            .filter(|(id, _)| caller.is_none_or(|c| c == id.as_str()))
            .map(|(id, h)| report_of(id, h))
            .collect();
        out.sort_by(|a, b| a.caller.cmp(&b.caller));
        out
    }
}

/// The history of `caller`, made when there is room for another caller.
fn entry<'a>(callers: &'a mut HashMap<String, History>, caller: &str) -> Option<&'a mut History> {
    if !callers.contains_key(caller) && callers.len() >= MAX_CALLERS {
        return None;
    }
    Some(callers.entry(caller.to_owned()).or_default())
}

fn report_of(caller: &str, h: &History) -> CallerTools {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in h.recent.iter().flatten() {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut tools: Vec<ToolSeen> = counts
        .into_iter()
        .map(|(name, seen)| ToolSeen {
            name: name.to_owned(),
            seen,
        })
        .collect();
    tools.sort_by(|a, b| b.seen.cmp(&a.seen).then_with(|| a.name.cmp(&b.name)));
    CallerTools {
        caller: caller.to_owned(),
        requests: h.recent.len(),
        tools,
        shrinks: h.shrinks.iter().cloned().collect(),
        unknown_calls: h.unknown.iter().cloned().collect(),
    }
}

/// The tools in more than half of `recent` (of at least [`MIN_HISTORY`]) not in `now`.
fn missing_from(recent: &VecDeque<BTreeSet<String>>, now: &BTreeSet<String>) -> Vec<String> {
    if recent.len() < MIN_HISTORY {
        return Vec::new();
    }
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for name in recent.iter().flatten() {
        *counts.entry(name.as_str()).or_default() += 1;
    }
    let mut missing: Vec<String> = counts
        .into_iter()
        .filter(|(name, n)| *n * 2 > recent.len() && !now.contains(*name))
        .map(|(name, _)| name.to_owned())
        .collect();
    missing.sort_unstable();
    missing
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: SystemTime = SystemTime::UNIX_EPOCH;

    fn tools(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tool_{i}")).collect()
    }

    #[test]
    fn a_set_that_drops_from_ten_to_two_reports_the_eight_once() {
        let sets = ToolSets::default();
        let ten = tools(10);
        for _ in 0..3 {
            assert!(
                sets.observe("agent", ten.iter().map(String::as_str), T)
                    .is_empty()
            );
        }
        let missing = sets.observe("agent", ten[..2].iter().map(String::as_str), T);
        assert_eq!(missing.len(), 8);
        assert!(missing.contains(&"tool_9".to_owned()));
        // Reported once: the history starts again from the new set.
        assert!(
            sets.observe("agent", ten[..2].iter().map(String::as_str), T)
                .is_empty()
        );
        // Another caller is not affected, and tool-less requests are not recorded.
        assert!(
            sets.observe("other", ten[..2].iter().map(String::as_str), T)
                .is_empty()
        );
        assert!(sets.observe("agent", std::iter::empty(), T).is_empty());
    }

    #[test]
    fn a_tool_seen_once_is_not_missed_and_short_history_reports_nothing() {
        let sets = ToolSets::default();
        assert!(sets.observe("a", ["x", "y"].into_iter(), T).is_empty());
        assert!(sets.observe("a", ["x"].into_iter(), T).is_empty());
        assert!(sets.observe("a", ["x"].into_iter(), T).is_empty());
        assert!(sets.observe("a", ["x"].into_iter(), T).is_empty());
        assert!(sets.observe("a", ["z"].into_iter(), T) == vec!["x".to_owned()]);
    }

    #[test]
    fn the_report_counts_tools_keeps_shrinks_and_unknown_calls_and_stays_bounded() {
        let sets = ToolSets::default();
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1500);
        for _ in 0..3 {
            sets.observe("a", ["x", "y"].into_iter(), at);
        }
        sets.observe("a", ["x"].into_iter(), at);
        sets.observe("a", ["x"].into_iter(), at);
        for i in 0..MAX_UNKNOWN + 5 {
            sets.unknown_call(
                "a",
                UnknownToolCall {
                    at_unix_ms: i as u64,
                    tool: "rm_rf".into(),
                    target: "local/m".into(),
                    dropped: false,
                },
            );
        }
        sets.observe("b", ["z"].into_iter(), at);
        let report = sets.report(Some("a"));
        assert_eq!(report.len(), 1);
        let a = &report[0];
        assert_eq!(a.requests, 2, "the history restarted after the shrink");
        assert_eq!(
            a.tools,
            [ToolSeen {
                name: "x".into(),
                seen: 2
            }]
        );
        assert_eq!(a.shrinks.len(), 1);
        assert_eq!(a.shrinks[0].missing, ["y"]);
        assert_eq!(a.shrinks[0].at_unix_ms, 1500);
        assert_eq!(a.unknown_calls.len(), MAX_UNKNOWN, "a ring");
        assert_eq!(a.unknown_calls[0].at_unix_ms, 5, "the oldest went first");
        let all = sets.report(None);
        assert_eq!(
            all.iter().map(|c| c.caller.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
    }

    #[test]
    fn callers_past_the_bound_are_not_tracked() {
        let sets = ToolSets::default();
        for i in 0..MAX_CALLERS + 3 {
            sets.observe(&format!("c{i}"), ["x"].into_iter(), T);
        }
        assert_eq!(sets.report(None).len(), MAX_CALLERS);
        assert!(sets.report(Some("c1025")).is_empty());
    }
}
