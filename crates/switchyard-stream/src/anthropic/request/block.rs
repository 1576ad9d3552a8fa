//! Anthropic content blocks, read member by member.
//!
//! A block is an object whose `type` member names its kind. serde's derive for such an
//! internally tagged enum (`#[serde(tag = "type")]`) first reads the whole object into a
//! buffer of its own (an allocated tree of its members) and types the members from there,
//! where a [`RawValue`] cannot be taken: a `tool_use` block's `input` could only be read as
//! a `Value`, and writing that again loses what the client wrote (an integer beyond 64
//! bits, `1.0`). The visitors here read a block straight from the JSON, `input` as the
//! client's text, and answer every body as that derive did (the same blocks accepted, with
//! the same values; the same errors, at the same paths):
//!
//! - The derive typed a block's members only once it had read the whole block (the tag may
//!   come last): a member of the wrong type, a repeated member or a missing one is reported
//!   when the block ends, the first in member order among the members of the block's kind;
//!   a JSON error anywhere in the block comes first. For a block in a message's or the
//!   system prompt's list, a tag of the wrong type and a repeated tag were reported as they
//!   were read; for what is inside a block (a tool result's blocks, an image's `source`),
//!   everything was typed from the buffer, where a tag may also be a variant's index
//!   (`"type": 1`).
//! - The derive also took a block written as an array: the tag, then the members in
//!   declaration order (`["text", "hi"]`).
//! - Values are read as the buffer was filled (`deserialize_any`), so what serde_json
//!   refuses there (a lone surrogate, a number beyond `f64`, nesting beyond its limit) is
//!   refused the same way, at the same place. `input` is read as text and then parsed:
//!   text serde_json refuses is refused as before, but the error names `input` rather than
//!   a line and column.

use std::fmt;
use std::marker::PhantomData;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, Error as _, Expected, MapAccess, SeqAccess,
    Unexpected, Visitor,
};
use serde_json::value::RawValue;
use switchyard_core::{ParsedArguments, parse_arguments_text};

use crate::open_object::Key;

/// A member's value, or the message the derive refused it with, kept until the block ends.
type Checked<T> = Result<T, String>;

/// The most containers serde_json has open at once (its recursion limit is 128).
const MAX_NESTING: usize = 127;

/// A message's `content` or the `system` prompt: a string or a list of blocks.
#[derive(Debug)]
pub(super) enum Content {
    Text(String),
    Blocks(Vec<Block>),
}

/// The content blocks Switchyard models; any other type (`document`, `server_tool_use`,
/// `search_result`, ...) is [`Block::Other`]: skipped when translating to another API, it
/// reaches an Anthropic target untouched through
/// [`ChatRequest::native_body`](switchyard_core::ChatRequest::native_body).
#[derive(Debug)]
pub(super) enum Block {
    Text {
        text: String,
    },
    Image {
        source: ImageSource,
    },
    ToolUse {
        id: String,
        name: String,
        input: Input,
    },
    ToolResult {
        tool_use_id: String,
        content: Option<Content>,
        is_error: Option<bool>,
    },
    Thinking {
        thinking: String,
        signature: Option<String>,
    },
    RedactedThinking {
        data: String,
    },
    Other,
}

/// An image block's `source`.
#[derive(Debug)]
pub(super) enum ImageSource {
    Base64 {
        media_type: Option<String>,
        data: String,
    },
    Url {
        url: String,
    },
    /// A Files API upload (`file_id`): only an Anthropic upstream can resolve it.
    File,
    Other,
}

/// A `tool_use` block's `input`.
#[derive(Debug, Default)]
pub(super) enum Input {
    /// An object: the map, and the client's text when writing the map again would not give
    /// it back ([`switchyard_core::ToolCall::raw_arguments`]).
    Object(ParsedArguments),
    /// `null`, or no `input`: no arguments.
    #[default]
    Null,
    /// Any other JSON value (refused where the call is used: a message's blocks).
    NotObject,
}

/// A message's `content` (`DEPTH` 5: its blocks are the fifth container open in the body)
/// or the `system` prompt (3).
pub(super) struct TopContent<const DEPTH: usize>(pub(super) Content);

impl<'de, const DEPTH: usize> Deserialize<'de> for TopContent<DEPTH> {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(TopVisitor::<DEPTH>)
    }
}

struct TopVisitor<const DEPTH: usize>;

impl<'de, const DEPTH: usize> Visitor<'de> for TopVisitor<DEPTH> {
    type Value = TopContent<DEPTH>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(TopContent(Content::Text(v.to_owned())))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
        Ok(TopContent(Content::Text(v)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        match blocks(seq, DEPTH, true)? {
            Ok(blocks) => Ok(TopContent(Content::Blocks(blocks))),
            Err(why) => Err(A::Error::custom(why)),
        }
    }
}

/// Reads a list of blocks `depth` containers deep, `direct`ly in a message or the system
/// prompt or else inside a block; a block the derive refused ends the list (the rest is
/// still read, as the derive had it in its buffer).
fn blocks<'de, A: SeqAccess<'de>>(
    mut seq: A,
    depth: usize,
    direct: bool,
) -> Result<Checked<Vec<Block>>, A::Error> {
    let mut blocks = Vec::new();
    while let Some(block) = seq.next_element_seed(TaggedSeed::<Block>::new(depth, direct))? {
        match block {
            Ok(block) => blocks.push(block),
            Err(why) => {
                Skip.visit_seq(seq)?;
                return Ok(Err(why));
            }
        }
    }
    Ok(Ok(blocks))
}

// The derive's messages, worded as serde_json words them (`null`, floats as ryu writes
// them): its errors were serde_json's.

fn wrong_type(unexpected: Unexpected<'_>, expected: &dyn Expected) -> String {
    serde_json::Error::invalid_type(unexpected, expected).to_string()
}

fn wrong_length(len: usize, expected: &dyn Expected) -> String {
    serde_json::Error::invalid_length(len, expected).to_string()
}

fn missing(field: &'static str) -> String {
    serde_json::Error::missing_field(field).to_string()
}

fn repeated(field: &'static str) -> String {
    serde_json::Error::duplicate_field(field).to_string()
}

/// What serde says is left in an array the derive read fewer elements from.
struct InSequence(usize);

impl Expected for InSequence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 1 {
            f.write_str("1 element in sequence")
        } else {
            write!(f, "{} elements in sequence", self.0)
        }
    }
}

