//! Configuration of a [`TestUpstream`](crate::TestUpstream): its models and their scripts.

use std::collections::HashMap;
use std::net::SocketAddr;

use crate::script::Script;

/// A model the server lists and answers for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// Model name, e.g. `llama3.2:3b`.
    pub name: String,
    /// Architecture / family, e.g. `llama` (also `general.architecture`).
    pub family: String,
    /// e.g. `3.2B`.
    pub parameter_size: String,
    /// e.g. `Q4_K_M`.
    pub quantization: String,
    /// Context window, reported at `model_info["<family>.context_length"]`.
    pub context_length: u64,
    /// Ollama capabilities, e.g. `["completion", "tools"]`.
    pub capabilities: Vec<String>,
    /// An embedding model (capabilities become `["embedding"]`).
    pub embedding_only: bool,
    /// Size on disk in bytes (also `size` and `size_vram` in `/api/ps`).
    pub size: u64,
    /// `num_ctx` written in `/api/show` `parameters`, if any.
    pub num_ctx: Option<u64>,
    /// For one of Ollama's cloud models: the host that runs it (`https://ollama.com:443`),
    /// listed as `remote_host` (and the name as `remote_model`) by `/api/tags` and
    /// `/api/show`.
    pub remote_host: Option<String>,
}

impl ModelSpec {
    /// A chat model with family `llama`, `8.0B`, `Q4_K_M`, 8192 context and
    /// capabilities `completion` and `tools`.
    pub fn new(name: impl Into<String>) -> Self {
        ModelSpec {
            name: name.into(),
            family: "llama".to_owned(),
            parameter_size: "8.0B".to_owned(),
            quantization: "Q4_K_M".to_owned(),
            context_length: 8192,
            capabilities: vec!["completion".to_owned(), "tools".to_owned()],
            embedding_only: false,
            size: 4_920_753_328,
            num_ctx: None,
            remote_host: None,
        }
    }

    /// An embedding-only model (capabilities `["embedding"]`, family `bert`).
    pub fn embedding(name: impl Into<String>) -> Self {
        ModelSpec {
            family: "bert".to_owned(),
            parameter_size: "137M".to_owned(),
            quantization: "F16".to_owned(),
            capabilities: vec!["embedding".to_owned()],
            embedding_only: true,
            size: 274_302_450,
            ..ModelSpec::new(name)
        }
    }

    /// Sets the family.
    #[must_use]
    pub fn family(mut self, family: impl Into<String>) -> Self {
        self.family = family.into();
        self
    }

    /// Sets the context length.
    #[must_use]
    pub fn context_length(mut self, n: u64) -> Self {
        self.context_length = n;
        self
    }

    /// Replaces the capabilities.
    #[must_use]
    pub fn capabilities<I, S>(mut self, caps: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.capabilities = caps.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the parameter size label.
    #[must_use]
    pub fn parameter_size(mut self, s: impl Into<String>) -> Self {
        self.parameter_size = s.into();
        self
    }

    /// Sets the quantization label.
    #[must_use]
    pub fn quantization(mut self, q: impl Into<String>) -> Self {
        self.quantization = q.into();
        self
    }

    /// Makes this one of Ollama's cloud models, run on `host`.
    #[must_use]
    pub fn remote(mut self, host: impl Into<String>) -> Self {
        self.remote_host = Some(host.into());
        self
    }

    /// Sets a `num_ctx` parameter shown by `/api/show`.
    #[must_use]
    pub fn num_ctx(mut self, n: u64) -> Self {
        self.num_ctx = Some(n);
        self
    }

    /// Ollama capabilities as reported (`["embedding"]` for embedding-only models).
    pub fn effective_capabilities(&self) -> Vec<String> {
        if self.embedding_only {
            vec!["embedding".to_owned()]
        } else {
            self.capabilities.clone()
        }
    }
}

/// How to start a [`TestUpstream`](crate::TestUpstream).
///
/// [`UpstreamConfig::default`] serves one model, `test-model`, with the default text script.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// Models listed by `/api/tags` and `/v1/models`; chat for any other model is a 404.
    pub models: Vec<ModelSpec>,
    /// Per-model scripts.
    pub scripts: HashMap<String, Script>,
    /// Script for listed models without an entry in `scripts`.
    pub default_script: Script,
    /// When set, `/v1/*` requires `Authorization: Bearer <key>` (else 401, OpenAI shape).
    pub api_key: Option<String>,
    /// Fast mode: every delay is skipped and unfaulted answers are sent as one
    /// precomputed body (for benchmarks).
    pub fast: bool,
    /// `/api/version` answer.
    pub version: String,
    /// Names of the models `/api/ps` reports as loaded.
    pub loaded: Vec<String>,
    /// At most this many requests are kept by [`TestUpstream::requests`](crate::TestUpstream::requests)
    /// (oldest dropped first; the counters stay exact).
    pub record_limit: usize,
    /// Largest request body accepted (larger: HTTP 413).
    pub max_body_bytes: usize,
    /// Address to bind; default `127.0.0.1:0`.
    pub listen: SocketAddr,
    /// Delta/message field that carries reasoning on the OpenAI side
    /// (default `reasoning_content`, as vLLM and DeepSeek; Ollama's `/v1` uses `reasoning`).
    pub openai_reasoning_field: String,
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            models: vec![ModelSpec::new("test-model")],
            scripts: HashMap::new(),
            default_script: Script::default(),
            api_key: None,
            fast: false,
            version: "0.12.6".to_owned(),
            loaded: Vec::new(),
            record_limit: 10_000,
            max_body_bytes: 16 * 1024 * 1024,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            openai_reasoning_field: "reasoning_content".to_owned(),
        }
    }
}

