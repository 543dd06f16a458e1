//! Authentication: turning `Authorization: Bearer <token>` into a validated
//! [`Identity`], failing closed.
//!
//! The stages of [`Authenticator::authenticate`], cheapest first:
//! 1. find the one bearer token (`bearer.rs`);
//! 2. serve it from the verified-token cache if it is there, unexpired, and
//!    its key is still current (`cache.rs`);
//! 3. split it and check the JOSE header: allowed `alg`, a `kid` (`jws.rs`);
//! 4. find the key by `kid` in the key set from OIDC discovery, asking for one
//!    cooldown-limited refresh when the kid is unknown (`keys.rs`, `refresh.rs`);
//! 5. verify the signature — only then are the claims read;
//! 6. check the claims the Entra way: lifetime, exact `iss` for the token's
//!    `tid`, a signing key published for that issuer, an allowed tenant,
//!    audience, `oid`, and some permission (`claims.rs`).
//!
//! Keys are trusted only from a discovery document that names the expected
//! issuer (`keys.rs`); Microsoft Graph tokens and non-object headers are
//! refused at step 3.
//!
//! Rejections before step 5 cost no cryptography and never fetch keys beyond
//! the cooldown. Where this module's job ends: it says *who* the caller is;
//! whether they may call a route is the policy's business.

mod bearer;
mod cache;
mod claims;
mod error;
mod jws;
mod keys;
pub mod offline;
mod refresh;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, AlgorithmFamily};

use self::cache::TokenCache;
use self::claims::{ClaimRules, KeyIssuer, TENANT_TEMPLATE, TenantRule};
pub use self::error::{AuthError, AuthSetupError, KeyFetchError};
use self::keys::{KeyFetcher, KeySet, VerifyingKey, http_url};
use self::refresh::Refresher;
use crate::identity::Authenticated;

/// First retry delay while the keys have never loaded (or after a failure).
const INITIAL_BACKOFF: Duration = Duration::from_secs(1);
/// The retry delay doubles up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// Longest a request with an unknown kid waits for the refresh it asked for:
/// long enough for a healthy IdP, short enough not to pile up requests.
const MAX_UNKNOWN_KID_WAIT: Duration = Duration::from_secs(5);

/// Which tenants' tokens are accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TenantMode {
    /// A single-tenant API: only this tenant GUID may issue tokens.
    Single(String),
    /// A multi-tenant API (`organizations` / `common` metadata, whose issuer is
    /// the `{tenantid}` template): the token's own `tid` makes the expected
    /// issuer, then the tenant must be allowed.
    Multi {
        /// Which tenants are allowed.
        allowed: AllowedTenants,
    },
}

/// The tenant allow-list of a multi-tenant API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllowedTenants {
    /// Every tenant, spelled out on purpose (`*`).
    Any,
    /// Only these tenant GUIDs.
    List(Vec<String>),
}

/// Everything authentication needs, filled in by the server's configuration.
#[derive(Debug, Clone)]
pub struct AuthSettings {
    /// Which tenants may issue tokens.
    pub tenant: TenantMode,
    /// Accepted `aud` values, any-of: `<client id>`, `api://<client id>`, extras.
    pub audiences: Vec<String>,
    /// Authority base, e.g. `https://login.microsoftonline.com`: the v2 issuer
    /// is `{instance}/{tid}/v2.0`. A trailing `/` is ignored.
    pub instance: String,
    /// Base of the v1 issuer, e.g. `https://sts.windows.net`: the v1 issuer is
    /// `{sts_instance}/{tid}/`, with the trailing slash. A trailing `/` here
    /// is ignored.
    pub sts_instance: String,
    /// Where the OIDC discovery document is fetched from.
    ///
    /// When this URL's origin differs from `instance`'s and the discovery
    /// document's `jwks_uri` names the `instance` origin, the keys are fetched
    /// from this URL's origin instead (path and query kept): in docker compose
    /// tokens name `http://localhost:9400` while the gateway reaches the IdP
    /// as `http://dev-idp:9400`.
    pub metadata_url: String,
    /// Clock skew allowed on `exp` and `nbf`.
    pub leeway: Duration,
    /// Signature algorithms allowed (RSA only); `RS256` is what Entra uses.
    pub algorithms: Vec<Algorithm>,
    /// Time between scheduled key refreshes.
    pub refresh_interval: Duration,
    /// At most one key fetch per this period is triggered by unknown kids.
    pub unknown_kid_cooldown: Duration,
    /// Timeout of each discovery and JWKS request.
    pub http_timeout: Duration,
    /// Verified tokens kept in the cache; 0 disables the cache.
    pub token_cache_size: usize,
}

