//! The built-in mapping tables: they load, every event record type of the catalog has one, every
//! line of every table finds its field in generated records, and the language's `omit_zero`
//! works on timestamps.

#[path = "support/mapping_run.rs"]
mod mapping_run;

use std::collections::{BTreeMap, BTreeSet};

use estreamer_cef::decode::{Category, catalog};
use estreamer_cef::mapping::{LoadOptions, Mappings};
use estreamer_cef_sim::generate::{GenOptions, generate, unknown_record};
use mapping_run::{extension_map, map_records, split_line};

fn event_types() -> Vec<u32> {
    let c = catalog();
    c.record_types()
        .into_iter()
        .filter(|&t| c.record(t).unwrap().category != Category::Metadata)
        .collect()
}

fn metadata_types() -> Vec<u32> {
    let c = catalog();
    c.record_types()
        .into_iter()
        .filter(|&t| c.record(t).unwrap().category == Category::Metadata)
        .collect()
}

#[test]
fn every_builtin_table_loads() {
    let m = Mappings::builtin();
    assert!(m.show(None).is_some(), "a table for unknown record types");
    assert!(m.record_types().contains(&71));
}

#[test]
fn every_event_record_type_of_the_catalog_has_a_table() {
    let m = Mappings::builtin();
    let mapped: BTreeSet<u32> = m.record_types().into_iter().collect();
    let missing: Vec<u32> = event_types()
        .into_iter()
        .filter(|t| !mapped.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "event types without a table: {missing:?}"
    );
    // The eNcore eight, and the families the issue lists.
    for t in [
        2, 9, 10, 35, 42, 44, 45, 46, 48, 51, 53, 71, 73, 89, 92, 95, 101, 103, 106, 107, 110, 112,
        125, 160, 170, 171, 400, 500, 502,
    ] {
        assert!(mapped.contains(&t), "record type {t} has no table");
    }
}

#[test]
fn metadata_records_have_tables_for_when_they_are_enabled() {
    let m = Mappings::builtin();
    let mapped: BTreeSet<u32> = m.record_types().into_iter().collect();
    let missing: Vec<u32> = metadata_types()
        .into_iter()
        .filter(|t| !mapped.contains(t))
        .collect();
    assert!(
        missing.is_empty(),
        "metadata types without a table: {missing:?}"
    );
}

/// Every table line reads a field the records have (no "field absent" note, except fields that
/// only one layout of a record type has), every line parses into its seven header fields, no
/// key is written twice, and each custom field's label follows it.
#[test]
fn every_table_maps_generated_records_of_its_type() {
    let m = Mappings::builtin();
    let mut seen: BTreeMap<u32, usize> = BTreeMap::new();
    for seed in [1, 2, 3] {
        let g = generate(&GenOptions {
            seed,
            events_per_type: 4,
            ..GenOptions::default()
        });
        let records: Vec<_> = g.records().cloned().collect();
        for r in map_records(&m, &records) {
            let c = catalog().record(r.record_type).unwrap();
            if c.category == Category::Metadata {
                continue;
            }
            *seen.entry(r.record_type).or_default() += 1;
            let (header, pairs) = split_line(&r.line);
            assert_eq!(header[0], "CEF:0");
            assert!(!header[4].is_empty() && !header[5].is_empty(), "{}", r.line);
            assert_eq!(header[6], r.severity.to_string());
            let keys: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
            let unique: BTreeSet<&str> = keys.iter().copied().collect();
            assert_eq!(unique.len(), keys.len(), "a key twice in {}", r.line);
            for (i, k) in keys.iter().enumerate() {
                if let Some(base) = k.strip_suffix("Label") {
                    assert_eq!(
                        i.checked_sub(1).map(|j| keys[j]),
                        Some(base),
                        "{k} without {base} before it: {}",
                        r.line
                    );
                }
            }
            for note in &r.notes {
                // 71's FMC 6.0 layout (block 160) lacks some fields of 6.1+ (block 163), and an
                // empty list has no first item.
                let known_absent = (r.record_type == 71 || note.contains("[0]"))
                    && note.starts_with("field absent");
                assert!(
                    !note.starts_with("field absent") || known_absent,
                    "record {} (#{}) : {note}\n{}",
                    r.record_type,
                    r.index,
                    r.line
                );
            }
        }
    }
    let unmapped: Vec<u32> = event_types()
        .into_iter()
        .filter(|t| !seen.contains_key(t))
        .collect();
    assert!(
        unmapped.is_empty(),
        "generated records of these types gave no line: {unmapped:?}"
    );
}

