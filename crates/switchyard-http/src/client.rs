//! Building the `reqwest` client and normalising base URLs.

use std::path::PathBuf;
use std::time::Duration;

use reqwest::header::{AUTHORIZATION, HeaderMap, HeaderName, HeaderValue};

/// Phase timeouts of one upstream request. A stream that keeps producing chunks is never
/// cut by `idle`; only `total`, when set, bounds a whole request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP (and TLS) connection establishment.
    pub connect: Duration,
    /// From sending the request to the first event of the answer. Generous by default: a
    /// cold 7B-70B model load on CPU can take minutes.
    pub first_token: Duration,
    /// Longest gap between two chunks once the answer started.
    pub idle: Duration,
    /// Optional bound on the whole request.
    pub total: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            first_token: Duration::from_secs(300),
            idle: Duration::from_secs(120),
            total: None,
        }
    }
}

impl Timeouts {
    /// The phases for a streamed request that offers tools (`offers_tools`): a server that
    /// parses tool calls itself (Ollama, vLLM's tool parsers) holds a call's tokens back
    /// until the call is complete, so a slow model writing a long call sends nothing for
    /// as long as it writes. The idle limit is then at least the first-token one, the
    /// bound already given to a model that has not produced anything yet.
    #[must_use]
    pub fn for_tools(self, offers_tools: bool) -> Self {
        if offers_tools {
            Self {
                idle: self.idle.max(self.first_token),
                ..self
            }
        } else {
            self
        }
    }
}

/// How to reach one upstream. Its `Debug` output redacts the token and header values.
#[derive(Clone, Default)]
pub struct ClientConfig {
    /// Phase timeouts.
    pub timeouts: Timeouts,
    /// Sent as `Authorization: Bearer <token>` (an API key, or a reverse proxy's token).
    pub bearer_token: Option<String>,
    /// Extra headers sent with every request.
    pub extra_headers: Vec<(String, String)>,
    /// A PEM file with extra trusted CA certificates (a private CA).
    pub ca_file: Option<PathBuf>,
    /// An explicit proxy URL. Environment proxies (`HTTP_PROXY`...) are ignored: Switchyard
    /// talks only to the addresses its config names.
    pub proxy: Option<String>,
    /// How long an idle pooled connection is kept (default 90 s).
    pub pool_idle_timeout: Option<Duration>,
    /// Whether a client's non-streamed chat is asked of the upstream streamed (the
    /// default) or whole.
    pub upstream_streaming: UpstreamStreaming,
}

/// How a client's non-streamed chat request is sent to the upstream.
///
/// A streamed upstream answer keeps every phase timeout meaningful: a slow local model is
/// never cut off while it is producing tokens, because each token ends an idle gap. A
/// whole answer puts the entire generation inside the first-token phase, but costs the
/// upstream and the gateway one JSON document instead of one event per token.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UpstreamStreaming {
    /// Always stream from the upstream; a non-streamed answer is folded from the stream.
    #[default]
    Always,
    /// Stream from the upstream only when the client asked for a stream; otherwise ask
    /// for the whole answer (bounded by the first-token timeout).
    AsClient,
}

impl std::fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .extra_headers
            .iter()
            .map(|(name, _)| (name.as_str(), "<redacted>"))
            .collect();
        f.debug_struct("ClientConfig")
            .field("timeouts", &self.timeouts)
            .field(
                "bearer_token",
                &self.bearer_token.as_ref().map(|_| "<redacted>"),
            )
            .field("extra_headers", &headers)
            .field("ca_file", &self.ca_file)
            .field("proxy", &self.proxy)
            .field("pool_idle_timeout", &self.pool_idle_timeout)
            .field("upstream_streaming", &self.upstream_streaming)
            .finish()
    }
}

