//! Playing an FMC high-availability pair: two simulators with the same records and different
//! archive offsets serve the same events (same payloads) at different archive seconds, each
//! answering "from second S" by its own seconds; `exit-after:N` stops a peer like an FMC that
//! dies (connections closed, then connections refused), in process and as `simulate`.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use estreamer_cef::decode::RecordHeader;
use estreamer_cef::estreamer::connection::Connection;
use estreamer_cef::estreamer::message::{Bundle, NULL_MESSAGE, kind};
use estreamer_cef::estreamer::request::{
    DEFAULT_EXTENDED_EVENTS, StartAt, event_stream_request, streaming_request,
};
use estreamer_cef::estreamer::tls;
use estreamer_cef::net::identity::load_pkcs12;
use estreamer_cef::net::password::read_password_file;
use estreamer_cef::net::tls::{ServerTrust, build_connector};
use estreamer_cef_sim::faults::Fault;
use estreamer_cef_sim::generate::{GenOptions, generate};
use estreamer_cef_sim::pki::{self, PkiFiles, PkiOptions};
use estreamer_cef_sim::scenario::{ARCHIVE_JITTER_MAX, Scenario};
use estreamer_cef_sim::server::{SimulatorConfig, SimulatorHandle, serve};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::timeout;
use tokio_openssl::SslStream;

/// Generous bound for anything that should happen "soon" on a loaded 2-vCPU machine.
const LIMIT: Duration = Duration::from_secs(60);
/// eNcore's default request flags (extended request, archive timestamps).
const FLAGS: u32 = 0x4890_0061;

type Conn = Connection<SslStream<TcpStream>>;

fn scenario() -> Scenario {
    generate(&GenOptions {
        seed: 11,
        events_per_type: 3,
        ..GenOptions::default()
    })
    .scenario
}

struct Peer {
    handle: SimulatorHandle,
    _stop: watch::Sender<bool>,
}

async fn start(
    pki: &PkiFiles,
    scenario: &Arc<Scenario>,
    offset: i64,
    loop_events: bool,
    faults: &[Fault],
) -> Peer {
    let mut cfg = SimulatorConfig::new("127.0.0.1:0".parse().unwrap(), pki);
    cfg.archive_offset = offset;
    cfg.loop_events = loop_events;
    cfg.bundle_size = 10;
    cfg.faults = faults.to_vec();
    let (stop, shutdown) = watch::channel(false);
    let handle = serve(cfg, scenario.clone(), shutdown).await.unwrap();
    Peer {
        handle,
        _stop: stop,
    }
}

async fn connect(pki: &PkiFiles, addr: SocketAddr) -> Conn {
    let password = read_password_file(&pki.client_pass, "client.pass").unwrap();
    let identity = load_pkcs12(&pki.client_pkcs12, password.expose()).unwrap();
    let connector = build_connector(&identity, &ServerTrust::Pkcs12Ca).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = timeout(LIMIT, tls::connect(tcp, &connector, "127.0.0.1", true))
        .await
        .unwrap()
        .unwrap();
    Connection::new(tls)
}

/// The extended request exchange, asking for the stream from `start`.
async fn request(conn: &mut Conn, start: StartAt) {
    conn.write(&event_stream_request(start, FLAGS))
        .await
        .unwrap();
    let info = next(conn).await.expect("StreamingInformation");
    assert_eq!(info.0, kind::STREAMING_INFORMATION);
    conn.write(&streaming_request(start, FLAGS, &DEFAULT_EXTENDED_EVENTS))
        .await
        .unwrap();
    conn.write(&NULL_MESSAGE).await.unwrap();
}

/// The next message (kind and records, for a data message), acknowledged; `None` once the
/// simulator has closed the connection (cleanly or not).
async fn next(conn: &mut Conn) -> Option<(u16, Vec<Bytes>)> {
    let m = timeout(LIMIT, conn.read_message())
        .await
        .expect("nothing from the simulator")
        .ok()??;
    let records = match m.kind {
        kind::MESSAGE_BUNDLE => Bundle::parse(&m.body)
            .unwrap()
            .items()
            .map(|i| Bytes::copy_from_slice(i.unwrap().1))
            .collect(),
        kind::EVENT_DATA => vec![m.body.clone()],
        _ => Vec::new(),
    };
    let _ = conn.write(&NULL_MESSAGE).await;
    Some((m.kind, records))
}

