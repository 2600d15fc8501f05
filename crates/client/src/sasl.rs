//! SASL mechanisms: PLAIN (RFC 4616), SCRAM-SHA-256 / SCRAM-SHA-512 (RFC 5802, RFC 7677) and
//! OAUTHBEARER (RFC 7628), the client side of their exchanges and the key derivation both sides
//! share.

use std::collections::BTreeMap;

use anyhow::{anyhow, bail, Result};
use base64ct::{Base64, Encoding};
use ring::{digest, hmac, pbkdf2, rand::SecureRandom};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mechanism {
    Plain,
    ScramSha256,
    ScramSha512,
    OAuthBearer,
}

impl Mechanism {
    pub const ALL: [Mechanism; 4] = [
        Mechanism::Plain,
        Mechanism::ScramSha256,
        Mechanism::ScramSha512,
        Mechanism::OAuthBearer,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::ScramSha256 => "SCRAM-SHA-256",
            Mechanism::ScramSha512 => "SCRAM-SHA-512",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    pub fn parse(name: &str) -> Option<Mechanism> {
        Mechanism::ALL
            .into_iter()
            .find(|m| m.name().eq_ignore_ascii_case(name.trim()))
    }

    /// The SCRAM mechanism's number in AlterUserScramCredentials / DescribeUserScramCredentials.
    pub fn scram_type(self) -> Option<i8> {
        match self {
            Mechanism::Plain | Mechanism::OAuthBearer => None,
            Mechanism::ScramSha256 => Some(1),
            Mechanism::ScramSha512 => Some(2),
        }
    }

    pub fn from_scram_type(t: i8) -> Option<Mechanism> {
        match t {
            1 => Some(Mechanism::ScramSha256),
            2 => Some(Mechanism::ScramSha512),
            _ => None,
        }
    }
}

/// What a client authenticates with: a user name and password (PLAIN, SCRAM), or for
/// OAUTHBEARER where its token comes from (`username` is then the principal it expects).
#[derive(Clone)]
pub struct Credentials {
    pub mechanism: Mechanism,
    pub username: String,
    pub password: String,
    pub token: Option<oauthbearer::TokenSource>,
}

impl Credentials {
    pub fn password(mechanism: Mechanism, username: &str, password: &str) -> Credentials {
        Credentials {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            token: None,
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// The client side of one exchange after the handshake, sans I/O: [`ClientExchange::start`]
/// gives the first token, [`ClientExchange::next`] the token that answers each server reply,
/// until it says the exchange is done. A failure the server reports arrives as an error of the
/// request carrying the token, outside this machine.
pub struct ClientExchange {
    state: ClientState,
}

enum ClientState {
    Plain,
    ScramFirst(scram::Client),
    ScramFinal(scram::Client),
    OAuth,
    /// The server's error challenge, acknowledged with `\x01`.
    OAuthRefused(String),
}

impl ClientExchange {
    pub fn start(c: &Credentials) -> Result<(ClientExchange, Vec<u8>)> {
        let (state, first) = match c.mechanism {
            Mechanism::Plain => (ClientState::Plain, plain_message(c)),
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let (client, first) = scram::Client::start(c);
                (ClientState::ScramFirst(client), first.into_bytes())
            }
            Mechanism::OAuthBearer => {
                let token = c
                    .token
                    .as_ref()
                    .ok_or_else(|| anyhow!("OAUTHBEARER needs a token"))?
                    .token()?;
                (ClientState::OAuth, oauthbearer::initial_response(&token))
            }
        };
        Ok((ClientExchange { state }, first))
    }

    /// The server's reply to the last token: the next token to send, `None` when done.
    pub fn next(&mut self, reply: &[u8]) -> Result<Option<Vec<u8>>> {
        let text = || String::from_utf8_lossy(reply).into_owned();
        match std::mem::replace(&mut self.state, ClientState::Plain) {
            ClientState::Plain => Ok(None),
            ClientState::ScramFirst(mut client) => {
                let last = client.finish(&text())?;
                self.state = ClientState::ScramFinal(client);
                Ok(Some(last.into_bytes()))
            }
            ClientState::ScramFinal(client) => client.verify(&text()).map(|_| None),
            ClientState::OAuth if reply.is_empty() => Ok(None),
            ClientState::OAuth => {
                self.state = ClientState::OAuthRefused(text());
                Ok(Some(oauthbearer::AFTER_ERROR.to_vec()))
            }
            ClientState::OAuthRefused(why) => bail!("the broker refused the OAuth token: {why}"),
        }
    }
}

/// The PLAIN message: authorization id (empty), user name, password, NUL separated.
pub fn plain_message(c: &Credentials) -> Vec<u8> {
    format!("\0{}\0{}", c.username, c.password).into_bytes()
}

/// OAUTHBEARER's client side: the initial response carrying the token, and the tokens a client
/// can present without an identity provider.
pub mod oauthbearer {
    use super::*;
    use base64ct::Base64UrlUnpadded;

    /// Where a bearer token comes from, read again for every connection (tokens expire).
    #[derive(Debug, Clone)]
    pub enum TokenSource {
        /// An unsecured JWS (`alg: none`) with these claims, as Kafka's
        /// `unsecuredLoginStringClaim_<name>` options make one; valid for `lifetime_s`.
        Unsecured {
            claims: BTreeMap<String, String>,
            lifetime_s: u64,
        },
        /// A JWT in a file (Kafka's `sasl.oauthbearer.token.endpoint.url=file://…`).
        File(std::path::PathBuf),
    }

    impl TokenSource {
        pub fn token(&self) -> Result<String> {
            match self {
                TokenSource::Unsecured { claims, lifetime_s } => {
                    Ok(unsecured_token(claims, *lifetime_s, now_s()))
                }
                TokenSource::File(path) => std::fs::read_to_string(path)
                    .map(|t| t.trim().to_string())
                    .map_err(|e| anyhow!("reading the OAuth token {}: {e}", path.display())),
            }
        }
    }

    fn now_s() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs())
    }

