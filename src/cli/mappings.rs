//! `estreamer-cef mappings check|show`.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Cli;

#[derive(clap::Subcommand, Debug)]
pub enum Command {
    /// Load and check every table (built-in and the overrides); print each problem with file,
    /// line and what would be valid. Exit code 0 when all tables are valid.
    Check {
        /// Mappings folder to check [default: [cef] mappings_dir of the configuration].
        dir: Option<PathBuf>,
    },
    /// Print the effective table for a record type (or "unknown") and where it comes from.
    Show {
        /// Record type, e.g. 71, or "unknown".
        record_type: String,
        /// Mappings folder [default: [cef] mappings_dir of the configuration].
        #[arg(long, value_name = "DIR")]
        mappings_dir: Option<PathBuf>,
    },
}

pub fn run(cli: &Cli, cmd: &Command) -> anyhow::Result<ExitCode> {
    let (cfg, _) = super::load_config(cli, Vec::new())?;
    let mut out = std::io::stdout().lock();
    match cmd {
        Command::Check { dir } => match super::load_mappings(&cfg, dir.clone()) {
            Ok(m) => {
                let types = m.record_types();
                writeln!(
                    out,
                    "mapping tables OK: {} record types mapped ({})",
                    types.len(),
                    types
                        .iter()
                        .map(|t| t.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                )?;
                for (t, patches) in m.patched() {
                    let at: Vec<String> = patches
                        .iter()
                        .map(|o| format!("{}:{}", o.file, o.line))
                        .collect();
                    writeln!(out, "record {t} patched by {}", at.join(", "))?;
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(e) => {
                eprintln!("estreamer-cef: {e:#}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Show {
            record_type,
            mappings_dir,
        } => {
            let m = super::load_mappings(&cfg, mappings_dir.clone())?;
            let t = match record_type.as_str() {
                "unknown" => None,
                s => Some(s.parse::<u32>().map_err(|_| {
                    anyhow::anyhow!(
                        "{s:?} is not a record type: give a number such as 71, or \"unknown\""
                    )
                })?),
            };
            match m.show(t) {
                Some(text) => {
                    out.write_all(text.as_bytes())?;
                    Ok(ExitCode::SUCCESS)
                }
                None => {
                    eprintln!(
                        "estreamer-cef: no table maps record type {record_type}; mapped types: {}",
                        m.record_types()
                            .iter()
                            .map(|t| t.to_string())
                            .collect::<Vec<_>>()
                            .join(", ")
                    );
                    Ok(ExitCode::from(1))
                }
            }
        }
    }
}
