//! Rung 1: the host name resolves.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::finding::Finding;
use crate::report::{Check, Rung};
use crate::target::Target;

/// Resolves the target's host; the addresses, or `None` after recording the failure.
pub(crate) async fn probe(
    target: &Target,
    timeout: Duration,
    out: &mut Vec<Check>,
) -> Option<Vec<SocketAddr>> {
    if let Some(ip) = target.ip {
        out.push(Check::ok(
            Rung::Dns,
            format!("{ip} is an IP address (no lookup needed)"),
        ));
        return Some(vec![SocketAddr::new(ip, target.port)]);
    }
    let started = Instant::now();
    let lookup = tokio::net::lookup_host((target.host.as_str(), target.port));
    let finding = match tokio::time::timeout(timeout, lookup).await {
        Ok(Ok(addrs)) => {
            let mut addrs: Vec<SocketAddr> = addrs.take(16).collect();
            addrs.dedup();
            if addrs.is_empty() {
                Finding::DnsFailed {
                    host: target.host.clone(),
                    error: "no address found".into(),
                }
            } else {
                let shown: Vec<String> = addrs.iter().take(4).map(|a| a.ip().to_string()).collect();
                out.push(
                    Check::ok(
                        Rung::Dns,
                        format!("{} resolves to {}", target.host, shown.join(", ")),
                    )
                    .elapsed(started.elapsed()),
                );
                return Some(addrs);
            }
        }
        Ok(Err(e)) => Finding::DnsFailed {
            host: target.host.clone(),
            error: e.to_string(),
        },
        Err(_) => Finding::DnsTimedOut {
            host: target.host.clone(),
            after: timeout,
        },
    };
    out.push(finding.check(Rung::Dns).elapsed(started.elapsed()));
    None
}
