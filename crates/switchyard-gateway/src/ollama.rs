//! Ollama's native API: `POST /api/chat`, `GET /api/tags`, `POST /api/show`,
//! and `GET /` / `HEAD /` ("Ollama is running"); the model lifecycle endpoints are in
//! `lifecycle.rs`.

use std::sync::Arc;
use std::time::SystemTime;

use axum::Extension;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_core::ModelInfo;
use switchyard_router::CatalogEntry;

use crate::api::{Api, ApiError};
use crate::auth::Caller;
use crate::gateway::Shared;
use crate::{catalog, chat, time};

/// `POST /api/chat` (streamed unless `"stream": false`).
pub(crate) fn chat(
    State(shared): State<Arc<Shared>>,
    request: Request,
) -> impl Future<Output = Response> + Send {
    chat::handle(shared, Api::Ollama, request)
}

/// `GET /` and `HEAD /`: what Ollama answers, so clients that probe the base URL work.
pub(crate) async fn root() -> &'static str {
    "Ollama is running"
}

/// `GET /api/tags`: route aliases and exact `provider/model` refs, as Ollama lists models.
pub(crate) async fn tags(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    let entries = catalog::visible_entries(&shared, &caller).await;
    let now = time::rfc3339(SystemTime::now());
    let models = entries
        .iter()
        .map(|e| TagModel {
            name: &e.id,
            model: &e.id,
            modified_at: e.info.modified_at.as_deref().unwrap_or(&now),
            size: e.info.size_bytes.unwrap_or(0),
            digest: digest_of(&e.id),
            details: Details::of(&e.info),
        })
        .collect();
    catalog::json(&TagList { models })
}

/// `POST /api/show`: details of a model or route alias (an alias answers with its primary
/// target's capabilities and context length). `model_info` is always present.
pub(crate) async fn show(
    State(shared): State<Arc<Shared>>,
    Extension(caller): Extension<Caller>,
    request: Request,
) -> Response {
    let max_body = shared.settings.load().config.max_body_bytes;
    let (parts, body) = request.into_parts();
    let bytes = match chat::read_body(Api::Ollama, &parts.headers, body, max_body).await {
        Ok(b) => b,
        Err(e) => return e.into_response(),
    };
    let wanted = match serde_json::from_slice::<ShowRequest>(&bytes) {
        Ok(r) => match r.model.or(r.name) {
            Some(m) => m,
            None => return ApiError::invalid(Api::Ollama, "missing field `model`").into_response(),
        },
        Err(e) => {
            return ApiError::invalid(Api::Ollama, format!("invalid request body: {e}"))
                .into_response();
        }
    };
    let entry = catalog::lookup(&shared, &caller, &wanted).await;
    catalog::json_or_not_found(Api::Ollama, entry.as_ref().map(ShowBody::of), || {
        format!("model '{wanted}' not found")
    })
}

#[derive(Serialize)]
struct TagList<'a> {
    models: Vec<TagModel<'a>>,
}

#[derive(Serialize)]
struct TagModel<'a> {
    name: &'a str,
    model: &'a str,
    modified_at: &'a str,
    size: u64,
    digest: String,
    details: Details<'a>,
}

#[derive(Serialize)]
struct Details<'a> {
    parent_model: &'static str,
    format: &'static str,
    family: &'a str,
    families: Vec<&'a str>,
    parameter_size: &'a str,
    quantization_level: &'a str,
}

impl<'a> Details<'a> {
    fn of(info: &'a ModelInfo) -> Self {
        let family = info.family.as_deref().unwrap_or("");
        Details {
            parent_model: "",
            format: "gguf",
            family,
            families: if family.is_empty() {
                Vec::new()
            } else {
                vec![family]
            },
            parameter_size: info.parameter_size.as_deref().unwrap_or(""),
            quantization_level: info.quantization.as_deref().unwrap_or(""),
        }
    }
}

#[derive(Deserialize)]
struct ShowRequest {
    #[serde(default)]
    model: Option<String>,
    /// Older clients send `name`.
    #[serde(default)]
    name: Option<String>,
}

#[derive(Serialize)]
struct ShowBody<'a> {
    license: &'static str,
    modelfile: String,
    parameters: String,
    template: &'static str,
    details: Details<'a>,
    model_info: Map<String, Value>,
    capabilities: Vec<&'static str>,
    modified_at: String,
}

impl<'a> ShowBody<'a> {
    fn of(entry: &'a CatalogEntry) -> Self {
        let info = &entry.info;
        let architecture = info.family.clone().unwrap_or_else(|| "unknown".to_owned());
        let mut model_info = Map::new();
        if let Some(ctx) = info.context_window {
            model_info.insert(format!("{architecture}.context_length"), Value::from(ctx));
        }
        model_info.insert("general.architecture".to_owned(), Value::from(architecture));
        model_info.insert(
            "general.basename".to_owned(),
            Value::from(entry.id.as_str()),
        );
        let parameters = info
            .context_window
            .map(|n| format!("num_ctx {n}"))
            .unwrap_or_default();
        ShowBody {
            license: "",
            modelfile: format!("# served by Switchyard: {}\n", entry.id),
            parameters,
            template: "{{ .Prompt }}",
            details: Details::of(info),
            model_info,
            capabilities: capability_names(info),
            modified_at: info
                .modified_at
                .clone()
                .unwrap_or_else(|| time::rfc3339(SystemTime::now())),
        }
    }
}

/// Ollama's capability names. A model whose capabilities discovery could not tell is
/// reported as `completion` and `tools`, so clients that check before using tools let
/// the request through (the upstream still has the last word).
fn capability_names(info: &ModelInfo) -> Vec<&'static str> {
    let Some(caps) = info.capabilities else {
        return vec!["completion", "tools"];
    };
    let mut names = Vec::with_capacity(5);
    if caps.completion {
        names.push("completion");
    }
    if caps.tools {
        names.push("tools");
    }
    if caps.thinking {
        names.push("thinking");
    }
    if caps.vision {
        names.push("vision");
    }
    if caps.embedding {
        names.push("embedding");
    }
    names
}

/// A stable 64-hex-digit digest for a model name (Ollama lists a sha256 per model; the
/// gateway has no blob, so it derives one from the name with FNV-1a under four seeds).
fn digest_of(name: &str) -> String {
    use std::fmt::Write as _;
    let mut out = String::with_capacity(64);
    for seed in [0xcbf2_9ce4_8422_2325_u64, 0x1, 0x2, 0x3] {
        let mut h = seed ^ 0xcbf2_9ce4_8422_2325;
        for b in name.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
        let _ = write!(out, "{h:016x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_core::{Capabilities, Locality};

    #[test]
    fn digests_are_stable_and_distinct() {
        assert_eq!(digest_of("chat").len(), 64);
        assert_eq!(digest_of("chat"), digest_of("chat"));
        assert_ne!(digest_of("chat"), digest_of("code"));
    }

    #[test]
    fn capabilities_map_to_ollama_names() {
        let mut info = ModelInfo::new("m", Locality::Local);
        assert_eq!(capability_names(&info), ["completion", "tools"]);
        info.capabilities = Some(Capabilities {
            completion: true,
            vision: true,
            ..Capabilities::default()
        });
        assert_eq!(capability_names(&info), ["completion", "vision"]);
    }
}