impl AuthSettings {
    /// Settings with the documented defaults: the v1 issuer base
    /// `https://sts.windows.net`, 60 s leeway, `RS256`, refresh every hour,
    /// 60 s unknown-kid cooldown, 10 s HTTP timeout, 10,000 cached tokens.
    pub fn new(
        tenant: TenantMode,
        audiences: Vec<String>,
        instance: impl Into<String>,
        metadata_url: impl Into<String>,
    ) -> Self {
        AuthSettings {
            tenant,
            audiences,
            instance: instance.into(),
            sts_instance: "https://sts.windows.net".to_owned(),
            metadata_url: metadata_url.into(),
            leeway: Duration::from_secs(60),
            algorithms: vec![Algorithm::RS256],
            refresh_interval: Duration::from_secs(3600),
            unknown_kid_cooldown: Duration::from_secs(60),
            http_timeout: Duration::from_secs(10),
            token_cache_size: 10_000,
        }
    }
}

/// Validates bearer tokens against keys from OIDC discovery.
///
/// Built once at start-up and shared behind an `Arc`; call
/// [`Authenticator::spawn_refresh_task`] to load and refresh the keys.
#[derive(Debug)]
pub struct Authenticator {
    /// Replaced whole when a policy brings other route audiences
    /// ([`Authenticator::set_route_audiences`]); read once per verification.
    rules: RwLock<Arc<ClaimRules>>,
    algorithms: Vec<Algorithm>,
    /// `None` until a key set has loaded once; afterwards never `None` again:
    /// a failed refresh keeps the last good set.
    keys: RwLock<Option<Arc<KeySet>>>,
    fetcher: KeyFetcher,
    refresher: Arc<Refresher>,
    cache: TokenCache,
    refresh_interval: Duration,
    unknown_kid_wait: Duration,
    /// Fetches started (discovery + JWKS counts as one).
    fetches: AtomicU64,
    /// One fetch at a time, so a slow old answer cannot overwrite a newer one.
    fetch_lock: tokio::sync::Mutex<()>,
    /// Counters and times for metrics and the status page ([`AuthStats`]).
    stats: StatsCounters,
    /// The authority's authorize endpoint, named by claims challenges.
    authorization_uri: Arc<str>,
}

/// What operators watch of authentication: key fetches, the key set, the
/// token cache. A snapshot, read by `/metrics` and the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AuthStats {
    /// Key fetches that loaded a key set.
    pub fetches_succeeded: u64,
    /// Key fetches that failed (the last good keys stayed in use).
    pub fetches_failed: u64,
    /// Keys in the current set; 0 until the first load.
    pub keys: usize,
    /// When a fetch last succeeded.
    pub last_refresh: Option<SystemTime>,
    /// When the refresh task plans its next scheduled fetch.
    pub next_refresh: Option<SystemTime>,
    /// Token-cache lookups that found a valid entry.
    pub cache_hits: u64,
    /// Token-cache lookups that did not (the token was then verified).
    pub cache_misses: u64,
    /// Verified tokens the cache holds.
    pub cached_tokens: usize,
}

