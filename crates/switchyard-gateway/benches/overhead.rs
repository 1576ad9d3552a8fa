//! Gateway overhead: one chat request straight to a fast-mode testkit upstream, against
//! the same request through the gateway (router + real upstream client + encoders), plain
//! and streamed, on both APIs. The difference between `direct/*` and `gateway/*` is what
//! one proxy hop through Switchyard costs.
//!
//! `cargo bench -p switchyard-gateway --bench overhead -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use switchyard_core::Locality;
use switchyard_gateway::{Gateway, GatewayConfig};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::{TestUpstream, UpstreamConfig};

struct Setup {
    upstream: TestUpstream,
    gateway: String,
}

async fn setup() -> Setup {
    let upstream = TestUpstream::start(UpstreamConfig::bench()).await.unwrap();
    let client = OllamaClient::new(OllamaConfig::new(upstream.base_url())).unwrap();
    let mut slot = ProviderSlot::new("up", Arc::new(client), Locality::Local);
    slot.max_concurrency = 64;
    let config: RouterConfig =
        serde_json::from_value(json!({ "routes": { "chat": { "targets": ["up/bench"] } } }))
            .unwrap();
    let router = Router::new(config, vec![slot], Arc::new(MemoryLedger::new())).unwrap();
    let gateway = Gateway::new(
        GatewayConfig::default(),
        Arc::new(ArcSwap::from_pointee(router)),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { gateway.serve(listener, std::future::pending()).await });
    Setup {
        upstream,
        gateway: format!("http://{addr}"),
    }
}

async fn send(client: &reqwest::Client, url: &str, body: &serde_json::Value) {
    let response = client.post(url).json(body).send().await.unwrap();
    assert!(response.status().is_success());
    let bytes = response.bytes().await.unwrap();
    assert!(!bytes.is_empty());
}

fn overhead(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let setup = rt.block_on(setup());
    let client = reqwest::Client::builder()
        .no_proxy()
        .tcp_nodelay(true)
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let message = json!([{"role": "user", "content": "Hi"}]);
    let cases = [
        (
            "openai_plain",
            "/v1/chat/completions",
            json!({"stream": false, "messages": message}),
        ),
        (
            "openai_stream",
            "/v1/chat/completions",
            json!({"stream": true, "messages": message}),
        ),
        (
            "ollama_plain",
            "/api/chat",
            json!({"stream": false, "messages": message}),
        ),
        (
            "ollama_stream",
            "/api/chat",
            json!({"stream": true, "messages": message}),
        ),
    ];
    let mut group = c.benchmark_group("chat");
    for (name, path, body) in cases {
        let mut direct_body = body.clone();
        direct_body["model"] = json!("bench");
        let mut gateway_body = body;
        gateway_body["model"] = json!("chat");
        let direct_url = format!("{}{path}", setup.upstream.base_url());
        let gateway_url = format!("{}{path}", setup.gateway);
        group.bench_function(format!("direct/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| send(&client, &direct_url, &direct_body));
        });
        group.bench_function(format!("gateway/{name}"), |b| {
            b.to_async(&rt)
                .iter(|| send(&client, &gateway_url, &gateway_body));
        });
    }
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
