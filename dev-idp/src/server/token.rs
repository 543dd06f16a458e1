//! `POST /{tenant}/oauth2/v2.0/token`: the authorization-code (with PKCE),
//! client-credentials and refresh-token grants (RFC 6749 §4.1.3, §4.4, §6;
//! RFC 7636 §4.5–4.6). Errors are RFC 6749 §5.2 JSON with Entra's AADSTS codes.

use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::Idp;
use crate::claims::Grant;
use crate::claims_request::ClaimsRequest;
use crate::config::{App, User};
use crate::keys::unix;
use crate::sessions::{Redemption, RefreshGrant};

use super::oauth_error::OAuthError;
use super::params::Params;
use super::scopes;
use super::tenant::TenantPath;

/// An authenticated client and how it authenticated (`"0"` public, `"1"`
/// secret, `"2"` certificate: the `azpacr` / `appidacr` claim).
type Client<'a> = (&'a App, &'static str);

/// Handles one token request.
pub(crate) fn token(idp: &Idp, tenant: &str, body: &[u8], authorization: Option<&str>) -> Response {
    let segment = tenant;
    let result = (|| {
        let tenant = TenantPath::resolve(idp.config(), tenant)?;
        let body = std::str::from_utf8(body).map_err(|_| {
            OAuthError::new("invalid_request", 900_144, "The request body is not UTF-8.")
        })?;
        let mut params = Params::parse(body).map_err(|name| {
            OAuthError::new(
                "invalid_request",
                900_144,
                format!("The parameter '{name}' is repeated."),
            )
        })?;
        // v1 clients (`/oauth2/token`) name the API with `resource`.
        if params.get("scope").is_none()
            && let Some(resource) = params.get("resource").map(str::to_owned)
        {
            params.set("scope", format!("{resource}/.default"));
        }
        let grant_type = params
            .get("grant_type")
            .ok_or_else(|| OAuthError::missing("grant_type"))?;
        if !matches!(
            grant_type,
            "authorization_code" | "client_credentials" | "refresh_token"
        ) {
            return Err(OAuthError::new(
                "unsupported_grant_type",
                70003,
                format!("The app requested an unsupported grant type '{grant_type}'."),
            ));
        }
        let audiences = token_endpoints(idp, segment, &tenant);
        let client = authenticate(idp, &params, authorization, &audiences)?;
        match grant_type {
            "authorization_code" => authorization_code(idp, client, &params),
            "client_credentials" => client_credentials(idp, &tenant, client, &params),
            _ => refresh_token(idp, client, &params),
        }
    })();
    let mut response = match result {
        Ok(body) => warp::reply::json(&body).into_response(),
        Err(e) => {
            tracing::info!(error = e.error, code = e.aadsts, "token request refused");
            e.to_json_response()
        }
    };
    // RFC 6749 §5.1: token responses must not be cached.
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    response
}

/// Client authentication (RFC 6749 §2.3.1): HTTP Basic or `client_secret` in
/// the body, never both. Confidential clients must present their secret;
/// public clients must not present one.
fn authenticate<'a>(
    idp: &'a Idp,
    params: &Params,
    authorization: Option<&str>,
    audiences: &[String],
) -> Result<Client<'a>, OAuthError> {
    if let Some(assertion) = params.get("client_assertion") {
        if authorization.is_some() || params.get("client_secret").is_some() {
            return Err(OAuthError::new(
                "invalid_request",
                900_144,
                "The client used more than one authentication method.",
            ));
        }
        let client = known_client(idp, params.get("client_id"))?;
        return client_assertion(idp, client, params, assertion, audiences).map(|()| (client, "2"));
    }
    let basic = authorization
        .and_then(|h| h.strip_prefix("Basic "))
        .map(decode_basic)
        .transpose()?;
    let (client_id, secret) = match (&basic, params.get("client_secret")) {
        (Some(_), Some(_)) => {
            return Err(OAuthError::new(
                "invalid_request",
                900_144,
                "The client used more than one authentication method.",
            ));
        }
        (Some((id, secret)), None) => (Some(id.as_str()), Some(secret.as_str())),
        (None, secret) => (params.get("client_id"), secret),
    };
    let client = known_client(idp, client_id)?;
    match (&client.secret, secret) {
        (Some(expected), Some(given)) => {
            if aws_lc_rs::constant_time::verify_slices_are_equal(expected.as_bytes(), given.as_bytes()).is_ok() {
                Ok((client, "1"))
            } else {
                Err(OAuthError::new(
                    "invalid_client",
                    7_000_215,
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.",
                )
                .with_status(StatusCode::UNAUTHORIZED))
            }
        }
        (Some(_), None) => Err(OAuthError::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
        .with_status(StatusCode::UNAUTHORIZED)),
        (None, Some(_)) => Err(OAuthError::new(
            "invalid_client",
            700_025,
            "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
        )
        .with_status(StatusCode::UNAUTHORIZED)),
        (None, None) => Ok((client, "0")),
    }
}

