//! Output and tap configuration: the `[[outputs]]` and `[tap]` sections of the config file.
//!
//! The doc comments on these types are the user reference for each key.
//!
//! ```toml
//! [[output]]
//! transport = "tls"                 # udp | tcp | tls | file | stdout | kafka
//! host = "arcsight.example.com"
//! port = 6514
//! server_ca = "/etc/estreamer-cef/arcsight-ca.pem"
//!
//! [[output]]
//! transport = "udp"
//! host = "10.0.0.5"
//! max_message_bytes = 1400
//!
//! [tap]
//! path = "/var/log/estreamer-cef/tap.jsonl"
//! format = "json"
//! ```

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::duration;
pub use crate::net::secret::Secret;
use crate::net::tls::ServerTrust;

/// A value of an output's configuration that serde cannot check, found by `validate`: the key
/// (e.g. `output[1].port`) and what is wrong with it, worded for the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct InvalidKey {
    pub key: String,
    pub problem: String,
}

/// One destination for the CEF events. Every output receives every event.
///
/// `transport` selects the kind of output; the other keys depend on it. Unknown keys are an error,
/// so a misspelt key is reported instead of silently ignored.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(tag = "transport", rename_all = "lowercase")]
pub enum OutputConfig {
    /// Syslog over UDP (RFC 5426): one message per datagram, no delivery guarantee.
    Udp(UdpConfig),
    /// Syslog over plain TCP (RFC 6587), with reconnection and resending after a broken connection.
    Tcp(TcpConfig),
    /// Syslog over TLS (RFC 5425), with certificate verification, reconnection and resending.
    Tls(TlsConfig),
    /// Append to a local file, with size-based rotation.
    File(FileConfig),
    /// Write to standard output (containers, debugging).
    Stdout(StdoutConfig),
    /// Produce to a Kafka topic (ArcSight Transformation Hub), acknowledged by the brokers.
    Kafka(KafkaConfig),
}

