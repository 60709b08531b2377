//! Which network managers and DHCP clients claim an interface, read from their state files
//! only: no subprocess, no D-Bus, nothing that can block the loop for long (a few small
//! files and one pass over /proc per call; it runs at start, on SIGHUP and before a heal,
//! never per round). The parsers are pure and take text; `gather` is the thin I/O that reads
//! the files under a root directory (the daemon's is `/`; tests hand in a fake tree).
//!
//! The files, as the managers write them (checked against Debian 12's packages):
//! - NetworkManager 1.42: `/run/NetworkManager/devices/IFINDEX`, a keyfile with a
//!   `[device]` group and `managed=true` for a device it manages (no `managed=` for the
//!   others); the file stays after NetworkManager exits, so it counts only while a process
//!   named `NetworkManager` runs (with `--no-daemon`, as systemd starts it, it writes no pid
//!   file). Both captured from Debian 12's 1.42.4 in a namespace.
//! - systemd-networkd 252: `/run/systemd/netif/links/IFINDEX` with `ADMIN_STATE=` (pending,
//!   initialized, configuring, configured, unmanaged, failed, linger) and `NETWORK_FILE=`
//!   (captured in a namespace); its process is named `systemd-network` (comm is cut at 15
//!   bytes).
//! - ifupdown: stanzas in `/etc/network/interfaces` (following `source` and
//!   `source-directory`), state in `/run/network/ifstate` (`eth0=eth0`) or
//!   `/run/network/ifstate.eth0`; ifupdown-ng and busybox keep `/run/ifstate` (busybox also
//!   `/var/run/ifstate`); RHEL's network-scripts read
//!   `/etc/sysconfig/network-scripts/ifcfg-IFACE`.
//! - DHCP clients: `/proc/PID/cmdline` of `dhclient` (Debian's ifup runs `dhclient -4 -v
//!   -i -pf /run/dhclient.IFACE.pid -lf ... IFACE`), `udhcpc` (`udhcpc -n -p
//!   /run/udhcpc.IFACE.pid -i IFACE`) and `dhcpcd`.
//! - netifd: src/backend/netifd.rs.
//!
//! A process counts only when it shares our network namespace (`/proc/PID/ns/net`): a
//! NetworkManager in another namespace manages none of our interfaces.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::netifd::{self, Logical};

/// Biggest state file read (they are a few hundred bytes).
const MAX_FILE: u64 = 256 * 1024;
/// At most this many /proc entries are looked at per gather.
const MAX_PROCS: usize = 32_768;
/// `source` nesting followed in /etc/network/interfaces.
const MAX_SOURCE_DEPTH: usize = 4;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DhcpKind {
    Dhclient,
    Udhcpc,
    Dhcpcd,
}

impl DhcpKind {
    pub fn tool(self) -> &'static str {
        match self {
            DhcpKind::Dhclient => "dhclient",
            DhcpKind::Udhcpc => "udhcpc",
            DhcpKind::Dhcpcd => "dhcpcd",
        }
    }
}

/// A running DHCP client and what its command line says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DhcpClient {
    pub kind: DhcpKind,
    pub pid: u32,
    /// Its command line as started.
    pub argv: Vec<String>,
    /// `-pf FILE` (dhclient) or `-p FILE` (udhcpc).
    pub pidfile: Option<String>,
    /// The interfaces it names; empty: all of them (dhcpcd's manager mode, dhclient with no
    /// interface argument).
    pub ifaces: Vec<String>,
}

impl DhcpClient {
    pub fn serves(&self, iface: &str) -> bool {
        self.ifaces.is_empty() || self.ifaces.iter().any(|i| i == iface)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IfupdownKind {
    /// Debian's ifupdown (or busybox's, which reads the same file).
    Debian,
    /// ifupdown-ng or busybox, by its /run/ifstate.
    Ng,
    /// RHEL's network-scripts.
    NetworkScripts,
}

/// Everything `gather` found about one interface.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facts {
    pub iface: String,
    pub ifindex: Option<u32>,
    pub nm_running: bool,
    /// `managed=` of NM's device file; None: no file, or no such key.
    pub nm_managed: Option<bool>,
    pub networkd_running: bool,
    /// `ADMIN_STATE=` of networkd's link file.
    pub networkd_state: Option<String>,
    pub networkd_file: Option<String>,
    pub netifd_running: bool,
    /// The logical interface, and the file that named it.
    pub netifd_logical: Option<(String, &'static str)>,
    /// Where ifupdown (or its kin) claims the interface: which kind, and why.
    pub ifupdown: Option<(IfupdownKind, String)>,
    pub dhcp: Vec<DhcpClient>,
}

impl Facts {
    /// The DHCP client serving the interface, one naming it first.
    pub fn dhcp_client(&self) -> Option<&DhcpClient> {
        let named = self.dhcp.iter().find(|c| c.ifaces.contains(&self.iface));
        named.or_else(|| self.dhcp.iter().find(|c| c.serves(&self.iface)))
    }
}

// ---------------------------------------------------------------- pure parsers

/// `KEY=VALUE` lines (networkd's link file); the value unquoted.
pub fn env_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines().find_map(|l| {
        let v = l.trim().strip_prefix(key)?.strip_prefix('=')?;
        Some(v.trim().trim_matches('"'))
    })
}

/// `managed=` in the `[device]` group of NetworkManager's device state keyfile.
pub fn nm_managed(text: &str) -> Option<bool> {
    let mut group = "";
    for line in text.lines() {
        let line = line.trim();
        if let Some(g) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = g;
            continue;
        }
        if group != "device" {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            if k.trim() == "managed" {
                // GKeyFile booleans: true/false, 1/0.
                return match v.trim() {
                    "true" | "1" | "yes" => Some(true),
                    "false" | "0" | "no" => Some(false),
                    _ => None,
                };
            }
        }
    }
    None
}

