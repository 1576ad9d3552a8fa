//! The shapes of Ollama's metadata answers (`/api/version`, `/api/tags`, `/api/ps`,
//! `/api/show`). Tolerant readers: unknown fields are ignored and missing ones default, since
//! Ollama adds fields every release.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchyard_core::Capabilities;

/// `GET /api/version`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct VersionResponse {
    #[serde(default)]
    pub(crate) version: String,
}

/// `GET /api/tags`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TagsResponse {
    #[serde(default)]
    pub(crate) models: Vec<TagModel>,
}

/// `GET /api/ps`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PsResponse {
    #[serde(default)]
    pub(crate) models: Vec<RunningModel>,
}

/// A model's details as `/api/tags`, `/api/ps` and `/api/show` report them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ModelDetails {
    /// The model it was derived from, if any.
    pub parent_model: String,
    /// File format (`gguf`).
    pub format: String,
    /// Family (`llama`, `qwen2`).
    pub family: String,
    /// All families.
    #[serde(deserialize_with = "null_as_default")]
    pub families: Vec<String>,
    /// Parameter size label (`7.6B`).
    pub parameter_size: String,
    /// Quantization label (`Q4_K_M`).
    pub quantization_level: String,
}

/// One pulled model, as `/api/tags` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TagModel {
    /// The name to chat with (`qwen2.5:7b`).
    pub name: String,
    /// The model reference (usually the same as `name`).
    pub model: String,
    /// Last modification (RFC 3339).
    pub modified_at: String,
    /// Size on disk in bytes.
    pub size: u64,
    /// Content digest.
    pub digest: String,
    /// Family, size and quantization.
    #[serde(deserialize_with = "null_as_default")]
    pub details: ModelDetails,
    /// Where the daemon runs this model, when not here (Ollama's cloud models).
    #[serde(flatten)]
    pub remote: RemoteModel,
}

impl TagModel {
    /// The name to use in requests: `name`, or `model` when `name` is empty.
    pub fn id(&self) -> &str {
        if self.name.is_empty() {
            &self.model
        } else {
            &self.name
        }
    }
}

/// A model currently loaded in memory, as `/api/ps` lists it (a warm model).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunningModel {
    /// The model's name.
    pub name: String,
    /// The model reference.
    pub model: String,
    /// Size in memory in bytes.
    pub size: u64,
    /// Bytes of it in GPU memory (0 on CPU).
    pub size_vram: u64,
    /// When it will be unloaded (RFC 3339).
    pub expires_at: String,
    /// The context length it was loaded with, when the server reports it.
    pub context_length: Option<u64>,
    /// Family, size and quantization.
    #[serde(deserialize_with = "null_as_default")]
    pub details: ModelDetails,
}

/// `POST /api/show`: what Ollama knows about one model.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ShowResponse {
    /// Family, size and quantization.
    #[serde(deserialize_with = "null_as_default")]
    pub details: ModelDetails,
    /// GGUF metadata (`general.architecture`, `<arch>.context_length`, ...).
    #[serde(deserialize_with = "null_as_default")]
    pub model_info: Map<String, Value>,
    /// Capability names (`completion`, `tools`, `thinking`, `vision`, `embedding`, ...);
    /// empty on servers too old to report them.
    #[serde(deserialize_with = "null_as_default")]
    pub capabilities: Vec<String>,
    /// The Modelfile's parameters, one `name value` per line.
    pub parameters: String,
    /// The prompt template.
    pub template: String,
    /// Last modification (RFC 3339).
    pub modified_at: String,
    /// Where the daemon runs this model, when not here (Ollama's cloud models).
    #[serde(flatten)]
    pub remote: RemoteModel,
}

impl ShowResponse {
    /// The capabilities, or `None` when the server did not report any.
    pub fn capabilities(&self) -> Option<Capabilities> {
        if self.capabilities.is_empty() {
            return None;
        }
        Some(Capabilities::from_names(
            self.capabilities.iter().map(String::as_str),
        ))
    }

    /// The trained context length: `model_info["<general.architecture>.context_length"]`,
    /// or any `*.context_length` entry when the architecture is not named.
    pub fn context_length(&self) -> Option<u64> {
        let arch = self
            .model_info
            .get("general.architecture")
            .and_then(Value::as_str);
        if let Some(arch) = arch {
            let key = format!("{arch}.context_length");
            if let Some(n) = self.model_info.get(&key).and_then(Value::as_u64) {
                return Some(n);
            }
        }
        self.model_info
            .iter()
            .filter(|(k, _)| k.ends_with(".context_length"))
            .find_map(|(_, v)| v.as_u64())
    }

    /// The `num_ctx` set in the Modelfile's parameters, if any.
    pub fn num_ctx(&self) -> Option<u64> {
        self.parameters.lines().find_map(|line| {
            let mut words = line.split_whitespace();
            match (words.next(), words.next()) {
                (Some("num_ctx"), Some(value)) => value.trim_matches('"').parse().ok(),
                _ => None,
            }
        })
    }

    /// The context window to advertise: the trained context length, or the Modelfile's
    /// `num_ctx` when that is larger.
    pub fn context_window(&self) -> Option<u64> {
        match (self.context_length(), self.num_ctx()) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }
}

/// `null` reads as the default (Ollama sends `"families": null` on some models).
fn null_as_default<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(deserializer)?.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn show_context_window_and_num_ctx() {
        let show: ShowResponse = serde_json::from_str(
            r#"{"model_info":{"general.architecture":"qwen2","qwen2.context_length":32768},
                "parameters":"stop \"<|im_end|>\"\nnum_ctx                        65536",
                "capabilities":["completion","tools"],"details":{"families":null},"new_field":1}"#,
        )
        .unwrap();
        assert_eq!(show.context_length(), Some(32768));
        assert_eq!(show.num_ctx(), Some(65536));
        assert_eq!(show.context_window(), Some(65536));
        assert!(show.capabilities().unwrap().tools);
        let bare: ShowResponse = serde_json::from_str(r#"{"model_info":null}"#).unwrap();
        assert_eq!(bare.capabilities(), None);
        assert_eq!(bare.context_window(), None);
    }

    #[test]
    fn tags_tolerate_missing_and_unknown_fields() {
        let tags: TagsResponse =
            serde_json::from_str(r#"{"models":[{"model":"a:1","details":null,"x":2}]}"#).unwrap();
        assert_eq!(tags.models[0].id(), "a:1");
    }
}

/// `remote_host` / `remote_model`, as `/api/tags` and `/api/show` report them for a model
/// the daemon runs on another host (Ollama's cloud models); both empty for a local model.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteModel {
    /// The host that runs the model (`https://ollama.com:443`); empty for a model that runs
    /// here.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub remote_host: String,
    /// The model's name on `remote_host`.
    #[serde(
        default,
        deserialize_with = "null_as_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub remote_model: String,
}

impl RemoteModel {
    /// Whether the model runs on another host.
    pub fn is_remote(&self) -> bool {
        !self.remote_host.is_empty() || !self.remote_model.is_empty()
    }
}
