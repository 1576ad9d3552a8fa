//! What the gateway knows about each caller's tools, as `switchyard tools` shows it: the
//! recent tool set (how often each tool was offered), the shrinks (which tools went
//! missing, when) and the unknown tool calls (which tool, on which target, when). Built
//! from [`crate::tool_sets`]' bounded per-caller history.

use serde::{Deserialize, Serialize};

/// One caller's tools.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CallerTools {
    /// The caller (API key id, `-` without one).
    pub caller: String,
    /// Recent requests that offered tools (at most 8; the history restarts after a shrink).
    pub requests: usize,
    /// Each tool offered in those requests and in how many of them, most often first.
    pub tools: Vec<ToolSeen>,
    /// The latest shrinks of the caller's tool set, oldest first (at most 16).
    pub shrinks: Vec<ToolSetShrink>,
    /// The latest calls of tools the request did not offer, oldest first (at most 32).
    pub unknown_calls: Vec<UnknownToolCall>,
}

/// A tool of a caller's recent tool set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSeen {
    /// The tool's name.
    pub name: String,
    /// In how many of the caller's recent requests it was offered.
    pub seen: usize,
}

/// A caller's tool set shrank: tools offered in most recent requests disappeared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolSetShrink {
    /// When (Unix time, milliseconds).
    pub at_unix_ms: u64,
    /// The tools that went missing.
    pub missing: Vec<String>,
    /// How many tools the request that showed it offered.
    pub offered: usize,
}

/// A model called a tool the request did not offer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnknownToolCall {
    /// When (Unix time, milliseconds).
    pub at_unix_ms: u64,
    /// The tool the model called.
    pub tool: String,
    /// The target that answered, `provider/model`.
    pub target: String,
    /// Whether it was removed from the answer (`drop_unknown_tool_calls`).
    pub dropped: bool,
}

/// Milliseconds since the Unix epoch (0 before it).
pub(crate) fn unix_ms(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}
