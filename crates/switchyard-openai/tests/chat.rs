//! `/v1/chat/completions` over loopback against the testkit's scripted OpenAI side:
//! streamed and not, what reaches the server, fragmented and parallel tool calls, usage,
//! `max_tokens` fields, `num_ctx`, text recovery, `/v1/models`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use serde_json::json;
use switchyard_core::{
    ApiFamily, ChatEvent, ContentPart, FinishReason, Image, Locality, Message, ModelInfo, Price,
    Provider, ToolChoice, ToolSpec, collect_response,
};
use switchyard_openai::{MaxTokensField, OpenAiClient, OpenAiConfig, TextRecovery};
use switchyard_testkit::{
    ModelSpec, Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig,
};

fn tool(name: &str) -> ToolSpec {
    ToolSpec {
        name: name.into(),
        description: None,
        parameters: json!({"type": "object"}),
    }
}

#[tokio::test]
async fn streamed_text_with_usage_and_done() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("m", Script::text(["Hel", "lo", "!"]).with_usage(9, 4)),
    )
    .await
    .unwrap();
    let client = client(&up.openai_base_url());
    let stream = guarded(client.chat(&request("m"))).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(text_of(&events), "Hello!");
    let usage = events.iter().find_map(|e| match e {
        ChatEvent::Usage(u) => Some((u.prompt_tokens, u.completion_tokens)),
        _ => None,
    });
    assert_eq!(usage, Some((9, 4)));
    assert_eq!(events.last(), Some(&ChatEvent::done(FinishReason::Stop)));
    let sent = &up.chat_requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    let body = sent.body_json().unwrap();
    assert_eq!(body["model"], "m");
    assert_eq!(body["stream"], true);
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert!(
        body.get("options").is_none(),
        "no num_ctx unless configured: {body}"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn fragmented_and_parallel_tool_calls_are_assembled_exactly() {
    let weather = json!({"city": "São Paulo", "units": "metric", "days": [1, 2, 3], "note": "a \"quoted\" word"});
    let time = json!({"zone": "America/Sao_Paulo", "format": {"h24": true}});
    let calls = vec![
        ScriptedCall::new("get_weather", weather.clone()),
        ScriptedCall::new("get_time", time.clone()),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default().model_with_script("m", Script::tool_calls(calls)),
    )
    .await
    .unwrap();
    let client = client(&up.openai_base_url());
    let mut req = request("m");
    req.tools = vec![tool("get_weather"), tool("get_time")];
    let stream = guarded(client.chat(&req)).await.unwrap();
    let (events, err) = split(drain(stream).await);
    assert!(err.is_none(), "{err:?}");

    // The arguments really arrived in many fragments, and the two calls interleaved.
    let fragments = |index: u32| {
        events
            .iter()
            .filter(|e| matches!(e, ChatEvent::ToolCallArgs { index: i, .. } if *i == index))
            .count()
    };
    assert!(fragments(0) >= 3 && fragments(1) >= 3, "{events:?}");
    let order: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallArgs { index, .. } => Some(*index),
            _ => None,
        })
        .collect();
    assert!(
        order.windows(2).any(|w| w[0] != w[1])
            && order.windows(3).any(|w| w[0] == w[2] && w[0] != w[1]),
        "interleaved: {order:?}"
    );

    let mut answer = switchyard_core::ResponseBuilder::default();
    for e in events {
        answer.push(e).unwrap();
    }
    let answer = answer.finish().unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(answer.tool_calls.len(), 2);
    assert_eq!(answer.tool_calls[0].name, "get_weather");
    assert_eq!(json!(answer.tool_calls[0].arguments), weather);
    assert_eq!(answer.tool_calls[1].name, "get_time");
    assert_eq!(json!(answer.tool_calls[1].arguments), time);
    assert!(answer.tool_calls[0].id.starts_with("call_"));
    assert_ne!(answer.tool_calls[0].id, answer.tool_calls[1].id);

    let body = up.chat_requests()[0].body_json().unwrap();
    assert_eq!(body["tools"][1]["function"]["name"], "get_time");
    up.shutdown().await;
}

