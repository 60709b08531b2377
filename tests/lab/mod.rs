//! Shared lab harness for netheal's namespace tests (`mod lab;`). It owns three things: the
//! decision whether a test may run here (root, tools), throw-away network namespaces joined by
//! veth pairs that are torn down even when a test panics, and the real `netheal` binary run
//! inside a namespace with its log captured line by line, each line stamped with the `Instant`
//! it arrived so tests can measure detection, heal and backoff times.
//!
//! Network rule: packets stay inside namespaces this harness created. Both ends of every veth
//! live in the test's own namespaces (never the root namespace), and addresses come only from
//! 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32.
//!
//! No `unsafe`, no extra crates: signals go through `sh -c kill`, the effective uid comes from
//! /proc/self/status.
#![allow(dead_code)] // every test binary uses a different subset

pub mod router;

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

/// Address of the watched (host) side of the standard pair.
pub const HOST4: &str = "198.51.100.2";
/// Address of the peer side of the standard pair; the usual probe target.
pub const PEER4: &str = "198.51.100.1";

/// One captured log line and the moment the reader thread received it.
pub type Line = (Instant, String);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_netheal")
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Effective uid, read from /proc so the tests need no `unsafe` and no extra crate.
pub fn euid() -> Option<u32> {
    let status = fs::read_to_string("/proc/self/status").ok()?;
    let uids = status.lines().find_map(|l| l.strip_prefix("Uid:"))?;
    uids.split_whitespace().nth(1)?.parse().ok()
}

/// Absolute path of `tool`, looked up in PATH and the sbin directories (root's PATH under some
/// runners lacks them).
pub fn which(tool: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin", "/usr/bin", "/bin"])
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(tool))
        .find(|p| {
            fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        });
    found
}

/// The one place that decides whether a namespace test runs: true when this process is root
/// and every tool is present. Otherwise it skips (prints a line, returns false), except with
/// `CI=true`, where a skip would hide a broken runner: then it panics.
pub fn ready(test: &str, tools: &[&str]) -> bool {
    let mut missing: Vec<String> = Vec::new();
    if euid() != Some(0) {
        missing.push("root".into());
    }
    for tool in ["ip"].iter().chain(tools) {
        if which(tool).is_none() {
            missing.push(format!("`{tool}`"));
        }
    }
    if missing.is_empty() {
        return true;
    }
    let what = missing.join(", ");
    let test = std::thread::current()
        .name()
        .map_or_else(|| test.to_owned(), str::to_owned);
    if in_ci() {
        panic!("{test}: CI=true, so this namespace test may not skip, but it needs {what}");
    }
    eprintln!("SKIP {test}: needs {what} (set CI=true to make this a failure)");
    false
}

/// Options that keep a test's netheal from touching the machine outside its namespaces: no
/// status file under /run (a directory every namespace shares), no inhibit file read from
/// there (an admin's `netheal --inhibit` on this machine must not hold a test's heals back),
/// and no boot grace (a CI machine that booted a minute ago must not delay a test's heals).
/// A binary whose --help does not mention an option (older ones, when bisecting) gets none.
pub fn quiet_args() -> &'static [&'static str] {
    static ARGS: OnceLock<Vec<&'static str>> = OnceLock::new();
    ARGS.get_or_init(|| {
        let help = Command::new(bin()).arg("--help").output();
        let help = help.map_or(String::new(), |o| {
            String::from_utf8_lossy(&o.stdout).into_owned()
        });
        let mut args = Vec::new();
        if help.contains("--status-file") {
            args.extend(["--status-file", "none"]);
        }
        if help.contains("--inhibit-file") {
            args.extend(["--inhibit-file", "none", "--boot-grace", "0"]);
        }
        args
    })
}

/// The suites about the heal ladder's mechanics (netns, netlink, reboot, daemon_features)
/// break the link with `link set down` or a carrier loss because it is quick and certain; the
/// layer policies (link-up at once, carrier-wait: tests/judgement.rs) would stand between that
/// fault and the ladder they test, so those suites pin the ladder for both.
pub const LADDER: &[&str] = &["--on-admin-down", "heal", "--carrier-wait", "0"];

