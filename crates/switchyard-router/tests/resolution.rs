//! What a requested model name resolves to, against real upstreams on loopback: bare names
//! prefer local providers (also before the router has listed their models), exact
//! `provider/model` names are checked against static catalogs, unpriced cloud models are
//! kept out while a budget is configured, and error messages list only what the caller
//! may use.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_core::{ErrorKind, Locality, ModelInfo};
use switchyard_router::{ProviderSlot, ReasonCode};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig, refused_addr};

const FT: Duration = Duration::from_secs(2);

/// An upstream offering `model` that answers `text`.
async fn upstream(model: &str, text: &'static str) -> TestUpstream {
    TestUpstream::start(UpstreamConfig::empty().model_with_script(model, Script::text([text])))
        .await
        .unwrap()
}

fn cloud_offering(up: &TestUpstream, models: &[&str]) -> ProviderSlot {
    let priced: Vec<(&str, f64, f64)> = models.iter().map(|m| (*m, 0.4, 1.6)).collect();
    openai_at("cloud", &up.openai_base_url(), Locality::Cloud, &priced)
}

fn refused_ollama(id: &str, locality: Locality) -> ProviderSlot {
    ollama_at(id, &format!("http://{}", refused_addr()), locality, FT)
}

#[tokio::test]
async fn a_bare_name_goes_local_even_before_the_router_listed_local_models() {
    let local = upstream("shared-model", "from local").await;
    let cloud = upstream("shared-model", "from cloud").await;
    let slots = vec![
        ollama_at("local", &local.base_url(), Locality::Local, FT),
        cloud_offering(&cloud, &["shared-model"]),
    ];
    let (router, _r) = build_router(json!({}), slots);

    // The first request: nothing has asked the local server for its models yet.
    let s = route(&router, &request("shared-model"))
        .await
        .expect("served");
    assert_eq!(s.served_by().to_string(), "local/shared-model");
    let (text, _, error) = drain(s).await;
    assert!(error.is_none(), "{error:?}");
    assert_eq!(text, "from local");
    assert_eq!(cloud.chat_request_count(), 0, "the cloud never saw it");
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_bare_name_never_goes_to_the_cloud_while_a_local_catalog_is_unknown() {
    let cloud = upstream("gpt-test", "from cloud").await;
    for locality in [Locality::Local, Locality::Lan] {
        let slots = vec![
            refused_ollama("home", locality),
            cloud_offering(&cloud, &["gpt-test"]),
        ];
        let (router, records) = build_router(json!({}), slots);
        let failure = route(&router, &request("gpt-test"))
            .await
            .expect_err("the local server may offer it");
        assert_eq!(failure.kind(), ErrorKind::PolicyBlocked, "{failure}");
        assert!(
            failure
                .skipped
                .iter()
                .any(|s| s.target.to_string() == "cloud/gpt-test"
                    && s.reason == ReasonCode::LocalCatalogUnknown),
            "{failure:?}"
        );
        let message = failure.to_string();
        assert!(message.contains("cloud/gpt-test"), "{message}");
        assert_eq!(
            records.last().skipped[0].reason,
            ReasonCode::LocalCatalogUnknown
        );
        // Asking for the cloud by name is an explicit choice.
        let s = route(&router, &request("cloud/gpt-test"))
            .await
            .expect("exact");
        drain(s).await;
    }
    assert_eq!(cloud.chat_request_count(), 2, "only the exact requests");
    cloud.shutdown().await;
}

#[tokio::test]
async fn a_bare_name_only_the_cloud_offers_goes_there_only_while_cloud_fallback_is_on() {
    let local = upstream("other-model", "from local").await;
    let cloud = upstream("gpt-test", "from cloud").await;
    let slots = || {
        vec![
            ollama_at("local", &local.base_url(), Locality::Local, FT),
            cloud_offering(&cloud, &["gpt-test"]),
        ]
    };
    let (router, _r) = build_router(json!({}), slots());
    let s = route(&router, &request("gpt-test"))
        .await
        .expect("cloud offers it, local does not");
    assert_eq!(s.served_by().to_string(), "cloud/gpt-test");
    drain(s).await;
    assert_eq!(cloud.chat_request_count(), 1);

    let (router, _r) = build_router(json!({ "policy": { "cloud_fallback": false } }), slots());
    let failure = route(&router, &request("gpt-test"))
        .await
        .expect_err("not silently to the cloud");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::CloudFallbackDisabled),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("cloud/gpt-test"), "{failure}");
    assert_eq!(cloud.chat_request_count(), 1);
    local.shutdown().await;
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_exact_name_a_static_catalog_does_not_list_is_model_not_found() {
    let cloud = upstream("gpt-test", "from cloud").await;
    let (router, records) = build_router(
        json!({}),
        vec![
            refused_ollama("local", Locality::Local),
            cloud_offering(&cloud, &["gpt-test", "gpt-mini"]),
        ],
    );
    let failure = route(&router, &request("cloud/gpt-free-lunch"))
        .await
        .expect_err("not listed");
    assert_eq!(failure.kind(), ErrorKind::ModelNotFound, "{failure}");
    let message = failure.to_string();
    assert!(
        message.contains("gpt-free-lunch")
            && message.contains("cloud/gpt-test")
            && message.contains("cloud/gpt-mini"),
        "{message}"
    );
    assert_eq!(records.len(), 1);
    assert_eq!(cloud.request_count(), 0, "nothing was sent");

    // A listed one is served.
    let s = route(&router, &request("cloud/gpt-test"))
        .await
        .expect("listed");
    drain(s).await;
    assert_eq!(cloud.chat_request_count(), 1);
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_unpriced_cloud_model_is_kept_out_while_a_budget_is_configured() {
    let cloud = upstream("gpt-unpriced", "from cloud").await;
    let slot = || {
        let mut slot = cloud_offering(&cloud, &[]);
        slot.models = vec![ModelInfo::new("gpt-unpriced", Locality::Cloud)];
        slot
    };
    let budget = json!({ "policy": { "budget": { "usd_per_day": 1.0 } } });
    let (router, _r) = build_router(budget.clone(), vec![slot()]);
    let failure = route(&router, &request("cloud/gpt-unpriced"))
        .await
        .expect_err("no price under a budget");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::UnpricedUnderBudget),
        "{failure:?}"
    );
    assert!(failure.to_string().contains("price"), "{failure}");
    let explained = router.explain(&request("cloud/gpt-unpriced"));
    assert_eq!(explained.targets[0].reason, ReasonCode::UnpricedUnderBudget);
    assert_eq!(cloud.request_count(), 0);

    // A caller's own budget counts too.
    let mut callers = json!({ "callers": { "kid": { "budget": { "usd_per_month": 2.0 } } } });
    let (router, _r) = build_router(callers.take(), vec![slot()]);
    let failure = route(&router, &request_from("cloud/gpt-unpriced", "kid"))
        .await
        .expect_err("the caller's budget");
    assert!(
        failure
            .skipped
            .iter()
            .any(|s| s.reason == ReasonCode::UnpricedUnderBudget)
    );
    // Without a budget, nothing is counted and the model serves.
    let s = route(&router, &request("cloud/gpt-unpriced"))
        .await
        .expect("no budget for this caller");
    drain(s).await;
    assert_eq!(cloud.chat_request_count(), 1);
    cloud.shutdown().await;
}

#[tokio::test]
async fn an_unknown_model_lists_only_what_the_caller_may_use() {
    let cloud = upstream("gpt-test", "from cloud").await;
    let config = json!({
        "routes": {
            "chat": { "targets": ["cloud/gpt-test"] },
            "secret-route": { "targets": ["cloud/gpt-secret"] }
        },
        "callers": { "kid": { "allowed_routes": ["chat"] } }
    });
    let (router, _r) = build_router(
        config,
        vec![cloud_offering(&cloud, &["gpt-test", "gpt-secret"])],
    );
    let failure = route(&router, &request_from("nope", "kid"))
        .await
        .expect_err("unknown");
    assert_eq!(failure.kind(), ErrorKind::ModelNotFound);
    let message = failure.to_string();
    assert!(message.contains("chat"), "{message}");
    assert!(
        !message.contains("secret") && !message.contains("cloud/gpt-test"),
        "{message}"
    );
    // Everyone else sees every name.
    let failure = route(&router, &request("nope")).await.expect_err("unknown");
    let message = failure.to_string();
    assert!(
        message.contains("secret-route") && message.contains("cloud/gpt-secret"),
        "{message}"
    );
    cloud.shutdown().await;
}
