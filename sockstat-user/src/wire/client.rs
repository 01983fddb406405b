//! Talks to a running agent over its unix socket (blocking: one request, one response).

use std::{
    io,
    os::unix::net::UnixStream,
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    model::socket::InetSocket,
    wire::{
        profile,
        protocol::{self, MAX_RESPONSE, ProtocolError, Request, Response, Status},
    },
};

/// Where `sockstat agent` listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/sockstat/agent.sock";

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("no sockstat agent is running at {0} (start one with `sockstat agent`)")]
    NotRunning(PathBuf),
    #[error(
        "permission denied on {0}: the agent socket is mode 0600, owned by the agent's user (run as that user, e.g. root)"
    )]
    PermissionDenied(PathBuf),
    #[error("connecting to the agent at {path}")]
    Connect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("talking to the agent at {path}")]
    Protocol {
        path: PathBuf,
        #[source]
        source: ProtocolError,
    },
    #[error("the agent at {path} cannot answer this: {reason}")]
    Unavailable { path: PathBuf, reason: String },
    #[error(
        "the agent at {path} speaks another version of the query protocol ({detail}); restart it with this sockstat"
    )]
    Incompatible { path: PathBuf, detail: String },
    #[error("the agent answered with an error: {0}")]
    Agent(String),
    #[error("the agent at {path} does not track network namespace {netns}, this query's ({reason})")]
    NotTracked { path: PathBuf, netns: u32, reason: String },
    #[error("reading this process's network namespace")]
    Netns(#[source] io::Error),
    #[error("the agent sent an unexpected response to {0}")]
    Unexpected(&'static str),
}

impl ClientError {
    /// True when the agent is simply not there (or not ours to use), so a query may fall
    /// back to dumping the kernel itself.
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            ClientError::NotRunning(_)
                | ClientError::PermissionDenied(_)
                | ClientError::NotTracked { .. }
                | ClientError::Unavailable { .. }
                | ClientError::Incompatible { .. }
        )
    }
}

/// What a request got: a decoded response, or TCP rows kept as received.
enum Answered {
    Decoded(Box<Response>),
    Rows(RowsFrame),
}

/// TCP rows as the agent sent them, in the frame they came in (`wire::rows` layout),
/// checked, with where each row starts.
#[derive(Debug)]
pub struct RowsFrame {
    body: Body,
    range: std::ops::Range<usize>,
    /// Each row's offset in the rows.
    starts: Vec<u32>,
}

impl RowsFrame {
    #[must_use]
    pub fn len(&self) -> usize {
        self.starts.len()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.starts.is_empty()
    }

    /// Row `i` (below [`RowsFrame::len`]).
    #[must_use]
    pub fn row(&self, i: usize) -> crate::wire::rows::Row<'_> {
        let rows = &self.body[self.range.clone()];
        let at = self.starts[i] as usize;
        let end = self.starts.get(i + 1).map_or(rows.len(), |&e| e as usize);
        crate::wire::rows::Row(&rows[at..end])
    }
}

/// An answer's frame body: received over the socket, or mapped from the memory file the
/// agent handed over ([`Response::Shared`]).
#[derive(Debug)]
enum Body {
    Heap(Vec<u8>),
    Mapped(std::sync::Arc<Mapping>),
}

impl std::ops::Deref for Body {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        match self {
            Body::Heap(v) => v,
            Body::Mapped(m) => (**m).as_ref(),
        }
    }
}

/// A read-only mapping of an answer's memory file, with the connection it came on: the
/// agent reuses the file for another answer only once that connection is closed.
#[derive(Debug)]
pub struct Mapping {
    at: std::ptr::NonNull<u8>,
    len: usize,
    _connection: UnixStream,
}

