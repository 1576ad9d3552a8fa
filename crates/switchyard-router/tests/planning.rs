//! Planning without sending anything: explain, strictness, route options, caller policy,
//! config validation and the catalog.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::json;
use switchyard_core::{Locality, PrivacyClass};
use switchyard_router::{
    CatalogKind, MemoryLedger, ProviderSlot, ReasonCode, Router, RouterConfig, RouterError,
};
use switchyard_testkit::refused_addr;

const FT: Duration = Duration::from_secs(1);

fn slots() -> Vec<ProviderSlot> {
    let nowhere = format!("http://{}", refused_addr());
    vec![
        ollama_at("local", &nowhere, Locality::Local, FT),
        ollama_at("lan", &nowhere, Locality::Lan, FT),
        openai_at(
            "cloud",
            &format!("{nowhere}/v1"),
            Locality::Cloud,
            &[("gpt-test", 0.4, 1.6)],
        ),
    ]
}

fn base() -> serde_json::Value {
    json!({
        "routes": {
            "chat": { "targets": ["local/m", "lan/m", "cloud/gpt-test"] },
            "pinned": { "targets": ["local/m", "cloud/gpt-test"], "fallback": false },
            "lenient": { "targets": ["lan/m", "cloud/gpt-test"], "fallback": true },
            "cloudy": { "targets": ["cloud/gpt-test", "local/m"] },
            "pool": { "targets": [ { "group": ["local/m", "lan/m"] }, "cloud/gpt-test" ] }
        },
        "callers": { "kid": { "allowed_routes": ["pinned", "lan/m"] } }
    })
}

fn plan_of(router: &Router, model: &str) -> Vec<(String, bool, ReasonCode)> {
    router
        .explain(&request(model))
        .targets
        .into_iter()
        .map(|t| (t.target.to_string(), t.included, t.reason))
        .collect()
}

fn entry(t: &str, included: bool, reason: ReasonCode) -> (String, bool, ReasonCode) {
    (t.to_owned(), included, reason)
}

#[tokio::test]
async fn explain_gives_every_target_with_its_reason() {
    let (router, records) = build_router(base(), slots());
    assert_eq!(
        plan_of(&router, "chat"),
        vec![
            entry("local/m", true, ReasonCode::Primary),
            entry("lan/m", true, ReasonCode::Fallback),
            entry("cloud/gpt-test", true, ReasonCode::Fallback),
        ]
    );
    assert_eq!(
        plan_of(&router, "pinned"),
        vec![
            entry("local/m", true, ReasonCode::Primary),
            entry("cloud/gpt-test", false, ReasonCode::NoFallback)
        ]
    );
    // Exact targets are strict...
    assert_eq!(
        plan_of(&router, "local/m"),
        vec![entry("local/m", true, ReasonCode::Primary)]
    );
    // ...unless a route with `fallback: true` starts with them.
    assert_eq!(
        plan_of(&router, "lan/m"),
        vec![
            entry("lan/m", true, ReasonCode::Primary),
            entry("cloud/gpt-test", true, ReasonCode::Fallback)
        ]
    );
    assert_eq!(
        router.explain(&request("lan/m")).route.as_deref(),
        Some("lenient")
    );
    // Groups come first as balanced members.
    let pool = plan_of(&router, "pool");
    assert_eq!(pool[0].2, ReasonCode::GroupBalanced);
    assert_eq!(pool[1].2, ReasonCode::GroupBalanced);

    let mut private = request("chat");
    private.meta.privacy = Some(PrivacyClass::LocalOnly);
    let explained = router.explain(&private);
    assert_eq!(explained.privacy, PrivacyClass::LocalOnly);
    assert_eq!(explained.targets[2].reason, ReasonCode::PrivacyLocalOnly);
    assert!(!explained.targets[2].included);
    // Explaining sends nothing and records nothing.
    assert_eq!(records.len(), 0);
    // The explanation serialises for `switchyard route explain`.
    let as_json = serde_json::to_value(&explained).unwrap();
    assert_eq!(as_json["privacy"], "local-only");
    assert_eq!(as_json["targets"][2]["reason"], "privacy_local_only");
}

#[tokio::test]
async fn cloud_fallback_off_keeps_cloud_only_as_a_first_choice() {
    let mut cfg = base();
    cfg["policy"] = json!({ "cloud_fallback": false });
    let (router, _r) = build_router(cfg, slots());
    assert_eq!(
        plan_of(&router, "chat")[2],
        entry("cloud/gpt-test", false, ReasonCode::CloudFallbackDisabled)
    );
    assert_eq!(
        plan_of(&router, "cloudy")[0],
        entry("cloud/gpt-test", true, ReasonCode::Primary)
    );
}

#[tokio::test]
async fn strict_exact_targets_can_be_relaxed() {
    let mut cfg = base();
    cfg["policy"] = json!({ "strict_exact_targets": false });
    let (router, _r) = build_router(cfg, slots());
    // `local/m` starts `chat` (first route in name order holding it first): it falls back.
    let plan = plan_of(&router, "local/m");
    assert_eq!(plan.len(), 3, "{plan:?}");
    // `pinned` says `fallback: false` explicitly, but `chat` lets it.
    assert_eq!(
        router.explain(&request("local/m")).route.as_deref(),
        Some("chat")
    );
}

