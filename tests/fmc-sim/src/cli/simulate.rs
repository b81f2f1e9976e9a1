//! `estreamer-cef-sim simulate`: the FMC simulator as a command.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;

use crate::faults::{Fault, SYNTAX};
use crate::generate::{GenOptions, Profile, generate, to_stream};
use crate::pki::{self, PkiFiles, PkiOptions};
use crate::server::{SimulatorConfig, serve};
use estreamer_cef::cli::signals;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Create a CA, a server certificate, a client PKCS12 (legacy RC2-40 encryption, like older
    /// FMCs) and a client configuration in DIR, then exit. A new user needs nothing else.
    #[arg(long, value_name = "DIR")]
    pub init: Option<PathBuf>,
    /// The simulator's PKI folder (made by --init).
    #[arg(long, value_name = "DIR", default_value = "./sim-pki")]
    pub pki: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8302")]
    pub listen: SocketAddr,
    /// Do not compare the client certificate's CN with the client's address (an FMC does).
    #[arg(long)]
    pub no_check_cn: bool,
    /// Inject a fault (repeatable). Forms: close-after:N, close-every:N,
    /// error-after:N[:CODE[:TEXT]], stall-after:N:SECS, exit-after:N, unknown-record-every:N,
    /// bad-version, close-after-handshake, no-estreamer-service. exit-after:N stops the
    /// simulator like an FMC that dies after data message N: every connection and the listening
    /// socket closed, then exit status 0.
    #[arg(long = "fault", value_name = "FAULT")]
    pub faults: Vec<String>,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Event records per record type.
    #[arg(long, default_value_t = 4)]
    pub events_per_type: usize,
    /// Only these record types (comma-separated; the metadata they need is added).
    #[arg(long, value_delimiter = ',', value_name = "TYPES")]
    pub record_types: Vec<u32>,
    /// `adversarial`: every record type equally, text with every case a consumer must escape
    /// or carry (for tests). `realistic`: an FMC's day, mostly connections, plain text
    /// (--events-per-type then scales each type's share).
    #[arg(long, value_enum, default_value_t = Profile::Adversarial)]
    pub profile: Profile,
    /// Records per MessageBundle.
    #[arg(long, default_value_t = 100)]
    pub bundle_size: usize,
    /// Records per second (default: as fast as the client acknowledges).
    #[arg(long)]
    pub rate: Option<u32>,
    /// Repeat the events forever, later in time each pass. Both peers of an HA pair (see
    /// --archive-offset) repeat the same passes, each at its own seconds.
    #[arg(long = "loop")]
    pub loop_events: bool,
    /// Play one FMC of a high-availability pair: stamp every event's archive second SECS
    /// seconds later (negative: earlier) plus 0 to 2 s of jitter that follows from the record.
    /// Two simulators with the same --seed and generation options and different offsets serve
    /// the same events at different archive seconds; a request "from second S" goes by this
    /// simulator's own seconds.
    #[arg(
        long,
        value_name = "SECS",
        default_value_t = 0,
        allow_negative_numbers = true
    )]
    pub archive_offset: i64,
    /// Serve N distinct records of the first --record-types type (71, the default, or 400) made
    /// quickly from a few templates, and the metadata they refer to — what `bench` streams —
    /// instead of the generated world.
    #[arg(long, value_name = "N")]
    pub bench_events: Option<usize>,
    /// Messages sent but not yet acknowledged, at most.
    #[arg(long, default_value_t = 16)]
    pub window: usize,
    /// Write the generated records as a byte stream (what `decode` reads) to FILE and exit.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Write each generated record's EventData body (record header and data, what the
    /// `record_decoder` fuzz target takes) to a file of its own in DIR and exit: a fuzzing
    /// corpus (see fuzz/README.md).
    #[arg(long, value_name = "DIR", conflicts_with = "record")]
    pub record_dir: Option<PathBuf>,
}

