//! TLS for a listener (rustls): key and trust stores in Kafka's formats, client
//! authentication, protocol versions and cipher suites, from Kafka's `ssl.*` keys and their
//! per-listener overrides `listener.name.<listener>.ssl.*`.
//!
//! Stores: PEM (`ssl.keystore.location` holding the key and its chain, or inline
//! `ssl.keystore.key` / `ssl.keystore.certificate.chain`; `ssl.truststore.certificates`),
//! PKCS12, and PKCS#8 keys encrypted under `ssl.key.password`. Java's JKS format is refused
//! with the command that converts it; a file declared JKS that is PKCS12 (what `keytool`
//! writes since Java 9) is read as PKCS12, as Java does.

use std::sync::Arc;

use anyhow::{anyhow, bail, Context, Result};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use super::principal::PrincipalMapper;
use super::ListenerKeys;
use crate::config::Properties;

/// What a TLS listener serves with: the rustls configuration and how a client certificate's
/// subject becomes a principal.
#[derive(Debug)]
pub struct ListenerTls {
    pub server: Arc<ServerConfig>,
    pub mapper: PrincipalMapper,
    /// The listener's own certificate (the first of its chain).
    pub certificate: CertificateDer<'static>,
}

impl ListenerTls {
    /// Refuses `new` in place of this set-up when its certificate names another subject or
    /// other alternative names and `ssl.allow.dn.changes` / `ssl.allow.san.changes` do not
    /// allow it, with Kafka's messages.
    pub fn check_replacement(
        &self,
        new: &ListenerTls,
        allow_dn: bool,
        allow_san: bool,
    ) -> Result<()> {
        let (old_dn, old_san) = identity(&self.certificate)?;
        let (new_dn, new_san) = identity(&new.certificate)?;
        if !allow_dn && old_dn != new_dn {
            bail!("Keystore DistinguishedName does not match: existing={{{old_dn}}}, new={{{new_dn}}}");
        }
        if !allow_san && old_san != new_san {
            bail!("Keystore SubjectAltNames do not match: existing={old_san:?}, new={new_san:?}");
        }
        Ok(())
    }
}

/// How long a client has to complete the TLS handshake before the connection is closed.
pub const TLS_HANDSHAKE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The server side of the TLS handshake, bounded in time, and the principal it establishes:
/// `User:` and the mapped subject of the client certificate, or `User:ANONYMOUS` without one.
pub async fn accept(
    tls: &ListenerTls,
    stream: tokio::net::TcpStream,
) -> Result<
    (
        tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
        String,
    ),
    String,
> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Err(_) => return Err(format!("not completed within {TLS_HANDSHAKE_TIMEOUT:?}")),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(stream)) => stream,
    };
    let principal = match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        None => super::principal::ANONYMOUS.to_string(),
        Some(cert) => {
            let name = super::principal::subject_dn(cert)
                .and_then(|dn| tls.mapper.map(&dn))
                .map_err(|e| format!("{e:#}"))?;
            format!("User:{name}")
        }
    };
    Ok((stream, principal))
}

/// A certificate's subject (RFC 2253) and its subject alternative names, sorted.
fn identity(certificate: &CertificateDer) -> Result<(String, Vec<String>)> {
    let dn = super::principal::subject_dn(certificate)?;
    let (_, cert) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| anyhow!("certificate: {e}"))?;
    let mut names: Vec<String> = match cert.subject_alternative_name() {
        Ok(Some(san)) => san
            .value
            .general_names
            .iter()
            .map(|n| n.to_string())
            .collect(),
        _ => Vec::new(),
    };
    names.sort();
    Ok((dn, names))
}

