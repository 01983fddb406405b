//! AF_XDP sockets against the real `ss` (iproute2 6.1), byte for byte: `--xdp`, `-A xdp`,
//! `-f xdp`, `-e`, `-m`, `-p`, `-H`, `-O`, a FILTER, and the xdp rows of `-a`, with real
//! XDP sockets in a fresh network namespace: bound (copy mode, with a UMEM, fill and
//! completion rings and RX and/or TX rings) to two ends of a veth pair and to loopback,
//! and one never bound.
//!
//! The kernel lists XDP sockets through sock_diag only with xsk_diag
//! (`CONFIG_XDP_SOCKETS_DIAG`). The test probes it with the request ss sends: with it,
//! ss must list every socket the fixture made (so the comparison is about real rows);
//! without it (this machine's kernel: `# CONFIG_XDP_SOCKETS_DIAG is not set`), the dump
//! answers ENOENT, ss prints no xdp row, and sockstat must print exactly that too (rather
//! than fail on sockets it cannot see). Which case ran is printed.
//!
//! So a second test makes the rows themselves: an LD_PRELOAD stand-in for xsk_diag
//! (`tests/fixtures/fake_xsk_diag.c`, built here with `cc`) answers the AF_XDP dump
//! request of the real ss and of sockstat with the same reply messages (sockstat's ss code
//! in a dynamically linked binary, `src/bin/sockstat-preload.rs`: the release binary is
//! static and loads no preloaded library), built here as
//! net/xdp/xsk_diag.c builds them (every attribute; bound to a veth and to lo, unbound,
//! bound to an interface index that does not exist, a queue id above `INT_MAX`, a umem
//! larger than 4 GiB, zero-copy), and the two outputs are compared byte for byte for the
//! same options, `-e -O` included (ss 6.1 prints ` tumem(` there).
//!
//! Excluded from the comparison: the netlink socket of the querying process itself in
//! `-a` (see `without_self`). A netlink socket of the test process (`NAME/PID`, NAME
//! its 15-character comm) keeps that line from setting the width of its column.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use sockstat_tests::{NetNs, compare_all, netlink_socket, without_self};

const FRAME: usize = 4096;
const FRAMES: usize = 16;

fn check(what: &str, rc: libc::c_int) {
    assert!(rc >= 0, "{what}: {}", std::io::Error::last_os_error());
}

fn set_u32(fd: &OwnedFd, opt: libc::c_int, v: u32) {
    // SAFETY: a valid fd and a pointer to a live u32 of the size passed.
    let rc = unsafe { libc::setsockopt(fd.as_raw_fd(), libc::SOL_XDP, opt, (&raw const v).cast(), 4) };
    check(&format!("setsockopt(SOL_XDP, {opt})"), rc);
}

/// An AF_XDP socket; bound to `ifindex` queue 0 in copy mode when given, with a UMEM of
/// 16 frames, fill/completion rings of `fill`/`comp` entries, and the RX and TX rings
/// given (entries).
fn xdp_socket(bind: Option<u32>, fill: u32, comp: u32, rx: Option<u32>, tx: Option<u32>) -> OwnedFd {
    // SAFETY: plain socket(2); the fd is owned from here on.
    let raw = unsafe { libc::socket(libc::AF_XDP, libc::SOCK_RAW, 0) };
    check("socket(AF_XDP)", raw);
    // SAFETY: `raw` is a fresh fd nobody else owns.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    let Some(ifindex) = bind else { return fd };
    // SAFETY: an anonymous private mapping; it is never unmapped (the kernel pins the
    // UMEM pages for the socket's life, and the test process ends soon).
    let area = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            FRAME * FRAMES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    assert_ne!(area, libc::MAP_FAILED, "mmap: {}", std::io::Error::last_os_error());
    let reg = libc::xdp_umem_reg {
        addr: area as u64,
        len: (FRAME * FRAMES) as u64,
        chunk_size: FRAME as u32,
        headroom: 0,
        flags: 0,
        tx_metadata_len: 0,
    };
    // SAFETY: a valid fd and a live xdp_umem_reg of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            libc::SOL_XDP,
            libc::XDP_UMEM_REG,
            (&raw const reg).cast(),
            size_of::<libc::xdp_umem_reg>() as u32,
        )
    };
    check("setsockopt(XDP_UMEM_REG)", rc);
    set_u32(&fd, libc::XDP_UMEM_FILL_RING, fill);
    set_u32(&fd, libc::XDP_UMEM_COMPLETION_RING, comp);
    if let Some(n) = rx {
        set_u32(&fd, libc::XDP_RX_RING, n);
    }
    if let Some(n) = tx {
        set_u32(&fd, libc::XDP_TX_RING, n);
    }
    let sa = libc::sockaddr_xdp {
        sxdp_family: libc::AF_XDP as u16,
        sxdp_flags: libc::XDP_COPY,
        sxdp_ifindex: ifindex,
        sxdp_queue_id: 0,
        sxdp_shared_umem_fd: 0,
    };
    // SAFETY: a valid fd and a live sockaddr_xdp of the size passed.
    let rc = unsafe { libc::bind(fd.as_raw_fd(), (&raw const sa).cast(), size_of::<libc::sockaddr_xdp>() as u32) };
    check(&format!("bind(AF_XDP, ifindex {ifindex}, queue 0, XDP_COPY)"), rc);
    fd
}

