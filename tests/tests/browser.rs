//! The first experience, in a real browser: headless Chromium opens Swagger
//! UI on the gateway, presses Authorize, picks a user on the dev IdP's
//! sign-in page (authorization code + PKCE, as the sample's quick-start), and
//! calls the API: `POST /todoitems` → 201 as alice, `DELETE /todoitems` → 403
//! as alice (not Admin), then as bob (Admin) → 204.
//!
//! Step-up, walked as a Swagger UI user walks it: here the `delete-all`
//! route also needs authentication context `c1` (the shipped policy with
//! `auth_context: [c1]` added to that route). Swagger UI declares the `cp1`
//! client capability in the `claims` parameter of every sign-in, so bob's
//! first token carries `xms_cc: ["cp1"]` and his `DELETE /todoitems` is a
//! 401 whose `WWW-Authenticate` the page shows: Microsoft's claims challenge.
//! The user does what the 401 says and presses Authorize again (Logout,
//! Authorize): the page itself has merged the challenge's claims into the
//! `claims` parameter of that sign-in (`proxy/src/docs/claims-challenge.js`),
//! the dev IdP says it is a step-up for `c1`, and the same call is a 204. The
//! test injects no script and edits no request: it presses what a person
//! presses and reads what the page shows (the header, the authorization
//! request's URL, the token in the curl command) to check each step; the
//! decoded challenge must be exactly what the second sign-in asked for,
//! beside the `cp1` declaration.
//!
//! The network is laid out as in docker compose, with loopback addresses
//! standing in for the containers: the browser reaches the IdP at its
//! public URL (127.0.0.2), the gateway reaches it at another address (a
//! relay on 127.0.0.1, through `--metadata-url`), and the backend sits on
//! 127.0.0.3 where only the gateway calls it.
//!
//! With `BROWSER_GATEWAY_URL` set, the same flow runs against a gateway
//! that is already up instead (`scripts/compose-test.sh` points it at the
//! docker compose stack, whose dev IdP is the default configuration's).
//! That gateway runs the shipped `policy.yaml`, where `DELETE /todoitems`
//! needs no authentication context, so bob's call is a 204 at once and the
//! step-up runs only in the system this test starts itself; the `cp1`
//! declaration of every sign-in is checked in both.
//!
//! Needs `chromium` and `chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). Missing, the test fails: it
//! is never skipped. Screenshots of each step go to `target/browser-artifacts/`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use e2e_tests::{Options, SWAGGER_CLIENT_ID, System, TENANT, repo_policy};
use fantoccini::elements::Element;
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Longest wait for any one thing to appear in the page.
const WAIT: Duration = Duration::from_secs(30);

type Fallible<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// The shipped policy's `delete-all` route, which the step-up extends.
const DELETE_ALL_ROUTE: &str = "  - name: delete-all
    path: /todoitems
    methods: [DELETE]
    scopes: [access_as_user]
    roles: [Admin]
";

/// Microsoft's claims challenge for `c1`, standard base64 (its example,
/// byte for byte).
const C1_CLAIMS_B64: &str =
    "eyJhY2Nlc3NfdG9rZW4iOnsiYWNycyI6eyJlc3NlbnRpYWwiOnRydWUsInZhbHVlIjoiYzEifX19";

/// The shipped `policy.yaml`, its `delete-all` route also needing
/// authentication context `c1`.
fn step_up_policy() -> String {
    let shipped = std::fs::read_to_string(repo_policy()).expect("the shipped policy.yaml");
    assert!(
        shipped.contains(DELETE_ALL_ROUTE),
        "policy.yaml no longer has this delete-all route:\n{DELETE_ALL_ROUTE}"
    );
    shipped.replacen(
        DELETE_ALL_ROUTE,
        &format!("{DELETE_ALL_ROUTE}    auth_context: [c1]\n"),
        1,
    )
}