/// Builds the TLS configuration of `listener` from the broker's properties. Every error names
/// the key at fault; nothing is silently weakened.
pub fn listener_tls(properties: &Properties, listener: &str) -> Result<ListenerTls> {
    let keys = ListenerKeys::new(properties, listener);
    refuse_unsupported(&keys)?;
    let provider = Arc::new(provider(&keys)?);
    let versions = protocol_versions(&keys)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&versions)
        .with_context(|| {
            format!(
                "{} and {} have nothing in common",
                keys.name("ssl.enabled.protocols"),
                keys.name("ssl.cipher.suites")
            )
        })?;
    // on a SASL_SSL listener Kafka reads ssl.client.auth only under the listener's prefix
    let client_auth = if super::listener_protocol(properties, listener)
        == Some(super::SecurityProtocol::SaslSsl)
    {
        keys.prefixed("ssl.client.auth")
    } else {
        keys.value("ssl.client.auth")
    }
    .unwrap_or_else(|| "none".into());
    let builder = match client_auth.to_ascii_lowercase().as_str() {
        "none" => builder.with_no_client_auth(),
        mode @ ("requested" | "required") => {
            let roots = truststore(&keys)?.ok_or_else(|| {
                anyhow!(
                    "Invalid value {client_auth} for configuration {}: verifying client certificates needs a trust store (ssl.truststore.location or ssl.truststore.certificates)",
                    keys.name("ssl.client.auth")
                )
            })?;
            let verifier =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone());
            let verifier = if mode == "requested" {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            builder.with_client_cert_verifier(verifier.build().with_context(|| {
                format!("the trust store of {}", keys.name("ssl.client.auth"))
            })?)
        }
        _ => bail!(
            "Invalid value {client_auth} for configuration {}: String must be one of: required, requested, none",
            keys.name("ssl.client.auth")
        ),
    };
    let (chain, key) = keystore(&keys)?;
    let certificate = chain[0].clone();
    let server = builder.with_single_cert(chain, key).with_context(|| {
        format!(
            "the key and certificate of {}",
            keys.name("ssl.keystore.location")
        )
    })?;
    let mapper = PrincipalMapper::parse(
        &keys
            .value("ssl.principal.mapping.rules")
            .unwrap_or_else(|| "DEFAULT".into()),
    )?;
    Ok(ListenerTls {
        server: Arc::new(server),
        mapper,
        certificate,
    })
}

/// The TLS set-up for connecting to another broker's `listener` (replication, transaction
/// markers): the listener's trust store verifies the peer (without one, the certificates of
/// this broker's own chain are trusted), its key store (if any) is the
/// client certificate, and `ssl.endpoint.identification.algorithm=https` (Kafka's default)
/// checks that the peer's certificate names the host it was reached at.
pub fn client_tls(properties: &Properties, listener: &str) -> Result<ferrolog_client::Tls> {
    let keys = ListenerKeys::new(properties, listener);
    refuse_unsupported(&keys)?;
    let provider = Arc::new(provider(&keys)?);
    let roots = match truststore(&keys)? {
        Some(roots) => roots,
        // without a trust store, trust what this broker's own chain is signed by (brokers of a
        // cluster share their CA); a single node reaches itself this way for transaction markers
        None => {
            let (chain, _) = keystore(&keys)?;
            let mut roots = RootCertStore::empty();
            let (added, _) = roots.add_parsable_certificates(chain);
            if added == 0 {
                bail!("listener {listener}: connecting to brokers over TLS needs a trust store (ssl.truststore.location or ssl.truststore.certificates)");
            }
            roots
        }
    };
    let verifier = rustls::client::WebPkiServerVerifier::builder_with_provider(
        Arc::new(roots),
        provider.clone(),
    )
    .build()
    .with_context(|| format!("the trust store of listener {listener}"))?;
    let check_host = match keys
        .value("ssl.endpoint.identification.algorithm")
        .unwrap_or_default()
        .to_ascii_lowercase()
        .as_str()
    {
        "https" => true,
        "" => false,
        other => bail!(
            "Invalid value {other} for configuration {}: ferrolog has https, or empty for no host name check",
            keys.name("ssl.endpoint.identification.algorithm")
        ),
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&protocol_versions(&keys)?)
        .with_context(|| keys.name("ssl.enabled.protocols"))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(PeerVerifier {
            inner: verifier,
            check_host,
        }));
    let has_key =
        keys.value("ssl.keystore.location").is_some() || keys.value("ssl.keystore.key").is_some();
    let config = if has_key {
        let (chain, key) = keystore(&keys)?;
        builder
            .with_client_auth_cert(chain, key)
            .with_context(|| keys.name("ssl.keystore.location"))?
    } else {
        builder.with_no_client_auth()
    };
    Ok(ferrolog_client::Tls {
        config: Arc::new(config),
    })
}

