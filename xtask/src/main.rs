//! `cargo xtask`: installs what a fresh Debian machine lacks, builds the eBPF object and
//! the `sockstat` binary with the object embedded, runs it, and runs every test.

use std::{
    env,
    ffi::OsString,
    fs,
    path::{Path, PathBuf},
    process::{Command, ExitCode},
};

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

mod bench;
mod fuzz;
mod install;
mod loadgen;
mod oracle;

const BPF_TARGET: &str = "bpfel-unknown-none";
const BPF_LINKER_VERSION: &str = "0.13.0";
const LLVM_PACKAGE: &str = "llvm-22-dev";
const LLVM_PREFIX: &str = "/usr/lib/llvm-22";

#[derive(Parser)]
#[command(about = "sockstat build tasks")]
struct Cli {
    #[command(subcommand)]
    task: Task,
}

#[derive(Subcommand)]
enum Task {
    /// Install missing prerequisites (rust-src for nightly, llvm-22-dev, bpf-linker). Idempotent.
    Setup,
    /// Build the eBPF object (runs setup first).
    BuildEbpf,
    /// Build the eBPF object and target/dist/sockstat (musl) and sockstat-glibc beside it, with the object embedded.
    Build,
    /// Build, then run `sockstat ARGS`.
    Run {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Check formatting, build, run clippy, then run every test: unit tests and the root
    /// integration tests.
    Test {
        /// Extra arguments passed to `cargo test` for the integration tests (e.g. a test name).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
    /// Build, then benchmark sockstat against ss and bpftrace on loopback load; writes
    /// xtask/bench/RESULTS.md and xtask/bench/snapshot-latency.svg.
    Bench(bench::BenchArgs),
    /// Fuzz everything sockstat reads from outside the process (cargo fuzz, nightly): every
    /// target of sockstat-user/fuzz, each for a bounded time.
    Fuzz {
        /// Seconds per target.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Build, then install the binary, the agent's systemd unit, man pages and bash, zsh
    /// and fish completions under DESTDIR (default `/`) and PREFIX (default /usr/local).
    Install(install::InstallArgs),
    /// Drills too long for `test`, which print their figures (docs/reliability.md).
    #[command(subcommand)]
    Drill(Drill),
    /// Load generators used by the benchmarks (loopback only, bounded in count and time).
    #[command(subcommand)]
    Loadgen(loadgen::Loadgen),
}

#[derive(Subcommand)]
enum Drill {
    /// 32 clients query the agent in a loop while `loadgen churn` runs: every query
    /// right, no event lost, the agent's RSS bounded (tests/tests/load.rs).
    Load {
        /// How long the clients and the churn run.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("xtask: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = workspace_root();
    match cli.task {
        Task::Setup => setup()?,
        Task::BuildEbpf => {
            setup()?;
            build_ebpf(&root)?;
        }
        Task::Build => {
            build(&root)?;
        }
        Task::Run { args } => {
            let bin = build(&root)?;
            let status =
                Command::new(&bin).args(args).status().with_context(|| format!("running {}", bin.display()))?;
            return Ok(ExitCode::from(u8::try_from(status.code().unwrap_or(1)).unwrap_or(1)));
        }
        Task::Test { args } => test(&root, &args)?,
        Task::Bench(args) => {
            ensure_bpftrace();
            bench::run(&root, &args)?;
        }
        Task::Loadgen(cmd) => loadgen::run(cmd)?,
        Task::Install(args) => {
            let bin = match &args.bin {
                Some(bin) => bin.clone(),
                None => build(&root)?,
            };
            for f in install::run(&args, &bin)? {
                println!("installed {}", f.display());
            }
            if args.destdir == Path::new("/") && Path::new("/run/systemd/system").exists() {
                // systemd reads unit files at start and on reload only.
                check(Command::new("systemctl").arg("daemon-reload"))?;
                println!("start the agent with `systemctl enable --now {}`", install::UNIT_NAME);
            }
        }
        Task::Drill(Drill::Load { seconds }) => drill_load(&root, seconds)?,
        Task::Fuzz { seconds } => {
            setup()?;
            fuzz::run(&root, seconds)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn workspace_root() -> PathBuf {
    // xtask lives in <root>/xtask.
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn cargo() -> Command {
    Command::new(env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

fn check(cmd: &mut Command) -> Result<()> {
    let status = cmd.status().with_context(|| format!("starting {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn succeeds(cmd: &mut Command) -> bool {
    cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).status().is_ok_and(|s| s.success())
}

fn setup() -> Result<()> {
    // rust-src for nightly: -Z build-std=core needs it.
    let out = Command::new("rustup")
        .args(["component", "list", "--toolchain", "nightly", "--installed"])
        .output()
        .context("running rustup (is rustup installed?)")?;
    if !out.status.success() {
        bail!("no nightly toolchain: run `rustup toolchain install nightly` (the eBPF build needs it)");
    }
    if !String::from_utf8_lossy(&out.stdout).lines().any(|l| l.starts_with("rust-src")) {
        eprintln!("xtask setup: installing rust-src for the nightly toolchain");
        check(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))?;
    }

    // The query build links against musl (see `long_runs` in sockstat-user): the target's
    // standard library, and musl-gcc for the C the crates compile (SQLite, ring).
    let musl = musl_target();
    let out = Command::new("rustup").args(["target", "list", "--installed"]).output().context("running rustup")?;
    if !String::from_utf8_lossy(&out.stdout).lines().any(|l| l == musl) {
        eprintln!("xtask setup: installing the {musl} standard library");
        check(Command::new("rustup").args(["target", "add", &musl]))?;
    }
    if !succeeds(Command::new("musl-gcc").arg("--version")) {
        eprintln!("xtask setup: installing musl-tools (musl-gcc)");
        apt_install(&["musl-tools"], false)?;
    }

    let linker_ok = Command::new("bpf-linker")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains(BPF_LINKER_VERSION));
    if !linker_ok {
        if !succeeds(Command::new("dpkg-query").args(["-W", "-f=${Status}", LLVM_PACKAGE]))
            || !Path::new(LLVM_PREFIX).join("lib").exists()
        {
            eprintln!("xtask setup: installing {LLVM_PACKAGE} (bpf-linker links against system LLVM)");
            apt_install(&[LLVM_PACKAGE], true)?;
        }
        eprintln!("xtask setup: installing bpf-linker {BPF_LINKER_VERSION} against {LLVM_PREFIX}");
        check(
            cargo()
                .args(["install", "bpf-linker", "--locked", "--version", BPF_LINKER_VERSION])
                .args(["--no-default-features", "--features", "llvm-22"])
                .env("LLVM_PREFIX", LLVM_PREFIX),
        )?;
    }

    // What the integration tests run beside sockstat: the real ss and ip, sqlite3 (to
    // check the timeline file), python3 (test processes), util-linux's setpriv, nftables
    // (a rule that drops handshakes' last ACK leaves SYN-RECV request sockets), and
    // Prometheus with its promtool (to scrape the agent's metrics and check them), and
    // nats-server (with JetStream: the fleet export's server).
    let tools: [(&str, &[&str], &str); 9] = [
        ("ss", &["-V"], "iproute2"),
        ("ip", &["-V"], "iproute2"),
        ("sqlite3", &["-version"], "sqlite3"),
        ("python3", &["--version"], "python3"),
        ("setpriv", &["--version"], "util-linux"),
        ("nft", &["--version"], "nftables"),
        ("prometheus", &["--version"], "prometheus"),
        ("promtool", &["--version"], "prometheus"),
        ("nats-server", &["--version"], "nats-server"),
    ];
    let mut missing: Vec<&str> =
        tools.iter().filter(|(tool, args, _)| !succeeds(Command::new(tool).args(*args))).map(|t| t.2).collect();
    missing.dedup();
    if !missing.is_empty() {
        eprintln!("xtask setup: installing {}", missing.join(" "));
        // Recommends would add services the tests do not use (prometheus's node exporter).
        apt_install(&missing, false).context("installing test prerequisites")?;
    }
    Ok(())
}

/// `apt-get update`, then a non-interactive `apt-get install` of `packages`, with the
/// packages they recommend or (`recommends` false) without.
fn apt_install(packages: &[&str], recommends: bool) -> Result<()> {
    check(Command::new("apt-get").args(["update", "-q"]))
        .context("apt-get update failed (needs root and access to Debian's mirrors)")?;
    let mut install = Command::new("apt-get");
    install.args(["install", "-y", "-q"]);
    if !recommends {
        install.arg("--no-install-recommends");
    }
    check(install.args(packages).env("DEBIAN_FRONTEND", "noninteractive"))
        .with_context(|| format!("apt-get install {} failed", packages.join(" ")))
}

/// bpftrace is the benchmark's reference tracer, not a test prerequisite: install it if
/// missing, and if that fails, the benchmark says so in its table.
fn ensure_bpftrace() {
    if succeeds(Command::new("bpftrace").arg("--version")) {
        return;
    }
    eprintln!("xtask bench: installing bpftrace (the reference tracer)");
    let ok = succeeds(Command::new("apt-get").args(["update", "-q"]))
        && succeeds(
            Command::new("apt-get").args(["install", "-y", "-q", "bpftrace"]).env("DEBIAN_FRONTEND", "noninteractive"),
        );
    if !ok {
        eprintln!("xtask bench: could not install bpftrace; its column will say so");
    }
}

fn ebpf_object(root: &Path) -> PathBuf {
    root.join("target").join(BPF_TARGET).join("bpf").join("sockstat-ebpf")
}

fn build_ebpf(root: &Path) -> Result<PathBuf> {
    check(
        Command::new("cargo")
            .current_dir(root)
            .args(["+nightly", "build", "--package", "sockstat-ebpf", "--bin", "sockstat-ebpf"])
            .args(["-Z", "build-std=core", "--target", BPF_TARGET, "--profile", "bpf"])
            // The outer `cargo xtask` sets these for the stable toolchain; the nightly build
            // must pick its own.
            .env_remove("RUSTC")
            .env_remove("RUSTDOC")
            .env_remove("CARGO"),
    )
    .context("building the eBPF program")?;
    let obj = ebpf_object(root);
    if !obj.exists() {
        bail!("eBPF build succeeded but {} is missing", obj.display());
    }
    Ok(obj)
}

/// How both builds are linked: statically, at a fixed address. Every query is a process
/// of its own, and a filtered one is over in about a millisecond: loading three shared
/// libraries (libgcc_s's constructor alone runs a dozen `cpuid`, each a trip to the
/// hypervisor on a virtual machine) and relocating a position-independent binary (a page
/// fault per page of its relocated read-only data) took a third of that. Passed to the
/// binary's crate only (`cargo rustc`): proc macros cannot be linked statically.
const STATIC_EXECUTABLE: [&str; 4] = ["-C", "target-feature=+crt-static", "-C", "relocation-model=static"];

/// The target of the build queries run in: this machine's architecture with musl.
fn musl_target() -> String {
    format!("{}-unknown-linux-musl", env::consts::ARCH)
}

/// Where the two builds are put side by side: `sockstat` (musl) and `sockstat-glibc`
/// (glibc), which the first hands `agent` and `trace` to.
fn dist_dir(root: &Path) -> PathBuf {
    root.join("target").join("dist")
}

/// Builds everything; returns the path of `sockstat` in [`dist_dir`], its glibc sibling
/// `sockstat-glibc` beside it.
fn build(root: &Path) -> Result<PathBuf> {
    setup()?;
    let obj = build_ebpf(root)?;
    let musl = musl_target();
    for target in [None, Some(musl.as_str())] {
        let mut cmd = cargo();
        cmd.current_dir(root).args(["rustc", "--release", "--package", "sockstat", "--bin", "sockstat"]);
        if let Some(t) = target {
            cmd.args(["--target", t]);
        }
        check(cmd.arg("--").args(STATIC_EXECUTABLE).env("SOCKSTAT_EBPF_OBJECT", &obj))
            .with_context(|| format!("building sockstat for {}", target.unwrap_or("glibc")))?;
    }
    let dist = dist_dir(root);
    fs::create_dir_all(&dist).with_context(|| format!("creating {}", dist.display()))?;
    let release = root.join("target").join("release").join("sockstat");
    let release_musl = root.join("target").join(&musl).join("release").join("sockstat");
    put(&release, &dist.join(sockstat::cmd::long_runs::SIBLING))?;
    put(&release_musl, &dist.join("sockstat"))?;
    Ok(dist.join("sockstat"))
}

/// Copies `from` to `to` by way of a temporary file renamed over it: `to` may be running
/// (an agent), and an executable cannot be written while it runs.
fn put(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("new");
    fs::copy(from, &tmp).with_context(|| format!("copying {} to {}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to).with_context(|| format!("renaming {} to {}", tmp.display(), to.display()))
}

fn test(root: &Path, extra: &[OsString]) -> Result<()> {
    // Formatting first: it needs no build and fails in seconds.
    check(cargo().current_dir(root).args(["fmt", "--all", "--check"]))
        .context("the code is not formatted as rustfmt.toml says: run `cargo fmt --all`")?;
    let bin = build(root)?;
    let obj = ebpf_object(root);
    // Lints of the default members, with the object set as the unit tests set it: build.rs
    // embeds it either way, and the same value spares a rebuild between the two.
    check(
        cargo()
            .current_dir(root)
            .args(["clippy", "--all-targets", "--", "-D", "warnings"])
            .env("SOCKSTAT_EBPF_OBJECT", &obj),
    )
    .with_context(|| {
        format!(
            "clippy warns: run `SOCKSTAT_EBPF_OBJECT={} cargo clippy --all-targets -- -D warnings` and fix what it says",
            obj.display()
        )
    })?;
    // The fuzz targets live outside the workspace (cargo-fuzz builds them with nightly and
    // sanitizers); a plain check here keeps them compiling against today's library.
    check(cargo().current_dir(root.join("sockstat-user").join("fuzz")).args(["check", "--bins"]))
        .context("the fuzz targets do not compile: fix sockstat-user/fuzz/fuzz_targets (`cargo check` there)")?;
    // Unit tests (no root needed) of every host crate, including the shared event types.
    check(
        cargo()
            .current_dir(root)
            .args(["test", "--package", "sockstat-ebpf", "--package", "sockstat", "--package", "xtask"])
            .env("SOCKSTAT_EBPF_OBJECT", &obj),
    )
    .context("unit tests failed")?;
    // Root integration tests: they share the kernel (BPF programs, namespaces, ports), so
    // they run one at a time. The tests of ss 7.1's own options run when its ss is at hand.
    let ss71 = oracle::ss71(root)?;
    let targets = |names: &[String]| -> Vec<OsString> {
        if !extra.is_empty() {
            return extra.to_vec();
        }
        names.iter().flat_map(|n| [OsString::from("--test"), OsString::from(n)]).collect()
    };
    let mut first = test_targets(root)?;
    if ss71.is_none() {
        first.retain(|t| *t != oracle::SS71_ONLY);
    }
    let mut pass = cargo();
    pass.current_dir(root)
        .args(["test", "--package", "sockstat-tests", "--release"])
        .args(targets(&first))
        .args(["--", "--test-threads=1"])
        .env("SOCKSTAT_BIN", &bin)
        .env("SOCKSTAT_EBPF_OBJECT", &obj)
        // The install test runs this xtask's `install`.
        .env("XTASK_BIN", env::current_exe().context("locating the xtask binary")?)
        .env_remove("SOCKSTAT_SS_COMPAT");
    if let Some(ss) = &ss71 {
        pass.env("SS_7_1", ss);
    }
    check(&mut pass).context("integration tests failed")?;
    // The same comparisons against ss 7.1: its ss first on PATH, sockstat reproducing it.
    if let Some(ss) = &ss71 {
        eprintln!("xtask test: the comparisons again, against ss 7.1 ({})", ss.display());
        check(
            cargo()
                .current_dir(root)
                .args(["test", "--package", "sockstat-tests", "--release"])
                .args(targets(&oracle::COMPARISONS.iter().map(|&t| t.to_owned()).collect::<Vec<_>>()))
                .args(["--", "--test-threads=1"])
                .env("SOCKSTAT_BIN", &bin)
                .env("SOCKSTAT_EBPF_OBJECT", &obj)
                .env("SS_7_1", ss)
                .env("SOCKSTAT_SS_COMPAT", "7.1")
                .env("PATH", oracle::path_with(root, ss)?),
        )
        .context("integration tests against ss 7.1 failed")?;
    }
    Ok(())
}

/// The integration test targets: the files of tests/tests.
fn test_targets(root: &Path) -> Result<Vec<String>> {
    let dir = root.join("tests").join("tests");
    let mut names = Vec::new();
    for entry in std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "rs")
            && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
        {
            names.push(stem.to_owned());
        }
    }
    names.sort_unstable();
    Ok(names)
}

/// Runs the load drill (an ignored test of the integration tests, too long for `test`)
/// with its figures printed.
fn drill_load(root: &Path, seconds: u64) -> Result<()> {
    let bin = build(root)?;
    check(
        cargo()
            .current_dir(root)
            .args(["test", "--package", "sockstat-tests", "--release", "--test", "load"])
            .args(["--", "--ignored", "--nocapture", "--test-threads=1"])
            .env("SOCKSTAT_BIN", &bin)
            .env("SOCKSTAT_EBPF_OBJECT", ebpf_object(root))
            // The drill makes its churn with `xtask loadgen churn`: this binary.
            .env("SOCKSTAT_XTASK", env::current_exe().context("locating the xtask binary")?)
            .env("SOCKSTAT_DRILL_SECONDS", seconds.to_string()),
    )
    .context("the load drill failed (its figures are above)")
}
