//! Command-line flags (each with an environment variable) and their checking.
//!
//! Two stages, as for the policy: [`Flags`] is what clap parsed, [`Config`] is
//! what the gateway runs with. [`Flags::into_config`] reports every bad value
//! at once, and nothing binds a port before the whole configuration is valid.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::assertion::{self, AssertionSettings, KeySource, Signer};
use crate::auth::{AllowedTenants, AuthSettings, TenantMode};
use crate::docs::DocsSettings;
use crate::graph::{ClientCertificate, Graph, GraphCredential, GraphSettings};
use crate::policy::Policy;
use crate::tls;
use crate::upstream::{TlsFiles, TlsSetting, Upstream};

/// The public cloud's authority: the v2 issuer is `{instance}/{tid}/v2.0`.
pub const DEFAULT_INSTANCE: &str = "https://login.microsoftonline.com";
/// The v1 issuer's base: `{sts}/{tid}/`.
pub const DEFAULT_STS_INSTANCE: &str = "https://sts.windows.net";

/// authz-proxy: validates Entra ID access tokens, decides every request from
/// policy.yaml, and forwards allowed requests with trusted identity headers.
#[derive(Debug, Parser)]
#[command(name = "authz-proxy", version, args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: Flags,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the gateway (the default when no subcommand is given).
    Serve(Box<Flags>),
    /// Parse and compile a policy file offline; print `ok: N routes` or every
    /// error, and warnings (shadowed routes, `*` for `**`, anonymous overlaps,
    /// misspelt roles and scopes), each as `file:line:col`.
    Check(crate::cli::check::CheckArgs),
    /// Show how the policy decides one request, and what the client would get.
    Explain(Box<crate::cli::explain::ExplainArgs>),
    /// Run a file of cases (request, caller, expected outcome) against the policy.
    Test(crate::cli::cases::TestArgs),
}

