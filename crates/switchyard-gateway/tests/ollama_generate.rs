//! Ollama's `/api/generate` and `/api/embed` through the gateway, as Ollama's `docs/api.md`
//! describes them: loading a model with an empty prompt, every `options` reaching an
//! Ollama upstream, the final line's durations and `context`, `null` for lists.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;

use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_router::ProviderSlot;
use switchyard_testkit::{TestUpstream, UpstreamConfig};
use tokio::sync::oneshot;

mod support;

use support::{
    Kind, WAIT, gateway_config, http, new_gateway, provider, router_over, serve_until_stopped,
};

struct H {
    addr: SocketAddr,
    upstream: TestUpstream,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<Result<(), switchyard_gateway::GatewayError>>,
}

async fn start(kind: Kind) -> H {
    let upstream = TestUpstream::start(UpstreamConfig::default())
        .await
        .unwrap();
    let slot = ProviderSlot::new(
        "up",
        provider(kind, &upstream, Locality::Local),
        Locality::Local,
    );
    let router = router_over(
        vec![slot],
        json!({ "routes": { "chat": { "targets": ["up/test-model"] } } }),
    );
    let running = serve_until_stopped(new_gateway(router, gateway_config())).await;
    H {
        addr: running.addr,
        upstream,
        stop: Some(running.stop),
        task: running.task,
    }
}

impl H {
    async fn post(&self, path: &str, body: Value) -> (u16, String) {
        let r = http()
            .post(format!("http://{}{path}", self.addr))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.text().await.unwrap())
    }

    /// The JSON body the upstream received on `path`.
    fn sent(&self, path: &str) -> Value {
        let reqs = self.upstream.requests();
        let req = reqs.iter().find(|r| r.path == path);
        req.unwrap_or_else(|| panic!("nothing reached {path}"))
            .body_json()
            .unwrap()
    }

    async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        let _ = tokio::time::timeout(WAIT, self.task).await;
        self.upstream.shutdown().await;
    }
}

fn last_line(body: &str) -> Value {
    serde_json::from_str(body.lines().last().unwrap()).unwrap()
}

const FINAL_FIELDS: [&str; 6] = [
    "total_duration",
    "load_duration",
    "prompt_eval_count",
    "prompt_eval_duration",
    "eval_count",
    "eval_duration",
];

/// Ollama's docs: "If an empty prompt is provided, the model will be loaded into memory";
/// Ollama answers with one object, `done_reason: "load"`, without a trailing newline.
/// DECISIONS.md: routed like any other, the answer is empty.
#[tokio::test]
async fn generate_with_an_empty_prompt_loads_the_model() {
    let h = start(Kind::Ollama).await;
    for stream in [true, false] {
        let (status, body) = h
            .post("/api/generate", json!({"model": "chat", "stream": stream}))
            .await;
        assert_eq!(status, 200, "stream={stream}: {body}");
        let last = last_line(&body);
        assert_eq!(last["done"], true, "{body}");
        assert_eq!(last["done_reason"], "load", "{body}");
        assert_eq!(last["response"], "", "{body}");
    }
    assert_eq!(h.sent("/api/generate")["prompt"], "");
    h.shutdown().await;
}

