//! SASL on a listener: the mechanisms it offers (`sasl.enabled.mechanisms`), PLAIN users from
//! the JAAS config as Kafka's PlainLoginModule reads them, SCRAM-SHA-256/512 against the salted
//! credentials in the metadata log, and the server side of each exchange.
//!
//! A failed authentication says the same for an unknown user and a wrong password, at the same
//! step: an unknown SCRAM user gets a made-up salt and fails at the proof, like a wrong password.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use ferrolog_client::sasl::{scram, Mechanism};
use subtle::ConstantTimeEq;

use crate::config::Properties;

/// A user's salted SCRAM credential for one mechanism, as the metadata log keeps it: what the
/// server needs to check a proof, never the password.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

/// The largest SASL token (and request frame) accepted before authentication, as Kafka's
/// `sasl.server.max.receive.size` default.
pub const MAX_RECEIVE: usize = 512 * 1024;

/// Kafka's bounds on SCRAM iterations.
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

/// A listener's SASL set-up.
#[derive(Debug, Clone)]
pub struct SaslConfig {
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN users and passwords (`user_<name>="<password>"` in the JAAS config).
    plain_users: BTreeMap<String, String>,
    /// `connections.max.reauth.ms`: the session lifetime told to clients (0: none).
    pub reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub failure_delay_ms: u64,
    /// How OAUTHBEARER tokens are validated, when the listener offers it.
    oauth: Option<super::oauth::Validator>,
}

fn lookup(properties: &Properties, listener: &str, key: &str) -> Option<(String, String)> {
    super::ListenerKeys::new(properties, listener).lookup(key)
}

/// The JAAS config of `mechanism` on `listener`
/// (`listener.name.<listener>.<mechanism>.sasl.jaas.config`), as (key, value).
pub fn jaas_config(
    properties: &Properties,
    listener: &str,
    mechanism: Mechanism,
) -> Option<(String, String)> {
    let key = format!(
        "listener.name.{}.{}.sasl.jaas.config",
        listener.to_ascii_lowercase(),
        mechanism.name().to_ascii_lowercase()
    );
    properties.get(&key).map(|v| (key, v.clone()))
}

/// The options of a JAAS login module entry: `Module required key="value" …;`.
pub fn jaas_options(key: &str, text: &str) -> Result<(String, BTreeMap<String, String>)> {
    let bad = |why: &str| anyhow!("Invalid value [hidden] for configuration {key}: {why}");
    let text = text.trim();
    let text = text
        .strip_suffix(';')
        .ok_or_else(|| bad("a JAAS entry ends with ';'"))?;
    let mut words = text.splitn(3, char::is_whitespace);
    let module = words
        .next()
        .filter(|m| !m.is_empty())
        .ok_or_else(|| bad("no login module"))?
        .to_string();
    match words.next().map(|f| f.to_ascii_lowercase()).as_deref() {
        Some("required" | "requisite" | "sufficient" | "optional") => {}
        _ => return Err(bad("the login module needs a control flag (required)")),
    }
    let mut options = BTreeMap::new();
    let mut rest = words.next().unwrap_or("").trim_start();
    while !rest.is_empty() {
        let (name, after) = rest
            .split_once('=')
            .ok_or_else(|| bad("an option is name=\"value\""))?;
        let after = after.trim_start();
        let (value, after) = if let Some(quoted) = after.strip_prefix('"') {
            let mut value = String::new();
            let mut chars = quoted.char_indices();
            let end = loop {
                match chars.next() {
                    Some((_, '\\')) => {
                        if let Some((_, c)) = chars.next() {
                            value.push(c);
                        }
                    }
                    Some((i, '"')) => break i,
                    Some((_, c)) => value.push(c),
                    None => return Err(bad("an unterminated quoted value")),
                }
            };
            (value, &quoted[end + 1..])
        } else {
            let end = after.find(char::is_whitespace).unwrap_or(after.len());
            (after[..end].to_string(), &after[end..])
        };
        options.insert(name.trim().to_string(), value);
        rest = after.trim_start();
    }
    Ok((module, options))
}

const PLAIN_MODULE: &str = "org.apache.kafka.common.security.plain.PlainLoginModule";
const SCRAM_MODULE: &str = "org.apache.kafka.common.security.scram.ScramLoginModule";
const OAUTHBEARER_MODULE: &str =
    "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";

/// Checks that the JAAS entry `key` names Kafka's login module for `m`.
fn check_module(key: &str, m: Mechanism, module: &str) -> Result<()> {
    let (what, expected) = match m {
        Mechanism::Plain => ("PLAIN", PLAIN_MODULE),
        Mechanism::ScramSha256 | Mechanism::ScramSha512 => ("SCRAM", SCRAM_MODULE),
        Mechanism::OAuthBearer => ("OAUTHBEARER", OAUTHBEARER_MODULE),
    };
    if module != expected {
        bail!("Invalid value [hidden] for configuration {key}: the {what} login module is {expected}, not {module}");
    }
    Ok(())
}

