//! The Anthropic Messages wire format (`/v1/messages`): request codecs, the SSE stream
//! decoder and encoder (typed `message_start` ... `message_stop` events), whole messages
//! both ways, and Anthropic's error body.

mod decode;
mod encode;
pub mod request;
mod request_out;

pub use decode::*;
pub use encode::*;
