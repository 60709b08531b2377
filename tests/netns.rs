//! The real binary against the real kernel: every test builds its own throw-away network
//! namespaces (see `lab`), breaks something, and checks what netheal logs and does, with
//! measured times. Needs root; skips without it unless CI=true (then it fails).
//!
//! Timings are short (`-i 200ms -W 300ms`, backoff of a second or two) so the suite runs in
//! parallel in well under a minute of wall time per test. Every wait is bounded. Figures are
//! printed with `eprintln!`; see them with `cargo test --test netns -- --nocapture`.

mod lab;

use lab::{dur_after, is_good_round, is_round, live_in_group, proc_stat, secs, wait_until};
use lab::{input_rule, Lab, Netheal, HOST4, PEER4};
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::{Duration, Instant};

fn s(x: f64) -> Duration {
    Duration::from_secs_f64(x)
}

/// Total silent loss on `dev` (no netem here: a blackhole root qdisc drops every frame).
fn blackhole(lab: &Lab, ns: &str, dev: &str) {
    lab.exec(ns, &["tc", "qdisc", "add", "dev", dev, "root", "blackhole"]);
}

/// Failed (not good) round lines among `lines[from..to]`.
fn failed_rounds_between(nh: &Netheal, from: usize, to: usize) -> usize {
    nh.lines()[from..to]
        .iter()
        .filter(|l| is_round(&l.1) && !is_good_round(&l.1))
        .count()
}

/// Scenario 1: A healthy peer: many rounds, not one heal, every reply counted.
#[test]
fn healthy_peer_never_heals() {
    let Some(lab) = Lab::pair("ok", 1, &[]) else {
        return;
    };
    lab.ip(&lab.host, &["route", "add", "default", "via", PEER4]);
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            "gateway",
            "-i",
            "100ms",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &lab.ifc,
        ],
    );
    let (_, start) = nh.expect(nh.started, "watching targets", s(5.0));
    assert!(
        start.contains(&format!("{}: watching targets", lab.ifc)),
        "{start}"
    );
    let (_, (t40, _)) = nh
        .wait_nth(40, s(20.0), is_round)
        .expect("40 rounds within 20s");
    let rounds = nh.rounds();
    let first = rounds[0].0;
    let bad: Vec<&String> = rounds.iter().filter(|r| !r.1).map(|r| &r.2).collect();
    assert!(bad.is_empty(), "failed rounds on a healthy link: {bad:?}");
    // `gateway` is the default route's next hop, re-read every round: 198.51.100.1.
    assert!(
        rounds.iter().all(|r| r.2.contains(PEER4)),
        "{:?}",
        rounds[0].2
    );
    // 39 intervals between the first and the 40th round start: the interval is honoured
    // (no spinning), and the loop keeps up.
    let span = secs(first, t40);
    assert!(
        (3.6..8.0).contains(&span),
        "40 rounds took {span:.2}s, expected ~3.9s"
    );
    let (line, st) = nh.status(s(3.0)).expect("status line after SIGUSR1");
    assert!(st["rounds"] >= 40 && st["replies"] >= 40, "{line}");
    assert_eq!(st["heals"], 0, "{line}");
    assert_eq!(nh.count_lines("heal attempt"), 0);
    assert_eq!(nh.count_lines("-> suspect"), 0);
    assert_eq!(nh.count_lines("starting -> up"), 1);
    eprintln!("healthy: 40 rounds in {span:.2}s (first round to 40th); {line}");
}

/// Scenario 2: The watched side's address is flushed; an exec step re-adds it. The heal starts
/// within the detection bound INTERVAL + N x TIMEOUT (+ slack), after exactly N failed rounds.
#[test]
fn flushed_address_is_restored_by_exec_step() {
    let Some(lab) = Lab::pair("fl", 2, &[]) else {
        return;
    };
    let record = lab.path("step.record");
    let step = lab.script(
        "restore.sh",
        &format!(
            "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\n\
             echo \"$# $1 $NETHEAL_IFACE $NETHEAL_ATTEMPT $NETHEAL_REASON\" >> {record}\n\
             echo \"restoring $1\"\n\
             ip addr replace {HOST4}/24 dev \"$1\"\n"
        ),
    );
    let step = step.to_str().unwrap();
    let (interval, timeout, n) = (1.0, 0.3, 3.0);
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t", PEER4, "-i", "1s", "-W", "300ms", "-a", step, "-b", "2s:4s", "-v", &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    // Flush right after a good round: the next round starts about INTERVAL later, close to
    // the worst case the bound covers.
    nh.wait_line(nh.mark(), s(5.0), is_good_round)
        .expect("a good round");
    let t0 = Instant::now();
    lab.ip(&lab.host, &["-4", "addr", "flush", "dev", &lab.ifc]);
    let from = nh.index_at(t0);
    let (hi, (t_heal, heal)) = nh
        .wait_line(from, s(10.0), |l| l.contains("heal attempt 1: running"))
        .expect("heal attempt 1 within 10s of the flush");
    assert!(heal.contains(step), "{heal}");
    let detect = secs(t0, t_heal);
    // Slack 0.5s: the flush command itself, one poll-loop turn, spawning the step and the log
    // line crossing a pipe, on two cores shared with the other tests (typically < 50ms).
    let bound = interval + n * timeout;
    assert!(
        detect <= bound + 0.5,
        "heal started {detect:.3}s after the flush, bound {bound}s + 0.5s"
    );
    let failed = failed_rounds_between(&nh, from, hi);
    assert_eq!(failed, 3, "failed rounds before the heal (fail-after 3)");
    let (t_end, end) = nh.expect(t_heal, &format!("heal attempt 1: {step} "), s(5.0));
    assert!(end.contains(&format!("{step} exited 0 after")), "{end}");
    let (t_up, up) = nh.expect(t_heal, "-> up", s(5.0));
    assert!(
        lab.has_addr(&lab.host, &lab.ifc, HOST4),
        "address not restored"
    );
    let out = nh.expect(
        t_heal,
        &format!("restore.sh: restoring {}", lab.ifc),
        s(2.0),
    );
    assert!(
        out.1.contains(&format!("{}: restore.sh: ", lab.ifc)),
        "{}",
        out.1
    );
    let rec = fs::read_to_string(&record).expect("step record");
    let fields: Vec<&str> = rec.lines().next().unwrap_or("").splitn(5, ' ').collect();
    assert_eq!(
        fields[..4],
        ["1", &lab.ifc, &lab.ifc, "1"],
        "argv/env of the step: {rec:?}"
    );
    assert!(
        fields.get(4).is_some_and(|r| !r.is_empty()),
        "NETHEAL_REASON empty: {rec:?}"
    );
    eprintln!(
        "flush: heal started {detect:.3}s after the flush (bound {bound:.1}s + 0.5s slack, \
         {failed} failed rounds); step ran {:.3}s; up {:.3}s after the step ended; `{}`; \
         reason {:?}",
        secs(t_heal, t_end),
        secs(t_end, t_up),
        up.split(": state ").nth(1).unwrap_or(&up),
        fields.get(4).unwrap_or(&"")
    );
}

