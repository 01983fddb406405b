//! `cargo xtask install`: the binary, the agent's systemd unit, man pages and shell
//! completions, under DESTDIR + PREFIX, in the places each tool looks.
//!
//! PREFIX is `/usr/local` by default: what a build from source installs belongs there
//! (FHS), away from the package manager's `/usr`, and systemd, man, bash-completion,
//! zsh and fish all look under it. Man pages and completions are generated from the
//! clap definitions (`sockstat::cli::manual`): ss's options with the usage text's help,
//! and sockstat's commands.

use std::{
    fs,
    io::Write,
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, Result, bail};
use clap::Args;
use clap_complete::Shell;

/// The unit, with `@BINDIR@` where the binary's directory goes.
const UNIT: &str = include_str!("../install/sockstat-agent.service");
pub const UNIT_NAME: &str = "sockstat-agent.service";

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// Install under this directory instead of `/` (staging, packaging, tests).
    #[arg(long, default_value = "/")]
    pub destdir: PathBuf,
    /// The installed layout's prefix: PREFIX/bin, PREFIX/lib/systemd/system,
    /// PREFIX/share/{man,bash-completion,zsh,fish}.
    #[arg(long, default_value = "/usr/local")]
    pub prefix: PathBuf,
    /// Install this sockstat binary (and its sockstat-glibc sibling, if beside it) rather than
    /// building target/dist/sockstat.
    #[arg(long)]
    pub bin: Option<PathBuf>,
}

/// Where each file goes, relative to DESTDIR.
struct Layout {
    bin: PathBuf,
    unit: PathBuf,
    man1: PathBuf,
    bash: PathBuf,
    zsh: PathBuf,
    fish: PathBuf,
}

impl Layout {
    fn new(prefix: &Path) -> Layout {
        let share = prefix.join("share");
        Layout {
            bin: prefix.join("bin"),
            // systemd reads /usr/lib/systemd/system and /usr/local/lib/systemd/system.
            unit: prefix.join("lib/systemd/system"),
            man1: share.join("man/man1"),
            bash: share.join("bash-completion/completions"),
            // Debian's zsh reads /usr/local/share/zsh/site-functions and, for packages,
            // /usr/share/zsh/vendor-completions.
            zsh: share.join(if prefix == Path::new("/usr") { "zsh/vendor-completions" } else { "zsh/site-functions" }),
            fish: share.join("fish/vendor_completions.d"),
        }
    }
}

/// Installs `bin` (the built sockstat) as `args` say; returns the files written.
pub fn run(args: &InstallArgs, bin: &Path) -> Result<Vec<PathBuf>> {
    if !args.prefix.is_absolute() {
        bail!("--prefix {} is not an absolute path", args.prefix.display());
    }
    if !bin.is_file() {
        bail!("{} is not a file: build it first (`cargo xtask build`) or pass another --bin", bin.display());
    }
    let layout = Layout::new(&args.prefix);
    let under = |p: &Path| args.destdir.join(p.strip_prefix("/").unwrap_or(p));
    let mut written = Vec::new();

    let target = under(&layout.bin).join("sockstat");
    install_file(&target, &fs::read(bin).with_context(|| format!("reading {}", bin.display()))?, 0o755)?;
    written.push(target);
    // The glibc build `agent` and `trace` run in, when the binary has one beside it.
    let sibling = sockstat::cmd::long_runs::sibling_of(bin);
    if sibling.is_file() {
        let target = under(&layout.bin).join(sockstat::cmd::long_runs::SIBLING);
        install_file(&target, &fs::read(&sibling).with_context(|| format!("reading {}", sibling.display()))?, 0o755)?;
        written.push(target);
    }

    let unit = UNIT.replace("@BINDIR@", &layout.bin.to_string_lossy());
    let target = under(&layout.unit).join(UNIT_NAME);
    install_file(&target, unit.as_bytes(), 0o644)?;
    written.push(target);

    for (name, page) in man_pages()? {
        let target = under(&layout.man1).join(name);
        install_file(&target, &page, 0o644)?;
        written.push(target);
    }

    for (shell, dir, name) in [
        (Shell::Bash, &layout.bash, "sockstat"),
        (Shell::Zsh, &layout.zsh, "_sockstat"),
        (Shell::Fish, &layout.fish, "sockstat.fish"),
    ] {
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut sockstat::cli::manual::command(), "sockstat", &mut script);
        let target = under(dir).join(name);
        install_file(&target, &script, 0o644)?;
        written.push(target);
    }
    Ok(written)
}