/// The atomics behind [`AuthStats`]; times are milliseconds since the epoch, 0 = never.
#[derive(Debug, Default)]
struct StatsCounters {
    fetches_succeeded: AtomicU64,
    fetches_failed: AtomicU64,
    last_refresh_ms: AtomicU64,
    next_refresh_ms: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

impl Authenticator {
    /// Checks the settings; binds nothing and fetches nothing.
    pub fn new(settings: AuthSettings) -> Result<Self, AuthSetupError> {
        if settings.audiences.is_empty() {
            return Err(AuthSetupError::NoAudience);
        }
        if settings.audiences.iter().any(|a| a.trim().is_empty()) {
            return Err(AuthSetupError::EmptyAudience);
        }
        if settings.algorithms.is_empty() {
            return Err(AuthSetupError::NoAlgorithm);
        }
        // Entra signs with RSA keys; an HMAC algorithm would turn the public
        // key into a shared secret (RFC 8725 §2.1).
        if let Some(&alg) = settings
            .algorithms
            .iter()
            .find(|a| a.family() != AlgorithmFamily::Rsa)
        {
            return Err(AuthSetupError::UnsupportedAlgorithm(alg));
        }
        if settings.refresh_interval.is_zero() {
            return Err(AuthSetupError::ZeroDuration("refresh_interval"));
        }
        if settings.http_timeout.is_zero() {
            return Err(AuthSetupError::ZeroDuration("http_timeout"));
        }
        let tenants = match &settings.tenant {
            TenantMode::Single(t) => TenantRule::One(tenant_id(t)?),
            TenantMode::Multi {
                allowed: AllowedTenants::Any,
            } => TenantRule::Any,
            TenantMode::Multi {
                allowed: AllowedTenants::List(list),
            } => {
                if list.is_empty() {
                    return Err(AuthSetupError::EmptyTenantList);
                }
                TenantRule::List(
                    list.iter()
                        .map(|t| tenant_id(t))
                        .collect::<Result<_, _>>()?,
                )
            }
        };
        let instance = settings.instance.trim_end_matches('/').to_owned();
        let sts_instance = settings.sts_instance.trim_end_matches('/').to_owned();
        http_url("instance", &instance)?;
        http_url("sts_instance", &sts_instance)?;
        // OpenID Connect Discovery 1.0 §4.3: the document must name the
        // issuer it was fetched for. v2 or v1 metadata of the configured
        // tenant, or Entra's `{tenantid}` template for a multi-tenant API.
        let issuer_tid = match &tenants {
            TenantRule::One(tid) => tid.as_str(),
            TenantRule::List(_) | TenantRule::Any => TENANT_TEMPLATE,
        };
        let expected_issuers = vec![
            format!("{instance}/{issuer_tid}/v2.0"),
            format!("{sts_instance}/{issuer_tid}/"),
        ];
        let fetcher = KeyFetcher::new(
            &settings.metadata_url,
            &instance,
            expected_issuers,
            settings.http_timeout,
        )?;

        // Where a client signs in again after a claims challenge: the
        // tenant's own authorize endpoint, or `common` for a multi-tenant
        // API (as in Microsoft's claims-challenge documentation).
        let authorization_uri = Arc::from(format!(
            "{instance}/{}/oauth2/v2.0/authorize",
            match &tenants {
                TenantRule::One(tid) => tid.as_str(),
                TenantRule::List(_) | TenantRule::Any => "common",
            }
        ));
        let mut algorithms = settings.algorithms;
        algorithms.dedup();
        Ok(Authenticator {
            rules: RwLock::new(Arc::new(ClaimRules {
                audiences: settings.audiences,
                route_audiences: Arc::from([]),
                instance,
                sts_instance,
                tenants,
                leeway: settings.leeway.as_secs(),
            })),
            algorithms,
            keys: RwLock::new(None),
            fetcher,
            refresher: Arc::new(Refresher::new(settings.unknown_kid_cooldown)),
            cache: TokenCache::new(settings.token_cache_size),
            refresh_interval: settings.refresh_interval,
            unknown_kid_wait: (settings.http_timeout * 2).min(MAX_UNKNOWN_KID_WAIT),
            fetches: AtomicU64::new(0),
            fetch_lock: tokio::sync::Mutex::new(()),
            stats: StatsCounters::default(),
            authorization_uri,
        })
    }