fn known_client<'a>(idp: &'a Idp, client_id: Option<&str>) -> Result<&'a App, OAuthError> {
    let client_id = client_id.ok_or_else(|| OAuthError::missing("client_id"))?;
    idp.config().app(client_id).ok_or_else(|| {
        OAuthError::new(
            "invalid_client",
            700_016,
            format!("Application with identifier '{client_id}' was not found in the directory."),
        )
        .with_status(StatusCode::UNAUTHORIZED)
    })
}

/// The URLs a client assertion's `aud` may name: this token endpoint (v2 or
/// v1), under the tenant as the request names it or by its id.
fn token_endpoints(idp: &Idp, segment: &str, tenant: &TenantPath<'_>) -> Vec<String> {
    let mut tenants = vec![segment.to_owned()];
    if let TenantPath::One(t) = tenant {
        tenants.push(t.id.clone());
    }
    tenants
        .iter()
        .flat_map(|t| {
            [
                format!("{}/{t}/oauth2/v2.0/token", idp.base_url()),
                format!("{}/{t}/oauth2/token", idp.base_url()),
            ]
        })
        .collect()
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// A certificate credential (Entra's "client assertion", RFC 7523 §2.2): an
/// RS256 JWT signed with the key of a certificate registered on the app,
/// found by its `x5t#S256` (or `x5t`) header, whose `aud` is this token
/// endpoint, `iss` and `sub` the client id, within `nbf`..`exp`. Refusals
/// carry Entra's AADSTS codes.
fn client_assertion(
    idp: &Idp,
    client: &App,
    params: &Params,
    assertion: &str,
    audiences: &[String],
) -> Result<(), OAuthError> {
    let refuse = |code: u32, message: String| {
        Err(OAuthError::new("invalid_client", code, message).with_status(StatusCode::UNAUTHORIZED))
    };
    if params.get("client_assertion_type") != Some(JWT_BEARER) {
        return Err(OAuthError::new(
            "invalid_request",
            900_144,
            format!(
                "The request body must contain the following parameter: 'client_assertion_type' = '{JWT_BEARER}'."
            ),
        ));
    }
    let Ok(header) = jsonwebtoken::decode_header(assertion) else {
        return refuse(50_027, "JWT token is invalid or malformed.".to_owned());
    };
    let thumbprint = header.x5t_s256.clone().or_else(|| header.x5t.clone());
    let Some(thumbprint) = thumbprint else {
        return refuse(
            700_027,
            "Client assertion contains an invalid signature. [Reason - The key used is not registered: the header has neither 'x5t#S256' nor 'x5t'.]".to_owned(),
        );
    };
    let registered = idp
        .client_certificate(&client.client_id)
        .filter(|c| c.x5t_s256 == thumbprint || c.x5t == thumbprint);
    let Some(certificate) = registered else {
        return refuse(
            700_027,
            format!(
                "The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"
            ),
        );
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.leeway = 0;
    validation.validate_nbf = true;
    validation.validate_aud = false;
    validation.set_required_spec_claims(&["exp", "aud", "iss", "sub"]);
    let claims = match jsonwebtoken::decode::<Value>(assertion, &certificate.decoding, &validation)
    {
        Ok(data) => data.claims,
        Err(e) => {
            use jsonwebtoken::errors::ErrorKind;
            return match e.kind() {
                ErrorKind::ExpiredSignature | ErrorKind::ImmatureSignature => refuse(
                    700_024,
                    "Client assertion is not within its valid time range.".to_owned(),
                ),
                ErrorKind::InvalidSignature | ErrorKind::InvalidAlgorithm => refuse(
                    700_027,
                    "Client assertion failed signature validation.".to_owned(),
                ),
                _ => refuse(50_027, format!("JWT token is invalid or malformed ({e}).")),
            };
        }
    };
    let aud = claims["aud"].as_str().unwrap_or_default();
    if !audiences.iter().any(|a| a == aud) {
        return refuse(
            700_023,
            format!(
                "Client assertion audience claim does not match Realm issuer: '{aud}' is not this token endpoint ({}).",
                audiences[0]
            ),
        );
    }
    for claim in ["iss", "sub"] {
        if claims[claim].as_str() != Some(client.client_id.as_str()) {
            return refuse(
                700_021,
                format!(
                    "Client assertion application identifier doesn't match 'client_id' parameter: '{claim}' must be {}.",
                    client.client_id
                ),
            );
        }
    }
    Ok(())
}

/// `Basic base64(urlencode(id):urlencode(secret))`.
fn decode_basic(encoded: &str) -> Result<(String, String), OAuthError> {
    let bad = || {
        OAuthError::new(
            "invalid_client",
            7_000_215,
            "The Basic authorization header is malformed.",
        )
        .with_status(StatusCode::UNAUTHORIZED)
    };
    let bytes = STANDARD.decode(encoded.trim()).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (id, secret) = text.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(&s.replace('+', " "))
            .decode_utf8_lossy()
            .into_owned()
    };
    Ok((decode(id), decode(secret)))
}

fn authorization_code(
    idp: &Idp,
    (client, auth): Client<'_>,
    params: &Params,
) -> Result<Value, OAuthError> {
    let code = params
        .get("code")
        .ok_or_else(|| OAuthError::missing("code"))?;
    let pending = match idp.sessions.redeem_code(code, unix(SystemTime::now())) {
        Redemption::Valid(p) => *p,
        Redemption::AlreadyRedeemed => {
            return Err(invalid_grant(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token.",
            ));
        }
        Redemption::Expired => {
            return Err(invalid_grant(
                70008,
                "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
            ));
        }
        Redemption::Unknown => {
            return Err(invalid_grant(
                70000,
                "The provided authorization code is invalid.",
            ));
        }
    };
    if pending.client_id != client.client_id {
        return Err(invalid_grant(
            70000,
            "The authorization code was issued to another client.",
        ));
    }
    let redirect_uri = params
        .get("redirect_uri")
        .ok_or_else(|| OAuthError::missing("redirect_uri"))?;
    if redirect_uri != pending.redirect_uri {
        return Err(invalid_grant(
            50011,
            format!(
                "The redirect URI '{redirect_uri}' specified in the request does not match the redirect URI used to obtain the authorization code."
            ),
        ));
    }
    if let Some(challenge) = &pending.code_challenge {
        let verifier = params.get("code_verifier").unwrap_or_default();
        if !pkce_matches(verifier, challenge) {
            return Err(invalid_grant(
                501_481,
                "The Code_Verifier does not match the code_challenge supplied in the authorization request.",
            ));
        }
    }
    let user = known_user(idp, &pending.user_oid)?;
    let api = idp
        .config()
        .app(&pending.api)
        .ok_or_else(|| invalid_grant(70000, "The API no longer exists."))?;
    let delegated = scopes::Delegated {
        api,
        scopes: pending.scopes,
        offline_access: pending.offline_access,
        openid: pending.openid,
    };
    delegated_response(
        idp,
        user,
        client,
        auth,
        &delegated,
        pending.nonce.as_deref(),
        &pending.requested,
    )
}

/// RFC 7636 §4.6: BASE64URL(SHA256(ASCII(code_verifier))) == code_challenge,
/// with the verifier 43–128 unreserved characters (§4.1).
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, verifier.as_bytes());
    well_formed && URL_SAFE_NO_PAD.encode(digest.as_ref()) == challenge
}

