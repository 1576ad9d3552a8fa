//! Text-completion codecs: Ollama's documented `/api/generate` requests and stream
//! (`docs/api.md`, "Generate a completion", with `suffix`), OpenAI's legacy completions
//! (API reference), split at every byte; errors and truncation are failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchyard_core::{ChatEvent, FinishReason, ProviderError, Think, Timings, Usage};
use switchyard_stream::decoder::EventDecoder;
use switchyard_stream::generate::{Completion, ollama, openai};

fn run<D: EventDecoder + Default>(bytes: &[u8]) -> Result<Vec<ChatEvent>, ProviderError> {
    let mut whole: Option<Result<Completion, String>> = None;
    for cut in 0..=bytes.len() {
        let mut dec = D::default();
        let mut out = Vec::new();
        let result = dec
            .feed(&bytes[..cut], &mut out)
            .and_then(|()| dec.feed(&bytes[cut..], &mut out))
            .and_then(|()| dec.finish(&mut out));
        let mut folded = Completion::default();
        out.iter().for_each(|e| folded.push(e));
        let outcome = result
            .map(|()| folded)
            .map_err(|e| e.reason_code().to_owned());
        match &whole {
            None => whole = Some(outcome),
            Some(w) => assert_eq!(w, &outcome, "split at {cut}"),
        }
    }
    let mut dec = D::default();
    let mut out = Vec::new();
    dec.feed(bytes, &mut out)?;
    dec.finish(&mut out)?;
    Ok(out)
}

fn raw(text: &str) -> Box<RawValue> {
    RawValue::from_string(text.to_owned()).unwrap()
}

/// The last line of NDJSON text.
fn last_line(bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).unwrap();
    serde_json::from_str(text.lines().last().unwrap()).unwrap()
}

#[test]
fn ollama_generate_request_with_suffix_round_trips() {
    let req = ollama::decode_request(
        br#"{"model":"codellama:code","prompt":"def compute_gcd(a, b):","suffix":"    return result","options":{"temperature":0,"num_predict":64},"think":"low","images":["iVBOR"],"raw":true,"context":[1,2]}"#,
    )
    .unwrap();
    assert!(req.stream, "stream absent means true");
    assert_eq!(req.suffix.as_deref(), Some("    return result"));
    assert_eq!(req.think, Some(Think::Low));
    assert_eq!(req.options.max_tokens, Some(64));
    let body: Value =
        serde_json::from_slice(&ollama::encode_request(&req, "codellama:7b-code")).unwrap();
    assert_eq!(body["model"], "codellama:7b-code");
    assert_eq!(body["suffix"], "    return result");
    assert_eq!(body["think"], "low");
    assert_eq!(body["options"]["num_predict"], 64);
    assert_eq!(body["images"], json!(["iVBOR"]));
    assert_eq!(body["raw"], true);
    assert_eq!(body["context"], json!([1, 2]));
    assert_eq!(body["stream"], true);
}

#[test]
fn ollama_generate_stream_decodes() {
    let bytes = br#"{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","response":"The","done":false}
{"model":"llama3.2","created_at":"2023-08-04T08:52:19.385406455-07:00","response":" sky","done":false}
{"model":"llama3.2","created_at":"2023-08-04T19:22:45.499127Z","response":"","done":true,"done_reason":"stop","context":[1,2,3],"total_duration":10706818083,"load_duration":6338219291,"prompt_eval_count":26,"prompt_eval_duration":130079000,"eval_count":259,"eval_duration":4232710000}
"#;
    let events = run::<ollama::GenerateDecoder>(bytes).unwrap();
    assert_eq!(
        events,
        vec![
            ChatEvent::text("The"),
            ChatEvent::text(" sky"),
            ollama::context_event(&raw("[1,2,3]")),
            ChatEvent::Usage(Usage {
                prompt_tokens: 26,
                completion_tokens: 259,
                timings: Some(Timings {
                    total_ns: 10706818083,
                    load_ns: 6338219291,
                    prompt_eval_ns: 130079000,
                    eval_ns: 4232710000,
                }),
                ..Usage::default()
            }),
            ChatEvent::done(FinishReason::Stop),
        ]
    );
    let err = run::<ollama::GenerateDecoder>(b"{\"response\":\"a\",\"done\":false}\n").unwrap_err();
    assert_eq!(err.reason_code(), "stream_ended_early");
    let err =
        run::<ollama::GenerateDecoder>(b"{\"error\":\"model runner crashed\"}\n").unwrap_err();
    assert!(err.message().contains("crashed"), "{err}");
}

