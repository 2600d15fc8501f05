//! A TLS listener, end to end through the real binary: a client with a trusted certificate is
//! served (produce and fetch: the fetch path that cannot use sendfile), and every bad
//! connection — no certificate where one is required, an untrusted or expired certificate,
//! plaintext bytes, a stalled handshake — is closed without affecting the others.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrolog_client::kafka_protocol::messages::{
    alter_configs_request, describe_configs_request, AlterConfigsRequest, DescribeConfigsRequest,
};
use ferrolog_client::kafka_protocol::records::Compression;
use ferrolog_client::rustls::{self, pki_types::pem::PemObject};
use ferrolog_client::{record, Connection, Security, Tls};

fn secured(tls: &Tls) -> Security {
    Security {
        tls: Some(tls.clone()),
        sasl: None,
    }
}
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn certs(dir: &Path) -> PathBuf {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-certs.sh");
    let status = std::process::Command::new("bash")
        .arg(script)
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success(), "scripts/test-certs.sh failed");
    dir.to_path_buf()
}

/// A client TLS set-up trusting `ca`, presenting `cert`/`key` if given.
fn client(ca: &Path, cert: Option<(&Path, &Path)>) -> Tls {
    let mut roots = rustls::RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots);
    let config = match cert {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                rustls::pki_types::CertificateDer::pem_file_iter(cert)
                    .unwrap()
                    .map(|c| c.unwrap())
                    .collect(),
                rustls::pki_types::PrivateKeyDer::from_pem_file(key).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    Tls {
        config: Arc::new(config),
    }
}

/// A connection that the broker must refuse: its first request fails.
async fn refused(addr: &str, tls: Option<&Tls>) -> String {
    let started = Instant::now();
    let security = Security {
        tls: tls.cloned(),
        sasl: None,
    };
    let e = match Connection::connect_with(addr, &security).await {
        Ok(_) => panic!("a bad connection was served"),
        Err(e) => format!("{e:#}"),
    };
    assert!(started.elapsed() < Duration::from_secs(5), "{e}");
    e
}

#[test]
fn a_tls_listener_serves_trusted_clients_and_closes_only_bad_connections() {
    let temp = tempfile::tempdir().unwrap();
    let c = certs(temp.path());
    let path = |f: &str| c.join(f);
    let keystore = format!("ssl.keystore.location={}", path("server.p12").display());
    let truststore = format!(
        "ssl.truststore.location={}",
        path("truststore.pem").display()
    );
    let server = common::Server::start(&[
        "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "ssl.keystore.type=PKCS12",
        &keystore,
        "ssl.keystore.password=storepass",
        "ssl.truststore.type=PEM",
        &truststore,
        "ssl.client.auth=required",
    ]);
    // the broker names itself by the address it advertises: the certificate's SAN has it
    let addr = server.addr();
    let good = client(
        &path("ca.pem"),
        Some((&path("client.pem"), &path("client.key"))),
    );
    common::rt().block_on(async {
        let mut c = Connection::connect_with(&addr, &secured(&good))
            .await
            .unwrap();
        assert_eq!(common::create_topic(&mut c, "t", 1, &[]).await, 0);
        // a stalled handshake, held open while the others are served
        let mut stalled = tokio::net::TcpStream::connect(&addr).await.unwrap();
        let stalled_at = Instant::now();

        // larger than the write buffer of the TLS fetch path, so that it is crossed
        let value = bytes::Bytes::from(vec![7u8; 1000]);
        let mut produced = 0;
        for batch in 0..400 {
            let records: Vec<_> = (0..10)
                .map(|_| record(None, Some(value.clone()), vec![], ferrolog_client::now_ms()))
                .collect();
            let base = c
                .produce("t", 0, &records, Compression::None, -1)
                .await
                .unwrap();
            assert_eq!(base, batch * 10);
            produced += 10;
        }
        let mut offset = 0;
        while offset < produced {
            let (records, hw) = c.fetch("t", 0, offset, 100, 4 << 20).await.unwrap();
            assert_eq!(hw, produced);
            assert!(!records.is_empty());
            for r in &records {
                assert_eq!(r.offset, offset);
                assert_eq!(r.value.as_ref(), Some(&value));
                offset += 1;
            }
        }

        // DescribeConfigs lists the store's password as sensitive, without its value
        let described = c
            .send(&DescribeConfigsRequest::default().with_resources(vec![
                    describe_configs_request::DescribeConfigsResource::default()
                        .with_resource_type(4)
                        .with_resource_name(ferrolog_client::str("1"))
                        .with_configuration_keys(Some(vec![
                            ferrolog_client::str("ssl.keystore.password"),
                            ferrolog_client::str("ssl.keystore.type"),
                        ])),
                ]))
            .await
            .unwrap();
        let configs = &described.results[0].configs;
        let password = configs
            .iter()
            .find(|e| e.name.as_str() == "ssl.keystore.password")
            .expect("ssl.keystore.password listed");
        assert!(
            password.is_sensitive && password.value.is_none(),
            "{password:?}"
        );
        let kind = configs
            .iter()
            .find(|e| e.name.as_str() == "ssl.keystore.type");
        assert_eq!(kind.and_then(|e| e.value.as_deref()), Some("PKCS12"));

        // no certificate where one is required; an untrusted one; an expired one; plaintext
        let e = refused(&addr, Some(&client(&path("ca.pem"), None))).await;
        assert!(!e.is_empty());
        refused(
            &addr,
            Some(&client(
                &path("ca.pem"),
                Some((&path("rogue.pem"), &path("rogue.key"))),
            )),
        )
        .await;
        refused(
            &addr,
            Some(&client(
                &path("ca.pem"),
                Some((&path("expired.pem"), &path("expired.key"))),
            )),
        )
        .await;
        refused(&addr, None).await;
        // a client that does not trust the broker gives up itself
        let e = refused(&addr, Some(&client(&path("rogue-ca.pem"), None))).await;
        assert!(e.contains("TLS handshake"), "{e}");

        // the good connection is unaffected
        let (records, _) = c.fetch("t", 0, 0, 100, 1024).await.unwrap();
        assert_eq!(records[0].offset, 0);

        // the stalled handshake is closed in bounded time
        let mut buf = [0u8; 1];
        let read = tokio::time::timeout(Duration::from_secs(30), stalled.read(&mut buf))
            .await
            .expect("a stalled TLS handshake was never closed");
        assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
        assert!(stalled_at.elapsed() >= Duration::from_secs(5));
        // garbage after the TCP connect is closed at once
        let mut garbage = tokio::net::TcpStream::connect(&addr).await.unwrap();
        garbage.write_all(&[0xff; 64]).await.unwrap();
        // (an alert may come first)
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), garbage.read_to_end(&mut rest))
            .await
            .expect("garbage on a TLS port was not closed");
        assert!(rest.len() < 64, "{read:?} {rest:?}");
    });
}

