//! Rung 3 against a real TLS server on loopback. The fixtures are a test CA (`ca.pem`) and a
//! certificate for `localhost` only (`localhost.pem`, key `localhost.key`), valid until 2126.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests may panic

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::Locality;
use switchyard_doctor::TextRecovery;
use switchyard_doctor::{
    DoctorOptions, GatewayFacts, ProbeApi, ProviderProbe, Report, Rung, Status,
};
use switchyard_http::{ClientConfig, Timeouts};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// A TLS server for `localhost` that answers every request with "Ollama is running".
struct TlsServer {
    port: u16,
    task: tokio::task::JoinHandle<()>,
}

impl TlsServer {
    async fn start() -> TlsServer {
        let certs: Vec<CertificateDer<'static>> =
            CertificateDer::pem_file_iter(fixture("localhost.pem"))
                .unwrap()
                .collect::<Result<_, _>>()
                .unwrap();
        let key = PrivateKeyDer::from_pem_file(fixture("localhost.key")).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let task = tokio::spawn(async move {
            for _ in 0..32 {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    let Ok(Ok(mut tls)) =
                        tokio::time::timeout(Duration::from_secs(2), acceptor.accept(socket)).await
                    else {
                        return;
                    };
                    let mut buf = [0u8; 2048];
                    let _ = tokio::time::timeout(Duration::from_secs(2), tls.read(&mut buf)).await;
                    let body = "Ollama is running";
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
        TlsServer { port, task }
    }
}

fn probe(base_url: String, ca_file: Option<PathBuf>) -> ProviderProbe {
    ProviderProbe {
        id: "tls".into(),
        api: ProbeApi::Ollama,
        base_url,
        locality: Locality::Lan,
        locality_inferred: false,
        client: ClientConfig {
            timeouts: Timeouts {
                connect: Duration::from_millis(800),
                first_token: Duration::from_secs(2),
                idle: Duration::from_secs(2),
                total: None,
            },
            ca_file,
            ..ClientConfig::default()
        },
        models: vec![],
        tool_models: vec![],
        first_token_timeout: Duration::from_secs(2),
        routes: vec![],
        text_tool_recovery: TextRecovery::Off,
        max_tokens_field: None,
        num_ctx: None,
    }
}

async fn doctor(probe: ProviderProbe) -> Report {
    let options = DoctorOptions {
        dns_timeout: Duration::from_secs(1),
        connect_timeout: Duration::from_millis(800),
        request_timeout: Duration::from_secs(1),
        generation_timeout: Duration::from_secs(2),
        generate: false,
    };
    let facts = GatewayFacts::default();
    let mut progress = |_: &str| {};
    let run = switchyard_doctor::run_with(options, facts, vec![probe], &mut progress);
    tokio::time::timeout(Duration::from_secs(15), run)
        .await
        .unwrap()
}

fn tls_check(report: &Report) -> &switchyard_doctor::Check {
    report.providers[0]
        .checks
        .iter()
        .find(|c| c.rung == Rung::Tls)
        .unwrap_or_else(|| panic!("no tls line:\n{}", report.to_table()))
}

#[tokio::test]
async fn a_private_ca_without_ca_file_is_an_unknown_issuer() {
    let server = TlsServer::start().await;
    let report = doctor(probe(format!("https://localhost:{}", server.port), None)).await;
    let check = tls_check(&report);
    assert_eq!(
        (check.status, check.code.as_str()),
        (Status::Fail, "tls_unknown_issuer"),
        "{}",
        report.to_table()
    );
    assert!(check.hint.as_deref().unwrap().contains("ca_file"));
    server.task.abort();
}

#[tokio::test]
async fn the_ca_file_makes_the_certificate_trusted() {
    let server = TlsServer::start().await;
    let report = doctor(probe(
        format!("https://localhost:{}", server.port),
        Some(fixture("ca.pem")),
    ))
    .await;
    let check = tls_check(&report);
    assert_eq!(check.status, Status::Ok, "{}", report.to_table());
    assert!(check.summary.contains("TLS 1."), "{}", check.summary);
    // The ladder went on past TLS.
    assert!(
        report.providers[0]
            .checks
            .iter()
            .any(|c| c.rung == Rung::Http)
    );
    server.task.abort();
}

#[tokio::test]
async fn a_certificate_for_another_name_is_a_name_mismatch() {
    let server = TlsServer::start().await;
    let report = doctor(probe(
        format!("https://127.0.0.1:{}", server.port),
        Some(fixture("ca.pem")),
    ))
    .await;
    let check = tls_check(&report);
    assert_eq!(check.code, "tls_name_mismatch", "{}", report.to_table());
    server.task.abort();
}

#[tokio::test]
async fn plain_http_to_the_tls_port_is_recognised() {
    let server = TlsServer::start().await;
    let report = doctor(probe(format!("http://127.0.0.1:{}", server.port), None)).await;
    let check = tls_check(&report);
    assert_eq!(check.code, "plain_to_tls_port", "{}", report.to_table());
    server.task.abort();
}
