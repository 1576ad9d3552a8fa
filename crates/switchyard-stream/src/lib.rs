//! Sans-IO codecs for every byte Switchyard reads from an upstream or writes to a client.
//!
//! No tokio, no sockets: decoders are fed byte slices of any size (split anywhere, also inside
//! a UTF-8 sequence or a CRLF pair) and push [`switchyard_core::ChatEvent`]s; encoders turn
//! events back into bytes. Every buffer is bounded (lines and SSE events: 16 MiB by default,
//! configurable, with a clear error past it) and nothing here panics on bad input.
//!
//! - [`ndjson`] and [`sse`]: incremental framers, linear in their input.
//! - [`ollama`]: `/api/chat` NDJSON decoder and encoder, the non-streamed object, the error
//!   line, and [`ollama::request`] (request bodies <-> [`switchyard_core::ChatRequest`]).
//! - [`openai`]: `chat.completion.chunk` SSE decoder and encoder, the `chat.completion`
//!   object, the error object, and [`openai::request`].
//! - [`responses`]: OpenAI Responses (`/v1/responses`) request decoding and the typed
//!   stream events and `response` object ([`responses::ResponsesStreamEncoder`]).
//! - [`recovery`]: [`recovery::TextToolCallRecovery`], tool calls written as text
//!   (`<tool_call>`, `[TOOL_CALLS]`, `<|python_tag|>`, bare or fenced JSON) turned into
//!   structured calls.
//! - [`h1`]: the HTTP/1.1 wire of an upstream client: the request head, answer heads
//!   (`httparse`) and the body's framing (`content-length`, `chunked`, until the close),
//!   decoded in place.
//! - [`grain`]: [`grain::DeltaGrain`], whether a stream decoder emits one text event per
//!   upstream delta or merges the deltas of one read (for a whole answer).
//! - [`decoder`]: the decode pipeline a transport drives, [`decoder::EventDecoder`]
//!   (implemented by both stream decoders), [`decoder::RecoveringDecoder`] (a decoder
//!   followed by text tool-call recovery) and [`decoder::recover_tool_calls`] for whole
//!   answers.
//!
//! Decoding an upstream's stream and re-encoding it for a client of the other API:
//!
//! ```
//! use switchyard_stream::ollama::OllamaStreamDecoder;
//! use switchyard_stream::openai::OpenAiStreamEncoder;
//!
//! let upstream = concat!(
//!     r#"{"message":{"role":"assistant","content":"","tool_calls":[{"function":{"name":"get_weather","arguments":{"city":"Paris"}}}]},"done":false}"#, "\n",
//!     r#"{"message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":7}"#, "\n",
//! );
//! let mut decoder = OllamaStreamDecoder::new();
//! let mut encoder = OpenAiStreamEncoder::new("qwen3:8b", "chatcmpl-1", 1_700_000_000, true);
//! let (mut events, mut body) = (Vec::new(), Vec::new());
//! for piece in upstream.as_bytes().chunks(7) {
//!     decoder.feed(piece, &mut events)?;
//! }
//! decoder.finish(&mut events)?;
//! for event in &events {
//!     encoder.encode(event, &mut body);
//! }
//! let sse = String::from_utf8(body).unwrap();
//! assert!(sse.contains(r#""function":{"name":"get_weather","arguments":""}"#));
//! assert!(sse.contains(r#""finish_reason":"tool_calls""#));
//! assert!(sse.ends_with("data: [DONE]\n\n"));
//! # Ok::<(), switchyard_core::ProviderError>(())
//! ```

pub mod anthropic;
pub mod decoder;
pub mod embed;
pub mod generate;
pub mod grain;
pub mod h1;
pub mod ndjson;
pub mod ollama;
pub mod openai;
pub mod recovery;
pub mod responses;
pub mod sse;

mod fast_json;
mod json_util;
#[cfg(test)]
mod near_miss;
mod open_object;
mod request_error;
mod sticky;
pub use request_error::RequestError;
