//! The syslog outputs against a real receiver: syslog-ng 3.38 with the CEF parsed by `cefp`.
//! Every message must arrive exactly once, with the syslog header we meant and a CEF extension
//! that an independent parser reads back to the values we encoded.

#[path = "support/syslog_events.rs"]
mod syslog_events;
#[path = "support/syslog_ng.rs"]
mod syslog_ng;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use estreamer_cef::output::{Batch, OutEvent};
use syslog_events::*;
use syslog_ng::SyslogNg;

/// syslog severity name syslog-ng reports for a CEF severity under the default map.
fn severity_name(cef_sev: u64) -> &'static str {
    match cef_sev {
        0..=3 => "info",
        4..=6 => "notice",
        7..=8 => "warning",
        _ => "crit",
    }
}

fn pri(cef_sev: u64) -> String {
    let sev = match cef_sev {
        0..=3 => 6,
        4..=6 => 5,
        7..=8 => 4,
        _ => 2,
    };
    (16 * 8 + sev).to_string()
}

/// Checks that `records` are exactly events `from..=to`, once each, fully intact.
fn assert_all_intact(
    records: &[serde_json::Value],
    from: u64,
    to: u64,
    listener: &str,
    host: &str,
) {
    let mut count: BTreeMap<u64, usize> = BTreeMap::new();
    for r in records {
        assert!(
            r["cef"].get("error").is_none(),
            "cefp rejected a message: {r}"
        );
        assert!(
            r["cefhdr"].get("error").is_none(),
            "no CEF header found: {r}"
        );
        let seq = seq_of(r);
        *count.entry(seq).or_default() += 1;
        assert_eq!(r["syslog"]["listener"], listener, "{r}");
        assert_eq!(r["syslog"]["host"], host, "{r}");
        assert_eq!(r["syslog"]["app"], "estreamer-cef", "{r}");
        assert_eq!(r["syslog"]["msgid"], "INTRUSION", "{r}");
        assert_eq!(r["syslog"]["facility"], "local0", "{r}");
        assert_eq!(r["syslog"]["severity"], severity_name(seq % 11), "{r}");
        assert_eq!(r["syslog"]["pri"], pri(seq % 11).as_str(), "{r}");
        assert_eq!(
            r["syslog"]["procid"],
            std::process::id().to_string().as_str(),
            "{r}"
        );
        assert_eq!(r["cef"]["vendor"], VENDOR);
        assert_eq!(
            r["cef"]["name"], NAME_PLAIN,
            "header escapes must round-trip: {r}"
        );
        assert_eq!(r["cefhdr"]["name"], NAME_PLAIN, "{r}");
        assert_eq!(r["cef"]["severity"], (seq % 11).to_string().as_str());
        assert_eq!(ext_of(r), expected_ext(seq), "extension of event {seq}");
    }
    let missing: Vec<u64> = (from..=to).filter(|s| !count.contains_key(s)).collect();
    assert!(
        missing.is_empty(),
        "{} events never arrived, e.g. {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    let dups: Vec<(&u64, &usize)> = count.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        dups.is_empty(),
        "duplicates without any reconnect: {:?}",
        &dups[..dups.len().min(10)]
    );
    assert_eq!(records.len() as u64, to - from + 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_octet_counting_delivers_each_event_once_intact() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\nhostname = \"fwd01.example\"",
        sng.tcp_port
    ));
    out.send_all(batches(1, 1000, 100)).await;
    let (progress, stats) = out.finish(Duration::from_secs(30)).await;
    assert_eq!(progress, 1000, "a clean stop reports everything delivered");
    let records = sng.wait_for(1000, Duration::from_secs(20));
    assert_all_intact(&records, 1, 1000, "s_tcp", "fwd01.example");
    let s = stats.snapshot();
    assert_eq!(
        (s.sent, s.resent, s.reconnects, s.errors, s.truncated),
        (1000, 0, 0, 0, 0),
        "{s:?}"
    );
    assert_eq!(s.buffered_bytes, 0);
    assert!(
        !sng.log_text().contains("Invalid frame header"),
        "{}",
        sng.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_lf_framing_to_a_line_reader() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"lf\"\nhostname = \"fwd01.example\"",
        sng.lf_port
    ));
    out.send_all(batches(1, 300, 50)).await;
    // A raw line break that slipped past CEF escaping must not split the event in two.
    let mut bad = event(301);
    bad.cef = bad
        .cef
        .replace("msg=line1\\nline2", "msg=line1\nline2")
        .into();
    out.send(Arc::new(Batch {
        events: vec![bad],
        fmc: 0,
    }))
    .await;
    let (progress, stats) = out.finish(Duration::from_secs(30)).await;
    assert_eq!(progress, 301);
    let records = sng.wait_for(301, Duration::from_secs(20));
    assert_eq!(stats.snapshot().newlines_replaced, 1);
    let (last, rest): (Vec<_>, Vec<_>) = records
        .into_iter()
        .partition(|r| r["cef"]["ext"]["externalId"] == "301");
    assert_all_intact(&rest, 1, 300, "s_lf", "fwd01.example");
    assert_eq!(
        last.len(),
        1,
        "the event with a raw LF arrived as one message"
    );
    assert_eq!(ext_of(&last[0])["msg"], "line1 line2 x=y back\\slash #301");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_one_datagram_per_event() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {}\nhostname = \"fwd01.example\"",
        sng.udp_port
    ));
    // Paced: UDP has no flow control, and this test is about content, not about overrunning the receiver.
    for b in batches(1, 300, 20) {
        out.send(b).await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let (progress, stats) = out.finish(Duration::from_secs(10)).await;
    assert_eq!(progress, 300);
    let records = sng.wait_for(300, Duration::from_secs(20));
    assert_all_intact(&records, 1, 300, "s_udp", "fwd01.example");
    assert_eq!(stats.snapshot().sent, 300);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_octet_counting_with_verified_certificate() {
    let sng = SyslogNg::start();
    for host in ["127.0.0.1", "localhost"] {
        let out = Running::start(&format!(
            "transport = \"tls\"\nhost = \"{host}\"\nport = {}\nframing = \"octet-counting\"\nserver_ca = \"{}\"\nhostname = \"fwd01.example\"",
            sng.tls_port,
            sng.ca_pem.display()
        ));
        let base = if host == "localhost" { 1000 } else { 0 };
        out.send_all(batches(base + 1, base + 500, 64)).await;
        let (progress, stats) = out.finish(Duration::from_secs(30)).await;
        assert_eq!(progress, base + 500, "{host}");
        let s = stats.snapshot();
        assert_eq!(
            (s.sent, s.errors, s.reconnects),
            (500, 0, 0),
            "{host}: {s:?}"
        );
    }
    let records = sng.wait_for(1000, Duration::from_secs(20));
    let (first, second): (Vec<_>, Vec<_>) = records.into_iter().partition(|r| seq_of(r) <= 500);
    assert_all_intact(&first, 1, 500, "s_tls", "fwd01.example");
    assert_all_intact(&second, 1001, 1500, "s_tls", "fwd01.example");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_cap_600_bytes_truncates_long_values_and_stays_parseable() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {}\nmax_message_bytes = 600\nbom = true",
        sng.udp_port
    ));
    let events: Vec<OutEvent> = (1..=60u64).map(long_event).collect();
    // <PRI>1 TIMESTAMP HOSTNAME APP PROCID MSGID SD BOM
    let header = 7
        + 27
        + format!(
            " test-host.example estreamer-cef {} - - ",
            std::process::id()
        )
        .len()
        + 3;
    let long_ones = events.iter().filter(|e| header + e.cef.len() > 600).count() as u64;
    assert!(long_ones > 30, "the test needs oversize events");
    for chunk in events.chunks(10) {
        out.send(Arc::new(Batch {
            events: chunk.to_vec(),
            fmc: 0,
        }))
        .await;
        tokio::time::sleep(Duration::from_millis(15)).await;
    }
    let (progress, stats) = out.finish(Duration::from_secs(10)).await;
    assert_eq!(progress, 60);
    let s = stats.snapshot();
    assert_eq!(s.truncated, long_ones, "{s:?}");
    assert_eq!(s.dropped_oversize, 0);
    let records = sng.wait_for(60, Duration::from_secs(20));
    assert_eq!(records.len(), 60);
    for r in &records {
        assert!(
            r["cef"].get("error").is_none(),
            "cefp rejected a truncated message: {r}"
        );
        let seq = seq_of(r);
        let ext = ext_of(r);
        let want = long_expected(seq);
        assert_eq!(
            ext.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "every key survives"
        );
        for (k, v) in &want {
            assert!(
                v.starts_with(&ext[k]),
                "{k}: {:?} is not a prefix of {v:?}",
                ext[k]
            );
        }
        assert_eq!(
            ext["externalId"],
            seq.to_string(),
            "short values are not cut"
        );
        assert_eq!(ext["src"], "10.0.0.1");
        assert_eq!(r["cef"]["name"], NAME_PLAIN, "the CEF header is never cut");
        // the whole syslog message (as syslog-ng saw it) fits: header + BOM + CEF <= 600
        let msg_bytes = r["syslog"]["msg"].as_str().unwrap().len();
        assert!(msg_bytes <= 600, "{msg_bytes}");
    }
}

