//! OpenID Connect discovery documents (v1 and v2) and the JWKS, in Entra's
//! layout and with the fields Entra publishes for the endpoints we serve.
//!
//! For `common` and `organizations` the issuer is a template containing the
//! literal text `{tenantid}`, as Entra's: a multi-tenant API substitutes the
//! token's `tid` and compares. Keys are shared by all tenants and versions.
//!
//! Fields Entra publishes for endpoints dev-idp does not serve (userinfo,
//! device code, logout, kerberos) are left out rather than pointing nowhere;
//! `code_challenge_methods_supported` and `grant_types_supported` (RFC 8414)
//! are added, which Entra omits, so generic OIDC clients switch PKCE on.

use serde_json::{Value, json};
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::Idp;

use super::tenant::TenantPath;

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`.
pub(crate) fn v2_document(idp: &Idp, tenant: &str) -> Response {
    match TenantPath::resolve(idp.config(), tenant) {
        Ok(t) => json_ok(&v2_json(idp, &t)),
        Err(e) => e.to_json_response(),
    }
}

/// `GET /{tenant}/.well-known/openid-configuration`.
pub(crate) fn v1_document(idp: &Idp, tenant: &str) -> Response {
    match TenantPath::resolve(idp.config(), tenant) {
        Ok(t) => json_ok(&v1_json(idp, &t)),
        Err(e) => e.to_json_response(),
    }
}

/// `GET /{tenant}/discovery/v2.0/keys`. As Entra's, each v2 key carries an
/// `issuer`, the `{tenantid}` template whatever the tenant segment (the keys
/// are shared by every tenant): a gateway validating the signing key's issuer
/// fills in the token's `tid`. v1 key sets carry none.
pub(crate) fn v2_keys(idp: &Idp, tenant: &str) -> Response {
    match TenantPath::resolve(idp.config(), tenant) {
        Ok(_) => jwks(idp, Some(&idp.issuer_v2("{tenantid}"))),
        Err(e) => e.to_json_response(),
    }
}

/// `GET /{tenant}/discovery/keys`.
pub(crate) fn v1_keys(idp: &Idp, tenant: &str) -> Response {
    match TenantPath::resolve(idp.config(), tenant) {
        Ok(_) => jwks(idp, None),
        Err(e) => e.to_json_response(),
    }
}

fn jwks(idp: &Idp, issuer: Option<&str>) -> Response {
    match idp.jwks(issuer) {
        Ok(doc) => json_ok(&doc),
        Err(e) => {
            tracing::error!(error = %e, "cannot read the signing keys");
            warp::reply::with_status(
                warp::reply::json(&json!({"error": "server_error"})),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .into_response()
        }
    }
}

fn json_ok(value: &Value) -> Response {
    warp::reply::json(value).into_response()
}

fn v2_json(idp: &Idp, t: &TenantPath<'_>) -> Value {
    let base = idp.base_url();
    let seg = t.segment();
    json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/v2.0/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/{seg}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": idp.issuer_v2(t.issuer_tid()),
        "request_uri_parameter_supported": false,
        "authorization_endpoint": format!("{base}/{seg}/oauth2/v2.0/authorize"),
        "http_logout_supported": false,
        "frontchannel_logout_supported": false,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "nonce",
            "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"
        ],
        "tenant_region_scope": "DEV",
        "cloud_instance_name": "dev-idp",
        "code_challenge_methods_supported": ["S256"],
        "grant_types_supported": ["authorization_code", "client_credentials", "refresh_token"],
    })
}

fn v1_json(idp: &Idp, t: &TenantPath<'_>) -> Value {
    let base = idp.base_url();
    let seg = t.segment();
    json!({
        "token_endpoint": format!("{base}/{seg}/oauth2/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
        "jwks_uri": format!("{base}/{seg}/discovery/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "token"],
        "scopes_supported": ["openid"],
        "issuer": idp.issuer_v1(t.issuer_tid()),
        "microsoft_multi_refresh_token": true,
        "authorization_endpoint": format!("{base}/{seg}/oauth2/authorize"),
        "http_logout_supported": false,
        "frontchannel_logout_supported": false,
        "claims_supported": [
            "sub", "iss", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce",
            "email", "given_name", "family_name", "nickname"
        ],
        "tenant_region_scope": "DEV",
        "cloud_instance_name": "dev-idp",
    })
}
