//! Rung 5, for a provider without a configured model (`discover` on, no `models`, no route
//! to it): one chat model from the server's catalog to probe, so the generate, stream and
//! tool rungs still tell whether generation and tool calling work there. One model at
//! most per provider (a cold load on a CPU server is slow), chosen in the server's order:
//!
//! - embedding-only models are passed over (by `/api/show`'s capabilities; when those are
//!   unknown, by a name that says `embed`), and so are Ollama's cloud models (the probe's
//!   prompt would leave the host);
//! - when the server reports capabilities (Ollama, natively or behind its `/v1` layer):
//!   the first chat model with `tools`, else the first chat model (the tool rung then warns
//!   `no_tool_model_in_catalog` instead of sending tools to a model known to lack them);
//! - otherwise the first chat model listed.
//!
//! The check says which model and which rule (`model_from_catalog`, only when the
//! generation rungs run); a catalog without a chat model is `no_chat_model_in_catalog`.
//! A hosted API's catalog (locality `cloud`) is not picked from: it lists models that
//! cannot chat (images, audio, moderation), and every probe is billed. At most
//! [`LOOKED_AT`] models are looked at (an `/api/show` each, which loads no model), and the
//! look stops at the first `/api/show` that fails.

use std::time::Instant;

use switchyard_core::Locality;

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung, Status};
use crate::upstream::{ModelDetails, cloud_name};

/// How many of the listed models the pick looks at, at most.
const LOOKED_AT: usize = 32;

/// Why the generation rungs have no model on a hosted API without a configured one.
const HOSTED: &str = "no model configured, and the doctor picks none from a hosted API's \
                      catalog (it lists models that cannot chat, and every probe is billed): \
                      name the model to check in the provider's `models`";

/// The same, for a server whose locality was inferred (a keyless server beyond loopback).
const INFERRED_HOSTED: &str = "no model configured, and the doctor picks none from a hosted \
                               API's catalog: name the model to check in the provider's \
                               `models`, or, for a server of your own, set its `locality` to \
                               \"lan\"";

/// Why the generation rungs have no model when the catalog has no chat model.
const NO_CHAT: &str = "no chat model on the server to probe (see the catalog rung)";

/// A chat model the pick may probe.
struct Candidate {
    /// Its place in the server's list.
    index: usize,
    name: String,
    /// Whether it has the `tools` capability (`None`: unknown).
    tools: Option<bool>,
    context_window: Option<u64>,
}

