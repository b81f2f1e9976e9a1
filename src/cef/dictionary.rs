//! The CEF extension dictionary as data: every producer key with its full name, type and length
//! limit, the custom/label families, the CEF 1.2 additions, and the consumer-only keys that a
//! producer must never send. Source: the ArcSight CEF standard, document v27 (lengths), with `c6a2`
//! and `dvcmac` from the older revisions (see `shared/reference/cef-and-syslog.md` 1.11 and 1.13).
//!
//! [`check_key`] is what the mapping layer calls when it loads a table: a key is either in the
//! dictionary or a valid vendor custom key, and the common mistakes (`bytesIn` for `in`, wrong
//! case, `cs7`, consumer-only keys) are errors that say what to write instead.

use std::collections::HashMap;
use std::fmt;
use std::sync::OnceLock;

/// Value type of a dictionary key, as the standard declares it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueType {
    String,
    /// 32-bit signed in ArcSight (the `cefevent` generator enforces ≤ 2,147,483,647).
    Integer,
    /// 64-bit signed.
    Long,
    /// Floating point (double).
    Double,
    /// Epoch milliseconds or one of the `MMM dd yyyy HH:mm:ss` forms; we send epoch milliseconds.
    Timestamp,
    Ipv4,
    Ipv6,
    Mac,
}

impl ValueType {
    pub fn as_str(self) -> &'static str {
        match self {
            ValueType::String => "String",
            ValueType::Integer => "Integer",
            ValueType::Long => "Long",
            ValueType::Double => "Double",
            ValueType::Timestamp => "Timestamp",
            ValueType::Ipv4 => "IPv4 Address",
            ValueType::Ipv6 => "IPv6 Address",
            ValueType::Mac => "MAC Address",
        }
    }
}

impl fmt::Display for ValueType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Maximum length of a value, in characters (Unicode scalar values) of the unescaped value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxLen {
    /// The standard gives no length (numbers, addresses, timestamps).
    Unlimited,
    Chars(u32),
    /// `cs1`..`cs6`: 4000 in v27, 1023 in older revisions; configurable, see [`KeyOptions`].
    CustomString,
}

/// Which CEF revision introduced the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Since {
    /// In every revision; fine with `CEF:0`.
    Cef0,
    /// A CEF 1.2 addition, only meaningful with `CEF:1` (we emit `CEF:0`).
    Cef12,
}

/// One row of the dictionary.
#[derive(Debug, PartialEq, Eq)]
pub struct KeyInfo {
    /// The key written on the wire (`in`).
    pub key: &'static str,
    /// The ArcSight field name (`bytesIn`). Same as `key` for many keys.
    pub full_name: &'static str,
    pub value_type: ValueType,
    pub max_len: MaxLen,
    /// For a custom field (`cs1`), its label key (`cs1Label`).
    pub label_key: Option<&'static str>,
    /// For a label key (`cs1Label`), the field it labels (`cs1`).
    pub labels: Option<&'static str>,
    /// The label the standard's "Special Mappings" give the field (`c6a2` → `Source IPv6 Address`).
    pub conventional_label: Option<&'static str>,
    pub since: Since,
}

impl KeyInfo {
    /// The limit in characters under `options` (`None` = no limit).
    pub fn max_chars(&self, options: &KeyOptions) -> Option<u32> {
        match self.max_len {
            MaxLen::Unlimited => None,
            MaxLen::Chars(n) => Some(n),
            MaxLen::CustomString => Some(options.cs_max_chars),
        }
    }
}

/// Settings that change the dictionary's limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyOptions {
    cs_max_chars: u32,
}

/// Default limit for `cs1`..`cs6`: what every ArcSight revision accepts.
pub const CS_MAX_CHARS_DEFAULT: u32 = 1023;
/// Largest limit for `cs1`..`cs6` (CEF document v27).
pub const CS_MAX_CHARS_MAX: u32 = 4000;
/// Limit we apply to vendor custom keys (the standard gives none; this is the common string limit).
pub const CUSTOM_KEY_MAX_CHARS: u32 = 1023;

impl Default for KeyOptions {
    fn default() -> Self {
        KeyOptions {
            cs_max_chars: CS_MAX_CHARS_DEFAULT,
        }
    }
}

