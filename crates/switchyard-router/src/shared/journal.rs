//! The outage journal: spend charges the shared state missed, kept until they are applied
//! to it. [`ChargeJournal`] is the seam; [`MemoryJournal`] keeps them in this process (lost
//! on restart), [`RedbJournal`] in the spend ledger's redb file (a replica restarted during
//! an outage still reconciles them). Both are bounded: when full, the oldest charge makes
//! room (the handle logs it loudly and counts it).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, UNIX_EPOCH};

use redb::ReadableTable;

use super::{SpendCharge, SpendCounter};
use crate::ledger::{LedgerError, RedbLedger};

/// Charges a journal keeps by default (the oldest are dropped past it).
pub const DEFAULT_JOURNAL_CAPACITY: usize = 65_536;

/// Where a router keeps the charges the shared state has not applied yet. Safe to call
/// concurrently; charges come back oldest first.
pub trait ChargeJournal: Send + Sync + fmt::Debug {
    /// Appends `charge` (a charge id already journaled is ignored). When the journal is
    /// full the oldest charge is removed to make room and returned.
    fn push(&self, charge: SpendCharge) -> Result<Option<SpendCharge>, LedgerError>;
    /// Up to `n` charges, oldest first (they stay until [`ChargeJournal::remove`]).
    fn oldest(&self, n: usize) -> Vec<SpendCharge>;
    /// Removes the charges with these ids (ids not journaled are ignored).
    fn remove(&self, charge_ids: &[&str]) -> Result<(), LedgerError>;
    /// How many charges are journaled.
    fn len(&self) -> usize;
    /// Whether no charge is journaled.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Up to `n` charges, oldest first, leaving out those `skip` is true for (a replay
    /// goes past the charges the store refused). The default reads the whole journal.
    fn oldest_except(&self, n: usize, skip: &dyn Fn(&SpendCharge) -> bool) -> Vec<SpendCharge> {
        self.oldest(self.len())
            .into_iter()
            .filter(|c| !skip(c))
            .take(n)
            .collect()
    }
    /// Records that the store applied the charge `charge_id` (it stays journaled until
    /// [`ChargeJournal::remove`], which is batched, but no longer counts in
    /// [`ChargeJournal::pending_spend`]). Memory only: after a crash it is sent again, and
    /// the store's charge ids make that harmless. The default does nothing.
    fn mark_applied(&self, charge_id: &str) {
        let _ = charge_id;
    }
    /// For each of `counters`, the micro-dollars of the journaled charges that add to it
    /// and that the store has not applied yet ([`ChargeJournal::mark_applied`]): what a
    /// budget check adds to the store's totals. The default reads the whole journal (and,
    /// without `mark_applied`, may count a charge applied but not yet removed: more, never
    /// less).
    fn pending_spend(&self, counters: &[SpendCounter]) -> Vec<u64> {
        let mut out = vec![0u64; counters.len()];
        for charge in self.oldest(self.len()) {
            for c in charge.counters() {
                for (total, k) in out.iter_mut().zip(counters) {
                    if k.scope == c.scope && k.period == c.period {
                        *total = total.saturating_add(charge.micro_usd);
                    }
                }
            }
        }
        out
    }
}

/// The charges in journal order: a sequence number per charge, and its id's number; and
/// per counter, the sum of the charges the store has not applied yet.
#[derive(Debug, Default)]
struct Entries {
    by_seq: BTreeMap<u64, SpendCharge>,
    seq_of: HashMap<String, u64>,
    next: u64,
    /// Micro-dollars per `(scope, period)` of the charges not marked applied.
    pending: HashMap<(String, String), u64>,
    /// Charges the store applied, still journaled (removal is batched).
    applied: HashSet<String>,
}

impl Entries {
    fn insert(&mut self, seq: u64, charge: SpendCharge) {
        self.next = self.next.max(seq.saturating_add(1));
        if let Some(old) = self.seq_of.insert(charge.charge_id.clone(), seq)
            && let Some(old) = self.by_seq.remove(&old)
        {
            self.forget(&old);
        }
        self.count(&charge, true);
        self.by_seq.insert(seq, charge);
    }

    /// Adds (or takes away) `charge` to the pending sums of its counters.
    fn count(&mut self, charge: &SpendCharge, add: bool) {
        for c in charge.counters() {
            let key = (c.scope, c.period);
            if add {
                let total = self.pending.entry(key).or_default();
                *total = total.saturating_add(charge.micro_usd);
            } else if let Some(total) = self.pending.get_mut(&key) {
                *total = total.saturating_sub(charge.micro_usd);
                if *total == 0 {
                    self.pending.remove(&key);
                }
            }
        }
    }

