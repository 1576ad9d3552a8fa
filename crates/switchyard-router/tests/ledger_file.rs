#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The persistent spend ledger's file at start-up.

use std::time::SystemTime;

use switchyard_router::{RedbLedger, SpendLedger};

/// A spend ledger file cut short (a full disk, a copy interrupted, a crash of the
/// filesystem) must be refused with an error naming the file, not a panic: the ledger's
/// own error type is `ledger_database: <path>: <cause>` ("Opening, reading or writing the
/// ledger database failed", ledger.rs), `serve` turns it into a config error at
/// `spend_ledger` (wiring.rs `open_ledger`; the test `redb_ledger_reports_an_unusable_path`
/// checks the same for a path that cannot be opened). redb 2.6 asserts on such a file
/// (`page_manager.rs: storage.raw_file_len()? >= header.layout().len()`), so `open`
/// panics today.
#[test]
fn a_truncated_ledger_file_is_an_error_naming_the_file_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("sy-ledger-trunc-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spend.redb");
    {
        let ledger = RedbLedger::open(&path).unwrap();
        ledger.record(Some("a"), 5, SystemTime::now()).unwrap();
    }
    let whole = std::fs::read(&path).unwrap();
    std::fs::write(&path, &whole[..whole.len() / 2]).unwrap();

    let p = path.clone();
    let opened = std::panic::catch_unwind(move || RedbLedger::open(&p).map(|_| ()));
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(opened) = opened else {
        panic!("opening a truncated ledger file panicked instead of returning an error");
    };
    let err = opened.expect_err("a truncated ledger file opened as if it were whole");
    assert_eq!(err.reason_code(), "ledger_database");
    assert!(
        err.to_string().contains(path.to_str().unwrap()),
        "the error does not name the file: {err}"
    );
}

/// The same for a file whose pages after the header were overwritten (bit rot, another
/// program writing to it): an error naming the file, not a panic (see above).
#[test]
fn a_corrupt_ledger_file_is_an_error_naming_the_file_not_a_panic() {
    let dir = std::env::temp_dir().join(format!("sy-ledger-corrupt-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("spend.redb");
    {
        let ledger = RedbLedger::open(&path).unwrap();
        ledger.record(Some("a"), 5, SystemTime::now()).unwrap();
    }
    let mut bytes = std::fs::read(&path).unwrap();
    for b in bytes.iter_mut().skip(4096) {
        *b ^= 0x5a;
    }
    std::fs::write(&path, &bytes).unwrap();

    let p = path.clone();
    let opened = std::panic::catch_unwind(move || RedbLedger::open(&p).map(|_| ()));
    let _ = std::fs::remove_dir_all(&dir);
    let Ok(opened) = opened else {
        panic!("opening a corrupt ledger file panicked instead of returning an error");
    };
    let err = opened.expect_err("a corrupt ledger file opened as if it were whole");
    assert!(
        err.to_string().contains(path.to_str().unwrap()),
        "the error does not name the file: {err}"
    );
}
