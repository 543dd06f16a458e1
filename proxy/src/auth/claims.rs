//! Checking an Entra access token's claims (RFC 7519 §4.1) into an
//! [`Identity`], after the signature verified.
//!
//! Entra-specific rules live here: the exact v1/v2 issuer for the token's own
//! `tid`, the tenant allow-list, `scp` as one space-separated string and
//! `roles` as an array, app-only tokens. No IO and no state; every wrongly
//! typed claim is refused, never coerced.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::AuthError;
use crate::identity::{Identity, PrincipalKind};

/// Which tenants may issue tokens, compiled from the settings.
#[derive(Debug, Clone)]
pub(crate) enum TenantRule {
    /// Exactly this tenant id (compared ASCII case-insensitively).
    One(String),
    /// Any of these tenant ids.
    List(Vec<String>),
    /// Every tenant, on purpose.
    Any,
}

impl TenantRule {
    fn allows(&self, tid: &str) -> bool {
        match self {
            TenantRule::One(t) => t.eq_ignore_ascii_case(tid),
            TenantRule::List(list) => list.iter().any(|t| t.eq_ignore_ascii_case(tid)),
            TenantRule::Any => true,
        }
    }
}

/// Everything the claim checks need, compiled once from the settings.
#[derive(Debug, Clone)]
pub(crate) struct ClaimRules {
    /// Accepted `aud` values on every route (any-of).
    pub audiences: Vec<String>,
    /// Accepted too, but only on the routes that name them: the union of the
    /// policy's route `audiences:`. A token for one of them passes here and
    /// is held to its route's list by the authorize stage.
    pub route_audiences: Arc<[String]>,
    /// v2 issuer base: `iss` = `{instance}/{tid}/v2.0`.
    pub instance: String,
    /// v1 issuer base: `iss` = `{sts}/{tid}/`.
    pub sts_instance: String,
    /// Allowed issuing tenants.
    pub tenants: TenantRule,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway: u64,
}

/// The claims we read, each kept as raw JSON so a wrong type is reported as
/// `invalid_claim` rather than coerced. `null` counts as present (and wrong).
/// A duplicated claim name makes the payload malformed (RFC 7519 §4 allows
/// rejecting it, and the two readers of a duplicated claim may disagree).
#[derive(Deserialize)]
struct RawClaims {
    #[serde(default, deserialize_with = "present")]
    iss: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    aud: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    exp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nbf: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tid: Option<Value>,
    /// `TID`, `Tid`, …: a tenant claim differing from `tid` only in case.
    /// Readers that match claim names case-insensitively would take it for
    /// the tenant, so a token carrying one is refused (as Microsoft.IdentityModel
    /// does); two such spellings at once are a duplicate, hence malformed.
    #[serde(
        default,
        deserialize_with = "present",
        rename = "TID",
        alias = "Tid",
        alias = "tId",
        alias = "tiD",
        alias = "TId",
        alias = "TiD",
        alias = "tID"
    )]
    tid_other_case: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    oid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    scp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    roles: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    idtyp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    preferred_username: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    upn: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    unique_name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    email: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    azp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    appid: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    nonce: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    acct: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    idp: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    acrs: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    xms_cc: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    groups: Option<Value>,
    /// The overage marker of JWTs: `{"groups": "src1"}` when the user is in
    /// more groups than the token holds (`_claim_sources` says where to ask,
    /// the retired Azure AD Graph: never called).
    #[serde(default, deserialize_with = "present", rename = "_claim_names")]
    claim_names: Option<Value>,
    /// The overage marker of implicit-flow tokens.
    #[serde(default, deserialize_with = "present")]
    hasgroups: Option<Value>,
}

/// Keeps `null` as `Some(Value::Null)` so it is not mistaken for absence.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The literal placeholder Entra writes where the tenant id goes in the
/// issuers of multi-tenant metadata and of its signing keys.
pub(crate) const TENANT_TEMPLATE: &str = "{tenantid}";

/// Who the key that verified a token was published for: Microsoft.IdentityModel's
/// signing-key issuer validation. Entra's keys are shared by every tenant, so
/// its JWKS names each key's `issuer` as the `{tenantid}` template; a key
/// published for one tenant names that tenant's issuer, and must not verify
/// another tenant's tokens.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct KeyIssuer<'a> {
    /// The key's `issuer` field in the JWKS; `None`: the key says nothing
    /// (v1 key sets), and any issuer checked by the claim rules may use it.
    pub key: Option<&'a str>,
    /// The discovery document's `issuer`, already checked to be an expected
    /// one: a v1 token (`https://sts.windows.net/{tid}/`) verified with a v2
    /// key passes because the key's issuer equals this one, filled the same way.
    pub discovery: Option<&'a str>,
}

