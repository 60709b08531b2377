//! What netheal tells the outside world about its interfaces: the status file (one line of
//! `key=value` pairs per interface, read back by `netheal --status`) and the Prometheus text
//! exposition for node_exporter's textfile collector. Formatting is pure; `write_atomic`
//! replaces a file so that a reader sees the old or the new content, never a mix.
#![forbid(unsafe_code)]

use std::fmt::Write as _;
use std::io::{self, Write};
use std::path::Path;
use std::time::Duration;

use crate::civil::timestamp;
use crate::decide::State;
use crate::diagnose::Layer;
use crate::probe::Stats;
use crate::wire::Family;

/// `ipv4` / `ipv6`: the family's name in status keys, labels and NETHEAL_FAMILY.
pub fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "ipv4",
        Family::V6 => "ipv6",
    }
}

const STATES: [State; 6] = [
    State::Starting,
    State::Up,
    State::Suspect,
    State::Down,
    State::Healing,
    State::Recovering,
];

/// How the last heal attempt went: the step's success and when it ended (Unix seconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LastHeal {
    pub ok: bool,
    pub at: i64,
}

/// One interface's figures at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub iface: String,
    pub state: State,
    /// Unix seconds when the state began.
    pub since: i64,
    pub stats: Stats,
    pub heals: u64,
    pub last_heal: Option<LastHeal>,
    pub machine: MachineStatus,
    /// Targets that are this host's own addresses (not probed, not counted).
    pub own_targets: Vec<std::net::IpAddr>,
    /// One per judged family (a family is judged when the interface has targets of it),
    /// IPv4 first.
    pub lanes: Vec<LaneStatus>,
    /// Every configured target's evidence since start, in configuration order.
    pub targets: Vec<TargetStatus>,
}

/// One family's lane: the layer its last diagnosis found and its own state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LaneStatus {
    pub family: Family,
    pub layer: Layer,
    pub state: State,
}

/// One target's evidence since start, for post-mortems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetStatus {
    /// As configured: `198.51.100.1`, `gateway`, `tcp:203.0.113.10:443`, `dns:[2001:db8::53]`.
    pub target: String,
    /// Rounds it answered in, and rounds it did not (one attempt per round or count echoes:
    /// whatever the prober counts per target).
    pub answered: u64,
    pub lost: u64,
    /// The round-trip time of its last answer.
    pub rtt: Option<Duration>,
}

/// The lane that speaks for the interface: the worst state, then the earlier failing layer in
/// diagnosis order (a lane that is `ok` loses to one that is not), then IPv4 before IPv6.
pub fn worst_lane(lanes: &[LaneStatus]) -> Option<&LaneStatus> {
    lanes.iter().min_by_key(|l| {
        (
            std::cmp::Reverse(l.state.badness()),
            l.layer,
            l.family as u8,
        )
    })
}

/// Holds, inhibit and the reboot budget, as one watch sees them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MachineStatus {
    /// Unix time an inhibit ends, while one holds.
    pub inhibited_until: Option<i64>,
    /// Why heals are held back now: inhibit, boot-grace or not-yet-up.
    pub held: Option<&'static str>,
    /// (remaining, max), for a ladder with a reboot step whose budget could be read.
    pub reboot_budget: Option<(u32, u32)>,
    pub budget_error: bool,
    /// `reboot budget spent (3 in 24h)`.
    pub degraded: Option<String>,
}

impl MachineStatus {
    /// ` held=... inhibited_until=... reboot_budget=... degraded=...` for the status file;
    /// spaces in the degraded text become underscores (values are single words).
    fn fields(&self) -> String {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "none".into());
        format!(
            " held={} inhibited_until={} reboot_budget={} degraded={}",
            self.held.unwrap_or("none"),
            opt(self.inhibited_until.map(|t| t.to_string())),
            if self.budget_error {
                "unreadable".to_string()
            } else {
                opt(self.reboot_budget.map(|(r, m)| format!("{r}/{m}")))
            },
            opt(self.degraded.as_ref().map(|d| d.replace(' ', "_"))),
        )
    }
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("-".into(), |d| format!("{:.3}", d.as_secs_f64() * 1e3))
}

