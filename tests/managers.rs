//! The built-in heal back-ends (issue 12) against the real managers: NetworkManager 1.42 and
//! systemd-networkd 252 from Debian, each managing one end of a veth inside the test's own
//! network namespace, the real `netheal` binary beside them.
//!
//! Isolation (the machine's own networking is never touched): every manager runs in the
//! test's host namespace *and* in a private mount namespace held by a keeper process
//! (`ip netns exec H unshare -m`, then `sleep`); everything else (dbus, the manager, nmcli,
//! networkctl, netheal) enters it with `nsenter -t KEEPER -m -n`. In there: a tmpfs on /run
//! (the managers' state, the private bus socket), /sys read-only (so they do not wait for
//! udev), /usr overlaid with the unpacked NetworkManager package (see .ci/managers.sh), /etc
//! overlaid read-only with the lab's config (NetworkManager.conf, keyfile; the host's
//! /etc/NetworkManager, /etc/systemd/network and /etc/network hidden), /var/lib overlaid
//! with a tmpfs upper dir (NM's lease and state files), and a private `dbus-daemon` with a
//! private config.
//! NetworkManager gets `unmanaged-devices=except:interface-name:IF`, `dns=none`,
//! `hostname-mode=none`; networkd gets one `.network` file in the private /run. Dropping a
//! [`Stack`] kills every process it started and deletes the namespaces, also on failure.
//!
//! Where the packages are: NETHEAL_MANAGERS_DIR (default /opt/netheal-ci/managers, made by
//! .ci/managers.sh). Without it (or without root) the tests skip; with CI=true they fail.
//!
//! Heal times are printed (`cargo test --test managers -- --nocapture`); bench/ keeps them.

mod lab;

use lab::{secs, wait_until, Lab, Netheal, HOST4, PEER4};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

const MANAGERS_DIR: &str = "/opt/netheal-ci/managers";
const NETWORKD: &str = "/lib/systemd/systemd-networkd";

/// The unpacked NetworkManager packages, or None (with a skip line, or a panic under CI=true)
/// when they are missing.
fn managers_dir(test: &str) -> Option<PathBuf> {
    let dir = PathBuf::from(
        std::env::var("NETHEAL_MANAGERS_DIR").unwrap_or_else(|_| MANAGERS_DIR.to_owned()),
    );
    if dir.join("usr/sbin/NetworkManager").is_file() && dir.join("usr/bin/nmcli").is_file() {
        return Some(dir);
    }
    let what = format!(
        "NetworkManager unpacked in {} (run .ci/managers.sh)",
        dir.display()
    );
    assert!(
        std::env::var("CI").map_or(true, |v| v != "true"),
        "{test}: CI=true, so this test may not skip, but it needs {what}"
    );
    eprintln!("SKIP {test}: needs {what} (set CI=true to make this a failure)");
    None
}

/// Which manager a [`Stack`] runs on its interface.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mgr {
    NetworkManager,
    Networkd,
    /// No manager at all, and every heal tool hidden (`Stack::bare`).
    Nothing,
}

/// How the manager configures the watched interface.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Addressing {
    /// 198.51.100.2/24 + 2001:db8:N::2/64, default route via 198.51.100.1.
    Static,
    /// DHCPv4 from dnsmasq in the peer namespace (pool 198.51.100.100-150, 2 min leases).
    Dhcp,
}

/// Tools a bare box must not have (whited out of /usr in its private mount namespace).
const HIDDEN_TOOLS: &[&str] = &[
    "bin/nmcli",
    "bin/networkctl",
    "sbin/ifup",
    "sbin/ifdown",
    "sbin/dhclient",
    "sbin/udhcpc",
    "sbin/dhcpcd",
    "bin/busybox",
    "sbin/busybox",
];

/// One network stack in a test's host namespace: the lab pair, a keeper holding the private
/// mount namespace, and the daemons started in it (dbus, the manager) and in the peer
/// (dnsmasq). Fields drop in order: daemons first (see `Drop`), then the lab (namespaces).
struct Stack {
    lab: Lab,
    mgr: Mgr,
    addressing: Addressing,
    keeper: Child,
    /// Pid of the keeper: `nsenter -t` target, and `/proc/PID/root` shows its mounts.
    kpid: u32,
    daemons: Vec<(String, Child)>,
}

impl Stack {
    /// A stack with `mgr` configuring the watched interface, up and configured, or None when
    /// the test must skip.
    fn start(tag: &str, net6: u16, mgr: Mgr, addressing: Addressing) -> Option<Stack> {
        Stack::start_hiding(tag, net6, mgr, addressing, &[])
    }

    /// [`Stack::start`], with the tools `hide` (paths under /usr) whited out.
    fn start_hiding(
        tag: &str,
        net6: u16,
        mgr: Mgr,
        addressing: Addressing,
        hide: &[&str],
    ) -> Option<Stack> {
        let mut tools = vec!["unshare", "nsenter", "mount", "dbus-daemon"];
        if addressing == Addressing::Dhcp {
            tools.push("dnsmasq");
        }
        if mgr == Mgr::Networkd {
            tools.push("networkctl");
        }
        let lab = Lab::pair(tag, net6, &tools)?;
        let test = std::thread::current().name().unwrap_or(tag).to_owned();
        let mdir = managers_dir(&test)?;
        if mgr == Mgr::Networkd && !Path::new(NETWORKD).is_file() {
            assert!(
                std::env::var("CI").map_or(true, |v| v != "true"),
                "{test}: CI=true but {NETWORKD} is missing"
            );
            eprintln!("SKIP {test}: needs {NETWORKD}");
            return None;
        }
        // The manager, not the lab, configures the watched side. The link-local address
        // stays: networkd waits for it before it calls the link configured.
        lab.ip(
            &lab.host,
            &["addr", "flush", "dev", &lab.ifc, "scope", "global"],
        );
        let mut st = Stack::keep(lab, &mdir, mgr, addressing, hide);
        st.start_bus();
        if addressing == Addressing::Dhcp {
            st.start_dnsmasq();
        }
        match mgr {
            Mgr::NetworkManager => st.start_nm(),
            Mgr::Networkd => st.start_networkd(),
            Mgr::Nothing => unreachable!("use Stack::bare"),
        }
        st.wait_configured();
        Some(st)
    }

