//! Spend accounting: the [`SpendLedger`] trait, an in-memory ledger and the persistent
//! default, a [redb](https://docs.rs/redb) database.
//!
//! Amounts are integer micro-dollars, so concurrent additions never lose a cent.
//! `record(caller, ..)` adds to the global total **and** to the caller's total;
//! `spent(None, ..)` is the global total, `spent(Some(c), ..)` the caller's.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use redb::ReadableTable;
use switchyard_core::civil::civil_date;

/// A budget window, in UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BudgetWindow {
    /// The calendar day.
    Day,
    /// The calendar month.
    Month,
}

/// A ledger failure.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// Opening, reading or writing the ledger database failed.
    #[error("ledger_database: {}: {source}", path.display())]
    Database {
        /// The database file.
        path: PathBuf,
        /// The database error.
        #[source]
        source: Box<redb::Error>,
    },
    /// A lock was poisoned by a panic elsewhere.
    #[error("ledger_poisoned: a thread panicked while holding the ledger lock")]
    Poisoned,
}

impl LedgerError {
    /// Stable reason code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            LedgerError::Database { .. } => "ledger_database",
            LedgerError::Poisoned => "ledger_poisoned",
        }
    }
}

/// Where spend is recorded. Implementations must be safe to call concurrently and must not
/// lose any amount.
pub trait SpendLedger: Send + Sync + fmt::Debug {
    /// Adds `micro_usd` spent at `at` to the global total and to `caller`'s total.
    fn record(
        &self,
        caller: Option<&str>,
        micro_usd: u64,
        at: SystemTime,
    ) -> Result<(), LedgerError>;
    /// Spend in the window containing `at`: global (`None`) or one caller's.
    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64;
}

/// The key of the window containing `at`: `2025-03-07` or `2025-03`.
pub(crate) fn window_key(window: BudgetWindow, at: SystemTime) -> String {
    let (y, m, d) = civil_date(at);
    match window {
        BudgetWindow::Day => format!("{y:04}-{m:02}-{d:02}"),
        BudgetWindow::Month => format!("{y:04}-{m:02}"),
    }
}

/// Totals per (scope, window key); scope "" is global, otherwise the caller id.
#[derive(Debug, Default)]
struct Totals {
    map: HashMap<(String, String), u64>,
}

impl Totals {
    /// The (scope, window key) pairs one record adds to.
    fn keys(caller: Option<&str>, at: SystemTime) -> Vec<(String, String)> {
        let mut keys = Vec::with_capacity(4);
        for window in [BudgetWindow::Day, BudgetWindow::Month] {
            let key = window_key(window, at);
            if let Some(c) = caller {
                keys.push((scope(c), key.clone()));
            }
            keys.push((String::new(), key));
        }
        keys
    }

    fn add(&mut self, caller: Option<&str>, micro: u64, at: SystemTime) {
        for key in Self::keys(caller, at) {
            let total = self.map.entry(key).or_default();
            *total = total.saturating_add(micro);
        }
    }

    fn get(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64 {
        let s = caller.map(scope).unwrap_or_default();
        self.map
            .get(&(s, window_key(window, at)))
            .copied()
            .unwrap_or(0)
    }
}

fn scope(caller: &str) -> String {
    format!("c:{caller}")
}

/// An in-memory ledger (spend resets on restart).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    totals: Mutex<Totals>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new() -> Self {
        Self::default()
    }
}

impl SpendLedger for MemoryLedger {
    fn record(
        &self,
        caller: Option<&str>,
        micro_usd: u64,
        at: SystemTime,
    ) -> Result<(), LedgerError> {
        let mut t = self.totals.lock().map_err(|_| LedgerError::Poisoned)?;
        t.add(caller, micro_usd, at);
        Ok(())
    }

    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64 {
        self.totals
            .lock()
            .map(|t| t.get(caller, window, at))
            .unwrap_or(0)
    }
}

/// The redb table: key `scope \t window` (scope empty for the global total, `c:<caller>`
/// otherwise; window `2025-03-07` or `2025-03`), value micro-dollars.
const SPEND_TABLE: redb::TableDefinition<'static, &'static str, u64> =
    redb::TableDefinition::new("spend_micro_usd");

