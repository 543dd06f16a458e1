//! The `groups:` condition: whatever a caller's groups, groups overage and
//! Microsoft Graph's answer, the decision is the documented one (a member
//! of one of the route's groups, from `groups` or, for an overage, from
//! Graph; an overage Graph cannot resolve is `groups_unresolved`), Graph
//! is asked ([`stages::groups_to_resolve`]) only for an overage on a route
//! with groups whose earlier conditions hold, and when it is not asked its
//! answer changes nothing.
//!
//! Input bytes: the route, the caller's groups (a bit set over a pool,
//! each in either case), the overage flag, roles, and Graph's answer.
#![no_main]

use std::sync::{Arc, LazyLock};

use authz_proxy::identity::{Identity, PrincipalKind};
use authz_proxy::policy::{Overage, Policy};
use authz_proxy::stages;
use libfuzzer_sys::fuzz_target;

const POOL: [&str; 4] = [
    "6f1c0000-0000-4000-8000-000000000001",
    "6f1c0000-0000-4000-8000-000000000002",
    "6f1c0000-0000-4000-8000-000000000003",
    "6f1c0000-0000-4000-8000-0000000000ff",
];

/// Each route's groups, as indexes into `POOL`.
const ROUTES: [(&str, &[usize]); 4] = [
    ("one", &[0]),
    ("two", &[1, 2]),
    ("admin", &[0]),
    ("none", &[]),
];

static POLICY: LazyLock<Policy> = LazyLock::new(|| {
    Policy::parse(
        "version: 1
routes:
  - {name: one, path: /one, methods: [GET], groups: [6f1c0000-0000-4000-8000-000000000001]}
  - {name: two, path: /two, methods: [GET], groups: [6F1C0000-0000-4000-8000-000000000002, 6f1c0000-0000-4000-8000-000000000003]}
  - {name: admin, path: /admin, methods: [GET], roles: [Admin], groups: [6f1c0000-0000-4000-8000-000000000001]}
  - {name: none, path: /none, methods: [GET]}
",
        "fuzz.yaml",
    )
    .expect("the fuzz policy compiles")
});

fuzz_target!(|data: &[u8]| {
    let [route, held, flags, answer, ..] = *data else {
        return;
    };
    let (name, wanted) = ROUTES[usize::from(route % 4)];
    let pick = |bits: u8| -> Vec<String> {
        POOL.iter()
            .enumerate()
            .filter(|(i, _)| bits & (1 << i) != 0)
            .map(|(i, g)| {
                if bits & (1 << (i + 4)) != 0 {
                    g.to_ascii_uppercase()
                } else {
                    (*g).to_owned()
                }
            })
            .collect()
    };
    let overage = flags & 1 != 0;
    let admin = flags & 2 != 0;
    let graph_down = flags & 4 != 0;
    let who = Identity {
        object_id: "oid".into(),
        tenant_id: "aaaaaaaa-0000-4000-8000-000000000001".into(),
        kind: PrincipalKind::User,
        roles: if admin {
            vec!["Admin".into()]
        } else {
            vec!["User".into()]
        },
        scopes: vec!["access_as_user".into()],
        name: None,
        email: None,
        app_id: None,
        guest: false,
        audiences: vec!["api://gateway".into()],
        default_audience: true,
        auth_contexts: Vec::new(),
        handles_claims_challenges: false,
        // An overage token lists no groups (claims.rs); listed ids are kept lowercase.
        groups: if overage {
            Vec::new()
        } else {
            pick(held).iter().map(|g| g.to_ascii_lowercase()).collect()
        },
        groups_overage: overage,
        expires_at: 0,
    };
    let graph_answer = pick(answer);
    let route = POLICY
        .routes()
        .iter()
        .find(|r| r.name == name)
        .expect("route");

    let asked = stages::groups_to_resolve(route, &who);
    let earlier_ok = name != "admin" || admin;
    assert_eq!(
        asked.is_some(),
        overage && !wanted.is_empty() && earlier_ok,
        "Graph asked when it must not be, or not asked when it must"
    );
    let member_of = |held: &[String]| {
        held.iter()
            .any(|h| wanted.iter().any(|&w| POOL[w].eq_ignore_ascii_case(h)))
    };
    let overage_answer = match asked {
        None => Overage::NotAsked,
        Some(_) if graph_down => Overage::Unresolved("Microsoft Graph answered 503".into()),
        Some(_) => Overage::Resolved {
            member: member_of(&graph_answer),
        },
    };
    let authorize = |o: &Overage| {
        stages::authorize(
            route,
            &who,
            o,
            &Arc::from("https://login.example/authorize"),
        )
        .map_err(|e| e.reason())
    };
    let got = authorize(&overage_answer);
    let expected: Result<Option<_>, &str> = if !earlier_ok {
        Err("missing_role")
    } else if wanted.is_empty() {
        Ok(None)
    } else if overage && graph_down {
        Err("groups_unresolved")
    } else if overage {
        if member_of(&graph_answer) {
            Ok(None)
        } else {
            Err("missing_group")
        }
    } else if member_of(&who.groups) {
        Ok(None)
    } else {
        Err("missing_group")
    };
    assert_eq!(got.map(|d| d.map(|d| d.reason())), expected);
    if asked.is_none() {
        // Not asked: nothing Graph could say changes the verdict.
        for other in [
            Overage::Resolved { member: true },
            Overage::Resolved { member: false },
            Overage::Unresolved("down".into()),
        ] {
            assert_eq!(
                authorize(&other).map(|d| d.map(|d| d.reason())),
                expected,
                "an answer nobody asked for changed the verdict"
            );
        }
    }
});
