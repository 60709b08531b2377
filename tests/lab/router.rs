//! A routed lab for the judgement tests: namespace `host` (netheal runs here, watched veth
//! `ifc`) — namespace `router` (the default gateway, forwarding on) — namespace `far` (the far
//! targets, a TCP listener and a DNS responder). Both families: 198.51.100.0/24 and
//! 2001:db8:1::/64 on the host link, 203.0.113.0/24 and 2001:db8:2::/64 on the far link.
//! Namespaces are private to the test (names start with its [`Lab`] prefix) and go with it.
//!
//! Every way of breaking the path is a method that names the layer it breaks: ICMP filtered by
//! the gateway itself (input hook only, forwarding untouched), the gateway deaf to ARP or NDP,
//! the far side gone (blackhole qdisc on the router's far link), carrier loss (the router's end
//! of the host link down), one family dropped at the router. Each has its undo.
//!
//! Packets stay inside these namespaces; addresses come only from the documentation ranges.
#![allow(dead_code)] // every test binary uses a different subset

use super::{run, Lab, Netheal};
use std::fs;
use std::ops::{Deref, DerefMut};
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// The gateway (router) on the host link, and the host.
pub const GW4: &str = "198.51.100.1";
pub const GW6: &str = "2001:db8:1::1";
pub const HOST4: &str = "198.51.100.2";
pub const HOST6: &str = "2001:db8:1::2";
/// The router on the far link.
pub const RFAR4: &str = "203.0.113.1";
pub const RFAR6: &str = "2001:db8:2::1";
/// Two far targets per family (quorum 2 needs two).
pub const FAR4: &str = "203.0.113.10";
pub const FAR4B: &str = "203.0.113.11";
pub const FAR6: &str = "2001:db8:2::10";
pub const FAR6B: &str = "2001:db8:2::11";
/// Ports of the far side's servers (see [`Routed::serve`]); CLOSED has no listener (RST).
pub const TCP_PORT: u16 = 8080;
pub const CLOSED_PORT: u16 = 8081;
pub const DNS_PORT: u16 = 53;

/// An address family, for the methods that break one family only.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fam {
    V4,
    V6,
}

impl Fam {
    /// The name netheal uses in logs, labels and NETHEAL_FAMILY.
    pub fn name(self) -> &'static str {
        match self {
            Fam::V4 => "ipv4",
            Fam::V6 => "ipv6",
        }
    }
    pub fn other(self) -> Fam {
        match self {
            Fam::V4 => Fam::V6,
            Fam::V6 => Fam::V4,
        }
    }
    pub fn gw(self) -> &'static str {
        match self {
            Fam::V4 => GW4,
            Fam::V6 => GW6,
        }
    }
    pub fn far(self) -> &'static str {
        match self {
            Fam::V4 => FAR4,
            Fam::V6 => FAR6,
        }
    }
    pub fn far_b(self) -> &'static str {
        match self {
            Fam::V4 => FAR4B,
            Fam::V6 => FAR6B,
        }
    }
    /// `tcp:ADDR:PORT` / `tcp:[ADDR]:PORT` for the first far target.
    pub fn tcp(self, port: u16) -> String {
        match self {
            Fam::V4 => format!("tcp:{FAR4}:{port}"),
            Fam::V6 => format!("tcp:[{FAR6}]:{port}"),
        }
    }
    /// `dns:ADDR` (port 53) for the first far target.
    pub fn dns(self) -> String {
        format!("dns:{}", self.far())
    }
    fn ip_flag(self) -> &'static str {
        match self {
            Fam::V4 => "-4",
            Fam::V6 => "-6",
        }
    }
    fn icmp_echo(self) -> &'static str {
        match self {
            Fam::V4 => "icmp type echo-request drop",
            Fam::V6 => "icmpv6 type echo-request drop",
        }
    }
}

