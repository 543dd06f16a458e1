//! Access-token claims as Entra issues them, v1 and v2, delegated and app-only.
//!
//! One function, [`access_token_claims`], decides every claim; the minter and
//! the token endpoint both go through it, so a CLI token and a browser token
//! for the same user are shaped alike. Reference: Microsoft identity platform,
//! "Access token claims reference".

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use serde_json::{Map, Value, json};

use crate::claims_request::ClaimsRequest;
use crate::config::{App, MAX_IMPLICIT_TOKEN_GROUPS, MAX_TOKEN_GROUPS, Tenant, TokenVersion, User};

/// Who a token is for, resolved against the configuration.
#[derive(Debug, Clone)]
pub(crate) struct Grant<'a> {
    /// The signed-in user; `None` for an app-only (client credentials) token.
    pub user: Option<&'a User>,
    /// The client app that asked (`azp` / `appid`).
    pub client: &'a App,
    /// The API app the token is for; must expose an API.
    pub api: &'a App,
    /// The tenant that issues the token (`tid`).
    pub tenant: &'a Tenant,
    /// Delegated scopes, short names; empty for app-only tokens.
    pub scopes: Vec<String>,
    /// How the client authenticated: `"0"` public, `"1"` secret, `"2"`
    /// certificate (`azpacr`).
    pub client_auth: &'static str,
    /// What the sign-in's `claims` parameter asked for: `acrs` (step-up)
    /// and `xms_cc` (client capabilities). User tokens only.
    pub requested: ClaimsRequest,
    /// Issued by the implicit flow (`response_type=token`): in a URL
    /// fragment, so the groups limit is [`MAX_IMPLICIT_TOKEN_GROUPS`].
    pub implicit: bool,
}

/// Time and shape of one token; test-only shapes are named as such in
/// [`crate::MintRequest`].
#[derive(Debug, Clone)]
pub(crate) struct Shape {
    /// Issued-at, seconds since the epoch.
    pub iat: u64,
    /// Not-before.
    pub nbf: u64,
    /// Expiry.
    pub exp: u64,
    /// Token format.
    pub version: TokenVersion,
    /// Replaces `aud` (negative tests).
    pub audience: Option<String>,
    /// Replaces `iss` (negative tests).
    pub issuer: Option<String>,
}

/// Builds the claim set. `base_url` / `sts_base_url` make the issuers.
pub(crate) fn access_token_claims(
    grant: &Grant<'_>,
    shape: &Shape,
    base_url: &str,
    sts_base_url: &str,
) -> Map<String, Value> {
    let api = grant.api.api.as_ref().expect("grant api exposes an api");
    let tid = &grant.tenant.id;
    let mut c = Map::new();
    let (aud, iss) = match shape.version {
        TokenVersion::V2 => (
            grant.api.client_id.clone(),
            format!("{base_url}/{tid}/v2.0"),
        ),
        TokenVersion::V1 => (api.identifier_uri.clone(), format!("{sts_base_url}/{tid}/")),
    };
    c.insert("aud".into(), json!(shape.audience.clone().unwrap_or(aud)));
    c.insert("iss".into(), json!(shape.issuer.clone().unwrap_or(iss)));
    c.insert("iat".into(), json!(shape.iat));
    c.insert("nbf".into(), json!(shape.nbf));
    c.insert("exp".into(), json!(shape.exp));
    c.insert("aio".into(), json!(random_b64(48)));
    match shape.version {
        TokenVersion::V2 => {
            c.insert("azp".into(), json!(grant.client.client_id));
            c.insert("azpacr".into(), json!(grant.client_auth));
        }
        TokenVersion::V1 => {
            c.insert("appid".into(), json!(grant.client.client_id));
            c.insert("appidacr".into(), json!(grant.client_auth));
        }
    }
    let roles: &[String] = match grant.user {
        Some(user) => user
            .app_roles
            .get(&grant.api.name)
            .map_or(&[], Vec::as_slice),
        None => grant
            .client
            .application_permissions
            .get(&grant.api.name)
            .map_or(&[], Vec::as_slice),
    };
    match grant.user {
        Some(user) => {
            if shape.version == TokenVersion::V1 {
                c.insert("acr".into(), json!("1"));
                c.insert("amr".into(), json!(["pwd"]));
            }
            c.insert("name".into(), json!(user.display_name));
            c.insert("oid".into(), json!(user.object_id));
            match shape.version {
                TokenVersion::V2 => {
                    c.insert("preferred_username".into(), json!(user.preferred_username));
                }
                TokenVersion::V1 => {
                    c.insert("upn".into(), json!(user.preferred_username));
                    c.insert("unique_name".into(), json!(user.preferred_username));
                }
            }
            c.insert("scp".into(), json!(grant.scopes.join(" ")));
            // Entra adds `acrs` once the sign-in satisfied the
            // authentication contexts asked for, and `xms_cc` when the
            // client declared capabilities; neither otherwise.
            if !grant.requested.acrs.is_empty() {
                c.insert("acrs".into(), json!(grant.requested.acrs));
            }
            if !grant.requested.client_capabilities.is_empty() {
                c.insert("xms_cc".into(), json!(grant.requested.client_capabilities));
            }
            c.insert(
                "sub".into(),
                json!(pairwise_sub(tid, &user.object_id, &grant.client.client_id)),
            );
            // With `group_membership_claims`, as Entra: `groups` up to 200
            // ids, above that the overage marker pointing at the (retired)
            // Azure AD Graph, which nobody should call; in a token of the
            // implicit flow, from 6 ids on `hasgroups: true` instead.
            if api.groups_claim && !user.groups.is_empty() {
                if grant.implicit && user.groups.len() > MAX_IMPLICIT_TOKEN_GROUPS {
                    c.insert("hasgroups".into(), json!(true));
                } else if user.groups.len() > MAX_TOKEN_GROUPS {
                    c.insert("_claim_names".into(), json!({"groups": "src1"}));
                    c.insert(
                        "_claim_sources".into(),
                        json!({"src1": {"endpoint": format!(
                            "https://graph.windows.net/{tid}/users/{}/getMemberObjects",
                            user.object_id
                        )}}),
                    );
                } else {
                    c.insert("groups".into(), json!(user.groups));
                }
            }
        }
        None => {
            let oid = service_principal_oid(tid, &grant.client.client_id);
            c.insert("idtyp".into(), json!("app"));
            c.insert("sub".into(), json!(oid));
            c.insert("oid".into(), json!(oid));
        }
    }
    c.insert("rh".into(), json!(format!("0.{}.", random_b64url(60))));
    if !roles.is_empty() {
        c.insert("roles".into(), json!(roles));
    }
    c.insert("tid".into(), json!(tid));
    c.insert("uti".into(), json!(random_b64url(16)));
    c.insert(
        "ver".into(),
        json!(match shape.version {
            TokenVersion::V1 => "1.0",
            TokenVersion::V2 => "2.0",
        }),
    );
    c
}

