//! What each endpoint does once its path, method, identity and body are
//! known: the sample's rules, kept per tenant.
//!
//! Who may do what: a user sees and deletes their own items; a user with
//! the `Admin` role sees and deletes every item of their tenant; nobody ever
//! reaches another tenant's items (they answer 404, as if absent). The
//! `#[utoipa::path]` attributes here are the source of `/openapi.json`.

use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::identity::{Identity, Trust};
use crate::models::{
    CreateTodoBody, ErrorDetail, HttpValidationError, TodoItem, TodoItemInCreate,
    TodoItemInResponse, TodoItemsInList, ValidationError,
};
use crate::rejection::ApiError;
use crate::store::{Item, Store};

/// Liveness: no identity needed.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    responses((status = 200, description = "The service is up", body = String, content_type = "application/json", example = json!("OK")))
)]
pub async fn health() -> Result<Response, warp::Rejection> {
    Ok(warp::reply::json(&"OK").into_response())
}

/// Readiness: the database answers `SELECT 1` in time and, with `--trust
/// gateway-assertion`, the gateway's keys are held or can be fetched now.
/// No identity needed. A 503 says why, and the reason is logged. A probe,
/// not an API operation: not in `/openapi.json` ([`crate::PROBES`]).
pub async fn ready(store: Store, trust: Trust) -> Result<Response, warp::Rejection> {
    let not_ready = |detail: String| {
        Ok(warp::reply::with_status(
            warp::reply::json(&ErrorDetail { detail }),
            StatusCode::SERVICE_UNAVAILABLE,
        )
        .into_response())
    };
    if let Err(error) = store.ready().await {
        let reason = error.reason();
        tracing::warn!(%reason, "not ready: the database is unavailable");
        return not_ready(format!("database unavailable: {reason}"));
    }
    if let Trust::GatewayAssertion(verifier) = &trust
        && let Err(error) = verifier.ready().await
    {
        tracing::warn!(%error, "not ready: the gateway's JWKS cannot be fetched");
        return not_ready(format!(
            "Not ready: the gateway's JWKS cannot be fetched ({error})"
        ));
    }
    Ok(warp::reply::json(&serde_json::json!({"status": "ready"})).into_response())
}

/// The caller's items, or all of the tenant's items for an admin.
#[utoipa::path(
    get,
    path = "/todoitems",
    tag = "todo",
    responses(
        (status = 200, description = "The caller's items (all of the tenant's for `Admin`)", body = TodoItemsInList),
        (status = 401, description = "No identity headers", body = ErrorDetail),
    )
)]
pub async fn list_items(identity: Identity, store: Store) -> Result<Response, warp::Rejection> {
    let owner = (!identity.is_admin()).then_some(identity.user_id.as_str());
    let items = store
        .list(&identity.tenant_id, owner)
        .await
        .map_err(reject)?;
    let items = items.into_iter().map(TodoItem::from).collect();
    Ok(warp::reply::json(&TodoItemsInList { items }).into_response())
}

/// Creates an item owned by the caller.
#[utoipa::path(
    post,
    path = "/todoitems",
    tag = "todo",
    request_body = CreateTodoBody,
    responses(
        (status = 201, description = "Created", body = TodoItemInResponse),
        (status = 401, description = "No identity headers", body = ErrorDetail),
        (status = 413, description = "Body over 64 KiB", body = ErrorDetail),
        (status = 422, description = "Malformed body, or a name empty or over 1,000 characters", body = HttpValidationError),
    )
)]
pub async fn create_item(
    identity: Identity,
    new: TodoItemInCreate,
    store: Store,
) -> Result<Response, warp::Rejection> {
    let item = store
        .create(&identity.tenant_id, &identity.user_id, &new.name)
        .await
        .map_err(reject)?;
    tracing::info!(item = item.id, user = %identity, "item created");
    let body = TodoItemInResponse { item: item.into() };
    Ok(warp::reply::with_status(warp::reply::json(&body), StatusCode::CREATED).into_response())
}