impl KeyIssuer<'_> {
    /// The key's issuer with `{tenantid}` = `tid` equals `iss`, or equals the
    /// discovery issuer filled the same way. `iss` must contain `tid` in
    /// any case. Compares without building either string.
    fn allows(&self, iss: &str, tid: &str) -> bool {
        let Some(key) = self.key.filter(|k| !k.trim().is_empty()) else {
            return true;
        };
        if !iss.contains(tid) {
            return false;
        }
        if is_filled(key, tid, iss) {
            return true;
        }
        // The key's issuer and the discovery issuer, both filled with `tid`,
        // are equal. Equal templates fill equally; a concrete one is compared
        // piecewise; two different templates (rare) are filled for real.
        self.discovery.is_some_and(|discovery| {
            discovery == key
                || match (
                    discovery.contains(TENANT_TEMPLATE),
                    key.contains(TENANT_TEMPLATE),
                ) {
                    (false, _) => is_filled(key, tid, discovery),
                    (true, false) => is_filled(discovery, tid, key),
                    (true, true) => {
                        key.replace(TENANT_TEMPLATE, tid) == discovery.replace(TENANT_TEMPLATE, tid)
                    }
                }
        })
    }
}

/// Whether `value` is `template` with every `{tenantid}` replaced by `tid`.
fn is_filled(template: &str, tid: &str, value: &str) -> bool {
    let mut parts = template.split(TENANT_TEMPLATE);
    let Some(mut rest) = value.strip_prefix(parts.next().unwrap_or_default()) else {
        return false;
    };
    for part in parts {
        match rest.strip_prefix(tid).and_then(|r| r.strip_prefix(part)) {
            Some(r) => rest = r,
            None => return false,
        }
    }
    rest.is_empty()
}

/// A tenant id claim: a GUID in practice, never anything with `/` or `{`.
fn is_tenant_id(tid: &str) -> bool {
    !tid.is_empty()
        && tid.len() <= 64
        && tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

impl ClaimRules {
    /// Checks the (already signature-verified) payload and builds the identity.
    ///
    /// `now` is seconds since the epoch; `signer` says whom the verifying key
    /// was published for ([`KeyIssuer::default`] when no key is at hand, as
    /// offline). Order: lifetime, issuer and tenant, the key's issuer,
    /// audience, subject, permissions; `wids` and `scope` are never read, so
    /// they can grant nothing, and `groups` (with its overage markers) is
    /// kept apart for the `groups:` route condition alone.
    pub(crate) fn check(
        &self,
        payload_b64: &str,
        now: u64,
        signer: KeyIssuer<'_>,
    ) -> Result<Identity, AuthError> {
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::MalformedToken("the payload is not base64url"))?;
        // RFC 7519 §7.2: the claims set is a JSON object; serde would read
        // an array positionally.
        if !super::jws::is_json_object(&payload) {
            return Err(AuthError::MalformedToken(
                "the payload is not a JSON object of claims",
            ));
        }
        let claims: RawClaims = serde_json::from_slice(&payload)
            .map_err(|_| AuthError::MalformedToken("the payload is not a JSON object of claims"))?;

        // RFC 7519 §4.1.4 / §4.1.5, with leeway for clock skew.
        let exp = numeric_date(claims.exp, "exp")?.ok_or(AuthError::MissingClaim("exp"))?;
        if now >= exp.saturating_add(self.leeway) {
            return Err(AuthError::Expired);
        }
        if let Some(nbf) = numeric_date(claims.nbf, "nbf")?
            && nbf > now.saturating_add(self.leeway)
        {
            return Err(AuthError::NotYetValid);
        }

        // Entra's keys are shared by every tenant: only iss + tid say who
        // issued the token. iss must be exactly the v1 or v2 issuer for tid.
        let iss = string(claims.iss, "iss")?.ok_or(AuthError::MissingClaim("iss"))?;
        if claims.tid_other_case.is_some() {
            return Err(AuthError::InvalidClaim("tid"));
        }
        let tid = string(claims.tid, "tid")?.ok_or(AuthError::MissingClaim("tid"))?;
        if !is_tenant_id(&tid) {
            return Err(AuthError::InvalidClaim("tid"));
        }
        if !self.is_issuer_for(&iss, &tid) || !signer.allows(&iss, &tid) {
            return Err(AuthError::WrongIssuer);
        }
        if !self.tenants.allows(&tid) {
            return Err(AuthError::WrongTenant);
        }

        let (audiences, default_audience) = self.check_audience(claims.aud)?;

        let oid = string(claims.oid, "oid")?.ok_or(AuthError::MissingClaim("oid"))?;
        if oid.is_empty() {
            return Err(AuthError::InvalidClaim("oid"));
        }

        // An ID token is not an access token: it carries a `nonce` claim
        // (OpenID Connect Core §2), an access token for an API never does.
        if claims.nonce.is_some() {
            return Err(AuthError::InvalidClaim("nonce"));
        }

        let (kind, scopes, roles) = permissions(claims.scp, claims.roles, claims.idtyp)?;

        let name = string(claims.name, "name")?;
        let preferred_username = string(claims.preferred_username, "preferred_username")?;
        let upn = string(claims.upn, "upn")?;
        let unique_name = string(claims.unique_name, "unique_name")?;
        let email = string(claims.email, "email")?;
        let azp = string(claims.azp, "azp")?;
        let appid = string(claims.appid, "appid")?;
        let guest = is_guest(claims.acct, claims.idp, &iss)?;
        let auth_contexts = string_array(claims.acrs, "acrs")?;
        let capabilities = string_array(claims.xms_cc, "xms_cc")?;
        let (groups, groups_overage) = groups(claims.groups, claims.claim_names, claims.hasgroups)?;

        Ok(Identity {
            object_id: oid,
            tenant_id: tid,
            kind,
            roles,
            scopes,
            name,
            email: preferred_username.or(upn).or(unique_name).or(email),
            app_id: azp.or(appid),
            guest,
            audiences,
            default_audience,
            auth_contexts,
            handles_claims_challenges: capabilities
                .iter()
                .any(|c| c == CLAIMS_CHALLENGE_CAPABILITY),
            groups,
            groups_overage,
            expires_at: exp,
        })
    }

    /// `iss == "{instance}/{tid}/v2.0"` or `iss == "{sts}/{tid}/"`, exactly,
    /// without building either string.
    fn is_issuer_for(&self, iss: &str, tid: &str) -> bool {
        let v2 = iss
            .strip_prefix(self.instance.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_suffix("/v2.0"))
            == Some(tid);
        let v1 = iss
            .strip_prefix(self.sts_instance.as_str())
            .and_then(|r| r.strip_prefix('/'))
            .and_then(|r| r.strip_suffix('/'))
            == Some(tid);
        v1 || v2
    }

    /// RFC 7519 §4.1.3: a string or an array of strings; any-of matches,
    /// against the gateway's own audiences or a route's. Returns the token's
    /// audiences and whether one is the gateway's own.
    fn check_audience(&self, aud: Option<Value>) -> Result<(Vec<String>, bool), AuthError> {
        let audiences = match aud {
            None => return Err(AuthError::MissingClaim("aud")),
            Some(Value::String(a)) => vec![a],
            Some(Value::Array(items)) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(a) => Ok(a),
                    _ => Err(AuthError::InvalidClaim("aud")),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(AuthError::InvalidClaim("aud")),
        };
        let default = audiences.iter().any(|a| self.audiences.contains(a));
        if default || audiences.iter().any(|a| self.route_audiences.contains(a)) {
            Ok((audiences, default))
        } else {
            Err(AuthError::WrongAudience)
        }
    }
}

