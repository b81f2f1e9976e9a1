//! Golden decoding tests with hand-built bytes: each record is written field by field below, in
//! the order and widths of the reference's layout (section 7), and the decoded values are checked
//! one by one. Independent of the simulator's encoder.

#[path = "support/mapping_run.rs"]
mod mapping_run;

use estreamer_cef::decode::json::record_fields;
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef::mapping::{LoadOptions, Mappings};
use estreamer_cef::metadata::{Cache, Limits};
use serde_json::{Value, json};

/// Writes wire fields, big-endian.
#[derive(Default, Clone)]
struct B(Vec<u8>);

impl B {
    fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    fn zeros(self, n: usize) -> Self {
        self.raw(&vec![0; n])
    }
    fn uuid(self, s: &str) -> Self {
        let hex: String = s.chars().filter(|c| *c != '-').collect();
        self.raw(&unhex(&hex))
    }
    /// An IPv4 address in a 16-byte field (IPv4-mapped IPv6).
    fn ip4in6(self, a: [u8; 4]) -> Self {
        self.raw(&[0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff])
            .raw(&a)
    }
    fn ip6(self, s: &str) -> Self {
        let a: std::net::Ipv6Addr = s.parse().unwrap();
        self.raw(&a.octets())
    }
    /// A series-1 block 0 (string): type 0, length 8 + n, then the bytes.
    fn string(self, s: &str) -> Self {
        self.u32(0).u32(8 + s.len() as u32).raw(s.as_bytes())
    }
    /// A block with a header: type, length (8 + body), body.
    fn block(self, t: u32, body: B) -> Self {
        self.u32(t).u32(8 + body.0.len() as u32).raw(&body.0)
    }
    /// A list block: type 11, length (8 + items), items.
    fn list(self, items: &[B]) -> Self {
        let n: usize = items.iter().map(|i| i.0.len()).sum();
        let mut b = self.u32(11).u32(8 + n as u32);
        for i in items {
            b = b.raw(&i.0);
        }
        b
    }
    /// The 40-byte discovery header with an IPv6 host address (hasIpv6 = 1). Its arguments are
    /// the header's fields, in wire order.
    #[allow(clippy::too_many_arguments)]
    fn discovery(
        self,
        device: u32,
        mac: [u8; 6],
        second: u32,
        usec: u32,
        ty: u32,
        sub: u32,
        ip: &str,
    ) -> Self {
        self.u32(device)
            .u32(0) // legacy IPv4, unused when hasIpv6 = 1
            .raw(&mac)
            .u8(1) // hasIpv6
            .u8(0)
            .u32(second)
            .u32(usec)
            .u32(ty)
            .u32(sub)
            .u32(0) // file number
            .u32(0) // file position
            .ip6(ip)
    }
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// An EventData body: record header (with archive timestamp when `archive` > 0) + data.
fn record(t: u32, archive: u32, data: B) -> Vec<u8> {
    let mut b = B::default().u32(t).u32(data.0.len() as u32);
    if archive > 0 {
        b = b.u32(archive).u32(0);
    }
    b.raw(&data.0).0
}

fn decode(body: &[u8]) -> Value {
    let mut d = Decoder::new(catalog());
    let rec = d.decode(body).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(rec.trailing, 0, "the layout must consume the whole record");
    Value::Object(record_fields(&rec))
}

fn check(v: &Value, expected: &[(&str, Value)]) {
    for (path, want) in expected {
        let got = path
            .split('.')
            .try_fold(v, |v, k| v.get(k))
            .unwrap_or(&Value::Null);
        assert_eq!(got, want, "field {path}");
    }
}

const MAC: [u8; 6] = [0x00, 0x50, 0x56, 0x8a, 0x3c, 0x01];

#[test]
fn intrusion_event_400() {
    // Series-2 block 60, 282 bytes (reference 7.4).
    let blk = B::default()
        .u32(3) // deviceId
        .u32(195430) // eventId
        .u32(1_700_000_000) // eventSecond
        .u32(123_456) // eventMicrosecond
        .u32(2_000_419) // ruleId
        .u32(1) // generatorId
        .u32(7) // ruleRevision
        .u32(29) // classificationId
        .u32(1) // priorityId
        .ip4in6([192, 0, 2, 10]) // sourceIpAddress
        .ip6("2001:db8::7") // destinationIpAddress
        .u16(51515) // sourcePortOrIcmpType
        .u16(80) // destinationPortOrIcmpType
        .u8(6) // ipProtocolId
        .u8(0x18) // impactFlags
        .u8(1) // impact
        .u8(1) // blocked
        .u32(0) // mplsLabel
        .u16(101) // vlanId
        .u16(0) // pad
        .uuid("11111111-2222-3333-4444-555555555555") // policyUuid
        .u32(42) // userId
        .u32(0) // webApplicationId
        .u32(638) // clientApplicationId
        .u32(676) // applicationId
        .u32(268_435_461) // accessControlRuleId
        .uuid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee") // accessControlPolicyUuid
        .uuid("00000000-0000-0000-0000-000000000001") // interfaceIngressUuid
        .uuid("00000000-0000-0000-0000-000000000002") // interfaceEgressUuid
        .uuid("00000000-0000-0000-0000-000000000003") // securityZoneIngressUuid
        .uuid("00000000-0000-0000-0000-000000000004") // securityZoneEgressUuid
        .u32(1_699_999_990) // connectionTimestamp
        .u16(9) // connectionInstanceId
        .u16(17) // connectionCounter
        .u16(840) // sourceCountry
        .u16(276) // destinationCountry
        .u16(0) // iocNumber
        .zeros(16) // securityContext
        .zeros(20) // sslCertificateFingerprint
        .u16(0) // sslActualAction
        .u16(0) // sslFlowStatus
        .uuid("99999999-8888-7777-6666-555555555555") // networkAnalysisPolicyUuid
        .u32(200); // httpResponse
    let body = record(400, 1_700_000_005, B::default().block(60, blk));
    assert_eq!(body.len(), 16 + 282);
    let v = decode(&body);
    check(
        &v,
        &[
            ("recordType", json!(400)),
            ("recordLength", json!(282)),
            ("archiveTimestamp", json!(1_700_000_005)),
            ("blockType", json!(60)),
            ("blockLength", json!(282)),
            ("deviceId", json!(3)),
            ("eventId", json!(195430)),
            ("eventMicrosecond", json!(123_456)),
            ("ruleId", json!(2_000_419)),
            ("generatorId", json!(1)),
            ("sourceIpAddress", json!("192.0.2.10")),
            ("destinationIpAddress", json!("2001:db8::7")),
            ("sourcePortOrIcmpType", json!(51515)),
            ("destinationPortOrIcmpType", json!(80)),
            ("impactFlags", json!(0x18)),
            ("blocked", json!(1)),
            ("vlanId", json!(101)),
            ("policyUuid", json!("11111111-2222-3333-4444-555555555555")),
            ("accessControlRuleId", json!(268_435_461)),
            (
                "interfaceEgressUuid",
                json!("00000000-0000-0000-0000-000000000002"),
            ),
            ("sourceCountry", json!(840)),
            ("securityContext", json!("00000000000000000000000000000000")),
            (
                "sslCertificateFingerprint",
                json!("0000000000000000000000000000000000000000"),
            ),
            (
                "networkAnalysisPolicyUuid",
                json!("99999999-8888-7777-6666-555555555555"),
            ),
            ("httpResponse", json!(200)),
        ],
    );
}

/// A connection event (71) with block 163; `ssl` = (cipher suite, flow messages, flow flags).
fn connection_163(ssl: (u16, u32, u64)) -> Vec<u8> {
    // Discovery header, then series-1 block 163 (FMC 6.1+), reference 7.4.
    let blk = B::default()
        .u32(5) // deviceId
        .uuid("00000000-0000-0000-0000-00000000000a") // ingressZone
        .uuid("00000000-0000-0000-0000-00000000000b") // egressZone
        .uuid("00000000-0000-0000-0000-00000000000c") // ingressInterface
        .uuid("00000000-0000-0000-0000-00000000000d") // egressInterface
        .ip4in6([10, 1, 2, 3]) // initiatorIpAddress
        .ip6("2001:db8:1::80") // responderIpAddress
        .ip4in6([203, 0, 113, 9]) // originalClientIpAddress
        .uuid("12345678-1234-1234-1234-123456789abc") // policyRevision
        .u32(268_435_456) // ruleId
        .u32(0) // tunnelRuleId
        .u16(1) // ruleAction
        .u32(16) // ruleReason
        .u16(0) // initiatorPort: a zero is a value
        .u16(443) // responderPort
        .u16(0x18) // tcpFlag
        .u8(6) // protocol
        .zeros(16) // netflowSource
        .u16(777) // instanceId
        .u16(72) // connectionCounter
        .u32(1_700_000_000) // firstPacketTimestamp
        .u32(1_700_000_060) // lastPacketTimestamp
        .u64(10) // initiatorTransmittedPackets
        .u64(20) // responderTransmittedPackets
        .u64(3_000_000_000) // initiatorTransmittedBytes (above 2^31)
        .u64(u64::MAX) // responderTransmittedBytes
        .u64(0) // initiatorPacketsDropped
        .u64(0) // responderPacketsDropped
        .u64(0) // initiatorBytesDropped
        .u64(0) // responderBytesDropped
        .zeros(16) // qosAppliedInterface
        .u32(0) // qosRuleId
        .u32(7711) // userId
        .u32(676) // applicationId
        .u32(5) // urlCategory
        .u32(3) // urlReputation
        .u32(638) // clientApplicationId
        .u32(929) // webApplicationId
        .string("https://h.example/p?a=1&b=2") // clientUrl
        .string("") // netbios (empty string block: length 8)
        .string("1.2.3") // clientApplicationVersion
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0)
        .u32(0) // monitorRule1..8
        .u8(0) // securityIntelligenceSourceDestination
        .u8(0) // securityIntelligenceLayer
        .u16(0) // fileEventCount
        .u16(0) // intrusionEventCount
        .u16(840) // initiatorCountry
        .u16(276) // responderCountry
        .u16(0) // originalClientCountry
        .u16(0) // iocNumber
        .u32(0) // sourceAutonomousSystem
        .u32(0) // destinationAutonomousSystem
        .u16(0) // snmpIn
        .u16(0) // snmpOut
        .u8(0) // sourceTos
        .u8(0) // destinationTos
        .u8(0) // sourceMask
        .u8(0) // destinationMask
        .zeros(16) // securityContext (uuid in 163)
        .u16(0) // vlanId
        .string("h.example") // referencedHost
        .string("curl/8.5.0") // userAgent
        .string("") // httpReferrer
        .zeros(20) // sslCertificateFingerprint
        .zeros(16) // sslPolicyId
        .u32(0) // sslRuleId
        .u16(ssl.0) // sslCipherSuite
        .u8(0) // sslVersion
        .u32(0) // sslServerCertificateStatus
        .u16(0) // sslActualAction
        .u16(0) // sslExpectedAction
        .u16(0) // sslFlowStatus
        .u32(0) // sslFlowError
        .u32(ssl.1) // sslFlowMessages
        .u64(ssl.2) // sslFlowFlags
        .string("h.example") // sslServerName
        .u32(0) // sslUrlCategory
        .zeros(32) // sslSessionId
        .u8(0) // sslSessionIdLength
        .zeros(20) // sslTicketId
        .u8(0) // sslTicketIdLength
        .zeros(16) // networkAnalysisPolicyRevision
        .u32(0) // endpointProfileId
        .u32(0) // securityGroupId
        .zeros(16) // locationIpv6
        .u32(200) // httpResponse
        .string("h.example") // dnsQuery
        .u16(1) // dnsRecordType
        .u16(0) // dnsResponseType
        .u32(300) // dnsTtl
        .zeros(16) // sinkholeUuid
        .u32(0) // securityIntelligenceList1
        .u32(0); // securityIntelligenceList2
    let data = B::default()
        .discovery(5, MAC, 1_700_000_061, 5, 1003, 1, "::ffff:10.1.2.3")
        .block(163, blk);
    record(71, 1_700_000_070, data)
}