/// The default output is dictionary-clean: every key of every built-in table (as `mappings show`
/// prints the effective table) is an ArcSight dictionary key, and every custom field (`csN`,
/// `cnN`, `flexString1`...) comes with its label and every label with its field. A key outside
/// the dictionary is filed by ArcSight as "additional data" and rejected by strict consumers.
#[test]
fn every_builtin_table_emits_only_dictionary_keys_and_labelled_custom_fields() {
    use estreamer_cef::cef::{KeyCheck, check_key, label_for};
    let m = Mappings::builtin();
    let mut tables: Vec<(String, String)> = m
        .record_types()
        .into_iter()
        .map(|t| (format!("record type {t}"), m.show(Some(t)).unwrap()))
        .collect();
    tables.push(("unknown record types".into(), m.show(None).unwrap()));
    let mut problems = Vec::new();
    let mut keys_seen = 0;
    for (what, text) in &tables {
        let doc: toml::Table = toml::from_str(text)
            .unwrap_or_else(|e| panic!("`mappings show` of {what} is not TOML ({e}):\n{text}"));
        for mapping in doc["mapping"].as_array().unwrap() {
            let ext = mapping["extension"].as_table().unwrap();
            for key in ext.keys() {
                keys_seen += 1;
                match check_key(key) {
                    Ok(KeyCheck::Predefined(info)) => {
                        if let Some(label) = label_for(key)
                            && !ext.contains_key(label)
                        {
                            problems.push(format!("{what}: `{key}` without `{label}`"));
                        }
                        if let Some(field) = info.labels
                            && !ext.contains_key(field)
                        {
                            problems.push(format!("{what}: `{key}` without `{field}`"));
                        }
                    }
                    Ok(KeyCheck::Custom) => {
                        problems.push(format!("{what}: `{key}` is not a CEF dictionary key"))
                    }
                    Err(e) => problems.push(format!("{what}: {e}")),
                }
            }
        }
    }
    assert!(keys_seen > 500, "only {keys_seen} keys found in the tables");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn user_tables(files: &[(&str, &str)]) -> (tempfile::TempDir, Mappings) {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    let m = Mappings::load(&LoadOptions {
        builtin: false,
        dir: Some(dir.path().to_path_buf()),
        cs_max_len: 1023,
        ..LoadOptions::default()
    })
    .unwrap_or_else(|e| panic!("{e:?}"));
    (dir, m)
}

/// `omit_zero` leaves out a timestamp of 0 (an unset time), not only the number 0: `rt=0` would
/// be 1970-01-01 in ArcSight.
#[test]
fn omit_zero_leaves_out_unset_timestamps() {
    let (_dir, m) = user_tables(&[(
        "unknown.toml",
        r#"
[[mapping]]
records = "unknown"
class_id = "UNKNOWN:{recordType}"
name = "unknown"
severity = 1
[mapping.extension]
rt = { source = "ms(archiveTimestamp)", omit_zero = true }
cn1 = { source = "archiveTimestamp", omit_zero = true }
cn1Label = "'archive'"
cn2 = "recordType"
cn2Label = "'type'"
"#,
    )]);
    let records = [
        unknown_record(9999, 0, 8),
        unknown_record(9999, 1_735_689_600, 8),
    ];
    let lines = map_records(&m, &records);
    assert_eq!(lines.len(), 2);
    let without = extension_map(&lines[0].line);
    assert!(
        !without.contains_key("rt") && !without.contains_key("cn1"),
        "no archive time: {}",
        lines[0].line
    );
    assert!(!without.contains_key("cn1Label"), "{}", lines[0].line);
    assert_eq!(without.get("cn2").map(String::as_str), Some("9999"));
    let with = extension_map(&lines[1].line);
    assert_eq!(with.get("rt").map(String::as_str), Some("1735689600000"));
    assert_eq!(with.get("cn1").map(String::as_str), Some("1735689600"));
}

/// A label goes out only with its value, also when the value is an empty byte string shown as
/// hex (an unknown record with no payload, an intrusion extra-data record with an empty blob).
#[test]
fn no_label_without_its_value_for_empty_hex() {
    let (_dir, m) = user_tables(&[(
        "unknown.toml",
        r#"
[[mapping]]
records = "unknown"
class_id = "UNKNOWN:{recordType}"
name = "unknown"
severity = 1
[mapping.extension]
cs1 = "hex(payload)"
cs1Label = "'payload'"
cnt = "recordLength"
"#,
    )]);
    let lines = map_records(&m, &[unknown_record(9999, 1_735_689_600, 0)]);
    assert_eq!(
        lines[0].line,
        "CEF:0|Cisco|Firepower|6.0|UNKNOWN:9999|unknown|1|cnt=0"
    );
    let lines = map_records(&m, &[unknown_record(9999, 1_735_689_600, 2)]);
    let ext = extension_map(&lines[0].line);
    assert_eq!(ext["cs1Label"], "payload");
    assert_eq!(ext["cs1"].len(), 4, "{}", lines[0].line);
}

/// An unknown record (type 9999) with an archive timestamp and this payload.
fn unknown_body(payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend_from_slice(&9999u32.to_be_bytes());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&1_735_689_600u32.to_be_bytes());
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// A value the encoder leaves out (nothing but spaces and control characters, which it trims)
/// takes its label with it; a value it keeps (an ideographic space is not trimmed) keeps it.
#[test]
fn no_label_without_its_value_for_blank_text() {
    let (_dir, m) = user_tables(&[(
        "unknown.toml",
        r#"
[[mapping]]
records = "unknown"
class_id = "UNKNOWN:{recordType}"
name = "unknown"
severity = 1
[mapping.extension]
cs1 = "payload"
cs1Label = "'payload'"
cnt = "recordLength"
"#,
    )]);
    for blank in [&b"\t"[..], b" \t\x01", b"\x7f"] {
        let body = unknown_body(blank);
        let lines = mapping_run::map_bodies(&m, std::iter::once(&body[..]));
        let ext = extension_map(&lines[0].line);
        assert!(
            !ext.contains_key("cs1") && !ext.contains_key("cs1Label"),
            "{blank:?}: {}",
            lines[0].line
        );
    }
    let body = unknown_body("\u{3000}".as_bytes());
    let lines = mapping_run::map_bodies(&m, std::iter::once(&body[..]));
    let ext = extension_map(&lines[0].line);
    assert_eq!(ext.get("cs1").map(String::as_str), Some("\u{3000}"));
    assert_eq!(ext.get("cs1Label").map(String::as_str), Some("payload"));
}

/// `mappings show TYPE` prints the whole effective table of that type (from its `[[mapping]]`
/// header to the next table), not just its header or a neighbour's lines.
#[test]
fn show_prints_the_whole_table_of_a_record_type() {
    let (dir, m) = user_tables(&[(
        "two.toml",
        r#"# Two tables in one file.

[[mapping]]
# The first.
records = [19]
class_id = "A:19"
name = "first"
severity = 1

[mapping.extension]
cs1 = "@sensor"
cs1Label = "'first'"

# The second table's comment.
[[mapping]]
records = [20]
class_id = "B:20"
name = "second"
severity = 2

[mapping.extension]
cs2 = "@sensor"
cs2Label = "'second'"
"#,
    )]);
    let file = dir.path().join("two.toml").display().to_string();
    let first = m.show(Some(19)).unwrap();
    assert_eq!(
        first,
        format!(
            "# {file}:3\n[[mapping]]\n# The first.\nrecords = [19]\nclass_id = \"A:19\"\n\
             name = \"first\"\n\
             severity = 1\n\n[mapping.extension]\ncs1 = \"@sensor\"\ncs1Label = \"'first'\"\n"
        )
    );
    let second = m.show(Some(20)).unwrap();
    assert!(
        second.starts_with(&format!("# {file}:15\n[[mapping]]\nrecords = [20]")),
        "{second}"
    );
    assert!(second.ends_with("cs2Label = \"'second'\"\n"), "{second}");
    // The built-in tables too.
    let builtin = Mappings::builtin().show(Some(71)).unwrap();
    assert!(builtin.contains("class_id = \"RNA:1003:1\""), "{builtin}");
    assert!(
        builtin.contains("\nin = \"initiatorTransmittedBytes\""),
        "{builtin}"
    );
    assert!(!builtin.contains("records = [73]"), "{builtin}");
}

/// A patch changes the header fields it names and the keys it sets, in place; a key it adds
/// goes at the end; every other key and its order stay the built-in table's. On top of a
/// replacement table, a patch changes that table.
#[test]
fn a_patch_changes_only_what_it_names() {
    let g = generate(&GenOptions {
        seed: 7,
        events_per_type: 4,
        ..GenOptions::default()
    });
    let records: Vec<_> = g
        .records()
        .filter(|r| r.record_type == 73)
        .cloned()
        .collect();
    assert!(!records.is_empty());
    let load = |files: &[(&str, &str)]| {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).unwrap();
        }
        Mappings::load(&LoadOptions {
            builtin: true,
            dir: Some(dir.path().to_path_buf()),
            cs_max_len: 1023,
            ..LoadOptions::default()
        })
        .unwrap_or_else(|e| panic!("{e:?}"))
    };
    let keys =
        |line: &str| -> Vec<String> { split_line(line).1.into_iter().map(|p| p.0).collect() };
    let builtin = map_records(&Mappings::builtin(), &records);
    let patch = r#"
