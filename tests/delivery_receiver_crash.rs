//! At least once when the *receiver* crashes, end to end with the real binary and the default
//! TCP settings (LF framing, no BOM: what a line-reading SmartConnector expects).
//!
//! The receiver runs in the test: a listener with a 32 MiB receive buffer (Linux doubles it, so
//! up to 64 MiB may sit acknowledged but unread) that reads slower than the forwarder sends.
//! "Killed" means its socket is dropped with unread data: Linux answers with a reset and the
//! unread bytes are gone, exactly as when a receiver process dies. Then it listens again on the
//! same port.
//!
//! - receiver killed mid-stream with its buffer full (over 32 MiB unread on current kernels):
//!   every event arrives at least once,
//!   the duplicates are counted, and the forwarder stays under 96 MB of memory;
//! - forwarder SIGKILLed while the receiver holds unread data, then started again: every event
//!   arrives at least once; then a clean stop (SIGTERM) and restart send no duplicate.

mod delivery_support;
mod sim_support;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::HashSet;
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use delivery_support::*;
use estreamer_cef::delivery::Bookmark;
use estreamer_cef_sim::server::SimulatorConfig;
use syslog_ng::free_port;

/// The receive buffer asked for (`SO_RCVBUFFORCE`, so `rmem_max` does not cap it).
const RCVBUF: usize = 32 << 20;

/// What the receiver does with an open connection.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    /// Read as fast as it can.
    Fast,
    /// Read 16 KiB every 20 ms (0.8 MB/s): far slower than the forwarder sends.
    Slow,
}

/// State shared by the receiver's threads and the test; survives the receiver's restarts.
#[derive(Default)]
struct Received {
    /// The message (from `CEF:` on) of every complete line, in arrival order.
    lines: Mutex<Vec<String>>,
    mode: Mutex<Option<Mode>>,
    /// Set to kill the receiver: connections are dropped with whatever is unread.
    crash: AtomicBool,
    /// Bytes unread in the receive buffers when they were dropped.
    lost_unread: AtomicU64,
}

impl Received {
    fn mode(&self) -> Mode {
        self.mode.lock().unwrap().unwrap_or(Mode::Fast)
    }
    fn set_mode(&self, m: Mode) {
        *self.mode.lock().unwrap() = Some(m);
    }
    fn count(&self) -> usize {
        self.lines.lock().unwrap().len()
    }
    fn snapshot(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }
}

/// A TCP listener whose connections have a 32 MiB receive buffer (asserted, or the test would
/// not test what it says).
fn listen(port: u16) -> TcpListener {
    let l = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let fd = l.as_raw_fd();
    let want = RCVBUF as libc::c_int;
    // SAFETY: setsockopt/getsockopt on a socket we own, with a properly sized int.
    let got = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &want as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &mut v as *mut _ as *mut libc::c_void,
            &mut len,
        );
        v as usize
    };
    assert!(
        got >= RCVBUF,
        "the receive buffer is {got} bytes, not {RCVBUF}: SO_RCVBUFFORCE needs root (CAP_NET_ADMIN)"
    );
    l.set_nonblocking(true).unwrap();
    l
}

/// Bytes waiting unread in a socket's receive buffer.
fn unread(s: &TcpStream) -> u64 {
    let mut n: libc::c_int = 0;
    // SAFETY: FIONREAD writes one int.
    unsafe { libc::ioctl(s.as_raw_fd(), libc::FIONREAD, &mut n) };
    n.max(0) as u64
}

/// The receiver: accepts connections on `port` and reads each in its own thread, until killed.
struct Receiver {
    accept: Option<JoinHandle<()>>,
    shared: Arc<Received>,
}

