//! The gateway's own settings: API keys with their policy, limits, timeouts.

use std::fmt;
use std::time::Duration;

use switchyard_core::PrivacyClass;

/// One bearer key a client may present, with the policy that comes with it.
///
/// The token is the resolved secret (the binary resolves `env:` references); it is
/// compared in constant time and never logged: `Debug` shows only the id.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// The key's id: the caller name in logs, metrics and the router's caller policy.
    pub id: String,
    /// The secret a client sends as `Authorization: Bearer <token>`. Empty tokens never match.
    pub token: String,
    /// The privacy class of every request made with this key (`local-only` keeps them
    /// off cloud targets). A request header can raise it, never lower it.
    pub privacy: Option<PrivacyClass>,
    /// Route aliases (or exact `provider/model` names) this key may use; `None`: all.
    pub allowed_routes: Option<Vec<String>>,
    /// Chat requests per minute at most; `None`: unlimited.
    pub requests_per_minute: Option<u32>,
    /// Tokens (prompt plus completion) per minute at most; `None`: unlimited.
    pub tokens_per_minute: Option<u32>,
    /// May manage models on the upstreams (`POST /api/pull`), and sees upstream details:
    /// URLs and attempts in error messages, every provider's state in `/readyz` (others get
    /// the reason code and a generic message).
    pub admin: bool,
}

impl ApiKey {
    /// A key with no policy beyond authentication.
    pub fn new(id: impl Into<String>, token: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            token: token.into(),
            privacy: None,
            allowed_routes: None,
            requests_per_minute: None,
            tokens_per_minute: None,
            admin: false,
        }
    }

    /// Whether this key may use `model` (a route alias or `provider/model`).
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_routes
            .as_ref()
            .is_none_or(|allowed| allowed.iter().any(|r| r == model))
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ApiKey")
            .field("id", &self.id)
            .field("token", &"<redacted>")
            .field("privacy", &self.privacy)
            .field("allowed_routes", &self.allowed_routes)
            .field("requests_per_minute", &self.requests_per_minute)
            .field("tokens_per_minute", &self.tokens_per_minute)
            .field("admin", &self.admin)
            .finish()
    }
}

/// The gateway's settings. Everything here can be reloaded with
/// [`crate::Gateway::set_config`]; `header_read_timeout` and `idle_timeout` are read per
/// accepted connection and `shutdown_grace` when shutdown starts, so they take effect for
/// new connections and the next shutdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    /// Accepted bearer keys. Empty: no authentication (only allowed on loopback unless
    /// `allow_insecure_non_loopback`).
    pub keys: Vec<ApiKey>,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// How long a new connection may take to deliver its first complete request head
    /// (HTTP/1 headers, or the HTTP/2 preface, settings and first HEADERS), counted from
    /// accept. A later HTTP/1 request's head is cut off between one and two of it after
    /// its first byte; until a head starts, a keep-alive connection is timed by
    /// `idle_timeout` alone.
    pub header_read_timeout: Duration,
    /// A connection (HTTP/1 keep-alive or HTTP/2) with no request in flight for this long
    /// is closed.
    pub idle_timeout: Duration,
    /// Longest pause while a request body is read; a client that stops sending mid-body
    /// gets a 408 and its connection is closed.
    pub body_read_timeout: Duration,
    /// Bytes of request bodies held at once across all requests; beyond it a request gets
    /// a 503 (`overloaded`, with `retry-after`).
    pub max_body_memory_bytes: usize,
    /// How long running streams may go on after shutdown was asked for.
    pub shutdown_grace: Duration,
    /// Listen on a non-loopback address without keys anyway.
    pub allow_insecure_non_loopback: bool,
    /// Callers on a loopback address see upstream details as admin keys do. Turn it off
    /// when a reverse proxy on this host forwards other hosts' requests.
    pub loopback_is_admin: bool,
    /// The version reported by `GET /api/version`.
    pub version: String,
    /// Open client connections at most. At the cap a new connection closes the one idle the
    /// longest; when every connection is busy, new ones wait in the listen backlog.
    pub max_connections: usize,
}

impl GatewayConfig {
    /// Default body limit: 32 MiB (base64 images are large).
    pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
    /// Default cap on open client connections.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 4096;
    /// Default cap on memory held by request bodies: 256 MiB.
    pub const DEFAULT_MAX_BODY_MEMORY_BYTES: usize = 256 * 1024 * 1024;
    /// Default idle timeout of a connection.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(120);
    /// Default longest pause in a request body.
    pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(30);
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Self::DEFAULT_IDLE_TIMEOUT,
            body_read_timeout: Self::DEFAULT_BODY_READ_TIMEOUT,
            max_body_memory_bytes: Self::DEFAULT_MAX_BODY_MEMORY_BYTES,
            shutdown_grace: Duration::from_secs(30),
            allow_insecure_non_loopback: false,
            loopback_is_admin: true,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
        }
    }
}
