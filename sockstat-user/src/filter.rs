//! The ss FILTER language (`ss [OPTIONS] [FILTER]`), parsed from the words left after the
//! options.
//!
//! Today this module owns the STATE-FILTER prefix: any number of `state NAME` and
//! `exclude NAME` (`excl NAME`) pairs, turned into a state bitmask exactly as iproute2's
//! ss.c `main()` and `scan_state()` do. The expression grammar that may follow
//! (`src`/`dst`/`sport`/`dport`, `and`/`or`/`not`, parentheses: ss's ssfilter.y) is not
//! built yet; [`parse`] rejects it with [`FilterError::ExpressionUnsupported`] rather than
//! silently ignoring it, and [`Filter`] is where its parsed tree will live.
//!
//! Bit `n` of every mask here is kernel TCP state `n` (include/net/tcp_states.h), which is
//! also ss's `SS_*` numbering. ss's masks stop at bit 11 (`SS_MAX` = 12): it never asks
//! for `TCP_NEW_SYN_RECV` (12) or `TCP_BOUND_INACTIVE` (13) by name; the kernel reports
//! request sockets as SYN-RECV anyway. See `query::state_mask` for what is sent to the
//! kernel.

use sockstat_ebpf::TcpState;

/// Number of states ss knows (`SS_MAX`): bits 0 (`SS_UNKNOWN`) to 11 (`SS_CLOSING`).
pub const SS_MAX: u32 = 12;
/// ss's `SS_ALL`. Bit 0 (UNKNOWN) is included, as in ss.
pub const SS_ALL: u32 = (1 << SS_MAX) - 1;
/// ss's `SS_CONN`: the default for TCP when neither `-a`, `-l` nor a state filter is given.
pub const SS_CONN: u32 = SS_ALL
    & !(bit(TcpState::Listen)
        | bit(TcpState::Close)
        | bit(TcpState::TimeWait)
        | bit(TcpState::SynRecv));
/// What `-l` selects: listeners, and unconnected sockets (CLOSE) for the datagram tables.
pub const SS_LISTENING: u32 = bit(TcpState::Listen) | bit(TcpState::Close);

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
    // Special names first, in ss's order (it checks them before the table).
    let special: &[(&str, u32)] = &[
        ("close", bit(TcpState::Close)),
        ("closed", bit(TcpState::Close)),
        ("syn-rcv", bit(TcpState::SynRecv)),
        ("established", bit(TcpState::Established)),
        ("all", SS_ALL),
        (
            "connected",
            SS_ALL & !(bit(TcpState::Close) | bit(TcpState::Listen)),
        ),
        (
            "synchronized",
            SS_ALL & !(bit(TcpState::Close) | bit(TcpState::Listen) | bit(TcpState::SynSent)),
        ),
        ("bucket", bit(TcpState::SynRecv) | bit(TcpState::TimeWait)),
        (
            "big",
            SS_ALL & !(bit(TcpState::SynRecv) | bit(TcpState::TimeWait)),
        ),
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
        .or_else(|| {
            TABLE
                .iter()
                .position(|n| n.eq_ignore_ascii_case(name))
                .map(|i| 1 << i)
        })
}

/// A parsed FILTER.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    /// ss's `state_filter` after the STATE-FILTER words, before defaults are applied:
    /// 0 means "no explicit states" (ss then falls back to the tables' defaults).
    pub state_filter: u32,
    /// Whether any `state`/`exclude` word was seen.
    pub saw_states: bool,
    // The expression tree (ssfilter) goes here once the grammar is implemented.
}

/// A FILTER that ss would reject, or that sockstat cannot evaluate yet.
///
/// `position` is the 1-based index of the offending word among the FILTER words (the
/// non-option arguments, after getopt-style permutation).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("wrong state name {name:?} (filter word {position})")]
    WrongStateName { name: String, position: usize },
    #[error("{keyword:?} needs a state name after it (filter word {position})")]
    MissingStateName { keyword: String, position: usize },
    #[error(
        "filter expressions are not supported yet: {token:?} (filter word {position}); only `state`/`exclude` are"
    )]
    ExpressionUnsupported { token: String, position: usize },
}

