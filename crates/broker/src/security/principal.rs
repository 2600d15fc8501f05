//! Who a connection is: the distinguished name of a TLS client certificate, written as Kafka
//! writes it (RFC 2253, most specific name first), and mapped to a user name by Kafka's
//! `ssl.principal.mapping.rules`.

use anyhow::{anyhow, bail, Result};
use regex::Regex;
use x509_parser::der_parser::asn1_rs::Tag;
use x509_parser::oid_registry::Oid;

/// The principal of a connection that has not authenticated (Kafka's `User:ANONYMOUS`).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// The subject of a DER certificate in RFC 2253 form (`CN=client,OU=eng,O=Acme,C=US`).
pub fn subject_dn(certificate: &[u8]) -> Result<String> {
    let (_, cert) = x509_parser::parse_x509_certificate(certificate)
        .map_err(|e| anyhow!("client certificate: {e}"))?;
    let rdns: Vec<_> = cert.subject().iter().collect();
    let mut out = String::new();
    // RFC 2253 writes the last RDN of the sequence first
    for (i, rdn) in rdns.iter().rev().enumerate() {
        if i > 0 {
            out.push(',');
        }
        for (j, attribute) in rdn.iter().enumerate() {
            if j > 0 {
                out.push('+');
            }
            match keyword(attribute.attr_type()) {
                Some(keyword) => {
                    out.push_str(keyword);
                    out.push('=');
                    match attribute.as_str() {
                        Ok(value) => escape(value, &mut out),
                        Err(_) => hex_der(attribute.attr_value(), &mut out),
                    }
                }
                None => {
                    out.push_str(&attribute.attr_type().to_id_string());
                    out.push('=');
                    hex_der(attribute.attr_value(), &mut out);
                }
            }
        }
    }
    Ok(out)
}

/// The attribute keywords RFC 2253 names; every other type is written as its OID.
fn keyword(oid: &Oid) -> Option<&'static str> {
    Some(match oid.to_id_string().as_str() {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "2.5.4.9" => "STREET",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

fn escape(value: &str, out: &mut String) {
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
}

/// `#` and the value's DER encoding in hex, as RFC 2253 writes a value it has no string for.
fn hex_der(value: &x509_parser::der_parser::asn1_rs::Any, out: &mut String) {
    let data = value.data;
    let mut der = vec![tag_byte(value.tag(), value.header.is_constructed())];
    if data.len() < 0x80 {
        der.push(data.len() as u8);
    } else {
        let len = (data.len() as u64).to_be_bytes();
        let significant: Vec<u8> = len.iter().copied().skip_while(|b| *b == 0).collect();
        der.push(0x80 | significant.len() as u8);
        der.extend(significant);
    }
    der.extend_from_slice(data);
    out.push('#');
    for b in der {
        out.push_str(&format!("{b:02x}"));
    }
}

fn tag_byte(tag: Tag, constructed: bool) -> u8 {
    (tag.0 as u8 & 0x1f) | if constructed { 0x20 } else { 0 }
}

/// Kafka's `ssl.principal.mapping.rules`: `DEFAULT` (the DN as is) and
/// `RULE:pattern/replacement/[LU]`, tried in order; the first whose pattern matches the whole
/// DN gives the user name. No rule matching fails the authentication, as in Kafka.
#[derive(Debug, Clone)]
pub struct PrincipalMapper {
    rules: Vec<Rule>,
    text: String,
}

#[derive(Debug, Clone)]
enum Rule {
    Default,
    Replace {
        whole: Regex,
        pattern: Regex,
        replacement: String,
        case: Case,
    },
}

#[derive(Debug, Clone, Copy)]
enum Case {
    Keep,
    Lower,
    Upper,
}

impl PrincipalMapper {
    pub fn parse(text: &str) -> Result<PrincipalMapper> {
        let mut rules = Vec::new();
        let mut rest = text.trim_start();
        while !rest.is_empty() {
            let (rule, after) = if let Some(after) = rest.strip_prefix("DEFAULT") {
                (Rule::Default, after)
            } else if let Some(after) = rest.strip_prefix("RULE:") {
                let (pattern, after) = until_slash(after)
                    .ok_or_else(|| invalid(text, "a RULE needs pattern/replacement/"))?;
                let (replacement, after) = until_slash(after)
                    .ok_or_else(|| invalid(text, "a RULE needs pattern/replacement/"))?;
                let (case, after) = match after.chars().next() {
                    Some('L') => (Case::Lower, &after[1..]),
                    Some('U') => (Case::Upper, &after[1..]),
                    _ => (Case::Keep, after),
                };
                let compile = |p: &str| {
                    Regex::new(p).map_err(|e| invalid(text, &format!("pattern {pattern}: {e}")))
                };
                (
                    Rule::Replace {
                        whole: compile(&format!("^(?:{pattern})$"))?,
                        pattern: compile(pattern)?,
                        replacement: java_replacement(replacement),
                        case,
                    },
                    after,
                )
            } else {
                return Err(invalid(text, &format!("unexpected {rest:?}")));
            };
            rules.push(rule);
            let after = after.trim_start_matches([' ', '\t']);
            rest = match after.chars().next() {
                None => "",
                Some(',') | Some('\n') => after[1..].trim_start(),
                Some(_) => return Err(invalid(text, &format!("unexpected {after:?}"))),
            };
        }
        if rules.is_empty() {
            bail!("Invalid value {text} for configuration ssl.principal.mapping.rules: no rule");
        }
        Ok(PrincipalMapper {
            rules,
            text: text.to_string(),
        })
    }

    /// The user name for a certificate's DN, or an error when no rule applies.
    pub fn map(&self, dn: &str) -> Result<String> {
        for rule in &self.rules {
            match rule {
                Rule::Default => return Ok(dn.to_string()),
                Rule::Replace {
                    whole,
                    pattern,
                    replacement,
                    case,
                } if whole.is_match(dn) => {
                    let name = pattern.replace_all(dn, replacement.as_str()).into_owned();
                    return Ok(match case {
                        Case::Keep => name,
                        Case::Lower => name.to_lowercase(),
                        Case::Upper => name.to_uppercase(),
                    });
                }
                Rule::Replace { .. } => {}
            }
        }
        bail!("No rules apply to {dn}, rules {}", self.text)
    }
}

fn invalid(text: &str, why: &str) -> anyhow::Error {
    anyhow!("Invalid value {text} for configuration ssl.principal.mapping.rules: {why}")
}

/// The text up to an unescaped `/`, and what follows that slash.
fn until_slash(s: &str) -> Option<(&str, &str)> {
    let mut escaped = false;
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' => escaped = true,
            '/' => return Some((&s[..i], &s[i + 1..])),
            _ => {}
        }
    }
    None
}

