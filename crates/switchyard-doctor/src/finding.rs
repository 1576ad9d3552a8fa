//! Everything the doctor can find wrong, each with a stable code, a severity, one sentence
//! saying what was found and one concrete fix.
//!
//! The hint texts live here, in one place, so they stay consistent and can be tested
//! without a network.

use std::net::SocketAddr;
use std::time::Duration;

use switchyard_core::{ErrorKind, ReasonCode, TimeoutPhase};

use crate::input::ProbeApi;
use crate::report::{Check, Rung, Status};

/// A problem found by one rung, or a note the report owes the reader (`model_from_catalog`,
/// the one finding whose status is [`Status::Ok`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finding {
    /// The base URL is not an absolute http(s) URL.
    InvalidBaseUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The host name does not resolve.
    DnsFailed {
        /// The host.
        host: String,
        /// The resolver's words.
        error: String,
    },
    /// Resolving took longer than the limit.
    DnsTimedOut {
        /// The host.
        host: String,
        /// The limit.
        after: Duration,
    },
    /// Nothing listens at the address (TCP reset).
    ConnectRefused {
        /// The address tried.
        addr: SocketAddr,
        /// The API expected there.
        api: ProbeApi,
        /// Whether the doctor itself runs in a container (`/.dockerenv`,
        /// `/run/.containerenv`), where 127.0.0.1 is the container, not the host.
        in_container: bool,
    },
    /// The connection attempt got no answer in time (packets dropped).
    ConnectTimedOut {
        /// The address tried.
        addr: SocketAddr,
        /// The limit.
        after: Duration,
    },
    /// No route to the host or its network.
    Unreachable {
        /// The address tried.
        addr: SocketAddr,
        /// The system's words.
        error: String,
    },
    /// Any other failure to connect.
    ConnectFailed {
        /// The address tried.
        addr: SocketAddr,
        /// The system's words.
        error: String,
    },
    /// The certificate's issuer is not trusted.
    TlsUnknownIssuer {
        /// The host name checked.
        host: String,
        /// The CA file configured, if any.
        ca_file: Option<String>,
    },
    /// The certificate is not valid for the host name used.
    TlsNameMismatch {
        /// The host name checked.
        host: String,
    },
    /// The certificate expired or is not valid yet.
    TlsExpired {
        /// The host name checked.
        host: String,
    },
    /// The configured CA file cannot be used.
    TlsCaFile {
        /// The file.
        path: String,
        /// What is wrong.
        error: String,
    },
    /// An `https://` URL points at a port that speaks plain HTTP.
    TlsToPlainPort {
        /// The address.
        addr: SocketAddr,
    },
    /// An `http://` URL points at a port that speaks TLS.
    PlainToTlsPort {
        /// The address.
        addr: SocketAddr,
    },
    /// An `http://` URL points at a port that answers with something that is not HTTP
    /// (an SSH banner, a database greeting).
    NotHttp {
        /// The address.
        addr: SocketAddr,
        /// The first line the port sent, printable and bounded.
        first_line: String,
    },
    /// An `http://` URL points at a port that accepts and closes without a byte (a port
    /// forward with nothing behind it).
    ClosedWithoutAnswer {
        /// The address.
        addr: SocketAddr,
    },
    /// Any other TLS failure.
    TlsFailed {
        /// The host name checked.
        host: String,
        /// The TLS library's words.
        error: String,
    },
    /// Connected, but no HTTP answer came in time.
    NoHttpAnswer {
        /// The address.
        addr: SocketAddr,
        /// The limit.
        after: Duration,
    },
    /// An Ollama provider's base URL ends in `/v1`.
    V1OnOllama {
        /// The base URL without `/v1`.
        native: String,
    },
    /// An Ollama provider's base URL ends in `/api`, which the client adds itself.
    ApiPathOnOllama {
        /// The base URL without `/api`.
        native: String,
    },
    /// An OpenAI-compatible base URL that does not end in `/v1` answered 404.
    MissingV1 {
        /// The base URL.
        base_url: String,
    },
    /// An OpenAI-compatible base URL that holds an endpoint's path
    /// (`.../v1/chat/completions`): the client appends that path itself.
    EndpointPathInBaseUrl {
        /// The base URL as configured.
        base_url: String,
        /// The endpoint path found at its end (`/chat/completions`).
        endpoint: String,
        /// The API root to use instead, ending in `/v1`.
        root: String,
    },
    /// The server at the base URL is not the expected API.
    NotTheApi {
        /// The API expected.
        api: ProbeApi,
        /// What answered instead.
        answer: String,
    },
    /// An HTTP-level failure of the base probe.
    HttpFailed {
        /// The classified error.
        reason_code: ReasonCode,
        /// The error's message.
        message: String,
    },
    /// The HTTP client could not be built from the provider's settings.
    ClientConfig {
        /// What is wrong.
        error: String,
    },
    /// A cloud provider without an API key.
    NoApiKey,
    /// The key was refused (401/403).
    KeyRejected {
        /// The status.
        status: u16,
        /// The upstream's words.
        message: String,
    },
    /// The account's quota or credit is exhausted.
    QuotaExhausted {
        /// The upstream's words.
        message: String,
    },
    /// Rate limited right now.
    RateLimited {
        /// How long the upstream asked to wait.
        retry_after: Option<Duration>,
    },
    /// The server lists no model at all.
    CatalogEmpty {
        /// The base URL (for the commands in the hint).
        base_url: String,
        /// The models configured for this provider (when any, it is a failure; the hint
        /// names them in the pull command).
        models: Vec<String>,
    },
    /// A configured model is not on the server.
    ModelMissing {
        /// The model.
        model: String,
        /// The API (the fix differs).
        api: ProbeApi,
        /// The base URL.
        base_url: String,
        /// Names on the server that look alike (same name, another tag).
        similar: Vec<String>,
    },
    /// A model that receives tool requests lacks the `tools` capability.
    NoToolsCapability {
        /// The model.
        model: String,
    },
    /// An embedding model in a route beside chat models: chat requests that reach it fail.
    EmbeddingOnly {
        /// The model.
        model: String,
        /// The route that holds it beside a chat model.
        route: String,
    },
    /// A provider without a configured model (`discover` on, no `models`, no route to it):
    /// the doctor probes one chat model from the server's catalog instead. A note, not a
    /// problem.
    ModelFromCatalog {
        /// The model probed by the generate, stream and tool rungs.
        model: String,
        /// Which rule picked it: `Some(true)` the first chat model the server lists with the
        /// `tools` capability; `Some(false)` the first chat model, when none it lists has
        /// `tools`; `None` the first chat model, its capabilities unknown (the server reports
        /// none, as OpenAI-compatible servers).
        tools: Option<bool>,
        /// Models listed before it and passed over as embedding-only.
        embedding: Vec<String>,
        /// Models listed before it and passed over because Ollama runs them in its cloud.
        cloud: Vec<String>,
    },
    /// A provider without a configured model whose catalog lists no chat model the doctor
    /// could probe (only embedding models, or only Ollama's cloud models).
    NoChatModelInCatalog {
        /// The provider's id in the config.
        provider: String,
        /// The Ollama server's root for the pull command (`None`: not an Ollama server).
        ollama_host: Option<String>,
        /// Embedding-only models the server lists.
        embedding: Vec<String>,
        /// Models Ollama runs in its cloud (never probed: the prompt would leave the host).
        cloud: Vec<String>,
        /// How many of the listed models were looked at.
        checked: usize,
        /// How many models the server lists.
        listed: usize,
    },
    /// A provider without a configured model whose catalog reports capabilities, and no chat
    /// model looked at has `tools`: requests that offer tools cannot be served there.
    NoToolModelInCatalog {
        /// The provider's id in the config.
        provider: String,
        /// The Ollama server's root for the pull command (`None`: not an Ollama server).
        ollama_host: Option<String>,
        /// How many chat models were looked at.
        checked: usize,
        /// Whether every model the server lists was looked at.
        all: bool,
    },
    /// A path does not reach the server while others do.
    PathBlocked {
        /// The path that is not forwarded.
        path: String,
        /// A path that works.
        working: String,
        /// The status the blocked path answered.
        status: u16,
    },
    /// A generation failed.
    GenerationFailed {
        /// Streamed or not.
        streamed: bool,
        /// The classified error's code.
        reason_code: ReasonCode,
        /// The error's message.
        message: String,
    },
    /// The configured first-token timeout is below the measured time to first token.
    FirstTokenTimeoutTooShort {
        /// The configured timeout.
        configured: Duration,
        /// The slowest first token measured (cold start included).
        measured: Duration,
        /// Whether the measurement included loading the model.
        cold: bool,
    },
    /// The largest gap between chunks exceeds the idle timeout.
    IdleGapTooLong {
        /// The configured idle timeout.
        configured: Duration,
        /// The largest gap measured.
        measured: Duration,
    },
    /// A whole tiny answer took longer than the configured total timeout.
    TotalTimeoutTooShort {
        /// The configured total timeout.
        configured: Duration,
        /// The longest answer measured (cold start included).
        measured: Duration,
    },
    /// A streamed answer arrived all at once: something buffers it.
    StreamBuffered {
        /// How many events arrived together.
        events: usize,
    },
    /// The model wrote its tool call as text instead of a structured call.
    ToolCallAsText {
        /// The API used.
        api: ProbeApi,
        /// Whether the base URL is Ollama's `/v1`.
        ollama_v1: bool,
        /// Whether the gateway's text tool-call recovery is on for this model (the doctor's
        /// own probe runs without it).
        recovery_on: bool,
    },
    /// The tool probe's answer reached its output limit before any call: a thinking model
    /// spent the tokens on reasoning. Inconclusive, not a model without tools.
    ToolOutputExhausted {
        /// The model.
        model: String,
        /// The probe's output limit.
        limit: u32,
        /// Whether the model was thinking (reasoning came back, or no text at all).
        thinking: bool,
    },
    /// The model answered without calling the offered tool.
    NoToolCall {
        /// The model.
        model: String,
    },
    /// An Anthropic provider without an API key (or one the upstream wanted and did not get).
    AnthropicNoKey {
        /// The provider's id in the config.
        provider: String,
    },
    /// Anthropic refused the key (401 `authentication_error`).
    AnthropicKeyRejected {
        /// The provider's id in the config.
        provider: String,
        /// The status.
        status: u16,
        /// Whether the key does not look like an Anthropic key (`sk-ant-…`) while the base
        /// URL is Anthropic's own API.
        foreign_key: bool,
        /// The upstream's words.
        message: String,
    },
    /// Anthropic accepted the key but refused it this request (403 `permission_error`).
    AnthropicPermission {
        /// The provider's id in the config.
        provider: String,
        /// The configured `anthropic-beta` values, if any.
        beta: Option<String>,
        /// The upstream's words.
        message: String,
    },
    /// Anthropic rate limits the key (429 `rate_limit_error`).
    AnthropicRateLimited {
        /// The provider's id in the config.
        provider: String,
        /// How long the upstream asked to wait.
        retry_after: Option<Duration>,
    },
    /// The upstream is overloaded (Anthropic's 529 `overloaded_error`): passing and
    /// fallback-eligible.
    Overloaded {
        /// The provider's id in the config.
        provider: String,
        /// The status, when one came.
        status: Option<u16>,
        /// How long the upstream asked to wait.
        retry_after: Option<Duration>,
        /// The upstream's words.
        message: String,
    },
    /// The model called the tool but did not answer the `tool_result` sent back in text.
    ToolResultUnanswered {
        /// The model.
        model: String,
        /// The finish reason of the second answer, if it finished.
        finish: Option<String>,
    },
    /// The gateway's config does not parse or validate.
    ConfigInvalid {
        /// The error, with path and line.
        error: String,
    },
    /// The listen address is taken by something else.
    ListenInUse {
        /// The address.
        addr: SocketAddr,
    },
    /// The listen address cannot be bound.
    ListenUnavailable {
        /// The address.
        addr: SocketAddr,
        /// The system's words.
        error: String,
        /// Whether it is a permission problem.
        permission: bool,
    },
    /// Listening beyond loopback without caller keys.
    OpenWithoutKeys {
        /// The address.
        addr: SocketAddr,
    },
}

