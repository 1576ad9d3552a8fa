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
/// and durations are written as `/api/chat` writes them (the durations the gateway
/// measured: a client dividing `eval_count` by `eval_duration` gets a rate, not a
/// division by zero).
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
        assert!(last["total_duration"].as_u64() > Some(0), "{last}");
        if last["eval_count"].as_u64() > Some(0) {
            assert!(last["eval_duration"].as_u64() > Some(0), "{last}");
        }
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

/// Ollama's `server/routes.go` (`EmbedHandler`) drops an empty `input` only when `input` is
/// one string (`case string: if len(i) > 0`); a list is embedded item by item as sent
/// (`case []any: ... input = append(input, v.(string))`), so `embeddings[i]` is the vector
/// of `input[i]` — clients (ollama-python's `embed`, LangChain, LlamaIndex) zip the two
/// lists. The gateway's `/api/embed` decoder (`embed/ollama.rs` `decode_request`,
/// `input.retain(|text| !text.is_empty())`) also removes empty strings from a list, so
/// `["alpha", "", "gamma"]` is answered with two vectors: the client stores the vector of
/// "gamma" for the empty chunk and has none for "gamma" (or fails on the length). The
/// answer must have one vector per item, in order (or refuse the request), never fewer.
#[tokio::test]
async fn embed_list_with_an_empty_item_keeps_one_vector_per_input() {
    let h = start(Kind::Ollama).await;
    let (status, body) = h
        .post(
            "/api/embed",
            json!({"model": "chat", "input": ["alpha", "", "gamma"]}),
        )
        .await;
    if status == 200 {
        let answer: Value = serde_json::from_str(&body).unwrap();
        let vectors = answer["embeddings"].as_array().unwrap();
        assert_eq!(
            vectors.len(),
            3,
            "three inputs, {} vectors: embeddings[i] no longer matches input[i]: {body}",
            vectors.len()
        );
        let gamma = switchyard_testkit::vector_for("gamma", switchyard_testkit::DEFAULT_DIMENSIONS);
        let last: Vec<f32> = serde_json::from_value(answer["embeddings"][2].clone()).unwrap();
        assert_eq!(
            last, gamma,
            "the last vector is not the vector of the last input: {body}"
        );
    } else {
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("input"), "the error names the field: {body}");
    }
    h.shutdown().await;
}

/// `/api/generate` fields that change what the model is asked (Ollama's docs/api.md,
/// "Generate a completion": `system` — "system message", `images` — "a list of
/// base64-encoded images (for multimodal models such as llava)", `format` — "the format to
/// return a response in ... JSON or a JSON schema") are silently dropped when the target
/// is an OpenAI-compatible upstream: `generate/openai.rs` `encode_request` writes only the
/// prompt, suffix and sampling options to `/v1/completions`, and the client gets a 200 with
/// an answer to a different question (no instructions, an image the model never saw, free
/// text where a schema was required). The brief for translated requests: carried, or
/// refused with a clear error — never silently wrong. Each field must either reach the
/// upstream (e.g. the system text folded into the prompt, or the request sent as a chat)
/// or the request must be refused with a 4xx naming the field.
#[tokio::test]
async fn generate_to_an_openai_upstream_does_not_silently_drop_system_images_or_format() {
    const PNG: &str = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==";
    let h = start(Kind::OpenAi).await;
    let cases = [
        (
            "system",
            json!({"system": "Answer only in French, marker SYS-7731."}),
            "SYS-7731",
        ),
        ("images", json!({"images": [PNG]}), "iVBORw0KGgo"),
        (
            "format",
            json!({"format": {"type": "object", "properties": {"marker_fmt_4410": {"type": "string"}},
                "required": ["marker_fmt_4410"]}}),
            "marker_fmt_4410",
        ),
    ];
    let mut failures = Vec::new();
    for (field, extra, marker) in cases {
        let before = h.upstream.requests().len();
        let mut body = json!({"model": "chat", "prompt": "describe it", "stream": false});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = h.post("/api/generate", body).await;
        if (400..500).contains(&status) {
            if !answer.contains(field) {
                failures.push(format!("{field}: refused without naming it: {answer}"));
            }
            continue;
        }
        let reached = h.upstream.requests()[before..]
            .iter()
            .any(|r| String::from_utf8_lossy(&r.body).contains(marker));
        if !reached {
            let sent: Vec<String> = h.upstream.requests()[before..]
                .iter()
                .map(|r| format!("{} {}", r.path, String::from_utf8_lossy(&r.body)))
                .collect();
            failures.push(format!(
                "{field}: answered {status} but never reached the upstream: {sent:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
    h.shutdown().await;
}

/// Ollama's docs/api.md ("Generate a completion" / "Load a model"): "If an empty prompt is
/// provided, the model will be loaded into memory", answered with `"response": ""`,
/// `"done": true` (Ollama's server: `done_reason: "load"`). Warm-up scripts and agents send
/// it to preload a model. DECISIONS.md: "`/api/generate` with an empty prompt is routed like
/// any other (Ollama loads the model; the answer is empty)" — but when the target is an
/// OpenAI-compatible upstream, `generate/openai.rs` sends `/v1/completions` with
/// `"prompt": ""`, which such a server answers with a free-running completion (vLLM and
/// llama.cpp generate from the start token, up to their default limit): the client that
/// asked to load a model gets (and pays for) unrelated generated text and `done_reason:
/// "stop"`. The embeddings path already handles the same case (an OpenAI-compatible
/// provider answers an empty input "with no vectors without a request"); an empty prompt
/// (no suffix, no images) must likewise answer an empty `response` with `done_reason:
/// "load"`.
#[tokio::test]
async fn generate_with_an_empty_prompt_on_an_openai_upstream_generates_nothing() {
    let h = start(Kind::OpenAi).await;
    for stream in [true, false] {
        let (status, body) = h
            .post("/api/generate", json!({"model": "chat", "stream": stream}))
            .await;
        assert_eq!(status, 200, "stream={stream}: {body}");
        let text: String = body
            .lines()
            .map(|l| {
                serde_json::from_str::<Value>(l).unwrap()["response"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .collect();
        assert_eq!(
            text, "",
            "stream={stream}: a load request was answered with generated text: {body}"
        );
        let last = last_line(&body);
        assert_eq!(last["done"], true, "{body}");
        assert_eq!(last["done_reason"], "load", "stream={stream}: {body}");
    }
    h.shutdown().await;
}
