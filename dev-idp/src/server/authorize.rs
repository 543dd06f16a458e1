//! `GET /{tenant}/oauth2/v2.0/authorize`: the authorization-code flow's
//! front half (RFC 6749 §4.1.1, PKCE per RFC 7636), and the implicit flow
//! (`response_type=token`, RFC 6749 §4.2) for apps that enable it
//! (`implicit_access_tokens`, Entra's "Access tokens (used for implicit
//! flows)"): the access token goes back in the redirect URI's fragment, and
//! a user in 6 groups or more gets `hasgroups: true` instead of `groups`
//! in it, as from Entra.
//!
//! Checks run in the order that decides where an error may go: first the
//! tenant, client and redirect URI, whose errors are shown as a page (never
//! redirect to an unverified URI, RFC 6749 §4.1.2.1); then everything else,
//! whose errors go back to the client's redirect URI. A valid request shows a
//! page listing the tenant's users, each a link to the same request plus
//! `login_hint`; with a `login_hint` naming a user, the code is issued at once
//! — that is how scripts and tests sign in without a browser.

use std::time::SystemTime;

use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::Idp;
use crate::claims::Grant;
use crate::claims_request::ClaimsRequest;
use crate::config::{App, User};
use crate::keys::unix;
use crate::sessions::PendingCode;

use super::html::{self, UserChoice};
use super::oauth_error::OAuthError;
use super::params::{Params, encode};
use super::scopes;
use super::tenant::TenantPath;

/// Where and how the response goes back to the client.
struct Callback<'a> {
    redirect_uri: String,
    mode: &'a str,
    state: Option<&'a str>,
}

/// Handles one authorize request; `query` is the raw query string.
pub(crate) fn authorize(idp: &Idp, tenant: &str, query: &str) -> Response {
    let mut params = match Params::parse(query) {
        Ok(p) => p,
        Err(name) => {
            return OAuthError::new(
                "invalid_request",
                900_144,
                format!("The parameter '{name}' is repeated."),
            )
            .to_error_page();
        }
    };
    // v1 clients name the API with `resource` instead of a scope.
    if params.get("scope").is_none()
        && let Some(resource) = params.get("resource").map(str::to_owned)
    {
        params.set("scope", format!("{resource}/.default"));
    }
    let tenant = match TenantPath::resolve(idp.config(), tenant) {
        Ok(t) => t,
        Err(e) => return e.to_error_page(),
    };
    let (client, redirect_uri) = match client_and_redirect(idp, &tenant, &params) {
        Ok(found) => found,
        Err(e) => return e.to_error_page(),
    };
    // Tokens never go in a query string: the implicit flow answers in the
    // fragment unless asked for form_post.
    let default_mode = match params.get("response_type") {
        Some("token") => "fragment",
        _ => "query",
    };
    let reply = Callback {
        redirect_uri,
        mode: params.get("response_mode").unwrap_or(default_mode),
        state: params.get("state"),
    };
    match sign_in(idp, &tenant, client, &params, &reply) {
        Ok(response) => response,
        Err(e) => respond(&reply, &e.redirect_params(reply.state)),
    }
}

/// The client and its redirect URI, or an error to show (not redirect).
fn client_and_redirect<'a>(
    idp: &'a Idp,
    tenant: &TenantPath<'_>,
    params: &Params,
) -> Result<(&'a App, String), OAuthError> {
    let client_id = params
        .get("client_id")
        .ok_or_else(|| OAuthError::missing("client_id"))?;
    let client = idp.config().app(client_id).ok_or_else(|| {
        OAuthError::new(
            "unauthorized_client",
            700_016,
            format!(
                "Application with identifier '{client_id}' was not found in the directory '{}'.",
                tenant_label(tenant)
            ),
        )
    })?;
    let redirect_uri = match params.get("redirect_uri") {
        Some(uri) => uri.to_owned(),
        None if client.redirect_uris.len() == 1 => client.redirect_uris[0].clone(),
        None => return Err(OAuthError::missing("redirect_uri")),
    };
    if !client.redirect_uris.contains(&redirect_uri) {
        return Err(OAuthError::new(
            "invalid_request",
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URIs configured for the application '{}'.",
                client.client_id
            ),
        ));
    }
    Ok((client, redirect_uri))
}

