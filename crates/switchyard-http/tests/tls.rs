//! A private CA file makes an HTTPS upstream trusted; without it the handshake fails with
//! `tls_failure`. Real TLS over loopback with the throwaway material in `tests/fixtures`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use switchyard_core::ErrorKind;
use switchyard_http::{ClientConfig, Timeouts, build_client, read_body_timed, send_request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// An HTTPS server answering every connection with `200 ok`.
async fn https_server() -> String {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(fixture("server.pem"))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_file(fixture("server.key")).unwrap();
    let config = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..8 {
            let Ok((sock, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(sock).await else {
                    return;
                };
                let mut req = [0u8; 4096];
                let _ = tls.read(&mut req).await;
                let _ = tls
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                    .await;
                let _ = tls.flush().await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            });
        }
    });
    format!("https://{addr}/")
}

fn timeouts() -> Timeouts {
    Timeouts {
        connect: Duration::from_secs(2),
        first_token: Duration::from_secs(2),
        idle: Duration::from_secs(2),
        total: Some(Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn a_private_ca_file_is_trusted() {
    let url = https_server().await;
    let config = ClientConfig {
        ca_file: Some(fixture("ca.pem")),
        timeouts: timeouts(),
        ..ClientConfig::default()
    };
    let client = build_client(&config).unwrap();
    let mut started = send_request(client.get(&url), &config.timeouts, &url)
        .await
        .unwrap();
    let body = read_body_timed(
        &mut started.response,
        64,
        &config.timeouts,
        started.started,
        &url,
    )
    .await
    .unwrap();
    assert_eq!(&body[..], b"ok");
}

#[tokio::test]
async fn without_the_ca_the_handshake_is_a_tls_failure() {
    let url = https_server().await;
    let config = ClientConfig {
        timeouts: timeouts(),
        ..ClientConfig::default()
    };
    let client = build_client(&config).unwrap();
    let err = send_request(client.get(&url), &config.timeouts, &url)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert_eq!(err.reason_code(), "tls_failure");
}

#[test]
fn a_file_without_certificates_is_refused() {
    let config = ClientConfig {
        ca_file: Some(fixture("README.md")),
        ..ClientConfig::default()
    };
    let err = build_client(&config).unwrap_err();
    assert_eq!(err.reason_code(), "invalid_ca_file");
    assert!(err.to_string().contains("README.md"), "{err}");
}
