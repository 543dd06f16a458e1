//! The JSON bodies on the wire, shaped exactly like the sample's
//! FastAPI/pydantic v1 models (field order included), and the source of the
//! schemas in `/openapi.json`.
//!
//! These are a boundary: the store works with [`crate::store::Item`], which
//! also knows the tenant; the wire never shows it.

use serde::Serialize;
use utoipa::ToSchema;

use crate::store::Item;

/// Longest accepted item name, in characters (Unicode scalar values).
pub const MAX_NAME_CHARS: usize = 1000;

/// A todo item as clients see it. Keys in this order: `id`, `owner_id`,
/// `name`, `is_complete` (as pydantic serialised the sample's model).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"id": 1, "owner_id": "933ad738-7265-4b5f-9eae-a1a62928772e", "name": "Walk the dog", "is_complete": false}))]
pub struct TodoItem {
    /// Unique, from 1, never reused.
    pub id: i64,
    /// The object id of the user who created the item.
    pub owner_id: String,
    pub name: String,
    pub is_complete: bool,
}

impl From<Item> for TodoItem {
    fn from(item: Item) -> Self {
        TodoItem {
            id: item.id,
            owner_id: item.owner_id,
            name: item.name,
            is_complete: item.is_complete,
        }
    }
}

/// The item to create. Unknown fields are ignored, as in the sample.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"name": "Walk the dog"}))]
pub struct TodoItemInCreate {
    #[schema(min_length = 1, max_length = 1000)]
    pub name: String,
}

/// The body of `POST /todoitems`: the item embedded under `item`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreateTodoBody {
    pub item: TodoItemInCreate,
}

/// One item, wrapped as the sample did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TodoItemInResponse {
    pub item: TodoItem,
}

/// A list of items, wrapped as the sample did.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TodoItemsInList {
    pub items: Vec<TodoItem>,
}

/// Every error except validation: `{"detail": "<message>"}`.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"detail": "Item does not exist"}))]
pub struct ErrorDetail {
    pub detail: String,
}

/// A 422 body, as FastAPI sends it: what is wrong, where.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"detail": [{"loc": ["body", "item", "name"], "msg": "field required", "type": "value_error.missing"}]}))]
pub struct HttpValidationError {
    pub detail: Vec<ValidationError>,
}

/// One problem in a request, in pydantic v1's words.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ValidationError {
    /// Where: `["body", "item", "name"]`, `["path", "id"]`, `["body", 12]`.
    pub loc: Vec<LocSegment>,
    pub msg: String,
    /// pydantic's error type, e.g. `value_error.missing`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Limits and positions, when the error type has any.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub ctx: Option<serde_json::Value>,
}

/// A step of a [`ValidationError`] location: a field name or a position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum LocSegment {
    Field(String),
    Index(u64),
}

impl From<&str> for LocSegment {
    fn from(field: &str) -> Self {
        LocSegment::Field(field.to_owned())
    }
}

impl ValidationError {
    /// An error without context at the given location.
    pub fn new(loc: &[&str], msg: &str, kind: &str) -> Self {
        ValidationError {
            loc: loc.iter().copied().map(LocSegment::from).collect(),
            msg: msg.to_owned(),
            kind: kind.to_owned(),
            ctx: None,
        }
    }

    /// pydantic's `value_error.missing`.
    pub fn missing(loc: &[&str]) -> Self {
        Self::new(loc, "field required", "value_error.missing")
    }

    /// Adds pydantic's `ctx` object.
    pub fn with_ctx(mut self, ctx: serde_json::Value) -> Self {
        self.ctx = Some(ctx);
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn todo_item_keys_are_in_the_samples_order() {
        let item = TodoItem {
            id: 7,
            owner_id: "o".into(),
            name: "n".into(),
            is_complete: false,
        };
        assert_eq!(
            serde_json::to_string(&item).unwrap(),
            r#"{"id":7,"owner_id":"o","name":"n","is_complete":false}"#
        );
    }

    #[test]
    fn validation_errors_serialise_like_pydantic_v1() {
        let errors = HttpValidationError {
            detail: vec![
                ValidationError::missing(&["body", "item", "name"]),
                ValidationError {
                    loc: vec!["body".into(), LocSegment::Index(3)],
                    msg: "m".into(),
                    kind: "value_error.jsondecode".into(),
                    ctx: Some(serde_json::json!({"pos": 3})),
                },
            ],
        };
        assert_eq!(
            serde_json::to_string(&errors).unwrap(),
            r#"{"detail":[{"loc":["body","item","name"],"msg":"field required","type":"value_error.missing"},{"loc":["body",3],"msg":"m","type":"value_error.jsondecode","ctx":{"pos":3}}]}"#
        );
    }
}
