//! Command-line parsing: ss's options (getopt-compatible: bundled short flags, options
//! anywhere among the FILTER words, unique prefixes of long options) plus sockstat's own,
//! resolved into one [`Options`] value (ripgrep's two levels: clap's raw matches, then
//! resolved options that nothing downstream has to reinterpret).
//!
//! The socket-table, family and state selection is ss.c's `main()` logic replayed in
//! command-line order (`filter_db_set`, `filter_af_set`, `filter_db_parse`,
//! `filter_merge_defaults`), so `Options::tables`, `families` and `states` are exactly
//! ss's `current_filter`. Options sockstat accepts but cannot honour yet are recorded in
//! [`Options::unsupported`]; `query::check_supported` turns them into an error, so a
//! valid ss command line never fails here with "unknown option" and never prints a
//! silently different answer.

pub mod commands;
mod compat;
pub mod manual;
pub mod netns_arg;

pub use compat::{BpfMaps, stdout_screen_width};

use std::ffi::OsString;
use std::path::PathBuf;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{Arg, ArgAction, ArgMatches, Command};

use crate::filter::{self, FilterError, SS_CONN, SS_LISTENING};
use crate::model::abi::{AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_TIPC, AF_UNIX, AF_VSOCK, AF_XDP};
use crate::query::selection::{Needs, Selection, SourceChoice, Table, fam};
use crate::render::style::{SsCompat, Style};
use crate::wire::client::DEFAULT_SOCKET;

/// Program name used in messages where ss prints "ss".
pub const PROG: &str = "sockstat";

const fn tables(list: &[Table]) -> u32 {
    let mut m = 0;
    let mut i = 0;
    while i < list.len() {
        m |= list[i].bit();
        i += 1;
    }
    m
}

const INET_DBM: u32 = tables(&[Table::Tcp, Table::Mptcp, Table::Udp, Table::Dccp, Table::Sctp, Table::Raw]);
const UNIX_DBM: u32 = tables(&[Table::UnixDgram, Table::UnixStream, Table::UnixSeqpacket]);
const PACKET_DBM: u32 = tables(&[Table::PacketDgram, Table::PacketRaw]);
const VSOCK_DBM: u32 = tables(&[Table::VsockStream, Table::VsockDgram]);

/// ss.c `default_afs[af]`: (tables, states), for the families ss knows.
fn family_defaults(af: u16) -> Option<(u32, u32)> {
    use sockstat_ebpf::TcpState::{Close, Established, Listen};
    let close = filter::bit(Close);
    Some(match af {
        AF_INET | AF_INET6 => (INET_DBM, SS_CONN),
        AF_UNIX => (UNIX_DBM, SS_CONN),
        AF_PACKET => (PACKET_DBM, close),
        AF_NETLINK => (Table::Netlink.bit(), close),
        AF_VSOCK => (VSOCK_DBM, SS_CONN),
        AF_TIPC => (Table::Tipc.bit(), filter::bit(Established) | filter::bit(Listen) | close),
        AF_XDP => (Table::Xdp.bit(), close),
        _ => return None,
    })
}

/// ss.c `filter_db_parse()`'s name table (aliases included).
fn query_tables(name: &str) -> Option<&'static [Table]> {
    use Table::*;
    Some(match name {
        "all" => &[
            Udp,
            Dccp,
            Tcp,
            Mptcp,
            Raw,
            UnixStream,
            UnixDgram,
            UnixSeqpacket,
            PacketRaw,
            PacketDgram,
            Netlink,
            Sctp,
            VsockStream,
            VsockDgram,
            Xdp,
        ],
        "inet" => &[Udp, Dccp, Tcp, Mptcp, Sctp, Raw],
        "udp" => &[Udp],
        "dccp" => &[Dccp],
        "tcp" => &[Tcp],
        "mptcp" => &[Mptcp],
        "sctp" => &[Sctp],
        "raw" => &[Raw],
        "unix" => &[UnixStream, UnixDgram, UnixSeqpacket],
        "unix_stream" | "u_str" => &[UnixStream],
        "unix_dgram" | "u_dgr" => &[UnixDgram],
        "unix_seqpacket" | "u_seq" => &[UnixSeqpacket],
        "packet" => &[PacketRaw, PacketDgram],
        "packet_raw" | "p_raw" => &[PacketRaw],
        "packet_dgram" | "p_dgr" => &[PacketDgram],
        "netlink" => &[Netlink],
        "tipc" => &[Tipc],
        "vsock" => &[VsockStream, VsockDgram],
        "vsock_stream" | "v_str" => &[VsockStream],
        "vsock_dgram" | "v_dgr" => &[VsockDgram],
        "xdp" => &[Xdp],
        _ => return None,
    })
}

/// Everything the rest of sockstat needs from the command line, resolved: what to select
/// ([`Selection`]), how to print it ([`Style`]), and what the command does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Options {
    pub selection: Selection,
    pub style: Style,
    /// `-E`/`--events`: follow the kernel's socket-destroy notifications instead of
    /// dumping the tables (see the `-E` command, `cmd::events`).
    pub follow_events: bool,
    /// `-s`: print the summary (/proc/net/sockstat and sockstat6) first.
    pub summary: bool,
    /// `-s` with no table, family or state option and no FILTER: ss prints the summary
    /// only (`do_default && argc == 0`).
    pub summary_only: bool,
    /// Options given that sockstat cannot honour yet, spelled as on the command line
    /// (`-p`, `--tos`, ...), in command-line order.
    pub unsupported: Vec<String>,
    /// `-D FILE`: write the raw TCP sock_diag replies to FILE (`-` = stdout) and exit.
    pub diag_file: Option<PathBuf>,
    /// `-N NAME`: run the query in the network namespace /run/netns/NAME.
    pub netns: Option<OsString>,
    /// `--notes`: sockstat's own notes on stderr (the diag modules this kernel lacks, with
    /// `-s`). Off by default, so stderr carries what ss's does.
    pub notes: bool,
}

