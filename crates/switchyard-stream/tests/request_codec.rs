//! Request codecs of both APIs: decoding client bodies, encoding upstream bodies, the
//! cross-API cases (tool results pairing, images, think, keep_alive, formats), the rules for
//! passing unknown fields through, and clear errors with a JSON path.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchyard_core::{
    ApiFamily, ContentPart, Image, KeepAlive, ResponseFormat, Role, Think, ToolChoice,
};
use switchyard_stream::RequestError;
use switchyard_stream::ollama::request as ollama;
use switchyard_stream::openai::request::{self as openai, MaxTokensField, OpenAiRequestOptions};

fn to_value(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("encoders write JSON")
}

fn openai_opts(stream: bool) -> OpenAiRequestOptions<'static> {
    OpenAiRequestOptions {
        model: "up-model",
        max_tokens_field: MaxTokensField::MaxTokens,
        num_ctx: None,
        stream,
    }
}

fn encode_openai(req: &switchyard_core::ChatRequest, opts: &OpenAiRequestOptions<'_>) -> Value {
    let mut out = Vec::new();
    openai::encode_request(req, opts, &mut out).expect("encodes");
    to_value(&out)
}

/// The documented Ollama request with tools (docs/api.md, "Chat request (with tools)")
/// plus a history with a call and its result.
const OLLAMA_TOOLS_BODY: &str = r#"{
  "model": "llama3.2",
  "messages": [
    {"role": "user", "content": "What is the weather today in Paris?"},
    {"role": "assistant", "content": "", "tool_calls": [
      {"function": {"name": "get_current_weather", "arguments": {"location": "Paris, FR", "format": "celsius"}}}
    ]},
    {"role": "tool", "content": "22 degrees", "tool_name": "get_current_weather"}
  ],
  "stream": false,
  "tools": [{
    "type": "function",
    "function": {
      "name": "get_current_weather",
      "description": "Get the current weather for a location",
      "parameters": {
        "type": "object",
        "properties": {
          "location": {"type": "string", "description": "The location to get the weather for, e.g. San Francisco, CA"},
          "format": {"type": "string", "description": "The format to return the weather in, e.g. 'celsius' or 'fahrenheit'", "enum": ["celsius", "fahrenheit"]}
        },
        "required": ["location", "format"]
      }
    }
  }],
  "options": {"temperature": 0.2, "num_ctx": 8192, "num_predict": 128, "mirostat": 2, "stop": ["\n\n"]},
  "keep_alive": "10m",
  "think": "high",
  "format": "json"
}"#;

#[test]
fn ollama_request_with_tools_and_results_decodes() {
    let req = ollama::decode_request(OLLAMA_TOOLS_BODY.as_bytes()).expect("decodes");
    assert_eq!(req.model, "llama3.2");
    assert!(!req.stream);
    assert_eq!(req.meta.client_api, Some(ApiFamily::Ollama));
    assert_eq!(req.tools.len(), 1);
    assert_eq!(req.tools[0].name, "get_current_weather");
    assert_eq!(
        req.tools[0].parameters["required"],
        json!(["location", "format"])
    );
    let call = &req.messages[1].tool_calls[0];
    assert!(call.id.starts_with("call_"), "id synthesised: {}", call.id);
    assert_eq!(call.arguments["location"], "Paris, FR");
    // The result is paired with the call by name.
    let result = &req.messages[2];
    assert_eq!(result.role, Role::Tool);
    assert_eq!(result.tool_call_id.as_deref(), Some(call.id.as_str()));
    assert_eq!(result.tool_name.as_deref(), Some("get_current_weather"));
    assert_eq!(req.options.temperature, Some(0.2));
    assert_eq!(req.options.num_ctx, Some(8192));
    assert_eq!(req.options.max_tokens, Some(128));
    assert_eq!(req.options.stop, vec!["\n\n".to_owned()]);
    assert_eq!(req.extra["options"], json!({"mirostat": 2}));
    assert_eq!(req.keep_alive, Some(KeepAlive::Duration("10m".into())));
    assert_eq!(req.think, Some(Think::High));
    assert_eq!(req.response_format, Some(ResponseFormat::Json));
    // Same ids on every decode (the history is re-sent each turn).
    let again = ollama::decode_request(OLLAMA_TOOLS_BODY.as_bytes()).unwrap();
    assert_eq!(again.messages[1].tool_calls[0].id, call.id);
}

