//! Configuration: built-in defaults < `/etc/estreamer-cef/estreamer-cef.toml` (or `--config`)
//! < environment `ESTREAMER_CEF_...` (`__` between levels, e.g. `ESTREAMER_CEF_FMC__HOST`)
//! < command-line flags.
//!
//! The doc comments of these structs are the configuration reference (`check-config` prints the
//! effective values, secrets redacted).

pub mod diagnostic;
pub mod duration;
pub mod output;
pub mod renamed;
pub mod unfinished;
mod warnings;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::estreamer::request::{DEFAULT_EXTENDED_EVENTS, EventVersion, StartAt, flag};
use crate::net::identity::ClientIdentity;
pub use crate::net::secret::Secret;
use crate::net::tls::ServerTrust;

pub const DEFAULT_CONFIG_PATH: &str = "/etc/estreamer-cef/estreamer-cef.toml";
pub const ENV_PREFIX: &str = "ESTREAMER_CEF_";

/// The whole configuration file.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The FMCs to read events from: one `[fmc]` table, or one `[[fmc]]` table per FMC (all
    /// feed the same outputs; each has its own session, bookmark and metadata cache).
    #[serde(default = "one_fmc", rename = "fmc", with = "one_or_many")]
    pub fmcs: Vec<FmcConfig>,
    /// What to ask the FMC for (request flags and record versions).
    #[serde(default)]
    pub subscription: SubscriptionConfig,
    /// Where the bookmark and the metadata cache live.
    #[serde(default)]
    pub state: StateConfig,
    /// Which decoded records are written out.
    #[serde(default)]
    pub records: RecordsConfig,
    /// The metadata cache's bounds.
    #[serde(default)]
    pub metadata: MetadataConfig,
    /// CEF header values and mapping tables.
    #[serde(default)]
    pub cef: CefConfig,
    /// Periodic status line and Prometheus metrics.
    #[serde(default)]
    pub monitor: MonitorConfig,
    /// Where events go: one `[[output]]` table per receiver (udp, tcp, tls, file, stdout). Every
    /// output gets every event; the bookmark moves only past what all of them delivered.
    #[serde(default, rename = "output")]
    pub outputs: Vec<output::OutputConfig>,
    /// A troubleshooting copy of what is sent (`--tap-file` on the command line).
    #[serde(default)]
    pub tap: Option<output::TapConfig>,
}

fn one_fmc() -> Vec<FmcConfig> {
    vec![FmcConfig::default()]
}

impl Default for Config {
    fn default() -> Self {
        Config {
            fmcs: one_fmc(),
            subscription: SubscriptionConfig::default(),
            state: StateConfig::default(),
            records: RecordsConfig::default(),
            metadata: MetadataConfig::default(),
            cef: CefConfig::default(),
            monitor: MonitorConfig::default(),
            outputs: Vec::new(),
            tap: None,
        }
    }
}

/// The FMC connection (`[fmc]`, or one `[[fmc]]` table per FMC).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FmcConfig {
    /// The name this FMC goes by in log lines, status lines and `/metrics` (`fmc="..."`).
    /// Default: its host (with `:port` when the port is not 8302). Names must differ.
    pub name: Option<String>,
    /// The FMC's host name or address.
    pub host: String,
    /// An FMC high-availability pair (or more peers) as one source, instead of `host`:
    /// `hosts = ["fmc-a.example", "fmc-b.example:8302"]`. The forwarder streams from one peer
    /// and switches to the next when the active one is unreachable or silent for
    /// `failover_after`; events are de-duplicated by their device-made identity.
    pub hosts: Vec<String>,
    /// eStreamer port (8302).
    pub port: u16,
    /// The client PKCS12 the FMC issued (System > Integration > eStreamer > Create Client).
    pub pkcs12: PathBuf,
    /// File holding the PKCS12 password (one line). Alternatives: `pkcs12_password`, or the
    /// environment variable `ESTREAMER_CEF_FMC__PKCS12_PASSWORD`.
    pub pkcs12_password_file: Option<PathBuf>,
    /// The PKCS12 password itself (prefer `pkcs12_password_file`).
    pub pkcs12_password: Option<Secret>,
    /// How to verify the FMC's certificate: "pkcs12" (the CA certificates inside the PKCS12, the
    /// FMC's own CA), a PEM file path (CA or pinned FMC certificate), "system" (the system trust
    /// store), or "insecure" (no verification; a warning is logged at every connect).
    pub server_ca: ServerTrust,
    /// Check that the FMC's certificate names `host` (DNS name or IP address). Turn off when you
    /// connect by an address the certificate does not list; the CA check still applies.
    pub verify_hostname: bool,
    /// Where to start: "bookmark" (resume where we stopped; "genesis" if there is no bookmark
    /// yet), "genesis" (the oldest events the FMC has), or "now" (only new events).
    pub start: Start,
    /// Time allowed for name resolution, TCP connect and TLS handshake together.
    #[serde(with = "duration")]
    pub connect_timeout: Duration,
    /// No message (not even a keepalive) for this long means the session is dead: reconnect.
    #[serde(with = "duration")]
    pub idle_timeout: Duration,
    /// First wait before reconnecting; it doubles after each failed attempt (each wait is
    /// 75–100 % of that, and never below 100ms) up to `reconnect_delay_max`.
    #[serde(with = "duration")]
    pub reconnect_delay_min: Duration,
    /// Longest wait between reconnect attempts. Reconnection never gives up.
    #[serde(with = "duration")]
    pub reconnect_delay_max: Duration,
    /// HA pair: switch to the other peer when the active one has been unreachable, or has sent
    /// nothing (not even a keepalive), for this long.
    #[serde(with = "duration")]
    pub failover_after: Duration,
    /// HA pair: after a switch, ask the new peer for events from this long before the last
    /// archive second received from the old one, to cover the peers' clock and archive
    /// differences. What comes twice is recognized by its identity and dropped.
    #[serde(with = "duration")]
    pub failover_overlap: Duration,
    /// HA pair: identities of delivered events kept (and saved in the state folder) to
    /// recognize what the new peer sends again after a switch. Size it to at least the events
    /// per second times `failover_overlap` plus a minute; about 16 bytes each.
    pub identity_window: usize,
    /// HA pair: the events per second this FMC is expected to send at its busiest, used only to
    /// warn when `identity_window` is too small to hold `failover_overlap` plus a minute of them
    /// (the FMC does not announce its rate; `/metrics` shows the real one).
    pub expected_rate: u64,
    /// This FMC's own state folder (bookmark, metadata cache, output journals). Default:
    /// `<state.dir>/<host>-<port>` (the first of `hosts`).
    pub state_dir: Option<PathBuf>,
    /// This FMC's own `[subscription]` (default: the top-level one).
    pub subscription: Option<SubscriptionConfig>,
    /// This FMC's own `[records]` filter (default: the top-level one).
    pub records: Option<RecordsConfig>,
}

