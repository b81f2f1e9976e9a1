//! Configuration errors worded for the user, to the standard of the mapping tables' errors: the
//! file and the line of the key (found in the TOML source by its spans), "did you mean" for a
//! misspelt key, and plain words instead of serde's (`expected u16` → "a port number").
//!
//! figment reports what went wrong and the key's path; this module finds the line and rewords.

use std::path::Path;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::diagnostic::{did_you_mean, line_of};

/// The configuration file as read, for finding the lines of keys.
pub struct SourceFile<'a> {
    pub path: &'a Path,
    pub text: &'a str,
}

impl SourceFile<'_> {
    /// The line of the deepest key of `path` (`["output", "0", "port"]`) that the file has.
    pub fn line_of_key(&self, path: &[String]) -> Option<usize> {
        let doc = DeTable::parse(self.text).ok()?;
        find_in_table(doc.get_ref(), path).map(|start| line_of(self.text, start))
    }

    /// The value of a key in the file, if it is there.
    fn value_at<'d>(doc: &'d DeTable<'d>, path: &[String]) -> Option<&'d DeValue<'d>> {
        let (first, rest) = path.split_first()?;
        let (_, v) = doc.iter().find(|(k, _)| k.get_ref() == first)?;
        value_in(v, rest)
    }

    /// "FILE:LINE: " for a key the file has, else "FILE: ".
    fn place(&self, path: &[String]) -> String {
        match self.line_of_key(path) {
            Some(line) => format!("{}:{line}: ", self.path.display()),
            None => format!("{}: ", self.path.display()),
        }
    }
}

fn value_in<'d>(v: &'d Spanned<DeValue<'d>>, path: &[String]) -> Option<&'d DeValue<'d>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(v.get_ref());
    };
    match v.get_ref() {
        DeValue::Table(t) => {
            let (_, v) = t.iter().find(|(k, _)| k.get_ref() == first)?;
            value_in(v, rest)
        }
        DeValue::Array(a) => value_in(a.get(first.parse::<usize>().ok()?)?, rest),
        _ => None,
    }
}

/// Byte offset of the deepest key of `path` present in `table`.
fn find_in_table(table: &DeTable<'_>, path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    let (k, v) = table.iter().find(|(k, _)| k.get_ref() == first)?;
    find_in_value(v, rest).or(Some(k.span().start))
}

fn find_in_value(v: &Spanned<DeValue<'_>>, path: &[String]) -> Option<usize> {
    let (first, rest) = path.split_first()?;
    match v.get_ref() {
        DeValue::Table(t) => find_in_table(t, path),
        DeValue::Array(a) => {
            let item = a.get(first.parse::<usize>().ok()?)?;
            find_in_value(item, rest).or(Some(item.span().start))
        }
        _ => None,
    }
}

/// `["output", "0", "port"]` → `output[0].port`, as the other messages name keys.
pub fn key_name(path: &[String]) -> String {
    let mut out = String::new();
    for p in path {
        if p.parse::<usize>().is_ok() {
            out.push_str(&format!("[{p}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(p);
        }
    }
    out
}

/// Parses `output[0].port` back into `["output", "0", "port"]`.
pub fn key_path(name: &str) -> Vec<String> {
    let mut out = Vec::new();
    for part in name.split('.') {
        let mut pieces = part.split('[');
        if let Some(head) = pieces.next().filter(|h| !h.is_empty()) {
            out.push(head.to_string());
        }
        for idx in pieces {
            out.push(idx.trim_end_matches(']').to_string());
        }
    }
    out
}

/// Every figment error, one per line, worded for the user.
pub fn describe(e: figment::Error, file: Option<&SourceFile<'_>>) -> String {
    let doc = file.and_then(|f| DeTable::parse(f.text).ok());
    let mut out = Vec::new();
    for err in e {
        let from_file = matches!(
            err.metadata.as_ref().and_then(|m| m.source.as_ref()),
            Some(figment::Source::File(_))
        );
        let source = match (&err.metadata, from_file.then_some(file).flatten()) {
            (_, Some(_)) => None,
            (Some(m), None) => Some(match &m.source {
                Some(figment::Source::File(p)) => format!("{}: ", p.display()),
                Some(other) => format!("{other}: "),
                None => format!("{}: ", m.name),
            }),
            (None, None) => Some("configuration: ".into()),
        };
        let doc = doc.as_ref().filter(|_| from_file).map(|d| d.get_ref());
        let (path, message) = reword(&err.path, &err.kind, doc);
        let place = match (source, file) {
            (Some(s), _) => s,
            (None, Some(f)) => f.place(&path),
            (None, None) => String::new(),
        };
        out.push(format!("{place}{message}"));
    }
    out.join("\n")
}

/// Adds "FILE:LINE: " to a message of `Config::validate` that starts with a key the file has
/// (`fmc.port is 0: ...`).
pub fn place_validation_error(message: &str, file: &SourceFile<'_>) -> String {
    let first = message
        .split([' ', ':'])
        .next()
        .unwrap_or_default()
        .trim_end_matches(',');
    // Only a key of the file counts: the file's top-level keys are its sections, so a message
    // that starts with another word ("no FMC configured") finds no line.
    let path = key_path(first);
    let looks_like_a_key = !first.is_empty() && first.chars().all(is_key_char);
    match file.line_of_key(&path).filter(|_| looks_like_a_key) {
        Some(line) => format!("{}:{line}: {message}", file.path.display()),
        None => message.to_string(),
    }
}

fn is_key_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '[' | ']')
}

