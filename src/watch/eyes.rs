//! The watch's side of the kernel's view (`crate::kernel`): the copy of the facts it acts on
//! (index, gateways), what it does with each reported change (log it, re-bind, confirm with a
//! round at once), and why a round cannot run when the interface is missing. The daemon
//! hands it the cache's facts and events; nothing here reads the kernel or the clock.
#![forbid(unsafe_code)]

use std::io;
use std::net::IpAddr;

use super::lane::KernelView;
use super::Uplink;
use crate::decide::Input;
use crate::diagnose::Link;
use crate::kernel::{Event, Iface};
use crate::log::{Level, Log};
use crate::mono::Instant;
use crate::wire::Family;

/// What the watch knows from the kernel.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Facts {
    /// The cache has seen every dump once; before that the ioctl answers for the index.
    pub synced: bool,
    pub index: Option<u32>,
    pub gateway: [Option<IpAddr>; 2],
    pub admin_up: bool,
    pub carrier: bool,
    /// Per family: an address (IPv6: other than link-local), a default route through it.
    pub address: [bool; 2],
    pub route: [bool; 2],
    /// The kernel's neighbour state (NUD_*) of each family's gateway, when it reported one.
    pub neigh: [Option<u16>; 2],
    /// The sockets were bound once: binding again means opening new ones first.
    pub used: bool,
    /// A `link` step is bouncing the interface: keep the snapshot from before.
    pub bouncing: bool,
    /// The `link` step has ended: put back what the bounce removed.
    pub bounced: bool,
    /// Link, addresses and routes as the diagnosis reads them.
    pub view: crate::explain::KernelView,
}

impl Uplink {
    /// Whether `take_bounce` has news: a `link` step bounces, or has bounced.
    pub fn bounce_news(&self) -> bool {
        self.kernel.bouncing || self.kernel.bounced
    }

    /// For the daemon's restore after a `link` step: (bouncing, bounced), cleared by reading.
    pub fn take_bounce(&mut self) -> (bool, bool) {
        let b = (self.kernel.bouncing, self.kernel.bounced);
        if self.kernel.bounced {
            (self.kernel.bouncing, self.kernel.bounced) = (false, false);
        }
        b
    }

    /// Whether the ladder has the built-in `link` step (the daemon keeps a snapshot then).
    /// `auto` may fall back to `link` when no manager owns the interface.
    pub fn bounces(&self) -> bool {
        use crate::config::HealStep;
        self.cfg
            .heal
            .iter()
            .any(|s| matches!(s, HealStep::Link | HealStep::Auto))
    }

    /// Takes the cache's facts about this interface (after a sync or a change).
    pub fn kernel_facts(&mut self, i: &Iface, synced: bool) {
        self.stir(); // layer 2 follows the gateway's neighbour entry
        self.kernel.synced = synced;
        self.kernel.index = i.index;
        self.kernel.gateway = [i.gateway(Family::V4), i.gateway(Family::V6)];
        self.kernel.view = crate::explain::KernelView::of(i);
        self.kernel.admin_up = i.admin_up;
        self.kernel.carrier = i.carrier;
        for f in [Family::V4, Family::V6] {
            self.kernel.address[f as usize] = i.addresses().any(|a| {
                Family::of(a.addr) == f
                    // fe80::/10 (Ipv6Addr::is_unicast_link_local is newer than our MSRV)
                    && !matches!(a.addr, IpAddr::V6(v6) if v6.segments()[0] & 0xffc0 == 0xfe80)
            });
            self.kernel.route[f as usize] = i.default_route(f).is_some();
            self.kernel.neigh[f as usize] = i.gateway_neighbour(f);
        }
        self.l2.kernel_facts(i);
    }

    /// What the lanes' diagnosis needs from the kernel. Before the cache has synced only
    /// the interface's presence is known (from the ioctl): the rest is taken as fine, so an
    /// early failure is judged by the targets.
    pub(super) fn kernel_view(&self) -> KernelView {
        let k = &self.kernel;
        let present = self.kernel_index().is_some();
        if !k.synced {
            return KernelView {
                link: Link {
                    present,
                    admin_up: true,
                    carrier: true,
                },
                address: [true; 2],
                route: [true; 2],
                gateway: k.gateway,
            };
        }
        KernelView {
            link: Link {
                present,
                admin_up: k.admin_up,
                carrier: k.carrier,
            },
            address: k.address,
            route: k.route,
            gateway: k.gateway,
        }
    }

