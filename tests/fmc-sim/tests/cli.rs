//! `estreamer-cef-sim bench` and `demo` run and report what they promise (the benchmark's figures
//! are not checked: speed belongs to the benchmark, not to tests).

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .arg("-q")
        .arg("bench")
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "bench {args:?} failed: {text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

/// "  N records received in T s: ..." of a bench's report.
fn records_received(text: &str) -> u64 {
    text.lines()
        .find_map(|l| l.trim().split_once(" records received in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of records received in:\n{text}"))
}

#[test]
fn end_to_end_bench_reports_rate_cpu_and_memory() {
    let text = bench(&["--records", "3000", "--distinct", "500"]);
    for what in [
        "CPUs",
        "records/s",
        "user",
        "system",
        "peak RSS",
        "forwarder's threads",
    ] {
        assert!(text.contains(what), "{what:?} missing from:\n{text}");
    }
    assert!(records_received(&text) >= 3000, "{text}");
    assert!(text.contains("TLS in and out"), "{text}");
}

#[test]
fn end_to_end_bench_into_plain_tcp() {
    let text = bench(&["--records", "3000", "--distinct", "500", "--tcp"]);
    assert!(text.contains("TLS in, plain TCP out"), "{text}");
    assert!(records_received(&text) >= 3000, "{text}");
}

#[test]
fn decode_bench_reports_both_record_types() {
    let text = bench(&["decode", "--records", "2000"]);
    for what in [
        "71: decode",
        "400: decode",
        "decode + names + mapping + CEF",
    ] {
        assert!(text.contains(what), "{what:?} missing from:\n{text}");
    }
}

#[test]
fn demo_writes_the_events_it_announces() {
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .arg("demo")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines = stdout.lines().filter(|l| l.starts_with("CEF:0|")).count();
    assert_eq!(lines, stdout.lines().count(), "only CEF lines on stdout");
    // "…, 140 events to forward as CEF" and "…, 140 CEF events written"
    let number_before = |suffix: &str| -> usize {
        let line = stderr
            .lines()
            .find(|l| l.contains(suffix))
            .unwrap_or_else(|| panic!("no {suffix:?} in:\n{stderr}"));
        let head = &line[..line.find(suffix).unwrap()];
        head.rsplit(' ').next().unwrap().parse().unwrap()
    };
    let announced = number_before(" events to forward");
    let written = number_before(" CEF events written");
    assert!(announced > 100, "{stderr}");
    assert_eq!(
        (announced, written),
        (lines, lines),
        "announced, written and printed events agree"
    );
}

fn demo(args: &[&str]) -> Vec<String> {
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "demo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// The CEF header's event class (`RNA:1003:1` for a connection), as the fifth `|` field.
fn class(line: &str) -> &str {
    line.split('|').nth(4).unwrap_or_default()
}

/// What a newcomer reads first looks like an FMC's day: mostly connections, then intrusions,
/// file and malware events, and no text a reader would take for mangled data.
#[test]
fn the_demo_looks_like_an_fmcs_day() {
    let lines = demo(&[]);
    assert!(lines.len() > 100, "{} lines", lines.len());
    let count = |prefix: &str| {
        lines
            .iter()
            .filter(|l| class(l).starts_with(prefix))
            .count()
    };
    let connections = count("RNA:1003:");
    assert!(
        connections * 2 > lines.len(),
        "{connections} connections of {} lines",
        lines.len()
    );
    for (what, prefix) in [
        ("intrusion", "INTRUSION:400:"),
        ("file", "File:500:"),
        ("file malware", "FileMalware:502:"),
    ] {
        assert!(count(prefix) >= 3, "{} {what} events", count(prefix));
    }
    for l in &lines {
        // Replacement characters (invalid UTF-8), escaped line breaks and pipes come from the
        // adversarial generator, not from a healthy FMC.
        assert!(
            !l.contains('\u{fffd}')
                && !l.contains("\\n")
                && !l.contains("\\r")
                && !l.contains("\\|"),
            "{l}"
        );
    }
    // The tests' cases are still one option away.
    let adversarial = demo(&["--profile", "adversarial"]);
    assert!(
        adversarial
            .iter()
            .any(|l| l.contains('\u{fffd}') || l.contains("\\n") || l.contains("\\|")),
        "--profile adversarial has the text cases"
    );
    let adversarial_connections = adversarial
        .iter()
        .filter(|l| class(l).starts_with("RNA:1003:"))
        .count();
    assert!(
        adversarial_connections * 10 < adversarial.len(),
        "--profile adversarial spreads over every record type"
    );
}

/// `estreamer-cef-sim demo --follow | head -n 3`: once the reader has gone, the program ends at once
/// (with status 0: the reader's choice) instead of retrying a pipe nobody reads.
#[test]
fn demo_ends_when_its_reader_closes_the_pipe() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::{Duration, Instant};

    let mut child = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .args(["demo", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for _ in 0..3 {
        let line = lines.next().expect("a line").unwrap();
        assert!(line.starts_with("CEF:0|"), "{line}");
    }
    drop(lines);
    let closed = Instant::now();
    // --follow never ends on its own; before the fix it kept retrying the closed pipe. The
    // deadline only has to tell "ends" from "never ends": generous, for a loaded machine.
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if closed.elapsed() > Duration::from_secs(60) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("still running 60 s after its reader closed the pipe");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
}

#[test]
fn sample_writes_the_stream_the_packages_ship() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("examples/sample.estreamer");
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .arg("sample")
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let written = std::fs::read(&file).unwrap();
    // The same bytes on every build: they follow from the sample's options alone.
    assert_eq!(written, estreamer_cef_sim::sample::stream());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("{} bytes", written.len())),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
