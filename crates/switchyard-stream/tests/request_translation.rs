//! Request translation between client APIs and OpenAI-compatible upstreams: the cases a
//! review found broken (tool-result images, glued text parts, calls split by reasoning,
//! `strict` and `top_k` dropped).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use switchyard_core::{ContentPart, Role};
use switchyard_stream::anthropic::request as anthropic;
use switchyard_stream::ollama::request as ollama;
use switchyard_stream::openai::request::{self as openai, MaxTokensField, OpenAiRequestOptions};
use switchyard_stream::responses::request::{self as responses, DecodeOptions};

fn to_openai(req: &switchyard_core::ChatRequest) -> Value {
    let opts = OpenAiRequestOptions {
        model: "up",
        max_tokens_field: MaxTokensField::MaxTokens,
        num_ctx: None,
        stream: true,
    };
    let mut out = Vec::new();
    openai::encode_request(req, &opts, &mut out).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn to_ollama(req: &switchyard_core::ChatRequest) -> Value {
    serde_json::from_slice(&ollama::encode_request(req, "up", true).unwrap()).unwrap()
}

fn messages(v: &Value) -> &Vec<Value> {
    v["messages"].as_array().unwrap()
}

/// OpenAI's rule: the calls of an assistant message are answered by the tool messages right
/// after it, one per call, and tool messages carry text parts only.
fn assert_openai_tool_rules(v: &Value) {
    let msgs = messages(v);
    for (i, m) in msgs.iter().enumerate() {
        if let Some(calls) = m["tool_calls"].as_array() {
            for (k, call) in calls.iter().enumerate() {
                let answer = &msgs[i + 1 + k];
                assert_eq!(
                    answer["role"], "tool",
                    "call {k} of message {i} unanswered: {v}"
                );
                assert_eq!(answer["tool_call_id"], call["id"], "{v}");
            }
        }
        if m["role"] == "tool" {
            if let Some(parts) = m["content"].as_array() {
                for p in parts {
                    assert_eq!(p["type"], "text", "non-text part in a tool message: {m}");
                }
            } else {
                assert!(m["content"].is_string(), "{m}");
            }
        }
    }
}

// --- #1: images of a tool result ------------------------------------------------------

#[test]
fn tool_result_image_moves_to_a_user_message_after_the_tool_message() {
    let body = br#"{"model":"m","max_tokens":256,"messages":[
      {"role":"user","content":"Look at shot.png"},
      {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Read","input":{"file_path":"shot.png"}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[
         {"type":"text","text":"Image read"},
         {"type":"image","source":{"type":"base64","media_type":"image/png","data":"iVBORw0KGgo="}}]}]}]}"#;
    let v = to_openai(&anthropic::decode_request(body).unwrap());
    assert_openai_tool_rules(&v);
    let msgs = messages(&v);
    assert_eq!(msgs.len(), 4, "{v}");
    assert_eq!(msgs[2]["role"], "tool");
    assert_eq!(msgs[2]["tool_call_id"], "toolu_1");
    assert_eq!(msgs[2]["content"], "Image read");
    assert_eq!(msgs[3]["role"], "user");
    let parts = msgs[3]["content"].as_array().unwrap();
    assert_eq!(parts[0]["type"], "text");
    assert!(
        parts[0]["text"].as_str().unwrap().contains("toolu_1"),
        "{v}"
    );
    assert_eq!(
        parts[1],
        json!({"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0KGgo="}})
    );
}

