//! One record type's table as the compiler sees it: the `[[mapping]]` that defines it (built-in
//! or a replacement file) with the `[[patch]]` tables for its record type applied. Every item
//! remembers the file and line it comes from, for error messages and `mappings show`.

use std::fmt::Write as _;
use std::sync::Arc;

use indexmap::IndexMap;
use rustc_hash::FxHashMap;
use toml::Spanned;

use super::MappingError;
use super::file::{LineDef, MappingDef, PatchDef, SeverityDef, line_of};
use super::plan::Origin;

/// Lookup tables a table's `lookup(x, name)` can use: name → (value → replacement).
pub type LookupTables = FxHashMap<String, Arc<FxHashMap<String, String>>>;

/// A value with where it is written and how (its TOML text, for `mappings show`).
#[derive(Clone, Debug)]
pub struct Item<T> {
    pub value: T,
    pub at: Origin,
    pub toml: String,
    /// Set by a `[[patch]]` rather than the table itself.
    pub patched: bool,
}

impl<T> Item<T> {
    /// "FILE:LINE", or "patch FILE:LINE" for a value a patch set.
    fn written_at(&self) -> String {
        let at = format!("{}:{}", self.at.file, self.at.line);
        if self.patched {
            format!("patch {at}")
        } else {
            at
        }
    }
}

impl<T: Clone> Item<T> {
    fn new(v: &Spanned<T>, file: &str, text: &str, patched: bool) -> Item<T> {
        let span = v.span();
        Item {
            value: v.get_ref().clone(),
            at: Origin {
                file: file.to_string(),
                line: line_of(text, span.start),
            },
            toml: text
                .get(span.clone())
                .unwrap_or_default()
                .trim_end()
                .to_string(),
            patched,
        }
    }
}

#[derive(Clone, Debug)]
pub struct TableDef {
    /// The `[[mapping]]` header.
    pub origin: Origin,
    /// The table as written, from its header to the next table.
    pub text: String,
    pub class_id: Item<String>,
    pub name: Item<String>,
    pub severity: Item<SeverityDef>,
    pub msgid: Option<Item<String>>,
    pub extension: IndexMap<String, Item<LineDef>>,
    pub tables: Arc<LookupTables>,
    /// Keys a patch took out, and where.
    pub removed: Vec<(String, Origin)>,
    /// The `[[patch]]` headers applied, in order.
    pub patches: Vec<Origin>,
    /// Keys a profile's patch sends verbatim (see [`PatchDef::verbatim`]).
    pub verbatim: std::collections::BTreeSet<String>,
}

impl TableDef {
    pub fn new(
        def: &Spanned<MappingDef>,
        file: &str,
        text: &str,
        tables: Arc<LookupTables>,
    ) -> TableDef {
        let start = def.span().start;
        let d = def.get_ref();
        TableDef {
            origin: Origin {
                file: file.to_string(),
                line: line_of(text, start),
            },
            text: table_text(text, start),
            class_id: Item::new(&d.class_id, file, text, false),
            name: Item::new(&d.name, file, text, false),
            severity: Item::new(&d.severity, file, text, false),
            msgid: d.msgid.as_ref().map(|m| Item::new(m, file, text, false)),
            extension: d
                .extension
                .iter()
                .map(|(k, v)| (k.clone(), Item::new(v, file, text, false)))
                .collect(),
            tables,
            removed: Vec::new(),
            patches: Vec::new(),
            verbatim: Default::default(),
        }
    }

    /// Applies a `[[patch]]` of `file` (`profile`: a shipped profile's). Problems (a key to remove
    /// that the table does not set, a label separated from its value) are added to `errors` with
    /// the patch's line; the rest of the patch still applies, so that the table's check finds the
    /// problems of its `set` lines too.
    pub fn apply(
        &mut self,
        patch: &Spanned<PatchDef>,
        file: &str,
        text: &str,
        tables: &LookupTables,
        profile: bool,
        errors: &mut Vec<MappingError>,
    ) {
        let p = patch.get_ref();
        let record = *p.record.get_ref();
        let error = |errors: &mut Vec<MappingError>, at: usize, message: String| {
            errors.push(MappingError {
                file: file.to_string(),
                line: line_of(text, at),
                message,
            })
        };
        if let Some(v) = &p.class_id {
            self.class_id = Item::new(v, file, text, true);
        }
        if let Some(v) = &p.name {
            self.name = Item::new(v, file, text, true);
        }
        if let Some(v) = &p.severity {
            self.severity = Item::new(v, file, text, true);
        }
        if let Some(v) = &p.msgid {
            self.msgid = Some(Item::new(v, file, text, true));
        }
        for key in &p.remove {
            let at = key.span().start;
            let key = key.get_ref();
            if p.set.contains_key(key) {
                error(
                    errors,
                    at,
                    format!("the patch both sets and removes `{key}`: keep one"),
                );
            } else if self.extension.shift_remove(key).is_some() {
                self.verbatim.remove(key);
                self.removed.push((
                    key.clone(),
                    Origin {
                        file: file.to_string(),
                        line: line_of(text, at),
                    },
                ));
            } else {
                let hint = super::suggest(key, self.extension.keys().cloned());
                error(
                    errors,
                    at,
                    format!(
                        "cannot remove `{key}`: the table of record {record} ({}:{}) does not set it{}",
                        self.origin.file,
                        self.origin.line,
                        if hint.is_empty() {
                            String::new()
                        } else {
                            format!("; did you mean {}?", hint.join(", "))
                        }
                    ),
                );
            }
        }
        // A custom field and its label go together: name both, or the label would describe
        // nothing (or the value lose its name in ArcSight).
        for key in &p.remove {
            let at = key.span().start;
            let key = key.get_ref();
            let partner = match super::label_base(key) {
                Some(base) => base.to_string(),
                None if super::is_custom_family(key) => format!("{key}Label"),
                None => continue,
            };
            if self.extension.contains_key(&partner) && !p.set.contains_key(key) {
                error(
                    errors,
                    at,
                    format!("the patch removes `{key}` but keeps `{partner}`: remove both"),
                );
                // Checked as if both were removed, so that the table's own check does not
                // report the same mistake again, and the `set` lines are still checked.
                self.extension.shift_remove(&partner);
            }
        }
        for key in &p.verbatim {
            let at = key.span().start;
            let key = key.get_ref();
            if !profile {
                error(
                    errors,
                    at,
                    format!(
                        "`verbatim` is only for the profiles shipped with estreamer-cef: write `{key}` \
                         as a dictionary key or a custom key, or choose `[cef] profile = \"encore\"` \
                         for eNcore's keys"
                    ),
                );
            } else if !p.set.contains_key(key) {
                error(
                    errors,
                    at,
                    format!("`verbatim` names `{key}`, which this patch does not set"),
                );
            } else {
                self.verbatim.insert(key.clone());
            }
        }
        for (key, line) in &p.set {
            let item = Item::new(line, file, text, true);
            match self.extension.get_mut(key) {
                Some(old) => *old = item,
                None => {
                    self.extension.insert(key.clone(), item);
                }
            }
        }
        if !tables.is_empty() {
            let mut merged = (*self.tables).clone();
            merged.extend(tables.iter().map(|(k, v)| (k.clone(), v.clone())));
            self.tables = Arc::new(merged);
        }
        self.patches.push(Origin {
            file: file.to_string(),
            line: line_of(text, patch.span().start),
        });
    }