/// `sockstat.1` and one page per command (`sockstat-agent.1` ...), as (file name, roff).
fn man_pages() -> Result<Vec<(String, Vec<u8>)>> {
    let cmd = sockstat::cli::manual::command();
    let source = format!("sockstat {}", env!("CARGO_PKG_VERSION"));
    let mut pages = Vec::new();
    for sub in cmd.get_subcommands() {
        // A command's page is named and titled `sockstat-COMMAND`, as git's are.
        let name = format!("sockstat-{}", sub.get_name());
        let sub = sub.clone().name(name.clone()).bin_name(format!("sockstat {}", sub.get_name())).display_name(name);
        let man = clap_mangen::Man::new(sub).source(source.clone());
        let mut roff = Vec::new();
        man.render(&mut roff).context("rendering a man page")?;
        pages.push((man.get_filename(), roff));
    }
    // sockstat.1: clap's sections, with FILTER's grammar before the version.
    let man = clap_mangen::Man::new(cmd).source(source);
    let mut roff = Vec::new();
    man.render_title(&mut roff)?;
    man.render_name_section(&mut roff)?;
    man.render_synopsis_section(&mut roff)?;
    man.render_description_section(&mut roff)?;
    man.render_options_section(&mut roff)?;
    man.render_subcommands_section(&mut roff)?;
    filter_section().to_writer(&mut roff)?;
    man.render_version_section(&mut roff)?;
    pages.push((man.get_filename(), roff));
    Ok(pages)
}

/// FILTER's grammar as the usage text aligns it (no filling), and examples.
fn filter_section() -> roff::Roff {
    let mut r = roff::Roff::new();
    r.control("SH", ["FILTER"]);
    r.text([roff::roman("As in ss(8):")]);
    r.control("PP", []).control("nf", []);
    for line in sockstat::cli::manual::filter_grammar() {
        r.text([roff::roman(line)]);
    }
    r.control("fi", []).control("PP", []);
    r.text([roff::roman("Examples:")]);
    r.control("PP", []).control("nf", []);
    for example in [
        "sockstat -tan state established '( dport = :443 or sport = :443 )'",
        "sockstat -tln",
        "sockstat --at -5m -tan",
    ] {
        r.text([roff::roman(example)]);
    }
    r.control("fi", []);
    r
}

/// Writes `bytes` to `target` with `mode`, through a temporary file renamed over it: a
/// running sockstat keeps its old binary, and nothing sees a half-written file.
fn install_file(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = target.parent().context("an install target has a directory")?;
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(".xtask-new");
    let tmp = PathBuf::from(tmp);
    let mut f = fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
    f.write_all(bytes).with_context(|| format!("writing {}", tmp.display()))?;
    f.set_permissions(fs::Permissions::from_mode(mode)).with_context(|| format!("chmod {}", tmp.display()))?;
    drop(f);
    fs::rename(&tmp, target).with_context(|| format!("renaming {} to {}", tmp.display(), target.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_installed_binary_with_the_capabilities_the_agent_uses() {
        let unit = UNIT.replace("@BINDIR@", "/usr/local/bin");
        assert!(unit.contains("\nExecStart=/usr/local/bin/sockstat agent "));
        assert!(!unit.contains('@'), "a placeholder is left: {unit}");
        let caps = unit.lines().find_map(|l| l.strip_prefix("CapabilityBoundingSet=")).expect("bounded capabilities");
        let mut caps: Vec<&str> = caps.split_whitespace().collect();
        caps.sort_unstable();
        assert_eq!(caps, ["CAP_BPF", "CAP_NET_ADMIN", "CAP_PERFMON", "CAP_SYS_ADMIN", "CAP_SYS_PTRACE"]);
        assert!(!unit.lines().any(|l| l.starts_with("PrivateNetwork")), "the agent must see the host's sockets");
    }

    #[test]
    fn man_pages_cover_ss_options_filter_and_every_command() {
        let pages = man_pages().unwrap();
        let names: Vec<&str> = pages.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            ["sockstat-agent.1", "sockstat-history.1", "sockstat-status.1", "sockstat-trace.1", "sockstat.1"]
        );
        let main = String::from_utf8(pages[4].1.clone()).unwrap();
        for needle in ["\\-\\-numeric", "\\-\\-processes", "\\-\\-source", "STATE\\-FILTER", "agent"] {
            assert!(main.contains(needle), "sockstat.1 lacks {needle}");
        }
        let agent = String::from_utf8(pages[0].1.clone()).unwrap();
        assert!(agent.contains("sockstat\\-agent"), "{agent}");
        assert!(agent.contains("\\-\\-ringbuf\\-bytes"), "{agent}");
    }
}