/// Why parsing stopped. Some variants are not failures: [`CliError::Help`] and
/// [`CliError::Version`] carry text for stdout and exit 0, as ss does.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `-h`, `--help`, `-f help`: print the usage on stdout, exit 0.
    #[error("{0}")]
    Help(String),
    /// `-V`, `-v`, `--version`: print on stdout, exit 0.
    #[error("{0}")]
    Version(String),
    /// A getopt-level error (unknown option, missing argument, bad `-f`/`-A` value...):
    /// ss prints the message, then the usage, on stderr and exits 255.
    #[error("{message}")]
    Usage { message: String },
    /// The selection is empty; ss says so on stderr and exits 0.
    #[error("{message}")]
    Nothing { message: String },
    /// A word of the FILTER.
    #[error(transparent)]
    Filter(#[from] FilterError),
    /// A FILTER word that is not valid UTF-8 (ss's words are C strings; ours are matched
    /// as text).
    #[error("filter word {position} is not valid UTF-8: {word:?}")]
    NotUtf8 { word: OsString, position: usize },
    /// `-Z`/`-z` on a system without SELinux: ss says so and exits 1.
    #[error("SELinux is not enabled.")]
    NoSelinux,
    /// `-Z`/`-z` with SELinux enabled: sockstat cannot read security contexts yet.
    #[error("not supported yet: {option} (SELinux security contexts)")]
    SelinuxUnsupported { option: &'static str },
    /// `-F FILE` could not be read, or was given twice (ss: exit 255, no usage).
    #[error("{message}")]
    FilterFile { message: String },
    /// `--ss-compat` or `SOCKSTAT_SS_COMPAT` names no ss version sockstat reproduces.
    #[error("{source_name}: unknown ss version {value:?}: expected 6.1 or 7.1")]
    Compat { source_name: &'static str, value: String },
    /// `--bpf-maps` with `--bpf-map-id`, or a map id that is not a number: ss 7.1's
    /// wording and exit status (1, or 255 when `--bpf-maps` follows an id).
    #[error("{message}")]
    BpfMapOption { message: String, status: u8 },
}

impl CliError {
    /// Exactly what to print, newline-terminated (for `Usage`, the message and the usage).
    #[must_use]
    pub fn rendered(&self) -> String {
        match self {
            Self::Help(text) | Self::Version(text) => text.clone(),
            Self::Usage { message } => format!("{PROG}: {message}\n{}", usage()),
            Self::Nothing { message } => format!("{PROG}: {message}\n"),
            Self::Filter(e) => e.ss_message(PROG),
            Self::NotUtf8 { .. }
            | Self::NoSelinux
            | Self::SelinuxUnsupported { .. }
            | Self::Compat { .. }
            | Self::BpfMapOption { .. } => format!("{PROG}: {self}\n"),
            // ss prints these bare (perror / fprintf without the program name).
            Self::FilterFile { message } => format!("{message}\n"),
        }
    }

    /// Whether [`CliError::rendered`] goes to stdout (help, version) rather than stderr.
    #[must_use]
    pub fn to_stdout(&self) -> bool {
        matches!(self, Self::Help(_) | Self::Version(_))
    }

    /// The exit status ss uses for the same outcome.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Help(_) | Self::Version(_) | Self::Nothing { .. } => 0,
            Self::Usage { .. } | Self::NotUtf8 { .. } | Self::FilterFile { .. } | Self::Compat { .. } => 255,
            Self::NoSelinux | Self::SelinuxUnsupported { .. } => 1,
            Self::BpfMapOption { status, .. } => *status,
            Self::Filter(e) => e.exit_code(),
        }
    }
}

/// ss's usage text (iproute2 6.1) with sockstat's name, followed by sockstat's own options.
#[must_use]
pub fn usage() -> String {
    let timeline = crate::timeline::DEFAULT_PATH;
    let commands = commands_text();
    format!(
        "Usage: {PROG} [ OPTIONS ]
       {PROG} [ OPTIONS ] [ FILTER ]
   -h, --help          this message
   -V, --version       output version information
   -n, --numeric       don't resolve service names
   -r, --resolve       resolve host names
   -a, --all           display all sockets
   -l, --listening     display listening sockets
   -B, --bound-inactive display TCP bound but inactive sockets
   -o, --options       show timer information
   -e, --extended      show detailed socket information
   -m, --memory        show socket memory usage
   -p, --processes     show process using socket
   -T, --threads       show thread using socket
   -i, --info          show internal TCP information
       --tipcinfo      show internal tipc socket information
   -s, --summary       show socket usage summary
       --tos           show tos and priority information
       --cgroup        show cgroup information
   -b, --bpf           show bpf filter socket information
       --bpf-maps      show all BPF socket-local storage maps
       --bpf-map-id=MAP-ID    show a BPF socket-local storage map
   -E, --events        continually display sockets as they are destroyed
   -Z, --context       display task SELinux security contexts
   -z, --contexts      display task and socket SELinux security contexts
   -N, --net           switch to the specified network namespace name

   -4, --ipv4          display only IP version 4 sockets
   -6, --ipv6          display only IP version 6 sockets
   -0, --packet        display PACKET sockets
   -t, --tcp           display only TCP sockets
   -M, --mptcp         display only MPTCP sockets
   -S, --sctp          display only SCTP sockets
   -u, --udp           display only UDP sockets
   -d, --dccp          display only DCCP sockets
   -w, --raw           display only RAW sockets
   -x, --unix          display only Unix domain sockets
       --tipc          display only TIPC sockets
       --vsock         display only vsock sockets
       --xdp           display only XDP sockets
   -f, --family=FAMILY display sockets of type FAMILY
       FAMILY := {{inet|inet6|link|unix|netlink|vsock|tipc|xdp|help}}

   -K, --kill          forcibly close sockets, display what was closed
   -H, --no-header     Suppress header line
   -Q, --no-queues     Suppress sending and receiving queue columns
   -O, --oneline       socket's data printed on a single line
       --inet-sockopt  show various inet socket options

   -A, --query=QUERY
       QUERY := {{all|inet|tcp|mptcp|udp|raw|unix|unix_dgram|unix_stream|unix_seqpacket|packet|packet_raw|packet_dgram|netlink|dccp|sctp|vsock_stream|vsock_dgram|tipc|xdp}}[,QUERY]

   -D, --diag=FILE     Dump raw information about TCP sockets to FILE
   -F, --filter=FILE   read filter information from FILE
       FILTER := [ state STATE-FILTER ] [ EXPRESSION ]
       STATE-FILTER := {{all|connected|synchronized|bucket|big|TCP-STATES}}
         TCP-STATES := {{established|syn-sent|syn-recv|fin-wait-{{1,2}}|time-wait|closed|close-wait|last-ack|listening|closing}}
          connected := {{established|syn-sent|syn-recv|fin-wait-{{1,2}}|time-wait|close-wait|last-ack|closing}}
       synchronized := {{established|syn-recv|fin-wait-{{1,2}}|time-wait|close-wait|last-ack|closing}}
             bucket := {{syn-recv|time-wait}}
                big := {{established|syn-sent|fin-wait-{{1,2}}|closed|close-wait|last-ack|listening|closing}}

 sockstat's own options:
       --ss-compat=VERSION whose output to reproduce: 6.1 or 7.1 (default: the
                       version of the ss installed here, else 7.1; also
                       SOCKSTAT_SS_COMPAT)
       --notes         sockstat's notes on stderr (diag modules missing, with -s)
       --tcpdiag-all   read every dump of $TCPDIAG_FILE and select it like a live
                       dump (default: as ss, up to the first NLMSG_DONE)
       --source=SOURCE where answers come from: agent, kernel or auto (default auto)
       --socket=PATH   the agent's query socket (default {DEFAULT_SOCKET});
                       unlike ss, where --socket is an alias of --query
       --json          one JSON object per socket and line, typed
       --bpf-disasm    with -b: also disassemble each packet socket's classic BPF
                       filter, as `tcpdump -d` prints it (implies -b)
       --at=TIME       the TCP table as it was at TIME (RFC 3339, or relative: -5m),
                       replayed from the agent's timeline
       --timeline=PATH the timeline --at reads (default {timeline})

 sockstat's commands ({PROG} COMMAND --help for each):
{commands}"
    )
}

