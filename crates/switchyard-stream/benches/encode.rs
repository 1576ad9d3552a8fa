//! Encode throughput of a 10k-event answer for both stream encoders.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use switchyard_core::{ChatEvent, FinishReason, Usage};
use switchyard_stream::ollama::OllamaStreamEncoder;
use switchyard_stream::openai::OpenAiStreamEncoder;

/// 10 000 events: mostly short text deltas (what a model streams), some thinking,
/// and a tool call whose arguments arrive in fragments.
fn events() -> Vec<ChatEvent> {
    let mut ev = Vec::with_capacity(10_000);
    for i in 0..2_000 {
        ev.push(ChatEvent::thinking(format!("step {i} ")));
    }
    for i in 0..7_900 {
        ev.push(ChatEvent::text(if i % 7 == 0 {
            " \"quoted\"\n"
        } else {
            " token"
        }));
    }
    ev.push(ChatEvent::ToolCallStart {
        index: 0,
        id: "call_1".into(),
        name: "get_weather".into(),
    });
    ev.push(ChatEvent::ToolCallArgs {
        index: 0,
        fragment: "{\"city\":".into(),
    });
    for _ in 0..93 {
        ev.push(ChatEvent::ToolCallArgs {
            index: 0,
            fragment: "".into(),
        });
    }
    ev.push(ChatEvent::ToolCallArgs {
        index: 0,
        fragment: "\"Tokyo\"}".into(),
    });
    ev.push(ChatEvent::ToolCallEnd { index: 0 });
    ev.push(ChatEvent::Usage(Usage {
        prompt_tokens: 12,
        completion_tokens: 9_900,
        ..Usage::default()
    }));
    ev.push(ChatEvent::done(FinishReason::Stop));
    ev
}

fn bench(c: &mut Criterion) {
    let events = events();
    let mut group = c.benchmark_group("encode_10k_events");
    group.throughput(Throughput::Elements(events.len() as u64));
    let mut out = Vec::with_capacity(2 << 20);
    group.bench_function("ollama_ndjson", |b| {
        b.iter(|| {
            out.clear();
            let mut enc = OllamaStreamEncoder::new("qwen3:8b", "2025-01-01T00:00:00.000000Z");
            for e in &events {
                enc.encode(e, &mut out);
            }
            assert!(enc.is_done());
            black_box(out.len())
        });
    });
    group.bench_function("openai_sse", |b| {
        b.iter(|| {
            out.clear();
            let mut enc =
                OpenAiStreamEncoder::new("qwen3:8b", "chatcmpl-0123456789", 1_700_000_000, true);
            for e in &events {
                enc.encode(e, &mut out);
            }
            assert!(enc.is_done());
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
