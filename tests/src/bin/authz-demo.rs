//! `authz-demo`: the whole system on the well-known ports, no Azure tenant
//! and no Docker needed — the README's first command.
//!
//! dev-idp on 127.0.0.1:9400 (issuer `http://localhost:9400`), todo-backend on
//! 127.0.0.1:8081 (reachable only from this machine), the gateway on
//! 127.0.0.1:8000 with its admin listener on 127.0.0.1:9000. Data lives under
//! `data/`, so items and signing keys survive a restart.

use std::io::IsTerminal as _;

use authz_proxy::logging::LogFormat;
use dev_idp::MintRequest;
use e2e_tests::{Options, SWAGGER_CLIENT_ID, System};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
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
    let options = Options {
        idp_listen: "127.0.0.1:9400".parse()?,
        idp_public_url: Some("http://localhost:9400".into()),
        backend_listen: "127.0.0.1:8081".parse()?,
        gateway_listen: "127.0.0.1:8000".parse()?,
        admin_listen: "127.0.0.1:9000".parse()?,
        db: Some("data/todo.db".into()),
        idp_data: Some("data/dev-idp".into()),
        // Swagger UI at /docs, signing in as the dev IdP's SPA registration.
        gateway_args: vec!["--swagger-ui-client-id".into(), SWAGGER_CLIENT_ID.into()],
        ..Options::default()
    };
    let system = System::start_with(options).await?;
    let alice = system.token(MintRequest::user("alice"));
    let bob = system.token(MintRequest::user("bob"));
    println!(
        "\nauthz-demo is running (Ctrl-C to stop):\n\
         \x20 gateway      http://localhost:8000   (Swagger UI: http://localhost:8000/docs, Authorize, pick a user)\n\
         \x20 dev IdP      http://localhost:9400   (a development stand-in for Entra ID: never trust it in production)\n\
         \x20 backend      http://127.0.0.1:8081   (behind the gateway; call it through port 8000)\n\
         \x20 admin        http://127.0.0.1:9000/      (status page; also /metrics, /ready)\n\n\
         Tokens valid for an hour (mint more with `cargo run -p dev-idp -- token --user alice`):\n\n\
         ALICE={alice}\n\nBOB={bob}\n\n\
         Try:\n\
         \x20 curl -i -H \"Authorization: Bearer $ALICE\" -H 'Content-Type: application/json' \\\n\
         \x20      -d '{{\"item\":{{\"name\":\"Walk the dog\"}}}}' http://localhost:8000/todoitems\n\
         \x20 curl -i -H \"Authorization: Bearer $ALICE\" -X DELETE http://localhost:8000/todoitems   # 403: Admin only\n\
         \x20 curl -i -H \"Authorization: Bearer $BOB\" -X DELETE http://localhost:8000/todoitems     # 204\n"
    );
    tokio::signal::ctrl_c().await?;
    println!("stopping…");
    system.stop().await
}
