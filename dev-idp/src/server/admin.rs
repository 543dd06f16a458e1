//! `POST /_admin/rotate-keys`: rotate the signing key on demand, so the
//! gateway's refresh-on-unknown-kid logic can be exercised. Loopback callers
//! only: the admin surface is never reachable from another machine, even when
//! dev-idp listens on a public interface.

use std::net::SocketAddr;

use serde_json::json;
use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use crate::Idp;

/// Rotates the keys if the caller is on loopback; answers the new kid.
pub(crate) fn rotate_keys(idp: &Idp, remote: Option<SocketAddr>) -> Response {
    if !remote.is_some_and(|addr| addr.ip().is_loopback()) {
        tracing::warn!(remote = ?remote, "refused a key rotation from a non-loopback address");
        return warp::reply::with_status(
            warp::reply::json(&json!({"error": "forbidden", "error_description": "admin endpoints answer loopback callers only"})),
            StatusCode::FORBIDDEN,
        )
        .into_response();
    }
    match idp.rotate_keys().and_then(|()| idp.current_kid()) {
        Ok(kid) => warp::reply::json(&json!({ "kid": kid })).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "key rotation failed");
            warp::reply::with_status(
                warp::reply::json(&json!({"error": "server_error"})),
                StatusCode::INTERNAL_SERVER_ERROR,
            )
            .into_response()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_callers_may_rotate() {
        let dir = tempfile::tempdir().unwrap();
        let idp = Idp::new(crate::Config::embedded_default(), dir.path(), None).unwrap();
        let before = idp.current_kid().unwrap();
        for remote in [Some("192.0.2.7:5000".parse().unwrap()), None] {
            assert_eq!(rotate_keys(&idp, remote).status(), StatusCode::FORBIDDEN);
        }
        assert_eq!(idp.current_kid().unwrap(), before);
        let ok = rotate_keys(&idp, Some("[::1]:5000".parse().unwrap()));
        assert_eq!(ok.status(), StatusCode::OK);
        assert_ne!(idp.current_kid().unwrap(), before);
    }
}
