//! `xtask soak-client URL MODEL STREAMS CHUNKS`: the client side of `cargo xtask soak`
//! (`bench/soak.sh` runs it). Opens STREAMS concurrent streamed OpenAI chat requests at
//! `URL/v1/chat/completions` and checks that every one ends with `data: [DONE]` after exactly
//! CHUNKS content chunks (`"content":"tok…`). Prints one summary line
//! `soak-client: streams=N complete=N failed=N chunks=N` and exits non-zero when a stream
//! failed. Each stream is bounded by a generous deadline so the tool always stops; it asserts
//! nothing about speed.

use std::process::ExitCode;
use std::time::Duration;

/// How long one stream may take at most before it counts as failed (a bound, not a measure).
const STREAM_DEADLINE: Duration = Duration::from_secs(120);
/// Longest SSE line kept while it arrives; a longer one fails the stream.
const MAX_LINE: usize = 64 * 1024;

/// What one stream delivered.
#[derive(Debug, Default)]
struct Tally {
    chunks: u64,
    done: bool,
}

/// Parses the arguments and runs the streams on a small multi-thread runtime.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let [url, model, streams, chunks] = args else {
        eprintln!("usage: cargo xtask soak-client URL MODEL STREAMS CHUNKS");
        return ExitCode::from(2);
    };
    let (Ok(streams), Ok(chunks)) = (streams.parse::<usize>(), chunks.parse::<u64>()) else {
        eprintln!("soak-client: STREAMS and CHUNKS must be numbers");
        return ExitCode::from(2);
    };
    raise_nofile();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("soak-client: no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(url, model, streams, chunks))
}

/// Raises the open-files soft limit to the hard one: one socket per stream.
fn raise_nofile() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let raised = Rlimit {
        current: limit.maximum,
        maximum: limit.maximum,
    };
    if let Err(e) = setrlimit(Resource::Nofile, raised) {
        eprintln!("soak-client: could not raise the open-files limit: {e}");
    }
}

async fn run(url: &str, model: &str, streams: usize, chunks: u64) -> ExitCode {
    let client = match reqwest::Client::builder().no_proxy().build() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("soak-client: no HTTP client: {e}");
            return ExitCode::FAILURE;
        }
    };
    let endpoint = format!("{}/v1/chat/completions", url.trim_end_matches('/'));
    let body = serde_json::json!({
        "model": model,
        "stream": true,
        "messages": [{"role": "user", "content": "Say hello"}],
    });
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..streams {
        let (client, endpoint, body) = (client.clone(), endpoint.clone(), body.clone());
        tasks.spawn(async move {
            match tokio::time::timeout(STREAM_DEADLINE, one(&client, &endpoint, &body)).await {
                Ok(result) => result,
                Err(_) => Err(format!("not done after {STREAM_DEADLINE:?}")),
            }
        });
    }
    let (mut complete, mut failed, mut total) = (0usize, 0usize, 0u64);
    let mut errors = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined.map_err(|e| e.to_string()).and_then(|r| r);
        match outcome {
            Ok(t) if t.done && t.chunks == chunks => {
                complete += 1;
                total += t.chunks;
            }
            Ok(t) => {
                failed += 1;
                total += t.chunks;
                errors.push(format!("{} chunks, done: {}", t.chunks, t.done));
            }
            Err(e) => {
                failed += 1;
                errors.push(e);
            }
        }
    }
    for e in errors.iter().take(5) {
        eprintln!("soak-client: a stream failed: {e}");
    }
    println!("soak-client: streams={streams} complete={complete} failed={failed} chunks={total}");
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// One streamed request: counts the content chunks until `data: [DONE]`.
async fn one(
    client: &reqwest::Client,
    endpoint: &str,
    body: &serde_json::Value,
) -> Result<Tally, String> {
    let mut response = client
        .post(endpoint)
        .json(body)
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    let (mut tally, mut line) = (Tally::default(), Vec::new());
    while let Some(bytes) = response.chunk().await.map_err(|e| format!("body: {e}"))? {
        for piece in bytes.split_inclusive(|b| *b == b'\n') {
            line.extend_from_slice(piece);
            if line.len() > MAX_LINE {
                return Err(format!("a line longer than {MAX_LINE} bytes"));
            }
            if line.ends_with(b"\n") {
                count(&line, &mut tally);
                line.clear();
            }
        }
    }
    Ok(tally)
}

/// What a content chunk of the soak's answer carries (`tok0 `, `tok1 `, …).
const CONTENT: &[u8] = b"\"content\":\"tok";

/// Counts one complete SSE line.
fn count(line: &[u8], tally: &mut Tally) {
    let line = line.trim_ascii_end();
    if line == b"data: [DONE]" {
        tally.done = true;
    } else if line.starts_with(b"data: {") && line.windows(CONTENT.len()).any(|w| w == CONTENT) {
        tally.chunks += 1;
    }
}
