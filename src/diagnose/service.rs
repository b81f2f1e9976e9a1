//! What `run` checks before it connects anywhere, checked the same way: something to send to,
//! the CEF header, the mapping tables, and a state folder the service can write.

use std::path::Path;

use super::Report;
use crate::cef::CefHeader;
use crate::config::Config;
use crate::output::TapFormat;

/// One line per check; stops at the first failure (as the FMC steps do). True when all passed.
pub(super) fn check(cfg: &Config, r: &mut Report<'_>) -> bool {
    outputs_configured(cfg, r)
        && cef_header(cfg, r)
        && mapping_tables(cfg, r)
        && state_folder(cfg, r)
}

fn outputs_configured(cfg: &Config, r: &mut Report<'_>) -> bool {
    let step = "outputs";
    if cfg.outputs.is_empty() && cfg.tap.is_none() {
        return r.fail(
            step,
            "no [[output]] is configured: `run` would stop at once, with nowhere to send the events",
            &[
                "add an [[output]] table (transport = \"udp\", \"tcp\", \"tls\", \"file\" or \
                 \"stdout\") to the configuration; the README's \"[[output]]: receivers\" section has examples"
                    .to_string(),
            ],
        );
    }
    if cfg.outputs.is_empty()
        && let Some(t) = &cfg.tap
        && t.format == TapFormat::Wire
    {
        return r.fail(
            step,
            "tap.format = \"wire\" copies what the first output sends, and there is no [[output]]",
            &["add an [[output]], or set tap.format = \"json\"".to_string()],
        );
    }
    let names: Vec<String> = cfg.outputs.iter().map(|o| o.display_name()).collect();
    let tap = cfg
        .tap
        .as_ref()
        .map(|t| format!(" and the tap {}", t.path.display()))
        .unwrap_or_default();
    r.pass(
        step,
        &if names.is_empty() {
            format!("none, only{tap}")
        } else {
            format!("{}{tap}", names.join(", "))
        },
    )
}

fn cef_header(cfg: &Config, r: &mut Report<'_>) -> bool {
    match CefHeader::new(&cfg.cef.vendor, &cfg.cef.product, &cfg.cef.version) {
        Ok(_) => true,
        Err(e) => r.fail(
            "[cef] header",
            &e.to_string(),
            &["fix cef.vendor, cef.product or cef.version".to_string()],
        ),
    }
}

fn mapping_tables(cfg: &Config, r: &mut Report<'_>) -> bool {
    let step = format!("mapping tables ({})", cfg.cef.mappings_dir.display());
    match crate::pipeline::load_mappings(cfg) {
        Ok(_) => r.pass(
            &step,
            if cfg.cef.mappings_dir.is_dir() {
                "the built-in tables and the files in this folder load"
            } else {
                "no such folder: the built-in tables are used"
            },
        ),
        Err(e) => r.fail(
            &step,
            &format!("they have problems:\n{e}"),
            &[format!(
                "fix what is named above; `estreamer-cef mappings check {}` checks the folder again",
                cfg.cef.mappings_dir.display()
            )],
        ),
    }
}

/// `run` creates the folder and writes the bookmark, the metadata cache and the output
/// journals in it. Checked by writing a file, as this user (`test` run as root proves less).
fn state_folder(cfg: &Config, r: &mut Report<'_>) -> bool {
    let dir = cfg.fmc_state_dir_of(0);
    let step = format!("state folder {}", dir.display());
    let advice = |dir: &Path| {
        vec![
            format!(
                "for the packaged service: `sudo install -d -o estreamer-cef -g estreamer-cef -m 0750 {}` \
                 (or `sudo chown -R estreamer-cef: {}` if it exists)",
                dir.display(),
                dir.display()
            ),
            "or set state.dir to a folder this user may write".to_string(),
        ]
    };
    // The folder, or the nearest existing path above it that `run` would create it in.
    let Some(existing) = dir.ancestors().find(|a| a.exists()).map(Path::to_path_buf) else {
        return r.fail(&step, "no folder above it exists", &advice(&dir));
    };
    if !existing.is_dir() {
        return r.fail(
            &step,
            &format!("{} exists but is not a folder", existing.display()),
            &advice(&dir),
        );
    }
    let created = existing != dir;
    let probe = existing.join(format!(".estreamer-cef-test-{}", std::process::id()));
    let uid = unsafe { libc::geteuid() };
    match std::fs::File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            r.pass(
                &step,
                &if created {
                    format!(
                        "missing; `run` can create it in {} (checked as uid {uid})",
                        existing.display()
                    )
                } else {
                    format!("writable (checked as uid {uid})")
                },
            )
        }
        Err(e) => r.fail(
            &step,
            &format!("cannot write in {} as uid {uid}: {e}", existing.display()),
            &advice(&dir),
        ),
    }
}
