//! What netheal asks the kernel for, emitted then read back with its own parser: an address
//! or route put back after a link bounce (`Change`), and the dump requests (`Dump`). Each
//! frames as exactly one message of the length `emit` returned, and the address or route
//! parses back with the fields it was built from.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use netheal::wire::netlink::{Change, Dump, Message, Messages};
use netheal::wire::Family;

#[derive(Arbitrary, Debug)]
enum Input {
    Addr {
        index: u32,
        addr: IpAddr,
        prefix_len: u8,
        scope: u8,
    },
    Route {
        v6: bool,
        dst: Option<[u8; 16]>,
        dst_len: u8,
        table: u32,
        protocol: u8,
        metric: u32,
        oif: u32,
        gateway: Option<[u8; 16]>,
    },
    Dump {
        which: u8,
        seq: u32,
    },
}

fn ip(v6: bool, b: [u8; 16]) -> IpAddr {
    if v6 {
        IpAddr::from(b)
    } else {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    }
}

fuzz_target!(|i: Input| {
    let mut buf = [0u8; 256];
    let change = match i {
        Input::Dump { which, seq } => {
            let d = Dump::ALL[usize::from(which) % Dump::ALL.len()];
            let n = d.emit(seq, &mut buf).expect("a dump request fits MAX_LEN");
            assert!(n <= Dump::MAX_LEN);
            let msgs: Vec<_> = Messages::new(&buf[..n]).collect();
            assert_eq!(msgs.len(), 1);
            let m = msgs[0].expect("a dump request frames");
            assert_eq!((m.seq(), m.payload().len() + 16), (seq, n));
            assert!(d.emit(seq, &mut buf[..n - 1]).is_none());
            return;
        }
        Input::Addr {
            index,
            addr,
            prefix_len,
            scope,
        } => Change::AddAddr {
            index,
            addr,
            prefix_len,
            scope,
        },
        Input::Route {
            v6,
            dst,
            dst_len,
            table,
            protocol,
            metric,
            oif,
            gateway,
        } => Change::AddRoute {
            family: if v6 { Family::V6 } else { Family::V4 },
            dst: dst.map(|b| ip(v6, b)),
            dst_len,
            table,
            protocol,
            metric,
            oif,
            gateway: gateway.map(|b| ip(v6, b)),
        },
    };
    let n = change.emit(7, &mut buf).expect("a change fits MAX_LEN");
    assert!(n <= Change::MAX_LEN);
    let msgs: Vec<_> = Messages::new(&buf[..n]).collect();
    assert_eq!(msgs.len(), 1, "{change:?}");
    let m = msgs[0].expect("a change frames");
    assert_eq!((m.seq(), m.payload().len() + 16), (7, n));
    match (change, Message::parse(&m)) {
        (
            Change::AddAddr {
                index,
                addr,
                prefix_len,
                scope,
            },
            Ok(Message::NewAddr(a)),
        ) => {
            assert_eq!(
                (a.index, a.addr, a.prefix_len, a.scope),
                (index, addr, prefix_len, scope)
            );
        }
        (
            Change::AddRoute {
                family,
                dst,
                dst_len,
                table,
                protocol,
                metric,
                oif,
                gateway,
            },
            Ok(Message::NewRoute(r)),
        ) => {
            assert_eq!(
                (r.family, r.dst_len, r.table, r.protocol),
                (family, dst_len, table, protocol)
            );
            assert_eq!((r.priority, r.oif, r.gateway), (metric, Some(oif), gateway));
            assert_eq!(r.dst, dst.filter(|_| dst_len > 0));
        }
        (c, got) => panic!("{c:?} read back as {got:?}"),
    }
});
