//! The dev-idp configuration: tenants, app registrations and users, as in Entra.
//!
//! The YAML file (`dev-idp.yaml`) is read in two stages: `raw` is its serde
//! shape with source locations, `compile` checks every rule at once and builds
//! the [`Config`] below, which the rest of the crate uses and never re-checks.
//! The shipped default is embedded so the binary runs with no file at all.

mod compile;
mod duration;
mod error;
mod raw;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

pub use duration::parse_duration;
pub use error::{ConfigError, ConfigProblem};

/// The default configuration shipped in the repository; the gateway's demo
/// `policy.yaml`, the launcher and the end-to-end tests rely on its values.
pub const EMBEDDED_DEFAULT: &str = include_str!("../dev-idp.yaml");

/// A validated configuration: every reference between tenants, apps, users and
/// roles is known to resolve.
#[derive(Debug, Clone)]
pub struct Config {
    /// Public base URL (scheme, host, port; no trailing slash): what browsers
    /// and the gateway see, and the host part of every v2 issuer.
    pub base_url: String,
    /// Base of the v1 issuer (`{sts_base_url}/{tid}/`), the stand-in for
    /// `https://sts.windows.net`; `None` means "same as `base_url`".
    pub sts_base_url: Option<String>,
    /// Address `dev-idp serve` binds when no `--listen` is given.
    pub listen: SocketAddr,
    /// Lifetime of access tokens.
    pub token_lifetime: Duration,
    /// Lifetime of authorization codes (Entra's are about ten minutes).
    pub auth_code_lifetime: Duration,
    /// How long a rotated-out signing key stays in the JWKS, so tokens it
    /// signed keep verifying while caches catch up.
    pub key_rotation_grace: Duration,
    /// Directories, in file order.
    pub tenants: Vec<Tenant>,
    /// App registrations (APIs and clients).
    pub apps: Vec<App>,
    /// User accounts.
    pub users: Vec<User>,
    /// Microsoft Graph as a resource of the client-credentials grant
    /// (`https://graph.microsoft.com/.default`), with its application
    /// permissions as app roles: the Graph stand-in's tokens. Never listed
    /// in `apps` (it is nobody's default API), but an app's
    /// `application_permissions` may name it as `microsoft-graph`.
    pub graph: App,
}

/// One directory. Signing keys are shared by all tenants, as in Entra.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Short name used in URLs and on the command line (`contoso`).
    pub name: String,
    /// Tenant id (`tid`), a lowercase GUID.
    pub id: String,
    /// Human-readable name shown on the sign-in page.
    pub display_name: String,
}

/// Which access-token format an API receives; the API's own registration
/// decides (`accessTokenAcceptedVersion`), never the endpoint the client used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenVersion {
    /// `ver: "1.0"`, issuer `{sts}/{tid}/`, `aud = api://…`.
    V1,
    /// `ver: "2.0"`, issuer `{base}/{tid}/v2.0`, `aud = <client id>`.
    V2,
}

/// The "Expose an API" part of an app registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Api {
    /// Application ID URI, `api://<client id>` by default.
    pub identifier_uri: String,
    /// Delegated permissions (short names such as `access_as_user`).
    pub scopes: Vec<String>,
    /// App-role values (`Admin`, `User`).
    pub app_roles: Vec<String>,
    /// Token format this API accepts.
    pub access_token_accepted_version: TokenVersion,
    /// `group_membership_claims: SecurityGroup` (or `All`): user tokens
    /// for this API carry `groups`, or the overage marker above 200.
    pub groups_claim: bool,
}

/// One app registration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// Short name (`todo-api`, `swagger-ui`, `daemon`).
    pub name: String,
    /// Application (client) id, a lowercase GUID.
    pub client_id: String,
    /// Present when the app exposes an API.
    pub api: Option<Api>,
    /// A public client (SPA) cannot keep a secret, so PKCE is mandatory.
    pub public_client: bool,
    /// May get access tokens straight from the authorize endpoint
    /// (`response_type=token`, the implicit flow): Entra's "Access tokens
    /// (used for implicit flows)", off unless enabled.
    pub implicit_access_tokens: bool,
    /// Authenticates with a certificate (a client assertion signed by its
    /// key) as well as any secret: the dev IdP makes the certificate and
    /// key at start in its data directory (`Idp::client_certificate`).
    pub client_certificate: bool,
    /// Exact redirect URIs accepted by the authorize and token endpoints.
    pub redirect_uris: Vec<String>,
    /// Client secret for confidential clients.
    pub secret: Option<String>,
    /// Application permissions (app roles granted to the app itself) per API
    /// app name: the `roles` of its client-credentials tokens.
    pub application_permissions: BTreeMap<String, Vec<String>>,
}