#[test]
fn ollama_request_round_trips_through_its_encoder() {
    let req = ollama::decode_request(OLLAMA_TOOLS_BODY.as_bytes()).unwrap();
    let body = to_value(&ollama::encode_request(&req, "llama3.2:3b", true).unwrap());
    assert_eq!(body["model"], "llama3.2:3b");
    assert_eq!(body["stream"], true);
    assert_eq!(body["options"]["num_ctx"], 8192);
    assert_eq!(body["options"]["num_predict"], 128);
    assert_eq!(
        body["options"]["mirostat"], 2,
        "unknown options kept for Ollama"
    );
    assert_eq!(body["keep_alive"], "10m");
    assert_eq!(body["think"], "high");
    assert_eq!(body["format"], "json");
    assert_eq!(
        body["messages"][1]["tool_calls"][0]["function"]["arguments"],
        json!({"location": "Paris, FR", "format": "celsius"}),
        "arguments stay an object for Ollama"
    );
    assert_eq!(body["messages"][2]["tool_name"], "get_current_weather");
    let again =
        ollama::decode_request(&ollama::encode_request(&req, "llama3.2", false).unwrap()).unwrap();
    assert_eq!(again.messages, req.messages);
    assert_eq!(again.tools, req.tools);
}

#[test]
fn ollama_stream_defaults_to_true_and_think_bool_and_schema_format() {
    let req = ollama::decode_request(
        br#"{"model":"m","messages":[],"think":false,"format":{"type":"object"},"keep_alive":-1}"#,
    )
    .unwrap();
    assert!(req.stream);
    assert_eq!(req.think, Some(Think::Off));
    assert_eq!(req.keep_alive, Some(KeepAlive::Seconds(-1.0)));
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
}

#[test]
fn ollama_images_are_base64_and_urls_are_refused_for_an_ollama_upstream() {
    let req = ollama::decode_request(
        br#"{"model":"llava","messages":[{"role":"user","content":"what is this?","images":["iVBORw0KGgo="]}]}"#,
    )
    .unwrap();
    assert_eq!(
        req.messages[0].content[1],
        ContentPart::Image(Image::Base64 {
            media_type: None,
            data: "iVBORw0KGgo=".into(),
            detail: None,
        })
    );
    let mut from_openai = openai::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"https://example.com/a.png"}}]}]}"#,
    )
    .unwrap();
    let err = ollama::encode_request(&from_openai, "llava", true).unwrap_err();
    assert_eq!(err.reason_code(), "unsupported");
    assert_eq!(err.path(), Some("messages[0].content[1]"));
    // A data: URL is inline and goes through as bare base64.
    from_openai.messages[0].content[1] =
        ContentPart::Image(Image::from_url("data:image/png;base64,AAAA"));
    let body = to_value(&ollama::encode_request(&from_openai, "llava", true).unwrap());
    assert_eq!(body["messages"][0]["images"], json!(["AAAA"]));
}