fn secs(d: Duration) -> String {
    if d < Duration::from_secs(1) {
        format!("{} ms", d.as_millis())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

/// A generous suggestion for a timeout: twice the measurement, rounded up to whole seconds.
fn suggest_ms(measured: Duration) -> u64 {
    let doubled = measured.saturating_mul(2).as_secs().saturating_add(1);
    doubled.saturating_mul(1000)
}

impl Finding {
    /// The stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            Finding::InvalidBaseUrl { .. } => "invalid_base_url",
            Finding::DnsFailed { .. } => "dns_failed",
            Finding::DnsTimedOut { .. } => "dns_timed_out",
            Finding::ConnectRefused { .. } => "connect_refused",
            Finding::ConnectTimedOut { .. } => "connect_timed_out",
            Finding::Unreachable { .. } => "unreachable",
            Finding::ConnectFailed { .. } => "connect_failed",
            Finding::TlsUnknownIssuer { .. } => "tls_unknown_issuer",
            Finding::TlsNameMismatch { .. } => "tls_name_mismatch",
            Finding::TlsExpired { .. } => "tls_expired",
            Finding::TlsCaFile { .. } => "tls_ca_file",
            Finding::TlsToPlainPort { .. } => "tls_to_plain_port",
            Finding::PlainToTlsPort { .. } => "plain_to_tls_port",
            Finding::NotHttp { .. } => "not_http",
            Finding::ClosedWithoutAnswer { .. } => "closed_without_answer",
            Finding::TlsFailed { .. } => "tls_failed",
            Finding::NoHttpAnswer { .. } => "no_http_answer",
            Finding::V1OnOllama { .. } => "v1_on_ollama",
            Finding::MissingV1 { .. } => "missing_v1",
            Finding::ApiPathOnOllama { .. } => "api_path_on_ollama",
            Finding::EndpointPathInBaseUrl { .. } => "endpoint_path_in_base_url",
            Finding::NotTheApi { .. } => "not_the_api",
            Finding::HttpFailed { .. } => "http_failed",
            Finding::ClientConfig { .. } => "client_config",
            Finding::NoApiKey => "no_api_key",
            Finding::KeyRejected { .. } => "key_rejected",
            Finding::QuotaExhausted { .. } => "quota_exhausted",
            Finding::RateLimited { .. } => "rate_limited",
            Finding::CatalogEmpty { .. } => "catalog_empty",
            Finding::ModelMissing { .. } => "model_missing",
            Finding::NoToolsCapability { .. } => "no_tools_capability",
            Finding::EmbeddingOnly { .. } => "embedding_only",
            Finding::ModelFromCatalog { .. } => "model_from_catalog",
            Finding::NoChatModelInCatalog { .. } => "no_chat_model_in_catalog",
            Finding::NoToolModelInCatalog { .. } => "no_tool_model_in_catalog",
            Finding::PathBlocked { .. } => "path_blocked",
            Finding::GenerationFailed { .. } => "generation_failed",
            Finding::FirstTokenTimeoutTooShort { .. } => "first_token_timeout_too_short",
            Finding::IdleGapTooLong { .. } => "idle_gap_too_long",
            Finding::TotalTimeoutTooShort { .. } => "total_timeout_too_short",
            Finding::StreamBuffered { .. } => "stream_buffered",
            Finding::ToolCallAsText { .. } => "tool_call_as_text",
            Finding::ToolOutputExhausted { .. } => "tool_probe_out_of_tokens",
            Finding::NoToolCall { .. } => "no_tool_call",
            Finding::AnthropicNoKey { .. } => "no_api_key",
            Finding::AnthropicKeyRejected { .. } => "key_rejected",
            Finding::AnthropicPermission { .. } => "permission_denied",
            Finding::AnthropicRateLimited { .. } => "rate_limited",
            Finding::Overloaded { .. } => "overloaded",
            Finding::ToolResultUnanswered { .. } => "tool_result_unanswered",
            Finding::ConfigInvalid { .. } => "config_invalid",
            Finding::ListenInUse { .. } => "listen_in_use",
            Finding::ListenUnavailable { .. } => "listen_unavailable",
            Finding::OpenWithoutKeys { .. } => "open_without_keys",
        }
    }

    /// How bad it is.
    pub fn status(&self) -> Status {
        match self {
            Finding::V1OnOllama { .. }
            | Finding::RateLimited { .. }
            | Finding::AnthropicRateLimited { .. }
            | Finding::Overloaded { .. }
            | Finding::FirstTokenTimeoutTooShort { .. }
            | Finding::IdleGapTooLong { .. }
            | Finding::TotalTimeoutTooShort { .. }
            | Finding::StreamBuffered { .. }
            | Finding::ToolCallAsText { .. }
            | Finding::ToolOutputExhausted { .. }
            | Finding::ListenInUse { .. }
            | Finding::OpenWithoutKeys { .. }
            | Finding::NoChatModelInCatalog { .. }
            | Finding::NoToolModelInCatalog { .. } => Status::Warn,
            Finding::ModelFromCatalog { .. } => Status::Ok,
            Finding::CatalogEmpty { models, .. } => {
                if !models.is_empty() {
                    Status::Fail
                } else {
                    Status::Warn
                }
            }
            _ => Status::Fail,
        }
    }

    /// One sentence: what was found.
    pub fn summary(&self) -> String {
        match self {
            Finding::InvalidBaseUrl { reason } => format!("the base URL cannot be used: {reason}"),
            Finding::DnsFailed { host, error } => format!("`{host}` does not resolve: {error}"),
            Finding::DnsTimedOut { host, after } => {
                format!("resolving `{host}` took longer than {}", secs(*after))
            }
            Finding::ConnectRefused { addr, .. } => {
                format!("connection refused by {addr}: nothing listens there")
            }
            Finding::ConnectTimedOut { addr, after } => {
                format!(
                    "no answer from {addr} within {} (packets dropped)",
                    secs(*after)
                )
            }
            Finding::Unreachable { addr, error } => format!("{addr} is unreachable: {error}"),
            Finding::ConnectFailed { addr, error } => format!("cannot connect to {addr}: {error}"),
            Finding::TlsUnknownIssuer { host, .. } => {
                format!(
                    "the certificate of {host} is signed by an issuer this machine does not trust"
                )
            }
            Finding::TlsNameMismatch { host } => {
                format!("the certificate presented is not valid for the name `{host}`")
            }
            Finding::TlsExpired { host } => {
                format!("the certificate of {host} has expired or is not valid yet")
            }
            Finding::TlsCaFile { path, error } => {
                format!("the ca_file {path} cannot be used: {error}")
            }
            Finding::TlsToPlainPort { addr } => {
                format!("https:// was used but {addr} answers in plain HTTP")
            }
            Finding::PlainToTlsPort { addr } => {
                format!("http:// was used but {addr} speaks TLS")
            }
            Finding::NotHttp { addr, first_line } => {
                format!("{addr} does not speak HTTP: it answered \"{first_line}\"")
            }
            Finding::ClosedWithoutAnswer { addr } => {
                format!("{addr} accepted the connection and closed it without answering")
            }
            Finding::TlsFailed { host, error } => {
                format!("TLS handshake with {host} failed: {error}")
            }
            Finding::NoHttpAnswer { addr, after } => format!(
                "{addr} accepted the connection but sent no HTTP answer within {}",
                secs(*after)
            ),
            Finding::V1OnOllama { .. } => {
                "the base URL ends in /v1 but the provider uses Ollama's native API".to_owned()
            }
            Finding::MissingV1 { base_url } => {
                format!("{base_url}/models answered 404: the base URL lacks /v1")
            }
            Finding::EndpointPathInBaseUrl {
                base_url, endpoint, ..
            } => format!(
                "the base URL {base_url} ends in the endpoint path {endpoint}, which the client \
                 appends itself"
            ),
            Finding::ApiPathOnOllama { .. } => {
                "the base URL ends in /api, which the Ollama client adds itself".to_owned()
            }
            Finding::NotTheApi { api, answer } => {
                format!("this is not an {} API: {answer}", api_name(*api))
            }
            Finding::HttpFailed {
                reason_code,
                message,
            } => {
                format!("the API did not answer properly ({reason_code}): {message}")
            }
            Finding::ClientConfig { error } => {
                format!("the provider's HTTP settings cannot be used: {error}")
            }
            Finding::NoApiKey => {
                "the server asks for an API key and none is configured for this provider".to_owned()
            }
            Finding::KeyRejected { status, message } => {
                format!("the API key was refused (HTTP {status}): {message}")
            }
            Finding::QuotaExhausted { message } => {
                format!("the account's quota is exhausted: {message}")
            }
            Finding::RateLimited { retry_after } => match retry_after {
                Some(d) => format!(
                    "rate limited right now (HTTP 429, retry after {})",
                    secs(*d)
                ),
                None => "rate limited right now (HTTP 429)".to_owned(),
            },
            Finding::CatalogEmpty { .. } => "the server lists no models at all".to_owned(),
            Finding::ModelMissing { similar, .. } => {
                if similar.is_empty() {
                    "not on this server".to_owned()
                } else {
                    format!("not on this server (it has {})", similar.join(", "))
                }
            }
            Finding::NoToolsCapability { .. } => {
                "used for tools but lacks the `tools` capability".to_owned()
            }
            Finding::EmbeddingOnly { route, .. } => format!(
                "an embedding model in route `{route}` beside chat models: it cannot chat, so \
                 chat requests that reach it fail"
            ),
            Finding::ModelFromCatalog {
                model,
                tools,
                embedding,
                cloud,
            } => {
                let rule = match tools {
                    Some(true) => "the first chat model it lists with the `tools` capability",
                    Some(false) => {
                        "the first chat model it lists (none of the chat models looked at has \
                         the `tools` capability)"
                    }
                    None => "the first chat model it lists (its capabilities are unknown)",
                };
                let mut passed = Vec::new();
                if !embedding.is_empty() {
                    passed.push(format!("{} (embeddings only)", names(embedding)));
                }
                if !cloud.is_empty() {
                    passed.push(format!("{} (runs in Ollama's cloud)", names(cloud)));
                }
                let passed = if passed.is_empty() {
                    String::new()
                } else {
                    format!("; passed over {}", passed.join(", "))
                };
                format!(
                    "no model configured; probing `{model}` from the server's catalog: {rule}{passed}"
                )
            }
            Finding::NoChatModelInCatalog {
                embedding,
                cloud,
                checked,
                listed,
                ..
            } => {
                let mut why = Vec::new();
                if !embedding.is_empty() {
                    let verb = if embedding.len() == 1 { "is" } else { "are" };
                    why.push(format!("{} {verb} embeddings only", names(embedding)));
                }
                if !cloud.is_empty() {
                    let verb = if cloud.len() == 1 { "runs" } else { "run" };
                    why.push(format!(
                        "{} {verb} in Ollama's cloud (the doctor sends no prompt there)",
                        names(cloud)
                    ));
                }
                let among = if checked < listed {
                    format!(" among the first {checked} of its {listed} models")
                } else {
                    String::new()
                };
                format!(
                    "no model configured, and the server lists no chat model to probe{among}: {}",
                    why.join("; ")
                )
            }
            Finding::NoToolModelInCatalog { checked, all, .. } => {
                let which = match (checked, all) {
                    (1, true) => "its one chat model lacks".to_owned(),
                    (n, true) => format!("none of its {n} chat models has"),
                    (n, false) => format!("none of the first {n} chat models it lists has"),
                };
                format!(
                    "no model configured, and {which} the `tools` capability: requests that \
                     offer tools cannot be served by this provider, and no tool round trip is \
                     tried"
                )
            }
            Finding::PathBlocked {
                path,
                working,
                status,
            } => format!(
                "{path} answers HTTP {status} from something that is not the model server, while {working} works"
            ),
            Finding::GenerationFailed {
                streamed,
                reason_code,
                message,
            } => format!(
                "the {} generation failed ({reason_code}): {message}",
                if *streamed {
                    "streamed"
                } else {
                    "non-streamed"
                }
            ),
            Finding::FirstTokenTimeoutTooShort {
                configured,
                measured,
                cold,
            } => format!(
                "first token took {}{}, above the configured first-token timeout of {}",
                secs(*measured),
                if *cold {
                    " (cold start, model loading)"
                } else {
                    ""
                },
                secs(*configured)
            ),
            Finding::IdleGapTooLong {
                configured,
                measured,
            } => format!(
                "a gap of {} between chunks, above the configured idle timeout of {}",
                secs(*measured),
                secs(*configured)
            ),
            Finding::TotalTimeoutTooShort {
                configured,
                measured,
            } => format!(
                "a tiny answer took {}, above the configured total timeout of {}",
                secs(*measured),
                secs(*configured)
            ),
            Finding::StreamBuffered { events } => {
                format!("the streamed answer arrived all at once ({events} events together)")
            }
            Finding::ToolCallAsText { .. } => {
                "the model wrote its tool call as text, not as a structured call".to_owned()
            }
            Finding::ToolOutputExhausted {
                limit, thinking, ..
            } => {
                if *thinking {
                    format!(
                        "the model ran out of tokens while thinking: the probe's {limit} output \
                         tokens were spent before it called the tool (finish reason length)"
                    )
                } else {
                    format!(
                        "the answer reached the probe's limit of {limit} output tokens before \
                         any tool call (finish reason length)"
                    )
                }
            }
            Finding::NoToolCall { .. } => {
                "the model answered in text and did not call the offered tool".to_owned()
            }
            Finding::AnthropicNoKey { provider } => {
                format!("no API key is configured for the Anthropic provider `{provider}`")
            }
            Finding::AnthropicKeyRejected {
                status, message, ..
            } => {
                format!("Anthropic refused the key (HTTP {status} authentication_error): {message}")
            }
            Finding::AnthropicPermission { message, .. } => {
                format!("the key may not do this (HTTP 403 permission_error): {message}")
            }
            Finding::AnthropicRateLimited { retry_after, .. } => match retry_after {
                Some(d) => format!(
                    "rate limited (HTTP 429 rate_limit_error), retry after {}",
                    secs(*d)
                ),
                None => "rate limited (HTTP 429 rate_limit_error)".to_owned(),
            },
            Finding::Overloaded {
                status, message, ..
            } => match status {
                Some(s) => {
                    format!("the upstream is overloaded (HTTP {s} overloaded_error): {message}")
                }
                None => format!("the upstream is overloaded (overloaded_error): {message}"),
            },
            Finding::ToolResultUnanswered { finish, .. } => match finish {
                Some(f) => format!(
                    "the model called the tool, but answered the tool_result without text \
                     (stop reason {f})"
                ),
                None => "the model called the tool, but did not answer the tool_result".to_owned(),
            },
            Finding::ConfigInvalid { error } => format!("the config is invalid: {error}"),
            Finding::ListenInUse { addr } => format!(
                "something already listens on {addr} (a running gateway, or another program)"
            ),
            Finding::ListenUnavailable { addr, error, .. } => {
                format!("{addr} cannot be bound: {error}")
            }
            Finding::OpenWithoutKeys { addr } => {
                format!("listening on {addr}, beyond loopback, without API keys")
            }
        }
    }

    /// One concrete fix.
    pub fn hint(&self) -> String {
        match self {
            Finding::InvalidBaseUrl { .. } => {
                "write base_url as an absolute URL with scheme, host and port, e.g. \
                 http://127.0.0.1:11434 for Ollama or https://api.openai.com/v1"
                    .to_owned()
            }
            Finding::DnsFailed { host, .. } | Finding::DnsTimedOut { host, .. } => format!(
                "check the spelling of `{host}`; inside a container use the compose service name \
                 or host.docker.internal, otherwise the host's IP address; `getent hosts {host}` \
                 shows what this machine resolves"
            ),
            Finding::ConnectRefused {
                addr,
                api,
                in_container,
            } => {
                if addr.ip().is_loopback() && *in_container {
                    format!(
                        "this runs in a container, where 127.0.0.1 is the container itself: point \
                         base_url at the host (e.g. http://host.docker.internal:{}, with \
                         `--add-host=host.docker.internal:host-gateway` on Linux) and make the \
                         server listen on all interfaces (OLLAMA_HOST=0.0.0.0); or run `ollama \
                         serve` inside this container",
                        addr.port()
                    )
                } else if addr.ip().is_loopback() {
                    let start = match api {
                        ProbeApi::Ollama => {
                            "start Ollama (`ollama serve` or `systemctl start ollama`) and check \
                             its port (OLLAMA_HOST)"
                        }
                        ProbeApi::OpenAi | ProbeApi::Anthropic => {
                            "start the server and check the port it listens on"
                        }
                    };
                    format!(
                        "{start}; if the gateway runs in a container, 127.0.0.1 is the container \
                         itself: point base_url at the host (e.g. http://host.docker.internal:{}) \
                         and make the server listen on all interfaces (OLLAMA_HOST=0.0.0.0)",
                        addr.port()
                    )
                } else {
                    match api {
                        ProbeApi::Ollama => format!(
                            "if Ollama runs on {} it is bound to 127.0.0.1 only: set \
                             OLLAMA_HOST=0.0.0.0:{} in its environment (systemd: `systemctl edit \
                             ollama`, add Environment=\"OLLAMA_HOST=0.0.0.0:{}\") and restart it; \
                             otherwise start it or fix the port",
                            addr.ip(),
                            addr.port(),
                            addr.port()
                        ),
                        ProbeApi::OpenAi | ProbeApi::Anthropic => format!(
                            "start the server on {} and make it listen on all interfaces \
                             (e.g. --host 0.0.0.0), or fix the port in base_url",
                            addr.ip()
                        ),
                    }
                }
            }
            Finding::ConnectTimedOut { addr, .. } => format!(
                "a firewall drops the packets or the address is wrong: allow TCP port {} on {} \
                 (ufw allow {} / firewall-cmd --add-port={}/tcp) and check the address",
                addr.port(),
                addr.ip(),
                addr.port(),
                addr.port()
            ),
            Finding::Unreachable { addr, .. } => format!(
                "the host is down or on a network this machine cannot reach (VPN, Docker network, \
                 another subnet): check the address and `ip route get {}`",
                addr.ip()
            ),
            Finding::ConnectFailed { .. } => {
                "check the address in base_url and that this machine may open outgoing \
                 connections to it"
                    .to_owned()
            }
            Finding::TlsUnknownIssuer { ca_file, .. } => match ca_file {
                Some(path) => format!(
                    "the configured ca_file {path} does not hold the CA that signed this \
                     certificate: put that CA's PEM certificate in it"
                ),
                None => "a private CA or self-signed certificate: set ca_file for this provider \
                         to that CA's PEM file"
                    .to_owned(),
            },
            Finding::TlsNameMismatch { host } => format!(
                "use the host name the certificate was issued for in base_url (not an IP address \
                 or alias), or reissue the certificate with `{host}` in its subjectAltName"
            ),
            Finding::TlsExpired { .. } => {
                "renew the certificate (and check this machine's clock)".to_owned()
            }
            Finding::TlsCaFile { .. } => {
                "point ca_file at a readable PEM file holding the CA certificate".to_owned()
            }
            Finding::TlsToPlainPort { addr } => format!(
                "use http:// in base_url for {addr}, or the TLS port of the reverse proxy in front \
                 of it"
            ),
            Finding::PlainToTlsPort { .. } => "use https:// in base_url".to_owned(),
            Finding::NotHttp { addr, .. } => format!(
                "another program owns {addr}, not the model server: check what listens (`ss \
                 -ltnp 'sport = :{}'`) and fix the port in base_url, or move that program",
                addr.port()
            ),
            Finding::ClosedWithoutAnswer { addr } => format!(
                "nothing is behind {addr}: a port forward or proxy (docker-proxy, ssh -L, \
                 kubectl port-forward) accepts but reaches no server; start the model server \
                 behind it or fix the port in base_url (`ss -ltnp 'sport = :{}'` shows who \
                 listens)",
                addr.port()
            ),
            Finding::TlsFailed { .. } => {
                "check that the port is the TLS port of the server or proxy and that it speaks \
                 TLS 1.2 or 1.3"
                    .to_owned()
            }
            Finding::NoHttpAnswer { addr, .. } => format!(
                "something accepts connections on {addr} but never answers (a hung server, a port \
                 forward or firewall holding connections, another program): check what listens \
                 (`ss -ltnp 'sport = :{}'`) and restart the model server",
                addr.port()
            ),
            Finding::V1OnOllama { native } => format!(
                "set base_url to {native}: the native API lives at the root, and tool calls are \
                 lost or written as text on Ollama's /v1"
            ),
            Finding::MissingV1 { base_url } => {
                // `http://host:11434/api` is Ollama's native path: its OpenAI layer is at
                // the root's /v1.
                format!(
                    "OpenAI-compatible base URLs end in /v1: use {}",
                    openai_root(base_url)
                )
            }
            Finding::EndpointPathInBaseUrl { root, .. } => format!(
                "set base_url to the API root {root}: the client adds /chat/completions and \
                 /models to it"
            ),
            Finding::ApiPathOnOllama { native } => format!(
                "set base_url to {native}: the native API's paths (/api/chat, /api/tags) are \
                 added to the base URL"
            ),
            Finding::NotTheApi { api, .. } => match api {
                ProbeApi::Ollama => "check base_url: Ollama's native API is at \
                                     http://HOST:11434 (no path); another program may own this port"
                    .to_owned(),
                ProbeApi::OpenAi => "check base_url: it should be the server's OpenAI-compatible \
                                     root, ending in /v1"
                    .to_owned(),
                ProbeApi::Anthropic => "check base_url: it should be the Messages API's root \
                                        (https://api.anthropic.com, without /v1/messages: the \
                                        client appends it)"
                    .to_owned(),
            },
            Finding::HttpFailed { .. } => {
                "check the server's log; the base URL must point at the API root".to_owned()
            }
            Finding::ClientConfig { .. } => {
                "fix the provider's headers or ca_file in the config".to_owned()
            }
            Finding::NoApiKey => {
                "set api_key for this provider (e.g. \"env:OPENAI_API_KEY\"; for a \
                                  local server, the key of the proxy in front of it) and export \
                                  that variable where the gateway runs"
                    .to_owned()
            }
            Finding::KeyRejected { .. } => {
                "the key is stale, revoked or scoped to another project or organisation: create a \
                 new key with access to these models and check that the variable named by api_key \
                 holds it where the gateway runs"
                    .to_owned()
            }
            Finding::QuotaExhausted { .. } => {
                "add credit or raise the account's limits (insufficient_quota does not pass by \
                 waiting); until then route to another provider"
                    .to_owned()
            }
            Finding::RateLimited { .. } => {
                "another client shares this key's limits, or the limits are low: lower \
                 max_concurrency or ask the provider for higher limits"
                    .to_owned()
            }
            Finding::CatalogEmpty { base_url, models } => {
                let pull = if models.is_empty() {
                    "`ollama pull MODEL`".to_owned()
                } else {
                    models
                        .iter()
                        .map(|m| format!("`ollama pull {m}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                format!(
                    "the model was pulled into a different Ollama: another daemon (the desktop app vs \
                 the systemd service), another user (models live in OLLAMA_MODELS, by default \
                 ~/.ollama/models of the user running the server; the systemd service uses \
                 /usr/share/ollama/.ollama/models), or another container or volume; run \
                 `OLLAMA_HOST={base_url} ollama list`, then {pull} against that server"
                )
            }
            Finding::ModelMissing {
                model,
                api,
                base_url,
                similar,
            } => match api {
                ProbeApi::Ollama => {
                    let pull = format!("run `OLLAMA_HOST={base_url} ollama pull {model}`");
                    if similar.is_empty() {
                        pull
                    } else {
                        format!(
                            "{pull}, or configure a name the server has ({})",
                            similar.join(", ")
                        )
                    }
                }
                ProbeApi::OpenAi => format!(
                    "use a model id exactly as {base_url}/models lists it{}",
                    if similar.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", similar.join(", "))
                    }
                ),
                ProbeApi::Anthropic => format!(
                    "use a model id exactly as {base_url}/v1/models lists it, or its alias \
                     without the date, in the route's target and the provider's models{}",
                    if similar.is_empty() {
                        String::new()
                    } else {
                        format!(" (this key sees: {})", similar.join(", "))
                    }
                ),
            },
            Finding::NoToolsCapability { model } => format!(
                "requests that offer tools skip {model} (`model_lacks_tools`: they go to the \
                 route's next target, maybe a cloud one), or with `text_tool_recovery` on for it \
                 reach it and are refused (\"does not support tools\"). Put a tool-capable model \
                 (qwen2.5, qwen3, llama3.1, mistral-nemo...) or a newer {model} whose template \
                 supports tools in its place; or add a route rule that sends tool requests \
                 elsewhere (`rules: [{{ tools: [\"*\"], to: \"ROUTE_WITH_A_TOOL_MODEL\" }}]`); or, \
                 when the server accepts tools and {model} writes calls as text, turn on \
                 `text_tool_recovery` for its provider"
            ),
            Finding::EmbeddingOnly { model, route } => format!(
                "remove {model} from routes.{route} and give it a route of its own for \
                 embeddings (routes: {{ embed: {{ targets: [\"PROVIDER/{model}\"] }} }})"
            ),
            Finding::ModelFromCatalog { .. } => {
                "to probe another model, name it in the provider's `models` (or route to it)"
                    .to_owned()
            }
            Finding::NoChatModelInCatalog {
                provider,
                ollama_host,
                ..
            } => {
                let get = match ollama_host {
                    Some(host) => format!(
                        "pull a chat model into that server (`OLLAMA_HOST={host} ollama pull \
                         qwen2.5:7b`, a small model that also calls tools)"
                    ),
                    None => "load a chat model on that server".to_owned(),
                };
                format!(
                    "{get} and run the doctor again, or name the models to use in \
                     providers.{provider}.models (a route target `{provider}/MODEL` counts too); \
                     embedding models serve only embeddings requests"
                )
            }
            Finding::NoToolModelInCatalog {
                provider,
                ollama_host,
                ..
            } => {
                let get = match ollama_host {
                    Some(host) => format!(
                        "pull a tool-capable model into that server (`OLLAMA_HOST={host} ollama \
                         pull qwen2.5:7b`; qwen3, llama3.1 and mistral-nemo call tools too)"
                    ),
                    None => "load a tool-capable model on that server".to_owned(),
                };
                format!(
                    "{get} and run the doctor again, or name a tool-capable model in \
                     providers.{provider}.models, or send tool requests to another provider's \
                     model (a route rule `{{ tools: [\"*\"], to: \"ROUTE\" }}`)"
                )
            }
            Finding::PathBlocked { path, .. } => format!(
                "a reverse proxy forwards only some paths: forward the whole API (nginx: \
                 `location / {{ proxy_pass http://UPSTREAM; proxy_buffering off; }}`), \
                 including {path}"
            ),
            Finding::GenerationFailed { reason_code, .. } => generation_hint(*reason_code),
            Finding::FirstTokenTimeoutTooShort { measured, .. } => format!(
                "raise first_token_ms to at least {} for this provider, or keep the model loaded \
                 (OLLAMA_KEEP_ALIVE=-1 or keep_alive) so requests do not wait for a cold load",
                suggest_ms(*measured)
            ),
            Finding::IdleGapTooLong { measured, .. } => format!(
                "raise idle_ms to at least {} for this provider",
                suggest_ms(*measured)
            ),
            Finding::TotalTimeoutTooShort { measured, .. } => format!(
                "raise total_ms to well above {} for this provider, or remove it: the first-token \
                 and idle timeouts already catch a stuck stream without cutting a slow one",
                suggest_ms(*measured)
            ),
            Finding::StreamBuffered { .. } => {
                "a proxy between here and the server buffers responses: turn buffering off for \
                 this path (nginx: `proxy_buffering off;`), or talk to the server directly"
                    .to_owned()
            }
            Finding::ToolCallAsText {
                api,
                ollama_v1,
                recovery_on,
            } => {
                let native = match (api, ollama_v1) {
                    (ProbeApi::OpenAi, true) => {
                        "Ollama's /v1 passes calls through as text for this model: use the native \
                         API (api: \"ollama\", base_url without /v1)"
                    }
                    (ProbeApi::OpenAi, false) => {
                        "enable the server's tool parser (vLLM: --enable-auto-tool-choice \
                         --tool-call-parser FAMILY)"
                    }
                    (ProbeApi::Ollama, _) => {
                        "the model's template does not produce native tool calls: use a model \
                         whose template supports tools"
                    }
                    (ProbeApi::Anthropic, _) => {
                        return "the server wrote the call as text instead of a tool_use block: \
                                route tool requests to a model the server serves with tool use \
                                (every Claude model has it), or use the server's native API as \
                                another provider"
                            .to_owned();
                    }
                };
                if *recovery_on {
                    format!(
                        "the gateway recovers these calls (text_tool_recovery is on for this \
                         provider: a call written as text becomes a structured call when the \
                         request offered that tool), so agents still act; for native calls: \
                         {native}"
                    )
                } else {
                    format!(
                        "{native}; or set text_tool_recovery: true for this provider (it is off \
                         for it), so the gateway turns calls written as text into structured \
                         calls"
                    )
                }
            }
            Finding::ToolOutputExhausted { model, .. } => format!(
                "this does not show that {model} cannot call tools: a thinking model (qwen3, \
                 deepseek-r1, OpenAI's o-series) reasons before it calls; give tool requests room \
                 for that (a max_tokens of a few thousand, or none) or turn thinking off for \
                 tool routes, and run the doctor again"
            ),
            Finding::NoToolCall { model } => format!(
                "use a tool-capable model for tool routes ({model} ignored the tool it was \
                 offered; Ollama lists `tools` in its capabilities)"
            ),
            Finding::AnthropicNoKey { .. }
            | Finding::AnthropicKeyRejected { .. }
            | Finding::AnthropicPermission { .. }
            | Finding::AnthropicRateLimited { .. }
            | Finding::Overloaded { .. }
            | Finding::ToolResultUnanswered { .. } => self.anthropic_hint(),
            Finding::ConfigInvalid { .. } => {
                "fix the place named above; `switchyard config check` checks the file again"
                    .to_owned()
            }
            Finding::ListenInUse { addr } => format!(
                "if that is not the running gateway, stop the other program or set server.listen \
                 to another port (`ss -ltnp 'sport = :{}'` shows who has it)",
                addr.port()
            ),
            Finding::ListenUnavailable {
                addr, permission, ..
            } => {
                if *permission {
                    format!(
                        "ports below 1024 need privileges: use a port above 1024 (e.g. {}:4141)",
                        addr.ip()
                    )
                } else {
                    "listen on an address this host has (127.0.0.1, 0.0.0.0, or one of its \
                     interfaces)"
                        .to_owned()
                }
            }
            Finding::OpenWithoutKeys { .. } => {
                "the config chose this (server.insecure_listen: true), but anyone who can reach \
                 the address can use your models and cloud budget: add server.keys, or listen \
                 on 127.0.0.1 and drop insecure_listen"
                    .to_owned()
            }
        }
    }

    /// The hints of the Anthropic findings: each names the config field or variable to
    /// change.
    fn anthropic_hint(&self) -> String {
        match self {
            Finding::AnthropicNoKey { provider } => format!(
                "set providers.{provider}.api_key to \"env:ANTHROPIC_API_KEY\" and export \
                 ANTHROPIC_API_KEY (a key from console.anthropic.com, Settings > API keys, \
                 starting sk-ant-) where the gateway runs; it is sent as x-api-key"
            ),
            Finding::AnthropicKeyRejected {
                provider,
                foreign_key,
                ..
            } => {
                let shape = if *foreign_key {
                    "the key does not start with sk-ant-: it is another provider's key; "
                } else {
                    "the key is mistyped, revoked or from another organisation; "
                };
                format!(
                    "{shape}create a key at console.anthropic.com (Settings > API keys) and put \
                     it in the variable providers.{provider}.api_key names (\"env:NAME\" reads \
                     NAME, e.g. ANTHROPIC_API_KEY) where the gateway runs, then restart it"
                )
            }
            Finding::AnthropicPermission { provider, beta, .. } => {
                let beta = match beta {
                    Some(b) => format!(
                        ", or remove the beta features it may not use ({b}) from \
                         providers.{provider}.anthropic_beta"
                    ),
                    None => String::new(),
                };
                format!(
                    "the key is valid but its workspace may not use this model or feature: use a \
                     key of a workspace with access (console.anthropic.com > Workspaces) in \
                     providers.{provider}.api_key, or route to a model this key may use{beta}"
                )
            }
            Finding::AnthropicRateLimited { provider, .. } => format!(
                "this key's per-minute limits are reached (another client shares them, or the \
                 tier is low): the gateway honours retry-after and cools {provider} down, so give \
                 its routes a fallback step (a local model) to serve meanwhile; lower \
                 providers.{provider}.max_concurrency or ask Anthropic for a higher tier"
            ),
            Finding::Overloaded { provider, .. } => format!(
                "a passing overload on the provider's side, not a config error: the gateway \
                 treats it as fallback-eligible and cools {provider} down, so give every route \
                 that uses {provider} a fallback step (a local model or another provider) and \
                 requests move on while it cools; run the doctor again later"
            ),
            Finding::ToolResultUnanswered { model, .. } => format!(
                "{model} could not finish a tool round trip: check that the server accepts \
                 tool_result blocks (a proxy in between may rewrite them), or route tool \
                 requests to another model"
            ),
            _ => "check the server's log for this request".to_owned(),
        }
    }

    /// The finding as a table line for `rung` (a note, status ok, carries no hint).
    pub fn check(&self, rung: Rung) -> Check {
        if self.status() == Status::Ok {
            let mut check = Check::ok(rung, self.summary());
            check.code = self.code().to_owned();
            return check;
        }
        Check::problem(
            rung,
            self.status(),
            self.code(),
            self.summary(),
            self.hint(),
        )
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code(), self.summary())
    }
}

