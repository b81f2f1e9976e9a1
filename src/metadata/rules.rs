//! The metadata rules (`tables.toml`, data): which metadata record fills which map under which
//! key, the static defaults maps start with, and how an event's ids resolve into names.
//!
//! Rules are compiled per record layout (scope) into slot indexes, so resolving costs one hash
//! lookup per name and no string work per record.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use serde::Deserialize;

use super::key::Key;
#[cfg(test)]
use crate::decode::catalog;
use crate::decode::{FieldKind, FieldRef, RecordSchema, Scope};

const TABLES_TOML: &str = include_str!("tables.toml");

pub type MapId = u16;
pub type NameId = u16;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TablesFile {
    ingest: Vec<IngestDef>,
    #[serde(rename = "static")]
    statics: HashMap<String, HashMap<String, String>>,
    resolve: Vec<ResolveDef>,
    /// Bitmasks named bit by bit (`[flags.X]`).
    #[serde(default)]
    flags: HashMap<String, FlagsDef>,
    /// Where a record's event time is read from, in order (`[event_time]`).
    event_time: EventTimeDef,
}

/// A bitmask's bits and their names (`[flags.X]`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlagsDef {
    /// Between the names of two set bits.
    separator: String,
    /// Bit value (one bit set, decimal or 0x hex) → name.
    bits: HashMap<String, String>,
}

/// A compiled `[flags.X]` table: (bit value, name), by bit value.
#[derive(Debug)]
pub struct FlagTable {
    pub separator: Box<str>,
    pub bits: Vec<(u64, Box<str>)>,
}

