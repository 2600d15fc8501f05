//! `sendfile(2)` from a segment file to a socket, driven by tokio readiness.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::AsRawFd;

use ferrolog_storage::FileSlice;
use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends the whole slice. A file that ends early (truncated underneath us) is an error, and the
/// caller closes the connection: the frame length was already promised.
pub async fn send(stream: &TcpStream, slice: &FileSlice) -> io::Result<()> {
    let mut offset = slice.position as libc::off_t;
    let mut remaining = slice.length;
    let file_fd = slice.file.as_raw_fd();
    while remaining > 0 {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (the socket is
            // borrowed, the file is kept alive by the slice's Arc); `offset` is a valid pointer
            // to a local the kernel updates; no memory of ours is read or written otherwise.
            let sent =
                unsafe { libc::sendfile(stream.as_raw_fd(), file_fd, &mut offset, remaining) };
            if sent < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(sent as usize)
            }
        });
        match result {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "segment file ended before the slice",
                ))
            }
            Ok(n) => remaining -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}
