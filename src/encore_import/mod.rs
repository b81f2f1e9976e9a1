//! Migration from eNcore, Cisco's Python client: its `estreamer.conf` (JSON) becomes an
//! equivalent, commented `estreamer-cef.toml`, and its bookmark our first resume point
//! ([`bookmark`]).
//!
//! The TOML is written as text, key by key, so that every setting can carry a comment saying
//! where it came from, and every eNcore setting that has no equivalent a comment saying why.
//! Unknown keys are errors (a misspelt eNcore key would otherwise vanish in the migration).

pub mod bookmark;
mod uri;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use uri::{Target, parse_uri};

/// The default password file of the packaged configuration: eNcore kept no password file.
const PASSWORD_FILE: &str = "/etc/estreamer-cef/client.pass";

/// One FMC as eNcore dialled it (`subscription.servers[i]`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Server {
    pub host: String,
    pub port: u16,
}

/// The converted configuration.
#[derive(Debug)]
pub struct Imported {
    /// The `estreamer-cef.toml` text.
    pub toml: String,
    /// The FMCs, in the order of the `[[fmc]]` tables.
    pub servers: Vec<Server>,
    /// eNcore's `start` (0 genesis, 1 now, 2 bookmark).
    pub start: u64,
}

/// Reads eNcore's `estreamer.conf` at `path` and converts it. `state_dir` is written as
/// `[state] dir` when given. Errors name the file and the key, and say what to do.
pub fn import_file(path: &Path, state_dir: Option<&Path>) -> Result<Imported, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read eNcore's configuration {}: {e}\n  → give the path of estreamer.conf \
             (in eNcore's folder, next to encore.sh)",
            path.display()
        )
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not valid JSON ({e})\n  → eNcore could not have read it either; fix it, or \
             give the estreamer.conf eNcore last ran with",
            path.display()
        )
    })?;
    // eNcore resolves relative paths (PKCS12, relfile:// outputs) from its own folder, where
    // estreamer.conf lives.
    let base = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    Converter {
        file: path,
        base: &base,
        out: String::new(),
    }
    .convert(&doc, state_dir)
}

struct Converter<'a> {
    file: &'a Path,
    base: &'a Path,
    out: String,
}

