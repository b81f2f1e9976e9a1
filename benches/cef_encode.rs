//! CEF encoding speed: a connection-like line (about 40 pairs, mostly numbers, addresses and
//! short names, as mapped from an eStreamer connection record) and an intrusion-like line (rule
//! message with escapes in the name, URL and message values that need escaping).
//! Target (with mapping): 1,000,000 connection lines per second per core.
//!
//! Run: `cargo bench --bench cef_encode`; criterion reports lines/s as "elem/s".

use std::hint::black_box;
use std::net::IpAddr;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use estreamer_cef::cef::{AddressKeys, CefEncoder, Key};

fn k(name: &str) -> Key {
    Key::new(name).unwrap()
}

struct ConnectionKeys {
    src: AddressKeys,
    dst: AddressKeys,
    numbers: Vec<(Key, u64)>,
    texts: Vec<(Key, &'static str)>,
    rt: Key,
    start: Key,
    end: Key,
    smac: Key,
    dmac: Key,
}

fn connection_keys() -> ConnectionKeys {
    let numbers = [
        ("spt", 51515),
        ("dpt", 443),
        ("in", 18_734),
        ("out", 1_250_331),
        ("cnt", 1),
        ("deviceDirection", 0),
        ("cn1", 7),
        ("cn2", 1042),
        ("cn3", 268_435_456),
        ("type", 0),
        ("dvcpid", 0),
    ];
    let texts = [
        ("proto", "TCP"),
        ("app", "HTTPS"),
        ("act", "Allow"),
        ("outcome", "success"),
        ("cat", "Connection"),
        ("deviceInboundInterface", "inside"),
        ("deviceOutboundInterface", "outside"),
        ("dvchost", "ftd-01.example.net"),
        ("externalId", "1714559696:42:1337"),
        ("suser", "jdoe"),
        ("shost", "ws-0042.corp.example"),
        ("dhost", "www.example.com"),
        ("requestClientApplication", "Firefox"),
        ("cs1Label", "Access Control Policy"),
        ("cs1", "Default Corporate Policy"),
        ("cs2Label", "Access Control Rule"),
        ("cs2", "Allow Web"),
        ("cs3Label", "Ingress Zone"),
        ("cs3", "INSIDE"),
        ("cs4Label", "Egress Zone"),
        ("cs4", "OUTSIDE"),
        ("cn1Label", "Security Intelligence Category"),
        ("cn2Label", "Client Application Id"),
        ("cn3Label", "Monitor Rule"),
    ];
    ConnectionKeys {
        src: AddressKeys::source(),
        dst: AddressKeys::destination(),
        numbers: numbers.iter().map(|&(n, v)| (k(n), v)).collect(),
        texts: texts.iter().map(|&(n, v)| (k(n), v)).collect(),
        rt: k("rt"),
        start: k("start"),
        end: k("end"),
        smac: k("smac"),
        dmac: k("dmac"),
    }
}

fn encode_connection(enc: &mut CefEncoder, buf: &mut Vec<u8>, keys: &ConnectionKeys) {
    let src = IpAddr::from([10, 1, 2, 3]);
    let dst = IpAddr::from([192, 0, 2, 77]);
    buf.clear();
    let mut line = enc.begin(buf, "71:1:0", "Connection Statistics", 3);
    line.timestamp(&keys.rt, 1_714_559_696, 123_456)
        .timestamp(&keys.start, 1_714_559_600, 0)
        .timestamp(&keys.end, 1_714_559_696, 0)
        .address(&keys.src, black_box(src))
        .address(&keys.dst, black_box(dst))
        .mac(&keys.smac, [0x00, 0x0d, 0x60, 0xaf, 0x1b, 0x61])
        .mac(&keys.dmac, [0x00, 0x50, 0x56, 0x01, 0x02, 0x03]);
    for (key, v) in &keys.numbers {
        line.uint(key, black_box(*v));
    }
    for (key, v) in &keys.texts {
        line.text(key, black_box(v));
    }
    black_box(line.finish());
}

struct IntrusionKeys {
    src: AddressKeys,
    dst: AddressKeys,
    spt: Key,
    dpt: Key,
    texts: Vec<(Key, &'static str)>,
    rt: Key,
    suser: Key,
}

fn intrusion_keys() -> IntrusionKeys {
    let texts = [
        ("proto", "TCP"),
        ("app", "HTTP"),
        ("act", "Would Be Blocked"),
        ("cat", "A Network Trojan was Detected"),
        ("request", "http://h.example/cgi-bin/x.cgi?a=1&b=2&c=%3D%3D"),
        (
            "requestClientApplication",
            "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ),
        ("msg", "line1\nline2 x=y back\\slash"),
        ("dvchost", "ftd-01.example.net"),
        ("externalId", "1714559696:42:99"),
        ("cs1Label", "Rule Message"),
        ("cs1", "ET TROJAN Possible | pipe \\ backslash = equals"),
        ("cs2Label", "Intrusion Policy"),
        ("cs2", "Balanced Security and Connectivity"),
        ("cs3Label", "Classification"),
        ("cs3", "trojan-activity"),
    ];
    IntrusionKeys {
        src: AddressKeys::source(),
        dst: AddressKeys::destination(),
        spt: k("spt"),
        dpt: k("dpt"),
        texts: texts.iter().map(|&(n, v)| (k(n), v)).collect(),
        rt: k("rt"),
        suser: k("suser"),
    }
}

fn encode_intrusion(enc: &mut CefEncoder, buf: &mut Vec<u8>, keys: &IntrusionKeys) {
    let src = IpAddr::from([0x2001, 0xdb8, 0, 0, 0, 0, 0, 1]);
    let dst = IpAddr::from([0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0207]);
    buf.clear();
    let mut line = enc.begin(
        buf,
        "1:2000:3",
        black_box("ET POLICY a | b \\ c = d (Überwachung 日本)"),
        7,
    );
    line.timestamp(&keys.rt, 1_714_559_696, 123_456)
        .address(&keys.src, black_box(src))
        .address(&keys.dst, black_box(dst))
        .int(&keys.spt, 51515)
        .int(&keys.dpt, 80)
        .bytes_lossy(&keys.suser, black_box(b"J\xc3\xb6rg"));
    for (key, v) in &keys.texts {
        line.text(key, black_box(v));
    }
    black_box(line.finish());
}

fn bench(c: &mut Criterion) {
    let mut enc = CefEncoder::default();
    let mut buf = Vec::with_capacity(4096);

    let conn = connection_keys();
    encode_connection(&mut enc, &mut buf, &conn);
    let conn_bytes = buf.len();
    let pairs = buf.iter().filter(|&&b| b == b'=').count();
    eprintln!("connection line: {conn_bytes} bytes, {pairs} pairs");

    let ids = intrusion_keys();
    encode_intrusion(&mut enc, &mut buf, &ids);
    eprintln!("intrusion line: {} bytes", buf.len());

    let mut g = c.benchmark_group("cef_encode");
    g.throughput(Throughput::Elements(1));
    g.bench_function("connection_line", |b| {
        b.iter(|| encode_connection(&mut enc, &mut buf, &conn))
    });
    g.bench_function("intrusion_line", |b| {
        b.iter(|| encode_intrusion(&mut enc, &mut buf, &ids))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
