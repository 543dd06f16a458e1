//! A compiled route and the authorization decision it makes.
//!
//! Matching (which route decides) lives in `policy.rs`; this file answers the
//! next question, "does this identity satisfy the route?", and nothing about
//! how the identity was established: by the time `authorize` runs, the token
//! has been validated and reduced to an [`Identity`].

use std::fmt;

use crate::identity::{Identity, PrincipalKind};

use super::method::MethodSet;

/// One entry of `routes:` in its compiled form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Unique within a policy; shows up in logs and in `explain`.
    pub name: String,
    /// 1-based line of the route in the policy file, for logs and `explain`.
    pub line: usize,
    /// Who may pass.
    pub access: Access,
    /// Whether the client's `Authorization` header reaches the backend
    /// (for backends that want the token itself). Never on anonymous routes.
    pub forward_authorization: bool,
    /// The methods this route decides for.
    pub methods: MethodSet,
    /// The globs as written (and validated to be in normalised form).
    pub paths: Vec<String>,
    /// `extra: true`: the route serves paths the backend's OpenAPI document
    /// does not list, on purpose (`check --openapi` does not ask for one).
    pub extra: bool,
    /// `upstream:`: the index of a declared upstream in
    /// [`Policy::upstreams`](super::Policy::upstreams); `None`: the default
    /// upstream (`--upstream`).
    pub upstream: Option<usize>,
    /// `max_body_bytes:`: replaces `--max-body-bytes` for this route.
    pub max_body_bytes: Option<u64>,
    /// `audiences:`: the `aud` values this route accepts, any-of, instead
    /// of the gateway's (`--client-id`, `--audience`): the API registration
    /// of the backend behind it. `None`: the gateway's.
    pub audiences: Option<Vec<String>>,
    /// Who else must hold for a token route: the calling app, the tenant, the
    /// caller type, guests, the authentication context (`apps`, `tenants`,
    /// `callers`, `guests`, `auth_context`, or `defaults:`). Empty for
    /// anonymous routes.
    pub conditions: Conditions,
    /// `enforce: shadow`: a request the conditions would deny is allowed,
    /// and logged (`"enforce":"shadow"`) and counted as a shadow denial, so
    /// a new rule can be watched before it bites. Authentication is never
    /// shadowed: an invalid token is refused all the same.
    pub shadow: bool,
    /// The conditions this route sets ([`Route::sets`]), in checking order:
    /// what [`Route::authorize`] walks, worked out once when the policy is
    /// compiled ([`Route::with_checked`]), so a route that sets only scopes
    /// pays for nothing else.
    pub(in crate::policy) checked: Vec<Condition>,
}

/// The conditions on the caller beyond roles and scopes, each read from the
/// validated token (and, for a `groups` overage, Microsoft Graph's answer:
/// [`Overage`]). Each list is any-of; an empty list or `None` sets no
/// condition.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conditions {
    /// `apps`: client ids (lowercase) one of which must be the token's `azp`
    /// (v2) or `appid` (v1).
    pub apps: Vec<String>,
    /// `tenants`: tenant ids (lowercase) one of which must be the token's
    /// `tid`, within the gateway's allowed tenants.
    pub tenants: Vec<String>,
    /// `callers: [user]` or `[app]`: the only kind of token admitted; both
    /// (or none) admit either.
    pub callers: Option<PrincipalKind>,
    /// `guests: deny`: B2B guests (`acct == 1`, or an `idp` other than the
    /// issuer) are refused.
    pub deny_guests: bool,
    /// `groups`: security-group object ids (lowercase) one of which the
    /// user must be a member of: from the token's `groups`, or through
    /// Microsoft Graph when the token has a groups overage.
    pub groups: Vec<String>,
    /// `auth_context`: Conditional Access authentication context ids
    /// (`c1`…`c99`) one of which must be in the token's `acrs`; when none
    /// is, a client that declares `cp1` gets a claims challenge to step up.
    pub auth_contexts: Vec<String>,
}

/// One named condition of a token route, in the order they are checked:
/// the one list [`Route::authorize`] (the verdict) and [`Route::checks`]
/// (`explain`) both walk, so a condition is written once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `scopes`: one of them in `scp` (user tokens only).
    Scopes,
    /// `roles`: one of them in `roles`.
    Roles,
    /// `apps`: the calling client application.
    Apps,
    /// `tenants`: the issuing tenant.
    Tenants,
    /// `callers`: user (delegated) or app-only token.
    Callers,
    /// `guests: deny`: no B2B guest.
    Guests,
    /// `groups`: a member of one of the groups. After every condition read
    /// from the token alone, so that Microsoft Graph is asked (for an
    /// overage) only when the groups are what decides.
    Groups,
    /// `auth_context`: a Conditional Access authentication context in
    /// `acrs`. Last: a caller the other conditions refuse is not sent to
    /// sign in again for nothing.
    AuthContext,
}

