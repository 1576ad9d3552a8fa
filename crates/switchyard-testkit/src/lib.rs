//! Scripted upstream servers on loopback, for Switchyard's tests, benches and demo.
//!
//! [`TestUpstream`] is one HTTP server on `127.0.0.1:0` that speaks both Ollama's native
//! API (`GET /`, `/api/tags`, `/api/show`, `/api/version`, `/api/ps`, `/api/chat` as NDJSON
//! or one object, `/api/pull` with progress, `/api/generate` without a prompt to load a
//! model, `/api/embed`, `/api/embeddings`, `/api/generate` with a prompt), OpenAI's
//! (`/v1/models`, `/v1/chat/completions` as SSE or one object, `/v1/embeddings`,
//! `/v1/completions`, and `/v1/responses` as a server of the Responses API answers: typed
//! SSE events or the whole response object, and `/v1/responses/compact`) and Anthropic's (`/v1/messages` as typed SSE events or one message,
//! `x-api-key` auth, `/v1/messages/count_tokens`; errors in Anthropic's shape).
//! Each model answers from a [`Script`]: text, reasoning, native tool calls (split into
//! argument fragments and interleaved on the OpenAI side) or tool calls written as text in
//! a model family's format ([`TextCallFormat`]), paced by [`Delays`], broken on purpose by a
//! [`Fault`] (per script, or server-wide with [`TestUpstream::set_fault`]).
//!
//! The server records every request ([`TestUpstream::requests`]), counts chat responses
//! being written and those whose client went away ([`TestUpstream::open_streams`],
//! [`TestUpstream::aborted_streams`]), and can pretend to sit behind a reverse proxy that
//! forwards only some paths ([`TestUpstream::set_blocked_paths`]). [`refused_addr`] and
//! [`BlackHole`] give addresses that refuse connections or accept and never answer.
//! [`support`] holds the helpers the upstream clients' integration tests share (a guard
//! against hangs, phase timeouts, taking a chat stream apart).
//!
//! The wire bytes are rendered here, independently of `switchyard-stream`, following what
//! Ollama and OpenAI send (see `docs/WIRE.md`): this crate is the oracle the decoders are
//! tested against. Scripts are rendered once and replayed, so a request costs little; in
//! fast mode ([`UpstreamConfig::bench`]) delays are skipped and an unfaulted answer is one
//! precomputed body.
//!
//! ```no_run
//! use std::time::Duration;
//! use serde_json::json;
//! use switchyard_testkit::{Fault, Script, ScriptedCall, TestUpstream, UpstreamConfig};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let upstream = TestUpstream::start(
//!     UpstreamConfig::default() // serves `test-model` with a short text reply
//!         .model_with_script(
//!             "qwen2.5:7b",
//!             Script::tool_calls(vec![ScriptedCall::new("get_weather", json!({"city": "Tokyo"}))])
//!                 .with_chunk_delay(Duration::from_millis(20)),
//!         ),
//! )
//! .await?;
//!
//! // Ollama native at `base_url()`, OpenAI-compatible at `openai_base_url()`.
//! let answer: serde_json::Value = reqwest::Client::new()
//!     .post(format!("{}/api/chat", upstream.base_url()))
//!     .json(&json!({"model": "test-model", "stream": false, "messages": []}))
//!     .send()
//!     .await?
//!     .json()
//!     .await?;
//! assert_eq!(answer["message"]["content"], "Hello from the test upstream.");
//! assert_eq!(upstream.chat_requests()[0].model().as_deref(), Some("test-model"));
//!
//! // Break it: every request now gets a 503 in the API's own error shape.
//! upstream.set_fault(Some(Fault::HttpError { status: 503, message: "busy".into() }));
//! upstream.set_fault(None);
//! upstream.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod blackhole;
mod body;
mod chat;
mod config;
mod embed;
mod generate;
mod handler;
mod lifecycle;
mod record;
mod redis;
mod render;
mod respond;
mod script;
mod server;
mod state;
pub mod support;
mod time;

pub use blackhole::{BlackHole, refused_addr};
pub use config::{ModelSpec, UpstreamConfig};
pub use embed::{DEFAULT_DIMENSIONS, vector_for};
pub use generate::completion_for;
pub use record::RecordedRequest;
pub use redis::{RedisCluster, RedisServer, RedisServerBuilder, RedisServerError, started_or_skip};
pub use script::{Delays, Fault, Reply, Script, ScriptedCall, TextCallFormat};
pub use server::TestUpstream;
