//! A small async Kafka client on top of the `kafka-protocol` crate, used by the ferrolog CLI,
//! the perf tools and the tests. One connection, one request at a time.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, Request, StrBytes};
use kafka_protocol::records::{Compression, Record};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

pub use kafka_protocol;
pub use rustls;

/// A connection's byte stream: TCP, or TLS over TCP.
/// A byte stream to a server: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Io for T {}

/// Connects to `addr`, over TLS when `tls` is given (the host name checked against the
/// certificate), the handshake within the same 10 s as the connection.
pub async fn open(addr: &str, tls: Option<&Tls>) -> Result<Box<dyn Io>> {
    tokio::time::timeout(Duration::from_secs(10), async {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connecting to {addr}"))?;
        tcp.set_nodelay(true)?;
        let Some(tls) = tls else {
            return Ok::<Box<dyn Io>, anyhow::Error>(Box::new(tcp));
        };
        let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = rustls::pki_types::ServerName::try_from(host.to_string())
            .with_context(|| format!("{host} is not a TLS server name"))?;
        let stream = tokio_rustls::TlsConnector::from(tls.config.clone())
            .connect(name, tcp)
            .await
            .with_context(|| format!("TLS handshake with {addr}"))?;
        Ok(Box::new(stream))
    })
    .await
    .map_err(|_| anyhow!("timed out connecting to {addr}"))?
}

pub mod sasl;

/// How to reach a TLS listener: the rustls configuration (trust, a client certificate if the
/// broker asks for one, and the host name check).
#[derive(Clone, Debug)]
pub struct Tls {
    pub config: Arc<rustls::ClientConfig>,
}

/// How a connection is secured: TLS, SASL, both or neither.
#[derive(Clone, Debug, Default)]
pub struct Security {
    pub tls: Option<Tls>,
    pub sasl: Option<sasl::Credentials>,
}

pub struct Connection {
    stream: Box<dyn Io>,
    correlation_id: i32,
    versions: HashMap<i16, (i16, i16)>,
    client_id: String,
}

