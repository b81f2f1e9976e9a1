//! The Kafka message key of an event, from the `key` setting: the FMC's name and/or values of
//! CEF extension keys, joined with `/`. Messages with one key land in one partition, in order.

use crate::output::syslog::truncate::extension_start;

/// What one part of the key is.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    /// The name of the FMC the event came from.
    Fmc,
    /// The value of this CEF extension key.
    Extension(String),
}

/// Builds message keys for one output.
#[derive(Debug, Clone)]
pub struct KeyMaker {
    parts: Vec<Part>,
}

impl KeyMaker {
    /// From the `key` setting (`fmc`, or CEF extension key names).
    pub fn new(setting: &[String]) -> KeyMaker {
        KeyMaker {
            parts: setting
                .iter()
                .map(|p| match p.as_str() {
                    "fmc" => Part::Fmc,
                    other => Part::Extension(other.to_string()),
                })
                .collect(),
        }
    }

    /// Whether messages get a key at all.
    pub fn is_empty(&self) -> bool {
        self.parts.is_empty()
    }

    /// The key of an event from FMC `fmc` with CEF line `cef`, written into `out` (cleared).
    pub fn make(&self, fmc: &str, cef: &str, out: &mut String) {
        out.clear();
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.push('/');
            }
            match part {
                Part::Fmc => out.push_str(fmc),
                Part::Extension(name) => out.push_str(extension_value(cef, name).unwrap_or("")),
            }
        }
    }
}

/// The (still escaped) value of extension key `name` in a CEF line, if present.
pub fn extension_value<'a>(cef: &'a str, name: &str) -> Option<&'a str> {
    let ext = &cef[extension_start(cef.as_bytes())?..];
    let bytes = ext.as_bytes();
    let mut from = 0;
    while let Some(at) = ext[from..].find(name).map(|i| i + from) {
        let starts_key = at == 0 || bytes[at - 1] == b' ';
        let value_start = at + name.len();
        if starts_key && bytes.get(value_start) == Some(&b'=') {
            let rest = &ext[value_start + 1..];
            return Some(&rest[..value_end(rest)]);
        }
        from = at + 1;
    }
    None
}

/// Where a value ends: before the space that starts the next `key=` (the next unescaped `=`),
/// or at the end of the line.
fn value_end(rest: &str) -> usize {
    let bytes = rest.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'=' => return rest[..i].rfind(' ').unwrap_or(0),
            _ => {}
        }
        i += 1;
    }
    rest.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LINE: &str = "CEF:0|Cisco|Firepower|6.0|RNA:1003:1|A \\| deviceExternalId=9 name|3|\
        act=Allow cs2=Dev \\=x deviceExternalId=6 deviceInboundInterface=In Side dvchost=ftd-zürich-06 end=1";

    #[test]
    fn finds_values_in_the_extension_only() {
        assert_eq!(extension_value(LINE, "deviceExternalId"), Some("6"));
        assert_eq!(extension_value(LINE, "dvchost"), Some("ftd-zürich-06"));
        assert_eq!(
            extension_value(LINE, "deviceInboundInterface"),
            Some("In Side")
        );
        assert_eq!(extension_value(LINE, "cs2"), Some("Dev \\=x"));
        assert_eq!(extension_value(LINE, "act"), Some("Allow"));
        assert_eq!(extension_value(LINE, "end"), Some("1"));
        assert_eq!(extension_value(LINE, "Id"), None);
        assert_eq!(extension_value(LINE, "src"), None);
        assert_eq!(extension_value("CEF:0|no extension", "act"), None);
    }

    #[test]
    fn key_joins_the_parts() {
        let mut k = String::new();
        KeyMaker::new(&["fmc".into(), "deviceExternalId".into()]).make("fmc-a", LINE, &mut k);
        assert_eq!(k, "fmc-a/6");
        KeyMaker::new(&["dvchost".into(), "src".into()]).make("x", LINE, &mut k);
        assert_eq!(k, "ftd-zürich-06/");
        assert!(KeyMaker::new(&[]).is_empty());
    }
}
