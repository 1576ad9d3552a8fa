//! The response store behind `store: true`, `previous_response_id`, `GET` / `DELETE
//! /v1/responses/{id}` and `/input_items`: bounded (entries and bytes; the oldest go first)
//! and with a time to live, in memory, in a redb database or in any [`ResponseBackend`]
//! (Redis, shared by a fleet). Responses are visible only to the API key that made them.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{Message, PrivacyClass};

use super::backend::{MemoryBackend, ResponseBackend, ResponseStoreError};
use super::redb_store::RedbStore;
use crate::telemetry::RESPONSE_STORE_ERRORS_TOTAL;

/// How long one backend operation may take before it counts as unreachable.
const OP_TIMEOUT: Duration = Duration::from_secs(2);

/// Bounds of the [`ResponseStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseStoreConfig {
    /// How long a response is kept.
    pub ttl: Duration,
    /// Responses kept at most.
    pub max_entries: usize,
    /// Bytes (of the stored JSON) kept at most.
    pub max_bytes: usize,
    /// Bytes of one stored response at most (a larger one is not kept, logged); what
    /// bounds a value in a shared store, which evicts by its own memory policy.
    pub max_entry_bytes: usize,
}

impl Default for ResponseStoreConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            max_entries: 10_000,
            max_bytes: 256 * 1024 * 1024,
            max_entry_bytes: 16 * 1024 * 1024,
        }
    }
}

/// One stored response: the response object, its input, and the conversation up to and
/// including its answer (what `previous_response_id` continues).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct StoredResponse {
    pub(crate) id: String,
    /// The API key that made it (`None` without keys).
    pub(crate) caller: Option<String>,
    /// The privacy class of the conversation: a continuation is never less strict.
    pub(crate) privacy: PrivacyClass,
    /// The response object as the client got it.
    pub(crate) response: Value,
    /// This request's input items, each with an `id`.
    pub(crate) input_items: Vec<Value>,
    /// Every turn so far (without `instructions`), this answer included.
    pub(crate) history: Vec<Message>,
    /// The target (`provider/model`) that served it natively (Responses pass-through), which
    /// alone can continue it natively; `None` when it was translated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) native_target: Option<String>,
}

/// Stored responses, bounded by [`ResponseStoreConfig`]: in memory, in a redb database
/// ([`ResponseStore::with_redb`]) so they survive a restart, or in another
/// [`ResponseBackend`] ([`ResponseStore::with_backend`]).
pub struct ResponseStore {
    config: ResponseStoreConfig,
    backend: Arc<dyn ResponseBackend>,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("config", &self.config)
            .field("backend", &self.backend.kind())
            .finish()
    }
}

impl Default for ResponseStore {
    fn default() -> Self {
        Self::new(ResponseStoreConfig::default())
    }
}

/// A store write that runs after an answer: awaited before the client gets the answer's
/// last bytes, so a continuation sent right after finds the response.
pub(crate) type StoreWrite = Pin<Box<dyn Future<Output = ()> + Send>>;

impl ResponseStore {
    /// An empty in-memory store with these bounds.
    pub fn new(config: ResponseStoreConfig) -> Self {
        Self::with_backend(
            config,
            Arc::new(MemoryBackend::new(config.max_entries, config.max_bytes)),
        )
    }

    /// A store in the tables `responses`, `responses_order` and `responses_meta` of `db`
    /// (created on first use; the database may hold other tables, such as the spend
    /// ledger's).
    pub fn with_redb(
        config: ResponseStoreConfig,
        db: Arc<redb::Database>,
    ) -> Result<Self, Box<redb::Error>> {
        let store = RedbStore::open(db, config.max_entries, config.max_bytes, config.ttl)
            .map_err(Box::new)?;
        Ok(Self::with_backend(config, Arc::new(store)))
    }

    /// A store on `backend` (for instance `switchyard_redis::RedisResponses`, shared by a
    /// fleet); `config` gives the time to live and the bound of one entry, the backend
    /// keeps its own other bounds.
    pub fn with_backend(config: ResponseStoreConfig, backend: Arc<dyn ResponseBackend>) -> Self {
        Self { config, backend }
    }

