//! HTTP plumbing shared by Switchyard's upstream clients (`switchyard-ollama`,
//! `switchyard-openai`): a rustls `reqwest` client with TCP_NODELAY, pooling, optional bearer
//! token, extra headers and a private CA; phase timeouts (connect, first token, idle gap,
//! total) applied to a streamed body without spawning a task; and the classification of
//! transport failures (refused, DNS, TLS, timeouts) and HTTP error answers into
//! [`switchyard_core::ProviderError`].
//!
//! ```
//! use std::time::Duration;
//! use switchyard_http::{ClientConfig, Timeouts, normalize_base_url};
//!
//! let base = normalize_base_url("http://127.0.0.1:11434/").unwrap();
//! assert_eq!(base.as_str(), "http://127.0.0.1:11434");
//! let config = ClientConfig { timeouts: Timeouts { first_token: Duration::from_secs(600), ..Timeouts::default() }, ..ClientConfig::default() };
//! let client = switchyard_http::build_client(&config).unwrap();
//! # drop(client);
//! ```

mod client;
mod errors;
mod timed;

pub use client::{BaseUrl, BaseUrlError, ClientBuildError, ClientConfig, Timeouts, build_client, normalize_base_url};
pub use errors::{classify_transport_error, error_from_response, read_body_bounded, retry_after_from_headers};
pub use timed::{EventDecoder, TimedEventStream};
