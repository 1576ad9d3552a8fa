//! Text-completion codecs (sans-IO): Ollama's `/api/generate` (NDJSON, `response` chunks)
//! and OpenAI's legacy `/v1/completions` (SSE, `choices[0].text`). Each side decodes a
//! client's request into a [`GenerateRequest`](switchyard_core::GenerateRequest), encodes
//! one for an upstream, decodes the upstream's stream into chat events, and encodes events
//! for the client, streamed or whole.

pub mod ollama;
pub mod openai;

use switchyard_core::{ChatEvent, FinishReason, Usage};

/// A whole answer folded from events: text, thinking, usage, finish, and Ollama's
/// `context`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Completion {
    /// The generated text.
    pub text: String,
    /// Thinking, when the model thought.
    pub thinking: String,
    /// Token counts, when reported.
    pub usage: Option<Usage>,
    /// Why it stopped.
    pub finish: Option<FinishReason>,
    /// Ollama's `context` (a JSON array, as the upstream wrote it), from an
    /// [`ollama::context_event`].
    pub context: Option<String>,
}

impl Completion {
    /// Adds one event.
    pub fn push(&mut self, event: &ChatEvent) {
        match event {
            ChatEvent::TextDelta { text } => self.text.push_str(text),
            ChatEvent::ThinkingDelta { text } => self.thinking.push_str(text),
            ChatEvent::Usage(u) => self.usage = Some(*u),
            ChatEvent::Done { finish_reason } => self.finish = Some(finish_reason.clone()),
            ChatEvent::Opaque { .. } => {
                if let Some(context) = ollama::context_of(event) {
                    self.context = Some(context.get().to_owned());
                }
            }
            _ => {}
        }
    }
}
