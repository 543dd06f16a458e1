//! Microsoft Graph, for the groups overage: a user in more groups than a
//! token lists gets a token with an overage marker instead of `groups`
//! (`Identity::groups_overage`), and only Graph can say whether the user
//! is in a route's groups.
//!
//! This module owns everything about it: the HTTP client, the gateway's own
//! app token for Graph (client-credentials grant against the user's tenant,
//! `{authority}/{tid}/oauth2/v2.0/token`, kept until shortly before it
//! expires), the answers (per user, which groups are known member or not,
//! for `--graph-cache-seconds`, at most `--graph-cache-size` users), one
//! lookup in flight per user (concurrent requests of the user wait for it),
//! and a rate limit on calls (`--graph-max-calls-per-second`). It asks
//! `POST {graph}/v1.0/users/{oid}/checkMemberGroups` with at most 20 group
//! ids a call (Graph's limit), and only what the cache does not know.
//!
//! When it is asked is the stages' business ([`crate::stages::groups_to_resolve`]:
//! a valid token, a route with `groups`, every earlier condition met); what
//! it answers is an [`Overage`] for `stages::authorize`. It fails closed:
//! not configured, slow (`--graph-timeout-ms` for the whole lookup), down,
//! refusing or answering nonsense, the answer is [`Overage::Unresolved`]
//! with the reason, and the request is refused with `groups_unresolved`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::identity::Identity;
use crate::policy::Overage;

/// Microsoft Graph in Entra's public cloud.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.microsoft.com";
/// The scope of the gateway's app token for Graph (its application
/// permissions, `GroupMember.Read.All`).
pub const DEFAULT_GRAPH_SCOPE: &str = "https://graph.microsoft.com/.default";
/// Graph's limit of group ids per `checkMemberGroups` call.
pub const MAX_IDS_PER_CALL: usize = 20;
/// Token and Graph answers are small; anything near this is not what was
/// asked for.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
/// What is escaped in the `{oid}` path segment: all but GUID characters.
const PATH_SEGMENT: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC.remove(b'-');
/// An app token is renewed this long before it expires (or at half its
/// lifetime, if that is shorter).
const TOKEN_RENEW_MARGIN: Duration = Duration::from_secs(300);

/// Why a gateway without `--graph-client-id` cannot resolve an overage.
pub const NOT_CONFIGURED: &str = "Microsoft Graph is not configured (--graph-client-id)";

/// What the gateway needs to ask Graph, checked by `config.rs`.
#[derive(Clone)]
pub struct GraphSettings {
    /// The gateway's app registration (client id) holding the
    /// `GroupMember.Read.All` application permission.
    pub client_id: String,
    /// How it proves to be that app: a secret or a certificate.
    pub credential: GraphCredential,
    /// Graph's base URL, no trailing slash (`--graph-url`).
    pub graph_url: String,
    /// The scope asked for (`--graph-scope`).
    pub scope: String,
    /// Where the token endpoints are: `{authority}/{tid}/oauth2/v2.0/token`.
    pub authority: String,
    /// The longest a whole lookup may take (token, rate limit, calls).
    pub timeout: Duration,
    /// How long an answer is kept; zero keeps none.
    pub cache_ttl: Duration,
    /// How many users' answers are kept.
    pub cache_size: usize,
    /// Calls to Graph (and its token endpoint) per second, with as many at once.
    pub max_calls_per_second: u32,
}

impl std::fmt::Debug for GraphSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphSettings")
            .field("client_id", &self.client_id)
            .field("graph_url", &self.graph_url)
            .field("authority", &self.authority)
            .field("timeout", &self.timeout)
            .field("cache_ttl", &self.cache_ttl)
            .field("cache_size", &self.cache_size)
            .finish_non_exhaustive()
    }
}

/// How the gateway authenticates as its app registration at the token
/// endpoint.
#[derive(Clone)]
pub enum GraphCredential {
    /// A client secret (`--graph-client-secret-file`, trimmed).
    Secret(String),
    /// A certificate registered on the app and its private key
    /// (`--graph-client-certificate-file`, `--graph-client-key-file`): each
    /// token request carries a fresh client assertion signed with the key,
    /// as Microsoft recommends for confidential clients.
    Certificate(Arc<ClientCertificate>),
}

