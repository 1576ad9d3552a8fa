//! Decoding request objects without serde's buffering.
//!
//! `#[serde(flatten)] extra: Map<String, Value>` (unknown top-level fields carried to an
//! upstream of the same API) and `#[serde(untagged)]` (a `content` that is a string or a
//! list) make serde's derive read the whole value into its generic `Content` tree first and
//! decode from that: every string of a conversation copied once more, per request. The
//! macros here write the same decoders by hand, straight from the JSON:
//!
//! - `open_object!`: a struct's known fields (`required`, `optional`
//!   for `Option<T>`: `null` or absent is `None`, `nullable` for `T: Default`: `null` or
//!   absent is the default), every other field into its `extra` map; a repeated known field
//!   is an error (`duplicate field`), as with the derive.
//! - `string_or_list!`: an enum of a `String` variant and a list
//!   variant, chosen by the JSON type; anything else is an error naming both.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Visitor};

/// An object key, borrowed from the input when it has no escapes.
pub(crate) struct Key<'de>(Cow<'de, str>);

impl Key<'_> {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    pub(crate) fn into_string(self) -> String {
        self.0.into_owned()
    }
}

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }

            fn visit_borrowed_str<E: Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }

            fn visit_str<E: Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }

            fn visit_string<E: Error>(self, v: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v)))
            }
        }
        de.deserialize_str(KeyVisitor)
    }
}

/// Implements `Deserialize` for a struct with known fields and an `extra` map for the rest
/// (see the module doc).
///
/// ```ignore
/// open_object!(WireRequest {
///     model: required,
///     messages: nullable,
///     temperature: optional,
/// } extra: extra);
/// ```
macro_rules! open_object {
    ($name:ident { $($field:ident : $kind:ident),* $(,)? } extra: $extra:ident) => {
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct ObjectVisitor;
                impl<'de> ::serde::de::Visitor<'de> for ObjectVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str(concat!("struct ", stringify!($name)))
                    }

                    fn visit_map<A: ::serde::de::MapAccess<'de>>(
                        self,
                        mut map: A,
                    ) -> Result<$name, A::Error> {
                        $( let mut $field = None; )*
                        let mut $extra = ::serde_json::Map::new();
                        while let Some(key) = map.next_key::<$crate::open_object::Key<'de>>()? {
                            match key.as_str() {
                                $(
                                    stringify!($field) => {
                                        if $field.is_some() {
                                            return Err(<A::Error as ::serde::de::Error>::duplicate_field(
                                                stringify!($field),
                                            ));
                                        }
                                        $field = Some($crate::open_object::open_object!(@read $kind, map));
                                    }
                                )*
                                _ => {
                                    let value = map.next_value()?;
                                    $extra.insert(key.into_string(), value);
                                }
                            }
                        }
                        Ok($name {
                            $( $field: $crate::open_object::open_object!(@finish $kind, $field, A), )*
                            $extra,
                        })
                    }
                }
                de.deserialize_map(ObjectVisitor)
            }
        }
    };
    (@read required, $map:ident) => { $map.next_value()? };
    (@read optional, $map:ident) => { $map.next_value()? };
    (@read nullable, $map:ident) => { $map.next_value::<Option<_>>()?.unwrap_or_default() };
    (@finish required, $field:ident, $a:ident) => {
        $field.ok_or_else(|| <$a::Error as ::serde::de::Error>::missing_field(stringify!($field)))?
    };
    (@finish optional, $field:ident, $a:ident) => { $field.flatten() };
    (@finish nullable, $field:ident, $a:ident) => { $field.unwrap_or_default() };
}

pub(crate) use open_object;

/// Implements `Deserialize` for `enum $name { $text(String), $list(Vec<_>) }`, chosen by
/// the JSON type (see the module doc).
macro_rules! string_or_list {
    ($name:ident :: $text:ident | $list:ident) => {
        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
                struct EitherVisitor;
                impl<'de> ::serde::de::Visitor<'de> for EitherVisitor {
                    type Value = $name;

                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str("a string or an array")
                    }

                    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<$name, E> {
                        Ok($name::$text(v.to_owned()))
                    }

                    fn visit_string<E: ::serde::de::Error>(self, v: String) -> Result<$name, E> {
                        Ok($name::$text(v))
                    }

                    fn visit_seq<A: ::serde::de::SeqAccess<'de>>(
                        self,
                        seq: A,
                    ) -> Result<$name, A::Error> {
                        ::serde::Deserialize::deserialize(
                            ::serde::de::value::SeqAccessDeserializer::new(seq),
                        )
                        .map($name::$list)
                    }
                }
                de.deserialize_any(EitherVisitor)
            }
        }
    };
}

pub(crate) use string_or_list;

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};

    struct Probe {
        name: String,
        tags: Vec<String>,
        limit: Option<u32>,
        extra: Map<String, Value>,
    }

    crate::open_object::open_object!(Probe {
        name: required,
        tags: nullable,
        limit: optional,
    } extra: extra);

    enum Text {
        One(String),
        Many(Vec<String>),
    }

    crate::open_object::string_or_list!(Text::One | Many);

    #[test]
    fn known_fields_are_typed_and_the_rest_is_kept() {
        let p: Probe =
            serde_json::from_str(r#"{"name":"a\"b","x":1,"tags":null,"limit":3,"y":{"z":[1]}}"#)
                .unwrap();
        assert_eq!(p.name, "a\"b");
        assert!(p.tags.is_empty());
        assert_eq!(p.limit, Some(3));
        assert_eq!(Value::Object(p.extra), json!({"x": 1, "y": {"z": [1]}}));
        let p: Probe = serde_json::from_str(r#"{"name":"n","tags":["t"],"limit":null}"#).unwrap();
        assert_eq!((p.tags, p.limit), (vec!["t".to_owned()], None));
    }

    #[test]
    fn missing_repeated_and_mistyped_fields_are_errors() {
        let err = |text: &str| {
            serde_json::from_str::<Probe>(text)
                .err()
                .unwrap()
                .to_string()
        };
        assert!(err(r#"{"tags":[]}"#).contains("missing field `name`"));
        assert!(err(r#"{"name":"a","name":"b"}"#).contains("duplicate field `name`"));
        assert!(err(r#"{"name":1}"#).contains("invalid type: integer `1`, expected a string"));
        assert!(err(r#"["a"]"#).contains("expected struct Probe"));
    }

    #[test]
    fn a_string_or_a_list_is_chosen_by_its_type() {
        assert!(matches!(serde_json::from_str(r#""a""#), Ok(Text::One(s)) if s == "a"));
        assert!(matches!(serde_json::from_str(r#"["a","b"]"#), Ok(Text::Many(v)) if v.len() == 2));
        let err = serde_json::from_str::<Text>("7").err().unwrap().to_string();
        assert!(err.contains("expected a string or an array"), "{err}");
        let err = serde_json::from_str::<Text>("[7]")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("expected a string"), "{err}");
    }
}