    /// One change the kernel reported for this interface: one log line; a confirming round
    /// at once when it can have broken reachability; sockets re-opened when it came back.
    pub fn kernel_event(
        &mut self,
        now: Instant,
        log: &mut Log,
        ev: &Event,
        i: &Iface,
        synced: bool,
    ) {
        self.kernel_facts(i, synced);
        let level = match ev {
            Event::Gone
            | Event::Renamed { .. }
            | Event::AdminDown
            | Event::CarrierLost
            | Event::GatewayUnresolved { .. }
            | Event::DefaultRouteChanged { present: false, .. } => Level::Warning,
            Event::AddressAdded { .. } | Event::AddressGone { .. } => Level::Info,
            _ => Level::Notice,
        };
        match ev {
            Event::Gone | Event::Renamed { .. } => {
                self.say(log, level, ev.to_string());
                // Sends stop now; the next round says why it cannot run.
                self.bound = None;
                self.absent_logged = true;
            }
            // check_interface says "interface appeared" (or "index changed") as it re-binds.
            Event::Appeared { .. } => {
                self.check_interface(now, log, false);
            }
            // A target may have become (or stopped being) one of our own addresses: the
            // next round reads the host's addresses again instead of up to a minute later.
            Event::AddressAdded { .. } | Event::AddressGone { .. } => {
                self.host_addrs_at = None;
                self.say(log, level, ev.to_string());
            }
            _ => self.say(log, level, ev.to_string()),
        }
        match ev {
            Event::CarrierLost | Event::CarrierRegained => {
                let input = if *ev == Event::CarrierLost {
                    Input::CarrierLost
                } else {
                    Input::CarrierRegained
                };
                for l in &mut self.lanes {
                    l.decider.handle_event(now, input.clone());
                }
            }
            // Set down by someone else (a `link` or ifdown step of ours sets it down on
            // purpose while it runs): `on-admin-down` decides, once for the interface.
            Event::AdminDown if !self.kernel.bouncing && !self.heal.is_running() => {
                // The holds as of now: the turn that saw the first good round set them
                // before that round ended (an event between two turns found them stale).
                self.update_hold(now, log);
                if let Some(l) = self.lanes.iter_mut().find(|l| l.active) {
                    l.decider.handle_event(now, Input::AdminDown);
                }
            }
            _ => {}
        }
        if ev.may_break() {
            // An address concerns its family's lane; everything else may move the `gateway`
            // target or concerns the link, so every lane confirms.
            let only = match ev {
                Event::AddressAdded { addr, .. } | Event::AddressGone { addr, .. } => {
                    Some(Family::of(*addr))
                }
                _ => None,
            };
            for l in &mut self.lanes {
                if only.is_none_or(|f| f == l.family) {
                    l.decider.handle_event(now, Input::KernelChanged);
                }
            }
        }
    }

    /// The interface's index: what the kernel said, or (before the first sync) an ioctl.
    #[inline]
    pub(super) fn kernel_index(&self) -> Option<u32> {
        if self.kernel.synced {
            self.kernel.index
        } else {
            self.sys.index(&self.cfg.iface)
        }
    }

    /// The default gateway through this interface (IPv4 first, then IPv6) from the cache:
    /// every routing table unless one is pinned, lowest metric first. O(1): no table is read.
    #[inline]
    pub(super) fn kernel_gateway(&self) -> Option<IpAddr> {
        [Family::V4, Family::V6]
            .into_iter()
            .filter_map(|f| self.kernel.gateway[f as usize])
            .find(|a| self.socks[Family::of(*a) as usize].is_some())
    }

    /// Why a round cannot run now: a failed round with this reason.
    pub(super) fn impossible_reason(&self) -> String {
        match (self.kernel_index(), self.kernel.used) {
            (None, true) => format!("interface {} is gone", self.cfg.iface),
            (None, false) => format!("interface {} not found", self.cfg.iface),
            (Some(_), _) => format!("sockets not bound to {}", self.cfg.iface),
        }
    }

    /// Binds the sockets to the interface. Sockets bound before are replaced by new ones
    /// first: the device may be a new one under the old name, and a datagram socket cannot be
    /// bound a second time (EINVAL, or EPERM after the device changed). A failure on the old
    /// sockets is retried once on new ones.
    pub(super) fn rebind(&mut self) -> io::Result<()> {
        let used = std::mem::replace(&mut self.kernel.used, true);
        self.bind_sockets(used).or_else(|_| self.bind_sockets(true))
    }
}
