//! The expression after the STATE-FILTER words: a lexer that splits and classifies tokens
//! as ss's `get_token_from_line()` and `yylex()` do, and a recursive-descent parser for
//! iproute2's misc/ssfilter.y. Value tokens are parsed by `cnum`; names are looked up
//! through the context's [`Resolver`].

use sockstat_ebpf::{AF_INET, AF_INET6};

use super::ast::{Expr, HostAddr, HostCond, Prefix};
use super::cnum::{
    c_scan, c_strtoul, data_prefix, find_port, get_integer, get_prefix_1, get_unsigned, ll_name_to_index,
    parse_devcond, parse_markmask, parse_vsock_hostcond,
};
use super::error::{FilterError, ValueError};
use super::resolver::Resolver;
use super::{AF_NETLINK, AF_PACKET, AF_UNIX, AF_UNSPEC, AF_VSOCK, MAX_DEPTH};
use crate::names::lookup::SystemResolver;

/// What ss knows when it parses the filter, besides the words.
#[derive(Clone, Copy)]
pub struct ParseContext<'r> {
    /// ss's `preferred_family`: the family of the last `-4`, `-6`, `-0`, `-x`, `--vsock`,
    /// `--tipc`, `--xdp` or `-f` option, AF_UNSPEC (0) if none. It decides how addresses
    /// parse (with -6, `1.2.3.4` is a host name to resolve) and sets
    /// [`Filter::family_override`](super::Filter::family_override).
    pub preferred_family: u16,
    /// Whether the TCP table is selected: service names are looked up for "tcp".
    pub tcp: bool,
    /// Whether the UDP table is selected: service names are looked up for "udp" (a name
    /// whose tcp and udp ports differ is then ambiguous, as in ss).
    pub udp: bool,
    pub resolver: &'r dyn Resolver,
    /// ss's `SS_ALL` for the STATE-FILTER words ([`super::ss_all`] of the version
    /// reproduced).
    pub ss_all: u32,
}

impl std::fmt::Debug for ParseContext<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParseContext")
            .field("preferred_family", &self.preferred_family)
            .field("tcp", &self.tcp)
            .field("udp", &self.udp)
            .finish_non_exhaustive()
    }
}

impl ParseContext<'static> {
    /// `ss -t` with no family option, resolving on this machine.
    #[must_use]
    pub fn tcp() -> Self {
        ParseContext {
            preferred_family: AF_UNSPEC,
            tcp: true,
            udp: false,
            resolver: &SystemResolver,
            ss_all: super::SS_ALL,
        }
    }
}

/// Parses the expression words (those after the STATE-FILTER), the first of them `offset`
/// characters into the FILTER text: the expression (`None` when there is none) and ss's
/// family override (see [`Filter::family_override`](super::Filter::family_override)).
pub(super) fn expression<S: AsRef<str>>(
    words: &[S],
    offset: usize,
    ctx: &ParseContext<'_>,
) -> Result<(Option<Expr>, Option<u16>), FilterError> {
    let mut parser = Parser::new(split_tokens(words, offset), ctx);
    let expr = parser.parse_applet()?;
    Ok((expr, parser.family_override))
}

// ---------------------------------------------------------------------------------------
// Lexer

/// One whitespace-separated token of the FILTER, before classification.
#[derive(Clone, Debug, PartialEq, Eq)]
struct RawToken {
    text: String,
    column: usize,
}

/// Splits the words as ss's `get_token_from_line()` splits each argv word: on spaces and
/// tabs, a backslash escaping the next character (the backslash itself is dropped), empty
/// words skipped. `offset` is the number of characters before the first word.
fn split_tokens<S: AsRef<str>>(words: &[S], offset: usize) -> Vec<RawToken> {
    let mut out = Vec::new();
    let mut column = offset + 1;
    for word in words {
        let chars: Vec<char> = word.as_ref().chars().collect();
        let mut i = 0;
        loop {
            while matches!(chars.get(i), Some(' ' | '\t')) {
                i += 1;
            }
            if i >= chars.len() {
                break;
            }
            let start = i;
            let mut text = String::new();
            while let Some(&c) = chars.get(i) {
                if c == ' ' || c == '\t' {
                    break;
                }
                if c == '\\' {
                    i += 1;
                    match chars.get(i) {
                        Some(&escaped) => text.push(escaped),
                        None => break,
                    }
                } else {
                    text.push(c);
                }
                i += 1;
            }
            out.push(RawToken { text, column: column + start });
        }
        column += chars.len() + 1;
    }
    out
}

/// The keyword that decides how the next value token is parsed (ss's `tok_type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Keyword {
    Dst,
    Src,
    Dport,
    Sport,
    Dev,
    Fwmark,
    Cgroup,
    Autobound,
}

/// A classified token (ss's `yylex()` return values).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Tok {
    Not,
    And,
    Or,
    LParen,
    RParen,
    Kw(Keyword),
    Geq,
    Leq,
    Neq,
    Eq,
    Gt,
    Lt,
    Host(HostCond),
    DevCond(u32),
    MarkMask(u32, u32),
    CgroupCond(String, u64),
    End,
}

impl Tok {
    /// Tokens that start an `expr` (so juxtaposition means `and`).
    fn starts_expr(&self) -> bool {
        matches!(self, Tok::LParen | Tok::Not | Tok::Kw(_))
    }
}

/// A classified token with where it came from.
#[derive(Clone, Debug)]
struct Lexed {
    tok: Tok,
    text: Option<String>,
    column: usize,
}

struct Parser<'c, 'r> {
    raw: std::vec::IntoIter<RawToken>,
    peeked: Option<Lexed>,
    /// ss's `tok_type`: the last keyword lexed, never reset.
    last_keyword: Option<Keyword>,
    ctx: &'c ParseContext<'r>,
    family_override: Option<u16>,
    end_column: usize,
    nesting: usize,
}

