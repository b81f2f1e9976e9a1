//! A real Kafka-protocol broker for the Kafka output's tests: `tansu` (crates.io, built with
//! sqlite storage by tests/install-deps.sh), started on its own loopback port with its own
//! storage file, killed and restarted at will, and a reader of what a topic holds (an rdkafka
//! consumer, reading every partition from the start).
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The tansu binary: on PATH, else in cargo's bin folder. Missing is a test failure that says
/// how to install it (CI installs it; a test must never skip silently).
pub fn tansu_bin() -> PathBuf {
    let on_path = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("tansu"))
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")));
    on_path
        .into_iter()
        .chain(cargo_home.map(|c| c.join("bin").join("tansu")))
        .find(|p| p.is_file())
        .unwrap_or_else(|| {
            panic!(
                "the Kafka-protocol broker `tansu` is not installed: run tests/install-deps.sh \
                 (it runs `cargo install tansu --version 0.6.0 --locked --features dynostore,libsql`)"
            )
        })
}

/// A tansu broker on 127.0.0.1:`port` with sqlite storage in its own folder.
pub struct Tansu {
    child: Option<Child>,
    pub port: u16,
    pub dir: PathBuf,
    /// The port the broker names in its metadata, where clients connect after the bootstrap
    /// (another than `port` when a TLS proxy stands in front of it).
    advertised_port: u16,
    /// More `tansu broker` arguments (`--authentication`).
    extra_args: Vec<String>,
}

impl Tansu {
    /// Starts a broker storing in `dir` (created) and waits until it accepts connections.
    pub fn start(dir: &Path) -> Tansu {
        std::fs::create_dir_all(dir).unwrap();
        let mut t = Tansu {
            child: None,
            port: 0,
            dir: dir.to_path_buf(),
            advertised_port: 0,
            extra_args: Vec::new(),
        };
        t.port = free_port();
        t.advertised_port = t.port;
        t.restart();
        t
    }

    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Stops the broker and starts it again on the same port and storage, advertising
    /// `advertised_port` and with these extra `tansu broker` arguments.
    pub fn restart_with(&mut self, advertised_port: u16, extra_args: &[&str]) {
        self.kill();
        self.advertised_port = advertised_port;
        self.extra_args = extra_args.iter().map(|a| a.to_string()).collect();
        self.restart();
    }

    /// Starts the broker (again) on the same port and storage.
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "already running");
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let advertised = format!("tcp://127.0.0.1:{}", self.advertised_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("tansu.log"))
            .unwrap();
        let child = Command::new(tansu_bin())
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &advertised,
            ])
            .args(&self.extra_args)
            // tansu reads the path after sqlite:// relative to its working folder (even one
            // starting with '/').
            .args(["--storage-engine", "sqlite://tansu.db"])
            .current_dir(&self.dir)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        while TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("tansu exited ({status}); its log:\n{}", self.log_text());
            }
            assert!(
                Instant::now() < deadline,
                "tansu did not listen on {} within 60 s; its log:\n{}",
                self.port,
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `tansu topic create NAME --partitions N`.
    pub fn create_topic(&self, name: &str, partitions: u32) {
        self.tansu(&[
            "topic",
            "create",
            name,
            "--partitions",
            &partitions.to_string(),
        ]);
    }

    /// `tansu user create NAME PASSWORD --mechanism scram256|scram512`: a SASL SCRAM user, kept
    /// in the broker's storage (create users before a restart with `--authentication`).
    pub fn create_user(&self, name: &str, password: &str, mechanism: &str) {
        self.tansu(&["user", "create", name, password, "--mechanism", mechanism]);
    }

    /// A tansu command against this broker, which must succeed.
    fn tansu(&self, args: &[&str]) {
        let out = Command::new(tansu_bin())
            .args(args)
            .arg("--broker")
            .arg(format!("tcp://127.0.0.1:{}", self.port))
            .output()
            .unwrap_or_else(|e| panic!("run tansu {args:?}: {e}"));
        assert!(
            out.status.success(),
            "tansu {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// SIGKILL: the broker dies without a word; what it stored stays in its sqlite file.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.dir.join("tansu.log")).unwrap_or_default()
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.kill();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One message read back from a topic.
#[derive(Debug, Clone)]
pub struct Record {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub value: String,
}

/// Every message of `topic` on `bootstrap`, read from the start of each of its `partitions`
/// until `quiet` passes without a new one (and at least `at_least` have come, or `limit`
/// passes). In partition, then offset order.
pub fn read_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    at_least: usize,
    quiet: Duration,
    limit: Duration,
) -> Vec<Record> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap);
    read_topic_with(config, topic, partitions, at_least, quiet, limit)
}

/// [`read_topic`] with a client configuration of the caller's (bootstrap servers, TLS, SASL).
pub fn read_topic_with(
    mut config: ClientConfig,
    topic: &str,
    partitions: i32,
    at_least: usize,
    quiet: Duration,
    limit: Duration,
) -> Vec<Record> {
    let consumer: BaseConsumer = config
        .set("group.id", "estreamer-cef-test-reader")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let started = Instant::now();
    let mut last_new = Instant::now();
    loop {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                out.push(Record {
                    partition: m.partition(),
                    offset: m.offset(),
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    value: String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned(),
                });
                last_new = Instant::now();
            }
            Some(Err(e)) => eprintln!("reading {topic}: {e}"),
            None => {}
        }
        let quiet_enough = last_new.elapsed() >= quiet && out.len() >= at_least;
        if quiet_enough || started.elapsed() >= limit {
            break;
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}