/// One line per command of [`commands::Own`], from its clap definition.
fn commands_text() -> String {
    use clap::CommandFactory;
    let own = commands::Own::command();
    let mut text = String::new();
    for c in own.get_subcommands() {
        let about = c.get_about().map(ToString::to_string).unwrap_or_default();
        text.push_str(&format!("       {:<15} {about}\n", c.get_name()));
    }
    text
}

/// The `-V` text.
#[must_use]
pub fn version() -> String {
    format!("{PROG} utility, sockstat-{}\n", env!("CARGO_PKG_VERSION"))
}

/// A flag of ss that takes no value: (id, short, long).
const FLAGS: &[(&str, Option<char>, Option<&str>)] = &[
    ("numeric", Some('n'), Some("numeric")),
    ("resolve", Some('r'), Some("resolve")),
    ("options", Some('o'), Some("options")),
    ("extended", Some('e'), Some("extended")),
    ("memory", Some('m'), Some("memory")),
    ("info", Some('i'), Some("info")),
    ("processes", Some('p'), Some("processes")),
    ("threads", Some('T'), Some("threads")),
    ("bpf", Some('b'), Some("bpf")),
    ("events", Some('E'), Some("events")),
    ("dccp", Some('d'), Some("dccp")),
    ("tcp", Some('t'), Some("tcp")),
    ("sctp", Some('S'), Some("sctp")),
    ("udp", Some('u'), Some("udp")),
    ("raw", Some('w'), Some("raw")),
    ("unix", Some('x'), Some("unix")),
    ("tipc", None, Some("tipc")),
    ("vsock", None, Some("vsock")),
    ("all", Some('a'), Some("all")),
    ("listening", Some('l'), Some("listening")),
    ("ipv4", Some('4'), Some("ipv4")),
    ("ipv6", Some('6'), Some("ipv6")),
    ("packet", Some('0'), Some("packet")),
    ("summary", Some('s'), Some("summary")),
    ("version", Some('V'), Some("version")),
    ("version_v", Some('v'), None),
    ("help", Some('h'), Some("help")),
    ("context", Some('Z'), Some("context")),
    ("contexts", Some('z'), Some("contexts")),
    ("tipcinfo", None, Some("tipcinfo")),
    ("tos", None, Some("tos")),
    ("cgroup", None, Some("cgroup")),
    ("kill", Some('K'), Some("kill")),
    ("no-header", Some('H'), Some("no-header")),
    ("xdp", None, Some("xdp")),
    ("mptcp", Some('M'), Some("mptcp")),
    ("oneline", Some('O'), Some("oneline")),
    ("inet-sockopt", None, Some("inet-sockopt")),
    ("json", None, Some("json")),
    ("bpf-disasm", None, Some("bpf-disasm")),
    ("bound-inactive", Some('B'), Some("bound-inactive")),
    ("no-queues", Some('Q'), Some("no-queues")),
    ("bpf-maps", None, Some("bpf-maps")),
    ("notes", None, Some("notes")),
    ("tcpdiag-all", None, Some("tcpdiag-all")),
];

/// An ss option that takes a value: (id, short, long).
const VALUED: &[(&str, Option<char>, &str)] = &[
    ("family", Some('f'), "family"),
    ("query", Some('A'), "query"),
    ("diag", Some('D'), "diag"),
    ("filter", Some('F'), "filter"),
    ("net", Some('N'), "net"),
    ("source", None, "source"),
    ("socket", None, "socket"),
    ("bpf-map-id", None, "bpf-map-id"),
    ("ss-compat", None, "ss-compat"),
];

fn command() -> Command {
    let mut cmd = Command::new(PROG)
        .no_binary_name(true)
        .disable_help_flag(true)
        .disable_version_flag(true)
        // getopt_long accepts any unambiguous prefix of a long option.
        .infer_long_args(true);
    for &(id, short, long) in FLAGS {
        // Not ArgAction::Count: clap keeps only the last position of a counted flag, and
        // the selection options must be replayed in command-line order.
        let mut arg = Arg::new(id).action(ArgAction::Append).num_args(0).default_missing_value("1");
        if let Some(s) = short {
            arg = arg.short(s);
        }
        if let Some(l) = long {
            arg = arg.long(l);
        }
        cmd = cmd.arg(arg);
    }
    for &(id, short, long) in VALUED {
        let mut arg = Arg::new(id)
            .long(long)
            .action(ArgAction::Append)
            .num_args(1)
            .allow_hyphen_values(true)
            .value_parser(clap::value_parser!(OsString));
        if let Some(s) = short {
            arg = arg.short(s);
        }
        cmd = cmd.arg(arg);
    }
    // getopt permutes: options may follow FILTER words, and `--` ends the options.
    cmd.arg(Arg::new("words").num_args(0..).action(ArgAction::Append).value_parser(clap::value_parser!(OsString)))
}