/// Flags of the gateway itself.
#[derive(Debug, Clone, Args)]
pub struct Flags {
    /// Address the gateway listens on.
    #[arg(long, env = "PROXY_LISTEN", default_value = "0.0.0.0:8000")]
    pub listen: String,
    /// Address of the admin listener (/health, /ready). Keep it private.
    #[arg(long, env = "PROXY_ADMIN_LISTEN", default_value = "127.0.0.1:9000")]
    pub admin_listen: String,
    /// Address of the decision endpoint for an existing ingress (nginx
    /// `auth_request`, Caddy `forward_auth`, Traefik `forwardAuth`, Envoy
    /// `ext_authz`): it decides the request the ingress describes and
    /// forwards nothing. Unset: no decision endpoint. Keep it private: only
    /// the ingress may reach it.
    #[arg(long, env = "PROXY_DECISION_LISTEN")]
    pub decision_listen: Option<String>,
    /// The backend every allowed request is forwarded to, e.g. http://127.0.0.1:8081
    /// (or https://…, verified against the system's roots or --upstream-ca).
    #[arg(long, env = "UPSTREAM_URL")]
    pub upstream: Option<String>,
    /// An https --upstream: PEM certificates to trust instead of the system's roots.
    #[arg(long, env = "UPSTREAM_CA")]
    pub upstream_ca: Option<PathBuf>,
    /// An https --upstream that asks for a client certificate (mTLS): the
    /// gateway's PEM certificate chain (with --upstream-client-key).
    #[arg(long, env = "UPSTREAM_CLIENT_CERT")]
    pub upstream_client_cert: Option<PathBuf>,
    /// PEM private key for --upstream-client-cert.
    #[arg(long, env = "UPSTREAM_CLIENT_KEY")]
    pub upstream_client_key: Option<PathBuf>,
    /// The policy file (routes × methods → anonymous, token, roles, scopes).
    #[arg(long, env = "POLICY_FILE", default_value = "policy.yaml")]
    pub policy: PathBuf,
    /// Seconds between checks of the policy file for changes (hot reload;
    /// SIGHUP reloads at once). 0 turns the polling off.
    #[arg(long, env = "POLICY_POLL_SECONDS", default_value_t = 2.0)]
    pub policy_poll_seconds: f64,
    /// Tenant GUID, or `organizations` / `common` for a multi-tenant API.
    #[arg(long, env = "AAD_TENANT_ID")]
    pub tenant: Option<String>,
    /// Multi-tenant only: comma-separated tenant GUIDs allowed in, or `*` for any tenant.
    #[arg(long, env = "AAD_ALLOWED_TENANTS")]
    pub allowed_tenants: Option<String>,
    /// The API app's client id; `<id>` and `api://<id>` are accepted audiences.
    #[arg(long, env = "API_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Extra accepted audiences, comma-separated (any-of).
    #[arg(long, env = "API_AUDIENCE")]
    pub audience: Option<String>,
    /// Authority base; the v2 issuer is `{instance}/{tid}/v2.0`.
    #[arg(long, env = "AAD_INSTANCE", default_value = DEFAULT_INSTANCE)]
    pub instance: String,
    /// Base of the v1 issuer `{sts}/{tid}/`.
    #[arg(long, env = "AAD_STS_INSTANCE", default_value = DEFAULT_STS_INSTANCE)]
    pub sts_instance: String,
    /// Where to fetch OIDC discovery from, when it is not
    /// `{instance}/{tenant}/v2.0/.well-known/openid-configuration` (e.g. another host name inside docker compose).
    #[arg(long, env = "OIDC_METADATA_URL")]
    pub metadata_url: Option<String>,
    /// Allow `http://` identity-provider URLs on hosts other than loopback (development only).
    #[arg(long, env = "ALLOW_INSECURE_IDP")]
    pub allow_insecure_idp: bool,
    /// PEM certificate chain: serve HTTPS (with --tls-key).
    #[arg(long, env = "TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    #[arg(long, env = "TOKEN_LEEWAY_SECONDS", default_value_t = 60)]
    pub leeway_seconds: u64,
    /// Scheduled signing-key refresh interval, in seconds.
    #[arg(long, env = "JWKS_REFRESH_SECONDS", default_value_t = 3600)]
    pub jwks_refresh_seconds: u64,
    /// At most one key fetch per this many seconds is triggered by unknown `kid`s.
    #[arg(long, env = "JWKS_COOLDOWN_SECONDS", default_value_t = 60)]
    pub jwks_cooldown_seconds: u64,
    /// Verified tokens kept in memory (0 disables the cache).
    #[arg(long, env = "TOKEN_CACHE_SIZE", default_value_t = 10_000)]
    pub token_cache_size: usize,
    /// Seconds a client has to send its request headers (slowloris guard).
    #[arg(long, env = "HEADER_READ_TIMEOUT_SECONDS", default_value_t = 10)]
    pub header_read_timeout_seconds: u64,
    /// Largest request head (request line + headers) in bytes; larger gets 431.
    #[arg(long, env = "MAX_HEADER_BYTES", default_value_t = 64 * 1024)]
    pub max_header_bytes: usize,
    /// Most request headers; more gets 431.
    #[arg(long, env = "MAX_HEADERS", default_value_t = 100)]
    pub max_headers: usize,
    /// Largest request body in bytes; larger gets 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: u64,
    /// Most concurrent client connections; further ones wait to be accepted.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 10_000)]
    pub max_connections: usize,
    /// Threads serving connections, each running its own single-threaded
    /// runtime (a connection stays on one thread for its whole life);
    /// 0: one per CPU core.
    #[arg(long, env = "THREADS", default_value_t = 0)]
    pub threads: usize,
    /// Seconds to connect to the upstream before answering 502.
    #[arg(long, env = "UPSTREAM_CONNECT_TIMEOUT_SECONDS", default_value_t = 5)]
    pub upstream_connect_timeout_seconds: u64,
    /// Seconds to wait for the upstream's response headers before answering 504.
    #[arg(long, env = "UPSTREAM_TIMEOUT_SECONDS", default_value_t = 30)]
    pub upstream_timeout_seconds: u64,
    /// Most requests in flight to each upstream at once (for an HTTP/1
    /// upstream, its connections in use), from every thread together;
    /// further requests queue for a free one (0: no cap).
    #[arg(long, env = "UPSTREAM_MAX_CONNECTIONS", default_value_t = 1024)]
    pub upstream_max_connections: usize,
    /// Milliseconds a request may queue for one of those before the client
    /// gets 503 with `Retry-After`.
    #[arg(long, env = "UPSTREAM_QUEUE_TIMEOUT_MS", default_value_t = 5000)]
    pub upstream_queue_timeout_ms: u64,
    /// Log format: `json` (one object per line) or `text`. Default: text
    /// when stdout is a terminal, JSON otherwise (containers, systemd).
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    pub log_format: Option<crate::logging::LogFormat>,
    /// Serve Swagger UI at /docs and a policy-aware /openapi.json, signing in
    /// as this single-page app (client id GUID; authorization code with PKCE,
    /// redirect URI `<gateway origin>/oauth2-redirect`). Unset: /docs and
    /// /openapi.json are forwarded to the backend like any route.
    #[arg(long, env = "SWAGGER_UI_CLIENT_ID", help_heading = "API documentation")]
    pub swagger_ui_client_id: Option<String>,
    /// Do not serve the docs even if --swagger-ui-client-id is set.
    #[arg(long, env = "DISABLE_DOCS", help_heading = "API documentation")]
    pub no_docs: bool,
    /// Do not sign identity assertions (X-User-Assertion) nor serve the JWKS.
    #[arg(
        long,
        env = "DISABLE_IDENTITY_ASSERTION",
        help_heading = "Identity assertion"
    )]
    pub no_identity_assertion: bool,
    /// `iss` of the assertions: the gateway's public URL, e.g.
    /// https://api.contoso.com. Default: `http(s)://` + --listen.
    #[arg(long, env = "ASSERTION_ISSUER", help_heading = "Identity assertion")]
    pub assertion_issuer: Option<String>,
    /// `aud` of assertions for routes on the default --upstream. Default:
    /// the --upstream URL's origin (`scheme://host:port`). Routes on a named
    /// upstream get its name.
    #[arg(long, env = "ASSERTION_AUDIENCE", help_heading = "Identity assertion")]
    pub assertion_audience: Option<String>,
    /// Seconds an assertion is valid (10 to 300; never past the token's `exp`).
    #[arg(
        long,
        env = "ASSERTION_LIFETIME_SECONDS",
        default_value_t = 300,
        help_heading = "Identity assertion"
    )]
    pub assertion_lifetime_seconds: u64,
    /// The signature algorithm: ES256 (ECDSA P-256) or RS256 (RSA, for
    /// backends whose JWT library has no ES256). Every key file must be of
    /// its kind.
    #[arg(
        long,
        env = "ASSERTION_ALGORITHM",
        value_enum,
        ignore_case = true,
        default_value_t = assertion::Algorithm::Es256,
        help_heading = "Identity assertion"
    )]
    pub assertion_algorithm: assertion::Algorithm,
    /// Private key to sign assertions with, PEM or a private JWK, e.g. from
    /// a Kubernetes Secret, so every replica signs with the same key. ES256:
    /// P-256 (PKCS#8, SEC1 `EC PRIVATE KEY`, or a JWK with `d`); RS256: RSA
    /// of 2048 to 8192 bits (PKCS#8, PKCS#1 `RSA PRIVATE KEY`, or a JWK with
    /// `d`, `p`, `q`, `dp`, `dq`, `qi`).
    #[arg(long, env = "ASSERTION_KEY", help_heading = "Identity assertion")]
    pub assertion_key: Option<PathBuf>,
    /// Without --assertion-key: a directory where a generated key is kept
    /// (created at first start: `assertion-key.pem`, a P-256 key, or with
    /// RS256 `assertion-key-rsa.pem`, RSA-2048). Unset: the key is generated
    /// in memory at every start.
    #[arg(long, env = "ASSERTION_KEY_DIR", help_heading = "Identity assertion")]
    pub assertion_key_dir: Option<PathBuf>,
    /// PEM private key (of the algorithm's kind) published in the JWKS
    /// before it signs, for a rotation with overlap: publish the new key
    /// here, and once backends have fetched the JWKS (5 minutes) put it in
    /// the signing key's file.
    /// Both files are read again on every policy poll and on SIGHUP.
    #[arg(long, env = "ASSERTION_NEXT_KEY", help_heading = "Identity assertion")]
    pub assertion_next_key: Option<PathBuf>,
    /// The gateway's own app registration (client id GUID) for Microsoft
    /// Graph, holding the `GroupMember.Read.All` application permission with
    /// admin consent: resolves a groups overage on routes with `groups:`.
    /// Unset: such a token is refused on them (`groups_unresolved`).
    #[arg(
        long,
        env = "GRAPH_CLIENT_ID",
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_client_id: Option<String>,
    /// A file holding that app's client secret (trimmed), e.g. from a
    /// Kubernetes Secret. With --graph-client-id, this or a certificate
    /// (--graph-client-certificate-file and --graph-client-key-file).
    #[arg(
        long,
        env = "GRAPH_CLIENT_SECRET_FILE",
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_client_secret_file: Option<PathBuf>,
    /// Instead of a secret: a PEM certificate registered on that app
    /// (Certificates & secrets → Certificates); the gateway authenticates
    /// with client assertions signed by its key (RS256, `x5t#S256`).
    #[arg(
        long,
        env = "GRAPH_CLIENT_CERTIFICATE_FILE",
        conflicts_with = "graph_client_secret_file",
        requires = "graph_client_key_file",
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_client_certificate_file: Option<PathBuf>,
    /// The certificate's RSA private key, PEM (PKCS#8 or PKCS#1).
    #[arg(
        long,
        env = "GRAPH_CLIENT_KEY_FILE",
        conflicts_with = "graph_client_secret_file",
        requires = "graph_client_certificate_file",
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_client_key_file: Option<PathBuf>,
    /// Microsoft Graph's base URL (another for national clouds).
    #[arg(
        long,
        env = "GRAPH_URL",
        default_value = crate::graph::DEFAULT_GRAPH_URL,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_url: String,
    /// The scope of the gateway's app token for Graph.
    #[arg(
        long,
        env = "GRAPH_SCOPE",
        default_value = crate::graph::DEFAULT_GRAPH_SCOPE,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_scope: String,
    /// Milliseconds a whole overage lookup may take (app token and Graph
    /// calls) before the request is refused (`groups_unresolved`).
    #[arg(
        long,
        env = "GRAPH_TIMEOUT_MS",
        default_value_t = 3000,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_timeout_ms: u64,
    /// Seconds Graph's answers on a user's groups are kept (0: not kept).
    #[arg(
        long,
        env = "GRAPH_CACHE_SECONDS",
        default_value_t = 300,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_cache_seconds: u64,
    /// Users whose groups answers are kept.
    #[arg(
        long,
        env = "GRAPH_CACHE_SIZE",
        default_value_t = 10_000,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_cache_size: usize,
    /// Calls to Graph and its token endpoint per second (as many at once);
    /// a lookup that would wait past --graph-timeout-ms is refused.
    #[arg(
        long,
        env = "GRAPH_MAX_CALLS_PER_SECOND",
        default_value_t = 20,
        help_heading = "Groups overage (Microsoft Graph)"
    )]
    pub graph_max_calls_per_second: u32,
}

