//! `switchyard serve`: loads the config, installs the Prometheus recorder, builds the
//! router and gateway, refuses an unsafe listen address, serves until SIGINT/SIGTERM, and
//! reloads on SIGHUP or when the file changes.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};
use switchyard_gateway::check_listen_policy;
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::config::Config;
use crate::reload::Reloader;
use crate::wiring;

/// Exit code: the config or the listen address was refused.
pub(crate) const EXIT_CONFIG: u8 = 2;
/// Exit code: the server could not start or failed.
pub(crate) const EXIT_RUNTIME: u8 = 1;

/// The server's worker threads: `--threads`, else half the CPU cores, at least one.
///
/// Measured with `bench/peers-switchyard.sh` on a 2-core machine where the load generator
/// and the upstream share the cores: one worker beat two on requests/s and on p99 (fewer
/// cross-thread wake-ups and less preemption by the upstream's own threads).
pub(crate) fn worker_threads(args: &ServeArgs) -> usize {
    match args.threads {
        Some(n) => usize::from(n),
        None => std::thread::available_parallelism()
            .map_or(1, |n| n.get() / 2)
            .max(1),
    }
}

/// Loads the config from `path`, or the built-in one when there is none.
pub(crate) fn load_config(path: Option<&PathBuf>) -> Result<Config, crate::config::ConfigError> {
    match path {
        Some(p) => crate::config::load_file(p),
        None => Ok(Config::builtin()),
    }
}

/// How long a counter or histogram series may go without an update before `/metrics`
/// drops it (it comes back, from zero, when recorded again). Gauges are kept: they are
/// set on change only.
pub(crate) const METRIC_IDLE_TIMEOUT: Duration = Duration::from_secs(3600);

/// How often the Prometheus recorder drains the samples recorded since the last time into
/// its histograms. Until then each sample is held (16 bytes): at 25,000 requests/s and
/// three histograms per request a second holds about 1.2 MB.
const METRIC_UPKEEP_EVERY: Duration = Duration::from_secs(1);

/// Bucket bounds (seconds) of `switchyard_gateway_overhead_seconds`: the gateway's own time
/// per request, from ten microseconds up.
const OVERHEAD_BUCKETS: &[f64] = &[
    0.000_01, 0.000_025, 0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025,
    0.05, 0.1, 0.25, 1.0,
];

/// Bucket bounds (seconds) of time to first token and request duration: from a warm
/// model's milliseconds to a cold CPU model's minutes.
const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0,
];

/// The recorder: every histogram is exposed as fixed buckets. (Summaries, the exporter's
/// default, keep a quantile sketch per series and window that grew to megabytes under
/// load; buckets are a few counters per series, and Prometheus can aggregate them.)
fn metrics_builder() -> Result<PrometheusBuilder, BuildError> {
    let mut builder = PrometheusBuilder::new().idle_timeout(
        metrics_util::MetricKindMask::COUNTER | metrics_util::MetricKindMask::HISTOGRAM,
        Some(METRIC_IDLE_TIMEOUT),
    );
    let bucketed = [
        (
            switchyard_gateway::GATEWAY_OVERHEAD_SECONDS,
            OVERHEAD_BUCKETS,
        ),
        (switchyard_router::metrics::TTFT_SECONDS, LATENCY_BUCKETS),
        (
            switchyard_router::metrics::REQUEST_DURATION_SECONDS,
            LATENCY_BUCKETS,
        ),
    ];
    for (name, bounds) in bucketed {
        builder = builder.set_buckets_for_metric(Matcher::Full(name.into()), bounds)?;
    }
    Ok(builder)
}

/// Installs the global Prometheus recorder (once per process) and a thread that drains
/// its samples into the histograms.
pub(crate) fn install_metrics() -> Option<PrometheusHandle> {
    let builder = metrics_builder().unwrap_or_else(|e| {
        tracing::warn!(error = %e, "histogram buckets refused; histograms are summaries");
        PrometheusBuilder::new()
    });
    match builder.install_recorder() {
        Ok(handle) => {
            // On a thread of its own, not a task: the upkeep drains every histogram sample
            // since the last one into its summary (tens of milliseconds under load), which
            // on the server's thread stalled every request in flight.
            let upkeep = handle.clone();
            let spawned = std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRIC_UPKEEP_EVERY);
                        upkeep.run_upkeep();
                    }
                });
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "no metrics upkeep thread; summaries are trimmed when /metrics is read");
            }
            Some(handle)
        }
        Err(e) => {
            tracing::warn!(error = %e, "the Prometheus recorder could not be installed; /metrics stays empty");
            None
        }
    }
}