/// `fmc` is one table or an array of tables; errors keep naming the key.
mod one_or_many {
    use super::FmcConfig;
    use serde::de::{self, MapAccess, SeqAccess, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(v: &[FmcConfig], s: S) -> Result<S::Ok, S::Error> {
        match v {
            [one] => one.serialize(s),
            many => many.serialize(s),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<FmcConfig>, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Vec<FmcConfig>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an [fmc] table or [[fmc]] tables")
            }
            fn visit_map<A: MapAccess<'de>>(self, m: A) -> Result<Self::Value, A::Error> {
                FmcConfig::deserialize(de::value::MapAccessDeserializer::new(m)).map(|f| vec![f])
            }
            fn visit_seq<A: SeqAccess<'de>>(self, s: A) -> Result<Self::Value, A::Error> {
                Vec::<FmcConfig>::deserialize(de::value::SeqAccessDeserializer::new(s))
            }
        }
        d.deserialize_any(V)
    }
}

impl Default for FmcConfig {
    fn default() -> Self {
        FmcConfig {
            host: "fmc.example.org".into(),
            port: 8302,
            pkcs12: "/etc/estreamer-cef/client.pkcs12".into(),
            pkcs12_password_file: Some("/etc/estreamer-cef/client.pass".into()),
            pkcs12_password: None,
            server_ca: ServerTrust::Pkcs12Ca,
            verify_hostname: true,
            start: Start::Bookmark,
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(120),
            reconnect_delay_min: Duration::from_secs(1),
            reconnect_delay_max: Duration::from_secs(60),
            failover_after: Duration::from_secs(60),
            failover_overlap: Duration::from_secs(60),
            identity_window: 262_144,
            expected_rate: 2_000,
            name: None,
            hosts: Vec::new(),
            state_dir: None,
            subscription: None,
            records: None,
        }
    }
}

/// One peer of an FMC: where to connect.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Peer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') && !self.host.starts_with('[') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl FmcConfig {
    /// Where to connect: `host`, or every entry of `hosts` (`name`, `name:port`, `[v6]:port`).
    pub fn peers(&self) -> Result<Vec<Peer>, String> {
        if self.hosts.is_empty() {
            return Ok(vec![Peer {
                host: self.host.clone(),
                port: self.port,
            }]);
        }
        self.hosts
            .iter()
            .map(|h| parse_peer(h, self.port))
            .collect()
    }

    /// Whether this FMC is an HA pair (several peers).
    pub fn is_ha(&self) -> bool {
        self.hosts.len() > 1
    }

    /// The name in logs and metrics.
    pub fn name(&self) -> String {
        if let Some(n) = &self.name {
            return n.clone();
        }
        match self.peers().ok().and_then(|p| p.into_iter().next()) {
            Some(p) if p.port == 8302 => p.host,
            Some(p) => p.to_string(),
            None => self.host.clone(),
        }
    }

    /// The PKCS12 password: `pkcs12_password` if set (config or environment), else the file.
    pub fn password(&self) -> Result<String, String> {
        crate::net::password::pkcs12_password(
            self.pkcs12_password.as_ref(),
            self.pkcs12_password_file.as_deref(),
            "fmc.pkcs12_password_file",
        )
        .map(|p| p.expose().to_string())
        .map_err(|e| {
            format!(
                "{e}\n  → put the password the FMC asked for when you created the client in that \
                 file (for the packaged service: owner root, group estreamer-cef, mode 0640, so \
                 that the service's user can read it and no other user can), or set \
                 fmc.pkcs12_password_file / ESTREAMER_CEF_FMC__PKCS12_PASSWORD"
            )
        })
    }
}

