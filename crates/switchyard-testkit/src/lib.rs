//! Scripted upstream servers speaking Ollama's and OpenAI's protocols on loopback, with
//! fault injection, for tests, benches and the demo.
//!
//! Nothing is public yet; see the workspace README for the plan.
