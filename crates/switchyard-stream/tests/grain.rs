//! `DeltaGrain::Merged` (a whole answer's stream) against `PerChunk`: the same answer from
//! fewer events, for every upstream wire and any split of the body into reads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use switchyard_core::{ChatEvent, ChatResponse, ResponseBuilder};
use switchyard_stream::anthropic::AnthropicStreamDecoder;
use switchyard_stream::decoder::EventDecoder;
use switchyard_stream::grain::DeltaGrain;
use switchyard_stream::ollama::OllamaStreamDecoder;
use switchyard_stream::openai::OpenAiStreamDecoder;

/// One delta of the answer: text (`false`) or thinking (`true`), then a tool call or not.
#[derive(Debug, Clone)]
struct Delta {
    thinking: bool,
    text: String,
    call_after: bool,
}

fn deltas() -> impl Strategy<Value = Vec<Delta>> {
    prop::collection::vec(
        (
            any::<bool>(),
            "[a-z \"\\\\é\n]{1,6}",
            prop::bool::weighted(0.1),
        )
            .prop_map(|(thinking, text, call_after)| Delta {
                thinking,
                text,
                call_after,
            }),
        1..24,
    )
}

fn json(s: &str) -> String {
    serde_json::to_string(s).unwrap()
}

fn openai_body(deltas: &[Delta]) -> String {
    let mut body = String::new();
    let mut calls = 0;
    for d in deltas {
        let field = if d.thinking {
            "reasoning_content"
        } else {
            "content"
        };
        body += &format!(
            "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"{field}\":{}}}}}]}}\n\n",
            json(&d.text)
        );
        if d.call_after {
            body += &format!(
                "data: {{\"choices\":[{{\"index\":0,\"delta\":{{\"tool_calls\":[{{\"index\":{calls},\"id\":\"call_{calls}\",\"function\":{{\"name\":\"f\",\"arguments\":\"{{}}\"}}}}]}}}}]}}\n\n"
            );
            calls += 1;
        }
    }
    body += "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n";
    body + "data: [DONE]\n\n"
}

fn ollama_body(deltas: &[Delta]) -> String {
    let mut body = String::new();
    for d in deltas {
        let field = if d.thinking { "thinking" } else { "content" };
        body += &format!(
            "{{\"model\":\"m\",\"message\":{{\"role\":\"assistant\",\"{field}\":{}}},\"done\":false}}\n",
            json(&d.text)
        );
        if d.call_after {
            body += "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\",\"tool_calls\":[{\"function\":{\"name\":\"f\",\"arguments\":{}}}]},\"done\":false}\n";
        }
    }
    body + "{\"model\":\"m\",\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true,\"done_reason\":\"stop\"}\n"
}

fn anthropic_body(deltas: &[Delta]) -> String {
    let mut body = String::from(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"m\",\"content\":[],\"usage\":{\"input_tokens\":1,\"output_tokens\":0}}}\n\n",
    );
    let mut index = 0;
    let mut open: Option<bool> = None;
    let stop = |body: &mut String, index: &mut u32| {
        *body += &format!(
            "event: content_block_stop\ndata: {{\"type\":\"content_block_stop\",\"index\":{index}}}\n\n"
        );
        *index += 1;
    };
    for d in deltas {
        if open != Some(d.thinking) {
            if open.is_some() {
                stop(&mut body, &mut index);
            }
            let start = if d.thinking {
                "{\"type\":\"thinking\",\"thinking\":\"\"}"
            } else {
                "{\"type\":\"text\",\"text\":\"\"}"
            };
            body += &format!(
                "event: content_block_start\ndata: {{\"type\":\"content_block_start\",\"index\":{index},\"content_block\":{start}}}\n\n"
            );
            open = Some(d.thinking);
        }
        let delta = if d.thinking {
            format!(
                "{{\"type\":\"thinking_delta\",\"thinking\":{}}}",
                json(&d.text)
            )
        } else {
            format!("{{\"type\":\"text_delta\",\"text\":{}}}", json(&d.text))
        };
        body += &format!(
            "event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":{index},\"delta\":{delta}}}\n\n"
        );
    }
    if open.is_some() {
        stop(&mut body, &mut index);
    }
    body += "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n";
    body + "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
}

