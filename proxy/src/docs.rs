//! API documentation served by the gateway itself: Swagger UI at `/docs`,
//! its OAuth2 redirect page at `/oauth2-redirect`, and `/openapi.json` — the
//! backend's live document with the security the gateway enforces added
//! (`docs/openapi.rs`).
//!
//! Enabled by `--swagger-ui-client-id`. The gateway answers these paths only
//! after the policy has matched, authenticated and authorized the request,
//! so `policy.yaml` still decides who may read the docs. Swagger UI's files
//! are vendored (`proxy/assets/swagger-ui/`, from the npm package
//! `swagger-ui-dist`) and embedded: no CDN is ever contacted. Sign-in is the
//! authorization-code flow with PKCE as a single-page app, as Entra ID
//! requires for browser clients. It declares the `cp1` client capability
//! and follows claims challenges (step-up to a route's `auth_context`):
//! a 401 `insufficient_claims` puts the challenge's claims in the `claims`
//! parameter of the next Authorize (`docs/claims-challenge.js`).
//!
//! Where its job ends: this module serves fixed bytes and rewrites one JSON
//! document; it never forwards a client's request.

mod openapi;

use bytes::Bytes;
use http::header::{self, HeaderValue};
use http::{Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};

use crate::body::ProxyBody;
use crate::error::{GatewayError, json_response};
use crate::policy::Policy;
use crate::upstream::{Failure, Forwarder, UpstreamError};

pub use openapi::{policy_scopes, qualified_scope, requirements, secure_document};

/// The paths the gateway answers itself when docs are enabled.
pub const DOCS_PATH: &str = "/docs";
pub const REDIRECT_PATH: &str = "/oauth2-redirect";
pub const OPENAPI_PATH: &str = "/openapi.json";

/// The backend's document is small; anything larger is refused.
const MAX_DOCUMENT_BYTES: usize = 8 * 1024 * 1024;

const BUNDLE_JS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui-bundle.js");
const CSS: &[u8] = include_bytes!("../assets/swagger-ui/swagger-ui.css");
const REDIRECT_JS: &[u8] = include_bytes!("../assets/swagger-ui/oauth2-redirect.js");
const FAVICON: &[u8] = include_bytes!("../assets/swagger-ui/favicon-32x32.png");
const LICENSE: &[u8] = include_bytes!("../assets/swagger-ui/LICENSE");
/// Ours, not Swagger UI's: the response interceptor that turns a claims
/// challenge into the `claims` parameter of the next sign-in.
const CLAIMS_CHALLENGE_JS: &str = include_str!("docs/claims-challenge.js");

/// The `claims` parameter of Swagger UI's authorization requests: the
/// client capability `cp1`, "this client handles claims challenges", as
/// MSAL sends it for `clientCapabilities: ["cp1"]` (Microsoft's "Claims
/// challenges, claims requests and client capabilities"). Entra then puts
/// `xms_cc: ["cp1"]` in the access token when the API's registration asks
/// for the optional claim `xms_cc`, and the gateway answers a missing
/// `auth_context` with a challenge Swagger UI follows, not a 403.
pub const CLIENT_CAPABILITIES: &str = r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#;

/// What the docs need to know of the deployment, checked by `config.rs`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocsSettings {
    /// The single-page app Swagger UI signs in as (`SWAGGER_UI_CLIENT_ID`).
    pub spa_client_id: String,
    /// The API app: scopes are requested as `api://<id>/<scope>`.
    pub api_client_id: String,
    /// `{instance}/{tenant}/oauth2/v2.0/authorize`, on the browser's URL of the IdP.
    pub authorize_url: String,
    /// `{instance}/{tenant}/oauth2/v2.0/token`.
    pub token_url: String,
}

/// A request the docs answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DocsRequest {
    /// Fixed bytes: a page, Swagger UI's files, or a 404 under `/docs/`.
    Static,
    /// `/openapi.json`: needs the backend's document.
    OpenApi,
}

