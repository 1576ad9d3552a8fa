//! encode -> split at random points -> decode gives back the same events, for both
//! protocols; tool-call accumulation does not depend on how arguments are fragmented.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::Value;
use switchyard_core::{ChatEvent, FinishReason, ToolCallAccumulator, Usage};
use switchyard_stream::anthropic::{AnthropicStreamDecoder, AnthropicStreamEncoder};
use switchyard_stream::ollama::{OllamaStreamDecoder, OllamaStreamEncoder};
use switchyard_stream::openai::{OpenAiStreamDecoder, OpenAiStreamEncoder};

/// A protocol-independent view of a stream: consecutive deltas merged, calls whole.
#[derive(Debug, Clone, PartialEq)]
enum Norm {
    Text(String),
    Thinking(String),
    Call {
        id: String,
        name: String,
        args: Value,
    },
    Usage(u32, u32),
    Signature(String),
    Done(FinishReason),
}

fn normalise(events: &[ChatEvent]) -> Vec<Norm> {
    let mut out: Vec<Norm> = Vec::new();
    // (index, position of the call in `out`, arguments so far)
    let mut open: Vec<(u32, usize, String)> = Vec::new();
    for ev in events {
        match ev {
            ChatEvent::TextDelta { text } => {
                if let Some(Norm::Text(t)) = out.last_mut() {
                    t.push_str(text);
                } else if !text.is_empty() {
                    out.push(Norm::Text(text.clone()));
                }
            }
            ChatEvent::ThinkingDelta { text } => {
                if let Some(Norm::Thinking(t)) = out.last_mut() {
                    t.push_str(text);
                } else if !text.is_empty() {
                    out.push(Norm::Thinking(text.clone()));
                }
            }
            ChatEvent::ThinkingSignature { signature } => {
                out.push(Norm::Signature(signature.clone()));
            }
            ChatEvent::RedactedThinking { data } => out.push(Norm::Signature(data.clone())),
            ChatEvent::ToolCallStart { index, id, name } => {
                open.push((*index, out.len(), String::new()));
                out.push(Norm::Call {
                    id: id.clone(),
                    name: name.clone(),
                    args: Value::Null,
                });
            }
            ChatEvent::ToolCallArgs { index, fragment } => {
                let c = open.iter_mut().find(|c| c.0 == *index).expect("started");
                c.2.push_str(fragment);
            }
            ChatEvent::ToolCallEnd { index } => {
                let pos = open.iter().position(|c| c.0 == *index).expect("started");
                let (_, at, text) = open.remove(pos);
                if let Norm::Call { args, .. } = &mut out[at] {
                    *args = serde_json::from_str(&text).expect("arguments are JSON");
                }
            }
            ChatEvent::Usage(u) => out.push(Norm::Usage(u.prompt_tokens, u.completion_tokens)),
            ChatEvent::Done { finish_reason } => out.push(Norm::Done(finish_reason.clone())),
            // Block boundaries and pass-through blocks exist only between Anthropic ends.
            ChatEvent::Opaque { .. } => {}
        }
    }
    out
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Thinking(String),
    /// A call: name, arguments object as text, how to cut the text into fragments.
    Call(String, String, Vec<usize>),
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9 ,.!?]{1,12}",
        "[\"\\\\\n\r\t/<>{}\\[\\]:]{1,6}",
        "[ -~éü日本語🦀\u{2028}]{1,8}",
    ]
}

fn args_strategy() -> impl Strategy<Value = String> {
    proptest::collection::btree_map("[a-z_]{1,6}", text_strategy(), 0..4)
        .prop_map(|m| serde_json::to_string(&m).expect("map serialises"))
}

fn piece_strategy() -> impl Strategy<Value = Piece> {
    prop_oneof![
        4 => text_strategy().prop_map(Piece::Text),
        1 => text_strategy().prop_map(Piece::Thinking),
        1 => ("[a-z_]{1,10}", args_strategy(), proptest::collection::vec(0usize..64, 0..4))
            .prop_map(|(n, a, cuts)| Piece::Call(n, a, cuts)),
    ]
}

fn reason_strategy() -> impl Strategy<Value = FinishReason> {
    prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::Length),
        Just(FinishReason::ToolCalls),
    ]
}