/// The options of `listener`'s JAAS entry for `m`, which must name Kafka's login module for
/// it; `None` when there is none.
fn listener_jaas(
    properties: &Properties,
    listener: &str,
    m: Mechanism,
) -> Result<Option<BTreeMap<String, String>>> {
    let Some((key, text)) = jaas_config(properties, listener, m) else {
        return Ok(None);
    };
    let (module, options) = jaas_options(&key, &text)?;
    check_module(&key, m, &module)?;
    Ok(Some(options))
}

/// Builds `listener`'s SASL set-up; a mechanism ferrolog lacks (GSSAPI, OAUTHBEARER) stops
/// start-up naming the key.
pub fn sasl_config(properties: &Properties, listener: &str) -> Result<SaslConfig> {
    let (key, list) = lookup(properties, listener, "sasl.enabled.mechanisms")
        .unwrap_or(("sasl.enabled.mechanisms".into(), "GSSAPI".into()));
    let mut mechanisms = Vec::new();
    for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let m = Mechanism::parse(name).ok_or_else(|| {
            anyhow!("Invalid value {list} for configuration {key}: ferrolog does not implement SASL mechanism {name} (it has PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER)")
        })?;
        if !mechanisms.contains(&m) {
            mechanisms.push(m);
        }
    }
    if mechanisms.is_empty() {
        bail!("Invalid value {list} for configuration {key}: listener {listener} needs a SASL mechanism");
    }
    let lower = listener.to_ascii_lowercase();
    let mut plain_users = BTreeMap::new();
    if mechanisms.contains(&Mechanism::Plain) {
        let options = listener_jaas(properties, listener, Mechanism::Plain)?.ok_or_else(|| {
            anyhow!("listener {listener} offers SASL PLAIN: its users are in listener.name.{lower}.plain.sasl.jaas.config ({PLAIN_MODULE} required user_<name>=\"<password>\";)")
        })?;
        for (name, value) in options {
            if let Some(user) = name.strip_prefix("user_") {
                plain_users.insert(user.to_string(), value);
            }
        }
    }
    for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
        if mechanisms.contains(&m) {
            listener_jaas(properties, listener, m)?;
        }
    }
    let oauth = if mechanisms.contains(&Mechanism::OAuthBearer) {
        let options = listener_jaas(properties, listener, Mechanism::OAuthBearer)?.ok_or_else(|| {
            anyhow!("listener {listener} offers SASL OAUTHBEARER: set listener.name.{lower}.oauthbearer.sasl.jaas.config ({OAUTHBEARER_MODULE} required;)")
        })?;
        Some(super::oauth::Validator::from_properties(
            properties, listener, &options,
        )?)
    } else {
        None
    };
    let number = |k: &str| -> Result<i64> {
        let (name, v) = lookup(properties, listener, k).unwrap_or((k.into(), "0".into()));
        v.trim()
            .parse()
            .map_err(|_| anyhow!("Invalid value {v} for configuration {name}"))
    };
    Ok(SaslConfig {
        mechanisms,
        plain_users,
        reauth_ms: number("connections.max.reauth.ms")?.max(0),
        failure_delay_ms: number("connection.failed.authentication.delay.ms")?.max(0) as u64,
        oauth,
    })
}

/// The credentials this broker authenticates with on `listener` for inter-broker traffic:
/// `sasl.mechanism.inter.broker.protocol` and the `username` / `password` of that mechanism's
/// JAAS config.
pub fn inter_broker_credentials(
    properties: &Properties,
    listener: &str,
) -> Result<ferrolog_client::sasl::Credentials> {
    own_credentials(
        properties,
        listener,
        "sasl.mechanism.inter.broker.protocol",
        "brokers",
    )
}

/// The credentials this node authenticates with to the controllers on their `listener`:
/// `sasl.mechanism.controller.protocol` and that mechanism's JAAS entry of the listener.
pub fn controller_credentials(
    properties: &Properties,
    listener: &str,
) -> Result<ferrolog_client::sasl::Credentials> {
    own_credentials(
        properties,
        listener,
        "sasl.mechanism.controller.protocol",
        "controllers and brokers",
    )
}

/// A node's own login on `listener`: the mechanism `mechanism_key` names and its JAAS entry.
fn own_credentials(
    properties: &Properties,
    listener: &str,
    mechanism_key: &str,
    who: &str,
) -> Result<ferrolog_client::sasl::Credentials> {
    let (key, name) = lookup(properties, listener, mechanism_key)
        .unwrap_or((mechanism_key.into(), "GSSAPI".into()));
    let mechanism = Mechanism::parse(&name).ok_or_else(|| {
        anyhow!("Invalid value {name} for configuration {key}: ferrolog does not implement SASL mechanism {name} between {who} (it has PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER)")
    })?;
    let (jaas_key, text) = jaas_config(properties, listener, mechanism).ok_or_else(|| {
        anyhow!(
            "{who} authenticate over listener {listener} with {}: set listener.name.{}.{}.sasl.jaas.config (the login module and its options)",
            mechanism.name(),
            listener.to_ascii_lowercase(),
            mechanism.name().to_ascii_lowercase()
        )
    })?;
    let token_url = super::ListenerKeys::new(properties, listener)
        .lookup_mechanism(mechanism, "sasl.oauthbearer.token.endpoint.url");
    login_credentials(mechanism, &jaas_key, &text, token_url)
}

