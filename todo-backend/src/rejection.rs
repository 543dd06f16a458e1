//! Every way a request can fail, and the one place ([`recover`]) that turns
//! a rejection into the sample's JSON error response.
//!
//! Statuses, messages and headers are the sample's (FastAPI/Starlette):
//! `{"detail": "..."}` bodies, `WWW-Authenticate: Bearer` on 401 and on the
//! admin 403, `Allow` on 405. Each denial is logged once, here, with a fixed
//! machine-readable `reason`.

use std::convert::Infallible;

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::assertion::Refusal;
use crate::models::{ErrorDetail, HttpValidationError, ValidationError};
use crate::store::StoreError;

/// A request that cannot be served, as a warp rejection.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No `X-User-Id` or no `X-User-Tenant` (the gateway did not vouch).
    #[error("not authenticated")]
    NotAuthenticated,
    /// `--trust gateway-assertion`: the assertion is missing or fails a
    /// check (401 saying which), or the keys to check it are unavailable (503).
    #[error("identity assertion refused: {0}")]
    Assertion(Refusal),
    /// `DELETE /todoitems` by a caller without the `Admin` role.
    #[error("admin privileges required")]
    AdminRequired,
    /// The item exists in the caller's tenant but is someone else's.
    #[error("the item belongs to another user")]
    ItemForbidden,
    /// No such item in the caller's tenant (items of other tenants included).
    #[error("item does not exist")]
    ItemNotFound,
    /// The request is malformed; the list says how, like FastAPI's 422.
    #[error("request validation failed")]
    Validation(Vec<ValidationError>),
    /// The body is over [`crate::body::MAX_BODY_BYTES`].
    #[error("request body too large")]
    PayloadTooLarge,
    /// The body could not be read (the client went away mid-body, say).
    #[error("reading the request body failed")]
    BodyRead(#[source] warp::Error),
    /// The path exists, the method does not; `allow` lists those that do.
    #[error("method not allowed")]
    MethodNotAllowed { allow: String },
    /// The database failed; the client learns nothing more than 500.
    #[error("storage failed")]
    Store(#[from] StoreError),
}

impl warp::reject::Reject for ApiError {}

impl ApiError {
    /// The fixed reason logged for this failure.
    fn reason(&self) -> &'static str {
        match self {
            ApiError::NotAuthenticated => "not_authenticated",
            ApiError::Assertion(refusal) => refusal.reason(),
            ApiError::AdminRequired => "missing_role",
            ApiError::ItemForbidden => "not_owner",
            ApiError::ItemNotFound => "no_item",
            ApiError::Validation(_) => "invalid_request",
            ApiError::PayloadTooLarge => "body_too_large",
            ApiError::BodyRead(_) => "body_read",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::Store(_) => "storage",
        }
    }

    fn to_response(&self) -> Response {
        match self {
            ApiError::NotAuthenticated => {
                with_bearer(detail(StatusCode::UNAUTHORIZED, "Not authenticated"))
            }
            ApiError::Assertion(Refusal::KeysUnavailable) => detail(
                StatusCode::SERVICE_UNAVAILABLE,
                &Refusal::KeysUnavailable.to_string(),
            ),
            ApiError::Assertion(refusal) => {
                with_bearer(detail(StatusCode::UNAUTHORIZED, &refusal.to_string()))
            }
            ApiError::AdminRequired => {
                with_bearer(detail(StatusCode::FORBIDDEN, "Admin privileges required"))
            }
            ApiError::ItemForbidden => detail(
                StatusCode::FORBIDDEN,
                "User is not allowed to access the item",
            ),
            ApiError::ItemNotFound => detail(StatusCode::NOT_FOUND, "Item does not exist"),
            ApiError::Validation(errors) => warp::reply::with_status(
                warp::reply::json(&HttpValidationError {
                    detail: errors.clone(),
                }),
                StatusCode::UNPROCESSABLE_ENTITY,
            )
            .into_response(),
            ApiError::PayloadTooLarge => {
                detail(StatusCode::PAYLOAD_TOO_LARGE, "Request Entity Too Large")
            }
            ApiError::BodyRead(_) => detail(
                StatusCode::BAD_REQUEST,
                "There was an error parsing the body",
            ),
            ApiError::MethodNotAllowed { allow } => {
                let mut response = detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed");
                if let Ok(allow) = HeaderValue::from_str(allow) {
                    response.headers_mut().insert(header::ALLOW, allow);
                }
                response
            }
            ApiError::Store(_) => {
                detail(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
            }
        }
    }
}

/// A `{"detail": message}` response.
fn detail(status: StatusCode, message: &str) -> Response {
    let body = warp::reply::json(&ErrorDetail {
        detail: message.to_owned(),
    });
    warp::reply::with_status(body, status).into_response()
}

/// RFC 6750 §3: the sample's bearer scheme challenged on 401 and on the
/// admin 403 (FastAPI's `ForbiddenAccess` set it too).
fn with_bearer(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

/// Turns any rejection into a response; the only place that does.
///
/// Routes reject with at most one [`ApiError`] per request (a path's
/// method fallback rejects only when no route of that path has the method),
/// so it wins over warp's own rejections, which are for cases we did not
/// anticipate.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    if let Some(error) = rejection.find::<ApiError>() {
        match error {
            ApiError::Store(source) => {
                // The whole chain: "…: TLS handshake with db failed: …".
                tracing::error!(
                    reason = error.reason(),
                    error = source.reason(),
                    "request failed"
                )
            }
            ApiError::BodyRead(source) => {
                tracing::info!(reason = error.reason(), error = %source, "request refused")
            }
            ApiError::Assertion(refusal) => {
                tracing::info!(reason = error.reason(), detail = %refusal, "request refused")
            }
            _ => tracing::info!(reason = error.reason(), "request refused"),
        }
        return Ok(error.to_response());
    }
    if rejection.is_not_found() {
        return Ok(detail(StatusCode::NOT_FOUND, "Not Found"));
    }
    if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        return Ok(ApiError::PayloadTooLarge.to_response());
    }
    if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        return Ok(detail(StatusCode::METHOD_NOT_ALLOWED, "Method Not Allowed"));
    }
    if rejection.find::<warp::reject::InvalidHeader>().is_some() {
        return Ok(detail(StatusCode::BAD_REQUEST, "Bad Request"));
    }
    tracing::error!(?rejection, "unhandled rejection");
    Ok(detail(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Internal Server Error",
    ))
}