/// `scp`, `roles` and `idtyp` into who the caller is and what it holds.
/// scp: one space-separated string of short names; roles: an array of
/// strings. Anything else is refused, never coerced.
fn permissions(
    scp: Option<Value>,
    roles: Option<Value>,
    idtyp: Option<Value>,
) -> Result<(PrincipalKind, Vec<String>, Vec<String>), AuthError> {
    let scp = string(scp, "scp")?;
    let roles = match roles {
        None => Vec::new(),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(AuthError::InvalidClaim("roles")),
            })
            .collect::<Result<Vec<_>, _>>()?,
        Some(_) => return Err(AuthError::InvalidClaim("roles")),
    };
    let idtyp = string(idtyp, "idtyp")?;
    let is_app = idtyp.as_deref() == Some("app");
    if is_app && scp.is_some() {
        // App-only tokens never carry delegated scopes.
        return Err(AuthError::InvalidClaim("scp"));
    }
    let kind = if is_app || scp.is_none() {
        PrincipalKind::App
    } else {
        PrincipalKind::User
    };
    let scopes: Vec<String> = scp
        .as_deref()
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    if scopes.is_empty() && roles.is_empty() {
        return Err(AuthError::NoPermissions);
    }
    Ok((kind, scopes, roles))
}

/// One claim rule applied on its own, for `authz-proxy explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimCheck {
    /// The claim (or `payload`, `permissions`).
    pub claim: &'static str,
    /// The claim's value as JSON, or `absent`.
    pub value: String,
    /// Whether the rule holds, and if not the error the gateway would give.
    pub result: Result<(), AuthError>,
}

impl ClaimRules {
    /// Every claim rule of [`ClaimRules::check`] applied on its own, in the
    /// same order and with the same helpers, so an explanation lists every
    /// failing claim instead of the first. `check` stays the verdict; the
    /// first failure here is always the error `check` returns.
    pub(crate) fn each_check(&self, payload_b64: &str, now: u64) -> Vec<ClaimCheck> {
        let raw: Option<serde_json::Map<String, Value>> = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let claims: Option<RawClaims> = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .ok()
            .and_then(|bytes| serde_json::from_slice(&bytes).ok());
        let (Some(raw), Some(claims)) = (raw, claims) else {
            return vec![ClaimCheck {
                claim: "payload",
                value: String::new(),
                result: Err(AuthError::MalformedToken(
                    "the payload is not a JSON object of claims",
                )),
            }];
        };
        let value = |claim: &str| raw.get(claim).map_or("absent".to_owned(), Value::to_string);
        let mut checks = Vec::new();
        let mut push = |claim: &'static str, result: Result<(), AuthError>| {
            checks.push(ClaimCheck {
                claim,
                value: value(claim),
                result,
            });
        };