/// Scenario 3: The seed scenario with real Debian ifupdown, found by the default step `auto`
/// (from the interfaces stanza and ifup's state): inside the host
/// namespace's private mount namespace /etc/network is a lab directory (with empty hook
/// directories, so no systemctl/resolvconf) and /run a fresh tmpfs; `ifup` configures
/// address, netmask and default gateway; then address and default route are flushed and
/// netheal's `ifdown; ifup` brings both back.
#[test]
fn ifupdown_restores_address_and_default_route() {
    let Some(lab) = Lab::pair("ifu", 3, &["ifup", "ifdown", "mount"]) else {
        return;
    };
    assert!(
        fs::metadata("/etc/network").is_ok_and(|m| m.is_dir()),
        "/etc/network missing although ifupdown is installed"
    );
    let etc = lab.dir.join("etc-network");
    for d in [
        "if-up.d",
        "if-down.d",
        "if-pre-up.d",
        "if-post-down.d",
        "interfaces.d",
    ] {
        fs::create_dir_all(etc.join(d)).unwrap();
    }
    fs::write(
        etc.join("interfaces"),
        format!(
            "# netheal test lab\niface {} inet static\n    address {HOST4}\n    \
             netmask 255.255.255.0\n    gateway {PEER4}\n",
            lab.ifc
        ),
    )
    .unwrap();
    // ifup, not the lab, configures IPv4 on the watched side.
    lab.ip(&lab.host, &["-4", "addr", "flush", "dev", &lab.ifc]);
    let script = format!(
        "set -e; export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin; \
         mount --bind {etc} /etc/network; mount -t tmpfs -o mode=0755 tmpfs /run; \
         mkdir -p /run/network; ifup {ifc}; \
         exec {bin} --log stderr {quiet} -i 1s -W 300ms -b 2s:8s -v {ifc}",
        etc = etc.display(),
        ifc = lab.ifc,
        bin = lab::bin(),
        quiet = lab::quiet_args().join(" ")
    );
    let mut cmd = Command::new("ip");
    cmd.args(["netns", "exec", &lab.host, "sh", "-c", &script]);
    let nh = Netheal::spawn(
        cmd,
        format!("ifup {} && netheal (default target, default step)", lab.ifc),
    );
    let (_, start) = nh.expect(nh.started, "watching targets", s(10.0));
    nh.expect(nh.started, "-> up", s(10.0));
    assert!(lab
        .default_route(&lab.host)
        .contains(&format!("via {PEER4}")));
    let t0 = Instant::now();
    lab.ip(&lab.host, &["-4", "addr", "flush", "dev", &lab.ifc]);
    // not fatal: the address flush usually took the default route with it already
    let _ = lab::run(&["ip", "-n", &lab.host, "-4", "route", "flush", "default"]);
    assert!(!lab.has_addr(&lab.host, &lab.ifc, HOST4));
    assert_eq!(
        lab.default_route(&lab.host),
        "",
        "default route survived the flush"
    );
    let (t_heal, heal) = nh.expect(t0, "heal attempt 1: running", s(10.0));
    assert!(
        heal.contains("running ifupdown (auto)"),
        "auto resolves to ifupdown: {heal}"
    );
    let (t_end, end) = nh.expect(t_heal, "heal attempt 1: ifupdown ", s(30.0));
    assert!(end.contains("ifupdown exited 0"), "{end}");
    let (t_up, _) = nh.expect(t_heal, "-> up", s(10.0));
    assert!(
        lab.has_addr(&lab.host, &lab.ifc, HOST4),
        "ifup did not restore the address"
    );
    let route = lab.default_route(&lab.host);
    assert!(
        route.contains(&format!("via {PEER4}")),
        "default route not restored: {route:?}"
    );
    let tool_lines = nh
        .lines()
        .iter()
        .filter(|l| l.1.contains(": ifup: ") || l.1.contains(": ifdown: "))
        .count();
    eprintln!(
        "ifupdown: `{}`; heal {:.3}s after the flush, ifdown+ifup took {:.3}s, up {:.3}s later; \
         {tool_lines} ifup/ifdown output lines; route now {route:?}",
        start.split(": ").nth(2).unwrap_or(&start),
        secs(t0, t_heal),
        secs(t_heal, t_end),
        secs(t_end, t_up)
    );
}

