//! HTTPS on the api's listener: a client trusting the CA of the api's certificate gets answers over TLS;
//! plain HTTP to the same port gets none; shutdown is graceful.

use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_util::sync::CancellationToken;

use crate::helpers::{board, router, seed};

/// One HTTP/1.1 GET over TLS; the whole response.
async fn get_over_tls(
    addr: std::net::SocketAddr,
    trusted: &rustls::pki_types::CertificateDer<'static>,
    path: &str,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(trusted.clone()).expect("root");
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let name = ServerName::try_from("127.0.0.1").expect("name");
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.expect("TLS handshake");
    let request = format!("GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n");
    tls.write_all(request.as_bytes()).await.expect("write");
    let mut response = String::new();
    tls.read_to_string(&mut response).await.expect("read");
    response
}

#[tokio::test]
async fn the_api_serves_https_with_its_certificate_and_refuses_plain_http() {
    let redis = testkit::redis_url();
    let b = board("tls");
    seed(&router(&redis, "single").await, &b, 20).await;
    let pki = testkit::TestPki::new();
    let cert = CertificateDer::from_pem_slice(pki.ca_pem().as_bytes()).expect("the CA");
    let (cert_path, key_path) =
        (std::path::PathBuf::from(pki.path("cert.pem")), std::path::PathBuf::from(pki.path("key.pem")));
    let args = [
        "api",
        "--redis",
        &redis,
        "--layout",
        "single",
        "--tls-cert",
        cert_path.to_str().expect("path"),
        "--tls-key",
        key_path.to_str().expect("path"),
    ];
    let config = <api::Config as clap::Parser>::try_parse_from(args).expect("config");
    crate::helpers::ensure_epoch(&redis).await;
    let server = api::testing::TestServer::start(config, None, CancellationToken::new()).await.expect("api");
    let addr = server.addr;

    let top = get_over_tls(addr, &cert, &format!("/v1/boards/{b}/top?limit=3")).await;
    assert!(top.starts_with("HTTP/1.1 200"), "{top}");
    assert!(top.contains(r#""total":20"#), "{top}");
    let plain =
        reqwest::Client::new().get(format!("http://{addr}/healthz")).timeout(Duration::from_secs(3)).send().await;
    assert!(plain.is_err() || !plain.expect("response").status().is_success(), "plain HTTP is not served");

    tokio::time::timeout(Duration::from_secs(10), server.stop()).await.expect("graceful").expect("run");
    let bad = <api::Config as clap::Parser>::try_parse_from(["api", "--tls-cert", cert_path.to_str().expect("path")]);
    assert!(bad.is_err(), "a certificate without its key is refused");
    let wrong = api::tls::server_config(&api::tls::TlsFiles { cert: cert_path.clone(), key: cert_path.clone() });
    assert!(wrong.is_err(), "a certificate file given as the key is refused");
}
