//! The whole system in one process: dev-idp, todo-backend and authz-proxy,
//! each on its own listener, wired together exactly as in docker compose.
//!
//! The end-to-end tests bind every listener to `127.0.0.1:0`; the `demo`
//! binary (the README's first command) uses the well-known ports instead.
//! Both go through [`System::start`], so what the tests check is what users run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::Context;
use dev_idp::{Idp, MintRequest};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub mod capture;
pub mod recorder;
pub mod replica;
pub mod wire;

/// The default dev-idp configuration's tenant (see `dev-idp/dev-idp.yaml`).
pub const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
/// A second tenant of the default configuration, for cross-tenant cases.
pub const OTHER_TENANT: &str = "bbbbbbbb-0000-4000-8000-000000000002";
/// The API app's client id: the gateway's `--client-id`.
pub const API_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000a1";
/// The gateway's own app registration for Microsoft Graph (`--graph-client-id`).
pub const GRAPH_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000e5";
/// Its client secret in the default dev-idp configuration.
pub const GRAPH_CLIENT_SECRET: &str = "dev-gateway-graph-secret";
/// The Swagger UI single-page app's client id.
pub const SWAGGER_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000b2";

/// The repository's own `policy.yaml`, which the demo runs with.
pub fn repo_policy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../policy.yaml")
}

/// A listener that could not be bound: which part, where, and why (the
/// demo turns a busy port into advice).
#[derive(Debug)]
pub struct BindError {
    pub part: Part,
    pub addr: SocketAddr,
    pub source: std::io::Error,
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot listen on {} ({}): {}",
            self.addr, self.part, self.source
        )
    }
}

impl std::error::Error for BindError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// The parts of a [`System`] that listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Gateway,
    Admin,
    Idp,
    Backend,
}

impl std::fmt::Display for Part {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Part::Gateway => "gateway",
            Part::Admin => "admin",
            Part::Idp => "dev IdP",
            Part::Backend => "backend",
        })
    }
}

async fn bind(addr: SocketAddr, part: Part) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| BindError { part, addr, source }.into())
}

/// What to start, and where.
#[derive(Debug, Clone)]
pub struct Options {
    pub idp_listen: SocketAddr,
    /// The issuer host browsers see; `None`: `http://` + the bound address.
    pub idp_public_url: Option<String>,
    pub backend_listen: SocketAddr,
    pub gateway_listen: SocketAddr,
    pub admin_listen: SocketAddr,
    pub idp_config: dev_idp::Config,
    pub policy: PathBuf,
    /// The backend's SQLite file; `None`: a file in a temporary directory.
    pub db: Option<PathBuf>,
    /// The backend's database when not SQLite (e.g. PostgreSQL); overrides `db`.
    pub database: Option<todo_backend::Database>,
    /// dev-idp's key directory; `None`: a temporary directory.
    pub idp_data: Option<PathBuf>,
    /// Extra gateway flags, e.g. `["--jwks-cooldown-seconds", "1"]`.
    pub gateway_args: Vec<String>,
    /// Forward to this upstream instead of the todo backend (which still runs).
    pub upstream: Option<String>,
    /// `Some(up)`: the gateway reaches the IdP through a [`Relay`], initially
    /// on or off, that a test switches to simulate the IdP going down.
    pub idp_relay: Option<bool>,
    /// `Some(segment)`: the gateway fetches discovery from the IdP's
    /// `/{segment}/v2.0/.well-known/openid-configuration` (`--metadata-url`)
    /// instead of its own tenant's, e.g. another tenant's document.
    pub metadata_tenant: Option<String>,
    /// Also run the gateway's decision endpoint (`--decision-listen`) on
    /// its own `127.0.0.1:0` listener: [`System::decision_url`].
    pub decision: bool,
    /// Run the backend with `--trust gateway-assertion`, as in production:
    /// the JWKS from the gateway's admin listener, `iss` the gateway's URL
    /// and `aud` the backend's (the gateway's defaults for its --upstream).
    /// `false`: the backend trusts the identity headers (the demo).
    pub backend_assertion: bool,
    /// The gateway resolves groups overage through the dev IdP's Microsoft
    /// Graph stand-in: `--graph-client-id` (the `authz-gateway` app), its
    /// secret in a file, `--graph-url` the IdP.
    pub graph: bool,
    /// With [`Options::graph`]: the app authenticates with its certificate
    /// instead of the secret (`--graph-client-certificate-file` and
    /// `--graph-client-key-file`, the files the dev IdP made for it).
    pub graph_certificate: bool,
}