/// Everything after the redirect URI is trusted: errors are redirected.
fn sign_in(
    idp: &Idp,
    tenant: &TenantPath<'_>,
    client: &App,
    params: &Params,
    reply: &Callback<'_>,
) -> Result<Response, OAuthError> {
    if !matches!(reply.mode, "query" | "fragment" | "form_post") {
        return Err(OAuthError::new(
            "invalid_request",
            900_144,
            format!("response_mode '{}' is not supported.", reply.mode),
        ));
    }
    let implicit = match params.get("response_type") {
        Some("code") => false,
        Some("token") if !client.implicit_access_tokens => {
            return Err(OAuthError::new(
                "unsupported_response_type",
                700_051,
                "response_type 'token' is not enabled for the application.",
            ));
        }
        Some("token") if reply.mode == "query" => {
            return Err(OAuthError::new(
                "invalid_request",
                900_144,
                "response_mode 'query' cannot carry an access token; use 'fragment' or 'form_post'.",
            ));
        }
        Some("token") => true,
        None => return Err(OAuthError::missing("response_type")),
        Some(other) => {
            return Err(OAuthError::new(
                "unsupported_response_type",
                700_054,
                format!(
                    "response_type '{other}' is not enabled for the application; dev-idp supports 'code' and 'token'."
                ),
            ));
        }
    };
    let scope = params
        .get("scope")
        .ok_or_else(|| OAuthError::missing("scope"))?;
    let requested = scopes::delegated(idp.config(), scope)?;
    // PKCE protects a code; the implicit flow has none.
    let code_challenge = match implicit {
        true => None,
        false => pkce_challenge(client, params)?,
    };
    let claims = match params.get("claims") {
        None => ClaimsRequest::default(),
        Some(json) => ClaimsRequest::parse(json)
            .map_err(|message| OAuthError::new("invalid_request", 90_100, message))?,
    };

    let hint = params.get("login_hint");
    let user = hint
        .and_then(|h| idp.config().user(h))
        .filter(|u| tenant.admits(&u.tenant));
    let Some(user) = user else {
        if params.get("prompt") == Some("none") {
            return Err(OAuthError::new(
                "login_required",
                50058,
                "A silent sign-in request was sent but no user is signed in.",
            ));
        }
        let notice = match hint {
            Some(h) => Some(format!("No user '{h}' can sign in here; pick one below.")),
            None if !claims.acrs.is_empty() => Some(format!(
                "Step-up: signing in satisfies authentication context {} (asked for by the claims parameter).",
                claims.acrs.join(", ")
            )),
            None => None,
        };
        return Ok(sign_in_page(idp, tenant, client, params, notice.as_deref()));
    };
    if implicit {
        let home = idp
            .config()
            .tenant(&user.tenant)
            .expect("config checked user tenants");
        let grant = Grant {
            user: Some(user),
            client,
            api: requested.api,
            tenant: home,
            scopes: requested.scopes.clone(),
            client_auth: "0",
            requested: claims,
            implicit: true,
        };
        let shape = idp.shape_now(requested.api);
        let token = idp
            .sign(&grant, &shape)
            .map_err(super::token::server_error)?;
        tracing::info!(user = %user.name, client = %client.name, "issued an access token (implicit flow)");
        let mut out = format!(
            "access_token={}&token_type=Bearer&expires_in={}&scope={}",
            encode(&token),
            shape.exp - shape.iat,
            encode(&requested.response_scope())
        );
        if let Some(state) = reply.state {
            out.push_str("&state=");
            out.push_str(&encode(state));
        }
        return Ok(respond(reply, &out));
    }
    let pending = PendingCode {
        client_id: client.client_id.clone(),
        redirect_uri: reply.redirect_uri.clone(),
        code_challenge,
        user_oid: user.object_id.clone(),
        api: requested.api.name.clone(),
        scopes: requested.scopes.clone(),
        offline_access: requested.offline_access,
        openid: requested.openid,
        nonce: params.get("nonce").map(str::to_owned),
        requested: claims,
        expires_at: unix(SystemTime::now()) + idp.config().auth_code_lifetime.as_secs(),
    };
    let code = idp.sessions.issue_code(pending, unix(SystemTime::now()));
    tracing::info!(user = %user.name, client = %client.name, "issued an authorization code");
    let mut out = format!("code={}", encode(&code));
    if let Some(state) = reply.state {
        out.push_str("&state=");
        out.push_str(&encode(state));
    }
    Ok(respond(reply, &out))
}

