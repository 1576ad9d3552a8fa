use super::*;

const STREAM: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"status\":\"in_progress\"}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"web_search_call\",\"id\":\"ws_1\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"output_index\":1,\"delta\":\"Hi \\\"there\\\"\"}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":3,\"output_index\":2,\"item\":{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"\"}}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":4,\"output_index\":2,\"item\":{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":5,\"response\":{\"id\":\"resp_up\",\"status\":\"completed\",\"usage\":{\"input_tokens\":11,\"output_tokens\":7,\"total_tokens\":18}}}\n\n",
);

fn run(bytes: &[u8], split: usize) -> (Vec<ChatEvent>, Vec<u8>, Result<(), ProviderError>) {
    let frames = RawFrames::new();
    let mut decoder = PassThroughDecoder::new(frames.clone());
    let mut events = Vec::new();
    let mut result = Ok(());
    for chunk in bytes.chunks(split.max(1)) {
        result = decoder.feed(chunk, &mut events);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = decoder.finish(&mut events);
    }
    let mut raw = Vec::new();
    frames.take_into(&mut raw);
    (events, raw, result)
}

#[test]
fn the_stream_passes_unchanged_and_its_events_are_read_however_split() {
    for split in [1, 7, 64, STREAM.len()] {
        let (events, raw, result) = run(STREAM.as_bytes(), split);
        result.unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), STREAM, "split {split}");
        assert_eq!(
            events,
            vec![
                ChatEvent::text("Hi \"there\""),
                ChatEvent::ToolCallStart {
                    index: 0,
                    id: "call_1".into(),
                    name: "get_weather".into()
                },
                ChatEvent::ToolCallArgs {
                    index: 0,
                    fragment: "{\"city\":\"Oslo\"}".into()
                },
                ChatEvent::ToolCallEnd { index: 0 },
                ChatEvent::Usage(Usage {
                    prompt_tokens: 11,
                    completion_tokens: 7,
                    ..Usage::default()
                }),
                ChatEvent::done(FinishReason::ToolCalls),
            ]
        );
    }
}

#[test]
fn a_failed_response_is_passed_on_and_ends_as_an_error() {
    let failed = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":1,\"response\":{\"id\":\"r\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"boom\"}}}\n\n";
    let frames = RawFrames::new();
    let mut decoder = PassThroughDecoder::new(frames.clone());
    let err = decoder
        .feed(failed.as_bytes(), &mut Vec::new())
        .unwrap_err();
    assert!(err.message().contains("boom"), "{err}");
    assert!(frames.meta().ended);
    let mut raw = Vec::new();
    frames.take_into(&mut raw);
    assert_eq!(raw, failed.as_bytes());
}

#[test]
fn a_stream_without_its_final_event_ended_early() {
    let cut = STREAM.find("event: response.completed").unwrap();
    let (_, _, result) = run(&STREAM.as_bytes()[..cut], 5);
    assert_eq!(
        result.unwrap_err().kind(),
        switchyard_core::ErrorKind::StreamEndedEarly
    );
}

