//! The response store behind `store: true`, `previous_response_id`, `GET` / `DELETE
//! /v1/responses/{id}` and `/input_items`: bounded (entries and bytes; the oldest go first)
//! and with a time to live, in memory or in a redb database. Responses are visible only to
//! the API key that made them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{Message, PrivacyClass};

use super::redb_store::RedbStore;

/// Bounds of the [`ResponseStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseStoreConfig {
    /// How long a response is kept.
    pub ttl: Duration,
    /// Responses kept at most.
    pub max_entries: usize,
    /// Bytes (of the stored JSON) kept at most.
    pub max_bytes: usize,
}

impl Default for ResponseStoreConfig {
    fn default() -> Self {
        Self {
            ttl: Duration::from_secs(24 * 3600),
            max_entries: 10_000,
            max_bytes: 256 * 1024 * 1024,
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

struct Entry {
    record: Arc<StoredResponse>,
    size: usize,
    stored_at: Instant,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

/// Stored responses, bounded by [`ResponseStoreConfig`]: in memory, or in a redb database
/// ([`ResponseStore::with_redb`]) so they survive a restart.
pub struct ResponseStore {
    config: ResponseStoreConfig,
    backend: Backend,
}

enum Backend {
    Memory(Mutex<Inner>),
    Redb(RedbStore),
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let backend = match self.backend {
            Backend::Memory(_) => "memory",
            Backend::Redb(_) => "redb",
        };
        f.debug_struct("ResponseStore")
            .field("config", &self.config)
            .field("backend", &backend)
            .finish()
    }
}

impl Default for ResponseStore {
    fn default() -> Self {
        Self::new(ResponseStoreConfig::default())
    }
}

impl ResponseStore {
    /// An empty in-memory store with these bounds.
    pub fn new(config: ResponseStoreConfig) -> Self {
        Self {
            config,
            backend: Backend::Memory(Mutex::new(Inner::default())),
        }
    }

    /// A store in the tables `responses`, `responses_order` and `responses_meta` of `db`
    /// (created on first use; the database may hold other tables, such as the spend
    /// ledger's).
    pub fn with_redb(
        config: ResponseStoreConfig,
        db: Arc<redb::Database>,
    ) -> Result<Self, Box<redb::Error>> {
        Ok(Self {
            config,
            backend: Backend::Redb(RedbStore::open(db).map_err(Box::new)?),
        })
    }

    /// Keeps `record`, evicting the oldest responses past the bounds. A record larger than
    /// the whole byte bound is not kept (logged).
    pub(crate) fn put(&self, record: StoredResponse) {
        let size = serde_json::to_vec(&record).map_or(usize::MAX, |v| v.len());
        if size > self.config.max_bytes || self.config.max_entries == 0 {
            tracing::warn!(
                id = record.id,
                size,
                "response too large for the response store; not kept"
            );
            return;
        }
        match &self.backend {
            Backend::Memory(inner) => {
                if let Ok(mut inner) = inner.lock() {
                    inner.put(record, size, &self.config);
                }
            }
            Backend::Redb(db) => {
                if let Err(e) = db.put(record, size, &self.config) {
                    tracing::warn!(error = %e, "response store: could not write; response not kept");
                }
            }
        }
    }

    /// The response `id` if `caller` made it and it has not expired.
    pub(crate) fn get(&self, id: &str, caller: Option<&str>) -> Option<Arc<StoredResponse>> {
        let record = match &self.backend {
            Backend::Memory(inner) => inner.lock().ok()?.get(id, self.config.ttl)?,
            Backend::Redb(db) => match db.get(id, self.config.ttl) {
                Ok(found) => Arc::new(found?),
                Err(e) => {
                    tracing::warn!(error = %e, "response store: could not read");
                    return None;
                }
            },
        };
        (record.caller.as_deref() == caller).then_some(record)
    }

    /// Deletes the response `id` if `caller` made it; whether it was there.
    pub(crate) fn delete(&self, id: &str, caller: Option<&str>) -> bool {
        if self.get(id, caller).is_none() {
            return false;
        }
        match &self.backend {
            Backend::Memory(inner) => inner.lock().is_ok_and(|mut inner| inner.remove(id)),
            Backend::Redb(db) => db.delete(id).unwrap_or_else(|e| {
                tracing::warn!(error = %e, "response store: could not delete");
                false
            }),
        }
    }
}

impl Inner {
    fn put(&mut self, record: StoredResponse, size: usize, config: &ResponseStoreConfig) {
        let id = record.id.clone();
        self.remove(&id);
        while self.map.len() >= config.max_entries || self.bytes + size > config.max_bytes {
            let Some(oldest) = self.order.pop_front() else {
                break;
            };
            if let Some(old) = self.map.remove(&oldest) {
                self.bytes -= old.size;
            }
        }
        self.bytes += size;
        self.order.push_back(id.clone());
        self.map.insert(
            id,
            Entry {
                record: Arc::new(record),
                size,
                stored_at: Instant::now(),
            },
        );
    }

    fn get(&mut self, id: &str, ttl: Duration) -> Option<Arc<StoredResponse>> {
        let entry = self.map.get(id)?;
        if entry.stored_at.elapsed() >= ttl {
            self.remove(id);
            return None;
        }
        Some(Arc::clone(&entry.record))
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.map.remove(id) {
            Some(old) => {
                self.bytes -= old.size;
                self.order.retain(|o| o != id);
                true
            }
            None => false,
        }
    }
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

    #[test]
    fn keeps_at_most_max_entries_oldest_first_out() {
        let config = ResponseStoreConfig {
            max_entries: 2,
            ..ResponseStoreConfig::default()
        };
        for store in stores(config, "entries") {
            for id in ["c", "b", "a"] {
                store.put(record(id, None, "x"));
            }
            assert!(store.get("c", None).is_none(), "{store:?}");
            assert!(store.get("b", None).is_some());
            assert!(store.get("a", None).is_some());
            // Storing an id again replaces it (and does not count twice).
            store.put(record("b", None, "y"));
            assert!(store.get("a", None).is_some());
            assert_eq!(store.get("b", None).unwrap().history[0].text_content(), "y");
        }
    }

    #[test]
    fn byte_bound_evicts_and_refuses_oversized_records() {
        let one = serde_json::to_vec(&record("a", None, "x")).unwrap().len();
        let config = ResponseStoreConfig {
            max_bytes: one * 2 + 1,
            ..ResponseStoreConfig::default()
        };
        for store in stores(config, "bytes") {
            for id in ["a", "b", "c"] {
                store.put(record(id, None, "x"));
            }
            assert!(store.get("a", None).is_none(), "{store:?}");
            assert!(store.get("c", None).is_some());
            store.put(record("big", None, &"y".repeat(one * 3)));
            assert!(store.get("big", None).is_none());
            assert!(
                store.get("c", None).is_some(),
                "a refused record evicts nothing"
            );
        }
    }

    #[test]
    fn expired_and_foreign_responses_are_not_found() {
        let expiring = ResponseStoreConfig {
            ttl: Duration::ZERO,
            ..ResponseStoreConfig::default()
        };
        for store in stores(expiring, "ttl") {
            store.put(record("a", None, "x"));
            assert!(store.get("a", None).is_none(), "{store:?}");
        }
        for store in stores(ResponseStoreConfig::default(), "callers") {
            store.put(record("a", Some("alice"), "x"));
            assert!(store.get("a", Some("bob")).is_none(), "{store:?}");
            assert!(store.get("a", None).is_none());
            assert!(!store.delete("a", Some("bob")));
            assert!(store.delete("a", Some("alice")));
            assert!(store.get("a", Some("alice")).is_none());
        }
    }

    #[test]
    fn redb_store_survives_a_restart() {
        let dir = std::env::temp_dir().join(format!("sy-responses-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("restart.redb");
        let _ = std::fs::remove_file(&path);
        let config = ResponseStoreConfig::default();
        {
            let db = Arc::new(redb::Database::create(&path).unwrap());
            let store = ResponseStore::with_redb(config, db).unwrap();
            store.put(record("a", Some("alice"), "kept"));
        }
        let db = Arc::new(redb::Database::create(&path).unwrap());
        let store = ResponseStore::with_redb(config, db).unwrap();
        let got = store.get("a", Some("alice")).unwrap();
        assert_eq!(got.history[0].text_content(), "kept");
        let _ = std::fs::remove_file(&path);
    }
}
