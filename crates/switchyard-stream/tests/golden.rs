//! Golden tests: documented real payloads of Ollama (`docs/api.md`) and OpenAI (API
//! reference and function-calling guide; DeepSeek's `reasoning_content`; vLLM's and Ollama's `/v1` `reasoning`)
//! decode to the expected events, whole, byte by byte, and split at every point; the
//! encoders' output has the documented shape; error events end streams visibly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use serde_json::{Value, json};
use switchyard_core::{
    ChatEvent, ChatResponse, ErrorKind, FinishReason, OpaquePart, ProviderError, Timings, ToolCall,
    Usage,
};
use switchyard_stream::anthropic::{self, AnthropicStreamDecoder, AnthropicStreamEncoder};
use switchyard_stream::ollama::{self, OllamaStreamDecoder, OllamaStreamEncoder};
use switchyard_stream::openai::{self, OpenAiStreamDecoder, OpenAiStreamEncoder};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

type Run = Result<Vec<ChatEvent>, ProviderError>;
/// Events so far and the first error.
type Outcome = (Vec<ChatEvent>, Option<ProviderError>);

/// Feeds `parts` to a decoder; the events so far and the first error.
fn run_ollama(parts: &[&[u8]]) -> Outcome {
    let mut dec = OllamaStreamDecoder::with_id_seed(5);
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = dec.feed(p, &mut out) {
            return (out, Some(e));
        }
    }
    let err = dec.finish(&mut out).err();
    (out, err)
}

fn run_openai(parts: &[&[u8]]) -> Outcome {
    let mut dec = OpenAiStreamDecoder::with_id_seed(5);
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = dec.feed(p, &mut out) {
            return (out, Some(e));
        }
    }
    let err = dec.finish(&mut out).err();
    (out, err)
}

/// Merges adjacent text / thinking deltas so that different splits compare equal.
fn merged(events: Vec<ChatEvent>) -> Vec<ChatEvent> {
    let mut out: Vec<ChatEvent> = Vec::new();
    for ev in events {
        match (out.last_mut(), ev) {
            (Some(ChatEvent::TextDelta { text: a }), ChatEvent::TextDelta { text: b }) => {
                a.push_str(&b);
            }
            (Some(ChatEvent::ThinkingDelta { text: a }), ChatEvent::ThinkingDelta { text: b }) => {
                a.push_str(&b);
            }
            (_, ev) => out.push(ev),
        }
    }
    out
}

/// Decodes `bytes` whole, byte by byte and split at every single point; all must agree.
fn decode_every_way(bytes: &[u8], run: fn(&[&[u8]]) -> Outcome) -> Run {
    let (whole, err) = run(&[bytes]);
    let whole = merged(whole);
    let reason = err.as_ref().map(ProviderError::reason_code);
    let bytewise: Vec<&[u8]> = bytes.chunks(1).collect();
    let (events, e) = run(&bytewise);
    assert_eq!(merged(events), whole, "byte by byte");
    assert_eq!(e.as_ref().map(ProviderError::reason_code), reason);
    for cut in 0..=bytes.len() {
        let (events, e) = run(&[&bytes[..cut], &bytes[cut..]]);
        assert_eq!(merged(events), whole, "split at {cut}");
        assert_eq!(e.as_ref().map(ProviderError::reason_code), reason);
    }
    match err {
        Some(e) => Err(e),
        None => Ok(whole),
    }
}

fn start(index: u32, id: &str, name: &str) -> ChatEvent {
    ChatEvent::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }
}

fn args(index: u32, fragment: &str) -> ChatEvent {
    ChatEvent::ToolCallArgs {
        index,
        fragment: fragment.into(),
    }
}

fn usage(p: u32, c: u32) -> ChatEvent {
    ChatEvent::Usage(Usage {
        prompt_tokens: p,
        completion_tokens: c,
        ..Usage::default()
    })
}

#[test]
fn ollama_streamed_text() {
    let events = decode_every_way(&golden("ollama_text.ndjson"), run_ollama).unwrap();
    assert_eq!(
        events,
        vec![
            ChatEvent::text("The sky is blue é \"quoted\"\n"),
            ChatEvent::Usage(Usage {
                prompt_tokens: 26,
                completion_tokens: 282,
                timings: Some(Timings {
                    total_ns: 4_883_583_458,
                    load_ns: 1_334_875,
                    prompt_eval_ns: 342_546_000,
                    eval_ns: 4_535_599_000
                }),
                ..Usage::default()
            }),
            ChatEvent::done(FinishReason::Stop),
        ]
    );
}

