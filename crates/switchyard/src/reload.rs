//! Config reload: on SIGHUP and when the file changes (its size and modification time are
//! polled every second; it is read once they stayed the same for a second, and applied when
//! its checksum differs from the running config's). A file that does not parse, validate
//! or build is refused with the reason logged, and the running config stays. A valid one
//! becomes a new
//! router (live state of providers that stay is carried over) stored into the gateway's
//! router handle, so new requests use it while in-flight ones finish on the old one; keys
//! and limits are updated with `Gateway::set_config`.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::task::JoinHandle;

use crate::config::build;
use crate::config::{self, Config, ConfigError};
use crate::wiring::{self, Stack};

/// How often the file is polled.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

/// What the poller compares to notice a changed file cheaply.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

/// Owns the running config and applies reloads.
#[derive(Debug)]
pub(crate) struct Reloader {
    stack: Stack,
    current: Config,
    listen: SocketAddr,
    discovery: Vec<JoinHandle<()>>,
}

impl Reloader {
    /// A reloader for the running `stack`, built from `current`.
    pub(crate) fn new(
        stack: Stack,
        current: Config,
        listen: SocketAddr,
        discovery: Vec<JoinHandle<()>>,
    ) -> Self {
        Self {
            stack,
            current,
            listen,
            discovery,
        }
    }

    /// Watches for SIGHUP and file changes in a background task. Without a config file
    /// there is nothing to reload: SIGHUP is logged and ignored.
    /// Call it before announcing that the server listens: from then on a SIGHUP reloads
    /// instead of ending the process (the signal's default action).
    pub(crate) fn spawn(mut self) -> JoinHandle<()> {
        #[cfg(unix)]
        let mut hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGHUP; the file is still watched");
                None
            }
        };
        tokio::spawn(async move {
            let path = self.current.path.clone();
            let mut last = path.as_deref().and_then(stamp);
            let mut settling = false;
            let mut tick = tokio::time::interval(POLL_INTERVAL);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                #[cfg(unix)]
                let hangup = async {
                    match hup.as_mut() {
                        Some(s) => {
                            s.recv().await;
                        }
                        None => std::future::pending::<()>().await,
                    }
                };
                #[cfg(not(unix))]
                let hangup = std::future::pending::<()>();
                let trigger = tokio::select! {
                    () = hangup => "sighup",
                    _ = tick.tick() => "file_changed",
                };
                let Some(path) = &path else {
                    if trigger == "sighup" {
                        tracing::info!("SIGHUP: no config file to reload (built-in defaults)");
                    }
                    continue;
                };
                if trigger == "file_changed" {
                    // Reload once the file stopped changing for a tick, so a file still
                    // being written is not read half-way.
                    let now = stamp(path);
                    if now != last {
                        last = now;
                        settling = true;
                        continue;
                    }
                    if !settling {
                        continue;
                    }
                    settling = false;
                }
                self.reload(path, trigger);
            }
        })
    }

    /// Reads the file and applies it; logs and keeps the running config on any error.
    fn reload(&mut self, path: &Path, trigger: &'static str) {
        let next = match config::load_file(path) {
            Ok(c) => c.with_serve_defaults(),
            Err(e) => {
                refused(trigger, &e);
                return;
            }
        };
        if trigger == "file_changed" && next.checksum == self.current.checksum {
            return;
        }
        if let Err(e) = self.apply(next, trigger) {
            refused(trigger, &config::locate_in_file(e, path));
        }
    }

    fn apply(&mut self, next: Config, trigger: &'static str) -> Result<(), ConfigError> {
        let current_router = self.stack.router.load_full();
        let built = wiring::reload_router(&current_router, &next)?;
        let server = &next.file.server;
        if next.file.spend_ledger != self.current.file.spend_ledger {
            tracing::warn!("spend_ledger changed: a restart is needed to use the new file");
        }
        if server.listen != self.current.file.server.listen {
            tracing::warn!(
                running = %self.listen,
                configured = %server.listen,
                "server.listen changed: a restart is needed to listen on the new address"
            );
        }
        // The listen policy is checked against the address actually in use.
        switchyard_gateway::check_listen_policy(
            self.listen,
            !server.keys.is_empty(),
            server.insecure_listen,
        )
        .map_err(|e| ConfigError::new(config::ConfigErrorKind::Invalid, e.to_string()))?;
        let router = Arc::new(built.router);
        router.start_probes();
        self.stack.router.store(router);
        self.stack
            .gateway
            .set_config(build::gateway_config(&next.file));
        for task in self.discovery.drain(..) {
            task.abort();
        }
        self.discovery = wiring::spawn_discovery(&built.providers);
        tracing::info!(
            trigger,
            checksum = next.checksum.as_deref().unwrap_or("-"),
            providers = next.file.providers.len(),
            routes = next.file.routes.len(),
            keys = next.file.server.keys.len(),
            "config reloaded"
        );
        self.current = next;
        Ok(())
    }
}

fn refused(trigger: &'static str, e: &ConfigError) {
    tracing::error!(
        trigger,
        reason = e.reason_code(),
        "config reload refused, the running config stays: {e}"
    );
}
