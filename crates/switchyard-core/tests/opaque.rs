//! `ResponseBuilder` keeps pass-through block events ([`ChatEvent::Opaque`]) in order, with
//! the text length at their arrival, and bounds them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use switchyard_core::{
    ChatEvent, FinishReason, MAX_OPAQUE_EVENTS, OpaqueMark, OpaquePart, ResponseBuilder,
};

fn opaque(part: OpaquePart, json: &str) -> ChatEvent {
    ChatEvent::Opaque {
        index: 1,
        part,
        json: json.to_owned(),
    }
}

#[test]
fn opaque_events_are_kept_with_their_text_position() {
    let mut b = ResponseBuilder::default();
    b.push(ChatEvent::text("ab")).unwrap();
    b.push(opaque(OpaquePart::Start, r#"{"type":"server_tool_use"}"#))
        .unwrap();
    b.push(opaque(OpaquePart::Stop, "")).unwrap();
    b.push(ChatEvent::text("c")).unwrap();
    b.push(ChatEvent::done(FinishReason::Stop)).unwrap();
    let r = b.finish().unwrap();
    assert_eq!(r.content, "abc");
    assert_eq!(
        r.extras.opaque,
        vec![
            OpaqueMark {
                text_at: 2,
                index: 1,
                part: OpaquePart::Start,
                json: r#"{"type":"server_tool_use"}"#.to_owned(),
            },
            OpaqueMark {
                text_at: 2,
                index: 1,
                part: OpaquePart::Stop,
                json: String::new(),
            },
        ]
    );
    let json = serde_json::to_string(&r.extras).unwrap();
    assert!(json.contains(r#""part":"start""#), "{json}");
    // Replayed as events, the marks come back at their places.
    let mut again = ResponseBuilder::default();
    for e in r.to_events() {
        again.push(e).unwrap();
    }
    assert_eq!(again.finish().unwrap(), r);
}

#[test]
fn too_many_opaque_events_are_refused() {
    let mut b = ResponseBuilder::default();
    for _ in 0..MAX_OPAQUE_EVENTS {
        b.push(opaque(OpaquePart::Stop, "")).unwrap();
    }
    let err = b.push(opaque(OpaquePart::Stop, "")).unwrap_err();
    assert_eq!(err.reason_code(), "malformed_stream");
}
