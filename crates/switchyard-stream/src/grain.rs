//! How finely decoded text leaves a stream decoder: one event per upstream delta (a
//! streamed answer, whose chunking the client sees) or merged with the delta decoded just
//! before it (a whole answer, which is folded anyway: no event, allocation or hand-off per
//! upstream chunk).

use switchyard_core::ChatEvent;

/// How a stream decoder emits text and thinking deltas.
///
/// ```
/// use switchyard_core::ChatEvent;
/// use switchyard_stream::grain::DeltaGrain;
/// use switchyard_stream::openai::OpenAiStreamDecoder;
///
/// let body = concat!(
///     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hel\"}}]}\n\n",
///     "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\"}}]}\n\n",
/// );
/// let mut decoder = OpenAiStreamDecoder::new().with_grain(DeltaGrain::Merged);
/// let mut out = Vec::new();
/// decoder.feed(body.as_bytes(), &mut out)?;
/// assert_eq!(out, vec![ChatEvent::text("Hello")]);
/// # Ok::<(), switchyard_core::ProviderError>(())
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum DeltaGrain {
    /// One event per delta the upstream sent (the default, for a streamed answer).
    #[default]
    PerChunk,
    /// A delta is appended to the last event not yet taken from the decoder's output when
    /// that event is a delta of the same kind: the deltas decoded from one read become one
    /// event. The text, its order and its interleaving with tool calls are unchanged.
    Merged,
}

impl DeltaGrain {
    /// [`PerChunk`](Self::PerChunk) for a client that streams, [`Merged`](Self::Merged)
    /// for one that asked for a whole answer.
    pub fn for_client(streamed: bool) -> Self {
        if streamed {
            Self::PerChunk
        } else {
            Self::Merged
        }
    }

    /// Emits a text delta.
    pub(crate) fn push_text<S: AsRef<str> + Into<String>>(self, out: &mut Vec<ChatEvent>, text: S) {
        if self == Self::Merged {
            if let Some(ChatEvent::TextDelta { text: last }) = out.last_mut() {
                last.push_str(text.as_ref());
                return;
            }
        }
        out.push(ChatEvent::TextDelta { text: text.into() });
    }

    /// Emits a thinking delta.
    pub(crate) fn push_thinking<S: AsRef<str> + Into<String>>(
        self,
        out: &mut Vec<ChatEvent>,
        text: S,
    ) {
        if self == Self::Merged {
            if let Some(ChatEvent::ThinkingDelta { text: last }) = out.last_mut() {
                last.push_str(text.as_ref());
                return;
            }
        }
        out.push(ChatEvent::ThinkingDelta { text: text.into() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_chunk_keeps_every_delta() {
        let mut out = Vec::new();
        DeltaGrain::PerChunk.push_text(&mut out, "a");
        DeltaGrain::PerChunk.push_text(&mut out, "b");
        assert_eq!(out, vec![ChatEvent::text("a"), ChatEvent::text("b")]);
    }

    #[test]
    fn merged_joins_only_neighbours_of_the_same_kind() {
        let grain = DeltaGrain::Merged;
        let mut out = Vec::new();
        grain.push_thinking(&mut out, "t1");
        grain.push_thinking(&mut out, "t2");
        grain.push_text(&mut out, "a");
        grain.push_text(&mut out, String::from("b"));
        out.push(ChatEvent::ToolCallEnd { index: 0 });
        grain.push_text(&mut out, "c");
        grain.push_thinking(&mut out, "t3");
        assert_eq!(
            out,
            vec![
                ChatEvent::thinking("t1t2"),
                ChatEvent::text("ab"),
                ChatEvent::ToolCallEnd { index: 0 },
                ChatEvent::text("c"),
                ChatEvent::thinking("t3"),
            ]
        );
    }

    #[test]
    fn for_client_follows_streaming() {
        assert_eq!(DeltaGrain::for_client(true), DeltaGrain::PerChunk);
        assert_eq!(DeltaGrain::for_client(false), DeltaGrain::Merged);
    }
}
