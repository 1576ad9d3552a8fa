//! The per-chunk pipeline of a streamed answer, per protocol pair: the upstream's wire bytes
//! decoded (OpenAI SSE or Ollama NDJSON, fed frame by frame as they arrive), routed (a
//! [`Router`] in front of a provider that replays those bytes: target choice, slot, the
//! decision record, the `RoutedStream` the gateway polls) and encoded for the client (OpenAI
//! SSE, Ollama NDJSON, Anthropic SSE, Responses SSE). One iteration is one 20-chunk answer,
//! what `../shared/bench/mock-upstream` streams; throughput is in chunks, so criterion's
//! `elem/s` is upstream chunks per second and its time / 20 is the cost per chunk (the
//! per-request routing work is spread over the 20 chunks, as it is in the gateway).
//! `codec/*` is the same without the router (decode -> encode only).
//!
//! `cargo bench -p switchyard-router --bench pipeline -- --warm-up-time 1 --measurement-time 3`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::hint::black_box;
use std::sync::Arc;

use async_trait::async_trait;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use futures::StreamExt;
use serde_json::json;
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, Locality, Message, ModelInfo, Provider, ProviderError,
};
use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
use switchyard_stream::anthropic::AnthropicStreamEncoder;
use switchyard_stream::decoder::EventDecoder;
use switchyard_stream::ollama::{OllamaStreamDecoder, OllamaStreamEncoder};
use switchyard_stream::openai::{OpenAiStreamDecoder, OpenAiStreamEncoder};
use switchyard_stream::responses::{ResponseHead, ResponsesStreamEncoder};

/// Content chunks per answer, as the reference upstream streams them.
const CHUNKS: usize = 20;

/// The upstream's protocol.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    OpenAi,
    Ollama,
}

/// The client's protocol.
#[derive(Debug, Clone, Copy)]
enum Client {
    OpenAi,
    Ollama,
    Anthropic,
    Responses,
}

/// The frames of a 20-chunk answer as the reference mock upstream writes them.
fn frames(upstream: Upstream) -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = match upstream {
        Upstream::OpenAi => (0..CHUNKS).map(|i| format!("data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n").into_bytes()).collect(),
        Upstream::Ollama => (0..CHUNKS).map(|i| format!("{{\"model\":\"bench:7b\",\"created_at\":\"2026-03-14T10:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"tok{i} \"}},\"done\":false}}\n").into_bytes()).collect(),
    };
    frames.push(match upstream {
        Upstream::OpenAi => b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n".to_vec(),
        Upstream::Ollama => b"{\"model\":\"bench:7b\",\"created_at\":\"2026-03-14T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":10,\"eval_count\":20}\n".to_vec(),
    });
    frames
}

/// Decodes `frames` fed one by one, as the upstream client does with what arrives.
fn decode(upstream: Upstream, frames: &[Vec<u8>]) -> Result<Vec<ChatEvent>, ProviderError> {
    let mut decoder: Box<dyn EventDecoder> = match upstream {
        Upstream::OpenAi => Box::new(OpenAiStreamDecoder::new()),
        Upstream::Ollama => Box::new(OllamaStreamDecoder::new()),
    };
    let mut events = Vec::with_capacity(CHUNKS + 4);
    for frame in frames {
        decoder.feed(frame, &mut events)?;
    }
    decoder.finish(&mut events)?;
    Ok(events)
}

/// A client-side encoder, as the gateway makes one per streamed answer.
enum Encoder {
    OpenAi(OpenAiStreamEncoder),
    Ollama(OllamaStreamEncoder),
    Anthropic(AnthropicStreamEncoder),
    Responses(Box<ResponsesStreamEncoder>),
}