/// The WebPKI verifier, with the host name check switched off when
/// `ssl.endpoint.identification.algorithm` is empty (the chain is still verified).
#[derive(Debug)]
struct PeerVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    check_host: bool,
}

impl rustls::client::danger::ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &rustls::pki_types::ServerName<'_>,
        ocsp_response: &[u8],
        now: rustls::pki_types::UnixTime,
    ) -> std::result::Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        use rustls::CertificateError::{NotValidForName, NotValidForNameContext};
        match self.inner.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Err(rustls::Error::InvalidCertificate(
                NotValidForName | NotValidForNameContext { .. },
            )) if !self.check_host => Ok(rustls::client::danger::ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> std::result::Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// Kafka keys naming a Java algorithm or protocol family: only the values that mean what
/// rustls does are accepted.
fn refuse_unsupported(keys: &ListenerKeys) -> Result<()> {
    for (key, accepted) in [
        ("ssl.keymanager.algorithm", &["SunX509", "PKIX"][..]),
        ("ssl.trustmanager.algorithm", &["PKIX", "SunX509"][..]),
        ("ssl.protocol", &["TLS", "TLSv1.2", "TLSv1.3"][..]),
    ] {
        if let Some((name, value)) = keys.lookup(key) {
            if !accepted.iter().any(|a| a.eq_ignore_ascii_case(&value)) {
                bail!(
                    "Invalid value {value} for configuration {name}: ferrolog supports {}",
                    accepted.join(", ")
                );
            }
        }
    }
    Ok(())
}

/// ring's suites, narrowed to `ssl.cipher.suites` when it is set (IANA names, as Java's).
fn provider(keys: &ListenerKeys) -> Result<CryptoProvider> {
    let mut provider = rustls::crypto::ring::default_provider();
    let Some((name, list)) = keys.lookup("ssl.cipher.suites") else {
        return Ok(provider);
    };
    let mut chosen = Vec::new();
    for wanted in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let suite = provider
            .cipher_suites
            .iter()
            .find(|s| iana_name(s).eq_ignore_ascii_case(wanted))
            .ok_or_else(|| {
                anyhow!(
                    "Invalid value {list} for configuration {name}: unsupported cipher suite {wanted} (ferrolog has {})",
                    provider.cipher_suites.iter().map(iana_name).collect::<Vec<_>>().join(", ")
                )
            })?;
        chosen.push(*suite);
    }
    provider.cipher_suites = chosen;
    Ok(provider)
}

fn iana_name(suite: &rustls::SupportedCipherSuite) -> String {
    let name = suite.suite().as_str().unwrap_or("unknown");
    match name.strip_prefix("TLS13_") {
        Some(rest) => format!("TLS_{rest}"),
        None => name.to_string(),
    }
}

fn protocol_versions(keys: &ListenerKeys) -> Result<Vec<&'static SupportedProtocolVersion>> {
    let (name, list) = keys
        .lookup("ssl.enabled.protocols")
        .unwrap_or_else(|| ("ssl.enabled.protocols".into(), "TLSv1.2,TLSv1.3".into()));
    let mut versions = Vec::new();
    for p in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        versions.push(match p {
            "TLSv1.2" => &rustls::version::TLS12,
            "TLSv1.3" => &rustls::version::TLS13,
            other => bail!(
                "Invalid value {list} for configuration {name}: {other} is not supported (ferrolog has TLSv1.2 and TLSv1.3)"
            ),
        });
    }
    if versions.is_empty() {
        bail!("Invalid value {list} for configuration {name}: no protocol");
    }
    Ok(versions)
}