impl Condition {
    /// Every condition, in checking order.
    pub const ALL: [Condition; 8] = [
        Condition::Scopes,
        Condition::Roles,
        Condition::Apps,
        Condition::Tenants,
        Condition::Callers,
        Condition::Guests,
        Condition::Groups,
        Condition::AuthContext,
    ];

    /// The policy key that sets it.
    pub fn key(self) -> &'static str {
        match self {
            Condition::Scopes => "scopes",
            Condition::Roles => "roles",
            Condition::Apps => "apps",
            Condition::Tenants => "tenants",
            Condition::Callers => "callers",
            Condition::Guests => "guests",
            Condition::Groups => "groups",
            Condition::AuthContext => "auth_context",
        }
    }
}

/// What a route requires of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Access {
    /// No token needed; a presented token is ignored and no identity is forwarded.
    Anonymous,
    /// A valid token, and then: at least one of `scopes` (if any are listed)
    /// and at least one of `roles` (if any are listed). Both empty means any
    /// valid token.
    Token {
        roles: Vec<String>,
        scopes: Vec<String>,
    },
}

/// What is known of the groups of a token with a groups overage (too many
/// groups for the token to list them): only Microsoft Graph can tell. The
/// gateway asks it (`graph.rs`) only for a route with `groups` whose other
/// conditions hold ([`Route::groups_to_resolve`], through
/// [`crate::stages::groups_to_resolve`]); every other
/// decision passes [`Overage::NotAsked`], which costs nothing. Tokens
/// without an overage are judged on their `groups` claim and this is not
/// read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Overage {
    /// Nobody asked Microsoft Graph.
    NotAsked,
    /// Microsoft Graph answered: whether the user is a member of one of
    /// the route's groups.
    Resolved { member: bool },
    /// Microsoft Graph could not be asked or did not answer: why, in words
    /// (`Microsoft Graph is not configured (--graph-client-id)`).
    Unresolved(String),
}

/// Why a valid token was refused (403, RFC 6750 §3.1 `insufficient_scope`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denial {
    /// The token has none of the route's scopes (app tokens never have any).
    MissingScope { required: Vec<String> },
    /// The token has none of the route's roles.
    MissingRole { required: Vec<String> },
    /// The calling app (`azp` / `appid`) is none of the route's `apps`.
    WrongApp,
    /// The issuing tenant is none of the route's `tenants`.
    WrongTenantForRoute,
    /// The token is not of the kind the route's `callers` admits.
    WrongCallerType { required: PrincipalKind },
    /// A guest, on a route with `guests: deny`.
    GuestDenied,
    /// The user is a member of none of the route's `groups`.
    MissingGroup,
    /// The token has a groups overage and Microsoft Graph could not tell
    /// its groups: refused (fail closed), saying why.
    GroupsUnresolved { why: String },
    /// The token's `acrs` holds none of the route's `auth_context` ids.
    /// `challenge`: the client declared `cp1` (`xms_cc`), so it is sent a
    /// claims challenge (401, see `GatewayError::challenge_at`) instead of
    /// a 403.
    AuthContextRequired {
        required: Vec<String>,
        challenge: bool,
    },
}

