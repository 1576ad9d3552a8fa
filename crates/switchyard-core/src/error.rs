//! Classified provider errors with stable reason codes.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Which phase of a request a timeout hit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeoutPhase {
    /// Establishing the connection (TCP and TLS).
    Connect,
    /// From sending the request to the first event of the answer (includes a cold model load).
    FirstToken,
    /// The gap between two chunks of a stream that already started.
    Idle,
    /// The whole request, when a total limit is configured.
    Total,
    /// Waiting in a provider's queue for a free slot.
    Queue,
}

/// What kind of failure a [`ProviderError`] is. Stable: new kinds may be added.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Nothing listens at the address (TCP RST).
    ConnectRefused,
    /// The host name did not resolve.
    Dns,
    /// The TLS handshake failed (untrusted certificate, name mismatch, plain HTTP on a TLS port...).
    Tls,
    /// Any other failure to connect (unreachable network, reset during connect).
    Connect,
    /// A phase timeout expired.
    Timeout(TimeoutPhase),
    /// The upstream refused the credentials (401/403).
    Auth,
    /// The upstream asked us to slow down (429); see [`ProviderError::retry_after`].
    RateLimited,
    /// The account's quota or credit is exhausted (OpenAI `insufficient_quota`): not transient.
    QuotaExhausted,
    /// The upstream is overloaded or unavailable (503, 529, Ollama's queue full).
    Overloaded,
    /// The model does not exist there (or is not pulled).
    ModelNotFound,
    /// The endpoint does not exist (404 without a model message: wrong base URL or a proxy
    /// that does not forward this path).
    EndpointNotFound,
    /// The prompt does not fit the model's context window.
    ContextOverflow,
    /// The upstream rejected the request as invalid (400, 422, ...).
    InvalidRequest,
    /// The upstream failed (500, 502, 504, a crashed runner).
    Upstream,
    /// The upstream sent bytes that are not the protocol (bad JSON, an oversized line...).
    MalformedStream,
    /// The stream ended without its final event.
    StreamEndedEarly,
    /// The request was cancelled (client went away, shutdown).
    Cancelled,
    /// Policy kept the request from every target (privacy class, cloud fallback off,
    /// strict target, allowed routes).
    PolicyBlocked,
    /// The spending cap removed the remaining targets.
    BudgetExhausted,
    /// The provider's queue is full.
    QueueFull,
    /// A bug or an unexpected local condition in the gateway itself.
    Internal,
    /// The provider does not offer this operation (embeddings on a backend without them,
    /// pulling on a server that cannot pull): skipped, not a fault of its health.
    Unsupported,
}

impl ErrorKind {
    /// Every kind, for tables and tests.
    pub const ALL: [ErrorKind; 26] = [
        ErrorKind::ConnectRefused,
        ErrorKind::Dns,
        ErrorKind::Tls,
        ErrorKind::Connect,
        ErrorKind::Timeout(TimeoutPhase::Connect),
        ErrorKind::Timeout(TimeoutPhase::FirstToken),
        ErrorKind::Timeout(TimeoutPhase::Idle),
        ErrorKind::Timeout(TimeoutPhase::Total),
        ErrorKind::Timeout(TimeoutPhase::Queue),
        ErrorKind::Auth,
        ErrorKind::RateLimited,
        ErrorKind::QuotaExhausted,
        ErrorKind::Overloaded,
        ErrorKind::ModelNotFound,
        ErrorKind::EndpointNotFound,
        ErrorKind::ContextOverflow,
        ErrorKind::InvalidRequest,
        ErrorKind::Upstream,
        ErrorKind::MalformedStream,
        ErrorKind::StreamEndedEarly,
        ErrorKind::Cancelled,
        ErrorKind::PolicyBlocked,
        ErrorKind::BudgetExhausted,
        ErrorKind::QueueFull,
        ErrorKind::Internal,
        ErrorKind::Unsupported,
    ];

