//! OpenWrt's netifd: which *logical* interface (`wan`, `lan`) a Linux device belongs to, from
//! the text netifd and UCI leave behind. Pure parsers over text handed in; they never panic
//! and never read a file (src/backend/detect.rs does, under its root). Three sources:
//!
//! - the JSON of `ubus call network.interface dump` (netifd's own view: `interface`,
//!   `device`, `l3_device` per logical interface; see netifd's interface.c
//!   `netifd_dump_status`), parsed by a small bounded JSON reader;
//! - `/var/state/network`, UCI's state overlay (`uci -P /var/state`), lines of
//!   `network.wan.ifname=eth0.2` or `network.wan.device='eth0.2'`;
//! - `/etc/config/network`, the UCI configuration (`config interface 'wan'` then
//!   `option device 'eth0.2'`, or `option ifname` before OpenWrt 21.02).
//!
//! netifd cannot run on this project's test machines: these parsers are tested on samples
//! written after OpenWrt's documentation and netifd's source, not captured from a router.
#![forbid(unsafe_code)]

/// Deepest JSON nesting accepted (a dump nests 4 or 5 levels).
const MAX_DEPTH: usize = 16;
/// Longest JSON text looked at.
pub const MAX_JSON: usize = 1 << 20;

/// A logical interface and the devices netifd (or UCI) ties to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logical {
    pub name: String,
    pub devices: Vec<String>,
    /// netifd says it is up (the dump's `up`, the state's `up=1`); None: not said.
    pub up: Option<bool>,
}

/// The logical interface `device` belongs to, among `list`: one that is up first, then the
/// first listed (netifd's own `find_config` in lib/network/config.sh takes the first too).
pub fn logical_for(list: &[Logical], device: &str) -> Option<String> {
    let mut hits = list
        .iter()
        .filter(|l| l.devices.iter().any(|d| d == device));
    let first = hits.clone().next()?;
    let up = hits.find(|l| l.up == Some(true)).unwrap_or(first);
    Some(up.name.clone())
}

/// Prefixes of the layer-3 devices netifd's protocol handlers name after their logical
/// interface (ppp.sh: `pppoe-wan`, `pppoa-wan`, `3g-wan`, `pptp-vpn`, `l2tp-vpn`), which the
/// UCI files never list.
const PPP_PREFIXES: [&str; 5] = ["pppoe-", "pppoa-", "3g-", "pptp-", "l2tp-"];

/// `logical_for`, and for a device named like a PPP handler's (`pppoe-wan`) the logical
/// interface of that name when `list` has it.
pub fn logical_for_device(list: &[Logical], device: &str) -> Option<String> {
    logical_for(list, device).or_else(|| {
        PPP_PREFIXES.iter().find_map(|p| {
            let name = device.strip_prefix(p)?;
            list.iter().find(|l| l.name == name).map(|l| l.name.clone())
        })
    })
}

// ---------------------------------------------------------------- ubus dump (JSON)

/// A JSON value, as far as the dump needs one.
#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Num,
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }
}

struct Reader<'a> {
    s: &'a [u8],
    i: usize,
}

