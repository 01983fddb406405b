//! `agent --nats URL`: a thread of its own (with its own event loop) that reads the
//! timeline after the published cursor and publishes what it finds, so the agent's
//! ring-buffer drain never waits for the network. The timeline is the outbox: while the
//! server is unreachable, records wait there; the cursor moves, and is saved in the
//! timeline file, only once the server acknowledged a whole page. Each record carries a
//! message id (`Nats-Msg-Id`), so a page sent again after a lost ack is stored once; at
//! every (re)connect the last position the stream holds for this host is read back, so
//! a page acknowledged but not yet recorded here is not sent again either.
//!
//! Nothing here stops the agent: a bad URL, a server down, a refused publish are logged
//! and retried with a backoff (up to [`MAX_BACKOFF`]).

use std::{
    path::PathBuf,
    thread::JoinHandle,
    time::{Duration, Instant},
};

use async_nats::{
    HeaderMap, ServerAddr,
    jetstream::{self, context::Context, message::PublishMessage, stream::LastRawMessageErrorKind},
};
use tokio::sync::watch;
use tracing::{info, warn};

use crate::{
    fleet::{
        FleetConfig, FleetError, HEADER_HOST, HEADER_ORIGIN, HEADER_POSITION, Kind, STREAM, host_token, payload::Line,
        stream_config, subject,
    },
    timeline::{
        Gap, format_ns,
        outbox::{Cursor, KIND_GAP, KIND_LIFETIME, Lost, OutRecord, Outbox, Position},
    },
};

/// Records per page: published together, their acks awaited together.
pub const PAGE: usize = 512;

/// How often an idle export looks for new records (the writer commits every 100 ms).
const POLL: Duration = Duration::from_millis(200);

const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The running export; dropping it stops the thread.
pub struct Publisher {
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<()>>,
}

impl Publisher {
    /// Starts publishing the timeline at `timeline` (which the agent's writer made).
    ///
    /// # Errors
    /// Starting the thread.
    pub fn start(cfg: FleetConfig, timeline: PathBuf) -> Result<Publisher, FleetError> {
        let (stop, stopped) = watch::channel(false);
        let thread = std::thread::Builder::new()
            .name("sockstat-nats".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        warn!(error = %e, "fleet export: cannot start its event loop; nothing is published");
                        return;
                    }
                };
                rt.block_on(run(&cfg, &timeline, stopped));
            })
            .map_err(FleetError::Thread)?;
        Ok(Publisher { stop, thread: Some(thread) })
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Doubling delays between attempts, from [`FIRST_BACKOFF`] to [`MAX_BACKOFF`].
struct Backoff(Duration);

impl Backoff {
    fn next(&mut self) -> Duration {
        let d = self.0;
        self.0 = (self.0 * 2).min(MAX_BACKOFF);
        d
    }
}

/// Sleeps `d` unless told to stop first; returns whether to stop.
async fn sleep_or_stop(stop: &mut watch::Receiver<bool>, d: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(d) => false,
        r = stop.changed() => r.is_err() || *stop.borrow(),
    }
}

/// A random id for a timeline file's positions (see `outbox`).
fn new_origin() -> String {
    let mut b = [0u8; 8];
    if getrandom(&mut b).is_err() {
        // Time and pid instead: only ever compared with the origins of this host.
        let t = crate::timeline::unix_ns(std::time::SystemTime::now()).to_le_bytes();
        b = t;
        b[0] ^= (std::process::id() & 0xff) as u8;
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn getrandom(buf: &mut [u8]) -> std::io::Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)
}

async fn run(cfg: &FleetConfig, timeline: &std::path::Path, mut stop: watch::Receiver<bool>) {
    let mut backoff = Backoff(FIRST_BACKOFF);
    let outbox = loop {
        match Outbox::open(timeline) {
            Ok(o) => break o,
            Err(e) => {
                let wait = backoff.next();
                warn!(error = %crate::fleet::chain(&e), retry_in = ?wait, "fleet export: cannot open the timeline");
                if sleep_or_stop(&mut stop, wait).await {
                    return;
                }
            }
        }
    };
    let (origin, mut cursor) = loop {
        match outbox.cursor() {
            Ok(Some((origin, c))) => break (origin, Some(c)),
            Ok(None) => break (new_origin(), None),
            Err(e) => {
                let wait = backoff.next();
                warn!(error = %crate::fleet::chain(&e), retry_in = ?wait, "fleet export: cannot read its cursor");
                if sleep_or_stop(&mut stop, wait).await {
                    return;
                }
            }
        }
    };
    info!(url = %cfg.url, host = %cfg.host, stream = STREAM, cursor = ?cursor.map(|c| c.pos.text()), "fleet export starting");
    let mut export = Export { cfg, outbox, origin, cursor: cursor.take(), published: 0 };
    loop {
        let result = tokio::select! {
            r = export.session() => r,
            _ = stop.changed() => return,
        };
        let Err(e) = result else { return };
        // A session that published something starts the delays over.
        if export.published > 0 {
            backoff = Backoff(FIRST_BACKOFF);
            export.published = 0;
        }
        let wait = backoff.next();
        warn!(url = %cfg.url, error = %crate::fleet::chain(&e), retry_in = ?wait, "fleet export: NATS unavailable; records wait in the timeline");
        if sleep_or_stop(&mut stop, wait).await {
            return;
        }
    }
}

