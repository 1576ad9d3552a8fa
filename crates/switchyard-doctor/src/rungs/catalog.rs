//! Rung 5: the catalog. Ollama: `/api/tags` (an empty list explained), each configured
//! model present, its capabilities and context window from `/api/show`, tool models without
//! the `tools` capability collected for the tool rung, embedding-only models kept off the
//! chat and tool rungs (a failure only in a route beside chat models). OpenAI-compatible:
//! each configured model listed by `/models`. Without a configured model, one listed chat
//! model is picked to probe ([`crate::rungs::discovered`]).

use std::time::Instant;

use switchyard_core::{ErrorKind, ReasonCode, TimeoutPhase};

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung, Status};
use crate::upstream::same_model;

/// How many names a summary lists.
const SHOWN: usize = 5;

/// Names on the server that look like `model`: the same name with another tag
/// (`qwen2.5:3b` for `qwen2.5:7b`), else the same family (`gpt-4.1` for `gpt-4.1-mini`),
/// else a few names.
pub(crate) fn similar_names(model: &str, server: &[String]) -> Vec<String> {
    let stem = |n: &str| n.split(':').next().unwrap_or(n).to_ascii_lowercase();
    let family = |n: &str| {
        stem(n)
            .split(['-', '.', '_'])
            .next()
            .unwrap_or("")
            .to_owned()
    };
    let pick = |key: &dyn Fn(&str) -> String| -> Vec<String> {
        let wanted = key(model);
        server
            .iter()
            .filter(|n| !wanted.is_empty() && key(n) == wanted)
            .take(SHOWN)
            .cloned()
            .collect()
    };
    let same = pick(&stem);
    if !same.is_empty() {
        return same;
    }
    let kin = pick(&family);
    if !kin.is_empty() {
        return kin;
    }
    server.iter().take(3).cloned().collect()
}

/// The configured models, chat models first, each once.
fn configured(ladder: &Ladder<'_>) -> Vec<String> {
    let mut all: Vec<String> = Vec::new();
    for m in ladder.probe.models.iter().chain(&ladder.probe.tool_models) {
        if !all.iter().any(|a| a == m) {
            all.push(m.clone());
        }
    }
    all
}

/// Rung 5. `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>) -> Option<()> {
    let started = Instant::now();
    if ladder.probe.api == ProbeApi::Ollama {
        let limit = ladder.options.request_timeout;
        match tokio::time::timeout(limit, ladder.upstream.model_names()).await {
            Ok(Ok(names)) => ladder.server_models = names,
            Ok(Err(e)) => {
                if let Some(f) = ladder.account_finding(&e) {
                    ladder.push(Rung::Account, &f);
                } else {
                    let finding = Finding::HttpFailed {
                        reason_code: ReasonCode::Error(e.kind()),
                        message: e.message().to_owned(),
                    };
                    ladder
                        .checks
                        .push(finding.check(Rung::Catalog).elapsed(started.elapsed()));
                }
                return None;
            }
            Err(_) => {
                let finding = Finding::HttpFailed {
                    reason_code: ReasonCode::Error(ErrorKind::Timeout(TimeoutPhase::Total)),
                    message: format!("/api/tags did not answer within {} ms", limit.as_millis()),
                };
                ladder.push(Rung::Catalog, &finding);
                return None;
            }
        }
    }
    let wanted = configured(ladder);
    if ladder.server_models.is_empty() {
        if ladder.probe.api == ProbeApi::Ollama {
            let finding = Finding::CatalogEmpty {
                base_url: ladder.api_base.clone(),
                models: wanted.clone(),
            };
            ladder
                .checks
                .push(finding.check(Rung::Catalog).elapsed(started.elapsed()));
            if finding.status() == Status::Fail {
                return None;
            }
        } else {
            // Some OpenAI-compatible servers list nothing; the generation rungs will tell.
            ladder.checks.push(Check::ok(
                Rung::Catalog,
                "the server lists no models; the configured ones are checked by generating",
            ));
            ladder.present_models = ladder.probe.models.clone();
            ladder.usable_tool_models = ladder.probe.tool_models.clone();
        }
        return Some(());
    }
    let shown: Vec<&str> = ladder
        .server_models
        .iter()
        .take(SHOWN)
        .map(String::as_str)
        .collect();
    let more = ladder.server_models.len().saturating_sub(SHOWN);
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    ladder.checks.push(
        Check::ok(
            Rung::Catalog,
            format!(
                "{} models: {}{more}",
                ladder.server_models.len(),
                shown.join(", ")
            ),
        )
        .elapsed(started.elapsed())
        .measure(
            "models",
            u64::try_from(ladder.server_models.len()).unwrap_or(u64::MAX),
        ),
    );
    let mut failed = false;
    for model in wanted {
        failed |= !check_model(ladder, &model).await;
    }
    let embedding = ladder.embedding_models.clone();
    for model in &embedding {
        if let Some(route) = chat_route_of(ladder, model) {
            let finding = Finding::EmbeddingOnly {
                model: model.clone(),
                route,
            };
            ladder
                .checks
                .push(finding.check(Rung::Catalog).subject(model.as_str()));
            failed = true;
        }
    }
    if ladder.probe.models.is_empty() && ladder.probe.tool_models.is_empty() {
        // Discovery without a configured model: probe one the server lists.
        crate::rungs::discovered::pick(ladder).await;
    }
    if failed { None } else { Some(()) }
}

