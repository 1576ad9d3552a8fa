//! Metadata endpoints and model discovery over loopback.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use switchyard_core::{ErrorKind, Locality, Provider};
use switchyard_ollama::{DiscoveryConfig, OllamaClient, OllamaConfig};
use switchyard_testkit::{Fault, ModelSpec, TestUpstream, UpstreamConfig};

fn catalog_config() -> UpstreamConfig {
    UpstreamConfig::empty()
        .model(
            ModelSpec::new("qwen2.5:7b")
                .family("qwen2")
                .context_length(32768)
                .capabilities(["completion", "tools"]),
        )
        .model(
            ModelSpec::new("deepseek-r1:8b")
                .capabilities(["completion", "thinking"])
                .context_length(4096)
                .num_ctx(16384),
        )
        .model(
            ModelSpec::new("llava:7b")
                .capabilities(["completion", "vision"])
                .parameter_size("7B")
                .quantization("Q4_0"),
        )
        .model(ModelSpec::embedding("nomic-embed-text:latest"))
        .loaded("qwen2.5:7b")
        .version("0.12.6")
}

#[tokio::test]
async fn version_ps_tags_and_show() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let client = client(&up.base_url());
    assert_eq!(guarded(client.version()).await.unwrap(), "0.12.6");
    guarded(client.health()).await.unwrap();
    let warm = guarded(client.ps()).await.unwrap();
    assert_eq!(
        warm.iter().map(|m| m.name.as_str()).collect::<Vec<_>>(),
        ["qwen2.5:7b"]
    );
    let tags = guarded(client.tags()).await.unwrap();
    assert_eq!(tags.len(), 4);
    assert_eq!(tags[0].name, "qwen2.5:7b");
    assert_eq!(tags[0].details.family, "qwen2");
    let show = guarded(client.show("qwen2.5:7b")).await.unwrap();
    assert_eq!(show.context_length(), Some(32768));
    assert!(show.capabilities().unwrap().tools);
    let err = guarded(client.show("missing")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ModelNotFound, "{err}");
    assert!(err.message().contains("missing"));
    up.shutdown().await;
}

#[tokio::test]
async fn discovery_enriches_tags_and_lists_embedding_models_apart() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let mut config = OllamaConfig::new(up.base_url());
    config.locality = Locality::Lan;
    let client = OllamaClient::new(config).unwrap();
    let catalog = guarded(client.refresh_catalog()).await.unwrap();
    let ids: Vec<&str> = catalog.chat_models.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["qwen2.5:7b", "deepseek-r1:8b", "llava:7b"]);
    assert_eq!(catalog.embedding_models.len(), 1);
    assert_eq!(catalog.embedding_models[0].id, "nomic-embed-text:latest");
    assert!(catalog.embedding_models[0].capabilities.unwrap().embedding);
    assert!(
        catalog.stale.is_none() && catalog.refreshed.is_some() && catalog.show_failures.is_empty()
    );

    let qwen = &catalog.chat_models[0];
    let caps = qwen.capabilities.unwrap();
    assert!(caps.tools && caps.completion && !caps.thinking && !caps.vision);
    assert_eq!(qwen.context_window, Some(32768));
    assert_eq!(qwen.family.as_deref(), Some("qwen2"));
    assert_eq!(qwen.parameter_size.as_deref(), Some("8.0B"));
    assert_eq!(qwen.quantization.as_deref(), Some("Q4_K_M"));
    assert_eq!(qwen.locality, Locality::Lan);
    assert!(qwen.size_bytes.is_some() && qwen.modified_at.is_some());

    let r1 = &catalog.chat_models[1];
    assert!(r1.capabilities.unwrap().thinking);
    assert_eq!(
        r1.context_window,
        Some(16384),
        "num_ctx larger than the trained length wins"
    );
    let llava = &catalog.chat_models[2];
    assert!(llava.capabilities.unwrap().vision);
    assert_eq!(llava.quantization.as_deref(), Some("Q4_0"));

    // Provider::models is the chat catalog.
    let models = guarded(client.models()).await.unwrap();
    assert_eq!(models, catalog.chat_models);
    assert_eq!(client.catalog(), catalog);
    up.shutdown().await;
}

