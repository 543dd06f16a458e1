//! What to mint: [`MintRequest`], shared by `dev-idp token`, the library API
//! used by tests, and (through the same claims code) the token endpoint.
//!
//! Every option yields a token the server's own JWKS verifies; options that
//! yield tokens a correct gateway must *reject* (expired, wrong audience,
//! future `nbf`, foreign issuer) say so in their doc comment and CLI flag name.

use std::time::Duration;

use crate::config::TokenVersion;

/// A request for one access token, delegated (`user`) or app-only (`app`).
///
/// ```
/// # use dev_idp::MintRequest;
/// let alice = MintRequest::user("alice").scopes(["access_as_user"]);
/// let daemon = MintRequest::app("daemon");
/// let stale = MintRequest::user("bob").expired();
/// let stepped_up = MintRequest::user("alice").acrs(["c1"]).client_capability("cp1");
/// # let _ = (alice, daemon, stale, stepped_up);
/// ```
#[derive(Debug, Clone, Default)]
pub struct MintRequest {
    /// The signed-in user (name, sign-in name or object id): a delegated token.
    pub user: Option<String>,
    /// The calling app (name or client id) for an app-only token; for a
    /// delegated token, the client app the user signed in to.
    pub app: Option<String>,
    /// The API app the token is for (default: the first app exposing an API).
    pub api: Option<String>,
    /// Delegated scopes, short (`access_as_user`) or full
    /// (`api://…/access_as_user`); default: all the API's scopes.
    pub scopes: Option<Vec<String>>,
    /// Issue from this tenant (name or id) instead of the user's home tenant
    /// (or, for app-only tokens, the first tenant). For wrong-tenant tests.
    pub tenant: Option<String>,
    /// Lifetime instead of the configured one.
    pub lifetime: Option<Duration>,
    /// Token format instead of the API's `accessTokenAcceptedVersion`.
    pub version: Option<TokenVersion>,
    /// Test-only: the token expired an hour ago.
    pub expired: bool,
    /// Test-only: this `aud` instead of the API's.
    pub audience: Option<String>,
    /// Test-only: this `iss` instead of dev-idp's own.
    pub issuer: Option<String>,
    /// Test-only: `nbf` this far in the future.
    pub not_before_in: Option<Duration>,
    /// Authentication contexts the sign-in satisfied (`acrs`, `c1`…`c99`),
    /// as after a step-up. User tokens only.
    pub acrs: Vec<String>,
    /// Client capabilities (`xms_cc`), e.g. `cp1`: the client handles
    /// claims challenges. User tokens only.
    pub client_capabilities: Vec<String>,
}

impl MintRequest {
    /// A delegated token for a user, through the first public client.
    pub fn user(name: impl Into<String>) -> MintRequest {
        MintRequest {
            user: Some(name.into()),
            ..MintRequest::default()
        }
    }

    /// An app-only (client credentials) token for an app.
    pub fn app(name: impl Into<String>) -> MintRequest {
        MintRequest {
            app: Some(name.into()),
            ..MintRequest::default()
        }
    }

    /// Sets the client app a user token is issued to.
    pub fn client(mut self, app: impl Into<String>) -> MintRequest {
        self.app = Some(app.into());
        self
    }

    /// Sets the API app (audience).
    pub fn api(mut self, app: impl Into<String>) -> MintRequest {
        self.api = Some(app.into());
        self
    }

    /// Sets the delegated scopes (an empty list gives an empty `scp`).
    pub fn scopes<S: Into<String>>(mut self, scopes: impl IntoIterator<Item = S>) -> MintRequest {
        self.scopes = Some(scopes.into_iter().map(Into::into).collect());
        self
    }

    /// Issues from another tenant.
    pub fn tenant(mut self, tenant: impl Into<String>) -> MintRequest {
        self.tenant = Some(tenant.into());
        self
    }

    /// Sets the lifetime.
    pub fn lifetime(mut self, lifetime: Duration) -> MintRequest {
        self.lifetime = Some(lifetime);
        self
    }

    /// Forces the token format.
    pub fn version(mut self, version: TokenVersion) -> MintRequest {
        self.version = Some(version);
        self
    }

    /// The sign-in satisfied these authentication contexts (`acrs`).
    pub fn acrs<S: Into<String>>(mut self, ids: impl IntoIterator<Item = S>) -> MintRequest {
        self.acrs = ids.into_iter().map(Into::into).collect();
        self
    }

    /// The client declares a capability (`xms_cc`), e.g. `cp1`.
    pub fn client_capability(mut self, capability: impl Into<String>) -> MintRequest {
        self.client_capabilities.push(capability.into());
        self
    }

    /// Test-only: an expired token.
    pub fn expired(mut self) -> MintRequest {
        self.expired = true;
        self
    }

    /// Test-only: a token for another audience.
    pub fn audience(mut self, audience: impl Into<String>) -> MintRequest {
        self.audience = Some(audience.into());
        self
    }

    /// Test-only: a token claiming another issuer.
    pub fn issuer(mut self, issuer: impl Into<String>) -> MintRequest {
        self.issuer = Some(issuer.into());
        self
    }

    /// Test-only: a token not valid before `delay` from now.
    pub fn not_before_in(mut self, delay: Duration) -> MintRequest {
        self.not_before_in = Some(delay);
        self
    }
}
