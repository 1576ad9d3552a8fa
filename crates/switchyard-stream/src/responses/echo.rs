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
    /// Every member's JSON text (`"key":value`), in key order, separated by commas.
    text: String,
    /// Each field, in key order.
    fields: Vec<Field>,
    /// `reasoning.summary` is set and not null.
    asks_summary: bool,
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
        self.inner.text.get(fields.get(at)?.value())
    }

    /// `key`'s value, parsed.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.get(key).and_then(|raw| serde_json::from_str(raw).ok())
    }

    /// The fields in key order, each value as its JSON text.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        let text = &self.inner.text;
        self.inner
            .fields
            .iter()
            .map(move |f| (f.key.as_ref(), text.get(f.value()).unwrap_or("null")))
    }

    /// The keys in key order, each with its member's place in [`Self::members`].
    pub(crate) fn member_ranges(&self) -> impl Iterator<Item = (&str, Range<usize>)> {
        self.inner
            .fields
            .iter()
            .map(|f| (f.key.as_ref(), f.member.clone()))
    }

    /// The members' JSON text: from the start of one member to the end of a later one is
    /// those members and the commas between them.
    pub(crate) fn members(&self) -> &[u8] {
        self.inner.text.as_bytes()
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

/// Builds an [`Echo`]: each member written into one buffer.
pub(crate) struct EchoBuilder {
    text: Vec<u8>,
    fields: Vec<Field>,
    /// What [`Echo::asks_summary`] answers.
    pub(crate) summary: bool,
}

impl Default for EchoBuilder {
    /// Room for a request's echo (sixteen fields, their names and their defaults' text)
    /// without growing.
    fn default() -> Self {
        Self {
            text: Vec::with_capacity(512),
            fields: Vec::with_capacity(16),
            summary: false,
        }
    }
}

impl EchoBuilder {
    /// Sets `key` (a name not set before) to `value`, serialized.
    pub(crate) fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> &mut Self {
        self.put(Cow::Borrowed(key), value);
        self
    }

    /// Sets `key` (a name not set before) to a valid JSON text.
    pub(crate) fn json(&mut self, key: &'static str, json: &'static str) -> &mut Self {
        self.put_json(Cow::Borrowed(key), json);
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
        if !fields.is_sorted_by(|a, b| a.key <= b.key) {
            // Written in another order (a client's map, an inserted key): the members are
            // copied in key order, so that a run of them stays one slice.
            fields.sort_by(|a, b| a.key.cmp(&b.key));
            let mut sorted = Vec::with_capacity(text.len());
            for field in &mut fields {
                if !sorted.is_empty() {
                    sorted.push(b',');
                }
                let start = sorted.len();
                sorted.extend_from_slice(text.get(field.member.clone()).unwrap_or_default());
                let value_offset = field.value_start - field.member.start;
                field.member = start..sorted.len();
                field.value_start = start + value_offset;
            }
            text = sorted;
        }
        // serde_json writes UTF-8 and the static texts are `str`s.
        let text = String::from_utf8(text).unwrap_or_default();
        Echo {
            inner: Arc::new(Rendered {
                text,
                fields,
                asks_summary: self.summary,
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
        let members = std::str::from_utf8(echo.members()).unwrap();
        assert_eq!(members, r#""a":"x","b":[2],"c":null"#);
        let ranges: Vec<(&str, &str)> = echo
            .member_ranges()
            .map(|(k, at)| (k, &members[at]))
            .collect();
        assert_eq!(
            ranges,
            [
                ("a", r#""a":"x""#),
                ("b", r#""b":[2]"#),
                ("c", r#""c":null"#)
            ]
        );
        let mut quoted = Echo::default();
        quoted.insert("q\"k", &json!(1));
        assert_eq!(quoted.members(), br#""q\"k":1"#);
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
            .field("temperature", &1.0_f64)
            .field("tools", &vec![json!({"type": "function", "name": "f"})])
            .json("text", r#"{"format":{"type":"text"}}"#)
            .field("user", &None::<String>)
            .finish();
        let map = json!({"temperature": 1.0, "tools": [{"type": "function", "name": "f"}],
                         "text": {"format": {"type": "text"}}, "user": null});
        assert_eq!(echo, Echo::from_map(map.as_object().unwrap()));
    }
}