/// What a client (a tool, or a broker towards another) authenticates with, from the login
/// module entry `jaas` (its key `jaas_key`): PLAIN and SCRAM take its `username` and `password`;
/// OAUTHBEARER reads its token from `token_url` (`file://…`, Kafka's
/// `sasl.oauthbearer.token.endpoint.url`) or makes an unsecured one from the
/// `unsecuredLogin*` options, as Kafka's OAuthBearerUnsecuredLoginCallbackHandler.
pub fn login_credentials(
    mechanism: Mechanism,
    jaas_key: &str,
    jaas: &str,
    token_url: Option<(String, String)>,
) -> Result<ferrolog_client::sasl::Credentials> {
    use ferrolog_client::sasl::{oauthbearer::TokenSource, Credentials};
    let (module, options) = jaas_options(jaas_key, jaas)?;
    if mechanism != Mechanism::OAuthBearer {
        return match (options.get("username"), options.get("password")) {
            (Some(u), Some(p)) => Ok(Credentials::password(mechanism, u, p)),
            _ => bail!("Invalid value [hidden] for configuration {jaas_key}: {} needs its username and password options", mechanism.name()),
        };
    }
    check_module(jaas_key, mechanism, &module)?;
    if let Some((key, url)) = token_url {
        let path = url.strip_prefix("file://").ok_or_else(|| {
            anyhow!("Invalid value {url} for configuration {key}: ferrolog reads tokens from file:// URLs only (it has no HTTP client for a token endpoint)")
        })?;
        let mut credentials = Credentials::password(mechanism, "", "");
        credentials.token = Some(TokenSource::File(path.into()));
        return Ok(credentials);
    }
    let mut claims = BTreeMap::new();
    let mut lifetime_s = 3600;
    let mut principal_claim = "sub".to_string();
    for (name, value) in &options {
        if let Some(claim) = name.strip_prefix("unsecuredLoginStringClaim_") {
            claims.insert(claim.to_string(), value.clone());
        } else if name == "unsecuredLoginLifetimeSeconds" {
            lifetime_s = value.trim().parse().map_err(|_| {
                anyhow!(
                    "Invalid value {value} for option unsecuredLoginLifetimeSeconds of {jaas_key}"
                )
            })?;
        } else if name == "unsecuredLoginPrincipalClaimName" {
            principal_claim = value.trim().to_string();
        } else if name.starts_with("unsecuredLogin") {
            bail!("Invalid value [hidden] for configuration {jaas_key}: ferrolog's unsecured OAuth login takes unsecuredLoginStringClaim_<name>, unsecuredLoginPrincipalClaimName and unsecuredLoginLifetimeSeconds, not {name}");
        }
    }
    let principal = claims.get(&principal_claim).cloned().ok_or_else(|| {
        anyhow!("Invalid value [hidden] for configuration {jaas_key}: an OAUTHBEARER login needs sasl.oauthbearer.token.endpoint.url or unsecuredLoginStringClaim_{principal_claim}")
    })?;
    let mut credentials = Credentials::password(mechanism, &principal, "");
    credentials.token = Some(TokenSource::Unsecured { claims, lifetime_s });
    Ok(credentials)
}

/// One connection's authentication, from SaslHandshake to success or failure.
pub struct Authenticator {
    mechanism: Option<Mechanism>,
    scram: Option<ScramServer>,
    /// OAUTHBEARER: the error challenge sent for a refused token, the failure once the client
    /// acknowledges it.
    oauth_error: Option<String>,
}

/// What a SASL token leads to.
pub enum Step {
    /// Send this token and wait for the next.
    Challenge(Vec<u8>),
    /// Authenticated as `User:<name>`; send the last token. `expires_ms`: when the credential
    /// ends (an OAuth token's `exp`, milliseconds since the epoch), which bounds the session.
    Done {
        principal: String,
        token: Vec<u8>,
        expires_ms: Option<i64>,
    },
    /// Failed, with Kafka's message.
    Failed(String),
}

impl Default for Authenticator {
    fn default() -> Self {
        Self::new()
    }
}

impl Authenticator {
    pub fn new() -> Authenticator {
        Authenticator {
            mechanism: None,
            scram: None,
            oauth_error: None,
        }
    }

    /// SaslHandshake: picks `name` if the listener offers it.
    pub fn handshake(&mut self, config: &SaslConfig, name: &str) -> bool {
        self.mechanism = Mechanism::parse(name).filter(|m| config.mechanisms.contains(m));
        self.scram = None;
        self.oauth_error = None;
        self.mechanism.is_some()
    }