#[test]
fn tool_result_images_wait_for_the_end_of_the_turns_tool_results() {
    // Two parallel calls; the first result is only an image, the second is text; the user
    // turn goes on with a question after the results.
    let body = br#"{"model":"m","max_tokens":256,"messages":[
      {"role":"user","content":"Compare"},
      {"role":"assistant","content":[
         {"type":"tool_use","id":"toolu_1","name":"Read","input":{"file_path":"a.png"}},
         {"type":"tool_use","id":"toolu_2","name":"Read","input":{"file_path":"b.txt"}}]},
      {"role":"user","content":[
         {"type":"tool_result","tool_use_id":"toolu_1","content":[
           {"type":"image","source":{"type":"url","url":"https://example.com/a.png"}}]},
         {"type":"tool_result","tool_use_id":"toolu_2","content":"hello"},
         {"type":"text","text":"Which is bigger?"}]}]}"#;
    let v = to_openai(&anthropic::decode_request(body).unwrap());
    assert_openai_tool_rules(&v);
    let msgs = messages(&v);
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "tool", "user"], "{v}");
    assert_eq!(msgs[2]["content"], "(image attached below)");
    assert_eq!(msgs[3]["content"], "hello");
    // The images go first in the user message that follows, then its own text.
    let parts = msgs[4]["content"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "{v}");
    assert_eq!(parts[0]["type"], "text");
    assert_eq!(parts[1]["image_url"]["url"], "https://example.com/a.png");
    assert_eq!(parts[2], json!({"type":"text","text":"Which is bigger?"}));
}

#[test]
fn tool_result_image_before_an_assistant_turn_gets_its_own_user_message() {
    let body = br#"{"model":"m","messages":[
      {"role":"user","content":"shot"},
      {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"shot","arguments":"{}"}}]},
      {"role":"tool","tool_call_id":"call_1","content":[
         {"type":"image_url","image_url":{"url":"data:image/jpeg;base64,/9j/"}}]},
      {"role":"assistant","content":"A cat."}]}"#;
    let v = to_openai(&openai::decode_request(body).unwrap());
    assert_openai_tool_rules(&v);
    let msgs = messages(&v);
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(
        roles,
        ["user", "assistant", "tool", "user", "assistant"],
        "{v}"
    );
    assert_eq!(
        msgs[3]["content"][1]["image_url"]["url"],
        "data:image/jpeg;base64,/9j/"
    );
    assert_eq!(msgs[4]["content"], "A cat.");
}

// --- #2: several text parts ------------------------------------------------------------

#[test]
fn text_parts_stay_apart_for_openai() {
    let body = br#"{"model":"m","messages":[
        {"role":"system","content":[{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind."}]},
        {"role":"user","content":[
          {"type":"text","text":"Summarise file A."},{"type":"text","text":"Then file B."}]},
        {"role":"assistant","content":[{"type":"text","text":"A is"},{"type":"text","text":"short."}]},
        {"role":"user","content":[{"type":"text","text":"one"}]}]}"#;
    let v = to_openai(&openai::decode_request(body).unwrap());
    let msgs = messages(&v);
    assert_eq!(
        msgs[0]["content"],
        json!([{"type":"text","text":"Be brief."},{"type":"text","text":"Be kind."}])
    );
    assert_eq!(
        msgs[1]["content"],
        json!([{"type":"text","text":"Summarise file A."},{"type":"text","text":"Then file B."}])
    );
    assert_eq!(msgs[2]["content"], "A is\nshort.");
    assert_eq!(
        msgs[3]["content"], "one",
        "a single text part stays a string"
    );
}

#[test]
fn tool_result_text_blocks_stay_apart_for_openai() {
    let body = br#"{"model":"m","max_tokens":64,"messages":[
      {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"ls","input":{}}]},
      {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","content":[
         {"type":"text","text":"a.txt"},{"type":"text","text":"b.txt"}]}]}]}"#;
    let v = to_openai(&anthropic::decode_request(body).unwrap());
    assert_openai_tool_rules(&v);
    assert_eq!(
        messages(&v)[1]["content"],
        json!([{"type":"text","text":"a.txt"},{"type":"text","text":"b.txt"}])
    );
}

// --- #7: reasoning between parallel calls (Responses input) -----------------------------