        push(
            "exp",
            numeric_date(claims.exp, "exp").and_then(|exp| match exp {
                None => Err(AuthError::MissingClaim("exp")),
                Some(exp) if now >= exp.saturating_add(self.leeway) => Err(AuthError::Expired),
                Some(_) => Ok(()),
            }),
        );
        if claims.nbf.is_some() {
            push(
                "nbf",
                numeric_date(claims.nbf, "nbf").and_then(|nbf| match nbf {
                    Some(nbf) if nbf > now.saturating_add(self.leeway) => {
                        Err(AuthError::NotYetValid)
                    }
                    _ => Ok(()),
                }),
            );
        }
        let iss = string(claims.iss, "iss");
        let other_case = claims.tid_other_case.is_some();
        let tid = string(claims.tid, "tid").and_then(|tid| match tid {
            _ if other_case => Err(AuthError::InvalidClaim("tid")),
            None => Err(AuthError::MissingClaim("tid")),
            Some(tid) if !is_tenant_id(&tid) => Err(AuthError::InvalidClaim("tid")),
            Some(tid) => Ok(tid),
        });
        push(
            "iss",
            match (&iss, &tid) {
                (Err(e), _) => Err(e.clone()),
                (Ok(None), _) => Err(AuthError::MissingClaim("iss")),
                (Ok(Some(iss)), Ok(tid)) if !self.is_issuer_for(iss, tid) => {
                    Err(AuthError::WrongIssuer)
                }
                _ => Ok(()),
            },
        );
        push(
            "tid",
            match &tid {
                Err(e) => Err(e.clone()),
                Ok(tid) if !self.tenants.allows(tid) => Err(AuthError::WrongTenant),
                Ok(_) => Ok(()),
            },
        );
        push("aud", self.check_audience(claims.aud).map(|_| ()));
        push(
            "oid",
            string(claims.oid, "oid").and_then(|oid| match oid {
                None => Err(AuthError::MissingClaim("oid")),
                Some(oid) if oid.is_empty() => Err(AuthError::InvalidClaim("oid")),
                Some(_) => Ok(()),
            }),
        );
        if claims.nonce.is_some() {
            push("nonce", Err(AuthError::InvalidClaim("nonce")));
        }
        let held = permissions(claims.scp, claims.roles, claims.idtyp).map(|_| ());
        checks.push(ClaimCheck {
            claim: "permissions",
            value: format!("scp={} roles={}", value("scp"), value("roles")),
            result: held,
        });
        checks
    }
}

/// A B2B guest: the optional claim `acct` is 1 (0 is a member), or the
/// `idp` claim names another issuer than the token's `iss` (a guest's home
/// tenant or identity provider). Any other `acct` is `invalid_claim`.
fn is_guest(acct: Option<Value>, idp: Option<Value>, iss: &str) -> Result<bool, AuthError> {
    let by_acct = match acct {
        None => false,
        Some(Value::Number(n)) if n.as_u64() == Some(1) => true,
        Some(Value::Number(n)) if n.as_u64() == Some(0) => false,
        Some(_) => return Err(AuthError::InvalidClaim("acct")),
    };
    let idp = string(idp, "idp")?;
    Ok(by_acct || idp.is_some_and(|idp| idp != iss))
}

/// `groups` (an array of object ids, kept lowercase) and whether the token
/// has a groups overage instead: `_claim_names` naming `groups`, or
/// `hasgroups: true`, and no `groups` claim (a token that lists its groups
/// is judged on them). `_claim_names` must be an object and `hasgroups` a
/// boolean; anything else is `invalid_claim`.
fn groups(
    groups: Option<Value>,
    claim_names: Option<Value>,
    hasgroups: Option<Value>,
) -> Result<(Vec<String>, bool), AuthError> {
    let named = match claim_names {
        None => false,
        Some(Value::Object(names)) => names.contains_key("groups"),
        Some(_) => return Err(AuthError::InvalidClaim("_claim_names")),
    };
    let has = match hasgroups {
        None => false,
        Some(Value::Bool(b)) => b,
        Some(_) => return Err(AuthError::InvalidClaim("hasgroups")),
    };
    let listed = groups.is_some();
    let mut groups = string_array(groups, "groups")?;
    for g in &mut groups {
        g.make_ascii_lowercase();
    }
    Ok((groups, !listed && (named || has)))
}

/// The client capability that says "I handle claims challenges": MSAL
/// sends it when an app calls `WithClientCapabilities(["cp1"])`, and Entra
/// then puts it in the token's `xms_cc`.
const CLAIMS_CHALLENGE_CAPABILITY: &str = "cp1";

/// An optional array of strings (`acrs`, `xms_cc`); absent is empty, any
/// other JSON type is `invalid_claim`.
fn string_array(value: Option<Value>, claim: &'static str) -> Result<Vec<String>, AuthError> {
    match value {
        None => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .into_iter()
            .map(|v| match v {
                Value::String(s) => Ok(s),
                _ => Err(AuthError::InvalidClaim(claim)),
            })
            .collect(),
        Some(_) => Err(AuthError::InvalidClaim(claim)),
    }
}

/// An optional string claim; any other JSON type is `invalid_claim`.
fn string(value: Option<Value>, claim: &'static str) -> Result<Option<String>, AuthError> {
    match value {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(AuthError::InvalidClaim(claim)),
    }
}

