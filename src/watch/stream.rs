//! The sockets of this round's `tcp:` and `dns:` targets: opened when a lane's prober says an
//! attempt is due, polled with the watch's other inputs, closed as soon as the attempt is
//! decided and, at the latest, when the lane's round ends. The prober keeps the time, the
//! verdicts and the counters; this file only turns socket outcomes into `stream_answered` /
//! `stream_failed` / `send_failed` (sys::stream says what each outcome means). Attempts are
//! kept by configured target index (unique across the lanes), each with its lane's family
//! and its slot in that lane's round.
//!
//! One socket per attempt, one attempt per target per round: a fresh socket is bound to
//! the interface as it is now (a re-created interface needs no re-bind), and a connect
//! left over from a silent round cannot answer for the next one.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};

use super::lane::Lane;
use crate::config::Target;
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::probe::Prober;
use crate::sys::stream::{Connected, Device, Start, TcpProbe, UdpProbe};
use crate::wire::dns::{Query, Response, QUERY_LEN};
use crate::wire::siphash24;
use crate::wire::Family;

/// Datagrams read from one resolver socket per turn: a resolver that floods us with
/// foreign responses cannot keep the loop (poll(2) is level-triggered: the rest waits).
const DNS_RECV_BATCH: usize = 4;

enum Open {
    Tcp(TcpProbe),
    /// The socket and our query's id.
    Dns(UdpProbe, u16),
}

/// One attempt in flight: whose (lane family, slot of its round) and on what socket.
struct Attempt {
    family: Family,
    slot: usize,
    sock: Open,
}

/// The open attempts, by configured target index.
pub(super) struct Streams {
    /// The watch's configured targets and its interface.
    targets: Vec<Target>,
    iface: String,
    device: Device,
    open: Vec<Option<Attempt>>,
    /// DNS ids: SipHash of a counter under a per-process random key, so ids are not
    /// guessable from earlier ones and cost no system call.
    key: [u8; 16],
    queries: u64,
}

impl Streams {
    pub(super) fn new(targets: &[Target], iface: &str, key: [u8; 16]) -> Self {
        Streams {
            targets: targets.to_vec(),
            iface: iface.to_string(),
            device: Device::new(iface),
            open: Vec::new(),
            key,
            queries: 0,
        }
    }

    fn next_id(&mut self) -> u16 {
        self.queries = self.queries.wrapping_add(1);
        siphash24(&self.key, &self.queries.to_le_bytes()) as u16
    }