/// A route that holds the embedding model `model` beside a model of this provider the
/// catalog judged a chat model (chat requests to that route may reach `model`), if any.
/// Other providers' targets are their ladders' business.
fn chat_route_of(ladder: &Ladder<'_>, model: &str) -> Option<String> {
    let is_chat = |m: &String| {
        !ladder.embedding_models.contains(m)
            && (ladder.present_models.contains(m)
                || ladder.usable_tool_models.contains(m)
                || ladder.toolless_models.contains(m))
    };
    ladder
        .probe
        .routes
        .iter()
        .find(|(_, targets)| targets.iter().any(|t| t == model) && targets.iter().any(is_chat))
        .map(|(route, _)| route.clone())
}

/// Checks one configured model; `false` when it failed. A model the catalog calls
/// embedding-only goes to `embedding_models`, not to the chat and tool rungs.
async fn check_model(ladder: &mut Ladder<'_>, model: &str) -> bool {
    let api = ladder.probe.api;
    // Ollama's `/v1` layer resolves a bare name to `:latest`, as its native API does.
    let behind_ollama = ladder.native.is_some();
    let found = ladder.server_models.iter().any(|n| match api {
        ProbeApi::Ollama => same_model(n, model),
        ProbeApi::OpenAi => n == model || (behind_ollama && same_model(n, model)),
        ProbeApi::Anthropic => crate::rungs::anthropic::listed(model, std::slice::from_ref(n)),
    });
    if !found {
        let finding = Finding::ModelMissing {
            model: model.to_owned(),
            api,
            base_url: ladder.api_base.clone(),
            similar: similar_names(model, &ladder.server_models),
        };
        ladder
            .checks
            .push(finding.check(Rung::Catalog).subject(model));
        return false;
    }
    let used_for_tools = ladder.probe.tool_models.iter().any(|m| m == model);
    let used_for_chat = ladder.probe.models.iter().any(|m| m == model);
    let started = Instant::now();
    let limit = ladder.options.request_timeout;
    // Ollama's `/v1` layer says nothing about capabilities: ask its native API.
    let source = ladder.native.as_ref().unwrap_or(&ladder.upstream);
    let details = match tokio::time::timeout(limit, source.details(model)).await {
        Ok(Ok(d)) => d,
        Ok(Err(e)) => {
            let check = Check::problem(
                Rung::Catalog,
                Status::Warn,
                "show_failed",
                format!("present, but /api/show failed: {e}"),
                "check the server's log; capabilities and context window are unknown",
            );
            ladder.checks.push(check.subject(model));
            None
        }
        Err(_) => None,
    };
    let mut line = vec!["present".to_owned()];
    let mut embedding_only = false;
    let mut tools_ok = true;
    if let Some(d) = &details {
        if let Some(caps) = d.capabilities {
            let mut names = Vec::new();
            for (on, name) in [
                (caps.tools, "tools"),
                (caps.thinking, "thinking"),
                (caps.vision, "vision"),
                (caps.embedding, "embedding"),
            ] {
                if on {
                    names.push(name);
                }
            }
            line.push(if names.is_empty() {
                "no tools".to_owned()
            } else {
                names.join(", ")
            });
            if caps.embedding_only() {
                // Serves embeddings; a route mixing it with chat models is named once all
                // models are known.
                embedding_only = true;
                line.push("embeddings only: not probed as a chat or tool model".to_owned());
            } else if used_for_tools && !caps.tools {
                // Reported on the tool rung; the model still serves requests without tools.
                ladder.toolless_models.push(model.to_owned());
                tools_ok = false;
            }
        }
        if let Some(ctx) = d.context_window {
            line.push(format!("context {ctx}"));
        }
    }
    let mut check = Check::ok(Rung::Catalog, line.join(" · "))
        .subject(model)
        .elapsed(started.elapsed());
    if let Some(ctx) = details.as_ref().and_then(|d| d.context_window) {
        check = check.measure("context_window", ctx);
    }
    ladder.checks.push(check);
    if embedding_only {
        ladder.embedding_models.push(model.to_owned());
        return true;
    }
    if used_for_chat {
        ladder.present_models.push(model.to_owned());
    }
    if used_for_tools && tools_ok {
        ladder.usable_tool_models.push(model.to_owned());
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn similar_names_prefer_other_tags_of_the_same_model() {
        let server: Vec<String> = ["qwen2.5:3b", "llama3.1:8b", "qwen2.5:14b", "phi4:latest"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            similar_names("qwen2.5:7b", &server),
            vec!["qwen2.5:3b", "qwen2.5:14b"]
        );
        assert_eq!(similar_names("mistral", &server).len(), 3);
        let cloud: Vec<String> = ["o3", "gpt-4o", "gpt-4.1", "text-embedding-3-small"]
            .map(String::from)
            .to_vec();
        assert_eq!(
            similar_names("gpt-4.1-mini", &cloud),
            vec!["gpt-4o", "gpt-4.1"]
        );
        assert!(similar_names("x", &[]).is_empty());
    }
}