#[test]
fn openai_completions_request_and_stream() {
    let req = openai::decode_request(
        br#"{"model":"gpt-3.5-turbo-instruct","prompt":"Say this is a test","suffix":"!","max_tokens":7,"temperature":0,"stop":"\n"}"#,
    )
    .unwrap();
    assert!(!req.stream, "stream absent means false");
    assert_eq!(req.options.stop, vec!["\n".to_owned()]);
    let body: Value = serde_json::from_slice(&openai::encode_request(&req, "up")).unwrap();
    assert_eq!(body["suffix"], "!");
    assert_eq!(body["max_tokens"], 7);
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(
        openai::decode_request(br#"{"model":"m","prompt":[[1,2]]}"#)
            .unwrap_err()
            .path(),
        Some("prompt")
    );

    let bytes = b"data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\"This is\",\"index\":0,\"logprobs\":null,\"finish_reason\":null}],\"model\":\"m\"}\n\n\
data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[{\"text\":\" a test\",\"index\":0,\"logprobs\":null,\"finish_reason\":\"length\"}],\"model\":\"m\"}\n\n\
data: {\"id\":\"cmpl-1\",\"object\":\"text_completion\",\"created\":1,\"choices\":[],\"model\":\"m\",\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,\"total_tokens\":12}}\n\n\
data: [DONE]\n\n";
    let events = run::<openai::CompletionsDecoder>(bytes).unwrap();
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Length)));
    assert!(events.contains(&ChatEvent::Usage(Usage {
        prompt_tokens: 5,
        completion_tokens: 7,
        ..Usage::default()
    })));
    let cut = &bytes[..bytes.len() - "data: [DONE]\n\n".len()];
    assert_eq!(
        run::<openai::CompletionsDecoder>(cut)
            .unwrap_err()
            .reason_code(),
        "stream_ended_early"
    );
}

#[test]
fn encoders_write_what_the_decoders_read() {
    let events = [
        ChatEvent::text("Hello"),
        ChatEvent::text(" world"),
        ChatEvent::Usage(Usage {
            prompt_tokens: 2,
            completion_tokens: 2,
            ..Usage::default()
        }),
        ChatEvent::done(FinishReason::Stop),
    ];
    let usage = Usage {
        prompt_tokens: 2,
        completion_tokens: 2,
        ..Usage::default()
    };
    let (mut nd, mut sse) = (Vec::new(), Vec::new());
    let stamp = openai::Stamp {
        id: "cmpl-1",
        created: 1,
        model: "m",
    };
    for e in &events {
        ollama::encode_event(e, Some(&usage), "m", "t", &mut nd);
        openai::encode_event(e, Some(&usage), stamp, &mut sse);
    }
    // The durations are written (zero when unknown, as on /api/chat) and read back.
    let mut timed = events.clone();
    timed[2] = ChatEvent::Usage(Usage {
        timings: Some(Timings::default()),
        ..usage
    });
    assert_eq!(run::<ollama::GenerateDecoder>(&nd).unwrap(), timed);
    let back = run::<openai::CompletionsDecoder>(&sse).unwrap();
    assert_eq!(back, events);
    let mut answer = Completion::default();
    events.iter().for_each(|e| answer.push(e));
    let mut out = Vec::new();
    openai::encode_response(&answer, stamp, &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["text"], "Hello world");
    assert_eq!(v["usage"]["total_tokens"], 4);
    let mut out = Vec::new();
    ollama::encode_response(&answer, "m", "t", &mut out);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(
        (v["response"].clone(), v["done"].clone()),
        (json!("Hello world"), json!(true))
    );
}