/// What the FMC session (`estreamer::session`) needs to know of one FMC, built from the
/// configuration with [`SessionConfig::from_config`]. A configuration type, so it lives here: the
/// session depends on the configuration, never the other way round.
#[derive(Clone, Debug)]
pub struct SessionConfig {
    /// Where the FMC is: one peer, or the peers of an HA pair (each dialled by its name or
    /// address, which its certificate is checked against).
    pub peers: Vec<Peer>,
    /// Our certificate and key (the FMC-issued PKCS12).
    pub identity: ClientIdentity,
    /// How the FMC's certificate is verified.
    pub trust: ServerTrust,
    pub verify_hostname: bool,
    /// Time allowed for name resolution, TCP connect and TLS handshake together.
    pub connect_timeout: Duration,
    /// No message at all (not even a keepalive Null) for this long: the connection is dead.
    pub idle_timeout: Duration,
    /// The first wait before reconnecting; it doubles after each failed attempt.
    pub reconnect_delay_min: Duration,
    /// Upper bound of the reconnect backoff.
    pub reconnect_delay_max: Duration,
    /// HA pair: switch peers when the active one was unreachable or silent this long.
    pub failover_after: Duration,
    /// HA pair: a new peer is asked for events from this long before where the old one was.
    pub failover_overlap: Duration,
    /// Request flags (section 3 of the reference).
    pub flags: u32,
    /// The extended request's event list (used when `flags` has the extended bit).
    pub events: Vec<EventVersion>,
    /// Where the first connection starts.
    pub start: StartAt,
}

impl SessionConfig {
    /// The session settings of FMC `i`, with the loaded identity and the start point the caller
    /// chose (see [`Config::start_at_of`]). Lives here so that the session does not depend on
    /// the whole configuration.
    pub fn from_config(
        cfg: &Config,
        i: usize,
        identity: ClientIdentity,
        start: StartAt,
    ) -> Result<SessionConfig, String> {
        let fmc = &cfg.fmcs[i];
        let subscription = cfg.subscription_of(i);
        Ok(SessionConfig {
            peers: fmc.peers()?,
            identity,
            trust: fmc.server_ca.clone(),
            verify_hostname: fmc.verify_hostname,
            connect_timeout: fmc.connect_timeout,
            idle_timeout: fmc.idle_timeout,
            reconnect_delay_min: fmc.reconnect_delay_min,
            reconnect_delay_max: fmc.reconnect_delay_max,
            failover_after: fmc.failover_after,
            failover_overlap: fmc.failover_overlap,
            flags: subscription.flags(),
            events: subscription.events.clone(),
            start,
        })
    }
}

/// `fmc.start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Start {
    Genesis,
    Now,
    Bookmark,
}

/// Request flags (`[subscription]`), named after what they ask for.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscriptionConfig {
    /// Packet data (record 2) with intrusion events.
    pub packets: bool,
    /// Intrusion events with impact flags.
    pub intrusion: bool,
    /// Metadata (version 4): names for ids. Needed for readable events.
    pub metadata: bool,
    /// Intrusion event extra data (record 110).
    pub extra_data: bool,
    /// Intrusion impact alerts (record 9).
    pub impact_alerts: bool,
    /// Archive timestamps in every event: what the bookmark is made of. Leave on.
    pub archive_timestamps: bool,
    /// Extended request: negotiate the event types and versions below with a StreamingRequest.
    pub extended: bool,
    /// The extended request's (event code, version) list. The default is the newest versions
    /// the decoder has layouts for (intrusion 12/9, metadata 21/4, correlation 31/9, discovery
    /// 61/11, connection 71/14, user 91/7, malware 101/7, file 111/6, impact 131/2).
    pub events: Vec<EventVersion>,
}

impl Default for SubscriptionConfig {
    fn default() -> Self {
        SubscriptionConfig {
            packets: true,
            intrusion: true,
            metadata: true,
            extra_data: true,
            impact_alerts: true,
            archive_timestamps: true,
            extended: true,
            events: DEFAULT_EXTENDED_EVENTS.to_vec(),
        }
    }
}

impl SubscriptionConfig {
    pub fn flags(&self) -> u32 {
        let mut f = 0;
        for (on, bit) in [
            (self.packets, flag::PACKETS),
            (self.impact_alerts, flag::IMPACT_ALERTS),
            (self.intrusion, flag::INTRUSION),
            (self.metadata, flag::METADATA_V4),
            (self.archive_timestamps, flag::ARCHIVE_TIMESTAMPS),
            (self.extra_data, flag::EXTRA_DATA),
            (self.extended, flag::EXTENDED),
        ] {
            if on {
                f |= bit;
            }
        }
        f
    }
}

