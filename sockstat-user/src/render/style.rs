//! How rows are printed: the display flags of the command line, resolved once. The
//! renderer sees only this, never the command line (ripgrep's printer config).

/// Whose output is reproduced: iproute2 6.1's ss or 7.1's (`--ss-compat`). The two print
/// the same sockets differently (the Process column, timers, padding, escaping, the `-i`
/// fields 7.1 added): see docs/compatibility.md. The command line resolves the default
/// (the installed ss's version); a `Style` built in code prints as 6.1.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum SsCompat {
    #[default]
    V6_1,
    V7_1,
}

impl SsCompat {
    /// The newest output sockstat knows, used when no ss is installed to ask.
    pub const NEWEST: SsCompat = SsCompat::V7_1;

    /// `6.1` or `7.1`, as `--ss-compat` takes it.
    #[must_use]
    pub fn parse(text: &str) -> Option<SsCompat> {
        match text.trim() {
            "6.1" => Some(SsCompat::V6_1),
            "7.1" => Some(SsCompat::V7_1),
            _ => None,
        }
    }

    /// The output reproduced for an installed ss of version `major.minor`: 7.0 and newer
    /// print as 7.1, older ones as 6.1 (the changes sockstat follows landed between them).
    #[must_use]
    pub fn for_version(major: u32, _minor: u32) -> SsCompat {
        if major >= 7 { SsCompat::V7_1 } else { SsCompat::V6_1 }
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            SsCompat::V6_1 => "6.1",
            SsCompat::V7_1 => "7.1",
        }
    }

    /// Whether the output is 7.1's.
    #[must_use]
    pub fn v7(self) -> bool {
        self >= SsCompat::V7_1
    }
}

/// Display flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
    /// Whose ss output to reproduce (`--ss-compat`).
    pub compat: SsCompat,
    /// `-Q`/`--no-queues` (ss 7.1's): no Recv-Q and Send-Q columns.
    pub hide_queues: bool,
    /// `-n`: print port numbers instead of /etc/services names.
    pub numeric: bool,
    /// `-r`: print host names for addresses, as ss's `format_host()` finds them (see
    /// [`crate::names::hosts`]). Independent of `-n`, which only concerns service names.
    pub resolve_hosts: bool,
    /// Print the header line (cleared by `-H`).
    pub show_header: bool,
    /// The Netid column: ss shows it only when more than one table is selected.
    pub show_netid: bool,
    /// The State column: ss shows it only when more than one state is selected.
    pub show_state: bool,
    /// `-O`: one line per socket. The columns sockstat prints today never wrap, so this
    /// changes nothing yet.
    pub oneline: bool,
    /// `-o`, and implied by `-e` and `-b`, as in ss.
    pub show_options: bool,
    /// `-e` (counted, as ss does).
    pub show_details: u8,
    /// `-m`.
    pub show_mem: bool,
    /// `-i`.
    pub show_tcpinfo: bool,
    /// `-p` (counted).
    pub show_processes: u8,
    /// `-T`: owners per thread (`tid=` in `users:(...)`), as ss walks /proc/PID/task.
    /// Independent of `show_processes`: `-T` alone prints the owners too.
    pub show_threads: bool,
    /// `--cgroup`: each inet socket's cgroup path (`cgroup:`), after the `-e` details.
    pub show_cgroup: bool,
    /// `--tos`: `tos:`, `tclass:`, `class_id:` of inet sockets, after the `-e` details.
    pub show_tos: bool,
    /// `--inet-sockopt`: the `inet-sockopt: (...)` flags of inet sockets.
    pub show_inet_sockopt: bool,
    /// `--json`: one JSON object per socket.
    pub json: bool,
    /// `-b`: print the classic BPF filter of packet sockets.
    pub show_bpf: bool,
    /// `--bpf-disasm` (sockstat's own; implies `-b`): also print each filter disassembled
    /// in the style of `tcpdump -d`.
    pub bpf_disasm: bool,
    /// Terminal width for ss's column spreading; `None` = not a terminal (compact output,
    /// as ss does when stdout is not a tty). The command line parser leaves it `None`: the
    /// binary sets it from the terminal, so parsing stays free of I/O.
    pub screen_width: Option<usize>,
}
