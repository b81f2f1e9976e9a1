//! Golden lines: one record each of 71, 400, 500 and 125, with the metadata its ids resolve
//! through, made by the simulator's generator from a fixed seed, and the exact CEF line the
//! built-in tables give for it. The inputs that matter are asserted first, so that a change of the
//! generator shows as such and not as a mapping change.

#[path = "support/mapping_run.rs"]
mod mapping_run;

use estreamer_cef::mapping::Mappings;
use estreamer_cef_sim::generate::{GenOptions, generate};
use mapping_run::{Mapped, map_records};
use serde_json::{Value as Json, json};

/// The one record of type `t` of the scenario of `seed`, mapped.
fn golden(t: u32, seed: u64) -> Mapped {
    let g = generate(&GenOptions {
        seed,
        record_types: Some(vec![t]),
        events_per_type: 1,
        ..GenOptions::default()
    });
    let records: Vec<_> = g.records().cloned().collect();
    let mut lines: Vec<Mapped> = map_records(&Mappings::builtin(), &records)
        .into_iter()
        .filter(|m| m.record_type == t)
        .collect();
    assert_eq!(lines.len(), 1);
    lines.remove(0)
}

/// Asserts decoded input fields (string blocks by their text).
fn assert_inputs(m: &Mapped, want: Json) {
    for (k, v) in want.as_object().unwrap() {
        let got = match &m.fields[k] {
            Json::Object(o) if o.contains_key("data") => o["data"].clone(),
            other => other.clone(),
        };
        assert_eq!(&got, v, "input {k} of the generated record changed");
    }
}

/// Connection statistics, FMC 6.0 layout (block 160): IPv4 initiator, IPv6 responder, 6 GB sent
/// by the initiator (clamped in `in`, exact in cn1), block action (severity 7), a DNS query with
/// `=` and a referrer with `=` in the query string.
#[test]
fn connection_71() {
    let m = golden(71, 11);
    assert_inputs(
        &m,
        json!({
            "blockType": 160,
            "initiatorIpAddress": "10.156.242.246",
            "responderIpAddress": "2600:1f18:cdb0:4cbe:8d1a:cd0d:11c6:613f",
            "initiatorPort": 35554,
            "ruleAction": 5,
            "initiatorTransmittedBytes": 6056295567u64,
            "responderTransmittedBytes": 3943,
            "firstPacketTimestamp": 1735708397,
        }),
    );
    assert_eq!(m.msgid, "CONNECTION");
    assert_eq!(
        m.line,
        "CEF:0|Cisco|Firepower|6.0|RNA:1003:1|CONNECTION STATISTICS|7|rt=1735708397000 \
         start=1735708397000 end=1735709413000 src=10.156.242.246 spt=35554 \
         c6a3=2600:1f18:cdb0:4cbe:8d1a:cd0d:11c6:613f c6a3Label=Destination IPv6 Address dpt=445 \
         proto=TCP act=Allow reason=Intrusion Block app=Firefox requestClientApplication=Unknown \
         suser=Unknown in=2147483647 out=3943 cn1=6056295567 cn1Label=initiatorBytes cn2=3943 \
         cn2Label=responderBytes cs1=Web Access Policy cs1Label=fwPolicy cs2=Trust-Traffic-414 \
         cs2Label=fwRule cs3=N/A cs3Label=ingressZone cs4=N/A cs4Label=egressZone cs5=Phishing \
         cs5Label=secIntelCategory deviceInboundInterface=N/A deviceOutboundInterface=N/A \
         dvchost=Defense Center deviceExternalId=0 dvcpid=180 externalId=1823 \
         request=https://api.github.com/client/index.html dhost=example.com \
         requestContext=https://files.—example.io/search?\\=q\\=lab&lang\\=en \
         destinationDnsDomain=update.googla\\=b c\\=deapis.com"
    );
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("in") && n.contains("6056295567")),
        "the clamp of `in` is reported: {:?}",
        m.notes
    );
}

/// A byte counter of 2^63 or more (only a corrupted or hostile record has one: 8 EiB) does not
/// fit ArcSight's Long `cn1`: it is written as the largest Long, 9223372036854775807, never
/// wrapped or cut silently, and the clamp is reported with the exact value (the README says so).
#[test]
fn connection_71_counter_above_2_pow_63_is_clamped_and_reported() {
    let g = generate(&GenOptions {
        seed: 11,
        record_types: Some(vec![71]),
        events_per_type: 1,
        ..GenOptions::default()
    });
    let mut records: Vec<_> = g.records().cloned().collect();
    let r = records.iter_mut().find(|r| r.record_type == 71).unwrap();
    let mut body = r.body.to_vec();
    let at = body
        .windows(8)
        .position(|w| w == 6056295567u64.to_be_bytes())
        .expect("initiatorTransmittedBytes in the record");
    body[at..at + 8].copy_from_slice(&u64::MAX.to_be_bytes());
    r.body = body.into();
    let m = map_records(&Mappings::builtin(), &records)
        .into_iter()
        .find(|m| m.record_type == 71)
        .unwrap();
    assert_eq!(m.fields["initiatorTransmittedBytes"], json!(u64::MAX));
    assert!(
        m.line.contains(" in=2147483647 ") && m.line.contains(" cn1=9223372036854775807 "),
        "{}",
        m.line
    );
    assert!(
        m.notes
            .iter()
            .any(|n| n.contains("`cn1`") && n.contains("18446744073709551615")),
        "the clamp of cn1 is reported with the exact value: {:?}",
        m.notes
    );
}