fn ifindex(name: &str) -> u32 {
    let c = std::ffi::CString::new(name).expect("no NUL");
    // SAFETY: a NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    assert_ne!(i, 0, "if_nametoindex({name})");
    i
}

/// Whether the kernel answers ss's XDP dump (xsk_diag present), asked from the calling
/// thread's namespace with the request ss's `xdp_show` sends.
fn has_xsk_diag() -> bool {
    // SAFETY: plain socket(2).
    let raw = unsafe { libc::socket(libc::AF_NETLINK, libc::SOCK_RAW | libc::SOCK_CLOEXEC, libc::NETLINK_SOCK_DIAG) };
    check("socket(NETLINK_SOCK_DIAG)", raw);
    // SAFETY: `raw` is a fresh fd.
    let fd = unsafe { OwnedFd::from_raw_fd(raw) };
    // nlmsghdr: len 36, SOCK_DIAG_BY_FAMILY (20), NLM_F_REQUEST | NLM_F_DUMP, seq 1, pid 0;
    // xdp_diag_req: AF_XDP, 0, pad, ino 0, show 0x1f, cookie 0.
    let mut req = Vec::new();
    req.extend_from_slice(&36u32.to_ne_bytes());
    req.extend_from_slice(&20u16.to_ne_bytes());
    req.extend_from_slice(&(0x01u16 | 0x300).to_ne_bytes());
    req.extend_from_slice(&1u32.to_ne_bytes());
    req.extend_from_slice(&0u32.to_ne_bytes());
    req.extend_from_slice(&[44, 0, 0, 0, 0, 0, 0, 0]);
    req.extend_from_slice(&0x1fu32.to_ne_bytes());
    req.extend_from_slice(&[0; 8]);
    // SAFETY: a valid fd and buffer.
    check("send", unsafe { libc::send(fd.as_raw_fd(), req.as_ptr().cast(), req.len(), 0) } as i32);
    let mut buf = vec![0u8; 65536];
    // SAFETY: a valid fd and a buffer of the length passed.
    let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), 0) };
    check("recv", n as i32);
    // NLMSG_ERROR (2) with -ENOENT: no handler for AF_XDP.
    let kind = u16::from_ne_bytes([buf[4], buf[5]]);
    let errno = i32::from_ne_bytes([buf[16], buf[17], buf[18], buf[19]]);
    !(kind == 2 && errno == -libc::ENOENT)
}

#[test]
fn xdp_sockets_are_byte_identical_to_ss() {
    let ns = NetNs::new("xdp");
    ns.ip(&["link", "add", "xd0", "type", "veth", "peer", "name", "xd1"]);
    ns.ip(&["link", "set", "xd0", "up"]);
    ns.ip(&["link", "set", "xd1", "up"]);
    let (fds, supported, _netlink) = ns.enter(|| {
        let netlink = netlink_socket(libc::NETLINK_ROUTE, 0, false);
        let fds = vec![
            // RX and TX on one end of the veth pair, RX only on the other, TX only on lo,
            // and one socket never bound.
            xdp_socket(Some(ifindex("xd0")), 64, 32, Some(128), Some(256)),
            xdp_socket(Some(ifindex("xd1")), 8, 8, Some(16), None),
            xdp_socket(Some(ifindex("lo")), 32, 64, None, Some(32)),
            xdp_socket(None, 0, 0, None, None),
        ];
        (fds, has_xsk_diag(), netlink)
    });
    let rows = |text: &str| text.lines().filter(|l| l.starts_with("xdp ")).count();
    let listed = rows(&ns.ss(&["-a"]));
    if supported {
        eprintln!("xsk_diag present: ss lists {listed} xdp sockets");
        assert_eq!(ns.ss(&["--xdp", "-H"]).lines().count(), fds.len(), "ss lists every XDP socket of the fixture");
    } else {
        eprintln!(
            "this kernel has no xsk_diag (CONFIG_XDP_SOCKETS_DIAG): the {} XDP sockets exist \
             but neither ss nor sockstat can list them; comparing that",
            fds.len()
        );
        assert_eq!(listed, 0, "ss printed xdp rows without xsk_diag");
    }
    compare_all(
        &ns,
        &[
            &["--xdp"],
            &["-A", "xdp"],
            &["-f", "xdp"],
            &["--xdp", "-e"],
            &["--xdp", "-m"],
            &["--xdp", "-e", "-m", "-O"],
            &["--xdp", "-O"],
            &["--xdp", "-H"],
            &["--xdp", "-p"],
            &["--xdp", "-n"],
            &["--xdp", "dev", "=", "xd0"],
            &["--xdp", "state", "listening"],
            &["-a"],
            &["-a", "-e"],
        ],
        without_self,
    );
    // Nothing to list must not be an error either: every socket closed.
    drop(fds);
    compare_all(&ns, &[&["--xdp"], &["-a"]], without_self);
}

