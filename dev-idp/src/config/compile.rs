//! Checks a parsed [`RawConfig`] against every rule and builds the [`Config`].
//!
//! Nothing stops at the first problem: each rule appends to one list, so a
//! user fixes the whole file in one go. Rules: GUIDs are GUIDs and unique,
//! URLs are absolute, names resolve (tenants, API apps, roles), scope and role
//! values have no spaces, a public client has no secret.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::raw::{RawApp, RawConfig, RoleMap};
use super::{Api, App, Config, ConfigError, ConfigProblem, Tenant, TokenVersion, User};

const DEFAULT_BASE_URL: &str = "http://localhost:9400";
const DEFAULT_LISTEN: &str = "127.0.0.1:9400";
/// Tenant path segments Entra reserves for multi-tenant documents.
const RESERVED_TENANTS: [&str; 3] = ["common", "organizations", "consumers"];

/// Parses YAML text and checks it; see the module docs for the rules.
pub(super) fn compile(text: &str, file: &str) -> Result<Config, ConfigError> {
    let raw: RawConfig = serde_saphyr::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((0, 0), |l| (l.line(), l.column()));
        ConfigError::Invalid(vec![ConfigProblem {
            file: file.to_owned(),
            line,
            column,
            message: strip_location(&e.without_snippet().to_string()),
        }])
    })?;
    let mut checker = Checker {
        file,
        problems: Vec::new(),
    };
    let config = checker.config(raw);
    if checker.problems.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Invalid(checker.problems))
    }
}

