//! Command-line interface: one file per subcommand.

mod check_config;
mod decode;
mod import_encore;
mod mappings;
mod replay;
mod run;
pub mod signals;
mod test;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Sources};

/// Reads security events from a Cisco Firepower Management Center (FMC) over eStreamer and ships
/// them to ArcSight as CEF over syslog.
///
/// Start with `estreamer-cef test` against your FMC (`estreamer-cef-sim demo`, built from the
/// source tree, shows it working without one).
#[derive(Parser, Debug)]
#[command(name = "estreamer-cef", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Configuration file [default: /etc/estreamer-cef/estreamer-cef.toml if it exists].
    #[arg(long, short = 'c', global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// More log output (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors in the log.
    #[arg(long, short = 'q', global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Forward events from the configured FMC to the configured outputs until stopped
    /// (SIGTERM/SIGINT stop cleanly; SIGHUP reloads the mapping tables).
    Run(run::Args),
    /// Diagnose the connection to the FMC step by step: configuration, PKCS12, DNS, TCP, TLS,
    /// the FMC's certificate check, the eStreamer handshake. Exit code 0 when all pass.
    Test,
    /// Decode a raw eStreamer byte stream (complete messages as the FMC sends them after the
    /// handshake, e.g. a capture or `simulate --record` output) and print one JSON object per
    /// record: type, name, category, archive timestamp, every field and the resolved names
    /// ("@computed"). With --cef, print the CEF lines instead.
    Decode(decode::Args),
    /// Send a recorded eStreamer stream (a capture, or the shipped
    /// /usr/share/estreamer-cef/examples/sample.estreamer) through the configured mappings and
    /// outputs exactly as `run` sends an FMC's events, report what each output delivered, and
    /// exit: proves the receiving side (ArcSight, a syslog relay) before the FMC is reachable.
    /// No FMC is contacted and no bookmark, metadata cache or journal is read or written. Exit
    /// code 1 when an output did not deliver every event within its wait.
    Replay(replay::Args),
    /// Print the effective configuration (defaults, file, environment, flags), secrets redacted.
    CheckConfig,
    /// Print an equivalent, commented estreamer-cef.toml for eNcore's estreamer.conf (the FMC,
    /// PKCS12, start, subscription, records, monitor and outputters; a comment on each setting
    /// that does not carry over). With --bookmark, also carry eNcore's bookmark over so that the
    /// first start resumes where eNcore stopped.
    ImportEncore(import_encore::Args),
    /// Check or show the CEF mapping tables (built-in, and the overrides in the mappings folder).
    #[command(subcommand)]
    Mappings(mappings::Command),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The service and the simulator log what they do; one-shot commands only what goes wrong.
    let service = matches!(cli.command, Command::Run(_));
    init_logging(cli.verbose, cli.quiet, service);
    let result = match &cli.command {
        Command::Run(args) => run::run(&cli, args),
        Command::Test => test::run(&cli),
        Command::Decode(args) => decode::run(&cli, args),
        Command::Replay(args) => replay::run(&cli, args),
        Command::CheckConfig => check_config::run(&cli),
        Command::ImportEncore(args) => import_encore::run(&cli, args),
        Command::Mappings(c) => mappings::run(&cli, c),
    };
    exit_code(result, "estreamer-cef")
}

/// The exit code of a command's result; errors are printed as `PROGRAM: error`.
pub fn exit_code(result: anyhow::Result<ExitCode>, program: &str) -> ExitCode {
    match result {
        Ok(code) => code,
        // A closed pipe (`decode ... | head`) is the reader's choice, not an error.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{program}: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Loads the configuration with the command line's `--config` and extra overrides.
pub(crate) fn load_config(
    cli: &Cli,
    overrides: Vec<(String, toml::Value)>,
) -> anyhow::Result<(Config, Option<PathBuf>)> {
    let sources = Sources {
        file: cli.config.clone(),
        overrides,
        no_env: false,
    };
    Ok(Config::load(&sources)?)
}

/// Loads the mapping tables: built-in ones, overridden by `dir` (or the configured folder).
pub(crate) fn load_mappings(
    cfg: &Config,
    dir: Option<PathBuf>,
) -> anyhow::Result<crate::mapping::Mappings> {
    crate::mapping::Mappings::for_config(cfg, dir)
        .map_err(|e| anyhow::anyhow!("the mapping tables have problems:\n{e}"))
}

/// Logs to stderr: the service and the simulator say what they do, one-shot commands only what
/// goes wrong.
pub fn init_logging(verbose: u8, quiet: bool, service: bool) {
    use tracing_subscriber::EnvFilter;
    let level = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) if service => "info",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // Dependencies speak only about problems unless asked.
        EnvFilter::new(format!(
            "{},estreamer_cef={level}",
            if verbose >= 2 { level } else { "warn" }
        ))
    });
    use std::io::IsTerminal;
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal, never in journald, files or pipes.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .try_init();
}
