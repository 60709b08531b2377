#!/usr/bin/env python3
"""netheal against the folk bash loop, in a namespace lab this script builds and removes.

    sudo python3 bench/bench.py [--netheal PATH] [--out bench/results.md] [--quick] [--only A,B]

Prints one Markdown table (also written, with the machine, date and commit, to --out) and
keeps its raw material (strace traces, callgrind files, logs) in bench/out/.

Every packet stays inside namespaces made here: each lab is two namespaces, HOST and PEER,
joined by one veth whose two ends are created inside them (never in the root namespace),
198.51.100.2/24 on HOST and 198.51.100.1/24 on PEER (TEST-NET-2). Names start with
nhb<pid>. Everything is removed on exit, on an error and on SIGINT/SIGTERM/SIGHUP.

One function per measurement (measure_* or start_*/finish_* for the background ones); each
returns plain numbers and build_table() turns them into rows. Standard library only.
"""

import argparse
import contextlib
import ctypes
import datetime
import os
import platform
import random
import re
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

HOST_ADDR = "198.51.100.2"
PEER_ADDR = "198.51.100.1"
PREFIX = f"nhb{os.getpid()}"
BENCH_DIR = Path(__file__).resolve().parent
ROOT = BENCH_DIR.parent
STATUS_RX = (r"status: state (\S+) for \S+, rounds (\d+), replies (\d+), lost (\d+), "
             r"foreign (\d+), late (\d+), send errors (\d+)")
FORK_CALLS = ("clone", "clone3", "fork", "vfork")
EXEC_CALLS = ("execve", "execveat")

# The folk loop of the issue, `while true; do ping -c1 -W1 T || (ifdown I; ifup I); sleep S;
# done`, in three dresses. Each adds only shell builtins, which make no system call.
# Cost: a counted, healthy run (the heal never runs); the sleep is short because the cost of a
# cycle does not depend on it (sleep is one fork + exec whatever it waits).
LOOP_COUNTED = ('n=0; while [ $n -lt {n} ]; do ping -c1 -W1 {peer} || (ifdown {iface}; '
                'ifup {iface}); sleep {sleep}; n=$((n+1)); done')
# Latency: the loop stamps its own lines with bash's $EPOCHREALTIME (a builtin: no fork).
LOOP_STAMPED = ('while true; do if ping -c1 -W1 {peer} >/dev/null 2>&1; then '
                'echo "good $EPOCHREALTIME"; else echo "heal $EPOCHREALTIME"; '
                '(ifdown {iface}; ifup {iface}) >/dev/null 2>&1; fi; sleep 1; done')
# False heals: a no-op heal that only says it would have healed.
LOOP_NOOP = ('n=0; while [ $n -lt {n} ]; do ping -c1 -W{wait} {peer} >/dev/null || '
             'echo "heal $EPOCHREALTIME"; sleep {sleep}; n=$((n+1)); done')

# Random loss at the peer: it drops 30% of the echo requests it receives (one direction).
NFT_LOSS = """table inet nhbloss {
    chain input {
        type filter hook input priority 0; policy accept;
        meta l4proto icmp icmp type echo-request numgen random mod 100 < 30 drop
    }
}
"""

# The three faults of the latency test; each is repaired by `ifdown IFACE; ifup IFACE`.
FAULTS = {
    "address flushed": "ip -n {host} addr flush dev {iface}",
    "link down": "ip -n {host} link set dev {iface} down",
    # A blackhole qdisc survives ifdown/ifup (checked in every run by check_silent_drop), so
    # neither watcher could repair it; a permanent bogus neighbour entry drops as silently
    # (frames go to a MAC nobody has) and link down flushes it.
    "silent drop (bogus neighbour)": ("ip -n {host} neigh replace {peer} lladdr "
                                      "02:00:00:00:00:01 dev {iface} nud permanent"),
}


class BenchError(Exception):
    pass


def log(msg):
    el = time.monotonic() - T0
    print(f"[bench {int(el) // 60:2d}:{int(el) % 60:02d}] {msg}", file=sys.stderr, flush=True)


def run(cmd, check=True, timeout=60, **kw):
    """Runs a command (argv list, or a string for sh -c); returns its stdout."""
    if isinstance(cmd, str):
        cmd = ["sh", "-c", cmd]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL, **kw)
    if check and p.returncode != 0:
        raise BenchError(f"{shlex.join(cmd)}: exit {p.returncode}: {p.stderr.strip()}")
    return p.stdout


def ns_exec(ns, *argv):
    return ["ip", "netns", "exec", ns, *argv]


# ---------------------------------------------------------------------------------------------
# Entering a namespace without a wrapper process, so that a child's rusage is its own.

_libc = ctypes.CDLL(None, use_errno=True)
CLONE_NEWNET = 0x40000000


@contextlib.contextmanager
def in_netns(ns):
    """Moves the calling thread (only it: setns(2) is per thread) into network namespace ns,
    and back. A child spawned meanwhile (vfork + exec) starts there, with no `ip netns exec`
    in between to add its own CPU time to the child's rusage."""
    orig = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(f"/run/netns/{ns}", os.O_RDONLY)
    try:
        if _libc.setns(target, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"setns {ns}")
        try:
            yield
        finally:
            if _libc.setns(orig, CLONE_NEWNET) != 0:
                raise OSError(ctypes.get_errno(), "setns back")
    finally:
        os.close(orig)
        os.close(target)


def spawn_rusage(ns, argv, timeout=120, env=None):
    """Runs argv in namespace ns; returns (cpu seconds, max RSS KiB, wall seconds, exit code)
    from wait4(2): the child and every descendant it waited for."""
    with in_netns(ns):
        t = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, env=env)
    BENCH.procs_raw.append(p)
    timer = threading.Timer(timeout, lambda: _kill_quietly(p.pid, signal.SIGKILL))
    timer.start()
    try:
        _, status, ru = os.wait4(p.pid, 0)
    finally:
        timer.cancel()
    wall = time.monotonic() - t
    p.returncode = os.waitstatus_to_exitcode(status)
    return ru.ru_utime + ru.ru_stime, ru.ru_maxrss, wall, p.returncode, ru


def peak_rss(ns, argv):
    """Peak RSS (KiB) of argv through GNU time's %M. Not wait4 from this script: a child's
    ru_maxrss also covers the memory it had before exec, and a child of Python has Python's
    (~20 MiB); GNU time's own child is ~1 MiB before exec (`true` reads 1028 KiB)."""
    f = BENCH.out / "time-M.txt"
    run(ns_exec(ns, "/usr/bin/time", "-o", str(f), "-f", "%M", *argv))
    return int(f.read_text().split()[-1])


def _kill_quietly(pid, sig):
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.kill(pid, sig)


# ---------------------------------------------------------------------------------------------
# Processes whose output is read line by line, each line stamped with time.time() on arrival.

