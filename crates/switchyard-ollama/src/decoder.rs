//! The NDJSON decoder of `switchyard-stream`, optionally followed by text tool-call
//! recovery, as the [`EventDecoder`] the timed stream drives.

use switchyard_core::{ChatEvent, ProviderError};
use switchyard_http::EventDecoder;
use switchyard_stream::ollama::OllamaStreamDecoder;
use switchyard_stream::recovery::TextToolCallRecovery;

/// Decodes `/api/chat` NDJSON into events; with recovery, tool calls written as text
/// become structured calls.
#[derive(Debug)]
pub(crate) struct NativeDecoder {
    inner: OllamaStreamDecoder,
    recovery: Option<TextToolCallRecovery>,
    raw: Vec<ChatEvent>,
}

impl NativeDecoder {
    pub(crate) fn new(recovery: Option<TextToolCallRecovery>) -> Self {
        Self {
            inner: OllamaStreamDecoder::new(),
            recovery,
            raw: Vec::new(),
        }
    }
}

impl EventDecoder for NativeDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let Some(recovery) = &mut self.recovery else {
            return self.inner.feed(chunk, out);
        };
        let fed = self.inner.feed(chunk, &mut self.raw);
        for event in self.raw.drain(..) {
            recovery.push(event, out);
        }
        fed
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        let Some(recovery) = &mut self.recovery else {
            return self.inner.finish(out);
        };
        let finished = self.inner.finish(&mut self.raw);
        for event in self.raw.drain(..) {
            recovery.push(event, out);
        }
        if finished.is_ok() {
            recovery.finish(out);
        }
        finished
    }
}