#[tokio::test]
async fn one_failing_show_leaves_that_model_with_unknown_capabilities() {
    // The testkit answers 413 to a request body over `max_body_bytes`: a model whose name
    // makes the `/api/show` body too large fails there, and only there.
    let long_name = format!("{}:latest", "x".repeat(300));
    let mut config = catalog_config().model(ModelSpec::new(long_name.clone()));
    config.max_body_bytes = 256;
    let up = TestUpstream::start(config).await.unwrap();
    let client = client(&up.base_url());
    let catalog = guarded(client.refresh_catalog()).await.unwrap();
    assert_eq!(
        catalog.chat_models.len(),
        4,
        "the model is kept, not dropped"
    );
    let failed = catalog
        .chat_models
        .iter()
        .find(|m| m.id == long_name)
        .unwrap();
    assert_eq!(failed.capabilities, None);
    assert_eq!(failed.context_window, None);
    assert_eq!(
        failed.family.as_deref(),
        Some("llama"),
        "details from /api/tags are kept"
    );
    assert_eq!(catalog.show_failures.len(), 1);
    assert_eq!(catalog.show_failures[0].model, long_name);
    assert_eq!(catalog.show_failures[0].error.status(), Some(413));
    // The others were enriched.
    assert!(
        catalog
            .chat_models
            .iter()
            .filter(|m| m.id != long_name)
            .all(|m| m.capabilities.is_some())
    );
    assert_eq!(
        up.requests()
            .iter()
            .filter(|r| r.path == "/api/show")
            .count(),
        5
    );
    up.shutdown().await;
}

#[tokio::test]
async fn show_blocked_by_a_proxy_keeps_every_model_with_unknown_capabilities() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    up.set_blocked_paths(vec!["/api/show".into()]);
    let catalog = guarded(client(&up.base_url()).refresh_catalog())
        .await
        .unwrap();
    // Without /api/show nothing is known to be embedding-only: all four stay chat models.
    assert_eq!(catalog.chat_models.len(), 4);
    assert!(catalog.chat_models.iter().all(|m| m.capabilities.is_none()));
    assert_eq!(catalog.show_failures.len(), 4);
    assert_eq!(
        catalog.show_failures[0].error.kind(),
        ErrorKind::EndpointNotFound
    );
    up.shutdown().await;
}

#[tokio::test]
async fn a_failed_refresh_keeps_the_last_good_catalog_marked_stale() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let client = client(&up.base_url());
    let good = guarded(client.refresh_catalog()).await.unwrap();
    up.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "boom".into(),
    }));
    let err = guarded(client.refresh_catalog()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Upstream);
    let stale = client.catalog();
    assert_eq!(stale.chat_models, good.chat_models);
    assert_eq!(stale.refreshed, good.refreshed);
    assert_eq!(
        stale.stale.as_ref().map(|e| e.kind()),
        Some(ErrorKind::Upstream)
    );
    up.set_fault(None);
    let again = guarded(client.refresh_catalog()).await.unwrap();
    assert!(again.stale.is_none());
    assert!(client.catalog().stale.is_none());
    up.shutdown().await;
}

#[tokio::test]
async fn models_serves_the_stale_catalog_when_the_server_goes_away() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let mut config = OllamaConfig::new(up.base_url());
    config.discovery.max_age = std::time::Duration::ZERO; // every call refreshes
    let client = OllamaClient::new(config).unwrap();
    let first = guarded(client.models()).await.unwrap();
    assert_eq!(first.len(), 3);
    up.set_fault(Some(Fault::Refuse));
    let again = guarded(client.models()).await.unwrap();
    assert_eq!(again, first);
    // A pooled connection is closed without an answer, or a new one is refused.
    let stale = client.catalog().stale.expect("marked stale");
    assert!(
        matches!(
            stale.kind(),
            ErrorKind::ConnectRefused | ErrorKind::Upstream
        ),
        "{stale}"
    );
    up.shutdown().await;
}

