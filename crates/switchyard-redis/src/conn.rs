//! Connecting (lazily, again after a failure) and one connection type over the three
//! endpoint kinds.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelNodeConnectionInfo, SentinelServerType};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};
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

/// A Redis error as the router's shared-state error.
pub(crate) fn classify(e: &RedisError) -> SharedStateError {
    if e.is_io_error() || e.is_connection_refusal() || e.is_timeout() || e.is_connection_dropped() {
        SharedStateError::Unreachable(e.to_string())
    } else {
        SharedStateError::Answer(e.to_string())
    }
}

/// Holds the connection, made on first use and again after a Sentinel failover.
pub(crate) struct Connector {
    endpoint: Endpoint,
    conn: tokio::sync::Mutex<Option<Conn>>,
    failed_at: Mutex<Option<Instant>>,
}

impl Connector {
    pub(crate) fn new(endpoint: Endpoint) -> Self {
        Self {
            endpoint,
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
        match tokio::time::timeout(TIMEOUT * 2, connect(&self.endpoint)).await {
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

    fn failed(&self, e: SharedStateError) -> SharedStateError {
        if let Ok(mut f) = self.failed_at.lock() {
            *f = Some(Instant::now());
        }
        e
    }

    /// After an unreachable error: a Sentinel's master is looked up again on the next use
    /// (single servers and Clusters reconnect by themselves).
    pub(crate) async fn after_failure(&self) {
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

async fn connect(endpoint: &Endpoint) -> Result<Conn, RedisError> {
    match endpoint {
        Endpoint::Single(info) => {
            let client = redis::Client::open(info.clone())?;
            Ok(Conn::Single(
                client
                    .get_connection_manager_with_config(manager_config())
                    .await?,
            ))
        }
        Endpoint::Cluster(nodes) => {
            let client = redis::cluster::ClusterClient::new(nodes.clone())?;
            Ok(Conn::Cluster(client.get_async_connection().await?))
        }
        Endpoint::Sentinel {
            nodes,
            service,
            redis,
            tls,
        } => {
            let info = SentinelNodeConnectionInfo {
                tls_mode: tls.then_some(redis::TlsMode::Secure),
                redis_connection_info: Some(redis.clone()),
            };
            let mut sentinel = SentinelClient::build(
                nodes.clone(),
                service.clone(),
                Some(info),
                SentinelServerType::Master,
            )?;
            let client = sentinel.async_get_client().await?;
            Ok(Conn::Single(
                client
                    .get_connection_manager_with_config(manager_config())
                    .await?,
            ))
        }
    }
}
