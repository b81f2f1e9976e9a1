//! The simulated FMC seen from a hand-driven client over real TLS: the request exchange and its
//! log in the FMC's words, what is streamed from which start, flow control by acknowledgements,
//! keepalives, the CN check and the faults.

mod sim_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use estreamer_cef::decode::RecordHeader;
use estreamer_cef::delivery::cursor;
use estreamer_cef::estreamer::connection::Connection;
use estreamer_cef::estreamer::message::{self, Bundle, Message, NULL_MESSAGE, kind};
use estreamer_cef::estreamer::request::{
    DEFAULT_EXTENDED_EVENTS, EventVersion, StartAt, event_stream_request, streaming_request,
};
use estreamer_cef::estreamer::tls;
use estreamer_cef::net::identity::{ClientIdentity, load_pkcs12};
use estreamer_cef::net::tls::{ServerTrust, build_connector};
use estreamer_cef_sim::faults::Fault;
use estreamer_cef_sim::server::UNKNOWN_RECORD_TYPE;
use sim_support::*;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_openssl::SslStream;

type Conn = Connection<SslStream<TcpStream>>;

async fn connect(identity: &ClientIdentity, addr: SocketAddr) -> Conn {
    let connector = build_connector(identity, &ServerTrust::Pkcs12Ca).unwrap();
    let tcp = TcpStream::connect(addr).await.unwrap();
    let tls = timeout(LIMIT, tls::connect(tcp, &connector, "127.0.0.1", true))
        .await
        .unwrap()
        .unwrap();
    Connection::new(tls)
}

async fn read(conn: &mut Conn) -> Message {
    timeout(LIMIT, conn.read_message())
        .await
        .expect("no message from the simulator")
        .unwrap()
        .expect("the simulator closed the connection")
}

/// The 3.5.4 capture's list (user events at version 4), for the FMC log line of the reference.
fn capture_list() -> Vec<EventVersion> {
    let mut l = DEFAULT_EXTENDED_EVENTS.to_vec();
    l[5].version = 4;
    l
}

/// Requests in extended mode and returns the first message after the StreamingInformation.
async fn extended_request(conn: &mut Conn, start: StartAt, events: &[EventVersion]) -> Message {
    conn.write(&event_stream_request(start, FLAGS))
        .await
        .unwrap();
    let info = read(conn).await;
    assert_eq!(info.kind, kind::STREAMING_INFORMATION);
    conn.write(&streaming_request(start, FLAGS, events))
        .await
        .unwrap();
    conn.write(&NULL_MESSAGE).await.unwrap();
    read(conn).await
}

/// Reads and acknowledges messages until `n` records have arrived; returns the record bodies.
async fn collect_records(conn: &mut Conn, mut first: Option<Message>, n: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut sequence = 0;
    while out.len() < n {
        let m = match first.take() {
            Some(m) => m,
            None => read(conn).await,
        };
        match m.kind {
            kind::MESSAGE_BUNDLE => {
                let b = Bundle::parse(&m.body).unwrap();
                sequence += 1;
                assert_eq!(
                    b.sequence, sequence,
                    "bundle sequence numbers run 1, 2, 3, ..."
                );
                out.extend(b.items().map(|i| i.unwrap().1.to_vec()));
            }
            kind::EVENT_DATA => out.push(m.body.to_vec()),
            kind::NULL => {}
            other => panic!("unexpected message type {other}"),
        }
        conn.write(&NULL_MESSAGE).await.unwrap();
    }
    out
}

fn identities(records: &[Vec<u8>]) -> Vec<u64> {
    records.iter().map(|r| cursor::identity(r)).collect()
}

