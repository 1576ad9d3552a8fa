//! Rung 6: every API path reaches the server. A reverse proxy that forwards `/api/tags` but
//! not `/api/chat` answers the missing paths itself (an HTML 404); the server's own answers
//! (even errors such as "model is required") are JSON.

use std::time::Instant;

use reqwest::Method;
use switchyard_core::ReasonCode;
use switchyard_http::read_body_bounded;

use crate::context::Ladder;
use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung};

/// Ollama's own answer to an unknown path (gin's default).
const OLLAMA_OWN_404: &str = "404 page not found";

/// How one path answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PathAnswer {
    /// The server itself answered (any status).
    Served,
    /// The server says it does not know the path (an older version).
    Unknown,
    /// Something else answered: a proxy that does not forward the path.
    Blocked(u16),
    /// No answer.
    Failed(String),
}

/// Classifies a path's answer by status and body.
pub(crate) fn classify(status: u16, body: &[u8]) -> PathAnswer {
    if !matches!(status, 404 | 405) {
        return PathAnswer::Served;
    }
    let text = String::from_utf8_lossy(body);
    let trimmed = text.trim();
    if serde_json::from_str::<serde_json::Value>(trimmed).is_ok_and(|v| v.get("error").is_some()) {
        PathAnswer::Served
    } else if trimmed == OLLAMA_OWN_404 {
        PathAnswer::Unknown
    } else {
        PathAnswer::Blocked(status)
    }
}

/// The paths each API needs: method, path below the API base.
fn paths(api: ProbeApi) -> &'static [(&'static str, &'static str)] {
    match api {
        ProbeApi::Ollama => &[
            ("GET", "/api/version"),
            ("GET", "/api/tags"),
            ("POST", "/api/show"),
            ("GET", "/api/ps"),
            ("POST", "/api/chat"),
        ],
        ProbeApi::OpenAi => &[("GET", "/models"), ("POST", "/chat/completions")],
        ProbeApi::Anthropic => &[("GET", "/v1/models"), ("POST", "/v1/messages")],
    }
}

async fn ask(ladder: &Ladder<'_>, method: &str, path: &str) -> PathAnswer {
    let url = format!("{}{path}", ladder.api_base);
    let request = if method == "POST" {
        ladder
            .raw
            .request(Method::POST, &url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body("{}")
    } else {
        ladder.raw.request(Method::GET, &url)
    };
    let fut = async {
        let mut response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = read_body_bounded(&mut response, 4096)
            .await
            .map_err(|e| e.to_string())?;
        Ok::<_, String>(classify(status, &body))
    };
    match tokio::time::timeout(ladder.options.request_timeout, fut).await {
        Ok(Ok(answer)) => answer,
        Ok(Err(e)) => PathAnswer::Failed(e),
        Err(_) => PathAnswer::Failed("no answer in time".to_owned()),
    }
}

/// Rung 6. `None` after a failure.
pub(crate) async fn probe(ladder: &mut Ladder<'_>) -> Option<()> {
    let started = Instant::now();
    let wanted = paths(ladder.probe.api);
    let answers = futures::future::join_all(wanted.iter().map(|(m, p)| ask(ladder, m, p))).await;
    let working = wanted
        .iter()
        .zip(&answers)
        .find(|(_, a)| **a == PathAnswer::Served)
        .map(|((_, p), _)| (*p).to_owned());
    let mut failed = false;
    let mut unknown = Vec::new();
    for ((_, path), answer) in wanted.iter().zip(&answers) {
        match answer {
            PathAnswer::Served => {}
            PathAnswer::Unknown => unknown.push(*path),
            PathAnswer::Blocked(status) => {
                let finding = Finding::PathBlocked {
                    path: (*path).to_owned(),
                    working: working.clone().unwrap_or_else(|| "the base URL".to_owned()),
                    status: *status,
                };
                ladder
                    .checks
                    .push(finding.check(Rung::Paths).subject(*path));
                failed = true;
            }
            PathAnswer::Failed(error) => {
                let finding = Finding::HttpFailed {
                    reason_code: ReasonCode::PathFailed,
                    message: format!("{path}: {error}"),
                };
                ladder
                    .checks
                    .push(finding.check(Rung::Paths).subject(*path));
                failed = true;
            }
        }
    }
    if failed {
        return None;
    }
    let listed: Vec<&str> = wanted
        .iter()
        .map(|(_, p)| *p)
        .filter(|p| !unknown.contains(p))
        .collect();
    let mut summary = format!("{} reach the server", listed.join(", "));
    if !unknown.is_empty() {
        summary.push_str(&format!(
            " ({} unknown to this server version)",
            unknown.join(", ")
        ));
    }
    ladder
        .checks
        .push(Check::ok(Rung::Paths, summary).elapsed(started.elapsed()));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_pages_are_told_from_server_errors() {
        assert_eq!(
            classify(400, br#"{"error":"model is required"}"#),
            PathAnswer::Served
        );
        assert_eq!(
            classify(404, br#"{"error":"model 'x' not found"}"#),
            PathAnswer::Served
        );
        assert_eq!(
            classify(404, b"<html><center>nginx</center></html>"),
            PathAnswer::Blocked(404)
        );
        assert_eq!(classify(405, b""), PathAnswer::Blocked(405));
        assert_eq!(classify(404, b"404 page not found"), PathAnswer::Unknown);
        assert_eq!(classify(200, b"anything"), PathAnswer::Served);
    }
}
