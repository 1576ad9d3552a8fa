//! The ollama wire format: stream decoding, encoding, request codecs.

mod decode;
mod encode;
pub mod request;

pub use decode::*;
pub use encode::*;