/// An nftables ruleset: table `inet TABLE` with one input-hook chain holding `rule`. Written over
/// several lines: the one-line form is a syntax error on Debian 12's nft. Load it with
/// [`Lab::nft`].
pub fn input_rule(table: &str, rule: &str) -> String {
    format!(
        "table inet {table} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority 0; policy accept;\n\
         \t\t{rule}\n\
         \t}}\n\
         }}\n"
    )
}

/// Poll `cond` every 20 ms until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(20));
    }
}

/// Seconds between two instants, for printing and comparing.
pub fn secs(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64()
}

/// Parse a duration as netheal prints it (`1.2s`, `250ms`, `5m`, `1h`, bare = seconds).
pub fn parse_dur(s: &str) -> Option<f64> {
    let s = s.trim().trim_end_matches([',', ';', ')']);
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 0.001)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1.0)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60.0)
    } else if let Some(n) = s.strip_suffix('h') {
        (n, 3600.0)
    } else {
        (s, 1.0)
    };
    num.parse::<f64>().ok().map(|v| v * mult)
}

/// The duration printed right after `word` in `line`, e.g. `after` in `exited 0 after 1.2s`.
pub fn dur_after(line: &str, word: &str) -> Option<f64> {
    let rest = &line[line.find(word)? + word.len()..];
    parse_dur(rest.split_whitespace().next()?)
}

/// Run a command to completion; never panics on failure (see [`must`]).
pub fn run(args: &[&str]) -> Output {
    Command::new(args[0])
        .args(&args[1..])
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {args:?}: {e}"))
}

/// Run a command that must succeed; returns its stdout.
pub fn must(args: &[&str]) -> String {
    let out = run(args);
    assert!(
        out.status.success(),
        "command {args:?} failed ({}): {}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Send a signal by name (`TERM`, `USR1`, ...) to a pid, or to a process group with a negative
/// number, through the shell's builtin `kill` (present everywhere, needs no `unsafe`).
pub fn kill(sig: &str, target: i64) -> bool {
    Command::new("sh")
        .args(["-c", &format!("kill -s {sig} -- {target} 2>/dev/null")])
        .status()
        .is_ok_and(|s| s.success())
}

/// Fields of /proc/PID/stat after the command name: (state, ppid, pgid).
pub fn proc_stat(pid: u32) -> Option<(char, u32, u32)> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut f = rest.split_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    let pgid = f.next()?.parse().ok()?;
    Some((state, ppid, pgid))
}

/// Live (not zombie) processes whose process group is `pgid`.
pub fn live_in_group(pgid: u32) -> Vec<u32> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(
            |&pid| matches!(proc_stat(pid), Some((s, _, g)) if g == pgid && s != 'Z' && s != 'X'),
        )
        .collect()
}

/// A throw-away lab: namespaces, a temp directory, background helpers. Dropping it kills every
/// process left in its namespaces and deletes them (which deletes their veths).
///
/// [`Lab::pair`] builds the standard topology: namespace `host` (netheal runs here; watched
/// veth `ifc` with 198.51.100.2/24 and 2001:db8:N::2/64) and namespace `peer` (198.51.100.1/24,
/// 2001:db8:N::1/64) on the other end, loopback up in both.
pub struct Lab {
    /// `nh` + pid + tag: unique per test and per test process; every name starts with it.
    pub prefix: String,
    /// Private temp directory (mode 0755 so an unprivileged user can traverse it).
    pub dir: PathBuf,
    pub host: String,
    pub peer: String,
    /// Watched interface in `host`.
    pub ifc: String,
    /// Its other end, in `peer`.
    pub pifc: String,
    /// N in 2001:db8:N::/64.
    pub net6: u16,
    namespaces: Vec<String>,
    background: Vec<Child>,
}

