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
    fails_with(&ns, &["-t", "state"], "state");
    fails_with(&ns, &["--source", "agent", "--socket", "/nonexistent/agent.sock", "-t"], "no sockstat agent is running");
    // And ss agrees that these are errors.
    for args in [&["-q"][..], &["-t", "state", "bogus"]] {
        let out = ns.command("ss").args(args).output().unwrap();
        assert!(!out.status.success(), "ss {args:?} succeeded");
    }
}
