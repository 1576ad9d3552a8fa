//! Native pass-through: an upstream's own answer bytes, kept for the client as they are.
//!
//! When a client's request reaches an upstream that speaks the client's API (an OpenAI
//! Responses request to a server that serves `/v1/responses`), the upstream's answer goes
//! back unchanged. The provider's stream still yields [`ChatEvent`](crate::ChatEvent)s, so
//! routing (first event, fallback), usage and the decision record work as for translated
//! answers; the bytes themselves travel beside the events in [`RawFrames`]: the provider's
//! decoder appends them, the server takes them after each event it receives.

use std::sync::{Arc, Mutex, PoisonError};

/// Which Responses endpoint a pass-through call goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsesEndpoint {
    /// `POST /responses`: SSE events when `stream`, else the whole response object.
    Create {
        /// Whether the client asked for a stream.
        stream: bool,
    },
    /// `POST /responses/compact`: a whole `response.compaction` object.
    Compact,
}

impl ResponsesEndpoint {
    /// The path under the base URL (`/responses`, `/responses/compact`).
    pub fn path(self) -> &'static str {
        match self {
            ResponsesEndpoint::Create { .. } => "/responses",
            ResponsesEndpoint::Compact => "/responses/compact",
        }
    }

    /// Whether the answer is an SSE stream.
    pub fn streamed(self) -> bool {
        matches!(self, ResponsesEndpoint::Create { stream: true })
    }
}

/// Pending bytes the server has not taken yet, at most (a bound against an upstream that
/// sends frames without any event the router would see).
pub const MAX_PENDING_FRAME_BYTES: usize = 32 * 1024 * 1024;

/// The upstream's answer bytes on their way to the client, shared by the provider's
/// decoder and the server. Cheap to clone (shared inside). Bounded by
/// [`MAX_PENDING_FRAME_BYTES`].
#[derive(Debug, Clone, Default)]
pub struct RawFrames {
    inner: Arc<Mutex<Pending>>,
}

#[derive(Debug, Default)]
struct Pending {
    bytes: Vec<u8>,
    meta: FramesMeta,
}

/// What the decoder learnt about the answer so far, for the server's own closing events
/// when the upstream fails without one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FramesMeta {
    /// The upstream's response id, once seen.
    pub response_id: Option<String>,
    /// The last `sequence_number` the upstream sent.
    pub last_sequence: Option<u64>,
    /// The upstream sent its own final event (`response.completed`, `.incomplete` or
    /// `.failed`). An `error` event alone does not end it: the upstream's `response.failed`
    /// after it is still forwarded.
    pub ended: bool,
    /// The final response object (JSON) of a finished answer.
    pub final_response: Option<String>,
}

impl RawFrames {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends `bytes`; `false` (nothing appended) when the pending bytes would exceed
    /// [`MAX_PENDING_FRAME_BYTES`].
    pub fn push(&self, bytes: &[u8]) -> bool {
        let mut inner = self.lock();
        if inner.bytes.len() + bytes.len() > MAX_PENDING_FRAME_BYTES {
            return false;
        }
        inner.bytes.extend_from_slice(bytes);
        true
    }

    /// Appends the pending bytes to `out` and empties the buffer.
    pub fn take_into(&self, out: &mut Vec<u8>) {
        let mut inner = self.lock();
        out.extend_from_slice(&inner.bytes);
        inner.bytes.clear();
    }

    /// Empties the buffer and forgets what was learnt (a new attempt starts).
    pub fn reset(&self) {
        let mut inner = self.lock();
        inner.bytes = Vec::new();
        inner.meta = FramesMeta::default();
    }

    /// Updates what is known about the answer.
    pub fn update_meta(&self, f: impl FnOnce(&mut FramesMeta)) {
        f(&mut self.lock().meta);
    }

    /// What is known about the answer.
    pub fn meta(&self) -> FramesMeta {
        self.lock().meta.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Pending> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_taken_in_order_and_bounded() {
        let frames = RawFrames::new();
        assert!(frames.push(b"a"));
        assert!(frames.clone().push(b"b"));
        let mut out = Vec::new();
        frames.take_into(&mut out);
        assert_eq!(out, b"ab");
        frames.take_into(&mut out);
        assert_eq!(out, b"ab");
        assert!(!frames.push(&vec![0; MAX_PENDING_FRAME_BYTES + 1]));
        frames.update_meta(|m| m.ended = true);
        assert!(frames.meta().ended);
        frames.reset();
        assert_eq!(frames.meta(), FramesMeta::default());
    }
}
