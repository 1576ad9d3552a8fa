//! How to reach one OpenAI-compatible upstream, and why a configuration is refused.

use switchyard_core::{Locality, ModelInfo};
use switchyard_http::{ClientConfig, SetupError, check_catalog};

pub use switchyard_stream::openai::request::MaxTokensField;

/// The configuration of one OpenAI-compatible upstream.
///
/// ```
/// use switchyard_openai::{MaxTokensField, OpenAiConfig, TextRecovery};
///
/// // A hosted API: the caller passes the key's value in (this crate reads no
/// // environment variables).
/// let mut cloud = OpenAiConfig::new("https://api.openai.com/v1");
/// cloud.client.bearer_token = Some("sk-...".into());
/// cloud.max_tokens_field = MaxTokensField::MaxCompletionTokens;
///
/// // Ollama's OpenAI layer on this host: send `num_ctx`, recover calls written as text.
/// let local = OpenAiConfig::ollama_v1("http://127.0.0.1:11434/v1", 8192);
/// assert_eq!(local.num_ctx, Some(8192));
/// assert_eq!(local.text_tool_recovery, TextRecovery::On);
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The base URL **including** `/v1` as users write it (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`); `/chat/completions` and `/models` are appended. A
    /// trailing `/` is removed.
    pub base_url: String,
    /// Transport: phase timeouts, `bearer_token` (the API key), extra headers, extra CA file.
    pub client: ClientConfig,
    /// Which field carries the output limit: `max_tokens` (most servers, Ollama's `/v1`)
    /// or `max_completion_tokens` (OpenAI's reasoning models).
    pub max_tokens_field: MaxTokensField,
    /// When set, Ollama's `options.num_ctx` is sent (Ollama's `/v1` otherwise silently uses
    /// a small context window): the request's own `num_ctx` when it has one, else this
    /// value. When `None`, `options.num_ctx` is never sent (other servers reject or ignore
    /// it).
    pub num_ctx: Option<u32>,
    /// Turn tool calls that the model wrote as text (`<tool_call>`, bare JSON, ...) into
    /// structured calls, for requests that offered tools.
    pub text_tool_recovery: TextRecovery,
    /// A static catalog (with prices and limits). When not empty,
    /// [`switchyard_core::Provider::models`] returns it without asking the upstream; when
    /// empty it asks `/models`. [`crate::OpenAiClient::list_models`] always asks, and merges
    /// these entries' prices and limits into what it finds.
    pub models: Vec<ModelInfo>,
    /// Where the upstream runs (default [`Locality::Cloud`]); copied into every
    /// [`ModelInfo`] this client reports. Whoever builds the client sets it.
    pub locality: Locality,
    /// The upstream serves the OpenAI Responses API (`{base_url}/responses`: OpenAI,
    /// Ollama >= 0.13.3, vLLM): Responses requests are passed through to it natively
    /// ([`crate::OpenAiClient::responses`]) instead of translated into chat. Default `false`.
    pub responses: bool,
}

/// When text tool-call recovery runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum TextRecovery {
    /// Never (the default).
    #[default]
    Off,
    /// For every model, on requests that offered tools.
    On,
    /// Only for these upstream model ids, on requests that offered tools.
    Models(Vec<String>),
}

impl TextRecovery {
    /// Whether recovery runs for `model`.
    pub fn applies_to(&self, model: &str) -> bool {
        match self {
            TextRecovery::Off => false,
            TextRecovery::On => true,
            TextRecovery::Models(models) => models.iter().any(|m| m == model),
        }
    }
}

impl OpenAiConfig {
    /// A configuration for `base_url` with defaults everywhere else: cloud locality,
    /// `max_tokens`, no `num_ctx`, no text recovery, no static models.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            client: ClientConfig::default(),
            max_tokens_field: MaxTokensField::MaxTokens,
            num_ctx: None,
            text_tool_recovery: TextRecovery::Off,
            models: Vec::new(),
            locality: Locality::Cloud,
            responses: false,
        }
    }

    /// A configuration for Ollama's OpenAI layer on this host: local locality,
    /// `max_tokens`, `options.num_ctx` sent (`num_ctx` unless the request sets its own),
    /// text tool-call recovery on.
    pub fn ollama_v1(base_url: impl Into<String>, num_ctx: u32) -> Self {
        Self {
            locality: Locality::Local,
            num_ctx: Some(num_ctx),
            text_tool_recovery: TextRecovery::On,
            ..Self::new(base_url)
        }
    }
}

/// Why an [`OpenAiConfig`] was refused: the error all client crates share
/// ([`SetupError`]); `num_ctx` at zero is `invalid_num_ctx`.
pub type OpenAiBuildError = SetupError;

/// Checks the parts of a config that do not need I/O.
/// Returns the transport config to build the client from.
pub(crate) fn resolve(config: &OpenAiConfig) -> Result<ClientConfig, OpenAiBuildError> {
    if config.num_ctx == Some(0) {
        return Err(SetupError::Zero {
            field: "num_ctx",
            code: "invalid_num_ctx",
        });
    }
    check_catalog(&config.models)?;
    Ok(config.client.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_num_ctx_is_refused() {
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1");
        c.num_ctx = Some(8192);
        assert!(resolve(&c).is_ok());
        c.num_ctx = Some(0);
        let e = resolve(&c).err();
        assert_eq!(e.map(|e| e.reason_code()), Some("invalid_num_ctx"));
    }

    #[test]
    fn text_recovery_scope() {
        assert!(!TextRecovery::Off.applies_to("m"));
        assert!(TextRecovery::On.applies_to("m"));
        let only = TextRecovery::Models(vec!["qwen".into()]);
        assert!(only.applies_to("qwen") && !only.applies_to("llama"));
    }

    #[test]
    fn duplicate_static_models_refused() {
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1");
        c.models = vec![
            ModelInfo::new("a", Locality::Cloud),
            ModelInfo::new("b", Locality::Cloud),
            ModelInfo::new("a", Locality::Cloud),
        ];
        let e = resolve(&c).err();
        assert_eq!(e.map(|e| e.reason_code()), Some("duplicate_model"));
    }
}
