//! The rungs of an Anthropic Messages provider that differ from the other APIs: the client
//! the doctor builds (`x-api-key`, `anthropic-version`, `anthropic-beta`), rung 4's
//! `GET /v1/models` (which also proves the key accepted), the account findings of
//! Anthropic's error types (401 `authentication_error`, 403 `permission_error`, 429
//! `rate_limit_error`, 529 `overloaded_error`, a low credit balance) and the second leg of
//! the tool round trip: the `tool_result` sent back and answered.

use std::net::SocketAddr;
use std::time::Instant;

use switchyard_anthropic::AnthropicConfig;
use switchyard_core::{ChatEvent, ErrorKind, FinishReason, Message, ProviderError};
use switchyard_http::ClientConfig;

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::{ProbeApi, ProviderProbe};
use crate::report::{Check, Rung};
use crate::rungs::generation::{record_failure, run_timed, tool_request};
use crate::upstream::generation_limit;

/// The header naming the API version.
const VERSION_HEADER: &str = "anthropic-version";
/// The header naming beta features.
const BETA_HEADER: &str = "anthropic-beta";
/// What the doctor's tool answers.
const TOOL_ANSWER: &str = "2025-01-01T12:00:00Z";

/// The client config of an Anthropic probe: the key (`bearer_token`) goes out as
/// `x-api-key`, `anthropic-version` / `anthropic-beta` among the extra headers become the
/// version and beta values (so they are sent once).
pub(crate) fn client_config(
    probe: &ProviderProbe,
    base_url: &str,
    mut client: ClientConfig,
) -> AnthropicConfig {
    let mut config = AnthropicConfig::new(base_url);
    config.api_key = client.bearer_token.take();
    config.locality = probe.locality;
    client.extra_headers.retain(|(name, value)| {
        if name.eq_ignore_ascii_case(VERSION_HEADER) {
            config.version = value.clone();
            false
        } else if name.eq_ignore_ascii_case(BETA_HEADER) {
            config.beta.extend(
                value
                    .split(',')
                    .map(str::trim)
                    .filter(|v| !v.is_empty())
                    .map(str::to_owned),
            );
            false
        } else {
            true
        }
    });
    config.client = client;
    config
}

/// The configured `anthropic-version` (or the default) and `anthropic-beta` values.
fn headers(probe: &ProviderProbe) -> (String, Option<String>) {
    let find = |wanted: &str| {
        probe
            .client
            .extra_headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(wanted))
            .map(|(_, v)| v.clone())
    };
    let version =
        find(VERSION_HEADER).unwrap_or_else(|| switchyard_anthropic::DEFAULT_VERSION.to_owned());
    (version, find(BETA_HEADER))
}

/// Whether a configured key does not look like one of Anthropic's (`sk-ant-…`) while the
/// base URL is Anthropic's own API (a gateway in front may use other keys).
fn foreign_key(probe: &ProviderProbe) -> bool {
    let own_api = url::Url::parse(&probe.base_url)
        .ok()
        .and_then(|u| u.host_str().map(|h| h.ends_with("anthropic.com")))
        .unwrap_or(false);
    own_api
        && probe
            .client
            .bearer_token
            .as_deref()
            .is_some_and(|k| !k.starts_with("sk-ant-"))
}

/// The account finding an Anthropic error stands for: 401 (key missing or refused), 403
/// (permission), 429 (rate limited), a credit balance too low (400).
pub(crate) fn account_finding(probe: &ProviderProbe, err: &ProviderError) -> Option<Finding> {
    let provider = probe.id.clone();
    let message = err.message().to_owned();
    match err.kind() {
        ErrorKind::Auth if probe.client.bearer_token.is_none() => {
            Some(Finding::AnthropicNoKey { provider })
        }
        ErrorKind::Auth
            if err.status() == Some(403) || err.upstream_code() == Some("permission_error") =>
        {
            Some(Finding::AnthropicPermission {
                provider,
                beta: headers(probe).1,
                message,
            })
        }
        ErrorKind::Auth => Some(Finding::AnthropicKeyRejected {
            provider,
            status: err.status().unwrap_or(401),
            foreign_key: foreign_key(probe),
            message,
        }),
        ErrorKind::RateLimited => Some(Finding::AnthropicRateLimited {
            provider,
            retry_after: err.retry_after(),
        }),
        ErrorKind::QuotaExhausted => Some(Finding::QuotaExhausted { message }),
        ErrorKind::InvalidRequest if message.to_ascii_lowercase().contains("credit balance") => {
            Some(Finding::QuotaExhausted { message })
        }
        _ => None,
    }
}

