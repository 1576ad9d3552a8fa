#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The Responses response object, written as bytes from a decoded request's [`Echo`] and a
//! shared layout, against the `serde_json::Value` object the encoder built before
//! (`response_object`: the request's echoed parameters as values, as `echo_as_values` in
//! `request.rs`'s tests builds them, with the fixed fields set over them), for random
//! requests and answers.
//!
//! A request is a random subset of the echoed parameters (instructions, max_output_tokens,
//! metadata, parallel_tool_calls, previous_response_id, reasoning, store, temperature, text,
//! tool_choice, tools, top_p, truncation, user), each with a random valid value or `null`:
//! strings with escapes, control characters, unicode (spelled as serde writes them, with
//! every non-ASCII character as `\u` escapes, or with every character so), numbers spelled
//! as `0`, `-0.0`, `1.5`, `1e-3`, large integers, ...; objects with their keys shuffled
//! (the echo keeps a client's order); unknown keys; `stream` true, false, null or absent;
//! the keys themselves sometimes written with escapes; the members in random order with
//! random whitespace. (`metadata` values are strings, as OpenAI requires and the decoder
//! checks; nested objects are in `text`, `tools`, `reasoning` and unknown keys.) The answer is some reasoning and text (in either order), optionally a
//! function or custom tool call (whole or in fragments, ended or closed by `Done`), usage,
//! and any finish reason.
//!
//! Every response object the encoder writes (`response.created`, `response.in_progress`,
//! `response.completed` / `response.incomplete`, and a whole answer's
//! [`ResponsesStreamEncoder::final_response_json`]) is valid JSON, equals the reference as
//! parsed JSON (both texts read by the same parser: serde_json's float reading is not
//! exact, see `parsed`), and is byte for byte the reference serialised, as the unit tests claim
//! (`the_written_response_object_is_the_documented_object`,
//! `a_whole_answer_without_frames_ends_in_the_same_response`,
//! `every_frame_is_the_json_a_value_writes_with_its_type_and_sequence_number`): the top-level
//! keys sorted, the encoder's own objects (items, parts, usage) with sorted keys, and a
//! client's values (metadata, tools, text, tool_choice) in the client's key order, as
//! serde_json writes them with `preserve_order`. The echo itself is member for member the
//! echo of the reference's values ([`Echo::from_map`]), as `the_echo_is_what_the_values_wrote`
//! claims.
//!
//! Every decoded request shares one layout (made once per process, from the first request);
//! any difference between it and a request's own layout would show here as a mismatch. The
//! direct check (`Layout` is private to `encode.rs`) is the unit test
//! `any_decoded_request_shares_the_layout_its_own_keys_make` there.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Value, json};
use switchyard_core::{ChatEvent, FinishReason, Usage};
use switchyard_stream::responses::request::{DecodeOptions, decode_request};
use switchyard_stream::responses::{Echo, ResponseHead, ResponsesStreamEncoder};

// ---------------------------------------------------------------------------------------
// JSON text
// ---------------------------------------------------------------------------------------

/// How a string is spelled in the request's JSON text.
#[derive(Debug, Clone, Copy)]
enum Spelling {
    /// As serde_json writes it.
    Serde,
    /// Every non-ASCII character (and `/`) as an escape.
    NonAscii,
    /// Every character as a `\u` escape.
    All,
}

fn spelling() -> impl Strategy<Value = Spelling> {
    prop_oneof![
        6 => Just(Spelling::Serde),
        2 => Just(Spelling::NonAscii),
        1 => Just(Spelling::All),
    ]
}

/// `text` as a JSON string literal spelled `how`.
fn spell(text: &str, how: Spelling) -> String {
    if let Spelling::Serde = how {
        return serde_json::to_string(text).unwrap();
    }
    let mut out = String::from("\"");
    for c in text.chars() {
        let plain = c.is_ascii() && !c.is_ascii_control();
        match (how, c) {
            (Spelling::NonAscii, '"') => out.push_str("\\\""),
            (Spelling::NonAscii, '\\') => out.push_str("\\\\"),
            (Spelling::NonAscii, '/') => out.push_str("\\/"),
            (Spelling::NonAscii, '\n') => out.push_str("\\n"),
            (Spelling::NonAscii, '\t') => out.push_str("\\t"),
            (Spelling::NonAscii, '\r') => out.push_str("\\r"),
            (Spelling::NonAscii, '\u{8}') => out.push_str("\\b"),
            (Spelling::NonAscii, '\u{c}') => out.push_str("\\f"),
            (Spelling::NonAscii, c) if plain => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for &mut unit in c.encode_utf16(&mut units) {
                    // Both cases of hex digits are JSON.
                    if unit % 2 == 0 {
                        write!(out, "\\u{unit:04x}").unwrap();
                    } else {
                        write!(out, "\\u{unit:04X}").unwrap();
                    }
                }
            }
        }
    }
    out.push('"');
    out
}

/// A string's text: plain, needing escapes, unicode (astral, U+2028, noncharacters), any.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 _.-]{0,12}",
        4 => "[\\x00-\\x1f\"\\\\/a-z é\u{7f}\u{80}\u{2028}\u{2029}\u{fffd}\u{ffff}\u{1f600}ß中]{0,16}",
        1 => "(?s).{0,24}",
    ]
}

