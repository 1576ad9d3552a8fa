//! A bare model name (no `provider/` prefix) offered by several providers: one in cooldown
//! is passed over while a healthy one of the same exposure lists the model, and health
//! never sends a bare name to the cloud instead of a local provider.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_core::{Locality, ProviderError};
use switchyard_router::{Health, Router};
use switchyard_testkit::{Fault, Script, TestUpstream, UpstreamConfig};

const FT: Duration = Duration::from_secs(2);

async fn upstream(model: &str, text: &'static str) -> TestUpstream {
    TestUpstream::start(UpstreamConfig::empty().model_with_script(model, Script::text([text])))
        .await
        .unwrap()
}

/// Sends `shared` to the provider it resolves to, scripted to fail: it goes into cooldown.
async fn cool_down(router: &Router, failing: &TestUpstream) -> ProviderError {
    failing.set_fault(Some(Fault::HttpError {
        status: 500,
        message: "boom".into(),
    }));
    let failure = route(router, &request("shared"))
        .await
        .expect_err("the first provider fails");
    failing.set_fault(None);
    failure.into_provider_error()
}

#[tokio::test]
async fn a_bare_name_skips_a_provider_in_cooldown_for_a_healthy_one() {
    let first = upstream("shared", "from first").await;
    let second = upstream("shared", "from second").await;
    let slots = vec![
        ollama_at("first", &first.base_url(), Locality::Local, FT),
        ollama_at("second", &second.base_url(), Locality::Local, FT),
    ];
    let (router, _records) = build_router(json!({}), slots);
    router.catalog().await;

    let s = route(&router, &request("shared")).await.expect("served");
    assert_eq!(s.served_by().to_string(), "first/shared");
    drain(s).await;

    let error = cool_down(&router, &first).await;
    assert_eq!(error.reason_code(), "upstream_error", "{error}");
    assert!(matches!(
        router.provider_status()[0].health,
        Health::Cooling { .. }
    ));
    let before = first.chat_request_count();
    let s = route(&router, &request("shared")).await.expect("served");
    assert_eq!(s.served_by().to_string(), "second/shared");
    let (text, _, error) = drain(s).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "from second");
    assert_eq!(
        first.chat_request_count(),
        before,
        "the cooling one saw nothing"
    );
    first.shutdown().await;
    second.shutdown().await;
}

#[tokio::test]
async fn cooldown_of_the_local_provider_never_sends_a_bare_name_to_the_cloud() {
    let local = upstream("shared", "from local").await;
    let cloud = upstream("shared", "from cloud").await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        openai_at(
            "cloud",
            &cloud.openai_base_url(),
            Locality::Cloud,
            &[("shared", 0.4, 1.6)],
        ),
    ];
    let (router, _records) = build_router(json!({}), slots);
    router.catalog().await;
    cool_down(&router, &local).await;
    // The local provider is cooling; the bare name still means the local one (tried as
    // the last resort), never the cloud.
    let _ = route(&router, &request("shared")).await;
    assert_eq!(cloud.chat_request_count(), 0);
    local.shutdown().await;
    cloud.shutdown().await;
}
