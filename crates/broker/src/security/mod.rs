//! Security configuration: each listener's security protocol, from Kafka's
//! `listener.security.protocol.map`, and the refusal of every security setting ferrolog does not
//! implement yet.
//!
//! ferrolog serves PLAINTEXT, SSL ([`tls`]), SASL_PLAINTEXT and SASL_SSL ([`sasl`]) listeners
//! and authorizes requests by ACLs ([`acl`]). A configuration that asks for security it does not
//! implement (Kerberos, OAUTHBEARER, delegation tokens, custom principal builders) must not start
//! with less security than it asks for, so start-up stops with a message naming the key. A key set to Kafka's own default
//! asks for nothing and is accepted (Kafka's sample `server.properties` sets some of them).

pub mod acl;
pub mod oauth;
pub mod principal;
pub mod sasl;
pub mod tls;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{bail, Result};

use crate::config::{kafka_broker_key, Listener, Properties};

/// A listener's effective settings: `listener.name.<listener>.<key>` first, then `<key>`, then
/// Kafka's default.
pub struct ListenerKeys<'a> {
    properties: &'a Properties,
    prefix: String,
}

impl<'a> ListenerKeys<'a> {
    pub fn new(properties: &'a Properties, listener: &str) -> ListenerKeys<'a> {
        ListenerKeys {
            properties,
            prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
        }
    }

    /// The key as it was set (with or without the listener prefix) and its value, when set or
    /// defaulted to something non-empty.
    pub fn lookup(&self, key: &str) -> Option<(String, String)> {
        let prefixed = format!("{}{key}", self.prefix);
        let (name, value) = if let Some(v) = self.properties.get(&prefixed) {
            (prefixed, v.clone())
        } else if let Some(v) = self.properties.get(key) {
            (key.to_string(), v.clone())
        } else {
            let d = kafka_broker_key(key).and_then(|k| k.default)?;
            (key.to_string(), d.to_string())
        };
        let value = value.trim().to_string();
        (!value.is_empty()).then_some((name, value))
    }

    /// A setting of one SASL mechanism: `listener.name.<listener>.<mechanism>.<key>` first (as
    /// Kafka reads a mechanism's callback handler settings), then as [`ListenerKeys::lookup`].
    pub fn lookup_mechanism(
        &self,
        mechanism: ferrolog_client::sasl::Mechanism,
        key: &str,
    ) -> Option<(String, String)> {
        let name = format!(
            "{}{}.{key}",
            self.prefix,
            mechanism.name().to_ascii_lowercase()
        );
        match self.properties.get(&name).map(|v| v.trim()) {
            Some(v) if !v.is_empty() => Some((name, v.to_string())),
            _ => self.lookup(key),
        }
    }

    /// The value set under the listener's prefix only.
    pub fn prefixed(&self, key: &str) -> Option<String> {
        self.properties
            .get(&format!("{}{key}", self.prefix))
            .map(|v| v.trim().to_string())
            .filter(|v| !v.is_empty())
    }

    pub fn value(&self, key: &str) -> Option<String> {
        self.lookup(key).map(|(_, v)| v)
    }

    /// The name to quote in an error about `key`.
    pub fn name(&self, key: &str) -> String {
        self.lookup(key).map_or_else(|| key.to_string(), |(n, _)| n)
    }
}

/// The protocol `listener.security.protocol.map` (as effective in `properties`) gives
/// `listener`.
pub fn listener_protocol(properties: &Properties, listener: &str) -> Option<SecurityProtocol> {
    properties
        .get("listener.security.protocol.map")?
        .split(',')
        .filter_map(|e| e.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case(listener))
        .and_then(|(_, p)| SecurityProtocol::parse(p))
}

/// Kafka's security protocols.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

impl SecurityProtocol {
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        Some(match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => SecurityProtocol::Plaintext,
            "SSL" => SecurityProtocol::Ssl,
            "SASL_PLAINTEXT" => SecurityProtocol::SaslPlaintext,
            "SASL_SSL" => SecurityProtocol::SaslSsl,
            _ => return None,
        })
    }

    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

