//! `estreamer-cef-sim bench --processes`: end to end as deployed, each party a process of its
//! own — the simulated FMC(s) (`simulate`), the real forwarder binary (`estreamer-cef run`)
//! and the TLS receiver (`receive`). The rate is counted at the receiver; the forwarder's CPU
//! time and peak RSS are read from its /proc entry, so they are the forwarder's alone (what the
//! "RSS under 64 MB" target means).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::Context;

use super::bench::{Args, mib, record_type, stat_cpu, status_bytes};
use super::receive::Framing;
use crate::pki::{self, PkiOptions};

/// A child process, killed (and reaped) when dropped unless it has ended.
struct Proc {
    name: String,
    child: Child,
    log: PathBuf,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, dir: &Path) -> anyhow::Result<Proc> {
        let log = dir.join(format!("{}.log", name.replace(' ', "-")));
        let err = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = cmd
            .stderr(err)
            .spawn()
            .with_context(|| format!("cannot start the {name} ({cmd:?})"))?;
        Ok(Proc {
            name: name.to_string(),
            child,
            log,
        })
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of its log, to show why it failed.
    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(20)..].join("\n    ");
        format!(
            "the {}'s log ({}):\n    {tail}",
            self.name,
            self.log.display()
        )
    }

    /// Fails if it has ended.
    fn check_running(&mut self) -> anyhow::Result<()> {
        match self.child.try_wait()? {
            None => Ok(()),
            Some(status) => {
                anyhow::bail!("the {} ended ({status}); {}", self.name, self.log_tail())
            }
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Lines of a child's stdout, each with when it was read.
fn lines(out: ChildStdout) -> mpsc::Receiver<(Instant, String)> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines() {
            let Ok(line) = line else { return };
            if tx.send((Instant::now(), line)).is_err() {
                return;
            }
        }
    });
    rx
}

/// Waits for the line `<prefix> ADDR` that a child prints once it listens; returns ADDR's port.
fn listening(
    p: &mut Proc,
    out: &mpsc::Receiver<(Instant, String)>,
    prefix: &str,
) -> anyhow::Result<u16> {
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        p.check_running()?;
        if let Ok((_, line)) = out.recv_timeout(Duration::from_millis(100))
            && let Some(rest) = line.strip_prefix(prefix)
        {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            return addr
                .parse::<std::net::SocketAddr>()
                .map(|a| a.port())
                .with_context(|| format!("the {} printed {line:?}: no address", p.name));
        }
    }
    anyhow::bail!(
        "the {} did not say it listens within 60 s; {}",
        p.name,
        p.log_tail()
    )
}

/// User + system CPU seconds of a live process (all its threads, ended ones included).
fn cpu_seconds(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_cpu(&stat).map(|(_, cpu)| cpu.as_secs_f64()))
        .unwrap_or(0.0)
}

/// The forwarder binary: --forwarder, else `estreamer-cef` next to this program (both are built
/// into the same target folder).
fn forwarder_bin(args: &Args) -> anyhow::Result<PathBuf> {
    let path = match &args.forwarder {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("estreamer-cef"),
    };
    if !path.exists() {
        anyhow::bail!(
            "the forwarder {} does not exist: build it with `cargo build --release` (or name it \
             with --forwarder PATH)",
            path.display()
        );
    }
    Ok(path)
}

/// The framing as both `receive --framing` and `[[output]] framing` spell it.
fn framing_name(f: Framing) -> &'static str {
    match f {
        Framing::OctetCounting => "octet-counting",
        Framing::Lf => "lf",
    }
}

fn toml_str(p: &Path) -> String {
    toml::Value::String(p.display().to_string()).to_string()
}