impl FlagTable {
    /// The names of the bits set in `v`, in bit order, joined by the separator; a set bit
    /// without a name as its hex value (so no bit is silently dropped). `None` for 0.
    pub fn names(&self, v: u64) -> Option<String> {
        if v == 0 {
            return None;
        }
        let mut out = String::new();
        for bit in (0..64).map(|i| 1u64 << i).filter(|b| v & b != 0) {
            if !out.is_empty() {
                out.push_str(&self.separator);
            }
            match self.bits.binary_search_by_key(&bit, |(b, _)| *b) {
                Ok(i) => out.push_str(&self.bits[i].1),
                Err(_) => out.push_str(&format!("0x{bit:x}")),
            }
        }
        Some(out)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct EventTimeDef {
    /// Each: a seconds field and, optionally, its microseconds field.
    fields: Vec<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IngestDef {
    records: Vec<u32>,
    map: String,
    key: Vec<String>,
    value: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResolveDef {
    name: String,
    #[serde(default)]
    records: Option<Vec<u32>>,
    #[serde(default)]
    map: Option<String>,
    #[serde(default)]
    key: Vec<String>,
    #[serde(default)]
    function: Option<Function>,
    /// A `[flags.X]` table naming the set bits of the one key field.
    #[serde(default)]
    flags: Option<String>,
    /// The name to give when a key field is the integer 0 (e.g. "N/A" for an unused rule slot).
    #[serde(default)]
    when_zero: Option<String>,
    /// For a key of several fields: the one whose value is shown when the name is missing (the
    /// rule id, not its policy). Without it every part is shown, joined by ':' (`gid:rid`).
    #[serde(default)]
    id: Option<String>,
    /// Apply only when this field's value is one of `in`.
    #[serde(default)]
    only_if: Option<OnlyIf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OnlyIf {
    field: String,
    #[serde(rename = "in")]
    values: Vec<u64>,
}

/// Computed names that are not a map lookup.
#[derive(Clone, Copy, Debug, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Function {
    /// Impact level 0-4 from the 8-bit impact flags (reference 6.7).
    ImpactLevel,
    /// "Yes" when the field is not zero, else "No".
    YesNo,
    /// The record type's name from the catalog.
    RecordName,
    /// The record type's category.
    RecordCategory,
    /// The field's IPv4 address when a 16-byte blob holds one (extra data type 2), else its
    /// IPv6 form.
    BlobAddress,
    /// The blob's text (extra data carrying text).
    BlobText,
    /// The field's bytes as lowercase hex (eNcore's form of the original-client address).
    Hex,
    /// The domain name of the netmap id in the record header (map `netmapDomains`).
    NetmapDomain,
    /// A 16-byte value shown as an address (IPv4 when IPv4-mapped), e.g. VPN client IPs that the
    /// catalog types as u128.
    Address,
    /// The field's own value (to give a computed name to a nested field).
    Value,
    /// The event time (`[event_time]`): seconds since the epoch.
    EventSecond,
    /// Its microseconds (0 when the time came from a field without them).
    EventMicrosecond,
    /// The same time in ISO 8601, UTC, with microseconds.
    EventDateTime,
    /// The field the event time was read from (`archiveTimestamp` for the record header's).
    EventTimeSource,
}

impl Function {
    fn is_event_time(self) -> bool {
        matches!(
            self,
            Function::EventSecond
                | Function::EventMicrosecond
                | Function::EventDateTime
                | Function::EventTimeSource
        )
    }
}

/// How one resolved name is computed for one layout.
#[derive(Clone, Debug)]
pub enum Resolver {
    Lookup {
        map: MapId,
        key: Vec<FieldRef>,
        when_zero: Option<Box<str>>,
        only_if: Option<(FieldRef, Vec<u64>)>,
        /// The key field shown when the name is missing (`id` of the rule); `None`: all of them.
        missing_id: Option<FieldRef>,
    },
    Function {
        function: Function,
        field: Option<FieldRef>,
        only_if: Option<(FieldRef, Vec<u64>)>,
    },
    /// The names of the set bits of a bitmask field (`[flags.X]`, by index).
    Flags {
        table: u16,
        field: FieldRef,
        only_if: Option<(FieldRef, Vec<u64>)>,
    },
    /// A part of the event time: the first of `fields` (seconds, microseconds, field name) whose
    /// seconds are not 0, else the archive timestamp.
    EventTime {
        part: Function,
        fields: Box<[EventTimeField]>,
    },
}

/// A time field of a layout that can hold the event time.
#[derive(Clone, Debug)]
pub struct EventTimeField {
    pub seconds: FieldRef,
    pub microseconds: Option<FieldRef>,
    pub name: Box<str>,
}

/// A resolved name: its resolvers in order, the later ones tried when the earlier find nothing.
#[derive(Clone, Debug)]
pub struct CompiledResolve {
    pub name: NameId,
    pub resolvers: Vec<Resolver>,
}

#[derive(Clone, Debug)]
pub struct CompiledIngest {
    pub map: MapId,
    pub key: Vec<FieldRef>,
    pub value: FieldRef,
}

/// Rules compiled for one scope.
#[derive(Debug, Default)]
pub struct ScopeRules {
    pub ingest: Vec<CompiledIngest>,
    pub resolve: Vec<CompiledResolve>,
    /// NameId → index in `resolve`.
    by_name: HashMap<NameId, usize>,
}

impl ScopeRules {
    pub fn resolver(&self, name: NameId) -> Option<&CompiledResolve> {
        self.by_name.get(&name).map(|&i| &self.resolve[i])
    }
}

/// All rules, with map and name ids assigned.
pub struct Rules {
    file: TablesFile,
    map_names: Vec<String>,
    map_ids: HashMap<String, MapId>,
    names: Vec<String>,
    name_ids: HashMap<String, NameId>,
    statics: Vec<(MapId, Key, Box<str>)>,
    /// (map, key) → index in `statics`: an evicted entry's default is found without a scan
    /// (the cipher-suite table alone has hundreds).
    static_index: HashMap<(MapId, Key), usize>,
    flag_tables: Vec<FlagTable>,
    flag_ids: HashMap<String, u16>,
    compiled: Mutex<HashMap<usize, Arc<ScopeRules>>>,
}

impl Rules {
    pub fn from_toml(text: &str) -> Result<Rules, String> {
        let file: TablesFile = toml::from_str(text).map_err(|e| format!("tables.toml: {e}"))?;
        if let Some(f) = file
            .event_time
            .fields
            .iter()
            .find(|f| f.is_empty() || f.len() > 2)
        {
            return Err(format!(
                "tables.toml: [event_time] fields: {f:?} must be a seconds field and, optionally, \
                 its microseconds field"
            ));
        }
        let mut map_names = Vec::new();
        let mut map_ids = HashMap::new();
        let intern = |n: &str, names: &mut Vec<String>, ids: &mut HashMap<String, u16>| -> u16 {
            if let Some(&id) = ids.get(n) {
                return id;
            }
            let id = names.len() as u16;
            names.push(n.to_string());
            ids.insert(n.to_string(), id);
            id
        };
        for i in &file.ingest {
            intern(&i.map, &mut map_names, &mut map_ids);
        }
        let mut statics = Vec::new();
        let mut static_maps: Vec<&String> = file.statics.keys().collect();
        static_maps.sort();
        for m in static_maps {
            let id = intern(m, &mut map_names, &mut map_ids);
            // In a fixed order (the file's map is a HashMap): the simulator's generated records
            // follow from this order and must be the same in every process.
            let mut entries: Vec<(&String, &String)> = file.statics[m].iter().collect();
            entries.sort();
            for (k, v) in entries {
                statics.push((id, static_key(m, k)?, v.clone().into_boxed_str()));
            }
        }
        let mut flag_tables = Vec::new();
        let mut flag_ids = HashMap::new();
        let mut flag_names: Vec<&String> = file.flags.keys().collect();
        flag_names.sort();
        for f in flag_names {
            flag_ids.insert(f.clone(), flag_tables.len() as u16);
            flag_tables.push(flag_table(f, &file.flags[f])?);
        }
        let mut names = Vec::new();
        let mut name_ids = HashMap::new();
        for r in &file.resolve {
            if let Some(f) = &r.flags {
                if !flag_ids.contains_key(f) {
                    return Err(format!(
                        "tables.toml: resolve {:?} uses flags {f:?}, which is no [flags.{f}] table",
                        r.name
                    ));
                }
                if r.map.is_some() || r.function.is_some() || r.key.len() != 1 {
                    return Err(format!(
                        "tables.toml: resolve {:?}: flags {f:?} names the bits of one key field; \
                         give exactly one key field and no map or function",
                        r.name
                    ));
                }
            } else if let Some(m) = &r.map {
                if !map_ids.contains_key(m) {
                    return Err(format!(
                        "tables.toml: resolve {:?} uses map {m:?}, which no ingest rule or static table fills",
                        r.name
                    ));
                }
                if let Some(id) = &r.id
                    && !r.key.contains(id)
                {
                    return Err(format!(
                        "tables.toml: resolve {:?}: id {id:?} is not one of its key fields {:?}; \
                         name the key field whose value stands for the missing name",
                        r.name, r.key
                    ));
                }
            } else if r.function.is_none() {
                return Err(format!(
                    "tables.toml: resolve {:?} has neither map nor function",
                    r.name
                ));
            }
            intern(&r.name, &mut names, &mut name_ids);
        }
        Ok(Rules {
            file,
            map_names,
            map_ids,
            names,
            name_ids,
            static_index: statics
                .iter()
                .enumerate()
                .map(|(i, (m, k, _))| ((*m, *k), i))
                .collect(),
            statics,
            flag_tables,
            flag_ids,
            compiled: Mutex::new(HashMap::new()),
        })
    }

    pub fn map_count(&self) -> usize {
        self.map_names.len()
    }

    pub fn map_name(&self, id: MapId) -> &str {
        &self.map_names[id as usize]
    }

    pub fn map_id(&self, name: &str) -> Option<MapId> {
        self.map_ids.get(name).copied()
    }

    pub fn name_id(&self, name: &str) -> Option<NameId> {
        self.name_ids.get(name).copied()
    }

    pub fn name(&self, id: NameId) -> &str {
        &self.names[id as usize]
    }

    /// Every resolved name any rule defines.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn statics(&self) -> &[(MapId, Key, Box<str>)] {
        &self.statics
    }

    /// The static default of a map's key, if it has one.
    pub fn static_default(&self, map: MapId, key: &Key) -> Option<&str> {
        let i = *self.static_index.get(&(map, *key))?;
        Some(&self.statics[i].2)
    }

    pub fn flag_table(&self, id: u16) -> &FlagTable {
        &self.flag_tables[id as usize]
    }

    /// Rules compiled for a record layout (cached).
    pub fn for_scope(&self, schema: &RecordSchema, scope: &Scope) -> Arc<ScopeRules> {
        let id = scope as *const Scope as usize;
        let mut cache = self.compiled.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .entry(id)
            .or_insert_with(|| Arc::new(self.compile(schema, scope)))
            .clone()
    }

    /// The `[event_time]` fields this layout has, in order.
    fn event_time_fields(&self, find: &dyn Fn(&str) -> Option<FieldRef>) -> Box<[EventTimeField]> {
        self.file
            .event_time
            .fields
            .iter()
            .filter_map(|f| {
                let seconds = find(f.first()?)?;
                // A microseconds field the layout lacks: the seconds alone.
                let microseconds = f.get(1).and_then(|m| find(m));
                Some(EventTimeField {
                    seconds,
                    microseconds,
                    name: f[0].clone().into_boxed_str(),
                })
            })
            .collect()
    }

    fn compile(&self, schema: &RecordSchema, scope: &Scope) -> ScopeRules {
        let t = schema.record_type;
        let cat = crate::decode::catalog();
        let find = |path: &str| -> Option<FieldRef> {
            let r = scope.field_ref(cat, path)?;
            match scope.ref_kind(cat, r) {
                FieldKind::Group | FieldKind::List | FieldKind::ListItems => None,
                _ => Some(r),
            }
        };
        let mut out = ScopeRules::default();
        for i in &self.file.ingest {
            if !i.records.contains(&t) {
                continue;
            }
            let key: Option<Vec<FieldRef>> = i.key.iter().map(|k| find(k)).collect();
            if let (Some(key), Some(value)) = (key, find(&i.value)) {
                out.ingest.push(CompiledIngest {
                    map: self.map_ids[&i.map],
                    key,
                    value,
                });
            }
        }
        for r in &self.file.resolve {
            if r.records.as_ref().is_some_and(|rs| !rs.contains(&t)) {
                continue;
            }
            let name = self.name_ids[&r.name];
            let only_if = match &r.only_if {
                Some(o) => match find(&o.field) {
                    Some(f) => Some((f, o.values.clone())),
                    None => continue,
                },
                None => None,
            };
            let resolver = match (&r.map, r.function) {
                (None, None) if r.flags.is_some() => {
                    let table = r.flags.as_ref().map_or(0, |f| self.flag_ids[f]);
                    let Some(field) = r.key.first().and_then(|k| find(k)) else {
                        continue;
                    };
                    Resolver::Flags {
                        table,
                        field,
                        only_if,
                    }
                }
                (Some(m), _) => {
                    let Some(key) = r
                        .key
                        .iter()
                        .map(|k| find(k))
                        .collect::<Option<Vec<FieldRef>>>()
                    else {
                        continue;
                    };
                    Resolver::Lookup {
                        map: self.map_ids[m],
                        key,
                        when_zero: r.when_zero.clone().map(String::into_boxed_str),
                        only_if,
                        // Checked at load to be one of the key's fields, so found with them.
                        missing_id: r.id.as_deref().and_then(&find),
                    }
                }
                (None, Some(function)) if function.is_event_time() => Resolver::EventTime {
                    part: function,
                    fields: self.event_time_fields(&find),
                },
                (None, Some(function)) => {
                    let field = match r.key.first() {
                        Some(k) => match find(k) {
                            Some(s) => Some(s),
                            None => continue,
                        },
                        None => None,
                    };
                    Resolver::Function {
                        function,
                        field,
                        only_if,
                    }
                }
                (None, None) => continue,
            };
            match out.by_name.get(&name) {
                Some(&i) => out.resolve[i].resolvers.push(resolver),
                None => {
                    out.by_name.insert(name, out.resolve.len());
                    out.resolve.push(CompiledResolve {
                        name,
                        resolvers: vec![resolver],
                    });
                }
            }
        }
        out
    }
}

/// One key of a `[static.X]` table: parts joined by "/", each a number (decimal or 0x hex),
/// `nil` (the nil UUID), `hex:` and the hex text of a hash or fingerprint (as the FMC sends it;
/// a number would lose its width: an all-zero SHA-256 is not the id 0), or text.
fn static_key(map: &str, k: &str) -> Result<Key, String> {
    let mut key = Key::new();
    for part in k.split('/') {
        if let Some(hex) = part.strip_prefix("hex:") {
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) || hex.len() > 64 {
                return Err(format!(
                    "tables.toml: [static.{map}] key {k:?}: {part:?} is not a hex value; write \
                     `hex:` and up to 64 hex digits, e.g. hex:{}",
                    "0".repeat(64)
                ));
            }
            key.push_text(hex.to_ascii_lowercase().as_bytes());
        } else if part == "nil" {
            // The nil UUID: what an event carries when there is no zone, interface, ...
            key.push_value(&crate::decode::Value::Uuid(&[0; 16]));
        } else if let Some(n) =
            parse_int(part).map_err(|e| format!("tables.toml: [static.{map}] key {k:?}: {e}"))?
        {
            key.push_int(n);
        } else {
            key.push_text(part.as_bytes());
        }
    }
    Ok(key)
}

/// A decimal or 0x-hex integer; `None` for any other text, an error for a bad 0x number.
fn parse_int(s: &str) -> Result<Option<u64>, String> {
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        return u64::from_str_radix(hex, 16).map(Some).map_err(|_| {
            format!("{s:?} is not a hexadecimal number of at most 16 digits (e.g. 0xC02F)")
        });
    }
    Ok(s.parse::<u64>().ok())
}

fn flag_table(name: &str, def: &FlagsDef) -> Result<FlagTable, String> {
    let mut bits = Vec::new();
    for (k, v) in &def.bits {
        let bit = match parse_int(k) {
            Ok(Some(b)) if b.is_power_of_two() => b,
            Ok(_) => {
                return Err(format!(
                    "tables.toml: [flags.{name}.bits] key {k:?} is not one bit; write the bit's \
                     value, e.g. 0x4 or 4 (a key with several bits set cannot be named)"
                ));
            }
            Err(e) => return Err(format!("tables.toml: [flags.{name}.bits] key {k:?}: {e}")),
        };
        bits.push((bit, v.clone().into_boxed_str()));
    }
    bits.sort();
    if let Some(w) = bits.windows(2).find(|w| w[0].0 == w[1].0) {
        return Err(format!(
            "tables.toml: [flags.{name}.bits] names bit 0x{:x} twice ({:?} and {:?}); keep one",
            w[0].0, w[0].1, w[1].1
        ));
    }
    Ok(FlagTable {
        separator: def.separator.clone().into_boxed_str(),
        bits,
    })
}

/// The rules embedded in the binary.
pub fn rules() -> &'static Rules {
    static RULES: OnceLock<Rules> = OnceLock::new();
    RULES.get_or_init(|| Rules::from_toml(TABLES_TOML).expect("embedded tables.toml is valid"))
}

