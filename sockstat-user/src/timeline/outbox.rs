//! The timeline as an outbox: what the fleet export (`agent --nats`) has still to
//! publish, in the order it was committed, and the cursor of what it has published, kept
//! in the same file (table `fleet_cursor`, part of the schema) so that an agent restart
//! resumes where the last one stopped. Every read of the timeline the export makes is
//! here, on the reader's [`Reader::visit_committed`] (the batches after a cursor, each
//! batch's gaps, then its connection rows unpacked from its block).
//!
//! A record's [`Position`] is (batch, kind, id): the batch that committed it, its kind
//! ([`KIND_GAP`], [`KIND_LIFETIME`]) and its id (a gap's row id, a connection row's
//! number in its batch's block). Batch ids only grow in a file (retention deletes the
//! oldest, never the newest), so positions order every record of a file.
//!
//! Retention deletes whole batches: those after the cursor that are gone went
//! unpublished, and [`Outbox::lost`] says how many rows and which time range.

use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use crate::timeline::{
    Gap, StoredLifetime, StoredTransition, TimelineError,
    reader::{CommittedRow, Names, Reader, row_transitions},
    schema, sql,
};

/// Kind of a gap marker's position (gaps sort before the connections of their batch).
pub const KIND_GAP: u8 = 0;
/// Kind of a finished connection's position.
pub const KIND_LIFETIME: u8 = 1;
/// Kind of a position past every record of its batch.
pub const KIND_END: u8 = u8::MAX;

/// Where a record is in the timeline; see the module header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Position {
    pub batch: i64,
    pub kind: u8,
    pub id: i64,
}

impl Position {
    /// `batch.kind.id`, as the `Sockstat-Position` header carries it.
    pub fn text(&self) -> String {
        format!("{}.{}.{}", self.batch, self.kind, self.id)
    }

    pub fn parse(s: &str) -> Option<Position> {
        let mut it = s.split('.');
        let p =
            Position { batch: it.next()?.parse().ok()?, kind: it.next()?.parse().ok()?, id: it.next()?.parse().ok()? };
        it.next().is_none().then_some(p)
    }
}

/// What has been published: the last record's position, the last connection row and
/// gap id published (to count what retention deleted before it was published) and the
/// time of the last record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cursor {
    pub pos: Position,
    pub last_conn: i64,
    pub last_gap: i64,
    pub end_ns: i64,
}

impl Cursor {
    /// The cursor once `r` is published.
    pub fn after(&self, r: &OutRecord) -> Cursor {
        let mut c = *self;
        c.pos = c.pos.max(r.pos());
        match r {
            OutRecord::Gap { pos, gap } => {
                c.last_gap = pos.id;
                c.end_ns = c.end_ns.max(gap.end_ns);
            }
            OutRecord::Lifetime { pos, life, .. } => {
                c.last_conn = pos.id;
                c.end_ns = c.end_ns.max(life.end_ns);
            }
        }
        c
    }
}

/// A record to publish.
#[derive(Clone, Debug)]
pub enum OutRecord {
    Gap {
        pos: Position,
        gap: Gap,
    },
    /// A finished connection, and (when asked) its transitions as its row tells them.
    Lifetime {
        pos: Position,
        life: Box<StoredLifetime>,
        transitions: Vec<StoredTransition>,
    },
}

impl OutRecord {
    pub fn pos(&self) -> Position {
        match self {
            OutRecord::Gap { pos, .. } | OutRecord::Lifetime { pos, .. } => *pos,
        }
    }
}

/// Records retention deleted before they were published.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lost {
    /// `connections` rows (finished connections, and the rows of sockets not seen to
    /// close) and gap markers.
    pub connections: u64,
    pub gaps: u64,
    /// From the last published record's time to the first remaining batch's.
    pub start_ns: i64,
    pub end_ns: i64,
    /// The cursor past them: the batch before the first that remains, done.
    pub resume: Cursor,
}

/// One page of the outbox: records after a position, and where the next page starts.
#[derive(Debug, Default)]
pub struct Page {
    pub records: Vec<OutRecord>,
    /// When the page holds every record committed so far: the position past them all
    /// (the newest batch, done), so that batches without records are passed over too.
    pub done_through: Option<Position>,
}

/// The outbox of one timeline file: reads, and the cursor's table.
pub struct Outbox {
    reader: Reader,
    /// The dictionaries, read whole once and again when they grew (or a minute passed:
    /// a namespace may get its name later), not for every page.
    names: Option<(NamesKey, Names, Instant)>,
}

/// What tells that the dictionaries changed: their newest ids and named namespaces.
type NamesKey = (Option<i64>, Option<i64>, Option<i64>, i64);

const NAMES_FRESH: Duration = Duration::from_secs(60);

