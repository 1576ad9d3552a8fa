//! Helpers shared by the integration tests: a client and minimal wire parsers written
//! independently of the server's renderer.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, unreachable_pub)]

use std::time::Duration;

use serde_json::Value;

/// Timeout for requests that must succeed.
pub const T: Duration = Duration::from_secs(5);

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().timeout(T).build().unwrap()
}

/// A client with a short total timeout, for requests that hang on purpose.
pub fn short_client(ms: u64) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_millis(ms))
        .build()
        .unwrap()
}

pub fn chat_body(model: &str, stream: Option<bool>) -> String {
    let mut v =
        serde_json::json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    if let Some(s) = stream {
        v["stream"] = Value::Bool(s);
    }
    v.to_string()
}

/// NDJSON lines parsed as JSON (panics on a malformed line).
pub fn ndjson(text: &str) -> Vec<Value> {
    text.lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

/// SSE `data:` payloads, in order (the raw strings, `[DONE]` included).
pub fn sse_data(text: &str) -> Vec<String> {
    assert!(
        text.ends_with("\n\n") || text.is_empty(),
        "SSE must end with a blank line"
    );
    text.split("\n\n")
        .filter(|e| !e.is_empty())
        .map(|e| {
            let d: Vec<&str> = e.lines().filter_map(|l| l.strip_prefix("data: ")).collect();
            assert_eq!(d.len(), 1, "one data line per event: {e:?}");
            d[0].to_owned()
        })
        .collect()
}

/// SSE chunks parsed as JSON, asserting the stream ends with `[DONE]`.
pub fn sse_chunks(text: &str) -> Vec<Value> {
    let data = sse_data(text);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"), "{text}");
    data[..data.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

/// Concatenated `message.content` of Ollama lines.
pub fn ollama_text(lines: &[Value]) -> String {
    lines
        .iter()
        .filter_map(|l| l["message"]["content"].as_str())
        .collect()
}

/// Concatenated `delta.content` of OpenAI chunks.
pub fn openai_text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| {
            c["choices"]
                .get(0)
                .and_then(|ch| ch["delta"]["content"].as_str())
        })
        .collect()
}

pub async fn post(url: &str, body: String) -> reqwest::Response {
    client()
        .post(url)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap()
}
