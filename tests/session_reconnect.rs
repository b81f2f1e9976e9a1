//! The FMC session against the simulated FMC over real TLS on loopback: reconnects after the
//! connection breaks mid-message and exactly-once delivery through the resume cursor;
//! acknowledgements as flow control; idle timeout, server Error, CN refusal and bad header
//! version each end in a reconnect; shutdown is prompt, also during the backoff.

mod sim_support;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use estreamer_cef::config::SessionConfig;
use estreamer_cef::delivery::cursor::Cursor;
use estreamer_cef::estreamer::request::StartAt;
use estreamer_cef::estreamer::session::{self, SessionError, SessionStats, SessionStatsSnapshot};
use estreamer_cef::net::identity::load_pkcs12;
use estreamer_cef_sim::faults::Fault;
use sim_support::*;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

struct Client {
    stats: Arc<SessionStats>,
    resume: Arc<session::Resume>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), SessionError>>,
}

fn start_client(cfg: SessionConfig, tx: mpsc::Sender<session::SourceMessage>) -> Client {
    let stats = Arc::new(SessionStats::default());
    let resume = Arc::new(session::Resume::default());
    let (stop, rx) = watch::channel(false);
    let task = tokio::spawn(session::run(cfg, resume.clone(), tx, rx, stats.clone()));
    Client {
        stats,
        resume,
        stop,
        task,
    }
}

impl Client {
    /// Asks the session to stop and waits for it; returns how long that took.
    async fn stop(self) -> Duration {
        let asked = tokio::time::Instant::now();
        self.stop.send(true).unwrap();
        tokio::time::timeout(LIMIT, self.task)
            .await
            .expect("the session did not stop")
            .unwrap()
            .unwrap();
        asked.elapsed()
    }
}

/// Runs a client with a consumer until every expected event has been delivered, then stops it
/// and lets the consumer drain the channel. Returns what was delivered and the client's stats.
async fn deliver_all(
    cfg: SessionConfig,
    expected: usize,
    capacity: usize,
) -> (Delivered, SessionStatsSnapshot) {
    let (tx, rx) = mpsc::channel(capacity);
    let client = start_client(cfg, tx);
    let (delivered, consumer) = spawn_consumer(rx, client.resume.clone());
    let done = eventually(LIMIT, || delivered.lock().unwrap().events.len() >= expected).await;
    let stats = client.stats.snapshot();
    client.stop().await;
    // The session owned the sender: the consumer ends after taking what is left.
    tokio::time::timeout(LIMIT, consumer)
        .await
        .unwrap()
        .unwrap();
    let d = std::mem::take(&mut *delivered.lock().unwrap());
    assert!(
        done,
        "only {} of {expected} events arrived; stats {stats}",
        d.events.len()
    );
    (d, stats)
}

#[tokio::test]
async fn three_drops_mid_message_deliver_every_event_exactly_once_in_order() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let mut sim_cfg = pki.simulator();
    // 449 metadata records fill the first 45 bundles of every session; the drops come later,
    // in the events, at different points of different sessions.
    sim_cfg.faults = vec![
        Fault::CloseAfter(50),
        Fault::CloseAfter(58),
        Fault::CloseAfter(66),
    ];
    let sim = Sim::start(sim_cfg, scenario.clone()).await;
    let start = BASE_SECOND + 20;
    let expected = expected_from(&scenario, start);
    assert!(expected.len() > 600);

    let cfg = session_config(pki.identity(), sim.addr(), StartAt::Second(start));
    let (d, stats) = deliver_all(cfg, expected.len(), 4).await;

    assert_eq!(d.events.len(), expected.len(), "every event exactly once");
    assert!(d.events == expected, "events out of order or wrong ones");
    // The FMC resumes inclusively: the cursor had records of the resume second to drop.
    assert!(d.duplicates > 0, "no replayed records were dropped");
    assert!(stats.reconnects >= 3, "{stats}");
    assert!(d.connections.len() >= 4);

    let sessions = sim.handle.sessions();
    let broken: Vec<_> = sessions
        .iter()
        .filter(|s| s.sent.iter().any(|m| !m.complete))
        .collect();
    assert_eq!(broken.len(), 3, "{:#?}", sim.handle.log_lines());
    // The first request asks for the configured start, every later one for where the consumer
    // had got to, never earlier.
    let requested: Vec<u32> = sessions
        .iter()
        .filter_map(|s| s.streaming_request.as_ref().map(|r| r.initial_timestamp))
        .collect();
    assert_eq!(requested[0], start);
    assert!(requested.len() >= 4, "{requested:?}");
    assert!(
        requested.windows(2).all(|w| w[0] <= w[1]) && requested[3] > start,
        "{requested:?}"
    );
    assert!(
        sessions.iter().all(|s| s.request.unwrap().flags == FLAGS),
        "every session sends the configured flags"
    );
}