impl FilterError {
    /// What ss prints on stderr for the same mistake, with `prog` (e.g. "sockstat") in
    /// place of "ss". Every line ends with a newline.
    #[must_use]
    pub fn ss_message(&self, prog: &str) -> String {
        match self {
            Self::WrongStateName { name, .. } => format!("{prog}: wrong state name: {name}\n"),
            // iproute2's incomplete_command(): no program prefix.
            Self::MissingStateName { .. } => {
                "Command line is not complete. Try option \"help\"\n".to_owned()
            }
            // ss would hand these to its bison parser; there is no ss text to copy.
            Self::ExpressionUnsupported { .. } => format!("{prog}: {self}\n"),
        }
    }

    /// The exit status ss uses: `exit(-1)` for both of its errors. The unsupported
    /// expression uses the same status so scripts see a parse failure.
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        255
    }
}

/// Parses the FILTER words. `initial` is ss's `state_filter` as `-a`/`-l` left it (0 if
/// neither was given).
///
/// ss semantics, kept exactly: the first `state` word discards `initial` and starts from
/// nothing, the first `exclude` word starts from `SS_ALL`; later words OR in (`state`) or
/// mask out (`exclude`). Keywords are case-sensitive, state names are not. Parsing stops
/// at the first word that is neither keyword: that is where the expression begins.
///
/// # Errors
/// [`FilterError`] for an unknown state name, a keyword at the end, or any expression
/// word left over.
pub fn parse<S: AsRef<str>>(words: &[S], initial: u32) -> Result<Filter, FilterError> {
    let mut filter = Filter {
        state_filter: initial,
        saw_states: false,
    };
    let mut i = 0;
    while let Some(word) = words.get(i) {
        let word = word.as_ref();
        let include = match word {
            "state" => true,
            "exclude" | "excl" => false,
            _ => break,
        };
        let Some(name) = words.get(i + 1) else {
            return Err(FilterError::MissingStateName {
                keyword: word.to_owned(),
                position: i + 1,
            });
        };
        let name = name.as_ref();
        let mask = scan_state(name).ok_or_else(|| FilterError::WrongStateName {
            name: name.to_owned(),
            position: i + 2,
        })?;
        if !filter.saw_states {
            filter.state_filter = if include { 0 } else { SS_ALL };
        }
        if include {
            filter.state_filter |= mask;
        } else {
            filter.state_filter &= !mask;
        }
        filter.saw_states = true;
        i += 2;
    }
    if let Some(token) = words.get(i) {
        return Err(FilterError::ExpressionUnsupported {
            token: token.as_ref().to_owned(),
            position: i + 1,
        });
    }
    Ok(filter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use TcpState::*;

    const fn b(s: TcpState) -> u32 {
        bit(s)
    }

    #[test]
    fn constants_match_ss() {
        // Values computed by hand from ss.c's enum: SS_ALL = 0xfff, SS_CONN drops
        // LISTEN(10), CLOSE(7), TIME_WAIT(6), SYN_RECV(3).
        assert_eq!(SS_ALL, 0xfff);
        assert_eq!(SS_CONN, 0xfff & !(1 << 10 | 1 << 7 | 1 << 6 | 1 << 3));
        assert_eq!(SS_LISTENING, 1 << 10 | 1 << 7);
    }

    #[test]
    fn every_identifier_scans_as_ss_does() {
        let cases: &[(&str, u32)] = &[
            ("established", b(Established)),
            ("syn-sent", b(SynSent)),
            ("syn-recv", b(SynRecv)),
            ("syn-rcv", b(SynRecv)),
            ("fin-wait-1", b(FinWait1)),
            ("fin-wait-2", b(FinWait2)),
            ("time-wait", b(TimeWait)),
            ("closed", b(Close)),
            ("close", b(Close)),
            ("unconnected", b(Close)),
            ("close-wait", b(CloseWait)),
            ("last-ack", b(LastAck)),
            ("listening", b(Listen)),
            ("closing", b(Closing)),
            ("unknown", 1),
            ("all", 0xfff),
            ("connected", 0xfff & !(b(Close) | b(Listen))),
            ("synchronized", 0xfff & !(b(Close) | b(Listen) | b(SynSent))),
            ("bucket", b(SynRecv) | b(TimeWait)),
            ("big", 0xfff & !(b(SynRecv) | b(TimeWait))),
            ("ESTABLISHED", b(Established)),
            ("Time-Wait", b(TimeWait)),
        ];
        for &(name, mask) in cases {
            assert_eq!(scan_state(name), Some(mask), "{name}");
        }
        for bad in [
            "listen",
            "estab",
            "",
            "syn_sent",
            "fin-wait",
            "new-syn-recv",
            "bogus",
        ] {
            assert_eq!(scan_state(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn state_words_combine_as_ss_does() {
        let a = SS_ALL;
        let l = SS_LISTENING;
        let cases: &[(&[&str], u32, u32)] = &[
            (&[], 0, 0),
            (&[], a, a),
            (&[], l, l),
            (&["state", "established"], 0, b(Established)),
            // The first `state` discards -a / -l.
            (&["state", "established"], a, b(Established)),
            (&["state", "time-wait"], l, b(TimeWait)),
            (
                &["state", "established", "state", "listening"],
                0,
                b(Established) | b(Listen),
            ),
            // The first `exclude` starts from SS_ALL, whatever -l said.
            (&["exclude", "listening"], l, a & !b(Listen)),
            (&["excl", "established"], 0, a & !b(Established)),
            (
                &["state", "connected", "exclude", "time-wait"],
                0,
                a & !(b(Close) | b(Listen) | b(TimeWait)),
            ),
            (&["exclude", "all"], a, 0),
            (
                &["exclude", "bucket", "state", "syn-recv"],
                0,
                a & !b(TimeWait),
            ),
        ];
        for &(words, initial, want) in cases {
            let f = parse(words, initial).unwrap_or_else(|e| panic!("{words:?}: {e}"));
            assert_eq!(f.state_filter, want, "{words:?} from {initial:#x}");
            assert_eq!(f.saw_states, !words.is_empty(), "{words:?}");
        }
    }

    #[test]
    fn malformed_filters_name_the_word_and_match_ss_text() {
        let cases: &[(&[&str], FilterError, &str)] = &[
            (
                &["state", "bogus"],
                FilterError::WrongStateName {
                    name: "bogus".into(),
                    position: 2,
                },
                "sockstat: wrong state name: bogus\n",
            ),
            (
                &["state", "established", "exclude", "listen"],
                FilterError::WrongStateName {
                    name: "listen".into(),
                    position: 4,
                },
                "sockstat: wrong state name: listen\n",
            ),
            (
                &["state"],
                FilterError::MissingStateName {
                    keyword: "state".into(),
                    position: 1,
                },
                "Command line is not complete. Try option \"help\"\n",
            ),
            (
                &["state", "all", "excl"],
                FilterError::MissingStateName {
                    keyword: "excl".into(),
                    position: 3,
                },
                "Command line is not complete. Try option \"help\"\n",
            ),
            (
                &["state", "listening", "sport", "=", ":22"],
                FilterError::ExpressionUnsupported {
                    token: "sport".into(),
                    position: 3,
                },
                "sockstat: filter expressions are not supported yet: \"sport\" (filter word 3); only `state`/`exclude` are\n",
            ),
            // Keywords are case-sensitive in ss: `State` starts an expression.
            (
                &["State", "established"],
                FilterError::ExpressionUnsupported {
                    token: "State".into(),
                    position: 1,
                },
                "sockstat: filter expressions are not supported yet: \"State\" (filter word 1); only `state`/`exclude` are\n",
            ),
        ];
        for (words, want, text) in cases {
            let err = parse(words, 0).expect_err("must fail");
            assert_eq!(&err, want, "{words:?}");
            assert_eq!(err.ss_message("sockstat"), *text, "{words:?}");
            assert_eq!(err.exit_code(), 255);
        }
    }
}
