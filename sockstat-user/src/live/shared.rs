//! Large answers handed over in shared memory: the agent writes the answer's frame into a
//! memory file (memfd) and sends the client a read-only descriptor of it (SCM_RIGHTS),
//! which the client maps. A client receiving 5 MiB of rows over the socket faulted in
//! and zeroed 5 MiB of fresh pages and copied the bytes into them: at 100k rows, with
//! `-p`'s owner records too, that was a third of a query's time. The files are kept for
//! the next answers (their pages written again, never zeroed again) until the loop's
//! next trim; a file goes back to the pool only once its client closed the connection.

use std::{
    io::{self, IoSlice},
    os::fd::{AsFd, AsRawFd, OwnedFd},
    sync::{
        Mutex,
        atomic::{AtomicU64, Ordering},
    },
};

use tokio::{io::Interest, net::UnixStream};

/// Answers from this size on go through shared memory when the client asks for it.
pub const SHARED_FROM: usize = 256 << 10;

/// Answers being made at once: each holds its rows, and then their encoding, in memory
/// (tens of MiB for a table of 100k sockets), so this bounds what clients can make the
/// agent hold. Others wait their turn, holding nothing. (Defined here, below the server
/// that limits its answers to it: the pool of files is sized by it.)
pub const ANSWERS_AT_ONCE: usize = 2;

/// Files kept for the next answers: one for each answer made at once, and one more.
const KEPT: usize = ANSWERS_AT_ONCE + 1;

static POOL: Mutex<Vec<OwnedFd>> = Mutex::new(Vec::new());

/// Answers sent in shared memory since start (`sockstat status`).
static SENT: AtomicU64 = AtomicU64::new(0);

#[must_use]
pub fn sent() -> u64 {
    SENT.load(Ordering::Relaxed)
}

/// A memory file holding exactly `bytes`: a kept one if there is one, else a new one.
pub fn file_with(bytes: &[u8]) -> io::Result<OwnedFd> {
    let kept = POOL.lock().ok().and_then(|mut p| p.pop());
    let fd = match kept {
        Some(fd) => fd,
        None => nix::sys::memfd::memfd_create(c"sockstat-answer", nix::sys::memfd::MFdFlags::MFD_CLOEXEC)
            .map_err(io::Error::from)?,
    };
    let mut at = 0;
    while at < bytes.len() {
        let n =
            nix::sys::uio::pwrite(&fd, &bytes[at..], i64::try_from(at).unwrap_or(i64::MAX)).map_err(io::Error::from)?;
        if n == 0 {
            return Err(io::Error::from(io::ErrorKind::WriteZero));
        }
        at += n;
    }
    // A longer answer before this one left pages past the end.
    nix::unistd::ftruncate(&fd, i64::try_from(bytes.len()).unwrap_or(i64::MAX)).map_err(io::Error::from)?;
    Ok(fd)
}

/// A read-only descriptor of `fd`'s file, for the client: it can read the answer, not
/// write or resize the agent's file.
pub fn read_only(fd: &OwnedFd) -> io::Result<OwnedFd> {
    let path = format!("/proc/self/fd/{}", fd.as_raw_fd());
    let file = std::fs::File::open(path)?;
    Ok(OwnedFd::from(file))
}

/// Keeps `fd` for a next answer (its client is done with it).
pub fn give_back(fd: OwnedFd) {
    if let Ok(mut p) = POOL.lock()
        && p.len() < KEPT
    {
        p.push(fd);
    }
}

/// Drops the kept files (the loop's trim tick: their pages go back to the system).
pub fn release() {
    if let Ok(mut p) = POOL.lock() {
        p.clear();
    }
}

/// Sends `frame` with `fd` attached to its first byte.
pub async fn send_with_fd(stream: &UnixStream, frame: &[u8], fd: &OwnedFd) -> io::Result<()> {
    let raw = [fd.as_fd().as_raw_fd()];
    let mut sent = 0;
    while sent < frame.len() {
        stream.writable().await?;
        let rest = &frame[sent..];
        let result = stream.try_io(Interest::WRITABLE, || {
            let iov = [IoSlice::new(rest)];
            let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&raw)];
            // The descriptor goes with the first byte only.
            let cmsgs: &[nix::sys::socket::ControlMessage<'_>] = if sent == 0 { &cmsg } else { &[] };
            nix::sys::socket::sendmsg::<()>(
                stream.as_raw_fd(),
                &iov,
                cmsgs,
                nix::sys::socket::MsgFlags::MSG_NOSIGNAL,
                None,
            )
            .map_err(io::Error::from)
        });
        match result {
            Ok(n) => sent += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    SENT.fetch_add(1, Ordering::Relaxed);
    Ok(())
}