#[tokio::test]
async fn a_consumer_that_stops_reading_stops_the_fmc_after_its_window() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let mut sim_cfg = pki.simulator();
    sim_cfg.window = 4;
    let window = sim_cfg.window as u64;
    let sim = Sim::start(sim_cfg, scenario.clone()).await;

    let capacity = 2;
    let (tx, mut rx) = mpsc::channel(capacity);
    let client = start_client(
        session_config(pki.identity(), sim.addr(), StartAt::Genesis),
        tx,
    );

    // Take three messages, then stop reading.
    let mut cursor = Cursor::default();
    let mut d = Delivered::default();
    for _ in 0..3 {
        let m = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .unwrap()
            .unwrap();
        consume(&m, &mut cursor, &client.resume, &mut d);
    }

    // Now: three messages taken, `capacity` queued, one held by the session, which neither
    // acknowledges it nor reads on. The FMC may have sent `window` messages past the last
    // acknowledged one, and then must wait.
    let handed_on = 3 + capacity as u64;
    let stalled = sim
        .handle
        .wait_until(LIMIT, |s| {
            s.len() == 1
                && s[0].waiting_for_ack
                && client.stats.messages.load(Ordering::Relaxed) == handed_on
                && s[0].data_messages_sent == handed_on + window
        })
        .await;
    let s = &sim.handle.sessions()[0];
    assert!(
        stalled,
        "expected the FMC to wait with {} data messages sent; it sent {} ({} acks, {} handed on)",
        handed_on + window,
        s.data_messages_sent,
        s.acks,
        client.stats.messages.load(Ordering::Relaxed)
    );
    assert_eq!(s.unacknowledged(), window);
    // Every acknowledgement answers a message already handed on (or a non-data message).
    assert_eq!(s.acks, handed_on + (s.messages_sent - s.data_messages_sent));
    let total_bundles = (scenario.metadata.len() + scenario.events.len()).div_ceil(10) as u64;
    assert!(s.data_messages_sent < total_bundles);

    // Reading again releases the stream, and everything arrives once.
    let expected = expected_from(&scenario, 0);
    while d.events.len() < expected.len() {
        let m = tokio::time::timeout(LIMIT, rx.recv())
            .await
            .expect("the stream did not resume")
            .unwrap();
        consume(&m, &mut cursor, &client.resume, &mut d);
    }
    assert!(d.events == expected);
    assert_eq!(client.stats.reconnects.load(Ordering::Relaxed), 0);
    client.stop().await;
}

#[tokio::test]
async fn silence_past_the_idle_timeout_reconnects() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let mut sim_cfg = pki.simulator();
    // Keepalives every 200 ms keep a healthy session alive; the stall sends nothing for 30 s.
    sim_cfg.faults = vec![Fault::StallAfter {
        after: 50,
        duration: Duration::from_secs(30),
    }];
    let sim = Sim::start(sim_cfg, scenario.clone()).await;
    let mut cfg = session_config(pki.identity(), sim.addr(), StartAt::Genesis);
    cfg.idle_timeout = Duration::from_secs(2);

    let expected = expected_from(&scenario, 0);
    let (d, stats) = deliver_all(cfg, expected.len(), 4).await;
    assert!(d.events == expected);
    assert!(stats.reconnects >= 1);
    let error = stats.last_error.unwrap_or_default();
    assert!(error.contains("no message from the FMC for 2s"), "{error}");
    let first = &sim.handle.sessions()[0];
    assert!(first.logged("Stalling for 30.0s"), "{:?}", first.lines);
}

#[tokio::test]
async fn a_server_error_message_is_reported_and_followed_by_a_reconnect() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let mut sim_cfg = pki.simulator();
    sim_cfg.faults = vec![Fault::ErrorAfter {
        after: 48,
        code: 19,
        text: "No space".into(),
    }];
    let sim = Sim::start(sim_cfg, scenario.clone()).await;
    let cfg = session_config(pki.identity(), sim.addr(), StartAt::Genesis);

    let expected = expected_from(&scenario, 0);
    let (d, stats) = deliver_all(cfg, expected.len(), 4).await;
    assert!(d.events == expected);
    assert!(stats.reconnects >= 1);
    assert_eq!(
        stats.last_error.as_deref(),
        Some("the FMC sent an error message: code 19: No space")
    );
    assert!(sim.handle.sessions().len() >= 2);
}

