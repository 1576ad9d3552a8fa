//! One provider's ladder: the rungs in order, stopping at the first failure.

use std::time::Duration;

use switchyard_http::{ClientConfig, build_client};

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::{DoctorOptions, ProbeApi, ProviderProbe};
use crate::progress::{TICK, with_ticks};
use crate::report::{Check, ProviderSection, Rung, Status};
use crate::rungs::{
    anthropic, catalog, dns, generate, http, paths, stream, tcp, tls, tool_capability, tools,
};
use crate::target::Target;
use crate::upstream::Upstream;

/// Runs the ladder of one provider.
pub(crate) async fn run(
    probe: &ProviderProbe,
    options: &DoctorOptions,
    progress: &mut dyn FnMut(&str),
) -> ProviderSection {
    let mut checks = Vec::new();
    let completed = climb(probe, options, progress, &mut checks).await;
    // One place for every text an upstream sent back: none carries the key sent to it.
    let secret = probe.client.bearer_token.as_deref();
    let checks: Vec<Check> = checks.into_iter().map(|c| c.redacted(secret)).collect();
    // The failing rung; a warning's when the ladder could not go on without a failure (a
    // rate limit, say).
    let stopped_at = if completed {
        None
    } else {
        let last = |s: Status| checks.iter().rev().find(|c| c.status == s).map(|c| c.rung);
        last(Status::Fail).or_else(|| last(Status::Warn))
    };
    let worst = checks.iter().map(|c| c.status).max().unwrap_or(Status::Ok);
    tracing::debug!(
        provider = %probe.id,
        status = ?worst,
        stopped_at = stopped_at.map(Rung::name),
        checks = checks.len(),
        "doctor ladder finished"
    );
    ProviderSection {
        id: probe.id.clone(),
        api: probe.api,
        base_url: probe.base_url.clone(),
        locality: probe.locality,
        checks,
        stopped_at,
    }
}

/// The transport settings of the doctor's own requests.
fn raw_client_config(probe: &ProviderProbe, options: &DoctorOptions) -> ClientConfig {
    let mut client = probe.client.clone();
    client.timeouts.connect = connect_timeout(probe, options);
    client.timeouts.total = Some(options.request_timeout);
    client
}

fn connect_timeout(probe: &ProviderProbe, options: &DoctorOptions) -> Duration {
    probe.client.timeouts.connect.min(options.connect_timeout)
}

/// Hosted APIs that answer nothing without an API key (the doctor says so before any
/// request): OpenAI's, Anthropic's, and the hosted OpenAI-compatible APIs people put in
/// front of them (Groq, Mistral, OpenRouter, Together, Fireworks, DeepSeek, xAI, Google's
/// Gemini layer).
const KEYED_CLOUD_HOSTS: [&str; 10] = [
    "api.openai.com",
    "api.anthropic.com",
    "api.groq.com",
    "api.mistral.ai",
    "openrouter.ai",
    "api.together.xyz",
    "api.fireworks.ai",
    "api.deepseek.com",
    "api.x.ai",
    "generativelanguage.googleapis.com",
];

/// Whether `host` is one of [`KEYED_CLOUD_HOSTS`] (any case, a trailing dot allowed).
fn is_keyed_cloud_host(host: &str) -> bool {
    let host = host.trim_end_matches('.');
    KEYED_CLOUD_HOSTS
        .iter()
        .any(|known| host.eq_ignore_ascii_case(known))
}

