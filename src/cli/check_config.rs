//! `estreamer-cef check-config`.

use std::io::Write;
use std::process::ExitCode;

use super::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (cfg, file) = super::load_config(cli, Vec::new())?;
    let mut out = std::io::stdout().lock();
    match &file {
        Some(f) => writeln!(
            out,
            "# configuration from {} (with defaults and ESTREAMER_CEF_* variables)",
            f.display()
        )?,
        None => writeln!(
            out,
            "# no configuration file: built-in defaults (with ESTREAMER_CEF_* variables)"
        )?,
    }
    out.write_all(cfg.to_redacted_toml().as_bytes())?;
    out.flush()?;
    // On stderr, so that the printed configuration stays a valid file.
    for w in cfg.warnings() {
        eprintln!("estreamer-cef: warning: {w}");
    }
    // Valid but not finished (the packaged file as installed): say what is left to set, on
    // stderr so that the printed configuration stays TOML.
    let todo = cfg.unfinished();
    if !todo.is_empty() {
        eprintln!("estreamer-cef: the configuration is valid, but still to be set before `run`:");
        for t in todo {
            eprintln!("  {t}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
