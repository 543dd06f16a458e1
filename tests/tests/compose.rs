//! `docker-compose.yml` + `docker-compose.override.yml` agree with the
//! binaries they run: every variable a service sets is one its binary reads
//! (from the binary's own `--help`), the ports and addresses line up, only
//! the gateway and the dev IdP are published, and every health check calls
//! an endpoint that answers 200 — checked against the real servers.
//!
//! There is no Docker engine here; CI also runs `docker-compose config` on
//! the same files (see `.ci/run`). The binaries are the ones cargo built next
//! to this test (`cargo nextest run --workspace` builds them).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use e2e_tests::{API_CLIENT_ID, GRAPH_CLIENT_ID, SWAGGER_CLIENT_ID, System, TENANT};
use serde_json::Value;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn yaml(name: &str) -> Value {
    let text = std::fs::read_to_string(repo().join(name)).expect(name);
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The two files merged as compose merges them (override wins per key;
/// lists such as `ports` add up).
#[derive(Debug, Default)]
struct Service {
    command: Vec<String>,
    environment: BTreeMap<String, String>,
    ports: Vec<String>,
    expose: Vec<String>,
    volumes: Vec<String>,
    depends_on: BTreeMap<String, String>,
    healthcheck: Vec<String>,
    /// The networks it joins; `["default"]` when it names none.
    networks: Vec<String>,
    /// The compose secrets it is given (at `/run/secrets/<name>`).
    secrets: Vec<String>,
}

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect()
        })
        .unwrap_or_default()
}

fn services() -> BTreeMap<String, Service> {
    let mut merged: BTreeMap<String, Service> = BTreeMap::new();
    for file in ["docker-compose.yml", "docker-compose.override.yml"] {
        let doc = yaml(file);
        for (name, def) in doc["services"].as_object().expect("services") {
            let service = merged.entry(name.clone()).or_default();
            if def.get("command").is_some() {
                service.command = strings(&def["command"]);
            }
            if let Some(env) = def["environment"].as_object() {
                for (k, v) in env {
                    let v = v.as_str().map_or_else(|| v.to_string(), str::to_string);
                    service.environment.insert(k.clone(), v);
                }
            }
            service.ports.extend(strings(&def["ports"]));
            service.expose.extend(strings(&def["expose"]));
            service.volumes.extend(strings(&def["volumes"]));
            service.secrets.extend(strings(&def["secrets"]));
            if let Some(deps) = def["depends_on"].as_object() {
                for (k, v) in deps {
                    let condition = v["condition"].as_str().unwrap_or("").to_string();
                    service.depends_on.insert(k.clone(), condition);
                }
            }
            if let Some(networks) = def.get("networks") {
                service.networks = match networks.as_object() {
                    Some(map) => map.keys().cloned().collect(),
                    None => strings(networks),
                };
            }
            if def.get("healthcheck").is_some() {
                service.healthcheck = strings(&def["healthcheck"]["test"]);
            }
        }
    }
    for service in merged.values_mut() {
        if service.networks.is_empty() {
            service.networks.push("default".into());
        }
    }
    merged
}