#[test]
fn ollama_streamed_tool_call_without_id_gets_one_and_tool_calls_reason() {
    let events = decode_every_way(&golden("ollama_tool_call.ndjson"), run_ollama).unwrap();
    let id = switchyard_core::tool_call_id(5);
    assert_eq!(events[0], start(0, &id, "get_current_weather"));
    let ChatEvent::ToolCallArgs { fragment, .. } = &events[1] else {
        panic!("args expected: {events:?}")
    };
    assert_eq!(
        serde_json::from_str::<Value>(fragment).unwrap(),
        json!({"format": "celsius", "location": "Paris, FR"})
    );
    assert_eq!(events[2], ChatEvent::ToolCallEnd { index: 0 });
    assert!(matches!(
        events[3],
        ChatEvent::Usage(Usage {
            prompt_tokens: 122,
            completion_tokens: 33,
            ..
        })
    ));
    assert_eq!(events[4], ChatEvent::done(FinishReason::ToolCalls));
}

#[test]
fn ollama_two_calls_in_one_chunk_one_with_string_arguments() {
    let events = decode_every_way(&golden("ollama_parallel_calls.ndjson"), run_ollama).unwrap();
    assert_eq!(
        &events[..6],
        &[
            start(0, "call_ab12cd34", "get_weather"),
            args(0, r#"{"city":"Tokyo"}"#),
            ChatEvent::ToolCallEnd { index: 0 },
            start(1, "call_ef56gh78", "get_time"),
            args(1, r#"{"tz":"Asia/Tokyo"}"#),
            ChatEvent::ToolCallEnd { index: 1 },
        ]
    );
    assert_eq!(
        events.last(),
        Some(&ChatEvent::done(FinishReason::ToolCalls))
    );
}

#[test]
fn ollama_thinking_then_text_and_length() {
    let events = decode_every_way(&golden("ollama_thinking.ndjson"), run_ollama).unwrap();
    assert_eq!(
        events[0],
        ChatEvent::thinking("Okay, the user asks about strawberries.")
    );
    assert_eq!(events[1], ChatEvent::text("There are three r's."));
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Length)));
}

#[test]
fn ollama_error_line_midstream_is_a_classified_error() {
    let err = decode_every_way(&golden("ollama_error_midstream.ndjson"), run_ollama).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream);
    assert!(err.message().contains("unexpected EOF"), "{err}");
    let (events, _) = run_ollama(&[&golden("ollama_error_midstream.ndjson")]);
    assert_eq!(
        events,
        vec![ChatEvent::text("Once upon")],
        "output before the error kept"
    );
}

#[test]
fn ollama_stream_without_done_ended_early() {
    let err = decode_every_way(&golden("ollama_ended_early.ndjson"), run_ollama).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamEndedEarly);
    assert_eq!(err.reason_code(), "stream_ended_early");
}

#[test]
fn ollama_garbage_line_and_too_long_line() {
    let (_, err) = run_ollama(&[b"<html>502 Bad Gateway</html>\n"]);
    assert_eq!(err.unwrap().kind(), ErrorKind::MalformedStream);
    let mut dec = OllamaStreamDecoder::with_id_seed(1)
        .with_framer(switchyard_stream::ndjson::LineFramer::with_max_line(64));
    let mut out = Vec::new();
    let err = dec.feed(&[b'x'; 100], &mut out).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
    assert!(err.message().contains("64"), "{err}");
    // The decoder stays failed.
    assert!(dec.feed(b"\n", &mut out).is_err());
}

