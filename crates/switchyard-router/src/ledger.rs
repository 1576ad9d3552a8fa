//! Spend accounting: the [`SpendLedger`] trait, an in-memory ledger and a persistent
//! file ledger (an fsynced append-only log with a checksum per record).
//!
//! Amounts are integer micro-dollars, so concurrent additions never lose a cent.
//! `record(caller, ..)` adds to the global total **and** to the caller's total;
//! `spent(None, ..)` is the global total, `spent(Some(c), ..)` the caller's.

use std::collections::HashMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

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
    /// Reading or writing the ledger file failed.
    #[error("ledger_io: {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A lock was poisoned by a panic elsewhere.
    #[error("ledger_poisoned: a thread panicked while holding the ledger lock")]
    Poisoned,
}

impl LedgerError {
    /// Stable reason code.
    pub fn reason_code(&self) -> &'static str {
        match self {
            LedgerError::Io { .. } => "ledger_io",
            LedgerError::Poisoned => "ledger_poisoned",
        }
    }
}

/// Where spend is recorded. Implementations must be safe to call concurrently and must not
/// lose any amount.
pub trait SpendLedger: Send + Sync + fmt::Debug {
    /// Adds `micro_usd` spent at `at` to the global total and to `caller`'s total.
    fn record(&self, caller: Option<&str>, micro_usd: u64, at: SystemTime)
    -> Result<(), LedgerError>;
    /// Spend in the window containing `at`: global (`None`) or one caller's.
    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64;
}

/// (year, month, day) in UTC of a time (before 1970 counts as 1970-01-01).
pub(crate) fn civil_date(at: SystemTime) -> (i64, u32, u32) {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let days = i64::try_from(secs / 86_400).unwrap_or(i64::MAX / 2);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, u32::try_from(m).unwrap_or(1), u32::try_from(d).unwrap_or(1))
}

