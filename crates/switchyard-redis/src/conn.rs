//! Connecting (lazily, again after a failure) and one connection type over the three
//! endpoint kinds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, Cmd, ConnectionAddr, ErrorKind, Pipeline, RedisError, RedisFuture, TlsCertificates,
    TlsMode, Value,
};
use switchyard_router::SharedStateError;

use crate::endpoint::Endpoint;

/// How long connecting and each answer may take.
const TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed connect, how long operations fail at once before the next try.
const RETRY_AFTER: Duration = Duration::from_millis(500);

/// A connection to a single server (also a Sentinel's master) or a Cluster; cheap to clone.
#[derive(Clone)]
pub(crate) enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(c) => c.req_packed_command(cmd),
            Self::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(c) => c.req_packed_commands(cmd, offset, count),
            Self::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(c) => c.get_db(),
            Self::Cluster(c) => c.get_db(),
        }
    }
}

/// A Redis error as the router's shared-state error, naming what to check when the cause
/// is the credentials, a permission or the server's certificate.
fn classify(e: &RedisError) -> SharedStateError {
    let code = e.code();
    if e.kind() == ErrorKind::AuthenticationFailed || matches!(code, Some("WRONGPASS" | "NOAUTH")) {
        return SharedStateError::Answer(format!(
            "authentication failed (check the user and password of shared_state): {e}"
        ));
    }
    if code == Some("NOPERM") {
        return SharedStateError::Answer(format!(
            "the ACL user lacks a permission (it needs the scripting commands and the keys \
             under the key prefix): {e}"
        ));
    }
    let unreachable =
        e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped();
    if unreachable && is_certificate_error(e) {
        return SharedStateError::Unreachable(format!(
            "TLS handshake refused the server's certificate (for a private CA set \
             shared_state.ca_file): {e}"
        ));
    }
    if unreachable {
        SharedStateError::Unreachable(e.to_string())
    } else {
        SharedStateError::Answer(e.to_string())
    }
}

/// Whether the server refused a charge for what one of its keys holds, as the `CHARGE`
/// script says so (`WRONGTYPE ...`, or `ERR spend counter ...` / `ERR charge amount ...`):
/// the server answered and wrote nothing, so the store is up and only this charge waits.
pub(crate) fn is_charge_refusal(e: &RedisError) -> bool {
    match e.code() {
        Some("WRONGTYPE") => true,
        Some("ERR") => e
            .detail()
            .is_some_and(|d| d.starts_with("spend counter ") || d.starts_with("charge amount ")),
        _ => false,
    }
}

/// Whether a connection error comes from checking the server's certificate (rustls says
/// `invalid peer certificate`).
fn is_certificate_error(e: &RedisError) -> bool {
    let text = e.to_string().to_ascii_lowercase();
    text.contains("certificate") || text.contains("unknownissuer")
}

/// Whether the error shows that a Sentinel's master is no longer the master (a failover
/// demoted it), so the master must be looked up again.
fn is_demoted(e: &RedisError) -> bool {
    e.kind() == ErrorKind::ReadOnly
}

/// Holds the connection, made on first use and again after a Sentinel failover.
pub(crate) struct Connector {
    endpoint: Endpoint,
    /// The private CA (PEM) trusted for TLS servers, instead of the web roots.
    ca: Option<Vec<u8>>,
    conn: tokio::sync::Mutex<Option<Conn>>,
    failed_at: Mutex<Option<Instant>>,
}

impl Connector {
    pub(crate) fn new(endpoint: Endpoint, ca: Option<Vec<u8>>) -> Self {
        Self {
            endpoint,
            ca,
            conn: tokio::sync::Mutex::new(None),
            failed_at: Mutex::new(None),
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// The connection, connecting first when there is none (not more often than every
    /// `RETRY_AFTER`).
    pub(crate) async fn get(&self) -> Result<Conn, SharedStateError> {
        let mut held = self.conn.lock().await;
        if let Some(c) = held.as_ref() {
            return Ok(c.clone());
        }
        let recent = self
            .failed_at
            .lock()
            .ok()
            .and_then(|f| *f)
            .is_some_and(|at| at.elapsed() < RETRY_AFTER);
        if recent {
            return Err(SharedStateError::Unreachable(format!(
                "{} refused the last connection; retrying shortly",
                self.endpoint.describe()
            )));
        }
        match tokio::time::timeout(TIMEOUT * 2, connect(&self.endpoint, self.certs())).await {
            Ok(Ok(c)) => {
                *held = Some(c.clone());
                Ok(c)
            }
            Ok(Err(e)) => Err(self.failed(classify(&e))),
            Err(_) => Err(self.failed(SharedStateError::Unreachable(format!(
                "connecting to {} timed out",
                self.endpoint.describe()
            )))),
        }
    }

    fn certs(&self) -> Option<TlsCertificates> {
        self.ca.as_ref().map(|pem| TlsCertificates {
            client_tls: None,
            root_cert: Some(pem.clone()),
        })
    }

    fn failed(&self, e: SharedStateError) -> SharedStateError {
        if let Ok(mut f) = self.failed_at.lock() {
            *f = Some(Instant::now());
        }
        e
    }

    /// `e` as the router's error; after an unreachable error or a `READONLY` answer (a
    /// failover demoted the master), a Sentinel's master is looked up again on the next
    /// use (single servers and Clusters reconnect by themselves).
    pub(crate) async fn failure(&self, e: &RedisError) -> SharedStateError {
        let demoted = is_demoted(e);
        let e = classify(e);
        if demoted || matches!(e, SharedStateError::Unreachable(_)) {
            self.after_failure().await;
        }
        e
    }

    async fn after_failure(&self) {
        if matches!(self.endpoint, Endpoint::Sentinel { .. }) {
            *self.conn.lock().await = None;
        }
    }
}

fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(TIMEOUT)
        .set_response_timeout(TIMEOUT)
        .set_number_of_retries(1)
}

async fn connect(endpoint: &Endpoint, certs: Option<TlsCertificates>) -> Result<Conn, RedisError> {
    match endpoint {
        Endpoint::Single(info) => {
            let client = match certs {
                Some(certs) => Client::build_with_tls(info.clone(), certs)?,
                None => Client::open(info.clone())?,
            };
            Ok(Conn::Single(
                client
                    .get_connection_manager_with_config(manager_config())
                    .await?,
            ))
        }
        Endpoint::Cluster(nodes) => {
            let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.clone())
                .connection_timeout(TIMEOUT)
                .response_timeout(TIMEOUT);
            if let Some(certs) = certs {
                builder = builder.certs(certs);
            }
            Ok(Conn::Cluster(
                builder.build()?.get_async_connection().await?,
            ))
        }
        Endpoint::Sentinel { .. } => connect_sentinel(endpoint, certs).await,
    }
}

