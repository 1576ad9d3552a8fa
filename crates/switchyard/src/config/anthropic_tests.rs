//! `api: "anthropic"` providers in the config file: parsing, validation, defaults, building.

use super::build::{build_provider, model_info, timeouts};
use super::*;

fn no_env(_: &str) -> Option<String> {
    None
}

const CLAUDE: &str = r#"{
  providers: {
    claude: { api: "anthropic", base_url: "https://api.anthropic.com", api_key: "sk-ant-x",
              anthropic_beta: ["prompt-caching-2024-07-31"],
              models: [ { id: "claude-haiku-4-5", input_usd_per_mtok: 1, output_usd_per_mtok: 5,
                          cache_read_usd_per_mtok: 0.1, cache_write_usd_per_mtok: 1.25 } ] },
  },
}"#;

#[test]
fn an_anthropic_provider_parses_builds_and_is_cloud_with_short_timeouts() {
    let c = parse_str(CLAUDE, &no_env).unwrap();
    let p = &c.providers["claude"];
    assert_eq!(p.api, ProviderApi::Anthropic);
    let locality = build::locality(p);
    assert_eq!(locality, switchyard_core::Locality::Cloud);
    assert_eq!(timeouts(p, locality).first_token.as_secs(), 60);
    let price = model_info(&p.models[0], locality).price.unwrap();
    let usage = switchyard_core::Usage {
        prompt_tokens: 1_000,
        cache_read_tokens: 10_000,
        cache_creation_tokens: 1_000,
        ..Default::default()
    };
    // 1 * 1000 + 0.1 * 10000 + 1.25 * 1000 micro-dollars.
    assert_eq!(price.cost_micro_usd(&usage), 3_250);
    let built = build_provider("claude", p).unwrap();
    assert!(built.slot.models.iter().any(|m| m.id == "claude-haiku-4-5"));
}

#[test]
fn fields_of_other_apis_are_refused_with_their_path() {
    let cases = [
        (
            r#"{ providers: { c: { api: "anthropic", base_url: "https://api.anthropic.com", num_ctx: 8192 } } }"#,
            "providers.c.num_ctx",
        ),
        (
            r#"{ providers: { o: { api: "openai", base_url: "https://api.openai.com/v1", anthropic_beta: ["x"] } } }"#,
            "providers.o.anthropic_beta",
        ),
        (
            r#"{ providers: { c: { api: "anthropic", base_url: "https://api.anthropic.com", upstream_streaming: "as_client" } } }"#,
            "providers.c.upstream_streaming",
        ),
    ];
    for (text, path) in cases {
        let e = parse_str(text, &no_env).unwrap_err();
        assert_eq!(e.path.as_deref(), Some(path), "{e}");
    }
}