#[tokio::test]
async fn a_certificate_cn_the_fmc_refuses_is_explained_and_retried() {
    let pki = TestPki::new();
    let p12 = pki.issue("10.9.9.9");
    let identity = load_pkcs12(&p12, "pw").unwrap();
    let mut sim_cfg = pki.simulator();
    sim_cfg.check_cn = true;
    let sim = Sim::start(sim_cfg, Arc::new(corpus_scenario(4))).await;

    let (tx, _rx) = mpsc::channel(4);
    let client = start_client(session_config(identity, sim.addr(), StartAt::Genesis), tx);
    let retried = sim.handle.wait_until(LIMIT, |s| s.len() >= 2).await;
    assert!(retried, "the client did not reconnect");
    assert!(
        eventually(LIMIT, || client.stats.last_error().is_some()).await,
        "no error recorded"
    );
    let error = client.stats.last_error().unwrap();
    assert!(
        error.contains("closed the connection right after the TLS handshake")
            && error.contains("Common Name (10.9.9.9)"),
        "{error}"
    );
    let s = &sim.handle.sessions()[0];
    assert!(
        s.logged(
            "Certificate Common Name 10.9.9.9 does not match remote host: 127.0.0.1. It was issued to a different client."
        ),
        "{:?}",
        s.lines
    );
    assert_eq!(client.stats.messages.load(Ordering::Relaxed), 0);
    client.stop().await;
}

#[tokio::test]
async fn a_bad_header_version_is_explained_and_retried() {
    let pki = TestPki::new();
    let mut sim_cfg = pki.simulator();
    sim_cfg.faults = vec![Fault::BadVersion];
    let sim = Sim::start(sim_cfg, Arc::new(corpus_scenario(4))).await;
    let (tx, _rx) = mpsc::channel(4);
    let client = start_client(
        session_config(pki.identity(), sim.addr(), StartAt::Genesis),
        tx,
    );
    assert!(sim.handle.wait_until(LIMIT, |s| s.len() >= 2).await);
    assert!(eventually(LIMIT, || client.stats.last_error().is_some()).await);
    let error = client.stats.last_error().unwrap();
    assert!(
        error.contains("header version is 2") && error.contains("CSCve44987"),
        "{error}"
    );
    client.stop().await;
}

#[tokio::test]
async fn shutdown_is_prompt_while_streaming() {
    let pki = TestPki::new();
    let mut sim_cfg = pki.simulator();
    // An endless, slow stream.
    sim_cfg.loop_events = true;
    sim_cfg.rate = Some(200);
    let sim = Sim::start(sim_cfg, Arc::new(corpus_scenario(4))).await;
    let (tx, rx) = mpsc::channel(4);
    let client = start_client(session_config(pki.identity(), sim.addr(), StartAt::Now), tx);
    let (delivered, _consumer) = spawn_consumer(rx, client.resume.clone());
    assert!(eventually(LIMIT, || delivered.lock().unwrap().events.len() >= 20).await);
    let took = client.stop().await;
    // Prompt: well before the 20 s idle timeout would have ended the session anyway (the
    // margin is wide so that a loaded machine does not fail it; a stop takes milliseconds).
    assert!(took < Duration::from_secs(15), "stopping took {took:?}");
    // We said goodbye properly: the FMC sees a clean close, not an error.
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s[0].ended.as_deref()
                == Some("client closed the connection"))
            .await,
        "{:?}",
        sim.handle.sessions()[0].ended
    );
}

#[tokio::test]
async fn shutdown_is_prompt_during_the_reconnect_backoff() {
    let pki = TestPki::new();
    // A port where nothing listens.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut cfg = session_config(pki.identity(), port, StartAt::Genesis);
    // A first wait of 30 s (less jitter): a stop that waited it out is told apart from a prompt
    // one by a margin no loaded machine closes.
    cfg.reconnect_delay_min = Duration::from_secs(30);
    cfg.reconnect_delay_max = Duration::from_secs(60);
    let (tx, _rx) = mpsc::channel(4);
    let client = start_client(cfg, tx);

    let in_long_backoff = eventually(LIMIT, || {
        client
            .stats
            .snapshot()
            .retry_delay
            .is_some_and(|d| d >= Duration::from_secs(20))
    })
    .await;
    assert!(in_long_backoff, "{}", client.stats.snapshot());
    let error = client.stats.last_error().unwrap();
    assert!(
        error.contains("Connection refused") || error.contains("refused"),
        "{error}"
    );
    assert_eq!(client.stats.connects.load(Ordering::Relaxed), 0);
    let took = client.stop().await;
    assert!(
        took < Duration::from_secs(10),
        "stopping took {took:?}, as if the backoff had been waited out"
    );
}

#[tokio::test]
async fn a_consumer_that_goes_away_ends_the_session() {
    let pki = TestPki::new();
    let sim = Sim::start(pki.simulator(), Arc::new(corpus_scenario(4))).await;
    let (tx, mut rx) = mpsc::channel(1);
    let client = start_client(
        session_config(pki.identity(), sim.addr(), StartAt::Genesis),
        tx,
    );
    tokio::time::timeout(LIMIT, rx.recv())
        .await
        .unwrap()
        .unwrap();
    drop(rx);
    let ended = tokio::time::timeout(LIMIT, client.task)
        .await
        .expect("the session kept running without a consumer")
        .unwrap();
    assert!(
        matches!(ended, Err(SessionError::ConsumerGone)),
        "{ended:?}"
    );
}