/// Swagger UI and its pages, rendered once at start-up.
#[derive(Debug)]
pub struct Docs {
    settings: DocsSettings,
    index: Bytes,
    redirect: Bytes,
    csp: HeaderValue,
}

impl Docs {
    pub fn new(settings: DocsSettings) -> Docs {
        let index = Bytes::from_static(
            b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
              <title>API docs - Swagger UI</title>\
              <link rel=\"stylesheet\" href=\"/docs/swagger-ui.css\">\
              <link rel=\"icon\" type=\"image/png\" href=\"/docs/favicon-32x32.png\"></head>\n\
              <body><div id=\"swagger-ui\"></div>\n\
              <script src=\"/docs/swagger-ui-bundle.js\"></script>\n\
              <script src=\"/docs/swagger-initializer.js\"></script>\n</body></html>\n",
        );
        let redirect = Bytes::from_static(
            b"<!doctype html>\n<html lang=\"en-US\"><head><meta charset=\"utf-8\">\
              <title>Swagger UI: OAuth2 Redirect</title></head>\n\
              <body><script src=\"/docs/oauth2-redirect.js\"></script></body></html>\n",
        );
        // The browser fetches the token from the IdP (CORS), nothing else.
        let csp = HeaderValue::from_str(&format!(
            "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
             img-src 'self' data:; connect-src 'self' {idp}; frame-ancestors 'none'; \
             base-uri 'none'; object-src 'none'",
            idp = origin_of(&settings.token_url),
        ))
        .unwrap_or_else(|_| HeaderValue::from_static("default-src 'self'"));
        Docs {
            settings,
            index,
            redirect,
            csp,
        }
    }

    /// Swagger UI's start-up script: PKCE with the SPA client, the policy's
    /// scopes pre-selected, the redirect page on this gateway's origin, the
    /// `cp1` capability declared in the authorization request's `claims`,
    /// and claims challenges answered (`docs/claims-challenge.js`).
    fn initializer_for(&self, policy: &Policy) -> Bytes {
        let scopes: Vec<String> = policy_scopes(policy)
            .iter()
            .map(|s| qualified_scope(&self.settings, s))
            .collect();
        let oauth = serde_json::json!({
            "clientId": self.settings.spa_client_id,
            "usePkceWithAuthorizationCodeGrant": true,
            "scopes": scopes.join(" "),
            "additionalQueryStringParams": { "claims": CLIENT_CAPABILITIES },
        });
        Bytes::from(format!(
            "// Generated by authz-proxy (docs.rs).\n\
             {challenges}\n\
             const oauth = {oauth};\n\
             window.ui = SwaggerUIBundle({{\n\
             \x20 url: {url},\n\
             \x20 dom_id: \"#swagger-ui\",\n\
             \x20 deepLinking: true,\n\
             \x20 presets: [SwaggerUIBundle.presets.apis],\n\
             \x20 layout: \"BaseLayout\",\n\
             \x20 oauth2RedirectUrl: window.location.origin + {redirect},\n\
             \x20 showMutatedRequest: true,\n\
             \x20 responseInterceptor: authzProxyClaimsChallenges(oauth),\n\
             }});\n\
             window.ui.initOAuth(oauth);\n",
            challenges = CLAIMS_CHALLENGE_JS,
            url = serde_json::Value::from(OPENAPI_PATH),
            redirect = serde_json::Value::from(REDIRECT_PATH),
        ))
    }

    pub fn settings(&self) -> &DocsSettings {
        &self.settings
    }

    /// Whether the gateway answers this request itself (GET or HEAD of the
    /// docs paths); `None`: forward as usual.
    pub fn classify(&self, method: &Method, path: &str) -> Option<DocsRequest> {
        if method != Method::GET && method != Method::HEAD {
            return None;
        }
        if path == OPENAPI_PATH {
            return Some(DocsRequest::OpenApi);
        }
        let under_docs = path == DOCS_PATH
            || path
                .strip_prefix(DOCS_PATH)
                .is_some_and(|rest| rest.starts_with('/'));
        (under_docs || path == REDIRECT_PATH).then_some(DocsRequest::Static)
    }

