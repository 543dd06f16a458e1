//! In-memory sign-in state: authorization codes waiting to be redeemed and
//! refresh tokens. Nothing here survives a restart, as with any dev server;
//! access tokens do (they only need the persisted keys).
//!
//! Codes are single-use (RFC 6749 §4.1.2: "the client MUST NOT use the
//! authorization code more than once") and short-lived. A redeemed code is
//! remembered as redeemed, so a replay gets Entra's "already redeemed" error.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::claims::random_b64url;
use crate::claims_request::ClaimsRequest;

/// What an authorization code stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PendingCode {
    /// The client it was issued to.
    pub client_id: String,
    /// The exact redirect URI of the authorize request (RFC 6749 §4.1.3).
    pub redirect_uri: String,
    /// PKCE S256 challenge (RFC 7636), if the client sent one.
    pub code_challenge: Option<String>,
    /// The signed-in user's object id.
    pub user_oid: String,
    /// The API app's name.
    pub api: String,
    /// Granted delegated scopes (short names).
    pub scopes: Vec<String>,
    /// Whether `offline_access` was granted (a refresh token is due).
    pub offline_access: bool,
    /// Whether `openid` was asked for (an ID token is due).
    pub openid: bool,
    /// The authorize request's `nonce`, echoed in the ID token.
    pub nonce: Option<String>,
    /// The authorize request's `claims` parameter: `acrs`, `xms_cc`.
    pub requested: ClaimsRequest,
    /// Expiry, seconds since the epoch.
    pub expires_at: u64,
}

/// What a refresh token stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct RefreshGrant {
    /// The client it was issued to; only that client may redeem it.
    pub client_id: String,
    /// The user's object id.
    pub user_oid: String,
    /// The API app's name.
    pub api: String,
    /// Delegated scopes (short names).
    pub scopes: Vec<String>,
    /// Whether refreshed responses carry an ID token.
    pub openid: bool,
    /// The sign-in's `claims` request, kept by the tokens refreshed from it.
    pub requested: ClaimsRequest,
}

/// The outcome of presenting a code.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Redemption {
    /// First use, in time (boxed: a code carries much more than the others).
    Valid(Box<PendingCode>),
    /// Used before.
    AlreadyRedeemed,
    /// Too late.
    Expired,
    /// Never issued here.
    Unknown,
}

#[derive(Debug)]
enum Slot {
    Pending(Box<PendingCode>),
    Redeemed { expires_at: u64 },
}

/// Codes and refresh tokens, each behind its own lock.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    codes: Mutex<HashMap<String, Slot>>,
    refresh_tokens: Mutex<HashMap<String, RefreshGrant>>,
}

impl Sessions {
    /// Stores a pending code and returns it; forgets codes expired by `now`.
    pub(crate) fn issue_code(&self, pending: PendingCode, now: u64) -> String {
        let code = random_b64url(32);
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        codes.retain(|_, slot| match slot {
            Slot::Pending(p) => p.expires_at > now,
            Slot::Redeemed { expires_at } => *expires_at > now,
        });
        codes.insert(code.clone(), Slot::Pending(Box::new(pending)));
        code
    }

    /// Redeems a code at `now`; any presentation uses it up.
    pub(crate) fn redeem_code(&self, code: &str, now: u64) -> Redemption {
        let mut codes = self.codes.lock().unwrap_or_else(|p| p.into_inner());
        let Some(slot) = codes.get_mut(code) else {
            return Redemption::Unknown;
        };
        match std::mem::replace(slot, Slot::Redeemed { expires_at: 0 }) {
            Slot::Redeemed { expires_at } => {
                *slot = Slot::Redeemed { expires_at };
                Redemption::AlreadyRedeemed
            }
            Slot::Pending(p) => {
                *slot = Slot::Redeemed {
                    expires_at: p.expires_at,
                };
                if p.expires_at <= now {
                    Redemption::Expired
                } else {
                    Redemption::Valid(p)
                }
            }
        }
    }

    /// Stores a refresh grant and returns its opaque token.
    pub(crate) fn issue_refresh_token(&self, grant: RefreshGrant) -> String {
        let token = format!("1.{}", random_b64url(48));
        self.refresh_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(token.clone(), grant);
        token
    }

    /// Looks a refresh token up (it stays valid, as Entra's do until expiry).
    pub(crate) fn refresh_grant(&self, token: &str) -> Option<RefreshGrant> {
        self.refresh_tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(token)
            .cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending(expires_at: u64) -> PendingCode {
        PendingCode {
            client_id: "c".into(),
            redirect_uri: "http://localhost/cb".into(),
            code_challenge: None,
            user_oid: "u".into(),
            api: "todo-api".into(),
            scopes: vec!["access_as_user".into()],
            offline_access: false,
            openid: false,
            nonce: None,
            requested: ClaimsRequest::default(),
            expires_at,
        }
    }

    #[test]
    fn a_code_redeems_once_then_reports_already_redeemed() {
        let s = Sessions::default();
        let code = s.issue_code(pending(100), 0);
        assert_eq!(
            s.redeem_code(&code, 50),
            Redemption::Valid(Box::new(pending(100)))
        );
        assert_eq!(s.redeem_code(&code, 51), Redemption::AlreadyRedeemed);
    }

    #[test]
    fn a_code_presented_after_expiry_is_expired_and_used_up() {
        let s = Sessions::default();
        let code = s.issue_code(pending(100), 0);
        assert_eq!(s.redeem_code(&code, 100), Redemption::Expired);
        assert_eq!(s.redeem_code(&code, 10), Redemption::AlreadyRedeemed);
    }

    #[test]
    fn unknown_codes_are_unknown() {
        assert_eq!(
            Sessions::default().redeem_code("nope", 0),
            Redemption::Unknown
        );
    }

    #[test]
    fn expired_codes_are_forgotten_when_new_ones_are_issued() {
        let s = Sessions::default();
        let old = s.issue_code(pending(10), 0);
        s.issue_code(pending(100), 20);
        assert_eq!(s.redeem_code(&old, 20), Redemption::Unknown);
    }
}
