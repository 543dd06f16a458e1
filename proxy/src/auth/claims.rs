//! Checking an Entra access token's claims (RFC 7519 §4.1) into an
//! [`Identity`], after the signature verified.
//!
//! Entra-specific rules live here: the exact v1/v2 issuer for the token's own
//! `tid`, the tenant allow-list, `scp` as one space-separated string and
//! `roles` as an array, app-only tokens. No IO and no state; every wrongly
//! typed claim is refused, never coerced.

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
    /// Accepted `aud` values (any-of).
    pub audiences: Vec<String>,
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
}

/// Keeps `null` as `Some(Value::Null)` so it is not mistaken for absence.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

impl ClaimRules {
    /// Checks the (already signature-verified) payload and builds the identity.
    ///
    /// `now` is seconds since the epoch. Order: lifetime, issuer and tenant,
    /// audience, subject, permissions; `groups`, `wids` and `scope` are never
    /// read, so they can grant nothing.
    pub(crate) fn check(&self, payload_b64: &str, now: u64) -> Result<Identity, AuthError> {
        let payload = URL_SAFE_NO_PAD
            .decode(payload_b64)
            .map_err(|_| AuthError::MalformedToken("the payload is not base64url"))?;
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
        let tid = string(claims.tid, "tid")?.ok_or(AuthError::MissingClaim("tid"))?;
        if tid.is_empty()
            || tid.len() > 64
            || !tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        {
            return Err(AuthError::InvalidClaim("tid"));
        }
        if !self.is_issuer_for(&iss, &tid) {
            return Err(AuthError::WrongIssuer);
        }
        if !self.tenants.allows(&tid) {
            return Err(AuthError::WrongTenant);
        }

        self.check_audience(claims.aud)?;

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

        Ok(Identity {
            object_id: oid,
            tenant_id: tid,
            kind,
            roles,
            scopes,
            name,
            email: preferred_username.or(upn).or(unique_name).or(email),
            app_id: azp.or(appid),
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

    /// RFC 7519 §4.1.3: a string or an array of strings; any-of matches.
    fn check_audience(&self, aud: Option<Value>) -> Result<(), AuthError> {
        let accepted = |a: &str| self.audiences.iter().any(|x| x == a);
        match aud {
            None => Err(AuthError::MissingClaim("aud")),
            Some(Value::String(a)) if accepted(&a) => Ok(()),
            Some(Value::String(_)) => Err(AuthError::WrongAudience),
            Some(Value::Array(items)) => {
                let mut ok = false;
                for item in &items {
                    match item {
                        Value::String(a) => ok |= accepted(a),
                        _ => return Err(AuthError::InvalidClaim("aud")),
                    }
                }
                if ok {
                    Ok(())
                } else {
                    Err(AuthError::WrongAudience)
                }
            }
            Some(_) => Err(AuthError::InvalidClaim("aud")),
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
        let tid = string(claims.tid, "tid").and_then(|tid| match tid {
            None => Err(AuthError::MissingClaim("tid")),
            Some(tid)
                if tid.is_empty()
                    || tid.len() > 64
                    || !tid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') =>
            {
                Err(AuthError::InvalidClaim("tid"))
            }
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
        push("aud", self.check_audience(claims.aud));
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
        rules.check(&b64, NOW).map_err(|e| e.reason())
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
            assert_eq!(first, rules().check(&b64, NOW).err(), "{patch}");
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
            rules().check(&b64, NOW).unwrap_err().reason(),
            "malformed_token"
        );
    }
}
