//! Reading and checking the body of `POST /todoitems`.
//!
//! The body is read with a hard size limit (chunked bodies included), then
//! checked by hand rather than by serde so that every problem is reported
//! the way FastAPI + pydantic v1 reported it: a 422 whose `detail` lists each
//! problem's location, message and type. Where the sample accepted something
//! dubious (an empty name, a number as a name) this is stricter, on purpose.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use futures_util::{Stream, StreamExt};
use serde_json::{Value, json};
use warp::Filter;

use crate::models::{LocSegment, MAX_NAME_CHARS, TodoItemInCreate, ValidationError};
use crate::rejection::ApiError;

/// Largest accepted request body; larger ones get 413.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Extracts a valid item to create, or rejects with 413 or 422.
pub fn new_item() -> impl Filter<Extract = (TodoItemInCreate,), Error = warp::Rejection> + Clone {
    warp::header::optional::<String>("content-type")
        .and(limited_body())
        .and_then(|content_type: Option<String>, body: Bytes| async move {
            parse_new_item(content_type.as_deref(), &body)
                .map_err(|errors| warp::reject::custom(ApiError::Validation(errors)))
        })
}

/// The whole body, at most [`MAX_BODY_BYTES`]. A `Content-Length` over the
/// limit is refused before reading; a chunked body is cut off at the limit.
fn limited_body() -> impl Filter<Extract = (Bytes,), Error = warp::Rejection> + Clone {
    warp::header::optional::<u64>("content-length")
        .and(warp::body::stream())
        .and_then(|length: Option<u64>, body| async move {
            if length.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
                return Err(warp::reject::custom(ApiError::PayloadTooLarge));
            }
            collect(body).await.map_err(warp::reject::custom)
        })
}

async fn collect<B: Buf>(
    body: impl Stream<Item = Result<B, warp::Error>>,
) -> Result<Bytes, ApiError> {
    let mut body = std::pin::pin!(body);
    let mut collected = BytesMut::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(ApiError::BodyRead)?;
        if collected.len() + chunk.remaining() > MAX_BODY_BYTES {
            return Err(ApiError::PayloadTooLarge);
        }
        collected.put(chunk);
    }
    Ok(collected.freeze())
}

