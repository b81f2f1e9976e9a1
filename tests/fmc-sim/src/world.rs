//! The metadata world behind a generated scenario: per map (`metadata/tables.toml`), the keys
//! that metadata records carry, and the planning that gives an event's ids values those maps
//! hold, making the metadata records on demand.
//!
//! Keys are kept in the cache's canonical form (`metadata/key.rs`), so that a u16 id in an event
//! matches the u32 id of its metadata record, and a hash in a text field matches a u256 field.

use std::collections::{HashMap, HashSet};

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::Value as Json;

use super::encode::{self, Encoded, Forced, Spec, scope_infos};
use super::generate::field_ref_path;
use super::values::{self, Ctx, Profile, Val};
use estreamer_cef::decode::schema::ScopeId;
use estreamer_cef::decode::{FieldKind, FieldRef, RecordSchema, Scalar, catalog};
use estreamer_cef::metadata::rules::{MapId, Resolver, Rules};

/// One part of a metadata key, in the cache's canonical form (`metadata/key.rs`): integers
/// whatever their width, 16-byte values (UUIDs, addresses) as bytes, wide integers and text as
/// lowercase text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum KeyPart {
    Int(u64),
    Raw(Vec<u8>),
    Str(Vec<u8>),
}

fn is_int(kind: FieldKind) -> bool {
    matches!(kind, FieldKind::Scalar(s) if s.is_integer())
}

fn key_part(kind: FieldKind, v: &Val) -> Option<KeyPart> {
    match (kind, v) {
        (FieldKind::Scalar(s), Val::Int(i)) if s.is_integer() => Some(KeyPart::Int(*i)),
        // 128-bit values key like the UUIDs their metadata carries.
        (FieldKind::Scalar(Scalar::U128), Val::Raw(b)) => Some(KeyPart::Raw(b.clone())),
        (FieldKind::Scalar(Scalar::U160 | Scalar::U256), Val::Raw(b)) => {
            Some(KeyPart::Str(values::hex(b).into_bytes()))
        }
        (FieldKind::Scalar(_) | FieldKind::Ip, Val::Raw(b)) => Some(KeyPart::Raw(b.clone())),
        (FieldKind::Text | FieldKind::Bytes, Val::Text(b)) => Some(KeyPart::Str(
            b.iter()
                .filter(|&&c| c != 0)
                .take(estreamer_cef::metadata::key::MAX_KEY)
                .map(|c| c.to_ascii_lowercase())
                .collect(),
        )),
        _ => None,
    }
}

/// The value a field of `kind` needs to produce the key part, if it can.
fn val_for(kind: FieldKind, part: &KeyPart) -> Option<Val> {
    let w = values::width(kind);
    match (kind, part) {
        (FieldKind::Scalar(s), KeyPart::Int(v)) if s.is_integer() => {
            (w >= 8 || *v < (1u64 << (8 * w))).then_some(Val::Int(*v))
        }
        (FieldKind::Scalar(Scalar::U160 | Scalar::U256), KeyPart::Str(s)) => {
            let b = unhex(s)?;
            (b.len() == w).then_some(Val::Raw(b))
        }
        (
            FieldKind::Scalar(
                Scalar::Ipv4 | Scalar::Ipv6 | Scalar::Mac | Scalar::Uuid | Scalar::U128,
            ),
            KeyPart::Raw(b),
        ) => (b.len() == w).then(|| Val::Raw(b.clone())),
        (FieldKind::Text | FieldKind::Bytes, KeyPart::Str(s)) => Some(Val::Text(s.clone())),
        _ => None,
    }
}

fn unhex(s: &[u8]) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    let d = |c: u8| (c as char).to_digit(16).map(|v| v as u8);
    s.chunks(2)
        .map(|p| Some(d(p[0])? << 4 | d(p[1])?))
        .collect()
}

/// Whether a key part is a "none" value (0, nil UUID): not a fresh id to create metadata for.
fn is_zero(p: &KeyPart) -> bool {
    match p {
        KeyPart::Int(v) => *v == 0,
        KeyPart::Raw(b) => b.iter().all(|&x| x == 0),
        KeyPart::Str(s) => s.is_empty() || s.iter().all(|&c| c == b'0'),
    }
}

#[derive(Default)]
struct Pool {
    entries: Vec<Vec<KeyPart>>,
    set: HashSet<Vec<KeyPart>>,
    /// Keys some generated metadata record carries (the rest are static table entries).
    sent: HashSet<Vec<KeyPart>>,
    /// Entries created because an event needed them.
    created: usize,
}

