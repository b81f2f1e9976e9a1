//! Mutual TLS between our client (`estreamer::tls::connect`) and the simulator's FMC-like server
//! (`sim::pki::build_acceptor`) over loopback, with real OpenSSL on both ends: what succeeds, and
//! how each way of failing is reported.

use std::net::SocketAddr;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use estreamer_cef::estreamer::tls::{self, HandshakeError, connect};
use estreamer_cef::net::identity::{ClientIdentity, load_pkcs12};
use estreamer_cef::net::password::read_password_file;
use estreamer_cef::net::tls::{ServerTrust, TlsSetupError, build_connector, session_info};
use estreamer_cef_sim::pki::{self, PkiFiles, PkiOptions};
use openssl::ssl::{NameType, Ssl, SslAcceptor, SslConnector};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const GREETING: &[u8] = b"hello from the FMC";
const LIMIT: Duration = Duration::from_secs(20);

/// A fresh simulator PKI in its own directory.
struct Pki {
    _dir: tempfile::TempDir,
    files: PkiFiles,
}

impl Pki {
    fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let files = pki::init(dir.path(), &PkiOptions::default()).unwrap();
        Pki { _dir: dir, files }
    }

    fn client(&self) -> ClientIdentity {
        let password = read_password_file(&self.files.client_pass, "client.pass")
            .unwrap()
            .expose()
            .to_string();
        load_pkcs12(&self.files.client_pkcs12, &password).unwrap()
    }

    /// The simulated FMC: this PKI's server certificate, client certificates from `client_ca`.
    fn acceptor(&self, client_ca: &Pki) -> SslAcceptor {
        pki::build_acceptor(
            &self.files.server_cert,
            &self.files.server_key,
            &client_ca.files.ca_cert,
        )
        .unwrap()
    }
}

/// What the server saw of one connection.
#[derive(Debug)]
struct ServerSide {
    accepted: Result<(), String>,
    peer_cn: Option<String>,
    sni: Option<String>,
}

/// Accepts one TLS connection; on success sends GREETING and waits for the client to close.
async fn serve_once(acceptor: SslAcceptor) -> (SocketAddr, JoinHandle<ServerSide>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ssl = Ssl::new(acceptor.context()).unwrap();
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        let accepted = Pin::new(&mut stream).accept().await;
        let side = ServerSide {
            accepted: accepted.as_ref().map(|_| ()).map_err(|e| e.to_string()),
            peer_cn: pki::peer_cn(stream.ssl()),
            sni: stream
                .ssl()
                .servername(NameType::HOST_NAME)
                .map(str::to_string),
        };
        if accepted.is_ok() {
            stream.write_all(GREETING).await.unwrap();
            stream.flush().await.unwrap();
            let mut rest = Vec::new();
            let _ = stream.read_to_end(&mut rest).await;
        }
        side
    });
    (addr, task)
}

/// Connects to `addr` presenting `host` as the name we dialled.
async fn client_connect(
    addr: SocketAddr,
    connector: &SslConnector,
    host: &str,
    verify_hostname: bool,
) -> Result<tokio_openssl::SslStream<TcpStream>, HandshakeError> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    timeout(LIMIT, connect(tcp, connector, host, verify_hostname))
        .await
        .expect("handshake hung")
}

/// Reads the server's greeting and closes: proves data flows both ways after the handshake.
async fn expect_greeting(mut stream: tokio_openssl::SslStream<TcpStream>) {
    let mut buf = vec![0u8; GREETING.len()];
    timeout(LIMIT, stream.read_exact(&mut buf))
        .await
        .expect("read hung")
        .unwrap();
    assert_eq!(buf, GREETING);
    stream.shutdown().await.unwrap();
}

async fn server_result(task: JoinHandle<ServerSide>) -> ServerSide {
    timeout(LIMIT, task).await.expect("server hung").unwrap()
}

