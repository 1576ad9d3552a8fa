//! Text tool-call recovery: every supported shape, release of non-calls unchanged, and the
//! same result whatever the split of the text.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use serde_json::{Value, json};
use switchyard_core::{ChatEvent, FinishReason, Usage};
use switchyard_stream::recovery::TextToolCallRecovery;

const TOOLS: [&str; 2] = ["get_weather", "search"];

/// What the filter produced: the text released, the calls (name, arguments) and the
/// finish reason.
#[derive(Debug, PartialEq)]
struct Outcome {
    text: String,
    calls: Vec<(String, Value)>,
    done: Option<FinishReason>,
}

fn summarise(events: &[ChatEvent]) -> Outcome {
    let mut text = String::new();
    let mut calls: Vec<(String, Value)> = Vec::new();
    let mut args = String::new();
    let mut done = None;
    for ev in events {
        match ev {
            ChatEvent::TextDelta { text: t } => text.push_str(t),
            ChatEvent::ToolCallStart { id, name, .. } => {
                assert!(id.starts_with("call_"), "synthesised id: {id}");
                args.clear();
                calls.push((name.clone(), Value::Null));
            }
            ChatEvent::ToolCallArgs { fragment, .. } => args.push_str(fragment),
            ChatEvent::ToolCallEnd { .. } => {
                let last = calls.last_mut().expect("start before end");
                last.1 = serde_json::from_str(&args).expect("arguments are JSON");
            }
            ChatEvent::Done { finish_reason } => done = Some(finish_reason.clone()),
            _ => {}
        }
    }
    Outcome { text, calls, done }
}

fn run(pieces: &[&str]) -> Outcome {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    for p in pieces {
        rec.push(ChatEvent::text(*p), &mut out);
    }
    rec.push(ChatEvent::done(FinishReason::Stop), &mut out);
    summarise(&out)
}

fn call(name: &str, args: Value) -> (String, Value) {
    (name.to_owned(), args)
}

#[test]
fn hermes_block_becomes_a_call_and_done_becomes_tool_calls() {
    let o = run(&[
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n</tool_call>",
    ]);
    assert_eq!(o.text, "");
    assert_eq!(o.calls, vec![call("get_weather", json!({"city": "Paris"}))]);
    assert_eq!(o.done, Some(FinishReason::ToolCalls));
}

#[test]
fn two_hermes_blocks_and_the_whitespace_between_them() {
    let o = run(&[
        "<tool_call>{\"name\":\"get_weather\",\"arguments\":{\"city\":\"A\"}}</tool_call>\n",
        "<tool_call>{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":\\\"x\\\"}\"}</tool_call>\n",
    ]);
    assert_eq!(o.text, "");
    assert_eq!(
        o.calls,
        vec![
            call("get_weather", json!({"city": "A"})),
            call("search", json!({"q": "x"}))
        ]
    );
}

#[test]
fn unclosed_last_hermes_block_still_counts() {
    let o = run(&["<tool_call>{\"name\":\"search\",\"arguments\":{\"q\":\"rust\"}}"]);
    assert_eq!(o.calls, vec![call("search", json!({"q": "rust"}))]);
}

#[test]
fn text_before_a_call_is_released() {
    let o = run(&[
        "Let me check. <tool_",
        "call>{\"name\":\"get_weather\",\"arguments\":{}}</tool_call>",
    ]);
    assert_eq!(o.text, "Let me check. ");
    assert_eq!(o.calls, vec![call("get_weather", json!({}))]);
}

#[test]
fn mistral_array_and_named_forms() {
    let o = run(&[
        "[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\"}}, {\"name\": \"search\", \"arguments\": {}}]",
    ]);
    assert_eq!(
        o.calls,
        vec![
            call("get_weather", json!({"city": "Rome"})),
            call("search", json!({}))
        ]
    );
    let o = run(&["[TOOL_CALLS]get_weather{\"city\": \"Oslo\"}"]);
    assert_eq!(o.calls, vec![call("get_weather", json!({"city": "Oslo"}))]);
    let o = run(&["[TOOL_CALLS]search[ARGS]{\"q\": \"a\"}"]);
    assert_eq!(o.calls, vec![call("search", json!({"q": "a"}))]);
}

