//! The config file's shape: what a user writes, deserialized strictly (unknown keys are
//! refused, and so is an id written twice in `providers`, `routes` or `callers`). Routing sections (`routes`, `policy`, `callers`, `health`, `retry`) use the
//! router's own config types, so the file and the router never drift apart.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Deserializer};
use switchyard_core::{Locality, PrivacyClass};
use switchyard_gateway::GatewayConfig;
use switchyard_router::{CallerPolicy, HealthConfig, PolicyConfig, RetryConfig, RouteConfig};

/// The Ollama address used when there is no config file at all.
pub(crate) const DEFAULT_OLLAMA_URL: &str = "http://127.0.0.1:11434";
/// The provider id of that default Ollama.
pub(crate) const DEFAULT_PROVIDER_ID: &str = "ollama";

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct FileConfig {
    /// The HTTP server: address, API keys, limits.
    pub(crate) server: ServerSection,
    /// Upstreams by id (the `provider` in `provider/model`).
    #[serde(deserialize_with = "unique_keys")]
    pub(crate) providers: BTreeMap<String, ProviderSection>,
    /// Route aliases.
    #[serde(deserialize_with = "unique_keys")]
    pub(crate) routes: BTreeMap<String, RouteConfig>,
    /// Global routing policy.
    pub(crate) policy: PolicyConfig,
    /// Per-caller routing policy, keyed by API key id.
    #[serde(deserialize_with = "unique_keys")]
    pub(crate) callers: BTreeMap<String, CallerPolicy>,
    /// Cooldowns and active probes.
    pub(crate) health: HealthConfig,
    /// Retries on the same target.
    pub(crate) retry: RetryConfig,
    /// A file (redb database) where `serve` keeps spend, so budgets survive a restart
    /// (with `shared_state`, also the charges Redis has not applied yet).
    /// Absent: spend is kept in memory and starts from zero at each start. Created by
    /// `serve` when missing, so its folder must exist; `config check` refuses a directory
    /// or a missing folder (and creates nothing).
    pub(crate) spend_ledger: Option<PathBuf>,
    /// Bounds of the Responses API's response store (kept in the `spend_ledger` file when
    /// there is one, in memory otherwise). Read at start.
    pub(crate) responses: ResponsesSection,
    /// State shared by several replicas (Redis or Valkey): spend, budgets, rate limits,
    /// cooldowns, probe results, stored responses. Absent: everything stays in this
    /// process. Read at start.
    pub(crate) shared_state: Option<SharedStateSection>,
}

/// Part of the message of an id written twice (the error's line is then the second one's).
pub(crate) const WRITTEN_TWICE: &str = "is written twice";

/// A map whose keys must all differ: json5 hands every member to the map, so a repeated
/// key would otherwise silently replace the first one's value. The error is raised while
/// reading the second value, so its path ends with the key and its line is the second one.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Unique<V>(std::marker::PhantomData<V>);

    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Unique<V> {
        type Value = BTreeMap<String, V>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object")
        }

        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some(key) = map.next_key::<String>()? {
                if out.contains_key(&key) {
                    map.next_value_seed(Repeated(&key))?;
                    // `Repeated` always fails; this is not reached.
                    return Err(serde::de::Error::custom(format!("`{key}` {WRITTEN_TWICE}")));
                }
                let value = map.next_value()?;
                out.insert(key, value);
            }
            Ok(out)
        }
    }

    deserializer.deserialize_map(Unique(std::marker::PhantomData))
}

/// The value of a repeated key: refused whatever it is.
struct Repeated<'a>(&'a str);

impl Repeated<'_> {
    fn error<E: serde::de::Error>(&self) -> E {
        E::custom(format!(
            "`{}` {WRITTEN_TWICE} (each id may appear once; the later one would silently replace the earlier)",
            self.0
        ))
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Repeated<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        // Through the deserializer, so the error carries the value's place in the file.
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Repeated<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "`{}` only once", self.0)
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        Err(self.error())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.error())
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, _: A) -> Result<(), A::Error> {
        Err(self.error())
    }
}