#[test]
fn ollama_not_found_error_is_model_not_found() {
    let (_, err) = run_ollama(&[br#"{"error":"model \"nope\" not found, try pulling it first"}"#]);
    assert_eq!(err.unwrap().kind(), ErrorKind::ModelNotFound);
}

#[test]
fn openai_streamed_text_with_usage_chunk() {
    let events = decode_every_way(&golden("openai_text.sse"), run_openai).unwrap();
    assert_eq!(
        events,
        vec![
            ChatEvent::text("Hello! How can I help?"),
            usage(9, 12),
            ChatEvent::done(FinishReason::Stop),
        ]
    );
}

#[test]
fn openai_streamed_tool_call_fragments() {
    let events = decode_every_way(&golden("openai_tool_call.sse"), run_openai).unwrap();
    assert_eq!(
        events[0],
        start(0, "call_DdmO9pD3xa9XTPNJ32zg2hcA", "get_weather")
    );
    let mut text = String::new();
    for ev in &events[1..events.len() - 2] {
        let ChatEvent::ToolCallArgs { index: 0, fragment } = ev else {
            panic!("{ev:?}")
        };
        text.push_str(fragment);
    }
    assert_eq!(text, r#"{"location":"Paris, France"}"#);
    assert_eq!(
        events[events.len() - 2],
        ChatEvent::ToolCallEnd { index: 0 }
    );
    assert_eq!(
        events.last(),
        Some(&ChatEvent::done(FinishReason::ToolCalls))
    );
}

#[test]
fn openai_two_interleaved_calls() {
    let events = decode_every_way(&golden("openai_parallel_calls.sse"), run_openai).unwrap();
    assert_eq!(
        events,
        vec![
            start(0, "call_a", "get_weather"),
            start(1, "call_b", "get_weather"),
            args(0, r#"{"location": "Paris"}"#),
            args(1, r#"{"location": "#),
            args(1, r#""Bogotá"}"#),
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::ToolCallEnd { index: 1 },
            usage(80, 40),
            ChatEvent::done(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn openai_reasoning_content_is_thinking() {
    let events = decode_every_way(&golden("openai_reasoning.sse"), run_openai).unwrap();
    assert_eq!(
        events,
        vec![
            ChatEvent::thinking("9.11 vs 9.8"),
            ChatEvent::text("9.8 is greater."),
            usage(13, 50),
            ChatEvent::done(FinishReason::Stop),
        ]
    );
}

/// Current vLLM and Ollama's `/v1` spell it `reasoning`: the same events.
#[test]
fn openai_reasoning_is_thinking() {
    let events = decode_every_way(&golden("openai_reasoning_vllm.sse"), run_openai).unwrap();
    assert_eq!(
        events,
        vec![
            ChatEvent::thinking("9.11 vs 9.8"),
            ChatEvent::text("9.8 is greater."),
            usage(13, 50),
            ChatEvent::done(FinishReason::Stop),
        ]
    );
}

/// Clients read one spelling or the other: the encoder writes both, streamed and whole,
/// and a decoder reading either gets the thinking once.
#[test]
fn openai_encoder_writes_both_reasoning_spellings() {
    let mut enc = OpenAiStreamEncoder::new("m", "c", 1, false);
    let mut out = Vec::new();
    enc.encode(&ChatEvent::thinking("hmm"), &mut out);
    enc.encode(&ChatEvent::text("42"), &mut out);
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    let first = String::from_utf8(out.clone()).unwrap();
    let first = first
        .split("\n\n")
        .next()
        .unwrap()
        .strip_prefix("data: ")
        .unwrap();
    let chunk: Value = serde_json::from_str(first).unwrap();
    assert_eq!(chunk["choices"][0]["delta"]["reasoning_content"], "hmm");
    assert_eq!(chunk["choices"][0]["delta"]["reasoning"], "hmm");
    let events = decode_every_way(&out, run_openai).unwrap();
    assert_eq!(events[0], ChatEvent::thinking("hmm"), "once, not twice");
    assert_eq!(events[1], ChatEvent::text("42"));

    let mut out = Vec::new();
    openai::encode_response(&sample_response(), "m", "c", 1, &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    let message = &v["choices"][0]["message"];
    assert_eq!(message["reasoning_content"], "user wants weather");
    assert_eq!(message["reasoning"], "user wants weather");
    for field in ["reasoning_content", "reasoning"] {
        let mut one = v.clone();
        let other = if field == "reasoning" {
            "reasoning_content"
        } else {
            "reasoning"
        };
        one["choices"][0]["message"]
            .as_object_mut()
            .unwrap()
            .remove(other);
        let back = openai::decode_response(&serde_json::to_vec(&one).unwrap()).unwrap();
        assert_eq!(
            back.thinking.as_deref(),
            Some("user wants weather"),
            "{field}"
        );
    }
}

#[test]
fn openai_error_object_in_stream() {
    let err = decode_every_way(&golden("openai_error_midstream.sse"), run_openai).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream);
    assert_eq!(err.upstream_code(), Some("server_error"));
}

#[test]
fn openai_stream_without_finish_reason_ended_early() {
    let err = decode_every_way(&golden("openai_ended_early.sse"), run_openai).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamEndedEarly);
}

#[test]
fn ollama_v1_whole_tool_call() {
    let events = decode_every_way(&golden("openai_ollama_v1_tool_call.sse"), run_openai).unwrap();
    assert_eq!(
        events,
        vec![
            start(0, "call_hk81qg8b", "run_command"),
            args(0, r#"{"command":"ls -la"}"#),
            ChatEvent::ToolCallEnd { index: 0 },
            ChatEvent::done(FinishReason::ToolCalls),
        ]
    );
}

#[test]
fn openai_rate_limit_error_in_stream_is_classified() {
    let body = b"data: {\"error\":{\"message\":\"Rate limit reached\",\"type\":\"requests\",\"param\":null,\"code\":\"rate_limit_exceeded\"}}\n\n";
    let (_, err) = run_openai(&[body]);
    assert_eq!(err.unwrap().kind(), ErrorKind::RateLimited);
    let (_, err) =
        run_openai(&[b"event: error\ndata: {\"error\":{\"message\":\"boom\",\"code\":500}}\n\n"]);
    assert!(err.is_some());
}

#[test]
fn openai_invalid_arguments_are_reported() {
    let body = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"f\",\"arguments\":\"{broken\"}}]}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n";
    let (_, err) = run_openai(&[body]);
    let err = err.expect("reported, not dropped");
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
    assert!(err.message().contains("not a JSON object"), "{err}");
}

/// The documented non-streamed answers.
#[test]
fn non_streamed_answers() {
    let resp = ollama::decode_response(
        br#"{"model":"llama3.2","created_at":"2023-12-12T14:13:43.416799Z","message":{"role":"assistant","content":"Hello! How are you today?"},"done":true,"total_duration":5191566416,"load_duration":2154458,"prompt_eval_count":26,"prompt_eval_duration":383809000,"eval_count":298,"eval_duration":4799921000}"#,
    )
    .unwrap();
    assert_eq!(resp.content, "Hello! How are you today?");
    assert_eq!(resp.finish_reason, FinishReason::Stop);
    assert_eq!(resp.usage.unwrap().completion_tokens, 298);

    let resp = openai::decode_response(
        br#"{"id":"chatcmpl-B9MHDbslfkBeAs8l4bebGdFOJ6PeG","object":"chat.completion","created":1741570283,"model":"gpt-4o-2024-08-06","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":[{"id":"call_abc","type":"function","function":{"name":"get_current_weather","arguments":"{\n\"location\": \"Boston, MA\"\n}"}}],"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":82,"completion_tokens":17,"total_tokens":99},"service_tier":"default","system_fingerprint":"fp_fc9f1d7035"}"#,
    )
    .unwrap();
    assert_eq!(resp.tool_calls[0].name, "get_current_weather");
    assert_eq!(resp.tool_calls[0].arguments["location"], "Boston, MA");
    assert_eq!(resp.finish_reason, FinishReason::ToolCalls);
    let err = openai::decode_response(
        br#"{"error":{"message":"The model `gpt-5-nano` does not exist or you do not have access to it.","type":"invalid_request_error","param":null,"code":"model_not_found"}}"#,
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound);
}

fn sample_response() -> ChatResponse {
    let mut arguments = serde_json::Map::new();
    arguments.insert("city".into(), json!("Paris"));
    ChatResponse {
        content: "Checking.".into(),
        thinking: Some("user wants weather".into()),
        tool_calls: vec![ToolCall {
            id: "call_1".into(),
            name: "get_weather".into(),
            arguments,
            raw_arguments: None,
        }],
        finish_reason: FinishReason::ToolCalls,
        usage: Some(Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
            ..Usage::default()
        }),
        extras: Default::default(),
    }
}

#[test]
fn non_streamed_encoders_round_trip() {
    let resp = sample_response();
    let mut out = Vec::new();
    ollama::encode_response(&resp, "qwen3", "2025-01-01T00:00:00Z", &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "stop", "Ollama never says tool_calls");
    assert_eq!(
        v["message"]["tool_calls"][0]["function"]["arguments"]["city"],
        "Paris"
    );
    let back = ollama::decode_response(&out).unwrap();
    assert_eq!(back.tool_calls, resp.tool_calls);
    assert_eq!(back.content, resp.content);
    assert_eq!(back.thinking, resp.thinking);
    assert_eq!(back.finish_reason, FinishReason::ToolCalls);

    let mut out = Vec::new();
    openai::encode_response(&resp, "gpt", "chatcmpl-1", 1, &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["object"], "chat.completion");
    assert_eq!(v["choices"][0]["finish_reason"], "tool_calls");
    assert!(v["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"].is_string());
    assert_eq!(v["usage"]["total_tokens"], 15);
    let back = openai::decode_response(&out).unwrap();
    assert_eq!(back.tool_calls, resp.tool_calls);
    assert_eq!(back.content, resp.content);
}

#[test]
fn stream_encoders_write_the_documented_shapes() {
    let events = sample_response().to_events();
    let mut enc = OpenAiStreamEncoder::new("gpt-4o", "chatcmpl-7", 1_700_000_000, true);
    let mut out = Vec::new();
    for ev in &events {
        enc.encode(ev, &mut out);
    }
    let text = String::from_utf8(out).unwrap();
    let frames: Vec<&str> = text.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert_eq!(frames.last(), Some(&"data: [DONE]"));
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(f.strip_prefix("data: ").unwrap()).unwrap())
        .collect();
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert!(
        chunks
            .iter()
            .all(|c| c["object"] == "chat.completion.chunk" && c["id"] == "chatcmpl-7")
    );
    let call = chunks
        .iter()
        .find(|c| c["choices"][0]["delta"]["tool_calls"][0]["id"] == "call_1")
        .expect("call start frame");
    assert_eq!(
        call["choices"][0]["delta"]["tool_calls"][0]["type"],
        "function"
    );
    assert_eq!(
        call["choices"][0]["delta"]["tool_calls"][0]["function"]["name"],
        "get_weather"
    );
    let finish = &chunks[chunks.len() - 2];
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage_chunk = &chunks[chunks.len() - 1];
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], 10);

    let mut enc = OllamaStreamEncoder::new("qwen3", "2025-01-01T00:00:00Z");
    let mut out = Vec::new();
    for ev in &events {
        enc.encode(ev, &mut out);
    }
    let lines: Vec<Value> = out
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_slice(l).unwrap())
        .collect();
    assert!(
        lines.iter().all(|l| l["message"]["content"].is_string()),
        "content always present"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["prompt_eval_count"], 10);
    assert_eq!(last["eval_count"], 5);
    let call = lines
        .iter()
        .find(|l| l["message"]["tool_calls"].is_array())
        .unwrap();
    assert_eq!(
        call["message"]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Paris"})
    );
}

#[test]
fn error_events_end_streams_visibly_in_each_api() {
    let err = ProviderError::new(ErrorKind::Overloaded, "upstream queue full");
    // Ollama: an `{"error"}` line after output; the decoder (like ollama-python) raises.
    let mut enc = OllamaStreamEncoder::new("m", "t");
    let mut out = Vec::new();
    enc.encode(&ChatEvent::text("partial"), &mut out);
    enc.encode_error(&err, &mut out);
    assert!(enc.is_done());
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    let (events, got) = run_ollama(&[&out]);
    assert_eq!(events, vec![ChatEvent::text("partial")]);
    assert!(got.unwrap().message().contains("upstream queue full"));
    // OpenAI: an error frame and no [DONE].
    let mut enc = OpenAiStreamEncoder::new("m", "c", 1, true);
    let mut out = Vec::new();
    enc.encode(&ChatEvent::text("partial"), &mut out);
    enc.encode_error(&err, &mut out);
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(!text.contains("[DONE]"));
    assert!(text.contains("\"error\":{"));
    let (events, got) = run_openai(&[&out]);
    assert_eq!(events, vec![ChatEvent::text("partial")]);
    assert!(got.is_some());
    // The non-streamed error bodies.
    let mut body = Vec::new();
    ollama::encode_error_body(&err, &mut body);
    assert_eq!(
        serde_json::from_slice::<Value>(&body).unwrap(),
        json!({"error": "upstream queue full"})
    );
    let mut body = Vec::new();
    openai::encode_error_body(&err, &mut body);
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["error"]["message"], "upstream queue full");
    assert_eq!(v["error"]["code"], "server_is_overloaded");
}

// ---- Anthropic Messages (payloads from Anthropic's streaming and tool-use docs) ----

fn run_anthropic(parts: &[&[u8]]) -> Outcome {
    let mut dec = AnthropicStreamDecoder::new();
    let mut out = Vec::new();
    let fed = parts.iter().try_for_each(|p| dec.feed(p, &mut out));
    let err = fed.and_then(|()| dec.finish(&mut out)).err();
    (out, err)
}

/// A usage event with prompt-cache counts.
fn cached(mut event: ChatEvent, read: u32, created: u32) -> ChatEvent {
    if let ChatEvent::Usage(u) = &mut event {
        (u.cache_read_tokens, u.cache_creation_tokens) = (read, created);
    }
    event
}

/// Anthropic's documented text and tool-use streams: a tool turn ends in `ToolCalls`
/// (never a plain stop), input tokens come from `message_start`, output from `message_delta`.
#[test]
fn anthropic_documented_streams_decode() {
    let cases = [
        (
            "anthropic_text.sse",
            vec![
                ChatEvent::text("Hello! é \"quoted\""),
                usage(25, 15),
                ChatEvent::done(FinishReason::Stop),
            ],
        ),
        (
            "anthropic_tool_use.sse",
            vec![
                ChatEvent::text("Okay, let's check the weather for San Francisco, CA:"),
                start(0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather"),
                args(0, "{\"location\":"),
                args(0, " \"San Francisco, CA\", \"unit\": \"fahrenheit\"}"),
                ChatEvent::ToolCallEnd { index: 0 },
                usage(472, 89),
                ChatEvent::done(FinishReason::ToolCalls),
            ],
        ),
    ];
    for (file, want) in cases {
        let got = decode_every_way(&golden(file), run_anthropic).unwrap();
        assert_eq!(got, want, "{file}");
    }
}

#[test]
fn anthropic_thinking_keeps_its_signature_and_cache_counts() {
    let events = decode_every_way(&golden("anthropic_thinking.sse"), run_anthropic).unwrap();
    assert_eq!(events.len(), 5);
    let ChatEvent::ThinkingDelta { text } = &events[0] else {
        panic!("thinking first: {events:?}")
    };
    assert!(text.ends_with("So GCD(1071, 462) = 21"));
    assert_eq!(
        events[1],
        ChatEvent::ThinkingSignature {
            signature: "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds+eBtw2ECLcanKlfk0Aj6dsVWTSsDOYLVPHVnrf2Hn1sZr3rNVB46kBPh8Ey0YBCKiaAFKZD6mcqsHh0FTUL2Vw23yzoiChAE2Mg==".into()
        }
    );
    assert_eq!(events[3], cached(usage(36, 178), 1024, 0));
}

#[test]
fn anthropic_stop_sequence_is_named() {
    let events = decode_every_way(&golden("anthropic_stop_sequence.sse"), run_anthropic).unwrap();
    assert_eq!(
        events.last(),
        Some(&ChatEvent::done(FinishReason::StopSequence("4".into())))
    );
}

#[test]
fn anthropic_error_event_and_early_end_are_errors() {
    let err =
        decode_every_way(&golden("anthropic_error_midstream.sse"), run_anthropic).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.fallback_eligible());
    let err = decode_every_way(&golden("anthropic_ended_early.sse"), run_anthropic).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamEndedEarly);
}

#[test]
fn anthropic_whole_message_decodes() {
    let r = anthropic::decode_response(&golden("anthropic_message.json")).unwrap();
    assert_eq!(r.content, "I'll check.");
    assert_eq!(r.thinking.as_deref(), Some("The user wants weather."));
    assert!(
        r.extras
            .thinking_signature
            .as_deref()
            .unwrap()
            .starts_with("WaUjzk")
    );
    assert_eq!(r.tool_calls[0].id, "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(r.tool_calls[0].arguments["unit"], "celsius");
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    let u = r.usage.unwrap();
    assert_eq!((u.prompt_tokens, u.completion_tokens), (2095, 503));
    assert_eq!((u.cache_read_tokens, u.cache_creation_tokens), (100, 50));
}

/// Splits the encoder's SSE output into (event name, data JSON) pairs.
fn anthropic_frames(bytes: &[u8]) -> Vec<(String, Value)> {
    let text = std::str::from_utf8(bytes).unwrap();
    text.split("\n\n")
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (name, data) = f.split_once('\n').unwrap();
            let name = name.strip_prefix("event: ").unwrap().to_owned();
            let data: Value = serde_json::from_str(data.strip_prefix("data: ").unwrap()).unwrap();
            assert_eq!(data["type"], name.as_str(), "event name = type");
            (name, data)
        })
        .collect()
}

#[test]
fn anthropic_encoder_writes_the_documented_event_sequence() {
    let mut resp = sample_response();
    resp.extras.thinking_signature = Some("sig-1".into());
    let mut enc = AnthropicStreamEncoder::new("claude-x", "msg_7", 42);
    let mut out = Vec::new();
    for ev in &resp.to_events() {
        enc.encode(ev, &mut out);
    }
    assert!(enc.is_done());
    let frames = anthropic_frames(&out);
    let names: Vec<&str> = frames.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &frames[0].1["message"];
    assert_eq!(
        start["usage"]["input_tokens"], 42,
        "never 0 in message_start"
    );
    assert_eq!(start["content"], json!([]));
    assert_eq!(frames[1].1["content_block"]["type"], "thinking");
    assert_eq!(
        frames[3].1["delta"],
        json!({"type":"signature_delta","signature":"sig-1"})
    );
    assert_eq!(
        frames[5].1["content_block"],
        json!({"type":"text","text":""})
    );
    assert_eq!(
        frames[8].1["content_block"],
        json!({"type":"tool_use","id":"call_1","name":"get_weather","input":{}})
    );
    assert_eq!(frames[9].1["delta"]["type"], "input_json_delta");
    assert_eq!(frames[9].1["index"], 2);
    let delta = &frames[11].1;
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 5);
    assert_eq!(delta["usage"]["input_tokens"], 10);
    // What we write, our decoder reads back.
    let (events, err) = run_anthropic(&[&out]);
    assert!(err.is_none());
    assert_eq!(merged(events), merged(resp.to_events()));
}

#[test]
fn anthropic_stop_reasons_are_exact() {
    let cases = [
        (FinishReason::Stop, "end_turn", Value::Null),
        (FinishReason::Length, "max_tokens", Value::Null),
        (FinishReason::ToolCalls, "tool_use", Value::Null),
        (
            FinishReason::StopSequence("END".into()),
            "stop_sequence",
            json!("END"),
        ),
    ];
    for (reason, want, seq) in cases {
        let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
        let mut out = Vec::new();
        enc.encode(&ChatEvent::text("x"), &mut out);
        enc.encode(&ChatEvent::done(reason.clone()), &mut out);
        let frames = anthropic_frames(&out);
        let delta = &frames[frames.len() - 2].1["delta"];
        assert_eq!(delta["stop_reason"], want, "{reason:?}");
        assert_eq!(delta["stop_sequence"], seq);
    }
}

#[test]
fn anthropic_error_event_ends_the_stream_without_message_stop() {
    let err = ProviderError::new(ErrorKind::Overloaded, "upstream queue full");
    let mut enc = AnthropicStreamEncoder::new("m", "msg", 1);
    let mut out = Vec::new();
    enc.encode(&ChatEvent::text("partial"), &mut out);
    enc.encode_error(&err, &mut out);
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    let frames = anthropic_frames(&out);
    assert_eq!(frames.last().unwrap().0, "error");
    assert!(!frames.iter().any(|(n, _)| n == "message_stop"));
    assert_eq!(
        frames.last().unwrap().1,
        json!({"type":"error","error":{"type":"overloaded_error","message":"upstream queue full"}})
    );
    let (events, got) = run_anthropic(&[&out]);
    assert_eq!(events, vec![ChatEvent::text("partial")]);
    assert_eq!(got.unwrap().kind(), ErrorKind::Overloaded);
    assert_eq!(anthropic::status_for_error_type("overloaded_error"), 529);
    assert_eq!(
        anthropic::error_type(ErrorKind::Auth),
        "authentication_error"
    );
}

#[test]
fn anthropic_whole_message_round_trips() {
    let mut resp = sample_response();
    resp.extras.thinking_signature = Some("sig".into());
    let mut out = Vec::new();
    anthropic::encode_response(&resp, "claude-x", "msg_1", &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["type"], "message");
    assert_eq!(v["stop_reason"], "tool_use");
    assert_eq!(v["stop_sequence"], Value::Null);
    assert_eq!(v["content"][0]["type"], "thinking");
    assert_eq!(v["content"][2]["input"], json!({"city": "Paris"}));
    let back = anthropic::decode_response(&out).unwrap();
    assert_eq!(back, resp);
}

#[test]
fn invalid_utf8_is_malformed_stream_from_both_upstream_protocols() {
    let openai: &[u8] =
        b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\xff\"}}]}\n\n";
    let err = decode_every_way(openai, run_openai).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream, "{err}");
    assert!(err.message().contains("UTF-8"), "{err}");
    let ollama: &[u8] =
        b"{\"message\":{\"role\":\"assistant\",\"content\":\"a\xff\"},\"done\":false}\n";
    let err = decode_every_way(ollama, run_ollama).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream, "{err}");
}