/// The subject CN of the certificate the broker presents to a new TLS connection.
async fn served_certificate(addr: &str, ca: &Path) -> String {
    let tls = client(ca, None);
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let stream = tokio_rustls::TlsConnector::from(tls.config)
        .connect(name, tcp)
        .await
        .unwrap();
    let der = stream.get_ref().1.peer_certificates().unwrap()[0].clone();
    // the CN is the last printable run in the subject: enough to tell two test certificates
    let text = String::from_utf8_lossy(&der);
    ["localhost-rotated", "localhost"]
        .into_iter()
        .find(|cn| text.contains(cn))
        .unwrap_or("?")
        .to_string()
}

async fn alter_broker(c: &mut Connection, configs: &[(&str, &str)]) -> (i16, String) {
    let request = AlterConfigsRequest::default().with_resources(vec![
        alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(ferrolog_client::str("1"))
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        alter_configs_request::AlterableConfig::default()
                            .with_name(ferrolog_client::str(k))
                            .with_value(Some(ferrolog_client::str(v)))
                    })
                    .collect(),
            ),
    ]);
    let r = c.send(&request).await.unwrap();
    let r = &r.responses[0];
    (
        r.error_code,
        r.error_message.as_deref().unwrap_or("").to_string(),
    )
}

#[test]
fn a_new_key_store_set_with_alter_configs_serves_new_connections() {
    let temp = tempfile::tempdir().unwrap();
    let c = certs(temp.path());
    let keystore = format!(
        "ssl.keystore.location={}",
        c.join("server-bundle.pem").display()
    );
    let rotated = c.join("server2-bundle.pem").display().to_string();
    let ca = c.join("ca.pem");
    let rotate = [
        ("listener.name.ssl.ssl.keystore.type", "PEM"),
        ("listener.name.ssl.ssl.keystore.location", rotated.as_str()),
    ];
    // as Kafka by default: the new certificate must keep the subject
    let strict = common::Server::start(&[
        "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "ssl.keystore.type=PEM",
        &keystore,
    ]);
    common::rt().block_on(async {
        let mut admin = Connection::connect_with(&strict.addr(), &secured(&client(&ca, None)))
            .await
            .unwrap();
        let (code, message) = alter_broker(&mut admin, &rotate).await;
        assert_eq!(code, 40, "{message}");
        assert!(
            message.contains("DistinguishedName does not match"),
            "{message}"
        );
        assert_eq!(served_certificate(&strict.addr(), &ca).await, "localhost");
    });
    let server = common::Server::start(&[
        "listeners=SSL://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "ssl.keystore.type=PEM",
        &keystore,
        "ssl.allow.dn.changes=true",
    ]);
    let addr = server.addr();
    common::rt().block_on(async {
        assert_eq!(served_certificate(&addr, &ca).await, "localhost");
        let mut admin = Connection::connect_with(&addr, &secured(&client(&ca, None)))
            .await
            .unwrap();
        // a store that does not load is refused, and the old one stays in force
        let (code, message) = alter_broker(
            &mut admin,
            &[
                ("listener.name.ssl.ssl.keystore.type", "PEM"),
                (
                    "listener.name.ssl.ssl.keystore.location",
                    "/nonexistent.pem",
                ),
            ],
        )
        .await;
        assert_eq!(code, 40, "{message}"); // INVALID_CONFIG
        assert!(message.contains("SSLFactory"), "{message}");
        assert_eq!(served_certificate(&addr, &ca).await, "localhost");
        // not a TLS listener; the broker-wide key is per-listener only, as in Kafka
        let (code, _) = alter_broker(
            &mut admin,
            &[("listener.name.other.ssl.keystore.location", "x")],
        )
        .await;
        assert_ne!(code, 0);
        let (code, _) = alter_broker(&mut admin, &[("ssl.keystore.location", "x")]).await;
        assert_ne!(code, 0);
        // the rotated certificate is served to new connections; the open one keeps working
        let (code, message) = alter_broker(&mut admin, &rotate).await;
        assert_eq!(code, 0, "{message}");
        let deadline = Instant::now() + Duration::from_secs(10);
        while served_certificate(&addr, &ca).await != "localhost-rotated" {
            assert!(
                Instant::now() < deadline,
                "the new key store was never served"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(
            common::create_topic(&mut admin, "after-rotation", 1, &[]).await,
            0
        );
    });
}
