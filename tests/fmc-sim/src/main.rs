//! `estreamer-cef-sim`: a simulated FMC (`simulate`), the simulator feeding the forwarder with CEF
//! on stdout (`demo`), and the end-to-end benchmark (`bench`). Not part of the shipped package.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use estreamer_cef_sim::cli::{bench, demo, receive, sample, simulate};

/// A simulated Cisco FMC (eStreamer over mutual TLS) and the tools built on it.
///
/// Start with `estreamer-cef-sim demo`: the simulator feeds the forwarder, CEF lines on stdout.
#[derive(Parser, Debug)]
#[command(name = "estreamer-cef-sim", version, about, long_about = None, propagate_version = true)]
struct Cli {
    /// More log output (-v info, -vv debug). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    verbose: u8,
    /// Only errors in the log.
    #[arg(long, short = 'q', global = true)]
    quiet: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a simulated FMC (eStreamer over mutual TLS) with generated records of every type;
    /// `--init DIR` creates its certificates and a client configuration.
    Simulate(simulate::Args),
    /// Start the simulator and the forwarder together and print the CEF lines: no FMC needed.
    Demo(demo::Args),
    /// Measure this machine: records per second end to end (simulated FMC → forwarder → TLS
    /// receiver, all in this process, or with --processes each in its own), CPU time and peak
    /// memory; or `bench decode`: the decoder
    /// and the mapping alone, on one core. Build with --release.
    Bench(bench::Args),
    /// The benchmark's TLS syslog receiver on its own (`bench --processes` starts it): counts
    /// frames, prints a line at every tenth of --count, exits when all arrived.
    #[command(hide = true)]
    Receive(receive::Args),
    /// Write the recorded eStreamer stream the packages ship as
    /// /usr/share/estreamer-cef/examples/sample.estreamer (packaging/build.sh runs it).
    Sample(sample::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let service = matches!(cli.command, Command::Simulate(_));
    estreamer_cef::cli::init_logging(cli.verbose, cli.quiet, service);
    let result = match &cli.command {
        Command::Simulate(args) => simulate::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Receive(args) => receive::run(args),
        Command::Sample(args) => sample::run(args),
    };
    estreamer_cef::cli::exit_code(result, "estreamer-cef-sim")
}
