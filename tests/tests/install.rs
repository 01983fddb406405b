//! `cargo xtask install --destdir DIR`: installs into a temporary directory, then checks
//! each file where its tool looks for it: the binary runs, systemd accepts the unit
//! (`systemd-analyze verify`), man renders the pages, bash completes sockstat's words.

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use sockstat_tests::sockstat_bin;

/// The xtask binary `cargo xtask` built (`cargo xtask test` says where).
fn xtask_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("XTASK_BIN") {
        return PathBuf::from(p);
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"), PathBuf::from);
    let bin = target.join("debug/xtask");
    assert!(
        bin.exists(),
        "{} is missing: run the tests with `cargo xtask test` (or `cargo build -p xtask`)",
        bin.display()
    );
    bin
}

/// A directory removed on drop.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn install_puts_binary_unit_man_pages_and_completions_where_their_tools_look() {
    sockstat_tests::require_root();
    let dir = TempDir(std::env::temp_dir().join(format!("sst-install-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&dir.0);
    let listed =
        run(Command::new(xtask_bin()).arg("install").arg("--destdir").arg(&dir.0).arg("--bin").arg(sockstat_bin()));

    let expected: [(&str, u32); 12] = [
        ("usr/local/bin/sockstat", 0o755),
        // The glibc build the first hands `agent` and `trace` to.
        ("usr/local/bin/sockstat-glibc", 0o755),
        ("usr/local/lib/systemd/system/sockstat-agent.service", 0o644),
        ("usr/local/share/man/man1/sockstat.1", 0o644),
        ("usr/local/share/man/man1/sockstat-agent.1", 0o644),
        ("usr/local/share/man/man1/sockstat-status.1", 0o644),
        ("usr/local/share/man/man1/sockstat-trace.1", 0o644),
        ("usr/local/share/man/man1/sockstat-history.1", 0o644),
        ("usr/local/share/bash-completion/completions/sockstat", 0o644),
        ("usr/local/share/zsh/site-functions/_sockstat", 0o644),
        ("usr/local/share/fish/vendor_completions.d/sockstat.fish", 0o644),
        ("usr/local/share/man/man1", 0o755),
    ];
    for (rel, mode) in expected {
        let path = dir.0.join(rel);
        let meta =
            std::fs::metadata(&path).unwrap_or_else(|e| panic!("{rel} not installed ({e}); xtask said:\n{listed}"));
        assert_eq!(meta.permissions().mode() & 0o777, mode, "{rel} mode");
        if meta.is_file() {
            assert!(listed.contains(&path.display().to_string()), "xtask did not list {rel}:\n{listed}");
        }
    }
    let installed = dir.0.join("usr/local/bin/sockstat");
    assert_eq!(std::fs::read(&installed).unwrap(), std::fs::read(sockstat_bin()).unwrap(), "the binary as built");
    let sibling = sockstat::cmd::long_runs::sibling_of(&sockstat_bin());
    assert_eq!(
        std::fs::read(dir.0.join("usr/local/bin/sockstat-glibc")).unwrap(),
        std::fs::read(&sibling).unwrap(),
        "the glibc build as built"
    );
    assert!(run(Command::new(&installed).arg("-V")).starts_with("sockstat utility"));

    // The unit: the installed path, the hardening the issue asks for, and systemd's own
    // check of it, against the staging directory as root.
    let unit_path = dir.0.join("usr/local/lib/systemd/system/sockstat-agent.service");
    let unit = std::fs::read_to_string(&unit_path).unwrap();
    assert!(unit.contains("\nExecStart=/usr/local/bin/sockstat agent "), "{unit}");
    for line in [
        "RuntimeDirectory=sockstat",
        "StateDirectory=sockstat",
        "Restart=on-failure",
        "CapabilityBoundingSet=CAP_BPF CAP_PERFMON CAP_NET_ADMIN CAP_SYS_ADMIN CAP_SYS_PTRACE",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "the unit lacks {line}:\n{unit}");
    }
    assert!(!unit.lines().any(|l| l.starts_with("PrivateNetwork")), "the agent must see the host's sockets");
    match Command::new("systemd-analyze").arg("--version").output() {
        Ok(_) => verify_unit(&dir.0),
        Err(e) => eprintln!("NOTE: systemd-analyze is not installed ({e}): the unit was not verified by systemd"),
    }

    // The man pages render without warnings and say what the tools document.
    for page in ["sockstat.1", "sockstat-agent.1", "sockstat-status.1", "sockstat-trace.1", "sockstat-history.1"] {
        let path = dir.0.join("usr/local/share/man/man1").join(page);
        let out = Command::new("man")
            .args(["--warnings", "-l"])
            .arg(&path)
            .env("MANWIDTH", "100")
            .output()
            .unwrap_or_else(|e| panic!("cannot run man: {e} (`apt-get install man-db`)"));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success() && out.stderr.is_empty(), "man {page}: {}", String::from_utf8_lossy(&out.stderr));
        assert!(text.contains("SYNOPSIS"), "{page}:\n{text}");
        if page == "sockstat.1" {
            for needle in ["--numeric", "--processes", "--source", "STATE-FILTER", "agent", "history"] {
                assert!(text.contains(needle), "sockstat.1 lacks {needle}:\n{text}");
            }
        }
        if page == "sockstat-agent.1" {
            assert!(text.contains("--metrics") && text.contains("--timeline"), "{text}");
        }
    }

    // bash completes the commands and ss's long options from the installed script.
    let bash = dir.0.join("usr/local/share/bash-completion/completions/sockstat");
    let complete = |words: &str| {
        let script = format!(
            "source {}; COMP_WORDS=({words}); COMP_CWORD=$(( ${{#COMP_WORDS[@]}} - 1 )); \
             COMP_LINE=\"${{COMP_WORDS[*]}}\"; COMP_POINT=${{#COMP_LINE}}; _sockstat sockstat; echo \"${{COMPREPLY[@]}}\"",
            bash.display()
        );
        run(Command::new("bash").arg("-c").arg(script))
    };
    assert!(complete("sockstat ag").split_whitespace().any(|w| w == "agent"), "{}", complete("sockstat ag"));
    assert!(complete("sockstat --proc").split_whitespace().any(|w| w == "--processes"));
    assert!(complete("sockstat agent --met").split_whitespace().any(|w| w == "--metrics"));
    let zsh = std::fs::read_to_string(dir.0.join("usr/local/share/zsh/site-functions/_sockstat")).unwrap();
    assert!(zsh.starts_with("#compdef sockstat") && zsh.contains("--numeric"), "{zsh}");
    let fish = std::fs::read_to_string(dir.0.join("usr/local/share/fish/vendor_completions.d/sockstat.fish")).unwrap();
    assert!(fish.contains("complete -c sockstat") && fish.contains("agent"), "{fish}");
}

