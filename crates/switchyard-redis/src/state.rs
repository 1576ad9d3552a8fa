//! [`RedisState`]: the router's shared state in Redis.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::RedisError;
use switchyard_router::{
    RateDecision, SharedState, SharedStateError, Snapshot, SpendCharge, SpendCounter,
};

use crate::conn::{Conn, Connector};
use crate::endpoint::{Endpoint, RedisConfigError};
use crate::scripts::{CHARGE, COOL, RATE, TOKENS};

mod fleet;

/// How long a charge id is remembered (a reconciliation after a longer outage could count a
/// charge twice that had reached Redis just before it).
const CHARGE_ID_TTL: Duration = Duration::from_secs(3 * 86_400);

/// Where and under which prefix the shared state is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// The URL (see the crate documentation for the forms).
    pub url: String,
    /// Prefix of every key (`switchyard` by default); keys are `{<prefix>}:...`.
    pub key_prefix: String,
    /// A password given apart from the URL (it wins over one in the URL).
    pub password: Option<String>,
    /// A PEM file of CA certificates trusted (instead of the built-in web roots) for the
    /// server certificates of a `rediss` URL: a private CA. Read once, by
    /// [`RedisState::new`].
    pub ca_file: Option<PathBuf>,
}

impl RedisConfig {
    /// `url` with the default prefix and no separate password.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "switchyard".to_owned(),
            password: None,
            ca_file: None,
        }
    }
}

/// The shared state of a fleet in Redis (or Valkey, or a Redis-protocol Cluster).
/// Connects on first use and again after failures; never blocks startup.
pub struct RedisState {
    connector: Arc<Connector>,
    prefix: String,
}

impl std::fmt::Debug for RedisState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisState")
            .field("endpoint", &self.connector.endpoint().describe())
            .field("prefix", &self.prefix)
            .finish()
    }
}

impl RedisState {
    /// Checks the URL and reads the CA file; does not connect yet.
    pub fn new(config: RedisConfig) -> Result<Self, RedisConfigError> {
        let endpoint = Endpoint::parse(&config.url, config.password.as_deref())?;
        let ca = match &config.ca_file {
            Some(path) if !endpoint.is_tls() => {
                return Err(RedisConfigError::CaFile(format!(
                    "`{}` is given but the URL is not a TLS one (use rediss://)",
                    path.display()
                )));
            }
            Some(path) => Some(read_ca(path)?),
            None => None,
        };
        if config.key_prefix.is_empty() || config.key_prefix.contains(['{', '}']) {
            return Err(RedisConfigError::Invalid(
                "key_prefix must be non-empty and without `{` or `}`".to_owned(),
            ));
        }
        Ok(Self {
            connector: Arc::new(Connector::new(endpoint, ca)),
            prefix: format!("{{{}}}", config.key_prefix),
        })
    }

    /// The endpoint, without credentials, for logs.
    pub fn describe(&self) -> String {
        self.connector.endpoint().describe()
    }

    /// The Responses API's store on the same connection and key prefix
    /// (`{<prefix>}:resp:<id>`), values at most `max_entry_bytes`.
    pub fn responses(&self, max_entry_bytes: usize) -> crate::RedisResponses {
        crate::RedisResponses::new(
            Arc::clone(&self.connector),
            self.prefix.clone(),
            max_entry_bytes,
        )
    }

    fn spend_key(&self, c: &SpendCounter) -> String {
        format!("{}:spend:{}:{}", self.prefix, c.scope, c.period)
    }

    fn cool_key(&self, target: &str) -> String {
        format!("{}:cool:{target}", self.prefix)
    }

    async fn conn(&self) -> Result<Conn, SharedStateError> {
        self.connector.get().await
    }

    async fn fail(&self, e: &RedisError) -> SharedStateError {
        self.connector.failure(e).await
    }
}

/// The PEM text of a CA file, checked to hold at least one certificate.
fn read_ca(path: &std::path::Path) -> Result<Vec<u8>, RedisConfigError> {
    let pem = std::fs::read(path)
        .map_err(|e| RedisConfigError::CaFile(format!("cannot read `{}`: {e}", path.display())))?;
    if !String::from_utf8_lossy(&pem).contains("-----BEGIN CERTIFICATE-----") {
        return Err(RedisConfigError::CaFile(format!(
            "`{}` holds no PEM certificate",
            path.display()
        )));
    }
    Ok(pem)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1)
}

