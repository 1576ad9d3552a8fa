//! Missing-tools triage: the tool names each caller offered in its recent requests, and
//! the tools that disappeared when a caller's tool list shrank (an agent upgrade, an MCP
//! registry or allowlist reset). Bounded: at most [`MAX_CALLERS`] callers, [`WINDOW`]
//! recent requests each, [`MAX_TOOLS`] names per request.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

/// Callers tracked at most; requests of further callers are not tracked.
pub(crate) const MAX_CALLERS: usize = 1024;
/// Recent requests (that offered tools) remembered per caller.
pub(crate) const WINDOW: usize = 8;
/// Recent requests needed before a shrink is reported.
const MIN_HISTORY: usize = 3;
/// Tool names remembered per request.
pub(crate) const MAX_TOOLS: usize = 256;

/// The recent tool sets of every caller, shared across reloads.
#[derive(Debug, Default)]
pub(crate) struct ToolSets {
    callers: Mutex<HashMap<String, VecDeque<BTreeSet<String>>>>,
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
    ) -> Vec<String> {
        let now: BTreeSet<String> = names.take(MAX_TOOLS).map(str::to_owned).collect();
        if now.is_empty() {
            return Vec::new();
        }
        let Ok(mut callers) = self.callers.lock() else {
            return Vec::new();
        };
        if !callers.contains_key(caller) && callers.len() >= MAX_CALLERS {
            return Vec::new();
        }
        let recent = callers.entry(caller.to_owned()).or_default();
        let missing = missing_from(recent, &now);
        if !missing.is_empty() {
            recent.clear();
        }
        if recent.len() >= WINDOW {
            recent.pop_front();
        }
        recent.push_back(now);
        missing
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

    fn tools(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("tool_{i}")).collect()
    }

    #[test]
    fn a_set_that_drops_from_ten_to_two_reports_the_eight_once() {
        let sets = ToolSets::default();
        let ten = tools(10);
        for _ in 0..3 {
            assert!(
                sets.observe("agent", ten.iter().map(String::as_str))
                    .is_empty()
            );
        }
        let missing = sets.observe("agent", ten[..2].iter().map(String::as_str));
        assert_eq!(missing.len(), 8);
        assert!(missing.contains(&"tool_9".to_owned()));
        // Reported once: the history starts again from the new set.
        assert!(
            sets.observe("agent", ten[..2].iter().map(String::as_str))
                .is_empty()
        );
        // Another caller is not affected, and tool-less requests are not recorded.
        assert!(
            sets.observe("other", ten[..2].iter().map(String::as_str))
                .is_empty()
        );
        assert!(sets.observe("agent", std::iter::empty()).is_empty());
    }

    #[test]
    fn a_tool_seen_once_is_not_missed_and_short_history_reports_nothing() {
        let sets = ToolSets::default();
        assert!(sets.observe("a", ["x", "y"].into_iter()).is_empty());
        assert!(sets.observe("a", ["x"].into_iter()).is_empty());
        assert!(sets.observe("a", ["x"].into_iter()).is_empty());
        assert!(sets.observe("a", ["x"].into_iter()).is_empty());
        assert!(sets.observe("a", ["z"].into_iter()) == vec!["x".to_owned()]);
    }
}
