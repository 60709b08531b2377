//! `backend::netifd::parse_dump` on any text, as `ubus call network.interface dump` would
//! print it. What it accepts maps every device it lists back to a logical interface that
//! lists that device (an up one when there is one); whitespace around the JSON changes
//! nothing; the text cut anywhere is an error or a result, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::backend::netifd::{logical_for, parse_dump};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(list) = parse_dump(text) else {
        return;
    };
    for l in &list {
        for d in &l.devices {
            let name = logical_for(&list, d).expect("a listed device maps to something");
            let hits: Vec<_> = list
                .iter()
                .filter(|x| x.devices.iter().any(|y| y == d))
                .collect();
            assert!(hits.iter().any(|x| x.name == name), "{d} -> {name}");
            if hits.iter().any(|x| x.up == Some(true)) {
                assert!(
                    hits.iter().any(|x| x.name == name && x.up == Some(true)),
                    "{d}: an up interface is preferred"
                );
            }
        }
    }
    assert_eq!(parse_dump(&format!(" \n{text}\n\t")), Ok(list.clone()));
    if let Some((cut, _)) = text.char_indices().nth(text.chars().count() / 2) {
        let _ = parse_dump(&text[..cut]);
    }
});
