//! Heal back-ends: which network manager owns an interface (`auto`), the argv each built-in
//! back-end step runs, and the checks made before a step is needed. Pure decisions over
//! `Facts` (src/backend/detect.rs gathers them from state files under a root directory) and
//! a tool lookup handed in; nothing here runs a process or blocks: heal.rs supervises what
//! these functions return.
//!
//! The steps (netheal.conf(5) has the user's view):
//! - `networkmanager`: `nmcli --wait SECS device connect IFACE`: activates the best profile
//!   for IFACE again, also on a downed link (`nmcli device reapply` fails there: "Device is
//!   not activated"); `--wait` keeps it inside the heal timeout.
//! - `networkd`: `networkctl reconfigure IFACE`: networkd brings the link up and applies its
//!   .network file again (addresses, routes, DHCP).
//! - `netifd`: `ubus call network.interface.LOGICAL down`, then `... up`. OpenWrt's
//!   `/sbin/ifup LOGICAL` does the same, but only after `ubus call network reload` (every
//!   interface of the router), and it exits 0 on "Interface not found"; ubus exits non-zero
//!   when the object does not exist.
//! - `ifupdown`: `ifdown IFACE`, then `ifup IFACE` (Debian ifupdown, ifupdown-ng, busybox,
//!   RHEL network-scripts: all take a device name).
//! - `dhcp`: renews the lease without taking the link down, through whoever owns it:
//!   `nmcli device connect` (NetworkManager has no renew; `reapply` does not ask the server),
//!   `networkctl renew`, `ubus call network.interface.L renew`,
//!   udhcpc's SIGUSR1 (`kill -USR1 PID`), `dhcpcd -n IFACE`, or for ISC dhclient (which has
//!   no renew signal) `dhclient -x` (stop, keeping the lease) and the same command line again
//!   (INIT-REBOOT: it asks for the address it had).
#![forbid(unsafe_code)]

pub mod detect;
pub mod netifd;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::HealStep;
use crate::heal::TOOL_PATH;
pub use detect::{DhcpClient, DhcpKind, Facts};

/// Tests only: a fake root for state files and tools (like the other NETHEAL_TEST_* knobs):
/// detection reads `$NETHEAL_TEST_ROOT/run/...`, tools are looked for under
/// `$NETHEAL_TEST_ROOT/sbin` and so on.
pub const ROOT_ENV: &str = "NETHEAL_TEST_ROOT";

/// The directory detection and tool lookup work under: `/`, or `$NETHEAL_TEST_ROOT`.
pub fn root() -> PathBuf {
    std::env::var_os(ROOT_ENV)
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/"), PathBuf::from)
}

/// `name` in TOOL_PATH under `root`: an executable regular file.
pub fn find_tool(root: &Path, name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    TOOL_PATH
        .split(':')
        .map(|dir| root.join(dir.trim_start_matches('/')).join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The facts about `iface` under `root`.
pub fn gather(root: &Path, iface: &str) -> Facts {
    detect::gather(root, iface, &|t| find_tool(root, t).is_some())
}

/// A back-end that claims the interface, and why (for the log).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub step: HealStep,
    pub why: String,
}

/// Every manager that claims the interface, most specific first: NetworkManager,
/// systemd-networkd, netifd, the ifupdown family; a DHCP client on its own only when no
/// manager claims it (a client that a manager started is that manager's).
pub fn claims(f: &Facts) -> Vec<Claim> {
    let ix = f.ifindex.map_or("IFINDEX".to_string(), |i| i.to_string());
    let mut out = Vec::new();
    if f.nm_running && f.nm_managed == Some(true) {
        out.push(Claim {
            step: HealStep::NetworkManager,
            why: format!("/run/NetworkManager/devices/{ix} says managed"),
        });
    }
    if let Some(state) = f.networkd_state.as_deref().filter(|_| f.networkd_running) {
        let undecided = matches!(state, "unmanaged" | "pending" | "initialized");
        if !undecided || (state != "unmanaged" && f.networkd_file.is_some()) {
            let file = f
                .networkd_file
                .as_deref()
                .map_or(String::new(), |n| format!(", {n}"));
            out.push(Claim {
                step: HealStep::Networkd,
                why: format!("/run/systemd/netif/links/{ix} says {state}{file}"),
            });
        }
    }
    if let Some((logical, file)) = &f.netifd_logical {
        if f.netifd_running || *file == "/var/state/network" {
            out.push(Claim {
                step: HealStep::Netifd(Some(logical.clone())),
                why: format!("{file} maps {} to {logical}", f.iface),
            });
        }
    }
    if let Some((_, why)) = &f.ifupdown {
        out.push(Claim {
            step: HealStep::IfUpDown,
            why: why.clone(),
        });
    }
    if out.is_empty() {
        if let Some(c) = f.dhcp_client() {
            out.push(Claim {
                step: HealStep::Dhcp,
                why: format!("{} (pid {}) serves {}", c.kind.tool(), c.pid, f.iface),
            });
        }
    }
    out
}

/// What `auto` resolves to for one interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// The step a heal runs: a back-end, or `link` when none fits.
    pub step: HealStep,
    /// The log line after `IFACE: `.
    pub line: String,
    /// Set when the line is a warning (nothing fits, two managers, a missing tool).
    pub warning: bool,
}