    /// An unsecured JWS: `{"alg":"none"}`, the claims (strings, `iat` and `exp` in seconds), no
    /// signature.
    pub fn unsecured_token(
        claims: &BTreeMap<String, String>,
        lifetime_s: u64,
        now_s: u64,
    ) -> String {
        let mut body = serde_json::Map::new();
        for (k, v) in claims {
            body.insert(k.clone(), serde_json::Value::String(v.clone()));
        }
        body.insert("iat".into(), now_s.into());
        body.insert("exp".into(), (now_s + lifetime_s).into());
        let header = Base64UrlUnpadded::encode_string(br#"{"alg":"none"}"#);
        let payload = Base64UrlUnpadded::encode_string(
            serde_json::Value::Object(body).to_string().as_bytes(),
        );
        format!("{header}.{payload}.")
    }

    /// The client's initial response (RFC 7628): `n,,` `\x01auth=Bearer <token>\x01\x01`.
    pub fn initial_response(token: &str) -> Vec<u8> {
        format!("n,,\x01auth=Bearer {token}\x01\x01").into_bytes()
    }

    /// What the client sends after the server's error challenge: a lone `\x01`, after which
    /// the server fails the exchange.
    pub const AFTER_ERROR: &[u8] = b"\x01";
}

/// SCRAM's primitives for one hash function.
pub mod scram {
    use super::*;

    fn algorithms(
        m: Mechanism,
    ) -> (
        hmac::Algorithm,
        pbkdf2::Algorithm,
        &'static digest::Algorithm,
    ) {
        match m {
            Mechanism::ScramSha512 => (
                hmac::HMAC_SHA512,
                pbkdf2::PBKDF2_HMAC_SHA512,
                &digest::SHA512,
            ),
            _ => (
                hmac::HMAC_SHA256,
                pbkdf2::PBKDF2_HMAC_SHA256,
                &digest::SHA256,
            ),
        }
    }

    /// Hi(password, salt, iterations): PBKDF2 with the mechanism's HMAC.
    pub fn salted_password(m: Mechanism, password: &str, salt: &[u8], iterations: u32) -> Vec<u8> {
        let (_, kdf, d) = algorithms(m);
        let mut out = vec![0u8; d.output_len()];
        let iterations = std::num::NonZeroU32::new(iterations.max(1)).expect("non-zero");
        pbkdf2::derive(kdf, iterations, salt, password.as_bytes(), &mut out);
        out
    }

    pub fn hmac(m: Mechanism, key: &[u8], data: &[u8]) -> Vec<u8> {
        let (h, _, _) = algorithms(m);
        hmac::sign(&hmac::Key::new(h, key), data).as_ref().to_vec()
    }

    pub fn hash(m: Mechanism, data: &[u8]) -> Vec<u8> {
        let (_, _, d) = algorithms(m);
        digest::digest(d, data).as_ref().to_vec()
    }

    /// (StoredKey, ServerKey) of a salted password: what the server keeps.
    pub fn keys(m: Mechanism, salted: &[u8]) -> (Vec<u8>, Vec<u8>) {
        let client_key = hmac(m, salted, b"Client Key");
        (hash(m, &client_key), hmac(m, salted, b"Server Key"))
    }

    /// Random bytes (nonces, salts).
    pub fn random(n: usize) -> Vec<u8> {
        let mut out = vec![0u8; n];
        ring::rand::SystemRandom::new()
            .fill(&mut out)
            .expect("the system's random source works");
        out
    }

    /// A printable nonce (RFC 5802: any printable ASCII but ',').
    pub fn nonce() -> String {
        b64(&random(24))
    }

    pub fn b64(bytes: &[u8]) -> String {
        Base64::encode_string(bytes)
    }

    pub fn unb64(text: &str) -> Result<Vec<u8>> {
        Base64::decode_vec(text).map_err(|_| anyhow!("invalid base64"))
    }

    /// `=` and `,` in a user name, escaped as SCRAM's saslname.
    pub fn encode_name(name: &str) -> String {
        name.replace('=', "=3D").replace(',', "=2C")
    }