/// Batches read at a time while a page fills.
const BATCHES_PER_READ: u32 = 64;

impl Outbox {
    /// Opens the timeline at `path` (written by the agent, which made its schema and
    /// the cursor's table) for reading and for the cursor.
    ///
    /// # Errors
    /// Opening the file, a schema of another version.
    pub fn open(path: &Path) -> Result<Outbox, TimelineError> {
        let e = sql(path);
        let conn =
            Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
                .map_err(&e)?;
        // The writer commits every 100 ms; a cursor update waits for it.
        conn.busy_timeout(std::time::Duration::from_secs(10)).map_err(&e)?;
        schema::check(&conn, path)?;
        Ok(Outbox { reader: Reader { conn, path: PathBuf::from(path) }, names: None })
    }

    fn conn(&self) -> &Connection {
        &self.reader.conn
    }

    /// The saved cursor and the origin (a random id made with the table: a new file is a
    /// new origin, so the export tells its positions from an older file's); `None`
    /// before the first publish.
    ///
    /// # Errors
    /// The query's.
    pub fn cursor(&self) -> Result<Option<(String, Cursor)>, TimelineError> {
        self.conn()
            .query_row(
                "SELECT origin, batch, kind, pos_id, last_conn, last_gap, end_ns FROM fleet_cursor WHERE id = 1",
                [],
                |r| {
                    Ok((
                        r.get(0)?,
                        Cursor {
                            pos: Position { batch: r.get(1)?, kind: r.get(2)?, id: r.get(3)? },
                            last_conn: r.get(4)?,
                            last_gap: r.get(5)?,
                            end_ns: r.get(6)?,
                        },
                    ))
                },
            )
            .optional()
            .map_err(sql(&self.reader.path))
    }