#[tokio::test]
async fn trusted_server_connects_and_sees_the_client_cn() {
    let fmc = Pki::new();
    let connector = build_connector(&fmc.client(), &ServerTrust::Pkcs12Ca).unwrap();

    for (host, expected_sni) in [("localhost", Some("localhost")), ("127.0.0.1", None)] {
        let (addr, server) = serve_once(fmc.acceptor(&fmc)).await;
        let stream = client_connect(addr, &connector, host, true)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));

        let info = session_info(stream.ssl());
        assert_eq!(info.protocol, "TLSv1.2", "the simulated FMC speaks TLS 1.2");
        assert!(!info.cipher.is_empty());
        assert_eq!(
            info.server_subject.as_deref(),
            Some("O=estreamer-cef simulator, CN=localhost")
        );
        assert_eq!(
            info.server_issuer.as_deref(),
            Some("O=estreamer-cef simulator, CN=estreamer-cef simulator CA")
        );
        assert!(info.to_string().starts_with("TLSv1.2 "), "{info}");

        expect_greeting(stream).await;
        let side = server_result(server).await;
        assert_eq!(side.accepted, Ok(()));
        assert_eq!(side.peer_cn.as_deref(), Some("127.0.0.1"));
        // No SNI for an IP literal.
        assert_eq!(side.sni.as_deref(), expected_sni, "{host}");
    }
}

#[tokio::test]
async fn trust_from_a_pem_file_and_a_pinned_server_certificate() {
    let fmc = Pki::new();
    let id = fmc.client();
    for trust in [
        ServerTrust::PemFile(fmc.files.ca_cert.clone()),
        // The FMC's own certificate (not self-signed) as the only anchor.
        ServerTrust::PemFile(fmc.files.server_cert.clone()),
    ] {
        let connector = build_connector(&id, &trust).unwrap();
        let (addr, server) = serve_once(fmc.acceptor(&fmc)).await;
        let stream = client_connect(addr, &connector, "localhost", true)
            .await
            .unwrap_or_else(|e| panic!("{trust}: {e}"));
        expect_greeting(stream).await;
        assert_eq!(server_result(server).await.accepted, Ok(()));
    }
}

#[tokio::test]
async fn server_certificate_from_another_ca_is_not_trusted_unless_insecure() {
    let ours = Pki::new();
    let impostor = Pki::new();
    let id = ours.client();

    // The server presents a certificate from another CA, but accepts our client certificate.
    let connector = build_connector(&id, &ServerTrust::Pkcs12Ca).unwrap();
    let (addr, server) = serve_once(impostor.acceptor(&ours)).await;
    let err = client_connect(addr, &connector, "localhost", true)
        .await
        .unwrap_err();
    match &err {
        HandshakeError::ServerNotTrusted {
            reason,
            server_subject,
            server_issuer,
        } => {
            assert_eq!(reason, "unable to get local issuer certificate");
            assert_eq!(
                server_subject.as_deref(),
                Some("O=estreamer-cef simulator, CN=localhost")
            );
            assert!(server_issuer.is_some());
        }
        other => panic!("expected ServerNotTrusted, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("the FMC's certificate is not trusted"),
        "{msg}"
    );
    assert!(
        msg.contains("unable to get local issuer certificate"),
        "{msg}"
    );
    assert!(server_result(server).await.accepted.is_err());

    // With verification off (as eNcore does) the same server is accepted.
    let insecure = build_connector(&id, &ServerTrust::Insecure).unwrap();
    let (addr, server) = serve_once(impostor.acceptor(&ours)).await;
    let stream = client_connect(addr, &insecure, "localhost", true)
        .await
        .unwrap();
    expect_greeting(stream).await;
    let side = server_result(server).await;
    assert_eq!(side.accepted, Ok(()));
    assert_eq!(side.peer_cn.as_deref(), Some("127.0.0.1"));
    assert!(tls::insecure_warning().contains("verification is OFF"));
}

#[tokio::test]
async fn expired_server_certificate_is_not_trusted() {
    let fmc = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = expired_server_cert(&fmc, dir.path());
    let acceptor = pki::build_acceptor(&cert, &key, &fmc.files.ca_cert).unwrap();
    let connector = build_connector(&fmc.client(), &ServerTrust::Pkcs12Ca).unwrap();
    let (addr, _server) = serve_once(acceptor).await;
    let err = client_connect(addr, &connector, "localhost", true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HandshakeError::ServerNotTrusted { reason, .. } if reason == "certificate has expired"),
        "{err:?}"
    );
}

