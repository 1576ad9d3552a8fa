//! Writing Responses events straight to bytes, without building a `serde_json::Value`: a
//! writer of one JSON object's members, the SSE frame around an event's data, and the delta
//! event written once per upstream chunk.
//!
//! Members are written in the order the caller gives them; every caller gives them sorted
//! by key, the order a `Value` object writes its keys, so the bytes are those a `Value`
//! would serialise to (unit tests compare the two).

use crate::json_util::write_json_str;

/// Writes the members of one JSON object (`{` on open, `}` on [`Self::close`]). Keys are
/// static ASCII names, written as they are.
pub(super) struct ObjectWriter<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

impl<'a> ObjectWriter<'a> {
    /// Opens an object at the end of `out`.
    pub(super) fn open(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        Self { out, first: true }
    }

    fn key(&mut self, key: &'static str) {
        if !self.first {
            self.out.push(b',');
        }
        self.first = false;
        self.out.push(b'"');
        self.out.extend_from_slice(key.as_bytes());
        self.out.extend_from_slice(b"\":");
    }

    /// A string member (escaped where it needs to be).
    pub(super) fn str(&mut self, key: &'static str, value: &str) -> &mut Self {
        self.key(key);
        write_json_str(self.out, value);
        self
    }

    /// A string member whose value is a static ASCII name needing no escapes (an event or
    /// item type, a status).
    pub(super) fn name(&mut self, key: &'static str, value: &'static str) -> &mut Self {
        self.key(key);
        self.out.push(b'"');
        self.out.extend_from_slice(value.as_bytes());
        self.out.push(b'"');
        self
    }

    /// An integer member.
    pub(super) fn num(&mut self, key: &'static str, value: impl itoa::Integer) -> &mut Self {
        self.key(key);
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        self
    }

    /// A member whose value is JSON text already (`null`, `[]`, a written object).
    pub(super) fn raw(&mut self, key: &'static str, json: &[u8]) -> &mut Self {
        self.key(key);
        self.out.extend_from_slice(json);
        self
    }

    /// A member whose value `write` appends.
    pub(super) fn with(
        &mut self,
        key: &'static str,
        write: impl FnOnce(&mut Vec<u8>),
    ) -> &mut Self {
        self.key(key);
        write(self.out);
        self
    }

    /// Closes the object.
    pub(super) fn close(self) {
        self.out.push(b'}');
    }
}

/// Writes one event frame: `event: <kind>`, then `data:` with the members `members` writes
/// (sorted, each key before `type`) and `type` last.
pub(super) fn write_frame(
    out: &mut Vec<u8>,
    kind: &'static str,
    members: impl FnOnce(&mut ObjectWriter<'_>),
) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    let mut data = ObjectWriter::open(out);
    members(&mut data);
    data.name("type", kind);
    data.close();
    out.extend_from_slice(b"\n\n");
}

/// A delta event (text, reasoning or tool-call arguments), the one event written per
/// upstream chunk, from borrowed fields.
#[derive(Clone, Copy)]
pub(super) struct DeltaFrame<'a> {
    pub(super) content_index: Option<u32>,
    pub(super) delta: &'a str,
    pub(super) item_id: &'a str,
    /// Writes `"logprobs":[]` (answer text).
    pub(super) logprobs: bool,
    pub(super) output_index: usize,
    pub(super) sequence_number: u64,
    pub(super) summary_index: Option<u32>,
    /// The event type.
    pub(super) kind: &'static str,
}