#[tokio::test]
async fn an_extended_session_looks_and_logs_like_the_fmc() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let sim = Sim::start(pki.simulator(), scenario.clone()).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;

    conn.write(&event_stream_request(StartAt::Genesis, FLAGS))
        .await
        .unwrap();
    let info = read(&mut conn).await;
    // Byte for byte the StreamingInformation captured from a real FMC (reference 5.2).
    assert_eq!(
        message::encode(info.kind, &info.body),
        message::streaming_information_message(&[5001, 5000, 6667])
    );
    conn.write(&streaming_request(StartAt::Genesis, FLAGS, &capture_list()))
        .await
        .unwrap();
    conn.write(&NULL_MESSAGE).await.unwrap();

    let total = scenario.metadata.len() + scenario.events.len();
    let records = collect_records(&mut conn, None, total).await;
    assert_eq!(records.len(), total);
    let (metadata, events) = records.split_at(scenario.metadata.len());
    assert!(
        metadata
            .iter()
            .all(|r| RecordHeader::parse(r).unwrap().archive_timestamp == 0),
        "metadata comes first"
    );
    assert_eq!(identities(events), expected_from(&scenario, 0));

    // Nothing left to send: keepalive Nulls.
    let m = read(&mut conn).await;
    assert_eq!((m.kind, m.body.len()), (kind::NULL, 0));

    let s = &sim.handle.sessions()[0];
    let lines = &s.lines;
    for expected in [
        "Got EVENT_STREAM_REQUEST length 8",
        "Publishing service INFO total data size 48",
        "Publishing service id:5001 - length size 8",
        "Publishing service id:5000 - length size 8",
        "Publishing service id:6667 - length size 8",
        "Got UEC_STREAM_REQUEST length 56",
        "requested service [6667] timestamp [0]",
        // The line of reference 3.1, word for word.
        "EventStream Request (0x48900061): Since 0 w/ NS Events w/ NS 6.0 Events w/ Packets \
         w/ Extra IDS Event data w/ Metadata v4 w/ RUA 5.2 Events w/ Impact Alerts w/ 5.3 Impact \
         Alerts w/ Impact Flags w/ RNA 5.3 Events w/ RNA 6.0 Flow w/ Policy 5.4 Events w/ FireAMP \
         6.0 Events w/ Filelog 6.0 Events w/ Send archive timestamp w/ Send Detail Request",
    ] {
        assert!(
            lines.iter().any(|l| l == expected),
            "missing {expected:?} in {lines:#?}"
        );
    }
    let per_entry: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with("Got Event type "))
        .collect();
    assert_eq!(per_entry.len(), 9);
    assert_eq!(per_entry[0], "Got Event type 12, version 9");
    assert_eq!(per_entry[5], "Got Event type 91, version 4");
    assert!(s.logged("Matched Certificate CN:127.0.0.1 to 127.0.0.1 (IPv4)"));
    assert_eq!(s.client_cn.as_deref(), Some("127.0.0.1"));
}

#[tokio::test]
async fn a_legacy_request_gets_event_data_from_the_requested_second() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let sim = Sim::start(pki.simulator(), scenario.clone()).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    let start = BASE_SECOND + 150;
    let flags = FLAGS & !0x4000_0000;
    conn.write(&event_stream_request(StartAt::Second(start), flags))
        .await
        .unwrap();
    let first = read(&mut conn).await;
    assert_eq!(
        first.kind,
        kind::EVENT_DATA,
        "no StreamingInformation without bit 30"
    );
    let want = scenario.metadata.len() + scenario.events_from(start).len();
    let records = collect_records(&mut conn, Some(first), want).await;
    assert_eq!(
        identities(&records[scenario.metadata.len()..]),
        expected_from(&scenario, start)
    );
    let s = &sim.handle.sessions()[0];
    assert!(
        s.sent
            .iter()
            .all(|m| m.kind == kind::EVENT_DATA && m.records.len() == 1)
    );
    let line = format!(
        "EventStream Request (0x08900061): Since {start} w/ NS Events w/ Packets w/ Extra IDS Event \
         data w/ Metadata v4 w/ Impact Alerts w/ Impact Flags w/ Send archive timestamp"
    );
    assert!(s.logged(&line), "{:#?}", s.lines);
}

