//! The offline policy tools against the real files: the demo's
//! `policy.yaml` is clean under `check --strict`, covers the todo backend's
//! OpenAPI document (generated offline from `todo_backend::openapi()`), and
//! passes its own `policy.cases.yaml`.

use std::path::PathBuf;

use authz_proxy::cli::cases::TestArgs;
use authz_proxy::cli::check::CheckArgs;
use e2e_tests::repo_policy;

/// The backend's OpenAPI document, written where `.ci/run` looks for it.
fn backend_openapi() -> PathBuf {
    let file = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("todo-backend-openapi.json");
    let json = todo_backend::openapi().to_pretty_json().unwrap();
    std::fs::write(&file, json).unwrap();
    file
}

#[test]
fn demo_policy_covers_every_backend_operation_without_warnings() {
    let openapi = backend_openapi();
    let output = authz_proxy::cli::check::run(&CheckArgs {
        policy: repo_policy(),
        strict: true,
        openapi: Some(openapi.clone()),
    });
    assert_eq!(output.stderr, "");
    assert_eq!(
        output.stdout,
        format!(
            "ok: 5 routes, 7 operations of {} all covered\n",
            openapi.display()
        )
    );
    assert_eq!(output.code, 0);
}

#[test]
fn demo_policy_passes_its_own_cases() {
    let output = authz_proxy::cli::cases::run(&TestArgs {
        cases: repo_policy().with_file_name("policy.cases.yaml"),
        policy: repo_policy(),
    });
    assert_eq!(output.code, 0, "{}{}", output.stdout, output.stderr);
    assert!(output.stdout.ends_with(" failed\n") && output.stdout.contains(", 0 failed"));
}