/// `visit_*` methods for scalar types a visitor does not take: each gives `self.wrong(..)`,
/// the derive's message for that type.
macro_rules! refuse {
    ($($visit:ident($ty:ty) => $unexpected:ident),* $(,)?) => {
        $(
            fn $visit<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
                self.wrong(Unexpected::$unexpected(v))
            }
        )*
    };
}

/// Reads any value and drops it, checking it as serde_json checks a value it keeps
/// (`IgnoredAny` skips strings and numbers without decoding them).
struct Skip;

impl<'de> DeserializeSeed<'de> for Skip {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<(), E> {
        Ok(())
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<(), E> {
        Ok(())
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<(), E> {
        Ok(())
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<(), E> {
        Ok(())
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<(), E> {
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        Ok(())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq.next_element_seed(Skip)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while map.next_key_seed(Skip)?.is_some() {
            map.next_value_seed(Skip)?;
        }
        Ok(())
    }
}

/// Any JSON text serde_json would read (see [`Skip`]).
struct Readable;

impl<'de> Deserialize<'de> for Readable {
    fn deserialize<D: Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_any(Skip).map(|()| Readable)
    }
}

/// A member of a plain type (a string, an optional string or flag) read from any JSON
/// value; a value of another type is the derive's message, not an error yet.
trait Plain: Sized {
    /// What serde's visitor for the type expects (`a string`).
    const EXPECTING: &'static str;

    fn from_str(_: &str) -> Option<Self> {
        None
    }

    fn from_bool(_: bool) -> Option<Self> {
        None
    }

    fn from_null() -> Option<Self> {
        None
    }
}

impl Plain for String {
    const EXPECTING: &'static str = "a string";

    fn from_str(v: &str) -> Option<Self> {
        Some(v.to_owned())
    }
}

impl Plain for Option<String> {
    const EXPECTING: &'static str = "a string";

    fn from_str(v: &str) -> Option<Self> {
        Some(Some(v.to_owned()))
    }

    fn from_null() -> Option<Self> {
        Some(None)
    }
}

impl Plain for Option<bool> {
    const EXPECTING: &'static str = "a boolean";

    fn from_bool(v: bool) -> Option<Self> {
        Some(Some(v))
    }

    fn from_null() -> Option<Self> {
        Some(None)
    }
}

struct PlainSeed<T>(PhantomData<T>);

fn plain<T: Plain>() -> PlainSeed<T> {
    PlainSeed(PhantomData)
}

impl<T: Plain> PlainSeed<T> {
    fn wrong<E>(self, unexpected: Unexpected<'_>) -> Result<Checked<T>, E> {
        Ok(Err(wrong_type(unexpected, &T::EXPECTING)))
    }
}

impl<'de, T: Plain> DeserializeSeed<'de> for PlainSeed<T> {
    type Value = Checked<T>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Checked<T>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, T: Plain> Visitor<'de> for PlainSeed<T> {
    type Value = Checked<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    refuse!(visit_i64(i64) => Signed, visit_u64(u64) => Unsigned, visit_f64(f64) => Float);

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Checked<T>, E> {
        match T::from_bool(v) {
            Some(value) => Ok(Ok(value)),
            None => self.wrong(Unexpected::Bool(v)),
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked<T>, E> {
        match T::from_str(v) {
            Some(value) => Ok(Ok(value)),
            None => self.wrong(Unexpected::Str(v)),
        }
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked<T>, E> {
        match T::from_null() {
            Some(value) => Ok(Ok(value)),
            None => self.wrong(Unexpected::Unit),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Checked<T>, A::Error> {
        Skip.visit_seq(seq)?;
        self.wrong(Unexpected::Seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Checked<T>, A::Error> {
        Skip.visit_map(map)?;
        self.wrong(Unexpected::Map)
    }
}

/// A `type` member: the index of the kind it names in `kinds` (declaration order), or
/// `kinds.len()` for any other (the enum's `#[serde(other)]` variant). `direct`: a block
/// in a list, whose tag serde_json read itself (as a string, errors at once); else the tag
/// came from the derive's buffer (a string or a variant index, errors kept).
#[derive(Clone, Copy)]
struct TagSeed {
    kinds: &'static [&'static str],
    direct: bool,
}

impl TagSeed {
    fn wrong<E: de::Error>(self, unexpected: Unexpected<'_>) -> Result<Checked<usize>, E> {
        if self.direct {
            Err(E::invalid_type(unexpected, &self))
        } else {
            Ok(Err(wrong_type(unexpected, &self)))
        }
    }
}

impl<'de> DeserializeSeed<'de> for TagSeed {
    type Value = Checked<usize>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Checked<usize>, D::Error> {
        if self.direct {
            de.deserialize_identifier(self)
        } else {
            de.deserialize_any(self)
        }
    }
}

impl<'de> Visitor<'de> for TagSeed {
    type Value = Checked<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("variant identifier")
    }

    refuse!(visit_bool(bool) => Bool, visit_i64(i64) => Signed, visit_f64(f64) => Float);

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked<usize>, E> {
        let other = self.kinds.len();
        Ok(Ok(self.kinds.iter().position(|k| *k == v).unwrap_or(other)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Checked<usize>, E> {
        let other = self.kinds.len();
        Ok(Ok(usize::try_from(v).map_or(other, |i| i.min(other))))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked<usize>, E> {
        self.wrong(Unexpected::Unit)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Checked<usize>, A::Error> {
        Skip.visit_seq(seq)?;
        self.wrong(Unexpected::Seq)
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Checked<usize>, A::Error> {
        Skip.visit_map(map)?;
        self.wrong(Unexpected::Map)
    }
}

/// One field's members in an object being read: the first one's value (or the message it
/// was refused with) and where it was, and where the field was repeated first.
struct Slot<T> {
    first: Option<(u32, Checked<T>)>,
    repeat: Option<u32>,
}

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot {
            first: None,
            repeat: None,
        }
    }
}

impl<T> Slot<T> {
    /// Reads the member at index `at` with `seed` (a repeat is only checked as JSON, as the
    /// derive refused it before reading it).
    fn read<'de, A, S>(&mut self, at: u32, map: &mut A, seed: S) -> Result<(), A::Error>
    where
        A: MapAccess<'de>,
        S: DeserializeSeed<'de, Value = Checked<T>>,
    {
        if self.first.is_none() {
            self.first = Some((at, map.next_value_seed(seed)?));
        } else {
            map.next_value_seed(Skip)?;
            self.repeat.get_or_insert(at);
        }
        Ok(())
    }

    /// Why the derive refused the field `name`, and at which member: its first value, else
    /// its repeat.
    fn failure(&mut self, name: &'static str) -> Option<(u32, String)> {
        match &mut self.first {
            Some((at, Err(why))) => Some((*at, std::mem::take(why))),
            _ => self.repeat.map(|at| (at, repeated(name))),
        }
    }

    /// The value of a field without a default.
    fn required(self, name: &'static str) -> Checked<T> {
        match self.first {
            Some((_, value)) => value,
            None => Err(missing(name)),
        }
    }

    /// The value of a field with a default.
    fn or_default(self) -> T
    where
        T: Default,
    {
        self.first
            .and_then(|(_, value)| value.ok())
            .unwrap_or_default()
    }
}

/// The first failure in member order of an object's fields (see [`Slot::failure`]).
fn first_failure<const N: usize>(failures: [Option<(u32, String)>; N]) -> Checked<()> {
    match failures.into_iter().flatten().min_by_key(|(at, _)| *at) {
        Some((_, why)) => Err(why),
        None => Ok(()),
    }
}

/// The elements after the tag of a value written as an array, read as the derive read
/// them: each field in declaration order (a missing one is an error unless it has a
/// default), then nothing may be left.
struct Rest<A> {
    seq: A,
    /// Elements read.
    taken: usize,
    /// Fields asked for.
    fields: usize,
    ended: bool,
    failure: Option<String>,
}

impl<'de, A: SeqAccess<'de>> Rest<A> {
    fn new(seq: A) -> Self {
        Rest {
            seq,
            taken: 0,
            fields: 0,
            ended: false,
            failure: None,
        }
    }

    /// The next field's element; `None` when the array has ended or the value has failed.
    fn next<T, S>(&mut self, seed: S) -> Result<Option<T>, A::Error>
    where
        S: DeserializeSeed<'de, Value = Checked<T>>,
    {
        self.fields += 1;
        if self.ended || self.failure.is_some() {
            return Ok(None);
        }
        match self.seq.next_element_seed(seed)? {
            None => {
                self.ended = true;
                Ok(None)
            }
            Some(value) => {
                self.taken += 1;
                match value {
                    Ok(value) => Ok(Some(value)),
                    Err(why) => {
                        self.failure = Some(why);
                        Ok(None)
                    }
                }
            }
        }
    }

    /// The next field's element, which the value cannot do without (`expecting`: the
    /// derive's words for the value).
    fn required<T, S>(&mut self, seed: S, expecting: &'static str) -> Result<Option<T>, A::Error>
    where
        S: DeserializeSeed<'de, Value = Checked<T>>,
    {
        let index = self.fields;
        let value = self.next(seed)?;
        if value.is_none() && self.failure.is_none() {
            self.failure = Some(wrong_length(index, &expecting));
        }
        Ok(value)
    }

    /// Reads what is left; `value` (from the fields), or why the derive refused it.
    fn finish<T>(mut self, value: Option<T>) -> Result<Checked<T>, A::Error> {
        let mut left = 0;
        if !self.ended {
            while self.seq.next_element_seed(Skip)?.is_some() {
                left += 1;
            }
        }
        Ok(match (self.failure, value) {
            (Some(why), _) => Err(why),
            (None, _) if left > 0 => Err(wrong_length(self.taken + left, &InSequence(self.taken))),
            (None, Some(value)) => Ok(value),
            // Not reached: a field that is missing or refused sets `failure`.
            (None, None) => Err(wrong_length(self.taken, &InSequence(self.fields))),
        })
    }
}

/// An internally tagged enum, read as its derive read it (see the module doc).
trait Tagged: Sized {
    /// The derive's words for the type in its messages.
    const EXPECTING: &'static str;
    /// The kinds a tag names, in declaration order; `KINDS.len()` is any other kind.
    const KINDS: &'static [&'static str];
    /// The members read so far.
    type Members: Default;

    /// Reads the member `key`, the `at`th one that is not the tag; when the kind is known
    /// already, only its members are typed (the rest are checked as JSON only). `depth`:
    /// the containers open in the body, this object's included.
    fn member<'de, A: MapAccess<'de>>(
        members: &mut Self::Members,
        key: &str,
        at: u32,
        kind: Option<usize>,
        depth: usize,
        map: &mut A,
    ) -> Result<(), A::Error>;

    /// The value of kind `kind`, or the first reason the derive refused its members.
    fn finish(members: Self::Members, kind: usize) -> Checked<Self>;

    /// The value of kind `kind` from the elements after the tag (`None` when `rest` failed).
    fn elements<'de, A: SeqAccess<'de>>(
        kind: usize,
        rest: &mut Rest<A>,
        depth: usize,
    ) -> Result<Option<Self>, A::Error>;
}

/// Reads a [`Tagged`] value `depth` containers deep (its own included); `direct`: in a
/// list the derive read from the JSON itself (errors are errors), else inside a block (the
/// reason the derive refused it is the value, to be reported when the block ends).
struct TaggedSeed<T> {
    depth: usize,
    direct: bool,
    marker: PhantomData<T>,
}

impl<T: Tagged> TaggedSeed<T> {
    fn new(depth: usize, direct: bool) -> Self {
        TaggedSeed {
            depth,
            direct,
            marker: PhantomData,
        }
    }

    fn tag(&self) -> TagSeed {
        TagSeed {
            kinds: T::KINDS,
            direct: self.direct,
        }
    }

    fn settle<E: de::Error>(&self, value: Checked<T>) -> Result<Checked<T>, E> {
        match value {
            Err(why) if self.direct => Err(E::custom(why)),
            value => Ok(value),
        }
    }

    fn wrong<E: de::Error>(&self, unexpected: Unexpected<'_>) -> Result<Checked<T>, E> {
        self.settle(Err(wrong_type(unexpected, &T::EXPECTING)))
    }
}

impl<'de, T: Tagged> DeserializeSeed<'de> for TaggedSeed<T> {
    type Value = Checked<T>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Checked<T>, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de, T: Tagged> Visitor<'de> for TaggedSeed<T> {
    type Value = Checked<T>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    refuse!(
        visit_bool(bool) => Bool,
        visit_i64(i64) => Signed,
        visit_u64(u64) => Unsigned,
        visit_f64(f64) => Float,
    );

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Checked<T>, E> {
        self.wrong(Unexpected::Str(v))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Checked<T>, E> {
        self.wrong(Unexpected::Unit)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked<T>, A::Error> {
        let mut tag: Option<Checked<usize>> = None;
        // Inside a block, the first reason a tag was refused (its type, or a repeat).
        let mut tag_failure = None;
        let mut members = T::Members::default();
        let mut at = 0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.as_str() != "type" {
                let kind = match &tag {
                    None => None,
                    Some(Ok(kind)) => Some(*kind),
                    Some(Err(_)) => Some(T::KINDS.len()),
                };
                T::member(&mut members, key.as_str(), at, kind, self.depth, &mut map)?;
                at = at.saturating_add(1);
            } else if tag.is_some() {
                if self.direct {
                    return Err(A::Error::duplicate_field("type"));
                }
                map.next_value_seed(Skip)?;
                tag_failure.get_or_insert_with(|| repeated("type"));
            } else {
                let read = map.next_value_seed(self.tag())?;
                if let Err(why) = &read {
                    tag_failure = Some(why.clone());
                }
                tag = Some(read);
            }
        }
        let value = match (tag_failure, tag) {
            (Some(why), _) => Err(why),
            (None, Some(Ok(kind))) => T::finish(members, kind),
            (None, _) => Err(missing("type")),
        };
        self.settle(value)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked<T>, A::Error> {
        let Some(tag) = seq.next_element_seed(self.tag())? else {
            return self.settle(Err(missing("type")));
        };
        let mut rest = Rest::new(seq);
        let value = match tag {
            Ok(kind) => T::elements(kind, &mut rest, self.depth)?,
            Err(why) => {
                rest.failure = Some(why);
                None
            }
        };
        let value = rest.finish(value)?;
        self.settle(value)
    }
}

const TEXT: usize = 0;
const IMAGE: usize = 1;
const TOOL_USE: usize = 2;
const TOOL_RESULT: usize = 3;
const THINKING: usize = 4;
const REDACTED_THINKING: usize = 5;

#[derive(Default)]
struct BlockMembers {
    text: Slot<String>,
    source: Slot<ImageSource>,
    id: Slot<String>,
    name: Slot<String>,
    input: Slot<Input>,
    tool_use_id: Slot<String>,
    content: Slot<Option<Content>>,
    is_error: Slot<Option<bool>>,
    thinking: Slot<String>,
    signature: Slot<Option<String>>,
    data: Slot<String>,
}

impl Tagged for Block {
    const EXPECTING: &'static str = "internally tagged enum WireBlock";
    const KINDS: &'static [&'static str] = &[
        "text",
        "image",
        "tool_use",
        "tool_result",
        "thinking",
        "redacted_thinking",
    ];
    type Members = BlockMembers;

    fn member<'de, A: MapAccess<'de>>(
        m: &mut BlockMembers,
        key: &str,
        at: u32,
        kind: Option<usize>,
        depth: usize,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let wants = |of: usize| kind.is_none_or(|kind| kind == of);
        match key {
            "text" if wants(TEXT) => m.text.read(at, map, plain()),
            "source" if wants(IMAGE) => m.source.read(at, map, TaggedSeed::new(depth + 1, false)),
            "id" if wants(TOOL_USE) => m.id.read(at, map, plain()),
            "name" if wants(TOOL_USE) => m.name.read(at, map, plain()),
            "input" if wants(TOOL_USE) => m.input.read(at, map, InputSeed { depth }),
            "tool_use_id" if wants(TOOL_RESULT) => m.tool_use_id.read(at, map, plain()),
            "content" if wants(TOOL_RESULT) => {
                m.content.read(at, map, ContentSeed { depth: depth + 2 })
            }
            "is_error" if wants(TOOL_RESULT) => m.is_error.read(at, map, plain()),
            "thinking" if wants(THINKING) => m.thinking.read(at, map, plain()),
            "signature" if wants(THINKING) => m.signature.read(at, map, plain()),
            "data" if wants(REDACTED_THINKING) => m.data.read(at, map, plain()),
            _ => map.next_value_seed(Skip),
        }
    }

    fn finish(mut m: BlockMembers, kind: usize) -> Checked<Block> {
        Ok(match kind {
            TEXT => {
                first_failure([m.text.failure("text")])?;
                Block::Text {
                    text: m.text.required("text")?,
                }
            }
            IMAGE => {
                first_failure([m.source.failure("source")])?;
                Block::Image {
                    source: m.source.required("source")?,
                }
            }
            TOOL_USE => {
                first_failure([
                    m.id.failure("id"),
                    m.name.failure("name"),
                    m.input.failure("input"),
                ])?;
                Block::ToolUse {
                    id: m.id.required("id")?,
                    name: m.name.required("name")?,
                    input: m.input.or_default(),
                }
            }
            TOOL_RESULT => {
                first_failure([
                    m.tool_use_id.failure("tool_use_id"),
                    m.content.failure("content"),
                    m.is_error.failure("is_error"),
                ])?;
                Block::ToolResult {
                    tool_use_id: m.tool_use_id.required("tool_use_id")?,
                    content: m.content.or_default(),
                    is_error: m.is_error.or_default(),
                }
            }
            THINKING => {
                first_failure([
                    m.thinking.failure("thinking"),
                    m.signature.failure("signature"),
                ])?;
                Block::Thinking {
                    thinking: m.thinking.or_default(),
                    signature: m.signature.or_default(),
                }
            }
            REDACTED_THINKING => {
                first_failure([m.data.failure("data")])?;
                Block::RedactedThinking {
                    data: m.data.required("data")?,
                }
            }
            _ => Block::Other,
        })
    }

    fn elements<'de, A: SeqAccess<'de>>(
        kind: usize,
        rest: &mut Rest<A>,
        depth: usize,
    ) -> Result<Option<Block>, A::Error> {
        Ok(match kind {
            TEXT => rest
                .required(plain(), "struct variant WireBlock::Text with 1 element")?
                .map(|text| Block::Text { text }),
            IMAGE => rest
                .required(
                    TaggedSeed::new(depth + 1, false),
                    "struct variant WireBlock::Image with 1 element",
                )?
                .map(|source| Block::Image { source }),
            TOOL_USE => {
                const EXPECTING: &str = "struct variant WireBlock::ToolUse with 3 elements";
                let id = rest.required(plain(), EXPECTING)?;
                let name = rest.required(plain(), EXPECTING)?;
                let input = rest.next(InputSeed { depth })?;
                id.zip(name).map(|(id, name)| Block::ToolUse {
                    id,
                    name,
                    input: input.unwrap_or_default(),
                })
            }
            TOOL_RESULT => {
                const EXPECTING: &str = "struct variant WireBlock::ToolResult with 3 elements";
                let tool_use_id = rest.required(plain(), EXPECTING)?;
                let content = rest.next(ContentSeed { depth: depth + 2 })?;
                let is_error = rest.next(plain())?;
                tool_use_id.map(|tool_use_id| Block::ToolResult {
                    tool_use_id,
                    content: content.flatten(),
                    is_error: is_error.flatten(),
                })
            }
            THINKING => {
                let thinking = rest.next(plain())?;
                let signature = rest.next(plain())?;
                Some(Block::Thinking {
                    thinking: thinking.unwrap_or_default(),
                    signature: signature.flatten(),
                })
            }
            REDACTED_THINKING => rest
                .required(
                    plain(),
                    "struct variant WireBlock::RedactedThinking with 1 element",
                )?
                .map(|data| Block::RedactedThinking { data }),
            _ => Some(Block::Other),
        })
    }
}

const BASE64: usize = 0;
const URL: usize = 1;
const FILE: usize = 2;

#[derive(Default)]
struct SourceMembers {
    media_type: Slot<Option<String>>,
    data: Slot<String>,
    url: Slot<String>,
}

impl Tagged for ImageSource {
    const EXPECTING: &'static str = "internally tagged enum WireImageSource";
    const KINDS: &'static [&'static str] = &["base64", "url", "file"];
    type Members = SourceMembers;

    fn member<'de, A: MapAccess<'de>>(
        m: &mut SourceMembers,
        key: &str,
        at: u32,
        kind: Option<usize>,
        _depth: usize,
        map: &mut A,
    ) -> Result<(), A::Error> {
        let wants = |of: usize| kind.is_none_or(|kind| kind == of);
        match key {
            "media_type" if wants(BASE64) => m.media_type.read(at, map, plain()),
            "data" if wants(BASE64) => m.data.read(at, map, plain()),
            "url" if wants(URL) => m.url.read(at, map, plain()),
            _ => map.next_value_seed(Skip),
        }
    }

    fn finish(mut m: SourceMembers, kind: usize) -> Checked<ImageSource> {
        Ok(match kind {
            BASE64 => {
                first_failure([m.media_type.failure("media_type"), m.data.failure("data")])?;
                ImageSource::Base64 {
                    media_type: m.media_type.or_default(),
                    data: m.data.required("data")?,
                }
            }
            URL => {
                first_failure([m.url.failure("url")])?;
                ImageSource::Url {
                    url: m.url.required("url")?,
                }
            }
            FILE => ImageSource::File,
            _ => ImageSource::Other,
        })
    }

    fn elements<'de, A: SeqAccess<'de>>(
        kind: usize,
        rest: &mut Rest<A>,
        _depth: usize,
    ) -> Result<Option<ImageSource>, A::Error> {
        Ok(match kind {
            BASE64 => {
                let media_type = rest.next(plain())?;
                let data = rest.required(
                    plain(),
                    "struct variant WireImageSource::Base64 with 2 elements",
                )?;
                data.map(|data| ImageSource::Base64 {
                    media_type: media_type.flatten(),
                    data,
                })
            }
            URL => rest
                .required(
                    plain(),
                    "struct variant WireImageSource::Url with 1 element",
                )?
                .map(|url| ImageSource::Url { url }),
            FILE => Some(ImageSource::File),
            _ => Some(ImageSource::Other),
        })
    }
}

/// A tool result's `content` inside a block (`null`, a string or a list of blocks `depth`
/// containers deep).
struct ContentSeed {
    depth: usize,
}

impl ContentSeed {
    fn wrong<E>(self, unexpected: Unexpected<'_>) -> Result<Checked<Option<Content>>, E> {
        Ok(Err(wrong_type(unexpected, &"a string or an array")))
    }
}

impl<'de> DeserializeSeed<'de> for ContentSeed {
    type Value = Checked<Option<Content>>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for ContentSeed {
    type Value = Checked<Option<Content>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array")
    }

    refuse!(
        visit_bool(bool) => Bool,
        visit_i64(i64) => Signed,
        visit_u64(u64) => Unsigned,
        visit_f64(f64) => Float,
    );

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Ok(None))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Some(Content::Text(v.to_owned()))))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        Ok(blocks(seq, self.depth, false)?.map(|blocks| Some(Content::Blocks(blocks))))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        Skip.visit_map(map)?;
        self.wrong(Unexpected::Map)
    }
}

/// A `tool_use` block's `input`, in a block `depth` containers deep: read as the client's
/// text, then parsed ([`Input::read`]).
struct InputSeed {
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for InputSeed {
    type Value = Checked<Input>;

    fn deserialize<D: Deserializer<'de>>(self, de: D) -> Result<Checked<Input>, D::Error> {
        let raw = <&'de RawValue>::deserialize(de)?;
        Input::read(raw.get(), MAX_NESTING.saturating_sub(self.depth))
            .map(Ok)
            .map_err(D::Error::custom)
    }
}

impl Input {
    /// The input written as `text`, nesting at most `allowed` containers; an error (the
    /// words serde_json has for it) for text serde_json would not read there: the derive
    /// read `input` into a `Value`, so that text was refused.
    fn read(text: &str, allowed: usize) -> Result<Input, String> {
        if nests_deeper(text, allowed) {
            return Err("recursion limit exceeded".to_owned());
        }
        if text.starts_with('{') {
            return parse_arguments_text(text)
                .map(Input::Object)
                .ok_or_else(|| unreadable(text));
        }
        if text == "null" {
            return Ok(Input::Null);
        }
        match serde_json::from_str::<Readable>(text) {
            Ok(Readable) => Ok(Input::NotObject),
            Err(e) => Err(without_position(&e)),
        }
    }
}

/// Why serde_json would not read `text`.
fn unreadable(text: &str) -> String {
    match serde_json::from_str::<Readable>(text) {
        Ok(Readable) => "expected a JSON object".to_owned(),
        Err(e) => without_position(&e),
    }
}

fn without_position(e: &serde_json::Error) -> String {
    let mut message = e.to_string();
    if let Some(cut) = message.rfind(" at line ") {
        message.truncate(cut);
    }
    message
}

/// Whether JSON `text` has more than `allowed` containers open at once.
fn nests_deeper(text: &str, allowed: usize) -> bool {
    let bytes = text.as_bytes();
    if memchr::memchr2_iter(b'{', b'[', bytes).count() <= allowed {
        return false;
    }
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        i += 1;
        match b {
            b'"' => loop {
                let tail = bytes.get(i..).unwrap_or_default();
                match memchr::memchr2(b'"', b'\\', tail) {
                    Some(j) if tail.get(j) == Some(&b'\\') => i += j + 2,
                    Some(j) => {
                        i += j + 1;
                        break;
                    }
                    None => return false,
                }
            },
            b'{' | b'[' => {
                depth += 1;
                if depth > allowed {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// The blocks read here against serde's derive for the enum they replaced (kept only here):
/// any body gives the same blocks, or the same error at the same path.
#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::Deserialize;
    use serde_json::{Map, Value, json};

    use super::super::{WireRequest, WireRole, WireThinking, WireTool, WireToolChoice};
    use super::{Block, Content, ImageSource, Input};
    use crate::request_error::{RequestError, decode_body};

    // The request as it was read before, blocks included (the derive's messages name
    // the enums, so they keep their names).

    #[allow(dead_code)]
    struct OldRequest {
        model: String,
        messages: Vec<OldMessage>,
        system: Option<OldContent>,
        tools: Vec<WireTool>,
        tool_choice: Option<WireToolChoice>,
        max_tokens: u32,
        stop_sequences: Vec<String>,
        temperature: Option<f64>,
        top_p: Option<f64>,
        top_k: Option<u32>,
        stream: Option<bool>,
        thinking: Option<WireThinking>,
        extra: Map<String, Value>,
    }

    crate::open_object::open_object!(OldRequest {
        model: required,
        messages: nullable,
        system: optional,
        tools: nullable,
        tool_choice: optional,
        max_tokens: required,
        stop_sequences: nullable,
        temperature: optional,
        top_p: optional,
        top_k: optional,
        stream: optional,
        thinking: optional,
    } extra: extra);

    #[derive(Deserialize)]
    struct OldMessage {
        #[allow(dead_code)]
        role: WireRole,
        content: OldContent,
    }

    enum OldContent {
        Text(String),
        Blocks(Vec<WireBlock>),
    }

    crate::open_object::string_or_list!(OldContent::Text | Blocks);

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum WireBlock {
        Text {
            text: String,
        },
        Image {
            source: WireImageSource,
        },
        ToolUse {
            id: String,
            name: String,
            #[serde(default)]
            input: Value,
        },
        ToolResult {
            tool_use_id: String,
            #[serde(default)]
            content: Option<OldContent>,
            #[serde(default)]
            is_error: Option<bool>,
        },
        Thinking {
            #[serde(default)]
            thinking: String,
            #[serde(default)]
            signature: Option<String>,
        },
        RedactedThinking {
            data: String,
        },
        #[serde(other)]
        Other,
    }

    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "snake_case")]
    enum WireImageSource {
        Base64 {
            #[serde(default)]
            media_type: Option<String>,
            data: String,
        },
        Url {
            url: String,
        },
        File,
        #[serde(other)]
        Other,
    }

    // Both as JSON, to compare.

    fn old_content(content: OldContent) -> Value {
        match content {
            OldContent::Text(text) => json!({"text": text}),
            OldContent::Blocks(blocks) => Value::Array(blocks.into_iter().map(old_block).collect()),
        }
    }

    fn old_block(block: WireBlock) -> Value {
        match block {
            WireBlock::Text { text } => json!({"text": text}),
            WireBlock::Image { source } => json!({"image": match source {
                WireImageSource::Base64 { media_type, data } => json!({"base64": [media_type, data]}),
                WireImageSource::Url { url } => json!({"url": url}),
                WireImageSource::File => json!("file"),
                WireImageSource::Other => json!("other"),
            }}),
            WireBlock::ToolUse { id, name, input } => json!({"tool_use": [id, name, match input {
                Value::Object(map) => json!({"object": map}),
                Value::Null => json!("null"),
                _ => json!("not an object"),
            }]}),
            WireBlock::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => json!({"tool_result": [tool_use_id, content.map(old_content), is_error]}),
            WireBlock::Thinking {
                thinking,
                signature,
            } => json!({"thinking": [thinking, signature]}),
            WireBlock::RedactedThinking { data } => json!({"redacted_thinking": data}),
            WireBlock::Other => json!("other"),
        }
    }

    fn new_content(content: Content) -> Value {
        match content {
            Content::Text(text) => json!({"text": text}),
            Content::Blocks(blocks) => Value::Array(blocks.into_iter().map(new_block).collect()),
        }
    }

    fn new_block(block: Block) -> Value {
        match block {
            Block::Text { text } => json!({"text": text}),
            Block::Image { source } => json!({"image": match source {
                ImageSource::Base64 { media_type, data } => json!({"base64": [media_type, data]}),
                ImageSource::Url { url } => json!({"url": url}),
                ImageSource::File => json!("file"),
                ImageSource::Other => json!("other"),
            }}),
            Block::ToolUse { id, name, input } => json!({"tool_use": [id, name, match input {
                Input::Object((map, raw)) => {
                    if let Some(raw) = raw {
                        // Kept only when writing the map would not give it back.
                        assert_eq!(serde_json::from_str::<Value>(&raw).ok(), Some(Value::Object(map.clone())));
                        assert_ne!(serde_json::to_string(&map).ok().as_deref(), Some(&*raw));
                    }
                    json!({"object": map})
                }
                Input::Null => json!("null"),
                Input::NotObject => json!("not an object"),
            }]}),
            Block::ToolResult {
                tool_use_id,
                content,
                is_error,
            } => json!({"tool_result": [tool_use_id, content.map(new_content), is_error]}),
            Block::Thinking {
                thinking,
                signature,
            } => json!({"thinking": [thinking, signature]}),
            Block::RedactedThinking { data } => json!({"redacted_thinking": data}),
            Block::Other => json!("other"),
        }
    }

    fn old(body: &str) -> Result<Value, RequestError> {
        let wire: OldRequest = decode_body(body.as_bytes())?;
        Ok(json!({
            "system": wire.system.map(old_content),
            "messages": wire.messages.into_iter().map(|m| old_content(m.content)).collect::<Vec<_>>(),
        }))
    }

    fn new(body: &str) -> Result<Value, RequestError> {
        let wire: WireRequest = decode_body(body.as_bytes())?;
        Ok(json!({
            "system": wire.system.map(|s| new_content(s.0)),
            "messages": wire.messages.into_iter().map(|m| new_content(m.content.0)).collect::<Vec<_>>(),
        }))
    }

    /// The same outcome, but for `input` text serde_json refuses to read (a lone surrogate,
    /// a number beyond `f64`, nesting beyond its limit): refused with the same words, but
    /// naming the member (`input`, or its place in a block written as an array) rather than
    /// a line and column.
    fn same(body: &str) -> Result<(), String> {
        let (old, new) = (old(body), new(body));
        let documented = matches!(
            (&old, &new),
            (Err(RequestError::InvalidJson { message: was, .. }), Err(RequestError::InvalidField { path, message }))
                if was == message && (path.ends_with(".input") || path.ends_with("[3]"))
        );
        if old == new || documented {
            Ok(())
        } else {
            Err(format!("{body}\n  old: {old:?}\n  new: {new:?}"))
        }
    }

    fn bodies(blocks: &[String]) -> [String; 2] {
        let blocks = blocks.join(",");
        [
            format!(
                r#"{{"model":"m","max_tokens":1,"messages":[{{"role":"user","content":"q"}},{{"role":"assistant","content":[{blocks}]}}]}}"#
            ),
            format!(r#"{{"model":"m","max_tokens":1,"system":[{blocks}],"messages":[]}}"#),
        ]
    }

    // JSON text of blocks, mostly well formed, with every way the derive accepted or
    // refused one within reach.

    fn quoted(s: &str) -> String {
        serde_json::to_string(s).unwrap_or_default()
    }

    fn scalar() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            4 => "[a-z ]{0,4}".prop_map(|s| quoted(&s)),
            1 => Just(r#""a\"\n\u00e9\ud83d\ude00""#.to_owned()),
            1 => prop::sample::select(vec!["null", "true", "false", "0", "7", "-3", "1.0", "2.5e3", "-0"])
                .prop_map(str::to_owned),
            1 => prop::sample::select(vec!["123456789012345678901234567890", "1e400", r#""\ud800""#, r#""\udc00x""#])
                .prop_map(str::to_owned),
        ]
    }

    fn value() -> impl Strategy<Value = String> + Clone {
        scalar().prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[a-c]", inner), 0..4).prop_map(|v| {
                    let members: Vec<String> = v
                        .iter()
                        .map(|(k, v)| format!("{}:{v}", quoted(k)))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    fn tag() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            8 => prop::sample::select(vec![
                "text", "image", "tool_use", "tool_result", "thinking", "redacted_thinking",
                "document", "base64", "url", "file",
            ])
            .prop_map(quoted),
            2 => prop::sample::select(vec![
                "0", "1", "2", "3", "4", "5", "6", "9", "-1", "null", "true", "1.5", r#"["text"]"#, "{}",
            ])
            .prop_map(str::to_owned),
        ]
    }

    fn text() -> impl Strategy<Value = String> + Clone {
        prop_oneof![6 => "[a-z]{0,5}".prop_map(|s| quoted(&s)), 2 => value()]
    }

    fn input() -> impl Strategy<Value = String> + Clone {
        prop_oneof![
            3 => prop::collection::vec(("[a-c]", value()), 0..4).prop_map(|v| {
                let members: Vec<String> = v.iter().map(|(k, v)| format!("{}: {v}", quoted(k))).collect();
                format!("{{{}}}", members.join(" ,"))
            }),
            1 => Just(r#"{"order_id":123456789012345678901234567890,"ratio":1.0}"#.to_owned()),
            1 => value(),
        ]
    }

    fn source() -> impl Strategy<Value = String> + Clone {
        let member = prop_oneof![
            2 => tag().prop_map(|t| ("type", t)),
            3 => (prop::sample::select(vec!["media_type", "data", "url", "file_id", "x"]), text()),
        ];
        prop_oneof![
            4 => (tag(), prop::collection::vec(member, 0..4), any::<prop::sample::Index>(), prop::bool::weighted(0.9))
                .prop_map(|(tag, members, at, tagged)| object(tag, members, at, tagged)),
            1 => (tag(), prop::collection::vec(text(), 0..3)).prop_map(|(tag, rest)| array(tag, rest)),
            1 => scalar(),
        ]
    }

    fn object(
        tag: String,
        mut members: Vec<(&str, String)>,
        at: prop::sample::Index,
        tagged: bool,
    ) -> String {
        if tagged {
            members.insert(at.index(members.len() + 1), ("type", tag));
        }
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", quoted(k)))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    fn array(tag: String, rest: Vec<String>) -> String {
        let mut elements = vec![tag];
        elements.extend(rest);
        format!("[{}]", elements.join(","))
    }

    fn block() -> impl Strategy<Value = String> {
        let flat = block_with(Just("null".to_owned()).boxed());
        flat.prop_recursive(2, 12, 3, |inner| {
            let content = prop_oneof![
                2 => prop::collection::vec(inner, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
                1 => text(),
            ];
            block_with(content.boxed())
        })
    }

    /// A block whose tool-result `content` is drawn from `content`.
    fn block_with(content: BoxedStrategy<String>) -> BoxedStrategy<String> {
        let member = prop_oneof![
            1 => tag().prop_map(|t| ("type", t)),
            6 => (prop::sample::select(vec![
                "text", "id", "name", "tool_use_id", "thinking", "signature", "data", "x", "cache_control",
            ]), text()),
            2 => input().prop_map(|v| ("input", v)),
            2 => source().prop_map(|v| ("source", v)),
            2 => content.clone().prop_map(|v| ("content", v)),
            1 => prop_oneof![Just("true".to_owned()), Just("null".to_owned()), text()].prop_map(|v| ("is_error", v)),
        ];
        let element = prop_oneof![text(), input(), source(), content];
        prop_oneof![
            8 => (tag(), prop::collection::vec(member, 0..5), any::<prop::sample::Index>(), prop::bool::weighted(0.9))
                .prop_map(|(tag, members, at, tagged)| object(tag, members, at, tagged)),
            2 => (tag(), prop::collection::vec(element, 0..4)).prop_map(|(tag, rest)| array(tag, rest)),
            1 => scalar(),
        ]
        .boxed()
    }

    /// A block as a client writes one, its members in any order.
    fn well_formed() -> impl Strategy<Value = String> {
        let word = || "[a-z]{0,5}".prop_map(|s| quoted(&s));
        let source = prop_oneof![
            (word(), word()).prop_map(|(m, d)| vec![
                ("type", quoted("base64")),
                ("media_type", m),
                ("data", d)
            ]),
            word().prop_map(|u| vec![("type", quoted("url")), ("url", u)]),
            word().prop_map(|f| vec![("type", quoted("file")), ("file_id", f)]),
        ]
        .prop_shuffle()
        .prop_map(|members| object_of(&members));
        let inner = prop_oneof![
            word().prop_map(|t| vec![("type", quoted("text")), ("text", t)]),
            source
                .clone()
                .prop_map(|s| vec![("type", quoted("image")), ("source", s)]),
        ]
        .prop_shuffle()
        .prop_map(|members| object_of(&members));
        let content = prop_oneof![
            word(),
            Just("null".to_owned()),
            prop::collection::vec(inner, 0..3).prop_map(|v| format!("[{}]", v.join(","))),
        ];
        let extra = prop_oneof![
            3 => Just(None),
            1 => Just(Some(("cache_control", r#"{"type":"ephemeral"}"#.to_owned()))),
        ];
        let members = prop_oneof![
            word().prop_map(|t| vec![("type", quoted("text")), ("text", t)]),
            source
                .clone()
                .prop_map(|s| vec![("type", quoted("image")), ("source", s)]),
            (word(), word(), prop::option::of(input())).prop_map(|(id, name, input)| {
                let mut m = vec![("type", quoted("tool_use")), ("id", id), ("name", name)];
                m.extend(input.map(|i| ("input", i)));
                m
            }),
            (word(), content, any::<bool>()).prop_map(|(id, content, is_error)| vec![
                ("type", quoted("tool_result")),
                ("tool_use_id", id),
                ("content", content),
                ("is_error", is_error.to_string()),
            ]),
            (word(), word()).prop_map(|(t, s)| vec![
                ("type", quoted("thinking")),
                ("thinking", t),
                ("signature", s)
            ]),
            word().prop_map(|d| vec![("type", quoted("redacted_thinking")), ("data", d)]),
            source.prop_map(|s| vec![
                ("type", quoted("document")),
                ("source", s),
                ("title", "null".to_owned())
            ]),
        ];
        (members, extra)
            .prop_map(|(mut members, extra)| {
                members.extend(extra);
                members
            })
            .prop_shuffle()
            .prop_map(|members| object_of(&members))
    }

    fn object_of(members: &[(&str, String)]) -> String {
        let members: Vec<String> = members
            .iter()
            .map(|(k, v)| format!("{}:{v}", quoted(k)))
            .collect();
        format!("{{{}}}", members.join(","))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn blocks_read_as_the_derive_read_them(
            blocks in prop::collection::vec(prop_oneof![well_formed(), block()], 1..4),
        ) {
            for body in bodies(&blocks) {
                if let Err(diff) = same(&body) {
                    prop_assert!(false, "{}", diff);
                }
            }
        }
    }

    #[test]
    fn nesting_is_bounded_as_it_was() {
        // Around serde_json's limit, in a message, in the system prompt and in a tool
        // result, for `input` (read as text) and for members the derive buffered.
        let nested =
            |n: usize, open: &str, close: &str| format!("{}{}", open.repeat(n), close.repeat(n));
        let mut wrong = Vec::new();
        for n in 116..=128 {
            let objects = format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
            let arrays = nested(n, "[", "]");
            for block in [
                format!(r#"{{"type":"tool_use","id":"t","name":"f","input":{objects}}}"#),
                format!(r#"{{"input":{arrays},"type":"tool_use","id":"t","name":"f"}}"#),
                format!(r#"["tool_use","t","f",{objects}]"#),
                format!(r#"{{"type":"text","text":"a","x":{arrays}}}"#),
                format!(r#"{{"type":"text","text":{arrays}}}"#),
                format!(r#"{{"type":"text","input":{objects},"text":"a"}}"#),
                format!(r#"{{"input":{objects},"type":"text","text":"a"}}"#),
                format!(
                    r#"{{"type":"tool_result","tool_use_id":"t","content":[{{"type":"tool_use","id":"t","name":"f","input":{objects}}}]}}"#
                ),
                format!(
                    r#"{{"type":"tool_result","tool_use_id":"t","content":[{{"type":"tool_result","tool_use_id":"t","content":[{{"input":{objects},"type":"tool_use","id":"t","name":"f"}}]}}]}}"#
                ),
                format!(r#"{{"type":"image","source":{{"type":"url","url":{arrays}}}}}"#),
            ] {
                for body in bodies(&[block]) {
                    if let Err(diff) = same(&body) {
                        wrong.push(diff.chars().take(600).collect::<String>());
                    }
                }
            }
        }
        assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    }
}
