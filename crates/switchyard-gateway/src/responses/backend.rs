//! The seam under the response store: [`ResponseBackend`], an async byte-level store of
//! serialised responses with their caller and a time to live. The gateway's
//! [`super::ResponseStore`] serialises, bounds and scopes; a backend keeps bytes. Backends
//! here: memory ([`MemoryBackend`]) and redb (`redb_store.rs`); `switchyard-redis` keeps them
//! in Redis so `previous_response_id` works on every replica of a fleet.
//!
//! Visibility stays with the key that stored a response: a backend keeps the caller next to
//! the bytes ([`StoredBytes`]) and the store hands a response only to that caller.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;

/// One stored response as a backend keeps it: the API key that made it and the serialised
/// record (JSON, opaque to the backend).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredBytes {
    /// The API key id that stored it (`None` without keys).
    pub caller: Option<String>,
    /// The serialised record.
    pub bytes: Vec<u8>,
}

impl StoredBytes {
    /// One value holding both (for stores of plain values, such as Redis): the caller as a
    /// JSON string or `null`, a newline, then the bytes. A JSON string has no raw newline,
    /// so the first newline ends the caller.
    pub fn to_envelope(&self) -> Vec<u8> {
        let caller = Self::envelope_caller(self.caller.as_deref());
        let mut out = Vec::with_capacity(caller.len() + 1 + self.bytes.len());
        out.extend_from_slice(&caller);
        out.push(b'\n');
        out.extend_from_slice(&self.bytes);
        out
    }

    /// How [`StoredBytes::to_envelope`] writes `caller` (the part before the newline): the
    /// same caller always gives the same bytes, so a store may compare them.
    pub fn envelope_caller(caller: Option<&str>) -> Vec<u8> {
        serde_json::to_vec(&caller).unwrap_or_else(|_| b"null".to_vec())
    }

    /// Reads a value written by [`StoredBytes::to_envelope`]; `None` when it is not one.
    pub fn from_envelope(value: &[u8]) -> Option<Self> {
        let split = value.iter().position(|&b| b == b'\n')?;
        let caller = serde_json::from_slice::<Option<String>>(&value[..split]).ok()?;
        Some(Self {
            caller,
            bytes: value[split + 1..].to_vec(),
        })
    }
}

/// Why a backend could not do what was asked. Stable reason codes
/// ([`ResponseStoreError::reason_code`]) for logs and metric labels; the message of the
/// underlying failure is kept for logs (it may name hosts, so it is not shown to clients).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ResponseStoreError {
    /// The backend could not be reached (connection refused or dropped, no answer in time).
    #[error("response store `{store}` unreachable: {message}")]
    Unreachable {
        /// The backend's kind (`redis`, `redb`, `memory`).
        store: &'static str,
        /// What failed.
        message: String,
    },
    /// The backend answered with an error, or with something that is not a stored response.
    #[error("response store `{store}` failed: {message}")]
    Failed {
        /// The backend's kind.
        store: &'static str,
        /// What failed.
        message: String,
    },
    /// Another caller's response is stored under this id (a pass-through upstream gave two
    /// answers the same id); the new one is not kept.
    #[error("response id `{id}` is already taken by another caller's stored response")]
    IdInUse {
        /// The id.
        id: String,
    },
    /// The serialised response is larger than one entry may be; it is not kept.
    #[error("response of {size} bytes is larger than the response store's {max} bytes per entry")]
    TooLarge {
        /// Its size in bytes.
        size: usize,
        /// The bound.
        max: usize,
    },
}

impl ResponseStoreError {
    /// A stable snake_case code: `response_store_unreachable`, `response_store_error`,
    /// `response_id_in_use`, `response_too_large`.
    pub fn reason_code(&self) -> &'static str {
        match self {
            Self::Unreachable { .. } => "response_store_unreachable",
            Self::Failed { .. } => "response_store_error",
            Self::IdInUse { .. } => "response_id_in_use",
            Self::TooLarge { .. } => "response_too_large",
        }
    }

    /// Whether the backend could not be reached (as opposed to answering with an error).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, Self::Unreachable { .. })
    }
}