/// Ollama answers a load (empty prompt) or an unload (`keep_alive: 0`) with one object,
/// without a trailing newline (`c.JSON`): it is decoded at the end, and its `done_reason`
/// reaches the client, streamed or whole (WIRE.md: `stop`, `length`, `load`, `unload`).
#[test]
fn ollama_generate_load_and_unload_answers_keep_their_reason() {
    for reason in ["load", "unload"] {
        for newline in ["", "\n"] {
            let line = format!(
                r#"{{"model":"m","created_at":"2025-01-01T00:00:00Z","response":"","done":true,"done_reason":"{reason}"}}{newline}"#
            );
            let events = run::<ollama::GenerateDecoder>(line.as_bytes())
                .unwrap_or_else(|e| panic!("{reason} {newline:?}: {e}"));
            let done = ChatEvent::done(FinishReason::Other(reason.to_owned()));
            assert_eq!(events.last(), Some(&done), "{reason} {newline:?}");
            let mut enc = ollama::GenerateEncoder::new("m", "t");
            let mut out = Vec::new();
            events.iter().for_each(|e| enc.encode(e, &mut out));
            assert_eq!(out.iter().filter(|b| **b == b'\n').count(), 1, "one line");
            let last = last_line(&out);
            assert_eq!(
                (&last["done"], &last["done_reason"]),
                (&json!(true), &json!(reason))
            );
            assert_eq!(last["response"], "");
            let mut out = Vec::new();
            ollama::encode_event(&done, None, "m", "t", &mut out);
            assert_eq!(last_line(&out)["done_reason"], reason);
            let mut answer = Completion::default();
            events.iter().for_each(|e| answer.push(e));
            let mut out = Vec::new();
            ollama::encode_response(&answer, "m", "t", &mut out);
            assert_eq!(value(&out)["done_reason"], reason);
        }
    }
    // Other reasons Ollama clients do not know are still `stop`.
    for (reason, wire) in [
        (FinishReason::Length, "length"),
        (FinishReason::ToolCalls, "stop"),
        (FinishReason::ContentFilter, "stop"),
        (FinishReason::Other("end_turn".into()), "stop"),
    ] {
        let mut out = Vec::new();
        ollama::encode_event(&ChatEvent::done(reason), None, "m", "t", &mut out);
        assert_eq!(last_line(&out)["done_reason"], wire);
    }
    // A cut last line is still an error, not an answer.
    let cut = br#"{"model":"m","response":"","done":true,"done_re"#;
    let err = run::<ollama::GenerateDecoder>(cut).unwrap_err();
    assert_eq!(err.reason_code(), "malformed_stream", "{err}");
}

fn value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

