//! `authz-proxy`: parse flags, check everything, bind, run.

use std::process::ExitCode;

use anyhow::Context;
use authz_proxy::config::{Cli, Command, Flags};
use clap::Parser;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::Check(args)) => authz_proxy::cli::check::run(&args).emit(),
        Some(Command::Explain(args)) => authz_proxy::cli::explain::run(&args).emit(),
        Some(Command::Test(args)) => authz_proxy::cli::cases::run(&args).emit(),
        Some(Command::Serve(flags)) => serve(*flags),
        None => serve(cli.serve),
    }
}

fn serve(flags: Flags) -> ExitCode {
    authz_proxy::logging::init(flags.log_format);
    // Every configuration error at once, before any port is bound.
    let config = match flags.into_config() {
        Ok(config) => config,
        Err(errors) => {
            for line in errors.0 {
                eprintln!("error: {line}");
            }
            return ExitCode::from(2);
        }
    };
    // This thread accepts, and serves connections like the others
    // (`--threads`, see `server::serve`); all are single-threaded runtimes.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: authz_proxy::config::Config) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    let admin = tokio::net::TcpListener::bind(config.admin_listen)
        .await
        .with_context(|| format!("cannot listen on {} (admin)", config.admin_listen))?;
    let decision = match config.decision_listen {
        Some(addr) => Some(
            tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("cannot listen on {addr} (decision endpoint)"))?,
        ),
        None => None,
    };
    tracing::info!(
        listen = %authz_proxy::server::describe(listener.local_addr()?, config.tls.is_some()),
        admin = %admin.local_addr()?,
        decision = decision
            .as_ref()
            .and_then(|d| d.local_addr().ok())
            .map(tracing::field::display),
        upstream = %config.upstream.authority,
        policy = %config.policy_path.display(),
        routes = config.policy.routes().len(),
        "authz-proxy started"
    );
    let prepared = authz_proxy::server::prepare(config)?.with_decision(decision);
    authz_proxy::server::run_prepared(prepared, listener, Some(admin), shutdown_signal()).await?;
    tracing::info!("authz-proxy stopped");
    Ok(())
}

/// SIGINT or SIGTERM: stop accepting, drain in-flight requests.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
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
}
