//! A stand-in for the two Microsoft Graph calls that resolve a groups
//! overage: `POST /v1.0/users/{id}/checkMemberGroups` (`{"groupIds":
//! [...]}`, at most 20, answers the ones the user is in) and
//! `POST /v1.0/users/{id}/getMemberObjects` (answers all of the user's
//! groups), with Graph's JSON shapes (`{"value": [...]}`) and errors
//! (`{"error": {"code", "message"}}`): 401 without a valid app token for
//! Graph, 403 without a membership permission, 404 for a user the token's
//! tenant does not have, 400 for a bad body.
//!
//! The token is checked as Graph would: signed by this IdP, unexpired, for
//! `https://graph.microsoft.com` (or Graph's app id), holding
//! `GroupMember.Read.All`, `Group.Read.All` or `Directory.Read.All` in
//! `roles`. Tests count the calls and make the stand-in slow or down
//! through [`crate::Idp::set_graph_mode`].

use std::sync::atomic::{AtomicU64, Ordering};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::watch;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::Idp;
use crate::config::{GRAPH_CLIENT_ID, GRAPH_MEMBERSHIP_PERMISSIONS, GRAPH_RESOURCE};

/// Graph's limit of group ids in one `checkMemberGroups` call.
const MAX_GROUP_IDS: usize = 20;

/// How the Graph stand-in behaves, for tests of a gateway that depends on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum GraphMode {
    /// Answers.
    #[default]
    Up,
    /// Answers every call with 503 `serviceNotAvailable`.
    Down,
    /// Answers nothing until the mode changes: a Graph slower than any
    /// timeout.
    Hang,
}

/// The stand-in's state: its mode and how many calls it received.
#[derive(Debug)]
pub(crate) struct GraphStandIn {
    calls: AtomicU64,
    mode: watch::Sender<GraphMode>,
}

impl Default for GraphStandIn {
    fn default() -> Self {
        GraphStandIn {
            calls: AtomicU64::new(0),
            mode: watch::channel(GraphMode::Up).0,
        }
    }
}

impl GraphStandIn {
    pub(crate) fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }

    pub(crate) fn set_mode(&self, mode: GraphMode) {
        self.mode.send_replace(mode);
    }
}

/// A Graph error response.
fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    let body = json!({
        "error": {
            "code": code,
            "message": message.into(),
            "innerError": {"request-id": uuid::Uuid::new_v4().to_string()},
        }
    });
    warp::reply::with_status(warp::reply::json(&body), status).into_response()
}

/// `POST /v1.0/users/{user}/{action}`.
pub(crate) async fn member_groups(
    idp: &Idp,
    user: &str,
    action: &str,
    authorization: Option<&str>,
    body: &[u8],
) -> Response {
    idp.graph.calls.fetch_add(1, Ordering::SeqCst);
    let mut mode = idp.graph.mode.subscribe();
    if *mode.borrow_and_update() == GraphMode::Hang {
        let _ = mode.wait_for(|m| *m != GraphMode::Hang).await;
    }
    if *mode.borrow() == GraphMode::Down {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "serviceNotAvailable",
            "The service is temporarily unavailable. Please retry later.",
        );
    }
    let claims = match app_token(idp, authorization) {
        Ok(claims) => claims,
        Err(response) => return response,
    };
    let granted = claims["roles"].as_array().is_some_and(|roles| {
        roles
            .iter()
            .any(|r| GRAPH_MEMBERSHIP_PERMISSIONS.contains(&r.as_str().unwrap_or_default()))
    });
    if !granted {
        return error(
            StatusCode::FORBIDDEN,
            "Authorization_RequestDenied",
            "Insufficient privileges to complete the operation.",
        );
    }
    let tid = claims["tid"].as_str().unwrap_or_default();
    let Some(user) = idp.config().users.iter().find(|u| {
        u.object_id.eq_ignore_ascii_case(user)
            && idp.config().tenant(&u.tenant).is_some_and(|t| t.id == tid)
    }) else {
        return error(
            StatusCode::NOT_FOUND,
            "Request_ResourceNotFound",
            format!(
                "Resource '{user}' does not exist or one of its queried reference-property objects are not present."
            ),
        );
    };
    let value: Vec<&String> = match action {
        "checkMemberGroups" => {
            #[derive(Deserialize)]
            #[serde(rename_all = "camelCase")]
            struct Check {
                group_ids: Vec<String>,
            }
            let Ok(check) = serde_json::from_slice::<Check>(body) else {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "The request body must be {\"groupIds\": [...]}.",
                );
            };
            if check.group_ids.len() > MAX_GROUP_IDS {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    format!("At most {MAX_GROUP_IDS} group ids can be checked in one request."),
                );
            }
            user.groups
                .iter()
                .filter(|g| check.group_ids.iter().any(|c| c.eq_ignore_ascii_case(g)))
                .collect()
        }
        "getMemberObjects" => {
            if serde_json::from_slice::<Value>(body).is_err() {
                return error(
                    StatusCode::BAD_REQUEST,
                    "Request_BadRequest",
                    "The request body must be {\"securityEnabledOnly\": true}.",
                );
            }
            user.groups.iter().collect()
        }
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Resource not found for the segment '{other}'."),
            );
        }
    };
    warp::reply::json(&json!({
        "@odata.context": "https://graph.microsoft.com/v1.0/$metadata#Collection(Edm.String)",
        "value": value,
    }))
    .into_response()
}

/// The claims of a valid app token for Graph, or Graph's 401 (a response
/// made once per refused call: its size does not matter).
#[allow(clippy::result_large_err)]
fn app_token(idp: &Idp, authorization: Option<&str>) -> Result<Value, Response> {
    let unauthorized = |message: &str| {
        error(
            StatusCode::UNAUTHORIZED,
            "InvalidAuthenticationToken",
            message,
        )
    };
    let token = authorization
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unauthorized("Access token is empty."))?;
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| unauthorized("IDX14100: JWT is not well formed."))?;
    let keys = idp
        .published_keys()
        .map_err(|_| unauthorized("Access token validation failure."))?;
    let key = keys
        .iter()
        .find(|k| header.kid.as_deref() == Some(k.kid.as_str()))
        .ok_or_else(|| unauthorized("Access token validation failure. Invalid signing key."))?;
    let decoding = DecodingKey::from_rsa_components(&key.n, &key.e)
        .map_err(|_| unauthorized("Access token validation failure."))?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.set_audience(&[GRAPH_RESOURCE, GRAPH_CLIENT_ID]);
    jsonwebtoken::decode::<Value>(token, &decoding, &validation)
        .map(|data| data.claims)
        .map_err(|_| unauthorized("Access token validation failure. Invalid audience or expired."))
}
