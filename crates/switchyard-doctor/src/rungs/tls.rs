//! Rung 3: what the port speaks. For `https://` a TLS handshake with the trust roots the
//! client uses (webpki, the system's, the configured `ca_file`), its failure classified
//! (untrusted issuer, name mismatch, expired, a plain-HTTP port). For `http://` a raw HTTP
//! request that tells a TLS port (an alert, nginx's "plain HTTP request was sent to HTTPS
//! port" or Go's "Client sent an HTTP request to an HTTPS server" from Caddy or Traefik), a
//! port that never answers, one that answers in something else than HTTP (an SSH banner:
//! another program owns it) and one that closes without a byte (a port forward with
//! nothing behind it).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, CertificateError, ClientConfig, RootCertStore};

use crate::finding::Finding;
use crate::report::{Check, Rung};
use crate::rungs::tcp;
use crate::target::Target;

/// The most bytes of a raw answer read.
const MAX_PEEK: usize = 1024;

/// What a raw plain-HTTP request to the port got back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PlainAnswer {
    /// An HTTP answer.
    Http,
    /// A TLS record (an alert) or a proxy saying it wanted TLS.
    Tls,
    /// The connection closed without a byte.
    Closed,
    /// Nothing within the limit.
    Silent,
    /// Bytes that are neither.
    Other,
}

/// Classifies the first bytes a port sent back to a plain HTTP request.
pub(crate) fn classify_plain_answer(bytes: &[u8]) -> PlainAnswer {
    if bytes.is_empty() {
        return PlainAnswer::Closed;
    }
    if bytes.starts_with(b"HTTP/") {
        let text = String::from_utf8_lossy(bytes).to_ascii_lowercase();
        // nginx: "The plain HTTP request was sent to HTTPS port"; Go's net/http (Caddy,
        // Traefik): "Client sent an HTTP request to an HTTPS server."
        if text.contains("plain http request was sent to https port")
            || text.contains("client sent an http request to an https server")
        {
            return PlainAnswer::Tls;
        }
        return PlainAnswer::Http;
    }
    // TLS record header: content type (alert 21, handshake 22), then version 3.x.
    if bytes.len() >= 2 && matches!(bytes[0], 0x15 | 0x16) && bytes[1] == 0x03 {
        return PlainAnswer::Tls;
    }
    PlainAnswer::Other
}

/// What a plain HTTP request got back: its classification and the start of the bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PlainReply {
    /// The classification.
    pub(crate) answer: PlainAnswer,
    /// The first line of what came back, printable and bounded (empty when nothing came).
    pub(crate) first_line: String,
}

impl PlainReply {
    fn from_bytes(bytes: &[u8]) -> Self {
        Self {
            answer: classify_plain_answer(bytes),
            first_line: first_line(bytes),
        }
    }
}

/// The first line of `bytes`, with control characters dropped, at most 60 characters.
fn first_line(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let line = text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    line.chars().filter(|c| !c.is_control()).take(60).collect()
}

/// Sends `GET /` in plain HTTP on a fresh connection and classifies the answer.
pub(crate) async fn plain_request(
    addr: SocketAddr,
    authority: &str,
    connect_timeout: Duration,
    read_timeout: Duration,
) -> Result<PlainReply, Finding> {
    let mut stream = tcp::connect(addr, connect_timeout).await?;
    let request = format!(
        "GET / HTTP/1.1\r\nHost: {authority}\r\nUser-Agent: switchyard-doctor\r\nConnection: close\r\n\r\n"
    );
    if stream.write_all(request.as_bytes()).await.is_err() {
        return Ok(PlainReply::from_bytes(&[]));
    }
    let mut buf = vec![0u8; MAX_PEEK];
    let mut filled = 0;
    let deadline = tokio::time::Instant::now() + read_timeout;
    // A few reads at most: enough for a status line and a short body.
    for _ in 0..8 {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf[filled..])).await {
            Err(_) => {
                if filled == 0 {
                    return Ok(PlainReply {
                        answer: PlainAnswer::Silent,
                        first_line: String::new(),
                    });
                }
                break;
            }
            Ok(Err(_)) | Ok(Ok(0)) => break,
            Ok(Ok(n)) => {
                filled += n;
                if filled >= MAX_PEEK || classify_plain_answer(&buf[..filled]) == PlainAnswer::Tls {
                    break;
                }
            }
        }
    }
    Ok(PlainReply::from_bytes(&buf[..filled]))
}

