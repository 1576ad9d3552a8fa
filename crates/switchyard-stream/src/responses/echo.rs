//! [`Echo`]: the request parameters a Responses `response` object repeats, each rendered
//! as JSON once per request (the object is written three times per stream: created, in
//! progress, completed) and shared by the encoder and the store without a deep copy.

use std::borrow::Cow;
use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value};

/// The repeated request parameters, in key order, each as its JSON text (all of them in
/// one buffer).
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
    /// Every value's JSON text, one after the other.
    text: String,
    /// Each key with its value's place in `text`, in key order.
    fields: Vec<(Cow<'static, str>, Range<usize>)>,
    /// `reasoning.summary` is set and not null.
    asks_summary: bool,
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
        let at = fields.binary_search_by(|(k, _)| k.as_ref().cmp(key)).ok()?;
        self.inner.text.get(fields.get(at)?.1.clone())
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
            .map(move |(k, at)| (k.as_ref(), text.get(at.clone()).unwrap_or("null")))
    }

    /// The fields in key order as [`Self::iter`] gives them, each with whether its key is
    /// one of the crate's own names (a plain identifier a JSON writer need not escape).
    pub(crate) fn iter_marked(&self) -> impl Iterator<Item = (&str, bool, &str)> {
        let text = &self.inner.text;
        self.inner.fields.iter().map(move |(k, at)| {
            let own = matches!(k, Cow::Borrowed(_));
            (k.as_ref(), own, text.get(at.clone()).unwrap_or("null"))
        })
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

/// Builds an [`Echo`]: each value written into one buffer.
pub(crate) struct EchoBuilder {
    text: Vec<u8>,
    fields: Vec<(Cow<'static, str>, Range<usize>)>,
    /// What [`Echo::asks_summary`] answers.
    pub(crate) summary: bool,
}

impl Default for EchoBuilder {
    /// Room for a request's echo (sixteen fields, their defaults' text) without growing.
    fn default() -> Self {
        Self {
            text: Vec::with_capacity(256),
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
        let start = self.text.len();
        if serde_json::to_writer(&mut self.text, value).is_err() {
            // Only a map with keys that are not strings fails, which no field is.
            self.text.truncate(start);
            self.text.extend_from_slice(b"null");
        }
        self.fields.push((key, start..self.text.len()));
    }

    fn put_json(&mut self, key: Cow<'static, str>, json: &str) {
        let start = self.text.len();
        self.text.extend_from_slice(json.as_bytes());
        self.fields.push((key, start..self.text.len()));
    }

    /// The echo, its fields sorted by key.
    pub(crate) fn finish(&mut self) -> Echo {
        let mut fields = std::mem::take(&mut self.fields);
        if !fields.is_sorted_by(|a, b| a.0 <= b.0) {
            fields.sort_by(|a, b| a.0.cmp(&b.0));
        }
        // serde_json writes UTF-8 and the static texts are `str`s.
        let text = String::from_utf8(std::mem::take(&mut self.text)).unwrap_or_default();
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