/// RFC 7519 §2 NumericDate: non-negative seconds, possibly fractional
/// (truncated). A string, a negative number or `null` is `invalid_claim`.
fn numeric_date(value: Option<Value>, claim: &'static str) -> Result<Option<u64>, AuthError> {
    match value {
        None => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(v) = n.as_u64() {
                Ok(Some(v))
            } else {
                match n.as_f64() {
                    Some(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => {
                        Ok(Some(f as u64))
                    }
                    _ => Err(AuthError::InvalidClaim(claim)),
                }
            }
        }
        Some(_) => Err(AuthError::InvalidClaim(claim)),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const TID: &str = "11111111-1111-1111-1111-111111111111";
    const NOW: u64 = 1_800_000_000;

    fn rules() -> ClaimRules {
        ClaimRules {
            audiences: vec!["api://app".into(), "app".into()],
            route_audiences: Arc::from([]),
            instance: "https://login.example".into(),
            sts_instance: "https://sts.example".into(),
            tenants: TenantRule::One(TID.into()),
            leeway: 60,
        }
    }

    fn base() -> Value {
        json!({
            "iss": format!("https://login.example/{TID}/v2.0"),
            "aud": "app",
            "exp": NOW + 600,
            "nbf": NOW - 10,
            "tid": TID,
            "oid": "oid-1",
            "scp": "access_as_user read",
            "preferred_username": "ada@example.com",
            "azp": "client-1",
            "name": "Ada",
        })
    }

    fn check_with(claims: Value, rules: &ClaimRules) -> Result<Identity, &'static str> {
        let b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        rules
            .check(&b64, NOW, KeyIssuer::default())
            .map_err(|e| e.reason())
    }

    /// Marks a claim to remove in [`reason`]'s patch.
    const ABSENT: &str = "<absent>";

    /// Applies `patch` to the base claims (a value of [`ABSENT`] removes the
    /// claim) and returns the outcome's reason, or "ok".
    fn reason(patch: Value) -> &'static str {
        let mut claims = base();
        let c = claims.as_object_mut().unwrap();
        for (k, v) in patch.as_object().unwrap() {
            if v == ABSENT {
                c.remove(k);
            } else {
                c.insert(k.clone(), v.clone());
            }
        }
        match check_with(claims, &rules()) {
            Ok(_) => "ok",
            Err(r) => r,
        }
    }

    #[test]
    fn valid_v2_user_token_gives_identity() {
        let id = check_with(base(), &rules()).unwrap();
        assert_eq!(id.object_id, "oid-1");
        assert_eq!(id.tenant_id, TID);
        assert_eq!(id.kind, PrincipalKind::User);
        assert_eq!(id.scopes, ["access_as_user", "read"]);
        assert!(id.roles.is_empty());
        assert_eq!(id.email.as_deref(), Some("ada@example.com"));
        assert_eq!(id.app_id.as_deref(), Some("client-1"));
        assert_eq!(id.name.as_deref(), Some("Ada"));
        assert_eq!(id.expires_at, NOW + 600);
    }

    #[test]
    fn v1_issuer_with_trailing_slash_is_accepted_and_fallbacks_apply() {
        let claims = json!({
            "iss": format!("https://sts.example/{TID}/"), "aud": "api://app",
            "exp": NOW + 600, "tid": TID, "oid": "o", "roles": ["Admin"],
            "unique_name": "u@example.com", "appid": "app-1", "idtyp": "app",
        });
        let id = check_with(claims, &rules()).unwrap();
        assert_eq!(id.kind, PrincipalKind::App);
        assert_eq!(id.roles, ["Admin"]);
        assert_eq!(id.email.as_deref(), Some("u@example.com"));
        assert_eq!(id.app_id.as_deref(), Some("app-1"));
    }

    #[test]
    fn each_claim_rule_has_its_reason() {
        let other = "22222222-2222-2222-2222-222222222222";
        let cases = [
            ("ok", json!({})),
            ("expired", json!({"exp": NOW - 61})),
            ("expired", json!({"exp": NOW - 60})),
            ("ok", json!({"exp": NOW - 59})),
            ("ok", json!({"exp": (NOW + 600) as f64 + 0.5})),
            ("not_yet_valid", json!({"nbf": NOW + 61})),
            ("ok", json!({"nbf": NOW + 60})),
            ("missing_claim", json!({"exp": ABSENT})),
            ("missing_claim", json!({"iss": ABSENT})),
            ("missing_claim", json!({"aud": ABSENT})),
            ("missing_claim", json!({"tid": ABSENT})),
            ("missing_claim", json!({"oid": ABSENT})),
            ("invalid_claim", json!({"exp": (NOW + 600).to_string()})),
            ("invalid_claim", json!({"exp": -5})),
            ("invalid_claim", json!({"nbf": null})),
            ("invalid_claim", json!({"roles": "Admin"})),
            ("invalid_claim", json!({"roles": ["Admin", 1]})),
            ("invalid_claim", json!({"scp": ["access_as_user"]})),
            ("invalid_claim", json!({"aud": 42})),
            ("invalid_claim", json!({"aud": ["app", 1]})),
            ("invalid_claim", json!({"oid": 7})),
            ("invalid_claim", json!({"oid": ""})),
            ("invalid_claim", json!({"tid": "a/b"})),
            ("invalid_claim", json!({"iss": ["x"]})),
            ("invalid_claim", json!({"idtyp": "app"})),
            ("invalid_claim", json!({"name": 1})),
            ("invalid_claim", json!({"nonce": "n-0S6_WzA2Mj"})),
            ("wrong_audience", json!({"aud": "other"})),
            ("wrong_audience", json!({"aud": "API://APP"})),
            ("wrong_audience", json!({"aud": []})),
            ("ok", json!({"aud": ["other", "api://app"]})),
            (
                "wrong_issuer",
                json!({"iss": "https://evil.example/x/v2.0"}),
            ),
            (
                "wrong_issuer",
                json!({"iss": format!("https://sts.example/{TID}")}),
            ),
            (
                "wrong_issuer",
                json!({"iss": format!("https://login.example/{TID}/v2.0/")}),
            ),
            (
                "wrong_issuer",
                json!({"iss": format!("https://login.example/{TID}")}),
            ),
            (
                "wrong_issuer",
                json!({"iss": format!("https://login.example/{{tenantid}}/v2.0")}),
            ),
            ("ok", json!({"iss": format!("https://sts.example/{TID}/")})),
            ("wrong_issuer", json!({"tid": other})),
            ("no_permissions", json!({"scp": ABSENT})),
            ("no_permissions", json!({"scp": "  "})),
            ("no_permissions", json!({"scp": ABSENT, "roles": []})),
            (
                "no_permissions",
                json!({"scp": ABSENT, "groups": ["g"], "wids": ["w"], "scope": "access_as_user"}),
            ),
        ];
        for (i, (expected, patch)) in cases.into_iter().enumerate() {
            assert_eq!(reason(patch.clone()), expected, "case {i}: {patch}");
        }
    }

    /// `each_check`'s first failure is `check`'s error, over the case table.
    #[test]
    fn each_check_agrees_with_check_on_the_first_failure() {
        let patches = [
            json!({}),
            json!({"exp": NOW - 61}),
            json!({"nbf": NOW + 61}),
            json!({"iss": ABSENT}),
            json!({"aud": "other"}),
            json!({"tid": "22222222-2222-2222-2222-222222222222"}),
            json!({"oid": ""}),
            json!({"nonce": "n"}),
            json!({"scp": ABSENT}),
            json!({"roles": "Admin"}),
            json!({"idtyp": "app"}),
            json!({"exp": NOW - 61, "aud": "other", "scp": ABSENT}),
        ];
        for patch in patches {
            let mut claims = base();
            let c = claims.as_object_mut().unwrap();
            for (k, v) in patch.as_object().unwrap() {
                if v == ABSENT {
                    c.remove(k);
                } else {
                    c.insert(k.clone(), v.clone());
                }
            }
            let b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
            let first = rules()
                .each_check(&b64, NOW)
                .into_iter()
                .find_map(|c| c.result.err());
            assert_eq!(
                first,
                rules().check(&b64, NOW, KeyIssuer::default()).err(),
                "{patch}"
            );
        }
    }

    #[test]
    fn another_tenants_token_with_matching_issuer_is_wrong_tenant() {
        let other = "22222222-2222-2222-2222-222222222222";
        let mut claims = base();
        claims["tid"] = json!(other);
        claims["iss"] = json!(format!("https://login.example/{other}/v2.0"));
        assert_eq!(
            check_with(claims.clone(), &rules()).unwrap_err(),
            "wrong_tenant"
        );

        let mut multi = rules();
        multi.tenants = TenantRule::List(vec![TID.into(), other.to_uppercase()]);
        assert!(check_with(claims.clone(), &multi).is_ok());
        multi.tenants = TenantRule::List(vec![TID.into()]);
        assert_eq!(
            check_with(claims.clone(), &multi).unwrap_err(),
            "wrong_tenant"
        );
        multi.tenants = TenantRule::Any;
        assert!(check_with(claims, &multi).is_ok());
    }

    #[test]
    fn auth_context_claims_are_acrs_and_xms_cc_cp1_and_are_string_arrays() {
        let step_up = |patch: Value| {
            let mut claims = base();
            for (k, v) in patch.as_object().unwrap() {
                claims[k] = v.clone();
            }
            check_with(claims, &rules()).map(|id| (id.auth_contexts, id.handles_claims_challenges))
        };
        assert_eq!(step_up(json!({})), Ok((vec![], false)));
        assert_eq!(
            step_up(json!({"acrs": ["c1", "c7"], "xms_cc": ["cp1"]})),
            Ok((vec!["c1".to_owned(), "c7".to_owned()], true))
        );
        assert_eq!(
            step_up(json!({"xms_cc": ["llt", "cp1"]})),
            Ok((vec![], true))
        );
        assert_eq!(step_up(json!({"xms_cc": ["CP1"]})), Ok((vec![], false)));
        assert_eq!(step_up(json!({"acrs": "c1"})), Err("invalid_claim"));
        assert_eq!(step_up(json!({"acrs": [1]})), Err("invalid_claim"));
        assert_eq!(step_up(json!({"xms_cc": "cp1"})), Err("invalid_claim"));
    }

    #[test]
    fn groups_are_a_string_array_and_an_overage_is_claim_names_or_hasgroups() {
        let groups = |patch: Value| {
            let mut claims = base();
            for (k, v) in patch.as_object().unwrap() {
                claims[k] = v.clone();
            }
            check_with(claims, &rules()).map(|id| (id.groups, id.groups_overage))
        };
        let g = "6F1C0000-0000-4000-8000-000000000001";
        assert_eq!(groups(json!({})), Ok((vec![], false)));
        assert_eq!(
            groups(json!({ "groups": [g] })),
            Ok((vec![g.to_ascii_lowercase()], false))
        );
        assert_eq!(groups(json!({"groups": []})), Ok((vec![], false)));
        let sources =
            json!({"src1": {"endpoint": "https://graph.windows.net/t/users/o/getMemberObjects"}});
        assert_eq!(
            groups(json!({"_claim_names": {"groups": "src1"}, "_claim_sources": sources})),
            Ok((vec![], true))
        );
        assert_eq!(groups(json!({"hasgroups": true})), Ok((vec![], true)));
        assert_eq!(groups(json!({"hasgroups": false})), Ok((vec![], false)));
        // Another distributed claim is no groups overage.
        assert_eq!(
            groups(json!({"_claim_names": {"wids": "src1"}})),
            Ok((vec![], false))
        );
        // A token that lists its groups is judged on them.
        assert_eq!(
            groups(json!({"groups": [g], "hasgroups": true})),
            Ok((vec![g.to_ascii_lowercase()], false))
        );
        assert_eq!(groups(json!({"groups": g})), Err("invalid_claim"));
        assert_eq!(groups(json!({"groups": [1]})), Err("invalid_claim"));
        assert_eq!(groups(json!({"hasgroups": "true"})), Err("invalid_claim"));
        assert_eq!(
            groups(json!({"_claim_names": ["groups"]})),
            Err("invalid_claim")
        );
    }

    #[test]
    fn guests_are_acct_1_or_an_idp_other_than_the_issuer() {
        let guest = |patch: Value| {
            let mut claims = base();
            for (k, v) in patch.as_object().unwrap() {
                claims[k] = v.clone();
            }
            check_with(claims, &rules()).map(|id| id.guest)
        };
        assert_eq!(guest(json!({})), Ok(false));
        assert_eq!(guest(json!({"acct": 0})), Ok(false));
        assert_eq!(guest(json!({"acct": 1})), Ok(true));
        assert_eq!(
            guest(json!({"idp": "https://sts.windows.net/33333333-3333-3333-3333-333333333333/"})),
            Ok(true)
        );
        assert_eq!(guest(json!({"idp": "live.com"})), Ok(true));
        assert_eq!(
            guest(json!({"idp": format!("https://login.example/{TID}/v2.0")})),
            Ok(false)
        );
        assert_eq!(guest(json!({"acct": "1"})), Err("invalid_claim"));
        assert_eq!(guest(json!({"acct": 2})), Err("invalid_claim"));
        assert_eq!(guest(json!({"idp": 5})), Err("invalid_claim"));
    }

    #[test]
    fn app_only_token_without_idtyp_is_an_app() {
        let mut claims = base();
        let c = claims.as_object_mut().unwrap();
        c.remove("scp");
        c.insert("roles".into(), json!(["Tasks.Read"]));
        let id = check_with(claims, &rules()).unwrap();
        assert_eq!(id.kind, PrincipalKind::App);
        assert!(id.scopes.is_empty());
    }

    #[test]
    fn duplicated_claim_is_malformed() {
        let payload = format!(
            r#"{{"iss":"https://login.example/{TID}/v2.0","aud":"app","aud":"other","exp":{},"tid":"{TID}","oid":"o","scp":"a"}}"#,
            NOW + 600
        );
        let b64 = URL_SAFE_NO_PAD.encode(payload);
        assert_eq!(
            rules()
                .check(&b64, NOW, KeyIssuer::default())
                .unwrap_err()
                .reason(),
            "malformed_token"
        );
    }

    #[test]
    fn claims_that_are_not_a_json_object_are_malformed() {
        for payload in [
            format!(
                r#"["https://login.example/{TID}/v2.0","app",{}]"#,
                NOW + 600
            ),
            " [1]".to_owned(),
            "\"iss\"".to_owned(),
            "null".to_owned(),
        ] {
            let b64 = URL_SAFE_NO_PAD.encode(&payload);
            let got = rules().check(&b64, NOW, KeyIssuer::default());
            assert_eq!(got.unwrap_err().reason(), "malformed_token", "{payload}");
            let first = rules()
                .each_check(&b64, NOW)
                .into_iter()
                .find_map(|c| c.result.err());
            assert_eq!(first.unwrap().reason(), "malformed_token", "{payload}");
        }
        let spaced = URL_SAFE_NO_PAD.encode(format!("\n  {}", base()));
        assert!(rules().check(&spaced, NOW, KeyIssuer::default()).is_ok());
    }

    #[test]
    fn a_tenant_claim_differing_from_tid_only_in_case_is_refused() {
        let other = "22222222-2222-2222-2222-222222222222";
        for name in ["TID", "Tid", "tiD", "tID"] {
            assert_eq!(reason(json!({ name: other })), "invalid_claim", "{name}");
            assert_eq!(reason(json!({ name: TID })), "invalid_claim", "{name}");
            assert_eq!(
                reason(json!({ "tid": ABSENT, name: TID })),
                "invalid_claim",
                "{name} alone"
            );
        }
        assert_eq!(
            reason(json!({"TID": other, "Tid": other})),
            "malformed_token"
        );
        // Case in the value is not case in the name.
        assert_eq!(reason(json!({"xtid": other, "tids": other})), "ok");
    }

    const KEY_V2: &str = "https://login.example/{tenantid}/v2.0";

    fn signed_by(claims: Value, key: Option<&str>, discovery: Option<&str>) -> &'static str {
        let b64 = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap());
        let mut multi = rules();
        multi.tenants = TenantRule::Any;
        match multi.check(&b64, NOW, KeyIssuer { key, discovery }) {
            Ok(_) => "ok",
            Err(e) => e.reason(),
        }
    }

    #[test]
    fn a_key_with_an_issuer_verifies_only_tokens_of_that_issuer() {
        let other = "22222222-2222-2222-2222-222222222222";
        let v2 = base();
        let mut v1 = base();
        v1["iss"] = json!(format!("https://sts.example/{TID}/"));
        let mut other_v2 = base();
        other_v2["tid"] = json!(other);
        other_v2["iss"] = json!(format!("https://login.example/{other}/v2.0"));
        let v2_discovery = Some(KEY_V2);
        let v1_discovery = Some("https://sts.example/{tenantid}/");
        let tenant_discovery = format!("https://login.example/{TID}/v2.0");
        let tenant_key = format!("https://login.example/{TID}/v2.0");
        let cases = [
            // Entra's templated key: v2 tokens match it directly.
            ("ok", &v2, Some(KEY_V2), v2_discovery),
            ("ok", &v2, Some(KEY_V2), Some(tenant_discovery.as_str())),
            ("ok", &other_v2, Some(KEY_V2), v2_discovery),
            // v1 tokens through v2 metadata: the key equals the discovery issuer.
            ("ok", &v1, Some(KEY_V2), v2_discovery),
            ("ok", &v1, Some(KEY_V2), Some(tenant_discovery.as_str())),
            // v1 metadata with a v2-issuer key: neither matches.
            ("wrong_issuer", &v1, Some(KEY_V2), v1_discovery),
            // No issuer on the key (v1 key sets): the claim rules decide.
            ("ok", &v1, None, v1_discovery),
            ("ok", &v2, None, None),
            ("ok", &v2, Some(" "), None),
            // A key published for tenant TID cannot verify tenant `other`'s
            // token, whatever the discovery document says.
            ("ok", &v2, Some(tenant_key.as_str()), v2_discovery),
            (
                "wrong_issuer",
                &other_v2,
                Some(tenant_key.as_str()),
                v2_discovery,
            ),
            ("wrong_issuer", &other_v2, Some(tenant_key.as_str()), None),
            // A v1 token of TID with TID's own key through v2 metadata.
            ("ok", &v1, Some(tenant_key.as_str()), v2_discovery),
            // A key of another cloud or host.
            (
                "wrong_issuer",
                &v2,
                Some("https://evil.example/{tenantid}/v2.0"),
                v2_discovery,
            ),
            (
                "wrong_issuer",
                &v2,
                Some("https://login.example/{tenantid}/v2.0/x"),
                None,
            ),
        ];
        for (i, (expected, claims, key, discovery)) in cases.into_iter().enumerate() {
            assert_eq!(
                signed_by(claims.clone(), key, discovery),
                expected,
                "case {i}: key {key:?} discovery {discovery:?}"
            );
        }
    }

    #[test]
    fn template_filling_matches_exactly() {
        assert!(is_filled(KEY_V2, "t", "https://login.example/t/v2.0"));
        assert!(!is_filled(KEY_V2, "t", "https://login.example/t/v2.0/"));
        assert!(!is_filled(KEY_V2, "t", "https://login.example/u/v2.0"));
        assert!(is_filled("a{tenantid}b{tenantid}", "t", "atbt"));
        assert!(!is_filled("a{tenantid}b{tenantid}", "t", "atb"));
        assert!(is_filled("no-template", "t", "no-template"));
    }

    #[test]
    fn route_audiences_pass_authentication_but_are_not_the_gateways_own() {
        let mut claims = base();
        claims["aud"] = json!("api://reports");
        assert_eq!(check_with(claims.clone(), &rules()), Err("wrong_audience"));
        let mut with_routes = rules();
        with_routes.route_audiences = Arc::from(["api://reports".to_owned()]);
        let id = check_with(claims, &with_routes).unwrap();
        assert_eq!(id.audiences, ["api://reports"]);
        assert!(!id.default_audience);

        let mut both = base();
        both["aud"] = json!(["api://reports", "app"]);
        let id = check_with(both, &with_routes).unwrap();
        assert_eq!(id.audiences, ["api://reports", "app"]);
        assert!(id.default_audience);
    }
}