impl<'c, 'r> Parser<'c, 'r> {
    fn new(raw: Vec<RawToken>, ctx: &'c ParseContext<'r>) -> Self {
        let end_column = raw.last().map_or(1, |t| t.column + t.text.chars().count());
        Parser {
            raw: raw.into_iter(),
            peeked: None,
            last_keyword: None,
            ctx,
            family_override: None,
            end_column,
            nesting: 0,
        }
    }

    /// The next token, classified now: like bison, a token is lexed (and a bad value
    /// reported) only when the parser needs it, so an earlier syntax error wins.
    fn peek(&mut self) -> Result<&Lexed, FilterError> {
        let lexed = match self.peeked.take() {
            Some(l) => l,
            None => match self.raw.next() {
                None => Lexed { tok: Tok::End, text: None, column: self.end_column },
                Some(raw) => Lexed { tok: self.classify(&raw)?, text: Some(raw.text), column: raw.column },
            },
        };
        Ok(self.peeked.insert(lexed))
    }

    fn next(&mut self) -> Result<Lexed, FilterError> {
        self.peek()?;
        Ok(self.peeked.take().unwrap_or(Lexed { tok: Tok::End, text: None, column: self.end_column }))
    }

    /// ss's `yylex()` for one token.
    fn classify(&mut self, raw: &RawToken) -> Result<Tok, FilterError> {
        let kw = |p: &mut Self, k: Keyword| {
            p.last_keyword = Some(k);
            Tok::Kw(k)
        };
        Ok(match raw.text.as_str() {
            "!" | "not" => Tok::Not,
            "&" | "&&" | "and" => Tok::And,
            "|" | "||" | "or" => Tok::Or,
            "(" => Tok::LParen,
            ")" => Tok::RParen,
            "dst" => kw(self, Keyword::Dst),
            "src" => kw(self, Keyword::Src),
            "dport" => kw(self, Keyword::Dport),
            "sport" => kw(self, Keyword::Sport),
            "dev" => kw(self, Keyword::Dev),
            "fwmark" => kw(self, Keyword::Fwmark),
            "cgroup" => kw(self, Keyword::Cgroup),
            ">=" | "ge" | "geq" => Tok::Geq,
            "<=" | "le" | "leq" => Tok::Leq,
            "!=" | "ne" | "neq" => Tok::Neq,
            "=" | "==" | "eq" => Tok::Eq,
            ">" | "gt" => Tok::Gt,
            "<" | "lt" => Tok::Lt,
            "autobound" => kw(self, Keyword::Autobound),
            text => {
                let value = match self.last_keyword {
                    Some(Keyword::Dev) => parse_devcond(text, self.ctx.resolver).map(Tok::DevCond),
                    Some(Keyword::Fwmark) => parse_markmask(text).map(|(m, k)| Tok::MarkMask(m, k)),
                    Some(Keyword::Cgroup) => self
                        .ctx
                        .resolver
                        .cgroup_id(text)
                        .filter(|&id| id != 0)
                        .map(|id| Tok::CgroupCond(text.to_owned(), id))
                        .ok_or_else(|| ValueError::Cgroup(text.to_owned())),
                    k => {
                        let is_port = matches!(k, Some(Keyword::Sport | Keyword::Dport));
                        self.parse_hostcond(text, is_port).map(Tok::Host)
                    }
                };
                value.map_err(|kind| FilterError::Value { column: raw.column, token: raw.text.clone(), kind })?
            }
        })
    }

    /// ss.c `parse_hostcond()`.
    fn parse_hostcond(&mut self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let mut fam = self.ctx.preferred_family;
        let mut addr = text;
        for (prefix, f) in [
            ("unix:", AF_UNIX),
            ("link:", AF_PACKET),
            ("netlink:", AF_NETLINK),
            ("vsock:", AF_VSOCK),
            ("inet:", AF_INET),
            ("inet6:", AF_INET6),
        ] {
            if let Some(rest) = addr.strip_prefix(prefix) {
                fam = f;
                addr = rest;
                break;
            }
        }
        let cond = match fam {
            AF_UNIX => HostCond { port: -1, addr: HostAddr::Unix(addr.to_owned()) },
            AF_PACKET => self.parse_link_hostcond(addr, is_port)?,
            AF_NETLINK => self.parse_netlink_hostcond(addr, is_port)?,
            AF_VSOCK => parse_vsock_hostcond(addr, is_port)?,
            _ => self.parse_inet_hostcond(addr, is_port, fam)?,
        };
        if fam != AF_UNSPEC {
            self.family_override = Some(fam);
        }
        Ok(cond)
    }

    /// The AF_PACKET part of `parse_hostcond()`: `[PROTOCOL][:INTERFACE]`. The protocol is
    /// a name of iproute2's `ll_proto` table (any case) or a 16-bit number, `*` or nothing
    /// for any; the "port" is a number, an interface name (`ifN` too), `*` or nothing.
    /// ss compares the protocol with the socket's and the port with its interface index.
    fn parse_link_hostcond(&self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let (addr, port) = find_port(text, is_port);
        let mut cond = HostCond { port: -1, addr: HostAddr::Other(Prefix { family: AF_PACKET, ..Prefix::ANY }) };
        if let Some(port) = port.filter(|p| !p.is_empty() && *p != "*") {
            cond.port = match get_integer(port) {
                Some(n) => n,
                None => ll_name_to_index(port, self.ctx.resolver)
                    .and_then(|i| i32::try_from(i).ok())
                    .filter(|&i| i > 0)
                    .ok_or_else(|| ValueError::LinkPort(port.to_owned()))?,
            };
        }
        if !is_port && !addr.is_empty() && addr != "*" {
            let proto = crate::names::system::ll_proto_id(addr)
                .or_else(|| get_unsigned(addr).and_then(|n| u16::try_from(n).ok()))
                .ok_or_else(|| ValueError::LinkProtocol(addr.to_owned()))?;
            cond.addr = HostAddr::Other(data_prefix(AF_PACKET, u32::from(proto), 32));
        }
        Ok(cond)
    }