/// The pass-through events of a decoded answer: (index, part, JSON).
fn opaque_events(events: &[ChatEvent]) -> Vec<(u32, OpaquePart, String)> {
    events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::Opaque { index, part, json } => Some((*index, *part, json.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn anthropic_server_tool_blocks_and_citations_pass_verbatim() {
    use OpaquePart::{Delta, Start, Stop};
    let body = golden("anthropic_web_search.sse");
    let text = String::from_utf8(body.clone()).unwrap();
    let events = decode_every_way(&body, run_anthropic).unwrap();
    let opaque = opaque_events(&events);
    let parts: Vec<(u32, OpaquePart)> = opaque.iter().map(|(i, p, _)| (*i, *p)).collect();
    let want = [
        (1, Start),
        (1, Delta),
        (1, Delta),
        (1, Delta),
        (1, Stop),
        (2, Start),
        (2, Stop),
        (3, Stop),
        (4, Start),
        (4, Delta),
    ];
    assert_eq!(parts, want);
    for (_, part, json) in &opaque {
        assert!(
            *part == Stop || text.contains(&format!(": {json}}}")),
            "verbatim: {json}"
        );
    }
    let shown: String = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::TextDelta { text } => Some(text.as_str()),
            _ => None,
        })
        .collect();
    assert!(shown.starts_with("I'll search") && shown.ends_with("Petoskey, Michigan"));
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));

    // Encoded for an Anthropic client: the same blocks, with the same JSON, in order.
    let mut enc = AnthropicStreamEncoder::new("claude-x", "msg_1", 10);
    let mut out = Vec::new();
    for e in &events {
        enc.encode(e, &mut out);
    }
    let encoded = String::from_utf8(out).unwrap();
    let mut at = 0;
    for (index, part, json) in &opaque {
        let needle = match part {
            Start => format!("\"index\":{index},\"content_block\":{json}}}"),
            Delta => format!("\"index\":{index},\"delta\":{json}}}"),
            Stop => format!("{{\"type\":\"content_block_stop\",\"index\":{index}}}"),
        };
        let found = encoded[at..].find(&needle).map(|p| p + at);
        at = found.unwrap_or_else(|| panic!("{needle} in order in\n{encoded}"));
    }
    // A plain decoder of the encoded stream sees the same text.
    let again = decode_every_way(encoded.as_bytes(), run_anthropic).unwrap();
    assert_eq!(opaque_events(&again), opaque);
}

