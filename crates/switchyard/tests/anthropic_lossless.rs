//! Anthropic to Anthropic is lossless: citations (`citations` on text blocks,
//! `citations_delta`) and server-tool blocks (`server_tool_use`, `web_search_tool_result`)
//! reach an Anthropic client through the built `switchyard serve` untouched, streamed
//! (byte for byte) and whole (the blocks as Anthropic's non-streamed answer has them); an
//! OpenAI client of the same upstream still gets the text. The upstream answers with the
//! golden streams in `switchyard-stream/tests/golden/`, written after Anthropic's documented payloads.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Served, TempDir, http};
use serde_json::value::RawValue;
use serde_json::{Value, json};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};

const KEY: &str = "sk-lossless";
const WEB_SEARCH: &str =
    include_str!("../../switchyard-stream/tests/golden/anthropic_web_search.sse");
const CITATIONS: &str =
    include_str!("../../switchyard-stream/tests/golden/anthropic_citations.sse");

/// The frames of an SSE text.
fn frames(sse: &str) -> Vec<String> {
    sse.split_inclusive("\n\n").map(str::to_owned).collect()
}

async fn serve(up: &TestUpstream) -> (Served, TempDir) {
    let dir = TempDir::new("anthropic-lossless");
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [ {{ id: "main", token: "{KEY}" }} ] }},
  providers: {{
    ant: {{ api: "anthropic", base_url: "{base}", api_key: "sk-ant-upstream",
            models: [ {{ id: "web-model" }}, {{ id: "cite-model" }} ] }},
  }},
  routes: {{ web: {{ targets: ["ant/web-model"] }}, cite: {{ targets: ["ant/cite-model"] }} }},
  retry: {{ max_retries: 0 }},
}}"#,
        base = up.base_url()
    );
    let path = dir.write("config.json5", &config);
    (Served::start(&path, &[]).await, dir)
}

async fn start() -> (TestUpstream, Served, TempDir) {
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("web-model", Script::anthropic_raw(frames(WEB_SEARCH), "{}"))
            .model_with_script("cite-model", Script::anthropic_raw(frames(CITATIONS), "{}")),
    )
    .await
    .unwrap();
    let (served, dir) = serve(&up).await;
    (up, served, dir)
}

