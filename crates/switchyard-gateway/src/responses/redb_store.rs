//! The persistent backend of the response store: tables in a redb database (the spend
//! ledger's file when the binary has one), so stored responses and `previous_response_id`
//! survive a restart. Same bounds as in memory: time to live, entries and bytes, the oldest
//! evicted first, each `put` one write transaction.
//!
//! The functions here return redb's own error (160 bytes): they are private, called at most
//! once per request, and every error is logged by the caller; the public constructor boxes it.
#![allow(clippy::result_large_err)]

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use redb::{ReadableTable, ReadableTableMetadata, TableDefinition};
use serde::{Deserialize, Serialize};

use super::store::{ResponseStoreConfig, StoredResponse};

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
    record: StoredResponse,
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
}

impl RedbStore {
    /// Uses `db`, creating the tables on first use.
    pub(crate) fn open(db: Arc<redb::Database>) -> Result<Self, redb::Error> {
        let txn = db.begin_write()?;
        txn.open_table(RESPONSES)?;
        txn.open_table(ORDER)?;
        txn.open_table(META)?;
        txn.commit()?;
        Ok(Self {
            db,
            writer: Mutex::new(()),
        })
    }

    /// Keeps `record` (`size` bytes), evicting expired and then the oldest responses past
    /// the bounds.
    pub(crate) fn put(
        &self,
        record: StoredResponse,
        size: usize,
        config: &ResponseStoreConfig,
    ) -> Result<(), redb::Error> {
        let _guard = self.writer.lock();
        let now = now_ms();
        let id = record.id.clone();
        let size = u64::try_from(size).unwrap_or(u64::MAX);
        let txn = self.db.begin_write()?;
        {
            let mut responses = txn.open_table(RESPONSES)?;
            let mut order = txn.open_table(ORDER)?;
            let mut meta = txn.open_table(META)?;
            let mut bytes = meta.get("bytes")?.map_or(0, |v| v.value());
            let seq = meta.get("seq")?.map_or(0, |v| v.value());
            if let Some(old) = remove(&mut responses, &mut order, &id)? {
                bytes = bytes.saturating_sub(old);
            }
            let max_entries = u64::try_from(config.max_entries).unwrap_or(u64::MAX);
            let max_bytes = u64::try_from(config.max_bytes).unwrap_or(u64::MAX);
            let expired_before = now.saturating_sub(ttl_ms(config.ttl));
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
                record,
            })
            .unwrap_or_default();
            responses.insert(id.as_str(), value.as_slice())?;
            order.insert(seq, (id.as_str(), now, size))?;
            meta.insert("bytes", bytes.saturating_add(size))?;
            meta.insert("seq", seq.saturating_add(1))?;
        }
        txn.commit()?;
        Ok(())
    }

    /// The response `id`, unless it has expired.
    pub(crate) fn get(
        &self,
        id: &str,
        ttl: Duration,
    ) -> Result<Option<StoredResponse>, redb::Error> {
        let txn = self.db.begin_read()?;
        let responses = txn.open_table(RESPONSES)?;
        let Some(raw) = responses.get(id)? else {
            return Ok(None);
        };
        let Ok(persisted) = serde_json::from_slice::<Persisted>(raw.value()) else {
            tracing::warn!(id, "response store: an unreadable record; ignored");
            return Ok(None);
        };
        let expired = now_ms().saturating_sub(persisted.stored_at_ms) >= ttl_ms(ttl);
        Ok((!expired).then_some(persisted.record))
    }

    /// Deletes the response `id`; whether it was there.
    pub(crate) fn delete(&self, id: &str) -> Result<bool, redb::Error> {
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