/// Scenario 4: Link administratively down: the built-in `link` step sets it up again.
#[test]
fn link_down_is_restored_by_link_step() {
    let Some(lab) = Lab::pair("ln", 4, &[]) else {
        return;
    };
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            "link",
            "-b",
            "1s:4s",
            "-v",
            // The ladder's `link` step, not the built-in link-up at once (issue 10's default).
            "--on-admin-down",
            "heal",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    let t0 = Instant::now();
    lab.ip(&lab.host, &["link", "set", &lab.ifc, "down"]);
    let (t_heal, heal) = nh.expect(t0, "heal attempt 1: running", s(10.0));
    assert!(heal.contains("running link"), "{heal}");
    let (t_end, end) = nh.expect(t_heal, "heal attempt 1: link ", s(5.0));
    // The built-in step runs in a child of its own, and reports `link done after DUR`.
    assert!(end.contains("link done after"), "{end}");
    let (t_up, _) = nh.expect(t_heal, "-> up", s(5.0));
    let show = lab.ip(&lab.host, &["link", "show", &lab.ifc]);
    let flags = show.split(['<', '>']).nth(1).unwrap_or("");
    assert!(
        flags.split(',').any(|f| f == "UP"),
        "link still down: {show}"
    );
    eprintln!(
        "link: heal {:.3}s after `link set down` (bound 0.2 + 3x0.3 = 1.1s), step {:.3}s, \
         up {:.3}s after it",
        secs(t0, t_heal),
        secs(t_heal, t_end),
        secs(t_end, t_up)
    );
    assert!(secs(t0, t_heal) < 1.1 + 0.5);
}

/// Scenario 5: 30% random loss of echo requests for 300 rounds: default count/fail-after/quorum
/// never heal. With the default 4 echoes a round fails only when all four are lost
/// (0.3^4 = 0.81%, about 2.4 of 300 rounds), and a heal needs three such rounds in a row
/// (0.0081^3 = 5e-7 per round, ~2e-4 over the run).
#[test]
fn thirty_percent_loss_never_heals() {
    let Some(lab) = Lab::pair("ls", 5, &["nft"]) else {
        return;
    };
    lab.nft(
        &lab.peer,
        "loss",
        &input_rule(
            "nhloss",
            "icmp type echo-request numgen random mod 100 < 30 counter drop",
        ),
    );
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "50ms",
            "-W",
            "200ms",
            "--dry-run",
            "-v",
            &lab.ifc,
        ],
    );
    let t0 = Instant::now();
    nh.wait_nth(300, s(120.0), is_round)
        .expect("300 rounds within 120s");
    let took = secs(t0, Instant::now());
    let (line, st) = nh.status(s(3.0)).expect("status line");
    let rounds = nh.rounds();
    let failed = rounds.iter().filter(|r| !r.1).count();
    let frac = failed as f64 / rounds.len() as f64;
    let ruleset = lab.exec(&lab.peer, &["nft", "list", "table", "inet", "nhloss"]);
    let dropped: u64 = ruleset
        .split("packets ")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    eprintln!(
        "loss: {} rounds in {took:.1}s, {failed} failed ({:.1}%, expected ~0.8%), \
         nft dropped {dropped} \
         echo requests; {line}",
        rounds.len(),
        frac * 100.0
    );
    // The loss was real...
    assert!(dropped >= 30, "nft dropped only {dropped} echo requests");
    assert!(st["lost"] > 0, "no lost echoes counted: {line}");
    // ...yet later echoes of the same round covered for it, and no outage was declared.
    // 4% is 12 of 300 rounds: with ~2.4 expected (Poisson), more happens about once in
    // 10^5 runs, so a bound this tight still fails if count fell back to 3 (2.7%: ~8
    // expected, over 12 in one run of 10) or loss were counted per echo instead of per round.
    assert!(frac < 0.04, "{failed} of {} rounds failed", rounds.len());
    assert_eq!(nh.count_lines("heal attempt"), 0);
    assert_eq!(nh.count_lines("-> down"), 0);
}

/// Scenario 6: A step that hangs is killed (SIGTERM to its group) at --heal-timeout; probing goes
/// on meanwhile; the next attempt comes after the backoff.
#[test]
fn hung_step_is_killed_at_heal_timeout() {
    let Some(lab) = Lab::pair("hg", 6, &["tc"]) else {
        return;
    };
    let pids = lab.path("hang.pids");
    let step = lab.script(
        "hang.sh",
        &format!("#!/bin/sh\necho $$ >> {pids}\nexec sleep 1000\n"),
    );
    let step = step.to_str().unwrap();
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            step,
            "--heal-timeout",
            "1s",
            "-b",
            "1s:4s",
            "-v",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    blackhole(&lab, &lab.host, &lab.ifc);
    let (t1, _) = nh.expect(nh.started, "heal attempt 1: running", s(10.0));
    // The end line, whatever it says: `heal attempt 1: STEP ...` (the start line reads
    // `heal attempt 1: running STEP`).
    let (t2, end) = nh.expect(t1, &format!("heal attempt 1: {step} "), s(5.0));
    assert!(
        end.contains("killed by signal 15") && end.contains("(timed out)"),
        "{end}"
    );
    let ran = secs(t1, t2);
    assert!(
        (0.95..1.6).contains(&ran),
        "step ran {ran:.3}s with --heal-timeout 1s"
    );
    let reported = dur_after(&end, " after ").expect("duration in the end line");
    assert!((0.95..1.5).contains(&reported), "{end}");
    let meanwhile = nh.rounds().iter().filter(|r| r.0 > t1 && r.0 < t2).count();
    assert!(
        meanwhile >= 2,
        "only {meanwhile} rounds logged while the step hung"
    );
    let (t3, _) = nh.expect(t2, "heal attempt 2: running", s(5.0));
    let gap = secs(t2, t3);
    assert!(
        (0.85..1.1 + 0.3 + 0.25).contains(&gap),
        "attempt 2 came {gap:.3}s after attempt 1 ended (backoff 1s)"
    );
    let first_pid: u32 = fs::read_to_string(&pids)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        wait_until(
            s(1.0),
            || !matches!(proc_stat(first_pid), Some((st, _, _)) if st != 'Z')
        ),
        "attempt 1's process {first_pid} still alive"
    );
    eprintln!(
        "hang: killed {ran:.3}s after start (log says {reported:.3}s), \
         {meanwhile} rounds logged meanwhile, \
         attempt 2 {gap:.3}s after attempt 1 ended (backoff 1s +-10%)"
    );
}

