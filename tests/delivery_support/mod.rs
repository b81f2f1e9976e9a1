//! Shared by the end-to-end delivery tests: the real `estreamer-cef` binary run with a
//! configuration file (started, killed, stopped, restarted), a simulated FMC in the test's own
//! runtime, the CEF lines `estreamer-cef decode --cef` expects for a byte stream, and fast reads
//! of what the syslog-ng receiver wrote.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use estreamer_cef_sim::generate::{bench_metadata, connection_records, to_stream};
use estreamer_cef_sim::pki::PkiFiles;
use estreamer_cef_sim::scenario::{Scenario, SimRecord};
use estreamer_cef_sim::server::{self, SimulatorConfig, SimulatorHandle};
use tokio::sync::watch;

/// Generous bound for anything that should happen "soon" on a loaded 2-vCPU machine.
pub const SOON: Duration = Duration::from_secs(90);

/// The binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_estreamer-cef")
}

/// The simulator's binary, `estreamer-cef-sim` (its own workspace crate, tests/fmc-sim), built
/// next to the forwarder by `cargo test --workspace` (tests/run-all.sh).
pub fn sim_bin() -> PathBuf {
    let path = Path::new(bin()).with_file_name("estreamer-cef-sim");
    assert!(
        path.exists(),
        "{} is missing: build it with `cargo build --release -p estreamer-cef-sim`, or run the \
         tests with `cargo test --workspace` as tests/run-all.sh does",
        path.display()
    );
    path
}

/// Polls `cond` every 50 ms until it holds or `limit` passes.
pub fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

// ---------------------------------------------------------------------------------------------
// The forwarder process
// ---------------------------------------------------------------------------------------------

/// A running `estreamer-cef` process. Its stderr (the log) is appended to `log`.
pub struct Forwarder {
    child: Option<Child>,
    pub log: PathBuf,
}

impl Forwarder {
    /// `estreamer-cef -c CONFIG <args...>`.
    pub fn start(config: &Path, args: &[&str], log: &Path) -> Forwarder {
        Forwarder::spawn(Command::new(bin()).arg("-c").arg(config).args(args), log)
    }

    /// `estreamer-cef-sim <args...>`: the simulator as its own process.
    pub fn start_simulator(args: &[&str], log: &Path) -> Forwarder {
        Forwarder::spawn(Command::new(sim_bin()).args(args), log)
    }

    fn spawn(cmd: &mut Command, log: &Path) -> Forwarder {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = cmd
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("cannot start estreamer-cef");
        Forwarder {
            child: Some(child),
            log: log.to_path_buf(),
        }
    }

    /// `estreamer-cef -c CONFIG run <args...>` with more environment variables.
    pub fn run_with_env(
        config: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Forwarder {
        let mut cmd = Command::new(bin());
        cmd.arg("-c").arg(config).arg("run").args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        Forwarder::spawn(&mut cmd, log)
    }

    /// `estreamer-cef -c CONFIG run <args...>`.
    pub fn run(config: &Path, args: &[&str], log: &Path) -> Forwarder {
        let mut all = vec!["run"];
        all.extend_from_slice(args);
        Forwarder::start(config, &all, log)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn signal(&self, sig: libc::c_int) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child by its PID.
            unsafe { libc::kill(c.id() as libc::pid_t, sig) };
        }
    }

    /// Waits up to `limit` for the process to exit.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            let child = self.child.as_mut()?;
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// SIGKILL: nothing is saved, nothing is flushed.
    pub fn kill(&mut self) {
        self.signal(libc::SIGKILL);
        self.wait_exit(SOON).expect("a killed process exits");
    }

    /// SIGTERM, then waits for the exit; panics with the log if it does not come within `limit`.
    pub fn terminate(&mut self, limit: Duration) -> ExitStatus {
        self.signal(libc::SIGTERM);
        match self.wait_exit(limit) {
            Some(s) => s,
            None => {
                let log = self.log_text();
                self.kill();
                panic!(
                    "estreamer-cef did not stop within {limit:?} of SIGTERM; its log:\n{}",
                    tail(&log, 60)
                );
            }
        }
    }

    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(c) => c.try_wait().unwrap().is_none(),
            None => false,
        }
    }
}

impl Drop for Forwarder {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGKILL);
            let _ = self.wait_exit(Duration::from_secs(10));
        }
    }
}