/// The outcome of rung 3 that later rungs care about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    /// Go on.
    Fine,
    /// The port accepted the connection but never answered an HTTP request.
    Silent,
}

/// Rung 3. `None` after recording a failure.
pub(crate) async fn probe(
    target: &Target,
    addr: SocketAddr,
    ca_file: Option<&Path>,
    connect_timeout: Duration,
    read_timeout: Duration,
    out: &mut Vec<Check>,
) -> Option<Protocol> {
    let started = Instant::now();
    if !target.https {
        let answer = plain_request(addr, &target.authority(), connect_timeout, read_timeout).await;
        return match answer.map(|reply| (reply.answer, reply.first_line)) {
            Ok((PlainAnswer::Tls, _)) => {
                out.push(
                    Finding::PlainToTlsPort { addr }
                        .check(Rung::Tls)
                        .elapsed(started.elapsed()),
                );
                None
            }
            Ok((PlainAnswer::Silent, _)) => {
                out.push(Check::ok(Rung::Tls, "not used (http://)"));
                Some(Protocol::Silent)
            }
            Ok((PlainAnswer::Closed, _)) => {
                out.push(
                    Finding::ClosedWithoutAnswer { addr }
                        .check(Rung::Tls)
                        .elapsed(started.elapsed()),
                );
                None
            }
            Ok((PlainAnswer::Other, first_line)) => {
                out.push(
                    Finding::NotHttp { addr, first_line }
                        .check(Rung::Tls)
                        .elapsed(started.elapsed()),
                );
                None
            }
            Ok((PlainAnswer::Http, _)) => {
                out.push(Check::ok(
                    Rung::Tls,
                    "not used (http://); the port speaks plain HTTP",
                ));
                Some(Protocol::Fine)
            }
            Err(finding) => {
                out.push(finding.check(Rung::Tls).elapsed(started.elapsed()));
                None
            }
        };
    }
    let config = match client_config(ca_file) {
        Ok(c) => c,
        Err(finding) => {
            out.push(finding.check(Rung::Tls));
            return None;
        }
    };
    let finding = match handshake(config, target, addr, connect_timeout).await {
        Ok(version) => {
            out.push(
                Check::ok(
                    Rung::Tls,
                    format!("{version} with a certificate valid for {}", target.host),
                )
                .elapsed(started.elapsed()),
            );
            return Some(Protocol::Fine);
        }
        Err(HandshakeError::Finding(f)) => f,
        Err(HandshakeError::NotTls(detail)) => {
            // Confirm on a fresh connection: does the port speak plain HTTP?
            match plain_request(addr, &target.authority(), connect_timeout, read_timeout).await {
                Ok(PlainReply {
                    answer: PlainAnswer::Http,
                    ..
                }) => Finding::TlsToPlainPort { addr },
                _ => Finding::TlsFailed {
                    host: target.host.clone(),
                    error: detail,
                },
            }
        }
    };
    let finding = match finding {
        Finding::TlsUnknownIssuer { host, .. } => Finding::TlsUnknownIssuer {
            host,
            ca_file: ca_file.map(|p| p.display().to_string()),
        },
        other => other,
    };
    out.push(finding.check(Rung::Tls).elapsed(started.elapsed()));
    None
}

enum HandshakeError {
    Finding(Finding),
    /// The peer did not answer in TLS (a plain port?), with the error's words.
    NotTls(String),
}

async fn handshake(
    config: Arc<ClientConfig>,
    target: &Target,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<&'static str, HandshakeError> {
    let name = ServerName::try_from(target.host.clone()).map_err(|e| {
        HandshakeError::Finding(Finding::TlsFailed {
            host: target.host.clone(),
            error: e.to_string(),
        })
    })?;
    let tcp = tcp::connect(addr, timeout)
        .await
        .map_err(HandshakeError::Finding)?;
    let connector = TlsConnector::from(config);
    let result = tokio::time::timeout(timeout, connector.connect(name, tcp)).await;
    let err = match result {
        Ok(Ok(stream)) => {
            let version = match stream.get_ref().1.protocol_version() {
                Some(rustls::ProtocolVersion::TLSv1_3) => "TLS 1.3",
                Some(rustls::ProtocolVersion::TLSv1_2) => "TLS 1.2",
                _ => "TLS",
            };
            return Ok(version);
        }
        Ok(Err(e)) => e,
        Err(_) => {
            return Err(HandshakeError::NotTls(format!(
                "no TLS answer within {} ms",
                timeout.as_millis()
            )));
        }
    };
    Err(classify_handshake_error(&err, &target.host))
}

