//! What the SDKs in front of the gateway read beside the body: `x-should-retry: false` on
//! failures a retry cannot cure (openai-python/-node, the Anthropic SDKs and Claude Code
//! retry every 429 and 5xx unless the answer says so), the request id under the names the
//! SDKs read (`x-request-id`: openai-python's `_request_id`; `request-id`: the Anthropic
//! SDKs), on the HTTP/1.1 fast path and on hyper's path alike, and the chat and completion
//! fields OpenAI clients index into (`logprobs`, `finish_reason`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use switchyard_core::{
    ChatEvent, ChatRequest, ChatStream, ErrorKind, FinishReason, GenerateRequest, Locality,
    ModelInfo, Provider, ProviderError,
};
use switchyard_router::ProviderSlot;

mod support;

use support::{gateway_config, http, new_gateway, no_listing, router_over, serve_until_stopped};

/// A provider whose chats (and completions) all fail with one error.
#[derive(Debug)]
struct Failing(MakeError);

#[async_trait::async_trait]
impl Provider for Failing {
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        Err((self.0)())
    }

    async fn generate(
        &self,
        _request: &GenerateRequest,
        _model: &str,
    ) -> Result<ChatStream, ProviderError> {
        Err((self.0)())
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Err(no_listing())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// A provider that answers every chat and completion with "ok" and then `finish`.
#[derive(Debug)]
struct Finishing(fn() -> FinishReason);

impl Finishing {
    fn answer(&self) -> ChatStream {
        let events = vec![
            Ok(ChatEvent::TextDelta { text: "ok".into() }),
            Ok(ChatEvent::Done {
                finish_reason: (self.0)(),
            }),
        ];
        Box::pin(futures::stream::iter(events))
    }
}

#[async_trait::async_trait]
impl Provider for Finishing {
    async fn chat(&self, _request: &ChatRequest) -> Result<ChatStream, ProviderError> {
        Ok(self.answer())
    }

    async fn generate(
        &self,
        _request: &GenerateRequest,
        _model: &str,
    ) -> Result<ChatStream, ProviderError> {
        Ok(self.answer())
    }

    async fn models(&self) -> Result<Vec<ModelInfo>, ProviderError> {
        Err(no_listing())
    }

    async fn health(&self) -> Result<(), ProviderError> {
        Ok(())
    }
}

/// The chat paths of the client APIs, each with a body asking `model` for a chat.
fn chat_calls(model: &str) -> [(&'static str, Value); 4] {
    let messages = json!([{"role": "user", "content": "Hi"}]);
    [
        (
            "/v1/chat/completions",
            json!({"model": model, "messages": messages}),
        ),
        (
            "/api/chat",
            json!({"model": model, "stream": false, "messages": messages}),
        ),
        (
            "/v1/messages",
            json!({"model": model, "max_tokens": 16, "messages": messages}),
        ),
        ("/v1/responses", json!({"model": model, "input": "Hi"})),
    ]
}

/// The error a provider fails with.
type MakeError = fn() -> ProviderError;

/// The failures, by the name of their slots.
const FAILURES: [(&str, MakeError); 4] = [
    ("quota", || {
        ProviderError::new(ErrorKind::QuotaExhausted, "insufficient_quota")
    }),
    ("budget", || {
        ProviderError::new(ErrorKind::BudgetExhausted, "a spending cap is reached")
    }),
    ("unsupported", || {
        ProviderError::new(ErrorKind::Unsupported, "not offered here")
    }),
    ("limited", || {
        ProviderError::new(ErrorKind::RateLimited, "slow down")
            .with_retry_after(Duration::from_secs(7))
    }),
];

#[tokio::test]
async fn permanent_failures_tell_every_sdk_not_to_retry_and_rate_limits_say_when() {
    // One slot per failure and path, so no answer depends on an earlier one (health,
    // cool-downs).
    let mut slots = Vec::new();
    for (name, error) in FAILURES {
        for (path, _) in chat_calls("") {
            let slot = format!("{name}{}", path.replace('/', "-"));
            slots.push(ProviderSlot::new(
                slot,
                Arc::new(Failing(error)),
                Locality::Local,
            ));
        }
    }
    let router = router_over(slots, json!({}));
    let running = serve_until_stopped(new_gateway(router, gateway_config())).await;
    let mut wrong = Vec::new();
    for (name, _) in FAILURES {
        for (path, mut body) in chat_calls("") {
            let model = format!("{name}{}/m", path.replace('/', "-"));
            body["model"] = json!(model);
            let r = http()
                .post(format!("http://{}{path}", running.addr))
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let should_retry = r
                .headers()
                .get("x-should-retry")
                .map(|v| v.to_str().unwrap().to_owned());
            let retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_owned());
            let text = r.text().await.unwrap();
            let ok = match name {
                "limited" => {
                    status == 429 && should_retry.is_none() && retry_after.as_deref() == Some("7")
                }
                "unsupported" => status == 501 && should_retry.as_deref() == Some("false"),
                _ => {
                    status == 429
                        && should_retry.as_deref() == Some("false")
                        && retry_after.is_none()
                }
            };
            if !ok {
                wrong.push(format!(
                    "{name} on {path}: {status}, x-should-retry {should_retry:?}, \
                     retry-after {retry_after:?}: {text}"
                ));
            }
        }
    }
    drop(running.stop);
    assert!(wrong.is_empty(), "{wrong:#?}");
}

fn headers_of(r: &reqwest::Response) -> [Option<String>; 3] {
    ["x-switchyard-request-id", "x-request-id", "request-id"].map(|name| {
        r.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    })
}

#[tokio::test]
async fn the_request_id_goes_out_under_the_names_the_sdks_read() {
    let slots = vec![ProviderSlot::new(
        "ok",
        Arc::new(Finishing(|| FinishReason::Stop)),
        Locality::Local,
    )];
    let router = router_over(slots, json!({}));
    let running = serve_until_stopped(new_gateway(router, gateway_config())).await;
    let base = format!("http://{}", running.addr);
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .no_proxy()
        .timeout(support::WAIT)
        .build()
        .unwrap();
    let mut seen = Vec::new();
    for (client, via) in [(http(), "HTTP/1.1"), (h2, "HTTP/2")] {
        for (path, body) in chat_calls("ok/m") {
            // A chat: the fast path's hot route over HTTP/1.1, hyper over HTTP/2.
            let r = client
                .post(format!("{base}{path}"))
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200, "{via} {path}");
            seen.push((format!("{via} {path}"), headers_of(&r)));
            // The client's own id comes back under every name.
            let r = client
                .post(format!("{base}{path}"))
                .header("x-switchyard-request-id", "client-id-7")
                .json(&body)
                .send()
                .await
                .unwrap();
            let given = Some("client-id-7".to_owned());
            assert_eq!(
                headers_of(&r),
                [given.clone(), given.clone(), given],
                "{via} {path}"
            );
        }
        // Not a hot route (the router's path), and an error answer.
        let r = client.get(format!("{base}/healthz")).send().await.unwrap();
        seen.push((format!("{via} /healthz"), headers_of(&r)));
        let r = client
            .post(format!("{base}/v1/chat/completions"))
            .body("{")
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400);
        seen.push((format!("{via} a 400"), headers_of(&r)));
    }
    drop(running.stop);
    for (what, [id, x_request_id, request_id]) in seen {
        let id = id.unwrap_or_else(|| panic!("{what}: no x-switchyard-request-id"));
        assert!(id.starts_with("req_"), "{what}: {id}");
        assert_eq!(x_request_id.as_deref(), Some(id.as_str()), "{what}");
        assert_eq!(request_id.as_deref(), Some(id.as_str()), "{what}");
    }
}