    /// `charge` leaves the journal: out of the pending sums unless it was applied.
    fn forget(&mut self, charge: &SpendCharge) {
        if !self.applied.remove(&charge.charge_id) {
            self.count(charge, false);
        }
    }

    fn mark_applied(&mut self, charge_id: &str) {
        let Some(charge) = self.seq_of.get(charge_id).and_then(|s| self.by_seq.get(s)) else {
            return;
        };
        if self.applied.insert(charge_id.to_owned()) {
            let charge = charge.clone();
            self.count(&charge, false);
        }
    }

    fn pending_spend(&self, counters: &[SpendCounter]) -> Vec<u64> {
        counters
            .iter()
            .map(|c| {
                self.pending
                    .get(&(c.scope.clone(), c.period.clone()))
                    .copied()
                    .unwrap_or(0)
            })
            .collect()
    }

    /// The charge to drop so that one more fits under `capacity`.
    fn overflow(&self, capacity: usize) -> Option<&SpendCharge> {
        (self.by_seq.len() >= capacity.max(1))
            .then(|| self.by_seq.values().next())
            .flatten()
    }

    fn take(&mut self, charge_id: &str) -> Option<SpendCharge> {
        let seq = self.seq_of.remove(charge_id)?;
        let charge = self.by_seq.remove(&seq)?;
        self.forget(&charge);
        Some(charge)
    }

    fn oldest(&self, n: usize) -> Vec<SpendCharge> {
        self.by_seq.values().take(n).cloned().collect()
    }

    fn oldest_except(&self, n: usize, skip: &dyn Fn(&SpendCharge) -> bool) -> Vec<SpendCharge> {
        self.by_seq
            .values()
            .filter(|c| !skip(c))
            .take(n)
            .cloned()
            .collect()
    }
}

/// A journal in this process's memory, bounded (today's behaviour without a ledger file).
#[derive(Debug)]
pub struct MemoryJournal {
    capacity: usize,
    entries: Mutex<Entries>,
}

impl MemoryJournal {
    /// An empty journal keeping at most `capacity` charges (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity,
            entries: Mutex::default(),
        }
    }
}

impl Default for MemoryJournal {
    fn default() -> Self {
        Self::new(DEFAULT_JOURNAL_CAPACITY)
    }
}

impl ChargeJournal for MemoryJournal {
    fn push(&self, charge: SpendCharge) -> Result<Option<SpendCharge>, LedgerError> {
        let mut e = self.entries.lock().map_err(|_| LedgerError::Poisoned)?;
        if e.seq_of.contains_key(&charge.charge_id) {
            return Ok(None);
        }
        let dropped = e
            .overflow(self.capacity)
            .map(|c| c.charge_id.clone())
            .and_then(|id| e.take(&id));
        let seq = e.next;
        e.insert(seq, charge);
        Ok(dropped)
    }

    fn oldest(&self, n: usize) -> Vec<SpendCharge> {
        self.entries.lock().map(|e| e.oldest(n)).unwrap_or_default()
    }

    fn remove(&self, charge_ids: &[&str]) -> Result<(), LedgerError> {
        let mut e = self.entries.lock().map_err(|_| LedgerError::Poisoned)?;
        for id in charge_ids {
            e.take(id);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.by_seq.len())
    }

    fn oldest_except(&self, n: usize, skip: &dyn Fn(&SpendCharge) -> bool) -> Vec<SpendCharge> {
        self.entries
            .lock()
            .map(|e| e.oldest_except(n, skip))
            .unwrap_or_default()
    }

    fn mark_applied(&self, charge_id: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.mark_applied(charge_id);
        }
    }

    fn pending_spend(&self, counters: &[SpendCounter]) -> Vec<u64> {
        // A poisoned lock still holds the sums: counting them errs on the safe side.
        let e = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        e.pending_spend(counters)
    }
}

/// The redb table: key the charge id, value [`encode`]d (sequence number, micro-dollars,
/// unix millis, caller).
const JOURNAL_TABLE: redb::TableDefinition<'static, &'static str, &'static [u8]> =
    redb::TableDefinition::new("shared_state_journal");

/// Format version of a journal value.
const VERSION: u8 = 1;
/// Version, sequence, micro-dollars, millis, caller flag.
const FIXED_LEN: usize = 1 + 8 + 8 + 8 + 1;

