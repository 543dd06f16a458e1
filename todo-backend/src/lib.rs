//! The todo backend: the sample's todo API (once a FastAPI app protected by
//! Azure AD) as a plain HTTP API with no token code.
//!
//! The authorization gateway in front authenticates callers and passes who
//! they are in `X-User-*` headers ([`identity`]). By default this crate
//! trusts those headers and nothing else, so it must listen only where the
//! gateway alone can reach it; with [`Trust::GatewayAssertion`] it takes the
//! identity from the assertion the gateway signs instead ([`assertion`]) and
//! refuses requests without a valid one. Items live in SQLite or PostgreSQL ([`store`]), per tenant
//! and owner; instances on one PostgreSQL database share nothing else, so
//! any number of them can serve side by side.
//!
//! The request path: [`filters`] (path → method → identity → body) →
//! [`handlers`] → [`store`]; every failure leaves through
//! [`rejection::recover`].
//!
//! Where this differs from the sample, on purpose:
//! - items belong to (tenant, owner); `X-User-Tenant` is required like
//!   `X-User-Id` (401 without), and another tenant's item is a 404;
//! - ids are never reused, not even after "delete all";
//! - 204s have no body (the sample sent `null`);
//! - a name must be a string of 1 to 1,000 characters (pydantic v1 accepted
//!   `""` and turned numbers into strings); bodies over 64 KiB get 413;
//! - `Allow` on a 405 lists every method of the path; a JSON decode error
//!   has serde_json's wording and no `ctx.doc` echo of the body;
//! - `/todoitems/` (trailing slash) is a 404, where Starlette redirected;
//! - an identity header sent twice counts as absent.

pub mod assertion;
pub mod body;
pub mod filters;
pub mod handlers;
pub mod identity;
pub mod logging;
pub mod models;
mod openapi;
pub mod rejection;
pub mod request_id;
pub mod store;

use std::future::Future;
use std::path::PathBuf;

pub use filters::{PROBES, ROUTES, routes};
pub use identity::{Identity, Trust};
pub use openapi::openapi;
pub use store::{Database, Store, StoreError};

/// What `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where items are kept: a SQLite file (or `:memory:` for tests, which
    /// then exercise the same code path), or a PostgreSQL database.
    pub database: Database,
    /// Where the caller's identity comes from: the headers (default) or
    /// the gateway's signed assertion.
    pub trust: Trust,
}

impl Config {
    /// Items in the SQLite file `db` (its directory is created).
    pub fn sqlite(db: impl Into<PathBuf>) -> Config {
        Config::new(Database::Sqlite(db.into()))
    }

    /// Items in `database`, trusting the identity headers.
    pub fn new(database: Database) -> Config {
        Config {
            database,
            trust: Trust::default(),
        }
    }
}

/// Why the backend could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database {database}")]
    OpenDatabase {
        database: Database,
        #[source]
        source: StoreError,
    },
}

/// Serves the API on `listener` until `shutdown` completes, then stops
/// accepting, lets in-flight requests finish and closes the database.
///
/// Taking a bound listener lets callers bind port 0 (tests) or report a
/// bind error before anything else starts (main).
pub async fn run(
    listener: tokio::net::TcpListener,
    config: Config,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    let (store, closer) = Store::open_closable(&config.database)
        .await
        .map_err(|source| Error::OpenDatabase {
            database: config.database.clone(),
            source,
        })?;
    match listener.local_addr() {
        Ok(address) => {
            let trust = match &config.trust {
                Trust::Headers => "headers".to_owned(),
                Trust::GatewayAssertion(v) => {
                    format!("gateway-assertion ({})", v.settings().jwks_url)
                }
            };
            tracing::info!(%address, db = %config.database, trust, "todo-backend listening")
        }
        Err(error) => tracing::warn!(%error, "todo-backend listening on an unknown address"),
    }
    warp::serve(routes(store, config.trust.clone()))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    // The server has dropped the routes, and with them every store handle:
    // the SQLite thread finishes what is queued and closes the file, or the
    // PostgreSQL pool closes its connections.
    closer.close().await;
    tracing::info!("todo-backend stopped");
    Ok(())
}

#[cfg(test)]
mod tests {
    /// Callers spawn `run` and wrap its error in `anyhow`.
    #[test]
    fn the_error_can_cross_threads() {
        fn check<T: Send + Sync + 'static>() {}
        check::<super::Error>();
    }
}