/// The status file: a comment header, then one line per interface.
pub fn status_text(snaps: &[Snapshot], pid: u32, now: i64) -> String {
    let mut s = format!(
        "# netheal {} status, pid {pid}, written {}\n",
        env!("CARGO_PKG_VERSION"),
        timestamp(now)
    );
    for x in snaps {
        let st = &x.stats;
        let _ = write!(
            s,
            "iface={} state={} since={} rounds={} failed_rounds={} replies={} lost={} foreign={} rtt_min_ms={} rtt_avg_ms={} rtt_max_ms={} heals={}",
            x.iface,
            x.state,
            x.since,
            st.rounds,
            st.rounds.saturating_sub(st.good_rounds),
            st.replies,
            st.lost,
            st.foreign,
            ms(st.rtt_min),
            ms(st.rtt_avg()),
            ms(st.rtt_max),
            x.heals,
        );
        match x.last_heal {
            None => s.push_str(" last_heal=none"),
            Some(h) => {
                let _ = write!(
                    s,
                    " last_heal={} last_heal_at={}",
                    if h.ok { "ok" } else { "failed" },
                    h.at
                );
            }
        }
        let _ = write!(s, " icmp_errors={}", st.icmp_errors);
        if !x.own_targets.is_empty() {
            let list: Vec<String> = x.own_targets.iter().map(ToString::to_string).collect();
            let _ = write!(s, " own_address_targets={}", list.join(","));
        }
        s += &x.machine.fields();
        s += &lane_fields(x);
        s.push('\n');
    }
    s
}

/// ` layer=... layer_ipv4=... state_ipv4=... target.0=ADDR target.0.answered=...`: appended
/// after the older keys, so readers of those see no change. No lanes (nothing judged): no
/// layer keys; a family without targets: no keys of its own.
fn lane_fields(x: &Snapshot) -> String {
    let mut s = String::new();
    if let Some(w) = worst_lane(&x.lanes) {
        let _ = write!(s, " layer={}", w.layer);
    }
    for l in &x.lanes {
        let f = family_name(l.family);
        let _ = write!(s, " layer_{f}={} state_{f}={}", l.layer, l.state);
    }
    for (i, t) in x.targets.iter().enumerate() {
        let _ = write!(
            s,
            " target.{i}={} target.{i}.answered={} target.{i}.lost={} target.{i}.rtt_ms={}",
            t.target.replace(char::is_whitespace, "_"),
            t.answered,
            t.lost,
            ms(t.rtt)
        );
    }
    s
}

/// Reads a status file back into rows of (key, value) pairs, one row per interface.
pub fn parse_status(text: &str) -> Vec<Vec<(String, String)>> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            l.split_whitespace()
                .filter_map(|kv| kv.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// `netheal --status`: the status file as a table for people.
pub fn pretty_status(text: &str, now: i64) -> String {
    let header = text
        .lines()
        .next()
        .filter(|l| l.starts_with('#'))
        .unwrap_or("")
        .trim_start_matches("# ");
    let mut rows = vec![[
        "IFACE",
        "STATE",
        "LAYER",
        "FOR",
        "ROUNDS",
        "FAILED",
        "LOST",
        "RTT MIN/AVG/MAX MS",
        "HEALS",
        "LAST HEAL",
        "NOTE",
    ]
    .map(String::from)
    .to_vec()];
    for r in parse_status(text) {
        let get = |k: &str| {
            r.iter()
                .find(|(key, _)| key == k)
                .map_or("?".to_string(), |(_, v)| v.clone())
        };
        let since: Option<i64> = get("since").parse().ok();
        let dur = since.map_or("?".into(), |t| {
            // Saturating: a `since=` far in the past or future is the file's fault, not a panic.
            crate::config::human(Duration::from_secs(now.saturating_sub(t).max(0) as u64))
        });
        let last = match get("last_heal").as_str() {
            "none" => "none".to_string(),
            v => match get("last_heal_at").parse::<i64>() {
                Ok(at) => format!("{v} at {}", timestamp(at)),
                Err(_) => v.to_string(),
            },
        };
        rows.push(vec![
            get("iface"),
            get("state"),
            layers(&r),
            dur,
            get("rounds"),
            get("failed_rounds"),
            get("lost"),
            format!(
                "{}/{}/{}",
                get("rtt_min_ms"),
                get("rtt_avg_ms"),
                get("rtt_max_ms")
            ),
            get("heals"),
            last,
            note(&get),
        ]);
    }
    let mut out = format!("{header}\n");
    out += &columns(&rows);
    let mut targets = vec![["IFACE", "TARGET", "ANSWERED", "LOST", "LAST RTT MS"]
        .map(String::from)
        .to_vec()];
    for r in parse_status(text) {
        let get = |k: &str| r.iter().find(|(key, _)| key == k).map(|(_, v)| v.clone());
        let iface = get("iface").unwrap_or_else(|| "?".into());
        for i in 0.. {
            let Some(t) = get(&format!("target.{i}")) else {
                break;
            };
            let n = |k: &str| get(&format!("target.{i}.{k}")).unwrap_or_else(|| "?".into());
            targets.push(vec![
                iface.clone(),
                t,
                n("answered"),
                n("lost"),
                n("rtt_ms"),
            ]);
        }
    }
    if targets.len() > 1 {
        out.push('\n');
        out += &columns(&targets);
    }
    out
}

/// Rows of cells as left-aligned columns two spaces apart, trailing blanks trimmed.
fn columns(rows: &[Vec<String>]) -> String {
    let widths: Vec<usize> = (0..rows.first().map_or(0, Vec::len))
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let cells: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out += cells.join("  ").trim_end();
        out.push('\n');
    }
    out
}

