//! The fuzz harness: one function per target, shared by the cargo-fuzz binaries in
//! `fuzz_targets/` and by the corpus replay test of switchyard-stream (which includes this
//! file by path), so every `cargo test` runs the checked-in corpus through exactly what the
//! fuzzer runs. Each function panics only when a property is broken (a panic inside the
//! code under test is a finding too).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, dead_code)]

use bytes::BytesMut;
use switchyard_core::{ChatEvent, ProviderError};
use switchyard_stream::h1::{BodyDecoder, MAX_CHUNK_LINE, MAX_TRAILERS, WireError, parse_head};
use switchyard_stream::ndjson::LineFramer;
use switchyard_stream::recovery::TextToolCallRecovery;
use switchyard_stream::sse::SseFramer;
use switchyard_stream::{anthropic, ollama, openai};

/// HTTP error classification (core): any status and body classify without panicking.
pub fn classify_http_error(data: &[u8]) {
    if data.len() < 2 {
        return;
    }
    let status = u16::from_le_bytes([data[0], data[1]]);
    let body = &data[2..];
    let err = switchyard_core::classify_http_error(status, body, std::str::from_utf8(body).ok());
    assert!(!err.reason_code().is_empty());
    let parsed = switchyard_core::ErrorBody::parse(body);
    let _ = switchyard_core::classify_stream_error(&parsed);
    // The same text as every retry-hint and rate-limit header the answer classifier reads.
    if let Ok(text) = std::str::from_utf8(body) {
        let headers = [
            ("retry-after-ms", text),
            ("retry-after", text),
            ("x-ratelimit-limit-requests", text),
        ];
        let err =
            switchyard_core::classify_http_answer(status, body, &headers, std::time::UNIX_EPOCH);
        assert_eq!(
            err.kind(),
            switchyard_core::classify_http_error(status, body, None).kind()
        );
    }
}

/// Cuts `data` into chunks whose sizes (1..=61) come from a small generator seeded by
/// `seed`, so one input also exercises one arbitrary split.
pub fn chunks(data: &[u8], seed: u8) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut state = u32::from(seed).wrapping_mul(2_654_435_761).wrapping_add(1);
    let mut rest = data;
    while !rest.is_empty() {
        state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
        let size = ((state >> 16) % 61 + 1) as usize;
        let (head, tail) = rest.split_at(size.min(rest.len()));
        out.push(head);
        rest = tail;
    }
    out
}

/// Splits the input into a seed byte and the payload.
fn seed_and_payload(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => (0, data),
    }
}

/// Adjacent text / thinking deltas merged, so different splits compare equal.
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

type Outcome = (Vec<ChatEvent>, Option<&'static str>);
/// A decoder's `feed`.
type Feed<D> = fn(&mut D, &[u8], &mut Vec<ChatEvent>) -> Result<(), ProviderError>;
/// A decoder's `finish`.
type Finish<D> = fn(&mut D, &mut Vec<ChatEvent>) -> Result<(), ProviderError>;

fn drive<D>(mut dec: D, parts: &[&[u8]], feed: Feed<D>, finish: Finish<D>) -> Outcome {
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = feed(&mut dec, p, &mut out) {
            // A failed decoder keeps failing.
            assert!(feed(&mut dec, b"{}\n", &mut out).is_err());
            return (merged(out), Some(e.reason_code()));
        }
    }
    let err = finish(&mut dec, &mut out).err().map(|e| e.reason_code());
    (merged(out), err)
}

/// Ollama NDJSON stream decoder: never panics, and gives the same events and error
/// whether the input comes whole or split.
pub fn ollama_stream(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let feed = ollama::OllamaStreamDecoder::feed;
    let finish = ollama::OllamaStreamDecoder::finish;
    let whole = drive(
        ollama::OllamaStreamDecoder::with_id_seed(1),
        &[body],
        feed,
        finish,
    );
    let split = drive(
        ollama::OllamaStreamDecoder::with_id_seed(1),
        &chunks(body, seed),
        feed,
        finish,
    );
    assert_eq!(whole, split);
    let _ = ollama::decode_response(body);
}

