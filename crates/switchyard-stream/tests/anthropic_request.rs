//! The Anthropic request codec: the documented request shape decodes into the shared
//! representation, translates to Anthropic from other APIs (system lowered, turns merged,
//! tool results paired, `max_tokens` always written), and an Anthropic client's body reaches
//! an Anthropic target with every member it sent byte for byte (cache_control, signatures,
//! citations, unknown blocks).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchyard_core::{ContentPart, Image, Role, Think, ToolChoice};
use switchyard_stream::RequestError;
use switchyard_stream::anthropic::request::{
    AnthropicRequestOptions, decode_request, encode_request,
};
use switchyard_stream::{ollama, openai};

fn golden(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn opts(stream: bool) -> AnthropicRequestOptions<'static> {
    AnthropicRequestOptions {
        model: "claude-opus-4-6-20260101",
        stream,
        default_max_tokens: 4096,
    }
}

fn encode(req: &switchyard_core::ChatRequest, stream: bool) -> Value {
    let mut out = Vec::new();
    encode_request(req, &opts(stream), &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

#[test]
fn documented_request_decodes_every_block() {
    let req = decode_request(&golden("anthropic_request.json")).unwrap();
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::System,
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::User
        ]
    );
    assert_eq!(req.messages[0].text_content(), "You are a weather bot.");
    let user = &req.messages[1];
    assert_eq!(user.content.len(), 3);
    assert!(matches!(
        &user.content[1],
        ContentPart::Image(Image::Base64 { media_type: Some(m), .. }) if m == "image/jpeg"
    ));
    assert!(matches!(
        &user.content[2],
        ContentPart::Image(Image::Url { .. })
    ));
    let assistant = &req.messages[2];
    assert_eq!(
        assistant.thinking.as_deref(),
        Some("Need the weather tool.")
    );
    assert!(assistant.extras.thinking_signature.is_some());
    assert_eq!(assistant.extras.redacted_thinking.len(), 1);
    assert_eq!(
        assistant.tool_calls[0].arguments["location"],
        "San Francisco, CA"
    );
    let result = &req.messages[3];
    assert_eq!(
        result.tool_call_id.as_deref(),
        Some("toolu_01A09q90qw90lq917835lq9")
    );
    assert_eq!(
        result.tool_name.as_deref(),
        Some("get_weather"),
        "paired with its call"
    );
    assert_eq!(result.text_content(), "15 degrees");
    assert_eq!(
        req.messages[4].text_content(),
        "Thanks",
        "the document block is skipped"
    );
    assert_eq!(req.tools[0].name, "get_weather");
    assert_eq!(req.tools[0].parameters["required"], json!(["location"]));
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, Some(false));
    assert_eq!(req.think, Some(Think::Low));
    assert_eq!(req.options.max_tokens, Some(4096));
    assert_eq!(req.options.top_k, Some(40));
    assert_eq!(req.options.stop, ["\n\nHuman:"]);
    assert_eq!(req.extra["metadata"], json!({"user_id": "user-42"}));
    assert!(!req.stream);
}

#[test]
fn anthropic_to_anthropic_keeps_every_member_byte_for_byte() {
    let body = golden("anthropic_request.json");
    let req = decode_request(&body).unwrap();
    let mut out = Vec::new();
    encode_request(&req, &opts(true), &mut out).unwrap();
    let sent: BTreeMap<String, &RawValue> = serde_json::from_slice(&out).unwrap();
    let original: BTreeMap<String, &RawValue> = serde_json::from_slice(&body).unwrap();
    for (key, raw) in &original {
        if key == "model" {
            continue;
        }
        assert_eq!(sent[key].get(), raw.get(), "member {key} changed");
    }
    assert_eq!(sent["model"].get(), "\"claude-opus-4-6-20260101\"");
    assert_eq!(sent["stream"].get(), "true");
    let messages = sent["messages"].get();
    for kept in [
        r#""cache_control":{"type":"ephemeral"}"#,
        r#""signature":"EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl""#,
        r#""citations":[{"type":"char_location""#,
        r#"{"type":"document","source":{"type":"text""#,
        r#"{"type":"redacted_thinking","data":"EmwKAhgBEgy3va3pzix"#,
    ] {
        assert!(messages.contains(kept), "{kept} lost");
    }
}

