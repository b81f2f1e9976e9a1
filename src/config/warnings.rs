//! Settings that are valid but risky: the configuration loads, and `check-config`, `test` and
//! `run` say what may go wrong and which value would avoid it.

use std::time::Duration;

use super::{Config, FmcConfig, duration};

/// Margin added to `failover_overlap` when sizing the identity window: the old peer's last
/// events and the new peer's first ones are not in step to the second.
const WINDOW_MARGIN: Duration = Duration::from_secs(60);

impl Config {
    /// One sentence per risky setting, naming the key and a value that would do.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (i, fmc) in self.fmcs.iter().enumerate() {
            let key = if self.fmcs.len() == 1 {
                "fmc".to_string()
            } else {
                format!("fmc[{i}]")
            };
            if let Some(w) = identity_window_warning(fmc, &key) {
                out.push(w);
            }
        }
        out
    }
}

/// The identities an HA pair must remember: what the new peer may send again after a switch
/// (`failover_overlap` of events at `expected_rate`) plus a margin.
pub fn identities_needed(fmc: &FmcConfig) -> u64 {
    let secs = (fmc.failover_overlap + WINDOW_MARGIN).as_secs_f64();
    (fmc.expected_rate as f64 * secs).ceil() as u64
}

fn identity_window_warning(fmc: &FmcConfig, key: &str) -> Option<String> {
    if !fmc.is_ha() {
        return None;
    }
    let needed = identities_needed(fmc);
    if fmc.identity_window as u64 >= needed {
        return None;
    }
    Some(format!(
        "{key}.identity_window = {} cannot hold the events of {key}.failover_overlap = \"{}\" \
         plus a minute at {key}.expected_rate = {} events/s: after an HA switch, repeats beyond \
         the window are sent again. Set {key}.identity_window = {needed} (about {} MiB of memory \
         and state), or {key}.expected_rate to this FMC's real peak rate (/metrics shows it).",
        fmc.identity_window,
        duration::format(&fmc.failover_overlap),
        fmc.expected_rate,
        (needed * 16).div_ceil(1 << 20),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ha(window: usize) -> Config {
        let mut cfg = Config::default();
        cfg.fmcs[0].hosts = vec!["fmc-a.example".into(), "fmc-b.example".into()];
        cfg.fmcs[0].identity_window = window;
        cfg
    }

    #[test]
    fn a_window_too_small_for_the_overlap_is_named_with_a_value_that_would_do() {
        let w = ha(16).warnings();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(
            w[0].contains("fmc.identity_window = 16")
                && w[0].contains("fmc.identity_window = 240000"),
            "{}",
            w[0]
        );
        // The value proposed is enough: no warning with it.
        assert!(ha(240_000).warnings().is_empty());
        // The default window fits the default rate and overlap.
        assert!(
            ha(FmcConfig::default().identity_window)
                .warnings()
                .is_empty()
        );
    }

    #[test]
    fn a_single_fmc_has_no_window_to_size() {
        let mut cfg = Config::default();
        cfg.fmcs[0].identity_window = 16;
        assert!(cfg.warnings().is_empty());
    }
}