impl Reader<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.ws();
        self.s.get(self.i).copied()
    }

    fn eat(&mut self, b: u8) -> Result<(), String> {
        if self.peek() == Some(b) {
            self.i += 1;
            Ok(())
        } else {
            Err(format!("expected '{}' at byte {}", b as char, self.i))
        }
    }

    fn lit(&mut self, word: &str, v: Json) -> Result<Json, String> {
        if self.s[self.i..].starts_with(word.as_bytes()) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(format!("bad literal at byte {}", self.i))
        }
    }

    fn value(&mut self, depth: usize) -> Result<Json, String> {
        if depth > MAX_DEPTH {
            return Err("nested too deeply".into());
        }
        match self.peek() {
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                if self.peek() == Some(b'}') {
                    self.i += 1;
                    return Ok(Json::Obj(m));
                }
                loop {
                    let k = self.string()?;
                    self.eat(b':')?;
                    let v = self.value(depth + 1)?;
                    m.push((k, v));
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(Json::Obj(m));
                        }
                        _ => return Err(format!("expected ',' or '}}' at byte {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                let mut a = Vec::new();
                if self.peek() == Some(b']') {
                    self.i += 1;
                    return Ok(Json::Arr(a));
                }
                loop {
                    a.push(self.value(depth + 1)?);
                    match self.peek() {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(Json::Arr(a));
                        }
                        _ => return Err(format!("expected ',' or ']' at byte {}", self.i)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Str),
            Some(b't') => self.lit("true", Json::Bool(true)),
            Some(b'f') => self.lit("false", Json::Bool(false)),
            Some(b'n') => self.lit("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
                    )
                {
                    self.i += 1;
                }
                Ok(Json::Num)
            }
            Some(_) => Err(format!("unexpected byte at {}", self.i)),
            None => Err("unexpected end".into()),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.eat(b'"')?;
        let mut out = Vec::new();
        loop {
            let Some(&b) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match b {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("unterminated string".into());
                    };
                    self.i += 1;
                    match e {
                        b'u' => {
                            // Names are ASCII; anything else only needs to be skipped.
                            let hex = self.s.get(self.i..self.i + 4).ok_or("short \\u escape")?;
                            self.i += 4;
                            let v = std::str::from_utf8(hex)
                                .ok()
                                .and_then(|h| u32::from_str_radix(h, 16).ok())
                                .ok_or("bad \\u escape")?;
                            let c = char::from_u32(v).unwrap_or('\u{fffd}');
                            let mut tmp = [0u8; 4];
                            out.extend_from_slice(c.encode_utf8(&mut tmp).as_bytes());
                        }
                        b'n' => out.push(b'\n'),
                        b't' => out.push(b'\t'),
                        b'r' => out.push(b'\r'),
                        b'b' => out.push(8),
                        b'f' => out.push(12),
                        other => out.push(other),
                    }
                }
                _ => out.push(b),
            }
        }
    }
}