    /// A box with no manager and no heal tool: the lab pair with its static addresses, a
    /// private mount namespace where the tools of [`HIDDEN_TOOLS`] are whited out of /usr and
    /// /run is empty, so neither `auto` nor an explicit back-end finds anything to use.
    fn bare(tag: &str, net6: u16) -> Option<Stack> {
        let lab = Lab::pair(tag, net6, &["unshare", "nsenter", "mount", "mknod"])?;
        let test = std::thread::current().name().unwrap_or(tag).to_owned();
        let mdir = managers_dir(&test)?;
        let st = Stack::keep(lab, &mdir, Mgr::Nothing, Addressing::Static, HIDDEN_TOOLS);
        for tool in ["nmcli", "networkctl", "ifup", "ifdown"] {
            let found = st.sh(&format!("command -v {tool} || true"));
            assert!(found.trim().is_empty(), "{tool} still visible: {found:?}");
        }
        Some(st)
    }

    /// The private mount namespace: lab files, the keeper, its mounts. `hide`: paths under
    /// /usr to white out (overlayfs treats a 0/0 character device in a layer as a whiteout).
    fn keep(lab: Lab, mdir: &Path, mgr: Mgr, addressing: Addressing, hide: &[&str]) -> Stack {
        let d = lab.dir.clone();
        for sub in [
            "usr",
            "etc/NetworkManager/system-connections",
            "etc/NetworkManager/conf.d",
            "etc/systemd/network",
            "etc/network",
            "varlib",
        ] {
            fs::create_dir_all(d.join(sub)).expect("lab dir");
        }
        for path in hide {
            let p = d.join("usr").join(path);
            fs::create_dir_all(p.parent().unwrap()).unwrap();
            lab::must(&["mknod", p.to_str().unwrap(), "c", "0", "0"]);
        }
        fs::write(d.join("etc/network/interfaces"), "# netheal lab: empty\n").unwrap();
        lab.write_file("dbus.conf", DBUS_CONF, 0o644);
        let ready = d.join("keeper.ready");
        let script = format!(
            "set -e\n\
             mount -t tmpfs -o mode=0755 tmpfs /run\n\
             mkdir -p /run/dbus /run/systemd/network\n\
             mount -o remount,ro /sys\n\
             mount -t overlay overlay -o lowerdir={d}/usr:{m}/usr:/usr /usr\n\
             mount -t overlay overlay -o lowerdir={d}/etc:/etc /etc\n\
             mount --bind {d}/etc/NetworkManager /etc/NetworkManager\n\
             mount --bind {d}/etc/systemd/network /etc/systemd/network\n\
             mount --bind {d}/etc/network /etc/network\n\
             mount -t tmpfs -o mode=0755 tmpfs {d}/varlib\n\
             mkdir {d}/varlib/upper {d}/varlib/work\n\
             mount -t overlay overlay -o lowerdir=/var/lib,upperdir={d}/varlib/upper,workdir={d}/varlib/work /var/lib\n\
             : > {r}\n\
             exec sleep 100000\n",
            d = d.display(),
            m = mdir.display(),
            r = ready.display()
        );
        let script = lab.write_file("keeper.sh", &script, 0o644);
        let log = fs::File::create(d.join("keeper.log")).unwrap();
        let keeper = Command::new("ip")
            .args([
                "netns",
                "exec",
                &lab.host,
                "unshare",
                "-m",
                "--propagation",
                "private",
            ])
            .args(["sh", script.to_str().unwrap()])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start the keeper");
        // ip, unshare and sh all exec: the child's pid is the keeper's.
        let kpid = keeper.id();
        let st = Stack {
            lab,
            mgr,
            addressing,
            keeper,
            kpid,
            daemons: Vec::new(),
        };
        let ok = wait_until(s(10.0), || ready.exists());
        assert!(
            ok,
            "keeper did not set up its mounts: {}",
            fs::read_to_string(d.join("keeper.log")).unwrap_or_default()
        );
        let mounts = fs::read_to_string(format!("/proc/{kpid}/mounts")).unwrap();
        assert!(
            mounts.lines().any(|l| l.contains(" /sys sysfs ro,")),
            "/sys not read-only in the private mount namespace"
        );
        st
    }