/// A TOML string literal.
fn quote(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// `key.k`, or `k` at the top level.
fn join(key: &str, k: &str) -> String {
    if key.is_empty() {
        k.to_string()
    } else {
        format!("{key}.{k}")
    }
}

/// An eNcore key that is a comment (`"@comment"`, `"star@comment"`...), not a setting.
fn is_comment(key: &str) -> bool {
    key.contains('@')
}

impl Converter<'_> {
    fn error(&self, key: &str, what: &str) -> String {
        format!("{}: key `{key}`: {what}", self.file.display())
    }

    fn line(&mut self, text: &str) {
        self.out.push_str(text);
        self.out.push('\n');
    }

    /// A comment of one or more lines (`\n`-separated).
    fn note(&mut self, text: &str) {
        for l in text.lines() {
            let _ = writeln!(self.out, "# {l}");
        }
    }

    /// The object at `key`, with only `known` keys (comments aside).
    fn object<'v>(
        &self,
        v: &'v Value,
        key: &str,
        known: &[&str],
    ) -> Result<&'v Map<String, Value>, String> {
        let map = v
            .as_object()
            .ok_or_else(|| self.error(key, "must be a JSON object { ... }"))?;
        for k in map.keys().filter(|k| !is_comment(k)) {
            if !known.contains(&k.as_str()) {
                return Err(self.error(
                    &join(key, k),
                    &format!(
                        "unknown eNcore setting (known here: {})\n  → fix its spelling or remove \
                         it; eNcore ignored it too",
                        known.join(", ")
                    ),
                ));
            }
        }
        Ok(map)
    }

    fn bool_at(
        &self,
        map: &Map<String, Value>,
        key: &str,
        k: &str,
    ) -> Result<Option<bool>, String> {
        match map.get(k) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(other) => Err(self.error(
                &join(key, k),
                &format!("must be true or false, not {other}"),
            )),
        }
    }

    fn number_at(
        &self,
        map: &Map<String, Value>,
        key: &str,
        k: &str,
    ) -> Result<Option<f64>, String> {
        match map.get(k) {
            None => Ok(None),
            Some(Value::Number(n)) => Ok(n.as_f64()),
            // eNcore's `configure --port` stores what it is given, a string included.
            Some(Value::String(s)) if s.trim().parse::<f64>().is_ok() => {
                Ok(s.trim().parse::<f64>().ok())
            }
            Some(other) => {
                Err(self.error(&join(key, k), &format!("must be a number, not {other}")))
            }
        }
    }

    fn string_at(
        &self,
        map: &Map<String, Value>,
        key: &str,
        k: &str,
    ) -> Result<Option<String>, String> {
        match map.get(k) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => {
                Err(self.error(&join(key, k), &format!("must be a string, not {other}")))
            }
        }
    }

    fn types_at(&self, map: &Map<String, Value>, key: &str, k: &str) -> Result<Vec<u32>, String> {
        let Some(v) = map.get(k) else {
            return Ok(Vec::new());
        };
        let bad = || {
            self.error(
                &join(key, k),
                &format!("must be a list of record type numbers such as [71, 400], not {v}"),
            )
        };
        v.as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|t| {
                t.as_u64()
                    .and_then(|t| u32::try_from(t).ok())
                    .ok_or_else(bad)
            })
            .collect()
    }

    /// A path as eNcore used it: relative ones are relative to its folder.
    fn path(&self, p: &str) -> PathBuf {
        let p = Path::new(p);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.base.join(p)
        }
    }

    fn convert(mut self, doc: &Value, state_dir: Option<&Path>) -> Result<Imported, String> {
        let top = self.object(
            doc,
            "",
            &[
                "connectTimeout",
                "responseTimeout",
                "enabled",
                "workerProcesses",
                "queueSize",
                "batchSize",
                "start",
                "alwaysAttemptToContinue",
                "conditions",
                "pcapMaxSize",
                "pcapOutputFormat",
                "monitor",
                "logging",
                "subscription",
                "handler",
            ],
        )?;
        let _ = writeln!(
            self.out,
            "# estreamer-cef configuration imported from eNcore's {} by `estreamer-cef \
             import-encore`.\n# Lines starting with `# eNcore:` are settings that do not carry \
             over, and why. Check the result with\n#   estreamer-cef -c THIS_FILE check-config\n\
             #   estreamer-cef -c THIS_FILE test\n# before starting the service with it.",
            self.file.display()
        );
        self.line("");

        // Settings with no place here, said once at the top.
        let mut dropped = Vec::new();
        if self.bool_at(top, "", "enabled")? == Some(false) {
            dropped.push(
                "enabled = false kept eNcore from streaming; the service is enabled with \
                 `systemctl enable --now estreamer-cef`."
                    .to_string(),
            );
        }
        for (k, why) in [
            (
                "workerProcesses",
                "the pipeline sizes its own workers to the machine",
            ),
            ("queueSize", "queues are sized by the pipeline"),
            ("batchSize", "queues are sized by the pipeline"),
            (
                "alwaysAttemptToContinue",
                "estreamer-cef always reconnects, and skips a record it cannot decode (counted)",
            ),
            (
                "conditions",
                "no control-loop conditions; systemd restarts the service",
            ),
            (
                "pcapMaxSize",
                "packet data is sent in the CEF event, within cef.cs_max_len",
            ),
            ("pcapOutputFormat", "packet data is sent in the CEF event"),
            (
                "logging",
                "the service logs to journald (`journalctl -u estreamer-cef`; -v for more)",
            ),
        ] {
            match top.get(k) {
                // A whole section: its name is enough.
                Some(v) if v.is_object() => {
                    dropped.push(format!("{k} is not carried over: {why}."))
                }
                Some(v) => dropped.push(format!("{k} = {v} is not carried over: {why}.")),
                None => {}
            }
        }
        if let Some(v) = self.number_at(top, "", "responseTimeout")? {
            dropped.push(format!(
                "responseTimeout = {v} is not carried over: a dead FMC is detected by \
                 fmc.idle_timeout (default \"120s\", the FMC sends keepalives)."
            ));
        }
        for d in &dropped {
            self.note(&format!("eNcore: {d}"));
        }
        if !dropped.is_empty() {
            self.line("");
        }

        let start = match top.get("start") {
            None => 2,
            Some(v) => match v.as_u64() {
                Some(s @ 0..=2) => s,
                _ => {
                    return Err(self.error(
                        "start",
                        &format!("is {v}: eNcore knows 0 (genesis), 1 (now) and 2 (bookmark)"),
                    ));
                }
            },
        };
        let connect_timeout = self.number_at(top, "", "connectTimeout")?;

        let subscription = top.get("subscription").ok_or_else(|| {
            self.error(
                "subscription",
                "is missing: eNcore needs subscription.servers",
            )
        })?;
        let subscription = self.object(subscription, "subscription", &["records", "servers"])?;
        let servers = self.servers(subscription, start, connect_timeout)?;
        if let Some(records) = subscription.get("records") {
            self.subscription(records)?;
        }
        if let Some(handler) = top.get("handler") {
            let handler = self.object(handler, "handler", &["outputters", "records"])?;
            if let Some(records) = handler.get("records") {
                self.records(records)?;
            }
            self.monitor(top.get("monitor"))?;
            if let Some(state) = state_dir {
                self.line("[state]");
                let _ = writeln!(self.out, "dir = {}", quote(&state.display().to_string()));
                self.line("");
            }
            self.outputters(handler.get("outputters"))?;
        } else {
            self.monitor(top.get("monitor"))?;
            self.note("eNcore: no handler.outputters: eNcore wrote nothing; add an [[output]].");
        }
        Ok(Imported {
            toml: self.out,
            servers,
            start,
        })
    }

    fn servers(
        &mut self,
        subscription: &Map<String, Value>,
        start: u64,
        connect_timeout: Option<f64>,
    ) -> Result<Vec<Server>, String> {
        let list = subscription
            .get("servers")
            .and_then(Value::as_array)
            .filter(|l| !l.is_empty())
            .ok_or_else(|| {
                self.error(
                    "subscription.servers",
                    "must be a list of at least one server { \"host\": ..., \"port\": 8302, \
                     \"pkcs12Filepath\": ... }",
                )
            })?;
        let many = list.len() > 1;
        if many {
            self.note(
                "eNcore: eNcore read only the first of subscription.servers; each one is an \
                 [[fmc]] here.\nIf two of them are the peers of an FMC HA pair, make them one \
                 [[fmc]] with hosts = [\"a\", \"b\"] instead.",
            );
        }
        let mut servers = Vec::new();
        for (i, s) in list.iter().enumerate() {
            let key = format!("subscription.servers[{i}]");
            let s = self.object(s, &key, &["host", "port", "pkcs12Filepath", "tlsVersion"])?;
            let host = self
                .string_at(s, &key, "host")?
                .filter(|h| !h.trim().is_empty())
                .ok_or_else(|| {
                    self.error(
                        &format!("{key}.host"),
                        "is missing or empty: the FMC's name or address",
                    )
                })?;
            let port = match self.number_at(s, &key, "port")? {
                None => 8302,
                Some(p) if p.fract() == 0.0 && (1.0..=65535.0).contains(&p) => p as u16,
                Some(p) => {
                    return Err(
                        self.error(&format!("{key}.port"), &format!("{p} is not a TCP port"))
                    );
                }
            };
            self.line(if many { "[[fmc]]" } else { "[fmc]" });
            let _ = writeln!(self.out, "host = {}", quote(&host));
            let _ = writeln!(self.out, "port = {port}");
            match self.string_at(s, &key, "pkcs12Filepath")? {
                Some(p) => {
                    let _ = writeln!(
                        self.out,
                        "pkcs12 = {}",
                        quote(&self.path(&p).display().to_string())
                    );
                }
                None => self.note(&format!(
                    "eNcore: {key} has no pkcs12Filepath: fmc.pkcs12 is the packaged default."
                )),
            }
            self.note(
                "eNcore asked for the PKCS12 password at its first start and kept the key, \
                 unencrypted,\nin <host>-<port>_pkcs.key; estreamer-cef reads the PKCS12 itself: \
                 write its password in\nthis file (one line, mode 0600).",
            );
            let _ = writeln!(self.out, "pkcs12_password_file = {}", quote(PASSWORD_FILE));
            if let Some(v) = s.get("tlsVersion") {
                self.note(&format!(
                    "eNcore: tlsVersion = {v} is not carried over: TLS 1.2 or 1.3 is negotiated \
                     (1.0 is never offered)."
                ));
            }
            let name = ["genesis", "now", "bookmark"][start as usize];
            let _ = writeln!(
                self.out,
                "start = {}  # eNcore start = {start}",
                quote(name)
            );
            if let Some(t) = connect_timeout {
                let ms = (t * 1000.0).round().max(1.0) as u64;
                let d = crate::config::duration::format(&std::time::Duration::from_millis(ms));
                let _ = writeln!(
                    self.out,
                    "connect_timeout = {}  # eNcore connectTimeout",
                    quote(&d)
                );
            }
            self.line("");
            servers.push(Server { host, port });
        }
        Ok(servers)
    }

    fn subscription(&mut self, records: &Value) -> Result<(), String> {
        let key = "subscription.records";
        let pairs = [
            ("packetData", "packets"),
            ("intrusion", "intrusion"),
            ("metadata", "metadata"),
            ("eventExtraData", "extra_data"),
            ("impactEventAlerts", "impact_alerts"),
            ("archiveTimestamps", "archive_timestamps"),
            ("extended", "extended"),
        ];
        let known: Vec<&str> = pairs.iter().map(|(e, _)| *e).collect();
        let map = self.object(records, key, &known)?;
        self.line("[subscription]");
        for (encore, ours) in pairs {
            if let Some(b) = self.bool_at(map, key, encore)? {
                let _ = writeln!(self.out, "{ours} = {b}");
                if encore == "archiveTimestamps" && !b {
                    self.note(
                        "eNcore: without archive timestamps there is no bookmark to resume \
                         from; turn it on.",
                    );
                }
            }
        }
        self.line("");
        Ok(())
    }

    fn records(&mut self, records: &Value) -> Result<(), String> {
        let key = "handler.records";
        let flags = [
            "core",
            "metadata",
            "connections",
            "packets",
            "intrusion",
            "rna",
            "rua",
        ];
        let mut known = flags.to_vec();
        known.extend(["include", "exclude"]);
        let map = self.object(records, key, &known)?;
        self.line("[records]");
        for f in flags {
            let Some(b) = self.bool_at(map, key, f)? else {
                continue;
            };
            if f == "metadata" && b {
                self.note(
                    "eNcore: metadata = true wrote metadata records with the JSON and Splunk \
                     adapters (its CEF adapter\nhad no CEF form for them); here they would be \
                     sent as events, so it is off. The names\nthey carry are in every event \
                     anyway.",
                );
                self.line("metadata = false");
                continue;
            }
            let _ = writeln!(self.out, "{f} = {b}");
        }
        for list in ["include", "exclude"] {
            let types = self.types_at(map, key, list)?;
            let text: Vec<String> = types.iter().map(u32::to_string).collect();
            let _ = writeln!(self.out, "{list} = [{}]", text.join(", "));
        }
        self.line("");
        Ok(())
    }

    fn monitor(&mut self, monitor: Option<&Value>) -> Result<(), String> {
        let Some(monitor) = monitor else {
            return Ok(());
        };
        let key = "monitor";
        let map = self.object(
            monitor,
            key,
            &[
                "period",
                "velocity",
                "bookmark",
                "subscribed",
                "handled",
                "details",
            ],
        )?;
        self.line("[monitor]");
        if let Some(p) = self.number_at(map, key, "period")? {
            let secs = p.max(1.0).round() as u64;
            let _ = writeln!(self.out, "period = \"{secs}s\"  # eNcore monitor.period");
        }
        let shown: Vec<&str> = ["velocity", "bookmark", "subscribed", "handled", "details"]
            .into_iter()
            .filter(|k| map.contains_key(*k))
            .collect();
        if !shown.is_empty() {
            self.note(&format!(
                "eNcore: monitor.{} are not carried over:\nthe status line always gives the \
                 rates, the bookmark and what was taken and delivered;\nmonitor.listen adds \
                 Prometheus /metrics.",
                shown.join(", monitor.")
            ));
        }
        self.line("");
        Ok(())
    }

    fn outputters(&mut self, outputters: Option<&Value>) -> Result<(), String> {
        let key = "handler.outputters";
        let list = match outputters {
            None => return Ok(()),
            Some(Value::Array(l)) => l,
            Some(other) => {
                return Err(self.error(key, &format!("must be a list of outputters, not {other}")));
            }
        };
        let mut written = 0;
        let mut tap = false;
        for (i, o) in list.iter().enumerate() {
            let key = format!("{key}[{i}]");
            let map = self.object(o, &key, &["adapter", "enabled", "passthru", "stream"])?;
            let adapter = self.string_at(map, &key, "adapter")?.ok_or_else(|| {
                self.error(
                    &format!("{key}.adapter"),
                    "is missing (cef, json, splunk...)",
                )
            })?;
            let stream = map.get("stream").ok_or_else(|| {
                self.error(&format!("{key}.stream"), "is missing: { \"uri\": ... }")
            })?;
            let skey = format!("{key}.stream");
            let stream = self.object(stream, &skey, &["uri", "options"])?;
            let uri_text = self
                .string_at(stream, &skey, "uri")?
                .ok_or_else(|| self.error(&format!("{skey}.uri"), "is missing"))?;
            let target = parse_uri(&uri_text, self.base)
                .map_err(|e| self.error(&format!("{skey}.uri"), &e))?;
            let enabled = self.bool_at(map, &key, "enabled")?.unwrap_or(false);
            if let (true, Target::Unsupported(why)) = (enabled, &target) {
                self.note(&format!(
                    "eNcore: outputter {i} ({adapter}, {uri_text}) is not carried over: {why}."
                ));
                self.line("");
                continue;
            }
            if !enabled {
                self.note(&format!(
                    "eNcore: outputter {i} ({adapter}, {uri_text}) was disabled: not carried over."
                ));
                self.line("");
                continue;
            }
            self.note(&format!(
                "eNcore outputter {i}: adapter {adapter:?}, {uri_text}"
            ));
            if self.bool_at(map, &key, "passthru")? == Some(true) {
                self.note(
                    "eNcore: passthru (raw records, undecoded) is not carried over: events are \
                     always decoded.",
                );
            }
            if let Some(opts) = stream.get("options") {
                self.note(&format!(
                    "eNcore: stream.options {opts} are not carried over:\neNcore started a new \
                     file every maxLogs lines; this file grows until rotate_bytes\n(or logrotate \
                     with copytruncate)."
                ));
            }
            match adapter.as_str() {
                "json" => {
                    if tap {
                        self.note(
                            "eNcore: a second JSON outputter: there is one tap; not carried \
                             over.",
                        );
                    } else if let Target::File(path) = &target {
                        self.note(
                            "The JSON tap writes one object per record with its decoded fields \
                             and its CEF line\n(not eNcore's JSON field names).",
                        );
                        self.line("[tap]");
                        let _ = writeln!(self.out, "path = {}", quote(&path.display().to_string()));
                        self.line("format = \"json\"");
                        tap = true;
                    } else {
                        self.note(&format!(
                            "eNcore: JSON to {uri_text} is not carried over: JSON goes only to a \
                             file (the [tap])."
                        ));
                    }
                    self.line("");
                    continue;
                }
                "cef" => {}
                other => self.note(&format!(
                    "eNcore: the {other:?} adapter has no equivalent: estreamer-cef sends CEF; \
                     point the reader at CEF\n(Splunk: its CEF add-on)."
                )),
            }
            self.output(&target);
            written += 1;
            self.line("");
        }
        if written == 0 {
            self.note(
                "eNcore: no enabled outputter wrote CEF: add an [[output]] (see README, \
                 Outputs).",
            );
        }
        Ok(())
    }

    fn output(&mut self, target: &Target) {
        self.line("[[output]]");
        match target {
            Target::Udp { host, port } | Target::Tcp { host, port } => {
                let transport = if matches!(target, Target::Udp { .. }) {
                    "udp"
                } else {
                    "tcp"
                };
                let _ = writeln!(self.out, "transport = \"{transport}\"");
                let _ = writeln!(self.out, "host = {}", quote(host));
                let _ = writeln!(self.out, "port = {port}");
            }
            Target::File(path) => {
                self.note("Its folder must exist and be writable by the service user.");
                self.line("transport = \"file\"");
                let _ = writeln!(self.out, "path = {}", quote(&path.display().to_string()));
            }
            Target::Stdout | Target::Unsupported(_) => {
                self.note("eNcore wrote to standard output for this URI.");
                self.line("transport = \"stdout\"");
            }
        }
        self.note(
            "As eNcore sent them: a BSD syslog header, facility user, every event at severity \
             notice.\nformat = \"rfc5424\" (or \"cef\" for files) and the default severity_map \
             are the modern choice.",
        );
        self.line("format = \"rfc3164\"");
        self.line("facility = \"user\"");
        self.line(
            "severity_map = { low = \"notice\", medium = \"notice\", high = \"notice\", \
             very_high = \"notice\" }",
        );
    }
}
