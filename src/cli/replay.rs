//! `estreamer-cef replay FILE`: a recorded eStreamer stream through the configured mappings and
//! outputs, as `run` sends an FMC's, to prove the receiving side before the FMC is reachable.
//! Nothing of the service's state (bookmark, metadata cache, resend journals) is read or written.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;

use super::{Cli, signals};
use crate::pipeline::{self, OutputReport, Recording, RunOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The recorded stream (whole eStreamer messages, as `decode` reads: a capture, or
    /// /usr/share/estreamer-cef/examples/sample.estreamer), or - for standard input.
    pub file: PathBuf,
    /// Events per second (default: as fast as the outputs take them).
    #[arg(long, value_name = "N")]
    pub rate: Option<u32>,
}

/// How long an output may go without delivering while it holds events, when no TCP/TLS/Kafka
/// output sets a `shutdown_timeout`.
const DEFAULT_WAIT: Duration = Duration::from_secs(10);

pub fn run(cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let (cfg, _) = super::load_config(cli, Vec::new())?;
    let (name, bytes) = if args.file.as_os_str() == "-" {
        let mut v = Vec::new();
        std::io::stdin()
            .read_to_end(&mut v)
            .context("reading standard input")?;
        ("standard input".to_string(), v)
    } else {
        let bytes = std::fs::read(&args.file)
            .with_context(|| format!("cannot read {}", args.file.display()))?;
        (args.file.display().to_string(), bytes)
    };
    let recording = Recording::new(&name, bytes, args.rate).map_err(anyhow::Error::msg)?;
    // The wait for a receiver: the one the outputs already have for the end of a run.
    let wait = cfg
        .outputs
        .iter()
        .filter_map(|o| o.shutdown_timeout())
        .max()
        .unwrap_or(DEFAULT_WAIT);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let summary = rt.block_on(async move {
        let stop = signals::install(None)?;
        let opts = RunOptions {
            recording: Some(recording),
            stall_limit: Some(wait),
            ..RunOptions::default()
        };
        pipeline::run(cfg, opts, stop).await
    })?;
    let c = &summary.counters;
    // The report goes to stderr: stdout may be one of the outputs.
    eprintln!(
        "estreamer-cef replay: {name}: {} records ({} metadata, {} of unknown types, {} malformed, \
         {} without a mapping table), {} CEF events",
        c.records, c.metadata, c.unknown, c.malformed, c.unmapped, summary.emitted
    );
    let mut failed = Vec::new();
    for (i, o) in summary.outputs.iter().enumerate() {
        let delivered = o.delivered_up_to.min(summary.emitted);
        eprintln!(
            "  output[{i}] {}: {delivered} of {} events delivered{}",
            o.name,
            summary.emitted,
            details(o)
        );
        if delivered < summary.emitted {
            failed.push(format!(
                "output[{i}] {} delivered {delivered} of {} events: nothing more reached it \
                 within {} s (shutdown_timeout); check that the receiver listens there and this host may reach it (the \
                 warnings above say what failed)",
                o.name,
                summary.emitted,
                wait.as_secs_f64()
            ));
        }
    }
    if summary.emitted == 0 {
        failed.push(
            "no CEF event came out of the recording: check [records] (the record filter) and \
             the mapping tables (`estreamer-cef mappings check`)"
                .to_string(),
        );
    }
    if failed.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for f in failed {
        eprintln!("estreamer-cef: {f}");
    }
    Ok(ExitCode::from(1))
}

/// The output's counters worth a look: errors, reconnects, resent and dropped messages.
fn details(o: &OutputReport) -> String {
    let s = &o.stats;
    let parts: Vec<String> = [
        (s.errors, "errors"),
        (s.reconnects, "reconnects"),
        (s.resent, "resent"),
        (s.truncated, "truncated"),
        (s.dropped_oversize, "dropped (oversize)"),
    ]
    .iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect();
    if parts.is_empty() {
        String::new()
    } else {
        format!(" ({})", parts.join(", "))
    }
}
