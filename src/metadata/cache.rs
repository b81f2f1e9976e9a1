//! The metadata cache: maps of ids → names filled from metadata records, seeded with the static
//! tables, and the resolution of an event's ids through them.
//!
//! Memory is bounded: at most `max_entries` entries and `max_text_bytes` bytes of names (each
//! name cut to `max_value_len` bytes). Past either limit the oldest entries are evicted first
//! (FIFO over all maps) and counted; static entries are never evicted.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde_json::{Map, Value as Json};

use super::key::{Key, Short, compact_of};
use super::rules::{CompiledResolve, Function, MapId, Resolver, Rules, ScopeRules, rules};
use crate::decode::{FieldRef, Record, Value};

/// Bounds of the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub max_entries: usize,
    pub max_text_bytes: usize,
    pub max_value_len: usize,
}

impl Default for Limits {
    /// 200,000 entries and 32 MiB of names: about 60 MiB at most with keys and hash tables.
    fn default() -> Self {
        Limits {
            max_entries: 200_000,
            max_text_bytes: 32 * 1024 * 1024,
            max_value_len: 1024,
        }
    }
}

/// The outcome of resolving one name for one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Resolved<'c> {
    Name(&'c str),
    /// A stored name that CEF carries as it is ([`crate::cef::is_plain`], checked when stored).
    Plain(&'c str),
    Int(u64),
    Text(String),
    /// No metadata for this key: the id itself, as text.
    Missing(String),
    /// The record has no value for the key field.
    Absent,
}

impl Resolved<'_> {
    /// The text a consumer shows: the name, or the id when metadata is missing.
    pub fn text(&self) -> Option<std::borrow::Cow<'_, str>> {
        use std::borrow::Cow;
        match self {
            Resolved::Name(s) | Resolved::Plain(s) => Some(Cow::Borrowed(s)),
            Resolved::Int(v) => Some(Cow::Owned(v.to_string())),
            Resolved::Text(s) | Resolved::Missing(s) => Some(Cow::Borrowed(s)),
            Resolved::Absent => None,
        }
    }

    pub fn is_missing(&self) -> bool {
        matches!(self, Resolved::Missing(_))
    }
}

/// A name, and whether it is one of the static defaults (never evicted, never saved).
struct Entry {
    value: Box<str>,
    is_static: bool,
    /// The CEF encoder may copy it as it is (most names): checked once, here.
    plain: bool,
}

impl Entry {
    fn new(value: Box<str>, is_static: bool) -> Entry {
        let plain = crate::cef::is_plain(&value);
        Entry {
            value,
            is_static,
            plain,
        }
    }

    fn resolved(&self) -> Resolved<'_> {
        if self.plain {
            Resolved::Plain(&self.value)
        } else {
            Resolved::Name(&self.value)
        }
    }
}

#[derive(Default)]
struct MapData {
    /// Static defaults and learned entries in one table (one hash per lookup): key → slot in
    /// `Cache::slab`. Keys that are one integer (sensor, application, user, protocol ids) or
    /// one 16-byte value (policy, zone, interface UUIDs) -- most lookups -- live in `ints` and
    /// `wides` instead, where a lookup hashes one number rather than a 72-byte key.
    index: FxHashMap<Key, u32>,
    ints: FxHashMap<u64, u32>,
    wides: FxHashMap<u128, u32>,
    /// Other keys of at most 32 bytes: (policy UUID, rule id) pairs, addresses.
    compact: FxHashMap<[u64; 4], u32>,
}

impl MapData {
    fn slot(&self, key: &Key) -> Option<u32> {
        match key.short() {
            Some(Short::Int(i)) => self.ints.get(&i).copied(),
            Some(Short::Wide(w)) => self.wides.get(&w).copied(),
            Some(Short::Compact(c)) => self.compact.get(&c).copied(),
            None => self.index.get(key).copied(),
        }
    }

