//! `switchyard simulate`: a simulated model server (the testkit's scripted upstream) that
//! speaks both Ollama's native API and the OpenAI-compatible `/v1` API, so the gateway can
//! be tried, configured and load-tested without Ollama or any model.
//!
//! Without `--delay-ms` it runs in fast mode: every answer is one precomputed body, so the
//! server costs next to nothing and a load test measures what sits in front of it.

use std::time::Duration;

use switchyard_testkit::{Delays, ModelSpec, TestUpstream, UpstreamConfig};

use crate::cli::SimulateArgs;
use crate::serve::{EXIT_RUNTIME, shutdown_signal};

/// The upstream config `args` describe: fast mode without a delay, otherwise the reply
/// paced by `delay_ms` before the first chunk and between chunks.
pub(crate) fn upstream_config(args: &SimulateArgs) -> UpstreamConfig {
    let bench = UpstreamConfig::bench();
    let mut script = bench.default_script.clone();
    let delay = Duration::from_millis(args.delay_ms);
    script = script.with_delays(Delays {
        before_headers: Duration::ZERO,
        before_first_chunk: delay,
        between_chunks: delay,
    });
    UpstreamConfig {
        models: vec![ModelSpec::new(args.model.clone())],
        ..bench
    }
    .default_script(script)
    .fast(args.delay_ms == 0)
    .listen(args.listen)
}

/// Serves until SIGINT/SIGTERM; exit code 1 when the address cannot be bound.
pub(crate) async fn run(args: &SimulateArgs) -> u8 {
    let upstream = match TestUpstream::start(upstream_config(args)).await {
        Ok(u) => u,
        Err(e) => {
            eprintln!("switchyard: cannot listen on {}: {e}", args.listen);
            return EXIT_RUNTIME;
        }
    };
    println!(
        "switchyard simulate: model {model} at {ollama} (Ollama API) and {openai} (OpenAI API){mode}",
        model = args.model,
        ollama = upstream.base_url(),
        openai = upstream.openai_base_url(),
        mode = if args.delay_ms == 0 {
            ", fast mode".to_owned()
        } else {
            format!(", {} ms per chunk", args.delay_ms)
        },
    );
    shutdown_signal().await;
    upstream.shutdown().await;
    0
}
