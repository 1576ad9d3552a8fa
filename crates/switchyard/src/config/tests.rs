use super::*;

fn env_with(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        vars.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

const FULL: &str = r#"// The example from the design, plus a few extras.
{
  server: { listen: "127.0.0.1:4141",
            keys: [ { id: "laptop", token: "env:SWITCHYARD_KEY", privacy: "local-only" },
                    { id: "ci", token: "env:CI_KEY", requests_per_minute: 60, allowed_routes: ["chat"] } ] },
  providers: {
    local: { api: "ollama", base_url: "http://127.0.0.1:11434", locality: "local",
             discover: true, max_concurrency: 2, max_queue: 16,
             timeouts: { connect_ms: 2000, first_token_ms: 300000, idle_ms: 120000 } },
    cloud: { api: "openai", base_url: "https://api.openai.com/v1", locality: "cloud",
             api_key: "env:OPENAI_API_KEY", max_tokens_field: "max_completion_tokens",
             headers: { "x-org": "env:ORG" },
             models: [ { id: "gpt-4.1-mini", input_usd_per_mtok: 0.4, output_usd_per_mtok: 1.6 } ] },
  },
  routes: { chat: { targets: ["local/qwen2.5:7b-instruct-q4_K_M", "cloud/gpt-4.1-mini"],
                    overflow: { queue_depth: 3, ttft_p50_ms: 2500 } } },
  policy: { default_privacy: "any", cloud_fallback: true, budget: { usd_per_day: 10 } },
  callers: { ci: { privacy: "local-only" } },
}
"#;

const FULL_ENV: &[(&str, &str)] = &[
    ("SWITCHYARD_KEY", "sk-laptop"),
    ("CI_KEY", "sk-ci"),
    ("OPENAI_API_KEY", "sk-openai"),
    ("ORG", "org-1"),
];

#[test]
fn the_design_example_parses_and_resolves_secrets() {
    let c = parse_str(FULL, &env_with(FULL_ENV)).unwrap();
    assert_eq!(c.server.keys.len(), 2);
    assert_eq!(c.server.keys[0].token.value(), "sk-laptop");
    let cloud = &c.providers["cloud"];
    assert_eq!(cloud.api_key.as_ref().unwrap().value(), "sk-openai");
    assert_eq!(cloud.headers["x-org"].value(), "org-1");
    assert_eq!(c.routes["chat"].targets.len(), 2);
    assert_eq!(c.policy.budget.usd_per_day, Some(10.0));
    // Debug output never shows a resolved secret.
    let debug = format!("{c:?}");
    assert!(
        !debug.contains("sk-openai") && !debug.contains("sk-laptop"),
        "{debug}"
    );
}

#[test]
fn unknown_key_names_path_and_line() {
    let text = "{\n  providers: {\n    local: {\n      api: 'ollama',\n      base_url: 'http://127.0.0.1:11434',\n      timeouts: { conect_ms: 2000 },\n    },\n  },\n}\n";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::UnknownKey);
    assert_eq!(
        e.path.as_deref(),
        Some("providers.local.timeouts.conect_ms")
    );
    assert_eq!(e.line, Some(6));
    let shown = e.to_string();
    assert!(
        shown.contains("line 6") && shown.contains("conect_ms"),
        "{shown}"
    );
    assert!(
        shown.contains("connect_ms"),
        "the message lists the known keys: {shown}"
    );
}

#[test]
fn unknown_key_in_router_sections_and_arrays() {
    let text = "{\n  providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n  routes: {\n    chat: { targets: ['l/m'], fallbak: false },\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("routes.chat.fallbak"));
    assert_eq!(e.line, Some(4));

    let text = "{\n  server: {\n    keys: [\n      { id: 'a', token: 'x' },\n      { id: 'b', token: 'y',\n        privacy: 'local-only', rpm: 3 },\n    ],\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("server.keys[1].rpm"));
    assert_eq!(e.line, Some(6));

    let e = parse_str("{ polcy: {} }", &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("polcy"));
    assert_eq!(e.line, Some(1));
}

#[test]
fn wrong_types_and_values_name_the_key() {
    let text = "{\n  providers: {\n    l: { api: 'ollama', base_url: 'http://127.0.0.1:1',\n         max_concurrency: 'two' },\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::InvalidValue);
    assert_eq!(e.path.as_deref(), Some("providers.l.max_concurrency"));
    assert_eq!(e.line, Some(4));

    let text =
        "{\n  providers: {\n    l: { api: 'grpc', base_url: 'http://127.0.0.1:1' },\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("providers.l.api"));
    assert_eq!(e.line, Some(3));

    let text =
        "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1', locality: 'moon' } } }";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("providers.l.locality"));

    let text = "{ server: { listen: 'localhost' } }";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("server.listen"));
}

#[test]
fn syntax_errors_have_a_line() {
    let text = "{\n  server: {\n    listen: '127.0.0.1:1'\n    keys: [],\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Syntax);
    // The missing comma belongs at the end of line 3, where the parser stops.
    assert_eq!(e.line, Some(3), "{e}");
    assert!(!e.message.contains('\n'), "one-line message: {}", e.message);
    assert!(e.message.contains("expected"), "{}", e.message);
}

#[test]
fn missing_env_var_names_the_key() {
    let text = "{\n  providers: {\n    cloud: { api: 'openai', base_url: 'https://api.openai.com/v1',\n             api_key: 'env:SWITCHYARD_TEST_UNSET_KEY' },\n  },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::MissingEnv);
    assert_eq!(e.path.as_deref(), Some("providers.cloud.api_key"));
    assert_eq!(e.line, Some(4));
    assert!(
        e.message.contains("SWITCHYARD_TEST_UNSET_KEY"),
        "{}",
        e.message
    );

    let text = "{ server: { keys: [ { id: 'a', token: 'env:EMPTY' } ] } }";
    let e = parse_str(text, &env_with(&[("EMPTY", "  ")])).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::MissingEnv);
    assert_eq!(e.path.as_deref(), Some("server.keys[0].token"));
}