/// A 529 (or 503) `overloaded_error`: passing, fallback-eligible.
pub(crate) fn overloaded(probe: &ProviderProbe, err: &ProviderError) -> Option<Finding> {
    (probe.api == ProbeApi::Anthropic && err.kind() == ErrorKind::Overloaded).then(|| {
        Finding::Overloaded {
            provider: probe.id.clone(),
            status: err.status(),
            retry_after: err.retry_after(),
            message: err.message().to_owned(),
        }
    })
}

/// The key line of a provider that is not missing one.
fn accepted(probe: &ProviderProbe) -> Check {
    let (version, beta) = headers(probe);
    let beta = beta
        .map(|b| format!(", anthropic-beta {b}"))
        .unwrap_or_default();
    let summary = if probe.client.bearer_token.is_some() {
        format!("the API key is accepted (x-api-key, anthropic-version {version}{beta})")
    } else {
        format!("no API key configured, none needed (anthropic-version {version}{beta})")
    };
    Check::ok(Rung::Account, summary)
}

/// Rung 4 (and rung 10): `GET /v1/models` with `x-api-key` and `anthropic-version`.
/// `Err` with the error when it failed in a way the caller classifies (transport, not the
/// API); `Ok(None)` after a recorded failure.
pub(crate) async fn http(
    ladder: &mut Ladder<'_>,
    started: Instant,
) -> Result<Option<()>, Option<ProviderError>> {
    let url = format!("{}/v1/models", ladder.api_base);
    let limit = ladder.options.request_timeout;
    let err = match tokio::time::timeout(limit, ladder.upstream.model_names()).await {
        Ok(Ok(names)) => {
            ladder.checks.push(
                Check::ok(Rung::Http, format!("{url} answers: {} models", names.len()))
                    .elapsed(started.elapsed()),
            );
            ladder.checks.push(accepted(ladder.probe));
            ladder.server_models = names;
            return Ok(Some(()));
        }
        Ok(Err(e)) => e,
        Err(_) => return Err(None),
    };
    if let Some(f) = overloaded(ladder.probe, &err) {
        ladder
            .checks
            .push(f.check(Rung::Http).elapsed(started.elapsed()));
        return Ok(None);
    }
    Err(Some(err))
}

/// Whether `model` is served by the listed `server` ids: exactly, or as an alias of a
/// dated snapshot (`claude-sonnet-4-5` for `claude-sonnet-4-5-20250929`), which
/// `/v1/models` does not list itself.
pub(crate) fn listed(model: &str, server: &[String]) -> bool {
    server.iter().any(|n| {
        n == model
            || n.strip_prefix(model)
                .and_then(|rest| rest.strip_prefix('-'))
                .is_some_and(|date| date.len() == 8 && date.bytes().all(|b| b.is_ascii_digit()))
    })
}

/// The second leg of the tool round trip: the call the tool rung got back is answered
/// with a `tool_result`, and the model must answer that in text (Anthropic refuses a
/// `tool_result` that does not follow its `tool_use`). `None` after a failure.
pub(crate) async fn tool_result_leg(ladder: &mut Ladder<'_>, model: &str) -> Option<()> {
    let Some(call) = ladder.tool_call.take() else {
        // The tool rung already judged an answer without a structured call.
        return Some(());
    };
    let mut request = tool_request(model);
    let mut turn = Message::assistant("");
    turn.content.clear();
    turn.tool_calls = vec![call.clone()];
    request.messages.push(turn);
    request
        .messages
        .push(Message::tool_result(call.id, call.name, TOOL_ANSWER));
    let answer = match run_timed(ladder, &request, generation_limit(ladder.options)).await {
        Ok(t) => t,
        Err(e) => {
            record_failure(ladder, Rung::Tools, model, e, true);
            return None;
        }
    };
    let text: usize = answer
        .events
        .iter()
        .map(|e| match e {
            ChatEvent::TextDelta { text } => text.len(),
            _ => 0,
        })
        .sum();
    let finish = answer.events.iter().find_map(|e| match e {
        ChatEvent::Done { finish_reason } => Some(finish_reason.clone()),
        _ => None,
    });
    if text == 0 || finish != Some(FinishReason::Stop) {
        let finding = Finding::ToolResultUnanswered {
            model: model.to_owned(),
            finish: finish.map(|f| f.as_str().to_owned()),
        };
        ladder
            .checks
            .push(finding.check(Rung::Tools).subject(model));
        return None;
    }
    ladder.checks.push(
        Check::ok(
            Rung::Tools,
            "the tool_result was answered in text (end_turn): round trip complete",
        )
        .subject(model)
        .elapsed(answer.total),
    );
    Some(())
}

