//! The ss FILTER language (`ss [OPTIONS] [FILTER]`): parsed from the words left after the
//! options, and evaluated on socket records.
//!
//! This folder owns, file by file:
//! - `mod.rs` (here): [`Filter`], the state masks, and the STATE-FILTER prefix: `state
//!   NAME` and `exclude NAME` (`excl NAME`) pairs turned into a state bitmask exactly as
//!   iproute2's ss.c `main()` and `scan_state()` do; [`parse_with`] reads those words and
//!   hands the rest to `parse`;
//! - `parse`: the expression grammar of iproute2's misc/ssfilter.y: a lexer that
//!   classifies each token as ss's `yylex()` does (including its sticky "last keyword"
//!   state, which decides whether a value is a host, a port, a device, a mark or a
//!   cgroup), and a recursive-descent parser for the same LALR grammar. Two consequences
//!   of that grammar are kept on purpose: `and` and `or` have *equal* precedence and group
//!   left to right (`a or b and c` is `(a or b) and c`), and juxtaposition is `and`;
//! - `cnum`: value parsing as ss.c's `parse_hostcond()`, `parse_devcond()`,
//!   `parse_markmask()` and `parse_cgroupcond()` do it, with iproute2's C number rules
//!   (`strtoul` base 0: `0x50` is 80, `010` is 8, `127.1` is 127.1.0.0);
//! - `eval`: evaluation. ss filters TCP sockets twice: the kernel runs the filter compiled
//!   to inet_diag bytecode (net/ipv4/inet_diag.c, `inet_diag_bc_run`), then ss runs
//!   `run_ssfilter()` on every reply. The two disagree on corner cases (address families,
//!   v4-mapped addresses, ports above 65535, `autobound`), and what ss prints is what both
//!   accept, so [`Filter::matches_subject`] evaluates both and requires both. A filter that
//!   does not compile to bytecode (anything with `dev`: ss.c cannot compile it) is
//!   evaluated in user space only, as ss does;
//! - `ast` (the tree), `subject` (what a filter sees of a socket), `error`;
//! - `resolver`: the [`Resolver`] trait, through which the parser asks for services,
//!   hosts, interfaces, cgroups and the port range. The filter does no I/O itself: the
//!   machine's answers are `names::lookup`'s ([`SystemResolver`]).
//!
//! May import `model` and `names`.
//!
//! Bit `n` of every state mask here is kernel TCP state `n` (include/net/tcp_states.h),
//! which is also ss's `SS_*` numbering. ss's masks stop at bit 11 (`SS_MAX` = 12): it never
//! asks for `TCP_NEW_SYN_RECV` (12) or `TCP_BOUND_INACTIVE` (13) by name; the kernel reports
//! request sockets as SYN-RECV anyway. See `query::state_mask` for what is sent to the
//! kernel.

mod ast;
mod cnum;
mod error;
mod eval;
mod parse;
mod required;
mod resolver;
mod subject;
#[cfg(test)]
mod tests;

pub use ast::{Expr, HostAddr, HostCond, Prefix};
pub use error::{FilterError, ValueError};
pub use parse::ParseContext;
pub use required::Required;
pub use resolver::Resolver;
pub use subject::{Endpoint, Subject};

// The system look-ups moved to names::lookup; their old paths stay valid for callers.
pub use crate::names::lookup::{SystemResolver, services_lookup};

use crate::model::abi::{AF_INET, AF_INET6, AF_NETLINK, AF_PACKET, AF_UNIX, AF_UNSPEC, AF_VSOCK, AF_XDP};
use crate::model::socket::InetSocket;
use sockstat_ebpf::TcpState;

/// Number of states ss knows (`SS_MAX`): bits 0 (`SS_UNKNOWN`) to 11 (`SS_CLOSING`).
pub const SS_MAX: u32 = 12;
/// ss's `SS_ALL`. Bit 0 (UNKNOWN) is included, as in ss.
pub const SS_ALL: u32 = (1 << SS_MAX) - 1;
/// ss's `SS_CONN`: the default for TCP when neither `-a`, `-l` nor a state filter is given.
pub const SS_CONN: u32 =
    SS_ALL & !(bit(TcpState::Listen) | bit(TcpState::Close) | bit(TcpState::TimeWait) | bit(TcpState::SynRecv));
