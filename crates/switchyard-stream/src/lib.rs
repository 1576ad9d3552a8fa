//! Sans-IO codecs: NDJSON and SSE framing, Ollama and OpenAI chunk decoders into
//! [`switchyard_core::ChatEvent`], recovery of tool calls written as text, encoders back
//! into Ollama NDJSON and OpenAI SSE, and the request codecs of both APIs.
//!
//! (Work in progress: the modules below are being filled in.)

pub mod ndjson;
pub mod ollama;
pub mod openai;
pub mod recovery;
pub mod sse;

mod json_util;
mod request_error;
pub use request_error::RequestError;