/// The far side's servers: TCP accept-and-close on every port given, and a DNS responder that
/// answers every well-formed query with a well-formed NOERROR response (the question echoed,
/// no records). IPv4 and IPv6 (dual-stack sockets). Logs `tcp PEER` / `dns PEER` per event
/// and `ready` once listening. An IPv6 response leaves from the address the query was sent
/// to (IPV6_PKTINFO, as real resolvers do): the far side has two IPv6 addresses, and a
/// resolver's client (netheal's connected socket) takes answers from the one it asked only.
const SERVE_PY: &str = r#"
import selectors, socket, sys
dns_port = int(sys.argv[1])
sel = selectors.DefaultSelector()
def sock(kind, port):
    s = socket.socket(socket.AF_INET6, kind)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("::", port))
    return s
for p in sys.argv[2:]:
    t = sock(socket.SOCK_STREAM, int(p))
    t.listen(64)
    sel.register(t, selectors.EVENT_READ, "tcp")
u = sock(socket.SOCK_DGRAM, dns_port)
u.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_RECVPKTINFO, 1)
sel.register(u, selectors.EVENT_READ, "dns")
def answer(q):
    if len(q) < 12 or q[2] & 0x80:
        return None
    qd = int.from_bytes(q[4:6], "big")
    i = 12
    for _ in range(qd):
        while True:
            if i >= len(q):
                return None
            n = q[i]
            i += 1
            if n == 0:
                break
            if n & 0xC0:
                i += 1
                break
            i += n
        i += 4
    if i > len(q):
        return None
    flags = bytes([0x80 | (q[2] & 0x79), 0x80])
    return q[0:2] + flags + q[4:6] + bytes(6) + q[12:i]
print("ready", flush=True)
while True:
    for key, _ in sel.select():
        if key.data == "tcp":
            c, peer = key.fileobj.accept()
            c.close()
            print("tcp", peer[0], flush=True)
        else:
            q, anc, _, peer = key.fileobj.recvmsg(4096, socket.CMSG_SPACE(20))
            r = answer(q)
            info = [d for l, t, d in anc if (l, t) == (socket.IPPROTO_IPV6, socket.IPV6_PKTINFO)]
            if r is not None and info and not peer[0].startswith("::ffff:"):
                key.fileobj.sendmsg([r], [(socket.IPPROTO_IPV6, socket.IPV6_PKTINFO, info[0])], 0, peer)
            elif r is not None:
                key.fileobj.sendto(r, peer)
            print("dns", peer[0], "answered" if r else "ignored", flush=True)
"#;

/// The routed lab; derefs to its [`Lab`] (`host`, `ifc`, `netheal`, `dir`, ...). `lab.peer`
/// is the router namespace and `lab.pifc` the router's end of the host link.
pub struct Routed {
    lab: Lab,
    pub router: String,
    pub far: String,
    /// The router's end of the host link (= `lab.pifc`).
    pub rhost: String,
    /// The router's end of the far link, and the far end.
    pub rfar: String,
    pub ffar: String,
}

impl Deref for Routed {
    type Target = Lab;
    fn deref(&self) -> &Lab {
        &self.lab
    }
}

impl DerefMut for Routed {
    fn deref_mut(&mut self) -> &mut Lab {
        &mut self.lab
    }
}

