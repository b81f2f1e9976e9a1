//! The CEF key dictionary and key checks, against `shared/reference/cef-and-syslog.md` 1.8, 1.13.

use estreamer_cef::cef::dictionary::{CONSUMER_ONLY, DICTIONARY, is_consumer_only};
use estreamer_cef::cef::{
    Key, KeyCheck, KeyError, KeyOptions, MaxLen, Since, ValueType, check_key, label_for, lookup,
};

#[test]
fn full_name_used_as_key_is_rejected_with_the_right_key_as_hint() {
    for (full, key) in [
        ("bytesIn", "in"),
        ("bytesOut", "out"),
        ("sourceAddress", "src"),
        ("message", "msg"),
        ("deviceCustomString1", "cs1"),
        ("filename", "fname"),
    ] {
        let err = check_key(full).unwrap_err();
        assert_eq!(
            err,
            KeyError::FullName {
                key: full.into(),
                use_key: key
            }
        );
        let text = err.to_string();
        assert!(text.contains(&format!("Write `{key}` instead")), "{text}");
    }
}

#[test]
fn consumer_only_keys_are_rejected() {
    for k in [
        "art",
        "agt",
        "eventId",
        "rawEvent",
        "agentReceiptTime",
        "sourceZoneURI",
        "deviceTranslatedZoneExternalID",
        "customerURI",
        "dlat",
    ] {
        assert_eq!(
            check_key(k),
            Err(KeyError::ConsumerOnly { key: k.into() }),
            "{k}"
        );
        assert!(Key::new(k).is_err(), "{k}");
    }
    // The suffix rule covers zone keys not listed one by one.
    assert!(is_consumer_only("anythingZoneURI"));
    // Case variants of a consumer-only key are not a way around the rule.
    assert!(matches!(
        check_key("EventId"),
        Err(KeyError::ConsumerOnly { .. })
    ));
}

#[test]
fn custom_fields_beyond_the_family_are_rejected() {
    for (k, first, last) in [
        ("cs7", "cs1", "cs6"),
        ("cs0", "cs1", "cs6"),
        ("cs7Label", "cs1", "cs6"),
        ("cn4", "cn1", "cn3"),
        ("cfp5", "cfp1", "cfp4"),
        ("c6a5Label", "c6a1", "c6a4"),
        (
            "deviceCustomDate3",
            "deviceCustomDate1",
            "deviceCustomDate2",
        ),
        ("flexString3", "flexString1", "flexString2"),
        ("flexDate2", "flexDate1", "flexDate1"),
        ("deviceCustomString7", "cs1", "cs6"),
    ] {
        assert_eq!(
            check_key(k),
            Err(KeyError::NoSuchCustomField {
                key: k.into(),
                first: first.into(),
                last: last.into()
            }),
            "{k}"
        );
    }
}

#[test]
fn vendor_custom_keys_are_accepted() {
    for k in [
        "CiscoFirepowerSslServerName",
        "CiscoFirepowerIngressZone",
        "x",
        "csv2",
    ] {
        assert_eq!(check_key(k), Ok(KeyCheck::Custom), "{k}");
    }
    let key = Key::new("CiscoFirepowerSslServerName").unwrap();
    assert!(key.is_custom());
    assert_eq!(key.value_type(), ValueType::String);
}

#[test]
fn malformed_keys_are_rejected() {
    for (k, found, position) in [
        ("my-key", '-', 2),
        ("1abc", '1', 0),
        ("key name", ' ', 3),
        ("schlüssel", 'ü', 4),
        ("a=b", '=', 1),
        ("_x", '_', 0),
    ] {
        assert_eq!(
            check_key(k),
            Err(KeyError::InvalidCharacter {
                key: k.into(),
                found,
                position
            }),
            "{k}"
        );
    }
    assert_eq!(check_key(""), Err(KeyError::Empty));
}