#[test]
fn connection_statistics_71_with_block_163() {
    let v = decode(&connection_163((0, 0, 0)));
    check(
        &v,
        &[
            ("recordType", json!(71)),
            ("macAddress", json!("00:50:56:8a:3c:01")),
            ("hostIpAddr", json!("10.1.2.3")),
            ("eventType", json!(1003)),
            ("blockType", json!(163)),
            ("deviceId", json!(5)),
            ("initiatorIpAddress", json!("10.1.2.3")),
            ("responderIpAddress", json!("2001:db8:1::80")),
            ("originalClientIpAddress", json!("203.0.113.9")),
            (
                "policyRevision",
                json!("12345678-1234-1234-1234-123456789abc"),
            ),
            ("initiatorPort", json!(0)),
            ("responderPort", json!(443)),
            ("protocol", json!(6)),
            ("connectionCounter", json!(72)),
            ("initiatorTransmittedBytes", json!(3_000_000_000u64)),
            ("responderTransmittedBytes", json!(u64::MAX)),
            ("clientUrl.data", json!("https://h.example/p?a=1&b=2")),
            ("netbios.blockLength", json!(8)),
            ("netbios.data", json!("")),
            ("userAgent.data", json!("curl/8.5.0")),
            ("dnsTtl", json!(300)),
            ("securityIntelligenceList2", json!(0)),
        ],
    );
}

