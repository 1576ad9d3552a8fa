//! The ollama wire format: stream decoding, encoding, request codecs.

mod decode;
mod encode;
mod fast_chunk;
pub mod request;

pub use decode::*;
pub use encode::*;