/// A chromedriver process, killed when the test ends however it ends.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn executable(env: &str, names: &[&str]) -> PathBuf {
    if let Some(path) = std::env::var_os(env) {
        return PathBuf::from(path);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for dir in std::env::split_paths(&path).chain([PathBuf::from("/usr/bin")]) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!(
        "{} not found (set {env}, or install Debian's chromium and chromium-driver: \
         apt-get install chromium chromium-driver)",
        names[0]
    );
}

/// Starts chromedriver on a free loopback port; it prints the port once it
/// listens, so no polling is needed.
fn start_chromedriver() -> Driver {
    let binary = executable("CHROMEDRIVER", &["chromedriver"]);
    let mut child = Command::new(&binary)
        .args(["--port=0", "--allowed-ips=127.0.0.1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", binary.display()));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let port = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|p| p.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    break port;
                }
            }
            _ => {
                let _ = child.kill();
                panic!("chromedriver exited before it listened");
            }
        }
    };
    // Keep draining its output so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    }
}

async fn start_browser(driver: &Driver, profile: &Path) -> Client {
    let chromium = executable("CHROMIUM", &["chromium", "chromium-browser"]);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-popup-blocking",
                "--window-size=1280,1400",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver")
}

/// Saves what the browser shows under `target/browser-artifacts/`.
async fn screenshot(browser: &Client, name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/browser-artifacts");
    let _ = std::fs::create_dir_all(&dir);
    if let Ok(png) = browser.screenshot().await {
        let _ = std::fs::write(dir.join(format!("{name}.png")), png);
    }
}

async fn wait_for(browser: &Client, xpath: &str) -> Fallible<Element> {
    Ok(browser
        .wait()
        .at_most(WAIT)
        .every(Duration::from_millis(100))
        .for_element(Locator::XPath(xpath))
        .await
        .map_err(|e| format!("waiting for {xpath}: {e}"))?)
}

/// The operation block of `method path` in Swagger UI.
fn operation(method: &str, path: &str) -> String {
    format!(
        "//div[contains(@class,'opblock-{method}') and .//*[@data-path='{path}']]",
        method = method.to_ascii_lowercase()
    )
}

/// What a sign-in showed of itself.
struct SignIn {
    /// The authorization request's `claims` parameter, parsed.
    claims: Value,
    /// The dev IdP's sign-in page.
    page: String,
}

/// Authorize → pick `user` on the dev IdP's page → back, authorized.
async fn sign_in(browser: &Client, user: &str, step: &str) -> Fallible<SignIn> {
    let main = browser.window().await?;
    wait_for(
        browser,
        "//div[contains(@class,'auth-wrapper')]//button[contains(@class,'authorize')]",
    )
    .await?
    .click()
    .await?;
    let authorize =
        "//div[contains(@class,'auth-btn-wrapper')]/button[normalize-space()='Authorize']";
    // Signed in already (the second user): log the first one out.
    let logout = "//div[contains(@class,'auth-btn-wrapper')]/button[normalize-space()='Logout']";
    if let Ok(button) = browser.find(Locator::XPath(logout)).await {
        button.click().await?;
    }
    screenshot(browser, &format!("{step}-1-authorize-dialog")).await;
    wait_for(browser, authorize).await?.click().await?;

    // Swagger UI opens the IdP's authorize URL in a new window.
    let popup = {
        let mut found = None;
        for _ in 0..300 {
            let windows = browser.windows().await?;
            if let Some(w) = windows.into_iter().find(|w| *w != main) {
                found = Some(w);
                break;
            }
            // A WebDriver round trip per try paces this loop; no sleep.
        }
        found.ok_or("Swagger UI opened no sign-in window")?
    };
    browser.switch_to_window(popup).await?;
    let link = wait_for(browser, &format!("//a[normalize-space()='{user}']")).await?;
    screenshot(browser, &format!("{step}-2-dev-idp-sign-in")).await;
    let page = browser.source().await?;
    assert!(
        page.contains("Sign in to"),
        "the dev IdP's sign-in page: {page}"
    );
    // The sign-in page is the authorization request itself.
    let url = browser.current_url().await?;
    let claims = url
        .query_pairs()
        .find(|(k, _)| k == "claims")
        .map(|(_, v)| v.into_owned())
        .ok_or_else(|| format!("no claims parameter in {url}"))?;
    let claims = serde_json::from_str(&claims)
        .map_err(|e| format!("the claims parameter {claims} is not JSON: {e}"))?;
    link.click().await?;

    // The redirect page hands the code to Swagger UI and closes itself;
    // Swagger UI redeems it (PKCE) at the token endpoint.
    browser.switch_to_window(main).await?;
    wait_for(browser, logout).await?;
    screenshot(browser, &format!("{step}-3-authorized")).await;
    wait_for(
        browser,
        "//div[contains(@class,'auth-btn-wrapper')]/button[contains(@class,'btn-done')]",
    )
    .await?
    .click()
    .await?;
    Ok(SignIn { claims, page })
}

