//! OAUTHBEARER (RFC 7628) on the server: the client's initial response, and the two token
//! validators Kafka ships.
//!
//! - Unsecured JWS (`alg: none`), for development: Kafka's default when a listener names no
//!   server callback handler. Its options are the `unsecuredValidator*` options of the
//!   listener's JAAS entry: the principal claim (default `sub`), the scope claim (default
//!   `scope`), a required scope, the allowed clock skew in milliseconds (default 0).
//! - Signed JWTs checked against a JWKS, when
//!   `listener.name.<l>.oauthbearer.sasl.server.callback.handler.class` is Kafka's
//!   OAuthBearerValidatorCallbackHandler: `sasl.oauthbearer.jwks.endpoint.url` (a `file://` URL,
//!   read once at start as Kafka reads a file, or an `https://` endpoint, fetched at start,
//!   every `sasl.oauthbearer.jwks.endpoint.refresh.ms` and soon after a token names a key id it
//!   lacks, as Kafka's refreshing JWKS does; its trust store is the `ssl.truststore.*` options
//!   of the JAAS entry, else Mozilla's roots), `sasl.oauthbearer.expected.audience`,
//!   `sasl.oauthbearer.expected.issuer`, `sasl.oauthbearer.clock.skew.seconds`,
//!   `sasl.oauthbearer.sub.claim.name`. The checks are those Kafka's validator asks of its JWT
//!   library: a signature by a key of the set (never `none`), `exp` and `iat` present, `exp` and
//!   `nbf` within the skew, the audience one of the expected ones (a token naming an audience
//!   is refused when none is expected), the issuer, a non-blank subject, which is the principal.
//!
//! The JWT itself is three base64url parts; the JSON is serde_json's, the signatures ring's
//! (RS256/384/512, PS256/384/512, ES256, ES384, EdDSA).
//!
//! A refused token is answered as Kafka does: a challenge `{"status":"invalid_token"}`, the
//! client's lone `\x01`, then SASL_AUTHENTICATION_FAILED with that JSON. Why it was refused is
//! logged on the broker only.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use base64ct::{Base64UrlUnpadded, Encoding};
use ferrolog_client::sasl::Mechanism;
use ring::signature;
use serde_json::{Map, Value};

use crate::config::Properties;

/// Kafka's signed-JWT validator, under its current and its older package name.
pub const VALIDATOR_CLASSES: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerValidatorCallbackHandler",
];

/// Kafka's validator of signed JWTs against a JWKS, which `sasl.oauthbearer.jwt.validator.class`
/// may name: what ferrolog's JWKS validator does. Its other value, ClientJwtValidator, checks no
/// signature and is refused on a broker.
pub const BROKER_JWT_VALIDATOR: &str =
    "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator";

/// Kafka's login handler that reads `sasl.oauthbearer.token.endpoint.url`.
pub const LOGIN_CLASSES: &[&str] = &[
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginCallbackHandler",
    "org.apache.kafka.common.security.oauthbearer.secured.OAuthBearerLoginCallbackHandler",
];

/// The client's initial response: `n,[a=<authzid>],` `\x01` `key=value\x01`… `\x01`, with
/// `auth=Bearer <token>` among the pairs and the others SASL extensions.
#[derive(Debug, PartialEq, Eq)]
pub struct InitialResponse {
    pub authzid: String,
    pub token: String,
    pub extensions: BTreeMap<String, String>,
}

/// Parses the initial response as Kafka's grammar has it. Sans I/O, never panics (fuzzed).
pub fn parse_initial_response(bytes: &[u8]) -> Result<InitialResponse> {
    let invalid = || anyhow!("Invalid OAUTHBEARER client first message");
    let text = std::str::from_utf8(bytes).map_err(|_| invalid())?;
    let rest = text.strip_prefix("n,").ok_or_else(invalid)?;
    let (authz, rest) = rest.split_once(',').ok_or_else(invalid)?;
    let authzid = if authz.is_empty() {
        String::new()
    } else {
        let name = authz.strip_prefix("a=").ok_or_else(invalid)?;
        if !is_saslname(name) {
            return Err(invalid());
        }
        name.to_string()
    };
    let pairs = rest
        .strip_prefix('\x01')
        .and_then(|r| r.strip_suffix('\x01'))
        .ok_or_else(invalid)?;
    let mut properties = BTreeMap::new();
    if !pairs.is_empty() {
        let pairs = pairs.strip_suffix('\x01').ok_or_else(invalid)?;
        for pair in pairs.split('\x01') {
            let (key, value) = pair.split_once('=').ok_or_else(invalid)?;
            let key_ok = !key.is_empty() && key.bytes().all(|b| b.is_ascii_alphabetic());
            let value_ok = !value.is_empty()
                && value.bytes().all(|b| {
                    (0x21..=0x7e).contains(&b) || matches!(b, b' ' | b'\t' | b'\r' | b'\n')
                });
            if !key_ok || !value_ok {
                return Err(invalid());
            }
            properties.insert(key.to_string(), value.to_string());
        }
    }
    let auth = properties
        .remove("auth")
        .ok_or_else(|| anyhow!("Invalid OAUTHBEARER client first message: 'auth' not specified"))?;
    let bad_auth = || anyhow!("Invalid OAUTHBEARER client first message: invalid 'auth' format");
    let (scheme, token) = auth.split_once(' ').ok_or_else(bad_auth)?;
    let token = token.trim_start_matches(' ');
    let body = token.trim_end_matches('=');
    let scheme_ok = !scheme.is_empty()
        && scheme
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let token_ok = !body.is_empty()
        && body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_~+/.".contains(&b));
    if !scheme_ok || !token_ok {
        return Err(bad_auth());
    }
    if !scheme.eq_ignore_ascii_case("bearer") {
        bail!("Invalid scheme in OAUTHBEARER client first message: {scheme}");
    }
    Ok(InitialResponse {
        authzid,
        token: token.to_string(),
        extensions: properties,
    })
}