/// The store's format: the declared type, except that a "JKS" file in PKCS12 format is read as
/// PKCS12 (Java does the same).
fn store_format(declared: &str, type_key: &str, data: Option<&[u8]>) -> Result<&'static str> {
    const JKS_MAGIC: [u8; 4] = [0xfe, 0xed, 0xfe, 0xed];
    Ok(match declared.to_ascii_uppercase().as_str() {
        "PEM" => "PEM",
        "PKCS12" => "PKCS12",
        "JKS" => match data {
            Some(d) if d.starts_with(&JKS_MAGIC) => bail!(
                "Invalid value {declared} for configuration {type_key}: ferrolog does not read Java's JKS format; convert the store with `keytool -importkeystore -srckeystore <file>.jks -destkeystore <file>.p12 -deststoretype PKCS12` and set {type_key}=PKCS12"
            ),
            Some(d) if d.first() == Some(&0x30) => "PKCS12",
            Some(_) => bail!("Invalid value {declared} for configuration {type_key}: the store is neither JKS nor PKCS12"),
            None => bail!("Invalid value {declared} for configuration {type_key}: inline certificates and keys need type PEM"),
        },
        _ => bail!(
            "Invalid value {declared} for configuration {type_key}: ferrolog reads PEM and PKCS12 stores"
        ),
    })
}

fn read_store(keys: &ListenerKeys, location_key: &str) -> Result<Option<Vec<u8>>> {
    let Some((name, path)) = keys.lookup(location_key) else {
        return Ok(None);
    };
    std::fs::read(&path)
        .map(Some)
        .with_context(|| format!("Invalid value {path} for configuration {name}"))
}

fn keystore(keys: &ListenerKeys) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)> {
    let type_key = keys.name("ssl.keystore.type");
    let declared = keys.value("ssl.keystore.type").unwrap_or("JKS".into());
    let data = read_store(keys, "ssl.keystore.location")?;
    let inline_key = keys.value("ssl.keystore.key");
    let inline_chain = keys.value("ssl.keystore.certificate.chain");
    let key_password = keys.value("ssl.key.password");
    if data.is_some() && (inline_key.is_some() || inline_chain.is_some()) {
        bail!("Invalid configuration {}: set either ssl.keystore.location or ssl.keystore.key and ssl.keystore.certificate.chain, not both", keys.name("ssl.keystore.location"));
    }
    let Some(data) = data else {
        let (Some(key), Some(chain)) = (inline_key, inline_chain) else {
            bail!("a TLS listener needs a key store: ssl.keystore.location, or ssl.keystore.key and ssl.keystore.certificate.chain");
        };
        if !declared.eq_ignore_ascii_case("PEM") {
            bail!("Invalid value {declared} for configuration {type_key}: ssl.keystore.key and ssl.keystore.certificate.chain need type PEM");
        }
        let key_name = keys.name("ssl.keystore.key");
        let chain = pem_certificates(
            chain.as_bytes(),
            &keys.name("ssl.keystore.certificate.chain"),
        )?;
        return Ok((
            chain,
            pem_key(key.as_bytes(), key_password.as_deref(), &key_name)?,
        ));
    };
    let location = keys.name("ssl.keystore.location");
    let format = store_format(&declared, &type_key, Some(&data))?;
    if format == "PEM" && keys.value("ssl.keystore.password").is_some() {
        bail!("Invalid configuration {}: SSL key store password cannot be specified with PEM format, only key password may be specified", keys.name("ssl.keystore.password"));
    }
    match format {
        "PEM" => Ok((
            pem_certificates(&data, &location)?,
            pem_key(&data, key_password.as_deref(), &location)?,
        )),
        _ => {
            let password = keys.value("ssl.keystore.password").unwrap_or_default();
            if keys
                .value("ssl.key.password")
                .is_some_and(|k| k != password)
            {
                bail!("Invalid configuration {}: ferrolog reads PKCS12 stores whose key is under the store's password (ssl.keystore.password)", keys.name("ssl.key.password"));
            }
            let store = pkcs12(&data, &password, &location)?;
            let (_, chain) = store.private_key_chain().ok_or_else(|| {
                anyhow!("Invalid configuration {location}: the PKCS12 store holds no private key")
            })?;
            let certs: Vec<CertificateDer<'static>> = chain
                .certs()
                .iter()
                .map(|c| CertificateDer::from(c.as_der().to_vec()))
                .collect();
            if certs.is_empty() {
                bail!(
                    "Invalid configuration {location}: the PKCS12 store's key has no certificate"
                );
            }
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok((certs, key))
        }
    }
}