#[tokio::test]
async fn starting_now_sends_no_stored_event_unless_the_scenario_loops() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let sim = Sim::start(pki.simulator(), scenario.clone()).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    let first = extended_request(&mut conn, StartAt::Now, &DEFAULT_EXTENDED_EVENTS).await;
    let records = collect_records(&mut conn, Some(first), scenario.metadata.len()).await;
    assert_eq!(records.len(), scenario.metadata.len());
    // Then only keepalives.
    for _ in 0..3 {
        let m = read(&mut conn).await;
        assert_eq!(m.kind, kind::NULL);
        conn.write(&NULL_MESSAGE).await.unwrap();
    }
    assert_eq!(
        sim.handle.sessions()[0].records_sent,
        scenario.metadata.len() as u64
    );

    let mut looping = pki.simulator();
    looping.loop_events = true;
    let sim = Sim::start(looping, scenario.clone()).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    let first = extended_request(&mut conn, StartAt::Now, &DEFAULT_EXTENDED_EVENTS).await;
    let n = scenario.metadata.len() + 2 * scenario.events.len();
    let records = collect_records(&mut conn, Some(first), n).await;
    let seconds: Vec<u32> = records[scenario.metadata.len()..]
        .iter()
        .map(|r| RecordHeader::parse(r).unwrap().archive_timestamp)
        .collect();
    let last_stored = scenario.events.last().unwrap().archive_second;
    assert!(
        seconds[0] > last_stored,
        "a loop pass lies after the stored events"
    );
    assert!(
        seconds.windows(2).all(|w| w[0] <= w[1]),
        "archive order across passes"
    );
}

#[tokio::test]
async fn without_acknowledgements_the_simulator_stops_at_its_window() {
    let pki = TestPki::new();
    let mut cfg = pki.simulator();
    cfg.window = 5;
    let sim = Sim::start(cfg, Arc::new(corpus_scenario(4))).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    conn.write(&event_stream_request(StartAt::Genesis, FLAGS))
        .await
        .unwrap();
    let _info = read(&mut conn).await;
    conn.write(&streaming_request(
        StartAt::Genesis,
        FLAGS,
        &DEFAULT_EXTENDED_EVENTS,
    ))
    .await
    .unwrap();
    // No acknowledgement at all: StreamingInformation plus four bundles fill the window.
    for _ in 0..4 {
        assert_eq!(read(&mut conn).await.kind, kind::MESSAGE_BUNDLE);
    }
    assert!(sim.handle.wait_until(LIMIT, |s| s[0].waiting_for_ack).await);
    let s = &sim.handle.sessions()[0];
    assert_eq!((s.messages_sent, s.acks, s.data_messages_sent), (5, 0, 4));
    // Nothing else comes, not even a keepalive, until we acknowledge: then exactly one more.
    assert!(
        timeout(Duration::from_millis(600), conn.read_message())
            .await
            .is_err()
    );
    conn.write(&NULL_MESSAGE).await.unwrap();
    assert_eq!(read(&mut conn).await.kind, kind::MESSAGE_BUNDLE);
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s[0].waiting_for_ack && s[0].acks == 1)
            .await
    );
    assert_eq!(sim.handle.sessions()[0].data_messages_sent, 5);
}

#[tokio::test]
async fn a_dns_name_as_cn_is_resolved_and_a_wrong_cn_is_refused() {
    let pki = TestPki::new();
    let sim = Sim::start(pki.simulator(), Arc::new(corpus_scenario(4))).await;

    let by_name = load_pkcs12(&pki.issue("localhost"), "pw").unwrap();
    let mut conn = connect(&by_name, sim.addr()).await;
    let first = extended_request(&mut conn, StartAt::Now, &DEFAULT_EXTENDED_EVENTS).await;
    assert_eq!(first.kind, kind::MESSAGE_BUNDLE);
    let s = &sim.handle.sessions()[0];
    assert!(
        s.logged("Found IPv4 address 127.0.0.1 for localhost"),
        "{:?}",
        s.lines
    );
    assert!(s.logged("Matched Certificate CN:localhost to 127.0.0.1 (IPv4)"));

    let stranger = load_pkcs12(&pki.issue("192.168.27.100"), "pw").unwrap();
    let mut conn = connect(&stranger, sim.addr()).await;
    conn.write(&event_stream_request(StartAt::Now, FLAGS))
        .await
        .ok();
    // Closed without a message.
    let r = timeout(LIMIT, conn.read_message()).await.unwrap();
    assert!(matches!(r, Ok(None)) || r.is_err(), "{r:?}");
    let refused = sim
        .handle
        .wait_until(LIMIT, |s| s.len() == 2 && s[1].ended.is_some())
        .await;
    assert!(refused);
    let s = &sim.handle.sessions()[1];
    assert!(
        s.logged(
            "Certificate Common Name 192.168.27.100 does not match remote host: 127.0.0.1. It was issued to a different client."
        ),
        "{:?}",
        s.lines
    );
    assert!(s.request.is_none());
}