/// Reads until `n` records have arrived.
async fn records(conn: &mut Conn, n: usize) -> Vec<Bytes> {
    let mut out = Vec::new();
    while out.len() < n {
        let (_, r) = next(conn)
            .await
            .expect("the simulator closed the connection");
        out.extend(r);
    }
    out
}

fn second(record: &[u8]) -> u32 {
    RecordHeader::parse(record).unwrap().archive_timestamp
}

/// Archive second of each event, by payload (what follows the 16-byte record header).
fn seconds_by_payload(events: &[Bytes]) -> BTreeMap<Bytes, u32> {
    let map: BTreeMap<Bytes, u32> = events.iter().map(|r| (r.slice(16..), second(r))).collect();
    assert_eq!(map.len(), events.len(), "every event payload is distinct");
    map
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ha_peers_serve_the_same_events_at_their_own_archive_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    let scenario = Arc::new(scenario());
    let (n_meta, n_events) = (scenario.metadata.len(), scenario.events.len());
    assert!(n_events >= 30, "enough events to compare: {n_events}");

    let mut streams = BTreeMap::new();
    for offset in [0i64, 7, -5] {
        let peer = start(&pki, &scenario, offset, false, &[]).await;
        let mut conn = connect(&pki, peer.handle.local_addr()).await;
        request(&mut conn, StartAt::Genesis).await;
        let got = records(&mut conn, n_meta + n_events).await;
        let (meta, events) = got.split_at(n_meta);
        let expected_meta: Vec<&Bytes> = scenario.metadata.iter().map(|r| &r.body).collect();
        assert_eq!(
            meta.iter().collect::<Vec<_>>(),
            expected_meta,
            "offset {offset}"
        );
        let seconds: Vec<u32> = events.iter().map(|r| second(r)).collect();
        assert!(
            seconds.windows(2).all(|w| w[0] <= w[1]),
            "offset {offset}: archive order"
        );
        streams.insert(offset, (peer, events.to_vec()));
    }

    let base = seconds_by_payload(&streams[&0].1);
    for offset in [7i64, -5] {
        let peer = seconds_by_payload(&streams[&offset].1);
        assert_eq!(
            peer.keys().collect::<Vec<_>>(),
            base.keys().collect::<Vec<_>>(),
            "offset {offset}: the same event payloads"
        );
        let mut differences = std::collections::BTreeSet::new();
        for (payload, s) in &peer {
            let d = i64::from(*s) - i64::from(base[payload]);
            assert!(
                (offset..=offset + i64::from(ARCHIVE_JITTER_MAX)).contains(&d),
                "offset {offset}: an event moved by {d} s"
            );
            differences.insert(d);
        }
        assert!(
            differences.len() > 1,
            "offset {offset}: the peers differ by more than a constant: {differences:?}"
        );
    }

    // "From second S" goes by each peer's own seconds: the +7 peer, asked from one of its
    // seconds in the middle, sends exactly its events from that second on.
    let (peer, events) = &streams[&7];
    let from = second(&events[events.len() / 2]);
    let expected: Vec<&Bytes> = events.iter().filter(|r| second(r) >= from).collect();
    let mut conn = connect(&pki, peer.handle.local_addr()).await;
    request(&mut conn, StartAt::Second(from)).await;
    let got = records(&mut conn, n_meta + expected.len()).await;
    assert_eq!(got[n_meta..].iter().collect::<Vec<_>>(), expected);
}