    /// The page or file at `path` (already classified as [`DocsRequest::Static`]).
    pub fn static_response(&self, path: &str, policy: &Policy) -> Response<ProxyBody> {
        let (content_type, bytes, page) = match path {
            "/docs" | "/docs/" | "/docs/index.html" => {
                ("text/html; charset=utf-8", self.index.clone(), true)
            }
            REDIRECT_PATH => ("text/html; charset=utf-8", self.redirect.clone(), true),
            "/docs/swagger-initializer.js" => (
                "text/javascript; charset=utf-8",
                self.initializer_for(policy),
                false,
            ),
            "/docs/swagger-ui-bundle.js" => (
                "text/javascript; charset=utf-8",
                Bytes::from_static(BUNDLE_JS),
                false,
            ),
            "/docs/oauth2-redirect.js" => (
                "text/javascript; charset=utf-8",
                Bytes::from_static(REDIRECT_JS),
                false,
            ),
            "/docs/swagger-ui.css" => ("text/css; charset=utf-8", Bytes::from_static(CSS), false),
            "/docs/favicon-32x32.png" => ("image/png", Bytes::from_static(FAVICON), false),
            "/docs/LICENSE" => (
                "text/plain; charset=utf-8",
                Bytes::from_static(LICENSE),
                false,
            ),
            _ => return GatewayError::NoRoute.into_response(),
        };
        let mut response = bytes_response(StatusCode::OK, content_type, bytes);
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        if page {
            headers.insert(header::CONTENT_SECURITY_POLICY, self.csp.clone());
            // The redirect page's URL carries the authorization code.
            headers.insert(
                header::REFERRER_POLICY,
                HeaderValue::from_static("no-referrer"),
            );
        }
        response
    }

    /// `/openapi.json`: the backend's live document, secured (see `docs/openapi.rs`).
    pub async fn openapi_response(
        &self,
        forwarder: &Forwarder,
        policy: &Policy,
    ) -> Result<Response<ProxyBody>, GatewayError> {
        let document = fetch_document(forwarder)
            .await
            .map_err(GatewayError::Upstream)?;
        let secured = secure_document(document, policy, &self.settings);
        let mut response = json_response(StatusCode::OK, &secured);
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        response.headers_mut().insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        Ok(response)
    }
}