impl Lab {
    /// An empty lab, or None when the test must skip (see [`ready`]). `tag` is 1-4 characters,
    /// unique among the tests of one binary.
    pub fn new(tag: &str, tools: &[&str]) -> Option<Lab> {
        if !ready(tag, tools) {
            return None;
        }
        let prefix = format!("nh{}{}", std::process::id(), tag);
        assert!(
            prefix.len() < 15,
            "prefix {prefix} leaves no room for a suffix"
        );
        let dir = std::env::temp_dir().join(format!("{prefix}.lab"));
        let _ = fs::remove_dir_all(&dir); // not fatal: a leftover of a crashed run, or nothing
        fs::create_dir_all(&dir).expect("create lab temp dir");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).expect("chmod lab dir");
        Some(Lab {
            prefix,
            dir,
            host: String::new(),
            peer: String::new(),
            ifc: String::new(),
            pifc: String::new(),
            net6: 0,
            namespaces: Vec::new(),
            background: Vec::new(),
        })
    }

    /// The standard host/peer pair with addresses (see the type's documentation).
    pub fn pair(tag: &str, net6: u16, tools: &[&str]) -> Option<Lab> {
        let mut lab = Lab::new(tag, tools)?;
        lab.net6 = net6;
        lab.host = lab.add_ns("h");
        lab.peer = lab.add_ns("p");
        lab.ifc = lab.name("a");
        lab.pifc = lab.name("b");
        let (host, peer, ifc, pifc) = (
            lab.host.clone(),
            lab.peer.clone(),
            lab.ifc.clone(),
            lab.pifc.clone(),
        );
        lab.veth(&host, &ifc, &peer, &pifc);
        lab.addrs(&host, &ifc, &[&format!("{HOST4}/24"), &lab.host6_cidr()]);
        lab.addrs(&peer, &pifc, &[&format!("{PEER4}/24"), &lab.peer6_cidr()]);
        Some(lab)
    }

    /// `prefix` + `suffix`, checked against IFNAMSIZ.
    pub fn name(&self, suffix: &str) -> String {
        let n = format!("{}{}", self.prefix, suffix);
        assert!(n.len() <= 15, "name {n} longer than 15 characters");
        n
    }

    pub fn peer6(&self) -> String {
        format!("2001:db8:{:x}::1", self.net6)
    }
    pub fn host6(&self) -> String {
        format!("2001:db8:{:x}::2", self.net6)
    }
    pub fn peer6_cidr(&self) -> String {
        format!("{}/64", self.peer6())
    }
    pub fn host6_cidr(&self) -> String {
        format!("{}/64", self.host6())
    }

    /// Create namespace `prefix+suffix` with loopback up; it is deleted when the lab drops.
    pub fn add_ns(&mut self, suffix: &str) -> String {
        let ns = format!("{}{}", self.prefix, suffix);
        if run(&["ip", "netns", "del", &ns]).status.success() {
            eprintln!("note: removed a stale namespace {ns}");
        }
        must(&["ip", "netns", "add", &ns]);
        self.namespaces.push(ns.clone());
        must(&["ip", "-n", &ns, "link", "set", "lo", "up"]);
        ns
    }

    /// A veth pair created directly inside the namespaces (never in the root namespace), both
    /// ends up.
    pub fn veth(&self, ns_a: &str, a: &str, ns_b: &str, b: &str) {
        must(&[
            "ip", "-n", ns_a, "link", "add", a, "type", "veth", "peer", "name", b, "netns", ns_b,
        ]);
        must(&["ip", "-n", ns_a, "link", "set", a, "up"]);
        must(&["ip", "-n", ns_b, "link", "set", b, "up"]);
    }

    /// Add addresses to an interface; IPv6 ones get `nodad` so they are usable at once.
    pub fn addrs(&self, ns: &str, dev: &str, cidrs: &[&str]) {
        for cidr in cidrs {
            let mut args = vec!["ip", "-n", ns, "addr", "add", cidr, "dev", dev];
            if cidr.contains(':') {
                args.push("nodad");
            }
            must(&args);
        }
    }

    /// `ip -n NS ARGS...`, which must succeed; returns stdout.
    pub fn ip(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "-n", ns];
        v.extend_from_slice(args);
        must(&v)
    }

    /// `ip netns exec NS ARGS...`, which must succeed; returns stdout.
    pub fn exec(&self, ns: &str, args: &[&str]) -> String {
        let mut v = vec!["ip", "netns", "exec", ns];
        v.extend_from_slice(args);
        must(&v)
    }

    /// Load an nftables ruleset (several lines; the one-line form is a syntax error on this nft)
    /// into a namespace.
    pub fn nft(&self, ns: &str, name: &str, ruleset: &str) {
        let file = self.write_file(&format!("{name}.nft"), ruleset, 0o644);
        self.exec(ns, &["nft", "-f", file.to_str().unwrap()]);
    }

    /// Write a file into the lab directory.
    pub fn write_file(&self, name: &str, body: &str, mode: u32) -> PathBuf {
        let path = self.dir.join(name);
        fs::write(&path, body).expect("write lab file");
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).expect("chmod lab file");
        path
    }

    /// Write an executable script (a heal step, a helper) into the lab directory.
    pub fn script(&self, name: &str, body: &str) -> PathBuf {
        self.write_file(name, body, 0o755)
    }

    /// Path of a file in the lab directory, as a String.
    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_str().unwrap().to_owned()
    }

    /// Start a helper (ping, packet forger...) inside `ns`; its stdout and stderr go to
    /// `log` in the lab directory. It is killed when the lab drops (and by the namespace sweep).
    pub fn spawn_bg(&mut self, ns: &str, args: &[&str], log: &str) -> u32 {
        let out = fs::File::create(self.dir.join(log)).expect("create helper log");
        let err = out.try_clone().expect("dup helper log");
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start helper {args:?}: {e}"));
        let pid = child.id();
        self.background.push(child);
        pid
    }

    /// netheal in `ns` with `--log stderr`, [`quiet_args`] and `args` (options then IFACE).
    pub fn netheal(&self, ns: &str, args: &[&str]) -> Netheal {
        self.netheal_with(ns, &[], args)
    }

    /// `netheal` with `LADDER` first: for the suites about the heal ladder's mechanics.
    pub fn netheal_ladder(&self, ns: &str, args: &[&str]) -> Netheal {
        self.netheal_with(ns, LADDER, args)
    }

    fn netheal_with(&self, ns: &str, pinned: &[&str], args: &[&str]) -> Netheal {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", ns, bin(), "--log", "stderr"])
            .args(quiet_args())
            .args(pinned)
            .args(args);
        // A test run under a service manager must not make netheal talk to it.
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
        Netheal::spawn(cmd, args.join(" "))
    }

    /// Is `addr` (no prefix length) configured on `dev` in `ns`?
    pub fn has_addr(&self, ns: &str, dev: &str, addr: &str) -> bool {
        let out = run(&["ip", "-n", ns, "addr", "show", "dev", dev]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .any(|w| w.split('/').next() == Some(addr))
    }

    /// The default route line(s) of `ns`, empty when there is none.
    pub fn default_route(&self, ns: &str) -> String {
        let out = run(&["ip", "-n", ns, "route", "show", "default"]);
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for child in &mut self.background {
            kill("KILL", -i64::from(child.id()));
            let _ = child.kill(); // not fatal: it may have exited already
            let _ = child.wait();
        }
        for ns in &self.namespaces {
            // Everything still running inside (netheal, heal steps in their own process
            // groups, helpers) dies first, then the namespace and with it its veths.
            let out = run(&["ip", "netns", "pids", ns]);
            for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i64>() {
                    kill("KILL", pid);
                }
            }
            let deleted = run(&["ip", "netns", "del", ns]).status.success();
            if !deleted {
                eprintln!("warning: could not delete namespace {ns}");
            }
        }
        let _ = fs::remove_dir_all(&self.dir); // not fatal: only a temp dir
    }
}