#[test]
fn wrong_case_is_rejected_with_the_correct_spelling() {
    // Typos found in published tables (reference 1.8).
    for (k, right) in [
        ("DeviceOutboundInterface", "deviceOutboundInterface"),
        ("C6a4Label", "c6a4Label"),
        ("DeviceCustomNumber2", "cn2"),
        ("Reason", "reason"),
        ("SRC", "src"),
    ] {
        assert_eq!(
            check_key(k),
            Err(KeyError::WrongCase {
                key: k.into(),
                use_key: right
            }),
            "{k}"
        );
    }
}

#[test]
fn header_fields_are_not_extension_keys() {
    for k in [
        "name",
        "deviceVendor",
        "deviceEventClassId",
        "severity",
        "Severity",
    ] {
        assert!(
            matches!(check_key(k), Err(KeyError::HeaderField { .. })),
            "{k}: {:?}",
            check_key(k)
        );
    }
}

#[test]
fn dictionary_rows_match_the_reference_table() {
    // An independent transcription of rows of reference 1.13 (key, full name, type, length).
    use ValueType::*;
    let rows: &[(&str, &str, ValueType, Option<u32>)] = &[
        ("act", "deviceAction", String, Some(63)),
        ("app", "applicationProtocol", String, Some(31)),
        ("cnt", "baseEventCount", Integer, None),
        ("deviceExternalId", "deviceExternalId", String, Some(255)),
        (
            "deviceInboundInterface",
            "deviceInboundInterface",
            String,
            Some(128),
        ),
        ("dhost", "destinationHostName", String, Some(1023)),
        ("dmac", "destinationMacAddress", Mac, None),
        ("dpt", "destinationPort", Integer, None),
        ("dst", "destinationAddress", Ipv4, None),
        ("dvchost", "deviceHostName", String, Some(100)),
        ("dvcmac", "deviceMacAddress", Mac, None),
        ("end", "endTime", Timestamp, None),
        ("externalId", "externalId", String, Some(40)),
        ("in", "bytesIn", Integer, None),
        ("msg", "message", String, Some(1023)),
        ("out", "bytesOut", Integer, None),
        ("outcome", "eventOutcome", String, Some(63)),
        ("proto", "transportProtocol", String, Some(31)),
        ("request", "requestUrl", String, Some(1023)),
        ("requestContext", "requestContext", String, Some(2048)),
        ("rt", "deviceReceiptTime", Timestamp, None),
        ("smac", "sourceMacAddress", Mac, None),
        ("src", "sourceAddress", Ipv4, None),
        (
            "sourceTranslatedPort",
            "sourceTranslatedPort",
            Integer,
            None,
        ),
        ("type", "type", Integer, None),
        ("fname", "filename", String, Some(1023)),
        ("fileHash", "fileHash", String, Some(255)),
        ("fsize", "fileSize", Integer, None),
        ("oldFileHash", "oldFileHash", String, Some(255)),
        (
            "oldFileModificationTime",
            "oldFileModificationTime",
            Timestamp,
            None,
        ),
        ("cn2", "deviceCustomNumber2", Long, None),
        ("cfp4", "deviceCustomFloatingPoint4", Double, None),
        ("c6a2", "deviceCustomIPv6Address2", Ipv6, None),
        ("deviceCustomDate2", "deviceCustomDate2", Timestamp, None),
        ("flexString2", "flexString2", String, Some(1023)),
        ("flexString1Label", "flexString1Label", String, Some(128)),
        ("flexDate1Label", "flexDate1Label", String, Some(128)),
        ("cs3Label", "deviceCustomString3Label", String, Some(1023)),
    ];
    let opts = KeyOptions::default();
    for &(key, full, ty, len) in rows {
        let info = lookup(key).unwrap_or_else(|| panic!("{key} missing"));
        assert_eq!(
            (info.full_name, info.value_type, info.max_chars(&opts)),
            (full, ty, len),
            "{key}"
        );
        assert_eq!(info.since, Since::Cef0, "{key}");
    }
    assert_eq!(lookup("cs1").unwrap().max_len, MaxLen::CustomString);
    assert_eq!(lookup("threatAttackID").unwrap().since, Since::Cef12);
    assert!(
        lookup("bytesIn").is_none(),
        "lookup is by key, not by full name"
    );
}