impl KeyOptions {
    /// Limit for `cs1`..`cs6`, 1..=4000. Use 4000 only when every receiver runs a v27-era
    /// connector; older ones cut at 1023.
    pub fn with_cs_max_chars(cs_max_chars: u32) -> Result<Self, KeyOptionsError> {
        if cs_max_chars == 0 || cs_max_chars > CS_MAX_CHARS_MAX {
            return Err(KeyOptionsError::CsMaxChars(cs_max_chars));
        }
        Ok(KeyOptions { cs_max_chars })
    }

    pub fn cs_max_chars(&self) -> u32 {
        self.cs_max_chars
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyOptionsError {
    #[error(
        "the length limit for cs1..cs6 must be between 1 and {CS_MAX_CHARS_MAX} characters, got {0}; \
         use {CS_MAX_CHARS_DEFAULT} (every ArcSight version) or {CS_MAX_CHARS_MAX} (CEF v27 connectors)"
    )]
    CsMaxChars(u32),
}

// ---------------------------------------------------------------------------------------------
// The table. Rows are built by tiny `const fn`s so that each line reads like the standard's table.

const fn row(key: &'static str, full: &'static str, ty: ValueType, len: MaxLen) -> KeyInfo {
    KeyInfo {
        key,
        full_name: full,
        value_type: ty,
        max_len: len,
        label_key: None,
        labels: None,
        conventional_label: None,
        since: Since::Cef0,
    }
}
const fn s(key: &'static str, full: &'static str, len: u32) -> KeyInfo {
    row(key, full, ValueType::String, MaxLen::Chars(len))
}
const fn t(key: &'static str, full: &'static str, ty: ValueType) -> KeyInfo {
    row(key, full, ty, MaxLen::Unlimited)
}
/// A custom field and its label key.
const fn custom(
    key: &'static str,
    full: &'static str,
    ty: ValueType,
    len: MaxLen,
    label: &'static str,
) -> KeyInfo {
    let mut r = row(key, full, ty, len);
    r.label_key = Some(label);
    r
}
const fn label(key: &'static str, full: &'static str, of: &'static str, len: u32) -> KeyInfo {
    let mut r = s(key, full, len);
    r.labels = Some(of);
    r
}
const fn conventional(mut r: KeyInfo, text: &'static str) -> KeyInfo {
    r.conventional_label = Some(text);
    r
}
const fn v12(mut r: KeyInfo) -> KeyInfo {
    r.since = Since::Cef12;
    r
}

use MaxLen::{CustomString as CS, Unlimited as UNL};
use ValueType::{
    Double as D, Integer as I, Ipv4 as IP4, Ipv6 as IP6, Long as L, Mac as MAC, String as STR,
    Timestamp as TS,
};

