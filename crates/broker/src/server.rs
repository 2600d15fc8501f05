//! Listener and connections.
//!
//! A TLS listener first completes the handshake (within [`TLS_HANDSHAKE_TIMEOUT`]) and takes
//! the client certificate's subject as the connection's principal. Then each connection reads
//! one request frame at a time (4-byte length prefix, checked against
//! `socket.request.max.bytes`; a large frame then waits for room in the request memory, and its
//! buffer grows only as its bytes arrive: `request_memory`), handles it and writes the response
//! before reading the next, so responses go back in request order. Any framing, decoding or
//! handshake error closes that connection only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, RequestHeader, ResponseHeader, SaslAuthenticateResponse, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable};
use kafka_protocol::ResponseError;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};

use crate::connections::Refused;
use crate::handlers::{self, Response};
use crate::request_memory::read_body;
use crate::response::Frame;
use crate::security::principal;
use crate::security::sasl::{self, Authenticator, SaslConfig, Step};
use crate::session::{ListenerSecurity, Session, Transport};
use crate::Broker;

pub use crate::security::tls::TLS_HANDSHAKE_TIMEOUT;

/// Accepts connections until the task is dropped.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, security: Arc<ListenerSecurity>) {
    let name: Arc<str> = Arc::from(security.name.as_str());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                // waits while the listener or the broker is full (Kafka's acceptor blocks too)
                let ip = peer.ip().to_canonical();
                let ip_rate = crate::quota::ip_connection_rate(&broker.quotas.quotas(), ip);
                let permit = match broker.connections.admit(&name, ip, ip_rate).await {
                    Ok(permit) => permit,
                    Err(Refused::TooMany { ip, max }) => {
                        tracing::info!(
                            "Rejected connection from {ip}, address already has the configured maximum of {max} connections."
                        );
                        continue;
                    }
                    Err(Refused::Throttled { ip, delay }) => {
                        tracing::debug!("Delaying closing of connection from {ip} for {delay:?}");
                        tokio::spawn(async move {
                            tokio::time::sleep(delay).await;
                            drop(stream);
                        });
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                let security = security.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let session = |principal: &str| Session {
                        principal: Arc::from(principal),
                        listener: name.clone(),
                    };
                    let result = match &security.tls {
                        None => {
                            connection(
                                broker,
                                stream,
                                peer,
                                session(principal::ANONYMOUS),
                                security.sasl.clone(),
                            )
                            .await
                        }
                        Some(tls) => {
                            let tls = tls.read().unwrap_or_else(|e| e.into_inner()).clone();
                            match handshake(&tls, stream).await {
                                Ok((stream, principal)) => {
                                    connection(
                                        broker,
                                        stream,
                                        peer,
                                        session(&principal),
                                        security.sasl.clone(),
                                    )
                                    .await
                                }
                                Err(e) => Err(e),
                            }
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection closed: {e}");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
                tracing::warn!("accept failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("request of {size} bytes exceeds socket.request.max.bytes {limit}")]
    TooLarge { size: i64, limit: usize },
    #[error("invalid request: {0}")]
    Invalid(String),
    #[error("idle for longer than connections.max.idle.ms")]
    Idle,
    #[error("TLS handshake failed: {0}")]
    Handshake(String),
    #[error("SASL authentication failed: {0}")]
    Authentication(String),
    /// A request that gets no answer failed (a produce with acks=0 denied): Kafka closes the
    /// connection so that the client notices.
    #[error("{0}")]
    Closed(String),
}

/// The TLS handshake ([`crate::security::tls::accept`]) as a connection error.
async fn handshake(
    tls: &crate::security::tls::ListenerTls,
    stream: TcpStream,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, String), ConnectionError> {
    crate::security::tls::accept(tls, stream)
        .await
        .map_err(ConnectionError::Handshake)
}

async fn connection<S: Transport>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: std::net::SocketAddr,
    mut session: Session,
    sasl: Option<Arc<SaslConfig>>,
) -> Result<(), ConnectionError> {
    let limit = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms.max(1));
    let mut auth = sasl.map(|config| SaslState {
        config,
        authenticator: Authenticator::new(),
        authenticated: false,
        raw_tokens: false,
        expires: None,
        lifetime_ms: 0,
        reauthenticating: false,
    });
    loop {
        let mut prefix = [0u8; 4];
        match tokio::time::timeout(idle, stream.read_exact(&mut prefix)).await {
            Err(_) => return Err(ConnectionError::Idle),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let size = i32::from_be_bytes(prefix);
        // before authentication, no more than a SASL token's worth (Kafka's 512 KiB)
        let limit = match &auth {
            Some(a) if !a.authenticated => limit.min(sasl::MAX_RECEIVE),
            _ => limit,
        };
        let smallest = if auth.as_ref().is_some_and(|a| a.raw_tokens) {
            0
        } else {
            4
        };
        if size < smallest || size as usize > limit {
            return Err(ConnectionError::TooLarge {
                size: i64::from(size),
                limit,
            });
        }
        // a large frame waits for room in the request memory (and its connection is not read
        // meanwhile); the bytes are held as they arrive, not as announced
        let size = size as usize;
        let reservation =
            match tokio::time::timeout(idle, broker.request_memory.reserve(size)).await {
                Err(_) => return Err(ConnectionError::Idle),
                Ok(r) => r,
            };
        // a request that stops half way is closed like an idle connection
        let frame = match tokio::time::timeout(idle, read_body(&mut stream, size)).await {
            Err(_) => return Err(ConnectionError::Idle),
            Ok(r) => r?,
        };
        let frame = frame.freeze();
        if let Some(a) = auth.as_mut() {
            if a.raw_tokens {
                // after SaslHandshake v0 the tokens come bare, size-prefixed
                let reply = a.raw_token(&broker, &frame, &mut session).await?;
                let mut out = Frame::with_size_prefix();
                out.put(&reply);
                out.write_to(&mut stream).await?;
                continue;
            }
        }
        let parsed = parse_frame(frame)?;
        let (response, throttle) = match (auth.as_mut(), &parsed.request) {
            (
                Some(a),
                Some(handlers::Request::SaslHandshake(_) | handlers::Request::SaslAuthenticate(_)),
            ) => {
                let (response, failed) = a.request(&broker, &parsed, &mut session).await;
                let frame = encode_frame(parsed.api_key, &parsed.header, response)?;
                frame.write_to(&mut stream).await?;
                if let Some(why) = failed {
                    return Err(ConnectionError::Authentication(why));
                }
                continue;
            }
            (Some(a), _) if !a.authenticated && parsed.api_key != ApiKey::ApiVersions => {
                return Err(ConnectionError::Authentication(format!(
                    "unexpected {:?} request before SASL authentication",
                    parsed.api_key
                )));
            }
            (Some(a), _) if a.expires.is_some_and(|e| Instant::now() >= e) => {
                return Err(ConnectionError::Authentication(
                    "the SASL session expired (connections.max.reauth.ms or the end of the credential's lifetime) without re-authentication"
                        .into(),
                ));
            }
            _ => handle_parsed(&broker, parsed, peer, &session).await?,
        };
        drop(reservation);
        if let Some(response) = response {
            response.write_to(&mut stream).await?;
        }
        // a client over its quota: its connection is not read for the throttle time (KIP-219)
        if !throttle.is_zero() {
            tokio::time::sleep(throttle).await;
        }
    }
}

/// A SASL listener connection's authentication state.
struct SaslState {
    config: Arc<SaslConfig>,
    authenticator: Authenticator,
    authenticated: bool,
    /// SaslHandshake v0 was used: the exchange continues with bare tokens.
    raw_tokens: bool,
    /// When the session must be re-authenticated (KIP-368), if ever.
    expires: Option<Instant>,
    /// The session lifetime told to the client (0: none).
    lifetime_ms: i64,
    /// An authenticated connection sent a SaslHandshake: a re-authentication is under way.
    reauthenticating: bool,
}

impl SaslState {
    /// SaslHandshake or SaslAuthenticate: the response, and why the connection must close.
    async fn request(
        &mut self,
        broker: &Broker,
        parsed: &ParsedFrame,
        session: &mut Session,
    ) -> (Response, Option<String>) {
        let version = parsed.header.request_api_version;
        match &parsed.request {
            Some(handlers::Request::SaslHandshake(r)) => {
                let offered = self
                    .config
                    .mechanisms
                    .iter()
                    .map(|m| handlers::str(m.name()))
                    .collect();
                let mut response = SaslHandshakeResponse::default().with_mechanisms(offered);
                // after authentication only a re-authentication may start (KIP-368): with a
                // session lifetime, SaslHandshake v1+, the same mechanism
                if self.authenticated {
                    let same = self.authenticator.mechanism().map(|m| m.name())
                        == ferrolog_client::sasl::Mechanism::parse(&r.mechanism).map(|m| m.name());
                    if self.expires.is_none() || version == 0 || !same {
                        response.error_code = ResponseError::IllegalSaslState.code();
                        let why = "re-authentication needs a session lifetime (connections.max.reauth.ms or an expiring token), SaslHandshake v1 and the same mechanism";
                        return (Response::SaslHandshake(response), Some(why.into()));
                    }
                }
                if !self.authenticator.handshake(&self.config, &r.mechanism) {
                    response.error_code = ResponseError::UnsupportedSaslMechanism.code();
                    let why = format!("unsupported SASL mechanism {}", r.mechanism);
                    return (Response::SaslHandshake(response), Some(why));
                }
                self.raw_tokens = version == 0;
                self.reauthenticating = self.authenticated;
                (Response::SaslHandshake(response), None)
            }
            Some(handlers::Request::SaslAuthenticate(r)) => {
                let mut response = SaslAuthenticateResponse::default();
                if self.authenticated && !self.reauthenticating {
                    response.error_code = ResponseError::IllegalSaslState.code();
                    response.error_message = Some(handlers::str(
                        "SaslAuthenticate after authentication needs a SaslHandshake first",
                    ));
                    return (Response::SaslAuthenticate(response), None);
                }
                match self.step(broker, &r.auth_bytes, session).await {
                    Ok(token) => {
                        response.auth_bytes = token.into();
                        if self.authenticated {
                            response.session_lifetime_ms = self.lifetime_ms;
                        }
                        (Response::SaslAuthenticate(response), None)
                    }
                    Err(why) => {
                        response.error_code = ResponseError::SaslAuthenticationFailed.code();
                        response.error_message = Some(handlers::str(&why));
                        (Response::SaslAuthenticate(response), Some(why))
                    }
                }
            }
            _ => (
                Response::SaslHandshake(
                    SaslHandshakeResponse::default()
                        .with_error_code(ResponseError::IllegalSaslState.code()),
                ),
                None,
            ),
        }
    }

    /// A bare token after SaslHandshake v0; an error closes the connection.
    async fn raw_token(
        &mut self,
        broker: &Broker,
        token: &[u8],
        session: &mut Session,
    ) -> Result<Vec<u8>, ConnectionError> {
        let reply = self
            .step(broker, token, session)
            .await
            .map_err(ConnectionError::Authentication)?;
        if self.authenticated {
            self.raw_tokens = false;
        }
        Ok(reply)
    }

    /// One token of the exchange: the token to send back, or the failure (after Kafka's
    /// `connection.failed.authentication.delay.ms`).
    async fn step(
        &mut self,
        broker: &Broker,
        token: &[u8],
        session: &mut Session,
    ) -> Result<Vec<u8>, String> {
        let image = broker.controller.image();
        let lookup = |user: &str, m: ferrolog_client::sasl::Mechanism| {
            image.scram.get(user)?.get(m.name()).cloned()
        };
        let failure = match self.authenticator.step(&self.config, token, lookup) {
            Step::Challenge(t) => return Ok(t),
            Step::Done {
                principal,
                token,
                expires_ms,
            } => {
                if self.authenticated && *session.principal != *principal {
                    "Cannot change principals during re-authentication".to_string()
                } else {
                    session.principal = Arc::from(principal.as_str());
                    self.authenticated = true;
                    self.reauthenticating = false;
                    let lifetime = session_lifetime(self.config.reauth_ms, expires_ms);
                    self.lifetime_ms = lifetime.unwrap_or(0);
                    self.expires =
                        lifetime.map(|l| Instant::now() + Duration::from_millis(l as u64));
                    return Ok(token);
                }
            }
            Step::Failed(why) => why,
        };
        tokio::time::sleep(Duration::from_millis(self.config.failure_delay_ms)).await;
        Err(failure)
    }
}

/// How long a session lives, as Kafka's server decides (KIP-368): `connections.max.reauth.ms`
/// (0: no limit) and the credential's own end (an OAuth token's `exp`), whichever comes first;
/// `None` when neither applies.
fn session_lifetime(max_reauth_ms: i64, credential_expires_ms: Option<i64>) -> Option<i64> {
    let remaining = credential_expires_ms.map(|e| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        (e - now).max(0)
    });
    match (remaining, max_reauth_ms > 0) {
        (None, false) => None,
        (None, true) => Some(max_reauth_ms),
        (Some(r), false) => Some(r),
        (Some(r), true) => Some(r.min(max_reauth_ms)),
    }
}

/// A request frame, decoded.
pub struct ParsedFrame {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    /// `None` for an ApiVersions version ferrolog does not know (answered with a v0 error body).
    pub request: Option<handlers::Request>,
}

/// Decodes one request frame (the bytes after the length prefix). Sans I/O; every malformed
/// input is an error, never a panic (this is what the `request_frame` fuzz target drives).
pub fn parse_frame(mut frame: Bytes) -> Result<ParsedFrame, ConnectionError> {
    if frame.len() < 4 {
        return Err(ConnectionError::Invalid(format!(
            "frame of {} bytes has no request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key)
        .map_err(|_| ConnectionError::Invalid(format!("unknown api key {raw_key}")))?;
    let supported = handlers::supported_versions(api_key);
    let in_range = supported.is_some_and(|r| version >= r.min && version <= r.max);
    if !in_range && api_key != ApiKey::ApiVersions {
        return Err(ConnectionError::Invalid(format!(
            "unsupported {api_key:?} v{version}"
        )));
    }
    // Unknown ApiVersions versions are answered with a v0 error body (the client retries lower).
    let header_version = if in_range {
        api_key.request_header_version(version)
    } else {
        1
    };
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| ConnectionError::Invalid(format!("request header: {e}")))?;
    let request = if in_range {
        Some(
            handlers::decode_request(api_key, version, &mut frame)
                .map_err(|e| ConnectionError::Invalid(format!("{api_key:?} v{version}: {e:#}")))?,
        )
    } else {
        None
    };
    Ok(ParsedFrame {
        api_key,
        header,
        request,
    })
}

/// Handles a decoded request and encodes the response frame.
/// `Ok(None)` means no response is sent (acks=0 produce).
async fn handle_parsed(
    broker: &Arc<Broker>,
    parsed: ParsedFrame,
    peer: std::net::SocketAddr,
    session: &Session,
) -> Result<(Option<Frame>, Duration), ConnectionError> {
    let ParsedFrame {
        api_key,
        header,
        request,
    } = parsed;
    let mut throttle_ms = 0;
    let response = match request {
        Some(request) => {
            // an IPv4 client of a dual-stack listener as Kafka writes it (1.2.3.4, not
            // ::ffff:1.2.3.4): host ACLs name it so
            let host = peer.ip().to_canonical();
            let ctx = handlers::RequestContext {
                version: header.request_api_version,
                client_id: header.client_id.as_deref().unwrap_or("").to_string(),
                client_host: format!("/{host}"),
                session: session.clone(),
                throttle_ms: Default::default(),
            };
            let response = handlers::handle(broker, &ctx, request).await;
            throttle_ms = ctx.throttle_ms.load(std::sync::atomic::Ordering::Relaxed);
            response
        }
        None => Some(handlers::api_versions::unsupported()),
    };
    let throttle = Duration::from_millis(throttle_ms.max(0) as u64);
    match response {
        Some(handlers::Response::Close(why)) => Err(ConnectionError::Closed(why)),
        Some(response) => Ok((Some(encode_frame(api_key, &header, response)?), throttle)),
        None => Ok((None, throttle)),
    }
}

/// The response frame for a request: its header (the request's correlation id) and body, at
/// the request's version (v0 for an ApiVersions version ferrolog does not know).
fn encode_frame(
    api_key: ApiKey,
    header: &RequestHeader,
    response: Response,
) -> Result<Frame, ConnectionError> {
    let known = handlers::supported_versions(api_key).is_some_and(|r| {
        header.request_api_version >= r.min && header.request_api_version <= r.max
    });
    let response_version = if known { header.request_api_version } else { 0 };
    let mut out = Frame::with_size_prefix();
    let mut head = BytesMut::new();
    let response_header = ResponseHeader::default().with_correlation_id(header.correlation_id);
    response_header
        .encode(&mut head, api_key.response_header_version(response_version))
        .map_err(|e| ConnectionError::Invalid(format!("encoding response header: {e}")))?;
    out.put(&head);
    if let Err(e) = encode_response(response, &mut out, response_version) {
        // Our bug, not the client's: say so loudly.
        tracing::error!("encoding {api_key:?} v{response_version} response failed: {e}");
        return Err(ConnectionError::Invalid(format!(
            "encoding {api_key:?} v{response_version} response: {e}"
        )));
    }
    Ok(out)
}

fn encode_response(response: Response, out: &mut Frame, version: i16) -> anyhow::Result<()> {
    let mut buf = BytesMut::new();
    match response {
        Response::Fetch(r, mut files) => {
            return crate::response::encode_fetch(r, &mut files, version, out)
        }
        Response::ApiVersions(r) => r.encode(&mut buf, version)?,
        Response::UpdateFeatures(r) => r.encode(&mut buf, version)?,
        Response::ListConfigResources(r) => r.encode(&mut buf, version)?,
        Response::DescribeTopicPartitions(r) => r.encode(&mut buf, version)?,
        Response::Metadata(r) => r.encode(&mut buf, version)?,
        Response::CreateTopics(r) => r.encode(&mut buf, version)?,
        Response::DeleteTopics(r) => r.encode(&mut buf, version)?,
        Response::CreatePartitions(r) => r.encode(&mut buf, version)?,
        Response::Produce(r) if version <= handlers::produce_legacy::LAST_LEGACY_VERSION => {
            handlers::produce_legacy::encode_response(&r, version, &mut buf)
        }
        Response::Produce(r) => r.encode(&mut buf, version)?,
        Response::ListOffsets(r) => r.encode(&mut buf, version)?,
        Response::DescribeConfigs(r) => r.encode(&mut buf, version)?,
        Response::DescribeCluster(r) => r.encode(&mut buf, version)?,
        Response::InitProducerId(r) => r.encode(&mut buf, version)?,
        Response::DeleteRecords(r) => r.encode(&mut buf, version)?,
        Response::AlterConfigs(r) => r.encode(&mut buf, version)?,
        Response::IncrementalAlterConfigs(r) => r.encode(&mut buf, version)?,
        Response::DescribeLogDirs(r) => r.encode(&mut buf, version)?,
        Response::AlterReplicaLogDirs(r) => r.encode(&mut buf, version)?,
        Response::FindCoordinator(r) => r.encode(&mut buf, version)?,
        Response::JoinGroup(r) => r.encode(&mut buf, version)?,
        Response::SyncGroup(r) => r.encode(&mut buf, version)?,
        Response::Heartbeat(r) => r.encode(&mut buf, version)?,
        Response::LeaveGroup(r) => r.encode(&mut buf, version)?,
        Response::OffsetCommit(r) => r.encode(&mut buf, version)?,
        Response::OffsetFetch(r) => r.encode(&mut buf, version)?,
        Response::ListGroups(r) => r.encode(&mut buf, version)?,
        Response::DescribeGroups(r) => r.encode(&mut buf, version)?,
        Response::DeleteGroups(r) => r.encode(&mut buf, version)?,
        Response::OffsetDelete(r) => r.encode(&mut buf, version)?,
        Response::ConsumerGroupHeartbeat(r) => r.encode(&mut buf, version)?,
        Response::ConsumerGroupDescribe(r) => r.encode(&mut buf, version)?,
        Response::AddPartitionsToTxn(r) => r.encode(&mut buf, version)?,
        Response::AddOffsetsToTxn(r) => r.encode(&mut buf, version)?,
        Response::TxnOffsetCommit(r) => r.encode(&mut buf, version)?,
        Response::EndTxn(r) => r.encode(&mut buf, version)?,
        Response::DescribeProducers(r) => r.encode(&mut buf, version)?,
        Response::DescribeTransactions(r) => r.encode(&mut buf, version)?,
        Response::ListTransactions(r) => r.encode(&mut buf, version)?,
        Response::WriteTxnMarkers(r) => r.encode(&mut buf, version)?,
        Response::OffsetForLeaderEpoch(r) => r.encode(&mut buf, version)?,
        Response::ElectLeaders(r) => r.encode(&mut buf, version)?,
        Response::DescribeQuorum(r) => r.encode(&mut buf, version)?,
        Response::AddRaftVoter(r) => r.encode(&mut buf, version)?,
        Response::RemoveRaftVoter(r) => r.encode(&mut buf, version)?,
        Response::AlterPartitionReassignments(r) => r.encode(&mut buf, version)?,
        Response::ListPartitionReassignments(r) => r.encode(&mut buf, version)?,
        Response::SaslHandshake(r) => r.encode(&mut buf, version)?,
        Response::SaslAuthenticate(r) => r.encode(&mut buf, version)?,
        Response::DescribeUserScramCredentials(r) => r.encode(&mut buf, version)?,
        Response::AlterUserScramCredentials(r) => r.encode(&mut buf, version)?,
        Response::DescribeClientQuotas(r) => r.encode(&mut buf, version)?,
        Response::AlterClientQuotas(r) => r.encode(&mut buf, version)?,
        Response::CreateAcls(r) => r.encode(&mut buf, version)?,
        Response::DescribeAcls(r) => r.encode(&mut buf, version)?,
        Response::DeleteAcls(r) => r.encode(&mut buf, version)?,
        Response::Close(why) => anyhow::bail!("a closing answer has no body: {why}"),
    }
    out.put(&buf);
    Ok(())
}
