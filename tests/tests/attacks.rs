//! Raw-socket attacks on the gateway: request smuggling, malformed heads,
//! odd request targets, oversized input, protocol switches and identity
//! headers hidden where a header filter might not look.
//!
//! HTTP clients clean requests up before sending them, so every case here is
//! written byte for byte. Each case checks the status the client gets *and*,
//! through a recording upstream (and a canary listener where a target names
//! another host), that nothing extra reached anything behind the gateway.

use dev_idp::MintRequest;
use e2e_tests::recorder::{Canary, Recorder};
use e2e_tests::wire::{exchange, host_port, statuses};
use e2e_tests::{Options, System};

/// Like the repository's policy, plus an anonymous route that takes bodies.
const POLICY: &str = "version: 1
routes:
  - name: health
    path: /health
    methods: [GET, HEAD]
    allow: anonymous
  - name: public
    path: /public
    methods: [GET, POST]
    allow: anonymous
  - name: todos
    path: /todoitems
    methods: [GET, POST]
    scopes: [access_as_user]
";

/// A request that, if a body were ever read as the next request, would be
/// forwarded (anonymous route): finding it upstream means a desync.
const SMUGGLED: &str = "GET /health?smuggled HTTP/1.1\r\nHost: g\r\n\r\n";

struct Setup {
    sys: System,
    upstream: Recorder,
    addr: String,
}

impl Setup {
    /// The system with the recording upstream and [`POLICY`]. A 1 s header
    /// read timeout closes idle keep-alive connections quickly, so reading
    /// "until the server closes" stays fast.
    async fn start() -> Setup {
        let upstream = Recorder::start().await;
        let dir = tempfile::tempdir().unwrap();
        let policy = dir.path().join("policy.yaml");
        std::fs::write(&policy, POLICY).unwrap();
        let sys = System::start_with(Options {
            upstream: Some(upstream.url.clone()),
            policy,
            gateway_args: vec!["--header-read-timeout-seconds".into(), "1".into()],
            ..Options::default()
        })
        .await
        .unwrap();
        let addr = host_port(&sys.gateway_url).to_owned();
        Setup {
            sys,
            upstream,
            addr,
        }
    }

    /// Sends raw bytes; returns the statuses answered and the whole answer.
    async fn send(&self, request: &str) -> (Vec<u16>, String) {
        let text = exchange(&self.addr, request.as_bytes()).await;
        (statuses(&text), text)
    }

    /// Sends each case and checks it got exactly `expected` and that the
    /// upstream received nothing.
    async fn refused(&self, expected: &[u16], cases: &[(&str, String)]) {
        for (what, request) in cases {
            let before = self.upstream.count();
            let (got, text) = self.send(request).await;
            assert_eq!(got, expected, "{what}: {text}");
            assert_eq!(self.upstream.count(), before, "{what}: forwarded");
        }
    }

    fn smuggled_requests_seen(&self) -> usize {
        self.upstream
            .seen()
            .iter()
            .filter(|s| s.path.contains("smuggled"))
            .count()
    }

    fn bearer(&self, user: &str) -> String {
        format!(
            "Authorization: Bearer {}\r\n",
            self.sys.token(MintRequest::user(user))
        )
    }

    async fn stop(self) {
        self.sys.stop().await.unwrap();
    }
}

fn post(target: &str, headers: &str, body: &str) -> String {
    format!("POST {target} HTTP/1.1\r\nHost: g\r\n{headers}\r\n{body}")
}

fn get(target: &str, headers: &str) -> String {
    format!("GET {target} HTTP/1.1\r\nHost: g\r\n{headers}Connection: close\r\n\r\n")
}

#[tokio::test]
async fn content_length_with_chunked_is_framed_by_chunked_alone_then_the_connection_closes() {
    let s = Setup::start().await;
    // RFC 9112 §6.1: Transfer-Encoding overrides Content-Length, and the
    // connection must close after the response: the bytes after the chunked
    // body are never read as a request.
    for (what, request) in [
        (
            "CL then TE",
            post(
                "/public",
                "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n",
                &format!("5\r\nhello\r\n0\r\n\r\n{SMUGGLED}"),
            ),
        ),
        (
            "TE then CL",
            post(
                "/public",
                "Transfer-Encoding: chunked\r\nContent-Length: 60\r\n",
                &format!("5\r\nhello\r\n0\r\n\r\n{SMUGGLED}"),
            ),
        ),
    ] {
        let before = s.upstream.count();
        let (got, text) = s.send(&request).await;
        assert_eq!(got, [200], "{what}: {text}");
        assert!(text.contains("connection: close"), "{what}: {text}");
        let seen = s.upstream.seen();
        assert_eq!(seen.len(), before + 1, "{what}");
        let forwarded = &seen[before];
        assert_eq!(forwarded.body, b"hello", "{what}");
        assert!(forwarded.all("content-length").is_empty(), "{what}");
    }
    assert_eq!(s.smuggled_requests_seen(), 0);
    s.stop().await;
}

