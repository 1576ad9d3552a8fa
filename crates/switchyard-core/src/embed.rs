//! Embeddings: the request either client API decodes into, and the vectors a provider
//! answers with.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::{KeepAlive, RequestMeta};

/// A request for embeddings of one or more texts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedRequest {
    /// The model reference (route alias, `provider/model` or bare name).
    pub model: String,
    /// The texts, in order (a single string is one text).
    pub input: Vec<String>,
    /// Shorten the vectors to this many dimensions, when the model can.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// Ollama's `truncate`: cut inputs longer than the context (its default) or fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate: Option<bool>,
    /// Ollama's `keep_alive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Ollama's `options` (model parameters such as `num_ctx`), as the client sent them:
    /// passed to an Ollama upstream untouched; other upstreams have no place for them.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub options: Map<String, Value>,
    /// Who sent it and under which policy.
    #[serde(default)]
    pub meta: RequestMeta,
}

/// The vectors for an [`EmbedRequest`], one per input, in order.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmbedResponse {
    /// One vector per input.
    pub vectors: Vec<Vec<f32>>,
    /// Input tokens, when the upstream counted them.
    pub prompt_tokens: u32,
}
