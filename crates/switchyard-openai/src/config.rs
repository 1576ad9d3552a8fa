//! How to reach one OpenAI-compatible upstream, and why a configuration is refused.

use switchyard_core::{Locality, ModelInfo};
use switchyard_http::{BaseUrlError, ClientBuildError, ClientConfig};

pub use switchyard_stream::openai::request::MaxTokensField;

/// The configuration of one OpenAI-compatible upstream.
///
/// ```
/// use switchyard_openai::{MaxTokensField, OpenAiConfig};
///
/// // A hosted API: the key comes from the environment when the client is built.
/// let mut cloud = OpenAiConfig::new("https://api.openai.com/v1");
/// cloud.api_key_env = Some("OPENAI_API_KEY".into());
/// cloud.max_tokens_field = MaxTokensField::MaxCompletionTokens;
///
/// // Ollama's OpenAI layer on this host: send `num_ctx`, recover calls written as text.
/// let local = OpenAiConfig::ollama_v1("http://127.0.0.1:11434/v1");
/// assert!(local.send_num_ctx && local.tool_text_recovery);
/// ```
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The base URL **including** `/v1` (`https://api.openai.com/v1`,
    /// `http://127.0.0.1:11434/v1`); `/chat/completions` and `/models` are appended.
    pub base_url: String,
    /// Transport: phase timeouts, `bearer_token` (the API key), extra headers, extra CA file.
    pub http: ClientConfig,
    /// The name of an environment variable holding the API key, read once when the client
    /// is built and used when [`ClientConfig::bearer_token`] is not set. A named variable
    /// that is missing or empty is a configuration error (never a silent unauthenticated
    /// client). No variable is read unless named here.
    pub api_key_env: Option<String>,
    /// Where the upstream runs (default [`Locality::Cloud`]).
    pub locality: Locality,
    /// Which field carries the output limit: `max_tokens` (most servers, Ollama's `/v1`)
    /// or `max_completion_tokens` (OpenAI's reasoning models).
    pub max_tokens_field: MaxTokensField,
    /// Send Ollama's `options.num_ctx` (Ollama's `/v1` otherwise silently uses a small
    /// context window). Other servers ignore or reject the field, so it is off by default.
    pub send_num_ctx: bool,
    /// The `num_ctx` sent when a request does not set one itself (needs `send_num_ctx`).
    pub default_num_ctx: Option<u32>,
    /// Turn tool calls that the model wrote as text (`<tool_call>`, bare JSON, ...) into
    /// structured calls, for requests that offered tools. Off by default; turn it on for
    /// `/v1` upstreams serving models that write calls as text.
    pub tool_text_recovery: bool,
    /// A static catalog (with prices and limits). Used as the model list when `discover`
    /// is off or `/models` fails, and merged into discovered entries otherwise.
    pub models: Vec<ModelInfo>,
    /// Ask the upstream's `/models` for its catalog (default on).
    pub discover: bool,
}

impl OpenAiConfig {
    /// A configuration for `base_url` with defaults everywhere else: cloud locality,
    /// `max_tokens`, no `num_ctx`, no text recovery, discovery on, no static models.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            http: ClientConfig::default(),
            api_key_env: None,
            locality: Locality::Cloud,
            max_tokens_field: MaxTokensField::MaxTokens,
            send_num_ctx: false,
            default_num_ctx: None,
            tool_text_recovery: false,
            models: Vec::new(),
            discover: true,
        }
    }

    /// A configuration for Ollama's OpenAI layer on this host: local locality,
    /// `max_tokens`, `num_ctx` sent, text tool-call recovery on.
    pub fn ollama_v1(base_url: impl Into<String>) -> Self {
        Self {
            locality: Locality::Local,
            send_num_ctx: true,
            tool_text_recovery: true,
            ..Self::new(base_url)
        }
    }
}