    /// The AF_NETLINK part of `parse_hostcond()`: `[PROTOCOL][:PORTID]`. The protocol is a
    /// name of iproute2's netlink table (`nl_protos`, case-sensitive) or a number up to
    /// 255, `*` or nothing for any; the port id a number, `kernel` (0), `*` or nothing.
    fn parse_netlink_hostcond(&self, text: &str, is_port: bool) -> Result<HostCond, ValueError> {
        let (addr, port) = find_port(text, is_port);
        let mut cond = HostCond { port: -1, addr: HostAddr::Other(Prefix { family: AF_NETLINK, ..Prefix::ANY }) };
        if let Some(port) = port.filter(|p| !p.is_empty() && *p != "*") {
            cond.port = match (get_integer(port), port) {
                (Some(n), _) => n,
                (None, "kernel") => 0,
                (None, _) => return Err(ValueError::NetlinkPort(port.to_owned())),
            };
        }
        if !is_port && !addr.is_empty() && addr != "*" {
            let proto = self
                .ctx
                .resolver
                .netlink_protocol(addr)
                .or_else(|| {
                    // nl_proto_a2n(): strtoul(arg, &end, 0), whole string, at most 255.
                    let n = c_scan(addr, 0);
                    let (v, _) = c_strtoul(&n);
                    (n.consumed != 0 && n.consumed == addr.len()).then_some(v).and_then(|v| u8::try_from(v).ok())
                })
                .ok_or_else(|| ValueError::NetlinkProtocol(addr.to_owned()))?;
            cond.addr = HostAddr::Other(data_prefix(AF_NETLINK, u32::from(proto), 32));
        }
        Ok(cond)
    }

    /// The inet part of `parse_hostcond()`: `[ADDR]:PORT`, `*:PORT`, `ADDR[/PLEN][:PORT]`,
    /// or for `sport`/`dport` the whole token as a port.
    fn parse_inet_hostcond(&self, text: &str, is_port: bool, fam: u16) -> Result<HostCond, ValueError> {
        let (addr, port) = if let Some(rest) = text.strip_prefix('[') {
            let close = rest.find(']').ok_or(ValueError::UnclosedBracket)?;
            let inside = &rest[..close];
            (inside, Some(if is_port { inside } else { &rest[close + 1..] }))
        } else if is_port {
            (text, Some(text))
        } else if let Some(after_star) = text.strip_prefix('*') {
            (text, Some(after_star))
        } else {
            // The port is after the last ':' that follows the first '/' (if any), so
            // `fe80::/64` has none and `10.0.0.0/8:22` has one.
            let from = text.find('/').unwrap_or(0);
            match text[from..].rfind(':') {
                Some(i) => (&text[..from + i], Some(&text[from + i..])),
                None => (text, None),
            }
        };

        let mut cond_port = -1;
        if let Some(p) = port {
            let p = p.strip_prefix(':').unwrap_or(p);
            if !p.is_empty() && !p.starts_with('*') {
                cond_port = match get_integer(p) {
                    Some(n) => n,
                    None => self.service_port(p)?,
                };
            }
        }

        let mut first = Prefix::ANY;
        let mut more = Vec::new();
        if !is_port && !addr.is_empty() && !addr.starts_with('*') {
            if let Some(p) = get_prefix_1(addr, fam) {
                first = p;
            } else {
                let r = self.ctx.resolver;
                let mut found = r.host_addrs(addr, if fam == AF_UNSPEC { AF_INET } else { fam });
                if fam == AF_UNSPEC {
                    found.extend(r.host_addrs(addr, AF_INET6));
                }
                let mut found = found.into_iter().map(Prefix::host);
                first = found.next().ok_or_else(|| ValueError::NotAPrefix(addr.to_owned()))?;
                more = found.collect();
            }
        }
        Ok(HostCond { port: cond_port, addr: HostAddr::Inet { first, more } })
    }

    /// A service name: udp's port if the UDP table is selected, else tcp's; ambiguous if
    /// both are selected and differ (ss.c).
    fn service_port(&self, name: &str) -> Result<i32, ValueError> {
        let r = self.ctx.resolver;
        let udp = if self.ctx.udp { r.service_port(name, "udp") } else { None };
        let tcp = if self.ctx.tcp { r.service_port(name, "tcp") } else { None };
        if let (Some(u), Some(t)) = (udp, tcp)
            && u != t
        {
            return Err(ValueError::AmbiguousPort(name.to_owned()));
        }
        udp.or(tcp).map(i32::from).ok_or_else(|| ValueError::NotAPort(name.to_owned()))
    }