/// Every key a producer may send. The position of a row is its slot number in the encoder's
/// duplicate-key check, so the table must stay below 256 rows.
#[rustfmt::skip]
pub static DICTIONARY: &[KeyInfo] = &[
    // Network, device and event keys.
    s("act", "deviceAction", 63),
    s("app", "applicationProtocol", 31),
    s("cat", "deviceEventCategory", 1023),
    t("cnt", "baseEventCount", I),
    t("deviceDirection", "deviceDirection", I),
    s("deviceDnsDomain", "deviceDnsDomain", 255),
    s("deviceExternalId", "deviceExternalId", 255),
    s("deviceFacility", "deviceFacility", 1023),
    s("deviceInboundInterface", "deviceInboundInterface", 128),
    s("deviceOutboundInterface", "deviceOutboundInterface", 128),
    s("deviceNtDomain", "deviceNtDomain", 255),
    s("devicePayloadId", "devicePayloadId", 128),
    s("deviceProcessName", "deviceProcessName", 1023),
    t("deviceTranslatedAddress", "deviceTranslatedAddress", IP4),
    s("dhost", "destinationHostName", 1023),
    t("dmac", "destinationMacAddress", MAC),
    s("dntdom", "destinationNtDomain", 255),
    t("dpid", "destinationProcessId", I),
    s("dpriv", "destinationUserPrivileges", 1023),
    s("dproc", "destinationProcessName", 1023),
    t("dpt", "destinationPort", I),
    t("dst", "destinationAddress", IP4),
    s("destinationDnsDomain", "destinationDnsDomain", 255),
    s("destinationServiceName", "destinationServiceName", 1023),
    t("destinationTranslatedAddress", "destinationTranslatedAddress", IP4),
    t("destinationTranslatedPort", "destinationTranslatedPort", I),
    s("dtz", "deviceTimeZone", 255),
    s("duid", "destinationUserId", 1023),
    s("duser", "destinationUserName", 1023),
    t("dvc", "deviceAddress", IP4),
    s("dvchost", "deviceHostName", 100),
    t("dvcmac", "deviceMacAddress", MAC),
    t("dvcpid", "deviceProcessId", I),
    t("end", "endTime", TS),
    s("externalId", "externalId", 40),
    t("in", "bytesIn", I),
    s("msg", "message", 1023),
    t("out", "bytesOut", I),
    s("outcome", "eventOutcome", 63),
    s("proto", "transportProtocol", 31),
    s("reason", "reason", 1023),
    s("request", "requestUrl", 1023),
    s("requestClientApplication", "requestClientApplication", 1023),
    s("requestContext", "requestContext", 2048),
    s("requestCookies", "requestCookies", 1023),
    s("requestMethod", "requestMethod", 1023),
    t("rt", "deviceReceiptTime", TS),
    s("shost", "sourceHostName", 1023),
    t("smac", "sourceMacAddress", MAC),
    s("sntdom", "sourceNtDomain", 255),
    s("sourceDnsDomain", "sourceDnsDomain", 255),
    s("sourceServiceName", "sourceServiceName", 1023),
    t("sourceTranslatedAddress", "sourceTranslatedAddress", IP4),
    t("sourceTranslatedPort", "sourceTranslatedPort", I),
    t("spid", "sourceProcessId", I),
    s("spriv", "sourceUserPrivileges", 1023),
    s("sproc", "sourceProcessName", 1023),
    t("spt", "sourcePort", I),
    t("src", "sourceAddress", IP4),
    t("start", "startTime", TS),
    s("suid", "sourceUserId", 1023),
    s("suser", "sourceUserName", 1023),
    t("type", "type", I),
    // File keys.
    s("fname", "filename", 1023),
    s("filePath", "filePath", 1023),
    s("fileHash", "fileHash", 255),
    s("fileType", "fileType", 1023),
    t("fsize", "fileSize", I),
    s("fileId", "fileId", 1023),
    s("filePermission", "filePermission", 1023),
    t("fileCreateTime", "fileCreateTime", TS),
    t("fileModificationTime", "fileModificationTime", TS),
    s("oldFileName", "oldFileName", 1023),
    s("oldFilePath", "oldFilePath", 1023),
    s("oldFileType", "oldFileType", 1023),
    s("oldFileId", "oldFileId", 1023),
    s("oldFilePermission", "oldFilePermission", 1023),
    s("oldFileHash", "oldFileHash", 255),
    t("oldFileSize", "oldFileSize", I),
    t("oldFileCreateTime", "oldFileCreateTime", TS),
    t("oldFileModificationTime", "oldFileModificationTime", TS),
    // Custom strings.
    custom("cs1", "deviceCustomString1", STR, CS, "cs1Label"),
    custom("cs2", "deviceCustomString2", STR, CS, "cs2Label"),
    custom("cs3", "deviceCustomString3", STR, CS, "cs3Label"),
    custom("cs4", "deviceCustomString4", STR, CS, "cs4Label"),
    custom("cs5", "deviceCustomString5", STR, CS, "cs5Label"),
    custom("cs6", "deviceCustomString6", STR, CS, "cs6Label"),
    label("cs1Label", "deviceCustomString1Label", "cs1", 1023),
    label("cs2Label", "deviceCustomString2Label", "cs2", 1023),
    label("cs3Label", "deviceCustomString3Label", "cs3", 1023),
    label("cs4Label", "deviceCustomString4Label", "cs4", 1023),
    label("cs5Label", "deviceCustomString5Label", "cs5", 1023),
    label("cs6Label", "deviceCustomString6Label", "cs6", 1023),
    // Custom numbers (64-bit).
    custom("cn1", "deviceCustomNumber1", L, UNL, "cn1Label"),
    custom("cn2", "deviceCustomNumber2", L, UNL, "cn2Label"),
    custom("cn3", "deviceCustomNumber3", L, UNL, "cn3Label"),
    label("cn1Label", "deviceCustomNumber1Label", "cn1", 1023),
    label("cn2Label", "deviceCustomNumber2Label", "cn2", 1023),
    label("cn3Label", "deviceCustomNumber3Label", "cn3", 1023),
    // Custom floating point.
    custom("cfp1", "deviceCustomFloatingPoint1", D, UNL, "cfp1Label"),
    custom("cfp2", "deviceCustomFloatingPoint2", D, UNL, "cfp2Label"),
    custom("cfp3", "deviceCustomFloatingPoint3", D, UNL, "cfp3Label"),
    custom("cfp4", "deviceCustomFloatingPoint4", D, UNL, "cfp4Label"),
    label("cfp1Label", "deviceCustomFloatingPoint1Label", "cfp1", 1023),
    label("cfp2Label", "deviceCustomFloatingPoint2Label", "cfp2", 1023),
    label("cfp3Label", "deviceCustomFloatingPoint3Label", "cfp3", 1023),
    label("cfp4Label", "deviceCustomFloatingPoint4Label", "cfp4", 1023),
    // Custom IPv6 addresses; 1 device, 2 source, 3 destination by the standard's convention.
    conventional(custom("c6a1", "deviceCustomIPv6Address1", IP6, UNL, "c6a1Label"), "Device IPv6 Address"),
    conventional(custom("c6a2", "deviceCustomIPv6Address2", IP6, UNL, "c6a2Label"), "Source IPv6 Address"),
    conventional(custom("c6a3", "deviceCustomIPv6Address3", IP6, UNL, "c6a3Label"), "Destination IPv6 Address"),
    custom("c6a4", "deviceCustomIPv6Address4", IP6, UNL, "c6a4Label"),
    label("c6a1Label", "deviceCustomIPv6Address1Label", "c6a1", 1023),
    label("c6a2Label", "deviceCustomIPv6Address2Label", "c6a2", 1023),
    label("c6a3Label", "deviceCustomIPv6Address3Label", "c6a3", 1023),
    label("c6a4Label", "deviceCustomIPv6Address4Label", "c6a4", 1023),
    // Custom dates.
    custom("deviceCustomDate1", "deviceCustomDate1", TS, UNL, "deviceCustomDate1Label"),
    custom("deviceCustomDate2", "deviceCustomDate2", TS, UNL, "deviceCustomDate2Label"),
    label("deviceCustomDate1Label", "deviceCustomDate1Label", "deviceCustomDate1", 1023),
    label("deviceCustomDate2Label", "deviceCustomDate2Label", "deviceCustomDate2", 1023),
    // Flex fields ("typically reserved for customer use").
    custom("flexString1", "flexString1", STR, MaxLen::Chars(1023), "flexString1Label"),
    custom("flexString2", "flexString2", STR, MaxLen::Chars(1023), "flexString2Label"),
    label("flexString1Label", "flexString1Label", "flexString1", 128),
    label("flexString2Label", "flexString2Label", "flexString2", 128),
    custom("flexDate1", "flexDate1", TS, UNL, "flexDate1Label"),
    label("flexDate1Label", "flexDate1Label", "flexDate1", 128),
    // CEF 1.2 additions (producer and consumer; only meaningful with CEF:1).
    v12(t("reportedDuration", "reportedDuration", L)),
    v12(s("reportedResourceGroupName", "reportedResourceGroupName", 128)),
    v12(s("reportedResourceID", "reportedResourceID", 256)),
    v12(s("reportedResourceName", "reportedResourceName", 64)),
    v12(s("reportedResourceType", "reportedResourceType", 64)),
    v12(s("frameworkName", "frameworkName", 256)),
    v12(s("threatActor", "threatActor", 40)),
    v12(s("threatAttackID", "threatAttackID", 32)),
    v12(t("sZoneKey", "sourceZoneKey", L)),
    v12(t("dZoneKey", "destinationZoneKey", L)),
    v12(t("deviceZoneKey", "deviceZoneKey", L)),
    v12(t("sTranslatedZoneKey", "sourceTranslatedZoneKey", L)),
    v12(t("dTranslatedZoneKey", "destinationTranslatedZoneKey", L)),
    v12(t("deviceTranslatedZoneKey", "deviceTranslatedZoneKey", L)),
    v12(t("agentZoneKey", "agentZoneKey", L)),
    v12(t("agentTranslatedZoneKey", "agentTranslatedZoneKey", L)),
    v12(t("customerKey", "customerKey", L)),
];