/// What `-l` selects: listeners, and unconnected sockets (CLOSE) for the datagram tables.
pub const SS_LISTENING: u32 = bit(TcpState::Listen) | bit(TcpState::Close);
/// ss 7.1's `SS_BOUND_INACTIVE` (13, the kernel's `TCP_BOUND_INACTIVE`, a request-only
/// state): TCP sockets bound but neither listening nor connected, which the kernel dumps
/// (as CLOSE) only when this bit is asked for. `-B` selects it alone.
pub const SS_BOUND_INACTIVE: u32 = 1 << 13;
/// Bit 12 (`TCP_NEW_SYN_RECV`), part of ss 7.1's `SS_ALL`.
const SS_NEW_SYN_RECV: u32 = 1 << 12;

/// ss's `SS_ALL` of the version reproduced: ss 7.1's `SS_MAX` is 14, so its masks built
/// from `SS_ALL` (`-a`, `SS_CONN`, `all`, `connected`, `synchronized`, `big`, `exclude`)
/// also carry `TCP_NEW_SYN_RECV` and `SS_BOUND_INACTIVE`.
#[must_use]
pub const fn ss_all(v7: bool) -> u32 {
    if v7 { SS_ALL | SS_NEW_SYN_RECV | SS_BOUND_INACTIVE } else { SS_ALL }
}

/// ss's `SS_CONN` of the version reproduced ([`ss_all`]).
#[must_use]
pub const fn ss_conn(v7: bool) -> u32 {
    ss_all(v7) & !(bit(TcpState::Listen) | bit(TcpState::Close) | bit(TcpState::TimeWait) | bit(TcpState::SynRecv))
}

/// C's `strtoul(text, &end, 0)` over the whole text: `None` when anything follows the
/// number (or there is none), or it overflows.
#[must_use]
pub fn c_strtoul(text: &str) -> Option<u64> {
    let n = cnum::c_scan(text, 0);
    if n.consumed == 0 || n.consumed != text.len() {
        return None;
    }
    match cnum::c_strtoul(&n) {
        (_, true) => None,
        (v, false) => Some(v),
    }
}

/// The mask bit of one state.
#[must_use]
pub const fn bit(state: TcpState) -> u32 {
    1 << state as u32
}

/// The mask for one STATE-FILTER identifier, or `None` if ss would reject it.
///
/// Case-insensitive, as ss's `strcasecmp`. Besides the names in ss's usage text it
/// accepts what ss's table accepts: `close` and `unconnected` (for CLOSE), `syn-rcv`,
/// and `unknown` (bit 0). `listen` is *not* accepted (ss says "wrong state name").
#[must_use]
pub fn scan_state(name: &str) -> Option<u32> {
    scan_state_in(name, SS_ALL)
}

/// [`scan_state`] with the `SS_ALL` of the version reproduced ([`ss_all`]). ss 7.1's
/// `bound-inactive` is accepted whatever the version (`new-syn-recv` never is).
#[must_use]
pub fn scan_state_in(name: &str, all: u32) -> Option<u32> {
    // Special names first, in ss's order (it checks them before the table).
    let special: &[(&str, u32)] = &[
        ("close", bit(TcpState::Close)),
        ("closed", bit(TcpState::Close)),
        ("syn-rcv", bit(TcpState::SynRecv)),
        ("established", bit(TcpState::Established)),
        ("all", all),
        ("connected", all & !(bit(TcpState::Close) | bit(TcpState::Listen))),
        ("synchronized", all & !(bit(TcpState::Close) | bit(TcpState::Listen) | bit(TcpState::SynSent))),
        ("bucket", bit(TcpState::SynRecv) | bit(TcpState::TimeWait)),
        ("big", all & !(bit(TcpState::SynRecv) | bit(TcpState::TimeWait))),
        ("bound-inactive", SS_BOUND_INACTIVE),
    ];
    // ss.c `sstate_namel[]`, indexed by state number.
    const TABLE: [&str; SS_MAX as usize] = [
        "UNKNOWN",
        "established",
        "syn-sent",
        "syn-recv",
        "fin-wait-1",
        "fin-wait-2",
        "time-wait",
        "unconnected",
        "close-wait",
        "last-ack",
        "listening",
        "closing",
    ];
    special
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|&(_, mask)| mask)
        .or_else(|| TABLE.iter().position(|n| n.eq_ignore_ascii_case(name)).map(|i| 1 << i))
}

/// Deepest nesting of `(`/`not` and of alternating `and`/`or` chains accepted. bison's
/// parser stack stops ss at 10000 states ("memory exhausted", exit 255); a tree that deep
/// would overflow our recursive evaluator, so sockstat stops earlier, with the same status.
pub const MAX_DEPTH: usize = 200;

