//! The routes: which path and method reach which handler.
//!
//! Each path is matched first, then the method, then the identity, then the
//! body. So an unknown path is a 404 (not a 401), a known path with another
//! method is a 405 with `Allow`, and a missing identity is a 401 before any
//! body is read. [`ROUTES`] is the table of what exists; the 405 fallbacks
//! and the OpenAPI test both read it.

use warp::Filter;
use warp::http::Method;
use warp::reply::Reply;

use crate::body;
use crate::handlers;
use crate::identity::{Trust, identity};
use crate::rejection::{self, ApiError};
use crate::request_id;
use crate::store::Store;

/// One path (as an OpenAPI template) and the methods it serves.
#[derive(Debug)]
pub struct Route {
    pub path: &'static str,
    pub methods: &'static [Method],
}

/// Every route of the API, in the order they are tried.
pub const ROUTES: &[Route] = &[
    Route {
        path: "/health",
        methods: &[Method::GET],
    },
    Route {
        path: "/openapi.json",
        methods: &[Method::GET],
    },
    Route {
        path: "/todoitems",
        methods: &[Method::GET, Method::POST, Method::DELETE],
    },
    Route {
        path: "/todoitems/{id}",
        methods: &[Method::GET, Method::DELETE],
    },
];

/// Probes for the orchestrator: served, but not part of the API, so not in
/// [`ROUTES`] nor in `/openapi.json` (the gateway's policy need not route
/// them; the kubelet or compose calls the backend directly).
pub const PROBES: &[Route] = &[Route {
    path: "/ready",
    methods: &[Method::GET],
}];

/// The whole API: routes, the JSON error responses, the access log, and
/// a tracing span per request that carries its request id.
pub fn routes(
    store: Store,
    trust: Trust,
) -> impl Filter<Extract = (impl Reply,), Error = std::convert::Infallible> + Clone {
    let health = warp::path!("health").and(
        warp::get()
            .and_then(handlers::health)
            .or(wrong_method("/health"))
            .unify(),
    );
    let ready = warp::path!("ready").and(
        warp::get()
            .and(with(&store))
            .and(with_trust(&trust))
            .and_then(handlers::ready)
            .or(wrong_method("/ready"))
            .unify(),
    );
    let openapi = warp::path!("openapi.json").and(
        warp::get()
            .and_then(handlers::openapi_json)
            .or(wrong_method("/openapi.json"))
            .unify(),
    );
    let items = warp::path!("todoitems").and(
        (warp::get()
            .and(identity(trust.clone()))
            .and(with(&store))
            .and_then(handlers::list_items))
        .or(warp::post()
            .and(identity(trust.clone()))
            .and(body::new_item())
            .and(with(&store))
            .and_then(handlers::create_item))
        .unify()
        .or(warp::delete()
            .and(identity(trust.clone()))
            .and(with(&store))
            .and_then(handlers::delete_all_items))
        .unify()
        .or(wrong_method("/todoitems"))
        .unify(),
    );
    let item = item_path()
        .and(warp::get())
        .and(identity(trust.clone()))
        .and(with(&store))
        .and_then(handlers::get_item)
        .or(item_path()
            .and(warp::delete())
            .and(identity(trust.clone()))
            .and(with(&store))
            .and_then(handlers::delete_item))
        .unify()
        .or(item_path()
            .and(wrong_method("/todoitems/{id}"))
            .map(|_id: String, response| response))
        .unify();
    let api = health
        .or(ready)
        .unify()
        .or(openapi)
        .unify()
        .or(items)
        .unify()
        .or(item)
        .unify();
    no_empty_segments()
        .and(api)
        .recover(rejection::recover)
        .unify()
        .with(warp::log::custom(access_log))
        .with(warp::trace(request_span))
}

/// The span every log line of a request is logged in: `request_id` is the
/// gateway's `X-Request-Id` when it sent one well-formed id, else a new one.
fn request_span(info: warp::trace::Info<'_>) -> tracing::Span {
    let id = request_id::from_headers(info.request_headers());
    tracing::info_span!("request", request_id = %id)
}

/// warp ignores empty path segments, so `/todoitems/` and `//todoitems`
/// would reach `/todoitems`; the table says any other path is a 404.
fn no_empty_segments() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::full()
        .and_then(|path: warp::path::FullPath| async move {
            let path = path.as_str();
            if path.contains("//") || (path.len() > 1 && path.ends_with('/')) {
                Err(warp::reject::not_found())
            } else {
                Ok(())
            }
        })
        .untuple_one()
}

/// `/todoitems/{id}`, extracting the raw id: parsing it is the handler's
/// job, so that a non-integer id is a 422 after the 401 check, as in FastAPI.
fn item_path() -> impl Filter<Extract = (String,), Error = warp::Rejection> + Clone {
    warp::path!("todoitems" / String)
}

fn with_trust(
    trust: &Trust,
) -> impl Filter<Extract = (Trust,), Error = std::convert::Infallible> + Clone + use<> {
    let trust = trust.clone();
    warp::any().map(move || trust.clone())
}

fn with(
    store: &Store,
) -> impl Filter<Extract = (Store,), Error = std::convert::Infallible> + Clone + use<> {
    let store = store.clone();
    warp::any().map(move || store.clone())
}

/// The last resort of a path: 405 with `Allow` when no route of `path` has
/// the request's method. When one has, that route's own rejection stands.
///
/// `Allow` lists every method of the path (RFC 9110 §15.5.6), formatted as
/// Starlette formats it; Starlette itself listed only the methods of the
/// first route declared for the path (`GET` for `/todoitems`).
fn wrong_method(
    path: &'static str,
) -> impl Filter<Extract = (warp::reply::Response,), Error = warp::Rejection> + Clone {
    let allowed = ROUTES
        .iter()
        .chain(PROBES)
        .find(|route| route.path == path)
        .map(|route| route.methods)
        .unwrap_or_default();
    let allow = allowed
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ");
    warp::method().and_then(move |method: Method| {
        let allow = allow.clone();
        async move {
            if allowed.contains(&method) {
                Err::<warp::reply::Response, _>(warp::reject::not_found())
            } else {
                Err(warp::reject::custom(ApiError::MethodNotAllowed { allow }))
            }
        }
    })
}

/// One line per request with the caller's user id and tenant, as the
/// gateway sent them (they are only logged here, never trusted).
fn access_log(info: warp::log::Info<'_>) {
    use crate::identity::headers;
    let header = |name| {
        info.request_headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    tracing::info!(
        target: "todo_backend::access",
        method = %info.method(),
        path = info.path(),
        status = info.status().as_u16(),
        elapsed_ms = info.elapsed().as_secs_f64() * 1000.0,
        user_id = header(headers::USER_ID),
        tenant = header(headers::USER_TENANT),
        "request"
    );
}
