//! `history --nats URL`: the fleet's records read back from the stream, through an
//! ordered consumer (ephemeral, in stream order, nothing acknowledged) per subject
//! filter: `sockstat.HOST.lifetime` (or `.transition`) and `sockstat.HOST.gap`, HOST
//! being `*` unless one host is asked for. A window's start skips what the stream
//! stored before it (less a margin for clocks that disagree): a record is stored after
//! it ends, so nothing in the window is stored before the window starts.

use std::time::Duration;

use async_nats::jetstream::{
    self,
    consumer::{DeliverPolicy, pull::OrderedConfig},
};
use futures_util::StreamExt;

use crate::{
    fleet::{FleetError, Kind, STREAM, host_token, payload::Line, publish::connect},
    timeline::{Gap, StoredLifetime, StoredTransition},
};

/// How much earlier than the window's start the read starts: clocks of the hosts and
/// the server may disagree by this much.
const CLOCK_MARGIN: Duration = Duration::from_secs(5 * 60);

/// How long a read waits for the next record the server said it has.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// What to read.
#[derive(Clone, Debug)]
pub struct FetchOptions {
    pub url: String,
    /// Only this host (default: every one).
    pub host: Option<String>,
    /// Transitions instead of finished connections.
    pub transitions: bool,
    /// The window, ns since the epoch.
    pub since: i64,
    pub until: i64,
}

/// The records of the window, each with its host, in stream order.
#[derive(Debug, Default)]
pub struct Fetched {
    pub lifetimes: Vec<(String, StoredLifetime)>,
    pub transitions: Vec<(String, StoredTransition)>,
    /// With the records the export could not publish, for its own gap markers.
    pub gaps: Vec<(String, Gap, Option<u64>)>,
}

/// Reads the window's records from the stream at `opts.url`.
///
/// # Errors
/// The connection's, no stream, a read that stops, a record that does not decode.
pub fn fetch(opts: &FetchOptions) -> Result<Fetched, FleetError> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(FleetError::Runtime)?;
    rt.block_on(fetch_async(opts))
}

async fn fetch_async(opts: &FetchOptions) -> Result<Fetched, FleetError> {
    let client = connect(&opts.url, "sockstat history").await?;
    let js = jetstream::new(client);
    let stream =
        js.get_stream(STREAM).await.map_err(|source| FleetError::NoStream { url: opts.url.clone(), source })?;
    let host = opts.host.as_deref().map_or_else(|| "*".to_string(), host_token);
    let deliver = if opts.since == i64::MIN {
        DeliverPolicy::All
    } else {
        let margin = i64::try_from(CLOCK_MARGIN.as_nanos()).unwrap_or(0);
        let from = i128::from(opts.since.saturating_sub(margin));
        match time::OffsetDateTime::from_unix_timestamp_nanos(from) {
            Ok(start_time) => DeliverPolicy::ByStartTime { start_time },
            Err(_) => DeliverPolicy::All,
        }
    };
    let mut out = Fetched::default();
    let main = if opts.transitions { Kind::Transition } else { Kind::Lifetime };
    for kind in [Kind::Gap, main] {
        let filter = format!("sockstat.{host}.{}", kind.token());
        read(&stream, filter, deliver, &mut |seq, subject, payload| {
            let line: Line<'static> = serde_json::from_slice(payload).map_err(|source| FleetError::Decode {
                seq,
                subject: subject.to_string(),
                source,
            })?;
            // The payload names its host; the subject's token is the fallback.
            let host =
                line.host().map_or_else(|| subject.split('.').nth(1).unwrap_or_default().to_string(), str::to_string);
            match line {
                Line::Lifetime { life, .. } => {
                    let l = life.into_owned();
                    if l.end_ns >= opts.since && l.start_ns.unwrap_or(l.end_ns) <= opts.until {
                        out.lifetimes.push((host, l));
                    }
                }
                Line::Transition { t, .. } => {
                    let t = t.into_owned();
                    if (opts.since..=opts.until).contains(&t.ts_ns) {
                        out.transitions.push((host, t));
                    }
                }
                Line::Gap { start, end, lost_kernel, lost_userspace, unpublished, reason, .. } => {
                    let ns = |s: &str| humantime::parse_rfc3339(s).map_or(0, crate::timeline::unix_ns);
                    let g = Gap {
                        start_ns: ns(&start),
                        end_ns: ns(&end),
                        lost_kernel,
                        lost_userspace,
                        reason: reason.into_owned(),
                    };
                    if g.end_ns >= opts.since && g.start_ns <= opts.until {
                        out.gaps.push((host, g, unpublished));
                    }
                }
            }
            Ok(())
        })
        .await?;
    }
    Ok(out)
}

/// What [`read`] calls on each message: its stream sequence, subject and payload.
type Visit<'a> = &'a mut dyn FnMut(u64, &str, &[u8]) -> Result<(), FleetError>;

/// Calls `f` on each message of `filter` from `deliver` on, up to the last the stream
/// holds now.
async fn read(
    stream: &jetstream::stream::Stream,
    filter: String,
    deliver: DeliverPolicy,
    f: Visit<'_>,
) -> Result<(), FleetError> {
    let boxed = |e: Box<dyn std::error::Error + Send + Sync>| FleetError::Read(e);
    let consumer = stream
        .create_consumer(OrderedConfig { filter_subject: filter, deliver_policy: deliver, ..Default::default() })
        .await
        .map_err(|e| boxed(e.into()))?;
    if consumer.cached_info().num_pending == 0 {
        return Ok(());
    }
    let mut messages = consumer.messages().await.map_err(|e| boxed(e.into()))?;
    loop {
        let next = tokio::time::timeout(READ_TIMEOUT, messages.next())
            .await
            .map_err(|_| boxed(format!("no record within {} s", READ_TIMEOUT.as_secs()).into()))?;
        let Some(m) = next else { return Ok(()) };
        let m = m.map_err(|e| boxed(e.into()))?;
        let info = m.info().map_err(|e| boxed(e.to_string().into()))?;
        let (seq, pending) = (info.stream_sequence, info.pending);
        f(seq, m.subject.as_str(), &m.payload)?;
        if pending == 0 {
            return Ok(());
        }
    }
}
