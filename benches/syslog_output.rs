//! Syslog output throughput: encoding alone, and end to end over TCP and TLS to a local reader
//! that only counts bytes. Target (whole pipeline): 200,000 events/s over TLS on 2 vCPUs.

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estreamer_cef::output::{Batch, FrameEncoder, OutEvent, Output, OutputConfig, OutputStats};
use openssl::asn1::Asn1Time;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod};
use openssl::x509::{X509, X509NameBuilder};
use tokio::io::AsyncReadExt;

fn event(seq: u64) -> OutEvent {
    OutEvent {
        seq,
        cef: format!(
            "CEF:0|Cisco|Firepower|7.2.5|1:2000:3|ET POLICY Suspicious inbound to mySQL port 3306|7|rt=1714559696123 \
             externalId={seq} src=10.0.0.1 spt=51515 dst=192.0.2.7 dpt=3306 proto=TCP act=Blocked \
             cs1Label=Access Control Policy cs1=Default Policy cs2Label=Rule cs2=Block DB \
             cs3Label=Ingress Zone cs3=outside cs4Label=Egress Zone cs4=inside dvchost=sensor-01.example.com \
             msg=ET POLICY Suspicious inbound to mySQL port 3306 suser=Jörg"
        )
        .into(),
        cef_severity: 7,
        msgid: "INTRUSION",
    }
}

const BATCH: usize = 500;

fn batches(n_batches: usize) -> Vec<Arc<Batch>> {
    (0..n_batches)
        .map(|b| {
            Arc::new(Batch {
                events: (0..BATCH)
                    .map(|i| event((b * BATCH + i + 1) as u64))
                    .collect(),
                fmc: 0,
            })
        })
        .collect()
}

fn encode(c: &mut Criterion) {
    let cfg: OutputConfig = toml::from_str(
        "transport = \"tls\"\nhost = \"h\"\nframing = \"octet-counting\"\nbom = true",
    )
    .unwrap();
    let mut enc = FrameEncoder::for_output(&cfg, "fwd01.example.com");
    let events: Vec<OutEvent> = (1..=BATCH as u64).map(event).collect();
    let mut out = Vec::with_capacity(1 << 20);
    let mut g = c.benchmark_group("syslog_encode");
    g.throughput(Throughput::Elements(BATCH as u64));
    g.bench_function("rfc5424_octet_counting_batch", |b| {
        b.iter(|| {
            out.clear();
            enc.set_time(std::time::SystemTime::now());
            for e in &events {
                enc.encode(e, &mut out);
            }
            out.len()
        })
    });
    g.finish();
}

fn self_signed() -> (X509, PKey<openssl::pkey::Private>) {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, "localhost").unwrap();
    let n = n.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&n).unwrap();
    b.set_issuer_name(&n).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, MessageDigest::sha256()).unwrap();
    (b.build(), key)
}

/// A receiver that reads and discards (plain TCP or TLS).
async fn sink(tls: bool) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let acceptor = if tls {
        let (cert, key) = self_signed();
        let mut b = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
        b.set_certificate(&cert).unwrap();
        b.set_private_key(&key).unwrap();
        Some(Arc::new(b.build()))
    } else {
        None
    };
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 1 << 20];
                match acceptor {
                    None => {
                        let mut tcp = tcp;
                        while tcp.read(&mut buf).await.unwrap_or(0) > 0 {}
                    }
                    Some(a) => {
                        let ssl = openssl::ssl::Ssl::new(a.context()).unwrap();
                        let mut s = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
                        if std::pin::Pin::new(&mut s).accept().await.is_err() {
                            return;
                        }
                        while s.read(&mut buf).await.unwrap_or(0) > 0 {}
                    }
                }
            });
        }
    });
    port
}

/// Events per second through one long-lived output (connection kept across iterations, as in
/// service), timed until every event of the iteration is written to the connection.
fn end_to_end(c: &mut Criterion) {
    let mut g = c.benchmark_group("syslog_output");
    g.sample_size(10);
    g.measurement_time(Duration::from_secs(10));
    for transport in ["tcp", "tls"] {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let port = rt.block_on(sink(transport == "tls"));
        let extra = if transport == "tls" {
            "server_ca = \"insecure\"\n"
        } else {
            ""
        };
        let cfg: OutputConfig = toml::from_str(&format!(
            "transport = \"{transport}\"\nhost = \"127.0.0.1\"\nport = {port}\nframing = \"octet-counting\"\n{extra}"
        ))
        .unwrap();
        let stats = Arc::new(OutputStats::default());
        let (tx, rx) = tokio::sync::mpsc::channel(8);
        let (ptx, _prx) = tokio::sync::watch::channel(0);
        let output = Output::new(&cfg, "bench", "fwd01.example.com").unwrap();
        let handle = {
            let _guard = rt.enter();
            output.spawn(rx, ptx, stats.clone())
        };
        let n_batches = 200;
        let per_iter = (n_batches * BATCH) as u64;
        g.throughput(Throughput::Elements(per_iter));
        let input = batches(n_batches);
        g.bench_function(format!("{transport}_100k_events"), |b| {
            b.iter_custom(|iters| {
                let mut total = Duration::ZERO;
                for _ in 0..iters {
                    let input = input.clone();
                    let tx = tx.clone();
                    let stats = stats.clone();
                    total += rt.block_on(async move {
                        let target =
                            stats.sent.load(std::sync::atomic::Ordering::Relaxed) + per_iter;
                        let start = Instant::now();
                        for b in input {
                            tx.send(b).await.unwrap();
                        }
                        while stats.sent.load(std::sync::atomic::Ordering::Relaxed) < target {
                            tokio::time::sleep(Duration::from_micros(200)).await;
                        }
                        start.elapsed()
                    });
                }
                total
            })
        });
        drop(tx);
        rt.block_on(handle).unwrap();
    }
    g.finish();
}

criterion_group!(benches, encode, end_to_end);
criterion_main!(benches);
