//! The packaged default configuration (`packaging/estreamer-cef.toml`) and the operator README's
//! configuration reference, checked against the program itself:
//!
//! - the keys each section accepts come from the binary (`support/config_keys.rs`), so a key
//!   added to the program shows up here without editing this test;
//! - the packaged file, uncommented, must be accepted by `check-config`, name every key, and
//!   show for every key the default `check-config` prints;
//! - the README reference's "Default" column must match the real defaults (that it lists every
//!   key, and only real ones, is `docs_config.rs`).

use std::collections::BTreeSet;

use toml::{Table, Value};

#[path = "support/config_keys.rs"]
mod config_keys;
use config_keys::{accepted_by_section, check_config, readme, readme_sections, root, transports};

const PACKAGED: &str = "packaging/estreamer-cef.toml";

/// The packaged file with its settings uncommented: `#key = value`, `#[section]` and
/// `#[[output]]` lose their `#`; explanations (`# ...`) are dropped.
fn uncomment(text: &str) -> String {
    let mut out = String::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix('#') else {
            assert!(
                line.trim().is_empty(),
                "{PACKAGED}: a setting is not commented out (every default must stay commented): {line}"
            );
            continue;
        };
        let is_setting = rest.starts_with('[')
            || rest.split_once(" = ").is_some_and(|(k, _)| {
                !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            });
        if is_setting {
            out.push_str(rest);
            out.push('\n');
        } else {
            assert!(
                rest.is_empty() || rest.starts_with(' '),
                "{PACKAGED}: neither a setting (`#key = value`) nor an explanation (`# text`): {line}"
            );
        }
    }
    out
}

fn parse(text: &str) -> Table {
    text.parse::<Table>()
        .unwrap_or_else(|e| panic!("not TOML: {e}\n{text}"))
}

/// The TOML that check-config prints, without its first comment line.
fn effective(text: &str) -> Table {
    let out = check_config(text).unwrap_or_else(|e| panic!("check-config failed: {e}\n{text}"));
    parse(&out)
}

fn packaged() -> (String, Table) {
    let raw = std::fs::read_to_string(root().join(PACKAGED)).unwrap();
    let uncommented = uncomment(&raw);
    let table = parse(&uncommented);
    (uncommented, table)
}

fn outputs(t: &Table) -> Vec<&Table> {
    t.get("output")
        .and_then(Value::as_array)
        .map(|a| a.iter().map(|v| v.as_table().unwrap()).collect())
        .unwrap_or_default()
}

fn transport(o: &Table) -> &str {
    o.get("transport").and_then(Value::as_str).unwrap()
}

/// The same configuration with only the keys that have no default (output transport, host and
/// path; tap path), so check-config prints the defaults of everything else.
fn required_only(t: &Table) -> Table {
    let mut r = Table::new();
    let mut outs = Vec::new();
    for o in outputs(t) {
        let mut m = Table::new();
        for k in ["transport", "host", "path", "brokers"] {
            if let Some(v) = o.get(k) {
                m.insert(k.into(), v.clone());
            }
        }
        outs.push(Value::Table(m));
    }
    r.insert("output".into(), Value::Array(outs));
    if let Some(tap) = t.get("tap").and_then(Value::as_table) {
        let mut m = Table::new();
        m.insert("path".into(), tap["path"].clone());
        r.insert("tap".into(), Value::Table(m));
    }
    r
}

#[test]
fn packaged_config_is_accepted_as_shipped_and_uncommented() {
    // As shipped (everything commented): the built-in defaults.
    let raw = std::fs::read_to_string(root().join(PACKAGED)).unwrap();
    let shipped = effective(&raw);
    let defaults = effective("");
    assert_eq!(
        shipped, defaults,
        "the packaged file changes the defaults; keep every setting commented"
    );
    // Uncommented: every key is known to the program, every value valid.
    let (text, table) = packaged();
    effective(&text);
    let shown: BTreeSet<String> = outputs(&table)
        .into_iter()
        .map(|o| transport(o).to_string())
        .collect();
    assert_eq!(
        shown,
        transports(),
        "{PACKAGED} should show an [[output]] example for every transport"
    );
}