/// The gateway's certificate credential: what signs its client assertions.
pub struct ClientCertificate {
    key: jsonwebtoken::EncodingKey,
    /// base64url SHA-256 of the certificate's DER: the header's `x5t#S256`,
    /// by which Entra finds the certificate registered on the app.
    pub x5t_s256: String,
}

/// How long a client assertion is valid (Microsoft's examples: 10 minutes).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(600);
/// RFC 7523's client assertion type.
pub const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

impl ClientCertificate {
    /// Reads a PEM certificate (the first of the file is the app's) and its
    /// RSA private key (PKCS#8 or PKCS#1 PEM), refusing a key that is not
    /// the certificate's. Errors name the file and the flag.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self, String> {
        use rustls::pki_types::pem::PemObject as _;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let read = |flag: &str, path: &std::path::Path| {
            std::fs::read(path).map_err(|e| format!("{flag}: cannot read {}: {e}", path.display()))
        };
        let cert_pem = read("--graph-client-certificate-file", cert)?;
        let key_pem = read("--graph-client-key-file", key)?;
        let certificate = CertificateDer::pem_slice_iter(&cert_pem)
            .next()
            .and_then(Result::ok)
            .ok_or_else(|| {
                format!(
                    "--graph-client-certificate-file: {} holds no PEM certificate",
                    cert.display()
                )
            })?;
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|_| {
            format!(
                "--graph-client-key-file: {} holds no PEM private key",
                key.display()
            )
        })?;
        let provider = rustls::crypto::aws_lc_rs::default_provider();
        rustls::sign::CertifiedKey::from_der(vec![certificate.clone()], private, &provider)
            .map_err(|e| match e {
                rustls::Error::InconsistentKeys(_) => format!(
                    "--graph-client-key-file: {} is not the key of the certificate in {}",
                    key.display(),
                    cert.display()
                ),
                e => format!("--graph-client-key-file: {}: {e}", key.display()),
            })?;
        let encoding = jsonwebtoken::EncodingKey::from_rsa_pem(&key_pem).map_err(|_| {
            format!(
                "--graph-client-key-file: {} is not an RSA key (client assertions are RS256)",
                key.display()
            )
        })?;
        let sha256 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, certificate.as_ref());
        Ok(ClientCertificate {
            key: encoding,
            x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sha256.as_ref()),
        })
    }

    /// A client assertion for `client_id` at the token endpoint `audience`:
    /// RS256, header `x5t#S256`, claims `aud`, `iss` = `sub` = the client
    /// id, a fresh `jti`, `nbf` = `iat` = now, `exp` 10 minutes later.
    pub fn assertion(&self, client_id: &str, audience: &str) -> Result<String, String> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
        header.typ = Some("JWT".to_owned());
        header.x5t_s256 = Some(self.x5t_s256.clone());
        let claims = serde_json::json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": uuid::Uuid::new_v4().to_string(),
            "nbf": now,
            "iat": now,
            "exp": now + ASSERTION_LIFETIME.as_secs(),
        });
        jsonwebtoken::encode(&header, &claims, &self.key)
            .map_err(|e| format!("cannot sign a client assertion: {e}"))
    }
}

/// Why Graph could not tell a user's groups: the end of a
/// `groups_unresolved` description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unresolved {
    /// The lookup took longer than `--graph-timeout-ms`.
    Timeout(Duration),
    /// More calls than `--graph-max-calls-per-second` allows were waiting.
    RateLimited,
    /// No connection, or the connection failed.
    Unreachable(String),
    /// The token endpoint refused the gateway's credentials.
    TokenRefused { status: u16, error: String },
    /// Graph answered with an error.
    Status { status: u16, code: String },
    /// Graph (or the token endpoint) answered something unreadable.
    BadAnswer(&'static str),
    /// The gateway could not sign its client assertion.
    Credential(String),
}