#[tokio::test]
async fn the_request_carries_tool_choice_format_seed_stop_and_extra() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = client(&up.openai_base_url());
    let mut req = request("test-model");
    req.messages.push(Message {
        content: vec![
            ContentPart::Text("and this?".into()),
            ContentPart::Image(Image::Base64 {
                media_type: Some("image/jpeg".into()),
                data: "/9j/4AAQ".into(),
                detail: None,
            }),
        ],
        ..Message::user("")
    });
    req.messages.push(Message::tool_result("call_9", "f", "42"));
    req.tools = vec![tool("f")];
    req.tool_choice = Some(ToolChoice::Required);
    req.parallel_tool_calls = Some(false);
    req.response_format = Some(switchyard_core::ResponseFormat::Json);
    req.options.seed = Some(3);
    req.options.stop = vec!["\n\n".into()];
    req.meta.client_api = Some(ApiFamily::OpenAi);
    req.extra
        .insert("logit_bias".into(), json!({"50256": -100}));
    let (_, err) = split(drain(guarded(client.chat(&req)).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    let body = up.chat_requests()[0].body_json().unwrap();
    assert_eq!(body["tool_choice"], "required");
    assert_eq!(body["parallel_tool_calls"], false);
    assert_eq!(body["response_format"], json!({"type": "json_object"}));
    assert_eq!(body["seed"], 3);
    assert_eq!(body["stop"], json!(["\n\n"]));
    assert_eq!(
        body["logit_bias"],
        json!({"50256": -100}),
        "unknown fields pass through"
    );
    assert_eq!(
        body["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,/9j/4AAQ"
    );
    assert_eq!(body["messages"][2]["role"], "tool");
    assert_eq!(body["messages"][2]["tool_call_id"], "call_9");
    up.shutdown().await;
}

#[tokio::test]
async fn the_output_limit_goes_in_the_configured_field() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let mut req = request("test-model");
    req.options.max_tokens = Some(99);
    for field in [
        MaxTokensField::MaxTokens,
        MaxTokensField::MaxCompletionTokens,
    ] {
        up.clear_requests();
        let mut config = OpenAiConfig::new(up.openai_base_url());
        config.max_tokens_field = field;
        let client = OpenAiClient::new(config).unwrap();
        let (_, err) = split(drain(guarded(client.chat(&req)).await.unwrap()).await);
        assert!(err.is_none(), "{err:?}");
        let body = up.chat_requests()[0].body_json().unwrap();
        let (used, other) = match field {
            MaxTokensField::MaxTokens => ("max_tokens", "max_completion_tokens"),
            MaxTokensField::MaxCompletionTokens => ("max_completion_tokens", "max_tokens"),
        };
        assert_eq!(body[used], 99, "{body}");
        assert!(body.get(other).is_none(), "{body}");
    }
    up.shutdown().await;
}

#[tokio::test]
async fn num_ctx_is_sent_for_ollama_v1_when_configured() {
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let client = OpenAiClient::new(OpenAiConfig::ollama_v1(up.openai_base_url(), 8192)).unwrap();
    let mut req = request("test-model");
    let (_, err) = split(drain(guarded(client.chat(&req)).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    req.options.num_ctx = Some(32768);
    let (_, err) = split(drain(guarded(client.chat(&req)).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    let sent = up.chat_requests();
    assert_eq!(sent[0].body_json().unwrap()["options"]["num_ctx"], 8192);
    assert_eq!(
        sent[1].body_json().unwrap()["options"]["num_ctx"],
        32768,
        "the request's own value wins"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn text_tool_calls_are_recovered_on_a_v1_upstream_when_configured() {
    let args = json!({"city": "Paris", "days": 2});
    let formats = [
        TextCallFormat::Hermes,
        TextCallFormat::LlamaPythonTag,
        TextCallFormat::MistralList,
        TextCallFormat::FencedJson,
        TextCallFormat::BareJson,
    ];
    let mut config = UpstreamConfig::default();
    for (i, format) in formats.iter().enumerate() {
        config = config.model_with_script(
            &format!("m{i}"),
            Script::tool_calls_as_text(
                *format,
                vec![ScriptedCall::new("get_weather", args.clone())],
            ),
        );
    }
    let up = TestUpstream::start(config).await.unwrap();
    let mut on = OpenAiConfig::new(up.openai_base_url());
    on.text_tool_recovery = TextRecovery::On;
    let on = OpenAiClient::new(on).unwrap();
    for (i, format) in formats.iter().enumerate() {
        let mut req = request(&format!("m{i}"));
        req.tools = vec![tool("get_weather")];
        let answer = guarded(collect_response(guarded(on.chat(&req)).await.unwrap()))
            .await
            .unwrap();
        assert_eq!(answer.tool_calls.len(), 1, "{format:?}: {answer:?}");
        assert_eq!(answer.tool_calls[0].name, "get_weather");
        assert_eq!(json!(answer.tool_calls[0].arguments), args, "{format:?}");
        assert_eq!(answer.finish_reason, FinishReason::ToolCalls, "{format:?}");
    }

    // Off: the text stays text. Models(..): only the listed model is recovered.
    let mut req = request("m0");
    req.tools = vec![tool("get_weather")];
    let off = client(&up.openai_base_url());
    let answer = guarded(collect_response(guarded(off.chat(&req)).await.unwrap()))
        .await
        .unwrap();
    assert!(
        answer.tool_calls.is_empty() && answer.content.contains("<tool_call>"),
        "{answer:?}"
    );
    let mut some = OpenAiConfig::new(up.openai_base_url());
    some.text_tool_recovery = TextRecovery::Models(vec!["m1".into()]);
    let some = OpenAiClient::new(some).unwrap();
    let answer = guarded(collect_response(guarded(some.chat(&req)).await.unwrap()))
        .await
        .unwrap();
    assert!(answer.tool_calls.is_empty(), "m0 is not listed");
    // Without tools in the request nothing is recovered.
    let answer = guarded(collect_response(
        guarded(on.chat(&request("m0"))).await.unwrap(),
    ))
    .await
    .unwrap();
    assert!(answer.tool_calls.is_empty());
    up.shutdown().await;
}

/// `tool_choice: none` forbids calls: a call the model writes as text anyway stays text,
/// streamed or not.
#[tokio::test]
async fn text_tool_calls_are_not_recovered_when_tool_choice_is_none() {
    let calls = vec![ScriptedCall::new("get_weather", json!({"city": "Paris"}))];
    let up = TestUpstream::start(UpstreamConfig::default().model_with_script(
        "m",
        Script::tool_calls_as_text(TextCallFormat::Hermes, calls),
    ))
    .await
    .unwrap();
    let mut config = OpenAiConfig::new(up.openai_base_url());
    config.text_tool_recovery = TextRecovery::On;
    let client = OpenAiClient::new(config).unwrap();
    for stream in [true, false] {
        let mut req = request("m");
        req.stream = stream;
        req.tools = vec![tool("get_weather")];
        req.tool_choice = Some(ToolChoice::None);
        let answer = guarded(collect_response(guarded(client.chat(&req)).await.unwrap()))
            .await
            .unwrap();
        assert!(
            answer.tool_calls.is_empty() && answer.content.contains("<tool_call>"),
            "stream {stream}: {answer:?}"
        );
        assert_ne!(answer.finish_reason, FinishReason::ToolCalls);
        // Any other choice still recovers.
        req.tool_choice = Some(ToolChoice::Auto);
        let answer = guarded(collect_response(guarded(client.chat(&req)).await.unwrap()))
            .await
            .unwrap();
        assert_eq!(answer.tool_calls.len(), 1, "stream {stream}: {answer:?}");
    }
    up.shutdown().await;
}

#[tokio::test]
async fn non_streamed_chat_decodes_one_completion() {
    let calls = vec![
        ScriptedCall::new("f", json!({"a": [1, 2]})),
        ScriptedCall::new("g", json!({})),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model_with_script("text", Script::text(["One ", "piece"]))
            .model_with_script("tools", Script::tool_calls(calls)),
    )
    .await
    .unwrap();
    let client = client(&up.openai_base_url());
    let answer = guarded(client.complete(&request("text"))).await.unwrap();
    assert_eq!(answer.content, "One piece");
    let answer = guarded(client.complete(&request("tools"))).await.unwrap();
    assert_eq!(answer.finish_reason, FinishReason::ToolCalls);
    assert_eq!(json!(answer.tool_calls[0].arguments), json!({"a": [1, 2]}));
    assert_eq!(answer.tool_calls[1].name, "g");
    for sent in up.chat_requests() {
        let body = sent.body_json().unwrap();
        assert_eq!(body["stream"], false);
    }
    up.shutdown().await;
}

#[tokio::test]
async fn models_are_listed_from_v1_models_or_the_static_catalog() {
    let up = TestUpstream::start(UpstreamConfig::default().model(ModelSpec::new("qwen2.5:7b")))
        .await
        .unwrap();
    let mut config = OpenAiConfig::new(up.openai_base_url());
    config.locality = Locality::Lan;
    let discovering = OpenAiClient::new(config).unwrap();
    let listed = guarded(discovering.list_models()).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["test-model", "qwen2.5:7b"]);
    assert!(listed.iter().all(|m| m.locality == Locality::Lan));
    assert_eq!(guarded(discovering.models()).await.unwrap(), listed);
    guarded(discovering.health()).await.unwrap();

    let mut priced = ModelInfo::new("qwen2.5:7b", Locality::Cloud);
    priced.price = Some(Price {
        input_usd_per_mtok: 0.4,
        output_usd_per_mtok: 1.6,
        ..Price::default()
    });
    priced.context_window = Some(32768);
    let mut config = OpenAiConfig::new(up.openai_base_url());
    config.models = vec![priced.clone()];
    let fixed = OpenAiClient::new(config).unwrap();
    up.clear_requests();
    assert_eq!(guarded(fixed.models()).await.unwrap(), vec![priced.clone()]);
    assert_eq!(up.request_count(), 0, "a static catalog needs no request");
    // list_models asks, and merges the static entry's price into the listed model.
    let merged = guarded(fixed.list_models()).await.unwrap();
    assert_eq!(merged[1].price, priced.price);
    assert_eq!(merged[1].context_window, Some(32768));
    assert_eq!(merged[0].price, None);
    up.shutdown().await;
}

#[tokio::test]
async fn the_api_key_is_sent_as_bearer() {
    let up = TestUpstream::start(UpstreamConfig::default().api_key("sk-right"))
        .await
        .unwrap();
    let mut config = OpenAiConfig::new(format!("{}/", up.openai_base_url()));
    config.client.bearer_token = Some("sk-right".into());
    let client = OpenAiClient::new(config).unwrap();
    assert_eq!(client.base_url(), up.openai_base_url());
    let (_, err) = split(drain(guarded(client.chat(&request("test-model"))).await.unwrap()).await);
    assert!(err.is_none(), "{err:?}");
    assert_eq!(
        up.chat_requests()[0].header("authorization"),
        Some("Bearer sk-right")
    );
    up.shutdown().await;
}
