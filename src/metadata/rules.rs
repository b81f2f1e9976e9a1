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
    /// Where a record's event time is read from, in order (`[event_time]`).
    event_time: EventTimeDef,
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
                let mut key = Key::new();
                for part in k.split('/') {
                    match part.parse::<u64>() {
                        Ok(n) => key.push_int(n),
                        // The nil UUID: what an event carries when there is no zone, interface, ...
                        Err(_) if part == "nil" => {
                            key.push_value(&crate::decode::Value::Uuid(&[0; 16]))
                        }
                        Err(_) => key.push_text(part.as_bytes()),
                    }
                }
                statics.push((id, key, v.clone().into_boxed_str()));
            }
        }
        let mut names = Vec::new();
        let mut name_ids = HashMap::new();
        for r in &file.resolve {
            if let Some(m) = &r.map {
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
            statics,
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
}