impl Default for Options {
    fn default() -> Self {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        Options {
            idp_listen: any,
            idp_public_url: None,
            backend_listen: any,
            gateway_listen: any,
            admin_listen: any,
            idp_config: dev_idp::Config::embedded_default(),
            policy: repo_policy(),
            db: None,
            database: None,
            idp_data: None,
            gateway_args: Vec::new(),
            upstream: None,
            idp_relay: None,
            metadata_tenant: None,
            decision: false,
            backend_assertion: false,
            graph: false,
            graph_certificate: false,
        }
    }
}

/// A running system. Dropping it stops nothing cleanly; call [`System::stop`].
pub struct System {
    pub idp: Arc<Idp>,
    pub idp_url: String,
    pub backend_url: String,
    pub gateway_url: String,
    pub admin_url: String,
    /// The decision endpoint, when [`Options::decision`].
    pub decision_url: Option<String>,
    /// The gateway itself, to look inside (key fetches, token cache).
    pub gateway: Arc<authz_proxy::gateway::Gateway>,
    /// The gateway's policy hot reload: tests wait on its status channel.
    pub reloader: Arc<authz_proxy::reload::Reloader>,
    /// Between the gateway and the IdP, when [`Options::idp_relay`].
    pub relay: Option<Relay>,
    /// A client with redirects off, as a test wants to see them.
    pub http: reqwest::Client,
    stops: Vec<oneshot::Sender<()>>,
    tasks: Vec<JoinHandle<anyhow::Result<()>>>,
    _scratch: tempfile::TempDir,
}

impl std::fmt::Debug for System {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System")
            .field("gateway_url", &self.gateway_url)
            .finish_non_exhaustive()
    }
}

impl System {
    /// Everything on loopback port 0, the default configuration and policy.
    pub async fn start() -> anyhow::Result<System> {
        System::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> anyhow::Result<System> {
        let scratch = tempfile::tempdir()?;
        let mut stops = Vec::new();
        let mut tasks = Vec::new();

        // The gateway's address first: Swagger UI's redirect URI on it must be
        // registered with the IdP (exact match, as Entra does), so a browser
        // can sign in through any system, port 0 included.
        let gateway_listener = bind(options.gateway_listen, Part::Gateway).await?;
        let gateway_addr = gateway_listener.local_addr()?;
        let admin_listener = bind(options.admin_listen, Part::Admin).await?;
        let admin_addr = admin_listener.local_addr()?;
        let mut idp_config = options.idp_config.clone();
        let redirect = format!("http://{gateway_addr}/oauth2-redirect");
        if let Some(spa) = idp_config.app_mut(SWAGGER_CLIENT_ID)
            && !spa.redirect_uris.contains(&redirect)
        {
            spa.add_redirect_uri(redirect);
        }

        // Then the IdP: the gateway's configuration names its URLs.
        let idp_listener = bind(options.idp_listen, Part::Idp).await?;
        let idp_addr = idp_listener.local_addr()?;
        let idp_public = options
            .idp_public_url
            .clone()
            .unwrap_or_else(|| format!("http://{idp_addr}"));
        let idp_data = options
            .idp_data
            .clone()
            .unwrap_or_else(|| scratch.path().join("dev-idp"));
        let idp = Arc::new(
            Idp::new(idp_config, &idp_data, Some(idp_public.clone())).context("start dev-idp")?,
        );
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn({
            let idp = idp.clone();
            async move {
                dev_idp::run(idp_listener, idp, async {
                    let _ = stopped.await;
                })
                .await
                .map_err(anyhow::Error::from)
            }
        }));

        let backend_listener = bind(options.backend_listen, Part::Backend).await?;
        let backend_addr = backend_listener.local_addr()?;
        let database = options.database.clone().unwrap_or_else(|| {
            todo_backend::Database::Sqlite(
                options
                    .db
                    .clone()
                    .unwrap_or_else(|| scratch.path().join("todo.db")),
            )
        });
        let trust = match options.backend_assertion {
            false => todo_backend::Trust::Headers,
            true => {
                let settings = todo_backend::assertion::Settings {
                    jwks_url: format!("http://{admin_addr}/.well-known/authz-proxy/jwks.json"),
                    issuer: format!("http://{gateway_addr}"),
                    audience: format!("http://{backend_addr}"),
                    header: todo_backend::assertion::DEFAULT_HEADER.parse()?,
                };
                let verifier =
                    todo_backend::assertion::Verifier::new(settings).map_err(anyhow::Error::msg)?;
                todo_backend::Trust::GatewayAssertion(Arc::new(verifier))
            }
        };
        let config = todo_backend::Config { database, trust };
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(async move {
            todo_backend::run(backend_listener, config, async {
                let _ = stopped.await;
            })
            .await
            .map_err(anyhow::Error::from)
        }));

