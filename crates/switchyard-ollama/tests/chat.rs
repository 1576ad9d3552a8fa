//! `/api/chat` over loopback against the testkit's scripted Ollama: streamed and not, what
//! reaches the server, tool calls, thinking, text recovery, auth headers, base URLs.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use switchyard_core::{
    ApiFamily, ChatEvent, ContentPart, FinishReason, Image, KeepAlive, Message, Provider,
    ResponseFormat, Think, ToolCall, ToolSpec, collect_response,
};
use switchyard_ollama::{OllamaClient, OllamaConfig};
use switchyard_testkit::{Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig};

#[tokio::test]
async fn streamed_text_arrives_as_events_with_usage_and_done() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("m", Script::text(["Hel", "lo", "!"]).with_usage(7, 3)),
    )
    .await
    .unwrap();
    let client = client(&up.base_url());
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello!");
    let usage = events.iter().find_map(|e| match e {
        ChatEvent::Usage(u) => Some(*u),
        _ => None,
    });
    assert_eq!(
        usage.map(|u| (u.prompt_tokens, u.completion_tokens)),
        Some((7, 3))
    );
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));
    let sent = up.chat_requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/api/chat");
    let body = sent[0].body_json().unwrap();
    assert_eq!(body["model"], "m");
    assert_eq!(body["stream"], true);
    assert_eq!(
        body["messages"][0],
        json!({"role": "user", "content": "hi"})
    );
    up.shutdown().await;
}

#[tokio::test]
async fn the_request_carries_tools_format_options_think_keep_alive_images_and_extra() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&up.base_url());
    let mut req = request("test-model");
    req.messages = vec![
        Message::system("be brief"),
        Message {
            content: vec![
                ContentPart::Text("what is this?".into()),
                ContentPart::Image(Image::Base64 {
                    media_type: Some("image/png".into()),
                    data: "iVBORw0KGgo=".into(),
                    detail: None,
                }),
            ],
            ..Message::user("")
        },
        Message {
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "get_weather".into(),
                arguments: json!({"city": "Tokyo"}).as_object().unwrap().clone(),
                raw_arguments: None,
            }],
            thinking: Some("let me look".into()),
            ..Message::assistant("")
        },
        Message::tool_result("call_1", "get_weather", "sunny"),
    ];
    req.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: Some("weather by city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
    }];
    req.response_format = Some(ResponseFormat::JsonSchema {
        name: None,
        schema: json!({"type": "object"}),
        strict: None,
    });
    req.options.num_ctx = Some(16384);
    req.options.temperature = Some(0.5);
    req.options.top_k = Some(40);
    req.options.seed = Some(7);
    req.options.stop = vec!["END".into()];
    req.options.max_tokens = Some(128);
    req.think = Some(Think::High);
    req.keep_alive = Some(KeepAlive::Duration("10m".into()));
    req.meta.client_api = Some(ApiFamily::Ollama);
    req.extra
        .insert("options".into(), json!({"mirostat": 2, "num_ctx": 1}));
    let stream = guarded(client.chat(&req)).await.unwrap();
    let (_, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    let body = up.chat_requests()[0].body_json().unwrap();
    assert_eq!(body["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(body["format"], json!({"type": "object"}));
    let options = &body["options"];
    assert_eq!(
        options["num_ctx"], 16384,
        "the request's own option wins over extra: {options}"
    );
    assert_eq!(options["temperature"], 0.5);
    assert_eq!(options["top_k"], 40);
    assert_eq!(options["seed"], 7);
    assert_eq!(options["stop"], json!(["END"]));
    assert_eq!(options["num_predict"], 128);
    assert_eq!(
        options["mirostat"], 2,
        "unknown options pass through: {options}"
    );
    assert_eq!(body["think"], "high");
    assert_eq!(body["keep_alive"], "10m");
    let messages = body["messages"].as_array().unwrap();
    assert_eq!(messages[1]["images"], json!(["iVBORw0KGgo="]));
    assert_eq!(
        messages[2]["tool_calls"][0]["function"]["arguments"],
        json!({"city": "Tokyo"})
    );
    assert_eq!(messages[3]["role"], "tool");
    assert_eq!(messages[3]["tool_name"], "get_weather");
    up.shutdown().await;
}

#[tokio::test]
async fn native_tool_calls_are_assembled_and_finish_as_tool_calls() {
    let calls = vec![
        ScriptedCall::new("get_weather", json!({"city": "Tokyo", "units": "metric"})),
        ScriptedCall::new("get_time", json!({"zone": "Asia/Tokyo"})),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default().model_with_script("m", Script::tool_calls(calls)),
    )
    .await
    .unwrap();
    let client = client(&up.base_url());
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let answer = guarded(collect_response(stream)).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls.len(), 2);
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(
        json!(answer.tool_calls[0].arguments),
        json!({"city": "Tokyo", "units": "metric"})
    );
    assert_eq!(answer.tool_calls[1].name, "get_time");
    assert_eq!(
        json!(answer.tool_calls[1].arguments),
        json!({"zone": "Asia/Tokyo"})
    );
    assert!(answer.tool_calls.iter().all(|c| c.id.starts_with("call_")));
    assert_ne!(answer.tool_calls[0].id, answer.tool_calls[1].id);
    up.shutdown().await;
}

#[tokio::test]
async fn thinking_comes_before_text() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("m", Script::thinking_then_text(["Hmm", "..."], ["Yes."])),
    )
    .await
    .unwrap();
    let answer = guarded(collect_response(
        guarded(client(&up.base_url()).chat(&request("m")))
            .await
            .unwrap(),
    ))
    .await
    .unwrap();
    assert_eq!(answer.thinking.as_deref(), Some("Hmm..."));
    assert_eq!(answer.content, "Yes.");
    up.shutdown().await;
}