/// A file event (500) with block 56 for the file of SHA-256 `sha`.
fn file_500(sha: [u8; 32]) -> Vec<u8> {
    // Series-2 block 56.
    let blk = B::default()
        .u32(2) // deviceId
        .u16(9) // connectionInstance
        .u16(17) // connectionCounter
        .u32(1_700_000_000) // connectionTimestamp
        .u32(1_700_000_003) // fileEventTimestamp
        .ip4in6([10, 0, 0, 5]) // sourceIpAddress
        .ip4in6([198, 51, 100, 7]) // destinationIpAddress
        .u8(3) // disposition (malware)
        .u8(2) // speroDisposition
        .u8(0) // fileStorageStatus
        .u8(0) // fileAnalysisStatus
        .u8(0) // localMalwareAnalysisStatus
        .u8(0) // archiveFileStatus
        .u8(87) // threatScore
        .u8(2) // action (block)
        .raw(&sha) // shaHash
        .u32(21) // fileTypeId
        .string("invoice=1.pdf") // fileName
        .u64(123_456) // fileSize
        .u8(1) // direction
        .u32(676) // applicationId
        .u32(0) // userId
        .string("http://h.example/dl?f=invoice.pdf") // uri
        .string("") // signature
        .u16(49152) // sourcePort
        .u16(80) // destinationPort
        .u8(6) // protocol
        .uuid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee") // accessControlPolicyUuid
        .u16(840) // sourceCountry
        .u16(276) // destinationCountry
        .u32(0) // webApplicationId
        .u32(638) // clientApplicationId
        .zeros(16) // securityContext
        .zeros(20) // sslCertificateFingerprint
        .u16(0) // sslActualAction
        .u16(0) // sslFlowStatus
        .string("") // archiveSha
        .string("") // archiveName
        .u8(0) // archiveDepth
        .u32(200); // httpResponse
    record(500, 1_700_000_009, B::default().block(56, blk))
}

