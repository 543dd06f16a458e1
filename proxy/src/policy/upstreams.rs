//! `upstreams:` — the backends routes may send to besides the default one
//! (`--upstream`), compiled and checked with the rest of the policy, so that
//! a hot reload swaps routes and upstreams together.
//!
//! Pure like the rest of the policy: a URL is parsed, nothing is dialled.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_saphyr::Spanned;

use super::compile::Errors;
use super::file::UpstreamFile;
use crate::path::normalize;
use crate::upstream::{HostHeader, Rewrite, Upstream};

/// One entry of `upstreams:` in its compiled form.
#[derive(Debug, Clone)]
pub struct UpstreamDecl {
    /// The key it was declared under; routes name it in `upstream:`.
    pub name: String,
    pub target: Upstream,
    pub rewrite: Rewrite,
    /// `timeout_seconds`: replaces `--upstream-timeout-seconds` for it.
    pub timeout: Option<Duration>,
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
        match target {
            Some(target) => {
                names.insert(name.clone(), list.len());
                list.push(UpstreamDecl {
                    name,
                    target,
                    rewrite: Rewrite { host, strip_prefix },
                    timeout,
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