    pub fn mechanism(&self) -> Option<Mechanism> {
        self.mechanism
    }

    /// One token of the exchange. `credential` finds a user's SCRAM credential.
    pub fn step(
        &mut self,
        config: &SaslConfig,
        token: &[u8],
        credential: impl Fn(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Step {
        let Some(m) = self.mechanism else {
            return Step::Failed("SaslAuthenticate before SaslHandshake".into());
        };
        match m {
            Mechanism::Plain => match plain(config, token) {
                Some(user) => Step::Done {
                    principal: format!("User:{user}"),
                    token: Vec::new(),
                    expires_ms: None,
                },
                None => Step::Failed("Authentication failed: Invalid username or password".into()),
            },
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let failed = || {
                    Step::Failed(format!(
                        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
                        m.name()
                    ))
                };
                match self.scram.take() {
                    None => match ScramServer::first(m, token, &credential) {
                        Ok((server, reply)) => {
                            self.scram = Some(server);
                            Step::Challenge(reply.into_bytes())
                        }
                        Err(e) => {
                            tracing::debug!("SCRAM client-first message refused: {e:#}");
                            failed()
                        }
                    },
                    Some(server) => match server.last(token) {
                        Ok((user, reply)) => Step::Done {
                            principal: format!("User:{user}"),
                            token: reply.into_bytes(),
                            expires_ms: None,
                        },
                        Err(e) => {
                            // the reason stays in the log: the client hears the same for all
                            tracing::debug!("SCRAM client-final message refused: {e:#}");
                            failed()
                        }
                    },
                }
            }
            Mechanism::OAuthBearer => self.oauth(config, token),
        }
    }

    /// One OAUTHBEARER token, as Kafka's server: a refused token is answered with an error
    /// challenge, and the client's `\x01` after it with the failure.
    fn oauth(&mut self, config: &SaslConfig, token: &[u8]) -> Step {
        if token == ferrolog_client::sasl::oauthbearer::AFTER_ERROR {
            if let Some(error) = self.oauth_error.take() {
                return Step::Failed(error);
            }
        }
        self.oauth_error = None;
        let Some(validator) = &config.oauth else {
            return Step::Failed("OAUTHBEARER is not enabled on this listener".into());
        };
        let response = match super::oauth::parse_initial_response(token) {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("OAUTHBEARER initial response refused: {e:#}");
                return Step::Failed(
                    "Authentication failed during authentication due to invalid credentials with SASL mechanism OAUTHBEARER".into(),
                );
            }
        };
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        match validator.validate(&response.token, now_ms) {
            Ok(t) if !response.authzid.is_empty() && response.authzid != t.principal => {
                Step::Failed(format!(
                    "Authentication failed: Client requested an authorization id ({}) that is different from the token's principal name ({})",
                    response.authzid, t.principal
                ))
            }
            Ok(t) => Step::Done {
                principal: format!("User:{}", t.principal),
                token: Vec::new(),
                expires_ms: Some(t.expires_ms),
            },
            Err(refusal) => {
                refused_token_log(&refusal.reason);
                let json = refusal.json();
                self.oauth_error = Some(json.clone());
                Step::Challenge(json.into_bytes())
            }
        }
    }
}

/// Logs why a token was refused (the client hears only `invalid_token`), at most 10 lines a
/// second: a client can send refused tokens as fast as it likes.
fn refused_token_log(reason: &str) {
    use std::sync::atomic::{AtomicU64, Ordering};
    static WINDOW: AtomicU64 = AtomicU64::new(0);
    let second = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // the high bits hold the second, the low 8 the lines logged in it
    let seen = WINDOW.load(Ordering::Relaxed);
    let count = if seen >> 8 == second { seen & 0xff } else { 0 };
    if count < 10 {
        WINDOW.store(second << 8 | (count + 1), Ordering::Relaxed);
        tracing::warn!("OAUTHBEARER token refused: {reason}");
    }
}

/// PLAIN: `[authzid] NUL authcid NUL passwd`; the user if the password is theirs.
fn plain(config: &SaslConfig, token: &[u8]) -> Option<String> {
    let text = std::str::from_utf8(token).ok()?;
    let mut parts = text.split('\0');
    let (authzid, user, password) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || user.is_empty()
        || password.is_empty()
        || (!authzid.is_empty() && authzid != user)
    {
        return None;
    }
    let expected = config.plain_users.get(user)?;
    bool::from(expected.as_bytes().ct_eq(password.as_bytes())).then(|| user.to_string())
}

/// The salt shown for a user without a credential: the same on every try (a fresh one each
/// time would tell unknown users apart), derived from a secret of this process.
fn fake_salt(m: Mechanism, user: &str) -> Vec<u8> {
    static SECRET: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let secret = SECRET.get_or_init(|| scram::random(32));
    let mut salt = scram::hmac(Mechanism::ScramSha256, secret, m.name().as_bytes());
    salt.extend(scram::hmac(Mechanism::ScramSha256, secret, user.as_bytes()));
    scram::hmac(Mechanism::ScramSha256, secret, &salt)
}

