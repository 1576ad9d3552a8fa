//! `switchyard tools [--caller ID] [--json] [--url URL]`: asks the running gateway
//! (`GET /admin/tools`, with the config's first admin key) for each caller's recent tool
//! set, the shrinks of that set and the unknown tool calls, and prints them as tables.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, UNIX_EPOCH};

use serde::Deserialize;
use switchyard_router::CallerTools;

use crate::cli::ToolsArgs;
use crate::config::Config;

/// How long the gateway may take to answer.
const WAIT: Duration = Duration::from_secs(10);

/// The gateway's answer.
#[derive(Debug, Deserialize)]
struct ToolsAnswer {
    callers: Vec<CallerTools>,
}

/// Runs `tools`; the exit code (1: the gateway could not be asked, 2: a config problem).
pub(crate) async fn run(config_path: Option<PathBuf>, args: &ToolsArgs) -> u8 {
    let config = match crate::serve::load_config(config_path.as_ref()) {
        Ok(c) => c,
        Err(e) => {
            errln!("switchyard: {e}");
            return crate::serve::EXIT_CONFIG;
        }
    };
    let base = args
        .url
        .clone()
        .unwrap_or_else(|| format!("http://{}", reachable(config.file.server.listen)));
    let key = match admin_key(&config) {
        Ok(k) => k,
        Err(why) => {
            errln!("switchyard: {why}");
            return crate::serve::EXIT_CONFIG;
        }
    };
    let body = match fetch(&base, key, args.caller.as_deref()).await {
        Ok(b) => b,
        Err(why) => {
            errln!("switchyard: asking the gateway at {base}: {why}");
            return 1;
        }
    };
    let answer: ToolsAnswer = match serde_json::from_str(&body) {
        Ok(a) => a,
        Err(e) => {
            errln!("switchyard: the gateway at {base} answered something else: {e}");
            return 1;
        }
    };
    if args.json {
        match serde_json::to_string_pretty(&serde_json::json!({ "callers": answer.callers })) {
            Ok(s) => outln!("{s}"),
            Err(e) => {
                errln!("switchyard: {e}");
                return 1;
            }
        }
    } else {
        out!("{}", render(&answer.callers));
    }
    0
}

/// Where a client reaches a server listening on `listen`: an unspecified address is
/// reached over loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), listen.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), listen.port())
        }
        _ => listen,
    }
}

/// The token of the config's first admin key; `None` without keys (loopback only).
fn admin_key(config: &Config) -> Result<Option<&str>, String> {
    let keys = &config.file.server.keys;
    if keys.is_empty() {
        return Ok(None);
    }
    keys.iter()
        .find(|k| k.admin)
        .map(|k| Some(k.token.value()))
        .ok_or_else(|| {
            "the tool report needs an admin key: give one of server.keys `admin: true`".to_owned()
        })
}

async fn fetch(base: &str, key: Option<&str>, caller: Option<&str>) -> Result<String, String> {
    let mut url = url::Url::parse(base)
        .and_then(|u| u.join("/admin/tools"))
        .map_err(|e| format!("bad URL: {e}"))?;
    if let Some(c) = caller {
        url.query_pairs_mut().append_pair("caller", c);
    }
    // The gateway the user named, never through an environment proxy (HTTP_PROXY).
    let client = reqwest::Client::builder()
        .no_proxy()
        .timeout(WAIT)
        .build()
        .map_err(|e| e.to_string())?;
    let mut request = client.get(url);
    if let Some(k) = key {
        request = request.bearer_auth(k);
    }
    let response = request.send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("HTTP {status}: {}", body.trim()));
    }
    Ok(body)
}

/// `YYYY-MM-DD HH:MM:SSZ` of a Unix time in milliseconds.
fn when(unix_ms: u64) -> String {
    let stamp = switchyard_core::civil::rfc3339_at(UNIX_EPOCH + Duration::from_millis(unix_ms));
    // `2026-12-01T06:00:00.000000000Z` -> `2026-12-01 06:00:00Z`
    match (stamp.get(..10), stamp.get(11..19)) {
        (Some(date), Some(time)) => format!("{date} {time}Z"),
        _ => stamp,
    }
}

