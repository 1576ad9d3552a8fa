//! What the rungs of one provider's ladder share.

use switchyard_core::ProviderError;

use crate::finding::Finding;
use crate::input::{DoctorOptions, ProviderProbe};
use crate::report::{Check, Rung};
use crate::target::Target;
use crate::upstream::Upstream;

/// The state of one provider's ladder.
#[derive(Debug)]
pub(crate) struct Ladder<'a> {
    /// The provider.
    pub(crate) probe: &'a ProviderProbe,
    /// The doctor's limits.
    pub(crate) options: &'a DoctorOptions,
    /// The base URL, parsed.
    pub(crate) target: Target,
    /// The base URL the API calls use (Ollama: without a trailing `/v1`).
    pub(crate) api_base: String,
    /// A plain client with the provider's transport settings, for raw requests.
    pub(crate) raw: reqwest::Client,
    /// The real client.
    pub(crate) upstream: Upstream,
    /// Whether an OpenAI-kind base URL is Ollama's `/v1` layer.
    pub(crate) ollama_v1: bool,
    /// For Ollama's `/v1` layer: a native client at the root, for `/api/show`.
    pub(crate) native: Option<Upstream>,
    /// Model names the server lists (filled by the catalog rung).
    pub(crate) server_models: Vec<String>,
    /// Configured models found on the server (in configured order).
    pub(crate) present_models: Vec<String>,
    /// Configured tool models found on the server with tool capability (or unknown).
    pub(crate) usable_tool_models: Vec<String>,
    /// Configured tool models whose catalog says they lack the `tools` capability
    /// (reported on the tool rung by [`crate::rungs::tool_capability`]).
    pub(crate) toolless_models: Vec<String>,
    /// Configured models the catalog calls embedding-only (not probed as chat or tool
    /// models).
    pub(crate) embedding_models: Vec<String>,
    /// For a provider without a configured model: why the catalog rung picked none to
    /// probe (the generation rungs' skip line says it).
    pub(crate) no_pick: Option<&'static str>,
    /// For a provider without a configured model: what the tool rung reports about the
    /// catalog (`no_tool_model_in_catalog`), set by [`crate::rungs::discovered`].
    pub(crate) catalog_tools: Option<Finding>,
    /// The time the non-streamed generation took when the model was cold.
    pub(crate) cold_start: Option<std::time::Duration>,
    /// The structured call the tool rung got back (answered by Anthropic's second leg).
    pub(crate) tool_call: Option<switchyard_core::ToolCall>,
    /// The checks so far.
    pub(crate) checks: Vec<Check>,
}

impl Ladder<'_> {
    /// Records a finding on `rung`.
    pub(crate) fn push(&mut self, rung: Rung, finding: &Finding) {
        tracing::debug!(provider = %self.probe.id, rung = rung.name(), code = finding.code(), "doctor finding");
        self.checks.push(finding.check(rung));
    }

    /// The account finding an error stands for (see [`crate::rungs::account`]).
    pub(crate) fn account_finding(&self, err: &ProviderError) -> Option<Finding> {
        crate::rungs::account::finding_for(self.probe, err)
    }
}