/// The LAYER column: each judged family's layer (`ipv4 ok, ipv6 no-route`), with the lane's
/// state when it differs from the interface's; `-` from a writer without lanes.
fn layers(r: &[(String, String)]) -> String {
    let get = |k: &str| r.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
    let parts: Vec<String> = ["ipv4", "ipv6"]
        .into_iter()
        .filter_map(|f| {
            let layer = get(&format!("layer_{f}"))?;
            Some(match get(&format!("state_{f}")) {
                Some(st) if Some(st) != get("state") => format!("{f} {layer} ({st})"),
                _ => format!("{f} {layer}"),
            })
        })
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

/// The NOTE column: inhibit, hold, degraded state.
fn note(get: &dyn Fn(&str) -> String) -> String {
    let mut notes = Vec::new();
    match (get("held").as_str(), get("inhibited_until").parse::<i64>()) {
        (_, Ok(t)) => notes.push(format!("inhibited until {}", timestamp(t))),
        ("boot-grace", _) => notes.push("boot grace".to_string()),
        ("not-yet-up", _) => notes.push("heals wait for a first good round".to_string()),
        _ => {}
    }
    match get("degraded").as_str() {
        "none" | "?" => {}
        d => notes.push(format!("degraded: {}", d.replace('_', " "))),
    }
    if get("reboot_budget") == "unreadable" {
        notes.push("reboot budget unreadable: reboot refused".to_string());
    }
    notes.join("; ")
}

/// Prometheus text exposition format 0.0.4: HELP and TYPE once per metric family, one sample
/// per interface (label `iface`).
pub fn metrics_text(snaps: &[Snapshot]) -> String {
    let mut s = String::new();
    let mut family = |name: &str,
                      kind: &str,
                      help: &str,
                      samples: &mut dyn Iterator<Item = (String, String)>| {
        let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}");
        for (labels, value) in samples {
            let _ = writeln!(s, "{name}{{{labels}}} {value}");
        }
    };
    let label = |x: &Snapshot| format!("iface=\"{}\"", escape_label(&x.iface));
    let counter = |f: fn(&Snapshot) -> u64| move |x: &Snapshot| (label(x), f(x).to_string());
    family(
        "netheal_up",
        "gauge",
        "1 while the interface is up (state up or suspect), else 0.",
        &mut snaps.iter().map(|x| {
            (
                label(x),
                u8::from(matches!(x.state, State::Up | State::Suspect)).to_string(),
            )
        }),
    );
    family(
        "netheal_state",
        "gauge",
        "The watchdog state: 1 for the current one.",
        &mut snaps.iter().flat_map(|x| {
            STATES.iter().map(move |st| {
                (
                    format!("{},state=\"{st}\"", label(x)),
                    u8::from(*st == x.state).to_string(),
                )
            })
        }),
    );
    family(
        "netheal_layer",
        "gauge",
        "The layer the last diagnosis of each family found: 1 for the current one (ok when nothing fails).",
        &mut snaps.iter().flat_map(|x| {
            x.lanes.iter().flat_map(move |l| {
                Layer::ALL.iter().map(move |layer| {
                    (
                        format!(
                            "{},family=\"{}\",layer=\"{layer}\"",
                            label(x),
                            family_name(l.family)
                        ),
                        u8::from(*layer == l.layer).to_string(),
                    )
                })
            })
        }),
    );
    family(
        "netheal_state_since_seconds",
        "gauge",
        "Unix time the current state began.",
        &mut snaps.iter().map(|x| (label(x), x.since.to_string())),
    );
    let counters: [MetricDef<u64, Snapshot>; 8] = [
        ("netheal_rounds_total", "Probe rounds ended.", |x| {
            x.stats.rounds
        }),
        (
            "netheal_rounds_failed_total",
            "Probe rounds that failed.",
            |x| x.stats.rounds.saturating_sub(x.stats.good_rounds),
        ),
        (
            "netheal_echoes_sent_total",
            "ICMP echo requests sent.",
            |x| x.stats.sent,
        ),
        (
            "netheal_replies_total",
            "Matching echo replies received.",
            |x| x.stats.replies,
        ),
        (
            "netheal_lost_total",
            "Echoes lost: unanswered in a round their target did not answer, or a timeout after they were sent.",
            |x| x.stats.lost,
        ),
        (
            "netheal_icmp_errors_total",
            "Destination unreachable and time exceeded messages about our echoes.",
            |x| x.stats.icmp_errors,
        ),
        (
            "netheal_foreign_total",
            "Packets received that were not replies to our echoes.",
            |x| x.stats.foreign,
        ),
        ("netheal_heals_total", "Heal attempts started.", |x| x.heals),
    ];
    for (name, help, f) in counters {
        family(name, "counter", help, &mut snaps.iter().map(counter(f)));
    }
    let rtts: [MetricDef<Option<Duration>, Stats>; 3] = [
        (
            "netheal_rtt_min_seconds",
            "Smallest round-trip time seen.",
            |s| s.rtt_min,
        ),
        ("netheal_rtt_avg_seconds", "Mean round-trip time.", |s| {
            s.rtt_avg()
        }),
        (
            "netheal_rtt_max_seconds",
            "Largest round-trip time seen.",
            |s| s.rtt_max,
        ),
    ];
    for (name, help, f) in rtts {
        let mut samples = snaps
            .iter()
            .filter_map(|x| f(&x.stats).map(|d| (label(x), format!("{:.6}", d.as_secs_f64()))));
        family(name, "gauge", help, &mut samples);
    }
    family(
        "netheal_inhibited",
        "gauge",
        "1 while netheal --inhibit holds this interface's heals back.",
        &mut snaps.iter().map(|x| {
            (
                label(x),
                u8::from(x.machine.inhibited_until.is_some()).to_string(),
            )
        }),
    );
    family(
        "netheal_heal_held",
        "gauge",
        "1 while heals are held back (inhibit, boot grace, or no good round yet since start).",
        &mut snaps
            .iter()
            .map(|x| (label(x), u8::from(x.machine.held.is_some()).to_string())),
    );
    family(
        "netheal_degraded",
        "gauge",
        "1 while degraded: the reboot budget is spent (no reboot; other steps go on).",
        &mut snaps
            .iter()
            .map(|x| (label(x), u8::from(x.machine.degraded.is_some()).to_string())),
    );
    family(
        "netheal_reboot_budget_remaining",
        "gauge",
        "Reboots the budget still allows now (ladders with a reboot step; absent if unreadable).",
        &mut snaps.iter().filter_map(|x| {
            x.machine
                .reboot_budget
                .map(|(r, _)| (label(x), r.to_string()))
        }),
    );
    family(
        "netheal_last_heal_success",
        "gauge",
        "1 if the last heal step succeeded, 0 if it failed (absent before the first).",
        &mut snaps
            .iter()
            .filter_map(|x| x.last_heal.map(|h| (label(x), u8::from(h.ok).to_string()))),
    );
    family(
        "netheal_last_heal_timestamp_seconds",
        "gauge",
        "Unix time the last heal step ended.",
        &mut snaps
            .iter()
            .filter_map(|x| x.last_heal.map(|h| (label(x), h.at.to_string()))),
    );
    let target = |x: &Snapshot, t: &TargetStatus| {
        format!("{},target=\"{}\"", label(x), escape_label(&t.target))
    };
    let per_target: [MetricDef<u64, TargetStatus>; 2] = [
        (
            "netheal_target_replies_total",
            "Rounds in which this target answered.",
            |t| t.answered,
        ),
        (
            "netheal_target_lost_total",
            "Rounds in which this target was probed and did not answer.",
            |t| t.lost,
        ),
    ];
    for (name, help, f) in per_target {
        family(
            name,
            "counter",
            help,
            &mut snaps.iter().flat_map(|x| {
                x.targets
                    .iter()
                    .map(move |t| (target(x, t), f(t).to_string()))
            }),
        );
    }
    family(
        "netheal_target_rtt_seconds",
        "gauge",
        "Round-trip time of this target's last answer (absent before its first).",
        &mut snaps.iter().flat_map(|x| {
            x.targets.iter().filter_map(move |t| {
                t.rtt
                    .map(|d| (target(x, t), format!("{:.6}", d.as_secs_f64())))
            })
        }),
    );
    // Last: the file still begins with netheal_up and its interface families, as before.
    family(
        "netheal_build_info",
        "gauge",
        "Always 1; the labels say which netheal build wrote this file.",
        &mut std::iter::once((build_info_labels(), "1".to_string())),
    );
    s
}