#[tokio::test]
async fn non_streamed_chat_sends_stream_false_and_decodes_one_object() {
    let calls = vec![ScriptedCall::new("f", json!({"a": 1}))];
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("text", Script::text(["One ", "piece"]))
            .model_with_script("tools", Script::tool_calls(calls)),
    )
    .await
    .unwrap();
    let client = client(&up.base_url());
    let answer = guarded(client.complete(&request("text"))).await.unwrap();
    assert_eq!(answer.content, "One piece");
    assert_eq!(answer.finish_reason, FinishReason::Stop);
    let answer = guarded(client.complete(&request("tools"))).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(json!(answer.tool_calls[0].arguments), json!({"a": 1}));
    for sent in up.chat_requests() {
        assert_eq!(sent.body_json().unwrap()["stream"], false);
    }
    up.shutdown().await;
}

#[tokio::test]
async fn text_tool_calls_are_recovered_when_configured() {
    let calls = vec![ScriptedCall::new("get_weather", json!({"city": "Paris"}))];
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script(
        "m",
        Script::tool_calls_as_text(TextCallFormat::Hermes, calls),
    ))
    .await
    .unwrap();
    let mut req = request("m");
    req.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object"}),
    }];

    // Off (the default on the native API): the text stays text.
    let plain = guarded(collect_response(
        guarded(client(&up.base_url()).chat(&req)).await.unwrap(),
    ))
    .await
    .unwrap();
    assert!(plain.content.contains("<tool_call>"), "{}", plain.content);
    assert!(plain.tool_calls.is_empty());

    let mut config = OllamaConfig::new(up.base_url());
    config.text_tool_recovery = true;
    let client = OllamaClient::new(config).unwrap();
    let answer = guarded(collect_response(guarded(client.chat(&req)).await.unwrap()))
        .await
        .unwrap();
    assert_eq!(answer.tool_calls.len(), 1, "{answer:?}");
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(
        json!(answer.tool_calls[0].arguments),
        json!({"city": "Paris"})
    );
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert!(answer.content.trim().is_empty(), "{:?}", answer.content);
    // Non-streamed too.
    let whole = guarded(client.complete(&req)).await.unwrap();
    assert_eq!(whole.tool_calls.len(), 1);
    up.shutdown().await;
}

/// `tool_choice: none` sends Ollama no tools, so no call may come back; a call the model
/// writes as text anyway (imitating earlier turns) must stay text.
#[tokio::test]
async fn text_tool_calls_are_not_recovered_when_tool_choice_is_none() {
    let calls = vec![ScriptedCall::new("get_weather", json!({"city": "Paris"}))];
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script(
        "m",
        Script::tool_calls_as_text(TextCallFormat::Hermes, calls),
    ))
    .await
    .unwrap();
    let mut req = request("m");
    req.tools = vec![ToolSpec {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object"}),
    }];
    req.tool_choice = Some(switchyard_core::ToolChoice::None);
    let mut config = OllamaConfig::new(up.base_url());
    config.text_tool_recovery = true;
    let client = OllamaClient::new(config).unwrap();
    let answer = guarded(collect_response(guarded(client.chat(&req)).await.unwrap()))
        .await
        .unwrap();
    assert!(
        answer.tool_calls.is_empty(),
        "the client forbade tool calls and Ollama was offered none: {answer:?}"
    );
    assert_ne!(answer.finish_reason, FinishReason::ToolCalls);
    up.shutdown().await;
}

#[tokio::test]
async fn base_url_slash_and_v1_are_removed_and_headers_reach_the_server() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut config = OllamaConfig::new(format!("{}/v1/", up.base_url()));
    config.client.bearer_token = Some("proxy-token".into());
    config.client.extra_headers = vec![("x-team".into(), "blue".into())];
    let client = OllamaClient::new(config).unwrap();
    assert_eq!(client.base_url(), up.base_url());
    let stream = guarded(client.chat(&request("test-model"))).await.unwrap();
    let (_, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    let sent = &up.chat_requests()[0];
    assert_eq!(sent.path, "/api/chat");
    assert_eq!(sent.header("authorization"), Some("Bearer proxy-token"));
    assert_eq!(sent.header("x-team"), Some("blue"));
    assert!(OllamaClient::new(OllamaConfig::new("ftp://host")).is_err());
    up.shutdown().await;
}
