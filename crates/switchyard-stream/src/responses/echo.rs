//! [`Echo`]: the request parameters a Responses `response` object repeats, each rendered
//! as a JSON member once per request (the object is written three times per stream:
//! created, in progress, completed) and shared by the encoder and the store without a deep
//! copy.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::json_util::write_json_str;

/// The repeated request parameters, in key order, each as its JSON member
/// (`"key":value`; all of them in one buffer, separated by commas, so a run of them is one
/// slice a response object copies as it is).
///
/// ```
/// use serde_json::json;
/// use switchyard_stream::responses::Echo;
///
/// let mut echo = Echo::default();
/// echo.insert("top_p", &json!(1.0));
/// echo.insert("store", &json!(false));
/// let keys: Vec<&str> = echo.iter().map(|(k, _)| k).collect();
/// assert_eq!(keys, ["store", "top_p"]);
/// assert_eq!(echo.get("store"), Some("false"));
/// assert_eq!(echo.value("top_p"), Some(json!(1.0)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Echo {
    inner: Arc<Rendered>,
}

/// The rendered fields behind an [`Echo`].
#[derive(Debug, Default)]
struct Rendered {
    /// Every member's JSON text (`"key":value`), in key order, separated by commas: UTF-8
    /// (serde_json's output and `str`s), checked only where a value is read as text.
    text: Vec<u8>,
    /// Each field, in key order.
    fields: Vec<Field>,
    /// `reasoning.summary` is set and not null.
    asks_summary: bool,
    /// The keys are the ones every decoded request's echo has, in the same order
    /// ([`EchoBuilder::request_keys`]).
    request_keys: bool,
}

/// One echoed field: its key, its member's place in the text and where its value starts.
#[derive(Debug, Clone)]
struct Field {
    key: Cow<'static, str>,
    member: Range<usize>,
    value_start: usize,
}

impl Field {
    fn value(&self) -> Range<usize> {
        self.value_start..self.member.end
    }
}

impl Echo {
    /// The echo of `map`'s entries.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let mut echo = EchoBuilder::default();
        for (key, value) in map {
            echo.put(Cow::Owned(key.clone()), value);
        }
        echo.summary = map.get("reasoning").is_some_and(summary_asked);
        echo.finish()
    }

    /// Sets `key` to `value` (in key order; an existing entry is replaced).
    pub fn insert(&mut self, key: &str, value: &Value) {
        let mut echo = EchoBuilder::default();
        for (k, v) in self.iter() {
            if k != key {
                echo.put_json(Cow::Owned(k.to_owned()), v);
            }
        }
        echo.put(Cow::Owned(key.to_owned()), value);
        echo.summary = if key == "reasoning" {
            summary_asked(value)
        } else {
            self.inner.asks_summary
        };
        *self = echo.finish();
    }

    /// The JSON text of `key`'s value.
    pub fn get(&self, key: &str) -> Option<&str> {
        let fields = &self.inner.fields;
        let at = fields.binary_search_by(|f| f.key.as_ref().cmp(key)).ok()?;
        let value = self.inner.text.get(fields.get(at)?.value())?;
        std::str::from_utf8(value).ok()
    }

    /// `key`'s value, parsed.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.get(key).and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// The fields in key order, each value as its JSON text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = &self.inner.text;
        self.inner.fields.iter().map(move |f| {
            let value = text
                .get(f.value())
                .and_then(|v| std::str::from_utf8(v).ok());
            (f.key.as_ref(), value.unwrap_or("null"))
        })
    }

    /// The keys in key order.
    pub(crate) fn keys(&self) -> impl Iterator<Item = &str> {
        self.inner.fields.iter().map(|f| f.key.as_ref())
    }

    /// The members of the fields at `fields` (indices in key order) as one slice: each
    /// `"key":value` and the commas between them (empty for an empty or bad range).
    pub(crate) fn run(&self, fields: Range<usize>) -> &[u8] {
        let all = &self.inner.fields;
        let (Some(first), Some(last)) =
            (all.get(fields.start), all.get(fields.end.wrapping_sub(1)))
        else {
            return &[];
        };
        self.inner
            .text
            .get(first.member.start..last.member.end)
            .unwrap_or_default()
    }

    /// Whether the keys are the ones every decoded request's echo has, in the same order,
    /// so that what depends on the keys only (a response object's layout) is the same for
    /// every such echo.
    pub(crate) fn has_request_keys(&self) -> bool {
        self.inner.request_keys
    }

    /// Whether the request asked for reasoning summaries (`reasoning.summary` not null).
    pub fn asks_summary(&self) -> bool {
        self.inner.asks_summary
    }
}

