//! Rung 4: the API answers at the base URL. Ollama: `GET /` ("Ollama is running") and
//! `/api/version`, with a `/v1` base URL flagged; OpenAI-compatible: `/models`.
//! Rung 10's key check rides on the first authenticated answer.

use std::net::SocketAddr;
use std::time::Instant;

use switchyard_core::{ErrorKind, ProviderError, ReasonCode};
use switchyard_http::read_body_bounded;

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung};
use crate::rungs::{account, anthropic};
use crate::upstream::Upstream;

/// Ollama's answer to `GET /`.
const OLLAMA_ROOT: &str = "Ollama is running";

/// `GET {base}/`: status and the start of the body, or `None` when nothing came back.
pub(crate) async fn root_text(ladder: &Ladder<'_>, base: &str) -> Option<(u16, String)> {
    let url = format!("{base}/");
    let fut = async {
        let mut response = ladder.raw.get(&url).send().await.ok()?;
        let status = response.status().as_u16();
        let body = read_body_bounded(&mut response, 512).await.ok()?;
        Some((status, String::from_utf8_lossy(&body).trim().to_owned()))
    };
    tokio::time::timeout(ladder.options.request_timeout, fut)
        .await
        .ok()
        .flatten()
}

/// Rung 4 (and rung 10 for OpenAI-compatible providers). `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>, addr: SocketAddr, silent: bool) -> Option<()> {
    let started = Instant::now();
    if silent {
        let after = ladder.options.request_timeout;
        ladder.push(Rung::Http, &Finding::NoHttpAnswer { addr, after });
        return None;
    }
    match ladder.probe.api {
        ProbeApi::Ollama => ollama(ladder, addr, started).await,
        ProbeApi::OpenAi => openai(ladder, addr, started).await,
        ProbeApi::Anthropic => anthropic::probe_http(ladder, addr, started).await,
    }
}

async fn ollama(ladder: &mut Ladder<'_>, addr: SocketAddr, started: Instant) -> Option<()> {
    if ladder.target.base.ends_with_v1() {
        let native = ladder.api_base.clone();
        ladder.push(Rung::Http, &Finding::V1OnOllama { native });
    }
    let base = ladder.api_base.clone();
    let root = root_text(ladder, &base).await;
    let limit = ladder.options.request_timeout;
    let version = tokio::time::timeout(limit, ladder.upstream.version()).await;
    let failed = match version {
        Ok(Ok(v)) => {
            let v = v.unwrap_or_default();
            let says = match &root {
                Some((_, text)) if text.contains(OLLAMA_ROOT) => {
                    format!(", GET / says \"{OLLAMA_ROOT}\"")
                }
                Some((status, _)) => format!(", GET / answered HTTP {status}"),
                None => String::new(),
            };
            ladder.checks.push(
                Check::ok(Rung::Http, format!("Ollama {v} answers at {base}{says}"))
                    .elapsed(started.elapsed()),
            );
            return Some(());
        }
        Ok(Err(e)) => Some(e),
        Err(_) => None,
    };
    let err = failed_probe(ladder, failed, addr, limit, started)?;
    let finding = match err.kind() {
        ErrorKind::EndpointNotFound | ErrorKind::MalformedStream | ErrorKind::InvalidRequest
            if ladder.target.base.as_str().ends_with("/api") =>
        {
            let base = ladder.target.base.as_str();
            Finding::ApiPathOnOllama {
                native: base.strip_suffix("/api").unwrap_or(base).to_owned(),
            }
        }
        ErrorKind::EndpointNotFound | ErrorKind::MalformedStream | ErrorKind::InvalidRequest => {
            let answer = match root {
                Some((status, text)) => format!("GET / answered HTTP {status} {}", snippet(&text)),
                None => err.message().to_owned(),
            };
            Finding::NotTheApi {
                api: ProbeApi::Ollama,
                answer,
            }
        }
        _ => transport_finding(&err, addr, limit),
    };
    ladder
        .checks
        .push(finding.check(Rung::Http).elapsed(started.elapsed()));
    None
}

