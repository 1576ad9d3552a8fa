//! Embeddings endpoints: Ollama's `POST /api/embed` and `POST /api/embeddings`, OpenAI's
//! `POST /v1/embeddings`. Vectors are deterministic: [`vector_for`] of each input, with
//! `dimensions` entries (default [`DEFAULT_DIMENSIONS`]).

use bytes::Bytes;
use hyper::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::render::Api;
use crate::respond::{Resp, api_error, json, model_not_found};
use crate::state::Shared;

/// Length of a vector when the request names no `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 4;

/// The vector the test upstream answers for `text`: entry `i` is
/// `(len(text) + i * sum(bytes)) mod 1000 / 1000`, so different texts get different
/// vectors and tests can compute the expected ones.
pub fn vector_for(text: &str, dimensions: usize) -> Vec<f32> {
    let len = text.len() as u64;
    let sum: u64 = text.bytes().map(u64::from).sum();
    (0..dimensions as u64)
        .map(|i| ((len + i * sum) % 1000) as f32 / 1000.0)
        .collect()
}

/// Input tokens as the test upstream counts them: words.
fn tokens(inputs: &[String]) -> usize {
    inputs.iter().map(|t| t.split_whitespace().count()).sum()
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    model: String,
    #[serde(default)]
    input: Value,
    #[serde(default)]
    prompt: Option<String>,
    #[serde(default)]
    dimensions: Option<usize>,
}

fn inputs(p: &Probe) -> Option<Vec<String>> {
    match (&p.input, &p.prompt) {
        (Value::String(s), _) => Some(vec![s.clone()]),
        (Value::Array(a), _) => a.iter().map(|v| v.as_str().map(str::to_owned)).collect(),
        (Value::Null, Some(p)) => Some(vec![p.clone()]),
        _ => None,
    }
}

/// Answers an embeddings request on `path` (`/api/embed`, `/api/embeddings` or
/// `/v1/embeddings`).
pub(crate) fn embed(shared: &Shared, path: &str, body: &Bytes) -> Resp {
    let api = if path.starts_with("/v1/") {
        Api::OpenAi
    } else {
        Api::Ollama
    };
    let probe: Probe = match serde_json::from_slice(body) {
        Ok(p) => p,
        Err(e) => return api_error(api, StatusCode::BAD_REQUEST, &format!("invalid body: {e}")),
    };
    let Some(texts) = inputs(&probe) else {
        return api_error(api, StatusCode::BAD_REQUEST, "input must be text");
    };
    if shared.catalog().find(&probe.model).is_none() {
        return model_not_found(api, &probe.model);
    }
    let dims = probe.dimensions.unwrap_or(DEFAULT_DIMENSIONS);
    let vectors: Vec<Vec<f32>> = texts.iter().map(|t| vector_for(t, dims)).collect();
    let count = tokens(&texts);
    let answer = match path {
        "/api/embeddings" => json!({ "embedding": vectors.first().cloned().unwrap_or_default() }),
        "/api/embed" => json!({ "model": probe.model, "embeddings": vectors,
            "total_duration": 1000, "load_duration": 10, "prompt_eval_count": count }),
        _ => json!({ "object": "list", "model": probe.model,
            "data": vectors.iter().enumerate().map(|(i, v)| json!({"object": "embedding", "index": i, "embedding": v})).collect::<Vec<_>>(),
            "usage": { "prompt_tokens": count, "total_tokens": count } }),
    };
    json(StatusCode::OK, Bytes::from(answer.to_string()))
}