impl Routed {
    /// Build host — router — far with both families, forwarding on in the router and default
    /// routes through it on both ends; None when the test must skip (see `lab::ready`).
    pub fn new(tag: &str, tools: &[&str]) -> Option<Routed> {
        let mut need = vec!["nft", "tc", "sysctl", "python3", "busybox"];
        need.extend_from_slice(tools);
        let mut lab = Lab::pair(tag, 1, &need)?;
        let router = lab.peer.clone();
        let far = lab.add_ns("f");
        let (rfar, ffar) = (lab.name("c"), lab.name("d"));
        // IPv6 addresses survive the router's link going down (carrier tests), so bringing
        // it up again restores the path without re-adding them.
        lab.exec(
            &router,
            &[
                "sysctl",
                "-qw",
                "net.ipv4.ip_forward=1",
                "net.ipv6.conf.all.forwarding=1",
                "net.ipv6.conf.all.keep_addr_on_down=1",
                "net.ipv6.conf.default.keep_addr_on_down=1",
            ],
        );
        lab.veth(&router, &rfar, &far, &ffar);
        lab.addrs(
            &router,
            &rfar,
            &[&format!("{RFAR4}/24"), &format!("{RFAR6}/64")],
        );
        lab.addrs(
            &far,
            &ffar,
            &[
                &format!("{FAR4}/24"),
                &format!("{FAR4B}/24"),
                &format!("{FAR6}/64"),
                &format!("{FAR6B}/64"),
            ],
        );
        let (host, ifc) = (lab.host.clone(), lab.ifc.clone());
        lab.ip(
            &host,
            &["-4", "route", "add", "default", "via", GW4, "dev", &ifc],
        );
        lab.ip(
            &host,
            &["-6", "route", "add", "default", "via", GW6, "dev", &ifc],
        );
        lab.ip(&far, &["-4", "route", "add", "default", "via", RFAR4]);
        lab.ip(&far, &["-6", "route", "add", "default", "via", RFAR6]);
        let rhost = lab.pifc.clone();
        let routed = Routed {
            lab,
            router,
            far,
            rhost,
            rfar,
            ffar,
        };
        // A fresh namespace's IPv6 needs ~2 s (link-local DAD) before NDP works; warm every
        // path up so a test's first rounds are not lost to the lab itself.
        for t in [GW4, GW6, FAR4, FAR4B, FAR6, FAR6B] {
            assert!(routed.reaches(t), "{t} unreachable in the fresh routed lab");
        }
        Some(routed)
    }

    /// One ping from the host (busybox: iputils' ping is not installed everywhere).
    pub fn ping(&self, target: &str) -> bool {
        run(&[
            "ip", "netns", "exec", &self.host, "busybox", "ping", "-c", "1", "-W", "1", target,
        ])
        .status
        .success()
    }

    /// Ping until it answers, up to 10 s (a link just set up can take ~1 s to pass traffic).
    pub fn reaches(&self, target: &str) -> bool {
        super::wait_until(Duration::from_secs(10), || self.ping(target))
    }

    /// `ip netns exec NS nft ...`, not fatal (deleting a table that is not there).
    fn nft_quiet(&self, ns: &str, args: &[&str]) {
        let mut v = vec!["ip", "netns", "exec", ns, "nft"];
        v.extend_from_slice(args);
        let _ = run(&v); // not fatal: the undo of something never done
    }

    /// Forget the host's neighbour entries of `fam` on the watched link, so the next packet to
    /// the gateway needs a fresh ARP/NDP answer (a cached REACHABLE entry would carry traffic
    /// for up to ~45 s after the gateway went deaf).
    pub fn flush_host_neigh(&self, fam: Fam) {
        self.ip(
            &self.host,
            &[fam.ip_flag(), "neigh", "flush", "dev", &self.ifc],
        );
    }

    /// The gateway drops echo requests addressed to itself (input hook: forwarded traffic to
    /// the far side is untouched). `None`: both families.
    pub fn gateway_drops_icmp(&self, fam: Option<Fam>) {
        let rules: Vec<&str> = [Fam::V4, Fam::V6]
            .into_iter()
            .filter(|f| fam.is_none_or(|x| x == *f))
            .map(Fam::icmp_echo)
            .collect();
        self.nft(
            &self.router,
            "gwicmp",
            &chains("nhgwicmp", &["input"], &rules),
        );
    }

    pub fn gateway_answers_icmp(&self) {
        self.nft_quiet(&self.router, &["delete", "table", "inet", "nhgwicmp"]);
    }

    /// Echo requests of both families dropped at the router, to itself and forwarded: no
    /// target on this path answers ping (TCP and DNS pass).
    pub fn drop_all_echo(&self) {
        let rules = [Fam::V4.icmp_echo(), Fam::V6.icmp_echo()];
        self.nft(
            &self.router,
            "echo",
            &chains("nhecho", &["input", "forward"], &rules),
        );
    }

