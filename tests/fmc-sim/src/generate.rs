//! The simulator's record generator: valid, plausible instances of every record type of the
//! catalog, encoded from the same compiled layouts the decoder interprets, each with the JSON the
//! decoder must give back for it (its "truth").
//!
//! A generated [`Scenario`] is consistent the way an FMC's stream is: metadata records come first
//! and fill every map that the events' ids are resolved through (`metadata/tables.toml`): the
//! devices events come from, the rule messages of their (generator, rule) pairs, the access-control
//! rules of their policy revisions, zones and interfaces by UUID, countries, and so on. Events pick
//! their ids from those pools; some ids are 0 (which the static tables name) and a few are unknown
//! on purpose ([`Generated::unknown_ids`]).
//!
//! ```
//! use estreamer_cef_sim::generate::{GenOptions, generate, to_stream};
//! let g = generate(&GenOptions { record_types: Some(vec![71, 400]), ..GenOptions::default() });
//! let records: Vec<_> = g.records().cloned().collect();
//! let wire = to_stream(&records, 8, 1);
//! assert!(!wire.is_empty());
//! ```

use std::collections::HashMap;
use std::fmt;

use bytes::Bytes;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde_json::Value as Json;

use super::encode::{self, Forced, Spec, scope_infos};
use super::scenario::{Scenario, SimRecord};
pub use super::values::Profile;
use super::values::{self, Ctx, Val};
use super::world::World;
use estreamer_cef::decode::record::RecordHeader;
use estreamer_cef::decode::schema::{Op, ScopeId};
use estreamer_cef::decode::{
    Category, DecodeError, Decoder, FieldKind, FieldRef, RecordSchema, Scalar, Scope, catalog,
};
use estreamer_cef::estreamer::message::{self, NULL_MESSAGE, kind};
use estreamer_cef::metadata::rules::rules;

/// What to generate.
#[derive(Clone, Debug)]
pub struct GenOptions {
    /// Everything generated follows from the seed.
    pub seed: u64,
    /// Event records per event type.
    pub events_per_type: usize,
    /// `(record type, count)`: this many events of that type instead of `events_per_type` (a
    /// mix like a real FMC's, mostly connections and intrusions).
    pub events_of: Vec<(u32, usize)>,
    /// Metadata records per metadata type, before those the events need (some types have a
    /// larger minimum: six devices, a dozen rule messages, ...).
    pub metadata_per_type: usize,
    /// The record types to generate (default: every type of the catalog; types it does not
    /// define are left out, see [`unknown_record`]). Metadata that the chosen events refer to is
    /// generated whether it is listed or not.
    pub record_types: Option<Vec<u32>>,
    /// Archive timestamps fall in `base_second .. base_second + seconds_span`.
    pub base_second: u32,
    pub seconds_span: u32,
    /// Probability that an event's metadata lookup gets an id no metadata record names.
    pub unknown_id_rate: f64,
    /// Adversarial text and every type equally (the tests), or an FMC's day (the demo, samples).
    pub profile: Profile,
}

impl Default for GenOptions {
    /// Every record type, four events of each, metadata for all of them; 2025-01-01, one day.
    fn default() -> Self {
        GenOptions {
            seed: 1,
            events_per_type: 4,
            events_of: Vec::new(),
            metadata_per_type: 2,
            record_types: None,
            base_second: 1_735_689_600,
            seconds_span: 86_400,
            unknown_id_rate: 0.03,
            profile: Profile::Adversarial,
        }
    }
}

impl GenOptions {
    /// An FMC's day ([`Profile::Realistic`]): `events_per_type` × each type's
    /// [`realistic_share`] events (mostly connections, then intrusions, files and malware), plain
    /// text, and every id named by a metadata record, as a healthy FMC sends them.
    pub fn realistic(seed: u64, events_per_type: usize) -> GenOptions {
        GenOptions {
            seed,
            events_per_type,
            unknown_id_rate: 0.0,
            profile: Profile::Realistic,
            ..GenOptions::default()
        }
    }

