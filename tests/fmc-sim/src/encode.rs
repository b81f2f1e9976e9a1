//! The record encoder: walks the same compiled layout ([`Scope`] ops) the decoder interprets and
//! writes bytes for chosen values, together with the JSON the decoder must give back for them.
//!
//! Lengths are computed, never chosen: a string's length field is written once its text is
//! chosen, block and list lengths are patched when they end, and the record length when the
//! record ends.

use std::collections::HashMap;
use std::sync::OnceLock;

use rand::Rng;
use rand::rngs::StdRng;
use serde_json::{Map, Value as Json};

use super::values::{self, Ctx, Gen, Val};
use estreamer_cef::decode::catalog;
use estreamer_cef::decode::schema::{FieldKind, ItemHeader, Op, Scope, ScopeId, discovery};
use estreamer_cef::decode::{FieldRef, RecordSchema};

/// The list block type written in list headers (series 1, reference 6.4).
pub(crate) const LIST_BLOCK_TYPE: u32 = 11;

/// Per-scope facts the encoder needs, computed once from the catalog.
pub(crate) struct ScopeInfo {
    /// The value generator of every slot.
    pub gens: Vec<Gen>,
    /// For a length field: the variable field it measures and the adjustment.
    pub len_for: Vec<Option<(u16, i32)>>,
}

/// Encoder facts for every scope of the catalog, indexed by scope id.
pub(crate) fn scope_infos() -> &'static [ScopeInfo] {
    static INFOS: OnceLock<Vec<ScopeInfo>> = OnceLock::new();
    INFOS.get_or_init(|| catalog().scopes.iter().map(scope_info).collect())
}

fn scope_info(scope: &Scope) -> ScopeInfo {
    let mut gens: Vec<Gen> = scope
        .fields
        .iter()
        .map(|f| values::rule_for(rule_name(scope, f), f.kind))
        .collect();
    let mut len_for = vec![None; scope.fields.len()];
    for op in &scope.ops {
        if let Op::Discovery { base } = *op {
            gens[(base + discovery::DEVICE_ID) as usize] = Gen::Device;
            gens[(base + discovery::EVENT_TYPE) as usize] = Gen::DiscoveryEvent { subtype: false };
            gens[(base + discovery::EVENT_SUBTYPE) as usize] =
                Gen::DiscoveryEvent { subtype: true };
        }
        if let Op::Var {
            slot,
            len_slot,
            adjust,
            ..
        } = *op
        {
            // Every variable field of the catalog has its own length field.
            if len_for[len_slot as usize].is_none() {
                len_for[len_slot as usize] = Some((slot, adjust));
            }
        }
    }
    ScopeInfo { gens, len_for }
}

/// The name value rules see: a string block's text is named after its block.
fn rule_name<'s>(scope: &'s Scope, f: &'s estreamer_cef::decode::schema::FieldInfo) -> &'s str {
    match (f.kind, f.parent) {
        (FieldKind::Text | FieldKind::Bytes, Some(p)) if &*f.name == "data" => {
            &scope.fields[p as usize].name
        }
        _ => &f.name,
    }
}

/// Values decided before encoding (ids that must resolve, metadata keys and names).
#[derive(Clone, Debug, Default)]
pub(crate) struct Forced {
    pub root: HashMap<u16, Val>,
    /// (list slot, item slot) → value, for the first item of a root-scope list.
    pub first_item: HashMap<(u16, u16), Val>,
}

impl Forced {
    pub fn get(&self, r: FieldRef) -> Option<&Val> {
        match r {
            FieldRef::Root(s) => self.root.get(&s),
            FieldRef::FirstItem { list, slot, .. } => self.first_item.get(&(list, slot)),
        }
    }

    pub fn set(&mut self, r: FieldRef, v: Val) {
        match r {
            FieldRef::Root(s) => self.root.insert(s, v),
            FieldRef::FirstItem { list, slot, .. } => self.first_item.insert((list, slot), v),
        };
    }
}

/// How to encode one record.
pub(crate) struct Spec<'a> {
    pub schema: &'static RecordSchema,
    pub scope: ScopeId,
    /// Discovery header with the IPv6 address (hasIpv6 1) or the legacy IPv4 form.
    pub ipv6_header: bool,
    /// For list items whose block the catalog gives no header (block 166): send one anyway.
    /// `None`: decide per list.
    pub item_headers: Option<bool>,
    /// `Some(second)`: a 16-byte record header with this archive timestamp; `None`: 8 bytes.
    pub archive: Option<u32>,
    pub ctx: Ctx,
    pub forced: &'a Forced,
}

/// One encoded record.
pub(crate) struct Encoded {
    pub body: Vec<u8>,
    pub truth: Json,
    /// The value written to each root slot (computed lengths included).
    pub root: Vec<Option<Val>>,
}

