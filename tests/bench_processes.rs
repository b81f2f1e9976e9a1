//! `estreamer-cef-sim bench --processes`: the simulated FMC, this crate's forwarder binary and
//! the receiver each in its own process. The run ends, every record reaches the receiver, and
//! the figures the README quotes are printed (their values are not checked: speed belongs to
//! the benchmark, not to tests).

mod delivery_support;

use std::process::Command;

use delivery_support::{bin, sim_bin};

/// The number before `suffix` on the line that holds it.
fn number_before(text: &str, suffix: &str) -> f64 {
    let line = text
        .lines()
        .find(|l| l.contains(suffix))
        .unwrap_or_else(|| panic!("no {suffix:?} in:\n{text}"));
    let head = &line[..line.find(suffix).unwrap()];
    head.trim_end()
        .rsplit([' ', '('])
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no number before {suffix:?} in {line:?}"))
}

#[test]
fn separate_process_bench_reports_rate_forwarder_cpu_and_rss() {
    for framing in ["octet-counting", "lf"] {
        let out = Command::new(sim_bin())
            .args(["-q", "bench", "--processes", "--records", "20000"])
            .args(["--distinct", "2000", "--framing", framing])
            .arg("--forwarder")
            .arg(bin())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "bench --processes --framing {framing} failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("CPUs"), "no machine line in:\n{text}");
        assert!(text.contains("separate processes"), "{text}");
        assert!(
            number_before(&text, " records received in ") >= 20000.0,
            "{text}"
        );
        assert!(number_before(&text, " records/s (") > 0.0, "{text}");
        assert!(number_before(&text, " µs per record") > 0.0, "{text}");
        // The forwarder's own peak RSS: more than nothing, less than the machine.
        let rss = number_before(&text, " MiB");
        assert!(rss > 1.0 && rss < 4096.0, "{text}");
    }
}