    /// The far namespace drops echo requests to itself (a target that never answers ping).
    pub fn far_drops_icmp(&self) {
        let rules = [Fam::V4.icmp_echo(), Fam::V6.icmp_echo()];
        self.nft(
            &self.far,
            "faricmp",
            &chains("nhfaricmp", &["input"], &rules),
        );
    }

    pub fn far_answers_icmp(&self) {
        self.nft_quiet(&self.far, &["delete", "table", "inet", "nhfaricmp"]);
    }

    /// The gateway goes deaf and mute at ARP (an `arp` family table drops every ARP packet in
    /// and out: its own requests would teach the host its address again), and the host
    /// forgets its IPv4 neighbour entries.
    pub fn gateway_stops_arp(&self) {
        let table = "table arp nharp {\n\
                     \tchain input {\n\
                     \t\ttype filter hook input priority 0; policy accept;\n\
                     \t\tdrop\n\
                     \t}\n\
                     \tchain output {\n\
                     \t\ttype filter hook output priority 0; policy accept;\n\
                     \t\tdrop\n\
                     \t}\n\
                     }\n";
        self.nft(&self.router, "arp", table);
        self.flush_host_neigh(Fam::V4);
    }

    pub fn gateway_answers_arp(&self) {
        self.nft_quiet(&self.router, &["delete", "table", "arp", "nharp"]);
    }

    /// The gateway stops answering NDP (solicitations and advertisements dropped in and out,
    /// as for ARP), and the host forgets its IPv6 neighbour entries.
    pub fn gateway_stops_ndp(&self) {
        let rules = ["icmpv6 type { nd-neighbor-solicit, nd-neighbor-advert } drop"];
        self.nft(
            &self.router,
            "ndp",
            &chains("nhndp", &["input", "output"], &rules),
        );
        self.flush_host_neigh(Fam::V6);
    }

    pub fn gateway_answers_ndp(&self) {
        self.nft_quiet(&self.router, &["delete", "table", "inet", "nhndp"]);
    }

    /// The host's neighbour entry for `fam`'s gateway points at a MAC nobody has (permanent):
    /// the gateway itself is alive and answers ARP/NDP, but the host's frames go nowhere (a
    /// stale or poisoned entry; a link bounce flushes it).
    pub fn bogus_gateway_neigh(&self, fam: Fam) {
        self.ip(
            &self.host,
            &[
                "neigh",
                "replace",
                fam.gw(),
                "lladdr",
                "02:00:00:00:00:01",
                "dev",
                &self.ifc,
                "nud",
                "permanent",
            ],
        );
    }

    pub fn clear_gateway_neigh(&self, fam: Fam) {
        let _ = run(&[
            "ip",
            "-n",
            &self.host,
            "neigh",
            "del",
            fam.gw(),
            "dev",
            &self.ifc,
        ]); // not fatal: a heal may have flushed it already
    }

    /// The gateway is deaf at layer 2 for `fam` (ARP or NDP), the host's cache flushed.
    pub fn gateway_stops_l2(&self, fam: Fam) {
        match fam {
            Fam::V4 => self.gateway_stops_arp(),
            Fam::V6 => self.gateway_stops_ndp(),
        }
    }

    pub fn gateway_answers_l2(&self, fam: Fam) {
        match fam {
            Fam::V4 => self.gateway_answers_arp(),
            Fam::V6 => self.gateway_answers_ndp(),
        }
    }

