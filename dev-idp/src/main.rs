//! `dev-idp`: serve the local Entra ID stand-in, mint tokens for curl, rotate
//! keys. Thin: parse flags, build an [`Idp`], call the library.

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use dev_idp::config::parse_duration;
use dev_idp::{Config, Idp, MintRequest, NOT_FOR_PRODUCTION, TokenVersion};

/// A local stand-in for Microsoft Entra ID. Never trust it in production.
#[derive(Debug, Parser)]
#[command(name = "dev-idp", version, about)]
struct Cli {
    /// YAML configuration (default: the built-in dev-idp.yaml).
    #[arg(long, global = true, env = "DEV_IDP_CONFIG")]
    config: Option<PathBuf>,
    /// Directory holding the signing keys, created on first use.
    #[arg(
        long,
        global = true,
        env = "DEV_IDP_DATA_DIR",
        default_value = "data/dev-idp"
    )]
    data_dir: PathBuf,
    /// Public base URL (issuer host) instead of the configuration's; the
    /// server and the minter must agree on it.
    #[arg(long, global = true, env = "DEV_IDP_BASE_URL")]
    base_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve discovery, JWKS, authorize and token endpoints.
    Serve {
        /// Address to listen on (default: the configuration's, 127.0.0.1:9400).
        #[arg(long, env = "DEV_IDP_LISTEN")]
        listen: Option<std::net::SocketAddr>,
    },
    /// Print an access token, signed with the keys the server publishes.
    Token(Box<TokenArgs>),
    /// Start signing with a new key; the old one stays published for the
    /// configured grace period. A running server picks it up at once.
    RotateKeys,
    /// Check the configuration and exit.
    CheckConfig,
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("who").required(true).multiple(true))]
struct TokenArgs {
    /// Delegated token for this user (name, e-mail or object id).
    #[arg(long, group = "who")]
    user: Option<String>,
    /// App-only token for this app (client credentials); with --user, the
    /// client app the user signed in to.
    #[arg(long, group = "who")]
    app: Option<String>,
    /// The API the token is for (default: the first app exposing an API).
    #[arg(long)]
    api: Option<String>,
    /// Delegated scope, repeatable (default: all the API's scopes).
    #[arg(long = "scope")]
    scopes: Vec<String>,
    /// Issue from this tenant instead of the user's home tenant.
    #[arg(long)]
    tenant: Option<String>,
    /// Token lifetime, e.g. 90s, 10m, 1h.
    #[arg(long, value_parser = parse_duration)]
    lifetime: Option<Duration>,
    /// Token format, 1 or 2 (default: the API's accessTokenAcceptedVersion).
    #[arg(long, value_parser = parse_version)]
    token_version: Option<TokenVersion>,
    /// Authentication contexts the sign-in satisfied (`acrs`), c1 to c99,
    /// comma-separated or repeated: a token after a step-up.
    #[arg(long, value_delimiter = ',')]
    acrs: Vec<String>,
    /// A client capability (`xms_cc`), repeatable: `cp1` says the client
    /// handles claims challenges.
    #[arg(long = "client-capability", value_name = "CAPABILITY")]
    client_capabilities: Vec<String>,
    /// Test-only: a token that expired an hour ago.
    #[arg(long, help_heading = "Test-only (tokens a correct gateway rejects)")]
    expired: bool,
    /// Test-only: this `aud` instead of the API's.
    #[arg(long, help_heading = "Test-only (tokens a correct gateway rejects)")]
    audience: Option<String>,
    /// Test-only: this `iss` instead of dev-idp's own.
    #[arg(long, help_heading = "Test-only (tokens a correct gateway rejects)")]
    issuer: Option<String>,
    /// Test-only: `nbf` this far in the future, e.g. 10m.
    #[arg(long, value_parser = parse_duration, help_heading = "Test-only (tokens a correct gateway rejects)")]
    not_before_in: Option<Duration>,
}

fn parse_version(text: &str) -> Result<TokenVersion, String> {
    match text {
        "1" | "1.0" => Ok(TokenVersion::V1),
        "2" | "2.0" => Ok(TokenVersion::V2),
        _ => Err(format!("token version '{text}' is neither 1 nor 2")),
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a person at a terminal: never into a pipe, a
        // file or a container's log.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = match &cli.config {
        Some(path) => Config::load(path)?,
        None => Config::embedded_default(),
    };
    match cli.command {
        Command::CheckConfig => {
            println!("configuration ok");
            Ok(())
        }
        Command::Serve { listen } => serve(config, &cli.data_dir, cli.base_url, listen),
        Command::Token(args) => {
            let idp = Idp::new(config, &cli.data_dir, cli.base_url)?;
            let request = MintRequest {
                user: args.user,
                app: args.app,
                api: args.api,
                scopes: (!args.scopes.is_empty()).then_some(args.scopes),
                tenant: args.tenant,
                lifetime: args.lifetime,
                version: args.token_version,
                expired: args.expired,
                audience: args.audience,
                issuer: args.issuer,
                not_before_in: args.not_before_in,
                acrs: args.acrs,
                client_capabilities: args.client_capabilities,
            };
            println!("{}", idp.mint(&request)?);
            Ok(())
        }
        Command::RotateKeys => {
            let idp = Idp::new(config, &cli.data_dir, cli.base_url)?;
            idp.rotate_keys()?;
            println!("{}", idp.current_kid()?);
            Ok(())
        }
    }
}

fn serve(
    config: Config,
    data_dir: &std::path::Path,
    base_url: Option<String>,
    listen: Option<std::net::SocketAddr>,
) -> anyhow::Result<()> {
    let addr = listen.unwrap_or(config.listen);
    let idp = Arc::new(Idp::new(config, data_dir, base_url)?);
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on {addr}"))?;
        let local = listener
            .local_addr()
            .context("cannot read the bound address")?;
        eprintln!("{}", banner(&idp, local));
        dev_idp::run(listener, idp, shutdown_signal()).await?;
        Ok(())
    })
}

fn banner(idp: &Idp, local: std::net::SocketAddr) -> String {
    let line = "!".repeat(78);
    let first = idp
        .config()
        .tenants
        .first()
        .map_or("common", |t| t.id.as_str());
    format!(
        "{line}\n!! {NOT_FOR_PRODUCTION}\n{line}\n\
         dev-idp listening on http://{local}\n\
         issuer (v2):  {}\n\
         sts instance: {} (pass to the gateway as --sts-instance)\n\
         discovery:    {}/{first}/v2.0/.well-known/openid-configuration",
        idp.issuer_v2(first),
        idp.sts_base_url(),
        idp.base_url(),
    ) + &exposure_warning(local)
}

/// An extra line when the server is reachable beyond this machine.
fn exposure_warning(local: std::net::SocketAddr) -> String {
    if local.ip().is_loopback() {
        String::new()
    } else {
        format!(
            "\nWARNING: listening on {local}, beyond loopback: anyone on the network can mint tokens"
        )
    }
}

/// Completes on Ctrl-C or, on Unix, SIGTERM (what `docker stop` sends).
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}
