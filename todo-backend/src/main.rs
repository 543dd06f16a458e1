//! `todo-backend`: parse flags, start logging, bind, and [`todo_backend::run`]
//! until SIGINT or SIGTERM.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;
use tracing_subscriber::EnvFilter;

/// The sample's todo API, trusting identity headers set by the gateway.
/// Listen only where the gateway alone can reach it.
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
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_ansi(std::io::stdout().is_terminal())
        .init();
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
    let config = todo_backend::Config { database };
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