    /// Starts every attempt of lane `family` that is due, each stamped by `clock` right
    /// before its connect or send. `slot_targets`: the configured target of each slot of the
    /// lane's round; `bound`: the interface index the watch is bound to (None: absent).
    pub(super) fn start_due(
        &mut self,
        family: Family,
        prober: &mut Prober,
        slot_targets: &[usize],
        bound: Option<u32>,
        log: &mut Log,
        mut clock: impl FnMut() -> Instant,
    ) {
        while let Some(tx) = prober.poll_stream(clock()) {
            let index = slot_targets.get(tx.target).copied();
            let target = index.and_then(|i| self.targets.get(i).copied());
            // Ok(true): decided at once (a local port answered or refused); Ok(false): pending.
            let started = match (index, target, bound) {
                (Some(i), Some(t), Some(scope)) => self.start(t, scope).map(|open| match open {
                    Some(sock) => {
                        let slot = tx.target;
                        self.set(i, Attempt { family, slot, sock });
                        false
                    }
                    None => true,
                }),
                _ => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "socket not bound to the interface",
                )),
            };
            match started {
                Ok(false) => {}
                Ok(true) => {
                    prober.stream_answered(clock(), tx.target);
                }
                Err(e) => {
                    prober.send_failed(tx.target);
                    let name = target.map_or(tx.dest.to_string(), |t| t.to_string());
                    // Expected while the link is broken: said once a minute, as for echoes.
                    log.limited(clock(), Level::Info, format!("{}: {name}: {e}", self.iface));
                }
            }
        }
    }

    fn set(&mut self, i: usize, a: Attempt) {
        if self.open.len() <= i {
            self.open.resize_with(i + 1, || None);
        }
        self.open[i] = Some(a);
    }

    /// Opens target `t`'s socket; None when the attempt is decided already (answered).
    fn start(&mut self, t: Target, scope: u32) -> io::Result<Option<Open>> {
        let open = match t {
            Target::Tcp(dest) => match TcpProbe::connect(dest, &self.device, scope)? {
                Start::Pending(p) => Open::Tcp(p),
                Start::Done(Connected::Open | Connected::Refused) => return Ok(None),
                Start::Done(Connected::Failed(e)) => return Err(e),
            },
            Target::Dns(dest) => {
                let id = self.next_id();
                query(dest, &self.device, scope, id)?
            }
            Target::Gateway | Target::Addr(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a stream target",
                ))
            }
        };
        Ok(Some(open))
    }

    /// The open sockets: target index, whether to wait for POLLOUT (a connect) rather than
    /// POLLIN (a response), and the fd.
    /// Whether an attempt's socket is open.
    pub(super) fn any_open(&self) -> bool {
        self.open.iter().any(Option::is_some)
    }

    pub(super) fn poll_inputs(&self) -> impl Iterator<Item = (usize, bool, BorrowedFd<'_>)> {
        self.open
            .iter()
            .enumerate()
            .filter_map(|(i, o)| match o.as_ref().map(|a| &a.sock) {
                Some(Open::Tcp(p)) => Some((i, true, p.as_fd())),
                Some(Open::Dns(s, _)) => Some((i, false, s.as_fd())),
                None => None,
            })
    }

    /// Reads the outcome of every attempt whose socket poll(2) reported (bit i of `ready`
    /// for configured target i), tells its lane's prober, and closes the decided ones.
    pub(super) fn complete(
        &mut self,
        now: Instant,
        lanes: &mut [Lane],
        ready: u32,
        buf: &mut [u8],
        log: &mut Log,
    ) {
        for i in 0..self.open.len().min(32) {
            if ready & (1 << i) == 0 {
                continue;
            }
            let Some(a) = &self.open[i] else { continue };
            let Some(lane) = lanes.iter_mut().find(|l| l.family == a.family) else {
                self.open[i] = None;
                continue;
            };
            let (prober, slot) = (&mut lane.prober, a.slot);
            let decided = match &a.sock {
                Open::Tcp(p) => match p.finish() {
                    Ok(None) => None,
                    Ok(Some(Connected::Open | Connected::Refused)) => Some(Ok(())),
                    Ok(Some(Connected::Failed(e))) => {
                        Some(Err(io::Error::new(e.kind(), format!("connect: {e}"))))
                    }
                    Err(e) => Some(Err(e)),
                },
                Open::Dns(s, id) => read_response(s, *id, prober, buf),
            };
            match decided {
                None => continue,
                Some(Ok(())) => {
                    prober.stream_answered(now, slot);
                }
                Some(Err(e)) => {
                    prober.stream_failed(slot);
                    let name = self
                        .targets
                        .get(i)
                        .map_or(String::new(), ToString::to_string);
                    log.limited(now, Level::Info, format!("{}: {name}: {e}", self.iface));
                }
            }
            self.open[i] = None; // closed: SO_LINGER 0 aborts a connection, no FIN
        }
    }

    /// Lane `family`'s round ended: its attempts still open are abandoned (a connect is
    /// aborted).
    pub(super) fn close_lane(&mut self, family: Family) {
        for o in self.open.iter_mut() {
            if o.as_ref().is_some_and(|a| a.family == family) {
                *o = None;
            }
        }
    }
}

/// One query to `dest` with `id`, from a socket bound to `dev` and connected to it.
fn query(dest: SocketAddr, dev: &Device, scope: u32, id: u16) -> io::Result<Open> {
    let sock = UdpProbe::open(dest, dev, scope)?;
    let mut msg = [0u8; QUERY_LEN];
    let n = Query { id }.emit(&mut msg).unwrap_or(0);
    sock.send(&msg[..n])?;
    Ok(Open::Dns(sock, id))
}

