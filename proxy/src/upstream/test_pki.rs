//! A throwaway certificate authority for tests (rcgen): a CA, a server
//! certificate for `localhost` and `127.0.0.1`, a client certificate, and
//! files that must be refused, written as PEM into a directory.

use std::path::Path;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, ExtendedKeyUsagePurpose, IsCa, KeyPair,
};

/// Writes `ca.pem`, `server.crt`/`server.key`, `client.crt`/`client.key`,
/// `other.key` (a key of no certificate here) and `empty.pem` (no PEM block)
/// into `dir`.
pub(crate) fn write(dir: &Path) {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().expect("CA key"))
        .expect("CA certificate");
    let leaf = |names: Vec<String>, usage: ExtendedKeyUsagePurpose| {
        let key = KeyPair::generate().expect("key");
        let mut params = CertificateParams::new(names).expect("params");
        params.extended_key_usages = vec![usage];
        let cert = params.signed_by(&key, &ca).expect("certificate");
        (cert.pem(), key.serialize_pem())
    };
    let (server, server_key) = leaf(
        vec!["localhost".into(), "127.0.0.1".into()],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client, client_key) = leaf(vec!["gateway".into()], ExtendedKeyUsagePurpose::ClientAuth);
    let other_key = KeyPair::generate().expect("key").serialize_pem();
    for (name, text) in [
        ("ca.pem", ca.pem()),
        ("server.crt", server),
        ("server.key", server_key),
        ("client.crt", client),
        ("client.key", client_key),
        ("other.key", other_key),
        ("empty.pem", "not a certificate\n".to_owned()),
    ] {
        std::fs::write(dir.join(name), text).expect("write PEM");
    }
}
