//! Helpers shared by the router's integration tests: real clients against testkit
//! upstreams on loopback.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use switchyard_core::{ChatEvent, ChatRequest, Locality, Message, ModelInfo, Price, ProviderError};
use switchyard_http::{ClientConfig, Timeouts};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::{
    DecisionObserver, DecisionRecord, MemoryLedger, ProviderSlot, RoutedStream, Router,
    RouterConfig,
};

/// Bound on every await that could hang.
pub(crate) const LIMIT: Duration = Duration::from_secs(10);

pub(crate) fn client(first_token: Duration) -> ClientConfig {
    ClientConfig {
        timeouts: Timeouts {
            connect: Duration::from_millis(500),
            first_token,
            idle: Duration::from_secs(2),
            total: None,
        },
        ..ClientConfig::default()
    }
}

/// An Ollama-native provider at `base_url`.
pub(crate) fn ollama_at(
    id: &str,
    base_url: &str,
    locality: Locality,
    first_token: Duration,
) -> ProviderSlot {
    let mut config = OllamaConfig::new(base_url);
    config.client = client(first_token);
    config.locality = locality;
    let provider = OllamaClient::new(config).expect("ollama client");
    ProviderSlot::new(id, Arc::new(provider), locality)
}

/// An OpenAI-compatible provider at `base_url` (ending in `/v1`) with static, priced models
/// `(id, input_usd_per_mtok, output_usd_per_mtok)`.
pub(crate) fn openai_at(
    id: &str,
    base_url: &str,
    locality: Locality,
    models: &[(&str, f64, f64)],
) -> ProviderSlot {
    let infos: Vec<ModelInfo> = models
        .iter()
        .map(|(m, input, output)| ModelInfo {
            price: Some(Price {
                input_usd_per_mtok: *input,
                output_usd_per_mtok: *output,
                ..Price::default()
            }),
            ..ModelInfo::new(*m, locality)
        })
        .collect();
    let mut config = OpenAiConfig::new(base_url);
    config.client = client(Duration::from_secs(2));
    config.locality = locality;
    config.models = infos.clone();
    let provider = OpenAiClient::new(config).expect("openai client");
    let mut slot = ProviderSlot::new(id, Arc::new(provider), locality);
    slot.models = infos;
    slot
}

pub(crate) fn config(json: serde_json::Value) -> RouterConfig {
    serde_json::from_value(json).expect("router config")
}

pub(crate) fn build_router(
    json: serde_json::Value,
    slots: Vec<ProviderSlot>,
) -> (Router, Arc<Records>) {
    let records = Arc::new(Records::default());
    let router = Router::new(config(json), slots, Arc::new(MemoryLedger::new()))
        .expect("router")
        .with_observer(records.clone());
    (router, records)
}

pub(crate) fn request(model: &str) -> ChatRequest {
    ChatRequest::new(model, vec![Message::user("Hello")])
}

pub(crate) fn request_from(model: &str, caller: &str) -> ChatRequest {
    let mut r = request(model);
    r.meta.caller = Some(caller.to_owned());
    r
}

/// Routes with a bound.
pub(crate) async fn route(
    router: &Router,
    req: &ChatRequest,
) -> Result<RoutedStream, switchyard_router::RouteFailure> {
    tokio::time::timeout(LIMIT, router.route(req))
        .await
        .expect("route() did not return in time")
}

/// Reads a stream to its end: the text, every event, and the error item if any.
pub(crate) async fn drain(
    mut stream: RoutedStream,
) -> (String, Vec<ChatEvent>, Option<ProviderError>) {
    let mut text = String::new();
    let mut events = Vec::new();
    let mut error = None;
    let read = async {
        for _ in 0..10_000 {
            match stream.next().await {
                Some(Ok(ev)) => {
                    if let ChatEvent::TextDelta { text: t } = &ev {
                        text.push_str(t);
                    }
                    events.push(ev);
                }
                Some(Err(e)) => {
                    assert!(error.is_none(), "a second error item: {e}");
                    error = Some(e);
                }
                None => break,
            }
        }
    };
    tokio::time::timeout(LIMIT, read)
        .await
        .expect("stream did not end in time");
    (text, events, error)
}

/// Waits (bounded) until `cond` holds.
pub(crate) async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    for _ in 0..500 {
        if cond() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("timed out waiting for: {what}");
}

/// Collects every decision record.
#[derive(Debug, Default)]
pub(crate) struct Records(Mutex<Vec<DecisionRecord>>);

impl DecisionObserver for Records {
    fn on_decision(&self, record: &DecisionRecord) {
        self.0.lock().unwrap().push(record.clone());
    }
}

impl Records {
    pub(crate) fn all(&self) -> Vec<DecisionRecord> {
        self.0.lock().unwrap().clone()
    }

    pub(crate) fn last(&self) -> DecisionRecord {
        self.0
            .lock()
            .unwrap()
            .last()
            .cloned()
            .expect("no decision record")
    }

    pub(crate) fn len(&self) -> usize {
        self.0.lock().unwrap().len()
    }
}

/// The text the testkit's default script answers.
pub(crate) const DEFAULT_TEXT: &str = "Hello from the test upstream.";

/// `local`: an Ollama nothing listens for; `cloud`: `gpt-test` at `cloud_base_url`, priced
/// `usd_per_mtok` per prompt token (completion tokens free).
pub(crate) fn refused_local_and_priced_cloud(
    cloud_base_url: &str,
    usd_per_mtok: f64,
    first_token: Duration,
) -> Vec<ProviderSlot> {
    vec![
        ollama_at(
            "local",
            &format!("http://{}", switchyard_testkit::refused_addr()),
            Locality::Local,
            first_token,
        ),
        openai_at(
            "cloud",
            cloud_base_url,
            Locality::Cloud,
            &[("gpt-test", usd_per_mtok, 0.0)],
        ),
    ]
}