/// The master of a Sentinel service, asked of the Sentinels (the same CA for both when
/// they speak TLS).
async fn connect_sentinel(
    endpoint: &Endpoint,
    certs: Option<TlsCertificates>,
) -> Result<Conn, RedisError> {
    let Endpoint::Sentinel {
        nodes,
        service,
        redis,
        tls,
    } = endpoint
    else {
        return Err(RedisError::from((
            ErrorKind::InvalidClientConfig,
            "not a Sentinel endpoint",
        )));
    };
    let mut builder = SentinelClientBuilder::new(
        nodes.iter().map(|n| n.addr.clone()),
        service.clone(),
        SentinelServerType::Master,
    )?
    .set_client_to_redis_db(redis.db);
    if let Some(user) = &redis.username {
        builder = builder.set_client_to_redis_username(user.clone());
    }
    if let Some(password) = &redis.password {
        builder = builder.set_client_to_redis_password(password.clone());
    }
    if *tls {
        builder = builder.set_client_to_redis_tls_mode(TlsMode::Secure);
        if let Some(certs) = &certs {
            builder = builder.set_client_to_redis_certificates(certs.clone());
        }
    }
    let sentinels_tls = nodes
        .iter()
        .any(|n| matches!(n.addr, ConnectionAddr::TcpTls { .. }));
    if let (true, Some(certs)) = (sentinels_tls, certs) {
        builder = builder.set_client_to_sentinel_certificates(certs);
    }
    let client = builder.build()?.async_get_client().await?;
    Ok(Conn::Single(
        client
            .get_connection_manager_with_config(manager_config())
            .await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_charge_refused_for_a_key_is_told_apart_from_other_errors() {
        let wrongtype = redis::make_extension_error(
            "WRONGTYPE".to_owned(),
            Some("spend counter {s}:spend:c:a:2025-03-07 holds a hash, not a string".to_owned()),
        );
        assert!(is_charge_refusal(&wrongtype));
        let counter = RedisError::from((
            ErrorKind::ResponseError,
            "An error was signalled by the server",
            "spend counter {s}:spend:global:2025-03 holds `x`, not an integer".to_owned(),
        ));
        assert!(is_charge_refusal(&counter));
        let other = RedisError::from((
            ErrorKind::ResponseError,
            "An error was signalled by the server",
            "Error running script".to_owned(),
        ));
        assert!(!is_charge_refusal(&other));
        let oom = redis::make_extension_error("OOM".to_owned(), Some("no memory".to_owned()));
        assert!(!is_charge_refusal(&oom));
        let io = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(!is_charge_refusal(&io));
    }

    #[test]
    fn errors_name_what_to_check() {
        let auth = RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        ));
        let e = classify(&auth);
        assert!(matches!(e, SharedStateError::Answer(_)), "{e}");
        assert!(e.to_string().contains("authentication failed"), "{e}");

        let tls = RedisError::from(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "invalid peer certificate: UnknownIssuer",
        ));
        let e = classify(&tls);
        assert!(matches!(e, SharedStateError::Unreachable(_)), "{e}");
        assert!(e.to_string().contains("shared_state.ca_file"), "{e}");

        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        let e = classify(&refused);
        assert!(matches!(e, SharedStateError::Unreachable(_)), "{e}");
        assert!(!e.to_string().contains("ca_file"), "{e}");

        let readonly = RedisError::from((
            ErrorKind::ReadOnly,
            "You can't write against a read only replica.",
        ));
        assert!(is_demoted(&readonly));
        assert!(!is_demoted(&auth));
    }
}
