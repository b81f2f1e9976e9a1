//! `estreamer-cef test`: the connection diagnosis.

use std::process::ExitCode;

use super::Cli;

pub fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let (cfg, file) = match super::load_config(cli, Vec::new()) {
        Ok(c) => c,
        Err(e) => {
            println!("[FAIL] configuration: {e:#}");
            println!(
                "       → fix the file or the ESTREAMER_CEF_* variable named above; `estreamer-cef check-config` shows what is read"
            );
            return Ok(ExitCode::from(1));
        }
    };
    for w in cfg.warnings() {
        println!("[WARN] configuration: {w}");
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let mut out = std::io::stdout();
    let ok = rt.block_on(crate::diagnose::diagnose(&cfg, file.as_deref(), &mut out));
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
