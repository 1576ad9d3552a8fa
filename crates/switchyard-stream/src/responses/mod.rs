//! The OpenAI Responses wire format (`/v1/responses`): request decoding into a
//! [`switchyard_core::ChatRequest`] ([`request`]), and encoding [`switchyard_core::ChatEvent`]s
//! as Responses stream events and the whole `response` object ([`ResponsesStreamEncoder`]).
//!
//! Switchyard serves this API to clients (Codex, the Agents SDK) and translates to the chat
//! upstreams; it does not speak it upstream, so there is no stream decoder here.

mod encode;
mod input;
pub mod request;
mod tools;

pub use encode::*;
