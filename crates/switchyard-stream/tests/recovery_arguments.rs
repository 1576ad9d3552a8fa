//! Tool calls recovered from text keep their arguments as the model wrote them: an integer
//! beyond 64 bits, `1.0`, spacing. The client gets that text (an OpenAI client's `arguments`
//! string, an Ollama client's `arguments` object), streamed and whole, through every text
//! format; a call whose arguments serde_json writes back unchanged keeps no copy.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchyard_core::{ChatEvent, ChatResponse, FinishReason};
use switchyard_stream::decoder::{EventDecoder, RecoveringDecoder, recover_tool_calls};
use switchyard_stream::ollama::{self, OllamaStreamDecoder, OllamaStreamEncoder};
use switchyard_stream::openai::{self, OpenAiStreamDecoder, OpenAiStreamEncoder};
use switchyard_stream::recovery::TextToolCallRecovery;

const TOOLS: [&str; 2] = ["lookup", "search"];

/// Arguments a `Value` cannot write back: a 30-digit integer becomes an `f64`
/// (`1.2345678901234568e29`). `1.0` stays `1.0`, as written.
const WRITTEN: &str = r#"{"order_id":123456789012345678901234567890,"ratio":1.0}"#;

/// The same with the spacing a small model writes.
const WRITTEN_SPACED: &str = r#"{"order_id": 123456789012345678901234567890, "ratio": 1.0}"#;

/// The text formats, each holding one `lookup` call with `args` as its arguments.
fn formats(args: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "hermes",
            format!("<tool_call>\n{{\"name\": \"lookup\", \"arguments\": {args}}}\n</tool_call>"),
        ),
        (
            "bare",
            format!("{{\"name\": \"lookup\", \"arguments\": {args}}}"),
        ),
        (
            "mistral list",
            format!("[TOOL_CALLS][{{\"name\": \"lookup\", \"arguments\": {args}}}]"),
        ),
        ("mistral named", format!("[TOOL_CALLS]lookup[ARGS]{args}")),
        (
            "python tag",
            format!("<|python_tag|>{{\"name\": \"lookup\", \"parameters\": {args}}}"),
        ),
        (
            "fenced",
            format!("Calling:\n```json\n{{\"name\": \"lookup\", \"arguments\": {args}}}\n```"),
        ),
    ]
}

/// The upstream API the text came through.
#[derive(Debug, Clone, Copy)]
enum Upstream {
    OpenAi,
    Ollama,
}

/// The upstream's streamed body carrying `content` in deltas of `size` bytes (ASCII).
fn streamed_body(upstream: Upstream, content: &str, size: usize) -> String {
    let pieces: Vec<&str> = content
        .as_bytes()
        .chunks(size)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let mut body = String::new();
    for piece in pieces {
        let piece = serde_json::to_string(piece).unwrap();
        match upstream {
            Upstream::OpenAi => body.push_str(&format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"content\":{piece}}},\"finish_reason\":null}}]}}\n\n"
            )),
            Upstream::Ollama => body.push_str(&format!(
                "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":{piece}}},\"done\":false}}\n"
            )),
        }
    }
    match upstream {
        Upstream::OpenAi => body.push_str(
            "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n",
        ),
        Upstream::Ollama => body.push_str(
            "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n",
        ),
    }
    body
}