/// The logical interfaces of a `ubus call network.interface dump` reply.
pub fn parse_dump(text: &str) -> Result<Vec<Logical>, String> {
    if text.len() > MAX_JSON {
        return Err("dump too long".into());
    }
    let mut r = Reader {
        s: text.as_bytes(),
        i: 0,
    };
    let top = r.value(0)?;
    if r.peek().is_some() {
        return Err(format!("trailing bytes at {}", r.i));
    }
    let Some(Json::Arr(items)) = top.get("interface") else {
        return Err("no \"interface\" array".into());
    };
    let mut out = Vec::new();
    for it in items {
        let Some(name) = it.get("interface").and_then(Json::str) else {
            continue;
        };
        let mut devices = Vec::new();
        for key in ["l3_device", "device"] {
            if let Some(d) = it.get(key).and_then(Json::str) {
                if !devices.iter().any(|x| x == d) {
                    devices.push(d.to_string());
                }
            }
        }
        let up = match it.get("up") {
            Some(Json::Bool(b)) => Some(*b),
            _ => None,
        };
        out.push(Logical {
            name: name.to_string(),
            devices,
            up,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------- UCI text

/// One UCI word: `'quoted'`, `"quoted"` or bare.
fn unquote(s: &str) -> &str {
    let s = s.trim();
    for q in ['\'', '"'] {
        if let Some(inner) = s.strip_prefix(q).and_then(|r| r.strip_suffix(q)) {
            return inner;
        }
    }
    s
}

fn entry<'a>(list: &'a mut Vec<Logical>, name: &str) -> &'a mut Logical {
    if let Some(i) = list.iter().position(|l| l.name == name) {
        return &mut list[i];
    }
    list.push(Logical {
        name: name.to_string(),
        devices: Vec::new(),
        up: None,
    });
    let last = list.len() - 1;
    &mut list[last]
}

fn add_devices(l: &mut Logical, value: &str) {
    // `ifname` may list several devices, space separated (a bridge before 21.02).
    for d in value.split_whitespace() {
        if !d.starts_with('@') && !l.devices.iter().any(|x| x == d) {
            l.devices.push(d.to_string());
        }
    }
}

/// `/var/state/network`: UCI state lines `network.SECTION.OPTION=VALUE` (a `+` in front adds
/// to a list; `-`, `@` and `^` lines delete, rename and reorder: not ours to follow).
pub fn parse_state(text: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    for line in text.lines().take(10_000) {
        let line = line.trim();
        let line = line.strip_prefix('+').unwrap_or(line);
        let Some(rest) = line.strip_prefix("network.") else {
            continue;
        };
        let Some((key, value)) = rest.split_once('=') else {
            continue;
        };
        let Some((section, option)) = key.split_once('.') else {
            continue;
        };
        if section.is_empty() || section.starts_with('@') {
            continue;
        }
        let value = unquote(value);
        match option {
            "ifname" | "device" | "l3_device" => add_devices(entry(&mut out, section), value),
            "up" => entry(&mut out, section).up = Some(value == "1"),
            _ => {}
        }
    }
    out
}

/// `/etc/config/network`: `config interface 'NAME'` sections and their `option device` (or
/// `option ifname`, before OpenWrt 21.02).
pub fn parse_config(text: &str) -> Vec<Logical> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines().take(10_000) {
        let line = line.trim();
        if line.starts_with('#') {
            continue;
        }
        let mut words = line.splitn(3, char::is_whitespace);
        let (Some(kw), rest) = (words.next(), words.collect::<Vec<_>>()) else {
            continue;
        };
        match kw {
            "config" => {
                current = match rest.as_slice() {
                    [kind, name] if unquote(kind) == "interface" => {
                        let name = unquote(name);
                        (!name.is_empty()).then(|| {
                            entry(&mut out, name);
                            name.to_string()
                        })
                    }
                    _ => None,
                };
            }
            "option" | "list" => {
                if let (Some(name), [opt, value]) = (&current, rest.as_slice()) {
                    if matches!(unquote(opt), "device" | "ifname") {
                        add_devices(entry(&mut out, name), unquote(value));
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump after netifd's `netifd_dump_status`, as `ubus call network.interface dump`
    /// prints it on an OpenWrt 23.05 router with a DHCP uplink, a PPPoE uplink and a bridge.
    const DUMP: &str = r#"{
	"interface": [
		{
			"interface": "lan",
			"up": true,
			"pending": false,
			"available": true,
			"autostart": true,
			"dynamic": false,
			"uptime": 81234,
			"l3_device": "br-lan",
			"proto": "static",
			"device": "br-lan",
			"updated": [
				"addresses"
			],
			"metric": 0,
			"dns_metric": 0,
			"delegation": true,
			"ipv4-address": [
				{
					"address": "198.51.100.1",
					"mask": 24
				}
			],
			"ipv6-address": [],
			"route": [],
			"dns-server": [],
			"dns-search": [],
			"neighbors": [],
			"inactive": {
				"ipv4-address": [],
				"ipv6-address": [],
				"route": [],
				"dns-server": [],
				"dns-search": [],
				"neighbors": []
			},
			"data": {}
		},
		{
			"interface": "wan",
			"up": true,
			"pending": false,
			"available": true,
			"autostart": true,
			"dynamic": false,
			"uptime": 81230,
			"l3_device": "eth0.2",
			"proto": "dhcp",
			"device": "eth0.2",
			"metric": 0,
			"dns_metric": 0,
			"delegation": true,
			"ipv4-address": [
				{
					"address": "203.0.113.45",
					"mask": 24
				}
			],
			"route": [
				{
					"target": "0.0.0.0",
					"mask": 0,
					"nexthop": "203.0.113.1",
					"source": "203.0.113.45/32"
				}
			],
			"data": {
				"leasetime": 86400,
				"hostname": "router\u002dwan"
			}
		},
		{
			"interface": "wan6",
			"up": false,
			"pending": false,
			"available": true,
			"autostart": true,
			"dynamic": false,
			"proto": "dhcpv6",
			"device": "eth0.2",
			"data": {},
			"errors": [
				{
					"subsystem": "dhcpv6",
					"code": "NO_PREFIX"
				}
			]
		},
		{
			"interface": "dsl",
			"up": true,
			"l3_device": "pppoe-dsl",
			"proto": "pppoe",
			"device": "eth1",
			"data": {}
		}
	]
}
"#;

    #[test]
    fn dump_maps_devices_to_logical_names() {
        let list = parse_dump(DUMP).unwrap();
        let names: Vec<&str> = list.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["lan", "wan", "wan6", "dsl"]);
        assert_eq!(logical_for(&list, "br-lan").as_deref(), Some("lan"));
        // wan6 shares the device but is down: the up one is taken.
        assert_eq!(logical_for(&list, "eth0.2").as_deref(), Some("wan"));
        // PPPoE: the L3 device and the underlying port both lead to the logical interface.
        assert_eq!(logical_for(&list, "pppoe-dsl").as_deref(), Some("dsl"));
        assert_eq!(logical_for(&list, "eth1").as_deref(), Some("dsl"));
        assert_eq!(logical_for(&list, "eth9"), None);
    }

    #[test]
    fn broken_dumps_are_errors_not_panics() {
        for bad in [
            "",
            "{",
            "[]",
            "{\"interface\": {}}",
            "{\"interface\": [}",
            "{\"interface\": [{\"interface\": \"wan\"}]} x",
            "{\"a\": \"\\u12\"}",
            "{\"a\": tru}",
            "\"",
        ] {
            assert!(parse_dump(bad).is_err(), "{bad:?}");
        }
        let deep = format!("{{\"interface\": {}{}}}", "[".repeat(40), "]".repeat(40));
        assert!(parse_dump(&deep).unwrap_err().contains("deep"));
        // Truncated at every byte: never a panic.
        for i in 0..DUMP.len() {
            if DUMP.is_char_boundary(i) {
                let _ = parse_dump(&DUMP[..i]);
            }
        }
        assert_eq!(parse_dump("{\"interface\": []}"), Ok(vec![]));
    }

    /// /var/state/network as `uci -P /var/state set` leaves it (the older scripts'
    /// `uci_set_state network wan ifname eth0.2`, plus netifd-era `device`).
    const STATE: &str = "network.lan.ifname=br-lan\nnetwork.lan.up=1\n\
        network.wan=interface\nnetwork.wan.ifname='eth0.2'\nnetwork.wan.up='1'\n\
        network.wan.connect_time=81230\nnetwork.wan6.device=eth0.2\nnetwork.wan6.up=0\n\
        +network.guest.ifname=wlan0\n-network.old.ifname\nnetwork.@interface[3].ifname=eth5\n";

    #[test]
    fn var_state_maps_devices_to_logical_names() {
        let list = parse_state(STATE);
        assert_eq!(logical_for(&list, "eth0.2").as_deref(), Some("wan"));
        assert_eq!(logical_for(&list, "br-lan").as_deref(), Some("lan"));
        assert_eq!(logical_for(&list, "wlan0").as_deref(), Some("guest"));
        assert_eq!(
            logical_for(&list, "eth5"),
            None,
            "anonymous sections skipped"
        );
        assert!(!list.iter().any(|l| l.name == "old"));
    }

    /// /etc/config/network of OpenWrt 23.05 (`option device`) and of 19.07 (`option ifname`).
    const CONFIG: &str = "
config interface 'loopback'
\toption device 'lo'
\toption proto 'static'
\toption ipaddr '127.0.0.1'

config globals 'globals'
\toption ula_prefix 'fd12:3456::/48'

config device
\toption name 'br-lan'
\toption type 'bridge'
\tlist ports 'lan1'
\tlist ports 'lan2'

config interface 'lan'
\toption device 'br-lan'
\toption proto 'static'

config interface 'wan'
\toption device 'wan'
\toption proto 'dhcp'

config interface \"lte\"
\toption ifname 'wwan0 usb0'
\toption proto 'qmi'

config interface 'wan_alias'
\toption device '@wan'
";

    #[test]
    fn uci_config_maps_devices_to_logical_names() {
        let list = parse_config(CONFIG);
        assert_eq!(logical_for(&list, "br-lan").as_deref(), Some("lan"));
        assert_eq!(logical_for(&list, "wan").as_deref(), Some("wan"));
        assert_eq!(logical_for(&list, "usb0").as_deref(), Some("lte"));
        assert_eq!(logical_for(&list, "lo").as_deref(), Some("loopback"));
        // A `config device` section's name is not a logical interface.
        assert_eq!(logical_for(&list, "lan1"), None);
        assert!(list
            .iter()
            .any(|l| l.name == "wan_alias" && l.devices.is_empty()));
    }
}
