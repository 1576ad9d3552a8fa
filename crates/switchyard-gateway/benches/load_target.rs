//! A load-test target: a fast-mode testkit upstream and the gateway in front of it (route
//! `chat` -> `up/bench`), for an external load generator (wrk, oha) to compare one proxy
//! hop through Switchyard with one through nginx in front of the same upstream.
//!
//! Does nothing unless `SWITCHYARD_LOAD_SECS` is set (so `cargo bench` stays quick):
//!
//! ```text
//! SWITCHYARD_LOAD_SECS=60 cargo bench -p switchyard-gateway --bench load_target
//! # prints: upstream=http://127.0.0.1:P1 gateway=http://127.0.0.1:P2
//! ```
//!
//! `SWITCHYARD_LOAD_UPSTREAM_PORT` fixes the upstream's port (for an nginx config).

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::json;
use switchyard_core::Locality;
use switchyard_gateway::{Gateway, GatewayConfig};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::{TestUpstream, UpstreamConfig};

fn main() {
    let Some(secs) = std::env::var("SWITCHYARD_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse::<u64>().ok())
    else {
        return;
    };
    let threads = std::env::var("SWITCHYARD_LOAD_THREADS")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
        .unwrap_or(1);
    // The upstream gets a runtime (and thread) of its own, so the gateway's threads do only
    // the gateway's work, as nginx's worker does only nginx's.
    let mut config = UpstreamConfig::bench();
    if let Some(port) = std::env::var("SWITCHYARD_LOAD_UPSTREAM_PORT")
        .ok()
        .and_then(|s| s.parse::<u16>().ok())
    {
        config = config.listen(([127, 0, 0, 1], port).into());
    }
    let (url_tx, url_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let upstream = TestUpstream::start(config).await.unwrap();
            url_tx.send(upstream.base_url()).unwrap();
            tokio::time::sleep(Duration::from_secs(secs + 1)).await;
            upstream.shutdown().await;
        });
    });
    let upstream_url = url_rx.recv().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let client = OllamaClient::new(OllamaConfig::new(upstream_url.clone())).unwrap();
        let mut slot = ProviderSlot::new("up", Arc::new(client), Locality::Local);
        slot.max_concurrency = 1024;
        slot.max_queue = 1024;
        let routes: RouterConfig =
            serde_json::from_value(json!({ "routes": { "chat": { "targets": ["up/bench"] } } }))
                .unwrap();
        let router = Router::new(routes, vec![slot], Arc::new(MemoryLedger::new())).unwrap();
        let gateway = Gateway::new(
            GatewayConfig::default(),
            Arc::new(ArcSwap::from_pointee(router)),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        println!("upstream={upstream_url} gateway=http://{addr}");
        let _ = tokio::time::timeout(
            Duration::from_secs(secs),
            gateway.serve(listener, std::future::pending()),
        )
        .await;
    });
}
