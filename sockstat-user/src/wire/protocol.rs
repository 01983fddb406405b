//! The agent's query protocol over its unix socket: one request, one response, each a
//! frame of a little-endian u32 length followed by the protocol [`VERSION`] and the
//! message, postcard-encoded. A client and an agent of different builds find out from the
//! version before they decode anything else.

use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

use crate::model::owner::OwnerRecords;
use crate::model::socket::InetSocket;

/// The protocol's version: any change to [`Request`], [`Response`] or what they carry
/// bumps it. (Its first value is larger than any message's variant count, so an agent
/// from before versions existed reads it as an unknown request.)
pub const VERSION: u32 = 106;

/// Requests larger than this are refused: a query is a few bytes.
pub const MAX_REQUEST: u32 = 64 * 1024;
/// Responses are bounded too, so a corrupt length cannot make a client allocate wildly.
pub const MAX_RESPONSE: u32 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// TCP sockets of these families (dumped in this order) in these states, of network
    /// namespace `netns` (an inode number: the client's own, /proc/self/ns/net, which
    /// `-N NAME` made /run/netns/NAME's). The agent's socket path is visible from every
    /// namespace, and it answers from that namespace's part of its table.
    /// `filter`: the query's parsed FILTER expression, applied by the agent so only
    /// matching sockets cross the socket (the client applies it again; it is idempotent).
    Tcp {
        netns: u32,
        families: Vec<u16>,
        states: u32,
        filter: Option<crate::filter::Filter>,
    },
    Status,
    /// Every socket descriptor of every process, read at this moment from the kernel's
    /// task and file tables by the agent's owners iterator (`-p`).
    /// `pidns`: the client's pid namespace inode; the agent answers only a client that
    /// sees the same pids as it does.
    Owners {
        pidns: u64,
    },
    /// The query's tables other than TCP (UDP, UNIX, packet, netlink, DCCP, SCTP,
    /// vsock), dumped by the agent at this moment in namespace `netns`.
    Dump {
        netns: u32,
        spec: DumpSpec,
    },
    /// The request inside, its answer sent in shared memory if it is large
    /// ([`Response::Shared`]).
    Shared(Box<Request>),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    pub pid: u32,
    pub netns: u32,
    pub uptime_ms: u64,
    /// Transitions the eBPF program saw (kernel counter).
    pub events_seen: u64,
    /// Transitions the agent received and applied.
    pub events_received: u64,
    /// Ring-buffer reservations that failed in the kernel.
    pub events_lost_kernel: u64,
    /// Transitions the kernel ran neither transition program for (`recursion_misses` of
    /// the first that the second did not make up for). Lost like the others (a resync
    /// follows).
    #[serde(default)]
    pub events_missed: u64,
    /// Transitions that interrupted the first transition program on its CPU and that the
    /// second ran: not lost.
    #[serde(default)]
    pub events_rescued: u64,
    /// Records the agent could not decode.
    pub events_malformed: u64,
    /// Events the agent's ring reader took but dropped: too many were waiting for its
    /// event loop. Lost like the others (a resync follows).
    #[serde(default)]
    pub events_overflowed: u64,
    /// The most events that have waited at once between the agent's ring reader and its
    /// event loop (they wait there while the loop answers a query or dumps).
    #[serde(default)]
    pub events_queued_peak: u64,
    /// Kernel field reads that failed (those events had zeroed fields).
    pub read_errors: u64,
    /// Full re-dumps of the table after a loss (the initial seed is not counted).
    pub resyncs: u64,
    /// Sockets in the table, every namespace's.
    pub table_size: u64,
    /// Each tracked network namespace, by inode number.
    pub namespaces: Vec<NamespaceStatus>,
    /// Milliseconds the initial seed (sock_diag dump) took.
    pub seed_ms: u64,
    /// Timeline rows committed to disk, and records dropped because the writer fell
    /// behind (each drop is marked as a gap); `None` without a timeline.
    pub timeline_committed: Option<u64>,
    pub timeline_dropped: Option<u64>,
    /// Whether accepted sockets are attributed to the accepting process.
    pub accept_hook: bool,
    /// Whether the agent can answer [`Request::Owners`] (its owners iterator loaded).
    pub owners_iter: bool,
    /// Whether it keeps owners between queries (the task listing and the notes of
    /// changed descriptor tables work, and it runs in the initial pid namespace).
    #[serde(default)]
    pub owners_kept: bool,
    /// `-p` answers since start: walks of every process, walks of one process, and
    /// answers made from what was kept (with walks of the processes that changed).
    #[serde(default)]
    pub owner_walks_whole: u64,
    #[serde(default)]
    pub owner_walks_process: u64,
    #[serde(default)]
    pub owner_answers_kept: u64,
    /// Answers sent in shared memory since start ([`Response::Shared`]).
    #[serde(default)]
    pub answers_shared: u64,
    /// Whether the sock_ops program is attached: then TCP answers come from the table
    /// alone (SYN-SENT with its port, SYN-RECV and timewait sockets modelled and checked).
    pub sock_ops: bool,
    /// Checks of the modelled mini sockets: exact lookups, dumps, timewait count
    /// mismatches.
    pub mini_lookups: u64,
    pub mini_dumps: u64,
    pub mini_count_mismatches: u64,
    /// Full sockets the checks found already closed or handed to a timewait socket, their
    /// close never reported by the kernel's tracepoint; removed from the table.
    #[serde(default)]
    pub closes_unreported: u64,
    /// Dumps of the mini sockets a query would have made but did not: one was made less
    /// than 250 ms before (the answer used it and the events since).
    #[serde(default)]
    pub mini_dumps_spared: u64,
    /// Whether the kernel counts BPF program runs and their time now
    /// (`kernel.bpf_stats_enabled`); `None` if the agent could not tell.
    pub bpf_stats: Option<bool>,
    /// The agent's BPF programs with what the kernel counted of them.
    pub programs: Vec<ProgramStatus>,
}