/// Scenario 6b: A step that ignores SIGTERM gets SIGKILL 5s after the heal timeout.
#[test]
fn stubborn_step_gets_sigkill() {
    let Some(lab) = Lab::pair("st", 7, &["tc"]) else {
        return;
    };
    let pidf = lab.path("stubborn.pid");
    let step = lab.script(
        "stubborn.sh",
        &format!("#!/bin/sh\ntrap '' TERM\necho $$ > {pidf}\nsleep 1000\necho survived\n"),
    );
    let step = step.to_str().unwrap();
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            step,
            "--heal-timeout",
            "1s",
            "-b",
            "30s",
            "-v",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    blackhole(&lab, &lab.host, &lab.ifc);
    let (t1, _) = nh.expect(nh.started, "heal attempt 1: running", s(10.0));
    let (t2, end) = nh.expect(t1, &format!("heal attempt 1: {step} killed"), s(10.0));
    assert!(
        end.contains("killed by signal 9") && end.contains("(timed out)"),
        "{end}"
    );
    let ran = secs(t1, t2);
    assert!(
        (5.9..7.0).contains(&ran),
        "SIGKILL came {ran:.3}s after the start, expected 1s + 5s"
    );
    let pid: u32 = fs::read_to_string(&pidf).unwrap().trim().parse().unwrap();
    assert!(
        wait_until(s(1.0), || live_in_group(pid).is_empty()),
        "step group {pid} still has live processes: {:?}",
        live_in_group(pid)
    );
    assert_eq!(nh.count_lines("survived"), 0);
    eprintln!("stubborn: SIGKILL {ran:.3}s after the start (--heal-timeout 1s + 5s grace)");
}

/// Scenario 7: A step that always fails: attempts follow the doubling backoff up to the cap.
#[test]
fn failing_step_backs_off_doubling_to_cap() {
    let Some(lab) = Lab::pair("bk", 8, &["tc"]) else {
        return;
    };
    let step = lab.script("fail.sh", "#!/bin/sh\necho failing on purpose\nexit 1\n");
    let step = step.to_str().unwrap();
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t", PEER4, "-i", "200ms", "-W", "300ms", "-a", step, "-b", "500ms:2s", "-v", &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    blackhole(&lab, &lab.host, &lab.ifc);
    let mut starts = Vec::new();
    let mut ends = Vec::new();
    let mut announced = Vec::new();
    let mut after = nh.started;
    for k in 1..=5 {
        let (ts, _) = nh.expect(after, &format!("heal attempt {k}: running"), s(10.0));
        let (te, end) = nh.expect(ts, &format!("heal attempt {k}: {step} exited"), s(5.0));
        assert!(end.contains("exited 1 after"), "{end}");
        if k < 5 {
            let (_, next) = nh.expect(
                ts,
                &format!("heal attempt {k} ended; next attempt in "),
                s(5.0),
            );
            announced.push(dur_after(&next, "next attempt in ").expect("duration"));
        }
        starts.push(ts);
        ends.push(te);
        after = te;
    }
    let expected = [0.5, 1.0, 2.0, 2.0];
    let gaps: Vec<f64> = (0..4).map(|k| secs(ends[k], starts[k + 1])).collect();
    eprintln!(
        "backoff: gaps between attempt end and next start {:?} s (expected {expected:?} +-10%), \
         announced {announced:?}",
        gaps.iter()
            .map(|g| (g * 1000.0).round() / 1000.0)
            .collect::<Vec<_>>()
    );
    for k in 0..4 {
        let e = expected[k];
        // +-10% jitter; a little below for line-arrival skew, up to one round (0.3s) and loop
        // latency above in case the attempt waits for the round in progress.
        assert!(
            (0.9 * e - 0.05..=1.1 * e + 0.3 + 0.15).contains(&gaps[k]),
            "gap {} = {:.3}s, expected {e}s +-10%",
            k + 1,
            gaps[k]
        );
        assert!(
            // printed with one decimal: allow its rounding
            (0.9 * e - 0.051..=1.1 * e + 0.051).contains(&announced[k]),
            "announced {}s for an expected {e}s",
            announced[k]
        );
    }
    assert!(nh.count_lines("fail.sh: failing on purpose") >= 5);
}