impl std::fmt::Display for Unresolved {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unresolved::Timeout(t) => write!(
                f,
                "Microsoft Graph did not answer within {} ms (--graph-timeout-ms)",
                t.as_millis()
            ),
            Unresolved::RateLimited => f.write_str(
                "the gateway's Microsoft Graph lookups are over their rate limit (--graph-max-calls-per-second)",
            ),
            Unresolved::Unreachable(e) => write!(f, "Microsoft Graph cannot be reached ({e})"),
            Unresolved::TokenRefused { status, error } => write!(
                f,
                "the token endpoint refused the gateway's Graph credentials ({status} {error})"
            ),
            Unresolved::Status { status, code } if *status == 401 || *status == 403 => write!(
                f,
                "Microsoft Graph refused the lookup ({status} {code}): the gateway's app needs the GroupMember.Read.All application permission with admin consent"
            ),
            Unresolved::Status { status, code } => {
                write!(f, "Microsoft Graph answered {status} {code}")
            }
            Unresolved::BadAnswer(what) => write!(f, "Microsoft Graph answered {what}"),
            Unresolved::Credential(e) => write!(f, "the gateway's Graph credentials failed: {e}"),
        }
    }
}

/// Counters for tests and the status page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GraphStats {
    /// `checkMemberGroups` calls sent.
    pub calls: u64,
    /// App tokens fetched.
    pub token_fetches: u64,
    /// Lookups answered from the cache.
    pub cache_hits: u64,
    /// Lookups that ended unresolved.
    pub failures: u64,
}

/// A user: `(tid, oid)`, lowercase.
type UserKey = (String, String);
/// What a lookup in flight hands to the requests waiting for it.
type Flight = watch::Receiver<Option<Result<(), Unresolved>>>;

/// The gateway's Microsoft Graph client; see the module docs.
pub struct Graph {
    settings: GraphSettings,
    client: reqwest::Client,
    /// App tokens per tenant id.
    tokens: Mutex<HashMap<String, AppToken>>,
    /// One token fetch at a time.
    token_fetch: tokio::sync::Mutex<()>,
    cache: Mutex<Cache>,
    in_flight: Mutex<HashMap<UserKey, Flight>>,
    limiter: Mutex<Limiter>,
    calls: AtomicU64,
    token_fetches: AtomicU64,
    cache_hits: AtomicU64,
    failures: AtomicU64,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone)]
struct AppToken {
    token: Arc<str>,
    renew_at: Instant,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// What stands between `stages::groups_to_resolve` and `stages::authorize`
/// in the gateway and the decision endpoint: Graph's answer on whether the
/// user of `identity` is in one of `groups`, or why there is none
/// (`graph` is `None` without `--graph-client-id`).
pub async fn resolve(graph: Option<&Graph>, identity: &Identity, groups: &[String]) -> Overage {
    let Some(graph) = graph else {
        return Overage::Unresolved(NOT_CONFIGURED.to_owned());
    };
    match graph
        .member_of_any(&identity.tenant_id, &identity.object_id, groups)
        .await
    {
        Ok(member) => Overage::Resolved { member },
        Err(why) => {
            tracing::warn!(
                oid = identity.object_id.as_str(),
                tid = identity.tenant_id.as_str(),
                error = %why,
                "groups overage unresolved"
            );
            Overage::Unresolved(why.to_string())
        }
    }
}

impl Graph {
    /// Builds the client; fetches nothing.
    pub fn new(settings: GraphSettings) -> Result<Graph, String> {
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("authz-proxy/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot build the Microsoft Graph client: {e}"))?;
        let limiter = Limiter::new(settings.max_calls_per_second.max(1));
        Ok(Graph {
            cache: Mutex::new(Cache::new(settings.cache_ttl, settings.cache_size)),
            settings,
            client,
            tokens: Mutex::new(HashMap::new()),
            token_fetch: tokio::sync::Mutex::new(()),
            in_flight: Mutex::new(HashMap::new()),
            limiter: Mutex::new(limiter),
            calls: AtomicU64::new(0),
            token_fetches: AtomicU64::new(0),
            cache_hits: AtomicU64::new(0),
            failures: AtomicU64::new(0),
        })
    }