/// The persistent default ledger: an embedded [redb](https://docs.rs/redb) database with
/// one total per (scope, window). Every `record` is one ACID write transaction, committed
/// (and fsynced) before it returns, so restarting the gateway does not reset spend and a
/// crash mid-write loses nothing that was acknowledged. Totals are mirrored in memory, so
/// [`SpendLedger::spent`] (asked on every planned request) does no I/O.
pub struct RedbLedger {
    path: PathBuf,
    db: Arc<redb::Database>,
    /// Also serialises writers, so the mirror and the file agree.
    totals: Mutex<Totals>,
}

impl fmt::Debug for RedbLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedbLedger")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn db_key(scope: &str, window_key: &str) -> String {
    format!("{scope}\t{window_key}")
}

impl RedbLedger {
    /// Opens (or creates) the ledger database at `path` and loads its totals.
    ///
    /// A damaged file (cut short by a full disk or an interrupted copy, pages overwritten)
    /// is an error naming it: redb asserts on some such files instead of returning an
    /// error, and that panic is caught here.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        match std::panic::catch_unwind(|| Self::open_unguarded(path.clone())) {
            Ok(opened) => opened,
            Err(panic) => {
                let why = panic
                    .downcast_ref::<&str>()
                    .map(|s| (*s).to_owned())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "the database library failed".to_owned());
                Err(LedgerError::Database {
                    path,
                    source: Box::new(redb::Error::Io(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!(
                            "the file is damaged or not a ledger ({why}); move it away to start a new one"
                        ),
                    ))),
                })
            }
        }
    }

    fn open_unguarded(path: PathBuf) -> Result<Self, LedgerError> {
        let db_err = |e: redb::Error| LedgerError::Database {
            path: path.clone(),
            source: Box::new(e),
        };
        let db = redb::Database::create(&path).map_err(|e| db_err(e.into()))?;
        let mut totals = Totals::default();
        {
            // Create the table on first use, then read every total back.
            let txn = db.begin_write().map_err(|e| db_err(e.into()))?;
            txn.open_table(SPEND_TABLE).map_err(|e| db_err(e.into()))?;
            txn.commit().map_err(|e| db_err(e.into()))?;
            let read = db.begin_read().map_err(|e| db_err(e.into()))?;
            let table = read.open_table(SPEND_TABLE).map_err(|e| db_err(e.into()))?;
            for row in table.iter().map_err(|e| db_err(e.into()))? {
                let (key, value) = row.map_err(|e| db_err(e.into()))?;
                match key.value().rsplit_once('\t') {
                    Some((scope, window)) => {
                        totals
                            .map
                            .insert((scope.to_owned(), window.to_owned()), value.value());
                    }
                    None => {
                        tracing::warn!(path = %path.display(), key = key.value(), "ledger: skipped a malformed key")
                    }
                }
            }
        }
        Ok(Self {
            path,
            db: Arc::new(db),
            totals: Mutex::new(totals),
        })
    }

    /// The open database, for other tables that belong in the same file (the gateway keeps
    /// stored Responses API responses there). redb opens a file once per process.
    pub fn database(&self) -> Arc<redb::Database> {
        Arc::clone(&self.db)
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write(&self, keys: &[(String, String)], micro: u64) -> Result<(), Box<redb::Error>> {
        let boxed = |e: redb::Error| Box::new(e);
        let txn = self.db.begin_write().map_err(|e| boxed(e.into()))?;
        {
            let mut table = txn.open_table(SPEND_TABLE).map_err(|e| boxed(e.into()))?;
            for (scope, window) in keys {
                let key = db_key(scope, window);
                let old = table
                    .get(key.as_str())
                    .map_err(|e| boxed(e.into()))?
                    .map(|v| v.value())
                    .unwrap_or(0);
                table
                    .insert(key.as_str(), old.saturating_add(micro))
                    .map_err(|e| boxed(e.into()))?;
            }
        }
        txn.commit().map_err(|e| boxed(e.into()))?;
        Ok(())
    }
}