#[test]
fn with_model_replaces_only_the_model_and_keeps_every_other_member_verbatim() {
    let body = br#"{ "input": [{"type":"reasoning","encrypted_content":"gAAA\u002b=="}],
        "model" : "alias", "tools":[{"type":"web_search","zz":1,"aa":2}], "stream":true }"#;
    let sent = with_model(body, "gpt-5").unwrap();
    assert!(sent.offers_tools);
    let out = String::from_utf8(sent.bytes).unwrap();
    assert_eq!(
        out,
        r#"{"input":[{"type":"reasoning","encrypted_content":"gAAA\u002b=="}],"model":"gpt-5","tools":[{"type":"web_search","zz":1,"aa":2}],"stream":true}"#
    );
    let sent = with_model(br#"{"input":"hi"}"#, "m").unwrap();
    assert_eq!(sent.bytes, br#"{"input":"hi","model":"m"}"#);
    assert!(!sent.offers_tools);
    for empty in [r#"{"tools":[]}"#, r#"{"tools":[ ]}"#, r#"{"tools":null}"#] {
        assert!(
            !with_model(empty.as_bytes(), "m").unwrap().offers_tools,
            "{empty}"
        );
    }
    assert!(with_model(b"[1]", "m").is_err());
    assert!(with_model(b"{\"a\":", "m").is_err());
}

#[test]
fn a_whole_response_carries_text_calls_usage_and_its_end() {
    let body = br#"{"id":"r","status":"incomplete","output":[
        {"type":"reasoning","summary":[{"type":"summary_text","text":"think"}]},
        {"type":"message","content":[{"type":"output_text","text":"Hello"}]},
        {"type":"custom_tool_call","call_id":"c","name":"apply_patch","input":"*** x"}],
        "usage":{"input_tokens":3,"output_tokens":4,"input_tokens_details":{"cached_tokens":2}}}"#;
    let events = decode_whole(body).unwrap();
    assert_eq!(events[0], ChatEvent::thinking("think"));
    assert_eq!(events[1], ChatEvent::text("Hello"));
    assert_eq!(
        events[3],
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: r#"{"input":"*** x"}"#.into()
        }
    );
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Length)));
    assert_eq!(
        events[events.len() - 2],
        ChatEvent::Usage(Usage {
            prompt_tokens: 1,
            completion_tokens: 4,
            cache_read_tokens: 2,
            ..Usage::default()
        })
    );
    let failed = br#"{"status":"failed","error":{"code":"rate_limit_exceeded","message":"slow"}}"#;
    assert_eq!(
        decode_whole(failed).unwrap_err().kind(),
        switchyard_core::ErrorKind::RateLimited
    );
}

#[test]
fn the_closing_events_continue_the_upstreams_sequence() {
    let mut out = Vec::new();
    encode_failure(
        &ProviderError::ended_early("cut"),
        Some("resp_up"),
        Some(4),
        &mut out,
    );
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("event: error\ndata: {"), "{text}");
    assert!(text.contains("\"sequence_number\":5"), "{text}");
    assert!(text.contains("\"sequence_number\":6"), "{text}");
    assert!(text.contains("\"id\":\"resp_up\""), "{text}");
    assert!(text.contains("event: response.failed"), "{text}");
}

const ERRORED: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"status\":\"in_progress\"}}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"output_index\":0,\"delta\":\"Hel\"}\n\n",
    "event: error\ndata: {\"type\":\"error\",\"sequence_number\":2,\"code\":\"server_error\",\"message\":\"model crashed\"}\n\n",
    "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":3,\"output_index\":0,\"delta\":\"late\"}\n\n",
);

const FAILED: &str = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":4,\"response\":{\"id\":\"resp_up\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\",\"message\":\"model crashed\"}}}\n\n";

#[test]
fn after_an_error_event_the_upstreams_events_pass_up_to_its_response_failed() {
    let stream = format!("{ERRORED}{FAILED}");
    for split in [1, 9, stream.len()] {
        let (events, raw, result) = run(stream.as_bytes(), split);
        let err = result.unwrap_err();
        assert!(err.message().contains("model crashed"), "{err}");
        assert_eq!(events, vec![ChatEvent::text("Hel")], "split {split}");
        assert_eq!(String::from_utf8(raw).unwrap(), stream, "split {split}");
    }
}

#[test]
fn an_error_event_without_response_failed_gets_our_own() {
    let frames = RawFrames::new();
    let mut decoder = PassThroughDecoder::new(frames.clone());
    let mut events = Vec::new();
    decoder.feed(ERRORED.as_bytes(), &mut events).unwrap();
    assert!(
        !frames.meta().ended,
        "the upstream's response.failed may follow"
    );
    let err = decoder.finish(&mut events).unwrap_err();
    assert!(err.message().contains("model crashed"), "{err}");
    assert!(frames.meta().ended);
    let mut raw = Vec::new();
    frames.take_into(&mut raw);
    let text = String::from_utf8(raw).unwrap();
    let closing = text.strip_prefix(ERRORED).unwrap();
    assert!(
        closing.starts_with("event: response.failed\ndata: {"),
        "{closing}"
    );
    assert!(closing.contains("\"sequence_number\":4"), "{closing}");
    assert!(closing.contains("\"id\":\"resp_up\""), "{closing}");
    assert!(closing.contains("model crashed"), "{closing}");
    assert_eq!(closing.matches("event: ").count(), 1, "{closing}");
}

