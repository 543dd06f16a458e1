//! The serde shape of `dev-idp.yaml`, exactly as written by people.
//!
//! These types are a file-format boundary: they keep source locations
//! (`Spanned`) for everything a later check may reject, and nothing else.
//! [`super::compile`] turns them into the [`super::Config`] the program uses.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_saphyr::Spanned;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawConfig {
    pub base_url: Option<Spanned<String>>,
    pub sts_base_url: Option<Spanned<String>>,
    pub listen: Option<Spanned<String>>,
    pub token_lifetime: Option<Spanned<String>>,
    pub auth_code_lifetime: Option<Spanned<String>>,
    pub key_rotation_grace: Option<Spanned<String>>,
    pub tenants: BTreeMap<String, RawTenant>,
    pub apps: BTreeMap<String, RawApp>,
    #[serde(default)]
    pub users: BTreeMap<String, RawUser>,
}

/// One directory (tenant).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTenant {
    pub id: Spanned<String>,
    pub display_name: Option<String>,
}

/// One app registration: an API it exposes, a client, or both.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawApp {
    pub client_id: Spanned<String>,
    pub identifier_uri: Option<Spanned<String>>,
    #[serde(default)]
    pub scopes: Vec<Spanned<String>>,
    #[serde(default)]
    pub app_roles: Vec<Spanned<String>>,
    pub access_token_accepted_version: Option<Spanned<u8>>,
    /// `groupMembershipClaims` of the manifest: `None`, `SecurityGroup`, `All`.
    pub group_membership_claims: Option<Spanned<String>>,
    #[serde(default)]
    pub public_client: bool,
    /// Authentication > "Access tokens (used for implicit flows)"
    /// (`oauth2AllowImplicitFlow` in the manifest).
    #[serde(default)]
    pub implicit_access_tokens: bool,
    /// Certificates & secrets > Certificates: the dev IdP makes the app a
    /// certificate credential (see `keys::client_cert`).
    #[serde(default)]
    pub client_certificate: bool,
    #[serde(default)]
    pub redirect_uris: Vec<Spanned<String>>,
    pub secret: Option<Spanned<String>>,
    pub application_permissions: Option<Spanned<RoleMap>>,
}

/// One user account.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawUser {
    pub object_id: Spanned<String>,
    pub name: String,
    pub preferred_username: String,
    pub tenant: Spanned<String>,
    pub app_roles: Option<Spanned<RoleMap>>,
    /// Security groups the user is a member of (object ids).
    #[serde(default)]
    pub groups: Vec<Spanned<String>>,
    /// This many more groups, with ids derived from the object id: a user
    /// in more than 200 groups gets the overage marker instead of `groups`.
    pub generated_groups: Option<Spanned<u32>>,
}

/// App roles granted per API app, keyed by the API app's name.
pub(super) type RoleMap = BTreeMap<String, Vec<Spanned<String>>>;