/// The lines of a file (none when it does not exist yet).
pub fn file_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

/// The last `n` lines of a text.
pub fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

// ---------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------

/// What goes into a forwarder configuration file.
pub struct Setup<'a> {
    pub pki: &'a PkiFiles,
    pub fmc_port: u16,
    /// `[fmc] name` (default: none, the FMC goes by host:port, which changes with the port).
    pub fmc_name: Option<&'a str>,
    pub state_dir: PathBuf,
    /// `genesis`, `now` or `bookmark`.
    pub start: &'a str,
    pub mappings_dir: Option<PathBuf>,
    /// `[monitor] period`, e.g. "1s".
    pub monitor_period: Option<&'a str>,
    /// `[monitor] listen`.
    pub monitor_listen: Option<String>,
    /// `[[output]]` tables, each the TOML body without the header line.
    pub outputs: Vec<String>,
    /// More TOML appended as is.
    pub extra: String,
}

impl<'a> Setup<'a> {
    pub fn new(pki: &'a PkiFiles, fmc_port: u16, state_dir: PathBuf) -> Setup<'a> {
        Setup {
            pki,
            fmc_port,
            fmc_name: None,
            state_dir,
            start: "bookmark",
            mappings_dir: None,
            monitor_period: None,
            monitor_listen: None,
            outputs: Vec::new(),
            extra: String::new(),
        }
    }

    pub fn render(&self) -> String {
        let q = |p: &Path| toml::Value::String(p.display().to_string()).to_string();
        let mut t = String::new();
        let name = self
            .fmc_name
            .map(|n| format!("name = {}\n", toml::Value::String(n.into())))
            .unwrap_or_default();
        let _ = writeln!(
            t,
            "[fmc]\n{name}host = \"127.0.0.1\"\nport = {}\npkcs12 = {}\npkcs12_password_file = {}\n\
             server_ca = \"pkcs12\"\nstart = \"{}\"\nreconnect_delay_max = \"1s\"\n",
            self.fmc_port,
            q(&self.pki.client_pkcs12),
            q(&self.pki.client_pass),
            self.start
        );
        let _ = writeln!(t, "[state]\ndir = {}\n", q(&self.state_dir));
        let mappings = self
            .mappings_dir
            .clone()
            .unwrap_or_else(|| self.state_dir.join("no-mappings"));
        let _ = writeln!(t, "[cef]\nmappings_dir = {}\n", q(&mappings));
        if self.monitor_period.is_some() || self.monitor_listen.is_some() {
            t.push_str("[monitor]\n");
            if let Some(p) = self.monitor_period {
                let _ = writeln!(t, "period = \"{p}\"");
            }
            if let Some(l) = &self.monitor_listen {
                let _ = writeln!(t, "listen = \"{l}\"");
            }
            t.push('\n');
        }
        for o in &self.outputs {
            let _ = writeln!(t, "[[output]]\n{o}\n");
        }
        t.push_str(&self.extra);
        t
    }

    /// Writes the configuration to `path` and returns it.
    pub fn write(&self, path: &Path) -> PathBuf {
        std::fs::write(path, self.render()).unwrap();
        path.to_path_buf()
    }

    /// The state folder of this FMC (`<state.dir>/127.0.0.1-<port>`).
    pub fn fmc_state_dir(&self) -> PathBuf {
        self.state_dir.join(format!("127.0.0.1-{}", self.fmc_port))
    }
}

/// A TCP or TLS output towards a syslog-ng port, with quick reconnects.
pub fn stream_output(transport: &str, port: u16, framing: &str, extra: &str) -> String {
    format!(
        "transport = \"{transport}\"\nhost = \"127.0.0.1\"\nport = {port}\nframing = \"{framing}\"\n\
         hostname = \"fwd.test\"\nmax_message_bytes = 60000\nreconnect_delay_min = \"200ms\"\n\
         reconnect_delay_max = \"1s\"\n{extra}"
    )
}

// ---------------------------------------------------------------------------------------------
// The simulated FMC, in the test's runtime
// ---------------------------------------------------------------------------------------------

/// A simulator served by its own runtime (the test itself stays synchronous).
pub struct SimFmc {
    pub rt: tokio::runtime::Runtime,
    pub handle: Option<SimulatorHandle>,
    stop: watch::Sender<bool>,
}

impl SimFmc {
    pub fn start(cfg: SimulatorConfig, scenario: Scenario) -> SimFmc {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (stop, rx) = watch::channel(false);
        let handle = rt
            .block_on(server::serve(cfg, Arc::new(scenario), rx))
            .unwrap();
        SimFmc {
            rt,
            handle: Some(handle),
            stop,
        }
    }

