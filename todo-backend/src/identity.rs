//! Who is calling, read from the headers the gateway sets.
//!
//! The backend never sees a token. The gateway authenticates the caller,
//! removes any identity header the client sent and sets these instead, so
//! the backend must listen only where the gateway alone can reach it. This
//! module only reads the headers; deciding what the caller may do is the
//! handlers' job.

use std::fmt;
use std::sync::Arc;

use percent_encoding::percent_decode_str;
use warp::Filter;
use warp::http::HeaderMap;

use crate::assertion::Verifier;
use crate::rejection::ApiError;

/// The identity header names, in one place (the gateway sets the same).
pub mod headers {
    /// The caller's object id (`oid`). Required.
    pub const USER_ID: &str = "x-user-id";
    /// The caller's tenant id (`tid`). Required: items belong to a tenant.
    pub const USER_TENANT: &str = "x-user-tenant";
    /// Comma-separated app roles, case-sensitive (`Admin,User`).
    pub const USER_ROLES: &str = "x-user-roles";
    /// Display name, percent-encoded UTF-8. For logs only.
    pub const USER_NAME: &str = "x-user-name";
    /// E-mail address, percent-encoded UTF-8. For logs only.
    pub const USER_EMAIL: &str = "x-user-email";
    /// Space-separated scopes. Not read; compared with a signed assertion.
    pub const USER_SCOPES: &str = "x-user-scopes";
    /// `user` or `app`. Not read; compared with a signed assertion.
    pub const USER_TYPE: &str = "x-user-type";
}

/// Where the caller's identity comes from (`--trust`).
#[derive(Debug, Clone, Default)]
pub enum Trust {
    /// The `X-User-*` headers, as they arrive: the network must ensure that
    /// only the gateway can reach the backend (the demo's mode).
    #[default]
    Headers,
    /// The gateway's signed identity assertion, verified on every request
    /// ([`crate::assertion`]); the headers, when present, must agree with it.
    GatewayAssertion(Arc<Verifier>),
}

/// The app role that lets a user see and delete all items of their tenant.
pub const ADMIN_ROLE: &str = "Admin";

/// The caller, as the gateway vouches for them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    pub user_id: String,
    pub tenant_id: String,
    pub roles: Vec<String>,
    /// Decoded display name; never used for a decision.
    pub name: Option<String>,
    /// Decoded e-mail address; never used for a decision.
    pub email: Option<String>,
}

