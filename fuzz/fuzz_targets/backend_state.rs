//! The state-file readers of `backend::detect` on any bytes; the first byte picks one:
//! NetworkManager's device keyfile (`nm_managed`), networkd's link file (`env_value`),
//! interfaces(5) (`parse_interfaces`), ifstate files (`ifstate_lists`), RHEL ifcfg files
//! (`parse_ifcfg`) and a DHCP client's /proc/PID/cmdline (`parse_dhcp_client`). Beyond no
//! panic: a client keeps its pid and command line, names only valid interfaces, udhcpc always
//! serves one (eth0 by default), and `serves` agrees with the names; a stanza found in a file
//! is found in the same file with other lines before it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use netheal::backend::detect::{
    env_value, ifstate_lists, nm_managed, parse_dhcp_client, parse_ifcfg, parse_interfaces,
    DhcpKind,
};

const IFACES: [&str; 3] = ["eth0", "wlan0", "br-lan"];
const COMMS: [&str; 5] = ["dhclient", "udhcpc", "dhcpcd", "busybox", "sshd"];

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let iface = IFACES[usize::from(which >> 4) % IFACES.len()];
    if which % 6 == 5 {
        let comm = COMMS[usize::from(which >> 3) % COMMS.len()];
        if let Some(c) = parse_dhcp_client(comm, 4242, rest) {
            assert_eq!(c.pid, 4242);
            assert!(!c.argv.is_empty());
            if c.kind == DhcpKind::Udhcpc {
                assert!(!c.ifaces.is_empty(), "udhcpc serves eth0 by default");
            }
            if c.kind == DhcpKind::Dhcpcd {
                for i in &c.ifaces {
                    assert!(netheal::config::values::check_iface_name(i).is_ok(), "{i:?}");
                }
            }
            assert_eq!(
                c.serves(iface),
                c.ifaces.is_empty() || c.ifaces.iter().any(|i| i == iface)
            );
        } else {
            assert!(comm == "sshd" || comm == "busybox" || rest.iter().all(|&b| b == 0));
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 6 {
        0 => {
            let m = nm_managed(text);
            if m.is_some() {
                assert!(text.contains("managed"));
            }
        }
        1 => {
            if let Some(v) = env_value(text, "ADMIN_STATE") {
                assert!(text.contains("ADMIN_STATE="));
                assert!(!v.contains('\n'));
            }
        }
        2 => {
            let p = parse_interfaces(text, iface);
            if p.names_iface {
                let more = format!("# netheal\nauto lo\niface lo inet loopback\n{text}");
                assert!(parse_interfaces(&more, iface).names_iface);
            }
        }
        3 => {
            if ifstate_lists(text, iface) {
                assert!(text.contains(iface));
            }
        }
        _ => {
            let (ours, _) = parse_ifcfg(text, iface);
            if !ours {
                assert!(text.contains("DEVICE"));
            }
        }
    }
});