/// `[state]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StateConfig {
    /// Bookmark and metadata cache live here, in one subfolder per FMC (`<host>-<port>`).
    pub dir: PathBuf,
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            dir: "/var/lib/estreamer-cef".into(),
        }
    }
}

fn parse_peer(text: &str, default_port: u16) -> Result<Peer, String> {
    let bad = || {
        format!(
            "fmc.hosts has {text:?}: write a host name or address, optionally with :port \
             (IPv6 with a port as [address]:port)"
        )
    };
    let t = text.trim();
    if t.is_empty() {
        return Err(bad());
    }
    if let Some(rest) = t.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']').ok_or_else(bad)?;
        let port = match tail.strip_prefix(':') {
            Some(p) => p.parse().map_err(|_| bad())?,
            None if tail.is_empty() => default_port,
            None => return Err(bad()),
        };
        return Ok(Peer {
            host: addr.to_string(),
            port,
        });
    }
    match t.matches(':').count() {
        0 => Ok(Peer {
            host: t.to_string(),
            port: default_port,
        }),
        1 => {
            let (h, p) = t.split_once(':').ok_or_else(bad)?;
            Ok(Peer {
                host: h.to_string(),
                port: p.parse().map_err(|_| bad())?,
            })
        }
        // A bare IPv6 address.
        _ => Ok(Peer {
            host: t.to_string(),
            port: default_port,
        }),
    }
}

impl Config {
    /// The first (in most configurations the only) FMC.
    pub fn fmc(&self) -> &FmcConfig {
        &self.fmcs[0]
    }

    /// The first FMC, to change (programs that build a configuration for one FMC).
    pub fn fmc_mut(&mut self) -> &mut FmcConfig {
        if self.fmcs.is_empty() {
            self.fmcs.push(FmcConfig::default());
        }
        &mut self.fmcs[0]
    }

    /// The state folder of FMC `i`: its `state_dir`, else `<state.dir>/<host>-<port>` of its
    /// first peer (the folder a single `[fmc]` has always used).
    pub fn fmc_state_dir_of(&self, i: usize) -> PathBuf {
        let f = &self.fmcs[i];
        if let Some(d) = &f.state_dir {
            return d.clone();
        }
        let (host, port) = match f.peers().ok().and_then(|p| p.into_iter().next()) {
            Some(p) => (p.host, p.port),
            None => (f.host.clone(), f.port),
        };
        let host = crate::metadata::store::safe_file_part(&host);
        self.state.dir.join(format!("{host}-{port}"))
    }

    /// The state folder of the first FMC.
    pub fn fmc_state_dir(&self) -> PathBuf {
        self.fmc_state_dir_of(0)
    }

    /// FMC `i`'s subscription (its own, else the top-level one).
    pub fn subscription_of(&self, i: usize) -> &SubscriptionConfig {
        self.fmcs[i]
            .subscription
            .as_ref()
            .unwrap_or(&self.subscription)
    }

    /// FMC `i`'s record filter (its own, else the top-level one).
    pub fn records_of(&self, i: usize) -> &RecordsConfig {
        self.fmcs[i].records.as_ref().unwrap_or(&self.records)
    }

    /// This configuration narrowed to FMC `i` reached at `peer`, with its own subscription and
    /// records as the top-level ones: what `test` checks one connection with.
    pub fn narrowed(&self, i: usize, peer: &Peer) -> Config {
        let mut c = self.clone();
        let mut f = self.fmcs[i].clone();
        c.subscription = self.subscription_of(i).clone();
        c.records = self.records_of(i).clone();
        c.state.dir = self.fmc_state_dir_of(i);
        f.state_dir = Some(c.state.dir.clone());
        f.host = peer.host.clone();
        f.port = peer.port;
        f.hosts = Vec::new();
        f.subscription = None;
        f.records = None;
        c.fmcs = vec![f];
        c
    }

    /// The start point for the first connection of FMC `i`, given its saved bookmark second.
    pub fn start_at_of(&self, i: usize, bookmark: Option<u32>) -> StartAt {
        match (self.fmcs[i].start, bookmark) {
            (Start::Genesis, _) => StartAt::Genesis,
            (Start::Now, _) => StartAt::Now,
            (Start::Bookmark, Some(s)) if s > 0 => StartAt::Second(s),
            (Start::Bookmark, _) => StartAt::Genesis,
        }
    }

    /// The start point for the first connection, given the saved bookmark second (if any).
    pub fn start_at(&self, bookmark: Option<u32>) -> StartAt {
        match (self.fmc().start, bookmark) {
            (Start::Genesis, _) => StartAt::Genesis,
            (Start::Now, _) => StartAt::Now,
            (Start::Bookmark, Some(s)) if s > 0 => StartAt::Second(s),
            (Start::Bookmark, _) => StartAt::Genesis,
        }
    }
}

