//! What a configuration still lacks before `run` can do its job, although every value in it is
//! valid: the packaged file, untouched, has the example FMC host and no output. `check-config`
//! says so instead of printing the defaults without a word.

use super::{Config, FmcConfig};

impl Config {
    /// One line per thing still to set, with what to write; empty when nothing is missing.
    pub fn unfinished(&self) -> Vec<String> {
        let mut todo = Vec::new();
        let placeholder = FmcConfig::default().host;
        for (i, fmc) in self.fmcs.iter().enumerate() {
            let key = if self.fmcs.len() == 1 {
                "fmc".to_string()
            } else {
                format!("fmc[{i}]")
            };
            if fmc.hosts.is_empty() && fmc.host == placeholder {
                todo.push(format!(
                    "{key}.host is still the example {placeholder:?}: set it to your FMC's name \
                     or address (host = \"...\" under [fmc])"
                ));
            }
        }
        if self.outputs.is_empty() && self.tap.is_none() {
            todo.push(
                "there is no [[output]]: add one (transport = \"udp\", \"tcp\", \"tls\", \"file\" \
                 or \"stdout\"; the packaged file /etc/estreamer-cef/estreamer-cef.toml has an \
                 example of each), or `run` refuses to start"
                    .to_string(),
            );
        }
        todo
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_lack_a_host_and_an_output() {
        let todo = Config::default().unfinished();
        assert_eq!(todo.len(), 2, "{todo:?}");
        assert!(
            todo[0].starts_with("fmc.host is still the example"),
            "{todo:?}"
        );
        assert!(todo[1].starts_with("there is no [[output]]"), "{todo:?}");
    }

    #[test]
    fn a_real_host_and_an_output_are_enough() {
        let mut c = Config::default();
        c.fmc_mut().host = "10.0.0.5".into();
        c.outputs = toml::from_str::<Outputs>("[[output]]\ntransport = \"stdout\"\n")
            .unwrap()
            .output;
        assert!(c.unfinished().is_empty(), "{:?}", c.unfinished());
    }

    #[derive(serde::Deserialize)]
    struct Outputs {
        output: Vec<crate::config::output::OutputConfig>,
    }
}