#[test]
fn validation_errors_name_the_key_and_line() {
    let cases: &[(&str, &str, usize)] = &[
        (
            "{\n providers: {\n  'a/b': { api: 'ollama', base_url: 'http://127.0.0.1:1' } } }",
            "providers.a/b",
            3,
        ),
        (
            "{\n providers: {\n  l: { api: 'ollama',\n       base_url: 'not a url' } } }",
            "providers.l.base_url",
            4,
        ),
        (
            "{\n providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n routes: { chat: { targets: ['l/m',\n   'nope/m'] } } }",
            "routes.chat.targets[1]",
            4,
        ),
        (
            "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n routes: { chat: { targets: ['l'] } } }",
            "routes.chat.targets[0]",
            2,
        ),
        (
            "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1',\n   timeouts: { first_token_ms: 0 } } } }",
            "providers.l.timeouts.first_token_ms",
            2,
        ),
        (
            "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1',\n   max_concurrency: 0 } } }",
            "providers.l.max_concurrency",
            2,
        ),
        (
            "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1',\n   num_ctx: 8192 } } }",
            "providers.l.num_ctx",
            2,
        ),
        (
            "{ providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1',\n   responses: true } } }",
            "providers.l.responses",
            2,
        ),
        (
            "{ server: { keys: [ { id: 'a', token: 'x' },\n { id: 'a', token: 'y' } ] } }",
            "server.keys[1].id",
            2,
        ),
        (
            "{ callers: {\n  nobody: { privacy: 'local-only' } } }",
            "callers.nobody",
            2,
        ),
        (
            "{ policy: { budget: {\n usd_per_day: -1 } } }",
            "policy.budget.usd_per_day",
            2,
        ),
        (
            "{ providers: { l: { api: 'openai', base_url: 'http://127.0.0.1:1/v1',\n discover: false } } }",
            "providers.l.discover",
            2,
        ),
        (
            "{ providers: { l: { api: 'openai', base_url: 'http://127.0.0.1:1/v1',\n models: [ { id: 'm' }, { id: 'm' } ] } } }",
            "providers.l.models[1].id",
            2,
        ),
    ];
    for (text, path, line) in cases {
        let e = parse_str(text, &no_env).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Invalid, "{text}: {e}");
        assert_eq!(e.path.as_deref(), Some(*path), "{text}: {e}");
        assert_eq!(e.line, Some(*line), "{text}: {e}");
    }
}

#[test]
fn non_loopback_listen_is_fine_with_keys_or_the_insecure_flag() {
    let listen_ok = |text: &str| {
        let file = parse_str(text, &no_env).unwrap();
        validate::validate_listen(&file, file.server.listen)
    };
    let with_keys = "{ server: { listen: '0.0.0.0:4141', keys: [ { id: 'a', token: 'x' } ] } }";
    listen_ok(with_keys).unwrap();
    let insecure = "{ server: { listen: '0.0.0.0:4141', insecure_listen: true } }";
    listen_ok(insecure).unwrap();
}