/// Options the gateway does not model (`repeat_penalty`, `min_p`, `mirostat`,
/// `num_predict: -1`) reach an Ollama upstream on `/api/generate` as they do on
/// `/api/chat`.
#[tokio::test]
async fn generate_passes_every_option_to_an_ollama_upstream() {
    let h = start(Kind::Ollama).await;
    let options = json!({"temperature": 0.5, "repeat_penalty": 1.3, "num_predict": -1,
        "min_p": 0.05, "mirostat": 2});
    let (status, body) = h
        .post(
            "/api/generate",
            json!({"model": "chat", "prompt": "hi", "options": options}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h
        .post(
            "/api/chat",
            json!({"model": "chat", "messages": [{"role": "user", "content": "hi"}],
            "options": options}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let chat = h.sent("/api/chat");
    let generate = h.sent("/api/generate");
    assert_eq!(chat["options"], options, "chat sent: {chat}");
    assert_eq!(generate["options"], options, "generate sent: {generate}");
    h.shutdown().await;
}

/// Ollama's docs, `/api/embed`: "options: additional model parameters listed in the
/// documentation for the Modelfile such as temperature"; `null` is no options.
#[tokio::test]
async fn embed_passes_options_to_an_ollama_upstream() {
    let h = start(Kind::Ollama).await;
    let options = json!({"num_ctx": 8192, "temperature": 0, "mirostat": 2});
    let (status, body) = h
        .post(
            "/api/embed",
            json!({"model": "chat", "input": ["a", "b"], "options": options,
            "truncate": false, "keep_alive": "5m"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = h.sent("/api/embed");
    assert_eq!(sent["options"], options, "embed sent: {sent}");
    assert_eq!(sent["truncate"], false, "embed sent: {sent}");
    assert_eq!(sent["keep_alive"], "5m", "embed sent: {sent}");
    let (status, body) = h
        .post(
            "/api/embed",
            json!({"model": "chat", "input": "a", "options": null}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = h
        .post(
            "/api/embed",
            json!({"model": "chat", "input": "a", "options": 3}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("options"),
        "the error names the field: {body}"
    );
    h.shutdown().await;
}

/// Ollama's docs (`/api/generate`): "The final response in the stream also includes
/// additional data about the generation: total_duration, load_duration,
/// prompt_eval_count, prompt_eval_duration, eval_count, eval_duration, context"; the
/// same for `stream: false`. The test upstream's `context` is `[1, 2, 3]`.
#[tokio::test]
async fn generate_final_line_has_the_documented_fields() {
    let h = start(Kind::Ollama).await;
    for stream in [true, false] {
        let (status, body) = h
            .post(
                "/api/generate",
                json!({"model": "chat", "prompt": "why is the sky blue", "stream": stream}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let last = last_line(&body);
        assert_eq!(last["done"], true);
        for key in FINAL_FIELDS {
            assert!(last[key].is_u64(), "stream={stream}: no {key}: {last}");
        }
        assert_eq!(last["context"], json!([1, 2, 3]), "stream={stream}: {last}");
        // Only the final line carries them.
        for line in body.lines().rev().skip(1) {
            let v: Value = serde_json::from_str(line).unwrap();
            assert!(
                v.get("context").is_none() && v.get("eval_count").is_none(),
                "{line}"
            );
        }
    }
    h.shutdown().await;
}

/// An OpenAI-compatible upstream has no `context` to give: none is made up; the counts
/// and durations are written as `/api/chat` writes them (durations zero).
#[tokio::test]
async fn generate_from_an_openai_upstream_has_no_context() {
    let h = start(Kind::OpenAi).await;
    for stream in [true, false] {
        let (status, body) = h
            .post(
                "/api/generate",
                json!({"model": "chat", "prompt": "why is the sky blue", "stream": stream}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        let last = last_line(&body);
        assert_eq!(last["done"], true, "{last}");
        assert!(last.get("context").is_none(), "stream={stream}: {last}");
        for key in FINAL_FIELDS {
            assert!(last[key].is_u64(), "stream={stream}: no {key}: {last}");
        }
        assert_eq!(last["total_duration"], 0, "{last}");
    }
    h.shutdown().await;
}

/// Go's encoding/json (Ollama) takes `null` for any field, and `/api/chat` here takes
/// `null` for its lists; `/api/generate` does too.
#[tokio::test]
async fn generate_accepts_null_like_chat_does() {
    let h = start(Kind::Ollama).await;
    let (status, body) = h
        .post(
            "/api/chat",
            json!({"model": "chat", "stream": false, "tools": null,
            "messages": [{"role": "user", "content": "hi", "images": null}]}),
        )
        .await;
    assert_eq!(status, 200, "chat: {body}");
    let (status, body) = h
        .post(
            "/api/generate",
            json!({"model": "chat", "prompt": "hi", "stream": false, "images": null,
            "context": null, "options": null, "suffix": null}),
        )
        .await;
    assert_eq!(status, 200, "generate: {body}");
    let sent = h.sent("/api/generate");
    assert!(sent.get("images").is_none(), "{sent}");
    // A wrong type is still refused, naming the field.
    let (status, body) = h
        .post(
            "/api/generate",
            json!({"model": "chat", "prompt": "hi", "images": "abc"}),
        )
        .await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("images"), "{body}");
    h.shutdown().await;
}

/// DECISIONS.md ("Generate and legacy completions are routed the same way"): an
/// OpenAI-compatible upstream gets a streamed `/v1/completions` with "prompt, suffix and
/// sampling options". `presence_penalty` and `frequency_penalty` are sampling options the
/// gateway models (`SamplingOptions`, read from Ollama's `options` as on `/api/chat`) and
/// parameters of OpenAI's `/v1/completions` (API reference, "Create completion"). On
/// `/api/chat` they reach the OpenAI upstream; on `/api/generate` they are dropped.
#[tokio::test]
async fn generate_sends_penalties_to_an_openai_upstream() {
    let h = start(Kind::OpenAi).await;
    let options = json!({"presence_penalty": 0.5, "frequency_penalty": 0.25, "num_predict": 9});
    let (status, body) = h
        .post(
            "/api/generate",
            json!({"model": "chat", "prompt": "hi", "stream": false, "options": options}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = h.sent("/v1/completions");
    assert_eq!(sent["max_tokens"], 9, "{sent}");
    assert_eq!(sent["presence_penalty"], 0.5, "{sent}");
    assert_eq!(sent["frequency_penalty"], 0.25, "{sent}");
    h.shutdown().await;
}

/// Ollama's runner stops on the prediction limit only when it is positive
/// (`runner/ollamarunner/runner.go`: `if seq.numPredict > 0 && seq.numPredicted >=
/// seq.numPredict`), and `llm/server.go` passes `num_predict: 0` through unchanged: on
/// Ollama, 0 sets no limit, as -1 does (which the gateway already keeps away from OpenAI
/// upstreams, request.rs `decode_options`). Translated as `max_tokens: 0`, the same request
/// asks an OpenAI-compatible upstream for an empty answer, which OpenAI and vLLM refuse
/// ("max_tokens must be at least 1"). The OpenAI upstream must not get `max_tokens: 0`.
#[tokio::test]
async fn num_predict_zero_is_no_limit_not_max_tokens_zero() {
    let h = start(Kind::OpenAi).await;
    let (status, body) = h
        .post(
            "/api/chat",
            json!({"model": "chat", "stream": false, "options": {"num_predict": 0},
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let sent = h.sent("/v1/chat/completions");
    assert!(
        sent.get("max_tokens").is_none() && sent.get("max_completion_tokens").is_none(),
        "Ollama's num_predict 0 (no limit) became an output limit of 0: {sent}"
    );
    h.shutdown().await;
}

/// Ollama's docs/api.md, "Conventions / Model names": "The tag is optional and, if not
/// provided, will default to `latest`": `chat` and `chat:latest` name one model. The
/// gateway's own `/api/show` answers for `chat:latest` (catalog.rs `find`), so a client
/// that checks the model there (capabilities, context length) and then chats with the same
/// name must be served, on `/api/chat` as on `/api/show`.
#[tokio::test]
async fn a_name_with_the_latest_tag_is_served_where_show_finds_it() {
    let h = start(Kind::OpenAi).await;
    let (status, body) = h.post("/api/show", json!({"model": "chat:latest"})).await;
    assert_eq!(status, 200, "show: {body}");
    let (status, body) = h
        .post(
            "/api/chat",
            json!({"model": "chat:latest", "stream": false,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(status, 200, "chat: {body}");
    h.shutdown().await;
}

/// Ollama's `server/routes.go`: `EmbeddingsHandler` (the older `/api/embeddings`) says "an
/// empty request loads the model" and answers `{"prompt": ""}` 200 with `{"embedding": []}`;
/// `EmbedHandler` (`/api/embed`) drops an empty string `input` (`case string: if len(i) > 0`)
/// and answers no input 200 with `{"model", "embeddings": []}`. No text is embedded. Through
/// the gateway to an OpenAI-compatible upstream the empty text is sent as `input: [""]`,
/// which OpenAI refuses (DECISIONS.md: "`/v1/embeddings` refuses an empty string input", as
/// OpenAI does), and a server that accepts it answers a vector for the empty text, which the
/// client then stores as if it were the embedding it asked for.
#[tokio::test]
async fn an_empty_embedding_prompt_or_input_embeds_nothing_as_on_ollama() {
    let h = start(Kind::OpenAi).await;
    let (status, body) = h
        .post("/api/embeddings", json!({"model": "chat", "prompt": ""}))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["embedding"], json!([]), "/api/embeddings: {body}");
    let (status, body) = h
        .post("/api/embed", json!({"model": "chat", "input": ""}))
        .await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(answer["embeddings"], json!([]), "/api/embed: {body}");
    let empty_sent = h
        .upstream
        .requests()
        .iter()
        .filter_map(|r| r.body_json())
        .any(|b| b["input"] == json!([""]));
    assert!(!empty_sent, "an empty string reached the OpenAI upstream");
    h.shutdown().await;
}
