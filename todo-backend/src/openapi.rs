//! The OpenAPI 3 document served at `/openapi.json`, generated from the
//! handlers' `#[utoipa::path]` attributes and the wire models, so it cannot
//! drift from the code. It declares no security scheme: the gateway in front
//! adds its own.

use utoipa::OpenApi;

use crate::handlers;
use crate::models::{
    CreateTodoBody, ErrorDetail, HttpValidationError, LocSegment, TodoItem, TodoItemInCreate,
    TodoItemInResponse, TodoItemsInList, ValidationError,
};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "todo-backend",
        description = "The sample's todo API without token code. It trusts identity headers set by the \
                       authorization gateway, which must be the only client able to reach it: `X-User-Id` \
                       and `X-User-Tenant` (both required, else 401), `X-User-Roles` (comma-separated; \
                       `Admin` sees and deletes all items of its tenant), `X-User-Name` and `X-User-Email` \
                       (percent-encoded UTF-8, for logs only)."
    ),
    paths(
        handlers::health,
        handlers::openapi_json,
        handlers::list_items,
        handlers::create_item,
        handlers::delete_all_items,
        handlers::get_item,
        handlers::delete_item,
    ),
    components(schemas(
        TodoItem,
        TodoItemInCreate,
        CreateTodoBody,
        TodoItemInResponse,
        TodoItemsInList,
        ErrorDetail,
        HttpValidationError,
        ValidationError,
        LocSegment,
    ))
)]
struct ApiDoc;

/// The document served at `/openapi.json`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