        let mut args: Vec<String> = vec![
            "authz-proxy".into(),
            "--listen".into(),
            gateway_addr.to_string(),
            "--admin-listen".into(),
            admin_addr.to_string(),
            "--upstream".into(),
            options
                .upstream
                .clone()
                .unwrap_or_else(|| format!("http://{backend_addr}")),
            "--policy".into(),
            options.policy.display().to_string(),
            "--tenant".into(),
            TENANT.into(),
            "--client-id".into(),
            API_CLIENT_ID.into(),
            "--instance".into(),
            idp.base_url().to_string(),
            "--sts-instance".into(),
            idp.sts_base_url().to_string(),
        ];
        let relay = match options.idp_relay {
            Some(up) => Some(Relay::start(idp_addr, up).await?),
            None => None,
        };
        let reach = relay.as_ref().map_or(idp_addr, |r| r.addr);
        if let Some(segment) = &options.metadata_tenant {
            args.push("--metadata-url".into());
            args.push(format!(
                "http://{reach}/{segment}/v2.0/.well-known/openid-configuration"
            ));
        } else if idp_public != format!("http://{reach}") {
            // Where the gateway reaches the IdP differs from the issuer host
            // browsers see, as in docker compose.
            args.push("--metadata-url".into());
            args.push(format!(
                "http://{reach}/{TENANT}/v2.0/.well-known/openid-configuration"
            ));
        }
        if options.graph && options.graph_certificate {
            let certificate = idp
                .client_certificate(GRAPH_CLIENT_ID)
                .context("the Graph app has no certificate (client_certificate: true)")?;
            args.extend([
                "--graph-client-id".into(),
                GRAPH_CLIENT_ID.into(),
                "--graph-client-certificate-file".into(),
                certificate.cert_file.display().to_string(),
                "--graph-client-key-file".into(),
                certificate.key_file.display().to_string(),
                "--graph-url".into(),
                format!("http://{reach}"),
            ]);
        } else if options.graph {
            let secret = scratch.path().join("graph-client-secret");
            std::fs::write(&secret, format!("{GRAPH_CLIENT_SECRET}\n"))?;
            args.extend([
                "--graph-client-id".into(),
                GRAPH_CLIENT_ID.into(),
                "--graph-client-secret-file".into(),
                secret.display().to_string(),
                "--graph-url".into(),
                format!("http://{reach}"),
            ]);
        }
        args.extend(options.gateway_args.iter().cloned());
        let decision = match options.decision {
            true => Some(TcpListener::bind("127.0.0.1:0").await?),
            false => None,
        };
        let decision_url = match &decision {
            Some(listener) => Some(format!("http://{}", listener.local_addr()?)),
            None => None,
        };
        let prepared =
            authz_proxy::server::prepare(gateway_config(&args)?)?.with_decision(decision);
        let gateway = prepared.gateway.clone();
        let reloader = prepared.reloader.clone();
        let (stop, stopped) = oneshot::channel::<()>();
        stops.push(stop);
        tasks.push(tokio::spawn(async move {
            authz_proxy::server::run_prepared(
                prepared,
                gateway_listener,
                Some(admin_listener),
                async {
                    let _ = stopped.await;
                },
            )
            .await
            .map_err(anyhow::Error::from)
        }));

        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        Ok(System {
            idp,
            idp_url: format!("http://{idp_addr}"),
            backend_url: format!("http://{backend_addr}"),
            gateway_url: format!("http://{gateway_addr}"),
            admin_url: format!("http://{admin_addr}"),
            decision_url,
            gateway,
            reloader,
            relay,
            http,
            stops,
            tasks,
            _scratch: scratch,
        })
    }

    /// A token from the dev IdP, signed with the keys it publishes.
    pub fn token(&self, request: MintRequest) -> String {
        match self.idp.mint(&request) {
            Ok(token) => token,
            Err(e) => panic!("dev-idp could not mint {request:?}: {e}"),
        }
    }

    /// The admin listener's `/metrics` text (Prometheus exposition format).
    pub async fn metrics(&self) -> String {
        let response = self
            .http
            .get(format!("{}/metrics", self.admin_url))
            .send()
            .await
            .expect("the admin listener answers");
        assert_eq!(response.status(), 200, "/metrics");
        response.text().await.expect("a /metrics body")
    }

    /// Waits until the gateway's first signing-key fetch has finished (loaded
    /// or failed), so a test starts from a known state. Waits on the fetch
    /// counter, not on a clock.
    pub async fn first_key_fetch(&self) {
        let mut fetches = self.gateway.authenticator().watch_fetches();
        let _ = fetches.wait_for(|done| *done >= 1).await;
    }

    /// Sends `request` byte for byte on a new connection to the gateway and
    /// returns the status code and everything after the head. HTTP clients
    /// clean request targets up (`/a/../b` becomes `/b` before it is sent),
    /// so path and header tricks need this.
    pub async fn raw(&self, request: &str) -> (u16, String) {
        raw_request(self.gateway_url.trim_start_matches("http://"), request).await
    }

    /// Stops all three servers and waits for them to finish.
    pub async fn stop(self) -> anyhow::Result<()> {
        for stop in self.stops {
            let _ = stop.send(());
        }
        for task in self.tasks {
            task.await??;
        }
        Ok(())
    }
}