    /// The counters so far.
    pub fn stats(&self) -> GraphStats {
        GraphStats {
            calls: self.calls.load(Ordering::Relaxed),
            token_fetches: self.token_fetches.load(Ordering::Relaxed),
            cache_hits: self.cache_hits.load(Ordering::Relaxed),
            failures: self.failures.load(Ordering::Relaxed),
        }
    }

    /// Whether the user `oid` of tenant `tid` is a member of one of
    /// `groups` (transitively, as Graph counts it): from the cache, from
    /// the lookup of the same user already in flight, or from Graph.
    pub async fn member_of_any(
        &self,
        tid: &str,
        oid: &str,
        groups: &[String],
    ) -> Result<bool, Unresolved> {
        let deadline = Instant::now() + self.settings.timeout;
        let result = tokio::time::timeout_at(deadline, self.lookup(tid, oid, groups, deadline))
            .await
            .unwrap_or(Err(Unresolved::Timeout(self.settings.timeout)));
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn lookup(
        &self,
        tid: &str,
        oid: &str,
        groups: &[String],
        deadline: Instant,
    ) -> Result<bool, Unresolved> {
        let key: UserKey = (tid.to_ascii_lowercase(), oid.to_ascii_lowercase());
        loop {
            if let Some(member) = lock(&self.cache).answer(&key, groups, Instant::now()) {
                self.cache_hits.fetch_add(1, Ordering::Relaxed);
                return Ok(member);
            }
            // Join the user's lookup in flight, or start it.
            let joined = {
                let mut flights = lock(&self.in_flight);
                match flights.get(&key) {
                    Some(flight) => Err(flight.clone()),
                    None => {
                        let (tx, rx) = watch::channel(None);
                        flights.insert(key.clone(), rx);
                        Ok(tx)
                    }
                }
            };
            match joined {
                Ok(tx) => {
                    let landing = Landing {
                        flights: &self.in_flight,
                        key: &key,
                    };
                    let result = self.ask(&key, groups, deadline).await;
                    // Landed before the waiters wake: one that needs other
                    // groups starts the next lookup instead of finding this one.
                    drop(landing);
                    tx.send_replace(Some(result.as_ref().map(|_| ()).map_err(Clone::clone)));
                    return result;
                }
                // Its failure is this request's too: no second try piling
                // onto a Graph that is down. Dropped unfinished, or
                // answered: look again (the cache has its answer).
                Err(mut flight) => {
                    if let Ok(done) = flight.wait_for(Option::is_some).await
                        && let Some(Err(why)) = &*done
                    {
                        return Err(why.clone());
                    }
                }
            }
        }
    }

    /// Asks Graph about the groups the cache does not know, 20 at a time,
    /// until one is a membership.
    async fn ask(
        &self,
        key: &UserKey,
        groups: &[String],
        deadline: Instant,
    ) -> Result<bool, Unresolved> {
        let unknown = lock(&self.cache).unknown(key, groups, Instant::now());
        for chunk in unknown.chunks(MAX_IDS_PER_CALL) {
            let token = self.app_token(&key.0, deadline).await?;
            self.take_rate(deadline).await?;
            self.calls.fetch_add(1, Ordering::Relaxed);
            let members = match self.check_member_groups(&token, &key.1, chunk).await {
                Ok(members) => members,
                Err(e) => {
                    if matches!(e, Unresolved::Status { status: 401, .. }) {
                        // Perhaps revoked: the next lookup gets a new one.
                        lock(&self.tokens).remove(&key.0);
                    }
                    return Err(e);
                }
            };
            let answers: Vec<(String, bool)> = chunk
                .iter()
                .map(|g| (g.clone(), members.iter().any(|m| m.eq_ignore_ascii_case(g))))
                .collect();
            let member = answers.iter().any(|(_, m)| *m);
            lock(&self.cache).store(key, answers, Instant::now());
            if member {
                return Ok(true);
            }
        }
        // Every group the cache knew was a non-membership (else it would
        // have answered), and so were the ones just asked.
        Ok(false)
    }

    /// Waits for the rate limit, unless that would pass the deadline.
    async fn take_rate(&self, deadline: Instant) -> Result<(), Unresolved> {
        let now = Instant::now();
        let wait = lock(&self.limiter)
            .take(now, deadline.saturating_duration_since(now))
            .ok_or(Unresolved::RateLimited)?;
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        Ok(())
    }

    /// The gateway's app token for Graph in tenant `tid`.
    async fn app_token(&self, tid: &str, deadline: Instant) -> Result<Arc<str>, Unresolved> {
        let fresh = |tokens: &HashMap<String, AppToken>| {
            tokens
                .get(tid)
                .filter(|t| t.renew_at > Instant::now())
                .map(|t| t.token.clone())
        };
        if let Some(token) = fresh(&lock(&self.tokens)) {
            return Ok(token);
        }
        let _one_at_a_time = self.token_fetch.lock().await;
        if let Some(token) = fresh(&lock(&self.tokens)) {
            return Ok(token);
        }
        self.take_rate(deadline).await?;
        self.token_fetches.fetch_add(1, Ordering::Relaxed);
        let url = format!("{}/{tid}/oauth2/v2.0/token", self.settings.authority);
        let mut form = vec![
            ("grant_type", "client_credentials".to_owned()),
            ("client_id", self.settings.client_id.clone()),
            ("scope", self.settings.scope.clone()),
        ];
        match &self.settings.credential {
            GraphCredential::Secret(secret) => form.push(("client_secret", secret.clone())),
            GraphCredential::Certificate(certificate) => {
                let assertion = certificate
                    .assertion(&self.settings.client_id, &url)
                    .map_err(Unresolved::Credential)?;
                form.push(("client_assertion_type", JWT_BEARER.to_owned()));
                form.push(("client_assertion", assertion));
            }
        }
        let response = self
            .client
            .post(&url)
            .form(&form)
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        let body = self.read_capped(response).await?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct Refusal {
                error: Option<String>,
            }
            let error = serde_json::from_slice::<Refusal>(&body)
                .ok()
                .and_then(|r| r.error)
                .unwrap_or_default();
            return Err(Unresolved::TokenRefused {
                status: status.as_u16(),
                error,
            });
        }
        #[derive(Deserialize)]
        struct Issued {
            access_token: String,
            expires_in: u64,
        }
        let issued: Issued = serde_json::from_slice(&body)
            .map_err(|_| Unresolved::BadAnswer("no access token from the token endpoint"))?;
        let lifetime = Duration::from_secs(issued.expires_in);
        let margin = TOKEN_RENEW_MARGIN.min(lifetime / 2);
        let token: Arc<str> = Arc::from(issued.access_token);
        lock(&self.tokens).insert(
            tid.to_owned(),
            AppToken {
                token: token.clone(),
                renew_at: Instant::now() + (lifetime - margin),
            },
        );
        Ok(token)
    }

