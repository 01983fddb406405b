//! Arbitrary bytes -> edits of a real timeline (a file the writer made: connections
//! finished, open and crossing a checkpoint, per-transition rows, a gap), then every read
//! `history` and `--at` make of it. A timeline from elsewhere (copied, restored, crafted)
//! reaches the reader this way: valid SQLite with any value in any row, rows missing or
//! doubled, or pages overwritten. The reader must answer or return an error, never panic.
//!
//! The input is a list of edits: update a column of a row to a value the input spells
//! (an integer, a blob, text, NULL), delete a row, copy a row, or overwrite bytes of the
//! file; then the moments `--at` asks about.
#![no_main]

use std::{
    net::IpAddr,
    path::{Path, PathBuf},
    sync::OnceLock,
    time::Duration,
};

use libfuzzer_sys::fuzz_target;
use rusqlite::{Connection, types::Value};
use sockstat::{
    bpf::stream::Transition,
    model::socket::InetSocket,
    timeline::{Gap, Reader, Record, Writer, WriterConfig},
};
use sockstat_ebpf::TcpState;

/// The template's bytes and its tables with their columns.
struct Template {
    bytes: Vec<u8>,
    tables: Vec<(String, Vec<String>)>,
}

fn scratch(name: &str) -> PathBuf {
    let dir = if Path::new("/dev/shm").is_dir() { PathBuf::from("/dev/shm") } else { std::env::temp_dir() };
    dir.join(format!("sockstat-fuzz-{name}-{}.db", std::process::id()))
}

fn remove(path: &Path) {
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn transition(
    cookie: u64,
    ts_ns: u64,
    (old, new): (TcpState, TcpState),
    (src, sport): (IpAddr, u16),
    dport: u16,
) -> Transition {
    Transition {
        ts_ns,
        cookie,
        netns: 1,
        pid: 100 + u32::try_from(cookie % 7).unwrap_or(0),
        tid: 100,
        comm: "fuzz".into(),
        family: if src.is_ipv4() { 2 } else { 10 },
        src,
        sport,
        dst: src,
        dport,
        old: old as u8,
        new: new as u8,
        accept: false,
        request: false,
        netns_cookie: 0,
        v6only: false,
        ifindex: 0,
        rqueue: 0,
        wqueue: 0,
        bytes_acked: cookie * 10,
        bytes_received: cookie * 20,
        cgroup_id: cookie % 3,
        error: if cookie % 5 == 0 { 111 } else { 0 },
        retrans: u32::try_from(cookie % 4).unwrap_or(0),
        srtt_us: 50,
    }
}

/// A timeline as the agent writes one, in a rollback-journal file (self-contained bytes).
fn build_template() -> Template {
    use TcpState::*;
    let path = scratch("template");
    remove(&path);
    let cfg = WriterConfig {
        commit_every: Duration::ZERO,
        ..WriterConfig::new(path.clone(), Duration::from_secs(100 * 365 * 86_400), 1 << 40, true)
    };
    let mut w = Writer::start(cfg, 1).expect("template timeline");
    let v4: IpAddr = "127.0.0.1".parse().unwrap();
    let v6: IpAddr = "::1".parse().unwrap();
    let t0: u64 = 1_000_000_000_000;
    let listener = InetSocket { wqueue: 128, ..InetSocket::tcp(2, Listen as u8, (v4, 80), (v4, 0), 1000) };
    let tw = InetSocket::tcp(2, TimeWait as u8, (v4, 4999), (v4, 80), 0);
    w.push(Record::Snapshot { mono_ns: t0, kind: "seed", spaces: vec![(1, vec![listener.clone(), tw])] });
    for i in 0..24u64 {
        let ts = t0 + 1_000 + i * 1_000_000;
        let (addr, port) = if i % 5 == 0 { (v6, 6000 + i as u16) } else { (v4, 5000 + i as u16) };
        w.push(Record::Transition(transition(i + 1, ts, (Close, SynSent), (addr, 0), 80)));
        w.push(Record::Transition(transition(i + 1, ts + 10, (SynSent, Established), (addr, port), 80)));
        if i % 4 != 3 {
            w.push(Record::Transition(transition(i + 1, ts + 20, (Established, FinWait1), (addr, port), 80)));
            w.push(Record::Transition(transition(i + 1, ts + 30, (FinWait1, FinWait2), (addr, port), 80)));
            w.push(Record::Transition(transition(i + 1, ts + 40, (FinWait2, Close), (addr, port), 80)));
        }
        if i % 6 == 5 {
            w.flush().unwrap();
        }
        if i == 12 {
            let open: Vec<InetSocket> =
                vec![listener.clone(), InetSocket::tcp(2, Established as u8, (v4, 5003), (v4, 80), 4)];
            w.push(Record::Snapshot { mono_ns: ts + 50, kind: "checkpoint", spaces: vec![(1, open)] });
            w.push(Record::Gap(Gap {
                start_ns: w.wall_ns(ts),
                end_ns: w.wall_ns(ts + 60),
                lost_kernel: 3,
                lost_userspace: 1,
                reason: "kernel ring buffer full".into(),
            }));
            w.push(Record::Forget(vec![8]));
        }
    }
    drop(w);
    let conn = Connection::open(&path).expect("template");
    let _: String = conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get(0)).expect("journal mode");
    let mut tables = Vec::new();
    let names: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    for name in names {
        let cols: Vec<String> = conn
            .prepare(&format!("PRAGMA table_info(\"{name}\")"))
            .unwrap()
            .query_map([], |r| r.get(1))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        tables.push((name, cols));
    }
    drop(conn);
    let bytes = std::fs::read(&path).expect("template bytes");
    remove(&path);
    Template { bytes, tables }
}