struct Captured {
    lines: Vec<Line>,
    open: usize,
}

/// A running netheal (or a shell that execs it): stdout and stderr captured line by line.
/// Dropping it kills its process group; when the test is panicking it also prints the log with
/// times relative to the start, so a failure shows what the binary said.
pub struct Netheal {
    child: Child,
    pub pid: u32,
    pub started: Instant,
    label: String,
    log: Arc<(Mutex<Captured>, Condvar)>,
    exit: Option<ExitStatus>,
}

impl Netheal {
    /// Start `cmd` in its own process group with both output streams captured.
    pub fn spawn(mut cmd: Command, label: String) -> Netheal {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start netheal ({label}): {e}"));
        let started = Instant::now();
        let log = Arc::new((
            Mutex::new(Captured {
                lines: Vec::new(),
                open: 2,
            }),
            Condvar::new(),
        ));
        let out = child.stdout.take().unwrap();
        let err = child.stderr.take().unwrap();
        reader(out, Arc::clone(&log));
        reader(err, Arc::clone(&log));
        Netheal {
            pid: child.id(),
            child,
            started,
            label,
            log,
            exit: None,
        }
    }

    /// Wait for the first line at index >= `from` that satisfies `pred`; returns its index.
    /// Gives up early when the process closed its output and no such line came.
    pub fn wait_line(
        &self,
        from: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Line)> {
        let deadline = Instant::now() + timeout;
        let (lock, cv) = &*self.log;
        let mut cap = lock.lock().unwrap();
        loop {
            if let Some(i) = (from..cap.lines.len()).find(|&i| pred(&cap.lines[i].1)) {
                return Some((i, cap.lines[i].clone()));
            }
            let now = Instant::now();
            if cap.open == 0 || now >= deadline {
                return None;
            }
            cap = cv.wait_timeout(cap, deadline - now).unwrap().0;
        }
    }