/// Deletes every item of the caller's tenant; admins only.
#[utoipa::path(
    delete,
    path = "/todoitems",
    tag = "todo",
    responses(
        (status = 204, description = "All of the tenant's items deleted"),
        (status = 401, description = "No identity headers", body = ErrorDetail),
        (status = 403, description = "Admin privileges required", body = ErrorDetail),
    )
)]
pub async fn delete_all_items(
    identity: Identity,
    store: Store,
) -> Result<Response, warp::Rejection> {
    if !identity.is_admin() {
        return Err(warp::reject::custom(ApiError::AdminRequired));
    }
    let deleted = store
        .delete_all(&identity.tenant_id)
        .await
        .map_err(reject)?;
    tracing::info!(deleted, user = %identity, "all items of the tenant deleted");
    Ok(no_content())
}

/// One item, if the caller owns it or is an admin of its tenant.
#[utoipa::path(
    get,
    path = "/todoitems/{id}",
    tag = "todo",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 200, description = "The item", body = TodoItemInResponse),
        (status = 401, description = "No identity headers", body = ErrorDetail),
        (status = 403, description = "Someone else's item", body = ErrorDetail),
        (status = 404, description = "No such item in the caller's tenant", body = ErrorDetail),
        (status = 422, description = "The id is not an integer", body = HttpValidationError),
    )
)]
pub async fn get_item(
    raw_id: String,
    identity: Identity,
    store: Store,
) -> Result<Response, warp::Rejection> {
    let item = accessible_item(&raw_id, &identity, &store).await?;
    let body = TodoItemInResponse { item: item.into() };
    Ok(warp::reply::json(&body).into_response())
}

/// Deletes one item, if the caller owns it or is an admin of its tenant.
#[utoipa::path(
    delete,
    path = "/todoitems/{id}",
    tag = "todo",
    params(("id" = i64, Path, description = "The item's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No identity headers", body = ErrorDetail),
        (status = 403, description = "Someone else's item", body = ErrorDetail),
        (status = 404, description = "No such item in the caller's tenant", body = ErrorDetail),
        (status = 422, description = "The id is not an integer", body = HttpValidationError),
    )
)]
pub async fn delete_item(
    raw_id: String,
    identity: Identity,
    store: Store,
) -> Result<Response, warp::Rejection> {
    let item = accessible_item(&raw_id, &identity, &store).await?;
    // Ids are never reused, so this id still names the item just checked;
    // if a concurrent request deleted it meanwhile, the answer is still 204.
    store
        .delete(&identity.tenant_id, item.id)
        .await
        .map_err(reject)?;
    tracing::info!(item = item.id, user = %identity, "item deleted");
    Ok(no_content())
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "meta",
    responses((status = 200, description = "The OpenAPI document of this API", body = Object))
)]
pub async fn openapi_json() -> Result<Response, warp::Rejection> {
    Ok(warp::reply::json(&crate::openapi::openapi()).into_response())
}

/// The item `raw_id` names, if the caller may see it.
async fn accessible_item(
    raw_id: &str,
    identity: &Identity,
    store: &Store,
) -> Result<Item, warp::Rejection> {
    let Some(id) = parse_id(raw_id)? else {
        return Err(warp::reject::custom(ApiError::ItemNotFound));
    };
    let item = store
        .get(&identity.tenant_id, id)
        .await
        .map_err(reject)?
        .ok_or(ApiError::ItemNotFound)?;
    if identity.is_admin() || item.owner_id == identity.user_id {
        Ok(item)
    } else {
        Err(warp::reject::custom(ApiError::ItemForbidden))
    }
}

/// Parses a path id like pydantic's `int`: an optional sign and digits.
/// An integer too large for an id cannot name an item: `Ok(None)` (404).
fn parse_id(raw: &str) -> Result<Option<i64>, ApiError> {
    let digits = raw.strip_prefix(['+', '-']).unwrap_or(raw);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiError::Validation(vec![ValidationError::new(
            &["path", "id"],
            "value is not a valid integer",
            "type_error.integer",
        )]));
    }
    Ok(raw.parse().ok())
}

fn no_content() -> Response {
    warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response()
}

fn reject(error: impl Into<ApiError>) -> warp::Rejection {
    warp::reject::custom(error.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_parse_like_pydantic_ints() {
        let cases = [
            ("1", Some(Some(1))),
            ("+7", Some(Some(7))),
            ("-3", Some(Some(-3))),
            ("007", Some(Some(7))),
            ("99999999999999999999", Some(None)),
            ("abc", None),
            ("1.5", None),
            ("", None),
            ("-", None),
            ("1e3", None),
        ];
        for (raw, expected) in cases {
            assert_eq!(parse_id(raw).ok(), expected, "id {raw:?}");
        }
    }
}