/// The controller listener's security, as its protocol (from `listener.security.protocol.map` for
/// the first of `controller.listener.names`) asks: how this node reaches the controllers (TLS, and
/// SASL with `sasl.mechanism.controller.protocol`), and on a controller what its listener asks
/// of those who connect, and the authorizer that decides their requests.
#[derive(Default)]
pub struct ControllerSecurity {
    pub client: ferrolog_client::Security,
    pub tls: Option<Arc<tls::ListenerTls>>,
    pub sasl: Option<Arc<sasl::SaslConfig>>,
    pub authorizer: Option<acl::Authorizer>,
}

impl std::fmt::Debug for ControllerSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControllerSecurity")
            .field("client", &self.client)
            .field("authorizer", &self.authorizer.is_some())
            .finish_non_exhaustive()
    }
}

impl ControllerSecurity {
    /// `name` is the controller listener; `serves`: this node binds it (a controller).
    pub fn from_properties(
        properties: &Properties,
        name: &str,
        protocol: SecurityProtocol,
        serves: bool,
    ) -> Result<ControllerSecurity> {
        let mut security = ControllerSecurity::default();
        if protocol.uses_tls() {
            security.client.tls = Some(tls::client_tls(properties, name)?);
            if serves {
                security.tls = Some(Arc::new(tls::listener_tls(properties, name)?));
            }
        }
        if protocol.uses_sasl() {
            security.client.sasl = Some(sasl::controller_credentials(properties, name)?);
            if serves {
                security.sasl = Some(Arc::new(sasl::sasl_config(properties, name)?));
            }
        }
        if serves {
            security.authorizer = acl::Authorizer::from_properties(properties)?;
        }
        Ok(security)
    }
}

const NOT_YET: &str = "ferrolog does not implement ACL authorization, custom principals or \
                       delegation tokens yet and will not start with less security than the \
                       configuration asks for";