#[tokio::test]
async fn conflicting_or_listed_content_lengths_are_refused_with_400() {
    let s = Setup::start().await;
    let n = SMUGGLED.len();
    s.refused(
        &[400],
        &[
            (
                "two different lengths",
                post(
                    "/public",
                    &format!("Content-Length: 0\r\nContent-Length: {n}\r\n"),
                    SMUGGLED,
                ),
            ),
            (
                "a list",
                post("/public", &format!("Content-Length: 0, {n}\r\n"), SMUGGLED),
            ),
            (
                "a sign",
                post("/public", &format!("Content-Length: +{n}\r\n"), SMUGGLED),
            ),
            (
                "not a number",
                post("/public", "Content-Length: 0x10\r\n", SMUGGLED),
            ),
        ],
    )
    .await;
    assert_eq!(s.smuggled_requests_seen(), 0);
    s.stop().await;
}

#[tokio::test]
async fn transfer_codings_other_than_a_single_chunked_are_refused_with_400() {
    let s = Setup::start().await;
    let chunked_empty = format!("0\r\n\r\n{SMUGGLED}");
    s.refused(
        &[400],
        &[
            (
                "unknown coding",
                post("/public", "Transfer-Encoding: xchunked\r\n", &chunked_empty),
            ),
            (
                "identity",
                post(
                    "/public",
                    "Transfer-Encoding: identity\r\nContent-Length: 5\r\n",
                    &chunked_empty,
                ),
            ),
            (
                "chunked twice",
                post(
                    "/public",
                    "Transfer-Encoding: chunked, chunked\r\n",
                    &chunked_empty,
                ),
            ),
            (
                "chunked in two lines",
                post(
                    "/public",
                    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n",
                    &chunked_empty,
                ),
            ),
            (
                "gzip then chunked",
                post(
                    "/public",
                    "Transfer-Encoding: gzip, chunked\r\n",
                    &chunked_empty,
                ),
            ),
            (
                "space before the colon",
                post("/public", "Transfer-Encoding : chunked\r\n", &chunked_empty),
            ),
            (
                "chunked in HTTP/1.0",
                format!(
                    "POST /public HTTP/1.0\r\nHost: g\r\nTransfer-Encoding: chunked\r\n\r\n{chunked_empty}"
                ),
            ),
        ],
    )
    .await;
    assert_eq!(s.smuggled_requests_seen(), 0);
    s.stop().await;
}

