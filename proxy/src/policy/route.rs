//! A compiled route and the authorization decision it makes.
//!
//! Matching (which route decides) lives in `policy.rs`; this file answers the
//! next question, "does this identity satisfy the route?", and nothing about
//! how the identity was established: by the time `authorize` runs, the token
//! has been validated and reduced to an [`Identity`].

use std::fmt;

use crate::identity::{Identity, PrincipalKind};

use super::method::MethodSet;

/// One entry of `routes:` in its compiled form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Unique within a policy; shows up in logs and in `explain`.
    pub name: String,
    /// 1-based line of the route in the policy file, for logs and `explain`.
    pub line: usize,
    /// Who may pass.
    pub access: Access,
    /// Whether the client's `Authorization` header reaches the backend
    /// (for backends that want the token itself). Never on anonymous routes.
    pub forward_authorization: bool,
    /// The methods this route decides for.
    pub methods: MethodSet,
    /// The globs as written (and validated to be in normalised form).
    pub paths: Vec<String>,
    /// `extra: true`: the route serves paths the backend's OpenAPI document
    /// does not list, on purpose (`check --openapi` does not ask for one).
    pub extra: bool,
}

/// What a route requires of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed; a presented token is ignored and no identity is forwarded.
    Anonymous,
    /// A valid token, and then: at least one of `scopes` (if any are listed)
    /// and at least one of `roles` (if any are listed). Both empty means any
    /// valid token.
    Token {
        roles: Vec<String>,
        scopes: Vec<String>,
    },
}

/// Why a valid token was refused (403, RFC 6750 §3.1 `insufficient_scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The token has none of the route's scopes (app tokens never have any).
    MissingScope { required: Vec<String> },
    /// The token has none of the route's roles.
    MissingRole { required: Vec<String> },
}

impl Denial {
    /// The machine-readable reason for logs: `missing_scope` / `missing_role`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::MissingScope { .. } => "missing_scope",
            Denial::MissingRole { .. } => "missing_role",
        }
    }

    /// The route's requirement that was not met, for the client's
    /// `error_description` and the 403 body. Names only what the policy
    /// requires, never what the token holds.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (what, required) = match self {
            Denial::MissingScope { required } => ("scope", required),
            Denial::MissingRole { required } => ("role", required),
        };
        match required.as_slice() {
            [one] => write!(f, "the {what} {one} is required"),
            many => write!(f, "one of the {what}s {} is required", many.join(", ")),
        }
    }
}

impl std::error::Error for Denial {}

impl Route {
    /// Decides whether `identity` may use this route. Scopes are checked
    /// first: a delegated token without the API's scope was not meant for
    /// this call at all, whatever roles the user has.
    pub fn authorize(&self, identity: &Identity) -> Result<(), Denial> {
        let Access::Token { roles, scopes } = &self.access else {
            return Ok(());
        };
        // App-only tokens carry application permissions in `roles`; they
        // never act for a user, so no scope rule is ever met by one, even if
        // a scope value was smuggled into `scopes`.
        let has_scope = identity.kind == PrincipalKind::User
            && identity.scopes.iter().any(|held| scopes.contains(held));
        if !scopes.is_empty() && !has_scope {
            return Err(Denial::MissingScope {
                required: scopes.clone(),
            });
        }
        if !roles.is_empty() && !identity.roles.iter().any(|held| roles.contains(held)) {
            return Err(Denial::MissingRole {
                required: roles.clone(),
            });
        }
        Ok(())
    }

    /// The value of an `Allow` header listing this route's methods.
    pub fn allow_header(&self) -> String {
        self.methods.to_allow_header()
    }
}
