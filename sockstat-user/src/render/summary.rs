//! `-s`: the socket summary, byte for byte as ss's `print_summary()` prints it, from
//! /proc/net/sockstat, /proc/net/sockstat6 and the `Tcp: CurrEstab` counter of
//! /proc/net/snmp (all per network namespace, read at query time). Parsing and printing are
//! pure; [`read_system`] does the reading.
//!
//! ss prints nothing about diag modules the kernel lacks; sockstat says so on stderr
//! after the summary ([`missing_diag_note`]), leaving stdout identical to ss's.

use std::io::{self, Write};

/// ss's `struct ssummary`: counters as `int`, 0 when a line is missing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    pub socks: i32,
    pub tcp_mem: i32,
    pub tcp_total: i32,
    pub tcp_orphans: i32,
    pub tcp_tws: i32,
    pub tcp4_hashed: i32,
    pub udp4: i32,
    pub raw4: i32,
    pub frag4: i32,
    pub frag4_mem: i32,
    pub tcp6_hashed: i32,
    pub udp6: i32,
    pub raw6: i32,
    pub frag6: i32,
    pub frag6_mem: i32,
}

/// The numbers after each `key` word of `rest`, as ss's `sscanf(rem, "%*s%d%*s%d..")`
/// reads them: every second word, stopping at the first that is not a number.
fn values(rest: &str) -> Vec<i32> {
    let mut out = Vec::new();
    for (i, w) in rest.split_whitespace().enumerate() {
        if i % 2 == 1 {
            match w.parse::<i64>() {
                // C's %d into an int: keep the low 32 bits, as glibc does.
                Ok(v) => out.push(v as i32),
                Err(_) => break,
            }
        }
    }
    out
}

impl Summary {
    /// Adds what one line of /proc/net/sockstat(6) says (`get_sockstat_line`).
    pub fn add_line(&mut self, line: &str) {
        let Some((id, rest)) = line.split_once(' ') else { return };
        let v = values(rest);
        let at = |i: usize| v.get(i).copied();
        let set = |field: &mut i32, i: usize| {
            if let Some(x) = at(i) {
                *field = x;
            }
        };
        match id {
            "sockets:" => set(&mut self.socks, 0),
            "UDP:" => set(&mut self.udp4, 0),
            "UDP6:" => set(&mut self.udp6, 0),
            "RAW:" => set(&mut self.raw4, 0),
            "RAW6:" => set(&mut self.raw6, 0),
            "TCP6:" => set(&mut self.tcp6_hashed, 0),
            "FRAG:" => {
                set(&mut self.frag4, 0);
                set(&mut self.frag4_mem, 1);
            }
            "FRAG6:" => {
                set(&mut self.frag6, 0);
                set(&mut self.frag6_mem, 1);
            }
            "TCP:" => {
                set(&mut self.tcp4_hashed, 0);
                set(&mut self.tcp_orphans, 1);
                set(&mut self.tcp_tws, 2);
                set(&mut self.tcp_total, 3);
                set(&mut self.tcp_mem, 4);
            }
            _ => {}
        }
    }

    /// Parses the text of /proc/net/sockstat followed by sockstat6.
    #[must_use]
    pub fn parse(sockstat: &str, sockstat6: &str) -> Self {
        let mut s = Summary::default();
        for line in sockstat.lines().chain(sockstat6.lines()) {
            s.add_line(line);
        }
        s
    }
}

/// ss's `get_snmp_int(proto, key)`: the value under `key` in the `proto` line pair of
/// /proc/net/snmp (a header line of names, then a line of values).
#[must_use]
pub fn snmp_value(snmp: &str, proto: &str, key: &str) -> Option<i32> {
    let mut lines = snmp.lines();
    while let Some(head) = lines.next() {
        if !head.starts_with(proto) {
            continue;
        }
        let pos = head.split(' ').skip(1).position(|k| k == key)?;
        let vals = lines.next()?;
        if !vals.starts_with(proto) {
            return None;
        }
        return vals.split(' ').nth(pos + 1)?.parse::<i64>().ok().map(|v| v as i32);
    }
    None
}

