//! Who sees what (docs/security.md): an unprivileged user learns through sockstat what ss
//! and /proc show that user, and no more. The agent answers root and its own user only
//! (socket mode 0600, then SO_PEERCRED per connection); everyone else is answered from the
//! kernel, as ss is, under `--source auto`. The timeline (every connection with its
//! process) is root's.

use std::{
    net::{TcpListener, TcpStream},
    os::unix::fs::PermissionsExt,
    process::Output,
};

use sockstat_tests::{Agent, NetNs, header_and_sorted_rows, sockstat_bin, spawn_ready};

const NOBODY: [&str; 3] = ["--reuid=nobody", "--regid=nogroup", "--clear-groups"];

/// `program ARGS` run as nobody inside `ns`.
fn as_nobody(ns: &NetNs, program: impl AsRef<std::ffi::OsStr>, args: &[&str]) -> Output {
    ns.command("setpriv").args(NOBODY).arg(program).args(args).output().expect("setpriv (apt-get install util-linux)")
}

fn stdout(out: &Output, what: &str) -> String {
    assert!(out.status.success(), "{what} as nobody failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout.clone()).expect("UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Sockets of root (this test process) and of nobody (a python3 run as nobody) in one
/// namespace, an agent run by root: what nobody sees through each command.
#[test]
fn an_unprivileged_user_sees_what_ss_shows_it_and_no_more() {
    let ns = NetNs::new("who");
    // Root's: a listener and an established pair, owned by this test process.
    let _root_socks = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7600").unwrap();
        let c = TcpStream::connect("127.0.0.1:7600").unwrap();
        let (a, _) = l.accept().unwrap();
        (l, c, a)
    });
    // Nobody's: a listener of a process running as nobody.
    let code = "import socket,sys\nl=socket.socket()\nl.bind(('127.0.0.1',7601))\nl.listen()\nprint('ready',flush=True)\nsys.stdin.read()\n";
    let mut args: Vec<&str> = NOBODY.to_vec();
    // The system python: a per-user install (pyenv) is not readable by nobody.
    args.extend(["/usr/bin/python3", "-c", code]);
    let nobody_proc = spawn_ready(&ns, "setpriv", &args);
    let agent = Agent::start(&ns, &[]);
    let sock = agent.socket_arg();

    // The table: every socket of the namespace, as ss shows nobody (sock_diag does not
    // filter inet sockets by user), answered from the kernel since the agent is root's.
    let ours = stdout(&as_nobody(&ns, sockstat_bin(), &["--socket", sock, "-tan"]), "sockstat -tan");
    let theirs = stdout(&as_nobody(&ns, "ss", &["-tan"]), "ss -tan");
    assert_eq!(header_and_sorted_rows(&ours), header_and_sorted_rows(&theirs));
    assert!(ours.contains("127.0.0.1:7600") && ours.contains("127.0.0.1:7601"), "{ours}");

    // Owners: nobody's own process yes, root's no, exactly as ss -p run by nobody.
    let ours = stdout(&as_nobody(&ns, sockstat_bin(), &["--socket", sock, "-tanp"]), "sockstat -tanp");
    let theirs = stdout(&as_nobody(&ns, "ss", &["-tanp"]), "ss -tanp");
    assert_eq!(header_and_sorted_rows(&ours), header_and_sorted_rows(&theirs), "-tanp as nobody differs from ss");
    let line =
        |port: &str| ours.lines().find(|l| l.contains(port) && l.starts_with("LISTEN")).unwrap_or("").to_string();
    assert!(line("127.0.0.1:7601").contains("users:((\"python3\""), "nobody's own listener lost its owner: {ours}");
    assert!(!line("127.0.0.1:7600").contains("users:"), "root's owner shown to nobody: {ours}");
    assert!(
        !ours.lines().any(|l| l.contains(":7600") && l.contains("users:")),
        "an owner of root's sockets was shown to nobody: {ours}"
    );
    // Root, through the agent, does see root's owner: the test above is not vacuous.
    let root = ns.sockstat_ok(&["--source", "agent", "--socket", sock, "-tanp"]);
    assert!(root.lines().any(|l| l.contains("127.0.0.1:7600") && l.contains("users:")), "{root}");

    // The agent itself: refused, saying why (the socket is 0600).
    let out = as_nobody(&ns, sockstat_bin(), &["--source", "agent", "--socket", sock, "-tan"]);
    assert!(!out.status.success() && stderr(&out).contains("permission denied"), "{}", stderr(&out));
    let out = as_nobody(&ns, sockstat_bin(), &["status", "--socket", sock]);
    assert!(!out.status.success(), "status answered nobody");
    assert!(stderr(&out).contains("permission denied"), "{}", stderr(&out));

    // Connection history: the timeline is root's (0600); refused, naming the file and what
    // to do.
    let t = agent.timeline.to_str().unwrap();
    for q in [&["history", "--timeline", t][..], &["--at", "-1s", "--timeline", t, "-tan"]] {
        let out = as_nobody(&ns, sockstat_bin(), q);
        let err = stderr(&out);
        assert!(!out.status.success(), "{q:?} answered nobody: {}", String::from_utf8_lossy(&out.stdout));
        assert!(err.contains("readable by root only") && err.contains(t), "{q:?}: {err}");
    }
    // Tracing loads a BPF program: refused by the kernel, naming the capability.
    let out = as_nobody(&ns, sockstat_bin(), &["trace"]);
    assert!(!out.status.success(), "trace ran as nobody");
    assert!(stderr(&out).contains("CAP_BPF"), "{}", stderr(&out));
    drop(nobody_proc);
}

/// The agent's second line of defence: a socket that nobody can reach anyway (its mode
/// changed, or a bind mount) still answers only root and the agent's user, checked with
/// SO_PEERCRED on each connection; `--source auto` then answers from the kernel.
#[test]
fn the_agent_refuses_other_users_by_their_credentials() {
    let ns = NetNs::new("cred");
    let _root_socks = ns.enter(|| {
        let l = TcpListener::bind("127.0.0.1:7610").unwrap();
        let c = TcpStream::connect("127.0.0.1:7610").unwrap();
        let (a, _) = l.accept().unwrap();
        (l, c, a)
    });
    let agent = Agent::start(&ns, &[]);
    let dir = agent.socket.parent().unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&agent.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let sock = agent.socket_arg();
    let out = as_nobody(&ns, sockstat_bin(), &["--source", "agent", "--socket", sock, "-tan"]);
    let err = stderr(&out);
    assert!(!out.status.success(), "the agent answered nobody: {}", String::from_utf8_lossy(&out.stdout));
    assert!(err.contains("only root and the agent's user"), "{err}");
    // auto: the kernel answers instead, as ss would.
    let ours = stdout(&as_nobody(&ns, sockstat_bin(), &["--socket", sock, "-tanp"]), "sockstat -tanp");
    let theirs = stdout(&as_nobody(&ns, "ss", &["-tanp"]), "ss -tanp");
    assert_eq!(header_and_sorted_rows(&ours), header_and_sorted_rows(&theirs));
    assert!(!ours.contains("users:"), "root's owners shown to nobody: {ours}");
    // Root is still served by the agent.
    let root = ns.sockstat_ok(&["--source", "agent", "--socket", sock, "-tanp"]);
    assert!(root.lines().any(|l| l.contains("127.0.0.1:7610") && l.contains("users:")), "{root}");
}