fn client_credentials(
    idp: &Idp,
    tenant: &TenantPath<'_>,
    (client, auth): Client<'_>,
    params: &Params,
) -> Result<Value, OAuthError> {
    if auth == "0" {
        return Err(OAuthError::new(
            "invalid_client",
            7_000_218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
        )
        .with_status(StatusCode::UNAUTHORIZED));
    }
    let TenantPath::One(tenant) = tenant else {
        return Err(OAuthError::new(
            "invalid_request",
            90009,
            format!(
                "The client credentials grant needs a tenant-specific endpoint, not '{}'.",
                tenant.segment()
            ),
        ));
    };
    let scope = params
        .get("scope")
        .ok_or_else(|| OAuthError::missing("scope"))?;
    let api = scopes::app_only(idp.config(), scope)?;
    let grant = Grant {
        user: None,
        client,
        api,
        tenant,
        scopes: Vec::new(),
        client_auth: auth,
        requested: ClaimsRequest::default(),
        implicit: false,
    };
    let shape = idp.shape_now(api);
    let access_token = idp.sign(&grant, &shape).map_err(server_error)?;
    let lifetime = shape.exp - shape.iat;
    tracing::info!(client = %client.name, "issued an app-only token");
    Ok(json!({
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }))
}

fn refresh_token(
    idp: &Idp,
    (client, auth): Client<'_>,
    params: &Params,
) -> Result<Value, OAuthError> {
    let token = params
        .get("refresh_token")
        .ok_or_else(|| OAuthError::missing("refresh_token"))?;
    let grant = idp.sessions.refresh_grant(token).ok_or_else(|| {
        invalid_grant(
            9_002_313,
            "Invalid request. The refresh token is malformed or not valid.",
        )
    })?;
    if grant.client_id != client.client_id {
        return Err(invalid_grant(
            70000,
            "The refresh token was issued to a different client.",
        ));
    }
    let user = known_user(idp, &grant.user_oid)?;
    let api = idp
        .config()
        .app(&grant.api)
        .ok_or_else(|| invalid_grant(70000, "The API no longer exists."))?;
    let mut delegated = scopes::Delegated {
        api,
        scopes: grant.scopes.clone(),
        offline_access: true,
        openid: grant.openid,
    };
    if let Some(scope) = params.get("scope") {
        let asked = scopes::delegated(idp.config(), scope)?;
        let within =
            asked.api.name == grant.api && asked.scopes.iter().all(|s| grant.scopes.contains(s));
        if !within {
            return Err(OAuthError::new(
                "invalid_scope",
                70011,
                format!("The refresh token does not grant the scope '{scope}'."),
            ));
        }
        delegated.scopes = asked.scopes;
    }
    delegated_response(idp, user, client, auth, &delegated, None, &grant.requested)
}

