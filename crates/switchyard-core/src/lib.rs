//! Shared types of Switchyard, the local-first LLM gateway.
//!
//! Everything that crosses a crate boundary lives here: the [`ChatRequest`] decoded from
//! either client API, the [`ChatEvent`]s a streamed answer consists of, [`ModelInfo`] and
//! [`Locality`], the classified [`ProviderError`] with stable reason codes, the [`ReasonCode`]s of routing decisions, [`civil`] dates and RFC 3339 stamps, and the
//! [`Provider`] trait that Ollama, OpenAI-compatible clients and the router implement.
//! There is no I/O here and no async runtime, so the types can be fuzzed and embedded
//! anywhere.
//!
//! ```
//! use switchyard_core::{ChatEvent, ChatRequest, FinishReason, Message, ResponseBuilder};
//!
//! let request = ChatRequest::new("local/qwen2.5:7b", vec![Message::user("Hi")]);
//! assert_eq!(request.messages[0].text_content(), "Hi");
//!
//! let mut answer = ResponseBuilder::default();
//! for event in [ChatEvent::text("Hello"), ChatEvent::done(FinishReason::Stop)] {
//!     answer.push(event)?;
//! }
//! assert_eq!(answer.finish()?.content, "Hello");
//! # Ok::<(), switchyard_core::ProviderError>(())
//! ```

mod accumulate;
pub mod civil;
mod classify;
mod embed;
mod error;
mod event;
mod generate;
mod lifecycle;
mod model;
mod passthrough;
mod provider;
mod reason;
mod request;

pub use accumulate::{
    ChatResponse, MAX_OPAQUE_EVENTS, MAX_TOOL_ARGUMENTS_BYTES, MAX_TOOL_CALLS, ParsedArguments,
    ResponseBuilder, ToolCallAccumulator, parse_arguments, parse_arguments_text,
};
pub use classify::{
    ErrorBody, classify_http_answer, classify_http_error, classify_stream_error, parse_retry_after,
    parse_retry_after_at, parse_retry_after_ms, retry_hint,
};
pub use embed::{EmbedRequest, EmbedResponse};
pub use error::{ErrorKind, ProviderError, TimeoutPhase};
pub use event::{ChatEvent, FinishReason, OpaqueMark, OpaquePart, Timings, Usage};
pub use generate::GenerateRequest;
pub use lifecycle::{LoadedModel, PullProgress, PullStream};
pub use model::{Capabilities, Locality, ModelInfo, Price, PrivacyClass};
pub use passthrough::{FramesMeta, MAX_PENDING_FRAME_BYTES, RawFrames, ResponsesEndpoint};
pub use provider::{ChatStream, Provider, collect_response, unsupported};
pub use reason::ReasonCode;
pub use request::{
    ApiFamily, ArgumentsObject, ChatRequest, ContentPart, Image, KeepAlive, Message, MessageExtras,
    RequestMeta, ResponseFormat, Role, SamplingOptions, Think, ToolCall, ToolChoice, ToolSpec,
};

/// Generates a tool-call id in OpenAI's style (`call_` and 24 alphanumerics) from a seed
/// that callers make unique (a counter mixed with the time, say). Deterministic, so tests
/// can predict it; no randomness source is needed here.
pub fn tool_call_id(seed: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    // SplitMix64: a small, well-mixed generator.
    let mut state = seed;
    let mut out = String::with_capacity(29);
    out.push_str("call_");
    for _ in 0..24 {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        let idx = usize::try_from(z % ALPHABET.len() as u64).unwrap_or(0);
        out.push(char::from(ALPHABET[idx]));
    }
    out
}