/// getopt's wording for what clap rejected. `last` is the last command-line word: a
/// missing option argument can only be missing there, and it tells `-N` from `--net`,
/// which clap's error does not.
fn usage_error(err: &clap::Error, last: Option<&OsString>) -> CliError {
    let last = last.map(lossy).unwrap_or_default();
    let arg = match err.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // clap names a value-taking option as "-N <net>" or "--net <net>"; getopt names it bare.
    let bare = arg.split([' ', '=']).next().unwrap_or_default().to_owned();
    let message = match err.kind() {
        ErrorKind::UnknownArgument if bare.starts_with("--") => {
            format!("unrecognized option '{arg}'")
        }
        ErrorKind::UnknownArgument => {
            let c = bare.trim_start_matches('-').chars().next().unwrap_or('?');
            format!("invalid option -- '{c}'")
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals | ErrorKind::WrongNumberOfValues if last.starts_with("--") => {
            format!("option '{bare}' requires an argument")
        }
        ErrorKind::InvalidValue | ErrorKind::NoEquals | ErrorKind::WrongNumberOfValues => {
            let c = last.chars().last().unwrap_or('?');
            format!("option requires an argument -- '{c}'")
        }
        ErrorKind::TooManyValues | ErrorKind::ArgumentConflict if bare.starts_with("--") => {
            format!("option '{bare}' doesn't allow an argument")
        }
        _ => {
            // Keep clap's own first line rather than inventing one.
            let text = err.render().to_string();
            let line = text.lines().next().unwrap_or_default();
            line.strip_prefix("error: ").unwrap_or(line).to_owned()
        }
    };
    CliError::Usage { message }
}

/// One ss option that changes the table/family/state selection, replayed in order.
#[derive(Clone, Debug)]
enum SelectOp {
    Table(Table),
    Family(u16),
    Query(String),
    States(u32),
}

/// ss.c's `struct filter` plus the `main()` locals that shape it.
#[derive(Clone)]
struct Scan {
    dbs: u32,
    families: u64,
    states: u32,
    do_default: bool,
    state_filter: u32,
    saw_query: bool,
    preferred_family: Option<u16>,
    /// ss's `SS_CONN` of the version reproduced ([`filter::ss_conn`]).
    conn: u32,
}

impl Scan {
    /// A table's or family's default states, with this version's `SS_CONN`.
    fn versioned(&self, states: u32) -> u32 {
        if states == SS_CONN { self.conn } else { states }
    }

    fn db_set(&mut self, t: Table, enable: bool) {
        if enable {
            self.states |= self.versioned(t.defaults().0);
            self.dbs |= t.bit();
        } else {
            self.dbs &= !t.bit();
        }
        self.do_default = false;
    }

    fn af_set(&mut self, af: u16) {
        if let Some((_, states)) = family_defaults(af) {
            self.states |= self.versioned(states);
        }
        self.families |= fam(af);
        self.do_default = false;
        self.preferred_family = Some(af);
    }

    /// `filter_db_parse()`: false if the name is unknown.
    fn db_parse(&mut self, name: &str) -> bool {
        let (enable, name) = match name.strip_prefix('!') {
            Some(rest) => (false, rest),
            None => (true, name),
        };
        let Some(list) = query_tables(name) else {
            return false;
        };
        for &t in list {
            self.db_set(t, enable);
        }
        true
    }

    fn merge_defaults(&mut self) {
        for t in Table::ALL {
            if self.dbs & t.bit() != 0 && t.defaults().1 & self.families == 0 {
                self.families |= t.defaults().1;
            }
        }
        for af in 0..64u16 {
            if self.families & fam(af) == 0 {
                continue;
            }
            if let Some((dbs, _)) = family_defaults(af)
                && dbs & self.dbs == 0
            {
                self.dbs |= dbs;
            }
        }
    }
}

fn count(m: &ArgMatches, id: &str) -> u8 {
    let n = m.get_many::<String>(id).map_or(0, Iterator::count);
    u8::try_from(n).unwrap_or(u8::MAX)
}

/// Every occurrence of `id`, with its position on the command line.
fn flag_positions(m: &ArgMatches, id: &str) -> Vec<usize> {
    if count(m, id) == 0 {
        return Vec::new();
    }
    m.indices_of(id).map(Iterator::collect).unwrap_or_default()
}

fn values_with_positions(m: &ArgMatches, id: &str) -> Vec<(usize, OsString)> {
    let (Some(idx), Some(vals)) = (m.indices_of(id), m.get_many::<OsString>(id)) else {
        return Vec::new();
    };
    idx.zip(vals.cloned()).collect()
}

fn lossy(v: &OsString) -> String {
    v.to_string_lossy().into_owned()
}

/// Parses ss-style arguments (without argv[0]) into resolved [`Options`].
///
/// # Errors
/// [`CliError`]: help/version requests (exit 0, stdout), getopt-style usage errors, an
/// empty selection, or a bad FILTER; [`CliError::rendered`] and [`CliError::exit_code`]
/// say what ss would print and return.
pub fn parse_ss_args<I: IntoIterator<Item = OsString>>(args: I) -> Result<Options, CliError> {
    parse_ss_args_with(args, || Ok(SsCompat::V6_1))
}

/// [`parse_ss_args`], with `default_compat` deciding whose output is reproduced when
/// `--ss-compat` is not given (the binary passes the environment variable and the
/// installed ss's version; called only then, and after help and version requests).
///
/// # Errors
/// As [`parse_ss_args`]; [`CliError::Compat`] for an unknown `--ss-compat` value, and
/// whatever `default_compat` returns.
pub fn parse_ss_args_with<I, F>(args: I, default_compat: F) -> Result<Options, CliError>
where
    I: IntoIterator<Item = OsString>,
    F: FnOnce() -> Result<SsCompat, CliError>,
{
    let args: Vec<OsString> = args.into_iter().collect();
    let m = command().try_get_matches_from(&args).map_err(|e| usage_error(&e, args.last()))?;

    // getopt handles options left to right and stops at the first -h or -V: whichever
    // comes first wins. (An error in a later option would be reported by ss first; clap
    // has already validated every option, so those are reported before help here.)
    let help = flag_positions(&m, "help").into_iter().min();
    let family_help =
        values_with_positions(&m, "family").into_iter().filter(|(_, v)| v == "help").map(|(i, _)| i).min();
    let help = help.into_iter().chain(family_help).min();
    let ver = flag_positions(&m, "version").into_iter().chain(flag_positions(&m, "version_v")).min();
    match (help, ver) {
        (Some(h), Some(v)) if v < h => return Err(CliError::Version(version())),
        (Some(_), _) => return Err(CliError::Help(usage())),
        (None, Some(_)) => return Err(CliError::Version(version())),
        (None, None) => {}
    }

    // ss handles -Z/-z inside its getopt loop: without SELinux it stops there, exit 1.
    if let Some(option) =
        [("context", "-Z"), ("contexts", "-z")].into_iter().find(|(id, _)| count(&m, id) > 0).map(|(_, o)| o)
    {
        return Err(if selinux_enabled() { CliError::SelinuxUnsupported { option } } else { CliError::NoSelinux });
    }
    let bpf_maps = compat::bpf_map_options(&m)?;
    let file_words = filter_file_words(&m)?;
    let compat = match m.get_many::<OsString>("ss-compat").and_then(Iterator::last) {
        Some(v) => SsCompat::parse(&lossy(v))
            .ok_or_else(|| CliError::Compat { source_name: "--ss-compat", value: lossy(v) })?,
        None => default_compat()?,
    };

    let mut sel = replay_selection(&m, compat)?;
    // Before apply_filter: its `filter_db_parse("all")` clears do_default, as in ss.
    let do_default = sel.do_default;
    let parsed = apply_filter(&m, &mut sel, file_words)?;
    let (source, agent_socket) = source_options(&m)?;
    let unsupported = unsupported_options(&m);

    let show_details = count(&m, "extended");
    let bpf_disasm = count(&m, "bpf-disasm") > 0;
    let show_bpf = count(&m, "bpf") > 0 || bpf_disasm;
    let summary = count(&m, "summary") > 0;
    let no_words = m.get_many::<OsString>("words").is_none_or(|w| w.len() == 0);
    let show_options = count(&m, "options") > 0 || show_details > 0 || show_bpf;
    let style = Style {
        compat,
        hide_queues: count(&m, "no-queues") > 0,
        numeric: count(&m, "numeric") > 0,
        resolve_hosts: count(&m, "resolve") > 0,
        show_header: count(&m, "no-header") == 0,
        // ss shows the Netid column only when more than one table is selected, and the
        // State column only when more than one state is.
        show_netid: sel.dbs.count_ones() > 1,
        show_state: sel.states.count_ones() > 1,
        oneline: count(&m, "oneline") > 0,
        show_options,
        show_details,
        show_mem: count(&m, "memory") > 0,
        show_tcpinfo: count(&m, "info") > 0,
        show_processes: count(&m, "processes"),
        show_threads: count(&m, "threads") > 0,
        show_cgroup: count(&m, "cgroup") > 0,
        show_tos: count(&m, "tos") > 0,
        show_inet_sockopt: count(&m, "inet-sockopt") > 0,
        json: count(&m, "json") > 0,
        show_bpf,
        bpf_disasm,
        screen_width: None,
    };
    let needs = Needs {
        details: style.show_details > 0,
        mem: style.show_mem,
        info: style.show_tcpinfo,
        owners: style.show_processes > 0,
        threads: style.show_threads,
        cgroup: style.show_cgroup,
        tos: style.show_tos,
        sockopt: style.show_inet_sockopt,
        bpf: style.show_bpf,
        timers: style.show_options,
    };
    Ok(Options {
        selection: Selection {
            tables: sel.dbs,
            families: sel.families,
            states: sel.states,
            filter: parsed,
            preferred_family: sel.preferred_family,
            source,
            agent_socket,
            kill: count(&m, "kill") > 0,
            needs,
            recorded_all_dumps: count(&m, "tcpdiag-all") > 0,
            bpf_maps,
        },
        style,
        follow_events: count(&m, "events") > 0,
        summary,
        summary_only: summary && do_default && no_words,
        unsupported,
        diag_file: m.get_many::<OsString>("diag").and_then(Iterator::last).map(PathBuf::from),
        netns: m.get_many::<OsString>("net").and_then(Iterator::last).cloned(),
        notes: count(&m, "notes") > 0,
    })
}

/// Whether SELinux is enabled (libselinux's test: selinuxfs is mounted).
fn selinux_enabled() -> bool {
    std::fs::read_to_string("/proc/mounts")
        .is_ok_and(|m| m.lines().any(|l| l.split_whitespace().nth(2) == Some("selinuxfs")))
}

/// `-F FILE` (`-` = stdin): the words of the file's lines, read after the command line's
/// FILTER words, as ss's lexer reads them (lines starting with `#` are comments; ss also
/// skips lines starting with `0`, and so does this).
fn filter_file_words(m: &ArgMatches) -> Result<Vec<String>, CliError> {
    let files: Vec<OsString> = m.get_many::<OsString>("filter").into_iter().flatten().cloned().collect();
    let Some(file) = files.first() else { return Ok(Vec::new()) };
    if files.len() > 1 {
        return Err(CliError::FilterFile { message: "More than one filter file".to_owned() });
    }
    let text = if file.to_string_lossy().starts_with('-') {
        let mut t = String::new();
        crate::names::lookup::stdin_read();
        std::io::Read::read_to_string(&mut std::io::stdin(), &mut t).map(|_| t)
    } else {
        std::fs::read_to_string(file)
    };
    let text = text.map_err(|e| {
        // perror("fopen filter file"): the strerror text without Rust's " (os error N)".
        let msg = e.to_string();
        let msg = msg.split(" (os error").next().unwrap_or(&msg).to_owned();
        CliError::FilterFile { message: format!("fopen filter file: {msg}") }
    })?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('0'))
        .flat_map(str::split_whitespace)
        .map(str::to_owned)
        .collect())
}