/// Which records are written out (`[records]`), by the categories eNcore users know, plus
/// explicit record types. Metadata is always decoded to fill the cache, even when not written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RecordsConfig {
    /// Connection events (71).
    pub connections: bool,
    /// Intrusion events (400) and extra data (110).
    pub intrusion: bool,
    /// Packets (2).
    pub packets: bool,
    /// Host discovery (RNA) events.
    pub rna: bool,
    /// User activity (RUA) and VPN events.
    pub rua: bool,
    /// File, malware, correlation and impact events.
    pub core: bool,
    /// Metadata records themselves (normally they only feed the cache).
    pub metadata: bool,
    /// Record types written even when their category is off.
    pub include: Vec<u32>,
    /// Record types never written.
    pub exclude: Vec<u32>,
    /// Write records of types the catalog does not know, as generic records (type, length,
    /// archive timestamp, payload in hex).
    pub unknown: bool,
}

impl Default for RecordsConfig {
    fn default() -> Self {
        RecordsConfig {
            connections: true,
            intrusion: true,
            packets: true,
            rna: true,
            rua: true,
            core: true,
            metadata: false,
            include: Vec::new(),
            exclude: Vec::new(),
            unknown: true,
        }
    }
}

/// `[metadata]`: the cache's bounds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetadataConfig {
    /// Most entries kept (oldest evicted first).
    pub max_entries: usize,
    /// Most bytes of names kept.
    pub max_text_bytes: usize,
}

impl Default for MetadataConfig {
    fn default() -> Self {
        let l = crate::metadata::Limits::default();
        MetadataConfig {
            max_entries: l.max_entries,
            max_text_bytes: l.max_text_bytes,
        }
    }
}

impl MetadataConfig {
    pub fn limits(&self) -> crate::metadata::Limits {
        crate::metadata::Limits {
            max_entries: self.max_entries,
            max_text_bytes: self.max_text_bytes,
            ..crate::metadata::Limits::default()
        }
    }
}

/// `[cef]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CefConfig {
    /// Device Vendor header field.
    pub vendor: String,
    /// Device Product header field.
    pub product: String,
    /// Device Version header field (eNcore sends "6.0"; keep it unless your content expects
    /// another value).
    pub version: String,
    /// Folder of mapping tables that override or extend the built-in ones, per record type.
    pub mappings_dir: PathBuf,
    /// Longest `csN` value in characters (1023 for older ArcSight; 4000 allowed by CEF v27).
    pub cs_max_len: usize,
    /// Which keys the CEF lines carry: "standard" (the CEF dictionary's keys) or "encore" (the
    /// keys Cisco's eNcore sends, for content built on its output). See README "CEF profiles".
    pub profile: String,
}

impl Default for CefConfig {
    fn default() -> Self {
        CefConfig {
            vendor: "Cisco".into(),
            product: "Firepower".into(),
            version: "6.0".into(),
            mappings_dir: "/etc/estreamer-cef/mappings".into(),
            cs_max_len: 1023,
            profile: crate::mapping::builtin::STANDARD.into(),
        }
    }
}

/// `[monitor]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MonitorConfig {
    /// How often the status line is logged.
    #[serde(with = "duration")]
    pub period: Duration,
    /// Address for `GET /metrics` (Prometheus text format), e.g. "127.0.0.1:9810". Off when unset.
    pub listen: Option<std::net::SocketAddr>,
}

impl Default for MonitorConfig {
    fn default() -> Self {
        MonitorConfig {
            period: Duration::from_secs(120),
            listen: None,
        }
    }
}

/// A configuration error, worded for the user.
#[derive(Debug)]
pub struct ConfigError(pub String);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// Where the configuration comes from.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    /// `--config PATH`: must exist. Without it the default path is used if it exists.
    pub file: Option<PathBuf>,
    /// Values from command-line flags (highest precedence), as a TOML-shaped table.
    pub overrides: Vec<(String, toml::Value)>,
    /// Skip the environment (tests).
    pub no_env: bool,
}