    /// Saves the cursor (and the origin, the first time).
    ///
    /// # Errors
    /// The update's (a writer holding the file longer than the busy timeout).
    pub fn save(&self, origin: &str, c: &Cursor) -> Result<(), TimelineError> {
        self.conn()
            .execute(
                "INSERT INTO fleet_cursor (id, origin, batch, kind, pos_id, last_conn, last_gap, end_ns)
                 VALUES (1, ?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (id) DO UPDATE SET batch = ?2, kind = ?3, pos_id = ?4, last_conn = ?5, last_gap = ?6, end_ns = ?7",
                params![origin, c.pos.batch, c.pos.kind, c.pos.id, c.last_conn, c.last_gap, c.end_ns],
            )
            .map(drop)
            .map_err(sql(&self.reader.path))
    }

    /// Records after `after`, at most `max`, in position order; with `transitions`,
    /// each finished connection's transitions too. One read transaction: the page and
    /// its `done_through` see the same commits.
    ///
    /// # Errors
    /// The queries', or a connection block that does not decode.
    pub fn page(&mut self, after: Position, max: usize, transitions: bool) -> Result<Page, TimelineError> {
        let e = sql(&self.reader.path);
        let tx = self.reader.conn.unchecked_transaction().map_err(&e)?;
        // In the page's transaction: every row read below finds its names.
        refresh_names(&self.reader, &mut self.names)?;
        let Some((_, names, _)) = self.names.as_ref() else { return Ok(Page::default()) };
        let mut records: Vec<OutRecord> = Vec::new();
        // Positions taken: records, and rows that are no finished connection (a
        // listener, a socket not seen to close), which move the cursor all the same.
        let mut taken = 0usize;
        let mut last: Option<Position> = None;
        // The cursor's own batch again when the cursor is inside it.
        let mut from = if after.kind == KIND_END { after.batch } else { after.batch - 1 };
        let mut read_through: Option<i64> = None;
        loop {
            let read = self.reader.visit_committed(from, BATCHES_PER_READ, &mut |batch, record| {
                if last.is_some() {
                    return false;
                }
                let pos = match &record {
                    CommittedRow::Gap(id, _) => Position { batch, kind: KIND_GAP, id: *id },
                    CommittedRow::Row(row) => Position { batch, kind: KIND_LIFETIME, id: row.rowid.unwrap_or(0) },
                };
                if pos <= after {
                    return true;
                }
                match record {
                    CommittedRow::Gap(_, gap) => records.push(OutRecord::Gap { pos, gap }),
                    CommittedRow::Row(row) => {
                        if let Some(life) = row.lifetime(names) {
                            let transitions = if transitions { row_transitions(&row, names) } else { Vec::new() };
                            records.push(OutRecord::Lifetime { pos, life: Box::new(life), transitions });
                        }
                    }
                }
                taken += 1;
                if taken >= max {
                    last = Some(pos);
                }
                last.is_none()
            })?;
            match read {
                Some(b) if last.is_none() => {
                    read_through = Some(b);
                    from = b;
                }
                _ => break,
            }
        }
        // A full page ends at its last position; else the page holds every record
        // committed so far, and the newest batch is done.
        let done_through =
            last.or_else(|| read_through.map(|b| Position { batch: b, kind: KIND_END, id: 0 }).filter(|p| *p > after));
        tx.finish().map_err(&e)?;
        Ok(Page { records, done_through })
    }

    /// What retention deleted after `c` before it was published, if anything: the
    /// batches between the cursor's and the oldest that remains.
    ///
    /// # Errors
    /// The queries'.
    pub fn lost(&self, c: &Cursor) -> Result<Option<Lost>, TimelineError> {
        let e = sql(&self.reader.path);
        let tx = self.conn().unchecked_transaction().map_err(&e)?;
        let oldest: Option<(i64, i64)> = self
            .conn()
            .query_row("SELECT id, COALESCE(min_ts_ns, committed_ns) FROM batches ORDER BY id LIMIT 1", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(&e)?;
        let Some((oldest, oldest_ns)) = oldest else { return Ok(None) };
        // Batches after the cursor's are gone, or the cursor's own, left mid-way.
        let mid_way = c.pos.kind != KIND_END;
        if oldest <= c.pos.batch + 1 && !(mid_way && oldest > c.pos.batch) {
            return Ok(None);
        }
        let first_conn: Option<i64> = self
            .conn()
            .query_row("SELECT MIN(first_conn) FROM batches WHERE first_conn IS NOT NULL", [], |r| r.get(0))
            .map_err(&e)?;
        let first_gap: Option<i64> = self.conn().query_row("SELECT MIN(id) FROM gaps", [], |r| r.get(0)).map_err(&e)?;
        let next_conn: i64 = self
            .conn()
            .query_row("SELECT COALESCE(MAX(last_conn), 0) + 1 FROM batches", [], |r| r.get(0))
            .map_err(&e)?;
        let next_gap: i64 =
            self.conn().query_row("SELECT COALESCE(MAX(id), 0) + 1 FROM gaps", [], |r| r.get(0)).map_err(&e)?;
        tx.finish().map_err(&e)?;
        // Connection numbers and gap ids are handed out in order: those between the last
        // published and the first remaining (or the next to come, when none remains)
        // are the deleted ones.
        let between = |last: i64, first: i64| u64::try_from(first - last - 1).unwrap_or(0);
        let connections = between(c.last_conn, first_conn.unwrap_or(next_conn));
        let gaps = between(c.last_gap, first_gap.unwrap_or(next_gap));
        let resume = Cursor {
            pos: Position { batch: oldest - 1, kind: KIND_END, id: 0 },
            last_conn: first_conn.unwrap_or(next_conn) - 1,
            last_gap: first_gap.unwrap_or(next_gap) - 1,
            end_ns: c.end_ns.max(oldest_ns),
        };
        Ok(Some(Lost { connections, gaps, start_ns: c.end_ns, end_ns: oldest_ns, resume }))
    }
}

/// Reads the dictionaries into `cache` again if they changed since they were last read
/// there (or a minute passed: a namespace may get its name later).
fn refresh_names(reader: &Reader, cache: &mut Option<(NamesKey, Names, Instant)>) -> Result<(), TimelineError> {
    let key: NamesKey = reader
        .conn
        .query_row(
            "SELECT (SELECT MAX(id) FROM processes), (SELECT MAX(id) FROM netns), (SELECT MAX(id) FROM cgroups),
                    (SELECT COUNT(name) FROM netns)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .map_err(sql(&reader.path))?;
    if cache.as_ref().is_none_or(|(k, _, at)| *k != key || at.elapsed() > NAMES_FRESH) {
        *cache = Some((key, reader.names()?, Instant::now()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;
    use sockstat_ebpf::TcpState;

    use super::*;
    use crate::timeline::{
        Record, Writer,
        fixtures::{temp_db, tr, writer},
    };

    /// A connection opened at `ts` and closed 10 ns later: one finished row.
    fn connection(w: &mut Writer, cookie: u64, ts: u64) {
        w.push(Record::Transition(tr(cookie, ts, TcpState::Close, TcpState::SynSent, 0, 80)));
        w.push(Record::Transition(tr(cookie, ts + 5, TcpState::SynSent, TcpState::Established, 4000, 80)));
        w.push(Record::Transition(tr(cookie, ts + 10, TcpState::Established, TcpState::Close, 4000, 80)));
    }

    /// Batches of `sizes` connections each (cookies from 1 on), a gap after the first.
    fn timeline(name: &str, sizes: &[u64]) -> PathBuf {
        let path = temp_db(name);
        let mut w = writer(&path);
        let mut cookie = 1;
        for (i, n) in sizes.iter().enumerate() {
            for _ in 0..*n {
                connection(&mut w, cookie, 1_000 * cookie);
                cookie += 1;
            }
            if i == 0 {
                w.push(Record::Gap(Gap {
                    start_ns: 1,
                    end_ns: 2,
                    lost_kernel: 3,
                    lost_userspace: 0,
                    reason: "t".into(),
                }));
            }
            w.flush().unwrap();
        }
        drop(w);
        path
    }

    fn cookies(records: &[OutRecord]) -> Vec<u64> {
        records
            .iter()
            .filter_map(|r| match r {
                OutRecord::Lifetime { life, .. } => Some(life.cookie),
                OutRecord::Gap { .. } => None,
            })
            .collect()
    }

    #[test]
    fn pages_follow_the_cursor_in_order_and_the_cursor_persists() {
        let path = timeline("outbox-pages", &[5, 4, 3]);
        let mut outbox = Outbox::open(&path).unwrap();
        assert_eq!(outbox.cursor().unwrap(), None);
        let mut cursor = Cursor::default();
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = outbox.page(cursor.pos, 4, true).unwrap();
            assert!(page.records.len() <= 4);
            assert!(page.records.windows(2).all(|w| w[0].pos() < w[1].pos()), "in order");
            for r in &page.records {
                assert!(r.pos() > cursor.pos, "nothing at or before the cursor");
                if let OutRecord::Lifetime { transitions, .. } = r {
                    assert_eq!(transitions.len(), 3, "each connection's transitions from its row");
                }
                cursor = cursor.after(r);
            }
            seen.extend(page.records);
            pages += 1;
            match page.done_through {
                Some(p) if p.kind == KIND_END => {
                    cursor.pos = cursor.pos.max(p);
                    break;
                }
                Some(p) => cursor.pos = cursor.pos.max(p),
                None => break,
            }
            assert!(pages < 20, "the pages do not end");
        }
        assert_eq!(cookies(&seen), (1..=12).collect::<Vec<_>>(), "every connection once, in order");
        assert_eq!(seen.iter().filter(|r| matches!(r, OutRecord::Gap { .. })).count(), 1);
        // Nothing more after the end, and the saved cursor comes back.
        assert!(outbox.page(cursor.pos, 4, false).unwrap().records.is_empty());
        outbox.save("o1", &cursor).unwrap();
        drop(outbox);
        let again = Outbox::open(&path).unwrap();
        assert_eq!(again.cursor().unwrap(), Some(("o1".to_string(), cursor)));
        assert_eq!(again.lost(&cursor).unwrap(), None);
    }

    #[test]
    fn retention_ahead_of_the_cursor_is_counted_once() {
        let path = timeline("outbox-lost", &[3, 3, 2]);
        let mut outbox = Outbox::open(&path).unwrap();
        // Published: the first batch's gap (gaps come first) and its first connection.
        let first = outbox.page(Position::default(), 2, false).unwrap();
        assert_eq!(cookies(&first.records), vec![1]);
        let cursor = first.records.iter().fold(Cursor::default(), |c, r| c.after(r));
        assert_eq!(outbox.lost(&cursor).unwrap(), None, "nothing deleted yet");
        // Retention deletes the first two batches, as it does: whole batches.
        let conn = Connection::open(&path).unwrap();
        let keep: i64 = conn.query_row("SELECT MAX(id) FROM batches", [], |r| r.get(0)).unwrap();
        conn.execute_batch(&format!(
            "DELETE FROM connections WHERE first <= (SELECT MAX(last_conn) FROM batches WHERE id < {keep});
             DELETE FROM gaps WHERE batch < {keep}; DELETE FROM batches WHERE id < {keep};"
        ))
        .unwrap();
        let lost = outbox.lost(&cursor).unwrap().expect("a loss");
        assert_eq!((lost.connections, lost.gaps), (5, 0), "two of the first batch, three of the second");
        assert_eq!(lost.start_ns, cursor.end_ns);
        assert_eq!(lost.resume.pos, Position { batch: keep - 1, kind: KIND_END, id: 0 });
        // Past the loss: the last batch, and no second report.
        let rest = outbox.page(lost.resume.pos, 10, false).unwrap();
        assert_eq!(cookies(&rest.records), vec![7, 8]);
        assert_eq!(outbox.lost(&lost.resume).unwrap(), None);
    }

    #[test]
    fn positions_round_trip_as_text() {
        let p = Position { batch: 12, kind: KIND_LIFETIME, id: 345 };
        assert_eq!(Position::parse(&p.text()), Some(p));
        assert_eq!(Position::parse("1.2"), None);
        assert_eq!(Position::parse("1.2.3.4"), None);
    }
}