#[test]
fn llama_python_tag_with_calls_joined_by_semicolons() {
    let o = run(&[
        "<|python_tag|>{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Lima\"}}; {\"name\": \"search\", \"parameters\": {\"q\": \"b\"}}",
    ]);
    assert_eq!(
        o.calls,
        vec![
            call("get_weather", json!({"city": "Lima"})),
            call("search", json!({"q": "b"}))
        ]
    );
}

#[test]
fn bare_json_at_the_start_is_a_call() {
    let o = run(&["  {\"name\": \"get_weather\", \"parameters\": {\"city\": \"Kyiv\"}}"]);
    assert_eq!(o.text, "");
    assert_eq!(o.calls, vec![call("get_weather", json!({"city": "Kyiv"}))]);
}

#[test]
fn fenced_json_block_is_a_call() {
    let o = run(&[
        "Calling now:\n```json\n{\"name\": \"search\", \"arguments\": {\"q\": \"c\"}}\n```\n",
    ]);
    assert_eq!(o.text, "Calling now:\n");
    assert_eq!(o.calls, vec![call("search", json!({"q": "c"}))]);
}

#[test]
fn openai_shaped_object_is_a_call() {
    let o = run(&[
        "<tool_call>{\"type\":\"function\",\"function\":{\"name\":\"search\",\"arguments\":\"{\\\"q\\\":1}\"}}</tool_call>",
    ]);
    assert_eq!(o.calls, vec![call("search", json!({"q": 1}))]);
}

#[test]
fn names_not_offered_stay_text_unchanged() {
    let input = "<tool_call>{\"name\": \"rm_rf\", \"arguments\": {}}</tool_call> done";
    let o = run(&[input]);
    assert_eq!(o.text, input);
    assert!(o.calls.is_empty());
    assert_eq!(o.done, Some(FinishReason::Stop));
}

#[test]
fn things_that_look_like_calls_but_are_not_stay_text() {
    for input in [
        "{\"name\": \"Bob\", \"age\": 3}",
        "{not json at all",
        "Use ```python\nprint(1)\n``` to print.",
        "```json\n{\"a\": 1}\n```",
        "a < b and [TOOL tips] and `code` <|python",
        "[1, 2, 3]",
        "<tool_call>not json</tool_call> after",
        "[TOOL_CALLS] nothing",
        "   ",
        "",
        "héllo ``` wörld <tool_call>",
    ] {
        let o = run(&[input]);
        assert_eq!(o.text, input, "released unchanged");
        assert!(o.calls.is_empty(), "{input}");
    }
}

#[test]
fn partial_trigger_is_held_then_released() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    rec.push(ChatEvent::text("Hello <tool"), &mut out);
    assert_eq!(out, vec![ChatEvent::text("Hello ")]);
    out.clear();
    rec.push(ChatEvent::text("s are fun"), &mut out);
    assert_eq!(out, vec![ChatEvent::text("<tools are fun")]);
}

#[test]
fn without_offered_tools_everything_passes_through() {
    let mut rec = TextToolCallRecovery::with_id_seed(Vec::<String>::new(), 1);
    let mut out = Vec::new();
    let input = "<tool_call>{\"name\":\"get_weather\",\"arguments\":{}}</tool_call>";
    rec.push(ChatEvent::text(input), &mut out);
    rec.push(ChatEvent::done(FinishReason::Stop), &mut out);
    assert_eq!(
        out,
        vec![ChatEvent::text(input), ChatEvent::done(FinishReason::Stop)]
    );
}

