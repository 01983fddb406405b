//! How rows are printed: the display flags of the command line, resolved once. The
//! renderer sees only this, never the command line (ripgrep's printer config).

/// Display flags.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Style {
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
