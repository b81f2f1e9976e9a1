//! The CEF encoder's exact output: one test per escaping rule, per test vector of
//! `shared/reference/cef-and-syslog.md` 4.5, and per truncation/omission/ordering rule.

use std::net::{IpAddr, Ipv4Addr};

use estreamer_cef::cef::{
    AddressKeys, CefEncoder, CefHeader, CefLine, Field, HeaderError, Key, KeyOptions, Warning,
};

const PREFIX: &str = "CEF:0|Cisco|Firepower|6.0|c|n|5|";

fn key(name: &str) -> Key {
    Key::new(name).unwrap()
}

/// Encodes one line with class id `c`, name `n`, severity 5; returns it and its warnings.
fn encode(pairs: impl FnOnce(&mut CefLine<'_>)) -> (String, Vec<Warning>) {
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let mut line = enc.begin(&mut buf, "c", "n", 5);
    pairs(&mut line);
    let warnings = line.finish().to_vec();
    (
        String::from_utf8(buf).expect("the encoder writes UTF-8"),
        warnings,
    )
}

/// The extension of a line with a single text pair.
fn ext(key_name: &str, value: &str) -> String {
    let k = key(key_name);
    let (line, _) = encode(|l| {
        l.text(&k, value);
    });
    line.strip_prefix(PREFIX).unwrap().to_owned()
}

/// The Name header field as written, for a given name.
fn header_name(name: &str) -> (String, Vec<Warning>) {
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let warnings = enc.begin(&mut buf, "c", name, 5).finish().to_vec();
    let line = String::from_utf8(buf).unwrap();
    let rest = line.strip_prefix("CEF:0|Cisco|Firepower|6.0|c|").unwrap();
    (rest.strip_suffix("|5|").unwrap().to_owned(), warnings)
}

// -- extension escaping rules (reference 1.6) -------------------------------------------------

#[test]
fn extension_backslash_is_doubled() {
    assert_eq!(
        ext("filePath", "C:\\Windows\\x.exe"),
        "filePath=C:\\\\Windows\\\\x.exe"
    );
}

#[test]
fn extension_equals_is_escaped() {
    assert_eq!(ext("msg", "a=b=c"), "msg=a\\=b\\=c");
}

#[test]
fn extension_lf_becomes_backslash_n() {
    assert_eq!(ext("msg", "line1\nline2"), "msg=line1\\nline2");
}

#[test]
fn extension_cr_becomes_backslash_r() {
    assert_eq!(ext("msg", "a\rb"), "msg=a\\rb");
}

#[test]
fn extension_pipe_space_and_quotes_are_unchanged() {
    assert_eq!(ext("act", "a | b"), "act=a | b");
    assert_eq!(ext("msg", "\"quoted\" text"), "msg=\"quoted\" text");
}

#[test]
fn extension_other_control_characters_and_del_become_spaces_and_are_reported() {
    let k = key("msg");
    for c in (0u8..0x20)
        .filter(|c| *c != b'\n' && *c != b'\r')
        .chain([0x7f])
    {
        let value = format!("a{}b", c as char);
        let (line, warnings) = encode(|l| {
            l.text(&k, &value);
        });
        assert_eq!(line, format!("{PREFIX}msg=a b"), "control {c:#04x}");
        assert_eq!(
            warnings,
            vec![Warning::ControlChars {
                field: Field::Extension(k.clone()),
                replaced: 1
            }],
            "control {c:#04x}"
        );
    }
    assert_eq!(k.stats().control_chars, 31); // 30 C0 controls besides CR, LF, plus DEL
}

#[test]
fn extension_non_ascii_is_copied_unchanged() {
    assert_eq!(ext("suser", "Jörg 日本 🦀"), "suser=Jörg 日本 🦀");
}

#[test]
fn extension_escapes_are_done_once_in_one_pass() {
    // A backslash before `=` or `n` is a literal backslash, not an escape of what follows.
    assert_eq!(ext("msg", "\\=\\n"), "msg=\\\\\\=\\\\n");
}

// -- header escaping rules (reference 1.5) ----------------------------------------------------

#[test]
fn header_backslash_and_pipe_are_escaped_equals_is_not() {
    assert_eq!(header_name("a | b \\ c = d").0, "a \\| b \\\\ c = d");
}

#[test]
fn header_cr_lf_and_control_characters_become_spaces() {
    let (name, warnings) = header_name("a\nb\rc\td\0e\x7f");
    assert_eq!(name, "a b c d e ");
    assert_eq!(
        warnings,
        vec![Warning::ControlChars {
            field: Field::Name,
            replaced: 5
        }]
    );
}

#[test]
fn configured_header_fields_are_escaped_once() {
    let header = CefHeader::new("Ven|dor", "Pro\\duct", "1=0").unwrap();
    assert_eq!(header.prefix(), b"CEF:0|Ven\\|dor|Pro\\\\duct|1=0|");
    let mut enc = CefEncoder::new(header);
    let mut buf = Vec::new();
    enc.begin(&mut buf, "id|1", "n", 3);
    assert_eq!(buf, b"CEF:0|Ven\\|dor|Pro\\\\duct|1=0|id\\|1|n|3|");
}

#[test]
fn default_header_is_what_encore_sends() {
    let h = CefHeader::default();
    assert_eq!(
        (h.vendor(), h.product(), h.version()),
        ("Cisco", "Firepower", "6.0")
    );
}

#[test]
fn bad_configured_header_fields_are_errors_naming_the_field() {
    assert!(matches!(
        CefHeader::new("", "p", "1"),
        Err(HeaderError::Empty {
            field: "vendor",
            ..
        })
    ));
    let long = "v".repeat(64);
    let err = CefHeader::new(&long, "p", "1").unwrap_err();
    assert_eq!(
        err,
        HeaderError::TooLong {
            field: "vendor",
            chars: 64,
            max: 63
        }
    );
    assert!(err.to_string().contains("63"), "{err}");
    assert!(CefHeader::new("v", &"p".repeat(63), &"1".repeat(31)).is_ok());
    assert!(matches!(
        CefHeader::new("v", "p", &"1".repeat(32)),
        Err(HeaderError::TooLong {
            field: "version",
            ..
        })
    ));
    assert!(matches!(
        CefHeader::new("v", "p\n", "1"),
        Err(HeaderError::ControlCharacter {
            field: "product",
            found: '\n'
        })
    ));
}

#[test]
fn severity_above_ten_is_clamped_and_reported() {
    let mut enc = CefEncoder::default();
    for (given, written) in [(0u8, "0"), (9, "9"), (10, "10"), (11, "10"), (255, "10")] {
        let mut buf = Vec::new();
        let w = enc.begin(&mut buf, "c", "n", given).finish().to_vec();
        assert!(
            buf.ends_with(format!("|n|{written}|").as_bytes()),
            "{given}"
        );
        assert_eq!(w.is_empty(), given <= 10, "{given}: {w:?}");
    }
}

// -- test vectors of reference 4.5 ------------------------------------------------------------

#[test]
fn vector_01_name_with_pipe_backslash_equals() {
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    enc.begin(&mut buf, "1:2000:3", "a | b \\ c = d", 7);
    assert_eq!(
        buf,
        b"CEF:0|Cisco|Firepower|6.0|1:2000:3|a \\| b \\\\ c = d|7|"
    );
}

#[test]
fn vector_02_equals_in_msg() {
    assert_eq!(ext("msg", "x=y"), "msg=x\\=y");
}

#[test]
fn vector_03_backslashes_in_file_path() {
    assert_eq!(ext("filePath", "C:\\a\\b"), "filePath=C:\\\\a\\\\b");
}

#[test]
fn vector_04_crlf_in_msg() {
    assert_eq!(ext("msg", "l1\r\nl2"), "msg=l1\\r\\nl2");
}

#[test]
fn vector_05_pipe_in_act_is_not_escaped() {
    assert_eq!(ext("act", "a | b"), "act=a | b");
}

#[test]
fn vector_06_query_string() {
    assert_eq!(
        ext("request", "http://h/p?a=1&b=2"),
        "request=http://h/p?a\\=1&b\\=2"
    );
}

#[test]
fn vector_07_tab_and_nul_become_spaces() {
    assert_eq!(ext("msg", "a\tb\0c"), "msg=a b c");
}

#[test]
fn vector_08_lf_in_name_becomes_space() {
    assert_eq!(header_name("line1\nline2").0, "line1 line2");
}

#[test]
fn vector_09_utf8_unchanged_and_line_length_in_bytes() {
    let k = key("suser");
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    enc.begin(&mut buf, "c", "Überwachung – 日本", 5)
        .text(&k, "Jörg");
    let expected = "CEF:0|Cisco|Firepower|6.0|c|Überwachung – 日本|5|suser=Jörg";
    assert_eq!(buf, expected.as_bytes());
    // What a syslog framer counts: bytes, not characters.
    assert_eq!(buf.len(), expected.len());
    assert!(buf.len() > expected.chars().count());
}

#[test]
fn vector_10_invalid_utf8_becomes_replacement_character_and_is_counted() {
    let k = key("fname");
    let (line, warnings) = encode(|l| {
        l.bytes_lossy(&k, &[0x63, 0x61, 0x66, 0xE9, 0x2E, 0x65, 0x78, 0x65]);
    });
    assert_eq!(line, format!("{PREFIX}fname=caf\u{FFFD}.exe"));
    assert_eq!(
        warnings,
        vec![Warning::InvalidUtf8 {
            field: Field::Extension(k.clone()),
            replaced: 1
        }]
    );
    assert_eq!(k.stats().invalid_utf8, 1);
}

#[test]
fn vector_11_zero_values_are_kept() {
    let (spt, inb) = (key("spt"), key("in"));
    let (line, _) = encode(|l| {
        l.int(&spt, 0).uint(&inb, 0);
    });
    assert_eq!(line, format!("{PREFIX}spt=0 in=0"));
}

#[test]
fn vector_12_empty_value_is_omitted() {
    let (suser, msg) = (key("suser"), key("msg"));
    let (line, warnings) = encode(|l| {
        l.text(&suser, "").text(&msg, "x").text(&suser, "");
    });
    // No space after the seventh `|` although the first call wrote nothing.
    assert_eq!(line, format!("{PREFIX}msg=x"));
    assert!(warnings.is_empty());
}

#[test]
fn vector_13_long_msg_is_cut_to_1023_characters_on_a_character_boundary() {
    let k = key("msg");
    let value = "ä".repeat(1500);
    let (line, warnings) = encode(|l| {
        l.text(&k, &value);
    });
    let v = line.strip_prefix(&format!("{PREFIX}msg=")).unwrap();
    assert_eq!(v, "ä".repeat(1023));
    assert_eq!(
        warnings,
        vec![Warning::Truncated {
            field: Field::Extension(k.clone()),
            chars: 1500,
            max: 1023
        }]
    );
    assert_eq!(k.stats().truncated, 1);
}

#[test]
fn vector_14_trailing_spaces_are_trimmed() {
    let (msg, act) = (key("msg"), key("act"));
    let (line, _) = encode(|l| {
        l.text(&msg, "two  ").text(&act, "last \t ");
    });
    assert_eq!(line, format!("{PREFIX}msg=two act=last"));
    // Spaces made only of spaces and controls: nothing left, pair omitted.
    assert_eq!(ext("msg", " \t "), "");
    // CR/LF are escaped, not spaces: they stay.
    assert_eq!(ext("msg", "a\n "), "msg=a\\n");
}

#[test]
fn vector_15_ipv6_goes_to_c6a_with_label_and_mapped_ipv4_is_unwrapped() {
    let (src, dst) = (AddressKeys::source(), AddressKeys::destination());
    let (line, _) = encode(|l| {
        l.address(&src, "2001:db8::1".parse().unwrap())
            .address(&dst, "::ffff:192.0.2.7".parse().unwrap());
    });
    assert_eq!(
        line,
        format!("{PREFIX}c6a2=2001:db8::1 c6a2Label=Source IPv6 Address dst=192.0.2.7")
    );
}

// -- truncation -------------------------------------------------------------------------------

#[test]
fn truncation_never_splits_a_multibyte_character() {
    // act: 63 characters. 62 ASCII then two 3-byte characters: the second one goes.
    assert_eq!(
        ext("act", &("a".repeat(62) + "日本")),
        format!("act={}日", "a".repeat(62))
    );
    // A 4-byte character exactly at the limit stays whole.
    assert_eq!(
        ext("act", &("a".repeat(62) + "🦀x")),
        format!("act={}🦀", "a".repeat(62))
    );
}

#[test]
fn truncation_counts_characters_before_escaping_and_never_splits_an_escape() {
    // The 63rd character is `=`: kept, and written whole as `\=` (64 bytes on the wire).
    assert_eq!(
        ext("act", &("a".repeat(62) + "=b")),
        format!("act={}\\=", "a".repeat(62))
    );
    // The 64th character is `\`: cut, so no lone backslash at the end.
    assert_eq!(
        ext("act", &("a".repeat(63) + "\\b")),
        format!("act={}", "a".repeat(63))
    );
    // Escapes earlier in the value do not use up the limit.
    let v = "=".repeat(63);
    assert_eq!(
        ext("act", &(v.clone() + "x")),
        format!("act={}", "\\=".repeat(63))
    );
}

#[test]
fn truncation_then_trim() {
    // Cut after the spaces: trailing spaces of the cut value go too.
    assert_eq!(
        ext("act", &("a".repeat(60) + "     tail")),
        format!("act={}", "a".repeat(60))
    );
}

#[test]
fn header_name_and_class_id_are_cut_without_splitting_escapes() {
    // 511 characters then `|`: the 512th is the pipe, kept as `\|`.
    let (name, w) = header_name(&("n".repeat(511) + "|x"));
    assert_eq!(name, "n".repeat(511) + "\\|");
    assert_eq!(
        w,
        vec![Warning::Truncated {
            field: Field::Name,
            chars: 513,
            max: 512
        }]
    );
    // 512 characters then `\`: the backslash is cut entirely.
    assert_eq!(header_name(&("n".repeat(512) + "\\")).0, "n".repeat(512));
    // Multi-byte at the cut.
    assert_eq!(
        header_name(&("n".repeat(511) + "日本")).0,
        "n".repeat(511) + "日"
    );

    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let w = enc
        .begin(&mut buf, &"c".repeat(1024), "n", 1)
        .finish()
        .to_vec();
    assert_eq!(
        buf,
        format!("CEF:0|Cisco|Firepower|6.0|{}|n|1|", "c".repeat(1023)).as_bytes()
    );
    assert_eq!(
        w,
        vec![Warning::Truncated {
            field: Field::ClassId,
            chars: 1024,
            max: 1023
        }]
    );
}

#[test]
fn custom_string_limit_is_1023_by_default_and_configurable_to_4000() {
    let value = "x".repeat(5000);
    let default = key("cs1");
    assert_eq!(default.max_chars(), Some(1023));
    let (line, _) = encode(|l| {
        l.text(&default, &value);
    });
    assert_eq!(line.len(), PREFIX.len() + "cs1=".len() + 1023);

    let v27 = Key::with_options("cs1", &KeyOptions::with_cs_max_chars(4000).unwrap()).unwrap();
    let (line, _) = encode(|l| {
        l.text(&v27, &value);
    });
    assert_eq!(line.len(), PREFIX.len() + "cs1=".len() + 4000);
    // Other keys keep their own limits.
    let msg = Key::with_options("msg", &KeyOptions::with_cs_max_chars(4000).unwrap()).unwrap();
    assert_eq!(msg.max_chars(), Some(1023));
}

#[test]
fn limits_of_short_keys() {
    for (name, max) in [
        ("dvchost", 100),
        ("externalId", 40),
        ("app", 31),
        ("requestContext", 2048),
    ] {
        let (line, _) = encode(|l| {
            l.text(&key(name), &"é".repeat(3000));
        });
        let v = line.strip_prefix(&format!("{PREFIX}{name}=")).unwrap();
        assert_eq!(v.chars().count(), max, "{name}");
    }
}

// -- invalid UTF-8 ----------------------------------------------------------------------------

#[test]
fn invalid_utf8_each_maximal_bad_sequence_is_one_replacement() {
    let k = key("suser");
    let (line, w) = encode(|l| {
        // A lone continuation byte, a truncated 3-byte sequence, an overlong encoding.
        l.bytes_lossy(&k, b"a\x80b\xe6\x97c\xc0\xafd");
    });
    assert_eq!(
        line,
        format!("{PREFIX}suser=a\u{FFFD}b\u{FFFD}c\u{FFFD}\u{FFFD}d")
    );
    assert_eq!(
        w,
        vec![Warning::InvalidUtf8 {
            field: Field::Extension(k),
            replaced: 4
        }]
    );
}

#[test]
fn invalid_utf8_in_header_name_is_replaced_and_reported() {
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let w = enc
        .begin_lossy(&mut buf, b"1:2", b"bad \xff name|", 4)
        .finish()
        .to_vec();
    assert_eq!(
        String::from_utf8(buf).unwrap(),
        "CEF:0|Cisco|Firepower|6.0|1:2|bad \u{FFFD} name\\||4|"
    );
    assert_eq!(
        w,
        vec![Warning::InvalidUtf8 {
            field: Field::Name,
            replaced: 1
        }]
    );
}

#[test]
fn valid_bytes_take_the_same_path_as_text() {
    let k = key("msg");
    let (a, wa) = encode(|l| {
        l.bytes_lossy(&k, "x=ü\n".as_bytes());
    });
    let (b, wb) = encode(|l| {
        l.text(&k, "x=ü\n");
    });
    assert_eq!((a, wa), (b, wb));
}

// -- order, separators, duplicates, warnings ---------------------------------------------------

#[test]
fn keys_come_out_in_call_order_separated_by_one_space() {
    let names = ["suser", "src", "act", "cnt", "CiscoFirepowerX", "app"];
    let keys: Vec<Key> = names.iter().map(|n| key(n)).collect();
    let (line, _) = encode(|l| {
        for k in &keys {
            l.text(k, "v");
        }
    });
    assert_eq!(
        line,
        format!("{PREFIX}suser=v src=v act=v cnt=v CiscoFirepowerX=v app=v")
    );
}

#[test]
fn a_duplicate_key_is_dropped_and_reported() {
    let (msg, custom) = (key("msg"), key("CiscoFirepowerX"));
    let (line, w) = encode(|l| {
        l.text(&msg, "first")
            .text(&custom, "a")
            .text(&msg, "second")
            .text(&key("CiscoFirepowerX"), "b")
            .int(&msg, 3);
    });
    assert_eq!(line, format!("{PREFIX}msg=first CiscoFirepowerX=a"));
    assert_eq!(
        w,
        vec![
            Warning::DuplicateKey { key: msg.clone() },
            Warning::DuplicateKey {
                key: custom.clone()
            },
            Warning::DuplicateKey { key: msg.clone() },
        ]
    );
    assert_eq!(msg.stats().duplicates, 2);
}

#[test]
fn a_custom_key_that_is_a_prefix_of_another_is_not_a_duplicate() {
    let (a, b) = (key("CiscoFoo"), key("CiscoFooBar"));
    let (line, w) = encode(|l| {
        l.text(&b, "1").text(&a, "2");
    });
    assert_eq!(line, format!("{PREFIX}CiscoFooBar=1 CiscoFoo=2"));
    assert!(w.is_empty());
}

#[test]
fn warnings_are_per_line() {
    let k = key("msg");
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let w1 = enc
        .begin(&mut buf, "c", "n", 1)
        .text(&k, "a\tb")
        .warnings()
        .len();
    buf.clear();
    let mut line = enc.begin(&mut buf, "c", "n", 1);
    line.text(&k, "clean");
    assert_eq!((w1, line.finish().len()), (1, 0));
    assert_eq!(enc.stats().lines, 2);
    assert_eq!(enc.stats().control_chars, 1);
}

#[test]
fn begin_appends_to_what_is_already_in_the_buffer() {
    let mut enc = CefEncoder::default();
    let mut buf = b"<134>1 - - - - - ".to_vec();
    enc.begin(&mut buf, "c", "n", 1).text(&key("msg"), "x");
    assert_eq!(
        buf,
        b"<134>1 - - - - - CEF:0|Cisco|Firepower|6.0|c|n|1|msg=x"
    );
}

// -- numbers, addresses, times ----------------------------------------------------------------

#[test]
fn integer_keys_are_clamped_to_32_bits_and_reported() {
    let (inb, out, cn1) = (key("in"), key("out"), key("cn1"));
    let (line, w) = encode(|l| {
        l.uint(&inb, 5_000_000_000)
            .int(&out, -5_000_000_000)
            .uint(&cn1, 5_000_000_000);
    });
    assert_eq!(
        line,
        format!("{PREFIX}in=2147483647 out=-2147483648 cn1=5000000000")
    );
    assert_eq!(
        w,
        vec![
            Warning::NumberClamped {
                key: inb.clone(),
                given: 5_000_000_000,
                written: 2147483647
            },
            Warning::NumberClamped {
                key: out.clone(),
                given: -5_000_000_000,
                written: -2147483648
            },
        ]
    );
    assert_eq!(inb.stats().clamped, 1);
    assert_eq!(inb.value_type(), estreamer_cef::cef::ValueType::Integer);
}

#[test]
fn long_keys_are_clamped_to_64_bits_and_other_keys_take_any_u64() {
    let (cn1, custom, msg) = (key("cn1"), key("CiscoCounter"), key("msg"));
    let (line, w) = encode(|l| {
        l.uint(&cn1, u64::MAX)
            .uint(&custom, u64::MAX)
            .int(&msg, i64::MIN);
    });
    assert_eq!(
        line,
        format!(
            "{PREFIX}cn1=9223372036854775807 CiscoCounter=18446744073709551615 msg=-9223372036854775808"
        )
    );
    assert_eq!(w.len(), 1);
}

#[test]
fn floats_use_the_shortest_exact_form_and_non_finite_is_omitted() {
    let (a, b, c) = (key("cfp1"), key("cfp2"), key("cfp3"));
    let (line, w) = encode(|l| {
        l.float(&a, 1.5).float(&b, f64::NAN).float(&c, 0.1);
    });
    assert_eq!(line, format!("{PREFIX}cfp1=1.5 cfp3=0.1"));
    assert_eq!(w, vec![Warning::NotFinite { key: b }]);
}

#[test]
fn timestamps_are_epoch_milliseconds() {
    let rt = key("rt");
    let (line, _) = encode(|l| {
        l.timestamp(&rt, 1_714_559_696, 123_999);
    });
    assert_eq!(line, format!("{PREFIX}rt=1714559696123"));
}

#[test]
fn addresses_and_macs() {
    let (src, smac, c6a4) = (key("src"), key("smac"), key("c6a4"));
    let dvc = AddressKeys::device();
    let (line, _) = encode(|l| {
        l.ipv4(&src, Ipv4Addr::new(10, 0, 255, 1))
            .mac(&smac, [0x00, 0x0d, 0x60, 0xaf, 0x1b, 0x61])
            .ipv6(&c6a4, "fe80::1:2".parse().unwrap())
            .address(&dvc, IpAddr::V6("::".parse().unwrap()));
    });
    // `::` is eStreamer's "no address": omitted.
    assert_eq!(
        line,
        format!("{PREFIX}src=10.0.255.1 smac=00:0D:60:AF:1B:61 c6a4=fe80::1:2")
    );
    let (line, _) = encode(|l| {
        l.address(&dvc, "2001:db8::7".parse().unwrap());
    });
    assert_eq!(
        line,
        format!("{PREFIX}c6a1=2001:db8::7 c6a1Label=Device IPv6 Address")
    );
}

#[test]
fn warnings_read_as_what_happened_to_which_field() {
    let (msg, inb) = (key("msg"), key("in"));
    let mut enc = CefEncoder::default();
    let mut buf = Vec::new();
    let warnings: Vec<String> = enc
        .begin_lossy(&mut buf, b"c", b"n\xff", 12)
        .text(&msg, &"a\t".repeat(600))
        .uint(&inb, 1 << 40)
        .text(&msg, "again")
        .warnings()
        .iter()
        .map(|w| w.to_string())
        .collect();
    assert_eq!(
        warnings,
        [
            "header Name: 1 invalid UTF-8 sequence(s) replaced by U+FFFD",
            "severity 12 is above 10; written as 10",
            "`msg`: value cut from 1200 to 1023 characters",
            "`msg`: 511 control character(s) replaced by a space",
            "`in`: 1099511627776 does not fit its Integer type; written as 2147483647",
            "`msg`: key already in this line; second value dropped",
        ]
    );
}

#[test]
fn a_prepared_constant_is_written_like_text_and_only_values_text_leaves_unchanged_qualify() {
    use estreamer_cef::cef::Prepared;
    let label = key("cs1Label");
    for value in ["fwPolicy", "Source IPv6 Address", "x", "Привет Ω"] {
        let p = Prepared::new(&label, value).expect("needs no change");
        let (by_text, _) = encode(|l| {
            l.text(&label, value).text(&key("cs2Label"), value);
        });
        let (by_prepared, warnings) = encode(|l| {
            l.prepared(&label, &p).prepared(&key("cs2Label"), &p);
        });
        assert_eq!(by_prepared, by_text);
        assert!(warnings.is_empty());
    }
    // Values the encoder changes go through `text`, which escapes, trims, cuts and reports.
    for value in [
        "",
        "a=b",
        "back\\slash",
        "line\nbreak",
        "tab\there",
        "trailing ",
        "\u{7f}",
    ] {
        assert_eq!(Prepared::new(&label, value), None, "{value:?}");
    }
    // Longer than the key allows (`proto`: 31 characters): cut by `text`.
    assert_eq!(Prepared::new(&key("proto"), &"p".repeat(32)), None);
    assert!(Prepared::new(&key("proto"), &"p".repeat(31)).is_some());
    // A key already in the line: the pair is dropped and reported, as with `text`.
    let p = Prepared::new(&label, "fwPolicy").unwrap();
    let (line, warnings) = encode(|l| {
        l.prepared(&label, &p).prepared(&label, &p);
    });
    assert_eq!(line, format!("{PREFIX}cs1Label=fwPolicy"));
    assert_eq!(warnings.len(), 1);
}

#[test]
fn a_prepared_header_is_written_like_begin_and_only_headers_begin_leaves_unchanged_qualify() {
    use estreamer_cef::cef::PreparedHeader;
    let line = |prepared: bool, class_id: &str, name: &str, severity: u8| {
        let mut enc = CefEncoder::default();
        let mut buf = Vec::new();
        let warnings = if prepared {
            let h = PreparedHeader::new(class_id, name).expect("needs no change");
            enc.begin_prepared(&mut buf, &h, severity).finish().to_vec()
        } else {
            enc.begin(&mut buf, class_id, name, severity)
                .finish()
                .to_vec()
        };
        (String::from_utf8(buf).unwrap(), warnings)
    };
    for (class_id, name) in [
        ("RNA:1003:1", "CONNECTION STATISTICS"),
        ("", ""),
        ("a=b", "trailing "),
        ("Ω", "Привет"),
    ] {
        for severity in [0, 7, 10, 12] {
            assert_eq!(
                line(true, class_id, name, severity),
                line(false, class_id, name, severity),
                "{class_id:?} {name:?} {severity}"
            );
        }
    }
    // What `begin` escapes or cuts (and reports) is not prepared.
    for (class_id, name) in [
        ("a|b", "n"),
        ("c", "back\\slash"),
        ("c", "line\nbreak"),
        (&*"c".repeat(1024), "n"),
        ("c", &*"n".repeat(513)),
    ] {
        assert_eq!(
            PreparedHeader::new(class_id, name),
            None,
            "{class_id:?} {name:?}"
        );
    }
    assert!(PreparedHeader::new(&"c".repeat(1023), &"n".repeat(512)).is_some());
}

#[test]
fn a_plain_value_is_written_exactly_as_text_would_write_it() {
    use estreamer_cef::cef::is_plain;
    // What the metadata cache marks plain, the encoder copies; what it does not, it escapes.
    assert!(is_plain("sensor-1 (Paris)"));
    for not_plain in [
        "",
        "a=b",
        "back\\slash",
        "trailing ",
        "line\nbreak",
        "bell\u{7}",
    ] {
        assert!(!is_plain(not_plain), "{not_plain:?}");
    }
    let name = "Zone Ä inside";
    let (plain, w1) = encode(|l| {
        l.plain(&key("cs3"), name).plain(&key("dvchost"), "fw-1");
    });
    let (text, w2) = encode(|l| {
        l.text(&key("cs3"), name).text(&key("dvchost"), "fw-1");
    });
    assert_eq!(plain, text);
    assert!(w1.is_empty() && w2.is_empty());
    // Longer than the key's limit (dvchost: 100 characters): cut and reported, as `text` does.
    let long = "h".repeat(150);
    let (plain, w1) = encode(|l| {
        l.plain(&key("dvchost"), &long);
    });
    let (text, w2) = encode(|l| {
        l.text(&key("dvchost"), &long);
    });
    assert_eq!(plain, text);
    assert_eq!(plain, format!("{PREFIX}dvchost={}", "h".repeat(100)));
    assert_eq!(w1, w2);
    assert_eq!(w1.len(), 1);
}
