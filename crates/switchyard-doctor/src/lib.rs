//! The doctor: a probe ladder (DNS, TCP, TLS, HTTP, catalog, generation, tools) that
//! names the first failing rung and how to fix it.
//!
//! Nothing is public yet; see the workspace README for the plan.