/// What the user can do when `auto` finds nothing.
pub const FIX: &str = "install ifupdown and describe the interface in /etc/network/interfaces, or set heal = link (a link bounce only), or heal = networkmanager, networkd, netifd:LOGICAL, dhcp, or heal = /path/to/script";

/// Resolves `auto` from the facts; `find` looks a tool up (None: not installed).
pub fn resolve_auto(f: &Facts, find: &dyn Fn(&str) -> Option<PathBuf>) -> Resolved {
    let all = claims(f);
    let Some(first) = all.first() else {
        return Resolved {
            step: HealStep::Link,
            line: format!(
                "heal back-end: nothing found (no NetworkManager, systemd-networkd, netifd, ifupdown or DHCP client claims {}); auto falls back to the built-in link step, which restores a downed link but no address or route: {FIX}",
                f.iface
            ),
            warning: true,
        };
    };
    let mut line = format!("heal back-end {} ({})", first.step, first.why);
    let mut warning = false;
    if let Some(other) = all.get(1) {
        warning = true;
        line.push_str(&format!(
            "; WARNING: {} claims it too ({}): two managers on one interface undo each other's work",
            other.step, other.why
        ));
    }
    let missing = tools_of(&first.step, f)
        .into_iter()
        .find(|t| find(t).is_none());
    if let Some(tool) = missing {
        return Resolved {
            step: HealStep::Link,
            line: format!(
                "{line}; but {tool} is not found in {TOOL_PATH}: auto falls back to the built-in link step: install {tool}, or {FIX}"
            ),
            warning: true,
        };
    }
    Resolved {
        step: first.step.clone(),
        line,
        warning,
    }
}

/// The tools a step needs (for its check; the dhcp step's depend on the client).
pub fn tools_of(step: &HealStep, f: &Facts) -> Vec<&'static str> {
    match step {
        HealStep::NetworkManager => vec!["nmcli"],
        HealStep::Networkd => vec!["networkctl"],
        HealStep::Netifd(_) => vec!["ubus"],
        HealStep::IfUpDown => vec!["ifdown", "ifup"],
        HealStep::Dhcp => match dhcp_owner(f) {
            DhcpOwner::Manager(s) => tools_of(&s, f),
            DhcpOwner::Client(c) => match c.kind {
                DhcpKind::Udhcpc => vec!["kill"],
                k => vec![k.tool()],
            },
            DhcpOwner::Nobody => vec![],
        },
        HealStep::Auto | HealStep::Link | HealStep::Exec(_) | HealStep::Reboot => vec![],
    }
}

/// Who renews the lease for the `dhcp` step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DhcpOwner<'a> {
    /// A manager with its own DHCP client (or one it started): NetworkManager, networkd,
    /// netifd.
    Manager(HealStep),
    Client(&'a DhcpClient),
    Nobody,
}

pub fn dhcp_owner(f: &Facts) -> DhcpOwner<'_> {
    let manager = claims(f).into_iter().map(|c| c.step).find(|s| {
        matches!(
            s,
            HealStep::NetworkManager | HealStep::Networkd | HealStep::Netifd(Some(_))
        )
    });
    match (manager, f.dhcp_client()) {
        (Some(m), _) => DhcpOwner::Manager(m),
        (None, Some(c)) => DhcpOwner::Client(c),
        (None, None) => DhcpOwner::Nobody,
    }
}

/// What a step runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Commands run one after the other (the next whatever the previous one's status).
    Commands(Vec<Vec<String>>),
    /// The built-in link bounce.
    Link,
}

fn tool(find: &dyn Fn(&str) -> Option<PathBuf>, name: &str) -> Result<String, String> {
    find(name)
        .map(|p| p.display().to_string())
        .ok_or_else(|| format!("{name} not found in {TOOL_PATH}"))
}

