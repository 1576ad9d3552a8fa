//! Decoding a long agent request (a coding agent's turn: a system prompt, 20 tools with
//! JSON schemas, 40 messages of text, tool calls and tool results) per client API.
//!
//! `cargo bench -p switchyard-stream --bench request -- --warm-up-time 1 --measurement-time 2`

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};

fn tools_openai() -> Vec<Value> {
    (0..20)
        .map(|i| {
            json!({"type": "function", "function": {
                "name": format!("tool_{i}"),
                "description": "Reads a file of the workspace and returns its text, with line numbers.",
                "parameters": {"type": "object", "properties": {
                    "path": {"type": "string", "description": "the file's path"},
                    "offset": {"type": "integer"}, "limit": {"type": "integer"}},
                    "required": ["path"]}}})
        })
        .collect()
}

fn openai_request() -> Vec<u8> {
    let mut messages =
        vec![json!({"role": "system", "content": "You are a careful coding agent. ".repeat(40)})];
    for i in 0..13 {
        messages.push(json!({"role": "user", "content": format!("Step {i}: look at src/lib.rs and fix the failing test, please.")}));
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [{"id": format!("call_{i}"), "type": "function",
            "function": {"name": "tool_1", "arguments": "{\"path\":\"src/lib.rs\",\"offset\":10}"}}]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "fn main() {\n    println!(\"hello\");\n}\n".repeat(20)}));
    }
    serde_json::to_vec(
        &json!({"model": "coder", "messages": messages, "tools": tools_openai(),
        "stream": true, "temperature": 0.2, "max_tokens": 4096, "user": "bench"}),
    )
    .unwrap()
}

fn anthropic_request() -> Vec<u8> {
    let tools: Vec<Value> = (0..20)
        .map(|i| json!({"name": format!("tool_{i}"),
            "description": "Reads a file of the workspace and returns its text, with line numbers.",
            "input_schema": {"type": "object", "properties": {
                "path": {"type": "string", "description": "the file's path"},
                "offset": {"type": "integer"}, "limit": {"type": "integer"}}, "required": ["path"]}}))
        .collect();
    let mut messages = Vec::new();
    for i in 0..13 {
        messages.push(json!({"role": "user", "content": [{"type": "text", "text": format!("Step {i}: look at src/lib.rs and fix the failing test, please.")}]}));
        messages.push(json!({"role": "assistant", "content": [{"type": "text", "text": "Reading it."},
            {"type": "tool_use", "id": format!("toolu_{i}"), "name": "tool_1", "input": {"path": "src/lib.rs", "offset": 10}}]}));
        messages.push(json!({"role": "user", "content": [{"type": "tool_result", "tool_use_id": format!("toolu_{i}"),
            "content": "fn main() {\n    println!(\"hello\");\n}\n".repeat(20)}]}));
    }
    messages.push(json!({"role": "user", "content": "Go on."}));
    serde_json::to_vec(&json!({"model": "coder", "max_tokens": 4096,
        "system": [{"type": "text", "text": "You are a careful coding agent. ".repeat(40)}],
        "messages": messages, "tools": tools, "stream": true, "metadata": {"user_id": "bench"}}))
    .unwrap()
}

fn decode_requests(c: &mut Criterion) {
    let mut group = c.benchmark_group("decode_agent_request");
    let openai = openai_request();
    group.throughput(Throughput::Bytes(openai.len() as u64));
    group.bench_function("openai", |b| {
        b.iter(|| switchyard_stream::openai::request::decode_request(&openai).unwrap());
    });
    let anthropic = anthropic_request();
    group.throughput(Throughput::Bytes(anthropic.len() as u64));
    group.bench_function("anthropic", |b| {
        b.iter(|| switchyard_stream::anthropic::request::decode_request(&anthropic).unwrap());
    });
    group.finish();
}

criterion_group!(benches, decode_requests);
criterion_main!(benches);
