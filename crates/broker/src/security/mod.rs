//! Security configuration: each listener's security protocol, from Kafka's
//! `listener.security.protocol.map`, and the refusal of every security setting ferrolog does not
//! implement yet.
//!
//! ferrolog serves PLAINTEXT and SSL listeners ([`tls`]); SASL and the authorizer are not
//! implemented. A configuration that asks for them must not start with less security than it
//! asks for, so start-up stops with a message naming the key. A key set to Kafka's own default
//! asks for nothing and is accepted (Kafka's sample `server.properties` sets some of them).

pub mod principal;
pub mod tls;

use std::collections::BTreeMap;

use anyhow::{bail, Result};

use crate::config::{kafka_broker_key, Listener, Properties};

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

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }
}

const NOT_YET: &str = "ferrolog does not implement SASL or ACL authorization yet and will not \
                       start with less security than the configuration asks for";

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
            if !matches!(
                protocol,
                SecurityProtocol::Plaintext | SecurityProtocol::Ssl
            ) {
                bail!(
                    "Invalid value {}://{}:{} for configuration {key}: listener {} uses security protocol {}; {NOT_YET}",
                    l.name,
                    l.host,
                    l.port,
                    l.name,
                    protocol.name()
                );
            }
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
        match SecurityProtocol::parse(p) {
            Some(SecurityProtocol::Plaintext | SecurityProtocol::Ssl) => {}
            Some(other) => bail!(
                "Invalid value {p} for configuration security.inter.broker.protocol: {} between brokers; {NOT_YET}",
                other.name()
            ),
            None => bail!("Invalid value {p} for configuration security.inter.broker.protocol: not a security protocol"),
        }
    }
    Ok(map)
}

/// Whether `name` configures security ferrolog lacks (SASL, custom principals, delegation
/// tokens, the authorizer). The `ssl.*` keys are implemented: [`tls`] reads and checks them
/// for each TLS listener.
fn is_security_key(name: &str) -> bool {
    name.starts_with("sasl.")
        || name.starts_with("delegation.token.")
        || matches!(
            name,
            "authorizer.class.name"
                | "super.users"
                | "allow.everyone.if.no.acl.found"
                | "principal.builder.class"
                | "connections.max.reauth.ms"
                | "security.providers"
                // Java TLS plumbing rustls has no counterpart for
                | "ssl.engine.factory.class"
                | "ssl.provider"
                | "ssl.secure.random.implementation"
                // what a dynamic key store update may change: ferrolog checks neither yet
                | "ssl.allow.dn.changes"
                | "ssl.allow.san.changes"
        )
}

/// Refuses a key set at start-up that asks for security ferrolog does not implement, or a
/// per-listener override (`listener.name.<listener>.<key>`) other than the `ssl.*` ones.
/// `None` if the key asks for nothing ferrolog lacks.
pub fn refuse_unimplemented(name: &str, value: &str) -> Option<String> {
    if let Some(rest) = name.strip_prefix("listener.name.") {
        let key = rest.split_once('.').map_or(rest, |(_, k)| k);
        if key.starts_with("ssl.") {
            return refuse_unimplemented(key, value).map(|why| why.replacen(key, name, 1));
        }
        let why = if is_security_key(key) {
            NOT_YET
        } else {
            "ferrolog does not implement per-listener configs (listener.name.<listener>.<config>) other than ssl.* yet"
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
        // a key without a default (a keystore, a JAAS config) asks for something when set;
        // `authorizer.class.name`'s default is empty, handled above by the table
        None => value.trim().is_empty() && name != "super.users",
    };
    if same_as_default {
        return None;
    }
    let why = if name.starts_with("ssl.allow.") {
        "ferrolog does not reload key stores at run time yet, so it checks no changes"
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
    fn a_listener_asking_for_tls_or_sasl_stops_start_up() {
        check(&[], &["PLAINTEXT", "CONTROLLER"]).unwrap();
        check(&[], &["SSL", "CONTROLLER"]).unwrap();
        for name in ["SASL_SSL", "SASL_PLAINTEXT"] {
            let err = check(&[], &[name]).unwrap_err().to_string();
            assert!(err.contains(&format!("security protocol {name}")), "{err}");
            assert!(err.contains("for configuration listeners"), "{err}");
        }
        // a custom name mapped to a secure protocol
        let err = check(
            &[(
                "listener.security.protocol.map",
                "CLIENTS:SASL_SSL,CONTROLLER:PLAINTEXT",
            )],
            &["CLIENTS"],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("listener CLIENTS uses security protocol SASL_SSL"));
        // an explicit map must name every listener
        let err = check(
            &[("listener.security.protocol.map", "PLAINTEXT:PLAINTEXT")],
            &["PLAINTEXT", "INTERNAL"],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("no security protocol defined for listener INTERNAL"));
    }

    #[test]
    fn inter_broker_sasl_is_refused() {
        let err = check(
            &[("security.inter.broker.protocol", "SASL_SSL")],
            &["PLAINTEXT"],
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("security.inter.broker.protocol"), "{err}");
        check(
            &[("security.inter.broker.protocol", "PLAINTEXT")],
            &["PLAINTEXT"],
        )
        .unwrap();
        check(
            &[("inter.broker.listener.name", "PLAINTEXT")],
            &["PLAINTEXT"],
        )
        .unwrap();
        assert!(check(
            &[("inter.broker.listener.name", "INTERNAL")],
            &["PLAINTEXT"]
        )
        .is_err());
    }

    #[test]
    fn security_keys_are_refused_unless_they_ask_for_nothing() {
        for (name, value) in [
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            (
                "authorizer.class.name",
                "org.apache.kafka.metadata.authorizer.StandardAuthorizer",
            ),
            ("allow.everyone.if.no.acl.found", "false"),
            ("super.users", "User:admin"),
            ("listener.name.sasl_ssl.plain.sasl.jaas.config", "x"),
            ("listener.name.internal.max.connections", "10"),
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
            ("authorizer.class.name", ""),
            ("connections.max.reauth.ms", "0"),
            ("num.partitions", "3"),
        ] {
            assert_eq!(refuse_unimplemented(name, value), None, "{name}={value}");
        }
    }
}
