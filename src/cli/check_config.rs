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
    // On stderr, so that the printed configuration stays a valid file.
    for w in cfg.warnings() {
        eprintln!("estreamer-cef: warning: {w}");
    }
    Ok(ExitCode::SUCCESS)
}