pub fn str(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

pub fn topic_name(s: &str) -> TopicName {
    TopicName(str(s))
}

impl Connection {
    /// Connects and learns the broker's API versions.
    pub async fn connect(addr: &str) -> Result<Connection> {
        Self::connect_with(addr, &Security::default()).await
    }

    /// Connects, over TLS when `security` has it (the handshake within the same 10 s as the
    /// connection), learns the broker's API versions, and authenticates with SASL when
    /// `security` has credentials.
    pub async fn connect_with(addr: &str, security: &Security) -> Result<Connection> {
        let stream = open(addr, security.tls.as_ref()).await?;
        let mut c = Connection {
            stream,
            correlation_id: 0,
            versions: HashMap::new(),
            client_id: "ferrolog".into(),
        };
        let response: ApiVersionsResponse = c
            .send_version(
                &ApiVersionsRequest::default()
                    .with_client_software_name(str("ferrolog"))
                    .with_client_software_version(str(env!("CARGO_PKG_VERSION"))),
                3,
            )
            .await?;
        if response.error_code != 0 {
            bail!("ApiVersions failed with error {}", response.error_code);
        }
        for k in response.api_keys {
            c.versions.insert(k.api_key, (k.min_version, k.max_version));
        }
        if let Some(credentials) = &security.sasl {
            c.authenticate(credentials)
                .await
                .with_context(|| format!("SASL {} with {addr}", credentials.mechanism.name()))?;
        }
        Ok(c)
    }

    /// SaslHandshake v1, then the mechanism's SaslAuthenticate rounds.
    async fn authenticate(&mut self, c: &sasl::Credentials) -> Result<()> {
        let handshake: SaslHandshakeResponse = self
            .send_version(
                &SaslHandshakeRequest::default().with_mechanism(str(c.mechanism.name())),
                1,
            )
            .await?;
        if handshake.error_code != 0 {
            bail!(
                "SaslHandshake failed with error {} (the broker offers {:?})",
                error_name(handshake.error_code),
                handshake
                    .mechanisms
                    .iter()
                    .map(|m| m.to_string())
                    .collect::<Vec<_>>()
            );
        }
        let (mut exchange, mut token) = sasl::ClientExchange::start(c)?;
        loop {
            let reply = self.sasl_step(token).await?;
            match exchange.next(&reply)? {
                Some(next) => token = next,
                None => return Ok(()),
            }
        }
    }

    async fn sasl_step(&mut self, token: Vec<u8>) -> Result<Bytes> {
        let r: SaslAuthenticateResponse = self
            .send_version(
                &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                2,
            )
            .await?;
        if r.error_code != 0 {
            bail!(
                "SaslAuthenticate failed with error {}: {}",
                error_name(r.error_code),
                r.error_message.as_deref().unwrap_or("")
            );
        }
        Ok(r.auth_bytes)
    }

    /// The highest version both sides support.
    pub fn version_for<R: Request>(&self) -> Result<i16> {
        let (min, max) = self
            .versions
            .get(&R::KEY)
            .copied()
            .ok_or_else(|| anyhow!("broker does not support api key {}", R::KEY))?;
        let v = max.min(R::VERSIONS.max);
        if v < min.max(R::VERSIONS.min) {
            bail!("no common version for api key {}", R::KEY);
        }
        Ok(v)
    }

    pub async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response> {
        let version = self.version_for::<R>()?;
        self.send_version(request, version).await
    }

    /// Sends a request whose response never comes (acks=0 produce).
    pub async fn send_no_response<R: Request>(&mut self, request: &R) -> Result<()> {
        let version = self.version_for::<R>()?;
        let frame = self.frame(request, version)?;
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        Ok(())
    }

    fn frame<R: Request>(&mut self, request: &R, version: i16) -> Result<BytesMut> {
        self.correlation_id += 1;
        let header = RequestHeader::default()
            .with_request_api_key(R::KEY)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(str(&self.client_id)));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header.encode(&mut buf, R::header_version(version))?;
        request.encode(&mut buf, version)?;
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        Ok(buf)
    }

    pub async fn send_version<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response> {
        let frame = self.frame(request, version)?;
        self.stream.write_all(&frame).await?;
        self.stream.flush().await?;
        let mut body = self.read_frame().await?;
        let header = ResponseHeader::decode(&mut body, R::Response::header_version(version))?;
        if header.correlation_id != self.correlation_id {
            bail!(
                "correlation id mismatch: sent {}, got {}",
                self.correlation_id,
                header.correlation_id
            );
        }
        R::Response::decode(&mut body, version)
    }

    async fn read_frame(&mut self) -> Result<Bytes> {
        let size = self.stream.read_i32().await.context("reading response")?;
        if !(0..=512 * 1024 * 1024).contains(&size) {
            bail!("bad response size {size}");
        }
        let mut body = BytesMut::zeroed(size as usize);
        self.stream.read_exact(&mut body).await?;
        Ok(body.freeze())
    }

    pub async fn metadata(
        &mut self,
        topics: Option<&[&str]>,
        auto_create: bool,
    ) -> Result<MetadataResponse> {
        let request = MetadataRequest::default()
            .with_topics(topics.map(|t| {
                t.iter()
                    .map(|n| {
                        metadata_request::MetadataRequestTopic::default()
                            .with_name(Some(topic_name(n)))
                    })
                    .collect()
            }))
            .with_allow_auto_topic_creation(auto_create);
        self.send(&request).await
    }

    /// Partition count of a topic, or an error naming the Kafka error code.
    pub async fn partitions(&mut self, topic: &str) -> Result<i32> {
        self.partition_count(topic, false).await
    }

    /// Partition count, auto-creating the topic when the broker allows it (as a producer does).
    pub async fn partitions_or_create(&mut self, topic: &str) -> Result<i32> {
        self.partition_count(topic, true).await
    }

    async fn partition_count(&mut self, topic: &str, auto_create: bool) -> Result<i32> {
        let m = self.metadata(Some(&[topic]), auto_create).await?;
        let t = m
            .topics
            .first()
            .ok_or_else(|| anyhow!("no metadata for {topic}"))?;
        if t.error_code != 0 {
            bail!("topic {topic}: {}", error_name(t.error_code));
        }
        Ok(t.partitions.len() as i32)
    }

    pub async fn list_offset(
        &mut self,
        topic: &str,
        partition: i32,
        timestamp: i64,
    ) -> Result<(i64, i64)> {
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic_name(topic))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_current_leader_epoch(-1)
                        .with_timestamp(timestamp),
                ])]);
        let response = self.send(&request).await?;
        let p = response
            .topics
            .first()
            .and_then(|t| t.partitions.first())
            .ok_or_else(|| anyhow!("empty ListOffsets response"))?;
        if p.error_code != 0 {
            bail!(
                "ListOffsets {topic}-{partition}: {}",
                error_name(p.error_code)
            );
        }
        Ok((p.offset, p.timestamp))
    }

    /// Produces one batch; returns the base offset.
    pub async fn produce(
        &mut self,
        topic: &str,
        partition: i32,
        records: &[Record],
        compression: Compression,
        acks: i16,
    ) -> Result<i64> {
        let mut buf = BytesMut::new();
        encode_batch(&mut buf, records, compression)?;
        self.produce_raw(topic, partition, buf.freeze(), acks).await
    }

    pub async fn produce_raw(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<i64> {
        let response = self
            .produce_raw_response(topic, partition, batch, acks)
            .await?;
        let Some(p) = response
            .and_then(|r| r.responses.into_iter().next())
            .and_then(|t| t.partition_responses.into_iter().next())
        else {
            return Ok(-1);
        };
        if p.error_code != 0 {
            bail!(
                "produce to {topic}-{partition}: {}{}",
                error_name(p.error_code),
                p.error_message
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
        }
        Ok(p.base_offset)
    }

    pub async fn produce_raw_response(
        &mut self,
        topic: &str,
        partition: i32,
        batch: Bytes,
        acks: i16,
    ) -> Result<Option<ProduceResponse>> {
        let request = ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic_name(topic))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(partition)
                        .with_records(Some(batch)),
                ])]);
        // v12 names topics; v13 would need topic ids
        let version = self.version_for::<ProduceRequest>()?.min(12);
        if acks == 0 {
            let frame = self.frame(&request, version)?;
            self.stream.write_all(&frame).await?;
            self.stream.flush().await?;
            return Ok(None);
        }
        Ok(Some(self.send_version(&request, version).await?))
    }

    /// One fetch of one partition (topic by name: v12). Returns the decoded records and the
    /// partition's high watermark.
    pub async fn fetch(
        &mut self,
        topic: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        max_bytes: i32,
    ) -> Result<(Vec<Record>, i64)> {
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_session_epoch(-1)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic_name(topic))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_current_leader_epoch(-1)
                    .with_partition_max_bytes(max_bytes)])]);
        let version = self.version_for::<FetchRequest>()?.min(12);
        let response = self.send_version(&request, version).await?;
        if response.error_code != 0 {
            bail!("fetch: {}", error_name(response.error_code));
        }
        let p = response
            .responses
            .into_iter()
            .next()
            .and_then(|t| t.partitions.into_iter().next())
            .ok_or_else(|| anyhow!("empty fetch response"))?;
        if p.error_code != 0 {
            bail!(
                "fetch {topic}-{partition} at {offset}: {}",
                error_name(p.error_code)
            );
        }
        let records = decode_records(p.records.unwrap_or_default())?;
        Ok((
            records.into_iter().filter(|r| r.offset >= offset).collect(),
            p.high_watermark,
        ))
    }
}

