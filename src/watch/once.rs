//! `--once`: when the one round has ended (or could not run), judge each family the
//! interface has targets of, from the kernel's view and the round's slots, and keep what the
//! diagnosis table shows. The words and the layout are `crate::explain`'s; the judgement is
//! `crate::diagnose`'s; this file only gathers their inputs. No I/O, no clock.
#![forbid(unsafe_code)]

use std::net::IpAddr;

use super::Uplink;
use crate::config::Target;
use crate::diagnose::{diagnose, Evidence, L2};
use crate::explain::{self, Lane, Probe};
use crate::wire::Family;

impl Uplink {
    /// The family a target belongs to this round: its address's, or for `gateway` the
    /// family of the gateway it resolved to (unresolved: the first family with a socket,
    /// the one `gateway` is tried in first).
    fn target_family(&self, t: &Target, addr: Option<IpAddr>) -> Family {
        match (t, addr) {
            (_, Some(a)) | (&Target::Addr(a), None) => Family::of(a),
            (Target::Gateway, None) => {
                if self.socks[Family::V4 as usize].is_some() {
                    Family::V4
                } else {
                    Family::V6
                }
            }
        }
    }

    /// Judges every family once the round has ended (`ran`) or could not start; sets
    /// `once_result` (every lane good) and keeps the lanes for the table.
    pub(super) fn once_judge(&mut self, ran: bool) {
        let view = self.kernel.view;
        let slots = self.prober.slots();
        let mut lanes = Vec::new();
        for fam in [Family::V4, Family::V6] {
            let fv = view.family[fam as usize];
            let mut probes = Vec::new();
            let (mut answered, mut gateway_echo) = (0, None);
            for (i, t) in self.cfg.targets.iter().enumerate() {
                let slot = slots.get(i).filter(|_| ran);
                let addr = slot.and_then(|s| s.addr);
                if self.target_family(t, addr) != fam {
                    continue;
                }
                let rtt = slot
                    .and_then(|s| s.rtt)
                    .filter(|_| slot.is_some_and(|s| !s.own));
                answered += usize::from(rtt.is_some());
                let is_gateway = *t == Target::Gateway || (addr.is_some() && addr == fv.gateway);
                if is_gateway && addr.is_some() {
                    gateway_echo = Some(rtt.is_some());
                }
                let why = match slot {
                    None => Some("not probed".to_string()),
                    Some(s) if s.rtt.is_some() => None,
                    Some(s) if s.own => Some("own address (not counted)".into()),
                    Some(s) if s.addr.is_none() => Some("unknown".into()),
                    Some(s) => match s.report {
                        Some(r) => Some(r.to_string()),
                        None if s.send_failed() => Some("send failed".into()),
                        None => None,
                    },
                };
                probes.push(Probe {
                    target: addr.map_or_else(|| t.to_string(), |a| a.to_string()),
                    rtt,
                    why,
                });
            }
            if probes.is_empty() {
                continue; // no target of this family: not judged
            }
            let quorum = (self.cfg.quorum as usize).min(probes.len());
            let evidence = Evidence {
                address: fv.address.is_some(),
                route: fv.route,
                gateway: fv.gateway,
                gateway_echo,
                // Until the layer-2 probe reports here, nothing is known at layer 2.
                l2: L2::Unknown,
                answered,
                quorum,
            };
            let layer = diagnose(&view.link, &evidence);
            lanes.push(Lane {
                family: fam,
                evidence,
                layer,
                act: self.cfg.layers.act(layer),
                address: fv.address.map(|(a, len)| format!("{a}/{len}")),
                table: fv.table.map(explain::table_name),
                l2_rtt: None,
                timeout: self.cfg.timeout,
                targets: probes,
            });
        }
        self.once_result = Some(explain::all_good(&lanes));
        self.once_lanes = lanes;
    }

    /// `--once`: this interface's rows of the diagnosis table.
    pub fn once_rows(&self) -> Vec<[String; 5]> {
        let v = &self.kernel.view;
        explain::rows(&self.cfg.iface, v.index, &v.link, &self.once_lanes)
    }
}