/// The listen policy is checked against the address bound, not in validation: a file
/// whose `server.listen` alone is refused loads, and is fine under `--listen 127.0.0.1:…`.
#[test]
fn the_listen_policy_is_checked_against_the_address_bound() {
    let text = "{ server: {\n listen: '0.0.0.0:4141' } }";
    let file = parse_str(text, &no_env).unwrap();
    let e = validate::validate_listen(&file, file.server.listen).unwrap_err();
    let e = locate_error(e, text);
    assert_eq!(e.kind, ConfigErrorKind::Invalid, "{e}");
    assert_eq!(e.path.as_deref(), Some("server.listen"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.to_string().contains("without API keys"), "{e}");
    for loopback in ["127.0.0.1:4141", "[::1]:4141", "[::ffff:127.0.0.1]:4141"] {
        validate::validate_listen(&file, loopback.parse().unwrap()).unwrap();
    }
}

#[test]
fn empty_config_means_the_default_ollama() {
    let c = parse_str("{}", &no_env).unwrap();
    assert_eq!(c.server.listen.to_string(), "127.0.0.1:4141");
    let p = &c.providers[DEFAULT_PROVIDER_ID];
    assert_eq!(p.api, ProviderApi::Ollama);
    assert_eq!(p.base_url, DEFAULT_OLLAMA_URL);
    let builtin = Config::builtin();
    assert_eq!(builtin.file.providers.len(), 1);
    assert!(builtin.path.is_none());
}

#[test]
fn load_file_reports_the_file_and_checksums_it() {
    let dir = std::env::temp_dir().join(format!("switchyard-config-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.json5");
    std::fs::write(&good, "{ server: { listen: '127.0.0.1:4141' } }").unwrap();
    let c = load_file(&good).unwrap();
    let sum = c.checksum.unwrap();
    assert!(sum.starts_with("sha256:") && sum.len() == 7 + 64, "{sum}");
    assert_eq!(sum, checksum(b"{ server: { listen: '127.0.0.1:4141' } }"));

    let bad = dir.join("bad.json5");
    std::fs::write(&bad, "{\n  sever: {},\n}").unwrap();
    let e = load_file(&bad).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.starts_with(&format!("{}:2: sever:", bad.display())),
        "{shown}"
    );

    let e = load_file(&dir.join("absent.json5")).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Read);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn secret_literal_is_accepted() {
    let c = parse_str(
        "{ server: { keys: [ { id: 'a', token: 'plain' } ] } }",
        &no_env,
    )
    .unwrap();
    assert_eq!(c.server.keys[0].token.value(), "plain");
    assert_eq!(Secret::literal("env:X").env_name(), Some("X"));
}

#[test]
fn build_maps_the_config_onto_router_gateway_and_clients() {
    use std::time::Duration;
    use switchyard_core::{Locality, PrivacyClass};

    let c = parse_str(FULL, &env_with(FULL_ENV)).unwrap();
    // Localities as written; inferred ones: loopback -> local, anything else -> cloud.
    assert_eq!(build::locality(&c.providers["local"]), Locality::Local);
    let inferred = parse_str(
        "{ providers: { a: { api: 'ollama', base_url: 'http://localhost:11434' },\n b: { api: 'openai', base_url: 'https://example.invalid/v1' } } }",
        &no_env,
    )
    .unwrap();
    assert_eq!(build::locality(&inferred.providers["a"]), Locality::Local);
    assert_eq!(build::locality(&inferred.providers["b"]), Locality::Cloud);

    // Timeouts: configured values, then locality defaults.
    let local = build::timeouts(&c.providers["local"], Locality::Local);
    assert_eq!(local.first_token, Duration::from_secs(300));
    assert_eq!(local.connect, Duration::from_secs(2));
    let cloud = build::timeouts(&c.providers["cloud"], Locality::Cloud);
    assert_eq!(cloud.first_token, Duration::from_secs(60));

    // Secrets land in the transport config, resolved.
    let transport = build::client_config(&c.providers["cloud"], Locality::Cloud);
    assert_eq!(transport.bearer_token.as_deref(), Some("sk-openai"));
    assert_eq!(
        transport.extra_headers,
        vec![("x-org".to_owned(), "org-1".to_owned())]
    );

    // Static models carry prices.
    let info = build::model_info(&c.providers["cloud"].models[0], Locality::Cloud);
    assert_eq!(info.price.unwrap().output_usd_per_mtok, 1.6);
    // Nothing stated: unknown capabilities, which the router tries.
    assert_eq!(info.capabilities, None);
    let stated = parse_str(
        "{ providers: { c: { api: 'openai', base_url: 'https://api.openai.com/v1', discover: false,\n models: [ { id: 'm', vision: true } ] } } }",
        &no_env,
    )
    .unwrap();
    let caps = build::model_info(&stated.providers["c"].models[0], Locality::Cloud)
        .capabilities
        .unwrap();
    assert!(caps.vision && caps.tools && !caps.thinking, "{caps:?}");

    let router = build::router_config(&c);
    assert_eq!(router.routes["chat"].targets.len(), 2);
    assert_eq!(router.callers["ci"].privacy, Some(PrivacyClass::LocalOnly));

    let gateway = build::gateway_config(&c);
    assert_eq!(gateway.keys.len(), 2);
    assert_eq!(gateway.keys[0].token, "sk-laptop");
    assert_eq!(gateway.keys[0].privacy, Some(PrivacyClass::LocalOnly));
    assert_eq!(gateway.keys[1].requests_per_minute, Some(60));

    // Every provider builds (nothing is contacted).
    let providers = build::build_providers(&c).unwrap();
    assert_eq!(providers.len(), 2);
    let cloud = providers.iter().find(|p| p.slot.id == "cloud").unwrap();
    assert!(
        !cloud.discover,
        "a listed model turns discovery off by default"
    );
    assert_eq!(cloud.slot.locality, Locality::Cloud);
}

#[test]
fn timeouts_default_by_api_and_locality_not_by_a_guessed_cloud() {
    use std::time::Duration;
    use switchyard_core::Locality;

    let c = parse_str(
        "{ providers: {\n\
           lan_ollama: { api: 'ollama', base_url: 'http://192.168.1.20:11434' },\n\
           set: { api: 'ollama', base_url: 'http://192.168.1.20:11434',\n\
                  timeouts: { first_token_ms: 1500, idle_ms: 700 } },\n\
           guessed: { api: 'openai', base_url: 'http://192.168.1.50:8000/v1' },\n\
           lan_openai: { api: 'openai', base_url: 'http://192.168.1.50:8000/v1', locality: 'lan' },\n\
           loopback_openai: { api: 'openai', base_url: 'http://127.0.0.1:8080/v1' },\n\
         } }",
        &no_env,
    )
    .unwrap();
    let defaults = |id: &str| {
        let p = &c.providers[id];
        build::client_config(p, build::locality(p)).timeouts
    };

    // An Ollama server on the LAN, locality not written: still `cloud` for privacy (the
    // safe side), but a model that is loading weights gets Ollama's generous timeouts.
    let p = &c.providers["lan_ollama"];
    assert_eq!(build::locality(p), Locality::Cloud);
    let t = defaults("lan_ollama");
    assert_eq!(t.first_token, Duration::from_secs(300));
    assert_eq!(t.idle, Duration::from_secs(120));
    // The built client gets the same.
    let built = build::build_provider("lan_ollama", p).unwrap();
    assert_eq!(built.slot.locality, Locality::Cloud);

    // What the file sets wins.
    let t = defaults("set");
    assert_eq!(t.first_token, Duration::from_millis(1500));
    assert_eq!(t.idle, Duration::from_millis(700));

    // OpenAI-compatible: short cloud defaults unless the locality is local or lan.
    assert_eq!(defaults("guessed").first_token, Duration::from_secs(60));
    assert_eq!(defaults("guessed").idle, Duration::from_secs(60));
    assert_eq!(defaults("lan_openai").first_token, Duration::from_secs(300));
    assert_eq!(
        defaults("loopback_openai").first_token,
        Duration::from_secs(300)
    );
}

#[test]
fn a_provider_that_cannot_be_built_names_its_key() {
    let text = "{ providers: { l: { api: 'openai', base_url: 'http://127.0.0.1:1/v1',\n  ca_file: '/nonexistent/ca.pem' } } }";
    let c = parse_str(text, &no_env).unwrap();
    let e = build::build_providers(&c).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Provider);
    assert!(e.path.as_deref().unwrap().starts_with("providers.l"), "{e}");
}