#[test]
fn usage_and_thinking_pass_through_in_order() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    rec.push(ChatEvent::thinking("hmm"), &mut out);
    rec.push(ChatEvent::text("<tool_call>{\"name\":\"search\""), &mut out);
    rec.push(ChatEvent::Usage(Usage::default()), &mut out);
    rec.push(ChatEvent::done(FinishReason::Stop), &mut out);
    assert_eq!(out[0], ChatEvent::thinking("hmm"));
    // The unclosed block is not a complete object: released as text before the usage.
    assert_eq!(out[1], ChatEvent::text("<tool_call>{\"name\":\"search\""));
    assert_eq!(out[2], ChatEvent::Usage(Usage::default()));
    assert_eq!(out[3], ChatEvent::done(FinishReason::Stop));
}

#[test]
fn recovered_calls_are_numbered_after_structured_ones() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    for ev in [
        ChatEvent::ToolCallStart {
            index: 0,
            id: "call_up".into(),
            name: "search".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: "{}".into(),
        },
        ChatEvent::ToolCallEnd { index: 0 },
        ChatEvent::text("<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call>"),
    ] {
        rec.push(ev, &mut out);
    }
    rec.finish(&mut out);
    assert!(matches!(out[3], ChatEvent::ToolCallStart { index: 1, .. }));
}

#[test]
fn held_text_is_bounded() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1).with_max_held(1024);
    let mut out = Vec::new();
    rec.push(
        ChatEvent::text("<tool_call>{\"name\":\"search\",\"arguments\":\""),
        &mut out,
    );
    let filler = "x".repeat(600);
    rec.push(ChatEvent::text(filler.clone()), &mut out);
    assert!(out.is_empty());
    rec.push(ChatEvent::text(filler), &mut out);
    assert!(!out.is_empty(), "released once past the bound");
}

#[test]
fn ids_are_deterministic_with_a_seed() {
    let mut a = TextToolCallRecovery::with_id_seed(TOOLS, 42);
    let mut b = TextToolCallRecovery::with_id_seed(TOOLS, 42);
    let (mut oa, mut ob) = (Vec::new(), Vec::new());
    let t = "<tool_call>{\"name\":\"search\",\"arguments\":{}}</tool_call>";
    a.push(ChatEvent::text(t), &mut oa);
    b.push(ChatEvent::text(t), &mut ob);
    assert_eq!(oa, ob);
    assert!(!oa.is_empty());
}

/// Inputs mixing every shape with plain text.
fn corpus() -> Vec<&'static str> {
    vec![
        "Sure! <tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris \\\"FR\\\" }\"}}\n</tool_call>\n<tool_call>{\"name\":\"search\",\"arguments\":{\"q\":\"ü\"}}</tool_call> bye",
        "[TOOL_CALLS][{\"name\": \"search\", \"arguments\": {\"q\": \"[x]\"}}]",
        "[TOOL_CALLS]get_weather[ARGS]{\"city\": \"{}\"}",
        "<|python_tag|>{\"name\": \"search\", \"parameters\": {\"q\": \"a;b\"}}; {\"name\": \"get_weather\", \"parameters\": {}}",
        "{\"name\": \"search\", \"arguments\": {\"q\": \"<tool_call>\"}}",
        "text ```json\n{\"name\": \"search\", \"arguments\": {}}\n``` more ``` and ```rust\nfn x() {}\n```",
        "no calls here, just < and [ and ` and { braces }",
        "<tool_call>{\"name\":\"nope\",\"arguments\":{}}</tool_call><tool_call>{\"name\":\"search\"}</tool_call>",
        "  \n [{\"name\": \"search\", \"arguments\": {}}]",
        "日本語 <tool_call>{\"name\":\"search\",\"arguments\":{\"q\":\"日本\"}}</tool_call>",
        "I use a <tool_call> tag.\n<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"a </tool_call> b\"}}</tool_call>",
        "<tool_call>{\"name\": \"search\", \"arguments\": {}}\n<tool_call>\n{\"name\": \"get_weather\"}\n</tool_call> ok",
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}\nDone.",
        "{\"name\": \"search\", \"arguments\": {}}\n{\"name\": \"search\", \"description\": \"d\"} tail",
        "<tool_call> mentioned, then ```json\n{\"name\": \"search\", \"version\": 2}\n``` and <tool_call>{\"name\":\"search\",\"type\":\"function\"}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The released text and the calls do not depend on how the text is split.
    #[test]
    fn same_result_whatever_the_split(which in any::<prop::sample::Index>(), cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..12)) {
        let corpus = corpus();
        let input = corpus[which.index(corpus.len())];
        let whole = run(&[input]);
        let mut points: Vec<usize> = cuts.iter().map(|c| c.index(input.len() + 1)).collect();
        points.sort_unstable();
        points.dedup();
        let mut pieces = Vec::new();
        let mut last = 0;
        for p in points {
            // Deltas are strings: cut on character boundaries.
            let mut p = p;
            while !input.is_char_boundary(p) { p -= 1; }
            if p > last { pieces.push(&input[last..p]); last = p; }
        }
        pieces.push(&input[last..]);
        prop_assert_eq!(run(&pieces), whole);
    }

    /// Arbitrary text never panics, and text without any call is released unchanged.
    #[test]
    fn arbitrary_text_is_released_or_recovered(text in "[a-z<>\\[\\]{}\"`:;_|, \n]{0,80}") {
        let o = run(&[&text]);
        if o.calls.is_empty() {
            prop_assert_eq!(o.text, text);
        }
    }
}

