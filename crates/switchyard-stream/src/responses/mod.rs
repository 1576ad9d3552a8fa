//! The OpenAI Responses wire format (`/v1/responses`): request decoding into a
//! [`switchyard_core::ChatRequest`] ([`request`]), and encoding [`switchyard_core::ChatEvent`]s
//! as Responses stream events and the whole `response` object ([`ResponsesStreamEncoder`]).
//!
//! Switchyard serves this API to clients (Codex, the Agents SDK) and translates to the chat
//! upstreams; to an upstream that serves `/v1/responses` itself it passes the client's
//! request and the upstream's answer through ([`passthrough`]: the body with `model`
//! replaced, and a decoder that keeps the answer's bytes while reading its usage and end).

mod echo;
mod encode;
mod frame;
mod input;
mod output;
pub mod passthrough;
pub mod request;
mod tools;

pub use echo::Echo;
pub use encode::*;
