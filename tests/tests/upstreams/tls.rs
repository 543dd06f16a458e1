//! https upstreams against a real rustls server with certificates from a
//! test CA made here (rcgen): verified with `ca`, refused without it or for
//! a name the certificate does not carry, mTLS with `client_cert`, and
//! HTTP/2 or HTTP/1.1 as ALPN decides. A refusal is a 502 with reason
//! `upstream_tls` in the access log and `kind="tls"` in the metrics; the
//! upstream never gets the request in plain http instead. The TLS files are
//! read again on reload, and the default upstream takes the same settings
//! as flags.

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use e2e_tests::capture::{access_line, captured, lines_where};
use e2e_tests::recorder::Recorder;
use e2e_tests::{Options, System};
use http::Version;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use authz_proxy::reload::{ReloadResult, Trigger};

use super::start;

/// Writes a test CA (`ca.pem`), a server certificate for `localhost` only
/// (`server.crt`, `server.key`) and a client certificate (`client.crt`,
/// `client.key`) into `dir`.
fn write_pki(dir: &Path) {
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
    let leaf = |name: &str, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![name.to_owned()]).unwrap();
        params.extended_key_usages = vec![usage];
        (
            params.signed_by(&key, &ca).unwrap().pem(),
            key.serialize_pem(),
        )
    };
    let (server, server_key) = leaf("localhost", ExtendedKeyUsagePurpose::ServerAuth);
    let (client, client_key) = leaf("gateway", ExtendedKeyUsagePurpose::ClientAuth);
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("server.crt", server),
        ("server.key", server_key),
        ("client.crt", client),
        ("client.key", client_key),
    ] {
        std::fs::write(dir.join(name), text).unwrap();
    }
}

/// A rustls + hyper server on `127.0.0.1:0` with the test CA's `localhost`
/// certificate, answering `tls ok` and noting the HTTP version of each
/// request and each TLS connection it accepted.
struct TlsBackend {
    port: u16,
    versions: Arc<Mutex<Vec<Version>>>,
    connections: Arc<AtomicU64>,
}