#[test]
fn reasoning_between_parallel_calls_keeps_one_assistant_turn() {
    let body = br#"{"model":"m","store":false,"input":[
          {"type":"message","role":"user","content":[{"type":"input_text","text":"go"}]},
          {"type":"reasoning","summary":[{"type":"summary_text","text":"first"}]},
          {"type":"function_call","call_id":"call_1","name":"shell","arguments":"{}"},
          {"type":"reasoning","summary":[{"type":"summary_text","text":"second"}]},
          {"type":"function_call","call_id":"call_2","name":"shell","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":"a"},
          {"type":"function_call_output","call_id":"call_2","output":"b"}]}"#;
    let req = responses::decode_request(body, &DecodeOptions::default())
        .unwrap()
        .into_chat(Vec::new());
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(roles, [Role::User, Role::Assistant, Role::Tool, Role::Tool]);
    let turn = &req.messages[1];
    let ids: Vec<&str> = turn.tool_calls.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(ids, ["call_1", "call_2"]);
    assert_eq!(turn.thinking.as_deref(), Some("first\n\nsecond"));

    let v = to_openai(&req);
    assert_openai_tool_rules(&v);
    assert_eq!(messages(&v)[1]["reasoning_content"], "first\n\nsecond");
}

#[test]
fn reasoning_after_answered_calls_still_opens_a_new_turn() {
    let body = br#"{"model":"m","store":false,"input":[
          {"type":"message","role":"user","content":"go"},
          {"type":"function_call","call_id":"call_1","name":"shell","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":"a"},
          {"type":"reasoning","summary":[{"type":"summary_text","text":"next"}]},
          {"type":"function_call","call_id":"call_2","name":"shell","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_2","output":"b"}]}"#;
    let req = responses::decode_request(body, &DecodeOptions::default())
        .unwrap()
        .into_chat(Vec::new());
    let roles: Vec<Role> = req.messages.iter().map(|m| m.role).collect();
    assert_eq!(
        roles,
        [
            Role::User,
            Role::Assistant,
            Role::Tool,
            Role::Assistant,
            Role::Tool
        ]
    );
    assert_eq!(req.messages[1].thinking, None);
    assert_eq!(req.messages[3].thinking.as_deref(), Some("next"));
    assert!(matches!(&req.messages[4].content[..], [ContentPart::Text(t)] if t == "b"));
}

// --- #8: tools[].function.strict ---------------------------------------------------------

#[test]
fn openai_tool_strict_reaches_an_openai_upstream() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],
        "tools":[
          {"type":"function","function":{"name":"f","strict":true,
            "parameters":{"type":"object","properties":{},"additionalProperties":false}}},
          {"type":"function","function":{"name":"g","parameters":{"type":"object"}}},
          {"type":"function","function":{"name":"h","strict":false,"parameters":{"type":"object"}}}]}"#;
    let req = openai::decode_request(body).unwrap();
    let v = to_openai(&req);
    let tools = v["tools"].as_array().unwrap();
    assert_eq!(tools[0]["function"]["strict"], true, "{v}");
    assert!(tools[1]["function"].get("strict").is_none(), "{v}");
    assert_eq!(tools[2]["function"]["strict"], false, "{v}");
    // Exactly one `tools` key with the full tools (the kept flags are not sent as extra).
    let text = {
        let mut out = Vec::new();
        let opts = OpenAiRequestOptions {
            model: "up",
            max_tokens_field: MaxTokensField::MaxTokens,
            num_ctx: None,
            stream: false,
        };
        openai::encode_request(&req, &opts, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    };
    assert_eq!(text.matches(r#""tools":"#).count(), 1, "{text}");
    // An Ollama upstream gets neither `strict` nor the kept flags.
    let o = to_ollama(&req);
    assert!(o["tools"][0]["function"].get("strict").is_none(), "{o}");
    assert_eq!(o["tools"].as_array().unwrap().len(), 3, "{o}");
}

// --- #9: top_k ---------------------------------------------------------------------------

#[test]
fn openai_top_k_reaches_an_openai_upstream() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"top_k":20}"#;
    let v = to_openai(&openai::decode_request(body).unwrap());
    assert_eq!(v["top_k"], 20, "{v}");

    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let v = to_openai(&openai::decode_request(body).unwrap());
    assert!(v.get("top_k").is_none(), "{v}");
}

