//! Missing-tools triage, answer side: a tool call for a tool the request did not offer is
//! flagged in the decision record, logged with the offered names and counted. It is still
//! passed to the client, which decides, unless the route says `drop_unknown_tool_calls`
//! (then [`crate::call_filter`] removes it and the record says so).

use switchyard_core::ChatRequest;

use crate::record::DecisionRecord;
use crate::tool_sets::MAX_TOOLS;

/// Unknown calls named in one decision record at most (all are logged and counted).
const MAX_FLAGGED: usize = 16;

/// The tool names a request offered (at most [`MAX_TOOLS`]).
#[derive(Debug, Default)]
pub(crate) struct OfferedTools {
    names: Vec<String>,
    /// The route removes calls of tools not offered (`drop_unknown_tool_calls`).
    pub(crate) drop_unknown: bool,
}

impl OfferedTools {
    /// The tools `request` offers.
    pub(crate) fn of(request: &ChatRequest) -> Self {
        Self {
            names: request
                .tool_names()
                .take(MAX_TOOLS)
                .map(str::to_owned)
                .collect(),
            drop_unknown: false,
        }
    }

    /// Checks a tool call the model made: when `name` was not offered, flags it in
    /// `record`, logs it with the offered names and counts it, and answers `true`.
    /// `dropped`: such a call is removed from the answer (`drop_unknown_tool_calls`).
    pub(crate) fn check(&self, name: &str, dropped: bool, record: &mut DecisionRecord) -> bool {
        if self.names.iter().any(|n| n == name) {
            return false;
        }
        record.unknown_tool_calls_dropped |= dropped;
        if record.unknown_tool_calls.len() < MAX_FLAGGED {
            record.unknown_tool_calls.push(name.to_owned());
        }
        let caller = record.caller.as_deref().unwrap_or("-");
        tracing::warn!(
            caller,
            request_id = %record.request_id,
            tool = name,
            offered = %self.names.join(","),
            dropped,
            "the model called a tool the request did not offer; {}",
            if dropped { "dropped from the answer (drop_unknown_tool_calls)" } else { "passed to the client" }
        );
        ::metrics::counter!(crate::metrics::UNKNOWN_TOOL_CALLS_TOTAL, "caller" => caller.to_owned())
            .increment(1);
        true
    }
}
