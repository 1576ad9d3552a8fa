//! How fast the bench-mode upstream answers, so that a gateway load bench is not measuring
//! the testkit: one request at a time over a kept-alive connection, and 32 in flight.
//!
//! `cargo bench -p switchyard-testkit --bench fast_upstream -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use switchyard_testkit::{TestUpstream, UpstreamConfig};

const OLLAMA_STREAM: &str = r#"{"model":"bench","messages":[{"role":"user","content":"hi"}]}"#;
const OPENAI_STREAM: &str = r#"{"model":"bench","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hi"}]}"#;

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let up = rt
        .block_on(TestUpstream::start(UpstreamConfig::bench()))
        .unwrap();
    let client = reqwest::Client::new();
    let mut group = c.benchmark_group("fast_upstream");
    for (name, path, body) in [
        ("ollama_stream", "/api/chat", OLLAMA_STREAM),
        ("openai_sse", "/v1/chat/completions", OPENAI_STREAM),
    ] {
        let url = format!("{}{path}", up.base_url());
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{name}/sequential"), |b| {
            b.to_async(&rt).iter(|| async {
                let r = client.post(&url).body(body).send().await.unwrap();
                r.bytes().await.unwrap()
            });
        });
        group.throughput(Throughput::Elements(32));
        group.bench_function(format!("{name}/32_in_flight"), |b| {
            b.to_async(&rt).iter(|| async {
                let all = (0..32).map(|_| async {
                    let r = client.post(&url).body(body).send().await.unwrap();
                    r.bytes().await.unwrap()
                });
                futures::future::join_all(all).await
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