    /// One family's outage: the router drops every packet of `fam` to and through itself
    /// (ARP too, for IPv4), and the host forgets that family's neighbours. The other family
    /// keeps working. The watched link then fails at `gateway-dead` for `fam`.
    pub fn break_family(&self, fam: Fam) {
        let rule = match fam {
            Fam::V4 => "meta nfproto ipv4 drop",
            Fam::V6 => "meta nfproto ipv6 drop",
        };
        let table = format!("nhfam{}", fam.name());
        self.nft(
            &self.router,
            &table,
            &chains(&table, &["input", "forward"], &[rule]),
        );
        if fam == Fam::V4 {
            self.gateway_stops_arp();
        }
        self.flush_host_neigh(fam);
    }

    pub fn mend_family(&self, fam: Fam) {
        let table = format!("nhfam{}", fam.name());
        self.nft_quiet(&self.router, &["delete", "table", "inet", &table]);
        if fam == Fam::V4 {
            self.gateway_answers_arp();
        }
    }

    /// The far side goes silent: a blackhole qdisc on the router's far link drops everything
    /// the router sends there. The gateway itself keeps answering (upstream-only outage).
    pub fn kill_far(&self) {
        self.exec(
            &self.router,
            &["tc", "qdisc", "add", "dev", &self.rfar, "root", "blackhole"],
        );
    }

    pub fn revive_far(&self) {
        self.exec(
            &self.router,
            &["tc", "qdisc", "del", "dev", &self.rfar, "root"],
        );
    }

    /// The watched interface administratively down (in the host: IFF_UP cleared).
    pub fn host_admin_down(&self) {
        self.ip(&self.host, &["link", "set", &self.ifc, "down"]);
    }

    /// Is the watched interface administratively up?
    pub fn host_admin_up(&self) -> bool {
        let show = self.ip(&self.host, &["link", "show", &self.ifc]);
        let flags = show.split(['<', '>']).nth(1).unwrap_or("");
        flags.split(',').any(|f| f == "UP")
    }

    /// Does the watched interface have carrier (LOWER_UP)?
    pub fn host_carrier(&self) -> bool {
        let show = self.ip(&self.host, &["link", "show", &self.ifc]);
        let flags = show.split(['<', '>']).nth(1).unwrap_or("");
        flags.split(',').any(|f| f == "LOWER_UP")
    }

    /// Carrier loss on the watched link: the router's end goes down, the host's end stays
    /// admin up without LOWER_UP (NO-CARRIER).
    pub fn carrier_lost(&self) {
        self.ip(&self.router, &["link", "set", &self.rhost, "down"]);
    }

    /// Carrier back (the router's addresses survived: keep_addr_on_down).
    pub fn carrier_back(&self) {
        self.ip(&self.router, &["link", "set", &self.rhost, "up"]);
    }

    /// Restore the host's addresses and default routes of both families, as an admin's ifup
    /// would (a link down removes the routes and the global IPv6 address).
    pub fn restore_host_config(&self) {
        let (host, ifc) = (&self.host, &self.ifc);
        let v6 = format!("{HOST6}/64");
        let v4 = format!("{HOST4}/24");
        // not fatal, each of them: a link still down refuses them; the caller checks
        let _ = run(&["ip", "-n", host, "addr", "replace", &v4, "dev", ifc]);
        let _ = run(&[
            "ip", "-n", host, "addr", "replace", &v6, "dev", ifc, "nodad",
        ]);
        for (flag, gw) in [("-4", GW4), ("-6", GW6)] {
            let _ = run(&[
                "ip", "-n", host, flag, "route", "replace", "default", "via", gw, "dev", ifc,
            ]);
        }
    }

    /// Start the far side's servers: TCP on [`TCP_PORT`] (and `extra_tcp`), DNS on
    /// [`DNS_PORT`], both families. Waits until they listen.
    pub fn serve(&mut self, extra_tcp: &[u16]) {
        let py = self.write_file("serve.py", SERVE_PY, 0o644);
        let mut args: Vec<String> = vec![
            "python3".into(),
            "-u".into(),
            py.to_str().unwrap().into(),
            DNS_PORT.to_string(),
            TCP_PORT.to_string(),
        ];
        args.extend(extra_tcp.iter().map(u16::to_string));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let far = self.far.clone();
        self.spawn_bg(&far, &args, "serve.log");
        let log = self.dir.join("serve.log");
        let up = super::wait_until(Duration::from_secs(10), || {
            fs::read_to_string(&log).is_ok_and(|s| s.contains("ready"))
        });
        assert!(
            up,
            "far servers did not start: {}",
            fs::read_to_string(&log).unwrap_or_default()
        );
    }