/// Parses `url` (comma-separated for several servers).
///
/// # Errors
/// A server address that does not parse, named.
pub fn servers(url: &str) -> Result<Vec<ServerAddr>, FleetError> {
    url.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<ServerAddr>().map_err(|source| FleetError::Url { url: s.to_string(), source }))
        .collect::<Result<Vec<_>, _>>()
        .and_then(|v| if v.is_empty() { Err(FleetError::NoUrl) } else { Ok(v) })
}

/// Connects to `url`, failing after [`CONNECT_TIMEOUT`].
///
/// # Errors
/// The address's, the connection's.
pub async fn connect(url: &str, name: &str) -> Result<async_nats::Client, FleetError> {
    let addrs = servers(url)?;
    let opts = async_nats::ConnectOptions::new().name(name).connection_timeout(CONNECT_TIMEOUT);
    match tokio::time::timeout(CONNECT_TIMEOUT * 2, async_nats::connect_with_options(addrs, opts)).await {
        Ok(r) => r.map_err(|source| FleetError::Connect { url: url.to_string(), source }),
        Err(_) => Err(FleetError::ConnectTimeout { url: url.to_string() }),
    }
}

struct Export<'a> {
    cfg: &'a FleetConfig,
    outbox: Outbox,
    origin: String,
    /// `None` before the first publish of this file.
    cursor: Option<Cursor>,
    /// Records published in this session.
    published: u64,
}

