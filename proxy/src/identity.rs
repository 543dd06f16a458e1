//! The caller's identity as the gateway established it from a validated token.
//!
//! This is the only thing the authorization stage and the header rewrite see of
//! a token: claims that grant nothing (`wids`, `scope`) never make it in here,
//! so they cannot be mistaken for permissions later. `groups` is kept apart
//! from `roles` and `scopes`, read only by the `groups:` route condition.

use std::ops::Deref;

use crate::headers::IdentityValues;

/// Whether a token was issued to a signed-in user (delegated) or to an
/// application on its own behalf (client credentials).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    /// A delegated token: it carries `scp`, and perhaps `roles` assigned to the user.
    User,
    /// An app-only token: `roles` (application permissions) and never `scp`.
    App,
}

impl PrincipalKind {
    /// The value of the `X-User-Type` header.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::App => "app",
        }
    }

    /// The other kind.
    pub fn other(self) -> PrincipalKind {
        match self {
            PrincipalKind::User => PrincipalKind::App,
            PrincipalKind::App => PrincipalKind::User,
        }
    }
}

/// A validated caller. Built only by the authentication stage, after the
/// signature, issuer, tenant, audience and lifetime checks have passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// `oid`: the user's or service principal's object id, stable within a tenant.
    pub object_id: String,
    /// `tid`: the tenant that issued the token (checked against the issuer).
    pub tenant_id: String,
    /// User or app, from `idtyp` when present, else from the presence of `scp`.
    pub kind: PrincipalKind,
    /// `roles`: app roles (users) or application permissions (apps), exact values.
    pub roles: Vec<String>,
    /// `scp`: delegated scopes, split on spaces. Always empty for app tokens.
    pub scopes: Vec<String>,
    /// `name`: display only.
    pub name: Option<String>,
    /// `preferred_username` (v2) or `upn` / `unique_name` / `email` (v1): display only.
    pub email: Option<String>,
    /// `azp` (v2) or `appid` (v1): the client application that asked for the token.
    pub app_id: Option<String>,
    /// A B2B guest of the tenant: `acct` is 1, or an `idp` claim names
    /// another issuer than `iss` (the home tenant's).
    pub guest: bool,
    /// `aud`: the audiences the token names (usually one).
    pub audiences: Vec<String>,
    /// Whether one of them is an audience the gateway accepts on every route
    /// (`--client-id`, `--audience`). A route with `audiences:` asks for one
    /// of its own instead ([`Route::accepts_audience`](crate::policy::Route::accepts_audience)).
    pub default_audience: bool,
    /// `acrs`: the Conditional Access authentication contexts (`c1`…`c99`)
    /// the sign-in satisfied, for routes with `auth_context`.
    pub auth_contexts: Vec<String>,
    /// `xms_cc` contains `cp1`: the client declared that it handles claims
    /// challenges, so a missing authentication context is answered with one
    /// (401) rather than a 403 it could do nothing about.
    pub handles_claims_challenges: bool,
    /// `groups`: security-group object ids (lowercase), for routes with
    /// `groups:`. Empty when the token has none, or has an overage instead.
    pub groups: Vec<String>,
    /// The token carries a groups overage marker instead of `groups`
    /// (`_claim_names` naming `groups`, or `hasgroups: true`): the user is
    /// in more groups than a token holds, and only Microsoft Graph can tell
    /// which (`graph.rs`). Never "in no group".
    pub groups_overage: bool,
    /// `exp`, seconds since the epoch: a cached validation never outlives it.
    pub expires_at: u64,
}

/// A validated caller as requests share it: the identity and its identity
/// headers' values, built once when the token is verified. The token cache
/// holds it behind an `Arc`, so a request with a cached token costs a
/// reference count, not a copy of the claims.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    pub identity: Identity,
    pub header_values: IdentityValues,
}

impl Authenticated {
    pub fn new(identity: Identity) -> Authenticated {
        let header_values = IdentityValues::render(&identity);
        Authenticated {
            identity,
            header_values,
        }
    }
}

impl Deref for Authenticated {
    type Target = Identity;

    fn deref(&self) -> &Identity {
        &self.identity
    }
}
