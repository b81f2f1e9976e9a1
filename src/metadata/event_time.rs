//! The event time of a record: its own time field when the FMC set it, else the archive timestamp
//! the FMC stamped on it. Real FMCs send connection events (71) with a zero time in the discovery
//! header; eNcore then takes the archive timestamp, and so do we. Metadata records carry neither
//! (no archive timestamp): they have no event time. Which fields count is data
//! (`[event_time]` in `tables.toml`).

use chrono::{DateTime, SecondsFormat};

use super::rules::EventTimeField;
use crate::decode::{Category, Record};

/// Where the time comes from when no field of the record has one.
pub const ARCHIVE_TIMESTAMP: &str = "archiveTimestamp";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventTime<'f> {
    pub second: u64,
    pub microsecond: u32,
    /// The field it was read from, or [`ARCHIVE_TIMESTAMP`].
    pub source: &'f str,
}

/// For an event record: the first of `fields` whose seconds are not 0 (with its microseconds),
/// else the archive timestamp; `None` when it has neither, and for metadata records.
pub fn event_time<'f>(rec: &Record<'_>, fields: &'f [EventTimeField]) -> Option<EventTime<'f>> {
    if rec.schema.is_some_and(|s| s.category == Category::Metadata) {
        return None;
    }
    for f in fields {
        let second = match rec.get_ref(f.seconds).and_then(|v| v.as_int()) {
            Some(s) if s != 0 => s,
            _ => continue,
        };
        let microsecond = f
            .microseconds
            .and_then(|m| rec.get_ref(m))
            .and_then(|v| v.as_int())
            .unwrap_or(0)
            .min(999_999) as u32;
        return Some(EventTime {
            second,
            microsecond,
            source: &f.name,
        });
    }
    match rec.header.archive_timestamp {
        0 => None,
        a => Some(EventTime {
            second: a as u64,
            microsecond: 0,
            source: ARCHIVE_TIMESTAMP,
        }),
    }
}

impl EventTime<'_> {
    /// ISO 8601 in UTC with microseconds (`2020-06-01T10:20:30.000123Z`); `None` past year 262143.
    pub fn iso(&self) -> Option<String> {
        let t =
            DateTime::from_timestamp(i64::try_from(self.second).ok()?, self.microsecond * 1000)?;
        Some(t.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}