/// Checks a `POST /todoitems` body like FastAPI checked
/// `Body(..., embed=True, alias="item")` of a pydantic v1 model.
pub fn parse_new_item(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<TodoItemInCreate, Vec<ValidationError>> {
    let missing_item = || vec![ValidationError::missing(&["body", "item"])];
    // FastAPI parses JSON when there is no content type or a JSON one; any
    // other body is not an object, so `item` is missing.
    if body.is_empty() || !content_type.is_none_or(is_json) {
        return Err(missing_item());
    }
    let document: Value =
        serde_json::from_slice(body).map_err(|e| vec![json_decode_error(&e, body)])?;
    let item = match document.get("item") {
        None | Some(Value::Null) => return Err(missing_item()),
        Some(Value::Object(item)) => item,
        Some(_) => {
            return Err(vec![ValidationError::new(
                &["body", "item"],
                "value is not a valid dict",
                "type_error.dict",
            )]);
        }
    };
    let at = ["body", "item", "name"];
    let name = match item.get("name") {
        None => return Err(vec![ValidationError::missing(&at)]),
        Some(Value::Null) => {
            return Err(vec![ValidationError::new(
                &at,
                "none is not an allowed value",
                "type_error.none.not_allowed",
            )]);
        }
        Some(Value::String(name)) => name,
        Some(_) => {
            return Err(vec![ValidationError::new(
                &at,
                "str type expected",
                "type_error.str",
            )]);
        }
    };
    let chars = name.chars().count();
    if chars < 1 {
        return Err(vec![
            ValidationError::new(
                &at,
                "ensure this value has at least 1 characters",
                "value_error.any_str.min_length",
            )
            .with_ctx(json!({"limit_value": 1})),
        ]);
    }
    if chars > MAX_NAME_CHARS {
        return Err(vec![
            ValidationError::new(
                &at,
                &format!("ensure this value has at most {MAX_NAME_CHARS} characters"),
                "value_error.any_str.max_length",
            )
            .with_ctx(json!({"limit_value": MAX_NAME_CHARS})),
        ]);
    }
    Ok(TodoItemInCreate { name: name.clone() })
}

/// `application/json` or `application/<anything>+json`, parameters ignored.
fn is_json(content_type: &str) -> bool {
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    match essence.strip_prefix("application/") {
        Some(subtype) => subtype == "json" || subtype.ends_with("+json"),
        None => false,
    }
}

/// FastAPI's 422 entry for a `json.JSONDecodeError`: located at the
/// character offset, with Python's `msg: line L column C (char P)` message.
/// (FastAPI also echoed the whole body as `ctx.doc`; that is left out.)
fn json_decode_error(error: &serde_json::Error, body: &[u8]) -> ValidationError {
    let (line, column) = (error.line(), error.column());
    let full = error.to_string();
    let reason = full
        .strip_suffix(&format!(" at line {line} column {column}"))
        .unwrap_or(&full)
        .to_owned();
    let pos = char_offset(body, line, column);
    ValidationError {
        loc: vec!["body".into(), LocSegment::Index(pos)],
        msg: format!("{reason}: line {line} column {column} (char {pos})"),
        kind: "value_error.jsondecode".into(),
        ctx: Some(json!({"msg": reason, "pos": pos, "lineno": line, "colno": column})),
    }
}

/// The 0-based character offset of serde's 1-based (line, byte column).
fn char_offset(body: &[u8], line: usize, column: usize) -> u64 {
    let text = String::from_utf8_lossy(body);
    let line_start: usize = text
        .split_inclusive('\n')
        .take(line.saturating_sub(1))
        .map(str::len)
        .sum();
    let byte = (line_start + column.saturating_sub(1)).min(text.len());
    let boundary = (0..=byte)
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    text[..boundary].chars().count() as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parses `body` as JSON-typed and returns the 422 detail, or the name.
    fn check(body: &str) -> Result<String, Value> {
        parse_new_item(Some("application/json"), body.as_bytes())
            .map(|item| item.name)
            .map_err(|errors| serde_json::to_value(errors).unwrap())
    }

    fn entry(loc: Value, msg: &str, kind: &str) -> Value {
        json!([{"loc": loc, "msg": msg, "type": kind}])
    }

    #[test]
    fn valid_items_are_accepted_and_unknown_fields_ignored() {
        assert_eq!(
            check(r#"{"item":{"name":"Walk the dog"}}"#),
            Ok("Walk the dog".into())
        );
        assert_eq!(
            check(r#"{"item":{"name":"x","is_complete":true,"id":9},"extra":1}"#),
            Ok("x".into())
        );
        assert_eq!(
            check(&format!(r#"{{"item":{{"name":"{}"}}}}"#, "é".repeat(1000))),
            Ok("é".repeat(1000))
        );
    }

    #[test]
    fn a_missing_item_is_field_required_at_body_item() {
        let missing = entry(
            json!(["body", "item"]),
            "field required",
            "value_error.missing",
        );
        for body in [
            "",
            "{}",
            r#"{"item":null}"#,
            r#"{"name":"x"}"#,
            "[]",
            "\"text\"",
            "3",
        ] {
            assert_eq!(check(body), Err(missing.clone()), "body {body:?}");
        }
    }

    #[test]
    fn an_item_that_is_not_an_object_is_not_a_valid_dict() {
        let not_dict = entry(
            json!(["body", "item"]),
            "value is not a valid dict",
            "type_error.dict",
        );
        for body in [r#"{"item":"x"}"#, r#"{"item":[]}"#, r#"{"item":1}"#] {
            assert_eq!(check(body), Err(not_dict.clone()), "body {body:?}");
        }
    }

    #[test]
    fn name_problems_are_reported_at_body_item_name() {
        let at = json!(["body", "item", "name"]);
        let cases = [
            (r#"{"item":{}}"#, "field required", "value_error.missing"),
            (
                r#"{"item":{"name":null}}"#,
                "none is not an allowed value",
                "type_error.none.not_allowed",
            ),
            (
                r#"{"item":{"name":42}}"#,
                "str type expected",
                "type_error.str",
            ),
            (
                r#"{"item":{"name":true}}"#,
                "str type expected",
                "type_error.str",
            ),
            (
                r#"{"item":{"name":["x"]}}"#,
                "str type expected",
                "type_error.str",
            ),
        ];
        for (body, msg, kind) in cases {
            assert_eq!(
                check(body),
                Err(entry(at.clone(), msg, kind)),
                "body {body}"
            );
        }
    }

    #[test]
    fn empty_and_over_long_names_carry_the_limit() {
        let at = json!(["body", "item", "name"]);
        assert_eq!(
            check(r#"{"item":{"name":""}}"#),
            Err(
                json!([{"loc": at, "msg": "ensure this value has at least 1 characters",
                        "type": "value_error.any_str.min_length", "ctx": {"limit_value": 1}}])
            )
        );
        assert_eq!(
            check(&format!(r#"{{"item":{{"name":"{}"}}}}"#, "x".repeat(1001))),
            Err(
                json!([{"loc": at, "msg": "ensure this value has at most 1000 characters",
                        "type": "value_error.any_str.max_length", "ctx": {"limit_value": 1000}}])
            )
        );
    }

    #[test]
    fn malformed_json_is_a_jsondecode_error_at_its_character_offset() {
        let Err(detail) = check("{\"item\": {\"name\": \"ü\",}}") else {
            panic!("accepted")
        };
        let error = &detail[0];
        assert_eq!(error["type"], "value_error.jsondecode");
        assert_eq!(error["loc"], json!(["body", 22]));
        assert_eq!(error["ctx"]["pos"], 22);
        assert!(
            error["msg"]
                .as_str()
                .unwrap()
                .ends_with("line 1 column 24 (char 22)"),
            "{error}"
        );

        let Err(detail) = check("{\n  oops") else {
            panic!("accepted")
        };
        assert_eq!(detail[0]["ctx"]["lineno"], 2);
        assert_eq!(detail[0]["loc"], json!(["body", 4]));
    }

    #[test]
    fn only_json_content_types_are_parsed() {
        let body = br#"{"item":{"name":"x"}}"#;
        for content_type in [
            None,
            Some("application/json"),
            Some("Application/JSON; charset=utf-8"),
            Some("application/merge-patch+json"),
        ] {
            assert!(
                parse_new_item(content_type, body).is_ok(),
                "{content_type:?}"
            );
        }
        for content_type in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "multipart/form-data",
        ] {
            let errors = parse_new_item(Some(content_type), body).unwrap_err();
            assert_eq!(
                errors,
                vec![ValidationError::missing(&["body", "item"])],
                "{content_type}"
            );
        }
    }
}