/// Builds an output struct from its own keys plus shared key groups, so that shared keys are
/// written (and documented) once while every struct keeps `deny_unknown_fields`
/// (serde's `flatten` would lose it).
macro_rules! output_struct {
    ($(#[$m:meta])* $name:ident [$($group:ident),*] { $($fields:tt)* }) => {
        output_struct!(@build [$(#[$m])*] $name [$($group),*] { $($fields)* });
    };
    (@build [$($m:tt)*] $name:ident [] { $($acc:tt)* }) => {
        $($m)*
        #[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name { $($acc)* }
    };
    (@build [$($m:tt)*] $name:ident [header $(, $rest:ident)*] { $($acc:tt)* }) => {
        output_struct!(@build [$($m)*] $name [$($rest),*] { $($acc)*
            /// A name for this output in logs and in the monitor. Default: `<transport>://<host>:<port>`
            /// for network outputs, `file:<path>` for files, `stdout`, `kafka://<first broker>/<topic>`.
            #[serde(default)]
            pub name: Option<String>,
            /// Syslog facility, by name (`kern`, `user`, `mail`, `daemon`, `auth`, `syslog`, `lpr`,
            /// `news`, `uucp`, `cron`, `authpriv`, `ftp`, `ntp`, `audit`, `alert`, `clock`,
            /// `local0` … `local7`) or number (0-23). Default `local0` (16): the facility
            /// conventionally left to site use, so these events do not mix with the host's own logs.
            #[serde(default = "default_facility")]
            pub facility: Facility,
            /// Syslog severity for each CEF severity band. Default
            /// `{ low = "info", medium = "notice", high = "warning", very_high = "crit" }`
            /// (CEF 0-3 Low, 4-6 Medium, 7-8 High, 9-10 Very-High).
            #[serde(default)]
            pub severity_map: SeverityMap,
            /// HOSTNAME field of the syslog header. Default: this machine's fully qualified name
            /// (or its host name when no FQDN is known; with `rfc3164`, the name without its
            /// domain, as RFC 3164 asks). Non-printable characters and spaces are replaced by `_`;
            /// at most 255 characters.
            #[serde(default)]
            pub hostname: Option<String>,
            /// APP-NAME (RFC 5424) or TAG (RFC 3164). Default `estreamer-cef`. `-` sends the
            /// NILVALUE in RFC 5424 and no TAG at all in RFC 3164 (the CEF standard's own examples
            /// have none). At most 48 printable ASCII characters (32 for an RFC 3164 TAG).
            #[serde(default = "default_app_name")]
            pub app_name: String,
            /// Start the RFC 5424 MSG with the UTF-8 byte order mark (EF BB BF), which RFC 5424 asks
            /// for to mark UTF-8 text. Default `false`: ArcSight SmartConnectors, syslog-ng's CEF
            /// parser, rsyslog templates, Microsoft Sentinel (AMA) and Elastic expect the message to
            /// start with `CEF:` and would keep the BOM as part of the CEF version field. Turn it on
            /// for a strict RFC 5424 receiver. Ignored by the `rfc3164` and `cef` formats.
            #[serde(default)]
            pub bom: bool,
        });
    };
    (@build [$($m:tt)*] $name:ident [net_format $(, $rest:ident)*] { $($acc:tt)* }) => {
        output_struct!(@build [$($m)*] $name [$($rest),*] { $($acc)*
            /// Message format: `rfc5424` (default), `rfc3164` (legacy BSD syslog, UTC timestamps
            /// without a zone: configure the receiver for UTC), or `cef` (the bare CEF line, no
            /// syslog header).
            #[serde(default = "default_net_format")]
            pub format: Format,
        });
    };
    (@build [$($m:tt)*] $name:ident [line_format $(, $rest:ident)*] { $($acc:tt)* }) => {
        output_struct!(@build [$($m)*] $name [$($rest),*] { $($acc)*
            /// Line format: `cef` (default: the bare CEF line, as the CEF standard describes for
            /// files and as ArcSight's file readers expect), `rfc5424` or `rfc3164` (the same
            /// message a network output sends). One message per line, LF-terminated.
            #[serde(default = "default_line_format")]
            pub format: Format,
        });
    };
    (@build [$($m:tt)*] $name:ident [network $(, $rest:ident)*] { $($acc:tt)* }) => {
        output_struct!(@build [$($m)*] $name [$($rest),*] { $($acc)*
            /// Receiver host name or IP address.
            pub host: String,
        });
    };
    (@build [$($m:tt)*] $name:ident [stream $(, $rest:ident)*] { $($acc:tt)* }) => {
        output_struct!(@build [$($m)*] $name [$($rest),*] { $($acc)*
            /// Largest syslog message in bytes (without the framing). Larger messages follow
            /// `oversize`. Default 8192: RFC 5425 receivers should accept it, rsyslog's default
            /// limit is 8 KiB (it cuts longer messages at an arbitrary byte), and syslog-ng closes
            /// the connection on a frame above its `log-msg-size` (64 KiB by default). At most 1048576.
            #[serde(default = "default_stream_max")]
            pub max_message_bytes: usize,
            /// What to do with a message longer than `max_message_bytes`: `truncate` (default:
            /// shorten the longest CEF extension values, never the header, and count it; a message
            /// whose header and keys alone are too long is dropped and counted), `drop` (count and
            /// skip it) or `send` (send it whole; a receiver that refuses it, as syslog-ng does by
            /// closing the connection, gets it again after every reconnect and the output stalls).
            #[serde(default)]
            pub oversize: Oversize,
            /// Idle time before TCP keepalive probes start (3 probes, 10 s apart; whole seconds).
            /// Default "60s"; "0s" turns keepalive off.
            #[serde(default = "default_keepalive", with = "duration")]
            pub keepalive: Duration,
            /// Time allowed for name resolution, the TCP connection and the TLS handshake
            /// together. Default "10s".
            #[serde(default = "default_connect_timeout", with = "duration")]
            pub connect_timeout: Duration,
            /// How long sent data may stay unacknowledged before the connection is declared dead
            /// (Linux `TCP_USER_TIMEOUT`). Default "30s"; "0s" leaves it to the kernel. Without it
            /// a vanished receiver is noticed only after the kernel's retransmissions give up,
            /// after about 15 minutes.
            #[serde(default = "default_send_timeout", with = "duration")]
            pub send_timeout: Duration,
            /// First wait before reconnecting; it doubles after each failed attempt (each wait is
            /// 75–100 % of that, and never below 100ms) up to `reconnect_delay_max`.
            /// Default "500ms".
            #[serde(default = "default_reconnect_min", with = "duration")]
            pub reconnect_delay_min: Duration,
            /// Longest wait between reconnection attempts. Default "30s". Reconnection never
            /// gives up.
            #[serde(default = "default_reconnect_max", with = "duration")]
            pub reconnect_delay_max: Duration,
            /// Bytes of messages that may be sent but not yet acknowledged by the receiver's TCP
            /// stack, or waiting to be sent, before this output stops taking events (which
            /// pauses reading from the FMC; nothing is lost). Default 16 MiB.
            #[serde(default = "default_replay_buffer")]
            pub replay_buffer_bytes: usize,
            /// Bytes of the most recent *acknowledged* messages kept in the resend journal (files
            /// under the state folder, not memory) and sent again after a broken connection. A TCP
            /// acknowledgement only means the receiver's kernel has the bytes; a receiver that
            /// crashes loses what was still unread in its socket buffer, which Linux sizes at twice
            /// `SO_RCVBUF`. Default 100663296 (96 MiB): enough for a receiver with a 32 MiB receive
            /// buffer (64 MiB unread) plus margin. A message counts as delivered once this many
            /// bytes have been acknowledged after it. 0 keeps no journal: a receiver crash then
            /// loses what it had not read. (Called `resend_on_reconnect_bytes`, 4 MiB, before.)
            #[serde(default = "default_resend")]
            pub resend_bytes: u64,
            /// When estreamer-cef stops: how long to wait for the receiver to acknowledge
            /// everything and close the connection before giving up on the rest (it stays
            /// undelivered and is read again from the FMC next time). Default "10s".
            #[serde(default = "default_shutdown_timeout", with = "duration")]
            pub shutdown_timeout: Duration,
        });
    };
}

output_struct! {
    /// `transport = "udp"`: one syslog message per datagram (RFC 5426). "Delivered" means the
    /// datagram was handed to the kernel; UDP itself gives no guarantee.
    UdpConfig [network, net_format, header] {
        /// Receiver UDP port. Default 514.
        #[serde(default = "default_udp_port")]
        pub port: u16,
        /// Largest datagram payload in bytes. Default 2048 (RFC 5426 receivers should accept it).
        /// Anything above the path MTU (about 1472 bytes on Ethernet) is IP-fragmented, and losing
        /// one fragment loses the event: lower this to 1400 on lossy or firewalled paths.
        /// At least 480, at most 65507.
        #[serde(default = "default_udp_max")]
        pub max_message_bytes: usize,
        /// What to do with a message longer than `max_message_bytes`: `truncate` (default: shorten
        /// the longest CEF extension values, never the CEF header, and count it; a message whose
        /// header and keys alone are too long is dropped and counted), `drop` (count and skip it)
        /// or `send` (send it whole, possibly fragmented).
        #[serde(default)]
        pub oversize: Oversize,
    }
}

output_struct! {
    /// `transport = "tcp"`: syslog over TCP. A message counts as delivered once the receiver's
    /// TCP stack has acknowledged its bytes; unacknowledged messages are sent again after a
    /// reconnect (at least once; duplicates are counted).
    TcpConfig [network, net_format, header, stream] {
        /// Receiver TCP port. Default 514.
        #[serde(default = "default_tcp_port")]
        pub port: u16,
        /// Framing of messages on the byte stream: `lf` (default: each message followed by a line
        /// feed, RFC 6587 3.4.2, what ArcSight's SmartConnector "Raw TCP" and syslog receivers,
        /// syslog-ng's `network()` source, rsyslog, Microsoft Sentinel's AMA and Elastic read; our
        /// CEF never contains a raw line break, so `lf` is safe) or `octet-counting` (RFC 6587
        /// 3.4.1: `LENGTH SP MESSAGE`, which syslog-ng's `syslog()` source requires; rsyslog
        /// detects either).
        #[serde(default = "default_lf")]
        pub framing: Framing,
    }
}

output_struct! {
    /// `transport = "tls"`: syslog over TLS (RFC 5425), TLS 1.2 or 1.3. The receiver's
    /// certificate and host name are verified unless you say otherwise. Delivery as for `tcp`.
    TlsConfig [network, net_format, header, stream] {
        /// Receiver TLS port. Default 6514.
        #[serde(default = "default_tls_port")]
        pub port: u16,
        /// Framing inside TLS: `lf` (default: what SmartConnectors, rsyslog, syslog-ng's
        /// `network()` source, Sentinel's AMA and Elastic read) or `octet-counting` (what RFC 5425
        /// prescribes, and what syslog-ng's `syslog()` source requires).
        #[serde(default = "default_lf")]
        pub framing: Framing,
        /// How to verify the receiver's certificate: "system" (default: the system trust store),
        /// the path of a PEM file with the CA certificate(s) that issued it (or the receiver's own
        /// certificate), "pkcs12" (the CA certificates inside `pkcs12`), or "insecure" (no
        /// verification: anyone on the path can then read and alter the events; for lab use only,
        /// a warning is logged at every connection). Same key and values as `fmc.server_ca`.
        #[serde(default = "default_output_trust")]
        pub server_ca: ServerTrust,
        /// Name to verify in the receiver's certificate and to send as SNI. Default: `host`.
        /// Set it when `host` is an IP address that the certificate does not list.
        #[serde(default)]
        pub server_name: Option<String>,
        /// Check that the receiver's certificate is issued for `server_name` (or `host`).
        /// Default `true`.
        #[serde(default = "default_true")]
        pub verify_hostname: bool,
        /// Accept the receiver's certificate only if its SHA-256 fingerprint matches, e.g.
        /// `"sha256:3A:F1:…"` (as printed by `openssl x509 -noout -fingerprint -sha256`). When set,
        /// the fingerprint replaces chain and host name verification (RFC 5425 4.2.2), which
        /// suits a receiver with a self-signed certificate.
        #[serde(default)]
        pub fingerprint: Option<String>,
        /// PKCS#12 file (.p12/.pfx) with a client certificate and key, for receivers that require
        /// mutual TLS. Legacy-encrypted files (RC2/3DES) are read too.
        #[serde(default)]
        pub pkcs12: Option<PathBuf>,
        /// File whose first line is the password of `pkcs12` (a trailing CR/LF is ignored).
        #[serde(default)]
        pub pkcs12_password_file: Option<PathBuf>,
        /// Password of `pkcs12`. Prefer `pkcs12_password_file`, which keeps it out of the config.
        #[serde(default)]
        pub pkcs12_password: Option<Secret>,
    }
}

output_struct! {
    /// `transport = "file"`: append to a file. "Delivered" means written and flushed to the
    /// operating system (not fsynced).
    FileConfig [line_format, header] {
        /// File to append to. Its directory must exist.
        pub path: PathBuf,
        /// Rotate when the file would grow past this many bytes: `path` becomes `path.1`,
        /// `path.1` becomes `path.2` … up to `path.<keep>`, the oldest is deleted. Default 0
        /// (never rotate; use logrotate with `copytruncate`).
        #[serde(default)]
        pub rotate_bytes: u64,
        /// Rotated files to keep. Default 5.
        #[serde(default = "default_keep")]
        pub keep: u32,
    }
}

output_struct! {
    /// `transport = "stdout"`: one message per line on standard output.
    StdoutConfig [line_format, header] {}
}

// The Kafka output's keys, in their own file (built with the same macro).
mod kafka;
pub use kafka::{Compression, KafkaConfig, Properties, SaslMechanism};

/// Where a message's bytes come from: the syslog header variant, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - [BOM]CEF:…` (RFC 5424).
    Rfc5424,
    /// `<PRI>Mmm dd hh:mm:ss HOSTNAME TAG: CEF:…` (RFC 3164), time in UTC.
    Rfc3164,
    /// The CEF line alone.
    Cef,
}

/// How messages are delimited on a TCP or TLS byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Framing {
    /// RFC 6587 3.4.1: decimal byte count, a space, the message.
    OctetCounting,
    /// RFC 6587 3.4.2: the message followed by LF.
    Lf,
}

/// Policy for a message longer than `max_message_bytes`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Oversize {
    /// Shorten the longest CEF extension values until the message fits; count it as truncated.
    #[default]
    Truncate,
    /// Skip the message; count it as dropped.
    Drop,
    /// Send it anyway.
    Send,
}

/// Syslog facility code 0-23.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Facility(pub u8);

const FACILITY_NAMES: [&str; 24] = [
    "kern", "user", "mail", "daemon", "auth", "syslog", "lpr", "news", "uucp", "cron", "authpriv",
    "ftp", "ntp", "audit", "alert", "clock", "local0", "local1", "local2", "local3", "local4",
    "local5", "local6", "local7",
];

/// Syslog severity code 0-7.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Severity(pub u8);

const SEVERITY_NAMES: [&str; 8] = [
    "emerg", "alert", "crit", "err", "warning", "notice", "info", "debug",
];

impl Severity {
    fn from_name(s: &str) -> Option<Severity> {
        let canonical = match s {
            "emergency" | "panic" => "emerg",
            "critical" => "crit",
            "error" => "err",
            "warn" => "warning",
            "informational" => "info",
            other => other,
        };
        SEVERITY_NAMES
            .iter()
            .position(|n| *n == canonical)
            .map(|i| Severity(i as u8))
    }
}

/// Syslog severity per CEF severity band.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SeverityMap {
    /// CEF severity 0-3. Default `info`.
    #[serde(default = "sev_info")]
    pub low: Severity,
    /// CEF severity 4-6. Default `notice`.
    #[serde(default = "sev_notice")]
    pub medium: Severity,
    /// CEF severity 7-8. Default `warning`.
    #[serde(default = "sev_warning")]
    pub high: Severity,
    /// CEF severity 9-10. Default `crit`.
    #[serde(default = "sev_crit")]
    pub very_high: Severity,
}

