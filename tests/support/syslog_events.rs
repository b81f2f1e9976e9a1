//! Test events for the syslog outputs, and a handle on a running output.
//!
//! Every event carries its sequence number as `externalId`, so what a receiver got can be matched
//! with what was sent. The extension holds the values that break naive senders and parsers:
//! escaped `=`, `\`, newline, raw `|`, non-ASCII text.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use estreamer_cef::output::{Batch, OutEvent, Output, OutputConfig, OutputStats};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

pub const VENDOR: &str = "Cisco";
pub const NAME_ESCAPED: &str = "ET POLICY a \\| b \\\\ c = d (Überwachung 日本)";
pub const NAME_PLAIN: &str = "ET POLICY a | b \\ c = d (Überwachung 日本)";

/// The CEF line of event `seq` (escaped as our encoder writes it).
pub fn cef(seq: u64) -> String {
    format!(
        "CEF:0|{VENDOR}|Firepower|7.2.5|1:2000:3|{NAME_ESCAPED}|{}|externalId={seq} src=10.0.0.1 spt=51515 \
         act=blocked a | x msg=line1\\nline2 x\\=y back\\\\slash #{seq} request=http://h.example/p?a\\=1&b\\=2 \
         suser=Jörg 日本",
        seq % 11
    )
}

/// What an independent CEF parser must find in the extension of event `seq`.
pub fn expected_ext(seq: u64) -> BTreeMap<String, String> {
    [
        ("externalId", seq.to_string()),
        ("src", "10.0.0.1".into()),
        ("spt", "51515".into()),
        ("act", "blocked a | x".into()),
        ("msg", format!("line1\nline2 x=y back\\slash #{seq}")),
        ("request", "http://h.example/p?a=1&b=2".into()),
        ("suser", "Jörg 日本".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

pub fn event(seq: u64) -> OutEvent {
    OutEvent {
        seq,
        cef: cef(seq).into(),
        cef_severity: (seq % 11) as u8,
        msgid: "INTRUSION",
    }
}

/// Events `from..=to` in batches of `per_batch`.
pub fn batches(from: u64, to: u64, per_batch: usize) -> Vec<Arc<Batch>> {
    let seqs: Vec<u64> = (from..=to).collect();
    seqs.chunks(per_batch)
        .map(|c| {
            Arc::new(Batch {
                events: c.iter().map(|&s| event(s)).collect(),
                fmc: 0,
            })
        })
        .collect()
}

/// The `cef.ext` object of a syslog-ng record as a map.
pub fn ext_of(record: &serde_json::Value) -> BTreeMap<String, String> {
    record["cef"]["ext"]
        .as_object()
        .unwrap_or_else(|| panic!("no parsed CEF extension in {record}"))
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
        .collect()
}

/// The sequence number (externalId) of a syslog-ng record.
pub fn seq_of(record: &serde_json::Value) -> u64 {
    record["cef"]["ext"]["externalId"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no externalId in {record}"))
}

pub fn output_config(toml_text: &str) -> OutputConfig {
    toml::from_str(toml_text).unwrap_or_else(|e| panic!("bad test config: {e}\n{toml_text}"))
}

/// An output running in the test's runtime.
pub struct Running {
    pub tx: Option<mpsc::Sender<Arc<Batch>>>,
    pub progress: watch::Receiver<u64>,
    pub stats: Arc<OutputStats>,
    pub handle: JoinHandle<()>,
}

impl Running {
    pub fn start(toml_text: &str) -> Running {
        Running::start_with_queue(toml_text, 4)
    }

    pub fn start_with_queue(toml_text: &str, queue: usize) -> Running {
        // The outputs' log lines, shown with a failing test (or with --nocapture).
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "estreamer_cef=info".into()),
            )
            .with_test_writer()
            .try_init();
        let cfg = output_config(toml_text);
        let out =
            Output::new(&cfg, "outputs[0]", "test-host.example").unwrap_or_else(|e| panic!("{e}"));
        let (tx, rx) = mpsc::channel(queue);
        let (ptx, prx) = watch::channel(0);
        let stats = Arc::new(OutputStats::default());
        let handle = out.spawn(rx, ptx, stats.clone());
        Running {
            tx: Some(tx),
            progress: prx,
            stats,
            handle,
        }
    }

    pub async fn send(&self, b: Arc<Batch>) {
        self.tx
            .as_ref()
            .expect("not closed")
            .send(b)
            .await
            .expect("output task ended early");
    }

    pub async fn send_all(&self, bs: Vec<Arc<Batch>>) {
        for b in bs {
            self.send(b).await;
        }
    }

    /// Closes the input and waits (up to `timeout`) for the output to finish.
    pub async fn finish(mut self, timeout: Duration) -> (u64, Arc<OutputStats>) {
        self.tx = None;
        tokio::time::timeout(timeout, &mut self.handle)
            .await
            .expect("output did not stop in time")
            .expect("output task panicked");
        (*self.progress.borrow(), self.stats)
    }

    pub fn progress(&self) -> u64 {
        *self.progress.borrow()
    }
}