/// SCRAM's saslname: characters 0x01-0x7F but `=` and `,`, which come as `=3D` and `=2C`.
fn is_saslname(name: &str) -> bool {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'=' if matches!(bytes.get(i + 1..i + 3), Some(b"2C" | b"3D")) => i += 3,
            b'=' | b',' | 0 | 0x80.. => return false,
            _ => i += 1,
        }
    }
    !bytes.is_empty()
}

/// A validated token.
#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    /// The principal's name (the principal is `User:<name>`).
    pub principal: String,
    /// When the token expires, in milliseconds since the epoch: the longest the session lives.
    pub expires_ms: i64,
}

/// Why a token was refused: what the client is told (Kafka's error JSON) and, for the log, why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: &'static str,
    pub scope: Option<String>,
    pub reason: String,
}

impl Refusal {
    fn invalid(reason: impl Into<String>) -> Refusal {
        Refusal {
            status: "invalid_token",
            scope: None,
            reason: reason.into(),
        }
    }

    /// The error challenge, as Kafka words it.
    pub fn json(&self) -> String {
        match &self.scope {
            None => format!("{{\"status\":\"{}\"}}", self.status),
            Some(scope) => format!("{{\"status\":\"{}\", \"scope\":\"{scope}\"}}", self.status),
        }
    }
}

/// A listener's token validator.
#[derive(Debug, Clone)]
pub enum Validator {
    Unsecured(Unsecured),
    Jwks(Jwks),
}

#[derive(Debug, Clone)]
pub struct Unsecured {
    principal_claim: String,
    scope_claim: String,
    required_scope: Vec<String>,
    skew_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Jwks {
    keys: KeySet,
    audience: Vec<String>,
    issuer: Option<String>,
    skew_s: i64,
    sub_claim: String,
}

impl Validator {
    /// The validator `listener` asks for; `jaas` are the options of its OAUTHBEARER JAAS entry.
    pub fn from_properties(
        properties: &Properties,
        listener: &str,
        jaas: &BTreeMap<String, String>,
    ) -> Result<Validator> {
        let keys = super::ListenerKeys::new(properties, listener);
        let m = Mechanism::OAuthBearer;
        let handler_key = format!(
            "listener.name.{}.oauthbearer.sasl.server.callback.handler.class",
            listener.to_ascii_lowercase()
        );
        let handler = properties.get(&handler_key).map(|v| v.trim()).unwrap_or("");
        if handler.is_empty() {
            return Ok(Validator::Unsecured(Unsecured::from_options(jaas)?));
        }
        if !VALIDATOR_CLASSES.contains(&handler) {
            bail!("Invalid value {handler} for configuration {handler_key}: ferrolog validates OAuth tokens with Kafka's {} (signed JWTs and a JWKS) or, without a handler, its unsecured validator", VALIDATOR_CLASSES[0]);
        }
        let (url_key, url) = keys
            .lookup_mechanism(m, "sasl.oauthbearer.jwks.endpoint.url")
            .ok_or_else(|| {
                anyhow!("{handler_key}={handler} needs sasl.oauthbearer.jwks.endpoint.url (the JWKS with the keys tokens are signed with)")
            })?;
        let number = |key: &str, default: u64| -> Result<u64> {
            match keys.lookup_mechanism(m, key) {
                None => Ok(default),
                Some((name, v)) => v
                    .parse()
                    .map_err(|_| anyhow!("Invalid value {v} for configuration {name}")),
            }
        };
        let source = if let Some(path) = url.strip_prefix("file://") {
            JwksSource::File(path.into())
        } else if url.starts_with("https://") {
            JwksSource::Https {
                url: url.clone(),
                agent: https_agent(jaas)?,
                refresh: Duration::from_millis(
                    number("sasl.oauthbearer.jwks.endpoint.refresh.ms", 3_600_000)?.max(1000),
                ),
                backoff: Duration::from_millis(
                    number("sasl.oauthbearer.jwks.endpoint.retry.backoff.ms", 100)?.max(10),
                ),
                backoff_max: Duration::from_millis(
                    number(
                        "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
                        10_000,
                    )?
                    .max(10),
                ),
            }
        } else {
            bail!("Invalid value {url} for configuration {url_key}: a JWKS comes from a file:// or an https:// URL");
        };
        let jwks = KeySet::load(source)
            .map_err(|e| anyhow!("Invalid value {url} for configuration {url_key}: {e:#}"))?;
        let audience = keys
            .lookup_mechanism(m, "sasl.oauthbearer.expected.audience")
            .map(|(_, v)| {
                v.split(',')
                    .map(|a| a.trim().to_string())
                    .filter(|a| !a.is_empty())
                    .collect()
            })
            .unwrap_or_default();
        let issuer = keys
            .lookup_mechanism(m, "sasl.oauthbearer.expected.issuer")
            .map(|(_, v)| v);
        let (skew_key, skew) = keys
            .lookup_mechanism(m, "sasl.oauthbearer.clock.skew.seconds")
            .unwrap_or(("sasl.oauthbearer.clock.skew.seconds".into(), "30".into()));
        let skew_s: i64 = skew
            .parse()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| anyhow!("Invalid value {skew} for configuration {skew_key}"))?;
        let sub_claim = keys
            .lookup_mechanism(m, "sasl.oauthbearer.sub.claim.name")
            .map_or_else(|| "sub".to_string(), |(_, v)| v);
        Ok(Validator::Jwks(Jwks {
            keys: jwks,
            audience,
            issuer,
            skew_s,
            sub_claim,
        }))
    }