    // -----------------------------------------------------------------------------------
    // Parser: ssfilter.y
    //
    //   applet:   exprlist | /* empty */
    //   exprlist: expr | exprlist '|' expr | exprlist '&' expr | exprlist expr
    //   expr:     '(' exprlist ')' | '!' expr | DCOND eq HOSTCOND | SCOND eq HOSTCOND
    //           | DPORT (GEQ|LEQ|'>'|'<'|eq|NEQ) HOSTCOND | SPORT (...) HOSTCOND
    //           | DEVNAME (eq|NEQ) DEVCOND | FWMARK (eq|NEQ) MARKMASK
    //           | CGROUPPATH (eq|NEQ) CGROUPCOND | AUTOBOUND
    //   eq:       '=' | /* empty */
    fn parse_applet(&mut self) -> Result<Option<Expr>, FilterError> {
        if self.peek()?.tok == Tok::End {
            return Ok(None);
        }
        let (expr, _) = self.exprlist()?;
        let next = self.next()?;
        match next.tok {
            Tok::End => Ok(Some(expr)),
            _ => Err(syntax(&next, "'and', 'or', another condition, or the end of the filter")),
        }
    }

    /// Returns the expression and its tree depth.
    fn exprlist(&mut self) -> Result<(Expr, usize), FilterError> {
        let (mut acc, mut depth) = self.expr()?;
        loop {
            let is_or = match &self.peek()?.tok {
                Tok::Or => {
                    self.next()?;
                    true
                }
                Tok::And => {
                    self.next()?;
                    false
                }
                t if t.starts_expr() => false,
                _ => return Ok((acc, depth)),
            };
            let column = self.peek()?.column;
            let (rhs, rdepth) = self.expr()?;
            (acc, depth) = join(acc, depth, rhs, rdepth, is_or);
            if depth > MAX_DEPTH {
                return Err(FilterError::TooDeep { column, token: String::new() });
            }
        }
    }

    fn expr(&mut self) -> Result<(Expr, usize), FilterError> {
        let t = self.next()?;
        match t.tok {
            Tok::LParen => self.nested(&t, Self::paren_rest),
            Tok::Not => {
                let (e, d) = self.nested(&t, Self::expr)?;
                Ok((Expr::Not(Box::new(e)), d + 1))
            }
            Tok::Kw(k) => self.condition(k),
            _ => Err(syntax(&t, "a condition: src, dst, sport, dport, dev, fwmark, cgroup, autobound, 'not' or '('")),
        }
    }

    /// After `(`: `exprlist ')'`.
    fn paren_rest(&mut self) -> Result<(Expr, usize), FilterError> {
        let (e, d) = self.exprlist()?;
        let close = self.next()?;
        if close.tok == Tok::RParen { Ok((e, d)) } else { Err(syntax(&close, "')', 'and', 'or' or another condition")) }
    }

    /// A condition after its keyword. Kept out of [`Parser::expr`] (never inlined) so the
    /// frames of the `(`/`not` recursion stay small.
    #[inline(never)]
    fn condition(&mut self, k: Keyword) -> Result<(Expr, usize), FilterError> {
        match k {
            Keyword::Src | Keyword::Dst => {
                if self.peek()?.tok == Tok::Eq {
                    self.next()?;
                }
                let v = self.next()?;
                let Tok::Host(cond) = v.tok else {
                    return Err(syntax(&v, "an address, [ADDRESS]:PORT or *:PORT ('=' optional)"));
                };
                Ok((if k == Keyword::Src { Expr::Src(cond) } else { Expr::Dst(cond) }, 1))
            }
            Keyword::Sport | Keyword::Dport => {
                let op = match self.peek()?.tok {
                    ref op @ (Tok::Geq | Tok::Leq | Tok::Gt | Tok::Lt | Tok::Eq | Tok::Neq) => {
                        let op = op.clone();
                        self.next()?;
                        op
                    }
                    _ => Tok::Eq,
                };
                let v = self.next()?;
                let Tok::Host(cond) = v.tok else {
                    return Err(syntax(&v, "a port, or one of = != < > <= >= followed by a port"));
                };
                let src = k == Keyword::Sport;
                let p = cond.port;
                let ge = if src { Expr::SportGe } else { Expr::DportGe };
                let le = if src { Expr::SportLe } else { Expr::DportLe };
                let eq = || {
                    if src { Expr::Src(cond.clone()) } else { Expr::Dst(cond.clone()) }
                };
                Ok(match op {
                    Tok::Geq => (ge(p), 1),
                    Tok::Leq => (le(p), 1),
                    Tok::Gt => (Expr::Not(Box::new(le(p))), 2),
                    Tok::Lt => (Expr::Not(Box::new(ge(p))), 2),
                    Tok::Neq => (Expr::Not(Box::new(eq())), 2),
                    _ => (eq(), 1),
                })
            }
            Keyword::Dev | Keyword::Fwmark | Keyword::Cgroup => {
                let negate = match self.peek()?.tok {
                    Tok::Eq => {
                        self.next()?;
                        false
                    }
                    Tok::Neq => {
                        self.next()?;
                        true
                    }
                    _ => false,
                };
                let v = self.next()?;
                let e = match (k, v.tok) {
                    (Keyword::Dev, Tok::DevCond(i)) => Expr::Dev(i),
                    (Keyword::Fwmark, Tok::MarkMask(mark, mask)) => Expr::Mark { mark, mask },
                    (Keyword::Cgroup, Tok::CgroupCond(path, id)) => Expr::Cgroup { path, id },
                    (k, tok) => {
                        let what = match k {
                            Keyword::Dev => "a device name or index ('=' or '!=' optional)",
                            Keyword::Fwmark => "MARK or MARK/MASK ('=' or '!=' optional)",
                            _ => "a cgroup path ('=' or '!=' optional)",
                        };
                        return Err(syntax(&Lexed { tok, ..v }, what));
                    }
                };
                Ok(if negate { (Expr::Not(Box::new(e)), 2) } else { (e, 1) })
            }
            Keyword::Autobound => {
                let (low, high) = self.ctx.resolver.ephemeral_ports().unwrap_or((1024, 4999));
                Ok((Expr::Autobound { low, high }, 1))
            }
        }
    }

