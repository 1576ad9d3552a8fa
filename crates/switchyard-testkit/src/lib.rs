//! Scripted upstream servers on loopback, for Switchyard's tests, benches and demo.
//!
//! [`TestUpstream`] is one HTTP server on `127.0.0.1:0` that speaks both Ollama's native
//! API (`GET /`, `/api/tags`, `/api/show`, `/api/version`, `/api/ps`, `/api/chat` as NDJSON
//! or one object) and OpenAI's (`/v1/models`, `/v1/chat/completions` as SSE or one object).
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
//!
//! The wire bytes are rendered here, independently of `switchyard-stream`, following what
//! Ollama and OpenAI send (see `docs/WIRE.md`): this crate is the oracle the decoders are
//! tested against. Scripts are rendered once and replayed, so a request costs little; in
//! fast mode ([`UpstreamConfig::bench`]) delays are skipped and an unfaulted answer is one
//! precomputed body.
//!
//! ```no_run
//! use std::time::Duration;
//! use switchyard_testkit::{Delays, Fault, Script, TestUpstream, UpstreamConfig};
//!
//! # async fn example() -> std::io::Result<()> {
//! let upstream = TestUpstream::start(
//!     UpstreamConfig::default()
//!         .model_with_script("slow", Script::text(["Hel", "lo"]).with_chunk_delay(Duration::from_millis(50)))
//!         .api_key("sk-test"),
//! )
//! .await?;
//! // Ollama native at `upstream.base_url()`, OpenAI at `upstream.openai_base_url()`.
//! let url = format!("{}/api/chat", upstream.base_url());
//! # let _ = url;
//! upstream.set_fault(Some(Fault::HttpError { status: 503, message: "busy".into() }));
//! upstream.set_fault(None);
//! assert_eq!(upstream.chat_requests().len(), 0);
//! # let _ = Delays::default();
//! upstream.shutdown().await;
//! # Ok(())
//! # }
//! ```

mod blackhole;
mod body;
mod config;
mod handler;
mod record;
mod render;
mod script;
mod server;
mod state;
mod time;

pub use blackhole::{BlackHole, refused_addr};
pub use config::{ModelSpec, UpstreamConfig};
pub use record::RecordedRequest;
pub use script::{Delays, Fault, Reply, Script, ScriptedCall, TextCallFormat};
pub use server::TestUpstream;