/// The effective listener name → protocol map. As in Kafka: an explicit
/// `listener.security.protocol.map` is the whole map (a listener missing from it is an error);
/// without one, a listener named after a protocol uses it and the controller listeners are
/// PLAINTEXT.
fn protocol_map(
    map: Option<&str>,
    explicit: bool,
    controller_names: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>> {
    let mut out = BTreeMap::new();
    for entry in map.unwrap_or("").split(',').map(str::trim) {
        if entry.is_empty() {
            continue;
        }
        let Some((name, protocol)) = entry.split_once(':') else {
            bail!("Invalid value {entry} for configuration listener.security.protocol.map: expected LISTENER:PROTOCOL");
        };
        let Some(protocol) = SecurityProtocol::parse(protocol) else {
            bail!("Invalid value {entry} for configuration listener.security.protocol.map: {protocol} is not a security protocol (PLAINTEXT, SSL, SASL_PLAINTEXT, SASL_SSL)");
        };
        out.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    if !explicit {
        for p in [
            SecurityProtocol::Plaintext,
            SecurityProtocol::Ssl,
            SecurityProtocol::SaslPlaintext,
            SecurityProtocol::SaslSsl,
        ] {
            out.entry(p.name().to_string()).or_insert(p);
        }
        for c in controller_names {
            out.entry(c.to_ascii_uppercase())
                .or_insert(SecurityProtocol::Plaintext);
        }
    }
    Ok(out)
}

/// Checks the security protocol of every listener (bound and advertised) and of inter-broker
/// traffic: each must be one ferrolog serves (PLAINTEXT or SSL). `raw` is the configuration as given
/// (`security.inter.broker.protocol` is a Kafka key ferrolog has no entry of its own for),
/// `properties` the effective values.
/// Returns the effective listener name → protocol map.
pub fn check_listeners(
    raw: &Properties,
    properties: &Properties,
    listeners: &[(&str, &[Listener])],
    controller_names: &[String],
) -> Result<BTreeMap<String, SecurityProtocol>> {
    let map = protocol_map(
        properties
            .get("listener.security.protocol.map")
            .map(String::as_str),
        raw.contains_key("listener.security.protocol.map"),
        controller_names,
    )?;
    for (key, listeners) in listeners {
        for l in listeners.iter() {
            let Some(&protocol) = map.get(&l.name.to_ascii_uppercase()) else {
                bail!(
                    "Invalid value for configuration {key}: no security protocol defined for listener {} (listener.security.protocol.map)",
                    l.name
                );
            };
            let _ = protocol; // every protocol is served: PLAINTEXT, SSL, SASL_*
        }
    }
    if let Some(name) = raw.get("inter.broker.listener.name") {
        if raw.contains_key("security.inter.broker.protocol") {
            bail!("Only one of inter.broker.listener.name and security.inter.broker.protocol should be set.");
        }
        let bound = listeners
            .iter()
            .find(|(key, _)| *key == "listeners")
            .map(|(_, l)| *l)
            .unwrap_or_default();
        if !bound.iter().any(|l| l.name.eq_ignore_ascii_case(name)) {
            bail!("Invalid value {name} for configuration inter.broker.listener.name: it must be a listener name in listeners");
        }
    }
    if let Some(p) = raw.get("security.inter.broker.protocol") {
        if SecurityProtocol::parse(p).is_none() {
            bail!("Invalid value {p} for configuration security.inter.broker.protocol: not a security protocol");
        }
    }
    Ok(map)
}

/// How a command-line tool connects, from a Kafka client properties file (the
/// `--command-config` of Kafka's tools): `security.protocol`, the `ssl.*` trust and key
/// stores, `sasl.mechanism` and the username and password of `sasl.jaas.config`.
pub fn client_security(properties: &Properties) -> Result<ferrolog_client::Security> {
    let protocol = match properties.get("security.protocol") {
        None => SecurityProtocol::Plaintext,
        Some(p) => SecurityProtocol::parse(p).ok_or_else(|| {
            anyhow::anyhow!("Invalid value {p} for configuration security.protocol")
        })?,
    };
    let mut security = ferrolog_client::Security::default();
    if protocol.uses_tls() {
        security.tls = Some(tls::client_tls(properties, "client")?);
    }
    if protocol.uses_sasl() {
        let name = properties
            .get("sasl.mechanism")
            .map(String::as_str)
            .unwrap_or("GSSAPI");
        let mechanism = ferrolog_client::sasl::Mechanism::parse(name).ok_or_else(|| {
            anyhow::anyhow!("Invalid value {name} for configuration sasl.mechanism: ferrolog's tools speak PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER")
        })?;
        let text = properties.get("sasl.jaas.config").ok_or_else(|| {
            anyhow::anyhow!(
                "{} needs sasl.jaas.config (the login module and its options)",
                protocol.name()
            )
        })?;
        let token_url = properties
            .get("sasl.oauthbearer.token.endpoint.url")
            .map(|v| ("sasl.oauthbearer.token.endpoint.url".to_string(), v.clone()));
        security.sasl = Some(sasl::login_credentials(
            mechanism,
            "sasl.jaas.config",
            text,
            token_url,
        )?);
    }
    Ok(security)
}

/// The SASL keys [`sasl`] reads (the JAAS config only under a listener and mechanism prefix).
const SASL_IMPLEMENTED: &[&str] = &[
    "sasl.enabled.mechanisms",
    "sasl.mechanism.inter.broker.protocol",
    "sasl.mechanism.controller.protocol",
    // the JWKS validator's settings (oauth::Validator)
    "sasl.oauthbearer.jwks.endpoint.url",
    "sasl.oauthbearer.expected.audience",
    "sasl.oauthbearer.expected.issuer",
    "sasl.oauthbearer.clock.skew.seconds",
    "sasl.oauthbearer.sub.claim.name",
    "sasl.oauthbearer.scope.claim.name",
    // an https:// JWKS's refresh and retries (oauth::KeySet)
    "sasl.oauthbearer.jwks.endpoint.refresh.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.ms",
    "sasl.oauthbearer.jwks.endpoint.retry.backoff.max.ms",
    // a broker's own token towards the others (sasl::login_credentials)
    "sasl.oauthbearer.token.endpoint.url",
];

/// Whether `name` configures security ferrolog lacks (SASL settings beyond PLAIN and SCRAM,
/// custom principals, delegation tokens). The `ssl.*` keys are implemented: [`tls`] reads and checks them
/// for each TLS listener.
fn is_security_key(name: &str) -> bool {
    (name.starts_with("sasl.") && !SASL_IMPLEMENTED.contains(&name))
        || name.starts_with("delegation.token.")
        || matches!(
            name,
            "principal.builder.class"
                | "security.providers"
                // Java TLS plumbing rustls has no counterpart for
                | "ssl.engine.factory.class"
                | "ssl.provider"
                | "ssl.secure.random.implementation"
        )
}

/// Refuses a key set at start-up that asks for security ferrolog does not implement, or a
/// per-listener override (`listener.name.<listener>.<key>`) other than the `ssl.*` ones.
/// `None` if the key asks for nothing ferrolog lacks.
pub fn refuse_unimplemented(name: &str, value: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("listener.name.") {
        let key = rest.split_once('.').map_or(rest, |(_, k)| k);
        // a listener's own connection limits
        if matches!(
            key,
            crate::connections::MAX_CONNECTIONS | crate::connections::CREATION_RATE
        ) {
            return None;
        }
        // `<mechanism>.sasl.jaas.config`: a listener's JAAS entry for one mechanism
        let jaas = key
            .strip_suffix(".sasl.jaas.config")
            .is_some_and(|m| ferrolog_client::sasl::Mechanism::parse(m).is_some());
        if jaas {
            return None;
        }
        // `<mechanism>.sasl.…`: a setting of one mechanism on the listener
        if let Some((m, k)) = key.split_once('.').filter(|(m, k)| {
            ferrolog_client::sasl::Mechanism::parse(m).is_some() && k.starts_with("sasl.")
        }) {
            let validator = m.eq_ignore_ascii_case("oauthbearer")
                && k == "sasl.server.callback.handler.class"
                && oauth::VALIDATOR_CLASSES.contains(&value.trim());
            if validator {
                return None;
            }
            return refuse_unimplemented(k, value).map(|why| why.replacen(k, name, 1));
        }
        if key.starts_with("ssl.") || key.starts_with("sasl.") {
            return refuse_unimplemented(key, value).map(|why| why.replacen(key, name, 1));
        }
        let why = if is_security_key(key) {
            NOT_YET
        } else {
            "ferrolog does not implement per-listener configs (listener.name.<listener>.<config>) other than ssl.*, sasl.enabled.mechanisms, <mechanism>.sasl.jaas.config, max.connections and max.connection.creation.rate yet"
        };
        return Some(format!("Configuration {name} is not supported: {why}"));
    }
    if !is_security_key(name) {
        return None;
    }
    let default = kafka_broker_key(name).and_then(|k| k.default);
    let same_as_default = match default {
        // lists compare element by element (`TLSv1.2, TLSv1.3` is the default too)
        Some(d) => {
            let norm = |s: &str| -> Vec<String> {
                s.split(',')
                    .map(|e| e.trim().to_ascii_lowercase())
                    .filter(|e| !e.is_empty())
                    .collect()
            };
            norm(d) == norm(value)
        }
        // a key without a default (a keystore, a JAAS config) asks for something when set
        None => value.trim().is_empty(),
    };
    let login_handler =
        name == "sasl.login.callback.handler.class" && oauth::LOGIN_CLASSES.contains(&value.trim());
    // what ferrolog's JWKS validator is (Kafka's default picks it only with a key resolver)
    let broker_validator = name == "sasl.oauthbearer.jwt.validator.class"
        && value.trim() == oauth::BROKER_JWT_VALIDATOR;
    if same_as_default || login_handler || broker_validator {
        return None;
    }
    let why = if name == "sasl.jaas.config" {
        "a broker reads its JAAS entries as listener.name.<listener>.<mechanism>.sasl.jaas.config"
    } else if name.starts_with("sasl.") {
        "ferrolog does not implement this SASL setting: it has PLAIN, SCRAM and OAUTHBEARER (Kafka's validators, tokens from files), no Kerberos and no other login or callback handler classes"
    } else if name.starts_with("ssl.") {
        "ferrolog's TLS is rustls; Java TLS providers, engines and random sources do not apply"
    } else {
        NOT_YET
    };
    Some(format!(
        "Invalid value {} for configuration {name}: {why}",
        if kafka_broker_key(name).is_some_and(|k| k.kind == crate::config::ConfigType::Password)
            || name.ends_with(".jaas.config")
        {
            "[hidden]"
        } else {
            value
        }
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listener(name: &str) -> Listener {
        Listener {
            name: name.into(),
            host: "127.0.0.1".into(),
            port: 9092,
        }
    }

    fn check(raw: &[(&str, &str)], names: &[&str]) -> Result<()> {
        let raw: Properties = raw
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut properties = raw.clone();
        properties
            .entry("listener.security.protocol.map".into())
            .or_insert_with(|| "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".into());
        let bound: Vec<Listener> = names.iter().map(|n| listener(n)).collect();
        check_listeners(
            &raw,
            &properties,
            &[("listeners", &bound)],
            &["CONTROLLER".to_string()],
        )
        .map(|_| ())
    }

    #[test]
    fn listener_protocols_come_from_the_map_as_in_kafka() {
        for name in ["PLAINTEXT", "SSL", "SASL_SSL", "SASL_PLAINTEXT"] {
            check(&[], &[name, "CONTROLLER"]).unwrap();
        }
        let raw: Properties = [(
            "listener.security.protocol.map".to_string(),
            "CLIENTS:SASL_SSL,CONTROLLER:PLAINTEXT".to_string(),
        )]
        .into();
        let map = check_listeners(
            &raw,
            &raw,
            &[("listeners", &[listener("CLIENTS")])],
            &["CONTROLLER".to_string()],
        )
        .unwrap();
        assert_eq!(map["CLIENTS"], SecurityProtocol::SaslSsl);
        // an explicit map must name every listener
        let err = check(
            &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")],
            &["PLAINTEXT", "INTERNAL"],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no security protocol defined for listener INTERNAL"));
        let err = check(&[("security.inter.broker.protocol", "TLS")], &["PLAINTEXT"])
            .unwrap_err()
            .to_string();
        assert!(err.contains("not a security protocol"), "{err}");
        assert!(check(
            &[("inter.broker.listener.name", "INTERNAL")],
            &["PLAINTEXT"]
        )
        .is_err());
    }

    #[test]
    fn security_keys_are_refused_unless_they_ask_for_nothing() {
        for (name, value) in [
            ("sasl.kerberos.service.name", "kafka"),
            ("sasl.jaas.config", "x"),
            (
                "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class",
                "com.example.MyValidator",
            ),
            ("sasl.login.callback.handler.class", "com.example.MyLogin"),
            (
                "sasl.oauthbearer.jwt.validator.class",
                "org.apache.kafka.common.security.oauthbearer.ClientJwtValidator",
            ),
            ("sasl.server.callback.handler.class", "com.example.MyServer"),
            ("listener.name.sasl_ssl.gssapi.sasl.jaas.config", "x"),
            ("listener.name.internal.num.network.threads", "10"),
        ] {
            let why = refuse_unimplemented(name, value).expect(name);
            assert!(why.contains(name), "{why}");
        }
        // the JAAS config and passwords are never echoed
        let why = refuse_unimplemented("sasl.jaas.config", "secret-pass").unwrap();
        assert!(!why.contains("secret-pass"), "{why}");
        // Kafka's defaults ask for nothing
        for (name, value) in [
            // TLS is implemented: the listener's TLS set-up reads and checks these
            ("ssl.keystore.location", "/etc/kafka/broker.p12"),
            ("ssl.client.auth", "required"),
            (
                "listener.name.ssl.ssl.keystore.location",
                "/etc/kafka/broker.p12",
            ),
            ("ssl.client.auth", "none"),
            ("ssl.enabled.protocols", "TLSv1.2, TLSv1.3"),
            ("sasl.enabled.mechanisms", "GSSAPI"),
            // OAUTHBEARER with Kafka's validators
            (
                "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class",
                "org.apache.kafka.common.security.oauthbearer.OAuthBearerValidatorCallbackHandler",
            ),
            (
                "listener.name.sasl_ssl.oauthbearer.sasl.oauthbearer.jwks.endpoint.url",
                "file:///etc/kafka/jwks.json",
            ),
            ("sasl.oauthbearer.expected.audience", "kafka"),
            (
                "sasl.oauthbearer.jwt.validator.class",
                "org.apache.kafka.common.security.oauthbearer.BrokerJwtValidator",
            ),
            ("listener.name.sasl_ssl.oauthbearer.sasl.jaas.config", "x"),
            // the authorizer is implemented (acl::Authorizer checks its keys)
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("allow.everyone.if.no.acl.found", "false"),
            ("super.users", "User:admin"),
            ("connections.max.reauth.ms", "0"),
            ("num.partitions", "3"),
        ] {
            assert_eq!(refuse_unimplemented(name, value), None, "{name}={value}");
        }
    }
}
