//! The doctor: a probe ladder that finds why a model server is unreachable or misbehaving,
//! names the first failing rung, and says how to fix it.
//!
//! Most "the local model is broken" reports are a listen address, a network namespace, a
//! proxy, TLS, a stale key or a timeout. For each provider the doctor climbs:
//!
//! 1. **dns**: the host name resolves;
//! 2. **tcp**: a connection opens (refused, timed out and unreachable told apart);
//! 3. **tls**: the certificate is trusted and valid for the name; plain HTTP spoken to a
//!    TLS port and the reverse are recognised by the bytes that come back;
//! 4. **http**: Ollama's `GET /` and `/api/version`, or `/models` of an OpenAI-compatible
//!    API, or Anthropic's `GET /v1/models` with `x-api-key` and `anthropic-version`; a `/v1`
//!    base URL on an Ollama provider is flagged;
//! 5. **catalog**: an empty catalog explained, every configured model present, its
//!    capabilities and context window; an embedding-only model is not judged as a chat or
//!    tool model (a failure only in a route beside chat models); a provider without a
//!    configured model (discovery alone) gets one chat model from the server's list to
//!    probe, named in the report with the rule that picked it (`model_from_catalog`: the
//!    first with `tools` when the server reports capabilities, else the first chat model;
//!    embedding-only and Ollama cloud models passed over; never from a hosted API's list),
//!    or `no_chat_model_in_catalog` with what to pull;
//! 6. **paths**: every API path reaches the server (no proxy that forwards only some);
//! 7. **generate**: a tiny non-streamed answer, the load time (cold or warm);
//! 8. **stream**: time to first token and the largest gap, against the configured timeouts;
//! 9. **tools**: every model that receives tool requests but lacks the `tools`
//!    capability (the router skips it for them, or the server refuses them), with what to
//!    change (without a configured model: a catalog whose chat models all lack it, a
//!    warning); then a tool round trip (structured call, call written as text, out of tokens
//!    while thinking, or none); on Anthropic the call is then answered with a
//!    `tool_result`, which must get a text answer;
//! 10. **account**: the key accepted, the quota left; on Anthropic 401 and 403 told apart
//!     (which key, which config field), 429 and 529 `overloaded_error` (a warning: passing,
//!     fallback-eligible).
//!
//! It stops at the first failing rung. Without an API key only a hosted API known to want
//! one (api.openai.com, api.anthropic.com, ...) fails before the network; any other server is
//! asked, and its 401 names the missing key. The gateway's own checks come first: the
//! config (checked as `switchyard config check` does), its checksum, the version and build
//! id, the listen address, keys beyond loopback, proxy variables the gateway ignores.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_core::Locality;
//! use switchyard_doctor::{GatewayFacts, ProbeApi, ProviderProbe, TextRecovery};
//!
//! # async fn example() {
//! let local = ProviderProbe {
//!     id: "local".into(),
//!     api: ProbeApi::Ollama,
//!     base_url: "http://127.0.0.1:11434".into(),
//!     locality: Locality::Local,
//!     locality_inferred: false,
//!     client: switchyard_http::ClientConfig::default(),
//!     models: vec!["qwen2.5:7b".into()],
//!     tool_models: vec!["qwen2.5:7b".into()],
//!     first_token_timeout: Duration::from_secs(300),
//!     routes: vec![],
//!     text_tool_recovery: TextRecovery::Off,
//!     max_tokens_field: None,
//!     num_ctx: None,
//! };
//! let facts = GatewayFacts { version: "0.1.0".into(), build_id: "dev".into(), ..GatewayFacts::default() };
//! let report = switchyard_doctor::run(facts, vec![local], &mut |line| eprintln!("{line}")).await;
//! print!("{}", report.to_table());
//! std::process::exit(report.exit_code());
//! # }
//! ```

mod context;
mod finding;
mod gateway;
mod input;
mod ladder;
mod progress;
mod report;
mod rungs;
mod table;
mod target;
mod upstream;

pub use finding::{Finding, OPENAI_ENDPOINTS};
pub use input::{DoctorOptions, GatewayFacts, ProbeApi, ProviderProbe};
pub use report::{Check, GatewaySection, ProviderSection, Report, Rung, Status, Summary};
/// The settings of a probe that are the OpenAI client's own.
pub use switchyard_openai::{MaxTokensField, TextRecovery};

/// Checks the gateway and every provider (in order, one ladder each) with the default
/// limits, calling `progress` with a line before each slow probe.
pub async fn run(
    facts: GatewayFacts,
    providers: Vec<ProviderProbe>,
    progress: &mut dyn FnMut(&str),
) -> Report {
    run_with(DoctorOptions::default(), facts, providers, progress).await
}

/// [`run`] with explicit limits (short ones in tests; `generate: false` to skip the
/// generation rungs).
pub async fn run_with(
    options: DoctorOptions,
    facts: GatewayFacts,
    providers: Vec<ProviderProbe>,
    progress: &mut dyn FnMut(&str),
) -> Report {
    progress("gateway: config, version, listen address");
    let gateway = gateway::check(&facts, options.connect_timeout).await;
    let mut sections = Vec::with_capacity(providers.len());
    for probe in &providers {
        sections.push(ladder::run(probe, &options, progress).await);
    }
    Report {
        gateway,
        providers: sections,
    }
}