impl Config {
    /// Loads the layered configuration.
    pub fn load(sources: &Sources) -> Result<(Config, Option<PathBuf>), ConfigError> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        // `[[fmc]]` tables: an `fmc.*` override from the environment or the command line would
        // replace them all with one table, so it is refused.
        let mut many_fmcs = false;
        let file = match &sources.file {
            Some(p) => Some(p.clone()),
            None if Path::new(DEFAULT_CONFIG_PATH).exists() => Some(DEFAULT_CONFIG_PATH.into()),
            None => None,
        };
        let mut text = None;
        if let Some(path) = &file {
            // Read it ourselves: figment silently skips a missing file, and we want to say why
            // a file cannot be read.
            let read = std::fs::read_to_string(path).map_err(|e| {
                ConfigError(format!(
                    "cannot read the configuration file {}: {e}\n  → check the path and that the \
                     service user can read it (see `estreamer-cef check-config --help`)",
                    path.display()
                ))
            })?;
            let doc = read.parse::<toml::Table>().map_err(|e| {
                ConfigError(format!(
                    "{} is not valid TOML: {}",
                    path.display(),
                    e.to_string().trim_end()
                ))
            })?;
            many_fmcs = doc.get("fmc").is_some_and(|v| v.is_array());
            let old = renamed::old_keys_in_file(&doc);
            if !old.is_empty() {
                return Err(ConfigError(
                    old.iter()
                        .map(|m| {
                            let f = diagnostic::SourceFile { path, text: &read };
                            match diagnostic::place_validation_error(m, &f) {
                                placed if placed != *m => placed,
                                _ => format!("{}: {m}", path.display()),
                            }
                        })
                        .collect::<Vec<_>>()
                        .join("\n"),
                ));
            }
            fig = fig.merge(Toml::file_exact(path));
            text = Some(read);
        }
        if !sources.no_env {
            let old = renamed::old_keys_in_env(ENV_PREFIX, std::env::vars());
            if !old.is_empty() {
                return Err(ConfigError(old.join("\n")));
            }
            if many_fmcs
                && let Some((k, _)) = std::env::vars().find(|(k, _)| {
                    k.to_ascii_uppercase()
                        .starts_with(&format!("{ENV_PREFIX}FMC__"))
                })
            {
                return Err(ConfigError(format!(
                    "the environment sets {k}, but the configuration has several [[fmc]] tables: \
                     an FMC setting from the environment would apply to which one? Put it in \
                     the [[fmc]] table instead, and unset {k}"
                )));
            }
            fig = fig.merge(Env::prefixed(ENV_PREFIX).split("__").lowercase(true));
        }
        for (key, value) in &sources.overrides {
            if many_fmcs && key.starts_with("fmc.") {
                return Err(ConfigError(format!(
                    "the command line sets {key}, but the configuration has several [[fmc]] \
                     tables: set it in each [[fmc]] table instead"
                )));
            }
            fig = fig.merge(Serialized::default(key, value.clone()));
        }
        let source = file.as_deref().zip(text.as_deref());
        let source = source.map(|(path, text)| diagnostic::SourceFile { path, text });
        let cfg: Config = fig
            .extract()
            .map_err(|e| ConfigError(diagnostic::describe(e, source.as_ref())))?;
        cfg.validate().map_err(|e| match &source {
            Some(f) => ConfigError(diagnostic::place_validation_error(&e.0, f)),
            None => e,
        })?;
        Ok((cfg, file))
    }

    fn validate(&self) -> Result<(), ConfigError> {
        if self.fmcs.is_empty() {
            return Err(ConfigError(
                "no FMC configured: add an [fmc] table (or one [[fmc]] table per FMC)".into(),
            ));
        }
        let mut names: Vec<(String, usize)> = Vec::new();
        let mut dirs: Vec<(PathBuf, usize)> = Vec::new();
        for i in 0..self.fmcs.len() {
            let key = if self.fmcs.len() == 1 {
                "fmc".to_string()
            } else {
                format!("fmc[{i}]")
            };
            self.validate_fmc(i, &key)?;
            let name = self.fmcs[i].name();
            if let Some((_, j)) = names.iter().find(|(n, _)| *n == name) {
                return Err(ConfigError(format!(
                    "fmc[{j}] and fmc[{i}] are both named {name:?}: give each [[fmc]] its own name = \"...\""
                )));
            }
            names.push((name, i));
            let dir = self.fmc_state_dir_of(i);
            if let Some((_, j)) = dirs.iter().find(|(d, _)| *d == dir) {
                return Err(ConfigError(format!(
                    "fmc[{j}] and fmc[{i}] would share the state folder {}: give one of them its own state_dir",
                    dir.display()
                )));
            }
            dirs.push((dir, i));
        }
        for (name, d) in [("monitor.period", self.monitor.period)] {
            if d.is_zero() {
                return Err(ConfigError(format!(
                    "{name} is 0: give a duration such as \"10s\""
                )));
            }
        }
        for (i, o) in self.outputs.iter().enumerate() {
            o.validate(&format!("output[{i}]"))
                .map_err(|e| ConfigError(e.to_string()))?;
        }
        if let Some(t) = &self.tap {
            t.validate("tap").map_err(|e| ConfigError(e.to_string()))?;
        }
        if self.cef.cs_max_len == 0 || self.cef.cs_max_len > 4000 {
            return Err(ConfigError(format!(
                "cef.cs_max_len = {} is out of range: use 1023 (older ArcSight) up to 4000",
                self.cef.cs_max_len
            )));
        }
        let profiles = crate::mapping::builtin::profile_names();
        if !profiles.contains(&self.cef.profile.as_str()) {
            return Err(ConfigError(format!(
                "cef.profile = {:?} is not a profile: use {} (\"standard\": the CEF dictionary's \
                 keys; \"encore\": the keys Cisco's eNcore sends)",
                self.cef.profile,
                profiles
                    .iter()
                    .map(|p| format!("{p:?}"))
                    .collect::<Vec<_>>()
                    .join(" or ")
            )));
        }
        Ok(())
    }

    fn validate_fmc(&self, i: usize, key: &str) -> Result<(), ConfigError> {
        let fmc = &self.fmcs[i];
        if fmc.hosts.is_empty() && fmc.host.trim().is_empty() {
            return Err(ConfigError(format!(
                "{key}.host is empty: set it to the FMC's name or address"
            )));
        }
        if !fmc.hosts.is_empty() && fmc.host != FmcConfig::default().host {
            return Err(ConfigError(format!(
                "{key} has both host and hosts: use host for one FMC, hosts = [\"a\", \"b\"] for an HA pair"
            )));
        }
        fmc.peers()
            .map_err(|e| ConfigError(format!("{key}: {e}")))?;
        if fmc.port == 0 {
            return Err(ConfigError(format!(
                "{key}.port is 0: the eStreamer port is 8302"
            )));
        }
        for e in &self.subscription_of(i).events {
            if e.event == 0 || e.version == 0 {
                return Err(ConfigError(format!(
                    "subscription.events has {{ event = {}, version = {} }}: both must be non-zero \
                     (the list's terminator is added for you)",
                    e.event, e.version
                )));
            }
        }
        for (name, d) in [
            ("connect_timeout", fmc.connect_timeout),
            ("idle_timeout", fmc.idle_timeout),
            ("reconnect_delay_min", fmc.reconnect_delay_min),
            ("reconnect_delay_max", fmc.reconnect_delay_max),
            ("failover_after", fmc.failover_after),
        ] {
            if d.is_zero() {
                return Err(ConfigError(format!(
                    "{key}.{name} is 0: give a duration such as \"10s\""
                )));
            }
        }
        if fmc.reconnect_delay_max < fmc.reconnect_delay_min {
            return Err(ConfigError(format!(
                "{key}.reconnect_delay_max = \"{}\" is below {key}.reconnect_delay_min = \"{}\"",
                duration::format(&fmc.reconnect_delay_max),
                duration::format(&fmc.reconnect_delay_min)
            )));
        }
        if fmc.is_ha() && fmc.identity_window == 0 {
            return Err(ConfigError(format!(
                "{key}.identity_window is 0: an HA pair needs room for the identities of the \
                 events it may receive twice (default 262144)"
            )));
        }
        Ok(())
    }

    /// The configuration as TOML with secrets redacted, for `check-config`.
    pub fn to_redacted_toml(&self) -> String {
        toml::to_string_pretty(self)
            .unwrap_or_else(|e| format!("# cannot print configuration: {e}\n"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn load_text(text: &str) -> Result<Config, ConfigError> {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(text.as_bytes()).unwrap();
        Config::load(&Sources {
            file: Some(f.path().to_path_buf()),
            overrides: vec![],
            no_env: true,
        })
        .map(|(c, _)| c)
    }

    #[test]
    fn defaults_give_the_reference_flags() {
        assert_eq!(Config::default().subscription.flags(), 0x4890_0061);
        let s = SubscriptionConfig {
            extended: false,
            ..SubscriptionConfig::default()
        };
        assert_eq!(s.flags(), 0x0890_0061);
    }

    #[test]
    fn file_values_override_defaults() {
        let c = load_text(
            "[fmc]\nhost = \"10.0.0.5\"\nconnect_timeout = \"3s\"\nstart = \"now\"\nserver_ca = \"insecure\"\n\
             [subscription]\nevents = [{ event = 12, version = 9 }]\n",
        )
        .unwrap();
        assert_eq!(c.fmc().host, "10.0.0.5");
        assert_eq!(c.fmc().connect_timeout, Duration::from_secs(3));
        assert_eq!(c.fmc().start, Start::Now);
        assert_eq!(c.fmc().server_ca, ServerTrust::Insecure);
        assert_eq!(c.subscription.events.len(), 1);
        assert_eq!(c.fmc().port, 8302);
    }

    #[test]
    fn unknown_keys_and_wrong_types_name_the_file_and_key() {
        let e = load_text("[fmc]\nhots = \"x\"\n").unwrap_err().0;
        assert!(e.contains("hots") && e.contains("fmc"), "{e}");
        assert!(e.contains(".toml") || e.contains("tmp"), "{e}");
        let e = load_text("[fmc]\nport = \"eight\"\n").unwrap_err().0;
        assert!(e.contains("fmc.port"), "{e}");
        let e = load_text("[fmc]\nconnect_timeout = \"10 parsecs\"\n")
            .unwrap_err()
            .0;
        assert!(e.contains("connect_timeout"), "{e}");
        let e = load_text("[fmc\nhost=1").unwrap_err().0;
        assert!(e.contains("not valid TOML"), "{e}");
    }

    /// Each error names the file and the key's line, and says in plain words what to write.
    #[test]
    fn errors_give_the_line_a_suggestion_and_plain_words() {
        let cases = [
            (
                "[fmc]\nhost = \"a\"\nprot = 8302\n",
                ":3: [fmc] has no key `prot`; did you mean `port`",
            ),
            (
                "[fmc]\nport = \"eight\"\n",
                ":2: `fmc.port` = \"eight\": write a port number, 1 to 65535",
            ),
            (
                "[fmc]\nport = 70000\n",
                ":2: `fmc.port` = 70000: write a port number, 1 to 65535",
            ),
            (
                "[fmc]\nverify_hostname = \"no\"\n",
                ":2: `fmc.verify_hostname` = \"no\": write true or false",
            ),
            (
                "[output]\ntransport = \"udp\"\nhost = \"h\"\n",
                ":1: `output` is a table of tables: write [[output]]",
            ),
            (
                "[[output]]\ntransport = \"stdout\"\n\n[[output]]\ntransport = \"udp\"\nhost = \"h\"\nframing = \"lf\"\n",
                ":7: `framing` is only for tcp and tls outputs, and output[1] is udp: remove it",
            ),
            (
                "[[output]]\ntransport = \"udp\"\nhost = \"h\"\nport = 70000\n",
                ":4: `output[0].port` = 70000: write a port number",
            ),
            (
                "[[output]]\ntransport = \"udpp\"\nhost = \"h\"\n",
                ":2: `output[0].transport` = \"udpp\" is not one of them; did you mean `udp`?",
            ),
            (
                "[[output]]\ntransport = \"kafka\"\nbrokers = [\"b:9092\"]\nsasl_mechanism = \"scram-sha512\"\n",
                ":4: `output[0].sasl_mechanism` = \"scram-sha512\" is not one of them; did you mean `scram-sha-512`",
            ),
            ("[fmc]\nhost = \"a\"\nport = 0\n", ":3: fmc.port is 0"),
            (
                "[[output]]\ntransport = \"tcp\"\nhost = \"h\"\nconnect_timeout_secs = 10\n",
                ":4: output[0].connect_timeout_secs was renamed",
            ),
        ];
        let e = load_text("[fmc]\npkcs12_password = 73915502\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains(":2: `fmc.pkcs12_password` = (value hidden)"),
            "{e}"
        );
        assert!(
            !e.contains("73915502"),
            "a password in an error message: {e}"
        );
        for (text, want) in cases {
            let e = load_text(text).unwrap_err().0;
            assert!(e.contains(want), "{text}\nwant {want:?} in:\n{e}");
            assert!(
                !e.contains("expected u16") && !e.contains("found map"),
                "{e}"
            );
        }
    }

    #[test]
    fn unreadable_file_is_an_error() {
        let e = Config::load(&Sources {
            file: Some("/nonexistent/estreamer-cef.toml".into()),
            ..Sources::default()
        })
        .unwrap_err()
        .0;
        assert!(e.contains("/nonexistent/estreamer-cef.toml"), "{e}");
    }

    #[test]
    fn secrets_are_redacted() {
        let c = load_text("[fmc]\npkcs12_password = \"hunter2\"\n").unwrap();
        assert_eq!(c.fmc().password().unwrap(), "hunter2");
        let shown = c.to_redacted_toml();
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("<redacted>"));
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn old_key_spellings_are_refused_with_the_new_name() {
        let e =
            load_text("[[output]]\ntransport = \"tcp\"\nhost = \"h\"\nconnect_timeout_secs = 10\n")
                .unwrap_err()
                .0;
        assert!(
            e.contains(
                "output[0].connect_timeout_secs was renamed: write connect_timeout = \"10s\""
            ),
            "{e}"
        );
        assert!(
            e.contains(".toml") || e.contains("tmp"),
            "the file is named: {e}"
        );
        let e = load_text("[fmc]\nreconnect_max_delay = \"90s\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains("fmc.reconnect_max_delay was renamed: write reconnect_delay_max = \"90s\""),
            "{e}"
        );
    }

    #[test]
    fn reconnect_delays_are_a_pair() {
        let c = load_text("[fmc]\nreconnect_delay_min = \"2s\"\nreconnect_delay_max = \"2m\"\n")
            .unwrap();
        assert_eq!(
            (c.fmc().reconnect_delay_min, c.fmc().reconnect_delay_max),
            (Duration::from_secs(2), Duration::from_secs(120))
        );
        let e = load_text("[fmc]\nreconnect_delay_min = \"2m\"\nreconnect_delay_max = \"1m\"\n")
            .unwrap_err()
            .0;
        assert!(
            e.contains("fmc.reconnect_delay_max = \"60s\" is below"),
            "{e}"
        );
    }

    #[test]
    fn flags_override_file_values() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        f.write_all(b"[fmc]\nhost = \"a\"\n").unwrap();
        let (c, _) = Config::load(&Sources {
            file: Some(f.path().into()),
            overrides: vec![("fmc.host".into(), toml::Value::String("b".into()))],
            no_env: true,
        })
        .unwrap();
        assert_eq!(c.fmc().host, "b");
    }

    #[test]
    fn state_dir_is_per_fmc() {
        let mut c = Config::default();
        c.fmc_mut().host = "fmc:1".into();
        assert_eq!(
            c.fmc_state_dir(),
            PathBuf::from("/var/lib/estreamer-cef/fmc_1-8302")
        );
    }
}