impl Default for SeverityMap {
    fn default() -> Self {
        SeverityMap {
            low: sev_info(),
            medium: sev_notice(),
            high: sev_warning(),
            very_high: sev_crit(),
        }
    }
}

impl SeverityMap {
    /// Syslog severity for a CEF severity (values above 10 count as 10).
    pub fn syslog_severity(&self, cef_severity: u8) -> Severity {
        match cef_severity {
            0..=3 => self.low,
            4..=6 => self.medium,
            7..=8 => self.high,
            _ => self.very_high,
        }
    }
}

/// The `[tap]` section: a copy of every record, for troubleshooting, written by a separate task
/// that never slows delivery (when it falls behind, records are dropped from the tap and counted).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TapConfig {
    /// File to append to.
    pub path: PathBuf,
    /// `json` (default): one JSON object per record with its type, decoded fields, CEF line and
    /// warnings. `wire`: every message exactly as framed for the first network output (for a UDP
    /// output, or with no network output: RFC 5424 messages, one per line).
    #[serde(default)]
    pub format: TapFormat,
    /// Rotate when the file would grow past this many bytes (as for file outputs).
    /// Default 104857600 (100 MiB); 0 never rotates.
    #[serde(default = "default_tap_rotate")]
    pub rotate_bytes: u64,
    /// Rotated files to keep. Default 5.
    #[serde(default = "default_keep")]
    pub keep: u32,
    /// Records that may wait for the tap writer before new ones are dropped. Default 10000.
    #[serde(default = "default_tap_queue")]
    pub queue_records: usize,
}

