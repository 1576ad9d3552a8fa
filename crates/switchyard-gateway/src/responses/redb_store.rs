//! The persistent backend of the response store: tables in a redb database (the spend
//! ledger's file when the binary has one), so stored responses and `previous_response_id`
//! survive a restart. Same bounds as in memory: time to live, entries and bytes, the oldest
//! evicted first, each `put` one write transaction. redb is synchronous and local: each
//! operation runs on the calling task (a short transaction, as before the async seam).
//!
//! The inner functions return redb's own error (160 bytes): they are private and turned
//! into a [`ResponseStoreError`] at the trait; the public constructor boxes it.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::backend::{ResponseBackend, ResponseStoreError, StoredBytes};

/// Response id -> the stored JSON ([`Persisted`]).
const RESPONSES: TableDefinition<'static, &'static str, &'static [u8]> =
    TableDefinition::new("responses");
/// Insertion number -> (response id, stored at in ms since the epoch, stored size): the
/// eviction order, oldest first.
const ORDER: TableDefinition<'static, u64, (&'static str, u64, u64)> =
    TableDefinition::new("responses_order");
/// `bytes` -> the total stored size; `seq` -> the next insertion number.
const META: TableDefinition<'static, &'static str, u64> = TableDefinition::new("responses_meta");

#[derive(Serialize, Deserialize)]
struct Persisted {
    seq: u64,
    stored_at_ms: u64,
    /// How long it is kept; absent in records written before the async seam (then the
    /// backend's time to live applies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ttl_ms: Option<u64>,
    /// The key that stored it; absent in records written before the async seam (those are
    /// then visible to no key: refused rather than shown to the wrong one).
    #[serde(default)]
    caller: Option<String>,
    /// The serialised response, kept as it came.
    record: Box<RawValue>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn ttl_ms(ttl: Duration) -> u64 {
    u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX)
}

/// Stored responses in a redb database.
pub(crate) struct RedbStore {
    db: Arc<redb::Database>,
    /// Serialises writers (redb does too; this keeps eviction decisions consistent).
    writer: Mutex<()>,
    max_entries: u64,
    max_bytes: u64,
    /// The time to live of records that do not carry their own.
    ttl: Duration,
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("max_entries", &self.max_entries)
            .field("max_bytes", &self.max_bytes)
            .finish_non_exhaustive()
    }
}

fn failed(e: impl std::fmt::Display) -> ResponseStoreError {
    ResponseStoreError::Failed {
        store: "redb",
        message: e.to_string(),
    }
}

#[async_trait]
impl ResponseBackend for RedbStore {
    fn kind(&self) -> &'static str {
        "redb"
    }

    async fn put(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<(), ResponseStoreError> {
        let record = self.record(bytes)?;
        self.put_record(id, caller, record, ttl, Overwrite::Always)
            .map(drop)
            .map_err(failed)
    }

    async fn put_unless_taken(
        &self,
        id: &str,
        caller: Option<&str>,
        bytes: Vec<u8>,
        ttl: Duration,
    ) -> Result<bool, ResponseStoreError> {
        let record = self.record(bytes)?;
        self.put_record(id, caller, record, ttl, Overwrite::UnlessTaken)
            .map_err(failed)
    }

    async fn get(&self, id: &str) -> Result<Option<StoredBytes>, ResponseStoreError> {
        self.get_record(id).map_err(failed)
    }

    async fn delete(&self, id: &str) -> Result<bool, ResponseStoreError> {
        self.delete_record(id).map_err(failed)
    }
}

/// Whether a write replaces another caller's live response under its id.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Overwrite {
    /// Always ([`ResponseBackend::put`]).
    Always,
    /// Not then ([`ResponseBackend::put_unless_taken`]).
    UnlessTaken,
}