#[tokio::test]
async fn unknown_models_and_forbidden_routes_are_clear_errors() {
    let (router, _r) = build_router(base(), slots());
    let explained = router.explain(&request("gpt-5"));
    let error = explained.error.unwrap();
    assert!(
        error.starts_with("model_not_found: model `gpt-5` not found"),
        "{error}"
    );
    for name in ["chat", "pinned", "cloud/gpt-test"] {
        assert!(error.contains(name), "{error} lacks {name}");
    }

    let failure = route(&router, &request_from("chat", "kid"))
        .await
        .expect_err("not allowed");
    assert_eq!(failure.kind(), switchyard_core::ErrorKind::PolicyBlocked);
    assert!(
        failure.to_string().contains(
            "caller_not_allowed: caller `kid` may not use `chat` (allowed: pinned, lan/m)"
        ),
        "{failure}"
    );
    assert!(
        router
            .explain(&request_from("pinned", "kid"))
            .error
            .is_none()
    );
    assert!(
        router
            .explain(&request_from("lan/m", "kid"))
            .error
            .is_none()
    );
}

fn refused(cfg: serde_json::Value, slots: Vec<ProviderSlot>) -> RouterError {
    let config: RouterConfig = serde_json::from_value(cfg).unwrap();
    Router::new(config, slots, Arc::new(MemoryLedger::new())).unwrap_err()
}

#[test]
fn invalid_configs_are_refused_with_the_reason() {
    let routes = |t: serde_json::Value| json!({ "routes": { "r": { "targets": t } } });
    let cases = [
        (routes(json!(["nowhere/m"])), "unknown_provider"),
        (routes(json!(["no-slash"])), "invalid_target"),
        (routes(json!([])), "empty_route"),
        (routes(json!([{ "group": [] }])), "empty_route"),
        (
            json!({ "routes": { "a/b": { "targets": ["local/m"] } } }),
            "invalid_route_name",
        ),
        (
            json!({ "callers": { "c": { "allowed_routes": ["ghost"] } } }),
            "unknown_allowed_route",
        ),
        (
            json!({ "policy": { "budget": { "usd_per_day": -1.0 } } }),
            "invalid_budget",
        ),
        (
            json!({ "policy": { "budget": { "soft_fraction": 1.5 } } }),
            "invalid_budget",
        ),
        (
            json!({ "health": { "cooldowns_ms": [] } }),
            "invalid_health",
        ),
    ];
    for (cfg, code) in cases {
        let err = refused(cfg.clone(), slots());
        assert_eq!(err.reason_code(), code, "{cfg} -> {err}");
        assert!(err.to_string().starts_with(code), "{err}");
    }
    let mut dup = slots();
    dup.push(dup[0].clone());
    assert_eq!(refused(json!({}), dup).reason_code(), "duplicate_provider");
    let mut zero = slots();
    zero[0].max_concurrency = 0;
    assert_eq!(
        refused(json!({}), zero).reason_code(),
        "invalid_concurrency"
    );
    let mut bad_id = slots();
    bad_id[0].id = "a/b".into();
    assert_eq!(
        refused(json!({}), bad_id).reason_code(),
        "invalid_provider_id"
    );
    let unknown_key =
        serde_json::from_value::<RouterConfig>(json!({ "policy": { "cloud_falback": false } }));
    assert!(
        unknown_key
            .unwrap_err()
            .to_string()
            .contains("cloud_falback")
    );
    let unknown_provider = refused(routes(json!(["nowhere/m"])), slots()).to_string();
    assert!(
        unknown_provider.contains("known: cloud, lan, local"),
        "{unknown_provider}"
    );
}

#[tokio::test]
async fn the_catalog_lists_routes_and_provider_models() {
    let (router, _r) = build_router(base(), slots());
    let catalog = tokio::time::timeout(LIMIT, router.catalog()).await.unwrap();
    let cloudy = catalog.iter().find(|e| e.id == "cloudy").unwrap();
    assert_eq!(cloudy.kind, CatalogKind::Route);
    assert_eq!(cloudy.provider, "cloud");
    assert_eq!(cloudy.info.id, "gpt-test");
    assert!(
        cloudy.info.price.is_some(),
        "a route is described by its primary target's model"
    );
    let target = catalog.iter().find(|e| e.id == "cloud/gpt-test").unwrap();
    assert_eq!(target.kind, CatalogKind::Target);
    // Routes whose primary model is unknown (Ollama down) are still listed.
    assert!(catalog.iter().any(|e| e.id == "chat" && e.info.id == "m"));

    let status = router.provider_status();
    assert_eq!(
        status.iter().map(|s| s.id.as_str()).collect::<Vec<_>>(),
        ["local", "lan", "cloud"]
    );
    assert!(
        status
            .iter()
            .all(|s| s.in_flight == 0 && s.queued == 0 && s.ttft_p50_ms.is_none())
    );
}

#[test]
fn the_no_cloud_variable_values() {
    use switchyard_router::no_cloud_from_env_value as parse;
    assert!(parse(Some("1")) && parse(Some("true")) && parse(Some(" YES ")));
    assert!(!parse(None) && !parse(Some("0")) && !parse(Some("")) && !parse(Some("no")));
}

#[test]
fn the_public_types_can_cross_threads() {
    fn send_unpin<T: Send + Unpin + 'static>() {}
    fn send_sync<T: Send + Sync + 'static>() {}
    send_unpin::<switchyard_router::RoutedStream>();
    send_sync::<Router>();
    send_sync::<switchyard_router::RouteFailure>();
    send_sync::<switchyard_router::RedbLedger>();
}
