//! `estreamer-cef-sim bench`: how fast this machine forwards, measured, not promised.
//!
//! `bench` (end to end): the simulated FMC streams connection (or intrusion) records over mutual
//! TLS to the forwarder, which decodes, maps and encodes them and sends them over TLS to a
//! minimal receiver that reads and counts the frames — all in this process, on loopback. It
//! prints records per second, the CPU time used (user + system, the whole process and the
//! forwarder's threads alone) and the peak resident memory.
//!
//! `bench --processes` (end to end, [`super::bench_processes`]): the same with the simulated
//! FMC, the real forwarder binary and the receiver each in a process of its own.
//!
//! `bench decode`: the record decoder alone, then decode + names + mapping + CEF (the worker's
//! work per record, without channels or I/O), on one core.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio::sync::watch;

use super::receive::{Counters, Framing, plain_receiver, receiver};

use crate::generate::{bench_metadata, connection_records, intrusion_records};
use crate::pki::{self, PkiFiles, PkiOptions};
use crate::scenario::{Scenario, SimRecord};
use crate::server::{SimulatorConfig, serve};
use estreamer_cef::cef::CefHeader;
use estreamer_cef::config::{Config, Start};
use estreamer_cef::decode::filter::RecordFilter;
use estreamer_cef::decode::{Decoder, catalog};
use estreamer_cef::delivery::identity;
use estreamer_cef::mapping::Mappings;
use estreamer_cef::metadata::{Cache, Limits};
use estreamer_cef::output::OutputConfig;
use estreamer_cef::pipeline::{self, RunOptions};
use estreamer_cef::transform::{Outcome, Transform};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// `e2e`: simulator → forwarder → TLS receiver; `decode`: the decoder and mapping alone.
    #[arg(value_enum, default_value = "e2e")]
    pub mode: Mode,
    /// Records to forward (e2e) or to decode per record type (decode).
    #[arg(long, default_value_t = 1_000_000)]
    pub records: u64,
    /// Record type: the one streamed end to end (default 71, connection; or 400, intrusion);
    /// with `decode`, only this one (default: both, one after the other).
    #[arg(long, value_parser = ["71", "400"])]
    pub record_type: Option<String>,
    /// Distinct records the simulator holds; it repeats them (later in time) as often as needed.
    #[arg(long, default_value_t = 20_000)]
    pub distinct: usize,
    /// Records per MessageBundle.
    #[arg(long, default_value_t = 100)]
    pub bundle_size: usize,
    /// Seed of the generated records.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Simulated FMCs (one `[[fmc]]` table each) feeding the one forwarder; `--records` is
    /// the total over all of them.
    #[arg(long, default_value_t = 1)]
    pub fmcs: usize,
    /// End to end with the simulated FMC(s), the forwarder (the real `estreamer-cef` binary)
    /// and the receiver each in a process of its own; the forwarder's CPU time and peak RSS
    /// are its process's.
    #[arg(long)]
    pub processes: bool,
    /// The forwarder binary for --processes [default: `estreamer-cef` next to this program].
    #[arg(long, value_name = "PATH", requires = "processes")]
    pub forwarder: Option<PathBuf>,
    /// The output's framing with --processes.
    #[arg(
        long,
        value_enum,
        default_value = "octet-counting",
        requires = "processes"
    )]
    pub framing: Framing,
    /// End to end into this Kafka broker (`host:port`, e.g. a local tansu) instead of the TLS
    /// receiver: the forwarder's `kafka` output, counted as the brokers acknowledge (idempotent,
    /// `acks=all`). The topic must exist.
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "processes")]
    pub kafka: Option<String>,
    /// End to end into a plain TCP receiver instead of the TLS one: the forwarder's `tcp`
    /// output (octet-counting), to compare other outputs with the cheapest.
    #[arg(long, conflicts_with_all = ["processes", "kafka"])]
    pub tcp: bool,
    /// The topic with --kafka.
    #[arg(long, default_value = "th-cef", requires = "kafka")]
    pub kafka_topic: String,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    E2e,
    Decode,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    println!("{}", machine());
    if cfg!(debug_assertions) {
        println!("note: a debug build; build with --release for meaningful figures");
    }
    match args.mode {
        Mode::Decode => decode(args),
        Mode::E2e => {
            let dir =
                std::env::temp_dir().join(format!("estreamer-cef-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let r = if args.processes {
                super::bench_processes::end_to_end(args, &dir)
            } else {
                end_to_end(args, &dir)
            };
            let _ = std::fs::remove_dir_all(&dir);
            r
        }
    }
}