    /// `POST /v1.0/users/{oid}/checkMemberGroups`: which of `groups` the
    /// user is a member of.
    async fn check_member_groups(
        &self,
        token: &str,
        oid: &str,
        groups: &[String],
    ) -> Result<Vec<String>, Unresolved> {
        // `oid` is checked to be non-empty by the claim rules; a path
        // segment must not carry anything else.
        let oid: String = percent_encoding::utf8_percent_encode(oid, PATH_SEGMENT).to_string();
        let url = format!(
            "{}/v1.0/users/{oid}/checkMemberGroups",
            self.settings.graph_url
        );
        let response = self
            .client
            .post(&url)
            .bearer_auth(token)
            .json(&serde_json::json!({ "groupIds": groups }))
            .send()
            .await
            .map_err(|e| self.failed(e))?;
        let status = response.status();
        let body = self.read_capped(response).await?;
        if !status.is_success() {
            #[derive(Deserialize)]
            struct GraphError {
                error: Option<Code>,
            }
            #[derive(Deserialize)]
            struct Code {
                code: Option<String>,
            }
            let code = serde_json::from_slice::<GraphError>(&body)
                .ok()
                .and_then(|e| e.error?.code)
                .unwrap_or_default();
            return Err(Unresolved::Status {
                status: status.as_u16(),
                code,
            });
        }
        #[derive(Deserialize)]
        struct Values {
            value: Vec<String>,
        }
        serde_json::from_slice::<Values>(&body)
            .map(|v| v.value)
            .map_err(|_| Unresolved::BadAnswer("something other than a list of group ids"))
    }
}