/// Text tool-call recovery by default: on for Ollama and local/LAN OpenAI-compatible
/// providers, off for cloud ones and whenever the file says `false`.
#[tokio::test]
async fn text_tool_recovery_defaults_by_api_and_locality() {
    use serde_json::json;
    use switchyard_core::{ChatRequest, Message, ToolSpec, collect_response};
    use switchyard_testkit::{Script, ScriptedCall, TestUpstream, TextCallFormat, UpstreamConfig};

    let call = ScriptedCall::new("get_weather", json!({"city": "Tokyo"}));
    let upstream = TestUpstream::start(UpstreamConfig::default().model_with_script(
        "m",
        Script::tool_calls_as_text(TextCallFormat::Hermes, vec![call]),
    ))
    .await
    .unwrap();
    let (native, v1) = (upstream.base_url(), upstream.openai_base_url());
    let text = format!(
        "{{ providers: {{\n\
           ollama: {{ api: 'ollama', base_url: '{native}' }},\n\
           ollama_off: {{ api: 'ollama', base_url: '{native}', text_tool_recovery: false }},\n\
           local_v1: {{ api: 'openai', base_url: '{v1}' }},\n\
           lan_v1: {{ api: 'openai', base_url: '{v1}', locality: 'lan' }},\n\
           cloud_v1: {{ api: 'openai', base_url: '{v1}', locality: 'cloud' }},\n\
           cloud_on: {{ api: 'openai', base_url: '{v1}', locality: 'cloud', text_tool_recovery: true }},\n\
         }} }}"
    );
    let c = parse_str(&text, &no_env).unwrap();
    let mut req = ChatRequest::new("m", vec![Message::user("weather?")]);
    req.tools.push(ToolSpec {
        name: "get_weather".into(),
        description: None,
        parameters: json!({"type": "object"}),
    });
    for (id, recovered) in [
        ("ollama", true),
        ("ollama_off", false),
        ("local_v1", true),
        ("lan_v1", true),
        ("cloud_v1", false),
        ("cloud_on", true),
    ] {
        let built = build::build_provider(id, &c.providers[id]).unwrap();
        let stream = built.slot.provider.chat(&req).await.unwrap();
        let resp = collect_response(stream).await.unwrap();
        assert_eq!(!resp.tool_calls.is_empty(), recovered, "{id}: {resp:?}");
        assert_eq!(resp.content.contains("<tool_call>"), !recovered, "{id}");
    }
    upstream.shutdown().await;
}

#[test]
fn responses_marks_an_openai_provider_as_a_responses_server() {
    let c = parse_str(
        "{ providers: {\n\
           up: { api: 'openai', base_url: 'http://127.0.0.1:1/v1', responses: true },\n\
           chat: { api: 'openai', base_url: 'http://127.0.0.1:1/v1' },\n\
         } }",
        &no_env,
    )
    .unwrap();
    let served = |id: &str| {
        let built = build::build_provider(id, &c.providers[id]).unwrap();
        built.slot.provider.serves_responses("m")
    };
    assert!(served("up"));
    assert!(!served("chat"));
}

#[test]
fn warm_sections_become_targets_kept_loaded_by_default() {
    use std::time::Duration;
    use switchyard_core::KeepAlive;

    let c = parse_str(
        "{ providers: {\n\
           a: { api: 'ollama', base_url: 'http://127.0.0.1:11434',\n\
                warm: { models: ['qwen3:8b', 'nomic-embed-text'] } },\n\
           b: { api: 'ollama', base_url: 'http://127.0.0.1:11435',\n\
                warm: { models: ['llama3.2'], keep_alive: '30m', timeout_ms: 600000 } },\n\
         } }",
        &no_env,
    )
    .unwrap();
    let (targets, timeout) = build::warm_targets(&c);
    assert_eq!(timeout, Duration::from_secs(600));
    let a: Vec<_> = targets.iter().filter(|t| t.provider == "a").collect();
    assert_eq!(a.len(), 2);
    assert_eq!(a[0].keep_alive, Some(KeepAlive::Seconds(-1.0)));
    let b = targets.iter().find(|t| t.provider == "b").unwrap();
    assert_eq!(b.model, "llama3.2");
    assert_eq!(b.keep_alive, Some(KeepAlive::Duration("30m".into())));
    let e = parse_str(
        "{ providers: { a: { api: 'ollama', base_url: 'http://127.0.0.1:1', warm: { model: ['x'] } } } }",
        &no_env,
    )
    .unwrap_err();
    assert!(e.to_string().contains("warm"), "{e}");
}