/// A JSON string literal.
fn jstr() -> impl Strategy<Value = String> {
    (text(), spelling()).prop_map(|(t, how)| spell(&t, how))
}

/// A key (a known one or any) as a JSON string literal.
fn key(name: &'static str) -> impl Strategy<Value = String> {
    spelling().prop_map(move |how| spell(name, how))
}

/// A number that reads as an `f64`, spelled many ways.
fn float_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "0", "0.0", "-0", "-0.0", "1", "1.0", "1.5", "1e-3", "1E-3", "0.001", "2", "1e0",
            "1.0E+0", "0.7", "0.30000000000000004", "1e-7", "12345678901234567890",
            "123456789012345678901234567890", "1e300", "5e-324", "1.7976931348623157e308",
            "-1.5", "100",
        ])
        .prop_map(str::to_owned),
        2 => (0.0f64..2.0).prop_map(|f| f.to_string()),
        1 => any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
    ]
}

/// An integer, small or large (beyond 64 bits too).
fn int_text() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "0",
            "1",
            "-1",
            "4294967295",
            "9007199254740993",
            "18446744073709551615",
            "-9223372036854775808",
            "18446744073709551616",
        ])
        .prop_map(str::to_owned),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
    ]
}

/// Whitespace JSON allows between tokens.
fn ws() -> impl Strategy<Value = &'static str> {
    prop_oneof![4 => Just(""), 1 => select(vec![" ", "\n", " \t", "\r\n  "])]
}

/// An object of `members` (each `(key text, value text)`), in their order.
fn object(members: &[(String, String)], sep: &str) -> String {
    let inner: Vec<String> = members
        .iter()
        .map(|(k, v)| format!("{k}{sep}:{sep}{v}"))
        .collect();
    format!("{{{sep}{}{sep}}}", inner.join(&format!("{sep},{sep}")))
}

/// An object of `members` shuffled, with random whitespace.
fn shuffled_object(
    members: impl Strategy<Value = Vec<(String, String)>>,
) -> impl Strategy<Value = String> {
    (members.prop_shuffle(), ws()).prop_map(|(m, sep)| object(&m, sep))
}

/// Any JSON value, a few levels deep.
fn any_json() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        select(vec!["null", "true", "false"]).prop_map(str::to_owned),
        float_text(),
        int_text(),
        jstr(),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            (proptest::collection::vec(inner.clone(), 0..4), ws())
                .prop_map(|(items, sep)| format!("[{sep}{}{sep}]", items.join(","))),
            shuffled_object(proptest::collection::vec((jstr(), inner), 0..4)),
        ]
    })
}

/// Some of `members` (each present or not), shuffled.
fn some_members(
    members: Vec<BoxedStrategy<(String, String)>>,
) -> impl Strategy<Value = Vec<(String, String)>> {
    let each: Vec<_> = members
        .into_iter()
        .map(|s| proptest::option::weighted(0.6, s))
        .collect();
    each.prop_map(|m| m.into_iter().flatten().collect::<Vec<_>>())
        .prop_shuffle()
}

/// An object with some of `members` (each present or not), shuffled.
fn some_of(members: Vec<BoxedStrategy<(String, String)>>) -> impl Strategy<Value = String> {
    (some_members(members), ws()).prop_map(|(m, sep)| object(&m, sep))
}

fn member(
    name: &'static str,
    value: impl Strategy<Value = String> + 'static,
) -> BoxedStrategy<(String, String)> {
    (key(name), value).boxed()
}

/// `value` or `null`.
fn or_null(value: impl Strategy<Value = String>) -> impl Strategy<Value = String> {
    prop_oneof![5 => value, 1 => Just("null".to_owned())]
}

fn strs(names: &'static [&'static str]) -> impl Strategy<Value = String> {
    (select(names), spelling()).prop_map(|(n, how)| spell(n, how))
}

fn bool_text() -> impl Strategy<Value = String> {
    any::<bool>().prop_map(|b| b.to_string())
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A tool name: plain (a custom tool's calls are answered by name) or needing escapes.
fn tool_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_]{1,8}".prop_map(|n| serde_json::to_string(&n).unwrap()),
        1 => jstr(),
    ]
}

/// A JSON schema-like object: nested, with numbers and unknown keys.
fn schema() -> impl Strategy<Value = String> {
    let property = some_of(vec![
        member("type", strs(&["string", "integer", "number", "array"])),
        member("description", jstr()),
        member("minimum", float_text()),
        member("maximum", int_text()),
        member("default", any_json()),
    ]);
    some_of(vec![
        member("type", strs(&["object"])),
        member(
            "properties",
            shuffled_object(proptest::collection::vec((jstr(), property), 0..3)),
        ),
        member(
            "required",
            proptest::collection::vec(jstr(), 0..3).prop_map(|r| format!("[{}]", r.join(","))),
        ),
        member("additionalProperties", bool_text()),
        member("x-extra", any_json()),
    ])
}