impl RedbStore {
    /// `bytes` as the JSON record to keep, refused when it cannot fit at all.
    fn record(&self, bytes: Vec<u8>) -> Result<Box<RawValue>, ResponseStoreError> {
        let size = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        if size > self.max_bytes || self.max_entries == 0 {
            return Err(ResponseStoreError::TooLarge {
                size: bytes.len(),
                max: usize::try_from(self.max_bytes).unwrap_or(usize::MAX),
            });
        }
        String::from_utf8(bytes)
            .map_err(failed)
            .and_then(|text| RawValue::from_string(text).map_err(failed))
    }

    /// Uses `db`, creating the tables on first use; bounded by `max_entries` and
    /// `max_bytes`, records without their own time to live kept for `ttl`.
    pub(crate) fn open(
        db: Arc<redb::Database>,
        max_entries: usize,
        max_bytes: usize,
        ttl: Duration,
    ) -> Result<Self, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(RESPONSES)?;
        txn.open_table(ORDER)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Self {
            db,
            writer: Mutex::new(()),
            max_entries: u64::try_from(max_entries).unwrap_or(u64::MAX),
            max_bytes: u64::try_from(max_bytes).unwrap_or(u64::MAX),
            ttl,
        })
    }

    /// Keeps `record`, evicting expired and then the oldest responses past the bounds;
    /// with [`Overwrite::UnlessTaken`], not when another caller's live response has the id
    /// (`false`, nothing written: the check is in the write transaction).
    fn put_record(
        &self,
        id: &str,
        caller: Option<&str>,
        record: Box<RawValue>,
        ttl: Duration,
        overwrite: Overwrite,
    ) -> Result<bool, redb::Error> {
        let _guard = self.writer.lock();
        let now = now_ms();
        let size = u64::try_from(record.get().len()).unwrap_or(u64::MAX);
        let txn = self.db.begin_write()?;
        if overwrite == Overwrite::UnlessTaken && self.taken(&txn, id, caller, now)? {
            txn.abort()?;
            return Ok(false);
        }
        {
            let mut responses = txn.open_table(RESPONSES)?;
            let mut order = txn.open_table(ORDER)?;
            let mut meta = txn.open_table(META)?;
            let mut bytes = meta.get("bytes")?.map_or(0, |v| v.value());
            let seq = meta.get("seq")?.map_or(0, |v| v.value());
            if let Some(old) = remove(&mut responses, &mut order, id)? {
                bytes = bytes.saturating_sub(old);
            }
            let (max_entries, max_bytes) = (self.max_entries, self.max_bytes);
            let expired_before = now.saturating_sub(ttl_ms(ttl));
            loop {
                let Some((first, oldest, at, old_size)) = order.first()?.map(|(k, v)| {
                    let (oldest, at, old_size) = v.value();
                    (k.value(), oldest.to_owned(), at, old_size)
                }) else {
                    break;
                };
                let full = order.len()? >= max_entries || bytes.saturating_add(size) > max_bytes;
                if !full && at > expired_before {
                    break;
                }
                order.remove(first)?;
                responses.remove(oldest.as_str())?;
                bytes = bytes.saturating_sub(old_size);
            }
            let value = serde_json::to_vec(&Persisted {
                seq,
                stored_at_ms: now,
                ttl_ms: Some(ttl_ms(ttl)),
                caller: caller.map(str::to_owned),
                record,
            })
            .unwrap_or_default();
            responses.insert(id, value.as_slice())?;
            order.insert(seq, (id, now, size))?;
            meta.insert("bytes", bytes.saturating_add(size))?;
            meta.insert("seq", seq.saturating_add(1))?;
        }
        txn.commit()?;
        Ok(true)
    }

    /// Whether another caller's live response is stored under `id` (read in `txn`, the
    /// write transaction that would replace it). A value that cannot be read holds no id:
    /// it is replaced, as [`ResponseBackend::put`] would.
    fn taken(
        &self,
        txn: &redb::WriteTransaction,
        id: &str,
        caller: Option<&str>,
        now: u64,
    ) -> Result<bool, redb::Error> {
        let responses = txn.open_table(RESPONSES)?;
        let Some(raw) = responses.get(id)? else {
            return Ok(false);
        };
        let stored = self.live(id, raw.value(), now).ok().flatten();
        Ok(stored.is_some_and(|persisted| persisted.caller.as_deref() != caller))
    }

    /// The stored value `raw` of response `id`, unless it has expired by `now` (ms); a
    /// value that cannot be read is an error of the store, not a missing response.
    fn live(&self, id: &str, raw: &[u8], now: u64) -> Result<Option<Persisted>, redb::Error> {
        let persisted = serde_json::from_slice::<Persisted>(raw).map_err(|e| {
            redb::Error::Corrupted(format!("the stored response `{id}` cannot be read: {e}"))
        })?;
        let ttl = persisted.ttl_ms.unwrap_or_else(|| ttl_ms(self.ttl));
        let expired = now.saturating_sub(persisted.stored_at_ms) >= ttl;
        Ok((!expired).then_some(persisted))
    }

    /// The response `id`, unless it has expired.
    fn get_record(&self, id: &str) -> Result<Option<StoredBytes>, redb::Error> {
        let txn = self.db.begin_read()?;
        let responses = txn.open_table(RESPONSES)?;
        let Some(raw) = responses.get(id)? else {
            return Ok(None);
        };
        Ok(self
            .live(id, raw.value(), now_ms())?
            .map(|persisted| StoredBytes {
                caller: persisted.caller,
                bytes: persisted.record.get().as_bytes().to_vec(),
            }))
    }

    /// Deletes the response `id`; whether it was there.
    fn delete_record(&self, id: &str) -> Result<bool, redb::Error> {
        let _guard = self.writer.lock();
        let txn = self.db.begin_write()?;
        let removed = {
            let mut responses = txn.open_table(RESPONSES)?;
            let mut order = txn.open_table(ORDER)?;
            let mut meta = txn.open_table(META)?;
            let removed = remove(&mut responses, &mut order, id)?;
            if let Some(size) = removed {
                let bytes = meta.get("bytes")?.map_or(0, |v| v.value());
                meta.insert("bytes", bytes.saturating_sub(size))?;
            }
            removed.is_some()
        };
        txn.commit()?;
        Ok(removed)
    }
}