/// What an interfaces(5) file says: whether it has an `iface IFACE` stanza (or `auto`,
/// `allow-*` naming it), and the files it sources (`source PATTERN`, `source-directory
/// DIR`), unresolved.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Interfaces {
    pub names_iface: bool,
    pub sources: Vec<String>,
    pub source_dirs: Vec<String>,
}

pub fn parse_interfaces(text: &str, iface: &str) -> Interfaces {
    let mut out = Interfaces::default();
    for raw in text.lines() {
        let line = raw.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut words = line.split_whitespace();
        match words.next() {
            Some("iface") => {
                if let Some(name) = words.next() {
                    // `iface eth0 inet dhcp`, or a logical `iface home inet ...` mapped onto
                    // eth0 with `eth0=home` on the command line: only the first is ours.
                    out.names_iface |= name == iface;
                }
            }
            Some("auto" | "allow-hotplug" | "allow-auto") => {
                out.names_iface |= words.any(|w| w == iface);
            }
            Some("source") => out.sources.extend(words.map(str::to_string)),
            Some("source-directory") => out.source_dirs.extend(words.map(str::to_string)),
            _ => {}
        }
    }
    out
}

/// Whether an ifstate file (ifupdown `eth0=eth0`, ifupdown-ng `eth0=eth0 1`, busybox
/// `eth0=eth0`) lists `iface` as up.
pub fn ifstate_lists(text: &str, iface: &str) -> bool {
    text.lines().any(|l| {
        let l = l.trim();
        l.split_once('=')
            .map_or(l == iface, |(name, _)| name.trim() == iface)
    })
}

/// A network-scripts ifcfg file: whether it is for `iface` and not left to NetworkManager
/// (`NM_CONTROLLED=no`). Returns (device matches, nm_controlled).
pub fn parse_ifcfg(text: &str, iface: &str) -> (bool, bool) {
    let dev = env_value(text, "DEVICE").map(|v| v.trim_matches('\''));
    let nm = env_value(text, "NM_CONTROLLED")
        .map(|v| v.trim_matches('\''))
        .is_none_or(|v| !matches!(v, "no" | "NO" | "No" | "n" | "N" | "false"));
    (dev.is_none_or(|d| d == iface), nm)
}

