//! Rung 2: a TCP connection opens; refused, timed out and unreachable told apart.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::finding::Finding;
use crate::input::ProbeApi;
use crate::report::{Check, Rung};

/// The most addresses of one host tried.
const MAX_ADDRESSES: usize = 4;

/// Opens a TCP connection to one of `addrs` (in order); the address that answered, or
/// `None` after recording why none did.
pub(crate) async fn probe(
    addrs: &[SocketAddr],
    api: ProbeApi,
    timeout: Duration,
    out: &mut Vec<Check>,
) -> Option<SocketAddr> {
    let started = Instant::now();
    let mut first_failure = None;
    for &addr in addrs.iter().take(MAX_ADDRESSES) {
        match connect(addr, timeout).await {
            Ok(_stream) => {
                out.push(
                    Check::ok(Rung::Tcp, format!("connected to {addr}")).elapsed(started.elapsed()),
                );
                return Some(addr);
            }
            Err(finding) => {
                first_failure.get_or_insert(finding);
            }
        }
    }
    let finding = first_failure.unwrap_or(Finding::ConnectFailed {
        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        error: "no address to connect to".to_owned(),
    });
    let finding = match finding {
        Finding::ConnectRefused { addr, .. } => Finding::ConnectRefused {
            addr,
            api,
            in_container: in_container(),
        },
        other => other,
    };
    out.push(finding.check(Rung::Tcp).elapsed(started.elapsed()));
    None
}

/// One connection attempt with its own timeout (TCP_NODELAY set), classified on failure.
pub(crate) async fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Finding> {
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => {
            // Best effort: the probe works without it.
            let _ = stream.set_nodelay(true);
            Ok(stream)
        }
        Ok(Err(e)) => Err(classify(addr, &e, timeout)),
        Err(_) => Err(Finding::ConnectTimedOut {
            addr,
            after: timeout,
        }),
    }
}

/// Whether this process runs in a container (Docker's or Podman's marker file).
fn in_container() -> bool {
    ["/.dockerenv", "/run/.containerenv"]
        .iter()
        .any(|p| std::path::Path::new(p).exists())
}

/// Classifies a failed connect by its I/O error kind.
pub(crate) fn classify(addr: SocketAddr, err: &io::Error, timeout: Duration) -> Finding {
    match err.kind() {
        io::ErrorKind::ConnectionRefused => Finding::ConnectRefused {
            addr,
            api: ProbeApi::Ollama,
            in_container: false,
        },
        io::ErrorKind::TimedOut => Finding::ConnectTimedOut {
            addr,
            after: timeout,
        },
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            Finding::Unreachable {
                addr,
                error: err.to_string(),
            }
        }
        _ => Finding::ConnectFailed {
            addr,
            error: err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_error_kinds_map_to_findings() {
        let addr: SocketAddr = "10.1.2.3:11434".parse().unwrap();
        let t = Duration::from_secs(1);
        let code = |kind| classify(addr, &io::Error::from(kind), t).code();
        assert_eq!(code(io::ErrorKind::ConnectionRefused), "connect_refused");
        assert_eq!(code(io::ErrorKind::TimedOut), "connect_timed_out");
        assert_eq!(code(io::ErrorKind::HostUnreachable), "unreachable");
        assert_eq!(code(io::ErrorKind::NetworkUnreachable), "unreachable");
        assert_eq!(code(io::ErrorKind::PermissionDenied), "connect_failed");
    }
}
