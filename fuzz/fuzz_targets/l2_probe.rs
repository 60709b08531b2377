//! The pure layer-2 prober (`netheal::l2::L2Probe`) driven by any sequence of events read
//! from the input: rounds noted failed or good, rounds started with or without a gateway,
//! sends, packets (raw bytes, or the gateway's genuine answer), kernel neighbour states, time
//! passing, rounds ending. A shadow model checks that Alive comes only from a packet the codec
//! reads as the gateway's answer or from the kernel turning REACHABLE during a round; Dead
//! only after a request went out and its deadline passed unanswered; Stale only from an ARP
//! answer whose MAC is not the one the neighbour entry holds; a healthy round never asks;
//! poll_timeout is never in the past after handle_timeout.
#![no_main]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use netheal::l2::{Asker, L2Probe, L2};
use netheal::mono::Instant;
use netheal::wire::arp::{Arp, Mac};
use netheal::wire::ndp::Advert;
use netheal::wire::Family;

const GW4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
const OUR4: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 2);
const GW6: Ipv6Addr = Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1);
const MAC: Mac = Mac([2, 0, 0x5e, 0x10, 0, 2]);
const T: Duration = Duration::from_millis(200);
const GW_MAC: Mac = Mac([2, 0, 0x5e, 0x10, 0, 1]);
const BOGUS: Mac = Mac([2, 0, 0, 0, 0, 1]);

fn answer(family: Family) -> Vec<u8> {
    match family {
        Family::V4 => {
            let mut b = vec![0; 28];
            Arp {
                reply: true,
                sender_mac: GW_MAC,
                sender_ip: GW4,
                target_mac: MAC,
                target_ip: OUR4,
            }
            .emit(&mut b);
            b
        }
        Family::V6 => {
            let mut b = vec![0; 24];
            b[0] = 136;
            b[8..24].copy_from_slice(&GW6.octets());
            b
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, mut rest)) = data.split_first() else {
        return;
    };
    let family = if first & 1 == 0 {
        Family::V4
    } else {
        Family::V6
    };
    let gw: IpAddr = match family {
        Family::V4 => GW4.into(),
        Family::V6 => GW6.into(),
    };
    let asker = Asker {
        gateway: gw,
        our_mac: MAC,
        our_ip: OUR4,
    };
    let mut p = L2Probe::new(family);
    let mut now = Instant::now();
    // the shadow
    let mut wanted = false;
    let mut in_round = false;
    let mut probing: Option<(bool, Instant)> = None; // (sent, deadline)
    let mut answered = false;
    let mut kernel_ok = false;
    let mut reachable = false;
    let mut entry: Option<Mac> = None; // the neighbour entry's MAC, as the probe should see it
    let mut stale = false; // an ARP answer came from another MAC than the entry's
    let mut expired = false; // a request went out and its deadline passed unanswered
    let mut steps = 0;
    while let Some((&op, tail)) = rest.split_first() {
        rest = tail;
        steps += 1;
        if steps > 400 {
            break;
        }
        match op % 8 {
            0 => {
                wanted = op & 8 != 0;
                p.note_round(wanted);
            }
            1 => {
                let with = op & 8 != 0;
                let req = p.start(now, T, with.then_some(asker));
                in_round = true;
                answered = false;
                kernel_ok = false;
                expired = false;
                stale = false;
                assert_eq!(
                    req.is_some(),
                    wanted && with,
                    "asks only after a failed round"
                );
                probing = req.map(|_| (false, now + T));
            }
            2 => {
                p.sent(now);
                if let Some(pr) = probing.as_mut() {
                    pr.0 = true;
                }
            }
            3 | 7 => {
                let pkt = if op % 8 == 7 {
                    answer(family)
                } else {
                    let n = usize::from(rest.first().copied().unwrap_or(0)).min(rest.len());
                    let (pkt, tail) = rest.split_at(n);
                    rest = tail;
                    pkt.to_vec()
                };
                let (ours, mismatch) = match family {
                    Family::V4 => match Arp::parse_reply_from(&pkt, GW4, OUR4) {
                        Ok(m) => (true, entry.is_some_and(|e| e != m)),
                        Err(_) => (false, false),
                    },
                    Family::V6 => (Advert::parse_for(&pkt, GW6).is_ok(), false),
                };
                let waiting = probing.is_some_and(|(sent, _)| sent);
                assert_eq!(p.waiting(), waiting);
                let fresh = matches!(p.result(), L2::Unknown);
                let took = p.handle_packet(now, &pkt);
                if mismatch {
                    assert_eq!(took, waiting && fresh, "a stale answer is news once");
                    if took {
                        stale = true;
                    }
                } else {
                    assert_eq!(took, ours && waiting, "an answer counts only while awaited");
                    if took {
                        answered = true;
                        probing = None;
                    }
                }
            }
            4 => {
                let state = u16::from(rest.first().copied().unwrap_or(0));
                rest = rest.get(1..).unwrap_or(&[]);
                let mac = match rest.first().copied().unwrap_or(0) % 3 {
                    0 => None,
                    1 => Some(GW_MAC),
                    _ => Some(BOGUS),
                };
                rest = rest.get(1..).unwrap_or(&[]);
                let r = state & 0x02 != 0;
                p.neighbour(Some(gw), Some(state), mac);
                entry = mac.filter(|_| state != 0 && state & 0x21 == 0);
                if let (L2::Stale { answer, .. }, true) = (p.result(), in_round) {
                    assert!(
                        entry != Some(answer),
                        "the entry holds the answer: not stale"
                    );
                }
                if in_round && (stale && entry == Some(GW_MAC) || r && !reachable) {
                    kernel_ok = true;
                }
                reachable = r;
            }
            5 => {
                now += Duration::from_millis(u64::from(op >> 3) * 10);
                p.handle_timeout(now);
                if let Some((sent, deadline)) = probing {
                    if now >= deadline {
                        probing = None;
                        expired = sent;
                    }
                }
                assert!(
                    p.poll_timeout().is_none_or(|t| t > now),
                    "timer in the past"
                );
            }
            _ => {
                p.round_ended();
                in_round = false;
            }
        }
        match p.result() {
            L2::Alive => assert!(answered || kernel_ok, "alive without evidence"),
            L2::Dead => {
                assert!(!answered && !kernel_ok && !stale, "dead despite an answer");
                assert!(expired, "dead without an unanswered request");
            }
            L2::Stale { answer, entry: e } => {
                assert!(
                    stale && family == Family::V4,
                    "stale without a stranger's answer"
                );
                assert_eq!(answer, GW_MAC);
                assert_ne!(Some(answer), Some(e));
            }
            L2::Unknown => assert!(!answered && !kernel_ok && !stale),
        }
        assert_eq!(p.poll_timeout(), probing.map(|(_, d)| d));
    }
});
