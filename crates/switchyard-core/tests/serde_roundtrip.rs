//! Serde round trips of the shared types, plus folding and accumulation properties.

use proptest::prelude::*;
use serde_json::json;
use switchyard_core::{
    Capabilities, ChatEvent, ChatRequest, ChatResponse, ChatStream, ContentPart, ErrorKind,
    FinishReason, Image, KeepAlive, Locality, Message, ModelInfo, Price, PrivacyClass, RequestMeta,
    ResponseBuilder, ResponseFormat, Role, SamplingOptions, Think, ToolCall, ToolCallAccumulator,
    ToolChoice, ToolSpec, Usage, collect_response, tool_call_id,
};

fn full_request() -> ChatRequest {
    let mut extra = serde_json::Map::new();
    extra.insert("mirostat".into(), json!(2));
    ChatRequest {
        model: "chat".into(),
        messages: vec![
            Message::system("be brief"),
            Message {
                role: Role::User,
                content: vec![
                    ContentPart::Text("what is this?".into()),
                    ContentPart::Image(Image::Base64 {
                        media_type: Some("image/png".into()),
                        data: "iVBORw0KGgo=".into(),
                        detail: None,
                    }),
                ],
                thinking: None,
                tool_calls: vec![],
                tool_call_id: None,
                tool_name: None,
                extras: Default::default(),
            },
            Message {
                role: Role::Assistant,
                content: vec![],
                thinking: Some("let me look".into()),
                tool_calls: vec![ToolCall {
                    id: "call_1".into(),
                    name: "get_weather".into(),
                    arguments: json!({"city": "Tokyo"})
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                    raw_arguments: None,
                }],
                tool_call_id: None,
                tool_name: None,
                extras: Default::default(),
            },
            Message::tool_result("call_1", "get_weather", "sunny"),
        ],
        tools: vec![ToolSpec {
            name: "get_weather".into(),
            description: Some("weather by city".into()),
            parameters: json!({"type":"object","properties":{"city":{"type":"string"}}}),
        }],
        tool_choice: Some(ToolChoice::Function("get_weather".into())),
        parallel_tool_calls: Some(false),
        options: SamplingOptions {
            temperature: Some(0.2),
            top_p: Some(0.9),
            top_k: Some(40),
            max_tokens: Some(64),
            stop: vec!["\n\n".into()],
            seed: Some(7),
            num_ctx: Some(8192),
            presence_penalty: None,
            frequency_penalty: Some(0.1),
        },
        response_format: Some(ResponseFormat::JsonSchema {
            name: Some("w".into()),
            schema: json!({"type":"object"}),
            strict: Some(true),
        }),
        think: Some(Think::High),
        keep_alive: Some(KeepAlive::Duration("5m".into())),
        stream: true,
        include_usage: true,
        extra,
        native_body: None,
        meta: RequestMeta {
            caller: Some("laptop".into()),
            privacy: Some(PrivacyClass::LocalOnly),
            request_id: "req-1".into(),
            client_api: Some(switchyard_core::ApiFamily::OpenAi),
            anthropic_beta: None,
            task: Some("summary".into()),
        },
    }
}

#[test]
fn request_round_trips() {
    let req = full_request();
    let text = serde_json::to_string(&req).unwrap();
    let back: ChatRequest = serde_json::from_str(&text).unwrap();
    assert_eq!(back, req);
    assert_eq!(req.tool_names().collect::<Vec<_>>(), ["get_weather"]);
}

#[test]
fn keep_alive_accepts_numbers_and_strings() {
    let n: KeepAlive = serde_json::from_str("-1").unwrap();
    assert_eq!(n, KeepAlive::Seconds(-1.0));
    let s: KeepAlive = serde_json::from_str("\"10m\"").unwrap();
    assert_eq!(s, KeepAlive::Duration("10m".into()));
}

