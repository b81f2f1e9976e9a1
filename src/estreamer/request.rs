//! The client's requests: EventStreamRequest (type 2) and StreamingRequest (type 2049)
//! (reference 2.3, 2.5, 3, 4, 5).

use serde::{Deserialize, Serialize};

use super::message::{ESTREAMER_SERVICE, encode, kind};

/// Request flag bits that our configuration can set (reference section 3).
pub mod flag {
    pub const PACKETS: u32 = 1 << 0;
    pub const IMPACT_ALERTS: u32 = 1 << 5;
    /// Intrusion events with impact flags ("w/ NS Events w/ Impact Flags").
    pub const INTRUSION: u32 = 1 << 6;
    pub const METADATA_V4: u32 = 1 << 20;
    pub const ARCHIVE_TIMESTAMPS: u32 = 1 << 23;
    pub const EXTRA_DATA: u32 = 1 << 27;
    pub const EXTENDED: u32 = 1 << 30;
}

/// Where the stream starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartAt {
    /// The oldest data the FMC has.
    Genesis,
    /// Only new events.
    Now,
    /// A UNIX second (resuming from a bookmark).
    Second(u32),
}

impl StartAt {
    pub fn wire(self) -> u32 {
        match self {
            StartAt::Genesis => 0,
            StartAt::Now => 0xFFFF_FFFF,
            StartAt::Second(s) => s,
        }
    }
}

/// One entry of the extended request list: an event code and the version asked for. Versions pin
/// record layouts, so the default list is the one whose layouts the decoder's catalog holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventVersion {
    /// Event code (12 intrusion, 21 metadata, 31 correlation, 61 discovery, 71 connection,
    /// 91 user, 101 malware, 111 file, 131 impact alerts).
    pub event: u16,
    pub version: u16,
}

/// The newest versions the decoder's layouts support (eNcore 3.8.4's list).
pub const DEFAULT_EXTENDED_EVENTS: [EventVersion; 9] = [
    EventVersion {
        event: 12,
        version: 9,
    },
    EventVersion {
        event: 21,
        version: 4,
    },
    EventVersion {
        event: 31,
        version: 9,
    },
    EventVersion {
        event: 61,
        version: 11,
    },
    EventVersion {
        event: 71,
        version: 14,
    },
    EventVersion {
        event: 91,
        version: 7,
    },
    EventVersion {
        event: 101,
        version: 7,
    },
    EventVersion {
        event: 111,
        version: 6,
    },
    EventVersion {
        event: 131,
        version: 2,
    },
];

/// The EventStreamRequest message.
pub fn event_stream_request(start: StartAt, flags: u32) -> Vec<u8> {
    let mut body = [0u8; 8];
    body[..4].copy_from_slice(&start.wire().to_be_bytes());
    body[4..].copy_from_slice(&flags.to_be_bytes());
    encode(kind::EVENT_STREAM_REQUEST, &body)
}

/// The StreamingRequest for service 6667. Its length field is the whole body length, as eNcore
/// sends it and the FMC accepts (reference 2.5).
pub fn streaming_request(start: StartAt, flags: u32, events: &[EventVersion]) -> Vec<u8> {
    let body_len = 16 + 4 * (events.len() + 1);
    let mut body = Vec::with_capacity(body_len);
    body.extend_from_slice(&ESTREAMER_SERVICE.to_be_bytes());
    body.extend_from_slice(&(body_len as u32).to_be_bytes());
    body.extend_from_slice(&flags.to_be_bytes());
    body.extend_from_slice(&start.wire().to_be_bytes());
    for e in events {
        body.extend_from_slice(&e.version.to_be_bytes());
        body.extend_from_slice(&e.event.to_be_bytes());
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    encode(kind::STREAMING_REQUEST, &body)
}

/// A parsed EventStreamRequest (the simulator's side).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EventStreamRequest {
    pub initial_timestamp: u32,
    pub flags: u32,
}

impl EventStreamRequest {
    pub fn parse(body: &[u8]) -> Option<EventStreamRequest> {
        if body.len() < 8 {
            return None;
        }
        Some(EventStreamRequest {
            initial_timestamp: u32::from_be_bytes([body[0], body[1], body[2], body[3]]),
            flags: u32::from_be_bytes([body[4], body[5], body[6], body[7]]),
        })
    }
}

/// A parsed StreamingRequest (the simulator's side).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamingRequest {
    pub service_id: u32,
    pub flags: u32,
    pub initial_timestamp: u32,
    pub events: Vec<EventVersion>,
}

impl StreamingRequest {
    pub fn parse(body: &[u8]) -> Option<StreamingRequest> {
        if body.len() < 16 {
            return None;
        }
        let w = |i: usize| u32::from_be_bytes([body[i], body[i + 1], body[i + 2], body[i + 3]]);
        let mut events = Vec::new();
        let mut at = 16;
        while at + 4 <= body.len() {
            let version = u16::from_be_bytes([body[at], body[at + 1]]);
            let event = u16::from_be_bytes([body[at + 2], body[at + 3]]);
            if version == 0 && event == 0 {
                break;
            }
            events.push(EventVersion { event, version });
            at += 4;
        }
        Some(StreamingRequest {
            service_id: w(0),
            flags: w(8),
            initial_timestamp: w(12),
            events,
        })
    }
}

