//! The whole command line as one clap [`Command`], for the man pages and the shell
//! completions that `cargo xtask install` generates: ss's options, each with its line of
//! the usage text ([`super::usage`]), FILTER ([`filter_grammar`]), and sockstat's own commands
//! ([`super::commands::Own`]). It parses nothing: the ss command line is parsed by the
//! parent module (getopt's rules, which clap alone does not follow), so this module only
//! describes the same options, and its tests check that it names every one of them.

use std::collections::HashMap;

use clap::{Arg, ArgAction, Command, CommandFactory, ValueHint};

use super::{FLAGS, PROG, VALUED, commands::Own};

/// Options of the ss command line that the parent module takes out before clap sees the
/// rest (`cmd::ss`): (long name, value name).
const PRE_PARSED: [(&str, &str); 2] = [("at", "TIME"), ("timeline", "PATH")];

/// The documented command line: ss's options, FILTER, and sockstat's commands.
#[must_use]
pub fn command() -> Command {
    let usage = super::usage();
    let help = option_help(&usage);
    let text = |long: &str| help.get(long).cloned().unwrap_or_default();
    let mut cmd = Command::new(PROG)
        .version(env!("CARGO_PKG_VERSION"))
        .about("eBPF-augmented socket tracer and drop-in for ss")
        .long_about(
            "sockstat takes the options, FILTER and output of iproute2's ss. When `sockstat agent` \
             runs, answers come from its live socket table, kept current by an eBPF program that \
             sees every TCP state transition; without an agent sockstat dumps sock_diag itself, \
             as ss does. The agent also records a timeline of connections, which `--at` and \
             `history` read back.",
        )
        .disable_help_flag(true)
        .disable_version_flag(true)
        .disable_help_subcommand(true)
        .subcommand_value_name("COMMAND");
    for &(id, short, long) in FLAGS {
        // `-v` is ss's undocumented alias of `-V`.
        let Some(long) = long else { continue };
        let mut arg = Arg::new(id).long(long).action(ArgAction::SetTrue).help(text(long));
        if let Some(s) = short {
            arg = arg.short(s);
        }
        cmd = cmd.arg(arg);
    }
    for &(id, short, long) in VALUED {
        // The value names of the usage text.
        let value = match long {
            "diag" | "filter" => "FILE",
            "net" => "NAME",
            "socket" => "PATH",
            "family" => "FAMILY",
            "query" => "QUERY",
            _ => "SOURCE",
        };
        let mut arg = Arg::new(id).long(long).value_name(value).help(text(long));
        arg = match long {
            "diag" | "filter" | "socket" => arg.value_hint(ValueHint::FilePath),
            "family" => arg.value_parser(["inet", "inet6", "link", "unix", "netlink", "vsock", "tipc", "xdp"]),
            "source" => arg.value_parser(["auto", "agent", "kernel"]),
            _ => arg,
        };
        if let Some(s) = short {
            arg = arg.short(s);
        }
        cmd = cmd.arg(arg);
    }
    for (long, value) in PRE_PARSED {
        let arg = Arg::new(long).long(long).value_name(value).help(text(long));
        cmd = cmd.arg(if long == "timeline" { arg.value_hint(ValueHint::FilePath) } else { arg });
    }
    cmd = cmd.arg(
        Arg::new("filter_words")
            .value_name("FILTER")
            .num_args(0..)
            .help("[ state STATE-FILTER ] [ EXPRESSION ], as ss's; see FILTER below"),
    );
    cmd.subcommands(Own::command().get_subcommands().cloned())
}

/// Each long option's help in the usage text: the words after `--NAME[=VALUE]`, with
/// their continuation lines, or the grammar line of an option whose line has none
/// (`-A, --query=QUERY` is followed by `QUERY := ...`).
fn option_help(usage: &str) -> HashMap<String, String> {
    let mut help: HashMap<String, String> = HashMap::new();
    let mut last: Option<String> = None;
    for line in usage.lines() {
        let t = line.trim_start();
        let indent = line.len() - t.len();
        if t.starts_with('-')
            && let Some(at) = t.find("--")
        {
            let rest = &t[at + 2..];
            let end = rest.find(|c: char| c == '=' || c.is_whitespace()).unwrap_or(rest.len());
            let after = &rest[end..];
            let after = after.strip_prefix('=').map_or(after, |v| v.trim_start_matches(|c: char| !c.is_whitespace()));
            help.insert(rest[..end].to_owned(), after.trim().to_owned());
            last = Some(rest[..end].to_owned());
        } else if let Some(name) = &last
            && !t.is_empty()
            && let Some(h) = help.get_mut(name)
            && (indent > 12 || (h.is_empty() && t.contains(":=")))
        {
            if !h.is_empty() {
                h.push(' ');
            }
            // Spaces around a grammar's `|` let man break its long lists.
            h.push_str(&if t.contains(":=") { t.replace('|', " | ") } else { t.to_owned() });
        } else {
            last = None;
        }
    }
    help
}

/// FILTER's grammar, as the usage text has it: the lines from `FILTER :=` to the blank
/// line after it, each with its alignment.
#[must_use]
pub fn filter_grammar() -> Vec<String> {
    super::usage()
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("FILTER :="))
        .take_while(|l| !l.trim().is_empty())
        .map(|l| l.trim_end().strip_prefix("       ").unwrap_or(l).to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_documented_command_is_valid_and_names_every_option() {
        let cmd = command();
        cmd.clone().debug_assert();
        for &(id, _, long) in FLAGS {
            let Some(long) = long else { continue };
            let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("--{long} missing"));
            assert!(arg.get_help().is_some_and(|h| !h.to_string().is_empty()), "--{long} has no help in usage()");
        }
        for &(id, _, long) in VALUED {
            let arg = cmd.get_arguments().find(|a| a.get_id() == id).unwrap_or_else(|| panic!("--{long} missing"));
            assert!(arg.get_help().is_some_and(|h| !h.to_string().is_empty()), "--{long} has no help in usage()");
        }
        let mut names: Vec<&str> = cmd.get_subcommands().map(Command::get_name).collect();
        let mut commands = super::super::commands::COMMANDS.to_vec();
        names.sort_unstable();
        commands.sort_unstable();
        assert_eq!(names, commands);
    }

    #[test]
    fn help_comes_from_the_usage_text_with_continuations_and_grammars() {
        let help = option_help(&super::super::usage());
        assert_eq!(help["numeric"], "don't resolve service names");
        assert_eq!(help["family"], "display sockets of type FAMILY");
        assert!(help["query"].starts_with("QUERY := {all | inet | tcp"), "{}", help["query"]);
        assert!(help["socket"].ends_with("unlike ss, where --socket is an alias of --query"), "{}", help["socket"]);
        assert_eq!(help["filter"], "read filter information from FILE");
        let grammar = filter_grammar();
        assert_eq!(grammar[0], "FILTER := [ state STATE-FILTER ] [ EXPRESSION ]");
        assert!(grammar.last().is_some_and(|l| l.trim_start().starts_with("big := {established|syn-sent")));
    }
}