impl SpendLedger for RedbLedger {
    fn record(
        &self,
        caller: Option<&str>,
        micro_usd: u64,
        at: SystemTime,
    ) -> Result<(), LedgerError> {
        if micro_usd == 0 {
            return Ok(());
        }
        let mut totals = self.totals.lock().map_err(|_| LedgerError::Poisoned)?;
        let keys = Totals::keys(caller, at);
        self.write(&keys, micro_usd)
            .map_err(|source| LedgerError::Database {
                path: self.path.clone(),
                source,
            })?;
        totals.add(caller, micro_usd, at);
        Ok(())
    }

    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64 {
        self.totals
            .lock()
            .map(|t| t.get(caller, window, at))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::time::{Duration, UNIX_EPOCH};

    fn day(days: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(days * 86_400 + 3600)
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_date(UNIX_EPOCH), (1970, 1, 1));
        // 2024-02-29 is day 19782.
        assert_eq!(civil_date(day(19_782)), (2024, 2, 29));
        assert_eq!(civil_date(day(19_783)), (2024, 3, 1));
        assert_eq!(civil_date(day(20_089)), (2025, 1, 1));
    }

    #[test]
    fn windows_and_scopes() {
        let l = MemoryLedger::new();
        l.record(Some("a"), 5, day(19_782)).unwrap();
        l.record(None, 7, day(19_782)).unwrap();
        l.record(Some("b"), 11, day(19_783)).unwrap();
        assert_eq!(l.spent(None, BudgetWindow::Day, day(19_782)), 12);
        assert_eq!(l.spent(Some("a"), BudgetWindow::Day, day(19_782)), 5);
        assert_eq!(l.spent(Some("b"), BudgetWindow::Day, day(19_782)), 0);
        assert_eq!(l.spent(None, BudgetWindow::Month, day(19_782)), 12);
        assert_eq!(l.spent(None, BudgetWindow::Month, day(19_783)), 11);
        assert_eq!(l.spent(Some("b"), BudgetWindow::Day, day(19_783)), 11);
    }

    fn hammer(ledger: Arc<dyn SpendLedger>) {
        let at = day(20_000);
        let threads: Vec<_> = (0..8)
            .map(|t| {
                let l = ledger.clone();
                std::thread::spawn(move || {
                    for i in 0..50u64 {
                        let caller = if t % 2 == 0 { "even" } else { "odd" };
                        l.record(Some(caller), i + 1, at).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // 8 threads x sum(1..=50) = 8 x 1275.
        assert_eq!(ledger.spent(None, BudgetWindow::Day, at), 10_200);
        assert_eq!(ledger.spent(Some("even"), BudgetWindow::Month, at), 5_100);
    }

    #[test]
    fn memory_ledger_concurrent_total() {
        hammer(Arc::new(MemoryLedger::new()));
    }

    #[test]
    fn redb_ledger_concurrent_total_survives_reopen() {
        let dir = std::env::temp_dir().join(format!("sy-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spend.redb");
        let _ = std::fs::remove_file(&path);
        hammer(Arc::new(RedbLedger::open(&path).unwrap()));
        // A restart: a new handle on the same file sees every micro-dollar.
        let reopened = RedbLedger::open(&path).unwrap();
        let at = day(20_000);
        assert_eq!(reopened.spent(None, BudgetWindow::Day, at), 10_200);
        assert_eq!(reopened.spent(Some("odd"), BudgetWindow::Day, at), 5_100);
        reopened.record(Some("we ird\tid"), 3, at).unwrap();
        drop(reopened);
        let again = RedbLedger::open(&path).unwrap();
        assert_eq!(again.spent(None, BudgetWindow::Day, at), 10_203);
        assert_eq!(again.spent(Some("we ird\tid"), BudgetWindow::Day, at), 3);
        assert_eq!(again.spent(Some("we ird"), BudgetWindow::Day, at), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn redb_ledger_reports_an_unusable_path() {
        let err = RedbLedger::open("/nonexistent-dir/for/sure/spend.redb").unwrap_err();
        assert_eq!(err.reason_code(), "ledger_database");
        assert!(
            err.to_string()
                .contains("/nonexistent-dir/for/sure/spend.redb")
        );
    }
}
