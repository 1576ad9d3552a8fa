//! The Responses codec: documented request payloads (OpenAI's API reference, Codex's
//! requests) decode into the expected chat request; the stream encoder writes the documented
//! event sequence (golden files `tests/golden/responses_*.sse`, compared frame by frame as
//! JSON), with increasing sequence numbers, items announced before their deltas, and a
//! final response object that repeats every finished item.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_core::{
    ChatEvent, ContentPart, ErrorKind, FinishReason, Image, ProviderError, ResponseFormat, Role,
    Think, ToolChoice, Usage,
};
use switchyard_stream::responses::request::{DecodeOptions, decode_request};
use switchyard_stream::responses::{Echo, ResponseHead, ResponsesStreamEncoder};

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Parses SSE frames into (event name, data).
fn frames(text: &str) -> Vec<(String, Value)> {
    text.split("\n\n")
        .filter(|f| !f.trim().is_empty())
        .map(|f| {
            let mut event = String::new();
            let mut data = Value::Null;
            for line in f.lines() {
                if let Some(e) = line.strip_prefix("event: ") {
                    event = e.to_owned();
                } else if let Some(d) = line.strip_prefix("data: ") {
                    data = serde_json::from_str(d).unwrap();
                }
            }
            (event, data)
        })
        .collect()
}