/// What the tap writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum TapFormat {
    #[default]
    Json,
    Wire,
}

fn default_true() -> bool {
    true
}
fn default_facility() -> Facility {
    Facility(16)
}
fn default_app_name() -> String {
    "estreamer-cef".to_string()
}
fn default_net_format() -> Format {
    Format::Rfc5424
}
fn default_line_format() -> Format {
    Format::Cef
}
fn default_udp_port() -> u16 {
    514
}
fn default_tcp_port() -> u16 {
    514
}
fn default_tls_port() -> u16 {
    6514
}
fn default_udp_max() -> usize {
    2048
}
fn default_stream_max() -> usize {
    8192
}
fn default_lf() -> Framing {
    Framing::Lf
}
fn default_keepalive() -> Duration {
    Duration::from_secs(60)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_send_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_reconnect_min() -> Duration {
    Duration::from_millis(500)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}
fn default_output_trust() -> ServerTrust {
    ServerTrust::System
}
fn default_replay_buffer() -> usize {
    16 << 20
}
fn default_resend() -> u64 {
    96 << 20
}
fn default_shutdown_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_keep() -> u32 {
    5
}
fn default_tap_rotate() -> u64 {
    100 << 20
}
fn default_tap_queue() -> usize {
    10_000
}
fn sev_info() -> Severity {
    Severity(6)
}
fn sev_notice() -> Severity {
    Severity(5)
}
fn sev_warning() -> Severity {
    Severity(4)
}
fn sev_crit() -> Severity {
    Severity(2)
}

/// Limits checked by [`OutputConfig::validate`].
pub const UDP_MAX_PAYLOAD: usize = 65_507;
pub const UDP_MIN_PAYLOAD: usize = 480;
pub const STREAM_MAX_MESSAGE: usize = 1 << 20;

/// The header and shared options common to every output, borrowed from whichever struct holds them.
pub(crate) struct HeaderKeys<'a> {
    pub format: Format,
    pub facility: Facility,
    pub severity_map: SeverityMap,
    pub hostname: Option<&'a str>,
    pub app_name: &'a str,
    pub bom: bool,
}