impl Encoder {
    fn new(client: Client) -> Self {
        match client {
            Client::OpenAi => Self::OpenAi(OpenAiStreamEncoder::new(
                "bench",
                "chatcmpl-0123456789abcdef",
                1_700_000_000,
                false,
            )),
            Client::Ollama => Self::Ollama(OllamaStreamEncoder::new(
                "bench",
                "2026-03-14T10:00:00.000000Z",
            )),
            Client::Anthropic => Self::Anthropic(AnthropicStreamEncoder::new(
                "bench",
                "msg_0123456789abcdef",
                10,
            )),
            Client::Responses => {
                Self::Responses(Box::new(ResponsesStreamEncoder::new(ResponseHead {
                    id: "resp_0123456789abcdef".into(),
                    created_at: 1_700_000_000,
                    model: "bench".into(),
                    echo: switchyard_stream::responses::Echo::default(),
                    custom_tools: Vec::new(),
                })))
            }
        }
    }

    fn encode(&mut self, event: &ChatEvent, out: &mut Vec<u8>) {
        match self {
            Self::OpenAi(e) => e.encode(event, out),
            Self::Ollama(e) => e.encode(event, out),
            Self::Anthropic(e) => e.encode(event, out),
            Self::Responses(e) => e.encode(event, out),
        }
    }
}

/// A provider that answers every chat by decoding the recorded upstream frames.
#[derive(Debug)]
struct Replay {
    upstream: Upstream,
    frames: Vec<Vec<u8>>,
}

#[async_trait]
impl Provider for Replay {
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        let events = decode(self.upstream, &self.frames)?;
        Ok(Box::pin(futures::stream::iter(events.into_iter().map(Ok))))
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Ok(Vec::new())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

fn router(upstream: Upstream) -> Router {
    let provider = Replay {
        upstream,
        frames: frames(upstream),
    };
    let mut slot = ProviderSlot::new("up", Arc::new(provider), Locality::Local);
    slot.max_concurrency = 1024;
    let config: RouterConfig =
        serde_json::from_value(json!({ "routes": { "chat": { "targets": ["up/bench"] } } }))
            .unwrap();
    Router::new(config, vec![slot], Arc::new(MemoryLedger::new())).unwrap()
}

const PAIRS: [(&str, Upstream, Client); 6] = [
    ("openai_sse_to_openai_sse", Upstream::OpenAi, Client::OpenAi),
    (
        "ollama_ndjson_to_ollama_ndjson",
        Upstream::Ollama,
        Client::Ollama,
    ),
    (
        "openai_sse_to_ollama_ndjson",
        Upstream::OpenAi,
        Client::Ollama,
    ),
    (
        "ollama_ndjson_to_openai_sse",
        Upstream::Ollama,
        Client::OpenAi,
    ),
    (
        "openai_sse_to_anthropic_sse",
        Upstream::OpenAi,
        Client::Anthropic,
    ),
    (
        "openai_sse_to_responses_sse",
        Upstream::OpenAi,
        Client::Responses,
    ),
];

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let request = ChatRequest::new("chat", vec![Message::user("Say hello")]);
    let mut out = Vec::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("pipeline_20_chunks");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    for (name, upstream, client) in PAIRS {
        let router = router(upstream);
        group.bench_function(name, |b| {
            b.iter(|| {
                rt.block_on(async {
                    out.clear();
                    let mut encoder = Encoder::new(client);
                    let mut stream = router.route(&request).await.unwrap();
                    while let Some(event) = stream.next().await {
                        encoder.encode(&event.unwrap(), &mut out);
                    }
                });
                black_box(out.len())
            });
        });
    }
    group.finish();

    let mut group = c.benchmark_group("codec_20_chunks");
    group.throughput(Throughput::Elements(CHUNKS as u64));
    for (name, upstream, client) in PAIRS {
        let frames = frames(upstream);
        group.bench_function(name, |b| {
            b.iter(|| {
                out.clear();
                let mut encoder = Encoder::new(client);
                for event in decode(upstream, &frames).unwrap() {
                    encoder.encode(&event, &mut out);
                }
                black_box(out.len())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
