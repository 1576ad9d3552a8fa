//! Ollama's native API as the server speaks it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use serde_json::{Value, json};
use switchyard_testkit::{
    ModelSpec, Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig,
};

async fn get(url: String) -> reqwest::Response {
    client().get(url).send().await.unwrap()
}

#[tokio::test]
async fn root_version_tags_ps() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .model(
                ModelSpec::new("qwen2.5:7b")
                    .family("qwen2")
                    .parameter_size("7.6B"),
            )
            .model(ModelSpec::embedding("nomic-embed-text:latest"))
            .loaded("qwen2.5:7b")
            .version("0.9.9"),
    )
    .await
    .unwrap();
    let r = get(format!("{}/", up.base_url())).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "Ollama is running");
    let r = client()
        .head(format!("{}/", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.text().await.unwrap(), "");

    let v: Value = get(format!("{}/api/version", up.base_url()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"version": "0.9.9"}));

    let v: Value = get(format!("{}/api/tags", up.base_url()))
        .await
        .json()
        .await
        .unwrap();
    let models = v["models"].as_array().unwrap();
    let names: Vec<&str> = models.iter().map(|m| m["name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        ["test-model", "qwen2.5:7b", "nomic-embed-text:latest"]
    );
    let q = &models[1];
    assert_eq!(q["model"], "qwen2.5:7b");
    assert_eq!(q["digest"].as_str().unwrap().len(), 64);
    assert!(q["size"].as_u64().unwrap() > 0);
    assert!(q["modified_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(q["details"]["family"], "qwen2");
    assert_eq!(q["details"]["families"], json!(["qwen2"]));
    assert_eq!(q["details"]["parameter_size"], "7.6B");
    assert_eq!(q["details"]["quantization_level"], "Q4_K_M");
    assert_eq!(q["details"]["format"], "gguf");

    let v: Value = get(format!("{}/api/ps", up.base_url()))
        .await
        .json()
        .await
        .unwrap();
    let ps = v["models"].as_array().unwrap();
    assert_eq!(ps.len(), 1);
    assert_eq!(ps[0]["name"], "qwen2.5:7b");
    assert!(ps[0]["expires_at"].is_string());
    assert!(ps[0]["size_vram"].as_u64().unwrap() > 0);
    assert_eq!(ps[0]["context_length"], 4096);

    up.set_loaded(vec![]);
    let v: Value = get(format!("{}/api/ps", up.base_url()))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v, json!({"models": []}));
}

#[tokio::test]
async fn show_reports_details_model_info_capabilities_parameters() {
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model(
                ModelSpec::new("qwen3:8b")
                    .family("qwen3")
                    .context_length(40960)
                    .num_ctx(16384)
                    .capabilities(["completion", "tools", "thinking"]),
            )
            .model(ModelSpec::embedding("nomic-embed-text:latest"))
            .model(ModelSpec::new("plain:latest")),
    )
    .await
    .unwrap();
    let url = format!("{}/api/show", up.base_url());
    let v: Value = post(&url, r#"{"model":"qwen3:8b"}"#.into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["model_info"]["general.architecture"], "qwen3");
    assert_eq!(v["model_info"]["qwen3.context_length"], 40960);
    assert_eq!(
        v["capabilities"],
        json!(["completion", "tools", "thinking"])
    );
    assert_eq!(v["details"]["family"], "qwen3");
    let params = v["parameters"].as_str().unwrap();
    let num_ctx = params
        .lines()
        .find_map(|l| l.strip_prefix("num_ctx"))
        .map(|n| n.trim().parse::<u64>().unwrap());
    assert_eq!(num_ctx, Some(16384));
    assert!(v["template"].is_string());
    assert!(v["modified_at"].is_string());

    // The older `name` field, and `name` without a tag resolving to `:latest`.
    let v: Value = post(&url, r#"{"name":"nomic-embed-text"}"#.into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["capabilities"], json!(["embedding"]));
    let v: Value = post(&url, r#"{"model":"plain"}"#.into())
        .await
        .json()
        .await
        .unwrap();
    assert!(!v["parameters"].as_str().unwrap().contains("num_ctx"));
    assert_eq!(v["model_info"]["llama.context_length"], 8192);

    let r = post(&url, r#"{"model":"ghost:1b"}"#.into()).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model 'ghost:1b' not found"})
    );
    let r = post(&url, "{}".into()).await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = post(&url, "not json".into()).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn chat_streams_ndjson_by_default_with_a_final_done_line() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .script("test-model", Script::text(["a", "b", "c"]).with_usage(7, 3)),
    )
    .await
    .unwrap();
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-ndjson");
    let lines = ndjson(&r.text().await.unwrap());
    assert_eq!(lines.len(), 4);
    for l in &lines[..3] {
        assert_eq!(l["done"], false);
        assert_eq!(l["model"], "test-model");
        assert_eq!(l["message"]["role"], "assistant");
        assert!(l["created_at"].is_string());
    }
    assert_eq!(ollama_text(&lines), "abc");
    let last = &lines[3];
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");
    assert_eq!(last["message"]["content"], "");
    assert_eq!(last["prompt_eval_count"], 7);
    assert_eq!(last["eval_count"], 3);
    for k in [
        "total_duration",
        "load_duration",
        "prompt_eval_duration",
        "eval_duration",
    ] {
        assert!(last[k].as_u64().unwrap() > 0, "{k}");
    }
}

#[tokio::test]
async fn chat_not_streamed_is_one_object() {
    let up = TestUpstream::start(UpstreamConfig::default().script(
        "test-model",
        Script::thinking_then_text(["hmm", " ok"], ["The", " answer"]).with_finish_reason("length"),
    ))
    .await
    .unwrap();
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("application/json")
    );
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["done"], true);
    assert_eq!(v["done_reason"], "length");
    assert_eq!(v["message"]["content"], "The answer");
    assert_eq!(v["message"]["thinking"], "hmm ok");
}

