//! The memory of requests being read, bounded as a whole (`queued.max.request.bytes`).
//!
//! A frame is read incrementally: its buffer grows as its bytes arrive, so announcing a size
//! costs nothing until the bytes come. A frame larger than [`SMALL_FRAME`] first reserves its
//! announced size from the pool, all at once (so two half-read frames can never wait on each
//! other); while the pool has no room the connection is not read (back-pressure: its bytes stay
//! in the kernel's socket buffers). Smaller frames, what clients send in normal operation,
//! never wait, so a few connections holding big frames cannot stall everyone else. The
//! reservation is held until the request has been handled.
//!
//! Kafka's default of `queued.max.request.bytes` (-1) means no bound; ferrolog then bounds the
//! pool at [`DEFAULT_POOL`] (or `socket.request.max.bytes`, if larger, so the largest request
//! allowed can always be read).

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

pub const QUEUED_MAX_REQUEST_BYTES: &str = "queued.max.request.bytes";

/// Frames up to this size are read without a reservation.
pub const SMALL_FRAME: usize = 1024 * 1024;

/// The pool when `queued.max.request.bytes` is -1 (Kafka: unbounded).
pub const DEFAULT_POOL: usize = 256 * 1024 * 1024;

/// The pool counts in units of this many bytes (a semaphore's permits are a u32 per take).
const UNIT: usize = 1024;

/// The initial buffer of a frame, before its bytes arrive.
const FIRST_READ: usize = 64 * 1024;

pub struct RequestMemory {
    pool: Arc<Semaphore>,
    bytes: usize,
}

/// A frame's reservation; dropping it gives the bytes back.
pub struct Reservation(#[allow(dead_code)] Option<OwnedSemaphorePermit>);

impl RequestMemory {
    /// The pool for `queued.max.request.bytes` = `configured` (≤ 0: the default bound).
    pub fn new(configured: i64, socket_request_max_bytes: usize) -> RequestMemory {
        let bytes = if configured > 0 {
            configured as usize
        } else {
            DEFAULT_POOL.max(socket_request_max_bytes)
        };
        RequestMemory {
            pool: Arc::new(Semaphore::new(bytes.div_ceil(UNIT))),
            bytes,
        }
    }

    /// The pool's size in bytes.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Bytes not reserved now.
    pub fn available(&self) -> usize {
        self.pool.available_permits() * UNIT
    }

    /// Reserves room for a frame of `size` bytes (waits while the pool has no room; small
    /// frames take nothing).
    pub async fn reserve(&self, size: usize) -> Reservation {
        if size <= SMALL_FRAME {
            return Reservation(None);
        }
        let units = size.div_ceil(UNIT).min(self.bytes.div_ceil(UNIT)) as u32;
        match self.pool.clone().acquire_many_owned(units).await {
            Ok(permit) => Reservation(Some(permit)),
            // the semaphore is never closed
            Err(_) => Reservation(None),
        }
    }
}

/// Reads a frame body of `size` bytes, growing the buffer as the bytes arrive.
pub async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    size: usize,
) -> std::io::Result<bytes::BytesMut> {
    let mut buf = bytes::BytesMut::with_capacity(size.min(FIRST_READ));
    let mut body = stream.take(size as u64);
    while buf.len() < size {
        if buf.len() == buf.capacity() {
            // double, up to what is still to come
            buf.reserve((size - buf.len()).min(buf.len().max(FIRST_READ)));
        }
        if body.read_buf(&mut buf).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_body_is_read_to_its_size_and_no_further() {
        let (mut client, mut server) = tokio::io::duplex(4096);
        let sent: Vec<u8> = (0..300_000u32).map(|i| i as u8).collect();
        let writer = tokio::spawn({
            let sent = sent.clone();
            async move {
                client.write_all(&sent).await.unwrap();
                client.write_all(b"next").await.unwrap();
                client
            }
        });
        let body = read_body(&mut server, sent.len()).await.unwrap();
        assert_eq!(&body[..], &sent[..]);
        let mut next = [0u8; 4];
        server.read_exact(&mut next).await.unwrap();
        assert_eq!(&next, b"next");
        drop(writer.await.unwrap());
        let short = read_body(&mut server, 10).await.unwrap_err();
        assert_eq!(short.kind(), std::io::ErrorKind::UnexpectedEof);
    }

    #[tokio::test]
    async fn announcing_a_size_allocates_only_what_arrived() {
        let (mut client, mut server) = tokio::io::duplex(1 << 20);
        client.write_all(&[7u8; 1000]).await.unwrap();
        let read = tokio::spawn(async move {
            let body = read_body(&mut server, 100 << 20).await;
            body.map(|b| b.len())
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!read.is_finished());
        drop(client);
        assert!(
            read.await.unwrap().is_err(),
            "the sender went away half way"
        );
    }

    #[tokio::test]
    async fn big_frames_wait_for_room_and_small_ones_do_not() {
        let memory = Arc::new(RequestMemory::new(3 << 20, 1 << 20));
        assert_eq!(memory.bytes(), 3 << 20);
        let first = memory.reserve(2 << 20).await;
        let waiting = tokio::spawn({
            let memory = memory.clone();
            async move {
                let _r = memory.reserve(2 << 20).await;
            }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!waiting.is_finished(), "2 MiB of 3 are held");
        let _small = tokio::time::timeout(Duration::from_secs(1), memory.reserve(SMALL_FRAME))
            .await
            .expect("a small frame never waits");
        drop(first);
        tokio::time::timeout(Duration::from_secs(1), waiting)
            .await
            .expect("room came back")
            .unwrap();
        assert_eq!(memory.available(), 3 << 20);
        // a frame larger than the pool takes all of it rather than wait for ever
        let _all = tokio::time::timeout(Duration::from_secs(1), memory.reserve(5 << 20))
            .await
            .unwrap();
        assert_eq!(memory.available(), 0);
        // the default bound, and never below the largest request allowed
        assert_eq!(RequestMemory::new(-1, 100 << 20).bytes(), DEFAULT_POOL);
        assert_eq!(RequestMemory::new(-1, 300 << 20).bytes(), 300 << 20);
    }
}