/// A charge as a journal value: version `1`, then little-endian `u64`s for the sequence
/// number, micro-dollars and `at` in unix milliseconds, then `0` (no caller) or `1` and
/// the caller's UTF-8 bytes.
fn encode(seq: u64, charge: &SpendCharge) -> Vec<u8> {
    let millis = charge
        .at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    let caller = charge.caller.as_deref().map(str::as_bytes);
    let mut out = Vec::with_capacity(FIXED_LEN + caller.map_or(0, <[u8]>::len));
    out.push(VERSION);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&charge.micro_usd.to_le_bytes());
    out.extend_from_slice(&millis.to_le_bytes());
    out.push(u8::from(caller.is_some()));
    out.extend_from_slice(caller.unwrap_or_default());
    out
}

/// The sequence number and charge of a journal value (`None`: not one this code wrote).
fn decode(charge_id: &str, bytes: &[u8]) -> Option<(u64, SpendCharge)> {
    let word = |at: usize| -> Option<u64> {
        let b: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
        Some(u64::from_le_bytes(b))
    };
    if bytes.first() != Some(&VERSION) {
        return None;
    }
    let (seq, micro_usd, millis) = (word(1)?, word(9)?, word(17)?);
    let caller = match bytes.get(25)? {
        0 if bytes.len() == FIXED_LEN => None,
        1 => Some(
            std::str::from_utf8(bytes.get(FIXED_LEN..)?)
                .ok()?
                .to_owned(),
        ),
        _ => return None,
    };
    let at = UNIX_EPOCH.checked_add(Duration::from_millis(millis))?;
    let charge = SpendCharge {
        charge_id: charge_id.to_owned(),
        caller,
        micro_usd,
        at,
    };
    Some((seq, charge))
}

/// A journal in the spend ledger's redb database (table `shared_state_journal`, one row
/// per charge), bounded. Every push and removal is a committed write transaction; the
/// charges are mirrored in memory, so reading the journal does no I/O.
pub struct RedbJournal {
    path: PathBuf,
    db: Arc<redb::Database>,
    capacity: usize,
    /// Also serialises writers, so the mirror and the file agree.
    entries: Mutex<Entries>,
}

impl fmt::Debug for RedbJournal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbJournal")
            .field("path", &self.path)
            .field("capacity", &self.capacity)
            .finish_non_exhaustive()
    }
}

impl RedbJournal {
    /// Opens the journal in `ledger`'s database (creating its table), with the charges a
    /// previous run left, keeping at most `capacity` charges (at least one).
    pub fn open(ledger: &RedbLedger, capacity: usize) -> Result<Self, LedgerError> {
        let path = ledger.path().to_path_buf();
        let db = ledger.database();
        let db_err = |e: redb::Error| LedgerError::Database {
            path: path.clone(),
            source: Box::new(e),
        };
        let txn = db.begin_write().map_err(|e| db_err(e.into()))?;
        txn.open_table(JOURNAL_TABLE)
            .map_err(|e| db_err(e.into()))?;
        txn.commit().map_err(|e| db_err(e.into()))?;
        let mut entries = Entries::default();
        let read = db.begin_read().map_err(|e| db_err(e.into()))?;
        let table = read
            .open_table(JOURNAL_TABLE)
            .map_err(|e| db_err(e.into()))?;
        for row in table.iter().map_err(|e| db_err(e.into()))? {
            let (key, value) = row.map_err(|e| db_err(e.into()))?;
            match decode(key.value(), value.value()) {
                Some((seq, charge)) => entries.insert(seq, charge),
                None => tracing::warn!(path = %path.display(), charge_id = key.value(),
                    "shared-state journal: skipped a malformed charge"),
            }
        }
        if !entries.by_seq.is_empty() {
            tracing::warn!(path = %path.display(), charges = entries.by_seq.len(),
                "shared-state journal: charges from a previous run wait for the shared state");
        }
        Ok(Self {
            path,
            db,
            capacity,
            entries: Mutex::new(entries),
        })
    }

    fn db_error(&self, source: redb::Error) -> LedgerError {
        LedgerError::Database {
            path: self.path.clone(),
            source: Box::new(source),
        }
    }

