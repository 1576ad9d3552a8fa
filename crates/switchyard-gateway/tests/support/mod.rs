//! Harness code shared by the gateway's integration tests: real clients for testkit
//! upstreams, routers, a gateway on 127.0.0.1:0, and plain HTTP calls in front of it.
//!
//! Each test binary compiles its own copy (`mod support;`), so once-per-process state such
//! as [`metrics_handle`] stays once per test binary, as before.

#![allow(dead_code)]
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;
use switchyard_core::{
    ChatRequest, ChatStream, ErrorKind, GenerateRequest, Locality, ModelInfo, Provider,
    ProviderError, unsupported,
};
use switchyard_gateway::{Gateway, GatewayConfig, GatewayError};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_testkit::TestUpstream;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a plain HTTP client waits for an answer.
pub(crate) const WAIT: Duration = Duration::from_secs(5);

/// Which API a testkit upstream is spoken to in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Ollama,
    OpenAi,
}

/// Client transport settings for a testkit upstream: connect 1 s, first token 2 s, idle
/// 2 s, no total deadline.
pub(crate) fn short_timeouts() -> ClientConfig {
    ClientConfig {
        timeouts: Timeouts {
            connect: Duration::from_secs(1),
            first_token: Duration::from_secs(2),
            idle: Duration::from_secs(2),
            total: None,
        },
        ..ClientConfig::default()
    }
}

/// A provider (a real client) for an upstream of `kind` with [`short_timeouts`].
pub(crate) fn provider(
    kind: Kind,
    upstream: &TestUpstream,
    locality: Locality,
) -> Arc<dyn Provider> {
    provider_with(kind, upstream, locality, short_timeouts(), false)
}

/// [`provider`] with the transport settings `client`, recovering tool calls written as
/// text when `recover`.
pub(crate) fn provider_with(
    kind: Kind,
    upstream: &TestUpstream,
    locality: Locality,
    client: ClientConfig,
    recover: bool,
) -> Arc<dyn Provider> {
    match kind {
        Kind::Ollama => {
            let mut config = OllamaConfig::new(upstream.base_url());
            config.client = client;
            config.text_tool_recovery = recover;
            config.locality = locality;
            Arc::new(OllamaClient::new(config).unwrap())
        }
        Kind::OpenAi => {
            let mut config = OpenAiConfig::new(upstream.openai_base_url());
            config.client = client;
            config.locality = locality;
            if recover {
                config.text_tool_recovery = switchyard_openai::TextRecovery::On;
            }
            Arc::new(OpenAiClient::new(config).unwrap())
        }
    }
}

/// A router over `slots` with the router configuration `config` (JSON) and a memory
/// ledger.
pub(crate) fn router_over(slots: Vec<ProviderSlot>, config: Value) -> Router {
    let config: RouterConfig = serde_json::from_value(config).unwrap();
    Router::new(config, slots, Arc::new(MemoryLedger::new())).unwrap()
}

/// A gateway configuration with a 2 s header read timeout and a 2 s shutdown grace.
pub(crate) fn gateway_config() -> GatewayConfig {
    gateway_config_with_grace(Duration::from_secs(2))
}

/// A gateway configuration with a 2 s header read timeout and `shutdown_grace`.
pub(crate) fn gateway_config_with_grace(shutdown_grace: Duration) -> GatewayConfig {
    GatewayConfig {
        header_read_timeout: Duration::from_secs(2),
        shutdown_grace,
        ..GatewayConfig::default()
    }
}

/// A gateway with `config` over `router` (behind a swappable pointer).
pub(crate) fn new_gateway(router: Router, config: GatewayConfig) -> Gateway {
    Gateway::new(config, Arc::new(ArcSwap::from_pointee(router)))
}

/// Serves `gateway` on 127.0.0.1:0 until the test's runtime ends; its base URL
/// (`http://127.0.0.1:<port>`).
pub(crate) async fn serve_until_runtime_ends(gateway: Gateway) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { gateway.serve(listener, std::future::pending()).await });
    format!("http://{addr}")
}

/// A gateway serving on 127.0.0.1:0 until `stop` is sent (or dropped).
pub(crate) struct Running {
    pub(crate) addr: SocketAddr,
    pub(crate) stop: oneshot::Sender<()>,
    /// The serving task: what [`Gateway::serve`] returned.
    pub(crate) task: JoinHandle<Result<(), GatewayError>>,
}

/// Serves `gateway` on 127.0.0.1:0 until [`Running::stop`] is sent or dropped.
pub(crate) async fn serve_until_stopped(gateway: Gateway) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        gateway
            .serve(listener, async move {
                let _ = stopped.await;
            })
            .await
    });
    Running { addr, stop, task }
}

/// The Prometheus recorder of this test binary (installed once).
pub(crate) fn metrics_handle() -> metrics_exporter_prometheus::PrometheusHandle {
    static HANDLE: OnceLock<metrics_exporter_prometheus::PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            metrics_exporter_prometheus::PrometheusBuilder::new()
                .install_recorder()
                .unwrap()
        })
        .clone()
}

/// A plain HTTP client (no proxy) that waits [`WAIT`] at most.
pub(crate) fn http() -> reqwest::Client {
    http_waiting(WAIT)
}

/// A plain HTTP client (no proxy) that waits `timeout` at most.
pub(crate) fn http_waiting(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .build()
        .unwrap()
}

/// Sends `request` and reads its body as JSON (whatever the status).
pub(crate) async fn send_json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

/// Sends `request` and reads its body as text (whatever the status).
pub(crate) async fn send_text(request: reqwest::RequestBuilder) -> String {
    request.send().await.unwrap().text().await.unwrap()
}

/// The events of a Responses API SSE body, each frame `event: <name>\ndata: <json>`:
/// (event name, data).
pub(crate) fn responses_events(body: &str) -> Vec<(String, Value)> {
    body.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let (event, data) = f.split_once('\n').unwrap();
            let event = event.strip_prefix("event: ").unwrap().to_owned();
            let data = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            (event, data)
        })
        .collect()
}

/// The error a fake provider gives for `models()` when it never lists its models.
pub(crate) fn no_listing() -> ProviderError {
    ProviderError::new(ErrorKind::Connect, "no listing")
}

/// A fake provider that never lists its models (`models()` fails with [`no_listing`]), is
/// always healthy, and answers every chat with the stream `answer` makes; completions too
/// when `completes`, else it refuses them as [`Provider`]'s default does.
#[derive(Debug)]
pub(crate) struct Unlisted {
    pub(crate) answer: fn() -> ChatStream,
    pub(crate) completes: bool,
}

#[async_trait::async_trait]
impl Provider for Unlisted {
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        Ok((self.answer)())
    }

    async fn generate(
        &self,
        _request: &GenerateRequest,
        model: &str,
    ) -> Result<ChatStream, ProviderError> {
        if self.completes {
            Ok((self.answer)())
        } else {
            Err(unsupported(format_args!("text completion with `{model}`")))
        }
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Err(no_listing())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}