#[test]
fn connection_and_body_limits_are_settable_and_checked() {
    use std::time::Duration;

    let c = parse_str(
        "{ server: { max_connections: 100, header_read_timeout_ms: 1500, idle_timeout_ms: 9000,\n body_read_timeout_ms: 700, max_body_memory_bytes: 1048576 } }",
        &no_env,
    )
    .unwrap();
    let gateway = build::gateway_config(&c);
    // 100 fits under any open-files limit the tests run with.
    assert_eq!(gateway.max_connections, 100);
    assert_eq!(gateway.header_read_timeout, Duration::from_millis(1500));
    assert_eq!(gateway.idle_timeout, Duration::from_secs(9));
    assert_eq!(gateway.body_read_timeout, Duration::from_millis(700));
    assert_eq!(gateway.max_body_memory_bytes, 1024 * 1024);
    let defaults = build::gateway_config(&parse_str("{}", &no_env).unwrap());
    assert!(defaults.loopback_is_admin);
    let admin = build::gateway_config(
        &parse_str(
            "{ server: { loopback_is_admin: false, keys: [ { id: 'ops', token: 'x', admin: true }, { id: 'u', token: 'y' } ] } }",
            &no_env,
        )
        .unwrap(),
    );
    assert!(!admin.loopback_is_admin);
    assert!(admin.keys[0].admin && !admin.keys[1].admin);
    assert_eq!(defaults.idle_timeout, Duration::from_secs(120));
    assert_eq!(defaults.max_body_memory_bytes, 256 * 1024 * 1024);

    for field in [
        "max_connections",
        "idle_timeout_ms",
        "body_read_timeout_ms",
        "max_body_memory_bytes",
    ] {
        let text = format!("{{ server: {{\n {field}: 0 }} }}");
        let e = parse_str(&text, &no_env).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Invalid, "{text}: {e}");
        assert_eq!(e.path.as_deref(), Some(format!("server.{field}").as_str()));
        assert_eq!(e.line, Some(2), "{text}: {e}");
    }
}

#[test]
fn responses_section_and_route_flag_for_the_responses_api() {
    let text = "{\n  providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n  routes: { codex: { targets: ['l/m'], drop_unsupported_tools: true } },\n  responses: { ttl_secs: 60, max_entries: 5, max_entry_bytes: 4096 },\n}";
    let c = parse_str(text, &no_env).unwrap();
    assert!(c.routes["codex"].drop_unsupported_tools);
    let file = FileConfig {
        responses: c.responses,
        ..FileConfig::default()
    };
    let bounds = super::build::response_store_config(&file);
    assert_eq!(bounds.ttl, std::time::Duration::from_secs(60));
    assert_eq!(bounds.max_entries, 5);
    assert_eq!(bounds.max_entry_bytes, 4096);
    assert_eq!(
        bounds.max_bytes,
        switchyard_gateway::ResponseStoreConfig::default().max_bytes
    );

    let e = parse_str("{\n  responses: { ttl: 60 },\n}", &no_env).unwrap_err();
    assert_eq!(e.path.as_deref(), Some("responses.ttl"));
    assert_eq!(e.line, Some(2));
}

#[test]
fn drop_unknown_tool_calls_is_a_route_flag_and_must_be_a_bool() {
    let text = "{\n  providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n  routes: { agent: { targets: ['l/m'], drop_unknown_tool_calls: true },\n            chat: { targets: ['l/m'] } },\n}";
    let c = parse_str(text, &no_env).unwrap();
    assert!(c.routes["agent"].drop_unknown_tool_calls);
    assert!(!c.routes["chat"].drop_unknown_tool_calls, "off by default");

    let text = "{\n  providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1' } },\n  routes: { agent: { targets: ['l/m'],\n    drop_unknown_tool_calls: 'yes' } },\n}";
    let e = parse_str(text, &no_env).unwrap_err();
    assert_eq!(
        e.path.as_deref(),
        Some("routes.agent.drop_unknown_tool_calls"),
        "{e}"
    );
    assert_eq!(e.line, Some(4), "{e}");
}

#[test]
fn shared_state_parses_resolves_its_secrets_and_names_mistakes() {
    let text = r#"{ shared_state: { url: "rediss://redis.internal:6380/1", password: "env:REDIS_PASSWORD",
                    key_prefix: "team-a", on_outage: { rate_limits: "closed" } } }"#;
    let c = parse_str(text, &env_with(&[("REDIS_PASSWORD", "pw-1")])).unwrap();
    let shared = c.shared_state.as_ref().unwrap();
    let redis = shared.redis_config();
    assert_eq!(redis.password.as_deref(), Some("pw-1"));
    assert_eq!(redis.key_prefix, "team-a");
    assert_eq!(
        shared.on_outage.budgets,
        switchyard_router::OnOutage::Closed,
        "budgets default to closed"
    );
    assert_eq!(
        shared.on_outage.rate_limits,
        switchyard_router::OnOutage::Closed
    );
    assert_eq!(shared.on_outage.health, switchyard_router::OnOutage::Local);
    assert!(!format!("{c:?}").contains("pw-1"));
    // The whole URL may come from the environment; Sentinel and Cluster URLs are accepted.
    for (url, env) in [
        ("env:REDIS_URL", "redis://:pw@127.0.0.1:6379/0"),
        ("redis+sentinel://10.0.0.1:26379,10.0.0.2:26379/main", ""),
        ("redis+cluster://10.0.0.1:7000,10.0.0.2:7000", ""),
    ] {
        let text = format!("{{ shared_state: {{ url: \"{url}\" }} }}");
        let env: &'static [(&str, &str)] = if env.is_empty() {
            &[]
        } else {
            &[("REDIS_URL", "redis://:pw@127.0.0.1:6379/0")]
        };
        parse_str(&text, &env_with(env)).unwrap();
    }
    for (text, path, code) in [
        (
            "{ shared_state: {\n url: 'http://127.0.0.1:6379' } }",
            "shared_state.url",
            "config_invalid",
        ),
        (
            "{ shared_state: {\n url: 'redis+sentinel://10.0.0.1:26379' } }",
            "shared_state.url",
            "config_invalid",
        ),
        (
            "{ shared_state: { url: 'redis://127.0.0.1:6379/0',\n key_prefix: '{x}' } }",
            "shared_state.key_prefix",
            "config_invalid",
        ),
        (
            "{ shared_state: { url: 'redis://127.0.0.1:6379/0',\n on_outage: { budgets: 'open' } } }",
            "shared_state.on_outage.budgets",
            "config_invalid_value",
        ),
        (
            "{ shared_state: { url: 'env:NOPE' } }",
            "shared_state.url",
            "config_missing_env",
        ),
        (
            "{ shared_state: { url: 'rediss://127.0.0.1:6379/0',\n ca_file: '/nonexistent/ca.pem' } }",
            "shared_state.ca_file",
            "config_invalid",
        ),
        (
            "{ shared_state: { url: 'redis://127.0.0.1:6379/0',\n ca_file: '/nonexistent/ca.pem' } }",
            "shared_state.ca_file",
            "config_invalid",
        ),
    ] {
        let e = parse_str(text, &no_env).unwrap_err();
        assert_eq!(e.kind.reason_code(), code, "{text}: {e}");
        assert_eq!(e.path.as_deref(), Some(path), "{text}: {e}");
    }
}