#[test]
fn file_event_500() {
    let v = decode(&file_500([0xab; 32]));
    check(
        &v,
        &[
            ("fileEventTimestamp", json!(1_700_000_003)),
            ("destinationIpAddress", json!("198.51.100.7")),
            ("threatScore", json!(87)),
            ("shaHash", json!("ab".repeat(32))),
            ("fileName.data", json!("invoice=1.pdf")),
            ("fileSize", json!(123_456)),
            ("uri.data", json!("http://h.example/dl?f=invoice.pdf")),
            ("signature.data", json!("")),
            ("destinationPort", json!(80)),
            ("httpResponse", json!(200)),
        ],
    );
}

/// An AMP malware event (125) with block 62: its detection name and file SHA-256 (hex text).
fn malware_125(detection: &str, sha: &str) -> Vec<u8> {
    // Series-2 block 62.
    let blk = B::default()
        .uuid("0f0f0f0f-0000-0000-0000-000000000001") // agentUuid
        .uuid("0f0f0f0f-0000-0000-0000-000000000002") // cloudUuid
        .u32(1_700_000_100) // malwareEventTimestamp
        .u32(1_090_519_054) // eventTypeId ("Threat Detected")
        .u32(1) // eventSubtypeId
        .u8(0) // detectorId
        .string(detection) // detectionName
        .string("bob") // user
        .string("setup.exe") // fileName
        .string("C:\\Users\\bob\\setup.exe") // filePath
        .string(sha) // fileShaHash
        .u32(4096) // fileSize
        .u32(7) // fileType
        .u32(1_699_999_000) // fileTimestamp
        .string("explorer.exe") // parentFileName
        .string("") // parentShaHash
        .string("Threat detected: W32.Test") // eventDescription
        .u32(1) // deviceId
        .u16(3) // connectionInstance
        .u16(4) // connectionCounter
        .u32(1_700_000_090) // connectionEventTimestamp
        .u8(1) // direction
        .ip4in6([10, 0, 0, 9]) // sourceIpAddress
        .ip6("2001:db8::9") // destinationIpAddress
        .u32(676) // applicationId
        .u32(42) // userId
        .uuid("aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee") // accessControlPolicyUuid
        .u8(3) // disposition
        .u8(1) // retroDisposition
        .string("http://h.example/setup.exe") // uri
        .u16(49153) // sourcePort
        .u16(80) // destinationPort
        .u16(840) // sourceCountry
        .u16(0) // destinationCountry
        .u32(0) // webApplicationId
        .u32(638) // clientApplicationId
        .u8(4) // action
        .u8(6) // protocol
        .u8(95) // threatScore
        .u16(0) // iocNumber
        .zeros(16) // securityContext
        .zeros(20) // sslCertificateFingerprint
        .u16(0) // sslActualAction
        .u16(0) // sslFlowStatus
        .string("") // archiveSha
        .string("") // archiveName
        .u8(0) // archiveDepth
        .u32(0); // httpResponse
    record(125, 1_700_000_101, B::default().block(62, blk))
}