    /// Events of `record_type` to generate: its count in `events_of` if it has one, else by the
    /// profile (realistic: by [`realistic_share`] unless `events_of` gives the mix). A type asked for by name (`record_types`) gets at least `events_per_type`,
    /// whatever its realistic share.
    fn event_count(&self, record_type: u32) -> usize {
        if let Some(&(_, n)) = self.events_of.iter().find(|(of, _)| *of == record_type) {
            return n;
        }
        match self.profile {
            Profile::Adversarial => self.events_per_type,
            // A caller that gives its own mix gets `events_per_type` of every other type.
            Profile::Realistic if !self.events_of.is_empty() => self.events_per_type,
            Profile::Realistic => {
                let asked = usize::from(self.record_types.is_some());
                self.events_per_type * realistic_share(record_type).max(asked)
            }
        }
    }
}

/// How many events of a type a typical FMC sends for one event of its rarest kinds: connection
/// logging dominates, intrusions, file and malware events follow, a few discovery, user and
/// correlation events. Types not listed are not generated by [`Profile::Realistic`] (an FMC
/// sends most discovery changes rarely, and a demo with every one of them looks like noise).
pub fn realistic_share(record_type: u32) -> usize {
    const SHARES: &[(u32, usize)] = &[
        (71, 24), // connection statistics
        (400, 6), // intrusion
        (500, 4), // file
        (502, 2), // file malware
        (125, 1), // malware (AMP for Endpoints)
        (112, 1), // correlation
        (95, 1),  // user login
        (10, 1),  // new host
        (15, 1),  // new client application
    ];
    SHARES
        .iter()
        .find(|s| s.0 == record_type)
        .map_or(0, |s| s.1)
}

/// A generated scenario and what the decoder must make of it.
#[derive(Clone, Debug, Default)]
pub struct Generated {
    pub scenario: Scenario,
    /// `(record type, decoded JSON)` per record, in stream order: metadata, then events.
    pub truth: Vec<(u32, Json)>,
    /// Ids given no metadata on purpose.
    pub unknown_ids: Vec<UnknownId>,
    /// Lookups the generator could not make resolvable: the metadata rules cannot match the
    /// field (e.g. a key whose wire type differs from the metadata record's). Empty when the
    /// rules are consistent.
    pub unresolvable: Vec<Unresolvable>,
}

impl Generated {
    /// Every record in stream order (metadata, then events), aligned with `truth`.
    pub fn records(&self) -> impl Iterator<Item = &SimRecord> {
        self.scenario
            .metadata
            .iter()
            .chain(self.scenario.events.iter())
    }
}

/// An id chosen to have no metadata.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownId {
    /// Index in stream order (as [`Generated::records`]).
    pub index: usize,
    pub record_type: u32,
    /// Field path as the metadata rules write it (`deviceId`, `userLogin.vpnSession[0].countryCode`).
    pub field: String,
}

/// A resolved name that no metadata the generator can send would resolve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unresolvable {
    pub index: usize,
    pub record_type: u32,
    /// The resolved name (`sslPolicy`, ...).
    pub name: String,
    /// Key fields of its lookups.
    pub fields: Vec<String>,
}

/// How to encode one record with [`encode_record`]. `None` leaves the choice to the generator.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecordOptions {
    /// The block number that selects a layout variant (record 71: 160 or 163).
    pub variant: Option<u32>,
    /// Discovery header with the host's IPv6 address (`hasIpv6` 1) or only the legacy IPv4 (0).
    pub ipv6_header: Option<bool>,
    /// Send a block header on list items the catalog gives none (block 166).
    pub item_headers: Option<bool>,
    /// Record header with archive timestamp (16 bytes) or without (8). Default: events with,
    /// metadata without, as the FMC sends them.
    pub archive_header: Option<bool>,
}

/// Why a record cannot be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GenError {
    UnknownRecordType(u32),
    UnknownVariant { record_type: u32, variant: u32 },
}