/// The events of a streamed answer carrying `content`, through recovery.
fn streamed(upstream: Upstream, content: &str, size: usize) -> Vec<ChatEvent> {
    let body = streamed_body(upstream, content, size);
    let recovery = Some(TextToolCallRecovery::with_id_seed(TOOLS, 1));
    let mut out = Vec::new();
    match upstream {
        Upstream::OpenAi => {
            let mut dec = RecoveringDecoder::new(OpenAiStreamDecoder::new(), recovery);
            for chunk in body.as_bytes().chunks(7) {
                dec.feed(chunk, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
        }
        Upstream::Ollama => {
            let mut dec = RecoveringDecoder::new(OllamaStreamDecoder::new(), recovery);
            for chunk in body.as_bytes().chunks(7) {
                dec.feed(chunk, &mut out).unwrap();
            }
            dec.finish(&mut out).unwrap();
        }
    }
    out
}

/// A whole answer carrying `content`, through recovery.
fn whole(upstream: Upstream, content: &str) -> ChatResponse {
    let content = serde_json::to_string(content).unwrap();
    let answer = match upstream {
        Upstream::OpenAi => openai::decode_response(
            format!(
                "{{\"choices\":[{{\"index\":0,\"message\":{{\"role\":\"assistant\",\"content\":{content}}},\"finish_reason\":\"stop\"}}]}}"
            )
            .as_bytes(),
        ),
        Upstream::Ollama => ollama::decode_response(
            format!(
                "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"content\":{content}}},\"done\":true,\"done_reason\":\"stop\"}}"
            )
            .as_bytes(),
        ),
    }
    .unwrap();
    recover_tool_calls(answer, Some(TextToolCallRecovery::with_id_seed(TOOLS, 1))).unwrap()
}

/// An OpenAI client's stream: each call's `arguments`, joined as the SDK joins them.
fn openai_stream_arguments(events: &[ChatEvent]) -> Vec<String> {
    let mut enc = OpenAiStreamEncoder::new("m", "chatcmpl-1", 1, false);
    let mut wire = Vec::new();
    events.iter().for_each(|e| enc.encode(e, &mut wire));
    let wire = String::from_utf8(wire).unwrap();
    assert!(wire.ends_with("data: [DONE]\n\n"), "{wire}");
    let mut calls: Vec<String> = Vec::new();
    for frame in wire.split("\n\n") {
        let Some(data) = frame.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        assert!(chunk.get("error").is_none(), "{data}");
        for tc in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = tc["index"].as_u64().unwrap() as usize;
            if calls.len() <= index {
                calls.resize(index + 1, String::new());
            }
            if let Some(args) = tc["function"]["arguments"].as_str() {
                calls[index].push_str(args);
            }
        }
    }
    calls
}

/// An OpenAI client's whole answer: each call's `arguments` string.
fn openai_whole_arguments(resp: &ChatResponse) -> Vec<String> {
    let mut wire = Vec::new();
    openai::encode_response(resp, "m", "chatcmpl-1", 1, &mut wire);
    let body: Value = serde_json::from_slice(&wire).unwrap();
    body["choices"][0]["message"]["tool_calls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tc| tc["function"]["arguments"].as_str().unwrap().to_owned())
        .collect()
}

/// An Ollama client's stream, as text (its `arguments` is an object: read as bytes).
fn ollama_stream_wire(events: &[ChatEvent]) -> String {
    let mut enc = OllamaStreamEncoder::new("m", "2025-01-01T00:00:00Z");
    let mut wire = Vec::new();
    events.iter().for_each(|e| enc.encode(e, &mut wire));
    String::from_utf8(wire).unwrap()
}

/// An Ollama client's whole answer, as text.
fn ollama_whole_wire(resp: &ChatResponse) -> String {
    let mut wire = Vec::new();
    ollama::encode_response(resp, "m", "2025-01-01T00:00:00Z", &mut wire);
    String::from_utf8(wire).unwrap()
}

/// The `"arguments":` member an Ollama client reads, `args` written as they are.
fn ollama_member(args: &str) -> String {
    format!("\"arguments\":{args}")
}

fn assert_recovered(events: &[ChatEvent], what: &str) {
    assert!(
        events.contains(&ChatEvent::done(FinishReason::ToolCalls)),
        "{what}: not recovered: {events:?}"
    );
}

#[test]
fn streamed_calls_reach_an_openai_client_as_written() {
    for args in [WRITTEN, WRITTEN_SPACED] {
        for (format, content) in formats(args) {
            for upstream in [Upstream::OpenAi, Upstream::Ollama] {
                for size in [3, 1000] {
                    let what = format!("{format} via {upstream:?} in pieces of {size}");
                    let events = streamed(upstream, &content, size);
                    assert_recovered(&events, &what);
                    assert_eq!(openai_stream_arguments(&events), [args], "{what}");
                }
            }
        }
    }
}

#[test]
fn streamed_calls_reach_an_ollama_client_as_written() {
    for args in [WRITTEN, WRITTEN_SPACED] {
        for (format, content) in formats(args) {
            for upstream in [Upstream::OpenAi, Upstream::Ollama] {
                let what = format!("{format} via {upstream:?}");
                let events = streamed(upstream, &content, 3);
                assert_recovered(&events, &what);
                let wire = ollama_stream_wire(&events);
                assert!(wire.contains(&ollama_member(args)), "{what}: {wire}");
                assert!(!wire.contains("e29"), "{what}: {wire}");
            }
        }
    }
}

#[test]
fn whole_answers_keep_the_written_arguments_for_both_clients() {
    for args in [WRITTEN, WRITTEN_SPACED] {
        for (format, content) in formats(args) {
            for upstream in [Upstream::OpenAi, Upstream::Ollama] {
                let what = format!("{format} via {upstream:?}");
                let resp = whole(upstream, &content);
                assert_eq!(resp.finish_reason, FinishReason::ToolCalls, "{what}");
                assert_eq!(resp.tool_calls.len(), 1, "{what}: {resp:?}");
                let call = &resp.tool_calls[0];
                assert_eq!(call.name, "lookup");
                assert_eq!(call.raw_arguments.as_deref(), Some(args), "{what}");
                assert_eq!(call.arguments["ratio"], json!(1.0), "{what}");
                assert_eq!(openai_whole_arguments(&resp), [args], "{what}");
                let wire = ollama_whole_wire(&resp);
                assert!(wire.contains(&ollama_member(args)), "{what}: {wire}");
            }
        }
    }
}

/// Some models write the arguments as a JSON string holding the object: the text inside
/// the string is what they wrote.
#[test]
fn arguments_in_a_json_string_keep_the_text_inside_it() {
    let inner = serde_json::to_string(WRITTEN_SPACED).unwrap();
    let content =
        format!("<tool_call>{{\"name\": \"lookup\", \"arguments\": {inner}}}</tool_call>");
    for upstream in [Upstream::OpenAi, Upstream::Ollama] {
        let events = streamed(upstream, &content, 5);
        assert_recovered(&events, "string arguments");
        assert_eq!(openai_stream_arguments(&events), [WRITTEN_SPACED]);
        let resp = whole(upstream, &content);
        assert_eq!(
            resp.tool_calls[0].raw_arguments.as_deref(),
            Some(WRITTEN_SPACED)
        );
        assert!(ollama_whole_wire(&resp).contains(&ollama_member(WRITTEN_SPACED)));
    }
}

/// Arguments serde_json writes back byte for byte (compact, keys in the written order, `1.0`)
/// keep no copy of the text; nor do absent, `null` or empty-string arguments.
#[test]
fn arguments_written_back_unchanged_keep_no_copy() {
    let same = r#"{"city":"Paris","ratio":1.0,"n":3}"#;
    for (format, content) in formats(same) {
        let resp = whole(Upstream::OpenAi, &content);
        assert_eq!(resp.tool_calls.len(), 1, "{format}: {resp:?}");
        assert_eq!(resp.tool_calls[0].raw_arguments, None, "{format}");
        assert_eq!(openai_whole_arguments(&resp), [same], "{format}");
        let events = streamed(Upstream::OpenAi, &content, 4);
        assert_eq!(openai_stream_arguments(&events), [same], "{format}");
    }
    for content in [
        "<tool_call>{\"name\": \"lookup\"}</tool_call>",
        "<tool_call>{\"name\": \"lookup\", \"arguments\": null}</tool_call>",
        "<tool_call>{\"name\": \"lookup\", \"arguments\": \"\"}</tool_call>",
        "<tool_call>{\"name\": \"lookup\", \"arguments\": \" {\\\"a\\\":1} \"}</tool_call>",
    ] {
        let resp = whole(Upstream::OpenAi, content);
        assert_eq!(resp.tool_calls.len(), 1, "{content}: {resp:?}");
        assert_eq!(resp.tool_calls[0].raw_arguments, None, "{content}");
    }
}

/// The recovered call's event carries the written text itself, so every consumer of the
/// events (the accumulator, each encoder) reads what the model wrote.
#[test]
fn the_arguments_event_carries_the_written_text() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    rec.push(
        ChatEvent::text(format!(
            "<tool_call>{{\"name\": \"lookup\", \"arguments\": {WRITTEN_SPACED}}}</tool_call>"
        )),
        &mut out,
    );
    rec.finish(&mut out);
    assert!(
        out.contains(&ChatEvent::ToolCallArgs {
            index: 0,
            fragment: WRITTEN_SPACED.into()
        }),
        "{out:?}"
    );
}

/// Several calls in one block, and the OpenAI-shaped wrapper: each call keeps its own text.
#[test]
fn each_call_of_a_block_keeps_its_own_text() {
    let same = r#"{"q":"x"}"#;
    let wrapped = serde_json::to_string(WRITTEN_SPACED).unwrap();
    for content in [
        format!(
            "[TOOL_CALLS][{{\"name\": \"lookup\", \"arguments\": {WRITTEN}}}, {{\"name\": \"search\", \"arguments\": {same}}}]"
        ),
        format!(
            "<|python_tag|>{{\"name\": \"lookup\", \"parameters\": {WRITTEN}}}; {{\"name\": \"search\", \"parameters\": {same}}}"
        ),
        format!(
            "<tool_call>{{\"type\": \"function\", \"function\": {{\"name\": \"lookup\", \"arguments\": {wrapped}}}}}</tool_call>\n<tool_call>{{\"name\": \"search\", \"arguments\": {same}}}</tool_call>"
        ),
    ] {
        let written = if content.contains("\"function\"") {
            WRITTEN_SPACED
        } else {
            WRITTEN
        };
        let resp = whole(Upstream::OpenAi, &content);
        let raws: Vec<Option<&str>> = resp
            .tool_calls
            .iter()
            .map(|c| c.raw_arguments.as_deref())
            .collect();
        assert_eq!(raws, [Some(written), None], "{content}");
        assert_eq!(openai_whole_arguments(&resp), [written, same], "{content}");
        let events = streamed(Upstream::Ollama, &content, 6);
        assert_eq!(
            openai_stream_arguments(&events),
            [written, same],
            "{content}"
        );
    }
}
