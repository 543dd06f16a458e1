//! `todo-backend`: parse flags, start logging, bind, and [`todo_backend::run`]
//! until SIGINT or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The sample's todo API, trusting identity headers set by the gateway, or
/// (--trust gateway-assertion) the identity assertion it signs.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on.
    #[arg(long, env = "TODO_LISTEN", default_value = "127.0.0.1:8081")]
    listen: SocketAddr,
    /// SQLite database file (its directory is created if missing); unused
    /// with --database-url.
    #[arg(long, env = "TODO_DB", default_value = "data/todo.db")]
    db: PathBuf,
    /// Keep items in PostgreSQL instead of SQLite:
    /// postgres://user:password@host:port/dbname. The schema is created or
    /// migrated at start-up; any number of instances may share the database.
    /// TLS as libpq's `sslmode` says (disable, prefer [default], require,
    /// verify-ca, verify-full); `sslrootcert=/path` names the CA.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: Option<String>,
    /// PEM file of the CA(s) that sign the PostgreSQL server's certificate
    /// (instead of `sslrootcert` in the URL); without either, `verify-ca`
    /// and `verify-full` use the system's roots.
    #[arg(long, env = "TODO_DATABASE_CA_FILE", requires = "database_url")]
    database_ca_file: Option<PathBuf>,
    /// Connections to PostgreSQL per instance, at most.
    #[arg(long, env = "TODO_DB_POOL_SIZE", default_value_t = 8,
          value_parser = clap::value_parser!(u16).range(1..))]
    db_pool_size: u16,
    /// Log format: `json` (one object per line) or `text`. Default: text
    /// when stdout is a terminal, JSON otherwise (containers, systemd).
    #[arg(long, env = "LOG_FORMAT", value_enum)]
    log_format: Option<todo_backend::logging::LogFormat>,
    #[command(flatten)]
    trust: TrustArgs,
}

/// Where the caller's identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum TrustMode {
    /// The X-User-* headers as they arrive (the network must keep everyone
    /// but the gateway out).
    Headers,
    /// The gateway's signed identity assertion, checked on every request.
    GatewayAssertion,
}

#[derive(Debug, clap::Args)]
#[command(next_help_heading = "Identity")]
struct TrustArgs {
    /// Trust the X-User-* headers (`headers`, the demo's default) or require
    /// the gateway's signed identity assertion on every request
    /// (`gateway-assertion`; needs the three --gateway-*/--assertion-* below).
    #[arg(long, env = "TODO_TRUST", value_enum, default_value = "headers")]
    trust: TrustMode,
    /// The gateway's JWKS, e.g. http://authz-proxy-admin:9000/.well-known/authz-proxy/jwks.json
    /// (its admin listener; its own port serves it too). Fetched at the
    /// first request that needs it, kept, and fetched again on a new key.
    #[arg(long, env = "TODO_GATEWAY_JWKS_URL")]
    gateway_jwks_url: Option<String>,
    /// The assertion's expected `iss`: the gateway's --assertion-issuer.
    #[arg(long, env = "TODO_GATEWAY_ISSUER")]
    gateway_issuer: Option<String>,
    /// The assertion's expected `aud`: the gateway's --assertion-audience
    /// (by default the origin of its --upstream, e.g. http://backend:8081).
    #[arg(long, env = "TODO_ASSERTION_AUDIENCE")]
    assertion_audience: Option<String>,
    /// The header carrying the assertion.
    #[arg(long, env = "TODO_ASSERTION_HEADER", default_value = todo_backend::assertion::DEFAULT_HEADER)]
    assertion_header: String,
}

impl TrustArgs {
    /// The trust mode, its settings checked: every problem in one message.
    fn into_trust(self) -> anyhow::Result<todo_backend::Trust> {
        if self.trust == TrustMode::Headers {
            return Ok(todo_backend::Trust::Headers);
        }
        let given = |value: Option<String>, flag: &str, problems: &mut Vec<String>| {
            let value = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
            if value.is_none() {
                problems.push(format!("--trust gateway-assertion needs {flag}"));
            }
            value.unwrap_or_default()
        };
        let mut problems = Vec::new();
        let jwks_url = given(
            self.gateway_jwks_url,
            "--gateway-jwks-url (TODO_GATEWAY_JWKS_URL)",
            &mut problems,
        );
        let issuer = given(
            self.gateway_issuer,
            "--gateway-issuer (TODO_GATEWAY_ISSUER)",
            &mut problems,
        );
        let audience = given(
            self.assertion_audience,
            "--assertion-audience (TODO_ASSERTION_AUDIENCE)",
            &mut problems,
        );
        let header = match warp::http::HeaderName::try_from(self.assertion_header.trim()) {
            Ok(header) => Some(header),
            Err(_) => {
                problems.push(format!(
                    "--assertion-header {:?} is not a header name",
                    self.assertion_header
                ));
                None
            }
        };
        if !problems.is_empty() {
            anyhow::bail!(problems.join("; "));
        }
        let settings = todo_backend::assertion::Settings {
            jwks_url,
            issuer,
            audience,
            header: header.unwrap_or_else(|| {
                warp::http::HeaderName::from_static(todo_backend::assertion::DEFAULT_HEADER)
            }),
        };
        let verifier =
            todo_backend::assertion::Verifier::new(settings).map_err(anyhow::Error::msg)?;
        Ok(todo_backend::Trust::GatewayAssertion(std::sync::Arc::new(
            verifier,
        )))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    todo_backend::logging::init(args.log_format);
    let trust = args.trust.into_trust()?;
    let database = match args.database_url {
        Some(url) => todo_backend::Database::Postgres {
            url,
            ca_file: args.database_ca_file,
            pool_size: usize::from(args.db_pool_size),
        },
        None => todo_backend::Database::Sqlite(args.db),
    };
    database
        .check()
        .with_context(|| format!("invalid database settings for {database}"))?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("cannot listen on {}", args.listen))?;
    let config = todo_backend::Config { database, trust };
    todo_backend::run(listener, config, shutdown_signal()).await?;
    Ok(())
}

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut terminate =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = interrupt => {}
            _ = terminate.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
    tracing::info!("shutdown requested; finishing in-flight requests");
}
