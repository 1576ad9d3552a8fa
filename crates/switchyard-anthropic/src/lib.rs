//! A client for Anthropic's Messages API (`POST /v1/messages`), usable on its own by any
//! Rust program, and Switchyard's provider for `api: "anthropic"` upstreams.
//!
//! - [`Provider::chat`](switchyard_core::Provider::chat) (and `chat_as`, naming the
//!   upstream model):
//!   `POST {base_url}/v1/messages` streamed as typed SSE events, with `x-api-key`,
//!   `anthropic-version` (default `2023-06-01`) and the configured `anthropic-beta` values.
//!   The body comes from `switchyard_stream::anthropic::request`: translated from any
//!   client API, or, when the client itself spoke Anthropic, its own body with only the
//!   model and `stream` replaced (thinking signatures, `cache_control` marks and block types
//!   Switchyard does not model pass through untouched). `max_tokens` is always sent.
//!   [`AnthropicClient::complete`] is the non-streamed variant.
//! - [`AnthropicClient::list_models`]: `GET {base_url}/v1/models`; a static catalog
//!   ([`AnthropicConfig::models`], with prices including cache read and write prices) is
//!   used instead when configured.
//! - [`AnthropicClient::count_tokens`]: `POST {base_url}/v1/messages/count_tokens`.
//! - Errors are classified from status and Anthropic's body
//!   (`{"type":"error","error":{"type","message"}}`): 400/413 `invalid_request`, 401/403
//!   `auth_failed`, 404 `model_not_found`, 429 `rate_limited` with `retry-after`, 500
//!   `upstream_error`, 529 `overloaded` (fallback-eligible; the router cools the target down).
//!   An `error` event inside the stream is classified the same way.
//!
//! ```no_run
//! use futures::StreamExt;
//! use switchyard_anthropic::{AnthropicClient, AnthropicConfig};
//! use switchyard_core::{ChatEvent, ChatRequest, Message, Provider};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = AnthropicConfig::new("https://api.anthropic.com");
//! config.api_key = std::env::var("ANTHROPIC_API_KEY").ok();
//! let client = AnthropicClient::new(config)?;
//! let request = ChatRequest::new("claude-haiku-4-5", vec![Message::user("Hello!")]);
//! let mut stream = client.chat(&request).await?;
//! while let Some(event) = stream.next().await {
//!     if let ChatEvent::TextDelta { text } = event? {
//!         print!("{text}");
//!     }
//! }
//! # Ok(())
//! # }
//! ```

mod client;
mod config;

pub use client::AnthropicClient;
pub use config::{AnthropicBuildError, AnthropicConfig, DEFAULT_VERSION};
