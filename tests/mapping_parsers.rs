//! Every default mapping table against real CEF parsers: records of every mapped type from the
//! simulator's generator (strings with `=`, `\`, `|`, tabs, line breaks, non-ASCII text, NUL
//! padding, invalid UTF-8), mapped with the built-in tables, then read back by
//!
//! - the PyPI parser `cefp` 0.0.2 and liblognorm's `lognormalizer`
//!   (`tests/support/cef_parsers.rs`),
//! - a real syslog-ng receiver (`shared/testkit/syslog-ng-cef.conf`: RFC 5424 over TCP with octet
//!   counting, CEF parsed by cefp), the lines sent by our own syslog output.
//!
//! Every key and value must come back exactly as the mapper produced it. What it produced is
//! computed twice: from the line itself (header fields and values with the CEF escapes undone),
//! and, for every line whose source is a plain field, a resolved name or a constant, from the
//! decoded record and its resolved names (`decode`'s JSON), with the encoder's documented rules
//! (control characters become spaces, trailing ones are trimmed, limits cut, Integer keys clamp).
//!
//! Needs python3 with cefp 0.0.2 in `.test-deps/pylib`, `lognormalizer` (liblognorm-utils),
//! syslog-ng-core and syslog-ng-mod-python: `tests/install-deps.sh`.

#[path = "support/cef_parsers.rs"]
mod cef_parsers;
#[path = "support/mapping_run.rs"]
mod mapping_run;
#[path = "support/syslog_events.rs"]
mod syslog_events;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use estreamer_cef::cef::{Key, ValueType};
use estreamer_cef::mapping::Mappings;
use estreamer_cef::output::{Batch, OutEvent};
use estreamer_cef_sim::generate::{GenOptions, generate, unknown_record};
use mapping_run::{Mapped, map_records, split_line, unescape_value};
use serde_json::Value as Json;

/// What a parser must give back for one line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Expected {
    header: Vec<String>,
    extension: BTreeMap<String, String>,
}

fn expected_from_line(line: &str) -> Expected {
    let (header, pairs) = split_line(line);
    Expected {
        header,
        extension: pairs
            .into_iter()
            .map(|(k, v)| (k, unescape_value(&v)))
            .collect(),
    }
}

/// Mapped lines of every type the built-in tables map: events and metadata of three generated
/// scenarios (every catalog type), and records of types the catalog does not know.
fn corpus() -> Vec<Mapped> {
    let m = Mappings::builtin();
    let mut out = Vec::new();
    for seed in [21, 22, 23] {
        let g = generate(&GenOptions {
            seed,
            events_per_type: 6,
            ..GenOptions::default()
        });
        let mut records: Vec<_> = g.records().cloned().collect();
        records.push(unknown_record(9999, 1_735_689_600, 40));
        records.push(unknown_record(64000 + seed as u32, 0, 7));
        out.extend(map_records(&m, &records));
    }
    // Every table is exercised.
    let seen: BTreeSet<u32> = out.iter().map(|r| r.record_type).collect();
    let missing: Vec<u32> = m
        .record_types()
        .into_iter()
        .filter(|t| !seen.contains(t))
        .collect();
    assert!(missing.is_empty(), "no line for mapped types {missing:?}");
    assert!(seen.contains(&9999), "no line for an unknown record type");
    out
}

// -- expected values from the tables and the decoded records ------------------------------------

/// Each record type's extension lines: CEF key → source expression, from `mappings/*.toml`.
fn table_sources() -> HashMap<u32, Vec<(String, String)>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("mappings");
    let mut out = HashMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "toml") {
            continue;
        }
        let file: toml::Table = toml::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        for table in file["mapping"].as_array().unwrap() {
            let Some(types) = table["records"].as_array() else {
                continue; // "unknown"
            };
            let lines: Vec<(String, String)> = table["extension"]
                .as_table()
                .unwrap()
                .iter()
                .map(|(k, v)| {
                    let src = match v {
                        toml::Value::String(s) => s.clone(),
                        t => t["source"].as_str().unwrap().to_string(),
                    };
                    (k.clone(), src)
                })
                .collect();
            for t in types {
                out.insert(t.as_integer().unwrap() as u32, lines.clone());
            }
        }
    }
    out
}