impl fmt::Display for GenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GenError::UnknownRecordType(t) => write!(
                f,
                "record type {t} is not in the catalog: use unknown_record() to make a record of an unknown type"
            ),
            GenError::UnknownVariant {
                record_type,
                variant,
            } => write!(
                f,
                "record type {record_type} has no layout variant for block {variant} (record 71 has 160 and 163)"
            ),
        }
    }
}

impl std::error::Error for GenError {}

/// Whether the FMC sends a record type as an event (with archive timestamp) or as metadata.
pub fn is_event(schema: &RecordSchema) -> bool {
    match schema.category {
        Category::Metadata => false,
        // Discovery records are events; the third-party vulnerability (106) is reference data.
        Category::Rna => schema.variants.first().is_some_and(|v| {
            matches!(
                catalog().scope(v.scope).ops.first(),
                Some(Op::Discovery { .. })
            )
        }),
        _ => true,
    }
}

/// Encodes one record of `record_type` with values chosen by `rng`, and returns its EventData
/// body and the JSON the decoder must give for it (`decode::json::record_fields`). Events carry
/// `archive_second` in their record header. Ids are plausible but refer to no metadata.
pub fn encode_record(
    record_type: u32,
    opts: &RecordOptions,
    rng: &mut StdRng,
    archive_second: u32,
) -> Result<(Bytes, Json), GenError> {
    let schema = catalog()
        .record(record_type)
        .ok_or(GenError::UnknownRecordType(record_type))?;
    let variant = match opts.variant {
        Some(n) => schema
            .variants
            .iter()
            .find(|v| v.selector == Some(n))
            .ok_or(GenError::UnknownVariant {
                record_type,
                variant: n,
            })?,
        None => schema
            .variants
            .choose(rng)
            .ok_or(GenError::UnknownRecordType(record_type))?,
    };
    let event = is_event(schema);
    let archive = match opts.archive_header.unwrap_or(event) {
        true => Some(archive_second),
        false => None,
    };
    let base = if archive_second == 0 {
        GenOptions::default().base_second
    } else {
        archive_second
    };
    let ctx = Ctx {
        record_type,
        metadata: !event,
        second: base.saturating_sub(rng.random_range(0..=300)),
        device: rng.random_range(1..=6),
        seq: rng.random_range(1..=50),
        profile: Profile::Adversarial,
    };
    let mut forced = Forced::default();
    if !event {
        name_values(schema, variant.scope, &mut forced, rng);
    }
    let spec = Spec {
        schema,
        scope: variant.scope,
        ipv6_header: opts.ipv6_header.unwrap_or_else(|| rng.random_bool(0.75)),
        item_headers: opts.item_headers,
        archive,
        ctx,
        forced: &forced,
    };
    let e = encode::encode(&spec, rng);
    Ok((Bytes::from(e.body), e.truth))
}

