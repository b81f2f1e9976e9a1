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
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mappings");
    std::fs::create_dir(&dir).unwrap();
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

/// Record 71 with the rule name in cs6 instead of cs2: the README's worked example.
#[test]
fn a_table_in_the_mappings_folder_changes_decode_output_without_a_rebuild() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("mappings");
    std::fs::create_dir(&dir).unwrap();
    let decode = |dir: &Path| {
        let out = run(
            tmp.path(),
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
    };
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
