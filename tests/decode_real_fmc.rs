//! Records framed the way a real FMC sends them, not the way our simulator does: a connection
//! event (71, block 160 of FMC 6.0) with a zero event time in its discovery header, `hasIpv6` = 1
//! with an all-zero address after it, IPv4-mapped initiator and responder addresses, and string
//! blocks whose text ends in a NUL; in the same MessageBundle a sensor metadata record (123)
//! without an archive timestamp and an extra-data record (110) with a zero event time.
//!
//! What a user sees must not show the zeros as times: `decode` gives every event record its
//! resolved event time (the archive timestamp here) and says where it came from; the CEF time
//! keys are real times; the HA identity of the connection does not depend on the peer's archive
//! timestamp.

use std::process::Command;

use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef::delivery::family::families;
use serde_json::{Value as Json, json};

const ARCHIVE: u32 = 1_591_006_830; // 2020-06-01T10:20:30Z
const FIRST_PACKET: u32 = 1_591_006_801;
const LAST_PACKET: u32 = 1_591_006_829;

/// Big-endian writer for record bytes.
#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn u8(&mut self, v: u8) -> &mut W {
        self.0.push(v);
        self
    }
    fn u16(&mut self, v: u16) -> &mut W {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(&mut self, v: u32) -> &mut W {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(&mut self, v: u64) -> &mut W {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn raw(&mut self, b: &[u8]) -> &mut W {
        self.0.extend_from_slice(b);
        self
    }
    fn zeros(&mut self, n: usize) -> &mut W {
        self.0.resize(self.0.len() + n, 0);
        self
    }
    /// An IPv4 address mapped into IPv6 (`::ffff:a.b.c.d`), as FMCs write IPv4 in 16 bytes.
    fn mapped(&mut self, v4: [u8; 4]) -> &mut W {
        self.zeros(10).raw(&[0xff, 0xff]).raw(&v4)
    }
    /// A series-1 string block (type 0) holding `text` as the FMC writes it: NUL-terminated.
    fn string_block(&mut self, text: &str) -> &mut W {
        let data = [text.as_bytes(), b"\0"].concat();
        self.u32(0).u32(8 + data.len() as u32).raw(&data)
    }
}

/// The discovery event header of a real connection event: zero event time, `hasIpv6` = 1 and an
/// all-zero IPv6 host address after the 40 bytes.
fn discovery_header(w: &mut W) {
    w.u32(6) // deviceId
        .u32(0) // legacy IPv4 address
        .raw(&[0x00, 0x50, 0x56, 0x9a, 0x11, 0x22]) // MAC
        .u8(1) // hasIpv6
        .u8(0)
        .u32(0) // eventSecond
        .u32(0) // eventMicrosecond
        .u32(1003) // eventType: connection
        .u32(1) // eventSubtype
        .u32(0) // file number
        .u32(0) // file position
        .zeros(16); // the host's IPv6 address: all zero
}

/// A connection event with block 160 (FMC 6.0). `first_packet` varies the connection.
fn connection(first_packet: u32) -> Vec<u8> {
    let mut b = W::default();
    b.u32(6) // deviceId
        .zeros(16 * 4) // zones and interfaces: none
        .mapped([10, 1, 2, 3])
        .mapped([192, 0, 2, 80])
        .raw(&[0x43; 16]) // policyRevision
        .u32(268_434_435) // ruleId
        .u16(1) // ruleAction
        .u32(0) // ruleReason
        .u16(51_514)
        .u16(443)
        .u16(0) // tcpFlag
        .u8(6) // TCP
        .zeros(16) // netflowSource
        .u16(777) // instanceId
        .u16(72) // connectionCounter
        .u32(first_packet)
        .u32(LAST_PACKET)
        .u64(12)
        .u64(10)
        .u64(1_400)
        .u64(9_000)
        .u32(0) // userId
        .u32(1122) // applicationId
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .string_block("https://intranet.example/login")
        .string_block("WS-0042")
        .string_block("")
        .zeros(4 * 8) // monitor rules
        .u8(0) // securityIntelligenceSourceDestination
        .u8(0)
        .u16(0)
        .u16(0)
        .u16(0)
        .u16(0)
        .u16(0)
        .u32(0)
        .u32(0)
        .u16(0)
        .u16(0)
        .u8(0)
        .u8(0)
        .u8(0)
        .u8(0)
        .zeros(16) // securityContext
        .u16(0) // vlanId
        .string_block("intranet.example")
        .string_block("Mozilla/5.0")
        .string_block("")
        .zeros(20 + 16) // certificate fingerprint, SSL policy
        .u32(0)
        .u16(0)
        .u8(0)
        .u32(0)
        .u16(0)
        .u16(0)
        .u16(0)
        .u32(0)
        .u32(0)
        .u64(0)
        .string_block("")
        .u32(0)
        .zeros(32)
        .u8(0)
        .zeros(20)
        .u8(0)
        .zeros(16) // network analysis policy
        .u32(0)
        .u32(0)
        .zeros(16) // locationIpv6
        .u32(0)
        .string_block("")
        .u16(0)
        .u16(0)
        .u32(0)
        .zeros(16) // sinkhole
        .u32(0) // securityIntelligenceList1: no list
        .u32(0);
    let mut r = W::default();
    discovery_header(&mut r);
    r.u32(160).u32(8 + b.0.len() as u32).raw(&b.0);
    r.0
}

/// An EventData body: record type, length, the archive timestamp pair when given, the record.
fn event_data(record_type: u32, archive: Option<u32>, record: &[u8]) -> Vec<u8> {
    let mut w = W::default();
    w.u32(record_type).u32(record.len() as u32);
    if let Some(a) = archive {
        w.u32(a).u32(0);
    }
    w.raw(record);
    w.0
}

fn sensor_metadata() -> Vec<u8> {
    let name = b"fw-edge-1\0";
    let mut w = W::default();
    w.u32(6).u32(name.len() as u32).raw(name);
    event_data(123, None, &w.0)
}

fn extra_data() -> Vec<u8> {
    let blob = b"203.0.113.9";
    let mut b = W::default();
    b.u32(6).u32(125_274).u32(0).u32(1); // deviceId, eventId, eventSecond 0, type
    b.u32(10).u32(8 + blob.len() as u32).raw(blob);
    let mut w = W::default();
    w.u32(4).u32(8 + b.0.len() as u32).raw(&b.0);
    event_data(110, Some(ARCHIVE), &w.0)
}

/// One MessageBundle (4002) holding the metadata record, the connection and the extra data.
fn stream() -> Vec<u8> {
    let mut body = W::default();
    body.u32(1).u32(1); // connection id, sequence number
    for item in [
        sensor_metadata(),
        event_data(71, Some(ARCHIVE), &connection(FIRST_PACKET)),
        extra_data(),
    ] {
        body.u32(4).u32(item.len() as u32).raw(&item);
    }
    let mut m = W::default();
    m.u16(1).u16(4002).u32(body.0.len() as u32).raw(&body.0);
    m.0
}

fn run_decode(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("capture.bin");
    std::fs::write(&file, stream()).unwrap();
    let config = dir.path().join("empty.toml");
    std::fs::write(&config, "").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef"))
        .arg("-c")
        .arg(&config)
        .arg("decode")
        .args(args)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn decode_resolves_the_event_time_of_every_event_record_and_says_from_where() {
    let records: Vec<Json> = run_decode(&[])
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "{records:#?}");
    let (meta, conn, extra) = (&records[0], &records[1], &records[2]);

    // The metadata record has no archive timestamp and no event time.
    assert_eq!(meta["recordType"], json!(123));
    assert_eq!(meta["archiveTimestamp"], json!(0));
    assert_eq!(meta["name"], json!("fw-edge-1"), "NUL removed: {meta}");
    for k in [
        "eventSecond",
        "eventMicrosecond",
        "eventDateTime",
        "eventTimeSource",
    ] {
        assert!(
            meta["@computed"].get(k).is_none(),
            "metadata with {k}: {meta}"
        );
    }

    // The connection: its own time is 0, so the archive timestamp, and said so.
    assert_eq!(conn["recordType"], json!(71));
    assert_eq!(conn["blockType"], json!(160));
    assert_eq!(conn["eventSecond"], json!(0));
    assert_eq!(conn["archiveTimestamp"], json!(ARCHIVE));
    let c = &conn["@computed"];
    assert_eq!(c["eventSecond"], json!(ARCHIVE), "{c}");
    assert_eq!(c["eventMicrosecond"], json!(0));
    assert_eq!(c["eventDateTime"], json!("2020-06-01T10:20:30.000000Z"));
    assert_eq!(c["eventTimeSource"], json!("archiveTimestamp"));
    assert_eq!(c["sensor"], json!("fw-edge-1"));
    // IPv4-mapped addresses read as IPv4; the NUL-terminated strings without their NUL.
    assert_eq!(conn["initiatorIpAddress"], json!("10.1.2.3"));
    assert_eq!(conn["responderIpAddress"], json!("192.0.2.80"));
    assert_eq!(
        conn["clientUrl"]["data"],
        json!("https://intranet.example/login")
    );
    assert_eq!(conn["netbios"]["data"], json!("WS-0042"));
    assert_eq!(conn["firstPacketTimestamp"], json!(FIRST_PACKET));
    // Security-intelligence source/destination 0 is eNcore's "N/A", and list 0 is shown as
    // the id, not combined with the policy.
    assert_eq!(c["securityIntelligenceIp"], json!("N/A"));
    assert_eq!(c["securityIntelligenceList1"], json!("0"));

    // Extra data with a zero time of its own.
    assert_eq!(extra["recordType"], json!(110));
    assert_eq!(extra["@computed"]["eventSecond"], json!(ARCHIVE));
    assert_eq!(
        extra["@computed"]["eventTimeSource"],
        json!("archiveTimestamp")
    );
}

#[test]
fn cef_time_keys_are_never_zero_or_an_unset_time() {
    let text = run_decode(&["--cef"]);
    let lines: Vec<(&str, &str)> = text.lines().map(|l| l.split_once('\t').unwrap()).collect();
    assert_eq!(lines.len(), 2, "{text}");
    let pairs = |line: &str| -> Vec<(String, String)> {
        let ext = line.splitn(8, '|').nth(7).unwrap();
        ext.split(' ')
            .filter_map(|p| p.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let conn = pairs(lines[0].1);
    let get = |p: &[(String, String)], k: &str| {
        p.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no {k} in {p:?}"))
    };
    assert_eq!(get(&conn, "rt"), (FIRST_PACKET as u64 * 1000).to_string());
    assert_eq!(
        get(&conn, "start"),
        (FIRST_PACKET as u64 * 1000).to_string()
    );
    assert_eq!(get(&conn, "end"), (LAST_PACKET as u64 * 1000).to_string());
    assert_eq!(get(&conn, "src"), "10.1.2.3");
    assert_eq!(get(&conn, "dvchost"), "fw-edge-1");
    let extra = pairs(lines[1].1);
    assert_eq!(get(&extra, "rt"), (ARCHIVE as u64 * 1000).to_string());
    // No time key of any line is 0 or before the FMC existed.
    for (k, v) in conn.iter().chain(&extra) {
        if ["rt", "start", "end", "deviceCustomDate1", "fileCreateTime"].contains(&k.as_str()) {
            let ms: u64 = v.parse().unwrap();
            assert!(ms >= 1_000_000_000_000, "{k}={v}");
        }
    }
}

#[test]
fn the_ha_identity_of_a_real_connection_ignores_the_zero_time_and_the_peer() {
    let mut decoder = Decoder::new(catalog());
    let f = families();
    let mut id = |archive: u32, first_packet: u32| {
        let body = event_data(71, Some(archive), &connection(first_packet));
        let rec = decoder.decode(&body).unwrap();
        assert_eq!(f.family_of(&rec), Some("connection"));
        f.identity(&rec)
    };
    // The other peer of the pair stamps another archive time on the same connection.
    assert_eq!(id(ARCHIVE, FIRST_PACKET), id(ARCHIVE + 7, FIRST_PACKET));
    // Two connections whose only difference is a time the FMC did set are two events, although
    // both have the same (zero) event time in the discovery header.
    assert_ne!(id(ARCHIVE, FIRST_PACKET), id(ARCHIVE, FIRST_PACKET + 1));
}
