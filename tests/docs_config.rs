//! The documentation's TOML, held to the program: every ```toml block of `README.md` and
//! `mappings/README.md` is loaded by the real loader (a whole configuration with `check-config`,
//! a fragment merged into a minimal valid configuration first, a mapping file with `mappings
//! check`), and the README's configuration reference lists exactly the keys the program
//! accepts (`support/config_keys.rs` asks the binary for them). A key added to the program
//! without its documentation, or a documented example the program refuses, fails here with the
//! file, the line and the key.

use std::collections::{BTreeMap, BTreeSet};

use toml::{Table, Value};

#[path = "support/config_keys.rs"]
mod config_keys;
use config_keys::{
    accepted_by_section, check_config, check_config_full, readme, readme_rows, readme_sections,
    root, run,
};

const DOCS: [&str; 2] = ["README.md", "mappings/README.md"];
const PACKAGED: &str = "packaging/estreamer-cef.toml";

/// A ```toml block: the line of its opening fence and its text, without the list indentation.
struct Block {
    line: usize,
    text: String,
}

fn toml_blocks(text: &str) -> Vec<Block> {
    let mut blocks = Vec::new();
    let mut open: Option<(usize, usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None if trimmed == "```toml" => {
                open = Some((i + 1, line.len() - trimmed.len(), String::new()));
            }
            Some((start, _, body)) if trimmed == "```" => {
                blocks.push(Block {
                    line: *start,
                    text: std::mem::take(body),
                });
                open = None;
            }
            Some((_, indent, body)) => {
                body.push_str(line.get(*indent..).unwrap_or(line.trim_start()));
                body.push('\n');
            }
            None => {}
        }
    }
    assert!(open.is_none(), "a ```toml block is not closed");
    blocks
}

/// What a fragment of the documentation is added to: an output, so that `run` would start.
/// The FMC is left to the fragment (a `host` here would clash with a fragment's `hosts`).
fn minimal() -> Table {
    "[[output]]\ntransport = \"stdout\"\n".parse().unwrap()
}

/// `over` on top of `base`, table by table; any other value (a list of `[[output]]` or
/// `[[fmc]]` tables too) replaces the base's.
fn merge(base: &mut Table, over: &Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Table(b)), Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

fn is_mapping_file(t: &Table) -> bool {
    ["mapping", "patch", "tables"]
        .iter()
        .any(|k| t.contains_key(*k))
}

/// A block whose first line is `# excerpt of PATH` shows part of a file the project ships (a
/// profile's patch, which a user's own mappings folder may not hold): every line of it must be
/// a line of that file, so the example cannot drift from what is shipped.
fn check_excerpt(text: &str) -> Option<Result<(), String>> {
    let first = text.lines().next()?;
    let path = first.strip_prefix("# excerpt of ")?.trim();
    let Ok(shipped) = std::fs::read_to_string(root().join(path)) else {
        return Some(Err(format!("{path}: no such file in the repository")));
    };
    let lines: Vec<&str> = shipped.lines().map(str::trim).collect();
    let stray: Vec<&str> = text
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|l| !l.is_empty() && !lines.contains(l))
        .collect();
    Some(if stray.is_empty() {
        Ok(())
    } else {
        Err(format!("lines that are not in {path}: {stray:?}"))
    })
}

/// Loads one block as the program would; Err(why) when it refuses it.
fn load_block(text: &str) -> Result<(), String> {
    if let Some(excerpt) = check_excerpt(text) {
        return excerpt;
    }
    let table: Table = text.parse().map_err(|e| format!("not valid TOML: {e}"))?;
    if is_mapping_file(&table) {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("mappings");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("local.toml"), text).unwrap();
        let config = tmp.path().join("empty.toml");
        std::fs::write(&config, "").unwrap();
        let (ok, _, stderr) = run(&[
            "-c".as_ref(),
            config.as_os_str(),
            "mappings".as_ref(),
            "check".as_ref(),
            dir.as_os_str(),
        ]);
        return if ok { Ok(()) } else { Err(stderr) };
    }
    let whole = table.contains_key("fmc") && table.contains_key("output");
    let text = if whole {
        text.to_string()
    } else {
        let mut m = minimal();
        merge(&mut m, &table);
        toml::to_string(&m).unwrap()
    };
    check_config(&text).map(|_| ())
}

#[test]
fn every_toml_block_of_the_docs_is_accepted_by_the_program() {
    let mut refused = Vec::new();
    let mut checked = 0;
    for doc in DOCS {
        let text = std::fs::read_to_string(root().join(doc)).unwrap();
        for b in toml_blocks(&text) {
            checked += 1;
            if let Err(why) = load_block(&b.text) {
                refused.push(format!(
                    "{doc}:{}: the program refuses this example:\n{}\n  {}",
                    b.line,
                    b.text.trim_end(),
                    why.trim_end().replace('\n', "\n  ")
                ));
            }
        }
    }
    assert!(
        checked >= 8,
        "only {checked} ```toml blocks found in {DOCS:?}"
    );
    assert!(refused.is_empty(), "\n{}", refused.join("\n\n"));
}