    /// Validates `token` at `now_ms` (milliseconds since the epoch).
    pub fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Refusal> {
        match self {
            Validator::Unsecured(u) => u.validate(token, now_ms),
            Validator::Jwks(j) => j.validate(token, now_ms),
        }
    }
}

impl Validator {
    /// The unsecured validator with Kafka's default options.
    pub(crate) fn unsecured_defaults() -> Validator {
        Validator::Unsecured(Unsecured {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            skew_ms: 0,
        })
    }
}

/// Drives the OAuth parsers with `data`: the initial response, a token for both validators
/// (the JWKS one with an RSA, an EC and an Ed25519 key), and a JWKS. Part of the `sasl_token`
/// fuzz target.
#[doc(hidden)]
pub fn fuzz_token(data: &[u8]) {
    let _ = parse_initial_response(data);
    let token = String::from_utf8_lossy(data);
    let _ = Validator::unsecured_defaults().validate(&token, 0);
    let keys = parse_jwks(
        r#"{"keys":[{"kty":"RSA","kid":"r","n":"AQAB","e":"AQAB"},
            {"kty":"EC","crv":"P-256","kid":"e","x":"AQAB","y":"AQAB"},
            {"kty":"OKP","crv":"Ed25519","x":"AQAB"}]}"#,
    )
    .expect("the fuzz JWKS parses");
    let jwks = Validator::Jwks(Jwks {
        keys: KeySet::fixed(keys),
        audience: vec!["kafka".into()],
        issuer: Some("issuer".into()),
        skew_s: 30,
        sub_claim: "sub".into(),
    });
    let _ = jwks.validate(&token, 0);
    let _ = parse_jwks(&token);
}

/// A JWT's parts.
struct Jwt<'a> {
    header: Map<String, Value>,
    claims: Map<String, Value>,
    /// `header.payload`, what the signature is over.
    signed: &'a str,
    signature: Vec<u8>,
}

fn b64url(part: &str) -> Result<Vec<u8>, Refusal> {
    // Java's URL decoder, which Kafka's validators use, takes optional padding
    Base64UrlUnpadded::decode_vec(part.trim_end_matches('='))
        .map_err(|_| Refusal::invalid("a JWT part is not base64url"))
}

fn parse_jwt(token: &str) -> Result<Jwt<'_>, Refusal> {
    let parts: Vec<&str> = token.split('.').collect();
    let [header, payload, signature] = parts[..] else {
        return Err(Refusal::invalid(
            "Malformed JWT provided; expected three sections (header, payload, and signature)",
        ));
    };
    let object = |part: &str, what: &str| -> Result<Map<String, Value>, Refusal> {
        match serde_json::from_slice(&b64url(part)?) {
            Ok(Value::Object(map)) => Ok(map),
            _ => Err(Refusal::invalid(format!(
                "the JWT {what} is not a JSON object"
            ))),
        }
    };
    Ok(Jwt {
        header: object(header, "header")?,
        claims: object(payload, "payload")?,
        signed: &token[..header.len() + 1 + payload.len()],
        signature: b64url(signature)?,
    })
}

/// A numeric claim (seconds since the epoch, possibly fractional); `Err` if it is not a number.
fn number(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, Refusal> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Refusal::invalid(format!("the {name} claim is not a number"))),
    }
}

/// A non-blank string claim.
fn subject(claims: &Map<String, Value>, name: &str) -> Result<String, Refusal> {
    match claims.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        _ => Err(Refusal::invalid(format!(
            "No principal name in JWT claim: {name}"
        ))),
    }
}