/// A value as the encoder writes it into `key` (before escaping), `None` if it writes nothing.
fn rendered(key: &str, v: &Json) -> Option<String> {
    let k = Key::new(key).unwrap();
    match v {
        Json::Null => None,
        Json::Number(n) => {
            let n = n.as_i64().map(i128::from).unwrap_or(n.as_u64()? as i128);
            let n = match k.value_type() {
                ValueType::Integer => n.clamp(i32::MIN as i128, i32::MAX as i128),
                ValueType::Long | ValueType::Timestamp => {
                    n.clamp(i64::MIN as i128, i64::MAX as i128)
                }
                _ => n,
            };
            Some(n.to_string())
        }
        Json::String(s) => {
            let max = k.max_chars().unwrap_or(u32::MAX) as usize;
            let cut: String = s.chars().take(max).collect();
            let trimmed = cut.trim_end_matches(|c: char| {
                (c == ' ' || c.is_ascii_control()) && c != '\n' && c != '\r'
            });
            let text: String = trimmed
                .chars()
                .map(|c| {
                    if c.is_ascii_control() && c != '\n' && c != '\r' {
                        ' '
                    } else {
                        c
                    }
                })
                .collect();
            (!text.is_empty()).then_some(text)
        }
        // A string block.
        Json::Object(o) if o.contains_key("data") => rendered(key, &o["data"]),
        other => panic!("no rendering for {other} into {key}"),
    }
}

/// The decoded value at a mapping path (`a.b`, `list[0].field`).
fn json_at<'a>(fields: &'a serde_json::Map<String, Json>, path: &str) -> Option<&'a Json> {
    let mut cur: Option<&Json> = None;
    for (i, part) in path.split('.').enumerate() {
        let (name, first_item) = match part.strip_suffix("[0]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        let next = if i == 0 {
            fields.get(name)?
        } else {
            cur?.get(name)?
        };
        cur = Some(if first_item {
            next.get("items")?.get(0)?
        } else {
            next
        });
    }
    cur
}