    /// A command that enters the keeper's network and mount namespaces.
    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.kpid.to_string(), "-m", "-n", "--"])
            .args(args)
            .stdin(Stdio::null());
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            c.env_remove(var);
        }
        c
    }

    /// Run a command inside; returns (success, stdout + stderr).
    fn run_in(&self, args: &[&str]) -> (bool, String) {
        let out = self.cmd(args).output().expect("nsenter");
        let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&out.stderr));
        (out.status.success(), text)
    }

    /// A shell command inside that must succeed; returns its output.
    fn sh(&self, script: &str) -> String {
        let (ok, out) = self.run_in(&["sh", "-c", script]);
        assert!(ok, "{script:?} failed: {out}");
        out
    }

    /// A path inside the private mount namespace, seen from here.
    fn inside(&self, path: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{path}", self.kpid))
    }

    /// Start a daemon inside (own process group, output to `log` in the lab directory).
    fn daemon(&mut self, name: &str, args: &[&str], env: &[(&str, &str)]) {
        let log = fs::File::create(self.lab.dir.join(format!("{name}.log"))).unwrap();
        let mut c = self.cmd(args);
        c.envs(env.iter().copied())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0);
        let child = c
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        self.daemons.push((name.to_owned(), child));
    }

    /// Stop a daemon started by [`Stack::daemon`] (SIGTERM, as its service manager would),
    /// and reap it.
    fn stop(&mut self, name: &str) {
        let i = self
            .daemons
            .iter()
            .position(|d| d.0 == name)
            .unwrap_or_else(|| panic!("no daemon {name}"));
        let (_, mut child) = self.daemons.remove(i);
        lab::kill("TERM", i64::from(child.id()));
        if !wait_until(s(10.0), || child.try_wait().ok().flatten().is_some()) {
            let _ = child.kill(); // not fatal: gone meanwhile
            let _ = child.wait();
        }
    }

    fn log_of(&self, name: &str) -> String {
        fs::read_to_string(self.lab.dir.join(format!("{name}.log"))).unwrap_or_default()
    }

    fn start_bus(&mut self) {
        let conf = self.lab.path("dbus.conf");
        self.daemon(
            "dbus",
            &[
                "dbus-daemon",
                &format!("--config-file={conf}"),
                "--nofork",
                "--nopidfile",
            ],
            &[],
        );
        let sock = self.inside("/run/dbus/system_bus_socket");
        assert!(
            wait_until(s(10.0), || sock.exists()),
            "private dbus-daemon did not come up: {}",
            self.log_of("dbus")
        );
    }

    fn start_nm(&mut self) {
        let ifc = self.lab.ifc.clone();
        let etc = self.lab.dir.join("etc/NetworkManager");
        fs::write(
            etc.join("NetworkManager.conf"),
            format!(
                "[main]\nplugins=keyfile\nauth-polkit=false\ndns=none\nrc-manager=unmanaged\n\
                 hostname-mode=none\nno-auto-default=*\n\
                 [keyfile]\nunmanaged-devices=except:interface-name:{ifc}\n\
                 [logging]\nlevel=INFO\n"
            ),
        )
        .unwrap();
        let ip = match self.addressing {
            Addressing::Static => format!(
                "[ipv4]\nmethod=manual\naddress1={HOST4}/24,{PEER4}\n\
                 [ipv6]\nmethod=manual\naddress1={}\n",
                self.lab.host6_cidr()
            ),
            Addressing::Dhcp => "[ipv4]\nmethod=auto\n[ipv6]\nmethod=ignore\n".to_owned(),
        };
        let key = etc.join(format!("system-connections/{ifc}.nmconnection"));
        fs::write(
            &key,
            format!(
                "[connection]\nid=lab-{ifc}\ntype=ethernet\ninterface-name={ifc}\n\
                 autoconnect=true\n{ip}"
            ),
        )
        .unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        self.daemon(
            "nm",
            &["/usr/sbin/NetworkManager", "--no-daemon", "--debug"],
            &[],
        );
    }

    fn start_networkd(&mut self) {
        let ifc = self.lab.ifc.clone();
        let net = match self.addressing {
            Addressing::Static => format!(
                "[Network]\nAddress={HOST4}/24\nAddress={}\nGateway={PEER4}\nIPv6AcceptRA=no\n",
                self.lab.host6_cidr()
            ),
            Addressing::Dhcp => "[Network]\nDHCP=ipv4\nIPv6AcceptRA=no\n".to_owned(),
        };
        fs::write(
            self.inside(&format!("/run/systemd/network/10-{ifc}.network")),
            format!("[Match]\nName={ifc}\n{net}"),
        )
        .unwrap();
        self.daemon(
            "networkd",
            &[NETWORKD],
            &[
                ("SYSTEMD_LOG_TARGET", "console"),
                ("SYSTEMD_LOG_LEVEL", "info"),
            ],
        );
    }

    /// dnsmasq as the DHCP server in the peer namespace, logging every DHCP message.
    fn start_dnsmasq(&mut self) {
        let log = fs::File::create(self.lab.dir.join("dnsmasq.log")).unwrap();
        let args = [
            "dnsmasq".to_owned(),
            "--keep-in-foreground".into(),
            "--log-facility=-".into(),
            "--log-dhcp".into(),
            "--conf-file=/dev/null".into(),
            "--port=0".into(),
            "--bind-interfaces".into(),
            format!("--interface={}", self.lab.pifc),
            "--except-interface=lo".into(),
            "--dhcp-range=198.51.100.100,198.51.100.150,255.255.255.0,2m".into(),
            "--dhcp-authoritative".into(),
            format!("--dhcp-leasefile={}", self.lab.path("dnsmasq.leases")),
            format!("--pid-file={}", self.lab.path("dnsmasq.pid")),
            "--user=root".into(),
            "--group=root".into(),
        ];
        let child = Command::new("ip")
            .args(["netns", "exec", &self.lab.peer])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .process_group(0)
            .spawn()
            .expect("start dnsmasq");
        self.daemons.push(("dnsmasq".into(), child));
        assert!(
            wait_until(s(10.0), || self
                .log_of("dnsmasq")
                .contains("DHCP, sockets bound")),
            "dnsmasq did not start: {}",
            self.log_of("dnsmasq")
        );
    }

    /// The address the watched side has from the DHCP pool, if any.
    fn dhcp_addr(&self) -> Option<String> {
        let out = lab::run(&[
            "ip",
            "-n",
            &self.lab.host,
            "-4",
            "-o",
            "addr",
            "show",
            "dev",
            &self.lab.ifc,
        ]);
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .filter_map(|w| w.split('/').next())
            .find(|a| {
                a.strip_prefix("198.51.100.")
                    .and_then(|n| n.parse::<u8>().ok())
                    .is_some_and(|n| (100..=150).contains(&n))
            })
            .map(str::to_owned)
    }

    /// The address netheal's probes leave from.
    fn host_addr(&self) -> String {
        match self.addressing {
            Addressing::Static => HOST4.to_owned(),
            Addressing::Dhcp => self.dhcp_addr().expect("a DHCP address"),
        }
    }

    /// Has the watched side its addresses and default route (as the manager configures them)?
    fn configured(&self) -> bool {
        let addr = match self.addressing {
            Addressing::Static => {
                self.lab.has_addr(&self.lab.host, &self.lab.ifc, HOST4)
                    && self
                        .lab
                        .has_addr(&self.lab.host, &self.lab.ifc, &self.lab.host6())
            }
            Addressing::Dhcp => self.dhcp_addr().is_some(),
        };
        addr && self
            .lab
            .default_route(&self.lab.host)
            .contains(&format!("via {PEER4}"))
    }

    /// Wait until the manager has configured the interface and says so in its own state.
    fn wait_configured(&self) {
        let ok = wait_until(s(30.0), || self.configured() && self.manager_says_done());
        assert!(
            ok,
            "{:?} did not configure {} within 30s\n{}\n{}",
            self.mgr,
            self.lab.ifc,
            self.sh("ip addr; ip route"),
            self.manager_log()
        );
    }

    fn manager_says_done(&self) -> bool {
        match self.mgr {
            Mgr::NetworkManager => self
                .run_in(&["nmcli", "-t", "-f", "DEVICE,STATE", "device"])
                .1
                .lines()
                .any(|l| l == format!("{}:connected", self.lab.ifc)),
            Mgr::Networkd => fs::read_to_string(
                self.inside(&format!("/run/systemd/netif/links/{}", self.ifindex())),
            )
            .is_ok_and(|t| t.lines().any(|l| l == "ADMIN_STATE=configured")),
            Mgr::Nothing => true,
        }
    }

    fn ifindex(&self) -> u32 {
        fs::read_to_string(self.inside(&format!("/sys/class/net/{}/ifindex", self.lab.ifc)))
            .expect("ifindex")
            .trim()
            .parse()
            .unwrap()
    }

    fn manager_log(&self) -> String {
        match self.mgr {
            Mgr::NetworkManager => format!("---- NetworkManager ----\n{}", self.log_of("nm")),
            Mgr::Networkd => format!("---- networkd ----\n{}", self.log_of("networkd")),
            Mgr::Nothing => String::new(),
        }
    }

    /// netheal inside (keeper's net + mount namespaces) with `--log stderr`, the lab's quiet
    /// options and `args`.
    fn netheal(&self, args: &[&str]) -> Netheal {
        let mut c = self.cmd(&[lab::bin(), "--log", "stderr"]);
        c.args(lab::quiet_args()).args(args);
        Netheal::spawn(c, format!("{:?}: netheal {}", self.mgr, args.join(" ")))
    }

    /// A configuration file for the watched interface with `heal` as its ladder and the
    /// settings of [`FAST`].
    fn conf(&self, heal: &str) -> String {
        let body = format!(
            "[{}]\ntarget = {PEER4}\ninterval = 200ms\ntimeout = 300ms\nbackoff = 1s:4s\n\
             heal-timeout = 30s\non-admin-down = heal\nheal = {heal}\n",
            self.lab.ifc
        );
        let p = self.lab.write_file("netheal.conf", &body, 0o644);
        p.to_str().unwrap().to_owned()
    }

    /// The "ISP" forgets the lease: the peer drops our echo requests until dnsmasq has
    /// acknowledged a renewal (a DHCPACK logged after this call); then the gate opens.
    fn drop_lease_upstream(&self) -> Gate {
        let from = self.host_addr();
        let peer = self.lab.peer.clone();
        self.lab.nft(
            &peer,
            "gate",
            &lab::input_rule(
                "nhgate",
                &format!("ip saddr {from} icmp type echo-request drop"),
            ),
        );
        let closed = Instant::now();
        let log = self.lab.dir.join("dnsmasq.log");
        let seen = fs::read_to_string(&log).unwrap_or_default().len();
        let stop = Arc::new(AtomicBool::new(false));
        let halt = Arc::clone(&stop);
        let thread = std::thread::spawn(move || {
            let mut ack = None;
            wait_until(s(120.0), || {
                let text = fs::read_to_string(&log).unwrap_or_default();
                ack = text.get(seen..).and_then(|new| {
                    new.lines()
                        .find(|l| l.contains("DHCPACK("))
                        .map(str::to_owned)
                });
                ack.is_some() || halt.load(Ordering::Relaxed)
            });
            let ack = ack?;
            let at = Instant::now();
            lab::must(&[
                "ip", "netns", "exec", &peer, "nft", "delete", "table", "inet", "nhgate",
            ]);
            Some((at, ack))
        });
        Gate {
            closed,
            stop,
            thread: Some(thread),
        }
    }

    /// How often the watched side's carrier went down so far (admin down counts too).
    fn carrier_downs(&self) -> u64 {
        let p = self.inside(&format!(
            "/sys/class/net/{}/carrier_down_count",
            self.lab.ifc
        ));
        fs::read_to_string(p)
            .expect("carrier_down_count")
            .trim()
            .parse()
            .unwrap()
    }
}