fn classify_handshake_error(err: &std::io::Error, host: &str) -> HandshakeError {
    let tls = err
        .get_ref()
        .and_then(|e| e.downcast_ref::<rustls::Error>());
    let host = host.to_owned();
    match tls {
        Some(rustls::Error::InvalidCertificate(cert)) => HandshakeError::Finding(match cert {
            CertificateError::UnknownIssuer => Finding::TlsUnknownIssuer {
                host,
                ca_file: None,
            },
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                Finding::TlsNameMismatch { host }
            }
            CertificateError::Expired
            | CertificateError::ExpiredContext { .. }
            | CertificateError::NotValidYet
            | CertificateError::NotValidYetContext { .. } => Finding::TlsExpired { host },
            other => Finding::TlsFailed {
                host,
                error: format!("invalid certificate: {other:?}"),
            },
        }),
        Some(rustls::Error::InvalidMessage(m)) => HandshakeError::NotTls(format!("{m:?}")),
        Some(other) => HandshakeError::Finding(Finding::TlsFailed {
            host,
            error: other.to_string(),
        }),
        None => match err.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::InvalidData => HandshakeError::NotTls(err.to_string()),
            _ => HandshakeError::Finding(Finding::TlsFailed {
                host,
                error: err.to_string(),
            }),
        },
    }
}

/// The client's trust roots: webpki's, the system's, and the configured CA file.
fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, Finding> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let native = rustls_native_certs::load_native_certs();
    // Unparseable system certificates are skipped, as the HTTP client does.
    let _ = roots.add_parsable_certificates(native.certs);
    if let Some(path) = ca_file {
        let ca_err = |error: String| Finding::TlsCaFile {
            path: path.display().to_string(),
            error,
        };
        let pem = std::fs::read(path).map_err(|e| ca_err(e.to_string()))?;
        let mut found = 0usize;
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| ca_err(e.to_string()))?;
            roots.add(cert).map_err(|e| ca_err(e.to_string()))?;
            found += 1;
        }
        if found == 0 {
            return Err(ca_err("no PEM certificate in it".to_owned()));
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Finding::TlsFailed {
            host: String::new(),
            error: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_answers_are_told_apart() {
        assert_eq!(
            classify_plain_answer(b"HTTP/1.1 200 OK\r\n\r\nOllama is running"),
            PlainAnswer::Http
        );
        assert_eq!(
            classify_plain_answer(
                b"HTTP/1.1 400 Bad Request\r\n\r\n<html>The plain HTTP request was sent to HTTPS port</html>"
            ),
            PlainAnswer::Tls
        );
        // Go's net/http (Caddy, Traefik), in any case.
        for answer in [
            &b"HTTP/1.0 400 Bad Request\r\n\r\nClient sent an HTTP request to an HTTPS server.\n"[..],
            b"HTTP/1.0 400 Bad Request\r\n\r\nclient sent an http request to an https server.",
        ] {
            assert_eq!(classify_plain_answer(answer), PlainAnswer::Tls);
        }
        assert_eq!(
            classify_plain_answer(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x46]),
            PlainAnswer::Tls
        );
        assert_eq!(classify_plain_answer(b""), PlainAnswer::Closed);
        assert_eq!(
            classify_plain_answer(b"SSH-2.0-OpenSSH"),
            PlainAnswer::Other
        );
    }

    #[test]
    fn a_missing_ca_file_is_named() {
        let e = client_config(Some(Path::new("/nonexistent/ca.pem"))).unwrap_err();
        assert_eq!(e.code(), "tls_ca_file");
        assert!(e.summary().contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn certificate_errors_are_classified() {
        let io = |e: rustls::Error| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let code = |e| match classify_handshake_error(&io(e), "h") {
            HandshakeError::Finding(f) => f.code(),
            HandshakeError::NotTls(_) => "not_tls",
        };
        assert_eq!(
            code(rustls::Error::InvalidCertificate(
                CertificateError::UnknownIssuer
            )),
            "tls_unknown_issuer"
        );
        assert_eq!(
            code(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName
            )),
            "tls_name_mismatch"
        );
        assert_eq!(
            code(rustls::Error::InvalidCertificate(CertificateError::Expired)),
            "tls_expired"
        );
        assert_eq!(
            code(rustls::Error::InvalidMessage(
                rustls::InvalidMessage::InvalidContentType
            )),
            "not_tls"
        );
    }
}