    /// The first line (from the start) containing `fragment`.
    pub fn wait_for_line(&self, fragment: &str, timeout: Duration) -> Option<Line> {
        self.wait_line(0, timeout, |l| l.contains(fragment))
            .map(|x| x.1)
    }

    /// The first line that arrived at or after `after` and contains `fragment`.
    pub fn wait_for_line_after(
        &self,
        after: Instant,
        fragment: &str,
        timeout: Duration,
    ) -> Option<Line> {
        let from = self.index_at(after);
        self.wait_line(from, timeout, |l| l.contains(fragment))
            .map(|x| x.1)
    }

    /// Index of the first line that arrived at or after `t`.
    pub fn index_at(&self, t: Instant) -> usize {
        let cap = self.log.0.lock().unwrap();
        cap.lines
            .iter()
            .position(|l| l.0 >= t)
            .unwrap_or(cap.lines.len())
    }

    /// The first line that arrived at or after `after` and contains `fragment`; panics naming
    /// the fragment when none comes within `timeout`.
    pub fn expect(&self, after: Instant, fragment: &str, timeout: Duration) -> Line {
        self.wait_for_line_after(after, fragment, timeout)
            .unwrap_or_else(|| panic!("no log line containing {fragment:?} within {timeout:?}"))
    }

    /// Number of lines captured so far (a mark for [`Netheal::wait_line`]).
    pub fn mark(&self) -> usize {
        self.log.0.lock().unwrap().lines.len()
    }

    /// Wait until at least `n` lines satisfy `pred`; returns the n-th.
    pub fn wait_nth(
        &self,
        n: usize,
        timeout: Duration,
        pred: impl Fn(&str) -> bool,
    ) -> Option<(usize, Line)> {
        let mut from = 0;
        let mut found = None;
        let deadline = Instant::now() + timeout;
        for _ in 0..n {
            let left = deadline.saturating_duration_since(Instant::now());
            let (i, line) = self.wait_line(from, left, &pred)?;
            from = i + 1;
            found = Some((i, line));
        }
        found
    }

    /// How many lines so far contain `fragment`.
    pub fn count_lines(&self, fragment: &str) -> usize {
        self.lines()
            .iter()
            .filter(|l| l.1.contains(fragment))
            .count()
    }

    /// Snapshot of every line so far.
    pub fn lines(&self) -> Vec<Line> {
        self.log.0.lock().unwrap().lines.clone()
    }

    /// All `-v` round lines so far: (arrival, good?, text).
    pub fn rounds(&self) -> Vec<(Instant, bool, String)> {
        self.lines()
            .into_iter()
            .filter(|l| is_round(&l.1))
            .map(|(t, s)| (t, is_good_round(&s), s))
            .collect()
    }

