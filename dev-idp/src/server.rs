//! The HTTP server: Entra's URL layout under the base URL, built with warp.
//!
//! | Route | Handler |
//! |---|---|
//! | `GET /{tenant}/v2.0/.well-known/openid-configuration` | [`discovery`] v2 |
//! | `GET /{tenant}/.well-known/openid-configuration` | [`discovery`] v1 |
//! | `GET /{tenant}/discovery/v2.0/keys`, `/{tenant}/discovery/keys` | JWKS |
//! | `GET /{tenant}/oauth2/v2.0/authorize` (and v1 `/oauth2/authorize`) | [`authorize`] |
//! | `POST`/`OPTIONS /{tenant}/oauth2/v2.0/token` (and v1 `/oauth2/token`) | [`token`], [`cors`] |
//! | `POST /v1.0/users/{id}/checkMemberGroups`, `…/getMemberObjects` | [`graph`] (Microsoft Graph stand-in) |
//! | `POST /_admin/rotate-keys` (loopback only) | [`admin`] |
//! | `GET /` | an index page |
//!
//! [`run`] takes an already-bound listener, so tests bind port 0 and run many
//! servers in one process.

mod admin;
mod authorize;
mod cors;
mod discovery;
pub(crate) mod graph;
mod html;
mod oauth_error;
mod params;
mod scopes;
mod tenant;
mod token;

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};
use warp::{Filter, Rejection};

use crate::{Error, Idp};

pub use html::NOT_FOR_PRODUCTION;

/// Largest token request body accepted.
const MAX_BODY: u64 = 64 * 1024;

/// Serves `idp` on `listener` until `shutdown` completes, then drains open
/// connections.
pub async fn run(
    listener: tokio::net::TcpListener,
    idp: Arc<Idp>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Error> {
    warp::serve(routes(idp))
        .incoming(listener)
        .graceful(shutdown)
        .run()
        .await;
    Ok(())
}

/// All routes, with rejections turned into responses. Each route matches
/// its path before its method, so an unknown path is a 404, not a 405.
pub(crate) fn routes(
    idp: Arc<Idp>,
) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let with_idp = warp::any().map(move || idp.clone());
    let query = warp::query::raw().or(warp::any().map(String::new)).unify();

    let v2_discovery = warp::path!(String / "v2.0" / ".well-known" / "openid-configuration")
        .and(warp::get())
        .and(with_idp.clone())
        .map(|t: String, idp: Arc<Idp>| discovery::v2_document(&idp, &t));
    let v1_discovery = warp::path!(String / ".well-known" / "openid-configuration")
        .and(warp::get())
        .and(with_idp.clone())
        .map(|t: String, idp: Arc<Idp>| discovery::v1_document(&idp, &t));
    let v2_keys = warp::path!(String / "discovery" / "v2.0" / "keys")
        .and(warp::get())
        .and(with_idp.clone())
        .map(|t: String, idp: Arc<Idp>| discovery::v2_keys(&idp, &t));
    let v1_keys = warp::path!(String / "discovery" / "keys")
        .and(warp::get())
        .and(with_idp.clone())
        .map(|t: String, idp: Arc<Idp>| discovery::v1_keys(&idp, &t));
    let authorize = warp::path!(String / "oauth2" / "v2.0" / "authorize")
        .or(warp::path!(String / "oauth2" / "authorize"))
        .unify()
        .and(warp::get())
        .and(query)
        .and(with_idp.clone())
        .map(|t: String, q: String, idp: Arc<Idp>| authorize::authorize(&idp, &t, &q));
    let token_path = warp::path!(String / "oauth2" / "v2.0" / "token")
        .or(warp::path!(String / "oauth2" / "token"))
        .unify();
    let token = token_path
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::header::optional::<String>("origin"))
        .and(with_idp.clone())
        .map(
            |t: String,
             body: bytes::Bytes,
             authorization: Option<String>,
             origin: Option<String>,
             idp: Arc<Idp>| {
                let response = token::token(&idp, &t, &body, authorization.as_deref());
                cors::with_cors(response, &idp, origin.as_deref())
            },
        );
    let preflight = token_path
        .and(warp::options())
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>(
            "access-control-request-headers",
        ))
        .and(with_idp.clone())
        .map(
            |_t: String, origin: Option<String>, headers: Option<String>, idp: Arc<Idp>| {
                cors::preflight(&idp, origin.as_deref(), headers.as_deref())
            },
        );
    let graph = warp::path!("v1.0" / "users" / String / String)
        .and(warp::post())
        .and(warp::body::content_length_limit(MAX_BODY))
        .and(warp::body::bytes())
        .and(warp::header::optional::<String>("authorization"))
        .and(with_idp.clone())
        .then(
            |user: String,
             action: String,
             body: bytes::Bytes,
             authorization: Option<String>,
             idp: Arc<Idp>| async move {
                graph::member_groups(&idp, &user, &action, authorization.as_deref(), &body).await
            },
        );
    let rotate = warp::path!("_admin" / "rotate-keys")
        .and(warp::post())
        .and(warp::addr::remote())
        .and(with_idp.clone())
        .map(|remote, idp: Arc<Idp>| admin::rotate_keys(&idp, remote));
    let index = warp::path::end()
        .and(warp::get())
        .and(with_idp)
        .map(|idp: Arc<Idp>| {
            let tenants: Vec<(String, String)> = idp
                .config()
                .tenants
                .iter()
                .map(|t| (t.display_name.clone(), t.id.clone()))
                .collect();
            warp::reply::html(html::index_page(idp.base_url(), &tenants)).into_response()
        });

    v2_discovery
        .or(v1_discovery)
        .unify()
        .or(v2_keys)
        .unify()
        .or(v1_keys)
        .unify()
        .or(authorize)
        .unify()
        .or(token)
        .unify()
        .or(preflight)
        .unify()
        .or(graph)
        .unify()
        .or(rotate)
        .unify()
        .or(index)
        .unify()
        .recover(recover)
        .unify()
}

/// Turns warp's rejections (no route, wrong method, body too large) into
/// small JSON errors.
async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let (status, error) = if rejection.is_not_found() {
        (StatusCode::NOT_FOUND, "not_found")
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed")
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large")
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        (StatusCode::LENGTH_REQUIRED, "length_required")
    } else {
        (StatusCode::BAD_REQUEST, "invalid_request")
    };
    Ok(
        warp::reply::with_status(warp::reply::json(&json!({ "error": error })), status)
            .into_response(),
    )
}
