//! The HTTP server: OpenAI- and Ollama-compatible APIs in front of the router, with
//! auth, rate limits, metrics and hot swap of the router.
//!
//! Nothing is public yet; see the workspace README for the plan.