/// The server side of a SCRAM exchange after the client-first message.
struct ScramServer {
    mechanism: Mechanism,
    user: String,
    /// `None` for an unknown user: the exchange runs on and fails at the proof.
    credential: Option<ScramCredential>,
    first_bare: String,
    server_first: String,
    nonce: String,
    gs2_header: String,
}

impl ScramServer {
    fn first(
        m: Mechanism,
        token: &[u8],
        credential: &impl Fn(&str, Mechanism) -> Option<ScramCredential>,
    ) -> Result<(ScramServer, String)> {
        let text = std::str::from_utf8(token)?;
        // gs2-header: no channel binding ("n") or not supported by the server ("y"), authzid
        let (cb, rest) = text
            .split_once(',')
            .ok_or_else(|| anyhow!("no gs2 header"))?;
        if cb != "n" && cb != "y" {
            bail!("channel binding is not supported");
        }
        let (authzid, first_bare) = rest
            .split_once(',')
            .ok_or_else(|| anyhow!("no gs2 header"))?;
        let gs2_header = format!("{cb},{authzid},");
        let attrs = scram::attributes(first_bare)?;
        let (user, client_nonce) = match attrs.as_slice() {
            [('n', user), ('r', nonce), extensions @ ..] => {
                // Kafka's `tokenauth` extension asks for delegation tokens, which ferrolog lacks
                if extensions.iter().any(|(k, _)| *k == 't') {
                    bail!("delegation tokens are not supported");
                }
                (scram::decode_name(user)?, nonce.to_string())
            }
            _ => bail!("client-first message is n=user,r=nonce"),
        };
        if let Some(z) = authzid.strip_prefix("a=") {
            if scram::decode_name(z)? != user {
                bail!("the authorization id is not the user");
            }
        }
        let found = credential(&user, m);
        let (salt, iterations) = match &found {
            Some(c) => (c.salt.clone(), c.iterations),
            None => (fake_salt(m, &user), MIN_ITERATIONS),
        };
        let nonce = format!("{client_nonce}{}", scram::nonce());
        let server_first = format!("r={nonce},s={},i={iterations}", scram::b64(&salt));
        Ok((
            ScramServer {
                mechanism: m,
                user,
                credential: found,
                first_bare: first_bare.to_string(),
                server_first: server_first.clone(),
                nonce,
                gs2_header,
            },
            server_first,
        ))
    }

    /// Checks the client-final message's proof; returns the user and the server-final message.
    fn last(self, token: &[u8]) -> Result<(String, String)> {
        let m = self.mechanism;
        let text = std::str::from_utf8(token)?;
        let (without_proof, proof) = text
            .rsplit_once(",p=")
            .ok_or_else(|| anyhow!("client-final message has no proof"))?;
        let attrs = scram::attributes(without_proof)?;
        let (binding, nonce) = match attrs.as_slice() {
            [('c', binding), ('r', nonce), ..] => (*binding, *nonce),
            _ => bail!("client-final message is c=…,r=…,p=…"),
        };
        // the nonce is exactly the server's (RFC 5802; Kafka 4 checks it so since CVE-2024-56128:
        // librdkafka before 2.6.1, which repeats its own nonce in front, fails here as there)
        if scram::unb64(binding)? != self.gs2_header.as_bytes() || nonce != self.nonce {
            bail!("channel binding or nonce mismatch");
        }
        let credential = self.credential.ok_or_else(|| anyhow!("unknown user"))?;
        let auth = format!("{},{},{without_proof}", self.first_bare, self.server_first);
        let signature = scram::hmac(m, &credential.stored_key, auth.as_bytes());
        let client_key = scram::xor(&scram::unb64(proof)?, &signature);
        if !bool::from(scram::hash(m, &client_key).ct_eq(&credential.stored_key)) {
            bail!("wrong password");
        }
        let server_signature = scram::hmac(m, &credential.server_key, auth.as_bytes());
        Ok((self.user, format!("v={}", scram::b64(&server_signature))))
    }
}