    /// Send a signal by name to netheal itself.
    pub fn send_signal(&self, sig: &str) -> bool {
        kill(sig, i64::from(self.pid))
    }

    /// SIGUSR1, then the `status:` line it produces, parsed into `name -> number` for every
    /// `name N` item (`rounds`, `replies`, `lost`, `foreign`, `late`, `heals`).
    pub fn status(&self, timeout: Duration) -> Option<(String, HashMap<String, u64>)> {
        let from = self.mark();
        assert!(self.send_signal("USR1"), "cannot send SIGUSR1");
        let (_, (_, line)) = self.wait_line(from, timeout, |l| l.contains(": status: "))?;
        let mut fields = HashMap::new();
        for item in line.split(": status: ").nth(1)?.split(", ") {
            let words: Vec<&str> = item.split_whitespace().collect();
            if let [name, value] = words[..] {
                if let Ok(v) = value.parse() {
                    fields.insert(name.to_owned(), v);
                }
            }
        }
        Some((line, fields))
    }

    /// The ICMP identifier from the start line (`ident 0x1a2b`).
    pub fn ident(&self, timeout: Duration) -> Option<u16> {
        let (_, line) = self.wait_for_line("ident 0x", timeout)?;
        let hex = line.split("ident 0x").nth(1)?;
        let hex: String = hex.chars().take_while(char::is_ascii_hexdigit).collect();
        u16::from_str_radix(&hex, 16).ok()
    }

    /// Has it exited? (non-blocking)
    pub fn try_exit(&mut self) -> Option<ExitStatus> {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().expect("try_wait");
        }
        self.exit
    }

    /// Wait up to `timeout` for it to exit.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_until(timeout, || self.try_exit().is_some());
        self.exit
    }

    /// Wait for exit and for both output streams to reach EOF, so `lines()` is complete.
    pub fn finish(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let status = self.wait_exit(timeout)?;
        let (lock, cv) = &*self.log;
        let mut cap = lock.lock().unwrap();
        while cap.open > 0 {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            cap = cv.wait_timeout(cap, deadline - now).unwrap().0;
        }
        Some(status)
    }

    /// Print the captured log with times relative to the start.
    pub fn dump(&self) {
        eprintln!("---- netheal log ({}) ----", self.label);
        for (t, line) in self.lines() {
            eprintln!("{:8.3} {line}", secs(self.started, t));
        }
        eprintln!("---- end of log ----");
    }

    /// Exit code, or 128 + signal.
    pub fn code(status: ExitStatus) -> i32 {
        status
            .code()
            .unwrap_or_else(|| 128 + status.signal().unwrap_or(0))
    }
}

impl Drop for Netheal {
    fn drop(&mut self) {
        if self.try_exit().is_none() {
            kill("KILL", -i64::from(self.pid));
            let _ = self.child.kill(); // not fatal: it may have exited meanwhile
            let _ = self.child.wait();
        }
        if thread::panicking() {
            self.dump();
        }
    }
}

fn reader(stream: impl Read + Send + 'static, log: Arc<(Mutex<Captured>, Condvar)>) {
    thread::spawn(move || {
        let mut r = BufReader::new(stream);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let at = Instant::now();
                    let text = String::from_utf8_lossy(&buf).trim_end().to_owned();
                    let (lock, cv) = &*log;
                    lock.lock().unwrap().lines.push((at, text));
                    cv.notify_all();
                }
            }
        }
        let (lock, cv) = &*log;
        lock.lock().unwrap().open -= 1;
        cv.notify_all();
    });
}

/// A `-v` round line: `IFACE: round N good: ...` (or a failed one).
pub fn is_round(line: &str) -> bool {
    line.split(": round ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .is_some_and(|n| n.parse::<u64>().is_ok())
}

/// A good round line.
pub fn is_good_round(line: &str) -> bool {
    is_round(line)
        && line
            .split(": round ")
            .nth(1)
            .and_then(|r| r.split_whitespace().nth(1))
            .is_some_and(|w| w.trim_end_matches(':') == "good")
}