    fn set(&mut self, key: Key, slot: u32) {
        match key.short() {
            Some(Short::Int(i)) => self.ints.insert(i, slot),
            Some(Short::Wide(w)) => self.wides.insert(w, slot),
            Some(Short::Compact(c)) => self.compact.insert(c, slot),
            None => self.index.insert(key, slot),
        };
    }

    fn remove(&mut self, key: &Key) -> Option<u32> {
        match key.short() {
            Some(Short::Int(i)) => self.ints.remove(&i),
            Some(Short::Wide(w)) => self.wides.remove(&w),
            Some(Short::Compact(c)) => self.compact.remove(&c),
            None => self.index.remove(key),
        }
    }

    /// The slot of a one-part key given as its field value, without building the key; `None`
    /// when the value is not one of the short forms (then the caller builds the key).
    #[inline]
    fn short_slot(&self, v: &Value) -> Option<Option<u32>> {
        Some(match *v {
            Value::Int(i) => self.ints.get(&i).copied(),
            // The bytes `Key::push_value` stores for these (text is lowercased: not here).
            Value::Uuid(b) | Value::Ip(b) | Value::Hex(b) if b.len() == 16 => self
                .wides
                .get(&u128::from_be_bytes(b.try_into().ok()?))
                .copied(),
            _ => return None,
        })
    }
}

/// Remembers the last lookup of one resolver: consecutive events mostly name the same sensor,
/// policy, rule, zones... A hit costs a key comparison instead of a hash-table probe. Valid while
/// the cache has not changed (`generation`).
#[derive(Clone, Debug, Default)]
pub struct Memo {
    generation: u64,
    map: MapId,
    key: Key,
    slot: u32,
}

pub struct Cache {
    rules: &'static Rules,
    maps: Vec<MapData>,
    /// Every entry of every map; freed slots are reused.
    slab: Vec<Entry>,
    free: Vec<u32>,
    /// Changes whenever an entry is added, replaced or evicted (memos compare it).
    generation: u64,
    /// Learned entries, oldest first (the eviction order).
    order: VecDeque<(MapId, Key)>,
    text_bytes: usize,
    limits: Limits,
    dirty: bool,
    evicted: u64,
}

/// Counters for the monitor.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CacheStats {
    pub entries: usize,
    pub text_bytes: usize,
    pub evicted: u64,
}

impl Cache {
    pub fn new(limits: Limits) -> Cache {
        let rules = rules();
        let n = rules.map_count();
        let mut maps: Vec<MapData> = (0..n).map(|_| MapData::default()).collect();
        let mut slab = Vec::new();
        for (map, key, value) in rules.statics() {
            maps[*map as usize].set(*key, slab.len() as u32);
            slab.push(Entry::new(value.clone(), true));
        }
        Cache {
            rules,
            maps,
            slab,
            free: Vec::new(),
            generation: 1,
            order: VecDeque::new(),
            text_bytes: 0,
            limits,
            dirty: false,
            evicted: 0,
        }
    }