/// Builds the event sequence: pieces, then usage, then done.
fn events(pieces: &[Piece], usage: Option<(u32, u32)>, reason: FinishReason) -> Vec<ChatEvent> {
    let mut ev = Vec::new();
    let mut index = 0u32;
    for p in pieces {
        match p {
            Piece::Text(t) => ev.push(ChatEvent::text(t.clone())),
            Piece::Thinking(t) => ev.push(ChatEvent::thinking(t.clone())),
            Piece::Call(name, args, cuts) => {
                ev.push(ChatEvent::ToolCallStart {
                    index,
                    id: format!("call_{index}x"),
                    name: name.clone(),
                });
                for frag in split_str(args, cuts) {
                    ev.push(ChatEvent::ToolCallArgs {
                        index,
                        fragment: frag.to_owned(),
                    });
                }
                ev.push(ChatEvent::ToolCallEnd { index });
                index += 1;
            }
        }
    }
    if let Some((p, c)) = usage {
        ev.push(ChatEvent::Usage(Usage {
            prompt_tokens: p,
            completion_tokens: c,
            ..Usage::default()
        }));
    }
    ev.push(ChatEvent::done(reason));
    ev
}

/// Cuts `s` at the given offsets (clamped to char boundaries).
fn split_str<'a>(s: &'a str, cuts: &[usize]) -> Vec<&'a str> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (s.len() + 1)).collect();
    points.sort_unstable();
    let mut out = Vec::new();
    let mut last = 0;
    for mut p in points {
        while !s.is_char_boundary(p) {
            p -= 1;
        }
        if p > last {
            out.push(&s[last..p]);
            last = p;
        }
    }
    out.push(&s[last..]);
    out
}

/// Cuts bytes anywhere (also inside UTF-8 sequences and CRLF pairs).
fn split_bytes<'a>(b: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (b.len() + 1)).collect();
    points.sort_unstable();
    points.dedup();
    let mut out = Vec::new();
    let mut last = 0;
    for p in points {
        out.push(&b[last..p]);
        last = p;
    }
    out.push(&b[last..]);
    out
}

