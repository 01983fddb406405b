//! The agent's ring-buffer reader: a thread of its own that takes every record out of the
//! rings (one per CPU) as it comes and hands the decoded transitions to the event loop in
//! batches, in time order (see [`crate::bpf::merge`]).
//!
//! The ring holds a fraction of a second of heavy churn. When the event loop itself read
//! it, every long piece of work there (an answer of 100k rows, a resync's dump, a query
//! that had to dump the kernel) let it fill, and the kernel dropped events. The reader
//! does nothing but empty the ring, so the loop may take its time: what arrives meanwhile
//! waits in memory, in ring order, up to [`MAX_QUEUED`] events (beyond that it is
//! dropped, counted, and repaired by a resync like a loss in the kernel).

use std::{
    os::{fd::AsFd, unix::net::UnixDatagram},
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
        mpsc,
    },
    thread::JoinHandle,
    time::Duration,
};

use aya::maps::{MapData, RingBuf};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use sockstat_ebpf::StateEvent;
use tokio::sync::Notify;

use crate::bpf::{
    loader::EventRings,
    merge::Merge,
    ringfill::{RingFill, RingFillError},
    stream::{DRAIN_MAX, Transition},
};

/// Events at most waiting for the event loop (about 150 bytes each once decoded).
pub const MAX_QUEUED: usize = 1 << 19;

/// The reader thread's nice value.
const READER_NICE: libc::c_int = -10;

/// Events per batch handed to the loop.
const BATCH: usize = 4096;

/// The longest the reader waits between looks at an idle ring: after each look that
/// finds it empty the wait doubles, from the interval it was started with up to this,
/// and after each that finds events it halves. An idle agent looked 200 times a second
/// (most of its CPU). A query or a flush wakes the reader at once, and the program wakes
/// it when the ring fills up: only a `trace` line of a quiet machine may wait this long.
const IDLE_INTERVAL_MAX: Duration = Duration::from_millis(50);

/// Emptied batches kept for the reader to fill again: a fresh one is about 600 KiB of
/// memory the kernel must fault in and zero after each heap trim.
const SPARE_BATCHES: usize = 2;

