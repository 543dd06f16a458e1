//! The `{tenant}` path segment: a tenant's name or id, or one of Entra's
//! multi-tenant aliases (`common`, `organizations`).

use crate::Config;
use crate::config::Tenant;

use super::oauth_error::OAuthError;

/// What a `{tenant}` segment designates.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TenantPath<'a> {
    /// One directory.
    One(&'a Tenant),
    /// `common` or `organizations`: any directory; issuers become templates.
    Any(&'static str),
}

impl<'a> TenantPath<'a> {
    /// Resolves a segment; unknown tenants get Entra's AADSTS90002.
    pub(crate) fn resolve(config: &'a Config, segment: &str) -> Result<TenantPath<'a>, OAuthError> {
        match segment.to_ascii_lowercase().as_str() {
            "common" => Ok(TenantPath::Any("common")),
            "organizations" => Ok(TenantPath::Any("organizations")),
            _ => config.tenant(segment).map(TenantPath::One).ok_or_else(|| {
                OAuthError::new(
                    "invalid_tenant",
                    90002,
                    format!(
                        "Tenant '{segment}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
                    ),
                )
            }),
        }
    }

    /// The segment to put in endpoint URLs: the tenant id, or the alias.
    pub(crate) fn segment(&self) -> &str {
        match self {
            TenantPath::One(t) => &t.id,
            TenantPath::Any(alias) => alias,
        }
    }

    /// The `tid` in issuers: the id, or Entra's literal `{tenantid}` template.
    pub(crate) fn issuer_tid(&self) -> &str {
        match self {
            TenantPath::One(t) => &t.id,
            TenantPath::Any(_) => "{tenantid}",
        }
    }

    /// Whether a user of `tenant_name` may sign in here.
    pub(crate) fn admits(&self, tenant_name: &str) -> bool {
        match self {
            TenantPath::One(t) => t.name == tenant_name,
            TenantPath::Any(_) => true,
        }
    }
}