/// The commands of a back-end step for `iface` (`timeout`: the heal timeout, which nmcli's
/// own wait stays inside). `facts` are needed by `dhcp` and by `netifd` without a logical
/// name. Err: why it cannot run (the step fails to start and the ladder goes on).
pub fn commands(
    step: &HealStep,
    iface: &str,
    facts: &Facts,
    find: &dyn Fn(&str) -> Option<PathBuf>,
    timeout: Duration,
) -> Result<Plan, String> {
    let s = |v: &str| v.to_string();
    let one = |argv: Vec<String>| Ok(Plan::Commands(vec![argv]));
    match step {
        HealStep::NetworkManager => {
            // nmcli's --wait is in whole seconds; leave it a little of the heal timeout so
            // nmcli reports its own timeout before netheal's SIGTERM.
            let wait = timeout.as_secs().saturating_sub(5).max(5);
            one(vec![
                tool(find, "nmcli")?,
                s("--wait"),
                wait.to_string(),
                s("device"),
                s("connect"),
                s(iface),
            ])
        }
        HealStep::Networkd => one(vec![tool(find, "networkctl")?, s("reconfigure"), s(iface)]),
        HealStep::Netifd(logical) => {
            let l = netifd_logical(logical.as_deref(), facts)?;
            let ubus = tool(find, "ubus")?;
            let obj = format!("network.interface.{l}");
            Ok(Plan::Commands(vec![
                vec![ubus.clone(), s("call"), obj.clone(), s("down")],
                vec![ubus, s("call"), obj, s("up")],
            ]))
        }
        HealStep::IfUpDown => Ok(Plan::Commands(vec![
            vec![tool(find, "ifdown")?, s(iface)],
            vec![tool(find, "ifup")?, s(iface)],
        ])),
        HealStep::Dhcp => match dhcp_owner(facts) {
            // NetworkManager has no renew command. `nmcli device reapply` with unchanged
            // settings puts the old lease back without asking the server (measured with
            // NetworkManager 1.42 and busybox udhcpd: no request); `device connect` asks again
            // (a DHCPREQUEST, ACKed), with the link and its carrier untouched.
            DhcpOwner::Manager(HealStep::NetworkManager) => {
                commands(&HealStep::NetworkManager, iface, facts, find, timeout)
            }
            // Measured with networkd 252 and busybox udhcpd: a DHCPREQUEST, ACKed, the lost
            // default route back, the carrier count unchanged.
            DhcpOwner::Manager(HealStep::Networkd) => {
                one(vec![tool(find, "networkctl")?, s("renew"), s(iface)])
            }
            DhcpOwner::Manager(HealStep::Netifd(Some(l))) => one(vec![
                tool(find, "ubus")?,
                s("call"),
                format!("network.interface.{l}"),
                s("renew"),
            ]),
            DhcpOwner::Manager(_) | DhcpOwner::Nobody => Err(format!(
                "no DHCP client serves {iface} (looked for NetworkManager, systemd-networkd, netifd, dhclient, udhcpc, dhcpcd)"
            )),
            DhcpOwner::Client(c) => client_renew(c, iface, find),
        },
        HealStep::Link => Ok(Plan::Link),
        HealStep::Auto => {
            let r = resolve_auto(facts, find);
            commands(&r.step, iface, facts, find, timeout)
        }
        HealStep::Exec(p) => one(vec![p.display().to_string(), s(iface)]),
        HealStep::Reboot => Err("reboot is not a runner step".into()),
    }
}

fn netifd_logical(given: Option<&str>, facts: &Facts) -> Result<String, String> {
    match (given, &facts.netifd_logical) {
        (Some(l), _) => Ok(l.to_string()),
        (None, Some((l, _))) => Ok(l.clone()),
        (None, None) => Err(format!(
            "no logical interface for {} in /var/state/network or /etc/config/network: set heal = netifd:LOGICAL (e.g. netifd:wan)",
            facts.iface
        )),
    }
}