/// A function call and a custom tool call whose arguments / input come as deltas (the
/// custom one with a character JSON escapes), then the end.
const DELTAS: &str = concat!(
    "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_up\",\"status\":\"in_progress\",\"output\":null}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":1,\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"\"}}\n\n",
    "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":2,\"output_index\":0,\"item_id\":\"fc_1\",\"delta\":\"{\\\"city\\\":\"}\n\n",
    "event: response.function_call_arguments.delta\ndata: {\"type\":\"response.function_call_arguments.delta\",\"sequence_number\":3,\"output_index\":0,\"item_id\":\"fc_1\",\"delta\":\"\\\"Oslo\\\"}\"}\n\n",
    "event: response.function_call_arguments.done\ndata: {\"type\":\"response.function_call_arguments.done\",\"sequence_number\":4,\"output_index\":0,\"item_id\":\"fc_1\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":5,\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"call_1\",\"name\":\"get_weather\",\"arguments\":\"{\\\"city\\\":\\\"Oslo\\\"}\"}}\n\n",
    "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":6,\"output_index\":1,\"item\":{\"type\":\"custom_tool_call\",\"call_id\":\"call_2\",\"name\":\"apply_patch\",\"input\":\"\"}}\n\n",
    "event: response.custom_tool_call_input.delta\ndata: {\"type\":\"response.custom_tool_call_input.delta\",\"sequence_number\":7,\"output_index\":1,\"item_id\":\"ctc_1\",\"delta\":\"*** Begin\\n\"}\n\n",
    "event: response.custom_tool_call_input.delta\ndata: {\"type\":\"response.custom_tool_call_input.delta\",\"sequence_number\":8,\"output_index\":1,\"item_id\":\"ctc_1\",\"delta\":\"say \\\"hi\\\"\"}\n\n",
    "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\",\"sequence_number\":9,\"output_index\":1,\"item\":{\"type\":\"custom_tool_call\",\"call_id\":\"call_2\",\"name\":\"apply_patch\",\"input\":\"*** Begin\\nsay \\\"hi\\\"\"}}\n\n",
    "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":10,\"response\":{\"id\":\"resp_up\",\"status\":\"completed\",\"usage\":{\"input_tokens\":5,\"output_tokens\":3}}}\n\n",
);

/// Each call's fragments, joined, as the client of a translated answer would assemble them.
fn arguments_of(events: &[ChatEvent]) -> Vec<String> {
    let mut calls: Vec<String> = Vec::new();
    for event in events {
        match event {
            ChatEvent::ToolCallStart { .. } => calls.push(String::new()),
            ChatEvent::ToolCallArgs { index, fragment } => {
                calls[*index as usize].push_str(fragment);
            }
            _ => {}
        }
    }
    calls
}

#[test]
fn argument_and_input_deltas_come_out_as_they_arrive() {
    // Up to the first argument delta: the call's start and that delta are out, so the
    // client gets the bytes while the model is still writing the arguments.
    let first = DELTAS
        .find("event: response.function_call_arguments.delta")
        .unwrap();
    let second = first + DELTAS[first..].find("\n\n").unwrap() + 2;
    let frames = RawFrames::new();
    let mut decoder = PassThroughDecoder::new(frames.clone());
    let mut events = Vec::new();
    decoder
        .feed(&DELTAS.as_bytes()[..second], &mut events)
        .unwrap();
    assert_eq!(
        events.last(),
        Some(&ChatEvent::ToolCallArgs {
            index: 0,
            fragment: "{\"city\":".into()
        }),
        "{events:?}"
    );
    // The custom tool's input: the first fragment opens the `input` argument.
    let custom = DELTAS
        .find("event: response.custom_tool_call_input.delta")
        .unwrap();
    let after = custom + DELTAS[custom..].find("\n\n").unwrap() + 2;
    events.clear();
    decoder
        .feed(&DELTAS.as_bytes()[second..after], &mut events)
        .unwrap();
    assert_eq!(
        events.last(),
        Some(&ChatEvent::ToolCallArgs {
            index: 1,
            fragment: "{\"input\":\"*** Begin\\n".into()
        }),
        "{events:?}"
    );

    // However split: the fragments of each call form its arguments exactly once.
    for split in [1, 13, DELTAS.len()] {
        let (events, raw, result) = run(DELTAS.as_bytes(), split);
        result.unwrap();
        assert_eq!(String::from_utf8(raw).unwrap(), DELTAS, "split {split}");
        let args = arguments_of(&events);
        assert_eq!(args[0], "{\"city\":\"Oslo\"}", "split {split}");
        let input: serde_json::Value = serde_json::from_str(&args[1]).unwrap();
        assert_eq!(
            input,
            json!({"input": "*** Begin\nsay \"hi\""}),
            "split {split}"
        );
        let ends = events
            .iter()
            .filter(|e| matches!(e, ChatEvent::ToolCallEnd { .. }))
            .count();
        assert_eq!(ends, 2);
        assert_eq!(
            events.last(),
            Some(&ChatEvent::done(FinishReason::ToolCalls))
        );
    }
}