/// RFC 7636: public clients must send an S256 challenge (Entra requires PKCE
/// for SPAs); anyone sending one must use S256 (`plain` protects nothing).
fn pkce_challenge(client: &App, params: &Params) -> Result<Option<String>, OAuthError> {
    let Some(challenge) = params.get("code_challenge") else {
        if client.public_client {
            return Err(OAuthError::new(
                "invalid_request",
                9_002_325,
                "Proof Key for Code Exchange is required for cross-origin authorization code redemption.",
            ));
        }
        return Ok(None);
    };
    if params.get("code_challenge_method") != Some("S256") {
        return Err(OAuthError::new(
            "invalid_request",
            50_142,
            "The code_challenge_method must be 'S256'; dev-idp does not accept 'plain'.",
        ));
    }
    // BASE64URL(SHA-256) without padding is exactly 43 characters.
    let well_formed = challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !well_formed {
        return Err(OAuthError::new(
            "invalid_request",
            50_142,
            "The code_challenge is not a base64url-encoded SHA-256 hash.",
        ));
    }
    Ok(Some(challenge.to_owned()))
}

fn sign_in_page(
    idp: &Idp,
    tenant: &TenantPath<'_>,
    client: &App,
    params: &Params,
    notice: Option<&str>,
) -> Response {
    let users: Vec<UserChoice> = idp
        .config()
        .users
        .iter()
        .filter(|u| tenant.admits(&u.tenant))
        .map(|u: &User| UserChoice {
            name: u.display_name.clone(),
            username: u.preferred_username.clone(),
            tenant: idp
                .config()
                .tenant(&u.tenant)
                .map_or_else(|| u.tenant.clone(), |t| t.display_name.clone()),
            href: format!(
                "?{}",
                params.to_query_with("login_hint", &u.preferred_username)
            ),
        })
        .collect();
    let page = html::sign_in_page(&client.name, &tenant_label(tenant), notice, &users);
    warp::reply::html(page).into_response()
}

/// Sends `params` (already encoded) back per the response mode.
fn respond(reply: &Callback<'_>, params: &str) -> Response {
    let location = match reply.mode {
        "fragment" => format!("{}#{params}", reply.redirect_uri),
        "form_post" => {
            let fields: Vec<(&str, String)> = Params::parse(params)
                .map(|p| {
                    [
                        "code",
                        "access_token",
                        "token_type",
                        "expires_in",
                        "scope",
                        "state",
                        "error",
                        "error_description",
                    ]
                    .into_iter()
                    .filter_map(|k| p.get(k).map(|v| (k, v.to_owned())))
                    .collect()
                })
                .unwrap_or_default();
            return warp::reply::html(html::form_post_page(&reply.redirect_uri, &fields))
                .into_response();
        }
        _ => {
            let sep = if reply.redirect_uri.contains('?') {
                '&'
            } else {
                '?'
            };
            format!("{}{sep}{params}", reply.redirect_uri)
        }
    };
    warp::reply::with_header(
        warp::reply::with_status(warp::reply(), StatusCode::FOUND),
        warp::http::header::LOCATION,
        location,
    )
    .into_response()
}

fn tenant_label(tenant: &TenantPath<'_>) -> String {
    match tenant {
        TenantPath::One(t) => t.display_name.clone(),
        TenantPath::Any(alias) => (*alias).to_owned(),
    }
}