fn pkcs12(data: &[u8], password: &str, location: &str) -> Result<p12_keystore::KeyStore> {
    p12_keystore::KeyStore::from_pkcs12(data, password, p12_keystore::Pkcs12ImportPolicy::Relaxed)
        .map_err(|e| anyhow!("Invalid configuration {location}: reading the PKCS12 store failed (wrong password?): {e}"))
}

/// The trust store, if one is configured.
pub fn truststore(keys: &ListenerKeys) -> Result<Option<RootCertStore>> {
    let Some(certs) = trusted_certificates(keys)? else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).with_context(|| {
            format!("a certificate of {}", keys.name("ssl.truststore.location"))
        })?;
    }
    if roots.is_empty() {
        bail!(
            "Invalid configuration {}: the trust store holds no certificate",
            keys.name("ssl.truststore.location")
        );
    }
    Ok(Some(roots))
}

/// The certificates of the trust store the `ssl.truststore.*` keys name, if they name one.
pub fn trusted_certificates(keys: &ListenerKeys) -> Result<Option<Vec<CertificateDer<'static>>>> {
    let type_key = keys.name("ssl.truststore.type");
    let declared = keys.value("ssl.truststore.type").unwrap_or("JKS".into());
    let data = read_store(keys, "ssl.truststore.location")?;
    let inline = keys.value("ssl.truststore.certificates");
    let certs = match (data, inline) {
        (Some(_), Some(_)) => bail!("Invalid configuration {}: set either ssl.truststore.location or ssl.truststore.certificates, not both", keys.name("ssl.truststore.location")),
        (None, None) => return Ok(None),
        (None, Some(pem)) => {
            if !declared.eq_ignore_ascii_case("PEM") {
                bail!("Invalid value {declared} for configuration {type_key}: ssl.truststore.certificates needs type PEM");
            }
            pem_certificates(pem.as_bytes(), &keys.name("ssl.truststore.certificates"))?
        }
        (Some(data), None) => {
            let location = keys.name("ssl.truststore.location");
            match store_format(&declared, &type_key, Some(&data))? {
                "PEM" if keys.value("ssl.truststore.password").is_some() => bail!(
                    "Invalid configuration {}: SSL trust store password cannot be specified for PEM format",
                    keys.name("ssl.truststore.password")
                ),
                "PEM" => pem_certificates(&data, &location)?,
                _ => {
                    let password = keys.value("ssl.truststore.password").unwrap_or_default();
                    let store = pkcs12(&data, &password, &location)?;
                    let mut certs = Vec::new();
                    for (_, entry) in store.entries() {
                        match entry {
                            p12_keystore::KeyStoreEntry::Certificate(c) => {
                                certs.push(CertificateDer::from(c.as_der().to_vec()))
                            }
                            // as Java: a key entry trusts its own certificate, not its issuers
                            p12_keystore::KeyStoreEntry::PrivateKeyChain(chain) => certs.extend(
                                chain.certs().first().map(|c| CertificateDer::from(c.as_der().to_vec())),
                            ),
                            p12_keystore::KeyStoreEntry::Secret(_) => {}
                        }
                    }
                    certs
                }
            }
        }
    };
    Ok(Some(certs))
}

fn pem_certificates(pem: &[u8], name: &str) -> Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|e| anyhow!("Invalid configuration {name}: {e}"))?;
    if certs.is_empty() {
        bail!("Invalid configuration {name}: no PEM certificate in it");
    }
    Ok(certs)
}