/// Truth of one slot while a scope is written.
#[derive(Clone, Debug)]
enum Tv {
    None,
    Val(Json),
    List {
        len: u32,
        items: Vec<Map<String, Json>>,
    },
}

struct Encoder<'a> {
    out: Vec<u8>,
    rng: &'a mut StdRng,
    ctx: &'a Ctx,
    ipv6_header: bool,
    item_headers: Option<bool>,
}

/// One scope instance being written.
struct Inst<'f> {
    scope: &'static Scope,
    info: &'static ScopeInfo,
    tv: Vec<Tv>,
    vals: Vec<Option<Val>>,
    forced: Option<&'f HashMap<u16, Val>>,
}

impl Inst<'_> {
    fn sibling(&self, name: &str) -> Option<Val> {
        let slot = *self.scope.by_path.get(name)?;
        self.vals.get(slot as usize)?.clone()
    }
}

pub(crate) fn encode(spec: &Spec, rng: &mut StdRng) -> Encoded {
    let header_len = if spec.archive.is_some() { 16 } else { 8 };
    let mut out = Vec::with_capacity(512);
    out.extend_from_slice(&spec.schema.record_type.to_be_bytes());
    out.extend_from_slice(&[0; 4]);
    if let Some(a) = spec.archive {
        out.extend_from_slice(&a.to_be_bytes());
        out.extend_from_slice(&[0; 4]);
    }
    let mut enc = Encoder {
        out,
        rng,
        ctx: &spec.ctx,
        ipv6_header: spec.ipv6_header,
        item_headers: spec.item_headers,
    };
    let (tv, vals) = enc.scope(spec.scope, Some(&spec.forced.root), Some(spec.forced), 0);
    let record_len = (enc.out.len() - header_len) as u32;
    enc.out[4..8].copy_from_slice(&record_len.to_be_bytes());
    let scope = catalog().scope(spec.scope);
    let mut obj = Map::new();
    obj.insert("recordType".into(), spec.schema.record_type.into());
    obj.insert("recordLength".into(), record_len.into());
    obj.insert("archiveTimestamp".into(), spec.archive.unwrap_or(0).into());
    obj.insert("checksum".into(), 0.into());
    render(scope, &tv, None, &mut obj);
    Encoded {
        body: enc.out,
        truth: Json::Object(obj),
        root: vals,
    }
}

/// eNcore's object form: inline blocks merged, named blocks nested, hidden wire fields left out.
fn render(scope: &Scope, tv: &[Tv], parent: Option<u16>, obj: &mut Map<String, Json>) {
    for (i, f) in scope.fields.iter().enumerate() {
        if f.parent != parent || f.hidden {
            continue;
        }
        let v = match (f.kind, &tv[i]) {
            (FieldKind::Group, _) => {
                let mut child = Map::new();
                render(scope, tv, Some(i as u16), &mut child);
                Json::Object(child)
            }
            (FieldKind::ListItems, _) => continue,
            (_, Tv::List { len, items }) => {
                let mut l = Map::new();
                l.insert("listType".into(), LIST_BLOCK_TYPE.into());
                l.insert("listLength".into(), (*len).into());
                l.insert(
                    "items".into(),
                    Json::Array(items.iter().cloned().map(Json::Object).collect()),
                );
                Json::Object(l)
            }
            (_, Tv::Val(j)) => j.clone(),
            (_, Tv::None) => continue,
        };
        obj.insert(f.name.to_string(), v);
    }
}