/// Scenario 8: The watched veth is deleted and re-created under the same name: no crash, sockets
/// follow the new ifindex, probing resumes.
#[test]
fn recreated_interface_is_followed() {
    let Some(lab) = Lab::pair("rc", 9, &[]) else {
        return;
    };
    let noop = lab.script("noop.sh", "#!/bin/sh\nexit 0\n");
    let mut nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            noop.to_str().unwrap(),
            "-b",
            "1s:4s",
            "-v",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    let index = |lab: &Lab| -> String {
        lab.ip(&lab.host, &["-o", "link", "show", &lab.ifc])
            .split(':')
            .next()
            .unwrap()
            .to_owned()
    };
    let old = index(&lab);
    let t_del = Instant::now();
    lab.ip(&lab.host, &["link", "del", &lab.ifc]);
    let from = nh.index_at(t_del);
    // The kernel reports the deletion (netlink): it must say so (whether a round in flight
    // when it went also failed is a matter of timing, and not asserted).
    let (_, (t_noticed, noticed)) = nh
        .wait_line(from, s(5.0), |l| {
            l.contains(&format!("{}: interface is gone", lab.ifc))
        })
        .expect("netheal did not notice that the interface was deleted");
    let t_re = Instant::now();
    lab.veth(&lab.host, &lab.ifc, &lab.peer, &lab.pifc);
    lab.addrs(&lab.host, &lab.ifc, &[&format!("{HOST4}/24")]);
    lab.addrs(&lab.peer, &lab.pifc, &[&format!("{PEER4}/24")]);
    let new = index(&lab);
    assert_ne!(old, new);
    let from = nh.index_at(t_re);
    // It was seen missing, so its return is an appearance under the new index (not an
    // "index changed", which is for a re-creation between two rounds).
    let (i, (t_bound, bound)) = nh
        .wait_line(from, s(10.0), |l| l.contains("interface appeared"))
        .expect("no `interface appeared` line");
    assert!(
        bound.contains(&format!("interface appeared (index {new})")),
        "{bound} should name the new index {new}"
    );
    let (_, (t_good, _)) = nh
        .wait_line(i, s(10.0), is_good_round)
        .expect("good round after re-bind");
    // The outage may have been too short to leave `up` at all; either way it must be up now.
    let (status, _) = nh.status(s(3.0)).expect("status line");
    assert!(status.contains("status: state up "), "{status}");
    assert!(nh.try_exit().is_none(), "netheal exited");
    eprintln!(
        "recreate: noticed {:.3}s after delete ({noticed:?}); `{}` {:.3}s after re-create \
         (index {old} -> {new}); good round {:.3}s later",
        secs(t_del, t_noticed),
        bound.split(": ").nth(2).unwrap_or(&bound),
        secs(t_re, t_bound),
        secs(t_bound, t_good)
    );
}

/// Scenario 9a: An IPv6 target: healthy rounds, then total loss, heal (an exec step removing the
/// blackhole), up again.
#[test]
fn ipv6_target_healthy_then_healed() {
    let Some(lab) = Lab::pair("v6", 0x9a, &["tc"]) else {
        return;
    };
    let fix = lab.script(
        "unblackhole.sh",
        "#!/bin/sh\nPATH=/usr/sbin:/usr/bin:/sbin:/bin\ntc qdisc del dev \"$1\" root\n",
    );
    let peer6 = lab.peer6();
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            &peer6,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            fix.to_str().unwrap(),
            "-b",
            "1s:4s",
            "-v",
            &lab.ifc,
        ],
    );
    let (_, start) = nh.expect(nh.started, "watching targets", s(5.0));
    assert!(start.contains(&peer6), "{start}");
    let (_, (_, fifth)) = nh
        .wait_nth(5, s(10.0), is_good_round)
        .expect("5 good IPv6 rounds");
    assert!(fifth.contains(&peer6), "{fifth}");
    let t0 = Instant::now();
    blackhole(&lab, &lab.host, &lab.ifc);
    let (t_heal, _) = nh.expect(t0, "heal attempt 1: running", s(10.0));
    let (t_up, _) = nh.expect(t_heal, "-> up", s(10.0));
    assert_eq!(nh.count_lines("heal attempt 2: running"), 0);
    eprintln!(
        "ipv6: `{}`; heal {:.3}s after the blackhole, up {:.3}s after the heal",
        start.split(": ").nth(2).unwrap_or(&start),
        secs(t0, t_heal),
        secs(t_heal, t_up)
    );
}

/// Scenario 9b: Two targets with --quorum 2: one stops answering, so the round fails and a heal
/// (dry run) follows; when it answers again the outage ends.
#[test]
fn quorum_two_fails_when_one_target_is_silent() {
    let Some(lab) = Lab::pair("q2", 0x9b, &["nft"]) else {
        return;
    };
    let second = "198.51.100.3";
    lab.addrs(&lab.peer, &lab.pifc, &[&format!("{second}/24")]);
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-t",
            second,
            "--quorum",
            "2",
            "-i",
            "200ms",
            "-W",
            "300ms",
            "--dry-run",
            "-b",
            "1s:4s",
            "-v",
            &lab.ifc,
        ],
    );
    let (_, start) = nh.expect(nh.started, "watching targets", s(5.0));
    assert!(
        start.contains("quorum 2") && start.contains(second),
        "{start}"
    );
    let (_, (_, third)) = nh
        .wait_nth(3, s(10.0), is_good_round)
        .expect("3 good rounds");
    assert!(third.contains(PEER4) && third.contains(second), "{third}");
    let t0 = Instant::now();
    lab.nft(
        &lab.peer,
        "quorum",
        &input_rule(
            "nhq",
            &format!("ip daddr {second} icmp type echo-request drop"),
        ),
    );
    let (_, suspect) = nh.expect(t0, "-> suspect", s(5.0));
    assert!(suspect.contains("1/2"), "{suspect}");
    let (t_heal, heal) = nh.expect(t0, "heal attempt 1: dry run, not running", s(10.0));
    assert!(
        heal.contains("(auto)"),
        "the default step, auto, named in the dry run with what it resolved to: {heal}"
    );
    let t_fix = Instant::now();
    lab.exec(&lab.peer, &["nft", "delete", "table", "inet", "nhq"]);
    let (t_up, _) = nh.expect(t_fix, "-> up", s(5.0));
    eprintln!(
        "quorum: `{}`; dry-run heal {:.3}s after the drop; up {:.3}s after it was lifted",
        suspect.split(": state ").nth(1).unwrap_or(&suspect),
        secs(t0, t_heal),
        secs(t_fix, t_up)
    );
}

