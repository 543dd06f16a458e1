//! The bearer fuzz target's body as a property test (runs in every test
//! run; `fuzz/` runs it for longer with coverage guidance): against a real
//! key set, no `Authorization` value and no splice into a genuine token is
//! ever accepted unless it is exactly the token the key signed.

use crate::auth_common;

use auth_common::*;
use http::{HeaderMap, HeaderValue};
use proptest::prelude::*;

struct Fixture {
    rt: tokio::runtime::Runtime,
    auth: std::sync::Arc<authz_proxy::auth::Authenticator>,
    genuine: String,
    _idp: TestIdp,
}

fn fixture() -> Fixture {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let key = TestKey::generate("k1");
    let (idp, auth) = rt.block_on(async {
        let idp = TestIdp::start(JwksMode::Keys(vec![key.jwk()])).await;
        let auth = loaded(idp.settings()).await;
        (idp, auth)
    });
    let genuine = key.sign(&v2_claims(&idp.instance(), TENANT));
    let f = Fixture {
        rt,
        auth,
        genuine,
        _idp: idp,
    };
    assert!(f.accepts(&format!("Bearer {}", f.genuine)));
    f
}

impl Fixture {
    fn accepts(&self, authorization: &str) -> bool {
        let Ok(value) = HeaderValue::from_str(authorization) else {
            return false;
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        // The tokio runtime of the IdP must be running while we wait.
        self.rt.block_on(self.auth.authenticate(&headers)).is_ok()
    }
}

/// Pieces of a JWS: base64url text, separators, JSON fragments, odd bytes.
fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        "[A-Za-z0-9_-]{0,64}",
        "[A-Za-z0-9+/=._~ -]{0,16}",
        Just("eyJhbGciOiJub25lIn0".to_owned()), // {"alg":"none"}
        Just("eyJhbGciOiJSUzI1NiIsImtpZCI6ImsxIn0".to_owned()), // {"alg":"RS256","kid":"k1"}
        Just("e30".to_owned()),                 // {}
        "\\PC{0,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn no_authorization_value_without_the_signature_is_accepted(
        scheme in prop_oneof![Just("Bearer "), Just("bearer  "), Just("Basic "), Just("")],
        parts in prop::collection::vec(part(), 0..6),
        splice in (0..3usize, part()),
    ) {
        thread_local! {
            static F: Fixture = fixture();
        }
        F.with(|f| {
            let whole = format!("{scheme}{}", parts.join("."));
            prop_assert!(!f.accepts(&whole), "{}", whole);
            let mut genuine: Vec<String> = f.genuine.split('.').map(str::to_owned).collect();
            genuine[splice.0] = splice.1.clone();
            let spliced = genuine.join(".");
            if spliced != f.genuine {
                prop_assert!(!f.accepts(&format!("Bearer {spliced}")), "{}", spliced);
            }
            Ok(())
        })?;
    }
}
