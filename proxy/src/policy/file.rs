//! The file format of `policy.yaml`, as serde sees it.
//!
//! These types are the boundary with the user's text and nothing else: every
//! value that a message may point at is wrapped in [`Spanned`] so that it
//! keeps its line and column, and almost every key is optional here so that
//! the compiler (`compile.rs`) can report all missing and invalid values at
//! once instead of stopping at serde's first complaint. Unknown keys are
//! refused here, by serde, because a misspelt key (`role:` for `roles:`)
//! would otherwise silently open a route.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// A list whose own position and whose items' positions are all kept.
pub(super) type SpannedList = Spanned<Vec<Spanned<String>>>;

/// The whole document.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PolicyFile {
    pub version: Option<Spanned<u64>>,
    pub identity_headers: Option<IdentityHeadersFile>,
    pub upstreams: Option<Spanned<BTreeMap<String, Spanned<UpstreamFile>>>>,
    pub routes: Option<Spanned<Vec<Spanned<RouteFile>>>>,
    pub defaults: Option<DefaultsFile>,
}

/// `defaults:`; each key applies to every token route that does not set it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DefaultsFile {
    pub apps: Option<SpannedList>,
    pub tenants: Option<SpannedList>,
    pub callers: Option<SpannedList>,
    pub guests: Option<Spanned<String>>,
    pub auth_context: Option<SpannedList>,
}

/// `identity_headers:`; each key overrides one default header name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IdentityHeadersFile {
    pub user_id: Option<Spanned<String>>,
    pub tenant: Option<Spanned<String>>,
    pub roles: Option<Spanned<String>>,
    pub scopes: Option<Spanned<String>>,
    pub name: Option<Spanned<String>>,
    pub email: Option<Spanned<String>>,
    #[serde(rename = "type")]
    pub kind: Option<Spanned<String>>,
    pub assertion: Option<Spanned<String>>,
}

/// One entry of `upstreams:`, under its name.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UpstreamFile {
    pub url: Option<Spanned<String>>,
    pub host: Option<Spanned<String>>,
    pub strip_prefix: Option<Spanned<String>>,
    pub timeout_seconds: Option<Spanned<u64>>,
    pub ca: Option<Spanned<String>>,
    pub client_cert: Option<Spanned<String>>,
    pub client_key: Option<Spanned<String>>,
}

/// One item of `routes:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RouteFile {
    pub name: Option<Spanned<String>>,
    pub path: Option<Spanned<String>>,
    pub paths: Option<SpannedList>,
    pub methods: Option<SpannedList>,
    pub allow: Option<Spanned<String>>,
    pub roles: Option<SpannedList>,
    pub scopes: Option<SpannedList>,
    pub forward_authorization: Option<Spanned<bool>>,
    pub extra: Option<Spanned<bool>>,
    pub upstream: Option<Spanned<String>>,
    pub max_body_bytes: Option<Spanned<u64>>,
    pub audiences: Option<SpannedList>,
    pub apps: Option<SpannedList>,
    pub tenants: Option<SpannedList>,
    pub callers: Option<SpannedList>,
    pub guests: Option<Spanned<String>>,
    pub auth_context: Option<SpannedList>,
    pub enforce: Option<Spanned<String>>,
}
