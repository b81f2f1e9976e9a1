//! Loads the record and block catalog (`catalog.json`, the reference catalog with the corrections
//! listed in its `meta.estreamerCefChanges`) and compiles it into [`Scope`]s.
//!
//! The catalog is data: adding a record type or fixing a layout is an edit of the JSON, not code.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use serde::Deserialize;

use super::schema::*;

const CATALOG_JSON: &str = include_str!("catalog.json");

#[derive(Deserialize)]
struct CatalogFile {
    records: BTreeMap<String, RecordDef>,
    blocks: BlocksDef,
    #[serde(rename = "deprecatedRecords")]
    deprecated_records: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct BlocksDef {
    series1: BTreeMap<String, BlockDef>,
    series2: BTreeMap<String, BlockDef>,
}

#[derive(Deserialize)]
struct RecordDef {
    name: String,
    category: Category,
    #[serde(rename = "encoreLabel")]
    label: String,
    layout: Vec<FieldDef>,
}

#[derive(Deserialize)]
struct BlockDef {
    #[serde(rename = "hasHeader")]
    has_header: Option<bool>,
    layout: Option<Vec<FieldDef>>,
}

#[derive(Deserialize, Clone)]
struct FieldDef {
    name: Option<String>,
    #[serde(rename = "type")]
    ty: String,
    length_from: Option<String>,
    #[serde(default)]
    adjustment: i32,
    block: Option<serde_json::Value>,
    series: Option<u8>,
    #[serde(default)]
    inline: bool,
    candidates: Option<Vec<u32>>,
}

/// The compiled catalog.
#[derive(Debug)]
pub struct Catalog {
    records: HashMap<u32, RecordSchema>,
    /// Fast path for the common small record numbers (no hashing per record).
    by_small_type: Vec<Option<RecordSchema>>,
    pub scopes: Vec<Scope>,
    deprecated: HashMap<u32, Box<str>>,
}

impl Catalog {
    pub fn record(&self, record_type: u32) -> Option<&RecordSchema> {
        match self.by_small_type.get(record_type as usize) {
            Some(r) => r.as_ref(),
            None => self.records.get(&record_type),
        }
    }

    pub fn scope(&self, id: ScopeId) -> &Scope {
        &self.scopes[id as usize]
    }

    /// All record types the catalog defines, in ascending order.
    pub fn record_types(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self.records.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// eNcore's name of a deprecated record number (no layout).
    pub fn deprecated_name(&self, record_type: u32) -> Option<&str> {
        self.deprecated.get(&record_type).map(|s| &**s)
    }

    /// Parses and compiles catalog JSON.
    pub fn from_json(json: &str) -> Result<Catalog, String> {
        let file: CatalogFile =
            serde_json::from_str(json).map_err(|e| format!("catalog JSON: {e}"))?;
        let mut c = Compiler {
            file: &file,
            scopes: Vec::new(),
            item_scopes: HashMap::new(),
            depth: 0,
        };
        let mut records = HashMap::new();
        for (key, def) in &file.records {
            let record_type: u32 = key
                .parse()
                .map_err(|_| format!("catalog: record key {key:?} is not a number"))?;
            let variants = c
                .compile_record(def)
                .map_err(|e| format!("catalog: record {record_type} ({}): {e}", def.name))?;
            records.insert(
                record_type,
                RecordSchema {
                    record_type,
                    name: def.name.clone().into(),
                    category: def.category,
                    label: def.label.clone().into(),
                    variants,
                },
            );
        }
        let mut by_small_type: Vec<Option<RecordSchema>> = vec![None; 1024];
        for (&t, schema) in &records {
            if (t as usize) < by_small_type.len() {
                by_small_type[t as usize] = Some(schema.clone());
            }
        }
        let deprecated = file
            .deprecated_records
            .iter()
            .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone().into_boxed_str())))
            .collect();
        Ok(Catalog {
            records,
            by_small_type,
            scopes: c.scopes,
            deprecated,
        })
    }
}

/// The catalog embedded in the binary.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| {
        // The embedded catalog is checked by the test suite; failing here is a build defect.
        Catalog::from_json(CATALOG_JSON).expect("embedded catalog.json compiles")
    })
}