/// Limits on what a client may send, all explicit (see README "Limits").
#[derive(Debug, Clone)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub max_header_bytes: usize,
    pub max_headers: usize,
    pub max_body_bytes: u64,
    pub max_connections: usize,
    pub upstream_connect_timeout: Duration,
    pub upstream_timeout: Duration,
    /// Requests in flight to each upstream at most; `None`: no cap.
    pub upstream_max_connections: Option<usize>,
    pub upstream_queue_timeout: Duration,
}

/// Everything the gateway runs with, checked.
pub struct Config {
    pub listen: SocketAddr,
    pub admin_listen: SocketAddr,
    /// The decision endpoint's address, when one is asked for.
    pub decision_listen: Option<SocketAddr>,
    pub upstream: Upstream,
    pub policy_path: PathBuf,
    pub policy: Policy,
    /// How often the policy file is checked for changes; `None`: only on SIGHUP.
    pub policy_poll: Option<Duration>,
    pub auth: AuthSettings,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub limits: Limits,
    /// Swagger UI at `/docs` and a secured `/openapi.json`, when enabled.
    pub docs: Option<DocsSettings>,
    /// Threads serving connections (at least 1).
    pub threads: usize,
    /// The signed identity assertion; `None` with --no-identity-assertion.
    pub assertion: Option<Arc<Signer>>,
    /// Microsoft Graph for groups overage; `None` without --graph-client-id.
    pub graph: Option<Arc<Graph>>,
}

impl std::fmt::Debug for Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("admin_listen", &self.admin_listen)
            .field("decision_listen", &self.decision_listen)
            .field("upstream", &self.upstream)
            .field("policy_path", &self.policy_path)
            .field("tls", &self.tls.is_some())
            .field("limits", &self.limits)
            .field("docs", &self.docs)
            .field("threads", &self.threads)
            .field("assertion", &self.assertion)
            .field("graph", &self.graph)
            .finish_non_exhaustive()
    }
}

/// Every configuration problem found, one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.join("\n"))]
pub struct ConfigErrors(pub Vec<String>);