#[tokio::test]
async fn models_without_any_good_catalog_is_the_error() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    up.set_fault(Some(Fault::Unauthorized));
    let err = guarded(client(&up.base_url()).models()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Auth);
    up.shutdown().await;
}

#[tokio::test]
async fn an_empty_server_is_an_empty_catalog_not_an_error() {
    let up = TestUpstream::start(UpstreamConfig::empty()).await.unwrap();
    let client = client(&up.base_url());
    let catalog = guarded(client.refresh_catalog()).await.unwrap();
    assert!(catalog.is_empty() && catalog.stale.is_none() && catalog.refreshed.is_some());
    assert_eq!(guarded(client.models()).await.unwrap(), vec![]);
    up.shutdown().await;
}

#[tokio::test]
async fn discovery_is_bounded_in_count() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let mut config = OllamaConfig::new(up.base_url());
    config.discovery = DiscoveryConfig {
        max_models: 2,
        concurrency: 1,
        ..DiscoveryConfig::default()
    };
    let client = OllamaClient::new(config).unwrap();
    let catalog = guarded(client.refresh_catalog()).await.unwrap();
    assert_eq!(catalog.chat_models.len(), 2);
    assert_eq!(catalog.omitted, 2);
    let shows: Vec<String> = up
        .requests()
        .iter()
        .filter(|r| r.path == "/api/show")
        .map(|r| r.body_json().unwrap()["model"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(shows, ["qwen2.5:7b", "deepseek-r1:8b"]);
    up.shutdown().await;
}

#[tokio::test]
async fn zero_limits_are_refused() {
    let mut config = OllamaConfig::default();
    config.discovery.concurrency = 0;
    let err = OllamaClient::new(config).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_discovery_limit");
    assert!(err.to_string().contains("concurrency"));
}

#[tokio::test]
async fn a_hanging_metadata_request_is_bounded() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    up.set_fault(Some(Fault::AcceptAndHang));
    let mut config = OllamaConfig::new(up.base_url());
    config.discovery.request_timeout = std::time::Duration::from_millis(200);
    let client = OllamaClient::new(config).unwrap();
    let err = guarded(client.version()).await.unwrap_err();
    assert!(err.is_timeout(), "{err}");
    up.shutdown().await;
}

#[tokio::test]
async fn concurrent_refreshes_share_one_discovery() {
    let up = TestUpstream::start(catalog_config()).await.unwrap();
    let client = client(&up.base_url());
    let (a, b, c) = guarded(async {
        tokio::join!(
            client.refresh_catalog(),
            client.refresh_catalog(),
            client.refresh_catalog()
        )
    })
    .await;
    let (a, b, c) = (a.unwrap(), b.unwrap(), c.unwrap());
    assert_eq!(a, b);
    assert_eq!(b, c);
    let tags = up
        .requests()
        .iter()
        .filter(|r| r.path == "/api/tags")
        .count();
    assert_eq!(tags, 1, "the waiting calls reused the first discovery");
    up.shutdown().await;
}

#[tokio::test]
async fn models_the_daemon_runs_in_the_cloud_are_cloud() {
    let up = TestUpstream::start(
        UpstreamConfig::empty()
            .model(ModelSpec::new("qwen2.5:7b"))
            .model(ModelSpec::new("gpt-oss:120b").remote("https://ollama.com:443"))
            .model(ModelSpec::new("kimi-k2:1t-cloud"))
            .model(ModelSpec::new("glm-4.6:cloud")),
    )
    .await
    .unwrap();
    let client = client(&up.base_url());
    let models = guarded(client.models()).await.unwrap();
    let locality = |id: &str| models.iter().find(|m| m.id == id).unwrap().locality;
    assert_eq!(locality("qwen2.5:7b"), Locality::Local);
    assert_eq!(locality("gpt-oss:120b"), Locality::Cloud);
    assert_eq!(locality("kimi-k2:1t-cloud"), Locality::Cloud);
    assert_eq!(locality("glm-4.6:cloud"), Locality::Cloud);
}
