//! The agent's listening socket: one agent per path (an flock'd `.lock` file beside the
//! socket), mode 0600, and every peer checked with SO_PEERCRED; and the connection
//! tasks, which read one request, hand it to the event loop and write its answer.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, Read, Seek, Write},
    os::unix::fs::{FileTypeExt, OpenOptionsExt},
    path::{Path, PathBuf},
    time::Duration,
};

use nix::{
    errno::Errno,
    fcntl::{Flock, FlockArg},
    sys::stat::{Mode, umask},
};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{UnixListener, UnixStream},
    sync::{mpsc, oneshot},
};
use tracing::warn;

use crate::wire::protocol::{self, MAX_REQUEST, Request, Response};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("another sockstat agent (pid {pid}) is already serving {path}; stop it first or pass another --socket")]
    AlreadyRunning { path: PathBuf, pid: String },
    #[error("{path} exists and is not a socket; refusing to replace it (pass another --socket)")]
    NotASocket { path: PathBuf },
    #[error("{what} {path}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

fn io_err<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(io::Error) -> ServerError + 'p {
    move |source| ServerError::Io { what, path: path.to_path_buf(), source }
}

pub struct AgentSocket {
    pub listener: UnixListener,
    path: PathBuf,
    /// Held for the agent's lifetime: the flock is the one-agent-per-path guarantee.
    _lock: Flock<File>,
}

impl AgentSocket {
    pub fn bind(path: &Path) -> Result<AgentSocket, ServerError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(io_err("creating directory", dir))?;
        }
        let mut lock_path = path.as_os_str().to_owned();
        lock_path.push(".lock");
        let lock_path = PathBuf::from(lock_path);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&lock_path)
            .map_err(io_err("opening lock file", &lock_path))?;
        let mut lock = match Flock::lock(lock, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => locked,
            Err((mut file, Errno::EWOULDBLOCK)) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                return Err(ServerError::AlreadyRunning { path: path.to_path_buf(), pid: pid.trim().to_string() });
            }
            Err((_, errno)) => return Err(ServerError::Io { what: "locking", path: lock_path, source: errno.into() }),
        };
        lock.set_len(0).map_err(io_err("writing lock file", &lock_path))?;
        lock.rewind().map_err(io_err("writing lock file", &lock_path))?;
        writeln!(lock, "{}", std::process::id()).map_err(io_err("writing lock file", &lock_path))?;

        // We hold the lock, so a socket left here is from an agent that died. Anything
        // else at that path is not ours to delete.
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_socket() => {
                fs::remove_file(path).map_err(io_err("removing stale socket", path))?;
            }
            Ok(_) => return Err(ServerError::NotASocket { path: path.to_path_buf() }),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(ServerError::Io { what: "inspecting", path: path.to_path_buf(), source: e }),
        }
        // Created 0600 from the start (no window in which others could connect).
        let old = umask(Mode::from_bits_truncate(0o177));
        let bound = std::os::unix::net::UnixListener::bind(path);
        umask(old);
        let std_listener = bound.map_err(io_err("binding", path))?;
        std_listener.set_nonblocking(true).map_err(io_err("configuring", path))?;
        let listener = UnixListener::from_std(std_listener).map_err(io_err("registering", path))?;
        Ok(AgentSocket { listener, path: path.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for AgentSocket {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
    }
}

/// Only root and the agent's own user may query it (the file mode already says so; this
/// also covers a socket reached through a bind mount or a changed mode).
pub fn peer_allowed(stream: &UnixStream) -> Result<bool, io::Error> {
    let cred = stream.peer_cred()?;
    let me = nix::unistd::geteuid().as_raw();
    Ok(cred.uid() == 0 || cred.uid() == me)
}

/// A request, the pid of the process that sent it (SO_PEERCRED; a handle to its
/// namespace), the inode of the agent's end of the connection it came on, and where the
/// answer goes, encoded by whoever made it (a large one off the event loop).
pub(super) type Query = (Request, Option<u32>, u64, oneshot::Sender<protocol::Encoded>);

/// Queries served at once; a client beyond this is told the agent is busy (and answers
/// itself from the kernel), so clients cannot pile up memory or tasks in the agent.
pub const MAX_CLIENTS: usize = 64;

/// How long a client may take to send its request (a few bytes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// How long a client may take to read its answer: a client that stops reading (stopped,
/// or never reading its socket) is dropped then, with the answer it held. A client reads
/// the whole answer before it prints anything (milliseconds for the largest), so this is
/// only ever reached by one that does not read at all.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// Reads one request, forwards it to the event loop, writes the answer. `permit` is this
/// connection's place among the [`MAX_CLIENTS`]; `None`: there is none left.
pub(super) async fn connection(
    mut stream: UnixStream,
    queries: mpsc::Sender<Query>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    answers: std::sync::Arc<tokio::sync::Semaphore>,
    metrics: Option<std::sync::Arc<crate::live::metrics::Shared>>,
) {
    if permit.is_none() {
        // Read the request first: a client still writing it would otherwise see EPIPE.
        let _ = tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await;
        let busy = format!("agent busy: {MAX_CLIENTS} queries in progress");
        let _ = tokio::time::timeout(CLIENT_TIMEOUT, write(&mut stream, &Response::Unavailable { reason: busy })).await;
        return;
    }
    match peer_allowed(&stream) {
        Ok(true) => {}
        Ok(false) => {
            // "Unavailable", not an error: under `--source auto` the client answers from
            // the kernel, which shows this user what ss would (docs/security.md).
            let reason = "permission denied: only root and the agent's user may query it".to_string();
            let _ = tokio::time::timeout(CLIENT_TIMEOUT, write(&mut stream, &Response::Unavailable { reason })).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "SO_PEERCRED failed; dropping connection");
            return;
        }
    }
    let req = match tokio::time::timeout(REQUEST_TIMEOUT, read_request(&mut stream)).await {
        Ok(Ok(req)) => req,
        // A client of another build: it treats this as "no agent" and works alone.
        Ok(Err(e @ protocol::ProtocolError::Version { .. })) => {
            let _ = write(
                &mut stream,
                &Response::Unavailable { reason: format!("{e}; restart the agent with the same sockstat") },
            )
            .await;
            return;
        }
        Ok(Err(e)) => {
            let _ = write(&mut stream, &Response::Error(format!("bad request: {e}"))).await;
            return;
        }
        Err(_) => return,
    };
    // A client that can map a large answer asks for it in shared memory.
    let (req, shared) = match req {
        Request::Shared(inner) if matches!(*inner, Request::Shared(_)) => {
            let _ = write(&mut stream, &Response::Error("bad request: a shared request inside another".into())).await;
            return;
        }
        Request::Shared(inner) => (*inner, true),
        req => (req, false),
    };
    let (kind, asked) = (crate::live::metrics::query_kind(&req), std::time::Instant::now());
    // The sender's pid, as a handle to the namespace it asks about.
    let peer = stream.peer_cred().ok().and_then(|c| c.pid()).and_then(|p| u32::try_from(p).ok()).filter(|&p| p > 0);
    let (tx, rx) = oneshot::channel();
    // The inode of this end of the connection: a dump the query asks for leaves the
    // query's own connection out.
    let conn = nix::sys::stat::fstat(&stream).map(|st| st.st_ino).unwrap_or(0);
    let Ok(answering) = answers.acquire_owned().await else { return };
    if queries.send((req, peer, conn, tx)).await.is_err() {
        return;
    }
    if let Ok(bytes) = rx.await {
        // Encoded where it was made, its rows freed before its bytes go out; its place
        // among the answers at once is free from here: a client that does not read holds
        // its bytes until CLIENT_TIMEOUT, and nobody else's turn.
        drop(answering);
        let mut lent = None;
        let sent = match bytes {
            Ok(frame) if shared && frame.len() >= super::shared::SHARED_FROM => {
                tokio::time::timeout(CLIENT_TIMEOUT, write_shared(&mut stream, frame, &mut lent)).await
            }
            bytes => tokio::time::timeout(CLIENT_TIMEOUT, write_bytes(&mut stream, bytes)).await,
        };
        if sent.is_err() {
            warn!(timeout = ?CLIENT_TIMEOUT, "a client did not read its answer in time; dropping it");
        } else if let Some(m) = metrics {
            m.query_done(kind, u64::try_from(asked.elapsed().as_nanos()).unwrap_or(u64::MAX));
        }
        // A memory file lent to the client comes back once it closes the connection
        // (after printing the answer: as long as its reader takes); this connection's
        // place among the clients is free meanwhile. A client that keeps it past
        // LENT_FOR keeps it alone: the file is not used again.
        if let Some(file) = lent {
            drop(permit);
            tokio::spawn(async move {
                let mut buf = [0u8; 512];
                let closed = async { while stream.read(&mut buf).await.is_ok_and(|n| n > 0) {} };
                if tokio::time::timeout(LENT_FOR, closed).await.is_ok() {
                    super::shared::give_back(file);
                }
            });
        }
    }
}