/// Why the backend's document could not be used (reported as 502).
#[derive(Debug, thiserror::Error)]
enum DocumentError {
    #[error("the backend answered {0} for /openapi.json")]
    Status(StatusCode),
    #[error("the backend's /openapi.json is not JSON: {0}")]
    Json(#[source] serde_json::Error),
}

/// GET `/openapi.json` from the backend through the forwarder.
async fn fetch_document(forwarder: &Forwarder) -> Result<serde_json::Value, UpstreamError> {
    let accept = HeaderValue::from_static("application/json");
    let (status, bytes) = forwarder
        .get(OPENAPI_PATH, accept, MAX_DOCUMENT_BYTES)
        .await?;
    if status != StatusCode::OK {
        return Err(unusable(DocumentError::Status(status)));
    }
    serde_json::from_slice(&bytes).map_err(|e| unusable(DocumentError::Json(e)))
}

/// A document the gateway cannot use: the upstream's answer, not its
/// connection, is at fault.
fn unusable(error: DocumentError) -> UpstreamError {
    UpstreamError::new(Failure::Protocol, error)
}

fn bytes_response(
    status: StatusCode,
    content_type: &'static str,
    bytes: Bytes,
) -> Response<ProxyBody> {
    let mut response = Response::new(Full::new(bytes).map_err(|never| match never {}).boxed());
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

/// `scheme://host[:port]` of a URL, for the CSP's `connect-src`.
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(i) => &url[..after_scheme + i],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn docs() -> Docs {
        Docs::new(DocsSettings {
            spa_client_id: "c0ffee00-0000-4000-8000-0000000000b2".into(),
            api_client_id: "c0ffee00-0000-4000-8000-0000000000a1".into(),
            authorize_url: "http://localhost:9400/t/oauth2/v2.0/authorize".into(),
            token_url: "http://localhost:9400/t/oauth2/v2.0/token".into(),
        })
    }

    #[test]
    fn docs_paths_are_answered_locally_for_get_and_head_only() {
        let docs = docs();
        let check = |method: Method, path: &str, expected: Option<DocsRequest>| {
            assert_eq!(docs.classify(&method, path), expected, "{method} {path}");
        };
        check(Method::GET, "/docs", Some(DocsRequest::Static));
        check(Method::GET, "/docs/", Some(DocsRequest::Static));
        check(
            Method::HEAD,
            "/docs/swagger-ui.css",
            Some(DocsRequest::Static),
        );
        check(Method::GET, "/oauth2-redirect", Some(DocsRequest::Static));
        check(Method::GET, "/openapi.json", Some(DocsRequest::OpenApi));
        check(Method::GET, "/docsx", None);
        check(Method::POST, "/docs", None);
        check(Method::GET, "/todoitems", None);
    }

    #[test]
    fn csp_allows_the_token_endpoint_origin_and_no_other_script_source() {
        let docs = docs();
        let csp = docs.csp.to_str().unwrap_or_default();
        assert!(
            csp.contains("connect-src 'self' http://localhost:9400;"),
            "{csp}"
        );
        assert!(csp.contains("script-src 'self';"), "{csp}");
    }

    #[test]
    fn initializer_uses_pkce_with_the_spa_client_and_the_policy_scopes() {
        let policy = Policy::parse(
            "version: 1\nroutes:\n  - {name: a, path: /a, methods: [GET], scopes: [access_as_user]}\n",
            "p.yaml",
        )
        .expect("policy");
        let js = String::from_utf8(docs().initializer_for(&policy).to_vec()).expect("utf-8");
        assert!(
            js.contains("\"clientId\":\"c0ffee00-0000-4000-8000-0000000000b2\""),
            "{js}"
        );
        assert!(
            js.contains("\"usePkceWithAuthorizationCodeGrant\":true"),
            "{js}"
        );
        assert!(
            js.contains("\"scopes\":\"api://c0ffee00-0000-4000-8000-0000000000a1/access_as_user\""),
            "{js}"
        );
        assert!(
            js.contains("window.location.origin + \"/oauth2-redirect\""),
            "{js}"
        );
    }

    #[test]
    fn initializer_declares_cp1_and_follows_claims_challenges() {
        let policy = Policy::parse(
            "version: 1\nroutes:\n  - {name: a, path: /a, methods: [DELETE], scopes: [access_as_user], auth_context: [c1]}\n",
            "p.yaml",
        )
        .expect("policy");
        let js = String::from_utf8(docs().initializer_for(&policy).to_vec()).expect("utf-8");
        // The claims parameter is JSON inside a JSON string.
        assert!(
            js.contains(
                r#""additionalQueryStringParams":{"claims":"{\"access_token\":{\"xms_cc\":{\"values\":[\"cp1\"]}}}"}"#
            ),
            "{js}"
        );
        assert!(
            js.contains("responseInterceptor: authzProxyClaimsChallenges(oauth),"),
            "{js}"
        );
        assert!(
            js.contains("function authzProxyClaimsChallenges(initial) {"),
            "{js}"
        );
        assert!(js.ends_with("window.ui.initOAuth(oauth);\n"), "{js}");
        let declared: serde_json::Value = serde_json::from_str(CLIENT_CAPABILITIES).expect("JSON");
        assert_eq!(
            declared,
            serde_json::json!({"access_token": {"xms_cc": {"values": ["cp1"]}}})
        );
    }

    #[test]
    fn origin_is_scheme_host_and_port() {
        assert_eq!(
            origin_of("https://login.microsoftonline.com/t/oauth2/v2.0/token"),
            "https://login.microsoftonline.com"
        );
        assert_eq!(origin_of("http://localhost:9400"), "http://localhost:9400");
    }
}
