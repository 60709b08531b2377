//! `--once`: when the one round has ended (or could not run), judge each family the
//! interface has targets of, from the kernel's view and the round's slots, and keep what the
//! diagnosis table shows. The words and the layout are `crate::explain`'s; the judgement is
//! `crate::diagnose`'s; this file only gathers their inputs. No I/O, no clock.
#![forbid(unsafe_code)]

use super::Uplink;
use crate::config::Target;
use crate::diagnose::{diagnose, Evidence, L2};
use crate::explain::{self, Lane, Probe};

impl Uplink {
    /// `--once`: judges when every lane has its round's verdict and no layer-2 probe still
    /// waits for its answer (the round sends one; its deadline is at most a timeout after the
    /// round began, so an echo round that ended early waits that long at most).
    pub(super) fn once_ready(&mut self) {
        if self.lanes.iter().all(|l| l.once.is_some()) && self.l2.poll_timeout().is_none() {
            self.once_judge(true);
        }
    }

    /// Judges every lane once each has ended its round (`ran`), or when no round could start;
    /// sets `once_result` (every lane good) and keeps the lanes for the table. A lane without
    /// targets this round (`gateway` resolved to the other family) is not judged.
    pub(super) fn once_judge(&mut self, ran: bool) {
        let view = self.kernel.view;
        let mut lanes = Vec::new();
        for lane in &self.lanes {
            let fam = lane.family;
            let fv = view.family[fam as usize];
            let mut probes = Vec::new();
            let (mut answered, mut gateway_echo) = (0, None);
            if ran {
                for (slot, &t) in lane.prober.slots().iter().zip(&lane.slot_targets) {
                    let target = self.cfg.targets[t];
                    let rtt = slot.rtt.filter(|_| !slot.own);
                    answered += usize::from(rtt.is_some());
                    if slot.addr.is_some() && (target == Target::Gateway || slot.addr == fv.gateway)
                    {
                        gateway_echo = Some(rtt.is_some());
                    }
                    let why = match (slot.rtt, slot.addr, slot.report) {
                        (Some(_), _, _) => None,
                        _ if slot.own => Some("own address (not counted)".into()),
                        (None, None, _) => Some("unknown".into()),
                        (None, Some(_), Some(r)) => Some(r.to_string()),
                        _ if slot.send_failed() => Some("send failed".into()),
                        _ => None,
                    };
                    probes.push(Probe {
                        target: shown(&target, slot.addr),
                        rtt,
                        why,
                    });
                }
                if !lane.active {
                    continue; // no target of this family this round: not judged
                }
            } else {
                // No round: every target of the family, as configured, not probed.
                let home = self.lanes[0].family;
                for (t, _) in super::lane::lane_targets_iter(&self.cfg.targets, fam, None, home) {
                    probes.push(Probe {
                        target: shown(&self.cfg.targets[t], None),
                        rtt: None,
                        why: Some("not probed".into()),
                    });
                }
                if probes.is_empty() {
                    continue;
                }
            }
            let quorum = (self.cfg.quorum as usize).min(probes.len());
            // What the lane's own judgement was made of, when its round ran (the same the
            // daemon acts on); else the kernel's view with nothing answered.
            let (link, mut evidence) = lane.evidence.filter(|_| ran).unwrap_or((
                view.link,
                Evidence {
                    address: fv.address.is_some(),
                    route: fv.route,
                    gateway: fv.gateway,
                    gateway_echo,
                    l2: L2::Unknown,
                    answered,
                    quorum,
                    targets: probes.len(),
                },
            ));
            // Layer 2's final word: the answer may have come after the echo round ended.
            evidence.l2 = self.l2_result(fam);
            let layer = diagnose(&link, &evidence);
            lanes.push(Lane {
                family: fam,
                evidence,
                layer,
                act: self.cfg.layers.act(layer),
                address: fv.address.map(|(a, len)| format!("{a}/{len}")),
                table: fv.table.map(explain::table_name),
                l2_rtt: self.l2_rtt(fam),
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

/// A target as the table names it: as configured (`203.0.113.10`, `tcp:203.0.113.10:443`,
/// `dns:[2001:db8::53]`), except `gateway`, which shows the address it resolved to.
fn shown(target: &Target, addr: Option<std::net::IpAddr>) -> String {
    match (target, addr) {
        (Target::Gateway, Some(a)) => a.to_string(),
        _ => target.to_string(),
    }
}
