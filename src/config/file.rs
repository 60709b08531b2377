//! The configuration file's syntax (netheal.conf(5)): `key = value` lines, `[IFACE]` section
//! headers, `#` comments (whole lines, or after whitespace), blank lines. Before the first
//! section: global settings. This module only splits the text into located entries and
//! rejects what is malformed or repeated; the values are checked by the settings builder.
#![forbid(unsafe_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::values::check_iface_name;
use super::{secure, ConfigError, GLOBAL_KEYS, IFACE_KEYS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The file it was read from: the main file or a drop-in.
    pub path: PathBuf,
    pub line: usize,
    pub iface: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    /// The main file (its globals' file).
    pub path: PathBuf,
    pub globals: Vec<Entry>,
    pub sections: Vec<Section>,
    /// Every file read, in order: the main file (when it exists), then the drop-ins.
    pub files: Vec<PathBuf>,
    /// Section index by interface name: a lookup per header keeps parsing linear.
    index: HashMap<String, usize>,
}

impl Document {
    pub fn section(&self, iface: &str) -> Option<&Section> {
        self.index.get(iface).map(|&i| &self.sections[i])
    }

    /// Adds `s`, refusing an interface some section already has (in any file).
    fn push_section(&mut self, s: Section) -> Result<(), ConfigError> {
        if let Some(first) = self.section(&s.iface) {
            let first_at = if first.path == s.path {
                format!("line {}", first.line)
            } else {
                format!("{}:{}", first.path.display(), first.line)
            };
            return Err(ConfigError::file(
                &s.path,
                s.line,
                "section",
                Some(&s.iface),
                format!("duplicate section (first at {first_at})"),
            ));
        }
        self.index.insert(s.iface.clone(), self.sections.len());
        self.sections.push(s);
        Ok(())
    }
}

/// The drop-in directory of a main file: its name with `.conf` replaced by `.d`, or `.d`
/// appended (`/etc/netheal.conf` -> `/etc/netheal.d`, `-c /x/test` -> `/x/test.d`).
pub fn dropin_dir(main: &Path) -> PathBuf {
    let s = main.as_os_str().to_string_lossy();
    match s.strip_suffix(".conf") {
        Some(stem) if !stem.is_empty() && !stem.ends_with('/') => {
            PathBuf::from(format!("{stem}.d"))
        }
        _ => PathBuf::from(format!("{s}.d")),
    }
}

/// Reads `main` (when it exists, or always when `required`), then every `*.conf` in its
/// drop-in directory in lexical (byte) order, each with the same syntax and the same
/// security checks. Drop-ins hold only `[IFACE]` sections: settings before a drop-in's first
/// section (global ones, or defaults for every interface) belong in the main file. An
/// interface with sections in two files is refused, naming both. None when neither the
/// file nor the directory exists.
pub fn load_all(main: &Path, required: bool) -> Result<Option<Document>, ConfigError> {
    let exists = required || std::fs::symlink_metadata(main).is_ok();
    let mut doc = if exists {
        load(main)?
    } else {
        Document {
            path: main.to_path_buf(),
            ..Document::default()
        }
    };
    let dir = dropin_dir(main);
    let at_dir = |e: String| ConfigError::file(&dir, 0, "", None, e);
    let Some(real) = secure::check_dropin_dir(&dir).map_err(at_dir)? else {
        return Ok(exists.then_some(doc));
    };
    let mut names: Vec<std::ffi::OsString> = std::fs::read_dir(&real)
        .map_err(|e| at_dir(format!("cannot read: {e}")))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .filter(|n| {
            let b = std::os::unix::ffi::OsStrExt::as_bytes(n.as_os_str());
            b.ends_with(b".conf") && !b.starts_with(b".")
        })
        .collect();
    names.sort();
    for name in names {
        let part = load(&dir.join(name))?;
        if let Some(e) = part.globals.first() {
            return Err(ConfigError::file(
                &part.path,
                e.line,
                &e.key,
                None,
                format!(
                    "a drop-in holds only [IFACE] sections; global settings and defaults for every interface go in {}",
                    main.display()
                ),
            ));
        }
        doc.files.push(part.path.clone());
        for s in part.sections {
            doc.push_section(s)?;
        }
    }
    Ok(Some(doc))
}