impl DeltaFrame<'_> {
    /// Appends the frame to `out`.
    pub(super) fn write(&self, out: &mut Vec<u8>) {
        self.write_marked(out);
    }

    /// Appends the frame to `out`; returns where the delta's value ends (after its closing
    /// quote) and where the sequence number's digits end, as lengths of `out`.
    fn write_marked(&self, out: &mut Vec<u8>) -> (usize, usize) {
        let mut marks = (0, 0);
        write_frame(out, self.kind, |data| {
            if let Some(index) = self.content_index {
                data.num("content_index", index);
            }
            data.str("delta", self.delta);
            marks.0 = data.out.len();
            data.str("item_id", self.item_id);
            if self.logprobs {
                data.raw("logprobs", b"[]");
            }
            data.num("output_index", self.output_index)
                .num("sequence_number", self.sequence_number);
            marks.1 = data.out.len();
            if let Some(index) = self.summary_index {
                data.num("summary_index", index);
            }
        });
        marks
    }
}

/// The delta frames of one item: the bytes of a frame written once, with two holes, for
/// the delta text and the sequence number, the only members that change from one delta to
/// the next. Writing a delta is then three copies, the text and a number.
#[derive(Debug, Clone)]
pub(super) struct DeltaTemplate {
    /// The frame without the delta's value and the sequence number's digits.
    bytes: Vec<u8>,
    /// Where the delta's value goes.
    delta_at: usize,
    /// Where the sequence number goes.
    seq_at: usize,
}

impl DeltaTemplate {
    /// The template of `frame`'s item (its delta and sequence number are ignored); `None`
    /// if the marks the writer returns do not hold `""` and `0`, which cannot happen.
    pub(super) fn of(frame: &DeltaFrame<'_>) -> Option<Self> {
        let mut bytes = Vec::with_capacity(256);
        let (delta_end, seq_end) = DeltaFrame {
            delta: "",
            sequence_number: 0,
            ..*frame
        }
        .write_marked(&mut bytes);
        // The empty string `""` ends at the first mark, the digit `0` at the second.
        let delta_at = delta_end.checked_sub(2)?;
        let seq_at = seq_end.checked_sub(1)?;
        if bytes.get(delta_at..delta_end) != Some(b"\"\"") || bytes.get(seq_at) != Some(&b'0') {
            return None;
        }
        // Cut the empty string and the 0 out: the holes.
        bytes.remove(seq_at);
        bytes.drain(delta_at..delta_end);
        Some(Self {
            bytes,
            delta_at,
            seq_at: seq_at - 2,
        })
    }

    /// Appends the frame with `delta` and `sequence_number` in the holes.
    pub(super) fn write(&self, delta: &str, sequence_number: u64, out: &mut Vec<u8>) {
        let (head, rest) = self.bytes.split_at(self.delta_at);
        let (mid, tail) = rest.split_at(self.seq_at - self.delta_at);
        out.reserve(self.bytes.len() + delta.len() + 22);
        out.extend_from_slice(head);
        write_json_str(out, delta);
        out.extend_from_slice(mid);
        out.extend_from_slice(itoa::Buffer::new().format(sequence_number).as_bytes());
        out.extend_from_slice(tail);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn a_template_writes_what_the_frame_writes(
            first in any::<String>(),
            delta in any::<String>(),
            item_id in prop_oneof![any::<String>(), Just("x\\\"delta\\\":\\\"\\\"".to_owned())],
            content_index in proptest::option::of(0u32..3),
            summary_index in proptest::option::of(0u32..3),
            logprobs in any::<bool>(),
            output_index in any::<usize>(),
            seq in any::<u64>(),
            kind in prop_oneof![Just("response.output_text.delta"), Just("response.reasoning_text.delta")],
        ) {
            let frame = DeltaFrame {
                content_index,
                delta: &first,
                item_id: &item_id,
                logprobs,
                output_index,
                sequence_number: 0,
                summary_index,
                kind,
            };
            let template = DeltaTemplate::of(&frame).unwrap();
            let mut by_template = Vec::new();
            template.write(&delta, seq, &mut by_template);
            let mut by_frame = Vec::new();
            DeltaFrame { delta: &delta, sequence_number: seq, ..frame }.write(&mut by_frame);
            prop_assert_eq!(String::from_utf8(by_template).unwrap(), String::from_utf8(by_frame).unwrap());
        }
    }
}