/// OpenAI SSE stream decoder: never panics, same result whole or split.
pub fn openai_stream(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let feed = openai::OpenAiStreamDecoder::feed;
    let finish = openai::OpenAiStreamDecoder::finish;
    let whole = drive(
        openai::OpenAiStreamDecoder::with_id_seed(1),
        &[body],
        feed,
        finish,
    );
    let split = drive(
        openai::OpenAiStreamDecoder::with_id_seed(1),
        &chunks(body, seed),
        feed,
        finish,
    );
    assert_eq!(whole, split);
    let _ = openai::decode_response(body);
}

/// Anthropic SSE stream decoder: never panics, same result whole or split; whole messages
/// decode without panicking.
pub fn anthropic_stream(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let feed = anthropic::AnthropicStreamDecoder::feed;
    let finish = anthropic::AnthropicStreamDecoder::finish;
    let whole = drive(
        anthropic::AnthropicStreamDecoder::new(),
        &[body],
        feed,
        finish,
    );
    let parts = chunks(body, seed);
    let split = drive(
        anthropic::AnthropicStreamDecoder::new(),
        &parts,
        feed,
        finish,
    );
    assert_eq!(whole, split);
    let _ = anthropic::decode_response(body);
}

/// Anthropic request decoder: never panics; what decodes encodes for every API, and our own
/// translated Anthropic encoding decodes again to the same number of messages.
pub fn anthropic_request(data: &[u8]) {
    match anthropic::request::decode_request(data) {
        Ok(mut req) => {
            let opts = anthropic::request::AnthropicRequestOptions {
                model: "m",
                stream: true,
                default_max_tokens: 1024,
            };
            let mut out = Vec::new();
            assert!(anthropic::request::encode_request(&req, &opts, &mut out).is_ok());
            req.native_body = None;
            let mut out = Vec::new();
            if anthropic::request::encode_request(&req, &opts, &mut out).is_ok() {
                let again = anthropic::request::decode_request(&out).expect("own output decodes");
                assert!(again.messages.len() <= req.messages.len());
            }
            let mut out = Vec::new();
            let _ = openai::request::encode_request(&req, &openai_options(true), &mut out);
            let _ = ollama::request::encode_request(&req, "m", true);
        }
        Err(e) => assert!(!e.reason_code().is_empty() && !e.to_string().is_empty()),
    }
}

type SseSeen = (Option<String>, String, Option<String>, Option<u64>);

fn sse_events(framer: &mut SseFramer, parts: &[&[u8]]) -> (Vec<SseSeen>, bool) {
    let mut out = Vec::new();
    let mut failed = false;
    let mut take = |ev: Option<Result<switchyard_stream::sse::SseEvent, _>>| match ev {
        Some(Ok(e)) => {
            out.push((e.event, e.data, e.id, e.retry));
            true
        }
        Some(Err(_)) => {
            failed = true;
            false
        }
        None => false,
    };
    for p in parts {
        framer.push(p);
        while take(framer.next_event()) {}
    }
    while take(framer.finish()) {}
    (out, failed)
}

/// SSE framer: never panics; same events whole or split; with a small limit, fails
/// cleanly and then yields nothing more.
pub fn sse_framer(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let whole = sse_events(&mut SseFramer::new(), &[body]);
    let split = sse_events(&mut SseFramer::new(), &chunks(body, seed));
    assert_eq!(whole, split);
    let mut small = SseFramer::with_max_event(64);
    let (events, failed) = sse_events(&mut small, &chunks(body, seed));
    assert!(events.iter().all(|e| e.1.len() <= 64));
    if failed {
        small.push(b"data: x\n\n");
        assert!(small.next_event().is_none());
    }
}

fn lines(framer: &mut LineFramer, parts: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut failed = false;
    for p in parts {
        framer.push(p);
        while let Some(l) = framer.next_line() {
            match l {
                Ok(l) => out.push(l.to_vec()),
                Err(_) => failed = true,
            }
        }
    }
    while let Some(l) = framer.finish() {
        match l {
            Ok(l) => out.push(l.to_vec()),
            Err(_) => failed = true,
        }
    }
    (out, failed)
}