/// Runs the gateway until a shutdown signal.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &ServeArgs) -> u8 {
    let _ = crate::nofile::raise();
    let config = match load_config(config_path.as_ref()) {
        Ok(c) => c.with_serve_defaults(),
        Err(e) => {
            tracing::error!(reason = e.reason_code(), "config refused: {e}");
            errln!("switchyard: {e}");
            return EXIT_CONFIG;
        }
    };
    // The listen policy for the address bound: `--listen` overrides a `server.listen` that
    // alone would be refused. From the file, the error names its line.
    let listen: SocketAddr = args.listen.unwrap_or(config.file.server.listen);
    let refused = match args.listen {
        Some(_) => {
            let has_keys = !config.file.server.keys.is_empty();
            check_listen_policy(listen, has_keys, config.file.server.insecure_listen)
                .err()
                .map(|e| (e.reason_code(), e.to_string()))
        }
        None => crate::config::check_listen(&config, listen)
            .err()
            .map(|e| (e.reason_code(), e.to_string())),
    };
    if let Some((reason, e)) = refused {
        tracing::error!(reason, "{e}");
        errln!("switchyard: {e}");
        return EXIT_CONFIG;
    }
    let metrics = install_metrics();
    let built = wiring::open_ledger(&config).and_then(|kept| {
        let built = wiring::new_stack(&config, kept.ledger, kept.journal)?;
        // With shared state the stack keeps stored responses there.
        if config.file.shared_state.is_none() {
            let _ = built.0.gateway.clone().with_response_store(kept.responses);
        }
        Ok(built)
    });
    let (stack, providers) = match built {
        Ok(s) => s,
        Err(e) => {
            let e = match &config.path {
                Some(p) => crate::config::locate_in_file(e, p),
                None => e,
            };
            tracing::error!(reason = e.reason_code(), "config refused: {e}");
            errln!("switchyard: {e}");
            return EXIT_CONFIG;
        }
    };
    let gateway = match metrics {
        Some(handle) => stack.gateway.clone().with_metrics_handle(handle),
        None => stack.gateway.clone(),
    };
    let listener = match TcpListener::bind(listen).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(%listen, error = %e, "cannot listen");
            errln!("switchyard: cannot listen on {listen}: {e}");
            return EXIT_RUNTIME;
        }
    };
    let discovery = wiring::spawn_discovery(&providers);
    let (warm, warm_timeout) = crate::config::build::warm_targets(&config.file);
    gateway.warm(warm, warm_timeout);
    let bound = listener.local_addr().unwrap_or(listen);
    let announce = format!(
        "switchyard {} listening on http://{bound}",
        env!("CARGO_PKG_VERSION")
    );
    let source = config.path.as_ref().map_or_else(
        || "built-in defaults".to_owned(),
        |p| p.display().to_string(),
    );
    let checksum = config.checksum.clone().unwrap_or_else(|| "-".to_owned());
    let counts = (
        config.file.providers.len(),
        config.file.routes.len(),
        config.file.server.keys.len(),
    );
    let reloader = Reloader::new(stack, config, listen, discovery);
    let reload_task = reloader.spawn();
    tracing::info!(
        config = %source,
        checksum = %checksum,
        providers = counts.0,
        routes = counts.1,
        keys = counts.2,
        "{announce}"
    );
    let result = gateway.serve(listener, shutdown_signal()).await;
    reload_task.abort();
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            0
        }
        Err(e) => {
            tracing::error!(reason = e.reason_code(), "{e}");
            errln!("switchyard: {e}");
            EXIT_RUNTIME
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown requested; running streams may finish within the grace period");
}