/// A DHCP client from a process's name and NUL-separated command line; None when it is not
/// one.
pub fn parse_dhcp_client(comm: &str, pid: u32, cmdline: &[u8]) -> Option<DhcpClient> {
    let argv: Vec<String> = cmdline
        .split(|&b| b == 0)
        .filter(|a| !a.is_empty())
        .take(256)
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let base = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    // busybox: comm is `busybox` when run as `busybox udhcpc ...`.
    let (kind, args) = match (comm.trim(), argv.first().map(|a| base(a))) {
        ("dhclient", _) => (DhcpKind::Dhclient, argv.get(1..)?),
        ("dhcpcd", _) => (DhcpKind::Dhcpcd, argv.get(1..)?),
        ("udhcpc", _) => (DhcpKind::Udhcpc, argv.get(1..)?),
        ("busybox", Some(a0)) if a0 == "udhcpc" => (DhcpKind::Udhcpc, argv.get(1..)?),
        ("busybox", Some(a0))
            if a0 == "busybox" && argv.get(1).map(String::as_str) == Some("udhcpc") =>
        {
            (DhcpKind::Udhcpc, argv.get(2..)?)
        }
        _ => return None,
    };
    // dhcpcd 9 rewrites its title into one string (`dhcpcd: eth0 [ip4]`).
    let args: Vec<String> = if kind == DhcpKind::Dhcpcd {
        argv.iter()
            .flat_map(|a| a.split_whitespace())
            .skip(1)
            .map(str::to_string)
            .collect()
    } else {
        args.to_vec()
    };
    let mut pidfile = None;
    let mut ifaces = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        let next = args.get(i + 1).cloned();
        match kind {
            DhcpKind::Dhclient => match a {
                "-pf" => {
                    pidfile = next;
                    i += 1;
                }
                "-p"
                | "-s"
                | "-cf"
                | "-df"
                | "-e"
                | "-lf"
                | "-sf"
                | "-g"
                | "-H"
                | "-F"
                | "-V"
                | "-C"
                | "-timeout"
                | "--timeout"
                | "--decline-wait-time"
                | "--dad-wait-time"
                | "--prefix-len-hint"
                | "--address-prefix-len"
                | "-user"
                | "-group"
                | "-chroot" => i += 1,
                _ if a.starts_with('-') => {}
                _ => ifaces.push(a.to_string()),
            },
            DhcpKind::Udhcpc => {
                if a == "-i" || a == "--interface" {
                    ifaces.extend(next);
                    i += 1;
                } else if let Some(v) = a.strip_prefix("--interface=") {
                    ifaces.push(v.to_string());
                } else if a == "-p" || a == "--pidfile" {
                    pidfile = next;
                    i += 1;
                } else if let Some(v) = a.strip_prefix("--pidfile=") {
                    pidfile = Some(v.to_string());
                } else if let Some(v) = a.strip_prefix("-i").filter(|v| !v.is_empty()) {
                    ifaces.push(v.to_string());
                } else if matches!(
                    a,
                    "-s" | "-V"
                        | "-x"
                        | "-O"
                        | "-r"
                        | "-F"
                        | "-H"
                        | "-h"
                        | "-c"
                        | "-t"
                        | "-T"
                        | "-A"
                        | "-u"
                        | "-C"
                ) {
                    i += 1;
                }
            }
            DhcpKind::Dhcpcd => {
                // dhcpcd 9 rewrites its title (`dhcpcd: eth0 [ip4]`, `dhcpcd: [manager]`):
                // take the bare words that look like interface names.
                let w = a.strip_prefix("dhcpcd:").unwrap_or(a);
                if matches!(
                    w,
                    "-h" | "-i"
                        | "-I"
                        | "-l"
                        | "-m"
                        | "-c"
                        | "-f"
                        | "-s"
                        | "-t"
                        | "-u"
                        | "-v"
                        | "-F"
                        | "-e"
                        | "-r"
                        | "-O"
                        | "-o"
                        | "-Q"
                        | "-S"
                        | "-z"
                        | "-C"
                        | "-y"
                        | "-w"
                ) {
                    i += 1;
                } else if !w.is_empty()
                    && !w.starts_with('-')
                    && !w.starts_with('[')
                    && crate::config::values::check_iface_name(w).is_ok()
                {
                    ifaces.push(w.to_string());
                }
            }
        }
        i += 1;
    }
    if kind == DhcpKind::Udhcpc && ifaces.is_empty() {
        ifaces.push("eth0".into()); // busybox udhcpc's default interface
    }
    Some(DhcpClient {
        kind,
        pid,
        argv,
        pidfile,
        ifaces,
    })
}

// ---------------------------------------------------------------- thin I/O

fn under(root: &Path, abs: &str) -> PathBuf {
    root.join(abs.trim_start_matches('/'))
}

fn read(root: &Path, abs: &str) -> Option<String> {
    read_path(&under(root, abs))
}

fn read_path(p: &Path) -> Option<String> {
    use std::io::Read;
    let f = std::fs::File::open(p).ok()?;
    let mut s = String::new();
    // not fatal: an unreadable or non-UTF-8 file is treated as absent
    f.take(MAX_FILE).read_to_string(&mut s).ok()?;
    Some(s)
}

/// The processes of interest: (comm, pid, cmdline), those in our network namespace only.
fn processes(root: &Path) -> Vec<(String, u32, Vec<u8>)> {
    const NAMES: [&str; 7] = [
        "NetworkManager",
        "systemd-network",
        "netifd",
        "dhclient",
        "dhcpcd",
        "udhcpc",
        "busybox",
    ];
    let proc = under(root, "/proc");
    let own_ns = std::fs::read_link(proc.join("self/ns/net")).ok();
    let Ok(dir) = std::fs::read_dir(&proc) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for e in dir.flatten().take(MAX_PROCS) {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        let Some(comm) = read_path(&e.path().join("comm")) else {
            continue;
        };
        let comm = comm.trim().to_string();
        if !NAMES.contains(&comm.as_str()) {
            continue;
        }
        if let (Some(own), Ok(theirs)) = (&own_ns, std::fs::read_link(e.path().join("ns/net"))) {
            if *own != theirs {
                continue;
            }
        }
        let cmdline = std::fs::read(e.path().join("cmdline")).unwrap_or_default();
        out.push((comm, pid, cmdline));
    }
    out
}

