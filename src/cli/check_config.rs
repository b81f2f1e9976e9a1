//! `estreamer-cef check-config`.

use std::process::ExitCode;

use super::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (cfg, file) = super::load_config(cli, Vec::new())?;
    match &file {
        Some(f) => println!("# configuration from {} (with defaults and ESTREAMER_CEF_* variables)", f.display()),
        None => println!("# no configuration file: built-in defaults (with ESTREAMER_CEF_* variables)"),
    }
    print!("{}", cfg.to_redacted_toml());
    Ok(ExitCode::SUCCESS)
}