    pub fn decode_name(name: &str) -> Result<String> {
        let mut out = String::new();
        let mut rest = name;
        while let Some(i) = rest.find('=') {
            out.push_str(&rest[..i]);
            match rest.get(i..i + 3) {
                Some("=3D") => out.push('='),
                Some("=2C") => out.push(','),
                _ => bail!("invalid escape in user name"),
            }
            rest = &rest[i + 3..];
        }
        out.push_str(rest);
        Ok(out)
    }

    /// The attributes of a SCRAM message (`r=…,s=…,i=…`), in order.
    pub fn attributes(message: &str) -> Result<Vec<(char, &str)>> {
        message
            .split(',')
            .map(|field| {
                let mut chars = field.chars();
                match (chars.next(), chars.next()) {
                    (Some(k), Some('=')) if k.is_ascii_alphabetic() => Ok((k, &field[2..])),
                    _ => bail!("invalid SCRAM attribute {field:?}"),
                }
            })
            .collect()
    }

    pub fn xor(a: &[u8], b: &[u8]) -> Vec<u8> {
        a.iter().zip(b).map(|(x, y)| x ^ y).collect()
    }

    /// The client side of one exchange.
    pub struct Client {
        mechanism: Mechanism,
        password: String,
        first_bare: String,
        nonce: String,
        server_signature: Option<Vec<u8>>,
    }

    impl Client {
        /// Starts an exchange; also returns the client-first message.
        pub fn start(c: &Credentials) -> (Client, String) {
            let nonce = nonce();
            let first_bare = format!("n={},r={nonce}", encode_name(&c.username));
            let message = format!("n,,{first_bare}");
            (
                Client {
                    mechanism: c.mechanism,
                    password: c.password.clone(),
                    first_bare,
                    nonce,
                    server_signature: None,
                },
                message,
            )
        }

        /// The client-final message for the server-first one.
        pub fn finish(&mut self, server_first: &str) -> Result<String> {
            let attrs = attributes(server_first)?;
            let get = |k: char| {
                attrs
                    .iter()
                    .find(|(a, _)| *a == k)
                    .map(|(_, v)| *v)
                    .ok_or_else(|| anyhow!("server-first message lacks {k}="))
            };
            let nonce = get('r')?;
            if !nonce.starts_with(&self.nonce) || nonce.len() == self.nonce.len() {
                bail!("the server's nonce does not extend ours");
            }
            let salt = unb64(get('s')?)?;
            let iterations: u32 = get('i')?
                .parse()
                .map_err(|_| anyhow!("bad iteration count"))?;
            // as Kafka's client: fewer would make the proof cheap to attack, and the server's
            // own bound is 16384
            if !(4096..=16384).contains(&iterations) {
                bail!("the server asks for {iterations} SCRAM iterations (4096 to 16384 accepted)");
            }
            let m = self.mechanism;
            let salted = salted_password(m, &self.password, &salt, iterations);
            let without_proof = format!("c=biws,r={nonce}");
            let auth = format!("{},{server_first},{without_proof}", self.first_bare);
            let client_key = hmac(m, &salted, b"Client Key");
            let signature = hmac(m, &hash(m, &client_key), auth.as_bytes());
            let proof = xor(&client_key, &signature);
            let server_key = hmac(m, &salted, b"Server Key");
            self.server_signature = Some(hmac(m, &server_key, auth.as_bytes()));
            Ok(format!("{without_proof},p={}", b64(&proof)))
        }

        /// Checks the server-final message: the server knew our password too.
        pub fn verify(&self, server_final: &str) -> Result<()> {
            let attrs = attributes(server_final)?;
            if let Some((_, e)) = attrs.iter().find(|(k, _)| *k == 'e') {
                bail!("SCRAM authentication failed: {e}");
            }
            let v = attrs
                .iter()
                .find(|(k, _)| *k == 'v')
                .ok_or_else(|| anyhow!("server-final message lacks v="))?;
            match &self.server_signature {
                Some(s) if unb64(v.1)? == *s => Ok(()),
                _ => bail!("the server's SCRAM signature is wrong"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::scram::*;
    use super::*;

    #[test]
    fn rfc_7677_test_vector() {
        // RFC 7677 section 3: user "user", password "pencil"
        let m = Mechanism::ScramSha256;
        let salt = unb64("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let salted = salted_password(m, "pencil", &salt, 4096);
        let first_bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let without_proof = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
        let auth = format!("{first_bare},{server_first},{without_proof}");
        let client_key = hmac(m, &salted, b"Client Key");
        let proof = xor(
            &client_key,
            &hmac(m, &hash(m, &client_key), auth.as_bytes()),
        );
        assert_eq!(b64(&proof), "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=");
        let (_, server_key) = keys(m, &salted);
        assert_eq!(
            b64(&hmac(m, &server_key, auth.as_bytes())),
            "6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
        );
    }

    #[test]
    fn user_names_are_escaped_both_ways() {
        assert_eq!(encode_name("a=b,c"), "a=3Db=2Cc");
        assert_eq!(decode_name("a=3Db=2Cc").unwrap(), "a=b,c");
        assert!(decode_name("a=4Fb").is_err());
        assert!(attributes("r=abc,s").is_err());
    }
}