    /// Fetches discovery, then the JWKS it names, and swaps in the new keys.
    ///
    /// Returns how many usable keys were loaded. On any failure (unreachable,
    /// timeout, non-2xx, HTML, an empty or unusable key set) the last good
    /// keys stay in use. Fetches are serialised.
    pub async fn refresh_keys(&self) -> Result<usize, KeyFetchError> {
        let _one_at_a_time = self.fetch_lock.lock().await;
        let _fetch = self.refresher.begin_fetch();
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let previous = self.current_keys();
        let set = match self
            .fetcher
            .fetch(&self.algorithms, previous.as_deref())
            .await
        {
            Ok(set) => set,
            Err(error) => {
                self.stats.fetches_failed.fetch_add(1, Ordering::Relaxed);
                return Err(error);
            }
        };
        let count = set.len();
        *self.keys.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(set));
        self.stats.fetches_succeeded.fetch_add(1, Ordering::Relaxed);
        self.stats
            .last_refresh_ms
            .store(unix_now_ms(), Ordering::Relaxed);
        Ok(count)
    }

    /// Starts the background task that loads the keys and keeps them fresh.
    ///
    /// Until the first load succeeds it retries with backoff (1 s doubling to
    /// 30 s); then it refreshes every `refresh_interval` (after a failure,
    /// sooner, with the same backoff). It also serves refreshes asked for by
    /// requests with an unknown `kid`, at most one per cooldown, coalesced.
    /// The task holds no strong reference: it ends when the `Authenticator`
    /// is dropped, or when the handle is aborted.
    pub fn spawn_refresh_task(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let this = Arc::downgrade(self);
        let refresher = Arc::clone(&self.refresher);
        tokio::spawn(async move {
            let _running = refresher.task_started();
            let mut backoff = INITIAL_BACKOFF;
            loop {
                let Some(auth) = this.upgrade() else { return };
                let was_healthy = auth.keys_loaded() && backoff == INITIAL_BACKOFF;
                let delay = match auth.refresh_keys().await {
                    Ok(count) => {
                        if was_healthy {
                            tracing::debug!(keys = count, "signing keys refreshed");
                        } else {
                            tracing::info!(keys = count, "signing keys loaded");
                        }
                        backoff = INITIAL_BACKOFF;
                        auth.refresh_interval
                    }
                    Err(error @ KeyFetchError::UnexpectedIssuer { .. }) => {
                        // A configuration mistake, not an outage: say so loudly.
                        tracing::error!(
                            error = %ErrorChain(&error),
                            keys_loaded = auth.keys_loaded(),
                            retry_in_s = backoff.as_secs(),
                            "the discovery document is not the expected issuer's; none of its keys is trusted"
                        );
                        let delay = backoff.min(auth.refresh_interval);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        delay
                    }
                    Err(error) => {
                        tracing::warn!(
                            error = %ErrorChain(&error),
                            keys_loaded = auth.keys_loaded(),
                            retry_in_s = backoff.as_secs(),
                            "signing key refresh failed; keeping the last good keys"
                        );
                        let delay = backoff.min(auth.refresh_interval);
                        backoff = (backoff * 2).min(MAX_BACKOFF);
                        delay
                    }
                };
                auth.stats.next_refresh_ms.store(
                    unix_now_ms().saturating_add(delay.as_millis() as u64),
                    Ordering::Relaxed,
                );
                drop(auth);
                let deadline = tokio::time::Instant::now() + delay;
                loop {
                    tokio::select! {
                        () = tokio::time::sleep_until(deadline) => break,
                        () = refresher.woken() => {
                            if this.strong_count() == 0 {
                                return;
                            }
                            if refresher.is_requested() {
                                break;
                            }
                        }
                    }
                }
            }
        })
    }

    /// The audiences routes accept besides the gateway's own (the policy's
    /// [`route_audiences`](crate::policy::Policy::route_audiences)); set when
    /// a policy is loaded. Tokens already cached stay cached: the authorize
    /// stage holds every token to its route's audiences anyway.
    pub fn set_route_audiences(&self, audiences: Vec<String>) {
        let mut rules = self.rules.write().unwrap_or_else(|p| p.into_inner());
        if *rules.route_audiences != *audiences {
            let mut next = ClaimRules::clone(&rules);
            next.route_audiences = audiences.into();
            *rules = Arc::new(next);
        }
    }