/// The documented OpenAI request shapes (API reference, "Create chat completion": default,
/// image input, streaming, functions) folded into one body.
const OPENAI_BODY: &str = r#"{
  "model": "gpt-4.1",
  "messages": [
    {"role": "developer", "content": "You are a helpful assistant."},
    {"role": "user", "content": [
      {"type": "text", "text": "What is in this image?"},
      {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ", "detail": "low"}}
    ]},
    {"role": "assistant", "content": null, "tool_calls": [
      {"id": "call_abc123", "type": "function", "function": {"name": "get_current_weather", "arguments": "{\"location\": \"Boston, MA\"}"}},
      {"id": "call_def456", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}
    ]},
    {"role": "tool", "tool_call_id": "call_def456", "content": "12:00"},
    {"role": "tool", "tool_call_id": "call_abc123", "content": "{\"temp\": 22}"}
  ],
  "tools": [
    {"type": "function", "function": {"name": "get_current_weather", "description": "Get the current weather in a given location",
      "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}}},
    {"type": "function", "function": {"name": "get_time"}}
  ],
  "tool_choice": "auto",
  "parallel_tool_calls": true,
  "max_completion_tokens": 300,
  "temperature": 0.7,
  "stop": "END",
  "seed": 42,
  "response_format": {"type": "json_schema", "json_schema": {"name": "weather", "schema": {"type": "object"}, "strict": true}},
  "reasoning_effort": "low",
  "stream": true,
  "stream_options": {"include_usage": true},
  "user": "user-1234",
  "logprobs": false
}"#;

#[test]
fn openai_request_decodes() {
    let req = openai::decode_request(OPENAI_BODY.as_bytes()).expect("decodes");
    assert_eq!(req.meta.client_api, Some(ApiFamily::OpenAi));
    assert!(req.stream && req.include_usage);
    assert_eq!(
        req.messages[0].role,
        Role::System,
        "developer is a system message"
    );
    assert_eq!(
        req.messages[1].content[1],
        ContentPart::Image(Image::Base64 {
            media_type: Some("image/jpeg".into()),
            data: "/9j/4AAQ".into(),
            detail: Some("low".into()),
        })
    );
    let calls = &req.messages[2].tool_calls;
    assert_eq!(calls[0].arguments["location"], "Boston, MA");
    assert_eq!(calls[1].arguments.len(), 0);
    // Results answered out of order get the names of the calls they answer.
    assert_eq!(req.messages[3].tool_name.as_deref(), Some("get_time"));
    assert_eq!(
        req.messages[4].tool_name.as_deref(),
        Some("get_current_weather")
    );
    assert_eq!(
        req.tools[1].parameters["type"], "object",
        "missing parameters: empty schema"
    );
    assert_eq!(req.tool_choice, Some(ToolChoice::Auto));
    assert_eq!(req.parallel_tool_calls, Some(true));
    assert_eq!(req.options.max_tokens, Some(300));
    assert_eq!(req.options.stop, vec!["END".to_owned()]);
    assert_eq!(req.options.seed, Some(42));
    assert_eq!(req.think, Some(Think::Low));
    assert!(matches!(
        &req.response_format,
        Some(ResponseFormat::JsonSchema { name: Some(n), strict: Some(true), .. }) if n == "weather"
    ));
    assert_eq!(req.extra["user"], "user-1234");
    assert_eq!(req.extra["logprobs"], false);
    assert!(!req.extra.contains_key("stream_options"));
}

#[test]
fn openai_request_encodes_for_an_openai_upstream() {
    let req = openai::decode_request(OPENAI_BODY.as_bytes()).unwrap();
    let opts = OpenAiRequestOptions {
        max_tokens_field: MaxTokensField::MaxCompletionTokens,
        ..openai_opts(true)
    };
    let body = encode_openai(&req, &opts);
    assert_eq!(body["model"], "up-model");
    assert_eq!(body["max_completion_tokens"], 300);
    assert!(body.get("max_tokens").is_none());
    assert_eq!(body["stream_options"], json!({"include_usage": true}));
    assert_eq!(body["messages"][0]["role"], "system");
    assert_eq!(
        body["messages"][1]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,/9j/4AAQ"
    );
    assert_eq!(body["messages"][2]["content"], Value::Null);
    let args = body["messages"][2]["tool_calls"][0]["function"]["arguments"]
        .as_str()
        .expect("arguments are a JSON string for OpenAI");
    assert_eq!(
        serde_json::from_str::<Value>(args).unwrap(),
        json!({"location": "Boston, MA"})
    );
    assert_eq!(body["messages"][3]["tool_call_id"], "call_def456");
    assert_eq!(body["tool_choice"], "auto");
    assert_eq!(body["reasoning_effort"], "low");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(body["response_format"]["json_schema"]["name"], "weather");
    assert_eq!(
        body["user"], "user-1234",
        "extra passed to an OpenAI upstream"
    );
    assert!(body.get("options").is_none());
    // Decoding our own output gives the same conversation.
    let mut bytes = Vec::new();
    openai::encode_request(&req, &opts, &mut bytes).unwrap();
    let again = openai::decode_request(&bytes).unwrap();
    assert_eq!(again.messages, req.messages);
    assert_eq!(again.tools, req.tools);
}

#[test]
fn openai_encode_for_ollama_v1_sends_num_ctx_and_max_tokens_and_no_stream_options() {
    let req = openai::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":9}"#,
    )
    .unwrap();
    let opts = OpenAiRequestOptions {
        num_ctx: Some(16384),
        ..openai_opts(false)
    };
    let body = encode_openai(&req, &opts);
    assert_eq!(body["options"], json!({"num_ctx": 16384}));
    assert_eq!(body["max_tokens"], 9);
    assert_eq!(body["stream"], false);
    assert!(body.get("stream_options").is_none());
    assert!(body.get("tools").is_none() && body.get("tool_choice").is_none());
}

#[test]
fn extra_is_passed_only_to_the_same_api() {
    // From an Ollama client: Ollama extras stay away from an OpenAI upstream...
    let mut req =
        ollama::decode_request(br#"{"model":"m","messages":[],"raw":true,"suffix":"x"}"#).unwrap();
    let body = encode_openai(&req, &openai_opts(true));
    assert!(body.get("raw").is_none() && body.get("suffix").is_none());
    // ...but reach an Ollama upstream.
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert_eq!(body["raw"], true);
    // With no client API (built in code), extras go to an OpenAI upstream.
    req.meta.client_api = None;
    assert_eq!(encode_openai(&req, &openai_opts(true))["raw"], true);
    // From an OpenAI client: OpenAI extras stay away from an Ollama upstream.
    let req = openai::decode_request(br#"{"model":"m","messages":[],"user":"u","logit_bias":{}}"#)
        .unwrap();
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert!(body.get("user").is_none() && body.get("logit_bias").is_none());
    // Extras never override the fields the encoder sets.
    let req = openai::decode_request(
        br#"{"model":"m","messages":[],"stream_options":{"include_usage":false},"functions":[]}"#,
    )
    .unwrap();
    let body = encode_openai(&req, &openai_opts(true));
    assert_eq!(body["stream_options"]["include_usage"], true);
    assert_eq!(body["model"], "up-model");
}

#[test]
fn ollama_client_to_openai_upstream_pairs_results_by_order() {
    let req = ollama::decode_request(
        br#"{"model":"m","messages":[
            {"role":"assistant","content":"","tool_calls":[
              {"function":{"name":"a","arguments":{}}},
              {"function":{"name":"a","arguments":{"x":1}}}]},
            {"role":"tool","content":"r1"},
            {"role":"tool","content":"r2","tool_name":"a"}]}"#,
    )
    .unwrap();
    let ids: Vec<&str> = req.messages[0]
        .tool_calls
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_ne!(ids[0], ids[1]);
    assert_eq!(req.messages[1].tool_call_id.as_deref(), Some(ids[0]));
    assert_eq!(req.messages[2].tool_call_id.as_deref(), Some(ids[1]));
    let body = encode_openai(&req, &openai_opts(true));
    assert_eq!(body["messages"][1]["tool_call_id"], ids[0]);
    assert_eq!(body["messages"][2]["tool_call_id"], ids[1]);
}

#[test]
fn openai_upstream_needs_a_tool_call_id() {
    let mut req =
        ollama::decode_request(br#"{"model":"m","messages":[{"role":"tool","content":"orphan"}]}"#)
            .unwrap();
    let mut out = Vec::new();
    let err = openai::encode_request(&req, &openai_opts(true), &mut out).unwrap_err();
    assert_eq!(err.path(), Some("messages[0].tool_call_id"));
    req.messages[0].tool_call_id = Some("call_1".into());
    assert!(openai::encode_request(&req, &openai_opts(true), &mut out).is_ok());
}

#[test]
fn think_levels_map_between_apis() {
    for (ollama_think, effort) in [
        (r#""low""#, Some("low")),
        (r#""medium""#, Some("medium")),
        (r#""max""#, Some("high")),
        ("true", None),
        ("false", None),
    ] {
        let body = format!(r#"{{"model":"m","messages":[],"think":{ollama_think}}}"#);
        let req = ollama::decode_request(body.as_bytes()).unwrap();
        let out = encode_openai(&req, &openai_opts(true));
        assert_eq!(out.get("reasoning_effort").and_then(Value::as_str), effort);
    }
    let req =
        openai::decode_request(br#"{"model":"m","messages":[],"reasoning_effort":"minimal"}"#)
            .unwrap();
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert_eq!(body["think"], "low");
    let req = openai::decode_request(br#"{"model":"m","messages":[],"reasoning_effort":"none"}"#)
        .unwrap();
    assert_eq!(req.think, Some(Think::Off));
}

/// Thinking of an earlier assistant turn reaches the upstream in its own field, whichever
/// API the client used and whichever spelling it sent.
#[test]
fn assistant_thinking_is_forwarded_in_its_own_field() {
    let ollama_body = br#"{"model":"m","messages":[
        {"role":"user","content":"a"},
        {"role":"assistant","content":"b","thinking":"why b"},
        {"role":"user","content":"c"}]}"#;
    let req = ollama::decode_request(ollama_body).unwrap();
    let out = encode_openai(&req, &openai_opts(true));
    assert_eq!(out["messages"][1]["reasoning_content"], "why b");
    assert_eq!(out["messages"][0].get("reasoning_content"), None);
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert_eq!(body["messages"][1]["thinking"], "why b");
    for field in ["reasoning_content", "reasoning"] {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"a"}},
            {{"role":"assistant","content":"b","{field}":"why b"}}]}}"#
        );
        let req = openai::decode_request(body.as_bytes()).unwrap();
        assert_eq!(
            req.messages[1].thinking.as_deref(),
            Some("why b"),
            "{field}"
        );
        let out = encode_openai(&req, &openai_opts(false));
        assert_eq!(out["messages"][1]["reasoning_content"], "why b", "{field}");
        let out = to_value(&ollama::encode_request(&req, "m", false).unwrap());
        assert_eq!(out["messages"][1]["thinking"], "why b", "{field}");
    }
}