/// The same through `push_lines` (lines handed out in place).
fn lines_in_place(framer: &mut LineFramer, parts: &[&[u8]]) -> (Vec<Vec<u8>>, bool) {
    let mut out = Vec::new();
    let mut failed = false;
    for p in parts {
        let res = framer.push_lines(p, |l| {
            out.push(l.to_vec());
            Ok::<_, switchyard_stream::ndjson::FrameError>(())
        });
        failed |= res.is_err();
    }
    while let Some(l) = framer.finish() {
        match l {
            Ok(l) => out.push(l.to_vec()),
            Err(_) => failed = true,
        }
    }
    (out, failed)
}

/// NDJSON line framer: never panics; same lines whole or split, through `next_line` or
/// `push_lines`; lines never hold `\n`, are never blank and respect the limit.
pub fn ndjson_framer(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let whole = lines(&mut LineFramer::new(), &[body]);
    let split = lines(&mut LineFramer::new(), &chunks(body, seed));
    assert_eq!(whole, split);
    assert_eq!(lines_in_place(&mut LineFramer::new(), &[body]), whole);
    assert_eq!(
        lines_in_place(&mut LineFramer::new(), &chunks(body, seed)),
        whole
    );
    let limited = lines(&mut LineFramer::with_max_line(16), &chunks(body, seed));
    assert_eq!(
        lines_in_place(&mut LineFramer::with_max_line(16), &chunks(body, seed)),
        limited
    );
    for l in &whole.0 {
        assert!(!l.contains(&b'\n'));
        assert!(!l.iter().all(u8::is_ascii_whitespace));
    }
    let (small, _) = lines(&mut LineFramer::with_max_line(16), &chunks(body, seed));
    assert!(small.iter().all(|l| l.len() <= 16));
}

fn openai_options(stream: bool) -> openai::request::OpenAiRequestOptions<'static> {
    openai::request::OpenAiRequestOptions {
        model: "m",
        max_tokens_field: openai::request::MaxTokensField::MaxTokens,
        num_ctx: Some(4096),
        stream,
    }
}

/// Ollama request decoder: never panics; errors name a reason; what decodes encodes for
/// both APIs, and our own Ollama encoding decodes again to the same messages.
pub fn ollama_request(data: &[u8]) {
    match ollama::request::decode_request(data) {
        Ok(req) => {
            if let Ok(body) = ollama::request::encode_request(&req, "m", true) {
                let again = ollama::request::decode_request(&body).expect("own output decodes");
                assert_eq!(again.messages.len(), req.messages.len());
            }
            let mut out = Vec::new();
            let _ = openai::request::encode_request(&req, &openai_options(true), &mut out);
        }
        Err(e) => assert!(!e.reason_code().is_empty() && !e.to_string().is_empty()),
    }
}

/// OpenAI request decoder: never panics; what decodes encodes for both APIs, and our own
/// OpenAI encoding decodes again.
pub fn openai_request(data: &[u8]) {
    match openai::request::decode_request(data) {
        Ok(req) => {
            let mut out = Vec::new();
            if openai::request::encode_request(&req, &openai_options(false), &mut out).is_ok() {
                let again = openai::request::decode_request(&out).expect("own output decodes");
                assert_eq!(again.messages.len(), req.messages.len());
            }
            let _ = ollama::request::encode_request(&req, "m", false);
        }
        Err(e) => assert!(!e.reason_code().is_empty() && !e.to_string().is_empty()),
    }
}

/// Released text and recovered calls (name, arguments) of one run.
fn recover(offered: &[&str], pieces: &[&str]) -> (String, Vec<(String, String)>, usize) {
    let mut rec = TextToolCallRecovery::with_id_seed(offered.iter().copied(), 3);
    let mut out = Vec::new();
    for p in pieces {
        rec.push(ChatEvent::text(*p), &mut out);
    }
    rec.finish(&mut out);
    let mut text = String::new();
    let mut calls: Vec<(String, String)> = Vec::new();
    let mut ends = 0;
    for ev in out {
        match ev {
            ChatEvent::TextDelta { text: t } => text.push_str(&t),
            ChatEvent::ToolCallStart { name, .. } => calls.push((name, String::new())),
            ChatEvent::ToolCallArgs { fragment, .. } => {
                calls
                    .last_mut()
                    .expect("args after start")
                    .1
                    .push_str(&fragment);
            }
            ChatEvent::ToolCallEnd { .. } => ends += 1,
            _ => {}
        }
    }
    (text, calls, ends)
}