/// The endpoint paths an OpenAI-compatible client appends to its base URL, longest first
/// (a base URL ending in one is a mistake: the doctor's `endpoint_path_in_base_url`, and
/// the binary's config validation).
pub const OPENAI_ENDPOINTS: [&str; 5] = [
    "/chat/completions",
    "/completions",
    "/responses",
    "/embeddings",
    "/models",
];

/// The endpoint path an OpenAI-compatible base URL ends in (`/chat/completions`), if any.
pub(crate) fn openai_endpoint_path(base_url: &str) -> Option<&'static str> {
    let base = base_url.trim_end_matches('/');
    OPENAI_ENDPOINTS.into_iter().find(|e| base.ends_with(e))
}

/// The OpenAI-compatible API root for a base URL: without an endpoint path or Ollama's
/// native `/api`, ending in `/v1` (`http://h/v1/chat/completions` and `http://h/api` give
/// `http://h/v1`).
pub(crate) fn openai_root(base_url: &str) -> String {
    let mut root = base_url.trim_end_matches('/');
    if let Some(endpoint) = openai_endpoint_path(root) {
        root = &root[..root.len() - endpoint.len()];
    }
    if root.ends_with("/v1") {
        return root.to_owned();
    }
    let root = root.strip_suffix("/api").unwrap_or(root);
    format!("{root}/v1")
}