impl Flags {
    /// Check every flag and build the [`Config`]; all problems are reported together.
    pub fn into_config(self) -> Result<Config, ConfigErrors> {
        let mut errors = Vec::new();

        let listen = parse_addr("--listen", &self.listen, &mut errors);
        let admin_listen = parse_addr("--admin-listen", &self.admin_listen, &mut errors);
        let decision_listen = self
            .decision_listen
            .as_deref()
            .filter(|v| !v.trim().is_empty())
            .map(|v| parse_addr("--decision-listen", v, &mut errors));
        let upstream = match &self.upstream {
            None => {
                errors.push(
                    "--upstream (UPSTREAM_URL) is required, e.g. http://127.0.0.1:8081".into(),
                );
                None
            }
            Some(url) => parse_upstream(url, &mut errors),
        }
        .and_then(|upstream| self.upstream_tls(upstream, &mut errors));

        let policy = match Policy::load(&self.policy) {
            Ok(policy) => Some(policy),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        };

        let tenant = self.tenant_mode(&mut errors);
        let mut audiences = Vec::new();
        match self.client_id.as_deref().map(str::trim) {
            None | Some("") => errors.push(
                "--client-id (API_CLIENT_ID) is required: the API app registration's client id"
                    .into(),
            ),
            Some(id) if !is_guid(id) => errors.push(format!(
                "--client-id must be the API app's client id (a GUID), got {id:?}"
            )),
            Some(id) => {
                audiences.push(id.to_string());
                audiences.push(format!("api://{id}"));
            }
        }
        for extra in split_list(self.audience.as_deref()) {
            if !audiences.contains(&extra) {
                audiences.push(extra);
            }
        }

        let instance = self.idp_url("--instance", &self.instance, &mut errors);
        let sts_instance = self.idp_url("--sts-instance", &self.sts_instance, &mut errors);
        let metadata_url = match (&self.metadata_url, &instance, &tenant) {
            (Some(url), _, _) => self.idp_url("--metadata-url", url, &mut errors),
            (None, Some(instance), Some(tenant)) => Some(format!(
                "{instance}/{}/v2.0/.well-known/openid-configuration",
                tenant_path(tenant)
            )),
            _ => None,
        };

        let docs = self.docs_settings(instance.as_deref(), &audiences, &mut errors);
        let graph = self.graph(instance.as_deref(), metadata_url.as_deref(), &mut errors);

        let tls = match (&self.tls_cert, &self.tls_key) {
            (None, None) => None,
            (Some(cert), Some(key)) => match tls::server_config(cert, key) {
                Ok(config) => Some(Arc::new(config)),
                Err(e) => {
                    errors.push(e.to_string());
                    None
                }
            },
            _ => {
                errors.push("--tls-cert and --tls-key go together: give both or neither".into());
                None
            }
        };

        if self.max_header_bytes < 8192 {
            errors.push(format!(
                "--max-header-bytes must be at least 8192, got {}",
                self.max_header_bytes
            ));
        }
        if !(0.0..=86_400.0).contains(&self.policy_poll_seconds) {
            errors.push(format!(
                "--policy-poll-seconds must be between 0 and 86400, got {}",
                self.policy_poll_seconds
            ));
        }
        if self.threads > 1024 {
            errors.push(format!(
                "--threads must be at most 1024 (0: one per CPU core), got {}",
                self.threads
            ));
        }
        if self.max_connections == 0 {
            errors.push("--max-connections must be at least 1".into());
        }
        if self.jwks_cooldown_seconds == 0 {
            errors.push("--jwks-cooldown-seconds must be at least 1".into());
        }

        let assertion = match (&listen, &upstream) {
            (Some(listen), Some(upstream)) => {
                self.assertion(*listen, tls.is_some(), upstream, &mut errors)
            }
            _ => None,
        };
        match (
            listen,
            admin_listen,
            upstream,
            policy,
            tenant,
            instance,
            sts_instance,
            metadata_url,
        ) {
            (
                Some(listen),
                Some(admin_listen),
                Some(upstream),
                Some(policy),
                Some(tenant),
                Some(instance),
                Some(sts_instance),
                Some(metadata_url),
            ) if errors.is_empty() => Ok(Config {
                listen,
                admin_listen,
                decision_listen: decision_listen.flatten(),
                upstream,
                policy_path: self.policy.clone(),
                policy,
                policy_poll: (self.policy_poll_seconds > 0.0)
                    .then(|| Duration::from_secs_f64(self.policy_poll_seconds)),
                auth: AuthSettings {
                    tenant,
                    audiences,
                    instance,
                    sts_instance,
                    metadata_url,
                    leeway: Duration::from_secs(self.leeway_seconds),
                    algorithms: vec![jsonwebtoken::Algorithm::RS256],
                    refresh_interval: Duration::from_secs(self.jwks_refresh_seconds.max(1)),
                    unknown_kid_cooldown: Duration::from_secs(self.jwks_cooldown_seconds),
                    http_timeout: Duration::from_secs(10),
                    token_cache_size: self.token_cache_size,
                },
                tls,
                docs,
                assertion,
                graph,
                threads: match self.threads {
                    0 => std::thread::available_parallelism().map_or(1, usize::from),
                    n => n,
                },
                limits: Limits {
                    header_read_timeout: Duration::from_secs(
                        self.header_read_timeout_seconds.max(1),
                    ),
                    max_header_bytes: self.max_header_bytes,
                    max_headers: self.max_headers,
                    max_body_bytes: self.max_body_bytes,
                    max_connections: self.max_connections,
                    upstream_connect_timeout: Duration::from_secs(
                        self.upstream_connect_timeout_seconds.max(1),
                    ),
                    upstream_timeout: Duration::from_secs(self.upstream_timeout_seconds.max(1)),
                    upstream_max_connections: (self.upstream_max_connections > 0)
                        .then_some(self.upstream_max_connections),
                    upstream_queue_timeout: Duration::from_millis(self.upstream_queue_timeout_ms),
                },
            }),
            _ => Err(ConfigErrors(errors)),
        }
    }