impl Denial {
    /// The machine-readable reason for logs: `missing_scope` / `missing_role`.
    pub fn reason(&self) -> &'static str {
        match self {
            Denial::MissingScope { .. } => "missing_scope",
            Denial::MissingRole { .. } => "missing_role",
            Denial::WrongApp => "wrong_app",
            Denial::WrongTenantForRoute => "wrong_tenant_for_route",
            Denial::WrongCallerType { .. } => "wrong_caller_type",
            Denial::GuestDenied => "guest_denied",
            Denial::MissingGroup => "missing_group",
            Denial::GroupsUnresolved { .. } => "groups_unresolved",
            Denial::AuthContextRequired { .. } => "auth_context_required",
        }
    }

    /// The route's requirement that was not met, for the client's
    /// `error_description` and the 403 body. Names only what the policy
    /// requires, never what the token holds.
    pub fn description(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Client and tenant ids are the policy's business: not listed.
        let (what, required) = match self {
            Denial::MissingScope { required } => ("scope", required),
            Denial::MissingRole { required } => ("role", required),
            Denial::WrongApp => {
                return f.write_str("this route admits only certain client applications");
            }
            Denial::WrongTenantForRoute => {
                return f.write_str("this route admits only certain tenants");
            }
            Denial::WrongCallerType { required } => {
                return f.write_str(match required {
                    PrincipalKind::User => "this route admits only user (delegated) tokens",
                    PrincipalKind::App => "this route admits only app-only tokens",
                });
            }
            Denial::GuestDenied => {
                return f.write_str("guest accounts may not use this route");
            }
            // Group ids are the policy's business too.
            Denial::MissingGroup => {
                return f.write_str("this route admits only members of certain groups");
            }
            Denial::GroupsUnresolved { why } => {
                return write!(
                    f,
                    "this route admits only members of certain groups, and the token has a groups overage (more groups than a token lists) that could not be resolved: {why}"
                );
            }
            Denial::AuthContextRequired {
                required,
                challenge,
            } => {
                let contexts = match required.as_slice() {
                    [one] => format!("authentication context {one}"),
                    many => format!("one of the authentication contexts {}", many.join(", ")),
                };
                return if *challenge {
                    write!(
                        f,
                        "this route needs {contexts}; sign in again with the claims of the WWW-Authenticate challenge"
                    )
                } else {
                    write!(
                        f,
                        "this route needs {contexts}, and the client does not declare the cp1 capability (xms_cc) that would let it be asked to sign in again with it"
                    )
                };
            }
        };
        match required.as_slice() {
            [one] => write!(f, "the {what} {one} is required"),
            many => write!(f, "one of the {what}s {} is required", many.join(", ")),
        }
    }
}

impl std::error::Error for Denial {}

impl Route {
    /// Whether `identity`'s token was issued for this route's API: for one
    /// of its `audiences:`, or, without them, for the gateway's own.
    pub fn accepts_audience(&self, identity: &Identity) -> bool {
        match &self.audiences {
            None => identity.default_audience,
            Some(accepted) => identity.audiences.iter().any(|a| accepted.contains(a)),
        }
    }

    /// Decides whether `identity` may use this route: the first condition of
    /// [`Condition::ALL`] that fails. Scopes are checked first: a delegated
    /// token without the API's scope was not meant for this call at all,
    /// whatever roles the user has. Allocates nothing unless it denies.
    /// `overage`: what Microsoft Graph said of an overage token's groups.
    pub fn authorize(&self, identity: &Identity, overage: &Overage) -> Result<(), Denial> {
        for &condition in &self.checked {
            if let Some(Err(denial)) = self.check(condition, identity, overage) {
                return Err(denial);
            }
        }
        Ok(())
    }

