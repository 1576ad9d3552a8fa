//! Config reload: on SIGHUP and when the file changes (its size and modification time are
//! polled every second; it is read once they stayed the same for a second, and applied when
//! its checksum differs from the running config's). A file that does not parse, validate,
//! pass the listen policy or build is refused with the reason logged, and the running
//! config stays untouched (every check runs before live state is touched). A valid one
//! becomes a new router (live state of providers that stay is carried over) stored into
//! the gateway's router handle, so new requests use it while in-flight ones finish on the
//! old one; keys and limits are updated with `Gateway::set_config`. (`/metrics` leaves out
//! the gauges of providers the file removed: the gateway's handler.) Settings read only at
//! start (`server.listen`, `spend_ledger`, `shared_state`, `responses`) are not applied: a
//! change to one logs that a restart is needed.

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
        // The file's stamp now, before the server is announced: a change made right after
        // the announcement is a change (taken inside the task, it could be read after it).
        let path = self.current.path.clone();
        let mut last = path.as_deref().and_then(stamp);
        tokio::spawn(async move {
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

    /// Applies `next`. Every check runs first; only then is the router rebuilt, the one
    /// step that touches live state shared with the running router (queue limits,
    /// localities, gauges), and it validates the routing config before it does. So a
    /// refused file leaves the running config exactly as it was.
    fn apply(&mut self, next: Config, trigger: &'static str) -> Result<(), ConfigError> {
        self.check(&next)?;
        let current_router = self.stack.router.load_full();
        let built = wiring::reload_router(&current_router, &next)?;
        let server = &next.file.server;
        if next.file.spend_ledger != self.current.file.spend_ledger {
            tracing::warn!("spend_ledger changed: a restart is needed to use the new file");
        }
        let shared_changed = match (&next.file.shared_state, &self.current.file.shared_state) {
            (Some(a), Some(b)) => !a.same_as(b),
            (a, b) => a.is_some() != b.is_some(),
        };
        if shared_changed {
            tracing::warn!("shared_state changed: a restart is needed to use it");
        }
        if next.file.responses != self.current.file.responses {
            // The response store is built once at start with these bounds.
            tracing::warn!(
                "responses changed: a restart is needed to apply the response store's new \
                 limits (ttl_secs, max_entries, max_bytes, max_entry_bytes)"
            );
        }
        if server.listen != self.current.file.server.listen {
            tracing::warn!(
                running = %self.listen,
                configured = %server.listen,
                "server.listen changed: a restart is needed to listen on the new address"
            );
        }
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
        let checksum = next.checksum.as_deref().unwrap_or("-");
        let (providers, routes, keys) = (
            next.file.providers.len(),
            next.file.routes.len(),
            next.file.server.keys.len(),
        );
        if keys == 0 && !self.current.file.server.keys.is_empty() {
            tracing::warn!(
                trigger,
                checksum,
                providers,
                routes,
                keys,
                "config reloaded WITHOUT ANY API KEY: every key was removed, requests are no \
                 longer authenticated"
            );
        } else {
            tracing::info!(
                trigger,
                checksum,
                providers,
                routes,
                keys,
                "config reloaded"
            );
        }
        self.current = next;
        Ok(())
    }

    /// What `next` must pass besides building: the listen policy, checked against the
    /// address actually in use.
    fn check(&self, next: &Config) -> Result<(), ConfigError> {
        let server = &next.file.server;
        switchyard_gateway::check_listen_policy(
            self.listen,
            !server.keys.is_empty(),
            server.insecure_listen,
        )
        .map_err(|e| ConfigError::new(config::ConfigErrorKind::Invalid, e.to_string()))
    }
}

fn refused(trigger: &'static str, e: &ConfigError) {
    tracing::error!(
        trigger,
        reason = e.reason_code(),
        "config reload refused, the running config stays: {e}"
    );
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_core::{ChatRequest, ErrorKind, Message, PrivacyClass};
    use switchyard_router::MemoryLedger;
    use switchyard_testkit::{Delays, Script, TestUpstream, UpstreamConfig};

    use super::*;

    const WAIT: Duration = Duration::from_secs(5);

    /// One OpenAI-compatible provider `local` at `base_url` serving `test-model`, and the
    /// route `chat` to `target`.
    fn config(base_url: &str, provider_extra: &str, server: &str, target: &str) -> Config {
        let text = format!(
            "{{ server: {{ {server} }},\n\
               providers: {{ local: {{ api: 'openai', base_url: '{base_url}', discover: false,\n\
                 models: [ {{ id: 'test-model' }} ], {provider_extra} }} }},\n\
               routes: {{ chat: {{ targets: ['{target}'] }} }} }}"
        );
        let file = config::parse_str(&text, &|_| None).unwrap();
        Config {
            file,
            path: None,
            checksum: Some(config::checksum(text.as_bytes())),
        }
    }

    fn chat(privacy: Option<PrivacyClass>) -> ChatRequest {
        let mut r = ChatRequest::new("chat", vec![Message::user("Hi")]);
        r.meta.privacy = privacy;
        r
    }

    #[tokio::test]
    async fn a_reload_refused_by_the_listen_check_leaves_live_state_untouched() {
        // The first answer takes a while, so one request can hold the only slot.
        let upstream = TestUpstream::start(UpstreamConfig::default().default_script(
            Script::default().with_delays(Delays {
                before_headers: Duration::from_millis(1500),
                ..Delays::default()
            }),
        ))
        .await
        .unwrap();
        let base_url = upstream.openai_base_url();
        let running = config(
            &base_url,
            "locality: 'local', max_concurrency: 1, max_queue: 0, queue_timeout_ms: 100",
            "keys: [ { id: 'k', token: 'sk-1' } ]",
            "local/test-model",
        );
        let (stack, _providers) =
            wiring::new_stack(&running, Arc::new(MemoryLedger::new()), None).unwrap();
        // Serving on every interface (`--listen`), which needs keys.
        let listen: SocketAddr = "0.0.0.0:4141".parse().unwrap();
        let mut reloader = Reloader::new(stack.clone(), running, listen, Vec::new());

        // The new file drops the keys (refused on 0.0.0.0), and would move the provider to
        // the cloud and raise its limits.
        let next = config(
            &base_url,
            "locality: 'cloud', max_concurrency: 4, max_queue: 16",
            "",
            "local/test-model",
        );
        let err = reloader.apply(next, "sighup").unwrap_err();
        assert!(err.to_string().contains("0.0.0.0"), "{err}");

        // Locality unchanged: a local-only request may still use the provider.
        let router = stack.router.load_full();
        let explained = router.explain(&chat(Some(PrivacyClass::LocalOnly)));
        assert!(
            explained.targets.iter().any(|t| t.included),
            "{explained:?}"
        );
        assert_eq!(
            explained.targets[0].target.locality,
            switchyard_core::Locality::Local
        );

        // Queue limits unchanged: one request in flight, no queue, so a second is refused.
        let first = {
            let router = Arc::clone(&router);
            tokio::spawn(async move { router.route(&chat(None)).await.map(|_| ()) })
        };
        tokio::time::timeout(WAIT, async {
            while upstream.chat_request_count() == 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap();
        let second = tokio::time::timeout(WAIT, router.route(&chat(None)))
            .await
            .unwrap();
        match second {
            Ok(_) => panic!("a second request got a slot: the refused reload raised the limits"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::QueueFull, "{e}"),
        }
        first.abort();
        upstream.shutdown().await;
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_reload_that_removes_every_key_warns() {
        let base_url = "http://127.0.0.1:9/v1";
        let with_keys =
            |keys: &str| config(base_url, "locality: 'local'", keys, "local/test-model");
        let running = with_keys("keys: [ { id: 'k', token: 'sk-1' } ]");
        let (stack, _providers) =
            wiring::new_stack(&running, Arc::new(MemoryLedger::new()), None).unwrap();
        let listen: SocketAddr = "127.0.0.1:4141".parse().unwrap();
        let mut reloader = Reloader::new(stack, running, listen, Vec::new());
        let buf = Buf::default();
        let out = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .with_writer(move || out.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            reloader
                .apply(with_keys("keys: [ { id: 'k', token: 'sk-2' } ]"), "sighup")
                .unwrap();
            reloader.apply(with_keys(""), "sighup").unwrap();
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<&str> = text
            .lines()
            .filter(|l| l.contains("config reloaded"))
            .collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(
            lines[0].contains("INFO") && lines[0].contains("keys=1"),
            "{text}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains("WITHOUT ANY API KEY"),
            "{text}"
        );
    }
}
