//! Property tests of the config parser: whatever text an operator writes (or a broken editor
//! leaves behind), parsing answers a config or a located error, never a panic. These stand in
//! for a fuzz target: the parser lives in the binary crate, which has no library target.

use super::*;
use proptest::prelude::*;

const VALID: &str = r#"{
  server: { listen: "127.0.0.1:4141",
            keys: [ { id: "laptop", token: "env:KEY", privacy: "local-only" } ] },
  providers: {
    local: { api: "ollama", base_url: "http://127.0.0.1:11434", locality: "local",
             timeouts: { connect_ms: 2000, first_token_ms: 300000, idle_ms: 120000 } },
    cloud: { api: "openai", base_url: "https://api.openai.com/v1", locality: "cloud",
             api_key: "env:KEY",
             models: [ { id: "gpt-4.1-mini", input_usd_per_mtok: 0.4, output_usd_per_mtok: 1.6 } ] },
  },
  routes: { chat: { targets: ["local/qwen2.5:7b", "cloud/gpt-4.1-mini"],
                    overflow: { queue_depth: 3, ttft_p50_ms: 2500 } } },
  policy: { default_privacy: "any", cloud_fallback: true, budget: { usd_per_day: 10 } },
}
"#;

fn env(name: &str) -> Option<String> {
    (name == "KEY").then(|| "sk-test".to_owned())
}

/// An error's line, when it has one, lies inside the text.
fn check_located(text: &str, result: Result<FileConfig, ConfigError>) {
    if let Err(e) = result {
        let lines = text.lines().count().max(1);
        if let Some(line) = e.line {
            assert!(
                line >= 1 && line <= lines + 1,
                "line {line} of {lines}: {e}"
            );
        }
        assert!(!e.message.is_empty(), "an error says what is wrong");
    }
}

/// Cuts `text` at char boundaries near the given fractions.
fn boundary(text: &str, fraction: f64) -> usize {
    let mut at = ((text.len() as f64) * fraction) as usize;
    while at < text.len() && !text.is_char_boundary(at) {
        at += 1;
    }
    at.min(text.len())
}

#[test]
fn the_valid_base_parses() {
    assert!(parse_str(VALID, &env).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,300}") {
        check_located(&text, parse_str(&text, &env));
    }

    #[test]
    fn a_deleted_span_never_panics(from in 0.0f64..1.0, len in 0.0f64..0.2) {
        let start = boundary(VALID, from);
        let end = boundary(VALID, (from + len).min(1.0)).max(start);
        let text = format!("{}{}", &VALID[..start], &VALID[end..]);
        check_located(&text, parse_str(&text, &env));
    }

    #[test]
    fn an_inserted_fragment_never_panics(
        at in 0.0f64..1.0,
        fragment in prop_oneof![
            Just("{"), Just("}"), Just("["), Just("]"), Just(","), Just(":"), Just("\""),
            Just("-1"), Just("1e309"), Just("null"), Just("env:"), Just("x: 1,"),
            Just("\u{feff}"), Just("é"), Just("//"), Just("/*"),
        ],
    ) {
        let cut = boundary(VALID, at);
        let text = format!("{}{}{}", &VALID[..cut], fragment, &VALID[cut..]);
        check_located(&text, parse_str(&text, &env));
    }
}
