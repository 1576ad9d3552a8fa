//! What each client API is told about why an answer ended and how many tokens it took,
//! whatever the upstream said: finish reasons only from the client API's own set, a length
//! stop after tool calls kept as one, and prompt-cache tokens counted where the client API
//! counts them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Map, Value, json};
use switchyard_core::{ChatResponse, FinishReason, MessageExtras, ToolCall, Usage};
use switchyard_stream::anthropic::{self, AnthropicStreamEncoder};
use switchyard_stream::openai::{self, OpenAiStreamEncoder};
use switchyard_stream::responses::{Echo, ResponseHead, ResponsesStreamEncoder};

fn answer(finish_reason: FinishReason, calls: usize, usage: Usage) -> ChatResponse {
    ChatResponse {
        content: "Searching".to_owned(),
        tool_calls: (0..calls)
            .map(|i| ToolCall {
                id: format!("call_{i}"),
                name: "search".to_owned(),
                arguments: Map::from_iter([("q".to_owned(), json!("weather"))]),
                raw_arguments: None,
            })
            .collect(),
        finish_reason,
        usage: Some(usage),
        thinking: None,
        extras: MessageExtras::default(),
    }
}

/// The `data:` payloads of an SSE stream, `[DONE]` left out.
fn frames(wire: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(wire)
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// OpenAI chat, streamed (with the usage frame) and whole.
fn openai_client(resp: &ChatResponse) -> (Vec<Value>, Value) {
    let mut enc = OpenAiStreamEncoder::new("m", "chatcmpl-1", 1, true);
    let mut wire = Vec::new();
    resp.to_events()
        .iter()
        .for_each(|e| enc.encode(e, &mut wire));
    let mut whole = Vec::new();
    openai::encode_response(resp, "m", "chatcmpl-1", 1, &mut whole);
    (frames(&wire), serde_json::from_slice(&whole).unwrap())
}

/// Anthropic Messages, streamed and whole.
fn anthropic_client(resp: &ChatResponse) -> (Vec<Value>, Value) {
    let mut enc = AnthropicStreamEncoder::new("m", "msg_1", 7);
    let mut wire = Vec::new();
    resp.to_events()
        .iter()
        .for_each(|e| enc.encode(e, &mut wire));
    let mut whole = Vec::new();
    anthropic::encode_response(resp, "m", "msg_1", &mut whole);
    (frames(&wire), serde_json::from_slice(&whole).unwrap())
}

/// The Responses API's final response object.
fn responses_client(resp: &ChatResponse) -> Value {
    let head = ResponseHead {
        id: "resp_1".into(),
        created_at: 1,
        model: "m".into(),
        echo: Echo::default(),
        custom_tools: Vec::new(),
    };
    let mut enc = ResponsesStreamEncoder::new(head);
    let mut wire = Vec::new();
    resp.to_events()
        .iter()
        .for_each(|e| enc.encode(e, &mut wire));
    enc.final_response().unwrap().clone()
}

fn openai_finish(frames: &[Value]) -> Vec<String> {
    frames
        .iter()
        .filter_map(|f| f["choices"][0]["finish_reason"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn openai_clients_get_finish_reasons_from_openais_set_only() {
    // Anthropic's `pause_turn`, Ollama's `unload`: neither is an OpenAI finish reason.
    for upstream in ["pause_turn", "unload"] {
        for calls in [0, 1] {
            let resp = answer(
                FinishReason::Other(upstream.into()),
                calls,
                Usage::default(),
            );
            let (stream, whole) = openai_client(&resp);
            assert_eq!(
                openai_finish(&stream),
                ["stop"],
                "{upstream}, {calls} calls"
            );
            assert_eq!(whole["choices"][0]["finish_reason"], "stop", "{upstream}");
        }
    }
}

#[test]
fn a_length_stop_after_tool_calls_stays_a_length_stop() {
    let resp = answer(FinishReason::Length, 1, Usage::default());
    let (stream, whole) = openai_client(&resp);
    assert_eq!(openai_finish(&stream), ["length"]);
    assert_eq!(whole["choices"][0]["finish_reason"], "length");
    let (stream, whole) = anthropic_client(&resp);
    let delta = stream
        .iter()
        .find(|f| f["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "max_tokens");
    assert_eq!(whole["stop_reason"], "max_tokens");

    // A plain stop after calls is the model waiting for their results.
    let resp = answer(FinishReason::Stop, 1, Usage::default());
    let (stream, whole) = openai_client(&resp);
    assert_eq!(openai_finish(&stream), ["tool_calls"]);
    assert_eq!(whole["choices"][0]["finish_reason"], "tool_calls");
    let (stream, whole) = anthropic_client(&resp);
    let delta = stream
        .iter()
        .find(|f| f["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(whole["stop_reason"], "tool_use");
}

#[test]
fn prompt_cache_tokens_count_as_prompt_tokens_for_openai_and_responses_clients() {
    let usage = Usage {
        prompt_tokens: 5,
        completion_tokens: 3,
        cache_read_tokens: 4000,
        cache_creation_tokens: 20,
        ..Usage::default()
    };
    let resp = answer(FinishReason::Stop, 0, usage);
    let (stream, whole) = openai_client(&resp);
    let streamed = &stream.last().unwrap()["usage"];
    for u in [streamed, &whole["usage"]] {
        assert_eq!(u["prompt_tokens"], 4025, "{u}");
        assert_eq!(u["completion_tokens"], 3, "{u}");
        assert_eq!(u["total_tokens"], 4028, "{u}");
        assert_eq!(u["prompt_tokens_details"]["cached_tokens"], 4000, "{u}");
    }
    let response = responses_client(&resp);
    let u = &response["usage"];
    assert_eq!(u["input_tokens"], 4025, "{u}");
    assert_eq!(u["input_tokens_details"]["cached_tokens"], 4000, "{u}");
    assert_eq!(u["total_tokens"], 4028, "{u}");
    // Anthropic clients keep the cache counts apart, as Anthropic does.
    let (_, whole) = anthropic_client(&resp);
    assert_eq!(whole["usage"]["input_tokens"], 5);
    assert_eq!(whole["usage"]["cache_read_input_tokens"], 4000);

    // Without cache tokens the OpenAI usage object is as before: no details.
    let resp = answer(
        FinishReason::Stop,
        0,
        Usage {
            prompt_tokens: 5,
            completion_tokens: 3,
            ..Usage::default()
        },
    );
    let (_, whole) = openai_client(&resp);
    assert_eq!(
        whole["usage"],
        json!({"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8})
    );
}

/// Content blocks as an Anthropic client sees them: `(event type, block index)`.
fn block_events(frames: &[Value]) -> Vec<(String, u64)> {
    frames
        .iter()
        .filter(|f| {
            f["type"]
                .as_str()
                .is_some_and(|t| t.starts_with("content_block"))
        })
        .map(|f| {
            (
                f["type"].as_str().unwrap_or_default().to_owned(),
                f["index"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn anthropic_blocks_never_overlap_when_the_upstream_ends_its_calls_only_at_the_finish() {
    use switchyard_core::ChatEvent;
    // An OpenAI upstream's two calls, then text: it never says a call ended until the end.
    let events = [
        ChatEvent::ToolCallStart {
            index: 0,
            id: "call_a".into(),
            name: "search".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: "{\"q\":\"a\"}".into(),
        },
        ChatEvent::ToolCallStart {
            index: 1,
            id: "call_b".into(),
            name: "search".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 1,
            fragment: "{\"q\":\"b\"}".into(),
        },
        ChatEvent::text("done"),
        ChatEvent::ToolCallEnd { index: 0 },
        ChatEvent::ToolCallEnd { index: 1 },
        ChatEvent::done(FinishReason::ToolCalls),
    ];
    let mut enc = AnthropicStreamEncoder::new("m", "msg_1", 7);
    let mut wire = Vec::new();
    events.iter().for_each(|e| enc.encode(e, &mut wire));
    let frames = frames(&wire);
    let blocks = block_events(&frames);
    let mut open: Option<u64> = None;
    for (kind, index) in &blocks {
        match kind.as_str() {
            "content_block_start" => {
                assert!(
                    open.is_none(),
                    "block {index} starts inside {open:?}: {blocks:?}"
                );
                open = Some(*index);
            }
            "content_block_stop" => {
                assert_eq!(open, Some(*index), "{blocks:?}");
                open = None;
            }
            _ => assert_eq!(open, Some(*index), "a delta outside its block: {blocks:?}"),
        }
    }
    assert_eq!(open, None);
    assert_eq!(
        blocks
            .iter()
            .filter(|(k, _)| k == "content_block_start")
            .count(),
        3
    );
    assert!(frames.iter().all(|f| f["type"] != "error"), "{frames:?}");
    let delta = frames
        .iter()
        .find(|f| f["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
}
