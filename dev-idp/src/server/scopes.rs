//! The `scope` parameter as Entra reads it: resource scopes are
//! `{identifier URI or client id}/{name}` (or `/.default`), OpenID Connect
//! scopes are bare words, and one request targets exactly one resource.

use crate::Config;
use crate::config::App;

use super::oauth_error::OAuthError;

/// OpenID Connect scopes: accepted, and not part of any API's `scp`.
const OIDC_SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];

/// A delegated scope request, resolved.
#[derive(Debug, Clone)]
pub(crate) struct Delegated<'a> {
    /// The API the access token is for.
    pub api: &'a App,
    /// Its scopes being granted (short names).
    pub scopes: Vec<String>,
    /// `offline_access` asked for: a refresh token is due.
    pub offline_access: bool,
    /// `openid` asked for: an ID token is due (OpenID Connect Core §3.1.3.3).
    pub openid: bool,
}

impl Delegated<'_> {
    /// The `scope` of a token response: full resource scopes, as Entra's.
    pub(crate) fn response_scope(&self) -> String {
        let uri = &self
            .api
            .api
            .as_ref()
            .expect("api exposes an api")
            .identifier_uri;
        let mut parts: Vec<String> = self.scopes.iter().map(|s| format!("{uri}/{s}")).collect();
        if self.offline_access {
            parts.push("offline_access".to_owned());
        }
        parts.join(" ")
    }
}

/// Resolves a delegated request's `scope`.
pub(crate) fn delegated<'a>(config: &'a Config, scope: &str) -> Result<Delegated<'a>, OAuthError> {
    let mut api: Option<&App> = None;
    let mut scopes: Vec<String> = Vec::new();
    let mut offline_access = false;
    let mut openid = false;
    for item in scope.split_whitespace() {
        if OIDC_SCOPES.contains(&item) {
            offline_access |= item == "offline_access";
            openid |= item == "openid";
            continue;
        }
        let (resource, app, name) = split_resource(config, item)?;
        if api.is_some_and(|a| a.client_id != app.client_id) {
            return Err(OAuthError::new(
                "invalid_scope",
                28000,
                format!(
                    "Provided value for the input parameter scope '{scope}' is not valid because it contains more than one resource."
                ),
            ));
        }
        api = Some(app);
        let exposed = app.api.as_ref().expect("resolved resource exposes an api");
        if name == ".default" {
            for s in &exposed.scopes {
                if !scopes.contains(s) {
                    scopes.push(s.clone());
                }
            }
        } else if exposed.scopes.iter().any(|s| s == name) {
            if !scopes.iter().any(|s| s == name) {
                scopes.push(name.to_owned());
            }
        } else {
            return Err(invalid_scope(format!(
                "The provided value for the input parameter 'scope' is not valid. The scope '{name}' does not exist on the resource '{resource}'."
            )));
        }
    }
    let api = api.ok_or_else(|| {
        invalid_scope(format!(
            "The provided value for the input parameter 'scope' is not valid: '{scope}' names no API. dev-idp serves no Microsoft Graph; ask for e.g. api://<client id>/access_as_user."
        ))
    })?;
    Ok(Delegated {
        api,
        scopes,
        offline_access,
        openid,
    })
}

/// Resolves a client-credentials `scope`: exactly `{resource}/.default`.
pub(crate) fn app_only<'a>(config: &'a Config, scope: &str) -> Result<&'a App, OAuthError> {
    let mut items = scope.split_whitespace();
    match (items.next(), items.next()) {
        (Some(item), None) => {
            let (_, app, name) = split_resource(config, item)?;
            if name == ".default" {
                return Ok(app);
            }
        }
        (None, _) => {}
        (Some(_), Some(_)) => {}
    }
    Err(OAuthError::new(
        "invalid_scope",
        1_002_012,
        format!(
            "The provided value for scope '{scope}' is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
        ),
    ))
}

/// `api://x/name` → (`api://x`, the app, `name`).
fn split_resource<'c, 's>(
    config: &'c Config,
    item: &'s str,
) -> Result<(&'s str, &'c App, &'s str), OAuthError> {
    let Some((resource, name)) = item.rsplit_once('/') else {
        return Err(invalid_scope(format!(
            "The provided value for the input parameter 'scope' is not valid: '{item}' is not a scope of a configured API (dev-idp serves no Microsoft Graph)."
        )));
    };
    let app = config.api_by_resource(resource).ok_or_else(|| {
        OAuthError::new(
            "invalid_resource",
            500_011,
            format!("The resource principal named {resource} was not found in the tenant."),
        )
    })?;
    Ok((resource, app, name))
}

fn invalid_scope(description: String) -> OAuthError {
    OAuthError::new("invalid_scope", 70011, description)
}

#[cfg(test)]
mod tests {
    use super::*;

    const API: &str = "api://c0ffee00-0000-4000-8000-0000000000a1";

    #[test]
    fn full_scopes_and_oidc_scopes_resolve() {
        let c = Config::embedded_default();
        let d = delegated(&c, &format!("openid {API}/access_as_user offline_access")).unwrap();
        assert_eq!(d.api.name, "todo-api");
        assert_eq!(d.scopes, ["access_as_user"]);
        assert!(d.offline_access);
        assert_eq!(
            d.response_scope(),
            format!("{API}/access_as_user offline_access")
        );
    }

    #[test]
    fn default_scope_grants_all_and_client_id_names_the_resource_too() {
        let c = Config::embedded_default();
        let d = delegated(&c, "c0ffee00-0000-4000-8000-0000000000a1/.default").unwrap();
        assert_eq!(d.scopes, ["access_as_user"]);
    }

    #[test]
    fn unknown_scopes_resources_and_graph_scopes_are_invalid() {
        let c = Config::embedded_default();
        assert_eq!(
            delegated(&c, &format!("{API}/nope")).unwrap_err().error,
            "invalid_scope"
        );
        assert_eq!(
            delegated(&c, "api://other/x").unwrap_err().error,
            "invalid_resource"
        );
        assert_eq!(
            delegated(&c, "User.Read").unwrap_err().error,
            "invalid_scope"
        );
        assert_eq!(delegated(&c, "openid").unwrap_err().error, "invalid_scope");
    }

    #[test]
    fn client_credentials_need_exactly_one_default_scope() {
        let c = Config::embedded_default();
        assert_eq!(
            app_only(&c, &format!("{API}/.default")).unwrap().name,
            "todo-api"
        );
        assert!(app_only(&c, &format!("{API}/access_as_user")).is_err());
        assert!(app_only(&c, "").is_err());
    }
}