#[tokio::test]
async fn a_chat_asking_for_logprobs_is_refused_naming_the_field() {
    let slots = vec![ProviderSlot::new(
        "ok",
        Arc::new(Finishing(|| FinishReason::Stop)),
        Locality::Local,
    )];
    let router = router_over(slots, json!({}));
    let running = serve_until_stopped(new_gateway(router, gateway_config())).await;
    let url = format!("http://{}/v1/chat/completions", running.addr);
    let chat = |extra: Value| {
        let mut body = json!({"model": "ok/m", "messages": [{"role": "user", "content": "Hi"}]});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        http().post(&url).json(&body).send()
    };
    for (extra, field) in [
        (json!({"logprobs": true}), "logprobs"),
        (json!({"logprobs": true, "top_logprobs": 2}), "logprobs"),
        (json!({"top_logprobs": 2}), "top_logprobs"),
    ] {
        let r = chat(extra.clone()).await.unwrap();
        assert_eq!(r.status(), 400, "{extra}");
        let v: Value = r.json().await.unwrap();
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.contains(field), "{extra}: {v}");
    }
    for extra in [
        json!({"logprobs": false}),
        json!({"logprobs": null, "top_logprobs": null}),
    ] {
        let r = chat(extra.clone()).await.unwrap();
        assert_eq!(r.status(), 200, "{extra}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["choices"][0]["message"]["content"], "ok", "{extra}");
    }
    drop(running.stop);
}

#[tokio::test]
async fn completions_finish_with_reasons_openai_clients_know() {
    let slots = vec![ProviderSlot::new(
        "loader",
        Arc::new(Finishing(|| FinishReason::Other("load".to_owned()))),
        Locality::Local,
    )];
    let router = router_over(slots, json!({}));
    let running = serve_until_stopped(new_gateway(router, gateway_config())).await;
    let url = format!("http://{}/v1/completions", running.addr);
    let r = http()
        .post(&url)
        .json(&json!({"model": "loader/m", "prompt": "Hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["choices"][0]["finish_reason"], "stop", "{v}");
    let r = http()
        .post(&url)
        .json(&json!({"model": "loader/m", "prompt": "Hi", "stream": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = r.text().await.unwrap();
    let reasons: Vec<Value> = body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("data: "))
        .filter_map(|f| serde_json::from_str::<Value>(f).ok())
        .map(|v| v["choices"][0]["finish_reason"].clone())
        .filter(|r| !r.is_null())
        .collect();
    assert_eq!(reasons, [json!("stop")], "{body}");
    drop(running.stop);
}
