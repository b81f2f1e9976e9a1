//! `estreamer-cef import-encore`: eNcore's estreamer.conf as an equivalent estreamer-cef.toml
//! (on stdout), and with `--bookmark` its bookmark as our first resume point.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use super::Cli;
use crate::encore_import::{self, bookmark};

/// The packaged `state.dir`, where `run` looks for the bookmark unless the configuration says
/// otherwise.
const DEFAULT_STATE_DIR: &str = "/var/lib/estreamer-cef";

#[derive(clap::Args, Debug)]
pub struct Args {
    /// eNcore's configuration file (estreamer.conf, in eNcore's folder).
    #[arg(value_name = "ESTREAMER_CONF")]
    pub encore_config: PathBuf,
    /// eNcore's bookmark (`<host>-<port>_bookmark.dat` in its folder): written as our bookmark
    /// so that the first start resumes where eNcore stopped.
    #[arg(long, value_name = "PATH")]
    pub bookmark: Option<PathBuf>,
    /// The state folder to write the bookmark to (written as `state.dir` in the printed
    /// configuration) [default: /var/lib/estreamer-cef].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

pub fn run(_cli: &Cli, args: &Args) -> anyhow::Result<ExitCode> {
    let imported = encore_import::import_file(&args.encore_config, args.state_dir.as_deref())
        .map_err(anyhow::Error::msg)?;
    // The bookmark first: if it cannot be carried over, nothing is printed to be used half-done.
    if let Some(path) = &args.bookmark {
        let second = bookmark::read(path).map_err(anyhow::Error::msg)?;
        let server = bookmark::server_of(path, &imported.servers).map_err(anyhow::Error::msg)?;
        let state_dir = args
            .state_dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(DEFAULT_STATE_DIR));
        let written = bookmark::write(&state_dir, server, second).map_err(anyhow::Error::msg)?;
        eprintln!(
            "wrote {}: the first start resumes from the FMC at {}:{} {}",
            written.display(),
            server.host,
            server.port,
            crate::estreamer::session::describe_start(crate::estreamer::request::StartAt::Second(
                second
            ))
        );
        if imported.start != 2 {
            eprintln!(
                "note: eNcore's start = {} (not 2, bookmark): the bookmark is used only with \
                 fmc.start = \"bookmark\"",
                imported.start
            );
        }
    }
    std::io::stdout()
        .lock()
        .write_all(imported.toml.as_bytes())?;
    Ok(ExitCode::SUCCESS)
}
