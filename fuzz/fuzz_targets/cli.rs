//! The command line on any arguments (any bytes, not only UTF-8), then the settings builder
//! on what it accepted. What it accepts names a valid interface and known settings only, and
//! the same invocation written back out as arguments parses to the same thing.
#![no_main]

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;
use netheal::cli::{self, Command, Invocation};
use netheal::config::{self, values::check_iface_name, GLOBAL_KEYS, IFACE_KEYS, SWITCHES};

fuzz_target!(|args: Vec<Vec<u8>>| {
    let args: Vec<OsString> = args.into_iter().take(32).map(OsString::from_vec).collect();
    let inv = match cli::parse(args.clone()) {
        Ok(Command::Run(inv)) => inv,
        Ok(_) => return,
        Err(e) => {
            let _ = e.to_string();
            return;
        }
    };
    if let Some(iface) = &inv.args.iface {
        assert!(check_iface_name(iface).is_ok(), "{iface:?}");
    }
    for (k, _) in &inv.args.settings {
        assert!(IFACE_KEYS.contains(&k.as_str()) || GLOBAL_KEYS.contains(&k.as_str()));
    }
    if let Ok(c) = config::build(&inv.args, None) {
        let iface = inv
            .args
            .iface
            .as_deref()
            .expect("built without an interface");
        assert_eq!(c.watches.len(), 1);
        assert_eq!(c.watches[0].iface, iface);
    }
    let again = written_out(&inv);
    match cli::parse(again.clone()) {
        Ok(Command::Run(inv2)) => assert_eq!(inv2, inv, "{args:?} -> {again:?}"),
        other => panic!("{args:?} -> {again:?} -> {other:?}"),
    }
});

/// The invocation as the long-option arguments that ask for it.
fn written_out(inv: &Invocation) -> Vec<OsString> {
    let mut out: Vec<OsString> = Vec::new();
    for (on, flag) in [
        (inv.once, "--once"),
        (inv.check, "--check"),
        (inv.status, "--status"),
        (inv.daemon, "--daemon"),
    ] {
        if on {
            out.push(flag.into());
        }
    }
    if let Some(c) = &inv.args.config {
        out.push("--config".into());
        out.push(c.as_os_str().to_os_string());
    }
    for (k, v) in &inv.args.settings {
        out.push(format!("--{k}").into());
        if !SWITCHES.contains(&k.as_str()) {
            out.push(v.into());
        }
    }
    if let Some(iface) = &inv.args.iface {
        out.push("--".into());
        out.push(iface.into());
    }
    out
}