#[tokio::test]
async fn a_client_certificate_from_another_ca_fails_the_tls_handshake() {
    let pki = TestPki::new();
    let other = TestPki::new();
    let sim = Sim::start(pki.simulator(), Arc::new(corpus_scenario(4))).await;
    let connector = build_connector(
        &other.identity(),
        &ServerTrust::PemFile(pki.files.ca_cert.clone()),
    )
    .unwrap();
    let tcp = TcpStream::connect(sim.addr()).await.unwrap();
    let r = timeout(LIMIT, tls::connect(tcp, &connector, "127.0.0.1", true))
        .await
        .unwrap();
    assert!(r.is_err());
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s[0].logged("SSL_accept failed"))
            .await
    );
}

#[tokio::test]
async fn faults_close_mid_message_inject_unknown_records_and_break_the_header() {
    let pki = TestPki::new();
    let scenario = Arc::new(corpus_scenario(4));
    let mut cfg = pki.simulator();
    cfg.faults = vec![Fault::CloseEvery(47), Fault::UnknownRecordEvery(3)];
    let sim = Sim::start(cfg, scenario.clone()).await;

    for _ in 0..2 {
        let mut conn = connect(&pki.identity(), sim.addr()).await;
        let mut m =
            Some(extended_request(&mut conn, StartAt::Genesis, &DEFAULT_EXTENDED_EVENTS).await);
        let mut bundles = 0;
        let end = loop {
            let msg = match m.take() {
                Some(msg) => Ok(Some(msg)),
                None => timeout(LIMIT, conn.read_message()).await.unwrap(),
            };
            match msg {
                Ok(Some(msg)) => {
                    if msg.kind == kind::MESSAGE_BUNDLE {
                        bundles += 1;
                    }
                    conn.write(&NULL_MESSAGE).await.ok();
                }
                other => break other,
            }
        };
        assert_eq!(
            bundles, 46,
            "closed in the middle of message 47 in every session"
        );
        assert!(
            matches!(
                end,
                Err(estreamer_cef::estreamer::connection::ConnError::ClosedMidMessage { .. })
            ),
            "{end:?}"
        );
    }
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s.len() == 2
                && s.iter().all(|s| s.ended.is_some()))
            .await
    );
    for s in &sim.handle.sessions() {
        let last = s.sent.back().unwrap();
        assert!(!last.complete);
        assert!(s.logged("(fault close-every:47)"));
        // Every third event is followed by a record of a type no one knows.
        let records: Vec<_> = s.sent.iter().flat_map(|m| m.records.iter()).collect();
        let events: Vec<_> = records.iter().filter(|r| r.archive_second != 0).collect();
        for (i, pair) in events.windows(2).enumerate().take(30) {
            let unknown = pair[1].record_type == UNKNOWN_RECORD_TYPE;
            assert_eq!(unknown, i % 4 == 2, "at {i}: {pair:?}");
            if unknown {
                assert_eq!(pair[1].archive_second, pair[0].archive_second);
            }
        }
    }

    let mut cfg = pki.simulator();
    cfg.faults = vec![Fault::BadVersion, Fault::NoEstreamerService];
    let sim = Sim::start(cfg, scenario).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    conn.write(&event_stream_request(StartAt::Now, FLAGS))
        .await
        .unwrap();
    let mut raw = [0u8; 8];
    use tokio::io::AsyncReadExt;
    timeout(LIMIT, conn.get_mut().read_exact(&mut raw))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        &raw,
        &[0, 2, 0x08, 0x03, 0, 0, 0, 32],
        "version 2, services 5001 and 5000 only"
    );
}

#[tokio::test]
async fn close_after_handshake_refuses_every_client_like_a_cn_mismatch() {
    let pki = TestPki::new();
    let mut cfg = pki.simulator();
    cfg.check_cn = false;
    cfg.faults = vec![Fault::CloseAfterHandshake];
    let sim = Sim::start(cfg, Arc::new(corpus_scenario(4))).await;
    let mut conn = connect(&pki.identity(), sim.addr()).await;
    let r = timeout(LIMIT, conn.read_message()).await.unwrap();
    assert!(matches!(r, Ok(None)), "{r:?}");
    assert!(
        sim.handle
            .wait_until(LIMIT, |s| s[0].logged(
                "Certificate Common Name 127.0.0.1 does not match remote host: 127.0.0.1."
            ))
            .await
    );
}