/// Scenario 10: The target stays reachable through a second interface, but netheal watches the
/// first: when that one fails it must still see the failure (probes bound to the watched interface,
/// not routed). Host routes 203.0.113.1 via the watched veth (metric 10) and via a second veth
/// (metric 20); both peers have 203.0.113.1 on lo. The watched veth's peer side goes down and, with
/// ignore_routes_with_linkdown, the kernel routes 203.0.113.1 via the second veth: an unbound ping
/// still works, so only a bound prober notices.
#[test]
fn failure_seen_although_target_reachable_via_other_interface() {
    let Some(mut lab) = Lab::pair("2i", 10, &["busybox", "sysctl"]) else {
        return;
    };
    let target = "203.0.113.1";
    let peer2 = lab.add_ns("q");
    let (c, d) = (lab.name("c"), lab.name("d"));
    let (host, peer, ifc, pifc) = (
        lab.host.clone(),
        lab.peer.clone(),
        lab.ifc.clone(),
        lab.pifc.clone(),
    );
    lab.veth(&host, &c, &peer2, &d);
    lab.addrs(&host, &c, &["203.0.113.130/25"]);
    lab.addrs(&peer2, &d, &["203.0.113.129/25"]);
    lab.addrs(&peer, "lo", &[&format!("{target}/32")]);
    lab.addrs(&peer2, "lo", &[&format!("{target}/32")]);
    lab.ip(
        &host,
        &[
            "route",
            "add",
            &format!("{target}/32"),
            "via",
            PEER4,
            "dev",
            &ifc,
            "metric",
            "10",
        ],
    );
    lab.ip(
        &host,
        &[
            "route",
            "add",
            &format!("{target}/32"),
            "via",
            "203.0.113.129",
            "dev",
            &c,
            "metric",
            "20",
        ],
    );
    lab.exec(
        &host,
        &[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.conf.all.ignore_routes_with_linkdown=1",
            &format!("net.ipv4.conf.{ifc}.ignore_routes_with_linkdown=1"),
        ],
    );
    let nh = lab.netheal_ladder(
        &host,
        &[
            "-t",
            target,
            "-i",
            "200ms",
            "-W",
            "300ms",
            // The peer's side goes down (no carrier): heal at once, not after 30 s.
            "--carrier-wait",
            "0",
            "--dry-run",
            "-b",
            "1s:4s",
            "-v",
            &ifc,
        ],
    );
    nh.wait_nth(3, s(10.0), is_good_round)
        .expect("3 good rounds");
    let t0 = Instant::now();
    lab.ip(&peer, &["link", "set", &pifc, "down"]);
    // The precondition that makes this test mean something: the target is still reachable
    // from the host, through the other interface.
    // (linkwatch applies the carrier change asynchronously, within about a second).
    let via_other = || {
        lab.ip(&host, &["route", "get", target])
            .contains(&format!("dev {c} "))
    };
    assert!(
        wait_until(s(3.0), via_other),
        "kernel does not route {target} via {c}: {}",
        lab.ip(&host, &["route", "get", target])
    );
    lab.exec(&host, &["busybox", "ping", "-c", "1", "-W", "2", target]);
    let (_, (t_suspect, _)) = nh
        .wait_line(nh.index_at(t0), s(5.0), |l| l.contains("-> suspect"))
        .expect("no failure seen while the watched interface's peer is down");
    let (t_heal, _) = nh.expect(t0, "heal attempt 1: dry run, not running", s(10.0));
    let t_fix = Instant::now();
    lab.ip(&peer, &["link", "set", &pifc, "up"]);
    let (t_up, _) = nh.expect(t_fix, "-> up", s(10.0));
    eprintln!(
        "second interface: suspect {:.3}s and dry-run heal {:.3}s after the watched peer went down \
         (target still answered via {c}); up {:.3}s after it came back",
        secs(t0, t_suspect),
        secs(t0, t_heal),
        secs(t_fix, t_up)
    );
}