/// Decodes the complete batches of a fetch response (a cut-off last batch is skipped, as clients
/// do), dropping control records.
pub fn decode_records(mut bytes: Bytes) -> Result<Vec<Record>> {
    let mut out = Vec::new();
    while bytes.len() >= 12 {
        let len = (&bytes[8..12]).get_i32();
        let size = 12 + len.max(0) as usize;
        if len < 49 || bytes.len() < size {
            break;
        }
        let batch = bytes.split_to(size);
        let records = ferrolog_records::decode(&batch, MAX_DECOMPRESSED_BATCH)
            .map_err(|e| anyhow!("decoding records: {e}"))?;
        out.extend(records.into_iter().filter(|r| !r.control));
    }
    Ok(out)
}

/// What one fetched batch may decompress to in this client.
const MAX_DECOMPRESSED_BATCH: usize = 256 << 20;

/// Encodes records as one batch, numbering their offset deltas 0.. as a producer does.
pub fn encode_batch(
    buf: &mut BytesMut,
    records: &[Record],
    compression: Compression,
) -> Result<()> {
    let numbered: Vec<Record> = records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset: i as i64,
            ..r.clone()
        })
        .collect();
    let batch = ferrolog_records::encode(&numbered, compression, Default::default(), None)?;
    buf.extend_from_slice(&batch);
    Ok(())
}

/// A record to produce.
pub use ferrolog_records::plain_record as record;

pub fn compression_from_name(name: &str) -> Result<Compression> {
    ferrolog_records::compression_from_name(name).ok_or_else(|| {
        anyhow!("unknown compression codec {name}: expected none, gzip, snappy, lz4 or zstd")
    })
}

pub fn error_name(code: i16) -> String {
    match kafka_protocol::ResponseError::try_from_code(code) {
        Some(e) => format!("{e:?} ({code})"),
        None => format!("error code {code}"),
    }
}

/// `Err` naming the error and its message when `code` is not 0 (a tool's answer check).
pub fn check_error(code: i16, message: Option<&str>) -> Result<()> {
    if code != 0 {
        bail!("{}: {}", error_name(code), message.unwrap_or(""));
    }
    Ok(())
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