#[tokio::test]
async fn thinking_streams_in_message_thinking() {
    let up = TestUpstream::start(
        UpstreamConfig::default()
            .script("test-model", Script::thinking_then_text(["a", "b"], ["c"])),
    )
    .await
    .unwrap();
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(true)),
    )
    .await;
    let lines = ndjson(&r.text().await.unwrap());
    let thinking: String = lines
        .iter()
        .filter_map(|l| l["message"]["thinking"].as_str())
        .collect();
    assert_eq!(thinking, "ab");
    assert_eq!(ollama_text(&lines), "c");
    assert!(lines[0]["message"]["thinking"].is_string() && lines[0]["message"]["content"] == "");
}

#[tokio::test]
async fn tool_calls_arrive_whole_with_ids_and_done_reason_stop() {
    let calls = vec![
        ScriptedCall::new("get_weather", json!({"city": "Tokyo"})),
        ScriptedCall::new("get_time", json!({"tz": "Asia/Tokyo", "fmt": 24})),
    ];
    let up = TestUpstream::start(
        UpstreamConfig::default().script("test-model", Script::tool_calls(calls)),
    )
    .await
    .unwrap();
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", None),
    )
    .await;
    let lines = ndjson(&r.text().await.unwrap());
    let calls: Vec<&Value> = lines
        .iter()
        .filter_map(|l| l["message"]["tool_calls"].as_array())
        .flatten()
        .collect();
    assert_eq!(calls.len(), 2);
    assert_eq!(calls[0]["function"]["name"], "get_weather");
    assert_eq!(calls[0]["function"]["arguments"], json!({"city": "Tokyo"}));
    assert_eq!(calls[0]["function"]["index"], 0);
    assert_eq!(calls[1]["function"]["index"], 1);
    assert_eq!(calls[1]["function"]["arguments"]["fmt"], 24);
    let id0 = calls[0]["id"].as_str().unwrap();
    assert!(id0.starts_with("call_"));
    assert_ne!(id0, calls[1]["id"].as_str().unwrap());
    let last = lines.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["done_reason"], "stop");

    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["message"]["tool_calls"].as_array().unwrap().len(), 2);
    assert_eq!(v["message"]["tool_calls"][0]["id"], id0);
}

