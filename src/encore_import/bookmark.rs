//! eNcore's bookmark, `<host>-<port>_bookmark.dat` (JSON `{"1": <archive second>}`), as our
//! `bookmark.json` in the FMC's state folder, so that the first start resumes where eNcore
//! stopped.
//!
//! eNcore kept only the second: the records of that second it had already written come again
//! (the FMC resumes a second inclusively), as they would have with eNcore itself.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Server;
use crate::delivery::bookmark::Bookmark;

/// The archive second in eNcore's bookmark file at `path`.
pub fn read(path: &Path) -> Result<u32, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read eNcore's bookmark {}: {e}\n  → give the <host>-<port>_bookmark.dat file \
             from eNcore's folder",
            path.display()
        )
    })?;
    let doc: Value = serde_json::from_str(&text).map_err(|e| {
        format!(
            "{} is not eNcore's bookmark: not valid JSON ({e})\n  → eNcore writes {{\"1\": \
             <archive second>}}; without a bookmark, start with fmc.start = \"genesis\" or \"now\"",
            path.display()
        )
    })?;
    let map = doc.as_object().ok_or_else(|| {
        format!(
            "{} is not eNcore's bookmark: it holds {doc}, not {{\"1\": <archive second>}}",
            path.display()
        )
    })?;
    if let Some(k) = map.keys().find(|k| *k != "1") {
        return Err(format!(
            "{}: key `{k}` is not one eNcore writes (its bookmark has only \"1\")\n  → give the \
             <host>-<port>_bookmark.dat file eNcore wrote",
            path.display()
        ));
    }
    let v = map.get("1").ok_or_else(|| {
        format!(
            "{}: key `1` is missing: eNcore had bookmarked nothing yet\n  → start with fmc.start \
             = \"genesis\" (everything the FMC has) or \"now\"",
            path.display()
        )
    })?;
    // `configure --bookmark now` writes a fraction of a second: the second it is in.
    v.as_f64()
        .filter(|s| s.is_finite() && *s >= 1.0 && *s <= f64::from(u32::MAX))
        .map(|s| s.floor() as u32)
        .ok_or_else(|| {
            format!(
                "{}: key `1` is {v}, not an archive second (seconds since 1970)",
                path.display()
            )
        })
}

/// The server a bookmark belongs to: the one its file name (`<host>-<port>_bookmark.dat`)
/// names, else the only one.
pub fn server_of<'a>(path: &Path, servers: &'a [Server]) -> Result<&'a Server, String> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let named = name
        .strip_suffix("_bookmark.dat")
        .and_then(|hp| hp.rsplit_once('-'))
        .and_then(|(h, p)| Some((h.to_string(), p.parse::<u16>().ok()?)));
    let list = || {
        servers
            .iter()
            .map(|s| format!("{}-{}", s.host, s.port))
            .collect::<Vec<_>>()
            .join(", ")
    };
    match named {
        Some((host, port)) => servers
            .iter()
            .find(|s| s.host == host && s.port == port)
            .ok_or_else(|| {
                format!(
                    "{} is the bookmark of {host}-{port}, which is not among the configuration's \
                     servers ({})\n  → give the bookmark of the FMC this configuration streams \
                     from",
                    path.display(),
                    list()
                )
            }),
        None => match servers {
            [one] => Ok(one),
            _ => Err(format!(
                "{}: its name does not say which FMC it is for (eNcore names it \
                 <host>-<port>_bookmark.dat); the configuration has {}",
                path.display(),
                list()
            )),
        },
    }
}

/// Writes `second` as the bookmark of `server` under `state_dir` (`<state_dir>/<host>-<port>`,
/// the folder `run` uses). An existing bookmark is never replaced: it is newer than eNcore's.
pub fn write(state_dir: &Path, server: &Server, second: u32) -> Result<PathBuf, String> {
    let host = crate::metadata::store::safe_file_part(&server.host);
    let dir = state_dir.join(format!("{host}-{}", server.port));
    let target = Bookmark::path(&dir);
    if target.exists() {
        return Err(format!(
            "{} exists: estreamer-cef has already run for this FMC and its bookmark is newer \
             than eNcore's\n  → move it away first if you really want to resume from eNcore's",
            target.display()
        ));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| format!("cannot create the state folder {}: {e}", dir.display()))?;
    let bookmark = Bookmark {
        second,
        ..Bookmark::default()
    };
    bookmark
        .save(&dir)
        .map_err(|e| format!("cannot write {}: {e}", target.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_second_and_refuses_what_encore_does_not_write() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("10.0.0.1-8302_bookmark.dat");
        std::fs::write(&p, r#"{"1": 1591210934}"#).unwrap();
        assert_eq!(read(&p), Ok(1591210934));
        std::fs::write(&p, r#"{"1": 1591210934.75}"#).unwrap();
        assert_eq!(read(&p), Ok(1591210934));
        std::fs::write(&p, r#"{"1": 5, "2": 6}"#).unwrap();
        assert!(read(&p).unwrap_err().contains("key `2`"));
        std::fs::write(&p, r#"{"1": "soon"}"#).unwrap();
        assert!(read(&p).unwrap_err().contains("not an archive second"));
        let servers = [
            Server {
                host: "10.0.0.1".into(),
                port: 8302,
            },
            Server {
                host: "10.0.0.2".into(),
                port: 8302,
            },
        ];
        assert_eq!(server_of(&p, &servers).unwrap().host, "10.0.0.1");
        let other = dir.path().join("10.9.9.9-8302_bookmark.dat");
        assert!(
            server_of(&other, &servers)
                .unwrap_err()
                .contains("10.9.9.9-8302")
        );
    }
}
