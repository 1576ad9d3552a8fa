//! Missing-tools triage, answer side: a tool call for a tool the request did not offer is
//! flagged in the decision record, logged with the offered names and counted. It is still
//! passed to the client, which decides.

use switchyard_core::ChatRequest;

use crate::record::DecisionRecord;
use crate::tool_sets::MAX_TOOLS;

/// Unknown calls named in one decision record at most (all are logged and counted).
const MAX_FLAGGED: usize = 16;

/// The tool names a request offered (at most [`MAX_TOOLS`]).
#[derive(Debug, Default)]
pub(crate) struct OfferedTools {
    names: Vec<String>,
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
        }
    }

    /// Checks a tool call the model made: when `name` was not offered, flags it in
    /// `record`, logs it with the offered names and counts it.
    pub(crate) fn check(&self, name: &str, record: &mut DecisionRecord) {
        if self.names.iter().any(|n| n == name) {
            return;
        }
        if record.unknown_tool_calls.len() < MAX_FLAGGED {
            record.unknown_tool_calls.push(name.to_owned());
        }
        let caller = record.caller.as_deref().unwrap_or("-");
        tracing::warn!(
            caller,
            request_id = %record.request_id,
            tool = name,
            offered = %self.names.join(","),
            "the model called a tool the request did not offer; passed to the client"
        );
        ::metrics::counter!(crate::metrics::UNKNOWN_TOOL_CALLS_TOTAL, "caller" => caller.to_owned())
            .increment(1);
    }
}
