#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Privacy of `switchyard serve` as configured from a file: `local-only` requests never
//! reach a model that runs in the cloud.

mod common;

use common::{Served, TempDir, http};
use serde_json::{Value, json};
use switchyard_testkit::{ModelSpec, TestUpstream, UpstreamConfig};

/// An Ollama `-cloud` model listed in the provider's own `models` (to give it a context
/// window, a price, ...) on a local Ollama is served to a `local-only` request.
///
/// docs/DECISIONS.md ("A model's own locality overrides its provider's when more exposed"):
/// Ollama runs `-cloud` models on Ollama's servers, so a model with `remote_host` / a
/// `-cloud` tag is `cloud`, and planning and the dispatch check use the stricter of the
/// model's and the provider's locality. Here the daemon even reports `remote_host`, and
/// discovery is on, yet the statically configured `ModelInfo` (built with the provider's
/// locality, `local`) is found first by `Slot::with_model` and shadows the discovered
/// `cloud` entry, so the prompt goes to Ollama's cloud. Right: 403 `policy_blocked`
/// (`privacy_local_only`) and no chat request upstream.
#[tokio::test]
async fn a_statically_listed_ollama_cloud_model_is_refused_to_local_only_requests() {
    let upstream = TestUpstream::start(
        UpstreamConfig::default()
            .model(ModelSpec::new("gpt-oss:120b-cloud").remote("https://ollama.com:443")),
    )
    .await
    .unwrap();
    let dir = TempDir::new("privacy-static-cloud");
    let config = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0" }},
  providers: {{
    up: {{ api: "ollama", base_url: "{}", locality: "local", discover: true,
          timeouts: {{ connect_ms: 500, first_token_ms: 5000 }},
          models: [ {{ id: "test-model" }}, {{ id: "gpt-oss:120b-cloud", context_window: 131072 }} ] }},
  }},
  routes: {{ chat: {{ targets: ["up/test-model"] }} }},
  health: {{ probe_interval_ms: 60000 }},
}}
"#,
        upstream.base_url()
    );
    let path = dir.write("config.json5", &config);
    let served = Served::start(&path, &[]).await;
    let base = served.base_url();

    let r = http()
        .post(format!("{base}/v1/chat/completions"))
        .header("x-switchyard-privacy", "local-only")
        .json(&json!({"model": "up/gpt-oss:120b-cloud", "stream": false,
                      "messages": [{"role": "user", "content": "my secret"}]}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let target = r
        .headers()
        .get("x-switchyard-target")
        .map(|v| v.to_str().unwrap().to_owned());
    let body: Value = r.json().await.unwrap_or(Value::Null);
    assert_eq!(
        upstream.chat_request_count(),
        0,
        "a local-only prompt reached Ollama's cloud model (status {status}, target {target:?}): {body}"
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.to_string().contains("policy_blocked"), "{body}");

    drop(served);
    upstream.shutdown().await;
}