/// Where stored responses live. Every method is one operation on the backend (one round
/// trip for a remote one); the caller bounds how long it may take.
#[async_trait]
pub trait ResponseBackend: Send + Sync + fmt::Debug {
    /// What it is, for logs and metric labels (`memory`, `redb`, `redis`).
    fn kind(&self) -> &'static str;

    /// Whether several gateways share it (so an outage concerns the shared state).
    fn is_shared(&self) -> bool {
        false
    }

    /// Keeps `bytes` (the serialised response `id`, made by `caller`) for `ttl`, replacing
    /// a response stored under the same id.
    async fn put(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), ResponseStoreError>;

    /// Keeps `bytes` as [`Self::put`] does, unless a live response made by another caller
    /// is stored under `id`: then nothing changes and the answer is `false`. The check and
    /// the write are one operation, so two callers handed the same id at the same instant
    /// (two gateways of a fleet, or two requests on one) cannot both keep theirs.
    async fn put_unless_taken(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, ResponseStoreError>;

    /// The response `id` with its caller, unless absent or expired.
    async fn get(&self, id: &str) -> Result<Option<StoredBytes>, ResponseStoreError>;

    /// Deletes the response `id`; whether it was there.
    async fn delete(&self, id: &str) -> Result<bool, ResponseStoreError>;
}

struct Entry {
    stored: StoredBytes,
    /// `None`: a time to live past what an `Instant` holds.
    expires: Option<Instant>,
}

#[derive(Default)]
struct Inner {
    map: HashMap<String, Entry>,
    /// Ids, oldest first.
    order: VecDeque<String>,
    bytes: usize,
}

/// Responses in this process's memory, bounded by entries and bytes (the oldest go first).
pub(crate) struct MemoryBackend {
    max_entries: usize,
    max_bytes: usize,
    inner: Mutex<Inner>,
}

impl fmt::Debug for MemoryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryBackend")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

impl MemoryBackend {
    /// An empty backend keeping at most `max_entries` responses of `max_bytes` in all.
    pub(crate) fn new(max_entries: usize, max_bytes: usize) -> Self {
        Self {
            max_entries,
            max_bytes,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, ResponseStoreError> {
        self.inner.lock().map_err(|_| ResponseStoreError::Failed {
            store: "memory",
            message: "lock poisoned".to_owned(),
        })
    }
}

impl MemoryBackend {
    /// Refuses what cannot fit at all ([`ResponseStoreError::TooLarge`]).
    fn check_size(&self, size: usize) -> Result<(), ResponseStoreError> {
        if size > self.max_bytes || self.max_entries == 0 {
            return Err(ResponseStoreError::TooLarge {
                size,
                max: self.max_bytes,
            });
        }
        Ok(())
    }

    /// Keeps `bytes` under `id` in `inner` (already locked), evicting the oldest past the
    /// bounds; the size was checked.
    fn insert(
        &self,
        inner: &mut Inner,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) {
        let size = bytes.len();
        inner.remove(id);
        while inner.map.len() >= self.max_entries || inner.bytes + size > self.max_bytes {
            let Some(oldest) = inner.order.pop_front() else {
                break;
            };
            if let Some(old) = inner.map.remove(&oldest) {
                inner.bytes -= old.stored.bytes.len();
            }
        }
        inner.bytes += size;
        inner.order.push_back(id.to_owned());
        inner.map.insert(
            id.to_owned(),
            Entry {
                stored: StoredBytes {
                    caller: caller.map(str::to_owned),
                    bytes,
                },
                expires: Instant::now().checked_add(ttl),
            },
        );
    }
}

impl Inner {
    /// The live response `id`; `None` when there is none (an expired one is dropped here).
    fn live(&mut self, id: &str) -> Option<&StoredBytes> {
        let expired = self
            .map
            .get(id)?
            .expires
            .is_some_and(|at| Instant::now() >= at);
        if expired {
            self.remove(id);
            return None;
        }
        self.map.get(id).map(|entry| &entry.stored)
    }

    fn remove(&mut self, id: &str) -> bool {
        match self.map.remove(id) {
            Some(old) => {
                self.bytes -= old.stored.bytes.len();
                self.order.retain(|o| o != id);
                true
            }
            None => false,
        }
    }
}

#[async_trait]
impl ResponseBackend for MemoryBackend {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn put(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), ResponseStoreError> {
        self.check_size(bytes.len())?;
        let mut inner = self.lock()?;
        self.insert(&mut inner, id, caller, bytes, ttl);
        Ok(())
    }

    async fn put_unless_taken(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, ResponseStoreError> {
        self.check_size(bytes.len())?;
        let mut inner = self.lock()?;
        if inner
            .live(id)
            .is_some_and(|stored| stored.caller.as_deref() != caller)
        {
            return Ok(false);
        }
        self.insert(&mut inner, id, caller, bytes, ttl);
        Ok(true)
    }

    async fn get(&self, id: &str) -> Result<Option<StoredBytes>, ResponseStoreError> {
        Ok(self.lock()?.live(id).cloned())
    }

    async fn delete(&self, id: &str) -> Result<bool, ResponseStoreError> {
        Ok(self.lock()?.remove(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test]
    async fn memory_backend_keeps_bytes_with_their_caller_until_deleted() {
        let backend = MemoryBackend::new(10, 1024);
        backend
            .put("a", Some("alice"), b"{\"x\":1}".to_vec(), DAY)
            .await
            .unwrap();
        let got = backend.get("a").await.unwrap().unwrap();
        assert_eq!(got.caller.as_deref(), Some("alice"));
        assert_eq!(got.bytes, b"{\"x\":1}");
        assert!(backend.get("b").await.unwrap().is_none());
        assert!(backend.delete("a").await.unwrap());
        assert!(!backend.delete("a").await.unwrap());
        assert!(backend.get("a").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn memory_backend_expires_evicts_oldest_and_refuses_oversized() {
        let backend = MemoryBackend::new(2, 10);
        backend
            .put("gone", None, vec![1], Duration::ZERO)
            .await
            .unwrap();
        assert!(backend.get("gone").await.unwrap().is_none(), "expired");
        for id in ["a", "b", "c"] {
            backend.put(id, None, vec![0; 4], DAY).await.unwrap();
        }
        assert!(backend.get("a").await.unwrap().is_none(), "oldest evicted");
        assert!(backend.get("c").await.unwrap().is_some());
        let err = backend
            .put("big", None, vec![0; 11], DAY)
            .await
            .unwrap_err();
        assert_eq!(err.reason_code(), "response_too_large");
        assert!(backend.get("b").await.unwrap().is_some(), "nothing evicted");
        // Storing an id again replaces it.
        backend.put("b", Some("k"), vec![7], DAY).await.unwrap();
        assert_eq!(backend.get("b").await.unwrap().unwrap().bytes, vec![7]);
    }

    #[test]
    fn envelope_round_trips_callers_with_any_characters() {
        for caller in [None, Some("alice"), Some("we\nird \"key\"")] {
            let stored = StoredBytes {
                caller: caller.map(str::to_owned),
                bytes: b"{\"a\":\"line\\nbreak\"}\n".to_vec(),
            };
            let back = StoredBytes::from_envelope(&stored.to_envelope()).unwrap();
            assert_eq!(back, stored);
        }
        assert!(StoredBytes::from_envelope(b"no newline").is_none());
        assert!(StoredBytes::from_envelope(b"42\n{}").is_none());
    }
}
