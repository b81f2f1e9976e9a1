//! The one transform from a record's bytes to a CEF event: decode (the catalog's layouts),
//! metadata into the cache, the record filter, the mapping table, the CEF encoder.
//!
//! Everything that turns records into CEF goes through [`Transform::apply`]: the service's
//! worker, `decode --cef`, the benchmarks, the mapping tests and the fuzz targets, so what is
//! tested and measured is what runs. The metadata cache is passed in rather than owned: the
//! caller decides where it lives and when it is saved. It is shared behind a lock because the
//! service runs one transform per core: metadata records take it for writing, events for
//! reading (the worker lets no event run ahead of a metadata record before it).
//!
//! Unknown record types are passed on as generic records and warned about once per type;
//! malformed records are counted and warned about with the type, the index and the first bytes.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use rustc_hash::FxHashSet;

use crate::cef::{CefEncoder, CefHeader};
use crate::decode::filter::RecordFilter;
use crate::decode::record::{DecodeError, Decoder, Record};
use crate::mapping::Mappings;
use crate::mapping::plan::{Notes, Scratch};
use crate::metadata::Cache;

/// What the transform counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Records seen (metadata, malformed and filtered ones included).
    pub records: u64,
    pub metadata: u64,
    pub unknown: u64,
    pub unknown_by_type: BTreeMap<u32, u64>,
    pub malformed: u64,
    pub malformed_by_type: BTreeMap<u32, u64>,
    /// Decoded, but not wanted by the record filter.
    pub filtered: u64,
    /// Wanted, but no mapping table maps them.
    pub unmapped: u64,
    /// CEF lines written.
    pub events: u64,
    /// Names sent as ids because the metadata was missing.
    pub metadata_missing: u64,
    /// Values the CEF encoder had to change.
    pub encoder_warnings: u64,
}

impl Counters {
    /// Adds another transform's counts (the service runs one per core).
    pub fn add(&mut self, o: &Counters) {
        self.records += o.records;
        self.metadata += o.metadata;
        self.unknown += o.unknown;
        self.malformed += o.malformed;
        self.filtered += o.filtered;
        self.unmapped += o.unmapped;
        self.events += o.events;
        self.metadata_missing += o.metadata_missing;
        self.encoder_warnings += o.encoder_warnings;
        for (t, n) in &o.unknown_by_type {
            *self.unknown_by_type.entry(*t).or_default() += n;
        }
        for (t, n) in &o.malformed_by_type {
            *self.malformed_by_type.entry(*t).or_default() += n;
        }
    }
}

/// What became of one record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A CEF line was appended to the output buffer.
    Event {
        /// CEF severity 0..=10.
        severity: u8,
        /// RFC 5424 MSGID of its table, e.g. `INTRUSION`.
        msgid: &'static str,
    },
    /// Decoded, not wanted (record filter). Metadata records fed the cache first.
    Filtered,
    /// Wanted, but no table maps it.
    Unmapped,
    /// Could not be decoded: skipped.
    Malformed(DecodeError),
}

/// Record bytes → CEF line. One per thread: it holds the decoder's and the encoder's buffers.
pub struct Transform {
    decoder: Decoder,
    filter: RecordFilter,
    mappings: Arc<Mappings>,
    header: CefHeader,
    encoder: CefEncoder,
    scratch: Scratch,
    counters: Counters,
    /// Unknown record types already warned about, shared by a transform's siblings.
    warned_unknown: Arc<Mutex<FxHashSet<u32>>>,
    msgids: Vec<&'static str>,
}

impl Transform {
    /// `notes`: collect what mapping missed or changed for every record (the JSON tap, tests),
    /// at a small cost; missing metadata and encoder changes are always counted.
    pub fn new(
        filter: RecordFilter,
        mappings: Arc<Mappings>,
        header: CefHeader,
        notes: bool,
    ) -> Transform {
        Transform {
            decoder: Decoder::new(crate::decode::catalog()),
            filter,
            mappings,
            encoder: CefEncoder::new(header.clone()),
            header,
            scratch: Scratch::new(notes),
            counters: Counters::default(),
            warned_unknown: Arc::default(),
            msgids: Vec::new(),
        }
    }

    /// Another transform like this one, for another thread: same filter, tables and header;
    /// an unknown record type is warned about once between them.
    pub fn sibling(&self) -> Transform {
        Transform {
            decoder: Decoder::new(crate::decode::catalog()),
            filter: self.filter.clone(),
            mappings: self.mappings.clone(),
            header: self.header.clone(),
            encoder: CefEncoder::new(self.header.clone()),
            scratch: Scratch::new(self.scratch.collect_notes),
            counters: Counters::default(),
            warned_unknown: self.warned_unknown.clone(),
            msgids: Vec::new(),
        }
    }

