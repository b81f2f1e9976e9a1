//! Event identities for FMC HA pairs: which fields make an event's identity per event family
//! (`families.toml`, data, documented there and in the README), and the identity of a decoded
//! record from them.

use std::collections::HashMap;
use std::sync::OnceLock;

use serde::Deserialize;

use crate::decode::Record;
use crate::decode::schema::FieldRef;

const FAMILIES: &str = include_str!("families.toml");

#[derive(Debug, Deserialize)]
struct File {
    family: Vec<FamilyDef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FamilyDef {
    name: String,
    records: Vec<u32>,
    fields: Vec<String>,
}

/// The identity fields of one record layout (a record type's variant), resolved.
#[derive(Debug)]
struct Resolved {
    family: usize,
    fields: Vec<Option<FieldRef>>,
}

/// The families, resolved against the record catalog.
#[derive(Debug)]
pub struct Families {
    names: Vec<String>,
    /// By (record type, address of the variant's scope).
    layouts: HashMap<(u32, usize), Resolved>,
}

/// The built-in families.
pub fn families() -> &'static Families {
    static F: OnceLock<Families> = OnceLock::new();
    F.get_or_init(|| Families::parse(FAMILIES).expect("families.toml is checked by a test"))
}

impl Families {
    fn parse(text: &str) -> Result<Families, String> {
        let file: File = toml::from_str(text).map_err(|e| format!("families.toml: {e}"))?;
        let catalog = crate::decode::catalog();
        let mut layouts = HashMap::new();
        let mut names = Vec::new();
        for (i, f) in file.family.iter().enumerate() {
            names.push(f.name.clone());
            for &t in &f.records {
                let schema = catalog.record(t).ok_or_else(|| {
                    format!("family {:?}: record {t} is not in the catalog", f.name)
                })?;
                for v in &schema.variants {
                    let scope = catalog.scope(v.scope);
                    let fields: Vec<Option<FieldRef>> = f
                        .fields
                        .iter()
                        .map(|p| scope.field_ref(catalog, p))
                        .collect();
                    if let Some((p, _)) = f.fields.iter().zip(&fields).find(|(_, r)| r.is_none()) {
                        return Err(format!(
                            "family {:?}: record {t} has no field {p:?}",
                            f.name
                        ));
                    }
                    layouts.insert(
                        (t, scope as *const _ as usize),
                        Resolved { family: i, fields },
                    );
                }
            }
        }
        Ok(Families { names, layouts })
    }

    /// The family a record belongs to (`None`: identified by its bytes).
    pub fn family_of(&self, record: &Record<'_>) -> Option<&str> {
        let scope = record.scope? as *const _ as usize;
        self.layouts
            .get(&(record.record_type(), scope))
            .map(|r| self.names[r.family].as_str())
    }

    /// The identity of a decoded record: a 64-bit hash of its family's fields, or of its bytes
    /// after the record header when it has no family.
    pub fn identity(&self, record: &Record<'_>) -> u64 {
        use xxhash_rust::xxh3::Xxh3;
        let mut h = Xxh3::new();
        h.update(&record.record_type().to_be_bytes());
        let resolved = record.scope.and_then(|s| {
            self.layouts
                .get(&(record.record_type(), s as *const _ as usize))
        });
        match resolved {
            Some(r) => {
                for f in &r.fields {
                    match f.and_then(|f| record.get_ref(f)) {
                        Some(v) => hash_value(&mut h, &v),
                        None => h.update(&u32::MAX.to_be_bytes()),
                    }
                }
            }
            None => h.update(record.data),
        }
        h.digest()
    }
}

/// A value's bytes, length first (so that adjacent fields cannot run into each other).
fn hash_value(h: &mut xxhash_rust::xxh3::Xxh3, v: &crate::decode::Value<'_>) {
    use crate::decode::Value;
    match *v {
        Value::Int(i) => {
            h.update(&8u32.to_be_bytes());
            h.update(&i.to_be_bytes());
        }
        Value::Ip(b)
        | Value::Mac(b)
        | Value::Uuid(b)
        | Value::Hex(b)
        | Value::Text(b)
        | Value::Bytes(b) => {
            h.update(&(b.len() as u32).to_be_bytes());
            h.update(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_family_field_exists_in_every_layout_it_names() {
        let f = Families::parse(FAMILIES).unwrap();
        assert!(f.layouts.len() >= 70, "{} layouts", f.layouts.len());
        assert!(
            Families::parse("[[family]]\nname = \"x\"\nrecords = [71]\nfields = [\"nope\"]\n")
                .unwrap_err()
                .contains("record 71 has no field \"nope\"")
        );
    }
}