/// Connection keys shared by `tcp` and `tls`.
pub(crate) struct StreamKeys {
    pub max_message_bytes: usize,
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    pub send_timeout: Duration,
    pub reconnect_delay_min: Duration,
    pub reconnect_delay_max: Duration,
    pub replay_buffer_bytes: usize,
    pub resend_bytes: u64,
    pub shutdown_timeout: Duration,
}

macro_rules! header_keys {
    ($c:expr) => {
        HeaderKeys {
            format: $c.format,
            facility: $c.facility,
            severity_map: $c.severity_map,
            hostname: $c.hostname.as_deref(),
            app_name: &$c.app_name,
            bom: $c.bom,
        }
    };
}

macro_rules! stream_keys {
    ($c:expr) => {
        StreamKeys {
            max_message_bytes: $c.max_message_bytes,
            keepalive: $c.keepalive,
            connect_timeout: $c.connect_timeout,
            send_timeout: $c.send_timeout,
            reconnect_delay_min: $c.reconnect_delay_min,
            reconnect_delay_max: $c.reconnect_delay_max,
            replay_buffer_bytes: $c.replay_buffer_bytes,
            resend_bytes: $c.resend_bytes,
            shutdown_timeout: $c.shutdown_timeout,
        }
    };
}

impl OutputConfig {
    /// The transport name as written in the config.
    pub fn transport(&self) -> &'static str {
        match self {
            OutputConfig::Udp(_) => "udp",
            OutputConfig::Tcp(_) => "tcp",
            OutputConfig::Tls(_) => "tls",
            OutputConfig::File(_) => "file",
            OutputConfig::Stdout(_) => "stdout",
            OutputConfig::Kafka(_) => "kafka",
        }
    }

    /// The output's name for logs and the monitor (`name`, or a default built from the target).
    pub fn display_name(&self) -> String {
        let (explicit, default) = match self {
            OutputConfig::Udp(c) => (&c.name, format!("udp://{}", host_port(&c.host, c.port))),
            OutputConfig::Tcp(c) => (&c.name, format!("tcp://{}", host_port(&c.host, c.port))),
            OutputConfig::Tls(c) => (&c.name, format!("tls://{}", host_port(&c.host, c.port))),
            OutputConfig::File(c) => (&c.name, format!("file:{}", c.path.display())),
            OutputConfig::Stdout(c) => (&c.name, "stdout".to_string()),
            OutputConfig::Kafka(c) => (
                &c.name,
                format!(
                    "kafka://{}/{}",
                    c.brokers.first().map_or("", |b| b.as_str()),
                    c.topic
                ),
            ),
        };
        explicit.clone().unwrap_or(default)
    }

    /// True for udp, tcp and tls.
    pub fn is_network(&self) -> bool {
        matches!(
            self,
            OutputConfig::Udp(_) | OutputConfig::Tcp(_) | OutputConfig::Tls(_)
        )
    }

    pub(crate) fn header_keys(&self) -> HeaderKeys<'_> {
        match self {
            OutputConfig::Udp(c) => header_keys!(c),
            OutputConfig::Tcp(c) => header_keys!(c),
            OutputConfig::Tls(c) => header_keys!(c),
            OutputConfig::File(c) => header_keys!(c),
            OutputConfig::Stdout(c) => header_keys!(c),
            OutputConfig::Kafka(c) => header_keys!(c),
        }
    }

    /// How long this output waits on stop for its receiver to take what it holds (TCP, TLS,
    /// Kafka); `None` for outputs that hold nothing.
    pub fn shutdown_timeout(&self) -> Option<std::time::Duration> {
        match self {
            OutputConfig::Kafka(c) => Some(c.shutdown_timeout),
            _ => self.stream_keys().map(|k| k.shutdown_timeout),
        }
    }

    pub(crate) fn stream_keys(&self) -> Option<StreamKeys> {
        match self {
            OutputConfig::Tcp(c) => Some(stream_keys!(c)),
            OutputConfig::Tls(c) => Some(stream_keys!(c)),
            _ => None,
        }
    }

    /// Checks values serde cannot check. `key_prefix` names this output in messages, e.g.
    /// `outputs[2]`. File contents (CA, PKCS#12) are checked when the output is built.
    pub fn validate(&self, key_prefix: &str) -> Result<(), InvalidKey> {
        let bad = |key: &str, problem: String| InvalidKey {
            key: format!("{key_prefix}.{key}"),
            problem,
        };
        let h = self.header_keys();
        if h.app_name.is_empty() {
            return Err(bad(
                "app_name",
                "is empty; use \"-\" for no app name".into(),
            ));
        }
        if let Some(host) = h.hostname
            && host.is_empty()
        {
            return Err(bad(
                "hostname",
                "is empty; remove it to use this machine's name".into(),
            ));
        }
        match self {
            OutputConfig::Udp(c) => {
                check_host(&c.host).map_err(|p| bad("host", p))?;
                if !(UDP_MIN_PAYLOAD..=UDP_MAX_PAYLOAD).contains(&c.max_message_bytes) {
                    return Err(bad(
                        "max_message_bytes",
                        format!(
                            "= {} is outside {UDP_MIN_PAYLOAD}..={UDP_MAX_PAYLOAD} (a UDP datagram \
                             carries at most {UDP_MAX_PAYLOAD} bytes; receivers must accept {UDP_MIN_PAYLOAD})",
                            c.max_message_bytes
                        ),
                    ));
                }
            }
            OutputConfig::Tcp(_) | OutputConfig::Tls(_) => {
                let host = match self {
                    OutputConfig::Tcp(c) => &c.host,
                    OutputConfig::Tls(c) => &c.host,
                    _ => unreachable!(),
                };
                check_host(host).map_err(|p| bad("host", p))?;
                let s = self.stream_keys().expect("tcp/tls have stream keys");
                if !(UDP_MIN_PAYLOAD..=STREAM_MAX_MESSAGE).contains(&s.max_message_bytes) {
                    return Err(bad(
                        "max_message_bytes",
                        format!(
                            "= {} is outside {UDP_MIN_PAYLOAD}..={STREAM_MAX_MESSAGE}",
                            s.max_message_bytes
                        ),
                    ));
                }
                let day = Duration::from_secs(86_400);
                for (key, v, may_be_zero) in [
                    ("connect_timeout", s.connect_timeout, false),
                    ("send_timeout", s.send_timeout, true),
                    ("reconnect_delay_min", s.reconnect_delay_min, false),
                    ("reconnect_delay_max", s.reconnect_delay_max, false),
                    ("shutdown_timeout", s.shutdown_timeout, true),
                    ("keepalive", s.keepalive, true),
                ] {
                    if (v.is_zero() && !may_be_zero) || v > day {
                        let lowest = if may_be_zero { "0s" } else { "1ms" };
                        return Err(bad(
                            key,
                            format!(
                                "= \"{}\" must be between \"{lowest}\" and \"24h\"",
                                duration::format(&v)
                            ),
                        ));
                    }
                }
                if s.reconnect_delay_max < s.reconnect_delay_min {
                    return Err(bad(
                        "reconnect_delay_max",
                        format!(
                            "= \"{}\" is below reconnect_delay_min = \"{}\"",
                            duration::format(&s.reconnect_delay_max),
                            duration::format(&s.reconnect_delay_min)
                        ),
                    ));
                }
                if s.replay_buffer_bytes < s.max_message_bytes + 32 {
                    return Err(bad(
                        "replay_buffer_bytes",
                        format!(
                            "= {} cannot hold one message of max_message_bytes = {}; raise it",
                            s.replay_buffer_bytes, s.max_message_bytes
                        ),
                    ));
                }
                if let OutputConfig::Tls(t) = self {
                    if t.pkcs12_password.is_some() && t.pkcs12_password_file.is_some() {
                        return Err(bad(
                            "pkcs12_password",
                            "and pkcs12_password_file are both set; keep one".into(),
                        ));
                    }
                    if (t.pkcs12_password.is_some() || t.pkcs12_password_file.is_some())
                        && t.pkcs12.is_none()
                    {
                        return Err(bad(
                            "pkcs12",
                            "is missing but a password is given; set pkcs12 or remove the password"
                                .into(),
                        ));
                    }
                    if t.server_ca == ServerTrust::Pkcs12Ca && t.pkcs12.is_none() {
                        return Err(bad(
                            "server_ca",
                            "= \"pkcs12\" trusts the CA certificates inside `pkcs12`, which is not set; \
                             set pkcs12, or server_ca to the receiver's CA certificate file"
                                .into(),
                        ));
                    }
                    if let Some(fp) = &t.fingerprint {
                        crate::net::tls::parse_fingerprint(fp)
                            .map_err(|p| bad("fingerprint", p))?;
                    }
                    if let Some(n) = &t.server_name
                        && n.is_empty()
                    {
                        return Err(bad("server_name", "is empty; remove it to use host".into()));
                    }
                }
            }
            OutputConfig::File(c) => {
                if c.path.as_os_str().is_empty() {
                    return Err(bad("path", "is empty".into()));
                }
            }
            OutputConfig::Stdout(_) => {}
            OutputConfig::Kafka(c) => c.check().map_err(|(key, problem)| bad(&key, problem))?,
        }
        Ok(())
    }
}