/// Opens an operation, presses "Try it out" (filling `body`), Execute, and
/// waits for the live response `expected`; returns the response's text.
async fn call(
    browser: &Client,
    method: &str,
    path: &str,
    body: Option<&str>,
    expected: u16,
    step: &str,
) -> Fallible<String> {
    let block = operation(method, path);
    let opened = format!("{block}[contains(@class,'is-open')]");
    if browser.find(Locator::XPath(&opened)).await.is_err() {
        wait_for(
            browser,
            &format!("{block}//button[contains(@class,'opblock-summary-control')]"),
        )
        .await?
        .click()
        .await?;
    }
    // The block renders its "Try it out" / "Cancel" toggle after it opens:
    // wait for it rather than look once (a look raced the render).
    let toggle = wait_for(
        browser,
        &format!("{block}//button[contains(@class,'try-out__btn')]"),
    )
    .await?;
    if toggle.text().await?.trim() == "Try it out" {
        toggle.click().await?;
    }
    if let Some(body) = body {
        let text = wait_for(
            browser,
            &format!("{block}//textarea[contains(@class,'body-param__text')]"),
        )
        .await?;
        text.click().await?;
        // Select all and type over the example, as a person would.
        text.send_keys(&format!(
            "{}a{}",
            char::from(Key::Control),
            char::from(Key::Null)
        ))
        .await?;
        text.send_keys(&char::from(Key::Backspace).to_string())
            .await?;
        text.send_keys(body).await?;
    }
    wait_for(
        browser,
        &format!("{block}//button[contains(@class,'execute')]"),
    )
    .await?
    .click()
    .await?;
    let status = format!(
        "{block}//table[contains(@class,'live-responses-table')]//tr[contains(concat(' ',normalize-space(@class),' '),' response ')]/td[contains(@class,'response-col_status')]"
    );
    let cell = wait_for(browser, &status).await?;
    let shown = cell.text().await?;
    browser
        .execute(
            "arguments[0].scrollIntoView({block: 'center'});",
            vec![serde_json::to_value(&cell)?],
        )
        .await?;
    screenshot(browser, step).await;
    let row = wait_for(
        browser,
        &format!("{block}//table[contains(@class,'live-responses-table')]//tr[contains(concat(' ',normalize-space(@class),' '),' response ')]"),
    )
    .await?
    .text()
    .await?;
    if shown.trim() != expected.to_string() {
        return Err(format!(
            "{method} {path}: Swagger UI shows {shown}, expected {expected}: {row}"
        )
        .into());
    }
    Ok(row)
}

/// Clears the previous live response so the next Execute's is the one read.
async fn clear_response(browser: &Client, method: &str, path: &str) -> Fallible<()> {
    let clear = format!(
        "{}//button[contains(@class,'btn-clear')]",
        operation(method, path)
    );
    if let Ok(button) = browser.find(Locator::XPath(&clear)).await {
        button.click().await?;
    }
    Ok(())
}