/// Keys the ArcSight connector sets itself (key, full name). A producer must never send them.
/// Every key ending in `ZoneURI` or `ZoneExternalID` is consumer-only too (checked by suffix).
pub static CONSUMER_ONLY: &[(&str, &str)] = &[
    ("agt", "agentAddress"),
    ("ahost", "agentHostName"),
    ("aid", "agentId"),
    ("amac", "agentMacAddress"),
    ("art", "agentReceiptTime"),
    ("at", "agentType"),
    ("atz", "agentTimeZone"),
    ("av", "agentVersion"),
    ("agentDnsDomain", "agentDnsDomain"),
    ("agentNtDomain", "agentNtDomain"),
    ("agentTranslatedAddress", "agentTranslatedAddress"),
    ("customerExternalID", "customerExternalID"),
    ("customerURI", "customerURI"),
    ("dlat", "destinationGeoLatitude"),
    ("dlong", "destinationGeoLongitude"),
    ("slat", "sourceGeoLatitude"),
    ("slong", "sourceGeoLongitude"),
    ("eventId", "eventId"),
    ("rawEvent", "rawEvent"),
];

const CONSUMER_ONLY_SUFFIXES: &[&str] = &["ZoneURI", "ZoneExternalID"];

/// Header fields, by their dictionary names: they are set in the header, never as extension keys.
pub static HEADER_FIELDS: &[&str] = &[
    "deviceVendor",
    "deviceProduct",
    "deviceVersion",
    "deviceEventClassId",
    "name",
    "severity",
    "agentSeverity",
];

