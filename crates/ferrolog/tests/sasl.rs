//! SASL re-authentication (KIP-368) through the real binary: only a new handshake with the same
//! mechanism may re-authenticate, only when the listener gives sessions a lifetime, and a
//! session that expired without it is closed at its next request.

mod common;

use std::time::Duration;

use ferrolog_client::kafka_protocol::messages::{
    MetadataRequest, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use ferrolog_client::sasl::{plain_message, Credentials, Mechanism};
use ferrolog_client::{str, Connection, Security};

const JAAS: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"alice\" password=\"alice-secret\" user_alice=\"alice-secret\";";

fn alice() -> Credentials {
    Credentials::password(Mechanism::Plain, "alice", "alice-secret")
}

fn start(reauth_ms: u64) -> common::Server {
    let reauth = format!("connections.max.reauth.ms={reauth_ms}");
    common::Server::start(&[
        "listeners=SASL_PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0",
        "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
        "sasl.mechanism.inter.broker.protocol=PLAIN",
        JAAS,
        &reauth,
    ])
}

async fn connect(addr: &str) -> Connection {
    let security = Security {
        tls: None,
        sasl: Some(alice()),
    };
    Connection::connect_with(addr, &security).await.unwrap()
}

async fn handshake(c: &mut Connection, mechanism: &str) -> anyhow::Result<SaslHandshakeResponse> {
    c.send_version(
        &SaslHandshakeRequest::default().with_mechanism(str(mechanism)),
        1,
    )
    .await
}

async fn authenticate(c: &mut Connection) -> anyhow::Result<SaslAuthenticateResponse> {
    c.send_version(
        &SaslAuthenticateRequest::default().with_auth_bytes(plain_message(&alice()).into()),
        2,
    )
    .await
}

#[test]
fn without_a_session_lifetime_there_is_no_re_authentication() {
    let server = start(0);
    common::rt().block_on(async {
        let mut c = connect(&server.addr()).await;
        // SaslAuthenticate out of turn, then a second handshake: ILLEGAL_SASL_STATE
        assert_eq!(authenticate(&mut c).await.unwrap().error_code, 34);
        assert_eq!(handshake(&mut c, "PLAIN").await.unwrap().error_code, 34);
        // and the connection is closed
        assert!(c.metadata(None, false).await.is_err());
    });
}

#[test]
fn a_session_is_renewed_by_a_new_handshake_and_closed_when_it_expires() {
    let server = start(1500);
    common::rt().block_on(async {
        let mut c = connect(&server.addr()).await;
        assert_eq!(handshake(&mut c, "PLAIN").await.unwrap().error_code, 0);
        let renewed = authenticate(&mut c).await.unwrap();
        assert_eq!((renewed.error_code, renewed.session_lifetime_ms), (0, 1500));
        c.metadata(None, false).await.unwrap();
        // another mechanism may not take over the session
        assert_eq!(
            handshake(&mut c, "SCRAM-SHA-256").await.unwrap().error_code,
            34
        );
        assert!(c.metadata(None, false).await.is_err());

        // a session left to expire is closed at its next request
        let mut c = connect(&server.addr()).await;
        c.metadata(None, false).await.unwrap();
        tokio::time::sleep(Duration::from_millis(1800)).await;
        assert!(c.send(&MetadataRequest::default()).await.is_err());
    });
}