fn client_renew(
    c: &DhcpClient,
    iface: &str,
    find: &dyn Fn(&str) -> Option<PathBuf>,
) -> Result<Plan, String> {
    let s = |v: &str| v.to_string();
    match c.kind {
        // udhcpc(8): SIGUSR1 renews the lease (SIGUSR2 would release it).
        DhcpKind::Udhcpc => Ok(Plan::Commands(vec![vec![
            tool(find, "kill")?,
            s("-USR1"),
            c.pid.to_string(),
        ]])),
        // dhcpcd(8) -n, --rebind: the running dhcpcd renews (rebinds) IFACE.
        DhcpKind::Dhcpcd => Ok(Plan::Commands(vec![vec![
            tool(find, "dhcpcd")?,
            s("-n"),
            s(iface),
        ]])),
        // dhclient(8) -x stops the running client without releasing its lease; the same
        // command line again starts it in INIT-REBOOT, asking for the address it had.
        // Measured with ISC dhclient 4.4.3 and busybox udhcpd in namespaces: -x runs no
        // script (address and route stay), the new client's DHCPREQUEST is ACKed, the
        // carrier count does not change.
        DhcpKind::Dhclient => {
            let bin = tool(find, "dhclient")?;
            let mut stop = vec![bin.clone(), s("-x")];
            if let Some(pf) = &c.pidfile {
                stop.extend([s("-pf"), pf.clone()]);
            }
            stop.push(s(iface));
            let mut again = vec![bin];
            again.extend(c.argv.iter().skip(1).cloned());
            if c.argv.len() <= 1 {
                again.push(s(iface));
            }
            Ok(Plan::Commands(vec![stop, again]))
        }
    }
}

/// What the check of one step found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// For --check's output: what the step resolves to.
    Note(String),
    Warning(String),
    /// An explicitly named step that cannot run: exit 2.
    Error(String),
}

/// Checks every step of a ladder for `iface`, before any is needed: an explicitly named
/// back-end whose tool is missing is an error; `auto` finding nothing is a warning.
pub fn check_ladder(
    iface: &str,
    ladder: &[HealStep],
    f: &Facts,
    find: &dyn Fn(&str) -> Option<PathBuf>,
) -> Vec<Finding> {
    let mut out = Vec::new();
    for step in ladder {
        let named = |why: String| format!("{iface}: heal step {step}: {why}");
        match step {
            HealStep::Auto => {
                let r = resolve_auto(f, find);
                let line = format!("{iface}: heal step auto: {}", r.line);
                out.push(if r.warning {
                    Finding::Warning(line)
                } else {
                    Finding::Note(line)
                });
            }
            HealStep::Netifd(None) => match netifd_logical(None, f) {
                Err(why) => out.push(Finding::Error(named(why))),
                Ok(l) => check_tools(&mut out, step, f, find, named(format!("ubus call network.interface.{l} down/up"))),
            },
            HealStep::Dhcp => match dhcp_owner(f) {
                DhcpOwner::Nobody => out.push(Finding::Warning(named(format!(
                    "no DHCP client serves {iface} now (looked for NetworkManager, systemd-networkd, netifd, dhclient, udhcpc, dhcpcd); the step looks again when it runs"
                )))),
                DhcpOwner::Manager(m) => {
                    check_tools(&mut out, step, f, find, named(format!("renews through {m}")))
                }
                DhcpOwner::Client(c) => check_tools(
                    &mut out,
                    step,
                    f,
                    find,
                    named(format!("renews through {} (pid {})", c.kind.tool(), c.pid)),
                ),
            },
            HealStep::NetworkManager | HealStep::Networkd | HealStep::Netifd(_) | HealStep::IfUpDown => {
                let note = named(
                    claims(f)
                        .iter()
                        .find(|c| c.step == *step)
                        .map_or("tools found".to_string(), |c| format!("tools found; {}", c.why)),
                );
                check_tools(&mut out, step, f, find, note)
            }
            HealStep::Link | HealStep::Exec(_) | HealStep::Reboot => {}
        }
    }
    out
}

fn check_tools(
    out: &mut Vec<Finding>,
    step: &HealStep,
    f: &Facts,
    find: &dyn Fn(&str) -> Option<PathBuf>,
    note: String,
) {
    match tools_of(step, f).into_iter().find(|t| find(t).is_none()) {
        Some(t) => out.push(Finding::Error(format!(
            "{}: heal step {step}: {t} not found in {TOOL_PATH}",
            f.iface
        ))),
        None => out.push(Finding::Note(note)),
    }
}

/// Whether a ladder has a step that detection or a tool check concerns.
pub fn concerns(ladder: &[HealStep]) -> bool {
    ladder
        .iter()
        .any(|s| !matches!(s, HealStep::Link | HealStep::Exec(_) | HealStep::Reboot))
}