impl Graph {
    /// A failed exchange: the client's own timeout is the lookup's.
    fn failed(&self, e: reqwest::Error) -> Unresolved {
        if e.is_timeout() {
            Unresolved::Timeout(self.settings.timeout)
        } else if e.is_connect() {
            Unresolved::Unreachable("connection failed".to_owned())
        } else {
            Unresolved::Unreachable("the connection broke".to_owned())
        }
    }

    async fn read_capped(&self, mut response: reqwest::Response) -> Result<Vec<u8>, Unresolved> {
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| self.failed(e))? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(Unresolved::BadAnswer("more than a lookup's answer"));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }
}

/// Removes a user's lookup from the flights when it ends, answered or
/// dropped (its waiters then see the channel closed and look again).
struct Landing<'a> {
    flights: &'a Mutex<HashMap<UserKey, Flight>>,
    key: &'a UserKey,
}

impl Drop for Landing<'_> {
    fn drop(&mut self) {
        lock(self.flights).remove(self.key);
    }
}

/// Graph's answers per user: which groups are known member (`true`) or
/// not, since `fetched` (the oldest answer in it decides its expiry).
#[derive(Debug)]
struct Cache {
    ttl: Duration,
    capacity: usize,
    users: HashMap<UserKey, Known>,
}

#[derive(Debug)]
struct Known {
    fetched: Instant,
    groups: HashMap<String, bool>,
}

impl Cache {
    fn new(ttl: Duration, capacity: usize) -> Cache {
        Cache {
            ttl,
            capacity,
            users: HashMap::new(),
        }
    }

    fn fresh(&self, key: &UserKey, now: Instant) -> Option<&Known> {
        self.users
            .get(key)
            .filter(|k| now.saturating_duration_since(k.fetched) < self.ttl)
    }

    /// `Some(true)`: a member of one of `groups`; `Some(false)`: known to
    /// be in none; `None`: not known.
    fn answer(&self, key: &UserKey, groups: &[String], now: Instant) -> Option<bool> {
        let known = self.fresh(key, now)?;
        let mut all_known = true;
        for g in groups {
            match known.groups.get(g) {
                Some(true) => return Some(true),
                Some(false) => {}
                None => all_known = false,
            }
        }
        all_known.then_some(false)
    }

    /// The groups of `groups` the cache knows nothing about.
    fn unknown(&self, key: &UserKey, groups: &[String], now: Instant) -> Vec<String> {
        match self.fresh(key, now) {
            None => groups.to_vec(),
            Some(known) => groups
                .iter()
                .filter(|g| !known.groups.contains_key(*g))
                .cloned()
                .collect(),
        }
    }

    fn store(&mut self, key: &UserKey, answers: Vec<(String, bool)>, now: Instant) {
        if self.ttl.is_zero() || self.capacity == 0 {
            return;
        }
        if self.fresh(key, now).is_none() {
            if !self.users.contains_key(key) && self.users.len() >= self.capacity {
                let ttl = self.ttl;
                self.users
                    .retain(|_, k| now.saturating_duration_since(k.fetched) < ttl);
                if self.users.len() >= self.capacity {
                    let oldest = self
                        .users
                        .iter()
                        .min_by_key(|(_, k)| k.fetched)
                        .map(|(key, _)| key.clone());
                    if let Some(oldest) = oldest {
                        self.users.remove(&oldest);
                    }
                }
            }
            self.users.insert(
                key.clone(),
                Known {
                    fetched: now,
                    groups: HashMap::new(),
                },
            );
        }
        if let Some(known) = self.users.get_mut(key) {
            known.groups.extend(answers);
        }
    }
}

/// A token bucket (as GCRA): `rate` calls a second, up to `rate` at once.
#[derive(Debug)]
struct Limiter {
    interval: Duration,
    burst: Duration,
    /// When the bucket is next empty: the theoretical arrival time.
    tat: Option<Instant>,
}