    pub fn rules(&self) -> &'static Rules {
        self.rules
    }

    pub fn stats(&self) -> CacheStats {
        CacheStats {
            entries: self.order.len(),
            text_bytes: self.text_bytes,
            evicted: self.evicted,
        }
    }

    /// Whether entries changed since the last `take_dirty`.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::replace(&mut self.dirty, false)
    }

    pub fn get(&self, map: MapId, key: &Key) -> Option<&str> {
        Some(&self.entry(map, key)?.value)
    }

    fn entry(&self, map: MapId, key: &Key) -> Option<&Entry> {
        let slot = self.maps[map as usize].slot(key)?;
        Some(&self.slab[slot as usize])
    }

    /// Like [`entry`](Self::entry), through a memo of the previous lookup.
    fn entry_memo(&self, map: MapId, key: &Key, memo: &mut Memo) -> Option<&Entry> {
        if memo.generation == self.generation && memo.map == map && memo.key == *key {
            return Some(&self.slab[memo.slot as usize]);
        }
        let slot = self.maps[map as usize].slot(key)?;
        *memo = Memo {
            generation: self.generation,
            map,
            key: *key,
            slot,
        };
        Some(&self.slab[slot as usize])
    }

    fn alloc(&mut self, e: Entry) -> u32 {
        match self.free.pop() {
            Some(i) => {
                self.slab[i as usize] = e;
                i
            }
            None => {
                self.slab.push(e);
                (self.slab.len() - 1) as u32
            }
        }
    }

    /// Inserts or replaces an entry. Returns whether anything changed.
    pub fn insert(&mut self, map: MapId, key: Key, value: &str) -> bool {
        let value = cut(value, self.limits.max_value_len);
        match self.maps[map as usize].slot(&key) {
            Some(slot) => {
                let e = &mut self.slab[slot as usize];
                if !e.is_static && &*e.value == value {
                    return false;
                }
                if e.is_static {
                    // A metadata record overrides a static default: it becomes a learned entry.
                    self.text_bytes += value.len();
                    self.order.push_back((map, key));
                } else {
                    self.text_bytes = self.text_bytes - e.value.len() + value.len();
                }
                *e = Entry::new(value.into(), false);
            }
            None => {
                let slot = self.alloc(Entry::new(value.into(), false));
                self.maps[map as usize].set(key, slot);
                self.text_bytes += value.len();
                self.order.push_back((map, key));
            }
        }
        self.dirty = true;
        self.generation += 1;
        while self.order.len() > self.limits.max_entries
            || self.text_bytes > self.limits.max_text_bytes
        {
            let Some((map, key)) = self.order.pop_front() else {
                break;
            };
            let Some(slot) = self.maps[map as usize].remove(&key) else {
                continue;
            };
            let old = std::mem::replace(
                &mut self.slab[slot as usize],
                Entry::new(Box::from(""), false),
            );
            self.free.push(slot);
            self.text_bytes -= old.value.len();
            self.evicted += 1;
            // A static default that had been overridden comes back.
            if let Some(d) = self.rules.static_default(map, &key) {
                let slot = self.alloc(Entry::new(Box::from(d), true));
                self.maps[map as usize].set(key, slot);
            }
        }
        true
    }

    /// Feeds a metadata record to the maps it fills. Returns the number of entries written.
    pub fn ingest(&mut self, rec: &Record) -> usize {
        let (Some(schema), Some(scope)) = (rec.schema, rec.scope) else {
            return 0;
        };
        let compiled = self.rules.for_scope(schema, scope);
        let mut n = 0;
        let mut text = String::new();
        for i in &compiled.ingest {
            let Some(key) = build_key(rec, &i.key) else {
                continue;
            };
            let Some(v) = rec.get_ref(i.value) else {
                continue;
            };
            text.clear();
            v.write_text(&mut text);
            if self.insert(i.map, key, &text) {
                n += 1;
            }
        }
        n
    }

    /// The name a one-field lookup in `map` finds for a field value, when the value has one of
    /// the short key forms (an integer, a UUID) and the name is there; `None` otherwise, and
    /// then [`resolve`](Self::resolve) decides (fallbacks, `when_zero`, a missing name).
    #[inline]
    pub fn find_short(&self, map: MapId, v: &Value) -> Option<Resolved<'_>> {
        let slot = self.maps.get(map as usize)?.short_slot(v)??;
        Some(self.slab[slot as usize].resolved())
    }

    /// Like [`find_short`](Self::find_short) for a key of several fields, given their values.
    #[inline]
    pub fn find_compact(&self, map: MapId, values: &[Value]) -> Option<Resolved<'_>> {
        let key = compact_of(values)?;
        let slot = *self.maps.get(map as usize)?.compact.get(&key)?;
        Some(self.slab[slot as usize].resolved())
    }

    /// Resolves one compiled name for a record.
    pub fn resolve<'c>(&'c self, rec: &Record<'_>, r: &'c CompiledResolve) -> Resolved<'c> {
        self.resolve_memo(rec, r, &mut Memo::default())
    }

    /// [`resolve`](Self::resolve) through a memo of this name's previous lookup (the mapping keeps
    /// one per `@name` of a table).
    pub fn resolve_memo<'c>(
        &'c self,
        rec: &Record<'_>,
        r: &'c CompiledResolve,
        memo: &mut Memo,
    ) -> Resolved<'c> {
        // The id text of a miss is made only if no later resolver finds a name.
        let mut first_missing: Option<&Resolver> = None;
        for (i, resolver) in r.resolvers.iter().enumerate() {
            let run = if i == 0 {
                self.run(rec, resolver, Some(&mut *memo))
            } else {
                self.run(rec, resolver, None)
            };
            match run {
                Resolved::Absent => {}
                Resolved::Missing(_) => {
                    first_missing.get_or_insert(resolver);
                }
                found => return found,
            }
        }
        match first_missing {
            Some(Resolver::Lookup {
                missing_id: Some(id),
                ..
            }) => Resolved::Missing(missing_text(rec, std::slice::from_ref(id))),
            Some(Resolver::Lookup { key, .. }) => Resolved::Missing(missing_text(rec, key)),
            Some(Resolver::EventTime { .. } | Resolver::Flags { .. }) => Resolved::Absent,
            Some(Resolver::Function { .. }) => match rec.header.netmap_id {
                Some(id) => Resolved::Missing(id.to_string()),
                None => Resolved::Absent,
            },
            None => Resolved::Absent,
        }
    }

    #[inline]
    fn run<'c>(
        &'c self,
        rec: &Record<'_>,
        resolver: &'c Resolver,
        memo: Option<&mut Memo>,
    ) -> Resolved<'c> {
        match resolver {
            Resolver::Lookup {
                map,
                key,
                when_zero,
                only_if,
                ..
            } => {
                if !applies(rec, only_if) {
                    return Resolved::Absent;
                }
                // Most keys are one integer or UUID: looked up as a number, without building a key.
                let short = match key[..] {
                    [f] => match rec.get_ref(f) {
                        Some(v) => self.maps[*map as usize].short_slot(&v),
                        None => return Resolved::Absent,
                    },
                    _ => None,
                };
                let found = match short {
                    Some(slot) => slot.map(|s| &self.slab[s as usize]),
                    None => {
                        let mut k = Key::new();
                        if !fill_key(rec, key, &mut k) {
                            return Resolved::Absent;
                        }
                        match memo {
                            Some(m) => self.entry_memo(*map, &k, m),
                            None => self.entry(*map, &k),
                        }
                    }
                };
                match found {
                    Some(entry) => entry.resolved(),
                    None => self.not_found(rec, key, when_zero),
                }
            }
            Resolver::Function {
                function,
                field,
                only_if,
            } => self.function(rec, *function, *field, only_if),
            Resolver::Flags {
                table,
                field,
                only_if,
            } => {
                if !applies(rec, only_if) {
                    return Resolved::Absent;
                }
                let bits = rec.get_ref(*field).and_then(|v| v.as_int());
                match bits.and_then(|v| self.rules.flag_table(*table).names(v)) {
                    Some(names) => Resolved::Text(names),
                    None => Resolved::Absent,
                }
            }
            Resolver::EventTime { part, fields } => {
                let Some(t) = super::event_time::event_time(rec, fields) else {
                    return Resolved::Absent;
                };
                match part {
                    Function::EventSecond => Resolved::Int(t.second),
                    Function::EventMicrosecond => Resolved::Int(t.microsecond as u64),
                    Function::EventDateTime => t.iso().map_or(Resolved::Absent, Resolved::Text),
                    _ => Resolved::Name(t.source),
                }
            }
        }
    }

    /// A lookup that found nothing: the `when_zero` name, or a miss.
    #[cold]
    fn not_found<'c>(
        &self,
        rec: &Record<'_>,
        key: &[FieldRef],
        when_zero: &'c Option<Box<str>>,
    ) -> Resolved<'c> {
        match when_zero {
            Some(z) if key.iter().any(|&f| rec.get_ref(f) == Some(Value::Int(0))) => {
                Resolved::Name(z)
            }
            // The id text is made by `resolve`, only when it is needed.
            _ => Resolved::Missing(String::new()),
        }
    }

    /// The resolvers that compute a name rather than look it up (kept out of the lookups' way).
    #[inline(never)]
    fn function<'c>(
        &'c self,
        rec: &Record<'_>,
        function: Function,
        field: Option<FieldRef>,
        only_if: &Option<(FieldRef, Vec<u64>)>,
    ) -> Resolved<'c> {
        if !applies(rec, only_if) {
            return Resolved::Absent;
        }
        let v = field.and_then(|s| rec.get_ref(s));
        match function {
            Function::ImpactLevel => match v.and_then(|v| v.as_int()) {
                Some(flags) => Resolved::Int(impact_level(flags)),
                None => Resolved::Absent,
            },
            Function::YesNo => match v.and_then(|v| v.as_int()) {
                Some(0) => Resolved::Name("No"),
                Some(_) => Resolved::Name("Yes"),
                None => Resolved::Absent,
            },
            Function::RecordName => match rec.schema {
                Some(s) => Resolved::Name(&s.name),
                None => Resolved::Absent,
            },
            Function::RecordCategory => match rec.schema {
                Some(s) => Resolved::Name(&s.label),
                None => Resolved::Absent,
            },
            Function::BlobAddress | Function::Address => match v {
                Some(Value::Bytes(b) | Value::Text(b) | Value::Hex(b) | Value::Ip(b))
                    if b.len() == 4 || b.len() == 16 =>
                {
                    let mut s = String::new();
                    crate::decode::value::write_ip(&mut s, b);
                    Resolved::Text(s)
                }
                _ => Resolved::Absent,
            },
            Function::BlobText => match v {
                Some(Value::Bytes(b) | Value::Text(b)) => {
                    Resolved::Text(String::from_utf8_lossy(b).into_owned())
                }
                _ => Resolved::Absent,
            },
            Function::Hex => match v {
                Some(Value::Bytes(b) | Value::Text(b) | Value::Hex(b) | Value::Ip(b)) => {
                    let mut s = String::with_capacity(b.len() * 2);
                    crate::decode::value::write_hex(&mut s, b);
                    Resolved::Text(s)
                }
                _ => Resolved::Absent,
            },
            Function::Value => match v {
                Some(Value::Int(i)) => Resolved::Int(i),
                Some(v) => Resolved::Text(v.to_text()),
                None => Resolved::Absent,
            },
            // Compiled into `Resolver::EventTime`, never run here.
            Function::EventSecond
            | Function::EventMicrosecond
            | Function::EventDateTime
            | Function::EventTimeSource => Resolved::Absent,
            Function::NetmapDomain => match rec.header.netmap_id {
                Some(id) => {
                    let map = self.rules.map_id("netmapDomains").unwrap_or(0);
                    let mut k = Key::new();
                    k.push_int(id as u64);
                    match self.get(map, &k) {
                        Some(n) => Resolved::Name(n),
                        None => Resolved::Missing(String::new()),
                    }
                }
                None => Resolved::Absent,
            },
        }
    }

    /// Every name the rules define for this record, for `decode`'s "@computed".
    pub fn resolve_all(&self, rec: &Record<'_>) -> Map<String, Json> {
        let mut out = Map::new();
        let (Some(schema), Some(scope)) = (rec.schema, rec.scope) else {
            return out;
        };
        let compiled: std::sync::Arc<ScopeRules> = self.rules.for_scope(schema, scope);
        for r in &compiled.resolve {
            let v = match self.resolve(rec, r) {
                Resolved::Absent => continue,
                Resolved::Int(i) => Json::from(i),
                other => Json::String(other.text().unwrap_or_default().into_owned()),
            };
            out.insert(self.rules.name(r.name).to_string(), v);
        }
        out
    }

    /// Every dynamic entry, for persistence: (map name, key bytes, value).
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Key, &str)> {
        self.order.iter().filter_map(move |(map, key)| {
            let slot = self.maps[*map as usize].slot(key)?;
            Some((
                self.rules.map_name(*map),
                key,
                &*self.slab[slot as usize].value,
            ))
        })
    }
}

