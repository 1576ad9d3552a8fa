//! Two `switchyard serve` replicas sharing one real `redis-server` (each test starts its
//! own on a free loopback port), clients alternating between them: rate limits (requests
//! and tokens per minute), budgets,
//! spend, cooldowns and a fleet-wide `max_concurrency` hold for the fleet as for one
//! gateway, and one replica's health probe serves both; a Redis outage fails budgets
//! closed and rate limits and the fleet-wide concurrency limit over to local, logged, and
//! its end reconciles the spend once, even the spend of a replica restarted meanwhile
//! (journaled in its `spend_ledger` file). Stored Responses live in Redis: one replica continues,
//! reads and deletes what the other stored, and an outage answers 503 naming the shared state. Skipped when redis-server is missing (failed under `SWITCHYARD_E2E_REQUIRED=1`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, SystemTime};

use common::*;
use serde_json::{Value, json};
use switchyard_router::{BudgetWindow, SpendCounter};
use switchyard_testkit::{
    Fault, RedisServer, RedisServerError, Script, TestUpstream, UpstreamConfig,
};

const WAIT: Duration = Duration::from_secs(20);
/// 31 prompt tokens at $10 000 per million: $0.31 a request.
const COST_MICRO: u64 = 310_000;

fn redis() -> Option<RedisServer> {
    match RedisServer::start() {
        Ok(s) => Some(s),
        Err(RedisServerError::Missing) => prerequisite(
            None,
            "redis-server (Debian package redis-server, installed by .ci/run)",
        ),
        Err(e) => panic!("{e}"),
    }
}

async fn cloud() -> TestUpstream {
    TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-test", Script::text(["paid"]).with_usage(31, 0))
            .model_with_script("free-model", Script::text(["free"]).with_usage(1, 0))
            .model_with_script(
                "broken",
                Script::text(["never"]).with_fault(Fault::HttpError {
                    status: 500,
                    message: "boom".to_owned(),
                }),
            ),
    )
    .await
    .unwrap()
}

/// The replicas' config (identical for both), with `shared_state` pointing at `redis_url`.
fn config(cloud: &TestUpstream, redis_url: &str) -> String {
    format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0", keys: [
      {{ id: "team", token: "sk-team", requests_per_minute: 10 }},
      {{ id: "spender", token: "sk-spender" }},
      {{ id: "bulk", token: "sk-bulk" }},
      {{ id: "tokens", token: "sk-tokens", tokens_per_minute: 40 }} ] }},
  providers: {{
    flaky: {{ api: "openai", base_url: "{cloud}", locality: "lan", models: [ {{ id: "broken" }} ] }},
    cloud: {{ api: "openai", base_url: "{cloud}", locality: "cloud", max_concurrency: 128, max_queue: 256,
              models: [ {{ id: "gpt-test", input_usd_per_mtok: 10000, output_usd_per_mtok: 0 }},
                        {{ id: "free-model", input_usd_per_mtok: 0, output_usd_per_mtok: 0 }} ] }} }},
  routes: {{ paid: {{ targets: ["cloud/gpt-test"] }}, free: {{ targets: ["cloud/free-model"] }},
             fall: {{ targets: ["flaky/broken", "cloud/free-model"] }} }},
  callers: {{ spender: {{ budget: {{ usd_per_day: 1 }} }} }},
  retry: {{ max_retries: 0 }},
  shared_state: {{ url: "{redis_url}", key_prefix: "test" }},
}}"#,
        cloud = cloud.openai_base_url(),
    )
}

struct Fleet {
    replicas: Vec<Served>,
    _dir: TempDir,
}

impl Fleet {
    async fn start(cloud: &TestUpstream, redis_url: &str) -> Fleet {
        Fleet::with_config(&config(cloud, redis_url)).await
    }

    async fn with_config(text: &str) -> Fleet {
        let dir = TempDir::new("replicas");
        let path = dir.write("config.json5", text);
        let a = Served::start(&path, &[]).await;
        let b = Served::start(&path, &[]).await;
        Fleet {
            replicas: vec![a, b],
            _dir: dir,
        }
    }