/// An event whose free-text values grow with `seq` (escapes and multi-byte text at every length).
fn long_event(seq: u64) -> OutEvent {
    let msg = "Grüße \\= 日本 \\\\ x".repeat(seq as usize);
    let url = format!("http://h.example/p?q\\={}", "ä".repeat(seq as usize * 3));
    OutEvent {
        seq,
        cef: format!(
            "CEF:0|{VENDOR}|Firepower|7.2.5|1:2000:3|{NAME_ESCAPED}|5|externalId={seq} src=10.0.0.1 msg={msg} request={url} dpt=443"
        )
        .into(),
        cef_severity: 5,
        msgid: "-",
    }
}

fn long_expected(seq: u64) -> BTreeMap<String, String> {
    [
        ("externalId", seq.to_string()),
        ("src", "10.0.0.1".to_string()),
        ("msg", "Grüße = 日本 \\ x".repeat(seq as usize)),
        (
            "request",
            format!("http://h.example/p?q={}", "ä".repeat(seq as usize * 3)),
        ),
        ("dpt", "443".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tcp_oversize_event_is_truncated_and_the_connection_survives() {
    let sng = SyslogNg::start();
    // syslog-ng closes the connection on a frame above log-msg-size (65536): cap below it.
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\n",
        sng.tcp_port
    ));
    let mut big = event(2);
    big.cef = big
        .cef
        .replace("msg=line1", &format!("msg={}line1", "ü".repeat(40_000)))
        .into();
    out.send(Arc::new(Batch {
        events: vec![event(1), big, event(3)],
        fmc: 0,
    }))
    .await;
    let (progress, stats) = out.finish(Duration::from_secs(20)).await;
    assert_eq!(progress, 3);
    let records = sng.wait_for(3, Duration::from_secs(20));
    assert_eq!(
        records.iter().map(seq_of).collect::<Vec<_>>(),
        vec![1, 2, 3],
        "event 3 arrived on the same connection"
    );
    let s = stats.snapshot();
    assert_eq!((s.truncated, s.reconnects), (1, 0), "{s:?}");
    let msg = ext_of(&records[1])["msg"].clone();
    assert!(
        msg.starts_with("üüü") && msg.chars().all(|c| c == 'ü'),
        "the longest value was cut"
    );
    assert!(records[1]["syslog"]["msg"].as_str().unwrap().len() <= 8192);
    assert!(!sng.log_text().contains("larger than log_msg_size"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rfc3164_over_tcp() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"octet-counting\"\nformat = \"rfc3164\"\nhostname = \"fwd01\"\nfacility = \"user\"",
        sng.tcp_port
    ));
    out.send_all(batches(1, 50, 25)).await;
    let (progress, _) = out.finish(Duration::from_secs(20)).await;
    assert_eq!(progress, 50);
    let records = sng.wait_for(50, Duration::from_secs(20));
    assert_eq!(records.len(), 50);
    for r in &records {
        let seq = seq_of(r);
        assert_eq!(r["syslog"]["host"], "fwd01");
        assert_eq!(r["syslog"]["app"], "estreamer-cef");
        assert_eq!(r["syslog"]["facility"], "user");
        assert_eq!(r["syslog"]["severity"], severity_name(seq % 11));
        assert_eq!(ext_of(r), expected_ext(seq));
        assert_eq!(r["cef"]["name"], NAME_PLAIN);
        assert!(r["cef"].get("bom_in_msg").is_none(), "no BOM in RFC 3164");
    }
}

/// LF framing sent to syslog-ng's octet-counting `syslog()` port: syslog-ng reads the first
/// bytes, says "Invalid frame header" and closes. Its kernel had acknowledged the data, but
/// nothing may be reported as delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_rejecting_the_framing_is_never_reported_as_delivered() {
    let sng = SyslogNg::start();
    let out = Running::start(&format!(
        "transport = \"tcp\"\nhost = \"127.0.0.1\"\nport = {}\nframing = \"lf\"\nshutdown_timeout = \"1s\"\nreconnect_delay_max = \"500ms\"",
        sng.tcp_port
    ));
    out.send_all(batches(1, 100, 50)).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(out.progress(), 0);
    let (progress, stats) = out.finish(Duration::from_secs(10)).await;
    assert_eq!(progress, 0, "nothing was delivered");
    let s = stats.snapshot();
    assert!(
        s.errors >= 2 && !s.up,
        "rejected again and again, never up: {s:?}"
    );
    assert!(sng.log_text().contains("Invalid frame header"));
    assert!(
        sng.records().iter().all(|r| r["cef"].get("ext").is_none()),
        "no CEF event got through"
    );
}

