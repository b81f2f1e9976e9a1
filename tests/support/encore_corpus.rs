//! Conformance corpus B (`tests/data/corpus-b/`, from `shared/conformance/encore-corpus-B`):
//! the byte stream, Cisco eNcore's CEF lines for it, and how to read those lines and ours key by
//! key. eNcore's lines are not valid CEF (unescaped `=` in quotes, raw line breaks, `\"`, `\]`,
//! `\|`), so they are read with eNcore's own rules: the extension is split at eNcore's keys (it
//! writes them sorted), quotes are removed and its escapes undone.
//!
//! Use from a test file with
//! `#[path = "support/encore_corpus.rs"] mod encore_corpus;`
#![allow(dead_code)]

use std::collections::BTreeMap;

#[path = "mapping_run.rs"]
pub mod mapping_run;

use mapping_run::{split_line, unescape_value};

pub const CORPUS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-b/corpus-B.bin"
);
pub const EXPECTED: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-b/corpus-B.expected.cef"
);
pub const TRUTH: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/data/corpus-b/corpus-B.truth.jsonl"
);

/// What `decode --cef` prints for the corpus under a configuration holding `config` (TOML), with
/// no mappings folder (the built-in tables), optionally only `record_types` (e.g. "71,400"):
/// record index → CEF line.
pub fn decode_cef(config: &str, record_types: Option<&str>) -> BTreeMap<usize, String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("estreamer-cef.toml");
    std::fs::write(&path, config).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_estreamer-cef"));
    cmd.arg("-c")
        .arg(&path)
        .args(["decode", "--cef", "--mappings-dir"])
        .arg(dir.path().join("no-overrides"));
    if let Some(t) = record_types {
        cmd.args(["--record-types", t]);
    }
    let out = cmd.arg(CORPUS).output().unwrap();
    assert!(
        out.status.success(),
        "decode --cef failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("decode --cef prints UTF-8")
        .lines()
        .map(|l| {
            let (i, line) = l.split_once('\t').expect("INDEX<TAB>CEF");
            (i.parse().expect("a record index"), line.to_string())
        })
        .collect()
}

/// The keys eNcore's CEF adapter can write per record type (its `adapters/cef.py` tables).
pub fn encore_keys(t: u32) -> &'static [&'static str] {
    match t {
        2 => &[
            "cs1",
            "cs1Label",
            "deviceExternalId",
            "dvchost",
            "externalId",
            "rt",
            "start",
        ],
        71 => &[
            "act",
            "app",
            "bytesIn",
            "bytesOut",
            "c6a2",
            "c6a3",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "cs4Label",
            "cs5",
            "cs5Label",
            "destinationDnsDomain",
            "deviceExternalId",
            "deviceInboundInterface",
            "deviceOutboundInterface",
            "dpt",
            "dst",
            "dvchost",
            "dvcpid",
            "end",
            "externalId",
            "proto",
            "reason",
            "request",
            "requestClientApplication",
            "rt",
            "spt",
            "src",
            "start",
            "suser",
        ],
        110 => &[
            "blob",
            "cs1Label",
            "data",
            "deviceExternalId",
            "dvchost",
            "eventId",
            "eventSecond",
            "externalId",
            "rt",
            "type",
        ],
        112 => &[
            "act",
            "app",
            "c6a2",
            "c6a3",
            "cn1",
            "cn1Label",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "cs4Label",
            "deviceExternalId",
            "deviceInboundInterface",
            "deviceOutboundInterface",
            "dpt",
            "dst",
            "duser",
            "dvchost",
            "externalId",
            "msg",
            "proto",
            "rt",
            "spt",
            "src",
            "suser",
        ],
        125 => &[
            "act",
            "app",
            "c6a2",
            "c6a3",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "cs4Label",
            "cs5",
            "cs5Label",
            "deviceDirection",
            "deviceExternalId",
            "dpt",
            "dst",
            "duser",
            "dvchost",
            "dvcpid",
            "fileCreateTime",
            "fileHash",
            "filePath",
            "fileType",
            "fname",
            "fsize",
            "outcome",
            "proto",
            "request",
            "requestClientApplication",
            "rt",
            "sproc",
            "spt",
            "src",
            "start",
            "suser",
        ],
        400 => &[
            "act",
            "app",
            "c6a2",
            "c6a3",
            "cat",
            "cn1",
            "cn1Label",
            "cn2",
            "cn2Label",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "cs4Label",
            "cs5",
            "cs5Label",
            "cs6",
            "cs6Label",
            "deviceExternalId",
            "deviceInboundInterface",
            "deviceOutboundInterface",
            "dpt",
            "dst",
            "dvchost",
            "dvcpid",
            "externalId",
            "proto",
            "requestClientApplication",
            "rt",
            "spt",
            "src",
            "start",
            "suser",
        ],
        500 | 502 => &[
            "act",
            "app",
            "c6a2",
            "c6a3",
            "cs1",
            "cs1Label",
            "cs2",
            "cs2Label",
            "cs3",
            "cs3Label",
            "cs4",
            "deviceDirection",
            "deviceExternalId",
            "dpt",
            "dst",
            "dvchost",
            "dvcpid",
            "fileHash",
            "fileType",
            "fname",
            "fsize",
            "proto",
            "request",
            "requestClientApplication",
            "rt",
            "spt",
            "src",
            "start",
            "suser",
        ],
        _ => &[],
    }
}

