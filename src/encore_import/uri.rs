//! eNcore's stream URIs (`udp://host:port`, `tcp://host:port`, `file:///dir/name.{0}.log`,
//! `relfile://dir/name.{0}.log`) as the nearest destination here.

use std::path::{Path, PathBuf};

/// Where an eNcore outputter wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    Udp {
        host: String,
        port: u16,
    },
    Tcp {
        host: String,
        port: u16,
    },
    /// One file; eNcore's `{0}` (the time the file was started) is left out of the name.
    File(PathBuf),
    /// eNcore wrote any other scheme to standard output.
    Stdout,
    /// A scheme with no equivalent here, and why.
    Unsupported(String),
}

/// `uri` as eNcore read it; `base` is eNcore's folder, where `relfile://` paths start.
pub fn parse_uri(uri: &str, base: &Path) -> Result<Target, String> {
    let (scheme, rest) = uri.split_once("://").ok_or_else(|| {
        format!("{uri:?} is not a URI of the form scheme://..., such as udp://siem.example:514")
    })?;
    match scheme {
        "udp" | "tcp" => {
            let authority = rest.split('/').next().unwrap_or_default();
            let (host, port) = host_port(authority).ok_or_else(|| {
                format!(
                    "{uri:?} needs a host and a port, such as {scheme}://siem.example:514{}",
                    if authority.contains('{') {
                        " (eNcore's configure leaves {host}:{port} for you to fill in)"
                    } else {
                        ""
                    }
                )
            })?;
            Ok(if scheme == "udp" {
                Target::Udp { host, port }
            } else {
                Target::Tcp { host, port }
            })
        }
        "file" | "relfile" => {
            // file:///abs/dir/name: the authority is empty; relfile:///dir/name is relative.
            let path = rest.split(['?', '#']).next().unwrap_or_default();
            let rel = path.trim_start_matches('/');
            let (dir, name) = match rel.rsplit_once('/') {
                Some((d, n)) => (d, n),
                None => ("", rel),
            };
            let dir = if scheme == "file" {
                PathBuf::from(format!("/{dir}"))
            } else {
                base.join(dir)
            };
            Ok(Target::File(dir.join(file_name(name))))
        }
        "scp" => Ok(Target::Unsupported(
            "scp:// copies are not made; write a file output and copy it with your own tool".into(),
        )),
        _ => Ok(Target::Stdout),
    }
}

/// eNcore's file name pattern without its `{0}` (a new file per start and rotation, named by
/// the time): `encore.{0}.log` → `encore.log`. eNcore's default name is `log{0}`.
fn file_name(pattern: &str) -> String {
    let name = pattern.replace(".{0}", "").replace("{0}", "");
    if name.is_empty() {
        "log".to_string()
    } else {
        name
    }
}

/// `host:port` or `[v6]:port`.
fn host_port(authority: &str) -> Option<(String, u16)> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(rest) => {
            let (h, tail) = rest.split_once(']')?;
            (h, tail.strip_prefix(':')?)
        }
        None => authority.rsplit_once(':')?,
    };
    let port: u16 = port.parse().ok().filter(|p| *p > 0)?;
    let valid = !host.is_empty() && !host.contains(['{', '}', '/', ' ']);
    valid.then(|| (host.to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_become_the_nearest_destination() {
        let base = Path::new("/opt/encore");
        assert_eq!(
            parse_uri("udp://10.1.2.3:514", base),
            Ok(Target::Udp {
                host: "10.1.2.3".into(),
                port: 514
            })
        );
        assert_eq!(
            parse_uri("tcp://[fd00::1]:1514", base),
            Ok(Target::Tcp {
                host: "fd00::1".into(),
                port: 1514
            })
        );
        assert_eq!(
            parse_uri("relfile:///data/splunk/encore.{0}.log", base),
            Ok(Target::File("/opt/encore/data/splunk/encore.log".into()))
        );
        assert_eq!(
            parse_uri("file:///var/log/encore/cef{0}", base),
            Ok(Target::File("/var/log/encore/cef".into()))
        );
        let e = parse_uri("udp://{host}:{port}", base).unwrap_err();
        assert!(e.contains("fill in"), "{e}");
        assert!(parse_uri("udp://siem", base).unwrap_err().contains("port"));
        assert!(parse_uri("siem:514", base).is_err());
    }
}
