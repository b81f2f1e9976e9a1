//! `estreamer-cef-sim demo`: the simulator and the forwarder in one process, CEF on stdout.
//! Needs no FMC, no configuration and no network beyond loopback.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use crate::generate::{GenOptions, Profile, generate};
use crate::pki::{self, PkiFiles, PkiOptions};
use crate::server::{SimulatorConfig, serve};
use estreamer_cef::cli::signals;
use estreamer_cef::config::{Config, Start};
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef::output::{Format, OutputConfig};
use estreamer_cef::pipeline::{self, RunOptions};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Event records per record type in the simulated FMC's archive (realistic: per unit of
    /// each type's share, connections 24, intrusions 6, files 4, ...).
    #[arg(long, default_value_t = 3)]
    pub events_per_type: usize,
    /// `realistic`: an FMC's day, mostly connections, intrusions, file and malware events with
    /// plain names and addresses. `adversarial`: every record type equally, with the text cases
    /// the tests use (special characters, line breaks, Latin-1 bytes) to show how they are
    /// escaped.
    #[arg(long, value_enum, default_value_t = Profile::Realistic)]
    pub profile: Profile,
    /// Only these record types (comma-separated), e.g. 71,400.
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub record_types: Vec<u32>,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// What to print: the bare CEF lines, or RFC 5424 syslog messages as a receiver gets them.
    #[arg(long, default_value = "cef", value_parser = ["cef", "rfc5424", "rfc3164"])]
    pub format: String,
    /// Keep streaming (the simulator repeats its events, later in time) until Ctrl-C.
    #[arg(long)]
    pub follow: bool,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let dir = std::env::temp_dir().join(format!("estreamer-cef-demo-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let result = demo(args, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn demo(args: &Args, dir: &std::path::Path) -> anyhow::Result<ExitCode> {
    let files: PkiFiles = pki::init(&dir.join("pki"), &PkiOptions::default())?;
    let base = match args.profile {
        Profile::Realistic => GenOptions::realistic(args.seed, args.events_per_type),
        Profile::Adversarial => GenOptions::default(),
    };
    let generated = generate(&GenOptions {
        seed: args.seed,
        events_per_type: args.events_per_type,
        record_types: (!args.record_types.is_empty()).then(|| args.record_types.clone()),
        ..base
    });
    let mut cfg = Config::default();
    cfg.fmc_mut().host = "127.0.0.1".into();
    cfg.fmc_mut().pkcs12 = files.client_pkcs12.clone();
    cfg.fmc_mut().pkcs12_password_file = Some(files.client_pass.clone());
    cfg.fmc_mut().start = Start::Genesis;
    cfg.state.dir = dir.join("state");
    cfg.cef.mappings_dir = PathBuf::from("/nonexistent/estreamer-cef-demo");
    let format = match args.format.as_str() {
        "rfc5424" => Format::Rfc5424,
        "rfc3164" => Format::Rfc3164,
        _ => Format::Cef,
    };
    let output: OutputConfig = toml::from_str::<toml::Table>(&format!(
        "transport = \"stdout\"\nformat = \"{}\"\n",
        match format {
            Format::Rfc5424 => "rfc5424",
            Format::Rfc3164 => "rfc3164",
            Format::Cef => "cef",
        }
    ))
    .ok()
    .and_then(|t| toml::Value::Table(t).try_into().ok())
    .ok_or_else(|| anyhow::anyhow!("building the stdout output"))?;
    cfg.outputs = vec![output];

    // How many events the forwarder will write: the simulator's records that pass the record
    // filter and have a mapping table.
    let mappings = pipeline::load_mappings(&cfg).map_err(anyhow::Error::msg)?;
    let filter = RecordFilter::new(&cfg.records);
    let mut decoder = Decoder::new(catalog());
    // Every record counts, not only the events: some reference data the FMC sends without an
    // archive timestamp (the third-party vulnerabilities, 106) is written as CEF too.
    let expected = generated
        .records()
        .filter(|r| match decoder.decode(&r.body) {
            Ok(rec) => {
                filter.wants(rec.record_type(), rec.schema) && mappings.plan_for(&rec).is_some()
            }
            Err(_) => false,
        })
        .count() as u64;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let stop = signals::install(None)?;
        let mut sim = SimulatorConfig::new("127.0.0.1:0".parse()?, &files);
        sim.loop_events = args.follow;
        let handle = serve(sim, Arc::new(generated.scenario), stop.subscribe()).await?;
        cfg.fmc_mut().port = handle.local_addr().port();
        eprintln!(
            "estreamer-cef demo: simulated FMC on {}, {} events to forward as CEF{}",
            handle.local_addr(),
            expected,
            if args.follow { " (and more, until Ctrl-C)" } else { "" }
        );
        let opts = RunOptions {
            stop_after: (!args.follow).then_some(expected),
            ..RunOptions::default()
        };
        let summary = pipeline::run(cfg, opts, stop).await?;
        let c = &summary.counters;
        eprintln!(
            "estreamer-cef demo: {} records received ({} metadata, {} unknown, {} malformed), {} CEF events written",
            c.records, c.metadata, c.unknown, c.malformed, summary.delivered
        );
        Ok(ExitCode::SUCCESS)
    })
}