impl PartialEq for Echo {
    fn eq(&self, other: &Self) -> bool {
        self.inner.fields.len() == other.inner.fields.len() && self.iter().eq(other.iter())
    }
}

/// A field's name and its whole member (`"name":json`) as static text, for
/// [`EchoBuilder::member`] and [`EchoBuilder::field_or`]: `member!("store", "true")` is
/// `("store", "\"store\":true")`.
macro_rules! member {
    ($key:literal, $json:literal) => {
        ($key, concat!("\"", $key, "\":", $json))
    };
}
pub(crate) use member;

/// Builds an [`Echo`]: each member written into one buffer.
pub(crate) struct EchoBuilder {
    text: Vec<u8>,
    fields: Vec<Field>,
    /// What [`Echo::asks_summary`] answers.
    pub(crate) summary: bool,
    /// Set by the request decoder, which writes the same keys in the same order for every
    /// request: what [`Echo::has_request_keys`] answers.
    pub(crate) request_keys: bool,
}

impl Default for EchoBuilder {
    /// Room for a request's echo (sixteen fields, their names and their defaults' text)
    /// without growing.
    fn default() -> Self {
        Self {
            text: Vec::with_capacity(512),
            fields: Vec::with_capacity(16),
            summary: false,
            request_keys: false,
        }
    }
}

impl EchoBuilder {
    /// Sets a field (a name not set before) to `value`, serialized, or, when there is no
    /// value, to its default: `member` is the field's name and its whole default member as
    /// static text ([`member!`]).
    pub(crate) fn field_or<T: Serialize>(
        &mut self,
        value: Option<T>,
        member: (&'static str, &'static str),
    ) -> &mut Self {
        match value {
            Some(value) => self.put(Cow::Borrowed(member.0), &value),
            None => {
                self.member(member);
            }
        }
        self
    }

    /// Sets a field (a name not set before) to a static member: its name and its whole
    /// `"name":value` text ([`member!`]), copied as it is.
    pub(crate) fn member(&mut self, (key, member): (&'static str, &'static str)) -> &mut Self {
        debug_assert!(member.len() > key.len() + 3 && member.get(1..=key.len()) == Some(key));
        if !self.text.is_empty() {
            self.text.push(b',');
        }
        let start = self.text.len();
        self.text.extend_from_slice(member.as_bytes());
        // `"`, the name, `":`.
        let value_start = start + key.len() + 3;
        self.close_member(Cow::Borrowed(key), start, value_start);
        self
    }

    fn put<T: Serialize + ?Sized>(&mut self, key: Cow<'static, str>, value: &T) {
        let start = self.open_member(&key, matches!(key, Cow::Borrowed(_)));
        let value_start = self.text.len();
        if serde_json::to_writer(&mut self.text, value).is_err() {
            // Only a map with keys that are not strings fails, which no field is.
            self.text.truncate(value_start);
            self.text.extend_from_slice(b"null");
        }
        self.close_member(key, start, value_start);
    }

    fn put_json(&mut self, key: Cow<'static, str>, json: &str) {
        let start = self.open_member(&key, matches!(key, Cow::Borrowed(_)));
        let value_start = self.text.len();
        self.text.extend_from_slice(json.as_bytes());
        self.close_member(key, start, value_start);
    }

    /// Writes the separator and `"key":`; the member's start.
    fn open_member(&mut self, key: &str, own_name: bool) -> usize {
        if !self.text.is_empty() {
            self.text.push(b',');
        }
        let start = self.text.len();
        if own_name {
            // The crate's own names are plain identifiers.
            self.text.push(b'"');
            self.text.extend_from_slice(key.as_bytes());
            self.text.push(b'"');
        } else {
            // A client's key is escaped as JSON needs.
            write_json_str(&mut self.text, key);
        }
        self.text.push(b':');
        start
    }