pub fn end_to_end(args: &Args, dir: &Path) -> anyhow::Result<ExitCode> {
    let forwarder = forwarder_bin(args)?;
    let sim_bin = std::env::current_exe()?;
    let pki_dir = dir.join("pki");
    let files = pki::init(&pki_dir, &PkiOptions::default())?;
    let n = args.records.max(1);
    let fmcs = args.fmcs.max(1);

    let mut sims = Vec::new();
    let mut sim_ports = Vec::new();
    for i in 0..fmcs {
        let mut cmd = Command::new(&sim_bin);
        cmd.args([
            "-q",
            "simulate",
            "--listen",
            "127.0.0.1:0",
            "--loop",
            "--no-check-cn",
        ])
        .arg("--pki")
        .arg(&pki_dir)
        .args(["--bench-events", &args.distinct.to_string()])
        .args(["--record-types", &record_type(args).to_string()])
        .args(["--bundle-size", &args.bundle_size.max(1).to_string()])
        .args(["--window", "64", "--seed", &args.seed.to_string()])
        .stdout(Stdio::piped());
        let mut p = Proc::spawn(&format!("simulator {}", i + 1), cmd, dir)?;
        let out = lines(p.child.stdout.take().context("the simulator's stdout")?);
        sim_ports.push(listening(&mut p, &out, "FMC simulator listening on ")?);
        sims.push((p, out));
    }

    let mut cmd = Command::new(&sim_bin);
    cmd.args(["-q", "receive", "--listen", "127.0.0.1:0"])
        .arg("--pki")
        .arg(&pki_dir)
        .args(["--count", &n.to_string()])
        .args(["--framing", framing_name(args.framing)])
        .stdout(Stdio::piped());
    let mut receiver = Proc::spawn("receiver", cmd, dir)?;
    let received = lines(
        receiver
            .child
            .stdout
            .take()
            .context("the receiver's stdout")?,
    );
    let receiver_port = listening(&mut receiver, &received, "receiver listening on ")?;

    let config = dir.join("estreamer-cef.toml");
    std::fs::write(
        &config,
        forwarder_config(args, dir, &files, &sim_ports, receiver_port),
    )
    .with_context(|| format!("cannot write {}", config.display()))?;

    println!(
        "end to end, separate processes: {n} records of type {} ({} distinct, repeated), bundles \
         of {}, TLS in and out, {fmcs} simulated FMC process(es), the forwarder {} and the \
         receiver each in its own process",
        super::bench::record_type(args),
        args.distinct,
        args.bundle_size,
        forwarder.display()
    );
    let mut cmd = Command::new(&forwarder);
    cmd.arg("-c").arg(&config).arg("run").stdout(Stdio::null());
    let start = Instant::now();
    let mut fwd = Proc::spawn("forwarder", cmd, dir)?;

    // The receiver prints a line at every tenth of the records, then its totals.
    let deadline = start + Duration::from_secs(120) + Duration::from_micros(n * 100);
    let (mut t10, mut t90) = (None, None);
    let (end, totals) = loop {
        if Instant::now() > deadline {
            anyhow::bail!(
                "the receiver did not get {n} records in {:.0} s; {}",
                (deadline - start).as_secs_f64(),
                fwd.log_tail()
            );
        }
        fwd.check_running()?;
        match received.recv_timeout(Duration::from_millis(200)) {
            Ok((at, line)) => {
                if line == format!("received {} frames", n / 10) {
                    t10 = Some(at);
                } else if line == format!("received {} frames", n * 9 / 10) {
                    t90 = Some(at);
                } else if let Some(totals) = line.strip_prefix("done: ") {
                    break (at, totals.to_string());
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                receiver.check_running()?;
                anyhow::bail!(
                    "the receiver closed its output before {n} records; {}",
                    receiver.log_tail()
                );
            }
        }
    };
    // Read at once: the forwarder keeps forwarding what the looping simulator sends.
    let fwd_cpu = cpu_seconds(fwd.pid());
    let fwd_rss = status_bytes(&format!("/proc/{}/status", fwd.pid()), "VmHWM:");
    let sims_cpu: f64 = sims.iter().map(|(p, _)| cpu_seconds(p.pid())).sum();
    // "N frames, B bytes, cpu S s"
    let number = |what: &str| -> f64 {
        totals
            .split(", ")
            .find_map(|part| {
                let mut w = part.split(' ');
                match (w.next(), w.next()) {
                    (Some(v), Some(unit)) if unit == what => v.parse().ok(),
                    (Some(unit), Some(v)) if unit == what => v.parse().ok(),
                    _ => None,
                }
            })
            .unwrap_or(0.0)
    };
    let (frames, bytes, receiver_cpu) = (number("frames"), number("bytes"), number("cpu"));

    // Stop the forwarder as a service manager would; the others have no state to keep.
    // SAFETY: kill with a pid of our own child and a valid signal.
    unsafe { libc::kill(fwd.pid() as libc::pid_t, libc::SIGTERM) };
    let stop_deadline = Instant::now() + Duration::from_secs(20);
    while matches!(fwd.child.try_wait(), Ok(None)) && Instant::now() < stop_deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(fwd);
    drop(sims);
    drop(receiver);

    let secs = (end - start).as_secs_f64();
    println!(
        "  {frames:.0} records received in {secs:.2} s: {:.0} records/s ({:.1} MB/s of syslog)",
        frames / secs,
        bytes / secs / 1e6
    );
    if let (Some(t10), Some(t90)) = (t10, t90)
        && t90 - t10 >= Duration::from_millis(500)
    {
        let steady = (n * 9 / 10 - n / 10) as f64 / (t90 - t10).as_secs_f64();
        println!("  steady rate (from 10% to 90% of the records): {steady:.0} records/s");
    }
    println!(
        "  CPU: the forwarder's process {fwd_cpu:.2} s user + system ({:.0}% of one CPU, {:.1} µs \
         per record); the simulator(s) {sims_cpu:.2} s, the receiver {receiver_cpu:.2} s",
        fwd_cpu / secs * 100.0,
        fwd_cpu * 1e6 / frames.max(1.0)
    );
    println!(
        "  peak RSS of the forwarder's process (VmHWM): {:.1} MiB",
        mib(fwd_rss)
    );
    if frames < n as f64 {
        anyhow::bail!("only {frames} of {n} records reached the receiver");
    }
    Ok(ExitCode::SUCCESS)
}

/// The forwarder's configuration: the simulators, the PKI's client identity, from the start of
/// the archive, one TLS output to the receiver, state and logs in the benchmark's folder.
fn forwarder_config(
    args: &Args,
    dir: &Path,
    files: &pki::PkiFiles,
    sim_ports: &[u16],
    receiver_port: u16,
) -> String {
    let mut t = String::new();
    for (i, port) in sim_ports.iter().enumerate() {
        let header = if sim_ports.len() == 1 {
            "[fmc]".to_string()
        } else {
            format!("[[fmc]]\nname = \"fmc-{}\"", i + 1)
        };
        t.push_str(&format!(
            "{header}\nhost = \"127.0.0.1\"\nport = {port}\npkcs12 = {}\n\
             pkcs12_password_file = {}\nserver_ca = \"pkcs12\"\nstart = \"genesis\"\n\n",
            toml_str(&files.client_pkcs12),
            toml_str(&files.client_pass),
        ));
    }
    t.push_str(&format!(
        "[state]\ndir = {}\n\n[cef]\nmappings_dir = {}\n\n[monitor]\nperiod = \"1h\"\n\n\
         [[output]]\ntransport = \"tls\"\nhost = \"127.0.0.1\"\nport = {receiver_port}\n\
         server_ca = {}\nframing = \"{}\"\n",
        toml_str(&dir.join("state")),
        toml_str(&dir.join("no-mappings")),
        toml_str(&files.ca_cert),
        framing_name(args.framing),
    ));
    t
}
