//! Text-completion codecs: Ollama's documented `/api/generate` requests and stream
//! (`docs/api.md`, "Generate a completion", with `suffix`), OpenAI's legacy completions
//! (API reference), split at every byte; errors and truncation are failures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchyard_core::{ChatEvent, FinishReason, ProviderError, Think, Usage};
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
            ChatEvent::Usage(Usage {
                prompt_tokens: 26,
                completion_tokens: 259,
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
    assert_eq!(run::<ollama::GenerateDecoder>(&nd).unwrap(), events);
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