/// Ollama's final line (docs/api.md, "Generate a completion"): the durations and the
/// `context` the upstream sent reach the client as sent, streamed and whole; without them
/// (an OpenAI-compatible upstream) there is no `context` and the durations are zero, as on
/// `/api/chat`.
#[test]
fn ollama_generate_final_line_carries_durations_and_context() {
    let context = "[128006, 882, 128007, 271, 8822, -1, 9007199254740993]";
    let bytes = format!(
        "{}\n{}\n",
        r#"{"model":"llama3.2","created_at":"t","response":"Hi","done":false}"#,
        format_args!(
            r#"{{"model":"llama3.2","created_at":"t","response":"","done":true,"done_reason":"length","context":{context},"total_duration":5,"load_duration":1,"prompt_eval_count":26,"prompt_eval_duration":2,"eval_count":259,"eval_duration":3}}"#
        )
    );
    let events = run::<ollama::GenerateDecoder>(bytes.as_bytes()).unwrap();
    let expected = json!({"done": true, "done_reason": "length", "total_duration": 5,
        "load_duration": 1, "prompt_eval_count": 26, "prompt_eval_duration": 2,
        "eval_count": 259, "eval_duration": 3});
    let check = |line: &Value| {
        for (k, v) in expected.as_object().unwrap() {
            assert_eq!(&line[k], v, "{k}: {line}");
        }
    };
    // Streamed: the context verbatim (the big number is not rounded through f64).
    let mut enc = ollama::GenerateEncoder::new("llama3.2", "t");
    let mut out = Vec::new();
    events.iter().for_each(|e| enc.encode(e, &mut out));
    let text = String::from_utf8(out.clone()).unwrap();
    assert!(
        text.lines()
            .last()
            .unwrap()
            .contains(&format!(r#""context":{context}"#)),
        "{text}"
    );
    assert_eq!(text.lines().count(), 2, "{text}");
    check(&last_line(&out));
    // Whole.
    let mut answer = Completion::default();
    events.iter().for_each(|e| answer.push(e));
    assert_eq!(answer.context.as_deref(), Some(context));
    let mut out = Vec::new();
    ollama::encode_response(&answer, "llama3.2", "t", &mut out);
    assert!(
        String::from_utf8_lossy(&out).contains(&format!(r#""context":{context}"#)),
        "{}",
        String::from_utf8_lossy(&out)
    );
    check(&value(&out));
    assert_eq!(value(&out)["response"], "Hi");

    // From an OpenAI-compatible upstream: counts, no timings, no context.
    let events = [
        ChatEvent::text("Hi"),
        ChatEvent::Usage(Usage {
            prompt_tokens: 4,
            completion_tokens: 1,
            ..Usage::default()
        }),
        ChatEvent::done(FinishReason::Stop),
    ];
    let mut enc = ollama::GenerateEncoder::new("m", "t");
    let mut out = Vec::new();
    events.iter().for_each(|e| enc.encode(e, &mut out));
    let mut answer = Completion::default();
    events.iter().for_each(|e| answer.push(e));
    let mut whole = Vec::new();
    ollama::encode_response(&answer, "m", "t", &mut whole);
    for last in [last_line(&out), value(&whole)] {
        assert!(last.get("context").is_none(), "{last}");
        assert_eq!(
            (&last["prompt_eval_count"], &last["eval_count"]),
            (&json!(4), &json!(1))
        );
        for k in [
            "total_duration",
            "load_duration",
            "prompt_eval_duration",
            "eval_duration",
        ] {
            assert_eq!(last[k], 0, "{k}: {last}");
        }
    }
    // An Opaque event of another kind is not a context.
    let other = ChatEvent::Opaque {
        index: 0,
        part: switchyard_core::OpaquePart::Start,
        json: r#"{"type":"server_tool_use"}"#.to_owned(),
    };
    assert!(ollama::context_of(&other).is_none());
    // A `context` that is not a list is an error naming it; `null` is none.
    let err = run::<ollama::GenerateDecoder>(b"{\"done\":true,\"context\":\"x\"}\n").unwrap_err();
    assert!(err.message().contains("context"), "{err}");
    let events = run::<ollama::GenerateDecoder>(b"{\"done\":true,\"context\":null}\n").unwrap();
    assert!(events.iter().all(|e| ollama::context_of(e).is_none()));
}

/// Go's encoding/json takes `null` for any field; `/api/chat` takes it for its lists, and
/// so does `/api/generate` (`images`, `prompt`). A wrong type is still refused, named.
#[test]
fn ollama_generate_request_accepts_null() {
    let req = ollama::decode_request(
        br#"{"model":"m","prompt":null,"images":null,"context":null,"options":null,"suffix":null,"format":null,"think":null,"keep_alive":null,"stream":null}"#,
    )
    .unwrap();
    assert_eq!(req.prompt, "");
    assert!(req.images.is_empty());
    let req = ollama::decode_request(br#"{"model":"m","prompt":"hi","images":null}"#).unwrap();
    assert_eq!(req.prompt, "hi");
    let body = value(&ollama::encode_request(&req, "up"));
    assert!(body.get("images").is_none(), "{body}");
    let e = ollama::decode_request(br#"{"model":"m","images":"abc"}"#).unwrap_err();
    assert!(e.to_string().contains("images"), "{e}");
}

/// `options` the gateway does not model (`repeat_penalty`, `min_p`, `mirostat`,
/// `num_predict: -1`) reach an Ollama upstream as sent, as on `/api/chat`; an
/// OpenAI-compatible upstream gets only what it knows.
#[test]
fn ollama_generate_keeps_unknown_options() {
    let options = json!({"temperature": 0.5, "repeat_penalty": 1.3, "num_predict": -1,
        "min_p": 0.05, "mirostat": 2, "stop": ["\n"]});
    let body = json!({"model": "m", "prompt": "hi", "options": options}).to_string();
    let req = ollama::decode_request(body.as_bytes()).unwrap();
    assert_eq!(req.options.temperature, Some(0.5));
    assert_eq!(
        req.options.max_tokens, None,
        "-1 means no limit, to Ollama only"
    );
    let sent = value(&ollama::encode_request(&req, "up"));
    assert_eq!(sent["options"], options, "{sent}");
    let sent = value(&openai::encode_request(&req, "up"));
    assert_eq!(sent["temperature"], 0.5);
    assert!(sent.get("repeat_penalty").is_none() && sent.get("options").is_none());
    // Known options the client set win over nothing; no options is no `options`.
    let req = ollama::decode_request(br#"{"model":"m","prompt":"hi"}"#).unwrap();
    assert!(
        value(&ollama::encode_request(&req, "up"))
            .get("options")
            .is_none()
    );
}