/// The closed gate of [`Stack::drop_lease_upstream`] and the thread that opens it.
struct Gate {
    closed: Instant,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<Option<(Instant, String)>>>,
}

impl Gate {
    /// When the gate opened and the DHCPACK line that opened it; None if it never did.
    fn opened(mut self) -> Option<(Instant, String)> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take()?.join().ok()?
    }
}

impl Drop for Gate {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join(); // not fatal: the thread only watches a log
        }
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.manager_log());
            for n in ["dbus", "dnsmasq", "keeper", "monitor"] {
                eprintln!("---- {n} ----\n{}", self.log_of(n));
            }
        }
        for (_, child) in self.daemons.iter_mut().rev() {
            lab::kill("KILL", -i64::from(child.id()));
            let _ = child.kill(); // not fatal: it may have exited already
            let _ = child.wait();
        }
        lab::kill("KILL", -i64::from(self.kpid));
        let _ = self.keeper.kill(); // not fatal: as above
        let _ = self.keeper.wait();
        // Then `lab` drops: whatever is left in the namespaces dies, the namespaces go.
    }
}

const DBUS_CONF: &str = r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<!-- netheal lab: a private system bus inside one test's mount namespace; root only there. -->
<busconfig>
  <type>system</type>
  <listen>unix:path=/run/dbus/system_bus_socket</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <allow own="*"/>
    <allow send_destination="*"/>
    <allow receive_sender="*"/>
  </policy>
</busconfig>
"#;

// ---- the lab's premise, by hand: neither manager heals by itself; its own tool does ----