#[tokio::test]
async fn wrong_hostname_is_a_hostname_mismatch() {
    let fmc = Pki::new();
    let connector = build_connector(&fmc.client(), &ServerTrust::Pkcs12Ca).unwrap();

    for host in ["fmc.example.net", "127.0.0.2"] {
        let (addr, _server) = serve_once(fmc.acceptor(&fmc)).await;
        let err = client_connect(addr, &connector, host, true)
            .await
            .unwrap_err();
        match &err {
            HandshakeError::HostnameMismatch {
                host: h,
                names_in_cert,
            } => {
                assert_eq!(h, host);
                assert_eq!(names_in_cert, &["localhost", "127.0.0.1"]);
            }
            other => panic!("{host}: expected HostnameMismatch, got {other:?}"),
        }
        let msg = err.to_string();
        assert!(
            msg.contains(host) && msg.contains("localhost, 127.0.0.1"),
            "{msg}"
        );
    }

    // Without hostname verification the chain alone decides.
    let (addr, server) = serve_once(fmc.acceptor(&fmc)).await;
    let stream = client_connect(addr, &connector, "fmc.example.net", false)
        .await
        .unwrap();
    expect_greeting(stream).await;
    assert_eq!(server_result(server).await.accepted, Ok(()));
}

#[tokio::test]
async fn client_certificate_from_an_unrelated_ca_is_rejected_by_the_fmc() {
    let fmc = Pki::new();
    let stranger = Pki::new();
    // We trust the FMC correctly, but present a certificate the FMC did not issue.
    let connector = build_connector(
        &stranger.client(),
        &ServerTrust::PemFile(fmc.files.ca_cert.clone()),
    )
    .unwrap();
    let (addr, server) = serve_once(fmc.acceptor(&fmc)).await;
    let err = client_connect(addr, &connector, "localhost", true)
        .await
        .unwrap_err();
    // OpenSSL as the server answers an unverifiable client chain with an unknown_ca alert.
    assert!(
        matches!(&err, HandshakeError::ClientCertRejected { alert } if alert == "unknown_ca"),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("the FMC rejected our client certificate"),
        "{msg}"
    );
    let side = server_result(server).await;
    assert!(side.accepted.is_err());
}

#[tokio::test]
async fn client_certificate_with_another_cn_is_accepted_and_seen() {
    let fmc = Pki::new();
    let dir = tempfile::tempdir().unwrap();
    let p12 = pki::issue_client(dir.path(), &fmc.files.ca(), "10.9.9.9", "pw", false).unwrap();
    let id = load_pkcs12(&p12, "pw").unwrap();
    let connector = build_connector(&id, &ServerTrust::Pkcs12Ca).unwrap();
    let (addr, server) = serve_once(fmc.acceptor(&fmc)).await;
    let stream = client_connect(addr, &connector, "localhost", true)
        .await
        .unwrap();
    expect_greeting(stream).await;
    // The TLS layer accepts it; comparing the CN with the source address is the FMC's next step.
    assert_eq!(
        server_result(server).await.peer_cn.as_deref(),
        Some("10.9.9.9")
    );
}

#[tokio::test]
async fn server_closing_during_the_handshake_is_reported_as_such() {
    let fmc = Pki::new();
    let connector = build_connector(&fmc.client(), &ServerTrust::Pkcs12Ca).unwrap();

    // One server hangs up at once, one after reading the ClientHello (as the FMC does when it
    // refuses a client without a TLS alert).
    for read_first in [false, true] {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            let (mut tcp, _) = listener.accept().await.unwrap();
            if read_first {
                let mut hello = [0u8; 5];
                tcp.read_exact(&mut hello).await.unwrap();
                assert_eq!(hello[0], 22, "a TLS handshake record");
            }
            drop(tcp);
        });
        let err = client_connect(addr, &connector, "localhost", true)
            .await
            .unwrap_err();
        assert!(
            matches!(err, HandshakeError::ClosedDuringHandshake),
            "read_first={read_first}: {err:?}"
        );
        assert!(
            err.to_string()
                .contains("closed the connection during the TLS handshake")
        );
        server.await.unwrap();
    }
}