/// Why an [`OpenAiConfig`] was refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenAiConfigError {
    /// The base URL is not an absolute `http`/`https` URL.
    #[error(transparent)]
    BaseUrl(#[from] BaseUrlError),
    /// The HTTP client could not be built (bad header, CA file, proxy).
    #[error(transparent)]
    Client(#[from] ClientBuildError),
    /// The environment variable named by `api_key_env` is missing or empty.
    #[error("the API key variable `{var}` is not set (or is empty)")]
    MissingApiKey {
        /// The variable's name.
        var: String,
    },
    /// `default_num_ctx` is set but `send_num_ctx` is off, or it is zero.
    #[error("default_num_ctx {value:?} needs send_num_ctx = true and a value above zero")]
    InvalidNumCtx {
        /// The configured value.
        value: Option<u32>,
    },
    /// The static catalog names the same model twice.
    #[error("the static model catalog lists `{id}` twice")]
    DuplicateModel {
        /// The repeated model id.
        id: String,
    },
}

impl OpenAiConfigError {
    /// A stable snake_case code for this error.
    pub fn reason_code(&self) -> &'static str {
        match self {
            OpenAiConfigError::BaseUrl(_) => "invalid_base_url",
            OpenAiConfigError::Client(e) => e.reason_code(),
            OpenAiConfigError::MissingApiKey { .. } => "missing_api_key",
            OpenAiConfigError::InvalidNumCtx { .. } => "invalid_num_ctx",
            OpenAiConfigError::DuplicateModel { .. } => "duplicate_model",
        }
    }
}

/// Checks the parts of a config that do not need I/O, and resolves the API key.
/// Returns the transport config to build the client from.
pub(crate) fn resolve(config: &OpenAiConfig) -> Result<ClientConfig, OpenAiConfigError> {
    if config.default_num_ctx.is_some() && !config.send_num_ctx
        || config.default_num_ctx == Some(0)
    {
        return Err(OpenAiConfigError::InvalidNumCtx {
            value: config.default_num_ctx,
        });
    }
    for (i, m) in config.models.iter().enumerate() {
        if config.models[..i].iter().any(|other| other.id == m.id) {
            return Err(OpenAiConfigError::DuplicateModel { id: m.id.clone() });
        }
    }
    let mut http = config.http.clone();
    if http.bearer_token.is_none() {
        if let Some(var) = &config.api_key_env {
            match std::env::var(var) {
                Ok(key) if !key.trim().is_empty() => http.bearer_token = Some(key.trim().to_owned()),
                _ => return Err(OpenAiConfigError::MissingApiKey { var: var.clone() }),
            }
        }
    }
    Ok(http)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn num_ctx_needs_send() {
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1");
        c.default_num_ctx = Some(8192);
        let e = resolve(&c).err();
        assert_eq!(e.map(|e| e.reason_code()), Some("invalid_num_ctx"));
        c.send_num_ctx = true;
        assert!(resolve(&c).is_ok());
        c.default_num_ctx = Some(0);
        assert!(resolve(&c).is_err());
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

    #[test]
    fn missing_key_variable_is_an_error() {
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1");
        c.api_key_env = Some("SWITCHYARD_OPENAI_TEST_SURELY_UNSET_VARIABLE".into());
        let e = resolve(&c).err();
        assert_eq!(e.map(|e| e.reason_code()), Some("missing_api_key"));
        // An explicit token wins; the variable is not consulted.
        c.http.bearer_token = Some("sk-test".into());
        assert_eq!(
            resolve(&c).ok().and_then(|h| h.bearer_token),
            Some("sk-test".to_owned())
        );
    }

    #[test]
    fn key_variable_is_read_when_set() {
        // PATH is set in every test environment (and setting variables needs `unsafe`).
        let mut c = OpenAiConfig::new("http://127.0.0.1:1/v1");
        c.api_key_env = Some("PATH".into());
        let expected = std::env::var("PATH").ok().map(|p| p.trim().to_owned());
        assert_eq!(resolve(&c).ok().and_then(|h| h.bearer_token), expected);
    }
}