/// Removes `id` from both tables; its stored size when it was there.
fn remove(
    responses: &mut redb::Table<'_, &'static str, &'static [u8]>,
    order: &mut redb::Table<'_, u64, (&'static str, u64, u64)>,
    id: &str,
) -> Result<Option<u64>, redb::Error> {
    let Some(raw) = responses.remove(id)? else {
        return Ok(None);
    };
    let seq = serde_json::from_slice::<Persisted>(raw.value())
        .ok()
        .map(|p| p.seq);
    drop(raw);
    let Some(seq) = seq else {
        return Ok(Some(0));
    };
    Ok(order.remove(seq)?.map(|v| v.value().2))
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test]
    async fn an_unreadable_value_holds_no_id() {
        let dir = std::env::temp_dir().join(format!("sy-redb-taken-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("taken.redb");
        let _ = std::fs::remove_file(&path);
        let db = Arc::new(redb::Database::create(&path).unwrap());
        let store = RedbStore::open(Arc::clone(&db), 10, 1 << 20, DAY).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(RESPONSES)
            .unwrap()
            .insert("up", b"not json".as_slice())
            .unwrap();
        txn.commit().unwrap();
        assert!(
            store.get("up").await.is_err(),
            "a damaged value is an error"
        );
        let kept = store
            .put_unless_taken("up", Some("bob"), b"{\"n\":1}".to_vec(), DAY)
            .await
            .unwrap();
        assert!(kept, "replaced, as put would");
        let got = store.get("up").await.unwrap().unwrap();
        assert_eq!(got.caller.as_deref(), Some("bob"));
        let kept = store
            .put_unless_taken("up", Some("carol"), b"{\"n\":2}".to_vec(), DAY)
            .await
            .unwrap();
        assert!(!kept, "bob's now");
        let _ = std::fs::remove_file(&path);
    }
}