async fn openai(ladder: &mut Ladder<'_>, addr: SocketAddr, started: Instant) -> Option<()> {
    let base = ladder.target.base.clone();
    if base.ends_with_v1() && ladder.probe.locality != switchyard_core::Locality::Cloud {
        let root = base.without_v1();
        if let Some((_, text)) = root_text(ladder, root.as_str()).await {
            ladder.ollama_v1 = text.contains(OLLAMA_ROOT);
        }
        if ladder.ollama_v1 {
            ladder.native =
                Upstream::native_ollama(ladder.probe, root.as_str(), ladder.options).ok();
        }
    }
    let limit = ladder.options.request_timeout;
    let listed = tokio::time::timeout(limit, ladder.upstream.model_names()).await;
    let failed = match listed {
        Ok(Ok(names)) => {
            let layer = if ladder.ollama_v1 {
                " (Ollama's OpenAI layer)"
            } else {
                ""
            };
            ladder.checks.push(
                Check::ok(
                    Rung::Http,
                    format!("{base}/models answers{layer}: {} models", names.len()),
                )
                .elapsed(started.elapsed()),
            );
            ladder.checks.push(account::accepted(ladder.probe));
            ladder.server_models = names;
            return Some(());
        }
        Ok(Err(e)) => Some(e),
        Err(_) => None,
    };
    let err = failed_probe(ladder, failed, addr, limit, started)?;
    let endpoint = crate::finding::openai_endpoint_path(base.as_str());
    let finding = match (err.kind(), endpoint) {
        // `.../v1/chat/completions`: whatever answered there, the client appends the path.
        (kind, Some(endpoint))
            if err.status().is_some()
                || matches!(
                    kind,
                    ErrorKind::EndpointNotFound | ErrorKind::MalformedStream
                ) =>
        {
            Finding::EndpointPathInBaseUrl {
                base_url: base.as_str().to_owned(),
                endpoint: endpoint.to_owned(),
                root: crate::finding::openai_root(base.as_str()),
            }
        }
        (ErrorKind::EndpointNotFound, _) if !base.ends_with_v1() => Finding::MissingV1 {
            base_url: base.as_str().to_owned(),
        },
        (ErrorKind::EndpointNotFound | ErrorKind::MalformedStream, _) => Finding::NotTheApi {
            api: ProbeApi::OpenAi,
            answer: err.message().to_owned(),
        },
        _ => transport_finding(&err, addr, limit),
    };
    ladder
        .checks
        .push(finding.check(Rung::Http).elapsed(started.elapsed()));
    None
}

/// A failure of an HTTP request after the connection rungs passed.
/// A probe that failed: `None` (the ladder ends here) when no HTTP answer came
/// within `limit` (`failed` is `None`) or the error is an account problem, both recorded;
/// otherwise the error, for the caller to classify.
pub(crate) fn failed_probe(
    ladder: &mut Ladder<'_>,
    failed: Option<ProviderError>,
    addr: SocketAddr,
    limit: std::time::Duration,
    started: Instant,
) -> Option<ProviderError> {
    let Some(err) = failed else {
        ladder.push(Rung::Http, &Finding::NoHttpAnswer { addr, after: limit });
        return None;
    };
    if let Some(f) = ladder.account_finding(&err) {
        ladder
            .checks
            .push(f.check(Rung::Account).elapsed(started.elapsed()));
        return None;
    }
    Some(err)
}

pub(crate) fn transport_finding(
    err: &ProviderError,
    addr: SocketAddr,
    limit: std::time::Duration,
) -> Finding {
    if err.is_timeout() {
        Finding::NoHttpAnswer { addr, after: limit }
    } else {
        Finding::HttpFailed {
            reason_code: ReasonCode::Error(err.kind()),
            message: err.message().to_owned(),
        }
    }
}

/// The first line of a body, bounded.
pub(crate) fn snippet(text: &str) -> String {
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    let mut cut = line.len().min(80);
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("\"{}\"", &line[..cut])
}
