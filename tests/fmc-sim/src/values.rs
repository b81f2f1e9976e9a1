//! Plausible field values for generated records, chosen by a field's wire type and name.
//!
//! The choice is a table ([`RULES`], [`TEXT_RULES`]): the first rule whose type class and name
//! pattern match a field gives its generator. Names are compared in lower case; a string block's
//! `data` is named after its block (`clientUrl`, `userAgent`, ...). Values carry what real FMC data
//! carries and what breaks naive consumers: IPv4-mapped, real and edge-case IPv6 addresses, zero
//! and full-range integers, counters at or above 2^63, empty strings, CEF/syslog special
//! characters, line breaks, non-ASCII text and a few byte strings that are not UTF-8.

use std::net::Ipv6Addr;

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use serde_json::Value as Json;

use estreamer_cef::decode::{FieldKind, Scalar};

/// A chosen field value, before it is written.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Val {
    /// u8/u16/u32/u64 (masked to the field's width when written).
    Int(u64),
    /// Fixed-width bytes: addresses, MAC, UUID, 128/160/256-bit values.
    Raw(Vec<u8>),
    /// The bytes of a variable-length field (text or binary).
    Text(Vec<u8>),
}

/// How generated text looks: the tests want every case a consumer must carry, a demo or a sample
/// stream wants what an FMC's day looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Profile {
    /// A quarter of the free text gets characters CEF, syslog and JSON must escape (`=`, `|`,
    /// `\\`, emoji), a few strings a line break or a NUL, some are empty or Latin-1 bytes
    /// (`caf\xe9 cr\xe8me`). Every record type comes equally often. For the tests.
    #[default]
    Adversarial,
    /// Plain names, words, URLs and user agents; the record types in the proportions of a
    /// typical FMC (mostly connections, then intrusions, files and malware; see
    /// `generate::realistic_share`).
    Realistic,
}

/// What the value of a field may depend on besides its name.
pub(crate) struct Ctx {
    pub record_type: u32,
    /// Metadata records number their ids from 1 (`seq`).
    pub metadata: bool,
    /// The event's second; related timestamps are placed around it.
    pub second: u32,
    /// The managed device the event comes from.
    pub device: u32,
    /// Ordinal of this record among the generated records of its type (from 1).
    pub seq: u64,
    pub profile: Profile,
}

/// Relation of a timestamp to the event second.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Time {
    At,
    /// Up to this many seconds earlier (connection start, first seen).
    Before(u32),
    /// Up to this many seconds later (last packet).
    After(u32),
    /// Certificate validity start (1-3 years earlier) or end (1-3 years later).
    ValidFrom,
    ValidUntil,
}

/// How a value is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Gen {
    Const(u64),
    /// Inclusive range.
    Range(u64, u64),
    Choice(&'static [u64]),
    /// A mix of 0, small, medium and full-width values.
    Mixed,
    /// An id: sequential in metadata records, else small, sometimes 0.
    Id,
    Device,
    Port,
    Protocol,
    Country,
    Time(Time),
    Micro,
    /// Traffic counters up to 2^40, a few at or above 2^63.
    Counter,
    FileSize,
    /// Random bits of the field's width.
    Flags,
    /// An IPv4 address as a 32-bit integer.
    Ip4Int,
    /// An address: IPv4 in 4-byte fields; in 16-byte fields mostly IPv4-mapped, often IPv6, a
    /// few zero and edge forms.
    Addr,
    Mac,
    Uuid,
    /// Random bytes (hashes, fingerprints), sometimes all zero.
    RawRandom,
    Text(StrKind),
    /// An Ethernet frame (record 2).
    Packet,
    /// Intrusion extra data: its form follows the record's `type` field (record 110).
    ExtraData,
    /// A binary blob: text or bytes.
    Blob,
    /// The discovery event type (or subtype) of the record type (reference 6.9).
    DiscoveryEvent {
        subtype: bool,
    },
}

/// Kinds of text.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StrKind {
    Phrase,
    Label,
    Url,
    UserAgent,
    FileName,
    FilePath,
    HexHash,
    Domain,
    Netbios,
    UserName,
    PersonName,
    Email,
    Version,
    Date,
    Cve,
    Digits,
    RuleMessage,
    Phone,
    CountryName,
    Organisation,
    Vendor,
    App,
    Os,
    Device,
    Policy,
    RuleName,
    Zone,
    Interface,
    UrlCategory,
    FileType,
    /// One of these (metadata vocabularies).
    OneOf(&'static [&'static str]),
}

/// Field type classes a rule applies to.
mod class {
    pub const INT: u8 = 1;
    pub const ADDR: u8 = 2;
    pub const MAC: u8 = 4;
    pub const UUID: u8 = 8;
    pub const WIDE: u8 = 16;
    pub const TEXT: u8 = 32;
    pub const BYTES: u8 = 64;
}

fn class_of(kind: FieldKind) -> u8 {
    match kind {
        FieldKind::Scalar(s) => match s {
            Scalar::U8 | Scalar::U16 | Scalar::U32 | Scalar::U64 => class::INT,
            Scalar::Ipv4 | Scalar::Ipv6 => class::ADDR,
            Scalar::Mac => class::MAC,
            Scalar::Uuid => class::UUID,
            Scalar::U128 | Scalar::U160 | Scalar::U256 => class::WIDE,
        },
        FieldKind::Ip => class::ADDR,
        FieldKind::Text => class::TEXT,
        FieldKind::Bytes => class::BYTES,
        FieldKind::Group | FieldKind::List | FieldKind::ListItems => 0,
    }
}

