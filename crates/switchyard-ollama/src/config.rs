//! How to reach one Ollama server, how to discover its models, and why a configuration is
//! refused.

use std::time::Duration;

use switchyard_core::Locality;
use switchyard_http::{ClientConfig, SetupError};

/// The configuration of one Ollama server.
///
/// ```
/// use switchyard_ollama::OllamaConfig;
/// let mut config = OllamaConfig::new("http://192.168.1.20:11434");
/// config.locality = switchyard_core::Locality::Lan;
/// config.discovery.concurrency = 4;
/// ```
#[derive(Debug, Clone)]
pub struct OllamaConfig {
    /// The server's address (`http://127.0.0.1:11434`). A trailing `/` is removed; a
    /// trailing `/v1` (the OpenAI layer's address) is removed with a warning, since this
    /// client speaks the native API.
    pub base_url: String,
    /// Transport: phase timeouts, optional bearer token and extra headers (for an
    /// authenticating reverse proxy), extra CA file, pooling.
    pub client: ClientConfig,
    /// Model discovery limits.
    pub discovery: DiscoveryConfig,
    /// Turn tool calls that the model wrote as text into structured calls, for requests
    /// that offered tools. Off by default: the native API returns structured calls for
    /// models whose template supports tools.
    pub text_tool_recovery: bool,
    /// Where the server runs; copied into every [`switchyard_core::ModelInfo`] the
    /// catalog reports. Whoever builds the client (the binary, from its config file) sets
    /// it; the default is [`Locality::Local`].
    pub locality: Locality,
}

impl OllamaConfig {
    /// A configuration for `base_url` with defaults everywhere else.
    pub fn new(base_url: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            client: ClientConfig::default(),
            discovery: DiscoveryConfig::default(),
            text_tool_recovery: false,
            locality: Locality::Local,
        }
    }
}

impl Default for OllamaConfig {
    /// Ollama's default address on this host, `http://127.0.0.1:11434`.
    fn default() -> Self {
        Self::new("http://127.0.0.1:11434")
    }
}

/// Limits of model discovery (`/api/tags` enriched by `/api/show`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscoveryConfig {
    /// At most this many models are listed (the rest are counted in
    /// [`crate::CatalogSnapshot::omitted`]). Default 512.
    pub max_models: usize,
    /// At most this many `/api/show` requests run at once. Default 8.
    pub concurrency: usize,
    /// Bound on each metadata request (`/api/tags`, `/api/show`, `/api/version`,
    /// `/api/ps`), headers and body. Default 10 s.
    pub request_timeout: Duration,
    /// [`switchyard_core::Provider::models`] refreshes a catalog older than this.
    /// Default 60 s.
    pub max_age: Duration,
}

impl Default for DiscoveryConfig {
    fn default() -> Self {
        Self {
            max_models: 512,
            concurrency: 8,
            request_timeout: Duration::from_secs(10),
            max_age: Duration::from_secs(60),
        }
    }
}

/// Why an [`crate::OllamaClient`] could not be built: the error all client crates share
/// ([`SetupError`]); a zero discovery limit is `invalid_discovery_limit`.
pub type OllamaBuildError = SetupError;

pub(crate) fn check_discovery(d: &DiscoveryConfig) -> Result<(), SetupError> {
    let zero = if d.max_models == 0 {
        Some("discovery.max_models")
    } else if d.concurrency == 0 {
        Some("discovery.concurrency")
    } else if d.request_timeout.is_zero() {
        Some("discovery.request_timeout")
    } else {
        None
    };
    match zero {
        Some(field) => Err(SetupError::Zero {
            field,
            code: "invalid_discovery_limit",
        }),
        None => Ok(()),
    }
}