/// The key of the window containing `at`: `2025-03-07` or `2025-03`.
fn window_key(window: BudgetWindow, at: SystemTime) -> String {
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
    fn add(&mut self, caller: Option<&str>, micro: u64, at: SystemTime) {
        for window in [BudgetWindow::Day, BudgetWindow::Month] {
            let key = window_key(window, at);
            let global = self.map.entry((String::new(), key.clone())).or_default();
            *global = global.saturating_add(micro);
            if let Some(c) = caller {
                let per = self.map.entry((scope(c), key)).or_default();
                *per = per.saturating_add(micro);
            }
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

/// A persistent ledger: one line per record, `unix_secs micro_usd caller_hex checksum`,
/// appended and fsynced before `record` returns. On open, every intact line is replayed; a
/// torn or corrupt line (a crash mid-write) is skipped and reported in the log. Restarting
/// the gateway therefore does not reset spend.
#[derive(Debug)]
pub struct FileLedger {
    path: PathBuf,
    inner: Mutex<FileInner>,
}

#[derive(Debug)]
struct FileInner {
    file: File,
    totals: Totals,
}

/// Longest caller id stored (longer ids are cut; they are key ids, short in practice).
const MAX_CALLER_BYTES: usize = 256;

impl FileLedger {
    /// Opens (or creates) the ledger at `path` and replays it.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, LedgerError> {
        let path = path.as_ref().to_path_buf();
        let io = |source| LedgerError::Io {
            path: path.clone(),
            source,
        };
        let mut totals = Totals::default();
        let mut needs_newline = false;
        if path.exists() {
            let reader = BufReader::new(File::open(&path).map_err(io)?);
            let mut corrupt = 0usize;
            for line in reader.split(b'\n') {
                let line = line.map_err(io)?;
                match parse_line(&line) {
                    Some((caller, micro, at)) => totals.add(caller.as_deref(), micro, at),
                    None if line.is_empty() => {}
                    None => corrupt += 1,
                }
            }
            if corrupt > 0 {
                tracing::warn!(path = %path.display(), corrupt, "ledger: skipped corrupt records");
            }
            let bytes = std::fs::read(&path).map_err(io)?;
            needs_newline = bytes.last().is_some_and(|b| *b != b'\n');
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        if needs_newline {
            // Close a torn last record so the next one starts on its own line.
            file.write_all(b"\n").map_err(io)?;
        }
        Ok(Self {
            path,
            inner: Mutex::new(FileInner { file, totals }),
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

fn checksum(data: &[u8]) -> u64 {
    // FNV-1a 64: detects torn and garbled lines (not an integrity guarantee against tampering).
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

fn format_line(caller: Option<&str>, micro: u64, at: SystemTime) -> String {
    let secs = at.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let caller_hex = match caller {
        Some(c) => {
            let mut end = c.len().min(MAX_CALLER_BYTES);
            while !c.is_char_boundary(end) {
                end -= 1;
            }
            format!("+{}", hex(&c.as_bytes()[..end]))
        }
        None => "-".to_owned(),
    };
    let body = format!("{secs} {micro} {caller_hex}");
    let sum = checksum(body.as_bytes());
    format!("{body} {sum:016x}\n")
}

type Parsed = (Option<String>, u64, SystemTime);

fn parse_line(line: &[u8]) -> Option<Parsed> {
    let text = std::str::from_utf8(line).ok()?;
    let (body, sum) = text.rsplit_once(' ')?;
    if u64::from_str_radix(sum, 16).ok()? != checksum(body.as_bytes()) {
        return None;
    }
    let mut parts = body.split(' ');
    let secs: u64 = parts.next()?.parse().ok()?;
    let micro: u64 = parts.next()?.parse().ok()?;
    let caller = match parts.next()? {
        "-" => None,
        c => Some(String::from_utf8(unhex(c.strip_prefix('+')?)?).ok()?),
    };
    if parts.next().is_some() {
        return None;
    }
    Some((
        caller,
        micro,
        UNIX_EPOCH + std::time::Duration::from_secs(secs),
    ))
}

impl SpendLedger for FileLedger {
    fn record(
        &self,
        caller: Option<&str>,
        micro_usd: u64,
        at: SystemTime,
    ) -> Result<(), LedgerError> {
        if micro_usd == 0 {
            return Ok(());
        }
        let line = format_line(caller, micro_usd, at);
        let mut inner = self.inner.lock().map_err(|_| LedgerError::Poisoned)?;
        let io = |source| LedgerError::Io {
            path: self.path.clone(),
            source,
        };
        inner.file.write_all(line.as_bytes()).map_err(io)?;
        inner.file.sync_data().map_err(io)?;
        inner.totals.add(caller, micro_usd, at);
        Ok(())
    }

    fn spent(&self, caller: Option<&str>, window: BudgetWindow, at: SystemTime) -> u64 {
        self.inner
            .lock()
            .map(|i| i.totals.get(caller, window, at))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

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
    fn file_ledger_concurrent_persists_and_recovers() {
        let dir = std::env::temp_dir().join(format!("sy-ledger-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spend.log");
        let _ = std::fs::remove_file(&path);
        hammer(Arc::new(FileLedger::open(&path).unwrap()));
        // A torn record at the end (crash mid-write) and a garbled one.
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"garbage line 1 2\n1700000000 99").unwrap();
        drop(f);
        let reopened = FileLedger::open(&path).unwrap();
        let at = day(20_000);
        assert_eq!(reopened.spent(None, BudgetWindow::Day, at), 10_200);
        assert_eq!(reopened.spent(Some("odd"), BudgetWindow::Day, at), 5_100);
        reopened.record(Some("we ird\nid"), 3, at).unwrap();
        drop(reopened);
        let again = FileLedger::open(&path).unwrap();
        assert_eq!(again.spent(None, BudgetWindow::Day, at), 10_203);
        assert_eq!(again.spent(Some("we ird\nid"), BudgetWindow::Day, at), 3);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
