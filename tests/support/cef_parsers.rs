//! Independent CEF parsers for tests: the PyPI parser `cefp` 0.0.2 (run by `python3`),
//! liblognorm's `lognormalizer` (Debian `liblognorm-utils`) and Vector's VRL `parse_cef` (VRL
//! 0.15, from the PyPI wheel `pyVRL` 0.0.2). Each takes a batch of CEF lines (no syslog header)
//! and returns, per line, the parsed header fields and extension map, or the parser's rejection.
//! Also the ArcSight extension dictionary as the PyPI package `cefevent` 0.5.6 checks it.
//!
//! Use from a test file with
//! `#[path = "support/cef_parsers.rs"] mod cef_parsers;`
//!
//! Both tools are required: a missing tool is a test failure that says to run
//! `tests/install-deps.sh`, never a skipped test.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// One line as a parser understood it. All values are strings, unescaped by the parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedCef {
    /// The digit after `CEF:`.
    pub version: String,
    pub vendor: String,
    pub product: String,
    pub device_version: String,
    pub class_id: String,
    pub name: String,
    pub severity: String,
    pub extension: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Parser {
    Cefp,
    Lognormalizer,
    /// Not in [`ALL_PARSERS`]: VRL 0.15 reads the escape `\r` as a line feed, and newer VRL
    /// builds drop a `|` that ends a value right before the next key (CEF has no escape for
    /// it), so its tests note such lines rather than fail.
    Vrl,
}

pub const ALL_PARSERS: [Parser; 2] = [Parser::Cefp, Parser::Lognormalizer];

impl Parser {
    pub fn name(self) -> &'static str {
        match self {
            Parser::Cefp => "cefp 0.0.2",
            Parser::Lognormalizer => "liblognorm lognormalizer",
            Parser::Vrl => "Vector VRL parse_cef (pyVRL 0.0.2)",
        }
    }

    /// Parses every line; `Err` holds the parser's complaint about that line.
    pub fn parse<L: AsRef<[u8]>>(self, lines: &[L]) -> Vec<Result<ParsedCef, String>> {
        let lines: Vec<&str> = lines.iter().map(|l| checked_line(l.as_ref())).collect();
        match self {
            Parser::Cefp => cefp(&lines),
            Parser::Lognormalizer => lognormalizer(&lines),
            Parser::Vrl => vrl(&lines),
        }
    }
}

/// Parses with both parsers and returns the result, panicking with the line if either parser
/// rejects a line or the two disagree. This is what a test of encoder output should call.
pub fn parse_strict<L: AsRef<[u8]>>(lines: &[L]) -> Vec<ParsedCef> {
    let by_cefp = Parser::Cefp.parse(lines);
    let by_lognorm = Parser::Lognormalizer.parse(lines);
    let mut out = Vec::with_capacity(lines.len());
    for (i, (a, b)) in by_cefp.into_iter().zip(by_lognorm).enumerate() {
        let line = String::from_utf8_lossy(lines[i].as_ref());
        let a = a.unwrap_or_else(|e| panic!("cefp rejected line {i}: {e}\n  line: {line}"));
        let b =
            b.unwrap_or_else(|e| panic!("lognormalizer rejected line {i}: {e}\n  line: {line}"));
        assert_eq!(
            a, b,
            "cefp (left) and lognormalizer (right) disagree on line {i}\n  line: {line}"
        );
        out.push(a);
    }
    out
}