impl Pool {
    fn insert(&mut self, k: Vec<KeyPart>) {
        if self.set.insert(k.clone()) {
            self.entries.push(k);
        }
    }
}

/// A metadata record made for the scenario.
pub(super) struct MetaRecord {
    pub record_type: u32,
    pub body: Vec<u8>,
    pub truth: Json,
    pub unresolvable: Vec<(String, Vec<String>)>,
}

/// What planning decided for one record beyond the forced values.
#[derive(Default)]
pub(super) struct Plan {
    pub unknown: Vec<FieldRef>,
    pub unresolvable: Vec<(String, Vec<FieldRef>)>,
}

/// Metadata created on demand per map, at most.
const MAX_CREATED: usize = 48;
/// Metadata records that refer to metadata (145 → devices, ...) nest this deep at most.
const MAX_DEPTH: usize = 4;
/// Probability of reusing an existing entry rather than creating a new one.
const REUSE: f64 = 0.75;
/// Maps whose static entries only stand in for what a real FMC sends: IANA's cipher-suite
/// names (its 602 records name the suites it uses) and the all-zero SHA-256 of a file it did not
/// hash. The simulated FMC describes the ids it uses with metadata instead of picking from these,
/// as it did before they existed, so its scenarios (and the goldens made from them) stay the
/// same; an id it invents that has a static name gets its metadata, which overrides the name.
const NOT_REUSED: &[&str] = &["sslCipherSuites", "fileShas"];

pub(super) struct World {
    rules: &'static Rules,
    pools: Vec<Pool>,
    /// Record types whose ingest rules fill each map (none: a static table only).
    creators: Vec<Vec<u32>>,
    /// The metadata records made so far, in the order they were made.
    pub metadata: Vec<MetaRecord>,
    seq: HashMap<u32, u64>,
    base_second: u32,
    devices_map: Option<MapId>,
    /// How the names in metadata records look.
    pub(super) profile: Profile,
}

impl World {
    pub(super) fn new(rules: &'static Rules, base_second: u32) -> World {
        let cat = catalog();
        let n = rules.map_count();
        let mut pools: Vec<Pool> = (0..n).map(|_| Pool::default()).collect();
        for (map, key, _) in rules.statics() {
            if !NOT_REUSED.contains(&rules.map_name(*map)) {
                pools[*map as usize].insert(parse_key(key.as_bytes()));
            }
        }
        let mut creators: Vec<Vec<u32>> = vec![Vec::new(); n];
        for t in cat.record_types() {
            let Some(schema) = cat.record(t) else {
                continue;
            };
            for v in &schema.variants {
                for ci in &rules.for_scope(schema, cat.scope(v.scope)).ingest {
                    let c = &mut creators[ci.map as usize];
                    if !c.contains(&t) {
                        c.push(t);
                    }
                }
            }
        }
        World {
            rules,
            pools,
            creators,
            metadata: Vec::new(),
            seq: HashMap::new(),
            base_second,
            devices_map: rules.map_id("devices"),
            profile: Profile::default(),
        }
    }