impl Unsecured {
    fn from_options(jaas: &BTreeMap<String, String>) -> Result<Unsecured> {
        let option = |name: &str, default: &str| {
            jaas.get(name)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
                .unwrap_or_else(|| default.to_string())
        };
        let skew = option("unsecuredValidatorAllowableClockSkewMs", "0");
        let skew_ms = skew
            .parse::<i32>()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or_else(|| anyhow!("Invalid value {skew} for option unsecuredValidatorAllowableClockSkewMs: a clock skew in milliseconds, not negative"))?;
        Ok(Unsecured {
            principal_claim: option("unsecuredValidatorPrincipalClaimName", "sub"),
            scope_claim: option("unsecuredValidatorScopeClaimName", "scope"),
            required_scope: option("unsecuredValidatorRequiredScope", "")
                .split(' ')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            skew_ms: i64::from(skew_ms),
        })
    }

    fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Refusal> {
        if token.contains("..") {
            return Err(Refusal::invalid(
                "Malformed compact serialization contains '..'",
            ));
        }
        let jwt = parse_jwt(token)?;
        if jwt.header.get("alg").and_then(Value::as_str) != Some("none") {
            return Err(Refusal::invalid(
                "Unsecured JWS must have 'none' for an algorithm",
            ));
        }
        if !jwt.signature.is_empty() {
            return Err(Refusal::invalid(
                "Unsecured JWS must not contain a digital signature",
            ));
        }
        let claims = &jwt.claims;
        let exp =
            number(claims, "exp")?.ok_or_else(|| Refusal::invalid("No expiration time in JWT"))?;
        let principal = subject(claims, &self.principal_claim)?;
        let iat = number(claims, "iat")?;
        let skew = self.skew_ms as f64;
        let now = now_ms as f64;
        if let Some(iat) = iat {
            if 1000.0 * iat > now + skew {
                return Err(Refusal::invalid(format!(
                    "The Issued At value ({iat} seconds) was after the indicated time ({now_ms} ms) plus allowable clock skew ({} ms)",
                    self.skew_ms
                )));
            }
        }
        if now - skew >= 1000.0 * exp {
            return Err(Refusal::invalid(format!(
                "The indicated time ({now_ms} ms) minus allowable clock skew ({} ms) was on or after the Expiration Time value ({exp} seconds)",
                self.skew_ms
            )));
        }
        if iat.is_some_and(|iat| exp <= iat) {
            return Err(Refusal::invalid(
                "The Expiration Time was not after the Issued At time",
            ));
        }
        let scope: Vec<String> = match claims.get(&self.scope_claim) {
            Some(Value::String(s)) => s.split(' ').map(str::to_string).collect(),
            Some(Value::Array(a)) => a
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        if let Some(missing) = self.required_scope.iter().find(|s| !scope.contains(s)) {
            return Err(Refusal {
                status: "insufficient_scope",
                scope: Some(format!("[{}]", self.required_scope.join(", "))),
                reason: format!(
                    "The provided scope ({scope:?}) was missing a required scope ({missing})"
                ),
            });
        }
        Ok(Token {
            principal,
            expires_ms: (1000.0 * exp) as i64,
        })
    }
}

/// The JWKS's keys as last loaded, and where they come from.
#[derive(Clone)]
pub struct KeySet {
    keys: Arc<std::sync::RwLock<Arc<Vec<Jwk>>>>,
    /// Asks the refresher (an HTTPS JWKS) to fetch the keys again soon.
    expedite: Option<std::sync::mpsc::SyncSender<()>>,
}

impl std::fmt::Debug for KeySet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeySet")
            .field("keys", &self.current().len())
            .field("refreshing", &self.expedite.is_some())
            .finish()
    }
}

enum JwksSource {
    File(std::path::PathBuf),
    Https {
        url: String,
        agent: ureq::Agent,
        refresh: Duration,
        backoff: Duration,
        backoff_max: Duration,
    },
}

/// The largest JWKS document read.
const MAX_JWKS_BYTES: u64 = 1024 * 1024;

impl JwksSource {
    fn fetch(&self) -> Result<Vec<Jwk>> {
        let text = match self {
            JwksSource::File(path) => std::fs::read_to_string(path)?,
            JwksSource::Https { url, agent, .. } => agent
                .get(url)
                .call()
                .map_err(|e| anyhow!("GET {url}: {e}"))?
                .body_mut()
                .with_config()
                .limit(MAX_JWKS_BYTES)
                .read_to_string()
                .map_err(|e| anyhow!("GET {url}: {e}"))?,
        };
        parse_jwks(&text)
    }
}

