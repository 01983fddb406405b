//! `sockstat agent`: loads and attaches the eBPF program, starts the event stream, seeds
//! the table from a sock_diag dump, then applies events in ring order (those that arrived
//! during the dump included) and answers queries on its unix socket.
//!
//! One thread, one event loop: the ring buffer, the query channel, a loss check and the
//! signals are all `select!`ed here, so the table needs no lock. Connection tasks only
//! read requests and write responses.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use sockstat_ebpf::{AF_INET, AF_INET6, IPPROTO_TCP};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::UnixStream,
    signal::unix::{SignalKind, signal},
    sync::{mpsc, oneshot},
};
use tracing::{info, warn};

use crate::{
    diag::{DiagError, SockDiag},
    ebpf::{EbpfError, KernelCounters, LoadOptions, Tracer},
    protocol::{self, MAX_REQUEST, Request, Response, Status},
    server::{self, AgentSocket, ServerError},
    socket::InetSocket,
    stream::{EventStream, StreamError},
    table::{self, KERNEL_STATES, Table},
};

/// Every TCP state, as an inet_diag state mask.
pub const ALL_STATES: u32 = 0xffff_ffff;

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Server(#[from] ServerError),
    #[error(transparent)]
    Ebpf(#[from] EbpfError),
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error("sock_diag dump")]
    Diag(#[from] DiagError),
    #[error("{0}")]
    Io(&'static str, #[source] std::io::Error),
}

#[derive(Clone, Debug)]
pub struct AgentConfig {
    pub socket: PathBuf,
    pub ringbuf_bytes: u32,
}

pub fn run(cfg: AgentConfig) -> Result<(), AgentError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AgentError::Io("starting the event loop", e))?;
    rt.block_on(serve(cfg))
}

/// Inode of this process's network namespace: events carry the same number.
pub fn own_netns() -> Result<u32, AgentError> {
    crate::socket::own_netns().map_err(|e| AgentError::Io("reading /proc/self/ns/net", e))
}

type Query = (Request, oneshot::Sender<Response>);

struct State {
    table: Table,
    diag: SockDiag,
    stream: EventStream,
    tracer: Tracer,
    netns: u32,
    started: Instant,
    seed_ms: u64,
    resyncs: u64,
    /// Loss counters as of the last (re)seed: an increase means the table missed events.
    seen_lost: (u64, u64),
}

async fn serve(cfg: AgentConfig) -> Result<(), AgentError> {
    // Claim the socket path before touching BPF, so a second agent stops right here.
    let sock = AgentSocket::bind(&cfg.socket)?;
    let netns = own_netns()?;
    let mut tracer = Tracer::load(LoadOptions { ringbuf_bytes: cfg.ringbuf_bytes })?;
    let ring = tracer.take_events().ok_or(EbpfError::MissingMap(sockstat_ebpf::EVENTS_MAP))?;
    // The stream is live from here: events queue in the ring while we dump.
    let stream = EventStream::new(ring)?;
    let mut diag = SockDiag::open()?;
    let started = Instant::now();
    let mut table = Table::new(Some(netns));
    table.seed(diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?);
    let seed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let mut st = State {
        table,
        diag,
        stream,
        tracer,
        netns,
        started,
        seed_ms,
        resyncs: 0,
        seen_lost: (0, 0),
    };
    st.seen_lost = st.losses()?;
    // Replay what arrived during the dump, in ring order, over the seed.
    st.drain();
    info!(
        socket = %sock.path().display(),
        netns,
        ringbuf_bytes = cfg.ringbuf_bytes,
        seeded = st.table.len(),
        seed_ms,
        "sockstat agent ready"
    );

    let (query_tx, mut query_rx) = mpsc::channel::<Query>(64);
    let mut sigint = signal(SignalKind::interrupt()).map_err(|e| AgentError::Io("installing SIGINT handler", e))?;
    let mut sigterm = signal(SignalKind::terminate()).map_err(|e| AgentError::Io("installing SIGTERM handler", e))?;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);

    loop {
        tokio::select! {
            r = st.stream.readable() => {
                r?;
                st.drain();
            }
            conn = sock.listener.accept() => match conn {
                Ok((stream, _)) => {
                    tokio::spawn(connection(stream, query_tx.clone()));
                }
                Err(e) => warn!(error = %e, "accept on the agent socket failed"),
            },
            Some((req, reply)) = query_rx.recv() => {
                // Apply everything already in the ring first: a socket created before
                // the query was sent is visible in its answer.
                st.drain();
                let _ = reply.send(st.answer(req));
            }
            _ = tick.tick() => {
                st.tracer.flush_log();
                st.check_loss()?;
            }
            _ = sigint.recv() => { info!("SIGINT: detaching and exiting"); break; }
            _ = sigterm.recv() => { info!("SIGTERM: detaching and exiting"); break; }
        }
    }
    // Dropping `st` detaches the program and closes the maps; `sock` removes the socket.
    drop(st);
    drop(sock);
    Ok(())
}