/// Rung 4 for an Anthropic provider, as `http::probe` calls it.
pub(crate) async fn probe_http(
    ladder: &mut Ladder<'_>,
    addr: SocketAddr,
    started: Instant,
) -> Option<()> {
    let err = match http(ladder, started).await {
        Ok(done) => return done,
        Err(e) => e,
    };
    let limit = ladder.options.request_timeout;
    let err = crate::rungs::http::failed_probe(ladder, err, addr, limit, started)?;
    let finding = match err.kind() {
        ErrorKind::EndpointNotFound | ErrorKind::MalformedStream => Finding::NotTheApi {
            api: ProbeApi::Anthropic,
            answer: err.message().to_owned(),
        },
        _ => crate::rungs::http::transport_finding(&err, addr, limit),
    };
    ladder
        .checks
        .push(finding.check(Rung::Http).elapsed(started.elapsed()));
    None
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_core::{Locality, classify_http_error};

    use super::*;

    fn probe(key: Option<&str>, base: &str) -> ProviderProbe {
        ProviderProbe {
            id: "claude".into(),
            api: ProbeApi::Anthropic,
            base_url: base.into(),
            locality: Locality::Cloud,
            locality_inferred: false,
            client: ClientConfig {
                bearer_token: key.map(str::to_owned),
                extra_headers: vec![
                    ("Anthropic-Version".into(), "2023-06-01".into()),
                    ("anthropic-beta".into(), "a, b".into()),
                    ("x-team".into(), "t".into()),
                ],
                ..ClientConfig::default()
            },
            models: vec![],
            tool_models: vec![],
            first_token_timeout: Duration::from_secs(1),
            routes: vec![],
            text_tool_recovery: switchyard_openai::TextRecovery::Off,
            max_tokens_field: None,
            num_ctx: None,
        }
    }

    #[test]
    fn version_and_beta_headers_become_client_settings() {
        let p = probe(Some("sk-ant-x"), "https://api.anthropic.com");
        let c = client_config(&p, "https://api.anthropic.com", p.client.clone());
        assert_eq!(c.api_key.as_deref(), Some("sk-ant-x"));
        assert_eq!(c.client.bearer_token, None);
        assert_eq!(c.version, "2023-06-01");
        assert_eq!(c.beta, vec!["a", "b"]);
        assert_eq!(c.client.extra_headers, vec![("x-team".into(), "t".into())]);
    }

    #[test]
    fn errors_map_to_anthropic_findings() {
        let p = probe(Some("sk-ant-x"), "https://api.anthropic.com");
        let code = |status, body: &[u8]| {
            account_finding(&p, &classify_http_error(status, body, None)).map(|f| f.code())
        };
        let auth = br#"{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}"#;
        assert_eq!(code(401, auth), Some("key_rejected"));
        let perm = br#"{"type":"error","error":{"type":"permission_error","message":"no"}}"#;
        assert_eq!(code(403, perm), Some("permission_denied"));
        let rate = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow"}}"#;
        assert_eq!(code(429, rate), Some("rate_limited"));
        let credit = br#"{"type":"error","error":{"type":"invalid_request_error","message":"Your credit balance is too low to access the Anthropic API."}}"#;
        assert_eq!(code(400, credit), Some("quota_exhausted"));
        assert_eq!(code(500, b"boom"), None);
        let busy =
            br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#;
        let f = overloaded(&p, &classify_http_error(529, busy, None));
        assert_eq!(f.map(|f| f.code()), Some("overloaded"));
        let none = probe(None, "https://api.anthropic.com");
        let f = account_finding(&none, &classify_http_error(401, auth, None));
        assert_eq!(f.map(|f| f.code()), Some("no_api_key"));
    }

    #[test]
    fn a_foreign_key_is_only_suspected_on_anthropics_own_api() {
        assert!(foreign_key(&probe(
            Some("sk-proj-x"),
            "https://api.anthropic.com"
        )));
        assert!(!foreign_key(&probe(
            Some("sk-ant-x"),
            "https://api.anthropic.com"
        )));
        assert!(!foreign_key(&probe(
            Some("gw-key"),
            "http://127.0.0.1:4000"
        )));
    }

    #[test]
    fn aliases_match_dated_snapshots() {
        let server: Vec<String> = ["claude-sonnet-4-5-20250929", "claude-3-haiku-20240307"]
            .map(String::from)
            .to_vec();
        assert!(listed("claude-sonnet-4-5", &server));
        assert!(listed("claude-3-haiku-20240307", &server));
        assert!(!listed("claude-sonnet-4", &server));
        assert!(!listed("claude-opus-4-1", &server));
    }
}