#[test]
fn malware_event_125() {
    let v = decode(&malware_125("W32.Test", &"c".repeat(64)));
    check(
        &v,
        &[
            ("eventTypeId", json!(1_090_519_054)),
            ("detectionName.data", json!("W32.Test")),
            ("filePath.data", json!("C:\\Users\\bob\\setup.exe")),
            ("fileShaHash.data", json!("c".repeat(64))),
            ("destinationIpAddress", json!("2001:db8::9")),
            ("threatScore", json!(95)),
            ("action", json!(4)),
        ],
    );
}

#[test]
fn discovery_new_tcp_server_11_and_legacy_ipv4_header() {
    // Discovery header with hasIpv6 = 0 (the legacy IPv4 field is the host address), then a named
    // series-1 block 103 with a list of block 117 items.
    let info = B::default().block(
        117,
        B::default()
            .u32(676) // applicationId
            .string("Apache") // vendor
            .string("2.4.58") // version
            .u32(1_700_000_000) // lastUsed
            .u32(0) // sourceType
            .u32(0) // sourceId
            .list(&[]), // subServers
    );
    let server = B::default()
        .u16(443) // port
        .u32(12) // hits
        .u32(1_700_000_000) // lastUsed
        .list(&[info]) // serverInformation
        .u32(90) // confidence
        .list(&[B::default().block(123, B::default().u32(929))]); // webApplication
    let data = B::default()
        .u32(4) // deviceId
        .raw(&[192, 0, 2, 44]) // legacy IPv4
        .raw(&MAC)
        .u8(0) // hasIpv6 = 0
        .u8(0)
        .u32(1_700_000_200)
        .u32(0)
        .u32(1000)
        .u32(2)
        .u32(0)
        .u32(0)
        .block(103, server);
    let v = decode(&record(11, 1_700_000_201, data));
    check(
        &v,
        &[
            ("hostIpAddr", json!("192.0.2.44")),
            ("eventType", json!(1000)),
            ("eventSubtype", json!(2)),
            ("hostServer.port", json!(443)),
            ("hostServer.confidence", json!(90)),
        ],
    );
    let items = &v["hostServer"]["serverInformation"]["items"];
    assert_eq!(items.as_array().unwrap().len(), 1);
    assert_eq!(items[0]["vendor"]["data"], json!("Apache"));
    assert_eq!(items[0]["subServers"]["items"], json!([]));
    assert_eq!(
        v["hostServer"]["webApplication"]["items"][0]["applicationId"],
        json!(929)
    );
    // The metadata cache resolves the event description by (eventType, eventSubtype).
    let mut d = Decoder::new(catalog());
    let cache = Cache::new(Limits::default());
    let data2 = record(
        19,
        1_700_000_300,
        B::default().discovery(4, MAC, 1_700_000_300, 0, 1001, 7, "2001:db8::44"),
    );
    let rec = d.decode(&data2).unwrap();
    assert_eq!(
        cache.resolve_all(&rec)["eventDescription"],
        json!("Host Timeout")
    );
}

