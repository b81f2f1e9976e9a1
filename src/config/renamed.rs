//! Keys renamed when every table got one naming scheme (durations as text without a unit suffix,
//! the same key for the same concept in `[fmc]` and `[[output]]`). An old spelling is refused
//! with the new key and a value to write, instead of a bare "unknown field".
//!
//! This table is the one place the renames are listed; the README's "Upgrading" section lists
//! them for users.

use std::time::Duration;

use toml::{Table, Value};

/// Where a key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Section {
    /// `[fmc]`
    Fmc,
    /// every `[[output]]` table
    Output,
}

/// How to write the old value under the new key.
#[derive(Clone, Copy, Debug)]
pub enum NewValue {
    /// A number of seconds becomes duration text ("10s", "500ms"); anything else shows `default`.
    Seconds { default: &'static str },
    /// The value stays as it was.
    Same,
    /// Always this value (TOML text).
    Fixed(&'static str),
}

#[derive(Clone, Copy, Debug)]
pub struct Renamed {
    pub section: Section,
    pub old: &'static str,
    pub new: &'static str,
    pub value: NewValue,
}

const fn renamed(
    section: Section,
    old: &'static str,
    new: &'static str,
    value: NewValue,
) -> Renamed {
    Renamed {
        section,
        old,
        new,
        value,
    }
}

use NewValue::{Fixed, Same, Seconds};
use Section::{Fmc, Output};

pub const RENAMED: &[Renamed] = &[
    renamed(Fmc, "reconnect_max_delay", "reconnect_delay_max", Same),
    renamed(
        Output,
        "keepalive_secs",
        "keepalive",
        Seconds { default: "60s" },
    ),
    renamed(
        Output,
        "connect_timeout_secs",
        "connect_timeout",
        Seconds { default: "10s" },
    ),
    renamed(
        Output,
        "send_timeout_secs",
        "send_timeout",
        Seconds { default: "30s" },
    ),
    renamed(
        Output,
        "reconnect_delay_min_secs",
        "reconnect_delay_min",
        Seconds { default: "500ms" },
    ),
    renamed(
        Output,
        "reconnect_delay_max_secs",
        "reconnect_delay_max",
        Seconds { default: "30s" },
    ),
    renamed(
        Output,
        "shutdown_timeout_secs",
        "shutdown_timeout",
        Seconds { default: "10s" },
    ),
    renamed(Output, "ca", "server_ca", Same),
    renamed(
        Output,
        "insecure_skip_verify",
        "server_ca",
        Fixed("\"insecure\""),
    ),
    renamed(Output, "client_pkcs12", "pkcs12", Same),
    // Never repeat a password in a message: it would end up in logs.
    renamed(Output, "password", "pkcs12_password", Fixed("\"...\"")),
    renamed(Output, "password_file", "pkcs12_password_file", Same),
    // Not the old value: 4 MiB was what a receiver crash could lose; the journal's default
    // covers a 32 MiB receive buffer.
    renamed(
        Output,
        "resend_on_reconnect_bytes",
        "resend_bytes",
        Fixed("100663296"),
    ),
];

impl Renamed {
    /// "output[0].connect_timeout_secs was renamed: write connect_timeout = \"5s\"".
    fn message(&self, table: &str, old_value: &Value) -> String {
        let value = match self.value {
            Seconds { default } => match seconds_of(old_value) {
                Some(d) => format!("\"{}\"", super::duration::format(&d)),
                None => format!("\"{default}\""),
            },
            Same => old_value.to_string(),
            Fixed(v) => v.to_string(),
        };
        if self.old == "insecure_skip_verify" && old_value.as_bool() == Some(false) {
            return format!(
                "{table}.insecure_skip_verify was replaced by server_ca: remove it (verification is on by default)"
            );
        }
        format!(
            "{table}.{} was renamed: write {} = {value}",
            self.old, self.new
        )
    }
}

fn seconds_of(v: &Value) -> Option<Duration> {
    let secs = match v {
        Value::Integer(n) => *n as f64,
        Value::Float(f) => *f,
        Value::String(s) => return super::duration::parse(s).ok(),
        _ => return None,
    };
    (secs.is_finite() && (0.0..1e9).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// The messages for every old key in a configuration file (empty when there is none).
pub fn old_keys_in_file(doc: &Table) -> Vec<String> {
    let mut found = Vec::new();
    match doc.get("fmc") {
        Some(Value::Table(fmc)) => found.extend(old_keys_in(fmc, Fmc, "fmc")),
        Some(Value::Array(fmcs)) => {
            for (i, f) in fmcs.iter().enumerate() {
                if let Value::Table(t) = f {
                    found.extend(old_keys_in(t, Fmc, &format!("fmc[{i}]")));
                }
            }
        }
        _ => {}
    }
    if let Some(Value::Array(outputs)) = doc.get("output") {
        for (i, o) in outputs.iter().enumerate() {
            if let Value::Table(t) = o {
                found.extend(old_keys_in(t, Output, &format!("output[{i}]")));
            }
        }
    }
    found
}

fn old_keys_in(table: &Table, section: Section, name: &str) -> Vec<String> {
    RENAMED
        .iter()
        .filter(|r| r.section == section)
        .filter_map(|r| table.get(r.old).map(|v| r.message(name, v)))
        .collect()
}

/// The messages for environment variables with an old name (`ESTREAMER_CEF_FMC__...`).
pub fn old_keys_in_env(prefix: &str, vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut found = Vec::new();
    for (name, value) in vars {
        let Some(rest) = name.strip_prefix(prefix) else {
            continue;
        };
        let rest = rest.to_ascii_lowercase();
        let Some(key) = rest.strip_prefix("fmc__") else {
            continue;
        };
        if let Some(r) = RENAMED.iter().find(|r| r.section == Fmc && r.old == key) {
            let new_var = format!("{prefix}FMC__{}", r.new.to_ascii_uppercase());
            found.push(format!(
                "environment variable {name} (fmc.{}) was renamed: set {new_var}={value}",
                r.old
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn section_name(s: Section) -> &'static str {
        match s {
            Fmc => "fmc",
            Output => "output",
        }
    }

    /// Every old key is refused with its new name, and the new key is one the program accepts.
    #[test]
    fn every_old_key_names_its_new_key() {
        for r in RENAMED {
            let doc: Table = match r.section {
                Fmc => toml::from_str(&format!("[fmc]\n{} = \"5s\"\n", r.old)).unwrap(),
                Output => toml::from_str(&format!(
                    "[[output]]\ntransport = \"tls\"\nhost = \"h\"\n\n[[output]]\ntransport = \"tls\"\nhost = \"h\"\n{} = 5\n",
                    r.old
                ))
                .unwrap(),
            };
            let found = old_keys_in_file(&doc);
            assert_eq!(found.len(), 1, "{}: {found:?}", r.old);
            let where_ = match r.section {
                Fmc => "fmc".to_string(),
                Output => "output[1]".to_string(),
            };
            let want = format!("{where_}.{} was renamed: write {} = ", r.old, r.new);
            assert!(
                found[0].starts_with(&want),
                "{} in {}: {}",
                r.old,
                section_name(r.section),
                found[0]
            );
        }
    }

    #[test]
    fn values_are_carried_over() {
        let doc: Table = toml::from_str(
            "[fmc]\nreconnect_max_delay = \"2m\"\n[[output]]\nconnect_timeout_secs = 0.5\nca = \"/etc/ca.pem\"\npassword = \"hunter2\"\ninsecure_skip_verify = false\n",
        )
        .unwrap();
        let found = old_keys_in_file(&doc);
        assert_eq!(
            found,
            [
                "fmc.reconnect_max_delay was renamed: write reconnect_delay_max = \"2m\"",
                "output[0].connect_timeout_secs was renamed: write connect_timeout = \"500ms\"",
                "output[0].ca was renamed: write server_ca = \"/etc/ca.pem\"",
                "output[0].insecure_skip_verify was replaced by server_ca: remove it (verification is on by default)",
                "output[0].password was renamed: write pkcs12_password = \"...\"",
            ]
        );
        assert!(!found.concat().contains("hunter2"));
    }

    #[test]
    fn new_keys_and_other_tables_pass() {
        let doc: Table = toml::from_str(
            "[fmc]\nreconnect_delay_max = \"1m\"\n[[output]]\nconnect_timeout = \"5s\"\n[records]\nca = 1\n",
        )
        .unwrap();
        assert!(old_keys_in_file(&doc).is_empty());
    }

    #[test]
    fn old_environment_variables_name_the_new_one() {
        let vars = [
            (
                "ESTREAMER_CEF_FMC__RECONNECT_MAX_DELAY".to_string(),
                "30s".to_string(),
            ),
            ("ESTREAMER_CEF_FMC__HOST".to_string(), "fmc".to_string()),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let found = old_keys_in_env("ESTREAMER_CEF_", vars.into_iter());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(
            found[0],
            "environment variable ESTREAMER_CEF_FMC__RECONNECT_MAX_DELAY (fmc.reconnect_max_delay) \
             was renamed: set ESTREAMER_CEF_FMC__RECONNECT_DELAY_MAX=30s"
        );
    }
}