/// What a decoder should give back for `input` events.
fn expected(input: &[ChatEvent], ollama: bool) -> Vec<Norm> {
    let mut norm = normalise(input);
    let made_calls = norm.iter().any(|n| matches!(n, Norm::Call { .. }));
    for n in &mut norm {
        if let Norm::Done(r) = n {
            if made_calls && *r == FinishReason::Stop {
                // A plain stop after calls reads as `tool_calls`; a length stop stays one.
                *r = FinishReason::ToolCalls;
            }
            // Ollama has no `tool_calls` done_reason: without calls it reads back as `stop`.
            if ollama && !made_calls && *r == FinishReason::ToolCalls {
                *r = FinishReason::Stop;
            }
        }
    }
    norm
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn ollama_encode_split_decode(
        pieces in proptest::collection::vec(piece_strategy(), 0..12),
        usage in proptest::option::of((0u32..100_000, 0u32..100_000)),
        reason in reason_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let input = events(&pieces, usage, reason);
        let mut enc = OllamaStreamEncoder::new("m", "2025-01-01T00:00:00Z");
        let mut wire = Vec::new();
        for ev in &input {
            enc.encode(ev, &mut wire);
        }
        prop_assert!(enc.is_done());
        let mut dec = OllamaStreamDecoder::with_id_seed(9);
        let mut out = Vec::new();
        for part in split_bytes(&wire, &cuts) {
            dec.feed(part, &mut out).expect("decodes");
        }
        dec.finish(&mut out).expect("complete");
        prop_assert!(dec.is_done());
        // Ollama always reports usage on the done line (zeros when unknown).
        let mut want = expected(&input, true);
        if usage.is_none() {
            let at = want.len() - 1;
            want.insert(at, Norm::Usage(0, 0));
        }
        prop_assert_eq!(normalise(&out), want);
    }

    #[test]
    fn openai_encode_split_decode(
        pieces in proptest::collection::vec(piece_strategy(), 0..12),
        usage in proptest::option::of((0u32..100_000, 0u32..100_000)),
        reason in reason_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let input = events(&pieces, usage, reason);
        let mut enc = OpenAiStreamEncoder::new("m", "chatcmpl-1", 1, true);
        let mut wire = Vec::new();
        for ev in &input {
            enc.encode(ev, &mut wire);
        }
        prop_assert!(enc.is_done());
        let mut dec = OpenAiStreamDecoder::with_id_seed(9);
        let mut out = Vec::new();
        for part in split_bytes(&wire, &cuts) {
            dec.feed(part, &mut out).expect("decodes");
        }
        dec.finish(&mut out).expect("complete");
        prop_assert!(dec.is_done());
        let mut want = expected(&input, false);
        if usage.is_none() {
            let at = want.len() - 1;
            want.insert(at, Norm::Usage(0, 0));
        }
        prop_assert_eq!(normalise(&out), want);
    }

    /// Anthropic: typed SSE events written by our encoder, split anywhere, decode back to
    /// the same events; without upstream usage, the input figure given to the encoder.
    #[test]
    fn anthropic_encode_split_decode(
        pieces in proptest::collection::vec(piece_strategy(), 0..12),
        usage in proptest::option::of((0u32..100_000, 0u32..100_000)),
        reason in reason_strategy(),
        cuts in proptest::collection::vec(any::<usize>(), 0..16),
    ) {
        let input = events(&pieces, usage, reason);
        let mut enc = AnthropicStreamEncoder::new("m", "msg_1", 7);
        let mut wire = Vec::new();
        input.iter().for_each(|ev| enc.encode(ev, &mut wire));
        prop_assert!(enc.is_done());
        let mut dec = AnthropicStreamDecoder::new();
        let mut out = Vec::new();
        split_bytes(&wire, &cuts).into_iter().try_for_each(|part| dec.feed(part, &mut out)).expect("decodes");
        dec.finish(&mut out).expect("complete");
        let mut want = expected(&input, false);
        if usage.is_none() {
            want.insert(want.len() - 1, Norm::Usage(7, 0));
        }
        prop_assert_eq!(normalise(&out), want);
    }

    /// The accumulator gives the same calls whatever the fragmentation of the arguments.
    #[test]
    fn accumulator_is_split_invariant(
        calls in proptest::collection::vec(("[a-z]{1,8}", args_strategy(), proptest::collection::vec(0usize..64, 0..6)), 1..5),
    ) {
        let mut whole = ToolCallAccumulator::default();
        let mut split = ToolCallAccumulator::default();
        for (i, (name, args, cuts)) in calls.iter().enumerate() {
            let index = u32::try_from(i).expect("small");
            let start = ChatEvent::ToolCallStart { index, id: format!("call_{i}"), name: name.clone() };
            whole.push(&start).expect("ok");
            split.push(&start).expect("ok");
            whole.push(&ChatEvent::ToolCallArgs { index, fragment: args.clone() }).expect("ok");
            for frag in split_str(args, cuts) {
                split.push(&ChatEvent::ToolCallArgs { index, fragment: frag.to_owned() }).expect("ok");
            }
            whole.push(&ChatEvent::ToolCallEnd { index }).expect("ok");
            split.push(&ChatEvent::ToolCallEnd { index }).expect("ok");
        }
        prop_assert_eq!(whole.finish().expect("valid"), split.finish().expect("valid"));
    }

    /// Two interleaved OpenAI calls with arguments in random fragments decode to the same
    /// calls as when each arrives in one piece.
    #[test]
    fn openai_interleaved_calls_are_split_invariant(
        a in args_strategy(), b in args_strategy(),
        cuts_a in proptest::collection::vec(0usize..64, 0..6),
        cuts_b in proptest::collection::vec(0usize..64, 0..6),
    ) {
        let frame = |delta: String| format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{delta}]}}}}]}}\n\n"
        );
        let mut wire = String::new();
        wire += &frame(r#"{"index":0,"id":"call_a","type":"function","function":{"name":"fa","arguments":""}}"#.into());
        wire += &frame(r#"{"index":1,"id":"call_b","type":"function","function":{"name":"fb","arguments":""}}"#.into());
        let fa = split_str(&a, &cuts_a);
        let fb = split_str(&b, &cuts_b);
        for i in 0..fa.len().max(fb.len()) {
            for (idx, frags) in [(0, &fa), (1, &fb)] {
                if let Some(f) = frags.get(i) {
                    let args = serde_json::to_string(f).expect("string");
                    wire += &frame(format!(r#"{{"index":{idx},"function":{{"arguments":{args}}}}}"#));
                }
            }
        }
        wire += "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n";
        let mut dec = OpenAiStreamDecoder::with_id_seed(1);
        let mut out = Vec::new();
        dec.feed(wire.as_bytes(), &mut out).expect("decodes");
        dec.finish(&mut out).expect("complete");
        let calls: Vec<Norm> = normalise(&out).into_iter().filter(|n| matches!(n, Norm::Call { .. })).collect();
        prop_assert_eq!(calls, vec![
            Norm::Call { id: "call_a".into(), name: "fa".into(), args: serde_json::from_str(&a).expect("json") },
            Norm::Call { id: "call_b".into(), name: "fb".into(), args: serde_json::from_str(&b).expect("json") },
        ]);
    }
}
