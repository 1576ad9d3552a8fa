//! A client for Ollama's native API (`/api/chat`, `/api/tags`, `/api/show`,
//! `/api/version`, `/api/ps`) with phase timeouts, and model discovery.
//!
//! Nothing is public yet; see the workspace README for the plan.