/// Climbs the rungs; `false` when one failed (its checks are in `out`).
async fn climb(
    probe: &ProviderProbe,
    options: &DoctorOptions,
    progress: &mut dyn FnMut(&str),
    out: &mut Vec<Check>,
) -> bool {
    let target = match Target::parse(&probe.base_url) {
        Ok(t) => t,
        Err(finding) => {
            out.push(finding.check(Rung::Dns));
            return false;
        }
    };
    // Without a key only a hosted API known to want one fails before the network: a
    // keyless server elsewhere (vLLM or LM Studio on the LAN, whose locality is inferred
    // `cloud`) may need none, and the account rung reads its 401 if it does.
    if probe.api != ProbeApi::Ollama
        && probe.client.bearer_token.is_none()
        && is_keyed_cloud_host(&target.host)
    {
        let finding = match probe.api {
            ProbeApi::Anthropic => Finding::AnthropicNoKey {
                provider: probe.id.clone(),
            },
            _ => Finding::NoApiKey,
        };
        out.push(finding.check(Rung::Account));
        return false;
    }
    let Some((addr, protocol)) = network_rungs(probe, options, &target, progress, out).await else {
        return false;
    };

    let api_base = match probe.api {
        ProbeApi::Ollama | ProbeApi::Anthropic => target.base.without_v1().as_str().to_owned(),
        ProbeApi::OpenAi => target.base.as_str().to_owned(),
    };
    let raw = match build_client(&raw_client_config(probe, options)) {
        Ok(c) => c,
        Err(e) => {
            out.push(
                Finding::ClientConfig {
                    error: e.to_string(),
                }
                .check(Rung::Http),
            );
            return false;
        }
    };
    let upstream = match Upstream::build(probe, &api_base, options) {
        Ok(u) => u,
        Err(finding) => {
            out.push(finding.check(Rung::Http));
            return false;
        }
    };
    let mut ladder = Ladder {
        probe,
        options,
        target,
        api_base,
        raw,
        upstream,
        ollama_v1: false,
        native: None,
        server_models: Vec::new(),
        present_models: Vec::new(),
        usable_tool_models: Vec::new(),
        toolless_models: Vec::new(),
        embedding_models: Vec::new(),
        no_pick: None,
        catalog_tools: None,
        cold_start: None,
        tool_call: None,
        checks: std::mem::take(out),
    };
    let completed = upper_rungs(
        &mut ladder,
        addr,
        protocol == tls::Protocol::Silent,
        progress,
    )
    .await;
    *out = ladder.checks;
    completed
}

/// Rungs 4 to 10.
async fn upper_rungs(
    ladder: &mut Ladder<'_>,
    addr: std::net::SocketAddr,
    silent: bool,
    progress: &mut dyn FnMut(&str),
) -> bool {
    let id = ladder.probe.id.clone();
    progress(&format!("{id}: rung 4 http: asking {}", ladder.api_base));
    if http::probe(ladder, addr, silent).await.is_none() {
        return false;
    }
    progress(&format!("{id}: rung 5 catalog"));
    if catalog::probe(ladder).await.is_none() {
        return false;
    }
    progress(&format!("{id}: rung 6 paths"));
    if paths::probe(ladder).await.is_none() {
        return false;
    }
    if !ladder.options.generate {
        ladder
            .checks
            .push(skipped(Rung::Generate, "generation rungs turned off"));
        return tool_capability::report(ladder);
    }
    let Some(model) = ladder.present_models.first().cloned() else {
        let only_embedding = !ladder.embedding_models.is_empty()
            && ladder
                .probe
                .models
                .iter()
                .all(|m| ladder.embedding_models.contains(m));
        let why = if ladder.probe.models.is_empty() {
            ladder
                .no_pick
                .unwrap_or("no model configured for this provider")
        } else if only_embedding {
            "only embedding models are routed here"
        } else {
            "no configured model is usable"
        };
        ladder.checks.push(skipped(Rung::Generate, why));
        return tool_rung(ladder, progress).await;
    };
    let label = format!("{id}: rung 7 generate");
    let picked = if ladder.probe.models.is_empty() {
        ", picked from the server's catalog"
    } else {
        ""
    };
    progress(&format!(
        "{label}: a tiny answer from {model}{picked} (a cold model may take a while to load)"
    ));
    if with_ticks(generate::probe(ladder, &model), TICK, &label, progress)
        .await
        .is_none()
    {
        return false;
    }
    let label = format!("{id}: rung 8 stream");
    progress(&format!("{label}: timing a streamed answer from {model}"));
    if with_ticks(stream::probe(ladder, &model), TICK, &label, progress)
        .await
        .is_none()
    {
        return false;
    }
    tool_rung(ladder, progress).await
}

async fn tool_rung(ladder: &mut Ladder<'_>, progress: &mut dyn FnMut(&str)) -> bool {
    let capable = tool_capability::report(ladder);
    round_trip(ladder, progress).await && capable
}