/// A parsed FILTER.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Filter {
    /// ss's `state_filter` after the STATE-FILTER words, before defaults are applied:
    /// 0 means "no explicit states" (ss then falls back to the tables' defaults).
    pub state_filter: u32,
    /// Whether any `state`/`exclude` word was seen.
    pub saw_states: bool,
    /// The expression after the STATE-FILTER words (ss's `ssfilter`); `None` when there is
    /// none, which matches every socket.
    pub expr: Option<Expr>,
    /// ss's side effect of parsing a host condition: when a condition names a family
    /// (`inet:`, `inet6:`, `unix:`, `link:`, `netlink:`, `vsock:`) or ss has a preferred
    /// family (the last of `-4`/`-6`/`-x`/`-0`/`-f`...), `parse_hostcond()` *replaces* the
    /// selected families with that one (ss.c: `f->families = 0; filter_af_set(f, fam)`).
    /// The last such condition wins. The caller applies it to the family selection:
    /// `ss -t src inet:127.0.0.1` shows no AF_INET6 socket, v4-mapped or not.
    pub family_override: Option<u16>,
}

impl Filter {
    /// Whether the expression accepts an internet socket (state filtering is
    /// `query::select`'s job). No expression accepts everything.
    #[must_use]
    pub fn matches(&self, sock: &InetSocket) -> bool {
        // No expression: every socket, without building what an expression would see
        // (a query keeps 100k rows and more through here).
        self.expr.is_none() || self.matches_subject(&Subject::from(sock))
    }

    /// Whether a `fwmark` or `cgroup` condition is in the expression (see
    /// [`Expr::needs_diag_attrs`]).
    #[must_use]
    pub fn needs_diag_attrs(&self) -> bool {
        self.expr.as_ref().is_some_and(Expr::needs_diag_attrs)
    }

    /// Whether the expression accepts a socket seen through a [`Subject`] (any family).
    ///
    /// For AF_INET/AF_INET6 this is ss's result: the kernel's bytecode verdict AND
    /// `run_ssfilter()`'s, unless the expression cannot be compiled to bytecode (`dev`
    /// anywhere in it), in which case ss sends none and only user space decides. Other
    /// families (unix, packet, netlink, vsock) are filtered in user space only, as ss does.
    #[must_use]
    pub fn matches_subject(&self, s: &Subject<'_>) -> bool {
        let Some(expr) = &self.expr else {
            return true;
        };
        let user = expr.eval_user(s);
        if (s.family == AF_INET || s.family == AF_INET6) && expr.compiles_to_bytecode() {
            user && expr.eval_kernel(s)
        } else {
            user
        }
    }
}

/// Parses the FILTER words as `ss -t` would ([`ParseContext::tcp`]). `initial` is ss's
/// `state_filter` as `-a`/`-l` left it (0 if neither was given).
///
/// # Errors
/// As [`parse_with`].
pub fn parse<S: AsRef<str>>(words: &[S], initial: u32) -> Result<Filter, FilterError> {
    parse_with(words, initial, &ParseContext::tcp())
}

/// Parses the FILTER words.
///
/// STATE-FILTER, ss semantics kept exactly: the first `state` word discards `initial` and
/// starts from nothing, the first `exclude` word starts from `SS_ALL`; later words OR in
/// (`state`) or mask out (`exclude`). Keywords are case-sensitive, state names are not.
/// The expression starts at the first word that is neither keyword.
///
/// # Errors
/// [`FilterError`] for an unknown state name, a keyword at the end, an expression token
/// ss's grammar rejects, or a value ss's lexer cannot parse.
pub fn parse_with<S: AsRef<str>>(words: &[S], initial: u32, ctx: &ParseContext<'_>) -> Result<Filter, FilterError> {
    let mut filter = Filter { state_filter: initial, ..Filter::default() };
    let mut i = 0;
    while let Some(word) = words.get(i) {
        let word = word.as_ref();
        let include = match word {
            "state" => true,
            "exclude" | "excl" => false,
            _ => break,
        };
        let Some(name) = words.get(i + 1) else {
            return Err(FilterError::MissingStateName { keyword: word.to_owned(), position: i + 1 });
        };
        let name = name.as_ref();
        let mask = scan_state_in(name, ctx.ss_all)
            .ok_or_else(|| FilterError::WrongStateName { name: name.to_owned(), position: i + 2 })?;
        if !filter.saw_states {
            filter.state_filter = if include { 0 } else { ctx.ss_all };
        }
        if include {
            filter.state_filter |= mask;
        } else {
            filter.state_filter &= !mask;
        }
        filter.saw_states = true;
        i += 2;
    }
    // Columns count from the start of the whole FILTER text, state words included.
    let offset: usize = words[..i].iter().map(|w| w.as_ref().chars().count() + 1).sum();
    (filter.expr, filter.family_override) = parse::expression(&words[i..], offset, ctx)?;
    Ok(filter)
}