#[tokio::test]
async fn obs_fold_bare_cr_and_malformed_header_lines_are_refused_with_400() {
    let s = Setup::start().await;
    s.refused(
        &[400],
        &[
            (
                "obs-fold",
                get("/health", "X-A: a\r\n X-User-Id: forged\r\n"),
            ),
            (
                "tab fold",
                get("/health", "X-A: a\r\n\tX-User-Id: forged\r\n"),
            ),
            ("bare CR", get("/health", "X-A: a\rX-User-Id: forged\r\n")),
            ("space in a name", get("/health", "X-User-Id : forged\r\n")),
            ("no colon", get("/health", "X-User-Id forged\r\n")),
            ("NUL in a value", get("/health", "X-A: a\0b\r\n")),
            ("HTTP/0.9", "GET /health\r\n\r\n".to_owned()),
            (
                "HTTP/2.0 in a request line",
                "GET /health HTTP/2.0\r\nHost: g\r\n\r\n".to_owned(),
            ),
            (
                "two spaces in the request line",
                "GET  /health HTTP/1.1\r\nHost: g\r\n\r\n".to_owned(),
            ),
        ],
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn absolute_form_and_authority_targets_never_choose_where_the_gateway_connects() {
    let s = Setup::start().await;
    let canary = Canary::start().await;
    let elsewhere = canary.addr;
    // Absolute form: the path is decided and forwarded, to the upstream only.
    let (got, text) = s
        .send(&get(&format!("http://{elsewhere}/health"), ""))
        .await;
    assert_eq!(got, [200], "{text}");
    let (got, text) = s
        .send(&format!(
            "GET http://{elsewhere}/todoitems HTTP/1.1\r\nHost: {elsewhere}\r\nConnection: close\r\n\r\n"
        ))
        .await;
    assert_eq!(got, [401], "{text}");
    // Authority form (CONNECT) and a target that is not a path at all.
    s.refused(
        &[400],
        &[
            (
                "CONNECT",
                format!(
                    "CONNECT {elsewhere} HTTP/1.1\r\nHost: {elsewhere}\r\nConnection: close\r\n\r\n"
                ),
            ),
            (
                "asterisk",
                "OPTIONS * HTTP/1.1\r\nHost: g\r\nConnection: close\r\n\r\n".to_owned(),
            ),
            ("relative", get("health", "")),
        ],
    )
    .await;
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/health");
    assert_eq!(seen[0].all("host"), [s.upstream.addr.to_string()]);
    assert_eq!(
        canary.connections(),
        0,
        "the gateway dialled the named host"
    );
    s.stop().await;
}

#[tokio::test]
async fn lowercase_and_unknown_methods_match_no_route() {
    let s = Setup::start().await;
    s.refused(
        &[405],
        &[
            ("get", get("/health", "").replacen("GET", "get", 1)),
            ("Get", get("/todoitems", "").replacen("GET", "Get", 1)),
            ("TRACE", get("/health", "").replacen("GET", "TRACE", 1)),
            (
                "PROPFIND",
                get("/public", "").replacen("GET", "PROPFIND", 1),
            ),
        ],
    )
    .await;
    s.stop().await;
}

#[tokio::test]
async fn missing_or_repeated_host_is_refused_with_400() {
    let s = Setup::start().await;
    s.refused(
        &[400],
        &[
            (
                "no Host",
                "GET /health HTTP/1.1\r\nConnection: close\r\n\r\n".to_owned(),
            ),
            ("two Hosts", get("/health", "Host: other\r\n")),
        ],
    )
    .await;
    // HTTP/1.0 has no Host requirement.
    let (got, text) = s.send("GET /health HTTP/1.0\r\n\r\n").await;
    assert_eq!(got, [200], "{text}");
    s.stop().await;
}

#[tokio::test]
async fn oversized_heads_get_431_and_oversized_tokens_401_never_forwarded() {
    let s = Setup::start().await;
    // Defaults: 64 KiB of head, 100 headers.
    let big = "a".repeat(70 * 1024);
    let many: String = (0..120).map(|i| format!("X-H{i}: v\r\n")).collect();
    s.refused(
        &[431],
        &[
            (
                "one huge header",
                get("/health", &format!("X-Big: {big}\r\n")),
            ),
            ("huge target", get(&format!("/health?{big}"), "")),
            ("too many headers", get("/health", &many)),
            (
                "huge token",
                get("/todoitems", &format!("Authorization: Bearer {big}\r\n")),
            ),
        ],
    )
    .await;
    // A token under the head limit but over the token limit: refused unparsed.
    let long = "a".repeat(20 * 1024);
    let (got, text) = s
        .send(&get(
            "/todoitems",
            &format!("Authorization: Bearer {long}\r\n"),
        ))
        .await;
    assert_eq!(got, [401], "{text}");
    assert!(text.contains("too long"), "{text}");
    assert_eq!(s.upstream.count(), 0);
    s.stop().await;
}

#[tokio::test]
async fn upgrade_to_h2c_is_refused_and_prior_knowledge_http2_meets_the_same_policy() {
    let s = Setup::start().await;
    s.refused(
        &[400],
        &[
            (
                "h2c upgrade",
                get(
                    "/health",
                    "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAARAAAAAAAIAAAAA\r\nConnection: Upgrade, HTTP2-Settings\r\n",
                )
                .replace("Connection: close\r\n", ""),
            ),
            (
                "h2c among others",
                get("/public", "Upgrade: websocket, H2C\r\n"),
            ),
        ],
    )
    .await;
    // Other upgrades are not switched to: the request goes through as plain
    // HTTP/1.1 without the hop-by-hop Upgrade header.
    let (got, text) = s
        .send(
            &get("/public", "Upgrade: websocket\r\nConnection: Upgrade\r\n")
                .replace("Connection: close\r\n", ""),
        )
        .await;
    assert_eq!(got, [200], "{text}");
    // The status line, not just any "101": the random X-Request-Id may hold one.
    assert!(!text.contains("HTTP/1.1 101"), "{text}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert!(seen[0].all("upgrade").is_empty());
    // HTTP/2 with prior knowledge on the plain port: same stages, same policy.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let r = h2
        .get(format!("{}/todoitems", s.sys.gateway_url))
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(
        (r.version(), r.status().as_u16()),
        (reqwest::Version::HTTP_2, 401)
    );
    let r = h2
        .get(format!("{}/health", s.sys.gateway_url))
        .header("x-user-id", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen[1].all("x-user-id").is_empty());
    s.stop().await;
}

#[tokio::test]
async fn bytes_after_a_refused_request_are_never_read_as_a_forwarded_request() {
    let s = Setup::start().await;
    let n = SMUGGLED.len();
    for (what, request, expected) in [
        // An answered error keeps the connection: the next request is decided on its own.
        (
            "pipelined after a 404",
            format!(
                "GET /nope HTTP/1.1\r\nHost: g\r\n\r\n{}",
                get("/health", "")
            ),
            vec![404, 200],
        ),
        // A body is a body, even when the gateway refuses without reading it.
        (
            "request in a 404's body",
            post("/nope", &format!("Content-Length: {n}\r\n"), SMUGGLED),
            vec![404],
        ),
        (
            "request in a 401's chunked body",
            post(
                "/todoitems",
                "Transfer-Encoding: chunked\r\n",
                &format!("{n:x}\r\n{SMUGGLED}\r\n0\r\n\r\n"),
            ),
            vec![401],
        ),
        (
            "request in a 400's body",
            post("/a/%2F", &format!("Content-Length: {n}\r\n"), SMUGGLED),
            vec![400],
        ),
        // A head that does not parse ends the connection: nothing after it is read.
        (
            "pipelined after a malformed head",
            format!("GET /health HTTP/1.1\r\nHost: g\r\nBad Header\r\n\r\n{SMUGGLED}"),
            vec![400],
        ),
        (
            "pipelined after an oversized head",
            format!(
                "{}{SMUGGLED}",
                get("/health", &format!("X-Big: {}\r\n", "a".repeat(70 * 1024)))
                    .replace("Connection: close\r\n", "")
            ),
            vec![431],
        ),
    ] {
        let (got, text) = s.send(&request).await;
        assert_eq!(got, expected, "{what}: {text}");
    }
    assert_eq!(s.smuggled_requests_seen(), 0);
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1, "only the pipelined /health");
    assert_eq!(seen[0].path, "/health");
    s.stop().await;
}

#[tokio::test]
async fn one_connection_moves_from_the_gateway_s_own_server_to_hyper_s_framing_each_request_as_sent()
 {
    // The gateway's own HTTP/1.1 server takes plain requests and bodies
    // framed by `Content-Length`; the first chunked request hands the
    // connection to hyper's server with every byte after it. Each request,
    // pipelined in one write, must arrive whole and alone.
    let s = Setup::start().await;
    let large = "x".repeat(300 * 1024);
    let request = [
        get("/health?1", "").replace("Connection: close\r\n", ""),
        post("/public?2", "Content-Length: 5\r\n", "hello"),
        post(
            "/public?3",
            &format!("Content-Length: {}\r\n", large.len()),
            &large,
        ),
        post(
            "/public?4",
            "Transfer-Encoding: chunked\r\n",
            "5\r\nworld\r\n0\r\n\r\n",
        ),
        post("/public?5", "Content-Length: 2\r\n", "ok"),
        get("/health?6", ""),
    ]
    .concat();
    let (got, text) = s.send(&request).await;
    assert_eq!(got, [200; 6], "{}", &text[..text.len().min(2000)]);
    let seen = s.upstream.seen();
    let arrived: Vec<(&str, usize)> = seen
        .iter()
        .map(|r| (r.path.as_str(), r.body.len()))
        .collect();
    assert_eq!(
        arrived,
        [
            ("/health?1", 0),
            ("/public?2", 5),
            ("/public?3", large.len()),
            ("/public?4", 5),
            ("/public?5", 2),
            ("/health?6", 0)
        ]
    );
    assert_eq!(seen[1].body, b"hello");
    assert_eq!(seen[2].body, large.as_bytes());
    assert_eq!(seen[3].body, b"world");
    assert_eq!(s.smuggled_requests_seen(), 0);
    s.stop().await;
}

#[tokio::test]
async fn identity_headers_in_chunked_trailers_never_reach_the_upstream() {
    let s = Setup::start().await;
    let trailers = "X-User-Id: forged\r\nX-User-Roles: Admin\r\nX_User_Tenant: forged\r\nAuthorization: Bearer forged\r\n";
    for (target, auth) in [
        ("/todoitems", s.bearer("alice")),
        ("/public", String::new()),
    ] {
        let (got, text) = s
            .send(&post(
                target,
                &format!("{auth}Transfer-Encoding: chunked\r\nTrailer: X-User-Id, X-User-Roles\r\nConnection: close\r\n"),
                &format!("5\r\nhello\r\n0\r\n{trailers}\r\n"),
            ))
            .await;
        assert_eq!(got, [200], "{target}: {text}");
    }
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 2);
    for forwarded in &seen {
        assert_eq!(forwarded.body, b"hello");
        assert!(forwarded.trailers.is_empty(), "{:?}", forwarded.trailers);
        assert!(forwarded.all("trailer").is_empty());
        assert!(
            forwarded
                .headers
                .iter()
                .all(|(_, v)| v != "forged" && v != "Admin")
        );
    }
    assert_eq!(
        seen[0].all("x-user-id"),
        ["a11ce000-0000-4000-8000-000000000001"]
    );
    assert_eq!(seen[0].all("x-user-roles"), ["User"]);
    assert!(seen[1].all("x-user-id").is_empty());
    s.stop().await;
}

#[tokio::test]
async fn connection_cannot_name_away_or_duplicate_identity_headers() {
    let s = Setup::start().await;
    let forged = "X-User-Id: forged\r\nx-user-id: forged\r\nX_USER_ROLES: Admin\r\nX-User.Tenant: forged\r\n\
                  Connection: X-User-Id, X-User-Roles, X-User-Tenant, X-Forwarded-For, Host, Authorization, close\r\n";
    let (got, text) = s
        .send(&format!(
            "GET /todoitems HTTP/1.1\r\nHost: g\r\n{}{forged}\r\n",
            s.bearer("alice")
        ))
        .await;
    assert_eq!(got, [200], "{text}");
    let (got, text) = s
        .send(&format!("GET /public HTTP/1.1\r\nHost: g\r\n{forged}\r\n"))
        .await;
    assert_eq!(got, [200], "{text}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 2);
    let (protected, anonymous) = (&seen[0], &seen[1]);
    assert_eq!(
        protected.all("x-user-id"),
        ["a11ce000-0000-4000-8000-000000000001"]
    );
    assert_eq!(protected.all("x-user-roles"), ["User"]);
    assert_eq!(protected.all("x-user-tenant"), [e2e_tests::TENANT]);
    for forwarded in &seen {
        assert!(
            forwarded
                .headers
                .iter()
                .all(|(_, v)| v != "forged" && v != "Admin"),
            "{:?}",
            forwarded.headers
        );
        assert_eq!(forwarded.all("x-forwarded-for"), ["127.0.0.1"]);
        assert_eq!(forwarded.all("host"), [s.upstream.addr.to_string()]);
        assert!(
            forwarded
                .all("connection")
                .iter()
                .all(|v| !v.contains("x-user"))
        );
        assert!(forwarded.all("authorization").is_empty());
    }
    for name in ["x-user-id", "x-user-roles", "x-user-tenant", "x-user-type"] {
        assert!(anonymous.all(name).is_empty(), "{name}");
    }
    s.stop().await;
}

#[tokio::test]
async fn headers_named_in_connection_are_dropped_even_beside_non_ascii_bytes() {
    let s = Setup::start().await;
    let request = b"GET /public HTTP/1.1\r\nHost: g\r\nX-Internal: secret\r\nX-Other: secret\r\n\
                    Connection: X-Internal, \xe9t\xe9, close\r\nConnection: X-Other\r\n\r\n";
    let text = exchange(&s.addr, request).await;
    assert_eq!(statuses(&text), [200], "{text}");
    let seen = s.upstream.seen();
    assert_eq!(seen.len(), 1);
    assert!(
        seen[0].all("x-internal").is_empty(),
        "{:?}",
        seen[0].headers
    );
    assert!(seen[0].all("x-other").is_empty(), "{:?}", seen[0].headers);
    s.stop().await;
}