/// Text tool-call recovery: never panics; the same result for any split; calls only for
/// offered names, with JSON-object arguments; without calls the text comes back unchanged.
pub fn text_recovery(data: &[u8]) {
    let (seed, body) = seed_and_payload(data);
    let text = String::from_utf8_lossy(body);
    let offered: &[&str] = if seed & 1 == 0 {
        &["get_weather", "search", "f"]
    } else {
        &[]
    };
    let pieces: Vec<&str> = {
        let mut out = Vec::new();
        let mut last = 0;
        for c in chunks(text.as_bytes(), seed) {
            let mut end = (last + c.len()).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            if end > last && end <= text.len() {
                out.push(&text[last..end]);
                last = end;
            }
            if last >= text.len() {
                break;
            }
        }
        if last < text.len() {
            out.push(&text[last..]);
        }
        out
    };
    let whole = recover(offered, &[&text]);
    let split = recover(offered, &pieces);
    assert_eq!(whole, split);
    let (released, calls, ends) = whole;
    assert_eq!(calls.len(), ends);
    if calls.is_empty() {
        assert_eq!(released, text);
    }
    for (name, args) in &calls {
        assert!(offered.contains(&name.as_str()));
        assert!(serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(args).is_ok());
    }
}

/// Responses request decoding: any body decodes or gives a named error; a decoded request
/// encodes for both chat upstreams without panicking.
pub fn responses_request(data: &[u8]) {
    use switchyard_stream::responses::request::{DecodeOptions, decode_request};
    let drop_unsupported_tools = data.first().is_some_and(|b| b & 1 == 1);
    match decode_request(
        data,
        &DecodeOptions {
            drop_unsupported_tools,
        },
    ) {
        Ok(req) => {
            let chat = req.into_chat(Vec::new());
            let mut out = Vec::new();
            let _ = openai::request::encode_request(&chat, &openai_options(true), &mut out);
            let _ = ollama::request::encode_request(&chat, "m", true);
        }
        Err(e) => assert!(!e.reason_code().is_empty() && !e.to_string().is_empty()),
    }
}

/// Responses stream encoding: any sequence of events (driven by the input bytes) gives
/// frames with counting sequence numbers, ending in exactly one final event.
pub fn responses_stream(data: &[u8]) {
    use switchyard_core::{FinishReason, Usage};
    use switchyard_stream::responses::{ResponseHead, ResponsesStreamEncoder};
    let head = ResponseHead {
        id: "resp_f".into(),
        created_at: 0,
        model: "m".into(),
        echo: switchyard_stream::responses::Echo::default(),
        custom_tools: vec!["c".into()],
    };
    let mut enc = ResponsesStreamEncoder::new(head);
    let mut out = Vec::new();
    for pair in data.chunks(2) {
        let (op, arg) = (pair[0], pair.get(1).copied().unwrap_or(0));
        let index = u32::from(arg % 3);
        let text = String::from_utf8_lossy(&[arg]).into_owned();
        let event = match op % 8 {
            0 => ChatEvent::text(text),
            1 => ChatEvent::thinking(text),
            2 => ChatEvent::ToolCallStart {
                index,
                id: format!("call_{index}"),
                name: if arg & 4 == 0 { "f".into() } else { "c".into() },
            },
            3 => ChatEvent::ToolCallArgs {
                index,
                fragment: text,
            },
            4 => ChatEvent::ToolCallEnd { index },
            5 => ChatEvent::Usage(Usage {
                prompt_tokens: u32::from(arg),
                completion_tokens: 1,
                ..Usage::default()
            }),
            6 => ChatEvent::done(if arg & 1 == 0 {
                FinishReason::Stop
            } else {
                FinishReason::Length
            }),
            _ => {
                enc.encode_error(&ProviderError::malformed("fuzz"), &mut out);
                continue;
            }
        };
        enc.encode(&event, &mut out);
    }
    enc.encode(&ChatEvent::done(FinishReason::Stop), &mut out);
    assert!(enc.is_done());
    let text = String::from_utf8(out).expect("frames are UTF-8");
    let mut finals = 0;
    for (i, frame) in text.split("\n\n").filter(|f| !f.is_empty()).enumerate() {
        let data = frame
            .split_once("\ndata: ")
            .expect("event and data lines")
            .1;
        let value: serde_json::Value = serde_json::from_str(data).expect("data is JSON");
        assert_eq!(value["sequence_number"], serde_json::json!(i));
        let kind = value["type"].as_str().expect("typed");
        if matches!(
            kind,
            "response.completed" | "response.incomplete" | "response.failed"
        ) {
            finals += 1;
        }
    }
    assert_eq!(finals, 1);
}