    /// A stable snake_case code for logs, metrics labels and API error bodies.
    pub fn reason_code(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::Dns => "dns_failure",
            ErrorKind::Tls => "tls_failure",
            ErrorKind::Connect => "connect_failed",
            ErrorKind::Timeout(TimeoutPhase::Connect) => "timeout_connect",
            ErrorKind::Timeout(TimeoutPhase::FirstToken) => "timeout_first_token",
            ErrorKind::Timeout(TimeoutPhase::Idle) => "timeout_idle",
            ErrorKind::Timeout(TimeoutPhase::Total) => "timeout_total",
            ErrorKind::Timeout(TimeoutPhase::Queue) => "timeout_queue",
            ErrorKind::Auth => "auth_failed",
            ErrorKind::RateLimited => "rate_limited",
            ErrorKind::QuotaExhausted => "quota_exhausted",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ModelNotFound => "model_not_found",
            ErrorKind::EndpointNotFound => "endpoint_not_found",
            ErrorKind::ContextOverflow => "context_overflow",
            ErrorKind::InvalidRequest => "invalid_request",
            ErrorKind::Upstream => "upstream_error",
            ErrorKind::MalformedStream => "malformed_stream",
            ErrorKind::StreamEndedEarly => "stream_ended_early",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::PolicyBlocked => "policy_blocked",
            ErrorKind::BudgetExhausted => "budget_exhausted",
            ErrorKind::QueueFull => "queue_full",
            ErrorKind::Internal => "internal_error",
            ErrorKind::Unsupported => "unsupported",
        }
    }

    /// Whether another target may be tried after this failure (before any output reached
    /// the client). Decisions of policy and faults of the request itself are not eligible:
    /// another target would refuse the same prompt, or policy forbids it.
    pub fn fallback_eligible(self) -> bool {
        !matches!(
            self,
            ErrorKind::ContextOverflow
                | ErrorKind::InvalidRequest
                | ErrorKind::Cancelled
                | ErrorKind::PolicyBlocked
                | ErrorKind::Internal
        )
    }

    /// Whether the same target may be tried again after a short back-off (transient faults).
    pub fn retryable(self) -> bool {
        matches!(
            self,
            ErrorKind::Connect
                | ErrorKind::Timeout(TimeoutPhase::Connect)
                | ErrorKind::RateLimited
                | ErrorKind::Overloaded
                | ErrorKind::Upstream
                | ErrorKind::StreamEndedEarly
        )
    }

    /// Whether this failure says something about the target's health (and so should put
    /// it in cooldown), as opposed to a fault of the request or a decision of policy.
    pub fn counts_against_health(self) -> bool {
        self.fallback_eligible()
            && !matches!(
                self,
                ErrorKind::ModelNotFound
                    | ErrorKind::Unsupported
                    | ErrorKind::BudgetExhausted
                    | ErrorKind::QueueFull
                    | ErrorKind::Timeout(TimeoutPhase::Queue)
            )
    }

    /// Whether this is a timeout of any phase.
    pub fn is_timeout(self) -> bool {
        matches!(self, ErrorKind::Timeout(_))
    }

    /// Whether the connection could not be established at all.
    pub fn is_connect(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectRefused
                | ErrorKind::Dns
                | ErrorKind::Tls
                | ErrorKind::Connect
                | ErrorKind::Timeout(TimeoutPhase::Connect)
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason_code())
    }
}

/// Serialized as its [reason code](ErrorKind::reason_code).
impl serde::Serialize for ErrorKind {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.reason_code())
    }
}

/// A classified failure of a provider (or of the router acting as one).
///
/// Keeps the upstream's own message verbatim, its HTTP status and error code when there
/// was one, a retry hint, and the underlying error as `source`.
#[derive(Clone, thiserror::Error)]
#[error("{kind}: {message}")]
pub struct ProviderError {
    kind: ErrorKind,
    message: String,
    status: Option<u16>,
    upstream_code: Option<String>,
    retry_after: Option<Duration>,
    #[source]
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl fmt::Debug for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ProviderError");
        d.field("kind", &self.kind).field("message", &self.message);
        if let Some(s) = self.status {
            d.field("status", &s);
        }
        if let Some(c) = &self.upstream_code {
            d.field("upstream_code", c);
        }
        if let Some(r) = self.retry_after {
            d.field("retry_after", &r);
        }
        if let Some(s) = &self.source {
            d.field("source", s);
        }
        d.finish()
    }
}

impl PartialEq for ProviderError {
    fn eq(&self, other: &Self) -> bool {
        self.kind == other.kind
            && self.message == other.message
            && self.status == other.status
            && self.upstream_code == other.upstream_code
            && self.retry_after == other.retry_after
    }
}

impl ProviderError {
    /// A new error of `kind` with a human-readable message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            status: None,
            upstream_code: None,
            retry_after: None,
            source: None,
        }
    }

    /// Attaches the HTTP status the upstream answered with.
    #[must_use]
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Attaches the upstream's own error code (`model_not_found`, `insufficient_quota`...).
    #[must_use]
    pub fn with_upstream_code(mut self, code: impl Into<String>) -> Self {
        self.upstream_code = Some(code.into());
        self
    }

    /// Attaches a retry hint (from `retry-after`).
    #[must_use]
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches the underlying error.
    #[must_use]
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// Prefixes the message with context (for example which target failed), keeping the rest.
    #[must_use]
    pub fn context(mut self, context: impl fmt::Display) -> Self {
        self.message = format!("{context}: {}", self.message);
        self
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The message: the upstream's own words where it gave some.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The upstream's HTTP status, if the failure came with one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// The upstream's error code, if it gave one.
    pub fn upstream_code(&self) -> Option<&str> {
        self.upstream_code.as_deref()
    }

    /// How long the upstream asked us to wait, if it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The stable reason code of the kind.
    pub fn reason_code(&self) -> &'static str {
        self.kind.reason_code()
    }

    /// See [`ErrorKind::fallback_eligible`].
    pub fn fallback_eligible(&self) -> bool {
        self.kind.fallback_eligible()
    }

    /// See [`ErrorKind::retryable`].
    pub fn retryable(&self) -> bool {
        self.kind.retryable()
    }

    /// Whether this is a timeout of any phase.
    pub fn is_timeout(&self) -> bool {
        self.kind.is_timeout()
    }

    /// A stream that ended without its final event.
    pub fn ended_early(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::StreamEndedEarly, detail)
    }

    /// Bytes that are not the protocol.
    pub fn malformed(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::MalformedStream, detail)
    }
}