/// `systemd-analyze verify` of the installed unit, in a root made of the staging
/// directory's /usr/local and this machine's own units (the targets a service depends on
/// by default), bind-mounted in a mount namespace of its own, so nothing outlives the
/// check. Its man pages are looked up among the staged ones. Verify reports what it
/// finds wrong on stderr (a bad value is "ignoring", not a failure), so any output fails.
fn verify_unit(destdir: &Path) {
    let root = TempDir(std::env::temp_dir().join(format!("sst-verify-root-{}", std::process::id())));
    let _ = std::fs::remove_dir_all(&root.0);
    std::fs::create_dir_all(root.0.join("usr/local")).unwrap();
    std::fs::create_dir_all(root.0.join("usr/lib/systemd/system")).unwrap();
    std::os::unix::fs::symlink("usr/lib", root.0.join("lib")).unwrap();
    let (r, d) = (root.0.display(), destdir.display());
    let script = format!(
        "mount --bind {d}/usr/local {r}/usr/local && mount --bind /usr/lib/systemd/system {r}/usr/lib/systemd/system \
         && exec systemd-analyze verify --root={r} {r}/usr/local/lib/systemd/system/sockstat-agent.service"
    );
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .env("MANPATH", destdir.join("usr/local/share/man"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run unshare: {e} (`apt-get install util-linux`)"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.trim().is_empty(), "systemd-analyze verify ({}): {stderr}", out.status);
}