/// The three tables: tool sets, shrinks, unknown calls.
pub(crate) fn render(callers: &[CallerTools]) -> String {
    if callers.is_empty() {
        return "(no caller has offered tools since the gateway started)\n".to_owned();
    }
    let sets: Vec<Vec<String>> = callers
        .iter()
        .map(|c| {
            let tools: Vec<String> = c
                .tools
                .iter()
                .map(|t| format!("{} {}/{}", t.name, t.seen, c.requests))
                .collect();
            vec![c.caller.clone(), c.requests.to_string(), tools.join(", ")]
        })
        .collect();
    let shrinks: Vec<Vec<String>> = callers
        .iter()
        .flat_map(|c| {
            c.shrinks.iter().map(|s| {
                vec![
                    c.caller.clone(),
                    when(s.at_unix_ms),
                    s.missing.join(", "),
                    s.offered.to_string(),
                ]
            })
        })
        .collect();
    let unknown: Vec<Vec<String>> = callers
        .iter()
        .flat_map(|c| {
            c.unknown_calls.iter().map(|u| {
                let fate = if u.dropped { "dropped" } else { "passed" };
                vec![
                    c.caller.clone(),
                    when(u.at_unix_ms),
                    u.tool.clone(),
                    u.target.clone(),
                    fate.to_owned(),
                ]
            })
        })
        .collect();
    let mut out = aligned(&["CALLER", "REQUESTS", "TOOLS (seen/requests)"], &sets);
    out.push_str("\nTOOL SET SHRINKS\n");
    out.push_str(&aligned(
        &["CALLER", "WHEN", "MISSING", "OFFERED"],
        &shrinks,
    ));
    out.push_str("\nUNKNOWN TOOL CALLS\n");
    out.push_str(&aligned(
        &["CALLER", "WHEN", "TOOL", "TARGET", "ANSWER"],
        &unknown,
    ));
    out
}

/// Columns padded to their widest cell, two spaces apart; `(none)` for no rows.
fn aligned(header: &[&str], rows: &[Vec<String>]) -> String {
    let width = |col: usize| {
        rows.iter()
            .filter_map(|r| r.get(col))
            .map(|c| c.chars().count())
            .chain(std::iter::once(header[col].len()))
            .max()
            .unwrap_or(0)
    };
    let widths: Vec<usize> = (0..header.len()).map(width).collect();
    let header: Vec<String> = header.iter().map(|h| (*h).to_owned()).collect();
    let mut out = String::new();
    for row in std::iter::once(&header).chain(rows) {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    if rows.is_empty() {
        out.push_str("(none)\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchyard_router::{ToolSeen, ToolSetShrink, UnknownToolCall};

    #[test]
    fn tables_name_the_tools_the_shrinks_and_the_unknown_calls() {
        let callers = vec![CallerTools {
            caller: "agent".into(),
            requests: 2,
            tools: vec![
                ToolSeen {
                    name: "search".into(),
                    seen: 2,
                },
                ToolSeen {
                    name: "exec".into(),
                    seen: 1,
                },
            ],
            shrinks: vec![ToolSetShrink {
                at_unix_ms: 1_796_104_800_000,
                missing: vec!["browser_open".into(), "browser_click".into()],
                offered: 2,
            }],
            unknown_calls: vec![UnknownToolCall {
                at_unix_ms: 1_796_104_801_000,
                tool: "rm_rf".into(),
                target: "local/qwen3:8b".into(),
                dropped: true,
            }],
        }];
        let text = render(&callers);
        assert!(
            text.contains("agent   2         search 2/2, exec 1/2"),
            "{text}"
        );
        assert!(
            text.contains("agent   2026-12-01 06:00:00Z  browser_open, browser_click  2"),
            "{text}"
        );
        assert!(
            text.contains("agent   2026-12-01 06:00:01Z  rm_rf  local/qwen3:8b  dropped"),
            "{text}"
        );
        assert!(render(&[]).contains("no caller"));
    }

    #[test]
    fn an_unspecified_listen_address_is_reached_over_loopback() {
        let any: SocketAddr = "0.0.0.0:4141".parse().unwrap();
        assert_eq!(reachable(any).to_string(), "127.0.0.1:4141");
        let any6: SocketAddr = "[::]:4141".parse().unwrap();
        assert_eq!(reachable(any6).to_string(), "[::1]:4141");
        let lan: SocketAddr = "192.168.1.5:4141".parse().unwrap();
        assert_eq!(reachable(lan), lan);
    }
}