/// Echo replies forged from the peer: for every echo request of netheal's (seen on an
/// AF_PACKET socket, before nftables drops it) send an echo reply from the target with the same
/// ident and sequence but a different payload (not netheal's cookie). Writes its count to a
/// file.
const FORGER: &str = r#"
import os, socket, struct, sys
iface, ident, dst, countfile = sys.argv[1], int(sys.argv[2], 0), sys.argv[3], sys.argv[4]
def csum(b):
    if len(b) % 2:
        b += b"\0"
    s = sum(struct.unpack("!%dH" % (len(b) // 2), b))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF
rx = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(0x0800))
rx.bind((iface, 0))
tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
n = 0
open(countfile, "w").write("0")
while True:
    p = rx.recv(65535)
    if len(p) < 20 or p[9] != 1:
        continue
    ihl = (p[0] & 15) * 4
    icmp = p[ihl:]
    if len(icmp) < 8:
        continue
    typ, code, _, pid, seq = struct.unpack("!BBHHH", icmp[:8])
    if typ != 8 or pid != ident:
        continue
    payload = bytes(b ^ 0xA5 for b in icmp[8:])
    c = csum(struct.pack("!BBHHH", 0, 0, 0, pid, seq) + payload)
    tx.sendto(struct.pack("!BBHHH", 0, 0, c, pid, seq) + payload, (dst, 0))
    n += 1
    with open(countfile + ".tmp", "w") as f:
        f.write(str(n))
    os.replace(countfile + ".tmp", countfile)
"#;

/// Scenario 11: Foreign traffic: netheal's own echo requests are dropped at the peer (by ICMP id),
/// a regular ping to the same target runs alongside (its replies reach netheal's raw socket), and
/// replies with netheal's ident and sequence but a wrong cookie are forged. None may count: rounds
/// fail, a (dry-run) heal follows, and the status line counts them as foreign.
#[test]
fn foreign_replies_are_not_counted() {
    let Some(mut lab) = Lab::pair("fg", 11, &["nft", "python3", "busybox"]) else {
        return;
    };
    let nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "--dry-run",
            "-b",
            "1s:4s",
            "-v",
            &lab.ifc,
        ],
    );
    let ident = nh.ident(s(5.0)).expect("ident in the start line");
    let (_, start) = nh.expect(nh.started, "watching targets", s(1.0));
    assert!(
        start.contains("raw socket"),
        "root uses a raw socket: {start}"
    );
    nh.expect(nh.started, "-> up", s(5.0));
    let count = lab.path("forged.count");
    // Debian's interpreter when present (not a version-manager shim earlier in PATH).
    let python = ["/usr/bin/python3"]
        .into_iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.exists())
        .or_else(|| lab::which("python3"))
        .unwrap();
    let python = python.to_str().unwrap();
    let (peer, host, pifc) = (lab.peer.clone(), lab.host.clone(), lab.pifc.clone());
    lab.spawn_bg(
        &peer,
        &[
            python,
            "-c",
            FORGER,
            &pifc,
            &ident.to_string(),
            HOST4,
            &count,
        ],
        "forger.log",
    );
    assert!(
        wait_until(s(10.0), || fs::metadata(&count).is_ok()),
        "forger did not start: {}",
        fs::read_to_string(lab.path("forger.log")).unwrap_or_default()
    );
    lab.spawn_bg(&host, &["busybox", "ping", "-i", "0.2", PEER4], "ping.log");
    let t0 = Instant::now();
    lab.nft(
        &peer,
        "ident",
        &input_rule(
            "nhid",
            &format!("icmp type echo-request icmp id {ident} counter drop"),
        ),
    );
    let (_, (t_down, _)) = nh
        .wait_line(nh.index_at(t0), s(10.0), |l| l.contains("-> down"))
        .expect("rounds kept succeeding: forged or foreign replies were counted");
    let (t_heal, _) = nh.expect(t0, "heal attempt 1: dry run, not running", s(10.0));
    // Keep the traffic going a little longer, then look.
    nh.wait_nth(nh.rounds().len() + 3, s(5.0), is_round);
    let forged: u64 = fs::read_to_string(&count).unwrap().trim().parse().unwrap();
    let (line, st) = nh.status(s(3.0)).expect("status line");
    let ping = fs::read_to_string(lab.path("ping.log")).unwrap_or_default();
    let ping_replies = ping.lines().filter(|l| l.contains("bytes from")).count();
    let good_after: Vec<String> = nh
        .rounds()
        .into_iter()
        .filter(|r| r.0 > t_down && r.1)
        .map(|r| r.2)
        .collect();
    eprintln!(
        "foreign: ident {ident:#06x}; down {:.3}s, dry-run heal {:.3}s after the drop; \
         forged {forged}, \
         regular ping replies {ping_replies}; {line}",
        secs(t0, t_down),
        secs(t0, t_heal)
    );
    assert!(
        forged > 0,
        "no replies were forged (forger log: {})",
        fs::read_to_string(lab.path("forger.log")).unwrap_or_default()
    );
    assert!(ping_replies > 0, "the regular ping got no replies: {ping}");
    assert!(
        good_after.is_empty(),
        "good rounds during the outage: {good_after:?}"
    );
    assert!(st["foreign"] > 0, "{line}");
    // Every forged reply reached netheal's socket before the status request, but for the
    // few that may still be queued behind the signal (at most one round's echoes).
    assert!(st["foreign"] + 3 >= forged, "{forged} forged, {line}");
}