#[test]
fn user_login_95_with_vpn_session_list() {
    // Named series-1 block 167 (user information), its strings, and a list of block 166 items,
    // once without item headers (eNcore's table) and once with them (what an FMC may send).
    let session = B::default()
        .u32(3132) // index
        .u8(3) // vpnType
        .string("GP-Staff") // groupPolicy
        .string("Remote") // vpnConnectionProfile
        .ip4in6([172, 18, 217, 135]) // clientIP (u128)
        .u16(756) // countryCode
        .string("Windows") // clientOS
        .string("AnyConnect") // clientApplication
        .u32(474) // connectionDuration
        .u64(1000) // bytesTransmitted
        .u64(2000); // bytesReceived
    for with_headers in [false, true] {
        let item = if with_headers {
            B::default().block(166, session.clone())
        } else {
            session.clone()
        };
        let user = B::default()
            .u32(1_700_000_400) // timestamp
            .raw(&[10, 0, 0, 77]) // ipv4Address
            .string("jörg") // username
            .string("CORP") // domain
            .u32(7711) // userId
            .u32(2) // realmId
            .u32(0) // endpointProfileId
            .u32(0) // securityGroupId
            .u32(710) // protocol (LDAP)
            .u16(0) // port
            .u16(0) // rangeStart
            .u16(0) // startPort
            .u16(0) // endPort
            .string("jorg@corp.example") // email
            .ip4in6([10, 0, 0, 77]) // ipv6Address (u128)
            .zeros(16) // locationIpv6Address (u128)
            .u8(1) // loginType
            .u8(1) // authType
            .string("AD Agent") // reportedBy
            .string("") // description
            .list(&[item]); // vpnSession
        let data = B::default()
            .discovery(1, MAC, 1_700_000_400, 0, 1004, 2, "::ffff:10.0.0.77")
            .block(167, user);
        let v = decode(&record(95, 1_700_000_401, data));
        check(
            &v,
            &[
                ("user.username.data", json!("jörg")),
                ("user.userId", json!(7711)),
                ("user.protocol", json!(710)),
                (
                    "user.ipv6Address",
                    json!("00000000000000000000ffff0a00004d"),
                ),
                ("user.reportedBy.data", json!("AD Agent")),
            ],
        );
        let s = &v["user"]["vpnSession"]["items"][0];
        assert_eq!(s["index"], json!(3132), "headers {with_headers}");
        assert_eq!(s["groupPolicy"]["data"], json!("GP-Staff"));
        assert_eq!(s["bytesReceived"], json!(2000));
    }
}

#[test]
fn reference_golden_vectors_packet_and_bundle() {
    // Reference 5.4: EventData with a packet record (type 2) and the extended header.
    let wire = unhex(
        "000100040000003000000002000000205ed7f3b600000000000000030002fb663f047f723f047f740003e19d0000000100000004deadbeef",
    );
    let v = decode(&wire[8..]);
    check(
        &v,
        &[
            ("archiveTimestamp", json!(1_591_210_934)),
            ("deviceId", json!(3)),
            ("eventId", json!(195_430)),
            ("eventSecond", json!(1_057_259_378)),
            ("packetSecond", json!(1_057_259_380)),
            ("packetMicrosecond", json!(254_365)),
            ("linkType", json!(1)),
            ("packetLength", json!(4)),
            ("packetData", json!("deadbeef")),
        ],
    );
}