/// CPU count and model.
pub(crate) fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, m)| m.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split(' ').next().map(str::to_string))
        .unwrap_or_else(|| "?".into());
    format!(
        "machine: {cpus} CPUs ({model}); load average {load} before the run (other work skews the figures)"
    )
}

/// User and system CPU time of this process, and its peak resident set in bytes.
pub(crate) fn usage() -> (Duration, Duration, u64) {
    // SAFETY: getrusage fills the struct we pass; RUSAGE_SELF is always valid.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    (tv(ru.ru_utime), tv(ru.ru_stime), ru.ru_maxrss as u64 * 1024)
}

/// The resident set now, in bytes.
fn rss_now() -> u64 {
    status_bytes("/proc/self/status", "VmRSS:")
}

/// A size line (`KEY   N kB`) of a /proc `status` file, in bytes; 0 if it cannot be read.
pub(crate) fn status_bytes(path: &str, key: &str) -> u64 {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with(key))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

/// The command name and the CPU time (user + system) in a /proc `stat` file's text.
pub(crate) fn stat_cpu(stat: &str) -> Option<(&str, Duration)> {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    // pid (comm) state ... : comm may hold spaces, so split after the last ')'.
    let (open, close) = (stat.find('(')?, stat.rfind(')')?);
    let f: Vec<&str> = stat.get(close + 2..)?.split(' ').collect();
    // Fields 14 and 15 of stat (utime, stime) are 11 and 12 after the comm.
    let (u, s) = (
        f.get(11)?.parse::<f64>().ok()?,
        f.get(12)?.parse::<f64>().ok()?,
    );
    Some((
        stat.get(open + 1..close)?,
        Duration::from_secs_f64((u + s) / ticks),
    ))
}

/// CPU time (user + system) of this process's live threads whose name starts with `prefix`.
fn threads_cpu(prefix: &str) -> Duration {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Duration::ZERO;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| {
            stat_cpu(&stat).and_then(|(comm, cpu)| comm.starts_with(prefix).then_some(cpu))
        })
        .sum()
}

pub(crate) fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub(crate) fn record_type(args: &Args) -> u32 {
    if args.record_type.as_deref() == Some("400") {
        400
    } else {
        71
    }
}

fn events(record_type: u32, n: usize, seed: u64) -> Vec<SimRecord> {
    match record_type {
        400 => intrusion_records(n, seed),
        _ => connection_records(n, seed),
    }
}

/// What the benchmark's simulated FMC serves: `distinct` records of `record_type` (71 or 400)
/// made from a few templates, and the metadata they refer to. `simulate --bench-events` serves
/// the same.
pub fn bench_scenario(record_type: u32, distinct: usize, seed: u64) -> Scenario {
    Scenario {
        metadata: bench_metadata(seed),
        events: events(record_type, distinct.max(1), seed),
    }
}

// ---------------------------------------------------------------------------------------------
// End to end
// ---------------------------------------------------------------------------------------------