/// `${VAR:-default}` as compose resolves it without a `.env`.
fn resolve(value: &str) -> String {
    let mut out = String::new();
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = rest[start..].find('}').expect("closing brace") + start;
        let inner = &rest[start + 2..end];
        out.push_str(inner.split_once(":-").map_or("", |(_, default)| default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

/// The `[env: NAME=]` variables a binary's `--help` lists.
fn env_vars_in_help(binary: &str, args: &[&str]) -> BTreeSet<String> {
    let dir = std::env::current_exe()
        .expect("test path")
        .parent()
        .and_then(Path::parent)
        .expect("target/debug")
        .to_path_buf();
    let path = dir.join(binary);
    assert!(
        path.exists(),
        "{} is missing: build the binaries first (`cargo build --bins`, or run the \
         whole workspace's tests)",
        path.display()
    );
    let output = Command::new(&path)
        .args(args)
        .arg("--help")
        .output()
        .expect("run --help");
    assert!(output.status.success(), "{binary} --help failed");
    let help = String::from_utf8_lossy(&output.stdout).into_owned();
    help.split("[env: ")
        .skip(1)
        .filter_map(|s| s.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

fn port_of(addr: &str) -> u16 {
    addr.rsplit(':')
        .next()
        .and_then(|p| p.trim_matches('/').parse().ok())
        .unwrap_or_else(|| panic!("no port in {addr:?}"))
}

#[test]
fn three_services_and_only_the_gateway_and_the_dev_idp_are_published() {
    let services = services();
    assert_eq!(
        services.keys().map(String::as_str).collect::<Vec<_>>(),
        ["dev-idp", "proxy", "todo-backend"]
    );
    let ports =
        |name: &str| -> Vec<String> { services[name].ports.iter().map(|p| resolve(p)).collect() };
    assert_eq!(ports("proxy"), ["8000:8000"]);
    assert_eq!(services["proxy"].ports, ["${GATEWAY_PORT:-8000}:8000"]);
    // Anyone who reaches the dev IdP can sign in as anyone: host loopback only.
    assert_eq!(ports("dev-idp"), ["127.0.0.1:9400:9400"]);
    assert!(services["todo-backend"].ports.is_empty());
    assert_eq!(services["todo-backend"].expose, ["8081"]);

    // The base file alone (a real tenant) has no dev IdP at all.
    let base = yaml("docker-compose.yml");
    let names: Vec<&String> = base["services"].as_object().unwrap().keys().collect();
    assert_eq!(names, ["proxy", "todo-backend"]);
    assert!(
        base["services"]["proxy"]["depends_on"]
            .get("dev-idp")
            .is_none()
    );
}

#[test]
fn every_variable_is_one_the_binary_reads() {
    let services = services();
    let mut dockerfile_env = BTreeSet::new();
    for (name, service) in &services {
        let (binary, args): (&str, &[&str]) = match service.command[0].as_str() {
            "dev-idp" => ("dev-idp", &["serve"]),
            other => (other, &[]),
        };
        let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
        assert!(
            dockerfile.contains(&format!("-p {binary}"))
                && dockerfile.contains(&format!("target/release/{binary}")),
            "{name}: the image does not build and copy {binary}"
        );
        let known = env_vars_in_help(binary, args);
        for var in service.environment.keys() {
            assert!(
                known.contains(var),
                "{name}: {binary} has no flag for {var} (it reads {known:?})"
            );
        }
        dockerfile_env.extend(known);
    }
    // The image's own defaults are variables of the binaries too.
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let env_block = dockerfile.split("\nENV POLICY_FILE").nth(1).expect("ENV");
    let env_block = format!("POLICY_FILE{}", env_block.split("\nUSER").next().unwrap());
    for assignment in env_block.split_whitespace().filter(|w| w.contains('=')) {
        let var = assignment.split('=').next().unwrap();
        assert!(
            dockerfile_env.contains(var),
            "Dockerfile sets unknown {var}"
        );
    }
    // .env.sample's variables are the ones the compose files use.
    let sample = std::fs::read_to_string(repo().join(".env.sample")).unwrap();
    let compose = std::fs::read_to_string(repo().join("docker-compose.yml")).unwrap()
        + &std::fs::read_to_string(repo().join("docker-compose.override.yml")).unwrap();
    for line in sample
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains('='))
    {
        let var = line.split('=').next().unwrap();
        assert!(compose.contains(&format!("${{{var}:-")), "{var} is unused");
    }
}

#[test]
fn addresses_ids_and_urls_line_up() {
    let services = services();
    let env = |service: &str, var: &str| -> String {
        resolve(
            services[service]
                .environment
                .get(var)
                .unwrap_or_else(|| panic!("{service}: {var} unset")),
        )
    };
    // Gateway → backend on the compose network, by service name.
    assert_eq!(env("proxy", "UPSTREAM_URL"), "http://todo-backend:8081");
    assert_eq!(env("todo-backend", "TODO_LISTEN"), "0.0.0.0:8081");
    assert_eq!(env("proxy", "PROXY_LISTEN"), "0.0.0.0:8000");
    assert_eq!(env("dev-idp", "DEV_IDP_LISTEN"), "0.0.0.0:9400");
    // The SQLite file is on a named volume.
    let db = env("todo-backend", "TODO_DB");
    let mount = services["todo-backend"].volumes[0].clone();
    let (volume, target) = mount.split_once(':').unwrap();
    assert!(
        !volume.starts_with('.') && !volume.starts_with('/'),
        "{mount}"
    );
    assert!(db.starts_with(&format!("{target}/")), "{db} not on {mount}");
    let declared = yaml("docker-compose.yml")["volumes"].clone();
    assert!(
        declared.get(volume).is_some(),
        "volume {volume} not declared"
    );

    // Browsers sign in at localhost:9400 (the issuer); the gateway fetches
    // discovery from the dev-idp service instead.
    let instance = env("proxy", "AAD_INSTANCE");
    assert_eq!(instance, "http://localhost:9400");
    assert_eq!(env("dev-idp", "DEV_IDP_BASE_URL"), instance);
    assert_eq!(env("proxy", "AAD_STS_INSTANCE"), instance);
    assert_eq!(
        env("proxy", "OIDC_METADATA_URL"),
        format!("http://dev-idp:9400/{TENANT}/v2.0/.well-known/openid-configuration")
    );
    assert_eq!(env("proxy", "ALLOW_INSECURE_IDP"), "true");

    // The ids are the dev IdP's registrations, and Swagger UI's redirect is registered.
    assert_eq!(env("proxy", "AAD_TENANT_ID"), TENANT);
    assert_eq!(env("proxy", "API_CLIENT_ID"), API_CLIENT_ID);
    assert_eq!(env("proxy", "SWAGGER_UI_CLIENT_ID"), SWAGGER_CLIENT_ID);
    let idp = dev_idp::Config::load(&repo().join("dev-idp/dev-idp.yaml")).unwrap();
    assert!(idp.tenant(TENANT).is_some());
    assert!(idp.app(API_CLIENT_ID).is_some_and(|a| a.api.is_some()));
    let spa = idp.app(SWAGGER_CLIENT_ID).unwrap();
    assert!(spa.public_client);
    assert!(
        spa.redirect_uris
            .contains(&"http://localhost:8000/oauth2-redirect".to_string())
    );
    // .env.sample's defaults are the same.
    let sample = std::fs::read_to_string(repo().join(".env.sample")).unwrap();
    for (var, value) in [
        ("AAD_TENANT_ID", TENANT),
        ("API_CLIENT_ID", API_CLIENT_ID),
        ("SWAGGER_UI_CLIENT_ID", SWAGGER_CLIENT_ID),
        ("AAD_INSTANCE", "http://localhost:9400"),
    ] {
        assert!(
            sample.lines().any(|l| l == format!("{var}={value}")),
            "{var}"
        );
    }

    // The gateway starts after both others are healthy.
    for dependency in ["todo-backend", "dev-idp"] {
        assert_eq!(
            services["proxy"]
                .depends_on
                .get(dependency)
                .map(String::as_str),
            Some("service_healthy"),
            "{dependency}"
        );
    }
}

#[tokio::test]
async fn health_checks_call_endpoints_that_answer_200() {
    let services = services();
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    let runtime = dockerfile
        .split(" AS runtime")
        .nth(1)
        .expect("runtime stage");
    assert!(runtime.contains("install -y --no-install-recommends ca-certificates curl"));

    let sys = System::start().await.unwrap();
    sys.first_key_fetch().await;
    for (name, service) in &services {
        let test = &service.healthcheck;
        assert_eq!(&test[..2], ["CMD", "curl"], "{name}: {test:?}");
        assert!(test.contains(&"-f".to_string()) || test.iter().any(|a| a.starts_with("-f")));
        let url = resolve(test.last().unwrap());
        let rest = url.strip_prefix("http://127.0.0.1:").expect("loopback URL");
        let (port, path) = rest.split_at(rest.find('/').unwrap());
        let port: u16 = port.parse().unwrap();
        // The port the service listens on inside its container, and the same
        // endpoint on the real server.
        let (listen, base) = match name.as_str() {
            "todo-backend" => (
                resolve(&service.environment["TODO_LISTEN"]),
                &sys.backend_url,
            ),
            "proxy" => (
                resolve(&service.environment["PROXY_ADMIN_LISTEN"]),
                &sys.admin_url,
            ),
            "dev-idp" => (
                resolve(&service.environment["DEV_IDP_LISTEN"]),
                &sys.idp_url,
            ),
            other => panic!("unexpected service {other}"),
        };
        assert_eq!(port, port_of(&listen), "{name}: health check port");
        let status = sys
            .http
            .get(format!("{base}{path}"))
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{name}: {path}");
    }
    sys.stop().await.unwrap();
}

/// The backend believes any `X-User-*` headers, so no container but the
/// gateway may reach it: it sits on an internal network of its own that only
/// the gateway shares (scripts/compose-test.sh proves it on a real engine).
#[test]
fn only_the_gateway_shares_the_backends_network() {
    let services = services();
    assert_eq!(services["todo-backend"].networks, ["backend"]);
    let on_backend: Vec<&str> = services
        .iter()
        .filter(|(_, s)| s.networks.iter().any(|n| n == "backend"))
        .map(|(name, _)| name.as_str())
        .collect();
    assert_eq!(on_backend, ["proxy", "todo-backend"]);
    // The gateway also joins `default`, where its port is published and the
    // dev IdP is.
    assert!(services["proxy"].networks.contains(&"default".to_string()));
    assert_eq!(services["dev-idp"].networks, ["default"]);
    let declared = yaml("docker-compose.yml")["networks"]["backend"].clone();
    assert_eq!(
        declared["internal"], true,
        "the backend network is internal"
    );
}

/// An editor saves by writing a new file and renaming it over the old one; a
/// bind mount of the single file would keep showing the old one, so the
/// gateway's reload-on-change never saw the edit. The directory is mounted.
#[test]
fn the_gateway_mounts_the_policys_directory_so_edits_reload() {
    let services = services();
    let proxy = &services["proxy"];
    let policy = resolve(&proxy.environment["POLICY_FILE"]);
    let (dir, file) = policy.rsplit_once('/').unwrap();
    assert_eq!(file, "policy.yaml");
    let mount = proxy
        .volumes
        .iter()
        .find(|v| v.split(':').nth(1) == Some(dir))
        .unwrap_or_else(|| panic!("nothing mounted at {dir}: {:?}", proxy.volumes));
    let source = mount.split(':').next().unwrap();
    assert!(
        repo().join(source).join("policy.yaml").is_file(),
        "{mount}: a directory holding policy.yaml"
    );
    assert!(mount.ends_with(":ro"), "{mount}: read-only");
    assert!(
        !proxy
            .volumes
            .iter()
            .any(|v| v.starts_with("./policy.yaml:")),
        "a single-file mount of policy.yaml pins the old file on save"
    );
}

/// The image builds offline (no `# syntax=` frontend to fetch), says no
/// misleading ports, and runs as a user whose group has the same id.
#[test]
fn the_dockerfile_needs_no_registry_frontend_and_has_one_app_id() {
    let dockerfile = std::fs::read_to_string(repo().join("Dockerfile")).unwrap();
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().to_ascii_lowercase().starts_with("# syntax")),
        "a `# syntax=` line makes BuildKit fetch a frontend image from a registry"
    );
    assert!(
        !dockerfile
            .lines()
            .any(|l| l.trim_start().starts_with("EXPOSE")),
        "one image serves three ports; compose says which service uses which"
    );
    assert!(dockerfile.contains("groupadd --system --gid 10001 app"));
    assert!(dockerfile.contains("useradd --system --uid 10001 --gid 10001"));
}

/// The backend requires the gateway's signed identity assertion: it expects
/// the `iss` and `aud` the gateway signs, fetches the JWKS from the gateway
/// on the network they share, and its health check is one that does not
/// wait for the gateway (which starts only once the backend is healthy).
/// The JWKS URL's path is checked against a real gateway, and the backend
/// in this mode against the real system in `backend_assertion.rs`.
#[tokio::test]
async fn the_backend_verifies_the_gateways_assertion() {
    let services = services();
    let env = |service: &str, var: &str| -> String {
        resolve(
            services[service]
                .environment
                .get(var)
                .unwrap_or_else(|| panic!("{service}: {var} unset")),
        )
    };
    assert_eq!(env("todo-backend", "TODO_TRUST"), "gateway-assertion");
    assert_eq!(
        env("todo-backend", "TODO_GATEWAY_ISSUER"),
        env("proxy", "ASSERTION_ISSUER")
    );
    assert_eq!(env("proxy", "ASSERTION_ISSUER"), "http://localhost:8000");
    assert_eq!(
        env("todo-backend", "TODO_ASSERTION_AUDIENCE"),
        env("proxy", "ASSERTION_AUDIENCE")
    );
    assert_eq!(
        env("proxy", "ASSERTION_AUDIENCE"),
        env("proxy", "UPSTREAM_URL"),
        "the audience is the upstream's URL, as the gateway's default"
    );
    let jwks = env("todo-backend", "TODO_GATEWAY_JWKS_URL");
    let rest = jwks
        .strip_prefix("http://proxy:")
        .expect("the proxy service");
    let (port, path) = rest.split_at(rest.find('/').unwrap());
    assert_eq!(
        port.parse::<u16>().unwrap(),
        port_of(&env("proxy", "PROXY_LISTEN"))
    );
    let backend = "backend".to_string();
    assert!(
        services["proxy"].networks.contains(&backend)
            && services["todo-backend"].networks.contains(&backend),
        "the backend reaches the proxy on their shared network"
    );
    assert!(
        services["todo-backend"]
            .healthcheck
            .last()
            .unwrap()
            .ends_with("/health"),
        "the backend's health check must not wait for the gateway"
    );

    let sys = System::start().await.unwrap();
    let response = sys
        .http
        .get(format!("{}{path}", sys.gateway_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let keys: Value = response.json().await.unwrap();
    assert_eq!(keys["keys"][0]["alg"], "ES256");
    sys.stop().await.unwrap();
}

/// With the dev IdP, the gateway resolves a groups overage through the IdP's
/// Microsoft Graph stand-in (without it, every overage token is refused on a
/// route with `groups:`): its own app registration, that app's secret as a
/// compose secret file, Graph at the dev-idp service. The secret and the
/// client id are then checked against the real dev IdP: they get an app
/// token for Graph, which its Graph stand-in accepts for Frank's groups.
#[tokio::test]
async fn the_gateway_resolves_groups_overage_through_the_dev_idps_graph() {
    let services = services();
    let proxy = &services["proxy"];
    let env = |var: &str| -> String {
        resolve(
            proxy
                .environment
                .get(var)
                .unwrap_or_else(|| panic!("proxy: {var} unset")),
        )
    };
    let idp = dev_idp::Config::load(&repo().join("dev-idp/dev-idp.yaml")).unwrap();
    let app = idp.app(&env("GRAPH_CLIENT_ID")).expect("a dev IdP app");
    assert_eq!(app.client_id, GRAPH_CLIENT_ID);
    assert_eq!(app.name, "authz-gateway");
    assert!(
        app.application_permissions[dev_idp::config::GRAPH_APP]
            .contains(&"GroupMember.Read.All".to_string())
    );

    // The secret: a compose secret the gateway is given, from a file of the
    // repository, holding the app's secret.
    let file = env("GRAPH_CLIENT_SECRET_FILE");
    let name = file
        .strip_prefix("/run/secrets/")
        .expect("a compose secret");
    assert_eq!(proxy.secrets, [name]);
    let source = yaml("docker-compose.override.yml")["secrets"][name]["file"]
        .as_str()
        .expect("the secret's file")
        .to_owned();
    let secret = std::fs::read_to_string(repo().join(&source)).expect(&source);
    assert_eq!(Some(secret.trim()), app.secret.as_deref());

    // Graph is the dev-idp service, on a network the gateway shares, at the
    // port it listens on; the token comes from OIDC_METADATA_URL's origin.
    let graph = env("GRAPH_URL");
    let port = graph
        .strip_prefix("http://dev-idp:")
        .expect("the dev-idp service");
    assert_eq!(
        port.parse::<u16>().unwrap(),
        port_of(&resolve(&services["dev-idp"].environment["DEV_IDP_LISTEN"]))
    );
    assert!(env("OIDC_METADATA_URL").starts_with(&format!("{graph}/")));
    assert!(
        services["dev-idp"]
            .networks
            .iter()
            .any(|n| proxy.networks.contains(n))
    );
    // A real tenant (the base file alone) has no dev IdP to ask.
    let base = yaml("docker-compose.yml");
    let base_env = base["services"]["proxy"]["environment"]
        .as_object()
        .unwrap();
    assert!(!base_env.keys().any(|k| k.starts_with("GRAPH_")));

    let sys = System::start().await.unwrap();
    let token: Value = sys
        .http
        .post(format!("{}/{TENANT}/oauth2/v2.0/token", sys.idp_url))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", app.client_id.as_str()),
            ("client_secret", secret.trim()),
            ("scope", "https://graph.microsoft.com/.default"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let access_token = token["access_token"].as_str().expect("an app token");
    let frank = idp.user("frank").unwrap();
    let finance = "6f1c0000-0000-4000-8000-00000000f1a0";
    let response = sys
        .http
        .post(format!(
            "{}/v1.0/users/{}/checkMemberGroups",
            sys.idp_url, frank.object_id
        ))
        .bearer_auth(access_token)
        .json(&serde_json::json!({"groupIds": [finance]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["value"], serde_json::json!([finance]));
    sys.stop().await.unwrap();
}