#[derive(Debug, thiserror::Error)]
pub enum ReaderError {
    #[error("starting the ring buffer's reader thread")]
    Start(#[source] std::io::Error),
    #[error("the ring buffer's reader thread stopped")]
    Stopped,
    #[error(transparent)]
    Positions(#[from] RingFillError),
}

/// What the reader sends the loop, in this order: every batch taken before a flush was
/// answered comes before its answer.
enum Delivery {
    Batch(Vec<Transition>),
    /// Everything the ring held when flush `n` was asked for has been sent.
    Flushed(u64),
}

/// Counters the reader keeps and the loop reads.
#[derive(Debug, Default)]
struct Counts {
    received: AtomicU64,
    malformed: AtomicU64,
    /// Events taken from the ring but dropped: [`MAX_QUEUED`] were waiting.
    overflowed: AtomicU64,
    /// Events sent and not yet taken by the loop.
    queued: AtomicUsize,
    /// The most [`Counts::queued`] has been.
    queued_peak: AtomicUsize,
}

/// The event loop's end of the reader.
pub struct RingReader {
    deliveries: mpsc::Receiver<Delivery>,
    /// The last batch; its events from `handed` on are not handed out yet (a drain
    /// stops at [`DRAIN_MAX`]).
    pending: Vec<Transition>,
    handed: usize,
    /// Batches handed out, going back to the reader to be filled again.
    spare: mpsc::SyncSender<Vec<Transition>>,
    counts: Arc<Counts>,
    ready: Arc<Notify>,
    /// Flushes asked for; the reader answers the latest it saw.
    asked: Arc<AtomicU64>,
    /// Odd while the reader holds events it took from the rings and has not sent yet.
    taking: Arc<AtomicU64>,
    /// The rings' positions: whether they hold anything, without asking the reader (the
    /// reader thread reads them too, to mark the rings it emptied).
    fill: Arc<RingFill>,
    wake: UnixDatagram,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl RingReader {
    /// Starts reading `ring`. Between wake-ups of the program (which wakes readers only
    /// when the ring fills up) the ring is read every `interval`, less often while it
    /// stays empty (see [`IDLE_INTERVAL_MAX`]).
    pub fn start(events: EventRings, interval: Duration) -> Result<RingReader, ReaderError> {
        let EventRings { rings, bytes_each } = events;
        let fill = Arc::new(RingFill::new(rings.iter().map(AsFd::as_fd), bytes_each)?);
        let positions = fill.clone();
        let (tx, deliveries) = mpsc::channel();
        let (spare, spare_rx) = mpsc::sync_channel(SPARE_BATCHES);
        let (wake, wake_rx) = UnixDatagram::pair().map_err(ReaderError::Start)?;
        wake.set_nonblocking(true).map_err(ReaderError::Start)?;
        wake_rx.set_nonblocking(true).map_err(ReaderError::Start)?;
        let counts = Arc::new(Counts::default());
        let ready = Arc::new(Notify::new());
        let asked = Arc::new(AtomicU64::new(0));
        let taking = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let shared = Shared {
                counts: counts.clone(),
                ready: ready.clone(),
                asked: asked.clone(),
                taking: taking.clone(),
                stop: stop.clone(),
            };
            std::thread::Builder::new()
                .name("ring-reader".into())
                .spawn(move || read_loop((rings, positions), wake_rx, interval, (&tx, &spare_rx), &shared))
                .map_err(ReaderError::Start)?
        };
        Ok(RingReader {
            deliveries,
            pending: Vec::new(),
            handed: 0,
            spare,
            counts,
            ready,
            asked,
            taking,
            fill,
            wake,
            stop,
            thread: Some(thread),
        })
    }

    /// Waits until the reader has sent something.
    pub async fn readable(&self) {
        self.ready.notified().await;
    }

    /// Hands what the reader has sent so far to `f`, in ring order, at most
    /// [`DRAIN_MAX`] events (the rest waits for the next call). Returns how many.
    pub fn drain(&mut self, mut f: impl FnMut(&Transition)) -> Result<usize, ReaderError> {
        let mut n = 0;
        while n < DRAIN_MAX {
            if self.handed < self.pending.len() {
                let end = self.pending.len().min(self.handed + (DRAIN_MAX - n));
                self.pending[self.handed..end].iter().for_each(&mut f);
                n += end - self.handed;
                self.handed = end;
                continue;
            }
            match self.deliveries.try_recv() {
                Ok(Delivery::Batch(b)) => self.take(b),
                Ok(Delivery::Flushed(_)) => {}
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => return Err(ReaderError::Stopped),
            }
        }
        if n == DRAIN_MAX {
            // More is waiting: come back for it after the loop's other work.
            self.ready.notify_one();
        }
        Ok(n)
    }

    /// Hands `f` every event the ring held when called (and whatever came before them),
    /// waiting for the reader to take them out. Returns how many.
    pub fn flush(&mut self, mut f: impl FnMut(&Transition)) -> Result<usize, ReaderError> {
        if let Some(handed) = self.flush_sent(&mut f)? {
            return Ok(handed);
        }
        let n = self.asked.fetch_add(1, Ordering::SeqCst) + 1;
        // A full wake socket already holds a wake-up: the reader reads `asked` after it.
        let _ = self.wake.send(&[1]);
        let mut handed = self.hand_pending(&mut f);
        loop {
            match self.deliveries.recv() {
                Ok(Delivery::Batch(b)) => handed += self.hand(b, &mut f),
                Ok(Delivery::Flushed(done)) if done >= n => return Ok(handed),
                Ok(Delivery::Flushed(_)) => {}
                Err(mpsc::RecvError) => return Err(ReaderError::Stopped),
            }
        }
    }

    /// [`RingReader::flush`] without a round trip to the reader (a query's cost is mostly
    /// such hops): when the ring is empty and the reader holds nothing it took, all
    /// there is has been sent, and is handed to `f`. `None` if that cannot be known.
    fn flush_sent(&mut self, f: &mut impl FnMut(&Transition)) -> Result<Option<usize>, ReaderError> {
        let before = self.taking.load(Ordering::SeqCst);
        // An empty ring with the reader idle throughout: every event the ring held
        // before was taken and sent by then (a record reserved and not yet committed
        // leaves the ring non-empty).
        if before % 2 == 1 || !self.fill.is_empty() || self.taking.load(Ordering::SeqCst) != before {
            return Ok(None);
        }
        let mut handed = self.hand_pending(f);
        loop {
            match self.deliveries.try_recv() {
                Ok(Delivery::Batch(b)) => handed += self.hand(b, f),
                Ok(Delivery::Flushed(_)) => {}
                Err(mpsc::TryRecvError::Empty) => return Ok(Some(handed)),
                Err(mpsc::TryRecvError::Disconnected) => return Err(ReaderError::Stopped),
            }
        }
    }

    /// Hands `f` the events of the last batch not handed out yet; returns how many.
    fn hand_pending(&mut self, f: &mut impl FnMut(&Transition)) -> usize {
        let n = self.pending.len() - self.handed;
        self.pending[self.handed..].iter().for_each(f);
        self.handed = self.pending.len();
        n
    }

    /// Hands `f` a batch straight from the reader; returns how many events it held.
    fn hand(&mut self, batch: Vec<Transition>, f: &mut impl FnMut(&Transition)) -> usize {
        self.take(batch);
        self.hand_pending(f)
    }

    /// Makes `batch` the one handed out next; the last one (all handed out by now) goes
    /// back to the reader.
    fn take(&mut self, batch: Vec<Transition>) {
        self.counts.queued.fetch_sub(batch.len(), Ordering::Relaxed);
        let mut done = std::mem::replace(&mut self.pending, batch);
        self.handed = 0;
        if done.capacity() > 0 {
            done.clear();
            // Full: the reader has spares enough, and this one is freed.
            let _ = self.spare.try_send(done);
        }
    }

    /// Records read from the ring and decoded.
    pub fn received(&self) -> u64 {
        self.counts.received.load(Ordering::Relaxed)
    }

    /// Records of the wrong size.
    pub fn malformed(&self) -> u64 {
        self.counts.malformed.load(Ordering::Relaxed)
    }

    /// Events dropped because the loop had [`MAX_QUEUED`] waiting.
    pub fn overflowed(&self) -> u64 {
        self.counts.overflowed.load(Ordering::Relaxed)
    }

    /// Events waiting for the loop.
    pub fn queued(&self) -> usize {
        self.counts.queued.load(Ordering::Relaxed) + (self.pending.len() - self.handed)
    }

    /// The most events that have waited for the loop at once.
    pub fn queued_peak(&self) -> usize {
        self.counts.queued_peak.load(Ordering::Relaxed)
    }

    /// The rings' positions (for the metrics' fill gauges).
    pub fn fill(&self) -> Arc<RingFill> {
        self.fill.clone()
    }

    /// Whether the reader thread still runs.
    pub fn alive(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.wake.send(&[1]);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The reader thread's share of the state it keeps with the event loop.
struct Shared {
    counts: Arc<Counts>,
    ready: Arc<Notify>,
    asked: Arc<AtomicU64>,
    taking: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

fn read_loop(
    (mut rings, positions): (Vec<RingBuf<MapData>>, Arc<RingFill>),
    wake: UnixDatagram,
    interval: Duration,
    (tx, spare): (&mpsc::Sender<Delivery>, &mpsc::Receiver<Vec<Transition>>),
    shared: &Shared,
) {
    let Shared { counts, ready, asked, taking, stop } = shared;
    // Above the agent's other threads (and the load it watches): a reader that waits
    // for a time slice while the rings fill loses events. Only root may raise it; the
    // reader works at the default priority otherwise.
    // SAFETY: setpriority on this thread's own id; no memory is passed.
    let _ = unsafe { libc::setpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t, READER_NICE) };
    let mut wait = interval;
    let mut answered = 0;
    let mut merge = Merge::new(rings.len());
    // The batch being filled: kept across wake-ups that found the rings empty.
    let mut batch: Vec<Transition> = Vec::new();
    while !stop.load(Ordering::SeqCst) {
        {
            let mut fds: Vec<PollFd<'_>> = rings.iter().map(|r| PollFd::new(r.as_fd(), PollFlags::POLLIN)).collect();
            fds.push(PollFd::new(wake.as_fd(), PollFlags::POLLIN));
            // EINTR and the like: read the rings anyway, as after a timeout.
            let _ = poll(&mut fds, PollTimeout::try_from(wait).unwrap_or(PollTimeout::MAX));
        }
        let mut sink = [0u8; 64];
        while matches!(wake.recv(&mut sink), Ok(n) if n > 0) {}
        // Read before the rings are emptied: everything they held when the flush was
        // asked for is taken below.
        let flush = asked.load(Ordering::SeqCst);
        let mut sent = false;
        // Odd from before the first record is taken until the last one taken is sent
        // (events held for time order count as taken and not sent).
        if taking.load(Ordering::SeqCst) % 2 == 0 {
            taking.fetch_add(1, Ordering::SeqCst);
        }
        let mut took = false;
        for (i, ring) in rings.iter_mut().enumerate() {
            let t = crate::model::clock::monotonic_ns();
            while let Some(item) = ring.next() {
                let event = match StateEvent::view(&item) {
                    Some(ev) => Some(Transition::from_event(ev)),
                    None => StateEvent::from_bytes(&item).map(|ev| Transition::from_event(&ev)),
                };
                match event {
                    Some(t) => merge.push(i, t),
                    None => {
                        counts.malformed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                took = true;
            }
            if positions.ring_is_empty(i) {
                merge.emptied(i, t);
            }
        }
        if batch.capacity() == 0 {
            batch = spare.try_recv().unwrap_or_else(|_| Vec::with_capacity(BATCH));
        }
        merge.release(&mut batch);
        if !batch.is_empty() {
            counts.received.fetch_add(batch.len() as u64, Ordering::Relaxed);
            if counts.queued.load(Ordering::Relaxed) + batch.len() > MAX_QUEUED {
                counts.overflowed.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.clear();
            } else {
                let queued = counts.queued.fetch_add(batch.len(), Ordering::Relaxed) + batch.len();
                counts.queued_peak.fetch_max(queued, Ordering::Relaxed);
                if tx.send(Delivery::Batch(std::mem::take(&mut batch))).is_err() {
                    return;
                }
                sent = true;
            }
        }
        if merge.held() == 0 {
            taking.fetch_add(1, Ordering::SeqCst);
        }
        // Events held for a ring's uncommitted record: look again soon.
        wait = if took || merge.held() > 0 {
            (wait / 2).max(interval)
        } else {
            (wait * 2).min(IDLE_INTERVAL_MAX.max(interval))
        };
        if flush > answered {
            answered = flush;
            if tx.send(Delivery::Flushed(flush)).is_err() {
                return;
            }
            sent = true;
        }
        if sent {
            ready.notify_one();
        }
    }
}
