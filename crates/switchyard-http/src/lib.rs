//! HTTP plumbing shared by Switchyard's upstream clients (`switchyard-ollama`,
//! `switchyard-openai`): a rustls `reqwest` client with TCP_NODELAY, pooling, optional bearer
//! token, extra headers and a private CA; phase timeouts (connect, first token, idle gap,
//! total) applied to a streamed body without spawning a task, driving a sans-IO
//! `switchyard_stream::decoder::EventDecoder`; the shared transport half of a chat call
//! ([`chat_stream`], [`complete`]); reading an upstream body's rest after the final event
//! ([`Drain`], [`DRAIN_GRACE`]); why a client's configuration is refused ([`SetupError`]);
//! and the classification of
//! transport failures (refused, DNS, TLS, timeouts) and HTTP error answers into
//! [`switchyard_core::ProviderError`].
//!
//! The phases, as the clients apply them:
//! - **connect**: TCP (and TLS) establishment, [`Timeouts::connect`] → `timeout_connect`;
//!   nothing listening → `connect_refused`.
//! - **first token**: from sending the request to the first decoded event, including the
//!   wait for the answer's headers ([`send_request`]) → `timeout_first_token`. Output held
//!   back by text tool-call recovery (`switchyard_stream::decoder::RecoveringDecoder`) counts: the phase ends at the
//!   first decoded upstream output. An upstream
//!   that accepts the connection and never answers ends here, not in the connect phase.
//! - **idle**: the longest gap between two chunks once output flows, counted from every chunk
//!   ([`TimedEventStream`]) → `timeout_idle`. A slow stream that keeps producing chunks is
//!   never cut.
//! - **total** (optional): the whole request → `timeout_total`.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_http::{ClientConfig, Timeouts, build_client, normalize_base_url, send_request};
//!
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! let base = normalize_base_url("http://127.0.0.1:11434/")?;
//! assert_eq!(base.as_str(), "http://127.0.0.1:11434");
//! let config = ClientConfig {
//!     timeouts: Timeouts { first_token: Duration::from_secs(600), ..Timeouts::default() },
//!     ..ClientConfig::default()
//! };
//! let client = build_client(&config)?;
//! let url = base.join("/api/version");
//! let answer = send_request(client.get(&url), &config.timeouts, &url).await?;
//! println!("{}", answer.response.status());
//! # Ok(())
//! # }
//! ```

mod chat;
mod client;
mod direct;
mod drain;
mod errors;
mod send;
mod setup;
mod timed;
mod whole;

pub use chat::{answer_stream, chat_stream, chat_stream_direct, complete, complete_direct};
pub use client::{
    BaseUrl, BaseUrlError, ClientBuildError, ClientConfig, Timeouts, UpstreamStreaming,
    build_client, normalize_base_url,
};
pub use direct::DirectClient;
pub use drain::{DRAIN_GRACE, Drain};
pub use errors::{
    ERROR_BODY_TIMEOUT, classify_transport_error, error_from_response, error_from_response_within,
    read_body_bounded, retry_after_from_headers,
};
pub use send::{StartedResponse, read_body_timed, send_request};
pub use setup::{SetupError, check_catalog};
pub use timed::TimedEventStream;
pub use whole::{MAX_WHOLE_ANSWER, embed, post_json_decoded, post_json_whole};