    /// The authority's authorize endpoint
    /// (`{instance}/{tenant}/oauth2/v2.0/authorize`, `common` for a
    /// multi-tenant API): the `authorization_uri` of a claims challenge.
    pub fn authorization_uri(&self) -> &Arc<str> {
        &self.authorization_uri
    }

    /// Whether a key set has ever loaded (for `/ready`).
    pub fn keys_loaded(&self) -> bool {
        self.keys
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
    }

    /// How many key fetches (discovery + JWKS) have started: scheduled,
    /// triggered by unknown kids, or explicit. For tests and metrics.
    pub fn fetch_count(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }

    /// How many key fetches have completed, successfully or not.
    pub fn fetches_completed(&self) -> u64 {
        self.refresher.completed()
    }

    /// A receiver that changes each time a key fetch completes: lets tests
    /// and readiness probes wait for a fetch without polling.
    pub fn watch_fetches(&self) -> tokio::sync::watch::Receiver<u64> {
        self.refresher.subscribe()
    }

    /// How many verified tokens the cache holds.
    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Key fetches, the key set and the token cache, for metrics and the
    /// status page.
    pub fn stats(&self) -> AuthStats {
        let time = |ms: &AtomicU64| match ms.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(UNIX_EPOCH + Duration::from_millis(ms)),
        };
        AuthStats {
            fetches_succeeded: self.stats.fetches_succeeded.load(Ordering::Relaxed),
            fetches_failed: self.stats.fetches_failed.load(Ordering::Relaxed),
            keys: self.current_keys().map_or(0, |keys| keys.len()),
            last_refresh: time(&self.stats.last_refresh_ms),
            next_refresh: time(&self.stats.next_refresh_ms),
            cache_hits: self.stats.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.stats.cache_misses.load(Ordering::Relaxed),
            cached_tokens: self.cache.len(),
        }
    }

    fn current_keys(&self) -> Option<Arc<KeySet>> {
        self.keys.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Validates the request's bearer token and returns who the caller is.
    pub async fn authenticate(
        &self,
        headers: &http::HeaderMap,
    ) -> Result<Arc<Authenticated>, AuthError> {
        let credential = bearer::credential(headers)?;
        let Some(keys) = self.current_keys() else {
            // A malformed token is the client's fault whatever our state.
            jws::parse(bearer::check(credential)?, &self.algorithms)?;
            return Err(AuthError::KeysUnavailable);
        };
        let now = unix_now();
        // The cache first: it holds only tokens that passed every check
        // below, so a hit (the same bytes) needs no syntax check, which
        // costs as much as the lookup's hash. A credential longer than a
        // token may be is never hashed.
        let hash = (self.cache.is_enabled() && credential.len() <= bearer::MAX_TOKEN_LEN)
            .then(|| TokenCache::hash(credential));
        if let Some(hash) = &hash
            && let Some(identity) = self.cache.get(hash, &keys, now)
        {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(identity);
        }
        let token = bearer::check(credential)?;
        if hash.is_some() {
            self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        }

        let parsed = jws::parse(token, &self.algorithms)?;
        let key = match keys.get(&parsed.kid) {
            Some(key) => Arc::clone(key),
            None => self.key_after_refresh(&parsed.kid).await?,
        };
        key.verify(&parsed)?;
        let signer = KeyIssuer {
            key: key.issuer(),
            discovery: keys.issuer(),
        };
        let rules = Arc::clone(&self.rules.read().unwrap_or_else(|p| p.into_inner()));
        let caller = Arc::new(Authenticated::new(rules.check(
            parsed.payload,
            now,
            signer,
        )?));
        if let Some(hash) = hash {
            self.cache.insert(hash, &caller, &parsed.kid, &key, now);
        }
        Ok(caller)
    }

    /// An unknown kid: perhaps the keys rotated. Ask the refresh task for a
    /// fetch (cooldown-limited, coalesced), wait for it briefly, look again.
    async fn key_after_refresh(&self, kid: &str) -> Result<Arc<VerifyingKey>, AuthError> {
        let Some(mut fetched) = self.refresher.request() else {
            return Err(AuthError::UnknownKey);
        };
        // A timeout or a stopped task: look again all the same.
        let _ = tokio::time::timeout(self.unknown_kid_wait, fetched.changed()).await;
        self.current_keys()
            .and_then(|keys| keys.get(kid).cloned())
            .ok_or(AuthError::UnknownKey)
    }
}