impl UpstreamConfig {
    /// A config without any model.
    pub fn empty() -> Self {
        UpstreamConfig {
            models: Vec::new(),
            ..UpstreamConfig::default()
        }
    }

    /// The benchmark config: fast mode, a model named `bench`, a short text reply and a
    /// small request log.
    pub fn bench() -> Self {
        UpstreamConfig {
            models: vec![ModelSpec::new("bench")],
            default_script: Script::text(["Hello", "!", " How", " can", " I", " help", "?"]),
            fast: true,
            record_limit: 64,
            ..UpstreamConfig::default()
        }
    }

    /// Adds a model served with the default script.
    #[must_use]
    pub fn model(mut self, spec: ModelSpec) -> Self {
        self.models.retain(|m| m.name != spec.name);
        self.models.push(spec);
        self
    }

    /// Adds a model (with default attributes) served with `script`.
    #[must_use]
    pub fn model_with_script(self, name: &str, script: Script) -> Self {
        self.model(ModelSpec::new(name)).script(name, script)
    }

    /// Sets the script of a model (the model must also be in `models` to be served).
    #[must_use]
    pub fn script(mut self, model: &str, script: Script) -> Self {
        self.scripts.insert(model.to_owned(), script);
        self
    }

    /// Sets the script a model answers with once the conversation's last turn is a tool
    /// result (a `tool` message, or an Anthropic user turn with a `tool_result` block), so
    /// an agent's loop ends: typically a tool call first, then text after the result.
    #[must_use]
    pub fn after_tool_result(mut self, model: &str, script: Script) -> Self {
        self.scripts.insert(after_tool_key(model), script);
        self
    }

    /// Sets the default script.
    #[must_use]
    pub fn default_script(mut self, script: Script) -> Self {
        self.default_script = script;
        self
    }

    /// Requires this bearer key on `/v1/*`.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Turns fast mode on or off.
    #[must_use]
    pub fn fast(mut self, fast: bool) -> Self {
        self.fast = fast;
        self
    }

    /// Marks a model as loaded (listed by `/api/ps`).
    #[must_use]
    pub fn loaded(mut self, model: &str) -> Self {
        self.loaded.push(model.to_owned());
        self
    }

    /// Sets the `/api/version` answer.
    #[must_use]
    pub fn version(mut self, v: impl Into<String>) -> Self {
        self.version = v.into();
        self
    }

    /// Keeps at most `n` recorded requests (the counters stay exact).
    #[must_use]
    pub fn record_limit(mut self, n: usize) -> Self {
        self.record_limit = n;
        self
    }

    /// Sets the largest request body accepted (larger: HTTP 413).
    #[must_use]
    pub fn max_body_bytes(mut self, n: usize) -> Self {
        self.max_body_bytes = n;
        self
    }

    /// Sets the OpenAI delta/message field carrying reasoning (`reasoning_content` by
    /// default; `reasoning` as Ollama's `/v1` sends it).
    #[must_use]
    pub fn openai_reasoning_field(mut self, field: impl Into<String>) -> Self {
        self.openai_reasoning_field = field.into();
        self
    }

    /// Sets the address to bind.
    #[must_use]
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }
}

/// The script key of a model's answer after a tool result.
pub(crate) fn after_tool_key(model: &str) -> String {
    format!("{model}\u{0}after-tool-result")
}