/// The labels of `netheal_build_info`: version, commit and target triple, as `--version`
/// prints them (build.rs).
fn build_info_labels() -> String {
    format!(
        "version=\"{}\",commit=\"{}\",target=\"{}\"",
        escape_label(env!("CARGO_PKG_VERSION")),
        escape_label(env!("NETHEAL_COMMIT")),
        escape_label(env!("NETHEAL_TARGET"))
    )
}

/// A metric family: name, help text, and how to read its value.
type MetricDef<V, From> = (&'static str, &'static str, fn(&From) -> V);

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Replaces `path` with `content`: write a temporary file beside it, then rename over it
/// (rename(2) is atomic within a file system). Creates the directory if needed.
///
/// The temporary file is root's to create, in a directory others may write to: it gets an
/// unpredictable name and is opened with O_CREAT|O_EXCL|O_NOFOLLOW, so a planted file or
/// symlink (the old `.NAME.PID.tmp` was both predictable and followed) makes the open fail
/// instead of making root write through it; what was opened is checked with fstat(2).
///
/// No fsync(2): the status and metrics files live in /run (tmpfs, gone after a crash anyway)
/// or are rewritten every few rounds, describe only the running process, and an fsync on a busy
/// disk can stall the poll loop for seconds, which is worse than a stale file after a power
/// cut.
pub fn write_atomic(path: &Path, content: &str) -> io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (tmp, mut f) = create_temp(dir, &name)?;
    let result = (|| {
        use std::os::unix::fs::{MetadataExt, PermissionsExt};
        let m = f.metadata()?;
        if !m.file_type().is_file() || m.nlink() != 1 {
            return Err(io::Error::other(format!(
                "{}: not the file just created",
                tmp.display()
            )));
        }
        // Readable by monitoring agents that do not run as root, whatever the umask.
        f.set_permissions(std::fs::Permissions::from_mode(0o644))?;
        f.write_all(content.as_bytes())?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp); // not fatal: best effort clean-up of our own temp file
    }
    result
}