/// The text-completion stream decoders (Ollama `/api/generate` NDJSON, OpenAI
/// `/v1/completions` SSE): never panic, same result whole or split. The first byte picks
/// the split, the second the decoder.
pub fn generate_stream(data: &[u8]) {
    use switchyard_stream::decoder::EventDecoder;
    use switchyard_stream::generate::{ollama as gen_ollama, openai as gen_openai};
    let (seed, rest) = seed_and_payload(data);
    let (which, body) = seed_and_payload(rest);
    if which % 2 == 0 {
        let feed: Feed<gen_ollama::GenerateDecoder> = EventDecoder::feed;
        let finish: Finish<gen_ollama::GenerateDecoder> = EventDecoder::finish;
        let whole = drive(Default::default(), &[body], feed, finish);
        let split = drive(Default::default(), &chunks(body, seed), feed, finish);
        assert_eq!(whole, split);
    } else {
        let feed: Feed<gen_openai::CompletionsDecoder> = EventDecoder::feed;
        let finish: Finish<gen_openai::CompletionsDecoder> = EventDecoder::finish;
        let whole = drive(Default::default(), &[body], feed, finish);
        let split = drive(Default::default(), &chunks(body, seed), feed, finish);
        assert_eq!(whole, split);
    }
}

/// The embeddings and completion request codecs of both APIs, and the embeddings answer
/// decoders: never panic; what decodes encodes, and our own encoding decodes again.
pub fn embed_generate_codecs(data: &[u8]) {
    use switchyard_stream::embed::{ollama as emb_ollama, openai as emb_openai};
    use switchyard_stream::generate::{ollama as gen_ollama, openai as gen_openai};
    if let Ok(req) = emb_ollama::decode_request(data) {
        let again = emb_ollama::decode_request(&emb_ollama::encode_request(&req, "m"))
            .expect("own output decodes");
        assert_eq!(again.input, req.input);
        let _ = emb_openai::encode_request(&req, "m");
    }
    if let Ok((req, _)) = emb_openai::decode_request(data) {
        let (again, _) = emb_openai::decode_request(&emb_openai::encode_request(&req, "m"))
            .expect("own output decodes");
        assert_eq!(again.input, req.input);
    }
    let _ = emb_ollama::decode_response(data);
    let _ = emb_openai::decode_response(data);
    if let Ok(req) = gen_ollama::decode_request(data) {
        let again = gen_ollama::decode_request(&gen_ollama::encode_request(&req, "m"))
            .expect("own output decodes");
        assert_eq!(
            (again.prompt, again.suffix),
            (req.prompt.clone(), req.suffix.clone())
        );
        let _ = gen_openai::encode_request(&req, "m");
    }
    if let Ok(req) = gen_openai::decode_request(data) {
        let _ = gen_ollama::encode_request(&req, "m");
    }
}