/// Generates a scenario: metadata first, then events sorted by archive second.
pub fn generate(opts: &GenOptions) -> Generated {
    let cat = catalog();
    let mut rng = StdRng::seed_from_u64(opts.seed);
    let types: Vec<u32> = match &opts.record_types {
        Some(t) => t
            .iter()
            .copied()
            .filter(|&t| cat.record(t).is_some())
            .collect(),
        None => cat.record_types(),
    };
    let mut world = World::new(rules(), opts.base_second);
    world.profile = opts.profile;
    for &t in &types {
        let schema = cat.record(t).expect("filtered above");
        if is_event(schema) {
            continue;
        }
        let n = opts.metadata_per_type.max(seed_minimum(t));
        for _ in 0..n {
            world.seed_metadata(schema, &mut rng);
        }
    }
    struct Ev {
        archive: u32,
        record_type: u32,
        body: Vec<u8>,
        truth: Json,
        unknown: Vec<String>,
        unresolvable: Vec<(String, Vec<String>)>,
    }
    let mut events: Vec<Ev> = Vec::new();
    for &t in &types {
        let schema = cat.record(t).expect("filtered above");
        if !is_event(schema) {
            continue;
        }
        for i in 0..opts.event_count(t) {
            let variant = &schema.variants[i % schema.variants.len()];
            let archive = opts
                .base_second
                .saturating_add(rng.random_range(0..opts.seconds_span.max(1)));
            let ctx = Ctx {
                record_type: t,
                metadata: false,
                second: archive.saturating_sub(rng.random_range(0..=300)),
                device: world.device(&mut rng),
                seq: i as u64 + 1,
                profile: opts.profile,
            };
            let mut forced = Forced::default();
            let plan = world.plan(
                schema,
                variant.scope,
                &mut forced,
                &ctx,
                &mut rng,
                0,
                opts.unknown_id_rate,
            );
            // Both discovery header forms and both block-166 item forms appear.
            let spec = Spec {
                schema,
                scope: variant.scope,
                ipv6_header: i % 4 != 1,
                item_headers: Some(i % 2 == 1),
                archive: Some(archive),
                ctx,
                forced: &forced,
            };
            let e = encode::encode(&spec, &mut rng);
            let scope = cat.scope(variant.scope);
            events.push(Ev {
                archive,
                record_type: t,
                body: e.body,
                truth: e.truth,
                unknown: plan
                    .unknown
                    .iter()
                    .map(|&r| field_ref_path(scope, r))
                    .collect(),
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
    }
    events.sort_by_key(|e| e.archive);
    let mut g = Generated::default();
    for m in world.metadata {
        let index = g.truth.len();
        g.unresolvable.extend(
            m.unresolvable
                .into_iter()
                .map(|(name, fields)| Unresolvable {
                    index,
                    record_type: m.record_type,
                    name,
                    fields,
                }),
        );
        g.truth.push((m.record_type, m.truth));
        g.scenario.metadata.push(SimRecord {
            archive_second: 0,
            record_type: m.record_type,
            body: Bytes::from(m.body),
        });
    }
    for e in events {
        let index = g.truth.len();
        g.unknown_ids
            .extend(e.unknown.into_iter().map(|field| UnknownId {
                index,
                record_type: e.record_type,
                field,
            }));
        g.unresolvable.extend(
            e.unresolvable
                .into_iter()
                .map(|(name, fields)| Unresolvable {
                    index,
                    record_type: e.record_type,
                    name,
                    fields,
                }),
        );
        g.truth.push((e.record_type, e.truth));
        g.scenario.events.push(SimRecord {
            archive_second: e.archive,
            record_type: e.record_type,
            body: Bytes::from(e.body),
        });
    }
    g
}

/// More metadata records of some types than `metadata_per_type`: a realistic number of devices,
/// priorities, rule messages and countries even when events need fewer.
fn seed_minimum(record_type: u32) -> usize {
    const MINIMUM: &[(u32, usize)] = &[
        (123, 6),
        (4, 3),
        (66, 12),
        (520, 8),
        (115, 4),
        (116, 6),
        (119, 6),
    ];
    MINIMUM
        .iter()
        .find(|m| m.0 == record_type)
        .map(|m| m.1)
        .unwrap_or(0)
}

/// A field reference written as the metadata rules write paths (`list[0].field` for the first
/// item of a list).
pub fn field_ref_path(scope: &Scope, r: FieldRef) -> String {
    match r {
        FieldRef::Root(s) => scope.fields[s as usize].path.to_string(),
        FieldRef::FirstItem {
            list,
            item_scope,
            slot,
        } => format!(
            "{}[0].{}",
            scope.fields[list as usize].path,
            catalog().scope(item_scope).fields[slot as usize].path
        ),
    }
}

/// Names for the text values a metadata record's ingest rules read (never empty).
fn name_values(
    schema: &'static RecordSchema,
    scope_id: ScopeId,
    forced: &mut Forced,
    rng: &mut StdRng,
) {
    let cat = catalog();
    let r = rules();
    let scope = cat.scope(scope_id);
    for ci in &r.for_scope(schema, scope).ingest {
        if matches!(
            scope.ref_kind(cat, ci.value),
            FieldKind::Text | FieldKind::Bytes
        ) {
            forced.set(
                ci.value,
                Val::Text(values::name(
                    r.map_name(ci.map),
                    None,
                    rng,
                    Profile::Adversarial,
                )),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------------

/// A record of a type the catalog does not define (pass such a type): a record header (with
/// archive timestamp unless `archive_second` is 0) and `payload_len` bytes.
pub fn unknown_record(record_type: u32, archive_second: u32, payload_len: usize) -> SimRecord {
    let mut body = Vec::with_capacity(16 + payload_len);
    body.extend_from_slice(&record_type.to_be_bytes());
    body.extend_from_slice(&(payload_len as u32).to_be_bytes());
    if archive_second != 0 {
        body.extend_from_slice(&archive_second.to_be_bytes());
        body.extend_from_slice(&[0; 4]);
    }
    body.extend((0..payload_len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(7)));
    SimRecord {
        archive_second,
        record_type,
        body: Bytes::from(body),
    }
}

/// A record whose lengths no longer add up: `cut` bytes (at least 1) are taken from the end of
/// the record and its header's record length is rewritten to match, so the framing is intact but
/// the innermost length-delimited part (block, list, string or discovery header) that ran to the
/// end now claims bytes that are not there. The decoder must report it as
/// [`DecodeError::Malformed`]. When cutting exactly `cut` bytes would leave a shorter but valid
/// record (the cut falls on a field boundary of a layout that allows older, shorter versions),
/// the nearest cut that is malformed is used instead.
pub fn truncated(record: &SimRecord, cut: usize) -> SimRecord {
    let body = &record.body[..];
    let Ok(h) = RecordHeader::parse(body) else {
        return record.clone();
    };
    let data_len = body.len() - h.header_len;
    let make = |k: usize| -> Vec<u8> {
        let mut b = body[..body.len() - k].to_vec();
        b[4..8].copy_from_slice(&((data_len - k) as u32).to_be_bytes());
        b
    };
    let want = cut.clamp(1, data_len.max(1));
    let mut decoder = Decoder::new(catalog());
    let order = std::iter::once(want)
        .chain((1..want).rev())
        .chain(want + 1..=data_len);
    let mut chosen = None;
    for k in order {
        if k == 0 || k > data_len {
            continue;
        }
        let b = make(k);
        if matches!(decoder.decode(&b), Err(DecodeError::Malformed { .. })) {
            chosen = Some(b);
            break;
        }
    }
    let b = chosen.unwrap_or_else(|| make(want.min(data_len)));
    SimRecord {
        archive_second: record.archive_second,
        record_type: record.record_type,
        body: Bytes::from(b),
    }
}

// ---------------------------------------------------------------------------------------------
// The byte stream
// ---------------------------------------------------------------------------------------------

/// How records are framed on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamOptions {
    /// 0: one EventData message per record; otherwise MessageBundles of up to this many records.
    pub bundle_size: usize,
    pub connection_id: u32,
    /// A Null keepalive after every this many messages (0: none).
    pub null_every: usize,
}

/// The bytes an FMC sends after the handshake for these records: EventData messages
/// (`bundle_size` 0) or MessageBundles (type 4002: `u32 connection id`, `u32 sequence` from 1,
/// then items `u32 type = 4`, `u32 length`, EventData body).
pub fn to_stream(records: &[SimRecord], bundle_size: usize, connection_id: u32) -> Vec<u8> {
    to_stream_with(
        records,
        &StreamOptions {
            bundle_size,
            connection_id,
            null_every: 0,
        },
    )
}

/// [`to_stream`] with Null keepalives between messages.
pub fn to_stream_with(records: &[SimRecord], opts: &StreamOptions) -> Vec<u8> {
    let total: usize = records.iter().map(|r| r.body.len() + 16).sum();
    let mut out = Vec::with_capacity(total + 64);
    let mut messages = 0usize;
    let mut after_message = |out: &mut Vec<u8>| {
        messages += 1;
        if opts.null_every > 0 && messages.is_multiple_of(opts.null_every) {
            out.extend_from_slice(&NULL_MESSAGE);
        }
    };
    if opts.bundle_size == 0 {
        for r in records {
            out.extend_from_slice(&message::encode(kind::EVENT_DATA, &r.body));
            after_message(&mut out);
        }
        return out;
    }
    for (i, chunk) in records.chunks(opts.bundle_size).enumerate() {
        let len: usize = 8 + chunk.iter().map(|r| 8 + r.body.len()).sum::<usize>();
        out.extend_from_slice(&message::VERSION.to_be_bytes());
        out.extend_from_slice(&kind::MESSAGE_BUNDLE.to_be_bytes());
        out.extend_from_slice(&(len as u32).to_be_bytes());
        out.extend_from_slice(&opts.connection_id.to_be_bytes());
        out.extend_from_slice(&(i as u32 + 1).to_be_bytes());
        for r in chunk {
            out.extend_from_slice(&(kind::EVENT_DATA as u32).to_be_bytes());
            out.extend_from_slice(&(r.body.len() as u32).to_be_bytes());
            out.extend_from_slice(&r.body);
        }
        after_message(&mut out);
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Fast paths for benchmarks
// ---------------------------------------------------------------------------------------------

/// `n` connection events (record 71, block 163, IPv6 discovery header), quickly: a few encoded
/// templates with addresses, ports, times and counters varied per record. Archive seconds rise
/// over one day from [`GenOptions::default`]'s base. Their ids resolve against
/// [`bench_metadata`] of the same seed.
pub fn connection_records(n: usize, seed: u64) -> Vec<SimRecord> {
    Bench::new(seed).events(71, n, seed)
}

/// `n` intrusion events (record 400), like [`connection_records`].
pub fn intrusion_records(n: usize, seed: u64) -> Vec<SimRecord> {
    Bench::new(seed).events(400, n, seed)
}

/// The metadata that the ids of [`connection_records`] and [`intrusion_records`] of the same
/// seed resolve through.
pub fn bench_metadata(seed: u64) -> Vec<SimRecord> {
    Bench::new(seed).metadata
}

/// Templates for the fast paths, from one small world.
struct Bench {
    metadata: Vec<SimRecord>,
    templates: HashMap<u32, Vec<Vec<u8>>>,
}

const TEMPLATES: usize = 16;

impl Bench {
    fn new(seed: u64) -> Bench {
        let cat = catalog();
        let base = GenOptions::default().base_second;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut world = World::new(rules(), base);
        if let Some(devices) = cat.record(123) {
            for _ in 0..seed_minimum(123) {
                world.seed_metadata(devices, &mut rng);
            }
        }
        let mut templates = HashMap::new();
        for (t, variant) in [(71u32, Some(163u32)), (400, None)] {
            let Some(schema) = cat.record(t) else {
                continue;
            };
            let Some(v) = schema
                .variants
                .iter()
                .find(|v| variant.is_none() || v.selector == variant)
            else {
                continue;
            };
            let mut list = Vec::new();
            for i in 0..TEMPLATES {
                let ctx = Ctx {
                    record_type: t,
                    metadata: false,
                    second: base,
                    device: world.device(&mut rng),
                    seq: i as u64 + 1,
                    profile: Profile::Adversarial,
                };
                let mut forced = Forced::default();
                world.plan(schema, v.scope, &mut forced, &ctx, &mut rng, 0, 0.0);
                let spec = Spec {
                    schema,
                    scope: v.scope,
                    ipv6_header: true,
                    item_headers: None,
                    archive: Some(base),
                    ctx,
                    forced: &forced,
                };
                list.push(encode::encode(&spec, &mut rng).body);
            }
            templates.insert(t, list);
        }
        let metadata = world
            .metadata
            .into_iter()
            .map(|m| SimRecord {
                archive_second: 0,
                record_type: m.record_type,
                body: Bytes::from(m.body),
            })
            .collect();
        Bench {
            metadata,
            templates,
        }
    }

    fn events(&self, record_type: u32, n: usize, seed: u64) -> Vec<SimRecord> {
        let Some(templates) = self.templates.get(&record_type).filter(|t| !t.is_empty()) else {
            return Vec::new();
        };
        let patches: Vec<Vec<Patch>> = templates.iter().map(|t| patches_for(t)).collect();
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed);
        let base = GenOptions::default().base_second;
        let span = 86_400u64;
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let k = i % templates.len();
            let mut b = templates[k].clone();
            let archive = base + (i as u64 * span / n.max(1) as u64) as u32;
            let second = archive.saturating_sub(rng.random_range(0..=300));
            b[8..12].copy_from_slice(&archive.to_be_bytes());
            for p in &patches[k] {
                p.apply(&mut b, second, &mut rng);
            }
            out.push(SimRecord {
                archive_second: archive,
                record_type,
                body: Bytes::from(b),
            });
        }
        out
    }
}

/// A field of a template to vary: its absolute offset in the body and how.
struct Patch {
    at: usize,
    width: usize,
    how: values::Gen,
}

impl Patch {
    fn apply(&self, b: &mut [u8], second: u32, rng: &mut StdRng) {
        let ctx = Ctx {
            record_type: 0,
            metadata: false,
            second,
            device: 1,
            seq: 0,
            profile: Profile::Adversarial,
        };
        let kind = match self.width {
            1 => FieldKind::Scalar(Scalar::U8),
            2 => FieldKind::Scalar(Scalar::U16),
            4 if self.how == values::Gen::Addr => FieldKind::Scalar(Scalar::Ipv4),
            4 => FieldKind::Scalar(Scalar::U32),
            8 => FieldKind::Scalar(Scalar::U64),
            _ => FieldKind::Scalar(Scalar::Ipv6),
        };
        let dst = &mut b[self.at..self.at + self.width];
        match values::make(self.how, kind, &ctx, rng, &|_| None) {
            Val::Int(v) => dst.copy_from_slice(&v.to_be_bytes()[8 - self.width..]),
            Val::Raw(r) if r.len() == self.width => dst.copy_from_slice(&r),
            _ => {}
        }
    }
}

/// The fields the fast paths vary (none of them a metadata key).
const VARIED: &[&str] = &[
    "eventSecond",
    "eventMicrosecond",
    "eventId",
    "initiatorIpAddress",
    "responderIpAddress",
    "sourceIpAddress",
    "destinationIpAddress",
    "initiatorPort",
    "responderPort",
    "sourcePortOrIcmpType",
    "destinationPortOrIcmpType",
    "firstPacketTimestamp",
    "lastPacketTimestamp",
    "connectionTimestamp",
    "connectionCounter",
    "initiatorTransmittedPackets",
    "responderTransmittedPackets",
    "initiatorTransmittedBytes",
    "responderTransmittedBytes",
];

fn patches_for(body: &[u8]) -> Vec<Patch> {
    let mut decoder = Decoder::new(catalog());
    let Ok(rec) = decoder.decode(body) else {
        return Vec::new();
    };
    let Some(scope) = rec.scope else {
        return Vec::new();
    };
    let header_len = rec.header.header_len;
    let infos = &scope_infos();
    let Some(scope_id) = catalog().scopes.iter().position(|s| std::ptr::eq(s, scope)) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for path in VARIED {
        let Some(slot) = scope.find(path) else {
            continue;
        };
        let s = rec.slots[slot as usize];
        if !s.is_present() {
            continue;
        }
        let how = match scope.fields[slot as usize].kind {
            FieldKind::Scalar(Scalar::Ipv6 | Scalar::Ipv4) => values::Gen::Addr,
            _ => infos[scope_id].gens[slot as usize],
        };
        out.push(Patch {
            at: header_len + s.off as usize,
            width: s.len as usize,
            how,
        });
    }
    out
}