/// Why a client could not be built from its config.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientBuildError {
    /// A configured header name or value is not valid HTTP.
    #[error("invalid header `{name}`: {reason}")]
    InvalidHeader {
        /// The header's name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot use CA file {path}: {reason}")]
    CaFile {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
    /// The proxy URL is not valid.
    #[error("invalid proxy `{url}`: {reason}")]
    Proxy {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// reqwest refused the configuration.
    #[error("cannot build the HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl ClientBuildError {
    /// A stable code for this error.
    pub fn reason_code(&self) -> &'static str {
        match self {
            ClientBuildError::InvalidHeader { .. } => "invalid_header",
            ClientBuildError::CaFile { .. } => "invalid_ca_file",
            ClientBuildError::Proxy { .. } => "invalid_proxy",
            ClientBuildError::Build(_) => "client_build_failed",
        }
    }
}

/// Builds a pooled rustls client with TCP_NODELAY, the connect timeout, default headers and
/// trust roots (webpki roots, the system's roots, and the optional CA file).
pub fn build_client(config: &ClientConfig) -> Result<reqwest::Client, ClientBuildError> {
    let headers = default_headers(config)?;
    let mut builder = reqwest::Client::builder()
        .default_headers(headers)
        .connect_timeout(config.timeouts.connect)
        .tcp_nodelay(true)
        .pool_idle_timeout(config.pool_idle_timeout.unwrap_or(Duration::from_secs(90)))
        .pool_max_idle_per_host(64)
        .user_agent(concat!("switchyard/", env!("CARGO_PKG_VERSION")))
        .no_proxy();
    if let Some(url) = &config.proxy {
        let proxy = reqwest::Proxy::all(url).map_err(|e| ClientBuildError::Proxy {
            url: url.clone(),
            reason: e.to_string(),
        })?;
        builder = builder.proxy(proxy);
    }
    if let Some(path) = &config.ca_file {
        let ca_err = |reason: String| ClientBuildError::CaFile {
            path: path.clone(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let certs =
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| ca_err(e.to_string()))?;
        if certs.is_empty() {
            return Err(ca_err("no PEM certificate found".into()));
        }
        for cert in certs {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(ClientBuildError::Build)
}

/// The headers every request carries: the configured extra headers and the bearer token
/// (values marked sensitive, so they never show in debug output).
pub(crate) fn default_headers(config: &ClientConfig) -> Result<HeaderMap, ClientBuildError> {
    let mut headers = HeaderMap::new();
    for (name, value) in &config.extra_headers {
        let invalid = |reason: String| ClientBuildError::InvalidHeader {
            name: name.clone(),
            reason,
        };
        let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| invalid(e.to_string()))?;
        let mut v = HeaderValue::from_str(value).map_err(|e| invalid(e.to_string()))?;
        v.set_sensitive(true);
        headers.insert(n, v);
    }
    if let Some(token) = &config.bearer_token {
        let mut v = HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| {
            ClientBuildError::InvalidHeader {
                name: "authorization".into(),
                reason: e.to_string(),
            }
        })?;
        v.set_sensitive(true);
        headers.insert(AUTHORIZATION, v);
    }
    Ok(headers)
}

/// A normalised upstream base URL: no trailing `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    text: String,
}

impl BaseUrl {
    /// The URL text, without a trailing slash.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// `base + path` (path starts with `/`).
    pub fn join(&self, path: &str) -> String {
        let mut s = String::with_capacity(self.text.len() + path.len());
        s.push_str(&self.text);
        s.push_str(path);
        s
    }

    /// The host part, for diagnostics.
    pub fn host(&self) -> Option<String> {
        url::Url::parse(&self.text)
            .ok()
            .and_then(|u| u.host_str().map(str::to_owned))
    }

    /// Whether the path ends in `/v1`.
    pub fn ends_with_v1(&self) -> bool {
        self.text.ends_with("/v1")
    }

    /// The same URL without a trailing `/v1` (for the native Ollama API).
    pub fn without_v1(&self) -> BaseUrl {
        match self.text.strip_suffix("/v1") {
            Some(rest) => BaseUrl {
                text: rest.to_owned(),
            },
            None => self.clone(),
        }
    }
}

impl std::fmt::Display for BaseUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Why a base URL was refused.
#[derive(Debug, thiserror::Error)]
#[error("invalid base URL `{url}`: {reason}")]
pub struct BaseUrlError {
    /// The URL given, with any login details (`user:password@`) replaced by `***`.
    pub url: String,
    /// What is wrong with it.
    pub reason: String,
}

/// Parses and normalises a base URL: `http` or `https` only, no query or fragment, no login
/// details (`user:password@`: they would show in logs and error messages; credentials go in
/// the provider's `api_key` or `headers`), trailing slashes removed.
pub fn normalize_base_url(input: &str) -> Result<BaseUrl, BaseUrlError> {
    let err = |reason: &str| BaseUrlError {
        url: redact_userinfo(input),
        reason: reason.to_owned(),
    };
    let parsed = url::Url::parse(input.trim()).map_err(|e| err(&e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(err("the scheme must be http or https"));
    }
    if parsed.host_str().is_none() {
        return Err(err("there is no host"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(err(
            "login details (user:password@) are not accepted in a base URL, as they would show \
             in logs and error messages; remove them and give the credentials in the \
             provider's `api_key` (sent as a bearer token) or `headers` (e.g. `Authorization`)",
        ));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(err("a base URL takes no query or fragment"));
    }
    let text = parsed.as_str().trim_end_matches('/').to_owned();
    Ok(BaseUrl { text })
}

/// `input` with the login details of its authority (anything before an `@` between `://`
/// and the next `/`, `?` or `#`) replaced by `***`, for error messages.
fn redact_userinfo(input: &str) -> String {
    let input = input.trim();
    let authority_start = input.find("://").map_or(0, |i| i + 3);
    let rest = &input[authority_start..];
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}***{}", &input[..authority_start], &rest[at..]),
        None => input.to_owned(),
    }
}

#[cfg(test)]
mod timeouts_tests {
    use std::time::Duration;

    use super::Timeouts;

    #[test]
    fn offering_tools_raises_idle_to_first_token_and_never_lowers_it() {
        let local = Timeouts::default();
        assert_eq!(local.for_tools(true).idle, local.first_token);
        assert_eq!(local.for_tools(false), local);
        let long_idle = Timeouts {
            idle: Duration::from_secs(900),
            ..local
        };
        assert_eq!(long_idle.for_tools(true), long_idle);
    }
}