#[test]
fn corpus_outcomes() {
    let c = corpus();
    let o = run(&[c[0]]);
    assert_eq!(o.text, "Sure! bye");
    assert_eq!(o.calls.len(), 2);
    assert_eq!(
        run(&[c[4]]).calls,
        vec![call("search", json!({"q": "<tool_call>"}))]
    );
    let o = run(&[c[5]]);
    assert_eq!(o.calls, vec![call("search", json!({}))]);
    assert_eq!(o.text, "text more ``` and ```rust\nfn x() {}\n```");
    let o = run(&[c[7]]);
    assert_eq!(o.calls, vec![call("search", json!({}))]);
    assert_eq!(
        o.text,
        "<tool_call>{\"name\":\"nope\",\"arguments\":{}}</tool_call>"
    );
    assert_eq!(run(&[c[8]]).calls.len(), 1);
    let o = run(&[c[10]]);
    assert_eq!(
        o.calls,
        vec![call("search", json!({"q": "a </tool_call> b"}))]
    );
    assert_eq!(o.text, "I use a <tool_call> tag.\n");
    let o = run(&[c[11]]);
    assert_eq!(
        o.calls,
        vec![call("search", json!({})), call("get_weather", json!({}))]
    );
    assert_eq!(o.text, "ok");
    let o = run(&[c[12]]);
    assert_eq!(o.calls.len(), 2);
    assert_eq!(o.text, "Done.");
    // All or none: the second object is not a call, so neither is the first.
    let o = run(&[c[13]]);
    assert!(o.calls.is_empty());
    assert_eq!(o.text, c[13]);
    let o = run(&[c[14]]);
    assert_eq!(o.calls, vec![call("search", json!({}))]);
    assert_eq!(
        o.text,
        "<tool_call> mentioned, then ```json\n{\"name\": \"search\", \"version\": 2}\n``` and "
    );
}