/// Custom-field families: (key prefix, full-name prefix, highest number, label suffix allowed).
/// Used to reject `cs7`, `cn4`, `c6a5Label`, … with a hint.
const FAMILIES: &[(&str, &str, u32)] = &[
    ("cs", "deviceCustomString", 6),
    ("cn", "deviceCustomNumber", 3),
    ("cfp", "deviceCustomFloatingPoint", 4),
    ("c6a", "deviceCustomIPv6Address", 4),
    ("deviceCustomDate", "deviceCustomDate", 2),
    ("flexString", "flexString", 2),
    ("flexDate", "flexDate", 1),
];

const _: () = assert!(
    DICTIONARY.len() <= 256,
    "the encoder's key bitset holds 256 slots"
);

// ---------------------------------------------------------------------------------------------
// Lookups.

fn index() -> &'static HashMap<&'static str, u16> {
    static INDEX: OnceLock<HashMap<&'static str, u16>> = OnceLock::new();
    INDEX.get_or_init(|| {
        DICTIONARY
            .iter()
            .enumerate()
            .map(|(i, info)| (info.key, i as u16))
            .collect()
    })
}

/// The dictionary row of a key (exact, case-sensitive), e.g. `lookup("in")`.
pub fn lookup(key: &str) -> Option<&'static KeyInfo> {
    index().get(key).map(|&i| &DICTIONARY[i as usize])
}

/// Position of a key in [`DICTIONARY`].
pub(crate) fn slot(key: &str) -> Option<u16> {
    index().get(key).copied()
}

/// The label key that goes with a custom field: `label_for("cs1") == Some("cs1Label")`.
pub fn label_for(key: &str) -> Option<&'static str> {
    lookup(key).and_then(|info| info.label_key)
}

/// Whether the connector sets this key itself (`art`, `eventId`, `sourceZoneURI`, …).
pub fn is_consumer_only(key: &str) -> bool {
    CONSUMER_ONLY
        .iter()
        .any(|&(k, full)| k == key || full == key)
        || CONSUMER_ONLY_SUFFIXES.iter().any(|sfx| key.ends_with(sfx))
}

/// What a valid key is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyCheck {
    /// A dictionary key: ArcSight maps it to its field.
    Predefined(&'static KeyInfo),
    /// A vendor custom key: kept by ArcSight in "Additional Data", not available to ESM
    /// correlation or reports. Prefer a `csN`/`cnN`/… field with a label where one is free.
    Custom,
}