/// Flush, then link down: the manager alone leaves both broken for 2s; `heal` run by hand
/// restores its configuration.
fn by_hand(st: &Stack, heal: &[&str]) {
    let ifc = st.lab.ifc.clone();
    st.lab.ip(&st.lab.host, &["addr", "flush", "dev", &ifc]);
    std::thread::sleep(s(2.0));
    assert!(!st.configured(), "{:?} restored a flush by itself", st.mgr);
    let t = Instant::now();
    let (ok, out) = st.run_in(heal);
    assert!(ok, "{heal:?}: {out}");
    assert!(
        wait_until(s(10.0), || st.configured()),
        "{heal:?} did not heal a flush: {out}"
    );
    eprintln!(
        "by hand {:?}: flush healed by {heal:?} in {:.3}s",
        st.mgr,
        secs(t, Instant::now())
    );
    st.lab.ip(&st.lab.host, &["link", "set", &ifc, "down"]);
    std::thread::sleep(s(2.0));
    assert!(
        !st.configured() || !link_up(st),
        "{:?} restored a link down by itself",
        st.mgr
    );
    let t = Instant::now();
    let (ok, out) = st.run_in(heal);
    assert!(ok, "{heal:?}: {out}");
    assert!(
        wait_until(s(10.0), || st.configured() && link_up(st)),
        "{heal:?} did not heal a link down: {out}"
    );
    eprintln!(
        "by hand {:?}: link down healed by {heal:?} in {:.3}s",
        st.mgr,
        secs(t, Instant::now())
    );
}