    /// Runs `f` one nesting level deeper, refusing to go past [`MAX_DEPTH`] (the parser
    /// recurses on `(` and `not`).
    fn nested(
        &mut self,
        at: &Lexed,
        f: fn(&mut Self) -> Result<(Expr, usize), FilterError>,
    ) -> Result<(Expr, usize), FilterError> {
        if self.nesting >= MAX_DEPTH {
            return Err(FilterError::TooDeep { column: at.column, token: at.text.clone().unwrap_or_default() });
        }
        self.nesting += 1;
        let r = f(self);
        self.nesting -= 1;
        r
    }
}

/// `acc OP rhs`, flattening a chain of the same operator.
fn join(acc: Expr, adepth: usize, rhs: Expr, rdepth: usize, is_or: bool) -> (Expr, usize) {
    match (acc, is_or) {
        (Expr::Or(mut v), true) => {
            v.push(rhs);
            (Expr::Or(v), adepth.max(rdepth + 1))
        }
        (Expr::And(mut v), false) => {
            v.push(rhs);
            (Expr::And(v), adepth.max(rdepth + 1))
        }
        (acc, true) => (Expr::Or(vec![acc, rhs]), adepth.max(rdepth) + 1),
        (acc, false) => (Expr::And(vec![acc, rhs]), adepth.max(rdepth) + 1),
    }
}

