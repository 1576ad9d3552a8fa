//! `switchyard doctor`: runs the doctor's probe ladder on every configured provider (or
//! one) and prints its report; the exit code is the report's (0 ok, 1 warnings, 2
//! failures).

use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;

use switchyard_doctor::{GatewayFacts, ProbeApi, ProviderProbe};

use crate::cli::DoctorArgs;
use crate::config::build::{client_config, locality, max_tokens_field, text_recovery};
use crate::config::{FileConfig, ProviderApi};
use crate::serve::load_config;

/// Runs the doctor.
pub(crate) async fn run(config_path: Option<PathBuf>, args: &DoctorArgs) -> u8 {
    let mut facts = GatewayFacts {
        config_path: config_path.clone(),
        version: env!("CARGO_PKG_VERSION").to_owned(),
        build_id: option_env!("SWITCHYARD_BUILD_ID")
            .unwrap_or("dev")
            .to_owned(),
        ..GatewayFacts::default()
    };
    facts.proxy_variables =
        proxy_variables(&|name| std::env::var_os(name).is_some_and(|v| !v.is_empty()));
    // As `config check`: loaded, validated, then the listen policy, the router built and
    // the ledger path (rules to unknown routes, loops, bad globs fail only there).
    let loaded = load_config(config_path.as_ref())
        .and_then(|config| crate::check::verify(&config).map(|_| config));
    let probes = match loaded {
        Ok(config) => {
            facts.config_checksum = config.checksum.clone();
            let listen = config.file.server.listen;
            facts.listen = Some(listen);
            facts.listen_beyond_loopback = Some(beyond_loopback(listen));
            facts.keys_configured = !config.file.server.keys.is_empty();
            let probes = provider_probes(&config.file, args.provider.as_deref());
            if let Some(only) = &args.provider {
                if probes.is_empty() && !config.file.providers.contains_key(only) {
                    errln!("switchyard: no provider `{only}` in the config");
                    return 2;
                }
            }
            probes
        }
        Err(e) => {
            facts.config_error = Some(e.to_string());
            Vec::new()
        }
    };
    let quiet = args.json;
    let mut progress = |line: &str| {
        if !quiet {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{line}");
        }
    };
    let report = switchyard_doctor::run(facts, probes, &mut progress).await;
    if args.json {
        outln!("{}", report.to_json());
    } else {
        out!("{}", report.to_table());
    }
    u8::try_from(report.exit_code().clamp(0, 2)).unwrap_or(2)
}

/// Whether `listen` is beyond loopback by the gateway's listen policy (the one rule:
/// `check_listen_policy` refuses it without keys and without `insecure_listen`).
fn beyond_loopback(listen: SocketAddr) -> bool {
    switchyard_gateway::check_listen_policy(listen, false, false).is_err()
}

/// The proxy variables that `is_set` says are set (the gateway ignores all of them).
fn proxy_variables(is_set: &dyn Fn(&str) -> bool) -> Vec<String> {
    [
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
    ]
    .into_iter()
    .filter(|name| is_set(name))
    .map(str::to_owned)
    .collect()
}