// SAFETY: the mapping is read-only and lives until the value is dropped; nothing else
// unmaps it.
unsafe impl Send for Mapping {}
// SAFETY: as above: shared reads of read-only memory.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `file`, read-only, every page at once.
    fn new(file: &std::os::fd::OwnedFd, len: usize, connection: UnixStream) -> io::Result<Mapping> {
        if len == 0 {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "an empty shared answer"));
        }
        // The file must hold what the answer says (a shorter one would fault on access).
        let have = nix::sys::stat::fstat(file).map_err(io::Error::from)?.st_size;
        if u64::try_from(have).unwrap_or(0) < len as u64 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("the shared answer's file holds {have} bytes, not the {len} announced"),
            ));
        }
        // SAFETY: a fresh private read-only mapping of a file this process holds; it is
        // only read through `as_ref` while `self` lives, and unmapped in `drop`.
        let at = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | libc::MAP_POPULATE,
                std::os::fd::AsRawFd::as_raw_fd(file),
                0,
            )
        };
        if at == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let at = std::ptr::NonNull::new(at.cast::<u8>()).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { at, len, _connection: connection })
    }
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        // SAFETY: `len` readable bytes at `at`, mapped until drop.
        unsafe { std::slice::from_raw_parts(self.at.as_ptr(), self.len) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `new`, unmapped once.
        unsafe { libc::munmap(self.at.as_ptr().cast(), self.len) };
    }
}

/// Where each of `rows`' rows starts, every row checked.
fn row_starts(rows: &[u8]) -> Result<Vec<u32>, ProtocolError> {
    let mut starts = Vec::with_capacity(rows.len() / crate::wire::rows::ROW_V4);
    let mut at = 0usize;
    for row in crate::wire::rows::rows(rows) {
        let row = row?;
        // A frame is at most MAX_RESPONSE bytes, far below 4 GiB.
        starts.push(u32::try_from(at).map_err(|_| ProtocolError::TooLarge { len: u32::MAX, max: MAX_RESPONSE })?);
        at += row.0.len();
    }
    Ok(starts)
}