    /// One write transaction: inserts `add` and removes `evict`.
    fn write(&self, add: Option<(&str, &[u8])>, evict: &[&str]) -> Result<(), LedgerError> {
        let txn = self.db.begin_write().map_err(|e| self.db_error(e.into()))?;
        {
            let mut table = txn
                .open_table(JOURNAL_TABLE)
                .map_err(|e| self.db_error(e.into()))?;
            for id in evict {
                table.remove(*id).map_err(|e| self.db_error(e.into()))?;
            }
            if let Some((id, value)) = add {
                table
                    .insert(id, value)
                    .map_err(|e| self.db_error(e.into()))?;
            }
        }
        txn.commit().map_err(|e| self.db_error(e.into()))
    }
}

impl ChargeJournal for RedbJournal {
    fn push(&self, charge: SpendCharge) -> Result<Option<SpendCharge>, LedgerError> {
        let mut e = self.entries.lock().map_err(|_| LedgerError::Poisoned)?;
        if e.seq_of.contains_key(&charge.charge_id) {
            return Ok(None);
        }
        let dropped = e.overflow(self.capacity).map(|c| c.charge_id.clone());
        let seq = e.next;
        let value = encode(seq, &charge);
        let evict: Vec<&str> = dropped.iter().map(String::as_str).collect();
        self.write(Some((&charge.charge_id, &value)), &evict)?;
        let dropped = dropped.and_then(|id| e.take(&id));
        e.insert(seq, charge);
        Ok(dropped)
    }

    fn oldest(&self, n: usize) -> Vec<SpendCharge> {
        self.entries.lock().map(|e| e.oldest(n)).unwrap_or_default()
    }

    fn remove(&self, charge_ids: &[&str]) -> Result<(), LedgerError> {
        let mut e = self.entries.lock().map_err(|_| LedgerError::Poisoned)?;
        let present: Vec<&str> = charge_ids
            .iter()
            .copied()
            .filter(|id| e.seq_of.contains_key(*id))
            .collect();
        if present.is_empty() {
            return Ok(());
        }
        self.write(None, &present)?;
        for id in present {
            e.take(id);
        }
        Ok(())
    }

    fn len(&self) -> usize {
        self.entries.lock().map_or(0, |e| e.by_seq.len())
    }

    fn oldest_except(&self, n: usize, skip: &dyn Fn(&SpendCharge) -> bool) -> Vec<SpendCharge> {
        self.entries
            .lock()
            .map(|e| e.oldest_except(n, skip))
            .unwrap_or_default()
    }

    fn mark_applied(&self, charge_id: &str) {
        if let Ok(mut e) = self.entries.lock() {
            e.mark_applied(charge_id);
        }
    }