fn gen_options(args: &Args) -> GenOptions {
    let base = match args.profile {
        Profile::Adversarial => GenOptions::default(),
        Profile::Realistic => GenOptions::realistic(args.seed, args.events_per_type),
    };
    GenOptions {
        seed: args.seed,
        events_per_type: args.events_per_type,
        record_types: (!args.record_types.is_empty()).then(|| args.record_types.clone()),
        ..base
    }
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    if let Some(dir) = &args.init {
        return init(dir);
    }
    if let Some(dir) = &args.record_dir {
        return record_dir(args, dir);
    }
    if let Some(file) = &args.record {
        let generated = generate(&gen_options(args));
        // What this simulator serves (the first pass, when looping).
        let scenario = generated
            .scenario
            .with_archive_offset(args.archive_offset)
            .map_err(|e| anyhow::anyhow!("--archive-offset {}: {e}", args.archive_offset))?;
        let records: Vec<_> = scenario
            .metadata
            .iter()
            .chain(&scenario.events)
            .cloned()
            .collect();
        std::fs::write(file, to_stream(&records, args.bundle_size, 1))
            .with_context(|| format!("cannot write {}", file.display()))?;
        println!(
            "wrote {} records ({} metadata, {} events) to {}",
            records.len(),
            scenario.metadata.len(),
            scenario.events.len(),
            file.display()
        );
        return Ok(ExitCode::SUCCESS);
    }
    let pki = PkiFiles::in_dir(&args.pki);
    if !pki.server_cert.exists() {
        anyhow::bail!(
            "no simulator PKI in {}: run `estreamer-cef-sim simulate --init {}` first",
            args.pki.display(),
            args.pki.display()
        );
    }
    let mut cfg = SimulatorConfig::new(args.listen, &pki);
    cfg.check_cn = !args.no_check_cn;
    cfg.bundle_size = args.bundle_size;
    cfg.rate = args.rate;
    cfg.loop_events = args.loop_events;
    cfg.archive_offset = args.archive_offset;
    for f in &args.faults {
        cfg.faults.push(
            f.parse::<Fault>()
                .map_err(|e| anyhow::anyhow!("--fault {f}: {e} (forms: {SYNTAX})"))?,
        );
    }
    cfg.window = args.window.max(1);
    let scenario = match args.bench_events {
        Some(n) => {
            let record_type = match args.record_types.first() {
                None | Some(71) => 71,
                Some(400) => 400,
                Some(t) => anyhow::bail!(
                    "--bench-events serves record type 71 or 400, not {t}: give --record-types 71 or 400"
                ),
            };
            super::bench::bench_scenario(record_type, n, args.seed)
        }
        None => generate(&gen_options(args)).scenario,
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let shutdown = signals::install(None)?.subscribe();
        let handle = serve(cfg, Arc::new(scenario), shutdown).await?;
        println!(
            "FMC simulator listening on {} (Ctrl-C to stop)",
            handle.local_addr()
        );
        if let Some(fault) = handle.stopped().await {
            println!(
                "FMC simulator exited: every connection and the listener closed (fault {fault})"
            );
        }
        Ok(ExitCode::SUCCESS)
    })
}

fn init(dir: &Path) -> anyhow::Result<ExitCode> {
    let opts = PkiOptions::default();
    let files = pki::init(dir, &opts)?;
    let dir_abs = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let config = format!(
        "# Client configuration for the FMC simulator (estreamer-cef-sim simulate --pki {dir}).\n\
         [fmc]\nhost = \"127.0.0.1\"\nport = 8302\npkcs12 = \"{p12}\"\npkcs12_password_file = \"{pass}\"\n\
         server_ca = \"pkcs12\"\nstart = \"bookmark\"\n\n[state]\ndir = \"{state}\"\n\n\
         [[output]]\ntransport = \"stdout\"\n",
        dir = dir_abs.display(),
        p12 = dir_abs.join("client.pkcs12").display(),
        pass = dir_abs.join("client.pass").display(),
        state = dir_abs.join("state").display(),
    );
    let cfg_path = dir.join("estreamer-cef.toml");
    estreamer_cef::metadata::store::write_atomic(&cfg_path, config.as_bytes())?;
    println!("created in {}:", dir.display());
    for p in [
        &files.ca_cert,
        &files.server_cert,
        &files.server_key,
        &files.client_pkcs12,
        &files.client_pass,
        &cfg_path,
    ] {
        println!("  {}", p.display());
    }
    println!(
        "next:\n  estreamer-cef-sim simulate --pki {d}            # the simulated FMC\n  \
         estreamer-cef -c {c} test   # diagnose the connection\n  \
         estreamer-cef -c {c} run    # CEF on stdout",
        d = dir.display(),
        c = cfg_path.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// One file per record, named `<seed>-<index>-<record type>`: a listing reads in stream order, and
/// several seeds can fill one folder.
fn record_dir(args: &Args, dir: &Path) -> anyhow::Result<ExitCode> {
    let generated = generate(&gen_options(args));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut n = 0;
    for (i, r) in generated.records().enumerate() {
        let file = dir.join(format!("{}-{i:05}-{}", args.seed, r.record_type));
        std::fs::write(&file, &r.body)
            .with_context(|| format!("cannot write {}", file.display()))?;
        n += 1;
    }
    println!("wrote {n} records, one file each, to {}", dir.display());
    Ok(ExitCode::SUCCESS)
}
