//! The decode stage: decodes each record, feeds metadata to the cache, skips records already
//! delivered (the resume cursor), applies the record filter and counts what it could not decode.
//! Unknown record types are passed on as generic records and warned about once per type;
//! malformed records are skipped with a warning naming the type, the index and the first bytes.

use std::collections::BTreeMap;

use rustc_hash::FxHashSet;

use super::filter::RecordFilter;
use super::record::{DecodeError, Decoder, Record, RecordHeader};
use crate::estreamer::cursor::{Cursor, identity};
use crate::metadata::Cache;

/// What the stage counted.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodeCounters {
    pub records: u64,
    pub metadata: u64,
    pub unknown: u64,
    pub unknown_by_type: BTreeMap<u32, u64>,
    pub malformed: u64,
    pub malformed_by_type: BTreeMap<u32, u64>,
    pub duplicates: u64,
    pub filtered: u64,
}

pub struct DecodeStage {
    pub decoder: Decoder,
    pub cache: Cache,
    pub filter: RecordFilter,
    /// Skips records already handled (after a reconnect or a restart). None: keep everything.
    pub cursor: Option<Cursor>,
    pub counters: DecodeCounters,
    warned_unknown: FxHashSet<u32>,
}

/// The outcome for one record. `second` is the record's archive second (0 for metadata) and
/// `identity` its [`identity`]: what the bookmark is made of.
pub enum Handled<'s> {
    /// Decoded (or an unknown type, with `record.schema == None`) and wanted.
    Record {
        record: Record<'s>,
        cache: &'s Cache,
        identity: u64,
        second: u32,
    },
    /// Decoded, but not written (record filter).
    Filtered { identity: u64, second: u32 },
    /// Already handled before a reconnect or restart.
    Duplicate,
    /// Could not be decoded: skipped and counted.
    Malformed {
        error: DecodeError,
        identity: u64,
        second: u32,
    },
}

impl DecodeStage {
    pub fn new(cache: Cache, filter: RecordFilter, cursor: Option<Cursor>) -> DecodeStage {
        DecodeStage {
            decoder: Decoder::new(crate::decode::catalog()),
            cache,
            filter,
            cursor,
            counters: DecodeCounters::default(),
            warned_unknown: FxHashSet::default(),
        }
    }

    /// Handles the EventData body of record number `index` of the stream.
    pub fn handle<'s>(&'s mut self, index: u64, body: &'s [u8]) -> Handled<'s> {
        let DecodeStage {
            decoder,
            cache,
            filter,
            cursor,
            counters,
            warned_unknown,
        } = self;
        counters.records += 1;
        let id = identity(body);
        let second = RecordHeader::parse(body)
            .map(|h| h.archive_timestamp)
            .unwrap_or(0);
        if let Some(c) = cursor.as_mut() {
            if !c.admit(second, id) {
                counters.duplicates += 1;
                return Handled::Duplicate;
            }
        }
        let catalog = decoder.catalog();
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
                return Handled::Malformed {
                    error: e,
                    identity: id,
                    second,
                };
            }
        };
        match record.schema {
            Some(schema) if schema.is_metadata() => {
                counters.metadata += 1;
                cache.ingest(&record);
            }
            Some(_) => {}
            None => {
                let t = record.record_type();
                counters.unknown += 1;
                *counters.unknown_by_type.entry(t).or_default() += 1;
                if warned_unknown.insert(t) {
                    let known = catalog.deprecated_name(t);
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
            return Handled::Filtered {
                identity: id,
                second,
            };
        }
        Handled::Record {
            record,
            cache,
            identity: id,
            second,
        }
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