/// Name patterns, in lower case.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Pat {
    Any,
    Exact(&'static str),
    OneOf(&'static [&'static str]),
    Suffix(&'static str),
    Contains(&'static str),
}

impl Pat {
    fn matches(self, name: &str) -> bool {
        match self {
            Pat::Any => true,
            Pat::Exact(p) => name == p,
            Pat::OneOf(ps) => ps.contains(&name),
            Pat::Suffix(p) => name.ends_with(p),
            Pat::Contains(p) => name.contains(p),
        }
    }
}

use Pat::*;
use class::*;

const FIREAMP_TYPES: &[u64] = &[
    1, 2, 553648168, 553648143, 554696715, 1090519054, 2164260880,
];

/// Non-text rules, first match wins.
#[rustfmt::skip]
pub(crate) const RULES: &[(u8, Pat, Gen)] = &[
    // Records 530/700 start with a plain block header ("UUID + string", series-2 block 14).
    (INT, Exact("blocktype"), Gen::Const(14)),
    (INT, Exact("pad"), Gen::Const(0)),
    (INT, Exact("linktype"), Gen::Const(1)),
    (INT, Suffix("microsecond"), Gen::Micro),
    (INT, OneOf(&["eventsecond", "packetsecond", "correlationeventsecond", "timestamp", "malwareeventtimestamp",
                  "fileeventtimestamp"]), Gen::Time(Time::At)),
    (INT, OneOf(&["firstpackettimestamp", "connectiontimestamp", "connectioneventtimestamp", "starttime",
                  "firstconnectiontime", "triggereventsecond", "firstseen", "filetimestamp"]), Gen::Time(Time::Before(3600))),
    (INT, OneOf(&["lastpackettimestamp", "lastseen", "lastused", "hostlastseen", "lastconnectiontime"]),
        Gen::Time(Time::After(900))),
    (INT, Exact("validstartdate"), Gen::Time(Time::ValidFrom)),
    (INT, Exact("validfinishdate"), Gen::Time(Time::ValidUntil)),
    (INT, OneOf(&["protocol", "ipprotocol", "ipprotocolid", "transportprotocol"]), Gen::Protocol),
    (INT, Exact("networkprotocol"), Gen::Choice(&[0x0800, 0x0800, 0x86dd, 0x0806])),
    (INT, Exact("tcpflag"), Gen::Choice(&[0x02, 0x12, 0x10, 0x18, 0x11, 0x04, 0x1b, 0])),
    (INT, Contains("port"), Gen::Port),
    (INT, Exact("rangestart"), Gen::Port),
    (INT, Suffix("country"), Gen::Country),
    (INT, Exact("countrycode"), Gen::Country),
    (INT, OneOf(&["deviceid", "sensorid", "eventdeviceid", "firstdeviceid"]), Gen::Device),
    (INT, Contains("vlanid"), Gen::Choice(&[0, 0, 0, 1, 10, 20, 100, 101, 200, 4094])),
    (INT, Exact("vlanpriority"), Gen::Range(0, 7)),
    (INT, Exact("ttl"), Gen::Choice(&[32, 64, 128, 255])),
    (INT, Exact("ttldifference"), Gen::Range(0, 8)),
    (INT, Exact("hops"), Gen::Range(0, 12)),
    (INT, Exact("threatscore"), Gen::Range(0, 100)),
    (INT, Exact("blocked"), Gen::Range(0, 2)),
    (INT, Exact("impact"), Gen::Range(0, 5)),
    (INT, Suffix("impactflags"), Gen::Flags),
    (INT, OneOf(&["priority", "priorityid"]), Gen::Range(1, 3)),
    (INT, Exact("direction"), Gen::Range(0, 2)),
    (INT, Suffix("disposition"), Gen::Range(0, 5)),
    (INT, Exact("action"), Gen::Range(0, 11)),
    (INT, OneOf(&["filestoragestatus", "fileanalysisstatus", "archivefilestatus"]), Gen::Range(0, 11)),
    (INT, Exact("localmalwareanalysisstatus"), Gen::Range(0, 3)),
    (INT, Exact("eventtype"), Gen::Range(0, 5)),
    (INT, Exact("eventtypeid"), Gen::Choice(FIREAMP_TYPES)),
    (INT, Exact("eventsubtypeid"), Gen::Choice(&[1, 2, 4, 22])),
    (INT, Exact("detectorid"), Gen::Range(1, 10)),
    (INT, Suffix("count"), Gen::Range(0, 20)),
    (INT, OneOf(&["connections", "hits"]), Gen::Range(1, 5000)),
    (INT, Exact("confidence"), Gen::Range(0, 100)),
    (INT, Exact("ruleaction"), Gen::Range(0, 6)),
    (INT, Exact("rulereason"), Gen::Choice(&[0, 0, 0, 1, 2, 4, 8, 16, 32, 64])),
    (INT, OneOf(&["generatorid", "signaturegeneratorid"]), Gen::Choice(&[1, 1, 1, 1, 3, 116, 119, 120, 129, 137, 138])),
    (INT, OneOf(&["ruleid", "signatureid"]), Gen::Range(1000, 59999)),
    (INT, OneOf(&["eventid", "deviceeventid", "firsteventid", "lasteventid"]), Gen::Range(1, 16_000_000)),
    (INT, Suffix("revision"), Gen::Range(1, 20)),
    (INT, Exact("filesize"), Gen::FileSize),
    (INT, Suffix("bytes"), Gen::Counter),
    (INT, Suffix("packets"), Gen::Counter),
    (INT, Suffix("dropped"), Gen::Counter),
    (INT, Suffix("sent"), Gen::Counter),
    (INT, Suffix("received"), Gen::Counter),
    (INT, Suffix("transmitted"), Gen::Counter),
    (INT, Suffix("duration"), Gen::Range(0, 86_400)),
    (INT, Exact("sslversion"), Gen::Range(0, 6)),
    (INT, Exact("sslciphersuite"), Gen::Choice(&[0, 0xc02f, 0xc030, 0x1301, 0x1302, 0x009c, 0x0035])),
    (INT, OneOf(&["sslactualaction", "sslexpectedaction"]), Gen::Range(0, 6)),
    (INT, Exact("sslflowstatus"), Gen::Range(0, 28)),
    (INT, Exact("sslservercertificatestatus"), Gen::Choice(&[0, 1, 2, 4, 16, 32, 64, 128, 256])),
    (INT, OneOf(&["sslflowflags", "sslflowmessages"]), Gen::Flags),
    (INT, Suffix("length"), Gen::Range(0, 32)),
    (INT, OneOf(&["mobile", "jailbroken", "disabled", "primary", "remote", "userdefined", "vlanpresence",
                  "primarysecondary", "invalidflags", "exploits", "vlantype"]), Gen::Range(0, 1)),
    (INT, Exact("index"), Gen::Range(0, 63)),
    (INT, Suffix("mask"), Gen::Range(8, 32)),
    (INT, Suffix("tos"), Gen::Choice(&[0, 0, 0x10, 0x28, 0xb8])),
    (INT, Exact("dnsttl"), Gen::Choice(&[0, 30, 60, 300, 3600, 86_400])),
    (INT, Exact("dnsrecordtype"), Gen::Choice(&[1, 1, 28, 5, 15, 16, 2, 6, 12, 33])),
    (INT, Exact("dnsresponsetype"), Gen::Range(0, 5)),
    (INT, Exact("httpresponse"), Gen::Choice(&[0, 200, 200, 200, 301, 302, 304, 403, 404, 500])),
    (INT, OneOf(&["ipv4address", "sourceip", "destinationip"]), Gen::Ip4Int),
    (INT, Suffix("autonomoussystem"), Gen::Choice(&[0, 15169, 13335, 16509, 8075, 3356, 3320, 64512])),
    (INT, OneOf(&["snmpin", "snmpout"]), Gen::Range(0, 48)),
    (INT, OneOf(&["type", "scantype", "scannertype", "hosttype", "logintype", "authtype", "vpntype", "protocoltype",
                  "connectiontype", "sourcetype", "payloadtype", "criticality", "flag", "code"]), Gen::Range(0, 5)),
    (INT, Exact("value"), Gen::Range(1, 120_000)),
    (INT, Contains("monitorrule"), Gen::Choice(&[0, 0, 0, 0, 1, 2, 3, 268_435_461])),
    (INT, Exact("iocnumber"), Gen::Choice(&[0, 0, 0, 1, 2, 3, 5, 8])),
    (INT, Contains("securityintelligencelist"), Gen::Choice(&[0, 0, 1, 2, 3, 4])),
    (INT, Suffix("id"), Gen::Id),
    (INT, Any, Gen::Mixed),
    (WIDE, OneOf(&["clientip", "ipv6address", "locationipv6address"]), Gen::Addr),
    (WIDE, Any, Gen::RawRandom),
    (ADDR, Any, Gen::Addr),
    (MAC, Any, Gen::Mac),
    (UUID, Any, Gen::Uuid),
    (BYTES, Exact("packetdata"), Gen::Packet),
    (BYTES, Exact("blob"), Gen::ExtraData),
    (BYTES, Any, Gen::Blob),
];

/// Text rules, first match wins.
#[rustfmt::skip]
pub(crate) const TEXT_RULES: &[(Pat, StrKind)] = &[
    (Exact("useragent"), StrKind::UserAgent),
    (Contains("url"), StrKind::Url),
    (Contains("uri"), StrKind::Url),
    (Contains("referrer"), StrKind::Url),
    (Suffix("shahash"), StrKind::HexHash),
    (Exact("archivesha"), StrKind::HexHash),
    (Suffix("filename"), StrKind::FileName),
    (Exact("archivename"), StrKind::FileName),
    (Exact("filepath"), StrKind::FilePath),
    (OneOf(&["domain", "dnsquery", "referencedhost", "sslservername", "subjectcn", "issuercn"]), StrKind::Domain),
    (Exact("netbios"), StrKind::Netbios),
    (OneOf(&["username", "user", "reportedby"]), StrKind::UserName),
    (OneOf(&["firstname", "lastname", "fullname"]), StrKind::PersonName),
    (Exact("email"), StrKind::Email),
    (Contains("version"), StrKind::Version),
    (OneOf(&["build", "patch", "revision", "torevision", "extension"]), StrKind::Version),
    (Suffix("date"), StrKind::Date),
    (Exact("cveid"), StrKind::Cve),
    (Exact("bugtraqid"), StrKind::Digits),
    (OneOf(&["message", "detectionname", "summary", "signature", "title"]), StrKind::RuleMessage),
    (Exact("phone"), StrKind::Phone),
    (Suffix("country"), StrKind::CountryName),
    (Suffix("organisation"), StrKind::Organisation),
    (Exact("vendor"), StrKind::Vendor),
    (OneOf(&["product", "clientapplication"]), StrKind::App),
    (Exact("clientos"), StrKind::Os),
    (Any, StrKind::Phrase),
];

/// The text style of the names each metadata map holds (by map name in `tables.toml`).
#[rustfmt::skip]
pub(crate) const NAME_STYLES: &[(&str, StrKind)] = &[
    ("devices", StrKind::Device),
    ("idsRules", StrKind::RuleMessage),
    ("vulnerabilities", StrKind::RuleMessage),
    ("policies", StrKind::Policy),
    ("acPols", StrKind::Policy),
    ("sslPolicies", StrKind::Policy),
    ("correlationPolicies", StrKind::Policy),
    ("firewallRules", StrKind::RuleName),
    ("sslRules", StrKind::RuleName),
    ("correlationRules", StrKind::RuleName),
    ("securityZones", StrKind::Zone),
    ("interfaces", StrKind::Interface),
    ("geolocations", StrKind::CountryName),
    ("users", StrKind::UserName),
    ("systemUsers", StrKind::UserName),
    ("clientApps", StrKind::App),
    ("appProtocols", StrKind::App),
    ("payloads", StrKind::App),
    ("sourceApps", StrKind::App),
    ("osNames", StrKind::Os),
    ("osVendors", StrKind::Vendor),
    ("osVersions", StrKind::Version),
    ("urlCategories", StrKind::UrlCategory),
    ("sslUrlCategories", StrKind::UrlCategory),
    ("fileTypes", StrKind::FileType),
    ("fileShas", StrKind::FileName),
    ("sslCertificates", StrKind::Domain),
    ("priorities", StrKind::OneOf(&["high", "medium", "low"])),
    ("classifications", StrKind::OneOf(&["attempted-admin", "trojan-activity", "policy-violation",
        "web-application-attack", "misc-activity"])),
    ("classificationDescriptions", StrKind::OneOf(&["Attempted Administrator Privilege Gain",
        "A Network Trojan was Detected", "Potential Corporate Privacy Violation", "Web Application Attack",
        "Misc activity"])),
    ("firewallRuleActions", StrKind::OneOf(&["Allow", "Block", "Block with reset", "Trust", "Monitor",
        "Interactive Block"])),
    ("firewallRuleReasons", StrKind::OneOf(&["IP Block", "File Monitor", "Intrusion Block", "User Bypass"])),
    ("urlReputations", StrKind::OneOf(&["High Risk", "Suspicious sites", "Benign sites with security risks",
        "Benign sites", "Well known"])),
    ("sslVersions", StrKind::OneOf(&["SSLv3.0", "TLSv1.0", "TLSv1.1", "TLSv1.2", "TLSv1.3"])),
    ("sslCipherSuites", StrKind::OneOf(&["TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384",
        "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA"])),
    ("sslActions", StrKind::OneOf(&["Do Not Decrypt", "Block", "Decrypt (Resign)", "Decrypt (Known Key)"])),
    ("sslCertStatuses", StrKind::OneOf(&["Valid", "Expired", "Self-signed", "Invalid Issuer", "Revoked"])),
    ("sslFlowStatuses", StrKind::OneOf(&["Success", "No Match", "Handshake Error", "Decryption Error"])),
    ("dnsRecordTypes", StrKind::OneOf(&["A", "AAAA", "CNAME", "MX", "TXT", "NS", "SOA", "PTR", "SRV"])),
    ("dnsRecordDescriptions", StrKind::OneOf(&["a host address", "IPv6 host address",
        "the canonical name for an alias", "mail exchange", "text strings"])),
    ("dnsResponseTypes", StrKind::OneOf(&["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED"])),
    ("dnsResponseDescriptions", StrKind::OneOf(&["No Error", "Format Error", "Server Failure",
        "Non-Existent Domain", "Not Implemented", "Query Refused"])),
    ("networkProtocols", StrKind::OneOf(&["IPv4", "IPv6", "ARP", "LLDP"])),
    ("realms", StrKind::OneOf(&["corp.example.com", "AD-EMEA", "LDAP-US"])),
    ("securityGroups", StrKind::OneOf(&["Employees", "Contractors", "Guests", "Quarantined_Systems"])),
    ("iocCategories", StrKind::OneOf(&["Malware Executed", "CnC Connected", "Exploit Kit", "Dropper Infection"])),
    ("iocEventTypes", StrKind::OneOf(&["Threat Detected", "Suspected Botnet", "Adobe Reader compromise"])),
    ("malwareEventTypes", StrKind::OneOf(&["Threat Detected", "Threat Quarantined", "Blocked Execution",
        "Scan Completed, No Detections"])),
    ("fireampDetectors", StrKind::OneOf(&["ClamAV", "Spero", "SHA", "Ethos", "Cloud IOC"])),
    ("criticalities", StrKind::OneOf(&["None", "Low", "Medium", "High"])),
    ("siSrcDests", StrKind::OneOf(&["Source", "Destination"])),
    ("siDiscovery", StrKind::OneOf(&["Malware", "CnC", "Phishing", "Tor_exit_node", "Bogon", "Spam"])),
    ("sinkholes", StrKind::OneOf(&["Sinkhole-DNS", "Sinkhole-Corp"])),
    ("clouds", StrKind::OneOf(&["Cisco AMP Cloud", "AMP Private Cloud"])),
    ("xdataTypes", StrKind::OneOf(&["Original Client IPv4 Address", "XFF Client (IPv6)", "HTTP URI",
        "HTTP Hostname", "SMTP From"])),
];

/// The generator for a field, by its rule name and kind.
pub(crate) fn rule_for(name: &str, kind: FieldKind) -> Gen {
    let lname = name.to_ascii_lowercase();
    let c = class_of(kind);
    if c == TEXT {
        let k = TEXT_RULES
            .iter()
            .find(|(p, _)| p.matches(&lname))
            .map(|&(_, k)| k)
            .unwrap_or(StrKind::Phrase);
        return Gen::Text(k);
    }
    RULES
        .iter()
        .find(|(cl, p, _)| cl & c != 0 && p.matches(&lname))
        .map(|&(_, _, g)| g)
        .unwrap_or(Gen::Mixed)
}

/// The text style of a metadata map's names.
pub(crate) fn name_style(map: &str) -> StrKind {
    NAME_STYLES
        .iter()
        .find(|(m, _)| *m == map)
        .map(|&(_, k)| k)
        .unwrap_or(StrKind::Label)
}

/// Byte width of a fixed-width kind (0 for variable ones).
pub(crate) fn width(kind: FieldKind) -> usize {
    match kind {
        FieldKind::Scalar(s) => s.width(),
        _ => 0,
    }
}

fn mask(v: u64, w: usize) -> u64 {
    if w >= 8 {
        v
    } else {
        v & ((1u64 << (8 * w)) - 1)
    }
}

/// Makes a value for a field. `sibling` gives an already chosen value of the same object by name
/// (extra data depends on its `type`).
pub(crate) fn make(
    how: Gen,
    kind: FieldKind,
    ctx: &Ctx,
    rng: &mut StdRng,
    sibling: &dyn Fn(&str) -> Option<Val>,
) -> Val {
    let w = width(kind);
    let int = |v: u64| Val::Int(mask(v, w.max(1)));
    match how {
        Gen::Const(v) => int(v),
        Gen::Range(lo, hi) => int(rng.random_range(lo..=hi)),
        Gen::Choice(c) => int(*c.choose(rng).unwrap_or(&0)),
        Gen::Mixed => int(mixed(rng, w)),
        Gen::Id => {
            if ctx.metadata {
                int(ctx.seq)
            } else if rng.random_bool(0.05) {
                int(0)
            } else {
                int(rng.random_range(1..=5000u64.min(max_of(w))))
            }
        }
        Gen::Device => int(ctx.device as u64),
        Gen::Port => int(port(rng)),
        Gen::Protocol => int(protocol(rng)),
        Gen::Country => int(*COUNTRY_CODES.choose(rng).unwrap_or(&0)),
        Gen::Time(t) => int(time(t, ctx.second, rng) as u64),
        Gen::Micro => int(rng.random_range(0..1_000_000)),
        Gen::Counter => int(counter(rng)),
        Gen::FileSize => int(match rng.random_range(0..10) {
            0 => 0,
            1..=6 => rng.random_range(100..2_000_000),
            _ => rng.random_range(2_000_000..200_000_000),
        }),
        Gen::Flags => int(rng.random::<u64>()),
        Gen::Ip4Int => int(u32::from_be_bytes(ipv4(rng)) as u64),
        Gen::Addr => match w {
            4 => Val::Raw(ipv4(rng).to_vec()),
            _ => Val::Raw(ip16(rng).to_vec()),
        },
        Gen::Mac => Val::Raw(mac(rng).to_vec()),
        Gen::Uuid => Val::Raw(uuid(rng).to_vec()),
        Gen::RawRandom => {
            let mut b = vec![0u8; w];
            if !rng.random_bool(0.05) {
                rng.fill(&mut b[..]);
            }
            Val::Raw(b)
        }
        Gen::Text(k) => Val::Text(text(k, rng, true, ctx.profile)),
        Gen::Packet => Val::Text(packet(rng)),
        Gen::ExtraData => Val::Text(extra_data(sibling("type"), rng, ctx.profile)),
        Gen::DiscoveryEvent { subtype } => {
            let (t, s) = discovery_event(ctx.record_type);
            int(if subtype { s } else { t })
        }
        Gen::Blob => Val::Text(
            if ctx.profile == Profile::Realistic || rng.random_bool(0.5) {
                text(StrKind::Phrase, rng, true, ctx.profile)
            } else {
                let mut b = vec![0u8; rng.random_range(0..48)];
                rng.fill(&mut b[..]);
                b
            },
        ),
    }
}

fn max_of(w: usize) -> u64 {
    if w >= 8 {
        u64::MAX
    } else {
        (1u64 << (8 * w.max(1))) - 1
    }
}

fn mixed(rng: &mut StdRng, w: usize) -> u64 {
    let max = max_of(w);
    match rng.random_range(0..20) {
        0..=4 => 0,
        5..=11 => rng.random_range(1..=100u64.min(max)),
        12..=16 => rng.random_range(0..=65_535u64.min(max)),
        _ => rng.random::<u64>() & max,
    }
}

fn port(rng: &mut StdRng) -> u64 {
    const WELL_KNOWN: &[u64] = &[
        80, 443, 443, 53, 22, 25, 110, 143, 445, 3389, 8080, 8443, 123, 161, 389, 636, 993, 995,
        1433, 3306, 5060,
    ];
    match rng.random_range(0..20) {
        0 => 0,
        1..=9 => *WELL_KNOWN.choose(rng).unwrap_or(&443),
        10..=11 => rng.random_range(1024..32768),
        _ => rng.random_range(32768..=65535),
    }
}

fn protocol(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..100) {
        0..=59 => 6,
        60..=84 => 17,
        85..=92 => 1,
        93..=97 => 58,
        98 => 47,
        _ => 50,
    }
}