#[test]
fn native_body_is_used_only_for_anthropic_clients() {
    let body = golden("anthropic_request.json");
    let mut req = decode_request(&body).unwrap();
    req.meta.client_api = Some(switchyard_core::ApiFamily::OpenAi);
    let v = encode(&req, false);
    assert!(
        !v.to_string().contains("cache_control"),
        "translated, not copied"
    );
    assert!(v.get("metadata").is_none(), "extra only to the same API");
}

#[test]
fn translation_lowers_system_merges_turns_and_pairs_results() {
    let body = br#"{"model":"m","messages":[
        {"role":"system","content":"Be brief."},
        {"role":"user","content":"Weather in Paris and Rome?"},
        {"role":"assistant","content":null,"tool_calls":[
            {"id":"call_a","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},
            {"id":"call_b","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]},
        {"role":"tool","tool_call_id":"call_a","content":"sunny"},
        {"role":"tool","tool_call_id":"call_b","content":"rain"},
        {"role":"user","content":[{"type":"text","text":"And this?"},
            {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}}]}],
        "tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],
        "tool_choice":"required","parallel_tool_calls":false,"reasoning_effort":"high",
        "max_tokens":20000,"stop":["END"],"user":"u1"}"#;
    let req = openai::request::decode_request(body).unwrap();
    let v = encode(&req, true);
    assert_eq!(v["system"], "Be brief.");
    assert_eq!(v["max_tokens"], 20000);
    assert_eq!(v["stream"], true);
    assert_eq!(v["stop_sequences"], json!(["END"]));
    // A forced tool (and a tool turn without thinking before it): Anthropic refuses
    // thinking with either, so it is off.
    assert_eq!(v["thinking"], json!({"type":"disabled"}));
    assert_eq!(
        v["tool_choice"],
        json!({"type":"any","disable_parallel_tool_use":true})
    );
    assert_eq!(
        v["tools"][0],
        json!({"name":"get_weather","input_schema":{"type":"object"}})
    );
    assert!(v.get("user").is_none(), "OpenAI extras stay with OpenAI");
    let messages = v["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(
        roles,
        ["user", "assistant", "user"],
        "alternating, results merged"
    );
    assert_eq!(messages[1]["content"][1]["type"], "tool_use");
    assert_eq!(messages[1]["content"][1]["input"], json!({"city":"Rome"}));
    let last = messages[2]["content"].as_array().unwrap();
    assert_eq!(
        last[0],
        json!({"type":"tool_result","tool_use_id":"call_a","content":[{"type":"text","text":"sunny"}]})
    );
    assert_eq!(last[1]["tool_use_id"], "call_b");
    assert_eq!(
        last[3]["source"],
        json!({"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="})
    );
}

#[test]
fn max_tokens_is_always_written_and_thinking_fits_under_it() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"think":true}"#;
    let req = ollama::request::decode_request(body).unwrap();
    let v = encode(&req, false);
    assert_eq!(v["max_tokens"], 4096);
    assert_eq!(
        v["thinking"],
        json!({"type":"enabled","budget_tokens":4095})
    );
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"think":true,"options":{"num_predict":500}}"#;
    let v = encode(&ollama::request::decode_request(body).unwrap(), false);
    assert_eq!(v["max_tokens"], 500);
    assert_eq!(
        v["thinking"]["type"], "disabled",
        "no room for a 1024-token budget"
    );
}