#[test]
fn a_native_call_after_a_recovered_one_gets_its_own_index() {
    use switchyard_stream::openai::OpenAiStreamEncoder;
    let mut recovery = TextToolCallRecovery::with_id_seed(["search"], 1);
    let mut out = Vec::new();
    let input = [
        ChatEvent::text(r#"<tool_call>{"name": "search", "arguments": {"q": "a"}}</tool_call>"#),
        // The upstream's own call, numbered from 0 as if nothing came before it.
        ChatEvent::ToolCallStart {
            index: 0,
            id: "call_x".into(),
            name: "search".into(),
        },
        ChatEvent::ToolCallArgs {
            index: 0,
            fragment: r#"{"q": "b"}"#.into(),
        },
        ChatEvent::ToolCallEnd { index: 0 },
        ChatEvent::done(FinishReason::ToolCalls),
    ];
    for event in input {
        recovery.push(event, &mut out);
    }
    recovery.finish(&mut out);
    let starts: Vec<(u32, &str)> = out
        .iter()
        .filter_map(|e| match e {
            ChatEvent::ToolCallStart { index, name, .. } => Some((*index, name.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(starts, [(0, "search"), (1, "search")]);
    assert!(out.iter().any(|e| *e
        == ChatEvent::ToolCallArgs {
            index: 1,
            fragment: r#"{"q": "b"}"#.into()
        }));
    // An OpenAI client gets both calls and a complete stream.
    let mut enc = OpenAiStreamEncoder::new("m", "chatcmpl-1", 1, false);
    let mut wire = Vec::new();
    out.iter().for_each(|e| enc.encode(e, &mut wire));
    let text = String::from_utf8(wire).unwrap();
    assert!(!text.contains("\"error\""), "{text}");
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
}

/// A sentence that names the tag before the real call: the first `<tool_call>` opens a
/// "block" that runs to the real call's closing tag, fails to parse, and the whole span,
/// real call included, is released as text.
#[test]
fn a_call_after_a_sentence_mentioning_the_tag_is_recovered() {
    let o = run(&[
        "I will wrap the call in a <tool_call> tag.\n",
        "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"rust\"}}</tool_call>",
    ]);
    assert_eq!(o.calls, vec![call("search", json!({"q": "rust"}))], "{o:?}");
    assert_eq!(o.text, "I will wrap the call in a <tool_call> tag.\n");
    assert_eq!(o.done, Some(FinishReason::ToolCalls));
}

/// A small model that forgets the first closing tag: both calls are lost, as text.
#[test]
fn a_block_missing_its_closing_tag_does_not_swallow_the_next_call() {
    let o = run(&[
        "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"a\"}}\n",
        "<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Oslo\"}}</tool_call>",
    ]);
    assert_eq!(
        o.calls,
        vec![
            call("search", json!({"q": "a"})),
            call("get_weather", json!({"city": "Oslo"}))
        ],
        "{o:?}"
    );
}

/// Text after a `<tool_call>` mention that cannot be a call (no JSON follows the tag) is
/// held back until the answer ends: a streaming client sees nothing more.
#[test]
fn text_after_a_tag_mention_is_not_held_until_the_end() {
    let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
    let mut out = Vec::new();
    rec.push(
        ChatEvent::text("Qwen wraps its calls in <tool_call> tags. "),
        &mut out,
    );
    for _ in 0..50 {
        rec.push(
            ChatEvent::text("Here is more of the explanation. "),
            &mut out,
        );
    }
    let released = summarise(&out).text;
    assert!(
        released.contains("Here is more of the explanation."),
        "held back while the answer streams: {released:?}"
    );
}

/// A closing tag inside an argument string (an agent writing a file about tool calls)
/// cuts the block there: the call is lost and its JSON is shown as text.
#[test]
fn a_closing_tag_inside_an_argument_string_does_not_cut_the_call() {
    let o = run(&[
        "<tool_call>{\"name\": \"search\", \"arguments\": {\"q\": \"what does </tool_call> mean\"}}</tool_call>",
    ]);
    assert_eq!(
        o.calls,
        vec![call("search", json!({"q": "what does </tool_call> mean"}))],
        "{o:?}"
    );
    assert_eq!(o.text, "");
}

/// Two bare call objects, one per line: the first becomes a call, the second leaks into
/// the text as raw JSON (one call of two is lost, yet the answer says `tool_calls`).
#[test]
fn bare_calls_on_separate_lines_are_all_recovered_or_none() {
    let o = run(&[
        "{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n{\"name\": \"search\", \"arguments\": {\"q\": \"x\"}}",
    ]);
    let all = vec![
        call("get_weather", json!({"city": "Paris"})),
        call("search", json!({"q": "x"})),
    ];
    assert!(
        o.calls == all || o.calls.is_empty(),
        "half recovered: calls {:?}, text {:?}",
        o.calls,
        o.text
    );
}

/// A JSON object that merely has a `name` equal to an offered tool (a config or a
/// description shown to the user, an answer in JSON mode) and none of the call keys
/// (`arguments`/`parameters`) becomes a call with `{}` arguments: its other keys are
/// dropped and the agent runs the tool with no arguments.
#[test]
fn an_object_with_a_tool_name_but_no_call_keys_stays_text() {
    for input in [
        "{\"name\": \"search\", \"description\": \"Searches the web\", \"enabled\": true}",
        "Here is the tool's config:\n```json\n{\"name\": \"search\", \"version\": \"1.2.0\", \"timeout_s\": 30}\n```\n",
    ] {
        let o = run(&[input]);
        assert!(o.calls.is_empty(), "{input:?} became {:?}", o.calls);
        assert_eq!(o.text, input);
    }
}

/// A tool's definition echoed back (OpenAI's `{"type":"function","function":{...}}` with its
/// `description` and `parameters` schema) is text, not a call with the schema as arguments.
#[test]
fn an_echoed_tool_definition_stays_text() {
    for input in [
        "{\"type\": \"function\", \"function\": {\"name\": \"search\", \"description\": \"Searches the web\", \"parameters\": {\"type\": \"object\", \"properties\": {\"q\": {\"type\": \"string\"}}}}}",
        "{\"name\": \"search\", \"description\": \"Searches\", \"parameters\": {\"type\": \"object\"}}",
    ] {
        let o = run(&[input]);
        assert!(o.calls.is_empty(), "{input:?} became {:?}", o.calls);
        assert_eq!(o.text, input);
    }
}

/// An object with only a `name` (perhaps with `type` and `id`) is a call without arguments,
/// bare or in a block; `"arguments": null` too.
#[test]
fn an_object_with_only_a_tool_name_is_a_call_without_arguments() {
    for input in [
        "{\"name\": \"search\"}",
        "<tool_call>{\"name\": \"search\"}</tool_call>",
        "<tool_call>{\"type\": \"function\", \"id\": \"c1\", \"name\": \"search\"}</tool_call>",
        "<tool_call>{\"type\": \"function\", \"function\": {\"name\": \"search\"}}</tool_call>",
        "<tool_call>{\"name\": \"search\", \"arguments\": null}</tool_call>",
    ] {
        let o = run(&[input]);
        assert_eq!(o.calls, vec![call("search", json!({}))], "{input:?}");
        assert_eq!(o.text, "", "{input:?}");
        assert_eq!(o.done, Some(FinishReason::ToolCalls));
    }
}

/// A tag mention is released at once, also when the text after it is not JSON; the same
/// for the other tags.
#[test]
fn a_tag_not_followed_by_json_is_released_at_once() {
    for tag in ["<tool_call>", "<|python_tag|>", "[TOOL_CALLS]"] {
        let mut rec = TextToolCallRecovery::with_id_seed(TOOLS, 1);
        let mut out = Vec::new();
        rec.push(
            ChatEvent::text(format!("The {tag} \n marker, here")),
            &mut out,
        );
        assert_eq!(
            summarise(&out).text,
            format!("The {tag} \n marker, here"),
            "{tag}"
        );
    }
}

/// A complete call followed by something else than its closing tag, another block or the
/// end is not a call block: text, unchanged.
#[test]
fn a_hermes_value_followed_by_prose_stays_text() {
    let input = "<tool_call>{\"name\": \"search\", \"arguments\": {}} is how calls look.";
    let o = run(&[input]);
    assert!(o.calls.is_empty(), "{o:?}");
    assert_eq!(o.text, input);
}

/// Every corpus input cut once at each character boundary, and fed one character at a
/// time, gives the result of the whole.
#[test]
fn every_single_cut_and_char_by_char_give_the_same_result() {
    for input in corpus() {
        let whole = run(&[input]);
        for at in (0..=input.len()).filter(|&i| input.is_char_boundary(i)) {
            assert_eq!(
                run(&[&input[..at], &input[at..]]),
                whole,
                "{input:?} cut at {at}"
            );
        }
        let chars: Vec<String> = input.chars().map(String::from).collect();
        let pieces: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(run(&pieces), whole, "{input:?} char by char");
    }
}
