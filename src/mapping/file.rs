//! The TOML form of a mapping file (`mappings/*.toml`). See `mappings/README.md` for the language.

use indexmap::IndexMap;
use serde::Deserialize;
use toml::Spanned;

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MappingFile {
    #[serde(default)]
    pub mapping: Vec<Spanned<MappingDef>>,
    /// Key-by-key changes to the table of one record type (built-in or from another file).
    #[serde(default)]
    pub patch: Vec<Spanned<PatchDef>>,
    /// Lookup tables for `lookup(x, name)`: value text → replacement text.
    #[serde(default)]
    pub tables: IndexMap<String, IndexMap<String, String>>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct MappingDef {
    /// Record types this table maps, or "unknown" for record types the catalog does not know.
    pub records: Spanned<Records>,
    /// Device Event Class ID: a template (`{field}`, `{@name}`).
    pub class_id: Spanned<String>,
    /// Name: a template.
    pub name: Spanned<String>,
    pub severity: Spanned<SeverityDef>,
    /// Syslog MSGID for these events (RFC 5424), e.g. "INTRUSION". Default "-".
    #[serde(default)]
    pub msgid: Option<Spanned<String>>,
    /// `cef_key = source` lines, in output order.
    #[serde(default)]
    pub extension: IndexMap<String, Spanned<LineDef>>,
}

/// `[[patch]]`: changes one record type's effective table; every key it does not name stays as
/// that table has it, so improvements to a built-in table still arrive with upgrades.
#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
pub struct PatchDef {
    /// The record type whose table this changes.
    pub record: Spanned<u32>,
    pub class_id: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub severity: Option<Spanned<SeverityDef>>,
    pub msgid: Option<Spanned<String>>,
    /// Extension keys to set: replaced in place when the table has them, added at the end if not.
    #[serde(default)]
    pub set: IndexMap<String, Spanned<LineDef>>,
    /// Extension keys to leave out.
    #[serde(default)]
    pub remove: Vec<Spanned<String>>,
    /// Keys of `set` sent as another producer sends them (the `encore` profile: eNcore's
    /// `bytesIn`, `eventId`, an unclamped `fsize`): not checked against the CEF dictionary, their
    /// numbers written exactly. Only the shipped profiles may use it.
    #[serde(default)]
    pub verbatim: Vec<Spanned<String>>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum Records {
    Types(Vec<u32>),
    Special(String),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum LineDef {
    Source(String),
    Full(LineOptions),
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct LineOptions {
    pub source: String,
    /// Leave the pair out when the value is the number 0 (by default zeros are kept: a port or
    /// byte count of 0 is information).
    #[serde(default)]
    pub omit_zero: bool,
}

impl LineDef {
    pub fn source(&self) -> &str {
        match self {
            LineDef::Source(s) => s,
            LineDef::Full(o) => &o.source,
        }
    }

    pub fn omit_zero(&self) -> bool {
        matches!(self, LineDef::Full(o) if o.omit_zero)
    }
}

#[derive(Deserialize, Debug, Clone)]
#[serde(untagged)]
pub enum SeverityDef {
    Constant(u8),
    Rule(SeverityRule),
}

/// One of: `{ field, map, default }` (lookup), `{ field, ranges, default }` (range table),
/// `{ rows, columns, matrix, default }` (e.g. Cisco's priority × impact matrix).
#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    pub field: Option<String>,
    pub map: Option<IndexMap<String, u8>>,
    pub ranges: Option<Vec<Range>>,
    pub rows: Option<String>,
    pub columns: Option<String>,
    pub matrix: Option<Vec<Vec<u8>>>,
    pub default: Option<u8>,
}

#[derive(Deserialize, Debug, Clone)]
#[serde(deny_unknown_fields)]
pub struct Range {
    /// Values up to and including `max` get `severity`.
    pub max: u64,
    pub severity: u8,
}

pub use crate::diagnostic::line_of;
