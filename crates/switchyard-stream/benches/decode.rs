//! Decode throughput of a realistic 10k-chunk Ollama NDJSON stream and OpenAI SSE stream
//! through the full decoders, beside a baseline that only splits lines and runs
//! `serde_json::from_slice` into the same wire structs; and one long SSE event arriving in
//! 64-byte chunks through our framer and through `eventsource-stream` (linear vs. not);
//! and one 20-chunk answer, fed frame by frame, as the reference mock upstream streams it.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventsource_stream::Eventsource;
use futures::StreamExt;
use switchyard_core::{ChatEvent, FinishReason, Timings, Usage};
use switchyard_stream::ollama::{OllamaStreamDecoder, OllamaStreamEncoder, OllamaWireChunk};
use switchyard_stream::openai::{OpenAiStreamDecoder, OpenAiStreamEncoder, OpenAiWireChunk};
use switchyard_stream::sse::SseFramer;

/// What a model streams: 10 000 chunks of a thinking preamble, short text tokens (some
/// with quotes, newlines and non-ASCII), and a tool call.
fn events() -> Vec<ChatEvent> {
    const WORDS: [&str; 8] = [
        " the",
        " weather",
        " in",
        " Tokyo",
        " is",
        " \"mild\"",
        ",\n",
        " café",
    ];
    let mut ev = Vec::with_capacity(10_010);
    for i in 0..1_500 {
        ev.push(ChatEvent::thinking(WORDS[i % WORDS.len()]));
    }
    for i in 0..8_490 {
        ev.push(ChatEvent::text(WORDS[(i * 3) % WORDS.len()]));
    }
    ev.push(ChatEvent::ToolCallStart {
        index: 0,
        id: "call_ab12cd34".into(),
        name: "get_weather".into(),
    });
    for frag in ["{\"city\":", " \"Tokyo\",", " \"unit\": \"celsius\"}"] {
        ev.push(ChatEvent::ToolCallArgs {
            index: 0,
            fragment: frag.into(),
        });
    }
    ev.push(ChatEvent::ToolCallEnd { index: 0 });
    ev.push(ChatEvent::Usage(Usage {
        prompt_tokens: 1_234,
        completion_tokens: 9_990,
        timings: Some(Timings {
            total_ns: 4_883_583_458,
            load_ns: 1_334_875,
            prompt_eval_ns: 342_546_000,
            eval_ns: 4_535_599_000,
        }),
        ..Usage::default()
    }));
    ev.push(ChatEvent::done(FinishReason::ToolCalls));
    ev
}

fn ollama_wire() -> Vec<u8> {
    let mut enc = OllamaStreamEncoder::new("qwen3:8b", "2025-06-01T10:00:00.123456789Z");
    let mut out = Vec::new();
    for e in &events() {
        enc.encode(e, &mut out);
    }
    out
}

fn openai_wire() -> Vec<u8> {
    let mut enc = OpenAiStreamEncoder::new(
        "gpt-4.1-mini",
        "chatcmpl-B9MHDbslfkBeAs8l4b",
        1_741_570_283,
        true,
    );
    let mut out = Vec::new();
    for e in &events() {
        enc.encode(e, &mut out);
    }
    out
}

/// HTTP bodies arrive in frames of a few KiB.
const NET_CHUNK: usize = 4096;

