//! The gateway's work for a new token, alone, for an instruction count under
//! callgrind: verify N distinct dev-idp tokens with the token cache off
//! (`--token-cache-size 0`) and sign an identity assertion (ES256, the
//! default) for each caller, exactly as a request with a new token does.
//!
//! ```text
//! cargo build --release -p e2e-tests --example verify_cost
//! valgrind --tool=callgrind --collect-atstart=no --toggle-collect='verify_cost::measure*' \
//!     target/release/examples/verify_cost 2000
//! ```
//!
//! Only `measure` is counted: minting the tokens, starting the IdP and
//! loading its keys are not. Divide the total by N for instructions per
//! token. Benchmark tooling, not a test.
//!
//! Run natively (not under valgrind) it also prints the wall-clock time per
//! token of `measure`, and of the verification alone (`verify_alone`, not
//! counted by callgrind's toggle): what a new token costs without any HTTP.

use std::future::Future as _;
use std::hint::black_box;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use authz_proxy::assertion::{AssertionSettings, KeySource, Signer};
use authz_proxy::auth::{AuthSettings, Authenticator, TenantMode};
use authz_proxy::identity::Authenticated;
use dev_idp::{Config, Idp, MintRequest};
use e2e_tests::{API_CLIENT_ID, TENANT};
use http::{HeaderMap, HeaderValue, header::AUTHORIZATION};

fn main() -> anyhow::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .map_or(Ok(2000), |n| n.parse())
        .map_err(|e| anyhow::anyhow!("usage: verify_cost [COUNT]: {e}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let scratch = tempfile::tempdir()?;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let base = format!("http://{}", listener.local_addr()?);
        let idp = Arc::new(Idp::new(
            Config::embedded_default(),
            scratch.path(),
            Some(base.clone()),
        )?);
        tokio::spawn(dev_idp::run(
            listener,
            Arc::clone(&idp),
            std::future::pending(),
        ));

        let mut settings = AuthSettings::new(
            TenantMode::Single(TENANT.into()),
            vec![API_CLIENT_ID.into(), format!("api://{API_CLIENT_ID}")],
            idp.base_url(),
            format!("{base}/{TENANT}/v2.0/.well-known/openid-configuration"),
        );
        settings.sts_instance = idp.sts_base_url().to_owned();
        settings.token_cache_size = 0;
        let auth = Authenticator::new(settings)?;
        auth.refresh_keys().await?;
        let signer = Signer::new(AssertionSettings {
            issuer: "http://gateway.example".into(),
            default_audience: "http://backend.example".into(),
            lifetime_seconds: 300,
            algorithm: Default::default(),
            key: KeySource::Generated { dir: None },
            next_key: None,
        })?;

        let requests: Vec<HeaderMap> = (0..count)
            .map(|_| {
                let token = idp.mint(&MintRequest::user("alice"))?;
                let mut headers = HeaderMap::new();
                headers.insert(
                    AUTHORIZATION,
                    HeaderValue::from_str(&format!("Bearer {token}"))?,
                );
                Ok(headers)
            })
            .collect::<anyhow::Result<_>>()?;
        let token_len = requests[0][AUTHORIZATION].len() - "Bearer ".len();

        let started = Instant::now();
        measure(&auth, &signer, &requests);
        let both = started.elapsed();
        let started = Instant::now();
        verify_alone(&auth, &requests);
        let alone = started.elapsed();
        let per_token = |d: Duration| d.as_secs_f64() * 1e6 / count as f64;
        println!(
            "{count} tokens of {token_len} bytes verified, {} assertions signed; \
             per token: {:.1} µs verified and signed, {:.1} µs verified alone",
            signer.signatures(),
            per_token(both),
            per_token(alone),
        );
        anyhow::Ok(())
    })
}

/// What callgrind counts: per token, `authenticate` (no cache) and one new
/// assertion, as the gateway does for a request with a new token.
#[inline(never)]
fn measure(auth: &Authenticator, signer: &Signer, requests: &[HeaderMap]) {
    for headers in requests {
        let caller = authenticate_now(auth, headers);
        let value = signer
            .assertion(&caller, "todos", "http://backend.example")
            .expect("an assertion is signed");
        black_box(value);
    }
}

/// `authenticate` alone (no assertion), for the native timing; not counted
/// by callgrind (`--toggle-collect='verify_cost::measure*'`).
#[inline(never)]
fn verify_alone(auth: &Authenticator, requests: &[HeaderMap]) {
    for headers in requests {
        black_box(authenticate_now(auth, headers));
    }
}

/// One `authenticate`, polled here rather than awaited so that callgrind
/// sees plain function calls: with its keys loaded it never waits.
fn authenticate_now(auth: &Authenticator, headers: &HeaderMap) -> Arc<Authenticated> {
    let mut verify = std::pin::pin!(auth.authenticate(headers));
    let Poll::Ready(caller) = verify
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    else {
        panic!("authenticate waited with its keys loaded");
    };
    caller.expect("a dev-idp token for alice is valid")
}