#[test]
fn model_info_and_enums_round_trip() {
    let mut info = ModelInfo::new("qwen2.5:7b", Locality::Lan);
    info.capabilities = Some(Capabilities::from_names(["completion", "tools", "unknown"]));
    info.context_window = Some(32768);
    info.price = Some(Price {
        input_usd_per_mtok: 0.4,
        output_usd_per_mtok: 1.6,
        ..Price::default()
    });
    let back: ModelInfo = serde_json::from_str(&serde_json::to_string(&info).unwrap()).unwrap();
    assert_eq!(back, info);
    assert_eq!(
        serde_json::to_string(&PrivacyClass::LocalOnly).unwrap(),
        "\"local-only\""
    );
    assert_eq!(
        serde_json::to_string(&Locality::Cloud).unwrap(),
        "\"cloud\""
    );
    let p: PrivacyClass = serde_json::from_str("\"local_only\"").unwrap();
    assert_eq!(p, PrivacyClass::LocalOnly);
    assert!(!PrivacyClass::LocalOnly.allows(Locality::Cloud));
    assert!(PrivacyClass::LocalOnly.allows(Locality::Lan));
    assert!(PrivacyClass::Any.allows(Locality::Cloud));
}

#[test]
fn events_round_trip() {
    let events = vec![
        ChatEvent::thinking("hmm"),
        ChatEvent::text("hi"),
        ChatEvent::ToolCallStart {
            index: 0,
            id: "call_1".into(),
            name: "f".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: "{}".into(),
        },
        ChatEvent::ToolCallEnd { index: 0 },
        ChatEvent::Usage(Usage {
            prompt_tokens: 3,
            completion_tokens: 4,
            timings: None,
            ..Usage::default()
        }),
        ChatEvent::done(FinishReason::Other("load".into())),
    ];
    let text = serde_json::to_string(&events).unwrap();
    let back: Vec<ChatEvent> = serde_json::from_str(&text).unwrap();
    assert_eq!(back, events);
}

#[test]
fn image_urls_convert() {
    let img = Image::from_url("data:image/jpeg;base64,AAAA");
    assert_eq!(
        img,
        Image::Base64 {
            media_type: Some("image/jpeg".into()),
            data: "AAAA".into(),
            detail: None,
        }
    );
    assert_eq!(img.to_url(), "data:image/jpeg;base64,AAAA");
    assert_eq!(
        Image::from_url("https://x.test/a.png"),
        Image::Url {
            url: "https://x.test/a.png".into(),
            detail: None,
        }
    );
}

#[test]
fn price_rounds_up_to_the_micro_dollar() {
    let price = Price {
        input_usd_per_mtok: 0.4,
        output_usd_per_mtok: 1.6,
        ..Price::default()
    };
    let usage = Usage {
        prompt_tokens: 1000,
        completion_tokens: 500,
        timings: None,
        ..Usage::default()
    };
    // 0.4 * 1000 + 1.6 * 500 = 1200 micro-dollars.
    assert_eq!(price.cost_micro_usd(&usage), 1200);
    let tiny = Usage {
        prompt_tokens: 1,
        completion_tokens: 0,
        timings: None,
        ..Usage::default()
    };
    assert_eq!(price.cost_micro_usd(&tiny), 1);
}

#[test]
fn stream_without_done_is_an_error() {
    let events: Vec<Result<ChatEvent, _>> = vec![Ok(ChatEvent::text("partial"))];
    let stream: ChatStream = Box::pin(futures::stream::iter(events));
    let err = futures::executor::block_on(collect_response(stream)).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::StreamEndedEarly);
}

#[test]
fn tool_calls_turn_stop_into_tool_calls() {
    let mut b = ResponseBuilder::default();
    for e in [
        ChatEvent::ToolCallStart {
            index: 0,
            id: "call_a".into(),
            name: "f".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: r#"{"x":1}"#.into(),
        },
        ChatEvent::ToolCallEnd { index: 0 },
        ChatEvent::done(FinishReason::Stop),
    ] {
        b.push(e).unwrap();
    }
    let r = b.finish().unwrap();
    assert_eq!(r.finish_reason, FinishReason::ToolCalls);
    assert_eq!(r.tool_calls[0].arguments["x"], 1);
    // Events of a response fold back to the same response.
    let mut again = ResponseBuilder::default();
    for e in r.to_events() {
        again.push(e).unwrap();
    }
    assert_eq!(again.finish().unwrap(), r);
}

#[test]
fn invalid_arguments_are_reported_not_dropped() {
    let mut acc = ToolCallAccumulator::default();
    acc.push(&ChatEvent::ToolCallStart {
        index: 0,
        id: "call_a".into(),
        name: "f".into(),
    })
    .unwrap();
    acc.push(&ChatEvent::ToolCallArgs {
        index: 0,
        fragment: r#"{"x":"#.into(),
    })
    .unwrap();
    let err = acc.finish().unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
    assert!(err.message().contains("`f`"), "{}", err.message());
}