#[async_trait]
impl SharedState for RedisState {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn snapshot(
        &self,
        counters: &[SpendCounter],
        targets: &[String],
    ) -> Result<Snapshot, SharedStateError> {
        let mut conn = self.conn().await?;
        let mut pipe = redis::pipe();
        for c in counters {
            pipe.get(self.spend_key(c));
        }
        for t in targets {
            pipe.pttl(self.cool_key(t));
        }
        if counters.is_empty() && targets.is_empty() {
            pipe.cmd("PING");
        }
        let values: Vec<redis::Value> = match pipe.query_async(&mut conn).await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(&e).await),
        };
        let int = |v: &redis::Value| -> Result<Option<i64>, SharedStateError> {
            redis::from_redis_value::<Option<i64>>(v)
                .map_err(|e| SharedStateError::Answer(e.to_string()))
        };
        let mut spent = Vec::with_capacity(counters.len());
        let mut cooling = Vec::with_capacity(targets.len());
        if counters.is_empty() && targets.is_empty() {
            // Only the PING (reachability) was asked.
            return Ok(Snapshot::default());
        }
        for (i, v) in values.iter().enumerate() {
            let n = int(v)?;
            if i < counters.len() {
                spent.push(n.and_then(|n| u64::try_from(n).ok()).unwrap_or(0));
            } else if i < counters.len() + targets.len() {
                // PTTL: -2 no key, -1 no expiry (not ours), else ms left.
                let left = n
                    .and_then(|ms| u64::try_from(ms).ok())
                    .filter(|&ms| ms > 0)
                    .map(Duration::from_millis);
                cooling.push(left);
            }
        }
        Ok(Snapshot { spent, cooling })
    }

    async fn charge(&self, charge: &SpendCharge) -> Result<bool, SharedStateError> {
        let mut conn = self.conn().await?;
        let counters = charge.counters();
        let mut invocation = CHARGE.prepare_invoke();
        invocation.key(format!("{}:charge:{}", self.prefix, charge.charge_id));
        for c in &counters {
            invocation.key(self.spend_key(c));
        }
        invocation.arg(charge.micro_usd).arg(millis(CHARGE_ID_TTL));
        for c in &counters {
            invocation.arg(c.retention().as_secs());
        }
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(applied) => Ok(applied == 1),
            // The script checked a key and wrote nothing: only this charge is refused.
            Err(e) if crate::conn::is_charge_refusal(&e) => {
                Err(SharedStateError::Refused(e.to_string()))
            }
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn rate(
        &self,
        key: &str,
        rpm: Option<u32>,
        tpm: Option<u32>,
    ) -> Result<RateDecision, SharedStateError> {
        let mut conn = self.conn().await?;
        let result = RATE
            .key(format!("{}:rate:{key}", self.prefix))
            .key(format!("{}:tpm:{key}", self.prefix))
            .arg(rpm.map_or(0, |n| n.max(1)))
            .arg(tpm.map_or(0, |n| n.max(1)))
            .invoke_async::<i64>(&mut conn)
            .await;
        match result {
            Ok(0) => Ok(RateDecision::Allowed),
            Ok(wait) => Ok(RateDecision::Wait(Duration::from_millis(
                u64::try_from(wait).unwrap_or(1),
            ))),
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn charge_tokens(
        &self,
        key: &str,
        tokens: u64,
        tpm: u32,
    ) -> Result<(), SharedStateError> {
        if tokens == 0 {
            return Ok(());
        }
        let mut conn = self.conn().await?;
        let result = TOKENS
            .key(format!("{}:tpm:{key}", self.prefix))
            .arg(tokens)
            .arg(tpm.max(1))
            .invoke_async::<i64>(&mut conn)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn cool(&self, target: &str, duration: Duration) -> Result<(), SharedStateError> {
        let mut conn = self.conn().await?;
        let result = COOL
            .key(self.cool_key(target))
            .arg(millis(duration))
            .invoke_async::<i64>(&mut conn)
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn ping(&self) -> Result<(), SharedStateError> {
        let mut conn = self.conn().await?;
        match redis::cmd("PING").query_async::<String>(&mut conn).await {
            Ok(_) => Ok(()),
            Err(e) => Err(self.fail(&e).await),
        }
    }
}
