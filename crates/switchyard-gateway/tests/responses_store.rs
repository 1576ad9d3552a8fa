//! Review findings on the stored Responses API conversations (the response store behind
//! `store: true`, `previous_response_id`, `GET`/`DELETE /v1/responses/{id}`): each test
//! fails while the gateway does otherwise. Real loopback sockets: a testkit upstream behind
//! a real client, the router and the gateway, with its store in memory or in a redb file.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use redb::ReadableTable as _;
use serde_json::{Value, json};
use switchyard_core::Locality;
use switchyard_gateway::{ApiKey, GatewayConfig, ResponseStore, ResponseStoreConfig};
use switchyard_openai::{OpenAiClient, OpenAiConfig};
use switchyard_router::ProviderSlot;
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};

mod support;

use support::{
    Kind, gateway_config, http, new_gateway, provider, router_over, serve_until_runtime_ends,
    short_timeouts,
};

const MODEL: &str = "test-model";

/// A testkit upstream (Ollama native) answering `script`, and the gateway over it with
/// `store` as its response store.
async fn gateway(script: Script, store: Option<ResponseStore>) -> (TestUpstream, String) {
    let up = TestUpstream::start(UpstreamConfig::default().script(MODEL, script))
        .await
        .unwrap();
    let slot = ProviderSlot::new(
        "up",
        provider(Kind::OpenAi, &up, Locality::Local),
        Locality::Local,
    );
    let router = router_over(
        vec![slot],
        json!({"routes": {"chat": {"targets": ["up/test-model"]}}}),
    );
    let mut gw = new_gateway(router, gateway_config());
    if let Some(store) = store {
        gw = gw.with_response_store(store);
    }
    (up, serve_until_runtime_ends(gw).await)
}

async fn post(base: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let mut req = http().post(format!("{base}/v1/responses")).json(body);
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

async fn get(base: &str, key: Option<&str>, path: &str) -> reqwest::Response {
    let mut req = http().get(format!("{base}{path}"));
    if let Some(key) = key {
        req = req.bearer_auth(key);
    }
    req.send().await.unwrap()
}

fn redb_file(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("sy-review-store-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{tag}.redb"));
    let _ = std::fs::remove_file(&path);
    path
}

/// Stored pass-through responses are kept under the upstream's response id, and a store
/// write replaces whatever is stored under that id, whoever made it. Upstream ids are not
/// unique: Ollama (a documented `responses: true` server) names a response
/// `resp_<rand.Intn(999999)>` (middleware/openai.go), one of a million, so among the
/// default 10 000 stored responses collisions are certain; the testkit's server reuses an
/// id within one second. Here alice's stored response is silently replaced by bob's
/// (another key) that got the same upstream id: alice's `GET /v1/responses/{id}` (and her
/// `previous_response_id`) is a 404, her conversation is lost. (With one key, the first
/// conversation would silently continue with the second one's history.)
///
/// Right: a stored response is never replaced by another response; the store keys a
/// passed-through response by something unique to it (the target and caller with the
/// upstream id, or a gateway id), or refuses the clash, and alice still gets her response.
/// Cause: `NativeSink::persist` (responses/native.rs) sets `record.id` to the upstream's id
/// and `ResponseStore::put` / the backends' `put` replace an existing id unconditionally.
#[tokio::test]
async fn a_passed_through_response_never_replaces_another_callers_stored_response() {
    let up = TestUpstream::start(UpstreamConfig::default().script(MODEL, Script::text(["Hi."])))
        .await
        .unwrap();
    let mut c = OpenAiConfig::new(up.openai_base_url());
    c.client = short_timeouts();
    c.locality = Locality::Local;
    c.responses = true;
    let slot = ProviderSlot::new(
        "native",
        Arc::new(OpenAiClient::new(c).unwrap()),
        Locality::Local,
    );
    let router = router_over(
        vec![slot],
        json!({"routes": {"chat": {"targets": ["native/test-model"]}}}),
    );
    let config = GatewayConfig {
        keys: vec![
            ApiKey::new("alice", "sk-alice"),
            ApiKey::new("bob", "sk-bob"),
        ],
        ..gateway_config()
    };
    let base = serve_until_runtime_ends(new_gateway(router, config)).await;

    // Two answers within one second get the same upstream id (retry across a second edge).
    let mut pair = None;
    for _ in 0..5 {
        let body =
            |who: &str| json!({"model": "chat", "input": format!("I am {who}"), "store": true});
        let a: Value = post(&base, Some("sk-alice"), &body("alice"))
            .await
            .json()
            .await
            .unwrap();
        let b: Value = post(&base, Some("sk-bob"), &body("bob"))
            .await
            .json()
            .await
            .unwrap();
        if a["id"] == b["id"] {
            pair = Some(a);
            break;
        }
    }
    let alices = pair.expect("the upstream gave two answers the same id");
    let id = alices["id"].as_str().unwrap();

    let r = get(&base, Some("sk-alice"), &format!("/v1/responses/{id}")).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert_eq!(
        status, 200,
        "alice's stored response was replaced by bob's answer with the same upstream id: {text}"
    );
    let items: Value = get(
        &base,
        Some("sk-alice"),
        &format!("/v1/responses/{id}/input_items"),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(
        items["data"][0]["content"][0]["text"], "I am alice",
        "{items}"
    );
}

/// A stored record the redb file cannot decode any more (a damaged value, or one written in
/// a format this build cannot read) is answered as if it had never existed: `GET`, `DELETE`
/// and `previous_response_id` all say 404 "no response found ... (it may have expired or
/// never been stored)", which is false: the response is there, past its owner's reach, and
/// still counted in the store's bytes. The client is told to start over and the operator
/// sees no error status, only a warn line.
///
/// Right: a record that is present but unreadable is an error of the store, answered like
/// any other failing read of it (503 `internal_error`, "the response store (redb) answered
/// with an error", `switchyard_response_store_errors_total{op="get"}`), not a 404.
/// Cause: `RedbStore::get_record` (responses/redb_store.rs) and `ResponseStore::get`
/// (responses/store.rs) turn a decode failure into `Ok(None)`.
#[tokio::test]
async fn an_unreadable_stored_record_is_a_store_error_not_a_404() {
    let path = redb_file("damaged");
    let db = Arc::new(redb::Database::create(&path).unwrap());
    let store = ResponseStore::with_redb(ResponseStoreConfig::default(), Arc::clone(&db)).unwrap();
    let (_up, base) = gateway(Script::text(["ok"]), Some(store)).await;
    let resp: Value = post(&base, None, &json!({"model": "chat", "input": "hello"}))
        .await
        .json()
        .await
        .unwrap();
    let id = resp["id"].as_str().unwrap();
    assert_eq!(
        get(&base, None, &format!("/v1/responses/{id}"))
            .await
            .status(),
        200
    );

    // The value of that response in the file is damaged.
    const RESPONSES: redb::TableDefinition<'static, &'static str, &'static [u8]> =
        redb::TableDefinition::new("responses");
    let txn = db.begin_write().unwrap();
    {
        let mut table = txn.open_table(RESPONSES).unwrap();
        let damaged = table.get(id).unwrap().unwrap().value()[..40].to_vec();
        table.insert(id, damaged.as_slice()).unwrap();
    }
    txn.commit().unwrap();

    let r = get(&base, None, &format!("/v1/responses/{id}")).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(
        status, 503,
        "a damaged stored response is reported as never stored: {body}"
    );
    assert_eq!(body["error"]["type"], "server_error", "{body}");
    let _ = std::fs::remove_file(&path);
}