/// ISO 3166 numeric codes (0 = unknown).
pub(crate) const COUNTRY_CODES: &[u64] = &[
    0, 840, 840, 276, 250, 826, 392, 156, 643, 76, 356, 124, 36, 724, 380, 528, 752, 756, 410, 484,
    710, 616,
];
const COUNTRIES: &[(u64, &str)] = &[
    (840, "United States"),
    (276, "Germany"),
    (250, "France"),
    (826, "United Kingdom"),
    (392, "Japan"),
    (156, "China"),
    (643, "Russia"),
    (76, "Brazil"),
    (356, "India"),
    (124, "Canada"),
    (36, "Australia"),
    (724, "Spain"),
    (380, "Italy"),
    (528, "Netherlands"),
    (752, "Sweden"),
    (756, "Switzerland"),
    (410, "Korea, Republic of"),
    (484, "Mexico"),
    (710, "South Africa"),
    (616, "Poland"),
];

/// The country name of an ISO numeric code (for geolocation metadata).
pub(crate) fn country_name(code: u64) -> Option<&'static str> {
    COUNTRIES.iter().find(|(c, _)| *c == code).map(|&(_, n)| n)
}

fn time(t: Time, second: u32, rng: &mut StdRng) -> u32 {
    const YEAR: u32 = 365 * 86_400;
    if t != Time::At && rng.random_bool(0.03) {
        return 0;
    }
    match t {
        Time::At => second,
        Time::Before(max) => second.saturating_sub(rng.random_range(0..=max)),
        Time::After(max) => second.saturating_add(rng.random_range(0..=max)),
        Time::ValidFrom => second.saturating_sub(rng.random_range(YEAR..=3 * YEAR)),
        Time::ValidUntil => second.saturating_add(rng.random_range(YEAR..=3 * YEAR)),
    }
}