/// What `decode` shows under "@computed" for a record, with no metadata received.
fn computed(body: &[u8]) -> serde_json::Map<String, Value> {
    let mut d = Decoder::new(catalog());
    let cache = Cache::new(Limits::default());
    let rec = d.decode(body).unwrap_or_else(|e| panic!("{e}"));
    cache.resolve_all(&rec)
}

#[test]
fn names_encore_presets_without_metadata_cipher_suite_flow_bits_and_a_zero_sha() {
    // An SSL connection: TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, the client and server hellos
    // seen, the flow valid, initialized and intercepted. The numbers stay in the fields.
    let body = connection_163((0xC02F, 0x18, 7));
    let c = computed(&body);
    assert_eq!(
        c["sslCipherSuite"],
        json!("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256")
    );
    assert_eq!(
        c["sslFlowMessages"],
        json!("NSE_MT__CLIENT_HELLO,NSE_MT__SERVER_HELLO")
    );
    assert_eq!(
        c["sslFlowFlags"],
        json!("NSE_FLOW_VALID,NSE_FLOW_INITIALIZED,NSE_FLOW_INTERCEPT")
    );
    let v = decode(&body);
    assert_eq!(v["sslCipherSuite"], json!(0xC02F));
    assert_eq!(v["sslFlowFlags"], json!(7));
    // A TLS 1.3 suite (which eNcore's table lacks), and a connection without SSL: no bits set
    // shows no flag names; cipher suite 0 is IANA's TLS_NULL_WITH_NULL_NULL, as in eNcore.
    let c = computed(&connection_163((0x1301, 0, 0)));
    assert_eq!(c["sslCipherSuite"], json!("TLS_AES_128_GCM_SHA256"));
    assert!(c.get("sslFlowFlags").is_none() && c.get("sslFlowMessages").is_none());
    // An unassigned suite shows its number, as any id without a name.
    let c = computed(&connection_163((0x0A0B, 0, 0x100)));
    assert_eq!(c["sslCipherSuite"], json!("2571"));
    assert_eq!(c["sslFlowFlags"], json!("0x100"));

    // A file whose SHA-256 the sensor did not compute (all zero): "Unknown"; any other SHA
    // without metadata shows as itself.
    assert_eq!(computed(&file_500([0; 32]))["detection"], json!("Unknown"));
    assert_eq!(
        computed(&file_500([0xab; 32]))["detection"],
        json!("ab".repeat(32))
    );
    // The same for an AMP event, whose SHA is hex text in a string block.
    let c = computed(&malware_125("", &"0".repeat(64)));
    assert_eq!(c["detectionName"], json!("Unknown"));
}

/// The `encore` profile's `cs2` (eNcore's virusName) falls back to the name known for the file's
/// SHA-256 when the AMP event has no detection name; for a file the sensor did not hash (all
/// zeros) that is eNcore's "Unknown", not 64 zeros.
#[test]
fn encore_profile_virus_name_of_an_unhashed_file_is_unknown() {
    let encore = Mappings::load(&LoadOptions {
        profile: "encore".into(),
        ..LoadOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    let body = malware_125("", &"0".repeat(64));
    let lines = mapping_run::map_bodies(&encore, std::iter::once(&body[..]));
    let ext = mapping_run::extension_map(&lines[0].line);
    assert_eq!(
        ext.get("cs2").map(String::as_str),
        Some("Unknown"),
        "{}",
        lines[0].line
    );
    // The standard profile sends only the AMP detection name, and there is none.
    let standard = mapping_run::map_bodies(&Mappings::builtin(), std::iter::once(&body[..]));
    assert!(
        !mapping_run::extension_map(&standard[0].line).contains_key("cs2"),
        "{}",
        standard[0].line
    );
}
