//! [`FilterError`]: a FILTER ss would reject, with where it is and the text and exit
//! status ss uses; [`ValueError`]: why one value token could not be parsed.

use super::MAX_DEPTH;

/// A FILTER that ss would reject, or that sockstat cannot evaluate.
///
/// `position` is the 1-based index of the offending word among the FILTER words (the
/// non-option arguments, after getopt-style permutation). `column` is the 1-based
/// character position in the FILTER words joined by single spaces.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FilterError {
    #[error("wrong state name {name:?} (filter word {position})")]
    WrongStateName { name: String, position: usize },
    #[error("{keyword:?} needs a state name after it (filter word {position})")]
    MissingStateName { keyword: String, position: usize },
    /// No longer returned by [`parse`](super::parse()), which accepts the whole grammar; kept so callers
    /// that still name it compile until they are updated.
    #[error("filter expressions are not supported yet: {token:?} (filter word {position}); only `state`/`exclude` are")]
    ExpressionUnsupported { token: String, position: usize },
    /// A token where ss's grammar does not allow it (bison's "syntax error"; ss exits 255).
    /// `token` is `None` at the end of the filter.
    #[error("filter syntax error at column {column} {}: expected {expected}", near(token.as_deref()))]
    Syntax { column: usize, token: Option<String>, expected: &'static str },
    /// The expression nests deeper than [`MAX_DEPTH`] (ss's parser stack also has a limit).
    #[error("filter syntax error at column {column} near {token:?}: nested deeper than {MAX_DEPTH} levels")]
    TooDeep { column: usize, token: String },
    /// A value ss's lexer cannot parse (an address, port, device, mark or cgroup); ss
    /// reports these before any syntax error after them and exits 1.
    #[error("filter error at column {column} near {token:?}")]
    Value {
        column: usize,
        token: String,
        #[source]
        kind: ValueError,
    },
}

fn near(token: Option<&str>) -> String {
    match token {
        Some(t) => format!("near {t:?}"),
        None => "at the end of the filter".to_owned(),
    }
}

/// Why a value in the filter could not be parsed (ss's lexer-level errors).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("an inet prefix is expected rather than {0:?}")]
    NotAPrefix(String),
    #[error("{0:?} does not look like a port")]
    NotAPort(String),
    #[error("ambiguous port {0:?}: its tcp and udp numbers differ")]
    AmbiguousPort(String),
    #[error("cannot parse dst/src address: '[' without ']'")]
    UnclosedBracket,
    #[error("cannot parse device {0:?}: no such interface, and not an index")]
    Device(String),
    #[error("cannot parse mark {0:?}: expected MARK or MARK/MASK")]
    Mark(String),
    #[error("cannot parse cgroup {0:?}: not a cgroup v2 path")]
    Cgroup(String),
    #[error("{0:?} is not a link-layer protocol: a name of iproute2's ll_proto table or a number up to 0xffff")]
    LinkProtocol(String),
    #[error("{0:?} is neither a number nor an interface")]
    LinkPort(String),
    #[error("{0:?} is not a netlink protocol: a name of iproute2's nl_protos or a number up to 255")]
    NetlinkProtocol(String),
    #[error("{0:?} is not a netlink port id: a number or \"kernel\"")]
    NetlinkPort(String),
    #[error("{0:?} is not a vsock cid: a number up to 4294967295 or *")]
    VsockCid(String),
    #[error("{0:?} is not a vsock port: a number up to 4294967295 or *")]
    VsockPort(String),
}

impl FilterError {
    /// What to print on stderr for this mistake, with `prog` (e.g. "sockstat") in place of
    /// "ss". Every line ends with a newline. State-word errors copy ss's text; expression
    /// errors say where, which ss does not ("bison bellows ... syntax error!").
    #[must_use]
    pub fn ss_message(&self, prog: &str) -> String {
        match self {
            Self::WrongStateName { name, .. } => format!("{prog}: wrong state name: {name}\n"),
            // iproute2's incomplete_command(): no program prefix.
            Self::MissingStateName { .. } => "Command line is not complete. Try option \"help\"\n".to_owned(),
            Self::Value { kind, .. } => format!("{prog}: {self}: {kind}\n"),
            Self::ExpressionUnsupported { .. } | Self::Syntax { .. } | Self::TooDeep { .. } => {
                format!("{prog}: {self}\n")
            }
        }
    }

    /// The exit status ss uses: `exit(-1)` (255) for state-word and grammar errors, `exit(1)`
    /// for a value its lexer rejects ("Cannot parse dst/src address.").
    #[must_use]
    pub fn exit_code(&self) -> u8 {
        match self {
            Self::Value { .. } => 1,
            _ => 255,
        }
    }
}
