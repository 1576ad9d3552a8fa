//! The sans-IO decode pipeline between an upstream body and chat events: the
//! [`EventDecoder`] trait the transport drives (implemented here by the Ollama and OpenAI
//! stream decoders), text tool-call recovery over a streamed body ([`RecoveringDecoder`])
//! and over a whole answer ([`recover_tool_calls`]). No I/O: bytes in, events out.

use switchyard_core::{ChatEvent, ChatResponse, ProviderError, ResponseBuilder};

use crate::ollama::OllamaStreamDecoder;
use crate::openai::OpenAiStreamDecoder;
use crate::recovery::TextToolCallRecovery;

/// A sans-IO decoder turning body bytes into events (the Ollama and OpenAI stream decoders,
/// [`RecoveringDecoder`]); `switchyard-http` drives it over a timed body.
pub trait EventDecoder: Send + Unpin + 'static {
    /// Feeds bytes as they arrive.
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError>;
    /// Called at the end of the body; must fail if the stream was incomplete.
    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError>;
    /// Whether the upstream's output has been decoded, even if the decoder holds it back
    /// for now (text tool-call recovery deciding whether text is a call). It ends the
    /// first-token phase like an event that came out. The default, `false`, suits a
    /// decoder that emits everything it decodes.
    fn progressed(&self) -> bool {
        false
    }
}

impl EventDecoder for OpenAiStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        OpenAiStreamDecoder::feed(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        OpenAiStreamDecoder::finish(self, out)
    }
}

impl EventDecoder for OllamaStreamDecoder {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        OllamaStreamDecoder::feed(self, chunk, out)
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        OllamaStreamDecoder::finish(self, out)
    }
}

/// A stream decoder optionally followed by text tool-call recovery: with recovery, tool
/// calls a model writes as text (`<tool_call>`, bare JSON, ...) become structured calls.
///
/// Recovery holds text back while it decides whether it is a call, so events can come out
/// long after the upstream's first output; [`EventDecoder::progressed`] still reports that
/// output, so the first-token phase of `switchyard_http::TimedEventStream` ends at the first
/// decoded event, not at the first released one.
///
/// ```
/// use switchyard_stream::decoder::{EventDecoder, RecoveringDecoder};
/// use switchyard_stream::ollama::OllamaStreamDecoder;
/// use switchyard_stream::recovery::TextToolCallRecovery;
///
/// let recovery = TextToolCallRecovery::new(["get_weather"]);
/// let mut decoder = RecoveringDecoder::new(OllamaStreamDecoder::new(), Some(recovery));
/// let mut out = Vec::new();
/// let line = br#"{"model":"m","message":{"role":"assistant","content":"<tool_call>"},"done":false}"#;
/// decoder.feed(line, &mut out).unwrap();
/// decoder.feed(b"\n", &mut out).unwrap();
/// assert!(out.is_empty(), "held back while undecided");
/// assert!(decoder.progressed(), "but the upstream did produce output");
/// ```
#[derive(Debug)]
pub struct RecoveringDecoder<D> {
    inner: D,
    recovery: Option<TextToolCallRecovery>,
    /// Events of `inner` on their way into `recovery` (reused, to avoid allocating per chunk).
    raw: Vec<ChatEvent>,
    progressed: bool,
}

impl<D: EventDecoder> RecoveringDecoder<D> {
    /// `inner`'s events, through `recovery` when given.
    pub fn new(inner: D, recovery: Option<TextToolCallRecovery>) -> Self {
        Self {
            inner,
            recovery,
            raw: Vec::new(),
            progressed: false,
        }
    }

    /// Moves the decoded events through recovery into `out`, noting the progress.
    fn recover(&mut self, out: &mut Vec<ChatEvent>) {
        let Some(recovery) = &mut self.recovery else {
            return;
        };
        if !self.raw.is_empty() {
            self.progressed = true;
        }
        for event in self.raw.drain(..) {
            recovery.push(event, out);
        }
    }
}

impl<D: EventDecoder> EventDecoder for RecoveringDecoder<D> {
    fn feed(&mut self, chunk: &[u8], out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if self.recovery.is_none() {
            return self.inner.feed(chunk, out);
        }
        let fed = self.inner.feed(chunk, &mut self.raw);
        self.recover(out);
        fed
    }

    fn finish(&mut self, out: &mut Vec<ChatEvent>) -> Result<(), ProviderError> {
        if self.recovery.is_none() {
            return self.inner.finish(out);
        }
        let finished = self.inner.finish(&mut self.raw);
        self.recover(out);
        if finished.is_ok() {
            if let Some(recovery) = &mut self.recovery {
                recovery.finish(out);
            }
        }
        finished
    }

    fn progressed(&self) -> bool {
        self.progressed || self.inner.progressed()
    }
}

/// Applies text tool-call recovery, when given, to a whole (non-streamed) answer: calls the
/// model wrote as text become structured calls. Without recovery the answer is returned
/// unchanged.
pub fn recover_tool_calls(
    answer: ChatResponse,
    recovery: Option<TextToolCallRecovery>,
) -> Result<ChatResponse, ProviderError> {
    let Some(mut recovery) = recovery else {
        return Ok(answer);
    };
    let mut events = Vec::new();
    for event in answer.to_events() {
        recovery.push(event, &mut events);
    }
    recovery.finish(&mut events);
    let mut builder = ResponseBuilder::default();
    for event in events {
        builder.push(event)?;
    }
    builder.finish()
}
