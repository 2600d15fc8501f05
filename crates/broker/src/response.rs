//! Response frames made of byte chunks and file slices, and writing them with `sendfile(2)`.
//!
//! Fetch responses carry record batches straight from segment files: the frame is the encoded
//! response around the batches, and the batches go from the page cache to the socket without
//! being copied through user space (docs/ARCHITECTURE.md, the fetch path, step 5).

use std::io;

use bytes::{Bytes, BytesMut};
use ferrolog_storage::FileSlice;
use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
use kafka_protocol::messages::FetchResponse;
use kafka_protocol::protocol::Encodable;
use tokio::io::AsyncWriteExt;

pub enum Chunk {
    Bytes(BytesMut),
    File(FileSlice),
}

/// A response frame under construction: contiguous bytes, interrupted by file slices.
#[derive(Default)]
pub struct Frame {
    chunks: Vec<Chunk>,
    current: BytesMut,
    length: usize,
    /// Starts with a 4-byte size prefix, filled in when the frame is finished.
    prefixed: bool,
}

impl Frame {
    /// A frame that starts with Kafka's 4-byte size prefix.
    pub fn with_size_prefix() -> Frame {
        let mut frame = Frame {
            prefixed: true,
            ..Frame::default()
        };
        frame.put(&[0; 4]);
        frame
    }

    pub fn put(&mut self, bytes: &[u8]) {
        self.current.extend_from_slice(bytes);
        self.length += bytes.len();
    }

    pub fn put_file(&mut self, slice: FileSlice) {
        self.flush_current();
        self.length += slice.length;
        self.chunks.push(Chunk::File(slice));
    }

    fn flush_current(&mut self) {
        if !self.current.is_empty() {
            self.chunks.push(Chunk::Bytes(self.current.split()));
        }
    }

    pub fn len(&self) -> usize {
        self.length
    }
    pub fn is_empty(&self) -> bool {
        self.length == 0
    }

    pub fn into_chunks(mut self) -> Vec<Chunk> {
        self.flush_current();
        if self.prefixed {
            let size = (self.length - 4) as i32;
            if let Some(Chunk::Bytes(first)) = self.chunks.first_mut() {
                first[0..4].copy_from_slice(&size.to_be_bytes());
            }
        }
        self.chunks
    }

    /// The whole frame as bytes (reading the file slices): for tests and non-socket sinks.
    pub fn to_vec(self) -> io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(self.length);
        for chunk in self.into_chunks() {
            match chunk {
                Chunk::Bytes(b) => out.extend_from_slice(&b),
                Chunk::File(f) => out.extend_from_slice(&f.read()?),
            }
        }
        Ok(out)
    }

    /// Writes the frame. File slices go with sendfile(2) when the stream is a plain socket and
    /// they are the operating system's files. Otherwise (TLS, or a file system installed under
    /// storage) the frame is written through one buffer of at most [`WRITE_BUFFER`] bytes:
    /// file bytes are read into it once and small chunks ride along with them, so TLS gets few
    /// large records and memory stays bounded whatever the fetch size.
    pub async fn write_to<S: crate::session::Transport>(self, stream: &mut S) -> io::Result<()> {
        let mut buffer = Vec::new();
        for chunk in self.into_chunks() {
            match chunk {
                Chunk::File(f) => {
                    if let (true, Some(file)) = (stream.raw_socket().is_some(), f.file.os_file()) {
                        if !buffer.is_empty() {
                            stream.write_all(&buffer).await?;
                            buffer.clear();
                        }
                        if let Some(socket) = stream.raw_socket() {
                            crate::sys::sendfile(socket, file, f.position, f.length).await?;
                            continue;
                        }
                    }
                    let mut done = 0;
                    while done < f.length {
                        if buffer.len() >= WRITE_BUFFER {
                            stream.write_all(&buffer).await?;
                            buffer.clear();
                        }
                        let n = (f.length - done).min(WRITE_BUFFER - buffer.len());
                        let start = buffer.len();
                        buffer.resize(start + n, 0);
                        f.file
                            .read_exact_at(&mut buffer[start..], f.position + done as u64)?;
                        done += n;
                    }
                }
                Chunk::Bytes(b) => {
                    if buffer.len() + b.len() > WRITE_BUFFER && !buffer.is_empty() {
                        stream.write_all(&buffer).await?;
                        buffer.clear();
                    }
                    if b.len() >= WRITE_BUFFER {
                        stream.write_all(&b).await?;
                    } else {
                        buffer.extend_from_slice(&b);
                    }
                }
            }
        }
        if !buffer.is_empty() {
            stream.write_all(&buffer).await?;
        }
        stream.flush().await
    }
}

/// The most bytes [`Frame::write_to`] gathers before writing when it cannot use sendfile.
pub const WRITE_BUFFER: usize = 256 * 1024;

fn flexible(version: i16) -> bool {
    version >= 12
}

