//! `switchyard config check [FILE]`: parses, validates and builds a config without
//! starting anything, and looks at the `spend_ledger` path `serve` would open (creating
//! nothing). Prints the checksum on success; the file, line, key path and reason on error
//! (exit code 2).

use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::cli::CheckArgs;
use crate::config;
use crate::serve::EXIT_CONFIG;
use crate::wiring;

/// Checks the file named on the command line, or the `--config` one.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &CheckArgs) -> u8 {
    let Some(path) = args.file.clone().or(config_path) else {
        errln!(
            "switchyard: no config file given (config check FILE, --config FILE or SWITCHYARD_CONFIG)"
        );
        return EXIT_CONFIG;
    };
    let config = match config::load_file(&path) {
        Ok(c) => c,
        Err(e) => {
            errln!("{e}");
            return EXIT_CONFIG;
        }
    };
    match verify(&config) {
        Ok(None) => {}
        Ok(Some(note)) => errln!("note: {note}"),
        Err(e) => {
            errln!("{e}");
            return EXIT_CONFIG;
        }
    }
    let f = &config.file;
    outln!(
        "ok: {} ({}): {} providers, {} routes, {} keys, listen {}",
        path.display(),
        config.checksum.as_deref().unwrap_or("-"),
        f.providers.len(),
        f.routes.len(),
        f.server.keys.len(),
        f.server.listen
    );
    0
}

/// What a loaded config must pass besides parsing and validation, as `config check` and
/// the doctor check it: the listen policy for `server.listen`, everything built (clients
/// and router: CA files, headers, the router's rules, loops and tool globs are checked only
/// there; nothing is contacted), and the `spend_ledger` path. The error is located in the
/// file when there is one; `Ok(Some(note))` for a ledger folder a service manager creates.
pub(crate) fn verify(config: &config::Config) -> Result<Option<String>, config::ConfigError> {
    let located = |e: config::ConfigError| match &config.path {
        Some(p) => config::locate_in_file(e, p),
        None => e,
    };
    config::check_listen(config, config.file.server.listen)?;
    wiring::new_router(config).map_err(located)?;
    match &config.file.spend_ledger {
        Some(ledger) => check_spend_ledger(ledger).map_err(located),
        None => Ok(None),
    }
}

/// Folders a service manager creates when the service starts (systemd's `StateDirectory=`,
/// `CacheDirectory=`, `LogsDirectory=`, `RuntimeDirectory=`, as examples/deploy's unit
/// does for `/var/lib/switchyard`): a ledger folder missing under one of them is noted,
/// not refused, since it exists only once `serve` runs under that manager.
const SERVICE_MANAGED_ROOTS: [&str; 5] = [
    "/var/lib/",
    "/var/cache/",
    "/var/log/",
    "/run/",
    "/var/run/",
];

/// Whether `serve` could open (or create) the `spend_ledger` file at `ledger`, refused as
/// `serve` refuses it (`ledger_database: PATH: why`, at `spend_ledger`): a directory, a file
/// that cannot be opened for reading and writing, or a missing file whose folder does not
/// exist (under [`SERVICE_MANAGED_ROOTS`] a note is returned instead). Nothing is created
/// or written; whether an existing file holds a valid database is left to `serve`.
fn check_spend_ledger(ledger: &Path) -> Result<Option<String>, config::ConfigError> {
    let refuse = |why: String| {
        config::ConfigError::new(config::ConfigErrorKind::Invalid, why)
            .at(vec![config::Segment::Key("spend_ledger".to_owned())])
    };
    if ledger.as_os_str().is_empty() {
        return Err(refuse("must name a file".to_owned()));
    }
    let database = |why: &dyn std::fmt::Display| {
        refuse(format!("ledger_database: {}: {why}", ledger.display()))
    };
    // Opening an existing file for reading and writing (as the database does) neither
    // creates nor changes it; a directory is refused here ("Is a directory").
    match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(ledger)
    {
        Ok(_) => return Ok(None),
        Err(e) if e.kind() != ErrorKind::NotFound => return Err(database(&e)),
        Err(_) => {}
    }
    // No file yet: `serve` creates it, so its folder must be there.
    let folder = match ledger.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    match std::fs::metadata(folder) {
        Ok(m) if m.is_dir() => Ok(None),
        Ok(_) => Err(database(&format_args!(
            "{} is not a directory",
            folder.display()
        ))),
        Err(e)
            if e.kind() == ErrorKind::NotFound
                && folder.to_str().is_some_and(|f| {
                    SERVICE_MANAGED_ROOTS
                        .iter()
                        .any(|root| f.starts_with(root) && f.len() > root.len())
                }) =>
        {
            Ok(Some(format!(
                "spend_ledger: the folder {} does not exist here; `serve` needs it (a service \
                 manager creates it at start, e.g. systemd's StateDirectory=)",
                folder.display()
            )))
        }
        Err(e) => Err(database(&format_args!(
            "the folder {} cannot be used: {e}",
            folder.display()
        ))),
    }
}
