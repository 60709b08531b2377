//! `backend::netifd::parse_state` (/var/state/network) and `parse_config`
//! (/etc/config/network) on any text; the first byte picks the parser. Every logical
//! interface has a name; devices are single words, never `@alias` references; every listed
//! device maps back to a logical interface that lists it; the same text twice gives the same
//! mapping (sections merge, nothing is listed twice).
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::backend::netifd::{logical_for, logical_for_device, parse_config, parse_state, Logical};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    let parse: fn(&str) -> Vec<Logical> = if which & 1 == 0 {
        parse_state
    } else {
        parse_config
    };
    let list = parse(text);
    for l in &list {
        assert!(!l.name.is_empty());
        for (i, d) in l.devices.iter().enumerate() {
            assert!(!d.is_empty() && !d.contains(char::is_whitespace), "{d:?}");
            assert!(!d.starts_with('@'), "{d:?}");
            assert!(!l.devices[..i].contains(d), "{d} listed twice");
            let name = logical_for(&list, d).expect("a listed device maps to something");
            assert!(list
                .iter()
                .any(|x| x.name == name && x.devices.contains(d)));
        }
    }
    // A PPP handler's device name (`pppoe-NAME`) leads to a logical interface of that name.
    for l in &list {
        let ppp = format!("pppoe-{}", l.name);
        let got = logical_for_device(&list, &ppp).expect("pppoe-NAME maps");
        assert!(list.iter().any(|x| x.name == got), "{ppp} -> {got}");
    }
    let twice = parse(&format!("{text}\n{text}"));
    for l in &list {
        for d in &l.devices {
            assert!(logical_for(&twice, d).is_some(), "{d} lost when repeated");
        }
    }
});
