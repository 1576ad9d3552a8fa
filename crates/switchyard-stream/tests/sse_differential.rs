//! Differential test of our SSE framer against `eventsource-stream` (the oracle): the same
//! events for any input and any split of it; and the framer's limits.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::convert::Infallible;

use eventsource_stream::Eventsource;
use futures::StreamExt;
use proptest::prelude::*;
use switchyard_stream::sse::{FrameError, SseFramer};

/// (event type, data, last id, retry ms): what both implementations can report.
type Seen = (String, String, String, Option<u64>);

fn ours(chunks: &[&[u8]]) -> Vec<Seen> {
    let mut framer = SseFramer::new();
    let mut out = Vec::new();
    for c in chunks {
        framer.push(c);
        while let Some(ev) = framer.next_event() {
            let ev = ev.expect("no limit hit");
            out.push((
                ev.event.unwrap_or_else(|| "message".to_owned()),
                ev.data,
                ev.id.unwrap_or_default(),
                ev.retry,
            ));
        }
    }
    out
}

fn oracle(chunks: &[&[u8]]) -> Vec<Seen> {
    let owned: Vec<Result<Vec<u8>, Infallible>> = chunks.iter().map(|c| Ok(c.to_vec())).collect();
    let events = futures::executor::block_on(
        futures::stream::iter(owned)
            .eventsource()
            .collect::<Vec<_>>(),
    );
    events
        .into_iter()
        .map(|e| {
            let e = e.expect("valid UTF-8 input");
            (
                e.event,
                e.data,
                e.id,
                e.retry.map(|d| u64::try_from(d.as_millis()).unwrap()),
            )
        })
        .collect()
}

fn line_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "data: [a-zA-Z0-9 {}\":,é日]{0,12}".prop_map(|s| s),
        "data:[a-z ]{0,6}",
        Just("data".to_owned()),
        Just("data: [DONE]".to_owned()),
        "event: ?[a-z_]{0,8}",
        "id: ?[0-9a-z]{0,4}",
        Just("id".to_owned()),
        "retry: ?[0-9]{1,5}",
        Just("retry: soon".to_owned()),
        ": ?[a-z -]{0,10}",
        Just(String::new()),
        Just(String::new()),
        "[a-z]{1,5}: ?[a-z]{0,4}",
        "[a-z]{1,5}",
    ]
}

fn terminator_strategy() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just("\n"), 1 => Just("\r"), 2 => Just("\r\n")]
}

fn split<'a>(b: &'a [u8], cuts: &[usize]) -> Vec<&'a [u8]> {
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

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn same_events_as_eventsource_stream(
        lines in proptest::collection::vec((line_strategy(), terminator_strategy()), 0..24),
        cuts in proptest::collection::vec(any::<usize>(), 0..12),
    ) {
        let mut input = String::new();
        for (line, term) in &lines {
            input.push_str(line);
            input.push_str(term);
        }
        let bytes = input.as_bytes();
        let whole = oracle(&[bytes]);
        let chunks = split(bytes, &cuts);
        prop_assert_eq!(ours(&chunks), whole.clone(), "ours vs oracle, input {:?}", input);
        prop_assert_eq!(oracle(&chunks), whole, "the oracle itself is split-invariant");
    }
}

#[test]
fn byte_at_a_time_long_event() {
    let mut input = b"event: big\ndata: ".to_vec();
    input.extend(std::iter::repeat_n(b'x', 100_000));
    input.extend_from_slice(b"\r\n\r\n");
    let chunks: Vec<&[u8]> = input.chunks(1).collect();
    let got = ours(&chunks);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].0, "big");
    assert_eq!(got[0].1.len(), 100_000);
}

#[test]
fn event_past_the_limit_is_a_clear_error_and_nothing_more() {
    let mut framer = SseFramer::with_max_event(1024);
    framer.push(b"data: ");
    for _ in 0..20 {
        framer.push(&[b'a'; 100]);
    }
    let err = framer
        .next_event()
        .expect("an error")
        .expect_err("too long");
    assert_eq!(err, FrameError::EventTooLong { max: 1024 });
    assert_eq!(err.reason_code(), "event_too_long");
    framer.push(b"\n\ndata: ok\n\n");
    assert!(framer.next_event().is_none());
}

#[test]
fn many_data_lines_count_toward_the_limit() {
    let mut framer = SseFramer::with_max_event(1000);
    for _ in 0..100 {
        framer.push(b"data: 0123456789\n");
    }
    let got = framer.next_event();
    assert!(matches!(got, Some(Err(FrameError::EventTooLong { .. }))));
}

#[test]
fn finish_dispatches_a_last_event_without_blank_line() {
    let mut framer = SseFramer::new();
    framer.push(b"data: a\n\ndata: [DONE]");
    assert_eq!(framer.next_event().unwrap().unwrap().data, "a");
    assert!(framer.next_event().is_none());
    assert_eq!(framer.finish().unwrap().unwrap().data, "[DONE]");
    assert!(framer.finish().is_none());
}

#[test]
fn last_line_at_finish_is_held_to_the_limit_too() {
    // 35 raw bytes, but 90 once the invalid bytes become U+FFFD.
    let mut framer = SseFramer::with_max_event(64);
    framer.push(b"data:");
    framer.push(&[0xff; 30]);
    assert!(framer.next_event().is_none());
    assert!(matches!(
        framer.finish(),
        Some(Err(FrameError::EventTooLong { max: 64 }))
    ));
    assert!(framer.finish().is_none());
}

#[test]
fn strict_framer_refuses_invalid_utf8_while_the_default_replaces_it() {
    let input: &[u8] = b"data: caf\xc3\xa9\n\ndata: bad \xff here\n\ndata: after\n\n";
    let mut lenient = SseFramer::new();
    lenient.push(input);
    assert_eq!(lenient.next_event().unwrap().unwrap().data, "café");
    assert_eq!(
        lenient.next_event().unwrap().unwrap().data,
        "bad \u{fffd} here"
    );

    let mut strict = SseFramer::new().strict_utf8();
    // A valid two-byte character split between chunks is fine.
    strict.push(b"data: caf\xc3");
    strict.push(b"\xa9\n\n");
    assert_eq!(strict.next_event().unwrap().unwrap().data, "café");
    strict.push(&input[b"data: caf\xc3\xa9\n\n".len()..]);
    let err = strict.next_event().unwrap().expect_err("invalid UTF-8");
    assert_eq!(err, FrameError::InvalidUtf8);
    assert_eq!(err.reason_code(), "invalid_utf8");
    assert!(strict.next_event().is_none(), "nothing after the error");
}