/// One CEF line read into header fields and unescaped extension values.
#[derive(Debug)]
pub struct Line {
    pub class_id: String,
    pub name: String,
    pub severity: String,
    pub ext: BTreeMap<String, String>,
}

/// eNcore's lines: index → (record type, raw CEF text).
pub fn encore_lines() -> BTreeMap<usize, (u32, String)> {
    let text = std::fs::read_to_string(EXPECTED).unwrap();
    let mut out = BTreeMap::new();
    let mut cur: Option<(usize, u32, String)> = None;
    for line in text.split('\n') {
        let start = line.split('\t').collect::<Vec<_>>();
        let is_start = start.len() >= 3
            && start[0].bytes().all(|b| b.is_ascii_digit())
            && start[1].bytes().all(|b| b.is_ascii_digit())
            && start[2].starts_with("CEF:0|Cisco|Firepower|");
        if is_start {
            if let Some((i, t, l)) = cur.take() {
                out.insert(i, (t, l));
            }
            let rest = line.splitn(3, '\t').nth(2).unwrap().to_string();
            cur = Some((start[0].parse().unwrap(), start[1].parse().unwrap(), rest));
        } else if let Some((_, _, l)) = cur.as_mut() {
            // eNcore writes raw line breaks: a continuation.
            l.push('\n');
            l.push_str(line);
        }
    }
    if let Some((i, t, l)) = cur.take() {
        out.insert(i, (t, l.trim_end_matches('\n').to_string()));
    }
    out
}

/// Reads an eNcore line. Its header is unescaped (a `|` in a rule message stays raw), so the
/// severity is the first `|digits|` followed by a key or the end.
pub fn parse_encore(t: u32, line: &str) -> Line {
    let prefix = "CEF:0|Cisco|Firepower|6.0|";
    let rest = line.strip_prefix(prefix).expect("eNcore's header prefix");
    let (class_id, rest) = rest.split_once('|').unwrap();
    let b = rest.as_bytes();
    let mut sev_at = None;
    for i in 0..b.len() {
        if b[i] != b'|' {
            continue;
        }
        let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        let after = i + 1 + digits;
        if digits > 0 && b.get(after) == Some(&b'|') {
            let ext = &rest[after + 1..];
            let key_len = ext
                .bytes()
                .take_while(|c| c.is_ascii_alphanumeric())
                .count();
            if ext.is_empty() || (key_len > 0 && ext.as_bytes().get(key_len) == Some(&b'=')) {
                sev_at = Some((i, after));
                break;
            }
        }
    }
    let (i, after) = sev_at.unwrap_or_else(|| panic!("no severity in eNcore's line {line}"));
    let name = rest[..i].to_string();
    let severity = rest[i + 1..after].to_string();
    let ext = &rest[after + 1..];
    Line {
        class_id: class_id.to_string(),
        name,
        severity,
        ext: split_encore_extension(t, ext),
    }
}

/// Splits eNcore's extension at its known keys, which it writes in sorted order.
pub fn split_encore_extension(t: u32, ext: &str) -> BTreeMap<String, String> {
    let mut keys: Vec<&str> = encore_keys(t).to_vec();
    keys.sort_unstable();
    let mut starts: Vec<(usize, &str)> = Vec::new();
    let mut pos = 0;
    for k in keys {
        let at = if pos == 0 && ext.starts_with(&format!("{k}=")) {
            Some(0)
        } else {
            ext[pos..].find(&format!(" {k}=")).map(|i| pos + i + 1)
        };
        if let Some(at) = at {
            starts.push((at, k));
            pos = at + k.len() + 1;
        }
    }
    let mut out = BTreeMap::new();
    for (n, &(at, k)) in starts.iter().enumerate() {
        let end = starts.get(n + 1).map_or(ext.len(), |&(next, _)| next - 1);
        out.insert(k.to_string(), encore_value(&ext[at + k.len() + 1..end]));
    }
    out
}

/// Undoes eNcore's value quoting (values with `=` in double quotes) and escapes (`\\`, `\"`,
/// `\]`, `\|`).
pub fn encore_value(v: &str) -> String {
    let v = if v.len() >= 2 && v.starts_with('"') && v.ends_with('"') && !v.ends_with("\\\"") {
        &v[1..v.len() - 1]
    } else {
        v
    };
    let mut out = String::new();
    let mut chars = v.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some(n @ ('\\' | '"' | ']' | '|')) => out.push(n),
                Some(n) => {
                    out.push('\\');
                    out.push(n);
                }
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// What our encoder does to text: trailing spaces and control characters (not CR/LF) trimmed,
/// other control characters as spaces.
pub fn as_our_encoder_writes(v: &str) -> String {
    v.trim_end_matches(|c: char| (c == ' ' || c.is_ascii_control()) && c != '\n' && c != '\r')
        .chars()
        .map(|c| {
            if c.is_ascii_control() && c != '\n' && c != '\r' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

pub fn ours(line: &str) -> Line {
    let (h, pairs) = split_line(line);
    Line {
        class_id: h[4].clone(),
        name: h[5].clone(),
        severity: h[6].clone(),
        ext: pairs
            .into_iter()
            .map(|(k, v)| (k, unescape_value(&v)))
            .collect(),
    }
}

pub fn digits(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}