/// One tool; `hosted` allows a hosted one (left out when the decoder drops them).
fn tool(hosted: bool) -> BoxedStrategy<String> {
    let function = (
        some_members(vec![
            member("description", jstr()),
            member("parameters", or_null(schema())),
            member("strict", or_null(bool_text())),
            member("x_unknown", any_json()),
        ]),
        member("type", strs(&["function"])),
        member("name", tool_name()),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        ws(),
    )
        .prop_map(|(mut m, kind, name, a, b, sep)| {
            // The type and the name anywhere among the others.
            m.insert(a.index(m.len() + 1), kind);
            m.insert(b.index(m.len() + 1), name);
            object(&m, sep)
        });
    let custom = (
        tool_name(),
        proptest::option::of(jstr()),
        proptest::option::of(any_json()),
    )
        .prop_map(|(name, description, format)| {
            let mut m = vec![
                ("\"type\"".to_owned(), "\"custom\"".to_owned()),
                ("\"name\"".to_owned(), name),
            ];
            m.extend(description.map(|d| ("\"description\"".to_owned(), d)));
            m.extend(format.map(|f| ("\"format\"".to_owned(), f)));
            m
        })
        .prop_shuffle()
        .prop_map(|m| object(&m, ""));
    let namespace = (
        jstr(),
        jstr(),
        proptest::collection::vec(
            tool_name().prop_map(|n| format!(r#"{{"type":"function","name":{n}}}"#)),
            0..3,
        ),
    )
        .prop_map(|(name, description, tools)| {
            format!(
                r#"{{"type":"namespace","name":{name},"description":{description},"tools":[{}]}}"#,
                tools.join(",")
            )
        });
    if hosted {
        prop_oneof![
            4 => function,
            2 => custom,
            1 => namespace,
            1 => select(vec![r#"{"type":"web_search"}"#, r#"{"type":"file_search","vector_store_ids":["vs_1"]}"#])
                .prop_map(str::to_owned),
        ]
        .boxed()
    } else {
        prop_oneof![4 => function, 2 => custom, 1 => namespace].boxed()
    }
}

fn tool_choice() -> impl Strategy<Value = String> {
    prop_oneof![
        strs(&["auto", "none", "required"]),
        (select(vec!["function", "custom"]), tool_name())
            .prop_map(|(kind, name)| { format!(r#"{{"name":{name},"type":"{kind}"}}"#) }),
        select(vec![
            r#"{"type":"allowed_tools","mode":"required","tools":[]}"#,
            r#"{"tools":[],"mode":null,"type":"allowed_tools"}"#,
            r#"{"type":"allowed_tools","tools":[]}"#,
        ])
        .prop_map(str::to_owned),
    ]
}

fn text_param() -> impl Strategy<Value = String> {
    let format = prop_oneof![
        select(vec![
            r#"{"type":"text"}"#,
            r#"{"type":"json_object"}"#,
            r#"{"type":"json_schema"}"#,
        ])
        .prop_map(str::to_owned),
        (
            some_members(vec![
                member("name", jstr()),
                member("schema", or_null(schema())),
                member("strict", or_null(bool_text())),
                member("description", jstr()),
            ]),
            key("type"),
            strs(&["json_schema"]),
            any::<prop::sample::Index>(),
        )
            .prop_map(|(mut m, k, v, at)| {
                m.insert(at.index(m.len() + 1), (k, v));
                object(&m, "")
            }),
    ];
    some_of(vec![
        member("format", or_null(format)),
        member("verbosity", strs(&["low", "medium", "high"])),
    ])
}

fn reasoning() -> impl Strategy<Value = String> {
    some_of(vec![
        member(
            "effort",
            or_null(strs(&["none", "minimal", "low", "medium", "high", "xhigh"])),
        ),
        member(
            "summary",
            or_null(prop_oneof![strs(&["auto", "concise", "detailed"]), jstr()]),
        ),
        member("x_unknown", any_json()),
    ])
}

fn metadata() -> impl Strategy<Value = String> {
    // At most 16 pairs; keys and values well within OpenAI's limits.
    shuffled_object(proptest::collection::vec((jstr(), jstr()), 0..6))
}

fn input() -> impl Strategy<Value = String> {
    let message = (select(vec!["user", "developer", "system"]), jstr())
        .prop_map(|(role, content)| format!(r#"{{"role":"{role}","content":{content}}}"#));
    prop_oneof![
        jstr(),
        proptest::collection::vec(message, 1..3).prop_map(|m| format!("[{}]", m.join(","))),
    ]
}

/// A request body and the decoder's options.
#[derive(Debug, Clone)]
struct Request {
    body: String,
    drop_hosted: bool,
}

fn request() -> impl Strategy<Value = Request> {
    any::<bool>().prop_flat_map(|drop_hosted| {
        let tools = proptest::collection::vec(tool(drop_hosted), 0..4)
            .prop_map(|t| format!("[{}]", t.join(",")));
        let known = vec![
            member("instructions", or_null(jstr())),
            member(
                "max_output_tokens",
                or_null(prop_oneof![
                    select(vec!["0", "1", "4294967295"]).prop_map(str::to_owned),
                    any::<u32>().prop_map(|n| n.to_string()),
                ]),
            ),
            member("metadata", or_null(metadata())),
            member("parallel_tool_calls", or_null(bool_text())),
            member("previous_response_id", or_null(jstr())),
            member("reasoning", or_null(reasoning())),
            member("store", or_null(bool_text())),
            member("temperature", or_null(float_text())),
            member("text", or_null(text_param())),
            member("tool_choice", or_null(tool_choice())),
            member("tools", or_null(tools)),
            member("top_p", or_null(float_text())),
            member("truncation", or_null(strs(&["auto", "disabled"]))),
            member("user", or_null(jstr())),
            member("stream", or_null(bool_text())),
            member("input", input()),
            // Known, not echoed.
            member("background", or_null(Just("false".to_owned()))),
            member(
                "include",
                or_null(Just(r#"["reasoning.encrypted_content"]"#.to_owned())),
            ),
            // Unknown to the decoder.
            member("prompt_cache_key", jstr()),
            member("service_tier", strs(&["auto", "default", "flex"])),
            member("top_logprobs", int_text()),
        ];
        let each: Vec<_> = known
            .into_iter()
            .map(|s| proptest::option::weighted(0.5, s))
            .collect();
        let extra = proptest::collection::btree_map("x_[a-z]{1,6}", any_json(), 0..3);
        (member("model", jstr()), each, extra, ws(), any::<u64>()).prop_map(
            move |(model, known, extra, sep, order)| {
                let mut members: Vec<(String, String)> = vec![model];
                members.extend(known.into_iter().flatten());
                members.extend(
                    extra
                        .into_iter()
                        .map(|(k, v)| (serde_json::to_string(&k).unwrap(), v)),
                );
                // Random member order, fixed by `order`.
                members.sort_by_key(|(k, v)| {
                    let mut h = order;
                    for b in k.bytes().chain(v.bytes()) {
                        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
                    }
                    h
                });
                Request {
                    body: object(&members, sep),
                    drop_hosted,
                }
            },
        )
    })
}

// ---------------------------------------------------------------------------------------
// Answers
// ---------------------------------------------------------------------------------------

/// A tool call's arguments, whole.
#[derive(Debug, Clone)]
enum Args {
    /// A JSON object (a custom tool's `{"input": ...}` when `input` is set).
    Json { text: String, input: Option<String> },
    /// Text that is not JSON (a custom tool's input as it is).
    Raw(String),
}

impl Args {
    fn text(&self) -> &str {
        match self {
            Args::Json { text, .. } | Args::Raw(text) => text,
        }
    }
}

#[derive(Debug, Clone)]
struct Call {
    /// The name, unless the request's custom tool at this index is called.
    name: String,
    custom: Option<usize>,
    call_id: String,
    args: Args,
    /// Where the arguments are cut into fragments (character indices).
    cuts: Vec<usize>,
    /// Whether `ToolCallEnd` is sent (else `Done` closes the call).
    ended: bool,
}

#[derive(Debug, Clone)]
struct Answer {
    id: String,
    created_at: u64,
    model: String,
    thinking: Vec<String>,
    text: Vec<String>,
    /// The text before the reasoning.
    text_first: bool,
    call: Option<Call>,
    usage: Option<Usage>,
    finish: FinishReason,
}

fn args() -> impl Strategy<Value = Args> {
    prop_oneof![
        shuffled_object(proptest::collection::vec((jstr(), any_json()), 0..4))
            .prop_map(|text| Args::Json { text, input: None }),
        text().prop_map(|input| Args::Json {
            text: json!({ "input": input }).to_string(),
            input: Some(input),
        }),
        text().prop_map(|t| Args::Raw(format!("*** {t}"))),
    ]
}

fn answer() -> impl Strategy<Value = Answer> {
    let call = (
        "[a-z_]{1,8}",
        proptest::option::weighted(0.5, any::<usize>()),
        prop_oneof!["call_[a-zA-Z0-9]{1,8}", text()],
        args(),
        proptest::collection::vec(any::<usize>(), 0..4),
        any::<bool>(),
    )
        .prop_map(|(name, custom, call_id, args, cuts, ended)| Call {
            name,
            custom,
            call_id,
            args,
            cuts,
            ended,
        });
    let usage = (any::<u32>(), any::<u32>(), any::<u32>(), any::<u32>()).prop_map(
        |(prompt_tokens, completion_tokens, cache_read_tokens, cache_creation_tokens)| Usage {
            prompt_tokens,
            completion_tokens,
            cache_read_tokens,
            cache_creation_tokens,
            ..Usage::default()
        },
    );
    let finish = prop_oneof![
        Just(FinishReason::Stop),
        Just(FinishReason::ToolCalls),
        Just(FinishReason::Length),
        Just(FinishReason::ContentFilter),
        Just(FinishReason::Other(
            FinishReason::CONTEXT_WINDOW_EXCEEDED.to_owned()
        )),
        Just(FinishReason::Other("pause_turn".to_owned())),
        Just(FinishReason::StopSequence("END".to_owned())),
    ];
    (
        prop_oneof![4 => "resp_[0-9a-f]{0,12}", 1 => text()],
        any::<u64>(),
        text(),
        proptest::collection::vec(text(), 0..3),
        proptest::collection::vec(text(), 0..4),
        any::<bool>(),
        proptest::option::weighted(0.5, call),
        proptest::option::weighted(0.7, usage),
        finish,
    )
        .prop_map(
            |(id, created_at, model, thinking, text, text_first, call, usage, finish)| Answer {
                id,
                created_at,
                model,
                thinking,
                text,
                text_first,
                call,
                usage,
                finish,
            },
        )
}

/// `text` cut at the characters `cuts` point to.
fn fragments(text: &str, cuts: &[usize]) -> Vec<String> {
    let bounds: Vec<usize> = text.char_indices().map(|(i, _)| i).collect();
    let mut at: Vec<usize> = cuts
        .iter()
        .filter(|_| !bounds.is_empty())
        .map(|c| bounds[c % bounds.len()])
        .collect();
    at.push(0);
    at.push(text.len());
    at.sort_unstable();
    at.dedup();
    at.windows(2).map(|w| text[w[0]..w[1]].to_owned()).collect()
}

// ---------------------------------------------------------------------------------------
// The reference: the response object as a `Value`
// ---------------------------------------------------------------------------------------

/// The echoed parameters as values, read from the request's JSON as the decoder's wire
/// struct reads them (`echo_as_values` in `request.rs`'s tests): OpenAI's default for a
/// parameter left out or `null`; `temperature` and `top_p` read as `f64`, so `0` echoes as
/// `0.0`, as the struct's `f64` field writes it.
fn echo_values(body: &Value) -> Map<String, Value> {
    let get = |k: &str| body.get(k).filter(|v| !v.is_null());
    let float = |k: &str| json!(get(k).map_or(1.0, |v| v.as_f64().unwrap()));
    let reasoning = get("reasoning");
    let in_reasoning = |k: &str| {
        reasoning
            .and_then(|r| r.get(k))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let mut echo = Map::new();
    let mut put = |k: &str, v: Value| {
        echo.insert(k.to_owned(), v);
    };
    put(
        "instructions",
        get("instructions").cloned().unwrap_or(Value::Null),
    );
    put(
        "max_output_tokens",
        get("max_output_tokens").cloned().unwrap_or(Value::Null),
    );
    put("metadata", get("metadata").cloned().unwrap_or(json!({})));
    put(
        "parallel_tool_calls",
        get("parallel_tool_calls").cloned().unwrap_or(json!(true)),
    );
    put(
        "previous_response_id",
        get("previous_response_id").cloned().unwrap_or(Value::Null),
    );
    put(
        "reasoning",
        json!({"effort": in_reasoning("effort"), "summary": in_reasoning("summary")}),
    );
    put("store", get("store").cloned().unwrap_or(json!(true)));
    put("temperature", float("temperature"));
    put("top_p", float("top_p"));
    put(
        "tool_choice",
        get("tool_choice").cloned().unwrap_or(json!("auto")),
    );
    put("tools", get("tools").cloned().unwrap_or(json!([])));
    put(
        "text",
        get("text")
            .filter(|t| t.is_object())
            .cloned()
            .unwrap_or(json!({"format": {"type": "text"}})),
    );
    put(
        "truncation",
        json!(if get("truncation") == Some(&json!("auto")) {
            "auto"
        } else {
            "disabled"
        }),
    );
    put("user", get("user").cloned().unwrap_or(Value::Null));
    echo
}

/// `value` with every object's keys sorted (the encoder's own objects: items, parts,
/// usage).
fn sorted(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let map: BTreeMap<String, Value> =
                map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
            Value::Object(map.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(sorted).collect()),
        other => other,
    }
}

/// What the answer is, as the reference sees it.
struct Expected {
    /// The finished items, in output order.
    output: Vec<Value>,
    usage: Value,
    /// `completed` or `incomplete`, and the reason.
    status: &'static str,
    incomplete: Option<&'static str>,
}

/// The items, usage and ending the answer gives (`summary`: reasoning as a summary).
fn expected(answer: &Answer, call: Option<(&Call, &str, bool)>, summary: bool) -> Expected {
    let suffix = answer.id.strip_prefix("resp_").unwrap_or(&answer.id);
    let mut output = Vec::new();
    let id = |prefix: &str, index: usize| format!("{prefix}_{suffix}_{index}");
    let (thinking, text) = (answer.thinking.concat(), answer.text.concat());
    let message = |id: String| {
        json!({"content": [{"annotations": [], "text": text, "type": "output_text"}],
               "id": id, "role": "assistant", "status": "completed", "type": "message"})
    };
    let reasoning = |id: String| {
        if summary {
            json!({"id": id, "summary": [{"text": thinking, "type": "summary_text"}],
                   "type": "reasoning"})
        } else {
            json!({"content": [{"text": thinking, "type": "reasoning_text"}], "id": id,
                   "summary": [], "type": "reasoning"})
        }
    };
    let texts: [(bool, &str); 2] = if answer.text_first {
        [(true, &text), (false, &thinking)]
    } else {
        [(false, &thinking), (true, &text)]
    };
    for (is_text, t) in texts {
        if t.is_empty() {
            continue;
        }
        let index = output.len();
        output.push(if is_text {
            message(id("msg", index))
        } else {
            reasoning(id("rs", index))
        });
    }
    if let Some((call, name, custom)) = call {
        let index = output.len();
        output.push(if custom {
            let input = match &call.args {
                Args::Json {
                    input: Some(input), ..
                } => input.clone(),
                other => other.text().to_owned(),
            };
            json!({"call_id": call.call_id, "id": id("ctc", index), "input": input,
                   "name": name, "status": "completed", "type": "custom_tool_call"})
        } else {
            json!({"arguments": call.args.text(), "call_id": call.call_id,
                   "id": id("fc", index), "name": name, "status": "completed",
                   "type": "function_call"})
        });
    }
    let usage = answer.usage.unwrap_or_default();
    let usage = json!({
        "input_tokens": usage.all_prompt_tokens(),
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.all_tokens(),
    });
    let incomplete = match &answer.finish {
        r if r.is_cut() => Some("max_output_tokens"),
        FinishReason::ContentFilter => Some("content_filter"),
        _ => None,
    };
    Expected {
        output,
        usage,
        status: if incomplete.is_some() {
            "incomplete"
        } else {
            "completed"
        },
        incomplete,
    }
}

/// The response object as the `Value` path built it: the echo's values, the fixed fields
/// set over them (a fixed field wins a clash), the keys in sorted order.
fn reference(
    echo: &Map<String, Value>,
    answer: &Answer,
    status: &str,
    incomplete: Option<&str>,
    output: &[Value],
    usage: &Value,
) -> Value {
    let mut object: BTreeMap<String, Value> = echo.clone().into_iter().collect();
    for (k, v) in [
        ("id", json!(answer.id)),
        ("object", json!("response")),
        ("created_at", json!(answer.created_at)),
        ("status", json!(status)),
        ("model", json!(answer.model)),
        ("output", sorted(Value::Array(output.to_vec()))),
        (
            "usage",
            if status == "in_progress" {
                Value::Null
            } else {
                sorted(usage.clone())
            },
        ),
        ("error", Value::Null),
        (
            "incomplete_details",
            incomplete.map_or(Value::Null, |reason| json!({ "reason": reason })),
        ),
    ] {
        object.insert(k.to_owned(), v);
    }
    Value::Object(object.into_iter().collect())
}

// ---------------------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------------------

/// The SSE frames of `out`: event name and data text.
fn frames(out: &[u8]) -> Vec<(String, String)> {
    let text = std::str::from_utf8(out).expect("frames are UTF-8");
    text.split_terminator("\n\n")
        .map(|frame| {
            let (event, data) = frame.split_once('\n').expect("event and data lines");
            let event = event.strip_prefix("event: ").expect("an event line");
            let data = data.strip_prefix("data: ").expect("a data line");
            (event.to_owned(), data.to_owned())
        })
        .collect()
}

/// The response object's text in a response event's data
/// (`{"response":<object>,"sequence_number":n,"type":"..."}`).
fn response_in(data: &str) -> &str {
    let rest = data
        .strip_prefix(r#"{"response":"#)
        .expect("the response first");
    let end = rest
        .rfind(r#","sequence_number":"#)
        .expect("the sequence number after the response");
    &rest[..end]
}

/// The reference's text: the bytes the `Value` path wrote.
fn text_of(value: &Value) -> String {
    serde_json::to_string(value).unwrap()
}

/// `text` read as serde_json reads it.
///
/// The workspace builds serde_json with `float_roundtrip`, so a float written as its
/// shortest text (ryu) reads back exactly. Without it a float could read back one ulp off
/// (`6.149990498430396e-197` as `…397e-197`; about one in seven random 17-digit floats in
/// `[0, 2)`), and a `Value` read from the encoder's text could differ from the `Value` the
/// reference wrote the same text from. So "equal as parsed JSON" compares the two texts,
/// each read by the same parser; the bytes are compared exactly anyway.
fn parsed(what: &str, text: &str) -> Result<Value, TestCaseError> {
    serde_json::from_str(text)
        .map_err(|e| TestCaseError::fail(format!("{what}: invalid JSON ({e}): {text}")))
}

/// Whether the reference's text reads back as the reference (no float read one ulp off:
/// see [`parsed`]).
fn round_trips(value: &Value) -> bool {
    serde_json::from_str::<Value>(&text_of(value)).is_ok_and(|again| &again == value)
}

/// Checks that `written` is valid JSON, is `expected` as parsed JSON, and is its bytes.
fn check_object(what: &str, written: &[u8], expected: &Value) -> Result<(), TestCaseError> {
    let text = std::str::from_utf8(written)
        .map_err(|e| TestCaseError::fail(format!("{what}: not UTF-8: {e}")))?;
    let expected_text = text_of(expected);
    prop_assert_eq!(
        parsed(what, text)?,
        parsed("the reference", &expected_text)?,
        "{} (as parsed JSON)",
        what
    );
    prop_assert_eq!(text, expected_text.as_str(), "{} (bytes)", what);
    Ok(())
}

/// Checks a `Value` the encoder read back from its own text: the reference as parsed
/// JSON, and, wherever the reference's text round-trips, the reference itself, written as
/// the same bytes (`final_response_json` is "the same bytes" as `final_response`).
fn check_read_back(what: &str, value: &Value, expected: &Value) -> Result<(), TestCaseError> {
    let expected_text = text_of(expected);
    prop_assert_eq!(value, &parsed("the reference", &expected_text)?, "{}", what);
    if round_trips(expected) {
        prop_assert_eq!(value, expected, "{}", what);
        prop_assert_eq!(text_of(value), expected_text, "{} (written again)", what);
    }
    Ok(())
}

fn run(request: &Request, answer: &Answer) -> Result<(), TestCaseError> {
    let opts = DecodeOptions {
        drop_unsupported_tools: request.drop_hosted,
    };
    let body: Value = serde_json::from_str(&request.body)
        .map_err(|e| TestCaseError::fail(format!("the generator wrote bad JSON ({e})")))?;
    let req = decode_request(request.body.as_bytes(), &opts).map_err(|e| {
        TestCaseError::fail(format!(
            "a valid request was refused: {e} ({})",
            e.path().unwrap_or("")
        ))
    })?;
    prop_assert_eq!(
        req.chat.stream,
        body.get("stream").and_then(Value::as_bool).unwrap_or(false)
    );

    // The echo: member for member the echo of the values.
    let values = echo_values(&body);
    let by_values = Echo::from_map(&values);
    let members = |echo: &Echo| -> Vec<(String, String)> {
        echo.iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    };
    prop_assert_eq!(
        members(&req.echo),
        members(&by_values),
        "the echo's members"
    );
    prop_assert_eq!(&req.echo, &by_values);
    prop_assert_eq!(req.echo.asks_summary(), by_values.asks_summary());
    let summary = req.echo.asks_summary();

    // The answer.
    let call = answer.call.as_ref().map(|call| {
        let name = match call.custom {
            Some(i) if !req.custom_tools.is_empty() => {
                req.custom_tools[i % req.custom_tools.len()].clone()
            }
            _ => call.name.clone(),
        };
        let custom = req.custom_tools.contains(&name);
        (call, name, custom)
    });
    let mut events = Vec::new();
    let (first, second) = if answer.text_first {
        (&answer.text, &answer.thinking)
    } else {
        (&answer.thinking, &answer.text)
    };
    events.extend(first.iter().map(|t| {
        if answer.text_first {
            ChatEvent::text(t.as_str())
        } else {
            ChatEvent::thinking(t.as_str())
        }
    }));
    events.extend(second.iter().map(|t| {
        if answer.text_first {
            ChatEvent::thinking(t.as_str())
        } else {
            ChatEvent::text(t.as_str())
        }
    }));
    if let Some((call, name, _)) = &call {
        events.push(ChatEvent::ToolCallStart {
            index: 0,
            id: call.call_id.clone(),
            name: name.clone(),
        });
        for fragment in fragments(call.args.text(), &call.cuts) {
            events.push(ChatEvent::ToolCallArgs { index: 0, fragment });
        }
        if call.ended {
            events.push(ChatEvent::ToolCallEnd { index: 0 });
        }
    }
    if let Some(usage) = answer.usage {
        events.push(ChatEvent::Usage(usage));
    }
    events.push(ChatEvent::done(answer.finish.clone()));
    let exp = expected(
        answer,
        call.as_ref()
            .map(|(c, n, custom)| (*c, n.as_str(), *custom)),
        summary,
    );
    let started = reference(&values, answer, "in_progress", None, &[], &exp.usage);
    let ended = reference(
        &values,
        answer,
        exp.status,
        exp.incomplete,
        &exp.output,
        &exp.usage,
    );

    let head = ResponseHead {
        id: answer.id.clone(),
        created_at: answer.created_at,
        model: answer.model.clone(),
        echo: req.echo.clone(),
        custom_tools: req.custom_tools.clone(),
    };

    // A stream: every frame is valid JSON as a `Value` writes it; the response objects of
    // `created`, `in_progress` and the last event are the reference's.
    let mut streamed = ResponsesStreamEncoder::new(head.clone());
    let mut out = Vec::new();
    for event in &events {
        streamed.encode(event, &mut out);
    }
    let frames = frames(&out);
    prop_assert!(frames.len() >= 3, "{} frames", frames.len());
    let last_event = format!("response.{}", exp.status);
    for (seq, (event, data)) in frames.iter().enumerate() {
        let value = parsed(event, data)?;
        prop_assert_eq!(&value["type"], &json!(event));
        prop_assert_eq!(&value["sequence_number"], &json!(seq));
        let expected = match (seq, event.as_str()) {
            (0, "response.created") | (1, "response.in_progress") => &started,
            (_, e) if seq == frames.len() - 1 && e == last_event => &ended,
            (_, e) => {
                // The other events hold no client value (no float): each is the JSON a
                // `Value` writes.
                prop_assert_eq!(&value.to_string(), data, "{}: as a Value writes it", e);
                prop_assert!(
                    !e.starts_with("response.") || e.matches('.').count() > 1,
                    "{} at {}",
                    e,
                    seq
                );
                continue;
            }
        };
        check_object(event, response_in(data).as_bytes(), expected)?;
        // The frame around it, as a `Value` writes it.
        let frame = format!(
            r#"{{"response":{},"sequence_number":{seq},"type":"{event}"}}"#,
            text_of(expected)
        );
        prop_assert_eq!(data, &frame, "{}: the frame", event);
    }
    prop_assert_eq!(
        frames.first().map(|f| f.0.as_str()),
        Some("response.created")
    );
    prop_assert_eq!(
        frames.last().map(|f| f.0.as_str()),
        Some(last_event.as_str())
    );
    let final_value = streamed.final_response().expect("ended");
    check_read_back("a stream's final_response", final_value, &ended)?;
    let final_json = streamed.final_response_json().expect("ended");
    check_object("a stream's final_response_json", &final_json, &ended)?;

    // A whole answer: no frames, and the same object.
    let mut whole = ResponsesStreamEncoder::new(head).without_frames();
    let mut nothing = Vec::new();
    for event in &events {
        whole.encode(event, &mut nothing);
    }
    prop_assert!(nothing.is_empty(), "a whole answer writes no frames");
    let json = whole.final_response_json().expect("ended");
    check_object("a whole answer", &json, &ended)?;
    check_read_back(
        "a whole answer's final_response",
        whole.final_response().expect("ended"),
        &ended,
    )?;
    prop_assert_eq!(whole.assistant_turn(), streamed.assistant_turn());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    /// Every response object written for a decoded request and an answer is the `Value`
    /// path's object: valid JSON, equal as parsed, and the same bytes.
    #[test]
    fn every_response_object_is_the_value_paths(request in request(), answer in answer()) {
        run(&request, &answer)?;
    }
}

fn plain_answer() -> Answer {
    Answer {
        id: "resp_1".to_owned(),
        created_at: 1,
        model: "m".to_owned(),
        thinking: vec!["why".to_owned()],
        text: vec!["Hi".to_owned()],
        text_first: false,
        call: None,
        usage: None,
        finish: FinishReason::Stop,
    }
}

/// Requests the property found (as minimised), and one with every parameter, through the
/// same checks.
#[test]
fn found_and_kitchen_sink_requests() {
    let answer = plain_answer();
    for body in [
        // A float that serde_json does not read back as written (see `parsed`).
        r#"{"model":"","top_p":6.149990498430396e-197}"#,
        r#"{"model":"m","temperature":0.21000000000000002,"top_p":0.9999999999999999}"#,
        r#"{"\u006dodel":"m\u00e9","input":[{"role":"user","content":"hi"}],
            "instructions":"be \"brief\"\n\u2028","max_output_tokens":4294967295,
            "metadata":{"z":"\ud83d\ude00","a":"\/"},"parallel_tool_calls":false,
            "previous_response_id":"","reasoning":{"summary":"auto","effort":"xhigh","x":1},
            "store":false,"temperature":0,"top_p":1e-3,
            "text":{"verbosity":"low","format":{"type":"json_schema","schema":{"b":[1.5,
              123456789012345678901234567890],"a":-0.0},"name":"out"}},
            "tool_choice":{"type":"allowed_tools","tools":[]},
            "tools":[{"name":"f","type":"function","parameters":{"type":"object"}},
                     {"type":"custom","name":"apply_patch"},{"type":"web_search"}],
            "truncation":"auto","user":"u","stream":true,"x_unknown":{"status":1}}"#,
    ] {
        let request = Request {
            body: body.to_owned(),
            drop_hosted: true,
        };
        if let Err(e) = run(&request, &answer) {
            panic!("{body}: {e}");
        }
    }
}

/// `final_response` is read back from the text `final_response_json` writes, and is
/// documented as "the same bytes"; and the echo repeats the request's number. Both need
/// serde_json's `float_roundtrip` feature (the workspace enables it): without it a float's
/// text reads up to one ulp off (`6.149990498430396e-197` decodes as `…397e-197`, and
/// `0.9999999999999999` as `1.0`, which would then be echoed and sent upstream).
#[test]
fn a_float_reads_back_as_it_was_written() {
    for (top_p, expected) in [
        ("6.149990498430396e-197", 6.149_990_498_430_396e-197),
        ("0.9999999999999999", 0.999_999_999_999_999_9),
    ] {
        let body = format!(r#"{{"model":"m","input":"hi","top_p":{top_p}}}"#);
        let req = decode_request(body.as_bytes(), &DecodeOptions::default()).unwrap();
        assert_eq!(req.chat.options.top_p, Some(expected), "{top_p} as decoded");
        let mut enc = ResponsesStreamEncoder::new(ResponseHead {
            id: "resp_1".to_owned(),
            created_at: 1,
            model: "m".to_owned(),
            echo: req.echo,
            custom_tools: Vec::new(),
        })
        .without_frames();
        enc.encode(&ChatEvent::text("Hi"), &mut Vec::new());
        enc.encode(&ChatEvent::done(FinishReason::Stop), &mut Vec::new());
        let written = String::from_utf8(enc.final_response_json().unwrap()).unwrap();
        let read_back = serde_json::to_string(enc.final_response().unwrap()).unwrap();
        assert_eq!(
            read_back, written,
            "{top_p}: final_response is final_response_json"
        );
    }
}