impl State {
    fn drain(&mut self) {
        let table = &mut self.table;
        self.stream.drain(|t| {
            table.apply(&t);
        });
    }

    fn counters(&self) -> KernelCounters {
        self.tracer.counters().unwrap_or_default()
    }

    /// (kernel ring-buffer losses, undecodable records).
    fn losses(&self) -> Result<(u64, u64), AgentError> {
        Ok((self.tracer.counters()?.lost, self.stream.malformed))
    }

    /// After a loss the table may be wrong in ways no later event repairs: re-dump.
    fn check_loss(&mut self) -> Result<(), AgentError> {
        let now = self.losses()?;
        if now == self.seen_lost {
            return Ok(());
        }
        warn!(
            lost_kernel = now.0 - self.seen_lost.0,
            malformed = now.1 - self.seen_lost.1,
            "events lost; resyncing the table from sock_diag"
        );
        // Events still in the ring are newer than the loss; they are applied after the
        // new seed, in order, exactly as at start-up.
        self.table.seed(self.diag.dump_tcp(&[AF_INET, AF_INET6], ALL_STATES)?);
        self.resyncs += 1;
        self.seen_lost = now;
        self.drain();
        Ok(())
    }

    fn answer(&mut self, req: Request) -> Response {
        match req {
            Request::Status => {
                let c = self.counters();
                Response::Status(Status {
                    pid: std::process::id(),
                    netns: self.netns,
                    uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
                    events_seen: c.seen,
                    events_received: self.stream.received,
                    events_lost_kernel: c.lost,
                    events_malformed: self.stream.malformed,
                    read_errors: c.read_errors,
                    resyncs: self.resyncs,
                    table_size: self.table.len() as u64,
                    seed_ms: self.seed_ms,
                })
            }
            Request::Tcp { netns, .. } if netns != self.netns => Response::OtherNamespace { agent: self.netns, client: netns },
            Request::Tcp { families, states, .. } => match self.tcp(&families, states) {
                Ok(s) => Response::Sockets(s),
                Err(e) => Response::Error(format!("{e}: {}", error_chain(&e))),
            },
        }
    }

    fn tcp(&mut self, families: &[u16], states: u32) -> Result<Vec<InetSocket>, DiagError> {
        let mut out = Vec::new();
        for &family in families {
            let mut part = self.table.snapshot(family, states);
            // Mini-sockets and sockets whose identity events cannot give: from the kernel.
            if states & KERNEL_STATES != 0 {
                part.extend(self.diag.dump_inet(IPPROTO_TCP, family, states & KERNEL_STATES)?);
                table::sort_like_dump(&mut part);
            }
            out.extend(part);
        }
        Ok(out)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut parts = Vec::new();
    let mut cur = e.source();
    while let Some(s) = cur {
        parts.push(s.to_string());
        cur = s.source();
    }
    parts.join(": ")
}

/// Reads one request, forwards it to the event loop, writes the answer.
async fn connection(mut stream: UnixStream, queries: mpsc::Sender<Query>) {
    match server::peer_allowed(&stream) {
        Ok(true) => {}
        Ok(false) => {
            let _ = write(&mut stream, &Response::Error("permission denied: only root and the agent's user may query it".into())).await;
            return;
        }
        Err(e) => {
            warn!(error = %e, "SO_PEERCRED failed; dropping connection");
            return;
        }
    }
    let req = match tokio::time::timeout(Duration::from_secs(5), read_request(&mut stream)).await {
        Ok(Ok(req)) => req,
        Ok(Err(e)) => {
            let _ = write(&mut stream, &Response::Error(format!("bad request: {e}"))).await;
            return;
        }
        Err(_) => return,
    };
    let (tx, rx) = oneshot::channel();
    if queries.send((req, tx)).await.is_err() {
        return;
    }
    if let Ok(resp) = rx.await {
        let _ = write(&mut stream, &resp).await;
    }
}

async fn read_request(stream: &mut UnixStream) -> Result<Request, protocol::ProtocolError> {
    let mut header = [0u8; 4];
    stream.read_exact(&mut header).await?;
    let mut body = vec![0u8; protocol::frame_len(header, MAX_REQUEST)?];
    stream.read_exact(&mut body).await?;
    Ok(postcard::from_bytes(&body)?)
}

async fn write(stream: &mut UnixStream, resp: &Response) -> Result<(), protocol::ProtocolError> {
    let bytes = protocol::encode(resp)?;
    stream.write_all(&bytes).await?;
    stream.shutdown().await?;
    Ok(())
}
