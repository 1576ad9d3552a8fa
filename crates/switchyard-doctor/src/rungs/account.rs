//! Rung 10: the API key and the account. Not a request of its own: the first answer that
//! needs the key (`/models`, or a generation) tells whether it is accepted (401/403: stale or
//! wrongly scoped), and a generation tells whether quota is left (429 `insufficient_quota`)
//! or the key is being rate limited.

use switchyard_core::{ErrorKind, Locality, ProviderError};

use crate::finding::Finding;
use crate::input::{ProbeApi, ProviderProbe};
use crate::report::{Check, Rung};

/// The account finding an error stands for, if it concerns the key or the account.
pub(crate) fn finding_for(probe: &ProviderProbe, err: &ProviderError) -> Option<Finding> {
    if probe.api == ProbeApi::Anthropic {
        return crate::rungs::anthropic::account_finding(probe, err);
    }
    match err.kind() {
        ErrorKind::Auth => Some(if probe.client.bearer_token.is_none() {
            Finding::NoApiKey
        } else {
            Finding::KeyRejected {
                status: err.status().unwrap_or(401),
                message: err.message().to_owned(),
            }
        }),
        ErrorKind::QuotaExhausted => Some(Finding::QuotaExhausted {
            message: err.message().to_owned(),
        }),
        ErrorKind::RateLimited => Some(Finding::RateLimited {
            retry_after: err.retry_after(),
        }),
        _ => None,
    }
}

/// The line for an authenticated answer that came back fine.
/// A keyless server beyond loopback whose locality was inferred is taken for a cloud API
/// (`local-only` requests never go there, text tool-call recovery is off): the line says how
/// to mark it a LAN server.
pub(crate) fn accepted(probe: &ProviderProbe) -> Check {
    if probe.client.bearer_token.is_some() {
        return Check::ok(Rung::Account, "the API key is accepted");
    }
    let beyond_loopback = crate::target::Target::parse(&probe.base_url).is_ok_and(|t| {
        !t.ip.is_some_and(|ip| ip.is_loopback()) && !t.host.eq_ignore_ascii_case("localhost")
    });
    if probe.locality == Locality::Cloud && probe.locality_inferred && beyond_loopback {
        return Check::ok(
            Rung::Account,
            "no API key configured, none needed; the gateway takes this server for a cloud API \
             (locality inferred from its address): if it runs on your network, set \
             locality: \"lan\" for this provider",
        );
    }
    Check::ok(Rung::Account, "no API key configured, none needed")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use switchyard_core::classify_http_error;
    use switchyard_http::ClientConfig;

    use super::*;

    fn probe(key: Option<&str>) -> ProviderProbe {
        ProviderProbe {
            id: "cloud".into(),
            api: ProbeApi::OpenAi,
            base_url: "https://api.example.invalid/v1".into(),
            locality: Locality::Cloud,
            locality_inferred: false,
            client: ClientConfig {
                bearer_token: key.map(str::to_owned),
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
    fn auth_quota_and_rate_limits_are_told_apart() {
        let p = probe(Some("sk-x"));
        let code = |status, body: &[u8]| {
            finding_for(&p, &classify_http_error(status, body, None)).map(|f| f.code())
        };
        assert_eq!(
            code(
                401,
                br#"{"error":{"message":"bad key","code":"invalid_api_key"}}"#
            ),
            Some("key_rejected")
        );
        assert_eq!(code(403, b"forbidden"), Some("key_rejected"));
        assert_eq!(
            code(429, br#"{"error":{"message":"quota","type":"insufficient_quota","code":"insufficient_quota"}}"#),
            Some("quota_exhausted")
        );
        assert_eq!(
            code(
                429,
                br#"{"error":{"message":"slow down","code":"rate_limit_exceeded"}}"#
            ),
            Some("rate_limited")
        );
        assert_eq!(code(500, b"boom"), None);
        let unauthenticated = finding_for(&probe(None), &classify_http_error(401, b"", None));
        assert_eq!(unauthenticated.map(|f| f.code()), Some("no_api_key"));
    }
}