#[test]
fn unsigned_thinking_is_not_sent_back() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"},
        {"role":"assistant","content":"ok","thinking":"hmm"},{"role":"user","content":"go"}]}"#;
    let v = encode(&ollama::request::decode_request(body).unwrap(), false);
    assert_eq!(
        v["messages"][1]["content"],
        json!([{"type":"text","text":"ok"}])
    );
}

#[test]
fn own_output_decodes_again() {
    let req = decode_request(&golden("anthropic_request.json")).unwrap();
    let mut translated = req.clone();
    translated.native_body = None;
    let mut out = Vec::new();
    encode_request(&translated, &opts(false), &mut out).unwrap();
    let again = decode_request(&out).unwrap();
    assert_eq!(again.messages, req.messages);
    assert_eq!(again.tools, req.tools);
    assert_eq!(again.think, req.think);
}

#[test]
fn errors_name_the_field() {
    let cases: [(&[u8], &str); 4] = [
        (br#"{"model":"m","messages":[]}"#, "."),
        (br#"{"model":"m","max_tokens":1,"messages":[{"role":"user","content":[{"type":"tool_use","id":"t","name":"f","input":[1]}]}]}"#, "messages[0].content[0].input"),
        (br#"{"model":"m","max_tokens":1,"messages":[],"tool_choice":{"type":"tool"}}"#, "tool_choice.name"),
        (br#"{"model":"m","max_tokens":1,"messages":[],"thinking":{"type":"sometimes"}}"#, "thinking.type"),
    ];
    for (body, path) in cases {
        let err = decode_request(body).unwrap_err();
        assert_eq!(err.path(), Some(path), "{err}");
        assert!(matches!(err, RequestError::InvalidField { .. }));
    }
}

#[test]
fn nothing_anthropic_refuses_is_sent() {
    let translate = |body: &[u8]| encode(&openai::request::decode_request(body).unwrap(), false);
    // Thinking on, with its budget below max_tokens; temperature and top_k cannot go with
    // it, top_p only from 0.95.
    let v = translate(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"medium",
            "temperature":0.2,"top_p":0.5,"top_k":40,"max_tokens":8000}"#,
    );
    assert_eq!(
        v["thinking"],
        json!({"type":"enabled","budget_tokens":4096}),
        "{v}"
    );
    assert!(
        v.get("temperature").is_none() && v.get("top_k").is_none(),
        "{v}"
    );
    assert!(v.get("top_p").is_none(), "{v}");
    // Without thinking: a temperature over Anthropic's 1.0 is capped; the rest is kept.
    let v = translate(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":1.5,"top_p":0.5}"#,
    );
    assert_eq!(v["temperature"], 1.0, "{v}");
    assert_eq!(v["top_p"], 0.5, "{v}");
    // A forced tool turns thinking off; `auto` keeps it.
    let tools =
        r#""tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}]"#;
    for (choice, thinking) in [("\"required\"", "disabled"), ("\"auto\"", "enabled")] {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],{tools},
                "tool_choice":{choice},"reasoning_effort":"high","max_tokens":20000}}"#
        );
        let v = translate(body.as_bytes());
        assert_eq!(v["thinking"]["type"], thinking, "{choice}: {v}");
    }
    // The last assistant turn called a tool without thinking first (an OpenAI client keeps
    // no signed thinking): thinking is off; whitespace-only text is not sent.
    let v = translate(
        br#"{"model":"m","reasoning_effort":"high","max_tokens":20000,
            "tools":[{"type":"function","function":{"name":"f","parameters":{"type":"object"}}}],
            "messages":[{"role":"user","content":"go"},
              {"role":"assistant","content":"\n\n","tool_calls":[
                {"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
              {"role":"tool","tool_call_id":"call_1","content":"done"}]}"#,
    );
    assert_eq!(v["thinking"], json!({"type":"disabled"}), "{v}");
    let assistant = &v["messages"][1];
    assert_eq!(
        assistant["content"].as_array().unwrap().len(),
        1,
        "{assistant}"
    );
    assert_eq!(assistant["content"][0]["type"], "tool_use", "{assistant}");
}