/// A SCRAM credential given as `kafka-storage format --add-scram` takes it:
/// `SCRAM-SHA-256=[name=alice,password=alice-secret]`, optionally with `iterations=…`.
/// Returns the user, the mechanism and the credential (with a fresh salt).
pub fn parse_add_scram(text: &str) -> Result<(String, Mechanism, ScramCredential)> {
    let bad = |why: &str| anyhow!("--add-scram {text:?}: {why}");
    let (mechanism, rest) = text
        .split_once('=')
        .ok_or_else(|| bad("expected MECHANISM=[name=…,password=…]"))?;
    let m = Mechanism::parse(mechanism)
        .filter(|m| m.scram_type().is_some())
        .ok_or_else(|| bad("the mechanism is SCRAM-SHA-256 or SCRAM-SHA-512"))?;
    let inner = rest
        .trim()
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| bad("the settings go in [ ]"))?;
    let mut settings = BTreeMap::new();
    for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
        let (k, v) = pair
            .split_once('=')
            .ok_or_else(|| bad("settings are key=value"))?;
        let v = v.trim().trim_matches('"');
        settings.insert(k.trim().to_ascii_lowercase(), v.to_string());
    }
    let user = settings
        .remove("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| bad("name= is required"))?;
    let password = settings
        .remove("password")
        .ok_or_else(|| bad("password= is required"))?;
    let iterations = match settings.remove("iterations") {
        Some(i) => i
            .parse::<i32>()
            .map_err(|_| bad("iterations is a number"))?,
        None => MIN_ITERATIONS,
    };
    if !(MIN_ITERATIONS..=MAX_ITERATIONS).contains(&iterations) {
        return Err(bad(&format!(
            "iterations must be {MIN_ITERATIONS} to {MAX_ITERATIONS}"
        )));
    }
    if let Some(k) = settings.keys().next() {
        return Err(bad(&format!(
            "unknown setting {k} (ferrolog takes name, password, iterations)"
        )));
    }
    let salt = scram::random(32);
    let salted = scram::salted_password(m, &password, &salt, iterations as u32);
    let (stored_key, server_key) = scram::keys(m, &salted);
    Ok((
        user,
        m,
        ScramCredential {
            salt,
            stored_key,
            server_key,
            iterations,
        },
    ))
}

