//! Small JSON helpers shared by the codecs: a string that borrows from the input when it
//! has no escapes (serde only borrows a bare `Cow<str>` field, not one inside `Option`),
//! an incremental scanner that tells where a JSON value ends, id seeding, and the two
//! rules both stream encoders share (writing a value, skipping empty deltas).

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::{Deserialize, Deserializer, Visitor};

/// `serde_json::from_slice` with the same result and errors, checking UTF-8 once for the
/// whole body rather than string by string (keys included): valid UTF-8 is read as a
/// `str`; anything else goes to `from_slice`, whose error says where it broke.
pub(crate) fn from_json_bytes<'de, T: Deserialize<'de>>(body: &'de [u8]) -> serde_json::Result<T> {
    match std::str::from_utf8(body) {
        Ok(text) => serde_json::from_str(text),
        Err(_) => serde_json::from_slice(body),
    }
}

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub(crate) struct CowStr<'a>(pub(crate) Cow<'a, str>);

impl std::ops::Deref for CowStr<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for CowStr<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = CowStr<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                v: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Borrowed(v)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(CowStr(Cow::Owned(v)))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Where an incrementally fed JSON value ends (objects, arrays, strings, scalars are all
/// tracked by bracket depth and string state; the text is not validated).
#[derive(Debug, Clone, Default)]
pub(crate) struct JsonEnd {
    depth: usize,
    in_string: bool,
    escape: bool,
    started: bool,
}

impl JsonEnd {
    /// Feeds bytes; returns the offset just past the end of the value (an object or array:
    /// its closing bracket) when it ends within `bytes`.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Option<usize> {
        for (i, &b) in bytes.iter().enumerate() {
            if self.in_string {
                if self.escape {
                    self.escape = false;
                } else if b == b'\\' {
                    self.escape = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    self.started = true;
                }
                b'}' | b']' => {
                    self.depth = self.depth.saturating_sub(1);
                    if self.started && self.depth == 0 {
                        return Some(i + 1);
                    }
                }
                _ => {}
            }
        }
        None
    }
}

static SEED_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A seed for synthesised tool-call ids: a global counter mixed with the clock, so two
/// decoders (also in two processes) are unlikely to collide.
pub(crate) fn fresh_seed() -> u64 {
    let n = SEED_COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0);
    nanos ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17)
}

/// Saturating conversion of a token count.
pub(crate) fn count(v: Option<u64>) -> u32 {
    v.map_or(0, |v| u32::try_from(v).unwrap_or(u32::MAX))
}

/// A whole tool call in an answer (an Ollama chunk's `message.tool_calls[]`, a non-streamed
/// OpenAI `message.tool_calls[]`): `{"id"?, "function": {"name", "arguments"?}}`, borrowed.
#[derive(Debug, serde::Deserialize)]
pub(crate) struct WholeToolCall<'a> {
    #[serde(borrow, default)]
    pub(crate) id: Option<CowStr<'a>>,
    #[serde(borrow)]
    pub(crate) function: WholeFunction<'a>,
}

/// The `function` of a [`WholeToolCall`]; `arguments` kept raw (an object or a JSON string).
#[derive(Debug, serde::Deserialize)]
pub(crate) struct WholeFunction<'a> {
    #[serde(borrow)]
    pub(crate) name: CowStr<'a>,
    #[serde(borrow, default)]
    pub(crate) arguments: Option<&'a serde_json::value::RawValue>,
}

/// Serialises `value` onto `out`. The values the encoders write (strings, integers, maps of
/// JSON values, plain structs of those) cannot fail to serialise into a `Vec`.
pub(crate) fn write_json<T: serde::Serialize + ?Sized>(out: &mut Vec<u8>, value: &T) {
    let _ = serde_json::to_writer(&mut *out, value);
}

/// Appends `text` as a JSON string: the bytes serde_json writes, copied as they are when
/// nothing needs an escape (a model's tokens, ids), through serde otherwise.
pub(crate) fn write_json_str(out: &mut Vec<u8>, text: &str) {
    if crate::fast_json::needs_escape(text.as_bytes()) {
        write_json(out, text);
    } else {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
    }
}

/// Whether a stream encoder writes nothing for `event`: a text or thinking delta without
/// text, which would only be an empty frame.
pub(crate) fn is_empty_delta(event: &switchyard_core::ChatEvent) -> bool {
    use switchyard_core::ChatEvent;
    matches!(event, ChatEvent::TextDelta { text } | ChatEvent::ThinkingDelta { text } if text.is_empty())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    /// Both readers' results: the value, or the error as serde words it.
    fn both(bytes: &[u8]) -> (String, String) {
        let shown = |r: serde_json::Result<serde_json::Value>| match r {
            Ok(v) => format!("ok {v}"),
            Err(e) => format!("err {e}"),
        };
        (
            shown(super::from_json_bytes(bytes)),
            shown(serde_json::from_slice(bytes)),
        )
    }

    #[test]
    fn reads_as_from_slice_does() {
        for bytes in [
            &br#"{"a":"caf\xc3\xa9","b":[1,2.5,null]}"#[..],
            b"{\"a\":\"\xff\"}",
            b"{\"a\":\"\xc3\"}",
            b"\xef\xbb\xbf{}",
            br#"{"a":"\ud800"}"#,
            b"{\"a\":1} x",
            b"",
        ] {
            let (fast, slow) = both(bytes);
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(bytes));
        }
    }

    proptest! {
        /// Any JSON text, with any byte put anywhere (invalid UTF-8 included): the same
        /// value or the same error.
        #[test]
        fn any_bytes_read_as_from_slice_does(
            value in prop::collection::vec(("[a-z\u{e9}\u{6771}]{0,4}", any::<i32>()), 0..6),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            poke in any::<bool>(),
        ) {
            let map: serde_json::Map<_, _> =
                value.into_iter().map(|(k, n)| (k, serde_json::Value::from(n))).collect();
            let mut bytes = serde_json::to_vec(&map).unwrap_or_default();
            if poke && !bytes.is_empty() {
                let i = at.index(bytes.len());
                bytes[i] = byte;
            }
            let (fast, slow) = both(&bytes);
            prop_assert_eq!(fast, slow);
        }
    }
}