/// The tool round trip with the first usable tool model.
async fn round_trip(ladder: &mut Ladder<'_>, progress: &mut dyn FnMut(&str)) -> bool {
    let Some(model) = ladder.usable_tool_models.first().cloned() else {
        if ladder.probe.models.is_empty() && !ladder.present_models.is_empty() {
            // The model picked from the catalog lacks `tools`: the tool rung said so
            // (`no_tool_model_in_catalog`).
            return true;
        }
        let only_embedding = ladder
            .probe
            .tool_models
            .iter()
            .all(|m| ladder.embedding_models.contains(m));
        let why = if ladder.probe.tool_models.is_empty() {
            ladder.no_pick.unwrap_or("no model configured for tools")
        } else if only_embedding {
            "only embedding models are routed here"
        } else {
            "no configured tool model is usable"
        };
        ladder.checks.push(skipped(Rung::Tools, why));
        return true;
    };
    let label = format!("{}: rung 9 tools", ladder.probe.id);
    progress(&format!("{label}: a tool round trip with {model}"));
    if with_ticks(tools::probe(ladder, &model), TICK, &label, progress)
        .await
        .is_none()
    {
        return false;
    }
    if ladder.probe.api != ProbeApi::Anthropic {
        return true;
    }
    progress(&format!("{label}: answering the call with a tool_result"));
    let leg = anthropic::tool_result_leg(ladder, &model);
    with_ticks(leg, TICK, &label, progress).await.is_some()
}

fn skipped(rung: Rung, why: &str) -> Check {
    let mut check = Check::ok(rung, format!("skipped: {why}"));
    check.code = "skipped".to_owned();
    check
}

/// Rungs 1 to 3 (dns, tcp, tls), through the configured proxy when there is one: the
/// address reached and what it speaks, or `None` (the failing check is in `out`).
async fn network_rungs(
    probe: &ProviderProbe,
    options: &DoctorOptions,
    target: &Target,
    progress: &mut dyn FnMut(&str),
    out: &mut Vec<Check>,
) -> Option<(std::net::SocketAddr, tls::Protocol)> {
    let id = probe.id.as_str();
    // Through a configured proxy, the network rungs look at the proxy.
    let network_target = match &probe.client.proxy {
        Some(proxy) => match Target::parse(proxy) {
            Ok(t) => t,
            Err(finding) => {
                out.push(finding.check(Rung::Dns).subject("proxy"));
                return None;
            }
        },
        None => target.clone(),
    };
    let connect = connect_timeout(probe, options);

    progress(&format!(
        "{id}: rung 1 dns: resolving {}",
        network_target.host
    ));
    let addrs = dns::probe(&network_target, options.dns_timeout, out).await?;
    progress(&format!(
        "{id}: rung 2 tcp: connecting to {}",
        network_target.authority()
    ));
    let addr = tcp::probe(&addrs, probe.api, connect, out).await?;
    let protocol = if probe.client.proxy.is_some() {
        out.push(Check::ok(
            Rung::Tls,
            "through the configured proxy: checked by the next rung",
        ));
        tls::Protocol::Fine
    } else {
        progress(&format!(
            "{id}: rung 3 tls: what {} speaks",
            target.authority()
        ));
        let ca = probe.client.ca_file.as_deref();
        tls::probe(target, addr, ca, connect, options.request_timeout, out).await?
    };
    Some((addr, protocol))
}

#[cfg(test)]
mod tests {
    use switchyard_core::Locality;

    use super::*;

    fn probe(api: ProbeApi, base: &str, locality: Locality) -> ProviderProbe {
        ProviderProbe {
            id: "p".into(),
            api,
            base_url: base.into(),
            locality,
            locality_inferred: false,
            client: ClientConfig::default(),
            models: vec![],
            tool_models: vec![],
            routes: vec![],
            first_token_timeout: Duration::from_secs(1),
            text_tool_recovery: switchyard_openai::TextRecovery::Off,
            max_tokens_field: None,
            num_ctx: None,
        }
    }

    #[tokio::test]
    async fn a_bad_base_url_stops_before_dns() {
        let p = probe(ProbeApi::Ollama, "127.0.0.1:11434", Locality::Local);
        let section = run(&p, &DoctorOptions::default(), &mut |_| {}).await;
        assert_eq!(section.stopped_at, Some(Rung::Dns));
        assert_eq!(section.checks[0].code, "invalid_base_url");
    }

    #[tokio::test]
    async fn a_known_cloud_api_without_a_key_stops_at_once() {
        for (api, base) in [
            (ProbeApi::OpenAi, "https://api.openai.com/v1"),
            (ProbeApi::OpenAi, "https://API.Groq.com./openai/v1"),
            (ProbeApi::Anthropic, "https://api.anthropic.com"),
        ] {
            let p = probe(api, base, Locality::Cloud);
            let section = run(&p, &DoctorOptions::default(), &mut |_| {}).await;
            assert_eq!(section.stopped_at, Some(Rung::Account), "{base}");
            assert_eq!(section.checks[0].code, "no_api_key", "{base}");
        }
        assert!(!is_keyed_cloud_host("192.168.1.50"));
        assert!(!is_keyed_cloud_host("api.openai.com.evil.example"));
    }
}