/// Responses pass-through: the decoder's events and the bytes it keeps for the client do not
/// depend on how the stream is split (the first byte picks the split point), the kept bytes
/// stay within the bound, and `with_model` on any body either fails or keeps every other
/// member and sets `model`.
pub fn responses_passthrough(data: &[u8]) {
    use switchyard_core::RawFrames;
    use switchyard_stream::decoder::EventDecoder;
    use switchyard_stream::responses::passthrough::{PassThroughDecoder, with_model};
    let Some((&first, body)) = data.split_first() else {
        return;
    };
    let run = |split: usize| {
        let frames = RawFrames::new();
        let mut decoder = PassThroughDecoder::new(frames.clone());
        let mut events = Vec::new();
        let (a, b) = body.split_at(split.min(body.len()));
        let mut result = decoder.feed(a, &mut events);
        if result.is_ok() {
            result = decoder.feed(b, &mut events);
        }
        if result.is_ok() {
            result = decoder.finish(&mut events);
        }
        let mut raw = Vec::new();
        frames.take_into(&mut raw);
        assert!(raw.len() <= switchyard_core::MAX_PENDING_FRAME_BYTES);
        (events, raw, result.map_err(|e| e.kind()))
    };
    assert_eq!(run(body.len()), run(usize::from(first)));
    if let Ok(out) = with_model(body, "m\"x") {
        type Object = serde_json::Map<String, serde_json::Value>;
        // Numbers serde_json cannot hold as values are kept as written but not compared.
        let Ok(before) = serde_json::from_slice::<Object>(body) else {
            return;
        };
        let mut after: Object = serde_json::from_slice(&out.bytes).unwrap();
        assert_eq!(after.remove("model"), Some(serde_json::Value::from("m\"x")));
        let mut before = before;
        before.remove("model");
        let lists_tools = before
            .get("tools")
            .and_then(serde_json::Value::as_array)
            .is_some_and(|tools| !tools.is_empty());
        assert_eq!(out.offers_tools, lists_tools);
        assert_eq!(after, before);
    }
}

/// What decoding a body in some pieces gave: the body bytes, whether it ended, and the
/// error that stopped it.
fn decode_in_pieces(
    framing: switchyard_stream::h1::Framing,
    wire: &[u8],
    piece: usize,
) -> (Vec<u8>, bool, Option<WireError>) {
    let mut decoder = BodyDecoder::new(framing);
    let mut buf = BytesMut::new();
    let mut body = Vec::new();
    for part in wire.chunks(piece.max(1)) {
        buf.extend_from_slice(part);
        match decoder.decode(&mut buf) {
            Ok(n) => body.extend_from_slice(&buf.split_to(n)),
            Err(e) => return (body, false, Some(e)),
        }
        // Only a partial line (a chunk size or a trailer) is ever kept back.
        assert!(
            decoder.is_done() || buf.len() <= MAX_TRAILERS.max(MAX_CHUNK_LINE) + 2,
            "{} bytes kept back",
            buf.len()
        );
        if decoder.is_done() {
            break;
        }
    }
    let done = decoder.is_done() || decoder.end_of_input().is_ok();
    (body, done, None)
}

/// An answer (head and body) on the wire, read in pieces whose size comes from the first
/// byte: the head parses or fails without panicking, and the body decodes to the same bytes
/// and the same outcome whether it is read in pieces or all at once.
pub fn h1_answer(data: &[u8]) {
    let Some((&seed, wire)) = data.split_first() else {
        return;
    };
    let mut buf = BytesMut::from(wire);
    let Ok(Some(head)) = parse_head(&mut buf) else {
        return;
    };
    let rest = buf.to_vec();
    let whole = decode_in_pieces(head.framing, &rest, rest.len());
    let pieces = decode_in_pieces(head.framing, &rest, usize::from(seed % 64) + 1);
    assert!(whole.0.len() <= rest.len());
    match (&whole.2, &pieces.2) {
        (None, None) => {
            assert_eq!(whole.0, pieces.0, "the body depends on how it was read");
            assert_eq!(whole.1, pieces.1, "the end depends on how it was read");
        }
        // An error may come earlier or later in pieces (a line's end is not seen yet),
        // but the body decoded before it never disagrees.
        _ => {
            let n = whole.0.len().min(pieces.0.len());
            assert_eq!(whole.0[..n], pieces.0[..n]);
        }
    }
}