/// `shared_state: { url, password, ca_file, key_prefix, on_outage }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharedStateSection {
    /// `redis://[user:password@]host:port/db`, `rediss://` (TLS),
    /// `redis+sentinel://host:port[,host:port]/service[/db]`,
    /// `redis+cluster://host:port[,host:port]` (`rediss+` for TLS); may be `env:NAME`.
    pub(crate) url: Secret,
    /// The password, apart from the URL (`env:NAME`); wins over one in the URL.
    #[serde(default)]
    pub(crate) password: Option<Secret>,
    /// A PEM file of the CA(s) that signed the servers' certificates, for a `rediss` URL
    /// served with a private CA (absent: the built-in web roots). Read at start.
    #[serde(default)]
    pub(crate) ca_file: Option<PathBuf>,
    /// Prefix of every key (default `switchyard`): replicas sharing state use the same one.
    #[serde(default = "default_key_prefix")]
    pub(crate) key_prefix: String,
    /// While the store is unreachable: `budgets` (default `closed`), `rate_limits` and
    /// `health` (default `local`), each `closed` or `local`.
    #[serde(default)]
    pub(crate) on_outage: switchyard_router::OutagePolicy,
}

fn default_key_prefix() -> String {
    "switchyard".to_owned()
}

impl SharedStateSection {
    /// The client's config (secrets resolved).
    pub(crate) fn redis_config(&self) -> switchyard_redis::RedisConfig {
        switchyard_redis::RedisConfig {
            url: self.url.value().to_owned(),
            key_prefix: self.key_prefix.clone(),
            password: self.password.as_ref().map(|p| p.value().to_owned()),
            ca_file: self.ca_file.clone(),
        }
    }

    /// Whether a reload changed what a restart would connect to.
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        self.url.raw() == other.url.raw()
            && self.key_prefix == other.key_prefix
            && self.ca_file == other.ca_file
            && self.on_outage == other.on_outage
            && self.password.as_ref().map(Secret::raw) == other.password.as_ref().map(Secret::raw)
    }
}

/// `responses: { ... }`: how long and how many stored responses are kept. Each bound must
/// be above zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ResponsesSection {
    /// Seconds a stored response is kept.
    pub(crate) ttl_secs: u64,
    /// Stored responses kept at most (the oldest go first).
    pub(crate) max_entries: usize,
    /// Bytes of stored responses kept at most.
    pub(crate) max_bytes: usize,
    /// Bytes of one stored response at most (also the bound of a value in the shared state).
    pub(crate) max_entry_bytes: usize,
}

impl Default for ResponsesSection {
    fn default() -> Self {
        let d = switchyard_gateway::ResponseStoreConfig::default();
        Self {
            ttl_secs: d.ttl.as_secs(),
            max_entries: d.max_entries,
            max_bytes: d.max_bytes,
            max_entry_bytes: d.max_entry_bytes,
        }
    }
}