/// Checks every ladder of `watches` on this machine (state files and tools under
/// `root()`): for --check, at start and on SIGHUP.
pub fn check_watches(root: &Path, watches: &[crate::config::IfaceConfig]) -> Vec<Finding> {
    let find = |t: &str| find_tool(root, t);
    watches
        .iter()
        .filter(|w| concerns(&w.heal))
        .flat_map(|w| check_ladder(&w.iface, &w.heal, &gather(root, &w.iface), &find))
        .collect()
}

/// For one watch at start and on SIGHUP, from one gathering of the facts: what `auto`
/// resolves to (when the ladder has it) and the findings of the ladder's other steps.
pub fn review(root: &Path, iface: &str, ladder: &[HealStep]) -> (Option<Resolved>, Vec<Finding>) {
    let f = gather(root, iface);
    let find = |t: &str| find_tool(root, t);
    let auto = ladder
        .contains(&HealStep::Auto)
        .then(|| resolve_auto(&f, &find));
    let others: Vec<HealStep> = ladder
        .iter()
        .filter(|s| **s != HealStep::Auto)
        .cloned()
        .collect();
    (auto, check_ladder(iface, &others, &f, &find))
}

/// `auto` for `iface` under `root`, now.
pub fn resolve_now(root: &Path, iface: &str) -> Resolved {
    resolve_auto(&gather(root, iface), &|t| find_tool(root, t))
}

/// How long `--check` waits for `ubus call network.interface dump`.
pub const UBUS_WAIT: Duration = Duration::from_secs(2);

/// For `--check` only (a one-shot run, never the daemon's loop): netifd's own view of the
/// interface, from `ubus call network.interface dump` (bounded by UBUS_WAIT), when netifd
/// runs and its state files named no logical interface, or named another one. A line to
/// print, or None.
pub fn ubus_hint(root: &Path, iface: &str) -> Option<String> {
    let f = gather(root, iface);
    if !f.netifd_running {
        return None;
    }
    let ubus = find_tool(root, "ubus")?;
    let text = run_bounded(&ubus, &["call", "network.interface", "dump"], UBUS_WAIT)?;
    let list = netifd::parse_dump(&text).ok()?;
    let logical = netifd::logical_for_device(&list, iface)?;
    match &f.netifd_logical {
        Some((l, _)) if *l == logical => None,
        Some((l, file)) => Some(format!(
            "{iface}: netifd (ubus call network.interface dump) puts {iface} in {logical}, {file} in {l}: set heal = netifd:{logical} if that is the one"
        )),
        None => Some(format!(
            "{iface}: netifd (ubus call network.interface dump) puts {iface} in {logical}, which no state file says: set heal = netifd:{logical}"
        )),
    }
}

/// `prog args` with stdin from /dev/null, its stdout if it exits 0 within `wait`; killed
/// otherwise. For --check only: it blocks the caller up to `wait`.
fn run_bounded(prog: &Path, args: &[&str], wait: Duration) -> Option<String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(prog)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut out = child.stdout.take()?;
    // A reader thread, so that a big reply never blocks the child on a full pipe; it is
    // never joined (something the child left behind may hold the pipe open).
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::Read;
        let mut buf = Vec::new();
        // not fatal: a short read is an unparsable dump, which gives no hint
        let _ = (&mut out)
            .take(netifd::MAX_JSON as u64)
            .read_to_end(&mut buf);
        let _ = tx.send(buf); // not fatal: nobody waits any more
    });
    let start = crate::mono::Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(st)) => break Some(st),
            Ok(None) if start.elapsed() < wait => std::thread::sleep(Duration::from_millis(10)),
            _ => break None,
        }
    };
    let Some(status) = status.filter(|s| s.success()) else {
        // not fatal: a hung or failed ubus only means no hint
        let _ = child.kill();
        let _ = child.wait();
        return None;
    };
    let _ = status;
    let buf = rx.recv_timeout(wait).ok()?;
    String::from_utf8(buf).ok()
}

/// What a watch has said about its back-ends, so that each line is logged once, and again
/// only when it changes (not at every heal).
#[derive(Debug, Default)]
pub struct Said {
    /// `auto`'s last pick: its step and whether it was a warning.
    auto: Option<(String, bool)>,
    others: Vec<String>,
}

impl Said {
    /// Whether `auto`'s pick differs from the last one said (and is now the last one). The
    /// pick, not the line: the reason it gives changes on its own (networkd's link file
    /// says `configuring` for a moment after a link down), the choice does not.
    pub fn auto_changed(&mut self, r: &Resolved) -> bool {
        let pick = (r.step.to_string(), r.warning);
        if self.auto.as_ref() == Some(&pick) {
            return false;
        }
        self.auto = Some(pick);
        true
    }