    /// The default upstream with its TLS flags applied; each problem with
    /// them (a flag for an http:// upstream, a missing or unusable file, a
    /// key that does not match its certificate) in `errors`.
    fn upstream_tls(&self, upstream: Upstream, errors: &mut Vec<String>) -> Option<Upstream> {
        let flags = [
            ("--upstream-ca", &self.upstream_ca),
            ("--upstream-client-cert", &self.upstream_client_cert),
            ("--upstream-client-key", &self.upstream_client_key),
        ];
        if !upstream.is_tls() {
            let given: Vec<&str> = flags
                .iter()
                .filter(|(_, value)| value.is_some())
                .map(|(flag, _)| *flag)
                .collect();
            if given.is_empty() {
                return Some(upstream);
            }
            errors.push(format!(
                "{} applies only to an https:// --upstream",
                given.join(", ")
            ));
            return None;
        }
        let (client, paired) = match (&self.upstream_client_cert, &self.upstream_client_key) {
            (Some(cert), Some(key)) => (Some((cert.clone(), key.clone())), true),
            (None, None) => (None, true),
            _ => {
                errors.push(
                    "--upstream-client-cert and --upstream-client-key go together: give both or neither"
                        .into(),
                );
                // The CA is still checked, for every problem at once.
                (None, false)
            }
        };
        let files = TlsFiles {
            ca: self.upstream_ca.clone(),
            client,
        };
        upstream
            .with_tls(&files)
            .map_err(|problems| {
                for problem in problems {
                    let flag = match problem.setting {
                        TlsSetting::Ca => "--upstream-ca",
                        TlsSetting::ClientCert => "--upstream-client-cert",
                        TlsSetting::ClientKey => "--upstream-client-key",
                    };
                    errors.push(format!("{flag}: {}", problem.message));
                }
            })
            .ok()
            .filter(|_| paired)
    }

    /// The assertion signer: its settings checked, its key read or made.
    fn assertion(
        &self,
        listen: SocketAddr,
        tls: bool,
        upstream: &Upstream,
        errors: &mut Vec<String>,
    ) -> Option<Arc<Signer>> {
        if self.no_identity_assertion {
            return None;
        }
        let lifetime = self.assertion_lifetime_seconds;
        let range = assertion::MIN_LIFETIME_SECONDS..=assertion::MAX_LIFETIME_SECONDS;
        if !range.contains(&lifetime) {
            errors.push(format!(
                "--assertion-lifetime-seconds must be between {} and {}, got {lifetime}",
                range.start(),
                range.end()
            ));
        }
        let non_empty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let issuer = non_empty(&self.assertion_issuer)
            .unwrap_or_else(|| crate::server::describe(listen, tls));
        let default_audience = non_empty(&self.assertion_audience).unwrap_or_else(|| {
            let scheme = if upstream.is_tls() { "https" } else { "http" };
            format!("{scheme}://{}", upstream.authority)
        });
        let key = match (&self.assertion_key, &self.assertion_key_dir) {
            (Some(file), None) => KeySource::File(file.clone()),
            (None, dir) => KeySource::Generated { dir: dir.clone() },
            (Some(_), Some(_)) => {
                errors.push(
                    "--assertion-key and --assertion-key-dir exclude each other: a key file, \
                     or a directory for a generated one"
                        .into(),
                );
                return None;
            }
        };
        if self.assertion_next_key.is_some() && key == (KeySource::Generated { dir: None }) {
            errors.push(
                "--assertion-next-key needs --assertion-key or --assertion-key-dir: a key \
                 generated in memory is never replaced by the next one"
                    .into(),
            );
        }
        if !errors.is_empty() {
            // Nothing is generated or written for a configuration that fails.
            return None;
        }
        match Signer::new(AssertionSettings {
            issuer,
            default_audience,
            lifetime_seconds: lifetime,
            algorithm: self.assertion_algorithm,
            key,
            next_key: self.assertion_next_key.clone(),
        }) {
            // Without the token cache no caller comes back: nothing to reuse.
            Ok(signer) if self.token_cache_size == 0 => Some(Arc::new(signer.without_reuse())),
            Ok(signer) => Some(Arc::new(signer)),
            Err(e) => {
                errors.push(e.to_string());
                None
            }
        }
    }

    /// Microsoft Graph for groups overage: the gateway's app credentials,
    /// and where to ask for its token: `--instance`, or the origin of
    /// `--metadata-url` when that differs (the gateway reaches the IdP
    /// there, as for the JWKS).
    fn graph(
        &self,
        instance: Option<&str>,
        metadata_url: Option<&str>,
        errors: &mut Vec<String>,
    ) -> Option<Arc<Graph>> {
        let client_id = self
            .graph_client_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let Some(client_id) = client_id else {
            if self.graph_client_secret_file.is_some() {
                errors
                    .push("--graph-client-secret-file applies only with --graph-client-id".into());
            }
            if self.graph_client_certificate_file.is_some() {
                errors.push(
                    "--graph-client-certificate-file applies only with --graph-client-id".into(),
                );
            }
            return None;
        };
        let before = errors.len();
        if !is_guid(client_id) {
            errors.push(format!(
                "--graph-client-id must be the gateway's app registration's client id (a GUID), got {client_id:?}"
            ));
        }
        let certificate = match (
            &self.graph_client_certificate_file,
            &self.graph_client_key_file,
        ) {
            (Some(cert), Some(key)) => match ClientCertificate::from_files(cert, key) {
                Ok(certificate) => Some(GraphCredential::Certificate(Arc::new(certificate))),
                Err(e) => {
                    errors.push(e);
                    None
                }
            },
            _ => None,
        };
        let certificate_given = self.graph_client_certificate_file.is_some();
        let secret = match &self.graph_client_secret_file {
            None if certificate_given => certificate,
            None => {
                errors.push(
                    "--graph-client-id needs --graph-client-secret-file (GRAPH_CLIENT_SECRET_FILE): \
                     a file holding the app's client secret, or --graph-client-certificate-file \
                     and --graph-client-key-file"
                        .into(),
                );
                None
            }
            Some(file) => match std::fs::read_to_string(file) {
                Err(e) => {
                    errors.push(format!(
                        "--graph-client-secret-file: cannot read {}: {e}",
                        file.display()
                    ));
                    None
                }
                Ok(text) if text.trim().is_empty() => {
                    errors.push(format!(
                        "--graph-client-secret-file: {} is empty",
                        file.display()
                    ));
                    None
                }
                Ok(text) => Some(GraphCredential::Secret(text.trim().to_owned())),
            },
        };
        let graph_url = self.idp_url("--graph-url", &self.graph_url, errors);
        if self.graph_scope.trim().is_empty() {
            errors.push("--graph-scope must not be empty".into());
        }
        if !(1..=60_000).contains(&self.graph_timeout_ms) {
            errors.push(format!(
                "--graph-timeout-ms must be between 1 and 60000, got {}",
                self.graph_timeout_ms
            ));
        }
        if self.graph_cache_seconds > 86_400 {
            errors.push(format!(
                "--graph-cache-seconds must be at most 86400, got {}",
                self.graph_cache_seconds
            ));
        }
        if self.graph_max_calls_per_second == 0 {
            errors.push("--graph-max-calls-per-second must be at least 1".into());
        }
        let authority = match (instance, metadata_url) {
            (Some(instance), Some(metadata)) => Some(authority(instance, metadata)),
            _ => None,
        };
        if errors.len() != before {
            return None;
        }
        let settings = GraphSettings {
            client_id: client_id.to_ascii_lowercase(),
            credential: secret?,
            graph_url: graph_url?,
            scope: self.graph_scope.trim().to_owned(),
            authority: authority?,
            timeout: Duration::from_millis(self.graph_timeout_ms),
            cache_ttl: Duration::from_secs(self.graph_cache_seconds),
            cache_size: self.graph_cache_size,
            max_calls_per_second: self.graph_max_calls_per_second,
        };
        match Graph::new(settings) {
            Ok(graph) => Some(Arc::new(graph)),
            Err(e) => {
                errors.push(e);
                None
            }
        }
    }