    /// The backend's kind (`memory`, `redb`, `redis`).
    pub fn kind(&self) -> &'static str {
        self.backend.kind()
    }

    /// Whether the backend is shared by several gateways.
    pub(crate) fn is_shared(&self) -> bool {
        self.backend.is_shared()
    }

    async fn timed<T>(
        &self,
        fut: impl Future<Output = Result<T, ResponseStoreError>>,
    ) -> Result<T, ResponseStoreError> {
        tokio::time::timeout(OP_TIMEOUT, fut)
            .await
            .unwrap_or_else(|_| {
                Err(ResponseStoreError::Unreachable {
                    store: self.backend.kind(),
                    message: format!("no answer within {} ms", OP_TIMEOUT.as_millis()),
                })
            })
    }

    /// Keeps `record` (replacing one with its id). A record larger than
    /// `max_entry_bytes` (or the whole byte bound) is refused with
    /// [`ResponseStoreError::TooLarge`].
    pub(crate) async fn put(&self, record: &StoredResponse) -> Result<(), ResponseStoreError> {
        let bytes = self.encode(record)?;
        let caller = record.caller.as_deref();
        self.timed(self.backend.put(&record.id, caller, bytes, self.config.ttl))
            .await
    }

    /// `record` serialised, refused when it is larger than `max_entry_bytes` (or the whole
    /// byte bound).
    fn encode(&self, record: &StoredResponse) -> Result<Vec<u8>, ResponseStoreError> {
        let bytes = serde_json::to_vec(record).map_err(|e| ResponseStoreError::Failed {
            store: self.backend.kind(),
            message: format!("could not serialise the response: {e}"),
        })?;
        let max = self.config.max_entry_bytes.min(self.config.max_bytes);
        if bytes.len() > max {
            return Err(ResponseStoreError::TooLarge {
                size: bytes.len(),
                max,
            });
        }
        Ok(bytes)
    }

    /// Keeps `record`, a passed-through response stored under its upstream's id, unless
    /// another caller's response is stored under that id ([`ResponseStoreError::IdInUse`]):
    /// upstream ids need not be unique (Ollama draws one of a million), and a response is
    /// never replaced by another caller's. The caller's own earlier response under the id
    /// is replaced, as the upstream, which answers a continuation of the id, replaced it.
    /// The check and the write are one operation of the backend
    /// ([`ResponseBackend::put_unless_taken`]): of two callers given the same id at the same
    /// instant, one keeps its response and the other gets `IdInUse`.
    pub(crate) async fn put_upstream_id(
        &self,
        record: &StoredResponse,
    ) -> Result<(), ResponseStoreError> {
        let bytes = self.encode(record)?;
        let caller = record.caller.as_deref();
        let kept = self
            .timed(
                self.backend
                    .put_unless_taken(&record.id, caller, bytes, self.config.ttl),
            )
            .await?;
        if kept {
            Ok(())
        } else {
            Err(ResponseStoreError::IdInUse {
                id: record.id.clone(),
            })
        }
    }

    /// The write of `record` after an answer: a failure is logged and counted
    /// (`switchyard_response_store_errors_total{op="put"}`); the client keeps its answer.
    /// A passed-through answer (`upstream_id`) is written by [`Self::put_upstream_id`].
    pub(crate) fn write_after_answer(
        self: &Arc<Self>,
        record: StoredResponse,
        upstream_id: bool,
    ) -> StoreWrite {
        let store = Arc::clone(self);
        Box::pin(async move {
            let written = if upstream_id {
                store.put_upstream_id(&record).await
            } else {
                store.put(&record).await
            };
            if let Err(e) = written {
                count_error("put", &e);
                tracing::warn!(
                    id = record.id,
                    store = store.kind(),
                    reason = e.reason_code(),
                    error = %e,
                    "response not kept in the response store; the client got its answer"
                );
            }
        })
    }

    /// The response `id` if `caller` made it and it has not expired.
    pub(crate) async fn get(
        &self,
        id: &str,
        caller: Option<&str>,
    ) -> Result<Option<StoredResponse>, ResponseStoreError> {
        let found = self.timed(self.backend.get(id)).await;
        let Some(stored) = found.inspect_err(|e| count_error("get", e))? else {
            return Ok(None);
        };
        if stored.caller.as_deref() != caller {
            return Ok(None);
        }
        match serde_json::from_slice::<StoredResponse>(&stored.bytes) {
            Ok(record) => Ok((record.caller.as_deref() == caller).then_some(record)),
            // Present but unreadable: an error of the store, not a missing response.
            Err(e) => {
                let e = ResponseStoreError::Failed {
                    store: self.kind(),
                    message: format!("the stored response `{id}` cannot be read: {e}"),
                };
                count_error("get", &e);
                Err(e)
            }
        }
    }

    /// Deletes the response `id` if `caller` made it; whether it was there.
    pub(crate) async fn delete(
        &self,
        id: &str,
        caller: Option<&str>,
    ) -> Result<bool, ResponseStoreError> {
        if self.get(id, caller).await?.is_none() {
            return Ok(false);
        }
        self.timed(self.backend.delete(id))
            .await
            .inspect_err(|e| count_error("delete", e))
    }
}