/// Compares with the golden file (written when `UPDATE_GOLDEN=1`).
fn check_golden(name: &str, actual: &str) {
    let path = golden_path(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(frames(actual), frames(&expected), "{name}");
}

fn head(summary: bool, custom: &[&str]) -> ResponseHead {
    let mut echo = Echo::default();
    echo.insert(
        "reasoning",
        &json!({"effort": null, "summary": if summary { json!("auto") } else { Value::Null }}),
    );
    ResponseHead {
        id: "resp_abc".into(),
        created_at: 1_741_290_958,
        model: "gpt-4.1".into(),
        echo,
        custom_tools: custom.iter().map(|s| (*s).to_owned()).collect(),
    }
}

fn encode(head: ResponseHead, events: &[ChatEvent]) -> (String, ResponsesStreamEncoder) {
    let mut enc = ResponsesStreamEncoder::new(head);
    let mut out = Vec::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    (String::from_utf8(out).unwrap(), enc)
}

fn usage(p: u32, c: u32) -> ChatEvent {
    ChatEvent::Usage(Usage {
        prompt_tokens: p,
        completion_tokens: c,
        ..Usage::default()
    })
}

fn call(index: u32, id: &str, name: &str, args: &[&str]) -> Vec<ChatEvent> {
    let mut v = vec![ChatEvent::ToolCallStart {
        index,
        id: id.into(),
        name: name.into(),
    }];
    v.extend(args.iter().map(|a| ChatEvent::ToolCallArgs {
        index,
        fragment: (*a).into(),
    }));
    v.push(ChatEvent::ToolCallEnd { index });
    v
}

/// The invariants every SDK accumulator relies on.
fn check_invariants(text: &str) {
    let frames = frames(text);
    let mut announced = std::collections::HashSet::new();
    for (i, (event, data)) in frames.iter().enumerate() {
        assert_eq!(data["type"], event.as_str());
        assert_eq!(data["sequence_number"], json!(i), "{event}");
        if event == "response.output_item.added" {
            announced.insert(data["item"]["id"].as_str().unwrap().to_owned());
        } else if let Some(id) = data.get("item_id").and_then(Value::as_str) {
            assert!(announced.contains(id), "{event} before its item was added");
        }
    }
    let (last, data) = frames.last().unwrap();
    assert!(
        matches!(
            last.as_str(),
            "response.completed" | "response.incomplete" | "response.failed"
        ),
        "{last}"
    );
    let done_items: Vec<&Value> = frames
        .iter()
        .filter(|(e, _)| e == "response.output_item.done")
        .map(|(_, d)| &d["item"])
        .collect();
    let output: Vec<&Value> = data["response"]["output"]
        .as_array()
        .unwrap()
        .iter()
        .collect();
    assert_eq!(output.len(), done_items.len());
}

#[test]
fn text_stream_matches_the_documented_sequence() {
    let events = [
        ChatEvent::text("Hi"),
        ChatEvent::text(" there!"),
        usage(36, 87),
        ChatEvent::done(FinishReason::Stop),
    ];
    let (text, enc) = encode(head(false, &[]), &events);
    check_invariants(&text);
    check_golden("responses_text.sse", &text);
    let resp = enc.final_response().unwrap();
    assert_eq!(resp["status"], "completed");
    assert_eq!(resp["output"][0]["content"][0]["text"], "Hi there!");
    assert_eq!(resp["usage"]["total_tokens"], 123);
    assert_eq!(enc.assistant_turn().text_content(), "Hi there!");
}

#[test]
fn function_call_stream_matches_the_documented_sequence() {
    let mut events = call(
        0,
        "call_1",
        "get_weather",
        &["{\"loc", "ation\":\"Paris\"}"],
    );
    events.push(ChatEvent::done(FinishReason::ToolCalls));
    let (text, enc) = encode(head(false, &[]), &events);
    check_invariants(&text);
    check_golden("responses_function_call.sse", &text);
    let turn = enc.assistant_turn();
    assert_eq!(turn.tool_calls[0].arguments["location"], "Paris");
}

#[test]
fn custom_tool_call_carries_free_text_input() {
    let mut events = vec![ChatEvent::thinking("Need a patch.")];
    events.extend(call(
        0,
        "call_p",
        "apply_patch",
        &["{\"input\":\"*** Begin Patch\\n\"}"],
    ));
    events.push(ChatEvent::done(FinishReason::ToolCalls));
    let (text, enc) = encode(head(true, &["apply_patch"]), &events);
    check_invariants(&text);
    check_golden("responses_custom_tool_reasoning_summary.sse", &text);
    let resp = enc.final_response().unwrap();
    assert_eq!(resp["output"][0]["type"], "reasoning");
    assert_eq!(resp["output"][0]["summary"][0]["text"], "Need a patch.");
    assert_eq!(resp["output"][1]["type"], "custom_tool_call");
    assert_eq!(resp["output"][1]["input"], "*** Begin Patch\n");
    assert_eq!(
        enc.assistant_turn().thinking.as_deref(),
        Some("Need a patch.")
    );
}

#[test]
fn reasoning_text_without_summary_and_length_stop_is_incomplete() {
    let events = [
        ChatEvent::thinking("Hmm"),
        ChatEvent::text("Par"),
        ChatEvent::done(FinishReason::Length),
    ];
    let (text, enc) = encode(head(false, &[]), &events);
    check_invariants(&text);
    check_golden("responses_reasoning_incomplete.sse", &text);
    let resp = enc.final_response().unwrap();
    assert_eq!(resp["status"], "incomplete");
    assert_eq!(resp["incomplete_details"]["reason"], "max_output_tokens");
    assert_eq!(resp["output"][0]["content"][0]["type"], "reasoning_text");
}

#[test]
fn failure_after_the_first_byte_is_response_failed() {
    let mut enc = ResponsesStreamEncoder::new(head(false, &[]));
    let mut out = Vec::new();
    enc.encode(&ChatEvent::text("Par"), &mut out);
    let err = ProviderError::new(ErrorKind::Upstream, "upstream returned 500");
    enc.encode_error(&err, &mut out);
    enc.encode(&ChatEvent::text("more"), &mut out);
    let text = String::from_utf8(out).unwrap();
    check_invariants(&text);
    let frames = frames(&text);
    let (event, data) = &frames[frames.len() - 2];
    assert_eq!(event, "error");
    assert_eq!(data["code"], "upstream_error");
    let failed = &frames.last().unwrap().1["response"];
    assert_eq!(failed["status"], "failed");
    assert_eq!(failed["error"]["message"], "upstream returned 500");
    assert!(!text.contains("more"));
}

/// A Codex request as it sends one (developer instructions, history with reasoning,
/// function and custom calls and their outputs, an image, freeform and hosted tools).
fn codex_like_request(hosted: bool) -> Value {
    let mut tools = vec![
        json!({"type":"function","name":"shell","description":"Runs a command",
               "strict":false,"parameters":{"type":"object","properties":{"command":{"type":"array","items":{"type":"string"}}},"required":["command"]}}),
        json!({"type":"custom","name":"apply_patch","description":"Edit files",
               "format":{"type":"grammar","syntax":"lark","definition":"start: /.+/"}}),
        json!({"type":"namespace","name":"multi_agent_v1","description":"Sub-agents",
               "tools":[{"type":"function","name":"close_agent","parameters":{"type":"object","properties":{}}}]}),
    ];
    if hosted {
        tools.push(json!({"type":"web_search"}));
    }
    json!({
        "model": "chat",
        "instructions": "You are Codex.",
        "input": [
            {"type":"message","role":"developer","content":[{"type":"input_text","text":"sandbox: read-only"}]},
            {"type":"message","role":"user","content":[
                {"type":"input_text","text":"What is in this picture? Then list files."},
                {"type":"input_image","image_url":"data:image/png;base64,iVBORw0KGgo=","detail":"auto"}]},
            {"type":"reasoning","id":"rs_1","summary":[{"type":"summary_text","text":"Look first."}],"content":null,"encrypted_content":"gAAAA..."},
            {"type":"function_call","id":"fc_1","call_id":"call_1","name":"shell","arguments":"{\"command\":[\"ls\"]}"},
            {"type":"function_call_output","call_id":"call_1","output":"README.md\n"},
            {"type":"custom_tool_call","call_id":"call_2","name":"apply_patch","input":"*** Begin Patch"},
            {"type":"custom_tool_call_output","call_id":"call_2","output":"Done!"},
            {"role":"assistant","content":[{"type":"output_text","text":"A cat; one file."}]},
            {"type":"web_search_call","id":"ws_1","status":"completed","action":{"type":"search","query":"x"}},
            {"role":"user","content":"thanks"}
        ],
        "tools": tools,
        "tool_choice": "auto",
        "parallel_tool_calls": false,
        "reasoning": {"effort":"minimal","summary":"auto"},
        "store": false,
        "stream": true,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "abc",
        "text": {"format": {"type":"json_schema","name":"out","schema":{"type":"object"},"strict":true}}
    })
}

#[test]
fn codex_request_decodes_into_chat_turns() {
    let body = serde_json::to_vec(&codex_like_request(false)).unwrap();
    let req = decode_request(&body, &DecodeOptions::default()).unwrap();
    assert!(!req.store);
    assert_eq!(req.custom_tools, ["apply_patch"]);
    let chat = req.into_chat(Vec::new());
    let roles: Vec<Role> = chat.messages.iter().map(|m| m.role).collect();
    use Role::*;
    assert_eq!(
        roles,
        [
            System, System, User, Assistant, Tool, Assistant, Tool, Assistant, User
        ]
    );
    assert_eq!(chat.messages[0].text_content(), "You are Codex.");
    assert!(matches!(
        &chat.messages[2].content[1],
        ContentPart::Image(Image::Base64 { media_type: Some(mt), .. }) if mt == "image/png"
    ));
    let a = &chat.messages[3];
    assert_eq!(a.thinking.as_deref(), Some("Look first."));
    assert_eq!(a.tool_calls[0].arguments["command"], json!(["ls"]));
    assert_eq!(chat.messages[4].tool_name.as_deref(), Some("shell"));
    assert_eq!(
        chat.messages[5].tool_calls[0].arguments["input"],
        "*** Begin Patch"
    );
    assert_eq!(chat.messages[6].tool_name.as_deref(), Some("apply_patch"));
    assert_eq!(chat.tools[1].parameters["required"], json!(["input"]));
    assert_eq!(
        chat.tools[2].name, "close_agent",
        "namespace members are offered"
    );
    assert_eq!(chat.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(chat.parallel_tool_calls, Some(false));
    assert_eq!(chat.think, Some(Think::Minimal));
    assert!(matches!(
        chat.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    assert!(chat.stream);
    assert!(
        chat.extra.is_empty(),
        "no Responses-only field goes upstream"
    );

    // reasoning.summary never reaches Ollama (its `think` must be a bool or a level).
    let ollama = switchyard_stream::ollama::request::encode_request(&chat, "qwen3", true).unwrap();
    let ollama: Value = serde_json::from_slice(&ollama).unwrap();
    assert_eq!(ollama["think"], "low");
    assert!(!String::from_utf8_lossy(&serde_json::to_vec(&ollama).unwrap()).contains("summary"));
}

#[test]
fn hosted_tools_are_refused_by_name_unless_dropped() {
    let body = serde_json::to_vec(&codex_like_request(true)).unwrap();
    let err = decode_request(&body, &DecodeOptions::default()).unwrap_err();
    assert_eq!(err.reason_code(), "unsupported");
    assert_eq!(err.path(), Some("tools[3].type"));
    assert!(err.to_string().contains("web_search"), "{err}");
    let opts = DecodeOptions {
        drop_unsupported_tools: true,
    };
    let req = decode_request(&body, &opts).unwrap();
    assert_eq!(req.dropped_tools, ["web_search"]);
    assert_eq!(req.chat.tools.len(), 3);
}

#[test]
fn string_input_and_defaults() {
    let req = decode_request(
        br#"{"model":"m","input":"Hello","reasoning":{"effort":"none"}}"#,
        &DecodeOptions::default(),
    )
    .unwrap();
    assert!(req.store);
    assert!(!req.chat.stream);
    assert_eq!(req.chat.think, Some(Think::Off));
    assert_eq!(req.input_items[0]["content"][0]["text"], "Hello");
    assert_eq!(req.echo.value("tool_choice"), Some(json!("auto")));
    assert_eq!(req.echo.value("parallel_tool_calls"), Some(json!(true)));
    let chat = req.into_chat(vec![switchyard_core::Message::assistant("earlier")]);
    assert_eq!(chat.messages.len(), 2);
    assert_eq!(chat.messages[1].text_content(), "Hello");
}

#[test]
fn a_string_input_decodes_as_its_one_message_item() {
    let opts = DecodeOptions::default();
    for text in ["Hello", "", "with \\\"escapes\\\" é"] {
        let quoted = serde_json::to_string(text).unwrap();
        let short = format!(r#"{{"model":"m","input":{quoted}}}"#);
        let items = format!(
            r#"{{"model":"m","input":[{{"type":"message","role":"user","content":[{{"type":"input_text","text":{quoted}}}]}}]}}"#
        );
        let short = decode_request(short.as_bytes(), &opts).unwrap();
        let items = decode_request(items.as_bytes(), &opts).unwrap();
        assert_eq!(short.chat.messages, items.chat.messages, "{text:?}");
        assert_eq!(short.input_items, items.input_items, "{text:?}");
    }
}

#[test]
fn bad_requests_name_the_field() {
    let cases: &[(&[u8], &str)] = &[
        (br#"{"model":"m","input":[{"type":"function_call","call_id":"c","name":"f","arguments":"[1]"}]}"#, "input[0].arguments"),
        (br#"{"model":"m","input":[{"role":"robot","content":"x"}]}"#, "input[0].role"),
        (br#"{"model":"m","input":[{"type":"item_reference","id":"x"}]}"#, "input[0].type"),
        (br#"{"model":"m","input":"x","reasoning":{"effort":"huge"}}"#, "reasoning.effort"),
        (br#"{"model":"m","input":"x","tool_choice":"sometimes"}"#, "tool_choice"),
        (br#"{"model":"m","input":"x","text":{"format":{"type":"yaml"}}}"#, "text.format.type"),
        (br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_file","file_id":"f"}]}]}"#, "input[0].content[0].type"),
    ];
    for (body, path) in cases {
        let err = decode_request(body, &DecodeOptions::default()).unwrap_err();
        assert_eq!(err.path(), Some(*path), "{err}");
    }
    let err = decode_request(b"{\"model\":", &DecodeOptions::default()).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_json");
}

fn arb_event() -> impl Strategy<Value = ChatEvent> {
    prop_oneof![
        "[a-z \u{e9}]{0,8}".prop_map(ChatEvent::text),
        "[a-z ]{0,8}".prop_map(ChatEvent::thinking),
        (0u32..3, "[a-z]{1,4}").prop_map(|(index, name)| ChatEvent::ToolCallStart {
            index,
            id: format!("call_{index}"),
            name,
        }),
        (0u32..3, "[{}a-z\":]{0,6}")
            .prop_map(|(index, fragment)| ChatEvent::ToolCallArgs { index, fragment }),
        (0u32..3).prop_map(|index| ChatEvent::ToolCallEnd { index }),
        Just(ChatEvent::done(FinishReason::Stop)),
        Just(ChatEvent::done(FinishReason::Length)),
    ]
}

proptest! {
    /// Whatever events arrive, in whatever order, the stream stays well formed: sequence
    /// numbers count up, deltas follow their item, and once the end is written (by `Done` or
    /// by the encoder's own error) nothing follows it.
    #[test]
    fn any_event_sequence_gives_a_well_formed_stream(
        events in proptest::collection::vec(arb_event(), 0..24),
        summary in any::<bool>(),
    ) {
        let mut events = events;
        events.push(ChatEvent::done(FinishReason::Stop));
        let (text, enc) = encode(head(summary, &["b"]), &events);
        check_invariants(&text);
        prop_assert!(enc.is_done());
    }

    /// Any input the decoder accepts turns into a request; nothing panics.
    #[test]
    fn decoder_never_panics(body in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode_request(&body, &DecodeOptions::default());
    }
}

#[test]
fn truncation_is_echoed_as_asked_and_include_must_be_a_list_of_names() {
    let decode = |extra: &str| {
        let body = format!(r#"{{"model":"m","input":"hi"{extra}}}"#);
        decode_request(body.as_bytes(), &DecodeOptions::default())
    };
    for (extra, echoed) in [
        ("", "disabled"),
        (r#","truncation":"disabled""#, "disabled"),
        (r#","truncation":"auto""#, "auto"),
        (r#","truncation":null"#, "disabled"),
    ] {
        let req = decode(extra).unwrap();
        assert_eq!(req.echo.value("truncation"), Some(json!(echoed)), "{extra}");
    }
    for extra in [
        r#","include":["reasoning.encrypted_content"]"#,
        r#","include":null"#,
        r#","include":[]"#,
    ] {
        assert!(decode(extra).is_ok(), "{extra}");
    }
    for (extra, field) in [
        (r#","truncation":"bogus""#, "truncation"),
        (r#","include":"reasoning.encrypted_content""#, "include"),
        (r#","include":5"#, "include"),
        (r#","include":[5]"#, "include"),
    ] {
        let err = decode(extra).unwrap_err();
        assert!(err.to_string().contains(field), "{extra}: {err}");
    }
}