/// The PEM private key: PKCS#8 (`PRIVATE KEY`, or `ENCRYPTED PRIVATE KEY` under
/// `ssl.key.password`), or the older RSA and EC forms.
fn pem_key(pem: &[u8], password: Option<&str>, name: &str) -> Result<PrivateKeyDer<'static>> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find(BEGIN) {
        let end = text[start..]
            .find(END)
            .map(|e| start + e + END.len())
            .ok_or_else(|| anyhow!("Invalid configuration {name}: unterminated encrypted key"))?;
        let Some(password) = password else {
            bail!("Invalid configuration {name}: the private key is encrypted and ssl.key.password is not set");
        };
        let (_, der) = pkcs8::der::pem::decode_vec(text[start..end].as_bytes())
            .map_err(|e| anyhow!("Invalid configuration {name}: encrypted key: {e}"))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfoRef::try_from(der.as_slice())
            .map_err(|e| anyhow!("Invalid configuration {name}: encrypted key: {e}"))?;
        let plain = encrypted.decrypt(password).map_err(|_| {
            anyhow!("Invalid configuration {name}: the private key cannot be decrypted with ssl.key.password")
        })?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| anyhow!("Invalid configuration {name}: no usable PEM private key ({e})"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::path::{Path, PathBuf};

    /// The certificates of scripts/test-certs.sh, written once per test process.
    pub(crate) fn certs() -> &'static Path {
        static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        DIR.get_or_init(|| {
            let dir =
                std::env::temp_dir().join(format!("ferrolog-test-certs-{}", std::process::id()));
            let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/test-certs.sh");
            let status = std::process::Command::new("bash")
                .arg(script)
                .arg(&dir)
                .status()
                .unwrap();
            assert!(status.success(), "scripts/test-certs.sh failed");
            dir
        })
    }

    fn props(pairs: &[(&str, String)]) -> Properties {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    fn cert(name: &str) -> String {
        certs().join(name).display().to_string()
    }

    fn err(pairs: &[(&str, String)]) -> String {
        format!("{:#}", listener_tls(&props(pairs), "SSL").unwrap_err())
    }

    #[test]
    fn every_store_format_kafka_users_have_loads() {
        let pem = |f: &str| std::fs::read_to_string(certs().join(f)).unwrap();
        for pairs in [
            vec![
                ("ssl.keystore.type", "PEM".into()),
                ("ssl.keystore.location", cert("server-bundle.pem")),
            ],
            vec![
                ("ssl.keystore.type", "PEM".into()),
                ("ssl.keystore.key", pem("server.key")),
                ("ssl.keystore.certificate.chain", pem("server.pem")),
                ("ssl.truststore.type", "PEM".into()),
                ("ssl.truststore.certificates", pem("ca.pem")),
                ("ssl.client.auth", "required".into()),
            ],
            encrypted_inline(Some("keypass")),
            vec![
                ("ssl.keystore.type", "PKCS12".into()),
                ("ssl.keystore.location", cert("server.p12")),
                ("ssl.keystore.password", "storepass".into()),
                ("ssl.truststore.type", "PKCS12".into()),
                ("ssl.truststore.location", cert("truststore.p12")),
                ("ssl.truststore.password", "storepass".into()),
                ("ssl.client.auth", "requested".into()),
            ],
            // a PKCS12 file declared JKS (Kafka's default type), read as Java reads it
            vec![
                ("ssl.keystore.location", cert("server.p12")),
                ("ssl.keystore.password", "storepass".into()),
            ],
            // the listener's own keys win over the broker-wide ones
            vec![
                ("ssl.keystore.location", "/nonexistent".into()),
                ("listener.name.ssl.ssl.keystore.type", "PEM".into()),
                (
                    "listener.name.ssl.ssl.keystore.location",
                    cert("server-bundle.pem"),
                ),
                ("ssl.enabled.protocols", "TLSv1.3".into()),
                (
                    "ssl.cipher.suites",
                    "TLS_AES_256_GCM_SHA384,TLS_CHACHA20_POLY1305_SHA256".into(),
                ),
            ],
        ] {
            listener_tls(&props(&pairs), "SSL").unwrap_or_else(|e| panic!("{pairs:?}: {e:#}"));
        }
    }

    /// The encrypted key and its chain inline, under `password`.
    fn encrypted_inline(password: Option<&str>) -> Vec<(&'static str, String)> {
        let read = |f: &str| std::fs::read_to_string(certs().join(f)).unwrap();
        let mut pairs = vec![
            ("ssl.keystore.type", "PEM".to_string()),
            ("ssl.keystore.key", read("server-enc.key")),
            ("ssl.keystore.certificate.chain", read("server.pem")),
        ];
        pairs.extend(password.map(|p| ("ssl.key.password", p.to_string())));
        pairs
    }

    #[test]
    fn a_store_or_setting_that_cannot_be_honoured_stops_start_up_naming_it() {
        let bundle = || ("ssl.keystore.location", cert("server-bundle.pem"));
        let pem = || ("ssl.keystore.type", "PEM".to_string());
        for (pairs, needle) in [
            (vec![], "needs a key store"),
            (
                vec![
                    ("ssl.keystore.location", cert("server.jks")),
                    ("ssl.keystore.password", "storepass".into()),
                ],
                "JKS format",
            ),
            (
                vec![
                    ("ssl.keystore.type", "PKCS12".into()),
                    ("ssl.keystore.location", cert("server.p12")),
                    ("ssl.keystore.password", "wrong".into()),
                ],
                "wrong password",
            ),
            (encrypted_inline(None), "ssl.key.password is not set"),
            (encrypted_inline(Some("nope")), "cannot be decrypted"),
            (
                vec![pem(), bundle(), ("ssl.client.auth", "required".into())],
                "needs a trust store",
            ),
            (
                vec![
                    pem(),
                    bundle(),
                    ("ssl.keystore.password", "storepass".into()),
                ],
                "cannot be specified with PEM format",
            ),
            (
                vec![
                    ("ssl.keystore.type", "PKCS12".into()),
                    ("ssl.keystore.location", cert("server.p12")),
                    ("ssl.keystore.password", "storepass".into()),
                    ("ssl.key.password", "keypass".into()),
                ],
                "whose key is under the store's password",
            ),
            (
                vec![pem(), bundle(), ("ssl.client.auth", "maybe".into())],
                "ssl.client.auth",
            ),
            (
                vec![
                    pem(),
                    bundle(),
                    ("ssl.enabled.protocols", "TLSv1.1,TLSv1.2".into()),
                ],
                "TLSv1.1 is not supported",
            ),
            (
                vec![
                    pem(),
                    bundle(),
                    ("ssl.cipher.suites", "TLS_RSA_WITH_RC4_128_MD5".into()),
                ],
                "unsupported cipher suite TLS_RSA_WITH_RC4_128_MD5",
            ),
            (
                vec![
                    pem(),
                    bundle(),
                    ("ssl.keymanager.algorithm", "NewSunX509".into()),
                ],
                "ssl.keymanager.algorithm",
            ),
            (
                vec![
                    pem(),
                    (
                        "listener.name.ssl.ssl.keystore.location",
                        "/nonexistent".into(),
                    ),
                ],
                "listener.name.ssl.ssl.keystore.location",
            ),
            (
                vec![
                    pem(),
                    bundle(),
                    ("ssl.principal.mapping.rules", "RULE:x".into()),
                ],
                "ssl.principal.mapping.rules",
            ),
        ] {
            let e = err(&pairs);
            assert!(e.contains(needle), "{needle}: {e}");
            assert!(!e.contains("storepass") && !e.contains("keypass"), "{e}");
        }
    }

    #[test]
    fn the_client_certificate_subject_is_written_as_kafka_writes_it() {
        let der = CertificateDer::from_pem_file(certs().join("client.pem")).unwrap();
        assert_eq!(
            super::super::principal::subject_dn(&der).unwrap(),
            "CN=client,OU=eng,O=ferrolog,C=US"
        );
    }
}
