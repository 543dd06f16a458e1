//! Policy compile and decision times for 10 and 10,000 routes; run by
//! `bench/policy.sh` (`cargo run --release -p authz-proxy --example policy_bench`).
//!
//! The generated policy mixes what real ones hold: literal paths, one-segment
//! `*` globs and `**` subtrees, spread over many services, so a decision has
//! to find one route among thousands. Decisions are timed for the first
//! route, the last route, a 405 and a 404 — a linear scan would show as a
//! last-route time that grows with the route count.

use std::hint::black_box;
use std::time::{Duration, Instant};

use authz_proxy::path::normalize;
use authz_proxy::policy::{Policy, RouteMatch};
use http::Method;

/// A policy of `routes` routes.
fn policy_text(routes: usize) -> String {
    let mut text = String::from("version: 1\nroutes:\n");
    for i in 0..routes {
        let service = i / 4;
        let route = match i % 4 {
            0 => format!(
                "  - name: list-{service}\n    path: /api/v1/svc{service}/items\n    methods: [GET, POST]\n    scopes: [access_as_user]\n"
            ),
            1 => format!(
                "  - name: one-{service}\n    path: /api/v1/svc{service}/items/*\n    methods: [GET, DELETE]\n    scopes: [access_as_user]\n"
            ),
            2 => format!(
                "  - name: admin-{service}\n    path: /api/v1/svc{service}/admin/**\n    methods: [GET, POST, DELETE]\n    roles: [Admin]\n"
            ),
            _ => format!(
                "  - name: files-{service}\n    path: /files/svc{service}/*/*.json\n    methods: [GET]\n    allow: anonymous\n"
            ),
        };
        text.push_str(&route);
    }
    text
}

/// Median of `runs` timings of `f`.
fn median(runs: usize, mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[runs / 2]
}

/// Nanoseconds per decision (normalise + route_for), over many repetitions.
fn per_decision(policy: &Policy, method: &Method, raw: &str) -> f64 {
    const N: u32 = 200_000;
    let start = Instant::now();
    for _ in 0..N {
        let path = normalize(black_box(raw)).expect("a valid path");
        black_box(matches!(
            policy.route_for(method, &path),
            RouteMatch::Found(_)
        ));
    }
    start.elapsed().as_nanos() as f64 / f64::from(N)
}

fn main() {
    println!("routes   compile      check      first   last(lit)  last(*)  last(**)  405      404");
    for routes in [10_usize, 10_000] {
        let text = policy_text(routes);
        let compile = median(5, || {
            black_box(Policy::parse(&text, "policy.yaml").expect("compiles"));
        });
        let check = median(3, || {
            black_box(Policy::parse_with_warnings(&text, "policy.yaml", &[]).expect("compiles"));
        });
        let policy = Policy::parse(&text, "policy.yaml").expect("compiles");
        // The last service with all four kinds of route.
        let last = policy.routes().len() / 4 - 1;
        let cases = [
            (Method::GET, "/api/v1/svc0/items".to_owned()),
            (Method::GET, format!("/api/v1/svc{last}/items")),
            (Method::DELETE, format!("/api/v1/svc{last}/items/42")),
            (Method::POST, format!("/api/v1/svc{last}/admin/users/7")),
            (Method::PUT, format!("/api/v1/svc{last}/items/42")),
            (Method::GET, "/nowhere/at/all".to_owned()),
        ];
        let times: Vec<String> = cases
            .iter()
            .map(|(method, path)| format!("{:>5.0} ns", per_decision(&policy, method, path)))
            .collect();
        println!(
            "{:>6}  {:>8.2} ms  {:>8.2} ms  {}",
            policy.routes().len(),
            compile.as_secs_f64() * 1e3,
            check.as_secs_f64() * 1e3,
            times.join("  ")
        );
    }
}
