//! `estreamer-cef-sim sample FILE`: writes the recorded stream the packages ship (see
//! [`crate::sample`]).

use std::path::PathBuf;
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// Where to write it (packaging/build.sh: the staged examples/sample.estreamer).
    pub file: PathBuf,
}

pub fn run(args: &Args) -> anyhow::Result<ExitCode> {
    let g = crate::sample::generated();
    let bytes = crate::sample::stream();
    estreamer_cef::metadata::store::write_atomic(&args.file, &bytes)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", args.file.display()))?;
    println!(
        "wrote {} records ({} metadata, {} events, {} bytes) to {}",
        g.truth.len(),
        g.scenario.metadata.len(),
        g.scenario.events.len(),
        bytes.len(),
        args.file.display()
    );
    Ok(ExitCode::SUCCESS)
}
