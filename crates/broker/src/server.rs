//! Listener and connections.
//!
//! A TLS listener first completes the handshake (within [`TLS_HANDSHAKE_TIMEOUT`]) and takes
//! the client certificate's subject as the connection's principal. Then each connection reads
//! one request frame at a time (4-byte length prefix, checked against
//! `socket.request.max.bytes` before anything is allocated), handles it and writes the response
//! before reading the next, so responses go back in request order. Any framing, decoding or
//! handshake error closes that connection only.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};

use crate::handlers::{self, Response};
use crate::response::Frame;
use crate::security::principal;
use crate::security::SecurityProtocol;
use crate::Broker;

/// How long a client has to complete the TLS handshake before the connection is closed.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection's byte stream: plain TCP or TLS over it.
pub trait Transport: AsyncRead + AsyncWrite + Unpin + Send {
    /// The socket itself when what is written to it reaches the peer unchanged, so that file
    /// bytes can go with sendfile(2); `None` under TLS, which must encrypt them.
    fn raw_socket(&self) -> Option<&TcpStream>;
}

impl Transport for TcpStream {
    fn raw_socket(&self) -> Option<&TcpStream> {
        Some(self)
    }
}

impl Transport for tokio_rustls::server::TlsStream<TcpStream> {
    fn raw_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// The listener a connection came in on, and how it is secured.
pub struct ListenerSecurity {
    pub name: String,
    pub protocol: SecurityProtocol,
    /// The TLS configuration of an SSL listener. Behind a lock so that a new key store (from
    /// AlterConfigs) takes effect for new connections.
    pub tls: Option<std::sync::RwLock<Arc<crate::security::tls::ListenerTls>>>,
}

impl ListenerSecurity {
    pub fn plaintext(name: &str) -> ListenerSecurity {
        ListenerSecurity {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
        }
    }
}

/// Who is at the other end of a connection, once its security layer is through.
#[derive(Debug, Clone)]
pub struct Session {
    /// `User:<name>`; [`principal::ANONYMOUS`] when not authenticated.
    pub principal: Arc<str>,
    pub listener: Arc<str>,
    pub protocol: SecurityProtocol,
}

/// Accepts connections until the task is dropped.
pub async fn serve(broker: Arc<Broker>, listener: TcpListener, security: Arc<ListenerSecurity>) {
    let name: Arc<str> = Arc::from(security.name.as_str());
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let broker = broker.clone();
                let security = security.clone();
                let name = name.clone();
                tokio::spawn(async move {
                    let session = |principal: &str| Session {
                        principal: Arc::from(principal),
                        listener: name.clone(),
                        protocol: security.protocol,
                    };
                    let result = match &security.tls {
                        None => {
                            connection(broker, stream, peer, session(principal::ANONYMOUS)).await
                        }
                        Some(tls) => {
                            let tls = tls.read().unwrap_or_else(|e| e.into_inner()).clone();
                            match handshake(&tls, stream).await {
                                Ok((stream, principal)) => {
                                    connection(broker, stream, peer, session(&principal)).await
                                }
                                Err(e) => Err(e),
                            }
                        }
                    };
                    if let Err(e) = result {
                        tracing::debug!(%peer, "connection closed: {e}");
                    }
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
}

/// The TLS handshake, bounded in time, and the principal it establishes: `User:` and the
/// mapped subject of the client certificate, or `User:ANONYMOUS` without one.
async fn handshake(
    tls: &crate::security::tls::ListenerTls,
    stream: TcpStream,
) -> Result<(tokio_rustls::server::TlsStream<TcpStream>, String), ConnectionError> {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.server.clone());
    let stream = match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Err(_) => {
            return Err(ConnectionError::Handshake(format!(
                "not completed within {TLS_HANDSHAKE_TIMEOUT:?}"
            )))
        }
        Ok(Err(e)) => return Err(ConnectionError::Handshake(e.to_string())),
        Ok(Ok(stream)) => stream,
    };
    let principal = match stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        None => principal::ANONYMOUS.to_string(),
        Some(cert) => {
            let name = principal::subject_dn(cert)
                .and_then(|dn| tls.mapper.map(&dn))
                .map_err(|e| ConnectionError::Handshake(format!("{e:#}")))?;
            format!("User:{name}")
        }
    };
    Ok((stream, principal))
}

async fn connection<S: Transport>(
    broker: Arc<Broker>,
    mut stream: S,
    peer: std::net::SocketAddr,
    session: Session,
) -> Result<(), ConnectionError> {
    let limit = broker.config.socket_request_max_bytes;
    let idle = Duration::from_millis(broker.config.connections_max_idle_ms.max(1));
    loop {
        let mut prefix = [0u8; 4];
        match tokio::time::timeout(idle, stream.read_exact(&mut prefix)).await {
            Err(_) => return Err(ConnectionError::Idle),
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(r) => r?,
        };
        let size = i32::from_be_bytes(prefix);
        if size < 4 || size as usize > limit {
            return Err(ConnectionError::TooLarge {
                size: i64::from(size),
                limit,
            });
        }
        let mut frame = BytesMut::zeroed(size as usize);
        stream.read_exact(&mut frame).await?;
        let frame = frame.freeze();
        if let Some(response) = handle_frame(&broker, frame, peer, &session).await? {
            response.write_to(&mut stream).await?;
        }
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

/// Decodes one request frame, handles it and encodes the response frame.
/// `Ok(None)` means no response is sent (acks=0 produce).
async fn handle_frame(
    broker: &Arc<Broker>,
    frame: Bytes,
    peer: std::net::SocketAddr,
    session: &Session,
) -> Result<Option<Frame>, ConnectionError> {
    let ParsedFrame {
        api_key,
        header,
        request,
    } = parse_frame(frame)?;
    let correlation_id = header.correlation_id;
    let (response_version, response) = match request {
        Some(request) => {
            let ctx = handlers::RequestContext {
                version: header.request_api_version,
                client_id: header.client_id.as_deref().unwrap_or("").to_string(),
                client_host: format!("/{}", peer.ip()),
                session: session.clone(),
            };
            (
                header.request_api_version,
                handlers::handle(broker, &ctx, request).await,
            )
        }
        None => (0, Some(handlers::api_versions::unsupported())),
    };
    let Some(response) = response else {
        return Ok(None);
    };
    let mut out = Frame::with_size_prefix();
    let mut head = BytesMut::new();
    let response_header = ResponseHeader::default().with_correlation_id(correlation_id);
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
    Ok(Some(out))
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
    }
    out.put(&buf);
    Ok(())
}
