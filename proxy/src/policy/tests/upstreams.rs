//! `upstreams:` and the routes' `upstream:` / `max_body_bytes:`: what
//! compiles into what, and every error with its place.

use std::path::Path;
use std::time::Duration;

use super::{dedent, policy};
use crate::policy::Policy;
use crate::upstream::{HostHeader, test_pki};

#[track_caller]
fn check_error(yaml: &str, expected: &str) {
    let errors = match Policy::parse(&dedent(yaml), "policy.yaml") {
        Ok(_) => panic!("policy compiled, expected:\n{expected}"),
        Err(errors) => errors.to_string(),
    };
    assert_eq!(errors, dedent(expected).trim_end());
}

#[test]
fn a_version_1_file_without_upstreams_sends_every_route_to_the_default() {
    let p = policy(
        "
        version: 1
        routes:
          - {name: a, path: /a, methods: [GET]}
        ",
    );
    assert!(p.upstreams().is_empty());
    assert_eq!(p.routes()[0].upstream, None);
    assert_eq!(p.routes()[0].max_body_bytes, None);
}

#[test]
fn routes_name_declared_upstreams() {
    let p = policy(
        "
        version: 1
        upstreams:
          reports:
            url: http://127.0.0.1:9000
            host: client
            strip_prefix: /reports
            timeout_seconds: 5
            assertion_audience: api://reports-api
          orders: {url: 'http://orders:8080'}
        routes:
          - {name: r, path: /reports/**, methods: [GET], upstream: reports, max_body_bytes: 10}
          - {name: o, path: /orders, methods: [GET], upstream: orders}
          - {name: d, path: /d, methods: [GET]}
        ",
    );
    let names: Vec<&str> = p.upstreams().iter().map(|u| u.name.as_str()).collect();
    assert_eq!(names, ["orders", "reports"]);
    let reports = &p.upstreams()[1];
    assert_eq!(reports.target.authority.as_str(), "127.0.0.1:9000");
    assert_eq!(reports.rewrite.host, HostHeader::Client);
    assert_eq!(reports.rewrite.strip_prefix.as_deref(), Some("/reports"));
    assert_eq!(reports.timeout, Some(Duration::from_secs(5)));
    assert_eq!(
        reports.assertion_audience.as_deref(),
        Some("api://reports-api")
    );
    assert_eq!(p.upstreams()[0].assertion_audience, None);
    assert_eq!(p.upstreams()[0].rewrite.host, HostHeader::Upstream);
    let routes = p.routes();
    assert_eq!(
        routes
            .iter()
            .map(|r| (r.upstream, r.max_body_bytes))
            .collect::<Vec<_>>(),
        [(Some(1), Some(10)), (Some(0), None), (None, None)]
    );
}

#[test]
fn an_unknown_upstream_is_an_error_at_its_name() {
    check_error(
        "
        version: 1
        upstreams:
          orders: {url: 'http://orders:8080'}
        routes:
          - {name: r, path: /r, methods: [GET], upstream: reports}
        ",
        "policy.yaml:5:51: unknown upstream `reports` (declared: orders)",
    );
    check_error(
        "
        version: 1
        routes:
          - {name: r, path: /r, methods: [GET], upstream: reports}
        ",
        "policy.yaml:3:51: unknown upstream `reports` (no `upstreams:` are declared)",
    );
}

#[test]
fn bad_upstream_settings_are_errors_at_their_values() {
    check_error(
        "
        version: 1
        upstreams:
          a: {url: 'http://a:1/api'}
          b: {host: x}
          c: {url: 'ftp://c'}
          d: {url: 'http://d', strip_prefix: /d/}
          e: {url: 'http://e', strip_prefix: /e/../f, timeout_seconds: 0}
          f: {url: 'http://f', assertion_audience: ' '}
        routes:
          - {name: r, path: /r, methods: [GET], upstream: b}
        ",
        r#"
        policy.yaml:3:12: `url`: "http://a:1/api" must not have a path: the authorised path is forwarded as it is
        policy.yaml:4:6: upstream `b` has no `url`
        policy.yaml:4:13: unknown `host` value `x`; expected `upstream` or `client`
        policy.yaml:5:12: `url`: "ftp://c" must start with http:// or https://
        policy.yaml:6:38: `strip_prefix` "/d/" must be a path like `/reports`, without a trailing `/`
        policy.yaml:7:38: `strip_prefix` "/e/../f" is not a normalised path
        policy.yaml:7:64: `timeout_seconds` must be at least 1
        policy.yaml:8:44: `assertion_audience` must be a non-empty string, e.g. `api://reports-api` or the backend's URL
        "#,
    );
}

/// Compiles `yaml` as `<dir>/policy.yaml`, so that relative paths in it
/// are files of `dir` (a test CA's, `upstream::test_pki`); `{dir}` in
/// `expected` stands for it.
#[track_caller]
fn check_error_in(dir: &Path, yaml: &str, expected: &str) {
    let file = dir.join("policy.yaml").display().to_string();
    let errors = match Policy::parse(&dedent(yaml), &file) {
        Ok(_) => panic!("policy compiled, expected:\n{expected}"),
        Err(errors) => errors.to_string(),
    };
    let dir = dir.display().to_string();
    assert_eq!(errors, dedent(expected).trim_end().replace("{dir}", &dir));
}

#[test]
fn https_upstreams_take_a_ca_and_a_client_certificate_relative_to_the_policy() {
    let dir = tempfile::tempdir().unwrap();
    test_pki::write(dir.path());
    let file = dir.path().join("policy.yaml").display().to_string();
    let yaml = dedent(
        "
        version: 1
        upstreams:
          system: {url: 'https://reports.example.net'}
          own: {url: 'https://127.0.0.1:8443', ca: ca.pem, client_cert: client.crt, client_key: client.key}
          plain: {url: 'http://orders:8080'}
        routes:
          - {name: r, path: /r, methods: [GET], upstream: own}
        ",
    );
    let p = Policy::parse(&yaml, &file).unwrap_or_else(|e| panic!("{e}"));
    let tls: Vec<(&str, bool)> = p
        .upstreams()
        .iter()
        .map(|u| (u.name.as_str(), u.target.is_tls()))
        .collect();
    assert_eq!(tls, [("own", true), ("plain", false), ("system", true)]);
    assert_eq!(p.upstreams()[0].rewrite.host, HostHeader::Upstream);
}

#[test]
fn bad_tls_settings_are_errors_at_their_values() {
    let dir = tempfile::tempdir().unwrap();
    test_pki::write(dir.path());
    check_error_in(
        dir.path(),
        "
        version: 1
        upstreams:
          plain: {url: 'http://a', ca: ca.pem, client_cert: client.crt, client_key: client.key}
          missing: {url: 'https://b', ca: missing.pem}
          empty: {url: 'https://c', ca: empty.pem, client_cert: empty.pem, client_key: empty.pem}
          mismatch: {url: 'https://d', client_cert: client.crt, client_key: other.key}
          no_key: {url: 'https://e', client_cert: client.crt, ca: missing.pem}
          no_cert: {url: 'https://f', client_key: client.key}
        routes:
          - {name: r, path: /r, methods: [GET], upstream: plain}
        ",
        r#"
        {dir}/policy.yaml:3:32: `ca` is for https upstreams; `url` is http://
        {dir}/policy.yaml:3:53: `client_cert` is for https upstreams; `url` is http://
        {dir}/policy.yaml:3:77: `client_key` is for https upstreams; `url` is http://
        {dir}/policy.yaml:4:35: cannot read "{dir}/missing.pem": No such file or directory (os error 2)
        {dir}/policy.yaml:5:33: "{dir}/empty.pem" holds no PEM certificate
        {dir}/policy.yaml:5:57: "{dir}/empty.pem" holds no PEM certificate
        {dir}/policy.yaml:5:80: "{dir}/empty.pem" holds no PEM private key
        {dir}/policy.yaml:6:69: "{dir}/other.key" is not the key of the certificate in "{dir}/client.crt"
        {dir}/policy.yaml:7:43: `client_cert` without `client_key`: give both or neither
        {dir}/policy.yaml:7:59: cannot read "{dir}/missing.pem": No such file or directory (os error 2)
        {dir}/policy.yaml:8:43: `client_key` without `client_cert`: give both or neither
        "#,
    );
}