/// Why a key cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "CEF key is empty; use a dictionary key such as `msg`, or a custom key such as `CiscoFirepowerSslServerName`"
    )]
    Empty,
    #[error(
        "CEF key `{key}` contains {found:?} at position {position}; keys are one word of ASCII letters \
         and digits starting with a letter (e.g. `CiscoFirepowerSslServerName`)"
    )]
    InvalidCharacter {
        key: String,
        found: char,
        position: usize,
    },
    #[error(
        "CEF key `{key}` is the full name of the dictionary key `{use_key}`; ArcSight would file it as \
         a custom key under Additional Data, not in its {key} field. Write `{use_key}` instead"
    )]
    FullName { key: String, use_key: &'static str },
    #[error(
        "CEF key `{key}` differs only in case from the dictionary key `{use_key}`; keys are case-sensitive. Write `{use_key}` instead"
    )]
    WrongCase { key: String, use_key: &'static str },
    #[error(
        "CEF key `{key}` is set by the ArcSight connector itself and must never be sent by a producer; \
         choose another key (a custom field such as `cs1` with a label, or a custom key)"
    )]
    ConsumerOnly { key: String },
    #[error("`{key}` is a CEF header field, not an extension key; it is set in the header")]
    HeaderField { key: String },
    #[error(
        "CEF has no custom field `{key}`; the family has {first}..{last}. Pick a free one of those"
    )]
    NoSuchCustomField {
        key: String,
        first: String,
        last: String,
    },
}

/// Checks a key a mapping table wants to send. Dictionary keys are accepted as they are; any other
/// key must be a valid custom key (`^[A-Za-z][A-Za-z0-9]*$`) that is not a dictionary full name
/// (`bytesIn` → use `in`), not a case variant of a dictionary name, not consumer-only, not a header
/// field and not an out-of-range custom field (`cs7`).
pub fn check_key(key: &str) -> Result<KeyCheck, KeyError> {
    if key.is_empty() {
        return Err(KeyError::Empty);
    }
    if let Some((position, found)) = key
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
    {
        return Err(KeyError::InvalidCharacter {
            key: key.to_owned(),
            found,
            position,
        });
    }
    if let Some(info) = lookup(key) {
        return Ok(KeyCheck::Predefined(info));
    }
    if is_consumer_only(key) {
        return Err(KeyError::ConsumerOnly {
            key: key.to_owned(),
        });
    }
    if HEADER_FIELDS.contains(&key) {
        return Err(KeyError::HeaderField {
            key: key.to_owned(),
        });
    }
    if let Some(info) = DICTIONARY.iter().find(|i| i.full_name == key) {
        return Err(KeyError::FullName {
            key: key.to_owned(),
            use_key: info.key,
        });
    }
    if let Some(info) = DICTIONARY
        .iter()
        .find(|i| i.key.eq_ignore_ascii_case(key) || i.full_name.eq_ignore_ascii_case(key))
    {
        return Err(KeyError::WrongCase {
            key: key.to_owned(),
            use_key: info.key,
        });
    }
    if CONSUMER_ONLY
        .iter()
        .any(|&(k, full)| k.eq_ignore_ascii_case(key) || full.eq_ignore_ascii_case(key))
    {
        return Err(KeyError::ConsumerOnly {
            key: key.to_owned(),
        });
    }
    if HEADER_FIELDS.iter().any(|h| h.eq_ignore_ascii_case(key)) {
        return Err(KeyError::HeaderField {
            key: key.to_owned(),
        });
    }
    if let Some(err) = out_of_range_custom_field(key) {
        return Err(err);
    }
    Ok(KeyCheck::Custom)
}

/// `cs7`, `cn0Label`, `deviceCustomString9`, …: shaped like a custom field but not one.
fn out_of_range_custom_field(key: &str) -> Option<KeyError> {
    let lower = key.to_ascii_lowercase();
    for &(short, full, last) in FAMILIES {
        for prefix in [short, full] {
            let p = prefix.to_ascii_lowercase();
            let Some(rest) = lower.strip_prefix(&p) else {
                continue;
            };
            let rest = rest.strip_suffix("label").unwrap_or(rest);
            if !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit()) {
                return Some(KeyError::NoSuchCustomField {
                    key: key.to_owned(),
                    first: format!("{short}1"),
                    last: format!("{short}{last}"),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_full_names_are_unique_and_well_formed() {
        let mut seen = std::collections::HashSet::new();
        for info in DICTIONARY {
            assert!(seen.insert(info.key), "duplicate key {}", info.key);
            assert!(
                info.key.bytes().all(|b| b.is_ascii_alphanumeric()),
                "{}",
                info.key
            );
            if let Some(l) = info.label_key {
                assert_eq!(lookup(l).unwrap().labels, Some(info.key));
            }
            if let Some(of) = info.labels {
                assert_eq!(lookup(of).unwrap().label_key, Some(info.key));
            }
        }
        for &(k, full) in CONSUMER_ONLY {
            assert!(lookup(k).is_none() && lookup(full).is_none(), "{k}");
        }
    }
}
