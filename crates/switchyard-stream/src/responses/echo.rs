//! [`Echo`]: the request parameters a Responses `response` object repeats, each rendered
//! as JSON once per request (the object is written three times per stream: created, in
//! progress, completed) and shared by the encoder and the store without a deep copy.

use std::borrow::Cow;
use std::sync::Arc;

use serde::Serialize;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

/// The repeated request parameters, in key order, each as its JSON text.
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
/// assert_eq!(echo.get("store").map(|v| v.get()), Some("false"));
/// assert_eq!(echo.value("top_p"), Some(json!(1.0)));
/// ```
#[derive(Debug, Clone, Default)]
pub struct Echo {
    fields: Arc<Vec<(Cow<'static, str>, Box<RawValue>)>>,
}

impl Echo {
    /// The echo of `map`'s entries.
    pub fn from_map(map: &Map<String, Value>) -> Self {
        let mut echo = Self::default();
        for (key, value) in map {
            echo.insert(key, value);
        }
        echo
    }

    /// Sets `key` to `value` (in key order; an existing entry is replaced).
    pub fn insert(&mut self, key: &str, value: &Value) {
        self.put(Cow::Owned(key.to_owned()), rendered(value));
    }

    /// Sets `key` to the rendered `value`, keeping the fields in key order.
    fn put(&mut self, key: Cow<'static, str>, value: Box<RawValue>) {
        let fields = Arc::make_mut(&mut self.fields);
        match fields.binary_search_by(|(k, _)| k.as_ref().cmp(key.as_ref())) {
            Ok(at) => fields[at].1 = value,
            Err(at) => fields.insert(at, (key, value)),
        }
    }

    /// The JSON text of `key`'s value.
    pub fn get(&self, key: &str) -> Option<&RawValue> {
        self.fields
            .binary_search_by(|(k, _)| k.as_ref().cmp(key))
            .ok()
            .map(|at| &*self.fields[at].1)
    }

    /// `key`'s value, parsed.
    pub fn value(&self, key: &str) -> Option<Value> {
        self.get(key)
            .and_then(|raw| serde_json::from_str(raw.get()).ok())
    }

    /// The fields in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &RawValue)> {
        self.fields.iter().map(|(k, v)| (k.as_ref(), &**v))
    }

    /// Whether the request asked for reasoning summaries (`reasoning.summary` not null).
    pub fn asks_summary(&self) -> bool {
        self.value("reasoning")
            .and_then(|r| r.get("summary").cloned())
            .is_some_and(|s| !s.is_null())
    }
}

impl PartialEq for Echo {
    fn eq(&self, other: &Self) -> bool {
        self.fields.len() == other.fields.len()
            && self
                .iter()
                .zip(other.iter())
                .all(|((ka, va), (kb, vb))| ka == kb && va.get() == vb.get())
    }
}

/// Builds an [`Echo`] from fields with static names (a request's parameters).
#[derive(Default)]
pub(crate) struct EchoBuilder {
    echo: Echo,
}

impl EchoBuilder {
    /// Sets `key` to `value`, serialized.
    pub(crate) fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> &mut Self {
        self.echo.put(Cow::Borrowed(key), rendered(value));
        self
    }

    /// Sets `key` to a JSON text known to be valid.
    pub(crate) fn json(&mut self, key: &'static str, json: &'static str) -> &mut Self {
        let value = RawValue::from_string(json.to_owned()).unwrap_or_else(|_| null());
        self.echo.put(Cow::Borrowed(key), value);
        self
    }

    /// The echo.
    pub(crate) fn finish(&mut self) -> Echo {
        std::mem::take(&mut self.echo)
    }
}

/// `value` as JSON text; `null` for what serde_json cannot write (a map with non-string
/// keys, which no request field is).
fn rendered<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| null())
}

fn null() -> Box<RawValue> {
    RawValue::NULL.to_owned()
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
        let all: Vec<(&str, &str)> = echo.iter().map(|(k, v)| (k, v.get())).collect();
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