/// Every record type that an ingest rule reads.
pub fn ingested_record_types() -> Vec<u32> {
    let mut v: Vec<u32> = rules()
        .file
        .ingest
        .iter()
        .flat_map(|i| i.records.iter().copied())
        .collect();
    v.sort_unstable();
    v.dedup();
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_rules_refer_to_real_fields() {
        let r = rules();
        let c = catalog();
        // Every ingest rule compiles against every record it names.
        for i in &r.file.ingest {
            for &t in &i.records {
                let schema = c
                    .record(t)
                    .unwrap_or_else(|| panic!("ingest names unknown record {t}"));
                for v in &schema.variants {
                    let scope = c.scope(v.scope);
                    let compiled = r.for_scope(schema, scope);
                    assert!(
                        compiled.ingest.iter().any(|ci| r.map_name(ci.map) == i.map),
                        "ingest for map {} does not compile for record {t}",
                        i.map
                    );
                }
            }
        }
        // Resolve rules restricted to records compile for those records.
        for d in &r.file.resolve {
            if let Some(records) = &d.records {
                for &t in records {
                    let schema = c
                        .record(t)
                        .unwrap_or_else(|| panic!("resolve names unknown record {t}"));
                    let ok = schema.variants.iter().any(|v| {
                        let s = r.for_scope(schema, c.scope(v.scope));
                        s.resolver(r.name_id(&d.name).unwrap()).is_some()
                    });
                    assert!(ok, "resolve {} does not compile for record {t}", d.name);
                }
            }
        }
        // Every [event_time] field is a field of some record (a typo would silently never match).
        for f in r.file.event_time.fields.iter().flatten() {
            let found = c.record_types().into_iter().any(|t| {
                let schema = c.record(t).unwrap();
                schema
                    .variants
                    .iter()
                    .any(|v| c.scope(v.scope).field_ref(c, f).is_some())
            });
            assert!(found, "[event_time] field {f:?} is in no record");
        }
    }

    #[test]
    fn a_missing_id_must_be_a_key_field_and_an_event_time_field_a_pair_at_most() {
        let base = "ingest = []\nresolve = []\n[static]\n";
        let err = Rules::from_toml(&format!(
            "{base}[event_time]\nfields = [[\"a\", \"b\", \"c\"]]\n"
        ))
        .err()
        .unwrap();
        assert!(
            err.contains("[event_time]") && err.contains("microseconds"),
            "{err}"
        );
        let err = Rules::from_toml(
            "ingest = []\n[static.m]\n0 = \"x\"\n[[resolve]]\nname = \"n\"\nmap = \"m\"\n\
             key = [\"policy\", \"rule\"]\nid = \"ruel\"\n[event_time]\nfields = []\n",
        )
        .err()
        .unwrap();
        assert!(
            err.contains("\"ruel\"") && err.contains("key fields"),
            "{err}"
        );
    }

    /// A minimal tables file around `extra` (statics, flags, resolve rules).
    fn tables(extra: &str) -> Result<Rules, String> {
        Rules::from_toml(&format!(
            "ingest = []\nresolve = []\n[event_time]\nfields = []\n[static]\n{extra}"
        ))
    }

    #[test]
    fn flags_name_the_set_bits_in_order_and_show_unnamed_bits_in_hex() {
        let r = tables(
            "[flags.f]\nseparator = \",\"\n[flags.f.bits]\n0x1 = \"A\"\n4 = \"C\"\n0x2 = \"B\"\n",
        )
        .unwrap();
        let t = r.flag_table(r.flag_ids["f"]);
        assert_eq!(t.names(7).as_deref(), Some("A,B,C"));
        assert_eq!(t.names(4).as_deref(), Some("C"));
        assert_eq!(t.names(0x101).as_deref(), Some("A,0x100"));
        assert_eq!(t.names(0), None);
        // The embedded tables: eNcore's names of the SSL flow bits.
        let e = rules();
        let msgs = e.flag_table(e.flag_ids["sslFlowMessages"]);
        assert_eq!(
            msgs.names(24).as_deref(),
            Some("NSE_MT__CLIENT_HELLO,NSE_MT__SERVER_HELLO")
        );
        assert_eq!(msgs.names(0xFFFFF).unwrap().split(',').count(), 20);
    }

    #[test]
    fn a_bad_flags_table_or_rule_is_refused_naming_table_and_key() {
        let err = tables("[flags.f]\nseparator = \",\"\n[flags.f.bits]\n3 = \"AB\"\n")
            .err()
            .unwrap();
        assert!(
            err.contains("[flags.f.bits]") && err.contains("\"3\"") && err.contains("one bit"),
            "{err}"
        );
        let err = tables("[flags.f]\nseparator = \",\"\n[flags.f.bits]\n0xZZ = \"A\"\n")
            .err()
            .unwrap();
        assert!(
            err.contains("\"0xZZ\"") && err.contains("hexadecimal"),
            "{err}"
        );
        let err = tables("[flags.f]\nseparator = \",\"\n[flags.f.bits]\n1 = \"A\"\n0x01 = \"B\"\n")
            .err()
            .unwrap();
        assert!(err.contains("twice"), "{err}");
        let err = Rules::from_toml(
            "ingest = []\n[static]\n[[resolve]]\nname = \"n\"\nflags = \"nope\"\nkey = [\"x\"]\n\
             [event_time]\nfields = []\n",
        )
        .err()
        .unwrap();
        assert!(
            err.contains("\"nope\"") && err.contains("[flags.nope]"),
            "{err}"
        );
        let err = Rules::from_toml(
            "ingest = []\n[static]\n[flags.f]\nseparator = \",\"\n[flags.f.bits]\n1 = \"A\"\n\
             [[resolve]]\nname = \"n\"\nflags = \"f\"\nkey = [\"x\", \"y\"]\n\
             [event_time]\nfields = []\n",
        )
        .err()
        .unwrap();
        assert!(err.contains("exactly one key field"), "{err}");
    }

    #[test]
    fn static_keys_in_hex_and_hash_text() {
        let r = tables("[static.m]\n0xC02F = \"suite\"\n\"hex:00AB\" = \"hash\"\n7 = \"seven\"\n")
            .unwrap();
        let key_of = |v: &crate::decode::Value| {
            let mut k = Key::new();
            k.push_value(v);
            k
        };
        let has = |k: Key, want: &str| {
            r.statics()
                .iter()
                .any(|(_, sk, v)| *sk == k && &**v == want)
        };
        use crate::decode::Value;
        assert!(has(key_of(&Value::Int(0xC02F)), "suite"));
        assert!(has(key_of(&Value::Int(7)), "seven"));
        // A hash keys as its lowercase hex text, as an event's hex field and string block do.
        assert!(has(key_of(&Value::Hex(&[0x00, 0xab])), "hash"));
        assert!(has(key_of(&Value::Text(b"00AB")), "hash"));
        for bad in ["\"hex:xyz\"", "\"hex:\"", "0x"] {
            let err = tables(&format!("[static.m]\n{bad} = \"v\"\n"))
                .err()
                .unwrap();
            assert!(
                err.contains("[static.m]") && err.contains("hex"),
                "{bad}: {err}"
            );
        }
    }
}