/// A Java regex replacement (`$1`, `\$`) in the regex crate's syntax (`${1}`, `$$`).
fn java_replacement(java: &str) -> String {
    let mut out = String::new();
    let mut chars = java.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('$') => out.push_str("$$"),
                Some(other) => out.push(other),
                None => {}
            },
            '$' if chars.peek().is_some_and(|d| d.is_ascii_digit()) => {
                out.push_str("${");
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    out.push(d);
                    chars.next();
                }
                out.push('}');
            }
            '$' => out.push_str("$$"),
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mapping_rules_as_kafka_documents_them() {
        let m = PrincipalMapper::parse(
            "RULE:^CN=(.*?),OU=ServiceUsers.*$/$1/,\nRULE:^CN=(.*?),OU=(.*?),O=(.*?),L=(.*?),ST=(.*?),C=(.*?)$/$1@$2/L, RULE:^.*[Cc][Nn]=([a-zA-Z0-9.]*).*$/$1/U, DEFAULT",
        )
        .unwrap();
        assert_eq!(
            m.map("CN=kafka-client,OU=ServiceUsers,O=Acme,C=US")
                .unwrap(),
            "kafka-client"
        );
        assert_eq!(
            m.map("CN=Duke,OU=JavaSoft,O=Sun Microsystems,L=Santa Clara,ST=CA,C=US")
                .unwrap(),
            "duke@javasoft"
        );
        assert_eq!(m.map("OU=x,cn=abc.d,O=y").unwrap(), "ABC.D");
        assert_eq!(m.map("O=only").unwrap(), "O=only");
        assert_eq!(
            PrincipalMapper::parse("DEFAULT")
                .unwrap()
                .map("CN=a,O=b")
                .unwrap(),
            "CN=a,O=b"
        );
    }

    #[test]
    fn no_matching_rule_fails_and_bad_rules_are_refused() {
        let m = PrincipalMapper::parse("RULE:^CN=(.*)$/$1/").unwrap();
        assert_eq!(m.map("CN=a").unwrap(), "a");
        assert!(m
            .map("O=b")
            .unwrap_err()
            .to_string()
            .contains("No rules apply to O=b"));
        for bad in ["RULE:^CN=(.*)$/$1", "RULE:(/x/", "OTHER", ""] {
            assert!(PrincipalMapper::parse(bad).is_err(), "{bad}");
        }
        // an escaped slash is part of the pattern, a literal dollar of the replacement
        let m = PrincipalMapper::parse(r"RULE:^CN=a\/b$/\$x/").unwrap();
        assert_eq!(m.map("CN=a/b").unwrap(), "$x");
    }

    #[test]
    fn values_are_escaped_as_rfc_2253_says() {
        let mut out = String::new();
        escape(" a,b+c\"d\\e<f>g;h ", &mut out);
        assert_eq!(out, r#"\ a\,b\+c\"d\\e\<f\>g\;h\ "#);
        let mut out = String::new();
        escape("#x", &mut out);
        assert_eq!(out, r"\#x");
    }
}