fn is_mac(s: &str) -> bool {
    s.len() == 17
        && s.split(':').count() == 6
        && s.split(':')
            .all(|p| p.len() == 2 && p.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `csN` for `csNLabel` (and the other custom-field families).
fn label_of(key: &str) -> Option<&str> {
    let base = key.strip_suffix("Label")?;
    let custom = [
        "cs",
        "cn",
        "cfp",
        "c6a",
        "deviceCustomDate",
        "flexString",
        "flexDate",
    ]
    .iter()
    .any(|f| {
        base.strip_prefix(f)
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
    });
    custom.then_some(base)
}

enum Source<'a> {
    Field(&'a str),
    Name(&'a str),
    Constant(&'a str),
    Other,
}

fn classify(src: &str) -> Source<'_> {
    if let Some(c) = src.strip_prefix('\'').and_then(|s| s.strip_suffix('\'')) {
        Source::Constant(c)
    } else if let Some(n) = src.strip_prefix('@') {
        Source::Name(n)
    } else if src.contains('(') {
        Source::Other
    } else {
        Source::Field(src)
    }
}

/// Checks the line's values against the record: every plain field, resolved name and constant
/// is where the table says, rendered as the encoder's rules say. Returns how many were checked.
fn check_against_record(m: &Mapped, sources: &[(String, String)], got: &Expected) -> usize {
    let mut checked = 0;
    let ctx = || format!("record {} #{}: {}", m.record_type, m.index, m.line);
    for (key, src) in sources {
        let want = match classify(src) {
            Source::Constant(c) => {
                if let Some(base) = label_of(key) {
                    {
                        // A label: present exactly when its value is.
                        assert_eq!(
                            got.extension.get(key).map(String::as_str),
                            got.extension.contains_key(base).then_some(c),
                            "label {key}: {}",
                            ctx()
                        );
                        checked += 1;
                        continue;
                    }
                }
                Some(c.to_string())
            }
            Source::Name(n) => m.computed.get(n).and_then(|v| rendered(key, v)),
            Source::Field(p) => json_at(&m.fields, p).and_then(|v| rendered(key, v)),
            Source::Other => continue,
        };
        // MAC addresses go out as the standard writes them, in upper case.
        let want = want.map(|w| if is_mac(&w) { w.to_uppercase() } else { w });
        let got_v = got.extension.get(key);
        // Text that is not UTF-8 is hex in `decode`'s JSON and U+FFFD in CEF; the encoder's
        // own tests cover it.
        if got_v.is_some_and(|g| g.contains('\u{FFFD}')) {
            continue;
        }
        let zero_omitted = want.as_deref() == Some("0") && got_v.is_none();
        // decode's JSON writes IPv4-compatible addresses (`::a.b.c.d`) as inet_ntop does, the
        // CEF encoder in hex (`::c633:712b`): the same address.
        let same_address = match (got_v, &want) {
            (Some(g), Some(w)) => {
                g.parse::<std::net::IpAddr>().ok() == w.parse().ok()
                    && g.parse::<std::net::IpAddr>().is_ok()
            }
            _ => false,
        };
        if !zero_omitted && !same_address {
            assert_eq!(got_v, want.as_ref(), "`{key} = {src}`: {}", ctx());
        }
        checked += 1;
    }
    checked
}

#[test]
fn lines_match_the_records_they_come_from() {
    let sources = table_sources();
    let mut checked = 0;
    for m in corpus() {
        let got = expected_from_line(&m.line);
        assert_eq!(got.header[6], m.severity.to_string());
        if let Some(s) = sources.get(&m.record_type) {
            checked += check_against_record(&m, s, &got);
        }
    }
    assert!(checked > 20_000, "only {checked} values checked");
}

// -- cefp and liblognorm --------------------------------------------------------------------------

#[test]
fn cefp_and_lognormalizer_read_every_key_and_value_back() {
    let corpus = corpus();
    let lines: Vec<&str> = corpus.iter().map(|m| m.line.as_str()).collect();
    // Both parsers accept every line and agree on it (parse_strict panics otherwise).
    let parsed = cef_parsers::parse_strict(&lines);
    let mut keys_by_type: BTreeMap<u32, BTreeSet<String>> = BTreeMap::new();
    for (m, p) in corpus.iter().zip(&parsed) {
        let want = expected_from_line(&m.line);
        let got_header = vec![
            format!("CEF:{}", p.version),
            p.vendor.clone(),
            p.product.clone(),
            p.device_version.clone(),
            p.class_id.clone(),
            p.name.clone(),
            p.severity.clone(),
        ];
        assert_eq!(got_header, want.header, "header of {}", m.line);
        assert_eq!(p.extension, want.extension, "extension of {}", m.line);
        keys_by_type
            .entry(m.record_type)
            .or_default()
            .extend(p.extension.keys().cloned());
    }
    // The corpus has the characters that break naive encoders, in values that went through.
    let all: String = corpus.iter().map(|m| m.line.as_str()).collect();
    for s in ["\\=", "\\\\", "|", "\\n", "\\r", "é", "日本語", "😀"] {
        assert!(
            all.contains(s),
            "no {s:?} in any line: the corpus is too tame"
        );
    }
}

// -- syslog-ng ----------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn syslog_ng_receives_every_line_intact() {
    let corpus = corpus();
    let sng = syslog_ng::SyslogNg::start();
    let out = syslog_events::Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\nhostname = \"fwd01.example\"",
        sng.tcp_port
    ));
    let mut msgids: HashMap<String, &'static str> = HashMap::new();
    let events: Vec<OutEvent> = corpus
        .iter()
        .enumerate()
        .map(|(i, m)| OutEvent {
            seq: i as u64 + 1,
            cef: m.line.clone().into(),
            cef_severity: m.severity,
            msgid: msgids
                .entry(m.msgid.clone())
                .or_insert_with(|| Box::leak(m.msgid.clone().into_boxed_str())),
        })
        .collect();
    for chunk in events.chunks(200) {
        out.send(Arc::new(Batch {
            events: chunk.to_vec(),
            fmc: 0,
        }))
        .await;
    }
    let (progress, _) = out.finish(Duration::from_secs(60)).await;
    assert_eq!(progress, corpus.len() as u64);
    let received = sng.wait_for(corpus.len(), Duration::from_secs(60));
    assert_eq!(
        received.len(),
        corpus.len(),
        "syslog-ng log:\n{}",
        sng.log_text()
    );

    // Match what arrived with what was sent, by the message text.
    let mut sent: HashMap<&str, Vec<&Mapped>> = HashMap::new();
    for m in &corpus {
        sent.entry(m.line.as_str()).or_default().push(m);
    }
    let mut types: BTreeSet<u32> = BTreeSet::new();
    for r in &received {
        let msg = r["syslog"]["msg"].as_str().unwrap_or_default();
        let m = sent
            .get_mut(msg)
            .and_then(|v| v.pop())
            .unwrap_or_else(|| panic!("received a message that was not sent (or twice): {r}"));
        types.insert(m.record_type);
        assert!(r["cef"].get("error").is_none(), "cefp rejected: {r}");
        assert!(r["cefhdr"].get("error").is_none(), "no CEF header: {r}");
        assert_eq!(r["syslog"]["msgid"], m.msgid.as_str(), "{r}");
        let want = expected_from_line(&m.line);
        let cef = &r["cef"];
        assert_eq!(cef["class_id"], want.header[4].as_str(), "{r}");
        assert_eq!(cef["name"], want.header[5].as_str(), "{r}");
        assert_eq!(r["cefhdr"]["name"], want.header[5].as_str(), "{r}");
        assert_eq!(cef["severity"], want.header[6].as_str(), "{r}");
        assert_eq!(
            syslog_events::ext_of(r),
            want.extension,
            "extension of {}",
            m.line
        );
    }
    let mapped: BTreeSet<u32> = corpus.iter().map(|m| m.record_type).collect();
    assert_eq!(
        types, mapped,
        "every mapped record type went through syslog-ng"
    );
}
