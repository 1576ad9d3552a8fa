//! Model lifecycle on an upstream: the models it has loaded, pulling a model with progress,
//! and its server version. Only Ollama-like providers offer these; the [`Provider`]
//! defaults say "nothing loaded", "no version" and [`ErrorKind::Unsupported`].
//!
//! [`Provider`]: crate::Provider
//! [`ErrorKind::Unsupported`]: crate::ErrorKind::Unsupported

use std::pin::Pin;

use futures::Stream;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::ProviderError;

/// A model an upstream holds in memory now (Ollama's `/api/ps` entry).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadedModel {
    /// The model's name on the upstream.
    pub name: String,
    /// The model reference (usually the same as `name`).
    pub model: String,
    /// Size in memory, bytes.
    pub size: u64,
    /// Bytes of it in GPU memory.
    pub size_vram: u64,
    /// When the upstream will unload it (RFC 3339), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// The context length it was loaded with, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_length: Option<u64>,
    /// Family, size and quantization as the upstream reports them.
    pub details: Value,
}

/// One progress report of a model pull (Ollama's `/api/pull` line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PullProgress {
    /// What is happening (`pulling manifest`, `pulling <digest>`, `verifying sha256
    /// digest`, `success`).
    pub status: String,
    /// The layer being downloaded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// The layer's size in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u64>,
    /// Bytes of the layer downloaded so far.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completed: Option<u64>,
}

impl PullProgress {
    /// Whether this is the last report of a successful pull.
    pub fn is_success(&self) -> bool {
        self.status == "success"
    }
}

/// A pull's progress reports, ending after `success` or with an error.
pub type PullStream = Pin<Box<dyn Stream<Item = Result<PullProgress, ProviderError>> + Send>>;