    /// What `mappings show` prints. A table as written is shown as written (with its comments)
    /// under a line naming its file; a patched one is rebuilt with each line's origin.
    pub fn show(&self, record_type: Option<u32>) -> String {
        if self.patches.is_empty() {
            return format!(
                "# {}:{}\n{}\n",
                self.origin.file,
                self.origin.line,
                self.text.trim_end()
            );
        }
        let place = |o: &Origin| format!("{}:{}", o.file, o.line);
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# {} patched by {}\n# Each line ends with where it comes from.",
            place(&self.origin),
            self.patches
                .iter()
                .map(place)
                .collect::<Vec<_>>()
                .join(", ")
        );
        let _ = writeln!(out, "[[mapping]]");
        match record_type {
            Some(t) => {
                let _ = writeln!(out, "records = [{t}]");
            }
            None => {
                let _ = writeln!(out, "records = \"unknown\"");
            }
        }
        let _ = writeln!(
            out,
            "class_id = {}  # {}",
            self.class_id.toml,
            self.class_id.written_at()
        );
        let _ = writeln!(
            out,
            "name = {}  # {}",
            self.name.toml,
            self.name.written_at()
        );
        let _ = writeln!(
            out,
            "severity = {}  # {}",
            self.severity.toml,
            self.severity.written_at()
        );
        if let Some(m) = &self.msgid {
            let _ = writeln!(out, "msgid = {}  # {}", m.toml, m.written_at());
        }
        let _ = writeln!(out, "\n[mapping.extension]");
        for (key, item) in &self.extension {
            let _ = writeln!(
                out,
                "{} = {}  # {}{}",
                toml_key(key),
                item.toml,
                item.written_at(),
                if self.verbatim.contains(key) {
                    ", verbatim (not a CEF dictionary key or type)"
                } else {
                    ""
                }
            );
        }
        for (key, at) in &self.removed {
            let _ = writeln!(out, "# {key}: removed by patch {}", place(at));
        }
        // The lookup tables its lines use, so that the output is a complete table.
        let mut used: Vec<&String> = self
            .tables
            .keys()
            .filter(|name| {
                self.extension.values().any(|l| {
                    l.value.source().contains("lookup(") && l.value.source().contains(name.as_str())
                })
            })
            .collect();
        used.sort();
        for name in used {
            let _ = writeln!(out, "\n[tables.{}]", toml_key(name));
            let mut rows: Vec<_> = self.tables[name].iter().collect();
            rows.sort();
            for (from, to) in rows {
                let _ = writeln!(
                    out,
                    "{} = {}",
                    toml::Value::from(from.as_str()),
                    toml::Value::from(to.as_str())
                );
            }
        }
        out
    }
}

/// A key as TOML writes it: bare when it can be.
fn toml_key(key: &str) -> String {
    if !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        key.to_string()
    } else {
        format!("{key:?}")
    }
}

/// The text of the table whose `[[mapping]]` header is at `at` (the span toml gives an element
/// of an array of tables covers only its header): up to the next top-level table, without the
/// comments and blank lines that precede that one.
fn table_text(text: &str, at: usize) -> String {
    let at = at.min(text.len());
    let header_end = text[at..].find('\n').map_or(text.len(), |i| at + i + 1);
    let mut end = header_end;
    let mut kept = header_end;
    for line in text[header_end..].split_inclusive('\n') {
        let t = line.trim_start();
        // A table header (`[name]`, `[[name]]`), not a line of a multi-line array (a severity
        // matrix row `[10, 9, 7, 8, 9],`).
        let header = t
            .trim_start_matches('[')
            .starts_with(|c: char| c.is_ascii_alphabetic() || c == '"' || c == '_');
        if t.starts_with('[') && header && !t.starts_with("[mapping.") {
            break;
        }
        end += line.len();
        if !(t.is_empty() || t.starts_with('#')) {
            kept = end;
        }
    }
    text[at..kept].to_string()
}