/// `server: { ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct ServerSection {
    /// `host:port` to listen on.
    pub(crate) listen: SocketAddr,
    /// Bearer keys clients must present (none: no auth, loopback only).
    pub(crate) keys: Vec<KeySection>,
    /// Listen on a non-loopback address without keys anyway.
    pub(crate) insecure_listen: bool,
    /// Largest request body accepted.
    pub(crate) max_body_bytes: usize,
    /// How long a new connection may take to deliver its first complete request head
    /// (HTTP/1 headers, or the HTTP/2 preface and first HEADERS), counted from accept. A
    /// later HTTP/1 request's head is cut off between one and two of it after its first
    /// byte (an idle keep-alive connection is timed by `idle_timeout_ms`). Default 10 000.
    pub(crate) header_read_timeout_ms: u64,
    /// How long running streams may continue after a shutdown signal.
    pub(crate) shutdown_grace_ms: u64,
    /// Open client connections at most (default 4096, and never more than half the
    /// open-files limit left after 64 spare). At the cap a new connection closes the one
    /// idle the longest; when all are busy, new ones wait.
    pub(crate) max_connections: usize,
    /// A connection (HTTP/1 keep-alive or HTTP/2) with no request in flight for this long
    /// is closed. Default 120 000.
    pub(crate) idle_timeout_ms: u64,
    /// Longest pause while a request body arrives; after it the client gets a 408 and the
    /// connection is closed. Default 30 000.
    pub(crate) body_read_timeout_ms: u64,
    /// Bytes of request bodies held at once across all requests; beyond it a request gets
    /// a 503 with `retry-after`. Default 268 435 456 (256 MiB).
    pub(crate) max_body_memory_bytes: usize,
    /// Callers on a loopback address see upstream URLs and provider details in errors and
    /// `/readyz`, as admin keys do. Default true; set false behind a reverse proxy on this
    /// host.
    pub(crate) loopback_is_admin: bool,
}

impl Default for ServerSection {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 4141)),
            keys: Vec::new(),
            insecure_listen: false,
            max_body_bytes: GatewayConfig::DEFAULT_MAX_BODY_BYTES,
            header_read_timeout_ms: 10_000,
            shutdown_grace_ms: 30_000,
            max_connections: GatewayConfig::DEFAULT_MAX_CONNECTIONS,
            idle_timeout_ms: millis(GatewayConfig::DEFAULT_IDLE_TIMEOUT),
            body_read_timeout_ms: millis(GatewayConfig::DEFAULT_BODY_READ_TIMEOUT),
            max_body_memory_bytes: GatewayConfig::DEFAULT_MAX_BODY_MEMORY_BYTES,
            loopback_is_admin: true,
        }
    }
}

fn millis(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One API key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeySection {
    /// A name for the key (logs, metrics, `callers`); never the secret.
    pub(crate) id: String,
    /// The secret, normally `"env:NAME"`.
    pub(crate) token: Secret,
    /// The privacy class of every request made with this key.
    pub(crate) privacy: Option<PrivacyClass>,
    /// Route aliases (or `provider/model` names) this key may use; absent: all.
    pub(crate) allowed_routes: Option<Vec<String>>,
    /// Request rate limit.
    pub(crate) requests_per_minute: Option<u32>,
    /// Token rate limit (prompt + completion).
    pub(crate) tokens_per_minute: Option<u32>,
    /// May pull models onto local providers through the gateway (`POST /api/pull`), and
    /// sees upstream URLs and provider details in errors and `/readyz`.
    #[serde(default)]
    pub(crate) admin: bool,
}

/// Which protocol a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ProviderApi {
    /// Ollama's native API (`/api/chat`).
    Ollama,
    /// An OpenAI-compatible API (`/v1/chat/completions`).
    Openai,
    /// Anthropic's Messages API (`/v1/messages`).
    Anthropic,
}

/// How a client's non-streamed chat is asked of the upstream (`upstream_streaming`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum UpstreamStreamingSetting {
    /// Always streamed; a whole answer is folded from the stream (the default: the phase
    /// timeouts then see every token).
    Always,
    /// Streamed only when the client streams; a non-streamed request asks for the whole
    /// answer, so the first-token timeout bounds the whole generation.
    AsClient,
}

/// Which field carries the output limit on an OpenAI-compatible upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum MaxTokensFieldSetting {
    /// `max_tokens` (most servers).
    MaxTokens,
    /// `max_completion_tokens` (OpenAI's reasoning models).
    MaxCompletionTokens,
}