/// Whether a resolver's `only_if` condition holds for the record.
#[inline]
fn applies(rec: &Record, only_if: &Option<(FieldRef, Vec<u64>)>) -> bool {
    match only_if {
        None => true,
        Some((f, values)) => rec
            .get_ref(*f)
            .and_then(|v| v.as_int())
            .is_some_and(|v| values.contains(&v)),
    }
}

/// Fills `k` in place (keys are large; building them where they are used avoids copies).
#[inline]
fn fill_key(rec: &Record, fields: &[FieldRef], k: &mut Key) -> bool {
    for &f in fields {
        match rec.get_ref(f) {
            Some(v) => k.push_value(&v),
            None => return false,
        }
    }
    true
}

fn build_key(rec: &Record, fields: &[FieldRef]) -> Option<Key> {
    let mut k = Key::new();
    fill_key(rec, fields, &mut k).then_some(k)
}

/// The id(s) as users read them, for a missing name.
fn missing_text(rec: &Record, fields: &[FieldRef]) -> String {
    let mut out = String::new();
    for (i, &f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        if let Some(v) = rec.get_ref(f) {
            v.write_text(&mut out);
        }
    }
    out
}

/// eNcore's impact level from the 8-bit impact flags (reference 6.7).
pub fn impact_level(flags: u64) -> u64 {
    if flags & 0xD8 != 0 {
        1
    } else if flags & 0x06 == 0x06 {
        2
    } else if flags & 0x02 != 0 {
        3
    } else if flags & 0x01 != 0 {
        4
    } else {
        0
    }
}

