//! The configuration file's syntax (netheal.conf(5)): `key = value` lines, `[IFACE]` section
//! headers, `#` comments (whole lines, or after whitespace), blank lines. Before the first
//! section: global settings. This module only splits the text into located entries and
//! rejects what is malformed or repeated; the values are checked by the settings builder.
#![forbid(unsafe_code)]

use std::path::{Path, PathBuf};

use super::values::check_iface_name;
use super::{ConfigError, GLOBAL_KEYS, IFACE_KEYS};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub line: usize,
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub line: usize,
    pub iface: String,
    pub entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Document {
    pub path: PathBuf,
    pub globals: Vec<Entry>,
    pub sections: Vec<Section>,
}

impl Document {
    pub fn section(&self, iface: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.iface == iface)
    }
}

/// Reads and parses `path`, refusing a file that someone other than its owner could change,
/// or that root does not own when we run as root: it decides what runs as root.
pub fn load(path: &Path) -> Result<Document, ConfigError> {
    use std::os::unix::fs::MetadataExt;
    let at = |expected: String| ConfigError::file(path, 0, "", None, expected);
    let meta = std::fs::metadata(path).map_err(|e| at(format!("cannot read: {e}")))?;
    if !meta.is_file() {
        return Err(at("not a regular file".into()));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(at(format!(
            "refused: writable by group or others (mode {:04o}); it decides what runs as root: chmod go-w",
            meta.mode() & 0o7777
        )));
    }
    if nix::unistd::geteuid().is_root() && meta.uid() != 0 {
        return Err(at(format!(
            "refused: owned by uid {}, not root, while running as root: chown root",
            meta.uid()
        )));
    }
    let text = std::fs::read_to_string(path).map_err(|e| at(format!("cannot read: {e}")))?;
    parse(&text, path)
}

/// Splits `text` into globals and sections. `path` only names the file in errors.
pub fn parse(text: &str, path: &Path) -> Result<Document, ConfigError> {
    let mut doc = Document {
        path: path.to_path_buf(),
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
            if let Some(first) = doc.section(name) {
                return Err(err(
                    "section",
                    Some(name),
                    format!("duplicate section (first at line {})", first.line),
                ));
            }
            doc.sections.push(Section {
                line,
                iface: name.to_string(),
                entries: Vec::new(),
            });
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
