//! How to reach one Anthropic Messages upstream, and why a configuration is refused.

use switchyard_core::{Locality, ModelInfo};
use switchyard_http::{ClientConfig, SetupError, check_catalog};

/// The `anthropic-version` sent when none is configured.
pub const DEFAULT_VERSION: &str = "2023-06-01";

/// The configuration of one Anthropic Messages upstream.
///
/// ```
/// use switchyard_anthropic::AnthropicConfig;
///
/// let mut config = AnthropicConfig::new("https://api.anthropic.com");
/// config.api_key = Some("sk-ant-...".into());
/// config.beta = vec!["prompt-caching-2024-07-31".into()];
/// assert_eq!(config.version, "2023-06-01");
/// ```
#[derive(Debug, Clone)]
pub struct AnthropicConfig {
    /// The base URL without `/v1` (`https://api.anthropic.com`); `/v1/messages` and
    /// `/v1/models` are appended. A trailing `/` or `/v1` is removed.
    pub base_url: String,
    /// The API key, sent as `x-api-key`. When `None`, `client.bearer_token` (if any) is
    /// sent as `Authorization: Bearer` instead (gateways in front of Anthropic).
    pub api_key: Option<String>,
    /// `anthropic-version`.
    pub version: String,
    /// `anthropic-beta` values, sent comma-separated when not empty.
    pub beta: Vec<String>,
    /// Transport: phase timeouts, extra headers, extra CA file.
    pub client: ClientConfig,
    /// A static catalog (with prices and limits). When not empty,
    /// [`switchyard_core::Provider::models`] returns it without asking the upstream.
    pub models: Vec<ModelInfo>,
    /// Where the upstream runs (default [`Locality::Cloud`]).
    pub locality: Locality,
    /// `max_tokens` for requests that set no output limit (Anthropic requires one).
    pub default_max_tokens: u32,
}

impl AnthropicConfig {
    /// A configuration for `base_url` with defaults everywhere else: version `2023-06-01`,
    /// no beta, cloud locality, `max_tokens` 4096 when a request sets none.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            version: DEFAULT_VERSION.to_owned(),
            beta: Vec::new(),
            client: ClientConfig::default(),
            models: Vec::new(),
            locality: Locality::Cloud,
            default_max_tokens: 4096,
        }
    }
}

/// Why an [`AnthropicConfig`] was refused: the error all client crates share
/// ([`SetupError`]); `default_max_tokens` at zero is `invalid_max_tokens`.
pub type AnthropicBuildError = SetupError;

/// Checks the config and returns the transport config with Anthropic's headers added.
pub(crate) fn resolve(config: &AnthropicConfig) -> Result<ClientConfig, AnthropicBuildError> {
    if config.default_max_tokens == 0 {
        return Err(SetupError::Zero {
            field: "default_max_tokens",
            code: "invalid_max_tokens",
        });
    }
    check_catalog(&config.models)?;
    let mut transport = config.client.clone();
    let headers = &mut transport.extra_headers;
    headers.push(("anthropic-version".to_owned(), config.version.clone()));
    if !config.beta.is_empty() {
        headers.push(("anthropic-beta".to_owned(), config.beta.join(",")));
    }
    if let Some(key) = &config.api_key {
        headers.push(("x-api-key".to_owned(), key.clone()));
        transport.bearer_token = None;
    }
    Ok(transport)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_carry_key_version_and_beta() {
        let mut c = AnthropicConfig::new("https://api.anthropic.com");
        c.api_key = Some("k".into());
        c.beta = vec!["a".into(), "b".into()];
        c.client.bearer_token = Some("other".into());
        let t = resolve(&c).map_err(|e| e.to_string());
        let t = t.as_ref().map(|t| (&t.extra_headers, &t.bearer_token));
        let want = vec![
            ("anthropic-version".to_owned(), "2023-06-01".to_owned()),
            ("anthropic-beta".to_owned(), "a,b".to_owned()),
            ("x-api-key".to_owned(), "k".to_owned()),
        ];
        assert_eq!(t, Ok((&want, &None)));
    }

    #[test]
    fn bad_configs_are_refused() {
        let mut c = AnthropicConfig::new("https://api.anthropic.com");
        c.default_max_tokens = 0;
        assert_eq!(
            resolve(&c).err().map(|e| e.reason_code()),
            Some("invalid_max_tokens")
        );
        let mut c = AnthropicConfig::new("https://api.anthropic.com");
        c.models = vec![
            ModelInfo::new("a", Locality::Cloud),
            ModelInfo::new("a", Locality::Cloud),
        ];
        assert_eq!(
            resolve(&c).err().map(|e| e.reason_code()),
            Some("duplicate_model")
        );
    }
}