/// Reads and parses one file, refusing one that someone other than root (or the user
/// running netheal) could have changed: see `secure`. It decides what runs as root.
pub fn load(path: &Path) -> Result<Document, ConfigError> {
    let bytes = secure::read_config(path).map_err(|e| ConfigError::file(path, 0, "", None, e))?;
    parse_bytes(&bytes, path)
}

/// `parse` of raw bytes: text that is not UTF-8 is refused at its line and column.
pub fn parse_bytes(bytes: &[u8], path: &Path) -> Result<Document, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse(text, path),
        Err(e) => {
            let good = &bytes[..e.valid_up_to()];
            let line = good.iter().filter(|&&b| b == b'\n').count() + 1;
            let col = good.len() - good.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) + 1;
            Err(ConfigError {
                place: format!("{}:{line}:{col}", path.display()),
                key: String::new(),
                value: None,
                expected: format!(
                    "byte 0x{:02x} is not UTF-8: expected UTF-8 text (iconv -t UTF-8 converts it)",
                    bytes[e.valid_up_to()]
                ),
            })
        }
    }
}

/// Splits `text` into globals and sections. `path` only names the file in errors. A leading
/// UTF-8 byte order mark (as some Windows editors write) is skipped.
pub fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut doc = Document {
        path: path.to_path_buf(),
        files: vec![path.to_path_buf()],
        ..Document::default()
    };
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let err = |key: &str, value: Option<&str>, expected: String| {
            ConfigError::file(path, line, key, value, expected)
        };
        let content = strip_comment(raw).trim();
        if content.is_empty() {
            continue;
        }
        if let Some(rest) = content.strip_prefix('[') {
            let name = rest
                .strip_suffix(']')
                .ok_or_else(|| {
                    err(
                        "",
                        Some(content),
                        "expected a section header like [eth0]".into(),
                    )
                })?
                .trim();
            check_iface_name(name).map_err(|e| err("section", Some(name), e))?;
            doc.push_section(Section {
                path: path.to_path_buf(),
                line,
                iface: name.to_string(),
                entries: Vec::new(),
            })?;
            continue;
        }
        let Some((key, value)) = content.split_once('=') else {
            return Err(err(
                "",
                Some(content),
                "expected 'key = value', a [IFACE] section header, or a # comment".into(),
            ));
        };
        let (key, value) = (key.trim(), value.trim());
        let in_section = !doc.sections.is_empty();
        if !IFACE_KEYS.contains(&key) && !GLOBAL_KEYS.contains(&key) {
            return Err(err(key, None, "unknown key (see netheal.conf(5))".into()));
        }
        if in_section && GLOBAL_KEYS.contains(&key) {
            return Err(err(
                key,
                None,
                "allowed only before the first [IFACE] section".into(),
            ));
        }
        if value.is_empty() {
            return Err(err(key, None, "expected a value after '='".into()));
        }
        let entries = match doc.sections.last_mut() {
            Some(s) => &mut s.entries,
            None => &mut doc.globals,
        };
        if let Some(first) = entries.iter().find(|e| e.key == key) {
            return Err(err(
                key,
                Some(value),
                format!("given twice in this section (first at line {})", first.line),
            ));
        }
        entries.push(Entry {
            line,
            key: key.to_string(),
            value: value.to_string(),
        });
    }
    Ok(doc)
}