#[test]
fn concurrency_scope_fleet_needs_shared_state_and_names_mistakes() {
    use switchyard_router::ConcurrencyScope;
    let provider = "providers: { up: { api: 'openai', base_url: 'http://127.0.0.1:9/v1', models: [ { id: 'm' } ],";
    let fleet = format!(
        "{{ {provider} max_concurrency: 2, concurrency_scope: 'fleet' }} }},\n shared_state: {{ url: 'redis://127.0.0.1:6379/0' }} }}"
    );
    let c = parse_str(&fleet, &no_env).unwrap();
    assert_eq!(c.providers["up"].concurrency_scope, ConcurrencyScope::Fleet);
    let default = format!("{{ {provider} }} }} }}");
    let c = parse_str(&default, &no_env).unwrap();
    assert_eq!(
        c.providers["up"].concurrency_scope,
        ConcurrencyScope::Replica,
        "replica by default"
    );
    for (text, code) in [
        (
            format!("{{ {provider}\n concurrency_scope: 'fleet' }} }} }}"),
            "config_invalid",
        ),
        (
            format!("{{ {provider}\n concurrency_scope: 'cluster' }} }} }}"),
            "config_invalid_value",
        ),
    ] {
        let e = parse_str(&text, &no_env).unwrap_err();
        assert_eq!(e.kind.reason_code(), code, "{text}: {e}");
        assert_eq!(
            e.path.as_deref(),
            Some("providers.up.concurrency_scope"),
            "{text}: {e}"
        );
        assert_eq!(e.line, Some(2), "{text}: {e}");
    }
}

#[test]
fn upstream_streaming_defaults_to_always_and_takes_as_client() {
    use switchyard_http::UpstreamStreaming;
    let text = r#"{ providers: {
        a: { api: "ollama", base_url: "http://127.0.0.1:11434" },
        b: { api: "openai", base_url: "http://127.0.0.1:8000/v1", upstream_streaming: "as_client" },
    } }"#;
    let c = parse_str(text, &|_| None).unwrap();
    let of = |id: &str| {
        let p = &c.providers[id];
        build::client_config(p, build::locality(p)).upstream_streaming
    };
    assert_eq!(of("a"), UpstreamStreaming::Always);
    assert_eq!(of("b"), UpstreamStreaming::AsClient);
    let e = parse_str(
        r#"{ providers: { a: { api: "ollama", base_url: "http://127.0.0.1:11434", upstream_streaming: "sometimes" } } }"#,
        &|_| None,
    )
    .unwrap_err();
    assert!(e.to_string().contains("upstream_streaming"), "{e}");
}

#[test]
fn every_price_of_a_model_must_be_a_finite_number_at_least_zero() {
    for field in [
        "input_usd_per_mtok",
        "output_usd_per_mtok",
        "cache_read_usd_per_mtok",
        "cache_write_usd_per_mtok",
    ] {
        for bad in ["-3", "-Infinity", "NaN"] {
            let text = format!(
                "{{ providers: {{ c: {{ api: 'anthropic', base_url: 'https://api.anthropic.com', \
                 api_key: 'sk-ant-x', models: [ {{ id: 'claude', {field}: {bad} }} ] }} }} }}"
            );
            match parse_str(&text, &no_env) {
                Ok(c) => panic!("{field}: {bad} accepted: {:?}", c.providers["c"].models[0]),
                Err(e) => {
                    assert_eq!(
                        e.path.as_deref(),
                        Some(format!("providers.c.models[0].{field}").as_str()),
                        "{e}"
                    );
                    assert!(e.to_string().contains("finite number >= 0"), "{e}");
                }
            }
        }
    }
}

// Review (config): a provider id, route alias or caller written twice is silently
// last-wins (JSON5 objects deserialize into `BTreeMap`s), so half of what the user wrote
// is dropped without a word: a whole provider, a route's targets, a caller's privacy.
#[test]
fn an_id_written_twice_in_providers_routes_or_callers_is_refused() {
    let cases: &[(&str, &str)] = &[
        (
            "{ providers: {\n  up: { api: 'ollama', base_url: 'http://127.0.0.1:11434' },\n  up: { api: 'openai', base_url: 'https://api.openai.com/v1', api_key: 'sk-x' } },\n routes: { chat: { targets: ['up/m'] } } }",
            "providers.up",
        ),
        (
            "{ providers: { up: { api: 'ollama', base_url: 'http://127.0.0.1:11434' } },\n routes: {\n  chat: { targets: ['up/a'] },\n  chat: { targets: ['up/b'] } } }",
            "routes.chat",
        ),
        (
            "{ server: { keys: [ { id: 'ci', token: 'sk-ci' } ] },\n callers: {\n  ci: { privacy: 'local-only' },\n  ci: { allowed_routes: ['up/m'] } },\n providers: { up: { api: 'ollama', base_url: 'http://127.0.0.1:11434' } } }",
            "callers.ci",
        ),
    ];
    for (text, path) in cases {
        match parse_str(text, &no_env) {
            Ok(c) => panic!(
                "`{path}` written twice was accepted (last one wins silently): providers {:?}, routes {:?}, callers {:?}",
                c.providers.keys().collect::<Vec<_>>(),
                c.routes,
                c.callers
            ),
            Err(e) => assert_eq!(e.path.as_deref(), Some(*path), "{text}: {e}"),
        }
    }
}

