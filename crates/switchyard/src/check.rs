//! `switchyard config check [FILE]`: parses, validates and builds a config without
//! starting anything. Prints the checksum on success; the file, line, key path and reason
//! on error (exit code 2).

use std::path::PathBuf;

use crate::cli::CheckArgs;
use crate::config;
use crate::serve::EXIT_CONFIG;
use crate::wiring;

/// Checks the file named on the command line, or the `--config` one.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &CheckArgs) -> u8 {
    let Some(path) = args.file.clone().or(config_path) else {
        eprintln!(
            "switchyard: no config file given (config check FILE, --config FILE or SWITCHYARD_CONFIG)"
        );
        return EXIT_CONFIG;
    };
    let config = match config::load_file(&path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return EXIT_CONFIG;
        }
    };
    // Build everything (clients, router) too: CA files, headers and the router's own
    // rules are checked only there. Nothing is contacted.
    if let Err(e) = wiring::new_router(&config) {
        eprintln!("{}", config::locate_in_file(e, &path));
        return EXIT_CONFIG;
    }
    let f = &config.file;
    println!(
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
