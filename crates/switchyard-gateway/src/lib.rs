//! Switchyard's HTTP server: the OpenAI API (`/v1/chat/completions`, `/v1/models`) and
//! Ollama's native API (`/api/chat`, `/api/tags`, `/api/show`, `/api/version`, `/api/ps`,
//! `/`) in front of a [`switchyard_router::Router`], with bearer-key auth, per-key rate
//! limits, a body limit, `/healthz`, `/readyz`, `/metrics`, graceful shutdown and hot
//! swap of the router.
//!
//! Either API can be served by either kind of upstream: a request is decoded into a
//! [`switchyard_core::ChatRequest`], routed, and the answer's events are encoded back into
//! the client's API, chunk by chunk. The response starts only once the router has the
//! first upstream event in hand, so fallback before the first byte stays possible; a
//! failure after that ends the stream with the API's error event.
//!
//! | endpoint | auth (when keys are configured) |
//! |---|---|
//! | `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}` | bearer key |
//! | `POST /v1/responses`, `POST /v1/responses/compact`, `GET`/`DELETE /v1/responses/{id}`, `GET /v1/responses/{id}/input_items` | bearer key |
//! | `POST /api/chat`, `GET /api/tags`, `POST /api/show`, `GET /api/ps` | bearer key |
//! | `GET /metrics` (Prometheus text; see [`Gateway::with_metrics_handle`]) | bearer key |
//! | `GET /`, `HEAD /` ("Ollama is running"), `GET /api/version`, `GET /healthz`, `GET /readyz` | open |
//!
//! Upstream URLs, provider ids and attempts in error messages, and the providers in
//! `/readyz`, are shown to admin keys ([`ApiKey::admin`]) and loopback callers only
//! ([`GatewayConfig::loopback_is_admin`]); others get the reason code and a generic message.
//!
//! Every connection must deliver its first request head within
//! [`GatewayConfig::header_read_timeout`] (a later HTTP/1 head is cut off between one and
//! two of it after its first byte) and is closed after
//! [`GatewayConfig::idle_timeout`] without a request; at [`GatewayConfig::max_connections`]
//! the connection idle the longest makes room for a new one. Request bodies must keep
//! arriving ([`GatewayConfig::body_read_timeout`], else 408) and share
//! [`GatewayConfig::max_body_memory_bytes`] (else 503). hyper's own 414 and 431 answers are
//! rewritten into the API's error shape.
//!
//! Keys carry a policy ([`ApiKey`]): a privacy class (the `x-switchyard-privacy` header
//! can raise it, never lower it), allowed routes (others are refused with 403), and
//! requests-per-minute and tokens-per-minute limits (429 with `retry-after`).
//!
//! Answers carry `x-switchyard-target`, `x-switchyard-route-reason`,
//! `x-switchyard-request-id`, `x-switchyard-overhead-ms` and `x-switchyard-attempts`.
//! Errors use each API's own shape with the reason code as `code` (OpenAI) or in the
//! message (Ollama), and the status of [`status_for`]; `policy_blocked` is a 403.
//!
//! # Speed
//!
//! Measured with `cargo xtask bench` (`bench/bench.sh`: wrk, 16 connections, the reference
//! mock upstream streaming 20 chunks per answer, on a shared 2-core machine; each ratio is to
//! nginx proxying the same upstream exchange, measured just before; figures and method in
//! `BENCHMARKS.md`): streamed requests 0.83x-1.35x nginx's requests/s on every path,
//! non-streamed requests 0.42x-0.69x through providers with `upstream_streaming: "as_client"`
//! and 0.28x-0.40x by default (the upstream streams and the gateway folds it: 0.87x-1.46x of
//! nginx proxying that streamed exchange), peak RSS 17 MB (several runs; the ratios move with
//! the shared machine's load). Per request the gateway runs about 70k instructions
//! non-streamed (`as_client`) and 4.1 system calls (callgrind, `bench/instructions.sh`;
//! strace), spread over JSON, routing, the front layer, tokio and the sockets. Simple HTTP/1.1
//! requests are parsed and answered by the gateway's own loop (hyper serves the rest and
//! HTTP/2); upstream chats go through switchyard-http's own HTTP/1.1 client. Sockets have
//! TCP_NODELAY; a streamed answer takes every upstream event that is ready into one write;
//! the gateway itself adds well under a millisecond (`x-switchyard-overhead-ms`).
//!
//! ```no_run
//! use std::sync::Arc;
//! use arc_swap::ArcSwap;
//! use switchyard_gateway::{Gateway, GatewayConfig};
//! use switchyard_router::Router;
//!
//! # async fn run(router: Router) -> Result<(), Box<dyn std::error::Error>> {
//! let handle = Arc::new(ArcSwap::from_pointee(router));
//! let gateway = Gateway::new(GatewayConfig::default(), handle.clone());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:4141").await?;
//! let shutdown = async { let _ = tokio::signal::ctrl_c().await; };
//! gateway.serve(listener, shutdown).await?;
//! // Elsewhere, a reload: `handle.store(Arc::new(new_router))`.
//! # Ok(())
//! # }
//! ```

mod answer_head;
mod anthropic;
mod api;
mod auth;
mod body;
mod catalog;
mod chat;
mod config;
mod conn;
mod detail;
mod embed;
mod error;
mod front;
mod gateway;
mod generate;
mod h1_fast;
mod header_names;
mod host;
mod hot;
mod intake;
mod lifecycle;
mod limits;
mod ollama;
mod openai;
mod ops;
mod refusal;
mod responses;
mod server;
mod skipped;
mod telemetry;
mod time;
mod tools;
mod warmup;

pub use anthropic::TOKEN_COUNT_HEADER;
pub use api::status_for;
pub use chat::TASK_HEADER;
pub use chat::{
    ATTEMPTS_HEADER, OVERHEAD_HEADER, PRIVACY_HEADER, ROUTE_REASON_HEADER, TARGET_HEADER,
};
pub use config::{ApiKey, GatewayConfig};
pub use error::GatewayError;
pub use gateway::{Gateway, RouterHandle};
pub use lifecycle::{FALLBACK_OLLAMA_VERSION, VERSION_HEADER};
pub use responses::{
    ResponseBackend, ResponseStore, ResponseStoreConfig, ResponseStoreError, StoredBytes,
};
pub use server::check_listen_policy;
pub use skipped::{MAX_SKIPPED_HEADER_BYTES, SKIPPED_HEADER};
pub use telemetry::{
    GATEWAY_OVERHEAD_SECONDS, HTTP_REQUESTS_TOTAL, REQUEST_ID_HEADER, RESPONSE_STORE_ERRORS_TOTAL,
};
pub use warmup::WarmTarget;
