//! What the simulator streams: metadata records (no archive timestamp, sent first in a session)
//! and event records in archive-time order.

use bytes::{Bytes, BytesMut};
use estreamer_cef::decode::RecordHeader;
use estreamer_cef::delivery::cursor;

/// One record as the FMC would send it: an EventData body (record header included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimRecord {
    /// The archive timestamp in the record header; 0 for metadata records.
    pub archive_second: u32,
    pub record_type: u32,
    pub body: Bytes,
}

impl SimRecord {
    /// The record with its archive timestamp set to `second` (a record without one, i.e. with
    /// an 8-byte header, is returned unchanged).
    pub fn restamped(&self, second: u32) -> SimRecord {
        match RecordHeader::parse(&self.body) {
            Ok(h) if h.header_len == 16 => {
                let mut b = BytesMut::from(&self.body[..]);
                b[8..12].copy_from_slice(&second.to_be_bytes());
                SimRecord {
                    archive_second: second,
                    record_type: self.record_type,
                    body: b.freeze(),
                }
            }
            _ => self.clone(),
        }
    }

    /// The record without its header: what stays the same on both peers of an HA pair.
    pub fn payload(&self) -> &[u8] {
        let header = RecordHeader::parse(&self.body).map_or(0, |h| h.header_len);
        &self.body[header.min(self.body.len())..]
    }
}

/// The most seconds [`Scenario::with_archive_offset`] adds to a record on top of the offset.
pub const ARCHIVE_JITTER_MAX: u32 = 2;

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

    /// The same events as the other FMC of a high-availability pair would serve them: each
    /// FMC stamps its own archive time, so every event's archive second moves by `offset` plus
    /// 0 to [`ARCHIVE_JITTER_MAX`] seconds that follow from the record's payload and the offset
    /// (the peers' clocks and archiving differ, not by a constant). The events are sorted again
    /// by their new seconds; payloads and metadata stay as they are. Offset 0 changes nothing.
    /// Fails, naming the record, when a second would leave the range 1..=u32::MAX.
    pub fn with_archive_offset(&self, offset: i64) -> Result<Scenario, String> {
        if offset == 0 {
            return Ok(self.clone());
        }
        let mut events = Vec::with_capacity(self.events.len());
        for (i, r) in self.events.iter().enumerate() {
            if r.archive_second == 0 {
                events.push(r.clone());
                continue;
            }
            let second = i64::from(r.archive_second) + offset + i64::from(jitter(r, offset));
            let second = u32::try_from(second).ok().filter(|s| *s >= 1).ok_or_else(|| {
                format!(
                    "archive offset {offset} moves event {i} (record type {}, archive second {}) \
                     to {second}, outside 1..={}: choose a smaller offset",
                    r.record_type,
                    r.archive_second,
                    u32::MAX
                )
            })?;
            events.push(r.restamped(second));
        }
        // Stable: records of one second keep their order.
        events.sort_by_key(|r| r.archive_second);
        Ok(Scenario {
            metadata: self.metadata.clone(),
            events,
        })
    }

    /// Seconds between one pass of the events and the next when the simulator loops: their
    /// span, plus the most jitter [`Scenario::with_archive_offset`] adds, so that the passes of
    /// a shifted copy never overlap either and both peers of an HA pair repeat in step.
    pub fn loop_period(&self) -> u64 {
        let seconds = self.events.iter().map(|r| r.archive_second);
        let first = seconds.clone().min().unwrap_or(0);
        let last = seconds.max().unwrap_or(0);
        u64::from(last - first) + 1 + u64::from(ARCHIVE_JITTER_MAX)
    }
}

/// 0..=ARCHIVE_JITTER_MAX seconds, from the record's payload and the peer's offset: the same
/// in every run, different between records and between peers.
fn jitter(record: &SimRecord, offset: i64) -> u32 {
    // splitmix64's finaliser spreads the offset over every bit before reducing.
    let mut x = cursor::identity(record.payload()) ^ (offset as u64);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^= x >> 31;
    (x % (u64::from(ARCHIVE_JITTER_MAX) + 1)) as u32
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;

    fn event(second: u32, tag: u8) -> SimRecord {
        let mut b = BytesMut::new();
        b.put_u32(71);
        b.put_u32(2);
        b.put_u32(second);
        b.put_u32(0);
        b.put_u8(tag);
        b.put_u8(tag);
        SimRecord {
            archive_second: second,
            record_type: 71,
            body: b.freeze(),
        }
    }

    fn scenario() -> Scenario {
        let mut meta = BytesMut::new();
        meta.put_u32(4);
        meta.put_u32(1);
        meta.put_u8(9);
        Scenario {
            metadata: vec![SimRecord {
                archive_second: 0,
                record_type: 4,
                body: meta.freeze(),
            }],
            events: (0..60).map(|i| event(1000 + i / 3, i as u8)).collect(),
        }
    }

    fn header_second(r: &SimRecord) -> u32 {
        RecordHeader::parse(&r.body).unwrap().archive_timestamp
    }

    #[test]
    fn an_offset_moves_every_event_by_the_offset_plus_a_little_and_keeps_the_order() {
        let s = scenario();
        for offset in [7, -5] {
            let peer = s.with_archive_offset(offset).unwrap();
            assert_eq!(peer.metadata, s.metadata, "metadata unchanged");
            assert_eq!(peer.events.len(), s.events.len());
            assert!(
                peer.events
                    .windows(2)
                    .all(|w| w[0].archive_second <= w[1].archive_second)
            );
            let mut jitters = [0usize; ARCHIVE_JITTER_MAX as usize + 1];
            for r in &peer.events {
                assert_eq!(header_second(r), r.archive_second, "header and field agree");
                let original = s
                    .events
                    .iter()
                    .find(|o| o.payload() == r.payload())
                    .unwrap();
                let moved = i64::from(r.archive_second) - i64::from(original.archive_second);
                assert!(
                    (offset..=offset + i64::from(ARCHIVE_JITTER_MAX)).contains(&moved),
                    "offset {offset}: moved by {moved}"
                );
                assert_eq!(r.body[..8], original.body[..8]);
                assert_eq!(r.body[12..], original.body[12..]);
                jitters[(moved - offset) as usize] += 1;
            }
            assert!(
                jitters.iter().all(|&n| n > 0),
                "every jitter occurs: {jitters:?}"
            );
            // Deterministic.
            assert_eq!(peer.events, s.with_archive_offset(offset).unwrap().events);
        }
        assert_eq!(s.with_archive_offset(0).unwrap().events, s.events);
    }

    #[test]
    fn an_offset_past_the_epoch_is_refused_with_the_record_named() {
        let e = scenario().with_archive_offset(-1000).unwrap_err();
        assert!(
            e.contains("event 0") && e.contains("archive second 1000"),
            "{e}"
        );
        assert!(scenario().with_archive_offset(i64::from(u32::MAX)).is_err());
    }

    #[test]
    fn the_loop_period_leaves_room_for_the_jitter() {
        // 1000..=1019: 20 seconds.
        assert_eq!(scenario().loop_period(), 20 + u64::from(ARCHIVE_JITTER_MAX));
        assert_eq!(
            Scenario::default().loop_period(),
            1 + u64::from(ARCHIVE_JITTER_MAX)
        );
    }
}
