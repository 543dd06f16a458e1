//! The todo backend: the sample's todo API (once a FastAPI app protected by
//! Azure AD) as a plain HTTP API with no token code.
//!
//! The authorization gateway in front authenticates callers and passes who
//! they are in `X-User-*` headers ([`identity`]); this crate trusts those
//! headers and nothing else, so it must listen only where the gateway alone
//! can reach it. Items live in SQLite ([`store`]), per tenant and owner.
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

pub mod body;
pub mod filters;
pub mod handlers;
pub mod identity;
pub mod models;
mod openapi;
pub mod rejection;
pub mod store;

use std::future::Future;
use std::path::PathBuf;

pub use filters::{ROUTES, routes};
pub use identity::Identity;
pub use openapi::openapi;
pub use store::{Store, StoreError};

/// What `run` needs besides the listener.
#[derive(Debug, Clone)]
pub struct Config {
    /// The SQLite database file (its directory is created), or `:memory:`
    /// for tests, which then exercise the same code path.
    pub db: PathBuf,
}

/// Why the backend could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database {}", path.display())]
    OpenDatabase {
        path: PathBuf,
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
    let (store, store_thread) =
        Store::open_joinable(&config.db)
            .await
            .map_err(|source| Error::OpenDatabase {
                path: config.db.clone(),
                source,
            })?;
    match listener.local_addr() {
        Ok(address) => {
            tracing::info!(%address, db = %config.db.display(), "todo-backend listening")
        }
        Err(error) => tracing::warn!(%error, "todo-backend listening on an unknown address"),
    }
    warp::serve(routes(store))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    // The server has dropped the routes, and with them every store handle:
    // the store thread finishes what is queued and closes the database.
    store_thread.join().await;
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