    /// Every record, the built-in tables and the default header (tests, fuzzing, benchmarks).
    pub fn builtin() -> Transform {
        Transform::new(
            RecordFilter::all(),
            Arc::new(Mappings::builtin()),
            CefHeader::default(),
            true,
        )
    }

    /// New mapping tables (SIGHUP); the next record uses them.
    pub fn set_mappings(&mut self, mappings: Arc<Mappings>) {
        self.mappings = mappings;
    }

    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// What mapping the last event missed or changed (complete only with `notes` on).
    pub fn notes(&self) -> &Notes {
        &self.scratch.notes
    }

    /// Transforms the EventData body of record number `index` of the stream, appending its CEF
    /// line (without a line end) to `out` when it becomes an event.
    pub fn apply(
        &mut self,
        index: u64,
        body: &[u8],
        cache: &RwLock<Cache>,
        out: &mut Vec<u8>,
    ) -> Outcome {
        self.apply_inspect(index, body, cache, out, |_, _| ()).0
    }

    /// [`apply`](Self::apply), and `inspect` sees each wanted record decoded, with the cache as
    /// it stands after the record (the JSON tap and `decode` show the fields and names).
    pub fn apply_inspect<R>(
        &mut self,
        index: u64,
        body: &[u8],
        cache: &RwLock<Cache>,
        out: &mut Vec<u8>,
        inspect: impl FnOnce(&Record<'_>, &Cache) -> R,
    ) -> (Outcome, Option<R>) {
        let Transform {
            decoder,
            filter,
            mappings,
            header: _,
            encoder,
            scratch,
            counters,
            warned_unknown,
            msgids,
        } = self;
        counters.records += 1;
        let record = match decoder.decode(body) {
            Ok(r) => r,
            Err(e) => {
                counters.malformed += 1;
                *counters
                    .malformed_by_type
                    .entry(e.record_type().unwrap_or(0))
                    .or_default() += 1;
                tracing::warn!(
                    "skipping malformed record #{index}: {e}; first bytes: {}",
                    first_bytes(body)
                );
                return (Outcome::Malformed(e), None);
            }
        };
        match record.schema {
            Some(schema) if schema.is_metadata() => {
                counters.metadata += 1;
                cache
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .ingest(&record);
            }
            Some(_) => {}
            None => {
                let t = record.record_type();
                counters.unknown += 1;
                *counters.unknown_by_type.entry(t).or_default() += 1;
                let first = warned_unknown
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(t);
                if first {
                    let known = crate::decode::catalog().deprecated_name(t);
                    tracing::warn!(
                        "record type {t}{} is not in the catalog: passing it on as a generic record \
                         (warned once per type; see the monitor line for counts)",
                        known
                            .map(|n| format!(" (deprecated {n})"))
                            .unwrap_or_default()
                    );
                }
            }
        }
        if !filter.wants(record.record_type(), record.schema) {
            counters.filtered += 1;
            return (Outcome::Filtered, None);
        }
        let cache = cache.read().unwrap_or_else(|e| e.into_inner());
        let seen = Some(inspect(&record, &cache));
        let Some(plan) = mappings.plan_for(&record) else {
            counters.unmapped += 1;
            return (Outcome::Unmapped, seen);
        };
        let severity = plan.encode(&record, &cache, encoder, out, scratch);
        counters.events += 1;
        let notes = &scratch.notes;
        counters.metadata_missing += notes.missing_metadata.len() as u64;
        counters.encoder_warnings += notes.encoder.len() as u64;
        let msgid = match msgids.iter().find(|m| **m == &*plan.msgid) {
            Some(m) => *m,
            None => {
                let m = intern(&plan.msgid);
                msgids.push(m);
                m
            }
        };
        (Outcome::Event { severity, msgid }, seen)
    }
}

/// The first bytes of a record in hex, for warnings.
pub fn first_bytes(body: &[u8]) -> String {
    let n = body.len().min(32);
    let mut s: String = body[..n].iter().map(|b| format!("{b:02x}")).collect();
    if body.len() > n {
        s.push('…');
    }
    s
}

/// MSGIDs live as long as the process (there are a handful, one per table).
fn intern(s: &str) -> &'static str {
    static SET: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let mut set = SET
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(&x) = set.get(s) {
        return x;
    }
    let leaked: &'static str = Box::leak(s.to_string().into_boxed_str());
    set.insert(leaked);
    leaked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::Limits;

    #[test]
    fn garbage_is_malformed_and_counted_not_fatal() {
        let mut t = Transform::builtin();
        let cache = RwLock::new(Cache::new(Limits::default()));
        let mut out = Vec::new();
        // Record type 71 claiming more bytes than it has.
        let body = [0, 0, 0, 71, 0, 0, 1, 0, 1, 2, 3];
        assert!(matches!(
            t.apply(7, &body, &cache, &mut out),
            Outcome::Malformed(_)
        ));
        assert!(out.is_empty());
        assert_eq!((t.counters().records, t.counters().malformed), (1, 1));
    }
}