/// Whether the interfaces file (and what it sources) names `iface`.
fn interfaces_names(root: &Path, path: &Path, iface: &str, depth: usize) -> bool {
    let Some(text) = read_path(path) else {
        return false;
    };
    let parsed = parse_interfaces(&text, iface);
    if parsed.names_iface {
        return true;
    }
    if depth >= MAX_SOURCE_DEPTH {
        return false;
    }
    let base = path.parent().unwrap_or(Path::new("/"));
    let resolve = |p: &str| {
        if p.starts_with('/') {
            under(root, p)
        } else {
            base.join(p)
        }
    };
    for pat in &parsed.sources {
        // `source /etc/network/interfaces.d/*`: a trailing glob is all Debian ships.
        let p = resolve(pat);
        let (dir, glob) = match p.file_name().and_then(|f| f.to_str()) {
            Some(f) if f.contains('*') => (p.parent().map(Path::to_path_buf), Some(f.to_string())),
            _ => (None, None),
        };
        match (dir, glob) {
            (Some(dir), Some(glob)) => {
                if dir_names(root, &dir, iface, depth, |n| glob_match(&glob, n)) {
                    return true;
                }
            }
            _ => {
                if interfaces_names(root, &p, iface, depth + 1) {
                    return true;
                }
            }
        }
    }
    for d in &parsed.source_dirs {
        // interfaces(5): files whose names are letters, digits, `_` and `-` only.
        let ok = |n: &str| {
            n.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if dir_names(root, &resolve(d), iface, depth, ok) {
            return true;
        }
    }
    false
}

fn dir_names(
    root: &Path,
    dir: &Path,
    iface: &str,
    depth: usize,
    ok: impl Fn(&str) -> bool,
) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    let mut names: Vec<PathBuf> = rd
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(&ok))
        .map(|e| e.path())
        .take(256)
        .collect();
    names.sort();
    names
        .iter()
        .any(|p| interfaces_names(root, p, iface, depth + 1))
}