/// Splits `empty`'s encoding around one variable-length field (a bytes field or an array) that
/// is empty in `empty` and holds one element in `one`: returns (bytes before, bytes after).
/// The field's length encoding is the first thing that differs between the two encodings.
fn split_around<T: Encodable>(empty: &T, one: &T, version: i16) -> anyhow::Result<(Bytes, Bytes)> {
    let mut a = BytesMut::new();
    empty.encode(&mut a, version)?;
    let mut b = BytesMut::new();
    one.encode(&mut b, version)?;
    let first_difference = a
        .iter()
        .zip(b.iter())
        .position(|(x, y)| x != y)
        .unwrap_or(a.len());
    // non-flexible lengths are big-endian i32 (0 vs 1 differ in the last byte); flexible ones
    // are one-byte unsigned varints (1 vs 2)
    let (start, width) = if flexible(version) {
        (first_difference, 1)
    } else {
        (first_difference - 3, 4)
    };
    let a = a.freeze();
    Ok((a.slice(..start), a.slice(start + width..)))
}

fn put_length(frame: &mut Frame, length: usize, version: i16) {
    if flexible(version) {
        let mut v = length as u64 + 1;
        while v >= 0x80 {
            frame.put(&[(v as u8) | 0x80]);
            v >>= 7;
        }
        frame.put(&[v as u8]);
    } else {
        frame.put(&(length as i32).to_be_bytes());
    }
}

/// Encodes a fetch response whose partitions' records are given as file slices (`files`, one per
/// partition in response order; `None` keeps the partition's own `records`). Byte for byte what
/// the kafka-protocol encoder produces with the records inline.
pub fn encode_fetch(
    mut response: FetchResponse,
    files: &mut [Option<FileSlice>],
    version: i16,
    frame: &mut Frame,
) -> anyhow::Result<()> {
    let topics = std::mem::take(&mut response.responses);
    let one_topic = response
        .clone()
        .with_responses(vec![FetchableTopicResponse::default()]);
    let (before, after) = split_around(&response, &one_topic, version)?;
    frame.put(&before);
    put_length(frame, topics.len(), version);
    let mut index = 0;
    for mut topic in topics {
        let partitions = std::mem::take(&mut topic.partitions);
        let one_partition = topic
            .clone()
            .with_partitions(vec![PartitionData::default()]);
        let (topic_before, topic_after) = split_around(&topic, &one_partition, version)?;
        frame.put(&topic_before);
        put_length(frame, partitions.len(), version);
        for partition in partitions {
            match files.get_mut(index).and_then(Option::take) {
                Some(slice) => {
                    let empty = partition.with_records(Some(Bytes::new()));
                    let one = empty.clone().with_records(Some(Bytes::from_static(&[0])));
                    let (part_before, part_after) = split_around(&empty, &one, version)?;
                    frame.put(&part_before);
                    put_length(frame, slice.length, version);
                    frame.put_file(slice);
                    frame.put(&part_after);
                }
                None => {
                    let mut buf = BytesMut::new();
                    partition.encode(&mut buf, version)?;
                    frame.put(&buf);
                }
            }
            index += 1;
        }
        frame.put(&topic_after);
    }
    frame.put(&after);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::AbortedTransaction;
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::{Message, StrBytes};

    #[test]
    fn chunked_encoding_matches_the_library_byte_for_byte() {
        let dir = tempfile::tempdir().unwrap();
        let content: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let file = ferrolog_storage::fs::get()
            .open(
                &dir.path().join("segment"),
                ferrolog_storage::fs::Open::Truncate,
            )
            .unwrap();
        file.write_all_at(&content, 0).unwrap();
        for version in FetchResponse::VERSIONS.min..=FetchResponse::VERSIONS.max {
            let slices = [(10u64, 200usize), (500, 1), (1000, 2000)];
            let mut response = FetchResponse::default().with_throttle_time_ms(3);
            if version >= 7 {
                response = response.with_session_id(77).with_error_code(0);
            }
            let mut files = Vec::new();
            for t in 0..2 {
                let mut topic = FetchableTopicResponse::default();
                if version >= 13 {
                    topic.topic_id = uuid::Uuid::from_u128(t + 1);
                } else {
                    topic.topic = TopicName(StrBytes::from_string(format!("topic-{t}")));
                }
                for p in 0..3 {
                    let mut data = PartitionData::default()
                        .with_partition_index(p)
                        .with_high_watermark(100 + i64::from(p))
                        .with_last_stable_offset(90)
                        .with_log_start_offset(if version >= 5 { 5 } else { -1 })
                        .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                            .with_producer_id(ProducerId(9))
                            .with_first_offset(3)]));
                    let use_file = (t + p as u128).is_multiple_of(2);
                    let (position, length) = slices[p as usize];
                    data.records = Some(if use_file {
                        Bytes::copy_from_slice(
                            &content[position as usize..position as usize + length],
                        )
                    } else {
                        Bytes::from_static(b"inline")
                    });
                    files.push(use_file.then(|| FileSlice {
                        file: file.clone(),
                        position,
                        length,
                    }));
                    topic.partitions.push(data);
                }
                response.responses.push(topic);
            }
            let mut expected = BytesMut::new();
            response.encode(&mut expected, version).unwrap();
            let mut frame = Frame::default();
            encode_fetch(response, &mut files, version, &mut frame).unwrap();
            assert_eq!(frame.len(), expected.len(), "length, v{version}");
            assert_eq!(
                frame.to_vec().unwrap(),
                expected.to_vec(),
                "bytes, v{version}"
            );
        }
    }
}
