//! The mapping tables from the command line, as a user works with them: `mappings check` rejects
//! a misspelled field naming file and line, and a table in the mappings folder changes what
//! `decode --cef` prints, with no rebuild (the README's worked example).

use std::path::Path;
use std::process::{Command, Output};

const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-b/corpus-B.bin"
);

/// Runs the binary with an empty configuration file (so that no /etc file plays a part).
fn run(dir: &Path, args: &[&str]) -> Output {
    let config = dir.join("empty-config.toml");
    std::fs::write(&config, "").unwrap();
    Command::new(env!("CARGO_BIN_EXE_estreamer-cef"))
        .arg("-c")
        .arg(&config)
        .args(args)
        .output()
        .unwrap()
}

/// A temporary folder with an empty `mappings` folder in it.
fn mappings_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mappings");
    std::fs::create_dir(&dir).unwrap();
    (tmp, dir)
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

const MISSPELLED: &str = r#"# Connection events, my way.
[[mapping]]
records = [71]
class_id = "RNA:1003:1"
name = "CONNECTION STATISTICS"
severity = 3

[mapping.extension]
src = "ipv4(initiatorIpAddress)"
spt = "initiatorPrt"
"#;

#[test]
fn check_rejects_a_misspelled_field_naming_file_and_line() {
    let (tmp, dir) = mappings_dir();
    std::fs::write(dir.join("connection.toml"), MISSPELLED).unwrap();
    let out = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let file = dir.join("connection.toml").display().to_string();
    assert!(
        err.contains(&format!("{file}:10: record 71 has no field `initiatorPrt`")),
        "{err}"
    );
    assert!(err.contains("did you mean `initiatorPort`"), "{err}");

    // A misspelled resolved name gets the names that exist.
    std::fs::write(
        dir.join("connection.toml"),
        MISSPELLED.replace("\"initiatorPrt\"", "\"@transportProtocl\""),
    )
    .unwrap();
    let out = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    let err = text(&out.stderr);
    assert!(
        err.contains(&format!(
            "{file}:10: `@transportProtocl` is not a resolved name; did you mean `@transportProtocol`?"
        )),
        "{err}"
    );

    // Fixed, it passes and says what is mapped.
    std::fs::write(
        dir.join("connection.toml"),
        MISSPELLED.replace("initiatorPrt", "initiatorPort"),
    )
    .unwrap();
    let out = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("mapping tables OK"));

    // The built-in tables alone pass too.
    let empty = tmp.path().join("none");
    let out = run(tmp.path(), &["mappings", "check", empty.to_str().unwrap()]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

/// `decode --cef` of record 71 of the corpus with the tables of `dir`.
fn decode_71(tmp: &Path, dir: &Path) -> String {
    let out = run(
        tmp,
        &[
            "decode",
            "--cef",
            "--record-types",
            "71",
            "--mappings-dir",
            dir.to_str().unwrap(),
            CORPUS,
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// The value of `key` in a CEF line (up to the next ` key=`), if the line has it.
fn value_of<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let rest = line.split(&format!(" {key}=")).nth(1)?;
    let end = rest
        .match_indices(' ')
        .find(|(i, _)| {
            let word = &rest[i + 1..];
            word.split_once('=')
                .is_some_and(|(k, _)| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric()))
        })
        .map_or(rest.len(), |(i, _)| i);
    Some(&rest[..end])
}

const PATCH: &str = r#"# The rule name in cs6 instead of cs2, and both zones in cs3.
[[patch]]
record = 71
set = { cs6 = "@accessControlRule", cs6Label = "'fwRule'", cs3 = "{@ingressSecurityZone} -> {@egressSecurityZone}", cs3Label = "'zones'" }
remove = ["cs2", "cs2Label"]
"#;

/// The README's worked example: a patch moves the rule name from cs2 to cs6 and puts both zones
/// in cs3 with a template; every other key stays as the built-in table has it.
#[test]
fn a_patch_changes_some_keys_and_keeps_the_builtin_rest() {
    let (tmp, dir) = mappings_dir();
    let before = decode_71(tmp.path(), &dir);
    std::fs::write(dir.join("local.toml"), PATCH).unwrap();
    let check = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let file = dir.join("local.toml").display().to_string();
    assert!(
        text(&check.stdout).contains(&format!("\nrecord 71 patched by {file}:2\n")),
        "{}",
        text(&check.stdout)
    );
    let after = decode_71(tmp.path(), &dir);
    assert_eq!(after.lines().count(), 100);
    let mut zones = 0;
    for (b, a) in before.lines().zip(after.lines()) {
        assert_eq!(value_of(a, "cs2"), None, "{a}");
        assert_eq!(value_of(a, "cs6"), value_of(b, "cs2"), "\n{b}\n{a}");
        if let (Some(i), Some(e)) = (value_of(b, "cs3"), value_of(b, "cs4")) {
            assert_eq!(
                value_of(a, "cs3"),
                Some(format!("{i} -> {e}").as_str()),
                "{a}"
            );
            assert_eq!(value_of(a, "cs3Label"), Some("zones"), "{a}");
            zones += 1;
        }
        // Everything else is the built-in table's.
        let strip = |l: &str| {
            ["cs2", "cs2Label", "cs3", "cs3Label", "cs6", "cs6Label"]
                .iter()
                .fold(l.to_string(), |l, k| match value_of(&l, k) {
                    Some(v) => l.replace(&format!(" {k}={v}"), ""),
                    None => l,
                })
        };
        assert_eq!(strip(b), strip(a));
    }
    assert!(
        zones > 0,
        "the corpus has connections with both zones:\n{before}"
    );

    // `mappings show` tells where each line comes from.
    let show = run(
        tmp.path(),
        &[
            "mappings",
            "show",
            "71",
            "--mappings-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert!(show.status.success(), "{}", text(&show.stderr));
    let shown = text(&show.stdout);
    for want in [
        format!("patched by {file}:2"),
        "class_id = \"RNA:1003:1\"  # builtin:connection.toml:".to_string(),
        format!("cs6 = \"@accessControlRule\"  # patch {file}:4"),
        format!("# cs2: removed by patch {file}:5"),
        "cs1 = \"@firewallPolicy\"  # builtin:connection.toml:".to_string(),
    ] {
        assert!(shown.contains(&want), "no {want:?} in:\n{shown}");
    }
    // What it prints is a valid table: the same output from a whole-table copy of it.
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    std::fs::write(copy.join("71.toml"), &shown).unwrap();
    assert_eq!(decode_71(tmp.path(), &copy), after);
}

/// `mappings check` names file and line of a patch's key that the table does not have and of a
/// field that does not exist.
#[test]
fn check_reports_a_bad_patch_with_file_and_line() {
    let (tmp, dir) = mappings_dir();
    std::fs::write(
        dir.join("local.toml"),
        "[[patch]]\nrecord = 71\nremove = [\"cs7\", \"cs7Label\"]\n\n[[patch]]\nrecord = 73\n\
         [patch.set]\ndpt = \"responderPrt\"\n",
    )
    .unwrap();
    let out = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let file = dir.join("local.toml").display().to_string();
    assert!(
        err.contains(&format!(
            "{file}:3: cannot remove `cs7`: the table of record 71 (builtin:connection.toml:"
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!(
            "{file}:8: record 73 has no field `responderPrt`; did you mean `responderPort`?"
        )),
        "{err}"
    );
    // Only the patch's problems: the built-in table it changes is not blamed.
    assert!(!err.contains("builtin:connection.toml:4"), "{err}");
}

/// One patch with problems in its `remove` list and in its `set` table: every problem is
/// reported in one run, not the `remove` ones first and the `set` ones after they are fixed.
#[test]
fn a_bad_remove_list_does_not_hide_the_set_table_problems() {
    let (tmp, dir) = mappings_dir();
    std::fs::write(
        dir.join("local.toml"),
        "[[patch]]\nrecord = 71\nremove = [\"cs7\", \"cs2\"]\n\n[patch.set]\ndpt = \"responderPrt\"\n\
         cs6 = \"@accessControlRul\"\ncs6Label = \"'fwRule'\"\n",
    )
    .unwrap();
    let out = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let err = text(&out.stderr);
    let file = dir.join("local.toml").display().to_string();
    for want in [
        format!("{file}:3: cannot remove `cs7`"),
        format!("{file}:3: the patch removes `cs2` but keeps `cs2Label`: remove both"),
        format!("{file}:6: record 71 has no field `responderPrt`; did you mean `responderPort`"),
        format!("{file}:7: `@accessControlRul` is not a resolved name"),
    ] {
        assert!(err.contains(&want), "missing {want:?} in:\n{err}");
    }
    assert!(err.contains("`@accessControlRule`"), "{err}");
    // The label left without its value is reported once, as the patch's mistake.
    assert_eq!(err.matches("cs2Label").count(), 1, "{err}");
}

/// A whole table in the mappings folder still replaces the built-in one (the way before patches).
#[test]
fn a_table_in_the_mappings_folder_changes_decode_output_without_a_rebuild() {
    let (tmp, dir) = mappings_dir();
    let decode = |dir: &Path| decode_71(tmp.path(), dir);
    let before = decode(&dir);
    assert_eq!(before.lines().count(), 100);
    assert!(
        before.contains(" cs2=Default Action cs2Label=fwRule "),
        "{before}"
    );
    assert!(!before.contains(" cs6="), "{before}");

    // `mappings show 71` is the starting point.
    let show = run(tmp.path(), &["mappings", "show", "71"]);
    assert!(show.status.success(), "{}", text(&show.stderr));
    let table = text(&show.stdout);
    assert!(table.starts_with("# builtin:connection.toml:"), "{table}");
    let mine = table
        .replace(
            "cs2 = \"@accessControlRule\"\ncs2Label = \"'fwRule'\"\n",
            "",
        )
        .replace(
            "# cs6 is left free",
            "cs6 = \"@accessControlRule\"\ncs6Label = \"'fwRule'\"\n# cs6 was left free",
        );
    assert_ne!(mine, table, "the edit applies to the shown table");
    std::fs::write(dir.join("71.toml"), &mine).unwrap();

    let check = run(tmp.path(), &["mappings", "check", dir.to_str().unwrap()]);
    assert!(check.status.success(), "{}", text(&check.stderr));
    let after = decode(&dir);
    assert_eq!(after.lines().count(), 100);
    assert!(!after.contains(" cs2="), "{after}");
    assert!(
        after.contains(" cs6=Default Action cs6Label=fwRule "),
        "{after}"
    );
    // Only that moved: the same lines with cs2 taken out and cs6 put in.
    for (b, a) in before.lines().zip(after.lines()) {
        let rule = b
            .split(" cs2=")
            .nth(1)
            .map(|r| r.split(" cs2Label=fwRule").next().unwrap());
        let a_rule = a
            .split(" cs6=")
            .nth(1)
            .map(|r| r.split(" cs6Label=fwRule").next().unwrap());
        assert_eq!(rule, a_rule, "\n{b}\n{a}");
    }

    // `mappings show` names the file now in effect.
    let show = run(
        tmp.path(),
        &[
            "mappings",
            "show",
            "71",
            "--mappings-dir",
            dir.to_str().unwrap(),
        ],
    );
    let shown = text(&show.stdout);
    assert!(
        shown.starts_with(&format!("# {}:", dir.join("71.toml").display())),
        "{shown}"
    );
}