/// A name nobody can guess ahead of us: std's RandomState is keyed from the OS's random
/// source once per thread; hashing a counter and the clock with it needs no extra fd per write.
fn temp_name(name: &str) -> String {
    use std::hash::{BuildHasher, Hasher};
    // 32 bits: 32-bit MIPS and PowerPC have no AtomicU64 (E0432 there), and a counter that
    // wraps only salts the hash.
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u32(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    h.write_u32(std::process::id());
    format!(".{name}.{:016x}.tmp", h.finish())
}

fn create_temp(dir: &Path, name: &str) -> io::Result<(std::path::PathBuf, std::fs::File)> {
    use std::os::unix::fs::OpenOptionsExt;
    let create = |tmp: &Path| {
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true) // O_CREAT|O_EXCL: never an existing file, never through a symlink
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NOCTTY)
            .mode(0o600)
            .open(tmp)
    };
    let mut made_dir = false;
    let mut last = None;
    for _ in 0..8 {
        let tmp = dir.join(temp_name(name));
        match create(&tmp) {
            Ok(f) => return Ok((tmp, f)),
            // The directory (/run/netheal) is made on the first write only, not checked every time.
            Err(e) if e.kind() == io::ErrorKind::NotFound && !made_dir => {
                std::fs::create_dir_all(dir)?;
                made_dir = true;
            }
            // Someone planted this very name: take another.
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::other("no temporary file could be created")))
}