class Proc:
    def __init__(self, argv, name, on_line=None):
        self.name = name
        self.argv = argv
        self.on_line = on_line
        self.lines = []
        self.cond = threading.Condition()
        self.eof = False
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, start_new_session=True, text=True,
                                  errors="replace")
        self.pid = self.p.pid
        BENCH.procs.append(self)
        self.logfile = open(BENCH.out / f"{name}.log", "w")
        threading.Thread(target=self._read, daemon=True, name=name).start()

    def _read(self):
        for line in self.p.stdout:
            t = time.time()
            line = line.rstrip("\n")
            if self.on_line is not None and self.on_line(t, line):
                continue  # consumed: not kept (the soak's 100 000 round lines)
            with self.cond:
                self.lines.append((t, line))
                self.cond.notify_all()
            with contextlib.suppress(ValueError):
                self.logfile.write(f"{t:.6f} {line}\n")
        with self.cond:
            self.eof = True
            self.cond.notify_all()
        with contextlib.suppress(ValueError):
            self.logfile.close()

    def mark(self):
        with self.cond:
            return len(self.lines)

    def wait_for(self, regex, start=0, timeout=30.0):
        """First line at index >= start matching regex: (index, time, match)."""
        rx = re.compile(regex)
        deadline = time.monotonic() + timeout
        i = start
        with self.cond:
            while True:
                while i < len(self.lines):
                    m = rx.search(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                    i += 1
                left = deadline - time.monotonic()
                if self.eof or left <= 0:
                    tail = "\n    ".join(l for _, l in self.lines[-8:])
                    why = "exited" if self.eof else f"nothing within {timeout}s"
                    raise BenchError(f"{self.name}: no line matching {regex!r} ({why}); "
                                     f"last lines:\n    {tail}")
                self.cond.wait(left)

    def lines_between(self, a, b):
        with self.cond:
            return [l for _, l in self.lines[a:b]]

    def signal(self, sig):
        _kill_quietly(self.pid, sig)

    def stop(self, timeout=5.0):
        """SIGTERM to the process, SIGKILL to its whole group if it lingers."""
        if self.p.poll() is None:
            self.signal(signal.SIGTERM)
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(self.pid, signal.SIGKILL)
                self.p.wait(5)
        return self.p.returncode

    def status(self, timeout=10.0):
        """SIGUSR1, then netheal's status line parsed."""
        mark = self.mark()
        self.signal(signal.SIGUSR1)
        _, t, m = self.wait_for(STATUS_RX, mark, timeout)
        return {"t": t, "state": m[1], "rounds": int(m[2]), "replies": int(m[3]),
                "lost": int(m[4]), "foreign": int(m[5]), "late": int(m[6]),
                "send_errors": int(m[7])}


def proc_status(pid):
    """/proc/PID/status as a dict of str -> str."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            out[k] = v.strip()
    return out


def kib(field):
    return int(field.split()[0])


def cpu_ticks(pid):
    """(user, system) clock ticks from /proc/PID/stat: coarse, but they split the time."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]), int(fields[12])


def oncpu_ns(pid):
    """Time on CPU, in ns, from the scheduler's own accounting (exact, not tick-sampled)."""
    with open(f"/proc/{pid}/schedstat") as f:
        return int(f.read().split()[0])


# ---------------------------------------------------------------------------------------------
# The lab.

class Lab:
    """HOST and PEER namespaces joined by a veth: IFACE (HOST_ADDR) <-> PIF (PEER_ADDR).
    With address=False IFACE has no address: ifup gives it one from the lab's own
    interfaces file (self.netdir), bind-mounted on /etc/network by ifupdown_shell()."""

    def __init__(self, tag, address=True):
        self.tag = tag
        self.host = f"{PREFIX}{tag}h"
        self.peer = f"{PREFIX}{tag}p"
        self.iface = f"{PREFIX}{tag}a"
        self.pif = f"{PREFIX}{tag}b"
        assert len(self.iface) <= 15, self.iface
        BENCH.labs.append(self)
        run(["ip", "netns", "add", self.host])
        run(["ip", "netns", "add", self.peer])
        for ns in (self.host, self.peer):
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # Both ends are created inside our namespaces: the root namespace never sees them.
        run(["ip", "-n", self.host, "link", "add", self.iface, "type", "veth", "peer", "name",
             self.pif, "netns", self.peer])
        run(["ip", "-n", self.peer, "addr", "add", f"{PEER_ADDR}/24", "dev", self.pif])
        run(["ip", "-n", self.peer, "link", "set", self.pif, "up"])
        if address:
            run(["ip", "-n", self.host, "addr", "add", f"{HOST_ADDR}/24", "dev", self.iface])
            run(["ip", "-n", self.host, "link", "set", self.iface, "up"])
        self.netdir = BENCH.out / f"etc-network-{tag}"
        for d in ("if-pre-up.d", "if-up.d", "if-down.d", "if-post-down.d"):
            (self.netdir / d).mkdir(parents=True, exist_ok=True)
        # Separate address/netmask lines: both ifupdown and busybox's ifup read them.
        (self.netdir / "interfaces").write_text(
            f"# netheal bench lab {tag}\n"
            f"iface {self.iface} inet static\n"
            f"    address {HOST_ADDR}\n"
            f"    netmask 255.255.255.0\n")

    def fmt(self, s, **kw):
        return s.format(host=self.host, peer=PEER_ADDR, iface=self.iface, **kw)

    def ifupdown_shell(self, *argv):
        """argv run in HOST with the lab's /etc/network and a private /run/network (ip netns
        exec gives a private mount namespace), after `ifup IFACE` configured the address."""
        script = (f"mount --bind {shlex.quote(str(self.netdir))} /etc/network && "
                  # the mount point: a machine whose ifupdown never ran has none
                  f"mkdir -p /run/network && mount -t tmpfs tmpfs /run/network && "
                  f"ifup {self.iface} && "
                  'exec "$0" "$@"')
        return ns_exec(self.host, "sh", "-c", script, *argv)

    def add_loss(self):
        f = BENCH.out / f"nft-loss-{self.tag}.nft"
        f.write_text(NFT_LOSS)
        run(ns_exec(self.peer, "nft", "-f", str(f)))

    def destroy(self):
        for ns in (self.host, self.peer):
            pids = run(["ip", "netns", "pids", ns], check=False).split()
            for pid in pids:  # only processes inside our own namespaces
                _kill_quietly(int(pid), signal.SIGKILL)
            run(["ip", "netns", "del", ns], check=False)


class Bench:
    def __init__(self, args):
        self.args = args
        self.quick = args.quick
        self.nh = str(Path(args.netheal).resolve())
        self.labs = []
        self.procs = []
        self.procs_raw = []
        self.out = BENCH_DIR / "out"
        self.rundir = Path(f"/run/{PREFIX}")
        self.conf = self.out / "empty.conf"
        self.notes = []
        self.defaults = {}  # netheal's defaults as its start line shows them

    def dflt(self, key):
        return self.defaults.get(key, "?")

    def note(self, s):
        self.notes.append(s)

    def reps(self, full, quick=2):
        return quick if self.quick else full

    def netheal(self, lab, *opts, wait_up=True, name=None, wrap=None, on_line=None,
                status_file=True):
        """netheal in lab's HOST (under ifupdown_shell when it heals with ifupdown). Its
        defaults, except: an empty config file of our own (never /etc/netheal.conf) and the
        status file (default /run/netheal/status, rewritten every few rounds) in our own
        directory on /run's tmpfs, so that parallel runs neither share nor clobber one."""
        name = name or f"netheal-{lab.tag}"
        status = str(self.rundir / f"status-{name}") if status_file else "none"
        argv = [self.nh, "-c", str(self.conf), "--status-file", status, "--log", "stderr",
                "-t", PEER_ADDR, *opts, lab.iface]
        if wrap:
            argv = wrap + argv
        full = lab.ifupdown_shell(*argv) if "ifupdown" in opts else ns_exec(lab.host, *argv)
        p = Proc(full, name, on_line=on_line)
        _, _, m = p.wait_for(r"watching targets", timeout=60)
        start = m.string
        for key in ("count", "fail-after", "backoff"):
            mk = re.search(rf"\b{key} ([^,]+),", start)
            if mk and "-c" not in opts and f"--{key}" not in opts:
                self.defaults.setdefault(key, mk[1])
        if wait_up:
            p.wait_for(r"state \S+ -> up", timeout=60)
        return p

    def cleanup(self):
        for p in self.procs:
            if p.p.poll() is None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(p.pid, signal.SIGKILL)
        for p in self.procs_raw:
            if p.poll() is None:
                _kill_quietly(p.pid, signal.SIGKILL)
        for lab in self.labs:
            lab.destroy()
        self.labs = []
        shutil.rmtree(self.rundir, ignore_errors=True)


BENCH = None
T0 = time.monotonic()


# ---------------------------------------------------------------------------------------------
# Parsers.

def parse_strace_summary(path):
    """strace -c table -> {syscall: calls}, with 'total'."""
    calls = {}
    for line in Path(path).read_text().splitlines():
        tok = line.split()
        if len(tok) >= 5 and re.fullmatch(r"[\d.]+", tok[0]) and tok[3].isdigit():
            calls[tok[-1]] = int(tok[3])
    if "total" not in calls:
        raise BenchError(f"{path}: no strace -c total")
    return calls


STRACE_LINE = re.compile(r"^(?:\[pid\s+\d+\]\s+|\d+\s+)?(?:\d+\.\d+\s+)?(\w+)\(")


def strace_window(path):
    """Syscalls of a full strace between netheal's first two status writes (exclusive)."""
    counts = {}
    inside = False
    marks = 0
    for line in Path(path).read_text().splitlines():
        if "status: state" in line and re.search(r"\bwrite\(2,", line):
            marks += 1
            if marks == 1:
                inside = True
                continue
            break
        if not inside:
            continue
        m = STRACE_LINE.match(line)
        if m and "resumed>" not in line:
            counts[m[1]] = counts.get(m[1], 0) + 1
    if marks < 2:
        raise BenchError(f"{path}: status lines not found in the trace")
    return counts


def callgrind_total(path):
    for line in Path(path).read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            return int(line.split()[1])
    raise BenchError(f"{path}: no callgrind summary")


def fork_exec(counts):
    return (sum(counts.get(c, 0) for c in FORK_CALLS),
            sum(counts.get(c, 0) for c in EXEC_CALLS))


# ---------------------------------------------------------------------------------------------
# 1. Cost of a healthy round (netheal) or cycle (loop), and of one `ping -c1`.

def measure_cost_netheal(b, lab, status_file=True, reps=5):
    """Syscalls, forks/execs and CPU per round of ONE long-running netheal at -i 10ms.
    Syscalls: strace -f attached to the running process; counted between two SIGUSR1 status
    lines (so exactly `rounds` rounds apart). CPU: on-CPU time from /proc/PID/schedstat over
    two status lines, no tracer attached."""
    tag = "" if status_file else "-nostatus"
    nh = b.netheal(lab, "-i", "10ms", "-W", "500ms", name=f"cost-netheal{tag}",
                   status_file=status_file)
    res = {"syscalls": [], "forks": [], "execs": [], "cpu_us": [], "rounds": [],
           "breakdown": None}
    for rep in range(b.reps(reps)):
        trace = b.out / f"strace-netheal{tag}-{rep}.txt"
        st = Proc(["strace", "-f", "-s", "256", "-o", str(trace), "-p", str(nh.pid)],
                  f"strace-netheal{tag}-{rep}")
        st.wait_for(r"attached", timeout=10)
        s1 = nh.status()
        time.sleep(2.5)
        s2 = nh.status()
        st.signal(signal.SIGINT)
        st.p.wait(10)
        counts = strace_window(trace)
        rounds = s2["rounds"] - s1["rounds"]
        if rounds < 100:
            raise BenchError(f"only {rounds} rounds in the strace window")
        f, e = fork_exec(counts)
        res["syscalls"].append(sum(counts.values()) / rounds)
        res["forks"].append(f / rounds)
        res["execs"].append(e / rounds)
        res["rounds"].append(rounds)
        if res["breakdown"] is None:
            res["breakdown"] = {k: v / rounds for k, v in sorted(counts.items())}
    ticks0 = cpu_ticks(nh.pid)
    for rep in range(b.reps(reps)):
        s1 = nh.status()
        c1 = oncpu_ns(nh.pid)
        time.sleep(2.0)
        s2 = nh.status()
        c2 = oncpu_ns(nh.pid)
        res["cpu_us"].append((c2 - c1) / 1e3 / (s2["rounds"] - s1["rounds"]))
    ticks1 = cpu_ticks(nh.pid)
    user, system = ticks1[0] - ticks0[0], ticks1[1] - ticks0[1]
    res["ticks"] = (user, system)
    nh.stop()
    return res


def measure_cost_loop(b, lab):
    """The bash loop per healthy cycle: the difference between a run of N1 and one of N0
    cycles, divided by N1-N0, so bash's own start-up cancels. strace -f -c for syscalls,
    forks and execs; wait4(2) rusage (bash and every child it waited for) for CPU."""
    n0, n1 = (10, 110) if not b.quick else (5, 25)
    res = {"syscalls": [], "forks": [], "execs": [], "cpu_us": [], "n0": n0, "n1": n1}

    def loop(n):
        return lab.fmt(LOOP_COUNTED, n=n, sleep="0.01")

    for rep in range(b.reps(3)):
        tot = {}
        for n in (n0, n1):
            f = b.out / f"strace-loop-{n}-{rep}.txt"
            run(ns_exec(lab.host, "strace", "-f", "-c", "-o", str(f), "bash", "-c", loop(n)),
                timeout=120)
            tot[n] = parse_strace_summary(f)
        d = {k: (tot[n1].get(k, 0) - tot[n0].get(k, 0)) / (n1 - n0)
             for k in set(tot[n0]) | set(tot[n1])}
        res["syscalls"].append(d["total"])
        fk, ex = fork_exec(d)
        res["forks"].append(fk)
        res["execs"].append(ex)
    for rep in range(b.reps(5)):
        cpu = {}
        for n in (n0, n1):
            cpu[n], _, _, rc, _ = spawn_rusage(lab.host, ["bash", "-c", loop(n)])
            if rc != 0:
                raise BenchError(f"bash loop exited {rc}")
        res["cpu_us"].append((cpu[n1] - cpu[n0]) / (n1 - n0) * 1e6)
    return res


def measure_cost_ping(b, lab, kind):
    """One `ping -c1 -W1 PEER` (iputils or busybox): strace -f -c, and wait4 rusage (CPU,
    peak RSS) of each of several runs."""
    argv = (["ping"] if kind == "iputils" else ["busybox", "ping"]) + ["-c1", "-W1", PEER_ADDR]
    res = {"syscalls": [], "forks": [], "execs": [], "cpu_us": [], "maxrss_kib": []}
    for rep in range(b.reps(3)):
        f = b.out / f"strace-ping-{kind}-{rep}.txt"
        run(ns_exec(lab.host, "strace", "-f", "-c", "-o", str(f), *argv))
        c = parse_strace_summary(f)
        res["syscalls"].append(c["total"])
        fk, ex = fork_exec(c)
        res["forks"].append(fk)
        res["execs"].append(ex)
    for _ in range(b.reps(15, 3)):
        cpu, _, _, rc, _ = spawn_rusage(lab.host, argv)
        if rc != 0:
            raise BenchError(f"{shlex.join(argv)} exited {rc}")
        res["cpu_us"].append(cpu * 1e6)
    res["maxrss_kib"] = [peak_rss(lab.host, argv) for _ in range(b.reps(5))]
    return res


# ---------------------------------------------------------------------------------------------
# 1b. Instructions (valgrind --tool=callgrind): deterministic where CPU time is not.

def measure_instr_netheal(b, lab, status_file=True, reps=3):
    """One netheal under callgrind at -i 20ms. Counters are zeroed and dumped around a short
    and a long window (callgrind_control, through vgdb); each window holds one status line
    and the per-round figure is (Ir_long - Ir_short) / (rounds_long - rounds_short), so the
    status line and the window edges cancel."""
    prefix = str(b.out / "vgdb")
    tag = "" if status_file else "-nostatus"
    cg = b.out / f"callgrind-netheal{tag}.out"
    for old in b.out.glob(f"callgrind-netheal{tag}.out*"):
        old.unlink()
    nh = b.netheal(lab, "-i", "20ms", "-W", "500ms", name=f"callgrind-netheal{tag}",
                   status_file=status_file,
                   wrap=["valgrind", "--tool=callgrind", f"--vgdb-prefix={prefix}",
                         f"--callgrind-out-file={cg}"])
    ctl = ["callgrind_control", f"--vgdb-prefix={prefix}"]
    dumps = 0

    def window(seconds):
        nonlocal dumps
        run(ctl + ["--zero", str(nh.pid)])
        r1 = nh.status()["rounds"]
        time.sleep(seconds)
        run(ctl + ["--dump", str(nh.pid)])
        dumps += 1
        r2 = nh.status()["rounds"]
        return callgrind_total(f"{cg}.{dumps}"), r2 - r1

    per_round = []
    time.sleep(1.0)
    for _ in range(b.reps(reps)):
        ir_s, n_s = window(0.4)
        ir_l, n_l = window(3.0 if not b.quick else 1.5)
        if n_l - n_s < (100 if not b.quick else 20):
            raise BenchError(f"callgrind windows too close: {n_s} and {n_l} rounds")
        per_round.append((ir_l - ir_s) / (n_l - n_s))
    nh.stop(timeout=20)
    return {"ir": per_round}


def measure_instr_loop(b, lab):
    """The loop under callgrind --trace-children=yes (bash, every ping, every sleep); the
    difference of N1 and N0 cycles. ping is a copy of /usr/bin/ping: valgrind refuses the
    original for its file capabilities."""
    n0, n1 = 1, 6
    env = dict(os.environ, PATH=f"{b.bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}")
    per = []
    for rep in range(b.reps(3)):
        tot = {}
        for n in (n0, n1):
            d = b.out / f"callgrind-loop-{n}-{rep}"
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir()
            loop = lab.fmt(LOOP_COUNTED, n=n, sleep="0.01")
            run(ns_exec(lab.host, "valgrind", "--tool=callgrind", "--trace-children=yes",
                        "--vgdb=no", f"--callgrind-out-file={d}/cg.%p", "bash", "-c", loop),
                env=env, timeout=300)
            tot[n] = sum(callgrind_total(f) for f in d.iterdir())
        per.append((tot[n1] - tot[n0]) / (n1 - n0))
    return {"ir": per}


def measure_instr_ping(b, lab, kind):
    argv = ([str(b.bindir / "ping")] if kind == "iputils" else ["busybox", "ping"]) + \
        ["-c1", "-W1", PEER_ADDR]
    per = []
    for rep in range(b.reps(3)):
        f = b.out / f"callgrind-ping-{kind}-{rep}.out"
        run(ns_exec(lab.host, "valgrind", "--tool=callgrind", "--vgdb=no",
                    f"--callgrind-out-file={f}", *argv), timeout=120)
        per.append(callgrind_total(f))
    return {"ir": per}


# ---------------------------------------------------------------------------------------------
# 2. Memory.

def measure_memory(b, labs):
    """netheal's VmRSS once it has run 1000 rounds (-i 5ms), one process per lab at once;
    the bash loop's own VmRSS in the middle of a healthy run (ping's peak RSS comes from the
    ping measurement)."""
    procs = [b.netheal(lab, "-i", "5ms", "-W", "100ms", name=f"memory-netheal-{lab.tag}")
             for lab in labs]
    rss, hwm, anon = [], [], []
    deadline = time.monotonic() + 60
    for p in procs:
        while p.status()["rounds"] < 1000:
            if time.monotonic() > deadline:
                raise BenchError("netheal did not reach 1000 rounds in 60 s")
            time.sleep(0.5)
        s = proc_status(p.pid)
        rss.append(kib(s["VmRSS"]))
        hwm.append(kib(s["VmHWM"]))
        anon.append(kib(s["RssAnon"]))
        p.stop()
    ping_rss = [peak_rss(labs[0].host, ["ping", "-c1", "-W1", PEER_ADDR]) for _ in range(5)]
    bash_rss = []
    for lab in labs:
        loop = lab.fmt(LOOP_COUNTED, n=400, sleep="0.01")
        p = Proc(ns_exec(lab.host, "bash", "-c", loop), f"memory-loop-{lab.tag}")
        time.sleep(1.5)
        bash_rss.append(kib(proc_status(p.pid)["VmRSS"]))
        p.stop()
    return {"rss": rss, "hwm": hwm, "anon": anon, "bash_rss": bash_rss, "ping_rss": ping_rss}


# ---------------------------------------------------------------------------------------------
# 3. Binary sizes.

def measure_sizes(b):
    musl = sorted(ROOT.glob("dist/netheal-*-x86_64-unknown-linux-musl"),
                  key=lambda p: p.stat().st_mtime)
    musl += [p for p in [ROOT / "target/x86_64-unknown-linux-musl/release/netheal"]
             if p.exists()]
    if musl:
        nh, which = musl[-1], "static musl x86_64"
    else:
        nh, which = Path(b.nh), "glibc dynamic release build (no static musl x86_64 in dist/)"
    desc = run(["file", "-bL", str(nh)])
    which += ", " + ("stripped" if "not stripped" not in desc else "NOT stripped")
    version = run([str(nh), "--version"], check=False).strip().replace("\n", "; ")
    return {
        "netheal": nh.stat().st_size, "netheal_path": str(nh), "netheal_kind": which,
        "netheal_version": version,
        "netheal_glibc": Path(b.nh).stat().st_size,
        "ping": Path(shutil.which("ping")).stat().st_size,
        "busybox": Path(shutil.which("busybox")).resolve().stat().st_size,
        "bash": Path(shutil.which("bash")).resolve().stat().st_size,
        "sleep": Path(shutil.which("sleep")).resolve().stat().st_size,
        "busybox_static": "statically linked" in run(["file", "-bL", shutil.which("busybox")]),
    }


# ---------------------------------------------------------------------------------------------
# 4. Detection and recovery latency.

def check_silent_drop(b, lab):
    """Which silent drop can ifdown/ifup repair? Applies both candidates, runs ifdown; ifup
    the way both watchers do, and reports whether each survived."""
    script = (f"tc qdisc add dev {lab.iface} root blackhole && "
              f"ip neigh replace {PEER_ADDR} lladdr 02:00:00:00:00:01 dev {lab.iface} "
              f"nud permanent && ifdown {lab.iface} && ifup {lab.iface} && "
              f"echo qdisc: $(tc qdisc show dev {lab.iface}) && "
              f"echo neigh: $(ip neigh show {PEER_ADDR} dev {lab.iface})")
    out = run(lab.ifupdown_shell("sh", "-c", script))
    qd = re.search(r"^qdisc:\s*(.*)$", out, re.M)[1]
    ng = re.search(r"^neigh:\s*(.*)$", out, re.M)[1]
    return {"blackhole_survives": "blackhole" in qd, "neigh_survives": "02:00:00:00:00:01" in ng}


def inject(lab, fault):
    """Injects `fault`; the time just before it (so a watcher that acts while the command is
    still returning, as netheal's link-up on the kernel's event does, is not early)."""
    t = time.time()
    run(lab.fmt(FAULTS[fault]))
    return t


def measure_latency_netheal(b, lab, n):
    """netheal -i 1s -W 500ms, heal ladder `ifupdown`. Per injection: the time to the log line
    that starts the heal (`heal attempt K: running`, or for link down `setting it up at once`:
    on-admin-down = link-up, the default since issue 10) and to `state ... -> up`, stamped on
    arrival."""
    nh = b.netheal(lab, "-i", "1s", "-W", "500ms", "-a", "ifupdown", name="latency-netheal")
    res = {f: {"detect": [], "recover": [], "heals": [], "failed": 0} for f in FAULTS}
    for fault in FAULTS:
        for _ in range(n):
            time.sleep(random.uniform(1.0, 2.0))  # a random phase against the interval
            mark = nh.mark()
            t = inject(lab, fault)
            try:
                ih, th, _ = nh.wait_for(HEAL_STARTS, mark, 60)
                iu, tu, _ = nh.wait_for(r"state \S+ -> up", ih, 60)
            except BenchError as e:
                res[fault]["failed"] += 1
                log(f"latency netheal {fault}: {e}")
                nh.wait_for(r"state \S+ -> up", nh.mark(), 120)
                continue
            res[fault]["detect"].append(th - t)
            res[fault]["recover"].append(tu - t)
            res[fault]["heals"].append(sum(1 for l in nh.lines_between(mark, iu)
                                           if re.search(HEAL_STARTS, l)))
    nh.stop()
    return res


def measure_latency_loop(b, lab, n):
    """The loop with `ping -c1 -W1` and `sleep 1`, healing with the same ifupdown and the same
    interfaces file; it stamps `heal T` before ifdown and `good T` after each good ping."""
    p = Proc(lab.ifupdown_shell("bash", "-c", lab.fmt(LOOP_STAMPED)), "latency-loop")
    p.wait_for(r"^good ", 0, 30)
    res = {f: {"detect": [], "recover": [], "heals": [], "failed": 0} for f in FAULTS}
    for fault in FAULTS:
        for _ in range(n):
            time.sleep(random.uniform(1.0, 2.0))
            mark = p.mark()
            t = inject(lab, fault)
            try:
                ih, _, mh = p.wait_for(r"^heal (\S+)", mark, 60)
                iu, _, mu = p.wait_for(r"^good (\S+)", ih, 60)
            except BenchError as e:
                res[fault]["failed"] += 1
                log(f"latency loop {fault}: {e}")
                p.wait_for(r"^good ", p.mark(), 120)
                continue
            res[fault]["detect"].append(float(mh[1]) - t)
            res[fault]["recover"].append(float(mu[1]) - t)
            res[fault]["heals"].append(sum(1 for l in p.lines_between(mark, iu)
                                           if l.startswith("heal ")))
    p.stop()
    return res


# ---------------------------------------------------------------------------------------------
# 5. False heals under 30% random loss.

def measure_false_heals(b, lab_nh, lab_loop, rounds):
    """Both watchers at once, each in its own lab whose peer drops 30% of echo requests:
    netheal --dry-run -i 100ms -W 300ms (default count and fail-after) and the loop with a
    no-op heal, ping -W0.3 and sleep 0.1. Counts would-be heals."""
    for lab in (lab_nh, lab_loop):
        lab.add_loss()
    nh = b.netheal(lab_nh, "--dry-run", "-v", "-i", "100ms", "-W", "300ms", wait_up=False,
                   name="loss-netheal")
    loop = Proc(ns_exec(lab_loop.host, "bash", "-c",
                        lab_loop.fmt(LOOP_NOOP, n=rounds, wait="0.3", sleep="0.1")),
                "loss-loop")
    nh.wait_for(rf"round {rounds} ", 0, rounds * 0.4 + 60)
    st = nh.status()
    nh.stop()
    loop.p.wait(rounds * 0.6 + 60)
    nh_lines = nh.lines_between(0, nh.mark())
    loop_lines = loop.lines_between(0, loop.mark())
    failed = sum(1 for l in nh_lines if re.search(r"round \d+ failed", l))
    return {
        "rounds_nh": st["rounds"], "rounds_loop": rounds,
        "nh_heals": sum(1 for l in nh_lines if "dry run, not running" in l),
        "nh_failed_rounds": failed,
        "nh_loss": st["lost"] / max(1, st["lost"] + st["replies"]),
        "loop_heals": sum(1 for l in loop_lines if l.startswith("heal ")),
    }


# ---------------------------------------------------------------------------------------------
# 6. Idle wake-ups (runs in the background while the latency test runs).

def start_idle(b, labs, nostatus_lab, loop_lab, window):
    """netheal -i 10s in each of labs, and once more with --status-file none (its figure goes
    to the notes: the difference is the status file's share)."""
    procs = [b.netheal(lab, "-i", "10s", name=f"idle-netheal-{lab.tag}") for lab in labs]
    procs.append(b.netheal(nostatus_lab, "-i", "10s", name="idle-netheal-nostatus",
                           status_file=False))
    # Rounds are counted by status lines just outside the window (SIGUSR1 wakes it too).
    rounds0 = [p.status()["rounds"] for p in procs]
    time.sleep(0.5)
    start = [(time.monotonic(), proc_status(p.pid)) for p in procs]
    # The loop's figure: wait4 rusage of bash and all its children over `cycles` 10 s cycles.
    cycles = max(1, round(window / 10))
    loop_res = {}

    def loop_thread():
        cpu, _, wall, _, ru = spawn_rusage(
            loop_lab.host,
            ["bash", "-c", loop_lab.fmt(LOOP_COUNTED, n=cycles, sleep="10")],
            timeout=window + 60)
        loop_res.update(nvcsw=ru.ru_nvcsw, nivcsw=ru.ru_nivcsw, wall=wall, cycles=cycles)

    ends, rounds1 = [], []

    def sampler():  # exactly `window` seconds after the first reading, whatever runs then
        for p, (t0, _) in zip(procs, start):
            time.sleep(max(0.0, t0 + window - time.monotonic()))
            ends.append((time.monotonic(), proc_status(p.pid)))
            rounds1.append(p.status()["rounds"])

    threads = [threading.Thread(target=f, daemon=True) for f in (loop_thread, sampler)]
    for t in threads:
        t.start()
    return {"procs": procs, "start": start, "ends": ends, "window": window, "loop": loop_res,
            "threads": threads, "rounds0": rounds0, "rounds1": rounds1}


def finish_idle(b, h):
    for t in h["threads"]:
        t.join(h["window"] + 90)
    per_min, nonvol, elapsed, per_round = [], [], [], []
    for p, (t0, s0), (t1, s1), r0, r1 in zip(h["procs"], h["start"], h["ends"], h["rounds0"],
                                              h["rounds1"]):
        dt = t1 - t0
        elapsed.append(dt)
        vol = int(s1["voluntary_ctxt_switches"]) - int(s0["voluntary_ctxt_switches"])
        per_min.append(vol * 60 / dt)
        per_round.append(vol / max(1, r1 - r0))
        nonvol.append((int(s1["nonvoluntary_ctxt_switches"]) -
                       int(s0["nonvoluntary_ctxt_switches"])) * 60 / dt)
        p.stop()
    lp = h["loop"]
    loop_per_min = [lp["nvcsw"] * 60 / lp["wall"]] if lp else []
    nostatus = {"per_min": per_min.pop(), "per_round": per_round.pop(), "nonvol": nonvol.pop()}
    return {"vol_per_min": per_min, "nonvol_per_min": nonvol, "window_s": min(elapsed),
            "loop_vol_per_min": loop_per_min, "per_round": per_round,
            "loop_cycles": lp.get("cycles", 0), "nostatus": nostatus,
            "rounds": [b1 - a for a, b1 in zip(h["rounds0"], h["rounds1"])][:-1]}


# ---------------------------------------------------------------------------------------------
# 7. Soak (runs in the background from the start).

def start_soak(b, lab, rounds, interval):
    checkpoints = set(range(10000, rounds + 1, 10000)) | {1000}
    if b.quick:
        checkpoints = set(range(1000, rounds + 1, 1000))
    res = {"samples": [], "done": threading.Event(), "rounds": rounds, "interval": interval,
           "failed_rounds": 0}
    rx = re.compile(r": round (\d+) (good|failed)")
    holder = {}

    def on_line(t, line):
        m = rx.search(line)
        if not m:
            return False
        n = int(m[1])
        if m[2] == "failed":
            res["failed_rounds"] += 1
        if n in checkpoints and "pid" in holder:
            s = proc_status(holder["pid"])
            fds = len(os.listdir(f"/proc/{holder['pid']}/fd"))
            res["samples"].append((n, kib(s["VmRSS"]), kib(s["VmHWM"]), fds, t))
            if n >= rounds:
                res["done"].set()
        return True

    p = b.netheal(lab, "-v", "-i", interval, "-W", "50ms", name="soak-netheal",
                  on_line=on_line, wait_up=True)
    holder["pid"] = p.pid
    res["proc"] = p
    res["t0"] = time.monotonic()

    def stopper():  # stop it at its round count, not when the foreground is done
        if res["done"].wait(1200):
            res["elapsed"] = time.monotonic() - res["t0"]
            st = None
            with contextlib.suppress(BenchError):
                st = p.status()
            p.stop()
            res["status"] = st

    threading.Thread(target=stopper, daemon=True, name="soak-stopper").start()
    return res


def finish_soak(b, h, budget):
    if not h["done"].wait(budget):
        log("soak: did not reach its round count in time")
        h["elapsed"] = time.monotonic() - h["t0"]
        with contextlib.suppress(BenchError):
            h["status"] = h["proc"].status()
        h["proc"].stop()
    deadline = time.monotonic() + 30
    while "status" not in h and time.monotonic() < deadline:
        time.sleep(0.1)
    return h


# ---------------------------------------------------------------------------------------------
# The table.

def med(xs):
    return statistics.median(xs)


def fmt_range(xs, nd=1, scale=1.0):
    xs = [x * scale for x in xs]
    if not xs:
        return "n/a"
    m, lo, hi = med(xs), min(xs), max(xs)
    f = f"{{:,.{nd}f}}"
    if len(xs) == 1 or f.format(lo) == f.format(hi):
        return f.format(m) + (f" (n={len(xs)})" if len(xs) > 1 else "")
    return f"{f.format(m)} ({f.format(lo)}–{f.format(hi)})"


def ratio(a, b, nd=2):
    if a is None or b in (None, 0):
        return "—"
    r = a / b
    if r == 0:
        return "0"
    if r < 0.01:
        return f"1/{b / a:,.0f}"
    return f"{r:.{nd}f}"


def build_table(R):
    rows = []
    c = R.get("cost")
    if c:
        nh, lp, ip, bb = c["netheal"], c["loop"], c["iputils"], c["busybox"]
        rows.append(["syscalls per healthy round / cycle (strace)",
                     fmt_range(nh["syscalls"]), fmt_range(lp["syscalls"]),
                     ratio(med(nh["syscalls"]), med(lp["syscalls"])),
                     fmt_range(ip["syscalls"], 0), fmt_range(bb["syscalls"], 0)])
        rows.append(["forks + execs per round / cycle",
                     f"{med(nh['forks']):.0f} + {med(nh['execs']):.0f}",
                     f"{med(lp['forks']):.1f} + {med(lp['execs']):.1f}",
                     ratio(med(nh["forks"]) + med(nh["execs"]),
                           med(lp["forks"]) + med(lp["execs"])),
                     f"{med(ip['forks']):.0f} + {med(ip['execs']):.0f} (its own exec)",
                     f"{med(bb['forks']):.0f} + {med(bb['execs']):.0f} (its own exec)"])
        rows.append(["CPU time per healthy round / cycle, µs",
                     fmt_range(nh["cpu_us"]), fmt_range(lp["cpu_us"], 0),
                     ratio(med(nh["cpu_us"]), med(lp["cpu_us"]), 3),
                     fmt_range(ip["cpu_us"], 0), fmt_range(bb["cpu_us"], 0)])
    i = R.get("instr")
    if i:
        rows.append(["instructions per healthy round / cycle (callgrind Ir)",
                     fmt_range(i["netheal"]["ir"], 0), fmt_range(i["loop"]["ir"], 0),
                     ratio(med(i["netheal"]["ir"]), med(i["loop"]["ir"]), 4),
                     fmt_range(i["iputils"]["ir"], 0), fmt_range(i["busybox"]["ir"], 0)])
    if c or i:
        parts, loops = [], []
        if c:
            parts += [fmt_range(c["netheal_nostatus"]["syscalls"]) + " syscalls",
                      fmt_range(c["netheal_nostatus"]["cpu_us"]) + " µs CPU"]
        if i:
            parts.append(fmt_range(i["netheal_nostatus"]["ir"], 0) + " Ir")
        rows.append(["the same, netheal with `--status-file none` (probing alone)",
                     "; ".join(parts), "", "", "", ""])
    m = R.get("memory")
    if m:
        loop_rss = [x + med(m["ping_rss"]) for x in m["bash_rss"]]
        rows.append(["RSS, KiB (netheal after 1000 rounds; loop = bash + ping's peak)",
                     fmt_range(m["rss"], 0), fmt_range(loop_rss, 0),
                     ratio(med(m["rss"]), med(loop_rss)),
                     fmt_range(m["ping_rss"], 0) + " peak",
                     (fmt_range(c["busybox"]["maxrss_kib"], 0) + " peak") if c else ""])
    s = R.get("sizes")
    if s:
        loop_size = s["bash"] + s["ping"] + s["sleep"]
        rows.append([f"binary size, bytes (netheal: {s['netheal_kind']}; loop: bash + ping + "
                     "sleep)",
                     f"{s['netheal']:,}", f"{loop_size:,}", ratio(s["netheal"], loop_size),
                     f"{s['ping']:,} (dynamic)",
                     f"{s['busybox']:,} ({'static' if s['busybox_static'] else 'dynamic'}, "
                     "all applets)"])
    lat = R.get("latency")
    if lat:
        for fault in FAULTS:
            a, l = lat["netheal"][fault], lat["loop"][fault]
            fails = ""
            if a["failed"] or l["failed"]:
                fails = f" — FAILED: netheal {a['failed']}, loop {l['failed']}"
            extra = ""
            if any(h != 1 for h in a["heals"] + l["heals"]):
                extra = (f" (heals per injection: netheal {fmt_range(a['heals'], 0)}, "
                         f"loop {fmt_range(l['heals'], 0)})")
            rows.append([f"{fault}: injection → heal starts, s (n={len(a['detect'])}/"
                         f"{len(l['detect'])}){fails}",
                         fmt_range(a["detect"], 2), fmt_range(l["detect"], 2),
                         ratio(med(a["detect"]) if a["detect"] else None,
                               med(l["detect"]) if l["detect"] else None), "", ""])
            rows.append([f"{fault}: injection → first good round, s{extra}",
                         fmt_range(a["recover"], 2), fmt_range(l["recover"], 2),
                         ratio(med(a["recover"]) if a["recover"] else None,
                               med(l["recover"]) if l["recover"] else None), "", ""])
    f = R.get("false_heals")
    if f:
        rows.append([f"false heals under 30% echo loss (netheal {f['rounds_nh']} rounds, "
                     f"loop {f['rounds_loop']} cycles)",
                     f"{f['nh_heals']} ({f['nh_failed_rounds']} failed rounds, "
                     f"{f['nh_loss'] * 100:.0f}% echoes lost)",
                     f"{f['loop_heals']} ({f['loop_heals'] / f['rounds_loop'] * 100:.0f}%)",
                     ratio(f["nh_heals"] / f["rounds_nh"], f["loop_heals"] / f["rounds_loop"]),
                     "", ""])
    d = R.get("idle")
    if d:
        rows.append([f"idle: voluntary context switches per minute at -i 10s / sleep 10 "
                     f"({d['window_s']:.0f} s window)",
                     fmt_range(d["vol_per_min"], 1), fmt_range(d["loop_vol_per_min"], 1),
                     ratio(med(d["vol_per_min"]), med(d["loop_vol_per_min"])
                           if d["loop_vol_per_min"] else None), "", ""])
    k = R.get("soak")
    if k and k["samples"]:
        sm = sorted(k["samples"])
        first = next((x for x in sm if x[0] >= 10000), sm[0])
        last = sm[-1]
        rows.append([f"soak: RSS KiB at round {first[0]:,} → {last[0]:,} (-i {k['interval']}; "
                     f"open fds)",
                     f"{first[1]:,} → {last[1]:,} (Δ {last[1] - first[1]:+,}); "
                     f"fds {first[3]} → {last[3]}", "", "", "", ""])
    if not rows:
        return ""
    head = ["measure", "netheal", "bash loop", "netheal / loop", "iputils ping -c1",
            "busybox ping -c1"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def machine_facts(b):
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        mem = f"{int(open('/proc/meminfo').readline().split()[1]) / 1024 / 1024:.0f} GiB"
    deb = Path("/etc/debian_version").read_text().strip() if Path(
        "/etc/debian_version").exists() else "?"
    commit = run(["git", "-C", str(ROOT), "rev-parse", "--short=12", "HEAD"], check=False).strip()
    dirty = run(["git", "-C", str(ROOT), "status", "--porcelain", "--", "src", "Cargo.toml",
                 "Cargo.lock", "build.rs"], check=False).strip()
    ver = run([b.nh, "--version"], check=False).strip().replace("\n", "; ")

    def first(cmd):
        return run(cmd, check=False).strip().splitlines()[0] if shutil.which(cmd[0]) else "?"

    return {
        "load": os.getloadavg()[0],
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{platform.node()}: {cpu}, {os.cpu_count()} cores, {mem}, "
                   f"Linux {platform.release()}, Debian {deb}",
        "commit": commit + (" (with uncommitted changes to the sources)" if dirty else ""),
        "netheal": f"{b.nh} — {ver}",
        "tools": "; ".join([
            first(["strace", "-V"]), first(["valgrind", "--version"]),
            first(["ping", "-V"]),
            first(["busybox"]).split(" multi-call")[0],
            first(["bash", "--version"]),
            "ifupdown " + first(["ifup", "--version"]).split()[-1]]),
    }


def write_results(b, R, table, facts, wall):
    notes = "\n".join(f"- {n}" for n in b.notes)
    text = f"""# netheal benchmark results

Written by `make bench` (bench/bench.py{' --quick' if b.quick else ''}); a fresh run
overwrites this file. Raw traces, callgrind files and logs of the run: bench/out/ (not committed).

- date: {facts['date']}
- machine: {facts['machine']}
- commit: {facts['commit']}
- netheal: {facts['netheal']}
- tools: {facts['tools']}
- wall time of the whole bench: {wall / 60:.1f} min
- load average (1 min) at start / end: {facts['load']:.2f} / {os.getloadavg()[0]:.2f}
  (a machine shared with other builds when above ~1 per core)

Figures are median (min–max) over repeated runs; the ratio column is netheal's median over
the loop's. The loop is `while true; do ping -c1 -W1 T || (ifdown I; ifup I); sleep S; done`.

{table}

## How each figure was measured
{notes}
"""
    Path(b.args.out).write_text(text)


def add_method_notes(b, R):
    c = R.get("cost")
    if c:
        nh = c["netheal"]
        bd = ", ".join(f"{k} {v:.2f}" for k, v in nh["breakdown"].items())
        bd0 = ", ".join(f"{k} {v:.2f}"
                        for k, v in c["netheal_nostatus"]["breakdown"].items())
        b.note(f"Cost, netheal: one process at `-i 10ms -W 500ms` (default count "
               f"{b.dflt('count')}: one echo "
               f"per round when the peer answers), defaults otherwise: its status file (by "
               f"default /run/netheal/status, here /run/{PREFIX}/) is rewritten on a state "
               f"change and otherwise once a minute (every 6 rounds before 2026-12-02), so "
               f"a 2.5 s window holds at most one rewrite. Syscalls: `strace -f` "
               f"attached to the running process, counted between two SIGUSR1 status lines "
               f"{fmt_range(nh['rounds'], 0)} rounds apart; per round: {bd}. With "
               f"`--status-file none`: {bd0}. CPU: on-CPU time from /proc/PID/schedstat "
               f"across two status lines, no tracer attached; {nh['ticks'][1]} of its "
               f"{sum(nh['ticks'])} clock ticks (/proc/PID/stat) over those windows were "
               f"system time: the veth, the peer's echo reply in softirq, the wake-up, "
               f"which ping pays too. "
               f"At the default -i 10s rounds run with cold caches and cost more time, "
               f"but the same syscalls and instructions.")
        b.note(f"Cost, bash loop: `strace -f -c` and wait4(2) rusage of the whole loop (bash "
               f"and all children) for {c['loop']['n1']} minus {c['loop']['n0']} healthy cycles, "
               f"divided by the difference; `sleep 0.01` instead of `sleep S` (a cycle costs the "
               f"same whatever it sleeps). Each child was started inside the namespace by "
               f"setns(2) from this script, so no `ip netns exec` is in the figures.")
        b.note("ping -c1: `strace -f -c` of one `ping -c1 -W1 PEER` (its own execve counted); "
               "CPU from wait4(2) rusage of each run (process creation included: even "
               "`/bin/true` costs ~0.6 ms of CPU on this VM); peak RSS from GNU time's %M.")
    if R.get("instr"):
        b.note("Instructions: valgrind --tool=callgrind. netheal: one process at `-i 20ms`; "
               "counters zeroed and dumped (callgrind_control) around a 0.4 s and a 3 s window, "
               "per round = difference of Ir / difference of rounds (SIGUSR1 status lines), "
               "so the status line and the edges cancel. Loop: `--trace-children=yes`, 6 minus "
               "1 healthy cycles, Ir summed over bash, every ping and every sleep; ping is a "
               "copy of /usr/bin/ping without its file capabilities (valgrind refuses the "
               "original; root needs none).")
    m = R.get("memory")
    if m:
        b.note(f"Memory: netheal's VmRSS after ≥1000 rounds at `-i 5ms` in {len(m['rss'])} "
               f"labs (VmHWM {fmt_range(m['hwm'], 0)} KiB, of which anonymous "
               f"{fmt_range(m['anon'], 0)} KiB); the loop's bash VmRSS "
               f"{fmt_range(m['bash_rss'], 0)} KiB mid-run plus ping's median peak RSS. RSS "
               f"counts shared library pages (glibc) in full for every process.")
    s = R.get("sizes")
    if s:
        b.note(f"Sizes: netheal = {s['netheal_path']} ({s['netheal_kind']}; "
               f"`{s['netheal_version']}`); the glibc "
               f"release build is {s['netheal_glibc']:,} bytes. Loop = /bin/bash "
               f"{s['bash']:,} + ping {s['ping']:,} + sleep {s['sleep']:,} (shared libraries "
               f"not counted).")
    lat = R.get("latency")
    if lat:
        sd = lat["silent_drop"]
        b.note(f"Latency: netheal `-i 1s -W 500ms -a ifupdown` (default count "
               f"{b.dflt('count')}, fail-after {b.dflt('fail-after')}, backoff "
               f"{b.dflt('backoff')}) and the loop (`ping -c1 -W1`, `sleep 1`), each in its own lab, "
               f"one after the other, {lat['n']} injections per fault after a random 1–2 s "
               f"of good rounds. Both heal with Debian's ifupdown (`ifdown I; ifup I`) and the "
               f"lab's interfaces file, bind-mounted on /etc/network with a tmpfs "
               f"/run/network in the watcher's private mount namespace. Heal start: netheal's "
               f"`heal attempt K: running` line (stamped on arrival), the loop's own "
               f"$EPOCHREALTIME before ifdown. First good round: netheal's `state ... -> up`, "
               f"the loop's first good ping after the heal. Silent drop: a blackhole qdisc "
               f"{'survives' if sd['blackhole_survives'] else 'does NOT survive'} "
               f"ifdown/ifup (checked in this run), so neither watcher could repair it; the "
               f"bench uses a permanent bogus neighbour entry for the peer, which ifdown/ifup "
               f"{'does NOT clear' if sd['neigh_survives'] else 'clears'}.")
    f = R.get("false_heals")
    if f:
        b.note("False heals: the peer drops 30% of echo requests (nftables `numgen random mod "
               "100 < 30 drop` on its input). netheal `--dry-run -v -i 100ms -W 300ms`, "
               f"defaults otherwise (count {b.dflt('count')}, fail-after "
               f"{b.dflt('fail-after')}): would-be heals = `dry run, not "
               "running` lines. Loop: `ping -c1 -W0.3 || <no-op heal>; sleep 0.1` (W and "
               "sleep shortened to fit the time budget; they do not change which echoes are "
               "lost). Both at once, each in its own lab.")
    d = R.get("idle")
    if d:
        b.note(f"Idle: voluntary_ctxt_switches of {len(d['vol_per_min'])} netheal processes "
               f"at `-i 10s` (defaults otherwise) over a {d['window_s']:.0f} s window, "
               f"scaled to a minute; non-voluntary {fmt_range(d['nonvol_per_min'], 1)}/min; "
               f"{fmt_range(d['rounds'], 0)} rounds in the window, so "
               f"{fmt_range(d['per_round'], 2)} switches per round. With `--status-file "
               f"none`: {d['nostatus']['per_min']:.1f}/min, {d['nostatus']['per_round']:.2f} "
               f"per round. So: one sleep per round (the veth answers inside sendto, so the "
               f"reply is already queued when netheal polls for it; over a real link the "
               f"reply is a second wake-up), no timer in between, and one more per status-file "
               f"rewrite (once a minute, every 6th round before 2026-12-02: its rename(2) "
               f"over the old file blocks ~0.25 ms, seen with strace -T). "
               f"Loop: wait4(2) ru_nvcsw of bash and its children over {d['loop_cycles']} "
               f"cycles of "
               f"`sleep 10`. Run alongside the latency test.")
    k = R.get("soak")
    if k:
        samples = ", ".join(f"{n:,}: {r:,}" for n, r, _, _, _ in sorted(k["samples"]))
        st = k.get("status") or {}
        b.note(f"Soak: one netheal `-v -i {k['interval']} -W 50ms` (not -i 10ms: 100 000 "
               f"rounds at 10 ms take 17 min, over the 15 min budget) for "
               f"{st.get('rounds', '?'):,} rounds in {k.get('elapsed', 0):.0f} s, "
               f"run in the background of everything else in its own lab; VmRSS KiB sampled "
               f"when the -v line of the round arrived: {samples}. Failed rounds "
               f"{k['failed_rounds']}, replies {st.get('replies', '?')}, lost "
               f"{st.get('lost', '?')}, late {st.get('late', '?')}.")


# ---------------------------------------------------------------------------------------------
# 9. Issue 9 (the kernel's view through rtnetlink): cost of a `gateway` round, status file
# rewrites, event latency, a 200 000-route table, 256 interfaces, and Debian's watchdog(8).

def gw_lab(tag, v6=False):
    """A lab whose HOST has a default route through IFACE (IPv4, or IPv6 with v6)."""
    lab = Lab(tag)
    if v6:
        for ns, ifc, a in ((lab.host, lab.iface, "2001:db8:1::2"), (lab.peer, lab.pif,
                                                                    "2001:db8:1::1")):
            run(["ip", "-n", ns, "addr", "add", f"{a}/64", "dev", ifc, "nodad"])
        run(["ip", "-n", lab.host, "-6", "route", "add", "default", "via", "2001:db8:1::1",
             "dev", lab.iface])
    else:
        run(["ip", "-n", lab.host, "route", "add", "default", "via", PEER_ADDR, "dev",
             lab.iface])
    return lab


def nh_gateway(b, lab, *opts, name, wrap=None, status_file=False):
    """netheal -t gateway in lab's HOST, waited for until up."""
    status = str(b.rundir / f"status-{name}") if status_file else "none"
    argv = [b.nh, "-c", str(b.conf), "--status-file", status, "--log", "stderr",
            "-t", "gateway", *opts, lab.iface]
    p = Proc(ns_exec(lab.host, *((wrap or []) + argv)), name)
    p.wait_for(r"state \S+ -> up", timeout=60)
    return p


def strace_attached(pid, seconds, out, extra=()):
    """strace -f -c attached to a running pid for `seconds`: {syscall: calls}."""
    p = subprocess.Popen(["strace", "-f", "-c", *extra, "-o", str(out), "-p", str(pid)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    BENCH.procs_raw.append(p)
    time.sleep(seconds)
    p.send_signal(signal.SIGINT)
    p.wait(20)
    return parse_strace_summary(out)


def measure_round9(b):
    """Syscalls per healthy `gateway` round (a full `strace -f` attached; the calls between
    the writes of two SIGUSR1 status lines, over the rounds between them: the same window for
    both, as measure_cost_netheal), instructions and allocator calls per round (callgrind,
    two windows, as measure_instr_netheal)."""
    lab = gw_lab("r")
    res = {"syscalls": [], "breakdown": None, "ir": [], "allocs": []}
    nh = nh_gateway(b, lab, "-i", "10ms", "-W", "500ms", name="round9")
    for rep in range(b.reps(3)):
        trace = b.out / f"strace-round9-{rep}.txt"
        st = Proc(["strace", "-f", "-s", "256", "-o", str(trace), "-p", str(nh.pid)],
                  f"strace-round9-{rep}")
        st.wait_for(r"attached", timeout=10)
        s1 = nh.status()
        time.sleep(3.0 if not b.quick else 1.5)
        s2 = nh.status()
        st.signal(signal.SIGINT)
        st.p.wait(10)
        counts = strace_window(trace)
        n = s2["rounds"] - s1["rounds"]
        if n < 100:
            raise BenchError(f"only {n} rounds in the strace window")
        # The second status line's signal (a signalfd read and its wake-up) is inside the
        # window: about 2 calls over n ≥ 100 rounds.
        res["syscalls"].append(sum(counts.values()) / n)
        res["breakdown"] = {k: v / n for k, v in sorted(counts.items())}
        res["rounds"] = n
    nh.stop()
    prefix = str(b.out / "vgdb9")
    cg = b.out / "callgrind-round9.out"
    nh = nh_gateway(b, lab, "-i", "20ms", "-W", "500ms", name="callgrind-round9",
                    wrap=["valgrind", "--tool=callgrind", f"--vgdb-prefix={prefix}",
                          f"--callgrind-out-file={cg}"])
    ctl = ["callgrind_control", f"--vgdb-prefix={prefix}"]
    dumps = 0

    def window(seconds):
        nonlocal dumps
        run(ctl + ["--zero", str(nh.pid)])
        r1 = nh.status()["rounds"]
        time.sleep(seconds)
        run(ctl + ["--dump", str(nh.pid)])
        dumps += 1
        r2 = nh.status()["rounds"]
        path = f"{cg}.{dumps}"
        return callgrind_total(path), callgrind_alloc_calls(path), r2 - r1

    time.sleep(1.0)
    for _ in range(b.reps(3)):
        ir_s, al_s, n_s = window(0.4)
        ir_l, al_l, n_l = window(3.0 if not b.quick else 1.5)
        res["ir"].append((ir_l - ir_s) / (n_l - n_s))
        res["allocs"].append((al_l - al_s) / (n_l - n_s))
    nh.stop(timeout=20)
    return res


ALLOC_FNS = {"malloc", "calloc", "realloc", "posix_memalign", "aligned_alloc", "memalign"}


def callgrind_alloc_calls(path):
    """Calls into the C allocator in one callgrind dump (every caller's `calls=` lines to a
    callee named malloc, calloc, realloc, ...; callgrind compresses names to `(id)`)."""
    names, total, pending = {}, 0, False
    for line in Path(path).read_text().splitlines():
        if line.startswith("cfn="):
            m = re.match(r"cfn=\((\d+)\)(?: (.*))?", line)
            if m:
                if m[2]:
                    names[m[1]] = m[2]
                pending = names.get(m[1], "").split("'")[0] in ALLOC_FNS
            continue
        m = re.match(r"c?fn=\((\d+)\) (.*)", line)
        if m:
            names[m[1]] = m[2]
        if line.startswith("calls=") and pending:
            total += int(line.split("=")[1].split()[0])
            pending = False
    return total


def start_rewrites(b, window):
    """netheal with its status file at -i 10s (the default) and at -i 1s, each under
    `strace -f -e trace=rename` for `window` seconds of steady (up) state."""
    h = {"window": window, "runs": []}
    for iv in ("10s", "1s"):
        lab = gw_lab(f"w{iv[:-1]}")
        tr = b.out / f"strace-rename-{iv}.txt"
        nh = nh_gateway(b, lab, "-i", iv, name=f"rewrites-{iv}", status_file=True)
        p = subprocess.Popen(["strace", "-f", "-e", "trace=rename,renameat,renameat2", "-o",
                              str(tr), "-p", str(nh.pid)], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        BENCH.procs_raw.append(p)
        h["runs"].append((iv, nh, p, tr))
    h["t0"] = time.monotonic()
    h["stopped"] = threading.Event()

    def stopper():  # detach exactly `window` s later, whatever runs in the foreground then
        for _, _, q, _ in h["runs"]:
            q.send_signal(signal.SIGINT)
        h["elapsed"] = time.monotonic() - h["t0"]
        h["stopped"].set()

    h["timer"] = threading.Timer(window, stopper)
    h["timer"].start()
    return h


def finish_rewrites(b, h):
    h["stopped"].wait(h["window"] + 30)
    res = {"window": h["elapsed"], "by_interval": {}}
    for iv, nh, p, tr in h["runs"]:
        p.wait(20)
        nh.stop()
        text = tr.read_text()
        res["by_interval"][iv] = len(re.findall(r"\brename(?:at2?)?\(", text))
    return res


def sendto_times(path):
    """Wall-clock stamps of sendto(2) calls in an `strace -ttt` trace."""
    out = []
    for line in Path(path).read_text().splitlines():
        m = re.match(r"^(?:\d+\s+)?(\d+\.\d+) sendto\(", line)
        if m:
            out.append(float(m[1]))
    return out


# A heal starting: a ladder step, or (on-admin-down = link-up, the default) the link set up
# at once on the kernel's event.
HEAL_STARTS = r"heal attempt \d+: running|setting it up at once"


def measure_events9(b, n):
    """Peer carrier lost and admin down on IFACE while netheal -i 10s (a round every 10 s:
    any round right after the change is the confirming one) -W 300ms --boot-grace 0
    --backoff 1s --fail-after 1 --carrier-wait 0 -a /bin/true runs under `strace -f -ttt -e trace=sendto` (the send
    stamps). t0 = time.time() just before the `ip link set` that changes the link (ip's own
    exec, ~2 ms, is included). Logged = arrival of netheal's `carrier lost` / `link set down`
    line; state change = its `state up -> ...` line (suspect on the kernel's event);
    heal start = its `heal attempt K: running` line (carrier: the step after the one failed
    confirming round) or `setting it up at once` (admin down: on-admin-down = link-up)."""
    lab = gw_lab("e")
    tr = b.out / "strace-events9.txt"
    nh = nh_gateway(b, lab, "-i", "10s", "-W", "300ms", "--boot-grace", "0", "-b", "1s",
                    "-n", "1", "--carrier-wait", "0", "-a", "/bin/true", name="events9",
                    wrap=["strace", "-f", "-ttt", "-e", "trace=sendto", "-o", str(tr)])
    res = {k: {"logged": [], "state": [], "sent": [], "heal": [], "kernel": [], "after": []}
           for k in ("carrier", "admin")}
    # When the kernel reported the change (the same RTM_NEWLINK netheal reads): its link
    # watch may hold a carrier change back up to a second after any other link event on the
    # machine, which netheal cannot see sooner.
    mon = Proc(["ip", "-n", lab.host, "monitor", "link"], "events9-monitor")
    time.sleep(0.3)
    cases = {"carrier": (["ip", "-n", lab.peer, "link", "set", lab.pif, "down"],
                         ["ip", "-n", lab.peer, "link", "set", lab.pif, "up"],
                         r"carrier lost"),
             "admin": (["ip", "-n", lab.host, "link", "set", lab.iface, "down"],
                       ["ip", "-n", lab.host, "link", "set", lab.iface, "up"],
                       r"link set down")}
    for _ in range(n):
        for k, (down, up, rx) in cases.items():
            time.sleep(random.uniform(1.0, 2.0))
            mark = nh.mark()
            mmark = mon.mark()
            t0 = time.time()
            run(down)
            _, tl, _ = nh.wait_for(rx, mark, timeout=10)
            res[k]["logged"].append(tl - t0)
            _, ts, _ = nh.wait_for(r"state up -> ", mark, timeout=10)
            res[k]["state"].append(ts - t0)
            _, tk, _ = mon.wait_for(rf"\b{lab.iface}\b", mmark, timeout=10)
            res[k]["kernel"].append(tk - t0)
            res[k]["after"].append(ts - tk)
            _, th, _ = nh.wait_for(HEAL_STARTS, mark, timeout=15)
            res[k]["heal"].append(th - t0)
            time.sleep(0.3)  # the trace is flushed per line; let it catch up
            after = [t for t in sendto_times(tr) if t >= t0]
            if after:  # none when the change took the route (and so the gateway) away
                res[k]["sent"].append(after[0] - t0)
            run(up)
            if k == "admin":  # a link set up loses the default route: put it back
                run(["ip", "-n", lab.host, "route", "replace", "default", "via", PEER_ADDR,
                     "dev", lab.iface])
            mark2 = nh.mark()
            nh.wait_for(r"state \S+ -> up", mark, timeout=30)
            del mark2
    nh.stop()
    mon.stop()
    return res


def measure_bigtable(b):
    """netheal -t gateway (an IPv6 default route) -i 100ms -W 300ms --dry-run
    --status-file none: on-CPU time over 100 rounds and VmRSS, with the namespace's table
    empty and then with 200 000 IPv6 /64 routes (ip -batch) through a second veth whose both
    ends are in HOST. A fresh process each time (so its start-up dump sees the table)."""
    lab = gw_lab("g", v6=True)
    a, bb = f"{PREFIX}gc", f"{PREFIX}gd"
    run(["ip", "-n", lab.host, "link", "add", a, "type", "veth", "peer", "name", bb])
    run(["ip", "-n", lab.host, "link", "set", a, "up"])
    run(["ip", "-n", lab.host, "link", "set", bb, "up"])
    run(["ip", "-n", lab.host, "addr", "add", "2001:db8:2::2/64", "dev", a, "nodad"])
    res = {}
    window = 10.0 if not b.quick else 4.0

    def one(label):
        nh = nh_gateway(b, lab, "-i", "100ms", "-W", "300ms", "--dry-run", name=f"big-{label}")
        time.sleep(1.0)
        s1, c1 = nh.status(), oncpu_ns(nh.pid)
        time.sleep(window)
        s2, c2 = nh.status(), oncpu_ns(nh.pid)
        st = proc_status(nh.pid)
        nh.stop()
        n = s2["rounds"] - s1["rounds"]
        return {"cpu_us": (c2 - c1) / 1e3 / n, "rss": kib(st["VmRSS"]), "rounds": n,
                "failed": (s2["rounds"] - s2["replies"]) - (s1["rounds"] - s1["replies"])}

    res["empty"] = one("empty")
    batch = b.out / "routes-200k.batch"
    with open(batch, "w") as f:
        for i in range(200000):
            f.write(f"route add 2001:db8:f{i >> 16:x}:{i & 0xffff:x}::/64 via 2001:db8:2::1 "
                    f"dev {a}\n")
    t = time.monotonic()
    run(ns_exec(lab.host, "ip", "-6", "-batch", str(batch)), timeout=300)
    res["load_s"] = time.monotonic() - t
    res["routes"] = int(run(f"ip -n {lab.host} -6 route show | wc -l", timeout=120).strip())
    res["full"] = one("200k")
    return res


def measure_scale(b, nifs=256):
    """One netheal watching nifs veths (HOST ends in one namespace, PEER ends in another,
    2001:db8:a:N::2 <-> ::1, nodad), one [IFACE] section each, -i 1s -W 500ms, dry run, no
    status file. CPU per round per interface = on-CPU time / rounds of all watches (from
    -v round lines) over the window."""
    host, peer = f"{PREFIX}Sh", f"{PREFIX}Sp"
    lab = Lab.__new__(Lab)  # only its namespaces, for cleanup
    lab.host, lab.peer = host, peer
    BENCH.labs.append(lab)
    run(["ip", "netns", "add", host])
    run(["ip", "netns", "add", peer])
    cmds_h, cmds_p = ["link set lo up"], ["link set lo up"]
    conf = ["# netheal bench: scale", "interval = 1s", "timeout = 500ms", "dry-run = yes", ""]
    for k in range(nifs):
        hi, pi = f"{PREFIX}v{k}", f"{PREFIX}w{k}"
        assert len(hi) <= 15, hi
        cmds_h += [f"link add {hi} type veth peer name {pi} netns {peer}",
                   f"addr add 2001:db8:a:{k:x}::2/64 dev {hi} nodad", f"link set {hi} up"]
        cmds_p += [f"addr add 2001:db8:a:{k:x}::1/64 dev {pi} nodad", f"link set {pi} up"]
        conf += [f"[{hi}]", f"target = 2001:db8:a:{k:x}::1", ""]
    fh, fp, fc = b.out / "scale-h.batch", b.out / "scale-p.batch", b.out / "scale.conf"
    fh.write_text("\n".join(cmds_h) + "\n")
    run(["ip", "-n", host, "-batch", str(fh)], timeout=120)
    fp.write_text("\n".join(cmds_p) + "\n")
    run(["ip", "-n", peer, "-batch", str(fp)], timeout=120)
    fc.write_text("\n".join(conf) + "\n")
    fc.chmod(0o644)
    time.sleep(1.0)
    rounds = {"n": 0}

    def on_line(_t, line):
        if re.search(r"round \d+ (good|failed)", line):
            rounds["n"] += 1
            return True
        return False

    p = Proc(ns_exec(host, b.nh, "-c", str(fc), "--status-file", "none", "--log", "stderr",
                     "-v"), "scale", on_line=on_line)
    time.sleep(8.0)  # every watch up
    window = 20.0 if not b.quick else 8.0
    r1, c1 = rounds["n"], oncpu_ns(p.pid)
    time.sleep(window)
    r2, c2 = rounds["n"], oncpu_ns(p.pid)
    st = proc_status(p.pid)
    fails = sum(1 for _, l in p.lines if re.search(r"-> (down|failing)", l))
    p.stop()
    n = r2 - r1
    return {"nifs": nifs, "rounds": n, "window": window,
            "cpu_us": (c2 - c1) / 1e3 / max(n, 1), "cpu_pct": (c2 - c1) / 1e9 / window * 100,
            "rss": kib(st["VmRSS"]), "state_changes_down": fails}


CAP_SYS_BOOT, CAP_SYS_ADMIN = 22, 21


def find_descendant(root_pid, comm):
    """The first process named comm below root_pid."""
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            with contextlib.suppress(OSError):
                s = Path(f"/proc/{d}/stat").read_text()
                name = s[s.index("(") + 1:s.rindex(")")]
                ppid = int(s.rsplit(")", 1)[1].split()[1])
                kids.setdefault(ppid, []).append((int(d), name))
    todo = [root_pid]
    while todo:
        for pid, name in kids.get(todo.pop(), []):
            if name == comm:
                return pid
            todo.append(pid)
    return None


def measure_peer_watchdog(b):
    """Debian's watchdog(8) pinging the lab's peer every second, side by side with netheal
    at -i 1s (its status file on), same window. watchdog: only -q (no action), a config of
    our own without any watchdog-device line, in its own PID and mount namespaces (tmpfs on
    /run for its pid file, /dev/null bind-mounted over /dev/watchdog*), CAP_SYS_BOOT and
    CAP_SYS_ADMIN dropped from its bounding set. Checked before start (config, -q) and after
    (not in our PID namespace, capabilities gone from CapEff and CapBnd)."""
    lab_w, lab_n = Lab("dw"), Lab("dn")
    wdconf = b.out / "watchdog.conf"
    wdconf.write_text(f"# netheal bench: no device, ping only\nping = {PEER_ADDR}\n"
                      f"interval = 1\nrealtime = no\nlog-dir = /run\n")
    argv = ["watchdog", "-F", "-q", "-c", str(wdconf)]
    text = wdconf.read_text()
    if "watchdog-device" in text or "-q" not in argv or "test-binary" in text or \
            "repair-binary" in text:
        raise BenchError("watchdog: refusing to start without -q or with a device")
    guard = ("mount -t tmpfs tmpfs /run && "
             "for d in /dev/watchdog*; do [ -e \"$d\" ] && mount --bind /dev/null \"$d\"; "
             "done; exec setpriv --bounding-set -sys_boot,-sys_admin -- \"$@\"")
    full = ns_exec(lab_w.host, "unshare", "--pid", "--fork", "--mount", "--mount-proc",
                   "sh", "-c", guard, "sh", *argv)
    p = Proc(full, "watchdog")
    wpid = None
    for _ in range(50):
        wpid = find_descendant(p.pid, "watchdog")
        if wpid:
            break
        time.sleep(0.1)
    if not wpid:
        raise BenchError("watchdog did not start: " + "; ".join(l for _, l in p.lines[-5:]))
    if os.readlink(f"/proc/{wpid}/ns/pid") == os.readlink("/proc/self/ns/pid"):
        p.stop()
        raise BenchError("watchdog is in our PID namespace: stopped")
    st = proc_status(wpid)
    for k in ("CapEff", "CapBnd"):
        caps = int(st[k], 16)
        if caps & (1 << CAP_SYS_BOOT) or caps & (1 << CAP_SYS_ADMIN):
            p.stop()
            raise BenchError(f"watchdog still has CAP_SYS_BOOT/ADMIN in {k}: stopped")
    nh = b.netheal(lab_n, "-i", "1s", "-W", "500ms", name="peer-netheal")
    time.sleep(3.0)
    window = 30.0 if not b.quick else 10.0
    res = {"window": window, "checked": True}
    for who, pid in (("watchdog", wpid), ("netheal", nh.pid)):
        res[who] = {"c1": oncpu_ns(pid)}
    threads, out = [], {}
    for who, pid in (("watchdog", wpid), ("netheal", nh.pid)):
        t = threading.Thread(target=lambda w=who, q=pid: out.__setitem__(
            w, strace_attached(q, window, b.out / f"strace-peer-{w}.txt")))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    for who, pid in (("watchdog", wpid), ("netheal", nh.pid)):
        r = res[who]
        r["cpu_us"] = (oncpu_ns(pid) - r.pop("c1")) / 1e3 / window  # per 1 s cycle (traced)
        r["syscalls"] = out[who]["total"] / window
        r["rss"] = kib(proc_status(pid)["VmRSS"])
        r["top"] = ", ".join(f"{k} {v / window:.1f}" for k, v in sorted(
            out[who].items(), key=lambda kv: -kv[1]) if k != "total")
    # Untraced CPU, a second window.
    c = {w: oncpu_ns(q) for w, q in (("watchdog", wpid), ("netheal", nh.pid))}
    time.sleep(window)
    for w, q in (("watchdog", wpid), ("netheal", nh.pid)):
        res[w]["cpu_us"] = (oncpu_ns(q) - c[w]) / 1e3 / window
    res["wd_lines"] = [l for _, l in p.lines[-5:]]
    p.stop()
    nh.stop()
    return res


# ---------------------------------------------------------------------------------------------
# Issue 10: the cost of a round with one `tcp:` target (no ICMP at all).

TCP_LISTENER = """
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", int(sys.argv[1])))
s.listen(128)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    c.close()
"""


def nh_target(b, lab, target, *opts, name, wrap=None):
    """netheal with only `target` (no ICMP target) in lab's HOST, waited for until up."""
    argv = [b.nh, "-c", str(b.conf), "--status-file", "none", "--log", "stderr",
            "-t", target, *opts, lab.iface]
    p = Proc(ns_exec(lab.host, *((wrap or []) + argv)), name)
    p.wait_for(r"state \S+ -> up", timeout=60)
    return p


def measure_round_of(b, lab, target, tag):
    """Syscalls and instructions per healthy round with the one `target`, measured as
    measure_round9 measures a gateway round (strace -f -c attached between two status lines;
    callgrind in two windows, per round = difference / difference of rounds)."""
    res = {"syscalls": [], "breakdown": None, "ir": [], "allocs": []}
    nh = nh_target(b, lab, target, "-i", "10ms", "-W", "500ms", name=f"round-{tag}")
    for rep in range(b.reps(3)):
        out = b.out / f"strace-round-{tag}-{rep}.txt"
        p = subprocess.Popen(["strace", "-f", "-c", "-o", str(out), "-p", str(nh.pid)],
                             stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
        BENCH.procs_raw.append(p)
        time.sleep(0.5)
        s1 = nh.status()
        time.sleep(3.0 if not b.quick else 1.5)
        s2 = nh.status()
        time.sleep(0.2)
        p.send_signal(signal.SIGINT)
        p.wait(20)
        calls = parse_strace_summary(out)
        # strace sees more than the status lines' window (it is attached before the first
        # and detached after the second), so rounds are counted where they are exact: one
        # connect(2) per round and target.
        n = calls.get("connect") or (s2["rounds"] - s1["rounds"])
        res["syscalls"].append(calls["total"] / n)
        res["breakdown"] = {k: v / n for k, v in sorted(calls.items()) if k != "total"}
        res["rounds"] = n
        res["lost"] = s2["lost"]
    nh.stop()
    prefix = str(b.out / f"vgdb-{tag}")
    cg = b.out / f"callgrind-round-{tag}.out"
    nh = nh_target(b, lab, target, "-i", "20ms", "-W", "500ms", name=f"callgrind-{tag}",
                   wrap=["valgrind", "--tool=callgrind", f"--vgdb-prefix={prefix}",
                         f"--callgrind-out-file={cg}"])
    ctl = ["callgrind_control", f"--vgdb-prefix={prefix}"]
    dumps = 0

    def window(seconds):
        nonlocal dumps
        run(ctl + ["--zero", str(nh.pid)])
        r1 = nh.status()["rounds"]
        time.sleep(seconds)
        run(ctl + ["--dump", str(nh.pid)])
        dumps += 1
        r2 = nh.status()["rounds"]
        path = f"{cg}.{dumps}"
        return callgrind_total(path), callgrind_alloc_calls(path), r2 - r1

    time.sleep(1.0)
    for _ in range(b.reps(3)):
        ir_s, al_s, n_s = window(0.4)
        ir_l, al_l, n_l = window(3.0 if not b.quick else 1.5)
        res["ir"].append((ir_l - ir_s) / (n_l - n_s))
        res["allocs"].append((al_l - al_s) / (n_l - n_s))
    nh.stop(timeout=20)
    return res


def measure_tcp(b):
    """One `tcp:PEER:8080` target, the port open (a Python listener in PEER that accepts and
    closes), then closed (PEER's kernel answers RST)."""
    lab = Lab("t")
    lst = subprocess.Popen(ns_exec(lab.peer, sys.executable, "-c", TCP_LISTENER, "8080"),
                           stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.DEVNULL, text=True)
    BENCH.procs_raw.append(lst)
    if lst.stdout.readline().strip() != "ready":
        raise BenchError("tcp: the listener did not start")
    res = {"open": measure_round_of(b, lab, f"tcp:{PEER_ADDR}:8080", "tcp-open")}
    res["closed"] = measure_round_of(b, lab, f"tcp:{PEER_ADDR}:8081", "tcp-closed")
    lst.kill()
    lst.wait(5)
    return res


def build_table_tcp(R):
    rows = []
    t = R.get("tcp")
    if t:
        for k, what in (("open", "port open: SYN-ACK"), ("closed", "port closed: RST")):
            r = t[k]
            bd = ", ".join(f"{c} {v:.2f}" for c, v in r["breakdown"].items())
            rows.append([f"syscalls per healthy round, one `tcp:` target, {what} "
                         f"(`--status-file none`, strace -f -c, {r['rounds']} rounds = "
                         "connect calls; two status lines included)", f"{fmt_range(r['syscalls'], 2)} ({bd})"])
            rows.append([f"instructions per healthy round, same, {what} (callgrind Ir); "
                         "allocator calls per round",
                         f"{fmt_range(r['ir'], 0)}; {fmt_range(r['allocs'], 2)} allocs"])
    if not rows:
        return ""
    head = "| measure (issue 10, `tcp:` targets) | figure |\n|---|---|\n"
    return head + "\n".join(f"| {a} | {c} |" for a, c in rows)


def add_method_notes_tcp(b, R):
    if R.get("tcp"):
        b.note("Issue 10, `tcp:` round cost: one netheal `-t tcp:PEER:PORT -i 10ms -W 500ms "
               "--status-file none` (no ICMP target, so no ICMP socket), the port open (a Python "
               "listener in PEER that accepts and closes) and closed (PEER's kernel sends an "
               "RST); per attempt netheal opens a socket, binds it to IFACE, sets SO_LINGER 0, "
               "connects, polls for POLLOUT, reads SO_ERROR and closes. Measured as the "
               "issue 9 gateway round (strace windows between status lines; callgrind windows "
               "at -i 20ms).")


def build_table9(R):
    rows = []
    r = R.get("round9")
    if r:
        bd = ", ".join(f"{k} {v:.2f}" for k, v in r["breakdown"].items())
        rows.append(["syscalls per healthy round, `-t gateway --status-file none` (strace -f, "
                     f"{r['rounds']} rounds between two status lines)",
                     f"{fmt_range(r['syscalls'], 2)} ({bd})"])
        rows.append(["instructions per healthy round, same (callgrind Ir, glibc release build)",
                     fmt_range(r["ir"], 0)])
        rows.append(["allocator calls per healthy round (malloc/calloc/realloc calls in the "
                     "same callgrind windows)", fmt_range(r["allocs"], 2)])
    w = R.get("rewrites")
    if w:
        rows.append([f"status file rewrites (rename(2)) in {w['window']:.0f} s of steady state; "
                     "per minute",
                     "; ".join(f"-i {iv}: {n} ({n * 60 / w['window']:.1f}/min)"
                               for iv, n in w["by_interval"].items())])
    e = R.get("events9")
    if e:
        for k, what in (("carrier", "peer carrier lost"), ("admin", "admin down")):
            d = e[k]
            rows.append([f"{what} → `{'carrier lost' if k == 'carrier' else 'link set down'}` "
                         f"logged, ms (n={len(d['logged'])})",
                         fmt_range(d["logged"], 1, 1000)])
            rows.append([f"{what} → state change logged (`state up -> suspect`), ms",
                         fmt_range(d["state"], 1, 1000)])
            if d.get("kernel"):
                rows.append([f"{what}: the kernel's report (`ip monitor link`) → state change "
                             "logged, ms (netheal's own delay; goal ≤ 50)",
                             fmt_range(d["after"], 1, 1000) + "; the report itself came "
                             + fmt_range(d["kernel"], 1, 1000) + " ms after the change"])
            rows.append([f"{what} → confirming round sent (sendto), ms",
                         fmt_range(d["sent"], 1, 1000) if d["sent"] else
                         "no echo sent: the default route (the gateway) went with the link; "
                         "the confirming round starts at once and fails at its timeout"])
            how = ("`heal attempt K: running`, after the confirming round" if k == "carrier"
                   else "`setting it up at once`, on-admin-down = link-up")
            rows.append([f"{what} → heal starts ({how}), ms",
                         fmt_range(d["heal"], 0, 1000)])
    g = R.get("bigtable")
    if g:
        for k, lbl in (("empty", "empty table"), ("full", f"{g['routes']:,} IPv6 routes")):
            x = g[k]
            rows.append([f"`gateway` (IPv6), {lbl}: CPU per round µs; VmRSS KiB "
                         f"({x['rounds']} rounds)", f"{x['cpu_us']:.1f}; {x['rss']:,}"])
    s = R.get("scale")
    if s:
        rows.append([f"{s['nifs']} watched veths in one process at -i 1s: CPU per round per "
                     f"interface µs; CPU %; VmRSS KiB",
                     f"{s['cpu_us']:.1f}; {s['cpu_pct']:.1f} %; {s['rss']:,} ({s['rounds']} "
                     f"rounds in {s['window']:.0f} s)"])
    p = R.get("peer")
    if p:
        for who, lbl in (("watchdog", "watchdog(8) -q, `ping =` every 1 s"),
                         ("netheal", "netheal -i 1s (status file on)")):
            x = p[who]
            rows.append([f"{lbl}: syscalls per second; CPU µs per second (untraced); VmRSS KiB",
                         f"{x['syscalls']:.1f} ({x['top']}); {x['cpu_us']:.1f}; {x['rss']:,}"])
    if not rows:
        return ""
    targets = targets9(R)
    if targets:
        rows += targets
    lines = ["| measure (issue 9) | figure |", "|---|---|"]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    return "\n".join(lines)


def targets9(R):
    """Issue 9's performance targets against this run's figures: rows for build_table9."""
    rows = []

    def verdict(ok):
        return "met" if ok else "NOT met"

    r = R.get("round9")
    if r:
        sc, ir, al = med(r["syscalls"]), med(r["ir"]), med(r["allocs"])
        rows.append(["target: syscalls per healthy round ≤ 4",
                     f"{sc:.2f}: {verdict(sc <= 4.05)}"])
        rows.append(["target: no allocation in a steady round",
                     f"{al:.2f} allocator calls per round: {verdict(al < 0.05)}"])
        rows.append(["target: ≤ 3 k instructions per round without the status file",
                     f"{ir:,.0f}: {verdict(ir <= 3000)}"])
    w = R.get("rewrites")
    if w:
        worst = max(n * 60 / w["window"] for n in w["by_interval"].values())
        # One rewrite may fall on each edge of the window: ≤ 1 a minute allows 2 in 60 s.
        ok = worst <= 2 * 60 / max(w["window"], 60)
        rows.append(["target: status file rewritten on state change and at most once a minute",
                     f"{worst:.1f}/min at most: {verdict(ok)}"])
    return rows


def add_method_notes9(b, R):
    if R.get("round9"):
        b.note("Issue 9, round cost: one netheal `-t gateway -i 10ms -W 500ms --status-file "
               "none` (IPv4 default route through IFACE); syscalls from a full `strace -f` "
               "attached, those between the writes of two SIGUSR1 status lines over the "
               "rounds between them (the second line's signal handling is inside the window; "
               "before 2026-12-02 the bench counted a 3.7 s trace over 3.0 s of rounds, "
               "which made 5.0 calls read 6.2); instructions and allocator calls "
               "from callgrind at `-i 20ms`, 0.4 s and 3 s windows, per round = difference / "
               "difference of rounds. Allocator calls are the `calls=` to malloc, calloc, "
               "realloc, posix_memalign in the dump (the glibc build; Rust's allocator calls "
               "them).")
    if R.get("rewrites"):
        b.note("Issue 9, status file: netheal `-t gateway` with its status file (our own "
               "directory on /run) at `-i 10s` and `-i 1s`, `strace -f -e "
               "trace=rename,renameat,renameat2` attached for the window, both up throughout "
               "(no state change), so every rename is a steady-state rewrite (netheal "
               "rewrites it at the first round a minute after the last rewrite).")
    if R.get("events9"):
        b.note("Issue 9, events: " + measure_events9.__doc__.replace("\n    ", " ").strip() +
               " Carrier: `ip link set PIF down` in PEER; admin down: `ip link set IFACE "
               "down` in HOST; each restored (and the default route put back) and netheal "
               "back up before the next, 1–2 s apart. Admin down heals at once (the default "
               "on-admin-down = link-up sets the link up on the kernel's event); a carrier "
               "loss heals after its confirming round fails (`-n 1 --carrier-wait 0` here; "
               "by default carrier-wait gives a cable 30 s).")
    if R.get("bigtable"):
        g = R["bigtable"]
        b.note(f"Issue 9, routing table: {measure_bigtable.__doc__.strip()} Loading the "
               f"routes took {g['load_s']:.0f} s; failed rounds: empty "
               f"{g['empty']['failed']}, full {g['full']['failed']}.")
    if R.get("scale"):
        s = R["scale"]
        b.note(f"Issue 9, scale: {measure_scale.__doc__.strip()} The config: global "
               f"`interval = 1s`, `timeout = 500ms`, `dry-run = yes`, one section per veth "
               f"with its own `target`. Window {s['window']:.0f} s after 8 s of settling; "
               f"transitions to down/failing in the whole run: {s['state_changes_down']}.")
    if R.get("peer"):
        p = R["peer"]
        b.note(f"Issue 9, peer: {measure_peer_watchdog.__doc__.strip()} Both in labs of "
               f"their own, {p['window']:.0f} s windows: syscalls with `strace -f -c` "
               f"attached, CPU in a second, untraced window (/proc/PID/schedstat), per second "
               f"= per watchdog cycle = per netheal round. watchdog's last lines: "
               f"{' / '.join(p['wd_lines']) or '(none: it logs to syslog)'}. The bash loop "
               f"of the table above is the third peer.")


# ---------------------------------------------------------------------------------------------
# Issue 12: the heal back-ends against the real managers. Their lab (NetworkManager 1.42 and
# systemd-networkd 252 in a test's own network and mount namespaces, a private dbus-daemon,
# dnsmasq in the peer) lives in tests/managers.rs; this part runs those tests with the release
# build and collects the one `HEAL ...` line each prints per outage.

HEAL_RX = re.compile(r"HEAL (.+?) \| heal = (\S+) \| (.+?) \| detected ([\d.]+) s \| "
                     r"step ([\d.]+) s \| healed ([\d.]+) s")
MANAGER_TESTS = ("_heals_flush_and_link_down", "_dhcp_renews_lease_without_link_bounce",
                 "_default_link_up_heals_link_down")


def measure_managers12(b, reps):
    """tests/managers.rs's heal tests, REPS times, one test at a time (`cargo test --release
    --test managers -- --test-threads=1`). Per outage: break → `-> down` (detected), the
    step's run time (`heal attempt 1: running` → its end line), and `-> down` → `-> up`
    (healed: outage detected → recovered). Timings of the tests: `-i 200ms -W 300ms -n 3`."""
    mdir = Path(os.environ.get("NETHEAL_MANAGERS_DIR", "/opt/netheal-ci/managers"))
    if not (mdir / "usr/sbin/NetworkManager").exists():
        log(f"issue 12: unpacking NetworkManager into {mdir} (.ci/managers.sh)")
        run([str(ROOT / ".ci/managers.sh")], timeout=600)
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "test", "--release", "--locked", "--test", "managers", "--",
           "--nocapture", "--test-threads=1", *MANAGER_TESTS]
    figures, failed = {}, set()
    for k in range(reps):
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           text=True, timeout=1800, stdin=subprocess.DEVNULL)
        (b.out / f"managers12-{k}.log").write_text(p.stdout)
        for line in p.stdout.splitlines():
            m = HEAL_RX.search(line)  # with --nocapture it may follow `test NAME ... `
            if m:
                f = figures.setdefault((m[1], m[2], m[3]), {"detect": [], "step": [],
                                                            "heal": []})
                for key, v in zip(("detect", "step", "heal"), m.groups()[3:]):
                    f[key].append(float(v))
        # libtest's closing list: "failures:", then one indented test name per line.
        tail = p.stdout.rsplit("\nfailures:\n", 1)
        if len(tail) == 2:
            failed |= set(re.findall(r"^    (\w+)$", tail[1], re.M))
    return {"reps": reps, "figures": figures, "failed": sorted(failed)}


def build_table12(R):
    m = R.get("managers12")
    if not m:
        return ""
    rows = []
    for (mgr, step, fault), f in sorted(m["figures"].items()):
        ran = fmt_range(f["step"], 3) if any(f["step"]) else "— (link-up at once; see the note)"
        rows.append([f"{mgr}, `heal = {step}`, {fault} (n={len(f['heal'])})",
                     fmt_range(f["heal"], 3), ran, fmt_range(f["detect"], 3)])
    for t in m["failed"]:
        rows.append([f"FAILED: `{t}` (see bench/out/managers12-*.log)", "", "", ""])
    lines = ["| heal back-end (issue 12), fault | outage detected → recovered, s | step ran, s "
             "| fault → detected, s |", "|---|---|---|---|"]
    lines += ["| " + " | ".join(c) + " |" for c in rows]
    return "\n".join(lines)


def add_method_notes12(b, R):
    if R.get("managers12"):
        b.note("Issue 12, heal back-ends: " +
               measure_managers12.__doc__.replace("\n    ", " ").strip()
               .replace("REPS", str(R["managers12"]["reps"])) +
               " Faults: `ip addr flush dev IF`, `ip link set IF down` (static addresses "
               "from the manager; `on-admin-down = heal` so the back-end, not the built-in "
               "link-up, heals it, except in the rows marked default), and for `dhcp` the "
               "peer dropping our echo requests until dnsmasq acknowledges a renewal (\"ISP "
               "drops the lease\"; `on-gateway-silent = heal`, since the gateway still "
               "answers ARP). Detection is the same for every back-end, so the first column "
               "compares the back-ends; its link-down figures include the ~0.3 s until the "
               "next round (rounds run a timeout apart in an outage). Rows marked default: "
               "target `gateway`, netheal sets the link up at once (no failed rounds "
               "first); healed = that line → the manager's configuration back (polled); "
               "under networkd 252 the ladder runs too (see tests/managers.rs).")

# 10. Issue 10 (judgement): a routed lab, HOST — ROUTER — FAR, both families; heals with an
# ICMP-filtering gateway, bounces during an upstream-only outage, admin down → link up and
# carrier loss → state change.

J_GW4, J_GW6 = "198.51.100.1", "2001:db8:1::1"
J_FAR4, J_FAR4B = "203.0.113.10", "203.0.113.11"
J_NFT_GW_ICMP = """table inet nhbgwicmp {
    chain input {
        type filter hook input priority 0; policy accept;
        icmp type echo-request drop
        icmpv6 type echo-request drop
    }
}
"""


class RouterLab:
    """HOST (IFACE 198.51.100.2/24, 2001:db8:1::2/64, default routes via ROUTER) — ROUTER
    (RIF on the host link, .1 / ::1; FIF on the far link 203.0.113.1/24, 2001:db8:2::1/64;
    forwarding on) — FAR (203.0.113.10 and .11, 2001:db8:2::10; default routes via ROUTER).
    Every veth is created inside these namespaces; names start with nhb<pid>."""

    def __init__(self, tag):
        self.tag = tag
        self.host, self.router, self.far = (f"{PREFIX}{tag}{x}" for x in "hrf")
        self.iface, self.rif = f"{PREFIX}{tag}a", f"{PREFIX}{tag}b"
        self.fif, self.farif = f"{PREFIX}{tag}c", f"{PREFIX}{tag}d"
        assert len(self.farif) <= 15, self.farif
        BENCH.labs.append(self)
        for ns in (self.host, self.router, self.far):
            run(["ip", "netns", "add", ns])
            run(["ip", "-n", ns, "link", "set", "lo", "up"])
        run(ns_exec(self.router, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                    "net.ipv6.conf.all.forwarding=1", "net.ipv6.conf.all.keep_addr_on_down=1"))
        for a, ans, b_, bns in ((self.iface, self.host, self.rif, self.router),
                                (self.fif, self.router, self.farif, self.far)):
            run(["ip", "-n", ans, "link", "add", a, "type", "veth", "peer", "name", b_,
                 "netns", bns])
            run(["ip", "-n", ans, "link", "set", a, "up"])
            run(["ip", "-n", bns, "link", "set", b_, "up"])
        for ns, ifc, addrs in ((self.host, self.iface, ["198.51.100.2/24", "2001:db8:1::2/64"]),
                               (self.router, self.rif, [f"{J_GW4}/24", f"{J_GW6}/64"]),
                               (self.router, self.fif, ["203.0.113.1/24", "2001:db8:2::1/64"]),
                               (self.far, self.farif, [f"{J_FAR4}/24", f"{J_FAR4B}/24",
                                                       "2001:db8:2::10/64"])):
            for a in addrs:
                run(["ip", "-n", ns, "addr", "add", a, "dev", ifc] +
                    (["nodad"] if ":" in a else []))
        for ns, gw4, gw6 in ((self.host, J_GW4, J_GW6), (self.far, "203.0.113.1",
                                                         "2001:db8:2::1")):
            run(["ip", "-n", ns, "-4", "route", "add", "default", "via", gw4])
            run(["ip", "-n", ns, "-6", "route", "add", "default", "via", gw6])

    def restore_host(self):
        """Address and default routes back after IFACE went down (as an admin's ifup)."""
        run(["ip", "-n", self.host, "addr", "replace", "2001:db8:1::2/64", "dev", self.iface,
             "nodad"], check=False)
        for fam, gw in (("-4", J_GW4), ("-6", J_GW6)):
            run(["ip", "-n", self.host, fam, "route", "replace", "default", "via", gw, "dev",
                 self.iface], check=False)

    def destroy(self):
        for ns in (self.host, self.router, self.far):
            for pid in run(["ip", "netns", "pids", ns], check=False).split():
                _kill_quietly(int(pid), signal.SIGKILL)  # only processes inside our namespaces
            run(["ip", "netns", "del", ns], check=False)


def judge_recorder(b, name):
    """A heal step appending one line per run (its NETHEAL_LAYER) to a file: (step, file)."""
    rec = b.out / f"{name}.record"
    step = b.out / f"{name}.sh"
    step.write_text(f"#!/bin/sh\necho \"$(date +%s.%N) $NETHEAL_LAYER $NETHEAL_FAMILY\" "
                    f">> {shlex.quote(str(rec))}\n")
    step.chmod(0o755)
    return str(step), rec


def judge_records(rec):
    return rec.read_text().splitlines() if rec.exists() else []


def nh_judge(b, lab, *opts, name):
    """netheal in lab's HOST with our empty config and no boot grace, waited for until up."""
    argv = [b.nh, "-c", str(b.conf), "--status-file", str(b.rundir / f"status-{name}"),
            "--inhibit-file", "none", "--boot-grace", "0", "--log", "stderr", *opts, lab.iface]
    p = Proc(ns_exec(lab.host, *argv), name)
    p.wait_for(r"state \S+ -> up", timeout=60)
    return p


def count_heal_starts(p, start=0):
    with p.cond:
        return sum(1 for _, l in p.lines[start:] if re.search(r"heal attempt \d+: running", l))


def start_judge_gw(b, seconds):
    """netheal `-t gateway -i 1s -W 1s`; once it is up, both families' gateways drop echo
    requests to themselves (nft input hook; they still answer ARP/NDP and forward) for
    `seconds` (at least), in the background while other parts run; heal
    step = a recorder, backoff 10s..1m. Heals = lines in the record (and `heal attempt K:
    running` lines)."""
    lab = RouterLab("jg")
    step, rec = judge_recorder(b, "judge-gw")
    p = nh_judge(b, lab, "-t", "gateway", "-i", "1s", "-W", "1s", "-a", step, "-b", "10s:1m",
                 "-v", name="judge-gw")
    # The filter comes once netheal is up (the gateway answered): a netheal that waits for a
    # first good round before healing would otherwise never heal, whatever its judgement.
    f = b.out / "nft-gwicmp.nft"
    f.write_text(J_NFT_GW_ICMP)
    run(ns_exec(lab.router, "nft", "-f", str(f)))
    return {"p": p, "rec": rec, "t0": time.monotonic(), "seconds": seconds, "mark": p.mark()}


def finish_judge_gw(b, h):
    time.sleep(max(0.0, h["seconds"] - (time.monotonic() - h["t0"])))
    p = h["p"]
    with p.cond:
        lines = [l for _, l in p.lines[h["mark"]:]]
    p.stop()
    rounds = sum(1 for l in lines if re.search(r"\bround \d+ ", l))
    took = time.monotonic() - h["t0"]
    return {"seconds": took, "rounds": rounds, "heals": len(judge_records(h["rec"])),
            "heal_lines": sum(1 for l in lines if re.search(r"heal attempt \d+: running", l)),
            "downs": sum(1 for l in lines if re.search(r"state \S+ -> down", l)),
            "silent_lines": sum(1 for l in lines if "gateway-silent" in l)}


def judge_upstream(b, seconds):
    """Quorum 2 on the two far targets, `-i 1s -W 1s -b 5s:30s -a link` (the built-in link
    bounce, the issue's bouncing step): the far side is blackholed at the router for
    `seconds`, then comes back. Bounces = `heal attempt K: running` lines during the outage;
    recovery = time from the far side's return to `-> up` (none within 60 s when a bounce took
    the default route away)."""
    lab = RouterLab("ju")
    p = nh_judge(b, lab, "-t", J_FAR4, "-t", J_FAR4B, "-k", "2", "-i", "1s", "-W", "1s",
                 "-b", "5s:30s", "-a", "link", "-v", name="judge-up")
    mark = p.mark()
    run(ns_exec(lab.router, "tc", "qdisc", "add", "dev", lab.fif, "root", "blackhole"))
    t_kill = time.time()
    res = {"seconds": seconds, "down_s": None, "layer_line": None, "recovery_s": None}
    with contextlib.suppress(BenchError):
        _, t, m = p.wait_for(r"state \S+ -> down.*", mark, timeout=30)
        res["down_s"], res["layer_line"] = t - t_kill, m[0]
    time.sleep(max(0.0, seconds - (time.time() - t_kill)))
    res["bounces"] = count_heal_starts(p, mark)
    run(ns_exec(lab.router, "tc", "qdisc", "del", "dev", lab.fif, "root"))
    t_back = time.time()
    mark2 = p.mark()
    with contextlib.suppress(BenchError):
        _, t, _ = p.wait_for(r"state \S+ -> up", mark2, timeout=60)
        res["recovery_s"] = t - t_back
    res["route_after"] = run(["ip", "-n", lab.host, "-4", "route", "show", "default"],
                             check=False).strip()
    p.stop()
    return res


def judge_events(b, n):
    """Admin down and peer carrier loss, n times each, netheal `-t gateway -i 10s -W 300ms
    -a RECORDER` (a round every 10 s: what happens at once is event-driven). t0 =
    time.time() just before the `ip link set` (ip's own exec included). Admin down: `ip -n
    HOST monitor link` stamps the moment IFACE is UP again (netheal's link-up); the recorder
    must not run. Carrier: netheal's first `state ... -> ...` line after t0. Each case is
    undone (link up, routes back; carrier back) and netheal up again before the next."""
    lab = RouterLab("je")
    step, rec = judge_recorder(b, "judge-ev")
    p = nh_judge(b, lab, "-t", "gateway", "-i", "10s", "-W", "300ms", "-a", step, "-b", "1s",
                 name="judge-ev")
    mon = Proc(["ip", "-n", lab.host, "-o", "monitor", "link"], "judge-ev-monitor")
    time.sleep(0.5)
    res = {"admin_up": [], "admin_logged": [], "admin_steps": 0, "carrier_state": [],
           "carrier_logged": [], "misses": []}
    up_rx = rf"\b{re.escape(lab.iface)}\b.*<([^>]*,)?UP[,>]"
    for _ in range(n):
        time.sleep(random.uniform(1.0, 2.0))
        before = len(judge_records(rec))
        mark, mmark = p.mark(), mon.mark()
        t0 = time.time()
        run(["ip", "-n", lab.host, "link", "set", lab.iface, "down"])
        try:
            _, tu, _ = mon.wait_for(up_rx, mmark + 1, timeout=30)
            res["admin_up"].append(tu - t0)
            _, tl, _ = p.wait_for(r"admin-down|link-up|set up|link up", mark, timeout=5)
            res["admin_logged"].append(tl - t0)
        except BenchError as e:
            res["misses"].append(f"admin: {str(e).splitlines()[0]}")
            run(["ip", "-n", lab.host, "link", "set", lab.iface, "up"])
        res["admin_steps"] += len(judge_records(rec)) - before
        lab.restore_host()
        with contextlib.suppress(BenchError):
            p.wait_for(r"state \S+ -> up", mark, timeout=30)
        time.sleep(random.uniform(1.0, 2.0))
        mark = p.mark()
        t0 = time.time()
        run(["ip", "-n", lab.router, "link", "set", lab.rif, "down"])
        try:
            _, tl, _ = p.wait_for(r"carrier", mark, timeout=5)
            res["carrier_logged"].append(tl - t0)
            _, ts, _ = p.wait_for(r"state \S+ -> ", mark, timeout=10)
            res["carrier_state"].append(ts - t0)
        except BenchError as e:
            res["misses"].append(f"carrier: {str(e).splitlines()[0]}")
        run(["ip", "-n", lab.router, "link", "set", lab.rif, "up"])
        with contextlib.suppress(BenchError):
            p.wait_for(r"state \S+ -> up", p.mark(), timeout=30)
    mon.stop()
    p.stop()
    return res


def measure_judge(b, gw):
    """The foreground parts; `gw` is the handle of start_judge_gw, finished last."""
    res = {}
    log("issue 10: upstream-only outage, quorum 2, ladder `link`")
    res["up"] = judge_upstream(b, 20 if b.quick else 60)
    n = 2 if b.quick else 5
    log(f"issue 10: admin down / carrier loss, {n} each")
    res["ev"] = judge_events(b, n)
    log("issue 10: waiting for the ICMP-filtering gateway run to end")
    res["gw"] = finish_judge_gw(b, gw)
    return res


def build_table10(R):
    j = R.get("judge")
    if not j:
        return ""
    rows = []
    g = j["gw"]
    rows.append([f"heals, gateway drops ICMP to itself (answers ARP/NDP), `-t gateway -i 1s "
                 f"-W 1s`, {g['seconds'] / 60:.1f} min, {g['rounds']} rounds (goal 0)",
                 f"{g['heals']} (state down {g['downs']} times; {g['silent_lines']} lines "
                 f"name gateway-silent)"])
    u = j["up"]
    rows.append([f"bounces (`link` step runs) during a {u['seconds']} s upstream-only outage, "
                 "quorum 2 (goal 0)",
                 f"{u['bounces']}; down after {u['down_s']:.2f} s: `{u['layer_line']}`"
                 if u["down_s"] is not None else f"{u['bounces']}; no `-> down` line"])
    rows.append(["recovery after the far side returned, s (default route afterwards)",
                 (f"{u['recovery_s']:.2f}" if u["recovery_s"] is not None else
                  "none within 60 s") + f" (`{u['route_after'] or 'no default route'}`)"])
    e = j["ev"]
    rows.append([f"admin down → IFACE up again (ip monitor), ms (n={len(e['admin_up'])}, goal "
                 "≤ 200)", fmt_range(e["admin_up"], 1, 1000) if e["admin_up"] else "never"])
    rows.append(["admin down → netheal's line about it, ms; ladder steps run",
                 (fmt_range(e["admin_logged"], 1, 1000) if e["admin_logged"] else "none") +
                 f"; {e['admin_steps']}"])
    rows.append(["carrier lost → netheal's `carrier lost` line, ms",
                 fmt_range(e["carrier_logged"], 1, 1000) if e["carrier_logged"] else "none"])
    rows.append([f"carrier lost → state change logged, ms (n={len(e['carrier_state'])}, goal "
                 "≤ 50; `-W 300ms`: the change waits for the confirming round)",
                 fmt_range(e["carrier_state"], 1, 1000) if e["carrier_state"] else "none"])
    if e["misses"]:
        rows.append(["missed events", "; ".join(e["misses"])])
    lines = ["| measure (issue 10) | figure |", "|---|---|"]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return "\n".join(lines)


def add_method_notes10(b, R):
    if R.get("judge"):
        for f in (start_judge_gw, judge_upstream, judge_events):
            b.note("Issue 10, " + f.__doc__.replace("\n    ", " ").strip() + " Lab: " +
                   RouterLab.__doc__.replace("\n    ", " ").strip())


# ---------------------------------------------------------------------------------------------

def main():
    global BENCH
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--netheal", default=str(ROOT / "target/release/netheal"))
    ap.add_argument("--out", default=str(BENCH_DIR / "results.md"))
    ap.add_argument("--quick", action="store_true", help="fewer runs, for trying the bench")
    ap.add_argument("--only", default=os.environ.get("BENCH_PARTS", ""),
                    help="comma list: sizes,cost,instr,memory,latency,false,idle,soak and the "
                    "issue 9 parts round9,rewrites,events9,bigtable,scale,peer, issue 10's judge "
                    "(BENCH_JUDGE_SECS: its filtered-gateway run, default 300, 60 quick) and tcp, "
                    "issue 12's managers12 (default: "
                    "$BENCH_PARTS, else all)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: needs root (network namespaces, raw sockets, mounts)")
    if not os.access(args.netheal, os.X_OK):
        sys.exit(f"bench: {args.netheal}: not found (cargo build --release)")
    only = set(filter(None, args.only.split(",")))
    tools = ("ip", "strace", "valgrind", "callgrind_control", "ping", "busybox", "ifup",
             "ifdown", "nft", "tc", "bash", "watchdog", "setpriv", "unshare")
    if only and only <= {"judge"}:
        tools = ("ip", "nft", "tc", "sysctl")  # the judge part alone needs no more
    # managers12 runs tests/managers.rs, which checks its own tools.
    if only and only <= {"managers12"}:
        tools = ()
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"bench: {tool} missing (bench/setup.sh installs it)")

    def want(x):
        return not only or x in only

    BENCH = b = Bench(args)
    shutil.rmtree(b.out, ignore_errors=True)
    b.out.mkdir(parents=True)
    b.bindir = b.out / "bin"
    b.bindir.mkdir()
    if shutil.which("ping"):  # absent only when the judge part runs alone
        shutil.copy(shutil.which("ping"), b.bindir / "ping")  # a copy has no capabilities
    b.conf.write_text("# netheal bench: no settings (netheal refuses a group-writable file)\n")
    b.conf.chmod(0o644)
    b.rundir.mkdir(mode=0o755)
    # Nothing of the caller's systemd service (if any) may reach the processes measured.
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID", "NETHEAL_TEST_STALL_AFTER"):
        os.environ.pop(k, None)

    stop_signals = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def on_signal(sig, _frame):
        for s in stop_signals:  # a second ^C must not cut the cleanup short
            signal.signal(s, signal.SIG_IGN)
        log(f"stopped by signal {sig}: removing the lab")
        raise SystemExit(128 + sig)

    # Installed explicitly: a shell starting us in the background may have SIGINT ignored.
    for s in stop_signals:
        signal.signal(s, on_signal)
    R = {}
    facts = machine_facts(b)  # the commit as the run starts
    try:
        soak_rounds = 5000 if args.quick else 100000
        if want("soak"):
            log(f"soak: starting {soak_rounds} rounds at -i 5ms in the background")
            soak = start_soak(b, Lab("s"), soak_rounds, "5ms")
        if want("rewrites"):
            rw_window = 20 if args.quick else 60
            log(f"status file rewrites: {rw_window} s in the background")
            rewrites = start_rewrites(b, rw_window)
        if want("judge"):
            jsecs = float(os.environ.get("BENCH_JUDGE_SECS", 60 if args.quick else 300))
            log(f"issue 10: ICMP-filtering gateway, {jsecs:.0f} s in the background")
            judge_gw = start_judge_gw(b, jsecs)
        if want("sizes"):
            R["sizes"] = measure_sizes(b)
        if want("cost") or want("instr"):
            lab = Lab("c")
        if want("cost"):
            log("cost: netheal (strace windows, CPU windows)")
            c = {"netheal": measure_cost_netheal(b, lab),
                 "netheal_nostatus": measure_cost_netheal(b, lab, status_file=False, reps=3)}
            log("cost: bash loop")
            c["loop"] = measure_cost_loop(b, lab)
            log("cost: ping -c1")
            c["iputils"] = measure_cost_ping(b, lab, "iputils")
            c["busybox"] = measure_cost_ping(b, lab, "busybox")
            R["cost"] = c
        if want("instr"):
            log("instructions: netheal under callgrind")
            i = {"netheal": measure_instr_netheal(b, lab),
                 "netheal_nostatus": measure_instr_netheal(b, lab, status_file=False, reps=2)}
            log("instructions: bash loop, ping")
            i["loop"] = measure_instr_loop(b, lab)
            i["iputils"] = measure_instr_ping(b, lab, "iputils")
            i["busybox"] = measure_instr_ping(b, lab, "busybox")
            R["instr"] = i
        if want("memory"):
            log("memory")
            R["memory"] = measure_memory(b, [Lab(f"m{k}") for k in range(3)])
        if want("idle"):
            window = 15 if args.quick else 60
            log(f"idle: {window} s window in the background")
            idle = start_idle(b, [Lab(f"i{k}") for k in range(3)], Lab("in"), Lab("il"),
                              window)
        if want("latency"):
            n = 2 if args.quick else 10
            lat = {"n": n, "silent_drop": check_silent_drop(b, Lab("lc", address=False))}
            log(f"latency: netheal, {n} injections x {len(FAULTS)} faults")
            lat["netheal"] = measure_latency_netheal(b, Lab("ln", address=False), n)
            log(f"latency: bash loop, {n} injections x {len(FAULTS)} faults")
            lat["loop"] = measure_latency_loop(b, Lab("ll", address=False), n)
            R["latency"] = lat
        if want("idle"):
            R["idle"] = finish_idle(b, idle)
        if want("false"):
            rounds = 60 if args.quick else 300
            log(f"false heals: {rounds} rounds under 30% loss")
            R["false_heals"] = measure_false_heals(b, Lab("fn"), Lab("fl"), rounds)
        if want("round9"):
            log("issue 9: syscalls, instructions, allocations per gateway round")
            R["round9"] = measure_round9(b)
        if want("events9"):
            n9 = 2 if args.quick else 5
            log(f"issue 9: carrier lost / admin down latency, {n9} each")
            R["events9"] = measure_events9(b, n9)
        if want("rewrites"):
            R["rewrites"] = finish_rewrites(b, rewrites)
        if want("bigtable"):
            log("issue 9: gateway with a 200 000-route table")
            R["bigtable"] = measure_bigtable(b)
        if want("scale"):
            log("issue 9: 256 interfaces in one process")
            R["scale"] = measure_scale(b)
        if want("peer"):
            log("issue 9: Debian's watchdog(8) -q side by side with netheal")
            R["peer"] = measure_peer_watchdog(b)
        if want("tcp"):
            log("issue 10: syscalls and instructions per round with one tcp: target")
            R["tcp"] = measure_tcp(b)
        if want("managers12"):
            reps = 1 if args.quick else 3
            log(f"issue 12: heal back-ends against NetworkManager and networkd, {reps} runs")
            R["managers12"] = measure_managers12(b, reps)
        if want("judge"):
            R["judge"] = measure_judge(b, judge_gw)
        if want("soak"):
            log("soak: waiting for it to finish")
            R["soak"] = finish_soak(b, soak, budget=900)
    finally:
        b.cleanup()
    wall = time.monotonic() - T0
    add_method_notes(b, R)
    add_method_notes9(b, R)
    add_method_notes12(b, R)
    add_method_notes10(b, R)
    add_method_notes_tcp(b, R)
    table = build_table(R)
    for extra in (build_table9(R), build_table10(R), build_table_tcp(R), build_table12(R)):
        if extra:
            table = (table + "\n\n" + extra) if table else extra
    write_results(b, R, table, facts, wall)
    print(table)
    print(f"\n(bench: {wall / 60:.1f} min; written to {args.out})")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
