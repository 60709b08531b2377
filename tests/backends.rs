//! The heal back-ends of issue 12 through the real binary, with `NETHEAL_TEST_ROOT` pointing
//! detection and the tool lookup at a fake tree: what `--check` says `auto` resolves to on
//! each stack's state files, the exit 2 for an explicitly named step whose tool is missing,
//! the warning with the fix when nothing fits, and (in namespaces) a heal through the step
//! `auto` picked. The real NetworkManager and systemd-networkd are tests/managers.rs'.
//! netifd cannot run here: its state is written after OpenWrt's formats (src/backend/netifd.rs).

mod lab;

use lab::{secs, Lab, Netheal, HOST4, PEER4};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// A fake root for one test, removed on drop.
struct Tree(PathBuf);

impl Tree {
    fn new(tag: &str) -> Tree {
        let p = std::env::temp_dir().join(format!("nhroot-{}-{tag}", std::process::id()));
        let _ = fs::remove_dir_all(&p); // not fatal: a leftover of a crashed run, or nothing
        fs::create_dir_all(&p).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o755)).unwrap();
        Tree(p)
    }

    fn put(&self, path: &str, text: &str) -> &Tree {
        let p = self.0.join(path.trim_start_matches('/'));
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(&p, text).unwrap();
        self
    }

    /// An executable under the fake root (`/usr/bin/nmcli`, ...).
    fn tool(&self, path: &str, body: &str) -> &Tree {
        self.put(path, &format!("#!/bin/sh\n{body}\n"));
        let p = self.0.join(path.trim_start_matches('/'));
        fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
        self
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn netheal(root: &Tree, args: &[&str]) -> Output {
    Command::new(lab::bin())
        .args(["--status-file", "none", "--inhibit-file", "none"])
        .args(args)
        .env("NETHEAL_TEST_ROOT", root.path())
        .env_remove("NOTIFY_SOCKET")
        .output()
        .expect("run netheal")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_named_step_whose_tool_is_missing_exits_2_at_check_and_at_start() {
    let root = Tree::new("missing");
    for (step, tool) in [
        ("networkd", "networkctl"),
        ("networkmanager", "nmcli"),
        ("netifd:wan", "ubus"),
        ("ifupdown", "ifdown"),
    ] {
        let want = format!(
            "netheal: eth0: heal step {step}: {tool} not found in /sbin:/usr/sbin:/bin:/usr/bin"
        );
        let out = netheal(
            &root,
            &["--check", "--heal", step, "--heal", "link", "eth0"],
        );
        assert_eq!(out.status.code(), Some(2), "{step}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr).trim(), want);
        assert!(text(&out.stdout).contains(&format!("# ERROR: eth0: heal step {step}: ")));
        // At start it is refused before any socket is opened (no root needed to see it).
        let out = netheal(&root, &["--log", "stderr", "--heal", step, "eth0"]);
        assert_eq!(out.status.code(), Some(2), "{step}: {}", text(&out.stderr));
        assert_eq!(text(&out.stderr).trim(), want);
    }
    // netifd without a logical name, and nothing in netifd's state naming eth0.
    root.tool("/bin/ubus", "exit 0");
    let out = netheal(&root, &["--check", "--heal", "netifd", "eth0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("set heal = netifd:LOGICAL"),
        "{}",
        text(&out.stderr)
    );
    eprintln!("missing tools: {}", text(&out.stderr).trim());
}

#[test]
fn auto_with_nothing_fitting_warns_with_the_fix_and_exits_0() {
    let root = Tree::new("nothing");
    let out = netheal(&root, &["--check", "eth0"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let warning = stdout
        .lines()
        .find(|l| l.starts_with("# WARNING: eth0: heal step auto: "))
        .unwrap_or_else(|| panic!("no warning in {stdout}"));
    for fix in ["install ifupdown", "heal = link", "heal = /path/to/script"] {
        assert!(warning.contains(fix), "{warning}");
    }
    assert!(
        stdout.contains("heal = auto\n"),
        "auto is the default: {stdout}"
    );
}

/// One stack's state files and tools, and what `--check` must say `auto` picks.
struct Stack {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    tools: &'static [&'static str],
    picks: &'static str,
}

const STACKS: &[Stack] = &[
    Stack {
        name: "RHEL 8/9, Fedora, Debian desktop: NetworkManager",
        files: &[
            ("/sys/class/net/eth0/ifindex", "2\n"),
            ("/proc/501/comm", "NetworkManager\n"),
            (
                "/run/NetworkManager/devices/2",
                "[device]\nmanaged=true\nperm-hw-addr-fake=\nconnection-uuid=6d0b9a3e-2c56-4b7e-9d2e-0a1b2c3d4e5f\nnm-owned=false\n",
            ),
        ],
        tools: &["/usr/bin/nmcli"],
        picks: "heal back-end networkmanager (/run/NetworkManager/devices/2 says managed)",
    },
    Stack {
        name: "Ubuntu server, Arch: systemd-networkd",
        files: &[
            ("/sys/class/net/eth0/ifindex", "3\n"),
            ("/proc/402/comm", "systemd-network\n"),
            (
                "/run/systemd/netif/links/3",
                "# This is private data. Do not parse.\nADMIN_STATE=configured\nOPER_STATE=routable\nNETWORK_FILE=/run/systemd/network/10-netplan-eth0.network\n",
            ),
        ],
        tools: &["/usr/bin/networkctl"],
        picks: "heal back-end networkd (/run/systemd/netif/links/3 says configured, /run/systemd/network/10-netplan-eth0.network)",
    },
    Stack {
        name: "OpenWrt: netifd",
        files: &[
            ("/proc/1200/comm", "netifd\n"),
            (
                "/etc/config/network",
                "config interface 'lan'\n\toption device 'br-lan'\n\nconfig interface 'wan'\n\toption device 'eth0'\n\toption proto 'dhcp'\n",
            ),
        ],
        tools: &["/bin/ubus"],
        picks: "heal back-end netifd:wan (/etc/config/network maps eth0 to wan)",
    },
    Stack {
        name: "Debian, Alpine, busybox: ifupdown family",
        files: &[
            ("/etc/network/interfaces", "auto lo\niface lo inet loopback\nsource /etc/network/interfaces.d/*\n"),
            ("/etc/network/interfaces.d/eth0", "auto eth0\niface eth0 inet dhcp\n"),
        ],
        tools: &["/sbin/ifup", "/sbin/ifdown"],
        picks: "heal back-end ifupdown (/etc/network/interfaces has a stanza for eth0)",
    },
    Stack {
        name: "Alpine, busybox: ifupdown-ng or busybox state",
        files: &[("/run/ifstate", "lo=lo 1\neth0=eth0 1\n")],
        tools: &["/sbin/ifup", "/sbin/ifdown"],
        picks: "heal back-end ifupdown (/run/ifstate lists eth0 up)",
    },
    Stack {
        name: "RHEL 7: network-scripts",
        files: &[(
            "/etc/sysconfig/network-scripts/ifcfg-eth0",
            "TYPE=Ethernet\nBOOTPROTO=dhcp\nDEVICE=eth0\nONBOOT=yes\nNM_CONTROLLED=no\n",
        )],
        tools: &["/sbin/ifup", "/sbin/ifdown"],
        picks: "heal back-end ifupdown (/etc/sysconfig/network-scripts/ifcfg-eth0 has NM_CONTROLLED=no)",
    },
    Stack {
        name: "a lone DHCP client (dhcpcd)",
        files: &[
            ("/proc/88/comm", "dhcpcd\n"),
            ("/proc/88/cmdline", "dhcpcd: [manager] [ip4] [ip6]\0"),
        ],
        tools: &["/usr/sbin/dhcpcd"],
        picks: "heal back-end dhcp (dhcpcd (pid 88) serves eth0)",
    },
];

#[test]
fn check_says_what_auto_picks_on_each_stack() {
    for (i, stack) in STACKS.iter().enumerate() {
        let root = Tree::new(&format!("stack{i}"));
        for (path, body) in stack.files {
            root.put(path, body);
        }
        for t in stack.tools {
            root.tool(t, "exit 0");
        }
        let out = netheal(&root, &["--check", "eth0"]);
        let stdout = text(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}: {}",
            stack.name,
            text(&out.stderr)
        );
        let want = format!("# eth0: heal step auto: {}\n", stack.picks);
        assert!(
            stdout.contains(&want),
            "{}: want {want:?} in\n{stdout}",
            stack.name
        );
        // The same stack without its tools: a warning, and a fall-back to link.
        let bare = Tree::new(&format!("bare{i}"));
        for (path, body) in stack.files {
            bare.put(path, body);
        }
        let out = netheal(&bare, &["--check", "eth0"]);
        assert_eq!(out.status.code(), Some(0), "{}", stack.name);
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("# WARNING: eth0: heal step auto: ")
                && stdout.contains("falls back to the built-in link step"),
            "{}: {stdout}",
            stack.name
        );
        eprintln!("{}: {}", stack.name, stack.picks);
    }
}

#[test]
fn two_managers_on_one_interface_are_a_warning_naming_both() {
    let root = Tree::new("two");
    root.put("/sys/class/net/eth0/ifindex", "2\n")
        .put("/proc/501/comm", "NetworkManager\n")
        .put("/run/NetworkManager/devices/2", "[device]\nmanaged=true\n")
        .put("/etc/network/interfaces", "iface eth0 inet dhcp\n")
        .tool("/usr/bin/nmcli", "exit 0")
        .tool("/sbin/ifup", "exit 0")
        .tool("/sbin/ifdown", "exit 0");
    let out = netheal(&root, &["--check", "eth0"]);
    let stdout = text(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.contains("heal step auto"))
        .unwrap_or_default();
    assert!(
        line.starts_with("# WARNING: ")
            && line.contains("networkmanager (")
            && line.contains("ifupdown claims it too"),
        "{stdout}"
    );
}

/// In namespaces: a flushed address, healed by `auto` through the back-end it found in the
/// fake root (a networkd claim, and a `networkctl` that records its argv and puts the
/// address back), with the one back-end line logged at start and not again at the heal.
#[test]
fn auto_heals_through_the_back_end_it_found() {
    let Some(lab) = Lab::pair("bk", 0x12, &[]) else {
        return;
    };
    let root = Tree::new("heal");
    let record = lab.path("networkctl.argv");
    root.put(&format!("/sys/class/net/{}/ifindex", lab.ifc), "7\n")
        .put("/proc/402/comm", "systemd-network\n")
        .put(
            "/run/systemd/netif/links/7",
            "ADMIN_STATE=configured\nNETWORK_FILE=/etc/systemd/network/10-lab.network\n",
        )
        .tool(
            "/usr/bin/networkctl",
            &format!("echo \"$@\" >> {record}\nexec ip addr replace {HOST4}/24 dev \"$2\""),
        );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.host, lab::bin(), "--log", "stderr"])
        .args(lab::quiet_args())
        .args([
            "-t", PEER4, "-i", "200ms", "-W", "300ms", "-b", "1s:4s", "-v", &lab.ifc,
        ])
        .env("NETHEAL_TEST_ROOT", root.path())
        .env_remove("NOTIFY_SOCKET");
    let nh = Netheal::spawn(cmd, "netheal with a fake networkd root".into());
    let (_, picked) = nh.expect(
        nh.started,
        "heal back-end networkd",
        Duration::from_secs(10),
    );
    assert!(
        picked.contains("/run/systemd/netif/links/7 says configured"),
        "{picked}"
    );
    nh.expect(nh.started, "-> up", Duration::from_secs(10));
    let t0 = Instant::now();
    lab.ip(&lab.host, &["-4", "addr", "flush", "dev", &lab.ifc]);
    let (t_heal, heal) = nh.expect(t0, "heal attempt 1: running", Duration::from_secs(10));
    assert!(heal.contains("running networkd (auto)"), "{heal}");
    let (t_end, end) = nh.expect(t_heal, "heal attempt 1: networkd ", Duration::from_secs(10));
    assert!(end.contains("networkd exited 0"), "{end}");
    let (t_up, _) = nh.expect(t_heal, "-> up", Duration::from_secs(10));
    let argv = fs::read_to_string(&record).unwrap_or_default();
    assert_eq!(argv, format!("reconfigure {}\n", lab.ifc));
    assert_eq!(
        nh.count_lines("heal back-end networkd"),
        1,
        "the back-end line is logged once, not at every heal"
    );
    eprintln!(
        "auto -> networkd (fake): heal {:.3}s after the address flush, step {:.3}s, up {:.3}s later",
        secs(t0, t_heal),
        secs(t_heal, t_end),
        secs(t_end, t_up)
    );
}

/// In namespaces, with the real busybox DHCP client and server: the lease's default route is
/// lost, `heal = dhcp` finds the running udhcpc and sends it SIGUSR1, udhcpc renews (its
/// script puts the route back), and the link is never taken down (its carrier-change count
/// and admin state are the same before and after).
#[test]
fn dhcp_renews_the_udhcpc_lease_without_a_link_bounce() {
    let Some(mut lab) = Lab::pair("dh", 0x13, &["busybox", "kill"]) else {
        return;
    };
    let (host, peer, ifc, pifc) = (
        lab.host.clone(),
        lab.peer.clone(),
        lab.ifc.clone(),
        lab.pifc.clone(),
    );
    lab.ip(&host, &["-4", "addr", "flush", "dev", &ifc]);
    let leases = lab.path("udhcpd.leases");
    fs::write(&leases, "").unwrap();
    let conf = lab.write_file(
        "udhcpd.conf",
        &format!(
            "start 198.51.100.50\nend 198.51.100.60\ninterface {pifc}\nlease_file {leases}\n\
             pidfile {}\noption subnet 255.255.255.0\noption router {PEER4}\noption lease 600\n",
            lab.path("udhcpd.pid")
        ),
        0o644,
    );
    lab.spawn_bg(
        &peer,
        &["busybox", "udhcpd", "-f", conf.to_str().unwrap()],
        "udhcpd.log",
    );
    let events = lab.path("udhcpc.events");
    let script = lab.script(
        "udhcpc.script",
        &format!(
            "#!/bin/sh\necho \"$1 $ip\" >> {events}\ncase \"$1\" in\n\
             bound|renew) ip addr replace \"$ip/${{mask:-24}}\" dev \"$interface\"\n\
             [ -n \"$router\" ] && ip route replace default via \"$router\" dev \"$interface\" ;;\n\
             esac\nexit 0\n"
        ),
    );
    lab.spawn_bg(
        &host,
        &[
            "busybox",
            "udhcpc",
            "-f",
            "-i",
            &ifc,
            "-s",
            script.to_str().unwrap(),
            "-p",
            &lab.path("udhcpc.pid"),
        ],
        "udhcpc.log",
    );
    let bound = lab::wait_until(Duration::from_secs(20), || {
        fs::read_to_string(&events).is_ok_and(|e| e.contains("bound "))
    });
    assert!(
        bound,
        "udhcpc got no lease: {:?}",
        fs::read_to_string(lab.path("udhcpc.log"))
    );
    assert!(
        lab::wait_until(Duration::from_secs(5), || lab
            .default_route(&host)
            .contains(PEER4)),
        "no default route from the lease: {:?} {:?}",
        fs::read_to_string(&events),
        fs::read_to_string(lab.path("udhcpc.log"))
    );
    let carrier = |lab: &Lab| {
        lab.exec(
            &host,
            &["cat", &format!("/sys/class/net/{ifc}/carrier_changes")],
        )
        .trim()
        .to_string()
    };
    let before = carrier(&lab);
    let nh = lab.netheal(
        &host,
        &[
            "-i", "200ms", "-W", "300ms", "-a", "dhcp", "-b", "1s:4s", "-v", &ifc,
        ],
    );
    nh.expect(nh.started, "-> up", Duration::from_secs(10));
    let t0 = Instant::now();
    lab.ip(&host, &["-4", "route", "del", "default"]);
    let (t_heal, heal) = nh.expect(t0, "heal attempt 1: running", Duration::from_secs(10));
    assert!(heal.contains("running dhcp"), "{heal}");
    let (t_end, end) = nh.expect(t_heal, "heal attempt 1: dhcp ", Duration::from_secs(10));
    assert!(end.contains("dhcp exited 0"), "{end}");
    let (t_up, _) = nh.expect(t_heal, "-> up", Duration::from_secs(30));
    let ev = fs::read_to_string(&events).unwrap_or_default();
    assert!(ev.contains("renew "), "udhcpc did not renew: {ev}");
    assert!(lab.default_route(&host).contains(PEER4));
    assert_eq!(carrier(&lab), before, "the link went down");
    let show = lab.ip(&host, &["link", "show", &ifc]);
    assert!(show.contains(",UP") || show.contains("<UP"), "{show}");
    assert_eq!(nh.count_lines("running link"), 0);
    eprintln!(
        "dhcp (busybox udhcpc, SIGUSR1): heal {:.3}s after the route loss, step {:.3}s, up {:.3}s \
         later; carrier changes {before} before and after; udhcpc events {:?}",
        secs(t0, t_heal),
        secs(t_heal, t_end),
        secs(t_end, t_up),
        ev.lines().collect::<Vec<_>>()
    );
}

/// SIGHUP looks at the back-ends again: an unchanged `auto` watch logs the new back-end when
/// the state files changed, and a new configuration naming a step whose tool is missing is
/// refused like a bad file (the running one is kept).
#[test]
fn sighup_reviews_the_back_ends_and_refuses_a_step_without_its_tool() {
    let Some(lab) = Lab::pair("hb", 0x14, &[]) else {
        return;
    };
    let root = Tree::new("hup");
    root.put(&format!("/sys/class/net/{}/ifindex", lab.ifc), "5\n");
    let conf = lab.write_file(
        "netheal.conf",
        &format!(
            "interval = 200ms\ntimeout = 300ms\n[{}]\ntarget = {PEER4}\n",
            lab.ifc
        ),
        0o644,
    );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.host, lab::bin(), "--log", "stderr"])
        .args(lab::quiet_args())
        .args(["-c", conf.to_str().unwrap()])
        .env("NETHEAL_TEST_ROOT", root.path())
        .env_remove("NOTIFY_SOCKET");
    let nh = Netheal::spawn(cmd, "netheal reloading with a fake root".into());
    nh.expect(
        nh.started,
        "heal back-end: nothing found",
        Duration::from_secs(10),
    );
    nh.expect(nh.started, "-> up", Duration::from_secs(10));
    // networkd appears: the reload (same configuration) says so.
    root.put("/proc/402/comm", "systemd-network\n")
        .put("/run/systemd/netif/links/5", "ADMIN_STATE=configured\n")
        .tool("/usr/bin/networkctl", "exit 0");
    let t1 = Instant::now();
    assert!(nh.send_signal("HUP"));
    nh.expect(t1, "reloaded ", Duration::from_secs(5));
    let (_, line) = nh.expect(t1, "heal back-end networkd", Duration::from_secs(5));
    assert!(
        line.contains("/run/systemd/netif/links/5 says configured"),
        "{line}"
    );
    // A configuration naming ifupdown, which the fake root lacks: refused.
    fs::write(
        &conf,
        format!(
            "interval = 200ms\ntimeout = 300ms\n[{}]\ntarget = {PEER4}\nheal = ifupdown\n",
            lab.ifc
        ),
    )
    .unwrap();
    let t2 = Instant::now();
    assert!(nh.send_signal("HUP"));
    let (_, err) = nh.expect(t2, "reload failed", Duration::from_secs(5));
    let want = format!(
        "reload failed, keeping the running configuration: {}: heal step ifupdown: ifdown not found in /sbin:/usr/sbin:/bin:/usr/bin",
        lab.ifc
    );
    assert!(err.contains(&want), "{err}\nwant {want}");
    assert_eq!(nh.count_lines("heal back-end networkd"), 1);
}