/// Reads the input front to back; zeros once it runs out.
struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (b, rest) = self.0.split_first().map_or((0, &[][..]), |(b, r)| (*b, r));
        self.0 = rest;
        b
    }
    fn bytes(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        a
    }
    fn i64(&mut self) -> i64 {
        let mut b = [0u8; 8];
        let got = self.bytes(8);
        b[..got.len()].copy_from_slice(got);
        i64::from_le_bytes(b)
    }
    fn value(&mut self) -> Value {
        match self.byte() % 6 {
            0 => Value::Null,
            1 => Value::Integer(i64::from(self.byte() as i8)),
            2 => Value::Integer(self.i64()),
            3 => {
                let n = usize::from(self.byte() % 64);
                Value::Blob(self.bytes(n).to_vec())
            }
            4 => {
                let n = usize::from(self.byte() % 32);
                Value::Text(String::from_utf8_lossy(self.bytes(n)).into_owned())
            }
            _ => Value::Real(f64::from_bits(self.i64().cast_unsigned())),
        }
    }
}

fn edit(conn: &Connection, t: &Template, input: &mut Input<'_>, raw: &mut Vec<(usize, Vec<u8>)>) {
    let op = input.byte();
    let (table, cols) = &t.tables[usize::from(input.byte()) % t.tables.len()];
    let nth = i64::from(input.byte());
    let row = format!("(SELECT rowid FROM \"{table}\" LIMIT 1 OFFSET {nth})");
    // Every edit may fail (a constraint, a view): the file is then as it was.
    match op % 4 {
        0 | 1 => {
            let col = &cols[usize::from(input.byte()) % cols.len()];
            let v = input.value();
            let _ = conn.execute(&format!("UPDATE \"{table}\" SET \"{col}\" = ?1 WHERE rowid = {row}"), [v]);
        }
        2 => {
            let _ = conn.execute(&format!("DELETE FROM \"{table}\" WHERE rowid = {row}"), []);
        }
        _ => {
            if op & 0x80 != 0 {
                let at = usize::from(input.byte()) << 8 | usize::from(input.byte());
                let n = usize::from(input.byte() % 32);
                raw.push((at, input.bytes(n).to_vec()));
            } else {
                let _ =
                    conn.execute(&format!("INSERT INTO \"{table}\" SELECT * FROM \"{table}\" WHERE rowid = {row}"), []);
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    let t = TEMPLATE.get_or_init(build_template);
    let path = scratch("case");
    remove(&path);
    std::fs::write(&path, &t.bytes).expect("scratch file");
    let mut input = Input(data);
    let mut raw = Vec::new();
    let moments: Vec<i64>;
    {
        let conn = Connection::open(&path).expect("scratch database");
        let edits = input.byte() % 16;
        for _ in 0..edits {
            edit(&conn, t, &mut input, &mut raw);
        }
        // The moments `--at` asks about: around each snapshot, and two from the input.
        let mut m: Vec<i64> = conn
            .prepare("SELECT ts_ns FROM snapshots")
            .and_then(|mut st| st.query_map([], |r| r.get::<_, i64>(0))?.collect())
            .unwrap_or_default();
        m.truncate(4);
        let extra: Vec<i64> = m.iter().map(|ts| ts.saturating_add(1_000_000)).collect();
        m.extend(extra);
        m.push(input.i64());
        m.push(m.first().copied().unwrap_or(0).saturating_add(i64::from(input.byte()) * 1_000_000));
        moments = m;
    }
    if !raw.is_empty() {
        let mut bytes = std::fs::read(&path).expect("scratch bytes");
        for (at, b) in raw {
            let at = at.min(bytes.len());
            let end = (at + b.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&b[..end - at]);
        }
        std::fs::write(&path, bytes).expect("scratch file");
    }
    if let Ok(reader) = Reader::open(&path) {
        let _ = reader.netns();
        let _ = reader.gaps(i64::MIN, i64::MAX);
        let _ = reader.lifetimes(i64::MIN, i64::MAX);
        let _ = reader.transitions(i64::MIN, i64::MAX);
        for at in moments {
            let _ = reader.state_at(at, 1);
        }
    }
    remove(&path);
});
