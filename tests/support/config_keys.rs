//! The configuration keys as the program itself accepts them, and the README's configuration
//! reference, for the tests that hold the documentation to the program (`packaging_config.rs`,
//! `docs_config.rs`).
//!
//! The accepted keys come from the binary: `check-config` on a file with an unknown key answers
//! "valid keys here: ..." (every struct is `deny_unknown_fields`), and an unknown transport
//! "valid values: ...". A key or a transport added to the program shows up here without editing
//! this file.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::Command;

pub const BIN: &str = env!("CARGO_BIN_EXE_estreamer-cef");

pub fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the binary with `args`; the environment's ESTREAMER_CEF_* variables are removed so they
/// cannot change the result. (success, stdout, stderr).
pub fn run(args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let mut cmd = Command::new(BIN);
    cmd.args(args);
    for (k, _) in std::env::vars_os() {
        if k.to_string_lossy().starts_with("ESTREAMER_CEF_") {
            cmd.env_remove(k);
        }
    }
    let out = cmd.output().expect("run estreamer-cef");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `estreamer-cef check-config -c <file with text>`: Ok(stdout) or Err(stderr).
pub fn check_config(text: &str) -> Result<String, String> {
    check_config_full(text).map(|(stdout, _)| stdout)
}

/// `check-config` on `text`: Ok((stdout, stderr)) or Err(stderr).
pub fn check_config_full(text: &str) -> Result<(String, String), String> {
    let mut f = tempfile::NamedTempFile::new().unwrap();
    f.write_all(text.as_bytes()).unwrap();
    let (ok, stdout, stderr) = run(&["check-config".as_ref(), "-c".as_ref(), f.path().as_os_str()]);
    if ok {
        Ok((stdout, stderr))
    } else {
        Err(stderr)
    }
}

/// The names the error about `snippet` lists after `marker` (the pieces between backticks that
/// look like keys).
fn names_listed(snippet: &str, marker: &str) -> BTreeSet<String> {
    let err = check_config(snippet).expect_err("an unknown key or value must be rejected");
    let listed = err
        .split_once(marker)
        .unwrap_or_else(|| panic!("no {marker:?} list in: {err}"))
        .1
        .lines()
        .next()
        .unwrap_or_default();
    let names: BTreeSet<String> = listed
        .split('`')
        .filter(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect();
    assert!(!names.is_empty(), "cannot read the names from: {err}");
    names
}

/// The keys the program accepts where `snippet` puts the unknown key `zz_unknown`.
pub fn accepted_keys(snippet: &str) -> BTreeSet<String> {
    names_listed(snippet, "valid keys here:")
}

/// The output transports the program knows (`udp`, `tcp`, ... and whatever is added).
pub fn transports() -> BTreeSet<String> {
    names_listed("[[output]]\ntransport = \"zz_unknown\"\n", "valid values:")
}

/// Every section of the configuration and the keys the program accepts in it. Outputs are
/// `output.<transport>`; `transport` itself is the tag, accepted by all. Sections are the
/// top-level tables the program accepts, so a new one is covered too.
pub fn accepted_by_section() -> BTreeMap<String, BTreeSet<String>> {
    let mut m = BTreeMap::new();
    let top = accepted_keys("zz_unknown = 1\n");
    for s in &top {
        match s.as_str() {
            "output" => {}
            "fmc" => {
                m.insert(s.clone(), accepted_keys("[fmc]\nzz_unknown = 1\n"));
            }
            _ => {
                m.insert(
                    s.clone(),
                    accepted_keys(&format!("[{s}]\nzz_unknown = 1\n")),
                );
            }
        }
    }
    m.insert(String::new(), top);
    m.insert(
        "subscription.events".into(),
        accepted_keys("[subscription]\nevents = [{ event = 12, version = 9, zz_unknown = 1 }]\n"),
    );
    for t in transports() {
        let mut keys = accepted_keys(&format!(
            "[[output]]\ntransport = \"{t}\"\nzz_unknown = 1\n"
        ));
        keys.insert("transport".into());
        m.insert(format!("output.{t}"), keys);
    }
    m.insert(
        "output.severity_map".into(),
        accepted_keys(
            "[[output]]\ntransport = \"udp\"\nhost = \"h\"\nseverity_map = { zz_unknown = 1 }\n",
        ),
    );
    m
}

/// The README that holds the configuration reference: (file name, text).
pub fn readme() -> (String, String) {
    for name in ["README.md"] {
        if let Ok(text) = std::fs::read_to_string(root().join(name))
            && text.contains("## Configuration reference")
        {
            return (name.to_string(), text);
        }
    }
    panic!("no README with a \"## Configuration reference\" section");
}

/// The reference's text per section: from a heading that names `[section]` or `[[output]]` to
/// the next heading.
pub fn readme_sections(text: &str) -> BTreeMap<String, String> {
    let reference = text.split_once("## Configuration reference").unwrap().1;
    let reference = match reference.find("\n## ") {
        Some(end) => &reference[..end],
        None => reference,
    };
    let mut m = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_code = false;
    for line in reference.lines() {
        // A `#` inside a code block is a TOML or shell comment, not a heading.
        if line.trim_start().starts_with("```") {
            in_code = !in_code;
        }
        if line.starts_with('#') && !in_code {
            current = line
                .split('`')
                .nth(1)
                .filter(|s| s.starts_with('['))
                .map(|s| s.trim_matches(|c| c == '[' || c == ']').to_string());
            continue;
        }
        if let Some(c) = &current {
            let e: &mut String = m.entry(c.clone()).or_default();
            e.push_str(line);
            e.push('\n');
        }
    }
    m
}

/// The keys of a reference section's table rows (`| \`key\` | ...`), in order.
pub fn readme_rows(body: &str) -> Vec<String> {
    body.lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|row| row.split('`').nth(1).map(str::to_string))
        .collect()
}