/// Drives every server-side parser with `data` as a client token: PLAIN, a SCRAM client-first
/// message, a SCRAM client-final message after a valid first one, an OAUTHBEARER initial
/// response, and the JWT and JWKS parsers of both OAuth validators. What the `sasl_token`
/// fuzz target and its corpus replay run; any input must fail or succeed, never panic.
#[doc(hidden)]
pub fn fuzz_tokens(data: &[u8]) {
    let config = SaslConfig {
        mechanisms: vec![Mechanism::Plain, Mechanism::ScramSha256],
        plain_users: [("alice".to_string(), "alice-secret".to_string())].into(),
        reauth_ms: 0,
        failure_delay_ms: 0,
        oauth: None,
    };
    let credential = |user: &str, _: Mechanism| {
        (user == "alice").then(|| ScramCredential {
            salt: b"salt".to_vec(),
            stored_key: vec![1; 32],
            server_key: vec![2; 32],
            iterations: MIN_ITERATIONS,
        })
    };
    let mut plain = Authenticator::new();
    plain.handshake(&config, "PLAIN");
    let _ = plain.step(&config, data, credential);
    let mut first = Authenticator::new();
    first.handshake(&config, "SCRAM-SHA-256");
    let _ = first.step(&config, data, credential);
    let mut last = Authenticator::new();
    last.handshake(&config, "SCRAM-SHA-256");
    if let Step::Challenge(_) = last.step(&config, b"n,,n=alice,r=fuzz", credential) {
        let _ = last.step(&config, data, credential);
    }
    let oauth = SaslConfig {
        mechanisms: vec![Mechanism::OAuthBearer],
        oauth: Some(super::oauth::Validator::unsecured_defaults()),
        ..config
    };
    let mut bearer = Authenticator::new();
    bearer.handshake(&oauth, "OAUTHBEARER");
    let _ = bearer.step(&oauth, data, credential);
    let _ = bearer.step(
        &oauth,
        ferrolog_client::sasl::oauthbearer::AFTER_ERROR,
        credential,
    );
    super::oauth::fuzz_token(data);
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrolog_client::sasl::Credentials;

    fn config(pairs: &[(&str, &str)]) -> Result<SaslConfig> {
        let p: Properties = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        sasl_config(&p, "SASL_PLAINTEXT")
    }

    const OAUTH_JAAS: &str =
        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required;";

    const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="admin-secret" user_admin="admin-secret" user_alice="al\"ice";"#;

    #[test]
    fn plain_users_come_from_the_jaas_config() {
        let c = config(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ])
        .unwrap();
        let mut a = Authenticator::new();
        assert!(a.handshake(&c, "PLAIN"));
        let ok = |a: &mut Authenticator, token: &[u8]| match a.step(&c, token, |_, _| None) {
            Step::Done { principal, .. } => Some(principal),
            _ => None,
        };
        assert_eq!(
            ok(&mut a, b"\0alice\0al\"ice").as_deref(),
            Some("User:alice")
        );
        assert_eq!(
            ok(&mut a, b"admin\0admin\0admin-secret").as_deref(),
            Some("User:admin")
        );
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0x",
            b"other\0alice\0al\"ice",
            b"\0alice",
            b"\xff",
        ] {
            assert!(ok(&mut a, bad).is_none(), "{bad:?}");
        }
        assert!(!a.handshake(&c, "SCRAM-SHA-256"));
    }

    #[test]
    fn mechanisms_ferrolog_lacks_and_missing_users_stop_start_up() {
        for (pairs, needle) in [
            (vec![], "SASL mechanism GSSAPI"),
            (
                vec![("sasl.enabled.mechanisms", "PLAIN,GSSAPI")],
                "SASL mechanism GSSAPI",
            ),
            (
                vec![("sasl.enabled.mechanisms", "OAUTHBEARER")],
                "oauthbearer.sasl.jaas.config",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                    ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", OAUTH_JAAS),
                    (
                        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                    ),
                ],
                "needs sasl.oauthbearer.jwks.endpoint.url",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                    ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", OAUTH_JAAS),
                    (
                        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                    ),
                    ("sasl.oauthbearer.jwks.endpoint.url", "http://idp/jwks"),
                ],
                "a JWKS comes from a file:// or an https:// URL",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                    ("listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config", OAUTH_JAAS),
                    (
                        "listener.name.sasl_plaintext.oauthbearer.sasl.server.callback.handler.class",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
                    ),
                    (
                        "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
                        "file:///nonexistent/jwks.json",
                    ),
                ],
                "listener.name.sasl_plaintext.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "OAUTHBEARER"),
                    (
                        "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
                        "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredValidatorAllowableClockSkewMs=\"-1\";",
                    ),
                ],
                "unsecuredValidatorAllowableClockSkewMs",
            ),
            (
                vec![("sasl.enabled.mechanisms", "PLAIN")],
                "plain.sasl.jaas.config",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "PLAIN"),
                    (
                        "listener.name.sasl_plaintext.plain.sasl.jaas.config",
                        "x required;",
                    ),
                ],
                "the PLAIN login module is",
            ),
            (
                vec![
                    ("sasl.enabled.mechanisms", "PLAIN"),
                    ("listener.name.sasl_plaintext.plain.sasl.jaas.config", "x"),
                ],
                "ends with ';'",
            ),
        ] {
            let e = config(&pairs).unwrap_err().to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
        // the listener's own list wins
        let c = config(&[
            ("sasl.enabled.mechanisms", "GSSAPI"),
            (
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                "SCRAM-SHA-512",
            ),
        ])
        .unwrap();
        assert_eq!(c.mechanisms, [Mechanism::ScramSha512]);
    }

    #[test]
    fn oauthbearer_answers_a_refused_token_as_kafka_does() {
        use ferrolog_client::sasl::oauthbearer::{initial_response, unsecured_token, AFTER_ERROR};
        let c = config(&[
            ("sasl.enabled.mechanisms", "OAUTHBEARER"),
            (
                "listener.name.sasl_plaintext.oauthbearer.sasl.jaas.config",
                OAUTH_JAAS,
            ),
        ])
        .unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let claims = [("sub".to_string(), "alice".to_string())].into();
        let none = |_: &str, _| None;
        let mut a = Authenticator::new();
        assert!(a.handshake(&c, "OAUTHBEARER"));
        let good = initial_response(&unsecured_token(&claims, 60, now));
        match a.step(&c, &good, none) {
            Step::Done {
                principal,
                expires_ms,
                ..
            } => {
                assert_eq!(principal, "User:alice");
                assert_eq!(expires_ms, Some((now as i64 + 60) * 1000));
            }
            _ => panic!("a valid unsecured token authenticates"),
        }
        // expired: the error challenge, then the failure after the client's \x01
        let mut a = Authenticator::new();
        a.handshake(&c, "OAUTHBEARER");
        let expired = initial_response(&unsecured_token(&claims, 60, now - 120));
        let json = r#"{"status":"invalid_token"}"#;
        assert!(matches!(a.step(&c, &expired, none), Step::Challenge(t) if t == json.as_bytes()));
        assert!(matches!(a.step(&c, AFTER_ERROR, none), Step::Failed(m) if m == json));
        // an authorization id other than the token's principal, and garbage
        let mut a = Authenticator::new();
        a.handshake(&c, "OAUTHBEARER");
        let token = unsecured_token(&claims, 60, now);
        let other = format!("n,a=bob,\x01auth=Bearer {token}\x01\x01");
        assert!(
            matches!(a.step(&c, other.as_bytes(), none), Step::Failed(m) if m.contains("authorization id (bob)"))
        );
        assert!(
            matches!(a.step(&c, b"n,,\x01\x01", none), Step::Failed(m) if m.contains("invalid credentials"))
        );
        assert!(matches!(a.step(&c, AFTER_ERROR, none), Step::Failed(_)));
    }

    #[test]
    fn an_oauthbearer_login_makes_or_reads_its_token() {
        let module = "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule";
        let jaas = format!("{module} required unsecuredLoginStringClaim_sub=\"broker\" unsecuredLoginLifetimeSeconds=\"600\";");
        let c = login_credentials(Mechanism::OAuthBearer, "k", &jaas, None).unwrap();
        assert_eq!(c.username, "broker");
        let token = c.token.unwrap().token().unwrap();
        let v = super::super::oauth::Validator::unsecured_defaults();
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        assert_eq!(v.validate(&token, now_ms).unwrap().principal, "broker");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("token.jwt");
        std::fs::write(&path, format!("{token}\n")).unwrap();
        let url = ("u".to_string(), format!("file://{}", path.display()));
        let c = login_credentials(
            Mechanism::OAuthBearer,
            "k",
            &format!("{module} required;"),
            Some(url),
        )
        .unwrap();
        assert_eq!(c.token.unwrap().token().unwrap(), token);
        for (jaas, url, needle) in [
            (
                format!("{module} required;"),
                None,
                "unsecuredLoginStringClaim_sub",
            ),
            (
                format!("{module} required unsecuredLoginNumberClaim_n=\"1\";"),
                None,
                "not unsecuredLoginNumberClaim_n",
            ),
            (
                format!("{module} required;"),
                Some(("u".to_string(), "https://idp/token".to_string())),
                "file:// URLs only",
            ),
            ("x required;".to_string(), None, "OAUTHBEARER login module"),
        ] {
            let e = login_credentials(Mechanism::OAuthBearer, "k", &jaas, url)
                .unwrap_err()
                .to_string();
            assert!(e.contains(needle), "{needle}: {e}");
        }
    }

    fn credential(m: Mechanism, password: &str) -> ScramCredential {
        let salt = scram::random(16);
        let salted = scram::salted_password(m, password, &salt, 4096);
        let (stored_key, server_key) = scram::keys(m, &salted);
        ScramCredential {
            salt,
            stored_key,
            server_key,
            iterations: 4096,
        }
    }

    /// Runs a whole exchange with the real client; the principal, or the failure message.
    fn exchange(
        c: &SaslConfig,
        stored: &ScramCredential,
        user: &str,
        password: &str,
    ) -> Result<String, String> {
        let m = c.mechanisms[0];
        let creds = Credentials::password(m, user, password);
        let lookup = |u: &str, _| (u == "alice").then(|| stored.clone());
        let mut a = Authenticator::new();
        assert!(a.handshake(c, m.name()));
        let (mut client, first) = scram::Client::start(&creds);
        let server_first = match a.step(c, first.as_bytes(), lookup) {
            Step::Challenge(t) => String::from_utf8(t).unwrap(),
            Step::Failed(e) => return Err(e),
            Step::Done { .. } => panic!("done after the first message"),
        };
        let last = client.finish(&server_first).unwrap();
        match a.step(c, last.as_bytes(), lookup) {
            Step::Done {
                principal, token, ..
            } => {
                client.verify(std::str::from_utf8(&token).unwrap()).unwrap();
                Ok(principal)
            }
            Step::Failed(e) => Err(e),
            Step::Challenge(_) => panic!("a third round"),
        }
    }

    #[test]
    fn add_scram_takes_kafka_storage_syntax() {
        let (user, mechanism, credential) =
            parse_add_scram("SCRAM-SHA-512=[name=alice,password=\"alice-secret\",iterations=8192]")
                .unwrap();
        assert_eq!(user, "alice");
        assert_eq!(
            (mechanism, credential.iterations),
            (Mechanism::ScramSha512, 8192)
        );
        // the credential checks the password it was made from
        let c = config(&[("sasl.enabled.mechanisms", "SCRAM-SHA-512")]).unwrap();
        assert_eq!(
            exchange(&c, &credential, "alice", "alice-secret").unwrap(),
            "User:alice"
        );
        for bad in [
            "PLAIN=[name=a,password=b]",
            "SCRAM-SHA-256=[password=b]",
            "SCRAM-SHA-256=name=a,password=b",
            "SCRAM-SHA-256=[name=a,password=b,iterations=10]",
            "SCRAM-SHA-256=[name=a,password=b,salt=x]",
        ] {
            assert!(parse_add_scram(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn scram_accepts_the_password_and_fails_alike_for_a_wrong_one_or_an_unknown_user() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let c = config(&[("sasl.enabled.mechanisms", m.name())]).unwrap();
            let stored = credential(m, "alice-secret");
            assert_eq!(
                exchange(&c, &stored, "alice", "alice-secret").unwrap(),
                "User:alice"
            );
            let wrong = exchange(&c, &stored, "alice", "nope").unwrap_err();
            let unknown = exchange(&c, &stored, "mallory", "x").unwrap_err();
            assert_eq!(wrong, unknown);
            assert!(wrong.contains(m.name()), "{wrong}");
            // an unknown user is shown the same salt every time, as a known one is
            assert_eq!(fake_salt(m, "mallory"), fake_salt(m, "mallory"));
            assert_ne!(fake_salt(m, "mallory"), fake_salt(m, "trudy"));
        }
        // garbage at either step fails, never panics
        let c = config(&[("sasl.enabled.mechanisms", "SCRAM-SHA-256")]).unwrap();
        for token in [&b""[..], b"p=x,,n=a,r=b", b"n,,", b"n,,n=a", b"\xff\xfe"] {
            let mut a = Authenticator::new();
            a.handshake(&c, "SCRAM-SHA-256");
            assert!(
                matches!(a.step(&c, token, |_, _| None), Step::Failed(_)),
                "{token:?}"
            );
        }
    }
}