/// How long a client may keep a memory file lent to it (`shared`) for the file to be
/// used again.
const LENT_FOR: Duration = Duration::from_secs(60);

/// Sends `frame`'s body in a memory file (`shared`), or over the socket if that cannot
/// be. The file goes to `lent` once the client has its descriptor.
async fn write_shared(
    stream: &mut UnixStream,
    frame: Vec<u8>,
    lent: &mut Option<std::os::fd::OwnedFd>,
) -> Result<(), protocol::ProtocolError> {
    // Writing megabytes into the file is blocking work: off the event loop.
    let made = tokio::task::spawn_blocking(move || {
        let body = frame.get(4..).unwrap_or_default();
        let file = super::shared::file_with(body).and_then(|f| super::shared::read_only(&f).map(|ro| (f, ro)));
        (frame, file)
    })
    .await;
    let (frame, (file, read_only)) = match made {
        Ok((frame, Ok(file))) => (frame, file),
        Ok((frame, Err(e))) => {
            warn!(error = %e, "no shared memory for an answer; sending it over the socket");
            return write_bytes(stream, Ok(frame)).await;
        }
        Err(e) => return Err(protocol::ProtocolError::Io(std::io::Error::other(e))),
    };
    let len = frame.len().saturating_sub(4) as u64;
    super::spare::give_back(frame);
    let note = protocol::encode(&Response::Shared { len })?;
    super::shared::send_with_fd(stream, &note, &read_only).await?;
    *lent = Some(file);
    stream.shutdown().await?;
    Ok(())
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, protocol::ProtocolError> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let mut body = vec![0u8; protocol::frame_len(header, MAX_REQUEST)?];
    stream.read_exact(&mut body).await?;
    protocol::decode(&body)
}

async fn write(stream: &mut UnixStream, resp: &Response) -> Result<(), protocol::ProtocolError> {
    write_bytes(stream, protocol::encode(resp)).await
}

async fn write_bytes(
    stream: &mut UnixStream,
    bytes: Result<Vec<u8>, protocol::ProtocolError>,
) -> Result<(), protocol::ProtocolError> {
    let bytes = bytes?;
    stream.write_all(&bytes).await?;
    // Sent: the buffer may serve the next answer (`spare`).
    super::spare::give_back(bytes);
    stream.shutdown().await?;
    Ok(())
}
