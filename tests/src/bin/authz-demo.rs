//! `authz-demo`: the whole system on the well-known ports, no Azure tenant
//! and no Docker needed — the README's first command.
//!
//! dev-idp on 127.0.0.1:9400 (issuer `http://localhost:9400`), todo-backend on
//! 127.0.0.1:8081 (reachable only from this machine), the gateway on
//! 127.0.0.1:8000 with its admin listener on 127.0.0.1:9000; each port has a
//! flag and a variable (`--gateway-port`/`GATEWAY_PORT`, …). Data lives
//! under `data/`, so items and signing keys survive a restart.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::process::ExitCode;

use authz_proxy::logging::LogFormat;
use clap::Parser;
use dev_idp::MintRequest;
use e2e_tests::{BindError, Options, Part, SWAGGER_CLIENT_ID, System};

/// The whole system on this machine: the gateway in front of the todo
/// backend, and a dev IdP standing in for Microsoft Entra ID. No Azure
/// tenant, no Docker. Ctrl-C stops it; items and signing keys stay in
/// ./data.
#[derive(Debug, Parser)]
#[command(name = "authz-demo", version)]
struct Args {
    /// The gateway's port (Swagger UI at /docs); on 127.0.0.1.
    #[arg(long, env = "GATEWAY_PORT", default_value_t = 8000)]
    gateway_port: u16,
    /// The dev IdP's port; browsers sign in at http://localhost:<port>, the
    /// issuer of its tokens.
    #[arg(long, env = "DEV_IDP_PORT", default_value_t = 9400)]
    idp_port: u16,
    /// The todo backend's port (only the gateway calls it).
    #[arg(long, env = "BACKEND_PORT", default_value_t = 8081)]
    backend_port: u16,
    /// The gateway's admin listener (status page, /metrics, /ready).
    #[arg(long, env = "ADMIN_PORT", default_value_t = 9000)]
    admin_port: u16,
}

/// The flag and the variable that move `part` to another port.
fn port_setting(part: Part) -> (&'static str, &'static str) {
    match part {
        Part::Gateway => ("--gateway-port", "GATEWAY_PORT"),
        Part::Idp => ("--idp-port", "DEV_IDP_PORT"),
        Part::Backend => ("--backend-port", "BACKEND_PORT"),
        Part::Admin => ("--admin-port", "ADMIN_PORT"),
    }
}

fn loopback(port: u16) -> SocketAddr {
    ([127, 0, 0, 1], port).into()
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            match e.downcast_ref::<BindError>() {
                Some(bind) if bind.source.kind() == std::io::ErrorKind::AddrInUse => {
                    let (flag, var) = port_setting(bind.part);
                    eprintln!(
                        "authz-demo: port {} ({}) is in use: stop what holds it or pass {flag} \
                         (or set {var})",
                        bind.addr.port(),
                        bind.part,
                    );
                }
                _ => eprintln!("authz-demo: {e:#}"),
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    // The gateway's access log (one line per request, with the reason for
    // each denial) and warnings; RUST_LOG and LOG_FORMAT override.
    let filter = std::env::var("RUST_LOG").unwrap_or_else(|_| "warn,access=info".into());
    let format = match std::env::var("LOG_FORMAT").as_deref() {
        Ok("json") => LogFormat::Json,
        Ok("text") => LogFormat::Text,
        _ => LogFormat::detect(),
    };
    let _ = authz_proxy::logging::init_with(
        format,
        &filter,
        std::io::stdout,
        std::io::stdout().is_terminal(),
    );
    let mut idp_config = dev_idp::Config::embedded_default();
    // Swagger UI's redirect on the gateway's port, as browsers name it
    // (registered with the dev IdP like a redirect URI in Entra).
    if let Some(spa) = idp_config.app_mut(SWAGGER_CLIENT_ID) {
        let redirect = format!("http://localhost:{}/oauth2-redirect", args.gateway_port);
        if !spa.redirect_uris.contains(&redirect) {
            spa.add_redirect_uri(redirect);
        }
    }
    let options = Options {
        idp_listen: loopback(args.idp_port),
        idp_public_url: Some(format!("http://localhost:{}", args.idp_port)),
        backend_listen: loopback(args.backend_port),
        gateway_listen: loopback(args.gateway_port),
        admin_listen: loopback(args.admin_port),
        idp_config,
        db: Some("data/todo.db".into()),
        idp_data: Some("data/dev-idp".into()),
        // Swagger UI at /docs, signing in as the dev IdP's SPA registration.
        gateway_args: vec!["--swagger-ui-client-id".into(), SWAGGER_CLIENT_ID.into()],
        // Groups overage (frank, in 250 groups) through the dev IdP's Graph stand-in.
        graph: true,
        ..Options::default()
    };
    let system = System::start_with(options).await?;
    let alice = system.token(MintRequest::user("alice"));
    let bob = system.token(MintRequest::user("bob"));
    let gateway = format!("http://localhost:{}", args.gateway_port);
    let mint = match args.idp_port {
        9400 => "cargo run -p dev-idp -- token --user alice".to_string(),
        port => {
            format!("cargo run -p dev-idp -- --base-url http://localhost:{port} token --user alice")
        }
    };
    println!(
        "\nauthz-demo is running (Ctrl-C to stop):\n\
         \x20 gateway      {gateway}   (Swagger UI: {gateway}/docs, Authorize, pick a user)\n\
         \x20 dev IdP      http://localhost:{idp}   (a development stand-in for Entra ID: never trust it in production)\n\
         \x20 backend      http://127.0.0.1:{backend}   (behind the gateway; call it through {gateway})\n\
         \x20 admin        http://127.0.0.1:{admin}/      (status page; also /metrics, /ready)\n\n\
         Tokens valid for an hour (mint more with `{mint}`):\n\n\
         ALICE={alice}\n\nBOB={bob}\n\n\
         Try:\n\
         \x20 curl -i -H \"Authorization: Bearer $ALICE\" -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"item\":{{\"name\":\"Walk the dog\"}}}}' {gateway}/todoitems\n\
         \x20 curl -i -H \"Authorization: Bearer $ALICE\" -X DELETE {gateway}/todoitems   # 403: Admin only\n\
         \x20 curl -i -H \"Authorization: Bearer $BOB\" -X DELETE {gateway}/todoitems     # 204\n",
        idp = args.idp_port,
        backend = args.backend_port,
        admin = args.admin_port,
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    system.stop().await
}