/// The gateway's configuration from command-line style arguments, through
/// the same flag parsing and checking as the binary.
pub fn gateway_config(args: &[String]) -> anyhow::Result<authz_proxy::config::Config> {
    use clap::Parser;
    let cli = authz_proxy::config::Cli::try_parse_from(args)?;
    cli.serve
        .into_config()
        .map_err(|e| anyhow::anyhow!("gateway configuration: {e}"))
}

/// A TCP relay a test can switch off: while off, it accepts and at once
/// closes every connection, and cuts the ones it was piping (the peer sees
/// what a crashed server gives); while on, it pipes bytes both ways. It counts
/// connections, so a test can tell how often the gateway went to the IdP.
#[derive(Debug, Clone)]
pub struct Relay {
    pub addr: SocketAddr,
    up: Arc<tokio::sync::watch::Sender<bool>>,
    connections: Arc<std::sync::atomic::AtomicU64>,
}

impl Relay {
    pub async fn start(target: SocketAddr, up: bool) -> anyhow::Result<Relay> {
        use std::sync::atomic::{AtomicU64, Ordering};
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let (up_tx, _) = tokio::sync::watch::channel(up);
        let relay = Relay {
            addr: listener.local_addr()?,
            up: Arc::new(up_tx),
            connections: Arc::new(AtomicU64::new(0)),
        };
        let (up, connections) = (relay.up.clone(), relay.connections.clone());
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                connections.fetch_add(1, Ordering::SeqCst);
                let mut state = up.subscribe();
                if !*state.borrow_and_update() {
                    drop(inbound);
                    continue;
                }
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await else {
                        return;
                    };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = state.wait_for(|up| !*up) => {}
                    }
                });
            }
        });
        Ok(relay)
    }

    /// Switches the relay on (pipe) or off (close at once, cut open pipes).
    pub fn set_up(&self, up: bool) {
        self.up.send_replace(up);
    }

    /// Connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.connections.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// One raw HTTP/1.1 exchange: writes `request` as is, reads until the server
/// closes (send `Connection: close`), returns the status and the body text.
pub async fn raw_request(addr: &str, request: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// An address that refuses connections for as long as it is held: the port
/// is bound but never listened on, so a connect gets a reset at once and no
/// other test's listener can take the port meanwhile (a port bound, dropped
/// and reused by a parallel test would answer instead).
pub struct RefusingAddr {
    _socket: tokio::net::TcpSocket,
    pub addr: SocketAddr,
}

impl RefusingAddr {
    pub fn new() -> Self {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket
            .bind("127.0.0.1:0".parse().unwrap())
            .expect("bind 127.0.0.1:0");
        let addr = socket.local_addr().expect("local address");
        RefusingAddr {
            _socket: socket,
            addr,
        }
    }
}

impl Default for RefusingAddr {
    fn default() -> Self {
        Self::new()
    }
}