/// Feeds `body` in reads of `read` bytes; returns the events of each read and the whole
/// answer they fold into.
fn decode(
    mut decoder: impl EventDecoder,
    body: &str,
    read: usize,
) -> (Vec<Vec<ChatEvent>>, ChatResponse) {
    let mut reads = Vec::new();
    for piece in body.as_bytes().chunks(read) {
        let mut out = Vec::new();
        decoder.feed(piece, &mut out).unwrap();
        reads.push(out);
    }
    let mut out = Vec::new();
    decoder.finish(&mut out).unwrap();
    reads.push(out);
    let mut builder = ResponseBuilder::default();
    for event in reads.iter().flatten() {
        builder.push(event.clone()).unwrap();
    }
    (reads, builder.finish().unwrap())
}

fn same_kind(a: &ChatEvent, b: &ChatEvent) -> bool {
    matches!(
        (a, b),
        (ChatEvent::TextDelta { .. }, ChatEvent::TextDelta { .. })
            | (
                ChatEvent::ThinkingDelta { .. },
                ChatEvent::ThinkingDelta { .. }
            )
    )
}

/// The merged decode folds to the same answer, has no two neighbouring deltas of one kind
/// within a read, and has no more events than the per-chunk decode.
fn check(per_chunk: impl EventDecoder, merged: impl EventDecoder, body: &str, read: usize) {
    let (chunked_reads, chunked) = decode(per_chunk, body, read);
    let (merged_reads, whole) = decode(merged, body, read);
    assert_eq!(whole, chunked);
    for events in &merged_reads {
        assert!(
            events.windows(2).all(|w| !same_kind(&w[0], &w[1])),
            "{events:?}"
        );
    }
    let count = |r: &Vec<Vec<ChatEvent>>| r.iter().map(Vec::len).sum::<usize>();
    assert!(count(&merged_reads) <= count(&chunked_reads));
}

proptest! {
    #[test]
    fn merged_folds_the_same_on_every_wire(d in deltas(), read in 1usize..400) {
        let merged = DeltaGrain::Merged;
        let openai = OpenAiStreamDecoder::with_id_seed;
        check(openai(1), openai(1).with_grain(merged), &openai_body(&d), read);
        let ollama = OllamaStreamDecoder::with_id_seed;
        check(ollama(1), ollama(1).with_grain(merged), &ollama_body(&d), read);
        let anthropic = AnthropicStreamDecoder::new;
        check(anthropic(), anthropic().with_grain(merged), &anthropic_body(&d), read);
    }
}

/// Decodes `body` in one read; its text must come out as one event, `expected`.
fn one_text_event(decoder: impl EventDecoder, body: &str, expected: &str) {
    let (reads, _) = decode(decoder, body, body.len());
    let texts: Vec<_> = reads
        .iter()
        .flatten()
        .filter(|e| matches!(e, ChatEvent::TextDelta { .. }))
        .collect();
    assert_eq!(texts, [&ChatEvent::text(expected)], "{body}");
}

/// A body read whole: twenty text deltas become one event (what a whole answer on the
/// gateway's default path folds).
#[test]
fn twenty_deltas_in_one_read_are_one_event() {
    let d: Vec<Delta> = (0..20)
        .map(|i| Delta {
            thinking: false,
            text: format!("t{i} "),
            call_after: false,
        })
        .collect();
    let expected: String = d.iter().map(|d| d.text.as_str()).collect();
    let merged = DeltaGrain::Merged;
    one_text_event(
        OpenAiStreamDecoder::new().with_grain(merged),
        &openai_body(&d),
        &expected,
    );
    one_text_event(
        OllamaStreamDecoder::new().with_grain(merged),
        &ollama_body(&d),
        &expected,
    );
}
