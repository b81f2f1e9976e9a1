//! Delivery guarantees of the TCP output: at least once across receiver outages, progress that
//! never claims more than the receiver's TCP stack acknowledged, bounded and counted duplicates,
//! backpressure when the receiver stops reading.

#[path = "support/syslog_events.rs"]
mod syslog_events;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use estreamer_cef::output::syslog::framing::{WireFraming, parse};
use syslog_events::*;
use syslog_ng::SyslogNg;
use tokio::io::AsyncReadExt;

fn count_by_seq(records: &[serde_json::Value]) -> BTreeMap<u64, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        assert!(
            r["cef"].get("error").is_none(),
            "cefp rejected a message: {r}"
        );
        *m.entry(seq_of(r)).or_insert(0) += 1;
    }
    m
}

/// Sends events 1..=total, `per_batch` every `pause`, from a separate task.
fn produce(
    out: &Running,
    total: u64,
    per_batch: usize,
    pause: Duration,
) -> tokio::task::JoinHandle<()> {
    let tx = out.tx.clone().unwrap();
    tokio::spawn(async move {
        for b in batches(1, total, per_batch) {
            tx.send(b).await.expect("output ended early");
            tokio::time::sleep(pause).await;
        }
    })
}

/// (time, progress) samples.
type Samples = Arc<Mutex<Vec<(Instant, u64)>>>;

/// Records (time, progress) every 10 ms until the output ends.
fn sample_progress(out: &Running) -> (Samples, tokio::task::JoinHandle<()>) {
    let samples = Arc::new(Mutex::new(Vec::new()));
    let s = samples.clone();
    let rx = out.progress.clone();
    let h = tokio::spawn(async move {
        loop {
            s.lock().unwrap().push((Instant::now(), *rx.borrow()));
            if rx.has_changed().is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    (samples, h)
}

fn blocking<T>(f: impl FnOnce() -> T) -> T {
    tokio::task::block_in_place(f)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_stopped_for_5s_every_event_arrives_at_least_once() {
    let mut sng = SyslogNg::start();
    let resend = 256 * 1024;
    let replay = 1024 * 1024;
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\nresend_bytes = {resend}\nreplay_buffer_bytes = {replay}\nreconnect_delay_max = \"1s\"",
        sng.tcp_port
    ));
    let total = 16_000;
    // ~2000 events/s: the outage overlaps the stream, and the 1 MiB replay buffer fills while the
    // receiver is down, so the producer is held back (backpressure) instead of losing anything.
    let producer = produce(&out, total, 20, Duration::from_millis(10));
    let (samples, sampler) = sample_progress(&out);

    tokio::time::sleep(Duration::from_secs(2)).await;
    blocking(|| sng.stop());
    let stopped_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let during_outage = out.stats.snapshot();
    assert!(
        !during_outage.up,
        "the output noticed the receiver was gone: {during_outage:?}"
    );
    assert!(during_outage.buffered_bytes > 0);
    blocking(|| sng.restart());
    producer.await.unwrap();

    let (progress, stats) = out.finish(Duration::from_secs(60)).await;
    sampler.await.unwrap();
    assert_eq!(
        progress, total,
        "after a clean stop everything is delivered"
    );
    let records = blocking(|| sng.wait_quiet(Duration::from_secs(1), Duration::from_secs(60)));
    let counts = count_by_seq(&records);
    let missing: Vec<u64> = (1..=total).filter(|s| !counts.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} events lost, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );

    let s = stats.snapshot();
    let duplicates = records.len() as u64 - total;
    assert!(s.reconnects >= 1, "{s:?}");
    assert!(
        duplicates <= s.resent,
        "every duplicate is counted: {duplicates} > {s:?}"
    );
    // Only frames still held can be resent: the acknowledged tail plus the unacknowledged part.
    let min_frame = cef(1).len() as u64;
    assert!(
        s.resent <= (resend + replay) as u64 / min_frame,
        "resent {} exceeds the replay bound",
        s.resent
    );

    // The progress reported while the receiver was down never moved past what it had. The
    // first second is left out: acknowledgements from before the stop may still be taken in
    // late on a loaded machine.
    let samples = samples.lock().unwrap();
    let in_outage: Vec<u64> = samples
        .iter()
        .filter(|(t, _)| {
            *t > stopped_at + Duration::from_secs(1) && *t < stopped_at + Duration::from_secs(5)
        })
        .map(|(_, p)| *p)
        .collect();
    assert!(!in_outage.is_empty());
    assert_eq!(
        in_outage.first(),
        in_outage.last(),
        "progress stalled while the receiver was down"
    );
    assert!(
        samples.windows(2).all(|w| w[0].1 <= w[1].1),
        "progress never goes back"
    );
}

/// Freezes the receiver (it stops reading; its kernel still acknowledges what fits in the socket
/// buffer), then kills it: acknowledged-but-unread events are gone from the receiver. Returns
/// (progress at the kill, events the receiver got, output stats).
async fn freeze_then_kill(
    resend_bytes: usize,
) -> (
    u64,
    Vec<serde_json::Value>,
    u64,
    estreamer_cef::output::OutputStatsSnapshot,
) {
    let mut sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\nresend_bytes = {resend_bytes}\nreconnect_delay_max = \"1s\"",
        sng.tcp_port
    ));
    let total = 8_000;
    let producer = produce(&out, total, 20, Duration::from_millis(10));
    tokio::time::sleep(Duration::from_millis(1500)).await;
    sng.freeze();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let progress_at_kill = out.progress();
    blocking(|| sng.kill());
    tokio::time::sleep(Duration::from_millis(500)).await;
    blocking(|| sng.restart());
    producer.await.unwrap();
    let (progress, stats) = out.finish(Duration::from_secs(60)).await;
    assert_eq!(progress, total);
    let records = blocking(|| sng.wait_quiet(Duration::from_secs(1), Duration::from_secs(60)));
    (progress_at_kill, records, total, stats.snapshot())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receiver_killed_with_unread_data_progress_never_claimed_a_lost_event() {
    let (progress_at_kill, records, total, s) = freeze_then_kill(4 << 20).await;
    assert!(progress_at_kill > 0);
    let counts = count_by_seq(&records);
    let lost: Vec<u64> = (1..=progress_at_kill)
        .filter(|q| !counts.contains_key(q))
        .collect();
    assert!(
        lost.is_empty(),
        "progress had claimed {progress_at_kill}, but {} of those never arrived: {:?}",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    let missing: Vec<u64> = (1..=total).filter(|q| !counts.contains_key(q)).collect();
    assert!(missing.is_empty(), "{} events lost", missing.len());
    assert!(records.len() as u64 - total <= s.resent, "{s:?}");
    assert!(s.reconnects >= 1);
}

/// Control for the test above: without the resend tail, the same crash loses events the TCP
/// acknowledgement had already covered. This is why `resend_bytes` exists, and it
/// shows the test above is able to fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_without_resend_tail_a_receiver_crash_loses_acknowledged_events() {
    let (progress_at_kill, records, _total, _) = freeze_then_kill(0).await;
    let counts = count_by_seq(&records);
    let lost = (1..=progress_at_kill)
        .filter(|q| !counts.contains_key(q))
        .count();
    assert!(
        lost > 0,
        "expected the killed receiver to lose acknowledged but unread events"
    );
}