/// `providers.<id>: { ... }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProviderSection {
    /// The protocol.
    pub(crate) api: ProviderApi,
    /// The server's base URL (with `/v1` for OpenAI-compatible servers): the API root, to
    /// which the client appends the endpoint paths itself, so a URL ending in one
    /// (`.../v1/chat/completions`, Ollama's `/api` or `/api/chat`, Anthropic's
    /// `/v1/messages`) is refused with the root to write instead.
    pub(crate) base_url: String,
    /// Where it runs; default: `local` for a loopback address, `cloud` otherwise (write
    /// `lan` for a server on your network). Decides privacy; timeout defaults see
    /// [`TimeoutsSection`].
    pub(crate) locality: Option<Locality>,
    /// Ask the server for its model list (default: only when `models` is empty).
    pub(crate) discover: Option<bool>,
    /// Requests in flight at most (default 4).
    pub(crate) max_concurrency: Option<usize>,
    /// What `max_concurrency` bounds: `replica` (default) or `fleet` (every replica on the
    /// same `shared_state` together; needs `shared_state`).
    #[serde(default)]
    pub(crate) concurrency_scope: switchyard_router::ConcurrencyScope,
    /// Requests waiting at most (default 16).
    pub(crate) max_queue: Option<usize>,
    /// How long a request may wait for a slot (default 30 s).
    pub(crate) queue_timeout_ms: Option<u64>,
    /// Phase timeouts.
    #[serde(default)]
    pub(crate) timeouts: TimeoutsSection,
    /// API key, normally `"env:NAME"`.
    pub(crate) api_key: Option<Secret>,
    /// Extra headers sent with every request (values may be `"env:NAME"`).
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, Secret>,
    /// A PEM file of extra trusted CA certificates.
    pub(crate) ca_file: Option<PathBuf>,
    /// Static model list with prices and limits.
    #[serde(default)]
    pub(crate) models: Vec<ModelSection>,
    /// Turn tool calls written as text into structured calls: `true`, `false`, or (for
    /// OpenAI-compatible providers) a list of the upstream model ids to do it for. Absent:
    /// on for Ollama and for local/LAN OpenAI-compatible providers, off for cloud ones.
    pub(crate) text_tool_recovery: Option<TextRecoverySetting>,
    /// `max_tokens` or `max_completion_tokens` (OpenAI-compatible only).
    pub(crate) max_tokens_field: Option<MaxTokensFieldSetting>,
    /// Ollama `options.num_ctx` sent through an OpenAI-compatible `/v1` (Ollama's `/v1`).
    pub(crate) num_ctx: Option<u32>,
    /// The upstream serves the OpenAI Responses API itself (`{base_url}/responses`: OpenAI,
    /// Ollama >= 0.13.3, vLLM): Responses requests are passed through natively
    /// (OpenAI-compatible only; default false).
    #[serde(default)]
    pub(crate) responses: bool,
    /// How a client's non-streamed chat is sent upstream: `always` streamed (default) or
    /// `as_client` (whole when the client asked for a whole answer; Ollama and
    /// OpenAI-compatible providers).
    pub(crate) upstream_streaming: Option<UpstreamStreamingSetting>,
    /// `anthropic-version` (Anthropic only; default `2023-06-01`).
    pub(crate) anthropic_version: Option<String>,
    /// `anthropic-beta` values (Anthropic only).
    #[serde(default)]
    pub(crate) anthropic_beta: Vec<String>,
    /// Models to load when `serve` starts and keep loaded (Ollama providers only; refused
    /// on others).
    #[serde(default)]
    pub(crate) warm: Option<WarmSection>,
}

/// `warm: { models: [...], keep_alive: -1, timeout_ms: 300000 }`: models `serve` loads at
/// start; `/readyz` answers 503 until they are loaded (or `timeout_ms` passed).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WarmSection {
    /// Model names as the provider knows them.
    pub(crate) models: Vec<String>,
    /// How long the upstream keeps them loaded: a Go duration string (`"30m"`,
    /// `"1h30m"`), or seconds as a number or a string (`-1`, `"0"`); anything else is
    /// refused. Default `-1` (for as long as the server runs).
    #[serde(default)]
    pub(crate) keep_alive: Option<switchyard_core::KeepAlive>,
    /// How long `/readyz` waits for them; default 300000 (5 minutes, a cold load of a big
    /// model from disk).
    #[serde(default)]
    pub(crate) timeout_ms: Option<u64>,
}