impl TlsBackend {
    /// Offers `alpn` (in order); with `client_auth`, only a client with a
    /// certificate from the test CA gets through the handshake.
    async fn start(dir: &Path, alpn: &[&[u8]], client_auth: bool) -> TlsBackend {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_file(dir.join("ca.pem")).unwrap())
                .unwrap();
            let verifier =
                rustls::server::WebPkiClientVerifier::builder_with_provider(roots.into(), provider)
                    .build()
                    .unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let chain = CertificateDer::pem_file_iter(dir.join("server.crt"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).unwrap();
        let mut config = builder.with_single_cert(chain, key).unwrap();
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        let acceptor = TlsAcceptor::from(Arc::new(config));

        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let backend = TlsBackend {
            port: listener.local_addr().unwrap().port(),
            versions: Arc::default(),
            connections: Arc::default(),
        };
        let (versions, connections) = (backend.versions.clone(), backend.connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, versions) = (acceptor.clone(), versions.clone());
                let connections = connections.clone();
                tokio::spawn(async move {
                    // A refused handshake ends here: nothing is served.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    connections.fetch_add(1, Ordering::SeqCst);
                    let service = service_fn(move |req: hyper::Request<hyper::body::Incoming>| {
                        versions.lock().unwrap().push(req.version());
                        async {
                            Ok::<_, std::convert::Infallible>(hyper::Response::new(Full::new(
                                Bytes::from_static(b"tls ok"),
                            )))
                        }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        backend
    }

    fn versions(&self) -> Vec<Version> {
        self.versions.lock().unwrap().clone()
    }
}

/// A policy with one anonymous `GET /<name>` route per upstream, each
/// given as `(name, its settings in flow style)`.
fn policy(upstreams: &[(&str, String)]) -> String {
    let mut text = String::from("version: 1\nupstreams:\n");
    for (name, settings) in upstreams {
        text.push_str(&format!("  {name}: {{{settings}}}\n"));
    }
    text.push_str("routes:\n");
    for (name, _) in upstreams {
        text.push_str(&format!(
            "  - {{name: {name}, path: /{name}, methods: [GET], allow: anonymous, upstream: {name}}}\n"
        ));
    }
    text
}

/// Starts a gateway on `upstreams` with the test CA's files beside its policy.
async fn gateway(dir: &Path, upstreams: &[(&str, String)]) -> (System, Recorder) {
    let file = dir.join("policy.yaml");
    std::fs::write(&file, policy(upstreams)).unwrap();
    let default = Recorder::start().await;
    (start(&file, &default).await, default)
}

/// `GET path` with request id `id`: the status and the body.
async fn get(sys: &System, path: &str, id: &str) -> (u16, String) {
    let response = sys
        .http
        .get(format!("{}{path}", sys.gateway_url))
        .header("x-request-id", id)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

/// The access log says `upstream_tls`, and the warning logged during the
/// request carries the handshake's detail (which the client never sees).
async fn assert_logged_as_tls(id: &str, detail: &str) {
    let line = access_line(id).await;
    assert_eq!(
        (&line["status"], &line["reason"], &line["upstream_error"]),
        (&502.into(), &"upstream_tls".into(), &"tls".into()),
        "{line}"
    );
    let warnings = lines_where(|v| v["level"] == "WARN" && v["span"]["request_id"] == id);
    assert_eq!(warnings.len(), 1, "{warnings:?}");
    let message = warnings[0].to_string();
    assert!(message.contains(detail), "{detail:?} in {message}");
}

/// `authz_proxy_upstream_errors_total{kind="tls"}` on the admin listener.
async fn tls_errors(sys: &System) -> f64 {
    let text = sys.metrics().await;
    text.lines()
        .find_map(|l| l.strip_prefix(r#"authz_proxy_upstream_errors_total{kind="tls"} "#))
        .expect("the tls kind is listed from the start")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn an_https_upstream_is_verified_with_its_ca_and_speaks_http2_or_http1_by_alpn() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let both = TlsBackend::start(dir.path(), &[b"h2", b"http/1.1"], false).await;
    let http1 = TlsBackend::start(dir.path(), &[b"http/1.1"], false).await;
    let (sys, default) = gateway(
        dir.path(),
        &[
            (
                "both",
                format!("url: 'https://localhost:{}', ca: ca.pem", both.port),
            ),
            (
                "http1",
                format!("url: 'https://localhost:{}', ca: ca.pem", http1.port),
            ),
        ],
    )
    .await;

    for (path, id) in [
        ("/both", "h2-1"),
        ("/both", "h2-2"),
        ("/http1", "h1-1"),
        ("/http1", "h1-2"),
    ] {
        assert_eq!(
            get(&sys, path, id).await,
            (200, "tls ok".to_owned()),
            "{path}"
        );
    }
    // h2 chosen: both requests on one multiplexed connection.
    assert_eq!(both.versions(), [Version::HTTP_2, Version::HTTP_2]);
    assert_eq!(both.connections.load(Ordering::SeqCst), 1);
    // Only http/1.1 offered: HTTP/1.1 (on pooled connections: how many
    // depends on when the first one was back in the pool).
    assert_eq!(http1.versions(), [Version::HTTP_11, Version::HTTP_11]);
    assert_eq!(default.count(), 0);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_unverified_certificate_is_a_502_upstream_tls_and_never_plain_http() {
    captured();
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let backend = TlsBackend::start(dir.path(), &[b"h2", b"http/1.1"], false).await;
    let port = backend.port;
    let (sys, _default) = gateway(
        dir.path(),
        &[
            // The system's roots do not know the test CA.
            ("no_ca", format!("url: 'https://localhost:{port}'")),
            // The certificate names `localhost`, not `127.0.0.1`.
            (
                "wrong_name",
                format!("url: 'https://127.0.0.1:{port}', ca: ca.pem"),
            ),
        ],
    )
    .await;

    let (status, body) = get(&sys, "/no_ca", "tls-no-ca").await;
    assert_eq!(
        (status, body.as_str()),
        (502, r#"{"detail":"Bad Gateway"}"#)
    );
    assert_logged_as_tls("tls-no-ca", "UnknownIssuer").await;

    let (status, body) = get(&sys, "/wrong_name", "tls-wrong-name").await;
    assert_eq!(
        (status, body.as_str()),
        (502, r#"{"detail":"Bad Gateway"}"#)
    );
    assert_logged_as_tls("tls-wrong-name", "not valid for name").await;

    assert_eq!(tls_errors(&sys).await, 2.0);
    assert!(backend.versions().is_empty(), "no request reached it");

    // `/ready` shakes hands with each upstream and says why one fails; a
    // named upstream down does not make the gateway unready.
    let ready = sys
        .http
        .get(format!("{}/ready", sys.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);
    let ready: serde_json::Value = ready.json().await.unwrap();
    assert_eq!(ready["upstreams"]["default"]["reachable"], true, "{ready}");
    for (name, why) in [
        ("no_ca", "UnknownIssuer"),
        ("wrong_name", "not valid for name"),
    ] {
        let report = &ready["upstreams"][name];
        assert_eq!(report["reachable"], false, "{ready}");
        assert!(
            report["error"].as_str().unwrap().contains(why),
            "{name}: {ready}"
        );
    }
    assert_eq!(
        ready["upstreams"]["no_ca"]["url"],
        format!("https://localhost:{port}")
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn an_mtls_upstream_admits_the_gateway_only_with_its_client_certificate() {
    captured();
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let backend = TlsBackend::start(dir.path(), &[b"h2", b"http/1.1"], true).await;
    let url = format!("url: 'https://localhost:{}', ca: ca.pem", backend.port);
    let (sys, _default) = gateway(
        dir.path(),
        &[
            ("anonymous", url.clone()),
            (
                "identified",
                format!("{url}, client_cert: client.crt, client_key: client.key"),
            ),
        ],
    )
    .await;

    let (status, _) = get(&sys, "/anonymous", "mtls-anonymous").await;
    assert_eq!(status, 502);
    assert_logged_as_tls("mtls-anonymous", "CertificateRequired").await;
    assert_eq!(
        get(&sys, "/identified", "mtls-identified").await,
        (200, "tls ok".to_owned())
    );
    assert_eq!(backend.versions(), [Version::HTTP_2]);
    assert_eq!(tls_errors(&sys).await, 1.0);
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn a_renewed_ca_file_takes_effect_on_reload() {
    let (dir, stranger) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_pki(dir.path());
    write_pki(stranger.path());
    let trusted = dir.path().join("trusted.pem");
    std::fs::copy(stranger.path().join("ca.pem"), &trusted).unwrap();
    let backend = TlsBackend::start(dir.path(), &[b"h2", b"http/1.1"], false).await;
    let (sys, _default) = gateway(
        dir.path(),
        &[(
            "renewed",
            format!("url: 'https://localhost:{}', ca: trusted.pem", backend.port),
        )],
    )
    .await;
    assert_eq!(get(&sys, "/renewed", "renew-1").await.0, 502);

    // Same policy text, new `ca` content: a reload reads it.
    std::fs::copy(dir.path().join("ca.pem"), &trusted).unwrap();
    assert!(matches!(
        sys.reloader.reload(Trigger::FileChange),
        ReloadResult::Applied { .. }
    ));
    assert_eq!(
        get(&sys, "/renewed", "renew-2").await,
        (200, "tls ok".to_owned())
    );
    assert_eq!(
        sys.reloader.reload(Trigger::Signal),
        ReloadResult::Unchanged
    );
    sys.stop().await.unwrap();
}

#[tokio::test]
async fn the_default_upstream_may_be_https_with_its_flags() {
    let dir = tempfile::tempdir().unwrap();
    write_pki(dir.path());
    let backend = TlsBackend::start(dir.path(), &[b"http/1.1"], true).await;
    let file = |name: &str| dir.path().join(name).display().to_string();
    let sys = System::start_with(Options {
        upstream: Some(format!("https://localhost:{}", backend.port)),
        gateway_args: vec![
            "--upstream-ca".into(),
            file("ca.pem"),
            "--upstream-client-cert".into(),
            file("client.crt"),
            "--upstream-client-key".into(),
            file("client.key"),
        ],
        ..Options::default()
    })
    .await
    .unwrap();
    // `/health` is an anonymous route of the shipped policy, sent to the
    // default upstream; an HTTP/1.1 client's request too goes through the
    // shared client, not the per-thread pools of plain connections.
    assert_eq!(
        get(&sys, "/health", "default-tls").await,
        (200, "tls ok".to_owned())
    );
    assert_eq!(backend.versions(), [Version::HTTP_11]);
    sys.stop().await.unwrap();
}