fn count_error(op: &'static str, e: &ResponseStoreError) {
    ::metrics::counter!(RESPONSE_STORE_ERRORS_TOTAL, "op" => op, "reason" => e.reason_code())
        .increment(1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(id: &str, caller: Option<&str>, text: &str) -> StoredResponse {
        StoredResponse {
            id: id.into(),
            caller: caller.map(str::to_owned),
            privacy: PrivacyClass::Any,
            response: serde_json::json!({"id": id, "text": text}),
            input_items: Vec::new(),
            history: vec![Message::user(text)],
            native_target: None,
        }
    }

    /// The same store in memory and in a fresh redb file.
    fn stores(config: ResponseStoreConfig, tag: &str) -> Vec<ResponseStore> {
        let dir = std::env::temp_dir().join(format!("sy-responses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{tag}.redb"));
        let _ = std::fs::remove_file(&path);
        let db = Arc::new(redb::Database::create(&path).unwrap());
        vec![
            ResponseStore::new(config),
            ResponseStore::with_redb(config, db).unwrap(),
        ]
    }

    #[tokio::test]
    async fn keeps_at_most_max_entries_oldest_first_out() {
        let config = ResponseStoreConfig {
            max_entries: 2,
            ..ResponseStoreConfig::default()
        };
        for store in stores(config, "entries") {
            for id in ["c", "b", "a"] {
                store.put(&record(id, None, "x")).await.unwrap();
            }
            assert!(store.get("c", None).await.unwrap().is_none(), "{store:?}");
            assert!(store.get("b", None).await.unwrap().is_some());
            assert!(store.get("a", None).await.unwrap().is_some());
            // Storing an id again replaces it (and does not count twice).
            store.put(&record("b", None, "y")).await.unwrap();
            assert!(store.get("a", None).await.unwrap().is_some());
            assert_eq!(
                store.get("b", None).await.unwrap().unwrap().history[0].text_content(),
                "y"
            );
        }
    }

    #[tokio::test]
    async fn byte_bound_evicts_and_refuses_oversized_records() {
        let one = serde_json::to_vec(&record("a", None, "x")).unwrap().len();
        let config = ResponseStoreConfig {
            max_bytes: one * 2 + 1,
            ..ResponseStoreConfig::default()
        };
        for store in stores(config, "bytes") {
            for id in ["a", "b", "c"] {
                store.put(&record(id, None, "x")).await.unwrap();
            }
            assert!(store.get("a", None).await.unwrap().is_none(), "{store:?}");
            assert!(store.get("c", None).await.unwrap().is_some());
            let err = store.put(&record("big", None, &"y".repeat(one * 3))).await;
            assert_eq!(err.unwrap_err().reason_code(), "response_too_large");
            assert!(store.get("big", None).await.unwrap().is_none());
            assert!(
                store.get("c", None).await.unwrap().is_some(),
                "a refused record evicts nothing"
            );
        }
    }

    #[tokio::test]
    async fn expired_and_foreign_responses_are_not_found() {
        let expiring = ResponseStoreConfig {
            ttl: Duration::ZERO,
            ..ResponseStoreConfig::default()
        };
        for store in stores(expiring, "ttl") {
            store.put(&record("a", None, "x")).await.unwrap();
            assert!(store.get("a", None).await.unwrap().is_none(), "{store:?}");
        }
        for store in stores(ResponseStoreConfig::default(), "callers") {
            store.put(&record("a", Some("alice"), "x")).await.unwrap();
            assert!(
                store.get("a", Some("bob")).await.unwrap().is_none(),
                "{store:?}"
            );
            assert!(store.get("a", None).await.unwrap().is_none());
            assert!(!store.delete("a", Some("bob")).await.unwrap());
            assert!(store.delete("a", Some("alice")).await.unwrap());
            assert!(store.get("a", Some("alice")).await.unwrap().is_none());
        }
    }

    /// The text of the response `up` as alice sees it.
    async fn alices_text(store: &ResponseStore) -> String {
        let stored = store.get("up", Some("alice")).await.unwrap().unwrap();
        stored.history[0].text_content()
    }

    #[tokio::test]
    async fn an_upstream_id_is_kept_by_its_first_caller_only() {
        for store in stores(ResponseStoreConfig::default(), "upstream-ids") {
            store
                .put_upstream_id(&record("up", Some("alice"), "first"))
                .await
                .unwrap();
            let err = store
                .put_upstream_id(&record("up", Some("bob"), "second"))
                .await
                .unwrap_err();
            assert_eq!(err.reason_code(), "response_id_in_use", "{store:?}");
            assert_eq!(
                alices_text(&store).await,
                "first",
                "{store:?}: another caller's write changed nothing"
            );
            // The caller's own continuation of the id replaces its response.
            store
                .put_upstream_id(&record("up", Some("alice"), "again"))
                .await
                .unwrap();
            assert_eq!(alices_text(&store).await, "again");
        }
        // An expired response no longer holds its id.
        let expiring = ResponseStoreConfig {
            ttl: Duration::ZERO,
            ..ResponseStoreConfig::default()
        };
        for store in stores(expiring, "upstream-ids-ttl") {
            store
                .put_upstream_id(&record("up", Some("alice"), "x"))
                .await
                .unwrap();
            store
                .put_upstream_id(&record("up", Some("bob"), "y"))
                .await
                .unwrap();
        }
    }

    /// Callers handed the same upstream id at the same instant: exactly one keeps it (the
    /// check and the write are one operation of the backend).
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn of_callers_racing_for_an_upstream_id_exactly_one_keeps_it() {
        for store in stores(ResponseStoreConfig::default(), "upstream-race") {
            let store = Arc::new(store);
            for round in 0..20 {
                let id = format!("race-{round}");
                let tasks: Vec<_> = (0..8)
                    .map(|n| {
                        let (store, id) = (Arc::clone(&store), id.clone());
                        tokio::spawn(async move {
                            let caller = format!("caller-{n}");
                            store
                                .put_upstream_id(&record(&id, Some(&caller), &caller))
                                .await
                                .is_ok()
                        })
                    })
                    .collect();
                let mut kept = 0;
                for task in tasks {
                    kept += usize::from(task.await.unwrap());
                }
                assert_eq!(kept, 1, "{store:?}, round {round}");
            }
        }
    }

    #[tokio::test]
    async fn redb_store_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("sy-responses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("restart.redb");
        let _ = std::fs::remove_file(&path);
        let config = ResponseStoreConfig::default();
        {
            let db = Arc::new(redb::Database::create(&path).unwrap());
            let store = ResponseStore::with_redb(config, db).unwrap();
            store
                .put(&record("a", Some("alice"), "kept"))
                .await
                .unwrap();
        }
        let db = Arc::new(redb::Database::create(&path).unwrap());
        let store = ResponseStore::with_redb(config, db).unwrap();
        let got = store.get("a", Some("alice")).await.unwrap().unwrap();
        assert_eq!(got.history[0].text_content(), "kept");
        let _ = std::fs::remove_file(&path);
    }
}