/// Drops a `#` comment: the whole line when it starts with one, or from a `#` that follows
/// whitespace (so a path containing '#' survives when it is not preceded by a space).
fn strip_comment(line: &str) -> &str {
    if line.trim_start().starts_with('#') {
        return "";
    }
    match line.find(" #").or_else(|| line.find("\t#")) {
        Some(i) => &line[..i],
        None => line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<Document, String> {
        parse(text, Path::new("/etc/netheal.conf")).map_err(|e| e.to_string())
    }

    #[test]
    fn globals_sections_comments() {
        let d = p("# netheal\n\ninterval = 5s   # faster\nlog=syslog\n[eth0]\n  target = gateway 198.51.100.1\n\n[wlan0]\n# nothing\nheal = link\n").unwrap();
        assert_eq!(d.globals.len(), 2);
        assert_eq!(
            d.globals[0],
            Entry {
                line: 3,
                key: "interval".into(),
                value: "5s".into()
            }
        );
        assert_eq!(d.sections.len(), 2);
        assert_eq!(d.sections[0].iface, "eth0");
        assert_eq!(d.sections[0].entries[0].value, "gateway 198.51.100.1");
        assert_eq!(d.sections[1].line, 8);
        assert_eq!(d.section("wlan0").unwrap().entries[0].line, 10);
        assert_eq!(
            p("").unwrap(),
            Document {
                path: "/etc/netheal.conf".into(),
                files: vec!["/etc/netheal.conf".into()],
                ..Document::default()
            }
        );
    }

    #[test]
    fn errors_name_file_line_key_value() {
        let cases = [
            (
                "interval 5s\n",
                "/etc/netheal.conf:1: 'interval 5s': expected 'key = value'",
            ),
            (
                "[eth0\n",
                "/etc/netheal.conf:1: '[eth0': expected a section header",
            ),
            (
                "[eth0]\n[eth0]\n",
                "/etc/netheal.conf:2: section: 'eth0': duplicate section (first at line 1)",
            ),
            (
                "[a/b]\n",
                "/etc/netheal.conf:1: section: 'a/b': expected an interface name",
            ),
            ("\n\nbogus = 1\n", "/etc/netheal.conf:3: bogus: unknown key"),
            (
                "[eth0]\nlog = syslog\n",
                "/etc/netheal.conf:2: log: allowed only before the first [IFACE] section",
            ),
            (
                "[eth0]\ncount = 2\ncount = 3\n",
                "/etc/netheal.conf:3: count: '3': given twice in this section (first at line 2)",
            ),
            (
                "timeout =\n",
                "/etc/netheal.conf:1: timeout: expected a value",
            ),
        ];
        for (text, want) in cases {
            let got = p(text).unwrap_err();
            assert!(got.starts_with(want), "{text:?}: got {got:?}");
        }
    }

    #[test]
    fn same_key_in_globals_and_a_section_is_fine() {
        let d = p("count = 2\n[eth0]\ncount = 3\n").unwrap();
        assert_eq!(
            (
                d.globals[0].value.as_str(),
                d.sections[0].entries[0].value.as_str()
            ),
            ("2", "3")
        );
    }

    #[test]
    fn hash_inside_a_value_survives() {
        let d = p("[eth0]\non-change = /opt/a#b/hook\n").unwrap();
        assert_eq!(d.sections[0].entries[0].value, "/opt/a#b/hook");
    }

    #[test]
    fn load_refuses_loose_permissions() {
        use std::os::unix::fs::PermissionsExt;
        let path = std::env::temp_dir().join(format!("netheal-conf-{}", std::process::id()));
        std::fs::write(&path, "[eth0]\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o664)).unwrap();
        let refused = load(&path).unwrap_err().to_string();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let ok = load(&path);
        std::fs::remove_file(&path).unwrap();
        assert!(
            refused.contains("writable by group or others (mode 0664)"),
            "{refused}"
        );
        assert_eq!(ok.unwrap().sections[0].iface, "eth0");
        let missing = load(Path::new("/nonexistent/netheal.conf"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.starts_with("/nonexistent/netheal.conf: cannot read"),
            "{missing}"
        );
    }
}

#[cfg(test)]
mod more_tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn p(text: &str) -> Result<Document, String> {
        parse(text, Path::new("/etc/netheal.conf")).map_err(|e| e.to_string())
    }

    /// Some editors start a UTF-8 file with a byte order mark; it used to become part of the
    /// first key ("interval: unknown key", the mark invisible).
    #[test]
    fn a_leading_byte_order_mark_is_skipped() {
        let d = parse_bytes(b"\xef\xbb\xbfinterval = 5s\n[eth0]\n", Path::new("/x")).unwrap();
        assert_eq!(d.globals[0].key, "interval");
        // Anywhere else it is not skipped, but it shows in the message.
        let e = p("[eth0]\n\u{feff}count = 2\n").unwrap_err();
        assert_eq!(
            e,
            "/etc/netheal.conf:2: \\u{feff}count: unknown key (see netheal.conf(5))"
        );
    }

    #[test]
    fn bytes_that_are_not_utf8_are_refused_at_line_and_column() {
        let e = parse_bytes(
            b"[eth0]\ncount = 2\ntarget = 198.51.100.1\xff\n",
            Path::new("/etc/n.conf"),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            e,
            "/etc/n.conf:3:22: byte 0xff is not UTF-8: expected UTF-8 text (iconv -t UTF-8 converts it)"
        );
        let e = parse_bytes(b"\xc3(", Path::new("/etc/n.conf"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/etc/n.conf:1:1: byte 0xc3 is not UTF-8"),
            "{e}"
        );
    }

    /// 20 000 sections once took 1.4 s (a linear search per header, and `build` searched
    /// again for each section); the index makes each lookup O(1). A timing bound would flake
    /// on a shared machine, so this checks the result on a large file and prints the time
    /// (a figure, not an assertion).
    #[test]
    fn twenty_thousand_sections_parse_and_build() {
        let n = 20_000;
        let mut text = String::new();
        for i in 0..n {
            text += &format!("[e{i}]\ncount = 2\n");
        }
        let t = crate::mono::Instant::now();
        let d = p(&text).unwrap();
        let c = crate::config::build(&crate::config::Args::default(), Some(&d)).unwrap();
        eprintln!("{n} sections parsed and built in {:?}", t.elapsed());
        assert_eq!(c.watches.len(), n);
        assert_eq!(d.section(&format!("e{}", n - 1)).unwrap().line, 2 * n - 1);
        assert_eq!(d.section("e0").unwrap().line, 1);
        assert!(d.section("e20000").is_none());
    }

    #[test]
    fn dropin_directory_names() {
        for (main, dir) in [
            ("/etc/netheal.conf", "/etc/netheal.d"),
            ("/x/test.conf", "/x/test.d"),
            ("/x/test", "/x/test.d"),
            ("/x/.conf", "/x/.conf.d"),
            ("rel.conf", "rel.d"),
        ] {
            assert_eq!(dropin_dir(Path::new(main)), PathBuf::from(dir), "{main}");
        }
    }

    struct Tmp(PathBuf);
    impl Tmp {
        fn new(tag: &str) -> Tmp {
            let d = std::env::temp_dir().join(format!("nhdrop{}{tag}", std::process::id()));
            let _ = fs::remove_dir_all(&d); // not fatal: a leftover of an earlier run
            fs::create_dir_all(d.join("netheal.d")).unwrap();
            for p in [&d, &d.join("netheal.d")] {
                fs::set_permissions(p, fs::Permissions::from_mode(0o755)).unwrap();
            }
            Tmp(d)
        }
        fn write(&self, name: &str, body: &str) -> PathBuf {
            let p = self.0.join(name);
            fs::write(&p, body).unwrap();
            fs::set_permissions(&p, fs::Permissions::from_mode(0o644)).unwrap();
            p
        }
        fn main(&self) -> PathBuf {
            self.0.join("netheal.conf")
        }
    }
    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0); // not fatal: only a temp dir
        }
    }

    #[test]
    fn dropins_are_read_after_the_main_file_in_lexical_order() {
        let t = Tmp::new("ord");
        t.write("netheal.conf", "interval = 5s\n[eth0]\n");
        t.write("netheal.d/20-b.conf", "[wlan0]\ncount = 2\n");
        t.write("netheal.d/10-a.conf", "# a package's interface\n[wwan0]\n");
        t.write("netheal.d/30-c.conf.dpkg-old", "[old0]\n");
        t.write("netheal.d/.40-hidden.conf", "[hid0]\n");
        t.write("netheal.d/50-backup.conf~", "[bak0]\n");
        let d = load_all(&t.main(), true).unwrap().unwrap();
        let ifaces: Vec<&str> = d.sections.iter().map(|s| s.iface.as_str()).collect();
        assert_eq!(ifaces, ["eth0", "wwan0", "wlan0"]);
        let dir = t.0.join("netheal.d");
        assert_eq!(
            d.files,
            [t.main(), dir.join("10-a.conf"), dir.join("20-b.conf")]
        );
        assert_eq!(d.section("wlan0").unwrap().path, dir.join("20-b.conf"));
        // The drop-ins get the main file's defaults.
        let c = crate::config::build(&crate::config::Args::default(), Some(&d)).unwrap();
        assert!(c.watches.iter().all(|w| w.interval.as_secs() == 5));
        assert_eq!(c.watches[2].count, 2);
        // Without the main file (not required): the drop-ins alone.
        fs::remove_file(t.main()).unwrap();
        let d = load_all(&t.main(), false).unwrap().unwrap();
        assert_eq!(d.sections.len(), 2);
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: cannot read", t.main().display())),
            "{e}"
        );
        // Neither: no document.
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(load_all(&t.main(), false).unwrap(), None);
    }

    #[test]
    fn dropin_errors_name_the_dropin() {
        let t = Tmp::new("err");
        t.write("netheal.conf", "[eth0]\n");
        let bad = t.write("netheal.d/10-bad.conf", "[wlan0]\n\ncount = lots\n");
        let args = crate::config::Args::default();
        let d = load_all(&t.main(), true).unwrap().unwrap();
        let e = crate::config::build(&args, Some(&d))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{}:3: count: 'lots': expected", bad.display())),
            "{e}"
        );
        // The same interface in two files: refused, both named.
        let dup = t.write("netheal.d/10-bad.conf", "\n[eth0]\n");
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "{}:2: section: 'eth0': duplicate section (first at {}:1)",
                dup.display(),
                t.main().display()
            )
        );
        // Settings before a drop-in's first section belong in the main file.
        t.write("netheal.d/10-bad.conf", "log = stderr\n[wlan0]\n");
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}:1: log: a drop-in holds only [IFACE] sections",
                dup.display()
            )),
            "{e}"
        );
        // The same security checks: a drop-in others may write, or an open directory.
        t.write("netheal.d/10-bad.conf", "[wlan0]\n");
        fs::set_permissions(&dup, fs::Permissions::from_mode(0o666)).unwrap();
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{}: refused: writable by group or others",
                dup.display()
            )),
            "{e}"
        );
        fs::set_permissions(&dup, fs::Permissions::from_mode(0o644)).unwrap();
        let dir = t.0.join("netheal.d");
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o777)).unwrap();
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert!(e.contains("without the sticky bit"), "{e}");
        // A file where the directory should be.
        fs::remove_dir_all(&dir).unwrap();
        t.write("netheal.d", "");
        let e = load_all(&t.main(), true).unwrap_err().to_string();
        assert!(
            e.starts_with(&format!("{}: not a directory", dir.display())),
            "{e}"
        );
    }
}