/// One sock_diag reply message: `struct nlmsghdr` (`SOCK_DIAG_BY_FAMILY`, `NLM_F_MULTI`;
/// the stand-in sets seq and pid) and `payload`.
fn nlmsg(kind: u16, payload: &[u8]) -> Vec<u8> {
    let mut m = Vec::new();
    m.extend_from_slice(&(16 + payload.len() as u32).to_ne_bytes());
    m.extend_from_slice(&kind.to_ne_bytes());
    m.extend_from_slice(&2u16.to_ne_bytes());
    m.extend_from_slice(&[0; 8]);
    m.extend_from_slice(payload);
    m.resize(m.len().next_multiple_of(4), 0);
    m
}

fn rtattr(kind: u16, data: &[u8]) -> Vec<u8> {
    let mut a = Vec::new();
    a.extend_from_slice(&(4 + data.len() as u16).to_ne_bytes());
    a.extend_from_slice(&kind.to_ne_bytes());
    a.extend_from_slice(data);
    a.resize(a.len().next_multiple_of(4), 0);
    a
}

fn u32s(w: &[u32]) -> Vec<u8> {
    w.iter().flat_map(|v| v.to_ne_bytes()).collect()
}

struct FakeXdp {
    inode: u32,
    cookie: u64,
    info: Option<(u32, u32)>,
    uid: Option<u32>,
    rx: Option<u32>,
    tx: Option<u32>,
    /// size, then id, num_pages, chunk_size, headroom, ifindex, queue_id, flags, refs.
    umem: Option<(u64, [u32; 8])>,
    fr: Option<u32>,
    cr: Option<u32>,
    meminfo: Option<[u32; 9]>,
    stats: Option<[u64; 6]>,
}

/// `struct xdp_diag_msg` and its attributes in xsk_diag_fill()'s order.
fn xdp_reply(x: &FakeXdp) -> Vec<u8> {
    let mut p = vec![44, libc::SOCK_RAW as u8, 0, 0];
    p.extend_from_slice(&x.inode.to_ne_bytes());
    p.extend_from_slice(&u32s(&[x.cookie as u32, (x.cookie >> 32) as u32]));
    if let Some((ifindex, queue)) = x.info {
        p.extend(rtattr(1, &u32s(&[ifindex, queue])));
    }
    if let Some(uid) = x.uid {
        p.extend(rtattr(2, &u32s(&[uid])));
    }
    for (kind, ring) in [(3, x.rx), (4, x.tx)] {
        if let Some(n) = ring {
            p.extend(rtattr(kind, &u32s(&[n])));
        }
    }
    if let Some((size, words)) = x.umem {
        let mut u = size.to_ne_bytes().to_vec();
        u.extend(u32s(&words));
        p.extend(rtattr(5, &u));
    }
    for (kind, ring) in [(6, x.fr), (7, x.cr)] {
        if let Some(n) = ring {
            p.extend(rtattr(kind, &u32s(&[n])));
        }
    }
    if let Some(m) = x.meminfo {
        p.extend(rtattr(8, &u32s(&m)));
    }
    if let Some(st) = x.stats {
        p.extend(rtattr(9, &st.iter().flat_map(|v| v.to_ne_bytes()).collect::<Vec<u8>>()));
    }
    nlmsg(20, &p)
}

/// Builds the stand-in with `cc` (Rust's own linker driver, so present wherever the tests
/// build) into `dir`.
fn build_fake(dir: &std::path::Path) -> std::path::PathBuf {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fake_xsk_diag.c");
    let so = dir.join("fake_xsk_diag.so");
    let out = std::process::Command::new("cc")
        .args(["-shared", "-fPIC", "-O2", "-Wall", "-Werror", "-o"])
        .arg(&so)
        .arg(&src)
        .arg("-ldl")
        .output()
        .unwrap_or_else(|e| panic!("cc: {e} (apt-get install gcc)"));
    assert!(out.status.success(), "cc {}: {}", src.display(), String::from_utf8_lossy(&out.stderr));
    so
}