#[test]
fn anthropic_pass_through_needs_json_and_stays_out_of_other_apis() {
    let bad = ChatEvent::Opaque {
        index: 0,
        part: OpaquePart::Start,
        json: "{not json".into(),
    };
    let mut enc = AnthropicStreamEncoder::new("claude-x", "msg_1", 10);
    let mut out = Vec::new();
    enc.encode(&bad, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("event: error"), "{text}");
    assert!(enc.is_done());
    let block = ChatEvent::Opaque {
        index: 0,
        part: OpaquePart::Start,
        json: r#"{"type":"web_search_tool_result","content":[]}"#.into(),
    };
    let mut oai = OpenAiStreamEncoder::new("m", "c", 0, false);
    let mut out = Vec::new();
    oai.encode(&block, &mut out);
    assert!(out.is_empty());
}

#[test]
fn anthropic_whole_message_keeps_server_tool_blocks_and_citations() {
    let body = golden("anthropic_web_search_message.json");
    let want: Value = serde_json::from_slice(&body).unwrap();
    let resp = anthropic::decode_response(&body).unwrap();
    assert!(resp.content.starts_with("I'll search") && resp.content.ends_with("Michigan"));
    let mut out = Vec::new();
    anthropic::encode_response(&resp, "claude-x", "msg_1", &mut out);
    let got: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(got["content"], want["content"]);
    assert_eq!(got["stop_reason"], "end_turn");
    // Other APIs get the text.
    let mut out = Vec::new();
    openai::encode_response(&resp, "m", "c", 1, &mut out);
    let oai: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        oai["choices"][0]["message"]["content"],
        resp.content.as_str()
    );
}