/// The checker itself: a block the program refuses is caught, whatever its kind.
#[test]
fn a_wrong_example_would_be_caught() {
    assert!(load_block("[fmc]\nhost = \"a\"\n").is_ok());
    let e =
        load_block("[[output]]\ntransport = \"tls\"\nhost = \"h\"\nca = \"/x.pem\"\n").unwrap_err();
    assert!(e.contains("output[0].ca was renamed"), "{e}");
    let e = load_block("[[patch]]\nrecord = 71\nremove = [\"cs6\", \"cs6Label\"]\n").unwrap_err();
    assert!(e.contains("cannot remove `cs6`"), "{e}");
    let blocks = toml_blocks("text\n\n   ```toml\n   [fmc]\n   port = 1\n   ```\n");
    assert_eq!(
        (blocks[0].line, blocks[0].text.as_str()),
        (3, "[fmc]\nport = 1\n")
    );
}

/// The packaged configuration as installed is valid (every setting is commented out), and
/// `check-config` says what is still to be set instead of exiting 0 without a word.
#[test]
fn the_untouched_packaged_configuration_says_what_is_still_to_be_set() {
    let text = std::fs::read_to_string(root().join(PACKAGED)).unwrap();
    let (stdout, stderr) = check_config_full(&text).unwrap_or_else(|e| panic!("{PACKAGED}: {e}"));
    assert!(stdout.contains("[fmc]"), "{stdout}");
    assert!(
        stderr.contains("still to be set")
            && stderr.contains("fmc.host is still the example \"fmc.example.org\"")
            && stderr.contains("there is no [[output]]: add one"),
        "{stderr}"
    );
    // Once both are set, nothing more is asked for.
    let done =
        format!("{text}\n[fmc]\nhost = \"10.0.0.5\"\n\n[[output]]\ntransport = \"stdout\"\n");
    let (_, stderr) = check_config_full(&done).unwrap_or_else(|e| panic!("{e}"));
    assert!(!stderr.contains("still to be set"), "{stderr}");
}

/// Where a key of a section is documented: the README reference's heading for it.
fn readme_section_of(section: &str) -> &str {
    match section {
        "subscription.events" => "subscription",
        s if s.starts_with("output.") => "output",
        s => s,
    }
}

fn heading(section: &str) -> String {
    match section {
        "output" => "[[output]]".into(),
        s => format!("[{s}]"),
    }
}

#[test]
fn readme_reference_lists_every_accepted_key() {
    let (name, text) = readme();
    let sections = readme_sections(&text);
    let accepted = accepted_by_section();
    let mut missing = Vec::new();
    for top in &accepted[""] {
        if !sections.contains_key(top) {
            missing.push(format!(
                "no heading for the section `{}` (### `{}`: ...)",
                heading(top),
                heading(top)
            ));
        }
    }
    for (section, keys) in &accepted {
        if section.is_empty() {
            continue;
        }
        let documented = readme_section_of(section);
        let body = sections.get(documented).cloned().unwrap_or_default();
        for k in keys {
            if !body.contains(&format!("`{k}`")) && !body.contains(&format!("{k} =")) {
                let whose = match section.strip_prefix("output.") {
                    Some("severity_map") => " (a key of severity_map)".to_string(),
                    Some(t) => format!(" (accepted with transport = \"{t}\")"),
                    None => String::new(),
                };
                missing.push(format!(
                    "`{k}`{whose}: no row under ### `{}`",
                    heading(documented)
                ));
            }
        }
    }
    missing.dedup();
    assert!(
        missing.is_empty(),
        "{name}, ## Configuration reference, does not document keys the program accepts:\n  {}",
        missing.join("\n  ")
    );
}

#[test]
fn readme_reference_lists_only_keys_the_program_accepts() {
    let (name, text) = readme();
    let sections = readme_sections(&text);
    let accepted = accepted_by_section();
    // A documented section's keys: those of every section documented under its heading.
    let mut by_heading: BTreeMap<&str, BTreeSet<&String>> = BTreeMap::new();
    for (section, keys) in &accepted {
        if !section.is_empty() {
            by_heading
                .entry(readme_section_of(section))
                .or_default()
                .extend(keys);
        }
    }
    let mut unknown = Vec::new();
    for (section, body) in &sections {
        let Some(keys) = by_heading.get(section.as_str()) else {
            unknown.push(format!(
                "### `{}`: the program has no such section",
                heading(section)
            ));
            continue;
        };
        for k in readme_rows(body) {
            if !keys.contains(&k) {
                unknown.push(format!(
                    "`{k}` under ### `{}`: the program does not accept it there",
                    heading(section)
                ));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "{name}, ## Configuration reference, documents keys the program refuses (fix the name \
         or remove the row):\n  {}",
        unknown.join("\n  ")
    );
}