#[test]
fn every_producer_key_of_the_reference_is_present() {
    let keys = "act app cat cnt deviceDirection deviceDnsDomain deviceExternalId deviceFacility \
        deviceInboundInterface deviceOutboundInterface deviceNtDomain devicePayloadId deviceProcessName \
        deviceTranslatedAddress dhost dmac dntdom dpid dpriv dproc dpt dst destinationDnsDomain \
        destinationServiceName destinationTranslatedAddress destinationTranslatedPort dtz duid duser dvc \
        dvchost dvcmac dvcpid end externalId in msg out outcome proto reason request \
        requestClientApplication requestContext requestCookies requestMethod rt shost smac sntdom \
        sourceDnsDomain sourceServiceName sourceTranslatedAddress sourceTranslatedPort spid spriv sproc \
        spt src start suid suser type fname filePath fileHash fileType fsize fileId filePermission \
        fileCreateTime fileModificationTime oldFileName oldFilePath oldFileType oldFileId \
        oldFilePermission oldFileHash oldFileSize oldFileCreateTime oldFileModificationTime";
    for k in keys.split_whitespace() {
        assert_eq!(
            check_key(k),
            Ok(KeyCheck::Predefined(lookup(k).unwrap())),
            "{k}"
        );
    }
}

#[test]
fn every_custom_field_has_its_label_key() {
    let families: &[(&str, u32, u32)] = &[
        ("cs", 6, 1023),
        ("cn", 3, 1023),
        ("cfp", 4, 1023),
        ("c6a", 4, 1023),
        ("deviceCustomDate", 2, 1023),
        ("flexString", 2, 128),
        ("flexDate", 1, 128),
    ];
    for &(prefix, n, label_len) in families {
        for i in 1..=n {
            let field = format!("{prefix}{i}");
            let label = format!("{field}Label");
            assert_eq!(label_for(&field), Some(label.as_str()), "{field}");
            let info = lookup(&label).unwrap_or_else(|| panic!("{label} missing"));
            assert_eq!(info.max_len, MaxLen::Chars(label_len), "{label}");
            assert_eq!(info.labels, Some(lookup(&field).unwrap().key));
        }
    }
    assert_eq!(label_for("msg"), None);
    assert_eq!(label_for("cs1Label"), None);
    assert_eq!(
        lookup("c6a3").unwrap().conventional_label,
        Some("Destination IPv6 Address")
    );
}

#[test]
fn consumer_only_keys_are_not_in_the_producer_dictionary() {
    for &(k, full) in CONSUMER_ONLY {
        assert!(lookup(k).is_none() && lookup(full).is_none(), "{k}");
    }
    assert!(DICTIONARY.iter().all(|i| !is_consumer_only(i.key)));
}

#[test]
fn custom_string_limit_option() {
    assert_eq!(KeyOptions::default().cs_max_chars(), 1023);
    assert_eq!(
        KeyOptions::with_cs_max_chars(4000).unwrap().cs_max_chars(),
        4000
    );
    let err = KeyOptions::with_cs_max_chars(4001).unwrap_err();
    assert!(err.to_string().contains("4001"), "{err}");
    assert!(KeyOptions::with_cs_max_chars(0).is_err());
    let opts = KeyOptions::with_cs_max_chars(2000).unwrap();
    assert_eq!(
        Key::with_options("cs6", &opts).unwrap().max_chars(),
        Some(2000)
    );
    assert_eq!(
        Key::with_options("cs6Label", &opts).unwrap().max_chars(),
        Some(1023)
    );
}
