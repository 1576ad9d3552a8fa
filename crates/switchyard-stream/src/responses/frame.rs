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
        write_frame(out, self.kind, |data| {
            if let Some(index) = self.content_index {
                data.num("content_index", index);
            }
            data.str("delta", self.delta).str("item_id", self.item_id);
            if self.logprobs {
                data.raw("logprobs", b"[]");
            }
            data.num("output_index", self.output_index)
                .num("sequence_number", self.sequence_number);
            if let Some(index) = self.summary_index {
                data.num("summary_index", index);
            }
        });
    }
}
