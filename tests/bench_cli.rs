//! `estreamer-cef bench` runs and reports what it promises (figures are not checked: speed
//! belongs to the benchmark, not to tests).

use std::process::Command;

fn bench(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_estreamer-cef"))
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
    // "  N records received in T s: R records/s ..."
    let received: u64 = text
        .lines()
        .find_map(|l| l.trim().split_once(" records received in "))
        .and_then(|(n, _)| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of records received in:\n{text}"));
    assert!(received >= 3000, "{text}");
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