fn decode_streams(c: &mut Criterion) {
    let ollama = ollama_wire();
    let openai = openai_wire();
    let mut group = c.benchmark_group("decode_10k_chunks");

    group.throughput(Throughput::Bytes(ollama.len() as u64));
    let mut out = Vec::with_capacity(16_384);
    group.bench_function("ollama_full_decoder", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = OllamaStreamDecoder::with_id_seed(1);
            for chunk in ollama.chunks(NET_CHUNK) {
                dec.feed(chunk, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            black_box(out.len())
        });
    });
    group.bench_function("ollama_baseline_lines_from_slice", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &ollama) {
                let line = &ollama[start..nl];
                start = nl + 1;
                if line.is_empty() {
                    continue;
                }
                let chunk: OllamaWireChunk<'_> = serde_json::from_slice(line).unwrap();
                black_box(&chunk);
                n += 1;
            }
            black_box(n)
        });
    });

    group.throughput(Throughput::Bytes(openai.len() as u64));
    group.bench_function("openai_full_decoder", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = OpenAiStreamDecoder::with_id_seed(1);
            for chunk in openai.chunks(NET_CHUNK) {
                dec.feed(chunk, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            black_box(out.len())
        });
    });
    group.bench_function("openai_sse_framer_only", |b| {
        b.iter(|| {
            let mut framer = SseFramer::new();
            let mut n = 0usize;
            for chunk in openai.chunks(NET_CHUNK) {
                framer.push(chunk);
                while let Some(ev) = framer.next_event_ref() {
                    n += ev.unwrap().data.len();
                }
            }
            black_box(n)
        });
    });
    group.bench_function("openai_baseline_lines_from_slice", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &openai) {
                let line = &openai[start..nl];
                start = nl + 1;
                let Some(data) = line.strip_prefix(b"data: ") else {
                    continue;
                };
                if data == b"[DONE]" {
                    continue;
                }
                let chunk: OpenAiWireChunk<'_> = serde_json::from_slice(data).unwrap();
                black_box(&chunk);
                n += 1;
            }
            black_box(n)
        });
    });
    group.finish();

    // What `switchyard simulate` (and most servers) stream: plain-text content chunks,
    // which the decoder's fast path takes.
    let plain = openai_plain_wire();
    let mut group = c.benchmark_group("decode_10k_plain_text_chunks");
    group.throughput(Throughput::Bytes(plain.len() as u64));
    group.bench_function("openai_full_decoder", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = OpenAiStreamDecoder::with_id_seed(1);
            for chunk in plain.chunks(NET_CHUNK) {
                dec.feed(chunk, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            black_box(out.len())
        });
    });
    group.bench_function("openai_baseline_lines_from_slice", |b| {
        b.iter(|| {
            let mut n = 0usize;
            let mut start = 0;
            for nl in memchr::memchr_iter(b'\n', &plain) {
                let line = &plain[start..nl];
                start = nl + 1;
                let Some(data) = line.strip_prefix(b"data: ") else {
                    continue;
                };
                if data == b"[DONE]" {
                    continue;
                }
                let chunk: OpenAiWireChunk<'_> = serde_json::from_slice(data).unwrap();
                black_box(&chunk);
                n += 1;
            }
            black_box(n)
        });
    });
    group.finish();
}

/// 10 000 plain-text content chunks (no escapes), then the finish and usage chunks.
fn openai_plain_wire() -> Vec<u8> {
    const WORDS: [&str; 6] = [" the", " weather", " in", " Tokyo", " is", " mild"];
    let mut enc = OpenAiStreamEncoder::new(
        "gpt-4.1-mini",
        "chatcmpl-B9MHDbslfkBeAs8l4b",
        1_741_570_283,
        true,
    );
    let mut out = Vec::new();
    for i in 0..10_000 {
        enc.encode(&ChatEvent::text(WORDS[i % WORDS.len()]), &mut out);
    }
    enc.encode(
        &ChatEvent::Usage(Usage {
            prompt_tokens: 12,
            completion_tokens: 10_000,
            ..Usage::default()
        }),
        &mut out,
    );
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    out
}

/// One event whose data line is `size` bytes (a big tool-call argument).
fn long_event(size: usize) -> Vec<u8> {
    let mut ev = b"data: ".to_vec();
    ev.extend(std::iter::repeat_n(b'x', size));
    ev.extend_from_slice(b"\n\n");
    ev
}

