//! A client for Ollama's native API, usable on its own by any Rust program (an agent
//! framework can depend on this crate alone), and Switchyard's Ollama provider.
//!
//! - [`OllamaClient::chat_stream`] / [`Provider::chat`](switchyard_core::Provider::chat):
//!   `POST /api/chat` streamed (NDJSON decoded by `switchyard-stream`): messages with images,
//!   tool calls and results, thinking, `tools`, `format`, `options`, `think`, `keep_alive`,
//!   unknown options from the request's `extra` passed through. The call returns once the
//!   server answered with headers, so errors before any output (`model_not_found`, a 400,
//!   a crashed runner) come back there; the stream then yields events.
//!   [`OllamaClient::complete`] is the non-streamed variant (`"stream": false`).
//!   `Provider::chat` always streams from the upstream, whatever `request.stream` says, so
//!   the phase timeouts and cancellation work the same for every caller; a caller that
//!   wants one object folds the stream ([`switchyard_core::collect_response`]).
//! - Phase timeouts ([`switchyard_http::Timeouts`]): connect; first token (generous by
//!   default, a cold model load can take minutes; it covers the wait for headers too);
//!   idle gap between chunks (a slow stream that keeps producing is never cut); optional
//!   total. Dropping the stream (or the `complete` future) closes the upstream request.
//! - Errors are classified [`ProviderError`](switchyard_core::ProviderError)s with the
//!   server's message verbatim: `connect_refused`, `dns_failure`, `tls_failure`,
//!   `timeout_connect` / `timeout_first_token` / `timeout_idle` / `timeout_total`,
//!   `model_not_found` (404 `model "x" not found`), `invalid_request` (400),
//!   `upstream_error` (500, runner crashes, an `{"error"}` line mid-stream), `overloaded`
//!   (503), `stream_ended_early` (no `done` line). An address where nothing listens gives
//!   `connect_refused`; one that accepts TCP and never answers gives `timeout_first_token`
//!   (the connection was made; only an address that drops the SYN gives `timeout_connect`).
//! - Metadata: [`OllamaClient::version`], [`OllamaClient::ps`] (warm models),
//!   [`OllamaClient::tags`], [`OllamaClient::show`].
//! - Lifecycle: [`OllamaClient::pull_progress`] (`/api/pull`, streamed progress),
//!   [`OllamaClient::load`] (load a model and keep it loaded), [`OllamaClient::loaded`].
//! - Discovery: [`OllamaClient::refresh_catalog`] lists `/api/tags` and enriches each model
//!   with `/api/show` (bounded concurrency and count): capabilities, context window,
//!   family, size, quantization; embedding-only models listed apart; a failed `/api/show`
//!   leaves capabilities unknown; a failed refresh keeps the last good catalog marked stale.
//!
//! Model ids are the server's names (`qwen2.5:7b`): `request.model` is sent as is. The
//! provider's locality is set in [`OllamaConfig::locality`] by whoever builds the client.
//!
//! ```no_run
//! use futures::StreamExt;
//! use switchyard_core::{ChatEvent, ChatRequest, Message, Provider};
//! use switchyard_ollama::{OllamaClient, OllamaConfig};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let client = OllamaClient::new(OllamaConfig::new("http://127.0.0.1:11434"))?;
//! let catalog = client.refresh_catalog().await?;
//! println!("{} chat models", catalog.chat_models.len());
//!
//! let request = ChatRequest::new("qwen2.5:7b", vec![Message::user("Hello!")]);
//! let mut stream = client.chat(&request).await?;
//! while let Some(event) = stream.next().await {
//!     if let ChatEvent::TextDelta { text } = event? {
//!         print!("{text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod catalog;
mod client;
mod config;
mod lifecycle;
mod wire;

pub use catalog::{CatalogSnapshot, ShowFailure};
pub use client::OllamaClient;
pub use config::{DiscoveryConfig, OllamaBuildError, OllamaConfig};
pub use wire::{ModelDetails, RemoteModel, RunningModel, ShowResponse, TagModel};
