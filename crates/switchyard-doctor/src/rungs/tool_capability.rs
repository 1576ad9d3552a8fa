//! Rung 9, before the round trip: a model that receives tool requests (every configured
//! target unless its static entry says `tools: false`) while its catalog (`/api/show`) says
//! it lacks the `tools` capability. The router skips it for requests that offer tools
//! (`model_lacks_tools`, they go to the route's next target, maybe a cloud one), or, with
//! text tool-call recovery on for it, sends them and the server refuses them. Reported
//! before anyone sends it tools, with what to change. The catalog rung collects the models;
//! they still serve requests without tools, so the chat rungs run first.

use crate::context::Ladder;
use crate::finding::Finding;
use crate::report::Rung;

/// Reports every tool model the catalog found without the `tools` capability; `false` when
/// there was one. Without a configured model, a catalog whose chat models all lack `tools`
/// is a warning here (`no_tool_model_in_catalog`, from [`crate::rungs::discovered`]).
pub(crate) fn report(ladder: &mut Ladder<'_>) -> bool {
    if let Some(finding) = ladder.catalog_tools.take() {
        ladder.push(Rung::Tools, &finding);
    }
    let models = std::mem::take(&mut ladder.toolless_models);
    for model in &models {
        let finding = Finding::NoToolsCapability {
            model: model.clone(),
        };
        ladder
            .checks
            .push(finding.check(Rung::Tools).subject(model.as_str()));
    }
    models.is_empty()
}