    pub fn port(&self) -> u16 {
        self.handle.as_ref().unwrap().local_addr().port()
    }

    /// Records sent over all sessions.
    pub fn records_sent(&self) -> u64 {
        self.handle
            .as_ref()
            .unwrap()
            .sessions()
            .iter()
            .map(|s| s.records_sent)
            .sum()
    }

    pub fn sessions(&self) -> usize {
        self.handle.as_ref().unwrap().sessions().len()
    }
}

impl Drop for SimFmc {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(h) = self.handle.take() {
            let _ = self.rt.block_on(async {
                tokio::time::timeout(Duration::from_secs(10), h.stopped()).await
            });
        }
    }
}

/// First archive second of [`connection_scenario`].
pub const BASE_SECOND: u32 = 1_735_689_600;

/// `n` connection events (record 71) with their metadata, `per_second` of them sharing each
/// archive second (so that resuming inside a second is exercised).
pub fn connection_scenario(n: usize, per_second: usize, seed: u64) -> Scenario {
    let mut events: Vec<SimRecord> = connection_records(n, seed);
    for (i, r) in events.iter_mut().enumerate() {
        let second = BASE_SECOND + (i / per_second) as u32;
        let mut b = BytesMut::from(&r.body[..]);
        b[8..12].copy_from_slice(&second.to_be_bytes());
        r.body = b.freeze();
        r.archive_second = second;
    }
    Scenario {
        metadata: bench_metadata(seed),
        events,
    }
}

// ---------------------------------------------------------------------------------------------
// What should arrive
// ---------------------------------------------------------------------------------------------

/// One CEF line `decode --cef` expects, with the stream position of its record.
#[derive(Clone, Debug)]
pub struct Expected {
    /// Index of the record in the stream (metadata included).
    pub index: usize,
    pub line: String,
}

/// Writes the scenario's byte stream (metadata, then events) to `dir/stream.bin` and returns the
/// CEF lines `estreamer-cef -c CONFIG decode --cef` makes of it, in order.
pub fn expected_lines(config: &Path, scenario: &Scenario, dir: &Path) -> Vec<Expected> {
    let records: Vec<SimRecord> = scenario
        .metadata
        .iter()
        .chain(&scenario.events)
        .cloned()
        .collect();
    let file = dir.join("stream.bin");
    std::fs::write(&file, to_stream(&records, 100, 1)).unwrap();
    decode_cef(config, &file)
}

/// `estreamer-cef -c CONFIG decode --cef FILE`.
pub fn decode_cef(config: &Path, file: &Path) -> Vec<Expected> {
    let out = Command::new(bin())
        .arg("-c")
        .arg(config)
        .args(["-q", "decode", "--cef"])
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "decode --cef failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .expect("CEF is UTF-8")
        .lines()
        .map(|l| {
            let (i, line) = l.split_once('\t').expect("index TAB line");
            Expected {
                index: i.parse().unwrap(),
                line: line.to_string(),
            }
        })
        .collect()
}

/// How often each string occurs.
pub fn counts<'a>(items: impl IntoIterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut m = HashMap::new();
    for i in items {
        *m.entry(i).or_insert(0) += 1;
    }
    m
}

/// Compares what arrived with what was expected, as multisets of lines: `(missing, extra)` where
/// `missing` lists expected lines that did not arrive (as often as expected) and `extra` counts
/// arrivals beyond the expected ones (duplicates, or lines nobody expected).
pub fn compare<'a>(
    expected: &'a [Expected],
    received: &'a [String],
) -> (Vec<&'a str>, Vec<&'a str>) {
    let mut want = counts(expected.iter().map(|e| e.line.as_str()));
    let mut extra = Vec::new();
    for r in received {
        match want.get_mut(r.as_str()) {
            Some(n) if *n > 0 => *n -= 1,
            _ => extra.push(r.as_str()),
        }
    }
    let missing = want
        .into_iter()
        .flat_map(|(l, n)| std::iter::repeat_n(l, n))
        .collect();
    (missing, extra)
}