/// `print_summary()`'s text.
#[must_use]
pub fn render(s: &Summary, tcp_estab: i32) -> String {
    let w = |v: i32| format!("{v:<9}");
    let row = |name: &str, v4: i32, v6: i32| format!("{name}\t  {} {} {}\n", w(v4.wrapping_add(v6)), w(v4), w(v6));
    let mut out = format!("Total: {}\n", s.socks);
    out.push_str(&format!(
        "TCP:   {} (estab {}, closed {}, orphaned {}, timewait {})\n",
        s.tcp_total.wrapping_add(s.tcp_tws),
        tcp_estab,
        s.tcp_total.wrapping_sub(s.tcp4_hashed.wrapping_add(s.tcp6_hashed).wrapping_sub(s.tcp_tws)),
        s.tcp_orphans,
        s.tcp_tws
    ));
    out.push('\n');
    out.push_str("Transport Total     IP        IPv6\n");
    out.push_str(&row("RAW", s.raw4, s.raw6));
    out.push_str(&row("UDP", s.udp4, s.udp6));
    out.push_str(&row("TCP", s.tcp4_hashed, s.tcp6_hashed));
    out.push_str(&row(
        "INET",
        s.raw4.wrapping_add(s.udp4).wrapping_add(s.tcp4_hashed),
        s.raw6.wrapping_add(s.udp6).wrapping_add(s.tcp6_hashed),
    ));
    out.push_str(&row("FRAG", s.frag4, s.frag6));
    out.push('\n');
    out
}

/// Reads the /proc files and writes the summary to `out`. A file that cannot be read is
/// reported on `err` with ss's wording (`perror("ss: get_sockstat")`), its counters 0.
///
/// # Errors
/// Writing to `out` or `err`.
pub fn read_system(prog: &str, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<()> {
    let mut s = Summary::default();
    match std::fs::read_to_string("/proc/net/sockstat") {
        Ok(text) => {
            // sockstat6 is optional (no IPv6): ss ignores its absence.
            let six = std::fs::read_to_string("/proc/net/sockstat6").unwrap_or_default();
            s = Summary::parse(&text, &six);
        }
        Err(e) => writeln!(err, "{prog}: get_sockstat: {e}")?,
    }
    let estab = match std::fs::read_to_string("/proc/net/snmp") {
        Ok(text) => snmp_value(&text, "Tcp:", "CurrEstab"),
        Err(e) => {
            writeln!(err, "{prog}: get_snmpstat: {e}")?;
            Some(0)
        }
    };
    let estab = match estab {
        Some(v) => v,
        None => {
            writeln!(err, "{prog}: get_snmpstat: No such process")?;
            0
        }
    };
    out.write_all(render(&s, estab).as_bytes())
}

/// The sockstat-only note `-s` adds on stderr: which socket tables the kernel has no
/// sock_diag module for, and what that means for the listing.
#[must_use]
pub fn missing_diag_note(prog: &str, missing: &[(&str, &str)]) -> String {
    missing
        .iter()
        .map(|(table, what)| format!("{prog}: note: no sock_diag module for {table} in this kernel: {what}\n"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SOCKSTAT: &str = "sockets: used 38
TCP: inuse 3 orphan 0 tw 0 alloc 6 mem 1
UDP: inuse 3 mem 2
UDPLITE: inuse 0
RAW: inuse 2
FRAG: inuse 0 memory 0
";
    const SOCKSTAT6: &str = "TCP6: inuse 0
UDP6: inuse 4
UDPLITE6: inuse 0
RAW6: inuse 1
FRAG6: inuse 0 memory 0
";
    const SNMP: &str = "Ip: Forwarding DefaultTTL
Ip: 1 64
Tcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens PassiveOpens AttemptFails EstabResets CurrEstab InSegs
Tcp: 1 200 120000 -1 1 1 0 0 2 12
";

    #[test]
    fn byte_identical_with_ss_61() {
        // `ss -s` (iproute2 6.1) in a namespace with these /proc contents.
        let s = Summary::parse(SOCKSTAT, SOCKSTAT6);
        let estab = snmp_value(SNMP, "Tcp:", "CurrEstab").expect("CurrEstab");
        assert_eq!(
            render(&s, estab),
            "Total: 38
TCP:   6 (estab 2, closed 3, orphaned 0, timewait 0)

Transport Total     IP        IPv6
RAW\t  3         2         1        
UDP\t  7         3         4        
TCP\t  3         3         0        
INET\t  13        8         5        
FRAG\t  0         0         0        

"
        );
    }

    #[test]
    fn missing_lines_are_zero_and_bad_numbers_stop_reading() {
        let s = Summary::parse("TCP: inuse x orphan 1\nsockets: used\n", "");
        assert_eq!(s, Summary::default());
        assert_eq!(snmp_value("Udp: A B\nUdp: 1 2\n", "Tcp:", "CurrEstab"), None);
        assert_eq!(snmp_value("Tcp: A CurrEstab\nTcp: 1 7\n", "Tcp:", "CurrEstab"), Some(7));
    }
}
