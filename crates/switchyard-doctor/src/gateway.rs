//! The gateway's own checks: config, checksum, version, listen address, caller keys.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::finding::Finding;
use crate::input::GatewayFacts;
use crate::report::{Check, GatewaySection, Rung};
use crate::rungs::tcp;

/// The header every Switchyard gateway answer carries.
const GATEWAY_HEADER: &str = "x-switchyard-request-id";

/// Runs the gateway's checks.
pub(crate) async fn check(facts: &GatewayFacts, timeout: Duration) -> GatewaySection {
    let mut checks = Vec::new();
    let path = facts.config_path.as_ref().map(|p| p.display().to_string());
    checks.push(match (&facts.config_error, &path) {
        (Some(error), _) => Finding::ConfigInvalid {
            error: error.clone(),
        }
        .check(Rung::Config),
        (None, Some(p)) => Check::ok(Rung::Config, format!("{p} passes `config check`")),
        (None, None) => Check::ok(Rung::Config, "no config file: built-in defaults"),
    });
    checks.push(match &facts.config_checksum {
        Some(sum) => Check::ok(Rung::Checksum, sum.clone()),
        None => Check::ok(Rung::Checksum, "none (no config file read)"),
    });
    checks.push(Check::ok(
        Rung::Version,
        format!("switchyard {} (build {})", facts.version, facts.build_id),
    ));
    match facts.listen {
        Some(addr) => {
            checks.push(listen(addr, timeout).await);
            let beyond = facts
                .listen_beyond_loopback
                .unwrap_or_else(|| !is_loopback(addr.ip()));
            checks.push(keys(addr, beyond, facts.keys_configured));
        }
        None => checks.push(Check::ok(
            Rung::Listen,
            "no listen address known (config not loaded)",
        )),
    }
    if !facts.proxy_variables.is_empty() {
        checks.push(Check::ok(
            Rung::Proxy,
            format!(
                "{} set here: the gateway ignores proxy variables and connects to providers \
                 directly",
                facts.proxy_variables.join(", ")
            ),
        ));
    }
    GatewaySection {
        version: facts.version.clone(),
        build_id: facts.build_id.clone(),
        config_path: path,
        config_checksum: facts.config_checksum.clone(),
        checks,
    }
}

/// Where to connect to reach a server listening on `addr` (the unspecified address is
/// reached through loopback).
fn connect_addr(addr: SocketAddr) -> SocketAddr {
    match addr.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), addr.port())
        }
        IpAddr::V6(v6) if v6.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), addr.port())
        }
        _ => addr,
    }
}

async fn listen(addr: SocketAddr, timeout: Duration) -> Check {
    let target = connect_addr(addr);
    if let Ok(mut stream) = tcp::connect(target, timeout).await {
        if is_switchyard(&mut stream, target, timeout).await {
            return Check::ok(
                Rung::Listen,
                format!("a Switchyard gateway already serves {addr} (/healthz answered)"),
            );
        }
        return Finding::ListenInUse { addr }.check(Rung::Listen);
    }
    match tokio::net::TcpListener::bind(addr).await {
        Ok(listener) => {
            drop(listener);
            Check::ok(Rung::Listen, format!("{addr} is free: `serve` can bind it"))
        }
        Err(e) => Finding::ListenUnavailable {
            addr,
            error: e.to_string(),
            permission: e.kind() == std::io::ErrorKind::PermissionDenied,
        }
        .check(Rung::Listen),
    }
}

/// Whether the server on `stream` answers `/healthz` with Switchyard's request-id header.
async fn is_switchyard(
    stream: &mut tokio::net::TcpStream,
    addr: SocketAddr,
    timeout: Duration,
) -> bool {
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: {addr}\r\nUser-Agent: switchyard-doctor\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return false;
    }
    let mut buf = vec![0u8; 2048];
    let mut filled = 0;
    let deadline = tokio::time::Instant::now() + timeout;
    for _ in 0..8 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Ok(Ok(n)) if n > 0 => {
                filled += n;
                let head = String::from_utf8_lossy(&buf[..filled]).to_ascii_lowercase();
                if head.contains(GATEWAY_HEADER) {
                    return true;
                }
                if head.contains("\r\n\r\n") || filled == buf.len() {
                    return false;
                }
            }
            _ => return false,
        }
    }
    false
}

/// The listen policy's loopback rule (`switchyard_gateway::check_listen_policy`): a
/// loopback address, IPv4-mapped loopback (`::ffff:127.0.0.1`) included.
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => {
            v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
        }
    }
}