struct Compiler<'f> {
    file: &'f CatalogFile,
    scopes: Vec<Scope>,
    item_scopes: HashMap<(u8, u32), ScopeId>,
    depth: usize,
}

/// Where compiled fields go while walking a layout.
struct Builder<'s> {
    scope: &'s mut Scope,
}

impl Builder<'_> {
    fn push(&mut self, name: &str, prefix: &str, kind: FieldKind, parent: Option<u16>) -> u16 {
        let slot = self.scope.fields.len() as u16;
        let path: Box<str> = format!("{prefix}{name}").into();
        self.scope.by_path.insert(path.clone(), slot);
        self.scope.fields.push(FieldInfo {
            name: name.into(),
            path,
            kind,
            parent,
            hidden: false,
            item_scope: None,
        });
        slot
    }
}

impl Compiler<'_> {
    fn block_def(&self, series: u8, number: u32) -> Result<&BlockDef, String> {
        let map = match series {
            1 => &self.file.blocks.series1,
            2 => &self.file.blocks.series2,
            s => return Err(format!("unknown block series {s}")),
        };
        map.get(&number.to_string())
            .ok_or_else(|| format!("series-{series} block {number} is not in the catalog"))
    }

    fn compile_record(&mut self, def: &RecordDef) -> Result<Vec<Variant>, String> {
        let auto = def
            .layout
            .iter()
            .find(|f| f.ty == "block" && f.block.as_ref().and_then(|b| b.as_str()) == Some("auto"));
        match auto {
            None => {
                let scope = self.compile_scope(&def.layout, false)?;
                Ok(vec![Variant {
                    selector: None,
                    scope,
                }])
            }
            Some(auto) => {
                // Only "discovery header, then the auto block" exists in the catalog (record 71).
                if def.layout.first().map(|f| f.ty.as_str()) != Some("discovery_header") {
                    return Err("an auto block must follow a discovery header".into());
                }
                let candidates = auto.candidates.clone().unwrap_or_default();
                let mut variants = Vec::new();
                for number in candidates {
                    let layout: Vec<FieldDef> = def
                        .layout
                        .iter()
                        .map(|f| {
                            if std::ptr::eq(f, auto) {
                                let mut f = f.clone();
                                f.block = Some(serde_json::Value::from(number));
                                f
                            } else {
                                f.clone()
                            }
                        })
                        .collect();
                    let scope = self.compile_scope(&layout, false)?;
                    variants.push(Variant {
                        selector: Some(number),
                        scope,
                    });
                }
                if variants.is_empty() {
                    return Err("auto block without candidates".into());
                }
                Ok(variants)
            }
        }
    }

    fn compile_scope(&mut self, layout: &[FieldDef], is_item: bool) -> Result<ScopeId, String> {
        let mut scope = Scope {
            is_item,
            ..Scope::default()
        };
        {
            let mut b = Builder { scope: &mut scope };
            self.walk(&mut b, layout, None, "", &mut HashMap::new())?;
        }
        let id = self.scopes.len();
        if id > u16::MAX as usize || scope.fields.len() > u16::MAX as usize / 2 {
            return Err("catalog too large".into());
        }
        scope.kinds = scope.fields.iter().map(|f| f.kind).collect();
        scope.find_runs();
        scope.find_string_blocks();
        self.scopes.push(scope);
        Ok(id as ScopeId)
    }

    /// `siblings`: fields of the same object by name, for `length_from` references ("an earlier
    /// field of the same object"); an inline block shares its parent's object.
    fn walk(
        &mut self,
        b: &mut Builder,
        layout: &[FieldDef],
        parent: Option<u16>,
        prefix: &str,
        siblings: &mut HashMap<String, u16>,
    ) -> Result<(), String> {
        self.depth += 1;
        if self.depth > 32 {
            return Err("blocks nest too deeply (recursive definition?)".into());
        }
        for f in layout {
            let name = f.name.as_deref();
            match f.ty.as_str() {
                "discovery_header" => self.discovery(b, parent, prefix),
                "string" | "bytes" => {
                    let name = name.ok_or("a variable field has no name")?;
                    let from = f
                        .length_from
                        .as_deref()
                        .ok_or("string without length_from")?;
                    let len_slot = *siblings.get(from).ok_or_else(|| {
                        format!("{name}: length field {from:?} is not an earlier field")
                    })?;
                    let binary = f.ty == "bytes";
                    let kind = if binary {
                        FieldKind::Bytes
                    } else {
                        FieldKind::Text
                    };
                    let slot = b.push(name, prefix, kind, parent);
                    b.scope.ops.push(Op::Var {
                        slot,
                        len_slot,
                        adjust: f.adjustment,
                        binary,
                    });
                    siblings.insert(name.to_string(), slot);
                }
                "block" => {
                    let series = f.series.ok_or("block without series")?;
                    let number = f
                        .block
                        .as_ref()
                        .and_then(|v| v.as_u64())
                        .ok_or("block without a number")? as u32;
                    let def = self.block_def(series, number)?;
                    let fields = def.layout.clone().ok_or_else(|| {
                        format!("series-{series} block {number} has no layout in the catalog")
                    })?;
                    let has_header = def.has_header.unwrap_or(true);
                    let (group, child_prefix) = if f.inline {
                        (parent, prefix.to_string())
                    } else {
                        let name = name.ok_or("a named block has no name")?;
                        let g = b.push(name, prefix, FieldKind::Group, parent);
                        siblings.insert(name.to_string(), g);
                        (Some(g), format!("{prefix}{name}."))
                    };
                    let mut own = HashMap::new();
                    let child_siblings = if f.inline { &mut *siblings } else { &mut own };
                    if has_header {
                        let named = if f.inline { None } else { group };
                        let id = (series, number);
                        self.header_block(
                            b,
                            &fields,
                            id,
                            group,
                            named,
                            &child_prefix,
                            child_siblings,
                        )?;
                    } else {
                        self.walk(b, &fields, group, &child_prefix, child_siblings)?;
                    }
                }
                "list" => {
                    let name = name.ok_or("a list has no name")?;
                    let series = f.series.ok_or("list without series")?;
                    let number =
                        f.block
                            .as_ref()
                            .and_then(|v| v.as_u64())
                            .ok_or("list without an item block")? as u32;
                    let item = self.item_scope(series, number)?;
                    let header = if self.block_def(series, number)?.has_header.unwrap_or(true) {
                        ItemHeader::InLayout
                    } else {
                        ItemHeader::Detect(number)
                    };
                    let slot = b.push(name, prefix, FieldKind::List, parent);
                    b.scope.fields[slot as usize].item_scope = Some(item);
                    let items = b.push(
                        &format!("{name}#items"),
                        prefix,
                        FieldKind::ListItems,
                        parent,
                    );
                    b.scope.fields[items as usize].hidden = true;
                    b.scope.ops.push(Op::List {
                        slot,
                        item,
                        header,
                        series,
                        number,
                    });
                    siblings.insert(name.to_string(), slot);
                }
                ty => {
                    let scalar = Scalar::from_name(ty)
                        .ok_or_else(|| format!("unknown field type {ty:?}"))?;
                    let name = name.ok_or("a field has no name")?;
                    let slot = b.push(name, prefix, FieldKind::Scalar(scalar), parent);
                    b.scope.ops.push(Op::Scalar { slot, scalar });
                    siblings.insert(name.to_string(), slot);
                }
            }
        }
        self.depth -= 1;
        Ok(())
    }

    /// A block whose first two layout fields are its type and length: bound it by its length.
    #[allow(clippy::too_many_arguments)]
    fn header_block(
        &mut self,
        b: &mut Builder,
        fields: &[FieldDef],
        (series, number): (u8, u32),
        parent: Option<u16>,
        group: Option<u16>,
        prefix: &str,
        siblings: &mut HashMap<String, u16>,
    ) -> Result<(), String> {
        if fields.len() < 2 || fields[..2].iter().any(|f| f.ty != "u32") {
            return Err("a block with a header must start with two u32 fields".into());
        }
        let begin = b.scope.ops.len();
        b.scope.ops.push(Op::BlockBegin {
            group,
            end_op: 0,
            series,
            number,
        });
        self.walk(b, &fields[..2], parent, prefix, siblings)?;
        let len_slot = (b.scope.fields.len() - 1) as u16;
        b.scope.ops.push(Op::BlockBound { len_slot });
        self.walk(b, &fields[2..], parent, prefix, siblings)?;
        let end_op = b.scope.ops.len() as u16;
        b.scope.ops.push(Op::BlockEnd);
        b.scope.ops[begin] = Op::BlockBegin {
            group,
            end_op,
            series,
            number,
        };
        Ok(())
    }

    fn item_scope(&mut self, series: u8, number: u32) -> Result<ScopeId, String> {
        if let Some(&id) = self.item_scopes.get(&(series, number)) {
            return Ok(id);
        }
        let layout = vec![FieldDef {
            name: None,
            ty: "block".into(),
            length_from: None,
            adjustment: 0,
            block: Some(serde_json::Value::from(number)),
            series: Some(series),
            inline: true,
            candidates: None,
        }];
        let id = self.compile_scope(&layout, true)?;
        self.item_scopes.insert((series, number), id);
        Ok(id)
    }

    fn discovery(&mut self, b: &mut Builder, parent: Option<u16>, prefix: &str) {
        use discovery::*;
        let base = b.scope.fields.len() as u16;
        let fields: [(&str, FieldKind, bool); SLOTS as usize] = [
            ("deviceId", FieldKind::Scalar(Scalar::U32), false),
            ("legacyIpAddress", FieldKind::Scalar(Scalar::Ipv4), true),
            ("macAddress", FieldKind::Scalar(Scalar::Mac), false),
            ("hasIpv6", FieldKind::Scalar(Scalar::U8), true),
            ("reserved", FieldKind::Scalar(Scalar::U8), true),
            ("eventSecond", FieldKind::Scalar(Scalar::U32), false),
            ("eventMicrosecond", FieldKind::Scalar(Scalar::U32), false),
            ("eventType", FieldKind::Scalar(Scalar::U32), false),
            ("eventSubtype", FieldKind::Scalar(Scalar::U32), false),
            ("fileNumber", FieldKind::Scalar(Scalar::U32), true),
            ("filePosition", FieldKind::Scalar(Scalar::U32), true),
            ("hostIpAddr", FieldKind::Ip, false),
        ];
        for (name, kind, hidden) in fields {
            let slot = b.push(name, prefix, kind, parent);
            b.scope.fields[slot as usize].hidden = hidden;
        }
        b.scope.ops.push(Op::Discovery { base });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_catalog_compiles_every_record() {
        let c = catalog();
        let types = c.record_types();
        assert!(types.len() >= 140, "only {} record types", types.len());
        for t in [
            2, 4, 9, 10, 71, 98, 110, 112, 125, 160, 170, 171, 400, 500, 502, 700,
        ] {
            assert!(c.record(t).is_some(), "record {t} missing");
        }
        assert_eq!(c.record(71).unwrap().variants.len(), 2);
        assert_eq!(c.deprecated_name(72), Some("IDS_EVENT_IPV6"));
    }

    #[test]
    fn paths_name_nested_fields_and_string_blocks() {
        let c = catalog();
        let v = &c.record(71).unwrap().variants;
        let s163 = c.scope(v.iter().find(|v| v.selector == Some(163)).unwrap().scope);
        let url = s163.find("clientUrl").unwrap();
        assert_eq!(s163.fields[url as usize].kind, FieldKind::Text);
        assert_eq!(s163.find("clientUrl.data"), Some(url));
        assert!(s163.find("originalClientIpAddress").is_some());
        let s160 = c.scope(v.iter().find(|v| v.selector == Some(160)).unwrap().scope);
        assert!(s160.find("originalClientIpAddress").is_none());
        let s10 = c.scope(c.record(10).unwrap().variants[0].scope);
        assert!(s10.find("hostProfile.ipAddress").is_some());
        assert!(s10.find("hostProfile.clientApplications").is_some());
    }
}
