//! Running `estreamer-cef replay` on the shipped sample, and what it should send: the lines
//! `decode --cef` prints for the same file and configuration.
//!
//! Use from a test file with `#[path = "support/replay.rs"] mod replay;`
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_estreamer-cef"))
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Writes the sample the packages ship (what `estreamer-cef-sim sample` writes) into `dir`.
pub fn sample(dir: &Path) -> PathBuf {
    let p = dir.join("sample.estreamer");
    std::fs::write(&p, estreamer_cef_sim::sample::stream()).unwrap();
    p
}

/// The CEF lines `decode --cef` gives for the file with this configuration (what `run` and
/// `replay` send), in the file's order.
pub fn decoded_cef(cfg: &Path, file: &Path) -> Vec<String> {
    let out = bin()
        .arg("-c")
        .arg(cfg)
        .args(["decode", "--cef"])
        .arg(file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| l.split_once('\t').expect("index, tab, CEF").1.to_string())
        .collect()
}

/// `estreamer-cef -c CFG replay ARGS...`, and how long it took.
pub fn replay(cfg: &Path, args: &[&str]) -> (Output, Duration) {
    let started = Instant::now();
    let out = bin()
        .arg("-c")
        .arg(cfg)
        .arg("replay")
        .args(args)
        .output()
        .unwrap();
    (out, started.elapsed())
}