/// One of the agent's BPF programs, with the kernel's statistics (`bpftool prog show`'s
/// `run_time_ns` and `run_cnt`), which count only while `kernel.bpf_stats_enabled` is 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramStatus {
    /// What it does: `transition`, `accept hook`, `owners iterator`.
    pub role: String,
    /// Its name in the object (the kernel shows the first 15 bytes) and its kernel id.
    pub name: String,
    pub id: u32,
    /// Runs and nanoseconds spent in the program, counted while stats were on.
    pub run_count: u64,
    pub run_time_ns: u64,
    /// `run_time_ns / run_count`, rounded; `None` before any counted run.
    pub ns_per_run: Option<u64>,
    /// `run_count` over the agent's uptime.
    pub runs_per_sec: u64,
}

/// One network namespace of the agent's table.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamespaceStatus {
    /// Inode number (`/proc/PID/ns/net`, `ip netns identify`'s target, `trace --json`'s
    /// `netns`).
    pub netns: u32,
    /// Its `ip netns` name, when the agent knows it through /run/netns.
    pub name: Option<String>,
    /// The agent's own namespace.
    pub own: bool,
    /// Full sockets in its table.
    pub sockets: u64,
}

/// The sock_diag dumps of a query's tables other than TCP (and raw, read from /proc), as
/// data: what the client dumps itself, or asks the agent to dump for it in the namespace
/// it asks about ([`crate::wire::protocol::Request::Dump`]). Selection (states of UNIX
/// sockets' types, the FILTER expression) is the client's, after the dump.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DumpSpec {
    pub netlink: bool,
    pub packet: bool,
    /// The UNIX dump's state mask.
    pub unix: Option<u32>,
    /// (protocol, families in dump order, states) of each inet table: UDP, DCCP, SCTP.
    pub inet: Vec<(u8, Vec<u16>, u32)>,
    /// The vsock dump's state mask.
    pub vsock: Option<u32>,
    /// (families, states) of the MPTCP dump: IPPROTO_MPTCP (262) with
    /// INET_DIAG_REQ_PROTOCOL, per family as ss asks (the eBPF program traces TCP
    /// transitions, not MPTCP sockets, so this is always a dump).
    #[serde(default)]
    pub mptcp: Option<(Vec<u16>, u32)>,
    /// The AF_XDP dump (ss's `xdp_show`: every XDP socket, all UNCONN).
    #[serde(default)]
    pub xdp: bool,
    /// What the dump asks the kernel for: `-e` (or `--cgroup`), `-m`, `-i`, `--tos`, and
    /// the decoded attributes of `--inet-sockopt` and of a fwmark/cgroup condition.
    pub details: bool,
    pub mem: bool,
    pub info: bool,
    pub tos: bool,
    pub attrs: bool,
}

