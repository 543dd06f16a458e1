//! The `claims` parameter of an authorization request (OpenID Connect Core
//! §5.5), as Entra takes it: URL-encoded JSON asking for claims in the
//! access token. Two requests matter here, and every other claim named is
//! ignored, as Entra ignores claims it does not issue on request:
//!
//! - `{"access_token":{"acrs":{"essential":true,"value":"c1"}}}` (or
//!   `"values":["c1","c2"]`): the Conditional Access authentication context
//!   a claims challenge asked for. dev-idp has no Conditional Access to
//!   satisfy, so signing in satisfies it and the token's `acrs` names it.
//! - `{"access_token":{"xms_cc":{"values":["cp1"]}}}`: the client
//!   capabilities MSAL declares (`WithClientCapabilities`); the token's
//!   `xms_cc` repeats them, which tells an API the client handles claims
//!   challenges.
//!
//! MSAL sends both in one object when it answers a challenge.

use serde_json::Value;

/// What a `claims` parameter asks to be put in the access token.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClaimsRequest {
    /// `acrs`: authentication context ids, `c1` to `c99`.
    pub acrs: Vec<String>,
    /// `xms_cc`: client capabilities, e.g. `cp1`.
    pub client_capabilities: Vec<String>,
}

impl ClaimsRequest {
    /// Parses the decoded parameter; `Err` says what is wrong, for the
    /// client's `error_description`.
    pub fn parse(json: &str) -> Result<ClaimsRequest, String> {
        let value: Value = serde_json::from_str(json)
            .map_err(|e| format!("The claims parameter is not valid JSON: {e}."))?;
        let Value::Object(root) = value else {
            return Err("The claims parameter must be a JSON object.".to_owned());
        };
        let mut request = ClaimsRequest::default();
        let Some(access_token) = root.get("access_token") else {
            return Ok(request);
        };
        let Value::Object(access_token) = access_token else {
            return Err("The claims parameter's access_token must be a JSON object.".to_owned());
        };
        if let Some(acrs) = access_token.get("acrs") {
            request.acrs = requested_values(acrs, "acrs")?;
            if let Some(bad) = request.acrs.iter().find(|id| !is_auth_context_id(id)) {
                return Err(format!(
                    "'{bad}' is not an authentication context id (c1 to c99)."
                ));
            }
        }
        if let Some(xms_cc) = access_token.get("xms_cc") {
            request.client_capabilities = requested_values(xms_cc, "xms_cc")?;
        }
        Ok(request)
    }

    /// Whether nothing is asked for.
    pub fn is_empty(&self) -> bool {
        self.acrs.is_empty() && self.client_capabilities.is_empty()
    }

    /// The JSON of this request, as a client sends it in `claims`.
    pub fn to_json(&self) -> String {
        let mut access_token = serde_json::Map::new();
        match self.acrs.as_slice() {
            [] => {}
            [one] => {
                access_token.insert(
                    "acrs".into(),
                    serde_json::json!({"essential": true, "value": one}),
                );
            }
            many => {
                access_token.insert(
                    "acrs".into(),
                    serde_json::json!({"essential": true, "values": many}),
                );
            }
        }
        if !self.client_capabilities.is_empty() {
            access_token.insert(
                "xms_cc".into(),
                serde_json::json!({ "values": self.client_capabilities }),
            );
        }
        serde_json::json!({ "access_token": access_token }).to_string()
    }
}

/// An individual claim request (OpenID Connect Core §5.5.1): `value` (one)
/// or `values` (several), strings; `essential` may be there and changes
/// nothing here. `null` asks for the claim without a value: nothing to add.
fn requested_values(request: &Value, claim: &str) -> Result<Vec<String>, String> {
    let object = match request {
        Value::Null => return Ok(Vec::new()),
        Value::Object(object) => object,
        _ => return Err(format!("The claims request for {claim} must be an object.")),
    };
    let mut values = Vec::new();
    if let Some(one) = object.get("value") {
        match one {
            Value::String(s) => values.push(s.clone()),
            _ => return Err(format!("The value requested for {claim} must be a string.")),
        }
    }
    if let Some(many) = object.get("values") {
        let Value::Array(items) = many else {
            return Err(format!(
                "The values requested for {claim} must be an array."
            ));
        };
        for item in items {
            match item {
                Value::String(s) if !values.contains(s) => values.push(s.clone()),
                Value::String(_) => {}
                _ => {
                    return Err(format!("The values requested for {claim} must be strings."));
                }
            }
        }
    }
    Ok(values)
}

/// `c1` … `c99`, the only authentication context ids Entra has.
pub fn is_auth_context_id(id: &str) -> bool {
    id.strip_prefix('c').is_some_and(|n| {
        !n.starts_with('0') && (1..=2).contains(&n.len()) && n.bytes().all(|b| b.is_ascii_digit())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<(Vec<String>, Vec<String>), String> {
        ClaimsRequest::parse(json).map(|r| (r.acrs, r.client_capabilities))
    }

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn a_claims_challenge_asks_for_acrs() {
        assert_eq!(
            parse(r#"{"access_token":{"acrs":{"essential":true,"value":"c1"}}}"#),
            Ok((strings(&["c1"]), vec![]))
        );
        assert_eq!(
            parse(r#"{"access_token":{"acrs":{"essential":true,"values":["c2","c3"]}}}"#),
            Ok((strings(&["c2", "c3"]), vec![]))
        );
    }

    #[test]
    fn msal_declares_client_capabilities_with_xms_cc() {
        assert_eq!(
            parse(r#"{"access_token":{"xms_cc":{"values":["cp1"]}}}"#),
            Ok((vec![], strings(&["cp1"])))
        );
        assert_eq!(
            parse(
                r#"{"access_token":{"acrs":{"essential":true,"value":"c1"},"xms_cc":{"values":["cp1"]}},"id_token":{"auth_time":{"essential":true}}}"#
            ),
            Ok((strings(&["c1"]), strings(&["cp1"])))
        );
    }

    #[test]
    fn malformed_claims_requests_are_refused() {
        assert!(parse("{").is_err());
        assert!(parse("[]").is_err());
        assert!(parse(r#"{"access_token":[]}"#).is_err());
        assert!(parse(r#"{"access_token":{"acrs":{"value":1}}}"#).is_err());
        assert!(parse(r#"{"access_token":{"acrs":{"value":"c100"}}}"#).is_err());
        assert!(parse(r#"{"access_token":{"xms_cc":{"values":"cp1"}}}"#).is_err());
    }

    #[test]
    fn to_json_round_trips() {
        let request = ClaimsRequest {
            acrs: strings(&["c1"]),
            client_capabilities: strings(&["cp1"]),
        };
        assert_eq!(
            request.to_json(),
            r#"{"access_token":{"acrs":{"essential":true,"value":"c1"},"xms_cc":{"values":["cp1"]}}}"#
        );
        assert_eq!(ClaimsRequest::parse(&request.to_json()), Ok(request));
    }
}