#[tokio::test]
async fn tool_calls_written_as_text_in_every_format() {
    let call = ScriptedCall::new("get_weather", json!({"city": "Tokyo"}));
    let two = vec![call.clone(), ScriptedCall::new("get_time", json!({}))];
    let cases = [
        (
            TextCallFormat::Hermes,
            two.clone(),
            "<tool_call>\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Tokyo\"}}\n</tool_call>\n\
             <tool_call>\n{\"name\":\"get_time\",\"arguments\":{}}\n</tool_call>",
        ),
        (
            TextCallFormat::LlamaPythonTag,
            two.clone(),
            "<|python_tag|>{\"name\":\"get_weather\",\"parameters\":{\"city\":\"Tokyo\"}}; \
             {\"name\":\"get_time\",\"parameters\":{}}",
        ),
        (
            TextCallFormat::MistralList,
            two.clone(),
            "[TOOL_CALLS][{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Tokyo\"}}, \
             {\"name\":\"get_time\",\"arguments\":{}}]",
        ),
        (
            TextCallFormat::FencedJson,
            vec![call.clone()],
            "```json\n{\"name\":\"get_weather\",\"arguments\":{\"city\":\"Tokyo\"}}\n```",
        ),
        (
            TextCallFormat::BareJson,
            vec![call.clone()],
            "{\"name\":\"get_weather\",\"parameters\":{\"city\":\"Tokyo\"}}",
        ),
    ];
    let up = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    for (format, calls, expected) in cases {
        up.set_script("test-model", Script::tool_calls_as_text(format, calls));
        let r = post(
            &format!("{}/api/chat", up.base_url()),
            chat_body("test-model", None),
        )
        .await;
        let lines = ndjson(&r.text().await.unwrap());
        assert!(lines.len() > 4, "{format:?}: split into several chunks");
        assert_eq!(ollama_text(&lines), expected, "{format:?}");
        assert!(
            lines
                .iter()
                .all(|l| l["message"].get("tool_calls").is_none())
        );
    }
}

#[tokio::test]
async fn chat_errors_have_ollama_shapes() {
    let up = TestUpstream::start(
        UpstreamConfig::default().model(ModelSpec::embedding("nomic-embed-text:latest")),
    )
    .await
    .unwrap();
    let url = format!("{}/api/chat", up.base_url());
    let r = post(&url, chat_body("nope:1b", None)).await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model \"nope:1b\" not found, try pulling it first"})
    );
    let r = post(&url, chat_body("nomic-embed-text:latest", None)).await;
    assert_eq!(r.status(), 400);
    assert!(
        r.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("does not support chat")
    );
    let r = post(&url, r#"{"messages":[]}"#.into()).await;
    assert_eq!(r.status(), 400);
    assert_eq!(
        r.json::<Value>().await.unwrap(),
        json!({"error": "model is required"})
    );
    let r = post(&url, "{\"model\":".into()).await;
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = client()
        .get(format!("{}/api/nothing", up.base_url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.text().await.unwrap(), "404 page not found");
    // Chat requests that failed are recorded too.
    assert_eq!(up.chat_requests().len(), 4);
}

#[tokio::test]
async fn oversized_request_bodies_get_413() {
    let up = TestUpstream::start(UpstreamConfig::default().max_body_bytes(1024))
        .await
        .unwrap();
    let big = format!(
        r#"{{"model":"test-model","messages":[{{"role":"user","content":"{}"}}]}}"#,
        "x".repeat(4096)
    );
    let r = post(&format!("{}/api/chat", up.base_url()), big).await;
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().await.unwrap()["error"].is_string());
    let r = post(
        &format!("{}/api/chat", up.base_url()),
        chat_body("test-model", Some(false)),
    )
    .await;
    assert_eq!(r.status(), 200);
}