#[test]
fn ollama_top_k_is_not_sent_to_an_openai_upstream() {
    // OpenAI itself answers 400 to `top_k`; only a client that wrote it into an OpenAI body
    // gets it forwarded.
    let body =
        br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"options":{"top_k":40}}"#;
    let req = ollama::decode_request(body).unwrap();
    assert_eq!(req.options.top_k, Some(40));
    let v = to_openai(&req);
    assert!(v.get("top_k").is_none(), "{v}");
}

#[test]
fn responses_call_output_parts_stay_apart_for_openai() {
    let body = br#"{"model":"m","store":false,"input":[
          {"type":"message","role":"user","content":"ls"},
          {"type":"function_call","call_id":"call_1","name":"shell","arguments":"{}"},
          {"type":"function_call_output","call_id":"call_1","output":[
            {"type":"input_text","text":"a.txt"},{"type":"input_text","text":"b.txt"}]}]}"#;
    let req = responses::decode_request(body, &DecodeOptions::default())
        .unwrap()
        .into_chat(Vec::new());
    let v = to_openai(&req);
    assert_openai_tool_rules(&v);
    assert_eq!(
        messages(&v)[2]["content"],
        json!([{"type":"text","text":"a.txt"},{"type":"text","text":"b.txt"}])
    );
}

#[test]
fn text_parts_stay_apart_for_ollama() {
    let req = openai::decode_request(
        br#"{"model":"m","messages":[{"role":"user","content":[
          {"type":"text","text":"Summarise file A."},{"type":"text","text":"Then file B."}]}]}"#,
    )
    .unwrap();
    let v = to_ollama(&req);
    assert_eq!(
        v["messages"][0]["content"], "Summarise file A.\nThen file B.",
        "{v}"
    );
}

/// An Anthropic Files API image (`source.type: "file"`) reaches an Anthropic upstream in
/// the client's own body; another API cannot carry it, so translating it is refused,
/// naming the part, instead of sending the turn without its image.
#[test]
fn a_part_only_the_clients_api_carries_is_refused_not_dropped_in_translation() {
    let body = json!({
        "model": "m", "max_tokens": 64,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "file", "file_id": "file_011"}},
            {"type": "text", "text": "What is in this picture?"}
        ]}]
    });
    let req = anthropic::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let opts = OpenAiRequestOptions {
        model: "up",
        max_tokens_field: MaxTokensField::MaxTokens,
        num_ctx: None,
        stream: false,
    };
    let err = openai::encode_request(&req, &opts, &mut Vec::new()).unwrap_err();
    assert_eq!(err.path(), Some("messages[0].content[0].source"), "{err}");
    assert!(err.to_string().contains("file"), "{err}");
    let err = ollama::encode_request(&req, "up", false).unwrap_err();
    assert_eq!(err.path(), Some("messages[0].content[0].source"), "{err}");
}

