//! JSON form of a decoded record, as `estreamer-cef decode` prints it.
//!
//! Field names and nesting follow the reference catalog and eNcore's JSON output, which users'
//! SIEM content already knows: inline blocks are merged into the record, named blocks are nested
//! objects (string blocks included: `{"blockType":0,"blockLength":..,"data":".."}`), lists are
//! `{"listType":..,"listLength":..,"items":[..]}`. Text that is not valid UTF-8 is shown as
//! lowercase hex, as eNcore does; NULs are removed from text.

use serde_json::{Map, Value as Json};

use super::record::{Record, be32};
use super::schema::{FieldKind, Scope};
use super::value::write_hex;

/// The record's own fields (header and body) as a JSON object.
pub fn record_fields(rec: &Record) -> Map<String, Json> {
    let mut obj = Map::new();
    let h = &rec.header;
    obj.insert("recordType".into(), h.record_type.into());
    obj.insert("recordLength".into(), h.record_length.into());
    obj.insert("archiveTimestamp".into(), h.archive_timestamp.into());
    obj.insert("checksum".into(), h.reserved.into());
    if let Some(n) = h.netmap_id {
        obj.insert("netmapId".into(), n.into());
    }
    match rec.scope {
        Some(scope) => render_object(rec, scope, 0, None, &mut obj),
        None => {
            let mut hex = String::new();
            write_hex(&mut hex, rec.data);
            obj.insert("payload".into(), Json::String(hex));
        }
    }
    obj
}

fn render_object(
    rec: &Record,
    scope: &Scope,
    base: usize,
    parent: Option<u16>,
    obj: &mut Map<String, Json>,
) {
    for (i, f) in scope.fields.iter().enumerate() {
        if f.parent != parent || f.hidden {
            continue;
        }
        let slot = i as u16;
        if !rec.present_at(base, slot) {
            continue;
        }
        let v = match f.kind {
            FieldKind::Group => {
                let mut child = Map::new();
                render_object(rec, scope, base, Some(slot), &mut child);
                Json::Object(child)
            }
            FieldKind::List => {
                let s = rec.slots[base + i];
                let mut list = Map::new();
                list.insert("listType".into(), be32(rec.data, s.off as usize).into());
                list.insert("listLength".into(), s.len.into());
                let items = match f.item_scope {
                    Some(item) => {
                        let item_scope = crate::decode::catalog().scope(item);
                        rec.list_items(base, slot, item_scope)
                            .map(|ib| {
                                let mut o = Map::new();
                                render_object(rec, item_scope, ib, None, &mut o);
                                Json::Object(o)
                            })
                            .collect()
                    }
                    None => Vec::new(),
                };
                list.insert("items".into(), Json::Array(items));
                Json::Object(list)
            }
            FieldKind::ListItems => continue,
            _ => match rec.value_at(scope, base, slot) {
                Some(v) => v.to_json(),
                None => continue,
            },
        };
        obj.insert(f.name.to_string(), v);
    }
}