fn long_sse_event(c: &mut Criterion) {
    let mut group = c.benchmark_group("sse_one_long_event_64b_chunks");
    group.sample_size(10);
    for size in [64 * 1024, 256 * 1024, 1024 * 1024] {
        let input = long_event(size);
        group.throughput(Throughput::Bytes(input.len() as u64));
        group.bench_with_input(
            BenchmarkId::new("switchyard_framer", size),
            &input,
            |b, input| {
                b.iter(|| {
                    let mut framer = SseFramer::new();
                    let mut n = 0;
                    for chunk in input.chunks(64) {
                        framer.push(chunk);
                        while let Some(ev) = framer.next_event_ref() {
                            n += ev.unwrap().data.len();
                        }
                    }
                    assert_eq!(n, size);
                    black_box(n)
                });
            },
        );
        group.bench_with_input(
            BenchmarkId::new("eventsource_stream", size),
            &input,
            |b, input| {
                b.iter(|| {
                    let chunks = input.chunks(64).map(Ok::<_, Infallible>);
                    let events = futures::executor::block_on(
                        futures::stream::iter(chunks)
                            .eventsource()
                            .collect::<Vec<_>>(),
                    );
                    let n: usize = events.into_iter().map(|e| e.unwrap().data.len()).sum();
                    assert_eq!(n, size);
                    black_box(n)
                });
            },
        );
    }
    group.finish();
}

/// Content chunks per answer, as the reference mock upstream streams them.
const ANSWER_CHUNKS: usize = 20;

/// The frames of a 20-chunk OpenAI SSE answer as the reference mock upstream writes them
/// (the same bytes as the router's `pipeline` bench): one frame per chunk, then the finish
/// chunk and `[DONE]`.
fn openai_answer_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = (0..ANSWER_CHUNKS)
        .map(|i| {
            format!(
                "data: {{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"tok{i} \"}},\"finish_reason\":null}}]}}\n\n"
            )
            .into_bytes()
        })
        .collect();
    frames.push(
        b"data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"bench\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n"
            .to_vec(),
    );
    frames
}

/// The frames of a 20-chunk Ollama NDJSON answer as the reference mock upstream writes them.
fn ollama_answer_frames() -> Vec<Vec<u8>> {
    let mut frames: Vec<Vec<u8>> = (0..ANSWER_CHUNKS)
        .map(|i| {
            format!(
                "{{\"model\":\"bench:7b\",\"created_at\":\"2026-03-14T10:00:00Z\",\"message\":{{\"role\":\"assistant\",\"content\":\"tok{i} \"}},\"done\":false}}\n"
            )
            .into_bytes()
        })
        .collect();
    frames.push(
        b"{\"model\":\"bench:7b\",\"created_at\":\"2026-03-14T10:00:00Z\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":10,\"eval_count\":20}\n"
            .to_vec(),
    );
    frames
}

/// One streamed answer of 20 content chunks, each upstream frame fed on its own (as the
/// gateway's upstream client does): the per-chunk cost the gateway pays.
fn decode_answer(c: &mut Criterion) {
    let openai = openai_answer_frames();
    let ollama = ollama_answer_frames();
    let mut group = c.benchmark_group("decode_20_chunk_answer");
    let mut out = Vec::with_capacity(64);
    group.bench_function("openai_sse", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = OpenAiStreamDecoder::with_id_seed(1);
            for frame in &openai {
                dec.feed(black_box(frame), &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            assert_eq!(out.len(), ANSWER_CHUNKS + 1);
            black_box(out.len())
        });
    });
    group.bench_function("openai_sse_framer_only", |b| {
        b.iter(|| {
            let mut framer = SseFramer::new();
            let mut n = 0usize;
            for frame in &openai {
                framer.push(black_box(frame));
                while let Some(ev) = framer.next_event_ref() {
                    n += ev.unwrap().data.len();
                }
            }
            black_box(n)
        });
    });
    group.bench_function("ollama_ndjson", |b| {
        b.iter(|| {
            out.clear();
            let mut dec = OllamaStreamDecoder::with_id_seed(1);
            for frame in &ollama {
                dec.feed(black_box(frame), &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
            assert_eq!(out.len(), ANSWER_CHUNKS + 2);
            black_box(out.len())
        });
    });
    group.finish();
}

criterion_group!(benches, decode_answer, decode_streams, long_sse_event);
criterion_main!(benches);
