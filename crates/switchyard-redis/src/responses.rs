//! [`RedisResponses`]: the Responses API's stored responses in Redis, so
//! `previous_response_id`, `GET` and `DELETE /v1/responses/{id}` work on every replica.
//!
//! One key per response, `{<prefix>}:resp:<id>`, written with `SET ... PX <ttl>` (Redis
//! expires it), holding the caller and the serialised record in one value
//! ([`StoredBytes::to_envelope`]). A value is at most the store's bytes per entry; the
//! number of responses and their total size are bounded by Redis's own memory policy, not
//! counted here. It uses the connection of the [`crate::RedisState`] it came from.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands as _, RedisError};
use switchyard_gateway::{ResponseBackend, ResponseStoreError, StoredBytes};
use switchyard_router::SharedStateError;

use crate::conn::{Conn, Connector};
use crate::scripts::PUT_UNLESS_TAKEN;

/// Stored responses in Redis (see the module documentation). Made by
/// [`crate::RedisState::responses`].
pub struct RedisResponses {
    connector: Arc<Connector>,
    /// `{<key_prefix>}`.
    prefix: String,
    max_entry_bytes: usize,
}

impl std::fmt::Debug for RedisResponses {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisResponses")
            .field("endpoint", &self.connector.endpoint().describe())
            .field("prefix", &self.prefix)
            .field("max_entry_bytes", &self.max_entry_bytes)
            .finish()
    }
}

/// A time to live in whole milliseconds, at least 1 (`PX 0` is refused).
fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX).max(1)
}

/// The shared-state error as the response store's.
fn store_error(e: SharedStateError) -> ResponseStoreError {
    match e {
        SharedStateError::Unreachable(message) => ResponseStoreError::Unreachable {
            store: "redis",
            message,
        },
        other => ResponseStoreError::Failed {
            store: "redis",
            message: other.to_string(),
        },
    }
}

impl RedisResponses {
    pub(crate) fn new(connector: Arc<Connector>, prefix: String, max_entry_bytes: usize) -> Self {
        Self {
            connector,
            prefix,
            max_entry_bytes,
        }
    }

    /// The value kept for a response ([`StoredBytes::to_envelope`]), refused when larger
    /// than the bytes per entry.
    fn envelope(
        &self,
        caller: Option<&str>,
        bytes: Vec<u8>,
    ) -> Result<Vec<u8>, ResponseStoreError> {
        let value = StoredBytes {
            caller: caller.map(str::to_owned),
            bytes,
        }
        .to_envelope();
        if value.len() > self.max_entry_bytes {
            return Err(ResponseStoreError::TooLarge {
                size: value.len(),
                max: self.max_entry_bytes,
            });
        }
        Ok(value)
    }

    fn key(&self, id: &str) -> String {
        format!("{}:resp:{id}", self.prefix)
    }

    async fn conn(&self) -> Result<Conn, ResponseStoreError> {
        self.connector.get().await.map_err(store_error)
    }

    async fn fail(&self, e: &RedisError) -> ResponseStoreError {
        store_error(self.connector.failure(e).await)
    }
}

#[async_trait]
impl ResponseBackend for RedisResponses {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn is_shared(&self) -> bool {
        true
    }

    async fn put(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), ResponseStoreError> {
        let value = self.envelope(caller, bytes)?;
        let ttl_ms = ttl_ms(ttl);
        let mut conn = self.conn().await?;
        let result = redis::cmd("SET")
            .arg(self.key(id))
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .query_async::<()>(&mut conn)
            .await;
        match result {
            Ok(()) => Ok(()),
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn put_unless_taken(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, ResponseStoreError> {
        let caller_json = StoredBytes::envelope_caller(caller);
        let value = self.envelope(caller, bytes)?;
        let mut invocation = PUT_UNLESS_TAKEN.prepare_invoke();
        invocation
            .key(self.key(id))
            .arg(value)
            .arg(caller_json)
            .arg(ttl_ms(ttl));
        let mut conn = self.conn().await?;
        match invocation.invoke_async::<i64>(&mut conn).await {
            Ok(kept) => Ok(kept == 1),
            Err(e) => Err(self.fail(&e).await),
        }
    }

    async fn get(&self, id: &str) -> Result<Option<StoredBytes>, ResponseStoreError> {
        let mut conn = self.conn().await?;
        let value: Option<Vec<u8>> = match conn.get(self.key(id)).await {
            Ok(v) => v,
            Err(e) => return Err(self.fail(&e).await),
        };
        let Some(value) = value else {
            return Ok(None);
        };
        let stored = StoredBytes::from_envelope(&value);
        if stored.is_none() {
            tracing::warn!(
                id,
                "response store (redis): a value that is not a stored response; ignored"
            );
        }
        Ok(stored)
    }

    async fn delete(&self, id: &str) -> Result<bool, ResponseStoreError> {
        let mut conn = self.conn().await?;
        match conn.del::<_, i64>(self.key(id)).await {
            Ok(n) => Ok(n > 0),
            Err(e) => Err(self.fail(&e).await),
        }
    }
}