/// A few model names for a summary: the first [`SHOWN_NAMES`], then how many more.
fn names(list: &[String]) -> String {
    let shown: Vec<&str> = list.iter().take(SHOWN_NAMES).map(String::as_str).collect();
    let more = list.len().saturating_sub(SHOWN_NAMES);
    if more > 0 {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// How many model names a summary lists.
const SHOWN_NAMES: usize = 5;

fn api_name(api: ProbeApi) -> &'static str {
    match api {
        ProbeApi::Ollama => "Ollama",
        ProbeApi::OpenAi => "OpenAI-compatible",
        ProbeApi::Anthropic => "Anthropic",
    }
}

/// A hint for a generation that failed with a classified error's reason code.
fn generation_hint(reason_code: ReasonCode) -> String {
    let ReasonCode::Error(kind) = reason_code else {
        return "check the server's log for this request".to_owned();
    };
    match kind {
        ErrorKind::ModelNotFound => "pull the model on that server or fix its name in the config",
        ErrorKind::Timeout(TimeoutPhase::FirstToken | TimeoutPhase::Total) => {
            "the model did not answer in time: it may still be loading (check `ollama ps` and \
             the server's log), or it is too large for this machine"
        }
        ErrorKind::Timeout(TimeoutPhase::Idle) => {
            "the stream stalled: check the server's log for a crashed runner"
        }
        ErrorKind::Overloaded | ErrorKind::QueueFull => {
            "the server is busy: lower max_concurrency or raise OLLAMA_NUM_PARALLEL / \
             OLLAMA_MAX_QUEUE"
        }
        ErrorKind::ContextOverflow => "raise num_ctx for this model",
        ErrorKind::InvalidRequest => {
            "the server refused a minimal request: check its log and the model's template"
        }
        ErrorKind::StreamEndedEarly | ErrorKind::MalformedStream => {
            "the answer broke off: a crashed runner (out of memory?) or a proxy that cuts \
             streams; check the server's log"
        }
        ErrorKind::Upstream => "the server failed: check its log (out of memory, a crashed runner)",
        _ => "check the server's log for this request",
    }
    .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn refused_on_loopback_points_at_starting_ollama_and_containers() {
        let f = Finding::ConnectRefused {
            addr: addr("127.0.0.1:11434"),
            api: ProbeApi::Ollama,
            in_container: false,
        };
        let hint = f.hint();
        assert!(hint.contains("ollama serve"), "{hint}");
        assert!(hint.contains("host.docker.internal:11434"), "{hint}");
        assert_eq!(f.code(), "connect_refused");
        assert_eq!(f.status(), Status::Fail);
        let in_container = Finding::ConnectRefused {
            addr: addr("127.0.0.1:11434"),
            api: ProbeApi::Ollama,
            in_container: true,
        };
        let hint = in_container.hint();
        assert!(hint.starts_with("this runs in a container"), "{hint}");
        assert!(hint.contains("host-gateway"), "{hint}");
    }

    #[test]
    fn refused_on_another_host_points_at_the_bind_address() {
        let f = Finding::ConnectRefused {
            addr: addr("192.168.1.20:11434"),
            api: ProbeApi::Ollama,
            in_container: true,
        };
        assert!(
            f.hint().contains("OLLAMA_HOST=0.0.0.0:11434"),
            "{}",
            f.hint()
        );
        let f = Finding::ConnectRefused {
            addr: addr("192.168.1.20:8000"),
            api: ProbeApi::OpenAi,
            in_container: false,
        };
        assert!(f.hint().contains("0.0.0.0"));
        assert!(!f.hint().contains("OLLAMA_HOST"));
    }

    #[test]
    fn timed_out_and_unreachable_have_their_own_hints() {
        let t = Finding::ConnectTimedOut {
            addr: addr("10.0.0.5:11434"),
            after: Duration::from_secs(3),
        };
        assert!(t.hint().contains("firewall"));
        assert!(t.summary().contains("3.0 s"));
        let u = Finding::Unreachable {
            addr: addr("10.0.0.5:11434"),
            error: "no route".into(),
        };
        assert!(u.hint().contains("ip route get 10.0.0.5"));
        assert_ne!(t.hint(), u.hint());
    }

    #[test]
    fn tls_hints_name_the_fix() {
        let f = Finding::TlsUnknownIssuer {
            host: "ollama.lan".into(),
            ca_file: None,
        };
        assert!(f.hint().contains("ca_file"));
        let f = Finding::TlsUnknownIssuer {
            host: "h".into(),
            ca_file: Some("/etc/ca.pem".into()),
        };
        assert!(f.hint().contains("/etc/ca.pem"));
        let f = Finding::TlsNameMismatch {
            host: "10.0.0.2".into(),
        };
        assert!(f.hint().contains("subjectAltName"));
        assert!(
            Finding::PlainToTlsPort {
                addr: addr("127.0.0.1:443")
            }
            .hint()
            .contains("https://")
        );
        assert!(
            Finding::TlsToPlainPort {
                addr: addr("127.0.0.1:80")
            }
            .hint()
            .contains("http://")
        );
    }

    #[test]
    fn severities() {
        let empty = |models: Vec<String>| Finding::CatalogEmpty {
            base_url: "http://h".into(),
            models,
        };
        assert_eq!(empty(vec!["m".into()]).status(), Status::Fail);
        assert_eq!(empty(vec![]).status(), Status::Warn);
        assert_eq!(
            Finding::V1OnOllama {
                native: "http://h".into()
            }
            .status(),
            Status::Warn
        );
        assert_eq!(
            Finding::ToolCallAsText {
                api: ProbeApi::Ollama,
                ollama_v1: false,
                recovery_on: true
            }
            .status(),
            Status::Warn
        );
        assert_eq!(
            Finding::NoToolCall { model: "m".into() }.status(),
            Status::Fail
        );
        let exhausted = Finding::ToolOutputExhausted {
            model: "qwen3:8b".into(),
            limit: 1024,
            thinking: true,
        };
        assert_eq!(exhausted.status(), Status::Warn);
        assert!(
            exhausted
                .summary()
                .contains("ran out of tokens while thinking")
        );
        assert!(!exhausted.hint().contains("use a tool-capable model"));
        assert_eq!(
            Finding::KeyRejected {
                status: 401,
                message: String::new()
            }
            .status(),
            Status::Fail
        );
    }

    #[test]
    fn timeout_suggestions_leave_headroom() {
        let f = Finding::FirstTokenTimeoutTooShort {
            configured: Duration::from_secs(30),
            measured: Duration::from_millis(41_200),
            cold: true,
        };
        assert!(
            f.hint().contains("first_token_ms to at least 83000"),
            "{}",
            f.hint()
        );
        assert!(f.summary().contains("cold start"));
        assert_eq!(suggest_ms(Duration::from_millis(300)), 1000);
    }

    #[test]
    fn tool_text_hints_depend_on_the_api() {
        let hint = |api, ollama_v1, recovery_on| {
            Finding::ToolCallAsText {
                api,
                ollama_v1,
                recovery_on,
            }
            .hint()
        };
        let v1 = hint(ProbeApi::OpenAi, true, false);
        let native = hint(ProbeApi::Ollama, false, false);
        let vllm = hint(ProbeApi::OpenAi, false, false);
        assert!(v1.contains("native API"));
        assert!(native.contains("template"));
        assert!(vllm.contains("tool-call-parser"));
        for off in [&v1, &native, &vllm] {
            assert!(off.contains("set text_tool_recovery: true"), "{off}");
            assert!(!off.contains("tool_text_recovery"), "{off}");
        }
        // On (the default for Ollama and local or LAN servers): the gateway recovers them.
        let on = hint(ProbeApi::Ollama, false, true);
        assert!(on.starts_with("the gateway recovers these calls"), "{on}");
        assert!(on.contains("template"), "{on}");
        assert!(!on.contains("set text_tool_recovery"), "{on}");
    }

    #[test]
    fn every_generation_failure_gets_a_hint() {
        for code in [
            ErrorKind::ModelNotFound,
            ErrorKind::Timeout(TimeoutPhase::FirstToken),
            ErrorKind::Overloaded,
            ErrorKind::Cancelled,
        ] {
            let code = ReasonCode::Error(code);
            let f = Finding::GenerationFailed {
                streamed: false,
                reason_code: code,
                message: "m".into(),
            };
            assert!(!f.hint().is_empty());
            assert!(f.summary().contains(code.as_str()));
        }
    }

    #[test]
    fn openai_roots_drop_endpoint_paths() {
        for (base, root) in [
            ("http://h:8000/v1/chat/completions", "http://h:8000/v1"),
            ("http://h:8000/v1/chat/completions/", "http://h:8000/v1"),
            ("http://h:8000/v1/completions", "http://h:8000/v1"),
            ("http://h:8000/v1/responses", "http://h:8000/v1"),
            ("http://h:8000/v1/embeddings", "http://h:8000/v1"),
            ("http://h:8000/v1/models", "http://h:8000/v1"),
            ("http://h:8000/chat/completions", "http://h:8000/v1"),
            ("http://h:11434/api", "http://h:11434/v1"),
            ("http://h:8000", "http://h:8000/v1"),
            ("http://h:8000/v1", "http://h:8000/v1"),
        ] {
            assert_eq!(openai_root(base), root, "{base}");
        }
        assert_eq!(
            openai_endpoint_path("http://h/v1/chat/completions"),
            Some("/chat/completions")
        );
        assert_eq!(openai_endpoint_path("http://h/v1"), None);
        let f = Finding::MissingV1 {
            base_url: "http://h:8000/v1/chat/completions".into(),
        };
        assert!(f.hint().ends_with("use http://h:8000/v1"), "{}", f.hint());
    }

    #[test]
    fn empty_catalog_names_the_configured_models() {
        let f = Finding::CatalogEmpty {
            base_url: "http://h:11434".into(),
            models: vec!["qwen2.5:7b".into(), "llama3.1".into()],
        };
        assert!(
            f.hint()
                .contains("`ollama pull qwen2.5:7b`, `ollama pull llama3.1`")
        );
        let f = Finding::CatalogEmpty {
            base_url: "http://h:11434".into(),
            models: vec![],
        };
        assert!(f.hint().contains("ollama pull MODEL"));
    }

    #[test]
    fn ports_that_do_not_speak_http_are_told_apart() {
        let other = Finding::NotHttp {
            addr: addr("127.0.0.1:2222"),
            first_line: "SSH-2.0-OpenSSH_9.6p1".into(),
        };
        assert!(other.summary().contains("SSH-2.0"));
        assert!(other.hint().contains("another program"));
        let closed = Finding::ClosedWithoutAnswer {
            addr: addr("127.0.0.1:8080"),
        };
        assert!(closed.hint().contains("nothing is behind"));
        assert_eq!(closed.status(), Status::Fail);
    }

    #[test]
    fn a_model_picked_from_the_catalog_is_a_note_with_its_rule() {
        let pick = |tools| Finding::ModelFromCatalog {
            model: "qwen2.5:7b".into(),
            tools,
            embedding: vec!["nomic-embed-text:latest".into()],
            cloud: vec![],
        };
        let note = pick(Some(true));
        assert_eq!(
            (note.code(), note.status()),
            ("model_from_catalog", Status::Ok)
        );
        let check = note.check(Rung::Catalog);
        assert_eq!(
            (check.code.as_str(), check.status, check.hint.as_deref()),
            ("model_from_catalog", Status::Ok, None)
        );
        assert_eq!(
            check.summary,
            "no model configured; probing `qwen2.5:7b` from the server's catalog: the first \
             chat model it lists with the `tools` capability; passed over \
             nomic-embed-text:latest (embeddings only)"
        );
        assert!(
            pick(Some(false))
                .summary()
                .contains("none of the chat models looked at")
        );
        assert!(
            pick(None)
                .summary()
                .contains("its capabilities are unknown")
        );
    }

    #[test]
    fn a_catalog_without_chat_or_tool_models_says_what_to_pull() {
        let no_chat = |ollama_host: Option<&str>, checked, listed| Finding::NoChatModelInCatalog {
            provider: "local".into(),
            ollama_host: ollama_host.map(str::to_owned),
            embedding: vec!["nomic-embed-text:latest".into()],
            cloud: vec!["gpt-oss:120b-cloud".into()],
            checked,
            listed,
        };
        let f = no_chat(Some("http://h:11434"), 2, 2);
        assert_eq!(
            (f.code(), f.status()),
            ("no_chat_model_in_catalog", Status::Warn)
        );
        assert_eq!(
            f.summary(),
            "no model configured, and the server lists no chat model to probe: \
             nomic-embed-text:latest is embeddings only; gpt-oss:120b-cloud runs in Ollama's \
             cloud (the doctor sends no prompt there)"
        );
        assert!(
            f.hint()
                .contains("`OLLAMA_HOST=http://h:11434 ollama pull qwen2.5:7b`"),
            "{}",
            f.hint()
        );
        assert!(f.hint().contains("providers.local.models"));
        let f = no_chat(None, 32, 40);
        assert!(f.summary().contains("among the first 32 of its 40 models"));
        assert!(!f.hint().contains("ollama pull"), "{}", f.hint());

        let no_tools = |checked, all| Finding::NoToolModelInCatalog {
            provider: "local".into(),
            ollama_host: Some("http://h:11434".into()),
            checked,
            all,
        };
        let f = no_tools(1, true);
        assert_eq!(
            (f.code(), f.status()),
            ("no_tool_model_in_catalog", Status::Warn)
        );
        assert!(f.summary().contains("its one chat model lacks the `tools`"));
        assert!(
            no_tools(3, false)
                .summary()
                .contains("none of the first 3 chat models it lists has")
        );
        assert!(f.hint().contains("ollama pull qwen2.5:7b"), "{}", f.hint());
        assert!(f.hint().contains("tools: [\"*\"]"), "{}", f.hint());
    }

    #[test]
    fn missing_model_suggests_pull_and_similar_names() {
        let f = Finding::ModelMissing {
            model: "qwen2.5:7b".into(),
            api: ProbeApi::Ollama,
            base_url: "http://127.0.0.1:11434".into(),
            similar: vec!["qwen2.5:3b".into()],
        };
        assert!(f.hint().contains("ollama pull qwen2.5:7b"));
        assert!(f.hint().contains("qwen2.5:3b"));
    }
}
