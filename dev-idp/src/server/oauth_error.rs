//! OAuth 2.0 error responses, in Entra's shape: `error`, `error_description`
//! starting with an `AADSTS` code, `error_codes`, `timestamp`, `trace_id`,
//! `correlation_id`.
//!
//! The token endpoint returns them as JSON (RFC 6749 §5.2); the authorize
//! endpoint redirects them to the client (RFC 6749 §4.1.2.1) unless the client
//! or redirect URI is the problem, in which case it shows an error page,
//! because redirecting to an unverified URI would make an open redirector.

use warp::http::StatusCode;
use warp::reply::{Reply, Response};

use super::html;
use super::params::encode;

/// One protocol error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OAuthError {
    /// RFC 6749 error code (`invalid_grant`, `invalid_client`, …).
    pub error: &'static str,
    /// Entra's numeric code, printed as `AADSTS{code}`.
    pub aadsts: u32,
    /// Human-readable explanation.
    pub description: String,
    /// HTTP status for the token endpoint.
    pub status: StatusCode,
}

impl OAuthError {
    /// A 400 error.
    pub(crate) fn new(error: &'static str, aadsts: u32, description: impl Into<String>) -> Self {
        OAuthError {
            error,
            aadsts,
            description: description.into(),
            status: StatusCode::BAD_REQUEST,
        }
    }

    /// A required parameter is absent (Entra's AADSTS900144).
    pub(crate) fn missing(name: &str) -> Self {
        OAuthError::new(
            "invalid_request",
            900_144,
            format!("The request body must contain the following parameter: '{name}'."),
        )
    }

    /// The same error with another status (401 for `invalid_client`).
    pub(crate) fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// `AADSTS{code}: {description}`.
    pub(crate) fn full_description(&self) -> String {
        format!("AADSTS{}: {}", self.aadsts, self.description)
    }

    /// The JSON body of RFC 6749 §5.2, with Entra's extra fields.
    pub(crate) fn to_json_response(&self) -> Response {
        let body = serde_json::json!({
            "error": self.error,
            "error_description": self.full_description(),
            "error_codes": [self.aadsts],
            "timestamp": timestamp(),
            "trace_id": uuid::Uuid::new_v4().to_string(),
            "correlation_id": uuid::Uuid::new_v4().to_string(),
        });
        let mut response =
            warp::reply::with_status(warp::reply::json(&body), self.status).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6749 §5.2: a 401 invalid_client carries WWW-Authenticate.
            response.headers_mut().insert(
                warp::http::header::WWW_AUTHENTICATE,
                warp::http::HeaderValue::from_static("Basic realm=\"dev-idp\""),
            );
        }
        response
    }

    /// The query or fragment parameters of an error redirect.
    pub(crate) fn redirect_params(&self, state: Option<&str>) -> String {
        let mut params = format!(
            "error={}&error_description={}",
            self.error,
            encode(&self.full_description())
        );
        if let Some(state) = state {
            params.push_str("&state=");
            params.push_str(&encode(state));
        }
        params
    }

    /// A plain HTML page, for errors that must not be redirected.
    pub(crate) fn to_error_page(&self) -> Response {
        let page = html::error_page(self.error, &self.full_description());
        warp::reply::with_status(warp::reply::html(page), self.status).into_response()
    }
}

/// Entra's `timestamp` format: `2024-01-31 12:34:56Z`.
fn timestamp() -> String {
    let secs = crate::keys::unix(std::time::SystemTime::now());
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_are_right() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_723), (2024, 1, 1));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
    }

    #[test]
    fn redirect_params_carry_state_and_encoded_description() {
        let e = OAuthError::new("invalid_scope", 70011, "bad scope 'x y'");
        let p = e.redirect_params(Some("s 1"));
        assert_eq!(
            p,
            "error=invalid_scope&error_description=AADSTS70011%3A%20bad%20scope%20%27x%20y%27&state=s%201"
        );
    }
}