/// Replays the table, family and `-a`/`-l` options in command-line order, as ss's getopt
/// loop does.
fn replay_selection(m: &ArgMatches, compat: SsCompat) -> Result<Scan, CliError> {
    let mut ops: Vec<(usize, SelectOp)> = Vec::new();
    let table_flags = [
        ("dccp", Table::Dccp),
        ("tcp", Table::Tcp),
        ("sctp", Table::Sctp),
        ("udp", Table::Udp),
        ("raw", Table::Raw),
        ("mptcp", Table::Mptcp),
    ];
    for (id, t) in table_flags {
        ops.extend(flag_positions(m, id).into_iter().map(|i| (i, SelectOp::Table(t))));
    }
    let family_flags = [
        ("unix", AF_UNIX),
        ("vsock", AF_VSOCK),
        ("tipc", AF_TIPC),
        ("ipv4", AF_INET),
        ("ipv6", AF_INET6),
        ("packet", AF_PACKET),
        ("xdp", AF_XDP),
    ];
    for (id, af) in family_flags {
        ops.extend(flag_positions(m, id).into_iter().map(|i| (i, SelectOp::Family(af))));
    }
    let all = filter::ss_all(compat.v7());
    ops.extend(flag_positions(m, "all").into_iter().map(|i| (i, SelectOp::States(all))));
    ops.extend(flag_positions(m, "listening").into_iter().map(|i| (i, SelectOp::States(SS_LISTENING))));
    ops.extend(
        flag_positions(m, "bound-inactive").into_iter().map(|i| (i, SelectOp::States(filter::SS_BOUND_INACTIVE))),
    );
    for (i, v) in values_with_positions(m, "family") {
        let af = match v.to_str() {
            Some("inet") => AF_INET,
            Some("inet6") => AF_INET6,
            Some("link") => AF_PACKET,
            Some("unix") => AF_UNIX,
            Some("netlink") => AF_NETLINK,
            Some("tipc") => AF_TIPC,
            Some("vsock") => AF_VSOCK,
            Some("xdp") => AF_XDP,
            _ => {
                return Err(CliError::Usage { message: format!("\"{}\" is invalid family", lossy(&v)) });
            }
        };
        ops.push((i, SelectOp::Family(af)));
    }
    for (i, v) in values_with_positions(m, "query") {
        ops.push((i, SelectOp::Query(lossy(&v))));
    }
    ops.sort_by_key(|(i, _)| *i);

    let mut sel = Scan {
        dbs: 0,
        families: 0,
        states: 0,
        do_default: true,
        state_filter: 0,
        saw_query: false,
        preferred_family: None,
        conn: filter::ss_conn(compat.v7()),
    };
    for (_, op) in ops {
        match op {
            SelectOp::Table(t) => sel.db_set(t, true),
            SelectOp::Family(af) => sel.af_set(af),
            SelectOp::States(s) => sel.state_filter = s,
            SelectOp::Query(list) => {
                if !sel.saw_query {
                    sel.dbs = 0;
                    if sel.state_filter == 0 {
                        sel.state_filter = sel.conn;
                    }
                    sel.saw_query = true;
                    sel.do_default = false;
                }
                for name in list.split(',') {
                    if !sel.db_parse(name) {
                        return Err(CliError::Usage { message: format!("\"{name}\" is illegal socket table id") });
                    }
                }
            }
        }
    }

    Ok(sel)
}