    fn close_member(&mut self, key: Cow<'static, str>, start: usize, value_start: usize) {
        self.fields.push(Field {
            key,
            member: start..self.text.len(),
            value_start,
        });
    }

    /// The echo, its members in key order.
    pub(crate) fn finish(&mut self) -> Echo {
        let mut fields = std::mem::take(&mut self.fields);
        let mut text = std::mem::take(&mut self.text);
        let in_key_order = fields.is_sorted_by(|a, b| a.key <= b.key);
        if !in_key_order {
            // Written in another order (a client's map, an inserted key): the members are
            // copied in key order, so that a run of them stays one slice.
            fields.sort_by(|a, b| a.key.cmp(&b.key));
            let mut reordered = Vec::with_capacity(text.len());
            for field in &mut fields {
                if !reordered.is_empty() {
                    reordered.push(b',');
                }
                let start = reordered.len();
                reordered.extend_from_slice(text.get(field.member.clone()).unwrap_or_default());
                let value_offset = field.value_start - field.member.start;
                field.member = start..reordered.len();
                field.value_start = start + value_offset;
            }
            text = reordered;
        }
        Echo {
            inner: Arc::new(Rendered {
                text,
                fields,
                asks_summary: self.summary,
                request_keys: self.request_keys && in_key_order,
            }),
        }
    }
}

/// Whether a `reasoning` value asks for summaries (`summary` set and not null).
fn summary_asked(reasoning: &Value) -> bool {
    reasoning.get("summary").is_some_and(|s| !s.is_null())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_stay_in_key_order_and_replace() {
        let mut echo = Echo::default();
        for (k, v) in [
            ("b", json!(1)),
            ("a", json!("x")),
            ("c", json!(null)),
            ("b", json!([2])),
        ] {
            echo.insert(k, &v);
        }
        let all: Vec<(&str, &str)> = echo.iter().collect();
        assert_eq!(all, [("a", "\"x\""), ("b", "[2]"), ("c", "null")]);
        assert!(echo.get("d").is_none());
        // The members follow in key order, so any run of them is one slice.
        let members = std::str::from_utf8(echo.run(0..3)).unwrap();
        assert_eq!(members, r#""a":"x","b":[2],"c":null"#);
        assert_eq!(echo.keys().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(echo.run(0..1), br#""a":"x""#);
        assert_eq!(echo.run(1..3), br#""b":[2],"c":null"#);
        assert!(echo.run(2..4).is_empty() && echo.run(0..0).is_empty());
        let mut quoted = Echo::default();
        quoted.insert("q\"k", &json!(1));
        assert_eq!(quoted.run(0..1), br#""q\"k":1"#);
    }

    #[test]
    fn a_clone_is_independent() {
        let mut one = Echo::default();
        one.insert("a", &json!(1));
        let mut two = one.clone();
        two.insert("a", &json!(2));
        assert_eq!(one.value("a"), Some(json!(1)));
        assert_eq!(two.value("a"), Some(json!(2)));
        assert_ne!(one, two);
    }

    #[test]
    fn the_summary_is_asked_for_when_not_null() {
        let mut echo = Echo::default();
        assert!(!echo.asks_summary());
        echo.insert("reasoning", &json!({"effort": null, "summary": null}));
        assert!(!echo.asks_summary());
        echo.insert("reasoning", &json!({"effort": "low", "summary": "auto"}));
        assert!(echo.asks_summary());
    }

    #[test]
    fn the_builder_matches_values_written_by_serde() {
        let echo = EchoBuilder::default()
            .field_or(Some(1.0_f64), member!("temperature", "1.0"))
            .field_or(
                Some(vec![json!({"type": "function", "name": "f"})]),
                member!("tools", "[]"),
            )
            .member(member!("text", r#"{"format":{"type":"text"}}"#))
            .field_or(None::<String>, member!("user", "null"))
            .finish();
        let map = json!({"temperature": 1.0, "tools": [{"type": "function", "name": "f"}],
                         "text": {"format": {"type": "text"}}, "user": null});
        assert_eq!(echo, Echo::from_map(map.as_object().unwrap()));
    }
}