/// Intrusion event: rule message with a `|` (escaped in the header), rendered rule id 45417 for
/// rule 1:37696, priority 1 × impact 3 → severity 7, IPv6 source, microseconds in `rt`.
#[test]
fn intrusion_400() {
    let m = golden(400, 7);
    assert_inputs(
        &m,
        json!({
            "generatorId": 1,
            "ruleId": 37696,
            "priorityId": 1,
            "impact": 3,
            "blocked": 0,
            "sourceIpAddress": "2001:4860:6a3a:3906:0:d97f:77ec:e3e5",
            "eventSecond": 1735725588,
            "eventMicrosecond": 832016,
        }),
    );
    assert_eq!(m.msgid, "INTRUSION");
    assert_eq!(
        m.line,
        "CEF:0|Cisco|Firepower|6.0|INTRUSION:400:1:45417|SQL generic sql insert injection attempt - \
         GET parameter \\| lab|7|rt=1735725588832 start=1735724605000 \
         c6a2=2001:4860:6a3a:3906:0:d97f:77ec:e3e5 c6a2Label=Source IPv6 Address spt=5060 \
         dst=23.45.0.192 dpt=52034 proto=TCP act=Alerted cat=A Network Trojan was Detected \
         app=Unknown requestClientApplication=Unknown suser=Unknown cs1=Traffic File Policy \
         cs1Label=fwPolicy cs2=Monitor-Tunnel-432 cs2Label=fwRule cs3=outside cs3Label=ingressZone \
         cs4=N/A cs4Label=egressZone cs5=Traffic File Policy cs5Label=ipsPolicy cs6=45417 \
         cs6Label=ruleId cn1=10 cn1Label=vlan cn2=3 cn2Label=impact deviceInboundInterface=N/A \
         deviceOutboundInterface=N/A dvchost=Defense Center deviceExternalId=0 externalId=125274 \
         dvcpid=850"
    );
}

/// File event: a file name with non-ASCII text, a policy name and a user with `|`, a request
/// with `=`, threat score 74 → severity 7, an IPv4-compatible IPv6 destination (hex form).
#[test]
fn file_500() {
    let m = golden(500, 36);
    assert_inputs(
        &m,
        json!({
            "threatScore": 74,
            "direction": 0,
            "fileName": "très secret.doc",
            "fileSize": 131497488,
            "sourceIpAddress": "192.168.7.233",
            "destinationIpAddress": "::23.45.203.106",
        }),
    );
    assert_eq!(m.msgid, "FILE");
    assert_eq!(
        m.line,
        "CEF:0|Cisco|Firepower|6.0|File:500:1|File Event|7|rt=1735723426000 start=1735720640000 \
         src=192.168.7.233 spt=0 c6a3=::172d:cb6a c6a3Label=Destination IPv6 Address dpt=46456 \
         proto=TCP act=Custom Detection fname=très secret.doc fsize=131497488 cn1=131497488 \
         cn1Label=fileSize \
         fileHash=d8403d4ddaf3bdae12a95bd9c52f89879069012007390126299069feda5f73e8 \
         fileType=Unknown cs1=Remote Intrusion Policy | mail cs1Label=filePolicy cs2=Malware \
         cs2Label=disposition cs3=Custom signature cs3Label=speroDisposition cs4=EXPLOIT-KIT \
         Angler exploit kit landing page detected cs4Label=signature \
         request=http://example.com:8443/backup?id\\=41001&a\\=b%20c app=Unknown \
         requestClientApplication=HTTPS \" tunnel suser=carol | partner dvchost=922425 \
         deviceExternalId=922425 dvcpid=61815"
    );
}

/// AMP malware event: a Windows path with backslashes and `]`, a download (deviceDirection 0),
/// threat score 48 → severity 4, the file's creation time in milliseconds.
#[test]
fn malware_125() {
    let m = golden(125, 4);
    assert_inputs(
        &m,
        json!({
            "threatScore": 48,
            "direction": 1,
            "filePath": "C:\\Users\\jdoe\\Downloa]ds\\Übersicht.docx",
            "fileTimestamp": 1735749141,
            "user": "CORP\\dave",
            "action": 6,
        }),
    );
    assert_eq!(m.msgid, "MALWARE");
    assert_eq!(
        m.line,
        "CEF:0|Cisco|Firepower|6.0|FireAMP:125:1|FireAMP Event|4|rt=1735749425000 \
         start=1735748430000 src=10.88.226.76 spt=110 c6a3=2001:db8:263b:d888:7749:bc76:b3f3:aae9 \
         c6a3Label=Destination IPv6 Address dpt=0 proto=TCP act=Cloud Lookup Timeout \
         outcome=Scan Completed, No Detections   remote fname=très secret.doc \
         filePath=C:\\\\Users\\\\jdoe\\\\Downloa]ds\\\\Übersicht.docx fsize=164421576 cn1=164421576 \
         cn1Label=fileSize fileHash=dba008c192d46cd2718833a0419067605ad98ff4ecbadd3c0899a3216300fb02 \
         fileType=Unknown fileCreateTime=1735749141000 sproc=report Q3.xlsx \
         cs1=Partner Access Policy cs1Label=policy \
         cs2=PUA-ADWARE Win.Adware.Browsefox runtime traffic detected cs2Label=virusName \
         cs3=Malware cs3Label=disposition cs4=Malware cs4Label=retroDisposition \
         cs5=vpn partner session cs5Label=eventDescription \
         request=https://update.googleapis.com/core/index.html deviceDirection=0 app=Unknown \
         requestClientApplication=Unknown suser=CORP\\\\dave duser=Unknown dvchost=ftd-fra-01 \
         deviceExternalId=1 dvcpid=93"
    );
}