fn syntax(at: &Lexed, expected: &'static str) -> FilterError {
    FilterError::Syntax { column: at.column, token: at.text.clone(), expected }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;
    use crate::filter::tests::{ctx, port_cond, words};
    use crate::filter::{Filter, parse_with};

    fn expr(text: &str) -> Expr {
        match parse_with(&words(text), 0, &ctx()) {
            Ok(Filter { expr: Some(e), .. }) => e,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    fn pfx(text: &str, bitlen: u8) -> Prefix {
        let ip: IpAddr = text.parse().expect("literal");
        Prefix { bitlen, ..Prefix::host(ip) }
    }

    fn addr_cond(port: i32, first: Prefix) -> HostCond {
        HostCond { port, addr: HostAddr::Inet { first, more: vec![] } }
    }

    // ---- grammar -----------------------------------------------------------------------

    #[test]
    fn expressions_parse_to_ss_trees() {
        let d80 = || Expr::Dst(port_cond(80));
        let s = |p| Expr::Src(port_cond(p));
        let not = |e| Expr::Not(Box::new(e));
        let cases: Vec<(&str, Expr)> = vec![
            // `=` is optional; `eq` and `==` are `=`; a bare number is a port after dport.
            ("dport = :80", d80()),
            ("dport :80", d80()),
            ("dport eq 80", d80()),
            ("dport == 80", d80()),
            ("dport 80", d80()),
            ("dport = :http", d80()),
            ("dport = 0x50", d80()),
            ("dport = :+80", d80()),
            // `*` (or nothing after ':') is any port.
            ("dport = *", Expr::Dst(port_cond(-1))),
            ("dport = :", Expr::Dst(port_cond(-1))),
            ("sport != :22", not(s(22))),
            ("sport ne 22", not(s(22))),
            ("sport neq ssh", not(s(22))),
            ("sport > :1024", not(Expr::SportLe(1024))),
            ("sport gt 1024", not(Expr::SportLe(1024))),
            ("sport < 1024", not(Expr::SportGe(1024))),
            ("dport >= :1024", Expr::DportGe(1024)),
            ("dport geq 1024", Expr::DportGe(1024)),
            ("dport <= 1024", Expr::DportLe(1024)),
            ("dport le 1024", Expr::DportLe(1024)),
            ("dst 10.0.0.0/8", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("dst = 10.0.0.0/255.0.0.0", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("dst 10/0x8", Expr::Dst(addr_cond(-1, pfx("10.0.0.0", 8)))),
            ("src 127.1", Expr::Src(addr_cond(-1, pfx("127.1.0.0", 32)))),
            ("src 0x7f.1", Expr::Src(addr_cond(-1, pfx("127.1.0.0", 32)))),
            ("src 127.0.0.1:8080", Expr::Src(addr_cond(8080, pfx("127.0.0.1", 32)))),
            ("src 10.0.0.0/8:22", Expr::Src(addr_cond(22, pfx("10.0.0.0", 8)))),
            ("dst [::1]", Expr::Dst(addr_cond(-1, pfx("::1", 128)))),
            ("dst [::1]:443", Expr::Dst(addr_cond(443, pfx("::1", 128)))),
            ("dst [::1/128]", Expr::Dst(addr_cond(-1, pfx("::1", 128)))),
            ("dst fe80::/64", Expr::Dst(addr_cond(-1, pfx("fe80::", 64)))),
            ("dst [127.0.0.1]:22", Expr::Dst(addr_cond(22, pfx("127.0.0.1", 32)))),
            ("src *:80", s(80)),
            ("src *", s(-1)),
            ("src :ssh", s(22)),
            ("src 127.0.0.1:*", Expr::Src(addr_cond(-1, pfx("127.0.0.1", 32)))),
            ("src any", Expr::Src(addr_cond(-1, Prefix::ANY))),
            (
                "dst localhost",
                Expr::Dst(HostCond {
                    port: -1,
                    addr: HostAddr::Inet { first: pfx("127.0.0.1", 32), more: vec![pfx("::1", 128)] },
                }),
            ),
            // Juxtaposition is `and`; `and` and `or` have equal precedence, left to right.
            ("sport = :1 sport = :2", Expr::And(vec![s(1), s(2)])),
            ("sport = :1 or sport = :2 and sport = :3", Expr::And(vec![Expr::Or(vec![s(1), s(2)]), s(3)])),
            ("sport = :1 && sport = :2 || sport = :3", Expr::Or(vec![Expr::And(vec![s(1), s(2)]), s(3)])),
            ("sport = :1 | sport = :2 | sport = :3", Expr::Or(vec![s(1), s(2), s(3)])),
            ("sport = :1 or ( sport = :2 & sport = :3 )", Expr::Or(vec![s(1), Expr::And(vec![s(2), s(3)])])),
            // `not` binds to one expr.
            ("not sport = :1 sport = :2", Expr::And(vec![not(s(1)), s(2)])),
            ("! ( sport = :1 or sport = :2 )", not(Expr::Or(vec![s(1), s(2)]))),
            ("not not sport = :1", not(not(s(1)))),
            ("dev = lo", Expr::Dev(1)),
            ("dev eth0", Expr::Dev(2)),
            ("dev != eth0", not(Expr::Dev(2))),
            ("dev if7", Expr::Dev(7)),
            ("dev 0x10", Expr::Dev(16)),
            ("dev 0", Expr::Dev(0)),
            ("fwmark = 0x10/0xff", Expr::Mark { mark: 16, mask: 255 }),
            ("fwmark 5", Expr::Mark { mark: 5, mask: u32::MAX }),
            ("fwmark 5abc", Expr::Mark { mark: 5, mask: u32::MAX }),
            ("fwmark 0/0/0", Expr::Mark { mark: 0, mask: 0 }),
            ("fwmark != 010", not(Expr::Mark { mark: 8, mask: u32::MAX })),
            ("fwmark -1", Expr::Mark { mark: u32::MAX, mask: u32::MAX }),
            ("cgroup = /system.slice", Expr::Cgroup { path: "/system.slice".into(), id: 42 }),
            ("cgroup != system.slice", not(Expr::Cgroup { path: "system.slice".into(), id: 42 })),
            ("autobound", Expr::Autobound { low: 32768, high: 60999 }),
        ];
        for (text, want) in cases {
            assert_eq!(expr(text), want, "{text:?}");
        }
    }

    #[test]
    fn words_are_split_and_unescaped_as_ss_does() {
        // One word holding the whole expression, as `ss 'dport = :80'` passes it.
        let f = parse_with(&["dport = :80 or", "sport\t:22"], 0, &ctx()).expect("valid");
        assert_eq!(f.expr, Some(Expr::Or(vec![Expr::Dst(port_cond(80)), Expr::Src(port_cond(22))])));
        // A backslash escapes a space: one token, which is then not a keyword.
        let e = parse_with(&["dport\\ =\\ :22"], 0, &ctx()).expect_err("one token");
        assert_eq!(
            e,
            FilterError::Value {
                column: 1,
                token: "dport = :22".into(),
                kind: ValueError::NotAPrefix("dport = ".into())
            }
        );
        // Empty words are skipped.
        assert_eq!(
            parse_with(&["", "sport", "", "22"], 0, &ctx()).expect("valid").expr,
            Some(Expr::Src(port_cond(22)))
        );
        assert_eq!(split_tokens(&["a\\"], 0), vec![RawToken { text: "a".into(), column: 1 }]);
    }

    #[test]
    fn family_prefixes_and_preferred_family() {
        let f = parse_with(&["src", "unix:/tmp/.X11-unix/*"], 0, &ctx()).expect("valid");
        assert_eq!(f.expr, Some(Expr::Src(HostCond { port: -1, addr: HostAddr::Unix("/tmp/.X11-unix/*".into()) })));
        assert_eq!(f.family_override, Some(AF_UNIX));
        let f = parse_with(&["src", "inet6:[::1]"], 0, &ctx()).expect("valid");
        assert_eq!(f.family_override, Some(AF_INET6));
        let f = parse_with(&["src", "inet:127.0.0.1", "or", "dport", "80"], 0, &ctx()).expect("valid");
        assert_eq!(f.family_override, Some(AF_INET));
        assert_eq!(parse_with(&["dport", "80"], 0, &ctx()).expect("valid").family_override, None);

        // ss -x: every address is a path glob, and ports too.
        let unix = ParseContext { preferred_family: AF_UNIX, ..ctx() };
        let f = parse_with(&["src", "/tmp/*"], 0, &unix).expect("valid");
        assert_eq!(f.expr, Some(Expr::Src(HostCond { port: -1, addr: HostAddr::Unix("/tmp/*".into()) })));
        assert_eq!(f.family_override, Some(AF_UNIX));

        // ss -6: an IPv4 literal is not an address of the family; it is looked up as a name.
        let six = ParseContext { preferred_family: AF_INET6, ..ctx() };
        let e = parse_with(&["src", "1.2.3.4"], 0, &six).expect_err("v4 under -6");
        assert!(matches!(e, FilterError::Value { kind: ValueError::NotAPrefix(_), .. }), "{e:?}");
        let f = parse_with(&["src", "six"], 0, &six).expect("resolves for v6");
        assert_eq!(f.expr, Some(Expr::Src(addr_cond(-1, pfx("2001:db8::6", 128)))));
        assert_eq!(f.family_override, Some(AF_INET6));

        // With both tcp and udp selected, a service whose ports differ is ambiguous.
        let both = ParseContext { udp: true, ..ctx() };
        let e = parse_with(&["dport", "amb"], 0, &both).expect_err("ambiguous");
        assert_eq!(e.to_string(), "filter error at column 7 near \"amb\"");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter error at column 7 near \"amb\": ambiguous port \"amb\": its tcp and udp numbers differ\n"
        );
        assert_eq!(expr("dport amb"), Expr::Dst(port_cond(1)));
    }

    #[test]
    fn invalid_filters_name_column_and_token() {
        use ValueError as V;
        // (filter words joined by spaces, column, token, Some(value error) or None for a
        // syntax error)
        let cases: Vec<(&str, usize, Option<&str>, Option<ValueError>)> = vec![
            // A bare word is a host to resolve (ss's lexer), and fails as one.
            ("frob", 1, Some("frob"), Some(V::NotAPrefix("frob".into()))),
            ("src 1.2.3.4 frob", 13, Some("frob"), Some(V::NotAPrefix("frob".into()))),
            // After dport, the sticky keyword makes the next bare word a port.
            ("dport = :80 frob", 13, Some("frob"), Some(V::NotAPort("frob".into()))),
            ("dport = :nosuchsvc", 9, Some(":nosuchsvc"), Some(V::NotAPort("nosuchsvc".into()))),
            ("dport = 080", 9, Some("080"), Some(V::NotAPort("080".into()))),
            ("dport = 127.0.0.1:80", 9, Some("127.0.0.1:80"), Some(V::NotAPort("127.0.0.1:80".into()))),
            ("dst 127.0.0.1:22x", 5, Some("127.0.0.1:22x"), Some(V::NotAPort("22x".into()))),
            ("src [::]/0", 5, Some("[::]/0"), Some(V::NotAPort("/0".into()))),
            ("src [::1]x", 5, Some("[::1]x"), Some(V::NotAPort("x".into()))),
            ("src [::1", 5, Some("[::1"), Some(V::UnclosedBracket)),
            ("src ::1", 5, Some("::1"), Some(V::NotAPrefix(":".into()))),
            ("src 10.0.0.0/33", 5, Some("10.0.0.0/33"), Some(V::NotAPrefix("10.0.0.0/33".into()))),
            (
                "src 127.0.0.1/255.0.255.0",
                5,
                Some("127.0.0.1/255.0.255.0"),
                Some(V::NotAPrefix("127.0.0.1/255.0.255.0".into())),
            ),
            ("src 127.0.0.1/08", 5, Some("127.0.0.1/08"), Some(V::NotAPrefix("127.0.0.1/08".into()))),
            ("src 256.0.0.1", 5, Some("256.0.0.1"), Some(V::NotAPrefix("256.0.0.1".into()))),
            ("src 1.2.3.4.5", 5, Some("1.2.3.4.5"), Some(V::NotAPrefix("1.2.3.4.5".into()))),
            ("src any/8", 5, Some("any/8"), Some(V::NotAPrefix("any/8".into()))),
            ("dev = nosuch", 7, Some("nosuch"), Some(V::Device("nosuch".into()))),
            ("dev if0", 5, Some("if0"), Some(V::Device("if0".into()))),
            ("dev lo 1.2.3.4", 8, Some("1.2.3.4"), Some(V::Device("1.2.3.4".into()))),
            ("fwmark = 5/", 10, Some("5/"), Some(V::Mark("5/".into()))),
            ("fwmark abc", 8, Some("abc"), Some(V::Mark("abc".into()))),
            ("cgroup = /nope", 10, Some("/nope"), Some(V::Cgroup("/nope".into()))),
            // Grammar errors: the token is lexed first (a valid value), then rejected.
            ("dst", 4, None, None),
            ("dst =", 6, None, None),
            ("not", 4, None, None),
            ("!", 2, None, None),
            ("( dport = :80", 14, None, None),
            ("dport = :80 )", 13, Some(")"), None),
            ("dport > :80 and", 16, None, None),
            ("src != 127.0.0.1", 5, Some("!="), None),
            ("src > 1.2.3.4", 5, Some(">"), None),
            ("1.2.3.4", 1, Some("1.2.3.4"), None),
            ("localhost", 1, Some("localhost"), None),
            ("dport = :80 :81", 13, Some(":81"), None),
            ("dport = = :80", 9, Some("="), None),
            ("( )", 3, Some(")"), None),
            ("sport = :1 and or sport = :2", 16, Some("or"), None),
            ("dev", 4, None, None),
            ("fwmark =", 9, None, None),
            ("autobound 1.2.3.4", 11, Some("1.2.3.4"), None),
            ("src ( 1.2.3.4 )", 5, Some("("), None),
            // Columns count the state words too.
            ("state established dst", 22, None, None),
            ("state established frob", 19, Some("frob"), Some(V::NotAPrefix("frob".into()))),
        ];
        for (text, column, token, value) in cases {
            let err = parse_with(&words(text), 0, &ctx()).expect_err(text);
            let want = match value {
                Some(kind) => FilterError::Value { column, token: token.unwrap_or_default().to_owned(), kind },
                None => err_syntax(&err, column, token),
            };
            assert_eq!(err, want, "{text:?}");
            let code = if matches!(want, FilterError::Value { .. }) { 1 } else { 255 };
            assert_eq!(err.exit_code(), code, "{text:?}");
        }
    }

    /// A syntax error with this column and token (the "expected" text is checked apart).
    fn err_syntax(got: &FilterError, column: usize, token: Option<&str>) -> FilterError {
        let expected = match got {
            FilterError::Syntax { expected, .. } => expected,
            _ => "(not a syntax error)",
        };
        FilterError::Syntax { column, token: token.map(str::to_owned), expected }
    }

    #[test]
    fn error_messages_say_where_and_what() {
        let e = parse_with(&words("dport = :80 )"), 0, &ctx()).expect_err("unbalanced");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter syntax error at column 13 near \")\": expected 'and', 'or', another condition, or the end of the filter\n"
        );
        let e = parse_with(&words("src 1.2.3.4 frob"), 0, &ctx()).expect_err("frob");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter error at column 13 near \"frob\": an inet prefix is expected rather than \"frob\"\n"
        );
        let e = parse_with(&words("sport ="), 0, &ctx()).expect_err("end");
        assert_eq!(
            e.ss_message("sockstat"),
            "sockstat: filter syntax error at column 8 at the end of the filter: expected a port, or one of = != < > <= >= followed by a port\n"
        );
        // Columns are characters, not bytes.
        let e = parse_with(&["src", "é", "frob"], 0, &ctx()).expect_err("é");
        assert!(matches!(e, FilterError::Value { column: 5, .. }), "{e:?}");
    }

    #[test]
    fn nesting_is_bounded() {
        let deep = vec!["("; MAX_DEPTH + 1];
        assert!(matches!(parse_with(&deep, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        let nots: Vec<&str> = std::iter::repeat_n("not", 10_000).chain(["autobound"]).collect();
        assert!(matches!(parse_with(&nots, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        // Alternating and/or chains deepen the tree.
        let mut alt = vec!["autobound"];
        for i in 0..1000 {
            alt.extend([if i % 2 == 0 { "or" } else { "and" }, "autobound"]);
        }
        assert!(matches!(parse_with(&alt, 0, &ctx()), Err(FilterError::TooDeep { .. })));
        // A long chain of one operator does not.
        let mut flat = vec!["autobound"];
        for _ in 0..10_000 {
            flat.extend(["or", "autobound"]);
        }
        assert!(parse_with(&flat, 0, &ctx()).is_ok());
        let ok: Vec<&str> = std::iter::repeat_n("not", MAX_DEPTH - 1).chain(["autobound"]).collect();
        assert!(parse_with(&ok, 0, &ctx()).is_ok());
    }

    #[test]
    fn family_host_conditions_parse_as_ss_does() {
        let other =
            |family, value, bitlen, port| HostCond { port, addr: HostAddr::Other(data_prefix(family, value, bitlen)) };
        let cases: &[(u16, &str, HostCond, u16)] = &[
            (AF_UNSPEC, "src link:ip:lo", other(AF_PACKET, 0x0800, 32, 1), AF_PACKET),
            (AF_UNSPEC, "src link:ipv6:if1", other(AF_PACKET, 0x86dd, 32, 1), AF_PACKET),
            (AF_UNSPEC, "src link:", other(AF_PACKET, 0, 0, -1), AF_PACKET),
            (AF_UNSPEC, "src link:*:*", other(AF_PACKET, 0, 0, -1), AF_PACKET),
            (AF_UNSPEC, "src netlink:tcpdiag:kernel", other(AF_NETLINK, 4, 32, 0), AF_NETLINK),
            (AF_UNSPEC, "src netlink:*:-5", other(AF_NETLINK, 0, 0, -5), AF_NETLINK),
            (AF_UNSPEC, "src vsock:3", other(AF_VSOCK, 3, 32, -1), AF_VSOCK),
            (AF_UNSPEC, "src vsock::80", other(AF_VSOCK, u32::MAX, 0, 80), AF_VSOCK),
            // A preferred family (-0, -f netlink) makes every address one of its own.
            (AF_PACKET, "src arp", other(AF_PACKET, 0x0806, 32, -1), AF_PACKET),
            (AF_PACKET, "src :lo", other(AF_PACKET, 0, 0, 1), AF_PACKET),
            (AF_PACKET, "sport = :eth0", other(AF_PACKET, 0, 0, 2), AF_PACKET),
            (AF_PACKET, "sport = 7", other(AF_PACKET, 0, 0, 7), AF_PACKET),
            (AF_NETLINK, "src genl", other(AF_NETLINK, 16, 32, -1), AF_NETLINK),
            (AF_NETLINK, "sport = :kernel", other(AF_NETLINK, 0, 0, 0), AF_NETLINK),
            (AF_NETLINK, "dport = :22", other(AF_NETLINK, 0, 0, 22), AF_NETLINK),
        ];
        for (preferred_family, text, want, fam) in cases {
            let c = ParseContext { preferred_family: *preferred_family, ..ctx() };
            let f = parse_with(&words(text), 0, &c).unwrap_or_else(|e| panic!("{text}: {e}"));
            let got = match f.expr {
                Some(Expr::Src(h) | Expr::Dst(h)) => h,
                other => panic!("{text}: {other:?}"),
            };
            assert_eq!(&got, want, "{text}");
            assert_eq!(f.family_override, Some(*fam), "{text}");
        }
        // What ss refuses ("Cannot parse dst/src address.", exit 1).
        use ValueError as V;
        for (text, kind) in [
            ("src link:bogus", V::LinkProtocol("bogus".into())),
            ("src link:0x10000", V::LinkProtocol("0x10000".into())),
            ("src link:-1", V::LinkProtocol("-1".into())),
            ("src link:ip:nodev", V::LinkPort("nodev".into())),
            ("src link::0x", V::LinkPort("0x".into())),
            ("src netlink:kernel", V::NetlinkProtocol("kernel".into())),
            ("src netlink:RTNL", V::NetlinkProtocol("RTNL".into())),
            ("src netlink:256", V::NetlinkProtocol("256".into())),
            ("src netlink:rtnl:x", V::NetlinkPort("x".into())),
            ("src vsock:x", V::VsockCid("x".into())),
            ("src vsock:-1", V::VsockCid("-1".into())),
            ("src vsock:1:", V::VsockPort(String::new())),
            ("src vsock:1:4294967296", V::VsockPort("4294967296".into())),
        ] {
            let e = parse_with(&words(text), 0, &ctx()).expect_err(text);
            assert_eq!(e, FilterError::Value { column: 5, token: text[4..].to_owned(), kind }, "{text}");
            assert_eq!(e.exit_code(), 1, "{text}");
        }
    }
}
