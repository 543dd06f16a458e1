//! Tests of configuration parsing: the shipped default, defaults, and that
//! every problem is reported with its `file:line:col`.

use super::{Config, EMBEDDED_DEFAULT, TokenVersion};

/// Parses `yaml` and returns its problems as printed.
fn problems(yaml: &str) -> Vec<String> {
    match Config::parse(yaml, "idp.yaml") {
        Ok(_) => Vec::new(),
        Err(e) => e.problems().iter().map(ToString::to_string).collect(),
    }
}

const MINIMAL: &str = "\
tenants:
  t:
    id: aaaaaaaa-0000-4000-8000-000000000001
apps:
  api:
    client_id: c0ffee00-0000-4000-8000-0000000000a1
    scopes: [s]
    app_roles: [R]
";

#[test]
fn the_embedded_default_is_valid_and_has_the_fixed_ids() {
    let c = Config::parse(EMBEDDED_DEFAULT, "dev-idp.yaml").unwrap();
    assert_eq!(
        c.tenant("contoso").unwrap().id,
        "aaaaaaaa-0000-4000-8000-000000000001"
    );
    assert_eq!(
        c.tenant("fabrikam").unwrap().id,
        "bbbbbbbb-0000-4000-8000-000000000002"
    );
    let api = c.app("todo-api").unwrap();
    assert_eq!(api.client_id, "c0ffee00-0000-4000-8000-0000000000a1");
    let exposed = api.api.as_ref().unwrap();
    assert_eq!(
        exposed.identifier_uri,
        "api://c0ffee00-0000-4000-8000-0000000000a1"
    );
    assert_eq!(exposed.access_token_accepted_version, TokenVersion::V2);
    assert_eq!(c.app("swagger-ui").unwrap().redirect_uris.len(), 2);
    assert_eq!(
        c.app("daemon").unwrap().secret.as_deref(),
        Some("dev-daemon-secret")
    );
    assert_eq!(
        c.user("bob").unwrap().app_roles["todo-api"],
        ["Admin", "User"]
    );
    assert!(c.user("dave").unwrap().app_roles.is_empty());
    assert_eq!(c.base_url, "http://localhost:9400");
    assert_eq!(c.listen.to_string(), "127.0.0.1:9400");
    assert_eq!(c.token_lifetime.as_secs(), 3600);
}

#[test]
fn defaults_fill_in_and_version_defaults_to_1_as_in_entra() {
    let c = Config::parse(MINIMAL, "idp.yaml").unwrap();
    assert_eq!(c.effective_sts_base_url(), "http://localhost:9400");
    let api = c.app("api").unwrap().api.clone().unwrap();
    assert_eq!(
        api.identifier_uri,
        "api://c0ffee00-0000-4000-8000-0000000000a1"
    );
    assert_eq!(api.access_token_accepted_version, TokenVersion::V1);
}

#[test]
fn a_type_error_carries_file_line_and_column() {
    let yaml = format!("{MINIMAL}listen: [1]\n");
    let p = problems(&yaml);
    assert_eq!(p.len(), 1, "{p:?}");
    assert!(p[0].starts_with("idp.yaml:9:"), "{p:?}");
}

#[test]
fn an_unknown_key_is_reported_where_it_is() {
    let p = problems(&format!("{MINIMAL}colour: blue\n"));
    assert!(
        p[0].starts_with("idp.yaml:9:1: unknown field `colour`"),
        "{p:?}"
    );
}

#[test]
fn all_semantic_problems_are_reported_at_once_with_places() {
    let yaml = "\
base_url: localhost:9400
tenants:
  t:
    id: not-a-guid
apps:
  api:
    client_id: c0ffee00-0000-4000-8000-0000000000a1
    app_roles: [R, two words]
  spa:
    client_id: c0ffee00-0000-4000-8000-0000000000a1
    public_client: true
    secret: s
users:
  u:
    object_id: a11ce000-0000-4000-8000-000000000001
    name: U
    preferred_username: u@t
    tenant: nowhere
    app_roles:
      api: [Nope]
";
    let p = problems(yaml);
    let expected = [
        "idp.yaml:1:11: base_url: 'localhost:9400' is not an absolute http(s) URL",
        "idp.yaml:4:9: tenant id 'not-a-guid' is not a GUID",
        "idp.yaml:8:20: app role 'two words' must be one word",
        "idp.yaml:10:16: client_id 'c0ffee00-0000-4000-8000-0000000000a1' is used twice",
        "idp.yaml:12:13: app 'spa' is a public client and cannot have a secret",
        "idp.yaml:18:13: user 'u': unknown tenant 'nowhere'",
        "idp.yaml:20:13: app_roles of user 'u': app 'api' defines no app role 'Nope'",
    ];
    assert_eq!(p.len(), expected.len(), "{p:#?}");
    for (got, want) in p.iter().zip(expected) {
        assert!(got.starts_with(want), "got {got:?}, want {want:?}");
    }
}

#[test]
fn a_bad_duration_names_the_key() {
    let p = problems(&format!("{MINIMAL}token_lifetime: forever\n"));
    assert!(
        p[0].starts_with("idp.yaml:9:17: token_lifetime: invalid duration 'forever'"),
        "{p:?}"
    );
}
