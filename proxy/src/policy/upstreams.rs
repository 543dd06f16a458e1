//! `upstreams:` — the backends routes may send to besides the default one
//! (`--upstream`), compiled and checked with the rest of the policy, so that
//! a hot reload swaps routes and upstreams together.
//!
//! Like the rest of the policy it does no network IO: a URL is parsed,
//! nothing is dialled. The files of an https upstream's TLS settings (`ca`,
//! `client_cert`, `client_key`; relative to the policy file's directory)
//! are read here, so that a missing file, a file without a certificate or a
//! key that does not match its certificate is an error at load, with its
//! place, and a reload reads them again.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::compile::Errors;
use super::file::UpstreamFile;
use crate::path::normalize;
use crate::upstream::{HostHeader, Rewrite, TlsFiles, TlsSetting, Upstream};

/// One entry of `upstreams:` in its compiled form.
#[derive(Debug, Clone)]
pub struct UpstreamDecl {
    /// The key it was declared under; routes name it in `upstream:`.
    pub name: String,
    /// Its address and, for https, its TLS client configuration.
    pub target: Upstream,
    pub rewrite: Rewrite,
    /// `timeout_seconds`: replaces `--upstream-timeout-seconds` for it.
    pub timeout: Option<Duration>,
    /// The TLS files it was built from (`ca`, `client_cert`, `client_key`,
    /// resolved): hot reload notices when their content changes.
    pub files: Vec<PathBuf>,
    /// `assertion_audience`: the `aud` of the identity assertions its
    /// requests carry; by default the upstream's name.
    pub assertion_audience: Option<String>,
}

/// The declared upstreams, and the index of each name for the routes.
pub(super) fn compile_upstreams(
    file: Option<Spanned<BTreeMap<String, Spanned<UpstreamFile>>>>,
    errors: &mut Errors<'_>,
) -> (Vec<UpstreamDecl>, HashMap<String, usize>) {
    let mut list = Vec::new();
    let mut names = HashMap::new();
    let Some(file) = file else {
        return (list, names);
    };
    for (name, spanned) in file.value {
        let place = spanned.referenced;
        let decl = spanned.value;
        if decl.unreadable {
            // Reported while reading; declared, so routes naming it get no
            // second error.
            names.insert(name, usize::MAX);
            continue;
        }
        let tls = TlsKeys {
            ca: decl.ca,
            client_cert: decl.client_cert,
            client_key: decl.client_key,
        };
        if name.trim().is_empty() || name.chars().any(char::is_whitespace) {
            errors.at(place, format!("upstream name {name:?} must be one word"));
        }
        let target = match decl.url {
            None => {
                errors.at(place, format!("upstream `{name}` has no `url`"));
                None
            }
            Some(url) => Upstream::parse(&url.value)
                .map_err(|message| errors.at(url.referenced, format!("`url`: {message}")))
                .ok(),
        };
        let host = match decl.host {
            None => HostHeader::Upstream,
            Some(host) => match host.value.as_str() {
                "upstream" => HostHeader::Upstream,
                "client" => HostHeader::Client,
                other => {
                    errors.at(
                        host.referenced,
                        format!("unknown `host` value `{other}`; expected `upstream` or `client`"),
                    );
                    HostHeader::Upstream
                }
            },
        };
        let strip_prefix = decl.strip_prefix.and_then(|prefix| {
            let written = prefix.value;
            let canonical = normalize(&written).ok();
            if !written.starts_with('/') || written == "/" || written.ends_with('/') {
                errors.at(
                    prefix.referenced,
                    format!("`strip_prefix` {written:?} must be a path like `/reports`, without a trailing `/`"),
                );
                None
            } else if canonical.as_deref() != Some(written.as_str()) {
                errors.at(
                    prefix.referenced,
                    format!("`strip_prefix` {written:?} is not a normalised path"),
                );
                None
            } else {
                Some(written)
            }
        });
        let timeout = decl.timeout_seconds.and_then(|t| {
            if t.value == 0 {
                errors.at(
                    t.referenced,
                    "`timeout_seconds` must be at least 1".to_owned(),
                );
                None
            } else {
                Some(Duration::from_secs(t.value))
            }
        });
        let assertion_audience = decl.assertion_audience.and_then(|aud| {
            let written = aud.value.trim().to_owned();
            if written.is_empty() || written.chars().any(char::is_control) {
                errors.at(
                    aud.referenced,
                    "`assertion_audience` must be a non-empty string, e.g. `api://reports-api` or the backend's URL".to_owned(),
                );
                None
            } else {
                Some(written)
            }
        });
        let files = tls.paths(errors.dir());
        let target = target.and_then(|target| tls.apply(target, place, errors));
        match target {
            Some(target) => {
                names.insert(name.clone(), list.len());
                list.push(UpstreamDecl {
                    name,
                    target,
                    rewrite: Rewrite { host, strip_prefix },
                    timeout,
                    files,
                    assertion_audience,
                });
            }
            // Declared, so routes naming it get no second error; the
            // policy does not compile anyway.
            None => {
                names.insert(name, usize::MAX);
            }
        }
    }
    (list, names)
}

/// The TLS keys of one upstream, as written.
struct TlsKeys {
    ca: Option<Spanned<String>>,
    client_cert: Option<Spanned<String>>,
    client_key: Option<Spanned<String>>,
}

impl TlsKeys {
    /// The files named, resolved from `dir`.
    fn paths(&self, dir: &Path) -> Vec<PathBuf> {
        [&self.ca, &self.client_cert, &self.client_key]
            .into_iter()
            .flatten()
            .map(|value| dir.join(&value.value))
            .collect()
    }

    /// `target` verified and identified as the keys say; `None` after
    /// reporting each problem at the key it is about (else at `place`, the
    /// upstream's own).
    fn apply(self, target: Upstream, place: Location, errors: &mut Errors<'_>) -> Option<Upstream> {
        let keys = [
            ("ca", &self.ca),
            ("client_cert", &self.client_cert),
            ("client_key", &self.client_key),
        ];
        let mut ok = true;
        if !target.is_tls() {
            for (key, value) in keys {
                if let Some(value) = value {
                    errors.at(
                        value.referenced,
                        format!("`{key}` is for https upstreams; `url` is http://"),
                    );
                    ok = false;
                }
            }
            return ok.then_some(target);
        }
        let dir = errors.dir().to_owned();
        let path = |value: &Spanned<String>| -> PathBuf { dir.join(&value.value) };
        // One of the pair alone is an error; `ca` is still checked.
        let client = match (&self.client_cert, &self.client_key) {
            (Some(cert), Some(key)) => Some((path(cert), path(key))),
            (None, None) => None,
            (Some(cert), None) => {
                errors.at(
                    cert.referenced,
                    "`client_cert` without `client_key`: give both or neither".to_owned(),
                );
                ok = false;
                None
            }
            (None, Some(key)) => {
                errors.at(
                    key.referenced,
                    "`client_key` without `client_cert`: give both or neither".to_owned(),
                );
                ok = false;
                None
            }
        };
        let files = TlsFiles {
            ca: self.ca.as_ref().map(path),
            client,
        };
        target
            .with_tls(&files)
            .map_err(|problems| {
                for problem in problems {
                    let key = match problem.setting {
                        TlsSetting::Ca => self.ca.as_ref(),
                        TlsSetting::ClientCert => self.client_cert.as_ref(),
                        TlsSetting::ClientKey => self.client_key.as_ref(),
                    };
                    errors.at(key.map_or(place, |v| v.referenced), problem.message);
                }
            })
            .ok()
            .filter(|_| ok)
    }
}
