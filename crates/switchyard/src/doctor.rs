//! `switchyard doctor`: runs the doctor's probe ladder on every configured provider (or
//! one) and prints its report; the exit code is the report's (0 ok, 1 warnings, 2
//! failures).

use std::io::Write as _;
use std::path::PathBuf;

use switchyard_doctor::{GatewayFacts, ProbeApi, ProviderProbe};

use crate::cli::DoctorArgs;
use crate::config::build::{client_config, locality};
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
    let probes = match load_config(config_path.as_ref()) {
        Ok(config) => {
            facts.config_checksum = config.checksum.clone();
            facts.listen = Some(config.file.server.listen);
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
            for route in file.routes.values() {
                for step in &route.targets {
                    for target in step.members() {
                        if let Some((provider, model)) = target.split_once('/') {
                            if provider == id && !models.iter().any(|m| m == model) {
                                models.push(model.to_owned());
                            }
                        }
                    }
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
                first_token_timeout: client.timeouts.first_token,
                client,
                models,
                tool_models,
            }
        })
        .collect()
}