/// Reads what the resolver sent: Some(Ok) for the response to query `id`, Some(Err) when
/// the socket failed (ECONNREFUSED: nothing listens on the port), None to wait on.
fn read_response(
    s: &UdpProbe,
    id: u16,
    prober: &mut Prober,
    buf: &mut [u8],
) -> Option<io::Result<()>> {
    for _ in 0..DNS_RECV_BATCH {
        match s.recv(buf) {
            Ok(None) => return None,
            Ok(Some(n)) => match Response::parse(&buf[..n.min(buf.len())], id) {
                Ok(_) => return Some(Ok(())),
                Err(_) => prober.stream_foreign(),
            },
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => {
                let why = "port unreachable: no resolver listens there";
                return Some(Err(io::Error::new(e.kind(), why)));
            }
            Err(e) => return Some(Err(io::Error::new(e.kind(), format!("receive: {e}")))),
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::Received;
    use crate::wire::dns::HEADER_LEN;
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use std::net::{Ipv4Addr, TcpListener, UdpSocket};
    use std::time::Duration;

    /// A port on loopback that nothing listens on (bound, then released).
    fn free_port(tcp: bool) -> SocketAddr {
        match tcp {
            true => TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr(),
            false => UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))
                .unwrap()
                .local_addr(),
        }
        .unwrap()
    }

    /// The glue on loopback (`lo`, index 1), driven by hand as the daemon's loop drives it:
    /// an open port and a closed one both answer, a resolver's wrong-id response is foreign
    /// and its right one answers, a closed resolver port fails at once; every socket is
    /// closed once decided.
    #[test]
    fn a_round_on_loopback_open_closed_resolver_and_no_resolver() {
        let ci = std::env::var("CI").as_deref() == Ok("true");
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let resolver = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        resolver
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let targets = [
            Target::Tcp(listener.local_addr().unwrap()),
            Target::Tcp(free_port(true)),
            Target::Dns(resolver.local_addr().unwrap()),
            Target::Dns(free_port(false)),
        ];
        // The lane's slots in another order than the configured targets: the glue maps them.
        let order = [2, 0, 3, 1];
        let cfg = crate::config::IfaceConfig::defaults("lo");
        let prober = Prober::new(1, Duration::from_secs(5), 3, 7, [1; 16]);
        let policy = Lane::settings(&cfg, Family::V4);
        let mut lanes = [Lane::new(Family::V4, prober, policy, Instant::now(), 9)];
        let p = &mut lanes[0].prober;
        let mut st = Streams::new(&targets, "lo", [2; 16]);
        let mut log = Log::with_syslog(None, Instant::now());
        p.start_round(Instant::now(), order.iter().map(|&t| targets[t].addr()));
        for i in 0..targets.len() {
            p.mark_stream(i);
        }
        st.start_due(Family::V4, p, &order, Some(1), &mut log, Instant::now);
        if p.stats().send_errors > 0 && !ci {
            eprintln!("skipped: cannot bind sockets to lo here");
            return;
        }
        assert_eq!(p.stats().sent, 4);
        // The resolver: a response with another id first, then ours (REFUSED).
        let mut q = [0u8; 64];
        let (n, from) = resolver.recv_from(&mut q).expect("our query");
        assert_eq!(n, QUERY_LEN);
        let mut resp = q[..n].to_vec();
        resp[2] = 0x80;
        resp[3] = 0x05;
        let mut wrong = resp.clone();
        wrong[0] ^= 0xff;
        resolver.send_to(&wrong, from).unwrap();
        resolver.send_to(&resp, from).unwrap();
        assert!(resp.len() > HEADER_LEN);
        let mut buf = [0u8; 2048];
        let deadline = Instant::now() + Duration::from_secs(10);
        let verdict = loop {
            let now = Instant::now();
            if let Some(v) = lanes[0].prober.poll_round_end(now) {
                st.close_lane(Family::V4);
                break v;
            }
            assert!(now < deadline, "the round did not end");
            let (targets, mut fds): (Vec<usize>, Vec<PollFd>) = st
                .poll_inputs()
                .map(|(i, write, fd)| {
                    let ev = if write {
                        PollFlags::POLLOUT
                    } else {
                        PollFlags::POLLIN
                    };
                    (i, PollFd::new(fd, ev))
                })
                .unzip();
            poll(&mut fds, PollTimeout::from(100u16)).unwrap();
            let ready = targets
                .iter()
                .zip(&fds)
                .filter(|(_, f)| f.revents().is_some_and(|r| !r.is_empty()))
                .fold(0u32, |m, (&i, _)| m | 1 << i);
            drop(fds);
            st.complete(Instant::now(), &mut lanes, ready, &mut buf, &mut log);
        };
        let p = &mut lanes[0].prober;
        let slots = p.slots();
        // Slot k is configured target order[k]; target 3 (no resolver) is slot 2.
        for k in [0, 1, 3] {
            assert!(slots[k].rtt.is_some(), "slot {k}: {slots:?}");
        }
        assert!(slots[2].stream_failed(), "no resolver: failed at once");
        assert!(verdict.good && verdict.answered == 3, "{verdict:?}");
        let stats = p.stats();
        assert_eq!((stats.replies, stats.foreign, stats.lost), (3, 1, 1));
        assert_eq!(st.poll_inputs().count(), 0, "every socket closed");
        // A late answer after the round decides nothing.
        assert_eq!(p.stream_answered(Instant::now(), 0), Received::Late);
        assert!(order
            .iter()
            .all(|&t| st.open.get(t).is_none_or(Option::is_none)));
    }
}