/// What the doctor probes: every provider (or only `only`), with the models the routes
/// send to it. An Anthropic provider's `anthropic_version` and `anthropic_beta` travel as
/// headers of its client config (the doctor sends them as such).
fn provider_probes(file: &FileConfig, only: Option<&str>) -> Vec<ProviderProbe> {
    file.providers
        .iter()
        .filter(|(id, _)| only.is_none_or(|o| o == id.as_str()))
        .map(|(id, p)| {
            let locality = locality(p);
            let mut client = client_config(p, locality);
            // The doctor's Anthropic client reads these headers as its version and beta.
            if let Some(version) = &p.anthropic_version {
                let header = ("anthropic-version".to_owned(), version.clone());
                client.extra_headers.push(header);
            }
            if !p.anthropic_beta.is_empty() {
                let header = ("anthropic-beta".to_owned(), p.anthropic_beta.join(","));
                client.extra_headers.push(header);
            }
            let mut models: Vec<String> = Vec::new();
            let mut routes: Vec<(String, Vec<String>)> = Vec::new();
            for (name, route) in &file.routes {
                let mut here: Vec<String> = Vec::new();
                for step in &route.targets {
                    for target in step.members() {
                        if let Some((provider, model)) = target.split_once('/') {
                            if provider == id && !here.iter().any(|m| m == model) {
                                here.push(model.to_owned());
                            }
                        }
                    }
                }
                for model in &here {
                    if !models.contains(model) {
                        models.push(model.clone());
                    }
                }
                if !here.is_empty() {
                    routes.push((name.clone(), here));
                }
            }
            for m in &p.models {
                if !models.contains(&m.id) {
                    models.push(m.id.clone());
                }
            }
            let tool_models = models
                .iter()
                .filter(|m| {
                    p.models
                        .iter()
                        .find(|s| &s.id == *m)
                        .is_none_or(|s| s.tools.unwrap_or(true))
                })
                .cloned()
                .collect();
            ProviderProbe {
                id: id.clone(),
                api: match p.api {
                    ProviderApi::Ollama => ProbeApi::Ollama,
                    ProviderApi::Openai => ProbeApi::OpenAi,
                    ProviderApi::Anthropic => ProbeApi::Anthropic,
                },
                base_url: p.base_url.clone(),
                locality,
                locality_inferred: p.locality.is_none(),
                first_token_timeout: client.timeouts.first_token,
                client,
                models,
                tool_models,
                routes,
                text_tool_recovery: text_recovery(p, locality),
                max_tokens_field: max_tokens_field(p),
                num_ctx: p.num_ctx,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_the_listen_policys() {
        for (addr, beyond) in [
            ("127.0.0.1:4141", false),
            ("[::1]:4141", false),
            ("[::ffff:127.0.0.1]:4141", false),
            ("0.0.0.0:4141", true),
            ("192.168.1.5:4141", true),
        ] {
            assert_eq!(beyond_loopback(addr.parse().unwrap()), beyond, "{addr}");
        }
    }

    #[test]
    fn set_proxy_variables_are_named() {
        let set = proxy_variables(&|name| name == "HTTPS_PROXY" || name == "no_proxy");
        assert_eq!(set, vec!["HTTPS_PROXY".to_owned()]);
        assert!(proxy_variables(&|_| false).is_empty());
    }

    #[test]
    fn probes_carry_routes_and_the_effective_client_settings() {
        let text = "{ providers: {\n\
            local: { api: 'ollama', base_url: 'http://127.0.0.1:11434' },\n\
            lan: { api: 'openai', base_url: 'http://192.168.1.50:8000/v1', locality: 'lan',\n\
                   max_tokens_field: 'max_completion_tokens', num_ctx: 8192 },\n\
            box: { api: 'openai', base_url: 'http://192.168.1.51:8000/v1' } },\n\
          routes: { chat: { targets: ['local/qwen3', 'lan/m'] },\n\
                    embed: { targets: ['local/nomic-embed-text'] } } }";
        let file = crate::config::parse_str(text, &|_| None).unwrap();
        let probes = provider_probes(&file, None);
        let get = |id: &str| probes.iter().find(|p| p.id == id).unwrap();
        let local = get("local");
        assert_eq!(local.models, vec!["qwen3", "nomic-embed-text"]);
        assert_eq!(
            local.routes,
            vec![
                ("chat".to_owned(), vec!["qwen3".to_owned()]),
                ("embed".to_owned(), vec!["nomic-embed-text".to_owned()])
            ]
        );
        // Recovery is on by default for Ollama and LAN servers, off for a cloud one.
        assert_eq!(
            local.text_tool_recovery,
            switchyard_doctor::TextRecovery::On
        );
        let lan = get("lan");
        assert_eq!(lan.text_tool_recovery, switchyard_doctor::TextRecovery::On);
        assert_eq!(
            lan.max_tokens_field,
            Some(switchyard_doctor::MaxTokensField::MaxCompletionTokens)
        );
        assert_eq!(lan.num_ctx, Some(8192));
        assert!(!lan.locality_inferred);
        let inferred = get("box");
        assert!(inferred.locality_inferred);
        assert_eq!(
            inferred.text_tool_recovery,
            switchyard_doctor::TextRecovery::Off
        );
        assert_eq!(inferred.max_tokens_field, None);
    }
}