    /// How many events of `kind` (`tcp`, `dns`) the far servers logged.
    pub fn served(&self, kind: &str) -> usize {
        let log = fs::read_to_string(self.dir.join("serve.log")).unwrap_or_default();
        log.lines()
            .filter(|l| l.split_whitespace().next() == Some(kind))
            .count()
    }

    /// A heal step or on-change hook that appends one line per run to `NAME.record`:
    /// `IFACE attempt=N layer=L family=F state=S reason=R` (a heal step gets no layer, family
    /// or state: those are the hook's). Returns (script path, record path).
    pub fn recorder(&self, name: &str) -> (String, PathBuf) {
        let record = self.dir.join(format!("{name}.record"));
        let step = self.script(
            &format!("{name}.sh"),
            &format!(
                "#!/bin/sh\n\
                 echo \"$1 attempt=$NETHEAL_ATTEMPT layer=$NETHEAL_LAYER \
                 family=$NETHEAL_FAMILY state=$NETHEAL_STATE reason=$NETHEAL_REASON\" \
                 >> {}\n",
                record.display()
            ),
        );
        (step.to_str().unwrap().to_owned(), record)
    }

    /// A configuration file `NAME.conf` in the lab directory with `[ifc]` and `keys` (one
    /// `key = value` a line); returns its path for `-c`.
    pub fn config(&self, name: &str, keys: &[&str]) -> String {
        let mut body = format!("[{}]\n", self.ifc);
        for k in keys {
            body.push_str(k);
            body.push('\n');
        }
        let path = self.write_file(&format!("{name}.conf"), &body, 0o644);
        path.to_str().unwrap().to_owned()
    }

    /// netheal in the host namespace with a status file in the lab directory (after
    /// `quiet_args`' `--status-file none`: the later option wins).
    /// The status file is rewritten every 100 ms (NETHEAL_TEST_STATUS_EVERY_MS; the default is
    /// a minute, and on state changes), so a test can follow the lanes in it.
    pub fn netheal_status(&self, args: &[&str]) -> Netheal {
        let status = self.status_path();
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.host, super::bin(), "--log", "stderr"])
            .args(super::quiet_args())
            .args(["--status-file", &status])
            .args(args)
            .env("NETHEAL_TEST_STATUS_EVERY_MS", "100");
        for var in ["NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"] {
            cmd.env_remove(var);
        }
        Netheal::spawn(cmd, args.join(" "))
    }

    pub fn status_path(&self) -> String {
        self.path("netheal.status")
    }

    /// The status file as `key -> value` (every `key=value` word of every line; a later
    /// duplicate key wins). Empty when there is none yet.
    pub fn status_keys(&self) -> std::collections::HashMap<String, String> {
        let text = fs::read_to_string(self.status_path()).unwrap_or_default();
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .flat_map(str::split_whitespace)
            .filter_map(|w| w.split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }
}

/// Lines of a record file written by a [`Routed::recorder`] step or hook.
pub fn records(path: &PathBuf) -> Vec<String> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Table `inet NAME` with one filter chain per hook in `hooks`, each holding `rules`.
pub fn chains(name: &str, hooks: &[&str], rules: &[&str]) -> String {
    let mut s = format!("table inet {name} {{\n");
    for hook in hooks {
        s.push_str(&format!(
            "\tchain {hook} {{\n\t\ttype filter hook {hook} priority 0; policy accept;\n"
        ));
        for r in rules {
            s.push_str(&format!("\t\t{r}\n"));
        }
        s.push_str("\t}\n");
    }
    s.push_str("}\n");
    s
}