/// One user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Short name used on the command line (`alice`).
    pub name: String,
    /// Object id (`oid`), a lowercase GUID, stable across apps.
    pub object_id: String,
    /// Display name (`name` claim).
    pub display_name: String,
    /// Sign-in name (`preferred_username`, v1 `upn`/`unique_name`).
    pub preferred_username: String,
    /// Name of the home tenant.
    pub tenant: String,
    /// App roles assigned to the user, per API app name.
    pub app_roles: BTreeMap<String, Vec<String>>,
    /// Security groups (object ids, lowercase): those listed, then the
    /// generated ones (`generated_groups`).
    pub groups: Vec<String>,
}

impl Config {
    /// Reads and validates a YAML file; every problem is reported at once as
    /// `file:line:col: message`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Config::parse(&text, &path.display().to_string())
    }

    /// Validates YAML text; `file_name` only labels the error messages.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        compile::compile(text, file_name)
    }

    /// The configuration shipped in `dev-idp/dev-idp.yaml`.
    pub fn embedded_default() -> Config {
        Config::parse(EMBEDDED_DEFAULT, "dev-idp.yaml")
            .unwrap_or_else(|e| panic!("the embedded dev-idp.yaml is invalid: {e}"))
    }

    /// The v1 issuer base: `sts_base_url`, or `base_url` when unset.
    pub fn effective_sts_base_url(&self) -> &str {
        self.sts_base_url.as_deref().unwrap_or(&self.base_url)
    }

    /// Finds a tenant by name or id.
    pub fn tenant(&self, name_or_id: &str) -> Option<&Tenant> {
        let key = name_or_id.to_ascii_lowercase();
        self.tenants
            .iter()
            .find(|t| t.name == name_or_id || t.id == key)
    }

    /// Finds an app by name or client id.
    pub fn app(&self, name_or_client_id: &str) -> Option<&App> {
        let key = name_or_client_id.to_ascii_lowercase();
        self.apps
            .iter()
            .find(|a| a.name == name_or_client_id || a.client_id == key)
    }

    /// Finds an app for editing (tests add their own redirect URIs this way).
    pub fn app_mut(&mut self, name_or_client_id: &str) -> Option<&mut App> {
        let key = name_or_client_id.to_ascii_lowercase();
        self.apps
            .iter_mut()
            .find(|a| a.name == name_or_client_id || a.client_id == key)
    }

    /// Finds a user by name, sign-in name or object id (what `login_hint` and
    /// `--user` accept).
    pub fn user(&self, hint: &str) -> Option<&User> {
        let key = hint.to_ascii_lowercase();
        self.users.iter().find(|u| {
            u.name == hint || u.preferred_username.to_ascii_lowercase() == key || u.object_id == key
        })
    }

    /// The first app that exposes an API: the default audience of minted tokens.
    pub fn default_api(&self) -> Option<&App> {
        self.apps.iter().find(|a| a.api.is_some())
    }

    /// Finds the app exposing an API by its identifier URI or client id, as
    /// the resource part of a scope (`api://…/access_as_user`) names it;
    /// Microsoft Graph's too.
    pub fn api_by_resource(&self, resource: &str) -> Option<&App> {
        let key = resource.to_ascii_lowercase();
        self.apps.iter().chain([&self.graph]).find(|a| {
            a.api.as_ref().is_some_and(|api| {
                api.identifier_uri.eq_ignore_ascii_case(resource) || a.client_id == key
            })
        })
    }
}

/// The name under which `application_permissions` grant Graph permissions.
pub const GRAPH_APP: &str = "microsoft-graph";
/// Microsoft Graph's application id, the same in every tenant.
pub const GRAPH_CLIENT_ID: &str = "00000003-0000-0000-c000-000000000000";
/// Microsoft Graph's resource URI: the `aud` of its (v1) tokens.
pub const GRAPH_RESOURCE: &str = "https://graph.microsoft.com";
/// The Graph application permissions that let an app read group
/// memberships (`checkMemberGroups`, `getMemberObjects`).
pub const GRAPH_MEMBERSHIP_PERMISSIONS: [&str; 3] = [
    "GroupMember.Read.All",
    "Group.Read.All",
    "Directory.Read.All",
];
/// A JWT lists at most this many groups; above, it carries the overage marker.
pub const MAX_TOKEN_GROUPS: usize = 200;
/// A token of the implicit flow travels in the redirect URI's fragment, so
/// Entra lists far fewer groups in it: from 6 groups on it puts
/// `hasgroups: true` instead of `groups` (and no `_claim_names`). Microsoft's
/// token reference: "used in place of the groups claim for JWTs in implicit
/// grant flows if the full groups claim would extend the URI fragment beyond
/// the URL length limits (currently 6 or more groups)". So at most 5 listed.
pub const MAX_IMPLICIT_TOKEN_GROUPS: usize = 5;

impl App {
    /// Adds a redirect URI (tests register their own port's URI this way).
    pub fn add_redirect_uri(&mut self, uri: impl Into<String>) -> &mut App {
        self.redirect_uris.push(uri.into());
        self
    }
}