/// The FMC's words for a request (its log line, reference 3.1), so the simulator and our logs
/// speak the same language as the FMC administrators read.
pub fn describe_flags(flags: u32, events: &[EventVersion]) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if flags & flag::INTRUSION != 0 {
        parts.push("w/ NS Events");
    }
    for e in events {
        parts.push(match (e.event, e.version) {
            (12, 9) => "w/ NS 6.0 Events",
            (12, _) => "w/ NS Events (other version)",
            _ => continue,
        });
    }
    if flags & flag::PACKETS != 0 {
        parts.push("w/ Packets");
    }
    if flags & flag::EXTRA_DATA != 0 {
        parts.push("w/ Extra IDS Event data");
    }
    if flags & flag::METADATA_V4 != 0 {
        parts.push("w/ Metadata v4");
    }
    for e in events {
        if let Some(p) = match (e.event, e.version) {
            (91, 4) => Some("w/ RUA 5.2 Events"),
            (91, _) => Some("w/ RUA Events"),
            _ => None,
        } {
            parts.push(p);
        }
    }
    if flags & flag::IMPACT_ALERTS != 0 {
        parts.push("w/ Impact Alerts");
    }
    for e in events {
        if e.event == 131 {
            parts.push("w/ 5.3 Impact Alerts");
        }
    }
    if flags & flag::INTRUSION != 0 {
        parts.push("w/ Impact Flags");
    }
    // The FMC prints these in its own order, whatever the order of the list.
    for (code, words) in [
        (61, "w/ RNA 5.3 Events"),
        (71, "w/ RNA 6.0 Flow"),
        (31, "w/ Policy 5.4 Events"),
        (101, "w/ FireAMP 6.0 Events"),
        (111, "w/ Filelog 6.0 Events"),
    ] {
        if events.iter().any(|e| e.event == code) {
            parts.push(words);
        }
    }
    if flags & flag::ARCHIVE_TIMESTAMPS != 0 {
        parts.push("w/ Send archive timestamp");
    }
    if flags & flag::EXTENDED != 0 {
        parts.push("w/ Send Detail Request");
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(v: &[u8]) -> String {
        v.iter().map(|b| format!("{b:02x}")).collect()
    }

    const ALL: u32 = flag::PACKETS
        | flag::IMPACT_ALERTS
        | flag::INTRUSION
        | flag::METADATA_V4
        | flag::ARCHIVE_TIMESTAMPS
        | flag::EXTRA_DATA
        | flag::EXTENDED;

    #[test]
    fn event_stream_request_golden_vectors() {
        assert_eq!(ALL, 0x4890_0061);
        // C1: genesis.
        assert_eq!(
            hex(&event_stream_request(StartAt::Genesis, ALL)),
            "00010002000000080000000048900061"
        );
        // C3: diagnosis starts at "now".
        assert_eq!(
            hex(&event_stream_request(StartAt::Now, ALL)),
            "0001000200000008ffffffff48900061"
        );
        // D1: extended off.
        assert_eq!(
            hex(&event_stream_request(StartAt::Now, ALL & !flag::EXTENDED)),
            "0001000200000008ffffffff08900061"
        );
        // C4: bookmark.
        assert_eq!(
            hex(&event_stream_request(StartAt::Second(0x5ed7_f3b6), ALL)),
            "00010002000000085ed7f3b648900061"
        );
    }

    /// The list in the 3.5.4 capture: user events at version 4.
    fn capture_list() -> Vec<EventVersion> {
        let mut l = DEFAULT_EXTENDED_EVENTS.to_vec();
        l[5].version = 4;
        l
    }

    #[test]
    fn streaming_request_matches_the_capture_byte_for_byte() {
        // C5, captured from a real FMC session.
        assert_eq!(
            hex(&streaming_request(
                StartAt::Second(0x5ed7_f3b6),
                ALL,
                &capture_list()
            )),
            "000108010000003800001a0b00000038489000615ed7f3b60009000c000400150009001f000b003d000e00470004005b000700650006006f0002008300000000"
        );
        // C2' (the bookmark-0 capture rebuilt from C5: one hex digit was lost in transcription).
        assert_eq!(
            hex(&streaming_request(StartAt::Genesis, ALL, &capture_list())),
            "000108010000003800001a0b0000003848900061000000000009000c000400150009001f000b003d000e00470004005b000700650006006f0002008300000000"
        );
        // D3: our default list (user events at version 7).
        assert_eq!(
            hex(&streaming_request(
                StartAt::Genesis,
                ALL,
                &DEFAULT_EXTENDED_EVENTS
            )),
            "000108010000003800001a0b0000003848900061000000000009000c000400150009001f000b003d000e00470007005b000700650006006f0002008300000000"
        );
    }

    #[test]
    fn requests_parse_back() {
        let wire = streaming_request(StartAt::Second(42), ALL, &DEFAULT_EXTENDED_EVENTS);
        let r = StreamingRequest::parse(&wire[8..]).unwrap();
        assert_eq!(r.service_id, 6667);
        assert_eq!(r.initial_timestamp, 42);
        assert_eq!(r.events, DEFAULT_EXTENDED_EVENTS.to_vec());
        let e = EventStreamRequest::parse(&event_stream_request(StartAt::Now, ALL)[8..]).unwrap();
        assert_eq!(e.initial_timestamp, u32::MAX);
    }

    #[test]
    fn flags_are_described_in_the_fmc_words() {
        let d = describe_flags(ALL, &capture_list());
        assert_eq!(
            d,
            "w/ NS Events w/ NS 6.0 Events w/ Packets w/ Extra IDS Event data w/ Metadata v4 w/ RUA 5.2 Events \
             w/ Impact Alerts w/ 5.3 Impact Alerts w/ Impact Flags w/ RNA 5.3 Events w/ RNA 6.0 Flow \
             w/ Policy 5.4 Events w/ FireAMP 6.0 Events w/ Filelog 6.0 Events w/ Send archive timestamp \
             w/ Send Detail Request"
        );
    }
}