#[test]
fn lab_networkmanager_does_not_heal_itself_nmcli_connect_does() {
    let Some(st) = Stack::start("hnm", 0x901, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    by_hand(&st, &["nmcli", "device", "connect", &ifc]);
}

#[test]
fn lab_networkd_does_not_heal_itself_networkctl_reconfigure_does() {
    let Some(st) = Stack::start("hnd", 0x902, Mgr::Networkd, Addressing::Static) else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    by_hand(&st, &["networkctl", "reconfigure", &ifc]);
}

// ---- the tests ----

/// What a test breaks on the watched side.
#[derive(Clone, Copy, Debug)]
enum Break {
    /// `ip addr flush dev IF`: every address, link-local too, and with them the routes.
    AddressFlush,
    /// `ip link set IF down`: the manager does not bring it back by itself.
    LinkDown,
}

/// Figures of one outage healed by one attempt, from netheal's own log lines.
struct Healed {
    /// Break -> `-> down` (the outage detected).
    detect: f64,
    /// `heal attempt 1: running` -> the step's end line.
    step: f64,
    /// `-> down` -> `-> up`: the heal time, outage detected to recovered.
    heal: f64,
    /// The step's end line.
    end: String,
}

/// Break the watched side as `brk` once netheal is up, wait for it to heal with one attempt
/// running `step` (a fragment of the `running ...` line), check the manager's configuration
/// is back, and print the figures.
fn break_and_heal(st: &Stack, nh: &Netheal, brk: Break, step: &str, what: &str) -> Healed {
    let ifc = &st.lab.ifc;
    let t0 = Instant::now();
    match brk {
        Break::AddressFlush => st.lab.ip(&st.lab.host, &["addr", "flush", "dev", ifc]),
        Break::LinkDown => st.lab.ip(&st.lab.host, &["link", "set", ifc, "down"]),
    };
    let (t_down, _) = nh.expect(t0, "-> down", s(15.0));
    let (t_heal, run) = nh.expect(t0, "heal attempt 1: running", s(15.0));
    assert!(run.contains(&format!("running {step}")), "{what}: {run}");
    let (_, (t_end, end)) = nh
        .wait_line(nh.index_at(t_heal), s(40.0), |l| {
            l.contains("heal attempt 1: ") && !l.contains("heal attempt 1: running")
        })
        .unwrap_or_else(|| panic!("{what}: heal attempt 1 did not end within 40s"));
    let (t_up, up) = nh.expect(t_heal, "-> up", s(30.0));
    assert_eq!(
        nh.count_lines("heal attempt 2"),
        0,
        "{what}: one attempt should do; {up}"
    );
    assert!(
        wait_until(s(5.0), || st.configured() && link_up(st)),
        "{what}: {:?} configuration not back after `-> up`:\n{}",
        st.mgr,
        st.sh("ip addr; ip route")
    );
    let h = Healed {
        detect: secs(t0, t_down),
        step: secs(t_heal, t_end),
        heal: secs(t_down, t_up),
        end,
    };
    let fault = match brk {
        Break::AddressFlush => "address flush",
        Break::LinkDown => "link down",
    };
    eprintln!(
        "HEAL {what} | {fault} | detected {:.3} s | step {:.3} s | healed {:.3} s | {}",
        h.detect,
        h.step,
        h.heal,
        h.end.split(": heal attempt 1: ").nth(1).unwrap_or(&h.end)
    );
    h
}

fn link_up(st: &Stack) -> bool {
    let show = st.lab.ip(&st.lab.host, &["link", "show", &st.lab.ifc]);
    let flags = show.split(['<', '>']).nth(1).unwrap_or("");
    flags.split(',').any(|f| f == "UP") && flags.split(',').any(|f| f == "LOWER_UP")
}

/// Options of every netheal in these tests but the ladder: fast rounds, short backoff, and
/// a link set down by someone else healed by the ladder (the default, `link-up`, sets it up
/// at once without the back-end these tests are about).
const FAST: &[&str] = &[
    "-t",
    PEER4,
    "-i",
    "200ms",
    "-W",
    "300ms",
    "-b",
    "1s:4s",
    "--heal-timeout",
    "30s",
    "--on-admin-down",
    "heal",
    "-v",
];

/// `heal = auto` in a configuration file: the back-end line names `backend`, and both an
/// address flush and a link down are healed by it.
fn auto_heals(st: &Stack, backend: &str, what: &str) {
    let conf = st.conf("auto");
    let mut chk = st.netheal(&["--check", "-c", &conf]);
    let status = chk.finish(s(15.0)).expect("--check did not exit");
    let text: Vec<String> = chk.lines().into_iter().map(|l| l.1).collect();
    assert_eq!(Netheal::code(status), 0, "{text:?}");
    let want = format!("{}: heal step auto: heal back-end {backend} (", st.lab.ifc);
    let resolved = text
        .iter()
        .find(|l| l.contains(&want))
        .unwrap_or_else(|| panic!("--check does not say {want:?}: {text:?}"));
    eprintln!("{what}: --check: {resolved}");
    let nh = st.netheal(&["-v", "-c", &conf]);
    let (_, pick) = nh.expect(
        nh.started,
        &format!("{}: heal back-end ", st.lab.ifc),
        s(10.0),
    );
    assert!(
        pick.contains(&format!("heal back-end {backend} (")),
        "auto picked the wrong back-end: {pick}"
    );
    nh.expect(nh.started, "-> up", s(15.0));
    let a = break_and_heal(st, &nh, Break::AddressFlush, "", what);
    assert!(a.end.contains(backend), "{what}: {}", a.end);
    let b = break_and_heal(st, &nh, Break::LinkDown, "", what);
    assert!(b.end.contains(backend), "{what}: {}", b.end);
    // Re-detected before each heal; the pick never changed. (It is logged again when its
    // reason changes: networkd's link file says `configuring` after a link down.)
    let picks: Vec<String> = nh
        .lines()
        .into_iter()
        .map(|l| l.1)
        .filter(|l| l.contains("heal back-end "))
        .collect();
    assert!(
        picks
            .iter()
            .all(|l| l.contains(&format!("heal back-end {backend} ("))),
        "{picks:?}"
    );
    eprintln!("{what}: {} back-end line(s): {picks:?}", picks.len());
}

/// The explicit step `step` (`-a STEP` on the command line) heals an address flush and a
/// link down.
fn step_heals(st: &Stack, step: &str, what: &str) {
    let mut args = FAST.to_vec();
    args.extend(["-a", step, &st.lab.ifc]);
    let nh = st.netheal(&args);
    nh.expect(nh.started, "-> up", s(15.0));
    let a = break_and_heal(st, &nh, Break::AddressFlush, step, what);
    assert!(a.end.contains("exited 0"), "{what}: {}", a.end);
    let b = break_and_heal(st, &nh, Break::LinkDown, step, what);
    assert!(b.end.contains("exited 0"), "{what}: {}", b.end);
}

#[test]
fn networkmanager_auto_heals_flush_and_link_down() {
    let Some(st) = Stack::start("nma", 0x911, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    auto_heals(&st, "networkmanager", "NetworkManager | heal = auto");
}

#[test]
fn networkmanager_step_heals_flush_and_link_down() {
    let Some(st) = Stack::start("nms", 0x912, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    step_heals(
        &st,
        "networkmanager",
        "NetworkManager | heal = networkmanager",
    );
}

#[test]
fn networkd_auto_heals_flush_and_link_down() {
    let Some(st) = Stack::start("nda", 0x913, Mgr::Networkd, Addressing::Static) else {
        return;
    };
    auto_heals(&st, "networkd", "systemd-networkd | heal = auto");
}

#[test]
fn networkd_step_heals_flush_and_link_down() {
    let Some(st) = Stack::start("nds", 0x914, Mgr::Networkd, Addressing::Static) else {
        return;
    };
    step_heals(&st, "networkd", "systemd-networkd | heal = networkd");
}

/// `heal = dhcp` on a DHCP-configured interface: the peer stops answering until we renew
/// ("ONT keeps link, ISP drops lease"); the step renews the lease from dnsmasq and the link
/// never goes down (carrier_down_count unchanged, `ip monitor link` never shows it without
/// UP and LOWER_UP).
fn dhcp_renews(st: &mut Stack, what: &str) {
    let ifc = st.lab.ifc.clone();
    let before = st.dhcp_addr().expect("a lease");
    // The gateway still answers ARP, only not our echoes: by default (`on-gateway-silent =
    // ignore`) not an outage at all, so the step would never run.
    let mut args = FAST.to_vec();
    args.extend(["--on-gateway-silent", "heal", "-a", "dhcp", &ifc]);
    let nh = st.netheal(&args);
    nh.expect(nh.started, "-> up", s(15.0));
    let host = st.lab.host.clone();
    st.lab
        .spawn_bg(&host, &["ip", "-o", "monitor", "link"], "monitor.log");
    std::thread::sleep(s(0.3)); // let ip monitor subscribe
    let downs = st.carrier_downs();
    let gate = st.drop_lease_upstream();
    let t0 = gate.closed;
    let (t_down, _) = nh.expect(t0, "-> down", s(15.0));
    let (t_heal, run) = nh.expect(t0, "heal attempt 1: running", s(15.0));
    assert!(run.contains("running dhcp"), "{run}");
    let (_, (t_end, end)) = nh
        .wait_line(nh.index_at(t_heal), s(40.0), |l| {
            l.contains("heal attempt 1: ") && !l.contains("heal attempt 1: running")
        })
        .expect("heal attempt 1 did not end within 40s");
    let (t_up, _) = nh.expect(t_heal, "-> up", s(30.0));
    let (t_ack, ack) = gate
        .opened()
        .expect("no DHCPACK after the lease was dropped");
    assert!(t_ack >= t_heal, "renewed before the heal: {ack}");
    assert!(
        ack.contains(&before),
        "renewed another address: {ack} (had {before})"
    );
    assert_eq!(st.dhcp_addr().as_deref(), Some(before.as_str()));
    assert_eq!(st.carrier_downs(), downs, "{what}: the link went down");
    let mon = fs::read_to_string(st.lab.path("monitor.log")).unwrap_or_default();
    for line in mon.lines().filter(|l| l.contains(&ifc)) {
        let flags = line.split(['<', '>']).nth(1).unwrap_or("");
        assert!(
            !line.starts_with("Deleted")
                && flags.split(',').any(|f| f == "UP")
                && flags.split(',').any(|f| f == "LOWER_UP"),
            "{what}: link event without UP,LOWER_UP during the renewal: {line}"
        );
    }
    eprintln!(
        "HEAL {what} | lease dropped | detected {:.3} s | step {:.3} s | healed {:.3} s | \
         {}; DHCPACK {:.3} s after the heal started; {} link events, none down",
        secs(t0, t_down),
        secs(t_heal, t_end),
        secs(t_down, t_up),
        end.split(": heal attempt 1: ").nth(1).unwrap_or(&end),
        secs(t_heal, t_ack),
        mon.lines().count()
    );
}

#[test]
fn networkmanager_dhcp_renews_lease_without_link_bounce() {
    let Some(mut st) = Stack::start("nmd", 0x915, Mgr::NetworkManager, Addressing::Dhcp) else {
        return;
    };
    dhcp_renews(&mut st, "NetworkManager | heal = dhcp");
}

#[test]
fn networkd_dhcp_renews_lease_without_link_bounce() {
    let Some(mut st) = Stack::start("ndd", 0x916, Mgr::Networkd, Addressing::Dhcp) else {
        return;
    };
    dhcp_renews(&mut st, "systemd-networkd | heal = dhcp");
}

/// An explicitly named back-end whose tool is missing: exit 2 naming the step, the tool and
/// where it was looked for, both in `--check` and at start-up.
#[test]
fn explicit_step_without_its_tool_is_exit_2_at_check_and_start() {
    let Some(st) = Stack::bare("nt2", 0x917) else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    for (step, tool) in [("networkmanager", "nmcli"), ("networkd", "networkctl")] {
        let want =
            format!("{ifc}: heal step {step}: {tool} not found in /sbin:/usr/sbin:/bin:/usr/bin");
        for check in [true, false] {
            let mut args = FAST.to_vec();
            if check {
                args.push("--check");
            }
            args.extend(["-a", step, &ifc]);
            let mut nh = st.netheal(&args);
            let status = nh.finish(s(15.0)).expect("netheal did not exit");
            let text: Vec<String> = nh.lines().into_iter().map(|l| l.1).collect();
            assert_eq!(Netheal::code(status), 2, "{step} check={check}: {text:?}");
            assert!(
                text.iter().any(|l| l.contains(&want)),
                "{step} check={check}: no {want:?} in {text:?}"
            );
            eprintln!("missing {tool} (check={check}): exit 2: {want}");
        }
    }
}

/// `auto` with nothing that fits: a warning with the fix (exit 0) in `--check`, the same at
/// start-up, and at heal time the built-in link step, saying so.
#[test]
fn auto_without_any_tool_warns_and_falls_back_to_link() {
    let Some(st) = Stack::bare("nt0", 0x918) else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    let mut args = FAST.to_vec();
    args.extend(["--check", "-a", "auto", &ifc]);
    let mut chk = st.netheal(&args);
    let status = chk.finish(s(15.0)).expect("--check did not exit");
    let text: Vec<String> = chk.lines().into_iter().map(|l| l.1).collect();
    assert_eq!(Netheal::code(status), 0, "{text:?}");
    let warn = text
        .iter()
        .find(|l| l.contains("install ifupdown"))
        .unwrap_or_else(|| panic!("no warning with the fix in --check: {text:?}"));
    assert!(warn.contains(&ifc) && warn.contains("link"), "{warn}");
    eprintln!("auto, nothing found, --check: {warn}");

    let mut args = FAST.to_vec();
    args.extend(["-a", "auto", &ifc]);
    let nh = st.netheal(&args);
    let (_, warn) = nh.expect(nh.started, "install ifupdown", s(10.0));
    assert!(warn.contains(&ifc), "{warn}");
    nh.expect(nh.started, "-> up", s(15.0));
    let t0 = Instant::now();
    st.lab.ip(&st.lab.host, &["link", "set", &ifc, "down"]);
    let (t_heal, run) = nh.expect(t0, "heal attempt 1: running", s(15.0));
    assert!(run.contains("running link"), "{run}");
    let (t_up, _) = nh.expect(t_heal, "-> up", s(15.0));
    let said = nh
        .lines()
        .into_iter()
        .map(|l| l.1)
        .filter(|l| l.contains("link") && (l.contains("fall") || l.contains("built-in")))
        .collect::<Vec<_>>();
    assert!(
        !said.is_empty(),
        "no line saying auto fell back to link: {run}"
    );
    assert!(link_up(&st));
    eprintln!(
        "auto, nothing found: link down healed by the link fallback {:.3}s after the heal \
         started; {run}; {:?}",
        secs(t_heal, t_up),
        said.last()
    );
}

/// NetworkManager and networkd both configuring the interface (the same static addresses, so
/// they do not visibly fight): `auto` picks one and warns, naming both, in `--check` and at
/// start-up.
#[test]
fn two_managers_claiming_one_interface_is_a_warning() {
    let Some(mut st) = Stack::start("two", 0x919, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    st.start_networkd();
    let links = st.inside(&format!("/run/systemd/netif/links/{}", st.ifindex()));
    assert!(
        wait_until(s(30.0), || fs::read_to_string(&links)
            .is_ok_and(|t| t.lines().any(|l| l == "ADMIN_STATE=configured"))),
        "networkd did not configure the interface too:\n{}",
        st.log_of("networkd")
    );
    let conf = st.conf("auto");
    let both = |l: &str| {
        l.contains(&format!("{}: heal", st.lab.ifc))
            && l.contains("networkmanager")
            && l.contains("networkd")
            && l.contains("WARNING")
    };
    let mut chk = st.netheal(&["--check", "-c", &conf]);
    let status = chk.finish(s(15.0)).expect("--check did not exit");
    let text: Vec<String> = chk.lines().into_iter().map(|l| l.1).collect();
    assert_eq!(Netheal::code(status), 0, "{text:?}");
    let warn = text
        .iter()
        .find(|l| both(l))
        .unwrap_or_else(|| panic!("no warning naming both managers in --check: {text:?}"));
    eprintln!("two managers, --check: {warn}");
    let nh = st.netheal(&["-v", "-c", &conf]);
    let (_, warn) = nh
        .wait_line(0, s(10.0), both)
        .map(|x| x.1)
        .expect("no warning naming both managers at start-up");
    eprintln!("two managers, start-up: {warn}");
}

/// networkd owns the interface but networkctl is missing: `auto` warns (the owner, the
/// missing tool, the fix) in `--check` and at start-up, and heals with the built-in link step.
#[test]
fn auto_uses_link_when_the_owners_tool_is_missing() {
    let hide = ["bin/networkctl"];
    let Some(st) = Stack::start_hiding("nct", 0x91a, Mgr::Networkd, Addressing::Static, &hide)
    else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    let (_, found) = st.run_in(&["sh", "-c", "command -v networkctl || true"]);
    assert!(found.trim().is_empty(), "networkctl visible: {found}");
    let warned = |l: &str| {
        l.contains(&format!("{ifc}: heal"))
            && l.contains("heal back-end networkd (")
            && l.contains("networkctl is not found")
            && l.contains("link")
    };
    let conf = st.conf("auto");
    let mut chk = st.netheal(&["--check", "-c", &conf]);
    let status = chk.finish(s(15.0)).expect("--check did not exit");
    let text: Vec<String> = chk.lines().into_iter().map(|l| l.1).collect();
    assert_eq!(Netheal::code(status), 0, "{text:?}");
    let warn = text
        .iter()
        .find(|l| warned(l))
        .unwrap_or_else(|| panic!("no warning about networkctl in --check: {text:?}"));
    eprintln!("networkctl missing, --check: {warn}");
    let nh = st.netheal(&["-v", "-c", &conf]);
    nh.wait_line(0, s(10.0), warned)
        .expect("no warning about networkctl at start-up");
    nh.expect(nh.started, "-> up", s(15.0));
    let t0 = Instant::now();
    st.lab.ip(&st.lab.host, &["link", "set", &ifc, "down"]);
    let (t_heal, run) = nh.expect(t0, "heal attempt 1: running", s(15.0));
    assert!(run.contains("running link"), "{run}");
    let (_, end) = nh.expect(t_heal, "heal attempt 1: link ", s(15.0));
    assert!(
        wait_until(s(5.0), || link_up(&st)),
        "link still down after {end}"
    );
    eprintln!("networkctl missing: link down -> {run}; {end}");
}

/// The manager changes under a running netheal (NetworkManager stopped, networkd started with
/// the same configuration): `auto` looks again before the heal, logs the new back-end and
/// heals with it. NetworkManager's stale files in /run do not count once it is gone.
#[test]
fn auto_follows_a_manager_switch_before_the_heal() {
    let Some(mut st) = Stack::start("swi", 0x91b, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    let ifc = st.lab.ifc.clone();
    let conf = st.conf("auto");
    let nh = st.netheal(&["-v", "-c", &conf]);
    nh.expect(nh.started, "heal back-end networkmanager (", s(10.0));
    nh.expect(nh.started, "-> up", s(15.0));
    st.stop("nm");
    st.start_networkd();
    st.mgr = Mgr::Networkd;
    st.wait_configured();
    let t0 = Instant::now();
    st.lab.ip(&st.lab.host, &["addr", "flush", "dev", &ifc]);
    let (t_heal, run) = nh.expect(t0, "heal attempt 1: running", s(15.0));
    let (t_pick, pick) = nh.expect(t0, "heal back-end ", s(1.0));
    assert!(pick.contains("heal back-end networkd ("), "{pick}");
    assert!(
        t_pick <= t_heal,
        "new back-end logged after the heal started: {pick}"
    );
    assert!(run.contains("running networkd"), "{run}");
    nh.expect(t_heal, "-> up", s(30.0));
    assert!(wait_until(s(5.0), || st.configured()), "not healed");
    eprintln!("manager switch: {pick}; {run}");
}

/// Default settings (target `gateway`, `heal = auto`, `on-admin-down = link-up`): a link set
/// down by someone else is set up at once, without waiting for failed rounds. NetworkManager
/// then puts its addresses and routes back by itself; networkd 252 may not (a link set up
/// within a millisecond of going down: "Could not set route: Nexthop has invalid gateway",
/// link `failed`, no default route), and then the gateway target is gone, the no-route layer
/// heals, and `auto` runs networkd's step. Either way the configuration comes back. The heal
/// time is from netheal's `setting it up at once` line to the configuration being back
/// (polled); the line says whether the ladder had to run.
fn default_link_down(st: &Stack, what: &str) {
    let body = format!(
        "[{}]\ninterval = 200ms\ntimeout = 300ms\nbackoff = 1s:4s\n",
        st.lab.ifc
    );
    let conf = st.lab.write_file("default.conf", &body, 0o644);
    let nh = st.netheal(&["-v", "-c", conf.to_str().unwrap()]);
    nh.expect(nh.started, "-> up", s(15.0));
    let t0 = Instant::now();
    st.lab
        .ip(&st.lab.host, &["link", "set", &st.lab.ifc, "down"]);
    let (t_fix, _) = nh.expect(t0, "(on-admin-down = link-up)", s(15.0));
    assert!(
        wait_until(s(30.0), || st.configured() && link_up(st)),
        "{what}: configuration not back:\n{}",
        st.sh("ip addr; ip route")
    );
    let t_ok = Instant::now();
    let ladder: Vec<String> = nh
        .lines()
        .into_iter()
        .filter(|l| l.0 >= t0 && l.1.contains(": running "))
        .map(|l| {
            l.1.split(": heal attempt ")
                .nth(1)
                .unwrap_or(&l.1)
                .to_owned()
        })
        .collect();
    if let Some(step) = ladder.first() {
        let want = match st.mgr {
            Mgr::NetworkManager => "running networkmanager",
            _ => "running networkd",
        };
        assert!(step.contains(want), "{what}: the ladder ran {ladder:?}");
    }
    eprintln!(
        "HEAL {what} | heal = auto | link down, on-admin-down = link-up (default) | detected \
         {:.3} s | step 0.000 s | healed {:.3} s | link set up at once; ladder after it: \
         {ladder:?} (healed: until the manager's configuration was back)",
        secs(t0, t_fix),
        secs(t_fix, t_ok),
    );
}

#[test]
fn networkmanager_default_link_up_heals_link_down() {
    let Some(st) = Stack::start("nml", 0x91c, Mgr::NetworkManager, Addressing::Static) else {
        return;
    };
    default_link_down(&st, "NetworkManager");
}

#[test]
fn networkd_default_link_up_heals_link_down() {
    let Some(st) = Stack::start("ndl", 0x91d, Mgr::Networkd, Addressing::Static) else {
        return;
    };
    default_link_down(&st, "systemd-networkd");
}