fn counter(rng: &mut StdRng) -> u64 {
    match rng.random_range(0..100) {
        0..=2 => (1u64 << 63) + rng.random_range(0..(1u64 << 62)),
        3..=12 => 0,
        _ => {
            let bits = rng.random_range(4..=40);
            rng.random_range(0..=(1u64 << bits))
        }
    }
}

/// An IPv4 address: private ranges and a few public networks.
pub(crate) fn ipv4(rng: &mut StdRng) -> [u8; 4] {
    let r: [u8; 4] = rng.random();
    match rng.random_range(0..20) {
        0..=5 => [10, r[1], r[2], r[3].max(1)],
        6..=8 => [172, 16 + (r[1] & 15), r[2], r[3].max(1)],
        9..=13 => [192, 168, r[2] % 8, r[3].max(1)],
        _ => {
            const PUBLIC: &[[u8; 2]] = &[
                [8, 8],
                [151, 101],
                [104, 16],
                [23, 45],
                [185, 199],
                [203, 0],
                [198, 51],
                [52, 84],
                [31, 13],
            ];
            let p = PUBLIC.choose(rng).copied().unwrap_or([8, 8]);
            [p[0], p[1], r[2], r[3].max(1)]
        }
    }
}

/// A 16-byte address: ~60 % IPv4-mapped, ~30 % IPv6, ~4 % all-zero, the rest edge forms
/// (`::1`, link-local, multicast, IPv4-compatible `::a.b.c.d`).
pub(crate) fn ip16(rng: &mut StdRng) -> [u8; 16] {
    let mut a = [0u8; 16];
    match rng.random_range(0..100) {
        0..=59 => {
            a[10] = 0xff;
            a[11] = 0xff;
            a[12..].copy_from_slice(&ipv4(rng));
        }
        60..=89 => {
            const PREFIXES: &[[u16; 2]] = &[
                [0x2001, 0x0db8],
                [0x2a00, 0x1450],
                [0x2a02, 0x0c7f],
                [0x2600, 0x1f18],
                [0x2001, 0x4860],
                [0xfd00, 0x0000],
            ];
            let p = PREFIXES.choose(rng).copied().unwrap_or([0x2001, 0x0db8]);
            let mut s = [0u16; 8];
            s[0] = p[0];
            s[1] = p[1];
            for x in s.iter_mut().skip(2) {
                *x = rng.random();
            }
            // Often a run of zeros, as real addresses have (RFC 5952 then writes "::").
            if rng.random_bool(0.5) {
                let start = rng.random_range(2..6);
                let end = rng.random_range(start + 1..8);
                for x in &mut s[start..end] {
                    *x = 0;
                }
            }
            a = Ipv6Addr::from(s).octets();
        }
        90..=93 => {}
        94 => a[15] = 1,
        95..=96 => {
            a[0] = 0xfe;
            a[1] = 0x80;
            let tail: [u8; 8] = rng.random();
            a[8..].copy_from_slice(&tail);
        }
        97 => {
            a[0] = 0xff;
            a[1] = 0x02;
            a[15] = 1;
        }
        _ => a[12..].copy_from_slice(&ipv4(rng)),
    }
    a
}

