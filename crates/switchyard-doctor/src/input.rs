//! What the doctor is asked to check: the gateway's own facts and one probe per provider.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::Locality;
use switchyard_http::ClientConfig;

/// Which API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProbeApi {
    /// Ollama's native API (`/api/...`).
    Ollama,
    /// An OpenAI-compatible chat-completions API (`/v1/...`).
    #[serde(rename = "openai")]
    OpenAi,
    /// Anthropic's Messages API (`/v1/messages`, `x-api-key`, `anthropic-version`).
    Anthropic,
}

impl ProbeApi {
    /// The API as the config spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ProbeApi::Ollama => "ollama",
            ProbeApi::OpenAi => "openai",
            ProbeApi::Anthropic => "anthropic",
        }
    }
}

/// One provider to check, as the configuration describes it.
#[derive(Debug, Clone)]
pub struct ProviderProbe {
    /// The provider's id in the config (`local`, `cloud`).
    pub id: String,
    /// The API it speaks.
    pub api: ProbeApi,
    /// The base URL as configured (`http://127.0.0.1:11434`, `https://api.openai.com/v1`).
    pub base_url: String,
    /// Where it runs.
    pub locality: Locality,
    /// Transport settings: timeouts, API key (`bearer_token`), headers, CA file, proxy.
    /// For [`ProbeApi::Anthropic`] the key is sent as `x-api-key`, and `anthropic-version`
    /// and `anthropic-beta` among `extra_headers` become the client's version and beta
    /// values.
    pub client: ClientConfig,
    /// The models the config routes to on this provider (upstream names).
    pub models: Vec<String>,
    /// The models among them that receive requests with tools.
    pub tool_models: Vec<String>,
    /// The configured first-token timeout (compared with the measured cold start).
    pub first_token_timeout: Duration,
}

/// Facts about the gateway itself, gathered by the binary.
#[derive(Debug, Clone, Default)]
pub struct GatewayFacts {
    /// The config file read, if any.
    pub config_path: Option<PathBuf>,
    /// The checksum of the config file's bytes (as the binary prints it, e.g. `sha256:…`).
    pub config_checksum: Option<String>,
    /// Why the config did not parse or validate (with its path and line), if it did not.
    pub config_error: Option<String>,
    /// The binary's version.
    pub version: String,
    /// The binary's build id (commit, build date).
    pub build_id: String,
    /// The address `serve` listens on.
    pub listen: Option<SocketAddr>,
    /// Whether API keys are configured for callers.
    pub keys_configured: bool,
}

/// Limits of the doctor's own probes. [`crate::run`] uses [`DoctorOptions::default`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctorOptions {
    /// Bound on resolving a host name.
    pub dns_timeout: Duration,
    /// Bound on one TCP connect (also capped by the provider's connect timeout) and on the
    /// TLS handshake.
    pub connect_timeout: Duration,
    /// Bound on each small request (version, catalog, path checks).
    pub request_timeout: Duration,
    /// Bound on each generation (rungs 7 to 9). Generous: a cold model may be loading.
    pub generation_timeout: Duration,
    /// Whether to run the generation rungs (7 to 9) at all (they load models and, on paid
    /// APIs, cost a few tokens).
    pub generate: bool,
}

impl Default for DoctorOptions {
    fn default() -> Self {
        Self {
            dns_timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            generation_timeout: Duration::from_secs(180),
            generate: true,
        }
    }
}