/// ID-token claims (OpenID Connect Core §2, Entra's v2 ID token): for the
/// client, not the API — `aud` is the client id, and there is no `scp`.
pub(crate) fn id_token_claims(
    user: &User,
    client: &App,
    tenant: &Tenant,
    nonce: Option<&str>,
    shape: &Shape,
    base_url: &str,
) -> Map<String, Value> {
    let tid = &tenant.id;
    let mut c = Map::new();
    c.insert("aud".into(), json!(client.client_id));
    c.insert("iss".into(), json!(format!("{base_url}/{tid}/v2.0")));
    c.insert("iat".into(), json!(shape.iat));
    c.insert("nbf".into(), json!(shape.nbf));
    c.insert("exp".into(), json!(shape.exp));
    c.insert("aio".into(), json!(random_b64(48)));
    c.insert("name".into(), json!(user.display_name));
    if let Some(nonce) = nonce {
        c.insert("nonce".into(), json!(nonce));
    }
    c.insert("oid".into(), json!(user.object_id));
    c.insert("preferred_username".into(), json!(user.preferred_username));
    c.insert("rh".into(), json!(format!("0.{}.", random_b64url(60))));
    c.insert(
        "sub".into(),
        json!(pairwise_sub(tid, &user.object_id, &client.client_id)),
    );
    c.insert("tid".into(), json!(tid));
    c.insert("uti".into(), json!(random_b64url(16)));
    c.insert("ver".into(), json!("2.0"));
    c
}

/// `sub` is pairwise: the same user gets a different, stable value in each
/// client app, so apps cannot correlate users through it (key users on
/// `tid` + `oid` instead). 43 base64url characters, like Entra's.
pub(crate) fn pairwise_sub(tid: &str, oid: &str, client_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("sub|{tid}|{oid}|{client_id}").as_bytes(),
    );
    URL_SAFE_NO_PAD.encode(digest.as_ref())
}

/// The object id of an app's service principal in a tenant: app-only tokens
/// carry it as `oid` (and `sub`). Derived, so it is stable without config.
pub(crate) fn service_principal_oid(tid: &str, client_id: &str) -> String {
    let digest = aws_lc_rs::digest::digest(
        &aws_lc_rs::digest::SHA256,
        format!("sp|{tid}|{client_id}").as_bytes(),
    );
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

/// Random opaque values (`aio`, `uti`, `rh`, codes): meaningless to clients.
pub(crate) fn random_b64url(len: usize) -> String {
    URL_SAFE_NO_PAD.encode(random_bytes(len))
}

fn random_b64(len: usize) -> String {
    STANDARD_NO_PAD.encode(random_bytes(len))
}

fn random_bytes(len: usize) -> Vec<u8> {
    let mut bytes = vec![0u8; len];
    aws_lc_rs::rand::fill(&mut bytes).expect("system random source works");
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sub_is_pairwise_per_client_and_stable() {
        let a = pairwise_sub("t", "o", "client-a");
        assert_eq!(a, pairwise_sub("t", "o", "client-a"));
        assert_ne!(a, pairwise_sub("t", "o", "client-b"));
        assert_eq!(a.len(), 43);
    }

    #[test]
    fn service_principal_oid_is_a_stable_guid() {
        let oid = service_principal_oid("t", "c");
        assert_eq!(oid, service_principal_oid("t", "c"));
        assert!(uuid::Uuid::parse_str(&oid).is_ok());
    }
}