/// OpenWrt: `--check` asks netifd itself (`ubus call network.interface dump`, at most 2 s)
/// when no state file names the interface's logical network, and says which to set; a ubus
/// that hangs costs the check its bound, not more, and gives no hint.
#[test]
fn check_asks_ubus_for_the_logical_interface() {
    let root = Tree::new("ubus");
    root.put("/proc/1200/comm", "netifd\n").tool(
        "/bin/ubus",
        r#"[ "$*" = "call network.interface dump" ] || exit 4
cat <<'EOF'
{ "interface": [ { "interface": "wan", "up": true, "l3_device": "pppoe-wan", "proto": "pppoe", "device": "eth1" },
                 { "interface": "lan", "up": true, "l3_device": "br-lan", "device": "br-lan" } ] }
EOF"#,
    );
    let out = netheal(&root, &["--check", "--heal", "auto", "pppoe-wan"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(
            "# pppoe-wan: netifd (ubus call network.interface dump) puts pppoe-wan in wan, which no state file says: set heal = netifd:wan"
        ),
        "{stdout}"
    );
    // The same name in /etc/config/network: nothing more to say (auto picks it already).
    root.put(
        "/etc/config/network",
        "config interface 'wan'\n\toption device 'eth1'\n\toption proto 'pppoe'\n",
    );
    let stdout = text(&netheal(&root, &["--check", "pppoe-wan"]).stdout);
    assert!(
        stdout.contains("heal back-end netifd:wan (/etc/config/network maps pppoe-wan to wan)"),
        "{stdout}"
    );
    assert!(
        !stdout.contains("ubus call network.interface dump"),
        "{stdout}"
    );
    // A ubus that hangs.
    root.tool("/bin/ubus", "exec sleep 30");
    let t0 = Instant::now();
    let out = netheal(&root, &["--check", "eth1"]);
    let took = t0.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert!(
        !text(&out.stdout).contains("ubus call"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        took < Duration::from_secs(20),
        "--check took {took:?} with a hung ubus"
    );
    eprintln!(
        "ubus hint: --check with a hung ubus took {:.2}s (bound 2 s)",
        took.as_secs_f64()
    );
}