/// Ollama's docs/api.md: `images` are bare base64 ("a list of base64-encoded images"), with
/// no media type; the decoder records none, and the Anthropic encoder then labels every
/// image `image/png`. Anthropic checks the label against the bytes and refuses a JPEG sent
/// as PNG with a 400 ("Image does not match the provided media type image/png" /
/// "The image was specified using the image/png media type, but the image appears to be a
/// image/jpeg image": anthropics/claude-code#13131, BerriAI/litellm#24900). A JPEG
/// (base64 `/9j/`, bytes FF D8 FF) from an Ollama client must reach Anthropic as
/// `image/jpeg`.
#[test]
fn an_ollama_jpeg_reaches_anthropic_labelled_as_jpeg() {
    use switchyard_stream::anthropic::request::{AnthropicRequestOptions, encode_request};
    let jpeg = "/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQNDAsLDBkSEw8UHRofHh0aHBwgJC4nICIsIxwcKDcpLDAxNDQ0Hyc5PTgyPC4zNDL/wAALCAABAAEBAREA/8QAFAABAAAAAAAAAAAAAAAAAAAACf/EABQQAQAAAAAAAAAAAAAAAAAAAAD/2gAIAQEAAD8AKp//2Q==";
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "What is in this picture?", "images": [jpeg]}
    ]});
    let req = ollama::decode_request(body.to_string().as_bytes()).unwrap();
    let opts = AnthropicRequestOptions {
        model: "claude",
        stream: true,
        default_max_tokens: 1024,
    };
    let mut out = Vec::new();
    encode_request(&req, &opts, &mut out).unwrap();
    let sent: Value = serde_json::from_slice(&out).unwrap();
    let image = sent["messages"][0]["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["type"] == "image")
        .unwrap_or_else(|| panic!("no image block: {sent}"))
        .clone();
    assert_eq!(image["source"]["data"], jpeg, "{image}");
    assert_eq!(image["source"]["media_type"], "image/jpeg", "{image}");
}

/// A history tool call whose arguments the client gives as an object keeps the numbers it
/// wrote: an integer beyond 64 bits reaches either upstream as written, not as an `f64`.
#[test]
fn history_arguments_given_as_an_object_keep_their_numbers() {
    const BIG: &str = "123456789012345678901234567890";
    let history = |arguments: &str| {
        format!(
            r#"{{"model":"m","messages":[
                {{"role":"user","content":"look it up"}},
                {{"role":"assistant","content":"","tool_calls":[{{"id":"call_1","function":{{"name":"lookup","arguments":{arguments}}}}}]}},
                {{"role":"tool","content":"found","tool_call_id":"call_1","tool_name":"lookup"}}
            ]}}"#
        )
    };
    let object = format!(r#"{{"id": {BIG}, "exact": 1.10}}"#);
    let as_string = serde_json::to_string(&object).unwrap();
    let decoded = [
        ollama::decode_request(history(&object).as_bytes()).unwrap(),
        openai::decode_request(history(&object).as_bytes()).unwrap(),
        openai::decode_request(history(&as_string).as_bytes()).unwrap(),
    ];
    for req in &decoded {
        let sent = &to_openai(req)["messages"][1]["tool_calls"][0]["function"]["arguments"];
        assert_eq!(
            sent.as_str(),
            Some(object.as_str()),
            "sent upstream: {sent}"
        );
        let ollama_body =
            String::from_utf8(ollama::encode_request(req, "up", true).unwrap()).unwrap();
        assert!(
            ollama_body.contains(&format!(r#""id": {BIG}"#)),
            "the Ollama upstream's body rewrote the number: {ollama_body}"
        );
    }
    // Arguments that are neither an object nor a string holding one are refused, naming
    // the field; null and an empty string are no arguments.
    for (arguments, ok) in [
        ("[1]", false),
        ("\"[1]\"", false),
        ("7", false),
        ("null", true),
        ("\"\"", true),
    ] {
        for result in [
            ollama::decode_request(history(arguments).as_bytes()).map(|_| ()),
            openai::decode_request(history(arguments).as_bytes()).map(|_| ()),
        ] {
            match result {
                Ok(()) => assert!(ok, "{arguments} was accepted"),
                Err(e) => {
                    assert!(!ok, "{arguments} was refused: {e}");
                    assert!(
                        e.to_string()
                            .contains("messages[1].tool_calls[0].function.arguments"),
                        "{e}"
                    );
                }
            }
        }
    }
}
