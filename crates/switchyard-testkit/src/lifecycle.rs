//! Ollama's model lifecycle endpoints: `POST /api/pull` (progress as NDJSON; the model
//! joins the catalog on success) and loading a model with `POST /api/generate` without a
//! prompt (it is then listed by `/api/ps`).

use std::borrow::Cow;

use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::json;

use crate::body::ResponseBody;
use crate::config::ModelSpec;
use crate::respond::{NDJSON, Resp, json, ollama_error, response};
use crate::state::Shared;
use crate::time::rfc3339_now;

/// The size of the one layer a scripted pull downloads.
pub(crate) const PULL_LAYER_BYTES: u64 = 4_000_000;

/// `{"model": …}` (or the older `{"name": …}`), with `stream`.
#[derive(Deserialize)]
struct ModelProbe<'a> {
    #[serde(default, borrow)]
    model: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    name: Option<Cow<'a, str>>,
    #[serde(default)]
    stream: Option<bool>,
}

fn probe(body: &Bytes) -> Result<(String, bool), Box<Resp>> {
    let p: ModelProbe<'_> = serde_json::from_slice(body).map_err(|e| {
        Box::new(ollama_error(
            StatusCode::BAD_REQUEST,
            &format!("invalid request body: {e}"),
        ))
    })?;
    match p.model.or(p.name).filter(|n| !n.is_empty()) {
        Some(name) => Ok((name.into_owned(), p.stream.unwrap_or(true))),
        None => Err(Box::new(ollama_error(
            StatusCode::BAD_REQUEST,
            "model is required",
        ))),
    }
}

/// `POST /api/pull`: a model whose name starts with `missing` fails as Ollama's registry
/// does (an error line after the manifest step); any other is "downloaded" in four progress
/// steps and added to the catalog.
pub(crate) fn pull(shared: &Shared, body: &Bytes) -> Resp {
    let (name, stream) = match probe(body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let digest = "sha256:2af3b81862c6be03c769683af18efdadb2c33f60ff32ab6f83e42c043d6c7816";
    let mut lines = vec![json!({"status": "pulling manifest"})];
    if name.starts_with("missing") {
        lines.push(json!({"error": "pull model manifest: file does not exist"}));
    } else {
        for completed in [0, PULL_LAYER_BYTES / 2, PULL_LAYER_BYTES] {
            lines.push(
                json!({"status": format!("pulling {}", &digest[7..19]), "digest": digest,
                "total": PULL_LAYER_BYTES, "completed": completed}),
            );
        }
        lines.push(json!({"status": "verifying sha256 digest"}));
        lines.push(json!({"status": "writing manifest"}));
        lines.push(json!({"status": "success"}));
        shared.edit(|c| {
            if c.find(&name).is_none() {
                c.models.push(ModelSpec::new(&name));
            }
        });
    }
    if !stream {
        let last = lines.pop().unwrap_or_default();
        let status = if last.get("error").is_some() {
            StatusCode::INTERNAL_SERVER_ERROR
        } else {
            StatusCode::OK
        };
        return json(status, Bytes::from(last.to_string()));
    }
    let mut out = String::new();
    for l in lines {
        out.push_str(&l.to_string());
        out.push('\n');
    }
    response(StatusCode::OK, NDJSON, ResponseBody::full(Bytes::from(out)))
}

/// `POST /api/generate` without a prompt: loads the model (listed by `/api/ps` from then
/// on) and answers `done_reason: "load"`, as Ollama does.
pub(crate) fn load(shared: &Shared, name: &str) -> Resp {
    if shared.catalog().find(name).is_none() {
        return ollama_error(StatusCode::NOT_FOUND, &format!("model '{name}' not found"));
    }
    shared.edit(|c| {
        if !c.loaded.iter().any(|m| m == name) {
            c.loaded.push(name.to_owned());
        }
    });
    let body = json!({"model": name, "created_at": rfc3339_now(), "response": "",
        "done": true, "done_reason": "load"});
    json(StatusCode::OK, Bytes::from(body.to_string()))
}

/// `POST /api/generate`: without a prompt, a load ([`load`]); with one, a scripted answer
/// ([`crate::generate`]).
pub(crate) fn generate(shared: &Shared, body: &Bytes) -> Resp {
    #[derive(Deserialize)]
    struct PromptProbe {
        #[serde(default)]
        prompt: Option<String>,
    }
    let (name, _) = match probe(body) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let prompt = serde_json::from_slice::<PromptProbe>(body)
        .ok()
        .and_then(|p| p.prompt)
        .unwrap_or_default();
    if prompt.is_empty() {
        return load(shared, &name);
    }
    crate::generate::answer(shared, crate::render::Api::Ollama, body)
}
