//! The few system calls std and tokio do not wrap: `sendfile(2)` from a segment file to a
//! socket (driven by tokio readiness), and `statvfs(3)` for log directory space.
#![allow(unsafe_code)]

use std::ffi::CString;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use tokio::io::Interest;
use tokio::net::TcpStream;

/// Sends `length` bytes of `file` from `position`. A file that ends early (truncated underneath
/// us) is an error, and the caller closes the connection: the frame length was already promised.
pub async fn sendfile(
    stream: &TcpStream,
    file: &std::fs::File,
    position: u64,
    length: usize,
) -> io::Result<()> {
    let mut offset = position as libc::off_t;
    let mut remaining = length;
    let file_fd = file.as_raw_fd();
    while remaining > 0 {
        stream.writable().await?;
        let result = stream.try_io(Interest::WRITABLE, || {
            // SAFETY: both descriptors are open for the duration of the call (the socket is
            // borrowed, the file is borrowed too); `offset` is a valid pointer
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

/// (total, usable) bytes of the file system holding `path`, or `None`.
pub fn disk_space(path: &Path) -> Option<(i64, i64)> {
    let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; zeroed is a valid value for it.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is a valid NUL-terminated string and `stat` a valid out-pointer, both
    // living across the call.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as i64;
    Some((stat.f_blocks as i64 * block, stat.f_bavail as i64 * block))
}

/// Raises the soft limit on open files to the hard limit (each partition holds files open;
/// Linux's usual soft limit of 1024 is far below what a broker needs). Returns the (old, new)
/// soft limits, or the error of getrlimit/setrlimit.
pub fn raise_open_file_limit() -> io::Result<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid out-pointer living across the call.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let old = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        limit.rlim_cur = limit.rlim_max;
        // SAFETY: `limit` is a valid pointer to an initialised rlimit.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok((old, limit.rlim_cur))
}
