//! A token judged offline, for `authz-proxy explain` and `authz-proxy test`:
//! the same JOSE header checks, key lookup and claim rules as
//! [`Authenticator::authenticate`](super::Authenticator::authenticate), with
//! no discovery, no key fetch and no cache.
//!
//! Without a JWKS file the signature cannot be checked, and says so. Rules
//! whose settings are not given (audience, tenant, issuer base) are filled
//! in from the token itself, so they pass, and are reported as not checked.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use serde_json::Value;

use super::claims::{ClaimRules, KeyIssuer, TenantRule};
use super::keys::KeySet;
use super::{AuthError, jws};
use crate::identity::Identity;

pub use super::claims::ClaimCheck;

/// What is known of the API the token would be sent to; `None` = not checked.
#[derive(Debug, Clone, Default)]
pub struct OfflineSettings {
    /// Accepted audiences (`<client id>`, `api://<client id>`, extras).
    pub audiences: Option<Vec<String>>,
    /// Audiences the policy's routes accept besides those
    /// ([`Policy::route_audiences`](crate::policy::Policy::route_audiences)).
    pub route_audiences: Vec<String>,
    /// The one tenant allowed to issue tokens.
    pub tenant: Option<String>,
    /// v2 issuer base, as `--instance`.
    pub instance: Option<String>,
    /// v1 issuer base, as `--sts-instance`.
    pub sts_instance: Option<String>,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// A JWKS document (RFC 7517 §5) to verify the signature with.
    pub jwks: Option<Vec<u8>>,
}

/// One line of an inspection: a check, its outcome, and whether the
/// settings to really check it were given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inspected {
    pub check: ClaimCheck,
    /// `Some(why)`: passed only because a setting was not given, and which.
    pub unchecked: Option<&'static str>,
}

/// The checks one by one, and the verdict the gateway would reach.
#[derive(Debug, Clone)]
pub struct Inspection {
    /// `header`, `signature`, then the claims in the order they are checked.
    pub checks: Vec<Inspected>,
    /// The identity, or the first failure, as `authenticate` would return it.
    pub verdict: Result<Identity, AuthError>,
}

/// Judges a compact JWS as the gateway would, `now` in seconds since the epoch.
pub fn inspect_token(token: &str, settings: &OfflineSettings, now: u64) -> Inspection {
    let algorithms = [Algorithm::RS256];
    let mut checks = Vec::new();
    let parsed = match jws::parse(token, &algorithms) {
        Ok(parsed) => parsed,
        Err(e) => {
            checks.push(line("header", String::new(), Err(e.clone()), None));
            return Inspection {
                checks,
                verdict: Err(e),
            };
        }
    };
    checks.push(line(
        "header",
        format!("alg={:?} kid={}", parsed.alg, parsed.kid),
        Ok(()),
        None,
    ));
    let signature = match &settings.jwks {
        None => line(
            "signature",
            String::new(),
            Ok(()),
            Some("not checked offline: give --jwks FILE"),
        ),
        Some(jwks) => {
            let result = match KeySet::from_jwks(jwks, &algorithms, None) {
                Err(_) => Err(AuthError::UnknownKey),
                Ok((keys, _)) => match keys.get(&parsed.kid) {
                    None => Err(AuthError::UnknownKey),
                    Some(key) => key.verify(&parsed),
                },
            };
            line("signature", format!("kid={}", parsed.kid), result, None)
        }
    };
    let signature_error = signature.check.result.clone().err();
    checks.push(signature);
    let mut inspection = inspect_payload(parsed.payload, settings, now);
    checks.append(&mut inspection.checks);
    Inspection {
        checks,
        verdict: match signature_error {
            // The gateway reads no claim of a token whose signature fails.
            Some(e) => Err(e),
            None => inspection.verdict,
        },
    }
}

/// Judges a claim set (a JWT payload as JSON) without any token around it.
pub fn inspect_claims(claims: &Value, settings: &OfflineSettings, now: u64) -> Inspection {
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).unwrap_or_default());
    inspect_payload(&payload, settings, now)
}

fn inspect_payload(payload_b64: &str, settings: &OfflineSettings, now: u64) -> Inspection {
    let claims: Value = URL_SAFE_NO_PAD
        .decode(payload_b64)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null);
    let text = |claim: &str| claims.get(claim).and_then(Value::as_str).unwrap_or("");
    let tid = text("tid");
    let iss = text("iss");
    let audiences = settings
        .audiences
        .clone()
        .unwrap_or_else(|| match claims.get("aud") {
            Some(Value::String(a)) => vec![a.clone()],
            Some(Value::Array(items)) => items
                .iter()
                .filter_map(|a| a.as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        });
    let suffix_v2 = format!("/{tid}/v2.0");
    let suffix_v1 = format!("/{tid}/");
    let instance = settings
        .instance
        .clone()
        .or_else(|| iss.strip_suffix(&suffix_v2).map(str::to_owned))
        .unwrap_or_default();
    let sts_instance = settings
        .sts_instance
        .clone()
        .or_else(|| iss.strip_suffix(&suffix_v1).map(str::to_owned))
        .unwrap_or_default();
    let rules = ClaimRules {
        audiences,
        route_audiences: settings.route_audiences.clone().into(),
        instance: instance.trim_end_matches('/').to_owned(),
        sts_instance: sts_instance.trim_end_matches('/').to_owned(),
        tenants: match &settings.tenant {
            Some(t) => TenantRule::One(t.to_ascii_lowercase()),
            None => TenantRule::Any,
        },
        leeway: settings.leeway.as_secs(),
    };
    let unchecked = |claim: &str| match claim {
        "aud" if settings.audiences.is_none() => Some("not checked: give --client-id"),
        "tid" if settings.tenant.is_none() => Some("not checked: give --tenant"),
        "iss" if settings.instance.is_none() && settings.sts_instance.is_none() => {
            Some("not checked: give --instance")
        }
        _ => None,
    };
    let checks = rules
        .each_check(payload_b64, now)
        .into_iter()
        .map(|check| {
            let unchecked = if check.result.is_ok() {
                unchecked(check.claim)
            } else {
                None
            };
            Inspected { check, unchecked }
        })
        .collect();
    Inspection {
        checks,
        verdict: rules.check(payload_b64, now, KeyIssuer::default()),
    }
}

fn line(
    claim: &'static str,
    value: String,
    result: Result<(), AuthError>,
    unchecked: Option<&'static str>,
) -> Inspected {
    Inspected {
        check: ClaimCheck {
            claim,
            value,
            result,
        },
        unchecked,
    }
}