/// The key the error is about (for its line) and what to tell the user.
fn reword(
    path: &[String],
    kind: &figment::error::Kind,
    doc: Option<&DeTable<'_>>,
) -> (Vec<String>, String) {
    use figment::error::Kind;
    let mut path = path.to_vec();
    let message = match kind {
        Kind::UnknownField(field, expected) => {
            // figment's path ends with the field, except inside an `[[output]]` (a tagged enum).
            if path.last() == Some(field) {
                path.pop();
            }
            let section = path.clone();
            path.push(field.clone());
            unknown_key(&section, field, expected, doc)
        }
        Kind::InvalidType(actual, expected) | Kind::InvalidValue(actual, expected) => {
            if let Some(k) = doc.and_then(|d| key_with_value(d, &path, actual)) {
                path.push(k);
            }
            wrong_value(&path, actual, expected)
        }
        Kind::MissingField(field) => {
            let at = key_name(&path);
            let at = if at.is_empty() { "the file".into() } else { at };
            format!("{at} needs `{field}`: add {field} = ...")
        }
        Kind::UnknownVariant(value, expected) => {
            let known: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
            // Inside an `[[output]]` (a tagged enum) figment's path stops at the output: the key
            // is the one holding this value (`sasl_mechanism`), else the tag itself.
            if path.len() == 2 && path[0] == "output" {
                let actual = figment::error::Actual::Str(value.clone());
                let k = doc.and_then(|d| key_with_value(d, &path, &actual));
                path.push(k.unwrap_or_else(|| "transport".into()));
            }
            format!(
                "`{}` = {value:?} is not one of them{}\n  → valid values: {}",
                key_name(&path),
                did_you_mean(value, known.iter().cloned()),
                backticked(expected)
            )
        }
        Kind::Message(m) => format!("`{}`: {m}", key_name(&path)),
        other => format!("`{}`: {other}", key_name(&path)),
    };
    (path, message)
}

/// `[fmc] prot = 1` → "fmc has no key `prot`; did you mean `port`?", with the valid keys. A
/// key of another output transport (`framing` in a udp output) says which transports have it.
fn unknown_key(
    section: &[String],
    field: &str,
    expected: &[&str],
    doc: Option<&DeTable<'_>>,
) -> String {
    let name = match section {
        [] => "the top level".to_string(),
        [table] => format!("[{table}]"),
        _ => key_name(section),
    };
    let valid = format!("\n  → valid keys here: {}", backticked(expected));
    if section.len() == 2 && section[0] == "output" {
        let transport = doc
            .and_then(|d| SourceFile::value_at(d, &[section[0].clone(), section[1].clone()]))
            .and_then(|o| match o {
                DeValue::Table(t) => t
                    .iter()
                    .find(|(k, _)| k.get_ref() == "transport")
                    .and_then(|(_, v)| v.get_ref().as_str().map(str::to_string)),
                _ => None,
            });
        let owners: Vec<&str> = transports()
            .iter()
            .copied()
            .filter(|t| keys_of_transport(t).contains(&field))
            .collect();
        if let (Some(this), false) = (transport, owners.is_empty()) {
            return format!(
                "`{field}` is only for {} outputs, and {name} is {this}: remove it{}",
                and_list(&owners),
                valid
            );
        }
    }
    let known = expected.iter().map(|s| s.to_string());
    format!(
        "{name} has no key `{field}`{}{valid}",
        did_you_mean(field, known)
    )
}

/// For an error inside an `[[output]]` (whose path stops at the table), the key whose value
/// is the one serde complained about.
fn key_with_value(
    doc: &DeTable<'_>,
    path: &[String],
    actual: &figment::error::Actual,
) -> Option<String> {
    use figment::error::Actual;
    let DeValue::Table(t) = SourceFile::value_at(doc, path)? else {
        return None;
    };
    let mut matching = t.iter().filter(|(_, v)| match (actual, v.get_ref()) {
        (Actual::Signed(n), DeValue::Integer(i)) => i.as_str().replace('_', "") == n.to_string(),
        (Actual::Unsigned(n), DeValue::Integer(i)) => i.as_str().replace('_', "") == n.to_string(),
        (Actual::Str(s), DeValue::String(v)) => s == v,
        (Actual::Bool(b), DeValue::Boolean(v)) => b == v,
        (Actual::Float(f), DeValue::Float(v)) => v.as_str().parse::<f64>().ok() == Some(*f),
        (Actual::Seq, DeValue::Array(_)) => true,
        (Actual::Map, DeValue::Table(_)) => true,
        _ => false,
    });
    let (k, _) = matching.next()?;
    // Two keys with the same value: the error cannot say which one.
    matching.next().is_none().then(|| k.get_ref().to_string())
}