impl TapConfig {
    /// Checks values serde cannot check; `key_prefix` is e.g. `tap`.
    pub fn validate(&self, key_prefix: &str) -> Result<(), InvalidKey> {
        if self.path.as_os_str().is_empty() {
            return Err(InvalidKey {
                key: format!("{key_prefix}.path"),
                problem: "is empty".into(),
            });
        }
        if self.queue_records == 0 {
            return Err(InvalidKey {
                key: format!("{key_prefix}.queue_records"),
                problem: "= 0; it must be at least 1".into(),
            });
        }
        Ok(())
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("is empty; give the receiver's host name or IP address".into());
    }
    if host.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(format!("= {host:?} contains spaces or control characters"));
    }
    Ok(())
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

// --- name-or-number serde for facility and severity ---

struct CodeVisitor {
    what: &'static str,
    names: &'static [&'static str],
    max: u8,
}

impl<'de> Visitor<'de> for CodeVisitor {
    type Value = u8;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a syslog {} name ({}) or a number 0-{}",
            self.what,
            self.names.join(", "),
            self.max
        )
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<u8, E> {
        if v <= self.max as u64 {
            Ok(v as u8)
        } else {
            Err(E::invalid_value(de::Unexpected::Unsigned(v), &self))
        }
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<u8, E> {
        if v < 0 {
            return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
        }
        self.visit_u64(v as u64)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<u8, E> {
        let lower = v.trim().to_ascii_lowercase();
        if let Ok(n) = lower.parse::<u64>() {
            return self.visit_u64(n);
        }
        let found = if self.what == "severity" {
            Severity::from_name(&lower).map(|s| s.0)
        } else {
            let canonical = if lower == "security" {
                "auth"
            } else {
                lower.as_str()
            };
            self.names
                .iter()
                .position(|n| *n == canonical)
                .map(|i| i as u8)
        };
        found.ok_or_else(|| E::invalid_value(de::Unexpected::Str(v), &self))
    }
}

impl<'de> Deserialize<'de> for Facility {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CodeVisitor {
            what: "facility",
            names: &FACILITY_NAMES,
            max: 23,
        })
        .map(Facility)
    }
}