// Review (config): the shared-state URL may come from the environment and carry the
// Redis password (`redis://:PASSWORD@host`); a typo in its scheme or a missing host makes
// the refusal print the whole URL, password included, to stderr and the log.
#[test]
fn a_refused_shared_state_url_never_shows_its_password() {
    for (written, env_value) in [
        ("env:REDIS_URL", "reddis://:hunter2-secret@redis:6379/0"),
        (
            "env:REDIS_URL",
            "redis+sentinal://:hunter2-secret@redis:26379/main",
        ),
        ("env:REDIS_URL", "redis://:hunter2-secret@"),
        ("redis:/:hunter2-secret@redis:6379/0", ""),
    ] {
        let text = format!("{{ shared_state: {{\n url: \"{written}\" }} }}");
        let value = env_value.to_owned();
        let env = move |name: &str| (name == "REDIS_URL").then(|| value.clone());
        let e = parse_str(&text, &env).unwrap_err();
        assert_eq!(e.path.as_deref(), Some("shared_state.url"), "{e}");
        assert!(
            !e.to_string().contains("hunter2-secret"),
            "the refusal prints the Redis password: {e}"
        );
    }
}

// Review (config): json5 0.4 reads every integer field through an `f64` and an `as` cast,
// so a negative, fractional or infinite number in an unsigned field is not refused but
// silently clamped: `max_queue: -1` (a user's "unlimited") becomes 0 (no queue at all:
// every request over the concurrency is refused `queue_full`), `retry.max_retries: -1`
// becomes 0, `responses.ttl_secs: -1` becomes 0 (stored responses expire at once),
// `max_body_bytes: Infinity` becomes usize::MAX (no body limit), `connect_ms: 2.5` is 2.
#[test]
fn numbers_that_do_not_fit_an_unsigned_field_are_refused_not_clamped() {
    let provider = "providers: { l: { api: 'ollama', base_url: 'http://127.0.0.1:1'";
    let cases: Vec<(String, &str)> = vec![
        (
            format!("{{ {provider},\n max_queue: -1 }} }} }}"),
            "providers.l.max_queue",
        ),
        (
            format!("{{ {provider},\n timeouts: {{ connect_ms: 2.5 }} }} }} }}"),
            "providers.l.timeouts.connect_ms",
        ),
        (
            "{ retry: {\n max_retries: -1 } }".to_owned(),
            "retry.max_retries",
        ),
        (
            "{ responses: {\n ttl_secs: -1 } }".to_owned(),
            "responses.ttl_secs",
        ),
        (
            "{ server: {\n max_body_bytes: Infinity } }".to_owned(),
            "server.max_body_bytes",
        ),
    ];
    for (text, path) in &cases {
        match parse_str(text, &no_env) {
            Ok(c) => panic!(
                "`{path}` accepted from {text:?}: max_queue {:?}, connect_ms {:?}, max_retries {}, \
                 ttl_secs {}, max_body_bytes {}",
                c.providers.get("l").and_then(|p| p.max_queue),
                c.providers.get("l").and_then(|p| p.timeouts.connect_ms),
                c.retry.max_retries,
                c.responses.ttl_secs,
                c.server.max_body_bytes,
            ),
            Err(e) => {
                assert_eq!(e.kind, ConfigErrorKind::InvalidValue, "{text}: {e}");
                assert_eq!(e.path.as_deref(), Some(*path), "{text}: {e}");
            }
        }
    }
}

// A `requests_per_minute` above 60,000 (one request a millisecond, the limiter's
// resolution) used to be accepted and then admitted at 60,000 a minute after its burst:
// the file said one limit and the gateway enforced another.
#[test]
fn a_requests_per_minute_finer_than_the_limiter_counts_is_refused() {
    let key = |rpm: u64| {
        format!(
            "{{ server: {{ keys: [\n {{ id: 'ci', token: 'sk-ci', requests_per_minute: {rpm} }} ] }} }}"
        )
    };
    let e = parse_str(&key(60_001), &no_env).unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Invalid, "{e}");
    assert_eq!(
        e.path.as_deref(),
        Some("server.keys[0].requests_per_minute"),
        "{e}"
    );
    assert!(e.to_string().contains("60000"), "{e}");
    let c = parse_str(&key(60_000), &no_env).unwrap();
    assert_eq!(c.server.keys[0].requests_per_minute, Some(60_000));
}

// `warm.keep_alive` took any string; Ollama reads Go durations and numbers of seconds.
#[test]
fn keep_alive_must_be_a_duration_ollama_reads() {
    use super::validate::is_ollama_duration;
    for good in [
        "5m", "1h30m", "-1", "0", "-0", "+0", "300", "2.5", "-1h", "1.5h", ".5s", "5.s", "100ms",
        "10us", "10µs", "10μs", "1ns", "2562047h",
    ] {
        assert!(is_ollama_duration(good), "{good:?} refused");
    }
    for bad in [
        "",
        "half an hour",
        "5 m",
        " 5m",
        "5M",
        "m",
        "5m3",
        "1d",
        "-",
        "+",
        ".",
        ".s",
        "1e3",
        "inf",
        "NaN",
        "5min",
        "3000000h",
        "1h-30m",
    ] {
        assert!(!is_ollama_duration(bad), "{bad:?} accepted");
    }
    let warm = |keep_alive: &str| {
        parse_str(
            &format!(
                "{{ providers: {{ l: {{ api: 'ollama', base_url: 'http://127.0.0.1:11434',\n\
                 warm: {{ models: ['m'], keep_alive: {keep_alive} }} }} }} }}"
            ),
            &no_env,
        )
    };
    for ok in ["-1", "300", "'30m'", "'-1'", "0"] {
        assert!(warm(ok).is_ok(), "{ok}: {:?}", warm(ok).err());
    }
    for refused in ["'half an hour'", "'1d'", "NaN", "Infinity"] {
        let Err(e) = warm(refused) else {
            panic!("keep_alive {refused} accepted");
        };
        assert_eq!(e.kind, ConfigErrorKind::Invalid, "{refused}: {e}");
        assert_eq!(
            e.path.as_deref(),
            Some("providers.l.warm.keep_alive"),
            "{refused}: {e}"
        );
    }
}