/// A receiver that accepts but does not read: progress stops at what its kernel acknowledged
/// (all of which sits in its socket buffer), the output stops taking batches once its replay
/// buffer is full, and once the receiver reads, everything arrives exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_is_bounded_by_tcp_acknowledgements_and_a_full_buffer_stops_intake() {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(32 * 1024).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = sock.local_addr().unwrap().port();
    let listener = sock.listen(8).unwrap();
    let out = Running::start_with_queue(
        &format!(
            "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {port}\nframing = \"octet-counting\"\nreplay_buffer_bytes = 262144"
        ),
        1,
    );
    let (mut conn, _) = listener.accept().await.unwrap();

    // Feed until the output stops taking batches.
    let all = batches(1, 20_000, 50);
    let mut taken = 0u64;
    let mut pending = all.into_iter().peekable();
    let tx = out.tx.clone().unwrap();
    while let Some(b) = pending.peek() {
        let last = b.events.last().unwrap().seq;
        match tokio::time::timeout(Duration::from_secs(1), tx.reserve()).await {
            Ok(permit) => {
                permit.unwrap().send(pending.next().unwrap());
                taken = last;
            }
            Err(_) => break,
        }
    }
    drop(tx);
    assert!(
        taken < 20_000,
        "the output kept taking events although nothing was read"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    let progress = out.progress();
    let stats = out.stats.snapshot();
    assert!(
        progress < taken,
        "progress {progress} claims events still unacknowledged (taken {taken})"
    );
    assert!(stats.buffered_bytes > 0);

    // Everything the receiver's kernel acknowledged is in its socket buffer, unread: read
    // exactly that and check it covers every event progress claimed.
    let mut queued: libc::c_int = 0;
    // SAFETY: FIONREAD writes one c_int.
    unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&conn),
            libc::FIONREAD,
            &mut queued,
        )
    };
    let mut buf = vec![0u8; queued as usize];
    conn.read_exact(&mut buf).await.unwrap();
    let mut seqs = Vec::new();
    let mut rest = &buf[..];
    while let Some((msg, used)) = parse(WireFraming::OctetCounting, rest, 1 << 20).unwrap() {
        seqs.push(seq_in(msg));
        rest = &rest[used..];
    }
    let leftover = rest.to_vec();
    let highest_received = seqs.last().copied().unwrap_or(0);
    assert!(
        progress <= highest_received,
        "progress {progress} > highest event in the receiver's buffer {highest_received}"
    );

    // Now read everything, send the rest, and stop.
    let reader = tokio::spawn(async move {
        let mut data = leftover;
        let mut chunk = vec![0u8; 65536];
        loop {
            let n = conn.read(&mut chunk).await.unwrap();
            if n == 0 {
                break;
            }
            data.extend_from_slice(&chunk[..n]);
        }
        data
    });
    for b in pending {
        out.send(b).await;
    }
    let (progress, stats) = out.finish(Duration::from_secs(30)).await;
    assert_eq!(progress, 20_000);
    let data = reader.await.unwrap();
    let mut rest = &data[..];
    while let Some((msg, used)) = parse(WireFraming::OctetCounting, rest, 1 << 20).unwrap() {
        seqs.push(seq_in(msg));
        rest = &rest[used..];
    }
    assert!(rest.is_empty());
    let first_wrong = seqs.iter().enumerate().find(|(i, s)| **s != *i as u64 + 1);
    assert_eq!(first_wrong, None, "every event exactly once, in order");
    assert_eq!(seqs.len(), 20_000);
    assert_eq!(stats.snapshot().resent, 0);
}

fn seq_in(msg: &[u8]) -> u64 {
    let text = std::str::from_utf8(msg).unwrap();
    let at = text.find("externalId=").unwrap() + "externalId=".len();
    text[at..].split(' ').next().unwrap().parse().unwrap()
}
