//! The configuration file parser on any text, then the settings builder on what it accepted
//! (for every section, and for the globals alone). An accepted entry sits on the line it says,
//! section names are unique and valid, and an error names the file. What `--check` prints
//! for a built watch (`IfaceConfig::describe`) reads back as the same settings.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use netheal::config::{self, file, values::check_iface_name, Args};

const PATH: &str = "/fuzz/netheal.conf";

fuzz_target!(|data: &[u8]| {
    let doc = match file::parse_bytes(data, Path::new(PATH)) {
        Ok(doc) => doc,
        Err(e) => {
            assert!(e.place.starts_with(PATH), "error without the file: {e}");
            // Every error names its line (a non-UTF-8 byte its line and column too).
            let line = e.place[PATH.len()..].trim_start_matches(':');
            let line: usize = line.split(':').next().unwrap().parse().expect("no line");
            let lines = data.split(|&b| b == b'\n').count();
            assert!((1..=lines).contains(&line), "line {line} of {lines}: {e}");
            let _ = e.to_string();
            return;
        }
    };
    let text = std::str::from_utf8(data).expect("accepted text that is not UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    let on_its_line = |line: usize, what: &str| {
        assert!(
            (1..=lines.len()).contains(&line),
            "line {line} of {}",
            lines.len()
        );
        assert!(
            lines[line - 1].contains(what),
            "{what:?} not on line {line}"
        );
    };
    for (i, s) in doc.sections.iter().enumerate() {
        on_its_line(s.line, &s.iface);
        assert!(check_iface_name(&s.iface).is_ok());
        assert!(
            doc.sections[..i].iter().all(|o| o.iface != s.iface),
            "duplicate section"
        );
    }
    let entries = doc
        .globals
        .iter()
        .chain(doc.sections.iter().flat_map(|s| &s.entries));
    for e in entries {
        on_its_line(e.line, &e.key);
        on_its_line(e.line, &e.value);
        assert!(!e.value.is_empty());
    }
    for s in doc.sections.iter().take(4) {
        let args = Args {
            iface: Some(s.iface.clone()),
            ..Args::default()
        };
        if let Ok(c) = config::build(&args, Some(&doc)) {
            assert!(c.watches.iter().any(|w| w.iface == s.iface));
        }
    }
    if let Ok(c) = config::build(&Args::default(), Some(&doc)) {
        for w in c.watches.iter().take(2) {
            let text = w.describe();
            let again = file::parse(&text, Path::new(PATH))
                .unwrap_or_else(|e| panic!("--check output does not parse: {e}\n{text}"));
            let args = Args {
                iface: Some(w.iface.clone()),
                ..Args::default()
            };
            let c2 = config::build(&args, Some(&again))
                .unwrap_or_else(|e| panic!("--check output does not build: {e}\n{text}"));
            assert_eq!(&c2.watches[0], w, "--check output reads back differently");
        }
    }
});