    fn pending_spend(&self, counters: &[SpendCounter]) -> Vec<u64> {
        // A poisoned lock still holds the sums: counting them errs on the safe side.
        let e = self
            .entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        e.pending_spend(counters)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn charge(id: &str, caller: Option<&str>, micro_usd: u64) -> SpendCharge {
        SpendCharge {
            charge_id: id.to_owned(),
            caller: caller.map(str::to_owned),
            micro_usd,
            at: UNIX_EPOCH + Duration::from_millis(1_764_588_000_123),
        }
    }

    fn ids(charges: &[SpendCharge]) -> Vec<&str> {
        charges.iter().map(|c| c.charge_id.as_str()).collect()
    }

    /// Push, oldest, remove and the bound, on any journal of capacity 3.
    fn exercise(j: &dyn ChargeJournal) {
        assert!(j.is_empty());
        j.push(charge("r:a:0", Some("team"), 5)).unwrap();
        j.push(charge("r:b:1", None, 7)).unwrap();
        j.push(charge("r:a:0", Some("team"), 5)).unwrap();
        assert_eq!(j.len(), 2, "a charge id is journaled once");
        assert_eq!(ids(&j.oldest(1)), ["r:a:0"]);
        assert_eq!(
            j.oldest(10),
            [charge("r:a:0", Some("team"), 5), charge("r:b:1", None, 7)]
        );
        j.remove(&["r:a:0", "not-there"]).unwrap();
        assert_eq!(ids(&j.oldest(10)), ["r:b:1"]);
        j.push(charge("r:c:2", Some("x"), 1)).unwrap();
        j.push(charge("r:d:3", Some("x"), 1)).unwrap();
        let dropped = j.push(charge("r:e:4", Some("x"), 1)).unwrap();
        assert_eq!(dropped.map(|c| c.charge_id).as_deref(), Some("r:b:1"));
        assert_eq!(ids(&j.oldest(10)), ["r:c:2", "r:d:3", "r:e:4"]);
        assert_eq!(j.len(), 3);
    }

    #[test]
    fn memory_journal_pushes_removes_and_drops_the_oldest_when_full() {
        exercise(&MemoryJournal::new(3));
    }

    /// The pending sums per counter: a charge counts from its push until it is marked
    /// applied or leaves the journal (removed or dropped when full), each once; skipping
    /// passes over the charges a replay leaves out.
    fn pending_sums(j: &dyn ChargeJournal) {
        let team = charge("r:a:0", Some("team"), 5).counters();
        let sums = |j: &dyn ChargeJournal| j.pending_spend(&team);
        j.push(charge("r:a:0", Some("team"), 5)).unwrap();
        j.push(charge("r:b:1", None, 7)).unwrap();
        j.push(charge("r:c:2", Some("team"), 11)).unwrap();
        // Caller day, global day, caller month, global month.
        assert_eq!(sums(j), [16, 23, 16, 23]);
        j.mark_applied("r:a:0");
        j.mark_applied("r:a:0");
        j.mark_applied("not-there");
        assert_eq!(
            sums(j),
            [11, 18, 11, 18],
            "an applied charge counts no more"
        );
        j.remove(&["r:a:0"]).unwrap();
        assert_eq!(sums(j), [11, 18, 11, 18], "nor is it taken away twice");
        let skip = |c: &SpendCharge| c.charge_id == "r:b:1";
        assert_eq!(ids(&j.oldest_except(1, &skip)), ["r:c:2"]);
        j.push(charge("r:d:3", None, 1)).unwrap();
        j.push(charge("r:e:4", None, 1)).unwrap();
        // Full (3): the oldest, r:b:1, was dropped and no longer counts.
        assert_eq!(ids(&j.oldest(10)), ["r:c:2", "r:d:3", "r:e:4"]);
        assert_eq!(sums(j), [11, 13, 11, 13]);
        j.remove(&["r:c:2", "r:d:3", "r:e:4"]).unwrap();
        assert_eq!(sums(j), [0, 0, 0, 0]);
    }

    #[test]
    fn journals_keep_the_unapplied_spend_per_counter() {
        pending_sums(&MemoryJournal::new(3));
        let (dir, path) = temp_ledger("pending");
        {
            let ledger = RedbLedger::open(&path).unwrap();
            pending_sums(&RedbJournal::open(&ledger, 3).unwrap());
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn temp_ledger(name: &str) -> (PathBuf, PathBuf) {
        let dir = std::env::temp_dir().join(format!("sy-journal-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spend.redb");
        (dir, path)
    }

    #[test]
    fn redb_journal_pushes_removes_drops_and_survives_reopening_the_file() {
        let (dir, path) = temp_ledger("reopen");
        {
            let ledger = RedbLedger::open(&path).unwrap();
            exercise(&RedbJournal::open(&ledger, 3).unwrap());
        }
        // A restart: the file holds what was journaled, in order, and new charges go last.
        let ledger = RedbLedger::open(&path).unwrap();
        let j = RedbJournal::open(&ledger, 3).unwrap();
        assert_eq!(ids(&j.oldest(10)), ["r:c:2", "r:d:3", "r:e:4"]);
        assert_eq!(j.oldest(1), [charge("r:c:2", Some("x"), 1)]);
        j.remove(&["r:d:3"]).unwrap();
        j.push(charge("r:f:5", None, 9)).unwrap();
        drop((j, ledger));
        let ledger = RedbLedger::open(&path).unwrap();
        let j = RedbJournal::open(&ledger, 3).unwrap();
        assert_eq!(ids(&j.oldest(10)), ["r:c:2", "r:e:4", "r:f:5"]);
        j.remove(&["r:c:2", "r:e:4", "r:f:5"]).unwrap();
        drop((j, ledger));
        let ledger = RedbLedger::open(&path).unwrap();
        assert!(RedbJournal::open(&ledger, 3).unwrap().is_empty());
        drop(ledger);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn values_round_trip_and_foreign_bytes_are_refused() {
        let c = charge("r:x:1", Some("ünï\tcode"), u64::MAX);
        assert_eq!(decode("r:x:1", &encode(42, &c)), Some((42, c)));
        let none = charge("r:y:2", None, 0);
        let bytes = encode(7, &none);
        assert_eq!(bytes.len(), FIXED_LEN);
        assert_eq!(decode("r:y:2", &bytes), Some((7, none)));
        assert_eq!(decode("r:y:2", &bytes[..10]), None);
        assert_eq!(decode("r:y:2", b""), None);
        let mut wrong = bytes.clone();
        wrong[0] = 9;
        assert_eq!(decode("r:y:2", &wrong), None);
    }
}