#[test]
fn packaged_config_names_every_key() {
    let accepted = accepted_by_section();
    let (_, table) = packaged();
    let mut missing = Vec::new();
    for (section, keys) in &accepted {
        let shown: BTreeSet<String> = match section.as_str() {
            "" => table.keys().cloned().collect(),
            "subscription.events" => table["subscription"]["events"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|e| e.as_table().unwrap().keys().cloned())
                .collect(),
            "output.severity_map" => outputs(&table)
                .into_iter()
                .filter_map(|o| o.get("severity_map").and_then(Value::as_table))
                .flat_map(|m| m.keys().cloned())
                .collect(),
            // A key shared by several transports may be shown in any example (the tls example
            // shows the stream keys that tcp has too).
            s if s.starts_with("output.") => outputs(&table)
                .into_iter()
                .flat_map(|o| o.keys().cloned())
                .collect(),
            s => table
                .get(s)
                .and_then(Value::as_table)
                .map(|t| t.keys().cloned().collect())
                .unwrap_or_default(),
        };
        for k in keys.difference(&shown) {
            missing.push(format!("{section}.{k}"));
        }
    }
    assert!(
        missing.is_empty(),
        "{PACKAGED} does not show these keys: {missing:?}"
    );
}

#[test]
fn packaged_config_shows_the_real_defaults() {
    let (_, table) = packaged();
    let defaults = effective(&toml::to_string(&required_only(&table)).unwrap());
    let mut wrong = Vec::new();
    let mut compare = |path: String, shown: &Table, real: &Table| {
        for (k, v) in shown {
            // Keys without a default (absent from check-config's output) are examples.
            if let Some(d) = real.get(k)
                && !matches!(d, Value::Table(_))
                && d != v
            {
                wrong.push(format!("{path}.{k}: shows {v}, the default is {d}"));
            }
        }
    };
    for (section, v) in &table {
        if let (Some(shown), Some(real)) = (
            v.as_table(),
            defaults.get(section).and_then(Value::as_table),
        ) {
            compare(section.clone(), shown, real);
        }
    }
    let shown = outputs(&table);
    let real = outputs(&defaults);
    assert_eq!(shown.len(), real.len());
    for (i, (s, r)) in shown.into_iter().zip(real).enumerate() {
        compare(format!("output[{i}] ({})", transport(s)), s, r);
        if let (Some(s), Some(r)) = (
            s.get("severity_map").and_then(Value::as_table),
            r.get("severity_map").and_then(Value::as_table),
        ) {
            compare(format!("output[{i}].severity_map"), s, r);
        }
    }
    assert!(
        wrong.is_empty(),
        "{PACKAGED} shows wrong defaults:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn readme_reference_defaults_are_the_real_ones() {
    let (name, text) = readme();
    let sections = readme_sections(&text);
    let defaults = effective("[tap]\npath = \"/var/log/estreamer-cef/tap.jsonl\"\n");
    let mut wrong = Vec::new();
    let mut checked = 0;
    for (section, body) in &sections {
        if section == "output" {
            continue; // defaults differ per transport: checked through the packaged file
        }
        let real = defaults.get(section).and_then(Value::as_table);
        for row in body.lines().filter(|l| l.starts_with("| `")) {
            let cells: Vec<&str> = row.split('|').map(str::trim).collect();
            let key = cells[1].trim_matches('`');
            let default = cells[2];
            let real_value = real.and_then(|t| t.get(key));
            if default == "—" {
                if let Some(v) = real_value {
                    wrong.push(format!(
                        "[{section}] {key}: README says no default, it is {v}"
                    ));
                }
                checked += 1;
                continue;
            }
            // A single `value` in TOML syntax is compared; longer text is an explanation.
            let Some(literal) = default
                .strip_prefix('`')
                .and_then(|d| d.strip_suffix('`'))
                .filter(|d| !d.contains('`'))
            else {
                continue;
            };
            let parsed = format!("v = {literal}")
                .parse::<Table>()
                .map(|t| t["v"].clone());
            match (parsed, real_value) {
                (Ok(v), Some(r)) if &v == r => {}
                (Ok(v), r) => wrong.push(format!(
                    "[{section}] {key}: README says {v}, the default is {r:?}"
                )),
                (Err(e), _) => wrong.push(format!(
                    "[{section}] {key}: default `{literal}` is not TOML: {e}"
                )),
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 40,
        "only {checked} defaults found in {name}'s reference tables"
    );
    assert!(
        wrong.is_empty(),
        "{name}'s reference shows wrong defaults:\n{}",
        wrong.join("\n")
    );
}

/// Every renamed key, written the old way in a file, stops `check-config` with a message that
/// names the table, the old key and the new key; the new key is one the program accepts there;
/// and the README's "Upgrading" table lists the rename.
#[test]
fn old_key_spellings_are_refused_with_the_new_name() {
    use estreamer_cef::config::renamed::{RENAMED, Section};
    let accepted = accepted_by_section();
    let (_, upgrading) = readme();
    let upgrading = upgrading
        .split_once("## Upgrading")
        .expect("README has an Upgrading section")
        .1;
    for r in RENAMED {
        let (text, table, section) = match r.section {
            Section::Fmc => (
                format!("[fmc]\n{} = \"5s\"\n", r.old),
                "fmc",
                "fmc".to_string(),
            ),
            Section::Output => (
                format!(
                    "[[output]]\ntransport = \"stdout\"\n\n[[output]]\ntransport = \"tls\"\nhost = \"h\"\n{} = 5\n",
                    r.old
                ),
                "output[1]",
                "output.tls".to_string(),
            ),
        };
        let err = check_config(&text).expect_err(r.old);
        let want = format!("{table}.{} was renamed: write {} = ", r.old, r.new);
        assert!(err.contains(&want), "{}: {err}", r.old);
        assert!(
            accepted[&section].contains(r.new),
            "{} -> {}: the new key is not accepted in {section}",
            r.old,
            r.new
        );
        assert!(
            upgrading.contains(&format!("`{} ", r.old))
                && upgrading.contains(&format!("`{} ", r.new)),
            "README Upgrading does not list {} -> {}",
            r.old,
            r.new
        );
    }
}

/// The package version comes from Cargo.toml; the changelogs the packages carry (Debian's
/// changelog.Debian.gz, the spec's %changelog) must have an entry for it, or lintian and rpmlint
/// complain about the release after a version bump.
#[test]
fn package_changelogs_name_the_cargo_version() {
    let version = env!("CARGO_PKG_VERSION");
    let read =
        |p: &str| std::fs::read_to_string(root().join(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    let debian = read("packaging/debian/changelog");
    let first = debian.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("estreamer-cef ({version}-1) ")),
        "packaging/debian/changelog starts with {first:?}: add an entry for {version}-1 on top"
    );
    let spec = read("packaging/rpm/estreamer-cef.spec");
    let entry = spec
        .split("%changelog\n")
        .nth(1)
        .and_then(|c| c.lines().next())
        .unwrap_or_default();
    assert!(
        entry.ends_with(&format!(" - {version}-1")),
        "the first %changelog entry of packaging/rpm/estreamer-cef.spec is {entry:?}: add one for {version}-1"
    );
    // Both licenses the Cargo.toml names, in full.
    for (file, words) in [
        (
            "LICENSE-MIT",
            "Permission is hereby granted, free of charge",
        ),
        (
            "LICENSE-APACHE",
            "Apache License\n                           Version 2.0",
        ),
    ] {
        assert!(read(file).contains(words), "{file} is not the license text");
    }
}
