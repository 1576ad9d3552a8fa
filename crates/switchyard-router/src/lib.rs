//! The routing policy: routes, fallback, privacy classes, budgets, queues, health and
//! the reason code of every decision. The router implements `Provider` itself.
//!
//! Nothing is public yet; see the workspace README for the plan.
