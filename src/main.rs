//! The `estreamer-cef` command.

use std::process::ExitCode;

fn main() -> ExitCode {
    estreamer_cef::cli::main()
}