// `warm` is loaded through Ollama's native API; other providers only logged a failure.
#[test]
fn warm_is_only_for_ollama_providers() {
    for (api, url) in [
        ("openai", "http://127.0.0.1:8000/v1"),
        ("anthropic", "https://api.anthropic.com"),
    ] {
        let e = parse_str(
            &format!(
                "{{ providers: {{ p: {{ api: '{api}', base_url: '{url}',\n warm: {{ models: ['m'] }} }} }} }}"
            ),
            &no_env,
        )
        .unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Invalid, "{api}: {e}");
        assert_eq!(e.path.as_deref(), Some("providers.p.warm"), "{api}: {e}");
        assert!(e.message.contains("ollama"), "{api}: {e}");
    }
}

// A zero bound of the response store dropped every stored response at once.
#[test]
fn zero_response_store_bounds_are_refused() {
    for field in ["ttl_secs", "max_entries", "max_bytes", "max_entry_bytes"] {
        let e = parse_str(&format!("{{ responses: {{\n {field}: 0 }} }}"), &no_env).unwrap_err();
        assert_eq!(e.kind, ConfigErrorKind::Invalid, "{field}: {e}");
        assert_eq!(
            e.path.as_deref(),
            Some(format!("responses.{field}").as_str()),
            "{e}"
        );
        assert_eq!(e.line, Some(2), "{e}");
    }
    assert!(parse_str("{ responses: { ttl_secs: 1, max_entries: 1 } }", &no_env).is_ok());
}

// A base URL holding an endpoint path sent every request to `.../chat/completions/chat/completions`
// or `/api/api/chat`.
#[test]
fn a_base_url_holding_an_endpoint_path_is_refused_with_the_root() {
    use super::file::ProviderApi::{Anthropic, Ollama, Openai};
    use super::validate::endpoint_path_in_base_url;
    for (api, base, endpoint, root) in [
        (
            Openai,
            "http://h:8000/v1/chat/completions",
            "/chat/completions",
            "http://h:8000/v1",
        ),
        (
            Openai,
            "http://h:8000/v1/completions",
            "/completions",
            "http://h:8000/v1",
        ),
        (
            Openai,
            "http://h:8000/v1/responses",
            "/responses",
            "http://h:8000/v1",
        ),
        (
            Openai,
            "http://h:8000/v1/embeddings",
            "/embeddings",
            "http://h:8000/v1",
        ),
        (
            Openai,
            "http://h:8000/v1/models",
            "/models",
            "http://h:8000/v1",
        ),
        (
            Openai,
            "http://h:3000/api/chat/completions",
            "/chat/completions",
            "http://h:3000/api",
        ),
        (
            Openai,
            "http://h:11434/api/chat",
            "/api/chat",
            "http://h:11434/v1",
        ),
        (Ollama, "http://h:11434/api", "/api", "http://h:11434"),
        (
            Ollama,
            "http://h:11434/api/chat",
            "/api/chat",
            "http://h:11434",
        ),
        (
            Ollama,
            "http://h/ollama/api/tags",
            "/api/tags",
            "http://h/ollama",
        ),
        (
            Ollama,
            "http://h:11434/v1/chat/completions",
            "/v1/chat/completions",
            "http://h:11434",
        ),
        (
            Anthropic,
            "https://api.anthropic.com/v1/messages",
            "/v1/messages",
            "https://api.anthropic.com",
        ),
        (
            Anthropic,
            "https://h/v1/messages/count_tokens",
            "/v1/messages/count_tokens",
            "https://h",
        ),
    ] {
        let found = endpoint_path_in_base_url(api, base)
            .unwrap_or_else(|| panic!("{api:?} {base} accepted"));
        assert_eq!(found.endpoint, endpoint, "{api:?} {base}");
        assert_eq!(found.root, root, "{api:?} {base}");
    }
    for (api, base) in [
        (Openai, "http://h:8000/v1"),
        (Openai, "https://openrouter.ai/api/v1"),
        (Openai, "http://h:3000/api"),
        (Openai, "http://models"),
        (
            Openai,
            "https://generativelanguage.googleapis.com/v1beta/openai",
        ),
        (Ollama, "http://h:11434"),
        (Ollama, "http://h:11434/v1"),
        (Ollama, "http://h/api/ollama"),
        (Anthropic, "https://api.anthropic.com"),
        (Anthropic, "https://api.anthropic.com/v1"),
    ] {
        assert_eq!(endpoint_path_in_base_url(api, base), None, "{api:?} {base}");
    }
    let e = parse_str(
        "{ providers: { p: { api: 'openai',\n base_url: 'http://127.0.0.1:8000/v1/chat/completions/' } } }",
        &no_env,
    )
    .unwrap_err();
    assert_eq!(e.kind, ConfigErrorKind::Invalid, "{e}");
    assert_eq!(e.path.as_deref(), Some("providers.p.base_url"), "{e}");
    assert_eq!(e.line, Some(2), "{e}");
    assert!(e.message.contains("\"http://127.0.0.1:8000/v1\""), "{e}");
}