    fn base(&self, i: usize) -> String {
        self.replicas[i % 2].base_url()
    }
}

/// One chat request: status, the error code (if any), the attempts header.
async fn chat(base: &str, token: &str, model: &str) -> (u16, Option<String>, Option<String>) {
    let response = http()
        .post(format!("{base}/v1/chat/completions"))
        .bearer_auth(token)
        .json(&json!({ "model": model, "messages": [ { "role": "user", "content": "hi" } ] }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let attempts = response
        .headers()
        .get("x-switchyard-attempts")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body: Value = response.json().await.unwrap_or(Value::Null);
    let code = body["error"]["code"].as_str().map(str::to_owned);
    (status, code, attempts)
}

async fn shared_total(redis_url: &str, caller: Option<&str>) -> u64 {
    let counter = SpendCounter::new(caller, BudgetWindow::Day, SystemTime::now());
    let key = format!("{{test}}:spend:{}:{}", counter.scope, counter.period);
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let total: Option<u64> = redis::cmd("GET")
        .arg(key)
        .query_async(&mut conn)
        .await
        .unwrap();
    total.unwrap_or(0)
}

async fn redis_cmd(redis_url: &str, name: &str) {
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: Value = redis::cmd(name)
        .query_async::<redis::Value>(&mut conn)
        .await
        .map(|_| Value::Null)
        .unwrap();
}

#[tokio::test]
async fn a_10_rpm_key_gets_10_of_14_requests_through_two_replicas() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let mut ok = 0;
    let mut limited = 0;
    for i in 0..14 {
        match chat(&fleet.base(i), "sk-team", "free").await {
            (200, _, _) => ok += 1,
            (429, Some(code), _) if code == "rate_limit_exceeded" => limited += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((ok, limited), (10, 4));
    assert_eq!(cloud.chat_request_count(), 10);
}

#[tokio::test]
async fn a_1_usd_daily_cap_lets_through_what_one_gateway_would() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let mut ok = 0;
    for i in 0..8 {
        match chat(&fleet.base(i), "sk-spender", "paid").await {
            (200, _, _) => ok += 1,
            (429, Some(code), _) if code == "budget_exhausted" => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    // $0.31 each: 0.93 < 1 lets a 4th through, then 1.24 >= 1 stops — as on one gateway.
    assert_eq!(ok, 4);
    assert_eq!(cloud.chat_request_count(), 4);
    assert_eq!(
        shared_total(&server.url(), Some("spender")).await,
        4 * COST_MICRO
    );
}

#[tokio::test]
async fn spend_of_100_parallel_requests_totals_exactly_the_sum_of_their_costs() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let tasks: Vec<_> = (0..100)
        .map(|i| {
            let base = fleet.base(i);
            tokio::spawn(async move { chat(&base, "sk-bulk", "paid").await.0 })
        })
        .collect();
    for t in futures::future::join_all(tasks).await {
        assert_eq!(t.unwrap(), 200);
    }
    assert_eq!(shared_total(&server.url(), None).await, 100 * COST_MICRO);
    assert_eq!(
        shared_total(&server.url(), Some("bulk")).await,
        100 * COST_MICRO
    );
}

#[tokio::test]
async fn a_cooldown_set_by_one_replica_is_honoured_by_the_other() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let (status, _, attempts) = chat(&fleet.base(0), "sk-bulk", "fall").await;
    assert_eq!(
        (status, attempts.as_deref()),
        (200, Some("2")),
        "flaky failed, then cloud"
    );
    let (status, _, attempts) = chat(&fleet.base(1), "sk-bulk", "fall").await;
    assert_eq!(
        (status, attempts.as_deref()),
        (200, Some("1")),
        "the other replica skipped the target the first one cooled"
    );
}

#[tokio::test]
async fn a_redis_outage_fails_budgets_closed_and_rate_limits_local_then_reconciles_once() {
    let Some(mut server) = redis() else { return };
    let url = server.url();
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &url).await;
    assert_eq!(chat(&fleet.base(0), "sk-bulk", "paid").await.0, 200);
    assert_eq!(chat(&fleet.base(1), "sk-spender", "paid").await.0, 200);
    // A persistent Redis keeps its data across a restart; this one saves by hand.
    redis_cmd(&url, "SAVE").await;
    let logs_before: Vec<usize> = fleet.replicas.iter().map(Served::log_len).collect();

    server.stop();
    // Budgets fail closed: the capped caller is refused on both replicas, naming the outage.
    for i in 0..2 {
        let (status, code, _) = chat(&fleet.base(i), "sk-spender", "paid").await;
        assert_eq!((status, code.as_deref()), (429, Some("budget_exhausted")));
    }
    // Rate limits fall back to each replica's own buckets: the key is still served.
    assert_eq!(chat(&fleet.base(0), "sk-team", "free").await.0, 200);
    // Uncapped spend goes on, journaled for the shared totals.
    for i in 0..4 {
        assert_eq!(chat(&fleet.base(i), "sk-bulk", "paid").await.0, 200);
    }
    for (served, skip) in fleet.replicas.iter().zip(logs_before) {
        served
            .wait_for_log_after(skip, "shared state unreachable", WAIT)
            .await;
    }
    let ready: Value = http()
        .get(format!("{}/readyz", fleet.base(0)))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["shared_state"]["up"], false, "{ready}");

    server.restart().unwrap();
    // `/readyz` asks the store; once it answers, the journal is applied.
    for i in 0..2 {
        let mut up = false;
        for _ in 0..50 {
            let ready: Value = http()
                .get(format!("{}/readyz", fleet.base(i)))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if ready["shared_state"]["up"] == true && ready["shared_state"]["pending_charges"] == 0
            {
                up = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(up, "replica {i} reconciled");
    }
    // 1 bulk before, 4 during the outage; nothing counted twice.
    assert_eq!(shared_total(&url, Some("bulk")).await, 5 * COST_MICRO);
    assert_eq!(shared_total(&url, None).await, 6 * COST_MICRO);
    assert_eq!(shared_total(&url, Some("spender")).await, COST_MICRO);
}

/// `/readyz`'s `shared_state` section of `base`.
async fn shared_readiness(base: &str) -> Value {
    let ready: Value = http()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["shared_state"].clone()
}

/// Waits (bounded) until the shared total of `caller` is `want`; returns the last total.
async fn wait_shared_total(redis_url: &str, caller: Option<&str>, want: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let total = shared_total(redis_url, caller).await;
        if total == want || tokio::time::Instant::now() > deadline {
            return total;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn charges_journaled_in_the_ledger_file_survive_a_restart_and_reconcile_once() {
    let Some(mut server) = redis() else { return };
    let url = server.url();
    let cloud = cloud().await;
    let dir = TempDir::new("journal");
    let ledger = dir.path().join("spend.redb");
    let text = config(&cloud, &url).replace(
        "  retry:",
        &format!(
            "  spend_ledger: {:?},\n  retry:",
            ledger.display().to_string()
        ),
    );
    let path = dir.write("config.json5", &text);
    let replica = Served::start(&path, &[]).await;
    assert_eq!(chat(&replica.base_url(), "sk-bulk", "paid").await.0, 200);
    redis_cmd(&url, "SAVE").await;

    server.stop();
    // Uncapped spend goes on while Redis is down, journaled in the ledger file.
    for _ in 0..3 {
        assert_eq!(chat(&replica.base_url(), "sk-bulk", "paid").await.0, 200);
    }
    let state = shared_readiness(&replica.base_url()).await;
    assert_eq!(
        (state["up"].clone(), state["pending_charges"].clone()),
        (json!(false), json!(3))
    );
    // Killed, not shut down: what was journaled is on disk already.
    let Served { mut child, .. } = replica;
    child.kill().await.unwrap();

    let replica = Served::start(&path, &[]).await;
    replica
        .wait_for_log_after(
            0,
            "charges from a previous run wait for the shared state",
            WAIT,
        )
        .await;
    assert_eq!(
        shared_readiness(&replica.base_url()).await["pending_charges"],
        3
    );
    assert_eq!(chat(&replica.base_url(), "sk-bulk", "paid").await.0, 200);
    assert_eq!(
        shared_readiness(&replica.base_url()).await["pending_charges"],
        4
    );

    server.restart().unwrap();
    // No request and no `/readyz`: the replica's own pings find the store and reconcile.
    let skip = replica.log_len();
    replica
        .wait_for_log_after(skip, "applied to the shared totals", WAIT)
        .await;
    // 1 before, 3 before the restart, 1 after it; nothing lost, nothing counted twice.
    assert_eq!(
        wait_shared_total(&url, Some("bulk"), 5 * COST_MICRO).await,
        5 * COST_MICRO
    );
    assert_eq!(shared_total(&url, None).await, 5 * COST_MICRO);
    let state = shared_readiness(&replica.base_url()).await;
    assert_eq!(
        (state["up"].clone(), state["pending_charges"].clone()),
        (json!(true), json!(0))
    );

    // Restarted once more, the replica finds an empty journal and sends nothing again.
    let Served { mut child, .. } = replica;
    child.kill().await.unwrap();
    let replica = Served::start(&path, &[]).await;
    assert_eq!(
        shared_readiness(&replica.base_url()).await["pending_charges"],
        0
    );
    assert_eq!(chat(&replica.base_url(), "sk-bulk", "paid").await.0, 200);
    assert_eq!(shared_total(&url, Some("bulk")).await, 6 * COST_MICRO);
    assert!(!replica.log_text().contains("from a previous run"));
}

#[tokio::test]
async fn a_40_tpm_key_spent_through_one_replica_is_refused_by_the_other_with_retry_after() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    // 31 tokens an answer at 40 a minute: 46.5 s of the key's minute each. Two answers
    // through A put it 93 s ahead; the third request is refused there.
    for _ in 0..2 {
        assert_eq!(chat(&fleet.base(0), "sk-tokens", "paid").await.0, 200);
    }
    let (status, code, _) = chat(&fleet.base(0), "sk-tokens", "paid").await;
    assert_eq!(
        (status, code.as_deref()),
        (429, Some("rate_limit_exceeded"))
    );
    // B never served the key (its own bucket is full), yet refuses: the limit is the fleet's.
    let response = http()
        .post(format!("{}/v1/chat/completions", fleet.base(1)))
        .bearer_auth("sk-tokens")
        .json(&json!({ "model": "paid", "messages": [ { "role": "user", "content": "hi" } ] }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 429);
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("a retry-after header");
    assert!((30..=35).contains(&retry_after), "{retry_after}");
    assert_eq!(cloud.chat_request_count(), 2);
}

/// One Responses API call: status and body.
async fn respond(
    base: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = http()
        .request(method, format!("{base}/v1/responses{path}"))
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// `POST /v1/responses` on the `free` route: status and body.
async fn create(base: &str, token: &str, input: &str, previous: Option<&str>) -> (u16, Value) {
    let mut body = json!({ "model": "free", "input": input, "store": true });
    if let Some(id) = previous {
        body["previous_response_id"] = json!(id);
    }
    respond(base, token, reqwest::Method::POST, "", Some(body)).await
}

#[tokio::test]
async fn a_response_stored_through_one_replica_is_continued_read_and_deleted_through_the_other() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let (a, b) = (fleet.base(0), fleet.base(1));
    let (status, first) = create(&a, "sk-bulk", "remember the colour blue", None).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();

    let (status, next) = create(&b, "sk-bulk", "which colour?", Some(&id)).await;
    assert_eq!(status, 200, "{next}");
    let sent = cloud.chat_requests().last().unwrap().body.clone();
    let sent = String::from_utf8_lossy(&sent);
    assert!(
        sent.contains("remember the colour blue") && sent.contains("which colour?"),
        "replica B sent the stored history: {sent}"
    );

    let get = |base: String, token: &'static str| {
        let path = format!("/{id}");
        async move { respond(&base, token, reqwest::Method::GET, &path, None).await }
    };
    let (status, got) = get(b.clone(), "sk-bulk").await;
    assert_eq!(
        (status, got["id"].as_str()),
        (200, Some(id.as_str())),
        "{got}"
    );
    let (status, _) = get(b.clone(), "sk-spender").await;
    assert_eq!(status, 404, "another key does not see it");
    let (status, _) = create(&b, "sk-spender", "steal", Some(&id)).await;
    assert_eq!(status, 404, "another key cannot continue it");

    let path = format!("/{id}");
    let (status, deleted) = respond(&b, "sk-bulk", reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        (status, deleted["deleted"].as_bool()),
        (200, Some(true)),
        "{deleted}"
    );
    let (status, _) = get(a.clone(), "sk-bulk").await;
    assert_eq!(status, 404, "deleted through B, gone on A");
    let (status, _) = create(&a, "sk-bulk", "again", Some(&id)).await;
    assert_eq!(status, 404);

    // Streamed: the response is kept before the stream ends, so B continues it at once.
    let text = http()
        .post(format!("{a}/v1/responses"))
        .bearer_auth("sk-bulk")
        .json(&json!({ "model": "free", "input": "streamed", "store": true, "stream": true }))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let completed = text
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| e["type"] == "response.completed")
        .unwrap_or_else(|| panic!("no response.completed in {text}"));
    let streamed_id = completed["response"]["id"].as_str().unwrap();
    let (status, body) = create(&b, "sk-bulk", "next", Some(streamed_id)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn without_redis_a_previous_response_id_answers_503_naming_the_shared_state() {
    let Some(mut server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let (status, first) = create(&fleet.base(0), "sk-bulk", "hello", None).await;
    assert_eq!(status, 200, "{first}");
    let id = first["id"].as_str().unwrap().to_owned();
    let skip = fleet.replicas[1].log_len();

    server.stop();
    let (status, body) = create(&fleet.base(1), "sk-bulk", "more", Some(&id)).await;
    assert_eq!(status, 503, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("shared state (redis)"), "{message}");
    let (status, _) = respond(
        &fleet.base(1),
        "sk-bulk",
        reqwest::Method::GET,
        &format!("/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 503);
    // A new answer is still served; only keeping it fails (logged).
    let (status, body) = create(&fleet.base(1), "sk-bulk", "new", None).await;
    assert_eq!(status, 200, "{body}");
    fleet.replicas[1]
        .wait_for_log_after(skip, "response not kept in the response store", WAIT)
        .await;
}

/// An upstream whose answers take about 3 s (five chunks, 600 ms apart).
async fn slow_upstream() -> TestUpstream {
    TestUpstream::start(UpstreamConfig::empty().model_with_script(
        "slow-model",
        Script::slow_stream(5, Duration::from_millis(600)),
    ))
    .await
    .unwrap()
}

/// Two replicas whose provider `slow` has a fleet-wide `max_concurrency` of 2, no queue.
async fn fleet_limited(slow: &TestUpstream, redis_url: &str) -> Fleet {
    let text = format!(
        r#"{{
  server: {{ listen: "127.0.0.1:0" }},
  providers: {{
    slow: {{ api: "openai", base_url: "{slow}", locality: "lan", models: [ {{ id: "slow-model" }} ],
             max_concurrency: 2, max_queue: 0, concurrency_scope: "fleet" }} }},
  routes: {{ slow: {{ targets: ["slow/slow-model"] }} }},
  retry: {{ max_retries: 0 }},
  shared_state: {{ url: "{redis_url}", key_prefix: "fleet" }},
}}"#,
        slow = slow.openai_base_url(),
    );
    Fleet::with_config(&text).await
}

/// `n` slow chat requests at once, alternating replicas: (served, refused with
/// `queue_full`).
async fn at_once(fleet: &Fleet, n: usize) -> (usize, usize) {
    let tasks: Vec<_> = (0..n)
        .map(|i| {
            let base = fleet.base(i);
            tokio::spawn(async move { chat(&base, "-", "slow").await })
        })
        .collect();
    let (mut served, mut refused) = (0, 0);
    for answer in futures::future::join_all(tasks).await {
        match answer.unwrap() {
            (200, _, _) => served += 1,
            (429, Some(code), _) if code == "queue_full" => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    (served, refused)
}

#[tokio::test]
async fn a_fleet_wide_max_concurrency_of_2_admits_2_streams_across_two_replicas() {
    let Some(server) = redis() else { return };
    let slow = slow_upstream().await;
    let fleet = fleet_limited(&slow, &server.url()).await;
    // Six at once, three on each replica: the fleet serves two and refuses four, as one
    // gateway with max_concurrency 2 and max_queue 0 would.
    assert_eq!(at_once(&fleet, 6).await, (2, 4));
    assert_eq!(slow.chat_request_count(), 2, "the upstream saw two streams");
    // The slots were given back: the next request is served (each replica publishes its
    // count when a stream ends; the bounded loop waits for that write).
    let mut status = 0;
    for _ in 0..50 {
        status = chat(&fleet.base(1), "-", "slow").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn without_redis_a_fleet_wide_max_concurrency_falls_back_to_each_replica_logged() {
    let Some(mut server) = redis() else { return };
    let slow = slow_upstream().await;
    let fleet = fleet_limited(&slow, &server.url()).await;
    server.stop();
    // Each replica applies the limit alone: two of three on each are served.
    assert_eq!(at_once(&fleet, 6).await, (4, 2));
    for served in &fleet.replicas {
        served
            .wait_for_log_after(0, "fleet-wide max_concurrency falls back", WAIT)
            .await;
    }
}

/// The state `/readyz` shows for `provider` (`up`, `down`, `cooling`).
async fn provider_state(base: &str, provider: &str) -> String {
    let ready: Value = http()
        .get(format!("{base}/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ready["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == provider))
        .and_then(|p| p["health"]["state"].as_str())
        .unwrap_or("unknown")
        .to_owned()
}

async fn wait_down(base: &str, provider: &str) {
    for _ in 0..100 {
        if provider_state(base, provider).await == "down" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{provider} never shown down by {base}");
}

#[tokio::test]
async fn a_dead_upstream_probed_by_one_replica_is_down_on_the_other_without_its_probe() {
    let Some(server) = redis() else { return };
    let dead = TestUpstream::start(
        UpstreamConfig::empty().model_with_script("m", Script::text(["never"])),
    )
    .await
    .unwrap();
    dead.set_fault(Some(Fault::HttpError {
        status: 503,
        message: "down".to_owned(),
    }));
    let dir = TempDir::new("probes");
    let path = dir.write(
        "config.json5",
        &format!(
            r#"{{
  server: {{ listen: "127.0.0.1:0" }},
  providers: {{ dead: {{ api: "openai", base_url: "{dead}", locality: "lan", models: [ {{ id: "m" }} ] }} }},
  routes: {{ r: {{ targets: ["dead/m"] }} }},
  health: {{ probe_interval_ms: 60000 }},
  shared_state: {{ url: "{redis}", key_prefix: "probes" }},
}}"#,
            dead = dead.openai_base_url(),
            redis = server.url(),
        ),
    );
    let first = Served::start(&path, &[]).await;
    wait_down(&first.base_url(), "dead").await;
    let probed = dead.request_count();
    assert!(probed >= 1, "the first replica probed the upstream");
    let second = Served::start(&path, &[]).await;
    wait_down(&second.base_url(), "dead").await;
    assert_eq!(
        dead.request_count(),
        probed,
        "the second replica did not probe: it used the shared result"
    );
    let metrics = http()
        .get(format!("{}/metrics", second.base_url()))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let probes: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("switchyard_health_probes_total"))
        .collect();
    assert!(
        probes.iter().any(|l| l.contains(r#"source="shared""#)),
        "{probes:?}"
    );
    assert!(
        !probes.iter().any(|l| l.contains(r#"source="own""#)),
        "{probes:?}"
    );
}

/// nginx (from the Debian package) on a free loopback port, balancing over `backends`;
/// `None` (skip) when nginx is not installed.
/// A running nginx, stopped with `nginx -s stop` on drop (a SIGKILL to the master would
/// leave its worker behind).
struct Nginx {
    child: std::process::Child,
    prefix: std::path::PathBuf,
    conf: std::path::PathBuf,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = std::process::Command::new("nginx")
            .arg("-p")
            .arg(&self.prefix)
            .arg("-c")
            .arg(&self.conf)
            .args(["-s", "stop"])
            .stderr(std::process::Stdio::null())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn nginx(dir: &TempDir, backends: &[String]) -> Option<(Nginx, String)> {
    let found = std::process::Command::new("nginx")
        .arg("-v")
        .output()
        .ok()
        .filter(|o| o.status.success());
    prerequisite(found, "nginx (Debian package nginx, installed by .ci/run)")?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let servers: String = backends
        .iter()
        .map(|b| format!("        server {};\n", b.trim_start_matches("http://")))
        .collect();
    let root = dir.path().display();
    let conf = format!(
        "worker_processes 1;\npid {root}/nginx.pid;\nerror_log stderr warn;\n\
         events {{ worker_connections 256; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {root}/body;\n\
         proxy_temp_path {root}/proxy;\n    fastcgi_temp_path {root}/fastcgi;\n\
         uwsgi_temp_path {root}/uwsgi;\n    scgi_temp_path {root}/scgi;\n\
         upstream switchyard {{\n{servers}    }}\n\
         server {{\n        listen 127.0.0.1:{port};\n        location / {{\n\
         proxy_pass http://switchyard;\n            proxy_http_version 1.1;\n\
         proxy_buffering off;\n        }}\n    }}\n}}\n"
    );
    let path = dir.write("nginx.conf", &conf);
    let child = std::process::Command::new("nginx")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&path)
        .args(["-g", "daemon off;"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let running = Nginx {
        child,
        prefix: dir.path().to_owned(),
        conf: path,
    };
    let addr = format!("127.0.0.1:{port}");
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return Some((running, format!("http://{addr}")));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nginx did not listen on {addr}");
}

#[tokio::test]
async fn behind_nginx_two_replicas_keep_one_rate_limit_and_one_budget() {
    let Some(server) = redis() else { return };
    let cloud = cloud().await;
    let fleet = Fleet::start(&cloud, &server.url()).await;
    let dir = TempDir::new("nginx");
    let backends = [fleet.base(0), fleet.base(1)];
    let Some((_nginx, front)) = nginx(&dir, &backends).await else {
        return;
    };
    let before: Vec<usize> = fleet.replicas.iter().map(Served::log_len).collect();
    let mut ok = 0;
    for _ in 0..14 {
        match chat(&front, "sk-team", "free").await {
            (200, _, _) => ok += 1,
            (429, Some(code), _) if code == "rate_limit_exceeded" => {}
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(ok, 10, "a 10 rpm key behind the balancer");
    let mut paid = 0;
    for _ in 0..8 {
        if chat(&front, "sk-spender", "paid").await.0 == 200 {
            paid += 1;
        }
    }
    assert_eq!(paid, 4, "a $1/day cap behind the balancer");
    // nginx balanced: both replicas served requests.
    for (served, skip) in fleet.replicas.iter().zip(before) {
        served
            .wait_for_log_after(skip, "request routed", WAIT)
            .await;
    }
}