pub struct Client {
    stream: UnixStream,
    path: PathBuf,
    /// How long connect() took, for the profile line.
    connect_us: u64,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let started = std::time::Instant::now();
        let stream = UnixStream::connect(path).map_err(|source| match source.kind() {
            io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused => ClientError::NotRunning(path.to_path_buf()),
            io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(path.to_path_buf()),
            _ => ClientError::Connect { path: path.to_path_buf(), source },
        })?;
        // A wedged agent must not hang a query forever.
        let timeout = Some(Duration::from_secs(30));
        stream
            .set_read_timeout(timeout)
            .and_then(|()| stream.set_write_timeout(timeout))
            .map_err(|source| ClientError::Connect { path: path.to_path_buf(), source })?;
        Ok(Client { stream, path: path.to_path_buf(), connect_us: profile::us_since(started) })
    }

    fn call(&mut self, req: &Request) -> Result<Response, ClientError> {
        match self.call_keeping_rows(req, false)? {
            Answered::Decoded(r) => Ok(*r),
            // Not asked for.
            Answered::Rows(_) => Err(ClientError::Unexpected("a query")),
        }
    }

    /// [`Client::call`]; with `keep_rows`, TCP rows come back as they were received.
    fn call_keeping_rows(&mut self, req: &Request, keep_rows: bool) -> Result<Answered, ClientError> {
        // Answers that may be large (rows kept as they come, owner records) are asked for
        // in shared memory; one that came so but cannot be read is asked for again, over
        // the socket.
        match self.exchange(req, keep_rows, keep_rows) {
            Err(ClientError::Protocol { source: ProtocolError::Shared(e), .. }) => {
                tracing::debug!(error = %e, "a shared answer could not be read; asking again over the socket");
                *self = Client::connect(&self.path)?;
                self.exchange(req, keep_rows, false)
            }
            other => other,
        }
    }

    /// One request and its answer (`shared`: asked for in shared memory).
    fn exchange(&mut self, req: &Request, keep_rows: bool, shared: bool) -> Result<Answered, ClientError> {
        let wrap = |source| ClientError::Protocol { path: self.path.clone(), source };
        let sent = std::time::Instant::now();
        let wrapped;
        let req = if shared {
            wrapped = Request::Shared(Box::new(req.clone()));
            &wrapped
        } else {
            req
        };
        if let Err(e) = protocol::write_frame(&mut self.stream, req) {
            // An agent that refuses the query (busy) may answer and close before it has
            // read the request: its answer is still there to read. Any other write error
            // is the query's.
            let answered_first = matches!(&e, ProtocolError::Io(io)
                if matches!(io.kind(), io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset));
            if !answered_first {
                return Err(wrap(e));
            }
        }
        let mut phases =
            profile::Phases { connect_us: self.connect_us, request_us: profile::us_since(sent), ..Default::default() };
        let resp = self.read_answer(&mut phases, keep_rows).map_err(|source| match source {
            // An agent of another sockstat build: its answer is of another version, or
            // (from before versions) does not decode here.
            ProtocolError::Decode(_) | ProtocolError::Version { .. } => {
                ClientError::Incompatible { path: self.path.clone(), detail: source.to_string() }
            }
            source => ClientError::Protocol { path: self.path.clone(), source },
        })?;
        profile::record(phases);
        let resp = match resp {
            Answered::Rows(rows) => return Ok(Answered::Rows(rows)),
            Answered::Decoded(r) => *r,
        };
        match resp {
            // An agent of another version cannot decode what this client asks.
            Response::Error(msg) if msg.starts_with("bad request") => {
                Err(ClientError::Incompatible { path: self.path.clone(), detail: msg })
            }
            Response::Error(msg) => Err(ClientError::Agent(msg)),
            Response::Unavailable { reason } => Err(ClientError::Unavailable { path: self.path.clone(), reason }),
            Response::NotTracked { netns, reason } => {
                Err(ClientError::NotTracked { path: self.path.clone(), netns, reason })
            }
            other => Ok(Answered::Decoded(Box::new(other))),
        }
    }

    /// One frame, as `protocol::read_frame` reads it, timed phase by phase.
    fn read_answer(&mut self, phases: &mut profile::Phases, keep_rows: bool) -> Result<Answered, ProtocolError> {
        use std::io::Read;
        let waiting = std::time::Instant::now();
        let mut header = [0u8; 4];
        let file = self.read_header(&mut header)?;
        phases.answer_us = profile::us_since(waiting);
        let reading = std::time::Instant::now();
        let mut body = vec![0u8; protocol::frame_len(header, MAX_RESPONSE)?];
        self.stream.read_exact(&mut body)?;
        let body = match (protocol::shared_in(&body), file) {
            (Some(len), Some(file)) => {
                let len = usize::try_from(len).ok().filter(|&l| l <= MAX_RESPONSE as usize).ok_or(
                    ProtocolError::TooLarge { len: u32::try_from(len).unwrap_or(u32::MAX), max: MAX_RESPONSE },
                )?;
                let mapping = self.stream.try_clone().and_then(|c| Mapping::new(&file, len, c));
                Body::Mapped(std::sync::Arc::new(mapping.map_err(ProtocolError::Shared)?))
            }
            (Some(_), None) => {
                return Err(ProtocolError::Shared(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "a shared answer came without its file",
                )));
            }
            (None, _) => Body::Heap(body),
        };
        phases.transfer_us = profile::us_since(reading);
        phases.bytes = body.len() as u64 + 4;
        let decoding = std::time::Instant::now();

        // TCP rows are decoded straight from the frame, not copied out of it first.
        let resp = match protocol::rows_in(&body) {
            Some(rows) if keep_rows => {
                // Checked whole here: the rows are then read at fixed offsets.
                let at = rows.as_ptr() as usize - body.as_ptr() as usize;
                let range = at..at + rows.len();
                let starts = row_starts(rows)?;
                phases.decode_us = profile::us_since(decoding);
                return Ok(Answered::Rows(RowsFrame { body, range, starts }));
            }
            Some(rows) => crate::wire::rows::decode(rows)
                .map(|s| Answered::Decoded(Box::new(Response::Sockets(s))))
                .map_err(ProtocolError::from),
            // Owner records (megabytes at 100k sockets) stay in the buffer they came in.
            None => match (protocol::owners_in(&body), body) {
                (Some(range), Body::Heap(mut body)) => {
                    body.copy_within(range.clone(), 0);
                    body.truncate(range.len());
                    crate::model::owner::OwnerRecords::new(body)
                        .map(|o| Answered::Decoded(Box::new(Response::Owners(o))))
                        .map_err(ProtocolError::from)
                }
                (Some(range), Body::Mapped(mapping)) => crate::model::owner::OwnerRecords::held(mapping, range)
                    .map(|o| Answered::Decoded(Box::new(Response::Owners(o))))
                    .map_err(ProtocolError::from),
                (None, body) => protocol::decode(&body).map(|r| Answered::Decoded(Box::new(r))),
            },
        };
        phases.decode_us = profile::us_since(decoding);
        resp
    }

    /// Reads a frame's length, and the descriptor that may come with it (a shared
    /// answer's memory file).
    fn read_header(&mut self, header: &mut [u8; 4]) -> io::Result<Option<std::os::fd::OwnedFd>> {
        use std::io::Read;
        use std::os::fd::{AsRawFd, FromRawFd};
        // Room for more descriptors than an agent sends (one), so that extra ones are
        // received and closed rather than cut off.
        let mut space = nix::cmsg_space!([std::os::fd::RawFd; 8]);
        let (got, file) = loop {
            let mut iov = [io::IoSliceMut::new(&mut header[..])];
            let msg = match nix::sys::socket::recvmsg::<()>(
                self.stream.as_raw_fd(),
                &mut iov,
                Some(&mut space),
                nix::sys::socket::MsgFlags::MSG_CMSG_CLOEXEC,
            ) {
                Ok(msg) => msg,
                Err(nix::errno::Errno::EINTR) => continue,
                Err(e) => return Err(e.into()),
            };
            let mut file = None;
            // Cut off control data (more descriptors than room, or one the kernel refused
            // to install) gives no file: the answer is then asked for again.
            if let Ok(cmsgs) = msg.cmsgs() {
                for cmsg in cmsgs {
                    if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = cmsg {
                        for fd in fds {
                            // SAFETY: a descriptor the kernel just installed for this process.
                            let owned = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
                            // Only the first is the answer's; others are closed here.
                            file.get_or_insert(owned);
                        }
                    }
                }
            }
            break (msg.bytes, file);
        };
        if got == 0 {
            return Err(io::Error::from(io::ErrorKind::UnexpectedEof));
        }
        self.stream.read_exact(&mut header[got..])?;
        Ok(file)
    }

    /// As [`Client::tcp_filtered`], the rows kept as the agent sent them (read one by one
    /// later: [`RowsFrame`]).
    pub fn tcp_rows(
        mut self,
        netns: u32,
        families: &[u16],
        states: u32,
        filter: Option<&crate::filter::Filter>,
    ) -> Result<RowsFrame, ClientError> {
        let filter = filter.filter(|f| f.expr.is_some()).cloned();
        match self.call_keeping_rows(&Request::Tcp { netns, families: families.to_vec(), states, filter }, true)? {
            Answered::Rows(rows) => Ok(rows),
            Answered::Decoded(r) => match *r {
                Response::Sockets(s) => {
                    let mut bytes = Vec::new();
                    for sock in &s {
                        crate::wire::rows::push_row(&mut bytes, sock);
                    }
                    let starts = row_starts(&bytes)
                        .map_err(|source| ClientError::Protocol { path: self.path.clone(), source })?;
                    Ok(RowsFrame { range: 0..bytes.len(), body: Body::Heap(bytes), starts })
                }
                _ => Err(ClientError::Unexpected("a socket query")),
            },
        }
    }

    pub fn tcp(self, netns: u32, families: &[u16], states: u32) -> Result<Vec<InetSocket>, ClientError> {
        self.tcp_filtered(netns, families, states, None)
    }

    /// As [`Client::tcp`], with the FILTER expression applied by the agent.
    pub fn tcp_filtered(
        mut self,
        netns: u32,
        families: &[u16],
        states: u32,
        filter: Option<&crate::filter::Filter>,
    ) -> Result<Vec<InetSocket>, ClientError> {
        let filter = filter.filter(|f| f.expr.is_some()).cloned();
        match self.call(&Request::Tcp { netns, families: families.to_vec(), states, filter })? {
            Response::Sockets(s) => Ok(s),
            Response::Rows(rows) => crate::wire::rows::decode(&rows.0)
                .map_err(|e| ClientError::Protocol { path: self.path.clone(), source: e.into() }),
            _ => Err(ClientError::Unexpected("a socket query")),
        }
    }

    /// Every socket descriptor of every process, as the agent's owners iterator reads
    /// them now (see [`Request::Owners`]).
    pub fn owners(mut self, pidns: u64) -> Result<crate::model::owner::OwnerRecords, ClientError> {
        match self.call_keeping_rows(&Request::Owners { pidns }, true)? {
            Answered::Decoded(r) => match *r {
                Response::Owners(o) => Ok(o),
                _ => Err(ClientError::Unexpected("an owners query")),
            },
            Answered::Rows(_) => Err(ClientError::Unexpected("an owners query")),
        }
    }

    /// The tables `spec` names, dumped by the agent now in this process's network
    /// namespace (see [`Request::Dump`]).
    pub fn dump(
        mut self,
        netns: u32,
        spec: &protocol::DumpSpec,
    ) -> Result<crate::model::socket::Snapshot, ClientError> {
        match self.call(&Request::Dump { netns, spec: spec.clone() })? {
            Response::Dump(s) => Ok(s),
            _ => Err(ClientError::Unexpected("a dump query")),
        }
    }

    pub fn status(mut self) -> Result<Status, ClientError> {
        match self.call(&Request::Status)? {
            Response::Status(s) => Ok(s),
            _ => Err(ClientError::Unexpected("a status query")),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::net::UnixListener;

    use super::*;
    use crate::wire::protocol::{read_frame, write_frame};

    /// An agent that answers each connection with `answer(request, stream)`, `n` times.
    fn fake_agent(
        n: usize,
        answer: impl Fn(Request, &mut UnixStream) + Send + 'static,
    ) -> (PathBuf, std::thread::JoinHandle<()>) {
        let dir = std::env::temp_dir().join(format!("sockstat-client-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("agent.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let agent = std::thread::spawn(move || {
            for _ in 0..n {
                let (mut s, _) = listener.accept().unwrap();
                let req: Request = read_frame(&mut s, MAX_RESPONSE).unwrap();
                answer(req, &mut s);
            }
        });
        (path, agent)
    }

    fn rows() -> Vec<u8> {
        let s = InetSocket::tcp(2, 1, ("10.0.0.1".parse().unwrap(), 80), ("10.0.0.2".parse().unwrap(), 5000), 7);
        let mut bytes = Vec::new();
        crate::wire::rows::push_row(&mut bytes, &s);
        bytes
    }

    /// A shared answer the client cannot read (no file with it, or a file shorter than
    /// announced) is asked for again over the socket, and the rows come that way.
    #[test]
    fn a_shared_answer_that_cannot_be_read_is_asked_for_again() {
        for short_file in [false, true] {
            let (path, agent) = fake_agent(2, move |req, s| match req {
                Request::Shared(_) if short_file => {
                    let file = nix::sys::memfd::memfd_create(c"short", nix::sys::memfd::MFdFlags::MFD_CLOEXEC).unwrap();
                    nix::unistd::write(&file, b"too short").unwrap();
                    let note = protocol::encode(&Response::Shared { len: 1 << 20 }).unwrap();
                    let fd = [std::os::fd::AsRawFd::as_raw_fd(&file)];
                    let cmsg = [nix::sys::socket::ControlMessage::ScmRights(&fd)];
                    nix::sys::socket::sendmsg::<()>(
                        std::os::fd::AsRawFd::as_raw_fd(s),
                        &[io::IoSlice::new(&note)],
                        &cmsg,
                        nix::sys::socket::MsgFlags::empty(),
                        None,
                    )
                    .unwrap();
                }
                Request::Shared(_) => write_frame(s, &Response::Shared { len: 1 << 20 }).unwrap(),
                Request::Tcp { .. } => write_frame(s, &Response::Rows(crate::wire::rows::TcpRows(rows()))).unwrap(),
                other => panic!("unexpected request {other:?}"),
            });
            let frame = Client::connect(&path).unwrap().tcp_rows(1, &[2], 0xfff, None).expect("rows over the socket");
            assert_eq!(frame.len(), 1);
            assert_eq!(frame.row(0).dport(), 5000);
            agent.join().unwrap();
        }
    }
}