impl Export<'_> {
    /// One connection: reconcile the cursor with the stream, then publish pages until
    /// something fails.
    async fn session(&mut self) -> Result<(), FleetError> {
        let client = connect(&self.cfg.url, "sockstat agent").await?;
        let js = jetstream::new(client);
        let stream = js.get_or_create_stream(stream_config()).await.map_err(FleetError::Stream)?;
        if let Some(stored) = self.stored_position(&stream).await? {
            let mut c = self.cursor.unwrap_or_default();
            if stored > c.pos {
                info!(
                    stored = stored.text(),
                    local = c.pos.text(),
                    "fleet export: the stream holds more than the cursor says; resuming after it"
                );
                c.pos = stored;
                match stored.kind {
                    KIND_LIFETIME => c.last_conn = stored.id,
                    KIND_GAP => c.last_gap = stored.id,
                    _ => {}
                }
                self.save(c)?;
            }
        }
        info!(url = %self.cfg.url, "fleet export connected");
        let mut last_save = Instant::now();
        loop {
            // Retention outran the export: say what was lost, once, then go on after it.
            if let Some(c) = self.cursor
                && let Some(lost) = self.outbox.lost(&c)?
            {
                self.publish_lost(&js, &lost).await?;
                self.save(lost.resume)?;
            }
            let after = self.cursor.map_or_else(Position::default, |c| c.pos);
            let page = self.outbox.page(after, PAGE, self.cfg.transitions)?;
            if page.records.is_empty() {
                // Batches without records: passed over, saved now and then.
                if let Some(p) = page.done_through {
                    let mut c = self.cursor.unwrap_or_default();
                    c.pos = p;
                    if last_save.elapsed() > Duration::from_secs(5) {
                        self.save(c)?;
                        last_save = Instant::now();
                    } else {
                        self.cursor = Some(c);
                    }
                }
                tokio::time::sleep(POLL).await;
                continue;
            }
            let mut acks = Vec::with_capacity(page.records.len());
            for r in &page.records {
                for (subject, msg) in self.messages(r)? {
                    acks.push(js.send_publish(subject, msg).await.map_err(FleetError::Publish)?);
                }
            }
            for ack in acks {
                ack.await.map_err(FleetError::Publish)?;
            }
            let mut c = self.cursor.unwrap_or_default();
            for r in &page.records {
                c = c.after(r);
            }
            if let Some(p) = page.done_through {
                c.pos = c.pos.max(p);
            }
            self.save(c)?;
            last_save = Instant::now();
            self.published += page.records.len() as u64;
        }
    }

    fn save(&mut self, c: Cursor) -> Result<(), FleetError> {
        self.outbox.save(&self.origin, &c)?;
        self.cursor = Some(c);
        Ok(())
    }

    /// The newest position of this file the stream holds for this host.
    async fn stored_position(&self, stream: &jetstream::stream::Stream) -> Result<Option<Position>, FleetError> {
        let mut newest = None;
        for kind in [Kind::Lifetime, Kind::Gap] {
            let m = match stream.get_last_raw_message_by_subject(&subject(&self.cfg.host, kind)).await {
                Ok(m) => m,
                Err(e) if matches!(e.kind(), LastRawMessageErrorKind::NoMessageFound) => continue,
                Err(e) => return Err(FleetError::LastMessage(e)),
            };
            let header = |name: &str| m.headers.get(name).map(|v| v.as_str().to_string());
            if header(HEADER_ORIGIN).as_deref() != Some(self.origin.as_str()) {
                continue;
            }
            if let Some(p) = header(HEADER_POSITION).as_deref().and_then(Position::parse) {
                newest = newest.max(Some(p));
            }
        }
        Ok(newest)
    }

    fn headers(&self, pos: Position) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(HEADER_HOST, self.cfg.host.as_str());
        h.insert(HEADER_ORIGIN, self.origin.as_str());
        h.insert(HEADER_POSITION, pos.text().as_str());
        h
    }

    /// The message id of record `what` at `pos`: host, origin and position.
    fn msg_id(&self, pos: Position, what: &str) -> String {
        format!("{}-{}-{}{what}", host_token(&self.cfg.host), self.origin, pos.text())
    }

    /// A record's messages: a finished connection's transitions (when asked) before it,
    /// so that the stream holding a lifetime means it holds its transitions.
    fn messages(&self, r: &OutRecord) -> Result<Vec<(String, PublishMessage)>, FleetError> {
        let host = Some(self.cfg.host.as_str());
        let mut out = Vec::new();
        let mut push = |kind: Kind, pos: Position, what: &str, line: &Line<'_>| -> Result<(), FleetError> {
            let payload = serde_json::to_vec(line).map_err(FleetError::Encode)?;
            let msg = PublishMessage::build()
                .headers(self.headers(pos))
                .message_id(self.msg_id(pos, what))
                .payload(payload.into());
            out.push((subject(&self.cfg.host, kind), msg));
            Ok(())
        };
        match r {
            OutRecord::Gap { pos, gap } => push(Kind::Gap, *pos, "", &Line::gap(host, gap, None))?,
            OutRecord::Lifetime { pos, life, transitions } => {
                for (i, t) in transitions.iter().enumerate() {
                    push(Kind::Transition, *pos, &format!(".t{i}"), &Line::transition(host, t))?;
                }
                push(Kind::Lifetime, *pos, "", &Line::lifetime(host, life))?;
            }
        }
        Ok(out)
    }

    /// The gap marker for records retention deleted before they were published.
    async fn publish_lost(&self, js: &Context, lost: &Lost) -> Result<(), FleetError> {
        let gap = Gap {
            start_ns: lost.start_ns,
            end_ns: lost.end_ns,
            lost_kernel: 0,
            lost_userspace: 0,
            reason: format!(
                "fleet export: the timeline's retention deleted {} connection rows and {} gap markers (recorded {} to {}) before they were published",
                lost.connections,
                lost.gaps,
                format_ns(lost.start_ns),
                format_ns(lost.end_ns)
            ),
        };
        warn!(connections = lost.connections, gaps = lost.gaps, from = %format_ns(lost.start_ns), to = %format_ns(lost.end_ns), "fleet export: retention deleted records before they were published");
        let pos = lost.resume.pos;
        let line = Line::gap(Some(&self.cfg.host), &gap, Some(lost.connections + lost.gaps));
        let payload = serde_json::to_vec(&line).map_err(FleetError::Encode)?;
        let msg = PublishMessage::build()
            .headers(self.headers(pos))
            .message_id(self.msg_id(pos, ".lost"))
            .payload(payload.into());
        js.send_publish(subject(&self.cfg.host, Kind::Gap), msg)
            .await
            .map_err(FleetError::Publish)?
            .await
            .map_err(FleetError::Publish)?;
        Ok(())
    }
}