#[test]
fn fragments_for_unknown_calls_are_errors() {
    let mut acc = ToolCallAccumulator::default();
    let err = acc
        .push(&ChatEvent::ToolCallArgs {
            index: 3,
            fragment: "{}".into(),
        })
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedStream);
}

#[test]
fn tool_call_ids_look_like_openai_ids() {
    let a = tool_call_id(1);
    assert!(a.starts_with("call_") && a.len() == 29);
    assert_ne!(a, tool_call_id(2));
    assert_eq!(a, tool_call_id(1));
}

proptest! {
    /// However the arguments of two interleaved calls are fragmented, the calls are the same.
    #[test]
    fn accumulation_is_fragmentation_invariant(
        a in proptest::collection::btree_map("[a-z]{1,6}", "[ -~é日]{0,12}", 0..5),
        b in proptest::collection::btree_map("[a-z]{1,6}", 0i64..1000, 0..5),
        cuts_a in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        cuts_b in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        interleave in proptest::collection::vec(any::<bool>(), 0..24),
    ) {
        let text_a = serde_json::to_string(&a).unwrap();
        let text_b = serde_json::to_string(&b).unwrap();
        let split = |text: &str, cuts: &[prop::sample::Index]| {
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).filter(|p| text.is_char_boundary(*p)).collect();
            points.sort_unstable();
            points.dedup();
            let mut parts = Vec::new();
            let mut last = 0;
            for p in points { parts.push(text[last..p].to_owned()); last = p; }
            parts.push(text[last..].to_owned());
            parts
        };
        let mut parts_a = split(&text_a, &cuts_a).into_iter();
        let mut parts_b = split(&text_b, &cuts_b).into_iter();
        let mut acc = ToolCallAccumulator::default();
        acc.push(&ChatEvent::ToolCallStart { index: 1, id: "call_b".into(), name: "g".into() }).unwrap();
        acc.push(&ChatEvent::ToolCallStart { index: 0, id: "call_a".into(), name: "f".into() }).unwrap();
        let mut flags = interleave.into_iter();
        loop {
            let pick_a = flags.next().unwrap_or(true);
            let next = if pick_a { parts_a.next().map(|f| (0, f)).or_else(|| parts_b.next().map(|f| (1, f))) }
                       else { parts_b.next().map(|f| (1, f)).or_else(|| parts_a.next().map(|f| (0, f))) };
            let Some((index, fragment)) = next else { break };
            acc.push(&ChatEvent::ToolCallArgs { index, fragment }).unwrap();
        }
        let calls = acc.finish().unwrap();
        prop_assert_eq!(calls.len(), 2);
        prop_assert_eq!(&calls[0].name, "f");
        prop_assert_eq!(serde_json::to_value(&calls[0].arguments).unwrap(), serde_json::to_value(&a).unwrap());
        prop_assert_eq!(serde_json::to_value(&calls[1].arguments).unwrap(), serde_json::to_value(&b).unwrap());
    }

    /// A response survives to_events + fold unchanged.
    #[test]
    fn response_events_fold_back(content in ".{0,40}", thinking in proptest::option::of(".{0,20}"), n in 0usize..3) {
        let tool_calls: Vec<ToolCall> = (0..n).map(|i| ToolCall { id: format!("call_{i}"), name: format!("t{i}"), arguments: json!({"i": i}).as_object().cloned().unwrap(), raw_arguments: None }).collect();
        let finish_reason = if n > 0 { FinishReason::ToolCalls } else { FinishReason::Length };
        let r = ChatResponse { content, thinking, tool_calls, finish_reason, usage: Some(Usage { prompt_tokens: 1, completion_tokens: 2, ..Usage::default() }), extras: Default::default() };
        let mut b = ResponseBuilder::default();
        for e in r.to_events() { b.push(e).unwrap(); }
        let mut back = b.finish().unwrap();
        if back.thinking.as_deref() == Some("") { back.thinking = None; }
        let mut expected = r.clone();
        if expected.thinking.as_deref() == Some("") { expected.thinking = None; }
        prop_assert_eq!(back, expected);
    }
}