impl DumpSpec {
    #[must_use]
    pub fn is_empty(&self) -> bool {
        !self.netlink
            && !self.packet
            && self.unix.is_none()
            && self.inet.is_empty()
            && self.vsock.is_none()
            && self.mptcp.is_none()
            && !self.xdp
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// TCP sockets as records (answers the agent makes with a kernel dump).
    Sockets(Vec<InetSocket>),
    /// TCP sockets from the agent's table, in the fixed row layout of `wire::rows`.
    Rows(crate::wire::rows::TcpRows),
    Status(Status),
    Error(String),
    /// The agent does not track the namespace asked about and could not start to
    /// (no way into it): the client may ask the kernel itself.
    NotTracked {
        netns: u32,
        reason: String,
    },
    /// The agent cannot answer this request (no owners iterator, another pid
    /// namespace): the client does the work itself (`auto`) or reports why.
    Unavailable {
        reason: String,
    },
    /// The answer to [`Request::Owners`], in pid then descriptor order.
    Owners(OwnerRecords),
    /// The answer to [`Request::Dump`]: each table as the kernel dumped it.
    Dump(crate::model::socket::Snapshot),
    /// The answer is the body of a frame `len` bytes long, in the memory file whose
    /// descriptor came with this message (SCM_RIGHTS, read-only): see
    /// [`Request::Shared`].
    Shared {
        len: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("agent socket I/O")]
    Io(#[from] io::Error),
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: u32, max: u32 },
    #[error("malformed message")]
    Decode(#[from] postcard::Error),
    #[error("malformed answer")]
    Rows(#[from] crate::wire::rows::RowsError),
    #[error("malformed answer")]
    Owners(#[from] crate::model::owner::TornRecords),
    #[error("reading an answer in shared memory")]
    Shared(#[source] io::Error),
    #[error("the other side speaks protocol version {theirs}, this sockstat {VERSION}")]
    Version { theirs: u32 },
}

/// A frame, as [`encode`] makes it.
pub type Encoded = Result<Vec<u8>, ProtocolError>;

pub fn encode<T: Serialize>(msg: &T) -> Result<Vec<u8>, ProtocolError> {
    let mut buf = vec![0u8; 4];
    buf = postcard::to_extend(&(VERSION, msg), buf)?;
    let len = u32::try_from(buf.len() - 4).map_err(|_| ProtocolError::TooLarge { len: u32::MAX, max: MAX_RESPONSE })?;
    buf[..4].copy_from_slice(&len.to_le_bytes());
    Ok(buf)
}

/// Bytes a [`Response::Rows`] frame has at most before its rows: the frame's length,
/// then the version, the variant index and the rows' byte count as varints.
pub const ROWS_FRAME_HEAD: usize = 4 + 3 * 10;

/// The frame [`encode`] makes of a [`Response::Rows`] of `len` bytes, written in `buf`
/// (emptied first, grown if it lacks room), the rows written by `fill` straight into it:
/// an answer of 100k rows is 5 MiB, and a copy of it, in fresh pages, was half of what
/// the agent spent on the answer. `fill` must write exactly `len` bytes; if it does not,
/// the rows are copied into a frame of their real length.
///
/// # Errors
/// [`ProtocolError::TooLarge`] for rows beyond 4 GiB; postcard's errors.
pub fn encode_rows_into(buf: Vec<u8>, len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Result<Vec<u8>, ProtocolError> {
    encode_bytes_into(buf, ROWS_VARIANT, len, fill)
}

/// [`encode_rows_into`] for a [`Response::Owners`] of `len` bytes of records: 100k
/// records are 4 MiB, written once, into their frame. If `fill` writes another length,
/// the records are copied into a frame of their real length; if it writes no whole
/// number of records, the answer is an error.
///
/// # Errors
/// As [`encode_rows_into`].
pub fn encode_owners_into(buf: Vec<u8>, len: usize, fill: impl FnOnce(&mut Vec<u8>)) -> Result<Vec<u8>, ProtocolError> {
    encode_bytes_into(buf, OWNERS_VARIANT, len, fill)
}

/// A frame of the variant `variant` whose one field is a byte string (rows, owner
/// records) of `len` bytes, written in place by `fill`.
fn encode_bytes_into(
    mut buf: Vec<u8>,
    variant: u32,
    len: usize,
    fill: impl FnOnce(&mut Vec<u8>),
) -> Result<Vec<u8>, ProtocolError> {
    // postcard writes the version, the variant index and the byte string's length as
    // varints, then the bytes: what precedes them depends only on their length.
    buf.clear();
    buf.reserve(ROWS_FRAME_HEAD + len);
    buf.extend_from_slice(&[0; 4]);
    buf = postcard::to_extend(&(VERSION, variant, len as u64), buf)?;
    let at = buf.len();
    fill(&mut buf);
    if buf.len() - at != len {
        let bytes = buf.split_off(at);
        return match variant {
            ROWS_VARIANT => encode(&Response::Rows(crate::wire::rows::TcpRows(bytes))),
            _ => encode(&Response::Owners(OwnerRecords::new(bytes)?)),
        };
    }
    let frame =
        u32::try_from(buf.len() - 4).map_err(|_| ProtocolError::TooLarge { len: u32::MAX, max: MAX_RESPONSE })?;
    buf[..4].copy_from_slice(&frame.to_le_bytes());
    Ok(buf)
}

pub fn write_frame<T: Serialize>(w: &mut impl Write, msg: &T) -> Result<(), ProtocolError> {
    w.write_all(&encode(msg)?)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame's length; checks it against `max`.
pub fn frame_len(header: [u8; 4], max: u32) -> Result<usize, ProtocolError> {
    let len = u32::from_le_bytes(header);
    if len > max {
        return Err(ProtocolError::TooLarge { len, max });
    }
    Ok(len as usize)
}

pub fn read_frame<T: for<'de> Deserialize<'de>>(r: &mut impl Read, max: u32) -> Result<T, ProtocolError> {
    let mut header = [0u8; 4];
    r.read_exact(&mut header)?;
    let mut body = vec![0u8; frame_len(header, max)?];
    r.read_exact(&mut body)?;
    decode(&body)
}

/// A frame's body: the version, then the message.
///
/// # Errors
/// Another version ([`ProtocolError::Version`]), or a message that does not decode.
pub fn decode<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, ProtocolError> {
    let (theirs, rest) = postcard::take_from_bytes::<u32>(body)?;
    if theirs != VERSION {
        return Err(ProtocolError::Version { theirs });
    }
    Ok(postcard::from_bytes(rest)?)
}

/// The rows of a frame body that is a [`Response::Rows`], borrowed from it (an answer of
/// 100k rows is megabytes: a copy of them is thousands of page faults); `None` for any
/// other body, which [`decode`] reads.
#[must_use]
pub fn rows_in(body: &[u8]) -> Option<&[u8]> {
    bytes_of_variant(body, ROWS_VARIANT)
}

/// The owner records of a frame body that is a [`Response::Owners`], where they lie in it
/// (moved to the front of the body they are the answer, without a copy into new memory).
#[must_use]
pub fn owners_in(body: &[u8]) -> Option<std::ops::Range<usize>> {
    let records = bytes_of_variant(body, OWNERS_VARIANT)?;
    let at = records.as_ptr() as usize - body.as_ptr() as usize;
    Some(at..at + records.len())
}

/// The byte string of a body that is the response variant `want` holding one byte string.
fn bytes_of_variant(body: &[u8], want: u32) -> Option<&[u8]> {
    let (version, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    let (variant, rest) = postcard::take_from_bytes::<u32>(rest).ok()?;
    let (bytes, rest) = postcard::take_from_bytes::<&[u8]>(rest).ok()?;
    (version == VERSION && variant == want && rest.is_empty()).then_some(bytes)
}

/// The length a frame body that is a [`Response::Shared`] announces; `None` for any
/// other body.
#[must_use]
pub fn shared_in(body: &[u8]) -> Option<u64> {
    let (version, rest) = postcard::take_from_bytes::<u32>(body).ok()?;
    let (variant, rest) = postcard::take_from_bytes::<u32>(rest).ok()?;
    let (len, rest) = postcard::take_from_bytes::<u64>(rest).ok()?;
    (version == VERSION && variant == SHARED_VARIANT && rest.is_empty()).then_some(len)
}

/// [`Response::Shared`]'s variant index.
const SHARED_VARIANT: u32 = 8;

/// [`Response::Rows`]'s variant index, as postcard writes it.
const ROWS_VARIANT: u32 = 1;

/// [`Response::Owners`]'s variant index.
const OWNERS_VARIANT: u32 = 6;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_records_are_found_in_their_frame_where_they_lie() {
        let bytes: Vec<u8> = (0..u8::try_from(sockstat_ebpf::OwnerRecord::SIZE * 3).unwrap()).collect();
        let records = OwnerRecords::new(bytes.clone()).unwrap();
        let frame = encode(&Response::Owners(records)).unwrap();
        let body = &frame[4..];
        let range = owners_in(body).expect("an owners frame");
        assert_eq!(&body[range], &bytes[..]);
        // Other responses are not owners, nor rows owners.
        assert!(owners_in(&encode(&Response::Error("x".into())).unwrap()[4..]).is_none());
        let rows = encode(&Response::Rows(crate::wire::rows::TcpRows(bytes))).unwrap();
        assert!(owners_in(&rows[4..]).is_none() && rows_in(&rows[4..]).is_some());
        let shared = encode(&Response::Shared { len: 5 << 20 }).unwrap();
        assert_eq!(shared_in(&shared[4..]), Some(5 << 20));
        assert_eq!(shared_in(&rows[4..]), None);
    }

    #[test]
    fn rows_written_into_their_frame_encode_as_the_response_does() {
        // Lengths on each side of the varint's byte boundaries.
        for len in [0usize, 1, 127, 128, 300, 16_383, 16_384, 70_000, 2_097_152] {
            let rows: Vec<u8> = (0..len).map(|i| (i % 251) as u8).collect();
            let want = encode(&Response::Rows(crate::wire::rows::TcpRows(rows.clone()))).unwrap();
            assert_eq!(encode_rows_into(Vec::new(), len, |b| b.extend_from_slice(&rows)).unwrap(), want, "{len} bytes");
            // A fill of another length than announced still makes the right frame.
            if len > 0 {
                assert_eq!(
                    encode_rows_into(Vec::new(), len - 1, |b| b.extend_from_slice(&rows)).unwrap(),
                    want,
                    "{len} bytes, one more"
                );
                assert_eq!(
                    encode_rows_into(Vec::new(), len + 1, |b| b.extend_from_slice(&rows)).unwrap(),
                    want,
                    "{len} bytes, one less"
                );
            }
        }
    }

    #[test]
    fn owner_records_written_into_their_frame_encode_as_the_response_does() {
        let size = sockstat_ebpf::OwnerRecord::SIZE;
        for n in [0usize, 1, 3, 4, 409, 410, 100_000] {
            let bytes: Vec<u8> = (0..n * size).map(|i| (i % 251) as u8).collect();
            let want = encode(&Response::Owners(OwnerRecords::new(bytes.clone()).unwrap())).unwrap();
            let made = encode_owners_into(vec![9; 100], n * size, |b| b.extend_from_slice(&bytes)).unwrap();
            assert_eq!(made, want, "{n} records");
            // A fill of another length than announced: the frame of what was written.
            if n > 0 {
                let made = encode_owners_into(Vec::new(), (n - 1) * size, |b| b.extend_from_slice(&bytes)).unwrap();
                assert_eq!(made, want, "{n} records, one more than announced");
            }
        }
        // Not whole records: an error, not a frame the client would misread.
        assert!(encode_owners_into(Vec::new(), 0, |b| b.extend_from_slice(&[1, 2, 3])).is_err());
    }

    #[test]
    fn rows_are_found_in_their_frame_and_nowhere_else() {
        let rows = crate::wire::rows::TcpRows(vec![2, 0, 1, 2, 3]);
        let bytes = encode(&Response::Rows(rows.clone())).unwrap();
        assert_eq!(rows_in(&bytes[4..]), Some(&rows.0[..]));
        let other = encode(&Response::Error("x".into())).unwrap();
        assert_eq!(rows_in(&other[4..]), None);
        let sockets = encode(&Response::Sockets(Vec::new())).unwrap();
        assert_eq!(rows_in(&sockets[4..]), None);
        // Cut short or with bytes after the rows: not a Rows frame.
        assert_eq!(rows_in(&bytes[4..bytes.len() - 1]), None);
        let mut longer = bytes[4..].to_vec();
        longer.push(0);
        assert_eq!(rows_in(&longer), None);
    }

    #[test]
    fn frames_round_trip() {
        let filter = crate::filter::parse(&["dport", "=", ":443"], 0).unwrap();
        let req = Request::Tcp { netns: 4_026_531_840, families: vec![2, 10], states: 0xfff, filter: Some(filter) };
        let bytes = encode(&req).unwrap();
        assert_eq!(u32::from_le_bytes(bytes[..4].try_into().unwrap()) as usize, bytes.len() - 4);
        let back: Request = read_frame(&mut &bytes[..], MAX_REQUEST).unwrap();
        assert_eq!(back, req);
    }

    #[test]
    fn oversized_and_truncated_frames_are_errors() {
        let mut big = (MAX_REQUEST + 1).to_le_bytes().to_vec();
        big.extend_from_slice(&[0; 8]);
        assert!(matches!(read_frame::<Request>(&mut &big[..], MAX_REQUEST), Err(ProtocolError::TooLarge { .. })));
        let bytes = encode(&Request::Status).unwrap();
        let mut short = bytes.clone();
        short[0] += 3;
        assert!(matches!(read_frame::<Request>(&mut &short[..], MAX_REQUEST), Err(ProtocolError::Io(_))));
        // This version (one varint byte), then no valid request.
        let garbage = [3u8, 0, 0, 0, u8::try_from(VERSION).unwrap(), 0xff, 0xff];
        assert!(matches!(read_frame::<Request>(&mut &garbage[..], MAX_REQUEST), Err(ProtocolError::Decode(_))));
        // Another build's frame: named by its version, not decoded.
        let mut other = bytes.clone();
        other[4] = 99;
        assert!(matches!(
            read_frame::<Request>(&mut &other[..], MAX_REQUEST),
            Err(ProtocolError::Version { theirs: 99 })
        ));
        // An agent from before versions read the version as a variant: an unknown one.
        assert!(postcard::from_bytes::<Request>(&bytes[4..]).is_err());
    }
}
