//! What the simulator streams: metadata records (no archive timestamp, sent first in a session)
//! and event records in archive-time order.

use bytes::Bytes;

/// One record as the FMC would send it: an EventData body (record header included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRecord {
    /// The archive timestamp in the record header; 0 for metadata records.
    pub archive_second: u32,
    pub record_type: u32,
    pub body: Bytes,
}

#[derive(Clone, Debug, Default)]
pub struct Scenario {
    /// Sent at the start of every session, before any event.
    pub metadata: Vec<SimRecord>,
    /// Sorted by `archive_second`.
    pub events: Vec<SimRecord>,
}

impl Scenario {
    /// Events at or after `second` (the FMC resumes inclusively).
    pub fn events_from(&self, second: u32) -> &[SimRecord] {
        let i = self.events.partition_point(|r| r.archive_second < second);
        &self.events[i..]
    }
}