/// Looping peers repeat the same passes: pass by pass the same payloads, apart by the offset.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn looping_ha_peers_repeat_the_same_passes() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    let scenario = Arc::new(scenario());
    let (n_meta, n_events) = (scenario.metadata.len(), scenario.events.len());
    let mut passes = Vec::new();
    for offset in [0i64, 7] {
        let peer = start(&pki, &scenario, offset, true, &[]).await;
        let mut conn = connect(&pki, peer.handle.local_addr()).await;
        request(&mut conn, StartAt::Genesis).await;
        let got = records(&mut conn, n_meta + 3 * n_events).await;
        let events = &got[n_meta..n_meta + 3 * n_events];
        let seconds: Vec<u32> = events.iter().map(|r| second(r)).collect();
        assert!(seconds.windows(2).all(|w| w[0] <= w[1]), "offset {offset}");
        let by_pass: Vec<BTreeMap<Bytes, u32>> =
            events.chunks(n_events).map(seconds_by_payload).collect();
        passes.push(by_pass);
    }
    for (pass, (a, b)) in passes[0].iter().zip(&passes[1]).enumerate() {
        assert_eq!(
            a.keys().collect::<Vec<_>>(),
            b.keys().collect::<Vec<_>>(),
            "pass {pass}: the same payloads"
        );
        for (payload, s) in b {
            let d = i64::from(*s) - i64::from(a[payload]);
            assert!(
                (7..=7 + i64::from(ARCHIVE_JITTER_MAX)).contains(&d),
                "pass {pass}: {d}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_after_closes_every_connection_then_refuses_new_ones() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    let scenario = Arc::new(scenario());
    let peer = start(&pki, &scenario, 7, false, &[Fault::ExitAfter(3)]).await;
    let addr = peer.handle.local_addr();

    // An idle client (no request yet) and a streaming one.
    let mut idle = connect(&pki, addr).await;
    let mut streaming = connect(&pki, addr).await;
    request(&mut streaming, StartAt::Genesis).await;
    let mut data = 0;
    while let Some((k, _)) = next(&mut streaming).await {
        if k == kind::MESSAGE_BUNDLE {
            data += 1;
        }
    }
    assert_eq!(data, 3, "exactly the data messages before the exit");
    // The listener closed before the connections did.
    let refused = TcpStream::connect(addr).await.unwrap_err();
    assert_eq!(
        refused.kind(),
        std::io::ErrorKind::ConnectionRefused,
        "{refused}"
    );
    assert!(!peer.handle.is_listening());
    let idle_end = timeout(LIMIT, idle.read_message())
        .await
        .expect("the idle connection is closed too")
        .map(|m| m.map(|m| m.kind));
    assert!(!matches!(idle_end, Ok(Some(_))), "{idle_end:?}");
    // Hanging up ends the simulator's wait for the clients to leave.
    drop((idle, streaming));
    assert_eq!(peer.handle.exited(), Some(Fault::ExitAfter(3)));
    let sessions = peer.handle.sessions();
    assert!(sessions.iter().any(|s| s.logged("Exiting after message 3")));
    let Peer { handle, _stop } = peer;
    let stopped = timeout(LIMIT, handle.stopped()).await.expect("it stops");
    assert_eq!(stopped, Some(Fault::ExitAfter(3)));
}

/// `simulate --archive-offset -5 --fault exit-after:1`: serves the generated events at its own
/// seconds, then exits with status 0 and says why.
#[test]
fn simulate_plays_a_peer_that_dies() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki::init(dir.path(), &PkiOptions::default()).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_estreamer-cef-sim"))
        .args(["-q", "simulate", "--pki"])
        .arg(dir.path())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--seed",
            "3",
            "--bundle-size",
            "100000",
            "--archive-offset",
            "-5",
            "--fault",
            "exit-after:1",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = stdout.next().expect("a line").unwrap();
    // "FMC simulator listening on 127.0.0.1:PORT (Ctrl-C to stop)"
    let addr: SocketAddr = first
        .split_once("listening on ")
        .and_then(|(_, rest)| rest.split(' ').next())
        .and_then(|a| a.parse().ok())
        .unwrap_or_else(|| panic!("no address in {first:?}"));

    let expected = generate(&GenOptions {
        seed: 3,
        // simulate's default
        events_per_type: 4,
        ..GenOptions::default()
    })
    .scenario
    .with_archive_offset(-5)
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (got, after) = rt.block_on(async {
        let mut conn = connect(&pki, addr).await;
        request(&mut conn, StartAt::Genesis).await;
        let (_, got) = next(&mut conn).await.expect("one data message");
        let mut after = Vec::new();
        while let Some(m) = next(&mut conn).await {
            after.push(m.0);
        }
        (got, after)
    });
    let sent: Vec<&Bytes> = expected
        .metadata
        .iter()
        .chain(&expected.events)
        .map(|r| &r.body)
        .collect();
    assert_eq!(got.iter().collect::<Vec<_>>(), sent);
    assert!(after.is_empty(), "nothing after message 1: {after:?}");

    let deadline = Instant::now() + LIMIT;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            child.kill().unwrap();
            panic!("simulate still running after its exit-after fault fired");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let rest: Vec<String> = stdout.map(|l| l.unwrap()).collect();
    assert!(
        rest.iter()
            .any(|l| l.contains("exited") && l.contains("exit-after:1")),
        "{rest:?}"
    );
}
