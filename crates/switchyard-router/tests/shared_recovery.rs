//! A router whose shared store comes back after an outage: what the outage journaled
//! counts in the first budget check after the store answers again (exactly once).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, SystemTime};

use common::*;
use serde_json::json;
use switchyard_router::{
    BudgetWindow, FleetAdmit, FleetState, InProcessState, OnOutage, OutagePolicy, ProbeTurn,
    RateDecision, SharedProbe, SharedState, SharedStateError, SharedStateHandle, Snapshot,
    SpendCharge, SpendCounter,
};
use switchyard_testkit::{Script, TestUpstream, UpstreamConfig};

/// The reference store behind a switch: while `down`, every operation fails as an
/// unreachable Redis does (connection refused).
#[derive(Debug, Default)]
struct Switched {
    inner: InProcessState,
    down: AtomicBool,
}

impl Switched {
    fn gate(&self) -> Result<(), SharedStateError> {
        if self.down.load(Ordering::SeqCst) {
            Err(SharedStateError::Unreachable(
                "connection refused".to_owned(),
            ))
        } else {
            Ok(())
        }
    }
}

#[async_trait::async_trait]
impl FleetState for Switched {
    async fn admit(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        limit: u64,
        ttl: Duration,
    ) -> Result<FleetAdmit, SharedStateError> {
        self.gate()?;
        self.inner.admit(provider, replica, count, limit, ttl).await
    }
    async fn publish_in_flight(
        &self,
        provider: &str,
        replica: &str,
        count: u64,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        self.gate()?;
        self.inner
            .publish_in_flight(provider, replica, count, ttl)
            .await
    }
    async fn probe_turn(
        &self,
        provider: &str,
        claim: Duration,
    ) -> Result<ProbeTurn, SharedStateError> {
        self.gate()?;
        self.inner.probe_turn(provider, claim).await
    }
    async fn publish_probe(
        &self,
        provider: &str,
        result: SharedProbe,
        ttl: Duration,
    ) -> Result<(), SharedStateError> {
        self.gate()?;
        self.inner.publish_probe(provider, result, ttl).await
    }
}

#[async_trait::async_trait]
impl SharedState for Switched {
    fn kind(&self) -> &'static str {
        "switched"
    }
    async fn snapshot(
        &self,
        counters: &[SpendCounter],
        targets: &[String],
    ) -> Result<Snapshot, SharedStateError> {
        self.gate()?;
        self.inner.snapshot(counters, targets).await
    }
    async fn charge(&self, charge: &SpendCharge) -> Result<bool, SharedStateError> {
        self.gate()?;
        self.inner.charge(charge).await
    }
    async fn rate(
        &self,
        key: &str,
        rpm: Option<u32>,
        tpm: Option<u32>,
    ) -> Result<RateDecision, SharedStateError> {
        self.gate()?;
        self.inner.rate(key, rpm, tpm).await
    }
    async fn charge_tokens(
        &self,
        key: &str,
        tokens: u64,
        tpm: u32,
    ) -> Result<(), SharedStateError> {
        self.gate()?;
        self.inner.charge_tokens(key, tokens, tpm).await
    }
    async fn cool(&self, target: &str, duration: Duration) -> Result<(), SharedStateError> {
        self.gate()?;
        self.inner.cool(target, duration).await
    }
    async fn ping(&self) -> Result<(), SharedStateError> {
        self.gate()?;
        self.inner.ping().await
    }
}

/// The first request after the store answers again sees the spend the outage journaled.
///
/// What was wrong: `before_plan` read the snapshot, then reconciled the journal (which
/// added the journaled charges to the view), then wrote the totals of the snapshot read
/// before them into the view, so the first budget check after the outage missed them and
/// one more request passed a hard cap.
#[tokio::test]
async fn the_first_budget_check_after_an_outage_counts_the_journaled_spend_once() {
    // 31 prompt tokens at $20k/Mtok = $0.62 a request under $1 a day.
    let cloud = TestUpstream::start(
        UpstreamConfig::empty()
            .model_with_script("gpt-test", Script::text(["paid"]).with_usage(31, 0)),
    )
    .await
    .unwrap();
    let cfg = json!({ "routes": { "chat": { "targets": ["cloud/gpt-test"] } },
                      "policy": { "budget": { "usd_per_day": 1.0 } },
                      "retry": { "max_retries": 0 } });
    let store = Arc::new(Switched::default());
    let slots =
        refused_local_and_priced_cloud(&cloud.openai_base_url(), 20_000.0, Duration::from_secs(2));
    let (router, _) = build_router(cfg, slots);
    let policy = OutagePolicy {
        budgets: OnOutage::Local,
        ..OutagePolicy::default()
    };
    let handle = Arc::new(SharedStateHandle::new(store.clone(), policy));
    let router = router.with_shared_state(Arc::clone(&handle));

    // Before the outage: one request, charged to the store.
    drain(route(&router, &request("chat")).await.unwrap()).await;
    // During it: one more (budgets follow the local ledger: $0.62 < $1), journaled.
    store.down.store(true, Ordering::SeqCst);
    drain(route(&router, &request("chat")).await.unwrap()).await;
    assert_eq!(
        handle.pending_charges(),
        1,
        "the outage's charge is journaled"
    );
    assert!(!handle.is_up());

    // The store answers again: the next request's budget check sees $1.24.
    store.down.store(false, Ordering::SeqCst);
    let third = route(&router, &request("chat")).await;
    assert_eq!(handle.pending_charges(), 0, "the journal was reconciled");
    match third {
        Err(f) => assert_eq!(f.kind(), switchyard_core::ErrorKind::BudgetExhausted),
        Ok(s) => {
            drain(s).await;
            panic!(
                "a request passed the $1 cap with $1.24 spent (the journaled charge was not counted)"
            );
        }
    }
    assert_eq!(cloud.chat_request_count(), 2);
    let day = SpendCounter::new(None, BudgetWindow::Day, SystemTime::now());
    let spent = store.snapshot(&[day], &[]).await.unwrap().spent;
    assert_eq!(
        spent,
        [2 * 620_000],
        "each charge counted once in the store"
    );
}
