//! CORS on the token endpoint, as Entra does it: a browser may call the token
//! endpoint cross-origin only from the origin of a redirect URI registered
//! for a single-page (public) client. Other origins get no
//! `Access-Control-Allow-Origin`, so the browser blocks the response.
//! (Fetch standard, "CORS protocol"; preflight per its §3.2.2.)

use warp::http::{HeaderValue, StatusCode, header};
use warp::reply::{Reply, Response};

use crate::Idp;

/// The origin (`scheme://host[:port]`) of a URL.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find(['/', '?', '#']) {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

/// The request's `Origin` if a public client registered a redirect URI there.
fn allowed<'a>(idp: &Idp, origin: Option<&'a str>) -> Option<&'a str> {
    let origin = origin?;
    idp.config()
        .apps
        .iter()
        .filter(|a| a.public_client)
        .flat_map(|a| &a.redirect_uris)
        .any(|uri| origin_of(uri).eq_ignore_ascii_case(origin))
        .then_some(origin)
}

/// Adds `Access-Control-Allow-Origin` to a token response when allowed.
pub(crate) fn with_cors(mut response: Response, idp: &Idp, origin: Option<&str>) -> Response {
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(value) = allowed(idp, origin).and_then(|o| HeaderValue::from_str(o).ok()) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, value);
    }
    response
}

/// Answers an `OPTIONS` preflight for the token endpoint.
pub(crate) fn preflight(
    idp: &Idp,
    origin: Option<&str>,
    request_headers: Option<&str>,
) -> Response {
    let mut response =
        warp::reply::with_status(warp::reply(), StatusCode::NO_CONTENT).into_response();
    let headers = response.headers_mut();
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    let Some(origin) = allowed(idp, origin).and_then(|o| HeaderValue::from_str(o).ok()) else {
        return response;
    };
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("POST, OPTIONS"),
    );
    let allow_headers = request_headers
        .and_then(|h| HeaderValue::from_str(h).ok())
        .unwrap_or_else(|| HeaderValue::from_static("content-type"));
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, allow_headers);
    headers.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::origin_of;

    #[test]
    fn origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("http://localhost:8000/oauth2-redirect"),
            "http://localhost:8000"
        );
        assert_eq!(origin_of("https://app.example?x=1"), "https://app.example");
        assert_eq!(origin_of("http://127.0.0.1:8000"), "http://127.0.0.1:8000");
    }
}