/// Levels and `false` pass as sent to the upstream of the client's own API.
#[test]
fn think_levels_and_false_pass_as_sent() {
    for think in [r#""low""#, r#""medium""#, r#""high""#, "false", "true"] {
        let body = format!(r#"{{"model":"m","messages":[],"think":{think}}}"#);
        let req = ollama::decode_request(body.as_bytes()).unwrap();
        let out = to_value(&ollama::encode_request(&req, "m", true).unwrap());
        assert_eq!(out["think"].to_string(), think);
    }
    for effort in ["low", "medium", "high", "none"] {
        let body = format!(r#"{{"model":"m","messages":[],"reasoning_effort":"{effort}"}}"#);
        let req = openai::decode_request(body.as_bytes()).unwrap();
        let out = encode_openai(&req, &openai_opts(true));
        assert_eq!(out["reasoning_effort"], effort);
    }
    let req = ollama::decode_request(br#"{"model":"m","messages":[],"think":false}"#).unwrap();
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert_eq!(body["think"], false);
}

#[test]
fn formats_map_between_apis() {
    let req = openai::decode_request(
        br#"{"model":"m","messages":[],"response_format":{"type":"json_object"}}"#,
    )
    .unwrap();
    assert_eq!(
        to_value(&ollama::encode_request(&req, "m", true).unwrap())["format"],
        "json"
    );
    let req = ollama::decode_request(
        br#"{"model":"m","messages":[],"format":{"type":"object","properties":{"a":{"type":"string"}}}}"#,
    )
    .unwrap();
    let body = encode_openai(&req, &openai_opts(false));
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["properties"]["a"]["type"],
        "string"
    );
}

#[test]
fn tool_choice_forms() {
    let req = openai::decode_request(
        br#"{"model":"m","messages":[],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":{"type":"function","function":{"name":"f"}}}"#,
    )
    .unwrap();
    assert_eq!(req.tool_choice, Some(ToolChoice::Function("f".into())));
    let body = encode_openai(&req, &openai_opts(false));
    assert_eq!(
        body["tool_choice"],
        json!({"type": "function", "function": {"name": "f"}})
    );
    let mut req = req;
    req.tool_choice = Some(ToolChoice::None);
    let body = to_value(&ollama::encode_request(&req, "m", true).unwrap());
    assert!(
        body.get("tools").is_none(),
        "tool_choice none offers no tools to Ollama"
    );
}

fn err_of(result: Result<switchyard_core::ChatRequest, RequestError>) -> RequestError {
    result.expect_err("must be refused")
}

#[test]
fn bad_bodies_get_clear_errors_with_paths() {
    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":"a"}"#,
    ));
    assert_eq!(e.reason_code(), "invalid_json");
    assert!(e.to_string().contains("line 1"), "{e}");

    let e = err_of(openai::decode_request(br#"{"messages":[]}"#));
    assert_eq!(e.reason_code(), "invalid_field");
    assert!(e.to_string().contains("model"), "{e}");

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":"a"},{"role":"wizard","content":"b"}]}"#,
    ));
    assert_eq!(e.path(), Some("messages[1].role"), "{e}");

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}"#,
    ));
    assert_eq!(
        e.path(),
        Some("messages[0].tool_calls[0].function.arguments"),
        "{e}"
    );

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[],"temperature":"hot"}"#,
    ));
    assert_eq!(e.path(), Some("temperature"), "{e}");

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[],"n":3}"#,
    ));
    assert_eq!(e.reason_code(), "unsupported");
    assert_eq!(e.path(), Some("n"));

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[],"tool_choice":"sometimes"}"#,
    ));
    assert_eq!(e.path(), Some("tool_choice"));

    let e = err_of(openai::decode_request(
        br#"{"model":"m","messages":[],"reasoning_effort":"huge"}"#,
    ));
    assert_eq!(e.path(), Some("reasoning_effort"));

    let e = err_of(ollama::decode_request(
        br#"{"model":"m","messages":[],"think":"very"}"#,
    ));
    assert_eq!(e.path(), Some("think"));

    let e = err_of(ollama::decode_request(
        br#"{"model":"m","messages":[],"format":42}"#,
    ));
    assert_eq!(e.path(), Some("format"));

    let e = err_of(ollama::decode_request(
        br#"{"model":"m","messages":[{"role":"assistant","content":"","tool_calls":[{"function":{"name":"f","arguments":[1]}}]}]}"#,
    ));
    assert_eq!(
        e.path(),
        Some("messages[0].tool_calls[0].function.arguments")
    );

    let e = err_of(ollama::decode_request(
        br#"{"model":"m","messages":[]} trailing"#,
    ));
    assert_eq!(e.reason_code(), "invalid_json");

    let e = err_of(ollama::decode_request(b""));
    assert_eq!(e.reason_code(), "invalid_json");
}

#[test]
fn nulls_are_tolerated() {
    let req = openai::decode_request(
        br#"{"model":"m","messages":[{"role":"assistant","content":null,"tool_calls":null}],"tools":null,"stop":null,"tool_choice":null}"#,
    )
    .unwrap();
    assert!(req.messages[0].content.is_empty());
    assert!(req.tools.is_empty());
    let req = ollama::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":null,"images":null}],"tools":null,"format":null}"#,
    )
    .unwrap();
    assert!(req.messages[0].content.is_empty());
}