/// Parses the FILTER words and applies ss's defaults and emptiness checks.
fn apply_filter(m: &ArgMatches, sel: &mut Scan, file_words: Vec<String>) -> Result<filter::Filter, CliError> {
    let words: Vec<(usize, OsString)> =
        m.get_many::<OsString>("words").into_iter().flatten().cloned().enumerate().collect();
    let mut text = Vec::with_capacity(words.len());
    for (i, w) in words {
        match w.into_string() {
            Ok(s) => text.push(s),
            Err(word) => {
                return Err(CliError::NotUtf8 { word, position: i + 1 });
            }
        }
    }
    text.extend(file_words);
    // ss parses the expression after applying its defaults: which tables are selected
    // then decides how service names resolve (tcp, udp), and its preferred family how
    // addresses parse.
    let mut after_defaults = sel.clone();
    if after_defaults.do_default {
        after_defaults.db_parse("all");
    }
    after_defaults.merge_defaults();
    let ctx = filter::ParseContext {
        preferred_family: sel.preferred_family.unwrap_or(0),
        tcp: after_defaults.dbs & Table::Tcp.bit() != 0,
        udp: after_defaults.dbs & Table::Udp.bit() != 0,
        resolver: &crate::names::lookup::SystemResolver,
        ss_all: filter::ss_all(sel.conn != SS_CONN),
    };
    let parsed = filter::parse_with(&text, sel.state_filter, &ctx)?;
    sel.state_filter = parsed.state_filter;

    if sel.do_default {
        if sel.state_filter == 0 {
            sel.state_filter = sel.conn;
        }
        sel.db_parse("all");
    }
    // filter_states_set(): an empty state_filter keeps the tables' defaults.
    if sel.state_filter != 0 {
        sel.states = sel.state_filter;
    }
    sel.merge_defaults();
    // parse_hostcond(): a condition naming a family (or any condition under a preferred
    // family) replaces the family selection with that family (`f->families = 0;
    // filter_af_set(f, fam)`), after the defaults were merged.
    if let Some(af) = parsed.family_override {
        sel.families = fam(af);
        sel.preferred_family = Some(af);
    }

    for (empty, what) in
        [(sel.dbs == 0, "socket tables"), (sel.families == 0, "families"), (sel.states == 0, "socket states")]
    {
        if empty {
            return Err(CliError::Nothing { message: format!("no {what} to show with such filter.") });
        }
    }

    Ok(parsed)
}

/// `--source` and `--socket`.
fn source_options(m: &ArgMatches) -> Result<(SourceChoice, PathBuf), CliError> {
    let source = match m.get_many::<OsString>("source").and_then(Iterator::last).map(|v| v.to_str()) {
        None | Some(Some("auto")) => SourceChoice::Auto,
        Some(Some("agent")) => SourceChoice::Agent,
        Some(Some("kernel")) => SourceChoice::Kernel,
        Some(_) => {
            let v = m.get_many::<OsString>("source").and_then(Iterator::last).map(lossy).unwrap_or_default();
            return Err(CliError::Usage {
                message: format!("\"{v}\" is invalid source (expected agent, kernel or auto)"),
            });
        }
    };
    let agent_socket = m
        .get_many::<OsString>("socket")
        .and_then(Iterator::last)
        .map_or_else(|| PathBuf::from(DEFAULT_SOCKET), PathBuf::from);

    Ok((source, agent_socket))
}