fn checked_line(line: &[u8]) -> &str {
    let s = std::str::from_utf8(line).unwrap_or_else(|e| {
        panic!(
            "CEF line is not UTF-8 ({e}): {}",
            String::from_utf8_lossy(line)
        )
    });
    assert!(
        !s.contains(['\n', '\r']),
        "CEF line contains a raw CR or LF (the encoder must never emit one): {s:?}"
    );
    assert!(
        s.starts_with("CEF:"),
        "CEF line must start with `CEF:` (strip the syslog header): {s:?}"
    );
    s
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn missing(what: &str) -> ! {
    panic!(
        "{what}\nThe CEF parser tests need python3 with cefp 0.0.2, pyVRL 0.0.2 and cefevent 0.5.6 in \
         .test-deps/pylib and liblognorm's lognormalizer (apt package liblognorm-utils). Run \
         tests/install-deps.sh, then re-run the tests."
    )
}

/// Runs a Python driver with `.test-deps/pylib` on its path, the lines as JSON on its standard
/// input; returns its standard output parsed as JSON.
fn run_python(driver: &str, what: &str, lines: &[&str]) -> serde_json::Value {
    let pylib = repo_root().join(".test-deps/pylib");
    let mut child = Command::new("python3")
        .arg("-c")
        .arg(driver)
        .env("PYTHONPATH", &pylib)
        .env("PYTHONIOENCODING", "utf-8")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing(&format!("cannot run python3: {e}.")));
    let input = serde_json::to_vec(lines).unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child.wait_with_output().expect("python3 did not finish");
    writer.join().unwrap().expect("writing to python3 failed");
    if !out.status.success() {
        missing(&format!(
            "the {what} driver failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("the {what} driver printed something that is not JSON ({e})"))
}

// -- VRL ----------------------------------------------------------------------------------

const VRL_DRIVER: &str = r#"
import sys, json
import importlib.metadata as md
try:
    version = md.version("pyVRL")
except md.PackageNotFoundError:
    sys.stderr.write("pyVRL is not installed\n"); sys.exit(3)
if version != "0.0.2":
    sys.stderr.write("pyVRL %s is installed; the tests need 0.0.2 (VRL 0.15)\n" % version); sys.exit(3)
import pyvrl
program = pyvrl.Transform(". = parse_cef!(.message)")
header = {"cefVersion": "version", "deviceVendor": "vendor", "deviceProduct": "product",
          "deviceVersion": "device_version", "deviceEventClassId": "class_id", "name": "name",
          "severity": "severity"}
lines = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = []
for line in lines:
    try:
        event = program.remap({"message": line})
        ok = {"extension": {}}
        for k, v in event.items():
            if k in header:
                ok[header[k]] = v
            else:
                ok["extension"][k] = v
        out.append({"ok": ok})
    except Exception as e:
        out.append({"err": "%s: %s" % (type(e).__name__, e)})
sys.stdout.write(json.dumps(out))
"#;

fn vrl(lines: &[&str]) -> Vec<Result<ParsedCef, String>> {
    let results = run_python(VRL_DRIVER, "pyVRL", lines);
    let results = results.as_array().expect("the pyVRL driver prints a list");
    assert_eq!(
        results.len(),
        lines.len(),
        "pyVRL driver returned a result per line"
    );
    results.iter().map(parsed).collect()
}

// -- cefevent -----------------------------------------------------------------------------

const CEFEVENT_DRIVER: &str = r#"
import sys, json
import importlib.metadata as md
try:
    version = md.version("cefevent")
except md.PackageNotFoundError:
    sys.stderr.write("cefevent is not installed\n"); sys.exit(3)
if version != "0.5.6":
    sys.stderr.write("cefevent %s is installed; the tests need 0.5.6\n" % version); sys.exit(3)
from cefevent.extensions import extension_dictionary
sys.stdout.write(json.dumps({k: v["full_name"] for k, v in extension_dictionary.items()}))
"#;

/// The extension keys `cefevent` 0.5.6 knows (its transcription of ArcSight's dictionary), each
/// with its full name.
pub fn cefevent_dictionary() -> BTreeMap<String, String> {
    string_map(&run_python(CEFEVENT_DRIVER, "cefevent", &[]))
}

// -- cefp ---------------------------------------------------------------------------------

const CEFP_DRIVER: &str = r#"
import sys, json
import importlib.metadata as md
try:
    version = md.version("cefp")
except md.PackageNotFoundError:
    sys.stderr.write("cefp is not installed\n"); sys.exit(3)
if version != "0.0.2":
    sys.stderr.write("cefp %s is installed; the tests need 0.0.2\n" % version); sys.exit(3)
import cefp
lines = json.loads(sys.stdin.buffer.read().decode("utf-8"))
out = []
for line in lines:
    try:
        p = cefp.parse(line)
        d = p["device"]
        out.append({"ok": {"version": p["version"], "vendor": d["vendor"], "product": d["product"],
                           "device_version": d["version"], "class_id": d["event_class_id"],
                           "name": p["name"], "severity": p["severity"], "extension": p["extension"]}})
    except Exception as e:
        out.append({"err": "%s: %s" % (type(e).__name__, e)})
sys.stdout.write(json.dumps(out))
"#;

fn cefp(lines: &[&str]) -> Vec<Result<ParsedCef, String>> {
    let pylib = repo_root().join(".test-deps/pylib");
    if !pylib.join("cefp.py").is_file() && !pylib.join("cefp/__init__.py").is_file() {
        missing(&format!("cefp not found in {}.", pylib.display()));
    }
    let results = run_python(CEFP_DRIVER, "cefp", lines);
    let results = results.as_array().expect("the cefp driver prints a list");
    assert_eq!(
        results.len(),
        lines.len(),
        "cefp driver returned a result per line"
    );
    results.iter().map(parsed).collect()
}

/// A Python driver's result for one line: `{"ok": {header fields, "extension": {...}}}` or
/// `{"err": "why"}`.
fn parsed(r: &serde_json::Value) -> Result<ParsedCef, String> {
    match r.get("ok") {
        Some(ok) => Ok(ParsedCef {
            version: str_field(ok, "version"),
            vendor: str_field(ok, "vendor"),
            product: str_field(ok, "product"),
            device_version: str_field(ok, "device_version"),
            class_id: str_field(ok, "class_id"),
            name: str_field(ok, "name"),
            severity: str_field(ok, "severity"),
            extension: string_map(&ok["extension"]),
        }),
        None => Err(r["err"].as_str().unwrap_or("?").to_owned()),
    }
}

// -- lognormalizer ----------------------------------------------------------------------------

fn lognormalizer(lines: &[&str]) -> Vec<Result<ParsedCef, String>> {
    let mut rulebase = tempfile::Builder::new()
        .suffix(".rb")
        .tempfile()
        .expect("temporary rulebase");
    rulebase
        .write_all(b"version=2\nrule=:%cef:cef%\n")
        .expect("write rulebase");
    let mut child = Command::new("lognormalizer")
        .arg("-r")
        .arg(rulebase.path())
        .args(["-e", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| missing(&format!("cannot run lognormalizer: {e}.")));
    let mut input = Vec::new();
    for line in lines {
        input.extend_from_slice(&work_around_first_key_bug(line));
        input.push(b'\n');
    }
    let mut stdin = child.stdin.take().unwrap();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let out = child
        .wait_with_output()
        .expect("lognormalizer did not finish");
    writer
        .join()
        .unwrap()
        .expect("writing to lognormalizer failed");
    assert!(
        out.status.success(),
        "lognormalizer failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("lognormalizer printed UTF-8");
    let results: Vec<&str> = text.lines().collect();
    assert_eq!(
        results.len(),
        lines.len(),
        "lognormalizer printed one JSON object per input line"
    );
    results
        .into_iter()
        .map(|json| {
            let v: serde_json::Value = serde_json::from_str(json)
                .unwrap_or_else(|e| panic!("lognormalizer printed invalid JSON ({e}): {json}"));
            let Some(cef) = v.get("cef") else {
                return Err(format!("unparsed: {json}"));
            };
            Ok(ParsedCef {
                // lognormalizer does not report the version; the rule only matches `CEF:0`.
                version: "0".to_owned(),
                vendor: str_field(cef, "DeviceVendor"),
                product: str_field(cef, "DeviceProduct"),
                device_version: str_field(cef, "DeviceVersion"),
                class_id: str_field(cef, "SignatureID"),
                name: str_field(cef, "Name"),
                severity: str_field(cef, "Severity"),
                extension: string_map(&cef["Extensions"]),
            })
        })
        .collect()
}

/// liblognorm 2.0.6 drops the first character of the first key when no space follows the seventh
/// `|` (upstream issue #363); it ignores a leading space, so one is inserted for it (only here:
/// the encoder must not emit it, other consumers reject it).
fn work_around_first_key_bug(line: &str) -> Vec<u8> {
    let bytes = line.as_bytes();
    let mut pipes = 0;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'\\' => i += 1,
            b'|' => {
                pipes += 1;
                if pipes == 7 {
                    let mut v = bytes[..=i].to_vec();
                    v.push(b' ');
                    v.extend_from_slice(&bytes[i + 1..]);
                    return v;
                }
            }
            _ => {}
        }
        i += 1;
    }
    bytes.to_vec()
}

// -- JSON helpers -----------------------------------------------------------------------------

fn str_field(v: &serde_json::Value, name: &str) -> String {
    match &v[name] {
        serde_json::Value::String(s) => s.clone(),
        other => panic!("parser output field `{name}` is not a string: {other}"),
    }
}

fn string_map(v: &serde_json::Value) -> BTreeMap<String, String> {
    let obj = v
        .as_object()
        .unwrap_or_else(|| panic!("parser extension is not an object: {v}"));
    obj.iter()
        .map(|(k, v)| {
            let s = v
                .as_str()
                .unwrap_or_else(|| panic!("extension value of `{k}` is not a string: {v}"));
            (k.clone(), s.to_owned())
        })
        .collect()
}