/// The `i`th generated group of a user: a GUID derived from its object id,
/// stable across runs.
fn generated_group(object_id: &str, i: u32) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("group|{object_id}|{i}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Microsoft Graph, as the resource of the client-credentials grant: its
/// (v1) tokens name `https://graph.microsoft.com`, and its application
/// permissions are its app roles.
fn graph_app() -> App {
    App {
        name: super::GRAPH_APP.to_owned(),
        client_id: super::GRAPH_CLIENT_ID.to_owned(),
        api: Some(Api {
            identifier_uri: super::GRAPH_RESOURCE.to_owned(),
            scopes: Vec::new(),
            app_roles: super::GRAPH_MEMBERSHIP_PERMISSIONS
                .iter()
                .map(|p| (*p).to_owned())
                .chain(["User.Read.All".to_owned()])
                .collect(),
            access_token_accepted_version: TokenVersion::V1,
            groups_claim: false,
        }),
        public_client: false,
        implicit_access_tokens: false,
        client_certificate: false,
        redirect_uris: Vec::new(),
        secret: None,
        application_permissions: BTreeMap::new(),
    }
}

/// serde-saphyr appends " at line L, column C"; we print the place first.
fn strip_location(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

struct Checker<'a> {
    file: &'a str,
    problems: Vec<ConfigProblem>,
}

impl Checker<'_> {
    fn problem(&mut self, at: Location, message: String) {
        self.problems.push(ConfigProblem {
            file: self.file.to_owned(),
            line: at.line(),
            column: at.column(),
            message,
        });
    }

    fn config(&mut self, raw: RawConfig) -> Config {
        let base_url = self.url(raw.base_url, "base_url", DEFAULT_BASE_URL);
        let sts_base_url = raw
            .sts_base_url
            .map(|u| self.url(Some(u), "sts_base_url", DEFAULT_BASE_URL));
        let listen = match raw.listen {
            None => DEFAULT_LISTEN
                .parse()
                .expect("default listen address parses"),
            Some(s) => s.value.parse::<SocketAddr>().unwrap_or_else(|_| {
                self.problem(
                    s.referenced,
                    format!(
                        "listen: '{}' is not an address like 127.0.0.1:9400",
                        s.value
                    ),
                );
                DEFAULT_LISTEN
                    .parse()
                    .expect("default listen address parses")
            }),
        };
        let token_lifetime = self.duration(raw.token_lifetime, "token_lifetime", 3600);
        let auth_code_lifetime = self.duration(raw.auth_code_lifetime, "auth_code_lifetime", 600);
        let key_rotation_grace = self.duration(raw.key_rotation_grace, "key_rotation_grace", 3600);

        let tenants = self.tenants(raw.tenants);
        let apps = self.apps(raw.apps);
        let users = self.users(raw.users, &tenants, &apps);
        let graph = graph_app();
        Config {
            base_url,
            sts_base_url,
            listen,
            token_lifetime,
            auth_code_lifetime,
            key_rotation_grace,
            tenants,
            apps,
            users,
            graph,
        }
    }

    fn url(&mut self, value: Option<Spanned<String>>, key: &str, default: &str) -> String {
        let Some(s) = value else {
            return default.to_owned();
        };
        let trimmed = s.value.trim_end_matches('/');
        let ok = (trimmed.starts_with("http://") || trimmed.starts_with("https://"))
            && trimmed
                .split("://")
                .nth(1)
                .is_some_and(|rest| !rest.is_empty())
            && !trimmed.contains(['?', '#', ' ']);
        if !ok {
            self.problem(
                s.referenced,
                format!("{key}: '{}' is not an absolute http(s) URL", s.value),
            );
        }
        trimmed.to_owned()
    }

    fn duration(&mut self, value: Option<Spanned<String>>, key: &str, default: u64) -> Duration {
        match value {
            None => Duration::from_secs(default),
            Some(s) => super::parse_duration(&s.value).unwrap_or_else(|e| {
                self.problem(s.referenced, format!("{key}: {e}"));
                Duration::from_secs(default)
            }),
        }
    }

    fn guid(&mut self, value: &Spanned<String>, what: &str, seen: &mut HashSet<String>) -> String {
        match uuid::Uuid::try_parse(&value.value) {
            Ok(id) if value.value.len() == 36 => {
                let id = id.hyphenated().to_string();
                if !seen.insert(id.clone()) {
                    self.problem(
                        value.referenced,
                        format!("{what} '{}' is used twice", value.value),
                    );
                }
                id
            }
            _ => {
                self.problem(
                    value.referenced,
                    format!(
                        "{what} '{}' is not a GUID like 00000000-0000-0000-0000-000000000000",
                        value.value
                    ),
                );
                value.value.to_ascii_lowercase()
            }
        }
    }

    fn tenants(&mut self, raw: BTreeMap<String, super::raw::RawTenant>) -> Vec<Tenant> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (name, t) in raw {
            if RESERVED_TENANTS.contains(&name.to_ascii_lowercase().as_str()) {
                self.problem(
                    t.id.referenced,
                    format!("tenant name '{name}' is reserved by entra for multi-tenant endpoints"),
                );
            }
            let id = self.guid(&t.id, "tenant id", &mut seen);
            out.push(Tenant {
                display_name: t.display_name.unwrap_or_else(|| name.clone()),
                name,
                id,
            });
        }
        out
    }

    fn apps(&mut self, raw: BTreeMap<String, RawApp>) -> Vec<App> {
        let mut seen = HashSet::new();
        let mut apps: Vec<(App, Option<Spanned<RoleMap>>)> = Vec::new();
        for (name, a) in raw {
            let client_id = self.guid(&a.client_id, "client_id", &mut seen);
            let exposes_api = a.identifier_uri.is_some()
                || !a.scopes.is_empty()
                || !a.app_roles.is_empty()
                || a.access_token_accepted_version.is_some()
                || a.group_membership_claims.is_some();
            if name == super::GRAPH_APP {
                self.problem(
                    a.client_id.referenced,
                    format!("app name '{name}' is reserved for the Microsoft Graph stand-in"),
                );
            }
            let api = exposes_api.then(|| self.api(&a, &client_id));
            let mut redirect_uris = Vec::new();
            for uri in &a.redirect_uris {
                let ok = (uri.value.starts_with("http://") || uri.value.starts_with("https://"))
                    && !uri.value.contains('#');
                if !ok {
                    self.problem(
                        uri.referenced,
                        format!(
                            "redirect uri '{}' is not an absolute http(s) URL without a fragment",
                            uri.value
                        ),
                    );
                }
                redirect_uris.push(uri.value.clone());
            }
            if let (true, Some(secret)) = (a.public_client, &a.secret) {
                self.problem(
                    secret.referenced,
                    format!("app '{name}' is a public client and cannot have a secret"),
                );
            }
            let app = App {
                name,
                client_id,
                api,
                public_client: a.public_client,
                implicit_access_tokens: a.implicit_access_tokens,
                client_certificate: a.client_certificate,
                redirect_uris,
                secret: a.secret.map(|s| s.value),
                application_permissions: BTreeMap::new(),
            };
            apps.push((app, a.application_permissions));
        }
        let mut roles_of: BTreeMap<String, Vec<String>> = apps
            .iter()
            .filter_map(|(a, _)| {
                a.api
                    .as_ref()
                    .map(|api| (a.name.clone(), api.app_roles.clone()))
            })
            .collect();
        let graph = graph_app();
        if let Some(api) = graph.api {
            roles_of.insert(graph.name, api.app_roles);
        }
        apps.into_iter()
            .map(|(mut app, perms)| {
                if let Some(perms) = perms {
                    let what = format!("application_permissions of app '{}'", app.name);
                    app.application_permissions = self.role_map(perms, &roles_of, &what);
                }
                app
            })
            .collect()
    }

    fn api(&mut self, a: &RawApp, client_id: &str) -> Api {
        let identifier_uri = a
            .identifier_uri
            .as_ref()
            .map_or_else(|| format!("api://{client_id}"), |u| u.value.clone());
        let version = match &a.access_token_accepted_version {
            None | Some(Spanned { value: 1, .. }) => TokenVersion::V1,
            Some(Spanned { value: 2, .. }) => TokenVersion::V2,
            Some(v) => {
                self.problem(
                    v.referenced,
                    format!(
                        "access_token_accepted_version must be 1 or 2, not {}",
                        v.value
                    ),
                );
                TokenVersion::V2
            }
        };
        let groups_claim = match &a.group_membership_claims {
            None => false,
            Some(g) => match g.value.as_str() {
                "None" => false,
                "SecurityGroup" | "All" => true,
                other => {
                    self.problem(
                        g.referenced,
                        format!(
                            "group_membership_claims must be None, SecurityGroup or All, not '{other}'"
                        ),
                    );
                    false
                }
            },
        };
        Api {
            identifier_uri,
            scopes: self.words(&a.scopes, "scope"),
            app_roles: self.words(&a.app_roles, "app role"),
            access_token_accepted_version: version,
            groups_claim,
        }
    }

    /// Scope and role values travel space-separated (`scp`) or as JSON
    /// strings (`roles`); neither may contain whitespace.
    fn words(&mut self, values: &[Spanned<String>], what: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for v in values {
            if v.value.is_empty() || v.value.contains(char::is_whitespace) {
                self.problem(
                    v.referenced,
                    format!("{what} '{}' must be one word", v.value),
                );
            } else if out.contains(&v.value) {
                self.problem(
                    v.referenced,
                    format!("{what} '{}' is listed twice", v.value),
                );
            }
            out.push(v.value.clone());
        }
        out
    }

    fn role_map(
        &mut self,
        map: Spanned<RoleMap>,
        roles_of: &BTreeMap<String, Vec<String>>,
        what: &str,
    ) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for (api, roles) in map.value {
            let Some(defined) = roles_of.get(&api) else {
                self.problem(
                    map.referenced,
                    format!("{what}: '{api}' is not an app that exposes an api"),
                );
                continue;
            };
            for role in &roles {
                if !defined.contains(&role.value) {
                    self.problem(
                        role.referenced,
                        format!("{what}: app '{api}' defines no app role '{}'", role.value),
                    );
                }
            }
            out.insert(api, roles.into_iter().map(|r| r.value).collect());
        }
        out
    }

    fn users(
        &mut self,
        raw: BTreeMap<String, super::raw::RawUser>,
        tenants: &[Tenant],
        apps: &[App],
    ) -> Vec<User> {
        let roles_of: BTreeMap<String, Vec<String>> = apps
            .iter()
            .filter_map(|a| {
                a.api
                    .as_ref()
                    .map(|api| (a.name.clone(), api.app_roles.clone()))
            })
            .collect();
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (name, u) in raw {
            let object_id = self.guid(&u.object_id, "object_id", &mut seen);
            if !tenants.iter().any(|t| t.name == u.tenant.value) {
                self.problem(
                    u.tenant.referenced,
                    format!("user '{name}': unknown tenant '{}'", u.tenant.value),
                );
            }
            let what = format!("app_roles of user '{name}'");
            let app_roles = match u.app_roles {
                Some(map) => self.role_map(map, &roles_of, &what),
                None => BTreeMap::new(),
            };
            let mut groups: Vec<String> = Vec::new();
            let mut seen_groups = HashSet::new();
            for g in &u.groups {
                groups.push(self.guid(g, &format!("group of user '{name}'"), &mut seen_groups));
            }
            let generated = u.generated_groups.map_or(0, |n| n.value);
            groups.extend((0..generated).map(|i| generated_group(&object_id, i)));
            out.push(User {
                name,
                object_id,
                display_name: u.name,
                preferred_username: u.preferred_username,
                tenant: u.tenant.value,
                app_roles,
                groups,
            });
        }
        out
    }
}
