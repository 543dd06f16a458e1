//! Discovery documents (v1, v2, `common`/`organizations`) and the JWKS, as
//! the gateway and Swagger UI read them.

use crate::support;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::StatusCode;
use support::{CONTOSO, start};

#[tokio::test]
async fn v2_document_for_a_tenant_names_its_issuer_and_endpoints() {
    let s = start().await;
    for segment in [CONTOSO, "contoso"] {
        let (status, doc) = s
            .get_json(&format!("/{segment}/v2.0/.well-known/openid-configuration"))
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(doc["issuer"], format!("{}/{CONTOSO}/v2.0", s.base));
        assert_eq!(
            doc["authorization_endpoint"],
            format!("{}/{CONTOSO}/oauth2/v2.0/authorize", s.base)
        );
        assert_eq!(
            doc["token_endpoint"],
            format!("{}/{CONTOSO}/oauth2/v2.0/token", s.base)
        );
        assert_eq!(
            doc["jwks_uri"],
            format!("{}/{CONTOSO}/discovery/v2.0/keys", s.base)
        );
        assert_eq!(doc["id_token_signing_alg_values_supported"][0], "RS256");
        assert_eq!(doc["subject_types_supported"][0], "pairwise");
        assert!(
            doc["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == "offline_access")
        );
    }
    s.stop().await;
}

#[tokio::test]
async fn v1_document_uses_the_sts_issuer_with_a_trailing_slash() {
    let s = start().await;
    let (status, doc) = s
        .get_json(&format!("/{CONTOSO}/.well-known/openid-configuration"))
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        doc["issuer"],
        format!("{}/{CONTOSO}/", s.idp.sts_base_url())
    );
    assert_eq!(
        doc["jwks_uri"],
        format!("{}/{CONTOSO}/discovery/keys", s.base)
    );
    assert_eq!(
        doc["token_endpoint"],
        format!("{}/{CONTOSO}/oauth2/token", s.base)
    );
    s.stop().await;
}

#[tokio::test]
async fn common_and_organizations_carry_the_tenantid_issuer_template() {
    let s = start().await;
    for alias in ["common", "organizations"] {
        let (_, v2) = s
            .get_json(&format!("/{alias}/v2.0/.well-known/openid-configuration"))
            .await;
        assert_eq!(v2["issuer"], format!("{}/{{tenantid}}/v2.0", s.base));
        assert_eq!(
            v2["token_endpoint"],
            format!("{}/{alias}/oauth2/v2.0/token", s.base)
        );
        let (_, v1) = s
            .get_json(&format!("/{alias}/.well-known/openid-configuration"))
            .await;
        assert_eq!(v1["issuer"], format!("{}/{{tenantid}}/", s.base));
    }
    s.stop().await;
}

#[tokio::test]
async fn an_unknown_tenant_gets_entras_invalid_tenant_error() {
    let s = start().await;
    let (status, body) = s
        .get_json("/nowhere/v2.0/.well-known/openid-configuration")
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"], "invalid_tenant");
    assert!(
        body["error_description"]
            .as_str()
            .unwrap()
            .starts_with("AADSTS90002:")
    );
    s.stop().await;
}

#[tokio::test]
async fn jwks_publishes_rsa_signing_keys_with_kid_and_x5t_on_both_paths() {
    let s = start().await;
    let kid = s.idp.current_kid().unwrap();
    for path in [
        format!("/{CONTOSO}/discovery/v2.0/keys"),
        format!("/{CONTOSO}/discovery/keys"),
    ] {
        let (status, jwks) = s.get_json(&path).await;
        assert_eq!(status, StatusCode::OK);
        let keys = jwks["keys"].as_array().unwrap();
        assert_eq!(keys.len(), 1);
        let k = &keys[0];
        assert_eq!(k["kty"], "RSA");
        assert_eq!(k["use"], "sig");
        assert_eq!(k["kid"], kid);
        assert_eq!(k["x5t"], kid);
        assert_eq!(k["e"], "AQAB");
        assert!(k["n"].as_str().unwrap().len() >= 342, "a 2048-bit modulus");
        // As Entra's: x5t (and kid) is the SHA-1 thumbprint of the x5c certificate.
        let der = STANDARD.decode(k["x5c"][0].as_str().unwrap()).unwrap();
        let sha1 = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, &der);
        assert_eq!(k["x5t"], URL_SAFE_NO_PAD.encode(sha1.as_ref()));
    }
    // Entra's shared keys name the `{tenantid}` template, for one tenant too.
    for segment in [CONTOSO, "organizations", "common"] {
        let (_, v2) = s.get_json(&format!("/{segment}/discovery/v2.0/keys")).await;
        assert_eq!(
            v2["keys"][0]["issuer"],
            format!("{}/{{tenantid}}/v2.0", s.base),
            "{segment}"
        );
    }
    let (_, v1) = s.get_json(&format!("/{CONTOSO}/discovery/keys")).await;
    assert!(v1["keys"][0].get("issuer").is_none());
    s.stop().await;
}

#[tokio::test]
async fn unknown_paths_are_404_json() {
    let s = start().await;
    let (status, body) = s.get_json("/contoso/nothing/here").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"], "not_found");
    s.stop().await;
}