/// Scenario 12: Unprivileged: with ping_group_range open inside the namespace, `nobody` probes over
/// a datagram socket; with it closed (`1 0`) netheal exits 3 naming both ways out.
#[test]
fn unprivileged_datagram_socket_or_exit_3() {
    let Some(lab) = Lab::pair("un", 12, &["setpriv", "sysctl"]) else {
        return;
    };
    let copy = lab.dir.join("netheal");
    fs::copy(lab::bin(), &copy).unwrap();
    fs::set_permissions(&copy, fs::Permissions::from_mode(0o755)).unwrap();
    let copy = copy.to_str().unwrap().to_owned();
    let drop = [
        "setpriv",
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
    ];
    let as_nobody = |extra: &[&str]| -> Netheal {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &lab.host])
            .args(drop)
            .args(extra);
        Netheal::spawn(cmd, format!("as nobody: {}", extra.join(" ")))
    };
    let once_as_nobody = |target: &str| -> Netheal {
        let mut args = vec![copy.as_str(), "--log", "stderr"];
        args.extend(lab::quiet_args());
        args.extend(["--once", "-t", target, "-W", "1s", &lab.ifc]);
        as_nobody(&args)
    };
    // The privilege drop is real: uid 65534 and no effective capabilities.
    let mut id = as_nobody(&["cat", "/proc/self/status"]);
    id.finish(s(5.0)).expect("cat exits");
    let status: String = id.lines().into_iter().map(|l| l.1 + "\n").collect();
    assert!(status.contains("Uid:\t65534"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    let set_range = |r: &str| {
        lab.exec(
            &lab.host,
            &[
                "sysctl",
                "-q",
                "-w",
                &format!("net.ipv4.ping_group_range={r}"),
            ],
        )
    };

    set_range("0 2147483647");
    let peer6 = lab.peer6();
    for target in [PEER4, peer6.as_str()] {
        let mut nh = once_as_nobody(target);
        let st = nh.finish(s(10.0)).expect("--once exits");
        let all: Vec<String> = nh.lines().into_iter().map(|l| l.1).collect();
        assert_eq!(Netheal::code(st), 0, "{target}: {all:?}");
        assert!(all.iter().any(|l| l.contains("datagram socket")), "{all:?}");
        eprintln!("unprivileged {target}: exit 0; {}", all[0]);
    }

    set_range("1 0");
    let mut nh = once_as_nobody(PEER4);
    let st = nh.finish(s(10.0)).expect("exits");
    let all: String = nh.lines().into_iter().map(|l| l.1 + "\n").collect();
    assert_eq!(Netheal::code(st), 3, "{all}");
    assert!(
        all.contains("CAP_NET_RAW") && all.contains("ping_group_range"),
        "{all}"
    );
    eprintln!("unprivileged, range `1 0`: exit 3: {}", all.trim());
}

/// Scenario 13: SIGTERM while a step hangs: netheal exits 0 within a second and takes the step's
/// whole process group with it.
#[test]
fn sigterm_during_hung_step_stops_cleanly() {
    let Some(lab) = Lab::pair("tm", 13, &["tc"]) else {
        return;
    };
    let pidf = lab.path("step.pid");
    let kidf = lab.path("kid.pid");
    let step = lab.script(
        "hang.sh",
        &format!(
            "#!/bin/sh\necho $$ > {pidf}.tmp && mv {pidf}.tmp {pidf}\n\
             sleep 1000 &\necho $! > {kidf}\nwait\n"
        ),
    );
    let mut nh = lab.netheal_ladder(
        &lab.host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "-a",
            step.to_str().unwrap(),
            "--heal-timeout",
            "60s",
            "-v",
            &lab.ifc,
        ],
    );
    nh.expect(nh.started, "-> up", s(10.0));
    blackhole(&lab, &lab.host, &lab.ifc);
    nh.expect(nh.started, "heal attempt 1: running", s(10.0));
    let read_pid = |f: &str| fs::read_to_string(f).ok()?.trim().parse::<u32>().ok();
    assert!(wait_until(s(3.0), || read_pid(&pidf).is_some()
        && read_pid(&kidf).is_some()));
    let (step_pid, kid) = (read_pid(&pidf).unwrap(), read_pid(&kidf).unwrap());
    let (_, _, pgid) = proc_stat(step_pid).expect("step alive");
    assert_eq!(
        proc_stat(kid).map(|p| p.2),
        Some(pgid),
        "the sleep shares the step's group"
    );
    assert_ne!(pgid, nh.pid, "the step runs in its own process group");
    let t_sig = Instant::now();
    assert!(nh.send_signal("TERM"));
    let st = nh
        .wait_exit(s(3.0))
        .expect("netheal still running 3s after SIGTERM");
    let took = secs(t_sig, Instant::now());
    assert_eq!(Netheal::code(st), 0);
    assert!(took < 1.0, "exit took {took:.3}s");
    nh.expect(nh.started, "stopping on SIGTERM", s(1.0));
    let gone = wait_until(s(0.5), || live_in_group(pgid).is_empty());
    assert!(
        gone,
        "step group {pgid} still alive after netheal exited: {:?}",
        live_in_group(pgid)
    );
    eprintln!(
        "sigterm: exit 0 {took:.3}s after SIGTERM; step group {pgid} (sh {step_pid}, \
         sleep {kid}) gone"
    );
}

/// --once: exit 0 against an answering peer, 1 against a silent address, never a heal.
#[test]
fn once_good_and_bad() {
    let Some(lab) = Lab::pair("o1", 14, &[]) else {
        return;
    };
    let peer6 = lab.peer6();
    let silent6 = format!("2001:db8:{:x}::9", lab.net6);
    for (target, want) in [
        (PEER4, 0),
        (peer6.as_str(), 0),
        ("198.51.100.9", 1),
        (silent6.as_str(), 1),
    ] {
        let t0 = Instant::now();
        let mut nh = lab.netheal_ladder(&lab.host, &["--once", "-t", target, "-W", "1s", &lab.ifc]);
        let st = nh.finish(s(10.0)).expect("--once exits");
        let took = secs(t0, Instant::now());
        assert_eq!(Netheal::code(st), want, "--once -t {target}");
        assert_eq!(nh.count_lines("heal attempt"), 0);
        if want == 0 {
            assert!(
                took < 1.0,
                "--once good took {took:.3}s; the round ends at the first reply"
            );
        } else {
            assert!(
                (0.9..3.0).contains(&took),
                "--once bad took {took:.3}s with -W 1s"
            );
        }
        eprintln!("once -t {target}: exit {want} after {took:.3}s");
    }
}

/// An interface missing at start is not fatal: netheal waits, then picks it up.
#[test]
fn missing_interface_at_start_is_awaited() {
    let Some(mut lab) = Lab::new("mi", &[]) else {
        return;
    };
    let host = lab.add_ns("h");
    let peer = lab.add_ns("p");
    let (x, y) = (lab.name("x"), lab.name("y"));
    let mut nh = lab.netheal_ladder(
        &host,
        &[
            "-t",
            PEER4,
            "-i",
            "200ms",
            "-W",
            "300ms",
            "--dry-run",
            "-v",
            &x,
        ],
    );
    let (_, absent) = nh.expect(nh.started, "interface not found; waiting for it", s(5.0));
    assert!(
        absent.contains(&format!("{x}: interface not found")),
        "{absent}"
    );
    assert!(
        !wait_until(s(1.0), || nh.try_exit().is_some()),
        "netheal exited: {:?}",
        nh.try_exit()
    );
    let t0 = Instant::now();
    lab.veth(&host, &x, &peer, &y);
    lab.addrs(&host, &x, &[&format!("{HOST4}/24")]);
    lab.addrs(&peer, &y, &[&format!("{PEER4}/24")]);
    let idx = lab
        .ip(&host, &["-o", "link", "show", &x])
        .split(':')
        .next()
        .unwrap()
        .to_owned();
    let (t_app, app) = nh.expect(t0, "interface appeared (index", s(5.0));
    assert!(app.contains(&format!("(index {idx})")), "{app}");
    let (t_up, _) = nh.expect(t0, "-> up", s(5.0));
    eprintln!(
        "missing: appeared {:.3}s after creation, up {:.3}s after that",
        secs(t0, t_app),
        secs(t_app, t_up)
    );
}
