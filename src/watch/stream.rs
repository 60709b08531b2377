//! The sockets of this round's `tcp:` and `dns:` targets: opened when the prober says an
//! attempt is due, polled with the watch's other inputs, closed as soon as the attempt is
//! decided and, at the latest, when the round ends. The prober keeps the time, the verdicts
//! and the counters; this file only turns socket outcomes into `stream_answered` /
//! `stream_failed` / `send_failed` (sys::stream says what each outcome means).
//!
//! One socket per attempt, one attempt per target per round: a fresh socket is bound to
//! the interface as it is now (a re-created interface needs no re-bind), and a connect
//! left over from a silent round cannot answer for the next one.
#![forbid(unsafe_code)]

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsFd, BorrowedFd};
use std::time::Instant;

use crate::config::Target;
use crate::log::{Level, Log};
use crate::probe::Prober;
use crate::sys::stream::{Connected, Start, TcpProbe, UdpProbe};
use crate::wire::dns::{Query, Response, QUERY_LEN};
use crate::wire::siphash24;

/// Datagrams read from one resolver socket per turn: a resolver that floods us with
/// foreign responses cannot keep the loop (poll(2) is level-triggered: the rest waits).
const DNS_RECV_BATCH: usize = 4;

enum Open {
    Tcp(TcpProbe),
    /// The socket and our query's id.
    Dns(UdpProbe, u16),
}

/// The open attempts, by target index.
pub(super) struct Streams {
    /// The watch's targets (indexed as the prober's slots) and interface.
    targets: Vec<Target>,
    iface: String,
    open: Vec<Option<Open>>,
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
            open: Vec::new(),
            key,
            queries: 0,
        }
    }

    fn next_id(&mut self) -> u16 {
        self.queries = self.queries.wrapping_add(1);
        siphash24(&self.key, &self.queries.to_le_bytes()) as u16
    }

    /// Starts every attempt that is due, each stamped by `clock` right before its connect
    /// or send. `bound`: the interface index the watch is bound to (None: absent).
    pub(super) fn start_due(
        &mut self,
        prober: &mut Prober,
        bound: Option<u32>,
        log: &mut Log,
        mut clock: impl FnMut() -> Instant,
    ) {
        while let Some(tx) = prober.poll_stream(clock()) {
            let target = self.targets.get(tx.target).copied();
            let started = match (target, bound) {
                (Some(t), Some(scope)) => self.start(tx.target, t, scope),
                _ => Err(io::Error::new(
                    io::ErrorKind::NotConnected,
                    "socket not bound to the interface",
                )),
            };
            match started {
                Ok(None) => {}
                Ok(Some(_)) => {
                    // Decided at once: a local port answered or refused.
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

    /// Opens target `i`'s socket; Some when the attempt is decided already (answered).
    fn start(&mut self, i: usize, t: Target, scope: u32) -> io::Result<Option<()>> {
        let iface = self.iface.as_str();
        let open = match t {
            Target::Tcp(dest) => match TcpProbe::connect(dest, iface, scope)? {
                Start::Pending(p) => Open::Tcp(p),
                Start::Done(Connected::Open | Connected::Refused) => return Ok(Some(())),
                Start::Done(Connected::Failed(e)) => return Err(e),
            },
            Target::Dns(dest) => {
                let id = self.next_id();
                query(dest, &self.iface, scope, id)?
            }
            Target::Gateway | Target::Addr(_) => {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidInput,
                    "not a stream target",
                ))
            }
        };
        if self.open.len() <= i {
            self.open.resize_with(i + 1, || None);
        }
        self.open[i] = Some(open);
        Ok(None)
    }

    /// The open sockets: target index, whether to wait for POLLOUT (a connect) rather than
    /// POLLIN (a response), and the fd.
    pub(super) fn poll_inputs(&self) -> impl Iterator<Item = (usize, bool, BorrowedFd<'_>)> {
        self.open.iter().enumerate().filter_map(|(i, o)| match o {
            Some(Open::Tcp(p)) => Some((i, true, p.as_fd())),
            Some(Open::Dns(s, _)) => Some((i, false, s.as_fd())),
            None => None,
        })
    }

    /// Reads the outcome of every attempt whose socket poll(2) reported (bit i of `ready`
    /// for target i), and closes the decided ones.
    pub(super) fn complete(
        &mut self,
        now: Instant,
        prober: &mut Prober,
        ready: u32,
        buf: &mut [u8],
        log: &mut Log,
    ) {
        for i in 0..self.open.len().min(32) {
            if ready & (1 << i) == 0 {
                continue;
            }
            let decided = match &self.open[i] {
                Some(Open::Tcp(p)) => match p.finish() {
                    Ok(None) => None,
                    Ok(Some(Connected::Open | Connected::Refused)) => Some(Ok(())),
                    Ok(Some(Connected::Failed(e))) => {
                        Some(Err(io::Error::new(e.kind(), format!("connect: {e}"))))
                    }
                    Err(e) => Some(Err(e)),
                },
                Some(Open::Dns(s, id)) => read_response(s, *id, prober, buf),
                None => None,
            };
            match decided {
                None => continue,
                Some(Ok(())) => {
                    prober.stream_answered(now, i);
                }
                Some(Err(e)) => {
                    prober.stream_failed(i);
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

    /// The round ended: every attempt still open is abandoned (a connect is aborted).
    pub(super) fn close_all(&mut self) {
        for o in self.open.iter_mut() {
            *o = None;
        }
    }
}

/// One query to `dest` with `id`, from a socket bound to `iface` and connected to it.
fn query(dest: SocketAddr, iface: &str, scope: u32, id: u16) -> io::Result<Open> {
    let sock = UdpProbe::open(dest, iface, scope)?;
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