#[tokio::test]
async fn server_below_tls_1_2_is_refused() {
    let fmc = Pki::new();
    let mut builder =
        SslAcceptor::mozilla_intermediate(openssl::ssl::SslMethod::tls_server()).unwrap();
    builder.set_cipher_list("DEFAULT:@SECLEVEL=0").unwrap();
    builder
        .set_min_proto_version(Some(openssl::ssl::SslVersion::TLS1))
        .unwrap();
    builder
        .set_max_proto_version(Some(openssl::ssl::SslVersion::TLS1_1))
        .unwrap();
    builder
        .set_certificate_chain_file(&fmc.files.server_cert)
        .unwrap();
    builder
        .set_private_key_file(&fmc.files.server_key, openssl::ssl::SslFiletype::PEM)
        .unwrap();
    let connector = build_connector(&fmc.client(), &ServerTrust::Pkcs12Ca).unwrap();
    let (addr, _server) = serve_once(builder.build()).await;
    let err = client_connect(addr, &connector, "localhost", true)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, HandshakeError::ServerAlert { alert } if alert == "protocol_version"),
        "{err:?}"
    );
    assert!(err.to_string().contains("before checking our certificate"));
}

/// With TLS 1.3 the client's handshake completes before the server has judged the client
/// certificate; the rejection arrives on the first read and is recognised there.
#[tokio::test]
async fn tls13_rejection_after_the_handshake_is_recognised() {
    let fmc = Pki::new();
    let stranger = Pki::new();
    let mut builder =
        SslAcceptor::mozilla_modern_v5(openssl::ssl::SslMethod::tls_server()).unwrap();
    builder
        .set_certificate_chain_file(&fmc.files.server_cert)
        .unwrap();
    builder
        .set_private_key_file(&fmc.files.server_key, openssl::ssl::SslFiletype::PEM)
        .unwrap();
    builder.set_ca_file(&fmc.files.ca_cert).unwrap();
    builder.set_verify(
        openssl::ssl::SslVerifyMode::PEER | openssl::ssl::SslVerifyMode::FAIL_IF_NO_PEER_CERT,
    );
    let connector = build_connector(
        &stranger.client(),
        &ServerTrust::PemFile(fmc.files.ca_cert.clone()),
    )
    .unwrap();
    let (addr, _server) = serve_once(builder.build()).await;
    // Our side of a TLS 1.3 handshake ends with sending our certificate and Finished, before
    // the server has answered.
    let mut stream = client_connect(addr, &connector, "localhost", true)
        .await
        .expect("a TLS 1.3 client completes its handshake before the server judges it");
    assert_eq!(session_info(stream.ssl()).protocol, "TLSv1.3");
    let mut buf = [0u8; 16];
    let read = timeout(LIMIT, stream.read(&mut buf))
        .await
        .expect("read hung");
    let io_err = read.expect_err("the server must refuse our certificate");
    let err = HandshakeError::from_stream_error(&io_err)
        .unwrap_or_else(|| panic!("not recognised: {io_err:?}"));
    assert!(
        matches!(&err, HandshakeError::ClientCertRejected { alert } if alert == "unknown_ca"),
        "{err:?}"
    );
}