/// `*` matches any run of characters (the only wildcard Debian's interfaces files use).
fn glob_match(glob: &str, name: &str) -> bool {
    let parts: Vec<&str> = glob.split('*').collect();
    if parts.len() == 1 {
        return glob == name;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !name.starts_with(first) || !name[first.len()..].ends_with(last) {
        return false;
    }
    let mut rest = &name[first.len()..name.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

/// `nm_running`: an ifcfg file without `NM_CONTROLLED=no` is NetworkManager's (its ifcfg-rh
/// plugin reads them, and RHEL 8's `ifup` is NetworkManager's nmcli wrapper) while it runs.
fn ifupdown_claim(
    root: &Path,
    iface: &str,
    ifupdown_tool: bool,
    nm_running: bool,
) -> Option<(IfupdownKind, String)> {
    for (file, kind) in [
        ("/run/network/ifstate", IfupdownKind::Debian),
        ("/run/ifstate", IfupdownKind::Ng),
        ("/var/run/ifstate", IfupdownKind::Ng),
    ] {
        if read(root, file).is_some_and(|t| ifstate_lists(&t, iface)) {
            return Some((kind, format!("{file} lists {iface} up")));
        }
    }
    let per_iface = format!("/run/network/ifstate.{iface}");
    if read(root, &per_iface).is_some_and(|t| !t.trim().is_empty()) {
        return Some((IfupdownKind::Debian, format!("{per_iface} says up")));
    }
    let ifcfg = format!("/etc/sysconfig/network-scripts/ifcfg-{iface}");
    if let Some(t) = read(root, &ifcfg) {
        let (ours, nm) = parse_ifcfg(&t, iface);
        if ours && !nm {
            return Some((
                IfupdownKind::NetworkScripts,
                format!("{ifcfg} has NM_CONTROLLED=no"),
            ));
        }
        if ours && ifupdown_tool && !nm_running {
            return Some((
                IfupdownKind::NetworkScripts,
                format!("{ifcfg} names {iface}"),
            ));
        }
    }
    let main = under(root, "/etc/network/interfaces");
    if ifupdown_tool && interfaces_names(root, &main, iface, 0) {
        return Some((
            IfupdownKind::Debian,
            format!("/etc/network/interfaces has a stanza for {iface}"),
        ));
    }
    None
}

/// Reads every state file about `iface` under `root`. `has_tool` says whether a tool is
/// installed (ifup, for interfaces-file stanzas that no state confirms).
pub fn gather(root: &Path, iface: &str, has_tool: &dyn Fn(&str) -> bool) -> Facts {
    let ifindex = read(root, &format!("/sys/class/net/{iface}/ifindex"))
        .and_then(|s| s.trim().parse::<u32>().ok());
    let procs = processes(root);
    let running = |name: &str| procs.iter().any(|(c, _, _)| c == name);
    let mut f = Facts {
        iface: iface.to_string(),
        ifindex,
        nm_running: running("NetworkManager"),
        networkd_running: running("systemd-network"),
        netifd_running: running("netifd"),
        ..Facts::default()
    };
    if let Some(ix) = ifindex {
        f.nm_managed =
            read(root, &format!("/run/NetworkManager/devices/{ix}")).and_then(|t| nm_managed(&t));
        if let Some(t) = read(root, &format!("/run/systemd/netif/links/{ix}")) {
            f.networkd_state = env_value(&t, "ADMIN_STATE").map(str::to_string);
            f.networkd_file = env_value(&t, "NETWORK_FILE")
                .filter(|v| !v.is_empty())
                .map(str::to_string);
        }
    }
    f.netifd_logical = netifd_logical(root, iface);
    f.ifupdown = ifupdown_claim(root, iface, has_tool("ifup"), f.nm_running);
    f.dhcp = procs
        .iter()
        .filter_map(|(c, pid, cmd)| parse_dhcp_client(c, *pid, cmd))
        .filter(|c| c.serves(iface))
        .collect();
    f
}

/// The logical interface from netifd's state (or UCI's configuration, where netifd takes
/// it from), with the file that said so.
fn netifd_logical(root: &Path, iface: &str) -> Option<(String, &'static str)> {
    const STATE: &str = "/var/state/network";
    const CONFIG: &str = "/etc/config/network";
    type Parse = fn(&str) -> Vec<Logical>;
    let sources: [(&'static str, Parse); 2] =
        [(STATE, netifd::parse_state), (CONFIG, netifd::parse_config)];
    sources.iter().find_map(|(file, parse)| {
        let list = parse(&read(root, file)?);
        netifd::logical_for_device(&list, iface).map(|l| (l, *file))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from Debian 12's NetworkManager 1.42.4 in a test namespace: the device it
    /// manages (unmanaged-devices=except:interface-name:...), and, written when it exits, a
    /// device it does not manage (no `managed=` at all: "unknown").
    const NM_MANAGED: &str = "[device]\nmanaged=true\nperm-hw-addr-fake=1A:8A:0A:77:4A:09\n\
        connection-uuid=1307dd06-7178-339c-92ef-e7ebb2f3252e\nnm-owned=false\n\
        route-metric-default-effective=100\n";
    const NM_OTHER: &str = "[device]\nperm-hw-addr-fake=6E:21:61:95:6E:37\nnm-owned=false\n";

    #[test]
    fn nm_device_file() {
        assert_eq!(nm_managed(NM_MANAGED), Some(true));
        assert_eq!(nm_managed(NM_OTHER), None);
        assert_eq!(nm_managed("[device]\nmanaged=false\n"), Some(false));
        assert_eq!(nm_managed("[other]\nmanaged=true\n"), None);
        assert_eq!(nm_managed(""), None);
    }

    /// Captured from Debian 12's systemd-networkd 252 in a test namespace (tmpfs /run, /sys
    /// read-only): a veth matched by a .network file, and `lo`, which no file matches.
    const LINK_MANAGED: &str = "# This is private data. Do not parse.\nADMIN_STATE=configuring\n\
        OPER_STATE=routable\nCARRIER_STATE=carrier\nADDRESS_STATE=routable\n\
        IPV4_ADDRESS_STATE=routable\nIPV6_ADDRESS_STATE=degraded\nONLINE_STATE=online\n\
        REQUIRED_FOR_ONLINE=yes\nREQUIRED_OPER_STATE_FOR_ONLINE=degraded\n\
        REQUIRED_FAMILY_FOR_ONLINE=any\nACTIVATION_POLICY=up\n\
        NETWORK_FILE=/run/systemd/network/10-nhcap.network\nDNS=\nNTP=\nSIP=\nDOMAINS=\n\
        ROUTE_DOMAINS=\nLLMNR=yes\nMDNS=no\n\
        DHCP6_CLIENT_DUID=DUID-EN/Vendor:0000ab110033bdebf95e192c\n";
    const LINK_UNMANAGED: &str = "# This is private data. Do not parse.\nADMIN_STATE=unmanaged\n\
        OPER_STATE=carrier\nCARRIER_STATE=carrier\nADDRESS_STATE=off\nIPV4_ADDRESS_STATE=off\n\
        IPV6_ADDRESS_STATE=off\n";

    #[test]
    fn networkd_link_file() {
        assert_eq!(env_value(LINK_MANAGED, "ADMIN_STATE"), Some("configuring"));
        assert_eq!(
            env_value(LINK_MANAGED, "NETWORK_FILE"),
            Some("/run/systemd/network/10-nhcap.network")
        );
        assert_eq!(env_value(LINK_MANAGED, "DNS"), Some(""));
        assert_eq!(env_value(LINK_UNMANAGED, "ADMIN_STATE"), Some("unmanaged"));
        assert_eq!(env_value(LINK_UNMANAGED, "NETWORK_FILE"), None);
        assert_eq!(
            env_value("NETWORK_FILE_DROPINS=\"\"\n", "NETWORK_FILE_DROPINS"),
            Some("")
        );
        assert_eq!(env_value(LINK_MANAGED, "NOPE"), None);
        // `OPER_STATE=` must not answer for `STATE=`.
        assert_eq!(env_value(LINK_MANAGED, "STATE"), None);
    }

    #[test]
    fn interfaces_stanzas_and_sources() {
        let t = "# comment iface eth9 inet dhcp\nsource /etc/network/interfaces.d/*\n\
                 source-directory interfaces.d\nauto lo\niface lo inet loopback\n\
                 allow-hotplug eth1\niface eth0 inet dhcp\n";
        let p = parse_interfaces(t, "eth0");
        assert!(p.names_iface);
        assert_eq!(p.sources, ["/etc/network/interfaces.d/*"]);
        assert_eq!(p.source_dirs, ["interfaces.d"]);
        assert!(parse_interfaces(t, "eth1").names_iface);
        assert!(!parse_interfaces(t, "eth9").names_iface, "comments ignored");
        assert!(!parse_interfaces(t, "eth").names_iface);
    }

    #[test]
    fn ifstate_files() {
        assert!(ifstate_lists("lo=lo\neth0=eth0\n", "eth0"));
        assert!(ifstate_lists("eth0=eth0 1\n", "eth0"), "ifupdown-ng");
        assert!(
            ifstate_lists("eth0=home\n", "eth0"),
            "a mapped logical interface"
        );
        assert!(!ifstate_lists("eth01=eth01\n", "eth0"));
        assert!(!ifstate_lists("", "eth0"));
    }

    #[test]
    fn ifcfg_files() {
        let t = "TYPE=Ethernet\nBOOTPROTO=dhcp\nDEVICE=eth0\nONBOOT=yes\nNM_CONTROLLED=no\n";
        assert_eq!(parse_ifcfg(t, "eth0"), (true, false));
        assert_eq!(parse_ifcfg("DEVICE=\"eth0\"\n", "eth0"), (true, true));
        assert_eq!(parse_ifcfg("DEVICE=eth1\n", "eth0"), (false, true));
        assert_eq!(parse_ifcfg("NM_CONTROLLED='no'\n", "eth0"), (true, false));
    }

    fn cmd(args: &[&str]) -> Vec<u8> {
        let mut v = Vec::new();
        for a in args {
            v.extend_from_slice(a.as_bytes());
            v.push(0);
        }
        v
    }

    #[test]
    fn dhcp_client_command_lines() {
        // Debian ifupdown's inet.defn, as /proc/PID/cmdline shows it.
        let c = parse_dhcp_client(
            "dhclient",
            812,
            &cmd(&[
                "/sbin/dhclient",
                "-4",
                "-v",
                "-i",
                "-pf",
                "/run/dhclient.eth0.pid",
                "-lf",
                "/var/lib/dhcp/dhclient.eth0.leases",
                "-I",
                "-df",
                "/var/lib/dhcp/dhclient6.eth0.leases",
                "eth0",
            ]),
        )
        .unwrap();
        assert_eq!(c.kind, DhcpKind::Dhclient);
        assert_eq!(c.pidfile.as_deref(), Some("/run/dhclient.eth0.pid"));
        assert_eq!(c.ifaces, ["eth0"]);
        // NetworkManager's dhclient plugin.
        let c = parse_dhcp_client(
            "dhclient",
            9,
            &cmd(&[
                "/sbin/dhclient",
                "-d",
                "-q",
                "-sf",
                "/usr/libexec/nm-dhcp-helper",
                "-pf",
                "/run/NetworkManager/dhclient-enp1s0.pid",
                "-lf",
                "/var/lib/NetworkManager/dhclient-x-enp1s0.lease",
                "-cf",
                "/var/lib/NetworkManager/dhclient-enp1s0.conf",
                "enp1s0",
            ]),
        )
        .unwrap();
        assert_eq!(c.ifaces, ["enp1s0"]);
        assert!(c.serves("enp1s0") && !c.serves("eth0"));
        let c = parse_dhcp_client(
            "udhcpc",
            77,
            &cmd(&[
                "udhcpc",
                "-n",
                "-p",
                "/run/udhcpc.eth1.pid",
                "-i",
                "eth1",
                "-x",
                "hostname:box",
            ]),
        )
        .unwrap();
        assert_eq!(
            (c.kind, c.ifaces.clone()),
            (DhcpKind::Udhcpc, vec!["eth1".to_string()])
        );
        assert_eq!(c.pidfile.as_deref(), Some("/run/udhcpc.eth1.pid"));
        // OpenWrt's netifd runs it under busybox: comm `udhcpc`, argv `udhcpc -p ... -i ...`.
        let c = parse_dhcp_client(
            "busybox",
            5,
            &cmd(&[
                "busybox",
                "udhcpc",
                "-f",
                "-t",
                "0",
                "--interface=wan",
                "-s",
                "/x",
            ]),
        )
        .unwrap();
        assert_eq!(c.ifaces, ["wan"]);
        let c = parse_dhcp_client("udhcpc", 5, &cmd(&["udhcpc", "-b"])).unwrap();
        assert_eq!(c.ifaces, ["eth0"], "busybox's default");
        // dhcpcd 9's rewritten title, per interface and in manager mode.
        let c = parse_dhcp_client("dhcpcd", 3, &cmd(&["dhcpcd: eth0 [ip4]"])).unwrap();
        assert_eq!(c.ifaces, ["eth0"]);
        let c = parse_dhcp_client("dhcpcd", 3, &cmd(&["dhcpcd:", "eth0", "[ip4]"])).unwrap();
        assert_eq!(c.ifaces, ["eth0"]);
        let c = parse_dhcp_client(
            "dhcpcd",
            3,
            &cmd(&["dhcpcd:", "[manager]", "[ip4]", "[ip6]"]),
        )
        .unwrap();
        assert!(
            c.ifaces.is_empty() && c.serves("wlan0"),
            "manager mode serves all"
        );
        let c = parse_dhcp_client(
            "dhcpcd",
            3,
            &cmd(&["/usr/sbin/dhcpcd", "-h", "box", "-q", "eth2"]),
        )
        .unwrap();
        assert_eq!(c.ifaces, ["eth2"]);
        assert_eq!(parse_dhcp_client("sshd", 1, &cmd(&["sshd"])), None);
        assert_eq!(
            parse_dhcp_client("busybox", 1, &cmd(&["busybox", "httpd"])),
            None
        );
        assert_eq!(parse_dhcp_client("dhclient", 1, &[]), None);
    }

    /// A throw-away fake root.
    struct Tree(PathBuf);

    impl Tree {
        fn new(tag: &str) -> Tree {
            let p =
                std::env::temp_dir().join(format!("netheal-detect-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&p);
            std::fs::create_dir_all(&p).unwrap();
            Tree(p)
        }

        fn put(&self, path: &str, text: &str) {
            let p = self.0.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }

        fn link(&self, path: &str, to: &str) {
            let p = self.0.join(path.trim_start_matches('/'));
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::os::unix::fs::symlink(to, p).unwrap();
        }

        fn process(&self, pid: u32, comm: &str, argv: &[&str], ns: &str) {
            self.put(&format!("/proc/{pid}/comm"), &format!("{comm}\n"));
            let cmdline = String::from_utf8(cmd(argv)).unwrap();
            self.put(&format!("/proc/{pid}/cmdline"), &cmdline);
            self.link(&format!("/proc/{pid}/ns/net"), ns);
        }
    }

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    #[test]
    fn gather_reads_the_state_files_under_the_root() {
        let t = Tree::new("gather");
        t.put("/sys/class/net/eth0/ifindex", "3\n");
        t.link("/proc/self/ns/net", "net:[4026531840]");
        t.process(
            410,
            "systemd-network",
            &["/lib/systemd/systemd-networkd"],
            "net:[4026531840]",
        );
        // A NetworkManager in another network namespace manages nothing of ours.
        t.process(
            411,
            "NetworkManager",
            &["/usr/sbin/NetworkManager", "--no-daemon"],
            "net:[4026532999]",
        );
        t.process(
            412,
            "udhcpc",
            &["udhcpc", "-i", "eth0", "-p", "/run/udhcpc.eth0.pid"],
            "net:[4026531840]",
        );
        t.process(413, "udhcpc", &["udhcpc", "-i", "eth1"], "net:[4026531840]");
        t.process(414, "sshd", &["sshd"], "net:[4026531840]");
        t.put("/run/NetworkManager/devices/3", "[device]\nmanaged=true\n");
        t.put(
            "/run/systemd/netif/links/3",
            "# This is private data. Do not parse.\nADMIN_STATE=configured\nNETWORK_FILE=/etc/systemd/network/10-eth0.network\n",
        );
        t.put(
            "/etc/network/interfaces",
            "source /etc/network/interfaces.d/*\n",
        );
        t.put(
            "/etc/network/interfaces.d/uplink",
            "auto eth0\niface eth0 inet dhcp\n",
        );
        t.put(
            "/etc/config/network",
            "config interface 'wan'\n\toption device 'eth0'\n",
        );
        let with_ifup = |name: &str| name == "ifup";
        let f = gather(&t.0, "eth0", &with_ifup);
        assert_eq!(f.ifindex, Some(3));
        assert!(f.networkd_running);
        assert!(!f.nm_running, "other namespace");
        assert_eq!(f.nm_managed, Some(true));
        assert_eq!(f.networkd_state.as_deref(), Some("configured"));
        assert_eq!(
            f.networkd_file.as_deref(),
            Some("/etc/systemd/network/10-eth0.network")
        );
        assert!(!f.netifd_running);
        assert_eq!(
            f.netifd_logical,
            Some(("wan".to_string(), "/etc/config/network"))
        );
        assert_eq!(
            f.ifupdown,
            Some((
                IfupdownKind::Debian,
                "/etc/network/interfaces has a stanza for eth0".into()
            ))
        );
        assert_eq!(f.dhcp.len(), 1, "{:?}", f.dhcp);
        assert_eq!(f.dhcp[0].pid, 412);
        // Without ifup installed a stanza is no claim; state files are.
        let f = gather(&t.0, "eth0", &|_| false);
        assert_eq!(f.ifupdown, None);
        t.put("/run/network/ifstate", "lo=lo\neth0=eth0\n");
        let f = gather(&t.0, "eth0", &|_| false);
        assert_eq!(
            f.ifupdown,
            Some((
                IfupdownKind::Debian,
                "/run/network/ifstate lists eth0 up".into()
            ))
        );
        // RHEL 8/9: an ifcfg file NetworkManager reads (no NM_CONTROLLED=no) is not
        // network-scripts' while NetworkManager runs; with NM_CONTROLLED=no it is.
        let rhel = Tree::new("rhel");
        rhel.put(
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "DEVICE=eth0\nBOOTPROTO=dhcp\n",
        );
        rhel.link("/proc/self/ns/net", "net:[1]");
        rhel.process(
            700,
            "NetworkManager",
            &["/usr/sbin/NetworkManager", "--no-daemon"],
            "net:[1]",
        );
        let g = gather(&rhel.0, "eth0", &with_ifup);
        assert!(g.nm_running);
        assert_eq!(g.ifupdown, None);
        rhel.put(
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "DEVICE=eth0\nBOOTPROTO=dhcp\nNM_CONTROLLED=no\n",
        );
        assert_eq!(
            gather(&rhel.0, "eth0", &with_ifup).ifupdown.map(|c| c.0),
            Some(IfupdownKind::NetworkScripts)
        );
        std::fs::remove_dir_all(rhel.0.join("proc/700")).unwrap();
        rhel.put("/etc/sysconfig/network-scripts/ifcfg-eth0", "DEVICE=eth0\n");
        assert_eq!(
            gather(&rhel.0, "eth0", &with_ifup).ifupdown,
            Some((
                IfupdownKind::NetworkScripts,
                "/etc/sysconfig/network-scripts/ifcfg-eth0 names eth0".into()
            )),
            "RHEL 7 with NetworkManager stopped"
        );
        // An interface that is not there: no index, no manager files.
        let f = gather(&t.0, "eth7", &with_ifup);
        assert_eq!(
            (f.ifindex, f.nm_managed, f.networkd_state.clone()),
            (None, None, None)
        );
        // An empty root: nothing at all.
        let empty = Tree::new("empty");
        let f = gather(&empty.0, "eth0", &with_ifup);
        assert_eq!(
            f,
            Facts {
                iface: "eth0".into(),
                ..Facts::default()
            }
        );
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "eth0"));
        assert!(glob_match("*.cfg", "a.cfg"));
        assert!(!glob_match("*.cfg", "a.cfgx"));
        assert!(glob_match("a*b*c", "aXbYc"));
        assert!(!glob_match("a*b*c", "aXc"));
        assert!(glob_match("eth0", "eth0"));
    }
}