    /// Swagger UI's settings: the SPA client, and the tenant's authorize and
    /// token endpoints on `--instance` (the URL browsers use, which differs
    /// from `--metadata-url` inside docker compose).
    fn docs_settings(
        &self,
        instance: Option<&str>,
        audiences: &[String],
        errors: &mut Vec<String>,
    ) -> Option<DocsSettings> {
        if self.no_docs {
            return None;
        }
        let spa = match self.swagger_ui_client_id.as_deref().map(str::trim) {
            None | Some("") => return None,
            Some(id) if !is_guid(id) => {
                errors.push(format!(
                    "--swagger-ui-client-id must be the Swagger UI app's client id (a GUID), got {id:?}"
                ));
                return None;
            }
            Some(id) => id.to_string(),
        };
        let tenant = self.tenant.as_deref().map(str::trim)?.to_ascii_lowercase();
        let (instance, api) = (instance?, audiences.first()?);
        Some(DocsSettings {
            spa_client_id: spa,
            api_client_id: api.clone(),
            authorize_url: format!("{instance}/{tenant}/oauth2/v2.0/authorize"),
            token_url: format!("{instance}/{tenant}/oauth2/v2.0/token"),
        })
    }

    fn tenant_mode(&self, errors: &mut Vec<String>) -> Option<TenantMode> {
        let allowed = self
            .allowed_tenants
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty());
        match self.tenant.as_deref().map(str::trim) {
            None | Some("") => {
                errors.push(
                    "--tenant (AAD_TENANT_ID) is required: a tenant GUID, or organizations / common"
                        .into(),
                );
                None
            }
            Some(t @ ("organizations" | "common")) => match allowed {
                None => {
                    errors.push(format!(
                        "--tenant {t} accepts tokens from other tenants: --allowed-tenants (AAD_ALLOWED_TENANTS) is required, \
                         a comma-separated list of tenant GUIDs or `*` for any tenant"
                    ));
                    None
                }
                Some("*") => Some(TenantMode::Multi {
                    allowed: AllowedTenants::Any,
                }),
                Some(list) => {
                    let tenants = split_list(Some(list));
                    let mut ok = true;
                    for t in &tenants {
                        if !is_guid(t) {
                            errors.push(format!("--allowed-tenants: {t:?} is not a tenant GUID"));
                            ok = false;
                        }
                    }
                    ok.then_some(TenantMode::Multi {
                        allowed: AllowedTenants::List(tenants),
                    })
                }
            },
            Some(t) if is_guid(t) => {
                if allowed.is_some() {
                    errors.push(
                        "--allowed-tenants applies only with --tenant organizations or common"
                            .into(),
                    );
                }
                Some(TenantMode::Single(t.to_ascii_lowercase()))
            }
            Some(t) => {
                errors.push(format!(
                    "--tenant must be a tenant GUID, organizations or common, got {t:?} \
                     (a domain name cannot be checked against the token's tid)"
                ));
                None
            }
        }
    }

    /// An identity-provider URL: https, or http on loopback / with --allow-insecure-idp.
    fn idp_url(&self, flag: &str, value: &str, errors: &mut Vec<String>) -> Option<String> {
        let value = value.trim().trim_end_matches('/');
        let uri: http::Uri = match value.parse() {
            Ok(uri) => uri,
            Err(_) => {
                errors.push(format!("{flag}: {value:?} is not a URL"));
                return None;
            }
        };
        let Some(host) = uri.host() else {
            errors.push(format!("{flag}: {value:?} has no host"));
            return None;
        };
        match uri.scheme_str() {
            Some("https") => Some(value.to_string()),
            Some("http") if is_loopback_host(host) || self.allow_insecure_idp => {
                Some(value.to_string())
            }
            Some("http") => {
                errors.push(format!(
                    "{flag}: {value:?} uses http:// on a host that is not loopback; \
                     use https, or --allow-insecure-idp for a development setup"
                ));
                None
            }
            _ => {
                errors.push(format!("{flag}: {value:?} must be an https:// URL"));
                None
            }
        }
    }
}

/// Where the token endpoints `{authority}/{tid}/oauth2/v2.0/token` are:
/// `instance`, on the origin of `metadata_url` when that differs (inside
/// docker compose the gateway reaches the IdP by another host name).
fn authority(instance: &str, metadata_url: &str) -> String {
    let origin = |url: &str| -> Option<String> {
        let uri: http::Uri = url.parse().ok()?;
        Some(format!("{}://{}", uri.scheme_str()?, uri.authority()?))
    };
    match (origin(instance), origin(metadata_url)) {
        (Some(i), Some(m)) if i != m => format!("{m}{}", &instance[i.len()..]),
        _ => instance.to_owned(),
    }
}