#[test]
fn connector_setup_errors_name_what_to_fix() {
    let dir = tempfile::tempdir().unwrap();
    let files = pki::init(dir.path(), &PkiOptions::default()).unwrap();

    // PEM identity without any CA: "pkcs12" trust has nothing to verify with.
    let cert = dir.path().join("client.crt");
    let key = dir.path().join("client.key");
    let id = load_pkcs12(
        &files.client_pkcs12,
        read_password_file(&files.client_pass, "client.pass")
            .unwrap()
            .expose(),
    )
    .unwrap();
    std::fs::write(&cert, id.cert().to_pem().unwrap()).unwrap();
    std::fs::write(&key, id.key().private_key_to_pem_pkcs8().unwrap()).unwrap();
    let pem_id = ClientIdentity::from_pem_files(&cert, &key).unwrap();
    let err = build_connector(&pem_id, &ServerTrust::Pkcs12Ca).unwrap_err();
    assert!(matches!(err, TlsSetupError::NoCaInIdentity), "{err:?}");

    let missing = dir.path().join("fmc-ca.pem");
    let err = build_connector(&id, &ServerTrust::PemFile(missing.clone())).unwrap_err();
    assert!(matches!(err, TlsSetupError::TrustFile { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&missing.display().to_string()),
        "{err}"
    );

    // A key is not a certificate.
    let err = build_connector(&id, &ServerTrust::PemFile(files.ca_key.clone())).unwrap_err();
    assert!(matches!(err, TlsSetupError::TrustFile { .. }), "{err:?}");
}

#[test]
fn server_trust_config_strings() {
    assert_eq!("pkcs12".parse::<ServerTrust>(), Ok(ServerTrust::Pkcs12Ca));
    assert_eq!("insecure".parse::<ServerTrust>(), Ok(ServerTrust::Insecure));
    assert_eq!(
        "/etc/estreamer-cef/fmc-ca.pem".parse::<ServerTrust>(),
        Ok(ServerTrust::PemFile("/etc/estreamer-cef/fmc-ca.pem".into()))
    );
    assert!("".parse::<ServerTrust>().is_err());
    assert_eq!(ServerTrust::default(), ServerTrust::Pkcs12Ca);

    #[derive(serde::Deserialize)]
    struct Conf {
        server_trust: ServerTrust,
    }
    let conf: Conf = toml::from_str("server_trust = \"insecure\"").unwrap();
    assert_eq!(conf.server_trust, ServerTrust::Insecure);
    let err = toml::from_str::<Conf>("server_trust = \"\"").err().unwrap();
    assert!(err.to_string().contains("server_ca is empty"), "{err}");
    assert_eq!(
        ServerTrust::PemFile("/x/ca.pem".into()).to_string(),
        "/x/ca.pem"
    );
}

/// A server certificate for "localhost" signed by the PKI's CA, valid for one day two years ago.
fn expired_server_cert(pki: &Pki, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use openssl::asn1::Asn1Time;
    use openssl::ec::{EcGroup, EcKey};
    use openssl::hash::MessageDigest;
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    use openssl::x509::extension::SubjectAlternativeName;
    use openssl::x509::{X509, X509NameBuilder};

    let ca = X509::from_pem(&std::fs::read(&pki.files.ca_cert).unwrap()).unwrap();
    let ca_key = PKey::private_key_from_pem(&std::fs::read(&pki.files.ca_key).unwrap()).unwrap();
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap()).unwrap(),
    )
    .unwrap();
    let mut name = X509NameBuilder::new().unwrap();
    name.append_entry_by_nid(Nid::COMMONNAME, "localhost")
        .unwrap();
    let name = name.build();
    let mut b = X509::builder().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(ca.subject_name()).unwrap();
    b.set_pubkey(&key).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let two_years = 2 * 365 * 86400;
    b.set_not_before(&Asn1Time::from_unix(now - two_years).unwrap())
        .unwrap();
    b.set_not_after(&Asn1Time::from_unix(now - two_years + 86400).unwrap())
        .unwrap();
    let san = SubjectAlternativeName::new()
        .dns("localhost")
        .build(&b.x509v3_context(Some(&ca), None))
        .unwrap();
    b.append_extension(san).unwrap();
    b.sign(&ca_key, MessageDigest::sha256()).unwrap();
    let cert_path = dir.join("expired.pem");
    let key_path = dir.join("expired.key");
    std::fs::write(&cert_path, b.build().to_pem().unwrap()).unwrap();
    std::fs::write(&key_path, key.private_key_to_pem_pkcs8().unwrap()).unwrap();
    (cert_path, key_path)
}