fn end_to_end(args: &Args, dir: &Path) -> anyhow::Result<ExitCode> {
    let files: PkiFiles = pki::init(&dir.join("pki"), &PkiOptions::default())?;
    let scenario = bench_scenario(record_type(args), args.distinct, args.seed);
    // The simulator and the receiver stand for machines of their own: their own runtime and
    // threads, so that the forwarder's share of the CPU can be told apart.
    let others = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name("bench-others")
        .enable_all()
        .build()?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let counters = Arc::new(Counters::default());
    let fmcs = args.fmcs.max(1);
    let scenario = Arc::new(scenario);
    let (sims, receiver_port) = others.block_on(async {
        let mut sims = Vec::new();
        for _ in 0..fmcs {
            let mut sim = SimulatorConfig::new("127.0.0.1:0".parse()?, &files);
            sim.loop_events = true;
            sim.bundle_size = args.bundle_size.max(1);
            sim.window = 64;
            sims.push(serve(sim, scenario.clone(), stop_rx.clone()).await?);
        }
        let listen = "127.0.0.1:0".parse()?;
        let (framing, counters, stop) = (Framing::OctetCounting, counters.clone(), stop_rx.clone());
        let addr = if args.tcp {
            plain_receiver(listen, framing, counters, stop).await?
        } else {
            receiver(&files, listen, framing, counters, stop).await?
        };
        anyhow::Ok((sims, addr.port()))
    })?;

    let mut cfg = Config::default();
    let template = cfg.fmc().clone();
    cfg.fmcs = sims
        .iter()
        .enumerate()
        .map(|(i, sim)| {
            let mut f = template.clone();
            f.name = Some(format!("fmc-{}", i + 1));
            f.host = "127.0.0.1".into();
            f.port = sim.local_addr().port();
            f.pkcs12 = files.client_pkcs12.clone();
            f.pkcs12_password_file = Some(files.client_pass.clone());
            f.start = Start::Genesis;
            f
        })
        .collect();
    cfg.state.dir = dir.join("state");
    cfg.cef.mappings_dir = PathBuf::from("/nonexistent/estreamer-cef-bench");
    cfg.monitor.period = Duration::from_secs(3600);
    let output = match &args.kafka {
        Some(brokers) => format!(
            "transport = \"kafka\"\nbrokers = [{}]\ntopic = {}\n",
            toml::Value::String(brokers.clone()),
            toml::Value::String(args.kafka_topic.clone())
        ),
        None if args.tcp => format!(
            "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {receiver_port}\nframing = \"octet-counting\"\n"
        ),
        None => format!(
            "transport = \"tls\"\nhost = \"127.0.0.1\"\nport = {receiver_port}\nserver_ca = {}\nframing = \"octet-counting\"\n",
            toml::Value::String(files.ca_cert.display().to_string())
        ),
    };
    let output: OutputConfig = toml::from_str(&output).context("the benchmark's output")?;
    cfg.outputs = vec![output];

    let n = args.records;
    let into = match &args.kafka {
        Some(b) => format!(
            "TLS in, Kafka out (topic {} on {b}, acks=all)",
            args.kafka_topic
        ),
        None if args.tcp => "TLS in, plain TCP out".to_string(),
        None => "TLS in and out".to_string(),
    };
    println!(
        "end to end: {n} records of type {} ({} distinct, repeated), bundles of {}, {into}, \
         {fmcs} simulated FMC(s) and the receiver in this process",
        record_type(args),
        args.distinct,
        args.bundle_size
    );
    let fwd = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fwd")
        .enable_all()
        .build()?;
    let baseline = rss_now();
    let before = usage();
    let others_before = threads_cpu("bench-others");
    let start = Instant::now();
    let marks = Arc::new(std::sync::Mutex::new((None::<Instant>, None::<Instant>)));
    let summary = fwd.block_on(async {
        let stop = Arc::new(watch::channel(false).0);
        // When 10% and 90% of the records had arrived: the steady rate, without the start
        // (connections, and the output's first second, in which no acknowledgement counts).
        let progress = {
            let (counters, marks) = (counters.clone(), marks.clone());
            tokio::spawn(async move {
                let (mut last, mut last_print) = (0, Instant::now());
                loop {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    let now = counters.frames.load(Ordering::Relaxed);
                    if let Ok(mut m) = marks.lock() {
                        if m.0.is_none() && now >= n / 10 {
                            m.0 = Some(Instant::now());
                        }
                        if m.1.is_none() && now >= n - n / 10 {
                            m.1 = Some(Instant::now());
                        }
                    }
                    // (Kafka: no receiver counts; the figures come at the end.)
                    if now > 0 && last_print.elapsed() >= Duration::from_secs(5) {
                        eprintln!(
                            "  ... {now} records received ({:.0}/s)",
                            (now - last) as f64 / last_print.elapsed().as_secs_f64()
                        );
                        (last, last_print) = (now, Instant::now());
                    }
                }
            })
        };
        let opts = RunOptions {
            stop_after: Some(n),
            ..RunOptions::default()
        };
        let r = pipeline::run(cfg, opts, stop).await;
        progress.abort();
        r
    })?;
    // Everything the pipeline delivered has been acknowledged by the receiver's kernel; let the
    // receiver read it. (Kafka: what the pipeline delivered, the brokers acknowledged.)
    let deadline = Instant::now() + Duration::from_secs(30);
    while args.kafka.is_none()
        && counters.frames.load(Ordering::Relaxed) < summary.delivered
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
    let elapsed = start.elapsed();
    let others_cpu = threads_cpu("bench-others").saturating_sub(others_before);
    let after = usage();
    // The forwarder's transform threads have ended by now: its share is what the rest did not use.
    let fwd_cpu = (after.0 - before.0 + after.1 - before.1).saturating_sub(others_cpu);
    let received = match args.kafka {
        Some(_) => summary.delivered,
        None => counters.frames.load(Ordering::Relaxed),
    };
    let _ = stop_tx.send(true);
    others.block_on(async {
        for sim in sims {
            let _ = tokio::time::timeout(Duration::from_secs(5), sim.stopped()).await;
        }
    });

    let user = after.0 - before.0;
    let system = after.1 - before.1;
    let secs = elapsed.as_secs_f64();
    match args.kafka {
        Some(_) => println!(
            "  {received} records acknowledged by the brokers in {secs:.2} s: {:.0} records/s",
            received as f64 / secs
        ),
        None => println!(
            "  {received} records received in {secs:.2} s: {:.0} records/s ({:.1} MB/s of syslog)",
            received as f64 / secs,
            counters.bytes.load(Ordering::Relaxed) as f64 / secs / 1e6
        ),
    }
    // (Only when the run was long enough to tell.)
    if let Ok((Some(t10), Some(t90))) = marks.lock().map(|m| *m)
        && t90 - t10 >= Duration::from_millis(500)
    {
        let steady = (n - n / 10 - n / 10) as f64 / (t90 - t10).as_secs_f64().max(1e-9);
        println!("  steady rate (from 10% to 90% of the records): {steady:.0} records/s");
    }
    println!(
        "  CPU: {:.2} s user + {:.2} s system = {:.2} s for the whole process ({:.0}% of one CPU)",
        user.as_secs_f64(),
        system.as_secs_f64(),
        (user + system).as_secs_f64(),
        (user + system).as_secs_f64() / secs * 100.0
    );
    println!(
        "       of which the forwarder's threads {:.2} s ({:.1} µs per record), the simulator and receiver {:.2} s",
        fwd_cpu.as_secs_f64(),
        fwd_cpu.as_secs_f64() * 1e6 / received.max(1) as f64,
        others_cpu.as_secs_f64()
    );
    println!(
        "  peak RSS {:.1} MiB for the whole process; {:.1} MiB before the forwarder started \
         (the simulators with their records, the receiver); the simulator's session log grows \
         with bundle size (it keeps its last 10,000 messages)",
        mib(after.2),
        mib(baseline),
    );
    println!(
        "  peak RSS above that: {:.1} MiB ({:.1} MiB per FMC)",
        mib(after.2.saturating_sub(baseline)),
        mib(after.2.saturating_sub(baseline)) / fmcs as f64
    );
    if received < n {
        anyhow::bail!("only {received} of {n} records reached the receiver");
    }
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// Decode only
// ---------------------------------------------------------------------------------------------

fn decode(args: &Args) -> anyhow::Result<ExitCode> {
    let n = args.records.max(1) as usize;
    println!("decode, one thread, {n} records per type (10,000 distinct, repeated):");
    let mappings = Arc::new(Mappings::builtin());
    let types: &[u32] = match args.record_type {
        Some(_) => &[record_type(args)],
        None => &[71, 400],
    };
    for &record_type in types {
        let records = events(record_type, 10_000, args.seed);
        let bodies: Vec<&[u8]> = records.iter().map(|r| &r.body[..]).collect();

        // The layout interpreter alone.
        let mut decoder = Decoder::new(catalog());
        let mut fields = 0u64;
        let start = Instant::now();
        for i in 0..n {
            let r = decoder.decode(bodies[i % bodies.len()]);
            fields += r.map_or(0, |r| r.slots.len() as u64);
        }
        let t = start.elapsed();
        std::hint::black_box(fields);
        print!(
            "  {record_type:>3}: decode {:>10.0} records/s",
            n as f64 / t.as_secs_f64()
        );

        // What the worker does per record: identity, decode, names, mapping, CEF.
        let cache = std::sync::RwLock::new(Cache::new(Limits::default()));
        let mut transform = Transform::new(
            RecordFilter::all(),
            mappings.clone(),
            CefHeader::new("Cisco", "Firepower", "6.0")?,
            false,
        );
        let mut buf = Vec::with_capacity(4096);
        for (i, m) in bench_metadata(args.seed).iter().enumerate() {
            let _ = transform.apply(i as u64, &m.body, &cache, &mut buf);
        }
        let mut mapped = 0u64;
        let start = Instant::now();
        for i in 0..n {
            let body = bodies[i % bodies.len()];
            std::hint::black_box(identity(body));
            buf.clear();
            if let Outcome::Event { .. } = transform.apply(i as u64, body, &cache, &mut buf) {
                mapped += 1;
            }
        }
        let t = start.elapsed();
        if mapped > 0 {
            println!(
                "   decode + names + mapping + CEF {:>9.0} records/s",
                n as f64 / t.as_secs_f64()
            );
        } else {
            println!("   (no mapping table for this type)");
        }
        let _ = std::io::stdout().flush();
    }
    Ok(ExitCode::SUCCESS)
}