/// The token response of a delegated grant; a refresh token when
/// `offline_access` was granted, an ID token when `openid` was. `requested`
/// is the sign-in's `claims` parameter (`acrs`, `xms_cc`).
fn delegated_response(
    idp: &Idp,
    user: &User,
    client: &App,
    auth: &'static str,
    delegated: &scopes::Delegated<'_>,
    nonce: Option<&str>,
    requested: &ClaimsRequest,
) -> Result<Value, OAuthError> {
    let tenant = idp
        .config()
        .tenant(&user.tenant)
        .expect("config checked user tenants");
    let grant = Grant {
        user: Some(user),
        client,
        api: delegated.api,
        tenant,
        scopes: delegated.scopes.clone(),
        client_auth: auth,
        requested: requested.clone(),
        implicit: false,
    };
    let shape = idp.shape_now(delegated.api);
    let access_token = idp.sign(&grant, &shape).map_err(server_error)?;
    let lifetime = shape.exp - shape.iat;
    let mut body = json!({
        "token_type": "Bearer",
        "scope": delegated.response_scope(),
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    });
    if delegated.offline_access {
        body["refresh_token"] = json!(idp.sessions.issue_refresh_token(RefreshGrant {
            client_id: client.client_id.clone(),
            user_oid: user.object_id.clone(),
            api: delegated.api.name.clone(),
            scopes: delegated.scopes.clone(),
            openid: delegated.openid,
            requested: requested.clone(),
        }));
    }
    if delegated.openid {
        let id_token = idp
            .sign_id_token(user, client, tenant, nonce)
            .map_err(server_error)?;
        body["id_token"] = json!(id_token);
    }
    tracing::info!(user = %user.name, client = %client.name, "issued a delegated token");
    Ok(body)
}

fn known_user<'a>(idp: &'a Idp, oid: &str) -> Result<&'a User, OAuthError> {
    idp.config()
        .user(oid)
        .ok_or_else(|| invalid_grant(50034, "The user account does not exist."))
}

fn invalid_grant(aadsts: u32, description: impl Into<String>) -> OAuthError {
    OAuthError::new("invalid_grant", aadsts, description)
}

pub(super) fn server_error(e: crate::Error) -> OAuthError {
    tracing::error!(error = %e, "cannot sign a token");
    OAuthError::new("server_error", 50000, "There was an error issuing a token.")
        .with_status(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example_verifies() {
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            challenge
        ));
        assert!(!pkce_matches(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj",
            challenge
        ));
        assert!(!pkce_matches("short", challenge));
    }
}