/// Picks the one model to probe for a provider without a configured model, from the
/// catalog the rung read (`server_models`, not empty). Records the pick in
/// `present_models` (and `usable_tool_models` unless it is known to lack `tools`), or why
/// there is none in `no_pick`. Never a failure: the findings are a note and warnings.
pub(crate) async fn pick(ladder: &mut Ladder<'_>) {
    if ladder.probe.locality == Locality::Cloud {
        ladder.no_pick = Some(if ladder.probe.locality_inferred {
            INFERRED_HOSTED
        } else {
            HOSTED
        });
        return;
    }
    let started = Instant::now();
    // Ollama answers `/api/show` with capabilities (behind its `/v1` layer, natively).
    let ollama = ladder.probe.api == ProbeApi::Ollama || ladder.native.is_some();
    let listed = ladder.server_models.len();
    let names: Vec<String> = ladder
        .server_models
        .iter()
        .take(LOOKED_AT)
        .cloned()
        .collect();
    let mut embedding: Vec<(usize, String)> = Vec::new();
    let mut cloud: Vec<(usize, String)> = Vec::new();
    let mut first_chat: Option<Candidate> = None;
    let mut chosen: Option<Candidate> = None;
    // Chat models whose capabilities were read, and whether the whole list was looked at.
    let mut chat_known = 0_usize;
    let mut looked_at = 0_usize;
    let mut stopped = false;
    for (index, name) in names.into_iter().enumerate() {
        looked_at += 1;
        if ollama && cloud_name(&name) {
            cloud.push((index, name));
            continue;
        }
        let (details, failed) = if ollama {
            show(ladder, &name).await
        } else {
            (None, false)
        };
        if details.as_ref().is_some_and(|d| d.remote) {
            cloud.push((index, name));
        } else {
            let caps = details.as_ref().and_then(|d| d.capabilities);
            let embedding_only = match caps {
                Some(c) => c.embedding_only(),
                None => name.to_ascii_lowercase().contains("embed"),
            };
            if embedding_only {
                embedding.push((index, name));
            } else {
                let candidate = Candidate {
                    index,
                    name,
                    tools: caps.map(|c| c.tools),
                    context_window: details.and_then(|d| d.context_window),
                };
                chat_known += usize::from(candidate.tools.is_some());
                if candidate.tools == Some(true) {
                    chosen = Some(candidate);
                    break;
                }
                // Without capabilities nothing later is better than the first chat model.
                let unknown = candidate.tools.is_none() && !ollama;
                if first_chat.is_none() {
                    first_chat = Some(candidate);
                }
                if unknown {
                    break;
                }
            }
        }
        if failed {
            stopped = true;
            break;
        }
    }
    let Some(chosen) = chosen.or(first_chat) else {
        let finding = Finding::NoChatModelInCatalog {
            provider: ladder.probe.id.clone(),
            ollama_host: ollama_host(ladder, ollama),
            embedding: embedding.into_iter().map(|(_, n)| n).collect(),
            cloud: cloud.into_iter().map(|(_, n)| n).collect(),
            checked: looked_at,
            listed,
        };
        ladder
            .checks
            .push(finding.check(Rung::Catalog).elapsed(started.elapsed()));
        ladder.no_pick = Some(NO_CHAT);
        return;
    };
    let before = |list: Vec<(usize, String)>| -> Vec<String> {
        list.into_iter()
            .filter(|(i, _)| *i < chosen.index)
            .map(|(_, n)| n)
            .collect()
    };
    // The note only when the generation rungs run: it says the model is probed.
    if ladder.options.generate {
        let finding = Finding::ModelFromCatalog {
            model: chosen.name.clone(),
            tools: chosen.tools,
            embedding: before(embedding),
            cloud: before(cloud),
        };
        let mut check = finding.check(Rung::Catalog).elapsed(started.elapsed());
        if let Some(ctx) = chosen.context_window {
            check = check.measure("context_window", ctx);
        }
        ladder.checks.push(check);
    }
    tracing::debug!(
        provider = %ladder.probe.id,
        model = %chosen.name,
        tools = ?chosen.tools,
        "doctor picked a model from the catalog"
    );
    ladder.present_models.push(chosen.name.clone());
    if chosen.tools == Some(false) {
        ladder.catalog_tools = Some(Finding::NoToolModelInCatalog {
            provider: ladder.probe.id.clone(),
            ollama_host: ollama_host(ladder, ollama),
            checked: chat_known,
            all: !stopped && looked_at == listed,
        });
    } else {
        ladder.usable_tool_models.push(chosen.name);
    }
}

/// The Ollama server's root, for a pull command.
fn ollama_host(ladder: &Ladder<'_>, ollama: bool) -> Option<String> {
    ollama.then(|| ladder.target.base.without_v1().as_str().to_owned())
}

/// `/api/show` for one listed model (natively behind Ollama's `/v1` layer): what it says,
/// and whether it failed (a `show_failed` warning is recorded, as for configured models).
async fn show(ladder: &mut Ladder<'_>, model: &str) -> (Option<ModelDetails>, bool) {
    let limit = ladder.options.request_timeout;
    let source = ladder.native.as_ref().unwrap_or(&ladder.upstream);
    let error = match tokio::time::timeout(limit, source.details(model)).await {
        Ok(Ok(details)) => return (details, false),
        Ok(Err(e)) => format!("listed, but /api/show failed: {e}"),
        Err(_) => format!(
            "listed, but /api/show did not answer within {} ms",
            limit.as_millis()
        ),
    };
    let check = Check::problem(
        Rung::Catalog,
        Status::Warn,
        "show_failed",
        error,
        "check the server's log; capabilities and context window are unknown",
    );
    ladder.checks.push(check.subject(model));
    (None, true)
}