impl Identity {
    /// Reads the identity headers. Both the user id and the tenant are
    /// required (the sample required only a user): without a tenant an item
    /// could not be kept apart from other tenants' items. A header that
    /// appears more than once counts as absent (fail closed).
    pub fn from_headers(headers: &HeaderMap) -> Result<Identity, ApiError> {
        // A header that appears twice means something between the client and
        // us appended instead of replacing: trust neither value.
        let text = |name: &str| {
            let mut values = headers.get_all(name).iter();
            let value = values.next().filter(|_| values.next().is_none())?;
            value.to_str().ok().map(str::trim).filter(|v| !v.is_empty())
        };
        let (Some(user_id), Some(tenant_id)) = (text(headers::USER_ID), text(headers::USER_TENANT))
        else {
            return Err(ApiError::NotAuthenticated);
        };
        let roles = text(headers::USER_ROLES)
            .map(|roles| {
                roles
                    .split(',')
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        let decoded =
            |name: &str| text(name).map(|v| percent_decode_str(v).decode_utf8_lossy().into_owned());
        Ok(Identity {
            user_id: user_id.to_owned(),
            tenant_id: tenant_id.to_owned(),
            roles,
            name: decoded(headers::USER_NAME),
            email: decoded(headers::USER_EMAIL),
        })
    }

    /// Whether the caller has the `Admin` role (exact, case-sensitive match).
    pub fn is_admin(&self) -> bool {
        self.roles.iter().any(|r| r == ADMIN_ROLE)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user_id, self.tenant_id)?;
        if let Some(name) = &self.name {
            write!(f, " ({name})")?;
        }
        Ok(())
    }
}

/// Extracts the caller's [`Identity`] as `trust` says, or rejects with 401
/// (503 when the gateway's keys cannot be had).
pub fn identity(
    trust: Trust,
) -> impl Filter<Extract = (Identity,), Error = warp::Rejection> + Clone {
    warp::header::headers_cloned().and_then(move |headers: HeaderMap| {
        let trust = trust.clone();
        async move {
            match trust {
                Trust::Headers => Identity::from_headers(&headers),
                Trust::GatewayAssertion(verifier) => verifier
                    .identity(&headers)
                    .await
                    .map_err(ApiError::Assertion),
            }
            .map_err(warp::reject::custom)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds headers from pairs and reads them; `None` means "401".
    fn check(pairs: &[(&str, &str)]) -> Option<Identity> {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                warp::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        Identity::from_headers(&map).ok()
    }

    fn who(user: &str, tenant: &str, roles: &[&str]) -> Identity {
        Identity {
            user_id: user.into(),
            tenant_id: tenant.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
            name: None,
            email: None,
        }
    }

    #[test]
    fn user_id_and_tenant_are_both_required() {
        assert_eq!(check(&[]), None);
        assert_eq!(check(&[("X-User-Id", "u")]), None);
        assert_eq!(check(&[("X-User-Tenant", "t")]), None);
        assert_eq!(check(&[("X-User-Id", ""), ("X-User-Tenant", "t")]), None);
        assert_eq!(check(&[("X-User-Id", "u"), ("X-User-Tenant", " ")]), None);
        assert_eq!(
            check(&[("X-User-Id", "u"), ("X-User-Tenant", "t")]),
            Some(who("u", "t", &[]))
        );
    }

    #[test]
    fn a_repeated_identity_header_is_trusted_in_neither_copy() {
        let (id, tenant) = (("X-User-Id", "u"), ("X-User-Tenant", "t"));
        assert_eq!(check(&[id, ("X-User-Id", "v"), tenant]), None);
        assert_eq!(check(&[id, tenant, ("X-User-Tenant", "t2")]), None);
        let roles = check(&[
            id,
            tenant,
            ("X-User-Roles", "Admin"),
            ("X-User-Roles", "User"),
        ])
        .unwrap();
        assert!(!roles.is_admin(), "two role headers grant no role");
    }

    #[test]
    fn roles_are_split_on_commas_and_trimmed() {
        let ids = [("X-User-Id", "u"), ("X-User-Tenant", "t")];
        let with = |roles: &str| check(&[ids[0], ids[1], ("X-User-Roles", roles)]).unwrap();
        assert_eq!(with("Admin,User").roles, ["Admin", "User"]);
        assert_eq!(with(" Admin , User ,").roles, ["Admin", "User"]);
        assert!(with("User, Admin").is_admin());
    }

    #[test]
    fn the_admin_role_is_case_sensitive() {
        let ids = [("X-User-Id", "u"), ("X-User-Tenant", "t")];
        for (roles, admin) in [
            ("Admin", true),
            ("admin", false),
            ("ADMIN", false),
            ("Admins", false),
            ("", false),
        ] {
            let identity = check(&[ids[0], ids[1], ("X-User-Roles", roles)]).unwrap();
            assert_eq!(identity.is_admin(), admin, "roles {roles:?}");
        }
    }

    #[test]
    fn name_and_email_are_percent_decoded_utf8() {
        let identity = check(&[
            ("X-User-Id", "u"),
            ("X-User-Tenant", "t"),
            ("X-User-Name", "J%C3%BCrgen%20M%C3%BCller"),
            ("X-User-Email", "j%C3%BC@example.com"),
        ])
        .unwrap();
        assert_eq!(identity.name.as_deref(), Some("Jürgen Müller"));
        assert_eq!(identity.email.as_deref(), Some("jü@example.com"));
    }
}
