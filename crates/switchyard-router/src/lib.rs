//! The routing policy of Switchyard: routes, fallback, privacy classes, budgets, queues,
//! health and the reason code of every decision.
//!
//! A [`Router`] holds providers ([`ProviderSlot`]: any [`switchyard_core::Provider`] with a
//! locality and limits) and a [`RouterConfig`]. For each request it plans an ordered list
//! of targets (route alias, exact `provider/model`, or a bare model name), runs it —
//! admission, the last policy check right before the provider is called, retries and
//! fallback only before the first event — and records one [`DecisionRecord`]. A
//! `local-only` request never reaches a `cloud` target: the planner leaves such targets
//! out and the dispatch step checks again, with the newest locality known after reloads.
//! The router implements [`switchyard_core::Provider`] itself, so an agent framework can
//! embed the whole policy without the HTTP server.
//!
//! How a requested model name resolves:
//! - a route alias: its steps, in order (fallback along them unless `fallback: false`);
//! - an exact `provider/model`: that target only. When the provider has a static model
//!   list ([`ProviderSlot::models`]) the model must be on it (or on what its discovery
//!   lists), else the request fails with `model_not_found` naming what it offers;
//! - a bare model name: the least exposed provider offering it (local, then LAN, then
//!   cloud). Local and LAN catalogs are listed first when they are not known to offer it,
//!   and a bare name is never sent to the cloud while a local or LAN provider has not
//!   answered a model listing yet (`local_catalog_unknown`) or while cloud fallback is off
//!   (`cloud_fallback_disabled`): ask for `provider/model` to choose the cloud explicitly.
//!
//! Tools are first-class: a target whose model lacks what the request needs (tool calling,
//! vision, thinking, a context window for its estimated prompt) is left out before dispatch;
//! `policy.tools.never_to_cloud` keeps requests offering matching tools off cloud targets;
//! a route's task rules send requests to another route; a caller whose tool list shrank
//! is warned about and counted.
//!
//! While a spending cap applies to a request (global or the caller's), a cloud model with
//! no price is left out (`unpriced_under_budget`): its spend could not count against the
//! cap. Every reason code is a [`ReasonCode`] (re-exported from `switchyard-core`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use futures::StreamExt;
//! use switchyard_core::{ChatRequest, Locality, Message, Provider};
//! use switchyard_router::{MemoryLedger, ProviderSlot, Router, RouterConfig};
//!
//! # async fn demo(local: Arc<dyn Provider>, cloud: Arc<dyn Provider>) -> Result<(), Box<dyn std::error::Error>> {
//! let config: RouterConfig = serde_json::from_str(r#"{
//!     "routes": { "chat": { "targets": ["local/qwen2.5:7b", "cloud/gpt-4.1-mini"] } },
//!     "policy": { "budget": { "usd_per_day": 5.0 } }
//! }"#)?;
//! let slots = vec![
//!     ProviderSlot::new("local", local, Locality::Local),
//!     ProviderSlot::new("cloud", cloud, Locality::Cloud),
//! ];
//! let router = Router::new(config, slots, Arc::new(MemoryLedger::new()))?;
//!
//! let mut request = ChatRequest::new("chat", vec![Message::user("Hi")]);
//! request.meta.privacy = Some(switchyard_core::PrivacyClass::LocalOnly);
//! println!("{:?}", router.explain(&request));
//! let mut answer = router.route(&request).await?;
//! println!("served by {} because {}", answer.served_by(), answer.reason());
//! while let Some(event) = answer.next().await {
//!     println!("{:?}", event?);
//! }
//! # Ok(())
//! # }
//! ```

mod budget;
mod call_filter;
mod clock;
mod config;
mod dispatch;
mod error;
mod handles;
mod health;
mod ledger;
pub mod metrics;
mod needs;
mod plan;
mod privacy;
mod queue;
mod record;
mod route;
mod router;
mod rules;
mod shared;
mod slot;
mod stream;
mod tool_policy;
mod tool_report;
mod tool_sets;
mod ttft;
mod unknown_calls;

pub use clock::{Clock, ManualClock, SystemClock, coarse_monotonic_millis, coarse_unix_secs};
pub use config::{
    BudgetConfig, CallerPolicy, HealthConfig, OverflowRule, PolicyConfig, RetryConfig, RouteConfig,
    RouterConfig, TargetStep, TaskRule, ToolPolicy,
};
pub use dispatch::{ChatCall, Dispatch};
pub use error::RouterError;
pub use handles::{LocalTargetError, ProviderHandle};
pub use ledger::{BudgetWindow, LedgerError, MemoryLedger, RedbLedger, SpendLedger};
pub use needs::estimated_prompt_tokens;
pub use record::{
    Attempt, AttemptOutcome, CatalogEntry, CatalogKind, DecisionObserver, DecisionRecord,
    ExplainedTarget, Explanation, Health, ProviderStatus, RequestOutcome, RouteFailure,
    SkippedTarget, TargetRef,
};
pub use router::{NO_CLOUD_ENV, Router, no_cloud_from_env_value};
pub use shared::{
    ChargeJournal, DEFAULT_JOURNAL_CAPACITY, FleetAdmit, FleetState, IN_FLIGHT_TTL, InProcessState,
    MemoryJournal, OnOutage, OutagePolicy, ProbeTurn, RateDecision, RedbJournal, SharedProbe,
    SharedState, SharedStateError, SharedStateHandle, Snapshot, SpendCharge, SpendCounter,
};
pub use slot::{ConcurrencyScope, ProviderSlot};
pub use stream::RoutedStream;
pub use switchyard_core::ReasonCode;
pub use tool_report::{CallerTools, ToolSeen, ToolSetShrink, UnknownToolCall};