impl Limiter {
    fn new(rate: u32) -> Limiter {
        let interval = Duration::from_secs(1) / rate;
        Limiter {
            interval,
            burst: interval * (rate - 1),
            tat: None,
        }
    }

    /// Takes one call: how long to wait first, or `None` if longer than
    /// `max_wait` (the call is then not counted).
    fn take(&mut self, now: Instant, max_wait: Duration) -> Option<Duration> {
        let tat = self.tat.map_or(now, |t| t.max(now));
        let allowed_at = tat.checked_sub(self.burst).unwrap_or(now);
        let wait = allowed_at.saturating_duration_since(now);
        if wait > max_wait {
            return None;
        }
        self.tat = Some(tat + self.interval);
        Some(wait)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> UserKey {
        ("t".to_owned(), "o".to_owned())
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn the_cache_answers_membership_from_any_known_member_and_non_membership_from_all() {
        let now = Instant::now();
        let mut cache = Cache::new(Duration::from_secs(300), 10);
        assert_eq!(cache.answer(&key(), &ids(&["a"]), now), None);
        cache.store(&key(), vec![("a".into(), false), ("b".into(), true)], now);
        assert_eq!(cache.answer(&key(), &ids(&["a"]), now), Some(false));
        assert_eq!(cache.answer(&key(), &ids(&["a", "b"]), now), Some(true));
        assert_eq!(cache.answer(&key(), &ids(&["c", "b"]), now), Some(true));
        assert_eq!(cache.answer(&key(), &ids(&["a", "c"]), now), None);
        assert_eq!(cache.unknown(&key(), &ids(&["a", "c"]), now), ids(&["c"]));
        // Expired: nothing is known.
        let later = now + Duration::from_secs(300);
        assert_eq!(cache.answer(&key(), &ids(&["b"]), later), None);
        assert_eq!(cache.unknown(&key(), &ids(&["a"]), later), ids(&["a"]));
    }

    #[test]
    fn the_cache_is_bounded_and_drops_the_oldest_user() {
        let now = Instant::now();
        let mut cache = Cache::new(Duration::from_secs(300), 2);
        let user = |o: &str| ("t".to_owned(), o.to_owned());
        cache.store(&user("1"), vec![("a".into(), true)], now);
        cache.store(
            &user("2"),
            vec![("a".into(), true)],
            now + Duration::from_secs(1),
        );
        cache.store(
            &user("3"),
            vec![("a".into(), true)],
            now + Duration::from_secs(2),
        );
        assert_eq!(cache.users.len(), 2);
        let later = now + Duration::from_secs(2);
        assert_eq!(cache.answer(&user("1"), &ids(&["a"]), later), None);
        assert_eq!(cache.answer(&user("3"), &ids(&["a"]), later), Some(true));
        // No cache at all with a zero lifetime.
        let mut none = Cache::new(Duration::ZERO, 2);
        none.store(&user("1"), vec![("a".into(), true)], now);
        assert!(none.users.is_empty());
    }

    #[test]
    fn the_rate_limit_allows_a_burst_then_spaces_calls() {
        let now = Instant::now();
        let mut limiter = Limiter::new(4);
        for _ in 0..4 {
            assert_eq!(limiter.take(now, Duration::ZERO), Some(Duration::ZERO));
        }
        assert_eq!(limiter.take(now, Duration::from_millis(100)), None);
        assert_eq!(
            limiter.take(now, Duration::from_millis(250)),
            Some(Duration::from_millis(250))
        );
        // A second later the bucket has refilled.
        let later = now + Duration::from_secs(2);
        assert_eq!(limiter.take(later, Duration::ZERO), Some(Duration::ZERO));
    }

    #[test]
    fn reasons_say_what_to_do() {
        assert_eq!(
            Unresolved::Timeout(Duration::from_millis(250)).to_string(),
            "Microsoft Graph did not answer within 250 ms (--graph-timeout-ms)"
        );
        assert!(
            Unresolved::Status {
                status: 403,
                code: "Authorization_RequestDenied".into()
            }
            .to_string()
            .contains("GroupMember.Read.All")
        );
    }
}
