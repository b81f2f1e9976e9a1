//! Reaching a server by TCP, for the FMC session, `estreamer-cef test` and the TCP/TLS outputs:
//! name resolution, then each address in turn within one deadline.

use std::io;
use std::net::SocketAddr;

use tokio::net::TcpStream;
use tokio::time::{Instant, timeout};

/// Resolves a server's name (an IP literal, with or without brackets, needs no lookup).
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((bare, port)).await?.collect();
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "the name has no address",
        ));
    }
    Ok(addrs)
}

/// Why no TCP connection could be made.
#[derive(Debug)]
pub enum ConnectError {
    /// No address answered before the deadline.
    Timeout,
    /// The first address's error (refused, unreachable, ...).
    Failed { addr: SocketAddr, error: io::Error },
}

/// Connects to the first address that answers. Each address gets an equal share of the time
/// left, so one black-holed address (an IPv6 route to nowhere) cannot use it all.
pub async fn connect_tcp(
    addrs: &[SocketAddr],
    deadline: Instant,
) -> Result<TcpStream, ConnectError> {
    let mut first_error: Option<(SocketAddr, io::Error)> = None;
    let mut timed_out = false;
    for (i, addr) in addrs.iter().enumerate() {
        let now = Instant::now();
        if now >= deadline {
            timed_out = true;
            break;
        }
        let share = (deadline - now) / (addrs.len() - i) as u32;
        match timeout(share, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok(tcp);
            }
            Ok(Err(error)) => {
                first_error.get_or_insert((*addr, error));
            }
            Err(_) => timed_out = true,
        }
    }
    match first_error {
        // A refusal from one address says more than silence from another.
        Some((addr, error)) if !timed_out || error.kind() == io::ErrorKind::ConnectionRefused => {
            Err(ConnectError::Failed { addr, error })
        }
        _ => Err(ConnectError::Timeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn connects_to_the_address_that_answers_and_reports_a_refusal() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap();
        // A port nobody listens on: bind, note it, close.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        let tcp = connect_tcp(&[closed, open], deadline).await.unwrap();
        assert_eq!(tcp.peer_addr().unwrap(), open);
        match connect_tcp(&[closed], deadline).await {
            Err(ConnectError::Failed { addr, error }) => {
                assert_eq!(addr, closed);
                assert_eq!(error.kind(), io::ErrorKind::ConnectionRefused);
            }
            other => panic!("expected a refusal, got {:?}", other.map(|_| ())),
        }
        let past = Instant::now();
        assert!(matches!(
            connect_tcp(&[open], past).await,
            Err(ConnectError::Timeout)
        ));
    }

    #[tokio::test]
    async fn resolves_bracketed_and_bare_literals() {
        assert_eq!(
            resolve("[::1]", 9).await.unwrap(),
            vec!["[::1]:9".parse().unwrap()]
        );
        assert_eq!(
            resolve("127.0.0.1", 9).await.unwrap(),
            vec!["127.0.0.1:9".parse().unwrap()]
        );
    }
}