    /// A managed device that has metadata (or 1 before any exists).
    pub(super) fn device(&self, rng: &mut StdRng) -> u32 {
        let ids: Vec<u32> = self
            .devices_map
            .map(|m| {
                self.pools[m as usize]
                    .entries
                    .iter()
                    .filter_map(|k| match k.as_slice() {
                        [KeyPart::Int(v)] if *v != 0 && *v <= u32::MAX as u64 => Some(*v as u32),
                        _ => None,
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.choose(rng).copied().unwrap_or(1)
    }

    fn next_seq(&mut self, record_type: u32) -> u64 {
        let s = self.seq.entry(record_type).or_insert(0);
        *s += 1;
        *s
    }

    fn meta_ctx(&mut self, record_type: u32, rng: &mut StdRng) -> Ctx {
        Ctx {
            record_type,
            metadata: true,
            second: self.base_second,
            device: self.device(rng),
            seq: self.next_seq(record_type),
            profile: self.profile,
        }
    }

    /// A metadata record of its own (not asked for by an event), with keys no other generated
    /// record has (static table entries may be overridden, as an FMC does).
    pub(super) fn seed_metadata(&mut self, schema: &'static RecordSchema, rng: &mut StdRng) {
        let cat = catalog();
        let scope_id = schema.variants[0].scope;
        let scope = cat.scope(scope_id);
        let compiled = self.rules.for_scope(schema, scope);
        for _ in 0..8 {
            let ctx = self.meta_ctx(schema.record_type, rng);
            let mut forced = Forced::default();
            let mut fresh = true;
            for ci in &compiled.ingest {
                let mut parts = Vec::new();
                for &r in &ci.key {
                    let kind = scope.ref_kind(cat, r);
                    let v = match forced.get(r) {
                        Some(v) => v.clone(),
                        None => {
                            let v = propose(scope_id, r, &ctx, rng);
                            forced.set(r, v.clone());
                            v
                        }
                    };
                    parts.extend(key_part(kind, &v));
                }
                if self.pools[ci.map as usize].sent.contains(&parts) || parts.iter().any(is_zero) {
                    fresh = false;
                }
            }
            if fresh {
                self.emit_metadata(schema, forced, ctx, rng, 0);
                return;
            }
        }
    }

    /// Makes a metadata record with the given forced fields (keys), names for every map it
    /// fills, and ids of its own that resolve; registers its keys.
    fn emit_metadata(
        &mut self,
        schema: &'static RecordSchema,
        mut forced: Forced,
        ctx: Ctx,
        rng: &mut StdRng,
        depth: usize,
    ) {
        let cat = catalog();
        let scope_id = schema.variants[0].scope;
        let scope = cat.scope(scope_id);
        let compiled = self.rules.for_scope(schema, scope);
        for ci in &compiled.ingest {
            let kind = scope.ref_kind(cat, ci.value);
            if forced.get(ci.value).is_some() || !matches!(kind, FieldKind::Text | FieldKind::Bytes)
            {
                continue;
            }
            let key = match ci.key.first().and_then(|&k| forced.get(k)) {
                Some(Val::Int(c)) => Some(*c),
                _ => None,
            };
            forced.set(
                ci.value,
                Val::Text(values::name(
                    self.rules.map_name(ci.map),
                    key,
                    rng,
                    self.profile,
                )),
            );
        }
        let plan = self.plan(schema, scope_id, &mut forced, &ctx, rng, depth, 0.0);
        let spec = Spec {
            schema,
            scope: scope_id,
            ipv6_header: true,
            item_headers: None,
            archive: None,
            ctx,
            forced: &forced,
        };
        let e: Encoded = encode::encode(&spec, rng);
        for ci in &compiled.ingest {
            let parts: Option<Vec<KeyPart>> = ci
                .key
                .iter()
                .map(|&r| match r {
                    FieldRef::Root(s) => e.root[s as usize]
                        .as_ref()
                        .and_then(|v| key_part(scope.ref_kind(cat, r), v)),
                    FieldRef::FirstItem { .. } => None,
                })
                .collect();
            if let Some(p) = parts {
                let pool = &mut self.pools[ci.map as usize];
                pool.sent.insert(p.clone());
                pool.insert(p);
            }
        }
        self.metadata.push(MetaRecord {
            record_type: schema.record_type,
            body: e.body,
            truth: e.truth,
            unresolvable: plan
                .unresolvable
                .iter()
                .map(|(n, fs)| {
                    (
                        n.clone(),
                        fs.iter().map(|&r| field_ref_path(scope, r)).collect(),
                    )
                })
                .collect(),
        });
    }

    /// Creates metadata that gives `map` the key `parts`. False when no record type that fills
    /// the map can carry the key.
    fn create(&mut self, map: MapId, parts: &[KeyPart], rng: &mut StdRng, depth: usize) -> bool {
        if depth >= MAX_DEPTH {
            return false;
        }
        let cat = catalog();
        for rt in self.creators[map as usize].clone() {
            let Some(schema) = cat.record(rt) else {
                continue;
            };
            let scope = cat.scope(schema.variants[0].scope);
            let compiled = self.rules.for_scope(schema, scope);
            let Some(ci) = compiled.ingest.iter().find(|ci| ci.map == map) else {
                continue;
            };
            let mut forced = Forced::default();
            let ok =
                ci.key
                    .iter()
                    .zip(parts)
                    .all(|(&r, p)| match val_for(scope.ref_kind(cat, r), p) {
                        Some(v) => {
                            forced.set(r, v);
                            true
                        }
                        None => false,
                    });
            if !ok {
                continue;
            }
            let ctx = self.meta_ctx(rt, rng);
            self.emit_metadata(schema, forced, ctx, rng, depth + 1);
            self.pools[map as usize].created += 1;
            return self.pools[map as usize].set.contains(parts);
        }
        false
    }

    /// Chooses the ids of a record so that its metadata lookups resolve: static tables first
    /// (they cannot grow), then maps filled by metadata records (created when needed).
    #[allow(clippy::too_many_arguments)]
    pub(super) fn plan(
        &mut self,
        schema: &'static RecordSchema,
        scope_id: ScopeId,
        forced: &mut Forced,
        ctx: &Ctx,
        rng: &mut StdRng,
        depth: usize,
        unknown_rate: f64,
    ) -> Plan {
        let cat = catalog();
        let scope = cat.scope(scope_id);
        let compiled = self.rules.for_scope(schema, scope);
        let mut plan = Plan::default();
        let mut done = vec![false; compiled.resolve.len()];
        for static_pass in [true, false] {
            for (i, cr) in compiled.resolve.iter().enumerate() {
                if done[i] {
                    continue;
                }
                for r in &cr.resolvers {
                    let Resolver::Lookup {
                        map,
                        key,
                        when_zero,
                        ..
                    } = r
                    else {
                        continue;
                    };
                    if self.creators[*map as usize].is_empty() != static_pass {
                        continue;
                    }
                    let b = Binding {
                        scope_id,
                        map: *map,
                        keys: key,
                        when_zero: when_zero.is_some(),
                    };
                    if self.bind(&b, forced, &mut plan.unknown, ctx, rng, depth, unknown_rate) {
                        done[i] = true;
                        break;
                    }
                }
            }
        }
        for (i, cr) in compiled.resolve.iter().enumerate() {
            if done[i] {
                continue;
            }
            let keys: Vec<FieldRef> = cr
                .resolvers
                .iter()
                .filter_map(|r| match r {
                    Resolver::Lookup { key, .. } => Some(key.iter().copied()),
                    _ => None,
                })
                .flatten()
                .collect();
            if keys.is_empty() || keys.iter().any(|k| plan.unknown.contains(k)) {
                continue;
            }
            plan.unresolvable
                .push((self.rules.name(cr.name).to_string(), keys));
        }
        plan
    }

    /// Gives the key fields of one lookup values that the map holds (or will hold). Returns
    /// whether the lookup will find a name.
    #[allow(clippy::too_many_arguments)]
    fn bind(
        &mut self,
        b: &Binding,
        forced: &mut Forced,
        unknown: &mut Vec<FieldRef>,
        ctx: &Ctx,
        rng: &mut StdRng,
        depth: usize,
        unknown_rate: f64,
    ) -> bool {
        let cat = catalog();
        let scope = cat.scope(b.scope_id);
        if b.keys.iter().any(|k| unknown.contains(k)) {
            return false;
        }
        let kinds: Vec<FieldKind> = b.keys.iter().map(|&k| scope.ref_kind(cat, k)).collect();
        let assigned: Vec<Option<KeyPart>> = b
            .keys
            .iter()
            .zip(&kinds)
            .map(|(&k, &kind)| forced.get(k).and_then(|v| key_part(kind, v)))
            .collect();
        let open: Vec<usize> = (0..b.keys.len())
            .filter(|&i| assigned[i].is_none())
            .collect();
        let map = b.map as usize;
        let dynamic = !self.creators[map].is_empty();
        if open.is_empty() {
            let parts: Vec<KeyPart> = assigned.into_iter().flatten().collect();
            if self.pools[map].set.contains(&parts)
                || (b.when_zero && parts.contains(&KeyPart::Int(0)))
            {
                return true;
            }
            return dynamic && !parts.iter().any(is_zero) && self.create(b.map, &parts, rng, depth);
        }
        let assign = |forced: &mut Forced, parts: &[KeyPart]| {
            for &i in &open {
                if let Some(v) = val_for(kinds[i], &parts[i]) {
                    forced.set(b.keys[i], v);
                }
            }
        };
        // Unused rule slots (monitor rules) are 0 more often than not.
        if b.when_zero
            && rng.random_bool(0.6)
            && let Some(&i) = open.iter().find(|&&i| is_int(kinds[i]))
        {
            forced.set(b.keys[i], Val::Int(0));
            return true;
        }
        if dynamic && unknown_rate > 0.0 && rng.random_bool(unknown_rate) {
            let mut made = false;
            for &i in &open {
                if let Some(v) = self.unknown_value(map, kinds[i], rng) {
                    forced.set(b.keys[i], v);
                    unknown.push(b.keys[i]);
                    made = true;
                }
            }
            if made {
                return false;
            }
        }
        let consistent = |e: &Vec<KeyPart>| {
            e.len() == assigned.len()
                && assigned
                    .iter()
                    .zip(e)
                    .all(|(a, p)| a.as_ref().is_none_or(|a| a == p))
                && open.iter().all(|&i| val_for(kinds[i], &e[i]).is_some())
        };
        for attempt in 0..4 {
            let proposal: Option<Vec<KeyPart>> = (0..b.keys.len())
                .map(|i| match &assigned[i] {
                    Some(p) => Some(p.clone()),
                    None => key_part(kinds[i], &propose(b.scope_id, b.keys[i], ctx, rng)),
                })
                .collect();
            let Some(proposal) = proposal else { break };
            if self.pools[map].set.contains(&proposal) {
                assign(forced, &proposal);
                return true;
            }
            let candidates: Vec<usize> = (0..self.pools[map].entries.len())
                .filter(|&j| consistent(&self.pools[map].entries[j]))
                .collect();
            let full = self.pools[map].created >= MAX_CREATED;
            if !candidates.is_empty()
                && (!dynamic || full || (attempt == 0 && rng.random_bool(REUSE)))
            {
                let j = *candidates.choose(rng).expect("not empty");
                let parts = self.pools[map].entries[j].clone();
                assign(forced, &parts);
                return true;
            }
            if !dynamic || full {
                return false;
            }
            if proposal.iter().any(is_zero) {
                continue;
            }
            if self.create(b.map, &proposal, rng, depth) {
                assign(forced, &proposal);
                return true;
            }
            break;
        }
        // Creation impossible: an existing entry still resolves.
        let candidates: Vec<usize> = (0..self.pools[map].entries.len())
            .filter(|&j| consistent(&self.pools[map].entries[j]))
            .collect();
        match candidates.choose(rng) {
            Some(&j) => {
                let parts = self.pools[map].entries[j].clone();
                assign(forced, &parts);
                true
            }
            None => false,
        }
    }

    /// A value for a key field that no entry of the map has.
    fn unknown_value(&self, map: usize, kind: FieldKind, rng: &mut StdRng) -> Option<Val> {
        let used = |p: &KeyPart| self.pools[map].entries.iter().any(|e| e.contains(p));
        for _ in 0..8 {
            let v = match kind {
                FieldKind::Scalar(Scalar::U32 | Scalar::U64) => {
                    Val::Int(rng.random_range(900_000..1_000_000))
                }
                FieldKind::Scalar(Scalar::U16) => Val::Int(rng.random_range(60_000..65_000)),
                FieldKind::Scalar(Scalar::Uuid) => Val::Raw(values::uuid_nonnil(rng).to_vec()),
                FieldKind::Scalar(s @ (Scalar::U128 | Scalar::U160 | Scalar::U256)) => {
                    let mut b = vec![0u8; s.width()];
                    rng.fill(&mut b[..]);
                    b[0] |= 1;
                    Val::Raw(b)
                }
                _ => return None,
            };
            if !key_part(kind, &v).is_some_and(|p| used(&p)) {
                return Some(v);
            }
        }
        None
    }
}

/// One metadata lookup to satisfy.
struct Binding<'k> {
    scope_id: ScopeId,
    map: MapId,
    keys: &'k [FieldRef],
    when_zero: bool,
}

/// The value the rules would choose for a field (what a lookup is offered first).
fn propose(scope_id: ScopeId, r: FieldRef, ctx: &Ctx, rng: &mut StdRng) -> Val {
    let (sid, slot) = match r {
        FieldRef::Root(s) => (scope_id, s),
        FieldRef::FirstItem {
            item_scope, slot, ..
        } => (item_scope, slot),
    };
    let kind = catalog().scope(sid).fields[slot as usize].kind;
    let how = scope_infos()[sid as usize].gens[slot as usize];
    values::make(how, kind, ctx, rng, &|_| None)
}

/// Static table keys as parts: 8-byte parts are integers, 16-byte parts UUIDs.
fn parse_key(mut b: &[u8]) -> Vec<KeyPart> {
    let mut parts = Vec::new();
    while let Some((&n, rest)) = b.split_first() {
        let n = (n as usize).min(rest.len());
        let (p, rest) = rest.split_at(n);
        parts.push(match n {
            8 => KeyPart::Int(u64::from_be_bytes(p.try_into().unwrap_or([0; 8]))),
            16 => KeyPart::Raw(p.to_vec()),
            _ => KeyPart::Str(p.to_vec()),
        });
        b = rest;
    }
    parts
}