impl Drop for Authenticator {
    /// Wakes the refresh task so it notices it has nothing left to refresh.
    fn drop(&mut self) {
        self.refresher.wake_task();
    }
}

/// A tenant id from the settings: a GUID in practice; lowercase, so the
/// comparison with `tid` does not depend on how it was typed.
fn tenant_id(value: &str) -> Result<String, AuthSetupError> {
    let t = value.trim();
    if t.is_empty() || t.len() > 64 || !t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(AuthSetupError::InvalidTenant(value.to_owned()));
    }
    Ok(t.to_ascii_lowercase())
}

/// Seconds since the epoch. A clock before 1970 reads as the end of time, so
/// every token counts as expired: fail closed rather than accept everything.
fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(u64::MAX)
}

/// Milliseconds since the epoch, for the stats (0 would read as "never").
fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(1, |d| (d.as_millis() as u64).max(1))
}

/// Displays an error with its sources, `a: b: c`, for one log line.
struct ErrorChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The server shares one `Authenticator` across all connections.
    #[test]
    fn authenticator_is_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Authenticator>();
        assert_send_sync::<AuthError>();
        assert_send_sync::<KeyFetchError>();
    }

    /// The claims challenge's `authorization_uri`: where this API's users
    /// sign in, on `--instance`.
    #[test]
    fn claims_challenge_authority_is_the_tenants_authorize_endpoint_or_common() {
        let uri = |tenant: TenantMode| {
            let settings = AuthSettings::new(
                tenant,
                vec!["api://x".into()],
                "https://login.example/",
                "https://login.example/meta",
            );
            Authenticator::new(settings)
                .unwrap()
                .authorization_uri()
                .to_string()
        };
        assert_eq!(
            uri(TenantMode::Single(
                "AAAAAAAA-0000-4000-8000-000000000001".into()
            )),
            "https://login.example/aaaaaaaa-0000-4000-8000-000000000001/oauth2/v2.0/authorize"
        );
        assert_eq!(
            uri(TenantMode::Multi {
                allowed: AllowedTenants::Any
            }),
            "https://login.example/common/oauth2/v2.0/authorize"
        );
    }

    #[test]
    fn every_reason_has_a_status_and_a_safe_description() {
        let all = AuthError::one_of_each();
        let table: Vec<_> = all
            .iter()
            .map(|e| (e.reason(), e.status().as_u16(), e.www_authenticate_error()))
            .collect();
        let expected = [
            ("missing_token", 401, None),
            ("invalid_request", 400, Some("invalid_request")),
            ("malformed_token", 401, Some("invalid_token")),
            ("graph_token", 401, Some("invalid_token")),
            ("disallowed_algorithm", 401, Some("invalid_token")),
            ("unknown_key", 401, Some("invalid_token")),
            ("bad_signature", 401, Some("invalid_token")),
            ("expired", 401, Some("invalid_token")),
            ("not_yet_valid", 401, Some("invalid_token")),
            ("wrong_audience", 401, Some("invalid_token")),
            ("wrong_issuer", 401, Some("invalid_token")),
            ("wrong_tenant", 401, Some("invalid_token")),
            ("missing_claim", 401, Some("invalid_token")),
            ("invalid_claim", 401, Some("invalid_token")),
            ("no_permissions", 401, Some("invalid_token")),
            ("keys_unavailable", 503, None),
        ];
        assert_eq!(table, expected);
        for e in &all {
            let d = e.description();
            // RFC 6750 §3: error_description is %x20-21 / %x23-5B / %x5D-7E.
            assert!(
                d.bytes()
                    .all(|b| (0x20..=0x7e).contains(&b) && b != b'"' && b != b'\\'),
                "{d}"
            );
        }
        assert_eq!(
            AuthError::MissingClaim("oid").description(),
            "the token has no `oid` claim"
        );
    }
}