/// How an HTTPS JWKS endpoint is reached: with the trust store of the JAAS entry's
/// `ssl.truststore.*` options (as Kafka's JaasOptionsUtils reads them), else Mozilla's roots.
fn https_agent(jaas: &BTreeMap<String, String>) -> Result<ureq::Agent> {
    let ssl: Properties = jaas
        .iter()
        .filter(|(k, _)| k.starts_with("ssl."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let roots = match super::tls::trusted_certificates(&super::ListenerKeys::new(&ssl, "jwks"))? {
        None => ureq::tls::RootCerts::WebPki,
        Some(certs) => ureq::tls::RootCerts::Specific(Arc::new(
            certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .collect(),
        )),
    };
    let tls = ureq::tls::TlsConfig::builder().root_certs(roots).build();
    Ok(ureq::Agent::config_builder()
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .new_agent())
}

impl KeySet {
    fn fixed(keys: Vec<Jwk>) -> KeySet {
        KeySet {
            keys: Arc::new(std::sync::RwLock::new(Arc::new(keys))),
            expedite: None,
        }
    }

    /// Loads the keys (an error stops start-up); an HTTPS set is then refreshed by a thread of
    /// its own.
    fn load(source: JwksSource) -> Result<KeySet> {
        let mut set = KeySet::fixed(source.fetch()?);
        if let JwksSource::Https {
            refresh,
            backoff,
            backoff_max,
            ..
        } = &source
        {
            let (tx, rx) = std::sync::mpsc::sync_channel(1);
            set.expedite = Some(tx);
            let (keys, refresh, backoff, backoff_max) =
                (set.keys.clone(), *refresh, *backoff, *backoff_max);
            std::thread::Builder::new()
                .name("jwks-refresh".into())
                .spawn(move || refresher(source, keys, rx, refresh, backoff, backoff_max))?;
        }
        Ok(set)
    }

    fn current(&self) -> Arc<Vec<Jwk>> {
        self.keys.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// A token named a key id the set lacks: fetch again soon (at most one request waits).
    fn missing(&self, kid: &str) {
        if let Some(tx) = &self.expedite {
            if tx.try_send(()).is_ok() {
                tracing::info!("JWKS has no key {kid:?}: fetching it again");
            }
        }
    }
}

/// Fetches an HTTPS JWKS every `refresh`, or soon after an expedite request (no more than one
/// fetch per 10 s for those), retrying a failed fetch with exponential backoff; the keys last
/// fetched stay in force meanwhile. Ends when the validator is dropped.
fn refresher(
    source: JwksSource,
    keys: Arc<std::sync::RwLock<Arc<Vec<Jwk>>>>,
    expedite: std::sync::mpsc::Receiver<()>,
    refresh: Duration,
    backoff: Duration,
    backoff_max: Duration,
) {
    use std::sync::mpsc::RecvTimeoutError;
    let mut last = std::time::Instant::now();
    loop {
        match expedite.recv_timeout(refresh) {
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(()) => {
                let since = last.elapsed();
                if since < Duration::from_secs(10) {
                    std::thread::sleep(Duration::from_secs(10) - since);
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
        }
        let mut wait = backoff;
        loop {
            match source.fetch() {
                Ok(fresh) => {
                    *keys.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(fresh);
                    break;
                }
                Err(e) => {
                    tracing::warn!("refreshing the JWKS failed (retrying in {wait:?}): {e:#}");
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(backoff_max);
                }
            }
        }
        last = std::time::Instant::now();
    }
}

/// A public key of the JWKS.
#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    alg: Option<String>,
    key: PublicKey,
}

#[derive(Debug, Clone)]
enum PublicKey {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// An uncompressed point (`04 || x || y`) on P-256 or P-384.
    Ec {
        p384: bool,
        point: Vec<u8>,
    },
    Ed25519(Vec<u8>),
}

/// The signing keys of a JWKS (`{"keys":[…]}`) ferrolog can check signatures with; keys for
/// encryption and of other types are left out. No usable key is an error.
fn parse_jwks(text: &str) -> Result<Vec<Jwk>> {
    let set: Value = serde_json::from_str(text).map_err(|e| anyhow!("not a JWKS: {e}"))?;
    let list = set
        .get("keys")
        .and_then(Value::as_array)
        .ok_or_else(|| anyhow!("not a JWKS: no \"keys\" array"))?;
    let mut keys = Vec::new();
    for k in list {
        let text = |name: &str| k.get(name).and_then(Value::as_str);
        if text("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let bytes = |name: &str| -> Result<Vec<u8>> {
            let v = text(name).ok_or_else(|| anyhow!("a JWK lacks \"{name}\""))?;
            Base64UrlUnpadded::decode_vec(v.trim_end_matches('='))
                .map_err(|_| anyhow!("the JWK's \"{name}\" is not base64url"))
        };
        let key = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => PublicKey::Rsa {
                n: bytes("n")?,
                e: bytes("e")?,
            },
            (Some("EC"), Some(crv @ ("P-256" | "P-384"))) => {
                let mut point = vec![4u8];
                point.extend(bytes("x")?);
                point.extend(bytes("y")?);
                PublicKey::Ec {
                    p384: crv == "P-384",
                    point,
                }
            }
            (Some("OKP"), Some("Ed25519")) => PublicKey::Ed25519(bytes("x")?),
            (kty, crv) => {
                tracing::warn!(
                    "JWKS key {:?} of type {kty:?} {crv:?} left out: ferrolog checks RSA, EC P-256/P-384 and Ed25519 signatures",
                    text("kid")
                );
                continue;
            }
        };
        keys.push(Jwk {
            kid: text("kid").map(str::to_string),
            alg: text("alg").map(str::to_string),
            key,
        });
    }
    if keys.is_empty() {
        bail!("the JWKS has no signing key ferrolog can use (RSA, EC P-256/P-384, Ed25519)");
    }
    Ok(keys)
}

impl PublicKey {
    /// Checks `signature` over `message` by algorithm `alg`; `None` when the key is not of
    /// the algorithm's kind.
    fn verify(&self, alg: &str, message: &[u8], sig: &[u8]) -> Option<bool> {
        use signature::{UnparsedPublicKey, VerificationAlgorithm};
        let rsa = |params: &'static signature::RsaParameters, n: &[u8], e: &[u8]| {
            signature::RsaPublicKeyComponents { n, e }
                .verify(params, message, sig)
                .is_ok()
        };
        let other = |algorithm: &'static dyn VerificationAlgorithm, key: &[u8]| {
            UnparsedPublicKey::new(algorithm, key)
                .verify(message, sig)
                .is_ok()
        };
        Some(match (alg, self) {
            ("RS256", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA256, n, e),
            ("RS384", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA384, n, e),
            ("RS512", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PKCS1_2048_8192_SHA512, n, e),
            ("PS256", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA256, n, e),
            ("PS384", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA384, n, e),
            ("PS512", PublicKey::Rsa { n, e }) => rsa(&signature::RSA_PSS_2048_8192_SHA512, n, e),
            ("ES256", PublicKey::Ec { p384: false, point }) => {
                other(&signature::ECDSA_P256_SHA256_FIXED, point)
            }
            ("ES384", PublicKey::Ec { p384: true, point }) => {
                other(&signature::ECDSA_P384_SHA384_FIXED, point)
            }
            ("EdDSA", PublicKey::Ed25519(x)) => other(&signature::ED25519, x),
            _ => return None,
        })
    }
}

impl Jwks {
    fn validate(&self, token: &str, now_ms: i64) -> Result<Token, Refusal> {
        let jwt = parse_jwt(token)?;
        let alg = jwt
            .header
            .get("alg")
            .and_then(Value::as_str)
            .unwrap_or("none");
        if alg == "none" {
            return Err(Refusal::invalid(
                "an unsigned JWT (alg none) is not accepted",
            ));
        }
        let kid = jwt.header.get("kid").and_then(Value::as_str);
        let keys = self.keys.current();
        if let Some(kid) = kid.filter(|kid| !keys.iter().any(|k| k.kid.as_deref() == Some(kid))) {
            self.keys.missing(kid);
        }
        let mut candidates = keys.iter().filter(|k| {
            kid.is_none_or(|kid| k.kid.as_deref() == Some(kid))
                && k.alg.as_deref().is_none_or(|a| a == alg)
        });
        let mut suitable = false;
        let verified = candidates.any(|k| {
            let ok = k.key.verify(alg, jwt.signed.as_bytes(), &jwt.signature);
            suitable |= ok.is_some();
            ok == Some(true)
        });
        if !verified {
            return Err(Refusal::invalid(if suitable {
                format!("JWS signature is invalid (alg {alg}, kid {kid:?})")
            } else {
                format!("Unable to find a suitable verification key for JWS w/ header {{alg {alg}, kid {kid:?}}}")
            }));
        }
        let claims = &jwt.claims;
        let now_s = now_ms.div_euclid(1000);
        let exp = number(claims, "exp")?
            .ok_or_else(|| Refusal::invalid("No Expiration Time (exp) claim present."))?
            .floor() as i64;
        let iat = number(claims, "iat")?
            .ok_or_else(|| Refusal::invalid("No Issued At (iat) claim present."))?
            .floor() as i64;
        if exp < 0 || iat < 0 {
            return Err(Refusal::invalid("exp and iat must be non-negative"));
        }
        if now_s >= exp + self.skew_s {
            return Err(Refusal::invalid(format!(
                "The JWT is no longer valid - the evaluation time {now_s} is on or after the Expiration Time {exp} (allowed clock skew: {} seconds)",
                self.skew_s
            )));
        }
        if let Some(nbf) = number(claims, "nbf")? {
            if now_s + self.skew_s < nbf.floor() as i64 {
                return Err(Refusal::invalid(format!(
                    "The JWT is not yet valid as the evaluation time {now_s} is before the Not Before {nbf}"
                )));
            }
        }
        let audiences: Vec<&str> = match claims.get("aud") {
            None | Some(Value::Null) => Vec::new(),
            Some(Value::String(a)) => vec![a.as_str()],
            Some(Value::Array(list)) => list.iter().filter_map(Value::as_str).collect(),
            Some(_) => return Err(Refusal::invalid("the aud claim is not a string or a list")),
        };
        if !self.audience.is_empty() && audiences.is_empty() {
            return Err(Refusal::invalid("No Audience (aud) claim present."));
        }
        if !audiences.is_empty()
            && !audiences
                .iter()
                .any(|a| self.audience.iter().any(|e| e == a))
        {
            return Err(Refusal::invalid(format!(
                "Audience (aud) claim {audiences:?} {}. Expected one of {:?}",
                if self.audience.is_empty() {
                    "present in the JWT but no expected audience value(s) were provided (sasl.oauthbearer.expected.audience)"
                } else {
                    "doesn't contain an acceptable identifier"
                },
                self.audience
            )));
        }
        if let Some(issuer) = &self.issuer {
            let iss = claims.get("iss").and_then(Value::as_str);
            if iss != Some(issuer.as_str()) {
                return Err(Refusal::invalid(format!(
                    "Issuer (iss) claim value ({iss:?}) doesn't match expected value of {issuer}"
                )));
            }
        }
        let principal = subject(claims, &self.sub_claim)?;
        Ok(Token {
            principal,
            expires_ms: exp.saturating_mul(1000),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    const NOW_MS: i64 = 1_800_000_000_000;

    fn b64(bytes: &[u8]) -> String {
        Base64UrlUnpadded::encode_string(bytes)
    }

    fn claims(extra: Value) -> Value {
        let mut c =
            serde_json::json!({"sub": "alice", "iat": NOW_MS / 1000, "exp": NOW_MS / 1000 + 60});
        for (k, v) in extra.as_object().unwrap() {
            c[k] = v.clone();
        }
        c
    }

    fn unsigned(claims: &Value) -> String {
        format!(
            "{}.{}.",
            b64(br#"{"alg":"none"}"#),
            b64(claims.to_string().as_bytes())
        )
    }

    fn unsecured(options: &[(&str, &str)]) -> Validator {
        let options = options
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Validator::Unsecured(Unsecured::from_options(&options).unwrap())
    }

    #[test]
    fn the_initial_response_is_parsed_as_kafka_reads_it() {
        let r = parse_initial_response(b"n,,\x01auth=Bearer abc.def.\x01\x01").unwrap();
        assert_eq!(r.token, "abc.def.");
        assert_eq!(r.authzid, "");
        let r = parse_initial_response(
            b"n,a=alice,\x01host=h\x01auth=bearer  x-y_z==\x01traceId=1 2\x01\x01",
        )
        .unwrap();
        assert_eq!((r.authzid.as_str(), r.token.as_str()), ("alice", "x-y_z=="));
        assert_eq!(r.extensions.len(), 2);
        for bad in [
            &b"y,,\x01auth=Bearer x\x01\x01"[..],
            b"n,,\x01auth=Bearer x\x01",
            b"n,,\x01\x01",
            b"n,,\x01auth=Basic x\x01\x01",
            b"n,,\x01auth=Bearer x y\x01\x01",
            b"n,,\x01auth=Bearer\x01\x01",
            b"n,,\x01a1=v\x01auth=Bearer x\x01\x01",
            b"n,a=al,ice,\x01auth=Bearer x\x01\x01",
            b"n,,\x01auth=Bearer x\x01\x01\x01",
            b"\xff",
        ] {
            assert!(parse_initial_response(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn unsecured_tokens_follow_kafkas_unsecured_validator() {
        let v = unsecured(&[]);
        let ok = v
            .validate(&unsigned(&claims(serde_json::json!({}))), NOW_MS)
            .unwrap();
        assert_eq!(ok.principal, "alice");
        assert_eq!(ok.expires_ms, NOW_MS + 60_000);
        for bad in [
            serde_json::json!({"exp": NOW_MS / 1000 - 1}),
            serde_json::json!({"exp": "soon"}),
            serde_json::json!({"sub": " "}),
            serde_json::json!({"iat": NOW_MS / 1000 + 5}),
        ] {
            let err = v
                .validate(&unsigned(&claims(bad.clone())), NOW_MS)
                .unwrap_err();
            assert_eq!(err.json(), r#"{"status":"invalid_token"}"#, "{bad}");
        }
        // a token without exp, signed, or not a JWS
        let no_exp = serde_json::json!({"sub": "alice"});
        assert!(v.validate(&unsigned(&no_exp), NOW_MS).is_err());
        let t = unsigned(&claims(serde_json::json!({})));
        assert!(v.validate(&format!("{t}c2ln"), NOW_MS).is_err());
        assert!(v.validate("a..b", NOW_MS).is_err());
        // the clock skew lets a just-expired token in
        let skewed = unsecured(&[("unsecuredValidatorAllowableClockSkewMs", "5000")]);
        let late = unsigned(&claims(
            serde_json::json!({"iat": NOW_MS / 1000 - 60, "exp": NOW_MS / 1000 - 1}),
        ));
        assert!(skewed.validate(&late, NOW_MS).is_ok());
        // required scope, as a string or a list
        let scoped = unsecured(&[("unsecuredValidatorRequiredScope", "write read")]);
        let err = scoped
            .validate(
                &unsigned(&claims(serde_json::json!({"scope": "read"}))),
                NOW_MS,
            )
            .unwrap_err();
        assert_eq!(
            err.json(),
            r#"{"status":"insufficient_scope", "scope":"[write, read]"}"#
        );
        let both = claims(serde_json::json!({"scope": ["read", "write"]}));
        assert!(scoped.validate(&unsigned(&both), NOW_MS).is_ok());
        // another principal claim
        let by_name = unsecured(&[("unsecuredValidatorPrincipalClaimName", "name")]);
        let named = claims(serde_json::json!({"name": "bob"}));
        assert_eq!(
            by_name
                .validate(&unsigned(&named), NOW_MS)
                .unwrap()
                .principal,
            "bob"
        );
    }

    fn signed(alg: &str, kid: &str, claims: &Value, sign: impl Fn(&[u8]) -> Vec<u8>) -> String {
        let header = serde_json::json!({"alg": alg, "kid": kid, "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = sign(input.as_bytes());
        format!("{input}.{}", b64(&sig))
    }

    struct Keys {
        ec: EcdsaKeyPair,
        ed: Ed25519KeyPair,
    }

    fn keys() -> (Keys, String) {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        let ec = EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap();
        let ed = Ed25519KeyPair::from_pkcs8(Ed25519KeyPair::generate_pkcs8(&rng).unwrap().as_ref())
            .unwrap();
        let point = ec.public_key().as_ref();
        let jwks = serde_json::json!({"keys": [
            {"kty": "EC", "crv": "P-256", "kid": "ec1", "use": "sig",
             "x": b64(&point[1..33]), "y": b64(&point[33..])},
            {"kty": "OKP", "crv": "Ed25519", "kid": "ed1", "x": b64(ed.public_key().as_ref())},
            {"kty": "EC", "crv": "P-256", "kid": "enc1", "use": "enc",
             "x": b64(&point[1..33]), "y": b64(&point[33..])},
            {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
        ]});
        (Keys { ec, ed }, jwks.to_string())
    }

    fn jwks_validator(text: &str, audience: &[&str], issuer: Option<&str>) -> Validator {
        Validator::Jwks(Jwks {
            keys: KeySet::fixed(parse_jwks(text).unwrap()),
            audience: audience.iter().map(|a| a.to_string()).collect(),
            issuer: issuer.map(str::to_string),
            skew_s: 30,
            sub_claim: "sub".into(),
        })
    }

    #[test]
    fn signed_tokens_are_checked_against_the_jwks() {
        let (keys, jwks) = keys();
        assert_eq!(
            parse_jwks(&jwks).unwrap().len(),
            2,
            "enc and oct keys are left out"
        );
        let rng = SystemRandom::new();
        let es = |m: &[u8]| keys.ec.sign(&rng, m).unwrap().as_ref().to_vec();
        let ed = |m: &[u8]| keys.ed.sign(m).as_ref().to_vec();
        let v = jwks_validator(&jwks, &["kafka"], Some("https://idp"));
        let good = claims(serde_json::json!({"aud": ["other", "kafka"], "iss": "https://idp"}));
        let t = v
            .validate(&signed("ES256", "ec1", &good, es), NOW_MS)
            .unwrap();
        assert_eq!(t.principal, "alice");
        assert!(v
            .validate(&signed("EdDSA", "ed1", &good, ed), NOW_MS)
            .is_ok());
        // within the 30 s skew
        let late = claims(
            serde_json::json!({"aud": "kafka", "iss": "https://idp", "exp": NOW_MS / 1000 - 10}),
        );
        assert!(v
            .validate(&signed("ES256", "ec1", &late, es), NOW_MS)
            .is_ok());
        let refused = |token: String| v.validate(&token, NOW_MS).unwrap_err().reason;
        // the signature of another key, a key for encryption only, an unknown kid, alg none
        assert!(refused(signed("ES256", "ed1", &good, es)).contains("suitable"));
        assert!(refused(signed("ES256", "enc1", &good, es)).contains("suitable"));
        assert!(refused(signed("EdDSA", "ed1", &good, |m| {
            let mut s = ed(m);
            s[0] ^= 1;
            s
        }))
        .contains("invalid"));
        assert!(refused(signed("none", "ec1", &good, |_| Vec::new())).contains("none"));
        assert!(refused(signed("HS256", "hmac", &good, |_| vec![1; 32])).contains("suitable"));
        for (bad, why) in [
            (
                serde_json::json!({"aud": "kafka", "iss": "https://idp", "exp": NOW_MS / 1000 - 31}),
                "no longer valid",
            ),
            (
                serde_json::json!({"aud": "kafka", "iss": "https://idp", "nbf": NOW_MS / 1000 + 60}),
                "not yet valid",
            ),
            (
                serde_json::json!({"aud": "web", "iss": "https://idp"}),
                "acceptable",
            ),
            (serde_json::json!({"iss": "https://idp"}), "No Audience"),
            (
                serde_json::json!({"aud": "kafka", "iss": "https://evil"}),
                "Issuer",
            ),
            (
                serde_json::json!({"aud": "kafka", "iss": "https://idp", "sub": ""}),
                "principal",
            ),
            (
                serde_json::json!({"aud": "kafka", "iss": "https://idp", "iat": null}),
                "Issued At",
            ),
        ] {
            let reason = refused(signed("ES256", "ec1", &claims(bad), es));
            assert!(reason.contains(why), "{reason} / {why}");
        }
        // no audience expected: a token that names one is refused, as Kafka's validator does
        let open = jwks_validator(&jwks, &[], None);
        assert!(open
            .validate(&signed("ES256", "ec1", &good, es), NOW_MS)
            .is_err());
        let plain = claims(serde_json::json!({}));
        assert!(open
            .validate(&signed("ES256", "ec1", &plain, es), NOW_MS)
            .is_ok());
        // garbage never panics
        for junk in ["", ".", "..", "a.b.c", "e30.e30.", "e30.W10.", "!!.!!.!!"] {
            assert!(v.validate(junk, NOW_MS).is_err(), "{junk}");
        }
    }
}