    /// Every condition the route sets, each judged on its own, in checking
    /// order (for `explain`): the first failure is [`Route::authorize`]'s.
    pub fn checks<'a>(
        &'a self,
        identity: &'a Identity,
        overage: &'a Overage,
    ) -> impl Iterator<Item = (Condition, Result<(), Denial>)> + 'a {
        self.checked
            .iter()
            .filter_map(move |&c| Some((c, self.check(c, identity, overage)?)))
    }

    /// The route's `groups`, when it must ask Microsoft Graph about
    /// `identity`: the token has a groups overage, and every condition
    /// checked before `groups` holds (an earlier refusal decides without
    /// Graph). `None` costs nothing.
    pub fn groups_to_resolve(&self, identity: &Identity) -> Option<&[String]> {
        let groups = &self.conditions.groups;
        if groups.is_empty() || !identity.groups_overage {
            return None;
        }
        let earlier = self.checked.iter().take_while(|c| **c != Condition::Groups);
        for &condition in earlier {
            if let Some(Err(_)) = self.check(condition, identity, &Overage::NotAsked) {
                return None;
            }
        }
        Some(groups)
    }

    /// Whether the route sets `condition` (a non-empty list, `callers`,
    /// `guests: deny`); anonymous routes set none.
    pub fn sets(&self, condition: Condition) -> bool {
        let Access::Token { roles, scopes } = &self.access else {
            return false;
        };
        let c = &self.conditions;
        match condition {
            Condition::Scopes => !scopes.is_empty(),
            Condition::Roles => !roles.is_empty(),
            Condition::Apps => !c.apps.is_empty(),
            Condition::Tenants => !c.tenants.is_empty(),
            Condition::Callers => c.callers.is_some(),
            Condition::Guests => c.deny_guests,
            Condition::Groups => !c.groups.is_empty(),
            Condition::AuthContext => !c.auth_contexts.is_empty(),
        }
    }

    /// The route with [`Route::checked`] worked out from its access and
    /// conditions: the last step of compiling it.
    pub(in crate::policy) fn with_checked(mut self) -> Route {
        self.checked = Condition::ALL
            .into_iter()
            .filter(|&c| self.sets(c))
            .collect();
        self
    }

    /// What one condition asks, in words (`scope access_as_user`, `one of
    /// the roles Admin, Owner`, `user (delegated) tokens only`); `None` when
    /// the route does not set it. For `explain` and `/openapi.json`.
    pub fn describe(&self, condition: Condition) -> Option<String> {
        let Access::Token { roles, scopes } = &self.access else {
            return None;
        };
        let any = |kind: &str, list: &[String]| match list {
            [] => None,
            [one] => Some(format!("{kind} {one}")),
            many => Some(format!("one of the {kind}s {}", many.join(", "))),
        };
        let c = &self.conditions;
        match condition {
            Condition::Scopes => any("scope", scopes),
            Condition::Roles => any("role", roles),
            Condition::Apps => any("calling app", &c.apps),
            Condition::Tenants => any("tenant", &c.tenants),
            Condition::Callers => c.callers.map(|kind| {
                match kind {
                    PrincipalKind::User => "user (delegated) tokens only",
                    PrincipalKind::App => "app-only tokens only",
                }
                .to_owned()
            }),
            Condition::Guests => c.deny_guests.then(|| "no guest accounts".to_owned()),
            Condition::Groups => any("group", &c.groups),
            Condition::AuthContext => any("authentication context", &c.auth_contexts),
        }
    }

    /// One condition: `None` when the route does not set it
    /// ([`Route::sets`]). `overage` is read only for `groups` and a token
    /// with a groups overage.
    pub fn check(
        &self,
        condition: Condition,
        identity: &Identity,
        overage: &Overage,
    ) -> Option<Result<(), Denial>> {
        if !self.sets(condition) {
            return None;
        }
        let Access::Token { roles, scopes } = &self.access else {
            return None;
        };
        let c = &self.conditions;
        let holds = match condition {
            Condition::Scopes => {
                // App-only tokens carry application permissions in `roles`;
                // they never act for a user, so no scope rule is ever met by
                // one, even if a scope value was smuggled into `scopes`.
                identity.kind == PrincipalKind::User
                    && identity.scopes.iter().any(|held| scopes.contains(held))
            }
            Condition::Roles => identity.roles.iter().any(|held| roles.contains(held)),
            Condition::Apps => identity
                .app_id
                .as_deref()
                .is_some_and(|app| c.apps.iter().any(|a| a.eq_ignore_ascii_case(app))),
            Condition::Tenants => c
                .tenants
                .iter()
                .any(|t| t.eq_ignore_ascii_case(&identity.tenant_id)),
            Condition::Callers => identity.kind == c.callers?,
            Condition::Guests => !identity.guest,
            Condition::Groups if identity.groups_overage => match overage {
                Overage::Resolved { member } => *member,
                Overage::NotAsked => {
                    return Some(Err(Denial::GroupsUnresolved {
                        why: "Microsoft Graph was not asked".to_owned(),
                    }));
                }
                Overage::Unresolved(why) => {
                    return Some(Err(Denial::GroupsUnresolved { why: why.clone() }));
                }
            },
            Condition::Groups => identity
                .groups
                .iter()
                .any(|held| c.groups.iter().any(|g| g.eq_ignore_ascii_case(held))),
            Condition::AuthContext => identity
                .auth_contexts
                .iter()
                .any(|held| c.auth_contexts.contains(held)),
        };
        Some(if holds {
            Ok(())
        } else {
            Err(match condition {
                Condition::Scopes => Denial::MissingScope {
                    required: scopes.clone(),
                },
                Condition::Roles => Denial::MissingRole {
                    required: roles.clone(),
                },
                Condition::Apps => Denial::WrongApp,
                Condition::Tenants => Denial::WrongTenantForRoute,
                Condition::Callers => Denial::WrongCallerType {
                    required: identity.kind.other(),
                },
                Condition::Guests => Denial::GuestDenied,
                Condition::Groups => Denial::MissingGroup,
                Condition::AuthContext => Denial::AuthContextRequired {
                    required: c.auth_contexts.clone(),
                    challenge: identity.handles_claims_challenges,
                },
            })
        })
    }

    /// The value of an `Allow` header listing this route's methods.
    pub fn allow_header(&self) -> String {
        self.methods.to_allow_header()
    }
}