/// The `name: value` line Swagger UI shows among the live response's
/// headers of `method path`.
async fn shown_header(browser: &Client, method: &str, path: &str, name: &str) -> Fallible<String> {
    let line = wait_for(
        browser,
        &format!(
            "{}//table[contains(@class,'live-responses-table')]//span[contains(@class,'headerline') and starts-with(normalize-space(), '{name}:')]",
            operation(method, path)
        ),
    )
    .await?;
    Ok(line.text().await?.trim().to_owned())
}

/// The claims of the access token Swagger UI sent for `method path`, read
/// from the curl command it shows (unverified: the gateway verified it).
async fn shown_token_claims(browser: &Client, method: &str, path: &str) -> Fallible<Value> {
    let curl = wait_for(
        browser,
        &format!(
            "{}//div[contains(@class,'curl-command')]",
            operation(method, path)
        ),
    )
    .await?
    .text()
    .await?;
    let token = curl
        .split("Authorization: Bearer ")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .ok_or_else(|| format!("no bearer token in the curl command: {curl}"))?;
    let payload = token
        .split('.')
        .nth(1)
        .ok_or_else(|| format!("not a JWT: {token}"))?;
    Ok(serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload)?)?)
}

/// Bob's `DELETE /todoitems` meets the claims challenge, he presses
/// Authorize again, and the same call passes. `authorize`: the IdP's
/// authorize endpoint, which the challenge names.
async fn step_up(browser: &Client, authorize: &str) -> Fallible<()> {
    let block = browser
        .find(Locator::XPath(&operation("delete", "/todoitems")))
        .await?
        .text()
        .await?;
    assert!(
        block.contains("Requires authentication context c1"),
        "{block}"
    );
    let denied = call(
        browser,
        "delete",
        "/todoitems",
        None,
        401,
        "06-bob-delete-401-claims-challenge",
    )
    .await?;
    assert!(
        denied.contains(
            "this route needs authentication context c1; sign in again with the claims of the WWW-Authenticate challenge"
        ),
        "{denied}"
    );
    // Swagger UI's HTTP client splits a header at ", " and shows the parts
    // joined with ",": this is the gateway's challenge, every parameter in
    // Microsoft's order.
    let challenge = shown_header(browser, "delete", "/todoitems", "www-authenticate").await?;
    assert_eq!(
        challenge,
        format!(
            "www-authenticate: Bearer realm=\"\",authorization_uri=\"{authorize}\",error=\"insufficient_claims\",claims=\"{C1_CLAIMS_B64}\""
        )
    );
    let first = shown_token_claims(browser, "delete", "/todoitems").await?;
    assert_eq!(first["xms_cc"], json!(["cp1"]), "{first}");
    assert!(first.get("acrs").is_none(), "{first}");

    // What the challenge asks for, decoded from the page.
    let encoded = challenge
        .split("claims=\"")
        .nth(1)
        .and_then(|rest| rest.strip_suffix('"'))
        .ok_or("no claims in the challenge")?;
    let requested: Value = serde_json::from_slice(&STANDARD.decode(encoded)?)?;
    assert_eq!(
        requested,
        json!({"access_token": {"acrs": {"essential": true, "value": "c1"}}})
    );

    // Authorize again: the sign-in asks for the challenge's claims beside
    // the cp1 declaration, and the dev IdP says it is a step-up.
    let again = sign_in(browser, "Bob Example", "07-bob-step-up").await?;
    let mut expected = json!({"access_token": {"xms_cc": {"values": ["cp1"]}}});
    expected["access_token"]["acrs"] = requested["access_token"]["acrs"].clone();
    assert_eq!(again.claims, expected);
    assert!(
        again
            .page
            .contains("Step-up: signing in satisfies authentication context c1"),
        "{}",
        again.page
    );

    clear_response(browser, "delete", "/todoitems").await?;
    call(
        browser,
        "delete",
        "/todoitems",
        None,
        204,
        "08-bob-stepped-up-delete-204",
    )
    .await?;
    let stepped_up = shown_token_claims(browser, "delete", "/todoitems").await?;
    assert_eq!(stepped_up["acrs"], json!(["c1"]), "{stepped_up}");
    assert_eq!(stepped_up["xms_cc"], json!(["cp1"]), "{stepped_up}");
    Ok(())
}