    /// The lines of a review: those not said at the previous review.
    pub fn fresh(&mut self, lines: Vec<String>) -> Vec<String> {
        let new = lines
            .iter()
            .filter(|l| !self.others.contains(l))
            .cloned()
            .collect();
        self.others = lines;
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect::IfupdownKind;

    fn facts() -> Facts {
        Facts {
            iface: "eth0".into(),
            ifindex: Some(3),
            ..Facts::default()
        }
    }

    fn all_tools(name: &str) -> Option<PathBuf> {
        Some(PathBuf::from("/usr/bin").join(name))
    }

    fn no_tools(_: &str) -> Option<PathBuf> {
        None
    }

    fn nm() -> Facts {
        Facts {
            nm_running: true,
            nm_managed: Some(true),
            ..facts()
        }
    }

    fn networkd(state: &str) -> Facts {
        Facts {
            networkd_running: true,
            networkd_state: Some(state.into()),
            networkd_file: Some("/etc/systemd/network/10-eth0.network".into()),
            ..facts()
        }
    }

    fn client(kind: DhcpKind, argv: &[&str], pidfile: Option<&str>) -> DhcpClient {
        DhcpClient {
            kind,
            pid: 812,
            argv: argv.iter().map(|a| a.to_string()).collect(),
            pidfile: pidfile.map(str::to_string),
            ifaces: vec!["eth0".into()],
        }
    }

    #[test]
    fn auto_picks_the_manager_that_claims_the_interface() {
        let r = resolve_auto(&nm(), &all_tools);
        assert_eq!(r.step, HealStep::NetworkManager);
        assert_eq!(
            r.line,
            "heal back-end networkmanager (/run/NetworkManager/devices/3 says managed)"
        );
        assert!(!r.warning);
        let r = resolve_auto(&networkd("configured"), &all_tools);
        assert_eq!(r.step, HealStep::Networkd);
        assert_eq!(
            r.line,
            "heal back-end networkd (/run/systemd/netif/links/3 says configured, /etc/systemd/network/10-eth0.network)"
        );
        let f = Facts {
            netifd_running: true,
            netifd_logical: Some(("wan".into(), "/etc/config/network")),
            ..facts()
        };
        let r = resolve_auto(&f, &all_tools);
        assert_eq!(r.step, HealStep::Netifd(Some("wan".into())));
        assert!(
            r.line.contains("/etc/config/network maps eth0 to wan"),
            "{}",
            r.line
        );
        let f = Facts {
            ifupdown: Some((
                IfupdownKind::Debian,
                "/run/network/ifstate lists eth0 up".into(),
            )),
            dhcp: vec![client(DhcpKind::Dhclient, &["dhclient", "eth0"], None)],
            ..facts()
        };
        let r = resolve_auto(&f, &all_tools);
        assert_eq!(r.step, HealStep::IfUpDown, "ifup's dhclient is ifupdown's");
        assert!(!r.warning);
        let f = Facts {
            dhcp: vec![client(DhcpKind::Dhcpcd, &["dhcpcd", "eth0"], None)],
            ..facts()
        };
        let r = resolve_auto(&f, &all_tools);
        assert_eq!(r.step, HealStep::Dhcp, "a DHCP client on its own");
        assert_eq!(r.line, "heal back-end dhcp (dhcpcd (pid 812) serves eth0)");
    }

    #[test]
    fn what_managers_do_not_claim_is_not_theirs() {
        // NM not running (a stale device file), NM running but unmanaged, networkd leaving
        // the link alone, networkd not running: nothing.
        for f in [
            Facts {
                nm_managed: Some(true),
                ..facts()
            },
            Facts {
                nm_running: true,
                nm_managed: Some(false),
                ..facts()
            },
            networkd("unmanaged"),
            Facts {
                networkd_running: false,
                ..networkd("configured")
            },
            Facts {
                networkd_file: None,
                ..networkd("pending")
            },
            Facts {
                netifd_logical: Some(("wan".into(), "/etc/config/network")),
                ..facts()
            },
        ] {
            assert_eq!(claims(&f), vec![], "{f:?}");
        }
    }

    #[test]
    fn nothing_found_warns_with_the_fix_and_falls_back_to_link() {
        let r = resolve_auto(&facts(), &all_tools);
        assert_eq!(r.step, HealStep::Link);
        assert!(r.warning);
        assert!(r.line.contains("nothing found"), "{}", r.line);
        assert!(r.line.contains("install ifupdown"), "{}", r.line);
        assert!(r.line.contains("heal = link"), "{}", r.line);
        assert!(r.line.contains("heal = /path/to/script"), "{}", r.line);
    }

    #[test]
    fn two_managers_claiming_one_interface_is_a_warning_naming_both() {
        let f = Facts {
            ifupdown: Some((
                IfupdownKind::Debian,
                "/etc/network/interfaces has a stanza for eth0".into(),
            )),
            ..nm()
        };
        let r = resolve_auto(&f, &all_tools);
        assert_eq!(r.step, HealStep::NetworkManager);
        assert!(r.warning);
        assert!(
            r.line.contains("networkmanager") && r.line.contains("ifupdown claims it too"),
            "{}",
            r.line
        );
    }

    #[test]
    fn auto_with_its_tool_missing_falls_back_to_link() {
        let r = resolve_auto(&networkd("configured"), &no_tools);
        assert_eq!(r.step, HealStep::Link);
        assert!(r.warning);
        assert!(
            r.line
                .contains("networkctl is not found in /sbin:/usr/sbin:/bin:/usr/bin"),
            "{}",
            r.line
        );
    }

    fn argv(p: Plan) -> Vec<String> {
        match p {
            Plan::Commands(c) => c.iter().map(|a| a.join(" ")).collect(),
            Plan::Link => vec!["link".into()],
        }
    }

    #[test]
    fn each_back_end_step_runs_its_argv() {
        let t = Duration::from_secs(60);
        let f = facts();
        let run =
            |step: HealStep, f: &Facts| argv(commands(&step, "eth0", f, &all_tools, t).unwrap());
        assert_eq!(
            run(HealStep::NetworkManager, &f),
            ["/usr/bin/nmcli --wait 55 device connect eth0"]
        );
        assert_eq!(
            run(HealStep::Networkd, &f),
            ["/usr/bin/networkctl reconfigure eth0"]
        );
        assert_eq!(
            run(HealStep::Netifd(Some("wan".into())), &f),
            [
                "/usr/bin/ubus call network.interface.wan down",
                "/usr/bin/ubus call network.interface.wan up"
            ]
        );
        assert_eq!(
            run(HealStep::IfUpDown, &f),
            ["/usr/bin/ifdown eth0", "/usr/bin/ifup eth0"]
        );
        assert_eq!(run(HealStep::Link, &f), ["link"]);
        assert_eq!(run(HealStep::Auto, &f), ["link"], "auto, nothing found");
        assert_eq!(
            run(HealStep::Auto, &networkd("configured")),
            ["/usr/bin/networkctl reconfigure eth0"]
        );
        let short = commands(
            &HealStep::NetworkManager,
            "eth0",
            &f,
            &all_tools,
            Duration::from_secs(3),
        );
        assert_eq!(
            argv(short.unwrap()),
            ["/usr/bin/nmcli --wait 5 device connect eth0"]
        );
        let err = commands(&HealStep::Networkd, "eth0", &f, &no_tools, t).unwrap_err();
        assert_eq!(err, "networkctl not found in /sbin:/usr/sbin:/bin:/usr/bin");
        let err = commands(&HealStep::Netifd(None), "eth0", &f, &all_tools, t).unwrap_err();
        assert!(err.contains("netifd:LOGICAL"), "{err}");
        let f2 = Facts {
            netifd_logical: Some(("wan".into(), "/var/state/network")),
            ..facts()
        };
        assert_eq!(
            run(HealStep::Netifd(None), &f2)[1],
            "/usr/bin/ubus call network.interface.wan up"
        );
    }

    #[test]
    fn dhcp_renews_through_whoever_owns_the_lease() {
        let t = Duration::from_secs(60);
        let run = |f: &Facts| commands(&HealStep::Dhcp, "eth0", f, &all_tools, t).map(argv);
        assert_eq!(
            run(&nm()).unwrap(),
            ["/usr/bin/nmcli --wait 55 device connect eth0"]
        );
        assert_eq!(
            run(&networkd("configured")).unwrap(),
            ["/usr/bin/networkctl renew eth0"]
        );
        let f = Facts {
            netifd_running: true,
            netifd_logical: Some(("wan".into(), "/etc/config/network")),
            dhcp: vec![client(DhcpKind::Udhcpc, &["udhcpc", "-i", "eth0"], None)],
            ..facts()
        };
        assert_eq!(
            run(&f).unwrap(),
            ["/usr/bin/ubus call network.interface.wan renew"],
            "netifd owns its udhcpc"
        );
        let with = |c: DhcpClient| Facts {
            dhcp: vec![c],
            ..facts()
        };
        assert_eq!(
            run(&with(client(
                DhcpKind::Udhcpc,
                &["udhcpc", "-i", "eth0"],
                None
            )))
            .unwrap(),
            ["/usr/bin/kill -USR1 812"]
        );
        assert_eq!(
            run(&with(client(DhcpKind::Dhcpcd, &["dhcpcd", "eth0"], None))).unwrap(),
            ["/usr/bin/dhcpcd -n eth0"]
        );
        let dh = client(
            DhcpKind::Dhclient,
            &[
                "/sbin/dhclient",
                "-4",
                "-pf",
                "/run/dhclient.eth0.pid",
                "eth0",
            ],
            Some("/run/dhclient.eth0.pid"),
        );
        assert_eq!(
            run(&Facts {
                ifupdown: Some((IfupdownKind::Debian, "x".into())),
                ..with(dh)
            })
            .unwrap(),
            [
                "/usr/bin/dhclient -x -pf /run/dhclient.eth0.pid eth0",
                "/usr/bin/dhclient -4 -pf /run/dhclient.eth0.pid eth0"
            ]
        );
        let err = run(&facts()).unwrap_err();
        assert!(err.starts_with("no DHCP client serves eth0"), "{err}");
    }

    #[test]
    fn each_line_is_said_once_and_again_on_change() {
        let mut said = Said::default();
        let pick = |step: HealStep, why: &str| Resolved {
            step,
            line: format!("heal back-end ({why})"),
            warning: false,
        };
        assert!(said.auto_changed(&pick(HealStep::Networkd, "configured")));
        assert!(!said.auto_changed(&pick(HealStep::Networkd, "configured")));
        assert!(
            !said.auto_changed(&pick(HealStep::Networkd, "configuring")),
            "the same pick for another reason is not said again"
        );
        assert!(said.auto_changed(&pick(HealStep::IfUpDown, "b")));
        assert!(said.auto_changed(&pick(HealStep::Networkd, "a")));
        assert_eq!(said.fresh(vec!["x".into(), "y".into()]), ["x", "y"]);
        assert_eq!(
            said.fresh(vec!["x".into(), "y".into()]),
            Vec::<String>::new()
        );
        assert_eq!(said.fresh(vec!["y".into(), "z".into()]), ["z"]);
        assert!(concerns(&[HealStep::Link, HealStep::Auto]));
        assert!(!concerns(&[HealStep::Link, HealStep::Reboot]));
    }

    #[test]
    fn checks_before_needed() {
        let ladder = [HealStep::Networkd, HealStep::Link];
        let got = check_ladder("eth0", &ladder, &facts(), &no_tools);
        assert_eq!(
            got,
            [Finding::Error(
                "eth0: heal step networkd: networkctl not found in /sbin:/usr/sbin:/bin:/usr/bin"
                    .into()
            )]
        );
        let got = check_ladder("eth0", &[HealStep::Auto], &facts(), &no_tools);
        assert!(
            matches!(&got[..], [Finding::Warning(w)] if w.contains("install ifupdown")),
            "{got:?}"
        );
        let got = check_ladder(
            "eth0",
            &[HealStep::Auto],
            &networkd("configured"),
            &all_tools,
        );
        assert!(
            matches!(&got[..], [Finding::Note(n)] if n.starts_with("eth0: heal step auto: heal back-end networkd (")),
            "{got:?}"
        );
        let got = check_ladder("eth0", &[HealStep::Netifd(None)], &facts(), &all_tools);
        assert!(
            matches!(&got[..], [Finding::Error(e)] if e.contains("netifd:LOGICAL")),
            "{got:?}"
        );
        let got = check_ladder("eth0", &[HealStep::Dhcp], &facts(), &all_tools);
        assert!(
            matches!(&got[..], [Finding::Warning(w)] if w.contains("no DHCP client")),
            "{got:?}"
        );
        let f = Facts {
            dhcp: vec![client(DhcpKind::Udhcpc, &["udhcpc"], None)],
            ..facts()
        };
        let got = check_ladder("eth0", &[HealStep::Dhcp], &f, &no_tools);
        assert_eq!(
            got,
            [Finding::Error(
                "eth0: heal step dhcp: kill not found in /sbin:/usr/sbin:/bin:/usr/bin".into()
            )]
        );
        let got = check_ladder("eth0", &[HealStep::IfUpDown], &facts(), &all_tools);
        assert!(matches!(&got[..], [Finding::Note(_)]), "{got:?}");
    }
}