/// "`fmc.port` = "eight": write a port number, 1 to 65535".
fn wrong_value(path: &[String], actual: &figment::error::Actual, expected: &str) -> String {
    use figment::error::Actual;
    let key = key_name(path);
    if matches!(actual, Actual::Map)
        && expected == "a sequence"
        && let Some(last) = path.last()
    {
        return format!(
            "`{last}` is a table of tables: write [[{last}]] (two brackets on each side) above \
             each of them, not [{last}]"
        );
    }
    let last = path.last().map(String::as_str).unwrap_or_default();
    let shown = match actual {
        // Never repeat a password: error messages end up in logs.
        _ if last.contains("password") => "(value hidden)".into(),
        Actual::Str(s) => format!("{s:?}"),
        Actual::Signed(n) => n.to_string(),
        Actual::Unsigned(n) => n.to_string(),
        Actual::Float(f) => f.to_string(),
        Actual::Bool(b) => b.to_string(),
        Actual::Seq => "a list".into(),
        Actual::Map => "a table".into(),
        other => other.to_string(),
    };
    format!("`{key}` = {shown}: write {}", plain(expected, last))
}

/// serde's name of a type, in words.
fn plain(expected: &str, key: &str) -> String {
    let whole = |max: u64| format!("a whole number from 0 to {max}, without quotes");
    match expected {
        "u16" if key == "port" || key.ends_with("_port") => {
            "a port number, 1 to 65535, without quotes".into()
        }
        "u8" => whole(u8::MAX.into()),
        "u16" => whole(u16::MAX.into()),
        "u32" => whole(u32::MAX.into()),
        "u64" | "usize" => whole(u64::MAX),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number, without quotes".into(),
        "f32" | "f64" => "a number".into(),
        "a boolean" => "true or false, without quotes".into(),
        "a string" | "a borrowed string" | "path string" => "text in double quotes".into(),
        "a sequence" => "a list in brackets, [ ... ]".into(),
        "socket address" => "an address and port in quotes, e.g. \"127.0.0.1:9810\"".into(),
        e if e.starts_with("struct ") || e == "a map" => "a table".into(),
        e => e.to_string(),
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn and_list(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// The `transport` values of `[[output]]`, from the program's own types.
fn transports() -> &'static [&'static str] {
    let entries = [("transport", "zz_not_a_transport")];
    match super::output::OutputConfig::deserialize(
        serde::de::value::MapDeserializer::<_, Names>::new(entries.into_iter()),
    ) {
        Err(Names(Some(names))) => names,
        _ => &[],
    }
}

/// The keys an output of `transport` accepts, from the program's own types.
fn keys_of_transport(transport: &str) -> &'static [&'static str] {
    let entries = [("transport", transport), ("zz_not_a_key", "")];
    match super::output::OutputConfig::deserialize(
        serde::de::value::MapDeserializer::<_, Names>::new(entries.into_iter()),
    ) {
        Err(Names(Some(names))) => names,
        _ => &[],
    }
}

/// A serde error that keeps the names serde lists when a key or a variant is unknown: how the
/// keys of each transport are asked of the types themselves rather than listed again here.
#[derive(Debug)]
struct Names(Option<&'static [&'static str]>);

impl std::fmt::Display for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("names")
    }
}

impl std::error::Error for Names {}

impl serde::de::Error for Names {
    fn custom<T: std::fmt::Display>(_: T) -> Self {
        Names(None)
    }
    fn unknown_field(_: &str, expected: &'static [&'static str]) -> Self {
        Names(Some(expected))
    }
    fn unknown_variant(_: &str, expected: &'static [&'static str]) -> Self {
        Names(Some(expected))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_names_and_paths_round_trip() {
        let p: Vec<String> = ["output", "0", "port"].map(String::from).to_vec();
        assert_eq!(key_name(&p), "output[0].port");
        assert_eq!(key_path("output[0].port"), p);
        assert_eq!(key_path("fmc.host"), ["fmc", "host"]);
    }

    #[test]
    fn lines_of_keys_in_tables_and_arrays_of_tables() {
        let text = "[fmc]\nhost = \"a\"\nport = 1\n\n[[output]]\ntransport = \"udp\"\n\n[[output]]\ntransport = \"tcp\"\nport = 70000\n";
        let f = SourceFile {
            path: Path::new("x.toml"),
            text,
        };
        let line = |k: &str| f.line_of_key(&key_path(k));
        assert_eq!(line("fmc.port"), Some(3));
        assert_eq!(line("output[1].port"), Some(10));
        assert_eq!(line("output[1].transport"), Some(9));
        // A key the file lacks: the line of its table.
        assert_eq!(line("fmc.idle_timeout"), Some(1));
        assert_eq!(line("state.dir"), None);
    }

    #[test]
    fn the_transports_and_their_keys_come_from_the_types() {
        let t = transports();
        assert!(t.contains(&"udp") && t.contains(&"tls"), "{t:?}");
        assert!(keys_of_transport("tcp").contains(&"framing"));
        assert!(!keys_of_transport("udp").contains(&"framing"));
    }
}