/// Asserts that every expected line arrived exactly once and nothing else did.
pub fn assert_exactly_once(expected: &[Expected], got: &[String]) {
    let (missing, extra) = compare(expected, got);
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{} missing, {} extra (duplicates or unexpected) of {} lines; first missing {:?}, first extra {:?}",
        missing.len(),
        extra.len(),
        got.len(),
        missing.first(),
        extra.first()
    );
}

// ---------------------------------------------------------------------------------------------
// What arrived at syslog-ng
// ---------------------------------------------------------------------------------------------

/// syslog-ng's output file (one JSON object per message).
pub fn receiver_file(dir: &Path) -> PathBuf {
    dir.join("out.jsonl")
}

/// Complete lines in the receiver's output so far (cheap: counts newlines).
pub fn received_count(dir: &Path) -> usize {
    let mut f = match std::fs::File::open(receiver_file(dir)) {
        Ok(f) => f,
        Err(_) => return 0,
    };
    let mut buf = vec![0u8; 1 << 20];
    let mut n = 0;
    loop {
        let k = f.read(&mut buf).unwrap();
        if k == 0 {
            return n;
        }
        n += buf[..k].iter().filter(|&&b| b == b'\n').count();
    }
}

/// Waits until the receiver has at least `n` messages; false if `limit` passed first.
pub fn wait_received(dir: &Path, n: usize, limit: Duration) -> bool {
    eventually(limit, || received_count(dir) >= n)
}

/// Waits until the receiver's message count stays the same for `quiet`; returns it.
pub fn wait_received_quiet(dir: &Path, quiet: Duration, limit: Duration) -> usize {
    let deadline = Instant::now() + limit;
    let mut last = usize::MAX;
    let mut since = Instant::now();
    loop {
        let n = received_count(dir);
        if n != last {
            last = n;
            since = Instant::now();
        } else if since.elapsed() >= quiet || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The `syslog.msg` (the CEF line as syslog-ng's RFC 5424 parser extracted it) of each received
/// message, in arrival order, with its listener; panics on a message cefp could not parse.
pub struct Arrived {
    pub listener: String,
    pub msg: String,
    pub record: serde_json::Value,
}

pub fn arrived(dir: &Path) -> Vec<Arrived> {
    let text = std::fs::read_to_string(receiver_file(dir)).unwrap_or_default();
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    complete
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let record: serde_json::Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("syslog-ng wrote a line that is not JSON ({e}): {l}"));
            Arrived {
                listener: record["syslog"]["listener"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                msg: record["syslog"]["msg"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                record,
            }
        })
        .collect()
}

/// A TCP port nobody listens on right now.
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

/// Reads `GET /metrics` from `addr` and returns the body.
pub fn scrape(addr: &str) -> Result<String, String> {
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
        .map_err(|e| e.to_string())?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).map_err(|e| e.to_string())?;
    let (head, body) = resp
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("not HTTP: {resp}"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(format!("not 200: {head}"));
    }
    Ok(body.to_string())
}

/// The value of a metric line in Prometheus text: `name` exactly (with its labels, if any), or
/// without labels the first series of that metric (an FMC series of a one-FMC run).
pub fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (k, v) = l.rsplit_once(' ')?;
        let unlabelled = !name.contains('{')
            && k.strip_prefix(name)
                .is_some_and(|rest| rest.starts_with('{'));
        (k == name || unlabelled).then(|| v.parse().ok())?
    })
}

/// The status lines in a log: (time, text after "INFO ").
pub fn status_lines(log: &str) -> Vec<(chrono::DateTime<chrono::FixedOffset>, String)> {
    log.lines()
        .map(strip_ansi)
        .filter(|l| l.contains(" INFO ") && l.contains(" handled ") && l.contains("bookmark"))
        .map(|l| {
            let (ts, rest) = l.split_once(' ').unwrap();
            (
                chrono::DateTime::parse_from_rfc3339(ts).unwrap(),
                rest.trim_start()
                    .trim_start_matches("INFO")
                    .trim()
                    .to_string(),
            )
        })
        .collect()
}

pub fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut esc = false;
    for c in s.chars() {
        match (esc, c) {
            (false, '\u{1b}') => esc = true,
            (true, 'm') => esc = false,
            (true, _) => {}
            (false, c) => out.push(c),
        }
    }
    out
}