/// Options accepted for compatibility but not honoured yet, in command-line order.
fn unsupported_options(m: &ArgMatches) -> Vec<String> {
    let mut unsupported: Vec<(usize, String)> = Vec::new();
    for &(id, short, long) in FLAGS {
        let supported = matches!(
            id,
            "numeric" | "resolve" | "all" | "listening" | "ipv4" | "ipv6" | "no-header" | "oneline" | "help" | "version"
                | "bound-inactive" | "no-queues" | "notes" | "tcpdiag-all"
                | "version_v" | "bpf" | "bpf-disasm" | "bpf-maps" | "summary" | "options"
                | "extended" | "memory" | "info" | "processes" | "json" | "kill" | "context" | "contexts"
                | "threads" | "cgroup" | "tos" | "inet-sockopt" | "events"
                // Table and family flags: whether sockstat can show the selected tables is
                // query's decision, made on the resolved selection.
                | "dccp" | "tcp" | "sctp" | "udp" | "raw" | "unix" | "tipc" | "vsock" | "packet" | "xdp" | "mptcp"
        );
        if supported {
            continue;
        }
        let spelling = short.map_or_else(|| format!("--{}", long.unwrap_or(id)), |c| format!("-{c}"));
        unsupported.extend(flag_positions(m, id).into_iter().map(|i| (i, spelling.clone())));
    }
    unsupported.sort();
    // Name each option once, where it first appears.
    let mut seen = std::collections::HashSet::new();
    unsupported.into_iter().map(|(_, s)| s).filter(|s| seen.insert(s.clone())).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::SS_ALL;
    use crate::filter::bit;
    use sockstat_ebpf::TcpState::*;

    fn parse(line: &str) -> Result<Options, CliError> {
        parse_ss_args(line.split_whitespace().map(OsString::from))
    }

    fn ok(line: &str) -> Options {
        parse(line).unwrap_or_else(|e| panic!("{line:?}: {}", e.rendered()))
    }

    const INET: u64 = 1 << 2 | 1 << 10;

    #[test]
    fn selection_matches_ss_main() {
        let tcp = Table::Tcp.bit();
        let cases: &[(&str, u32, u64, u32)] = &[
            ("-t", tcp, INET, SS_CONN),
            ("-tn", tcp, INET, SS_CONN),
            ("-ta", tcp, INET, SS_ALL),
            ("-tan", tcp, INET, SS_ALL),
            ("-tl", tcp, INET, bit(Listen) | bit(Close)),
            // -a then -l: the last one wins, as in ss's switch.
            ("-t -a -l", tcp, INET, bit(Listen) | bit(Close)),
            ("-t -l -a", tcp, INET, SS_ALL),
            ("-t4", tcp, 1 << 2, SS_CONN),
            ("-t -6", tcp, 1 << 10, SS_CONN),
            ("-t -f inet6", tcp, 1 << 10, SS_CONN),
            ("-t --family=inet", tcp, 1 << 2, SS_CONN),
            ("-A tcp", tcp, INET, SS_CONN),
            ("--query=tcp -l", tcp, INET, bit(Listen) | bit(Close)),
            ("-t -A udp", Table::Udp.bit(), INET, SS_CONN),
            ("-A udp -t", Table::Udp.bit() | tcp, INET, SS_CONN),
            ("-A inet,!udp,!raw,!dccp,!sctp,!mptcp", tcp, INET, SS_CONN),
            ("-ta state established", tcp, INET, bit(Established)),
            ("-tl exclude listening", tcp, INET, SS_ALL & !bit(Listen)),
            // getopt permutes: options after FILTER words still count.
            ("state time-wait -t", tcp, INET, bit(TimeWait)),
            // exclude all leaves state_filter 0: ss falls back to the table's SS_CONN.
            ("-ta exclude all", tcp, INET, SS_CONN),
            ("-t -u", tcp | Table::Udp.bit(), INET, SS_CONN),
            ("-u", Table::Udp.bit(), INET, bit(Established)),
            ("-4", INET_DBM, 1 << 2, SS_CONN),
            ("-x", UNIX_DBM, 1 << 1, SS_CONN),
        ];
        for &(line, tables, families, states) in cases {
            let o = ok(line);
            assert_eq!(
                (o.selection.tables, o.selection.families, o.selection.states),
                (tables, families, states),
                "{line}"
            );
        }
        // No table option at all: every table, every family they imply.
        let o = ok("-n");
        assert_eq!(o.selection.tables, tables(query_tables("all").unwrap_or(&[])));
        assert_eq!(o.selection.states, SS_CONN);
        assert!(o.style.show_netid);
        assert!(
            o.selection.has_family(AF_UNIX) && o.selection.has_family(AF_INET6) && o.selection.has_family(AF_NETLINK)
        );
    }

    #[test]
    fn flags_resolve() {
        let o = ok("-tanH");
        assert!(
            o.style.numeric
                && !o.style.show_header
                && !o.style.resolve_hosts
                && !o.style.show_netid
                && o.style.show_state
        );
        assert_eq!(o.selection.source, SourceChoice::Auto);
        assert_eq!(o.selection.agent_socket, PathBuf::from(DEFAULT_SOCKET));
        assert!(o.unsupported.is_empty());
        assert!(!ok("-t state listening").style.show_state);

        let o = ok("-tpe --source kernel --socket /tmp/a.sock -o -r -p --json");
        assert_eq!(o.selection.source, SourceChoice::Kernel);
        assert_eq!(o.selection.agent_socket, PathBuf::from("/tmp/a.sock"));
        assert!(
            o.style.show_options
                && o.style.show_details == 1
                && o.style.show_processes == 2
                && o.style.json
                && o.style.resolve_hosts
        );
        // -o, -e, -p, --json and -r are supported now.
        assert!(o.unsupported.is_empty());
        assert_eq!(ok("-t --source=agent").selection.source, SourceChoice::Agent);
        // Unique prefixes of long options, as getopt_long.
        let o = ok("--tcp --num --listen --no-h");
        assert!(o.style.numeric && !o.style.show_header && o.selection.states == SS_LISTENING);
        let o = ok("-t -N foo -m -i -K -D /tmp/d");
        assert!(o.unsupported.is_empty() && o.style.show_mem && o.style.show_tcpinfo && o.selection.kill);
        assert_eq!(
            (o.netns.as_deref(), o.diag_file.as_deref()),
            (Some(std::ffi::OsStr::new("foo")), Some(std::path::Path::new("/tmp/d")))
        );
        let o = ok("-t --tos -T --inet-sockopt");
        assert!(o.unsupported.is_empty() && o.style.show_tos && o.style.show_inet_sockopt && o.style.show_threads);
        let o = ok("-t -E");
        assert!(o.follow_events && o.unsupported.is_empty());
        assert!(ok("--ev -u").follow_events && !ok("-t").follow_events);
        let o = ok("-tT --cgroup");
        assert!(o.style.show_threads && o.style.show_cgroup && o.style.show_processes == 0 && o.unsupported.is_empty());
    }

    #[test]
    fn ss_7_1_states_and_options() {
        let v7 = |line: &str| {
            parse_ss_args_with(line.split_whitespace().map(OsString::from), || Ok(SsCompat::V7_1))
                .unwrap_or_else(|e| panic!("{line:?}: {}", e.rendered()))
        };
        let bi = filter::SS_BOUND_INACTIVE;
        // ss 7.1's SS_ALL and SS_CONN carry NEW_SYN_RECV and BOUND_INACTIVE.
        assert_eq!(v7("-ta").selection.states, SS_ALL | 1 << 12 | bi);
        assert_eq!(v7("-t").selection.states, SS_CONN | 1 << 12 | bi);
        assert_eq!(ok("-t").selection.states, SS_CONN);
        assert_eq!(v7("-tB").selection.states, bi);
        assert_eq!(ok("-tB").selection.states, bi);
        assert_eq!(v7("-tl").selection.states, SS_LISTENING);
        assert_eq!(v7("-t state bound-inactive").selection.states, bi);
        assert_eq!(v7("-t exclude listening").selection.states, (SS_ALL | 1 << 12 | bi) & !bit(Listen));
        assert!(!v7("-tB").style.show_state);
        assert_eq!(v7("-t").style.compat, SsCompat::V7_1);
        assert_eq!(ok("-t --ss-compat 7.1").style.compat, SsCompat::V7_1);
        assert_eq!(v7("-t --ss-compat=6.1").style.compat, SsCompat::V6_1);
        assert!(v7("-tQ").style.hide_queues && v7("--no-queues -t").style.hide_queues);
        let e = parse("-t --ss-compat 8.0").expect_err("unknown version");
        assert_eq!(e.rendered(), "sockstat: --ss-compat: unknown ss version \"8.0\": expected 6.1 or 7.1\n");
        assert_eq!(e.exit_code(), 255);
        // --bpf-maps / --bpf-map-id, as ss 7.1 takes them.
        assert_eq!(ok("-t --bpf-maps").selection.bpf_maps, Some(BpfMaps::All));
        assert_eq!(
            ok("-t --bpf-map-id 0x10 --bpf-map-id=3 --bpf-map-id 16").selection.bpf_maps,
            Some(BpfMaps::Ids(vec![(16, "0x10".to_owned()), (3, "3".to_owned())]))
        );
        let e = parse("-t --bpf-map-id 4x").expect_err("bad id");
        assert_eq!((e.rendered().as_str(), e.exit_code()), ("sockstat: invalid BPF map ID 4x\n", 1));
        assert_eq!(parse("-t --bpf-map-id 0").expect_err("id 0").exit_code(), 1);
        assert_eq!(parse("-t --bpf-maps --bpf-map-id 3").expect_err("mixed").exit_code(), 1);
        assert_eq!(parse("-t --bpf-map-id 3 --bpf-maps").expect_err("mixed").exit_code(), 255);
        assert!(ok("-t --bpf-maps").unsupported.is_empty());
        assert!(ok("-t --bpf-map-id 7").unsupported.is_empty());
        assert!(ok("-tBQ --notes --tcpdiag-all").unsupported.is_empty());
    }

    #[test]
    fn help_and_version_exit_zero_on_stdout() {
        for line in ["-h", "--help", "-t -h", "-f help", "--he"] {
            let e = parse(line).expect_err(line);
            assert!(matches!(e, CliError::Help(_)), "{line}");
            assert!(e.to_stdout() && e.exit_code() == 0);
            assert!(e.rendered().starts_with("Usage: sockstat [ OPTIONS ]\n"));
        }
        for line in ["-V", "-v", "--version", "-tV"] {
            let e = parse(line).expect_err(line);
            assert_eq!(e.rendered(), format!("sockstat utility, sockstat-{}\n", env!("CARGO_PKG_VERSION")));
            assert!(e.to_stdout() && e.exit_code() == 0, "{line}");
        }
        assert!(matches!(parse("-V -h"), Err(CliError::Version(_))));
    }

    #[test]
    fn usage_errors_use_getopt_wording() {
        let cases: &[(&str, &str)] = &[
            ("-q", "sockstat: invalid option -- 'q'"),
            ("-tq", "sockstat: invalid option -- 'q'"),
            ("--bogus", "sockstat: unrecognized option '--bogus'"),
            ("-N", "sockstat: option requires an argument -- 'N'"),
            ("--net", "sockstat: option '--net' requires an argument"),
            ("--tcp=3", "sockstat: option '--tcp' doesn't allow an argument"),
            ("-f bogus", "sockstat: \"bogus\" is invalid family"),
            ("-A bogus", "sockstat: \"bogus\" is illegal socket table id"),
            ("-A tcp,nope", "sockstat: \"nope\" is illegal socket table id"),
            ("--source x", "sockstat: \"x\" is invalid source (expected agent, kernel or auto)"),
        ];
        for &(line, first) in cases {
            let e = parse(line).expect_err(line);
            let text = e.rendered();
            assert_eq!(text.lines().next(), Some(first), "{line}: {text}");
            assert!(text.contains("\nUsage: sockstat [ OPTIONS ]\n"), "{line}");
            assert!(!e.to_stdout() && e.exit_code() == 255, "{line}");
        }
    }

    #[test]
    fn filter_errors_pass_through() {
        let e = parse("-t state bogus").expect_err("bad state");
        assert_eq!(e.rendered(), "sockstat: wrong state name: bogus\n");
        assert_eq!(e.exit_code(), 255);
        let e = parse("-t state").expect_err("incomplete");
        assert_eq!(e.rendered(), "Command line is not complete. Try option \"help\"\n");
        // Expressions are filter.rs's grammar; a condition naming a family replaces the
        // family selection, after the defaults, as ss's parse_hostcond() does.
        assert!(ok("-t dport = :22").selection.filter.expr.is_some());
        let o = ok("-t src inet:127.0.0.1");
        assert_eq!((o.selection.families, o.selection.preferred_family), (1 << AF_INET, Some(AF_INET)));
        // `--` ends options; what follows is FILTER even if it looks like an option.
        assert!(matches!(parse("-t -- -n"), Err(CliError::Filter(_))));
    }

    #[test]
    fn empty_selection_is_reported_like_ss() {
        let e = parse("-A tcp,!tcp").expect_err("no tables");
        assert_eq!(e.rendered(), "sockstat: no socket tables to show with such filter.\n");
        assert_eq!(e.exit_code(), 0);
        assert!(!e.to_stdout());
    }

    #[test]
    fn non_utf8_filter_word_is_an_error() {
        use std::os::unix::ffi::OsStringExt;
        let args = vec![OsString::from("-t"), OsString::from("state"), OsString::from_vec(vec![0xff])];
        let e = parse_ss_args(args).expect_err("not utf-8");
        assert!(matches!(e, CliError::NotUtf8 { position: 2, .. }));
    }
}