/// The tenant segment of discovery URLs.
fn tenant_path(tenant: &TenantMode) -> &str {
    match tenant {
        TenantMode::Single(id) => id,
        TenantMode::Multi { .. } => "organizations",
    }
}

fn parse_addr(flag: &str, value: &str, errors: &mut Vec<String>) -> Option<SocketAddr> {
    match value.trim().parse() {
        Ok(addr) => Some(addr),
        Err(_) => {
            errors.push(format!(
                "{flag}: {value:?} is not an address such as 127.0.0.1:8000"
            ));
            None
        }
    }
}

fn parse_upstream(url: &str, errors: &mut Vec<String>) -> Option<Upstream> {
    Upstream::parse(url)
        .map_err(|message| errors.push(format!("--upstream: {message}")))
        .ok()
}

fn split_list(value: Option<&str>) -> Vec<String> {
    value
        .unwrap_or("")
        .split([',', ' '])
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

/// `8-4-4-4-12` hexadecimal digits, as Entra writes tenant and client ids.
pub fn is_guid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guids_are_recognised() {
        assert!(is_guid("aaaaaaaa-0000-4000-8000-000000000001"));
        assert!(!is_guid("contoso.onmicrosoft.com"));
        assert!(!is_guid("aaaaaaaa-0000-4000-8000-00000000001"));
    }

    /// The problems `into_config` finds with `args` added to a valid set
    /// of required flags; empty when it is accepted.
    fn problems(args: &[&str]) -> Vec<String> {
        let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.yaml");
        let mut all = vec![
            "authz-proxy",
            "--tenant",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "--client-id",
            "c0ffee00-0000-4000-8000-0000000000a1",
            "--policy",
            policy,
        ];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).expect("flags parse");
        cli.serve
            .into_config()
            .err()
            .map(|e| e.0)
            .unwrap_or_default()
    }

    #[test]
    fn upstream_tls_flags_are_checked_before_anything_starts() {
        let dir = tempfile::tempdir().unwrap();
        crate::upstream::test_pki::write(dir.path());
        let file = |name: &str| dir.path().join(name).display().to_string();
        let (ca, cert, key, other) = (
            file("ca.pem"),
            file("client.crt"),
            file("client.key"),
            file("other.key"),
        );
        let https = ["--upstream", "https://127.0.0.1:8443"];

        let ok = [&https[..], &["--upstream-ca", &ca]].concat();
        assert_eq!(problems(&ok), Vec::<String>::new());
        let ok = [
            &ok[..],
            &[
                "--upstream-client-cert",
                &cert,
                "--upstream-client-key",
                &key,
            ],
        ]
        .concat();
        assert_eq!(problems(&ok), Vec::<String>::new());

        assert_eq!(
            problems(&["--upstream", "http://b:1", "--upstream-ca", &ca]),
            ["--upstream-ca applies only to an https:// --upstream"]
        );
        let missing = file("missing.pem");
        assert_eq!(
            problems(&[&https[..], &["--upstream-client-cert", &cert, "--upstream-ca", &missing]].concat()),
            [
                "--upstream-client-cert and --upstream-client-key go together: give both or neither".to_owned(),
                format!(
                    "--upstream-ca: cannot read {missing:?}: No such file or directory (os error 2)"
                ),
            ]
        );
        assert_eq!(
            problems(
                &[
                    &https[..],
                    &["--upstream-ca", &missing, "--upstream-client-cert", &cert],
                    &["--upstream-client-key", &other],
                ]
                .concat()
            ),
            [
                format!(
                    "--upstream-ca: cannot read {missing:?}: No such file or directory (os error 2)"
                ),
                format!(
                    "--upstream-client-key: {other:?} is not the key of the certificate in {cert:?}"
                ),
            ]
        );
    }

    #[test]
    fn graph_flags_are_checked_and_the_secret_read_from_its_file() {
        let upstream = ["--upstream", "http://backend:8081"];
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        std::fs::write(&secret, "  s3cret\n").unwrap();
        let empty = dir.path().join("empty");
        std::fs::write(&empty, " \n").unwrap();
        let (secret, empty) = (secret.display().to_string(), empty.display().to_string());
        let id = "c0ffee00-0000-4000-8000-0000000000d4";
        assert!(config(&upstream).graph.is_none());
        let graph = config(
            &[
                &upstream[..],
                &[
                    "--graph-client-id",
                    id,
                    "--graph-client-secret-file",
                    &secret,
                ],
            ]
            .concat(),
        )
        .graph;
        assert!(graph.is_some());
        assert_eq!(
            problems(&[&upstream[..], &["--graph-client-id", id]].concat()),
            [
                "--graph-client-id needs --graph-client-secret-file (GRAPH_CLIENT_SECRET_FILE): \
              a file holding the app's client secret, or --graph-client-certificate-file \
              and --graph-client-key-file"
            ]
        );
        assert_eq!(
            problems(&[&upstream[..], &["--graph-client-secret-file", &secret]].concat()),
            ["--graph-client-secret-file applies only with --graph-client-id"]
        );
        assert_eq!(
            problems(
                &[
                    &upstream[..],
                    &["--graph-client-id", "gateway", "--graph-client-secret-file", &empty],
                    &["--graph-url", "http://graph.example", "--graph-timeout-ms", "0"],
                    &["--graph-max-calls-per-second", "0"],
                ]
                .concat()
            ),
            [
                "--graph-client-id must be the gateway's app registration's client id (a GUID), got \"gateway\"".to_owned(),
                format!("--graph-client-secret-file: {empty} is empty"),
                "--graph-url: \"http://graph.example\" uses http:// on a host that is not loopback; \
                 use https, or --allow-insecure-idp for a development setup".to_owned(),
                "--graph-timeout-ms must be between 1 and 60000, got 0".to_owned(),
                "--graph-max-calls-per-second must be at least 1".to_owned(),
            ]
        );
    }

    #[test]
    fn a_graph_certificate_replaces_the_secret_and_must_be_an_rsa_key() {
        let upstream = ["--upstream", "http://backend:8081"];
        let id = "c0ffee00-0000-4000-8000-0000000000e5";
        let dir = tempfile::tempdir().unwrap();
        let file = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            path.display().to_string()
        };
        let secret = file("secret", "s3cret");
        // An EC certificate (rcgen's default) and another's key.
        let ec = rcgen::generate_simple_self_signed(vec!["gateway".to_owned()]).unwrap();
        let other = rcgen::generate_simple_self_signed(vec!["other".to_owned()]).unwrap();
        let cert = file("gateway.crt", &ec.cert.pem());
        let key = file("gateway.key", &ec.signing_key.serialize_pem());
        let other_key = file("other.key", &other.signing_key.serialize_pem());
        let parse = |args: &[&str]| {
            let mut all = vec!["authz-proxy", "--tenant", "t", "--client-id", "c"];
            all.extend_from_slice(args);
            Cli::try_parse_from(all).map(|_| ()).map_err(|e| e.kind())
        };
        // Secret or certificate, not both; certificate and key together.
        assert_eq!(
            parse(&[
                "--graph-client-certificate-file",
                &cert,
                "--graph-client-key-file",
                &key,
                "--graph-client-secret-file",
                &secret
            ]),
            Err(clap::error::ErrorKind::ArgumentConflict)
        );
        assert_eq!(
            parse(&["--graph-client-certificate-file", &cert]),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
        assert_eq!(
            parse(&["--graph-client-key-file", &key]),
            Err(clap::error::ErrorKind::MissingRequiredArgument)
        );
        let with = |cert: &str, key: &str| {
            problems(
                &[
                    &upstream[..],
                    &[
                        "--graph-client-id",
                        id,
                        "--graph-client-certificate-file",
                        cert,
                    ],
                    &["--graph-client-key-file", key],
                ]
                .concat(),
            )
        };
        assert_eq!(
            with(&cert, &other_key),
            [format!(
                "--graph-client-key-file: {other_key} is not the key of the certificate in {cert}"
            )]
        );
        assert_eq!(
            with(&cert, &key),
            [format!(
                "--graph-client-key-file: {key} is not an RSA key (client assertions are RS256)"
            )]
        );
        let missing = dir.path().join("missing.pem").display().to_string();
        let problems = with(&missing, &key);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].starts_with(&format!(
                "--graph-client-certificate-file: cannot read {missing}: "
            )),
            "{problems:?}"
        );
    }

    #[test]
    fn graph_tokens_are_asked_where_the_gateway_reaches_the_idp() {
        assert_eq!(
            authority(
                "https://login.microsoftonline.com",
                "https://login.microsoftonline.com/t/v2.0/.well-known/openid-configuration"
            ),
            "https://login.microsoftonline.com"
        );
        assert_eq!(
            authority(
                "http://localhost:9400",
                "http://dev-idp:9400/t/v2.0/.well-known/openid-configuration"
            ),
            "http://dev-idp:9400"
        );
    }

    /// The config built from `args` added to the required flags.
    fn config(args: &[&str]) -> Config {
        let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/../policy.yaml");
        let mut all = vec![
            "authz-proxy",
            "--tenant",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "--client-id",
            "c0ffee00-0000-4000-8000-0000000000a1",
            "--policy",
            policy,
        ];
        all.extend_from_slice(args);
        let cli = Cli::try_parse_from(all).expect("flags parse");
        cli.serve.into_config().expect("a valid configuration")
    }

    #[test]
    fn assertion_flags_are_checked_and_defaults_derived() {
        let upstream = ["--upstream", "http://backend:8081"];
        // Defaults: issuer from --listen, audience from --upstream's origin.
        let config = config(&[&upstream[..], &["--listen", "127.0.0.1:8000"]].concat());
        let signer = config.assertion.expect("on by default");
        assert_eq!(signer.issuer(), "http://127.0.0.1:8000");
        assert_eq!(signer.default_audience(), "http://backend:8081");
        assert_eq!(signer.algorithm(), assertion::Algorithm::Es256);
        for name in ["RS256", "rs256"] {
            let rs256 = self::config(&[&upstream[..], &["--assertion-algorithm", name]].concat());
            assert_eq!(
                rs256.assertion.expect("on").algorithm(),
                assertion::Algorithm::Rs256
            );
        }
        let unknown = Cli::try_parse_from([
            "authz-proxy",
            "--tenant",
            "aaaaaaaa-0000-4000-8000-000000000001",
            "--client-id",
            "c0ffee00-0000-4000-8000-0000000000a1",
            "--assertion-algorithm",
            "HS256",
        ])
        .unwrap_err();
        assert!(unknown.to_string().contains("HS256"), "{unknown}");
        assert!(
            self::config(&[&upstream[..], &["--no-identity-assertion"]].concat())
                .assertion
                .is_none()
        );

        for lifetime in ["0", "9", "301"] {
            assert_eq!(
                problems(&[&upstream[..], &["--assertion-lifetime-seconds", lifetime]].concat()),
                [format!(
                    "--assertion-lifetime-seconds must be between 10 and 300, got {lifetime}"
                )]
            );
        }
        let dir = tempfile::tempdir().unwrap();
        let (key, keys) = (
            dir.path().join("key.pem").display().to_string(),
            dir.path().join("keys").display().to_string(),
        );
        assert_eq!(
            problems(
                &[
                    &upstream[..],
                    &["--assertion-key", &key, "--assertion-key-dir", &keys]
                ]
                .concat()
            ),
            [
                "--assertion-key and --assertion-key-dir exclude each other: a key file, \
              or a directory for a generated one"
            ]
        );
        assert_eq!(
            problems(&[&upstream[..], &["--assertion-key", &key]].concat()),
            [format!(
                "--assertion-key: cannot read {key}: No such file or directory (os error 2)"
            )]
        );
        // A configuration that fails writes no key.
        let failing = [
            &upstream[..],
            &["--assertion-key-dir", &keys, "--threads", "5000"],
        ]
        .concat();
        assert_eq!(problems(&failing).len(), 1);
        assert!(!dir.path().join("keys").exists());
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.2"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("dev-idp"));
    }
}