/// The pid a status file names in its header (`# netheal VERSION status, pid N, ...`).
pub fn status_pid(text: &str) -> Option<u32> {
    let header = text.lines().next()?.strip_prefix("# netheal ")?;
    let rest = &header[header.find(", pid ")? + 6..];
    rest.split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(iface: &str, state: State, heal: Option<LastHeal>) -> Snapshot {
        let stats = Stats {
            rounds: 10,
            good_rounds: 7,
            sent: 16,
            replies: 8,
            lost: 8,
            foreign: 2,
            rtt_min: Some(Duration::from_micros(100)),
            rtt_max: Some(Duration::from_micros(500)),
            rtt_sum: Duration::from_micros(2400),
            ..Stats::default()
        };
        Snapshot {
            iface: iface.into(),
            state,
            since: 1_763_748_000,
            stats,
            heals: 1,
            last_heal: heal,
            machine: MachineStatus::default(),
            own_targets: Vec::new(),
            lanes: Vec::new(),
            targets: Vec::new(),
        }
    }

    /// eth0 with an IPv4 lane healthy and an IPv6 lane down at `upstream`, two targets.
    fn two_lanes() -> Snapshot {
        let mut x = snap("eth0", State::Down, None);
        x.lanes = vec![
            LaneStatus {
                family: Family::V4,
                layer: Layer::Ok,
                state: State::Up,
            },
            LaneStatus {
                family: Family::V6,
                layer: Layer::Upstream,
                state: State::Down,
            },
        ];
        x.targets = vec![
            TargetStatus {
                target: "198.51.100.1".into(),
                answered: 9,
                lost: 1,
                rtt: Some(Duration::from_micros(412)),
            },
            TargetStatus {
                target: "tcp:[2001:db8::1]:443".into(),
                answered: 0,
                lost: 10,
                rtt: None,
            },
        ];
        x
    }

    #[test]
    fn status_names_the_layer_of_each_family_and_every_target() {
        let text = status_text(&[two_lanes()], 1, 0);
        let line = text.lines().nth(1).unwrap();
        assert!(
            line.starts_with("iface=eth0 state=down since=1763748000 rounds=10 "),
            "the older keys come first, unchanged: {line}"
        );
        assert!(
            line.ends_with(" degraded=none layer=upstream layer_ipv4=ok state_ipv4=up layer_ipv6=upstream state_ipv6=down target.0=198.51.100.1 target.0.answered=9 target.0.lost=1 target.0.rtt_ms=0.412 target.1=tcp:[2001:db8::1]:443 target.1.answered=0 target.1.lost=10 target.1.rtt_ms=-"),
            "{line}"
        );
        assert_eq!(text.lines().count(), 2, "still one line per interface");
        let pretty = pretty_status(&text, 1_763_748_200);
        let rows: Vec<&str> = pretty.lines().collect();
        assert!(rows[1].starts_with("IFACE  STATE  LAYER  "), "{pretty}");
        assert!(
            rows[2].starts_with("eth0   down   ipv4 ok (up), ipv6 upstream  "),
            "{pretty}"
        );
        assert_eq!(rows[3], "", "{pretty}");
        assert_eq!(
            rows[4],
            "IFACE  TARGET                 ANSWERED  LOST  LAST RTT MS"
        );
        assert_eq!(
            rows[5],
            "eth0   198.51.100.1           9         1     0.412"
        );
        assert_eq!(rows[6], "eth0   tcp:[2001:db8::1]:443  0         10    -");
    }

    #[test]
    fn a_status_without_lanes_has_no_layer_keys_and_shows_a_dash() {
        let text = status_text(&[snap("eth0", State::Up, None)], 1, 0);
        assert!(!text.contains("layer"), "{text}");
        let pretty = pretty_status(&text, 1_763_748_200);
        assert!(
            pretty
                .lines()
                .nth(2)
                .unwrap()
                .starts_with("eth0   up     -      "),
            "{pretty}"
        );
        assert_eq!(pretty.lines().count(), 3, "no target table: {pretty}");
    }

    #[test]
    fn the_worst_lane_speaks_for_the_interface() {
        let lane = |family, layer, state| LaneStatus {
            family,
            layer,
            state,
        };
        let up4 = lane(Family::V4, Layer::Ok, State::Up);
        let down6 = lane(Family::V6, Layer::NoRoute, State::Down);
        let suspect4 = lane(Family::V4, Layer::Upstream, State::Suspect);
        let suspect6 = lane(Family::V6, Layer::NoRoute, State::Suspect);
        let lanes = [up4.clone(), down6.clone()];
        assert_eq!(worst_lane(&lanes), Some(&down6));
        let lanes = [suspect4, suspect6.clone()];
        assert_eq!(
            worst_lane(&lanes),
            Some(&suspect6),
            "earlier layer on a tie"
        );
        let both_up = [up4.clone(), lane(Family::V6, Layer::Ok, State::Up)];
        assert_eq!(worst_lane(&both_up), Some(&up4), "IPv4 first");
        let silent = [up4, lane(Family::V6, Layer::GatewaySilent, State::Up)];
        assert_eq!(worst_lane(&silent).unwrap().layer, Layer::GatewaySilent);
        assert_eq!(worst_lane(&[]), None);
    }

    #[test]
    fn metrics_label_each_family_layer_and_target() {
        let mut x = two_lanes();
        x.targets[1].target = "dns:[2001:db8::53]\\\"x\n".into();
        let m = metrics_text(&[x]);
        for line in [
            "# TYPE netheal_layer gauge\nnetheal_layer{iface=\"eth0\",family=\"ipv4\",layer=\"absent\"} 0\n",
            "netheal_layer{iface=\"eth0\",family=\"ipv4\",layer=\"ok\"} 1\n",
            "netheal_layer{iface=\"eth0\",family=\"ipv6\",layer=\"upstream\"} 1\n",
            "netheal_layer{iface=\"eth0\",family=\"ipv6\",layer=\"ok\"} 0\n",
            "# TYPE netheal_target_replies_total counter\n",
            "netheal_target_replies_total{iface=\"eth0\",target=\"198.51.100.1\"} 9\n",
            "netheal_target_lost_total{iface=\"eth0\",target=\"198.51.100.1\"} 1\n",
            "netheal_target_rtt_seconds{iface=\"eth0\",target=\"198.51.100.1\"} 0.000412\n",
            // Backslash, double quote and line feed escaped as the text format says.
            "netheal_target_lost_total{iface=\"eth0\",target=\"dns:[2001:db8::53]\\\\\\\"x\\n\"} 10\n",
        ] {
            assert!(m.contains(line), "{line}{m}");
        }
        assert_eq!(
            m.matches("netheal_layer{").count(),
            18,
            "9 layers x 2 families"
        );
        assert!(
            !m.contains("netheal_target_rtt_seconds{iface=\"eth0\",target=\"dns:"),
            "no RTT before a first answer"
        );
    }

    #[test]
    fn status_lines_round_trip() {
        let text = status_text(
            &[
                snap("eth0", State::Up, None),
                snap(
                    "wlan0",
                    State::Down,
                    Some(LastHeal {
                        ok: false,
                        at: 1_763_748_100,
                    }),
                ),
            ],
            42,
            1_763_748_200,
        );
        assert!(text.starts_with("# netheal "), "{text}");
        assert!(text.contains("iface=eth0 state=up since=1763748000 rounds=10 failed_rounds=3 replies=8 lost=8 foreign=2 rtt_min_ms=0.100 rtt_avg_ms=0.300 rtt_max_ms=0.500 heals=1 last_heal=none icmp_errors=0 held=none inhibited_until=none reboot_budget=none degraded=none\n"), "{text}");
        let rows = parse_status(&text);
        assert_eq!(rows.len(), 2);
        assert!(rows[1].contains(&("last_heal".into(), "failed".into())));
        let pretty = pretty_status(&text, 1_763_748_200);
        assert!(
            pretty.lines().nth(1).unwrap().starts_with("IFACE  STATE"),
            "{pretty}"
        );
        assert!(pretty.contains("wlan0  down"), "{pretty}");
        assert!(
            pretty.contains("failed at 2025-11-21 18:01:40Z"),
            "{pretty}"
        );
        assert!(pretty.contains("0.100/0.300/0.500"), "{pretty}");
    }

    #[test]
    fn status_of_any_since_does_not_overflow() {
        // Overflow checks are on in test builds: `now - since` used to panic here.
        for since in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX] {
            for now in [i64::MIN, 0, 1_763_748_200, i64::MAX] {
                let text = format!(
                    "# netheal 0.1.0 status, pid 1, written x\niface=eth0 state=up since={since} last_heal=failed last_heal_at={since}\n"
                );
                let out = pretty_status(&text, now);
                let row = out.lines().nth(2).unwrap_or("");
                assert!(
                    row.starts_with("eth0 ") && row.contains(" up "),
                    "{since} {now}: {out}"
                );
            }
        }
        let far = pretty_status("iface=eth0 state=up since=-9223372036854775808\n", i64::MAX);
        assert!(far.contains("h"), "saturated to a very long time: {far}");
    }

    #[test]
    fn metrics_have_help_type_and_one_sample_per_interface() {
        let text = metrics_text(&[
            snap("eth0", State::Healing, None),
            snap("e\"x", State::Up, Some(LastHeal { ok: true, at: 5 })),
        ]);
        assert!(text.contains("# HELP netheal_up "));
        assert!(
            text.contains(
                "# TYPE netheal_rounds_total counter\nnetheal_rounds_total{iface=\"eth0\"} 10\n"
            ),
            "{text}"
        );
        assert!(text.contains("netheal_up{iface=\"eth0\"} 0\n"));
        assert!(text.contains("netheal_state{iface=\"eth0\",state=\"healing\"} 1\n"));
        assert!(text.contains("netheal_state{iface=\"eth0\",state=\"up\"} 0\n"));
        assert!(
            text.contains("netheal_up{iface=\"e\\\"x\"} 1\n"),
            "label escaping"
        );
        assert!(text.contains("netheal_rtt_avg_seconds{iface=\"eth0\"} 0.000300\n"));
        assert!(text.contains("netheal_last_heal_success{iface=\"e\\\"x\"} 1\n"));
        assert!(!text.contains("netheal_last_heal_success{iface=\"eth0\"}"));
        // Every family has exactly one HELP and one TYPE line.
        let helps = text.lines().filter(|l| l.starts_with("# HELP")).count();
        let types = text.lines().filter(|l| l.starts_with("# TYPE")).count();
        assert_eq!((helps, types), (25, 25));
        let info = format!(
            "netheal_build_info{{version=\"{}\",commit=\"{}\",target=\"{}\"}} 1\n",
            env!("CARGO_PKG_VERSION"),
            env!("NETHEAL_COMMIT"),
            env!("NETHEAL_TARGET")
        );
        assert!(text.contains(&info), "{text}");
        assert!(
            metrics_text(&[]).contains(&info),
            "written with no interface too"
        );
    }

    #[test]
    fn inhibit_hold_budget_and_degraded_are_reported() {
        let mut x = snap("wan", State::Down, None);
        x.machine = MachineStatus {
            inhibited_until: Some(1_763_755_200),
            held: Some("inhibit"),
            reboot_budget: Some((0, 3)),
            budget_error: false,
            degraded: Some("reboot budget spent (3 in 24h)".into()),
        };
        let mut y = snap("lan", State::Up, None);
        y.machine.budget_error = true;
        y.machine.held = Some("boot-grace");
        let text = status_text(&[x.clone(), y.clone()], 1, 0);
        assert!(text.contains(" held=inhibit inhibited_until=1763755200 reboot_budget=0/3 degraded=reboot_budget_spent_(3_in_24h)\n"), "{text}");
        let pretty = pretty_status(&text, 1_763_748_200);
        assert!(
            pretty.contains(
                "inhibited until 2025-11-21 20:00:00Z; degraded: reboot budget spent (3 in 24h)"
            ),
            "{pretty}"
        );
        assert!(
            pretty.contains("boot grace; reboot budget unreadable"),
            "{pretty}"
        );
        let m = metrics_text(&[x, y]);
        for line in [
            "netheal_inhibited{iface=\"wan\"} 1\n",
            "netheal_inhibited{iface=\"lan\"} 0\n",
            "netheal_heal_held{iface=\"lan\"} 1\n",
            "netheal_degraded{iface=\"wan\"} 1\n",
            "netheal_degraded{iface=\"lan\"} 0\n",
            "netheal_reboot_budget_remaining{iface=\"wan\"} 0\n",
        ] {
            assert!(m.contains(line), "{line}{m}");
        }
        assert!(!m.contains("netheal_reboot_budget_remaining{iface=\"lan\"}"));
    }

    #[test]
    fn the_header_names_the_writer() {
        let text = status_text(&[snap("eth0", State::Up, None)], 4242, 0);
        assert_eq!(status_pid(&text), Some(4242));
        assert_eq!(status_pid("iface=eth0 state=up\n"), None);
        assert_eq!(status_pid(""), None);
    }

    #[test]
    fn atomic_write_never_writes_through_a_planted_link() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("netheal-plant-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("shadow");
        std::fs::write(&victim, "root:secret\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        // The name the writer used to use, planted as a link to the victim.
        let planted = dir.join(format!(".status.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        let path = dir.join("status");
        for _ in 0..3 {
            write_atomic(&path, "iface=eth0 state=up\n").unwrap();
        }
        let kept = std::fs::read_to_string(&victim).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        let link_kept = std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink();
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(kept, "root:secret\n", "the victim was not written");
        assert!(link_kept, "the planted link was not replaced either");
        assert_eq!(mode, 0o644, "readable by monitoring agents");
        assert_eq!(names.len(), 3, "no temporary file left behind: {names:?}");
    }

    #[test]
    fn temp_names_are_not_predictable() {
        let a = temp_name("status");
        let b = temp_name("status");
        assert_ne!(a, b);
        assert!(a.starts_with(".status.") && a.ends_with(".tmp"), "{a}");
    }

    #[test]
    fn atomic_write_replaces_and_cleans_up() {
        let dir = std::env::temp_dir().join(format!("netheal-report-{}", std::process::id()));
        let path = dir.join("sub/status");
        write_atomic(&path, "one\n").unwrap();
        write_atomic(&path, "two\n").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "two\n");
        let leftovers = std::fs::read_dir(dir.join("sub")).unwrap().count();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(leftovers, 1, "no temporary file left behind");
    }
}