impl Serialize for Facility {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match FACILITY_NAMES.get(self.0 as usize) {
            Some(n) => s.serialize_str(n),
            None => s.serialize_u8(self.0),
        }
    }
}

impl<'de> Deserialize<'de> for Severity {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CodeVisitor {
            what: "severity",
            names: &SEVERITY_NAMES,
            max: 7,
        })
        .map(Severity)
    }
}

impl Serialize for Severity {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match SEVERITY_NAMES.get(self.0 as usize) {
            Some(n) => s.serialize_str(n),
            None => s.serialize_u8(self.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<OutputConfig, toml::de::Error> {
        toml::from_str(s)
    }

    #[test]
    fn defaults_per_transport() {
        let OutputConfig::Tcp(t) = parse("transport = \"tcp\"\nhost = \"h\"").unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.port, t.framing, t.format),
            (514, Framing::Lf, Format::Rfc5424)
        );
        assert!(!t.bom, "no BOM before CEF: by default");
        assert_eq!(t.resend_bytes, 96 << 20);
        assert_eq!(t.facility, Facility(16));
        assert_eq!(t.max_message_bytes, 8192);
        let OutputConfig::Udp(u) = parse("transport = \"udp\"\nhost = \"h\"").unwrap() else {
            panic!()
        };
        assert_eq!(
            (u.port, u.max_message_bytes, u.oversize),
            (514, 2048, Oversize::Truncate)
        );
        let OutputConfig::Tls(t) = parse("transport = \"tls\"\nhost = \"h\"").unwrap() else {
            panic!()
        };
        assert_eq!(
            (t.port, t.framing, t.verify_hostname, &t.server_ca),
            (6514, Framing::Lf, true, &ServerTrust::System)
        );
        assert_eq!(
            (t.connect_timeout, t.reconnect_delay_min, t.keepalive),
            (
                Duration::from_secs(10),
                Duration::from_millis(500),
                Duration::from_secs(60)
            )
        );
        let OutputConfig::File(f) = parse("transport = \"file\"\npath = \"/tmp/x\"").unwrap()
        else {
            panic!()
        };
        assert_eq!(f.format, Format::Cef);
        assert!(!f.bom);
        let e = parse("transport = \"tcp\"\nhost = \"h\"\nresend_on_reconnect_bytes = 5")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`resend_bytes`"), "the new name is offered: {e}");
    }

