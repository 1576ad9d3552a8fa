//! `switchyard simulate`: a simulated model server (the testkit's scripted upstream) that
//! speaks both Ollama's native API and the OpenAI-compatible `/v1` API, so the gateway can
//! be tried, configured and load-tested without Ollama or any model.
//!
//! Without `--delay-ms` it runs in fast mode: every answer is one precomputed body, so the
//! server costs next to nothing and a load test measures what sits in front of it.

use std::time::Duration;

use switchyard_testkit::{Delays, ModelSpec, Script, TestUpstream, UpstreamConfig};

use crate::cli::SimulateArgs;
use crate::serve::{EXIT_RUNTIME, shutdown_signal};

/// The upstream config `args` describe: fast mode without any delay, otherwise the reply
/// paced by `delay_ms` before the first chunk and between chunks (`chunk_delay_ms`, when
/// given, between chunks). `--chunks N` replaces the greeting by N chunks `tok0 `, `tok1 `, …
pub(crate) fn upstream_config(args: &SimulateArgs) -> UpstreamConfig {
    let bench = UpstreamConfig::bench();
    let script = match args.chunks {
        Some(n) => Script::text((0..n).map(|i| format!("tok{i} "))).with_usage(10, n),
        None => bench.default_script.clone(),
    };
    let first = Duration::from_millis(args.delay_ms);
    let between = Duration::from_millis(args.chunk_delay_ms.unwrap_or(args.delay_ms));
    let script = script.with_delays(Delays {
        before_headers: Duration::ZERO,
        before_first_chunk: first,
        between_chunks: between,
    });
    UpstreamConfig {
        models: vec![ModelSpec::new(args.model.clone())],
        ..bench
    }
    .default_script(script)
    .fast(first.is_zero() && between.is_zero())
    .listen(args.listen)
}

/// The banner's description of the pacing and length of the answers.
fn mode(args: &SimulateArgs) -> String {
    let between = args.chunk_delay_ms.unwrap_or(args.delay_ms);
    let pacing = if args.delay_ms == 0 && between == 0 {
        "fast mode".to_owned()
    } else {
        format!("{between} ms per chunk")
    };
    match args.chunks {
        Some(n) => format!("{pacing}, {n} chunks per answer"),
        None => pacing,
    }
}

/// Serves until SIGINT/SIGTERM; exit code 1 when the address cannot be bound.
pub(crate) async fn run(args: &SimulateArgs) -> u8 {
    let upstream = match TestUpstream::start(upstream_config(args)).await {
        Ok(u) => u,
        Err(e) => {
            errln!("switchyard: cannot listen on {}: {e}", args.listen);
            return EXIT_RUNTIME;
        }
    };
    outln!(
        "switchyard simulate: model {model} at {ollama} (Ollama API) and {openai} (OpenAI API), {mode}",
        model = args.model,
        ollama = upstream.base_url(),
        openai = upstream.openai_base_url(),
        mode = mode(args),
    );
    shutdown_signal().await;
    upstream.shutdown().await;
    0
}