impl Receiver {
    fn start(port: u16, shared: Arc<Received>) -> Receiver {
        shared.crash.store(false, Ordering::SeqCst);
        let listener = listen(port);
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            let mut readers = Vec::new();
            while !s.crash.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((conn, _)) => {
                        let s = s.clone();
                        readers.push(std::thread::spawn(move || read_lines(conn, &s)));
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("accept: {e}"),
                }
            }
            drop(listener);
            for r in readers {
                r.join().unwrap();
            }
        });
        Receiver {
            accept: Some(accept),
            shared,
        }
    }

    /// Kills the receiver: every connection is reset with its unread data. Returns the bytes
    /// lost that way.
    fn kill(&mut self) -> u64 {
        let before = self.shared.lost_unread.load(Ordering::SeqCst);
        self.shared.crash.store(true, Ordering::SeqCst);
        self.accept.take().unwrap().join().unwrap();
        self.shared.lost_unread.load(Ordering::SeqCst) - before
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if self.accept.is_some() {
            self.kill();
        }
    }
}

/// Reads LF-terminated messages from one connection into `shared.lines`.
fn read_lines(mut conn: TcpStream, shared: &Received) {
    conn.set_nonblocking(false).unwrap();
    conn.set_read_timeout(Some(Duration::from_millis(20)))
        .unwrap();
    let mut buf = vec![0u8; 256 * 1024];
    let mut partial: Vec<u8> = Vec::new();
    loop {
        if shared.crash.load(Ordering::SeqCst) {
            shared
                .lost_unread
                .fetch_add(unread(&conn), Ordering::SeqCst);
            return; // dropped with unread data: the kernel sends a reset
        }
        let max = match shared.mode() {
            Mode::Slow => 16 * 1024,
            Mode::Fast => buf.len(),
        };
        match conn.read(&mut buf[..max]) {
            Ok(0) => return, // the forwarder closed: close too (it waits for that)
            Ok(n) => {
                partial.extend_from_slice(&buf[..n]);
                let mut lines = Vec::new();
                let mut start = 0;
                while let Some(i) = partial[start..].iter().position(|&b| b == b'\n') {
                    let line = &partial[start..start + i];
                    let text = String::from_utf8_lossy(line);
                    let msg = match text.find("CEF:") {
                        Some(at) => text[at..].to_string(),
                        None => text.into_owned(),
                    };
                    lines.push(msg);
                    start += i + 1;
                }
                partial.drain(..start);
                shared.lines.lock().unwrap().extend(lines);
                if shared.mode() == Mode::Slow {
                    std::thread::sleep(Duration::from_millis(20));
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

fn simulator(pki: &sim_support::TestPki, rate: Option<u32>) -> SimulatorConfig {
    let mut cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), &pki.files);
    cfg.rate = rate;
    cfg.bundle_size = 100;
    cfg
}

/// The forwarder's peak resident memory, from /proc.
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/PID/status")
}

fn output_metric(metrics: &str, port: u16, name: &str) -> f64 {
    metric(
        metrics,
        &format!("estreamer_cef_output_{name}{{output=\"tcp://127.0.0.1:{port}\"}}"),
    )
    .unwrap_or_else(|| panic!("no metric {name} in\n{metrics}"))
}

/// A simulated FMC with `n` connection events, a slow receiver's shared state, and a forwarder
/// configuration with the default TCP settings (only reconnects are quicker) and metrics.
struct Scene {
    dir: tempfile::TempDir,
    _sim: SimFmc,
    /// The client certificate the configuration names (its files live as long as this).
    _pki: sim_support::TestPki,
    fmc_state: PathBuf,
    port: u16,
    received: Arc<Received>,
    config: PathBuf,
    metrics_addr: String,
    expected: Vec<Expected>,
    /// Average CEF line length.
    avg_len: f64,
}

impl Scene {
    fn new(n: usize, seed: u64, rate: Option<u32>) -> Scene {
        let dir = tempfile::tempdir().unwrap();
        let pki = sim_support::TestPki::new();
        let scenario = connection_scenario(n, 50, seed);
        let sim = SimFmc::start(simulator(&pki, rate), scenario.clone());
        let port = free_port();
        let received = Arc::new(Received::default());
        received.set_mode(Mode::Slow);
        let mut setup = Setup::new(&pki.files, sim.port(), dir.path().join("state"));
        let output = stream_output("tcp", port, "lf", "");
        setup.outputs = vec![output.replace("framing = \"lf\"\n", "")];
        let metrics_addr = format!("127.0.0.1:{}", free_port());
        setup.monitor_listen = Some(metrics_addr.clone());
        let config = setup.write(&dir.path().join("estreamer-cef.toml"));
        let expected = expected_lines(&config, &scenario, dir.path());
        assert_eq!(expected.len(), n);
        let distinct: HashSet<&str> = expected.iter().map(|e| e.line.as_str()).collect();
        assert_eq!(distinct.len(), n, "every event's line is unique");
        let avg_len = expected.iter().map(|e| e.line.len()).sum::<usize>() as f64 / n as f64;
        Scene {
            fmc_state: setup.fmc_state_dir(),
            dir,
            _sim: sim,
            _pki: pki,
            port,
            received,
            config,
            metrics_addr,
            expected,
            avg_len,
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("forwarder.log")
    }

    /// Bytes (estimated from event counts) acknowledged by the receiver's kernel but not read.
    fn unread_bytes(&self) -> f64 {
        scrape(&self.metrics_addr)
            .map(|m| {
                let acked = output_metric(&m, self.port, "acknowledged_total");
                (acked - self.received.count() as f64) * self.avg_len
            })
            .unwrap_or(0.0)
    }

    /// The expected lines that have not arrived at all.
    fn missing(&self) -> Vec<String> {
        let got = self.received.snapshot();
        let got: HashSet<&str> = got.iter().map(String::as_str).collect();
        self.expected
            .iter()
            .filter(|e| !got.contains(e.line.as_str()))
            .map(|e| e.line.clone())
            .collect()
    }
}

#[test]
fn receiver_killed_with_a_full_32_mib_buffer_unread_loses_nothing() {
    const N: usize = 140_000;
    let sc = Scene::new(N, 21, None);
    let received = sc.received.clone();
    let mut receiver = Receiver::start(sc.port, received.clone());

    let mut fwd = Forwarder::run(&sc.config, &[], &sc.log());
    let pid = fwd.pid();
    // The forwarder fills the receiver's buffer: acknowledged well past what was read. Kernels
    // since 6.6 let a 32 MiB SO_RCVBUF hold about 64 MiB unread; older ones (tcp_adv_win_scale = 1)
    // about half that: wait for 40 MiB, or for a full buffer (no longer growing) of at least 24.
    let mut last = 0.0;
    assert!(
        eventually(SOON, || {
            std::thread::sleep(Duration::from_millis(500));
            let now = sc.unread_bytes();
            let full = now > (24 << 20) as f64 && now < last + (1 << 20) as f64;
            last = now;
            full || now > (40 << 20) as f64
        }),
        "the receiver's buffer never filled: {} bytes acknowledged but unread; log:\n{}",
        sc.unread_bytes(),
        tail(&fwd.log_text(), 30)
    );
    let lost = receiver.kill();
    let at_kill = received.count();
    eprintln!(
        "receiver killed with {} MiB unread, {at_kill} events read",
        lost >> 20
    );
    assert!(
        lost > 24 << 20,
        "a full 32 MiB receive buffer (six times the old 4 MiB resend tail) was lost with the \
         receiver: {lost} bytes"
    );
    assert!(at_kill < N / 2, "killed mid-stream: {at_kill} read");
    std::thread::sleep(Duration::from_secs(1));
    received.set_mode(Mode::Fast);
    let _receiver = Receiver::start(sc.port, received.clone());

    assert!(
        eventually(Duration::from_secs(120), || sc.missing().is_empty()),
        "{} events never arrived, e.g. {:?}; log:\n{}",
        sc.missing().len(),
        sc.missing().first(),
        tail(&fwd.log_text(), 30)
    );
    let rss = peak_rss_kib(pid);
    let metrics = scrape(&sc.metrics_addr).unwrap();
    let resent = output_metric(&metrics, sc.port, "resent_total") as usize;
    let status = fwd.terminate(SOON);
    assert!(status.success(), "exit status {status}");
    let all = received.snapshot();
    let (lost_lines, extra) = compare(&sc.expected, &all);
    eprintln!(
        "{} messages arrived: {} duplicates, {resent} counted as resent; peak RSS {} MiB",
        all.len(),
        extra.len(),
        rss >> 10
    );
    assert!(lost_lines.is_empty());
    let wanted: HashSet<&str> = sc.expected.iter().map(|e| e.line.as_str()).collect();
    assert!(
        extra.iter().all(|l| wanted.contains(l)),
        "a message nobody sent arrived: {:?}",
        extra.iter().find(|l| !wanted.contains(**l))
    );
    assert!(
        extra.len() <= resent,
        "every duplicate is counted: {} duplicates, {resent} resent",
        extra.len()
    );
    assert!(rss < 96 * 1024, "peak RSS {rss} KiB is over 96 MB");
    let log = fwd.log_text();
    assert!(
        log.contains(&format!(
            "{N} messages sent, {N} acknowledged by the receiver's TCP stack, {N} confirmed delivered"
        )),
        "the last log line says everything was delivered:\n{}",
        tail(&log, 5)
    );
}

#[test]
fn forwarder_killed_while_the_receiver_holds_unread_data_loses_nothing_then_a_clean_restart_sends_no_duplicate()
 {
    const N: usize = 60_000;
    let sc = Scene::new(N, 23, Some(6_000));
    let received = sc.received.clone();
    let _receiver = Receiver::start(sc.port, received.clone());
    let log = sc.log();

    // Run 1, killed while the receiver has much acknowledged but unread.
    let mut fwd = Forwarder::run(&sc.config, &[], &log);
    assert!(
        eventually(SOON, || sc.unread_bytes() > (8 << 20) as f64),
        "the receiver's buffer never filled; log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    assert!(
        eventually(SOON, || Bookmark::load(&sc.fmc_state)
            .ok()
            .flatten()
            .is_some()),
        "a bookmark is saved while running"
    );
    fwd.kill();
    // The receiver reads on: what its kernel acknowledged is still there.
    received.set_mode(Mode::Fast);
    let mut last = usize::MAX;
    assert!(eventually(SOON, || {
        std::thread::sleep(Duration::from_millis(500));
        let now = received.count();
        std::mem::replace(&mut last, now) == now
    }));
    let after_kill = received.count();

    // Run 2, stopped cleanly mid-stream.
    let mut fwd = Forwarder::run(&sc.config, &[], &log);
    assert!(
        eventually(SOON, || received.count() > after_kill + N / 4),
        "log:\n{}",
        tail(&fwd.log_text(), 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success(), "a clean stop exits 0: {status}");
    let before = received.snapshot();
    let distinct_before: HashSet<&str> = before.iter().map(String::as_str).collect();
    assert!(
        distinct_before.len() < N,
        "stopped mid-stream ({} distinct events had arrived)",
        distinct_before.len()
    );
    // What run 2 sent; run 1's last events may come again (the bookmark lags a SIGKILL).
    let sent_by_run2: HashSet<&str> = before[after_kill..].iter().map(String::as_str).collect();
    assert!(
        tail(&fwd.log_text(), 10).contains("everything delivered (the receiver closed its side"),
        "the clean stop was confirmed by the receiver:\n{}",
        tail(&fwd.log_text(), 10)
    );

    // Run 3, to the end.
    let mut fwd = Forwarder::run(&sc.config, &[], &log);
    assert!(
        eventually(SOON, || sc.missing().is_empty()),
        "{} events never arrived; log:\n{}",
        sc.missing().len(),
        tail(&fwd.log_text(), 30)
    );
    let status = fwd.terminate(SOON);
    assert!(status.success());
    let all = received.snapshot();
    let (_, extra) = compare(&sc.expected, &all);
    eprintln!(
        "{N} events: {after_kill} read from the killed run, {} by the clean stop, {} in all ({} duplicates)",
        before.len(),
        all.len(),
        extra.len()
    );
    // After the clean restart: nothing the stopped run had sent, and nothing twice.
    let mut seen = HashSet::new();
    for l in &all[before.len()..] {
        assert!(
            !sent_by_run2.contains(l.as_str()),
            "arrived again after the clean restart: {l}"
        );
        assert!(
            seen.insert(l.as_str()),
            "arrived twice after the clean restart: {l}"
        );
    }
}