    #[test]
    fn unknown_and_misplaced_keys_are_rejected() {
        let e = parse("transport = \"udp\"\nhost = \"h\"\nframing = \"lf\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `framing`"), "{e}");
        let e = parse("transport = \"tcp\"\nhost = \"h\"\nprot = 1")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown field `prot`"), "{e}");
        let e = parse("transport = \"carrier-pigeon\"\nhost = \"h\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown variant `carrier-pigeon`"), "{e}");
    }

    #[test]
    fn facility_and_severity_by_name_or_number() {
        let c = parse(
            "transport = \"udp\"\nhost = \"h\"\nfacility = \"user\"\nseverity_map = { low = 7, high = \"err\" }",
        )
        .unwrap();
        let h = c.header_keys();
        assert_eq!(h.facility, Facility(1));
        assert_eq!(h.severity_map.syslog_severity(0), Severity(7));
        assert_eq!(h.severity_map.syslog_severity(5), Severity(5));
        assert_eq!(h.severity_map.syslog_severity(8), Severity(3));
        assert_eq!(h.severity_map.syslog_severity(10), Severity(2));
        let c = parse("transport = \"udp\"\nhost = \"h\"\nfacility = 23").unwrap();
        assert_eq!(c.header_keys().facility, Facility(23));
        let e = parse("transport = \"udp\"\nhost = \"h\"\nfacility = 24")
            .unwrap_err()
            .to_string();
        assert!(e.contains("syslog facility"), "{e}");
        let e = parse("transport = \"udp\"\nhost = \"h\"\nfacility = \"locl0\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("local0"), "{e}");
    }

    #[test]
    fn validation_names_the_key() {
        let c = parse("transport = \"udp\"\nhost = \"h\"\nmax_message_bytes = 70000").unwrap();
        let e = c.validate("outputs[1]").unwrap_err().to_string();
        assert!(e.starts_with("outputs[1].max_message_bytes"), "{e}");
        assert!(e.contains("65507"), "{e}");
        let c = parse("transport = \"tls\"\nhost = \"h\"\npkcs12_password = \"pw\"").unwrap();
        let e = c.validate("outputs[0]").unwrap_err().to_string();
        assert!(e.contains("outputs[0].pkcs12"), "{e}");
        let c = parse("transport = \"tls\"\nhost = \"h\"\nserver_ca = \"pkcs12\"").unwrap();
        let e = c.validate("o").unwrap_err().to_string();
        assert!(e.starts_with("o.server_ca"), "{e}");
        let c = parse("transport = \"tcp\"\nhost = \"h\"\nreconnect_delay_min = \"2s\"\nreconnect_delay_max = \"1s\"").unwrap();
        let e = c.validate("o").unwrap_err().to_string();
        assert!(
            e.starts_with("o.reconnect_delay_max = \"1s\" is below"),
            "{e}"
        );
        let c = parse("transport = \"tcp\"\nhost = \"h\"\nconnect_timeout = \"0s\"").unwrap();
        let e = c.validate("o").unwrap_err().to_string();
        assert!(e.starts_with("o.connect_timeout"), "{e}");
        let c = parse("transport = \"tls\"\nhost = \"h\"\nfingerprint = \"sha256:zz\"").unwrap();
        assert!(
            c.validate("o")
                .unwrap_err()
                .to_string()
                .contains("o.fingerprint")
        );
        let c = parse("transport = \"tcp\"\nhost = \"\"").unwrap();
        assert!(c.validate("o").unwrap_err().to_string().contains("o.host"));
    }

    #[test]
    fn loads_through_figment_with_text_durations() {
        #[derive(Deserialize)]
        struct Root {
            outputs: Vec<OutputConfig>,
            tap: Option<TapConfig>,
        }
        let toml_text = r#"
            [[outputs]]
            transport = "tls"
            host = "arcsight.example"
            connect_timeout = "1.5s"
            shutdown_timeout = 2
            facility = 4
            severity_map = { very_high = "alert" }

            [[outputs]]
            transport = "udp"
            host = "10.0.0.5"

            [tap]
            path = "/tmp/tap.jsonl"
        "#;
        use figment::providers::Format as _;
        let root: Root = figment::Figment::from(figment::providers::Toml::string(toml_text))
            .extract()
            .unwrap();
        let OutputConfig::Tls(t) = &root.outputs[0] else {
            panic!()
        };
        assert_eq!(
            (
                t.connect_timeout,
                t.shutdown_timeout,
                t.facility,
                t.severity_map.very_high
            ),
            (
                Duration::from_millis(1500),
                Duration::from_secs(2),
                Facility(4),
                Severity(1)
            )
        );
        assert!(matches!(root.outputs[1], OutputConfig::Udp(_)));
        assert_eq!(root.tap.unwrap().format, TapFormat::Json);
    }

    #[test]
    fn password_is_never_printed() {
        let c = parse(
            "transport = \"tls\"\nhost = \"h\"\npkcs12 = \"c.p12\"\npkcs12_password = \"hunter2\"",
        )
        .unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert!(!toml::to_string(&c).unwrap().contains("hunter2"));
        let OutputConfig::Tls(t) = c else { panic!() };
        assert_eq!(t.pkcs12_password.unwrap().expose(), "hunter2");
    }
}