/// The same cap seen from a plain socket: every datagram is at most 600 bytes, valid UTF-8, a
/// well-formed RFC 5424 message with the CEF header and every key intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_datagrams_never_exceed_the_cap() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let out = Running::start(&format!(
        "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {port}\nmax_message_bytes = 600"
    ));
    let events: Vec<OutEvent> = (1..=60u64).map(long_event).collect();
    let receiver = tokio::spawn(async move {
        let mut got = Vec::new();
        let mut buf = vec![0u8; 70_000];
        while got.len() < 60 {
            let n = tokio::time::timeout(Duration::from_secs(10), sock.recv(&mut buf))
                .await
                .expect("datagram")
                .unwrap();
            got.push(buf[..n].to_vec());
        }
        got
    });
    for chunk in events.chunks(10) {
        out.send(Arc::new(Batch {
            events: chunk.to_vec(),
            fmc: 0,
        }))
        .await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (_, stats) = out.finish(Duration::from_secs(10)).await;
    let datagrams = receiver.await.unwrap();
    let mut truncated = 0;
    for d in &datagrams {
        assert!(d.len() <= 600, "datagram of {} bytes", d.len());
        let text = std::str::from_utf8(d).expect("truncation never splits a UTF-8 character");
        let m = syslog_loose::parse_message(text, syslog_loose::Variant::RFC5424);
        let cef_text = m.msg.trim_start_matches('\u{feff}');
        let seq: u64 = cef_text
            .split("externalId=")
            .nth(1)
            .unwrap()
            .split(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        let full = long_event(seq).cef;
        assert!(cef_text.starts_with(&format!("CEF:0|{VENDOR}|Firepower|7.2.5|1:2000:3|{NAME_ESCAPED}|5|externalId={seq} src=10.0.0.1 msg=")));
        assert!(
            cef_text.contains(" request=http://h.example/p?q") && cef_text.ends_with(" dpt=443"),
            "{cef_text}"
        );
        if cef_text != &*full {
            truncated += 1;
        }
    }
    assert!(truncated > 30);
    assert_eq!(stats.snapshot().truncated, truncated);
}

/// `oversize = "send"` with a message no datagram can carry: it is dropped and counted, and the
/// output goes on (instead of retrying it forever).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_send_policy_skips_a_message_larger_than_any_datagram() {
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let port = sock.local_addr().unwrap().port();
    let out = Running::start(&format!(
        "transport = \"udp\"\nhost = \"127.0.0.1\"\nport = {port}\noversize = \"send\""
    ));
    let mut huge = event(1);
    huge.cef = format!("{} cs1={}", huge.cef, "x".repeat(70_000)).into();
    out.send(Arc::new(Batch {
        events: vec![huge, event(2)],
        fmc: 0,
    }))
    .await;
    let (progress, stats) = out.finish(Duration::from_secs(10)).await;
    assert_eq!(progress, 2);
    let s = stats.snapshot();
    assert_eq!((s.dropped_oversize, s.sent), (1, 1), "{s:?}");
    let mut buf = vec![0u8; 70_000];
    let n = tokio::time::timeout(Duration::from_secs(5), sock.recv(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert!(
        std::str::from_utf8(&buf[..n])
            .unwrap()
            .contains("externalId=2 ")
    );
}