pub(crate) fn mac(rng: &mut StdRng) -> [u8; 6] {
    const OUIS: &[[u8; 3]] = &[
        [0x00, 0x50, 0x56],
        [0x00, 0x0c, 0x29],
        [0x3c, 0x22, 0xfb],
        [0xf8, 0xff, 0xc2],
        [0x00, 0x1b, 0x21],
        [0x52, 0x54, 0x00],
        [0x00, 0x00, 0x0c],
        [0x00, 0x25, 0x90],
    ];
    let o = OUIS.choose(rng).copied().unwrap_or([0, 0x50, 0x56]);
    let t: [u8; 3] = rng.random();
    [o[0], o[1], o[2], t[0], t[1], t[2]]
}

/// A random version-4 UUID; about 5 % are nil.
pub(crate) fn uuid(rng: &mut StdRng) -> [u8; 16] {
    if rng.random_bool(0.05) {
        return [0; 16];
    }
    let mut u: [u8; 16] = rng.random();
    u[6] = (u[6] & 0x0f) | 0x40;
    u[8] = (u[8] & 0x3f) | 0x80;
    u
}

/// A non-nil random UUID.
pub(crate) fn uuid_nonnil(rng: &mut StdRng) -> [u8; 16] {
    loop {
        let u = uuid(rng);
        if u != [0; 16] {
            return u;
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Text
// ---------------------------------------------------------------------------------------------

const WORDS: &[&str] = &[
    "outbound", "inbound", "traffic", "policy", "server", "client", "update", "backup", "finance",
    "guest", "printer", "camera", "portal", "gateway", "legacy", "internal", "partner", "remote",
    "office", "lab", "archive", "report", "session", "tunnel", "web", "mail", "dns", "vpn",
    "branch", "core",
];
const RULE_MESSAGES: &[&str] = &[
    "MALWARE-CNC Win.Trojan.Emotet outbound connection",
    "SERVER-WEBAPP Apache Struts remote code execution attempt",
    "POLICY-OTHER Remote desktop access over non-standard port",
    "PROTOCOL-DNS TXT record response with overly long payload",
    "INDICATOR-SCAN UPnP service discover attempt",
    "BROWSER-IE Microsoft Internet Explorer use after free attempt",
    "OS-WINDOWS SMB anonymous session IPC share access attempt",
    "FILE-PDF Adobe Acrobat Reader malformed font memory corruption",
    "SQL generic sql insert injection attempt - GET parameter",
    "PUA-ADWARE Win.Adware.Browsefox runtime traffic detected",
    "EXPLOIT-KIT Angler exploit kit landing page detected",
    "SERVER-OTHER OpenSSL TLS heartbeat read overrun attempt",
];
const DOMAINS: &[&str] = &[
    "example.com",
    "corp.example.net",
    "cdn.example.org",
    "login.microsoftonline.com",
    "update.googleapis.com",
    "files.example.io",
    "intranet.local",
    "mail.example.de",
    "xn--bcher-kva.example",
    "api.github.com",
];
const USERS: &[&str] = &[
    "alice",
    "bob",
    "carol",
    "dave",
    "eve",
    "mallory",
    "svc_backup",
    "jdoe",
    "m.muller",
    "admin",
];
const FIRST_NAMES: &[&str] = &[
    "Alice", "Bob", "Carol", "José", "Zoë", "Jürgen", "Иван", "Sven", "Amélie", "Kenji",
];
const LAST_NAMES: &[&str] = &[
    "Smith", "Müller", "O'Brien", "García", "Nguyen", "Kowalski", "Øster", "Tanaka", "Dupont",
];
const USER_AGENTS: &[&str] = &[
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "curl/8.5.0",
    "python-requests/2.31.0",
    "Microsoft-CryptoAPI/10.0",
    "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
];
/// User agents in Latin-1: not valid UTF-8.
const LATIN1_AGENTS: &[&[u8]] = &[
    b"Mozilla/4.0 (compatible; MSIE 6.0; Fran\xe7ais)",
    b"Agent-Espa\xf1ol/1.0 (se\xf1or)",
];
const LATIN1_TEXT: &[&[u8]] = &[
    b"caf\xe9 cr\xe8me",
    b"M\xfcller \xdcbersicht",
    b"r\xe9sum\xe9.pdf",
];
const FILE_NAMES: &[&str] = &[
    "invoice_2024.pdf",
    "setup.exe",
    "report Q3.xlsx",
    "photo.jpg",
    "archive.zip",
    "update.msi",
    "readme.txt",
    "payload.bin",
    "Übersicht.docx",
    "très secret.doc",
];
const VENDORS: &[&str] = &[
    "Microsoft",
    "Apple",
    "Cisco",
    "Google",
    "Mozilla",
    "Oracle",
    "Red Hat",
    "Canonical",
];
const APPS: &[&str] = &[
    "HTTP",
    "HTTPS",
    "DNS",
    "SSH",
    "SMB",
    "Firefox",
    "Chrome",
    "curl",
    "Outlook",
    "Slack",
    "Facebook",
    "YouTube",
    "Dropbox",
    "Microsoft Update",
    "NTP",
    "LDAP",
];
const OSES: &[&str] = &[
    "Windows",
    "macOS",
    "Linux",
    "iOS",
    "Android",
    "Cisco IOS",
    "FreeBSD",
];
const SITES: &[&str] = &["ams", "fra", "nyc", "sfo", "sin", "lon"];
const ZONES: &[&str] = &["inside", "outside", "dmz", "guest", "servers", "vpn"];
const INTERFACES: &[&str] = &[
    "GigabitEthernet0/0",
    "GigabitEthernet0/1",
    "Ethernet1/1",
    "Ethernet1/2",
    "Port-channel1.100",
    "Management0/0",
];
const URL_CATEGORIES: &[&str] = &[
    "Social Networking",
    "News and Media",
    "Malware Sites",
    "Business and Economy",
    "Streaming Media",
];
const FILE_TYPES: &[&str] = &[
    "PDF",
    "MSEXE",
    "ZIP",
    "MSOLE2",
    "JPEG",
    "NEW_OFFICE",
    "RAR",
    "ELF",
];
const ORGS: &[&str] = &[
    "Example Corp",
    "ACME, Inc.",
    "Cisco Systems",
    "Let's Encrypt",
    "DigiCert Inc",
];

/// Characters and fragments that CEF, syslog and JSON consumers must escape or carry.
pub(crate) const SPICES: &[&str] = &[
    "=",
    "\\",
    "|",
    " ",
    "\t",
    "\"",
    "]",
    "a=b c=d",
    "\\=",
    "\\|",
    "é",
    "ü",
    "Ω",
    "—",
    "Привет",
    "日本語",
    "😀",
];
pub(crate) const LINE_BREAKS: &[&str] = &["\n", "\r\n", "\r"];

/// Text of a kind. [`Profile::Realistic`]: plain text. [`Profile::Adversarial`]: most strings are
/// plain; a quarter get special characters, a few a line break, some are empty (`allow_empty`),
/// and a few user agents or phrases are Latin-1 bytes.
pub(crate) fn text(
    kind: StrKind,
    rng: &mut StdRng,
    allow_empty: bool,
    profile: Profile,
) -> Vec<u8> {
    if profile == Profile::Realistic {
        return base_text(kind, rng).into_bytes();
    }
    if allow_empty && rng.random_bool(0.08) {
        return Vec::new();
    }
    if kind == StrKind::UserAgent && rng.random_bool(0.15) {
        return LATIN1_AGENTS
            .choose(rng)
            .map(|b| b.to_vec())
            .unwrap_or_default();
    }
    let free_text = matches!(
        kind,
        StrKind::Phrase | StrKind::FileName | StrKind::PersonName
    );
    if allow_empty && free_text && rng.random_bool(0.05) {
        return LATIN1_TEXT
            .choose(rng)
            .map(|b| b.to_vec())
            .unwrap_or_default();
    }
    let mut s = base_text(kind, rng);
    // Hashes, dates and versions are machine-made; the rest is free text.
    let free = !matches!(kind, StrKind::HexHash | StrKind::Digits | StrKind::Cve);
    if free && rng.random_bool(0.25) {
        for _ in 0..rng.random_range(1..=2) {
            let sp = SPICES.choose(rng).copied().unwrap_or("=");
            insert_at_char(&mut s, rng, sp);
        }
    }
    if free && rng.random_bool(0.03) {
        let br = LINE_BREAKS.choose(rng).copied().unwrap_or("\n");
        insert_at_char(&mut s, rng, br);
    }
    let mut b = s.into_bytes();
    // FMCs pad some strings with NUL; consumers drop it.
    if free && rng.random_bool(0.03) {
        b.push(0);
    }
    b
}

fn insert_at_char(s: &mut String, rng: &mut StdRng, what: &str) {
    let bounds: Vec<usize> = s
        .char_indices()
        .map(|(i, _)| i)
        .chain(std::iter::once(s.len()))
        .collect();
    let at = bounds.choose(rng).copied().unwrap_or(0);
    s.insert_str(at, what);
}

fn pick(rng: &mut StdRng, list: &[&'static str]) -> &'static str {
    list.choose(rng).copied().unwrap_or("x")
}

fn base_text(kind: StrKind, rng: &mut StdRng) -> String {
    match kind {
        StrKind::Phrase => {
            let n = rng.random_range(1..=4);
            (0..n)
                .map(|_| pick(rng, WORDS))
                .collect::<Vec<_>>()
                .join(" ")
        }
        StrKind::Label => {
            let a = pick(rng, WORDS);
            let b = pick(rng, WORDS);
            format!("{}-{} {}", title(a), title(b), rng.random_range(1..100))
        }
        StrKind::Url => {
            let scheme = if rng.random_bool(0.7) {
                "https"
            } else {
                "http"
            };
            let host = pick(rng, DOMAINS);
            let path = pick(rng, WORDS);
            match rng.random_range(0..4) {
                0 => format!("{scheme}://{host}/"),
                1 => format!("{scheme}://{host}/{path}/index.html"),
                2 => format!("{scheme}://{host}/search?q={}&lang=en", pick(rng, WORDS)),
                _ => format!(
                    "{scheme}://{host}:8443/{path}?id={}&a=b%20c",
                    rng.random_range(1..99999)
                ),
            }
        }
        StrKind::UserAgent => pick(rng, USER_AGENTS).to_string(),
        StrKind::FileName => pick(rng, FILE_NAMES).to_string(),
        StrKind::FilePath => format!(
            "{}{}",
            if rng.random_bool(0.5) {
                "C:\\Users\\jdoe\\Downloads\\"
            } else {
                "/home/jdoe/Downloads/"
            },
            pick(rng, FILE_NAMES)
        ),
        StrKind::HexHash => {
            let b: [u8; 32] = rng.random();
            let mut s = String::with_capacity(64);
            estreamer_cef::decode::value::write_hex(&mut s, &b);
            if rng.random_bool(0.3) {
                s.to_ascii_uppercase()
            } else {
                s
            }
        }
        StrKind::Domain => {
            let d = pick(rng, DOMAINS);
            if rng.random_bool(0.5) {
                format!("{}.{d}", pick(rng, WORDS))
            } else {
                d.to_string()
            }
        }
        StrKind::Netbios => format!("WS-{:04}", rng.random_range(1..9999)),
        StrKind::UserName => {
            let u = pick(rng, USERS);
            match rng.random_range(0..4) {
                0 => format!("CORP\\{u}"),
                1 => format!("{u}@corp.example.com"),
                _ => u.to_string(),
            }
        }
        StrKind::PersonName => {
            if rng.random_bool(0.5) {
                pick(rng, FIRST_NAMES).to_string()
            } else {
                pick(rng, LAST_NAMES).to_string()
            }
        }
        StrKind::Email => format!("{}@{}", pick(rng, USERS), pick(rng, DOMAINS)),
        StrKind::Version => format!(
            "{}.{}.{}",
            rng.random_range(1..20),
            rng.random_range(0..10),
            rng.random_range(0..400)
        ),
        StrKind::Date => format!(
            "{}-{:02}-{:02}",
            rng.random_range(2015..2027),
            rng.random_range(1..=12),
            rng.random_range(1..=28)
        ),
        StrKind::Cve => format!(
            "CVE-{}-{}",
            rng.random_range(2015..2027),
            rng.random_range(1000..50000)
        ),
        StrKind::Digits => rng.random_range(1000..120_000).to_string(),
        StrKind::RuleMessage => pick(rng, RULE_MESSAGES).to_string(),
        StrKind::Phone => format!("+49 30 {:07}", rng.random_range(0..9_999_999)),
        StrKind::CountryName => COUNTRIES
            .choose(rng)
            .map(|c| c.1)
            .unwrap_or("Germany")
            .to_string(),
        StrKind::Organisation => pick(rng, ORGS).to_string(),
        StrKind::Vendor => pick(rng, VENDORS).to_string(),
        StrKind::App => pick(rng, APPS).to_string(),
        StrKind::Os => format!("{} {}", pick(rng, OSES), rng.random_range(7..16)),
        StrKind::Device => format!("ftd-{}-{:02}", pick(rng, SITES), rng.random_range(1..40)),
        StrKind::Policy => format!(
            "{} {} Policy",
            title(pick(rng, WORDS)),
            pick(rng, &["Access", "Intrusion", "File", "SSL", "Prefilter"])
        ),
        StrKind::RuleName => format!(
            "{}-{}-{}",
            pick(rng, &["Allow", "Block", "Trust", "Monitor", "Inspect"]),
            title(pick(rng, WORDS)),
            rng.random_range(1..500)
        ),
        StrKind::Zone => pick(rng, ZONES).to_string(),
        StrKind::Interface => pick(rng, INTERFACES).to_string(),
        StrKind::UrlCategory => pick(rng, URL_CATEGORIES).to_string(),
        StrKind::FileType => pick(rng, FILE_TYPES).to_string(),
        StrKind::OneOf(list) => pick(rng, list).to_string(),
    }
}

fn title(w: &str) -> String {
    let mut c = w.chars();
    match c.next() {
        Some(f) => f.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

/// A metadata name: never empty, styled after the map it fills (`key` is the entry's integer
/// key, if any: device names carry their id, countries match their code). Some end in special
/// characters (`ftd-ams-03 | lab`) in [`Profile::Adversarial`], none start with them.
pub(crate) fn name(map: &str, key: Option<u64>, rng: &mut StdRng, profile: Profile) -> Vec<u8> {
    let mut s = match (map, key) {
        ("devices", Some(id)) => format!("ftd-{}-{id:02}", SITES[id as usize % SITES.len()]),
        ("geolocations", Some(code)) if country_name(code).is_some() => {
            return country_name(code).unwrap_or_default().as_bytes().to_vec();
        }
        _ => base_text(name_style(map), rng),
    };
    if profile == Profile::Adversarial && rng.random_bool(0.2) {
        let spice = SPICES.choose(rng).copied().unwrap_or("=");
        s = format!("{s} {spice} {}", pick(rng, WORDS));
    }
    s.into_bytes()
}

/// An Ethernet frame: IPv4 (85 %) or IPv6, TCP or UDP, and a payload.
fn packet(rng: &mut StdRng) -> Vec<u8> {
    let mut f = Vec::with_capacity(128);
    f.extend_from_slice(&mac(rng));
    f.extend_from_slice(&mac(rng));
    let v6 = rng.random_bool(0.15);
    let tcp = rng.random_bool(0.7);
    let payload: Vec<u8> = match rng.random_range(0..5) {
        0 => format!(
            "GET /{} HTTP/1.1\r\nHost: {}\r\nUser-Agent: curl/8.5.0\r\n\r\n",
            pick(rng, WORDS),
            pick(rng, DOMAINS)
        )
        .into_bytes(),
        1 => b"SSH-2.0-OpenSSH_9.6\r\n".to_vec(),
        2 => b"SELECT * FROM users WHERE name='' OR '1'='1';".to_vec(),
        _ => {
            let mut b = vec![0u8; rng.random_range(0..64)];
            rng.fill(&mut b[..]);
            b
        }
    };
    let l4_len = if tcp { 20 } else { 8 } + payload.len();
    let proto = if tcp { 6u8 } else { 17 };
    if v6 {
        f.extend_from_slice(&[0x86, 0xdd]);
        f.extend_from_slice(&[0x60, 0, 0, 0]);
        f.extend_from_slice(&(l4_len as u16).to_be_bytes());
        f.extend_from_slice(&[proto, 64]);
        for _ in 0..2 {
            let mut a = ip16(rng);
            if a[..12].iter().all(|&x| x == 0) || a[10] == 0xff {
                a = [
                    0x20,
                    0x01,
                    0x0d,
                    0xb8,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    0,
                    rng.random(),
                ];
            }
            f.extend_from_slice(&a);
        }
    } else {
        f.extend_from_slice(&[0x08, 0x00]);
        let total = (20 + l4_len) as u16;
        f.extend_from_slice(&[0x45, 0]);
        f.extend_from_slice(&total.to_be_bytes());
        f.extend_from_slice(&rng.random::<u16>().to_be_bytes());
        f.extend_from_slice(&[0x40, 0, 64, proto, 0, 0]);
        f.extend_from_slice(&ipv4(rng));
        f.extend_from_slice(&ipv4(rng));
    }
    let sport = rng.random_range(32768..=65535u16);
    let dport = port(rng) as u16;
    f.extend_from_slice(&sport.to_be_bytes());
    f.extend_from_slice(&dport.to_be_bytes());
    if tcp {
        f.extend_from_slice(&rng.random::<u32>().to_be_bytes());
        f.extend_from_slice(&rng.random::<u32>().to_be_bytes());
        f.extend_from_slice(&[0x50, 0x18]);
        f.extend_from_slice(&[0xff, 0xff, 0, 0, 0, 0]);
    } else {
        f.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
        f.extend_from_slice(&[0, 0]);
    }
    f.extend_from_slice(&payload);
    f
}

/// Intrusion extra data by its type: 1 an IPv4 address, 2 an IPv6 address, others text.
fn extra_data(kind: Option<Val>, rng: &mut StdRng, profile: Profile) -> Vec<u8> {
    match kind {
        Some(Val::Int(1)) => ipv4(rng).to_vec(),
        Some(Val::Int(2)) => {
            let mut a = ip16(rng);
            if a[10] == 0xff && a[..10].iter().all(|&x| x == 0) {
                a[..4].copy_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
            }
            a.to_vec()
        }
        Some(Val::Int(9)) => text(StrKind::Url, rng, false, profile),
        Some(Val::Int(5 | 6)) => text(StrKind::Domain, rng, false, profile),
        _ => text(StrKind::Phrase, rng, true, profile),
    }
}

/// The (eventType, eventSubtype) a discovery record carries (reference 6.9), by record type.
#[rustfmt::skip]
const DISCOVERY_EVENTS: &[(u32, u64, u64)] = &[
    (10, 1000, 1), (11, 1000, 2), (12, 1000, 6), (13, 1000, 3), (14, 1000, 4), (15, 1000, 7),
    (16, 1001, 6), (17, 1001, 10), (18, 1001, 2), (19, 1001, 7), (20, 1001, 3), (21, 1001, 19),
    (22, 1001, 5), (23, 1001, 8), (24, 1001, 9), (25, 1001, 11), (26, 1001, 12), (27, 1001, 13),
    (28, 1001, 14), (29, 1001, 1), (31, 1001, 16), (34, 1001, 18), (35, 1001, 20), (42, 1001, 21),
    (44, 1001, 23), (45, 1001, 24), (46, 1002, 6), (47, 1002, 7), (48, 1002, 8), (51, 1001, 25),
    (52, 1001, 26), (53, 1001, 27), (71, 1003, 1), (73, 1003, 2), (74, 1002, 16), (75, 1002, 19),
    (76, 1002, 14), (77, 1002, 15), (78, 1002, 3), (79, 1002, 4), (80, 1002, 1), (81, 1002, 2),
    (82, 1002, 5), (83, 1002, 9), (84, 1002, 10), (85, 1002, 27), (86, 1002, 28), (87, 1002, 29),
    (88, 1002, 30), (89, 1002, 11), (92, 1004, 4), (93, 1004, 3), (94, 1004, 1), (95, 1004, 2),
    (101, 1000, 8), (102, 1001, 29), (103, 1001, 30), (107, 1001, 32), (160, 1008, 1), (170, 1004, 2),
    (171, 1004, 2),
];

/// The discovery event type and subtype of a record type.
pub(crate) fn discovery_event(record_type: u32) -> (u64, u64) {
    DISCOVERY_EVENTS
        .iter()
        .find(|e| e.0 == record_type)
        .map(|e| (e.1, e.2))
        .unwrap_or((1001, 17))
}

// ---------------------------------------------------------------------------------------------
// The truth: what the decoder must show for a value
// ---------------------------------------------------------------------------------------------

/// The JSON the decoder gives for a value of a field kind: integers as numbers; IPv4 dotted;
/// IPv6 in RFC 5952 form, IPv4-mapped shown as IPv4 and IPv4-compatible as `::a.b.c.d`; MAC as
/// lowercase pairs; UUID 8-4-4-4-12; wide integers as lowercase hex; text with NULs removed, or
/// lowercase hex when it is not UTF-8.
pub(crate) fn truth(kind: FieldKind, v: &Val) -> Json {
    match (kind, v) {
        (_, Val::Int(i)) => Json::from(*i),
        (FieldKind::Scalar(Scalar::Mac), Val::Raw(b)) => Json::String(
            b.iter()
                .map(|x| format!("{x:02x}"))
                .collect::<Vec<_>>()
                .join(":"),
        ),
        (FieldKind::Scalar(Scalar::Uuid), Val::Raw(b)) => {
            let h = hex(b);
            Json::String(format!(
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            ))
        }
        (FieldKind::Scalar(Scalar::Ipv4 | Scalar::Ipv6) | FieldKind::Ip, Val::Raw(b)) => {
            Json::String(ip_text(b))
        }
        (_, Val::Raw(b)) => Json::String(hex(b)),
        (_, Val::Text(b)) => Json::String(match std::str::from_utf8(b) {
            Ok(s) => s.replace('\0', ""),
            Err(_) => hex(b),
        }),
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn ip_text(b: &[u8]) -> String {
    match b.len() {
        4 => format!("{}.{}.{}.{}", b[0], b[1], b[2], b[3]),
        16 => {
            let mut a = [0u8; 16];
            a.copy_from_slice(b);
            let zero10 = a[..10].iter().all(|&x| x == 0);
            if zero10 && a[10] == 0xff && a[11] == 0xff {
                format!("{}.{}.{}.{}", a[12], a[13], a[14], a[15])
            } else if zero10 && a[10] == 0 && a[11] == 0 && (a[12] | a[13]) != 0 {
                format!("::{}.{}.{}.{}", a[12], a[13], a[14], a[15])
            } else {
                Ipv6Addr::from(a).to_string()
            }
        }
        _ => hex(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn rules_pick_generators_by_name_and_type() {
        let u16k = FieldKind::Scalar(Scalar::U16);
        assert_eq!(rule_for("initiatorPort", u16k), Gen::Port);
        assert_eq!(
            rule_for("transportProtocol", FieldKind::Scalar(Scalar::U8)),
            Gen::Protocol
        );
        assert_eq!(
            rule_for("clientUrl", FieldKind::Text),
            Gen::Text(StrKind::Url)
        );
        assert_eq!(
            rule_for("userAgent", FieldKind::Text),
            Gen::Text(StrKind::UserAgent)
        );
        assert_eq!(
            rule_for("firstPacketTimestamp", FieldKind::Scalar(Scalar::U32)),
            Gen::Time(Time::Before(3600))
        );
        assert_eq!(
            rule_for("whatever", FieldKind::Scalar(Scalar::U64)),
            Gen::Mixed
        );
    }

    #[test]
    fn truth_forms_follow_the_reference() {
        let mut mapped = [0u8; 16];
        mapped[10] = 0xff;
        mapped[11] = 0xff;
        mapped[12..].copy_from_slice(&[10, 1, 2, 3]);
        let k = FieldKind::Scalar(Scalar::Ipv6);
        assert_eq!(truth(k, &Val::Raw(mapped.to_vec())), "10.1.2.3");
        let compat = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10, 1, 2, 3];
        assert_eq!(truth(k, &Val::Raw(compat.to_vec())), "::10.1.2.3");
        let mut one = [0u8; 16];
        one[15] = 1;
        assert_eq!(truth(k, &Val::Raw(one.to_vec())), "::1");
        assert_eq!(truth(FieldKind::Text, &Val::Text(b"a\0b".to_vec())), "ab");
        assert_eq!(
            truth(FieldKind::Text, &Val::Text(b"caf\xe9".to_vec())),
            "636166e9"
        );
    }

    #[test]
    fn names_are_never_empty() {
        let mut rng = StdRng::seed_from_u64(1);
        for _ in 0..500 {
            let n = name("realms", None, &mut rng, Profile::Adversarial);
            assert!(n.iter().any(|&c| c != 0 && c != b' '));
        }
        assert!(name("devices", Some(3), &mut rng, Profile::Adversarial).starts_with(b"ftd-"));
        assert_eq!(
            name("geolocations", Some(276), &mut rng, Profile::Adversarial),
            b"Germany"
        );
    }
}