async fn messages(served: &Served, route: &str, stream: bool) -> String {
    let response = http()
        .post(format!("{}/v1/messages", served.base_url()))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(
            &json!({"model": route, "max_tokens": 1024, "stream": stream,
            "messages": [{"role": "user", "content": "When was Claude Shannon born?"}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.text().await.unwrap()
}

/// One content-block event of a stream: its type, index, and the block (start) or delta
/// JSON exactly as written.
#[derive(Debug, PartialEq)]
struct BlockEvent {
    kind: String,
    index: u64,
    raw: Option<String>,
}

fn block_events(sse: &str) -> Vec<BlockEvent> {
    #[derive(serde::Deserialize)]
    struct Event<'a> {
        #[serde(rename = "type")]
        kind: String,
        #[serde(default)]
        index: Option<u64>,
        #[serde(borrow, default)]
        content_block: Option<&'a RawValue>,
        #[serde(borrow, default)]
        delta: Option<&'a RawValue>,
    }
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|data| {
            let e: Event<'_> = serde_json::from_str(data).unwrap();
            let raw = e.content_block.or(e.delta).map(|r| r.get().to_owned());
            e.kind.starts_with("content_block_").then(|| BlockEvent {
                kind: e.kind,
                index: e.index.unwrap(),
                raw,
            })
        })
        .collect()
}

/// Whether the gateway writes this event itself (a plain text block or a text delta,
/// compact JSON) rather than passing it on verbatim.
fn rewritten(e: &BlockEvent) -> bool {
    let raw = e.raw.as_deref().unwrap_or("");
    raw.contains(r#""type": "text_delta""#) || raw == r#"{"type": "text", "text": ""}"#
}

/// The streamed answer keeps every block, index and pass-through JSON of the upstream's.
fn assert_streamed_lossless(upstream: &str, through: &str) {
    let want = block_events(upstream);
    let got = block_events(through);
    let shape = |v: &[BlockEvent]| -> Vec<(String, u64)> {
        v.iter().map(|e| (e.kind.clone(), e.index)).collect()
    };
    assert_eq!(shape(&got), shape(&want), "block structure:\n{through}");
    for (w, g) in want.iter().zip(&got) {
        if rewritten(w) {
            let text = |e: &BlockEvent| -> Value {
                serde_json::from_str(e.raw.as_deref().unwrap_or("null")).unwrap()
            };
            assert_eq!(text(g), text(w), "same text");
        } else {
            assert_eq!(g.raw, w.raw, "byte for byte");
        }
    }
}

#[tokio::test]
async fn web_search_blocks_and_citations_stream_through_byte_for_byte() {
    let (_up, served, _dir) = start().await;
    let through = messages(&served, "web", true).await;
    assert_streamed_lossless(WEB_SEARCH, &through);
    assert!(through.contains(r#""stop_reason":"end_turn""#), "{through}");
    assert!(through.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[tokio::test]
async fn document_citations_stream_through_byte_for_byte() {
    let (_up, served, _dir) = start().await;
    let through = messages(&served, "cite", true).await;
    assert_streamed_lossless(CITATIONS, &through);
}

#[tokio::test]
async fn whole_answers_keep_citations_and_server_tool_blocks() {
    let (_up, served, _dir) = start().await;
    let body: Value = serde_json::from_str(&messages(&served, "web", false).await).unwrap();
    let cited = "Claude Elwood Shannon (April 30, 1916 \u{2013} February 24, 2001) was an American \
                 mathematician, electrical engineer, computer scientist, cryptographer and \
                 inventor known as the \"father of information theory\". ";
    let want = json!([
        {"type": "text", "text": "I'll search for when Claude Shannon was born."},
        {"type": "server_tool_use", "id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB", "name": "web_search",
         "input": {"query": "claude shannon birth date"}},
        {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_014hJH82Qum7Td6UV8gDXThB",
         "content": [{"type": "web_search_result", "title": "Claude Shannon - Wikipedia",
                      "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
                      "encrypted_content": "EqgfCioIARgBIiQ3YTAwMjY1Mi1mZjM5LTQ1NGUtODgxNS1kNjNlYTc4ODE1ZjkSDAuWbhb3yDsCwHz1ew",
                      "page_age": "April 30, 2025"}]},
        {"type": "text", "text": "Based on the search results, "},
        {"type": "text", "text": "Claude Shannon was born on April 30, 1916, in Petoskey, Michigan",
         "citations": [{"type": "web_search_result_location",
                        "url": "https://en.wikipedia.org/wiki/Claude_Shannon",
                        "title": "Claude Shannon - Wikipedia",
                        "encrypted_index": "Eo8BCioIAhgBIiQyYjQ0OWJmZi1lNm",
                        "cited_text": cited}]}
    ]);
    assert_eq!(body["content"], want, "{body}");
    assert_eq!(body["stop_reason"], "end_turn");

    let body: Value = serde_json::from_str(&messages(&served, "cite", false).await).unwrap();
    let citation = |text: &str, start: u64, end: u64| {
        json!({"type": "char_location", "cited_text": text, "document_index": 0,
               "document_title": "Example Document", "start_char_index": start, "end_char_index": end})
    };
    let want = json!([
        {"type": "text", "text": "According to the document, "},
        {"type": "text", "text": "the grass is green", "citations": [citation("The grass is green. ", 0, 20)]},
        {"type": "text", "text": " and "},
        {"type": "text", "text": "the sky is blue", "citations": [citation("The sky is blue.", 20, 36)]}
    ]);
    assert_eq!(body["content"], want, "{body}");
}

#[tokio::test]
async fn an_openai_client_of_the_same_upstream_gets_the_text() {
    let (_up, served, _dir) = start().await;
    let response = http()
        .post(format!("{}/v1/chat/completions", served.base_url()))
        .bearer_auth(KEY)
        .json(&json!({"model": "web", "messages": [{"role": "user", "content": "born?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let text = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(
        text,
        "I'll search for when Claude Shannon was born.Based on the search results, \
         Claude Shannon was born on April 30, 1916, in Petoskey, Michigan"
    );
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
}