/// The caller keys: optional on loopback; beyond it, the config chose `insecure_listen`
/// when there are none (validation refuses it otherwise), so that is a warning.
fn keys(addr: SocketAddr, beyond_loopback: bool, keys_configured: bool) -> Check {
    if !beyond_loopback {
        let note = if keys_configured {
            "keys configured"
        } else {
            "keys optional"
        };
        Check::ok(Rung::Keys, format!("loopback only ({note})"))
    } else if keys_configured {
        Check::ok(Rung::Keys, format!("listening on {addr} with API keys"))
    } else {
        Finding::OpenWithoutKeys { addr }.check(Rung::Keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Status;

    #[test]
    fn keys_are_asked_for_beyond_loopback() {
        let lan: SocketAddr = "0.0.0.0:4141".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:4141".parse().unwrap();
        // Only `insecure_listen: true` gets past validation without keys: a warning.
        assert_eq!(keys(lan, true, false).status, Status::Warn);
        assert_eq!(keys(lan, true, false).code, "open_without_keys");
        assert!(
            keys(lan, true, false)
                .hint
                .unwrap()
                .contains("insecure_listen")
        );
        assert_eq!(keys(lan, true, true).status, Status::Ok);
        assert_eq!(keys(lo, false, false).status, Status::Ok);
    }

    #[tokio::test]
    async fn ipv4_mapped_loopback_is_loopback_as_the_listen_policy_says() {
        for (addr, beyond) in [
            ("[::ffff:127.0.0.1]:0", false),
            ("[::1]:0", false),
            ("127.0.0.2:0", false),
            ("[::ffff:10.0.0.1]:0", true),
            ("0.0.0.0:0", true),
            ("[::]:0", true),
        ] {
            let addr: SocketAddr = addr.parse().unwrap();
            assert_eq!(!is_loopback(addr.ip()), beyond, "{addr}");
        }
        // Without the binary's verdict the doctor applies the rule itself.
        let facts = GatewayFacts {
            listen: Some("[::ffff:127.0.0.1]:0".parse().unwrap()),
            ..GatewayFacts::default()
        };
        let section = check(&facts, Duration::from_millis(200)).await;
        let keys = section
            .checks
            .iter()
            .find(|c| c.rung == Rung::Keys)
            .unwrap();
        assert_eq!(keys.status, Status::Ok, "{keys:?}");
        // With it, the verdict is the binary's.
        let facts = GatewayFacts {
            listen_beyond_loopback: Some(true),
            proxy_variables: vec!["HTTPS_PROXY".into()],
            ..facts
        };
        let section = check(&facts, Duration::from_millis(200)).await;
        let keys = section
            .checks
            .iter()
            .find(|c| c.rung == Rung::Keys)
            .unwrap();
        assert_eq!(keys.code, "open_without_keys", "{keys:?}");
        let proxy = section
            .checks
            .iter()
            .find(|c| c.rung == Rung::Proxy)
            .unwrap();
        assert!(proxy.summary.contains("HTTPS_PROXY set here"), "{proxy:?}");
    }

    #[test]
    fn unspecified_addresses_are_reached_through_loopback() {
        assert_eq!(
            connect_addr("0.0.0.0:1".parse().unwrap()),
            "127.0.0.1:1".parse().unwrap()
        );
        assert_eq!(
            connect_addr("[::]:1".parse().unwrap()),
            "[::1]:1".parse().unwrap()
        );
    }

    #[tokio::test]
    async fn a_running_gateway_on_the_listen_address_is_recognised() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = socket.read(&mut buf).await;
            let answer =
                "HTTP/1.1 200 OK\r\nx-switchyard-request-id: req_1\r\ncontent-length: 2\r\n\r\nok";
            let _ = socket.write_all(answer.as_bytes()).await;
        });
        let c = listen(addr, Duration::from_millis(500)).await;
        assert_eq!(c.status, Status::Ok, "{c:?}");
        assert!(c.summary.contains("already serves"));
        server.abort();
    }

    #[tokio::test]
    async fn listen_free_taken_and_config_error() {
        let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let taken_addr = taken.local_addr().unwrap();
        // Answers nothing: not a gateway.
        let holder = tokio::spawn(async move {
            let _conn = taken.accept().await;
            tokio::time::sleep(Duration::from_secs(5)).await;
        });
        let short = Duration::from_millis(300);
        let c = listen(taken_addr, short).await;
        assert_eq!((c.status, c.code.as_str()), (Status::Warn, "listen_in_use"));
        holder.abort();

        let free = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let c = listen(free, short).await;
        assert_eq!(c.status, Status::Ok, "{c:?}");

        let facts = GatewayFacts {
            config_error: Some("config.json5:12:5: unknown key `listn`".into()),
            version: "0.1.0".into(),
            build_id: "abc".into(),
            ..GatewayFacts::default()
        };
        let section = check(&facts, short).await;
        assert_eq!(section.checks[0].code, "config_invalid");
        assert!(section.checks[0].summary.contains("config.json5:12:5"));
    }
}
