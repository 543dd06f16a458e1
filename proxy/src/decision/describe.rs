//! Reading the request an ingress asks about: from the nginx headers
//! (`X-Original-*`), the Caddy/Traefik ones (`X-Forwarded-*`), or for Envoy
//! from the question itself under `/envoy`. Exactly one method and one URI
//! in one spelling, or a 400 (`no_original_request`) that says what is
//! wrong; what the stages then make of the request is not this file's job.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};

use crate::error::GatewayError;

/// nginx `auth_request`: the original method (`$request_method`).
pub const X_ORIGINAL_METHOD: HeaderName = HeaderName::from_static("x-original-method");
/// nginx `auth_request`: the original request target (`$request_uri`).
pub const X_ORIGINAL_URI: HeaderName = HeaderName::from_static("x-original-uri");
/// Caddy `forward_auth`, Traefik `forwardAuth`: the original method.
pub const X_FORWARDED_METHOD: HeaderName = HeaderName::from_static("x-forwarded-method");
/// Caddy `forward_auth`, Traefik `forwardAuth`: the original request target.
pub const X_FORWARDED_URI: HeaderName = HeaderName::from_static("x-forwarded-uri");
/// Caddy `forward_auth`, Traefik `forwardAuth`: the original `Host`. The
/// policy does not match hosts; it must only not be ambiguous.
pub const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The request an ingress asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Described {
    pub method: Method,
    /// As the client sent it (origin form, or absolute form, whose path
    /// and query alone are decided): normalised by the gateway's own stage.
    pub target: Uri,
}

/// Reads the described request from the question's headers: one method and
/// one URI, both in the nginx spelling or both in the Caddy/Traefik one.
pub fn describe(headers: &HeaderMap) -> Result<Described, GatewayError> {
    let nginx = [&X_ORIGINAL_METHOD, &X_ORIGINAL_URI]
        .iter()
        .any(|n| headers.contains_key(*n));
    let forwarded = [&X_FORWARDED_METHOD, &X_FORWARDED_URI]
        .iter()
        .any(|n| headers.contains_key(*n));
    let (method, uri) = match (nginx, forwarded) {
        (true, false) => (&X_ORIGINAL_METHOD, &X_ORIGINAL_URI),
        (false, true) => (&X_FORWARDED_METHOD, &X_FORWARDED_URI),
        (false, false) => {
            return Err(GatewayError::NoOriginalRequest(
                "no original request to decide: send X-Original-Method and X-Original-URI \
                 (nginx auth_request) or X-Forwarded-Method and X-Forwarded-Uri \
                 (Caddy forward_auth, Traefik forwardAuth)",
            ));
        }
        (true, true) => {
            return Err(GatewayError::NoOriginalRequest(
                "ambiguous original request: both X-Original-* and X-Forwarded-Method/Uri \
                 headers were sent; the ingress must send one kind and clear the other",
            ));
        }
    };
    let method = match single(headers, method) {
        Single::One(v) => Method::from_bytes(v.as_bytes()).map_err(|_| {
            GatewayError::NoOriginalRequest("the original method is not an HTTP method")
        })?,
        Single::None => {
            return Err(GatewayError::NoOriginalRequest(
                "the original method is missing (X-Original-Method or X-Forwarded-Method)",
            ));
        }
        Single::Many => {
            return Err(GatewayError::NoOriginalRequest(
                "ambiguous original request: more than one original method",
            ));
        }
    };
    let target = match single(headers, uri) {
        Single::One(v) => Uri::try_from(v.as_bytes()).map_err(|_| {
            GatewayError::NoOriginalRequest("the original URI is not a request target")
        })?,
        Single::None => {
            return Err(GatewayError::NoOriginalRequest(
                "the original URI is missing (X-Original-URI or X-Forwarded-Uri)",
            ));
        }
        Single::Many => {
            return Err(GatewayError::NoOriginalRequest(
                "ambiguous original request: more than one original URI",
            ));
        }
    };
    if matches!(single(headers, &X_FORWARDED_HOST), Single::Many) {
        return Err(GatewayError::NoOriginalRequest(
            "ambiguous original request: more than one X-Forwarded-Host",
        ));
    }
    Ok(Described { method, target })
}

/// The request an Envoy `ext_authz` question is about: its own method, and
/// its target without the `/envoy` prefix (`path_prefix: /envoy`).
pub fn describe_envoy(method: &Method, question: &Uri) -> Result<Described, GatewayError> {
    let target = question
        .path_and_query()
        .and_then(|pq| pq.as_str().strip_prefix("/envoy"))
        .filter(|rest| rest.starts_with('/'))
        .ok_or(GatewayError::NoOriginalRequest(
            "the original URI is missing: Envoy must ask on `/envoy` + the original path \
             (ext_authz path_prefix: /envoy)",
        ))?;
    let target = Uri::try_from(target)
        .map_err(|_| GatewayError::NoOriginalRequest("the original URI is not a request target"))?;
    Ok(Described {
        method: method.clone(),
        target,
    })
}

enum Single<'h> {
    None,
    One(&'h HeaderValue),
    Many,
}

fn single<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Single<'h> {
    let mut values = headers.get_all(name).iter();
    match (values.next(), values.next()) {
        (None, _) => Single::None,
        (Some(v), None) => Single::One(v),
        _ => Single::Many,
    }
}