/// `text_tool_recovery: true | false | ["model", ...]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub(crate) enum TextRecoverySetting {
    /// On or off for every model.
    Flag(bool),
    /// Only for these models.
    Models(Vec<String>),
}

/// `timeouts: { ... }`; absent values take defaults that suit the provider:
///
/// | provider | connect | first_token | idle |
/// |---|---|---|---|
/// | `api: "ollama"` (any host, any locality) | 5 s | 300 s | 120 s |
/// | `api: "openai"`, locality `local` or `lan` | 5 s | 300 s | 120 s |
/// | `api: "openai"`, locality `cloud` | 5 s | 60 s | 60 s |
///
/// `total` has no default. The locality is the written one, else inferred from the address
/// (loopback: `local`, anything else: `cloud`, the safe side for `local-only` requests); an
/// Ollama server on another host thus counts as `cloud` for privacy unless `locality: "lan"`
/// says otherwise, but keeps the generous timeouts a model loading its weights needs.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(crate) struct TimeoutsSection {
    /// TCP/TLS connect.
    pub(crate) connect_ms: Option<u64>,
    /// Request sent to first event (generous for local models that may be loading).
    pub(crate) first_token_ms: Option<u64>,
    /// Longest gap between chunks.
    pub(crate) idle_ms: Option<u64>,
    /// Optional bound on a whole request.
    pub(crate) total_ms: Option<u64>,
}

/// One statically configured model.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ModelSection {
    /// The upstream's model id.
    pub(crate) id: String,
    /// Price of prompt tokens.
    pub(crate) input_usd_per_mtok: Option<f64>,
    /// Price of generated tokens.
    pub(crate) output_usd_per_mtok: Option<f64>,
    /// Price of prompt tokens read from the prompt cache (default: the input price).
    pub(crate) cache_read_usd_per_mtok: Option<f64>,
    /// Price of prompt tokens written to the prompt cache (default: the input price).
    pub(crate) cache_write_usd_per_mtok: Option<f64>,
    /// Context window in tokens.
    pub(crate) context_window: Option<u32>,
    /// Maximum output tokens.
    pub(crate) max_output: Option<u32>,
    /// Native tool calling (default true once any capability is stated; when none of
    /// `tools`, `vision`, `thinking` is given the capabilities are unknown and the router
    /// tries the model).
    pub(crate) tools: Option<bool>,
    /// Image input (default false).
    pub(crate) vision: Option<bool>,
    /// Reasoning output (default false).
    pub(crate) thinking: Option<bool>,
}

/// A secret: `"env:NAME"` (resolved when the file is loaded) or, discouraged, the value
/// itself. `Debug` never shows a value.
#[derive(Clone, Default)]
pub(crate) struct Secret {
    /// As written in the file.
    raw: String,
    /// The value, once resolved.
    value: Option<String>,
}

impl Secret {
    /// The variable name when written as `env:NAME`.
    pub(crate) fn env_name(&self) -> Option<&str> {
        self.raw.strip_prefix("env:").map(str::trim)
    }

    /// A secret as written (tests and the built-in defaults).
    #[cfg(test)]
    pub(crate) fn literal(raw: &str) -> Self {
        Self {
            raw: raw.to_owned(),
            value: None,
        }
    }

    /// Sets the resolved value.
    pub(crate) fn set_value(&mut self, value: String) {
        self.value = Some(value);
    }

    /// The resolved value (the literal when not a reference).
    pub(crate) fn value(&self) -> &str {
        self.value.as_deref().unwrap_or(&self.raw)
    }

    /// As written in the file (`env:NAME` or a literal).
    pub(crate) fn raw(&self) -> &str {
        &self.raw
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.env_name() {
            Some(name) => write!(f, "env:{name}"),
            None => f.write_str("<redacted>"),
        }
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Ok(Self { raw, value: None })
    }
}