#[test]
fn a_call_without_deltas_gets_its_arguments_at_its_end() {
    // STREAM has no argument deltas: the done item's arguments are the one fragment.
    let (events, _, result) = run(STREAM.as_bytes(), 11);
    result.unwrap();
    assert_eq!(arguments_of(&events), ["{\"city\":\"Oslo\"}"]);
}

#[test]
fn null_lists_read_as_empty() {
    let stream = concat!(
        "event: response.output_item.added\ndata: {\"type\":\"response.output_item.added\",\"sequence_number\":0,\"output_index\":0,\"item\":{\"type\":\"function_call\",\"call_id\":\"c\",\"name\":\"f\",\"arguments\":\"\",\"content\":null,\"summary\":null}}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"r\",\"status\":\"completed\",\"output\":[{\"type\":\"message\",\"content\":null},{\"type\":\"reasoning\",\"summary\":null,\"content\":null}],\"usage\":{\"input_tokens\":2,\"output_tokens\":1}}}\n\n",
    );
    let (events, _, result) = run(stream.as_bytes(), 7);
    result.unwrap();
    assert_eq!(
        events
            .first()
            .map(|e| matches!(e, ChatEvent::ToolCallStart { .. })),
        Some(true)
    );
    assert_eq!(
        events.last(),
        Some(&ChatEvent::done(FinishReason::ToolCalls))
    );

    let whole = br#"{"id":"r","status":"completed","output":[
        {"type":"message","content":null},{"type":"reasoning","summary":null,"content":null},
        {"type":"message","content":[{"type":"output_text","text":"ok"}]}],
        "usage":{"input_tokens":1,"output_tokens":1}}"#;
    let events = decode_whole(whole).unwrap();
    assert_eq!(events[0], ChatEvent::text("ok"));
    let events = decode_whole(br#"{"id":"r","status":"completed","output":null}"#).unwrap();
    assert_eq!(events, vec![ChatEvent::done(FinishReason::Stop)]);
}

#[test]
fn a_final_event_that_cannot_be_read_still_ends_the_stream() {
    // The upstream's final event went to the client as sent: whatever the decoder makes of
    // it, the stream has its terminal event and no second one may follow.
    for last in [
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":1,\"response\":{\"id\":\"r\",\"status\":\"completed\",\"usage\":\"lots\"}}\n\n",
        "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":\"one\",\"response\":{\"id\":\"r\"}}\n\n",
        "event: response.incomplete\ndata: {\"type\":\"response.incomplete\",\"output_index\":-1}\n\n",
    ] {
        let stream = format!(
            "event: response.output_text.delta\ndata: {{\"type\":\"response.output_text.delta\",\"sequence_number\":0,\"output_index\":0,\"delta\":\"Hi\"}}\n\n{last}"
        );
        let (events, raw, result) = run(stream.as_bytes(), 64);
        let err = result.unwrap_err();
        assert_eq!(
            err.kind(),
            switchyard_core::ErrorKind::MalformedStream,
            "{err}"
        );
        assert!(err.message().contains("response."), "{err}");
        assert_eq!(events, vec![ChatEvent::text("Hi")]);
        assert_eq!(String::from_utf8(raw).unwrap(), stream);
        let frames = RawFrames::new();
        let mut decoder = PassThroughDecoder::new(frames.clone());
        let _ = decoder.feed(stream.as_bytes(), &mut Vec::new());
        assert!(frames.meta().ended, "{last}");
    }
}
