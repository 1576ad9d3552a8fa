//! Text completion from a raw prompt: Ollama's `/api/generate` and OpenAI's legacy
//! `/v1/completions`, with `suffix` for fill-in-the-middle.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::request::{KeepAlive, RequestMeta, SamplingOptions, Think};

/// A completion request: a prompt (and optional suffix) rather than messages.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GenerateRequest {
    /// The model reference (route alias, `provider/model` or bare name).
    pub model: String,
    /// The text to continue.
    pub prompt: String,
    /// Text after the insertion point (fill-in-the-middle).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Ollama: a system prompt overriding the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// Ollama: a prompt template overriding the model's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<String>,
    /// Ollama: send the prompt without the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<bool>,
    /// Ollama: images as bare base64.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Ollama: `"json"` or a JSON schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<Value>,
    /// Thinking on, off or at a level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub think: Option<Think>,
    /// Ollama's (deprecated) conversation context from an earlier answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<Vec<i64>>,
    /// Sampling options.
    #[serde(default)]
    pub options: SamplingOptions,
    /// Ollama `options` the gateway does not model (`repeat_penalty`, `min_p`,
    /// `num_predict: -1`, ...), passed to an Ollama upstream as sent, under `options`.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub extra_options: Map<String, Value>,
    /// Ollama's `keep_alive`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<KeepAlive>,
    /// Whether the client wants the answer streamed.
    #[serde(default)]
    pub stream: bool,
    /// Who sent it and under which policy.
    #[serde(default)]
    pub meta: RequestMeta,
}
