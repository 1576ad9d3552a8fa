//! A client for OpenAI-compatible chat-completions servers (OpenAI, vLLM, llama.cpp's
//! server, Ollama's `/v1`, OpenRouter, LM Studio), usable on its own by any Rust program,
//! and Switchyard's provider for them.
//!
//! - [`OpenAiClient::chat_stream`] / [`Provider::chat`](switchyard_core::Provider::chat):
//!   `POST {base_url}/chat/completions` streamed as SSE, always asking for
//!   `stream_options.include_usage`: messages with tool calls and results, images,
//!   `tools`, `tool_choice`, `parallel_tool_calls`, `response_format`, `seed`, `stop`, the
//!   output limit as `max_tokens` or `max_completion_tokens`
//!   ([`OpenAiConfig::max_tokens_field`]), Ollama's `options.num_ctx` when configured
//!   ([`OpenAiConfig::num_ctx`]), unknown fields from the request's `extra` passed
//!   through. Returns once the server answered with headers; the stream then yields events
//!   (tool-call argument fragments assembled by index, parallel calls kept apart).
//!   [`OpenAiClient::complete`] is the non-streamed variant. `Provider::chat` always
//!   streams from the upstream, whatever `request.stream` says.
//! - [`OpenAiClient::responses`]: native pass-through of OpenAI Responses requests to
//!   `POST {base_url}/responses` when [`OpenAiConfig::responses`] says the upstream serves
//!   them: the client's body as it is but for `model`, the answer's bytes kept for the
//!   caller while its usage and end are read (streamed SSE or the whole object).
//! - [`OpenAiClient::list_models`]: `GET {base_url}/models`.
//! - Bearer auth from [`switchyard_http::ClientConfig::bearer_token`] (the caller passes
//!   the key's value in; this crate reads no environment variables), extra headers,
//!   extra CA file,
//!   and the same phase timeouts and cancellation as the Ollama client
//!   (see `switchyard-http`).
//! - Errors are classified from status and body (`{"error":{"message","type","code"}}`,
//!   the message kept verbatim): 400 `invalid_request` (`context_length_exceeded` →
//!   `context_overflow`), 401/403 `auth_failed`, 404 `model_not_found`, 429
//!   `rate_limited` with `retry-after` (seconds or an HTTP date) and the `x-ratelimit-*`
//!   headers kept in the message (`insufficient_quota` → `quota_exhausted`),
//!   500/502 `upstream_error`, 503/529 `overloaded`; an error event inside the stream is
//!   classified the same way; a stream without a finish reason or `[DONE]` is
//!   `stream_ended_early`.
//! - Text tool-call recovery ([`OpenAiConfig::text_tool_recovery`]): for `/v1` upstreams
//!   whose models write calls as text (`<tool_call>`, bare JSON, ...), so agents get
//!   structured calls either way.
//!
//! The provider's locality is set in [`OpenAiConfig::locality`] by whoever builds the
//! client. Model ids are the upstream's (`gpt-4.1-mini`): `request.model` is sent as is.
//!
//! ```no_run
//! use futures::StreamExt;
//! use switchyard_core::{ChatEvent, ChatRequest, Message, Provider};
//! use switchyard_openai::{OpenAiClient, OpenAiConfig};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = OpenAiConfig::new("https://api.openai.com/v1");
//! config.client.bearer_token = std::env::var("OPENAI_API_KEY").ok();
//! let client = OpenAiClient::new(config)?;
//!
//! let request = ChatRequest::new("gpt-4.1-mini", vec![Message::user("Hello!")]);
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
mod responses;

pub use client::OpenAiClient;
pub use config::{MaxTokensField, OpenAiBuildError, OpenAiConfig, TextRecovery};