[[patch]]
record = 73
name = "Flow {recordType}"
severity = 9
msgid = "FLOW"

[patch.set]
proto = "'tcp'"
cs6 = "{recordType}/{netmapId}"
cs6Label = "'where'"
"#;
    let patched = map_records(&load(&[("p.toml", patch)]), &records);
    assert_eq!(builtin.len(), patched.len());
    for (b, p) in builtin.iter().zip(&patched) {
        let (bh, _) = split_line(&b.line);
        let (ph, _) = split_line(&p.line);
        assert_eq!(ph[4], bh[4], "class id kept");
        assert_eq!(ph[5], "Flow 73");
        assert_eq!(ph[6], "9");
        assert_eq!(p.msgid, "FLOW");
        // proto (maybe empty, so absent, in the built-in line) stays in its place, before cn1.
        let got = keys(&p.line);
        let at = |k: &str| got.iter().position(|x| x == k);
        assert!(
            at("proto") < at("cn1") && at("proto").is_some(),
            "{}",
            p.line
        );
        let without_proto =
            |v: Vec<String>| v.into_iter().filter(|k| k != "proto").collect::<Vec<_>>();
        let mut want = without_proto(keys(&b.line));
        want.extend(["cs6".to_string(), "cs6Label".to_string()]);
        assert_eq!(without_proto(got.clone()), want, "{}\n{}", b.line, p.line);
        let ext = extension_map(&p.line);
        assert_eq!(ext.get("proto").map(String::as_str), Some("tcp"));
        assert!(
            ext.get("cs6").is_some_and(|v| v.starts_with("73/")),
            "{}",
            p.line
        );
    }

    // On a replacement table: the patch applies to it.
    let replacement = r#"
[[mapping]]
records = [73]
class_id = "MINE"
name = "mine"
severity = 1

[mapping.extension]
cs1 = "recordType"
cs1Label = "'type'"
"#;
    let m = load(&[("a-table.toml", replacement), ("b-patch.toml", patch)]);
    let p = &map_records(&m, &records)[0];
    let (h, _) = split_line(&p.line);
    assert_eq!((h[4].as_str(), h[5].as_str()), ("MINE", "Flow 73"));
    assert_eq!(
        keys(&p.line),
        ["cs1", "cs1Label", "proto", "cs6", "cs6Label"]
    );
}
