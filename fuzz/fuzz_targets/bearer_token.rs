//! Bearer extraction and JWT parsing through the real `Authenticator`, with
//! keys loaded from a dev IdP on 127.0.0.1:0: never panics, and never
//! accepts a token that is not exactly one the IdP signed.
//!
//! Input: the first byte picks the mode.
//! - even: the rest is a whole `Authorization` header value;
//! - odd: a genuine token with one of its three parts (the second byte
//!   picks which) replaced by the rest, so that mutations explore header
//!   and claims parsing around a real signature.
#![no_main]

use std::sync::{Arc, LazyLock};

use authz_proxy::auth::{AuthSettings, Authenticator, TenantMode};
use dev_idp::{Idp, MintRequest};
use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;

const TENANT: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const API_CLIENT_ID: &str = "c0ffee00-0000-4000-8000-0000000000a1";

struct Fixture {
    rt: tokio::runtime::Runtime,
    auth: Arc<Authenticator>,
    genuine: String,
}

static FIXTURE: LazyLock<Fixture> = LazyLock::new(|| {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = std::env::temp_dir().join(format!("authz-proxy-fuzz-{}", std::process::id()));
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let idp = Arc::new(
        Idp::new(
            dev_idp::Config::embedded_default(),
            &dir,
            Some(base.clone()),
        )
        .expect("dev-idp"),
    );
    rt.spawn(dev_idp::run(listener, idp.clone(), std::future::pending()));
    let mut settings = AuthSettings::new(
        TenantMode::Single(TENANT.into()),
        vec![API_CLIENT_ID.into(), format!("api://{API_CLIENT_ID}")],
        idp.base_url(),
        format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration"),
    );
    settings.sts_instance = idp.sts_base_url().to_owned();
    let auth = Arc::new(Authenticator::new(settings).expect("settings"));
    rt.block_on(auth.refresh_keys()).expect("keys load");
    let genuine = idp.mint(&MintRequest::user("alice")).expect("mint");
    let fixture = Fixture { rt, auth, genuine };
    assert!(fixture.accepts(&format!("Bearer {}", fixture.genuine)));
    fixture
});

impl Fixture {
    fn accepts(&self, authorization: &str) -> bool {
        let Ok(value) = HeaderValue::from_str(authorization) else {
            return false;
        };
        let mut headers = HeaderMap::new();
        headers.insert(http::header::AUTHORIZATION, value);
        self.rt.block_on(self.auth.authenticate(&headers)).is_ok()
    }
}

fuzz_target!(|data: &[u8]| {
    let f = &*FIXTURE;
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let authorization = if mode % 2 == 0 {
        String::from_utf8_lossy(rest).into_owned()
    } else {
        let Some((&which, rest)) = rest.split_first() else {
            return;
        };
        let mut parts: Vec<String> = f.genuine.split('.').map(str::to_owned).collect();
        parts[usize::from(which % 3)] = String::from_utf8_lossy(rest).into_owned();
        format!("Bearer {}", parts.join("."))
    };
    if authorization.contains(&f.genuine) {
        return;
    }
    assert!(
        !f.accepts(&authorization),
        "accepted without the IdP's signature: {authorization:?}"
    );
});
