//! What the doctor is asked to check: the gateway's own facts and one probe per provider.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use switchyard_core::Locality;
use switchyard_http::ClientConfig;
use switchyard_openai::{MaxTokensField, TextRecovery};

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
    /// Whether `locality` was inferred from the address (none written in the config): a
    /// keyless server beyond loopback is then taken for a cloud API, and the doctor says
    /// how to mark it `lan`.
    pub locality_inferred: bool,
    /// Transport settings: timeouts, API key (`bearer_token`), headers, CA file, proxy.
    /// For [`ProbeApi::Anthropic`] the key is sent as `x-api-key`, and `anthropic-version`
    /// and `anthropic-beta` among `extra_headers` become the client's version and beta
    /// values.
    pub client: ClientConfig,
    /// The models the config routes to on this provider (upstream names).
    pub models: Vec<String>,
    /// The models among them that receive requests with tools.
    pub tool_models: Vec<String>,
    /// The routes that send to this provider: each route's name and its targets on this
    /// provider (upstream names). A model the catalog calls embedding-only is judged as a
    /// chat model only when a route holds it beside a model that is not.
    pub routes: Vec<(String, Vec<String>)>,
    /// The configured first-token timeout (compared with the measured cold start).
    pub first_token_timeout: Duration,
    /// The gateway's text tool-call recovery for this provider, as in effect (written, or
    /// its default: on for Ollama and local or LAN OpenAI-compatible servers). The doctor
    /// probes with recovery off, to see what the server sends, and words its hints by this.
    pub text_tool_recovery: TextRecovery,
    /// The configured field of the output limit (OpenAI-compatible); `None` when not
    /// written: the doctor then uses `max_completion_tokens` on OpenAI's own API (its
    /// reasoning models refuse `max_tokens`) and `max_tokens` elsewhere.
    pub max_tokens_field: Option<MaxTokensField>,
    /// The configured `num_ctx` of an OpenAI-compatible provider (sent as Ollama's
    /// `options.num_ctx`).
    pub num_ctx: Option<u32>,
}

/// Facts about the gateway itself, gathered by the binary.
#[derive(Debug, Clone, Default)]
pub struct GatewayFacts {
    /// The config file read, if any.
    pub config_path: Option<PathBuf>,
    /// The checksum of the config file's bytes (as the binary prints it, e.g. `sha256:…`).
    pub config_checksum: Option<String>,
    /// Why the config did not pass `config check` (parse, validate, build; with its path
    /// and line), if it did not.
    pub config_error: Option<String>,
    /// The binary's version.
    pub version: String,
    /// The binary's build id (commit, build date).
    pub build_id: String,
    /// The address `serve` listens on.
    pub listen: Option<SocketAddr>,
    /// Whether API keys are configured for callers.
    pub keys_configured: bool,
    /// Whether `listen` is beyond loopback by the gateway's listen policy (the rule
    /// `switchyard_gateway::check_listen_policy` applies; the binary fills it from there).
    /// `None`: the doctor judges the address itself by the same rule (loopback, IPv4-mapped
    /// loopback included).
    pub listen_beyond_loopback: Option<bool>,
    /// The proxy variables set in the environment (`HTTPS_PROXY`, `http_proxy`, ...): the
    /// gateway ignores them and connects to providers directly, which the report says.
    pub proxy_variables: Vec<String>,
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