#[test]
fn xdp_rows_are_byte_identical_to_ss_on_the_same_replies() {
    let ns = NetNs::new("xdpfake");
    ns.ip(&["link", "add", "xd0", "type", "veth", "peer", "name", "xd1"]);
    let (xd0, _netlink) = ns.enter(|| (ifindex("xd0"), netlink_socket(libc::NETLINK_ROUTE, 0, false)));
    let sockets = [
        // Bound to lo queue 0, RX and TX rings, a 16-frame umem, zero statistics.
        FakeXdp {
            inode: 40001,
            cookie: 0x1234,
            info: Some((1, 0)),
            uid: Some(0),
            rx: Some(128),
            tx: Some(256),
            umem: Some((65536, [0, 16, 4096, 0, 1, 0, 0, 1])),
            fr: Some(64),
            cr: Some(32),
            meminfo: Some([0, 212_992, 0, 212_992, 0, 0, 0, 0, 0]),
            stats: Some([0; 6]),
        },
        // Bound to the veth, queue 3, a user's, TX only, zero-copy (and an unknown flag),
        // a umem over 4 GiB, data queued, counters.
        FakeXdp {
            inode: 40002,
            cookie: 0xffff_0000_0000_0001,
            info: Some((xd0, 3)),
            uid: Some(1000),
            rx: None,
            tx: Some(2048),
            umem: Some((1 << 33, [7, 2_097_152, 4096, 256, xd0, 3, 3, 2])),
            fr: Some(4096),
            cr: Some(4096),
            meminfo: Some([2304, 212_992, 768, 212_992, 4096, 1, 0, 0, 2]),
            stats: Some([1, 2, 3, 4, 5, u64::MAX]),
        },
        // Never bound: interface 0, no rings, no umem.
        FakeXdp {
            inode: 40003,
            cookie: 0x42,
            info: Some((0, 0)),
            uid: Some(0),
            rx: None,
            tx: None,
            umem: None,
            fr: None,
            cr: None,
            meminfo: Some([0, 212_992, 0, 212_992, 0, 0, 0, 0, 0]),
            stats: Some([0; 6]),
        },
        // An interface index with no device, a queue id above INT_MAX, no meminfo, no
        // stats, no uid attribute.
        FakeXdp {
            inode: 40004,
            cookie: 0,
            info: Some((99, u32::MAX)),
            uid: None,
            rx: Some(8),
            tx: None,
            umem: None,
            fr: None,
            cr: None,
            meminfo: None,
            stats: None,
        },
    ];
    let dir = std::env::temp_dir().join(format!("sockstat-xdp-fake-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let so = build_fake(&dir);
    let mut blob: Vec<u8> = sockets.iter().flat_map(xdp_reply).collect();
    blob.extend(nlmsg(3, &0i32.to_ne_bytes()));
    let replies = dir.join("replies");
    std::fs::write(&replies, &blob).expect("write the replies");

    let run = |program: &std::path::Path, args: &[&str]| -> String {
        let out =
            ns.command(program).args(args).env("LD_PRELOAD", &so).env("FAKE_XSK_DIAG", &replies).output().expect("run");
        assert!(out.status.success(), "{} {args:?}: {}", program.display(), String::from_utf8_lossy(&out.stderr));
        without_self(&String::from_utf8(out.stdout).expect("UTF-8"))
    };
    let ss = std::path::PathBuf::from("ss");
    let sockstat = std::path::PathBuf::from(env!("CARGO_BIN_EXE_sockstat-preload"));
    let cases: &[&[&str]] = &[
        &["--xdp"],
        &["-A", "xdp"],
        &["-f", "xdp"],
        &["--xdp", "-e"],
        &["--xdp", "-m"],
        &["--xdp", "-e", "-m"],
        &["--xdp", "-O"],
        &["--xdp", "-e", "-O"],
        &["--xdp", "-e", "-m", "-O"],
        &["--xdp", "-H"],
        &["--xdp", "-n"],
        &["--xdp", "-p"],
        &["--xdp", "dev", "=", "xd0"],
        &["--xdp", "sport", "=", ":3"],
        &["--xdp", "not", "dev", "=", "lo"],
        &["--xdp", "state", "listening"],
        &["-a"],
        &["-a", "-e"],
    ];
    // The stand-in answers: ss prints one line per fixture socket.
    assert_eq!(run(&ss, &["--xdp", "-H"]).lines().count(), sockets.len(), "ss did not read the stand-in's replies");
    let mut failures = Vec::new();
    for args in cases {
        let theirs = run(&ss, args);
        let ours = run(&sockstat, args);
        if theirs != ours {
            failures.push(format!("{args:?}\n--- ss:\n{theirs}--- sockstat:\n{ours}"));
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
