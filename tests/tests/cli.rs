//! Bad input gets ss-style errors and a non-zero exit.

use sockstat_tests::NetNs;

fn fails_with(ns: &NetNs, args: &[&str], needle: &str) {
    let out = ns.sockstat(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "sockstat {args:?} succeeded");
    assert!(err.contains(needle), "sockstat {args:?}: stderr lacks {needle:?}: {err}");
    assert!(out.stdout.is_empty(), "sockstat {args:?} printed to stdout on error");
}

#[test]
fn unknown_options_and_bad_state_filters() {
    let ns = NetNs::new("cli");
    fails_with(&ns, &["-q"], "invalid option");
    fails_with(&ns, &["--bogus"], "unrecognized option");
    fails_with(&ns, &["-t", "state", "bogus"], "bogus");
    fails_with(&ns, &["-t", "state"], "Command line is not complete");
    fails_with(
        &ns,
        &["--source", "agent", "--socket", "/nonexistent/agent.sock", "-t"],
        "no sockstat agent is running",
    );
    // Same message and exit status as ss for the same mistakes.
    for args in [&["-q"][..], &["--bogus"], &["-t", "state", "bogus"], &["-t", "state"]] {
        let ss = ns.command("ss").args(args).output().unwrap();
        let ours = ns.sockstat(args);
        assert_eq!(ours.status.code(), ss.status.code(), "exit status for {args:?}");
        let theirs = String::from_utf8_lossy(&ss.stderr).replace("ss", "sockstat");
        let ours = String::from_utf8_lossy(&ours.stderr).replace("ss", "sockstat");
        assert_eq!(ours.lines().next(), theirs.lines().next(), "first stderr line for {args:?}");
    }
}

/// `--help` lists sockstat's commands; a command name in the wrong place, or `help`, gets
/// an error that says what to type; the options the commands share work before the
/// command name.
#[test]
fn commands_are_discoverable() {
    let ns = NetNs::new("clihelp");
    let help = ns.sockstat_ok(&["--help"]);
    for line in ["       agent ", "       status ", "       trace ", "       history ", "--at=TIME"] {
        assert!(help.contains(line), "--help lacks {line:?}:\n{help}");
    }
    fails_with(&ns, &["help"], "`sockstat --help` lists");
    fails_with(&ns, &["-tan", "status"], "give it first, as `sockstat status");
    fails_with(&ns, &["-n", "history"], "give it first, as `sockstat history");
    // A later word stays the filter's: `help` as a host name.
    fails_with(&ns, &["-tan", "dst", "help"], "filter error at column");
    // Shared options before the command name reach the command.
    fails_with(&ns, &["--socket", "/nonexistent/agent.sock", "status"], "no sockstat agent is running at /nonexistent");
    fails_with(&ns, &["--json", "--socket=/nonexistent/agent.sock", "status"], "no sockstat agent is running");
}