impl Encoder<'_> {
    fn put_int(&mut self, v: u64, width: usize) {
        let b = v.to_be_bytes();
        self.out.extend_from_slice(&b[8 - width..]);
    }

    fn patch_u32(&mut self, at: usize, v: u32) {
        self.out[at..at + 4].copy_from_slice(&v.to_be_bytes());
    }

    /// Writes one scope instance. `forced` applies to its slots; `record_forced` (root scope
    /// only) carries first-item values for its lists. Returns the truth and values per slot.
    fn scope(
        &mut self,
        id: ScopeId,
        forced: Option<&HashMap<u16, Val>>,
        record_forced: Option<&Forced>,
        depth: usize,
    ) -> (Vec<Tv>, Vec<Option<Val>>) {
        let scope = catalog().scope(id);
        let info = &scope_infos()[id as usize];
        let n = scope.fields.len();
        let mut inst = Inst {
            scope,
            info,
            tv: vec![Tv::None; n],
            vals: vec![None; n],
            forced,
        };
        let mut pending: HashMap<u16, Vec<u8>> = HashMap::new();
        // Open blocks: (start, number, length slot).
        let mut blocks: Vec<(usize, u32, Option<u16>)> = Vec::new();
        // 2: the next scalar is a block type, 1: a block length, 0: an ordinary field.
        let mut header = 0u8;
        // A plain `blockType`/`blockLength` pair at the start of a record (530, 700).
        let mut plain_len: Option<(usize, u16)> = None;
        for op in &scope.ops {
            match *op {
                Op::Scalar { slot, scalar } => {
                    let w = scalar.width();
                    let kind = FieldKind::Scalar(scalar);
                    if header == 2 {
                        let number = blocks.last().map(|b| b.1).unwrap_or(0);
                        self.put_int(number as u64, w);
                        inst.set(slot, kind, Val::Int(number as u64));
                        header = 1;
                        continue;
                    }
                    if header == 1 {
                        // Patched at BlockEnd; a string block's text is chosen now.
                        if let Some((var, _)) = info.len_for[slot as usize] {
                            let b = self.var_value(&inst, var);
                            pending.insert(var, b);
                        }
                        self.put_int(0, w);
                        header = 0;
                        continue;
                    }
                    if let Some((var, adjust)) = info.len_for[slot as usize] {
                        let b = self.var_value(&inst, var);
                        let len = (b.len() as i64 - adjust as i64).max(0) as u64;
                        pending.insert(var, b);
                        self.put_int(len, w);
                        inst.set(slot, kind, Val::Int(len));
                        continue;
                    }
                    let name = &*scope.fields[slot as usize].name;
                    if name == "blockLength"
                        && scope.fields[slot as usize].parent.is_none()
                        && blocks.is_empty()
                    {
                        plain_len = Some((self.out.len() - 4, slot));
                        self.put_int(0, w);
                        continue;
                    }
                    let v = self.value(&inst, slot);
                    self.write_fixed(&v, w);
                    inst.set(slot, kind, v);
                }
                Op::Var { slot, .. } => {
                    let b = pending.remove(&slot).unwrap_or_default();
                    self.out.extend_from_slice(&b);
                    inst.set(slot, scope.fields[slot as usize].kind, Val::Text(b));
                }
                Op::Discovery { base } => self.discovery(&mut inst, base),
                Op::BlockBegin { number, .. } => {
                    blocks.push((self.out.len(), number, None));
                    header = 2;
                }
                Op::BlockBound { len_slot } => {
                    if let Some(b) = blocks.last_mut() {
                        b.2 = Some(len_slot);
                    }
                }
                Op::BlockEnd => {
                    if let Some((start, _, len_slot)) = blocks.pop() {
                        let len = (self.out.len() - start) as u32;
                        self.patch_u32(start + 4, len);
                        if let Some(ls) = len_slot {
                            inst.set(ls, scope.fields[ls as usize].kind, Val::Int(len as u64));
                        }
                    }
                }
                Op::List {
                    slot,
                    item,
                    header: ih,
                    ..
                } => {
                    let must_have =
                        record_forced.is_some_and(|f| f.first_item.keys().any(|&(l, _)| l == slot));
                    let max = match depth {
                        0 => 3,
                        1 => 2,
                        _ => 1,
                    };
                    let mut count = self.rng.random_range(0..=max);
                    if must_have {
                        count = count.max(1);
                    }
                    let with_headers = match ih {
                        ItemHeader::InLayout => None,
                        ItemHeader::Detect(number) => Some((
                            number,
                            self.item_headers
                                .unwrap_or_else(|| self.rng.random_bool(0.5)),
                        )),
                    };
                    let start = self.out.len();
                    self.put_int(LIST_BLOCK_TYPE as u64, 4);
                    self.put_int(0, 4);
                    let first: Option<HashMap<u16, Val>> = record_forced.map(|f| {
                        f.first_item
                            .iter()
                            .filter(|((l, _), _)| *l == slot)
                            .map(|(&(_, s), v)| (s, v.clone()))
                            .collect()
                    });
                    let mut items = Vec::with_capacity(count);
                    for i in 0..count {
                        let item_start = self.out.len();
                        // A header the catalog does not describe: not part of the item's
                        // fields, so not part of its truth either.
                        let headed = matches!(with_headers, Some((_, true)));
                        if let Some((number, true)) = with_headers {
                            self.put_int(number as u64, 4);
                            self.put_int(0, 4);
                        }
                        let f = if i == 0 { first.as_ref() } else { None };
                        let (tv, _) = self.scope(item, f, None, depth + 1);
                        if headed {
                            let len = (self.out.len() - item_start) as u32;
                            self.patch_u32(item_start + 4, len);
                        }
                        let mut o = Map::new();
                        render(catalog().scope(item), &tv, None, &mut o);
                        items.push(o);
                    }
                    let len = (self.out.len() - start) as u32;
                    self.patch_u32(start + 4, len);
                    inst.tv[slot as usize] = Tv::List { len, items };
                }
            }
        }
        if let Some((at, slot)) = plain_len {
            let len = (self.out.len() - at) as u32;
            self.patch_u32(at + 4, len);
            inst.set(slot, scope.fields[slot as usize].kind, Val::Int(len as u64));
        }
        (inst.tv, inst.vals)
    }

    /// A forced value, or one the rules choose.
    fn value(&mut self, inst: &Inst, slot: u16) -> Val {
        if let Some(v) = inst.forced.and_then(|f| f.get(&slot)) {
            return v.clone();
        }
        let kind = inst.scope.fields[slot as usize].kind;
        let how = inst.info.gens[slot as usize];
        values::make(how, kind, self.ctx, self.rng, &|n| inst.sibling(n))
    }

    fn var_value(&mut self, inst: &Inst, slot: u16) -> Vec<u8> {
        match self.value(inst, slot) {
            Val::Text(b) | Val::Raw(b) => b,
            Val::Int(i) => i.to_string().into_bytes(),
        }
    }

    fn write_fixed(&mut self, v: &Val, w: usize) {
        match v {
            Val::Int(i) => self.put_int(*i, w),
            Val::Raw(b) | Val::Text(b) => {
                let mut b = b.clone();
                b.resize(w, 0);
                self.out.extend_from_slice(&b);
            }
        }
    }

    /// The discovery event header (reference 6.2): 40 bytes, plus the host's IPv6 address when
    /// hasIpv6 is 1; otherwise the host address is the legacy IPv4 field.
    fn discovery(&mut self, inst: &mut Inst, base: u16) {
        use discovery::*;
        use estreamer_cef::decode::Scalar;
        let s = |o: u16| base + o;
        let u32k = FieldKind::Scalar(Scalar::U32);
        let forced_int = |inst: &Inst, o: u16| match inst.forced.and_then(|f| f.get(&s(o))) {
            Some(Val::Int(v)) => Some(*v),
            _ => None,
        };
        let device = forced_int(inst, DEVICE_ID).unwrap_or(self.ctx.device as u64);
        let (etype, esub) = values::discovery_event(self.ctx.record_type);
        let etype = forced_int(inst, EVENT_TYPE).unwrap_or(etype);
        let esub = forced_int(inst, EVENT_SUBTYPE).unwrap_or(esub);
        let mac = values::mac(self.rng);
        let micro = self.rng.random_range(0..1_000_000u64);
        let file_number = self.rng.random_range(0..64u64);
        let file_position = self.rng.random_range(0..1_000_000u64);
        let (legacy, host): ([u8; 4], Vec<u8>) = if self.ipv6_header {
            let a = values::ip16(self.rng);
            let mapped = a[..10].iter().all(|&x| x == 0) && a[10] == 0xff && a[11] == 0xff;
            let legacy = if mapped {
                [a[12], a[13], a[14], a[15]]
            } else {
                [0; 4]
            };
            (legacy, a.to_vec())
        } else {
            let v4 = values::ipv4(self.rng);
            (v4, v4.to_vec())
        };
        self.put_int(device, 4);
        self.out.extend_from_slice(&legacy);
        self.out.extend_from_slice(&mac);
        self.out.push(self.ipv6_header as u8);
        self.out.push(0);
        self.put_int(self.ctx.second as u64, 4);
        self.put_int(micro, 4);
        self.put_int(etype, 4);
        self.put_int(esub, 4);
        self.put_int(file_number, 4);
        self.put_int(file_position, 4);
        if self.ipv6_header {
            self.out.extend_from_slice(&host);
        }
        let u8k = FieldKind::Scalar(Scalar::U8);
        inst.set(s(DEVICE_ID), u32k, Val::Int(device));
        inst.set(
            s(LEGACY_IP),
            FieldKind::Scalar(Scalar::Ipv4),
            Val::Raw(legacy.to_vec()),
        );
        inst.set(
            s(MAC),
            FieldKind::Scalar(Scalar::Mac),
            Val::Raw(mac.to_vec()),
        );
        inst.set(s(HAS_IPV6), u8k, Val::Int(self.ipv6_header as u64));
        inst.set(s(RESERVED), u8k, Val::Int(0));
        inst.set(s(EVENT_SECOND), u32k, Val::Int(self.ctx.second as u64));
        inst.set(s(EVENT_MICROSECOND), u32k, Val::Int(micro));
        inst.set(s(EVENT_TYPE), u32k, Val::Int(etype));
        inst.set(s(EVENT_SUBTYPE), u32k, Val::Int(esub));
        inst.set(s(FILE_NUMBER), u32k, Val::Int(file_number));
        inst.set(s(FILE_POSITION), u32k, Val::Int(file_position));
        inst.set(s(HOST_IP), FieldKind::Ip, Val::Raw(host));
    }
}

impl Inst<'_> {
    fn set(&mut self, slot: u16, kind: FieldKind, v: Val) {
        self.tv[slot as usize] = Tv::Val(values::truth(kind, &v));
        self.vals[slot as usize] = Some(v);
    }
}