/// The cp1 declaration every sign-in of the gateway's Swagger UI carries.
fn cp1() -> Value {
    json!({"access_token": {"xms_cc": {"values": ["cp1"]}}})
}

/// `step_up`: the IdP's authorize endpoint when `DELETE /todoitems` needs
/// authentication context `c1`; `None` with the shipped policy.
async fn flow(browser: &Client, gateway_url: &str, step_up_at: Option<&str>) -> Fallible<()> {
    browser.goto(&format!("{gateway_url}/docs")).await?;
    wait_for(browser, &operation("post", "/todoitems")).await?;
    screenshot(browser, "01-docs").await;

    let alice = sign_in(browser, "Alice Example", "02-alice").await?;
    assert_eq!(alice.claims, cp1());
    let created = call(
        browser,
        "post",
        "/todoitems",
        Some(r#"{"item": {"name": "Walk the dog"}}"#),
        201,
        "03-alice-post-201",
    )
    .await?;
    assert!(
        created.contains("Walk the dog"),
        "created item shown: {created}"
    );

    let denied = call(
        browser,
        "delete",
        "/todoitems",
        None,
        403,
        "04-alice-delete-403",
    )
    .await?;
    assert!(denied.contains("Admin"), "the 403 names the role: {denied}");
    // The opened operation shows the policy's requirement (from /openapi.json).
    let block = browser
        .find(Locator::XPath(&operation("delete", "/todoitems")))
        .await?
        .text()
        .await?;
    assert!(block.contains("Requires role: Admin"), "{block}");

    let bob = sign_in(browser, "Bob Example", "05-bob").await?;
    assert_eq!(bob.claims, cp1());
    clear_response(browser, "delete", "/todoitems").await?;
    match step_up_at {
        Some(authorize) => step_up(browser, authorize).await?,
        None => {
            call(
                browser,
                "delete",
                "/todoitems",
                None,
                204,
                "06-bob-delete-204",
            )
            .await?;
        }
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_sign_in_and_calls_in_headless_chromium() {
    let driver = start_chromedriver();
    let scratch = tempfile::tempdir().unwrap();
    let (sys, gateway_url, step_up_at) = match std::env::var("BROWSER_GATEWAY_URL") {
        Ok(url) => (None, url.trim_end_matches('/').to_string(), None),
        Err(_) => {
            let policy = scratch.path().join("policy.yaml");
            std::fs::write(&policy, step_up_policy()).unwrap();
            let sys = System::start_with(Options {
                // The dev IdP's "container": browsers use this address...
                idp_listen: "127.0.0.2:0".parse().unwrap(),
                // ...the gateway another one (a relay), through --metadata-url.
                idp_relay: Some(true),
                backend_listen: "127.0.0.3:0".parse().unwrap(),
                gateway_args: vec!["--swagger-ui-client-id".into(), SWAGGER_CLIENT_ID.into()],
                policy,
                ..Options::default()
            })
            .await
            .expect("system");
            sys.first_key_fetch().await;
            assert!(sys.idp.base_url().starts_with("http://127.0.0.2:"));
            let url = sys.gateway_url.clone();
            // The gateway's --instance: the browser's URL of the IdP.
            let authorize = format!("{}/{TENANT}/oauth2/v2.0/authorize", sys.idp.base_url());
            (Some(sys), url, Some(authorize))
        }
    };

    let profile = tempfile::tempdir().unwrap();
    let browser = start_browser(&driver, profile.path()).await;
    let result = flow(&browser, &gateway_url, step_up_at.as_deref()).await;
    if result.is_err() {
        screenshot(&browser, "99-failure").await;
    }
    let _ = browser.close().await;
    drop(driver);
    if let Some(sys) = sys {
        sys.stop().await.unwrap();
    }
    if let Err(e) = result {
        panic!("{e} against {gateway_url} (screenshots in target/browser-artifacts/)");
    }
}