fn cut(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn impact_levels_follow_the_reference_order() {
        assert_eq!(impact_level(0x08), 1);
        assert_eq!(impact_level(0x80 | 0x01), 1);
        assert_eq!(impact_level(0x06), 2);
        assert_eq!(impact_level(0x02), 3);
        assert_eq!(impact_level(0x01), 4);
        assert_eq!(impact_level(0x20), 0);
    }

    #[test]
    fn eviction_keeps_the_cache_within_its_limits() {
        let mut c = Cache::new(Limits {
            max_entries: 3,
            max_text_bytes: 1000,
            max_value_len: 8,
        });
        let devices = c.rules().map_id("devices").unwrap();
        for i in 1..=5u64 {
            let mut k = Key::new();
            k.push_int(i);
            c.insert(devices, k, &format!("sensor-{i}-long-name"));
        }
        assert_eq!(c.stats().entries, 3);
        assert_eq!(c.stats().evicted, 2);
        let mut k = Key::new();
        k.push_int(5);
        assert_eq!(c.get(devices, &k), Some("sensor-5"));
        k = Key::new();
        k.push_int(1);
        assert_eq!(c.get(devices, &k), None);
        // Static entries stay.
        k = Key::new();
        k.push_int(0);
        assert_eq!(c.get(devices, &k), Some("Defense Center"));
    }

    #[test]
    fn metadata_overrides_a_static_name_which_comes_back_when_evicted() {
        let mut c = Cache::new(Limits {
            max_entries: 1,
            max_text_bytes: 1000,
            max_value_len: 64,
        });
        let suites = c.rules().map_id("sslCipherSuites").unwrap();
        let mut k = Key::new();
        k.push_int(0xC02F);
        assert_eq!(
            c.get(suites, &k),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
        c.insert(suites, k, "ECDHE-RSA-AES128-GCM-SHA256");
        assert_eq!(c.get(suites, &k), Some("ECDHE-RSA-AES128-GCM-SHA256"));
        let mut other = Key::new();
        other.push_int(0x1301);
        c.insert(suites, other, "TLS13-AES128");
        assert_eq!(c.stats().evicted, 1);
        assert_eq!(
            c.get(suites, &k),
            Some("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
        );
    }

    #[test]
    fn one_part_keys_find_the_same_entries_by_value_and_by_key() {
        let mut c = Cache::new(Limits::default());
        let devices = c.rules().map_id("devices").unwrap();
        let uuid = [7u8; 16];
        let mut by_uuid = Key::new();
        by_uuid.push_value(&Value::Uuid(&uuid));
        let mut by_int = Key::new();
        by_int.push_value(&Value::Int(42));
        let mut two_parts = Key::new();
        two_parts.push_value(&Value::Uuid(&uuid));
        two_parts.push_int(42);
        assert_eq!(
            by_uuid.short(),
            Some(Short::Wide(u128::from_be_bytes(uuid)))
        );
        assert_eq!(by_int.short(), Some(Short::Int(42)));
        assert!(matches!(two_parts.short(), Some(Short::Compact(_))));
        let mut too_long = Key::new();
        too_long.push_value(&Value::Uuid(&uuid));
        too_long.push_value(&Value::Uuid(&uuid));
        assert_eq!(too_long.short(), None);
        c.insert(devices, too_long, "two zones");
        assert_eq!(c.get(devices, &too_long), Some("two zones"));
        c.insert(devices, by_uuid, "zone=inside");
        c.insert(devices, by_int, "sensor-42");
        c.insert(devices, two_parts, "rule 42");
        assert_eq!(c.get(devices, &by_uuid), Some("zone=inside"));
        assert_eq!(c.get(devices, &by_int), Some("sensor-42"));
        assert_eq!(c.get(devices, &two_parts), Some("rule 42"));
        // The lookup from a field value lands on the entry the built key does.
        let map = &c.maps[devices as usize];
        assert_eq!(
            map.short_slot(&Value::Uuid(&uuid)),
            Some(map.slot(&by_uuid))
        );
        assert_eq!(map.short_slot(&Value::Hex(&uuid)), Some(map.slot(&by_uuid)));
        assert_eq!(map.short_slot(&Value::Int(42)), Some(map.slot(&by_int)));
        assert_eq!(map.short_slot(&Value::Text(b"x")), None);
        let pair = [Value::Uuid(&uuid), Value::Int(42)];
        assert_eq!(
            c.find_compact(devices, &pair),
            Some(Resolved::Plain("rule 42"))
        );
        assert_eq!(
            c.find_compact(devices, &[Value::Int(42), Value::Uuid(&uuid)]),
            None
        );
        // Forms the compact builder does not take go the long way (`resolve`).
        assert_eq!(
            c.find_compact(devices, &[Value::Text(b"a"), Value::Int(1)]),
            None
        );
        // Plain names are copied by the encoder; one with `=` is escaped.
        let e = |k: &Key| c.entry(devices, k).unwrap().resolved();
        assert_eq!(e(&by_int), Resolved::Plain("sensor-42"));
        assert_eq!(e(&by_uuid), Resolved::Name("zone=inside"));
        // Persisted entries come back in insertion order whatever their key's shape.
        let saved: Vec<&str> = c.entries().map(|(_, _, v)| v).collect();
        assert_eq!(saved, ["two zones", "zone=inside", "sensor-42", "rule 42"]);
    }
}
