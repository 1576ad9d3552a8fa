//! The response store behind `store: true`, `previous_response_id`, `GET` / `DELETE
//! /v1/responses/{id}` and `/input_items`: bounded (entries and bytes; the oldest go first)
//! and with a time to live. Responses are visible only to the API key that made them.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use switchyard_core::{Message, PrivacyClass};

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

/// Stored responses in memory, bounded by [`ResponseStoreConfig`].
pub struct ResponseStore {
    config: ResponseStoreConfig,
    inner: Mutex<Inner>,
}

impl std::fmt::Debug for ResponseStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStore")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for ResponseStore {
    fn default() -> Self {
        Self::new(ResponseStoreConfig::default())
    }
}

impl ResponseStore {
    /// An empty store with these bounds.
    pub fn new(config: ResponseStoreConfig) -> Self {
        Self {
            config,
            inner: Mutex::new(Inner::default()),
        }
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
        let Ok(mut inner) = self.inner.lock() else {
            return;
        };
        let id = record.id.clone();
        if let Some(old) = inner.map.remove(&id) {
            inner.bytes -= old.size;
            inner.order.retain(|o| o != &id);
        }
        while inner.map.len() >= self.config.max_entries
            || inner.bytes + size > self.config.max_bytes
        {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.size;
            }
        }
        inner.bytes += size;
        inner.order.push_back(id.clone());
        inner.map.insert(
            id,
            Entry {
                record: Arc::new(record),
                size,
                stored_at: Instant::now(),
            },
        );
    }

    /// The response `id` if `caller` made it and it has not expired.
    pub(crate) fn get(&self, id: &str, caller: Option<&str>) -> Option<Arc<StoredResponse>> {
        let mut inner = self.inner.lock().ok()?;
        let entry = inner.map.get(id)?;
        if entry.stored_at.elapsed() >= self.config.ttl {
            Self::remove(&mut inner, id);
            return None;
        }
        (entry.record.caller.as_deref() == caller).then(|| Arc::clone(&entry.record))
    }

    /// Deletes the response `id` if `caller` made it; whether it was there.
    pub(crate) fn delete(&self, id: &str, caller: Option<&str>) -> bool {
        if self.get(id, caller).is_none() {
            return false;
        }
        self.inner
            .lock()
            .is_ok_and(|mut inner| Self::remove(&mut inner, id))
    }

    fn remove(inner: &mut Inner, id: &str) -> bool {
        match inner.map.remove(id) {
            Some(old) => {
                inner.bytes -= old.size;
                inner.order.retain(|o| o != id);
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
        }
    }

    #[test]
    fn keeps_at_most_max_entries_oldest_first_out() {
        let store = ResponseStore::new(ResponseStoreConfig {
            max_entries: 2,
            ..ResponseStoreConfig::default()
        });
        for id in ["a", "b", "c"] {
            store.put(record(id, None, "x"));
        }
        assert!(store.get("a", None).is_none());
        assert!(store.get("b", None).is_some());
        assert!(store.get("c", None).is_some());
    }

    #[test]
    fn byte_bound_evicts_and_refuses_oversized_records() {
        let one = serde_json::to_vec(&record("a", None, "x")).unwrap().len();
        let store = ResponseStore::new(ResponseStoreConfig {
            max_bytes: one * 2 + 1,
            ..ResponseStoreConfig::default()
        });
        for id in ["a", "b", "c"] {
            store.put(record(id, None, "x"));
        }
        assert!(store.get("a", None).is_none());
        assert!(store.get("c", None).is_some());
        store.put(record("big", None, &"y".repeat(one * 3)));
        assert!(store.get("big", None).is_none());
        assert!(
            store.get("c", None).is_some(),
            "a refused record evicts nothing"
        );
    }

    #[test]
    fn expired_and_foreign_responses_are_not_found() {
        let store = ResponseStore::new(ResponseStoreConfig {
            ttl: Duration::ZERO,
            ..ResponseStoreConfig::default()
        });
        store.put(record("a", None, "x"));
        assert!(store.get("a", None).is_none());

        let store = ResponseStore::default();
        store.put(record("a", Some("alice"), "x"));
        assert!(store.get("a", Some("bob")).is_none());
        assert!(store.get("a", None).is_none());
        assert!(!store.delete("a", Some("bob")));
        assert!(store.delete("a", Some("alice")));
        assert!(store.get("a", Some("alice")).is_none());
    }
}
